/*
 * Unit tests: the money after "paid": refund and pay-out requests
 * (src/operation.c) and their views (src/view.c).
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/operation.h>
#include <payments/view.h>


#define S(s)  s, sizeof(s) - 1


Test(refund_request, amount_waits_for_the_orders_currency)
{
    pay_verdict_t         v;
    pay_refund_request_t  rq;

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\","
                                            "\"reason\":\"damaged\"}"),
                                          "po_1", &rq, &v), 0);
    cr_expect_str_eq(rq.amount_text, "4.00");
    cr_expect_str_eq(rq.reason, "damaged");
    cr_expect_str_eq(rq.currency, "");
    cr_expect_eq(rq.amount, 0);

    cr_assert_eq(pay_refund_amount(&rq, "USD", &v), 0);
    cr_expect_eq(rq.amount, 400);

    /* the same text in a zero-decimal currency is not a valid amount */
    cr_expect_eq(pay_refund_amount(&rq, "JPY", &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    pay_op_request_free(&rq.metadata);
}


Test(refund_request, a_named_currency_must_be_the_orders)
{
    pay_verdict_t         v;
    pay_refund_request_t  rq;

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4\","
                                            "\"currency\":\"EUR\"}"),
                                          "po_1", &rq, &v), 0);
    cr_expect_eq(rq.amount, 400);
    cr_expect_eq(pay_refund_amount(&rq, "USD", &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CURRENCY_MISMATCH);
    cr_expect_eq(pay_refund_amount(&rq, "EUR", &v), 0);
    pay_op_request_free(&rq.metadata);
}


Test(refund_request, bad_bodies_are_refused_with_their_code)
{
    size_t                i;
    pay_verdict_t         v;
    pay_refund_request_t  rq;
    struct {
        const char  *body;
        pay_err_e    err;
    } c[] = {
        { "", PAY_ERR_INVALID_REQUEST },
        { "[]", PAY_ERR_INVALID_REQUEST },
        { "{\"amount\":\"1\",\"amount\":\"2\"}", PAY_ERR_INVALID_REQUEST },
        { "{\"amount\":\"1\",\"extra\":1}", PAY_ERR_INVALID_REQUEST },
        { "{}", PAY_ERR_INVALID_AMOUNT },
        { "{\"amount\":4}", PAY_ERR_INVALID_AMOUNT },
        { "{\"amount\":\"-4\",\"currency\":\"USD\"}", PAY_ERR_INVALID_AMOUNT },
        { "{\"amount\":\"0\",\"currency\":\"USD\"}", PAY_ERR_INVALID_AMOUNT },
        { "{\"amount\":\"1.001\",\"currency\":\"USD\"}",
          PAY_ERR_INVALID_AMOUNT },
        { "{\"amount\":\"1\",\"currency\":\"usd\"}",
          PAY_ERR_UNSUPPORTED_CURRENCY },
        { "{\"amount\":\"1\",\"currency\":\"XXY\"}",
          PAY_ERR_UNSUPPORTED_CURRENCY },
        { "{\"amount\":\"1\",\"reason\":\"\"}", PAY_ERR_INVALID_REQUEST },
        { "{\"amount\":\"1\",\"reason\":\"a\\nb\"}", PAY_ERR_INVALID_REQUEST },
        { "{\"amount\":\"1\",\"reason\":\"card 4242 4242 4242 4242\"}",
          PAY_ERR_CARD_DATA },
    };

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        cr_expect_eq(pay_refund_request_parse(c[i].body, strlen(c[i].body),
                                              "po_1", &rq, &v), -1,
                     "%s", c[i].body);
        cr_expect_eq(v.err, c[i].err, "%s: %s", c[i].body, v.detail);
    }

    /* a card number in the reason is neither kept nor echoed */
    cr_expect_str_eq(rq.reason, "");
    cr_expect_null(strstr(v.detail, "4242"));
}


