/*
 * End to end: PSP retries and the circuit breaker (issue 9, part 1).  A
 * gateway of the test's own (gateway_start, two workers) with the mock's
 * Stripe API as "br_stripe": breaker=3 failures in a row, open for 2 s,
 * one attempt per registration (retries=0) so that each registration is
 * one failure; and "br_retry" with retries=2 for Retry-After.  A solo
 * suite: the fault rules match this test's merchants only, but its timings
 * want a quiet machine.
 */

#include "harness.h"

#include <pthread.h>
#include <time.h>


static gateway_t  br;


static void
stop_br(void)
{
    gateway_stop(&br);
}


static void
start_br(void)
{
    char    *psp1, *psp2, *psp3, *psp4;

    psp1 = gw_psp_conf("br_stripe", "stripe");
    psp2 = gw_psp_conf("br_retry", "stripe");
    psp3 = gw_psp_conf("br_cut", "stripe");
    psp4 = gw_psp_conf("br_adyen", "adyen");

    /* the lines end "allow_http;\n": add the policy before the ';' */
    psp1[strlen(psp1) - 2] = '\0';
    psp2[strlen(psp2) - 2] = '\0';
    psp3[strlen(psp3) - 2] = '\0';
    psp4[strlen(psp4) - 2] = '\0';

    gateway_start(&br, "breaker", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 2500ms;\n"
        "payments_idempotency_lease 20s;\n"
        "%s retries=0 breaker=3 breaker_open=2s;\n"
        "%s retries=2 retry_base=100ms retry_max=400ms breaker=0;\n"
        "%s retries=2 retry_base=100ms retry_max=200ms breaker=3;\n"
        "%s retries=0 breaker=2 breaker_open=30s;\n",
        pg_gateway_conninfo(), psp1, psp2, psp3, psp4));

    gateway_wait_ready(&br, 10);
}


