/*
 * ngx_payments core: the CLIs' shards file (doc/plans/shards.md 1.5).
 *
 * One line per shard, "NAME CONNINFO": NAME as the gateway's
 * payments_shard names it ([a-z0-9_]{1,16}, not "default"), CONNINFO the
 * rest of the line (a libpq string or URI, the operator's own role).
 * Blank lines and lines starting with # are skipped; the first shard is
 * the home shard.  payments-migrate and payments-merchant read the same
 * format (bin/, in shell).  An error names a line by its number only: a
 * conninfo may hold what should not be printed.
 */
#ifndef PAYMENTS_SHARDS_FILE_H
#define PAYMENTS_SHARDS_FILE_H

#include <stddef.h>

#include <payments/shard.h>

typedef struct {
    char   name[PAY_SHARD_NAME_MAX + 1];
    char  *conninfo;                    /* malloc()ed, NUL-terminated */
} pay_shards_entry_t;

typedef struct {
    pay_shards_entry_t  shard[PAY_SHARD_MAX];
    size_t              n;              /* 1..PAY_SHARD_MAX when read */
} pay_shards_t;

/*
 * The len bytes at text, a shards file's content, into s (its earlier
 * content is not freed).  what names the file in err.  Returns 0, or -1
 * with err set ("FILE line 3: not NAME CONNINFO") and s emptied.
 */
int  pay_shards_parse(const char *what, const char *text, size_t len,
    pay_shards_t *s, char *err, size_t errlen);

/* The file at path, as pay_shards_parse reads it (at most 1 MiB). */
int  pay_shards_load(const char *path, pay_shards_t *s, char *err,
    size_t errlen);

void pay_shards_free(pay_shards_t *s);

/*
 * The shards file a CLI reads: opt (its --shards FILE), else, when no
 * --db was given (db_given 0), $PAYMENTS_SHARDS; NULL for one database
 * (--db or $PAYMENTS_DB, as before shards).  "" counts as not set.
 * Returns -1 when both --shards and --db were given.
 */
int  pay_shards_file_of(const char *opt, int db_given, const char **file);

#endif
