/*
 * End to end: routing across PSPs (payments_route).  Each test starts a
 * gateway of its own whose routes name the test's merchant: the mock's
 * Stripe API as "rt_stripe" (one attempt per registration; its breaker
 * opens at the first failure in the test of an open circuit only), its
 * Adyen API as "rt_adyen", and "rt_dead", a Stripe PSP on a port nothing
 * listens on.  A checkout moves on to the route's next PSP only after an
 * outcome that proves no session was made; after any other it stays bound
 * to its PSP, and a retry resumes there.  The mock counts registrations per Idempotency-Key (the nonce)
 * over every API: "one session in all" is its count.
 */

#include "harness.h"
#include "sqltest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>


static gateway_t  rt;


static void
stop_rt(void)
{
    gateway_stop(&rt);
}



/* a PSP of the dialect called name at port of 127.0.0.1 */
static char *
psp_dialect_at_line(const char *name, const char *dialect, long port)
{
    char        *s, *at;
    const char  *mock = env("PAY_TEST_MOCK");

    s = gw_psp_conf_with(name, dialect, "retries=0 breaker=0");

    at = strstr(s, mock);
    cr_assert_not_null(at);
    *at = '\0';

    /* the url only: hosted= keeps the mock's origin */
    return str_printf("%s%s%s", s, str_printf("http://127.0.0.1:%ld", port),
                      at + strlen(mock));
}


/* a Stripe PSP called name at port of 127.0.0.1 */
static char *
psp_at_line(const char *name, long port)
{
    return psp_dialect_at_line(name, "stripe", port);
}


static char *
dead_psp_line(void)
{
    return psp_at_line("rt_dead", free_port());
}


/* stripe: rt_stripe's retry and breaker policy */
static void
start_rt_with(const char *routes, const char *stripe)
{
    gateway_start(&rt, "routing", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 2500ms;\n"
        "payments_idempotency_lease 20s;\n"
        "%s%s%s%s",
        pg_gateway_conninfo(),
        gw_psp_conf_with("rt_stripe", "stripe", stripe),
        gw_psp_conf_with("rt_adyen", "adyen", "retries=0 breaker=0"),
        dead_psp_line(), routes));

    gateway_wait_ready(&rt, 10);
}


static void
start_rt(const char *routes)
{
    start_rt_with(routes, "retries=0 breaker=0");
}


/* the same, with the risk check of the suite's review.risk.test (the
 * mock's provider holds risk-review@ for review) and the review API */
static void
start_rt_review(const char *routes)
{
    const char  *root = env("PAY_TEST_RUN");

    start_rt_with(str_printf(
        "%s"
        "payments_admin_key_file %s;\n"
        "payments_risk url=%s/risk secret_file=%s/conf/risk.secret\n"
        "    answer_secret_file=%s/conf/risk_answer.secret\n"
        "    timeout=1s connect_timeout=1s allow_http;\n",
        routes, env("PAY_TEST_ADMIN_KEY"), env("PAY_TEST_RISK"), root, root),
        "retries=0 breaker=0");
}


/* a checkout of amount minor units in currency, without "psp" */
static char *
routed_body(const char *co_id, const char *amount, const char *currency)
{
    json_t  *co, *o;

    co = checkout_new(co_id, 1);
    json_object_del(co, "psp");

    o = order_of(co, 0);
    json_object_set_new(o, "amount", json_string(amount));
    json_object_set_new(o, "currency", json_string(currency));

    return dump(co);
}


/* POST /v1/payments; the answer's psp on 201 (else NULL), *status set */
static char *
register_routed(const merchant_t *m, const char *key, const char *body,
    long *status)
{
    char    *psp;
    json_t  *j;
    resp_t  *r;

    r = gateway_send(&rt, "POST", PATH_PAYMENTS, m, key, body);
    *status = r->status;

    if (r->status != 201) {
        cr_log_info("%ld %s", r->status, r->body);
        resp_free(r);
        return NULL;
    }

    j = resp_json(r);
    psp = strdup(json_string_value(json_object_get(j, "psp")));
    resp_free(r);

    return psp;
}


/* routed_body()'s checkout, held for review by the risk check */
static char *
routed_review_body(const char *co_id)
{
    json_t  *co;

    co = json_loads(routed_body(co_id, "10.00", "EUR"), 0, NULL);
    cr_assert_not_null(co);
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string("risk-review@example.com"));

    return dump(co);
}


/* PSP registration attempts at psp with this result, counted by rt */
static double
psp_attempts(const char *psp, const char *result)
{
    return metric_value(rt.origin,
                        str_printf("payments_psp_requests_total{psp=\"%s\","
                                   "result=\"%s\"}", psp, result));
}


static char *
checkout_psp(const merchant_t *m, const char *co_id)
{
    return db_scalar("SELECT psp FROM checkouts WHERE merchant_id = $1 "
                     "AND checkout_id = $2", 2,
                     (const char *[]) { m->id, co_id });
}


/* the checkout's route record: "psp:moved_on,psp:" in order */
static char *
route_record(const merchant_t *m, const char *co_id)
{
    return db_scalar("SELECT string_agg(psp || ':' || coalesce(moved_on, ''), "
                     "',' ORDER BY seq) FROM checkout_routes "
                     "WHERE merchant_id = $1 AND checkout_id = $2", 2,
                     (const char *[]) { m->id, co_id });
}


