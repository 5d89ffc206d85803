/*
 * End to end: the gateway's own limits (doc/ngx_http_payments_limit_module.md).
 * Every
 * limit is configured on a server of its own (chosen by Host) on the port
 * PAY_TEST_GW_LIMITS, with low rates (1r/m), so that no other suite meets
 * them (tests/e2e/nginx.conf.in).  The limits keyed by merchant or buyer are
 * met with a fresh merchant per test; each limit keyed by address (tests
 * come from 127.0.0.1) is used by one test only, or by tests that send from
 * loopback addresses of their own (127.0.0.2 and up, see http_from()).
 */

#include "harness.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>


#define HOST_MERCHANT   "merchant.limits.test"
#define HOST_ADDRESS    "address.limits.test"
#define HOST_PAGES      "pages.limits.test"
#define HOST_WEBHOOK    "webhook.limits.test"
#define HOST_AMOUNT     "amount.limits.test"
#define HOST_AMOUNT_RISK  "amount-risk.limits.test"
#define HOST_FAILURES   "failures.limits.test"
#define HOST_NGINX      "nginx.limits.test"
#define HOST_EVICT      "evict.limits.test"


static char *
lim_url(const char *path)
{
    return str_printf("%s%s", env("PAY_TEST_GW_LIMITS"), path);
}


/* POST /v1/payments on a limits server; key NULL: a fresh Idempotency-Key */

static resp_t *
lim_post(const char *host, const merchant_t *m, const char *key,
    const char *body, const char *request_id)
{
    req_t        rq;
    const char  *h[6];
    size_t       n;

    n = 0;
    h[n++] = str_printf("Host: %s", host);
    h[n++] = str_printf("Authorization: Bearer %s", m->key);
    h[n++] = str_printf("Idempotency-Key: %s", key ? key : uid("key"));
    h[n++] = "Content-Type: application/json";
    if (request_id) {
        h[n++] = str_printf("X-Request-Id: %s", request_id);
    }
    h[n] = NULL;

    rq.method = "POST";
    rq.url = lim_url(PATH_PAYMENTS);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


static resp_t *
lim_get(const char *host, const char *path)
{
    req_t        rq;
    const char  *h[2];

    h[0] = str_printf("Host: %s", host);
    h[1] = NULL;

    rq.method = "GET";
    rq.url = lim_url(path);
    rq.headers = h;
    rq.body = NULL;
    rq.len = 0;

    return http(&rq);
}


static long
retry_after(const resp_t *r)
{
    const char  *v;

    v = resp_header(r, "Retry-After");
    cr_assert_not_null(v, "429 without Retry-After");
    return atol(v);
}


static void
expect_rate_limited(resp_t *r, long min, long max)
{
    long  s;

    expect_problem(r, 429, "rate_limited");
    s = retry_after(r);
    cr_assert(s >= min && s <= max, "Retry-After %ld, expected %ld..%ld", s,
              min, max);
}


/* -- Stripe events, signed as Stripe signs them ---------------------------- */

static resp_t *lim_webhook_from(const char *from, const char *host,
    const char *body, const char *signature);


static resp_t *
lim_webhook(const char *host, const char *body, const char *signature)
{
    return lim_webhook_from(NULL, host, body, signature);
}


/* from NULL: 127.0.0.1; else another loopback address, another sender */

static resp_t *
lim_webhook_from(const char *from, const char *host, const char *body,
    const char *signature)
{
    req_t        rq;
    const char  *h[4];

    h[0] = str_printf("Host: %s", host);
    h[1] = "Content-Type: application/json";
    h[2] = signature;
    h[3] = NULL;

    rq.method = "POST";
    rq.url = lim_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return from ? http_from(&rq, from) : http(&rq);
}


/* lines of the error log that contain both needles */

static long
log_count(const char *a, const char *b)
{
    long    n;
    char   *log, *line, *save;

    log = file_read(run_file("logs/error.log"), NULL);
    if (log == NULL) {
        return 0;
    }

    n = 0;
    for (line = strtok_r(log, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        if (strstr(line, a) && strstr(line, b)) {
            n++;
        }
    }

    return n;
}


/* -- request rates per merchant -------------------------------------------- */

Test(limits, create_merchant_lets_the_rate_and_its_burst_through,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    /* burst=2: three at once; each is then a 400 of the body, not a 429 */
    for (i = 0; i < 3; i++) {
        r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
        expect_problem(r, 400, "invalid_request");
        cr_assert_null(resp_header(r, "Retry-After"));
    }
}


Test(limits, create_merchant_refuses_past_the_burst_with_retry_after,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    for (i = 0; i < 3; i++) {
        r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
        cr_assert_eq(r->status, 400, "%s", r->body);
    }

    /* 1r/m: the next request fits in a minute */
    r = lim_post(HOST_MERCHANT, &m, NULL, body_for(uid("co")), NULL);
    expect_rate_limited(r, 55, 60);

    /* a refused request is not counted: still a minute, not two */
    r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
    expect_rate_limited(r, 55, 60);
}


Test(limits, create_merchant_limits_each_merchant_on_its_own,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    merchant_t   a, b;
    resp_t      *r;

    merchant_new(&a);
    merchant_new(&b);

    for (i = 0; i < 3; i++) {
        (void) lim_post(HOST_MERCHANT, &a, NULL, "{}", NULL);
    }

    r = lim_post(HOST_MERCHANT, &a, NULL, "{}", NULL);
    expect_problem(r, 429, "rate_limited");

    /* the other merchant, from the same address, is untouched */
    r = lim_post(HOST_MERCHANT, &b, NULL, "{}", NULL);
    expect_problem(r, 400, "invalid_request");
}


Test(limits, create_merchant_comes_after_401_and_the_idempotency_key,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    req_t        rq;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    for (i = 0; i < 4; i++) {
        (void) lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
    }

    /* API.md's order: TLS, 401, Idempotency-Key (400), then 429 */
    {
        const char  *h[] = { "Host: " HOST_MERCHANT,
                             str_printf("Authorization: Bearer %s", m.key),
                             "Content-Type: application/json", NULL };

        rq.method = "POST";
        rq.url = lim_url(PATH_PAYMENTS);
        rq.headers = h;
        rq.body = "{}";
        rq.len = (size_t) -1;
        r = http(&rq);
    }

    expect_problem(r, 400, "idempotency_key_missing");

    m.key[strlen(m.key) - 1] ^= 1;
    r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
    expect_problem(r, 401, "unauthorized");
}


/* -- per source address on payment creation -------------------------------- */

Test(limits, create_address_limits_one_address_whatever_the_key,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    merchant_t   a, b;
    resp_t      *r;

    merchant_new(&a);
    merchant_new(&b);

    /* burst=3: four pass, from 127.0.0.1 */
    for (i = 0; i < 4; i++) {
        r = lim_post(HOST_ADDRESS, &a, NULL, "{}", NULL);
        expect_problem(r, 400, "invalid_request");
    }

    r = lim_post(HOST_ADDRESS, &a, NULL, "{}", NULL);
    expect_rate_limited(r, 55, 60);

    /* another key from the same address: refused as well */
    r = lim_post(HOST_ADDRESS, &b, NULL, "{}", NULL);
    expect_rate_limited(r, 55, 60);
}


/* -- per shopper address on the browser pages ------------------------------ */

Test(limits, pages_answer_an_html_429_and_the_status_poll_json,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    char        *co;
    resp_t      *r;
    const char  *ct;

    co = uid("co");

    /* burst=2: three pass (a bad token is a 403 page, after the limit) */
    for (i = 0; i < 3; i++) {
        r = lim_get(HOST_PAGES, str_printf("/v1/checkouts/%s/pay?t=x", co));
        cr_assert_eq(r->status, 403, "%ld %s", r->status, r->body);
    }

    r = lim_get(HOST_PAGES, str_printf("/v1/checkouts/%s/pay?t=x", co));
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);
    ct = resp_header(r, "Content-Type");
    cr_assert(ct != NULL && strncmp(ct, "text/html", 9) == 0, "%s", ct);
    cr_assert_not_null(resp_header(r, "Content-Security-Policy"));
    cr_assert_null(resp_header(r, "Location"));
    cr_assert(mem_contains(r->body, r->len, "Too many requests"));
    cr_assert(retry_after(r) >= 55 && retry_after(r) <= 60);
    expect_request_id(r);

    r = lim_get(HOST_PAGES, str_printf("/v1/return/%s/%s?t=x",
                                       env("PAY_TEST_PSP"), co));
    cr_assert_eq(r->status, 429);
    cr_assert(strncmp(resp_header(r, "Content-Type"), "text/html", 9) == 0);

    /* the pending page's poll reads JSON */
    r = lim_get(HOST_PAGES, str_printf("/v1/checkouts/%s/status?t=x", co));
    expect_rate_limited(r, 55, 60);
}


/* -- per webhook sender (PSP + address), before any signature check ------ */

/*
 * webhook=e2e_webhook burst=5 (1r/m) and webhook_failures=e2e_wh_failures
 * (max=3 in 10 min), both keyed by the PSP and the client's address: each
 * test sends from loopback addresses of its own (127.0.0.0/8: .2 to .9).
 */

#define WH_JUNK_SIG  "Stripe-Signature: t=%ld,v1=%064d"


/* a signed event the gateway records and answers 200 (nothing to move) */

static char *
lim_event(void)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\","
                      "\"type\":\"customer.created\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":"
                      "{\"id\":\"%s\",\"object\":\"customer\"}}}",
                      uid("evt"), (long) time(NULL), uid("cus"));
}


