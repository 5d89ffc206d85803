/*
 * End-to-end test harness: the suite's PostgreSQL.
 * What it offers: harness_pg.h.
 */

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

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
db_query(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    PGresult  *res;

    res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);

    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK
              || PQresultStatus(res) == PGRES_COMMAND_OK,
              "SQL failed: %s\n%s", PQerrorMessage(c), sql);

    return res;
}


char *
db_scalar(const char *sql, int nparams, const char *const *params)
{
    return db_scalar_on(db(), sql, nparams, params);
}


long
db_rows_read(const char *table)
{
    return db_rows_read_on(db(), table);
}


long
db_rows_read_on(PGconn *c, const char *table)
{
    const char  *p[1] = { table };

    /* a parallel worker's reads count in its own statistics, not in this
     * transaction's: the statements measured run without workers (the
     * caller's transaction; the first call sets it) */
    db_exec_on(c, "SET LOCAL max_parallel_workers_per_gather = 0", 0, NULL);
    /* a row an index scan fetches counts in its index's statistics, not in
     * the table's (there only a sequential scan's rows and a bitmap
     * scan's) */
    return atol(db_scalar_on(c, "SELECT"
                             " pg_stat_get_xact_tuples_returned($1::regclass)"
                             " + pg_stat_get_xact_tuples_fetched($1::regclass)"
                             " + coalesce((SELECT sum(pg_stat_get_xact_tuples_fetched("
                             "   i.indexrelid)) FROM pg_index i"
                             "   WHERE i.indrelid = $1::regclass), 0)",
                             1, p));
}


char *
db_scalar_on(PGconn *c, const char *sql, int nparams,
    const char *const *params)
{
    char      *v;
    PGresult  *res;

    res = db_query(c, sql, nparams, params);

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
    PQclear(db_query(db(), sql, nparams, params));
}


char *
db_scalar_at(const char *ci, const char *sql, const char *param)
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

    cr_assert_str_eq(db_scalar_at(ci, "INSERT INTO merchants (merchant_id,"
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


void
db_exec_on(PGconn *c, const char *sql, int nparams,
    const char *const *params)
{
    PQclear(db_query(c, sql, nparams, params));
}


PGconn *
db_lock_table(const char *table)
{
    PGconn  *c;

    c = PQconnectdb(env("PAY_TEST_PG"));
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, str_printf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table),
               0, NULL);

    return c;
}


void
db_unlock(PGconn *c)
{
    db_exec_on(c, "COMMIT", 0, NULL);
    PQfinish(c);
}


char *
db_gateway_waiting(const char *cond, const char *param, const char *why)
{
    int          i;
    char        *pid;
    const char  *p[1] = { param };

    for (i = 0; i < 100; i++) {
        db_exec("SELECT pg_stat_clear_snapshot()", 0, NULL);
        pid = db_scalar(str_printf("SELECT coalesce(max(pid), 0)"
                                   " FROM pg_stat_activity"
                                   " WHERE usename = 'payments_gateway'"
                                   " AND datname = current_database()"
                                   " AND (%s)", cond),
                        1, p);
        if (strcmp(pid, "0") != 0) {
            return pid;
        }

        msleep(100);
    }

    cr_assert_fail("%s", why);
    return NULL;
}


char *
db_lock_waiter(const char *like, const char *why)
{
    return db_gateway_waiting("wait_event_type = 'Lock' AND query LIKE $1",
                              like != NULL ? like : "%", why);
}


char *
db_waiter_of(PGconn *holder, const char *why)
{
    char  holder_pid[16];

    snprintf(holder_pid, sizeof(holder_pid), "%d", PQbackendPID(holder));

    return db_gateway_waiting("$1::int = ANY (pg_blocking_pids(pid))",
                              holder_pid, why);
}


typedef struct {
    resp_t   *(*send)(void *arg);
    void      *arg;
    resp_t    *r;
} db_sent_t;


static void *
db_send(void *data)
{
    db_sent_t  *s = data;

    s->r = s->send(s->arg);
    return NULL;
}


