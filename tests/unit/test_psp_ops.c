/*
 * Unit tests: refunds and pay-outs registered with the PSP (dialect.h):
 * the request bytes per dialect, exactly; what each builder refuses; and
 * the classification of the PSP's answer, with our secret kept out of the
 * reason shown to merchants.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/dialect.h>


#define OP_NONCE   "m1:rf_0123456789abcdef01234567"
#define OP_PNONCE  "m1:pyo_0123456789abcdef01234567"
/* the nonce as Adyen takes it in a transfer's description: no '_' */
#define OP_PDESC   "m1:pyo-0123456789abcdef01234567"


static pay_psp_refund_t
op_refund(void)
{
    pay_psp_refund_t  r;

    memset(&r, 0, sizeof(r));
    r.nonce = OP_NONCE;
    r.payment_ref = "pi_3AbC";
    r.amount = 400;
    r.currency = "EUR";
    r.merchant_account = "TestMerchant";

    return r;
}


static pay_psp_payout_t
op_payout(void)
{
    pay_psp_payout_t  p;

    memset(&p, 0, sizeof(p));
    p.nonce = OP_PNONCE;
    p.destination = "acct_1Seller";
    p.amount = 2500;
    p.currency = "EUR";

    return p;
}


static void
op_expect(const pay_psp_request_t *req, const char *path, const char *type,
    const char *body)
{
    cr_assert_not_null(req->path);
    cr_expect_str_eq(req->path, path);
    cr_expect_str_eq(req->content_type, type);
    cr_expect_str_eq(req->body, body);
    cr_expect_eq(req->body_len, strlen(body));
}


/* --- requests -------------------------------------------------------- */

Test(psp_ops, stripe_refund_request_exact)
{
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();

    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    op_expect(&req, "/v1/refunds", "application/x-www-form-urlencoded",
              "payment_intent=pi_3AbC&amount=400"
              "&metadata[nonce]=m1%3Arf_0123456789abcdef01234567");
    pay_psp_request_free(&req);
}


Test(psp_ops, stripe_refund_reason_is_stripes_word_or_metadata)
{
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();

    r.reason = "requested_by_customer";
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
                     "payment_intent=pi_3AbC&amount=400"
                     "&metadata[nonce]=m1%3Arf_0123456789abcdef01234567"
                     "&reason=requested_by_customer");
    pay_psp_request_free(&req);

    r.reason = "broken on arrival";
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
                     "payment_intent=pi_3AbC&amount=400"
                     "&metadata[nonce]=m1%3Arf_0123456789abcdef01234567"
                     "&metadata[reason]=broken%20on%20arrival");
    pay_psp_request_free(&req);
}


Test(psp_ops, stripe_payout_request_exact)
{
    pay_psp_request_t  req;
    pay_psp_payout_t   p = op_payout();

    cr_assert_eq(pay_dialect_stripe.payout(&p, &req), 0);
    op_expect(&req, "/v1/transfers", "application/x-www-form-urlencoded",
              "amount=2500&currency=eur&destination=acct_1Seller"
              "&metadata[nonce]=m1%3Apyo_0123456789abcdef01234567"
              "&transfer_group=m1%3Apyo_0123456789abcdef01234567");
    pay_psp_request_free(&req);
}


Test(psp_ops, adyen_refund_request_exact)
{
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();

    r.payment_ref = "QFQTPCQ8HXSKGK82";
    cr_assert_eq(pay_dialect_adyen.refund(&r, &req), 0);
    op_expect(&req, "/v71/payments/QFQTPCQ8HXSKGK82/refunds",
              "application/json",
              "{\"merchantAccount\":\"TestMerchant\","
              "\"amount\":{\"value\":400,\"currency\":\"EUR\"},"
              "\"reference\":\"" OP_NONCE "\"}");
    pay_psp_request_free(&req);

    /* Adyen's own reasons only */
    r.reason = "CUSTOMER REQUEST";
    cr_assert_eq(pay_dialect_adyen.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
                     "{\"merchantAccount\":\"TestMerchant\","
                     "\"amount\":{\"value\":400,\"currency\":\"EUR\"},"
                     "\"reference\":\"" OP_NONCE "\","
                     "\"merchantRefundReason\":\"CUSTOMER REQUEST\"}");
    pay_psp_request_free(&req);

    r.reason = "customer changed their mind";
    cr_assert_eq(pay_dialect_adyen.refund(&r, &req), 0);
    cr_expect_null(strstr(req.body, "merchantRefundReason"));
    pay_psp_request_free(&req);
}


