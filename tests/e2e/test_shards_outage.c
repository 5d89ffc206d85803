/*
 * End to end: one shard stopped under load, on the shards lane's stack
 * (E2E_SHARDS=1; its gateway serves shards a and b).  Registrations of a
 * merchant on a and of one on b go on from several threads while b's
 * cluster is killed: a's merchant keeps every 201, b's gets 201 or 503
 * store_unavailable with Retry-After and nothing else, none slower than
 * the database timeout; /readyz stays 200 naming b unavailable.  Once b
 * is back, its merchant is served again.  The suite stops shard b: the
 * lane runs it one test at a time.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"


static void
shards_outage_init(void)
{
    shards_need(2);
    /* the stack's gateway serves b, again after a test before this one
     * stopped it */
    shard_wait_served("b", 30);
}


static void
shards_outage_fini(void)
{
    /* whatever failed, b runs again for the suites after this one */
    pg_start_shard("b");
}


TestSuite(shards_outage, .timeout = E2E_TIMEOUT, .init = shards_outage_init,
          .fini = shards_outage_fini);


#define SO_THREADS   4
#define SO_MAX       400     /* answers per thread, at most */


typedef struct {
    int     shard_b;    /* 1: the answer was for b's merchant */
    int     after;      /* 1: sent after b was killed */
    long    status;
    long    ms;
    int     problem_ok; /* a 503: store_unavailable with Retry-After */
} so_answer_t;


typedef struct {
    int                 n;
    int                 index;
    const merchant_t   *ma;
    const merchant_t   *mb;
    volatile int       *stop;
    volatile int       *killed;
    so_answer_t         a[SO_MAX];
} so_thread_t;


static void *
so_load(void *arg)
{
    int                 i, b;
    long                t0;
    char               *co, *key;
    json_t             *j;
    resp_t             *r;
    so_answer_t        *a;
    so_thread_t        *th = arg;
    const char         *code;

    for (i = 0; i < SO_MAX && !*th->stop; i++) {
        b = (i + th->index) % 2;
        co = str_printf("so_%d_%d_%ld", th->index, i, ms_now());
        key = str_printf("k_%s", co);

        a = &th->a[th->n];
        a->shard_b = b;
        a->after = *th->killed;

        t0 = ms_now();
        r = api_post(b ? th->mb : th->ma, key, body_for(co));
        a->ms = ms_now() - t0;
        a->status = r->status;
        a->problem_ok = 0;

        if (r->status == 503) {
            j = resp_json(r);
            code = j ? json_string_value(json_object_get(j, "code")) : NULL;
            a->problem_ok = code != NULL
                            && strcmp(code, "store_unavailable") == 0
                            && resp_header(r, "Retry-After") != NULL;
        }

        resp_free(r);
        free(co);
        free(key);
        th->n++;
    }

    return NULL;
}


Test(shards_outage, a_shard_killed_under_load_stops_its_merchants_only)
{
    int           t, i, a_201, b_201_after, b_503_after, others;
    long          worst_a, worst_b;
    resp_t       *r;
    pthread_t     tid[SO_THREADS];
    merchant_t    ma, mb;
    volatile int  stop = 0, killed = 0;
    static so_thread_t  th[SO_THREADS];

    merchant_new_on(&ma, "a");
    merchant_new_on(&mb, "b");

    for (t = 0; t < SO_THREADS; t++) {
        memset(&th[t], 0, sizeof(th[t]));
        th[t].index = t;
        th[t].ma = &ma;
        th[t].mb = &mb;
        th[t].stop = &stop;
        th[t].killed = &killed;
        cr_assert_eq(pthread_create(&tid[t], NULL, so_load, &th[t]), 0);
    }

    /* load on both shards, then b's cluster killed under it */
    msleep(2000);
    pg_kill_shard("b");
    killed = 1;
    msleep(4000);

    /* while b is down, the gateway stays ready and names b */
    r = gw_get("/readyz");
    cr_expect_eq(r->status, 200, "/readyz: %ld %s", r->status, r->body);
    cr_expect(strstr(r->body, "\"b\":\"unavailable\"") != NULL, "%s",
              r->body);
    resp_free(r);
    r = gw_get("/readyz?shard=b");
    cr_expect_eq(r->status, 503, "/readyz?shard=b: %ld %s", r->status,
                 r->body);
    resp_free(r);

    stop = 1;
    for (t = 0; t < SO_THREADS; t++) {
        pthread_join(tid[t], NULL);
    }

    a_201 = 0;
    b_201_after = 0;
    b_503_after = 0;
    others = 0;
    worst_a = 0;
    worst_b = 0;

    for (t = 0; t < SO_THREADS; t++) {
        for (i = 0; i < th[t].n; i++) {
            so_answer_t  *a = &th[t].a[i];

            if (!a->shard_b) {
                cr_expect_eq(a->status, 201, "a's merchant got %ld",
                             a->status);
                a_201 += a->status == 201;
                worst_a = a->ms > worst_a ? a->ms : worst_a;
                continue;
            }

            if (!a->after) {
                continue;
            }

            worst_b = a->ms > worst_b ? a->ms : worst_b;

            if (a->status == 201) {
                b_201_after++;
            } else if (a->status == 503 && a->problem_ok) {
                b_503_after++;
            } else {
                others++;
                cr_expect(0, "b's merchant got %ld (a 503 needs "
                          "store_unavailable and Retry-After)", a->status);
            }
        }
    }

    cr_log_info("shards_outage: a 201 x%d (slowest %ld ms); b after the "
                "kill: 201 x%d, 503 x%d (slowest %ld ms), other x%d",
                a_201, worst_a, b_201_after, b_503_after, worst_b, others);

    cr_expect_gt(a_201, 20, "a's merchant was served %d times", a_201);
    cr_expect_gt(b_503_after, 0, "b's merchant was never refused");
    cr_expect_eq(others, 0);
    /* payments_database_timeout 5s (the default, the shards' too) bounds
     * a request of b's; a's never waits for b */
    cr_expect_lt(worst_b, 6000, "a request of b's took %ld ms", worst_b);
    cr_expect_lt(worst_a, 3000, "a request of a's took %ld ms", worst_a);

    /* b back: its merchant is served again */
    pg_start_shard("b");
    shard_wait_served("b", 30);
    r = register_ok(&mb, uid("key"), body_for(uid("co")));
    resp_free(r);
}
