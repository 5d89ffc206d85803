/*
 * End to end: authorize now, capture later (API.md, "Manual capture"), per
 * dialect against the mock PSP: "capture": "manual" is sent to the PSP in
 * its own words, the PSP's authorization webhook moves the checkout and
 * its orders to AUTHORIZED, and nothing is booked for the hold: no ledger
 * entry, no wallet credit, the seller's balance shows it apart
 * (authorized), and the checkout.authorized notification is sent.  Then
 * POST /v1/payments/{id}/capture and /void: captures in parts (Adyen,
 * generic) or one capture that releases the rest (Stripe), the remainder
 * voided, each booked only when the PSP's webhook says it was captured;
 * refunds of what was captured, never beyond; retries replayed; concurrent
 * captures never beyond the authorization.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_receiver.h"


TestSuite(capture, .timeout = E2E_TIMEOUT);


/* 0 stripe (the e2e configuration names it PAY_TEST_PSP), 1 adyen,
 * 2 generic */
static const char *
capture_psp(size_t d)
{
    return d == 0 ? env("PAY_TEST_PSP") : d == 1 ? "mock_adyen"
                                                 : "mock_generic";
}


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *co;
    char        *token;
    json_t      *created;       /* the 201's body */
    json_t      *session;       /* the mock's, as registered */
} held_t;


/* --- the mock ------------------------------------------------------------- */

static json_t *
mock_session(const char *token)
{
    resp_t  *r;

    r = http_get(mock_url(str_printf("/_control/sessions/%s", token)));
    cr_assert_eq(r->status, 200, "mock session %s: %ld %s", token, r->status,
                 r->body);

    return resp_json(r);
}


/* --- the database ------------------------------------------------------------ */

static long
ql(const char *sql, const char *a, const char *b)
{
    char        *s;
    const char  *params[] = { a, b };

    s = db_scalar(sql, b ? 2 : (a ? 1 : 0), params);
    return s ? atol(s) : -1;
}


/* --- the merchant API -------------------------------------------------------- */

static const char *
checkout_status(const held_t *h)
{
    resp_t  *r;

    r = api_get(&h->m, str_printf("/v1/checkouts/%s", h->co));
    cr_assert_eq(r->status, 200, "%s", r->body);

    return json_string_value(json_object_get(resp_json(r), "status"));
}


/* A checkout of two orders (10.00 seller_1, 5.00 seller_2, USD) at the
 * dialect's PSP registered with "capture": "manual", and paid at the
 * mock: waits until the authorization has moved it. */
static void held_pay(held_t *h, json_t *body);


static void
held_new_notified(held_t *h, size_t d, endpoint_t *ep)
{
    memset(h, 0, sizeof(held_t));
    h->psp = capture_psp(d);
    merchant_new(&h->m);
    h->co = uid("co");

    if (ep != NULL) {
        endpoint_add(&h->m, NULL, ep);
    }

    held_pay(h, checkout_new(h->co, 2));
}


/* body (h->co's) registered at h->psp with "capture": "manual" and paid
 * at the mock: waits until the authorization has moved it */
static void
held_pay(held_t *h, json_t *body)
{
    int          i;
    resp_t      *r;
    const char  *st;

    json_object_set_new(body, "psp", json_string(h->psp));
    json_object_set_new(body, "capture", json_string("manual"));

    r = register_ok(&h->m, uid("key"), dump(body));
    h->created = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(h->created,
                                                       "capture")),
                     "manual", "%s", r->body);
    h->token = strdup(json_string_value(json_object_get(h->created,
                                                        "psp_token")));
    h->session = mock_session(h->token);

    r = mock_post(str_printf("/_control/sessions/%s/pay", h->token), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    st = "none";

    for (i = 0; i < 100; i++) {
        st = checkout_status(h);
        if (strcmp(st, "EXECUTING") != 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(st, "AUTHORIZED", "%s: checkout %s", h->psp, h->co);
}


static void
held_new(held_t *h, size_t d)
{
    held_new_notified(h, d, NULL);
}


/* no ledger entry, no wallet credit */
static void
expect_held_not_booked_ledger(const held_t *h)
{
    cr_expect_eq(ql("SELECT count(*) FROM ledger_entries WHERE "
                    "merchant_id = $1", h->m.id, NULL), 0,
                 "%s: a hold was booked", h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM wallets WHERE merchant_id = $1 "
                    "AND balance <> 0", h->m.id, NULL), 0,
                 "%s: a hold reached a wallet", h->psp);
}


/* Nothing booked for a hold: no ledger entry, no wallet credit, each
 * order AUTHORIZED and unbooked, the PSP's payment noted for the capture */
static void
expect_held_not_booked(const held_t *h)
{
    size_t   i;
    json_t  *orders, *o, *bal, *cur;
    resp_t  *r;

    cr_expect_eq(ql("SELECT count(*) FROM ledger_entries WHERE "
                    "merchant_id = $1", h->m.id, NULL), 0,
                 "%s: a hold was booked", h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM wallets WHERE merchant_id = $1 "
                    "AND balance <> 0", h->m.id, NULL), 0,
                 "%s: a hold reached a wallet", h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM payment_orders WHERE "
                    "merchant_id = $1 AND checkout_id = $2 AND status = "
                    "'AUTHORIZED' AND NOT ledger_updated AND NOT "
                    "wallet_updated AND commission IS NULL", h->m.id, h->co),
                 2, "%s: orders not held as such", h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM checkouts WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND psp_payment_ref IS NOT NULL",
                    h->m.id, h->co), 1,
                 "%s: the PSP's payment id is not noted", h->psp);

    r = api_get(&h->m, str_printf("/v1/checkouts/%s", h->co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "capture")),
                     "manual", "%s", r->body);
    cr_expect(json_is_false(json_object_get(resp_json(r),
                                            "is_payment_done")),
              "%s", r->body);
    orders = json_object_get(resp_json(r), "payment_orders");
    json_array_foreach(orders, i, o) {
        cr_expect_str_eq(json_string_value(json_object_get(o, "status")),
                         "AUTHORIZED", "%s", r->body);
    }

    r = api_get(&h->m, "/v1/sellers/seller_1/balance");
    cr_assert_eq(r->status, 200, "%s", r->body);
    bal = json_object_get(resp_json(r), "balances");
    cr_assert_eq(json_array_size(bal), 1, "%s", r->body);
    cur = json_array_get(bal, 0);
    cr_expect_str_eq(json_string_value(json_object_get(cur, "authorized")),
                     "10.00", "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(cur, "wallet")),
                     "0.00", "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(cur, "available")),
                     "0.00", "%s", r->body);
}


/* --- manual capture per dialect -------------------------------------------- */

Test(capture, stripe_authorization_is_a_hold)
{
    held_t   h;
    json_t  *sent;

    held_new(&h, 0);

    /* Stripe was asked for a manual capture, our nonce on the intent */
    sent = json_object_get(h.session, "capture");
    cr_expect_str_eq(json_string_value(sent), "manual", "%s",
                     dump(h.session));
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(h.session,
                                         "payment_intent_metadata"),
                         "nonce")),
                     str_printf("%s:%s", h.m.id, h.co), "%s",
                     dump(h.session));

    expect_held_not_booked(&h);
}


Test(capture, adyen_authorization_is_a_hold)
{
    held_t  h;

    held_new(&h, 1);
    cr_expect_str_eq(json_string_value(json_object_get(h.session,
                                                       "capture")),
                     "manual", "%s", dump(h.session));
    expect_held_not_booked(&h);
}


Test(capture, generic_authorization_is_a_hold)
{
    held_t  h;

    held_new(&h, 2);
    cr_expect_str_eq(json_string_value(json_object_get(h.session,
                                                       "capture")),
                     "manual", "%s", dump(h.session));
    expect_held_not_booked(&h);
}


/* The default is "automatic", and anything else is refused, storing
 * nothing. */
Test(capture, capture_defaults_to_automatic_and_refuses_other_words)
{
    merchant_t   m;
    json_t      *body;
    resp_t      *r;
    char        *co;

    merchant_new(&m);

    co = uid("co");
    body = checkout_new(co, 1);
    r = register_ok(&m, uid("key"), dump(body));
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "capture")),
                     "automatic", "%s", r->body);

    co = uid("co");
    body = checkout_new(co, 1);
    json_object_set_new(body, "capture", json_string("later"));
    r = api_post(&m, uid("key"), dump(body));
    cr_expect_eq(r->status, 400, "%s", r->body);
    cr_expect_eq(ql("SELECT count(*) FROM checkouts WHERE merchant_id = $1 "
                    "AND checkout_id = $2", m.id, co), 0);

    json_object_set_new(body, "capture", json_true());
    r = api_post(&m, uid("key"), dump(body));
    cr_expect_eq(r->status, 400, "%s", r->body);
}


/* The shop is told of the hold: checkout.authorized, its orders
 * AUTHORIZED, the capture method said. */
Test(capture, the_hold_is_notified)
{
    held_t       h;
    json_t      *ds, *d, *data;
    size_t       i;
    endpoint_t   ep;

    held_new_notified(&h, 2, &ep);

    ds = receiver_wait(ep.name, "204", 1, 30);
    d = NULL;

    for (i = 0; i < json_array_size(ds); i++) {
        if (strcmp(json_string_value(json_object_get(json_array_get(ds, i),
                                                     "type")),
                   "checkout.authorized") == 0)
        {
            d = json_array_get(ds, i);
        }
    }

    cr_assert_not_null(d, "no checkout.authorized among %s", dump(ds));
    data = json_object_get(d, "data");
    cr_expect_str_eq(json_string_value(json_object_get(data, "status")),
                     "AUTHORIZED", "%s", dump(d));
    cr_expect_str_eq(json_string_value(json_object_get(data, "capture")),
                     "manual", "%s", dump(d));
    cr_expect_eq(deliveries_count(ds, NULL, "checkout.succeeded"), 0,
                 "a hold notified as paid: %s", dump(ds));
}


/* --- captures and voids ---------------------------------------------------- */

