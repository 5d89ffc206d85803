/*
 * End to end: the money after "paid" (doc/MONEY.md) in the three dialects,
 * against the mock PSP: commission, refunds (partial, full, over the
 * capture, fifty at once), disputes (lost, won), pay-outs (over the
 * balance, failed, fifty at once), each checked in the answers, in the
 * ledger and in the wallets.
 */

#include "harness.h"
#include "sqltest.h"

#include <pthread.h>
#include <time.h>


/* 0 stripe (the e2e configuration names it PAY_TEST_PSP), 1 adyen,
 * 2 generic */
static const char *
money_psp(size_t d)
{
    return d == 0 ? env("PAY_TEST_PSP") : d == 1 ? "mock_adyen"
                                                 : "mock_generic";
}


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *co;
    char        *token;
    char        *po[2];         /* 10.00 seller_1, 5.00 seller_2 (USD) */
} paid_t;


/* --- the mock -------------------------------------------------------------- */

static void
mock_pay(const char *token)
{
    resp_t  *r;

    r = mock_post(str_printf("/_control/sessions/%s/pay", token), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
}


/* --- the database ------------------------------------------------------------ */

static char *
q1(const char *sql, const char *a, const char *b)
{
    const char  *params[] = { a, b };

    return db_scalar(sql, b ? 2 : (a ? 1 : 0), params);
}


static long
ql(const char *sql, const char *a, const char *b)
{
    char  *s;

    s = q1(sql, a, b);
    return s ? atol(s) : -1;
}


/* Every ledger transaction of the merchant sums to zero and every wallet
 * equals its seller's ledger. */
static void
expect_books_balance(const merchant_t *m)
{
    cr_expect_eq(ql("SELECT count(*) FROM (SELECT 1 FROM ledger_entries "
                    "WHERE merchant_id = $1 GROUP BY txn_id, currency "
                    "HAVING sum(amount) <> 0) x", m->id, NULL), 0,
                 "unbalanced ledger transactions");
    cr_expect_eq(ql("SELECT count(*) FROM (SELECT seller_account, currency, "
                    "balance FROM wallets WHERE merchant_id = $1) w FULL JOIN "
                    "(SELECT substr(account, 16) AS seller_account, currency, "
                    "-sum(amount) AS booked FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account LIKE 'seller\\_payable:%' "
                    "GROUP BY 1, 2) l USING (seller_account, currency) WHERE "
                    "coalesce(w.balance, 0) <> coalesce(l.booked, 0)",
                    m->id, NULL), 0, "wallets off their ledger");
    cr_expect_str_eq(q1("SELECT pay_audit_verify($1)::text", m->id, NULL),
                     "true");
}


static long
wallet(const merchant_t *m, const char *seller)
{
    return ql("SELECT coalesce((SELECT balance FROM wallets WHERE "
              "merchant_id = $1 AND seller_account = $2 AND currency = "
              "'USD'), 0)", m->id, seller);
}


/* --- the merchant API -------------------------------------------------------- */

static char *
status_of_order(const paid_t *p, int i)
{
    resp_t  *r;

    r = api_get(&p->m, str_printf("/v1/payments/%s", p->po[i]));
    cr_assert_eq(r->status, 200, "%s", r->body);
    return strdup(json_string_value(json_object_get(resp_json(r),
                                                    "status")));
}


/* A checkout of two orders at psp, paid through the mock's hosted page
 * (its signed webhook books it), with the merchant's commission. */
static void
paid_new(paid_t *p, const char *psp, const char *bps, const char *fixed)
{
    int          i;
    json_t      *body, *j;
    resp_t      *r;
    char        *out;
    const char  *args[] = { "set-commission", "--id", NULL, "--bps", bps,
                            fixed ? "--fixed-minor" : NULL, fixed, NULL };

    memset(p, 0, sizeof(paid_t));
    p->psp = psp;
    merchant_new(&p->m);

    if (bps != NULL) {
        args[2] = p->m.id;
        cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);
    }

    p->co = uid("co");
    p->po[0] = str_printf("%s_p1", p->co);
    p->po[1] = str_printf("%s_p2", p->co);

    body = checkout_new(p->co, 2);
    json_object_set_new(body, "psp", json_string(psp));
    r = register_ok(&p->m, uid("key"), dump(body));
    j = resp_json(r);
    p->token = strdup(json_string_value(json_object_get(j, "psp_token")));

    mock_pay(p->token);

    for (i = 0; i < 100; i++) {
        if (strcmp(status_of_order(p, 0), "SUCCESS") == 0
            && ql("SELECT count(*) FROM checkouts WHERE merchant_id = $1 AND "
                  "checkout_id = $2 AND psp_payment_ref IS NOT NULL",
                  p->m.id, p->co) == 1)
        {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("%s: checkout %s not paid with a payment id", psp, p->co);
}


static resp_t *
post_json(const merchant_t *m, const char *path, const char *key,
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


static resp_t *
refund(const paid_t *p, int order, const char *amount, const char *key)
{
    return post_json(&p->m, str_printf("/v1/payments/%s/refunds", p->po[order]),
                     key ? key : uid("rk"),
                     str_printf("{\"amount\":\"%s\",\"reason\":\"returned\"}",
                                amount));
}


/* Waits until the order lists the refund in status want. */
static void
expect_refund_becomes(const paid_t *p, int order, const char *refund_id,
    const char *want)
{
    int          i;
    size_t       k;
    json_t      *rf, *it;
    resp_t      *r;
    const char  *st;

    st = "absent";

    for (i = 0; i < 100; i++) {
        r = api_get(&p->m, str_printf("/v1/payments/%s", p->po[order]));
        cr_assert_eq(r->status, 200, "%s", r->body);
        rf = json_object_get(resp_json(r), "refunds");

        json_array_foreach(rf, k, it) {
            if (strcmp(json_string_value(json_object_get(it, "refund_id")),
                       refund_id) == 0)
            {
                st = json_string_value(json_object_get(it, "status"));
            }
        }

        if (strcmp(st, want) == 0) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("%s: refund %s is %s, not %s", p->psp, refund_id, st,
                   want);
}


static char *
refund_ok(const paid_t *p, int order, const char *amount)
{
    resp_t  *r;

    r = refund(p, order, amount, NULL);
    cr_assert_eq(r->status, 201, "%s: refund %s: %ld %s", p->psp, amount,
                 r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "PENDING", "%s", r->body);
    return strdup(json_string_value(json_object_get(resp_json(r),
                                                    "refund_id")));
}


/* --- refunds ----------------------------------------------------------------- */

static void
refunds_partial_full_and_over(size_t d)
{
    char    *a, *b;
    resp_t  *r;
    paid_t   p;

    paid_new(&p, money_psp(d), NULL, NULL);
    cr_assert_eq(wallet(&p.m, "seller_1"), 1000);

    /* partial: 4.00 of 10.00 */
    a = refund_ok(&p, 0, "4.00");
    expect_refund_becomes(&p, 0, a, "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 600, "%s", p.psp);

    /* over what is left: refused, nothing stored */
    r = refund(&p, 0, "6.01", NULL);
    expect_problem(r, 422, "refund_exceeds_captured");
    cr_expect_not_null(strstr(r->body, "6.00"), "%s", r->body);

    /* the rest: full */
    b = refund_ok(&p, 0, "6.00");
    expect_refund_becomes(&p, 0, b, "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 0, "%s", p.psp);

    /* nothing left */
    expect_problem(refund(&p, 0, "0.01", NULL), 422,
                   "refund_exceeds_captured");

    /* the other order is untouched; the PSP clearing account is down 10 */
    cr_expect_eq(wallet(&p.m, "seller_2"), 500);
    cr_expect_eq(ql("SELECT sum(amount) FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account LIKE 'psp\\_clearing:%'",
                    p.m.id, NULL), 500);
    expect_books_balance(&p.m);
}


Test(money_refunds, stripe_partial_then_full_then_over_is_refused,
     .timeout = 60)
{
    refunds_partial_full_and_over(0);
}


Test(money_refunds, adyen_partial_then_full_then_over_is_refused,
     .timeout = 60)
{
    refunds_partial_full_and_over(1);
}


Test(money_refunds, generic_partial_then_full_then_over_is_refused,
     .timeout = 60)
{
    refunds_partial_full_and_over(2);
}


/* Fifty POSTs of body to path at once, each with its own key; every
 * answer a 201 or a 422 with code refused.  Returns how many were 201. */
static size_t
fifty_at_once(const merchant_t *m, const char *path, const char *body,
    const char *refused)
{
    size_t    i, created;
    req_t     rqs[50];
    resp_t  **rs;
    char     *auth, *url;
    const char  **h;

    auth = str_printf("Authorization: Bearer %s", m->key);
    url = gw_url(path);

    for (i = 0; i < 50; i++) {
        h = calloc(4, sizeof(char *));
        h[0] = auth;
        h[1] = str_printf("Idempotency-Key: f50-%zu", i);
        h[2] = "Content-Type: application/json";
        rqs[i].method = "POST";
        rqs[i].url = url;
        rqs[i].headers = h;
        rqs[i].body = body;
        rqs[i].len = (size_t) -1;
    }

    rs = http_many(rqs, 50, 50);
    created = 0;

    for (i = 0; i < 50; i++) {
        if (rs[i]->status == 201) {
            created++;
        } else {
            expect_problem(rs[i], 422, refused);
        }
    }

    return created;
}


static void
refunds_fifty_at_once(size_t d)
{
    size_t  created;
    paid_t  p;

    paid_new(&p, money_psp(d), NULL, NULL);

    /* fifty refunds of 0.30 on an order of 10.00: 33 fit (9.90) */
    created = fifty_at_once(&p.m, str_printf("/v1/payments/%s/refunds",
                                             p.po[0]),
                            "{\"amount\":\"0.30\"}",
                            "refund_exceeds_captured");

    cr_expect_eq(created, 33, "%s: %zu created", p.psp, created);
    cr_expect_leq(ql("SELECT sum(amount) FROM refunds WHERE merchant_id = $1 "
                     "AND payment_order_id = $2 AND status <> 'FAILED'",
                     p.m.id, p.po[0]), 1000);
    cr_expect_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                    p.m.id, NULL), (long) created);
    expect_books_balance(&p.m);
}


Test(money_refunds, stripe_fifty_at_once_never_exceed_the_capture,
     .timeout = 90)
{
    refunds_fifty_at_once(0);
}


Test(money_refunds, adyen_fifty_at_once_never_exceed_the_capture,
     .timeout = 90)
{
    refunds_fifty_at_once(1);
}


Test(money_refunds, generic_fifty_at_once_never_exceed_the_capture,
     .timeout = 90)
{
    refunds_fifty_at_once(2);
}


Test(money_refunds, a_retry_replays_and_another_body_is_refused,
     .timeout = 60)
{
    char    *key, *id;
    resp_t  *a, *b, *c;
    paid_t   p;

    paid_new(&p, money_psp(0), NULL, NULL);
    key = uid("rk");

    a = refund(&p, 1, "1.00", key);
    cr_assert_eq(a->status, 201, "%s", a->body);
    id = strdup(json_string_value(json_object_get(resp_json(a), "refund_id")));

    b = refund(&p, 1, "1.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(b->body, a->body);
    cr_expect_str_eq(resp_header(b, "Idempotent-Replayed"), "true");

    c = refund(&p, 1, "2.00", key);
    expect_problem(c, 422, "idempotency_key_reused");

    /* the PSP saw one refund under one nonce */
    expect_refund_becomes(&p, 1, id, "SUCCEEDED");
    cr_expect_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                    p.m.id, NULL), 1);
}


/* a gateway of the test's own on the suite's database whose only PSP is
 * an Adyen one: the PSP "stripe" removed from its nginx.conf */
static void
gateway_without_stripe(gateway_t *gw, const char *name)
{
    gateway_start(gw, name, 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "%s",
        pg_gateway_conninfo(), gw_psp_conf("ns_adyen", "adyen")));
    gateway_wait_ready(gw, 10);
}


/* POST a refund of 1.00 of p's order through the gateway gw */
static resp_t *
refund_at(const gateway_t *gw, const paid_t *p, int order, const char *key)
{
    return gateway_send(gw, "POST",
                        str_printf("/v1/payments/%s/refunds", p->po[order]),
                        &p->m, key,
                        "{\"amount\":\"1.00\",\"reason\":\"returned\"}");
}


/*
 * A refund's retry after an operator removed the order's PSP from
 * nginx.conf is the refund already made: its 201 replayed (it was 409
 * payment_not_refundable "the order's PSP is not configured", telling a
 * shop whose 201 was lost that a refund it had made could not be made: a
 * shop that then refunds its customer some other way pays twice).  A
 * refund whose first attempt went unanswered is not sent (503
 * not_configured); a new one is refused as before, nothing stored.
 */
Test(money_refunds, a_retry_replays_after_its_psp_was_removed,
     .timeout = 60)
{
    char       *key, *key2, *id;
    long        n;
    resp_t     *first, *r;
    paid_t      p;
    gateway_t   gw;

    paid_new(&p, "stripe", NULL, NULL);

    key = uid("rk");
    first = refund(&p, 0, "1.00", key);
    cr_assert_eq(first->status, 201, "%s", first->body);

    /* another refund, every attempt of it answered 503 */
    mock_fault(str_printf("{\"match\":\"%s:rf_\",\"fail_times\":1000,"
                          "\"fail_status\":503}", p.m.id));
    key2 = uid("rk");
    r = refund(&p, 1, "1.00", key2);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);

    /* a gateway on the same database without the PSP "stripe" */
    gateway_without_stripe(&gw, "no-stripe");

    r = refund_at(&gw, &p, 0, key);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);

    r = refund_at(&gw, &p, 1, key2);
    expect_problem(r, 503, "not_configured");
    cr_expect(strstr(r->body, "not answered") != NULL, "%s", r->body);

    n = ql("SELECT count(*) FROM refunds WHERE merchant_id = $1", p.m.id,
           NULL);
    r = refund_at(&gw, &p, 0, uid("rk"));
    expect_problem(r, 409, "payment_not_refundable");
    cr_expect(strstr(r->body, "not configured") != NULL, "%s", r->body);
    cr_assert_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                    p.m.id, NULL), n);

    /* the first refund's key purged (past its TTL): the same request is
     * still that refund, answered from its row (it was refused 409 as a
     * new one), and nothing is stored */
    {
        const char  *a[2] = { p.m.id, key };

        id = strdup(json_string_value(json_object_get(resp_json(first),
                                                      "refund_id")));
        db_exec("DELETE FROM idempotency_keys WHERE merchant_id = $1"
                " AND idem_key = $2", 2, a);

        r = refund_at(&gw, &p, 0, key);
        cr_assert_eq(r->status, 201, "the retry past its key's TTL: %ld %s",
                     r->status, r->body);
        cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                           "refund_id")), id);
        cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                           "amount")),
                         "1.00");
        cr_expect_eq(ql("SELECT count(*) FROM idempotency_keys WHERE"
                        " merchant_id = $1 AND idem_key = $2", a[0], a[1]),
                     0);
        cr_assert_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                        p.m.id, NULL), n);
    }

    gateway_stop(&gw);
}


/*
 * A PSP being retired (payments_psp ... closed) takes no new checkout:
 * one naming it is refused 400, nothing stored, and a route passes over
 * it.  Everything of the payments it took goes on: a retry of a
 * registration it took is replayed, one whose first attempt was never
 * answered is sent there (it is not new: one session in all), and a
 * refund of a payment made there is made there.
 */
TestSuite(psp_closed, .timeout = E2E_TIMEOUT);

Test(psp_closed, a_closed_psp_takes_no_new_checkout_and_keeps_its_payments,
     .timeout = 90)
{
    long         sessions, requests;
    char        *key, *key2, *body, *body2, *co2, *co3, *co4;
    json_t      *co;
    resp_t      *first, *r;
    paid_t       p;
    gateway_t    gw;

    paid_new(&p, "stripe", NULL, NULL);

    /* a registration at "stripe" answered, and one never answered */
    key = uid("key");
    co = checkout_new(uid("co"), 1);
    json_object_set_new(co, "psp", json_string("stripe"));
    body = dump(co);
    first = post_json(&p.m, PATH_PAYMENTS, key, body);
    cr_assert_eq(first->status, 201, "%s", first->body);

    co2 = uid("co");
    key2 = uid("key");
    co = checkout_new(co2, 1);
    json_object_set_new(co, "psp", json_string("stripe"));
    body2 = dump(co);
    /* (every attempt of the request: the gateway's PSP retries twice) */
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":3,"
                          "\"fail_status\":503}", nonce(&p.m, co2)));
    r = post_json(&p.m, PATH_PAYMENTS, key2, body2);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);

    /* a gateway on the same database where "stripe" is closed, and a
     * route over it and the Adyen PSP */
    gateway_start(&gw, "closed", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "%s%s"
        "payments_route merchant=%s currency=EUR psps=stripe;\n"
        "payments_route merchant=%s psps=stripe,mock_adyen;\n",
        pg_gateway_conninfo(), gw_psp_conf_with("stripe", "stripe", "closed"),
        gw_psp_conf("mock_adyen", "adyen"), p.m.id, p.m.id));
    gateway_wait_ready(&gw, 10);

    /* a new checkout naming it: refused, nothing stored */
    co3 = uid("co");
    co = checkout_new(co3, 1);
    json_object_set_new(co, "psp", json_string("stripe"));
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &p.m, uid("key"), dump(co));
    expect_problem(r, 400, "invalid_request");
    cr_expect(strstr(r->body, "closed") != NULL, "%s", r->body);
    cr_expect_eq(checkouts_named(&p.m, co3), 0);

    /* a new routed one: bound to the route's open PSP */
    co4 = uid("co");
    co = checkout_new(co4, 1);
    json_object_del(co, "psp");
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &p.m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "the routed one: %ld %s", r->status, r->body);
    {
        const char  *a[2] = { p.m.id, co4 };

        cr_expect_str_eq(db_scalar("SELECT psp FROM checkouts WHERE"
                                   " merchant_id = $1 AND checkout_id = $2",
                                   2, a), "mock_adyen");
    }

    /* a route whose only PSP is closed takes no new checkout: refused,
     * saying why */
    co = checkout_new(uid("co"), 1);
    json_object_del(co, "psp");
    json_object_set_new(order_of(co, 0), "currency", json_string("EUR"));
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &p.m, uid("key"), dump(co));
    expect_problem(r, 400, "invalid_request");
    cr_expect(strstr(r->body, "none of the PSPs of the payments_route") != NULL,
              "%s", r->body);

    /* what it took goes on: the answered one replayed, the unanswered one
     * sent there (its claim released when the PSP failed), one session */
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &p.m, key, body);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);

    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &p.m, key2, body2);
    cr_assert_eq(r->status, 201, "the unanswered one's retry: %ld %s",
                 r->status, r->body);
    mock_registrations(nonce(&p.m, co2), &sessions, &requests);
    cr_expect_eq(sessions, 1, "one session in all");

    /* a refund of a payment made there */
    r = refund_at(&gw, &p, 0, uid("rk"));
    cr_assert_eq(r->status, 201, "the refund: %ld %s", r->status, r->body);
    cr_expect_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1"
                    " AND psp = 'stripe'", p.m.id, NULL), 1);

    gateway_stop(&gw);
}


