/*
 * End to end: the contract as a storefront engineer reads it
 * (doc/API.md, doc/NOTIFICATIONS.md, doc/QUICKSTART.md):
 *
 *   - a failed checkout says why (`failure` {code, message}) in
 *     GET /v1/checkouts/{id}, in the 201 and in checkout.failed: declined,
 *     expired, refused at registration and canceled at the PSP each its
 *     own code (psp_canceled, never to be mistaken for the shop's own
 *     cancel, canceled);
 *   - a payment that arrived after a failure is visible: its own
 *     notification type, the checkout's `paid_after_failure` and its events,
 *     and it is refundable through the API;
 *   - registration refuses a seller the merchant has not registered, when
 *     it has registered any;
 *   - return URLs keep the shop's query string and substitute
 *     {CHECKOUT_ID};
 *   - unknown routes and wrong methods answer problem+json.
 */

#include "harness.h"

#include <payments/money.h>
#include <sys/wait.h>
#include <time.h>


typedef struct {
    merchant_t   m;
    char        *co;
    char        *token;
    char        *po[2];
} sf_t;


static char *
sf_secret(void)
{
    size_t  len;
    char   *s;

    s = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(s);
    return s;
}


/* A Stripe checkout.session event for the checkout's session. */
static char *
sf_stripe_event(const sf_t *s, const char *type, const char *payment_status,
    const char *pi)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":\"%s\","
                      "\"created\":%ld,\"livemode\":false,\"data\":{\"object\":"
                      "{\"id\":\"%s\",\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s:%s\",\"amount_total\":1500,"
                      "\"currency\":\"usd\",\"payment_status\":\"%s\","
                      "\"payment_intent\":%s%s%s,"
                      "\"status\":\"%s\"}}}",
                      uid("evt"), type, (long) time(NULL), s->token, s->m.id,
                      s->co, payment_status, pi ? "\"" : "",
                      pi ? pi : "null", pi ? "\"" : "",
                      strstr(type, "expired") ? "expired" : "complete");
}


static void
sf_deliver(const char *body)
{
    long     t = (long) time(NULL);
    char    *sig;
    req_t    rq;
    resp_t  *r;

    sig = stripe_signature(sf_secret(), t, body);

    {
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        r = http(&rq);
    }

    cr_assert_eq(r->status, 200, "webhook: %ld %s", r->status, r->body);
    resp_free(r);
}


/* A checkout of m (merchant_new'd when m->id is empty) registered. */
static void
sf_register(sf_t *s)
{
    resp_t  *r;

    if (s->m.id[0] == '\0') {
        merchant_new(&s->m);
    }

    s->co = uid("co");
    s->po[0] = str_printf("%s_p1", s->co);
    s->po[1] = str_printf("%s_p2", s->co);
    r = register_ok(&s->m, uid("key"), body_for(s->co));
    s->token = strdup(json_string_value(json_object_get(resp_json(r),
                                                        "psp_token")));
    resp_free(r);
}