static resp_t *
lim_signed_from(const char *from)
{
    char  *evt;

    evt = lim_event();

    return lim_webhook_from(from, HOST_WEBHOOK, evt,
                            stripe_signature(NULL, time(NULL), evt));
}


static long
metric(const char *zone)
{
    char        *needle;
    resp_t      *r;
    const char  *m;

    r = gw_get("/metrics");
    cr_assert_eq(r->status, 200);

    needle = str_printf("payments_rate_limited_total{zone=\"%s\"} ", zone);
    m = strstr(r->body, needle);
    cr_assert_not_null(m, "%s", r->body);

    return atol(m + strlen(needle));
}


Test(limits, a_flood_of_bad_signatures_is_shed_for_its_sender_only,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    long         ok, limited, verified, before, shed;
    char        *body, *sig;
    resp_t      *r;

    body = str_printf("{\"id\":\"%s\",\"object\":\"event\"}", uid("evt"));
    sig = str_printf(WH_JUNK_SIG, (long) time(NULL), 0);

    before = log_count("refused: bad_signature", "client: 127.0.0.2,");
    shed = metric("e2e_wh_failures");

    ok = limited = 0;
    for (i = 0; i < 40; i++) {
        r = lim_webhook_from("127.0.0.2", HOST_WEBHOOK, body, sig);

        if (r->status == 400) {
            expect_problem(r, 400, "bad_signature");
            ok++;

        } else {
            /* shed by the failures' window (10 min), not the rate */
            expect_rate_limited(r, 61, 600 + 600 / 16 + 1);
            limited++;
        }

        resp_free(r);
    }

    /* max=3: three failures, then the sender is shed before the check */
    cr_assert_eq(ok, 3, "%ld verified, %ld limited", ok, limited);
    cr_assert_eq(limited, 37);

    /* one "refused" line per signature actually checked */
    msleep(200);
    verified = log_count("refused: bad_signature", "client: 127.0.0.2,")
               - before;
    cr_assert_eq(verified, 3, "%ld signatures checked, expected 3",
                 verified);

    /* a valid signature from that address is shed the same way: no
     * crypto is wasted on it */
    r = lim_signed_from("127.0.0.2");
    expect_rate_limited(r, 61, 600 + 600 / 16 + 1);

    /* another sender of the same PSP is untouched */
    r = lim_signed_from("127.0.0.7");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    /* and /metrics counts the zone's rejections */
    cr_assert_geq(metric("e2e_wh_failures") - shed, 38);
}


