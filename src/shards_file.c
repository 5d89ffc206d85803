/*
 * ngx_payments core: the CLIs' shards file (include/payments/shards_file.h).
 *
 * The same rules as read_shards in bin/payments-migrate and
 * bin/payments-merchant, with the same messages.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payments/shards_file.h>


#define PAY_SHARDS_FILE_MAX  (1 << 20)


static int
pay_shards_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
           || c == '\f';
}


void
pay_shards_free(pay_shards_t *s)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        free(s->shard[i].conninfo);
        s->shard[i].conninfo = NULL;
    }
    s->n = 0;
}


static int
pay_shards_fail(pay_shards_t *s, char *err, size_t errlen, const char *what,
    size_t line, const char *why)
{
    if (line > 0) {
        snprintf(err, errlen, "%s line %zu: %s", what, line, why);

    } else {
        snprintf(err, errlen, "%s %s", what, why);
    }

    pay_shards_free(s);

    return -1;
}


int
pay_shards_parse(const char *what, const char *text, size_t len,
    pay_shards_t *s, char *err, size_t errlen)
{
    size_t       n, i, nlen, ilen;
    const char  *p, *end, *eol, *name, *info;
    const char  *why;
    char         msg[64];

    s->n = 0;
    p = text;
    end = text + len;

    for (n = 1; p < end; n++, p = eol + (eol < end)) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        ilen = (size_t) (eol - p);
        if (ilen > 0 && p[ilen - 1] == '\r') {
            ilen--;
        }

        if (memchr(p, '\0', ilen) != NULL) {
            return pay_shards_fail(s, err, errlen, what, n,
                                   "not NAME CONNINFO");
        }

        for (i = 0; i < ilen && pay_shards_space(p[i]); i++) { /* void */ }

        if (i == ilen || p[i] == '#') {
            continue;
        }

        name = p + i;
        for (nlen = 0; i < ilen && !pay_shards_space(p[i]); i++, nlen++) {
            /* void */
        }
        for (/* void */; i < ilen && pay_shards_space(p[i]); i++) {
            /* void */
        }

        if (i == ilen) {
            return pay_shards_fail(s, err, errlen, what, n,
                                   "not NAME CONNINFO");
        }
        info = p + i;
        ilen -= i;

        if (pay_shard_name_check(name, nlen, &why) != 0) {
            if (nlen == sizeof(PAY_SHARD_DEFAULT) - 1
                && memcmp(name, PAY_SHARD_DEFAULT, nlen) == 0)
            {
                return pay_shards_fail(s, err, errlen, what, n,
                                       "the name default is reserved");
            }
            return pay_shards_fail(s, err, errlen, what, n,
                                   "a shard's name is [a-z0-9_]{1,16}");
        }

        for (i = 0; i < s->n; i++) {
            if (strlen(s->shard[i].name) == nlen
                && memcmp(s->shard[i].name, name, nlen) == 0)
            {
                snprintf(msg, sizeof(msg), "shard %.*s is named twice",
                         (int) nlen, name);
                return pay_shards_fail(s, err, errlen, what, n, msg);
            }
        }

        if (s->n == PAY_SHARD_MAX) {
            return pay_shards_fail(s, err, errlen, what, 0,
                                   "names more than 64 shards");
        }

        memcpy(s->shard[s->n].name, name, nlen);
        s->shard[s->n].name[nlen] = '\0';
        s->shard[s->n].conninfo = strndup(info, ilen);
        if (s->shard[s->n].conninfo == NULL) {
            return pay_shards_fail(s, err, errlen, what, 0, "out of memory");
        }
        s->n++;
    }

    if (s->n == 0) {
        return pay_shards_fail(s, err, errlen, what, 0, "names no shard");
    }

    return 0;
}


int
pay_shards_load(const char *path, pay_shards_t *s, char *err, size_t errlen)
{
    FILE    *f;
    char    *buf;
    size_t   len;
    int      rc;

    s->n = 0;

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the shards file %s: %s", path,
                 strerror(errno));
        return -1;
    }

    buf = malloc(PAY_SHARDS_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    len = fread(buf, 1, PAY_SHARDS_FILE_MAX + 1, f);
    if (ferror(f) || len > PAY_SHARDS_FILE_MAX) {
        snprintf(err, errlen, "cannot read the shards file %s: %s", path,
                 ferror(f) ? "read error" : "larger than 1 MiB");
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);

    rc = pay_shards_parse(path, buf, len, s, err, errlen);
    free(buf);

    return rc;
}


int
pay_shards_file_of(const char *opt, int db_given, const char **file)
{
    *file = NULL;

    if (opt != NULL && db_given) {
        return -1;
    }

    if (opt == NULL && !db_given) {
        opt = getenv("PAYMENTS_SHARDS");
    }

    if (opt != NULL && opt[0] != '\0') {
        *file = opt;
    }

    return 0;
}