Test(money_refunds, what_cannot_be_refunded_is_refused_with_its_code,
     .timeout = 60)
{
    json_t  *body;
    resp_t  *r;
    paid_t   p;
    char    *co;

    paid_new(&p, money_psp(0), NULL, NULL);

    expect_problem(refund(&p, 0, "1.001", NULL), 400, "invalid_amount");
    expect_problem(post_json(&p.m, str_printf("/v1/payments/%s/refunds",
                                              p.po[0]), uid("k"),
                             "{\"amount\":\"1.00\",\"currency\":\"EUR\"}"),
                   422, "currency_mismatch");
    expect_problem(post_json(&p.m, "/v1/payments/po_nobody/refunds",
                             uid("k"), "{\"amount\":\"1.00\"}"),
                   404, "not_found");
    expect_problem(post_json(&p.m, str_printf("/v1/payments/%s/refunds",
                                              p.po[0]), uid("k"),
                             "{\"amount\":\"1.00\",\"cvc\":\"123\"}"),
                   400, "invalid_request");

    /* the checks every POST that moves money shares: no key, a wrong type */
    {
        req_t        rq;
        char        *auth;
        const char  *nokey[] = { NULL, "Content-Type: application/json",
                                 NULL };
        const char  *plain[] = { NULL, "Idempotency-Key: k-plain",
                                 "Content-Type: text/plain", NULL };

        auth = str_printf("Authorization: Bearer %s", p.m.key);
        nokey[0] = auth;
        plain[0] = auth;
        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/payments/%s/refunds", p.po[0]));
        rq.body = "{\"amount\":\"1.00\"}";
        rq.len = (size_t) -1;

        rq.headers = nokey;
        expect_problem(http(&rq), 400, "idempotency_key_missing");

        rq.headers = plain;
        expect_problem(http(&rq), 415, "unsupported_media_type");

        rq.url = gw_url("/v1/payouts");
        expect_problem(http(&rq), 415, "unsupported_media_type");
    }

    /* an order not paid yet */
    co = uid("co");
    body = checkout_new(co, 1);
    r = register_ok(&p.m, uid("key"), dump(body));
    (void) r;
    expect_problem(post_json(&p.m, str_printf("/v1/payments/%s_p1/refunds",
                                              co), uid("k"),
                             "{\"amount\":\"1.00\"}"),
                   409, "payment_not_refundable");

    /* another merchant's order is not found */
    {
        merchant_t  other;

        merchant_new(&other);
        expect_problem(post_json(&other, str_printf("/v1/payments/%s/refunds",
                                                    p.po[0]), uid("k"),
                                 "{\"amount\":\"1.00\"}"),
                       404, "not_found");
    }

    /* a live merchant's order at a PSP configured for test money (its
     * mode= changed since the payment, written here in SQL): never
     * refunded through it */
    {
        merchant_t   live;
        const char  *a[3];

        merchant_new_mode(&live, "live");
        a[0] = live.id;
        a[1] = uid("co");
        a[2] = p.psp;
        db_exec("BEGIN", 0, NULL);
        db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
        db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
                " currency, amount_total, success_url, cancel_url, status,"
                " psp_request, expires_at, psp_payment_ref) VALUES ($1, $2,"
                " $3, $1 || ':' || $2, 'USD', 100, 'https://shop.example/s',"
                " 'https://shop.example/c', 'SUCCESS', 'r', now(), 'pi_live')",
                3, a);
        db_exec("INSERT INTO payment_orders (merchant_id, payment_order_id,"
                " checkout_id, line_no, seller_account, amount, currency,"
                " status, ledger_updated, wallet_updated) VALUES ($1,"
                " $2 || '_p1', $2, 1, 'seller_1', 100, 'USD', 'SUCCESS', true,"
                " true)", 2, a);
        db_exec("COMMIT", 0, NULL);
        expect_problem(post_json(&live, str_printf("/v1/payments/%s_p1/"
                                                   "refunds", a[1]),
                                 uid("k"), "{\"amount\":\"1.00\"}"),
                       409, "payment_not_refundable");
    }
}


/* --- commission -------------------------------------------------------------- */

Test(money_commission, each_order_books_the_sellers_net_and_the_platforms_share,
     .timeout = 60)
{
    char    *a;
    resp_t  *r;
    paid_t   p;

    /* 2.5% + 0.30: 10.00 -> 0.25 + 0.30 = 0.55; 5.00 -> 0.12 + 0.30 = 0.42 */
    paid_new(&p, money_psp(0), "250", "USD:30");

    cr_expect_eq(wallet(&p.m, "seller_1"), 945);
    cr_expect_eq(wallet(&p.m, "seller_2"), 458);
    cr_expect_eq(ql("SELECT -sum(amount) FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account = 'platform_commission'",
                    p.m.id, NULL), 97);

    r = api_get(&p.m, str_printf("/v1/payments/%s", p.po[0]));
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "commission")),
                     "0.55", "%s", r->body);

    /* a refund gives the commission back in proportion: 4.00 of 10.00 ->
     * floor(400 * 55 / 1000) = 22 back to the platform, 3.78 from the
     * seller */
    a = refund_ok(&p, 0, "4.00");
    expect_refund_becomes(&p, 0, a, "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 945 - 378);
    cr_expect_eq(ql("SELECT -sum(amount) FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account = 'platform_commission'",
                    p.m.id, NULL), 97 - 22);

    /* the rest: the commission comes back whole, the seller is at 0 */
    a = refund_ok(&p, 0, "6.00");
    expect_refund_becomes(&p, 0, a, "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 0);
    cr_expect_eq(ql("SELECT -sum(amount) FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account = 'platform_commission'",
                    p.m.id, NULL), 42);
    expect_books_balance(&p.m);
}


Test(money_commission, a_new_rate_never_reaches_a_registered_checkout,
     .timeout = 60)
{
    char        *out, *co;
    json_t      *body;
    merchant_t   m;
    const char  *args[] = { "set-commission", "--id", NULL, "--bps", "100",
                            NULL };

    merchant_new(&m);
    args[2] = m.id;
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);

    co = uid("co");
    body = checkout_new(co, 1);
    (void) register_ok(&m, uid("key"), dump(body));

    args[4] = "900";
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);

    cr_expect_eq(ql("SELECT commission_bps FROM checkouts WHERE "
                    "merchant_id = $1 AND checkout_id = $2", m.id, co), 100);

    /* and the database refuses to change it (PY002; anything else, or
     * no refusal, fails the statement and the test) */
    db_exec(str_printf("DO $$ BEGIN UPDATE checkouts SET commission_bps = 0 "
                       "WHERE merchant_id = '%s' AND checkout_id = '%s'; "
                       "RAISE EXCEPTION 'not refused'; EXCEPTION WHEN "
                       "SQLSTATE 'PY002' THEN NULL; END $$", m.id, co),
            0, NULL);
}


/* --- pay-outs ---------------------------------------------------------------- */

static void
seller_add(const merchant_t *m, const char *seller, const char *psp,
    const char *dest)
{
    char        *out;
    const char  *args[] = { "add-seller", "--id", m->id, "--seller", seller,
                            "--psp", psp, "--destination", dest, NULL };

    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);
}


static const char *
money_destination(size_t d)
{
    return d == 0 ? "acct_1MockSeller" : d == 1 ? "BA00000000000000000000001"
                                                : "payee_1";
}


static resp_t *
payout(const paid_t *p, const char *seller, const char *amount,
    const char *key)
{
    return post_json(&p->m, "/v1/payouts", key ? key : uid("pk"),
                     str_printf("{\"seller_account\":\"%s\",\"amount\":"
                                "\"%s\",\"currency\":\"USD\",\"psp\":\"%s\"}",
                                seller, amount, p->psp));
}


static char *
payout_becomes(const paid_t *p, const char *id, const char *want)
{
    int          i;
    resp_t      *r;
    const char  *st;

    st = "?";

    for (i = 0; i < 100; i++) {
        r = api_get(&p->m, str_printf("/v1/payouts/%s", id));
        cr_assert_eq(r->status, 200, "%s", r->body);
        st = json_string_value(json_object_get(resp_json(r), "status"));

        if (strcmp(st, want) == 0) {
            return strdup(r->body);
        }

        msleep(100);
    }

    cr_assert_fail("%s: pay-out %s is %s, not %s", p->psp, id, st, want);
    return NULL;
}


static json_t *
balance_usd(const paid_t *p, const char *seller)
{
    size_t   i;
    json_t  *b, *it;
    resp_t  *r;

    r = api_get(&p->m, str_printf("/v1/sellers/%s/balance", seller));
    cr_assert_eq(r->status, 200, "%s", r->body);
    b = json_object_get(resp_json(r), "balances");

    json_array_foreach(b, i, it) {
        if (strcmp(json_string_value(json_object_get(it, "currency")), "USD")
            == 0)
        {
            return json_incref(it);
        }
    }

    cr_assert_fail("no USD balance: %s", r->body);
    return NULL;
}


static void
payouts_paid_and_over_balance(size_t d)
{
    char    *id;
    json_t  *b;
    resp_t  *r;
    paid_t   p;

    paid_new(&p, money_psp(d), NULL, NULL);

    /* no destination yet */
    expect_problem(payout(&p, "seller_1", "1.00", NULL), 422,
                   "seller_not_registered");

    seller_add(&p.m, "seller_1", p.psp, money_destination(d));

    r = payout(&p, "seller_1", "10.01", NULL);
    expect_problem(r, 422, "insufficient_balance");
    cr_expect_not_null(strstr(r->body, "balance is 10.00 USD"), "%s", r->body);

    r = payout(&p, "seller_1", "7.50", NULL);
    cr_assert_eq(r->status, 201, "%s: %s", p.psp, r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "payout_id")));

    /* pending (held back) or already paid: 2.50 is available either way */
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "2.50");

    (void) payout_becomes(&p, id, "PAID");
    cr_expect_eq(wallet(&p.m, "seller_1"), 250, "%s", p.psp);

    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "wallet")), "2.50");
    cr_expect_str_eq(json_string_value(json_object_get(b, "pending_payouts")),
                     "0.00");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "2.50");

    expect_problem(payout(&p, "seller_1", "2.51", NULL), 422,
                   "insufficient_balance");
    expect_books_balance(&p.m);
}


/* A refund and a pay-out answered, then what they took used up by others
 * (the order refunded in full, the seller's balance paid out): the same
 * request again under its key replays its answer; the state a new one
 * would be judged by is not this one's. */
Test(money_payouts, a_retry_replays_after_the_money_is_used_up,
     .timeout = 60)
{
    char    *rkey, *pkey;
    resp_t  *ra, *pa, *r;
    paid_t   p;

    paid_new(&p, money_psp(0), NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(0));

    rkey = uid("rk");
    ra = refund(&p, 1, "1.00", rkey);
    cr_assert_eq(ra->status, 201, "%s", ra->body);
    r = refund(&p, 1, "4.00", NULL);
    cr_assert_eq(r->status, 201, "the rest of order 2: %s", r->body);

    r = refund(&p, 1, "1.00", rkey);
    cr_assert_eq(r->status, 201, "the refund's retry: %ld %s", r->status,
                 r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");

    pkey = uid("pk");
    pa = payout(&p, "seller_1", "6.00", pkey);
    cr_assert_eq(pa->status, 201, "%s", pa->body);
    r = payout(&p, "seller_1", "4.00", NULL);
    cr_assert_eq(r->status, 201, "the rest of the balance: %s", r->body);

    r = payout(&p, "seller_1", "6.00", pkey);
    cr_assert_eq(r->status, 201, "the pay-out's retry: %ld %s", r->status,
                 r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
}


/*
 * A pay-out's retry past its key's TTL (the key purged) after an operator
 * removed its PSP from nginx.conf is the pay-out its request made,
 * answered from its row (it was refused 400 as a new one: a shop told its
 * pay-out was never made pays its seller again some other way); a new
 * pay-out is refused as before, nothing stored.
 */
Test(money_payouts, a_retry_past_its_keys_ttl_after_its_psp_was_removed,
     .timeout = 60)
{
    char        *key, *id, *body;
    long         n;
    resp_t      *first, *r;
    paid_t       p;
    gateway_t    gw;
    const char  *a[2];

    paid_new(&p, "stripe", NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(0));

    key = uid("pk");
    first = payout(&p, "seller_1", "6.00", key);
    cr_assert_eq(first->status, 201, "%s", first->body);
    id = strdup(json_string_value(json_object_get(resp_json(first),
                                                  "payout_id")));
    (void) payout_becomes(&p, id, "PAID");

    /* a gateway on the same database without the PSP "stripe" */
    gateway_without_stripe(&gw, "no-stripe-po");

    a[0] = p.m.id;
    a[1] = key;
    db_exec("DELETE FROM idempotency_keys WHERE merchant_id = $1"
            " AND idem_key = $2", 2, a);
    n = ql("SELECT count(*) FROM payouts WHERE merchant_id = $1", p.m.id,
           NULL);

    body = str_printf("{\"seller_account\":\"seller_1\",\"amount\":"
                      "\"6.00\",\"currency\":\"USD\",\"psp\":\"%s\"}",
                      p.psp);
    r = gateway_send(&gw, "POST", "/v1/payouts", &p.m, key, body);
    cr_assert_eq(r->status, 201, "the retry past its key's TTL: %ld %s",
                 r->status, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "payout_id")), id);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")), "PAID");

    r = gateway_send(&gw, "POST", "/v1/payouts", &p.m, uid("pk"), body);
    cr_expect_eq(r->status, 400, "a new one: %ld %s", r->status, r->body);
    cr_expect_eq(ql("SELECT count(*) FROM payouts WHERE merchant_id = $1",
                    p.m.id, NULL), n);
    cr_expect_eq(ql("SELECT count(*) FROM idempotency_keys WHERE"
                    " merchant_id = $1 AND idem_key = $2", a[0], a[1]), 0);

    gateway_stop(&gw);
}


Test(money_payouts, stripe_paid_and_over_the_balance_refused, .timeout = 60)
{
    payouts_paid_and_over_balance(0);
}


Test(money_payouts, adyen_paid_and_over_the_balance_refused, .timeout = 60)
{
    payouts_paid_and_over_balance(1);
}


Test(money_payouts, generic_paid_and_over_the_balance_refused, .timeout = 60)
{
    payouts_paid_and_over_balance(2);
}


/* An Adyen PSP without the Transfers API's URL and key does not pay out:
 * refused before anything is claimed, rather than sent to the Checkout
 * host, which has no transfers */
Test(money_payouts, an_adyen_psp_without_the_transfers_api_pays_nothing_out,
     .timeout = 60)
{
    resp_t      *r;
    gateway_t    gw;
    merchant_t   m;
    const char  *run = env("PAY_TEST_RUN"), *mock = env("PAY_TEST_MOCK");

    merchant_new(&m);
    gateway_start(&gw, "adyen-nopay", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "payments_psp adyen_nopay dialect=adyen url=%s\n"
        "    secret_file=%s/conf/adyen.secret\n"
        "    webhook_secret_file=%s/conf/adyen.hmac\n"
        "    merchant_account=TestMerchant\n"
        "    hosted=%s timeout=1s connect_timeout=1s allow_http;\n",
        pg_gateway_conninfo(), mock, run, run, mock));
    gateway_wait_ready(&gw, 10);

    r = gateway_send(&gw, "POST", "/v1/payouts", &m, uid("pk"),
                     "{\"seller_account\":\"seller_1\",\"amount\":\"1.00\","
                     "\"currency\":\"USD\",\"psp\":\"adyen_nopay\"}");
    expect_problem(r, 400, "invalid_request");
    cr_expect_not_null(strstr(r->body, "pays out"), "%s", r->body);

    cr_expect_eq(ql("SELECT count(*) FROM payouts WHERE merchant_id = $1",
                    m.id, NULL), 0);

    gateway_stop(&gw);
}


static void
payouts_fifty_at_once(size_t d)
{
    size_t  created;
    paid_t  p;

    paid_new(&p, money_psp(d), NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(d));

    created = fifty_at_once(&p.m, "/v1/payouts",
                            str_printf("{\"seller_account\":\"seller_1\","
                                       "\"amount\":\"0.30\",\"currency\":"
                                       "\"USD\",\"psp\":\"%s\"}", p.psp),
                            "insufficient_balance");

    /* 10.00 pays out 33 times 0.30 at most */
    cr_expect_eq(created, 33, "%s: %zu created", p.psp, created);
    cr_expect_leq(ql("SELECT sum(amount) FROM payouts WHERE merchant_id = $1 "
                     "AND status <> 'FAILED'", p.m.id, NULL), 1000);
    expect_books_balance(&p.m);
}


Test(money_payouts, stripe_fifty_at_once_never_exceed_the_balance,
     .timeout = 90)
{
    payouts_fifty_at_once(0);
}


Test(money_payouts, adyen_fifty_at_once_never_exceed_the_balance,
     .timeout = 90)
{
    payouts_fifty_at_once(1);
}


Test(money_payouts, generic_fifty_at_once_never_exceed_the_balance,
     .timeout = 90)
{
    payouts_fifty_at_once(2);
}


/* --- failures: refused, failed, resumed --------------------------------------- */

static char *
payment_ref_of(const paid_t *p)
{
    return q1("SELECT psp_payment_ref FROM checkouts WHERE merchant_id = $1 "
              "AND checkout_id = $2", p->m.id, p->co);
}


static void
refund_fails_and_is_refundable_again(size_t d)
{
    char    *id;
    resp_t  *r;
    paid_t   p;

    paid_new(&p, money_psp(d), NULL, NULL);

    /* a full refund of the first order succeeds */
    r = refund(&p, 0, "10.00", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "refund_id")));
    expect_refund_becomes(&p, 0, id, "SUCCEEDED");

    /* the nonce (<merchant>:<refund id>) is not known before the refund
     * is sent: the rule matches every later refund of this merchant */
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"webhook_op_failed\":true}", p.m.id));
    r = refund(&p, 1, "5.00", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "refund_id")));
    expect_refund_becomes(&p, 1, id, "FAILED");
    cr_expect_eq(wallet(&p.m, "seller_2"), 500, "%s: a failed refund moves "
                 "nothing", p.psp);

    /* and its amount may be refunded again */
    expect_problem(refund(&p, 1, "5.01", NULL), 422,
                   "refund_exceeds_captured");
    r = refund(&p, 1, "5.00", NULL);
    cr_expect_eq(r->status, 201, "%s", r->body);
    expect_books_balance(&p.m);
}


Test(money_failures, stripe_a_failed_refund_moves_nothing, .timeout = 60)
{
    refund_fails_and_is_refundable_again(0);
}


Test(money_failures, adyen_a_failed_refund_moves_nothing, .timeout = 60)
{
    refund_fails_and_is_refundable_again(1);
}


Test(money_failures, generic_a_failed_refund_moves_nothing, .timeout = 60)
{
    refund_fails_and_is_refundable_again(2);
}


static void
payout_fails_and_returns(size_t d)
{
    char    *id;
    json_t  *b;
    resp_t  *r;
    paid_t   p;

    paid_new(&p, money_psp(d), NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(d));

    (void) mock_fault(str_printf("{\"match\":\"%s:pyo_\","
                                 "\"webhook_op_failed\":true}", p.m.id));

    r = payout(&p, "seller_1", "10.00", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "payout_id")));

    (void) payout_becomes(&p, id, "FAILED");

    /* nothing was booked: the money is available again */
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000, "%s", p.psp);
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "10.00");
    cr_expect_eq(ql("SELECT count(*) FROM ledger_transactions WHERE "
                    "merchant_id = $1 AND kind = 'payout'", p.m.id, NULL), 0);
    expect_books_balance(&p.m);
}


Test(money_failures, stripe_a_failed_payout_gives_the_money_back,
     .timeout = 60)
{
    payout_fails_and_returns(0);
}