Test(limits, junk_from_one_address_never_sheds_the_psps_signed_webhooks,
     .timeout = E2E_TIMEOUT)
{
    int          i, genuine;
    long         junk_400, junk_429;
    char        *body, *sig;
    resp_t      *r;

    body = str_printf("{\"id\":\"%s\",\"object\":\"event\"}", uid("evt"));
    sig = str_printf(WH_JUNK_SIG, (long) time(NULL), 0);

    junk_400 = junk_429 = 0;
    genuine = 0;

    /* 30 unsigned-in-effect POSTs from 127.0.0.3; the PSP's sender,
     * 127.0.0.4, delivers five signed events in the middle of it */
    for (i = 0; i < 30; i++) {
        r = lim_webhook_from("127.0.0.3", HOST_WEBHOOK, body, sig);

        if (r->status == 429) {
            junk_429++;

        } else {
            expect_problem(r, 400, "bad_signature");
            junk_400++;
        }

        resp_free(r);

        if (i % 6 == 5) {
            r = lim_signed_from("127.0.0.4");
            cr_assert_eq(r->status, 200, "genuine webhook %d during the "
                         "flood: %ld %s", genuine, r->status, r->body);
            genuine++;
            resp_free(r);
        }
    }

    cr_assert_eq(genuine, 5);
    cr_assert_eq(junk_400, 3, "%ld junk checked", junk_400);
    cr_assert_eq(junk_429, 27);

    /* the flood's own sender stays shed */
    r = lim_webhook_from("127.0.0.3", HOST_WEBHOOK, body, sig);
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);
}


Test(limits, each_sender_has_its_own_rate_and_verified_ones_never_fail,
     .timeout = E2E_TIMEOUT)
{
    int      i;
    resp_t  *r;

    /* burst=5 at 1r/m: six signed events pass from 127.0.0.5 -- more than
     * the three failures that would shed it: a verified one is no failure */
    for (i = 0; i < 6; i++) {
        r = lim_signed_from("127.0.0.5");
        cr_assert_eq(r->status, 200, "%d: %ld %s", i, r->status, r->body);
        resp_free(r);
    }

    /* the seventh is over the sender's rate: a minute, not the window */
    r = lim_signed_from("127.0.0.5");
    expect_rate_limited(r, 55, 60);
    cr_assert(mem_contains(r->body, r->len, "from this address"), "%s",
              r->body);

    /* another address of the same PSP has a bucket of its own */
    r = lim_signed_from("127.0.0.6");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
}


/*
 * Authentic events signed for other money: Adyen items of another merchant
 * account under an HMAC key the company's accounts share, Stripe events of
 * the other livemode.  The PSP's own servers send them beside this PSP's
 * events: each is refused (400, as before), but none is a failure of its
 * sender nor a bad signature, so the sender is never shed.
 */

static resp_t *
lim_adyen_from(const char *from, const char *account, const char *ref)
{
    req_t        rq;
    char        *item;
    const char  *h[3];

    item = adyen_notification_item(&(adyen_notification_t) {
                                       .psp_ref = adyen_psp_ref(),
                                       .account = account,
                                       .merchant_ref = ref,
                                       .amount = 1500,
                                       .currency = "USD",
                                       .event_code = "AUTHORISATION",
                                       .success = "true" }, 0);

    h[0] = str_printf("Host: %s", HOST_WEBHOOK);
    h[1] = "Content-Type: application/json";
    h[2] = NULL;

    rq.method = "POST";
    rq.url = lim_url("/v1/webhooks/mock_adyen");
    rq.headers = h;
    rq.body = str_printf("{\"live\":\"false\",\"notificationItems\":[%s]}",
                         item);
    rq.len = (size_t) -1;

    return http_from(&rq, from);
}


static long
refused_metric(const char *psp, const char *reason)
{
    char        *needle;
    resp_t      *r;
    const char  *m;

    r = gw_get("/metrics");
    cr_assert_eq(r->status, 200);

    needle = str_printf("payments_webhook_refused_total{psp=\"%s\","
                        "reason=\"%s\"} ", psp, reason);
    m = strstr(r->body, needle);

    return m ? atol(m + strlen(needle)) : 0;
}


Test(limits, adyen_items_of_another_account_never_shed_adyen,
     .timeout = E2E_TIMEOUT)
{
    int      i;
    long     account;
    resp_t  *r;

    account = refused_metric("mock_adyen", "merchant_account");

    /* max=3: five authentic items of another account from one sender
     * (burst=5 leaves room for one more) */
    for (i = 0; i < 5; i++) {
        r = lim_adyen_from("127.0.0.8", "ShopPOS", uid("pos"));
        cr_assert_neq(r->status, 429, "item %d of another account shed "
                      "its sender: %s", i, r->body);
        expect_problem(r, 400, "bad_signature");
        resp_free(r);
    }

    /* this account's item from the same sender is applied (its reference
     * not a nonce: kept foreign, acknowledged) */
    r = lim_adyen_from("127.0.0.8", NULL, uid("pos"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    /* counted as what they are, never as bad signatures */
    msleep(200);
    cr_assert_eq(log_count("refused: bad_signature", "client: 127.0.0.8,"),
                 0, "an authentic item was counted a bad signature");
    cr_assert_geq(refused_metric("mock_adyen", "merchant_account") - account,
                  5);
}


Test(limits, stripe_events_of_the_other_livemode_never_count,
     .timeout = E2E_TIMEOUT)
{
    int      i;
    long     livemode;
    char    *evt;
    resp_t  *r;

    livemode = refused_metric(env("PAY_TEST_PSP"), "livemode");

    for (i = 0; i < 5; i++) {
        evt = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                         "\"type\":\"customer.created\",\"created\":%ld,"
                         "\"livemode\":true,\"data\":{\"object\":"
                         "{\"id\":\"%s\",\"object\":\"customer\"}}}",
                         uid("evt"), (long) time(NULL), uid("cus"));
        r = lim_webhook_from("127.0.0.9", HOST_WEBHOOK, evt,
                             stripe_signature(NULL, time(NULL), evt));
        cr_assert_neq(r->status, 429, "%d: %s", i, r->body);
        expect_problem(r, 400, "bad_signature");
        resp_free(r);
    }

    r = lim_signed_from("127.0.0.9");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    msleep(200);
    cr_assert_eq(log_count("refused: bad_signature", "client: 127.0.0.9,"),
                 0, "a signed event was counted a bad signature");
    cr_assert_geq(refused_metric(env("PAY_TEST_PSP"), "livemode") - livemode,
                  5);
}


/* -- the variables --------------------------------------------------------- */

Test(limits, nginx_limit_req_keys_on_payments_psp, .timeout = E2E_TIMEOUT)
{
    int      i;
    resp_t  *r;
    char    *sig;

    sig = "Stripe-Signature: t=1,v1=00";

    /* limit_req zone=e2e_nginx_psp burst=1 nodelay, in front of payments */
    for (i = 0; i < 2; i++) {
        r = lim_webhook(HOST_NGINX, "{}", sig);
        expect_problem(r, 400, "bad_signature");
    }

    r = lim_webhook(HOST_NGINX, "{}", sig);
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);

    /* nginx's own answer: the module never saw it */
    cr_assert_null(resp_header(r, "X-Request-Id"));
}