static json_t *
sf_checkout(const sf_t *s)
{
    resp_t  *r;
    json_t  *j;

    r = api_get(&s->m, str_printf("/v1/checkouts/%s", s->co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = json_incref(resp_json(r));
    resp_free(r);
    return j;
}


static const char *
sf_str(const json_t *j, const char *key)
{
    const char  *v;

    v = json_string_value(json_object_get(j, key));
    return v != NULL ? v : "";
}


/* failure.code of j, after checking failure is {code, message} */
static const char *
sf_failure_code(const json_t *j)
{
    json_t  *f;

    f = json_object_get(j, "failure");
    cr_assert(json_is_object(f), "failure is not an object: %s", dump(j));
    cr_expect(json_string_length(json_object_get(f, "message")) > 0,
              "failure has no message: %s", dump(j));
    return sf_str(f, "code");
}


/* The first delivery of that type to ep about checkout co, answered 204. */
static json_t *
sf_delivery(const endpoint_t *ep, const char *type, const char *co)
{
    int      i;
    size_t   k;
    json_t  *ds, *d;

    ds = NULL;

    for (i = 0; i < 150; i++) {
        json_decref(ds);
        ds = receiver_deliveries(ep->name);

        json_array_foreach(ds, k, d) {
            if (strcmp(sf_str(d, "type"), type) == 0
                && strcmp(sf_str(d, "answer"), "204") == 0
                && strcmp(sf_str(json_object_get(d, "data"), "checkout_id"),
                          co) == 0)
            {
                return json_incref(d);
            }
        }

        msleep(100);
    }

    cr_assert_fail("%s: no %s for %s: %s", ep->path, type, co, dump(ds));
    return NULL;
}


/* --- failure reasons -------------------------------------------------------- */

TestSuite(storefront, .timeout = E2E_TIMEOUT);


Test(storefront, a_failed_checkout_says_why_in_the_api_and_its_notification,
     .description = "declined, expired, canceled at the PSP and refused at "
                    "registration: each its failure.code in GET "
                    "/v1/checkouts/{id} and in checkout.failed")
{
    sf_t         d, e, c, f;
    json_t      *j, *n;
    resp_t      *r;
    char        *co;
    endpoint_t   ep;
    const char  *params[3];

    memset(&d, 0, sizeof(d));
    merchant_new(&d.m);
    endpoint_add(&d.m, NULL, &ep);

    /* declined: Stripe's asynchronous payment failed */
    sf_register(&d);
    sf_deliver(sf_stripe_event(&d, "checkout.session.async_payment_failed",
                               "unpaid", NULL));
    j = sf_checkout(&d);
    cr_expect_str_eq(sf_str(j, "status"), "FAILED");
    cr_expect_str_eq(sf_failure_code(j), "declined", "%s", dump(j));
    n = json_object_get(sf_delivery(&ep, "checkout.failed", d.co), "data");
    cr_expect_str_eq(sf_failure_code(n), "declined", "%s", dump(n));

    /* expired: the session's time ran out */
    e = d;
    sf_register(&e);
    sf_deliver(sf_stripe_event(&e, "checkout.session.expired", "unpaid",
                               NULL));
    j = sf_checkout(&e);
    cr_expect_str_eq(sf_failure_code(j), "expired", "%s", dump(j));
    n = json_object_get(sf_delivery(&ep, "checkout.failed", e.co), "data");
    cr_expect_str_eq(sf_failure_code(n), "expired", "%s", dump(n));

    /* psp_canceled: the PSP's session look-up says so (Adyen's "canceled") */
    c = d;
    sf_register(&c);
    params[0] = env("PAY_TEST_PSP");
    params[1] = uid("lookup:x");
    params[2] = str_printf("%s:%s", c.m.id, c.co);
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_sweeper_apply($1, $2,"
                               " 'FAILED', 'canceled', NULL, $3, -1, '', NULL,"
                               " NULL)", 3, params), "applied");
    j = sf_checkout(&c);
    cr_expect_str_eq(sf_failure_code(j), "psp_canceled", "%s", dump(j));
    n = json_object_get(sf_delivery(&ep, "checkout.failed", c.co), "data");
    cr_expect_str_eq(sf_failure_code(n), "psp_canceled", "%s", dump(n));

    /* refused at registration: in the 201, the view and the notification,
     * the PSP's reason as its message */
    f = d;
    co = uid("co");
    f.co = co;
    mock_fault(str_printf("{\"match\":\"%s\",\"refuse_status\":402}",
                          nonce(&f.m, co)));
    r = api_post(&f.m, uid("key"), body_for(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_expect_str_eq(sf_failure_code(resp_json(r)), "registration_refused",
                     "%s", r->body);
    resp_free(r);
    j = sf_checkout(&f);
    cr_expect_str_eq(sf_failure_code(j), "registration_refused", "%s",
                     dump(j));
    n = json_object_get(sf_delivery(&ep, "checkout.failed", co), "data");
    cr_expect_str_eq(sf_failure_code(n), "registration_refused", "%s",
                     dump(n));

    /* a checkout not failed has no failure */
    memset(&c, 0, sizeof(c));
    c.m = d.m;
    sf_register(&c);
    j = sf_checkout(&c);
    cr_expect_null(json_object_get(j, "failure"), "%s", dump(j));
}


/* --- sellers ------------------------------------------------------------------ */

static void
sf_add_seller(const merchant_t *m, const char *seller)
{
    int          rc;
    char        *out;
    const char  *args[] = { "add-seller", "--id", m->id, "--seller", seller,
                            "--psp", env("PAY_TEST_PSP"), "--destination",
                            "acct_1MockSeller", NULL };

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "add-seller: %s", out);
}


static long
sf_count(const char *sql, const char *a, const char *b)
{
    const char  *params[] = { a, b };

    return atol(db_scalar(sql, b ? 2 : 1, params));
}


Test(storefront, an_unknown_seller_is_refused_at_registration_once_sellers_exist,
     .description = "a merchant with registered sellers: an order for "
                    "another seller is 422 seller_not_registered, nothing "
                    "stored, the same key then registers the fixed body; "
                    "a merchant without sellers registers any")
{
    char        *co, *key, *body;
    resp_t      *r;
    json_t      *j;
    merchant_t   m, free_m;

    merchant_new(&free_m);
    r = api_post(&free_m, uid("key"), body_for(uid("co")));
    cr_expect_eq(r->status, 201, "no sellers registered: any is taken: %ld %s",
                 r->status, r->body);
    resp_free(r);

    merchant_new(&m);
    sf_add_seller(&m, "seller_1");

    co = uid("co");
    key = uid("key");
    r = api_post(&m, key, body_for(co));     /* seller_1 and seller_2 */
    expect_problem(r, 422, "seller_not_registered");
    cr_expect(strstr(r->body, "seller_2") != NULL,
              "the detail names the seller: %s", r->body);
    cr_expect(strstr(r->body, "seller_1") == NULL, "%s", r->body);
    resp_free(r);

    cr_expect_eq(sf_count("SELECT count(*) FROM checkouts WHERE merchant_id"
                          " = $1 AND checkout_id = $2", m.id, co), 0,
                 "nothing stored");
    cr_expect_eq(sf_count("SELECT count(*) FROM idempotency_keys WHERE"
                          " merchant_id = $1 AND idem_key = $2", m.id, key),
                 0, "the key is not claimed");

    /* the body fixed, the same key: registered */
    j = checkout_new(co, 2);
    json_object_set_new(json_array_get(json_object_get(j, "payment_orders"),
                                       1),
                        "seller_account", json_string("seller_1"));
    body = dump(j);
    r = api_post(&m, key, body);
    cr_expect_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
}


/* --- return URLs ---------------------------------------------------------------- */

/* The gateway's return link the PSP was given (param: "success_url" or
 * "cancel_url" of the mock's session), as a URL of the test's gateway. */
static char *
sf_return_link(const sf_t *s, const char *param)
{
    char    *auth;
    req_t    rq;
    resp_t  *r;
    json_t  *j;

    auth = str_printf("Authorization: Bearer %s",
                      file_read(run_file("conf/psp.secret"), NULL));

    {
        const char  *h[] = { auth, NULL };

        rq.method = "GET";
        rq.url = mock_url(str_printf("/v1/checkout/sessions/%s", s->token));
        rq.headers = h;
        rq.body = NULL;
        rq.len = 0;
        r = http(&rq);
    }

    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);

    return gw_url_for(json_string_value(json_object_get(j, param)));
}


Test(storefront, return_urls_keep_the_query_and_substitute_the_checkout_id,
     .description = "success_url and cancel_url come back with the shop's "
                    "query string as registered and {CHECKOUT_ID} (or its "
                    "percent-encoded form) replaced by the checkout's id")
{
    sf_t         s;
    json_t      *co;
    resp_t      *r;

    memset(&s, 0, sizeof(s));
    merchant_new(&s.m);
    s.co = uid("co");
    co = checkout_new(s.co, 2);
    json_object_set_new(co, "success_url", json_string(
        SHOP_ORIGIN "/thanks?order={CHECKOUT_ID}&lang=de&q=a%20b"));
    json_object_set_new(co, "cancel_url", json_string(
        SHOP_ORIGIN "/cart/%7BCHECKOUT_ID%7D?x=1#top"));
    r = register_ok(&s.m, uid("key"), dump(co));
    s.token = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));
    resp_free(r);

    /* cancel: back to the cart, nothing changes */
    r = http_get(sf_return_link(&s, "cancel_url"));
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Location"),
                     str_printf(SHOP_ORIGIN "/cart/%s?x=1#top", s.co));
    resp_free(r);

    /* paid: the success URL, its query as the shop wrote it */
    sf_deliver(sf_stripe_event(&s, "checkout.session.completed", "paid",
                               uid("pi")));
    r = http_get(sf_return_link(&s, "success_url"));
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Location"),
                     str_printf(SHOP_ORIGIN "/thanks?order=%s&lang=de&q=a%%20b",
                                s.co));
    resp_free(r);
}


