/* Statements against PAY_TEST_PG for the SQL layer's tests (sqltest.h). */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sqltest.h"

PGconn *
sqlt_connect(void)
{
    const char  *ci = getenv("PAY_TEST_PG");
    PGconn      *c;

    if (ci == NULL || *ci == '\0') {
        cr_skip_test("PAY_TEST_PG is not set");
    }
    c = PQconnectdb(ci);
    cr_assert(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}


PGresult *
sqlt_ok(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult        *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType   st = PQresultStatus(r);

    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK,
              "%s\n-> %s", sql, PQresultErrorMessage(r));
    return r;
}


void
sqlt_fails(PGconn *c, const char *state, const char *sql, int n,
    const char *const *params)
{
    sqlt_fails_as(c, state, NULL, sql, n, params);
}


void
sqlt_fails_as(PGconn *c, const char *state, const char *constraint,
    const char *sql, int n, const char *const *params)
{
    PGresult    *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    const char  *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char  *name = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);

    cr_assert(PQresultStatus(r) == PGRES_FATAL_ERROR,
              "%s: expected SQLSTATE %s, but it succeeded", sql, state);
    cr_assert(got != NULL && strcmp(got, state) == 0,
              "%s: expected SQLSTATE %s, got %s: %s", sql, state,
              got ? got : "(none)", PQresultErrorMessage(r));
    cr_assert(constraint == NULL || (name != NULL && strcmp(name, constraint) == 0),
              "%s: expected constraint %s, got %s: %s", sql,
              constraint ? constraint : "", name ? name : "(none)",
              PQresultErrorMessage(r));
    PQclear(r);
}


const char *
sqlt_value(PGconn *c, const char *sql, int n, const char *const *params)
{
    static char  ring[8][16384];
    static int   next;
    PGresult    *r = sqlt_ok(c, sql, n, params);
    char        *out;

    cr_assert_eq(PQntuples(r), 1, "%s: %d rows, wanted 1", sql, PQntuples(r));
    if (PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return NULL;
    }
    cr_assert_lt(strlen(PQgetvalue(r, 0, 0)), sizeof(ring[0]));
    out = ring[next++ % 8];
    strcpy(out, PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}


void
sqlt_random_hex(char *out, size_t nhex)
{
    unsigned char  b[32];
    size_t         i;

    cr_assert_leq(nhex, 2 * sizeof(b));
    cr_assert_eq(getrandom(b, sizeof(b), 0), (ssize_t) sizeof(b));
    for (i = 0; i < nhex; i++) {
        out[i] = "0123456789abcdef"[(b[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    }
    out[nhex] = '\0';
}
