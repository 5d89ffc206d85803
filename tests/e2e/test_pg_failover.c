/*
 * End to end: PostgreSQL fail-over under load (issue 9, part 4).
 *
 * The test builds a cluster of its own (ci/pg.sh): a primary and a
 * streaming standby that the primary commits to synchronously, and a
 * gateway whose payments_database lists both with
 * target_session_attrs=read-write.  While registrations keep coming, the
 * primary is stopped hard (pg_ctl stop -m immediate) and, a moment later,
 * the standby promoted.  Then:
 *   - while there is no primary, every answer is 201 (committed before the
 *     stop) or 503 store_unavailable with Retry-After: it fails closed;
 *   - the gateway reconnects by itself and answers 201 again within
 *     seconds of the promotion;
 *   - every checkout answered 201 is on the new primary with its token;
 *   - every key answered 503 resumes with the same key once its lease has
 *     run out, and the PSP holds one session per checkout.
 *
 * And a server that answers but takes no writes (a planned switchover
 * fences the old primary with default_transaction_read_only and a reload,
 * without restarting it): /readyz says 503 while it lasts, the gateway
 * closes the connections that met it and opens them again, with its
 * back-off, so that target_session_attrs=read-write finds the promoted
 * standby; with one server, it writes again once the server does.
 */

#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define LOAD_MAX  2000


typedef struct {
    char        *co;
    char        *key;
    char        *body;
    long         status;
    int          retry_after;
    char        *token;
    double       at;            /* seconds since the load started */
} attempt_t;


typedef struct {
    gateway_t       *gw;
    merchant_t      *m;
    attempt_t        a[LOAD_MAX];
    size_t           n;
    volatile int     stop;
    struct timespec  t0;
} load_t;


static gateway_t  gw;
static char      *primary_dir, *standby_dir;


static double
since(const struct timespec *t0)
{
    struct timespec  t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) (t.tv_sec - t0->tv_sec)
           + (double) (t.tv_nsec - t0->tv_nsec) / 1e9;
}


static void
pg(const char *cmd, const char *dir, long port, const char *primary)
{
    int  rc;

    rc = system(str_printf("bash %s/ci/pg.sh %s %s %s %s >/dev/null",
                           env("PAY_TEST_ROOT"), cmd, dir,
                           port ? str_printf("%ld", port) : "",
                           primary ? primary : ""));
    cr_assert_eq(rc, 0, "ci/pg.sh %s %s failed", cmd, dir);
}


static void
stop_all(void)
{
    gateway_stop(&gw);

    if (standby_dir) {
        if (system(str_printf("bash %s/ci/pg.sh stop %s >/dev/null 2>&1",
                              env("PAY_TEST_ROOT"), standby_dir)) != 0)
        {
            e2e_warn("ci/pg.sh stop %s failed", standby_dir);
        }
    }

    if (primary_dir) {
        if (system(str_printf("bash %s/ci/pg.sh stop %s >/dev/null 2>&1",
                              env("PAY_TEST_ROOT"), primary_dir)) != 0)
        {
            e2e_warn("ci/pg.sh stop %s failed", primary_dir);
        }
    }
}


static void *
load_thread(void *arg)
{
    load_t      *l = arg;
    attempt_t   *a;
    resp_t      *r;
    json_t      *j;

    while (!l->stop && l->n < LOAD_MAX) {
        a = &l->a[l->n];
        a->co = uid("co");
        a->key = uid("key");
        a->body = body_for(a->co);

        r = gateway_send(l->gw, "POST", PATH_PAYMENTS, l->m, a->key, a->body);
        a->status = r->status;
        a->retry_after = resp_header(r, "Retry-After") != NULL;
        a->at = since(&l->t0);

        if (r->status == 201) {
            j = json_loads(r->body, 0, NULL);
            a->token = j ? strdup(json_string_value(
                                      json_object_get(j, "psp_token")))
                         : NULL;
            json_decref(j);

        } else if (r->status != 503) {
            fprintf(stderr, "pg_failover: %ld %s\n", r->status,
                    r->body ? r->body : "");
        }

        resp_free(r);
        l->n++;
        msleep(20);
    }

    return NULL;
}