Test(psp_ops, adyen_payout_request_exact)
{
    pay_psp_request_t  req;
    pay_psp_payout_t   p = op_payout();

    p.destination = "BA32272223222B5CTDQPM6W2H";
    cr_assert_eq(pay_dialect_adyen.payout(&p, &req), 0);
    /* relative to transfers_url= (…/btl/v4), not to the Checkout url= */
    cr_expect_eq(pay_dialect_adyen.payout_api, PAY_PSP_API_TRANSFERS);
    op_expect(&req, "/transfers", "application/json",
              "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
              "\"category\":\"internal\","
              "\"counterparty\":{\"balanceAccountId\":"
              "\"BA32272223222B5CTDQPM6W2H\"},"
              "\"reference\":\"" OP_PNONCE "\","
              "\"description\":\"payout " OP_PDESC "\"}");
    pay_psp_request_free(&req);

    p.source_account = "BA00000000000000PLATFORM";
    cr_assert_eq(pay_dialect_adyen.payout(&p, &req), 0);
    cr_expect_str_eq(req.body,
              "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
              "\"category\":\"internal\","
              "\"counterparty\":{\"balanceAccountId\":"
              "\"BA32272223222B5CTDQPM6W2H\"},"
              "\"reference\":\"" OP_PNONCE "\","
              "\"description\":\"payout " OP_PDESC "\","
              "\"balanceAccountId\":\"BA00000000000000PLATFORM\"}");
    pay_psp_request_free(&req);
}


Test(psp_ops, generic_refund_and_payout_requests_exact)
{
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();
    pay_psp_payout_t   p = op_payout();

    r.payment_ref = "gp_1";
    r.reason = "damaged";
    cr_assert_eq(pay_dialect_generic.refund(&r, &req), 0);
    op_expect(&req, "/refunds", "application/json",
              "{\"reference\":\"" OP_NONCE "\",\"payment_id\":\"gp_1\","
              "\"amount\":\"4.00\",\"currency\":\"EUR\","
              "\"reason\":\"damaged\"}");
    pay_psp_request_free(&req);

    r.reason = NULL;
    cr_assert_eq(pay_dialect_generic.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
              "{\"reference\":\"" OP_NONCE "\",\"payment_id\":\"gp_1\","
              "\"amount\":\"4.00\",\"currency\":\"EUR\"}");
    pay_psp_request_free(&req);

    p.destination = "payee-7";
    cr_assert_eq(pay_dialect_generic.payout(&p, &req), 0);
    op_expect(&req, "/payouts", "application/json",
              "{\"reference\":\"" OP_PNONCE "\",\"destination\":\"payee-7\","
              "\"amount\":\"25.00\",\"currency\":\"EUR\"}");
    pay_psp_request_free(&req);
}


/* --- the merchant's metadata -------------------------------------------- */

