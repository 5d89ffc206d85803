/*
 * End to end: GET /metrics (issue #4).  Each counter is read, something is
 * done, and the counter must have moved by at least that much (other tests
 * run at the same time, so never "exactly").
 */

#include "harness.h"

#include <pthread.h>
#include <time.h>


static char *
metrics(void)
{
    resp_t      *r;
    const char  *ct;

    r = gw_get("/metrics");
    cr_assert_eq(r->status, 200, "%s", r->body);
    ct = resp_header(r, "Content-Type");
    cr_assert_not_null(ct);
    cr_assert(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "%s", ct);

    return strdup(r->body);
}


/* The value of the sample "name{labels}" (exact), or -1 when absent. */
static long
sample(const char *text, const char *series)
{
    size_t       n;
    const char  *p;

    n = strlen(series);

    for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            return atol(p + n + 1);
        }
    }

    return -1;
}


static long
now_of(const char *series)
{
    return sample(metrics(), series);
}


Test(metrics, is_prometheus_text_with_every_family)
{
    char        *m;
    size_t       i;
    const char  *families[] = {
        "# TYPE payments_requests_total counter",
        "# TYPE payments_errors_total counter",
        "# TYPE payments_idempotency_total counter",
        "# TYPE payments_psp_request_duration_seconds histogram",
        "# TYPE payments_psp_requests_total counter",
        "# TYPE payments_webhook_refused_total counter",
        "# TYPE payments_webhook_events_total counter",
        "# TYPE payments_db_queries_total counter",
        "# TYPE payments_db_pool_connections gauge",
        "# TYPE payments_db_pool_waiting gauge",
        "# TYPE payments_db_wait_seconds histogram",
        "# TYPE payments_checkouts_executing gauge",
        "# TYPE payments_checkouts_executing_oldest_seconds gauge",
        "# TYPE payments_wallet_fold_last_success_timestamp_seconds gauge",
    };

    m = metrics();

    for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        cr_expect(strstr(m, families[i]) != NULL, "no \"%s\"", families[i]);
    }

    /* every line is a comment or "name{...} value" */
    cr_assert(strstr(m, "\n\n") == NULL);
}


Test(metrics, counts_registrations_psp_latency_and_replays)
{
    char        *key, *body, *psp;
    long         created, hist, replayed, ok;
    merchant_t   m;

    psp = str_printf("psp=\"%s\"", env("PAY_TEST_PSP"));
    created = now_of(str_printf("payments_psp_requests_total{%s,"
                                "result=\"created\"}", psp));
    hist = now_of(str_printf("payments_psp_request_duration_seconds_count{%s}",
                             psp));
    replayed = now_of("payments_idempotency_total{result=\"replayed\"}");
    ok = now_of("payments_requests_total{route=\"create_payment\","
                "status=\"2xx\"}");
    cr_assert(created >= 0 && hist >= 0 && replayed >= 0);

    merchant_new(&m);
    key = uid("key");
    body = body_for(uid("co"));
    register_ok(&m, key, body);
    cr_assert_eq(api_post(&m, key, body)->status, 201);

    cr_assert_geq(now_of(str_printf("payments_psp_requests_total{%s,"
                                    "result=\"created\"}", psp)),
                  created + 1);
    cr_assert_geq(now_of(str_printf("payments_psp_request_duration_seconds_"
                                    "count{%s}", psp)), hist + 1);
    cr_assert_geq(now_of("payments_idempotency_total{result=\"replayed\"}"),
                  replayed + 1);
    cr_assert_geq(now_of("payments_requests_total{route=\"create_payment\","
                         "status=\"2xx\"}"), (ok < 0 ? 0 : ok) + 2);
}


