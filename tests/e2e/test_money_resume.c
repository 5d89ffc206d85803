/*
 * End to end: claims that outlive an answer the PSP never gave
 * (doc/MONEY.md, "Resumed operations"), and the money a pending refund
 * holds back from pay-outs (doc/MONEY.md, "Available balance").
 *
 * A refund, pay-out or registration whose PSP call got no answer is
 * resumed by the client's retry with the same Idempotency-Key.  The mock's
 * latency (longer than the gateway waits) stands in for the lost answer:
 * the PSP makes the operation (and sends its webhook) after the gateway
 * gave up.
 * Whether a retry reached the PSP is read from the mock's per-nonce count
 * of requests: a request sent again after the PSP forgot its key (Stripe:
 * 24 hours) would be a second refund, transfer or session.  A refund or
 * pay-out that no attempt ever sent (a gateway of the test's own whose PSP
 * is a closed port, then its circuit open) is given up past that window;
 * one whose attempt reached the PSP is not.  A registration that no
 * attempt ever sent is sent past that window (the PSP never saw its key),
 * once; one whose attempt may have reached the PSP is not.
 */

#include "harness.h"

#include <pthread.h>


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *co;
    char        *po[2];         /* 10.00 seller_1, 5.00 seller_2 (USD) */
} rs_paid_t;


/* --- the mock and the database --------------------------------------------- */

static void
rs_mock_pay(const char *token)
{
    req_t        rq;
    resp_t      *r;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay", token));
    rq.headers = h;
    rq.body = "";
    rq.len = (size_t) -1;

    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
}


static char *
rs_q1(const char *sql, const char *a, const char *b)
{
    const char  *params[] = { a, b };

    return db_scalar(sql, b ? 2 : (a ? 1 : 0), params);
}


static long
rs_ql(const char *sql, const char *a, const char *b)
{
    char  *s;

    s = rs_q1(sql, a, b);
    return s ? atol(s) : -1;
}


static long
rs_requests(const char *nonce)
{
    long  requests;

    mock_registrations(nonce, NULL, &requests);
    return requests;
}


/* Every ledger transaction of the merchant sums to zero and every wallet
 * equals its seller's ledger. */
static void
rs_books_balance(const merchant_t *m)
{
    cr_expect_eq(rs_ql("SELECT count(*) FROM (SELECT 1 FROM ledger_entries "
                       "WHERE merchant_id = $1 GROUP BY txn_id, currency "
                       "HAVING sum(amount) <> 0) x", m->id, NULL), 0,
                 "unbalanced ledger transactions");
    cr_expect_eq(rs_ql("SELECT count(*) FROM (SELECT seller_account, "
                       "currency, balance FROM wallets WHERE merchant_id = "
                       "$1) w FULL JOIN (SELECT substr(account, 16) AS "
                       "seller_account, currency, -sum(amount) AS booked "
                       "FROM ledger_entries WHERE merchant_id = $1 AND "
                       "account LIKE 'seller\\_payable:%' GROUP BY 1, 2) l "
                       "USING (seller_account, currency) WHERE "
                       "coalesce(w.balance, 0) <> coalesce(l.booked, 0)",
                       m->id, NULL), 0, "wallets off their ledger");
}


static long
rs_wallet(const merchant_t *m, const char *seller)
{
    return rs_ql("SELECT coalesce((SELECT balance FROM wallets WHERE "
                 "merchant_id = $1 AND seller_account = $2 AND currency = "
                 "'USD'), 0)", m->id, seller);
}


/* A PSP's event about one of p's operations, applied as the webhook
 * handler applies a verified one; its outcome. */
static char *
rs_event(const merchant_t *m, const char *psp, const char *kind,
    const char *type, const char *object_id, const char *amount_minor,
    const char *psp_object)
{
    const char  *params[7];

    params[0] = psp;
    params[1] = uid("evt");
    params[2] = kind;
    params[3] = type;
    params[4] = str_printf("%s:%s", m->id, object_id);
    params[5] = amount_minor;
    params[6] = psp_object;

    return db_scalar("SELECT outcome FROM pay_event_apply($1, $2, $3, $4, "
                     "NULL, $5, $6::bigint, 'USD', NULL, $7, NULL)", 7, params);
}


/* --- the merchant API ------------------------------------------------------- */

static char *
rs_order_status(const rs_paid_t *p)
{
    resp_t  *r;

    r = api_get(&p->m, str_printf("/v1/payments/%s", p->po[0]));
    cr_assert_eq(r->status, 200, "%s", r->body);
    return strdup(json_string_value(json_object_get(resp_json(r),
                                                    "status")));
}


/* A checkout of two orders at the PSP psp, paid through the mock's hosted
 * page, with bps of commission (NULL: none). */