Test(money_failures, adyen_a_failed_payout_gives_the_money_back,
     .timeout = 60)
{
    payout_fails_and_returns(1);
}


Test(money_failures, generic_a_failed_payout_gives_the_money_back,
     .timeout = 60)
{
    payout_fails_and_returns(2);
}


/* A PSP's event for p's merchant, applied as the webhook handler applies a
 * verified one (pay_event_apply); its outcome.  amount_minor NULL: SQL
 * NULL. */
static char *
event_apply(const paid_t *p, const char *kind, const char *type,
    const char *object_id, const char *amount_minor)
{
    const char  *params[6];

    params[0] = p->psp;
    params[1] = uid("evt");
    params[2] = kind;
    params[3] = type;
    params[4] = str_printf("%s:%s", p->m.id, object_id);
    params[5] = amount_minor;

    return db_scalar("SELECT outcome FROM pay_event_apply($1, $2, $3, $4, "
                     "NULL, $5, $6::bigint, 'USD', NULL, NULL, NULL)", 6, params);
}


Test(money_failures, a_refund_failing_after_it_succeeded_is_given_back,
     .timeout = 60,
     .description = "Adyen's REFUND_FAILED after REFUND (Stripe's "
                    "refund.failed): the refund's booking is undone, the "
                    "seller's wallet and the commission get their shares "
                    "back, and the amount is refundable again "
                    "(sql/functions/refund_event_apply.sql)")
{
    char    *id;
    long     commission;
    paid_t   p;

    paid_new(&p, money_psp(1), "1000", NULL);      /* 10% commission */
    cr_assert_eq(wallet(&p.m, "seller_1"), 900);
    commission = ql("SELECT sum(amount) FROM ledger_entries WHERE"
                    " merchant_id = $1 AND account = 'platform_commission'",
                    p.m.id, NULL);
    id = refund_ok(&p, 0, "4.00");
    expect_refund_becomes(&p, 0, id, "SUCCEEDED");
    cr_assert_eq(wallet(&p.m, "seller_1"), 540, "%s", p.psp);

    /* an event without an amount moves nothing (a NULL skipped the check) */
    cr_expect_str_eq(event_apply(&p, "REFUND_FAILED", "REFUND_FAILED", id,
                                 NULL), "amount_mismatch");
    cr_assert_str_eq(event_apply(&p, "REFUND_FAILED", "REFUND_FAILED", id,
                                 "400"), "applied");
    expect_refund_becomes(&p, 0, id, "FAILED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 900, "%s", p.psp);
    cr_expect_eq(ql("SELECT sum(amount) FROM ledger_entries WHERE"
                    " merchant_id = $1 AND account = 'platform_commission'",
                    p.m.id, NULL), commission);
    expect_books_balance(&p.m);

    /* told again: nothing more */
    cr_expect_str_eq(event_apply(&p, "REFUND_FAILED", "REFUND_FAILED", id,
                                 "400"), "already");
    /* the whole order is refundable again */
    expect_refund_becomes(&p, 0, refund_ok(&p, 0, "10.00"), "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 0, "%s", p.psp);
    expect_books_balance(&p.m);
}


Test(money_failures, a_payout_reversed_after_it_was_paid_is_given_back,
     .timeout = 60,
     .description = "Stripe's transfer.reversed after transfer.created "
                    "(Adyen's returned after booked): the money is back in "
                    "the seller's wallet and the pay-out FAILED "
                    "(sql/functions/payout_event_apply.sql)")
{
    char    *id;
    json_t  *b;
    resp_t  *r;
    paid_t   p;

    paid_new(&p, money_psp(0), NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(0));
    r = payout(&p, "seller_1", "7.50", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "payout_id")));
    (void) payout_becomes(&p, id, "PAID");
    cr_assert_eq(wallet(&p.m, "seller_1"), 250);

    cr_expect_str_eq(event_apply(&p, "PAYOUT_FAILED", "transfer.reversed",
                                 id, NULL), "amount_mismatch");
    cr_assert_str_eq(event_apply(&p, "PAYOUT_FAILED", "transfer.reversed",
                                 id, "750"), "applied");
    (void) payout_becomes(&p, id, "FAILED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000, "%s", p.psp);
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "10.00");
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries"
                    " WHERE merchant_id = $1 AND account LIKE"
                    " 'psp\\_clearing:%'", p.m.id, NULL), 1500);
    expect_books_balance(&p.m);

    /* a reversal never comes back as paid */
    cr_expect_str_eq(event_apply(&p, "PAYOUT_PAID", "transfer.created", id,
                                 "750"), "late_contrary");
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000);
}


Test(money_failures, the_psps_other_refund_events_settle_it_too,
     .timeout = 60)
{
    char    *id;
    paid_t   p, q;

    /* Stripe's charge.refunded lists the charge's refunds */
    paid_new(&p, money_psp(0), NULL, NULL);
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"webhook_charge_refunded\":true}", p.m.id));
    id = refund_ok(&p, 0, "2.00");
    expect_refund_becomes(&p, 0, id, "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 800);

    /* Adyen's REFUND_FAILED */
    paid_new(&q, money_psp(1), NULL, NULL);
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"webhook_op_failed\":true,"
                                 "\"webhook_refund_failed_code\":true}",
                                 q.m.id));
    id = refund_ok(&q, 0, "2.00");
    expect_refund_becomes(&q, 0, id, "FAILED");
    cr_expect_eq(wallet(&q.m, "seller_1"), 1000);
    expect_books_balance(&p.m);
    expect_books_balance(&q.m);
}


Test(money_failures, a_psp_failing_then_answering_registers_the_refund_once,
     .timeout = 90)
{
    char        *key, *nonce;
    long         sessions, requests;
    resp_t      *a, *b;
    paid_t       p;

    paid_new(&p, money_psp(0), NULL, NULL);

    /* the refunds of this merchant: three calls fail with 500, the
     * gateway's three attempts within one request (retries=2) */
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\",\"fail_times\":3,"
                                 "\"fail_status\":500}", p.m.id));

    key = uid("rk");
    a = refund(&p, 0, "3.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);
    expect_problem(a, a->status, "psp_unavailable");

    /* the refund is kept PENDING, its nonce fixed */
    nonce = q1("SELECT nonce FROM refunds WHERE merchant_id = $1", p.m.id,
               NULL);
    cr_assert_not_null(nonce);

    /* the retry with the same key resumes it: the same nonce, once */
    b = refund(&p, 0, "3.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                        p.m.id, NULL), nonce);
    cr_expect_eq(ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                    p.m.id, NULL), 1);

    mock_registrations(nonce, &sessions, &requests);
    cr_expect_eq(sessions, 1, "one refund at the PSP for the nonce");
    cr_expect_geq(requests, 2);
}


Test(money_failures, adyen_a_refund_the_psp_is_still_making_is_never_failed,
     .timeout = 90,
     .description = "Adyen answers 422 with errorCode 704 to an attempt whose "
                    "Idempotency-Key an earlier attempt still holds; that "
                    "refund may well be made, so it stays PENDING (a FAILED "
                    "refund's amount would be refundable again: refunded "
                    "twice at the PSP) and its webhook makes it SUCCEEDED")
{
    char    *nonce, *id, *st;
    long     sessions, requests;
    resp_t  *a;
    paid_t   p;

    paid_new(&p, "mock_adyen", NULL, NULL);

    /* the first attempt takes 1.5 s at the PSP, past the gateway's 1 s:
     * the next ones find its key in progress */
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\",\"latency_ms\":1500}",
                                 p.m.id));
    a = refund(&p, 0, "3.00", NULL);
    cr_assert(a->status == 201 || a->status == 502 || a->status == 504,
              "%ld %s", a->status, a->body);

    id = q1("SELECT refund_id FROM refunds WHERE merchant_id = $1", p.m.id,
            NULL);
    nonce = q1("SELECT nonce FROM refunds WHERE merchant_id = $1", p.m.id,
               NULL);
    cr_assert_not_null(id);
    st = q1("SELECT status FROM refunds WHERE merchant_id = $1", p.m.id,
            NULL);
    cr_assert_str_neq(st, "FAILED", "%s", a->body);

    /* the first attempt's refund is made, once, and its webhook books it */
    expect_refund_becomes(&p, 0, id, "SUCCEEDED");
    mock_registrations(nonce, &sessions, &requests);
    cr_expect_eq(sessions, 1, "one refund at the PSP for the nonce");
    cr_expect_geq(requests, 2, "the gateway tried again");
    cr_expect_eq(wallet(&p.m, "seller_1"), 700);
    expect_books_balance(&p.m);
}


/* --- disputes ------------------------------------------------------------------ */

static char *
dispute_open(const paid_t *p, long amount)
{
    resp_t  *r;

    r = mock_post("/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":%ld}",
                             payment_ref_of(p), amount));
    cr_assert_eq(r->status, 200, "%s", r->body);
    return strdup(json_string_value(json_object_get(resp_json(r), "id")));
}


static void
dispute_close(const char *id, const char *outcome)
{
    resp_t  *r;

    r = mock_post(str_printf("/_control/disputes/%s/close", id),
                  str_printf("{\"outcome\":\"%s\"}", outcome));
    cr_assert_eq(r->status, 200, "%s", r->body);
}


/* Waits until the order's first dispute is in state want; its part. */
static char *
dispute_becomes(const paid_t *p, int order, const char *want)
{
    int          i;
    json_t      *ds, *it;
    resp_t      *r;
    const char  *st;

    st = "absent";

    for (i = 0; i < 100; i++) {
        r = api_get(&p->m, str_printf("/v1/payments/%s", p->po[order]));
        cr_assert_eq(r->status, 200, "%s", r->body);
        ds = json_object_get(resp_json(r), "disputes");
        it = json_array_get(ds, 0);

        if (it != NULL) {
            st = json_string_value(json_object_get(it, "status"));
            if (strcmp(st, want) == 0) {
                return strdup(json_string_value(json_object_get(it,
                                                                "amount")));
            }
        }

        msleep(100);
    }

    cr_assert_fail("%s: dispute is %s, not %s", p->psp, st, want);
    return NULL;
}


/*
 * Order 0 (10.00) of p, part of whose money a chargeback took: a refund of
 * over says 422 with left as what is left, and the database refuses such a
 * refund row itself (sql/functions/refunds_within_capture.sql), rolled back.
 */
static void
expect_chargeback_caps_refunds(const paid_t *p, const char *over,
    const char *left)
{
    resp_t      *r;
    PGconn      *c;
    const char  *a[3];

    r = refund(p, 0, over, NULL);
    expect_problem(r, 422, "refund_exceeds_captured");
    cr_expect_not_null(strstr(r->body, str_printf("at most %s ", left)),
                       "%s: %s left? %s", p->psp, left, r->body);

    a[0] = p->m.id;
    a[1] = p->po[0];
    a[2] = over;
    c = sqlt_connect();
    PQclear(sqlt_ok(c, "BEGIN", 0, NULL));
    sqlt_fails(c, "PY007",
               "INSERT INTO refunds (merchant_id, refund_id, checkout_id,"
               " payment_order_id, psp, nonce, amount, currency, status)"
               " SELECT $1, 'rf_0123456789abcdef01234567', o.checkout_id, $2,"
               " c.psp, $1 || ':rf_0123456789abcdef01234567',"
               " ($3::numeric * 100)::bigint, o.currency, 'PENDING'"
               " FROM payment_orders o JOIN checkouts c USING (merchant_id,"
               " checkout_id) WHERE o.merchant_id = $1"
               " AND o.payment_order_id = $2", 3, a);
    PQclear(sqlt_ok(c, "ROLLBACK", 0, NULL));
    PQfinish(c);
}


static void
disputes_lost_and_won(size_t d)
{
    char    *lost, *won, *part;
    json_t  *b;
    paid_t   p, q;

    /* lost: 6.00 of 15.00, split 10:5 -> 4.00 and 2.00 */
    paid_new(&p, money_psp(d), NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(d));
    lost = dispute_open(&p, 600);

    part = dispute_becomes(&p, 0, "OPEN");
    cr_expect_str_eq(part, "4.00", "%s", p.psp);
    cr_expect_str_eq(dispute_becomes(&p, 1, "OPEN"), "2.00");

    /* held back while open: available 10.00 - 4.00; the wallet unchanged */
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "open_disputes")),
                     "4.00");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "6.00");
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000);
    expect_problem(payout(&p, "seller_1", "6.01", NULL), 422,
                   "insufficient_balance");
    /* a refund may not give back what the chargeback took: 6.00 is left */
    expect_chargeback_caps_refunds(&p, "6.01", "6.00");

    dispute_close(lost, "lost");
    (void) dispute_becomes(&p, 0, "LOST");
    (void) dispute_becomes(&p, 1, "LOST");
    expect_chargeback_caps_refunds(&p, "6.01", "6.00");
    cr_expect_eq(wallet(&p.m, "seller_1"), 600, "%s", p.psp);
    cr_expect_eq(wallet(&p.m, "seller_2"), 300, "%s", p.psp);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries "
                    "WHERE merchant_id = $1 AND account LIKE 'disputes:%'",
                    p.m.id, NULL), 0);
    expect_books_balance(&p.m);

    /* won: the whole payment, then it all comes back */
    paid_new(&q, money_psp(d), NULL, NULL);
    won = dispute_open(&q, 1500);
    (void) dispute_becomes(&q, 0, "OPEN");
    cr_expect_eq(ql("SELECT sum(amount) FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account LIKE 'psp\\_clearing:%'",
                    q.m.id, NULL), 0);

    expect_chargeback_caps_refunds(&q, "0.01", "0.00");

    dispute_close(won, "won");
    (void) dispute_becomes(&q, 0, "WON");
    cr_expect_eq(wallet(&q.m, "seller_1"), 1000);
    cr_expect_eq(wallet(&q.m, "seller_2"), 500);
    cr_expect_eq(ql("SELECT sum(amount) FROM ledger_entries WHERE "
                    "merchant_id = $1 AND account LIKE 'psp\\_clearing:%'",
                    q.m.id, NULL), 1500);
    expect_books_balance(&q.m);

    /* won: the money came back, the whole order is refundable again */
    expect_refund_becomes(&q, 0, refund_ok(&q, 0, "10.00"), "SUCCEEDED");
    cr_expect_eq(wallet(&q.m, "seller_1"), 0, "%s", q.psp);
    expect_books_balance(&q.m);
}


/*
 * At 10 %: 6.00 of 15.00 charged back, split 4.00 (seller_1's order of
 * 10.00, credited 9.00) and 2.00.  While it is open, seller_1's balance
 * shows the 4.00 open and holds back 3.60, what a loss takes of it (the
 * commission gives back its 0.40): 5.40 available, not 5.00.  The 6.00
 * left of the order is refundable from it (the seller's share 5.40);
 * then nothing is available, and once the chargeback is lost the seller
 * has given back exactly its 9.00.
 */
static void
dispute_hold_at_a_commission(size_t d)
{
    char    *id, *rf;
    json_t  *b;
    paid_t   p;

    paid_new(&p, money_psp(d), "1000", NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(d));
    cr_assert_eq(wallet(&p.m, "seller_1"), 900, "%s", p.psp);

    id = dispute_open(&p, 600);
    cr_expect_str_eq(dispute_becomes(&p, 0, "OPEN"), "4.00", "%s", p.psp);

    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "open_disputes")),
                     "4.00", "%s", p.psp);
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "5.40", "%s: the hold of an open chargeback is the "
                     "seller's share of it", p.psp);
    expect_problem(payout(&p, "seller_1", "5.41", NULL), 422,
                   "insufficient_balance");

    rf = refund_ok(&p, 0, "6.00");
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "0.00", "%s", p.psp);
    expect_refund_becomes(&p, 0, rf, "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 360, "%s", p.psp);

    dispute_close(id, "lost");
    (void) dispute_becomes(&p, 0, "LOST");
    cr_expect_eq(wallet(&p.m, "seller_1"), 0, "%s: seller_1 gave back more "
                 "or less than its 9.00", p.psp);
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "0.00", "%s", p.psp);
    expect_books_balance(&p.m);
}


Test(money_disputes, stripe_an_open_chargeback_holds_the_sellers_share,
     .timeout = 90)
{
    dispute_hold_at_a_commission(0);
}


Test(money_disputes, adyen_an_open_chargeback_holds_the_sellers_share,
     .timeout = 90)
{
    dispute_hold_at_a_commission(1);
}


Test(money_disputes, generic_an_open_chargeback_holds_the_sellers_share,
     .timeout = 90)
{
    dispute_hold_at_a_commission(2);
}


Test(money_disputes, adyen_a_second_chargeback_after_a_win_is_the_sellers,
     .timeout = 90,
     .description = "CHARGEBACK, CHARGEBACK_REVERSED, then SECOND_CHARGEBACK: "
                    "the money the win gave back is withdrawn again and the "
                    "sellers bear it, as for a dispute lost at once "
                    "(sql/functions/dispute_event_apply.sql)")
{
    char    *id;
    paid_t   p;

    paid_new(&p, money_psp(1), NULL, NULL);
    id = dispute_open(&p, 600);
    (void) dispute_becomes(&p, 0, "OPEN");
    dispute_close(id, "won");
    (void) dispute_becomes(&p, 0, "WON");
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000);

    dispute_close(id, "lost");          /* the mock's SECOND_CHARGEBACK */
    cr_expect_str_eq(dispute_becomes(&p, 0, "LOST"), "4.00");
    cr_expect_str_eq(dispute_becomes(&p, 1, "LOST"), "2.00");
    cr_expect_eq(wallet(&p.m, "seller_1"), 600, "%s", p.psp);
    cr_expect_eq(wallet(&p.m, "seller_2"), 300, "%s", p.psp);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries"
                    " WHERE merchant_id = $1 AND account LIKE"
                    " 'psp\\_clearing:%'", p.m.id, NULL), 900);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries"
                    " WHERE merchant_id = $1 AND account LIKE 'disputes:%'",
                    p.m.id, NULL), 0);
    expect_books_balance(&p.m);
    expect_chargeback_caps_refunds(&p, "6.01", "6.00");
}


Test(money_disputes, stripe_lost_then_won, .timeout = 90)
{
    disputes_lost_and_won(0);
}


Test(money_disputes, adyen_lost_then_won, .timeout = 90)
{
    disputes_lost_and_won(1);
}


Test(money_disputes, generic_lost_then_won, .timeout = 90)
{
    disputes_lost_and_won(2);
}


/* --- inquiries: news of a dispute before any money moves ---------------------- */

static int
dispute_event_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* The PSP's events about a dispute (its object_ref: Stripe's dispute id,
 * Adyen's "cb:<payment>"; or an ignored code naming the checkout, as
 * Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED, about its own pspReference)
 * as "type=outcome,..." (those with an outcome), in the order they came;
 * *with how many have one, *every all of them ("type=-" without one).
 * Where each is kept: news that moves nothing and names no merchant (an
 * inquiry's first news, a dispute's update) on the home shard, the rest
 * on the merchant's; so on a sharded stack whose merchants live on
 * another shard (E2E_LANE_SHARD) both are read, a row the home forwarded
 * left out. */
