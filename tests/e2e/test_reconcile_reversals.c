/*
 * End to end: the reversals in a PSP's settlement report against what the
 * gateway booked (doc/RECONCILIATION.md; sql/functions/recon_money.sql,
 * recon_payment.sql, recon_run.sql; tests/mock_psp/report.c).  Real
 * histories go through the gateway and the mock PSP (its signed webhooks
 * book them), then the mock writes its report as the PSP would, with the
 * rows that move money back or take it again: a chargeback reversed when
 * the dispute is won (and, at Adyen, taken again by a SecondChargeback), a
 * refund that failed (Stripe refund_failure, Adyen RefundedReversed), a
 * transfer taken back (Stripe transfer_reversal, a row each part, Adyen
 * TransferReturned, generic payout_failure), and a payment captured in two
 * parts (a generic row per capture), a manual checkout whose first order
 * was never captured (its capture's fee booked on the order it captured,
 * not on that one).  Each history reconciles with every
 * row matched (the payments' fees booked) and nothing for a person; a
 * reversal row planted twice, or left out, is exactly one row for a person
 * that names it.
 *
 * The database is shared with the other suites running at the same time:
 * every assertion is scoped to this test's merchant and report.
 */

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


typedef struct {
    const char  *psp;
    const char  *dialect;
    merchant_t   m;
} hist_t;


static char *
q2(const char *sql, const char *a, const char *b)
{
    const char  *p[] = { a, b };

    return db_scalar(sql, 2, p);
}


/* Waits until the query (of $1 merchant, $2 id) answers want. */
static void
becomes(const char *sql, const char *m, const char *id, const char *want)
{
    int    i;
    char  *s = NULL;

    for (i = 0; i < 200; i++) {
        s = q2(sql, m, id);
        if (s != NULL && strcmp(s, want) == 0) {
            return;
        }
        msleep(100);
    }
    cr_assert_fail("%s (%s) is %s, not %s", sql, id, s ? s : "absent", want);
}


#define CHECKOUT_STATUS "SELECT status FROM checkouts WHERE merchant_id = $1" \
                        " AND checkout_id = $2"
#define REFUND_STATUS   "SELECT status FROM refunds WHERE merchant_id = $1" \
                        " AND refund_id = $2"
#define PAYOUT_STATUS   "SELECT status || ':' || amount_reversed FROM payouts" \
                        " WHERE merchant_id = $1 AND payout_id = $2"
#define DISPUTE_STATUS  "SELECT status FROM disputes WHERE merchant_id = $1" \
                        " AND checkout_id = $2"


static void
hist_start(hist_t *h, const char *psp, const char *dialect)
{
    char        *out;
    const char  *dest = strcmp(dialect, "stripe") == 0 ? "acct_1MockSeller"
                        : strcmp(dialect, "adyen") == 0
                          ? "BA00000000000000000000001" : "payee_1";
    const char  *args[] = { "add-seller", "--id", NULL, "--seller",
                            "seller_1", "--psp", psp, "--destination",
                            dest, NULL };

    h->psp = psp;
    h->dialect = dialect;
    merchant_new(&h->m);
    args[2] = h->m.id;
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);
    /* the checkouts' second order is seller_2's (checkout_new) */
    args[4] = "seller_2";
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);
}


/* A checkout of two orders (10.00 + 5.00 USD), capture as asked (NULL:
 * the PSP's default); its mock session in *token, its id answered. */
static char *
checkout(const hist_t *h, const char *capture, char **token)
{
    char    *co;
    json_t  *body;
    resp_t  *r;

    co = uid("co");
    body = checkout_new(co, 2);
    json_object_set_new(body, "psp", json_string(h->psp));
    if (capture != NULL) {
        json_object_set_new(body, "capture", json_string(capture));
    }
    r = register_ok(&h->m, uid("key"), dump(body));
    *token = strdup(json_string_value(json_object_get(resp_json(r),
                                                      "psp_token")));
    return co;
}