static void
rs_paid_new_at(rs_paid_t *p, const char *bps, const char *psp)
{
    int          i;
    json_t      *body;
    resp_t      *r;
    char        *out;
    const char  *args[] = { "set-commission", "--id", NULL, "--bps", bps,
                            NULL };

    memset(p, 0, sizeof(rs_paid_t));
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
    rs_mock_pay(json_string_value(json_object_get(resp_json(r),
                                                  "psp_token")));

    for (i = 0; i < 100; i++) {
        if (strcmp(rs_order_status(p), "SUCCESS") == 0
            && rs_ql("SELECT count(*) FROM checkouts WHERE merchant_id = $1 "
                     "AND checkout_id = $2 AND psp_payment_ref IS NOT NULL",
                     p->m.id, p->co) == 1)
        {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("checkout %s not paid with a payment id", p->co);
}


/* the same at the e2e configuration's Stripe PSP */
static void
rs_paid_new(rs_paid_t *p, const char *bps)
{
    rs_paid_new_at(p, bps, env("PAY_TEST_PSP"));
}


static void
rs_seller_add_to(const merchant_t *m, const char *seller, const char *psp,
    const char *destination)
{
    char        *out;
    const char  *args[] = { "add-seller", "--id", m->id, "--seller", seller,
                            "--psp", psp, "--destination", destination,
                            NULL };

    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);
}


static void
rs_seller_add(const merchant_t *m, const char *seller, const char *psp)
{
    rs_seller_add_to(m, seller, psp, "acct_1MockSeller");
}


static resp_t *
rs_refund(const rs_paid_t *p, const char *amount, const char *key)
{
    return api_post_at(&p->m, str_printf("/v1/payments/%s/refunds", p->po[0]),
                   key, str_printf("{\"amount\":\"%s\"}", amount));
}


static resp_t *
rs_payout(const merchant_t *m, const char *psp, const char *seller,
    const char *amount, const char *key)
{
    return api_post_at(m, "/v1/payouts", key,
                   str_printf("{\"seller_account\":\"%s\",\"amount\":\"%s\","
                              "\"currency\":\"USD\",\"psp\":\"%s\"}", seller,
                              amount, psp));
}


/* Waits until the operation's row is in status want. */
static void
rs_becomes(const char *table, const char *merchant, const char *want)
{
    int  i;

    for (i = 0; i < 100; i++) {
        if (rs_ql(str_printf("SELECT count(*) FROM %s WHERE merchant_id = $1 "
                             "AND status = $2", table), merchant, want) == 1)
        {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("%s of %s never %s", table, merchant, want);
}


static const char *
rs_str(resp_t *r, const char *field)
{
    const char  *s;

    s = json_string_value(json_object_get(resp_json(r), field));
    return s ? s : "(none)";
}


/* --- resumed operations ----------------------------------------------------- */

Test(money_resume, a_payout_paid_meanwhile_is_answered_from_its_row,
     .timeout = 60,
     .description = "the PSP's answer to a pay-out was lost and its webhook "
                    "paid it: the retry with the key answers 201 PAID from "
                    "the row and sends nothing to the PSP")
{
    char       *key, *nonce, *id;
    long        before;
    resp_t     *a, *b;
    rs_paid_t   p;

    rs_paid_new(&p, NULL);
    rs_seller_add(&p.m, "seller_1", p.psp);
    (void) mock_fault(str_printf("{\"match\":\"%s:pyo_\","
                                 "\"latency_ms\":3000}", p.m.id));

    key = uid("pk");
    a = rs_payout(&p.m, p.psp, "seller_1", "7.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    /* made at the PSP all the same: its webhook pays it */
    rs_becomes("payouts", p.m.id, "PAID");
    nonce = rs_q1("SELECT nonce FROM payouts WHERE merchant_id = $1",
                  p.m.id, NULL);
    id = rs_q1("SELECT payout_id FROM payouts WHERE merchant_id = $1",
               p.m.id, NULL);
    before = rs_requests(nonce);

    b = rs_payout(&p.m, p.psp, "seller_1", "7.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "PAID", "%s", b->body);
    cr_expect_str_eq(rs_str(b, "payout_id"), id);
    cr_expect_str_eq(rs_str(b, "psp_payout_id"),
                     rs_q1("SELECT psp_payout_id FROM payouts WHERE "
                           "merchant_id = $1", p.m.id, NULL));
    cr_expect_eq(rs_requests(nonce), before,
                 "the retry of a paid pay-out reached the PSP");

    /* stored: the next retry replays it */
    b = rs_payout(&p.m, p.psp, "seller_1", "7.00", key);
    cr_expect_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(resp_header(b, "Idempotent-Replayed")
                     ? resp_header(b, "Idempotent-Replayed") : "", "true");
    cr_expect_str_eq(rs_str(b, "status"), "PAID");
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 300);
    rs_books_balance(&p.m);
}


Test(money_resume, a_refund_succeeded_meanwhile_is_answered_from_its_row,
     .timeout = 60,
     .description = "the PSP's answer to a refund was lost and its webhook "
                    "settled it: the retry with the key answers 201 "
                    "SUCCEEDED from the row and sends nothing to the PSP")
{
    char       *key, *nonce;
    long        before;
    resp_t     *a, *b;
    rs_paid_t   p;

    rs_paid_new(&p, NULL);
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"latency_ms\":3000}", p.m.id));

    key = uid("rk");
    a = rs_refund(&p, "4.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    rs_becomes("refunds", p.m.id, "SUCCEEDED");
    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    before = rs_requests(nonce);

    b = rs_refund(&p, "4.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "SUCCEEDED", "%s", b->body);
    cr_expect_eq(rs_requests(nonce), before,
                 "the retry of a settled refund reached the PSP");
    cr_expect_eq(rs_ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                       p.m.id, NULL), 1);
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 600);
    rs_books_balance(&p.m);
}


Test(money_resume, a_claim_older_than_the_psps_key_is_never_sent_again,
     .timeout = 60,
     .description = "a pay-out that got no answer for longer than the PSP "
                    "keeps its Idempotency-Key (Stripe: 24 h) is not sent "
                    "again: 502 saying so, an alert; once its webhook "
                    "comes, the retry answers from the row")
{
    char       *key, *nonce, *id;
    long        before;
    resp_t     *a, *b;
    rs_paid_t   p;

    rs_paid_new(&p, NULL);
    rs_seller_add(&p.m, "seller_1", p.psp);
    (void) mock_fault(str_printf("{\"match\":\"%s:pyo_\","
                                 "\"latency_ms\":3000,"
                                 "\"webhook_never\":true}", p.m.id));

    key = uid("pk");
    a = rs_payout(&p.m, p.psp, "seller_1", "2.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    nonce = rs_q1("SELECT nonce FROM payouts WHERE merchant_id = $1",
                  p.m.id, NULL);
    id = rs_q1("SELECT payout_id FROM payouts WHERE merchant_id = $1",
               p.m.id, NULL);
    db_exec("UPDATE payouts SET created_at = now() - interval '25 hours' "
            "WHERE merchant_id = $1", 1, (const char *[]) { p.m.id });
    before = rs_requests(nonce);

    b = rs_payout(&p.m, p.psp, "seller_1", "2.00", key);
    expect_problem(b, 502, "psp_unavailable");
    cr_expect_not_null(strstr(b->body, "not sent again"), "%s", b->body);
    cr_expect_eq(rs_requests(nonce), before,
                 "a claim older than the PSP's key window was sent again");
    cr_expect_eq(rs_ql("SELECT count(*) FROM payouts WHERE merchant_id = $1 "
                       "AND status = 'PENDING'", p.m.id, NULL), 1);

    /* the PSP's event settles it; the retry then answers from the row */
    cr_assert_str_eq(rs_event(&p.m, p.psp, "PAYOUT_PAID", "transfer.created",
                              id, "200", NULL), "applied");
    b = rs_payout(&p.m, p.psp, "seller_1", "2.00", key);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "PAID", "%s", b->body);
    cr_expect_eq(rs_requests(nonce), before);
    rs_books_balance(&p.m);
}


/* A gateway of the test's own whose PSP of the suite's name (its Stripe
 * PSP) is a closed port on loopback: every connect is refused, and the
 * first refusal opens its circuit (breaker=1) for a minute, so a request
 * after that is not even tried.  No attempt through it sends a byte. */
static void
rs_unreachable_start(gateway_t *gw, const char *psp)
{
    char  *conf, *at, *url;

    conf = gw_psp_conf(psp, "stripe");
    url = str_printf("url=%s\n", env("PAY_TEST_MOCK"));
    at = strstr(conf, url);
    cr_assert_not_null(at, "%s", conf);
    *at = '\0';
    conf = str_printf("%surl=http://127.0.0.1:%ld\n%s", conf, free_port(),
                      at + strlen(url));

    /* the lines end "allow_http;\n": the policy before the ';' */
    conf[strlen(conf) - 2] = '\0';

    gateway_start(gw, "unreachable", 1, str_printf(
        "%s"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 2500ms;\n"
        "payments_idempotency_lease 20s;\n"
        "%s retries=0 breaker=1 breaker_open=60s;\n",
        pg_gateway_databases(), conf));

    gateway_wait_ready(gw, 10);
}


/* what psp_contact says of the merchant's one row of table */
static char *
rs_contact(const char *table, const merchant_t *m)
{
    return rs_q1(str_printf("SELECT psp_contact FROM %s WHERE merchant_id = "
                            "$1", table), m->id, NULL);
}


/* the one delivery to ep of type, FAILED, saying it was never sent */
static void
rs_notified_failed(const endpoint_t *ep, const char *type)
{
    json_t      *ds, *d;
    const char  *failure;

    ds = receiver_wait(ep->name, "204", 1, 30);
    cr_assert_eq(json_array_size(ds), 1, "%s", json_dumps(ds, 0));
    d = json_array_get(ds, 0);
    cr_expect_str_eq(json_string_value(json_object_get(d, "type")), type);
    d = json_object_get(d, "data");
    cr_expect_str_eq(json_string_value(json_object_get(d, "status")),
                     "FAILED");
    failure = json_string_value(json_object_get(d, "failure"));
    cr_expect(failure && strstr(failure, "never sent"), "%s",
              failure ? failure : "(no failure)");
}


Test(money_resume, a_refund_that_never_reached_the_psp_is_given_up_past_its_key,
     .timeout = 90,
     .description = "a refund whose every attempt was never sent (the PSP's "
                    "port refused the connection, then its circuit was "
                    "open), retried once it is older than the PSP keeps "
                    "its key: FAILED, saying it never reached the PSP and "
                    "to use a new key, stored under the key, refund.failed "
                    "delivered to the shop; the order refundable again: a refund of all "
                    "of it with a new key succeeds")
{
    char        *key, *nonce;
    resp_t      *a, *b;
    gateway_t    gw;
    rs_paid_t    p;
    endpoint_t   ep;

    rs_paid_new(&p, NULL);
    endpoint_add(&p.m, "refund.failed", &ep);
    rs_unreachable_start(&gw, p.psp);

    key = uid("rk");
    a = gateway_send(&gw, "POST", str_printf("/v1/payments/%s/refunds",
                                             p.po[0]),
                     &p.m, key, "{\"amount\":\"4.00\"}");
    expect_problem(a, 502, "psp_unavailable");
    cr_expect_str_eq(rs_contact("refunds", &p.m), "none");

    /* the circuit is open now: not even tried */
    a = gateway_send(&gw, "POST", str_printf("/v1/payments/%s/refunds",
                                             p.po[0]),
                     &p.m, key, "{\"amount\":\"4.00\"}");
    expect_problem(a, 503, "psp_unavailable");
    cr_expect_str_eq(rs_contact("refunds", &p.m), "none");
    gateway_stop(&gw);

    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    cr_expect_eq(rs_requests(nonce), 0, "the PSP got the refund after all");
    db_exec("UPDATE refunds SET created_at = now() - interval '25 hours' "
            "WHERE merchant_id = $1", 1, (const char *[]) { p.m.id });

    b = rs_refund(&p, "4.00", key);
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_expect_str_eq(rs_str(b, "status"), "FAILED", "%s", b->body);
    cr_expect_not_null(strstr(rs_str(b, "failure"), "never sent"), "%s",
                       b->body);
    cr_expect_not_null(strstr(rs_str(b, "failure"), "new Idempotency-Key"),
                       "%s", b->body);
    cr_expect_eq(rs_requests(nonce), 0);
    cr_expect_eq(rs_ql("SELECT count(*) FROM refunds WHERE merchant_id = $1 "
                       "AND status = 'FAILED' AND psp_contact = 'none'",
                       p.m.id, NULL), 1);
    cr_expect_eq(rs_ql("SELECT count(*) FROM audit_log WHERE merchant_id = "
                       "$1 AND action = 'refund:abandoned'", p.m.id, NULL),
                 1);
    rs_notified_failed(&ep, "refund.failed");

    /* stored: the same key replays it */
    b = rs_refund(&p, "4.00", key);
    cr_expect_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(resp_header(b, "Idempotent-Replayed")
                     ? resp_header(b, "Idempotent-Replayed") : "", "true");
    cr_expect_str_eq(rs_str(b, "status"), "FAILED", "%s", b->body);

    /* all of the order refundable again, with a new key */
    b = rs_refund(&p, "10.00", uid("rk"));
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_expect_str_eq(rs_str(b, "status"), "PENDING", "%s", b->body);
    rs_becomes("refunds", p.m.id, "SUCCEEDED");
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 0);
    rs_books_balance(&p.m);
}