/* --- routes ------------------------------------------------------------------- */

static resp_t *
sf_send(const merchant_t *m, const char *method, const char *path)
{
    req_t   rq;
    char   *auth;

    auth = str_printf("Authorization: Bearer %s", m->key);

    {
        const char  *h[] = { auth, "Content-Type: application/json",
                             "Idempotency-Key: k1", NULL };

        memset(&rq, 0, sizeof(rq));
        rq.method = method;
        rq.url = gw_url(path);
        rq.headers = h;
        rq.body = strcmp(method, "GET") == 0 ? NULL : "{}";
        rq.len = rq.body ? (size_t) -1 : 0;

        return http(&rq);
    }
}


Test(storefront, unknown_routes_and_wrong_methods_answer_problem_json,
     .description = "404 not_found for a path no route has, 405 "
                    "method_not_allowed with Allow for a method the route "
                    "does not take: problem+json either way")
{
    size_t       i;
    resp_t      *r;
    merchant_t   m;
    const char  *allow;

    static const char  *unknown[] = {
        "/v1/nope", "/v1/payments/po_1/nope", "/v1/checkout", "/v2/payments",
        "/v1/webhooks", "/v1/notifications/msg_1/nope"
    };

    static const struct { const char *method, *path, *allow; }  wrong[] = {
        /* GET lists, POST creates */
        { "DELETE", "/v1/payments", "GET, HEAD, POST" },
        { "PUT", "/v1/payouts", "GET, HEAD, POST" },
        { "PUT", "/v1/payments/po_1", "GET" },
        { "POST", "/v1/checkouts/co_1", "GET" },
        { "POST", "/v1/checkouts", "GET" },
        { "POST", "/v1/refunds", "GET" },
        { "POST", "/v1/events", "GET" },
        { "GET", "/v1/payments/po_1/refunds", "POST" },
        { "GET", "/v1/webhooks/stripe", "POST" },
        { "DELETE", "/v1/notifications", "GET" },
    };

    merchant_new(&m);

    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        r = sf_send(&m, "GET", unknown[i]);
        expect_problem(r, 404, "not_found");
        resp_free(r);
    }

    for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        r = sf_send(&m, wrong[i].method, wrong[i].path);
        cr_expect_eq(r->status, 405, "%s %s: %ld %s", wrong[i].method,
                     wrong[i].path, r->status, r->body);
        cr_expect(strncmp(resp_header(r, "Content-Type")
                          ? resp_header(r, "Content-Type") : "",
                          "application/problem+json", 24) == 0,
                  "%s %s: %s", wrong[i].method, wrong[i].path, r->body);
        cr_expect(strstr(r->body, "\"method_not_allowed\"") != NULL,
                  "%s %s: %s", wrong[i].method, wrong[i].path, r->body);
        allow = resp_header(r, "Allow");
        cr_expect(allow != NULL && strstr(allow, wrong[i].allow) != NULL,
                  "%s %s: Allow %s", wrong[i].method, wrong[i].path,
                  allow ? allow : "(none)");
        resp_free(r);
    }
}