static resp_t *
post_op(const merchant_t *m, const char *path, const char *key,
    const char *body)
{
    req_t        rq;
    char        *auth, *idem;

    auth = str_printf("Authorization: Bearer %s", m->key);
    idem = str_printf("Idempotency-Key: %s", key);

    {
        const char  *h[] = { auth, idem, "Content-Type: application/json",
                             NULL };

        rq.method = "POST";
        rq.url = gw_url(path);
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


static char *
order_id(const held_t *h, int i)
{
    return str_printf("%s_p%d", h->co, i + 1);
}


/* POST .../capture of amount (NULL: the rest) under key; its answer */
static resp_t *
capture(const held_t *h, int order, const char *amount, const char *key)
{
    return post_op(&h->m, str_printf("/v1/payments/%s/capture",
                                     order_id(h, order)),
                   key ? key : uid("ck"),
                   amount ? str_printf("{\"amount\":\"%s\"}", amount) : "{}");
}


static resp_t *
void_hold(const held_t *h, int order, const char *key)
{
    return post_op(&h->m, str_printf("/v1/payments/%s/void",
                                     order_id(h, order)),
                   key ? key : uid("vk"), "{}");
}


/* waits until the capture (or void) is want in the database */
static void
expect_op_becomes(const held_t *h, const char *id, const char *want)
{
    int    i;
    char  *st;

    st = NULL;

    for (i = 0; i < 100; i++) {
        const char  *params[] = { h->m.id, id };

        st = db_scalar("SELECT status FROM captures WHERE merchant_id = $1 "
                       "AND capture_id = $2", 2, params);
        if (st != NULL && strcmp(st, want) == 0) {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("%s: %s is %s, not %s", h->psp, id, st ? st : "absent",
                   want);
}


static char *
capture_ok(const held_t *h, int order, const char *amount)
{
    resp_t  *r;
    json_t  *j;
    char    *id;

    r = capture(h, order, amount, NULL);
    cr_assert_eq(r->status, 201, "%s: capture %s: %ld %s", h->psp,
                 amount ? amount : "(rest)", r->status, r->body);
    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "PENDING", "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")),
                     "capture", "%s", r->body);
    id = strdup(json_string_value(json_object_get(j, "capture_id")));
    expect_op_becomes(h, id, "SUCCEEDED");

    return id;
}


static long
captured(const held_t *h, int order)
{
    return ql("SELECT coalesce(amount_captured, -1) FROM payment_orders "
              "WHERE merchant_id = $1 AND payment_order_id = $2", h->m.id,
              order_id(h, order));
}


static const char *
order_status(const held_t *h, int order)
{
    const char  *params[] = { h->m.id, order_id(h, order) };

    return db_scalar("SELECT status FROM payment_orders WHERE merchant_id = "
                     "$1 AND payment_order_id = $2", 2, params);
}


/* The ledger books what was captured, exactly: the PSP's clearing holds
 * the captured sum, every transaction balances, every wallet equals its
 * ledger, and the audit chains verify. */
static void
expect_books(const held_t *h, long want_clearing)
{
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries "
                    "WHERE merchant_id = $1 AND account LIKE "
                    "'psp\\_clearing:%'", h->m.id, NULL),
                 want_clearing, "%s: clearing", h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM (SELECT 1 FROM ledger_entries "
                    "WHERE merchant_id = $1 GROUP BY txn_id, currency "
                    "HAVING sum(amount) <> 0) x", h->m.id, NULL), 0,
                 "%s: unbalanced ledger transactions", h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM (SELECT seller_account, currency, "
                    "balance FROM wallets WHERE merchant_id = $1) w FULL JOIN "
                    "(SELECT substr(account, 16) AS seller_account, currency, "
                    "-sum(amount) AS booked FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account LIKE 'seller\\_payable:%' "
                    "GROUP BY 1, 2) l USING (seller_account, currency) WHERE "
                    "coalesce(w.balance, 0) <> coalesce(l.booked, 0)",
                    h->m.id, NULL), 0, "%s: wallets off their ledger",
                 h->psp);
    {
        const char  *params[] = { h->m.id };

        cr_expect_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1,
                                   params), "true");
    }
}


/* The reconciliation's internal checks find nothing wrong with the
 * merchant's books: an order captured in parts is booked once per part
 * (in a transaction rolled back: the report row is the test's). */
static void
expect_reconciled(const held_t *h)
{
    char        *report, *flagged;
    const char  *a[2], *q[2];

    a[0] = h->psp;
    a[1] = uid("sha-c");

    db_exec("BEGIN", 0, NULL);
    report = db_scalar("SELECT recon_begin($1, 'generic', "
                       "encode(sha256(convert_to($2, 'UTF8')), 'hex'), "
                       "'internal-checks', 0)", 2, a);
    q[0] = report;
    q[1] = h->m.id;
    (void) db_scalar("SELECT recon_checks($1::bigint)", 1, q);
    flagged = db_scalar("SELECT string_agg(kind, ',') FROM recon_mismatches "
                        "WHERE report_id = $1::bigint AND merchant_id = $2",
                        2, q);
    db_exec("ROLLBACK", 0, NULL);

    cr_expect_null(flagged, "%s: the reconciliation flags %s", h->psp,
                   flagged);
}


/* a refund of amount of the order: its answer */
static resp_t *
refund(const held_t *h, int order, const char *amount)
{
    return post_op(&h->m, str_printf("/v1/payments/%s/refunds",
                                     order_id(h, order)),
                   uid("rk"), str_printf("{\"amount\":\"%s\"}", amount));
}


/*
 * Adyen and generic: 4.00 then 3.00 of the first order captured (two
 * parts), the rest of the checkout voided (3.00 of it, 5.00 of the second
 * order released: that order FAILED, the checkout SUCCESS), then a refund
 * of 5.00 of what was captured and one of 3.00 beyond it refused.
 */
static void
two_parts_then_void(size_t d)
{
    held_t   h;
    resp_t  *r;
    json_t  *j;
    char    *id;

    held_new(&h, d);

    (void) capture_ok(&h, 0, "4.00");
    cr_expect_eq(captured(&h, 0), 400);
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");
    cr_expect_str_eq(order_status(&h, 1), "AUTHORIZED");

    (void) capture_ok(&h, 0, "3.00");
    cr_expect_eq(captured(&h, 0), 700);

    /* beyond what is left of the order's authorization: refused, nothing
     * stored */
    r = capture(&h, 0, "3.01", NULL);
    cr_expect_eq(r->status, 422, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "code")),
                     "capture_exceeds_authorized", "%s", r->body);

    r = void_hold(&h, 1, NULL);
    cr_assert_eq(r->status, 201, "%s: void: %s", h.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "kind")), "void");
    id = strdup(json_string_value(json_object_get(j, "capture_id")));
    expect_op_becomes(&h, id, "SUCCEEDED");

    cr_expect_str_eq(order_status(&h, 1), "FAILED");
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");
    cr_expect_eq(captured(&h, 0), 700);
    cr_expect_eq(captured(&h, 1), 0);

    /* nothing more to capture once released */
    r = capture(&h, 0, "1.00", NULL);
    cr_expect_eq(r->status, 409, "%s", r->body);

    expect_books(&h, 700);

    /* the order's view: what is captured, each capture */
    r = api_get(&h.m, str_printf("/v1/payments/%s", order_id(&h, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "captured")),
                     "7.00", "%s", r->body);
    cr_expect_eq(json_array_size(json_object_get(resp_json(r), "captures")),
                 2, "%s", r->body);

    expect_reconciled(&h);

    r = refund(&h, 0, "5.00");
    cr_expect_eq(r->status, 201, "%s: refund: %s", h.psp, r->body);
    r = refund(&h, 0, "3.00");
    cr_expect_eq(r->status, 422, "%s: refund beyond the capture: %s", h.psp,
                 r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "code")),
                     "refund_exceeds_captured", "%s", r->body);
}


Test(capture, adyen_two_parts_then_void)
{
    two_parts_then_void(1);
}


Test(capture, generic_two_parts_then_void)
{
    two_parts_then_void(2);
}


/* Stripe captures an intent once: 7.00 of the first order, the rest of the
 * authorization released with it (the second order FAILED); a second
 * capture refused; the refunds as above. */
Test(capture, stripe_one_capture_releases_the_rest)
{
    held_t   h;
    resp_t  *r;

    held_new(&h, 0);

    (void) capture_ok(&h, 0, "7.00");
    cr_expect_eq(captured(&h, 0), 700);
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    cr_expect_str_eq(order_status(&h, 1), "FAILED");
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");

    r = capture(&h, 1, "1.00", NULL);
    cr_expect_eq(r->status, 409, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "code")),
                     "payment_not_capturable", "%s", r->body);

    expect_books(&h, 700);

    r = refund(&h, 0, "5.00");
    cr_expect_eq(r->status, 201, "%s", r->body);
    r = refund(&h, 0, "3.00");
    cr_expect_eq(r->status, 422, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "code")),
                     "refund_exceeds_captured", "%s", r->body);
}


/* A void before any capture: everything released, the checkout FAILED
 * with failure.code voided, nothing booked. */
Test(capture, a_void_before_any_capture_fails_the_checkout)
{
    size_t   d;
    held_t   h;
    resp_t  *r;
    char    *id;

    for (d = 0; d < 3; d++) {
        held_new(&h, d);

        r = void_hold(&h, 0, NULL);
        cr_assert_eq(r->status, 201, "%s: %s", h.psp, r->body);
        id = strdup(json_string_value(json_object_get(resp_json(r),
                                                      "capture_id")));
        expect_op_becomes(&h, id, "SUCCEEDED");

        cr_expect_str_eq(checkout_status(&h), "FAILED", "%s", h.psp);
        cr_expect_str_eq(order_status(&h, 0), "FAILED");
        cr_expect_str_eq(order_status(&h, 1), "FAILED");

        r = api_get(&h.m, str_printf("/v1/checkouts/%s", h.co));
        cr_expect_str_eq(json_string_value(json_object_get(
                             json_object_get(resp_json(r), "failure"),
                             "code")), "voided", "%s", r->body);
        expect_books(&h, 0);
        expect_held_not_booked_ledger(&h);
    }
}


/* The same key again: the stored answer, replayed; one capture at the
 * PSP.  Another body under the key: 422. */
Test(capture, retries_with_the_same_key_replay)
{
    held_t   h;
    resp_t  *a, *b;
    char    *key;

    held_new(&h, 2);
    key = uid("ck");

    a = capture(&h, 0, "2.00", key);
    cr_assert_eq(a->status, 201, "%s", a->body);
    b = capture(&h, 0, "2.00", key);
    cr_expect_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(b->body, a->body);
    cr_expect_str_eq(resp_header(b, "Idempotent-Replayed"), "true");

    b = capture(&h, 0, "3.00", key);
    cr_expect_eq(b->status, 422, "%s", b->body);

    expect_op_becomes(&h, json_string_value(json_object_get(resp_json(a),
                                                            "capture_id")),
                      "SUCCEEDED");
    cr_expect_eq(captured(&h, 0), 200);
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1",
                    h.m.id, NULL), 1);
}


Test(capture, a_capture_retried_after_its_key_was_purged_is_never_made_twice,
     .description = "the same partial capture (key and body) after its key "
                    "expired and was purged is the capture it made, never "
                    "a second one")
{
    held_t       h;
    resp_t      *a, *b;
    char        *key, *id;

    held_new(&h, 2);
    key = uid("ck");

    a = capture(&h, 0, "2.00", key);
    cr_assert_eq(a->status, 201, "%s", a->body);
    id = strdup(json_string_value(json_object_get(resp_json(a),
                                                  "capture_id")));
    expect_op_becomes(&h, id, "SUCCEEDED");

    db_exec("DELETE FROM idempotency_keys WHERE merchant_id = $1 AND "
            "idem_key = $2", 2, (const char *[]) { h.m.id, key });
    b = capture(&h, 0, "2.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(b),
                                                       "capture_id")), id,
                     "%s", b->body);
    cr_expect_eq(captured(&h, 0), 200);
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1",
                    h.m.id, NULL), 1, "captured twice");
}


typedef struct {
    const char  *url;
    const char  *auth;
    const char  *idem;
    long         status;
} cc_call_t;


static void *
cc_post(void *data)
{
    req_t       rq;
    cc_call_t  *c = data;

    {
        const char  *h[] = { c->auth, c->idem,
                             "Content-Type: application/json", NULL };

        rq.method = "POST";
        rq.url = c->url;
        rq.headers = h;
        rq.body = "{\"amount\":\"3.00\"}";
        rq.len = (size_t) -1;

        c->status = http(&rq)->status;
    }

    return NULL;
}


/* Eight captures of 3.00 of a 10.00 order at once, each under its own
 * key: at most three are taken, the others refused; what is captured never
 * exceeds the authorization, in the database and at the PSP. */
Test(capture, concurrent_captures_never_exceed_the_authorization)
{
    int         i, ok;
    held_t      h;
    pthread_t   th[8];
    cc_call_t   calls[8];

    held_new(&h, 1);

    for (i = 0; i < 8; i++) {
        calls[i].url = gw_url(str_printf("/v1/payments/%s/capture",
                                         order_id(&h, 0)));
        calls[i].auth = str_printf("Authorization: Bearer %s", h.m.key);
        calls[i].idem = str_printf("Idempotency-Key: %s", uid("cc"));
        calls[i].status = 0;
    }

    for (i = 0; i < 8; i++) {
        cr_assert_eq(pthread_create(&th[i], NULL, cc_post, &calls[i]), 0);
    }

    ok = 0;

    for (i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_expect(calls[i].status == 201 || calls[i].status == 422
                  || calls[i].status == 409, "status %ld", calls[i].status);
        ok += calls[i].status == 201;
    }

    cr_expect_eq(ok, 3, "%d captures taken", ok);

    for (i = 0; i < 100; i++) {
        if (ql("SELECT count(*) FROM captures WHERE merchant_id = $1 AND "
               "status = 'PENDING'", h.m.id, NULL) == 0)
        {
            break;
        }
        msleep(100);
    }

    cr_expect_eq(captured(&h, 0), 900);
    cr_expect_leq(captured(&h, 0), 1000);
    expect_books(&h, 900);
}