Test(limits, variables_name_the_request_merchant_psp_and_checkout,
     .timeout = E2E_TIMEOUT)
{
    char        *rid, *co, *line;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);
    rid = uid("rid");
    co = uid("co");

    r = lim_post(HOST_AMOUNT, &m, NULL, body_for(co), rid);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_str_eq(resp_header(r, "X-Request-Id"), rid);

    line = str_printf(HOST_AMOUNT " rid=%s merchant=%s psp=%s checkout=%s "
                      "201", rid, m.id, env("PAY_TEST_PSP"), co);
    msleep(200);
    cr_assert(file_contains(run_file("logs/limits.log"), line),
              "limits.log has no \"%s\"", line);

    /* a generated id is the one sent back, and the one the variable gave
     * in the rewrite phase, before the module's handler ran ("set") */
    r = lim_get(HOST_AMOUNT, "/healthz");
    cr_assert_eq(r->status, 200);
    msleep(200);
    line = str_printf(HOST_AMOUNT " rid=%s merchant=- psp=- checkout=- 200 "
                      "early=%s", resp_header(r, "X-Request-Id"),
                      resp_header(r, "X-Request-Id"));
    cr_assert(file_contains(run_file("logs/limits.log"), line),
              "limits.log has no \"%s\"", line);
}


/* -- amount velocity per merchant and currency ----------------------------- */

static char *
body_of_amount(const char *co, const char *amount)
{
    json_t  *j;

    j = checkout_new(co, 1);
    json_object_set_new(order_of(j, 0), "amount", json_string(amount));
    return dump(j);
}


Test(limits, amount_velocity_counts_each_checkout_once_up_to_max,
     .timeout = E2E_TIMEOUT)
{
    char        *key1, *body1;
    merchant_t   m, other;
    resp_t      *r;

    merchant_new(&m);
    merchant_new(&other);

    /* max=USD:40.00 a window; body_for() is 10.00 + 5.00 USD */
    key1 = uid("key");
    body1 = body_for(uid("co"));
    r = lim_post(HOST_AMOUNT, &m, key1, body1, NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    /* a replay is not a second 15.00 */
    r = lim_post(HOST_AMOUNT, &m, key1, body1, NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    cr_assert_str_eq(resp_header(r, "Idempotent-Replayed"), "true");

    r = lim_post(HOST_AMOUNT, &m, NULL, body_for(uid("co")), NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    /* 30.00 + 15.00 > 40.00: refused until the first leaves the window */
    r = lim_post(HOST_AMOUNT, &m, NULL, body_for(uid("co")), NULL);
    expect_rate_limited(r, 3000, 3600 + 3600 / 16 + 1);

    /* 30.00 + 10.00 = 40.00 still fits, exactly */
    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "10.00"),
                 NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "0.01"),
                 NULL);
    expect_problem(r, 429, "rate_limited");

    /* another merchant has its own sum */
    r = lim_post(HOST_AMOUNT, &other, NULL, body_for(uid("co")), NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
}


/* The same request again once the window is full (the shop lost its 201):
 * a replay creates nothing, so it is answered from its key, never 429;
 * and nothing new fits. */
Test(limits, amount_velocity_replays_a_registration_when_the_window_is_full,
     .timeout = E2E_TIMEOUT)
{
    char        *key1, *body1;
    merchant_t   m;
    resp_t      *r, *first;

    merchant_new(&m);

    /* max=USD:40.00 a window: 40.00 fills it */
    key1 = uid("key");
    body1 = body_of_amount(uid("co"), "40.00");
    first = lim_post(HOST_AMOUNT, &m, key1, body1, NULL);
    cr_assert_eq(first->status, 201, "%s", first->body);

    r = lim_post(HOST_AMOUNT, &m, key1, body1, NULL);
    cr_assert_eq(r->status, 201, "the replay: %ld %s", r->status, r->body);
    cr_assert_str_eq(resp_header(r, "Idempotent-Replayed"), "true");

    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "0.01"),
                 NULL);
    expect_problem(r, 429, "rate_limited");
}


typedef struct {
    const merchant_t  *m;
    const char        *key;
    const char        *body;
} amount_post_t;


static resp_t *
amount_post(void *arg)
{
    amount_post_t  *a = arg;

    return lim_post(HOST_AMOUNT, a->m, a->key, a->body, NULL);
}


/* Taken for known (its key was there when the limit asked) but new at its
 * claim (the key deleted in between, as an undone claim's is): the claim
 * is undone and refused as the limit would have, nothing stored; the
 * window never goes past max. */
Test(limits, amount_velocity_undoes_a_known_request_that_turned_out_new,
     .timeout = E2E_TIMEOUT)
{
    char           *key, *co;
    merchant_t      m;
    resp_t         *r;
    amount_post_t   a;
    const char     *p[3];

    merchant_new(&m);

    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "40.00"),
                 NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    key = uid("key");
    co = uid("co");
    p[0] = m.id;
    p[1] = key;
    p[2] = co;

    a.m = &m;
    a.key = key;
    a.body = body_of_amount(co, "1.00");
    r = db_key_undone_meanwhile(m.id, key, amount_post, &a);

    expect_problem(r, 429, "rate_limited");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $3 "
                               "AND $2::text IS NOT NULL", 3, p),
                     "0", "the claim past max was kept");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM idempotency_keys WHERE "
                               "merchant_id = $1 AND idem_key = $2", 2, p),
                     "0");

    /* the window is where it was: nothing more fits */
    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "0.01"),
                 NULL);
    expect_problem(r, 429, "rate_limited");
}


Test(limits, amount_velocity_refuses_one_checkout_above_max,
     .timeout = E2E_TIMEOUT)
{
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "40.01"),
                 NULL);
    expect_problem(r, 429, "rate_limited");
    cr_assert(mem_contains(r->body, r->len, "more than the merchant may"));

    /* nothing was reserved by it */
    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "40.00"),
                 NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
}