/* route rows recorded in another transaction than the checkout's claim
 * (now() is the transaction's start: the claim's rows share it) */
static char *
route_rows_after_claim(const merchant_t *m, const char *co_id)
{
    return db_scalar("SELECT count(*) FROM checkout_routes r "
                     "JOIN checkouts c USING (merchant_id, checkout_id) "
                     "WHERE r.merchant_id = $1 AND r.checkout_id = $2 "
                     "AND r.at <> c.created_at", 2,
                     (const char *[]) { m->id, co_id });
}


TestSuite(routing, .timeout = 180, .fini = stop_rt);


Test(routing, a_route_by_currency_and_amount_picks_its_psp)
{
    long         status;
    char        *co_small, *co_big, *co_gbp, *psp;
    resp_t      *r;
    json_t      *j;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf(
        "payments_route name=small_eur currency=EUR amount<=5000 "
        "merchant=%s psps=rt_adyen;\n"
        "payments_route name=eur currency=EUR,GBP amount>=5001 "
        "merchant=%s psps=rt_stripe;\n",
        m.id, m.id));

    co_small = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_small, "50.00",
                                                       "EUR"), &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_adyen");

    co_big = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_big, "50.01", "EUR"),
                          &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_stripe");

    cr_assert_str_eq(checkout_psp(&m, co_small), "rt_adyen");
    cr_assert_str_eq(route_record(&m, co_small), "rt_adyen:");
    /* the route is recorded by the claim, in its transaction */
    cr_assert_str_eq(route_rows_after_claim(&m, co_small), "0");
    cr_assert_str_eq(db_scalar("SELECT detail->>'route' FROM audit_log "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND action = 'registration:routed'", 2,
                               (const char *[]) { m.id, co_big }),
                     "eur");

    /* GET /v1/checkouts/{id} names the PSP that holds the session */
    r = gateway_send(&rt, "GET", str_printf("/v1/checkouts/%s", co_big), &m,
                     NULL, NULL);
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "psp")),
                     "rt_stripe");
    resp_free(r);

    /* no route for USD, nor a psp: refused, nothing stored */
    co_gbp = uid("co");
    r = gateway_send(&rt, "POST", PATH_PAYMENTS, &m, uid("key"),
                     routed_body(co_gbp, "10.00", "USD"));
    expect_problem(r, 400, "invalid_request");
    cr_assert(strstr(r->body, "payments_route") != NULL, "%s", r->body);
    resp_free(r);
    cr_assert_null(checkout_psp(&m, co_gbp));
}


Test(routing, a_70_30_split_over_1000_checkouts_and_retries_land_on_their_first_choice)
{
    int          i, n, stripe;
    long         status;
    char        *co_id, *key, *body, *psp, *again;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf("payments_route name=split merchant=%s "
                        "psps=rt_stripe:70,rt_adyen:30;\n", m.id));

    n = 1000;
    stripe = 0;

    for (i = 0; i < n; i++) {
        co_id = uid("co");
        key = uid("key");
        body = routed_body(co_id, "10.00", "EUR");

        psp = register_routed(&m, key, body, &status);
        cr_assert_eq(status, 201);

        if (strcmp(psp, "rt_stripe") == 0) {
            stripe++;

        } else {
            cr_assert_str_eq(psp, "rt_adyen");
        }

        /* every tenth is sent again: the same answer, the same PSP */
        if (i % 10 == 0) {
            again = register_routed(&m, key, body, &status);
            cr_assert_eq(status, 201);
            cr_assert_str_eq(again, psp);
        }
    }

    cr_log_info("rt_stripe %d of %d", stripe, n);
    cr_assert_eq(metric_value(rt.origin,
                              "payments_route_decisions_total{route=\"split\","
                              "psp=\"rt_stripe\",outcome=\"first\"}"),
                 (double) stripe);
    cr_assert_eq(metric_value(rt.origin, "payments_route_fallbacks_total"),
                 0.0);
    cr_assert(stripe >= 650 && stripe <= 750,
              "rt_stripe got %d of %d, not about 70%%", stripe, n);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkout_routes "
                               "WHERE merchant_id = $1 "
                               "AND moved_on IS NOT NULL", 1,
                               (const char *[]) { m.id }),
                     "0", "a healthy route moved a checkout on");
}