/* --- resumed captures (doc/MONEY.md, "Resumed operations") ----------------- */

static long
mock_requests(const char *nonce)
{
    long  sessions, requests;

    mock_registrations(nonce, &sessions, &requests);

    return requests;
}


/* The PSP's answer was lost and its webhook settled the capture: the
 * retry with the key answers 201 SUCCEEDED from the row, and nothing is
 * sent again. */
Test(capture, a_lost_answer_settled_by_its_webhook_is_answered_from_the_row)
{
    held_t       h;
    resp_t      *a, *b;
    char        *key, *nonce;
    long         before;
    const char  *params[1];

    held_new(&h, 2);
    params[0] = h.m.id;
    (void) mock_fault(str_printf("{\"match\":\"%s:cp_\","
                                 "\"latency_ms\":3000}", h.m.id));

    key = uid("ck");
    a = capture(&h, 0, "4.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    nonce = db_scalar("SELECT nonce FROM captures WHERE merchant_id = $1", 1,
                      params);
    cr_assert_not_null(nonce);
    expect_op_becomes(&h, strchr(nonce, ':') + 1, "SUCCEEDED");
    before = mock_requests(nonce);

    b = capture(&h, 0, "4.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(b),
                                                       "status")),
                     "SUCCEEDED", "%s", b->body);
    cr_expect_eq(mock_requests(nonce), before,
                 "the retry of a settled capture reached the PSP");
    cr_expect_eq(captured(&h, 0), 400);
    expect_books(&h, 400);
}


/* A capture that got no answer for longer than the PSP keeps its key is
 * never sent again: 502 saying so; the PSP is not called. */
Test(capture, a_claim_older_than_the_psps_key_is_never_sent_again)
{
    held_t       h;
    resp_t      *a, *b;
    char        *key, *nonce;
    long         before;
    const char  *params[1];

    held_new(&h, 1);
    params[0] = h.m.id;
    (void) mock_fault(str_printf("{\"match\":\"%s:cp_\","
                                 "\"latency_ms\":3000,"
                                 "\"webhook_never\":true}", h.m.id));

    key = uid("ck");
    a = capture(&h, 0, "4.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    nonce = db_scalar("SELECT nonce FROM captures WHERE merchant_id = $1", 1,
                      params);
    cr_assert_not_null(nonce);
    (void) db_scalar("UPDATE captures SET created_at = now() - interval "
                     "'8 days' WHERE merchant_id = $1 RETURNING 1", 1,
                     params);
    before = mock_requests(nonce);

    b = capture(&h, 0, "4.00", key);
    cr_expect_eq(b->status, 502, "%s", b->body);
    cr_expect_not_null(strstr(b->body, "not sent again"), "%s", b->body);
    cr_expect_eq(mock_requests(nonce), before,
                 "a claim older than the PSP's key window was sent again");
    cr_expect_eq(captured(&h, 0), 0);
    cr_expect_eq(ql("SELECT count(*) FROM ledger_entries WHERE "
                    "merchant_id = $1", h.m.id, NULL), 0);
}


/* --- what the PSP says of a capture by itself ---------------------------- */

/* a seller destination at the PSP of capture_psp(d) (Adyen, generic) */
static const char *
capture_destination(size_t d)
{
    return d == 1 ? "BA00000000000000000000001" : "payee_1";
}


static json_t *
seller_balance(const held_t *h, const char *seller)
{
    resp_t  *r;
    json_t  *b;

    r = api_get(&h->m, str_printf("/v1/sellers/%s/balance", seller));
    cr_assert_eq(r->status, 200, "%s", r->body);
    b = json_object_get(resp_json(r), "balances");
    cr_assert_eq(json_array_size(b), 1, "%s", r->body);

    return json_incref(json_array_get(b, 0));
}


static const char *
webhook_outcome(const held_t *h, const char *kind)
{
    const char  *params[] = { h->m.id, h->co, kind };

    return db_scalar("SELECT string_agg(outcome, ',' ORDER BY received_at) "
                     "FROM webhook_events WHERE merchant_id = $1 AND "
                     "checkout_id = $2 AND kind = $3", 3, params);
}


/*
 * Adyen's CAPTURE_FAILED after its CAPTURE (generic: capture.failed after
 * capture.succeeded): the capture's booking is undone, as a refund's that
 * failed after it succeeded: the order's captured back to what it was,
 * the PSP's clearing and the seller's wallet and the commission given
 * back; the capture FAILED, alerted (outcome capture_reversed), and the
 * shop is sent capture.failed.  A pay-out made from it meanwhile leaves
 * the seller's wallet below zero, as a lost chargeback does.
 */
static void
capture_reversed(size_t d)
{
    held_t       h;
    resp_t      *r;
    json_t      *b, *ds, *data;
    char        *id, *out, *payout, *avail;
    size_t       i;
    long         paid;
    endpoint_t   ep;
    const char  *args[] = { "add-seller", "--id", NULL, "--seller",
                            "seller_1", "--psp", NULL, "--destination",
                            NULL, NULL };

    held_new_notified(&h, d, &ep);
    args[2] = h.m.id;
    args[6] = h.psp;
    args[8] = capture_destination(d);
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);

    (void) mock_fault(str_printf("{\"match\":\"%s:cp_\","
                                 "\"webhook_capture_reversed\":true}",
                                 h.m.id));

    r = capture(&h, 0, "4.00", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "capture_id")));
    expect_op_becomes(&h, id, "SUCCEEDED");
    cr_expect_eq(captured(&h, 0), 400);

    /* what the capture made available is paid out before the reversal
     * (the mock sends it 2 s after the capture's success) */
    b = seller_balance(&h, "seller_1");
    avail = strdup(json_string_value(json_object_get(b, "available")));
    r = post_op(&h.m, "/v1/payouts", uid("pk"),
                str_printf("{\"seller_account\":\"seller_1\",\"amount\":"
                           "\"%s\",\"currency\":\"USD\",\"psp\":\"%s\"}",
                           avail, h.psp));
    cr_assert_eq(r->status, 201, "pay-out of %s: %s", avail, r->body);
    payout = strdup(json_string_value(json_object_get(resp_json(r),
                                                      "payout_id")));
    paid = ql("SELECT amount FROM payouts WHERE merchant_id = $1 AND "
              "payout_id = $2", h.m.id, payout);
    cr_assert_gt(paid, 0);

    for (i = 0; i < 100; i++) {
        if (ql("SELECT count(*) FROM payouts WHERE merchant_id = $1 AND "
               "payout_id = $2 AND status = 'PAID'", h.m.id, payout) == 1)
        {
            break;
        }
        msleep(100);
    }

    /* the PSP takes the capture back */
    expect_op_becomes(&h, id, "FAILED");

    cr_expect_eq(captured(&h, 0), 0, "%s: the captured part stayed",
                 h.psp);
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_FAILED"),
                     "capture_reversed");
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1 "
                    "AND capture_id = $2 AND commission_part IS NULL AND "
                    "failure IS NOT NULL", h.m.id, id), 1);

    /* nothing of the capture booked any more: the clearing holds only
     * the pay-out, the commission nothing, the wallet minus the pay-out */
    expect_books(&h, -paid);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries "
                    "WHERE merchant_id = $1 AND account = "
                    "'platform_commission'", h.m.id, NULL), 0);
    cr_expect_eq(ql("SELECT balance FROM wallets WHERE merchant_id = $1 "
                    "AND seller_account = 'seller_1'", h.m.id, NULL), -paid,
                 "%s: the seller keeps what the PSP took back", h.psp);
    b = seller_balance(&h, "seller_1");
    cr_expect_eq(json_string_value(json_object_get(b, "wallet"))[0], '-',
                 "%s", dump(b));

    expect_reconciled(&h);

    /* the order keeps its history; nothing of it is captured */
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    r = api_get(&h.m, str_printf("/v1/payments/%s", order_id(&h, 0)));
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "captured")),
                     "0.00", "%s", r->body);

    /* the shop is told */
    ds = receiver_wait(ep.name, "204", 2, 30);
    for (i = 0; i < 50 && deliveries_count(ds, "204", "capture.failed") == 0;
         i++)
    {
        msleep(100);
        ds = receiver_deliveries(ep.name);
    }
    cr_assert_eq(deliveries_count(ds, "204", "capture.failed"), 1, "%s",
                 dump(ds));
    data = NULL;
    for (i = 0; i < json_array_size(ds); i++) {
        if (strcmp(json_string_value(json_object_get(json_array_get(ds, i),
                                                     "type")),
                   "capture.failed") == 0)
        {
            data = json_object_get(json_array_get(ds, i), "data");
        }
    }
    cr_assert_not_null(data);
    cr_expect_str_eq(json_string_value(json_object_get(data, "capture_id")),
                     id, "%s", dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data, "status")),
                     "FAILED", "%s", dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data, "amount")),
                     "4.00", "%s", dump(data));
    cr_expect(json_is_true(json_object_get(data, "reversed")), "%s",
              dump(data));
}


Test(capture, adyen_a_capture_failed_after_it_succeeded_is_undone)
{
    capture_reversed(1);
}


Test(capture, generic_a_capture_failed_after_it_succeeded_is_undone)
{
    capture_reversed(2);
}



/*
 * A capture made at the PSP itself (its dashboard, Adyen's Customer Area),
 * not by POST .../capture: the PSP's event names the checkout and no
 * capture of ours (Adyen CAPTURE with the checkout's merchantReference,
 * Stripe payment_intent.succeeded without our capture's nonce, generic
 * capture.succeeded with the checkout's reference).  It is booked as
 * captures are: 6.00 of the checkout's 15.00, split over its orders as
 * they hold (4.00 of the 10.00, 2.00 of the 5.00), a capture row each made
 * from the event, the orders SUCCESS, the ledger and the wallets; alerted
 * (outcome captured_outside).  Stripe captures an intent once: the rest
 * is released with it.
 */
static void
capture_at_the_dashboard(size_t d)
{
    int          i;
    held_t       h;
    resp_t      *r;
    char        *ref;
    const char  *params[2];

    held_new(&h, d);
    params[0] = h.m.id;
    params[1] = h.co;
    ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                    "merchant_id = $1 AND checkout_id = $2", 2, params);
    cr_assert_not_null(ref);

    r = mock_post("/_control/captures",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":600}",
                             ref));
    cr_assert_eq(r->status, 200, "%s", r->body);

    for (i = 0; i < 100 && captured(&h, 1) != 200; i++) {
        msleep(100);
    }

    cr_assert_eq(captured(&h, 1), 200, "%s: the capture at the PSP was "
                 "never booked (%s)", h.psp,
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_eq(captured(&h, 0), 400);
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    cr_expect_str_eq(order_status(&h, 1), "SUCCESS");
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_SUCCEEDED"),
                     "captured_outside");
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND kind = 'capture' AND status = "
                    "'SUCCEEDED' AND psp_ref IS NOT NULL", h.m.id, h.co), 2);
    expect_books(&h, 600);
    expect_reconciled(&h);

    if (d == 0) {
        /* Stripe: the rest released with it */
        cr_expect_eq(ql("SELECT count(*) FROM checkouts WHERE merchant_id = "
                        "$1 AND checkout_id = $2 AND hold_closed_at IS NOT "
                        "NULL", h.m.id, h.co), 1);
        r = capture(&h, 0, "1.00", NULL);
        cr_expect_eq(r->status, 409, "%s", r->body);

    } else {
        /* the rest may still be captured through the API */
        (void) capture_ok(&h, 0, "6.00");
        cr_expect_eq(captured(&h, 0), 1000);
        expect_books(&h, 1200);
    }

    /* the order's view lists it */
    r = api_get(&h.m, str_printf("/v1/payments/%s", order_id(&h, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_eq(json_array_size(json_object_get(resp_json(r), "captures")),
                 d == 0 ? 1 : 2, "%s", r->body);
}


/*
 * A capture of the checkout that names another payment than the one it
 * holds (an intent of someone else's carrying the checkout's nonce, or a
 * second payment): nothing booked, alerted as object_mismatch.  Before,
 * the "captured outside" path booked it against the checkout's orders
 * whatever payment it named.
 */
Test(capture, a_capture_naming_another_payment_is_booked_nowhere)
{
    held_t       h;
    const char  *params[4];

    held_new(&h, 0);
    params[0] = h.psp;
    params[1] = uid("evt");
    params[2] = str_printf("%s:%s", h.m.id, h.co);
    params[3] = "pi_someone_elses";

    cr_expect_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, $2, "
                               "'CAPTURE_SUCCEEDED', "
                               "'payment_intent.succeeded', NULL, $3, 600, "
                               "'USD', $4, $4, NULL)", 4, params),
                     "object_mismatch");
    cr_expect_eq(captured(&h, 0), 0);
    cr_expect_eq(captured(&h, 1), 0);
    cr_expect_str_eq(checkout_status(&h), "AUTHORIZED");
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1 "
                    "AND checkout_id = $2", h.m.id, h.co), 0);
    expect_held_not_booked(&h);
}