static void
pay(const hist_t *h, const char *co, const char *token, const char *want)
{
    resp_t  *r;

    r = mock_post(str_printf("/_control/sessions/%s/pay", token), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
    becomes(CHECKOUT_STATUS, h->m.id, co, want);
}


static char *
payment_ref(const hist_t *h, const char *co)
{
    return q2("SELECT psp_payment_ref FROM checkouts WHERE merchant_id = $1"
              " AND checkout_id = $2", h->m.id, co);
}


/* A dispute of the whole payment opened at the mock, then closed with
 * each outcome of outcomes (NULL-ended), each waited for: its id. */
static char *
dispute(const hist_t *h, const char *co, const char *const *outcomes)
{
    resp_t      *r;
    char        *id;
    size_t       i;

    r = mock_post("/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\"}",
                             payment_ref(h, co)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r), "id")));
    becomes(DISPUTE_STATUS, h->m.id, co, "OPEN");

    for (i = 0; outcomes[i] != NULL; i++) {
        r = mock_post(str_printf("/_control/disputes/%s/close", id),
                      str_printf("{\"outcome\":\"%s\"}", outcomes[i]));
        cr_assert_eq(r->status, 200, "%s", r->body);
        becomes(DISPUTE_STATUS, h->m.id, co,
                strcmp(outcomes[i], "won") == 0 ? "WON" : "LOST");
    }

    return id;
}


/* A refund of 1.00 of the checkout's first order that the PSP fails
 * (Adyen: REFUND_FAILED, which moved the money and gave it back). */
static char *
failed_refund(const hist_t *h, const char *co)
{
    char  *rf;

    (void) mock_fault(str_printf("{\"match\":\"%s:rf_\","
                                 "\"webhook_op_failed\":true,"
                                 "\"webhook_refund_failed_code\":true}",
                                 h->m.id));
    rf = api_post_ok(&h->m, str_printf("/v1/payments/%s_p1/refunds", co),
                     "{\"amount\":\"1.00\"}", "refund_id");
    becomes(REFUND_STATUS, h->m.id, rf, "FAILED");

    return rf;
}


/* A pay-out of 5.00 to seller_1, paid, then taken back by the PSP in
 * parts (PSP minor units, 0-ended; 0 alone: whole), each waited for. */
static char *
returned_payout(const hist_t *h, const long *parts)
{
    char    *po, *n;
    resp_t  *r;
    long     back = 0;
    size_t   i;

    po = api_post_ok(&h->m, "/v1/payouts",
                     str_printf("{\"seller_account\":\"seller_1\",\"amount\":"
                                "\"5.00\",\"currency\":\"USD\",\"psp\":\"%s\"}",
                                h->psp), "payout_id");
    becomes(PAYOUT_STATUS, h->m.id, po, "PAID:0");
    n = q2("SELECT nonce FROM payouts WHERE merchant_id = $1 AND payout_id"
           " = $2", h->m.id, po);

    for (i = 0; ; i++) {
        r = mock_post(str_printf("/_control/transfers/%s/reverse", n),
                      parts[i] ? str_printf("{\"amount\":%ld}", parts[i])
                               : NULL);
        cr_assert_eq(r->status, 200, "%s", r->body);
        back += parts[i] ? parts[i] : 500 - back;
        becomes(PAYOUT_STATUS, h->m.id, po,
                back < 500 ? str_printf("PAID:%ld", back) : "FAILED:500");
        if (parts[i] == 0) {
            break;
        }
    }

    return po;
}


/* The mock's report of the sessions and the merchant's money, with the
 * knobs (may be ""), written to a file: its path. */
static char *
report(const hist_t *h, const char *sessions, const char *knobs)
{
    resp_t  *r;
    char    *path;
    FILE    *f;

    r = http_get(mock_url(str_printf("/_control/reports/%s?sessions=%s"
                                     "&merchant=%s%s", h->dialect, sessions,
                                     h->m.id, knobs)));
    cr_assert_eq(r->status, 200, "%s", r->body);

    path = str_printf("%s/recon-%s.csv", env("PAY_TEST_RUN"), uid("rv"));
    f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(r->body, 1, r->len, f), r->len);
    fclose(f);

    return path;
}