/* --- a payment after a failure ------------------------------------------------- */

static void
sf_mock_pay(const sf_t *s)
{
    req_t    rq;
    resp_t  *r;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay", s->token));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
    resp_free(r);
}


/* POST path with a fresh Idempotency-Key and body. */
static resp_t *
sf_post(const merchant_t *m, const char *path, const char *body)
{
    req_t   rq;
    char   *auth, *idem;

    auth = str_printf("Authorization: Bearer %s", m->key);
    idem = str_printf("Idempotency-Key: %s", uid("k"));

    {
        const char  *h[] = { auth, idem, "Content-Type: application/json",
                             NULL };

        memset(&rq, 0, sizeof(rq));
        rq.method = "POST";
        rq.url = gw_url(path);
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


Test(storefront, a_payment_after_a_failure_is_notified_shown_and_refundable,
     .timeout = 60,
     .description = "expired, then the shopper pays at the PSP: "
                    "checkout.paid_after_failure (with the failure it came "
                    "after), GET /v1/checkouts/{id} SUCCESS with "
                    "paid_after_failure and the FAILED -> SUCCESS events, "
                    "and a refund through the API is notified")
{
    int          i;
    sf_t         s;
    size_t       k, moved;
    json_t      *d, *data, *j, *ev;
    resp_t      *r;
    endpoint_t   ep;

    memset(&s, 0, sizeof(s));
    merchant_new(&s.m);
    endpoint_add(&s.m, NULL, &ep);
    sf_register(&s);

    sf_deliver(sf_stripe_event(&s, "checkout.session.expired", "unpaid",
                               NULL));
    (void) sf_delivery(&ep, "checkout.failed", s.co);

    sf_mock_pay(&s);

    d = sf_delivery(&ep, "checkout.paid_after_failure", s.co);
    data = json_object_get(d, "data");
    cr_expect_str_eq(sf_str(data, "status"), "SUCCESS", "%s", dump(d));
    cr_expect_eq(json_integer_value(json_object_get(data,
                                                    "amount_total_minor")),
                 1500, "%s", dump(d));
    cr_expect_str_eq(sf_str(json_object_get(data, "after_failure"), "code"),
                     "expired", "%s", dump(d));

    /* and not a plain checkout.succeeded as well */
    msleep(500);
    j = receiver_deliveries(ep.name);
    json_array_foreach(j, k, ev) {
        cr_expect_str_neq(sf_str(ev, "type"), "checkout.succeeded", "%s",
                          dump(j));
    }

    j = NULL;
    for (i = 0; i < 100; i++) {
        json_decref(j);
        j = sf_checkout(&s);
        if (strcmp(sf_str(j, "status"), "SUCCESS") == 0) {
            break;
        }
        msleep(100);
    }
    cr_assert_str_eq(sf_str(j, "status"), "SUCCESS", "%s", dump(j));
    cr_expect(json_is_true(json_object_get(j, "is_payment_done")));
    cr_expect(json_is_true(json_object_get(j, "paid_after_failure")),
              "%s", dump(j));
    cr_expect_null(json_object_get(j, "failure"), "%s", dump(j));

    moved = 0;
    json_array_foreach(json_object_get(j, "events"), k, ev) {
        if (strcmp(sf_str(ev, "from"), "FAILED") == 0
            && strcmp(sf_str(ev, "to"), "SUCCESS") == 0)
        {
            moved++;
        }
    }
    cr_expect_eq(moved, 2, "each order FAILED -> SUCCESS: %s", dump(j));

    /* refundable through the API, and the refund notified */
    for (i = 0; i < 100; i++) {
        r = sf_post(&s.m, str_printf("/v1/payments/%s/refunds", s.po[0]),
                    "{\"amount\":\"4.00\",\"reason\":\"returned\"}");
        if (r->status != 409) {
            break;
        }
        resp_free(r);
        msleep(100);        /* the PSP's payment id arrives with its event */
    }
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
    (void) sf_delivery(&ep, "refund.succeeded", s.co);
}


/* --- sequence per object ---------------------------------------------------------- */

/* The sequences of the deliveries of type about object id, in increasing
 * order, as "1,2" (deliveries may arrive out of order, doc/NOTIFICATIONS.md:
 * the numbers are the contract, not the arrival): the receiver's object_id
 * is the refund's, the dispute's or the checkout's own id. */
static char *
sf_sequences(const endpoint_t *ep, const char *prefix, const char *id)
{
    size_t     k, n, i, j;
    json_t    *ds, *d;
    char      *out;
    long long  seq[64], t;

    n = 0;
    ds = receiver_deliveries(ep->name);

    json_array_foreach(ds, k, d) {
        if (strncmp(sf_str(d, "type"), prefix, strlen(prefix)) == 0
            && strcmp(sf_str(d, "object_id"), id) == 0
            && strcmp(sf_str(d, "answer"), "204") == 0
            && n < sizeof(seq) / sizeof(seq[0]))
        {
            seq[n++] = (long long) json_integer_value(
                           json_object_get(json_object_get(d, "data"),
                                           "sequence"));
        }
    }

    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && seq[j - 1] > seq[j]; j--) {
            t = seq[j];
            seq[j] = seq[j - 1];
            seq[j - 1] = t;
        }
    }

    out = strdup("");

    for (i = 0; i < n; i++) {
        out = str_printf("%s%s%lld", out, out[0] ? "," : "", seq[i]);
    }

    return out;
}


