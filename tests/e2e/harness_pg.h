/*
 * The e2e harness: the suite's PostgreSQL (queries as the superuser,
 * stopping and starting the cluster) and the suite's gateway's readiness.
 */
#ifndef E2E_HARNESS_PG_H
#define E2E_HARNESS_PG_H

#include <libpq-fe.h>


/* -- PostgreSQL ------------------------------------------------------------- */

/* The superuser connection (PAY_TEST_PG), opened on first use. */
PGconn  *db(void);

/* The first column of the first row as text; NULL when there is no row or
 * the value is NULL.  Fails the test on an SQL error. */
char    *db_scalar(const char *sql, int nparams, const char *const *params);

/* Runs a statement; fails the test on an SQL error. */
void     db_exec(const char *sql, int nparams, const char *const *params);

/* The first column of the first row of sql ($1 = param; none when param
 * is NULL) on another database, conninfo ci, as text: "" when there is
 * none.  Fails the test on an error. */
char    *db_scalar_on(const char *ci, const char *sql, const char *param);

/* A second shard for the CLIs' tests: a new database of the suite's
 * cluster, migrated by payments-migrate.  Returns its conninfo (the
 * suite's with dbname=); *name is its name (DROP DATABASE ... WITH
 * (FORCE) when done). */
char    *db_new_shard(char **name);

/* A merchant of that shard's (rows only: no key), its new id (prefix
 * and uid(), 23 characters at most). */
char    *db_shard_merchant(const char *ci, const char *prefix);

/* RUN/<name>, written with fmt's text (a shards file's lines): its path */
char    *shards_file(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Stops / starts the test cluster (pg_ctl as its owner; start is a no-op
 * when it runs).  db() reconnects after a start. */
void     pg_stop(void);
void     pg_start(void);
int      pg_running(void);

/* Polls GET /readyz until it answers want (200 or 503); returns 1 if it
 * did within seconds. */
int      gw_wait_ready(long want, int seconds);


/* 1 if the /metrics at origin show each of its workers workers with a
 * database connection up. */
int      workers_up(const char *origin, int workers);


#endif