Test(psp_ops, stripe_refund_and_transfer_carry_the_merchants_metadata)
{
    json_t             *md;
    pay_psp_request_t   req;
    pay_psp_refund_t    r = op_refund();
    pay_psp_payout_t    p = op_payout();

    md = json_pack("{ss ss}", "order", "4711", "note", "a b&c");
    cr_assert_not_null(md);
    r.metadata = md;
    p.metadata = md;

    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
                     "payment_intent=pi_3AbC&amount=400"
                     "&metadata[nonce]=m1%3Arf_0123456789abcdef01234567"
                     "&metadata[order]=4711&metadata[note]=a%20b%26c");
    pay_psp_request_free(&req);

    /* a reason Stripe has no word for is metadata[reason] too */
    r.reason = "broken on arrival";
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
                     "payment_intent=pi_3AbC&amount=400"
                     "&metadata[nonce]=m1%3Arf_0123456789abcdef01234567"
                     "&metadata[reason]=broken%20on%20arrival"
                     "&metadata[order]=4711&metadata[note]=a%20b%26c");
    pay_psp_request_free(&req);

    cr_assert_eq(pay_dialect_stripe.payout(&p, &req), 0);
    cr_expect_str_eq(req.body,
                     "amount=2500&currency=eur&destination=acct_1Seller"
                     "&metadata[nonce]=m1%3Apyo_0123456789abcdef01234567"
                     "&transfer_group=m1%3Apyo_0123456789abcdef01234567"
                     "&metadata[order]=4711&metadata[note]=a%20b%26c");
    pay_psp_request_free(&req);

    json_decref(md);
}


Test(psp_ops, stripe_leaves_out_metadata_that_would_take_our_keys_or_pass_50)
{
    int                 i;
    char                key[16];
    json_t             *md;
    pay_psp_request_t   req;
    pay_psp_refund_t    r = op_refund();

    /* "nonce" is the gateway's: the merchant's would overwrite it */
    md = json_pack("{ss ss}", "nonce", "theirs", "order", "4711");
    r.metadata = md;
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
                     "payment_intent=pi_3AbC&amount=400"
                     "&metadata[nonce]=m1%3Arf_0123456789abcdef01234567");
    pay_psp_request_free(&req);
    json_decref(md);

    /* 49 keys and the nonce are Stripe's 50; with metadata[reason], 51 */
    md = json_object();
    for (i = 0; i < 49; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        json_object_set_new(md, key, json_string("v"));
    }
    r.metadata = md;
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect(strstr(req.body, "&metadata[k48]=v") != NULL, "%s", req.body);
    pay_psp_request_free(&req);

    r.reason = "broken on arrival";
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect(strstr(req.body, "metadata[k0]") == NULL, "%s", req.body);
    cr_expect(strstr(req.body, "&metadata[reason]=broken") != NULL);
    pay_psp_request_free(&req);
    json_decref(md);
}


Test(psp_ops, generic_refund_and_payout_carry_the_merchants_metadata)
{
    json_t             *md;
    pay_psp_request_t   req;
    pay_psp_refund_t    r = op_refund();
    pay_psp_payout_t    p = op_payout();

    md = json_pack("{ss}", "order", "4711");
    r.payment_ref = "gp_1";
    r.metadata = md;
    p.destination = "payee-7";
    p.metadata = md;

    cr_assert_eq(pay_dialect_generic.refund(&r, &req), 0);
    cr_expect_str_eq(req.body,
              "{\"reference\":\"" OP_NONCE "\",\"payment_id\":\"gp_1\","
              "\"amount\":\"4.00\",\"currency\":\"EUR\","
              "\"metadata\":{\"order\":\"4711\"}}");
    pay_psp_request_free(&req);

    cr_assert_eq(pay_dialect_generic.payout(&p, &req), 0);
    cr_expect_str_eq(req.body,
              "{\"reference\":\"" OP_PNONCE "\",\"destination\":\"payee-7\","
              "\"amount\":\"25.00\",\"currency\":\"EUR\","
              "\"metadata\":{\"order\":\"4711\"}}");
    pay_psp_request_free(&req);

    /* an empty object is no metadata */
    json_decref(md);
    md = json_object();
    r.metadata = md;
    cr_assert_eq(pay_dialect_generic.refund(&r, &req), 0);
    cr_expect(strstr(req.body, "metadata") == NULL, "%s", req.body);
    pay_psp_request_free(&req);
    json_decref(md);
}