Test(routing, stripes_circuit_open_registers_at_adyen_in_the_same_request)
{
    long         status, sessions, requests;
    char        *co_id, *psp, *file, *out;
    FILE        *f;
    json_t      *j, *routing;
    json_t      *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    start_rt_with(str_printf("payments_route merchant=%s "
                             "psps=rt_stripe,rt_adyen;\n", m.id),
                  "retries=0 breaker=1 breaker_open=60s");

    /* one failure at Stripe opens its circuit (breaker=1) */
    mock_fault(str_printf("{\"match\":\"%s:\",\"api\":\"stripe\","
                          "\"fail_times\":1,\"fail_status\":500}", m.id));
    co = checkout_new(uid("co"), 1);
    json_object_set_new(co, "psp", json_string("rt_stripe"));
    r = gateway_send(&rt, "POST", PATH_PAYMENTS, &m, uid("key"), dump(co));
    expect_problem(r, 502, "psp_unavailable");
    resp_free(r);

    co_id = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_id, "10.00", "EUR"),
                          &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_adyen");

    /* Stripe never saw the nonce; one session in all */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 1);

    cr_assert_str_eq(route_record(&m, co_id),
                     "rt_stripe:circuit_open,rt_adyen:");
    /* Stripe's open circuit was seen before the claim: the checkout was
     * claimed at Adyen, the route and the PSP passed over recorded in the
     * claim's transaction, not claimed, bound and moved on in three */
    cr_assert_str_eq(route_rows_after_claim(&m, co_id), "0");
    cr_assert_str_eq(db_scalar("SELECT string_agg(coalesce(detail->>'psp', "
                               "detail->>'skipped' || ':' || "
                               "(detail->>'skipped_why')), ',' ORDER BY seq) "
                               "FROM audit_log WHERE merchant_id = $1 "
                               "AND checkout_id = $2 "
                               "AND action = 'registration:routed'", 2,
                               (const char *[]) { m.id, co_id }),
                     "rt_stripe:circuit_open,rt_adyen");

    /* the checkout shows it: the PSP holding the session, and the way */
    r = gateway_send(&rt, "GET", str_printf("/v1/checkouts/%s", co_id), &m,
                     NULL, NULL);
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "psp")),
                     "rt_adyen");
    routing = json_object_get(j, "routing");
    cr_assert_str_eq(json_string_value(json_object_get(routing, "route")),
                     "route1");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(routing, "psps"), 0),
                         "moved_on")), "circuit_open");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(routing, "psps"), 1),
                         "psp")), "rt_adyen");
    cr_assert_null(json_object_get(
                       json_array_get(json_object_get(routing, "psps"), 1),
                       "moved_on"));
    resp_free(r);
    cr_assert_eq(metric_value(rt.origin, "payments_route_fallbacks_total"),
                 1.0);
    cr_assert_eq(metric_value(rt.origin,
                              "payments_route_decisions_total{route=\"route1\","
                              "psp=\"rt_stripe\",outcome=\"circuit_open\"}"),
                 1.0);
    cr_assert_eq(metric_value(rt.origin,
                              "payments_route_decisions_total{route=\"route1\","
                              "psp=\"rt_adyen\",outcome=\"fallback\"}"),
                 1.0);

    /* with routing's series, /metrics passes promtool check metrics */
    r = gateway_get(&rt, "/metrics");
    cr_assert_eq(r->status, 200);
    file = run_file(str_printf("logs/metrics-routing-%d.txt", (int) getpid()));
    f = fopen(file, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(r->body, 1, r->len, f), r->len);
    fclose(f);
    resp_free(r);
    cr_assert_eq(run((char *const[]) {
                         "bash", str_printf("%s/ci/prom-test.sh",
                                            env("PAY_TEST_ROOT")),
                         "metrics", file, NULL }, &out), 0, "%s", out);
}


Test(routing, a_refused_connection_moves_on)
{
    long         status, sessions, requests;
    char        *co_id, *psp;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf("payments_route merchant=%s "
                        "psps=rt_dead,rt_adyen;\n", m.id));

    co_id = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_id, "10.00", "EUR"),
                          &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_adyen");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_str_eq(route_record(&m, co_id),
                     "rt_dead:connect_refused,rt_adyen:");
}


Test(routing, a_timeout_holds_the_checkout_and_the_retry_resumes_at_stripe)
{
    long         status, sessions, requests;
    char        *co_id, *key, *body, *psp;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf("payments_route merchant=%s "
                        "psps=rt_stripe,rt_adyen;\n", m.id));

    co_id = uid("co");
    key = uid("key");
    body = routed_body(co_id, "10.00", "EUR");

    mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"stripe\","
                          "\"hang_ms\":3000,\"hang_times\":1}",
                          nonce(&m, co_id)));

    psp = register_routed(&m, key, body, &status);
    cr_assert_null(psp);
    cr_assert(status == 503 || status == 504, "answered %ld", status);

    /* Adyen never asked: the checkout stays at Stripe */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 1);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_stripe");

    psp = register_routed(&m, key, body, &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_stripe");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_str_eq(route_record(&m, co_id), "rt_stripe:");
}


Test(routing, a_dropped_answer_after_the_session_holds_it_one_session_in_all)
{
    long         status, sessions, requests;
    char        *co_id, *key, *body, *psp;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf("payments_route merchant=%s "
                        "psps=rt_stripe,rt_adyen;\n", m.id));

    co_id = uid("co");
    key = uid("key");
    body = routed_body(co_id, "10.00", "EUR");

    mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"stripe\","
                          "\"drop_after_register\":1}", nonce(&m, co_id)));

    psp = register_routed(&m, key, body, &status);
    cr_assert_null(psp);
    cr_assert_eq(status, 502);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1, "Stripe made the session");
    cr_assert_eq(requests, 1, "and Adyen was never asked");

    psp = register_routed(&m, key, body, &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_stripe");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1, "one session in all");
}