Test(storefront, sequence_counts_each_object_on_its_own, .timeout = 60,
     .description = "a checkout's, each refund's and each dispute's "
                    "notifications are numbered 1, 2, ... each on their "
                    "own: a refund does not move its checkout's sequence")
{
    int          i;
    sf_t         s;
    char        *rf1, *rf2, *ref, *dp;
    resp_t      *r;
    json_t      *d;
    endpoint_t   ep;

    memset(&s, 0, sizeof(s));
    merchant_new(&s.m);
    endpoint_add(&s.m, NULL, &ep);
    sf_register(&s);
    sf_mock_pay(&s);
    (void) sf_delivery(&ep, "checkout.succeeded", s.co);

    r = sf_post(&s.m, str_printf("/v1/payments/%s/refunds", s.po[0]),
                "{\"amount\":\"1.00\"}");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    rf1 = strdup(sf_str(resp_json(r), "refund_id"));
    resp_free(r);
    (void) sf_delivery(&ep, "refund.succeeded", s.co);

    r = sf_post(&s.m, str_printf("/v1/payments/%s/refunds", s.po[1]),
                "{\"amount\":\"1.00\"}");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    rf2 = strdup(sf_str(resp_json(r), "refund_id"));
    resp_free(r);

    ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE merchant_id"
                    " = $1 AND checkout_id = $2", 2,
                    (const char *[]) { s.m.id, s.co });
    cr_assert_not_null(ref);
    {
        req_t        rq;
        const char  *h[] = { "Content-Type: application/json", NULL };

        memset(&rq, 0, sizeof(rq));
        rq.method = "POST";
        rq.url = mock_url("/_control/disputes");
        rq.headers = h;
        rq.body = str_printf("{\"payment_ref\":\"%s\",\"amount\":300}", ref);
        rq.len = (size_t) -1;
        r = http(&rq);
        cr_assert_eq(r->status, 200, "%s", r->body);
        dp = strdup(sf_str(resp_json(r), "id"));
        resp_free(r);

        rq.url = mock_url(str_printf("/_control/disputes/%s/close", dp));
        rq.body = "{\"outcome\":\"lost\"}";
        r = http(&rq);
        cr_assert_eq(r->status, 200, "%s", r->body);
        resp_free(r);
    }

    d = NULL;
    for (i = 0; i < 150; i++) {
        json_decref(d);
        d = receiver_deliveries(ep.name);
        if (deliveries_count(d, "204", "dispute.lost") == 1
            && deliveries_count(d, "204", "refund.succeeded") == 2)
        {
            break;
        }
        msleep(100);
    }
    cr_assert_eq(deliveries_count(d, "204", "dispute.lost"), 1, "%s",
                 dump(d));

    cr_expect_str_eq(sf_sequences(&ep, "checkout.", s.co), "1");
    cr_expect_str_eq(sf_sequences(&ep, "refund.", rf1), "1");
    cr_expect_str_eq(sf_sequences(&ep, "refund.", rf2), "1");

    {
        size_t       k;
        json_t      *it;
        const char  *dispute = NULL;

        json_array_foreach(d, k, it) {
            if (strcmp(sf_str(it, "type"), "dispute.opened") == 0) {
                dispute = sf_str(it, "object_id");
            }
        }
        cr_assert_not_null(dispute, "%s", dump(d));
        cr_expect_str_eq(sf_sequences(&ep, "dispute.", dispute), "1,2");
    }
}