static PGconn *
connect_to(const char *dir)
{
    PGconn  *c;

    c = PQconnectdb(str_printf("hostaddr=127.0.0.1 port=%s dbname=payments "
                               "user=postgres",
                               file_read(str_printf("%s/port", dir), NULL)));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));

    return c;
}


/*
 * default_transaction_read_only on (1) or reset (0) on the cluster in
 * dir, reloaded, as a switchover fences a primary: its sessions see it at
 * their next statement.  Returns when a new session sees it, and the
 * server's clock from before the change.
 */
static char *
fence(const char *dir, int on)
{
    int          i;
    char        *before, *v;
    PGconn      *c;
    const char  *want;

    c = connect_to(dir);
    /* this session writes whatever the default */
    db_exec_on(c, "SET default_transaction_read_only = off", 0, NULL);
    before = db_scalar_on(c, "SELECT clock_timestamp()::text", 0, NULL);
    db_exec_on(c, on ? "ALTER SYSTEM SET default_transaction_read_only = on"
                     : "ALTER SYSTEM RESET default_transaction_read_only",
               0, NULL);
    db_exec_on(c, "SELECT pg_reload_conf()", 0, NULL);
    PQfinish(c);

    want = on ? "on" : "off";

    for (i = 0; i < 100; i++) {
        c = connect_to(dir);
        v = db_scalar_on(c, "SHOW default_transaction_read_only", 0, NULL);
        PQfinish(c);

        if (v != NULL && strcmp(v, want) == 0) {
            free(v);
            return before;
        }

        free(v);
        msleep(50);
    }

    cr_assert_fail("%s: default_transaction_read_only is not %s after 5 s",
                   dir, want);
    return NULL;
}


/* a registration through gw: its status; a 503 must be store_unavailable
 * with Retry-After */
static long
register_one(gateway_t *g, merchant_t *m, char **co)
{
    long     status;
    char    *id;
    resp_t  *r;

    id = uid("co");
    r = gateway_send(g, "POST", PATH_PAYMENTS, m, uid("key"), body_for(id));
    status = r->status;

    if (status == 503) {
        expect_problem(r, 503, "store_unavailable");
        cr_expect_not_null(resp_header(r, "Retry-After"));

    } else if (status != 201) {
        e2e_warn("pg_failover: %ld %s", status, r->body ? r->body : "");
    }

    resp_free(r);

    if (co != NULL) {
        *co = id;
    }

    return status;
}


/* registrations through gw, 100 ms apart, until one answers 201, for
 * 10 s at the most: the last one's status, its checkout in *co */
static long
register_within_10s(merchant_t *m, char **co)
{
    int   i;
    long  status;

    status = 0;

    for (i = 0; i < 100 && status != 201; i++) {
        status = register_one(&gw, m, co);
        if (status != 201) {
            msleep(100);
        }
    }

    return status;
}


/* /readyz of gw, n times 100 ms apart: how many answered 200 */
static int
readyz_200s(gateway_t *g, int n)
{
    int      i, ok;
    resp_t  *r;

    ok = 0;

    for (i = 0; i < n; i++) {
        r = gateway_get(g, "/readyz");
        ok += (r->status == 200);
        cr_expect(r->status == 200 || r->status == 503, "/readyz: %ld %s",
                  r->status, r->body);
        resp_free(r);
        msleep(100);
    }

    return ok;
}

/*
 * A primary in the run's directory (pg-primary-NAME-PID, which ci/e2e.sh
 * stops after a crash), with a standby of it when p2 is not NULL; the
 * merchant m on the primary (merchant_new uses PAY_TEST_PG)
 */
static void
clusters_start(const char *name, long *p1, long *p2, merchant_t *m)
{
    primary_dir = run_file(str_printf("pg-primary-%s-%ld", name,
                                      (long) getpid()));
    cr_assert_eq(mkdir(primary_dir, 0755), 0);
    *p1 = free_port();
    pg("start", primary_dir, *p1, NULL);

    if (p2 != NULL) {
        standby_dir = run_file(str_printf("pg-standby-%s-%ld", name,
                                          (long) getpid()));
        cr_assert_eq(mkdir(standby_dir, 0755), 0);
        *p2 = free_port();
        pg("standby", standby_dir, *p2, primary_dir);
    }

    setenv("PAY_TEST_PG", str_printf("host=127.0.0.1 port=%ld "
                                     "dbname=payments user=postgres", *p1),
           1);
    merchant_new(m);
}