Test(routing, a_merchant_restricted_to_some_psps_is_routed_among_them)
{
    long         status;
    char        *co_id, *psp, *out;
    json_t      *co, *routing;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    cr_assert_eq(merchant_toolv((const char *const[]) {
                     "set-psps", "--id", m.id, "--psps", "rt_adyen", NULL },
                     &out), 0, "%s", out);
    start_rt(str_printf("payments_route merchant=%s "
                        "psps=rt_stripe,rt_adyen;\n", m.id));

    co_id = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_id, "10.00", "EUR"),
                          &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_adyen");

    /* the PSP passed over is on the checkout's routing record, as moved
     * on from for psp_not_allowed, and in its GET */
    cr_assert_str_eq(route_record(&m, co_id),
                     "rt_stripe:psp_not_allowed,rt_adyen:");
    r = gateway_send(&rt, "GET", str_printf("/v1/checkouts/%s", co_id), &m,
                     NULL, NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    routing = json_object_get(json_object_get(resp_json(r), "routing"),
                              "psps");
    cr_assert_eq(json_array_size(routing), 2, "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(routing, 0), "psp")), "rt_stripe");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(routing, 0), "moved_on")),
                     "psp_not_allowed");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(routing, 1), "psp")), "rt_adyen");
    cr_assert_null(json_object_get(json_array_get(routing, 1), "moved_on"),
                   "%s", r->body);
    resp_free(r);

    /* named in the request: refused, nothing stored */
    co_id = uid("co");
    co = checkout_new(co_id, 1);
    json_object_set_new(co, "psp", json_string("rt_stripe"));
    r = gateway_send(&rt, "POST", PATH_PAYMENTS, &m, uid("key"), dump(co));
    expect_problem(r, 400, "invalid_request");
    resp_free(r);
    cr_assert_null(checkout_psp(&m, co_id));
    cr_assert_eq(metric_value(rt.origin,
                              "payments_route_decisions_total{route=\"route1\","
                              "psp=\"rt_stripe\","
                              "outcome=\"psp_not_allowed\"}"),
                 1.0);
}


/*
 * A PSP that answers one request on a kept-alive connection, then reads
 * the next one whole, stops listening and closes without an answer.
 */
typedef struct {
    int        lfd;
    pthread_t  th;
    long       second;      /* bytes of the second request read */
} dying_psp_t;


/* one request read whole (headers, then Content-Length bytes); its size */
static long
read_request(int fd)
{
    char     buf[16384], *end, *cl;
    ssize_t  n;
    size_t   got = 0;
    long     want = -1;

    while (got < sizeof(buf) - 1) {
        n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            return -1;
        }

        got += (size_t) n;
        buf[got] = '\0';

        end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            continue;
        }

        if (want < 0) {
            cl = strcasestr(buf, "\r\ncontent-length:");
            want = (end - buf) + 4 + (cl ? strtol(cl + 17, NULL, 10) : 0);
        }

        if ((long) got >= want) {
            return (long) got;
        }
    }

    return -1;
}