Test(limits, amount_velocity_gives_back_what_the_psp_refused,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    char        *co;
    json_t      *j;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    /* three refused registrations of 15.00: 45.00 > 40.00, none counted */
    for (i = 0; i < 3; i++) {
        co = uid("co");
        mock_fault(str_printf("{\"match\":\"%s\",\"refuse_status\":402}",
                              nonce(&m, co)));
        r = lim_post(HOST_AMOUNT, &m, NULL, body_for(co), NULL);
        cr_assert_eq(r->status, 201, "%s", r->body);
        j = resp_json(r);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                         "FAILED");
    }

    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "40.00"),
                 NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
}


Test(limits, amount_velocity_gives_back_what_the_risk_check_denied,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    json_t      *j;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    /* three denied checkouts of 15.00 (FAILED, sent to no PSP): 45.00 >
     * 40.00, none counted */
    for (i = 0; i < 3; i++) {
        j = json_loads(body_for(uid("co")), 0, NULL);
        cr_assert_not_null(j);
        json_object_set_new(json_object_get(j, "buyer_info"), "email",
                            json_string("risk-deny@example.com"));
        r = lim_post(HOST_AMOUNT_RISK, &m, NULL, dump(j), NULL);
        expect_problem(r, 403, "risk_declined");
    }

    r = lim_post(HOST_AMOUNT_RISK, &m, NULL,
                 body_of_amount(uid("co"), "40.00"), NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
}


Test(limits, amount_velocity_keeps_currencies_apart, .timeout = E2E_TIMEOUT)
{
    json_t      *j;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    r = lim_post(HOST_AMOUNT, &m, NULL, body_of_amount(uid("co"), "40.00"),
                 NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    /* JPY has its own max (100000) */
    j = checkout_new(uid("co"), 1);
    json_object_set_new(order_of(j, 0), "amount", json_string("99990"));
    json_object_set_new(order_of(j, 0), "currency", json_string("JPY"));
    r = lim_post(HOST_AMOUNT, &m, NULL, dump(j), NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
}


/* -- the card-testing guard ------------------------------------------------ */

static char *
body_for_buyer(const char *co, const char *email)
{
    json_t  *j;

    j = checkout_new(co, 2);
    json_object_set_new(j, "buyer_info",
                        json_pack("{s:s}", "email", email));
    return dump(j);
}


/* A buyer refused by the card-testing guard: the same request again of a
 * checkout refused before (the shop lost its 201) is replayed, never 429;
 * a new one is refused. */
Test(limits, card_testing_replays_a_registration_of_a_refused_buyer,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    char        *key, *body;
    merchant_t   m;
    resp_t      *r, *first;

    merchant_new(&m);
    mock_fault(str_printf("{\"match\":\"%s:\",\"refuse_status\":402}", m.id));

    key = uid("key");
    body = body_for_buyer(uid("co"), "replayed@example.com");
    first = lim_post(HOST_FAILURES, &m, key, body, NULL);
    cr_assert_eq(first->status, 201, "%s", first->body);

    r = lim_post(HOST_FAILURES, &m, NULL,
                 body_for_buyer(uid("co"), "replayed@example.com"), NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    /* max=2 reached: a new checkout of this buyer is refused */
    r = lim_post(HOST_FAILURES, &m, NULL,
                 body_for_buyer(uid("co"), "replayed@example.com"), NULL);
    expect_problem(r, 429, "rate_limited");

    for (i = 0; i < 2; i++) {
        r = lim_post(HOST_FAILURES, &m, key, body, NULL);
        cr_assert_eq(r->status, 201, "the replay: %ld %s", r->status,
                     r->body);
        cr_assert_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
        cr_assert_str_eq(r->body, first->body);
    }
}


Test(limits, card_testing_refuses_a_buyer_after_max_refused_payments,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    json_t      *j;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    /* the PSP refuses every registration of this merchant */
    mock_fault(str_printf("{\"match\":\"%s:\",\"refuse_status\":402}", m.id));

    for (i = 0; i < 2; i++) {
        r = lim_post(HOST_FAILURES, &m, NULL,
                     body_for_buyer(uid("co"), "Tester@Example.com"), NULL);
        cr_assert_eq(r->status, 201, "%s", r->body);
        j = resp_json(r);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                         "FAILED");
    }

    /* max=2: the same buyer (e-mail compared in lower case) is refused */
    r = lim_post(HOST_FAILURES, &m, NULL,
                 body_for_buyer(uid("co"), "tester@example.COM"), NULL);
    expect_rate_limited(r, 1, 600 + 600 / 16 + 1);
    cr_assert(mem_contains(r->body, r->len, "failed payments"));

    /* another buyer is not */
    r = lim_post(HOST_FAILURES, &m, NULL,
                 body_for_buyer(uid("co"), "someone@example.com"), NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);

    /* the e-mail is in no log line */
    msleep(200);
    cr_assert(!file_contains(run_file("logs/error.log"),
                             "Tester@Example.com"));
}


Test(limits, card_testing_refuses_a_buyer_id_whatever_the_email,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    json_t      *j;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);
    mock_fault(str_printf("{\"match\":\"%s:\",\"refuse_status\":402}", m.id));

    for (i = 0; i < 3; i++) {
        j = checkout_new(uid("co"), 1);
        json_object_set_new(j, "buyer_info",
                            json_pack("{s:s, s:s}", "id", "buyer-77",
                                      "email",
                                      str_printf("b%d@example.com", i)));
        r = lim_post(HOST_FAILURES, &m, NULL, dump(j), NULL);

        if (i < 2) {
            cr_assert_eq(r->status, 201, "%s", r->body);
        } else {
            expect_problem(r, 429, "rate_limited");
        }
    }
}


Test(limits, a_full_zone_evicts_its_least_recently_used_keys,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    char        *last;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);
    mock_fault(str_printf("{\"match\":\"%s:\",\"refuse_status\":402}", m.id));

    /* a 32k zone holds about a hundred nodes; each refused registration
     * adds two (its checkout, its buyer's failures) */
    last = NULL;
    for (i = 0; i < 250; i++) {
        last = str_printf("b%d_%s@example.com", i, m.id);
        r = lim_post(HOST_EVICT, &m, NULL, body_for_buyer(uid("co"), last),
                     NULL);
        cr_assert_eq(r->status, 201, "registration %d: %ld %s", i, r->status,
                     r->body);
        resp_free(r);
    }

    /* the newest keys are kept: max=1, so the last buyer is refused */
    r = lim_post(HOST_EVICT, &m, NULL, body_for_buyer(uid("co"), last), NULL);
    expect_problem(r, 429, "rate_limited");

    /* the oldest were evicted: the first buyer may try again */
    r = lim_post(HOST_EVICT, &m, NULL,
                 body_for_buyer(uid("co"),
                                str_printf("b0_%s@example.com", m.id)),
                 NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    /* and no allocation ever failed */
    cr_assert_eq(log_count("could not allocate", "e2e_tiny"), 0);
}


static void
fail_by_webhook(const merchant_t *m, const char *co, resp_t *created)
{
    char        *evt, *tok;
    json_t      *j;
    resp_t      *r;

    j = resp_json(created);
    tok = strdup(json_string_value(json_object_get(j, "psp_token")));

    evt = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                     "\"type\":\"checkout.session.async_payment_failed\","
                     "\"created\":%ld,\"livemode\":false,\"data\":{\"object\":"
                     "{\"id\":\"%s\",\"object\":\"checkout.session\","
                     "\"client_reference_id\":\"%s:%s\",\"amount_total\":1500,"
                     "\"currency\":\"usd\",\"payment_status\":\"unpaid\","
                     "\"status\":\"complete\"}}}",
                     uid("evt"), (long) time(NULL), tok, m->id, co);

    r = lim_webhook(HOST_FAILURES, evt,
                    stripe_signature(NULL, time(NULL), evt));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
}


Test(limits, card_testing_refuses_the_pay_page_to_an_address_after_failures,
     .timeout = E2E_TIMEOUT)
{
    int          i;
    char        *co[3], *pay[3];
    json_t      *j;
    merchant_t   m;
    resp_t      *r, *created[3];

    merchant_new(&m);

    for (i = 0; i < 3; i++) {
        co[i] = uid("co");
        created[i] = lim_post(HOST_FAILURES, &m, NULL,
                              body_for_buyer(co[i],
                                             str_printf("s%d@example.com",
                                                        i)),
                              NULL);
        cr_assert_eq(created[i]->status, 201, "%s", created[i]->body);
        j = resp_json(created[i]);
        pay[i] = strdup(url_path(json_string_value(json_object_get(j,
                                                               "pay_url"))));
    }

    /* the shopper opens two pay links; both payments fail */
    for (i = 0; i < 2; i++) {
        r = lim_get(HOST_FAILURES, pay[i]);
        cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
        fail_by_webhook(&m, co[i], created[i]);
    }

    /* max=2 failures from this address: the third link is refused */
    r = lim_get(HOST_FAILURES, pay[2]);
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);
    cr_assert(strncmp(resp_header(r, "Content-Type"), "text/html", 9) == 0);
    cr_assert(retry_after(r) >= 1 && retry_after(r) <= 600 + 600 / 16 + 1);
}