static char *
dispute_events_now(const paid_t *p, const char *object_ref, int *with,
    char **every)
{
    int          k, m, i;
    char        *rows[2], *all[64], *it, *save, *out;
    size_t       len;
    const char  *a[3];

    a[0] = p->psp;
    a[1] = object_ref;
    a[2] = str_printf("%s:%s", p->m.id, p->co);

    /* "when<TAB>id<TAB>type=outcome" lines: when sorts as it came */
#define DISPUTE_EVENTS_OF                                                     \
    "SELECT coalesce(string_agg(to_char(received_at AT TIME ZONE 'UTC',"      \
    " 'YYYYMMDDHH24MISSUS') || chr(9) || event_id || chr(9) || type || '='"   \
    " || coalesce(outcome, '-'), chr(10)), '') FROM psp_events"               \
    " WHERE psp = $1 AND state <> 'forwarded' AND (object_ref = $2 OR"        \
    " (reference = $3 AND kind = 'IGNORED'))"

    rows[0] = db_scalar(DISPUTE_EVENTS_OF, 3, a);
    rows[1] = "";
    if (shards_n() > 1
        && strcmp(shard_conninfo(shard_name(0)), shard_conninfo(NULL)) != 0)
    {
        rows[1] = db_scalar_on(db_shard(shard_name(0)), DISPUTE_EVENTS_OF, 3,
                               a);
    }
#undef DISPUTE_EVENTS_OF

    m = 0;
    for (k = 0; k < 2; k++) {
        cr_assert_not_null(rows[k]);
        for (it = strtok_r(strdup(rows[k]), "\n", &save); it != NULL;
             it = strtok_r(NULL, "\n", &save))
        {
            cr_assert_lt(m, 64, "too many events about %s", object_ref);
            all[m++] = it;
        }
    }
    qsort(all, (size_t) m, sizeof(char *), dispute_event_cmp);

    *with = 0;
    out = strdup("");
    *every = strdup("");
    for (i = 0; i < m; i++) {
        it = strrchr(all[i], '\t') + 1;
        len = strlen(it);
        *every = str_printf("%s%s%s", *every, i ? "," : "", it);
        if (len >= 2 && strcmp(it + len - 2, "=-") == 0) {
            continue;
        }
        out = str_printf("%s%s%s", out, *with ? "," : "", it);
        (*with)++;
    }

    return out;
}


static char *
dispute_events(const paid_t *p, const char *object_ref, int n)
{
    int    i, with;
    char  *got, *every;

    for (i = 0; i < 100; i++) {
        got = dispute_events_now(p, object_ref, &with, &every);
        if (with >= n) {
            return got;
        }

        msleep(100);
    }

    cr_assert_fail("%s: %d events about %s, got %s", p->psp, n, object_ref,
                   every[0] ? every : "none");
    return NULL;
}


/* What the disputes account holds of p's checkout, and its dispute
 * bookings (one per order part). */
static long
disputes_held(const paid_t *p)
{
    return ql("SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e"
              " JOIN ledger_transactions t USING (merchant_id, txn_id)"
              " WHERE e.merchant_id = $1 AND t.checkout_id = $2 AND"
              " e.account LIKE 'disputes:%'", p->m.id, p->co);
}


static long
dispute_bookings(const paid_t *p)
{
    return ql("SELECT count(*) FROM ledger_transactions WHERE"
              " merchant_id = $1 AND checkout_id = $2 AND kind = 'dispute'",
              p->m.id, p->co);
}


/*
 * An inquiry (Stripe's dispute created with warning_needs_response; Adyen's
 * NOTIFICATION_OF_CHARGEBACK alone): the PSP withdrew nothing, so nothing
 * is booked and nothing is held.  Closed as an inquiry (Stripe's
 * warning_closed; Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED), the order is
 * refundable whole; escalated (the money withdrawn: Stripe's
 * charge.dispute.updated and funds_withdrawn with needs_response; Adyen's
 * CHARGEBACK), the dispute opens and is booked once.
 */
static void
inquiry(size_t d, int escalate)
{
    char        *id, *oref, *evs;
    resp_t      *r;
    paid_t       p;
    const char  *first, *closed;

    paid_new(&p, money_psp(d), NULL, NULL);
    r = mock_post("/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":600,"
                             "\"inquiry\":true}", payment_ref_of(&p)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r), "id")));
    oref = d == 0 ? id : str_printf("cb:%s", payment_ref_of(&p));
    first = d == 0 ? "charge.dispute.created=pending"
                   : "NOTIFICATION_OF_CHARGEBACK=pending";

    cr_expect_str_eq(dispute_events(&p, oref, 1), first, "%s", p.psp);
    cr_expect_eq(ql("SELECT count(*) FROM disputes WHERE merchant_id = $1"
                    " AND checkout_id = $2", p.m.id, p.co), 0,
                 "%s: an inquiry is no dispute", p.psp);
    cr_expect_eq(disputes_held(&p), 0, "%s", p.psp);
    cr_expect_str_eq(json_string_value(json_object_get(
                         balance_usd(&p, "seller_1"), "open_disputes")),
                     "0.00", "%s", p.psp);

    if (!escalate) {
        r = mock_post(str_printf("/_control/disputes/%s/close", id),
                      "{\"outcome\":\"inquiry_closed\"}");
        cr_assert_eq(r->status, 200, "%s", r->body);
        closed = d == 0 ? "charge.dispute.closed=ignored"
                        : "ISSUER_RESPONSE_TIMEFRAME_EXPIRED=ignored";
        evs = dispute_events(&p, oref, 2);
        cr_expect_str_eq(evs, str_printf("%s,%s", first, closed), "%s",
                         p.psp);
        cr_expect_eq(disputes_held(&p), 0, "%s", p.psp);

        /* nothing was withdrawn: the whole order is refundable */
        expect_refund_becomes(&p, 0, refund_ok(&p, 0, "10.00"),
                              "SUCCEEDED");
        cr_expect_eq(wallet(&p.m, "seller_1"), 0, "%s", p.psp);
        expect_books_balance(&p.m);
        return;
    }

    r = mock_post(str_printf("/_control/disputes/%s/close", id),
                  "{\"outcome\":\"escalate\"}");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(dispute_becomes(&p, 0, "OPEN"), "4.00", "%s", p.psp);
    cr_expect_str_eq(dispute_becomes(&p, 1, "OPEN"), "2.00", "%s", p.psp);

    /* every event of it came, and it was booked once */
    evs = dispute_events(&p, oref, d == 0 ? 3 : 2);
    cr_expect(d == 0
              ? strstr(evs, "charge.dispute.funds_withdrawn=applied") != NULL
                && strstr(evs, "charge.dispute.updated=ignored") != NULL
              : strstr(evs, "CHARGEBACK=applied") != NULL,
              "%s: %s", p.psp, evs);
    cr_expect_eq(disputes_held(&p), 600, "%s", p.psp);
    cr_expect_eq(dispute_bookings(&p), 2, "%s", p.psp);

    dispute_close(id, "lost");
    (void) dispute_becomes(&p, 0, "LOST");
    cr_expect_eq(wallet(&p.m, "seller_1"), 600, "%s", p.psp);
    cr_expect_eq(wallet(&p.m, "seller_2"), 300, "%s", p.psp);
    cr_expect_eq(disputes_held(&p), 0, "%s", p.psp);
    expect_books_balance(&p.m);
}


Test(money_disputes, stripe_an_inquiry_closed_books_nothing, .timeout = 90,
     .description = "charge.dispute.created with warning_needs_response, "
                    "then closed warning_closed: nothing booked or held, "
                    "the order refundable whole")
{
    inquiry(0, 0);
}


Test(money_disputes, stripe_an_inquiry_escalated_is_booked_once,
     .timeout = 90,
     .description = "an inquiry escalated (updated and funds_withdrawn "
                    "with needs_response): the dispute opens at the "
                    "withdrawal, booked once, then lost")
{
    inquiry(0, 1);
}


Test(money_disputes, adyen_a_notification_of_chargeback_books_nothing,
     .timeout = 90,
     .description = "NOTIFICATION_OF_CHARGEBACK then "
                    "ISSUER_RESPONSE_TIMEFRAME_EXPIRED: Adyen deducted "
                    "nothing, nothing booked or held")
{
    inquiry(1, 0);
}


Test(money_disputes, adyen_a_notification_then_chargeback_is_booked_once,
     .timeout = 90)
{
    inquiry(1, 1);
}


/* A Stripe chargeback: created and funds_withdrawn, booked once.  The mock
 * sends funds_withdrawn 100 ms after created, but deliveries may overtake
 * each other (a busy machine did): whichever comes first opens the
 * dispute, the other finds it open. */
Test(money_disputes, stripe_a_chargeback_is_booked_once, .timeout = 90,
     .description = "charge.dispute.created (needs_response) and its "
                    "funds_withdrawn: the first applied, the other "
                    "already: one booking")
{
    char    *id, *evs;
    paid_t   p;

    paid_new(&p, money_psp(0), NULL, NULL);
    id = dispute_open(&p, 600);
    (void) dispute_becomes(&p, 0, "OPEN");
    evs = dispute_events(&p, id, 2);
    cr_expect(strcmp(evs, "charge.dispute.created=applied,"
                          "charge.dispute.funds_withdrawn=already") == 0
              || strcmp(evs, "charge.dispute.funds_withdrawn=applied,"
                             "charge.dispute.created=already") == 0,
              "one applied, the other already: %s", evs);
    cr_expect_eq(disputes_held(&p), 600);
    cr_expect_eq(dispute_bookings(&p), 2);
    expect_books_balance(&p.m);
}

/* --- inquiries an earlier release opened as disputes ---------------------------- */

static char *stripe_event(const char *type, const char *object);

/*
 * Releases before this one read an inquiry's first news (Stripe's
 * charge.dispute.created with warning_needs_response, Adyen's
 * NOTIFICATION_OF_CHARGEBACK) as DISPUTE_OPENED and booked it, and its end
 * as IGNORED.  Such readings are applied here as those releases' workers
 * applied them (pay_event_keep, with the signed bytes' shape), so that the
 * database holds what they left: the dispute OPEN, its money held.
 */

/* Stripe's dispute id of p's payment, 6.00 with that status, as JSON. */
static char *
old_stripe_dispute(const paid_t *p, const char *id, const char *status)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"dispute\",\"amount\":600,"
                      "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                      "\"status\":\"%s\",\"reason\":\"fraudulent\"}", id,
                      payment_ref_of(p), status);
}


/* Event evt of 6.00 USD kept and applied as an earlier release's worker
 * kept it: its kind, type, our nonce (or NULL), the payment and object
 * refs, the signed body; its outcome. */
static char *
old_keep(const paid_t *p, const char *evt, const char *kind,
    const char *type, const char *reference, const char *payment_ref,
    const char *object_ref, const char *body)
{
    const char  *a[8];

    a[0] = p->psp;
    a[1] = evt;
    a[2] = kind;
    a[3] = type;
    a[4] = reference;
    a[5] = payment_ref;
    a[6] = object_ref;
    a[7] = body;

    return db_scalar("SELECT outcome FROM pay_event_keep($1, $2, $3, $4, NULL,"
                     " $5, 600, 'USD', $6, $7, NULL, convert_to($8, 'UTF8'),"
                     " '{}'::jsonb, NULL)", 8, a);
}


static char *
stripe_event_body(const char *evt, const char *type, const char *object)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"api_version\":"
                      "\"2024-06-20\",\"type\":\"%s\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":%s}}", evt,
                      type, (long) time(NULL), object);
}


/* The inquiry's first news as an earlier release read it: DISPUTE_OPENED,
 * booked.  Stripe's dispute id, or Adyen's "cb:<payment>", is oref. */
static void
old_inquiry_opened(size_t d, const paid_t *p, const char *oref)
{
    char  *evt, *nonce;

    nonce = str_printf("%s:%s", p->m.id, p->co);

    if (d == 0) {
        evt = uid("evt");
        cr_assert_str_eq(old_keep(p, evt, "DISPUTE_OPENED",
                                  "charge.dispute.created", NULL,
                                  payment_ref_of(p), oref,
                                  stripe_event_body(evt,
                                      "charge.dispute.created",
                                      old_stripe_dispute(p, oref,
                                          "warning_needs_response"))),
                         "applied");
    } else {
        evt = str_printf("%s:NOTIFICATION_OF_CHARGEBACK", adyen_psp_ref());
        cr_assert_str_eq(old_keep(p, evt, "DISPUTE_OPENED",
                                  "NOTIFICATION_OF_CHARGEBACK", nonce,
                                  payment_ref_of(p), oref,
                                  "{\"NotificationRequestItem\":{}}"),
                         "applied");
    }

    cr_assert_str_eq(dispute_becomes(p, 0, "OPEN"), "4.00", "%s", p->psp);
    cr_assert_eq(disputes_held(p), 600, "%s", p->psp);
    cr_assert_str_eq(json_string_value(json_object_get(
                         balance_usd(p, "seller_1"), "open_disputes")),
                     "4.00", "%s", p->psp);
}


/* The inquiry's end as an earlier release's worker read it (IGNORED:
 * Stripe's about the dispute, Adyen's about its own pspReference, naming
 * the checkout by our nonce); its event id. */
static char *
old_inquiry_end(size_t d, const paid_t *p, const char *oref, char **body,
    const char **type, char **nonce, char **object_ref)
{
    char  *evt, *own;

    if (d == 0) {
        evt = uid("evt");
        *type = "charge.dispute.closed";
        *nonce = NULL;
        *object_ref = strdup(oref);
        *body = stripe_event_body(evt, *type,
                                  old_stripe_dispute(p, oref,
                                                     "warning_closed"));
    } else {
        own = adyen_psp_ref();
        evt = str_printf("%s:ISSUER_RESPONSE_TIMEFRAME_EXPIRED", own);
        *type = "ISSUER_RESPONSE_TIMEFRAME_EXPIRED";
        *nonce = str_printf("%s:%s", p->m.id, p->co);
        *object_ref = own;
        *body = strdup("{\"NotificationRequestItem\":{}}");
    }

    return evt;
}


/* The inquiry's end kept before the upgrade, as earlier releases'
 * functions recorded it (ignored, no merchant), then migration 123 and
 * the sweeper's retry of the inbox. */
static void
old_inquiry_end_kept_before(size_t d, const paid_t *p, const char *oref)
{
    char        *evt, *body, *nonce, *object_ref, *sql;
    PGconn      *c;
    PGresult    *res;
    const char  *type, *a[7];

    evt = old_inquiry_end(d, p, oref, &body, &type, &nonce, &object_ref);
    a[0] = p->psp;
    a[1] = evt;
    a[2] = type;
    a[3] = nonce;
    a[4] = d == 0 ? payment_ref_of(p) : NULL;
    a[5] = object_ref;
    a[6] = body;
    (void) db_scalar("INSERT INTO webhook_events (psp, event_id, kind, type,"
                     " outcome) VALUES ($1, $2, 'IGNORED', $3, 'ignored')"
                     " RETURNING 1", 3, a);
    (void) db_scalar("INSERT INTO psp_events (psp, event_id, state, body,"
                     " kind, type, reference, amount, currency, payment_ref,"
                     " object_ref, outcome, applied_at) VALUES ($1, $2,"
                     " 'applied', convert_to($7, 'UTF8'), 'IGNORED', $3, $4,"
                     " 600, 'USD', $5, $6, 'ignored', now()) RETURNING 1",
                     7, a);
    cr_assert_str_eq(dispute_becomes(p, 0, "OPEN"), "4.00", "%s", p->psp);

    /* the upgrade: migration 123 lists the inbox's months (its INSERT,
     * the test database migrated already), and payments-migrate, once it
     * has committed, reads them (inquiry_ends_applied_again) */
    sql = file_read(str_printf("%s/sql/migrations/"
                               "123_inquiry_ends_applied_again.sql",
                               env("PAY_TEST_ROOT")), NULL);
    cr_assert_not_null(sql);
    sql = strstr(sql, "INSERT INTO inquiry_ends_unread");
    cr_assert_not_null(sql);
    c = sqlt_connect();
    sql[strcspn(sql, ";")] = '\0';
    OK0(c, str_printf("%s ON CONFLICT DO NOTHING", sql));
    /* (a statement of its own: it commits as it goes) */
    res = PQexec(c, "CALL inquiry_ends_applied_again()");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s",
                 PQerrorMessage(c));
    PQclear(res);
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM inquiry_ends_unread"), "0");
    PQfinish(c);
    cr_expect_str_eq(q1("SELECT state FROM psp_events WHERE psp = $1 AND"
                        " event_id = $2", p->psp, evt), "pending", "%s",
                     p->psp);

    /* the sweeper's round */
    (void) db_scalar("SELECT count(*) FROM pay_inbox_retry(3600, 1000)", 0,
                     NULL);
    cr_expect_str_eq(q1("SELECT state || '=' || outcome FROM psp_events"
                        " WHERE psp = $1 AND event_id = $2", p->psp, evt),
                     "applied=applied", "%s", p->psp);
}


/*
 * A dispute an earlier release opened for an inquiry, whose end comes now:
 * how 0, from the PSP (the mock's inquiry_closed: Stripe's warning_closed,
 * Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED, read by this release); 1, as
 * an earlier release's worker still running during the upgrade reads it;
 * 2, kept before the upgrade (recorded ignored) and applied again by the
 * upgrade (migration 123, the sweeper's retry).  The PSP withdrew nothing:
 * the dispute is given back as a won one (WON, dispute.won), once and
 * audited, the seller's balance whole and the order refundable.
 */
static void
inquiry_opened_before(size_t d, int how)
{
    char        *id, *oref, *evt, *body, *nonce, *object_ref;
    json_t      *b;
    resp_t      *r;
    paid_t       p;
    endpoint_t   ep;
    const char  *type;

    paid_new(&p, money_psp(d), NULL, NULL);
    endpoint_add(&p.m, "dispute.opened,dispute.won,dispute.lost", &ep);
    r = mock_post("/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":600,"
                             "\"inquiry\":true}", payment_ref_of(&p)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r), "id")));
    oref = d == 0 ? id : str_printf("cb:%s", payment_ref_of(&p));

    /* what an earlier release's worker made of its first news (this
     * release records the mock's own delivery of it pending: nothing) */
    old_inquiry_opened(d, &p, oref);

    if (how == 0) {
        r = mock_post(str_printf("/_control/disputes/%s/close", id),
                      "{\"outcome\":\"inquiry_closed\"}");
        cr_assert_eq(r->status, 200, "%s", r->body);

    } else if (how == 1) {
        evt = old_inquiry_end(d, &p, oref, &body, &type, &nonce,
                              &object_ref);
        cr_expect_str_eq(old_keep(&p, evt, "IGNORED", type, nonce,
                                  d == 0 ? payment_ref_of(&p) : NULL,
                                  object_ref, body),
                         "applied", "%s", p.psp);

    } else {
        old_inquiry_end_kept_before(d, &p, oref);
    }

    cr_expect_str_eq(dispute_becomes(&p, 0, "WON"), "4.00", "%s", p.psp);
    cr_expect_str_eq(dispute_becomes(&p, 1, "WON"), "2.00", "%s", p.psp);
    cr_expect_eq(disputes_held(&p), 0, "%s", p.psp);
    /* booked open, then back as a win: each order's part twice */
    cr_expect_eq(dispute_bookings(&p), 4, "%s", p.psp);
    cr_expect_eq(ql("SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                    " AND checkout_id = $2 AND action ="
                    " 'dispute:inquiry_released'", p.m.id, p.co), 1,
                 "%s", p.psp);
    cr_expect_eq(ql("SELECT count(*) FROM notifications WHERE merchant_id ="
                    " $1 AND checkout_id = $2 AND event_type = 'dispute.won'",
                    p.m.id, p.co), 1, "%s", p.psp);

    /* once: the end applied again (an operator's replay) changes nothing */
    evt = q1("SELECT event_id FROM psp_events WHERE merchant_id = $1 AND"
             " checkout_id = $2 AND outcome = 'applied' AND type IN"
             " ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')",
             p.m.id, p.co);
    cr_assert_not_null(evt, "%s: the end's row", p.psp);
    cr_expect_str_eq(q1("SELECT outcome FROM pay_inbox_replay($1, $2, 'e2e')",
                        p.psp, evt), "duplicate", "%s", p.psp);
    cr_expect_eq(dispute_bookings(&p), 4, "%s", p.psp);
    cr_expect_eq(ql("SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                    " AND checkout_id = $2 AND action ="
                    " 'dispute:inquiry_released'", p.m.id, p.co), 1,
                 "%s", p.psp);

    /* the seller's balance is whole again */
    b = balance_usd(&p, "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(b, "open_disputes")),
                     "0.00", "%s", p.psp);
    cr_expect_str_eq(json_string_value(json_object_get(b, "available")),
                     "10.00", "%s", p.psp);
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000, "%s", p.psp);
    expect_books_balance(&p.m);

    /* and the whole order refundable */
    expect_refund_becomes(&p, 0, refund_ok(&p, 0, "10.00"), "SUCCEEDED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 0, "%s", p.psp);
    cr_expect_eq(disputes_held(&p), 0, "%s", p.psp);
    cr_expect_eq(dispute_bookings(&p), 4, "%s", p.psp);
    expect_books_balance(&p.m);
}