static void *
dying_psp_run(void *arg)
{
    int           c;
    char          answer[256];
    dying_psp_t  *d = arg;
    const char   *body = "{\"error\":{\"type\":\"invalid_request_error\","
                         "\"message\":\"no\"}}";

    snprintf(answer, sizeof(answer),
             "HTTP/1.1 400 Bad Request\r\n"
             "Content-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(body), body);

    c = accept(d->lfd, NULL, NULL);
    if (c < 0) {
        return NULL;
    }

    if (read_request(c) > 0 && write(c, answer, strlen(answer)) > 0) {
        d->second = read_request(c);
    }

    close(d->lfd);
    close(c);
    return NULL;
}


static long
dying_psp_start(dying_psp_t *d)
{
    struct sockaddr_in  sa;
    socklen_t           len = sizeof(sa);

    memset(d, 0, sizeof(*d));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* not inherited by the gateway started next: closed, nothing listens */
    d->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(d->lfd, 0);
    cr_assert_eq(bind(d->lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    cr_assert_eq(listen(d->lfd, 4), 0);
    cr_assert_eq(getsockname(d->lfd, (struct sockaddr *) &sa, &len), 0);
    cr_assert_eq(pthread_create(&d->th, NULL, dying_psp_run, d), 0);

    return ntohs(sa.sin_port);
}


/* libcurl sends a request again on a new connection when a kept-alive one
 * dies unanswered; that connect refused is its result, yet the PSP read
 * the request and may have made a session */
Test(routing, a_request_sent_before_a_refused_reconnect_stays_bound)
{
    long         status, port;
    char        *co_first, *co_id;
    merchant_t   m;
    dying_psp_t  d;

    merchant_new(&m);
    port = dying_psp_start(&d);
    start_rt(str_printf("%s"
                        "payments_route merchant=%s psps=rt_dying,rt_adyen;\n",
                        psp_at_line("rt_dying", port), m.id));

    /* refused outright (400): made no session, moves on; the connection
     * stays open for the next */
    co_first = uid("co");
    cr_assert_str_eq(register_routed(&m, uid("key"),
                                     routed_body(co_first, "10.00", "EUR"),
                                     &status), "rt_adyen");
    cr_assert_str_eq(route_record(&m, co_first), "rt_dying:refused,rt_adyen:");

    co_id = uid("co");
    cr_assert_null(register_routed(&m, uid("key"),
                                   routed_body(co_id, "10.00", "EUR"),
                                   &status));
    cr_assert_eq(pthread_join(d.th, NULL), 0);
    cr_assert_gt(d.second, 0, "the PSP never read the second request");

    cr_assert_eq(status, 502, "status %ld", status);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_dying");
    cr_assert_str_eq(route_record(&m, co_id), "rt_dying:");
}


/* Stripe takes a session 30 min ahead at the least: a checkout that
 * expires sooner never moves on to it (it would refuse the session, and
 * the checkout end FAILED); it stays where it was, for the retry */
Test(routing, moving_on_passes_over_a_psp_that_cannot_take_its_expires_at)
{
    long         status;
    char        *co_id, *body;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf("%s"
                        "payments_route merchant=%s "
                        "psps=rt_dead_adyen,rt_stripe;\n",
                        psp_dialect_at_line("rt_dead_adyen", "adyen",
                                            free_port()), m.id));

    co_id = uid("co");
    co = json_loads(routed_body(co_id, "10.00", "EUR"), 0, NULL);
    cr_assert_not_null(co);
    json_object_set_new(co, "expires_at",
                        json_integer((json_int_t) time(NULL) + 20 * 60));
    body = dump(co);

    cr_assert_null(register_routed(&m, uid("key"), body, &status));
    cr_assert_eq(status, 502, "status %ld", status);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_dead_adyen");
    cr_assert_str_eq(route_record(&m, co_id), "rt_dead_adyen:");
}


/* a merchant held to Adyen, a route whose first is Stripe: Adyen cannot
 * take IDR's decimals, so no PSP it may use takes the checkout: 400,
 * nothing stored */
Test(routing, no_psp_the_merchant_may_use_takes_it_is_a_400)
{
    long         status;
    char        *co_id, *out;
    merchant_t   m;

    merchant_new(&m);
    cr_assert_eq(merchant_toolv((const char *const[]) {
                     "set-psps", "--id", m.id, "--psps", "rt_adyen",
                     NULL }, &out), 0, "%s", out);
    start_rt(str_printf("payments_route merchant=%s "
                        "psps=rt_stripe,rt_adyen;\n", m.id));

    co_id = uid("co");
    cr_assert_null(register_routed(&m, uid("key"),
                                   routed_body(co_id, "10.50", "IDR"),
                                   &status));
    cr_assert_eq(status, 400, "status %ld", status);
    cr_assert_null(checkout_psp(&m, co_id));
}


Test(routing, moving_on_passes_over_a_psp_the_merchant_may_not_use)
{
    long         status;
    char        *co_id, *psp, *out;
    PGconn      *c;
    merchant_t   m;

    merchant_new(&m);
    cr_assert_eq(merchant_toolv((const char *const[]) {
                     "set-psps", "--id", m.id, "--psps", "rt_dead,rt_adyen",
                     NULL }, &out), 0, "%s", out);
    start_rt(str_printf("payments_route merchant=%s "
                        "psps=rt_dead,rt_stripe,rt_adyen;\n", m.id));

    co_id = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_id, "10.00", "EUR"),
                          &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_adyen");
    cr_assert_str_eq(route_record(&m, co_id),
                     "rt_dead:connect_refused,rt_stripe:psp_not_allowed,"
                     "rt_adyen:");

    /* and PostgreSQL refuses to bind it there, whoever asks; each PSP
     * once per checkout */
    c = sqlt_connect();
    sqlt_fails(c, "PY035", "UPDATE checkouts SET psp = 'rt_stripe' "
               "WHERE merchant_id = $1 AND checkout_id = $2", 2,
               ARGV(m.id, co_id));
    sqlt_fails_as(c, "23505", "checkout_routes_psp_once",
                  "INSERT INTO checkout_routes (merchant_id, checkout_id, "
                  "seq, route, psp) VALUES ($1, $2, 9, 'route1', "
                  "'rt_adyen')", 2, ARGV(m.id, co_id));
    PQfinish(c);
}


/*
 * A routed checkout of a new merchant (m), over rt_stripe then rt_adyen
 * (route's name= words first when name is not NULL), held for review on
 * a gateway started for it: claimed at rt_stripe, sent nowhere.
 */
static void
held_for_review(merchant_t *m, const char *name, char **co_id, char **key,
    char **body)
{
    long   status, sessions, requests;
    char  *psp;

    merchant_new(m);
    start_rt_review(str_printf("payments_route %s%smerchant=%s "
                               "psps=rt_stripe,rt_adyen;\n",
                               name ? "name=" : "", name ? name : "",
                               m->id));

    *co_id = uid("co");
    *key = uid("key");
    *body = routed_review_body(*co_id);

    psp = register_routed(m, *key, *body, &status);
    cr_assert_eq(status, 202, "held for review: %ld", status);
    cr_assert_null(psp);
    cr_assert_str_eq(checkout_psp(m, *co_id), "rt_stripe");
    cr_assert_str_eq(route_record(m, *co_id), "rt_stripe:");
    mock_registrations(nonce(m, *co_id), &sessions, &requests);
    cr_assert_eq(requests, 0, "a held checkout reached a PSP");
}


/*
 * The admin approves the review of m's co_id at the routing gateway: 201,
 * the checkout at psp with status (FAILED: registration_refused).
 */
static void
approved_as(merchant_t *m, const char *co_id, const char *psp,
    const char *status)
{
    json_t  *j;
    resp_t  *r;

    r = books_approve_at(rt.origin, nonce(m, co_id), 1, 0, NULL);
    cr_assert_eq(r->status, 201, "the approval: %ld %s", r->status, r->body);
    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "psp")), psp,
                     "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     status, "%s", r->body);
    if (strcmp(status, "FAILED") == 0) {
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(j, "failure"), "code")),
                         "registration_refused", "%s", r->body);
    }
    resp_free(r);
}