Test(money_resume, a_refund_that_may_have_reached_the_psp_stays_pending_past_its_key,
     .timeout = 60,
     .description = "a refund whose attempt reached the PSP (the answer "
                    "lost) is never given up: past the PSP's key window the "
                    "retry is 502 'not sent again', the refund PENDING, its "
                    "amount still held")
{
    char       *key, *nonce;
    long        before;
    resp_t     *a, *b;
    rs_paid_t   p;

    rs_paid_new(&p, NULL);
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"latency_ms\":3000,"
                                 "\"webhook_never\":true}", p.m.id));

    key = uid("rk");
    a = rs_refund(&p, "4.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);
    cr_expect_str_eq(rs_contact("refunds", &p.m), "maybe");

    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    db_exec("UPDATE refunds SET created_at = now() - interval '25 hours' "
            "WHERE merchant_id = $1", 1, (const char *[]) { p.m.id });
    before = rs_requests(nonce);

    b = rs_refund(&p, "4.00", key);
    expect_problem(b, 502, "psp_unavailable");
    cr_expect_not_null(strstr(b->body, "not sent again"), "%s", b->body);
    cr_expect_eq(rs_requests(nonce), before);
    cr_expect_eq(rs_ql("SELECT count(*) FROM refunds WHERE merchant_id = $1 "
                       "AND status = 'PENDING' AND psp_contact = 'maybe'",
                       p.m.id, NULL), 1);
    cr_expect_eq(rs_ql("SELECT count(*) FROM audit_log WHERE merchant_id = "
                       "$1 AND action = 'refund:abandoned'", p.m.id, NULL),
                 0);

    /* the 4.00 is still held */
    b = rs_refund(&p, "10.00", uid("rk"));
    expect_problem(b, 422, "refund_exceeds_captured");
    rs_books_balance(&p.m);
}