Test(refund_request, the_fingerprint_covers_the_order_and_the_body)
{
    pay_verdict_t         v;
    pay_refund_request_t  a, b, c, d;

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\"}"), "po_1",
                                          &a, &v), 0);
    cr_assert_eq(pay_refund_request_parse(S("{ \"amount\" : \"4.00\" }"),
                                          "po_1", &b, &v), 0);
    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\"}"), "po_2",
                                          &c, &v), 0);
    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"5.00\"}"), "po_1",
                                          &d, &v), 0);

    cr_expect_str_eq(a.fingerprint, b.fingerprint);
    cr_expect_str_neq(a.fingerprint, c.fingerprint);
    cr_expect_str_neq(a.fingerprint, d.fingerprint);
    pay_op_request_free(&a.metadata);
    pay_op_request_free(&b.metadata);
    pay_op_request_free(&c.metadata);
    pay_op_request_free(&d.metadata);
}


Test(refund_request, one_fingerprint_sends_one_metadata,
     .description = "a retry whose metadata lists its keys in another order "
                    "has the first's fingerprint and resumes it: the PSP "
                    "must get the first's bytes, or it refuses the key "
                    "(Stripe) or, with another key, pays twice")
{
    pay_verdict_t         v;
    pay_refund_request_t  a, b;

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\","
        "\"metadata\":{\"rma\":\"R-9\",\"at\":\"desk\"}}"), "po_1", &a,
        &v), 0);
    cr_assert_eq(pay_refund_request_parse(S("{\"metadata\":{\"at\":\"desk\","
        "\"rma\":\"R-9\"},\"amount\":\"4.00\"}"), "po_1", &b, &v), 0);

    cr_expect_str_eq(a.fingerprint, b.fingerprint);
    cr_expect_str_eq(a.metadata, b.metadata);
    pay_op_request_free(&a.metadata);
    pay_op_request_free(&b.metadata);
}


Test(payout_request, every_member_is_required_and_checked)
{
    size_t                i;
    pay_verdict_t         v;
    pay_payout_request_t  rq;
    const char           *bad[] = {
        "{\"amount\":\"25.00\",\"currency\":\"EUR\",\"psp\":\"stripe\"}",
        "{\"seller_account\":\"s 1\",\"amount\":\"25.00\","
        "\"currency\":\"EUR\",\"psp\":\"stripe\"}",
        "{\"seller_account\":\"s1\",\"currency\":\"EUR\",\"psp\":\"stripe\"}",
        "{\"seller_account\":\"s1\",\"amount\":\"25.00\",\"psp\":\"stripe\"}",
        "{\"seller_account\":\"s1\",\"amount\":\"25.00\","
        "\"currency\":\"EUR\"}",
        "{\"seller_account\":\"s1\",\"amount\":\"25.001\","
        "\"currency\":\"EUR\",\"psp\":\"stripe\"}",
        "{\"seller_account\":\"s1\",\"amount\":\"25\",\"currency\":\"EUR\","
        "\"psp\":\"stripe\",\"destination\":\"acct_x\"}",
    };

    cr_assert_eq(pay_payout_request_parse(S("{\"seller_account\":\"s1\","
                                            "\"amount\":\"25.50\","
                                            "\"currency\":\"EUR\","
                                            "\"psp\":\"stripe\"}"),
                                          &rq, &v), 0);
    cr_expect_str_eq(rq.seller_account, "s1");
    cr_expect_eq(rq.amount, 2550);
    cr_expect_str_eq(rq.currency, "EUR");
    cr_expect_str_eq(rq.psp, "stripe");
    cr_expect_eq(strlen(rq.fingerprint), 64);
    pay_op_request_free(&rq.metadata);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(pay_payout_request_parse(bad[i], strlen(bad[i]), &rq,
                                              &v), -1, "%s", bad[i]);
    }
}


Test(operation_id, ids_are_prefixed_random_hex)
{
    char  a[32], b[32];

    cr_assert_eq(pay_operation_id("rf_", a, sizeof(a)), 0);
    cr_assert_eq(pay_operation_id("rf_", b, sizeof(b)), 0);
    cr_expect_eq(strlen(a), 27);
    cr_expect_eq(strspn(a + 3, "0123456789abcdef"), 24);
    cr_expect_str_neq(a, b);
    cr_expect_eq(pay_operation_id("pyo_", a, 28), -1);
}