resp_t *
db_key_undone_meanwhile(const char *merchant_id, const char *key,
    resp_t *(*send)(void *arg), void *arg)
{
    PGconn       *c;
    pthread_t     th;
    db_sent_t     s;
    const char   *p[2] = { merchant_id, key };

    db_exec("INSERT INTO idempotency_keys (merchant_id, idem_key, "
            "fingerprint, state, lease, lease_until, checkout_id, "
            "created_at, expires_at) VALUES ($1, $2, repeat('0', 64), "
            "'in_progress', 1, now() + interval '1 hour', 'co_gone', now(), "
            "now() + interval '1 day')", 2, p);

    c = PQconnectdb(env("PAY_TEST_PG"));
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, "SELECT 1 FROM idempotency_keys WHERE merchant_id = $1 "
                  "AND idem_key = $2 FOR UPDATE", 2, p);

    s.send = send;
    s.arg = arg;
    s.r = NULL;
    cr_assert_eq(pthread_create(&th, NULL, db_send, &s), 0);

    (void) db_waiter_of(c, "no claim waited for the locked key");
    db_exec_on(c, "DELETE FROM idempotency_keys WHERE merchant_id = $1 "
                  "AND idem_key = $2", 2, p);
    db_exec_on(c, "COMMIT", 0, NULL);
    PQfinish(c);
    pthread_join(th, NULL);

    return s.r;
}


PGconn *
db_hold_key(const char *merchant_id, const char *key, const char *checkout_id)
{
    PGconn      *c;
    const char  *p[3] = { merchant_id, key, checkout_id };

    c = PQconnectdb(env("PAY_TEST_PG"));
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, "INSERT INTO idempotency_keys (merchant_id, idem_key,"
                  " fingerprint, state, lease, lease_until, checkout_id,"
                  " created_at, expires_at)"
                  " VALUES ($1, $2, repeat('0', 64), 'in_progress', 1,"
                  " now() + interval '1 hour', $3, now(),"
                  " now() + interval '1 day')", 3, p);

    return c;
}


void
db_release_key(PGconn *c)
{
    db_exec_on(c, "ROLLBACK", 0, NULL);
    PQfinish(c);
}


/* -- shards --------------------------------------------------------------- */

#define SHARDS_MAX  4

static PGconn  *shard_conn[SHARDS_MAX + 1];


int
shards_n(void)
{
    const char  *n;

    n = getenv("PAY_TEST_SHARDS");

    return (n == NULL || n[0] == '\0') ? 1 : atoi(n);
}


void
shards_need(int n)
{
    if (shards_n() < n) {
        cr_skip_test("needs a stack of %d shards (ci/services.sh --shards %d,"
                     " E2E_SHARDS=1 bash ci/e2e.sh)", n, n);
    }
}


/* whether word is one of the space-separated words of list */
static int
word_in(const char *list, const char *word)
{
    size_t       n;
    const char  *p;

    n = strlen(word);

    for (p = list; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) {
            return 1;
        }
    }

    return 0;
}


int
shard_served(const char *name)
{
    if (shards_n() == 1) {
        return strcmp(name, "default") == 0;
    }

    return word_in(env("PAY_TEST_GW_SHARDS"), name);
}


/* The shard's index: 0 for PAY_TEST_PG's (NULL, "", or "default" on an
 * unsharded stack), else its place in PAY_TEST_SHARD_NAMES from 1. */
static int
shard_index(const char *name)
{
    int          i;
    size_t       n;
    const char  *p;

    if (name == NULL || name[0] == '\0') {
        return 0;
    }

    if (shards_n() == 1) {
        cr_assert_str_eq(name, "default", "no shard \"%s\": the stack is not"
                         " sharded (its one shard is \"default\")", name);
        return 0;
    }

    n = strlen(name);
    p = env("PAY_TEST_SHARD_NAMES");

    for (i = 1; i <= SHARDS_MAX; i++) {
        if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '\0')) {
            return i;
        }

        p = strchr(p, ' ');
        if (p == NULL) {
            break;
        }
        p++;
    }

    cr_assert_fail("no shard \"%s\" in PAY_TEST_SHARD_NAMES \"%s\"", name,
                   env("PAY_TEST_SHARD_NAMES"));
    return -1;
}


/* PAY_TEST_<var> for index 0, PAY_TEST_<var><i> for shard i */
static const char *
shard_env(int i, const char *var)
{
    if (i == 0) {
        return env(str_printf("PAY_TEST_%s", var));
    }

    return env(str_printf("PAY_TEST_%s%d", var, i));
}