Test(money_resume, a_payout_that_never_reached_the_psp_is_given_up_past_its_key,
     .timeout = 90,
     .description = "a pay-out whose every attempt was never sent, retried "
                    "past the PSP's key window: FAILED, saying it never "
                    "reached the PSP, payout.failed delivered to the shop; the seller's "
                    "whole wallet available again: a pay-out of all of it "
                    "with a new key is paid")
{
    char        *key, *nonce, *body;
    resp_t      *a, *b;
    gateway_t    gw;
    rs_paid_t    p;
    endpoint_t   ep;

    rs_paid_new(&p, NULL);
    rs_seller_add(&p.m, "seller_1", p.psp);
    endpoint_add(&p.m, "payout.failed", &ep);
    rs_unreachable_start(&gw, p.psp);

    key = uid("pk");
    body = str_printf("{\"seller_account\":\"seller_1\",\"amount\":\"7.00\","
                      "\"currency\":\"USD\",\"psp\":\"%s\"}", p.psp);
    a = gateway_send(&gw, "POST", "/v1/payouts", &p.m, key, body);
    expect_problem(a, 502, "psp_unavailable");
    a = gateway_send(&gw, "POST", "/v1/payouts", &p.m, key, body);
    expect_problem(a, 503, "psp_unavailable");
    cr_expect_str_eq(rs_contact("payouts", &p.m), "none");
    gateway_stop(&gw);

    nonce = rs_q1("SELECT nonce FROM payouts WHERE merchant_id = $1",
                  p.m.id, NULL);
    cr_expect_eq(rs_requests(nonce), 0, "the PSP got the pay-out after all");
    db_exec("UPDATE payouts SET created_at = now() - interval '25 hours' "
            "WHERE merchant_id = $1", 1, (const char *[]) { p.m.id });

    b = rs_payout(&p.m, p.psp, "seller_1", "7.00", key);
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_expect_str_eq(rs_str(b, "status"), "FAILED", "%s", b->body);
    cr_expect_not_null(strstr(rs_str(b, "failure"), "never sent"), "%s",
                       b->body);
    cr_expect_eq(rs_requests(nonce), 0);
    cr_expect_eq(rs_ql("SELECT count(*) FROM audit_log WHERE merchant_id = "
                       "$1 AND action = 'payout:abandoned'", p.m.id, NULL),
                 1);
    rs_notified_failed(&ep, "payout.failed");

    /* nothing of the wallet held any more: all of it paid out */
    cr_expect_eq(rs_ql("SELECT available FROM seller_available($1, "
                       "'seller_1', 'USD')", p.m.id, NULL), 1000);
    b = rs_payout(&p.m, p.psp, "seller_1", "10.00", uid("pk"));
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    rs_becomes("payouts", p.m.id, "PAID");
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 0);
    rs_books_balance(&p.m);
}


Test(money_resume, a_resume_keeps_the_keys_expiry,
     .timeout = 60,
     .description = "resuming an operation's claim does not make its "
                    "Idempotency-Key younger")
{
    char       *key, *before;
    resp_t     *a;
    rs_paid_t   p;

    rs_paid_new(&p, NULL);
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\",\"fail_times\":6,"
                                 "\"fail_status\":500}", p.m.id));

    key = uid("rk");
    a = rs_refund(&p, "1.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    db_exec("UPDATE idempotency_keys SET expires_at = now() + interval "
            "'1 hour' WHERE merchant_id = $1 AND idem_key = $2", 2,
            (const char *[]) { p.m.id, key });
    before = rs_q1("SELECT expires_at::text FROM idempotency_keys WHERE "
                   "merchant_id = $1 AND idem_key = $2", p.m.id, key);

    a = rs_refund(&p, "1.00", key);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);
    cr_expect_str_eq(rs_q1("SELECT expires_at::text FROM idempotency_keys "
                           "WHERE merchant_id = $1 AND idem_key = $2",
                           p.m.id, key), before);
}


Test(money_resume, a_registration_paid_meanwhile_is_never_registered_again,
     .timeout = 60,
     .description = "a checkout whose registration got no answer and was "
                    "paid by webhook: the retry with the key opens no "
                    "second session (409 duplicate_order saying so)")
{
    char        *key, *co, *n, *total;
    long         before;
    json_t      *body;
    resp_t      *a, *b;
    merchant_t   m;
    const char  *params[4];

    merchant_new(&m);
    co = uid("co");
    n = nonce(&m, co);
    (void) mock_fault(str_printf("{\"match\":\"%s\","
                                 "\"latency_ms\":3000}", n));

    body = checkout_new(co, 2);
    key = uid("key");
    a = api_post(&m, key, dump(body));
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    /* the shopper paid the session the lost answer named: its webhook */
    total = "1500";
    params[0] = env("PAY_TEST_PSP");
    params[1] = uid("evt");
    params[2] = n;
    params[3] = total;
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, $2, "
                               "'SUCCEEDED', 'checkout.session.completed', "
                               "NULL, $3, $4::bigint, 'USD', 'pi_resume', "
                               "NULL, NULL)", 4, params), "applied");
    before = rs_requests(n);

    b = api_post(&m, key, dump(body));
    expect_problem(b, 409, "duplicate_order");
    cr_expect_not_null(strstr(b->body, "SUCCESS"), "%s", b->body);
    cr_expect_eq(rs_requests(n), before,
                 "a paid checkout was registered again");
    cr_expect_str_eq(rs_q1("SELECT status::text FROM checkouts WHERE "
                           "merchant_id = $1 AND checkout_id = $2", m.id, co),
                     "SUCCESS");
}


/* what psp_contact says of the merchant's checkout co */
static char *
rs_co_contact(const merchant_t *m, const char *co)
{
    return rs_q1("SELECT psp_contact FROM checkouts WHERE merchant_id = $1 "
                 "AND checkout_id = $2", m->id, co);
}


/* a registration whose PSP call got no answer (it may have reached the
 * PSP), its claim made age ago, retried with its key: not sent again */
static void
registration_not_sent_at(const char *age)
{
    char        *key, *co, *n;
    long         before;
    json_t      *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    n = nonce(&m, co);
    (void) mock_fault(str_printf("{\"match\":\"%s\","
                                 "\"latency_ms\":3000}", n));

    body = checkout_new(co, 1);
    key = uid("key");
    a = api_post(&m, key, dump(body));
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    db_exec("UPDATE checkouts SET created_at = now() - $3::interval "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { m.id, co, age });
    before = rs_requests(n);

    b = api_post(&m, key, dump(body));
    expect_problem(b, 502, "psp_unavailable");
    cr_expect_not_null(strstr(b->body, "not sent again"), "%s", b->body);
    cr_expect_eq(rs_requests(n), before,
                 "a registration %s old was sent again: the PSP may have "
                 "forgotten its key when it comes", age);
    cr_expect_str_eq(rs_co_contact(&m, co), "maybe");
}


Test(money_resume, a_registration_older_than_the_psps_key_is_not_sent,
     .timeout = 60,
     .description = "a registration that got no answer for longer than the "
                    "PSP keeps its key is not sent again: 502 saying so")
{
    registration_not_sent_at("25 hours");
}


/*
 * Nor one a few minutes younger than the key window (Stripe: 24 h): sent
 * then, its attempts (payments_request_timeout), a risk check and the
 * database's queue could bring it to the PSP after the PSP forgot the key
 * (pay_dialect_key_kept: the window less those and ten minutes).  Before,
 * the age was compared with the window alone.
 */
Test(money_resume, a_registration_at_the_edge_of_the_psps_key_is_not_sent,
     .timeout = 60)
{
    registration_not_sent_at("23 hours 55 minutes");
}