Test(capture, stripe_a_capture_made_at_the_dashboard_is_booked)
{
    capture_at_the_dashboard(0);
}


Test(capture, adyen_a_capture_made_at_the_dashboard_is_booked)
{
    capture_at_the_dashboard(1);
}


Test(capture, generic_a_capture_made_at_the_dashboard_is_booked)
{
    capture_at_the_dashboard(2);
}


/*
 * A currency the PSP counts in coarser units than ISO: Adyen counts IDR in
 * whole rupiah (0 decimals where ISO has 2).  A manual checkout of three
 * orders of 10000.00 IDR (1000000 ISO minor units each), held at Adyen.
 */
static void
held_idr(held_t *h)
{
    size_t   i;
    json_t  *body, *o;

    memset(h, 0, sizeof(held_t));
    h->psp = capture_psp(1);
    merchant_new(&h->m);
    h->co = uid("co");

    body = checkout_new(h->co, 3);

    json_array_foreach(json_object_get(body, "payment_orders"), i, o) {
        json_object_set_new(o, "amount", json_string("10000.00"));
        json_object_set_new(o, "currency", json_string("IDR"));
    }

    held_pay(h, body);
}


static long
captured_total(const held_t *h)
{
    return ql("SELECT coalesce(sum(amount_captured), -1) FROM payment_orders "
              "WHERE merchant_id = $1 AND checkout_id = $2", h->m.id, h->co);
}


/* the void of the checkout (through order) answered 201 and settled by
 * the PSP: the hold released, nothing left PENDING */
static void
expect_voided(const held_t *h, int order)
{
    resp_t  *r;
    char    *id;

    r = void_hold(h, order, NULL);
    cr_assert_eq(r->status, 201, "%s: void: %ld %s", h->psp, r->status,
                 r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "capture_id")));
    expect_op_becomes(h, id, "SUCCEEDED");
    cr_expect_eq(ql("SELECT count(*) FROM checkouts WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND hold_closed_at IS NOT NULL",
                    h->m.id, h->co), 1, "%s: the hold is not released",
                 h->psp);
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND status = 'PENDING'", h->m.id,
                    h->co), 0, "%s: a capture left PENDING", h->psp);
}


/*
 * 10000 IDR captured at Adyen's Customer Area over the three orders: each
 * gets whole rupiah (3334 + 3333 + 3333 IDR), so that what each has left
 * is an amount Adyen can be sent.  A capture of the rest without an
 * amount then captures it (6666.00 IDR of the first order), and the hold
 * is voided.  Before: the parts were 3333.34 + 3333.33 + 3333.33 IDR, the
 * rest of 6666.66 IDR was claimed whole, its request could not be built
 * (502, at every retry), and its PENDING capture made every void 409
 * and kept the sweeper from ever releasing the hold.
 */
Test(capture, adyen_idr_the_rest_after_a_dashboard_capture_is_captured_in_whole_rupiah)
{
    int          i;
    held_t       h;
    resp_t      *r;
    json_t      *j;
    char        *ref, *id;
    const char  *params[2];

    held_idr(&h);
    params[0] = h.m.id;
    params[1] = h.co;
    ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                    "merchant_id = $1 AND checkout_id = $2", 2, params);
    cr_assert_not_null(ref);

    /* Adyen's units: 10000 IDR */
    r = mock_post("/_control/captures",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":10000}",
                             ref));
    cr_assert_eq(r->status, 200, "%s", r->body);

    for (i = 0; i < 100 && captured_total(&h) != 1000000; i++) {
        msleep(100);
    }

    cr_assert_eq(captured_total(&h), 1000000, "the capture at the PSP was "
                 "never booked (%s)",
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_SUCCEEDED"),
                     "captured_outside");
    cr_expect_eq(captured(&h, 0), 333400);
    cr_expect_eq(captured(&h, 1), 333300);
    cr_expect_eq(captured(&h, 2), 333300);

    /* an amount Adyen cannot be sent is refused before anything is
     * claimed */
    r = capture(&h, 1, "0.50", NULL);
    cr_expect_eq(r->status, 400, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r), "code")),
                     "invalid_amount", "%s", r->body);

    /* the rest of the first order, without an amount */
    r = capture(&h, 0, NULL, NULL);
    cr_assert_eq(r->status, 201, "the rest: %ld %s", r->status, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "amount")),
                     "6666.00", "%s", r->body);
    id = strdup(json_string_value(json_object_get(j, "capture_id")));
    expect_op_becomes(&h, id, "SUCCEEDED");
    cr_expect_eq(captured(&h, 0), 1000000);

    /* the others' rest released */
    expect_voided(&h, 1);
    cr_expect_eq(captured(&h, 1), 333300);
    cr_expect_eq(captured(&h, 2), 333300);
    expect_books(&h, 1666600);
}


/*
 * What is left of an order is less than a rupiah, which Adyen cannot be
 * sent (a split in ISO's units leaves it so: here the PSP's word of a
 * capture of 29999.50 IDR made at its dashboard, applied as the webhook
 * would be, over the three orders).  A
 * capture of the rest without an amount is 400 invalid_amount saying so,
 * nothing stored, and the hold is voided.  Before: a capture of 0.10 IDR
 * was claimed, 502 (its request cannot be built), and the void 409.
 */
Test(capture, adyen_idr_a_rest_below_one_rupiah_is_refused_and_the_hold_voided)
{
    int          i;
    held_t       h;
    resp_t      *r;
    char        *want;
    const char  *params[5], *detail;

    held_idr(&h);
    params[0] = h.psp;
    params[1] = uid("evt");
    params[2] = str_printf("%s:%s", h.m.id, h.co);
    params[3] = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                          "merchant_id = $1 AND checkout_id = $2", 2,
                          (const char *[]){ h.m.id, h.co });
    params[4] = uid("cap");
    cr_assert_not_null(params[3]);

    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, $2, "
                               "'CAPTURE_SUCCEEDED', 'CAPTURE', NULL, $3, "
                               "2999950, 'IDR', $4, $5, NULL)", 5, params),
                     "captured_outside");

    /* each order has less than a rupiah left */
    for (i = 0; i < 3; i++) {
        cr_assert(captured(&h, i) > 999900 && captured(&h, i) < 1000000,
                  "order %d: %ld captured", i, captured(&h, i));
    }

    r = capture(&h, 0, NULL, NULL);
    cr_expect_eq(r->status, 400, "the rest: %ld %s", r->status, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r), "code")),
                     "invalid_amount", "%s", r->body);
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    want = str_printf("0.%02ld IDR is left of this order, less than the "
                      "smallest amount its PSP captures (1.00 IDR)",
                      1000000 - captured(&h, 0));
    cr_expect(detail != NULL && strstr(detail, want) != NULL, "%s",
              r->body);
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND psp_ref IS NULL", h.m.id,
                    h.co), 0, "a capture was stored: %s", r->body);

    expect_voided(&h, 0);
    cr_expect_eq(captured_total(&h), 2999950);
    expect_books(&h, 2999950);
}


/*
 * A capture of the rest of the first order as the previous release left
 * it when that rest was not whole rupiah: 10000.02 IDR captured at the
 * PSP's dashboard, split 3333.34 IDR an order (in ISO's units: the amount
 * is not whole rupiah); then, under key, the previous release's claim of
 * all that was left, 6666.66 IDR, PENDING, its request never built (Adyen
 * counts whole rupiah), the key's lease over, psp_contact 'maybe' (the
 * column's default, as a row from before it).  Its id.
 */
static char *
capture_left_unsendable(held_t *h, const char *key)
{
    char         fp[65];
    char        *id;
    const char  *params[5];

    params[0] = h->psp;
    params[1] = uid("evt");
    params[2] = str_printf("%s:%s", h->m.id, h->co);
    params[3] = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                          "merchant_id = $1 AND checkout_id = $2", 2,
                          (const char *[]){ h->m.id, h->co });
    params[4] = uid("cap");
    cr_assert_not_null(params[3]);
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, $2, "
                               "'CAPTURE_SUCCEEDED', 'CAPTURE', NULL, $3, "
                               "1000002, 'IDR', $4, $5, NULL)", 5, params),
                     "captured_outside");
    cr_assert_eq(captured(h, 0), 333334);

    fingerprint("POST", str_printf("/v1/payments/%s/capture",
                                   order_id(h, 0)), "{}", fp);
    id = db_scalar("SELECT 'cp_' || encode(gen_random_bytes_compat(12), "
                   "'hex')", 0, NULL);
    cr_assert_not_null(id);

    params[0] = h->m.id;
    params[1] = key;
    params[2] = fp;
    params[3] = id;
    params[4] = order_id(h, 0);
    cr_assert_str_eq(db_scalar("SELECT outcome || ' ' || amount FROM "
                               "pay_capture_claim($1, $2, $3, 30, 86400, $4, "
                               "$5, NULL, NULL, 'capture', '{}', false)", 5,
                               params),
                     "new 666666");
    cr_assert_str_eq(db_scalar("UPDATE captures SET psp_contact = 'maybe' "
                               "WHERE merchant_id = $1 AND capture_id = $2 "
                               "RETURNING 'planted'", 2,
                               (const char *[]){ h->m.id, id }),
                     "planted");
    cr_assert_str_eq(db_scalar("UPDATE idempotency_keys SET lease_until = "
                               "now() - interval '1 second' WHERE "
                               "merchant_id = $1 AND idem_key = $2 "
                               "RETURNING 'over'", 2, params),
                     "over");

    return id;
}


/* the capture's answer under its key: 201, FAILED, never sent */
static void
expect_given_up(const held_t *h, resp_t *r, const char *id)
{
    json_t      *j;
    const char  *failure;

    cr_assert_eq(r->status, 201, "%s", r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "capture_id")), id,
                     "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "status")),
                     "FAILED", "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "amount")),
                     "6666.66", "%s", r->body);
    failure = json_string_value(json_object_get(j, "failure"));
    cr_expect(failure != NULL && strncmp(failure, "never sent", 10) == 0,
              "%s", r->body);
    cr_expect_eq(mock_requests(str_printf("%s:%s", h->m.id, id)), 0,
                 "the PSP was sent it");
    cr_expect_eq(ql("SELECT count(*) FROM audit_log WHERE merchant_id = $1 "
                    "AND action = 'capture:abandoned' AND "
                    "detail->>'capture_id' = $2", h->m.id, id), 1);
}


