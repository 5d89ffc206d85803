/*
 * End to end: POST /v1/checkouts/{id}/cancel and a caller's expires_at,
 * per dialect, against the mock PSP.  Stripe and generic end the session
 * at the PSP (its expire call), Adyen cannot (the gateway cancels alone and
 * a payment that still arrives is booked as paid after the failure).  A
 * cancel that races the shopper's payment is decided by the PSP: exactly
 * one of the two wins, and the ledger agrees.
 */

#include "harness.h"

#include <pthread.h>
#include <time.h>


#define ADYEN_PSP    "mock_adyen"
#define GENERIC_PSP  "mock_generic"


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *co;
    char        *nonce;
    char        *token;
    endpoint_t   ep;
} reg_t;


/* a fresh merchant with an endpoint for checkout.* notifications, and a
 * checkout of two orders registered with psp (NULL: the suite's stripe) */
static void
register_with(reg_t *g, const char *psp)
{
    json_t  *body, *j;
    resp_t  *r;

    merchant_new(&g->m);
    endpoint_add(&g->m, NULL, &g->ep);

    g->psp = psp ? psp : env("PAY_TEST_PSP");
    g->co = uid("co");
    g->nonce = nonce(&g->m, g->co);

    body = checkout_new(g->co, 2);
    json_object_set_new(body, "psp", json_string(g->psp));
    r = register_ok(&g->m, uid("key"), dump(body));
    j = resp_json(r);
    g->token = strdup(json_string_value(json_object_get(j, "psp_token")));
    cr_assert(g->token[0] != '\0');
    secret_used(g->token);
}


static resp_t *
cancel_raw(const merchant_t *m, const char *co, const char *idem_key,
    const char *body)
{
    req_t        rq;
    size_t       n;
    const char  *h[4];

    n = 0;
    h[n++] = str_printf("Authorization: Bearer %s", m->key);
    if (idem_key != NULL) {
        h[n++] = str_printf("Idempotency-Key: %s", idem_key);
    }
    if (body != NULL) {
        h[n++] = "Content-Type: application/json";
    }
    h[n] = NULL;

    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/checkouts/%s/cancel", co));
    rq.headers = h;
    rq.body = body ? body : "";
    rq.len = (size_t) -1;

    return http(&rq);
}


static resp_t *
cancel(const reg_t *g, const char *idem_key)
{
    return cancel_raw(&g->m, g->co, idem_key, NULL);
}


static json_t *
checkout_of(const reg_t *g)
{
    resp_t  *r;

    r = api_get(&g->m, str_printf("/v1/checkouts/%s", g->co));
    cr_assert_eq(r->status, 200, "%s", r->body);

    return resp_json(r);
}


static const char *
status_of(const reg_t *g)
{
    return json_string_value(json_object_get(checkout_of(g), "status"));
}


/* the checkout and its orders FAILED, canceled */
static void
expect_canceled(json_t *co)
{
    size_t   i;
    json_t  *o;

    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "FAILED");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "failure"), "code")),
                     "canceled");

    json_array_foreach(json_object_get(co, "payment_orders"), i, o) {
        cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                         "FAILED");
    }
}


static long
ledger_txns(const reg_t *g)
{
    const char  *params[] = { g->m.id, g->co };

    return atol(db_scalar("SELECT count(*) FROM ledger_transactions "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          2, params));
}


static long
audited(const reg_t *g, const char *action)
{
    const char  *params[] = { g->m.id, g->co, action };

    return atol(db_scalar("SELECT count(*) FROM audit_log WHERE "
                          "merchant_id = $1 AND checkout_id = $2 AND "
                          "action = $3", 3, params));
}


/* the mock's session: its status ("open", "complete", "expired") */
static const char *
mock_status(const char *token)
{
    resp_t  *r;

    r = http_get(mock_url(str_printf("/_control/sessions/%s", token)));
    cr_assert_eq(r->status, 200, "mock session: %ld %s", r->status, r->body);

    return json_string_value(json_object_get(resp_json(r), "status"));
}


/* the shopper pays on the mock's hosted page (its control twin): the
 * mock's status of the answer */
static long
mock_pay(const char *token)
{
    req_t    rq;
    resp_t  *r;

    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay", token));
    rq.headers = NULL;
    rq.body = "";
    rq.len = 0;
    r = http(&rq);

    return r->status;
}