/*
 * A registration that no attempt ever sent (a gateway of the test's own
 * whose PSP is a closed port, then its circuit open), retried once it is
 * older than the PSP keeps its key: the PSP never saw its key, so the
 * retry is the first request the PSP gets under it, and is sent; once.
 * Before, it was 502 "not sent again" with an alert at every retry, and
 * the checkout stayed EXECUTING for good.
 */
Test(money_resume, a_registration_that_never_reached_the_psp_is_sent_past_its_key,
     .timeout = 90,
     .description = "a registration whose every attempt was never sent (the "
                    "PSP's port refused the connection, then its circuit "
                    "was open), retried once it is older than the PSP "
                    "keeps its key: sent now, 201 with its session, the "
                    "mock holding exactly one session for the nonce; the "
                    "key replays it")
{
    char        *key, *co, *n, *body, *token;
    long         sessions, requests;
    resp_t      *a, *b;
    gateway_t    gw;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    n = nonce(&m, co);
    body = dump(checkout_new(co, 2));
    rs_unreachable_start(&gw, env("PAY_TEST_PSP"));

    key = uid("key");
    a = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    expect_problem(a, 502, "psp_unavailable");
    cr_expect_str_eq(rs_co_contact(&m, co), "none");

    /* the circuit is open now: not even tried */
    a = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    expect_problem(a, 503, "psp_unavailable");
    cr_expect_str_eq(rs_co_contact(&m, co), "none");
    gateway_stop(&gw);

    cr_expect_eq(rs_requests(n), 0, "the PSP got the registration after all");
    db_exec("UPDATE checkouts SET created_at = now() - interval '25 hours' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2,
            (const char *[]) { m.id, co });

    b = api_post(&m, key, body);
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_expect_str_eq(rs_str(b, "status"), "EXECUTING", "%s", b->body);
    token = strdup(rs_str(b, "psp_token"));
    cr_expect_str_neq(token, "(none)", "%s", b->body);
    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(sessions, 1, "sessions at the PSP: %ld", sessions);
    cr_expect_eq(requests, 1, "requests at the PSP: %ld", requests);

    /* stored: the same key replays it, nothing sent */
    b = api_post(&m, key, body);
    cr_expect_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(resp_header(b, "Idempotent-Replayed")
                     ? resp_header(b, "Idempotent-Replayed") : "", "true");
    cr_expect_str_eq(rs_str(b, "psp_token"), token, "%s", b->body);
    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(sessions, 1);
    cr_expect_eq(requests, 1);
}


Test(money_resume, a_retry_after_the_key_expired_says_so,
     .timeout = 60,
     .description = "the same registration after its Idempotency-Key "
                    "expired: 409 duplicate_order saying the key expired, "
                    "not that another key was used")
{
    char        *key, *co;
    json_t      *body;
    resp_t      *b;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    body = checkout_new(co, 1);
    key = uid("key");
    (void) register_ok(&m, key, dump(body));

    db_exec("UPDATE idempotency_keys SET expires_at = now() - interval "
            "'1 second' WHERE merchant_id = $1 AND idem_key = $2", 2,
            (const char *[]) { m.id, key });

    b = api_post(&m, key, dump(body));
    expect_problem(b, 409, "duplicate_order");
    cr_expect_null(strstr(b->body, "another Idempotency-Key"), "%s", b->body);
    cr_expect_not_null(strstr(b->body, "expired"), "%s", b->body);
    cr_expect_not_null(strstr(b->body, co), "%s", b->body);

    /* another key for the same checkout is still the other case */
    b = api_post(&m, uid("key"), dump(body));
    expect_problem(b, 409, "duplicate_order");
    cr_expect_not_null(strstr(b->body, "another Idempotency-Key"), "%s",
                       b->body);
}


Test(money_resume, an_operation_retried_after_its_key_expired_is_never_made_twice,
     .timeout = 60,
     .description = "the same refund or pay-out request (key and body) "
                    "after its key expired, and after it was purged, is the "
                    "operation it made, answered from its row and never "
                    "made twice; the key with another body after that is "
                    "a new one")
{
    char        *rk, *pk, *refund, *payout, *nonce;
    long         before;
    resp_t      *a, *b;
    rs_paid_t    p;
    const char  *expire = "UPDATE idempotency_keys SET expires_at = now() - "
                          "interval '1 second' WHERE merchant_id = $1 AND "
                          "idem_key = $2";
    const char  *purge = "DELETE FROM idempotency_keys WHERE merchant_id = "
                         "$1 AND idem_key = $2";

    rs_paid_new(&p, NULL);
    rs_seller_add(&p.m, "seller_2", p.psp);

    rk = uid("rk");
    a = rs_refund(&p, "1.00", rk);
    cr_assert_eq(a->status, 201, "%s", a->body);
    refund = strdup(rs_str(a, "refund_id"));
    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    before = rs_requests(nonce);

    db_exec(expire, 2, (const char *[]) { p.m.id, rk });
    b = rs_refund(&p, "1.00", rk);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "refund_id"), refund, "%s", b->body);

    db_exec(purge, 2, (const char *[]) { p.m.id, rk });
    b = rs_refund(&p, "1.00", rk);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "refund_id"), refund, "%s", b->body);
    cr_expect_eq(rs_ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                       p.m.id, NULL), 1, "refunded twice");
    cr_expect_eq(rs_requests(nonce), before, "the refund went to the PSP "
                 "again");

    /* the key, purged, with another body: another refund */
    db_exec(purge, 2, (const char *[]) { p.m.id, rk });
    b = rs_refund(&p, "2.00", rk);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_neq(rs_str(b, "refund_id"), refund, "%s", b->body);
    cr_expect_eq(rs_ql("SELECT count(*) FROM refunds WHERE merchant_id = $1",
                       p.m.id, NULL), 2);

    /* a pay-out: once its webhook has paid it, seller_2 holds 5.00 - 2.00,
     * so a second one of 2.00 would still pass its checks */
    pk = uid("pk");
    a = rs_payout(&p.m, p.psp, "seller_2", "2.00", pk);
    cr_assert_eq(a->status, 201, "%s", a->body);
    payout = strdup(rs_str(a, "payout_id"));
    rs_becomes("payouts", p.m.id, "PAID");

    db_exec(purge, 2, (const char *[]) { p.m.id, pk });
    b = rs_payout(&p.m, p.psp, "seller_2", "2.00", pk);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "payout_id"), payout, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "PAID", "%s", b->body);
    cr_expect_eq(rs_ql("SELECT count(*) FROM payouts WHERE merchant_id = $1",
                       p.m.id, NULL), 1, "paid out twice");
    rs_books_balance(&p.m);
}