/* Runs payments-reconcile on the file: its report id; its output in
 * *out.  It exits 0, or 1 when something is for a person (this test's, or
 * another suite's merchant's the internal checks find). */
static char *
reconcile(const hist_t *h, const char *path, char **out)
{
    char         buf[4096], *cmd;
    size_t       n;
    int          st;
    FILE        *p;
    const char  *q[1] = { path };

    cmd = str_printf("'%s' --db '%s' --psp '%s' --dialect '%s' '%s' 2>&1",
                     build_file("payments-reconcile"), env("PAY_TEST_PG"),
                     h->psp, h->dialect, path);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    *out = strdup("");
    while ((n = fread(buf, 1, sizeof(buf) - 1, p)) > 0) {
        buf[n] = '\0';
        *out = str_printf("%s%s", *out, buf);
    }
    st = pclose(p);
    cr_assert(WIFEXITED(st) && (WEXITSTATUS(st) == 0
                                || WEXITSTATUS(st) == 1),
              "payments-reconcile: %d\n%s", st, *out);

    return db_scalar("SELECT report_id FROM recon_reports WHERE file_name"
                     " = $1", 1, q);
}


/* "type:outcome:n" of the report's rows, by type and outcome */
static char *
rows_of(const char *rep)
{
    const char  *p[1] = { rep };

    return db_scalar("SELECT string_agg(type || ':' || outcome || ':' || n,"
                     " ',' ORDER BY type, outcome) FROM (SELECT type,"
                     " outcome, count(*) AS n FROM recon_rows WHERE"
                     " report_id = $1::bigint GROUP BY 1, 2) x", 1, p);
}


/* "kind:class:n" of the report's mismatches that are this test's */
static char *
kinds_of(const hist_t *h, const char *rep)
{
    const char  *p[2] = { rep, h->m.id };

    return db_scalar(
        "SELECT coalesce(string_agg(kind || ':' || class || ':' || n, ','"
        "                           ORDER BY kind COLLATE \"C\"), '')"
        "  FROM (SELECT kind, class, count(*) AS n FROM recon_mismatches"
        "         WHERE report_id = $1::bigint"
        "           AND (record IS NOT NULL OR merchant_id = $2)"
        "         GROUP BY 1, 2) x", 2, p);
}


/* "kind:object:row" of the report's needs_person of this test */
static char *
for_a_person(const hist_t *h, const char *rep)
{
    const char  *p[2] = { rep, h->m.id };

    return db_scalar(
        "SELECT coalesce(string_agg(m.kind || ':' || coalesce(m.object_id,"
        "       '') || ':' || coalesce(rr.type || '/' || rr.row_id, ''), ','"
        "       ORDER BY m.kind), '')"
        "  FROM recon_mismatches m"
        "  LEFT JOIN recon_rows rr ON rr.report_id = m.report_id"
        "                         AND rr.record = m.record"
        " WHERE m.report_id = $1::bigint AND m.class = 'needs_person'"
        "   AND (m.record IS NOT NULL OR m.merchant_id = $2)", 2, p);
}


static char *
dispute_id_of(const hist_t *h, const char *co)
{
    return q2("SELECT dispute_id FROM disputes WHERE merchant_id = $1 AND"
              " checkout_id = $2", h->m.id, co);
}