Test(money_disputes, stripe_an_inquiry_opened_before_is_given_back,
     .timeout = 90,
     .description = "a warning_needs_response dispute an earlier release "
                    "booked as opened, then warning_closed: released as "
                    "won, once, the balance whole, the order refundable")
{
    inquiry_opened_before(0, 0);
}


Test(money_disputes, adyen_a_notification_opened_before_is_given_back,
     .timeout = 90,
     .description = "a NOTIFICATION_OF_CHARGEBACK an earlier release booked "
                    "as opened, then ISSUER_RESPONSE_TIMEFRAME_EXPIRED: "
                    "released as won, once")
{
    inquiry_opened_before(1, 0);
}


Test(money_disputes, an_inquiry_end_read_by_an_earlier_release_gives_it_back,
     .timeout = 120,
     .description = "the inquiry's end as an earlier release's worker "
                    "reads it during the upgrade (IGNORED, Stripe's about "
                    "the dispute, Adyen's about the checkout's nonce): the "
                    "dispute released all the same")
{
    inquiry_opened_before(0, 1);
    inquiry_opened_before(1, 1);
}


Test(money_disputes, an_inquiry_end_kept_before_the_upgrade_gives_it_back,
     .timeout = 120,
     .description = "the inquiry's end an earlier release recorded as "
                    "ignored: migration 123 makes it pending, the sweeper's "
                    "retry applies it and releases the dispute")
{
    inquiry_opened_before(0, 2);
    inquiry_opened_before(1, 2);
}


/*
 * A dispute an earlier release opened for an inquiry that was then
 * escalated (the money withdrawn: Stripe's funds_withdrawn, as an earlier
 * release recorded it (ignored) or as this one does (already); Adyen's
 * CHARGEBACK, already): it stays booked once, and an inquiry's end
 * arriving for it all the same changes nothing; it is then lost as any.
 */
static void
inquiry_escalated_before(size_t d)
{
    int          i;
    char        *id, *oref, *evt, *body, *nonce, *object_ref, *psp_ref;
    resp_t      *r;
    paid_t       p;
    const char  *type;

    paid_new(&p, money_psp(d), NULL, NULL);
    r = mock_post("/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":600,"
                             "\"inquiry\":true}", payment_ref_of(&p)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r), "id")));
    oref = d == 0 ? id : str_printf("cb:%s", payment_ref_of(&p));
    old_inquiry_opened(d, &p, oref);

    if (d == 0) {
        /* the withdrawal as an earlier release recorded it: ignored, about
         * the dispute; then the end as one of its workers reads it */
        evt = uid("evt");
        cr_expect_str_eq(old_keep(&p, evt, "IGNORED",
                                  "charge.dispute.funds_withdrawn", NULL,
                                  NULL, oref,
                                  stripe_event_body(evt,
                                      "charge.dispute.funds_withdrawn",
                                      old_stripe_dispute(&p, oref,
                                          "needs_response"))),
                         "ignored");
        evt = old_inquiry_end(d, &p, oref, &body, &type, &nonce,
                              &object_ref);
        cr_expect_str_eq(old_keep(&p, evt, "IGNORED", type, nonce,
                                  payment_ref_of(&p), object_ref, body),
                         "ignored");
        cr_expect_str_eq(dispute_becomes(&p, 0, "OPEN"), "4.00");
        cr_expect_eq(disputes_held(&p), 600);
    }

    /* escalated: the PSP withdraws now, and this release records it */
    r = mock_post(str_printf("/_control/disputes/%s/close", id),
                  "{\"outcome\":\"escalate\"}");
    cr_assert_eq(r->status, 200, "%s", r->body);
    for (i = 0; i < 100; i++) {
        if (ql("SELECT count(*) FROM webhook_events WHERE merchant_id = $1"
               " AND checkout_id = $2 AND kind = 'DISPUTE_OPENED' AND type IN"
               " ('charge.dispute.funds_withdrawn', 'CHARGEBACK') AND outcome"
               " = 'already'", p.m.id, p.co) == 1)
        {
            break;
        }
        msleep(100);
    }
    cr_expect_lt(i, 100, "%s: the withdrawal was not recorded already",
                 p.psp);
    cr_expect_eq(disputes_held(&p), 600, "%s", p.psp);
    cr_expect_eq(dispute_bookings(&p), 2, "%s", p.psp);

    /* an inquiry's end, signed by the PSP, arriving all the same */
    if (d == 0) {
        evt = stripe_event("charge.dispute.closed",
                           old_stripe_dispute(&p, oref, "warning_closed"));
    } else {
        psp_ref = adyen_psp_ref();
        evt = str_printf("%s:ISSUER_RESPONSE_TIMEFRAME_EXPIRED", psp_ref);
        r = webhook_post(p.psp, "X-Unused: 1",
                         str_printf("{\"live\":\"false\","
                                    "\"notificationItems\":[%s]}",
                                    adyen_notification_item(
                                        &(adyen_notification_t) {
                                            .psp_ref = psp_ref,
                                            .original = payment_ref_of(&p),
                                            .merchant_ref = str_printf(
                                                "%s:%s", p.m.id, p.co),
                                            .amount = 600,
                                            .currency = "USD",
                                            .event_code =
                                            "ISSUER_RESPONSE_TIMEFRAME_EXPIRED",
                                            .success = "true" }, 0)));
        cr_assert_eq(r->status, 200, "%s", r->body);
    }

    cr_expect_str_eq(q1("SELECT kind || '=' || outcome FROM webhook_events"
                        " WHERE psp = $1 AND event_id = $2", p.psp, evt),
                     "DISPUTE_INQUIRY_CLOSED=ignored", "%s", p.psp);
    cr_expect_str_eq(dispute_becomes(&p, 0, "OPEN"), "4.00", "%s", p.psp);
    cr_expect_eq(disputes_held(&p), 600, "%s", p.psp);
    cr_expect_eq(dispute_bookings(&p), 2, "%s", p.psp);
    cr_expect_eq(ql("SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                    " AND checkout_id = $2 AND action ="
                    " 'dispute:inquiry_released'", p.m.id, p.co), 0);

    /* lost: the sellers bear it, once */
    dispute_close(id, "lost");
    (void) dispute_becomes(&p, 0, "LOST");
    cr_expect_eq(wallet(&p.m, "seller_1"), 600, "%s", p.psp);
    cr_expect_eq(wallet(&p.m, "seller_2"), 300, "%s", p.psp);
    cr_expect_eq(disputes_held(&p), 0, "%s", p.psp);
    expect_books_balance(&p.m);
}


Test(money_disputes, stripe_an_inquiry_opened_before_then_escalated_stays,
     .timeout = 90,
     .description = "an inquiry an earlier release booked as opened, its "
                    "funds then withdrawn: an inquiry close changes "
                    "nothing, lost as any")
{
    inquiry_escalated_before(0);
}


Test(money_disputes, adyen_a_notification_opened_before_then_charged_back,
     .timeout = 90,
     .description = "a NOTIFICATION_OF_CHARGEBACK an earlier release booked "
                    "as opened, then CHARGEBACK: booked once (already); an "
                    "ISSUER_RESPONSE_TIMEFRAME_EXPIRED changes nothing")
{
    inquiry_escalated_before(1);
}


/* --- the rules in SQL, against known values ------------------------------------- */

/* The parts dispute_split gives a checkout's orders for a dispute of
 * amount: "part,part,..." in line order.  The checkout is written and rolled
 * back in one transaction; refunded[i] of order i SUCCEEDED before. */
static char *
split_of(const char *amounts, const char *refunded, const char *amount)
{
    char        *parts;
    const char  *params[4];

    params[0] = uid("m");
    params[1] = amounts;
    params[2] = refunded;
    params[3] = amount;

    db_exec("BEGIN", 0, NULL);
    db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, expires_at) SELECT $1, 'co', 'mock', $1 || ':co',"
            " 'USD', sum(a), 'https://shop.example/s', 'https://shop.example/c',"
            " 'SUCCESS', 'r', now() FROM unnest($2::bigint[]) a", 2, params);
    db_exec("INSERT INTO payment_orders (merchant_id, payment_order_id,"
            " checkout_id, line_no, seller_account, amount, currency, status)"
            " SELECT $1, 'po' || i, 'co', i, 's' || i, a, 'USD', 'EXECUTING'"
            " FROM unnest($2::bigint[]) WITH ORDINALITY x(a, i)", 2, params);
    db_exec("UPDATE payment_orders SET status = 'SUCCESS', ledger_updated ="
            " true, wallet_updated = true WHERE merchant_id = $1", 1, params);
    db_exec("INSERT INTO refunds (merchant_id, refund_id, checkout_id,"
            " payment_order_id, psp, nonce, amount, currency, status,"
            " commission_part) SELECT $1, 'rf_' || lpad(i::text, 24, '0'),"
            " 'co', 'po' || i, 'mock', $1 || ':rf_' || lpad(i::text, 24, '0'), r,"
            " 'USD', 'SUCCEEDED',"
            " 0 FROM unnest($2::bigint[]) WITH ORDINALITY x(r, i) WHERE r > 0",
            2, (const char *[]) { params[0], params[2] });
    parts = db_scalar("SELECT string_agg(part::text, ',' ORDER BY"
                      " payment_order_id) FROM dispute_split($1, 'co',"
                      " $2::bigint)", 2,
                      (const char *[]) { params[0], params[3] });
    db_exec("ROLLBACK", 0, NULL);

    return parts;
}


Test(money_sql, a_dispute_is_split_within_what_each_order_has_left,
     .timeout = 30,
     .description = "dispute_split (sql/functions/dispute_split.sql): no "
                    "order's part exceeds its "
                    "amount less its refunds; only what exceeds every "
                    "order's room is split by the amounts")
{
    /* the floors' remainder does not land on a 1-unit order */
    cr_expect_str_eq(split_of("{333,333,1}", "{0,0,0}", "666"), "333,333,0");
    cr_expect_str_eq(split_of("{333,333,1}", "{0,0,0}", "667"), "333,333,1");
    /* in proportion when all fits */
    cr_expect_str_eq(split_of("{1000,500}", "{0,0}", "600"), "400,200");
    /* a fully refunded order takes none */
    cr_expect_str_eq(split_of("{1000,500}", "{1000,0}", "500"), "0,500");
    cr_expect_str_eq(split_of("{1000,500}", "{600,0}", "300"), "134,166");
    /* more than is left anywhere: the rest by the amounts */
    cr_expect_str_eq(split_of("{1000,500}", "{1000,500}", "300"), "200,100");
    cr_expect_str_eq(split_of("{1000,500}", "{1000,0}", "800"), "200,600");
}


Test(money_sql, the_commission_rule_and_its_refund_parts, .timeout = 30)
{
    size_t  i;
    struct {
        const char  *a, *bps, *fixed, *c;
    } t[] = {
        { "1000", "250", "30", "55" },
        { "500", "250", "30", "42" },
        { "1", "10000", "0", "1" },
        { "100", "0", "500", "100" },       /* never more than the order */
        { "999", "333", "0", "33" },
        { "9007199254740993", "10000", "0", "9007199254740993" },
    };

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const char  *params[] = { t[i].a, t[i].bps, t[i].fixed };

        cr_expect_str_eq(db_scalar("SELECT commission_of($1::bigint, "
                                   "$2::int, $3::bigint)", 3, params),
                         t[i].c, "%s %s %s", t[i].a, t[i].bps, t[i].fixed);
    }
    /* a missing argument gives no commission at all, never the whole
     * amount (LEAST skips a NULL) */
    cr_expect_str_eq(db_scalar("SELECT concat_ws(',', coalesce(commission_of(1000, NULL, 30)::text, 'null'),"
                               " coalesce(commission_of(1000, 250, NULL)::text, 'null'),"
                               " coalesce(commission_of(NULL, 250, 30)::text, 'null'))", 0, NULL),
                     "null,null,null");

    /* refunds in any pieces give the commission back whole: 1000 with
     * commission 55, refunded 1 + 333 + 333 + 333 */
    cr_expect_str_eq(db_scalar("SELECT commission_refund_part(1000, 55, 0, 1)"
                               " + commission_refund_part(1000, 55, 1, 333)"
                               " + commission_refund_part(1000, 55, 334, 333)"
                               " + commission_refund_part(1000, 55, 667, 333)",
                               0, NULL), "55");

    /* and over many random splits */
    cr_expect_str_eq(db_scalar(
        "WITH s AS (SELECT g, (random() * 9 + 1)::int AS n FROM "
        "generate_series(1, 300) g), c AS (SELECT g, (random() * 100000 + "
        "1)::bigint AS a, (random() * 10000)::int AS bps FROM "
        "generate_series(1, 300) g), cut AS (SELECT c.g, c.a, "
        "commission_of(c.a, c.bps, 7) AS cm, k, "
        "CASE WHEN k = s.n THEN c.a ELSE (c.a * k / s.n) END AS upto "
        "FROM c JOIN s USING (g), LATERAL generate_series(1, s.n) k), "
        "parts AS (SELECT g, a, cm, upto - coalesce(lag(upto) OVER (PARTITION "
        "BY g ORDER BY k), 0) AS r, coalesce(lag(upto) OVER (PARTITION BY g "
        "ORDER BY k), 0) AS before FROM cut) "
        "SELECT count(*) FROM (SELECT g, cm, sum(commission_refund_part(a, cm, "
        "before, r)) AS back FROM parts GROUP BY g, cm) x WHERE back <> cm",
        0, NULL), "0");
}


/* --- refund events: parts, reversals, other objects; disputes racing refunds */

/* A PENDING refund of amount on p's order, written as pay_refund_claim
 * writes it (under the order's lock, refunds_within_capture): its id. */
static char *
rf_pending(const paid_t *p, int order, long amount)
{
    char        *id;
    const char  *params[5];

    id = q1("SELECT 'rf_' || encode(gen_random_bytes_compat(12), 'hex')",
            NULL, NULL);
    params[0] = p->m.id;
    params[1] = id;
    params[2] = p->co;
    params[3] = p->po[order];
    params[4] = str_printf("%ld", amount);

    db_exec("INSERT INTO refunds (merchant_id, refund_id, checkout_id,"
            " payment_order_id, psp, nonce, amount, currency, status)"
            " SELECT $1, $2, $3, $4, psp, $1 || ':' || $2, $5::bigint, 'USD',"
            " 'PENDING' FROM checkouts WHERE merchant_id = $1 AND"
            " checkout_id = $3", 5, params);

    return id;
}


/* The PSP's event about refund id (its object "re_<id>" unless object),
 * applied as the webhook handler applies a verified one: its outcome. */
static char *
rf_event(const paid_t *p, const char *id, const char *kind, long amount,
    const char *object)
{
    const char  *params[6];

    params[0] = p->psp;
    params[1] = uid("evt");
    params[2] = kind;
    params[3] = str_printf("%s:%s", p->m.id, id);
    params[4] = str_printf("%ld", amount);
    params[5] = object ? object : str_printf("re_%s", id + 3);

    return db_scalar("SELECT outcome FROM pay_event_apply($1, $2, $3, $3,"
                     " NULL, $4, $5::bigint, 'USD', NULL, $6, NULL)", 6, params);
}


/* What the order's SUCCEEDED refunds gave back of the commission, and of
 * the seller's share, as "commission,seller". */
static char *
given_back(const paid_t *p, int order)
{
    return q1("SELECT coalesce(sum(commission_part), 0) || ',' ||"
              " coalesce(sum(amount - commission_part), 0) FROM refunds"
              " WHERE merchant_id = $1 AND payment_order_id = $2 AND"
              " status = 'SUCCEEDED'", p->m.id, p->po[order]);
}


/* 0..n-1: xorshift64*, from a fixed seed, so that every run plays the
 * same sequences */
static long
rf_rand(uint64_t *x, long n)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;

    return (long) ((*x * 0x2545f4914f6cdd1dULL >> 11) % (uint64_t) n);
}


Test(money_refund_parts, refunds_undone_never_give_back_more_commission,
     .timeout = 60,
     .description = "a 10.00 order at 50%: six refunds of 0.01, the three "
                    "whose part was 0 undone after they succeeded, three "
                    "more: 0.03 of commission given back, as taken; the "
                    "standing refunds' amounts alone gave 0.05")
{
    int      i;
    char    *id[6], *back;
    long     part;
    paid_t   p;

    paid_new(&p, money_psp(2), "5000", NULL);
    cr_assert_eq(ql("SELECT commission FROM payment_orders WHERE"
                    " merchant_id = $1 AND payment_order_id = $2", p.m.id,
                    p.po[0]), 500);

    for (i = 0; i < 6; i++) {
        id[i] = rf_pending(&p, 0, 1);
        cr_assert_str_eq(rf_event(&p, id[i], "REFUND_SUCCEEDED", 1, NULL),
                         "applied");
    }

    cr_assert_str_eq(given_back(&p, 0), "3,3");

    for (i = 0; i < 6; i++) {
        part = ql("SELECT commission_part FROM refunds WHERE merchant_id ="
                  " $1 AND refund_id = $2", p.m.id, id[i]);
        if (part == 0) {
            cr_assert_str_eq(rf_event(&p, id[i], "REFUND_FAILED", 1, NULL),
                             "applied");
        }
    }

    cr_assert_str_eq(given_back(&p, 0), "3,0");

    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rf_event(&p, rf_pending(&p, 0, 1),
                                  "REFUND_SUCCEEDED", 1, NULL), "applied");
    }

    back = given_back(&p, 0);
    cr_expect_str_eq(back, "3,3", "commission,seller given back of 6");

    /* the rest of the order: exactly the commission and the seller's net */
    cr_assert_str_eq(rf_event(&p, rf_pending(&p, 0, 994),
                              "REFUND_SUCCEEDED", 994, NULL), "applied");
    cr_expect_str_eq(given_back(&p, 0), "500,500");
    cr_expect_eq(wallet(&p.m, "seller_1"), 0);
    expect_books_balance(&p.m);
}