/* -- state survives a reload ----------------------------------------------- */

static char *
workers(void)
{
    char           *pid, *list, *stat, *p;
    DIR            *d;
    struct dirent  *e;

    pid = file_read(run_file("nginx.pid"), NULL);
    cr_assert_not_null(pid);
    pid[strcspn(pid, "\n")] = '\0';

    list = strdup(" ");
    d = opendir("/proc");
    cr_assert_not_null(d);

    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }

        stat = file_read(str_printf("/proc/%s/stat", e->d_name), NULL);
        if (stat == NULL || (p = strrchr(stat, ')')) == NULL) {
            continue;
        }

        /* ") S PPID ..." */
        if (strncmp(p + 4, pid, strlen(pid)) == 0
            && p[4 + strlen(pid)] == ' ')
        {
            list = str_printf("%s%s ", list, e->d_name);
        }
    }

    closedir(d);
    return list;
}


static void
nginx_reload(void)
{
    int    i, rc;
    char  *before, *after, *cmd, *w, *save;

    after = NULL;

    before = workers();
    cmd = str_printf("nginx -q -p %s/ -c %s/nginx.conf -s reload "
                     ">>%s/logs/reload.log 2>&1", env("PAY_TEST_RUN"),
                     env("PAY_TEST_RUN"), env("PAY_TEST_RUN"));
    rc = system(cmd);
    cr_assert_eq(rc, 0, "%s failed", cmd);

    /* the old workers go, new ones come */
    for (i = 0; i < 100; i++) {
        msleep(100);
        after = workers();

        if (strcmp(after, " ") == 0) {
            continue;
        }

        for (w = strtok_r(strdup(before), " ", &save); w;
             w = strtok_r(NULL, " ", &save))
        {
            if (strstr(after, str_printf(" %s ", w))) {
                break;
            }
        }

        if (w == NULL) {
            return;
        }
    }

    cr_assert_fail("the workers were not replaced after a reload: %s -> %s",
                   before, after);
}


Test(solo_limits, state_survives_nginx_reload, .timeout = E2E_TIMEOUT)
{
    int          i;
    merchant_t   m;
    resp_t      *r;

    merchant_new(&m);

    for (i = 0; i < 3; i++) {
        r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
        cr_assert_eq(r->status, 400, "%s", r->body);
    }

    r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
    expect_rate_limited(r, 55, 60);

    nginx_reload();

    /* new workers, same zone: still limited, still the same minute */
    r = lim_post(HOST_MERCHANT, &m, NULL, "{}", NULL);
    expect_rate_limited(r, 40, 60);

    cr_assert(gw_wait_ready(200, 10));
}


/* --- an amount the store never took ----------------------------------------- */

typedef struct {
    const gateway_t   *gw;
    const merchant_t  *m;
    resp_t            *r;
} held_post_t;


static void *
held_post(void *arg)
{
    held_post_t  *h = arg;

    h->r = gateway_send(h->gw, "POST", PATH_PAYMENTS, h->m, uid("key"),
                        body_of_amount(uid("co"), "5.00"));
    return NULL;
}


/*
 * A registration answered 503 because its claim never reached the database
 * (the gateway's one connection busy, its queue full) gives its reserved
 * amount back: before, each such request kept it for the whole window, so
 * a merchant retrying through an outage as the 503 says was refused with
 * 429 for up to an hour after the store came back.  A gateway of the
 * test's own: one connection, a queue of one, max=USD:40.00; its claims are
 * held by a lock on idempotency_keys, which is why the suite runs alone.
 */