Test(psp_ops, adyen_operations_have_no_place_for_metadata)
{
    json_t             *md;
    pay_psp_request_t   req, plain;
    pay_psp_refund_t    r = op_refund();

    r.payment_ref = "8835511210681234";
    cr_assert_eq(pay_dialect_adyen.refund(&r, &plain), 0);

    md = json_pack("{ss}", "order", "4711");
    r.metadata = md;
    cr_assert_eq(pay_dialect_adyen.refund(&r, &req), 0);
    cr_expect_str_eq(req.body, plain.body);
    pay_psp_request_free(&req);
    pay_psp_request_free(&plain);
    json_decref(md);
}


Test(psp_ops, amounts_go_in_each_dialects_units)
{
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();
    pay_psp_payout_t   p = op_payout();

    /* ISK 500: Stripe and Adyen two decimals, generic ISO's none */
    r.currency = "ISK";
    r.amount = 500;
    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    cr_expect_not_null(strstr(req.body, "&amount=50000&"));
    pay_psp_request_free(&req);

    r.payment_ref = "PSP1";
    cr_assert_eq(pay_dialect_adyen.refund(&r, &req), 0);
    cr_expect_not_null(strstr(req.body, "{\"value\":50000,"));
    pay_psp_request_free(&req);

    r.payment_ref = "gp_1";
    cr_assert_eq(pay_dialect_generic.refund(&r, &req), 0);
    cr_expect_not_null(strstr(req.body, "\"amount\":\"500\""));
    pay_psp_request_free(&req);

    /* JPY at Stripe: none */
    p.currency = "JPY";
    p.amount = 1200;
    cr_assert_eq(pay_dialect_stripe.payout(&p, &req), 0);
    cr_expect_str_eq(req.body,
              "amount=1200&currency=jpy&destination=acct_1Seller"
              "&metadata[nonce]=m1%3Apyo_0123456789abcdef01234567"
              "&transfer_group=m1%3Apyo_0123456789abcdef01234567");
    pay_psp_request_free(&req);
}


Test(psp_ops, amounts_without_an_exact_psp_value_are_refused)
{
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();
    pay_psp_payout_t   p = op_payout();

    /* IDR 10.50: Adyen has no decimals for it */
    r.currency = "IDR";
    r.amount = 1050;
    r.payment_ref = "PSP1";
    cr_expect_eq(pay_dialect_adyen.refund(&r, &req), -1);
    cr_expect_null(req.path);

    /* MGA 10.50 at Stripe */
    r.currency = "MGA";
    r.payment_ref = "pi_1";
    cr_expect_eq(pay_dialect_stripe.refund(&r, &req), -1);

    /* KWD 1.005 at Stripe: multiples of 10 only */
    p.currency = "KWD";
    p.amount = 1005;
    cr_expect_eq(pay_dialect_stripe.payout(&p, &req), -1);
    p.amount = 1010;
    cr_expect_eq(pay_dialect_stripe.payout(&p, &req), 0);
    pay_psp_request_free(&req);
}