Test(reconcile_reversals, adyen_a_dispute_won_then_lost_a_failed_refund_and_a_returned_transfer_match,
     .timeout = 120,
     .description = "Adyen: a chargeback (Chargeback), won "
                    "(ChargebackReversed) and lost again (SecondChargeback); "
                    "a refund that failed (Refunded, RefundedReversed); a "
                    "transfer returned (Transfer, TransferReturned): every "
                    "row matched, the payments' fees booked, nothing for a "
                    "person, though the dispute is LOST when its reversal "
                    "is reconciled")
{
    hist_t       h;
    char        *co[2], *tok[2], *path, *out, *rep;
    const long   whole[] = { 0 };

    hist_start(&h, "mock_adyen", "adyen");
    co[0] = checkout(&h, NULL, &tok[0]);
    co[1] = checkout(&h, NULL, &tok[1]);
    pay(&h, co[0], tok[0], "SUCCESS");
    pay(&h, co[1], tok[1], "SUCCESS");

    (void) dispute(&h, co[0], (const char *[]) { "won", "lost", NULL });
    (void) failed_refund(&h, co[1]);
    (void) returned_payout(&h, whole);

    path = report(&h, str_printf("%s,%s", tok[0], tok[1]), "");
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(rows_of(rep),
                     "dispute:matched:2,dispute_won:matched:1,"
                     "payment:auto_fixed:2,payout:matched:1,"
                     "payout_failure:matched:1,refund:matched:1,"
                     "refund_failure:matched:1", "%s", out);
    cr_expect_str_eq(kinds_of(&h, rep), "fee_booked:auto_fixed:2", "%s",
                     out);
}


Test(reconcile_reversals, adyen_a_reversal_planted_twice_or_left_out_is_one_for_a_person_each,
     .timeout = 120,
     .description = "Adyen: two disputes won (Chargeback, "
                    "ChargebackReversed); the report has the first's "
                    "ChargebackReversed twice (another Modification "
                    "Reference) and not the second's: the extra row is "
                    "dispute_reversal_not_booked, the missing one "
                    "dispute_reversal_missing_at_psp naming the dispute, and "
                    "nothing else is for a person")
{
    hist_t       h;
    char        *co[2], *tok[2], *dp[2], *path, *out, *rep;
    int          i;

    hist_start(&h, "mock_adyen", "adyen");
    for (i = 0; i < 2; i++) {
        co[i] = checkout(&h, NULL, &tok[i]);
        pay(&h, co[i], tok[i], "SUCCESS");
        dp[i] = dispute(&h, co[i], (const char *[]) { "won", NULL });
    }

    path = report(&h, str_printf("%s,%s", tok[0], tok[1]),
                  str_printf("&extra_move=%s:2&drop_move=%s:2", dp[0],
                             dp[1]));
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(for_a_person(&h, rep),
                     str_printf("dispute_reversal_missing_at_psp:%s:,"
                                "dispute_reversal_not_booked:%s:"
                                "dispute_won/%s:ChargebackReversed:%s-2-x",
                                dispute_id_of(&h, co[1]),
                                dispute_id_of(&h, co[0]),
                                payment_ref(&h, co[0]), dp[0]), "%s", out);
    cr_expect_str_eq(rows_of(rep),
                     "dispute:matched:2,dispute_won:matched:1,"
                     "dispute_won:needs_person:1,payment:auto_fixed:2",
                     "%s", out);
}


Test(reconcile_reversals, stripe_a_dispute_won_a_failed_refund_and_a_transfer_reversed_in_parts_match,
     .timeout = 120,
     .description = "Stripe: a dispute (its money withdrawn) won "
                    "(dispute_reversal); a refund that failed (refund, "
                    "refund_failure); a transfer reversed 3.00 then the "
                    "rest (transfer_reversal, a row each): every row "
                    "matched, nothing for a person; a reversal row planted "
                    "twice is one payout_amount_differs naming it")
{
    hist_t       h;
    char        *co, *tok, *po, *path, *out, *rep, *n;
    const long   parts[] = { 300, 0 };

    hist_start(&h, env("PAY_TEST_PSP"), "stripe");
    co = checkout(&h, NULL, &tok);
    pay(&h, co, tok, "SUCCESS");

    (void) dispute(&h, co, (const char *[]) { "won", NULL });
    (void) failed_refund(&h, co);
    po = returned_payout(&h, parts);

    path = report(&h, tok, "");
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(rows_of(rep),
                     "dispute:matched:1,dispute_won:matched:1,"
                     "payment:auto_fixed:1,payout:matched:1,"
                     "payout_failure:matched:2,refund:matched:1,"
                     "refund_failure:matched:1", "%s", out);
    cr_expect_str_eq(kinds_of(&h, rep), "fee_booked:auto_fixed:1", "%s",
                     out);

    /* another merchant's same history, the first reversal twice */
    hist_start(&h, env("PAY_TEST_PSP"), "stripe");
    co = checkout(&h, NULL, &tok);
    pay(&h, co, tok, "SUCCESS");
    po = returned_payout(&h, parts);
    n = q2("SELECT psp_payout_id FROM payouts WHERE merchant_id = $1 AND"
           " payout_id = $2", h.m.id, po);
    path = report(&h, tok, str_printf("&extra_move=%s:1", po));
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(for_a_person(&h, rep),
                     str_printf("payout_amount_differs:%s:payout_failure/"
                                "txn_%s_1_x", po, n), "%s", out);
}