/* gw with workers workers over the servers at the conninfo's hostaddr and
 * port, a pool of 2, a 1 s database time-out, no sweeper, and more */
static void
failover_gateway(const char *name, int workers, const char *servers,
    const char *more)
{
    gateway_start(&gw, name, workers, str_printf(
        "payments_database \"%s dbname=payments user=payments_gateway\";\n"
        "payments_database_pool 2;\n"
        "payments_database_timeout 1s;\n"
        "payments_sweeper off;\n%s%s",
        servers, more, gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&gw, 10);
}


TestSuite(solo_pg_failover, .timeout = 120, .fini = stop_all);


Test(solo_pg_failover, the_standby_takes_over_and_nothing_answered_is_lost)
{
    size_t      i, ok_before, ok_after, refused, resumed;
    long        p1, p2, sessions, requests;
    double      t_promote, t_back;
    resp_t     *r;
    PGconn     *c;
    PGresult   *res;
    pthread_t   th;
    merchant_t  m;
    load_t     *l;

    clusters_start("failover", &p1, &p2, &m);
    failover_gateway("pg-failover", 2, str_printf(
                         "hostaddr=127.0.0.1,127.0.0.1 port=%ld,%ld "
                         "target_session_attrs=read-write", p1, p2),
                     "payments_request_timeout 2500ms;\n"
                     "payments_idempotency_lease 6s;\n");

    l = calloc(1, sizeof(load_t));
    cr_assert_not_null(l);
    l->gw = &gw;
    l->m = &m;
    clock_gettime(CLOCK_MONOTONIC, &l->t0);
    cr_assert_eq(pthread_create(&th, NULL, load_thread, l), 0);

    /* load, then the primary dies; no primary for 1.5 s; promotion */
    msleep(1500);
    pg("kill", primary_dir, 0, NULL);
    msleep(1500);
    pg("promote", standby_dir, 0, NULL);
    t_promote = since(&l->t0);

    /* until the gateway answers 201 again, then a little more */
    t_back = -1;

    for (i = 0; i < 300 && t_back < 0; i++) {
        msleep(50);

        if (l->n > 0 && l->a[l->n - 1].status == 201
            && l->a[l->n - 1].at > t_promote)
        {
            t_back = l->a[l->n - 1].at;
        }
    }

    msleep(1000);
    l->stop = 1;
    pthread_join(th, NULL);

    cr_log_info("pg_failover: load stopped at %.1f s", since(&l->t0));
    cr_assert_geq(t_back, 0, "no 201 within 15 s of the promotion");
    cr_log_info("pg_failover: %zu requests; back %.2f s after the "
                "promotion", l->n, t_back - t_promote);
    cr_assert_lt(t_back - t_promote, 10.0, "back only %.2f s after the "
                 "promotion", t_back - t_promote);

    /* fail closed: 201 or 503 with Retry-After, nothing else */
    ok_before = ok_after = refused = 0;

    for (i = 0; i < l->n; i++) {
        if (l->a[i].status == 201) {
            if (l->a[i].at < t_promote) {
                ok_before++;

            } else {
                ok_after++;
            }

            continue;
        }

        cr_assert_eq(l->a[i].status, 503, "answer %zu: %ld", i,
                     l->a[i].status);
        cr_assert(l->a[i].retry_after, "a 503 without Retry-After");
        refused++;
    }

    cr_assert_gt(ok_before, 0);
    cr_assert_gt(ok_after, 0);
    cr_assert_gt(refused, 0, "the outage was never seen");

    /* every 201 is on the new primary, with its token */
    c = connect_to(standby_dir);

    for (i = 0; i < l->n; i++) {
        if (l->a[i].status != 201) {
            continue;
        }

        res = PQexecParams(c, "SELECT psp_token FROM checkouts "
                              "WHERE merchant_id = $1 AND checkout_id = $2",
                           2, NULL, (const char *[]) { m.id, l->a[i].co },
                           NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        cr_assert_eq(PQntuples(res), 1, "checkout %s answered 201 is lost",
                     l->a[i].co);
        /* stored sealed: opened with the gateway's key file */
        cr_assert_str_eq(psp_token_open(m.id, l->a[i].co,
                                        PQgetvalue(res, 0, 0)),
                         l->a[i].token);
        PQclear(res);
    }

    PQfinish(c);
    cr_log_info("pg_failover: checked the 201s at %.1f s", since(&l->t0));

    /* the refused keys resume (after their leases) and register once */
    resumed = 0;

    for (i = 0; i < l->n; i++) {
        int  k;

        if (l->a[i].status != 503) {
            continue;
        }

        for (k = 0; k < 100; k++) {
            r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, l->a[i].key,
                             l->a[i].body);
            if (r->status == 201) {
                break;
            }

            cr_assert(r->status == 409 || r->status == 503,
                      "resuming %s: %ld %s", l->a[i].key, r->status,
                      r->body);
            resp_free(r);
            msleep(200);
        }

        cr_assert_eq(r->status, 201, "key %s never resumed", l->a[i].key);
        resumed++;
    }

    cr_log_info("pg_failover: resumed at %.1f s", since(&l->t0));

    for (i = 0; i < l->n; i++) {
        mock_registrations(nonce(&m, l->a[i].co), &sessions, &requests);
        cr_assert_leq(sessions, 1, "two sessions for %s", l->a[i].co);
    }

    {
        FILE  *f;

        /* a row of the chaos table (test_chaos.c): the ledger, histories
         * and the sweeper are not this scenario's */
        f = fopen(run_file("logs/chaos.txt"), "a");
        cr_assert_not_null(f);
        fprintf(f, "| %-44s | %3zu | %3zu/%-3zu | %-6s | %-7s | %-6s | %-7s | "
                "%-6s | %-7s |\n",
                str_printf("primary killed, standby promoted (%.1f s)",
                           t_back - t_promote),
                l->n + resumed, ok_before + ok_after, l->n, "ok", "ok", "-",
                "-", "-", "-");
        fclose(f);
    }

    cr_log_info("pg_failover: %zu answered 201 before the promotion, %zu "
                "after, %zu 503 (%zu resumed with their key)", ok_before,
                ok_after, refused, resumed);
}


/*
 * A planned switchover: the primary is fenced (default_transaction_read_only
 * and a reload, not restarted: the gateway's sessions stay open on it), then
 * the standby promoted.  The gateway's payments_database lists both with
 * target_session_attrs=read-write: while no server takes writes, /readyz
 * is 503 and registrations 503 store_unavailable; once the standby is
 * promoted, the gateway writes there within seconds, without a restart.
 */
Test(solo_pg_failover, a_fenced_primary_is_left_for_the_promoted_standby)
{
    int         i, ready;
    long        p1, p2, status;
    char       *co;
    PGconn     *c;
    merchant_t  m;

    clusters_start("fenced", &p1, &p2, &m);
    failover_gateway("pg-fenced", 2, str_printf(
                         "hostaddr=127.0.0.1,127.0.0.1 port=%ld,%ld "
                         "target_session_attrs=read-write", p1, p2), "");

    for (i = 0; i < 4; i++) {
        cr_assert_eq(register_one(&gw, &m, NULL), 201);
    }

    /* the old primary fenced: nothing takes writes */
    (void) fence(primary_dir, 1);

    ready = readyz_200s(&gw, 10);
    cr_expect_eq(ready, 0, "/readyz answered 200 %d times in 10 while the "
                 "only primary took no writes", ready);

    for (i = 0; i < 10; i++) {
        status = register_one(&gw, &m, NULL);
        cr_expect_eq(status, 503, "a registration answered %ld while no "
                     "server took writes", status);
        msleep(100);
    }

    /* the standby takes over: the gateway follows, without a restart */
    pg("promote", standby_dir, 0, NULL);

    co = NULL;
    status = register_within_10s(&m, &co);
    cr_assert_eq(status, 201, "no registration answered 201 within 10 s of "
                 "the promotion: the gateway's connections stayed on the "
                 "fenced primary");

    /* and every worker, each within its back-off (at most 5 s) */
    gateway_wait_ready(&gw, 10);

    /* written on the new primary */
    c = connect_to(standby_dir);
    cr_expect_str_eq(db_scalar_on(c, "SELECT count(*) FROM checkouts "
                                     "WHERE merchant_id = $1 "
                                     "AND checkout_id = $2",
                                  2, (const char *[]) { m.id, co }),
                     "1");
    PQfinish(c);
}


/*
 * One server, fenced read-only, then reset: while it lasts /readyz is 503,
 * registrations 503 store_unavailable, reads are served, and the
 * connections that met it are closed and opened again within the pool's
 * back-off (a few in all, not one per request); once reset, the gateway
 * writes again without a restart, on connections opened after the fence.
 */
Test(solo_pg_failover, a_read_only_server_is_not_ready_and_is_reconnected)
{
    int         i, ready;
    long        p1, status, f0, f1;
    char       *co0, *fenced;
    resp_t     *r;
    PGconn     *c;
    merchant_t  m;

    clusters_start("read-only", &p1, NULL, &m);

    /* one worker: every connection of the pool is this one's */
    failover_gateway("pg-read-only", 1,
                     str_printf("hostaddr=127.0.0.1 port=%ld", p1), "");
    cr_assert_eq(register_one(&gw, &m, &co0), 201);

    fenced = fence(primary_dir, 1);

    ready = readyz_200s(&gw, 5);
    cr_expect_eq(ready, 0, "/readyz answered 200 %d times in 5 while the "
                 "database took no writes", ready);

    /* reads are served meanwhile */
    status = 0;

    for (i = 0; i < 30 && status != 200; i++) {
        r = gateway_send(&gw, "GET", str_printf("/v1/checkouts/%s", co0), &m,
                         NULL, NULL);
        status = r->status;
        resp_free(r);

        if (status != 200) {
            msleep(100);
        }
    }

    cr_expect_eq(status, 200, "a read while the database took no writes");

    /* 3 s of registrations, 50 ms apart: each 503; the connections are
     * closed and opened again as the back-off allows (250 ms, doubling),
     * not at every one: at most 5 each */
    f0 = gateway_metric(&gw, "payments_db_connection_failures_total");

    for (i = 0; i < 60; i++) {
        status = register_one(&gw, &m, NULL);
        cr_expect_eq(status, 503, "a registration answered %ld while the "
                     "database took no writes", status);
        msleep(50);
    }

    f1 = gateway_metric(&gw, "payments_db_connection_failures_total");
    cr_log_info("pg_failover: %ld connections closed while read-only",
                f1 - f0);
    cr_expect_geq(f1 - f0, 1, "no connection was closed on a read-only "
                  "server");
    cr_expect_leq(f1 - f0, 2 * 5, "%ld connections closed in 3 s: a "
                  "reconnect storm", f1 - f0);

    /* the fence lifted: writes again, without a restart */
    (void) fence(primary_dir, 0);

    status = register_within_10s(&m, NULL);
    cr_assert_eq(status, 201, "no registration answered 201 within 10 s of "
                 "the reset");
    gateway_wait_ready(&gw, 10);

    /* the pool's connections were opened again since the fence */
    c = connect_to(primary_dir);
    cr_expect_str_neq(db_scalar_on(c, "SELECT count(*) FROM pg_stat_activity "
                                      "WHERE usename = 'payments_gateway' "
                                      "AND backend_start > $1",
                                   1, (const char *[]) { fenced }),
                      "0", "no connection of the gateway's was opened "
                      "after the fence");
    cr_expect_str_eq(db_scalar_on(c, "SELECT count(*) FROM pg_stat_activity "
                                     "WHERE usename = 'payments_gateway' "
                                     "AND backend_start <= $1",
                                  1, (const char *[]) { fenced }),
                     "0", "the gateway's connections opened before the "
                     "fence");
    PQfinish(c);
}