Test(solo_limits, an_amount_the_store_never_took_is_given_back,
     .timeout = E2E_TIMEOUT)
{
    int           i, n503;
    PGconn       *c;
    resp_t       *r;
    gateway_t     gw;
    merchant_t    m;
    pthread_t     th[2];
    held_post_t   h[2];

    gateway_start(&gw, "limit-store", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_database_queue 1;\n"
        "payments_sweeper off;\n"
        "payments_auth_cache 60s;\n"
        "payments_limit_amount store_amount size=1m window=1h"
        " max=USD:40.00;\n"
        "payments_limit amount=store_amount;\n"
        "%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    gateway_wait_ready(&gw, 10);

    /* 5.00 registered (and the key cached) */
    merchant_new(&m);
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_of_amount(uid("co"), "5.00"));
    cr_assert_eq(r->status, 201, "%s", r->body);

    /*
     * Worker 0's first purge of expired keys runs a second after it starts
     * (then each minute) and deletes from idempotency_keys: met by the lock
     * below, it would hold the one connection and a held claim would find
     * the queue full (503), as seen under load.  Past it, nothing but the
     * claims touches that table.
     */
    msleep(1500);

    /* two claims held (the connection's and the queue's), 5.00 each */
    c = db_lock_table("idempotency_keys");

    for (i = 0; i < 2; i++) {
        h[i].gw = &gw;
        h[i].m = &m;
        h[i].r = NULL;
        cr_assert_eq(pthread_create(&th[i], NULL, held_post, &h[i]), 0);
        msleep(300);
    }

    /* six more find the store's queue full: 503, nothing stored */
    n503 = 0;
    for (i = 0; i < 6; i++) {
        r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                         body_of_amount(uid("co"), "5.00"));
        n503 += (r->status == 503);
        cr_expect(r->status == 503, "%ld %s", r->status, r->body);
    }

    db_unlock(c);
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(h[i].r->status, 201, "%s", h[i].r->body);
    }

    /* 15.00 stored: 25.00 more fits, exactly */
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_of_amount(uid("co"), "25.00"));
    cr_expect_eq(r->status, 201, "after %d refused: %ld %s", n503, r->status,
                 r->body);

    gateway_stop(&gw);
}


/* --- an amount whose claim's outcome the gateway never learnt --------------- */

/*
 * A gateway of the test's own: two database connections whose queries time
 * out after timeout, max=USD:10.00, and a merchant; past worker 0's first
 * purge of expired keys (a second after the start), which would take one
 * of the two connections at the test's first request.
 */
static gateway_t  unknown_gw;


/* a test that fails stops its gateway too */
static void
unknown_stop(void)
{
    gateway_stop(&unknown_gw);
}


static void
unknown_start(gateway_t *gw, merchant_t *m, const char *timeout)
{
    gateway_start(gw, "limit-unknown", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_database_timeout %s;\n"
        "payments_sweeper off;\n"
        "payments_auth_cache 60s;\n"
        "payments_limit_amount unknown_amount size=1m window=1h"
        " max=USD:10.00;\n"
        "payments_limit amount=unknown_amount;\n"
        "%s",
        pg_gateway_conninfo(), timeout,
        gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    gateway_wait_ready(gw, 10);

    merchant_new(m);
    msleep(1500);
}


static char *
checkouts_of(const merchant_t *m, const char *co)
{
    const char  *p[2] = { m->id, co };

    return db_scalar("SELECT count(*) FROM checkouts"
                     " WHERE merchant_id = $1 AND checkout_id = $2", 2, p);
}


/* within 5 s, m's checkout co is stored */
static int
checkout_stored(const merchant_t *m, const char *co)
{
    int  i;

    for (i = 0; i < 50; i++) {
        if (strcmp(checkouts_of(m, co), "1") == 0) {
            return 1;
        }

        msleep(100);
    }

    return 0;
}


typedef struct {
    const gateway_t   *gw;
    const merchant_t  *m;
    const char        *key;
    const char        *body;
    resp_t            *r;
} unknown_post_t;


static void *
unknown_post(void *arg)
{
    unknown_post_t  *u = arg;

    u->r = gateway_send(u->gw, "POST", PATH_PAYMENTS, u->m, u->key, u->body);
    return NULL;
}


/* m's POST of body under key, sent to unknown_gw in a thread of its own:
 * its answer in u->r once th is joined */
static void
unknown_post_start(unknown_post_t *u, pthread_t *th, const merchant_t *m,
    const char *key, const char *body)
{
    u->gw = &unknown_gw;
    u->m = m;
    u->key = key;
    u->body = body;
    u->r = NULL;
    cr_assert_eq(pthread_create(th, NULL, unknown_post, u), 0);
}


/*
 * m's checkout of 4.00 (key1, body1) registered, its amount counted once
 * under max=USD:10.00: 7.00 more is over max (why, if not); the retry
 * with the same key finds the claim made and gives its own 4.00 back (409
 * while its lease runs, or resumed); 6.00 fits exactly, then nothing more.
 */
static void
counted_once(const merchant_t *m, const char *key1, const char *body1,
    const char *why)
{
    resp_t  *r;

    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, m, uid("key"),
                     body_of_amount(uid("co"), "7.00"));
    cr_assert_eq(r->status, 429, "%s: %ld %s", why, r->status, r->body);

    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, m, key1, body1);
    cr_assert(r->status == 409 || r->status == 201, "the retry: %ld %s",
              r->status, r->body);

    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, m, uid("key"),
                     body_of_amount(uid("co"), "6.00"));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, m, uid("key"),
                     body_of_amount(uid("co"), "0.01"));
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);
}


/*
 * A claim sent whose answer the gateway never read (the query timed out
 * while a lock held it) is committed by PostgreSQL afterwards: the
 * checkout is registered.  Its amount stays counted (before, it was given
 * back, and a merchant could go past max by one checkout per such fault);
 * a retry with the same Idempotency-Key counts its own amount once and
 * gives it back.
 */