static resp_t *
register_via(const merchant_t *m, const char *co_id, const char *psp)
{
    json_t  *co;

    co = checkout_new(co_id, 1);
    json_object_set_new(co, "psp", json_string(psp));

    return gateway_send(&br, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
}


static long
metric_of(const char *family, const char *psp)
{
    long         v;
    char        *line;
    resp_t      *r;
    const char  *p;

    r = gateway_get(&br, "/metrics");
    cr_assert_eq(r->status, 200);

    line = str_printf("%s{psp=\"%s\"} ", family, psp);
    p = strstr(r->body, line);
    cr_assert_not_null(p, "no %s in /metrics", line);
    v = strtol(p + strlen(line), NULL, 10);
    resp_free(r);

    return v;
}


static long
circuit_state(const char *psp)
{
    return metric_of("payments_psp_circuit_state", psp);
}


TestSuite(solo_breaker, .timeout = 60, .fini = stop_br);


Test(solo_breaker, failures_in_a_row_open_the_circuit_and_the_psp_gets_no_call)
{
    int          i;
    long         sessions, requests;
    char        *co_id, *ra;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    /* every registration of this merchant fails at the PSP, three times */
    mock_fault(str_printf("{\"match\":\"%s:\",\"fail_times\":3,"
                          "\"fail_status\":500}", m.id));

    for (i = 0; i < 3; i++) {
        r = register_via(&m, uid("co"), "br_stripe");
        expect_problem(r, 502, "psp_unavailable");
        resp_free(r);
    }

    cr_assert_eq(circuit_state("br_stripe"), 1, "open after 3 failures");

    /* open: 503 at once with Retry-After, the PSP never asked, nothing
     * stored; whichever worker answers */
    for (i = 0; i < 6; i++) {
        co_id = uid("co");
        r = register_via(&m, co_id, "br_stripe");
        expect_problem(r, 503, "psp_unavailable");

        ra = (char *) resp_header(r, "Retry-After");
        cr_assert_not_null(ra, "a 503 without Retry-After");
        cr_assert(atol(ra) >= 1 && atol(ra) <= 2, "Retry-After: %s", ra);
        cr_assert(r->seconds < 0.5, "not at once: %.2f s", r->seconds);

        mock_registrations(nonce(&m, co_id), &sessions, &requests);
        cr_assert_eq(requests, 0, "the PSP was called while open");
        cr_assert_null(db_scalar("SELECT 1 FROM checkouts WHERE "
                                 "merchant_id = $1 AND checkout_id = $2", 2,
                                 (const char *[]) { m.id, co_id }),
                       "a refused registration left a checkout");
        cr_assert_str_eq(db_scalar("SELECT detail->>'reason' FROM audit_log "
                                   "WHERE merchant_id = $1 "
                                   "AND checkout_id = $2 "
                                   "AND action = 'registration:abandoned'",
                                   2, (const char *[]) { m.id, co_id }),
                         "psp_circuit_open");
        resp_free(r);
    }

    /* another PSP is not affected */
    r = register_via(&m, uid("co"), "br_retry");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    /* after the cool-down one probe goes; the PSP is well: closed */
    msleep(2100);
    co_id = uid("co");
    r = register_via(&m, co_id, "br_stripe");
    cr_assert_eq(r->status, 201, "the probe: %ld %s", r->status, r->body);
    resp_free(r);
    cr_assert_eq(circuit_state("br_stripe"), 0, "closed after the probe");

    cr_assert(file_contains(br.error_log, "circuit open for 2000ms"));
    cr_assert(file_contains(br.error_log, "circuit closed, the probe "
                                          "succeeded"));
}


Test(solo_breaker, an_attempt_cut_short_by_the_requests_budget_is_not_a_psp_failure,
     .description = "a PSP that hangs: two attempts of 1 s time out, the "
                    "third has only what is left of the 2.5 s budget and "
                    "times out too; two failures, not three (the breaker "
                    "opens at three: it used to open on this one request)")
{
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    mock_fault(str_printf("{\"match\":\"%s:\",\"hang_ms\":3000}", m.id));

    r = register_via(&m, uid("co"), "br_cut");
    expect_problem(r, 504, "psp_unavailable");
    resp_free(r);

    cr_assert_eq(circuit_state("br_cut"), 0, "the cut attempt counted");
}


Test(solo_breaker, a_failed_probe_opens_the_circuit_again)
{
    int          i;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    mock_fault(str_printf("{\"match\":\"%s:\",\"fail_times\":4,"
                          "\"fail_status\":503}", m.id));

    for (i = 0; i < 3; i++) {
        resp_free(register_via(&m, uid("co"), "br_stripe"));
    }

    cr_assert_eq(circuit_state("br_stripe"), 1);
    msleep(2100);

    /* the probe meets the fourth failure */
    r = register_via(&m, uid("co"), "br_stripe");
    expect_problem(r, 502, "psp_unavailable");
    resp_free(r);
    cr_assert_eq(circuit_state("br_stripe"), 1, "open again");

    r = register_via(&m, uid("co"), "br_stripe");
    expect_problem(r, 503, "psp_unavailable");
    resp_free(r);
}


Test(solo_breaker, a_429_with_retry_after_is_waited_for_within_the_budget)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":429,\"retry_after\":1}",
                          nonce(&m, co_id)));

    r = register_via(&m, co_id, "br_retry");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert(r->seconds >= 1.0, "the retry came %.2f s later, before the "
              "PSP's Retry-After", r->seconds);
    resp_free(r);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 2, "same nonce, one retry");
}


Test(solo_breaker, a_retry_after_beyond_the_budget_fails_at_once_and_says_so)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":429,\"retry_after\":30}",
                          nonce(&m, co_id)));

    r = register_via(&m, co_id, "br_retry");
    expect_problem(r, 502, "psp_unavailable");
    cr_assert(r->seconds < 1.0, "waited %.2f s for nothing", r->seconds);
    cr_assert_str_eq(resp_header(r, "Retry-After"), "30");
    resp_free(r);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 1, "no retry the PSP asked not to get");
}


/* A PSP's 500 with Retry-After is answered as its 503 is: the wait is kept
 * within the budget, and the 502 passes the PSP's time on to the shop. */
