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
            cr_log_warn("ci/pg.sh stop %s failed", standby_dir);
        }
    }

    if (primary_dir) {
        if (system(str_printf("bash %s/ci/pg.sh stop %s >/dev/null 2>&1",
                              env("PAY_TEST_ROOT"), primary_dir)) != 0)
        {
            cr_log_warn("ci/pg.sh stop %s failed", primary_dir);
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


TestSuite(solo_pg_failover, .timeout = 120, .fini = stop_all);


Test(solo_pg_failover, the_standby_takes_over_and_nothing_answered_is_lost)
{
    size_t      i, ok_before, ok_after, refused, resumed;
    long        p1, p2, sessions, requests;
    double      t_promote, t_back;
    char       *primary_ci;
    resp_t     *r;
    PGconn     *c;
    PGresult   *res;
    pthread_t   th;
    merchant_t  m;
    load_t     *l;

    primary_dir = run_file(str_printf("pg-primary-%ld", (long) getpid()));
    standby_dir = run_file(str_printf("pg-standby-%ld", (long) getpid()));
    cr_assert_eq(mkdir(primary_dir, 0755), 0);
    cr_assert_eq(mkdir(standby_dir, 0755), 0);

    p1 = free_port();
    pg("start", primary_dir, p1, NULL);
    p2 = free_port();
    pg("standby", standby_dir, p2, primary_dir);

    /* the merchant on this cluster (merchant_new uses PAY_TEST_PG) */
    primary_ci = str_printf("host=127.0.0.1 port=%ld dbname=payments "
                            "user=postgres", p1);
    setenv("PAY_TEST_PG", primary_ci, 1);
    merchant_new(&m);

    gateway_start(&gw, "pg-failover", 2, str_printf(
        "payments_database \"hostaddr=127.0.0.1,127.0.0.1 port=%ld,%ld "
        "dbname=payments user=payments_gateway "
        "target_session_attrs=read-write\";\n"
        "payments_database_pool 2;\n"
        "payments_database_timeout 1s;\n"
        "payments_request_timeout 2500ms;\n"
        "payments_idempotency_lease 6s;\n"
        "payments_sweeper off;\n%s",
        p1, p2, gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&gw, 10);

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