static void
expect_status_within(const reg_t *g, const char *want, int seconds)
{
    int          i;
    const char  *s;

    s = NULL;

    for (i = 0; i < seconds * 10; i++) {
        s = status_of(g);
        if (strcmp(s, want) == 0) {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("checkout %s is %s, not %s, after %d s", g->co, s, want,
                   seconds);
}


/* the endpoint got exactly one notification of type, for this checkout */
static json_t *
expect_notified(const reg_t *g, const char *type)
{
    size_t   i, n;
    json_t  *ds, *d, *found;

    found = NULL;

    for (i = 0; i < 100; i++) {
        ds = receiver_deliveries(g->ep.name);
        n = deliveries_count(ds, "204", type);
        if (n >= 1) {
            break;
        }
        json_decref(ds);
        msleep(100);
    }

    cr_assert_eq(n, 1, "%zu %s notifications", n, type);

    json_array_foreach(ds, i, d) {
        if (strcmp(json_string_value(json_object_get(d, "type")), type) == 0)
        {
            found = json_object_get(d, "data");
        }
    }

    cr_assert_not_null(found);
    cr_assert_str_eq(json_string_value(json_object_get(found, "checkout_id")),
                     g->co);

    return found;
}


/* --- cancel before payment, per dialect ----------------------------------- */

static void
cancel_before_payment(const char *psp, int expirable)
{
    reg_t    g;
    resp_t  *r;
    json_t  *data;

    register_with(&g, psp);

    r = cancel(&g, uid("ck"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_canceled(resp_json(r));
    expect_canceled(checkout_of(&g));

    /* the PSP ended the session (Stripe, generic), or could not (Adyen:
     * it lapses at its expiry) */
    cr_assert_str_eq(mock_status(g.token), expirable ? "expired" : "open");

    cr_assert_eq(audited(&g, "cancel:requested"), 1);
    cr_assert_eq(audited(&g, "cancel:canceled"), 1);

    data = expect_notified(&g, "checkout.canceled");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(data, "failure"), "code")),
                     "canceled");
    cr_assert_eq(ledger_txns(&g), 0);
}


Test(cancel, stripe_before_payment_expires_the_session_and_fails_the_orders,
     .timeout = 30)
{
    cancel_before_payment(NULL, 1);
}


Test(cancel, generic_before_payment_expires_the_session_and_fails_the_orders,
     .timeout = 30)
{
    cancel_before_payment(GENERIC_PSP, 1);
}


Test(cancel, adyen_before_payment_cancels_at_the_gateway_alone,
     .timeout = 30)
{
    cancel_before_payment(ADYEN_PSP, 0);
}


/* --- a cancel racing the shopper's payment -------------------------------- */

/* paid first: the cancel is refused, the payment stands and is booked once
 * (whether its webhook lands before or after the cancel) */
static void
paid_then_cancel(const char *psp)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, psp);
    cr_assert_eq(mock_pay(g.token), 200);

    r = cancel(&g, uid("ck"));
    expect_problem(r, 409, "checkout_already_paid");

    expect_status_within(&g, "SUCCESS", 15);
    cr_assert_eq(ledger_txns(&g), 2, "one ledger transaction per order");
    cr_assert_eq(audited(&g, "cancel:canceled"), 0);
    expect_notified(&g, "checkout.succeeded");

    /* and again, now that the gateway knows: answered from the row */
    r = cancel(&g, uid("ck"));
    expect_problem(r, 409, "checkout_already_paid");
    cr_assert_eq(ledger_txns(&g), 2);
}


Test(cancel, stripe_paid_first_refuses_the_cancel_and_books_once,
     .timeout = 30)
{
    paid_then_cancel(NULL);
}


Test(cancel, generic_paid_first_refuses_the_cancel_and_books_once,
     .timeout = 30)
{
    paid_then_cancel(GENERIC_PSP);
}


/* canceled first: the shopper can no longer pay the session, nothing is
 * booked */
