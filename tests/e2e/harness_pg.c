/*
 * End-to-end test harness: the suite's PostgreSQL.
 * What it offers: harness_pg.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"


/* -- PostgreSQL ------------------------------------------------------------- */

static PGconn  *conn;


PGconn *
db(void)
{
    if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = NULL;
    }

    if (conn == NULL) {
        conn = PQconnectdb(env("PAY_TEST_PG"));
        cr_assert_eq(PQstatus(conn), CONNECTION_OK, "PostgreSQL: %s",
                     PQerrorMessage(conn));
    }

    return conn;
}


static PGresult *
db_query(const char *sql, int nparams, const char *const *params)
{
    PGresult  *res;

    res = PQexecParams(db(), sql, nparams, NULL, params, NULL, NULL, 0);

    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK
              || PQresultStatus(res) == PGRES_COMMAND_OK,
              "SQL failed: %s\n%s", PQerrorMessage(conn), sql);

    return res;
}


char *
db_scalar(const char *sql, int nparams, const char *const *params)
{
    char      *v;
    PGresult  *res;

    res = db_query(sql, nparams, params);

    v = NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0
        && !PQgetisnull(res, 0, 0))
    {
        v = strdup(PQgetvalue(res, 0, 0));
    }

    PQclear(res);
    return v;
}


void
db_exec(const char *sql, int nparams, const char *const *params)
{
    PQclear(db_query(sql, nparams, params));
}


char *
db_scalar_on(const char *ci, const char *sql, const char *param)
{
    PGconn    *c;
    PGresult  *r;
    char      *v;

    c = PQconnectdb(ci);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    r = PQexecParams(c, sql, param != NULL, NULL,
                     (const char *const []){ param }, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql,
                 PQresultErrorMessage(r));
    v = str_printf("%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
    return v;
}


char *
db_new_shard(char **name)
{
    int    rc;
    char  *ci, *out;

    *name = str_printf("pay_%s", uid("shard"));
    ci = str_printf("%s dbname=%s", env("PAY_TEST_PG"), *name);
    db_exec(str_printf("CREATE DATABASE %s", *name), 0, NULL);

    {
        char *const  argv[] = {
            str_printf("%s/bin/payments-migrate", env("PAY_TEST_ROOT")),
            ci, NULL
        };

        rc = run(argv, &out);
    }
    cr_assert_eq(rc, 0, "payments-migrate %s: %s", *name, out);

    return ci;
}


char *
db_shard_merchant(const char *ci, const char *prefix)
{
    char  *id = uid(prefix);

    cr_assert_str_eq(db_scalar_on(ci, "INSERT INTO merchants (merchant_id,"
                                      " name, mode) VALUES ($1, 'shard',"
                                      " 'test') RETURNING merchant_id", id),
                     id);
    return id;
}


char *
shards_file(const char *name, const char *fmt, ...)
{
    char     *path;
    FILE     *f;
    va_list   ap;

    path = run_file(name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    cr_assert_eq(fclose(f), 0, "%s", path);

    return path;
}


static int
pg_ctl_run(const char *action)
{
    int          rc;
    char        *ctl, *log, *out;
    const char  *data;

    if (conn != NULL) {
        PQfinish(conn);
        conn = NULL;
    }

    data = env("PAY_TEST_PGDATA");
    ctl = str_printf("%s/pg_ctl",
                     getenv("PGBIN") ? getenv("PGBIN")
                                     : "/usr/lib/postgresql/15/bin");
    log = str_printf("%s/postgres.log", env("PAY_TEST_PGDIR"));

    if (geteuid() == 0) {
        /* pg_ctl refuses root */
        char *const  argv[] = {
            (char *) "runuser", (char *) "-u", (char *) "postgres", (char *) "--",
            ctl, (char *) "-D", (char *) data, (char *) "-l", log,
            (char *) "-m", (char *) "fast", (char *) "-w",
            (char *) "-t", (char *) "60", (char *) action, NULL
        };

        rc = run(argv, &out);

    } else {
        char *const  argv[] = {
            ctl, (char *) "-D", (char *) data, (char *) "-l", log,
            (char *) "-m", (char *) "fast", (char *) "-w",
            (char *) "-t", (char *) "60", (char *) action, NULL
        };

        rc = run(argv, &out);
    }

    free(out);
    free(ctl);
    free(log);

    return rc;
}


int
pg_running(void)
{
    /* pg_ctl status: 0 running, 3 not running */
    return pg_ctl_run("status") == 0;
}


void
pg_stop(void)
{
    int  rc;

    rc = pg_ctl_run("stop");
    cr_assert_eq(rc, 0, "pg_ctl stop failed (%d)", rc);
}


void
pg_start(void)
{
    int  rc;

    if (pg_running()) {
        return;
    }

    rc = pg_ctl_run("start");
    cr_assert_eq(rc, 0, "pg_ctl start failed (%d)", rc);
}


/* 1 if the /metrics at origin show each of its workers workers with a
 * database connection up. */
int
workers_up(const char *origin, int workers)
{
    int  i;

    for (i = 0; i < workers; i++) {
        if (metric_value(origin, str_printf("payments_db_pool_connections"
                                            "{worker=\"%d\",state=\"up\"}", i))
            < 1)
        {
            return 0;
        }
    }

    return 1;
}


int
gw_wait_ready(long want, int seconds)
{
    int      i;
    long     status;
    resp_t  *r;

    for (i = 0; i < seconds * 5; i++) {
        r = gw_get("/readyz");
        status = r->status;
        resp_free(r);

        /* ready: in every worker (gateway_wait_ready) */
        if (status == want
            && (want != 200
                || workers_up(env("PAY_TEST_GW"), atoi(env("PAY_TEST_WORKERS")))))
        {
            return 1;
        }

        msleep(200);
    }

    return 0;
}