Test(psp_ops, bad_inputs_are_refused_in_every_dialect)
{
    size_t             i, j;
    pay_psp_request_t  req;
    pay_psp_refund_t   r;
    pay_psp_payout_t   p;
    char               long_nonce[80], long_reason[260];
    const pay_dialect_t  *d;

    memset(long_nonce, 'a', sizeof(long_nonce) - 1);
    long_nonce[2] = ':';
    long_nonce[65] = '\0';
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[201] = '\0';

    for (i = 0; pay_dialects[i] != NULL; i++) {
        d = pay_dialects[i];

        for (j = 0; j < 14; j++) {
            r = op_refund();
            r.payment_ref = "PAYREF1";

            switch (j) {
            case 0: r.nonce = NULL; break;
            case 1: r.nonce = ""; break;
            case 2: r.nonce = "m1rf_1"; break;
            case 3: r.nonce = "m1:rf:1"; break;
            case 4: r.nonce = "m1:rf 1"; break;
            case 5: r.nonce = long_nonce; break;
            case 6: r.nonce = ":rf_1"; break;
            case 7: r.amount = 0; break;
            case 8: r.amount = -400; break;
            case 9: r.currency = "eur"; break;
            case 10: r.currency = "XXX"; break;
            case 11: r.payment_ref = NULL; break;
            case 12: r.reason = long_reason; break;
            case 13: r.reason = "bad\nline"; break;
            }

            cr_expect_eq(d->refund(&r, &req), -1, "%s refund case %zu",
                         d->name, j);
            cr_expect_null(req.path);
            cr_expect_null(req.body);
        }

        for (j = 0; j < 6; j++) {
            p = op_payout();
            p.destination = (d->id == PAY_DIALECT_ADYEN) ? "BA1"
                                                         : "acct_1Seller";

            switch (j) {
            case 0: p.nonce = "no-colon"; break;
            case 1: p.destination = NULL; break;
            case 2: p.destination = ""; break;
            case 3: p.amount = 0; break;
            case 4: p.currency = NULL; break;
            case 5: p.destination = "acct 1"; break;
            }

            cr_expect_eq(d->payout(&p, &req), -1, "%s payout case %zu",
                         d->name, j);
            cr_expect_null(req.path);
        }

        cr_expect_eq(d->refund(NULL, &req), -1);
        cr_expect_eq(d->payout(NULL, &req), -1);
    }
}


Test(psp_ops, adyen_payment_ref_must_fit_a_path_segment)
{
    size_t             i;
    pay_psp_request_t  req;
    pay_psp_refund_t   r = op_refund();
    static const char *bad[] = {
        "../sessions", "PSP1/refunds", "PSP%2F1", "PSP 1", "PSP_1", "",
        "PSP1?x=1",
        "A0123456789012345678901234567890123456789012345678901234567890123"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.payment_ref = bad[i];
        cr_expect_eq(pay_dialect_adyen.refund(&r, &req), -1, "%s", bad[i]);
    }

    /* and a merchant account is needed */
    r.payment_ref = "PSP1";
    r.merchant_account = NULL;
    cr_expect_eq(pay_dialect_adyen.refund(&r, &req), -1);
}


/* Transfers API v4, TransferInfo.description: "Supported characters:
 * [a-z] [A-Z] [0-9] / - ? : ( ) . , ' + Space" */
