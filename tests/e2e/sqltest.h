/*
 * Statements against PAY_TEST_PG for the tests of the SQL layer
 * (test_sql.c, test_notify_sql.c): a connection, a statement that must
 * succeed, one that must fail with a given SQLSTATE, the one value of a
 * query.  Each failure is a Criterion assertion naming the statement.
 */
#ifndef SQLTEST_H
#define SQLTEST_H

#include <libpq-fe.h>
#include <stddef.h>

/* A connection as PAY_TEST_PG's superuser; skips the test without it. */
PGconn *sqlt_connect(void);

/* A statement that must succeed; the result is the caller's to PQclear. */
PGresult *sqlt_ok(PGconn *c, const char *sql, int n, const char *const *params);

/* A statement that must fail with exactly this SQLSTATE. */
void sqlt_fails(PGconn *c, const char *state, const char *sql, int n,
    const char *const *params);

/* The same, and the error must name exactly this constraint (NULL: any). */
void sqlt_fails_as(PGconn *c, const char *state, const char *constraint,
    const char *sql, int n, const char *const *params);

/*
 * The first column of the only row (NULL for SQL NULL), copied into a ring
 * of eight buffers of 16 KiB, so that a test can compare a few values
 * without freeing them.
 */
const char *sqlt_value(PGconn *c, const char *sql, int n,
    const char *const *params);

/* nhex (at most 64) random lower-case hex digits and a NUL into out. */
void sqlt_random_hex(char *out, size_t nhex);

#define NARGS(...)  ((int) (sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)))
#define ARGV(...)   ((const char *const []){__VA_ARGS__})

#define OK(c, sql, ...)    PQclear(sqlt_ok((c), (sql), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__)))
#define OK0(c, sql)        PQclear(sqlt_ok((c), (sql), 0, NULL))
#define FAILS(c, st, sql, ...) \
    sqlt_fails((c), (st), (sql), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))
#define FAILS0(c, st, sql) sqlt_fails((c), (st), (sql), 0, NULL)
#define FAILS_AS(c, st, con, sql, ...) \
    sqlt_fails_as((c), (st), (con), (sql), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))
#define VAL(c, sql, ...)   sqlt_value((c), (sql), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))
#define VAL0(c, sql)       sqlt_value((c), (sql), 0, NULL)

#endif /* SQLTEST_H */