Test(money_resume, a_second_transfer_under_a_payouts_nonce_is_alerted,
     .timeout = 60,
     .description = "a paid event naming another PSP transfer than the "
                    "stored one is a mismatch (alerted), not already")
{
    char       *id;
    resp_t     *a;
    rs_paid_t   p;

    rs_paid_new(&p, NULL);
    rs_seller_add(&p.m, "seller_1", p.psp);

    a = rs_payout(&p.m, p.psp, "seller_1", "3.00", uid("pk"));
    cr_assert_eq(a->status, 201, "%s", a->body);
    id = strdup(rs_str(a, "payout_id"));
    rs_becomes("payouts", p.m.id, "PAID");

    cr_expect_str_eq(rs_event(&p.m, p.psp, "PAYOUT_PAID", "transfer.created",
                              id, "300", "tr_second_transfer"), "mismatch");
    cr_expect_str_eq(rs_event(&p.m, p.psp, "PAYOUT_PAID", "transfer.created",
                              id, "300",
                              rs_q1("SELECT psp_payout_id FROM payouts WHERE "
                                    "merchant_id = $1", p.m.id, NULL)),
                     "already");
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 700);
    rs_books_balance(&p.m);
}


/* --- pending refunds and the available balance ------------------------------ */

Test(money_resume, a_pending_refund_is_not_available_for_a_payout,
     .timeout = 60,
     .description = "the seller's share of a PENDING refund is held back "
                    "from its available balance: a pay-out cannot spend "
                    "it, and a refund cannot take what a pay-out took")
{
    char       *id;
    json_t     *j;
    resp_t     *a, *r;
    rs_paid_t   p, q;
    size_t      i;
    json_t     *it;

    rs_paid_new(&p, "1000");                      /* 10% commission */
    rs_seller_add(&p.m, "seller_1", p.psp);
    cr_assert_eq(rs_wallet(&p.m, "seller_1"), 900);
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"webhook_never\":true}", p.m.id));

    a = rs_refund(&p, "10.00", uid("rk"));
    cr_assert_eq(a->status, 201, "%s", a->body);
    cr_assert_str_eq(rs_str(a, "status"), "PENDING");
    id = strdup(rs_str(a, "refund_id"));

    r = api_get(&p.m, "/v1/sellers/seller_1/balance");
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = json_object_get(resp_json(r), "balances");
    json_array_foreach(j, i, it) {
        cr_expect_str_eq(json_string_value(json_object_get(it, "available")),
                         "0.00", "%s", r->body);
    }

    a = rs_payout(&p.m, p.psp, "seller_1", "0.01", uid("pk"));
    expect_problem(a, 422, "insufficient_balance");

    /* the refund succeeds: the seller's 9.00 leave the wallet */
    cr_assert_str_eq(rs_event(&p.m, p.psp, "REFUND_SUCCEEDED",
                              "refund.updated", id, "1000", NULL),
                     "applied");
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 0);
    rs_books_balance(&p.m);

    /* the other way round: paid out first, the refund finds nothing */
    rs_paid_new(&q, NULL);
    rs_seller_add(&q.m, "seller_1", q.psp);
    a = rs_payout(&q.m, q.psp, "seller_1", "10.00", uid("pk"));
    cr_assert_eq(a->status, 201, "%s", a->body);
    a = rs_refund(&q, "0.01", uid("rk"));
    expect_problem(a, 422, "insufficient_balance");
    cr_expect_not_null(strstr(a->body, "0.00 USD"), "%s", a->body);
    rs_books_balance(&q.m);
}


/* --- a claim resumed after its PSP's configuration changed ----------------- */

/*
 * A gateway of the test's own with the suite's Adyen PSP (mock_adyen:
 * merchant_account=TestMerchant, balance_account=BAPLATFORM00000000001),
 * sending each request once (retries=0: an answer the mock drops is lost
 * to the client, whose retry resumes the claim) and without a breaker,
 * whose configuration the test changes by a reload (gateway_reload).
 */
static void
rs_adyen_gateway(gateway_t *gw, const char *name)
{
    char  *psp;

    psp = gw_psp_conf("mock_adyen", "adyen");
    psp[strlen(psp) - 2] = '\0';                /* its ";\n" */

    gateway_start(gw, name, 1, str_printf("%s"
                                          "payments_database_pool 2;\n"
                                          "payments_sweeper off;\n"
                                          "%s retries=0 breaker=0;\n",
                                          pg_gateway_databases(), psp));
    gateway_wait_ready(gw, 10);
}


/* the mock's count of operations or sessions it made under the key */
static long
rs_made(const char *nonce)
{
    long  made;

    mock_registrations(nonce, &made, NULL);
    return made;
}


Test(money_resume, a_refund_is_not_resumed_under_another_merchant_account,
     .timeout = 90,
     .description = "an Adyen refund whose answer was lost, then a reload "
                    "that changes merchant_account=: the retry with the "
                    "key is not sent (it would be another request under "
                    "the same key, on another account): 502 saying so, an "
                    "alert, the refund PENDING until its webhook settles "
                    "it")
{
    int         i;
    char       *key, *path, *nonce;
    long        before;
    resp_t     *a, *b;
    gateway_t   gw;
    rs_paid_t   p;

    rs_paid_new_at(&p, NULL, "mock_adyen");
    rs_adyen_gateway(&gw, "rs-account-refund");

    /* made at the PSP, its answer dropped; its webhook comes late */
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"drop_after_register\":1,"
                                 "\"webhook_delay_ms\":8000}", p.m.id));

    key = uid("rk");
    path = str_printf("/v1/payments/%s/refunds", p.po[0]);
    a = gateway_send(&gw, "POST", path, &p.m, key, "{\"amount\":\"4.00\"}");
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    cr_assert_not_null(nonce);
    cr_assert_eq(rs_made(nonce), 1, "the mock made no refund");
    before = rs_requests(nonce);

    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    b = gateway_send(&gw, "POST", path, &p.m, key, "{\"amount\":\"4.00\"}");
    cr_expect_eq(rs_requests(nonce), before,
                 "the retry went to the PSP under the same key with "
                 "another merchant account");
    expect_problem(b, 502, "psp_unavailable");
    cr_expect_not_null(strstr(b->body, "merchant_account"), "%s", b->body);
    cr_expect_str_eq(rs_q1("SELECT status FROM refunds WHERE merchant_id = "
                           "$1", p.m.id, NULL), "PENDING");
    cr_expect(gateway_alerted(&gw, nonce, "merchant_account"),
              "no alert naming %s and merchant_account in %s", nonce,
              gw.error_log);

    /* the PSP's webhook settles it; the retry then answers from the row,
     * whatever the configuration */
    for (i = 0; i < 200; i++) {
        if (strcmp(rs_q1("SELECT status FROM refunds WHERE merchant_id = $1",
                         p.m.id, NULL), "PENDING") != 0)
        {
            break;
        }
        msleep(100);
    }

    b = gateway_send(&gw, "POST", path, &p.m, key, "{\"amount\":\"4.00\"}");
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "SUCCEEDED", "%s", b->body);
    cr_expect_eq(rs_requests(nonce), before);
    cr_expect_eq(rs_made(nonce), 1, "a second refund at the PSP");
    cr_expect_eq(rs_wallet(&p.m, "seller_1"), 600);
    rs_books_balance(&p.m);

    gateway_stop(&gw);
}