Test(reconcile_reversals, stripe_a_transfer_reversal_left_out_is_for_a_person,
     .timeout = 120,
     .description = "Stripe: a transfer reversed 3.00 then the rest, the "
                    "report without the second reversal: the books took "
                    "back 5.00, the PSP shows 3.00; one "
                    "payout_reversal_missing_at_psp naming the pay-out")
{
    hist_t       h;
    char        *co, *tok, *po, *path, *out, *rep;
    const long   parts[] = { 300, 0 };

    hist_start(&h, env("PAY_TEST_PSP"), "stripe");
    co = checkout(&h, NULL, &tok);
    pay(&h, co, tok, "SUCCESS");
    po = returned_payout(&h, parts);

    path = report(&h, tok, str_printf("&drop_move=%s:2", po));
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(for_a_person(&h, rep),
                     str_printf("payout_reversal_missing_at_psp:%s:", po),
                     "%s", out);
}


Test(reconcile_reversals, generic_two_partial_captures_a_dispute_won_and_a_payout_returned_match,
     .timeout = 120,
     .description = "generic: a manual checkout captured 4.00 and 2.00 "
                    "(a row per capture: psp_ref the capture's, payment_ref "
                    "the payment's), a dispute won (dispute, dispute_won), "
                    "a failed refund (refund, refund_failure) and a pay-out "
                    "returned (payout, payout_failure): every row matched, "
                    "nothing for a person; a refund failure left out is one "
                    "refund_failed_here naming the refund")
{
    hist_t       h;
    char        *co[2], *tok[2], *path, *out, *rep, *rf, *id;
    const long   whole[] = { 0 };
    const char  *amounts[] = { "4.00", "2.00" };
    int          i, k;
    resp_t      *r;
    char        *s = NULL;

    hist_start(&h, "mock_generic", "generic");
    co[0] = checkout(&h, "manual", &tok[0]);
    pay(&h, co[0], tok[0], "AUTHORIZED");
    for (i = 0; i < 2; i++) {
        id = api_post_ok(&h.m, str_printf("/v1/payments/%s_p%d/capture", co[0],
                                          i + 1),
                         str_printf("{\"amount\":\"%s\"}", amounts[i]),
                         "capture_id");
        for (k = 0; k < 200; k++) {
            s = q2("SELECT status FROM captures WHERE merchant_id = $1 AND"
                   " capture_id = $2", h.m.id, id);
            if (s != NULL && strcmp(s, "SUCCEEDED") == 0) {
                break;
            }
            msleep(100);
        }
        cr_assert_str_eq(s ? s : "absent", "SUCCEEDED", "capture %s", id);
    }
    becomes(CHECKOUT_STATUS, h.m.id, co[0], "SUCCESS");

    co[1] = checkout(&h, NULL, &tok[1]);
    pay(&h, co[1], tok[1], "SUCCESS");
    (void) dispute(&h, co[1], (const char *[]) { "won", NULL });
    rf = failed_refund(&h, co[1]);
    (void) returned_payout(&h, whole);

    r = http_get(mock_url(str_printf("/_control/reports/generic?sessions="
                                     "%s", tok[0])));
    cr_assert_eq(r->status, 200, "%s", r->body);

    path = report(&h, str_printf("%s,%s", tok[0], tok[1]), "");
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(rows_of(rep),
                     "dispute:matched:1,dispute_won:matched:1,"
                     "payment:auto_fixed:3,payout:matched:1,"
                     "payout_failure:matched:1,refund:matched:1,"
                     "refund_failure:matched:1", "%s\n%s", out, r->body);
    cr_expect_str_eq(kinds_of(&h, rep), "fee_booked:auto_fixed:3", "%s",
                     out);

    /* another merchant: a failed refund whose failure the report left out */
    hist_start(&h, "mock_generic", "generic");
    co[1] = checkout(&h, NULL, &tok[1]);
    pay(&h, co[1], tok[1], "SUCCESS");
    rf = failed_refund(&h, co[1]);
    path = report(&h, tok[1], str_printf("&drop_move=%s", rf));
    rep = reconcile(&h, path, &out);
    cr_expect_str_eq(for_a_person(&h, rep),
                     str_printf("refund_failed_here:%s:refund/%s:refund",
                                rf, q2("SELECT psp_refund_id FROM refunds"
                                       " WHERE merchant_id = $1 AND"
                                       " refund_id = $2", h.m.id, rf)),
                     "%s", out);
}