Test(solo_breaker, a_500_with_retry_after_is_passed_on_like_a_503s)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":4,"
                          "\"fail_status\":500,\"retry_after\":2}",
                          nonce(&m, co_id)));

    r = register_via(&m, co_id, "br_retry");
    expect_problem(r, 502, "psp_unavailable");
    cr_assert_not_null(resp_header(r, "Retry-After"),
                       "the PSP's Retry-After was not passed on: %s", r->body);
    cr_assert_str_eq(resp_header(r, "Retry-After"), "2");
    resp_free(r);

    /* it waited the PSP's 2 s before its one retry, then had no time left */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 2, "the PSP's Retry-After was not waited for");
}


Test(solo_breaker, another_4xx_is_not_retried)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    /* 413 from the PSP: the same bytes would get the same answer */
    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":413}", nonce(&m, co_id)));

    r = register_via(&m, co_id, "br_retry");
    expect_problem(r, 502, "psp_unavailable");
    resp_free(r);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 1, "a 413 was retried");
}


Test(solo_breaker, backoff_retries_resend_the_same_bytes_under_the_same_nonce)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_br();

    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":2,"
                          "\"fail_status\":500}", nonce(&m, co_id)));

    r = register_via(&m, co_id, "br_retry");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    /* the mock's idempotency check refuses other bytes under a key:
     * three requests, one session */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 3);
    cr_assert_eq(sessions, 1);
}


/*
 * A reload that reorders the PSPs while the old workers still have calls in
 * flight: "br_pa" hangs (each call times out at 2 s), "br_pb" is well.  The
 * old workers' failures of br_pa land after the reload, whose PSP list
 * starts with br_pb: each breaker must stay with its PSP (a breaker kept
 * by position opened br_pb's, and the new workers answered 503 for it).
 */

static gateway_t  br_reorder;


static void
stop_br_reorder(void)
{
    gateway_stop(&br_reorder);
}


static resp_t *
register_at(const gateway_t *gw, const merchant_t *m, const char *psp)
{
    json_t  *co;

    co = checkout_new(uid("co"), 1);
    json_object_set_new(co, "psp", json_string(psp));

    return gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
}


static long
circuit_state_at(const gateway_t *gw, const char *psp)
{
    long         v;
    char        *line;
    resp_t      *r;
    const char  *p;

    r = gateway_get(gw, "/metrics");
    cr_assert_eq(r->status, 200);

    line = str_printf("payments_psp_circuit_state{psp=\"%s\"} ", psp);
    p = strstr(r->body, line);
    cr_assert_not_null(p, "no %s in /metrics", line);
    v = strtol(p + strlen(line), NULL, 10);
    resp_free(r);

    return v;
}


/* the PSP's line for these tests: one attempt of 2 s, open at 3 failures */
static char *
reorder_psp(const char *name)
{
    char  *psp;

    psp = gw_psp_conf(name, "stripe");
    psp[strlen(psp) - 2] = '\0';

    return str_printf("%s timeout=2s retries=0 breaker=3 breaker_open=30s;\n",
                      psp);
}


typedef struct {
    const merchant_t  *m;
    size_t             n;
    long               status[8];
} reorder_load_t;


static void *
reorder_load(void *arg)
{
    size_t           i;
    req_t            rqs[8];
    json_t          *co;
    resp_t         **rs;
    const char     **h;
    reorder_load_t  *l = arg;

    for (i = 0; i < l->n; i++) {
        h = calloc(4, sizeof(const char *));
        cr_assert_not_null(h);
        h[0] = str_printf("Authorization: Bearer %s", l->m->key);
        h[1] = "Content-Type: application/json";
        h[2] = str_printf("Idempotency-Key: %s", uid("key"));

        co = checkout_new(uid("co"), 1);
        json_object_set_new(co, "psp", json_string("br_pa"));

        rqs[i].method = "POST";
        rqs[i].url = str_printf("%s%s", br_reorder.origin, PATH_PAYMENTS);
        rqs[i].headers = h;
        rqs[i].body = dump(co);
        rqs[i].len = (size_t) -1;
    }

    rs = http_many(rqs, l->n, l->n);

    for (i = 0; i < l->n; i++) {
        l->status[i] = rs[i]->status;
    }

    return NULL;
}