PGconn *
db_shard(const char *name)
{
    int  i;

    i = shard_index(name);
    if (i == 0) {
        return db();
    }

    if (shard_conn[i] != NULL && PQstatus(shard_conn[i]) != CONNECTION_OK) {
        PQfinish(shard_conn[i]);
        shard_conn[i] = NULL;
    }

    if (shard_conn[i] == NULL) {
        shard_conn[i] = PQconnectdb(shard_env(i, "PG"));
        cr_assert_eq(PQstatus(shard_conn[i]), CONNECTION_OK,
                     "PostgreSQL of shard %s: %s", name,
                     PQerrorMessage(shard_conn[i]));
    }

    return shard_conn[i];
}


const char *
shard_name(int i)
{
    int          k;
    size_t       n;
    const char  *p, *e;

    static char  names[SHARDS_MAX][17];

    if (shards_n() == 1) {
        return "";
    }

    cr_assert(i >= 0 && i < shards_n() && i < SHARDS_MAX, "no shard %d of"
              " %d", i, shards_n());

    p = env("PAY_TEST_SHARD_NAMES");
    for (k = 0; k < i; k++) {
        p = strchr(p, ' ');
        cr_assert_not_null(p, "PAY_TEST_SHARD_NAMES \"%s\" names fewer than"
                           " %d shards", env("PAY_TEST_SHARD_NAMES"), i + 1);
        p++;
    }

    e = strchr(p, ' ');
    n = e != NULL ? (size_t) (e - p) : strlen(p);
    cr_assert(n > 0 && n < sizeof(names[i]), "PAY_TEST_SHARD_NAMES \"%s\"",
              env("PAY_TEST_SHARD_NAMES"));
    memcpy(names[i], p, n);
    names[i][n] = '\0';

    return names[i];
}


const char *
shard_conninfo(const char *name)
{
    return shard_env(shard_index(name), "PG");
}


/* each table with a merchant_id column counted (query_to_xml runs the
 * count it is given: one statement for every table) */
static const char  db_sql_merchant_rows[] =
    "SELECT coalesce(sum(n), 0),"
    "       coalesce(string_agg(relname || ' ' || n, ', ' ORDER BY relname),"
    "                '')"
    "  FROM (SELECT c.relname::text AS relname,"
    "               (xpath('/row/n/text()', query_to_xml(format("
    "                  'SELECT count(*) AS n FROM public.%I"
    "                    WHERE merchant_id = %L', c.relname, $1::text),"
    "                  false, true, '')))[1]::text::bigint AS n"
    "          FROM pg_class c"
    "          JOIN pg_namespace s ON s.oid = c.relnamespace"
    "          JOIN pg_attribute a ON a.attrelid = c.oid"
    "         WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p')"
    "           AND NOT c.relispartition AND a.attname = 'merchant_id'"
    "           AND NOT a.attisdropped) x"
    " WHERE n > 0";


long
db_merchant_rows(PGconn *c, const char *merchant_id, char **where)
{
    long       n;
    PGresult  *res;

    res = db_query(c, db_sql_merchant_rows, 1,
                   (const char *const []) { merchant_id });
    cr_assert_eq(PQntuples(res), 1);
    n = atol(PQgetvalue(res, 0, 0));
    if (where != NULL) {
        *where = strdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);

    return n;
}


long
shards_elsewhere(const char *home, const char *merchant_id, char **where)
{
    int          i;
    long         n, all;
    char        *w;
    const char  *name;

    all = 0;
    if (where != NULL) {
        *where = strdup("");
    }

    for (i = 0; shards_n() > 1 && i < shards_n(); i++) {
        name = shard_name(i);
        if (home != NULL && strcmp(name, home) == 0) {
            continue;
        }

        n = db_merchant_rows(db_shard(name), merchant_id, &w);
        if (n > 0 && where != NULL) {
            *where = str_printf("%s%s%s: %s", *where, (*where)[0] ? "; " : "",
                                name, w);
        }
        free(w);
        all += n;
    }

    return all;
}


static void
db_close_all(void)
{
    int  i;

    if (conn != NULL) {
        PQfinish(conn);
        conn = NULL;
    }

    for (i = 0; i <= SHARDS_MAX; i++) {
        if (shard_conn[i] != NULL) {
            PQfinish(shard_conn[i]);
            shard_conn[i] = NULL;
        }
    }
}