static void
cancel_then_pay(const char *psp)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, psp);

    r = cancel(&g, uid("ck"));
    cr_assert_eq(r->status, 200, "%s", r->body);

    cr_assert_eq(mock_pay(g.token), 410, "the hosted page refuses");
    cr_assert_str_eq(mock_status(g.token), "expired");

    msleep(500);
    expect_canceled(checkout_of(&g));
    cr_assert_eq(ledger_txns(&g), 0);
}


Test(cancel, stripe_canceled_first_cannot_be_paid, .timeout = 30)
{
    cancel_then_pay(NULL);
}


Test(cancel, generic_canceled_first_cannot_be_paid, .timeout = 30)
{
    cancel_then_pay(GENERIC_PSP);
}


/* Adyen's session cannot be ended: a payment after the cancel is the PSP's
 * money all the same, booked once as paid after the failure, and the shop
 * told so it refunds */
Test(cancel, adyen_a_payment_after_the_cancel_is_booked_as_paid_after_failure,
     .timeout = 30)
{
    reg_t    g;
    resp_t  *r;
    json_t  *co;

    register_with(&g, ADYEN_PSP);

    r = cancel(&g, uid("ck"));
    cr_assert_eq(r->status, 200, "%s", r->body);

    cr_assert_eq(mock_pay(g.token), 200);
    expect_status_within(&g, "SUCCESS", 15);

    co = checkout_of(&g);
    cr_assert(json_is_true(json_object_get(co, "paid_after_failure")));
    cr_assert_eq(ledger_txns(&g), 2);
    expect_notified(&g, "checkout.paid_after_failure");
}


/* A manual capture's authorization after the cancel (Adyen): a hold,
 * nothing booked, and the shop told checkout.authorized (it holds money
 * to capture or release), never checkout.canceled again */