/*
 * A routed checkout held for review is claimed at its route's first PSP
 * and sent nowhere; its first approval takes the route again from there:
 * the first PSP refusing it (400, no session made) moves it on to the
 * next in the approval's request, as its registration would have without
 * the review.  Each PSP asked once; one session in all.
 */
Test(routing, an_approval_moves_on_from_a_psp_that_refuses_it)
{
    long         status, sessions, requests;
    char        *co_id, *key, *body, *psp;
    merchant_t   m;

    held_for_review(&m, NULL, &co_id, &key, &body);

    mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"stripe\","
                          "\"refuse_status\":400}", nonce(&m, co_id)));

    approved_as(&m, co_id, "rt_adyen", "EXECUTING");

    /* Stripe asked once and refused; Adyen asked once and made the one
     * session; the route record says why it left Stripe */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 2);
    cr_assert_eq(psp_attempts("rt_stripe", "refused"), 1.0);
    cr_assert_eq(psp_attempts("rt_stripe", "created"), 0.0);
    cr_assert_eq(psp_attempts("rt_adyen", "created"), 1.0);
    cr_assert_eq(psp_attempts("rt_adyen", "refused"), 0.0);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_adyen");
    cr_assert_str_eq(route_record(&m, co_id), "rt_stripe:refused,rt_adyen:");
    cr_assert_eq(metric_value(rt.origin,
                              "payments_route_decisions_total{route=\"route1\","
                              "psp=\"rt_stripe\",outcome=\"refused\"}"),
                 1.0);
    cr_assert_eq(metric_value(rt.origin,
                              "payments_route_decisions_total{route=\"route1\","
                              "psp=\"rt_adyen\",outcome=\"fallback\"}"),
                 1.0);

    /* the shop's key replays it: the session at Adyen */
    psp = register_routed(&m, key, body, &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_adyen");
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 2, "the replay reached a PSP");
}


/*
 * The same, its first PSP answering the approval with an outcome that may
 * hide a session (no answer in time; a 5xx): it stays bound there, the
 * next PSP never asked, and a later approval resumes at the same PSP
 * (refused: true, where Stripe then refuses it: it fails there, still
 * never moved on, as the earlier attempt may have made a session).
 */
static void
approval_held_at_stripe(const char *fault, int refused)
{
    long         status, sessions, requests;
    char        *co_id, *key, *body, *psp;
    resp_t      *r;
    merchant_t   m;

    held_for_review(&m, NULL, &co_id, &key, &body);

    mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"stripe\",%s}",
                          nonce(&m, co_id), fault));

    r = books_approve_at(rt.origin, nonce(&m, co_id), 1, 0, NULL);
    cr_assert(r->status == 502 || r->status == 504,
              "the approval: %ld %s", r->status, r->body);
    resp_free(r);

    /* Adyen never asked: the checkout stays at Stripe */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 1);
    cr_assert_eq(psp_attempts("rt_adyen", "created"), 0.0);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_stripe");
    cr_assert_str_eq(route_record(&m, co_id), "rt_stripe:");

    /* approved again: resumed at Stripe, never moved on */
    approved_as(&m, co_id, "rt_stripe", refused ? "FAILED" : "EXECUTING");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, refused ? 0 : 1, "one session in all");
    cr_assert_eq(requests, 2);
    cr_assert_eq(psp_attempts("rt_adyen", "created"), 0.0);
    cr_assert_eq(psp_attempts("rt_adyen", "refused"), 0.0);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_stripe");
    cr_assert_str_eq(route_record(&m, co_id), "rt_stripe:");

    /* and the shop's key replays that */
    psp = register_routed(&m, key, body, &status);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(psp, "rt_stripe");
}


Test(routing, an_approval_timed_out_stays_bound_and_approving_again_resumes_there)
{
    approval_held_at_stripe("\"hang_ms\":3000,\"hang_times\":1", 0);
}


Test(routing, an_approval_answered_5xx_stays_bound_and_approving_again_resumes_there)
{
    /* then refusing it (400): the resumed approval fails there */
    approval_held_at_stripe("\"fail_times\":1,\"fail_status\":500,"
                            "\"refuse_status\":400", 1);
}


/*
 * A held checkout whose route the configuration no longer chooses for it
 * by the time it is approved (here renamed: another route than the one
 * its claim recorded) is approved at the PSP its claim bound alone: a
 * refusal there fails it, and no other PSP is asked.
 */