Test(limits, an_amount_whose_claim_timed_out_stays_counted,
     .timeout = E2E_TIMEOUT, .fini = unknown_stop)
{
    char        *co1, *key1, *body1;
    PGconn      *c;
    resp_t      *r;
    merchant_t   m;

    unknown_start(&unknown_gw, &m, "2s");

    co1 = uid("co");
    key1 = uid("key");
    body1 = body_of_amount(co1, "4.00");

    /* 4.00 claimed while its key is held by another transaction: the
     * query times out, 503, and the claim still waits in PostgreSQL */
    c = db_hold_key(m.id, key1, co1);
    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, &m, key1, body1);
    cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
    db_release_key(c);

    /* PostgreSQL never learnt that the gateway left: committed */
    cr_assert(checkout_stored(&m, co1),
              "the held claim never committed");

    counted_once(&m, key1, body1, "the registered 4.00 was given back");
}


/*
 * A claim whose database connection breaks while it runs (its backend
 * terminated while a lock holds it): the gateway cannot tell whether it
 * committed, and keeps its amount counted, as the doc says, although this
 * one was rolled back.  The retry with the same key registers it and
 * counts it again: the merchant may register that much less until its
 * sub-window leaves the window; never more than max.
 */
Test(limits, an_amount_whose_claim_lost_its_connection_stays_counted,
     .timeout = E2E_TIMEOUT, .fini = unknown_stop)
{
    char            *co1, *key1, *body1, *pid;
    PGconn          *c;
    resp_t          *r;
    pthread_t        th;
    merchant_t       m;
    unknown_post_t   u;

    unknown_start(&unknown_gw, &m, "2s");

    co1 = uid("co");
    key1 = uid("key");
    body1 = body_of_amount(co1, "4.00");

    c = db_hold_key(m.id, key1, co1);

    unknown_post_start(&u, &th, &m, key1, body1);

    pid = db_waiter_of(c, "no claim waited for the held key");
    db_scalar("SELECT pg_terminate_backend($1::int)", 1,
              (const char *const []) { pid });

    pthread_join(th, NULL);
    db_release_key(c);

    cr_assert_eq(u.r->status, 503, "%ld %s", u.r->status, u.r->body);
    cr_assert_str_eq(checkouts_of(&m, co1), "0");

    /* 4.00 kept counted: 7.00 more is over max */
    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_of_amount(uid("co"), "7.00"));
    cr_assert_eq(r->status, 429, "the 4.00 was given back: %ld %s",
                 r->status, r->body);

    /* the retry claims it afresh: 4.00 + 4.00 counted, 2.00 fits */
    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, &m, key1, body1);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_assert_str_eq(checkouts_of(&m, co1), "1");

    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_of_amount(uid("co"), "2.00"));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    r = gateway_send(&unknown_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_of_amount(uid("co"), "0.01"));
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);
}


/* synchronous replication to a standby that never comes: every commit
 * of the lane's cluster (synchronous_commit on, for every session; the
 * lane runs with it off) waits for it after its commit record is written
 * (on), or none does (off).  The postmaster reloads on its own time: on
 * returns once a new session sees both settings. */
static void
commits_wait_for_a_standby(int on)
{
    int      i;
    char    *v;
    PGconn  *c;

    if (!on) {
        db_exec("ALTER SYSTEM RESET synchronous_standby_names", 0, NULL);
        db_exec("ALTER SYSTEM RESET synchronous_commit", 0, NULL);
        db_exec("SELECT pg_reload_conf()", 0, NULL);
        return;
    }

    db_exec("ALTER SYSTEM SET synchronous_commit = on", 0, NULL);
    db_exec("ALTER SYSTEM SET synchronous_standby_names = 'nobody'", 0, NULL);
    db_exec("SELECT pg_reload_conf()", 0, NULL);

    for (i = 0; i < 100; i++) {
        c = PQconnectdb(env("PAY_TEST_PG"));
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
        v = db_scalar_on(c, "SELECT current_setting('synchronous_commit')"
                            " || ' ' || current_setting("
                            "'synchronous_standby_names')", 0, NULL);
        PQfinish(c);

        if (v != NULL && strcmp(v, "on nobody") == 0) {
            free(v);
            msleep(100);
            return;
        }

        free(v);
        msleep(50);
    }

    cr_assert_fail("commits do not wait for a standby after 5 s");
}


static void
committed_stop(void)
{
    commits_wait_for_a_standby(0);
    gateway_stop(&unknown_gw);
}


/*
 * A claim committed whose session then ended before its answer (its
 * backend terminated while the commit waited for synchronous replication,
 * PostgreSQL's "the transaction has already committed locally"): the
 * server's last words are a WARNING and a FATAL, then the connection
 * closes.  The checkout is registered, so its amount stays counted: a
 * FATAL is never read as an answer that rolled the claim back.  Solo: the
 * setting holds every commit of the lane's cluster.
 */
Test(solo_limits, an_amount_whose_claim_committed_as_its_session_ended_stays_counted,
     .timeout = E2E_TIMEOUT, .fini = committed_stop)
{
    char            *co1, *key1, *body1, *pid;
    resp_t          *r;
    pthread_t        th;
    merchant_t       m;
    unknown_post_t   u;

    unknown_start(&unknown_gw, &m, "5s");

    co1 = uid("co");
    key1 = uid("key");
    body1 = body_of_amount(co1, "4.00");

    /* the merchant's key looked up once (its look-up writes, and would
     * wait for the standby too): cached for the test */
    r = gateway_send(&unknown_gw, "GET", "/v1/checkouts/none", &m, NULL, NULL);
    cr_assert_eq(r->status, 404, "%ld %s", r->status, r->body);

    db_exec("SET synchronous_commit = local", 0, NULL);
    commits_wait_for_a_standby(1);

    unknown_post_start(&u, &th, &m, key1, body1);

    /* the claim's commit written, waiting for the standby */
    pid = db_gateway_waiting("wait_event = 'SyncRep' AND query LIKE $1",
                             "%pay_claim(%", "no claim waited for the standby");

    db_scalar("SELECT pg_terminate_backend($1::int)", 1,
              (const char *const []) { pid });
    pthread_join(th, NULL);
    commits_wait_for_a_standby(0);

    cr_assert_geq(u.r->status, 500, "%ld %s", u.r->status, u.r->body);
    cr_assert_str_eq(checkouts_of(&m, co1), "1",
                     "the claim was not committed locally");

    counted_once(&m, key1, body1, "the committed 4.00 was given back");
}