Test(solo_breaker, a_reload_that_reorders_the_psps_keeps_each_breaker_with_its_psp,
     .fini = stop_br_reorder)
{
    int              i;
    char            *pa, *pb;
    resp_t          *r;
    pthread_t        th;
    merchant_t       ma, mb;
    reorder_load_t   l;

    merchant_new(&ma);
    merchant_new(&mb);

    pa = reorder_psp("br_pa");
    pb = reorder_psp("br_pb");

    gateway_start(&br_reorder, "breaker-reorder", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 5s;\n"
        "payments_idempotency_lease 60s;\n"
        "%s%s", pg_gateway_conninfo(), pa, pb));
    gateway_wait_ready(&br_reorder, 10);

    /* every call for ma hangs past br_pa's timeout */
    mock_fault(str_printf("{\"match\":\"%s:\",\"hang_ms\":4000}", ma.id));

    l.m = &ma;
    l.n = 6;
    cr_assert_eq(pthread_create(&th, NULL, reorder_load, &l), 0);

    /* the six are in flight in the old workers: the lines swapped */
    msleep(400);
    gateway_reload(&br_reorder, str_printf("%s%s", pa, pb),
                   str_printf("%s%s", pb, pa));

    pthread_join(th, NULL);

    for (i = 0; i < 6; i++) {
        cr_assert_eq(l.status[i], 504, "br_pa's call %d: %ld", i,
                     l.status[i]);
    }

    /* the old workers' six failures opened br_pa's breaker, not br_pb's */
    cr_assert_eq(circuit_state_at(&br_reorder, "br_pa"), 1,
                 "br_pa's breaker did not open");
    cr_assert_eq(circuit_state_at(&br_reorder, "br_pb"), 0,
                 "br_pb's breaker opened on br_pa's failures");

    /* the new workers: br_pb answers, br_pa is shed */
    for (i = 0; i < 4; i++) {
        r = register_at(&br_reorder, &mb, "br_pb");
        cr_assert_eq(r->status, 201, "br_pb: %ld %s", r->status, r->body);
        resp_free(r);
    }

    r = register_at(&br_reorder, &ma, "br_pa");
    expect_problem(r, 503, "psp_unavailable");
    resp_free(r);
}


/*
 * Reloads that each bring 31 new PSP names beside "br_keep": 4 x 31 names
 * in all, more than the breakers' table holds at once.  Every reload is
 * taken (slots of names no longer configured are reused), and br_keep's
 * open circuit survives them all.
 */

static gateway_t  br_many;


static void
stop_br_many(void)
{
    gateway_stop(&br_many);
}


static char *
many_psps(int generation)
{
    int    i;
    char  *conf, *psp;

    conf = strdup("");

    for (i = 0; i < 31; i++) {
        psp = gw_psp_conf(str_printf("br_g%d_%d", generation, i), "stripe");
        conf = str_printf("%s%s", conf, psp);
    }

    return conf;
}


Test(solo_breaker, reloads_through_more_psp_names_than_the_table_holds_keep_each_breaker,
     .timeout = 120, .fini = stop_br_many)
{
    int          g, i;
    char        *keep, *gen;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    keep = gw_psp_conf("br_keep", "stripe");
    keep[strlen(keep) - 2] = '\0';
    keep = str_printf("%s retries=0 breaker=2 breaker_open=60s;\n", keep);

    gen = many_psps(0);
    gateway_start(&br_many, "breaker-many", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 2500ms;\n"
        "payments_idempotency_lease 20s;\n"
        "%s%s", pg_gateway_conninfo(), keep, gen));
    gateway_wait_ready(&br_many, 10);

    /* br_keep's circuit opens */
    mock_fault(str_printf("{\"match\":\"%s:\",\"fail_times\":2,"
                          "\"fail_status\":500}", m.id));

    for (i = 0; i < 2; i++) {
        r = register_at(&br_many, &m, "br_keep");
        expect_problem(r, 502, "psp_unavailable");
        resp_free(r);
    }

    cr_assert_eq(circuit_state_at(&br_many, "br_keep"), 1);

    /* four generations of other names, each replacing the last */
    for (g = 1; g <= 4; g++) {
        char  *next = many_psps(g);

        gateway_reload(&br_many, gen, next);
        gen = next;

        cr_assert_eq(circuit_state_at(&br_many, "br_keep"), 1,
                     "br_keep's state lost at reload %d", g);
        cr_assert_eq(circuit_state_at(&br_many,
                                      str_printf("br_g%d_30", g)), 0,
                     "a new PSP inherited a state at reload %d", g);
    }

    cr_assert(!file_contains(br_many.error_log, "no circuit breaker slot"));

    /* still open: shed, the PSP not called; a new PSP answers */
    r = register_at(&br_many, &m, "br_keep");
    expect_problem(r, 503, "psp_unavailable");
    resp_free(r);

    r = register_at(&br_many, &m, "br_g4_7");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
}