Test(routing, an_approval_stays_at_its_bound_psp_when_its_route_changed)
{
    long         sessions, requests;
    char        *co_id, *key, *body;
    merchant_t   m;

    held_for_review(&m, "before ", &co_id, &key, &body);

    gateway_reload(&rt, "name=before", "name=after");

    mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"stripe\","
                          "\"refuse_status\":400}", nonce(&m, co_id)));

    approved_as(&m, co_id, "rt_stripe", "FAILED");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 0);
    cr_assert_eq(requests, 1, "Adyen was asked");
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_stripe");
    cr_assert_str_eq(route_record(&m, co_id), "rt_stripe:");
}


/*
 * A held checkout whose PSP an operator closed (payments_psp ... closed)
 * by the time it is approved: a closed PSP goes on with what it took, so
 * the approval takes the route from there as before, and its refusal
 * (400, no session made) moves the checkout on to the route's next PSP,
 * which is open.  It was approved at the bound PSP alone and failed there
 * (registration_refused): the route chosen for the approval had passed
 * over the closed PSP, so it no longer held the bound one (the money
 * checker's seed 240526).
 */
Test(routing, an_approval_moves_on_from_its_psp_closed_since)
{
    long         sessions, requests;
    char        *co_id, *key, *body, *stripe;
    merchant_t   m;

    held_for_review(&m, NULL, &co_id, &key, &body);

    stripe = gw_psp_conf_with("rt_stripe", "stripe", "retries=0 breaker=0");
    gateway_reload(&rt, stripe, gw_psp_conf_with("rt_stripe", "stripe",
                                                 "retries=0 breaker=0 "
                                                 "closed"));

    mock_fault(str_printf("{\"match\":\"%s\",\"api\":\"stripe\","
                          "\"refuse_status\":400}", nonce(&m, co_id)));

    approved_as(&m, co_id, "rt_adyen", "EXECUTING");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 2, "Stripe then Adyen, each once");
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_adyen");
    cr_assert_str_eq(route_record(&m, co_id), "rt_stripe:refused,rt_adyen:");
}


/*
 * A held checkout whose PSP an operator removed from nginx.conf by the
 * time it is approved is sent nowhere (not to the route's next PSP
 * either: its claim bound it): 502 psp_unavailable saying so, the
 * checkout still held; once the PSP is configured again the approval
 * sends it there.
 */
Test(routing, an_approval_whose_psp_was_removed_stays_held_until_it_is_back)
{
    long         sessions, requests;
    char        *co_id, *key, *body, *stripe;
    resp_t      *r;
    merchant_t   m;
    const char  *params[2];

    held_for_review(&m, NULL, &co_id, &key, &body);

    stripe = gw_psp_conf_with("rt_stripe", "stripe", "retries=0 breaker=0");
    gateway_reload(&rt, "psps=rt_stripe,rt_adyen", "psps=rt_adyen");
    gateway_reload(&rt, stripe, "");

    r = books_approve_at(rt.origin, nonce(&m, co_id), 1, 0, NULL);
    expect_problem(r, 502, "psp_unavailable");
    cr_expect(strstr(r->body, "not configured") != NULL, "%s", r->body);

    params[0] = m.id;
    params[1] = co_id;
    cr_assert_str_eq(db_scalar("SELECT status FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2,
                               params), "REVIEW");
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 0, "a PSP was asked");

    gateway_reload(&rt, "payments_sweeper off;\n",
                   str_printf("payments_sweeper off;\n%s", stripe));

    approved_as(&m, co_id, "rt_stripe", "EXECUTING");
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
}


/* the gateway's answer to a POST of body under key; the caller frees it */
static resp_t *
post_rt(const merchant_t *m, const char *key, const char *body)
{
    return gateway_send(&rt, "POST", PATH_PAYMENTS, m, key, body);
}


/*
 * A retry of a registered checkout after an operator removed the route that
 * chose its PSP is the request already made: its 201 replayed (it was 400
 * "psp: required", as if the checkout had never been registered, and a
 * shop whose 201 was lost could not have it again).  A new checkout that
 * no route applies to is refused as before, nothing stored.
 */
Test(routing, a_retry_replays_after_its_route_was_removed)
{
    long         status;
    char        *co_id, *key, *body, *psp;
    resp_t      *first, *r;
    merchant_t   m;

    merchant_new(&m);
    start_rt(str_printf("payments_route merchant=%s psps=rt_stripe;\n",
                        m.id));

    co_id = uid("co");
    key = uid("key");
    body = routed_body(co_id, "10.00", "EUR");

    first = post_rt(&m, key, body);
    cr_assert_eq(first->status, 201, "%s", first->body);

    gateway_reload(&rt, str_printf("merchant=%s", m.id), "merchant=m_gone");

    r = post_rt(&m, key, body);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);

    /* a new one: no route applies, nothing stored */
    co_id = uid("co");
    psp = register_routed(&m, uid("key"), routed_body(co_id, "10.00", "EUR"),
                          &status);
    cr_assert_null(psp);
    cr_assert_eq(status, 400);
    cr_assert_eq(checkouts_named(&m, co_id), 0);
}


/*
 * A routed registration whose first attempt went unanswered, retried after
 * an operator removed its route while the PSP it is bound to is still
 * configured: sent again there, under its nonce, never moving on (the
 * route that would is gone), as an approval without its route is; one
 * session in all, and the retry after it replays the 201.  It was 503
 * not_configured until the route came back, a checkout the shopper could
 * have paid kept from its pay URL.  The PSP removed too: 503
 * not_configured, not sent (its nonce is that PSP's).
 */