Test(cancel, adyen_a_manual_hold_after_the_cancel_is_notified_authorized,
     .timeout = 30)
{
    reg_t    g;
    resp_t  *r;
    json_t  *body, *data;
    size_t   i, n;
    json_t  *ds;

    merchant_new(&g.m);
    endpoint_add(&g.m, NULL, &g.ep);
    g.psp = ADYEN_PSP;
    g.co = uid("co");
    g.nonce = nonce(&g.m, g.co);

    body = checkout_new(g.co, 2);
    json_object_set_new(body, "psp", json_string(g.psp));
    json_object_set_new(body, "capture", json_string("manual"));
    r = register_ok(&g.m, uid("key"), dump(body));
    g.token = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));
    secret_used(g.token);

    r = cancel(&g, uid("ck"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    (void) expect_notified(&g, "checkout.canceled");

    cr_assert_eq(mock_pay(g.token), 200);
    expect_status_within(&g, "AUTHORIZED", 15);
    cr_assert_eq(ledger_txns(&g), 0, "a hold was booked");

    data = expect_notified(&g, "checkout.authorized");
    cr_assert_str_eq(json_string_value(json_object_get(data, "status")),
                     "AUTHORIZED");

    /* the cancel was told once, the hold not as a second cancel */
    ds = receiver_deliveries(g.ep.name);
    n = deliveries_count(ds, NULL, "checkout.canceled");
    cr_assert_eq(n, 1, "%zu checkout.canceled: %s", n, dump(ds));
    for (i = 0; i < json_array_size(ds); i++) {
        data = json_object_get(json_array_get(ds, i), "data");
        if (strcmp(json_string_value(json_object_get(json_array_get(ds, i),
                                                     "type")),
                   "checkout.canceled") == 0)
        {
            cr_assert_str_eq(json_string_value(json_object_get(data,
                                                               "status")),
                             "FAILED", "%s", dump(ds));
        }
    }
    json_decref(ds);
}


/* --- a cancel racing its checkout's registration ------------------------ */

typedef struct {
    const merchant_t  *m;
    const char        *key;
    const char        *body;
    resp_t            *r;
} race_reg_t;


static void *
race_register(void *arg)
{
    race_reg_t  *rr = arg;

    rr->r = api_post(rr->m, rr->key, rr->body);

    return NULL;
}


/* A cancel while the registration is at the PSP (its answer 800 ms away)
 * is refused for now, nothing stored: the session the registration is
 * making would otherwise outlive a cancel that never saw it, and be paid.
 * Once registered, the same key cancels it, its session expired. */
Test(cancel, a_cancel_while_the_registration_is_at_the_psp_waits_for_it,
     .timeout = 30)
{
    reg_t        g;
    char        *ckey;
    json_t      *body;
    resp_t      *r;
    pthread_t    th;
    race_reg_t   rr;
    const char  *ra;

    merchant_new(&g.m);
    endpoint_add(&g.m, NULL, &g.ep);
    g.psp = env("PAY_TEST_PSP");
    g.co = uid("co");
    g.nonce = nonce(&g.m, g.co);

    (void) mock_fault(str_printf("{\"match\":\"%s\",\"latency_ms\":800}",
                                 g.nonce));

    body = checkout_new(g.co, 2);
    rr.m = &g.m;
    rr.key = uid("key");
    rr.body = dump(body);
    rr.r = NULL;
    cr_assert_eq(pthread_create(&th, NULL, race_register, &rr), 0);

    msleep(300);
    ckey = uid("ck");
    r = cancel(&g, ckey);
    expect_problem(r, 409, "checkout_not_cancelable");
    ra = resp_header(r, "Retry-After");
    cr_assert_not_null(ra, "no Retry-After on the refused cancel");
    cr_assert(atol(ra) >= 1, "Retry-After: %s", ra);
    resp_free(r);

    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(rr.r->status, 201, "registration: %ld %s", rr.r->status,
                 rr.r->body);
    g.token = strdup(json_string_value(json_object_get(resp_json(rr.r),
                                                       "psp_token")));
    secret_used(g.token);
    secret_used(url_param(json_string_value(json_object_get(
                              resp_json(rr.r), "pay_url")), "t"));
    cr_assert_str_eq(mock_status(g.token), "open");
    cr_assert_eq(audited(&g, "cancel:requested"), 0,
                 "the refused cancel was recorded");

    /* registered: the same key cancels it now, at the PSP too */
    r = cancel(&g, ckey);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    expect_canceled(resp_json(r));
    cr_assert_str_eq(mock_status(g.token), "expired");
    cr_assert_neq(mock_pay(g.token), 200, "the canceled session was paid");
    cr_assert_str_eq(status_of(&g), "FAILED");
}


/* --- idempotency ---------------------------------------------------------- */

Test(cancel, the_same_key_replays_and_another_key_answers_canceled,
     .timeout = 30)
{
    reg_t    g;
    char    *key;
    resp_t  *r;

    register_with(&g, NULL);
    key = uid("ck");

    r = cancel(&g, key);
    cr_assert_eq(r->status, 200, "%s", r->body);

    r = cancel(&g, key);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    expect_canceled(resp_json(r));

    /* "{}" is the empty body's fingerprint too */
    r = cancel_raw(&g.m, g.co, key, "{}");
    cr_assert_eq(r->status, 200, "%s", r->body);

    /* the same key on another checkout is another request */
    r = cancel_raw(&g.m, uid("co"), key, NULL);
    expect_problem(r, 404, "not_found");

    r = cancel(&g, uid("ck"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_canceled(resp_json(r));
    cr_assert_null(resp_header(r, "Idempotent-Replayed"));

    /* no second cancel, no second notification */
    cr_assert_eq(audited(&g, "cancel:requested"), 1);
    cr_assert_eq(audited(&g, "cancel:canceled"), 1);
    msleep(500);
    expect_notified(&g, "checkout.canceled");
}


Test(cancel, two_cancels_at_once_cancel_once, .timeout = 30)
{
    reg_t         g;
    size_t        i, ok;
    req_t         rq;
    resp_t      **rs;
    const char   *h[3];

    register_with(&g, GENERIC_PSP);

    h[0] = str_printf("Authorization: Bearer %s", g.m.key);
    h[1] = str_printf("Idempotency-Key: %s", uid("ck"));
    h[2] = NULL;
    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/checkouts/%s/cancel", g.co));
    rq.headers = h;
    rq.body = "";
    rq.len = 0;

    rs = http_parallel(&rq, 4);

    for (ok = 0, i = 0; i < 4; i++) {
        if (rs[i]->status == 200) {
            ok++;
        } else {
            expect_problem(rs[i], 409, "idempotency_key_in_use");
        }
    }

    cr_assert_geq(ok, 1);
    cr_assert_eq(audited(&g, "cancel:canceled"), 1);
    expect_notified(&g, "checkout.canceled");
}


/* --- the PSP failing ------------------------------------------------------ */

/* The expire call times out on every attempt of the first request: 504,
 * nothing decided; the retry with the same key resumes and cancels. */
Test(cancel, a_psp_timeout_then_the_retry_resumes, .timeout = 40)
{
    reg_t    g;
    char    *key;
    resp_t  *r;

    register_with(&g, NULL);
    key = uid("ck");

    mock_fault(str_printf("{\"match\":\"%s:cancel\",\"hang_ms\":1200,"
                          "\"hang_times\":3}", g.nonce));

    r = cancel(&g, key);
    cr_assert(r->status == 504 || r->status == 502, "%ld %s", r->status,
              r->body);
    expect_problem(r, r->status, "psp_unavailable");
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_str_eq(mock_status(g.token), "open");

    /* the mock's hung threads let go */
    msleep(1500);

    r = cancel(&g, key);
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_canceled(resp_json(r));
    cr_assert_str_eq(mock_status(g.token), "expired");
    expect_notified(&g, "checkout.canceled");
}


/* The PSP ends the session and the answer is lost: the next attempt finds
 * it no longer open (Stripe's 400), asks the session, and cancels. */
Test(cancel, an_answer_lost_after_the_expire_is_found_by_the_look_up,
     .timeout = 30)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, NULL);

    mock_fault(str_printf("{\"match\":\"%s:cancel\","
                          "\"drop_after_register\":1}", g.nonce));

    r = cancel(&g, uid("ck"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_canceled(resp_json(r));
    expect_notified(&g, "checkout.canceled");
}


Test(cancel, a_psp_failing_every_attempt_leaves_the_checkout_open,
     .timeout = 30)
{
    reg_t    g;
    char    *key;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    key = uid("ck");

    mock_fault(str_printf("{\"match\":\"%s:cancel\",\"fail_times\":4,"
                          "\"fail_status\":503}", g.nonce));

    r = cancel(&g, key);
    expect_problem(r, 502, "psp_unavailable");
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(audited(&g, "cancel:canceled"), 0);

    /* one failure left: the retry's second attempt cancels */
    r = cancel(&g, key);
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_canceled(resp_json(r));
}


/* --- decided checkouts and bad input -------------------------------------- */

Test(cancel, a_failed_checkout_is_not_cancelable, .timeout = 30)
{
    reg_t    g;
    resp_t  *r;
    req_t    rq;

    register_with(&g, NULL);

    /* the shopper gave up: the session expired at the PSP */
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/decline", g.token));
    rq.headers = NULL;
    rq.body = "";
    rq.len = 0;
    cr_assert_eq(http(&rq)->status, 200);
    expect_status_within(&g, "FAILED", 15);

    r = cancel(&g, uid("ck"));
    expect_problem(r, 409, "checkout_not_cancelable");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(checkout_of(&g), "failure"),
                         "code")), "expired");
}