Test(metrics, counts_webhook_refusals_by_reason_and_alerted_outcomes)
{
    req_t        rq;
    long         bad, unknown;
    char        *url, *sig;
    const char  *body;

    url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
    bad = now_of(str_printf("payments_webhook_refused_total{psp=\"%s\","
                            "reason=\"bad_signature\"}", env("PAY_TEST_PSP")));
    unknown = now_of(str_printf("payments_webhook_events_total{psp=\"%s\","
                                "outcome=\"unknown_checkout\"}",
                                env("PAY_TEST_PSP")));
    cr_assert(bad >= 0 && unknown >= 0);

    /* a forged signature */
    {
        const char  *h[] = { "Content-Type: application/json",
                             "Stripe-Signature: t=1,v1=00", NULL };

        rq.method = "POST";
        rq.url = url;
        rq.headers = h;
        rq.body = "{}";
        rq.len = (size_t) -1;
        cr_assert_eq(http(&rq)->status, 400);
    }

    /* an authentic event for a checkout nobody registered */
    body = str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                      "\"checkout.session.completed\",\"livemode\":false,"
                      "\"data\":{\"object\":{\"id\":\"cs_test_%s\","
                      "\"client_reference_id\":\"nobody:%s\","
                      "\"amount_total\":100,\"currency\":\"usd\","
                      "\"payment_status\":\"paid\"}}}", uid("evt"),
                      uid("none"), uid("co"));
    sig = stripe_signature(NULL, (long) time(NULL), body);

    {
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        rq.method = "POST";
        rq.url = url;
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;
        /* kept pending in the inbox, acknowledged */
        cr_assert_eq(http(&rq)->status, 200);
    }

    cr_assert_geq(now_of(str_printf("payments_webhook_refused_total{psp=\"%s\","
                                    "reason=\"bad_signature\"}",
                                    env("PAY_TEST_PSP"))), bad + 1);
    cr_assert_geq(now_of(str_printf("payments_webhook_events_total{psp=\"%s\","
                                    "outcome=\"unknown_checkout\"}",
                                    env("PAY_TEST_PSP"))), unknown + 1);
    cr_assert_geq(now_of("payments_errors_total{code=\"bad_signature\"}"), 1);
}


Test(metrics, shows_each_workers_database_pool)
{
    char  *m;

    m = metrics();
    /* two workers (ci/e2e.sh), payments_database_pool 4 (nginx.conf.in) */
    cr_assert_eq(sample(m, "payments_db_pool_connections{worker=\"0\","
                           "state=\"size\"}"), 4, "%s", m);
    cr_assert_eq(sample(m, "payments_db_pool_connections{worker=\"1\","
                           "state=\"size\"}"), 4, "%s", m);
    cr_assert_geq(sample(m, "payments_db_pool_connections{worker=\"0\","
                            "state=\"up\"}"), 1);
    cr_assert_geq(sample(m, "payments_db_queries_total"), 1);
}


/* What worker 0's housekeeping reads once a minute for /metrics (the
 * alert on checkouts stuck EXECUTING): the gateway's role may call it,
 * and a registered checkout counts. */
Test(metrics, executing_stats_count_the_checkouts_waiting_for_a_psp)
{
    merchant_t   m;
    char        *co;
    long         before, after;

    before = atol(db_scalar("SELECT executing FROM pay_executing_stats()", 0,
                            NULL));
    merchant_new(&m);
    co = uid("co");
    register_ok(&m, uid("key"), body_for(co));
    after = atol(db_scalar("SELECT executing FROM pay_executing_stats()", 0,
                           NULL));
    cr_assert_geq(after, before + 1);
    cr_assert_geq(atol(db_scalar("SELECT oldest_seconds FROM "
                                 "pay_executing_stats()", 0, NULL)), 0);
    cr_assert_str_eq(db_scalar("SELECT has_function_privilege("
                               "'payments_gateway', 'pay_executing_stats()', "
                               "'EXECUTE')::text", 0, NULL), "true");
}


/*
 * The gauge's count reads at most 10,000 of the checkouts EXECUTING,
 * however many are open.  Past that it says the partial index's size as
 * PostgreSQL last counted it, never less than 10,000: a count of every
 * open session, once a minute on one of the pool's connections, took
 * 0.7-2.1 s at a million (bench/executing_gauge.sh).  Below its cap the
 * count is exact.  20,000 checkouts EXECUTING, in a transaction rolled
 * back; the rows it read from this transaction's statistics.  cost: a
 * planner setting for the transaction, or NULL.
 */