/*
 * A capture the previous release stored PENDING with an amount Adyen
 * cannot be sent (6666.66 IDR: it counts whole rupiah) is given up when
 * its key comes again: no request of it could ever be built, so none
 * reached the PSP.  201 FAILED "never sent" (the same answer at the next
 * retry), its amount capturable again, and the hold is voided.  Before:
 * 502 at every retry (the request cannot be built), the capture PENDING
 * for good, and every void 409.
 */
Test(capture, adyen_idr_a_pending_capture_adyen_cannot_be_sent_is_given_up_at_its_retry)
{
    held_t   h;
    resp_t  *r;
    char    *key, *id;

    held_idr(&h);
    key = uid("ck");
    id = capture_left_unsendable(&h, key);

    r = capture(&h, 0, NULL, key);
    expect_given_up(&h, r, id);

    r = capture(&h, 0, NULL, key);
    expect_given_up(&h, r, id);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");

    expect_voided(&h, 0);
    cr_expect_eq(captured_total(&h), 1000002);
    expect_books(&h, 1000002);
}


/*
 * The same capture when its key never comes again: the void gives it up
 * in its own transaction (its request could never be built) and releases
 * the hold; the key then answers 201 FAILED from the row.  Before: every
 * void 409, the hold never released.
 */
Test(capture, adyen_idr_a_pending_capture_adyen_cannot_be_sent_does_not_block_the_void)
{
    held_t   h;
    resp_t  *r;
    char    *key, *id;

    held_idr(&h);
    key = uid("ck");
    id = capture_left_unsendable(&h, key);

    expect_voided(&h, 1);
    cr_expect_eq(captured_total(&h), 1000002);
    expect_books(&h, 1000002);

    r = capture(&h, 0, NULL, key);
    expect_given_up(&h, r, id);
}

/* the data of the one delivery of type that ep's receiver answered 204 */
static json_t *
delivered_data_of(const endpoint_t *ep, const char *type)
{
    int      i;
    size_t   k;
    json_t  *ds, *d, *data;

    ds = receiver_deliveries(ep->name);
    for (i = 0; i < 100 && deliveries_count(ds, "204", type) == 0; i++) {
        msleep(100);
        ds = receiver_deliveries(ep->name);
    }
    cr_assert_eq(deliveries_count(ds, "204", type), 1, "%s: %s", type,
                 dump(ds));

    data = NULL;
    for (k = 0; k < json_array_size(ds); k++) {
        d = json_array_get(ds, k);
        if (strcmp(json_string_value(json_object_get(d, "type")), type) == 0) {
            data = json_object_get(d, "data");
        }
    }
    cr_assert_not_null(data);

    return data;
}


/*
 * A final capture of part of the hold (Stripe captures an authorization
 * once: 5.00 of the 10.00 order, the rest of the 15.00 released with it):
 * checkout.succeeded says what was captured beside what was authorized,
 * amount_captured 5.00 of amount_total 15.00, and each order its own
 * (5.00 of the 10.00 order, SUCCESS; 0.00 of the 5.00 one, FAILED).
 * Before, it said 15.00 and nothing else: a shop reading it would ship
 * for 15.00 that were never taken.  The hold's own checkout.authorized
 * says nothing is captured yet.
 */
Test(capture, a_final_partial_capture_is_notified_with_what_was_captured)
{
    size_t       k;
    held_t       h;
    json_t      *data, *o;
    endpoint_t   ep;

    held_new_notified(&h, 0, &ep);

    data = delivered_data_of(&ep, "checkout.authorized");
    cr_expect_str_eq(json_string_value(json_object_get(data,
                                                       "amount_captured")),
                     "0.00", "%s", dump(data));
    cr_expect_eq(json_integer_value(json_object_get(data,
                                                    "amount_captured_minor")),
                 0, "%s", dump(data));

    (void) capture_ok(&h, 0, "5.00");
    cr_assert_str_eq(checkout_status(&h), "SUCCESS");
    cr_assert_str_eq(order_status(&h, 1), "FAILED", "the rest is released");

    data = delivered_data_of(&ep, "checkout.succeeded");
    cr_expect_str_eq(json_string_value(json_object_get(data,
                                                       "amount_total")),
                     "15.00", "%s", dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data,
                                                       "amount_captured")),
                     "5.00", "the notification does not say what was "
                     "captured: %s", dump(data));
    cr_expect_eq(json_integer_value(json_object_get(data,
                                                    "amount_captured_minor")),
                 500, "%s", dump(data));

    cr_assert_eq(json_array_size(json_object_get(data, "payment_orders")), 2,
                 "%s", dump(data));
    for (k = 0; k < 2; k++) {
        o = json_array_get(json_object_get(data, "payment_orders"), k);
        cr_expect_str_eq(json_string_value(json_object_get(o,
                                                       "payment_order_id")),
                         order_id(&h, (int) k), "%s", dump(data));
        cr_expect_str_eq(json_string_value(json_object_get(o, "status")),
                         k == 0 ? "SUCCESS" : "FAILED", "%s", dump(data));
        cr_expect_str_eq(json_string_value(json_object_get(o,
                                                           "amount_captured")),
                         k == 0 ? "5.00" : "0.00", "%s", dump(data));
        cr_expect_eq(json_integer_value(json_object_get(o,
                                                    "amount_captured_minor")),
                     k == 0 ? 500 : 0, "%s", dump(data));
    }
}


/*
 * A capture made at the PSP's dashboard on a checkout already paid here
 * (Adyen, several captures): the shop captured 5.00 of the 10.00 order
 * itself (the checkout SUCCESS, checkout.succeeded sent), then the rest,
 * 10.00, is captured in Adyen's Customer Area.  It is booked to the
 * sellers (captured_outside, 5.00 + 5.00) and the checkout's status does
 * not move, so the shop is sent capture.succeeded for each capture row the
 * event made: their ids (those a later capture.failed would name), the
 * order, the amount, the PSP's id.  Its own capture's success is not
 * notified (it asked for it).  Before, nothing was sent.
 */
Test(capture, adyen_a_dashboard_capture_of_a_paid_checkout_is_notified)
{
    int          i;
    size_t       k, n;
    held_t       h;
    resp_t      *r;
    json_t      *ds, *d, *data;
    char        *ours, *cap, *ref;
    const char  *params[2], *po, *id, *seen[2];
    endpoint_t   ep;

    held_new_notified(&h, 1, &ep);
    params[0] = h.m.id;
    params[1] = h.co;

    ours = capture_ok(&h, 0, "5.00");
    cr_assert_str_eq(checkout_status(&h), "SUCCESS");
    (void) receiver_wait(ep.name, "204", 2, 30);    /* authorized, succeeded */

    ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                    "merchant_id = $1 AND checkout_id = $2", 2, params);
    cr_assert_not_null(ref);
    r = mock_post("/_control/captures",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":1000}", ref));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cap = strdup(json_string_value(json_object_get(resp_json(r), "id")));

    for (i = 0; i < 100 && captured(&h, 1) != 500; i++) {
        msleep(100);
    }
    cr_assert_eq(captured(&h, 1), 500, "the capture at the PSP was never "
                 "booked (%s)",
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_eq(captured(&h, 0), 1000);
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_SUCCEEDED"),
                     "applied,captured_outside");

    ds = receiver_deliveries(ep.name);
    for (i = 0; i < 100 && deliveries_count(ds, "204", "capture.succeeded") < 2;
         i++)
    {
        msleep(100);
        ds = receiver_deliveries(ep.name);
    }
    cr_assert_eq(deliveries_count(ds, "204", "capture.succeeded"), 2,
                 "the shop was not told of the capture made at the PSP: %s",
                 dump(ds));
    cr_expect_eq(deliveries_count(ds, "204", "checkout.succeeded"), 1, "%s",
                 dump(ds));

    n = 0;
    for (k = 0; k < json_array_size(ds); k++) {
        d = json_array_get(ds, k);
        if (strcmp(json_string_value(json_object_get(d, "type")),
                   "capture.succeeded") != 0)
        {
            continue;
        }
        data = json_object_get(d, "data");
        id = json_string_value(json_object_get(data, "capture_id"));
        po = json_string_value(json_object_get(data, "payment_order_id"));
        cr_assert_not_null(id, "%s", dump(data));
        cr_assert_not_null(po, "%s", dump(data));
        cr_expect_str_neq(id, ours, "our own capture was notified");
        {
            const char  *p3[] = { h.m.id, id, po, cap };

            cr_expect_str_eq(db_scalar("SELECT count(*) FROM captures WHERE "
                                       "merchant_id = $1 AND capture_id = "
                                       "$2 AND payment_order_id = $3 AND "
                                       "psp_ref = $4 AND status = "
                                       "'SUCCEEDED' AND amount = 500",
                                       4, p3),
                             "1", "%s", dump(data));
        }
        cr_expect_str_eq(json_string_value(json_object_get(data,
                                                           "checkout_id")),
                         h.co, "%s", dump(data));
        cr_expect_str_eq(json_string_value(json_object_get(data, "status")),
                         "SUCCEEDED", "%s", dump(data));
        cr_expect_str_eq(json_string_value(json_object_get(data, "amount")),
                         "5.00", "%s", dump(data));
        cr_expect_eq(json_integer_value(json_object_get(data,
                                                        "amount_minor")),
                     500, "%s", dump(data));
        cr_expect_str_eq(json_string_value(json_object_get(data,
                                                           "currency")),
                         "USD", "%s", dump(data));
        cr_expect_str_eq(json_string_value(json_object_get(data, "psp_ref")),
                         cap, "%s", dump(data));
        cr_expect_eq(json_integer_value(json_object_get(data, "sequence")),
                     1, "%s", dump(data));
        if (n < 2) {
            seen[n] = po;
        }
        n++;
    }
    cr_assert_eq(n, 2);
    cr_expect(strcmp(seen[0], seen[1]) != 0, "one each order: %s %s",
              seen[0], seen[1]);
    expect_books(&h, 1500);
}


/*
 * An Adyen manual capture paid whose AUTHORISATION never comes: the
 * checkout stays EXECUTING (its session look-up says paymentPending for
 * good).  A capture made at the PSP's dashboard proves the authorization:
 * its CAPTURE holds the checkout (AUTHORIZED, the PSP's payment noted) and
 * is booked as captured_outside at once, not kept for an authorization
 * that never comes (where a later pass of the sweeper booked it, or never
 * did); the PSP's reversal of it then takes it back whole
 * (capture_reversed), never recorded as 'ignored' before the capture it
 * reverses was booked.  The books end as the PSP's: nothing captured.
 */