Test(money_refund_parts,
     parts_over_random_refunds_failures_and_reversals_never_pass_the_commission,
     .timeout = 120,
     .description = "random sequences of refunds that succeed, refunds the "
                    "PSP refuses and refunds undone after they succeeded, "
                    "applied by refund_event_apply: the commission given "
                    "back never exceeds the order's, the seller's share "
                    "never its net, and refunding the rest gives back "
                    "both exactly")
{
    int       round, step, n, k, undone;
    long      r, left, c, a, part, sum;
    char     *standing[64], *id, *back;
    long      amt[64];
    paid_t    p;
    uint64_t  x = 0x9e3779b97f4a7c15ULL;

    for (round = 0; round < 6; round++) {
        paid_new(&p, money_psp(round % 3), round % 2 ? "3333" : "5000",
                 round % 3 == 2 ? "USD:7" : NULL);
        a = ql("SELECT amount FROM payment_orders WHERE merchant_id = $1 AND"
               " payment_order_id = $2", p.m.id, p.po[1]);
        c = ql("SELECT commission FROM payment_orders WHERE merchant_id = $1"
               " AND payment_order_id = $2", p.m.id, p.po[1]);
        n = 0;
        undone = 0;
        left = a;

        for (step = 0; step < 60; step++) {
            if (n > 0 && rf_rand(&x, 3) == 0) {
                /* one that succeeded fails at the PSP after all */
                k = (int) rf_rand(&x, n);
                cr_assert_str_eq(rf_event(&p, standing[k], "REFUND_FAILED",
                                          amt[k], NULL), "applied");
                left += amt[k];
                standing[k] = standing[n - 1];
                amt[k] = amt[--n];
                undone++;

            } else if (left > 0 && n < 64) {
                r = rf_rand(&x, 2) ? 1 : 1 + rf_rand(&x, left);
                r = r > 40 ? 1 + r % 40 : r;
                id = rf_pending(&p, 1, r);

                if (rf_rand(&x, 4) == 0) {
                    /* refused by the PSP: nothing booked */
                    cr_assert_str_eq(rf_event(&p, id, "REFUND_FAILED", r,
                                              NULL), "applied");
                    continue;
                }

                cr_assert_str_eq(rf_event(&p, id, "REFUND_SUCCEEDED", r,
                                          NULL), "applied");
                standing[n] = id;
                amt[n++] = r;
                left -= r;
            }

            back = given_back(&p, 1);
            part = atol(back);
            sum = atol(strchr(back, ',') + 1);
            cr_assert(part <= c && sum <= a - c, "%s: order %ld commission "
                      "%ld, given back %s (step %d)", p.psp, a, c, back,
                      step);
        }

        if (left > 0) {
            cr_assert_str_eq(rf_event(&p, rf_pending(&p, 1, left),
                                      "REFUND_SUCCEEDED", left, NULL),
                             "applied");
        }

        cr_expect_str_eq(given_back(&p, 1), str_printf("%ld,%ld", c, a - c),
                         "%s: %d refunds undone", p.psp, undone);
        cr_expect_eq(wallet(&p.m, "seller_2"), 0, "%s", p.psp);
        expect_books_balance(&p.m);
    }
}


Test(money_refund_parts, a_refund_event_about_another_psp_refund_is_alerted,
     .timeout = 60,
     .description = "a refund event naming our nonce and another PSP refund "
                    "than the one stored (the PSP made a second refund): "
                    "object_mismatch, stored, nothing booked; never a "
                    "silent already")
{
    char    *id, *evt;
    long     w;
    paid_t   p;

    paid_new(&p, money_psp(1), "1000", NULL);
    id = rf_pending(&p, 0, 400);
    cr_assert_str_eq(rf_event(&p, id, "REFUND_SUCCEEDED", 400, "re_first"),
                     "applied");
    w = wallet(&p.m, "seller_1");

    evt = uid("evt");
    cr_expect_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, $2,"
                               " 'REFUND_SUCCEEDED', 'REFUND', NULL,"
                               " $3, 400, 'USD', NULL, 're_second', NULL)", 3,
                               (const char *[]) { p.psp, evt,
                                   str_printf("%s:%s", p.m.id, id) }),
                     "object_mismatch");
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "object_mismatch");
    cr_expect_str_eq(rf_event(&p, id, "REFUND_FAILED", 400, "re_second"),
                     "object_mismatch");

    /* the one stored: as before */
    cr_expect_str_eq(rf_event(&p, id, "REFUND_SUCCEEDED", 400, "re_first"),
                     "already");
    cr_expect_eq(wallet(&p.m, "seller_1"), w);
    expect_books_balance(&p.m);
}


/* A refund of the whole first order, written and not yet committed on
 * one connection, while the dispute of the checkout is applied on another
 * (pay_event_apply, as a webhook): then the refund commits. */
static char *
dispute_while_refunding(const paid_t *p, long dispute, PGconn *rf,
    PGconn *dp)
{
    char        *outcome;
    PGresult    *res;
    const char  *params[4];

    OK0(rf, "BEGIN");
    params[0] = p->m.id;
    params[1] = q1("SELECT 'rf_' || encode(gen_random_bytes_compat(12),"
                   " 'hex')", NULL, NULL);
    params[2] = p->co;
    params[3] = p->po[0];
    OK(rf, "INSERT INTO refunds (merchant_id, refund_id, checkout_id,"
       " payment_order_id, psp, nonce, amount, currency, status) SELECT $1,"
       " $2, $3, $4, psp, $1 || ':' || $2, 1000, 'USD', 'PENDING' FROM"
       " checkouts WHERE merchant_id = $1 AND checkout_id = $3",
       params[0], params[1], params[2], params[3]);

    {
        const char  *dparams[4] = { p->psp, uid("evt"),
                                    str_printf("%ld", dispute),
                                    payment_ref_of(p) };

        cr_assert(PQsendQueryParams(dp, "SELECT outcome FROM pay_event_apply"
                                    "($1, $2, 'DISPUTE_OPENED', 'dispute',"
                                    " NULL, NULL, $3::bigint, 'USD', $4,"
                                    " 'du_' || $2, NULL)", 4, NULL, dparams,
                                    NULL, NULL, 0) == 1, "%s",
                  PQerrorMessage(dp));
    }

    msleep(500);
    OK0(rf, "COMMIT");

    res = PQgetResult(dp);
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "%s",
              PQresultErrorMessage(res));
    outcome = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    while ((res = PQgetResult(dp)) != NULL) {
        PQclear(res);
    }

    /* the refund the PSP never saw: failed, its amount free again */
    cr_assert_str_eq(rf_event(p, params[1], "REFUND_FAILED", 1000, ""),
                     "applied");

    return outcome;
}


Test(money_refund_parts, a_dispute_racing_a_refund_never_lands_on_the_refunded_order,
     .timeout = 60,
     .description = "a dispute applied while a refund of a whole order "
                    "commits: the split waits for the orders' locks and "
                    "sees the refund, so the refunded order takes no part")
{
    PGconn  *a, *b;
    paid_t   p;

    paid_new(&p, money_psp(0), NULL, NULL);
    a = sqlt_connect();
    b = sqlt_connect();

    cr_assert_str_eq(dispute_while_refunding(&p, 500, a, b), "applied");
    cr_expect_str_eq(q1("SELECT string_agg(dp.amount::text, ',' ORDER BY"
                        " dp.payment_order_id) FROM dispute_parts dp WHERE"
                        " dp.merchant_id = $1", p.m.id, NULL), "0,500",
                     "the parts of the dispute, first order refunded whole");
    expect_books_balance(&p.m);

    PQfinish(a);
    PQfinish(b);
}


/* --- Stripe's current events: what the gateway ignores pages nobody ----- */

/* A Stripe event of type about object (JSON), signed as Stripe signs it
 * and posted to the gateway's webhook: its event id. */
static char *
stripe_event(const char *type, const char *object)
{
    char        *evt, *body;
    resp_t      *r;
    req_t        rq;
    const char  *h[3];

    evt = uid("evt");
    body = str_printf("{\"id\":\"%s\",\"object\":\"event\",\"api_version\":"
                      "\"2024-06-20\",\"type\":\"%s\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":%s}}", evt,
                      type, (long) time(NULL), object);

    h[0] = "Content-Type: application/json";
    h[1] = stripe_signature(NULL, (long) time(NULL), body);
    h[2] = NULL;

    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/webhooks/%s", money_psp(0)));
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "%s: %ld %s", type, r->status, r->body);

    return evt;
}


/* The gateway's error log lines naming evt at a level in levels ("[alert]
 * [error]"), joined, or NULL when there are none. */
static char *
log_lines_of(const char *evt, const char *const *levels)
{
    char        *log, *line, *save, *found;
    size_t       i;

    log = file_read(run_file("logs/error.log"), NULL);
    cr_assert_not_null(log);
    found = NULL;

    for (line = strtok_r(log, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
    {
        if (strstr(line, evt) == NULL) {
            continue;
        }

        for (i = 0; levels[i] != NULL; i++) {
            if (strstr(line, levels[i]) != NULL) {
                found = str_printf("%s%s\n", found ? found : "", line);
            }
        }
    }

    return found;
}


/* A Stripe transfer of payout id (the stored tr_ and our nonce), as
 * transfer.reversed sends it. */
static char *
transfer_reversed(const paid_t *p, const char *id, const char *tr,
    int whole, long reversed)
{
    return stripe_event("transfer.reversed",
        str_printf("{\"id\":\"%s\",\"object\":\"transfer\",\"amount\":750,"
                   "\"currency\":\"usd\",\"destination\":\"%s\","
                   "\"reversed\":%s,\"amount_reversed\":%ld,"
                   "\"metadata\":{\"nonce\":\"%s:%s\"}}", tr,
                   money_destination(0), whole ? "true" : "false", reversed,
                   p->m.id, id));
}


Test(money_events, a_stripe_transfer_reversed_in_part_is_booked_once,
     .timeout = 60,
     .description = "transfer.reversed with reversed false (part of a paid "
                    "pay-out taken back): its amount_reversed is booked back "
                    "to the seller's wallet by what it grew, once; the "
                    "whole reversal later books the rest")
{
    char    *id, *tr, *evt;
    resp_t  *r;
    paid_t   p;

    paid_new(&p, money_psp(0), NULL, NULL);
    seller_add(&p.m, "seller_1", p.psp, money_destination(0));
    r = payout(&p, "seller_1", "7.50", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "payout_id")));
    (void) payout_becomes(&p, id, "PAID");
    cr_assert_eq(wallet(&p.m, "seller_1"), 250);
    tr = q1("SELECT psp_payout_id FROM payouts WHERE merchant_id = $1 AND"
            " payout_id = $2", p.m.id, id);
    cr_assert_not_null(tr);

    /* 3.00 of it taken back: in the wallet again, the pay-out still PAID */
    evt = transfer_reversed(&p, id, tr, 0, 300);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "applied");
    cr_expect_eq(wallet(&p.m, "seller_1"), 550, "%s", p.psp);
    cr_expect_str_eq(q1("SELECT status || ':' || amount_reversed FROM payouts"
                        " WHERE merchant_id = $1 AND payout_id = $2",
                        p.m.id, id), "PAID:300");
    expect_books_balance(&p.m);

    /* the same reversal told again (another event, the same total) */
    evt = transfer_reversed(&p, id, tr, 0, 300);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "already");
    cr_expect_eq(wallet(&p.m, "seller_1"), 550, "%s", p.psp);

    /* 2.00 more: 5.00 in all */
    evt = transfer_reversed(&p, id, tr, 0, 500);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "applied");
    cr_expect_eq(wallet(&p.m, "seller_1"), 750, "%s", p.psp);

    /* then the whole of it: the rest, 2.50, and FAILED */
    evt = transfer_reversed(&p, id, tr, 1, 750);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "applied");
    (void) payout_becomes(&p, id, "FAILED");
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000, "%s", p.psp);
    cr_expect_eq(ql("SELECT coalesce(sum(amount), 0) FROM ledger_entries"
                    " WHERE merchant_id = $1 AND account LIKE"
                    " 'psp\\_clearing:%'", p.m.id, NULL), 1500);
    expect_books_balance(&p.m);

    /* a partial one late, after the whole: nothing more */
    evt = transfer_reversed(&p, id, tr, 0, 500);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "already");
    cr_expect_eq(wallet(&p.m, "seller_1"), 1000, "%s", p.psp);
}


/* The deliveries of that type to ep answered 204 (a new array). */
static json_t *
delivered_of_type(const endpoint_t *ep, const char *type)
{
    size_t   i;
    json_t  *ds, *d, *out;

    ds = receiver_deliveries(ep->name);
    out = json_array();

    json_array_foreach(ds, i, d) {
        if (strcmp(json_string_value(json_object_get(d, "type")), type) == 0
            && strcmp(json_string_value(json_object_get(d, "answer")), "204")
               == 0)
        {
            json_array_append(out, d);
        }
    }

    json_decref(ds);

    return out;
}


/* Waits until a delivery of that type to ep was answered 204: its data. */
static json_t *
delivered_data(const endpoint_t *ep, const char *type)
{
    int      i;
    json_t  *ds;

    for (i = 0; i < 150; i++) {
        ds = delivered_of_type(ep, type);

        if (json_array_size(ds) > 0) {
            return json_object_get(json_array_get(ds, 0), "data");
        }

        msleep(100);
    }

    cr_assert_fail("no %s delivered to %s: %s", type, ep->path,
                   dump(receiver_deliveries(ep->name)));
    return NULL;
}


/* GET /v1/payouts/{id}'s member key, a string */
static const char *
payout_member(const paid_t *p, const char *id, const char *key)
{
    resp_t      *r;
    const char  *v;

    r = api_get(&p->m, str_printf("/v1/payouts/%s", id));
    cr_assert_eq(r->status, 200, "%s", r->body);
    v = json_string_value(json_object_get(resp_json(r), key));
    cr_assert_not_null(v, "no %s in %s", key, r->body);

    return v;
}


Test(money_payouts, a_payout_reversed_in_part_is_shown_and_notified_once,
     .timeout = 60,
     .description = "Stripe's transfer.reversed with reversed false: GET "
                    "/v1/payouts/{id} and the list show amount_reversed, "
                    "payout.reversed is sent once per growth (never for the "
                    "same total told again), and the whole reversal later "
                    "is payout.failed alone")
{
    char        *id, *tr, *evt;
    json_t      *data, *item;
    resp_t      *r;
    paid_t       p;
    endpoint_t   ep;

    paid_new(&p, money_psp(0), NULL, NULL);
    endpoint_add(&p.m, "payout.paid,payout.reversed,payout.failed", &ep);
    seller_add(&p.m, "seller_1", p.psp, money_destination(0));
    r = payout(&p, "seller_1", "7.50", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "payout_id")));
    (void) payout_becomes(&p, id, "PAID");
    (void) delivered_data(&ep, "payout.paid");
    cr_expect_str_eq(payout_member(&p, id, "amount_reversed"), "0.00");
    tr = q1("SELECT psp_payout_id FROM payouts WHERE merchant_id = $1 AND"
            " payout_id = $2", p.m.id, id);
    cr_assert_not_null(tr);

    /* 2.50 of it taken back: shown beside its whole amount, still PAID */
    evt = transfer_reversed(&p, id, tr, 0, 250);
    cr_assert_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "applied");
    cr_expect_str_eq(payout_member(&p, id, "status"), "PAID");
    cr_expect_str_eq(payout_member(&p, id, "amount"), "7.50");
    cr_expect_str_eq(payout_member(&p, id, "amount_reversed"), "2.50");

    r = api_get(&p.m, "/v1/payouts?status=paid");
    cr_assert_eq(r->status, 200, "%s", r->body);
    item = json_array_get(json_object_get(resp_json(r), "data"), 0);
    cr_assert_not_null(item, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(item, "payout_id")),
                     id);
    cr_expect_str_eq(json_string_value(json_object_get(item,
                                                       "amount_reversed")),
                     "2.50", "%s", r->body);

    /* the shop is told: what was taken back so far, in all */
    data = delivered_data(&ep, "payout.reversed");
    cr_expect_str_eq(json_string_value(json_object_get(data, "payout_id")),
                     id, "%s", dump(data));
    cr_expect_str_eq(json_string_value(json_object_get(data,
                                                       "seller_account")),
                     "seller_1");
    cr_expect_str_eq(json_string_value(json_object_get(data, "status")),
                     "PAID");
    cr_expect_str_eq(json_string_value(json_object_get(data, "amount")),
                     "7.50");
    cr_expect_eq(json_integer_value(json_object_get(data, "amount_minor")),
                 750);
    cr_expect_str_eq(json_string_value(json_object_get(data, "currency")),
                     "USD");
    cr_expect_str_eq(json_string_value(json_object_get(data,
                                                       "amount_reversed")),
                     "2.50", "%s", dump(data));
    cr_expect_eq(json_integer_value(json_object_get(data,
                                                    "amount_reversed_minor")),
                 250, "%s", dump(data));
    cr_expect(json_is_object(json_object_get(data, "metadata")), "%s",
              dump(data));
    cr_expect_eq(json_integer_value(json_object_get(data, "sequence")), 2,
                 "after its payout.paid: %s", dump(data));

    /* the same reversal delivered again: nothing booked, nothing sent */
    evt = transfer_reversed(&p, id, tr, 0, 250);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "already");
    cr_expect_str_eq(payout_member(&p, id, "amount_reversed"), "2.50");

    /* then the whole of it: payout.failed alone, nothing "reversed" more */
    evt = transfer_reversed(&p, id, tr, 1, 750);
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "applied");
    (void) payout_becomes(&p, id, "FAILED");
    cr_expect_str_eq(payout_member(&p, id, "amount_reversed"), "7.50");
    data = delivered_data(&ep, "payout.failed");
    cr_expect_eq(json_integer_value(json_object_get(data, "sequence")), 3,
                 "%s", dump(data));

    /* a few delivery rounds later: one of each, nothing else queued */
    msleep(1500);
    cr_expect_eq(json_array_size(delivered_of_type(&ep, "payout.paid")), 1);
    cr_expect_eq(json_array_size(delivered_of_type(&ep, "payout.reversed")),
                 1, "%s", dump(receiver_deliveries(ep.name)));
    cr_expect_eq(json_array_size(delivered_of_type(&ep, "payout.failed")), 1);
    cr_expect_eq(json_array_size(receiver_deliveries(ep.name)), 3, "%s",
                 dump(receiver_deliveries(ep.name)));
    cr_expect_eq(ql("SELECT count(*) FROM notifications WHERE merchant_id = $1"
                    " AND object_id = $2", p.m.id, id), 3);
}