/* --- decimal amounts in notifications ------------------------------------------- */

Test(storefront, notifications_carry_the_decimal_amount_as_the_api_writes_it,
     .description = "money_decimal (the notifications' amount) gives every "
                    "currency the gateway knows its own ISO 4217 decimals, "
                    "as the API's amounts have them")
{
    char                   code[4], *codes, *want, *frac;
    const char            *params[1];
    const pay_currency_t  *cur;

    codes = strdup("{");
    want = strdup("");

    for (code[0] = 'A'; code[0] <= 'Z'; code[0]++) {
        for (code[1] = 'A'; code[1] <= 'Z'; code[1]++) {
            for (code[2] = 'A'; code[2] <= 'Z'; code[2]++) {
                code[3] = '\0';
                cur = pay_currency_find(code, 3);
                if (cur == NULL) {
                    continue;
                }

                /* 123456 minor units and -5 */
                frac = cur->exponent == 0 ? strdup("123456")
                       : str_printf("%.*s.%s", 6 - cur->exponent, "123456",
                                    "123456" + 6 - cur->exponent);
                codes = str_printf("%s%s%s", codes, codes[1] ? "," : "",
                                   code);
                want = str_printf("%s%s%s=%s/%s", want, want[0] ? "," : "",
                                  code, frac,
                                  cur->exponent == 0 ? "-5"
                                  : str_printf("-0.%0*d", cur->exponent, 5));
            }
        }
    }

    codes = str_printf("%s}", codes);
    params[0] = codes;
    cr_expect_str_eq(db_scalar("SELECT string_agg(c || '=' ||"
                               " money_decimal(123456, c) || '/' ||"
                               " money_decimal(-5, c), ',' ORDER BY c)"
                               " FROM unnest($1::text[]) c", 1, params),
                     want);
}