Test(capture, a_dashboard_capture_of_a_payment_never_authorized_here_is_booked_and_reversed)
{
    int          i;
    held_t       h;
    json_t      *body, *s;
    resp_t      *r;
    char        *cap;
    const char  *ref, *params[2];

    memset(&h, 0, sizeof(held_t));
    h.psp = capture_psp(1);
    merchant_new(&h.m);
    h.co = uid("co");
    params[0] = h.m.id;
    params[1] = h.co;

    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(&h.m, h.co)));

    body = checkout_new(h.co, 2);
    json_object_set_new(body, "psp", json_string(h.psp));
    json_object_set_new(body, "capture", json_string("manual"));
    r = register_ok(&h.m, uid("key"), dump(body));
    h.created = resp_json(r);
    h.token = strdup(json_string_value(json_object_get(h.created,
                                                       "psp_token")));

    r = mock_post(str_printf("/_control/sessions/%s/pay", h.token), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
    s = mock_session(h.token);
    ref = json_string_value(json_object_get(s, "payment_ref"));
    cr_assert_not_null(ref, "the mock's session names no payment");

    msleep(300);
    cr_assert_str_eq(checkout_status(&h), "EXECUTING",
                     "the authorization's webhook was sent after all");

    /* captured at the dashboard: 6.00 of the 15.00 */
    r = mock_post("/_control/captures",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":600}", ref));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cap = strdup(json_string_value(json_object_get(resp_json(r), "id")));

    for (i = 0; i < 100 && captured(&h, 1) != 200; i++) {
        msleep(100);
    }

    cr_assert_eq(captured(&h, 1), 200, "the capture at the PSP of a payment "
                 "never authorized here was not booked (webhook events: %s; "
                 "kept: %s)",
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params),
                 db_scalar("SELECT string_agg(kind || ':' || state, ',') "
                           "FROM psp_events WHERE reference = $1 || ':' || $2",
                           2, params));
    cr_expect_eq(captured(&h, 0), 400);
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_SUCCEEDED"),
                     "captured_outside");
    cr_expect_str_eq(db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2",
                               2, params), ref);
    cr_expect_eq(ql("SELECT count(*) FROM order_events WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND from_status = 'EXECUTING' AND "
                    "to_status = 'AUTHORIZED'", h.m.id, h.co), 2,
                 "each order held first");
    expect_books(&h, 600);

    /* the PSP takes it back */
    r = mock_post(str_printf("/_control/captures/%s/fail", cap), NULL);
    cr_assert_eq(r->status, 200, "the PSP refused the reversal: %s", r->body);

    for (i = 0; i < 100 && captured(&h, 1) != 0; i++) {
        msleep(100);
    }

    cr_assert_eq(captured(&h, 1), 0, "the capture the PSP reversed stays "
                 "booked (webhook events: %s)",
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_eq(captured(&h, 0), 0);
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_FAILED"),
                     "capture_reversed");
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1 "
                    "AND checkout_id = $2 AND status = 'SUCCEEDED'",
                    h.m.id, h.co), 0);
    expect_books(&h, 0);
}


/*
 * The authorization's event of a manual capture sent to the gateway
 * (forged as the PSP signs it, the mock's own withheld or sent already):
 * Adyen's AUTHORISATION of the payment (its pspReference), Stripe's
 * payment_intent.amount_capturable_updated of the intent, the generic
 * payment.authorized; under the event id evt (Stripe, generic; Adyen's
 * is the payment's and the code).
 */
static void
authorization_deliver(const held_t *h, size_t d, const char *ref,
    const char *evt)
{
    char    *body, *item;
    resp_t  *r;

    if (d == 0) {
        body = str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                          "\"payment_intent.amount_capturable_updated\","
                          "\"created\":%ld,\"livemode\":false,\"data\":"
                          "{\"object\":{\"id\":\"%s\",\"object\":"
                          "\"payment_intent\",\"amount\":1500,"
                          "\"amount_capturable\":1500,\"currency\":\"usd\","
                          "\"capture_method\":\"manual\",\"status\":"
                          "\"requires_capture\",\"metadata\":{\"nonce\":"
                          "\"%s\"}}}}",
                          evt, (long) time(NULL), ref, nonce(&h->m, h->co));
        r = webhook_post(h->psp, stripe_signature(NULL, (long) time(NULL),
                                                  body), body);

    } else if (d == 2) {
        body = str_printf("{\"event_id\":\"%s\",\"type\":"
                          "\"payment.authorized\",\"reference\":\"%s\","
                          "\"token\":\"%s\",\"payment_id\":\"%s\","
                          "\"amount\":\"15.00\",\"currency\":\"USD\"}",
                          evt, nonce(&h->m, h->co), h->token, ref);
        r = webhook_post(h->psp, generic_verification(body, (long) time(NULL),
                                                      "mock-es256", NULL),
                         body);

    } else {
        item = adyen_notification_item(&(adyen_notification_t) {
                                           .psp_ref = ref,
                                           .merchant_ref = nonce(&h->m,
                                                                 h->co),
                                           .amount = 1500,
                                           .currency = "USD",
                                           .event_code = "AUTHORISATION",
                                           .success = "true" }, 0);
        body = str_printf("{\"live\":\"false\",\"notificationItems\":[%s]}",
                          item);
        r = webhook_post(h->psp, "X-Unused: 1", body);
    }

    cr_assert(r->status >= 200 && r->status < 300, "%s: the authorization's "
              "event: %ld %s", h->psp, r->status, r->body);
}


/*
 * A capture made at the PSP's dashboard, its event delivered before the
 * authorization's (capture_first: the PSP's events out of order, Adyen's
 * AUTHORISATION and CAPTURE close together, Stripe's intent before the
 * session's) or after it, at Stripe, Adyen and the generic PSP: the shop
 * is told the same story either way.
 * The capture's event holds the checkout first (EXECUTING -> AUTHORIZED,
 * as the authorization would have) and books the capture (SUCCESS) in one
 * transaction: checkout.authorized (sequence 1) says the hold as it was
 * made, the checkout and its orders AUTHORIZED, nothing captured;
 * checkout.succeeded (sequence 2) the capture, 6.00 of the 15.00, its
 * orders SUCCESS; capture.succeeded for each part.  Each once: the
 * capture's event delivered twice at once, the authorization's coming
 * late, twice, moves and tells nothing more, and books nothing more.
 * Before, checkout.authorized carried the orders SUCCESS and captured,
 * contradicting its own type.
 */
static void
dashboard_capture_story(size_t d, int capture_first)
{
    int          i;
    size_t       k;
    held_t       h;
    json_t      *body, *data, *o, *ds;
    resp_t      *r;
    char        *ref, *evt;
    endpoint_t   ep;
    const char  *params[2];

    if (capture_first) {
        memset(&h, 0, sizeof(held_t));
        h.psp = capture_psp(d);
        merchant_new(&h.m);
        h.co = uid("co");
        endpoint_add(&h.m, NULL, &ep);

        /* the authorization's event withheld (sent below, after the
         * capture's); the capture's delivered twice at once */
        mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true,"
                              "\"webhook_duplicate\":1}",
                              nonce(&h.m, h.co)));

        body = checkout_new(h.co, 2);
        json_object_set_new(body, "psp", json_string(h.psp));
        json_object_set_new(body, "capture", json_string("manual"));
        r = register_ok(&h.m, uid("key"), dump(body));
        h.created = resp_json(r);
        h.token = strdup(json_string_value(json_object_get(h.created,
                                                           "psp_token")));

        r = mock_post(str_printf("/_control/sessions/%s/pay", h.token), NULL);
        cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
                  r->status, r->body);
        ref = strdup(json_string_value(json_object_get(
                         mock_session(h.token), "payment_ref")));

        msleep(300);
        cr_assert_str_eq(checkout_status(&h), "EXECUTING",
                         "the authorization's webhook was sent after all");

    } else {
        held_new_notified(&h, d, &ep);
        mock_fault(str_printf("{\"match\":\"%s\",\"webhook_duplicate\":1}",
                              nonce(&h.m, h.co)));
        params[0] = h.m.id;
        params[1] = h.co;
        ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                        "merchant_id = $1 AND checkout_id = $2", 2, params);
        cr_assert_not_null(ref);
    }

    params[0] = h.m.id;
    params[1] = h.co;

    /* captured at the dashboard: 6.00 of the 15.00 */
    r = mock_post("/_control/captures",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":600}", ref));
    cr_assert_eq(r->status, 200, "%s", r->body);

    for (i = 0; i < 100 && captured(&h, 1) != 200; i++) {
        msleep(100);
    }
    cr_assert_eq(captured(&h, 1), 200, "%s: the capture at the PSP was "
                 "never booked (%s)", h.psp,
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_eq(captured(&h, 0), 400);
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");

    /* the authorization's event now (capture_first: its first delivery),
     * and again */
    evt = uid("evt");
    authorization_deliver(&h, d, ref, evt);
    authorization_deliver(&h, d, ref, evt);

    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_SUCCEEDED"),
                     "captured_outside", "%s", h.psp);
    cr_expect_eq(ql("SELECT count(*) FROM webhook_events WHERE merchant_id "
                    "= $1 AND checkout_id = $2 AND kind IN ('SUCCEEDED', "
                    "'AUTHORIZED') AND outcome = 'applied'", h.m.id, h.co),
                 capture_first ? 0 : 1, "%s: %s", h.psp,
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_eq(ql("SELECT count(*) FROM webhook_events WHERE merchant_id "
                    "= $1 AND checkout_id = $2 AND kind IN ('SUCCEEDED', "
                    "'AUTHORIZED') AND outcome NOT IN ('applied', "
                    "'already')", h.m.id, h.co), 0, "%s: %s", h.psp,
                 db_scalar("SELECT string_agg(kind || ':' || outcome, ',') "
                           "FROM webhook_events WHERE merchant_id = $1 AND "
                           "checkout_id = $2", 2, params));
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");
    cr_expect_eq(captured(&h, 0), 400);
    cr_expect_eq(captured(&h, 1), 200);
    expect_books(&h, 600);

    /* the story: every notification once, and nothing more after a while */
    (void) receiver_wait(ep.name, "204", 4, 30);
    msleep(1500);
    ds = receiver_deliveries(ep.name);
    cr_expect_eq(deliveries_count(ds, "204", "checkout.authorized"), 1,
                 "%s: %s", h.psp, dump(ds));
    cr_expect_eq(deliveries_count(ds, "204", "checkout.succeeded"), 1,
                 "%s: %s", h.psp, dump(ds));
    cr_expect_eq(deliveries_count(ds, "204", "capture.succeeded"), 2,
                 "%s: %s", h.psp, dump(ds));
    cr_expect_eq(deliveries_distinct(ds, "204"), 4, "%s: %s", h.psp,
                 dump(ds));

    /* the hold, as it was made */
    data = delivered_data_of(&ep, "checkout.authorized");
    cr_expect_eq(json_integer_value(json_object_get(data, "sequence")), 1,
                 "%s: %s", h.psp, dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data, "status")),
                     "AUTHORIZED", "%s: %s", h.psp, dump(data));
    cr_expect_eq(json_integer_value(json_object_get(data,
                                                    "amount_captured_minor")),
                 0, "%s: checkout.authorized says the hold captured: %s",
                 h.psp, dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data,
                                                       "amount_captured")),
                     "0.00", "%s: %s", h.psp, dump(data));
    cr_assert_eq(json_array_size(json_object_get(data, "payment_orders")), 2,
                 "%s", dump(data));
    for (k = 0; k < 2; k++) {
        o = json_array_get(json_object_get(data, "payment_orders"), k);
        cr_expect_str_eq(json_string_value(json_object_get(o, "status")),
                         "AUTHORIZED", "%s: checkout.authorized with an "
                         "order not held: %s", h.psp, dump(data));
        cr_expect_eq(json_integer_value(json_object_get(o,
                                                "amount_captured_minor")),
                     0, "%s: %s", h.psp, dump(data));
    }

    /* then its capture */
    data = delivered_data_of(&ep, "checkout.succeeded");
    cr_expect_eq(json_integer_value(json_object_get(data, "sequence")), 2,
                 "%s: %s", h.psp, dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data, "status")),
                     "SUCCESS", "%s: %s", h.psp, dump(data));
    cr_expect_eq(json_integer_value(json_object_get(data,
                                                    "amount_captured_minor")),
                 600, "%s: %s", h.psp, dump(data));
    cr_assert_eq(json_array_size(json_object_get(data, "payment_orders")), 2,
                 "%s", dump(data));
    for (k = 0; k < 2; k++) {
        o = json_array_get(json_object_get(data, "payment_orders"), k);
        cr_expect_str_eq(json_string_value(json_object_get(o, "status")),
                         "SUCCESS", "%s: %s", h.psp, dump(data));
        cr_expect_eq(json_integer_value(json_object_get(o,
                                                "amount_captured_minor")),
                     k == 0 ? 400 : 200, "%s: %s", h.psp, dump(data));
    }
}


Test(capture, stripe_a_dashboard_capture_before_its_authorization_tells_the_hold_then_the_capture)
{
    dashboard_capture_story(0, 1);
}