Test(money_view, balances_show_any_sign_in_the_currencys_decimals)
{
    char        *s;
    const char   db[] =
        "{\"seller_account\":\"s1\",\"balances\":[{\"currency\":\"USD\","
        "\"wallet_minor\":-250,\"pending_payouts_minor\":0,"
        "\"open_disputes_minor\":7,\"available_minor\":-257,"
        "\"authorized_minor\":1200},"
        "{\"currency\":\"JPY\",\"wallet_minor\":500,"
        "\"pending_payouts_minor\":100,\"open_disputes_minor\":0,"
        "\"available_minor\":400}],\"internal\":1}";

    s = pay_balance_view_json(db, sizeof(db) - 1);
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"seller_account\":\"s1\",\"balances\":["
        "{\"currency\":\"USD\",\"wallet\":\"-2.50\",\"pending_payouts\":"
        "\"0.00\",\"open_disputes\":\"0.07\",\"available\":\"-2.57\","
        "\"authorized\":\"12.00\"},"
        "{\"currency\":\"JPY\",\"wallet\":\"500\",\"pending_payouts\":"
        "\"100\",\"open_disputes\":\"0\",\"available\":\"400\","
        "\"authorized\":\"0\"}]}");
    free(s);

    /* a balance without a currency is a malformed row: no answer */
    cr_expect_null(pay_balance_view_json(S("{\"seller_account\":\"s1\","
        "\"balances\":[{\"wallet_minor\":1,\"pending_payouts_minor\":0,"
        "\"open_disputes_minor\":0,\"available_minor\":1}]}")));
}


Test(money_view, an_order_lists_its_refunds_disputes_and_commission)
{
    char        *s;
    const char   db[] =
        "{\"payment_order_id\":\"po_1\",\"checkout_id\":\"c\","
        "\"status\":\"SUCCESS\",\"amount_minor\":1000,\"currency\":\"USD\","
        "\"seller_account\":\"s\",\"psp\":\"p\",\"psp_token\":\"t\","
        "\"created_at\":\"2026-11-22T10:00:00Z\","
        "\"updated_at\":\"2026-11-22T10:00:01Z\",\"commission_minor\":55,"
        "\"refunds\":[{\"refund_id\":\"rf_1\",\"status\":\"SUCCEEDED\","
        "\"amount_minor\":400,\"currency\":\"USD\",\"reason\":null,"
        "\"psp_refund_id\":\"re_1\",\"created_at\":\"2026-11-22T11:00:00Z\","
        "\"updated_at\":\"2026-11-22T11:00:01Z\"}],"
        "\"disputes\":[{\"dispute_id\":\"dp_1\",\"status\":\"OPEN\","
        "\"amount_minor\":0,\"currency\":\"USD\",\"psp_dispute_id\":\"d\","
        "\"created_at\":\"2026-11-22T12:00:00Z\","
        "\"updated_at\":\"2026-11-22T12:00:00Z\"}]}";

    s = pay_order_view_json(db, sizeof(db) - 1);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"commission\":\"0.55\",\"refunds\":["
        "{\"refund_id\":\"rf_1\",\"status\":\"SUCCEEDED\",\"amount\":\"4.00\","
        "\"currency\":\"USD\",\"psp_refund_id\":\"re_1\","), "%s", s);
    cr_expect_not_null(strstr(s, "\"disputes\":[{\"dispute_id\":\"dp_1\","
        "\"status\":\"OPEN\",\"amount\":\"0.00\",\"currency\":\"USD\","), "%s",
        s);
    free(s);
}


/* GET /v1/payouts/{id}: what the PSP took back of the pay-out beside its
 * amount, in the currency's decimals, "0.00" when nothing was */