/* pg_ctl ACTION -m MODE on the cluster of index i (0: PAY_TEST_PGDATA's) */
static int
pg_ctl_at(int i, const char *mode, const char *action)
{
    int          rc;
    char        *ctl, *log, *out;
    const char  *data;

    db_close_all();

    data = shard_env(i, "PGDATA");
    ctl = str_printf("%s/pg_ctl",
                     getenv("PGBIN") ? getenv("PGBIN")
                                     : "/usr/lib/postgresql/15/bin");
    log = str_printf("%s/postgres.log", shard_env(i, "PGDIR"));

    if (geteuid() == 0) {
        /* pg_ctl refuses root */
        char *const  argv[] = {
            (char *) "runuser", (char *) "-u", (char *) "postgres", (char *) "--",
            ctl, (char *) "-D", (char *) data, (char *) "-l", log,
            (char *) "-m", (char *) mode, (char *) "-w",
            (char *) "-t", (char *) "60", (char *) action, NULL
        };

        rc = run(argv, &out);

    } else {
        char *const  argv[] = {
            ctl, (char *) "-D", (char *) data, (char *) "-l", log,
            (char *) "-m", (char *) mode, (char *) "-w",
            (char *) "-t", (char *) "60", (char *) action, NULL
        };

        rc = run(argv, &out);
    }

    free(out);
    free(ctl);
    free(log);

    return rc;
}


static int
pg_ctl_run(const char *action)
{
    return pg_ctl_at(0, "fast", action);
}


int
pg_running_shard(const char *name)
{
    return pg_ctl_at(shard_index(name), "fast", "status") == 0;
}


void
pg_stop_shard(const char *name)
{
    int  rc;

    rc = pg_ctl_at(shard_index(name), "fast", "stop");
    cr_assert_eq(rc, 0, "pg_ctl stop of shard %s failed (%d)", name, rc);
}


void
pg_kill_shard(const char *name)
{
    int  rc;

    rc = pg_ctl_at(shard_index(name), "immediate", "stop");
    cr_assert_eq(rc, 0, "pg_ctl stop -m immediate of shard %s failed (%d)",
                 name, rc);
}


void
pg_start_shard(const char *name)
{
    int  i, rc;

    i = shard_index(name);
    if (pg_ctl_at(i, "fast", "status") == 0) {
        return;
    }

    rc = pg_ctl_at(i, "fast", "start");
    cr_assert_eq(rc, 0, "pg_ctl start of shard %s failed (%d)", name, rc);
}


/* sig to the shard's postmaster (postmaster.pid's first line) and to its
 * children; the postmaster first when stopping (it makes no new one), last
 * when resuming */
static int
pg_signal_shard(const char *name, int sig)
{
    int             n, r;
    long            pm, pid, ppid;
    char           *pidfile, *text, *stat, *p;
    DIR            *d;
    struct dirent  *e;

    pidfile = str_printf("%s/postmaster.pid",
                         shard_env(shard_index(name), "PGDATA"));
    text = file_read(pidfile, NULL);
    cr_assert_not_null(text, "shard %s: no %s: is it running?", name, pidfile);
    pm = strtol(text, NULL, 10);
    cr_assert(pm > 1, "shard %s: %s holds no pid", name, pidfile);

    n = 0;
    if (sig == SIGSTOP) {
        cr_assert_eq(kill((pid_t) pm, sig), 0, "kill %ld", pm);
        n++;
    }

    d = opendir("/proc");
    cr_assert_not_null(d);

    while ((e = readdir(d)) != NULL) {
        pid = strtol(e->d_name, &p, 10);
        if (pid <= 1 || *p != '\0') {
            continue;
        }

        stat = file_read(str_printf("/proc/%ld/stat", pid), NULL);
        if (stat == NULL) {
            continue;
        }

        /* "pid (comm) state ppid ...": comm may hold spaces and ")" */
        p = strrchr(stat, ')');
        r = p != NULL ? sscanf(p + 1, " %*c %ld", &ppid) : 0;
        free(stat);

        if (r == 1 && ppid == pm && kill((pid_t) pid, sig) == 0) {
            n++;
        }
    }

    closedir(d);

    if (sig == SIGCONT) {
        cr_assert_eq(kill((pid_t) pm, sig), 0, "kill %ld", pm);
        n++;
    }

    free(text);
    free(pidfile);

    return n;
}


int
pg_pause_shard(const char *name)
{
    return pg_signal_shard(name, SIGSTOP);
}


int
pg_resume_shard(const char *name)
{
    return pg_signal_shard(name, SIGCONT);
}