Test(cancel, bad_input_is_refused_and_stores_nothing, .timeout = 30)
{
    reg_t         g;
    merchant_t    other;
    char         *key;
    resp_t       *r;
    size_t        i;
    const char   *params[2];

    static const char  *bodies[] = {
        "{\"reason\":\"x\"}", "[]", "null", "{", "\"\"",
    };

    register_with(&g, NULL);
    merchant_new(&other);
    key = uid("ck");

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        r = cancel_raw(&g.m, g.co, key, bodies[i]);
        expect_problem(r, 400, "invalid_request");
    }

    r = cancel_raw(&g.m, g.co, NULL, NULL);
    expect_problem(r, 400, "idempotency_key_missing");

    /* another merchant's checkout is as absent as an unknown one */
    r = cancel_raw(&other, g.co, key, NULL);
    expect_problem(r, 404, "not_found");
    r = cancel_raw(&g.m, "co_does_not_exist", key, NULL);
    expect_problem(r, 404, "not_found");
    r = cancel_raw(&g.m, "co%20x", key, NULL);
    expect_problem(r, 404, "not_found");

    /* GET is not the route's method */
    r = api_get(&g.m, str_printf("/v1/checkouts/%s/cancel", g.co));
    expect_problem(r, 405, "method_not_allowed");

    params[0] = g.m.id;
    params[1] = key;
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM idempotency_keys "
                               "WHERE merchant_id = $1 AND idem_key = $2",
                               2, params), "0");
    params[0] = other.id;
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM idempotency_keys "
                               "WHERE merchant_id = $1 AND idem_key = $2",
                               2, params), "0");
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_str_eq(mock_status(g.token), "open");
    cr_assert_eq(audited(&g, "cancel:requested"), 0);
}