Test(money_view, a_payout_shows_what_was_reversed_of_it)
{
    char  *s;

    s = pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s1\",\"psp\":\"stripe\",\"status\":\"PAID\","
        "\"amount_minor\":750,\"amount_reversed_minor\":250,"
        "\"currency\":\"USD\",\"psp_payout_id\":\"tr_1\",\"failure\":null,"
        "\"metadata\":{\"batch\":\"b7\"},"
        "\"created_at\":\"2026-11-22T10:00:00Z\","
        "\"updated_at\":\"2026-11-22T10:05:00Z\"}"));
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"payout_id\":\"pyo_1\",\"seller_account\":\"s1\","
        "\"psp\":\"stripe\",\"status\":\"PAID\",\"amount\":\"7.50\","
        "\"currency\":\"USD\",\"amount_reversed\":\"2.50\","
        "\"psp_payout_id\":\"tr_1\",\"metadata\":{\"batch\":\"b7\"},"
        "\"created_at\":\"2026-11-22T10:00:00Z\","
        "\"updated_at\":\"2026-11-22T10:05:00Z\"}");
    free(s);

    /* nothing taken back: zero, in the currency's decimals */
    s = pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s1\",\"psp\":\"p\",\"status\":\"PENDING\","
        "\"amount_minor\":500,\"amount_reversed_minor\":0,"
        "\"currency\":\"JPY\",\"psp_payout_id\":null,"
        "\"created_at\":\"x\",\"updated_at\":\"x\"}"));
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"amount\":\"500\",\"currency\":\"JPY\","
                              "\"amount_reversed\":\"0\","), "%s", s);
    free(s);

    s = pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s1\",\"psp\":\"p\",\"status\":\"FAILED\","
        "\"amount_minor\":1500,\"amount_reversed_minor\":1500,"
        "\"currency\":\"KWD\",\"psp_payout_id\":null,"
        "\"failure\":\"reversed at the PSP after it was paid\","
        "\"created_at\":\"x\",\"updated_at\":\"x\"}"));
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"amount\":\"1.500\",\"currency\":"
                              "\"KWD\",\"amount_reversed\":\"1.500\","),
                       "%s", s);
    free(s);

    /* an older database's answer without it: left out, not a zero */
    s = pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s1\",\"psp\":\"p\",\"status\":\"PAID\","
        "\"amount_minor\":750,\"currency\":\"USD\",\"psp_payout_id\":null,"
        "\"created_at\":\"x\",\"updated_at\":\"x\"}"));
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "amount_reversed"), "%s", s);
    free(s);

    /* below zero or not an integer: a malformed row */
    cr_expect_null(pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s\",\"psp\":\"p\",\"status\":\"PAID\","
        "\"amount_minor\":750,\"amount_reversed_minor\":-1,"
        "\"currency\":\"USD\",\"psp_payout_id\":null,"
        "\"created_at\":\"x\",\"updated_at\":\"x\"}")));
    cr_expect_null(pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s\",\"psp\":\"p\",\"status\":\"PAID\","
        "\"amount_minor\":750,\"amount_reversed_minor\":\"2.50\","
        "\"currency\":\"USD\",\"psp_payout_id\":null,"
        "\"created_at\":\"x\",\"updated_at\":\"x\"}")));
}


Test(money_view, unknown_statuses_are_malformed)
{
    cr_expect_null(pay_payout_view_json(S("{\"payout_id\":\"pyo_1\","
        "\"seller_account\":\"s\",\"psp\":\"p\",\"status\":\"SENT\","
        "\"amount_minor\":1,\"currency\":\"USD\",\"psp_payout_id\":null,"
        "\"created_at\":\"x\",\"updated_at\":\"x\"}")));
}


Test(money_view, the_201_of_a_refund_and_of_a_refused_payout)
{
    char                  *s;
    pay_operation_view_t   v;

    memset(&v, 0, sizeof(v));
    v.kind = "refund";
    v.id = "rf_1";
    v.payment_order_id = "po_1";
    v.status = "PENDING";
    v.amount = 400;
    v.currency = "EUR";
    v.reason = "damaged";
    v.psp_ref = "re_9";
    v.metadata = "{\"rma\":\"R-9\"}";

    s = pay_operation_json(&v);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"refund_id\":\"rf_1\",\"payment_order_id\":"
        "\"po_1\",\"status\":\"PENDING\",\"amount\":\"4.00\",\"currency\":"
        "\"EUR\",\"reason\":\"damaged\",\"metadata\":{\"rma\":\"R-9\"},"
        "\"psp_refund_id\":\"re_9\"}");
    free(s);

    memset(&v, 0, sizeof(v));
    v.kind = "payout";
    v.id = "pyo_1";
    v.seller_account = "s1";
    v.psp = "stripe";
    v.status = "FAILED";
    v.amount = 2500;
    v.currency = "EUR";
    v.failure = "No such destination";

    s = pay_operation_json(&v);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"payout_id\":\"pyo_1\",\"seller_account\":\"s1\","
        "\"psp\":\"stripe\",\"status\":\"FAILED\",\"amount\":\"25.00\","
        "\"currency\":\"EUR\",\"metadata\":{},\"psp_payout_id\":null,"
        "\"failure\":\"No such destination\"}");
    free(s);
}