/* --- endpoints disabled on time spent failing ------------------------------------ */

Test(storefront, many_failures_in_a_short_outage_do_not_disable_an_endpoint,
     .timeout = 60,
     .description = "a busy shop's short deploy: a dozen deliveries fail "
                    "within seconds (more than any count would allow), the "
                    "endpoint stays enabled because it has not been failing "
                    "for disable_after= (the suite's 8 s), and everything "
                    "is delivered once it answers again")
{
    int          i, n = 12;
    sf_t         s[12];
    json_t      *ds;
    endpoint_t   ep;
    merchant_t   m;
    const char  *params[2];

    merchant_new(&m);
    endpoint_add(&m, "checkout.succeeded", &ep);
    receiver_mode(ep.name, "status 503", NULL);

    for (i = 0; i < n; i++) {
        memset(&s[i], 0, sizeof(sf_t));
        s[i].m = m;
        sf_register(&s[i]);
        sf_mock_pay(&s[i]);
    }

    ds = receiver_wait(ep.name, "503", (size_t) n + 2, 20);
    cr_assert_geq(deliveries_count(ds, "503", NULL), (size_t) n + 2);

    params[0] = m.id;
    params[1] = ep.id;
    cr_expect_str_eq(db_scalar("SELECT (disabled_at IS NULL)::text || ' ' ||"
                               " (failures > 5)::text FROM notify_endpoints"
                               " WHERE merchant_id = $1 AND endpoint_id = $2",
                               2, params), "true true",
                     "many failures, but not failing long: not disabled");

    /* the deploy is over */
    receiver_mode(ep.name, "ok", NULL);
    ds = receiver_wait(ep.name, "204", (size_t) n, 30);
    cr_expect_eq(deliveries_distinct(ds, "204"), (size_t) n, "%s", dump(ds));
    cr_expect_str_eq(db_scalar("SELECT (disabled_at IS NULL)::text || ' ' ||"
                               " (failing_since IS NULL)::text FROM"
                               " notify_endpoints WHERE merchant_id = $1 AND"
                               " endpoint_id = $2", 2, params), "true true");
}


/* --- the quickstart's shop ---------------------------------------------------------- */

/*
 * tests/shop_quickstart/shop.js, written from doc/QUICKSTART.md alone,
 * against the suite's gateway: it pays, refunds, has its endpoint down for
 * 5 s (more failures than any count would allow, shorter than the suite's
 * disable_after=8s, as two minutes are to the default three days) and is
 * not disabled, and rebuilds its state from notifications.
 */
