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

/* The live rows of table that this transaction's scans read so far: a
 * sequential scan's, a bitmap scan's and those an index scan of any of its
 * indexes fetched (pg_stat_get_xact_tuples_returned and _fetched of the
 * table and of each index, on db(); _on: on c): what a statement read is
 * the difference around it.  Dead index entries (another test's
 * rolled-back rows) do not count.  Call it inside a transaction: it turns parallel workers off for
 * the rest of it, since a worker's reads count in its own statistics. */
long     db_rows_read(const char *table);
long     db_rows_read_on(PGconn *c, const char *table);

/* A transaction of its own holding merchant_id's Idempotency-Key key (a
 * row inserted, not committed): pay_claim with that key waits for it, and
 * goes on as for a new key once it is rolled back (db_release_key). */
PGconn  *db_hold_key(const char *merchant_id, const char *key,
                     const char *checkout_id);
void     db_release_key(PGconn *c);

/* The first column of the first row of sql ($1 = param; none when param
 * is NULL) on another database, conninfo ci, as text: "" when there is
 * none.  Fails the test on an error. */
char    *db_scalar_at(const char *ci, const char *sql, const char *param);

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

/* db_scalar and db_exec on another connection (db_shard()'s). */
char    *db_scalar_on(PGconn *c, const char *sql, int nparams,
    const char *const *params);
void     db_exec_on(PGconn *c, const char *sql, int nparams,
    const char *const *params);

/* A connection of its own whose open transaction holds table (ACCESS
 * EXCLUSIVE: every query that touches it waits); db_unlock commits and
 * closes it. */
PGconn  *db_lock_table(const char *table);
void     db_unlock(PGconn *c);
/* The pid of a gateway backend (user payments_gateway, this database)
 * whose pg_stat_activity row meets cond (SQL, $1 = param), within 10 s;
 * fails the test with why otherwise.  The activity's snapshot is cleared
 * at each look: it is kept for a transaction. */
char    *db_gateway_waiting(const char *cond, const char *param,
                            const char *why);
/* The pid of a gateway backend (user payments_gateway, this database)
 * whose query waits for a lock, its text LIKE like (NULL: any query),
 * within 10 s; fails the test with why otherwise.  The activity's
 * snapshot is cleared at each look: it is kept for a transaction. */
char    *db_lock_waiter(const char *like, const char *why);
/* The pid of a gateway backend waiting for a lock holder's transaction
 * holds (pg_blocking_pids names holder's backend), within 10 s; fails the
 * test with why otherwise.  Scoped to holder, so a test beside it waiting
 * for another lock is never taken for it. */
char    *db_waiter_of(PGconn *holder, const char *why);
/* send(arg)'s answer, sent in a thread of its own while m's Idempotency-
 * Key key is a committed claim of another checkout, in progress, locked:
 * once a claim waits for it, it is deleted (as an undone claim's is).  A
 * request under that key is known when it asks (pay_claim_peek) and new
 * at its claim. */
resp_t  *db_key_undone_meanwhile(const char *merchant_id, const char *key,
                                 resp_t *(*send)(void *arg), void *arg);


/* -- merchant shards (ci/services.sh --shards N) ----------------------------
 *
 * A sharded stack has N clusters, shards "a", "b", ... (PAY_TEST_SHARD_NAMES;
 * a is the home, PAY_TEST_PG's, and holds the demo merchant), the CLIs'
 * shards file PAY_TEST_SHARDS_FILE, and PAY_TEST_GW_SHARDS, the shards the
 * suite's gateway serves.  An unsharded stack is one shard, "default"
 * (the module's name for payments_database).  name NULL or "" below is
 * PAY_TEST_PG's cluster (db()'s), whatever the stack. */

/* PAY_TEST_SHARDS, 1 on an unsharded stack. */
int      shards_n(void);

/* Skips the test unless the stack has at least n shards. */
void     shards_need(int n);

/* 1 if the suite's gateway serves the shard (PAY_TEST_GW_SHARDS). */
int      shard_served(const char *name);

/* The superuser connection to the shard's cluster, opened on first use
 * (db() for NULL or ""). */
PGconn  *db_shard(const char *name);

/* The i-th shard's name (0 <= i < shards_n(), in PAY_TEST_SHARD_NAMES'
 * order: 0 is the home); "" on an unsharded stack (db_shard("") is db()). */
const char  *shard_name(int i);

/* The shard's superuser conninfo (PAY_TEST_PG for NULL or ""). */
const char  *shard_conninfo(const char *name);

/* The rows of merchant_id in every table of the schema with a merchant_id
 * column, on the connection c: their count; *where (when where is not
 * NULL) says which ("ledger_entries 2, merchants 1"; "" for none). */
long     db_merchant_rows(PGconn *c, const char *merchant_id, char **where);

/* db_merchant_rows on every shard but home (the merchant's own), added
 * up: what of the merchant lives where it does not (0 on an unsharded
 * stack); *where names the shards and tables ("b: ledger_entries 2"). */
long     shards_elsewhere(const char *home, const char *merchant_id,
    char **where);

/* The shard's cluster: stopped (pg_ctl -m fast), killed (-m immediate: no
 * shutdown checkpoint, clients cut off), started (a no-op when it runs).
 * Every connection db() and db_shard() opened is closed first. */
void     pg_stop_shard(const char *name);
void     pg_kill_shard(const char *name);
void     pg_start_shard(const char *name);
int      pg_running_shard(const char *name);

/* A hanging shard: SIGSTOP of its postmaster and every process of the
 * cluster (connections open and new ones hang, nothing is refused);
 * pg_resume_shard sends SIGCONT.  Returns the processes signalled. */
int      pg_pause_shard(const char *name);
int      pg_resume_shard(const char *name);

/* ALTER SYSTEM default_transaction_read_only on (1) or reset (0), reloaded;
 * returns when a new connection sees it (every transaction then refuses
 * to write: "cannot execute INSERT in a read-only transaction"). */
void     pg_read_only_shard(const char *name, int on);

/* A slow door to the suite's PostgreSQL: a loopback port whose every
 * connection waits delay_ms before a thread of the test joins it to the
 * server (PAY_TEST_PG's) and relays both ways, as a server slow to let a
 * connection in would.  Its port; it lasts as long as the test's process. */
long     pg_slow_door(long delay_ms);

/* Polls GET /readyz until it answers want (200 or 503); returns 1 if it
 * did within seconds. */
int      gw_wait_ready(long want, int seconds);


/* 1 if the /metrics at origin show each of its workers workers with a
 * database connection up. */
int      workers_up(const char *origin, int workers);


#endif