Test(money_events, a_stripe_refund_in_current_event_shapes_pages_nobody,
     .timeout = 60,
     .description = "a whole refund and a dispute's balance movements with "
                    "Stripe's current events (charge.refunded without its "
                    "refunds list, a chargeback's created and "
                    "funds_withdrawn, funds_reinstated, ...): recorded as "
                    "applied once, ignored or already, no line at alert or "
                    "error; a refund event "
                    "about another Stripe refund is alerted")
{
    size_t       i;
    char        *id, *re, *pi, *nonce_s, *refund_obj, *evt, *lines;
    double       mismatches;
    paid_t       p;
    const char  *bad[] = { "[alert]", "[error]", NULL };
    const char  *alert[] = { "[alert]", NULL };
    struct {
        const char  *type;
        const char  *object;
        const char  *outcome;
        char        *evt;
    } ev[8];

    paid_new(&p, money_psp(0), NULL, NULL);
    id = refund_ok(&p, 0, "10.00");
    expect_refund_becomes(&p, 0, id, "SUCCEEDED");

    re = q1("SELECT psp_refund_id FROM refunds WHERE merchant_id = $1 AND"
            " refund_id = $2", p.m.id, id);
    cr_assert_not_null(re);
    pi = payment_ref_of(&p);
    nonce_s = str_printf("%s:%s", p.m.id, id);
    refund_obj = str_printf("{\"id\":\"%s\",\"object\":\"refund\",\"amount\":"
                            "1000,\"currency\":\"usd\",\"payment_intent\":"
                            "\"%s\",\"status\":\"succeeded\",\"metadata\":"
                            "{\"nonce\":\"%s\"}}", re, pi, nonce_s);

    i = 0;
    ev[i++] = (typeof(ev[0])) { "refund.created", refund_obj, "already",
                                NULL };
    ev[i++] = (typeof(ev[0])) { "charge.refunded",
        str_printf("{\"id\":\"ch_%s\",\"object\":\"charge\",\"amount\":1500,"
                   "\"amount_refunded\":1000,\"currency\":\"usd\","
                   "\"payment_intent\":\"%s\",\"refunded\":false}", p.co, pi),
        "ignored", NULL };
    ev[i++] = (typeof(ev[0])) { "refund.updated", refund_obj, "already",
                                NULL };
    /* a chargeback: opened by created, booked once (its funds_withdrawn
     * is the same withdrawal) */
    ev[i++] = (typeof(ev[0])) { "charge.dispute.created",
        str_printf("{\"id\":\"du_%s\",\"object\":\"dispute\",\"amount\":500,"
                   "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                   "\"status\":\"needs_response\"}", p.co, pi),
        "applied", NULL };
    ev[i++] = (typeof(ev[0])) { "charge.dispute.funds_withdrawn",
        str_printf("{\"id\":\"du_%s\",\"object\":\"dispute\",\"amount\":500,"
                   "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                   "\"status\":\"needs_response\"}", p.co, pi),
        "already", NULL };
    ev[i++] = (typeof(ev[0])) { "charge.dispute.updated",
        str_printf("{\"id\":\"du_%s\",\"object\":\"dispute\",\"amount\":500,"
                   "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                   "\"status\":\"under_review\"}", p.co, pi),
        "ignored", NULL };
    ev[i++] = (typeof(ev[0])) { "charge.dispute.funds_reinstated",
        str_printf("{\"id\":\"du_%s\",\"object\":\"dispute\",\"amount\":500,"
                   "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                   "\"status\":\"won\"}", p.co, pi),
        "ignored", NULL };
    ev[i++] = (typeof(ev[0])) { "payment_intent.succeeded",
        str_printf("{\"id\":\"%s\",\"object\":\"payment_intent\",\"amount\":"
                   "1500,\"currency\":\"usd\",\"status\":\"succeeded\"}", pi),
        "ignored", NULL };

    for (i = 0; i < 8; i++) {
        ev[i].evt = stripe_event(ev[i].type, ev[i].object);
    }

    /* over shards, an event about its object alone (ignored) is kept on
     * the home shard, a; the others on the merchant's (db()) */
    for (i = 0; i < 8; i++) {
        cr_expect_str_eq(db_scalar_on(shards_n() > 1
                                      && strcmp(ev[i].outcome, "ignored") == 0
                                      ? db_shard("a") : db(),
                                      "SELECT outcome FROM webhook_events "
                                      "WHERE psp = $1 AND event_id = $2", 2,
                                      (const char *[]) { p.psp, ev[i].evt }),
                         ev[i].outcome, "%s", ev[i].type);
        lines = log_lines_of(ev[i].evt, bad);
        cr_expect_null(lines, "%s: %s", ev[i].type, lines);
    }

    cr_expect_eq(wallet(&p.m, "seller_1"), 0);
    expect_books_balance(&p.m);

    /* another refund at Stripe under our nonce: alerted and counted */
    mismatches = metric_value(NULL, str_printf("payments_webhook_events_total"
                              "{psp=\"%s\",outcome=\"object_mismatch\"}",
                              p.psp));
    evt = stripe_event("refund.updated",
        str_printf("{\"id\":\"%s_2\",\"object\":\"refund\",\"amount\":1000,"
                   "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                   "\"status\":\"succeeded\",\"metadata\":{\"nonce\":"
                   "\"%s\"}}", re, pi, nonce_s));
    cr_expect_str_eq(q1("SELECT outcome FROM webhook_events WHERE psp = $1"
                        " AND event_id = $2", p.psp, evt), "object_mismatch");
    lines = log_lines_of(evt, alert);
    cr_expect(lines != NULL && strstr(lines, "object_mismatch") != NULL,
              "no alert for %s", evt);
    cr_expect_geq(metric_value(NULL, str_printf("payments_webhook_events_total"
                               "{psp=\"%s\",outcome=\"object_mismatch\"}",
                               p.psp)), (mismatches < 0 ? 0 : mismatches) + 1,
                  "object_mismatch is not counted apart in /metrics");
}


/* --- the invariants over many payments ------------------------------------------ */

#define MI_CHECKOUTS  500       /* a third per dialect, two orders each:
                                   1,000 payment orders */
#define MI_SELLERS    4

static const char  *mi_sellers[MI_SELLERS] = { "s_a", "s_b", "s_c", "s_d" };


static req_t
mi_req(const merchant_t *m, const char *path, const char *key,
    const char *body)
{
    req_t         rq;
    const char  **h;

    h = calloc(4, sizeof(char *));
    h[0] = str_printf("Authorization: Bearer %s", m->key);
    h[1] = str_printf("Idempotency-Key: %s", key);
    h[2] = "Content-Type: application/json";

    rq.method = "POST";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return rq;
}


static long
mi_count(const char *sql, const char *ids)
{
    return ql(sql, ids, NULL);
}


/* All at once, then again with the same keys for the answers that may
 * heal (502, 503, 504, 409 in use), as a shop would: the final answers. */
static resp_t **
mi_send(req_t *rqs, size_t n)
{
    int       round;
    size_t    i, k;
    req_t    *again;
    size_t   *at;
    resp_t  **rs, **rs2;

    rs = http_many(rqs, n, 32);
    again = calloc(n, sizeof(req_t));
    at = calloc(n, sizeof(size_t));
    cr_assert(again != NULL && at != NULL);

    for (round = 0; round < 10; round++) {
        k = 0;

        for (i = 0; i < n; i++) {
            if (rs[i]->status == 502 || rs[i]->status == 503
                || rs[i]->status == 504 || rs[i]->status == 409)
            {
                again[k] = rqs[i];
                at[k++] = i;
            }
        }

        if (k == 0) {
            break;
        }

        msleep(500);
        rs2 = http_many(again, k, 32);

        for (i = 0; i < k; i++) {
            rs[at[i]] = rs2[i];
        }
    }

    free(again);
    free(at);

    return rs;
}