Test(storefront, the_quickstart_shop_pays_refunds_survives_an_outage_and_rebuilds,
     .timeout = 150)
{
    int          rc;
    long         port;
    char        *out, *secret, *end, *cmd, *log, *text;
    merchant_t   m;
    const char  *params[1];
    const char  *extra[] = { "--allow-loopback", NULL };

    merchant_new(&m);
    port = free_port();
    rc = endpoint_add_raw(&m, str_printf("https://127.0.0.1:%ld/hooks", port),
                          extra, &out);
    cr_assert_eq(rc, 0, "add-endpoint: %s", out);
    secret = strstr(out, "whsec_");
    cr_assert_not_null(secret, "no secret printed: %s", out);
    secret = strdup(secret);
    end = strpbrk(secret, " \t\r\n");
    if (end != NULL) {
        *end = '\0';
    }
    secret_used(secret);

    log = run_file(str_printf("logs/shop_quickstart.%s.log", m.id));
    cmd = str_printf("SHOP_GW='%s' SHOP_PUBLIC='%s' SHOP_CA='%s' "
                     "SHOP_CERT='%s' SHOP_KEY='%s' SHOP_PORT=%ld "
                     "SHOP_API_KEY='%s' SHOP_WHSEC='%s' SHOP_PSP='%s' "
                     "SHOP_ORIGIN='%s' SHOP_MOCK='%s' SHOP_OUTAGE_MS=5000 "
                     "node '%s/tests/shop_quickstart/shop.js' >'%s' 2>&1",
                     env("PAY_TEST_GW"), env("PAY_TEST_PUBLIC_ORIGIN"),
                     env("PAY_TEST_CA"), run_file("conf/tls.crt"),
                     run_file("conf/tls.key"), port, m.key, secret,
                     env("PAY_TEST_PSP"), SHOP_ORIGIN, env("PAY_TEST_MOCK"),
                     env("PAY_TEST_ROOT"), log);
    rc = system(cmd);
    text = file_read(log, NULL);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
              "the quickstart shop failed (%d): %s", rc, text ? text : "");
    cr_expect(text != NULL && strstr(text, "shop: ok") != NULL, "%s", text);

    params[0] = m.id;
    cr_expect_str_eq(db_scalar("SELECT count(*) FILTER (WHERE disabled_at IS"
                               " NULL) || '/' || count(*) FROM notify_endpoints"
                               " WHERE merchant_id = $1", 1, params), "1/1",
                     "the endpoint was never disabled");
}


/* --- /v1/webhook_endpoints ------------------------------------------------------------ */

static json_t *
sf_endpoint_of(const json_t *list, const char *id)
{
    size_t   k;
    json_t  *it;

    json_array_foreach(list, k, it) {
        if (strcmp(sf_str(it, "id"), id) == 0) {
            return it;
        }
    }

    return NULL;
}


Test(storefront, a_merchant_lists_disables_and_enables_its_endpoints,
     .description = "GET /v1/webhook_endpoints lists the merchant's own "
                    "endpoints (never a secret); POST .../disable and "
                    ".../enable move one, audited; another merchant's id "
                    "is 404")
{
    resp_t      *r;
    json_t      *j, *it;
    endpoint_t   ep;
    merchant_t   m, other;
    const char  *params[2];

    merchant_new(&m);
    merchant_new(&other);
    endpoint_add(&m, "checkout.succeeded,refund.succeeded", &ep);

    r = api_get(&m, "/v1/webhook_endpoints");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    j = resp_json(r);
    cr_assert(json_is_array(j), "%s", r->body);
    cr_assert_eq(json_array_size(j), 1, "%s", r->body);
    it = sf_endpoint_of(j, ep.id);
    cr_assert_not_null(it, "%s", r->body);
    cr_expect_str_eq(sf_str(it, "url"), ep.url);
    cr_expect_str_eq(sf_str(it, "status"), "enabled");
    cr_expect_eq(json_array_size(json_object_get(it, "events")), 2, "%s",
                 r->body);
    cr_expect(strstr(r->body, "whsec_") == NULL && strstr(r->body, ep.secret)
              == NULL, "no secret in the list: %s", r->body);
    resp_free(r);

    /* another merchant sees none of it, and cannot move it */
    r = api_get(&other, "/v1/webhook_endpoints");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_eq(json_array_size(resp_json(r)), 0, "%s", r->body);
    resp_free(r);
    r = sf_post(&other, str_printf("/v1/webhook_endpoints/%s/disable", ep.id),
                "{}");
    expect_problem(r, 404, "not_found");
    resp_free(r);

    r = sf_post(&m, str_printf("/v1/webhook_endpoints/%s/disable", ep.id),
                "{}");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(sf_str(resp_json(r), "status"), "disabled", "%s",
                     r->body);
    cr_expect_str_eq(sf_str(resp_json(r), "disabled_reason"), "merchant",
                     "%s", r->body);
    resp_free(r);

    r = sf_post(&m, str_printf("/v1/webhook_endpoints/%s/enable", ep.id),
                "{}");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(sf_str(resp_json(r), "status"), "enabled", "%s",
                     r->body);
    resp_free(r);

    /* both moves are on the merchant's audit chain */
    params[0] = m.id;
    params[1] = ep.id;
    cr_expect_str_eq(db_scalar("SELECT string_agg(action, ',' ORDER BY seq)"
                               " FROM audit_log WHERE merchant_id = $1 AND"
                               " detail ->> 'endpoint_id' = $2", 2, params),
                     "endpoint:disabled,endpoint:enabled");
}