/*
 * A NEW refund of an Adyen payment registered under merchant_account=
 * TestMerchant, after a reload to OtherMerchant: not sent (under
 * OtherMerchant Adyen refuses a modification of TestMerchant's payment;
 * under TestMerchant its REFUND webhook would be refused here as another
 * account's, the refund PENDING for ever): 502 naming the setting, an
 * alert, nothing stored; the setting put back, the same key refunds it.
 */
Test(money_resume, a_new_refund_is_not_sent_under_another_merchant_account,
     .timeout = 90)
{
    char       *key, *path, *nonce;
    resp_t     *a;
    gateway_t   gw;
    rs_paid_t   p;

    rs_paid_new_at(&p, NULL, "mock_adyen");
    rs_adyen_gateway(&gw, "rs-account-new-refund");
    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    key = uid("rk");
    path = str_printf("/v1/payments/%s/refunds", p.po[0]);
    a = gateway_send(&gw, "POST", path, &p.m, key, "{\"amount\":\"4.00\"}");

    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    cr_expect(nonce == NULL || rs_made(nonce) == 0,
              "a refund of TestMerchant's payment was made under "
              "OtherMerchant");
    cr_expect(nonce == NULL, "a refund was stored: %ld %s", a->status,
              a->body);
    expect_problem(a, 502, "psp_unavailable");
    cr_expect_not_null(strstr(a->body, "merchant_account"), "%s", a->body);
    cr_expect(gateway_alerted(&gw, p.po[0], "TestMerchant"),
              "no alert naming %s and TestMerchant in %s", p.po[0],
              gw.error_log);

    /* the setting put back: the same key refunds it, under the account
     * that made the payment */
    gateway_reload(&gw, "merchant_account=OtherMerchant",
                   "merchant_account=TestMerchant");
    a = gateway_send(&gw, "POST", path, &p.m, key, "{\"amount\":\"4.00\"}");
    cr_assert_eq(a->status, 201, "%s", a->body);
    nonce = rs_q1("SELECT nonce FROM refunds WHERE merchant_id = $1",
                  p.m.id, NULL);
    cr_assert_not_null(nonce);
    cr_expect_eq(rs_made(nonce), 1);

    gateway_stop(&gw);
}


Test(money_resume, a_payout_is_not_resumed_from_another_balance_account,
     .timeout = 90,
     .description = "an Adyen pay-out whose answer was lost, then a reload "
                    "that changes balance_account=: the retry is not sent "
                    "(502, an alert); with the setting put back, the retry "
                    "resumes it: the PSP answers the transfer it made")
{
    char       *key, *nonce;
    long        before;
    resp_t     *a, *b;
    gateway_t   gw;
    rs_paid_t   p;

    rs_paid_new_at(&p, NULL, "mock_adyen");
    rs_seller_add_to(&p.m, "seller_1", "mock_adyen", "BA00000000000000000000001");
    rs_adyen_gateway(&gw, "rs-account-payout");

    (void) mock_fault(str_printf("{\"match\":\"%s:pyo_\","
                                 "\"drop_after_register\":1,"
                                 "\"webhook_never\":true}", p.m.id));

    key = uid("pk");
    a = gateway_send(&gw, "POST", "/v1/payouts", &p.m, key,
                     "{\"seller_account\":\"seller_1\",\"amount\":\"3.00\","
                     "\"currency\":\"USD\",\"psp\":\"mock_adyen\"}");
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);

    nonce = rs_q1("SELECT nonce FROM payouts WHERE merchant_id = $1",
                  p.m.id, NULL);
    cr_assert_not_null(nonce);
    cr_assert_eq(rs_made(nonce), 1, "the mock made no transfer");
    before = rs_requests(nonce);

    gateway_reload(&gw, "balance_account=BAPLATFORM00000000001",
                   "balance_account=BAPLATFORM00000000002");

    b = gateway_send(&gw, "POST", "/v1/payouts", &p.m, key,
                     "{\"seller_account\":\"seller_1\",\"amount\":\"3.00\","
                     "\"currency\":\"USD\",\"psp\":\"mock_adyen\"}");
    cr_expect_eq(rs_requests(nonce), before,
                 "the retry went to the PSP under the same key from "
                 "another balance account");
    expect_problem(b, 502, "psp_unavailable");
    cr_expect_not_null(strstr(b->body, "balance_account"), "%s", b->body);
    cr_expect_str_eq(rs_q1("SELECT status FROM payouts WHERE merchant_id = "
                           "$1", p.m.id, NULL), "PENDING");
    cr_expect(gateway_alerted(&gw, nonce, "balance_account"),
              "no alert naming %s and balance_account in %s", nonce,
              gw.error_log);

    /* put back: the first attempt's request again, which the PSP answers
     * with the transfer it made */
    gateway_reload(&gw, "balance_account=BAPLATFORM00000000002",
                   "balance_account=BAPLATFORM00000000001");

    b = gateway_send(&gw, "POST", "/v1/payouts", &p.m, key,
                     "{\"seller_account\":\"seller_1\",\"amount\":\"3.00\","
                     "\"currency\":\"USD\",\"psp\":\"mock_adyen\"}");
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "PENDING", "%s", b->body);
    cr_expect_eq(rs_requests(nonce), before + 1);
    cr_expect_eq(rs_made(nonce), 1, "a second transfer at the PSP");
    cr_expect_str_eq(rs_str(b, "psp_payout_id"),
                     rs_q1("SELECT psp_payout_id FROM payouts WHERE "
                           "merchant_id = $1", p.m.id, NULL));

    gateway_stop(&gw);
}


Test(money_resume, a_registration_is_not_resumed_under_another_merchant_account,
     .timeout = 90,
     .description = "an Adyen registration whose answer was lost, then a "
                    "reload that changes merchant_account=: the retry "
                    "does not send the stored request (made for the other "
                    "account): 502, an alert; with the setting put back, "
                    "the retry gets the session the first attempt made")
{
    char        *key, *co, *n, *body;
    long         before;
    json_t      *j;
    resp_t      *a, *b;
    gateway_t    gw;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    n = nonce(&m, co);
    rs_adyen_gateway(&gw, "rs-account-register");

    (void) mock_fault(str_printf("{\"match\":\"%s\","
                                 "\"drop_after_register\":1}", n));

    j = checkout_new(co, 1);
    json_object_set_new(j, "psp", json_string("mock_adyen"));
    body = dump(j);
    key = uid("key");

    a = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    cr_assert(a->status == 502 || a->status == 504, "%ld %s", a->status,
              a->body);
    cr_assert_eq(rs_made(n), 1, "the mock made no session");
    before = rs_requests(n);

    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    b = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    cr_expect_eq(rs_requests(n), before,
                 "the stored request went to the PSP under a "
                 "configuration naming another merchant account");
    expect_problem(b, 502, "psp_unavailable");
    cr_expect_not_null(strstr(b->body, "merchant_account"), "%s", b->body);
    cr_expect(gateway_alerted(&gw, n, "merchant_account"),
              "no alert naming %s and merchant_account in %s", n,
              gw.error_log);

    gateway_reload(&gw, "merchant_account=OtherMerchant",
                   "merchant_account=TestMerchant");

    b = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_expect_str_eq(rs_str(b, "status"), "EXECUTING", "%s", b->body);
    cr_expect_eq(rs_requests(n), before + 1);
    cr_expect_eq(rs_made(n), 1, "a second session at the PSP");

    gateway_stop(&gw);
}