/* Every refund and pay-out settled (none PENDING), every dispute closed. */
static void
mi_settle(const char *ids)
{
    int  i;

    for (i = 0; i < 300; i++) {
        if (mi_count("SELECT (SELECT count(*) FROM refunds WHERE merchant_id "
                     "= ANY($1::text[]) AND status = 'PENDING') + (SELECT "
                     "count(*) FROM payouts WHERE merchant_id = ANY($1::text[])"
                     " AND status = 'PENDING')", ids) == 0)
        {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("refunds or pay-outs still PENDING after 30 s");
}


Test(solo_money_invariants,
     refunds_disputes_commission_and_payouts_keep_the_books,
     .timeout = 300)
{
    size_t       i, k, n, nrq, created;
    char        *ids, *body, *key;
    json_t      *co, *orders, *o;
    resp_t     **rs;
    req_t       *rqs;
    merchant_t   m[2];
    char       **tokens, **cos;
    const char  *args[] = { "set-commission", "--id", NULL, "--bps", "175",
                            "--fixed-minor", "USD:20", NULL };
    char        *out;

    for (k = 0; k < 2; k++) {
        merchant_new(&m[k]);
        args[2] = m[k].id;
        cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);

        for (i = 0; i < MI_SELLERS; i++) {
            for (n = 0; n < 3; n++) {
                seller_add(&m[k], mi_sellers[i], money_psp(n),
                           money_destination(n));
            }
        }
    }

    ids = str_printf("{%s,%s}", m[0].id, m[1].id);

    /* 1. checkouts: two orders of varied amounts, two sellers each */
    rqs = calloc(MI_CHECKOUTS * 8, sizeof(req_t));
    tokens = calloc(MI_CHECKOUTS, sizeof(char *));
    cos = calloc(MI_CHECKOUTS, sizeof(char *));
    cr_assert(rqs != NULL && tokens != NULL && cos != NULL);

    for (i = 0; i < MI_CHECKOUTS; i++) {
        cos[i] = uid("mi");
        orders = json_array();

        for (k = 0; k < 2; k++) {
            o = json_pack("{s:s, s:s, s:s, s:s}",
                          "payment_order_id",
                          str_printf("%s_p%zu", cos[i], k + 1),
                          "seller_account", mi_sellers[(i + k) % MI_SELLERS],
                          "amount", str_printf("%zu.%02zu", 4 + i % 17,
                                               (i * 37 + k * 11) % 100),
                          "currency", "USD");
            json_array_append_new(orders, o);
        }

        co = json_pack("{s:s, s:o, s:s, s:s, s:s}", "checkout_id", cos[i],
                       "payment_orders", orders,
                       "success_url", SHOP_ORIGIN "/thanks",
                       "cancel_url", SHOP_ORIGIN "/cart",
                       "psp", money_psp(i % 3));
        rqs[i] = mi_req(&m[i % 2], "/v1/payments", uid("mik"), dump(co));
        json_decref(co);
    }

    rs = mi_send(rqs, MI_CHECKOUTS);

    for (i = 0; i < MI_CHECKOUTS; i++) {
        cr_assert_eq(rs[i]->status, 201, "%s", rs[i]->body);
        tokens[i] = strdup(json_string_value(json_object_get(
                               resp_json(rs[i]), "psp_token")));
        mock_pay(tokens[i]);
    }

    for (i = 0; i < 300; i++) {
        if (mi_count("SELECT count(*) FROM checkouts WHERE merchant_id = "
                     "ANY($1::text[]) AND (status <> 'SUCCESS' OR "
                     "psp_payment_ref IS NULL)", ids) == 0)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(mi_count("SELECT count(*) FROM checkouts WHERE merchant_id "
                          "= ANY($1::text[]) AND status = 'SUCCESS' AND "
                          "psp_payment_ref IS NOT NULL", ids), MI_CHECKOUTS);

    /* 2. refunds, all at once: on every order 1.00, 2.50 and 99.00 (the
     * last always beyond the capture), two orders in three */
    nrq = 0;

    for (i = 0; i < MI_CHECKOUTS; i++) {
        for (k = 0; k < 2; k++) {
            if ((i + k) % 3 == 0) {
                continue;
            }

            for (n = 0; n < 3; n++) {
                body = str_printf("{\"amount\":\"%s\"}",
                                  n == 0 ? "1.00" : n == 1 ? "2.50" : "99.00");
                rqs[nrq++] = mi_req(&m[i % 2],
                                    str_printf("/v1/payments/%s_p%zu/refunds",
                                               cos[i], k + 1),
                                    uid("mir"), body);
            }
        }
    }

    rs = mi_send(rqs, nrq);
    created = 0;

    for (i = 0; i < nrq; i++) {
        if (rs[i]->status == 201) {
            created++;
        } else {
            expect_problem(rs[i], 422, "refund_exceeds_captured");
        }
    }

    cr_expect_eq(created, nrq / 3 * 2, "every 1.00 and 2.50 fits, no 99.00");

    /* 3. disputes: every tenth checkout, 2.00, won or lost in turn */
    for (i = 0; i < MI_CHECKOUTS; i += 10) {
        paid_t  p;
        char   *d;

        memset(&p, 0, sizeof(p));
        p.m = m[i % 2];
        p.co = cos[i];
        d = dispute_open(&p, 200);
        msleep(50);
        dispute_close(d, (i / 10) % 2 ? "won" : "lost");
    }

    mi_settle(ids);
    msleep(1500);       /* the disputes' last events */

    /* 4. pay-outs: each seller's available balance at each PSP, in three
     * concurrent parts and one more cent than that */
    nrq = 0;

    for (k = 0; k < 2; k++) {
        for (i = 0; i < MI_SELLERS; i++) {
            long  avail, part;

            avail = ql("SELECT available FROM seller_available($1, $2, 'USD')",
                       m[k].id, mi_sellers[i]);
            part = avail / 3;

            for (n = 0; n < 3 && part > 0; n++) {
                key = uid("mip");
                rqs[nrq++] = mi_req(&m[k], "/v1/payouts", key,
                    str_printf("{\"seller_account\":\"%s\",\"amount\":"
                               "\"%ld.%02ld\",\"currency\":\"USD\","
                               "\"psp\":\"%s\"}", mi_sellers[i], part / 100,
                               part % 100, money_psp(n)));
            }

            rqs[nrq++] = mi_req(&m[k], "/v1/payouts", uid("mip"),
                str_printf("{\"seller_account\":\"%s\",\"amount\":\"%ld.%02ld\","
                           "\"currency\":\"USD\",\"psp\":\"%s\"}",
                           mi_sellers[i], (avail - 3 * part + 1) / 100,
                           (avail - 3 * part + 1) % 100, money_psp(0)));
        }
    }

    rs = mi_send(rqs, nrq);

    for (i = 0; i < nrq; i++) {
        cr_expect(rs[i]->status == 201 || rs[i]->status == 422, "%ld %s",
                  rs[i]->status, rs[i]->body);
    }

    mi_settle(ids);

    /* the invariants */
    cr_expect_eq(mi_count("SELECT count(*) FROM (SELECT 1 FROM ledger_entries"
                          " WHERE merchant_id = ANY($1::text[]) GROUP BY "
                          "merchant_id, txn_id, currency HAVING sum(amount) "
                          "<> 0) x", ids), 0, "the ledger balances");

    cr_expect_eq(mi_count("SELECT count(*) FROM (SELECT merchant_id, "
                          "seller_account, currency, balance FROM wallets "
                          "WHERE merchant_id = ANY($1::text[])) w FULL JOIN "
                          "(SELECT merchant_id, substr(account, 16) AS "
                          "seller_account, currency, -sum(amount) AS booked "
                          "FROM ledger_entries WHERE merchant_id = "
                          "ANY($1::text[]) AND account LIKE "
                          "'seller\\_payable:%' GROUP BY 1, 2, 3) l USING "
                          "(merchant_id, seller_account, currency) WHERE "
                          "coalesce(w.balance, 0) <> coalesce(l.booked, 0)",
                          ids), 0, "every wallet equals its ledger");

    cr_expect_eq(mi_count("SELECT count(*) FROM payment_orders o WHERE "
                          "merchant_id = ANY($1::text[]) AND o.amount < "
                          "(SELECT coalesce(sum(r.amount), 0) FROM refunds r "
                          "WHERE r.merchant_id = o.merchant_id AND "
                          "r.payment_order_id = o.payment_order_id AND "
                          "r.status <> 'FAILED')", ids), 0,
                 "no order refunded beyond its capture");

    cr_expect_eq(mi_count("SELECT count(*) FROM (SELECT DISTINCT merchant_id,"
                          " seller_account FROM wallets WHERE merchant_id = "
                          "ANY($1::text[])) s, LATERAL seller_available("
                          "s.merchant_id, s.seller_account, 'USD') b WHERE "
                          "b.available < 0", ids), 0,
                 "no seller paid beyond its balance");

    cr_expect_eq(mi_count("SELECT (SELECT -coalesce(sum(amount), 0) FROM "
                          "ledger_entries WHERE merchant_id = ANY($1::text[]) "
                          "AND account = 'platform_commission') - ((SELECT "
                          "sum(commission) FROM payment_orders WHERE "
                          "merchant_id = ANY($1::text[])) - (SELECT "
                          "coalesce(sum(commission_part), 0) FROM refunds "
                          "WHERE merchant_id = ANY($1::text[])) - (SELECT "
                          "coalesce(sum(commission_part), 0) FROM "
                          "dispute_parts WHERE merchant_id = "
                          "ANY($1::text[])))", ids), 0,
                 "the commission account is the orders' less the refunds' "
                 "and the lost chargebacks'");

    cr_expect_eq(mi_count("SELECT count(*) FROM payment_orders WHERE "
                          "merchant_id = ANY($1::text[]) AND (commission "
                          "IS NULL OR commission <> commission_of(amount, "
                          "175, 20))", ids), 0, "every order's commission");

    cr_expect_eq(mi_count("SELECT count(*) FROM disputes WHERE merchant_id = "
                          "ANY($1::text[]) AND status = 'OPEN'", ids), 0);
    cr_expect_eq(mi_count("SELECT count(*) FROM disputes WHERE merchant_id = "
                          "ANY($1::text[])", ids), MI_CHECKOUTS / 10);

    for (k = 0; k < 2; k++) {
        cr_expect_str_eq(q1("SELECT pay_audit_verify($1)::text", m[k].id,
                            NULL), "true");
    }

    /* every operation the PSP saw, registered exactly once per nonce */
    {
        char  *all, *nonce_i, *save;
        long   sessions, requests;

        all = q1("SELECT string_agg(nonce, ' ') FROM (SELECT nonce FROM "
                 "refunds WHERE merchant_id = ANY($1::text[]) UNION ALL "
                 "SELECT nonce FROM payouts WHERE merchant_id = "
                 "ANY($1::text[])) x", ids, NULL);
        cr_assert_not_null(all);
        n = 0;

        for (nonce_i = strtok_r(all, " ", &save); nonce_i != NULL;
             nonce_i = strtok_r(NULL, " ", &save))
        {
            mock_registrations(nonce_i, &sessions, &requests);
            cr_expect_eq(sessions, 1, "nonce %s registered %ld times",
                         nonce_i, sessions);
            n++;
        }

        cr_expect_gt(n, 1000);
    }

    cr_log_info("money invariants: %d checkouts, %ld refunds, %ld disputes, "
                "%ld pay-outs", MI_CHECKOUTS,
                mi_count("SELECT count(*) FROM refunds WHERE merchant_id = "
                         "ANY($1::text[])", ids),
                mi_count("SELECT count(*) FROM disputes WHERE merchant_id = "
                         "ANY($1::text[])", ids),
                mi_count("SELECT count(*) FROM payouts WHERE merchant_id = "
                         "ANY($1::text[])", ids));
}


/* --- the invariants when refunds fail after they succeeded and disputes
 * race refunds -------------------------------------------------------------- */

#define MR_CHECKOUTS  60

typedef struct {
    char    **bodies;       /* the mock's dispute of each, NULL: none */
    size_t    n;
    long      opened;
    char     *refused;      /* the mock's first answer other than 200 */
} mr_disputes_t;


/* Every third checkout's dispute of 2.00, opened at the mock (which sends
 * its webhook) while the refunds of its orders are being decided; the
 * bodies are made before, only HTTP runs here. */
/* One answer of the mock counted; the first refusal kept for the assertion,
 * which must say what the mock answered (under load it may time out). */
static void
mr_disputes_count(mr_disputes_t *d, resp_t *r)
{
    if (r->status == 200) {
        d->opened++;

    } else if (d->refused == NULL) {
        d->refused = str_printf("%ld %s", r->status, r->body ? r->body : "");
    }
}


static void *
mr_open_disputes(void *data)
{
    size_t          i;
    resp_t         *r;
    mr_disputes_t  *d = data;

    for (i = 0; i < d->n; i++) {
        if (d->bodies[i] != NULL) {
            r = mock_post("/_control/disputes", d->bodies[i]);
            mr_disputes_count(d, r);
        }
    }

    return NULL;
}


/* Each checkout's dispute closed at the mock ("<id>\n<body>"), while
 * refunds of its orders are booked. */
static void *
mr_close_disputes(void *data)
{
    char           *nl;
    size_t          i;
    resp_t         *r;
    mr_disputes_t  *d = data;

    for (i = 0; i < d->n; i++) {
        if (d->bodies[i] != NULL) {
            nl = strchr(d->bodies[i], '\n');
            *nl = '\0';
            r = mock_post(str_printf("/_control/disputes/%s/close",
                                     d->bodies[i]), nl + 1);
            mr_disputes_count(d, r);
        }
    }

    return NULL;
}


/* Refunds of every order of the checkouts, all at once: six of 0.01, one
 * of 1.00 and one of the order's amount less 2.00 (which a dispute racing
 * it may leave no room for). */
static size_t
mr_refunds(paid_t *ps, size_t n, req_t *rqs)
{
    size_t  i, k, j, nrq;
    long    amount;

    nrq = 0;

    for (i = 0; i < n; i++) {
        for (k = 0; k < 2; k++) {
            amount = ql("SELECT amount - 200 FROM payment_orders WHERE"
                        " merchant_id = $1 AND payment_order_id = $2",
                        ps[i].m.id, ps[i].po[k]);

            for (j = 0; j < 8; j++) {
                rqs[nrq++] = mi_req(&ps[i].m,
                    str_printf("/v1/payments/%s/refunds", ps[i].po[k]),
                    uid("mrr"),
                    j < 6 ? "{\"amount\":\"0.01\"}"
                    : j == 6 ? "{\"amount\":\"1.00\"}"
                    : str_printf("{\"amount\":\"%ld.%02ld\"}", amount / 100,
                                 amount % 100));
            }
        }
    }

    return nrq;
}


/* The orders of the merchants $1 with what they gave back: refunded
 * (PENDING and SUCCEEDED refunds), borne (their parts of OPEN and LOST
 * disputes within what they held) and excess (beyond it); each row that
 * the condition after it keeps, listed for the assertion's message. */
#define MR_BEYOND                                                             \
    "SELECT string_agg(o.payment_order_id || ' of ' ||"                       \
    " coalesce(o.amount_captured, o.amount) || ': refunded ' || g.refunded"   \
    " || ', borne ' || g.borne || ', excess ' || g.excess, '; ') FROM"        \
    " payment_orders o CROSS JOIN LATERAL (SELECT (SELECT"                    \
    " coalesce(sum(r.amount), 0) FROM refunds r WHERE r.merchant_id ="        \
    " o.merchant_id AND r.payment_order_id = o.payment_order_id AND"          \
    " r.status IN ('PENDING', 'SUCCEEDED')) AS refunded, (SELECT"             \
    " coalesce(sum(dp.amount), 0) FROM dispute_parts dp JOIN disputes d"      \
    " USING (merchant_id, dispute_id) WHERE dp.merchant_id = o.merchant_id"   \
    " AND dp.payment_order_id = o.payment_order_id AND d.status IN ('OPEN',"  \
    " 'LOST')) AS borne, (SELECT coalesce(sum(dp.excess), 0) FROM"            \
    " dispute_parts dp JOIN disputes d USING (merchant_id, dispute_id) WHERE" \
    " dp.merchant_id = o.merchant_id AND dp.payment_order_id ="               \
    " o.payment_order_id AND d.status IN ('OPEN', 'LOST')) AS excess) g"      \
    " WHERE o.merchant_id = ANY($1::text[]) "


Test(solo_money_invariants,
     refunds_failing_after_success_and_disputes_racing_refunds_keep_the_books,
     .timeout = 300)
{
    size_t          i, k, n, nrq, ok;
    char           *ids, *rf;
    resp_t        **rs;
    req_t          *rqs;
    paid_t         *ps;
    pthread_t       th;
    mr_disputes_t   dd;
    long            held[MR_CHECKOUTS][2];

    ps = calloc(MR_CHECKOUTS, sizeof(paid_t));
    rqs = calloc(MR_CHECKOUTS * 16, sizeof(req_t));
    cr_assert(ps != NULL && rqs != NULL);

    /* 1. checkouts of two orders (10.00, 5.00), a third per dialect, a
     * commission of 33.33% + 0.03 */
    for (i = 0; i < MR_CHECKOUTS; i++) {
        paid_new(&ps[i], money_psp(i % 3), "3333", "USD:3");
        for (k = 0; k < 2; k++) {
            seller_add(&ps[i].m, str_printf("seller_%zu", k + 1),
                       money_psp(i % 3), money_destination(i % 3));
        }
    }

    ids = str_printf("{%s", ps[0].m.id);
    for (i = 1; i < MR_CHECKOUTS; i++) {
        ids = str_printf("%s,%s", ids, ps[i].m.id);
    }
    ids = str_printf("%s}", ids);

    /* 2. the refunds, all at once, while disputes open on every third
     * checkout of the first half; the second half's disputes open once
     * the refunds are decided, when their orders hold less than the
     * dispute (0.94 each of 2.00): a refunded payment charged back, its
     * excess the platform's */
    nrq = mr_refunds(ps, MR_CHECKOUTS, rqs);
    dd.bodies = calloc(MR_CHECKOUTS, sizeof(char *));
    cr_assert(dd.bodies != NULL);
    dd.n = MR_CHECKOUTS / 2;
    dd.opened = 0;
    dd.refused = NULL;
    for (i = 0; i < MR_CHECKOUTS; i += 3) {
        dd.bodies[i] = str_printf("{\"payment_ref\":\"%s\",\"amount\":200}",
                                  payment_ref_of(&ps[i]));
    }
    cr_assert_eq(pthread_create(&th, NULL, mr_open_disputes, &dd), 0);
    rs = mi_send(rqs, nrq);
    pthread_join(th, NULL);

    ok = 0;
    for (i = 0; i < nrq; i++) {
        if (rs[i]->status == 201) {
            ok++;
        } else if (rs[i]->body != NULL
                   && strstr(rs[i]->body, "\"insufficient_balance\"") != NULL)
        {
            /* a dispute of its checkout opened first and holds the
             * seller's share (doc/MONEY.md: a refund needs the seller's
             * share available) */
            expect_problem(rs[i], 422, "insufficient_balance");
        } else {
            expect_problem(rs[i], 422, "refund_exceeds_captured");
        }
    }
    cr_expect_gt(ok, nrq / 2);

    mi_settle(ids);
    dd.bodies += MR_CHECKOUTS / 2;
    dd.n = MR_CHECKOUTS - MR_CHECKOUTS / 2;
    mr_open_disputes(&dd);
    dd.bodies -= MR_CHECKOUTS / 2;
    dd.n = MR_CHECKOUTS;
    cr_assert_eq(dd.opened, (MR_CHECKOUTS + 2) / 3,
                 "disputes %s at the mock: %ld of %d; first refusal: %s",
                 "opened", dd.opened, (MR_CHECKOUTS + 2) / 3,
                 dd.refused ? dd.refused : "none");
    for (i = 0; i < 100 && mi_count("SELECT count(*) FROM disputes WHERE"
                                    " merchant_id = ANY($1::text[])", ids)
                           < (MR_CHECKOUTS + 2) / 3; i++)
    {
        msleep(100);
    }
    cr_expect_geq(mi_count("SELECT count(*) FROM webhook_events WHERE"
                           " merchant_id = ANY($1::text[]) AND outcome ="
                           " 'dispute_excess'", ids),
                  (MR_CHECKOUTS - MR_CHECKOUTS / 2 + 2) / 3,
                  "every dispute opened after its orders' refunds is "
                  "beyond what they hold, and alerted (dispute_excess)");

    /* 3. half the refunds that succeeded fail after all (the shopper's
     * bank sent the money back), as the PSPs' webhooks say it */
    rf = q1("SELECT string_agg(merchant_id || ' ' || refund_id || ' ' ||"
            " amount, ' ' ORDER BY refund_id) FROM refunds WHERE merchant_id"
            " = ANY($1::text[]) AND status = 'SUCCEEDED'", ids, NULL);
    cr_assert_not_null(rf);

    {
        char  *m, *id, *amount, *save;

        n = 0;
        for (m = strtok_r(rf, " ", &save); m != NULL;
             m = strtok_r(NULL, " ", &save))
        {
            id = strtok_r(NULL, " ", &save);
            amount = strtok_r(NULL, " ", &save);
            if (n++ % 2) {
                continue;
            }

            for (i = 0; i < MR_CHECKOUTS; i++) {
                if (strcmp(ps[i].m.id, m) == 0) {
                    cr_expect_str_eq(event_apply(&ps[i], "REFUND_FAILED",
                                                 "refund.failed", id,
                                                 amount), "applied");
                    break;
                }
            }
        }
        cr_expect_gt(n, 100);
    }

    /* 4. what each first order has left (what failed is refundable
     * again), refunded in one piece while the disputes close (the second
     * orders keep what their sellers will be paid out).  The mock keeps no
     * record of a refund failing after it succeeded (it would refuse the
     * amount), so these refunds are written as the claim writes them and
     * settled by the PSP's event, as the failures were */
    dd.opened = 0;
    dd.refused = NULL;
    for (i = 0; i < MR_CHECKOUTS; i++) {
        dd.bodies[i] = NULL;
        rf = q1("SELECT psp_dispute_ref FROM disputes WHERE merchant_id = $1",
                ps[i].m.id, NULL);
        if (rf != NULL) {
            dd.bodies[i] = str_printf("%s\n{\"outcome\":\"%s\"}", rf,
                                      (i / 3) % 2 ? "won" : "lost");
        }
    }
    cr_assert_eq(pthread_create(&th, NULL, mr_close_disputes, &dd), 0);

    for (i = 0; i < MR_CHECKOUTS; i++) {
        for (k = 0; k < 1; k++) {
            long  left;

            left = ql("SELECT amount - order_given_back(merchant_id,"
                      " payment_order_id, NULL) FROM payment_orders WHERE"
                      " merchant_id = $1 AND payment_order_id = $2",
                      ps[i].m.id, ps[i].po[k]);
            if (left > 0) {
                cr_expect_str_eq(rf_event(&ps[i], rf_pending(&ps[i], k, left),
                                          "REFUND_SUCCEEDED", left, NULL),
                                 "applied");
            }
        }
    }

    pthread_join(th, NULL);
    cr_assert_eq(dd.opened, (MR_CHECKOUTS + 2) / 3,
                 "disputes %s at the mock: %ld of %d; first refusal: %s",
                 "closed", dd.opened, (MR_CHECKOUTS + 2) / 3,
                 dd.refused ? dd.refused : "none");
    mi_settle(ids);
    for (i = 0; i < 100 && mi_count("SELECT count(*) FROM disputes WHERE"
                                    " merchant_id = ANY($1::text[]) AND"
                                    " status = 'OPEN'", ids) > 0; i++)
    {
        msleep(100);
    }
    cr_assert_eq(mi_count("SELECT count(*) FROM disputes WHERE merchant_id"
                          " = ANY($1::text[]) AND status = 'OPEN'", ids), 0);

    /* 5. pay-outs: each seller's whole available balance, and a cent more
     * (a seller that bore a chargeback of refunded money may have none) */
    nrq = 0;
    for (i = 0; i < MR_CHECKOUTS; i++) {
        for (k = 0; k < 2; k++) {
            long  avail;

            avail = ql("SELECT available FROM seller_available($1, $2,"
                       " 'USD')", ps[i].m.id,
                       str_printf("seller_%zu", k + 1));
            held[i][k] = avail > 0 ? avail : 0;
            if (avail <= 0) {
                continue;
            }
            rqs[nrq++] = mi_req(&ps[i].m, "/v1/payouts", uid("mrp"),
                str_printf("{\"seller_account\":\"seller_%zu\",\"amount\":"
                           "\"%ld.%02ld\",\"currency\":\"USD\",\"psp\":"
                           "\"%s\"}", k + 1, avail / 100, avail % 100,
                           money_psp(i % 3)));
            rqs[nrq++] = mi_req(&ps[i].m, "/v1/payouts", uid("mrp"),
                str_printf("{\"seller_account\":\"seller_%zu\",\"amount\":"
                           "\"0.01\",\"currency\":\"USD\",\"psp\":\"%s\"}",
                           k + 1, money_psp(i % 3)));
        }
    }
    rs = mi_send(rqs, nrq);
    for (i = 0; i < nrq; i++) {
        cr_expect(rs[i]->status == 201 || rs[i]->status == 422, "%ld %s",
                  rs[i]->status, rs[i]->body);
    }
    mi_settle(ids);

    /* the invariants */
    cr_expect_eq(mi_count("SELECT count(*) FROM payment_orders o CROSS"
                          " JOIN LATERAL order_given_back_for_good("
                          "o.merchant_id, o.payment_order_id) g WHERE"
                          " o.merchant_id = ANY($1::text[]) AND"
                          " (g.commission_back > o.commission OR"
                          " g.given_back - g.commission_back > o.amount -"
                          " o.commission)", ids), 0,
                 "commission given back (refunds, lost chargebacks) never "
                 "more than taken, nor the seller's share more than its "
                 "net");

    cr_expect_gt(mi_count("SELECT count(*) FROM payment_orders o WHERE"
                          " merchant_id = ANY($1::text[]) AND o.amount ="
                          " (SELECT sum(r.amount) FROM refunds r WHERE"
                          " r.merchant_id = o.merchant_id AND"
                          " r.payment_order_id = o.payment_order_id AND"
                          " r.status = 'SUCCEEDED')", ids), MR_CHECKOUTS / 2);
    cr_expect_gt(mi_count("SELECT count(*) FROM payouts WHERE merchant_id ="
                          " ANY($1::text[]) AND status = 'PAID'", ids),
                 MR_CHECKOUTS / 2);
    cr_expect_eq(mi_count("SELECT count(*) FROM payment_orders o WHERE"
                          " merchant_id = ANY($1::text[]) AND o.amount ="
                          " (SELECT sum(r.amount) FROM refunds r WHERE"
                          " r.merchant_id = o.merchant_id AND"
                          " r.payment_order_id = o.payment_order_id AND"
                          " r.status = 'SUCCEEDED') AND o.commission <>"
                          " (SELECT sum(r.commission_part) FROM refunds r"
                          " WHERE r.merchant_id = o.merchant_id AND"
                          " r.payment_order_id = o.payment_order_id AND"
                          " r.status = 'SUCCEEDED')", ids), 0,
                 "an order refunded whole gave back exactly its commission");

    /* A dispute opened after its orders' refunds took nearly all (the
     * race above) withdraws more than they hold: the excess, the
     * platform's, never a seller's (doc/MONEY.md); a refund failing after
     * it does not make it the seller's. */
    rf = q1(MR_BEYOND "AND coalesce(o.amount_captured, o.amount) < g.refunded"
            " + g.borne", ids, NULL);
    cr_expect_null(rf, "no order's refunds and the chargebacks its seller "
                   "bears beyond its capture: %s", rf);
    rf = q1(MR_BEYOND "AND coalesce(o.amount_captured, o.amount) < g.refunded"
            " + g.borne + g.excess AND (g.excess = 0 OR NOT EXISTS (SELECT 1"
            " FROM webhook_events w WHERE w.merchant_id = o.merchant_id AND"
            " w.checkout_id = o.checkout_id AND w.outcome ="
            " 'dispute_excess'))", ids, NULL);
    cr_expect_null(rf, "an order given back beyond its capture only by a "
                   "chargeback of refunded money, alerted (dispute_excess):"
                   " %s", rf);
    cr_expect_eq(mi_count("SELECT coalesce(sum(e.amount), 0) - (SELECT"
                          " coalesce(sum(dp.excess), 0) FROM dispute_parts dp"
                          " JOIN disputes d USING (merchant_id, dispute_id)"
                          " WHERE dp.merchant_id = ANY($1::text[]) AND"
                          " d.status = 'LOST') FROM ledger_entries e WHERE"
                          " e.merchant_id = ANY($1::text[]) AND e.account"
                          " LIKE 'psp\\_shortfall:%'", ids), 0,
                 "the lost chargebacks' excess is booked to psp_shortfall");

    cr_expect_eq(mi_count("SELECT count(*) FROM (SELECT 1 FROM ledger_entries"
                          " WHERE merchant_id = ANY($1::text[]) GROUP BY "
                          "merchant_id, txn_id, currency HAVING sum(amount) "
                          "<> 0) x", ids), 0, "the ledger balances");

    cr_expect_eq(mi_count("SELECT count(*) FROM (SELECT merchant_id, "
                          "seller_account, currency, balance FROM wallets "
                          "WHERE merchant_id = ANY($1::text[])) w FULL JOIN "
                          "(SELECT merchant_id, substr(account, 16) AS "
                          "seller_account, currency, -sum(amount) AS booked "
                          "FROM ledger_entries WHERE merchant_id = "
                          "ANY($1::text[]) AND account LIKE "
                          "'seller\\_payable:%' GROUP BY 1, 2, 3) l USING "
                          "(merchant_id, seller_account, currency) WHERE "
                          "coalesce(w.balance, 0) <> coalesce(l.booked, 0)",
                          ids), 0, "every wallet equals its ledger");

    for (i = 0; i < MR_CHECKOUTS; i++) {
        for (k = 0; k < 2; k++) {
            cr_expect_leq(ql("SELECT coalesce(sum(amount), 0) FROM payouts"
                             " WHERE merchant_id = $1 AND seller_account = $2"
                             " AND status <> 'FAILED'", ps[i].m.id,
                             str_printf("seller_%zu", k + 1)), held[i][k],
                          "no seller paid beyond what it holds (%s %zu)",
                          ps[i].m.id, k + 1);
        }
    }

    cr_expect_eq(mi_count("SELECT (SELECT -coalesce(sum(amount), 0) FROM "
                          "ledger_entries WHERE merchant_id = ANY($1::text[]) "
                          "AND account = 'platform_commission') - ((SELECT "
                          "sum(commission) FROM payment_orders WHERE "
                          "merchant_id = ANY($1::text[])) - (SELECT "
                          "coalesce(sum(commission_part), 0) FROM refunds "
                          "WHERE merchant_id = ANY($1::text[]) AND status ="
                          " 'SUCCEEDED') - (SELECT coalesce(sum(dp.commission_part),"
                          " 0) FROM dispute_parts dp JOIN disputes d USING"
                          " (merchant_id, dispute_id) WHERE dp.merchant_id ="
                          " ANY($1::text[]) AND d.status = 'LOST'))", ids), 0,
                 "the commission account is the orders' less the standing "
                 "refunds' and the lost chargebacks'");

    for (i = 0; i < MR_CHECKOUTS; i++) {
        expect_books_balance(&ps[i].m);
    }

    cr_log_info("money invariants with reversals: %d checkouts, %ld refunds "
                "(%ld failed after success), %ld disputes (%ld beyond what "
                "their orders held), %ld pay-outs",
                MR_CHECKOUTS,
                mi_count("SELECT count(*) FROM refunds WHERE merchant_id = "
                         "ANY($1::text[])", ids),
                mi_count("SELECT count(*) FROM refunds WHERE merchant_id = "
                         "ANY($1::text[]) AND failure LIKE 'failed at the "
                         "PSP after%'", ids),
                mi_count("SELECT count(*) FROM disputes WHERE merchant_id = "
                         "ANY($1::text[])", ids),
                mi_count("SELECT count(DISTINCT dispute_id) FROM"
                         " dispute_parts WHERE merchant_id = ANY($1::text[])"
                         " AND excess > 0", ids),
                mi_count("SELECT count(*) FROM payouts WHERE merchant_id = "
                         "ANY($1::text[])", ids));
}