/* --- expires_at ----------------------------------------------------------- */

static resp_t *
register_expiring(merchant_t *m, const char *psp, const char *co,
    json_t *expires_at)
{
    json_t  *body;

    body = checkout_new(co, 1);
    json_object_set_new(body, "psp", json_string(psp));
    json_object_set_new(body, "expires_at", expires_at);

    return api_post(m, uid("key"), dump(body));
}


/* within the dialect's limits (the lease's 20 s on top of the minimum):
 * stored, sent to the PSP, shown; outside: 400, nothing stored */
static void
expires_at_bounds(const char *psp, long min)
{
    char        *co, want[32];
    long         now;
    resp_t      *r;
    json_t      *j;
    merchant_t   m;
    time_t       at;
    struct tm    tm;

    merchant_new(&m);
    now = (long) time(NULL);

    co = uid("co");
    r = register_expiring(&m, psp, co, json_integer(now + min + 20 - 15));
    expect_problem(r, 400, "invalid_expires_at");
    cr_assert_eq(checkouts_named(&m, co), 0);

    co = uid("co");
    r = register_expiring(&m, psp, co, json_integer(now + 86400 + 60));
    expect_problem(r, 400, "invalid_expires_at");
    cr_assert_eq(checkouts_named(&m, co), 0);

    co = uid("co");
    r = register_expiring(&m, psp, co, json_string("tomorrow"));
    expect_problem(r, 400, "invalid_expires_at");
    cr_assert_eq(checkouts_named(&m, co), 0);

    /* a minute inside the window */
    at = (time_t) (now + min + 20 + 60);
    co = uid("co");
    r = register_expiring(&m, psp, co, json_integer((json_int_t) at));
    cr_assert_eq(r->status, 201, "%s", r->body);

    gmtime_r(&at, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);

    r = api_get(&m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "expires_at")),
                     want);
}


Test(cancel, stripe_expires_at_takes_30_minutes_to_24_hours, .timeout = 30)
{
    expires_at_bounds(env("PAY_TEST_PSP"), 1800);
}


Test(cancel, generic_expires_at_takes_a_minute_to_24_hours, .timeout = 30)
{
    expires_at_bounds(GENERIC_PSP, 60);
}


Test(cancel, adyen_expires_at_takes_a_minute_to_24_hours, .timeout = 30)
{
    expires_at_bounds(ADYEN_PSP, 60);
}


/* A retry under the same key of a checkout registered with an expires_at
 * that is too close by the time of the retry (the window moved past it):
 * the same request, replayed; a new checkout with that expires_at is
 * refused as before, nothing stored. */
Test(cancel, a_retry_replays_once_its_expires_at_is_too_close, .timeout = 30)
{
    char        *co, *key, *body;
    long         at;
    json_t      *j;
    resp_t      *r, *first;
    merchant_t   m;

    merchant_new(&m);

    /* the generic PSP takes 60 s, plus the lease's 20 s: 6 s to spare
     * (a loaded machine's first answer in time), gone after 8 */
    at = (long) time(NULL) + 60 + 20 + 6;
    co = uid("co");
    key = uid("key");
    j = checkout_new(co, 1);
    json_object_set_new(j, "psp", json_string(GENERIC_PSP));
    json_object_set_new(j, "expires_at", json_integer(at));
    body = dump(j);

    first = api_post(&m, key, body);
    cr_assert_eq(first->status, 201, "%s", first->body);

    msleep(8000);

    r = api_post(&m, key, body);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);

    /* a new checkout of that expires_at: refused */
    co = uid("co");
    j = checkout_new(co, 1);
    json_object_set_new(j, "psp", json_string(GENERIC_PSP));
    json_object_set_new(j, "expires_at", json_integer(at));
    r = api_post(&m, uid("key"), dump(j));
    expect_problem(r, 400, "invalid_expires_at");
    cr_assert_eq(checkouts_named(&m, co), 0);
}