/* --- refunds and pay-outs of one seller, racing ----------------------------- */

#define RS_ORDERS   6           /* 10.00 each, 10% commission: 9.00 each */
#define RS_PAYOUTS  12          /* of 9.00 each */


static resp_t **
rs_send(req_t *rqs, size_t n)
{
    int       round;
    size_t    i;
    resp_t  **rs, **again;

    rs = http_many(rqs, n, 32);

    /* the answers that may heal, again with the same keys, as a shop would */
    for (round = 0; round < 10; round++) {
        for (i = 0; i < n; i++) {
            if (rs[i]->status == 502 || rs[i]->status == 503
                || rs[i]->status == 504 || rs[i]->status == 409)
            {
                break;
            }
        }

        if (i == n) {
            break;
        }

        msleep(500);

        for (i = 0; i < n; i++) {
            if (rs[i]->status == 502 || rs[i]->status == 503
                || rs[i]->status == 504 || rs[i]->status == 409)
            {
                again = http_many(&rqs[i], 1, 1);
                rs[i] = again[0];
            }
        }
    }

    return rs;
}


static req_t
rs_req(const merchant_t *m, const char *path, const char *body)
{
    req_t         rq;
    const char  **h;

    h = calloc(4, sizeof(char *));
    cr_assert_not_null(h);
    h[0] = str_printf("Authorization: Bearer %s", m->key);
    h[1] = str_printf("Idempotency-Key: %s", uid("rsk"));
    h[2] = "Content-Type: application/json";

    rq.method = "POST";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return rq;
}


Test(solo_money_invariants,
     payouts_racing_pending_refunds_never_overspend_a_seller,
     .timeout = 120,
     .description = "full refunds (their webhooks held back) and pay-outs "
                    "of one seller, all at once: together they never take "
                    "more than the seller holds, its wallet never goes "
                    "below zero, the ledger balances and the wallet equals "
                    "it")
{
    int          i, k;
    long         refunds, payouts, w;
    char        *co[RS_ORDERS], *id, *out;
    json_t      *body;
    resp_t      *r, **rs;
    req_t        rqs[RS_ORDERS + RS_PAYOUTS];
    merchant_t   m;
    const char  *psp = env("PAY_TEST_PSP");
    const char  *args[] = { "set-commission", "--id", NULL, "--bps", "1000",
                            NULL };

    merchant_new(&m);
    args[2] = m.id;
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);
    rs_seller_add(&m, "seller_1", psp);

    for (i = 0; i < RS_ORDERS; i++) {
        co[i] = uid("co");
        body = checkout_new(co[i], 1);
        r = register_ok(&m, uid("key"), dump(body));
        rs_mock_pay(json_string_value(json_object_get(resp_json(r),
                                                      "psp_token")));
    }

    for (i = 0; i < 100 && rs_ql("SELECT count(*) FROM checkouts WHERE "
                                 "merchant_id = $1 AND status = 'SUCCESS' "
                                 "AND psp_payment_ref IS NOT NULL", m.id,
                                 NULL) < RS_ORDERS; i++)
    {
        msleep(100);
    }

    cr_assert_eq(rs_wallet(&m, "seller_1"), RS_ORDERS * 900);

    /* the refunds stay PENDING until this test says they succeeded */
    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"webhook_never\":true}", m.id));

    /* interleaved: refund, pay-out, pay-out, refund, ... */
    k = 0;

    for (i = 0; i < RS_ORDERS + RS_PAYOUTS; i++) {
        if (i % 3 == 0) {
            rqs[i] = rs_req(&m, str_printf("/v1/payments/%s_p1/refunds",
                                           co[k++]),
                            "{\"amount\":\"10.00\"}");
        } else {
            rqs[i] = rs_req(&m, "/v1/payouts",
                            str_printf("{\"seller_account\":\"seller_1\","
                                       "\"amount\":\"9.00\",\"currency\":"
                                       "\"USD\",\"psp\":\"%s\"}", psp));
        }
    }

    rs = rs_send(rqs, RS_ORDERS + RS_PAYOUTS);
    refunds = 0;
    payouts = 0;

    for (i = 0; i < RS_ORDERS + RS_PAYOUTS; i++) {
        if (rs[i]->status == 201) {
            if (i % 3 == 0) {
                refunds++;
            } else {
                payouts++;
            }
            continue;
        }

        expect_problem(rs[i], 422, "insufficient_balance");
    }

    cr_expect_leq(refunds + payouts, RS_ORDERS, "%ld refunds and %ld "
                  "pay-outs of 9.00 each accepted from a wallet of %d.00",
                  refunds, payouts, RS_ORDERS * 9);
    cr_expect_eq(rs_ql("SELECT available FROM seller_available($1, "
                       "'seller_1', 'USD')", m.id, NULL),
                 (RS_ORDERS - refunds - payouts) * 900);

    /* the refunds succeed at the PSP; the pay-outs are paid */
    for (i = 0; i < RS_ORDERS; i++) {
        id = rs_q1("SELECT refund_id FROM refunds WHERE merchant_id = $1 AND "
                   "checkout_id = $2 AND status = 'PENDING'", m.id, co[i]);
        if (id != NULL) {
            cr_expect_str_eq(rs_event(&m, psp, "REFUND_SUCCEEDED",
                                      "refund.updated", id, "1000", NULL),
                             "applied");
        }
    }

    for (i = 0; i < 100 && rs_ql("SELECT count(*) FROM payouts WHERE "
                                 "merchant_id = $1 AND status = 'PENDING'",
                                 m.id, NULL) > 0; i++)
    {
        msleep(100);
    }

    w = rs_wallet(&m, "seller_1");
    cr_expect_geq(w, 0, "the seller's wallet is %ld after its own refunds "
                  "and pay-outs", w);
    cr_expect_eq(w, (RS_ORDERS - refunds - payouts) * 900);
    cr_expect_geq(rs_ql("SELECT available FROM seller_available($1, "
                        "'seller_1', 'USD')", m.id, NULL), 0,
                  "no seller paid beyond what it holds");
    cr_expect_eq(rs_ql("SELECT count(*) FROM payouts WHERE merchant_id = $1 "
                       "AND status = 'PAID'", m.id, NULL), payouts);
    rs_books_balance(&m);
}