/* A capture of po (all of it when amount is NULL), waited for: its id. */
static char *
captured(const hist_t *h, const char *po, const char *amount)
{
    int    k;
    char  *id, *s = NULL;

    id = api_post_ok(&h->m, str_printf("/v1/payments/%s/capture", po),
                     amount ? str_printf("{\"amount\":\"%s\"}", amount)
                            : "{}", "capture_id");
    for (k = 0; k < 200; k++) {
        s = q2("SELECT status FROM captures WHERE merchant_id = $1 AND"
               " capture_id = $2", h->m.id, id);
        if (s != NULL && strcmp(s, "SUCCEEDED") == 0) {
            break;
        }
        msleep(100);
    }
    cr_assert_str_eq(s ? s : "absent", "SUCCEEDED", "capture %s", id);

    return id;
}


Test(reconcile_reversals, a_fee_is_booked_on_an_order_the_payment_captured,
     .timeout = 120,
     .description = "generic and Adyen: a manual checkout of two orders, "
                    "the first left authorized (generic) or voided (Adyen), "
                    "the second captured: the capture's row is matched and "
                    "its fee booked on the order it captured, so the run's "
                    "own check finds no ledger on an unpaid order and "
                    "nothing is for a person")
{
    hist_t       h;
    char        *co, *tok, *path, *out, *rep;
    const char  *psp[2] = { "mock_generic", "mock_adyen" };
    const char  *dialect[2] = { "generic", "adyen" };
    int          i;

    for (i = 0; i < 2; i++) {
        hist_start(&h, psp[i], dialect[i]);
        co = checkout(&h, "manual", &tok);
        pay(&h, co, tok, "AUTHORIZED");
        (void) captured(&h, str_printf("%s_p2", co), NULL);
        if (i == 1) {
            (void) api_post_ok(&h.m, str_printf("/v1/payments/%s_p1/void",
                                                co), "{}", "status");
            becomes("SELECT status FROM payment_orders WHERE merchant_id"
                    " = $1 AND payment_order_id = $2 || '_p1'", h.m.id, co,
                    "FAILED");
        }
        becomes(CHECKOUT_STATUS, h.m.id, co, "SUCCESS");

        path = report(&h, tok, "");
        rep = reconcile(&h, path, &out);
        cr_expect_str_eq(rows_of(rep), "payment:auto_fixed:1", "%s: %s",
                         dialect[i], out);
        cr_expect_str_eq(kinds_of(&h, rep), "fee_booked:auto_fixed:1",
                         "%s: %s", dialect[i], out);
        cr_expect_str_eq(q2("SELECT string_agg(payment_order_id, ',')"
                            "  FROM ledger_transactions WHERE merchant_id"
                            " = $1 AND checkout_id = $2 AND kind = 'fee'",
                            h.m.id, co), str_printf("%s_p2", co),
                         "%s: the fee is not on the captured order",
                         dialect[i]);
    }
}