static void
gauge_reads_at_most_ten_thousand(const char *cost)
{
    long         read, total, gauge;
    const char  *m[1];

    m[0] = uid("gauge");

    db_exec("BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL);
    db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
    if (cost != NULL) {
        db_exec(cost, 0, NULL);
    }
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, expires_at, created_at)"
            " SELECT $1, 'co_' || g, 'stripe', $1 || ':co_' || g, 'USD', 100,"
            " 'https://shop.example/s', 'https://shop.example/c', 'EXECUTING',"
            " 'r', now() + interval '1 hour', now() - g * interval '1 ms'"
            " FROM generate_series(1, 20000) g", 1, m);
    /* as autovacuum's would after such growth (rolled back with them) */
    db_exec("ANALYZE checkouts", 0, NULL);

    total = atol(db_scalar("SELECT count(*) FROM checkouts"
                           " WHERE status = 'EXECUTING'", 0, NULL));
    cr_assert_geq(total, 20000);

    read = db_rows_read("checkouts");
    gauge = atol(db_scalar("SELECT executing FROM pay_executing_stats()", 0,
                           NULL));
    read = db_rows_read("checkouts") - read;
    cr_assert_lt(read, 20000, "the gauge read %ld rows (%s)", read,
                 cost != NULL ? cost : "default costs");
    cr_assert_eq(gauge, atol(db_scalar("SELECT greatest(10000, reltuples::"
                                       "bigint) FROM pg_class WHERE oid ="
                                       " 'checkouts_executing_since'::"
                                       "regclass", 0, NULL)));

    /* below the cap, exact; the oldest of them at least 20 s old */
    cr_assert_eq(atol(db_scalar("SELECT executing FROM"
                                " pay_executing_stats(1000000000)", 0, NULL)),
                 total);
    cr_assert_geq(atol(db_scalar("SELECT oldest_seconds FROM"
                                 " pay_executing_stats()", 0, NULL)), 20);

    db_exec("ROLLBACK", 0, NULL);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkouts"
                               " WHERE merchant_id = $1", 1, m), "0");
}


Test(metrics, executing_gauge_reads_at_most_ten_thousand_checkouts)
{
    gauge_reads_at_most_ten_thousand(NULL);
}


/*
 * Whatever the planner makes of the table's pages.  Where the 20,000
 * land in the free space of a much-updated table, scattered over pages
 * not all-visible, each index fetch looks dear and a sequential scan
 * and sort of every open session looks cheaper to the planner.  CI
 * failed the test above once without saying which assertion; this plan
 * is the likeliest cause found.  A random_page_cost of 40 makes the
 * planner choose it here (20,001 rows read before the fix); the gauge's
 * plan is the index's walk whatever the costs.
 */
Test(metrics, executing_gauge_reads_at_most_ten_thousand_whatever_the_costs)
{
    gauge_reads_at_most_ten_thousand("SET LOCAL random_page_cost = 40");
}


/*
 * A reload that swaps two PSPs' lines while the old workers still have
 * calls to one of them in flight: "mt_pa" hangs for one merchant (each
 * call times out at 2 s), "mt_pb" is well.  Each PSP's
 * payments_psp_requests_total counts its own calls only, and never goes
 * back, whichever workers (the old cycle's or the new) answer /metrics.
 * A gateway of the test's own; a solo suite for its timings.
 */

static gateway_t  mt_gw;


static void
stop_mt_gw(void)
{
    gateway_stop(&mt_gw);
}


TestSuite(solo_metrics, .timeout = 60, .fini = stop_mt_gw);


/* one attempt of 2 s, no breaker: every call is counted, none shed */
static char *
mt_psp(const char *name)
{
    char  *psp;

    psp = gw_psp_conf(name, "stripe");
    psp[strlen(psp) - 2] = '\0';

    return str_printf("%s timeout=2s retries=0 breaker=0;\n", psp);
}


/* The PSP's registration attempts, every result summed, from one
 * /metrics answer's body; -1 when it has no such series. */
