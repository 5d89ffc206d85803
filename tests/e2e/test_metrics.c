/*
 * End to end: GET /metrics (issue #4).  Each counter is read, something is
 * done, and the counter must have moved by at least that much (other tests
 * run at the same time, so never "exactly").
 */

#include "harness.h"

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
        /* not recorded: answered so that the PSP delivers it again */
        cr_assert_eq(http(&rq)->status, 404);
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