void
pg_read_only_shard(const char *name, int on)
{
    int          i;
    char        *v;
    PGconn      *c;
    const char  *want;

    c = db_shard(name);
    /* this session writes whatever the default */
    db_exec_on(c, "SET default_transaction_read_only = off", 0, NULL);
    db_exec_on(c, on ? "ALTER SYSTEM SET default_transaction_read_only = on"
                     : "ALTER SYSTEM RESET default_transaction_read_only",
               0, NULL);
    db_exec_on(c, "SELECT pg_reload_conf()", 0, NULL);

    /* the postmaster reloads on its own time: until a new session sees it */
    want = on ? "on" : "off";

    for (i = 0; i < 100; i++) {
        c = PQconnectdb(shard_env(shard_index(name), "PG"));
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "shard %s: %s", name,
                     PQerrorMessage(c));
        v = db_scalar_on(c, "SHOW default_transaction_read_only", 0, NULL);
        PQfinish(c);

        if (v != NULL && strcmp(v, want) == 0) {
            free(v);
            return;
        }

        free(v);
        msleep(50);
    }

    cr_assert_fail("shard %s: default_transaction_read_only is not %s after"
                   " 5 s", name, want);
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
 * database connection up (a gateway over several shards: one to each
 * shard of the stack). */
int
workers_up(const char *origin, int workers)
{
    int     i, k;
    double  v;

    for (i = 0; i < workers; i++) {
        v = metric_value(origin, str_printf("payments_db_pool_connections"
                                            "{worker=\"%d\",state=\"up\"}", i));
        if (v >= 1) {
            continue;
        }

        /* no such series: its shards' (payments_shard lines) */
        if (v >= 0 || shards_n() < 2) {
            return 0;
        }

        for (k = 0; k < shards_n(); k++) {
            if (metric_value(origin, str_printf(
                    "payments_db_pool_connections{worker=\"%d\",shard=\"%s\","
                    "state=\"up\"}", i, shard_name(k))) < 1)
            {
                return 0;
            }
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


/* -- a slow door to the suite's PostgreSQL ---------------------------------- */

typedef struct {
    int   fd;           /* the gateway's side */
    long  delay_ms;
} door_conn_t;


static void
door_relay(int a, int b)
{
    int            i;
    char           buf[16384];
    ssize_t        n;
    struct pollfd  p[2];

    p[0].fd = a;
    p[1].fd = b;
    p[0].events = p[1].events = POLLIN;

    for ( ;; ) {
        if (poll(p, 2, -1) < 0) {
            return;
        }

        for (i = 0; i < 2; i++) {
            if (p[i].revents == 0) {
                continue;
            }

            n = read(p[i].fd, buf, sizeof(buf));

            if (n <= 0 || write(p[1 - i].fd, buf, (size_t) n) != n) {
                return;
            }
        }
    }
}


static void *
door_conn(void *arg)
{
    int                 up;
    door_conn_t        *dc = arg;
    struct sockaddr_in  sa;

    msleep(dc->delay_ms);

    up = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) pg_port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (up >= 0 && connect(up, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
        door_relay(dc->fd, up);
    }

    if (up >= 0) {
        close(up);
    }

    close(dc->fd);
    free(dc);

    return NULL;
}


static void *
door_accept(void *arg)
{
    int          fd;
    pthread_t    th;
    door_conn_t *dc, *door = arg;

    for ( ;; ) {
        fd = accept(door->fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            return NULL;    /* not a spin on a door that cannot open */
        }

        dc = malloc(sizeof(door_conn_t));
        cr_assert_not_null(dc);
        dc->fd = fd;
        dc->delay_ms = door->delay_ms;

        cr_assert_eq(pthread_create(&th, NULL, door_conn, dc), 0);
        pthread_detach(th);
    }

    return NULL;
}


long
pg_slow_door(long delay_ms)
{
    int                 one;
    pthread_t           th;
    socklen_t           len;
    door_conn_t        *door;
    struct sockaddr_in  sa;

    door = calloc(1, sizeof(door_conn_t));
    cr_assert_not_null(door);
    door->delay_ms = delay_ms;
    door->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(door->fd >= 0);

    one = 1;
    (void) setsockopt(door->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    cr_assert_eq(bind(door->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    cr_assert_eq(listen(door->fd, 64), 0);

    len = sizeof(sa);
    cr_assert_eq(getsockname(door->fd, (struct sockaddr *) &sa, &len), 0);

    cr_assert_eq(pthread_create(&th, NULL, door_accept, door), 0);
    pthread_detach(th);

    return (long) ntohs(sa.sin_port);
}