static long
mt_calls(const char *body, const char *psp)
{
    long         sum;
    char        *prefix;
    const char  *p;

    prefix = str_printf("\npayments_psp_requests_total{psp=\"%s\",result=\"",
                        psp);
    sum = -1;

    for (p = strstr(body, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        p = strchr(p + 1, ' ');
        if (p == NULL) {
            break;
        }

        sum = (sum < 0 ? 0 : sum) + strtol(p + 1, NULL, 10);
    }

    free(prefix);

    return sum;
}


/* both PSPs' counts from one answer of the gateway's /metrics */
static void
mt_counts(long *pa, long *pb)
{
    resp_t  *r;

    r = gateway_get(&mt_gw, "/metrics");
    cr_assert_eq(r->status, 200, "/metrics: %ld", r->status);
    *pa = mt_calls(r->body, "mt_pa");
    *pb = mt_calls(r->body, "mt_pb");
    resp_free(r);
}


static resp_t *
mt_register(const merchant_t *m, const char *psp)
{
    json_t  *co;

    co = checkout_new(uid("co"), 1);
    json_object_set_new(co, "psp", json_string(psp));

    return gateway_send(&mt_gw, "POST", PATH_PAYMENTS, m, uid("key"),
                        dump(co));
}


typedef struct {
    const merchant_t  *m;
    long               status[6];
} mt_load_t;


/* six registrations through mt_pa at once */
static void *
mt_load(void *arg)
{
    size_t        i;
    req_t         rqs[6];
    json_t       *co;
    resp_t      **rs;
    const char  **h;
    mt_load_t    *l = arg;

    for (i = 0; i < 6; i++) {
        h = calloc(4, sizeof(const char *));
        if (h == NULL) {
            abort();
        }

        h[0] = str_printf("Authorization: Bearer %s", l->m->key);
        h[1] = "Content-Type: application/json";
        h[2] = str_printf("Idempotency-Key: %s", uid("key"));

        co = checkout_new(uid("co"), 1);
        json_object_set_new(co, "psp", json_string("mt_pa"));

        rqs[i].method = "POST";
        rqs[i].url = str_printf("%s%s", mt_gw.origin, PATH_PAYMENTS);
        rqs[i].headers = h;
        rqs[i].body = dump(co);
        rqs[i].len = (size_t) -1;
    }

    rs = http_many(rqs, 6, 6);

    for (i = 0; i < 6; i++) {
        l->status[i] = rs[i]->status;
    }

    return NULL;
}


/* /metrics read over and over while the reload happens: the lowest
 * count seen after a higher one, per PSP (no assertion off the main
 * thread) */
typedef struct {
    volatile int   stop;
    long           pa_max, pb_max;
    long           pa_drop, pb_drop;    /* -1: never went back */
    long           pa_to, pb_to;        /* where it went back to */
    int            reads;
} mt_watch_t;


static void *
mt_watch(void *arg)
{
    long         pa, pb;
    resp_t      *r;
    mt_watch_t  *w = arg;

    while (!w->stop) {
        r = http_get(str_printf("%s/metrics", mt_gw.origin));

        if (r->status == 200) {
            pa = mt_calls(r->body, "mt_pa");
            pb = mt_calls(r->body, "mt_pb");
            w->reads++;

            if (pa < w->pa_max && w->pa_drop < 0) {
                w->pa_drop = w->pa_max;
                w->pa_to = pa;
            }

            if (pb < w->pb_max && w->pb_drop < 0) {
                w->pb_drop = w->pb_max;
                w->pb_to = pb;
            }

            w->pa_max = pa > w->pa_max ? pa : w->pa_max;
            w->pb_max = pb > w->pb_max ? pb : w->pb_max;
        }

        resp_free(r);
        msleep(20);
    }

    return NULL;
}


Test(solo_metrics,
     a_reload_that_swaps_two_psps_keeps_each_psps_counters_with_it)
{
    int          i;
    long         pa, pb;
    char        *a, *b;
    resp_t      *r;
    pthread_t    th, wt;
    merchant_t   mh, mw;
    mt_load_t    l;
    mt_watch_t   w;

    merchant_new(&mh);
    merchant_new(&mw);

    a = mt_psp("mt_pa");
    b = mt_psp("mt_pb");

    gateway_start(&mt_gw, "metrics-swap", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 5s;\n"
        "payments_idempotency_lease 60s;\n"
        "%s%s", pg_gateway_conninfo(), a, b));
    gateway_wait_ready(&mt_gw, 10);

    /* before: two calls to mt_pa, three to mt_pb, all answered */
    for (i = 0; i < 5; i++) {
        r = mt_register(&mw, i < 2 ? "mt_pa" : "mt_pb");
        cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
        resp_free(r);
    }

    mt_counts(&pa, &pb);
    cr_assert_eq(pa, 2, "mt_pa before the reload: %ld", pa);
    cr_assert_eq(pb, 3, "mt_pb before the reload: %ld", pb);

    /* every call for mh hangs past mt_pa's timeout */
    mock_fault(str_printf("{\"match\":\"%s:\",\"hang_ms\":4000}", mh.id));

    memset(&w, 0, sizeof(w));
    w.pa_max = pa;
    w.pb_max = pb;
    w.pa_drop = -1;
    w.pb_drop = -1;
    cr_assert_eq(pthread_create(&wt, NULL, mt_watch, &w), 0);

    l.m = &mh;
    cr_assert_eq(pthread_create(&th, NULL, mt_load, &l), 0);

    /* the six are in flight in the old workers: the lines swapped */
    msleep(400);
    gateway_reload(&mt_gw, str_printf("%s%s", a, b),
                   str_printf("%s%s", b, a));

    /* the old workers' calls still hang: nothing counted has gone */
    mt_counts(&pa, &pb);
    cr_assert_geq(pa, 2, "mt_pa's count went back at the reload: %ld", pa);
    cr_assert_eq(pb, 3, "mt_pb's count changed at the reload: %ld", pb);

    pthread_join(th, NULL);

    for (i = 0; i < 6; i++) {
        cr_assert_eq(l.status[i], 504, "mt_pa's call %d: %ld", i,
                     l.status[i]);
    }

    /* the old workers counted their six timeouts to mt_pa, not to the
     * PSP that took its place in the list */
    mt_counts(&pa, &pb);
    cr_assert_eq(pa, 8, "mt_pa after its calls ended: %ld", pa);
    cr_assert_eq(pb, 3, "mt_pb after mt_pa's calls ended: %ld", pb);
    cr_assert_eq(metric_value(mt_gw.origin, "payments_psp_requests_total"
                              "{psp=\"mt_pa\",result=\"timeout\"}"), 6);

    /* the new workers count into the same series */
    r = mt_register(&mw, "mt_pb");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    r = mt_register(&mw, "mt_pa");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    mt_counts(&pa, &pb);
    cr_assert_eq(pa, 9, "mt_pa after the reload: %ld", pa);
    cr_assert_eq(pb, 4, "mt_pb after the reload: %ld", pb);

    w.stop = 1;
    pthread_join(wt, NULL);

    cr_assert_gt(w.reads, 0);
    cr_assert_eq(w.pa_drop, -1, "mt_pa's count went from %ld back to %ld",
                 w.pa_drop, w.pa_to);
    cr_assert_eq(w.pb_drop, -1, "mt_pb's count went from %ld back to %ld",
                 w.pb_drop, w.pb_to);
}