/*
 * Adyen's pay-outs go to its Transfers API, on another host than its
 * Checkout API: the two have a breaker each.  Pay-outs failing open the
 * transfers breaker and shed the next pay-out without calling; the PSP's
 * registrations go on (one breaker for both answered them 503 too).
 */
Test(solo_breaker, pay_outs_failing_at_a_transfers_api_never_shed_registrations,
     .timeout = 90)
{
    int          i;
    long         sessions, requests;
    char        *co_id, *out;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;
    const char  *args[] = { "add-seller", "--id", NULL, "--seller", "seller_1",
                            "--psp", "br_adyen", "--destination",
                            "BA00000000000000000000001", NULL };
    const char  *params[2];

    merchant_new(&m);
    start_br();

    /* 10.00 USD in seller_1's wallet: a checkout paid at the suite's Adyen
     * (the main gateway's: the mock's notifications go there) */
    co_id = uid("co");
    body = checkout_new(co_id, 1);
    json_object_set_new(body, "psp", json_string("mock_adyen"));
    r = register_ok(&m, uid("key"), dump(body));
    r = http(&(req_t) {
        "POST", mock_url(str_printf("/_control/sessions/%s/pay",
                                    json_string_value(json_object_get(
                                        resp_json(r), "psp_token")))),
        NULL, "", (size_t) -1 });
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    params[0] = m.id;
    params[1] = co_id;

    for (i = 0; i < 100; i++) {
        if (strcmp(db_scalar("SELECT count(*) FROM checkouts WHERE "
                             "merchant_id = $1 AND checkout_id = $2 AND "
                             "status = 'SUCCESS'", 2, params), "1") == 0)
        {
            break;
        }
        msleep(100);
    }
    cr_assert_lt(i, 100, "checkout %s not paid", co_id);

    args[2] = m.id;
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);

    /* every transfer of this merchant fails at the PSP: two in a row open
     * the transfers breaker (breaker=2) */
    mock_fault(str_printf("{\"match\":\"%s:pyo_\",\"fail_times\":100,"
                          "\"fail_status\":500}", m.id));

    for (i = 0; i < 2; i++) {
        r = gateway_send(&br, "POST", "/v1/payouts", &m, uid("pk"),
                         "{\"seller_account\":\"seller_1\",\"amount\":"
                         "\"1.00\",\"currency\":\"USD\",\"psp\":"
                         "\"br_adyen\"}");
        cr_assert(r->status >= 500, "pay-out %d: %ld %s", i, r->status,
                  r->body);
        expect_problem(r, r->status, "psp_unavailable");
        resp_free(r);
    }

    /* the next pay-out is shed: 503 at once, the PSP never asked */
    r = gateway_send(&br, "POST", "/v1/payouts", &m, uid("pk"),
                     "{\"seller_account\":\"seller_1\",\"amount\":"
                     "\"1.00\",\"currency\":\"USD\",\"psp\":"
                     "\"br_adyen\"}");
    expect_problem(r, 503, "psp_unavailable");
    cr_assert_not_null(resp_header(r, "Retry-After"));
    cr_assert(r->seconds < 0.5, "not at once: %.2f s", r->seconds);
    resp_free(r);

    /* and the same PSP's registrations go on */
    co_id = uid("co");
    r = register_via(&m, co_id, "br_adyen");
    cr_assert_eq(r->status, 201, "a registration at br_adyen: %ld %s",
                 r->status, r->body);
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    resp_free(r);

    cr_assert_eq(metric_of("payments_psp_transfers_circuit_state",
                           "br_adyen"), 1, "the transfers circuit is open");
    cr_assert_eq(circuit_state("br_adyen"), 0,
                 "the PSP's own circuit stays closed");
}