Test(capture, adyen_a_dashboard_capture_before_its_authorization_tells_the_hold_then_the_capture)
{
    dashboard_capture_story(1, 1);
}


Test(capture, generic_a_dashboard_capture_before_its_authorization_tells_the_hold_then_the_capture)
{
    dashboard_capture_story(2, 1);
}


Test(capture, stripe_a_dashboard_capture_after_its_authorization_tells_the_same)
{
    dashboard_capture_story(0, 0);
}


Test(capture, adyen_a_dashboard_capture_after_its_authorization_tells_the_same)
{
    dashboard_capture_story(1, 0);
}


Test(capture, generic_a_dashboard_capture_after_its_authorization_tells_the_same)
{
    dashboard_capture_story(2, 0);
}


/*
 * A capture the PSP confirms after the hold was released here (by an
 * earlier sweeper that did not wait for it, or by the PSP's own release
 * notice crossing it): the PSP holds the money, so it is booked, as a
 * payment after a failure is: the order and the checkout FAILED ->
 * SUCCESS, an order event from the webhook, alerted (outcome
 * captured_after_release), the shop sent checkout.paid_after_failure.
 * Never a refusal the PSP would meet on every delivery.
 */
Test(capture, a_capture_confirmed_after_the_hold_was_released_is_booked)
{
    int          i;
    held_t       h;
    resp_t      *r;
    json_t      *ds;
    char        *id;
    endpoint_t   ep;
    const char  *params[2];

    held_new_notified(&h, 2, &ep);
    params[0] = h.m.id;
    params[1] = h.co;

    (void) mock_fault(str_printf("{\"match\":\"%s:cp_\","
                                 "\"webhook_delay_ms\":3000}", h.m.id));
    r = capture(&h, 0, "4.00", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "capture_id")));

    /* released while the capture is in flight */
    (void) db_scalar("SELECT hold_release($1, $2, 'authorization_expired', "
                     "'test:released') IS NULL", 2, params);
    cr_assert_str_eq(checkout_status(&h), "FAILED");

    expect_op_becomes(&h, id, "SUCCEEDED");
    cr_expect_eq(captured(&h, 0), 400);
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    cr_expect_str_eq(order_status(&h, 1), "FAILED");
    cr_expect_str_eq(checkout_status(&h), "SUCCESS");
    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_SUCCEEDED"),
                     "captured_after_release");
    cr_expect_eq(ql("SELECT count(*) FROM order_events WHERE merchant_id = "
                    "$1 AND checkout_id = $2 AND from_status = 'FAILED' AND "
                    "to_status = 'SUCCESS' AND source LIKE 'webhook:%'",
                    h.m.id, h.co), 1);
    expect_books(&h, 400);

    /* nothing more to capture: the hold is closed */
    r = capture(&h, 0, "1.00", NULL);
    cr_expect_eq(r->status, 409, "%s", r->body);

    ds = receiver_wait(ep.name, "204", 3, 30);
    for (i = 0; i < 50 && deliveries_count(ds, "204",
                                           "checkout.paid_after_failure") == 0;
         i++)
    {
        msleep(100);
        ds = receiver_deliveries(ep.name);
    }
    cr_expect_eq(deliveries_count(ds, "204", "checkout.paid_after_failure"),
                 1, "%s", dump(ds));
}


/* The PSP's word on the money wins over the stored mode: a Stripe session
 * that captured at payment (payment_status paid) for a checkout held here
 * as a manual capture (a session registered without it) is booked as paid,
 * never held as an authorization the shop could not capture, and alerted. */
Test(capture, stripe_money_the_psp_captured_is_booked_whatever_the_mode)
{
    int          i;
    char        *log, *line;
    json_t      *body;
    resp_t      *r;
    held_t       h;
    const char  *st;

    memset(&h, 0, sizeof(held_t));
    h.psp = capture_psp(0);
    merchant_new(&h.m);
    h.co = uid("co");

    body = checkout_new(h.co, 2);
    r = register_ok(&h.m, uid("key"), dump(body));
    h.token = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));
    h.session = mock_session(h.token);
    cr_assert_null(json_object_get(h.session, "capture"), "%s",
                   dump(h.session));

    /* the store says manual, the PSP's session captures */
    {
        const char  *p[] = { h.m.id, h.co };

        db_exec("UPDATE checkouts SET capture_method = 'manual' WHERE "
                "merchant_id = $1 AND checkout_id = $2", 2, p);
    }

    r = mock_post(str_printf("/_control/sessions/%s/pay", h.token), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    st = "none";
    for (i = 0; i < 100; i++) {
        st = checkout_status(&h);
        if (strcmp(st, "EXECUTING") != 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(st, "SUCCESS", "the captured money held as %s", st);
    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
    cr_expect_str_eq(order_status(&h, 1), "SUCCESS");
    expect_books(&h, 1500);

    /* nothing left to capture: the PSP took it all */
    r = capture(&h, 0, NULL, NULL);
    cr_expect_eq(r->status, 409, "%s", r->body);

    /* the disagreement is alerted */
    line = str_printf("checkout \"%s:%s\": captured_for_manual", h.m.id,
                      h.co);
    for (i = 0; i < 50; i++) {
        log = file_read(run_file("logs/error.log"), NULL);
        if (log != NULL && strstr(log, line) != NULL) {
            break;
        }
        msleep(100);
    }
    cr_assert(log != NULL && strstr(log, line) != NULL,
              "no line naming %s", line);
    {
        char  *at, *bol;

        at = strstr(log, line);
        for (bol = at; bol > log && bol[-1] != '\n'; bol--) { /* void */ }
        *at = '\0';
        cr_assert_not_null(strstr(bol, "[alert]"), "not an alert: %s", bol);
    }
}


/* --- disputes of a partly captured checkout (doc/MONEY.md, Disputes) ------ */

static long
wallet_of(const held_t *h, const char *seller)
{
    return ql("SELECT coalesce((SELECT balance FROM wallets WHERE "
              "merchant_id = $1 AND seller_account = $2 AND currency = "
              "'USD'), 0)", h->m.id, seller);
}


/* a dispute of amount opened at the mock for the checkout's payment: its
 * id at the mock */
static char *
dispute_open(const held_t *h, long amount)
{
    char        *ref;
    resp_t      *r;
    const char  *params[] = { h->m.id, h->co };

    ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                    "merchant_id = $1 AND checkout_id = $2", 2, params);
    cr_assert_not_null(ref);
    r = mock_post("/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":%ld}", ref,
                             amount));
    cr_assert_eq(r->status, 200, "%s", r->body);

    return strdup(json_string_value(json_object_get(resp_json(r), "id")));
}


/* waits until the checkout's dispute is want; its parts, "seller part"
 * in line order */
static char *
dispute_is(const held_t *h, const char *want)
{
    int          i;
    char        *parts;
    const char  *params[] = { h->m.id, want };

    for (i = 0; i < 100; i++) {
        parts = db_scalar("SELECT string_agg(dp.seller_account || ' ' || "
                          "dp.amount || CASE WHEN dp.excess > 0 THEN ' +' || "
                          "dp.excess ELSE '' END, ', ' ORDER BY "
                          "dp.payment_order_id) "
                          "FROM disputes d JOIN dispute_parts dp USING "
                          "(merchant_id, dispute_id) WHERE d.merchant_id = "
                          "$1 AND d.status = $2", 2, params);
        if (parts != NULL) {
            return parts;
        }
        msleep(100);
    }

    cr_assert_fail("%s: no dispute %s", h->psp, want);
    return NULL;
}


/*
 * 10.00 (seller_1) and 5.00 (seller_2) authorized, 4.00 of the first
 * captured, the second released with nothing captured: a 4.00 chargeback,
 * lost, is all the first seller's; the second has no part of it and its
 * wallet is untouched.
 */
static void
chargeback_of_a_partial_capture(size_t d)
{
    held_t   h;
    resp_t  *r;
    char    *id;

    held_new(&h, d);
    (void) capture_ok(&h, 0, "4.00");

    if (d != 0) {
        /* Stripe's one capture released the rest; here a void does */
        r = void_hold(&h, 1, NULL);
        cr_assert_eq(r->status, 201, "%s: void: %s", h.psp, r->body);
        expect_op_becomes(&h, json_string_value(json_object_get(
                                  resp_json(r), "capture_id")), "SUCCEEDED");
    }

    cr_assert_str_eq(order_status(&h, 1), "FAILED");
    cr_assert_eq(captured(&h, 1), 0);
    cr_assert_eq(wallet_of(&h, "seller_1"), 400);

    id = dispute_open(&h, 400);
    cr_expect_str_eq(dispute_is(&h, "OPEN"), "seller_1 400", "%s", h.psp);
    r = api_get(&h.m, "/v1/sellers/seller_1/balance");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(resp_json(r), "balances"), 0),
                         "available")), "0.00", "%s", r->body);

    r = mock_post(str_printf("/_control/disputes/%s/close", id),
                  "{\"outcome\":\"lost\"}");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(dispute_is(&h, "LOST"), "seller_1 400", "%s", h.psp);

    cr_expect_eq(wallet_of(&h, "seller_1"), 0, "%s", h.psp);
    cr_expect_eq(wallet_of(&h, "seller_2"), 0, "%s: a seller who received "
                 "nothing bore a chargeback", h.psp);
    r = api_get(&h.m, str_printf("/v1/payments/%s", order_id(&h, 1)));
    cr_expect_eq(json_array_size(json_object_get(resp_json(r), "disputes")),
                 0, "%s", r->body);
    expect_books(&h, 0);
}


Test(capture, stripe_a_chargeback_of_a_partial_capture_is_the_captured_sellers)
{
    chargeback_of_a_partial_capture(0);
}


Test(capture, generic_a_chargeback_of_a_partial_capture_is_the_captured_sellers)
{
    chargeback_of_a_partial_capture(2);
}


/*
 * Generic: 4.00 of the first order captured and refunded whole, all 5.00
 * of the second captured: a 5.00 chargeback is the second's alone.
 */
Test(capture, generic_a_refunded_capture_takes_no_share_of_a_chargeback)
{
    int      i;
    held_t   h;
    resp_t  *r;
    char    *id;

    held_new(&h, 2);
    (void) capture_ok(&h, 0, "4.00");
    (void) capture_ok(&h, 1, "5.00");

    r = refund(&h, 0, "4.00");
    cr_assert_eq(r->status, 201, "%s", r->body);

    for (i = 0; i < 100; i++) {
        if (ql("SELECT count(*) FROM refunds WHERE merchant_id = $1 AND "
               "status = 'SUCCEEDED'", h.m.id, NULL) == 1)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(wallet_of(&h, "seller_1"), 0);
    cr_assert_eq(wallet_of(&h, "seller_2"), 500);

    id = dispute_open(&h, 500);
    cr_expect_str_eq(dispute_is(&h, "OPEN"), "seller_1 0, seller_2 500");
    r = mock_post(str_printf("/_control/disputes/%s/close", id),
                  "{\"outcome\":\"lost\"}");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(dispute_is(&h, "LOST"), "seller_1 0, seller_2 500");

    cr_expect_eq(wallet_of(&h, "seller_1"), 0);
    cr_expect_eq(wallet_of(&h, "seller_2"), 0);
    expect_books(&h, 0);
}


/*
 * Stripe: 4.00 of the first order captured (the rest released), then
 * refunded whole; the PSP then withdraws 4.00 for a chargeback: it is
 * booked as the PSP says, on the captured order (never the released
 * one), all of it the order's excess: its seller gave that money back
 * already, so once lost it is the platform's (psp_shortfall, audited),
 * never the seller's; the event is dispute_excess: counted apart in
 * /metrics for the alert.
 */
Test(capture, stripe_a_chargeback_of_a_refunded_capture_is_booked_and_alerted)
{
    int          i;
    held_t       h;
    resp_t      *r;
    char        *id;
    double       before;
    const char  *series;

    held_new(&h, 0);
    (void) capture_ok(&h, 0, "4.00");
    cr_assert_str_eq(order_status(&h, 1), "FAILED");

    r = refund(&h, 0, "4.00");
    cr_assert_eq(r->status, 201, "%s", r->body);

    for (i = 0; i < 100; i++) {
        if (ql("SELECT count(*) FROM refunds WHERE merchant_id = $1 AND "
               "status = 'SUCCEEDED'", h.m.id, NULL) == 1)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(wallet_of(&h, "seller_1"), 0);

    series = str_printf("payments_webhook_events_total{psp=\"%s\","
                        "outcome=\"dispute_excess\"}", h.psp);
    before = metric_value(NULL, series);

    id = dispute_open(&h, 400);
    cr_expect_str_eq(dispute_is(&h, "OPEN"), "seller_1 0 +400");
    cr_expect_eq(ql("SELECT count(*) FROM webhook_events WHERE merchant_id = "
                    "$1 AND kind = 'DISPUTE_OPENED' AND outcome = "
                    "'dispute_excess'", h.m.id, NULL), 1);
    cr_expect_geq(metric_value(NULL, series), (before < 0 ? 0 : before) + 1,
                  "dispute_excess is not counted apart in /metrics");

    r = mock_post(str_printf("/_control/disputes/%s/close", id),
                  "{\"outcome\":\"lost\"}");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(dispute_is(&h, "LOST"), "seller_1 0 +400");
    cr_expect_eq(wallet_of(&h, "seller_1"), 0, "the seller was charged for "
                 "a chargeback of money it had refunded");
    cr_expect_eq(wallet_of(&h, "seller_2"), 0);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries "
                    "WHERE merchant_id = $1 AND account LIKE "
                    "'psp\\_shortfall:%'", h.m.id, NULL), 400);
    cr_expect_eq(ql("SELECT count(*) FROM audit_log WHERE merchant_id = $1 "
                    "AND action = 'dispute:shortfall'", h.m.id, NULL), 1);
    expect_books(&h, -400);
}