/*
 * Reloads that each bring 31 new PSP names beside "mt_keep": more names
 * in all than the metrics' table holds at once.  Every reload is taken
 * (slots of names no longer configured are reused), mt_keep's counts
 * survive them all, and a new name starts from zero.
 */

static gateway_t  mt_many;


static void
stop_mt_many(void)
{
    gateway_stop(&mt_many);
}


static char *
mt_generation(int g)
{
    int    i;
    char  *conf;

    conf = strdup("");

    for (i = 0; i < 31; i++) {
        conf = str_printf("%s%s", conf,
                          gw_psp_conf(str_printf("mt_g%d_%d", g, i),
                                      "stripe"));
    }

    return conf;
}


Test(solo_metrics, reloads_through_more_psp_names_than_the_table_holds_keep_a_psps_counts,
     .timeout = 120, .fini = stop_mt_many)
{
    int          g, i;
    char        *gen, *next;
    json_t      *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    gen = mt_generation(0);
    gateway_start(&mt_many, "metrics-many", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_sweeper off;\n"
        "%s%s", pg_gateway_conninfo(), gw_psp_conf("mt_keep", "stripe"),
        gen));
    gateway_wait_ready(&mt_many, 10);

    for (i = 0; i < 2; i++) {
        co = checkout_new(uid("co"), 1);
        json_object_set_new(co, "psp", json_string("mt_keep"));
        r = gateway_send(&mt_many, "POST", PATH_PAYMENTS, &m, uid("key"),
                         dump(co));
        cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
        resp_free(r);
    }

    cr_assert_eq(metric_value(mt_many.origin, "payments_psp_requests_total"
                              "{psp=\"mt_keep\",result=\"created\"}"), 2);

    /* four generations of other names, each replacing the last */
    for (g = 1; g <= 4; g++) {
        next = mt_generation(g);
        gateway_reload(&mt_many, gen, next);
        gen = next;

        cr_assert_eq(metric_value(mt_many.origin,
                                  "payments_psp_requests_total"
                                  "{psp=\"mt_keep\",result=\"created\"}"),
                     2, "mt_keep's count lost at reload %d", g);
        cr_assert_eq(metric_value(mt_many.origin, str_printf(
                                  "payments_psp_requests_total"
                                  "{psp=\"mt_g%d_30\",result=\"created\"}",
                                  g)),
                     0, "a new PSP inherited counts at reload %d", g);
    }

    cr_assert(!file_contains(mt_many.error_log, "no metrics slot"));

    co = checkout_new(uid("co"), 1);
    json_object_set_new(co, "psp", json_string("mt_keep"));
    r = gateway_send(&mt_many, "POST", PATH_PAYMENTS, &m, uid("key"),
                     dump(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    cr_assert_eq(metric_value(mt_many.origin, "payments_psp_requests_total"
                              "{psp=\"mt_keep\",result=\"created\"}"), 3);
}


/* --- a query's wait for a connection ---------------------------------------- */

typedef struct {
    const merchant_t  *m;
    resp_t            *r;
} mt_held_t;


static void *
mt_held_post(void *arg)
{
    mt_held_t  *h = arg;

    h->r = gateway_send(&mt_gw, "POST", PATH_PAYMENTS, h->m, uid("key"),
                        dump(checkout_new(uid("co"), 1)));
    return NULL;
}


/*
 * payments_db_wait_seconds counts every query by how long it waited for a
 * connection of its pool: what tells an operator the pool is too small
 * (or the database too slow) before the registrations' latency does.  A
 * gateway of the test's own with one connection; two registrations' claims
 * are held by a lock on idempotency_keys for 600 ms: the first holds the
 * connection, the second's claim waits in the queue behind it.
 */
Test(solo_metrics, a_query_waiting_for_a_connection_is_counted_by_its_wait,
     .timeout = E2E_TIMEOUT)
{
    int         i;
    long        count, under, quick, quick0, count0;
    double      sum0;
    PGconn     *c;
    resp_t     *r;
    pthread_t   th[2];
    mt_held_t   h[2];
    merchant_t  m;

    gateway_start(&mt_gw, "metrics-wait", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_database_queue 4;\n"
        "payments_sweeper off;\n"
        "payments_auth_cache 60s;\n"
        "%s", pg_gateway_conninfo(), mt_psp(env("PAY_TEST_PSP"))));
    gateway_wait_ready(&mt_gw, 10);

    /* one registration (the key cached); past worker 0's first purge of
     * idempotency keys, a second after it started, which the lock below
     * would hold */
    merchant_new(&m);
    r = gateway_send(&mt_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     dump(checkout_new(uid("co"), 1)));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
    msleep(1500);

    count0 = metric_value(mt_gw.origin, "payments_db_wait_seconds_count");
    quick0 = metric_value(mt_gw.origin,
                          "payments_db_wait_seconds_bucket{le=\"0.001\"}");
    sum0 = metric_value(mt_gw.origin, "payments_db_wait_seconds_sum");
    cr_assert(count0 >= 2 && quick0 >= 1 && sum0 >= 0,
              "before: %ld queries, %ld under 1 ms", count0, quick0);

    c = db_lock_table("idempotency_keys");

    for (i = 0; i < 2; i++) {
        h[i].m = &m;
        h[i].r = NULL;
        cr_assert_eq(pthread_create(&th[i], NULL, mt_held_post, &h[i]), 0);
        msleep(100);
    }

    msleep(500);
    db_unlock(c);

    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(h[i].r->status, 201, "%s", h[i].r->body);
    }

    /* the second claim waited about 500 ms; every other query none */
    count = metric_value(mt_gw.origin, "payments_db_wait_seconds_count");
    under = metric_value(mt_gw.origin,
                         "payments_db_wait_seconds_bucket{le=\"0.25\"}");
    quick = metric_value(mt_gw.origin,
                         "payments_db_wait_seconds_bucket{le=\"0.001\"}");
    cr_assert_geq(count, count0 + 4, "two claims, two finishes: %ld -> %ld",
                  count0, count);
    cr_assert_geq(count - under, 1, "no query counted as waiting 250 ms"
                  " or more (%ld queries, %ld under 250 ms)", count, under);
    cr_assert_geq(quick, quick0 + 1, "the first claim did not wait");
    cr_assert_geq(metric_value(mt_gw.origin, "payments_db_wait_seconds_sum")
                  - sum0, 0.35, "the wait's seconds not summed");
}
