/*
 * End to end: authorize now, capture later (API.md, "Manual capture"), per
 * dialect against the mock PSP: "capture": "manual" is sent to the PSP in
 * its own words, the PSP's authorization webhook moves the checkout and
 * its orders to AUTHORIZED, and nothing is booked for the hold: no ledger
 * entry, no wallet credit, the seller's balance shows it apart
 * (authorized), and the checkout.authorized notification is sent.
 */

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

static resp_t *
mock_post(const char *path, const char *json)
{
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = mock_url(path);
    rq.headers = h;
    rq.body = json ? json : "";
    rq.len = (size_t) -1;

    return http(&rq);
}


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
static void
held_new_notified(held_t *h, size_t d, endpoint_t *ep)
{
    int          i;
    json_t      *body;
    resp_t      *r;
    const char  *st;

    memset(h, 0, sizeof(held_t));
    h->psp = capture_psp(d);
    merchant_new(&h->m);
    h->co = uid("co");

    if (ep != NULL) {
        endpoint_add(&h->m, NULL, ep);
    }

    body = checkout_new(h->co, 2);
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