/*
 * A capture the PSP reverses after part of it was refunded (the PSP keeps
 * one payment's books: its refunds stay within what the payment's other
 * captures hold, so it lets the reversal through): 4.00 of the first
 * order captured, 5.00 of the second, 3.00 of the first refunded, then the
 * first capture reversed.  The clearing follows the PSP (9.00 captured,
 * 4.00 taken back, 3.00 refunded); the first order gives back only what it
 * still held (1.00), its seller is never charged beyond what it was
 * credited, and the 3.00 the shopper was refunded of a capture that never
 * stood is booked to psp_shortfall:<psp> and alerted (outcome
 * capture_reversed_refunded).  The order refunds no further.
 */
static void
capture_reversed_after_refund(size_t d)
{
    int          i;
    held_t       h;
    resp_t      *r;
    char        *id, *nonce;
    double       before;
    const char  *params[2], *series;

    held_new(&h, d);
    id = capture_ok(&h, 0, "4.00");
    (void) capture_ok(&h, 1, "5.00");

    r = refund(&h, 0, "3.00");
    cr_assert_eq(r->status, 201, "%s", r->body);

    for (i = 0; i < 100; i++) {
        if (ql("SELECT count(*) FROM refunds WHERE merchant_id = $1 AND "
               "status = 'SUCCEEDED'", h.m.id, NULL) == 1)
        {
            break;
        }
        msleep(100);
    }
    cr_assert_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1 AND "
                    "status = 'SUCCEEDED'", h.m.id, NULL), 1);

    params[0] = h.m.id;
    params[1] = id;
    nonce = db_scalar("SELECT nonce FROM captures WHERE merchant_id = $1 AND "
                      "capture_id = $2", 2, params);
    cr_assert_not_null(nonce);

    series = str_printf("payments_webhook_events_total{psp=\"%s\","
                        "outcome=\"capture_reversed_refunded\"}", h.psp);
    before = metric_value(NULL, series);

    r = mock_post(str_printf("/_control/captures/%s/fail", nonce), NULL);
    cr_assert_eq(r->status, 200, "%s: the PSP refused the reversal: %s",
                 h.psp, r->body);
    expect_op_becomes(&h, id, "FAILED");

    cr_expect_str_eq(webhook_outcome(&h, "CAPTURE_FAILED"),
                     "capture_reversed_refunded");
    cr_expect_geq(metric_value(NULL, series), (before < 0 ? 0 : before) + 1,
                  "%s: capture_reversed_refunded is not counted apart in "
                  "/metrics", h.psp);
    cr_expect_eq(ql("SELECT count(*) FROM audit_log WHERE merchant_id = $1 "
                    "AND action = 'capture:shortfall'", h.m.id, NULL), 1,
                 "%s: no audit row names the shortfall", h.psp);
    cr_expect_eq(captured(&h, 0), 0);
    cr_expect_eq(captured(&h, 1), 500);

    /* the PSP's books: 5.00 captured, 3.00 refunded */
    expect_books(&h, 200);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries "
                    "WHERE merchant_id = $1 AND account = $2", h.m.id,
                    str_printf("psp_shortfall:%s", h.psp)), 300,
                 "%s: the shortfall is not booked apart", h.psp);

    /* no seller charged beyond what it was credited, per order */
    cr_expect_eq(wallet_of(&h, "seller_1"), 0);
    cr_expect_eq(wallet_of(&h, "seller_2"), 500);
    cr_expect_eq(ql("SELECT count(*) FROM (SELECT t.payment_order_id FROM "
                    "ledger_transactions t JOIN ledger_entries e USING "
                    "(merchant_id, txn_id) WHERE t.merchant_id = $1 AND "
                    "e.account LIKE 'seller\\_payable:%' GROUP BY 1 "
                    "HAVING sum(e.amount) > 0) x", h.m.id, NULL), 0,
                 "%s: a seller is charged beyond its credit", h.psp);
    cr_expect_eq(ql("SELECT coalesce(sum(e.amount), 0) FROM "
                    "ledger_transactions t JOIN ledger_entries e USING "
                    "(merchant_id, txn_id) WHERE t.merchant_id = $1 AND "
                    "t.payment_order_id = $2 AND e.account = "
                    "'platform_commission'", h.m.id, order_id(&h, 0)), 0,
                 "%s: commission kept of a capture that never stood",
                 h.psp);

    /* the order refunds nothing more: nothing of it is captured */
    r = refund(&h, 0, "0.01");
    cr_expect_eq(r->status, 422, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "code")),
                     "refund_exceeds_captured", "%s", r->body);

    cr_expect_str_eq(order_status(&h, 0), "SUCCESS");
}


Test(capture, adyen_a_capture_reversed_after_a_refund_charges_no_seller)
{
    capture_reversed_after_refund(1);
}


Test(capture, generic_a_capture_reversed_after_a_refund_charges_no_seller)
{
    capture_reversed_after_refund(2);
}


/* --- its PSP removed from nginx.conf ---------------------------------------- */

/*
 * A capture's and a void's retry past their keys' TTL (the keys purged)
 * after an operator removed their PSP from nginx.conf: each is the
 * operation its request made, answered from its row (they were refused
 * 409 as new ones: a shop told its capture was never made captures the
 * money again some other way); nothing is stored, no PSP asked.
 */
Test(capture, a_retry_past_its_keys_ttl_after_its_psp_was_removed)
{
    char        *ckey, *vkey, *cid, *vid;
    long         n;
    held_t       h;
    resp_t      *r;
    gateway_t    gw;
    const char  *a[3];

    held_new(&h, 1);

    ckey = uid("ck");
    r = capture(&h, 0, "4.00", ckey);
    cr_assert_eq(r->status, 201, "%s", r->body);
    cid = strdup(json_string_value(json_object_get(resp_json(r),
                                                   "capture_id")));
    expect_op_becomes(&h, cid, "SUCCEEDED");

    vkey = uid("vk");
    r = void_hold(&h, 1, vkey);
    cr_assert_eq(r->status, 201, "%s", r->body);
    vid = strdup(json_string_value(json_object_get(resp_json(r),
                                                   "capture_id")));
    expect_op_becomes(&h, vid, "SUCCEEDED");

    /* a gateway on the same database without the PSP */
    gateway_start(&gw, "no-psp-cp", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "%s",
        pg_gateway_conninfo(), gw_psp_conf("nc_generic", "generic")));
    gateway_wait_ready(&gw, 10);

    a[0] = h.m.id;
    a[1] = ckey;
    a[2] = vkey;
    db_exec("DELETE FROM idempotency_keys WHERE merchant_id = $1"
            " AND idem_key IN ($2, $3)", 3, a);
    n = ql("SELECT count(*) FROM captures WHERE merchant_id = $1", h.m.id,
           NULL);

    r = gateway_send(&gw, "POST", str_printf("/v1/payments/%s/capture",
                                             order_id(&h, 0)),
                     &h.m, ckey, "{\"amount\":\"4.00\"}");
    cr_assert_eq(r->status, 201, "the capture's retry past its key's TTL: "
                 "%ld %s", r->status, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "capture_id")), cid);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "kind")), "capture");
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "SUCCEEDED");

    r = gateway_send(&gw, "POST", str_printf("/v1/payments/%s/void",
                                             order_id(&h, 1)),
                     &h.m, vkey, "{}");
    cr_assert_eq(r->status, 201, "the void's retry past its key's TTL: "
                 "%ld %s", r->status, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "capture_id")), vid);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "kind")), "void");

    /* a new capture is refused as before, nothing stored */
    r = gateway_send(&gw, "POST", str_printf("/v1/payments/%s/capture",
                                             order_id(&h, 0)),
                     &h.m, uid("ck"), "{\"amount\":\"1.00\"}");
    cr_expect_eq(r->status, 409, "a new one: %ld %s", r->status, r->body);
    cr_expect(strstr(r->body, "not configured") != NULL, "%s", r->body);
    cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = $1",
                    h.m.id, NULL), n);

    gateway_stop(&gw);
}


/* --- a payment registered under another merchant account ---------------- */

/*
 * An Adyen hold registered under merchant_account=TestMerchant, then a
 * gateway whose mock_adyen names OtherMerchant: a new capture or void is
 * not sent (Adyen refuses a modification under another account than the
 * payment's; under the payment's, its webhook would be refused here as
 * another account's and the row never settled): 502 naming the setting,
 * an alert, nothing stored.
 */
Test(capture, adyen_no_capture_or_void_under_another_merchant_account,
     .timeout = 60)
{
    int          i;
    char        *psp;
    resp_t      *r;
    held_t       h;
    gateway_t    gw;
    const char  *paths[] = { "capture", "void" };

    psp = gw_psp_conf("mock_adyen", "adyen");
    gateway_start(&gw, "cap-account", 1,
                  str_printf("%s"
                             "payments_database_pool 2;\n"
                             "payments_sweeper off;\n"
                             "%s", pg_gateway_databases(), psp));
    gateway_wait_ready(&gw, 10);
    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    for (i = 0; i < 2; i++) {
        /* a hold of its own for each: one sent would hold the other */
        held_new(&h, 1);

        r = gateway_send(&gw, "POST", str_printf("/v1/payments/%s/%s",
                                                 order_id(&h, 0), paths[i]),
                         &h.m, uid("ck"), "{}");
        cr_expect_eq(ql("SELECT count(*) FROM captures WHERE merchant_id = "
                        "$1", h.m.id, NULL), 0,
                     "a %s of TestMerchant's payment was sent under "
                     "OtherMerchant: %ld %s", paths[i], r->status, r->body);
        cr_expect_eq(r->status, 502, "%s: %s", paths[i], r->body);
        cr_expect_not_null(strstr(r->body, "merchant_account"), "%s",
                           r->body);
        cr_expect(gateway_alerted(&gw, order_id(&h, 0), "TestMerchant"),
                  "no alert in %s", gw.error_log);
        cr_expect_str_eq(checkout_status(&h), "AUTHORIZED");
    }

    gateway_stop(&gw);
}