Test(routing, an_unanswered_retry_whose_route_was_removed_resumes_at_its_bound_psp)
{
    long         sessions, requests;
    char        *co_id, *key, *body, *co2, *key2, *body2, *route, *stripe;
    json_t      *j;
    resp_t      *r, *again;
    merchant_t   m;

    merchant_new(&m);
    route = str_printf("payments_route merchant=%s psps=rt_stripe;\n", m.id);
    start_rt(route);
    stripe = gw_psp_conf_with("rt_stripe", "stripe", "retries=0 breaker=0");

    /* two routed checkouts bound at rt_stripe, neither answered (a 503:
     * the PSP may have made the session, so neither moves on) */
    co_id = uid("co");
    key = uid("key");
    body = routed_body(co_id, "10.00", "EUR");
    co2 = uid("co");
    key2 = uid("key");
    body2 = routed_body(co2, "10.00", "EUR");

    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503}", nonce(&m, co_id)));
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503}", nonce(&m, co2)));
    r = post_rt(&m, key, body);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);
    r = post_rt(&m, key2, body2);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);
    cr_assert_str_eq(checkout_psp(&m, co_id), "rt_stripe");

    /* the route removed: the retry goes to the PSP it is bound to */
    gateway_reload(&rt, route, "");

    r = post_rt(&m, key, body);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp")), "rt_stripe");
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_expect_eq(sessions, 1, "one session in all");
    cr_expect_eq(requests, 2, "the first attempt and the retry");
    cr_expect_str_eq(checkout_psp(&m, co_id), "rt_stripe");

    again = post_rt(&m, key, body);
    cr_assert_eq(again->status, 201, "%ld %s", again->status, again->body);
    cr_expect_str_eq(resp_header(again, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(again->body, r->body);

    /* the PSP removed too: not sent anywhere */
    gateway_reload(&rt, stripe, "");

    r = post_rt(&m, key2, body2);
    expect_problem(r, 503, "not_configured");
    cr_expect(strstr(r->body, "not answered") != NULL, "%s", r->body);
    mock_registrations(nonce(&m, co2), &sessions, &requests);
    cr_expect_eq(requests, 1, "sent again while its PSP is not configured");
}


/*
 * The same after an operator removed the PSP a checkout was registered at:
 * replayed; a checkout whose first attempt was never answered is not sent
 * anywhere else (its nonce belongs to that PSP): 503 not_configured saying
 * so, and once the PSP is configured again the same retry resumes there,
 * one session in all.  A new checkout naming the PSP: 400, nothing stored.
 */
Test(routing, a_retry_after_its_psp_was_removed_replays_and_an_unanswered_one_waits)
{
    long         sessions, requests;
    char        *co_id, *key, *body, *co2, *key2, *body2, *co3, *adyen;
    resp_t      *first, *r;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    start_rt("");

    co_id = uid("co");
    key = uid("key");
    co = checkout_new(co_id, 1);
    json_object_set_new(co, "psp", json_string("rt_adyen"));
    body = dump(co);

    first = post_rt(&m, key, body);
    cr_assert_eq(first->status, 201, "%s", first->body);

    /* a second checkout whose registration is never answered */
    co2 = uid("co");
    key2 = uid("key");
    co = checkout_new(co2, 1);
    json_object_set_new(co, "psp", json_string("rt_adyen"));
    body2 = dump(co);

    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503}", nonce(&m, co2)));
    r = post_rt(&m, key2, body2);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);

    adyen = gw_psp_conf_with("rt_adyen", "adyen", "retries=0 breaker=0");
    gateway_reload(&rt, adyen, "");

    r = post_rt(&m, key, body);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);

    /* its checkout under another key, another body under its key */
    r = post_rt(&m, uid("key"), body);
    expect_problem(r, 409, "duplicate_order");
    r = post_rt(&m, key, body2);
    expect_problem(r, 422, "idempotency_key_reused");

    r = post_rt(&m, key2, body2);
    expect_problem(r, 503, "not_configured");
    cr_expect(strstr(r->body, "not answered") != NULL, "%s", r->body);
    mock_registrations(nonce(&m, co2), &sessions, &requests);
    cr_assert_eq(requests, 1, "sent again while its PSP is not configured");
    cr_assert_str_eq(checkout_psp(&m, co2), "rt_adyen");

    /* a new checkout naming it: refused, nothing stored */
    co3 = uid("co");
    co = checkout_new(co3, 1);
    json_object_set_new(co, "psp", json_string("rt_adyen"));
    r = post_rt(&m, uid("key"), dump(co));
    expect_problem(r, 400, "invalid_request");
    cr_expect(strstr(r->body, "no PSP of that name") != NULL, "%s", r->body);
    cr_assert_eq(checkouts_named(&m, co3), 0);

    /* configured again: the retry resumes where it was claimed */
    gateway_reload(&rt, "payments_sweeper off;\n",
                   str_printf("payments_sweeper off;\n%s", adyen));

    r = post_rt(&m, key2, body2);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    mock_registrations(nonce(&m, co2), &sessions, &requests);
    cr_assert_eq(sessions, 1, "one session in all");
}