/* metadata keys on refunds and pay-outs: no form syntax, as a checkout's */
Test(refund_request, metadata_keys_with_form_syntax_or_controls_refused)
{
    pay_verdict_t         v;
    pay_refund_request_t  rq;

    cr_expect_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\","
                                            "\"metadata\":{\"a%5D=1&amount="
                                            "99999&metadata%5Bb\":\"y\"}}"),
                                          "po_1", &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);
    cr_expect_not_null(strstr(v.detail, "metadata keys must not contain"),
                       "%s", v.detail);
    cr_expect_null(rq.metadata);
}


/* metadata on refunds and pay-outs: as on a checkout */
Test(refund_request, metadata_kept_checked_and_in_the_fingerprint)
{
    char                  fp[65];
    pay_verdict_t         v;
    pay_refund_request_t  rq;

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\","
                                            "\"metadata\":{\"rma\":\"R-9\"}}"),
                                          "po_1", &rq, &v), 0, "%s",
                 v.detail);
    cr_expect_str_eq(rq.metadata, "{\"rma\":\"R-9\"}");
    memcpy(fp, rq.fingerprint, sizeof(fp));
    pay_op_request_free(&rq.metadata);
    cr_expect_null(rq.metadata);

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\","
                                            "\"metadata\":{\"rma\":\"R-8\"}}"),
                                          "po_1", &rq, &v), 0);
    cr_expect_str_neq(rq.fingerprint, fp);
    pay_op_request_free(&rq.metadata);

    cr_assert_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\"}"),
                                          "po_1", &rq, &v), 0);
    cr_expect_str_eq(rq.metadata, "{}");
    pay_op_request_free(&rq.metadata);

    cr_expect_eq(pay_refund_request_parse(S("{\"amount\":\"4.00\","
                                            "\"metadata\":{\"n\":1}}"),
                                          "po_1", &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);
    cr_expect_not_null(strstr(v.detail, "values must be strings"));
    cr_expect_null(rq.metadata);

    /* card data first, even beside a bad amount */
    cr_expect_eq(pay_refund_request_parse(S("{\"amount\":\"x\","
                                            "\"metadata\":{\"id\":"
                                            "\"1000000000000008\"}}"),
                                          "po_1", &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA);
    cr_expect_null(strstr(v.detail, "1000"));
}


Test(payout_request, metadata_kept_and_checked)
{
    char                  body[2048];
    size_t                n;
    pay_verdict_t         v;
    pay_payout_request_t  rq;

    cr_assert_eq(pay_payout_request_parse(S("{\"seller_account\":\"s1\","
                                            "\"amount\":\"25.50\","
                                            "\"currency\":\"EUR\","
                                            "\"psp\":\"stripe\","
                                            "\"metadata\":{\"run\":\"w47\"}}"),
                                          &rq, &v), 0, "%s", v.detail);
    cr_expect_str_eq(rq.metadata, "{\"run\":\"w47\"}");
    pay_op_request_free(&rq.metadata);

    /* a key of 41 characters */
    n = (size_t) snprintf(body, sizeof(body), "{\"seller_account\":\"s1\","
                          "\"amount\":\"1\",\"currency\":\"EUR\","
                          "\"psp\":\"stripe\",\"metadata\":{\"%s\":\"x\"}}",
                          "abcdefghijabcdefghijabcdefghijabcdefghijk");
    cr_expect_eq(pay_payout_request_parse(body, n, &rq, &v), -1);
    cr_expect_not_null(strstr(v.detail, "at most 40 characters"), "%s",
                       v.detail);
    cr_expect_null(rq.metadata);

    cr_expect_eq(pay_payout_request_parse(S("{\"seller_account\":\"s1\","
                                            "\"amount\":\"1\","
                                            "\"currency\":\"EUR\","
                                            "\"psp\":\"stripe\","
                                            "\"metadata\":{\"c\":"
                                            "\"5555 5555 5555 4444\"}}"),
                                          &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA);
}


/* the whole body is scanned as a checkout's: a seller_account by the
 * identifier rule (a brand's card number refused, a numeric id kept), any
 * other member by the free-text rule */
Test(payout_request, card_data_anywhere_in_the_body_is_refused)
{
    pay_verdict_t         v;
    pay_payout_request_t  rq;

    cr_expect_eq(pay_payout_request_parse(S("{\"seller_account\":"
                                            "\"4111111111111111\","
                                            "\"amount\":\"1\","
                                            "\"currency\":\"EUR\","
                                            "\"psp\":\"stripe\"}"),
                                          &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA, "%s", v.detail);
    cr_expect_null(strstr(v.detail, "4111"));
    cr_expect_null(rq.metadata);

    cr_expect_eq(pay_payout_request_parse(S("{\"seller_account\":\"s1\","
                                            "\"amount\":\"1\","
                                            "\"currency\":\"EUR\","
                                            "\"psp\":\"4111-1111-1111-1111\"}"),
                                          &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA, "%s", v.detail);

    /* Luhn-valid, but no card brand's: a numeric id */
    cr_expect_eq(pay_payout_request_parse(S("{\"seller_account\":"
                                            "\"1234567812345670\","
                                            "\"amount\":\"1\","
                                            "\"currency\":\"EUR\","
                                            "\"psp\":\"stripe\"}"),
                                          &rq, &v), 0, "%s", v.detail);
    pay_op_request_free(&rq.metadata);
}


Test(refund_request, card_data_in_any_member_is_refused_before_other_rules)
{
    pay_verdict_t         v;
    pay_refund_request_t  rq;

    cr_expect_eq(pay_refund_request_parse(S("{\"amount\":"
                                            "\"5555555555554444\"}"),
                                          "po_1", &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA, "%s", v.detail);

    /* an unknown member's name or value is not echoed, and a card number
     * in it is card data, not an unknown member */
    cr_expect_eq(pay_refund_request_parse(S("{\"amount\":\"1\","
                                            "\"note\":\"4242424242424242\"}"),
                                          "po_1", &rq, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA, "%s", v.detail);
}


/* a capture's amount is optional (all that is left: 0); a void takes no
 * amount; each has its own fingerprint path */
Test(capture_request, amount_optional_void_takes_none)
{
    pay_verdict_t         v;
    pay_refund_request_t  a, b;

    cr_assert_eq(pay_capture_request_parse(S("{}"), "po_1", 0, &a, &v), 0);
    cr_expect_str_eq(a.amount_text, "");
    cr_assert_eq(pay_refund_amount(&a, "USD", &v), 0);
    cr_expect_eq(a.amount, 0);
    pay_op_request_free(&a.metadata);

    cr_assert_eq(pay_capture_request_parse(S("{\"amount\":\"2.50\"}"), "po_1",
                                           0, &a, &v), 0);
    cr_assert_eq(pay_refund_amount(&a, "USD", &v), 0);
    cr_expect_eq(a.amount, 250);
    pay_op_request_free(&a.metadata);

    /* the same body as a void: refused (no amount there) */
    cr_expect_eq(pay_capture_request_parse(S("{\"amount\":\"2.50\"}"), "po_1",
                                           1, &b, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);

    cr_assert_eq(pay_capture_request_parse(S("{}"), "po_1", 1, &b, &v), 0);
    cr_assert_eq(pay_capture_request_parse(S("{}"), "po_1", 0, &a, &v), 0);
    cr_expect_str_neq(a.fingerprint, b.fingerprint);
    pay_op_request_free(&a.metadata);
    pay_op_request_free(&b.metadata);

    cr_expect_eq(pay_capture_request_parse(S("{\"amount\":4}"), "po_1", 0,
                                           &a, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_expect_eq(pay_capture_request_parse(S("{}"), "po/1", 0, &a, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_NOT_FOUND);
}