Test(psp_ops, adyen_description_keeps_only_adyens_characters)
{
    int   c;
    char  in[2], out[8], body[300], *expect;

    for (c = 1; c < 256; c++) {
        in[0] = (char) c;
        in[1] = '\0';
        pay_adyen_description(in, out, sizeof(out));

        expect = (isalnum(c) && c < 128) || strchr("/-?:().,'+ ", c) != NULL
                 ? in : "-";
        cr_expect_str_eq(out, expect, "byte 0x%02x", c);
        cr_expect_eq(pay_adyen_description_ok((unsigned char) c),
                     expect == in, "byte 0x%02x", c);
    }

    cr_expect_eq(pay_adyen_description_ok('\0'), 0);

    /* cut to Adyen's 140 characters, and to the buffer */
    memset(body, 'a', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    pay_adyen_description(body, body, sizeof(body));
    cr_expect_eq(strlen(body), (size_t) PAY_ADYEN_DESCRIPTION_MAX);
    pay_adyen_description("payout m1:pyo_1", out, sizeof(out));
    cr_expect_str_eq(out, "payout ");
}


Test(psp_ops, destinations_must_be_the_psps_kind)
{
    pay_psp_request_t  req;
    pay_psp_payout_t   p = op_payout();

    p.destination = "ba_123";
    cr_expect_eq(pay_dialect_stripe.payout(&p, &req), -1);
    p.destination = "acct_";
    cr_expect_eq(pay_dialect_stripe.payout(&p, &req), -1);
    p.destination = "acct_1Seller";
    cr_expect_eq(pay_dialect_adyen.payout(&p, &req), -1);
    p.destination = "BA1";
    p.source_account = "BA/2";
    cr_expect_eq(pay_dialect_adyen.payout(&p, &req), -1);
}


Test(psp_ops, the_same_input_gives_the_same_bytes)
{
    size_t             i;
    pay_psp_request_t  a, b;
    pay_psp_refund_t   r = op_refund();
    pay_psp_payout_t   p = op_payout();
    const pay_dialect_t  *d;

    r.payment_ref = "PAYREF1";
    r.reason = "OTHER";

    for (i = 0; pay_dialects[i] != NULL; i++) {
        d = pay_dialects[i];
        p.destination = (d->id == PAY_DIALECT_ADYEN) ? "BA1" : "acct_1S";

        cr_assert_eq(d->refund(&r, &a), 0, "%s", d->name);
        cr_assert_eq(d->refund(&r, &b), 0);
        cr_expect_str_eq(a.body, b.body);
        cr_expect_str_eq(a.path, b.path);
        pay_psp_request_free(&a);
        pay_psp_request_free(&b);

        cr_assert_eq(d->payout(&p, &a), 0, "%s", d->name);
        cr_assert_eq(d->payout(&p, &b), 0);
        cr_expect_str_eq(a.body, b.body);
        pay_psp_request_free(&a);
        pay_psp_request_free(&b);
    }
}


Test(psp_ops, a_built_op_round_trips_as_a_stored_request)
{
    char              *stored;
    pay_psp_request_t  req, back;
    pay_psp_refund_t   r = op_refund();

    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    stored = pay_psp_request_dump(&req);
    cr_assert_not_null(stored);
    cr_assert_eq(pay_psp_request_load(stored, strlen(stored), &back), 0);
    cr_expect_str_eq(back.body, req.body);
    cr_expect_str_eq(back.path, req.path);
    free(stored);
    pay_psp_request_free(&req);
    pay_psp_request_free(&back);
}


/* --- answers --------------------------------------------------------- */

static pay_psp_op_result_t
op_answer(const pay_dialect_t *d, int status, const char *body)
{
    pay_psp_op_result_t  res;

    d->op_answer(status, body, body ? strlen(body) : 0, &res);

    return res;
}


Test(psp_ops, answer_2xx_with_its_id_is_created)
{
    pay_psp_op_result_t  res;

    res = op_answer(&pay_dialect_stripe, 200,
                    "{\"id\":\"re_1\",\"object\":\"refund\","
                    "\"status\":\"pending\"}");
    cr_expect_eq(res.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(res.psp_ref, "re_1");

    res = op_answer(&pay_dialect_stripe, 200,
                    "{\"id\":\"tr_1\",\"object\":\"transfer\"}");
    cr_expect_eq(res.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(res.psp_ref, "tr_1");

    res = op_answer(&pay_dialect_adyen, 201,
                    "{\"merchantAccount\":\"M\",\"paymentPspReference\":"
                    "\"PSPAUTH\",\"pspReference\":\"PSPREF\","
                    "\"reference\":\"m1:rf_1\",\"status\":\"received\"}");
    cr_expect_eq(res.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(res.psp_ref, "PSPREF");

    res = op_answer(&pay_dialect_adyen, 202,
                    "{\"id\":\"TR0001\",\"status\":\"authorised\"}");
    cr_expect_eq(res.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(res.psp_ref, "TR0001");

    res = op_answer(&pay_dialect_generic, 201,
                    "{\"id\":\"grf_1\",\"status\":\"pending\"}");
    cr_expect_eq(res.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(res.psp_ref, "grf_1");
}


Test(psp_ops, answer_2xx_without_a_usable_id_is_retry)
{
    size_t               i, j;
    pay_psp_op_result_t  res;
    static const char   *bodies[] = {
        "{\"status\":\"pending\"}", "{\"id\":\"\"}", "{\"id\":7}",
        "{\"id\":\"re 1\"}", "not json", "[\"re_1\"]", "", NULL,
        "{\"id\":\"re_1\",\"id\":\"re_2\"}"
    };

    for (i = 0; pay_dialects[i] != NULL; i++) {
        for (j = 0; j < sizeof(bodies) / sizeof(bodies[0]); j++) {
            res = op_answer(pay_dialects[i], 200, bodies[j]);
            cr_expect_eq(res.outcome, PAY_PSP_RETRY, "%s %zu",
                         pay_dialects[i]->name, j);
            cr_expect_str_eq(res.psp_ref, "");
        }
    }
}


Test(psp_ops, answer_4xx_is_refused_with_the_psps_reason)
{
    pay_psp_op_result_t  res;

    res = op_answer(&pay_dialect_stripe, 400,
                    "{\"error\":{\"type\":\"invalid_request_error\","
                    "\"code\":\"charge_already_refunded\","
                    "\"message\":\"Charge ch_1 has already been "
                    "refunded.\"}}");
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(res.reason, "Charge ch_1 has already been refunded.");

    res = op_answer(&pay_dialect_adyen, 422,
                    "{\"status\":422,\"errorCode\":\"167\","
                    "\"message\":\"Original pspReference required for this "
                    "operation\",\"errorType\":\"validation\"}");
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(res.reason,
                     "Original pspReference required for this operation");

    /* Adyen's "request already processed or in progress": the refund
     * or transfer an earlier attempt sent may well be done; never FAILED
     * (its amount would be refundable or payable again) */
    res = op_answer(&pay_dialect_adyen, 422,
                    "{\"status\":422,\"errorCode\":\"704\",\"message\":"
                    "\"request already processed or in progress\","
                    "\"errorType\":\"validation\"}");
    cr_expect_eq(res.outcome, PAY_PSP_RETRY);
    cr_expect_eq(res.key_in_use, 1);
    cr_expect_str_eq(res.reason, "the PSP holds this idempotency key "
                     "for an earlier request (HTTP 422)");

    res = op_answer(&pay_dialect_generic, 422,
                    "{\"error\":{\"code\":\"insufficient_funds\","
                    "\"message\":\"not enough money\"}}");
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(res.reason, "not enough money");

    res = op_answer(&pay_dialect_generic, 404, "");
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(res.reason, "the PSP refused the operation (HTTP 404)");

    res = op_answer(&pay_dialect_stripe, 402, "{}");
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
}


Test(psp_ops, answer_401_403_is_auth_without_the_psps_words)
{
    pay_psp_op_result_t  res;

    res = op_answer(&pay_dialect_stripe, 401,
                    "{\"error\":{\"message\":\"Invalid API Key provided: "
                    "sk_test_XXXX\"}}");
    cr_expect_eq(res.outcome, PAY_PSP_AUTH);
    cr_expect_null(strstr(res.reason, "sk_test"));

    res = op_answer(&pay_dialect_adyen, 403, "{}");
    cr_expect_eq(res.outcome, PAY_PSP_AUTH);
}


Test(psp_ops, answer_5xx_409_429_and_none_are_retry)
{
    size_t               i;
    pay_psp_op_result_t  res;
    static const int     st[] = { 500, 502, 503, 504, 409, 429, 0, 302 };

    for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        res = op_answer(&pay_dialect_generic, st[i],
                        "{\"id\":\"grf_1\",\"error\":\"later\"}");
        cr_expect_eq(res.outcome, PAY_PSP_RETRY, "%d", st[i]);
        cr_expect_str_eq(res.psp_ref, "");
    }
}


Test(psp_ops, refused_reason_never_holds_our_secret)
{
    char                 body[1024];
    pay_psp_op_result_t  res;
    const char           secret[] = "AQEyhmfxK4Secret";

    snprintf(body, sizeof(body),
             "{\"status\":422,\"message\":\"key %s is not allowed for %s\"}",
             secret, secret);

    pay_psp_parse_op_redact(&pay_dialect_adyen, 422, body, strlen(body),
                            secret, strlen(secret), &res);
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    cr_expect_null(strstr(res.reason, secret));
    cr_expect_str_eq(res.reason,
                     "key [redacted] is not allowed for [redacted]");

    /* without the secret, a short key-like word is left alone */
    pay_dialect_adyen.op_answer(422, body, strlen(body), &res);
    cr_expect_not_null(strstr(res.reason, secret));

    /* and a long key-like run is taken out in any case */
    snprintf(body, sizeof(body),
             "{\"error\":{\"message\":\"bad key "
             "sk_live_0123456789abcdefghijklmnopqrstuv\"}}");
    pay_psp_parse_op_redact(&pay_dialect_stripe, 400, body, strlen(body),
                            NULL, 0, &res);
    cr_expect_str_eq(res.reason, "bad key [redacted]");
}


Test(psp_ops, a_key_held_for_other_bytes_is_no_refusal,
     .description = "Stripe's 400 idempotency_error and the generic 422 "
                    "idempotency_key_reused say an earlier attempt holds "
                    "the key: it may have refunded or paid out, so the "
                    "operation is never FAILED (its amount would be free "
                    "to refund or pay out again)")
{
    pay_psp_op_result_t  res;
    const char          *stripe = "{\"error\":{\"type\":\"idempotency_error\","
                                  "\"message\":\"Keys for idempotent requests "
                                  "can only be used with the same parameters "
                                  "they were first used with.\"}}";
    const char          *generic = "{\"error\":{\"code\":"
                                   "\"idempotency_key_reused\",\"message\":"
                                   "\"Idempotency-Key used with another "
                                   "body\"}}";

    pay_psp_parse_op_redact(&pay_dialect_stripe, 400, stripe, strlen(stripe),
                            NULL, 0, &res);
    cr_expect_eq(res.outcome, PAY_PSP_RETRY);
    cr_expect_eq(res.key_in_use, 1);

    pay_psp_parse_op_redact(&pay_dialect_generic, 422, generic,
                            strlen(generic), NULL, 0, &res);
    cr_expect_eq(res.outcome, PAY_PSP_RETRY);
    cr_expect_eq(res.key_in_use, 1);

    /* another type or code is still a refusal */
    pay_psp_parse_op_redact(&pay_dialect_stripe, 400,
                            "{\"error\":{\"type\":\"invalid_request_error\"}}",
                            42, NULL, 0, &res);
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    pay_psp_parse_op_redact(&pay_dialect_generic, 422,
                            "{\"error\":{\"code\":\"amount_too_large\"}}",
                            37, NULL, 0, &res);
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
}


Test(psp_ops, secret_straddling_the_cut_is_removed_before_truncation)
{
    char                 body[2048], msg[600];
    pay_psp_op_result_t  res;
    const char           secret[] = "s3cr3t-Key";

    memset(msg, 'x', sizeof(msg));
    /* words of 10, so nothing is key-like but the secret itself */
    for (size_t i = 10; i < 590; i += 11) {
        msg[i] = ' ';
    }
    memcpy(msg + 248, secret, strlen(secret));
    msg[590] = '\0';
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);

    pay_psp_parse_op_redact(&pay_dialect_generic, 400, body, strlen(body),
                            secret, strlen(secret), &res);
    cr_expect_eq(res.outcome, PAY_PSP_REFUSED);
    cr_expect_null(strstr(res.reason, "s3cr"));
    cr_expect_lt(strlen(res.reason), sizeof(res.reason));
}


Test(psp_ops, no_dialect_is_retry)
{
    pay_psp_op_result_t  res;

    pay_psp_parse_op_redact(NULL, 200, "{\"id\":\"x\"}", 10, NULL, 0, &res);
    cr_expect_eq(res.outcome, PAY_PSP_RETRY);
}


Test(psp_ops, every_dialect_has_its_operations)
{
    size_t  i;

    for (i = 0; pay_dialects[i] != NULL; i++) {
        cr_expect_not_null(pay_dialects[i]->refund, "%s",
                           pay_dialects[i]->name);
        cr_expect_not_null(pay_dialects[i]->payout);
        cr_expect_not_null(pay_dialects[i]->op_answer);
        cr_expect_not_null(pay_dialects[i]->op_ref_fields[0]);
    }
}