/* the PSP is sent the caller's expires_at */
Test(cancel, stripe_session_expires_when_the_caller_said, .timeout = 30)
{
    char        *co;
    long         at;
    resp_t      *r;
    json_t      *j;
    merchant_t   m;

    merchant_new(&m);
    at = (long) time(NULL) + 2 * 3600;
    co = uid("co");

    r = register_expiring(&m, env("PAY_TEST_PSP"), co, json_integer(at));
    cr_assert_eq(r->status, 201, "%s", r->body);
    j = resp_json(r);

    r = http_get(mock_url(str_printf("/_control/sessions/%s",
                                     json_string_value(json_object_get(
                                         j, "psp_token")))));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_eq(json_integer_value(json_object_get(resp_json(r),
                                                    "expires_at")), at);
}


/* The PSP's expiry webhook of a session whose cancel was claimed (Stripe
 * sends checkout.session.expired for the expire call, and it may land
 * before the cancel's own answer is stored) ends the checkout as the
 * merchant's cancel, and notifies it so. */
Test(cancel, the_expiry_webhook_of_a_claimed_cancel_ends_it_as_canceled,
     .timeout = 30)
{
    reg_t        g;
    char        *lease;
    const char  *claim[] = { NULL, NULL, NULL };
    const char  *apply[] = { NULL, NULL, NULL };
    const char  *finish[] = { NULL, NULL, NULL, NULL };

    register_with(&g, NULL);

    claim[0] = g.m.id;
    claim[1] = uid("ck");
    claim[2] = g.co;
    lease = db_scalar("SELECT outcome || ' ' || lease FROM pay_cancel_claim("
                      "$1, $2, repeat('a', 64), 20, 86400, $3, '{}', '{}', "
                      "'{}')", 3, claim);
    cr_assert_eq(strncmp(lease, "new ", 4), 0, "%s", lease);
    lease += 4;

    apply[0] = g.psp;
    apply[1] = uid("evt");
    apply[2] = g.nonce;
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_webhook_apply_core("
                               "$1, $2, 'FAILED', "
                               "'checkout.session.expired', '', $3, -1, '', "
                               "NULL, NULL)", 3, apply), "applied");

    expect_canceled(checkout_of(&g));

    /* the cancel's own answer then finds it decided: 200, audited once */
    finish[0] = g.m.id;
    finish[1] = claim[1];
    finish[2] = lease;
    finish[3] = g.co;
    cr_assert_str_eq(db_scalar("SELECT response_status FROM "
                               "pay_cancel_finish($1, $2, $3, $4, 'closed', "
                               "'{}', '{}')", 4, finish), "200");
    cr_assert_eq(audited(&g, "cancel:requested"), 1);
    cr_assert_eq(audited(&g, "cancel:canceled"), 1);

    /* and a cancel under another key answers the same, auditing nothing */
    cr_assert_eq(cancel(&g, uid("ck"))->status, 200);
    cr_assert_eq(audited(&g, "cancel:canceled"), 1);

    expect_notified(&g, "checkout.canceled");
}


/* A live merchant's checkout at a PSP configured for test money (its mode=
 * changed since, written here in SQL): never canceled through it, and
 * nothing stored under the key. */
Test(cancel, a_checkout_of_a_psp_in_the_other_mode_is_not_found,
     .timeout = 30)
{
    char         *key;
    merchant_t    live;
    const char   *a[3];
    const char   *k[2];

    merchant_new_mode(&live, "live");
    a[0] = live.id;
    a[1] = uid("co");
    a[2] = env("PAY_TEST_PSP");
    db_exec("BEGIN", 0, NULL);
    db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, expires_at) VALUES ($1, $2, $3, $1 || ':' || $2,"
            " 'USD', 100, 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', now() + interval '1 hour')", 3, a);
    db_exec("COMMIT", 0, NULL);

    key = uid("ck");
    expect_problem(cancel_raw(&live, a[1], key, NULL), 404, "not_found");

    k[0] = live.id;
    k[1] = key;
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM idempotency_keys "
                               "WHERE merchant_id = $1 AND idem_key = $2",
                               2, k), "0");
    cr_assert_str_eq(db_scalar("SELECT status FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2, a),
                     "EXECUTING");
}
