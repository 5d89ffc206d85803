/*
 * Unit tests: PSP dialects, registration requests and answers
 * (src/psp.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/psp.h>


#define PS_SUCCESS  "https://gw.example/v1/return/stripe/co_7f3a?t=abc.def"
#define PS_CANCEL   "https://gw.example/v1/return/stripe/co_7f3a?t=ghi.jkl"
#define PS_EXP      1795341600          /* 2026-11-22T10:00:00Z */


typedef struct {
    pay_order_t             orders[3];
    pay_checkout_t          co;
    pay_psp_registration_t  reg;
} ps_fixture_t;


static void
ps_fixture(ps_fixture_t *f, const char *currency, int exponent)
{
    memset(f, 0, sizeof(*f));

    strcpy(f->orders[0].id, "po_1");
    strcpy(f->orders[0].seller, "seller_42");
    f->orders[0].amount = 1000;
    strcpy(f->orders[1].id, "po_2");
    strcpy(f->orders[1].seller, "seller_77");
    f->orders[1].amount = 500;

    strcpy(f->co.checkout_id, "co_7f3a");
    strcpy(f->co.psp, "stripe");
    strcpy(f->co.currency, currency);
    f->co.exponent = exponent;
    f->co.total = 1500;
    f->co.success_url = "https://shop.example/thanks";
    f->co.cancel_url = "https://shop.example/cart";
    f->co.norders = 2;
    f->co.orders = f->orders;

    f->reg.merchant_id = "m_1";
    f->reg.nonce = "m_1:co_7f3a";
    f->reg.co = &f->co;
    f->reg.return_success = PS_SUCCESS;
    f->reg.return_cancel = PS_CANCEL;
    f->reg.expires_at = PS_EXP;
    f->reg.adyen_merchant_account = "TestMerchantECOM";
}


static char *
ps_build(pay_dialect_e d, const ps_fixture_t *f)
{
    char               *body;
    pay_psp_request_t   req;

    if (pay_psp_build_registration(d, &f->reg, &req) != 0) {
        cr_expect_null(req.body);
        return NULL;
    }

    cr_expect_eq(req.body_len, strlen(req.body));
    body = strdup(req.body);
    pay_psp_request_free(&req);

    return body;
}


static void
ps_parse(pay_dialect_e d, int status, const char *body, pay_psp_result_t *r)
{
    pay_psp_parse_registration(d, status, body, body ? strlen(body) : 0, r);
}


Test(psp, dialect_names_exact)
{
    cr_expect_eq(pay_dialect_parse("stripe", 6), PAY_DIALECT_STRIPE);
    cr_expect_eq(pay_dialect_parse("adyen", 5), PAY_DIALECT_ADYEN);
    cr_expect_eq(pay_dialect_parse("generic", 7), PAY_DIALECT_GENERIC);
    cr_expect_eq(pay_dialect_parse("stripes", 6), PAY_DIALECT_STRIPE);
    cr_expect_eq(pay_dialect_parse("stripe", 5), 0);
    cr_expect_eq(pay_dialect_parse("Stripe", 6), 0);
    cr_expect_eq(pay_dialect_parse("", 0), 0);
    cr_expect_eq(pay_dialect_parse(NULL, 6), 0);
}


Test(psp, stripe_request_path_and_type)
{
    ps_fixture_t       f;
    pay_psp_request_t  req;

    ps_fixture(&f, "USD", 2);
    cr_assert_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg, &req),
                 0);
    cr_expect_str_eq(req.path, "/v1/checkout/sessions");
    cr_expect_str_eq(req.content_type, "application/x-www-form-urlencoded");
    pay_psp_request_free(&req);
    cr_expect_null(req.body);
    pay_psp_request_free(&req);
    pay_psp_request_free(NULL);
}


Test(psp, stripe_body_exact_two_orders)
{
    char          *body;
    ps_fixture_t   f;

    ps_fixture(&f, "USD", 2);
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(body);
    cr_expect_str_eq(body,
        "mode=payment"
        "&client_reference_id=m_1%3Aco_7f3a"
        "&success_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fstripe"
        "%2Fco_7f3a%3Ft%3Dabc.def"
        "&cancel_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fstripe"
        "%2Fco_7f3a%3Ft%3Dghi.jkl"
        "&expires_at=1795341600"
        "&metadata[merchant_id]=m_1"
        "&metadata[checkout_id]=co_7f3a"
        "&line_items[0][price_data][currency]=usd"
        "&line_items[0][price_data][unit_amount]=1000"
        "&line_items[0][price_data][product_data][name]=po_1"
        "&line_items[0][quantity]=1"
        "&line_items[1][price_data][currency]=usd"
        "&line_items[1][price_data][unit_amount]=500"
        "&line_items[1][price_data][product_data][name]=po_2"
        "&line_items[1][quantity]=1");
    free(body);
}


Test(psp, stripe_body_byte_identical_across_builds)
{
    char          *a, *b;
    ps_fixture_t   f;

    ps_fixture(&f, "USD", 2);
    a = ps_build(PAY_DIALECT_STRIPE, &f);
    b = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}


Test(psp, stripe_values_percent_encoded)
{
    char          *body;
    ps_fixture_t   f;

    ps_fixture(&f, "USD", 2);
    f.reg.merchant_id = "m&x=1+2~a.b-c_d";
    f.co.norders = 1;
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(body);

    /* only ALPHA DIGIT - . _ ~ stay as they are */
    cr_expect_not_null(strstr(body,
                              "&metadata[merchant_id]=m%26x%3D1%2B2~a.b-c_d&"),
                       "%s", body);
    free(body);
}


Test(psp, stripe_three_decimal_amount_must_end_in_zero)
{
    char          *body;
    ps_fixture_t   f;

    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "KWD", 1250),
                 1);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "KWD", 1255),
                 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "BHD", 1), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "JOD", 7), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "OMR", 9), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "TND", 11), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "USD", 1255),
                 1);

    ps_fixture(&f, "KWD", 3);
    f.orders[1].amount = 505;
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_expect_null(body);

    f.orders[1].amount = 510;
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_expect_not_null(body);
    free(body);
}


Test(psp, amount_supported_other_dialects)
{
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_ADYEN, "KWD", 1255), 1);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_GENERIC, "KWD", 1255),
                 1);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_ADYEN, "USD", 0), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "USD", -10), 0);
    cr_expect_eq(pay_psp_amount_supported(0, "USD", 10), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, NULL, 10), 0);
}


Test(psp, adyen_body_exact)
{
    char               *body;
    ps_fixture_t        f;
    pay_psp_request_t   req;

    ps_fixture(&f, "EUR", 2);
    cr_assert_eq(pay_psp_build_registration(PAY_DIALECT_ADYEN, &f.reg, &req),
                 0);
    cr_expect_str_eq(req.path, "/v71/sessions");
    cr_expect_str_eq(req.content_type, "application/json");
    pay_psp_request_free(&req);

    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_str_eq(body,
        "{\"merchantAccount\":\"TestMerchantECOM\","
        "\"amount\":{\"value\":1500,\"currency\":\"EUR\"},"
        "\"reference\":\"m_1:co_7f3a\","
        "\"returnUrl\":\"" PS_SUCCESS "\","
        "\"expiresAt\":\"2026-11-22T10:00:00Z\","
        "\"mode\":\"hosted\","
        "\"lineItems\":["
        "{\"id\":\"po_1\",\"description\":\"po_1\","
        "\"amountIncludingTax\":1000,\"quantity\":1},"
        "{\"id\":\"po_2\",\"description\":\"po_2\","
        "\"amountIncludingTax\":500,\"quantity\":1}]}");
    free(body);
}


Test(psp, adyen_expires_at_is_utc_iso8601)
{
    char          *body;
    ps_fixture_t   f;

    ps_fixture(&f, "EUR", 2);

    f.reg.expires_at = 951782400;
    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"2000-02-29T00:00:00Z\""), "%s", body);
    free(body);

    f.reg.expires_at = 1700000000;
    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"2023-11-14T22:13:20Z\""), "%s", body);
    free(body);

    f.reg.expires_at = 253402300799;
    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"9999-12-31T23:59:59Z\""), "%s", body);
    free(body);

    f.reg.expires_at = 253402300800;
    cr_expect_null(ps_build(PAY_DIALECT_ADYEN, &f));
}


Test(psp, adyen_requires_merchant_account)
{
    ps_fixture_t  f;

    ps_fixture(&f, "EUR", 2);
    f.reg.adyen_merchant_account = NULL;
    cr_expect_null(ps_build(PAY_DIALECT_ADYEN, &f));
    f.reg.adyen_merchant_account = "";
    cr_expect_null(ps_build(PAY_DIALECT_ADYEN, &f));
}


Test(psp, generic_body_exact)
{
    char               *body;
    ps_fixture_t        f;
    pay_psp_request_t   req;

    ps_fixture(&f, "USD", 2);
    cr_assert_eq(pay_psp_build_registration(PAY_DIALECT_GENERIC, &f.reg,
                                            &req), 0);
    cr_expect_str_eq(req.path, "/sessions");
    cr_expect_str_eq(req.content_type, "application/json");
    pay_psp_request_free(&req);

    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_str_eq(body,
        "{\"reference\":\"m_1:co_7f3a\",\"amount\":\"15.00\","
        "\"currency\":\"USD\",\"return_url\":\"" PS_SUCCESS "\","
        "\"cancel_url\":\"" PS_CANCEL "\",\"expires_at\":1795341600}");
    free(body);
}


Test(psp, generic_amount_uses_currency_exponent)
{
    char          *body;
    ps_fixture_t   f;

    ps_fixture(&f, "JPY", 0);
    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"amount\":\"1500\""), "%s", body);
    free(body);

    ps_fixture(&f, "KWD", 3);
    f.orders[1].amount = 255;
    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"amount\":\"1.255\""), "%s", body);
    free(body);
}


Test(psp, build_sums_orders_itself)
{
    char          *body;
    ps_fixture_t   f;

    /* co->total is not trusted: the amount sent is the orders' sum */
    ps_fixture(&f, "USD", 2);
    f.co.total = 1;
    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"amount\":\"15.00\""), "%s", body);
    free(body);

    f.orders[0].amount = INT64_MAX;
    cr_expect_null(ps_build(PAY_DIALECT_GENERIC, &f));
    cr_expect_null(ps_build(PAY_DIALECT_ADYEN, &f));
}


Test(psp, build_rejects_bad_registration)
{
    ps_fixture_t       f;
    pay_psp_request_t  req;

    ps_fixture(&f, "USD", 2);
    f.reg.nonce = "m_1:co_7f3a_0123456789012345678901234567890123456789"
                  "0123456789012345";
    cr_expect_null(ps_build(PAY_DIALECT_STRIPE, &f));

    ps_fixture(&f, "USD", 2);
    f.reg.nonce = "";
    cr_expect_null(ps_build(PAY_DIALECT_STRIPE, &f));

    ps_fixture(&f, "USD", 2);
    f.co.norders = 0;
    cr_expect_null(ps_build(PAY_DIALECT_STRIPE, &f));

    ps_fixture(&f, "USD", 2);
    f.reg.expires_at = 0;
    cr_expect_null(ps_build(PAY_DIALECT_STRIPE, &f));

    ps_fixture(&f, "USD", 2);
    f.reg.return_success = NULL;
    cr_expect_null(ps_build(PAY_DIALECT_GENERIC, &f));

    ps_fixture(&f, "USD", 2);
    f.reg.return_cancel = "https://gw.example/a b";
    cr_expect_null(ps_build(PAY_DIALECT_GENERIC, &f));

    ps_fixture(&f, "XYZ", 2);
    cr_expect_null(ps_build(PAY_DIALECT_STRIPE, &f));

    ps_fixture(&f, "USD", 2);
    f.orders[1].amount = 0;
    cr_expect_null(ps_build(PAY_DIALECT_ADYEN, &f));

    ps_fixture(&f, "USD", 2);
    cr_expect_null(ps_build(0, &f));
    cr_expect_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, NULL, &req),
                 -1);
    cr_expect_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg, NULL),
                 -1);
}


Test(psp, stripe_created)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_STRIPE, 200,
             "{\"id\":\"cs_test_a1b2\",\"object\":\"checkout.session\","
             "\"url\":\"https://checkout.stripe.com/c/pay/cs_test_a1b2#x\","
             "\"status\":\"open\",\"payment_status\":\"unpaid\","
             "\"expires_at\":1795341600,\"metadata\":{\"a\":\"b\"}}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(r.token, "cs_test_a1b2");
    cr_expect_str_eq(r.url, "https://checkout.stripe.com/c/pay/cs_test_a1b2#x");
    cr_expect_eq(r.expires_at, 1795341600);
}


Test(psp, adyen_created_expires_at_iso8601)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_ADYEN, 201,
             "{\"amount\":{\"currency\":\"EUR\",\"value\":1500},"
             "\"expiresAt\":\"2026-11-22T10:44:24+01:00\","
             "\"id\":\"CSE9A4B3F2\",\"merchantAccount\":\"TestMerchantECOM\","
             "\"reference\":\"m_1:co_7f3a\",\"sessionData\":\"Ab02b4c0!BQ\","
             "\"url\":\"https://checkoutshopper-test.adyen.com/checkoutshopper"
             "/pay/CSE9A4B3F2\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(r.token, "CSE9A4B3F2");
    cr_expect_eq(r.expires_at, 1795340664);

    ps_parse(PAY_DIALECT_ADYEN, 201,
             "{\"id\":\"CS1\",\"url\":\"https://x.example/p\","
             "\"expiresAt\":\"2026-11-22T10:00:00Z\"}", &r);
    cr_expect_eq(r.expires_at, 1795341600);

    ps_parse(PAY_DIALECT_ADYEN, 201,
             "{\"id\":\"CS1\",\"url\":\"https://x.example/p\","
             "\"expiresAt\":\"2026-11-22T10:00:00.123Z\"}", &r);
    cr_expect_eq(r.expires_at, 1795341600);

    ps_parse(PAY_DIALECT_ADYEN, 201,
             "{\"id\":\"CS1\",\"url\":\"https://x.example/p\","
             "\"expiresAt\":\"2024-02-29T23:59:59-05:30\"}", &r);
    cr_expect_eq(r.expires_at, 1709270999);
}


Test(psp, unusable_expiry_is_zero_not_a_failure)
{
    size_t             i;
    pay_psp_result_t   r;
    static const char *bad[] = {
        "\"2026-02-30T10:00:00Z\"", "\"2026-11-22 10:00:00Z\"",
        "\"2026-11-22T10:00:00\"", "\"2026-11-22T24:00:00Z\"",
        "\"2026-11-22T10:00:00.Z\"", "\"2026-11-22T10:00:00+0100\"",
        "\"2025-02-29T10:00:00Z\"", "\"1969-12-31T23:59:59Z\"", "\"\"",
        "null", "-5", "1.5e9", "true",
    };
    char               body[200];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"id\":\"CS1\",\"url\":\"https://x/p\","
                 "\"expiresAt\":%s}", bad[i]);
        ps_parse(PAY_DIALECT_ADYEN, 201, body, &r);
        cr_expect_eq(r.outcome, PAY_PSP_CREATED, "%s", body);
        cr_expect_eq(r.expires_at, 0, "%s", body);
    }

    ps_parse(PAY_DIALECT_ADYEN, 201, "{\"id\":\"CS1\",\"url\":\"https://x/p\"}",
             &r);
    cr_expect_eq(r.outcome, PAY_PSP_CREATED);
    cr_expect_eq(r.expires_at, 0);
}


Test(psp, generic_created)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_GENERIC, 201,
             "{\"token\":\"tok_9\",\"url\":\"https://psp.example/s/tok_9\","
             "\"expires_at\":1795341600}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_CREATED);
    cr_expect_str_eq(r.token, "tok_9");
    cr_expect_str_eq(r.url, "https://psp.example/s/tok_9");
    cr_expect_eq(r.expires_at, 1795341600);

    /* the other dialects' token field is not this one's */
    ps_parse(PAY_DIALECT_GENERIC, 201,
             "{\"id\":\"tok_9\",\"url\":\"https://psp.example/s/tok_9\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);
}


Test(psp, created_needs_sane_token_and_url)
{
    size_t             i;
    pay_psp_result_t   r;
    char              *body;
    static const char *bad[] = {
        "{\"id\":\"\",\"url\":\"https://x/p\"}",
        "{\"id\":\"cs 1\",\"url\":\"https://x/p\"}",
        "{\"id\":\"cs\\n1\",\"url\":\"https://x/p\"}",
        "{\"id\":\"cs\\u00001\",\"url\":\"https://x/p\"}",
        "{\"id\":\"cs\\u00e91\",\"url\":\"https://x/p\"}",
        "{\"id\":1,\"url\":\"https://x/p\"}",
        "{\"id\":\"cs_1\",\"url\":\"\"}",
        "{\"id\":\"cs_1\",\"url\":null}",
        "{\"id\":\"cs_1\"}",
        "{\"url\":\"https://x/p\"}",
        "{\"id\":\"cs_1\",\"url\":\"https://x/p\",\"id\":\"cs_2\"}",
        "[\"cs_1\",\"https://x/p\"]",
        "not json", "", "{\"id\":\"cs_1\",\"url\":\"https://x/p\"",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_parse(PAY_DIALECT_STRIPE, 200, bad[i], &r);
        cr_expect_eq(r.outcome, PAY_PSP_RETRY, "%s", bad[i]);
        cr_expect_eq(r.token[0], '\0');
    }

    ps_parse(PAY_DIALECT_STRIPE, 200, NULL, &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);

    /* 255 characters fit the token, 256 do not */
    body = malloc(4096);
    cr_assert_not_null(body);
    strcpy(body, "{\"id\":\"");
    memset(body + 7, 't', 255);
    strcpy(body + 7 + 255, "\",\"url\":\"https://x/p\"}");
    ps_parse(PAY_DIALECT_STRIPE, 200, body, &r);
    cr_expect_eq(r.outcome, PAY_PSP_CREATED);
    cr_expect_eq(strlen(r.token), 255);

    memset(body + 7, 't', 256);
    strcpy(body + 7 + 256, "\",\"url\":\"https://x/p\"}");
    ps_parse(PAY_DIALECT_STRIPE, 200, body, &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);

    /* 2047 characters fit the URL, 2048 do not */
    strcpy(body, "{\"id\":\"cs_1\",\"url\":\"");
    memset(body + 20, 'u', 2047);
    strcpy(body + 20 + 2047, "\"}");
    ps_parse(PAY_DIALECT_STRIPE, 200, body, &r);
    cr_expect_eq(r.outcome, PAY_PSP_CREATED);

    memset(body + 20, 'u', 2048);
    strcpy(body + 20 + 2048, "\"}");
    ps_parse(PAY_DIALECT_STRIPE, 200, body, &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);
    free(body);
}


Test(psp, oversize_answer_is_retry)
{
    size_t             n, h;
    char              *body;
    pay_psp_result_t   r;

    n = 300 * 1024;
    body = malloc(n + 100);
    cr_assert_not_null(body);
    strcpy(body, "{\"id\":\"cs_1\",\"url\":\"https://x/p\",\"pad\":\"");
    h = strlen(body);
    memset(body + h, 'x', n);
    strcpy(body + h + n, "\"}");
    ps_parse(PAY_DIALECT_STRIPE, 200, body, &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);
    free(body);
}


Test(psp, refused_statuses_are_refused)
{
    static const int   st[] = { 400, 402, 404, 422 };
    size_t             i;
    pay_psp_result_t   r;

    for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        ps_parse(PAY_DIALECT_STRIPE, st[i],
                 "{\"error\":{\"type\":\"invalid_request_error\","
                 "\"code\":\"amount_too_small\","
                 "\"message\":\"Amount must be at least $0.50 usd\"}}", &r);
        cr_expect_eq(r.outcome, PAY_PSP_REFUSED, "%d", st[i]);
        cr_expect_str_eq(r.reason, "Amount must be at least $0.50 usd");
        cr_expect_eq(r.token[0], '\0');
    }
}


Test(psp, refused_reason_per_dialect)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_STRIPE, 400,
             "{\"error\":{\"code\":\"parameter_invalid_integer\"}}", &r);
    cr_expect_str_eq(r.reason, "parameter_invalid_integer");

    ps_parse(PAY_DIALECT_ADYEN, 422,
             "{\"status\":422,\"errorCode\":\"14_030\","
             "\"message\":\"Return URL is missing.\","
             "\"errorType\":\"validation\",\"pspReference\":\"X\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(r.reason, "Return URL is missing.");

    ps_parse(PAY_DIALECT_ADYEN, 422, "{\"errorCode\":\"14_030\"}", &r);
    cr_expect_str_eq(r.reason, "14_030");

    ps_parse(PAY_DIALECT_GENERIC, 402, "{\"error\":\"card_declined\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(r.reason, "card_declined");

    ps_parse(PAY_DIALECT_GENERIC, 400, "{\"message\":\"bad currency\"}", &r);
    cr_expect_str_eq(r.reason, "bad currency");
}


Test(psp, refused_without_reason_gets_generic_one)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_STRIPE, 402, "", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(r.reason, "the PSP refused the registration (HTTP 402)");

    ps_parse(PAY_DIALECT_ADYEN, 404, "<html>Not Found</html>", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(r.reason, "the PSP refused the registration (HTTP 404)");

    ps_parse(PAY_DIALECT_STRIPE, 400, "{\"error\":\"x\",\"error\":\"y\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_str_eq(r.reason, "the PSP refused the registration (HTTP 400)");

    ps_parse(PAY_DIALECT_GENERIC, 400, "{\"error\":\" \\n\\t \"}", &r);
    cr_expect_str_eq(r.reason, "the PSP refused the registration (HTTP 400)");
}


Test(psp, refused_reason_sanitised_to_printable_ascii)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_GENERIC, 400,
             "{\"error\":\"bad\\r\\n\\tvalue\\u0001 \\u001b[31m \\u00e9t\\u00e9"
             " \\ud83d\\ude00 <b>\\\"x\\\"</b>\\u007f\"}", &r);
    cr_expect_str_eq(r.reason, "bad value [31m ?t? ? <b>\"x\"</b>");
}


Test(psp, refused_reason_truncated)
{
    size_t             i;
    char               body[1200];
    pay_psp_result_t   r;

    strcpy(body, "{\"error\":\"");
    for (i = 0; i < 200; i++) {
        strcat(body, "word ");
    }
    strcat(body, "\"}");

    ps_parse(PAY_DIALECT_GENERIC, 400, body, &r);
    cr_expect_leq(strlen(r.reason), 255);
    cr_expect(strlen(r.reason) > 200);
    cr_expect_eq(strcmp(r.reason + strlen(r.reason) - 3, "..."), 0, "%s",
                 r.reason);
    cr_expect_eq(strncmp(r.reason, "word word", 9), 0);
}


Test(psp, refused_reason_never_holds_our_secret)
{
    char               body[2400];
    size_t             i;
    pay_psp_result_t   r;
    static const char  secret[] = "s3cr3t-Key:42";

    /* the credential itself, wherever it is, even past the cut */
    strcpy(body, "{\"error\":{\"message\":\"bad key s3cr3t-Key:42 ");
    for (i = 0; i < 250; i++) {
        strcat(body, "x ");
    }
    strcat(body, "s3cr3t-Key:42\"}}");

    pay_psp_parse_registration_redact(PAY_DIALECT_STRIPE, 400, body,
                                      strlen(body), secret,
                                      sizeof(secret) - 1, &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_null(strstr(r.reason, "s3cr3t"), "%s", r.reason);
    cr_expect_eq(strncmp(r.reason, "bad key [redacted] x", 20), 0, "%s",
                 r.reason);

    /* half of it straddling the cut is gone too: replaced before the cut */
    strcpy(body, "{\"error\":\"");
    for (i = 0; i < 124; i++) {
        strcat(body, "y ");
    }
    strcat(body, "abs3cr3t-Key:42\"}");
    pay_psp_parse_registration_redact(PAY_DIALECT_GENERIC, 400, body,
                                      strlen(body), secret,
                                      sizeof(secret) - 1, &r);
    cr_expect_eq(strlen(r.reason), 255);
    cr_expect_null(strstr(r.reason, "s3"), "%s", r.reason);
}


Test(psp, refused_reason_redacts_key_lookalikes)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_STRIPE, 400,
             "{\"error\":{\"message\":\"Invalid API Key provided: "
             "sk_test_4eC39HqLyjWDarjtT1zdp7dc\"}}", &r);
    cr_expect_str_eq(r.reason, "Invalid API Key provided: [redacted]");

    ps_parse(PAY_DIALECT_STRIPE, 400,
             "{\"error\":{\"message\":\"key=rk_live_abc, secret whsec_x\"}}",
             &r);
    cr_expect_str_eq(r.reason, "[redacted], secret [redacted]");

    ps_parse(PAY_DIALECT_ADYEN, 422,
             "{\"message\":\"key AQEyhmfxK4PIbhZLw0m/n3Q5qf3VaY9UCJ14XWZE03G/"
             "k2NFikzVGEiYj+4vtN/nNB4XqFV9kyZAr1Cl8Rn8= rejected\"}", &r);
    cr_expect_str_eq(r.reason, "key [redacted] rejected");

    /* ordinary words and short codes survive */
    ps_parse(PAY_DIALECT_ADYEN, 422,
             "{\"message\":\"Field 'amount.value' is invalid: 14_012\"}", &r);
    cr_expect_str_eq(r.reason, "Field 'amount.value' is invalid: 14_012");
}


Test(psp, auth_statuses_are_auth)
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_STRIPE, 401,
             "{\"error\":{\"message\":\"Invalid API Key provided: sk_x\"}}",
             &r);
    cr_expect_eq(r.outcome, PAY_PSP_AUTH);
    cr_expect_null(strstr(r.reason, "sk_x"));

    ps_parse(PAY_DIALECT_ADYEN, 403, "{\"message\":\"forbidden\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_AUTH);
    ps_parse(PAY_DIALECT_GENERIC, 401, NULL, &r);
    cr_expect_eq(r.outcome, PAY_PSP_AUTH);
}


Test(psp, other_statuses_are_retry)
{
    static const int   st[] = {
        0, -1, 100, 199, 300, 301, 303, 304, 405, 408, 409, 410, 413, 425,
        429, 499, 500, 502, 503, 504, 599, 600, 999
    };
    size_t             i;
    pay_dialect_e      d;
    pay_psp_result_t   r;

    for (d = PAY_DIALECT_STRIPE; d <= PAY_DIALECT_GENERIC; d++) {
        for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
            /* even with a body that would otherwise look created */
            ps_parse(d, st[i], "{\"id\":\"cs_1\",\"token\":\"t\","
                     "\"url\":\"https://x/p\"}", &r);
            cr_expect_eq(r.outcome, PAY_PSP_RETRY, "%d %d", d, st[i]);
            cr_expect_eq(r.token[0], '\0');
        }
    }
}


Test(psp, adyen_key_in_use_is_retry_not_refused,
     .description = "Adyen answers 422 with errorCode 704 to a request whose "
                    "Idempotency-Key an earlier attempt still holds; that "
                    "attempt may create the session, so this is no refusal "
                    "(a FAILED checkout could then be paid)")
{
    pay_psp_result_t  r;

    ps_parse(PAY_DIALECT_ADYEN, 422,
             "{\"status\":422,\"errorCode\":\"704\",\"message\":"
             "\"request already processed or in progress\","
             "\"errorType\":\"validation\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);
    cr_expect_eq(r.key_in_use, 1, "retried at once, though a 4xx");
    cr_expect_str_eq(r.reason, "the PSP holds this idempotency key "
                     "for an earlier request (HTTP 422)");

    /* another code is still a refusal; 704 means nothing to the others */
    ps_parse(PAY_DIALECT_ADYEN, 422, "{\"errorCode\":\"7040\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    cr_expect_eq(r.key_in_use, 0);
    ps_parse(PAY_DIALECT_ADYEN, 422, "{\"errorCode\":704}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    ps_parse(PAY_DIALECT_GENERIC, 422, "{\"errorCode\":\"704\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
    ps_parse(PAY_DIALECT_STRIPE, 400, "{\"errorCode\":\"704\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_REFUSED);
}


Test(psp, unknown_dialect_is_retry)
{
    pay_psp_result_t  r;

    ps_parse(0, 200, "{\"id\":\"cs_1\",\"url\":\"https://x/p\"}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);
    ps_parse((pay_dialect_e) 9, 400, "{}", &r);
    cr_expect_eq(r.outcome, PAY_PSP_RETRY);
}


/* The request carries the PSP's units, not ISO's (issue 15): a "10.00"
 * ISK order went to Stripe as 10 minor units, that is 0.10 ISK. */
Test(psp, bodies_carry_the_psps_minor_units)
{
    char          *body;
    ps_fixture_t   f;

    ps_fixture(&f, "ISK", 0);                 /* 1000 ISK + 500 ISK */
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body,
        "line_items[0][price_data][unit_amount]=100000&"), "%s", body);
    cr_expect_not_null(strstr(body,
        "line_items[1][price_data][unit_amount]=50000&"), "%s", body);
    free(body);

    ps_fixture(&f, "MGA", 2);                 /* 10.00 MGA + 5.00 MGA */
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body,
        "line_items[0][price_data][unit_amount]=10&"), "%s", body);
    free(body);

    f.orders[1].amount = 550;                 /* 5.50 MGA: not whole */
    cr_expect_null(ps_build(PAY_DIALECT_STRIPE, &f));

    ps_fixture(&f, "CLP", 0);                 /* 1000 CLP + 500 CLP */
    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"amount\":{\"value\":150000,"),
                       "%s", body);
    cr_expect_not_null(strstr(body, "\"amountIncludingTax\":100000,"),
                       "%s", body);
    free(body);

    ps_fixture(&f, "IDR", 2);                 /* 10.00 IDR + 5.00 IDR */
    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"amount\":{\"value\":15,"),
                       "%s", body);
    free(body);

    /* generic sends ISO decimal strings: unchanged */
    ps_fixture(&f, "ISK", 0);
    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"amount\":\"1500\""), "%s", body);
    free(body);
}


/* the stored request (pay_claim's psp_request) */

Test(psp, stored_request_round_trips)
{
    char               *s;
    ps_fixture_t        f;
    pay_psp_request_t   req, back;

    ps_fixture(&f, "USD", 2);
    cr_assert_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg,
                                            &req), 0);

    s = pay_psp_request_dump(&req);
    cr_assert_not_null(s);
    cr_expect_eq(strncmp(s, "{\"path\":\"", 9), 0, "%s", s);

    cr_assert_eq(pay_psp_request_load(s, strlen(s), &back), 0);
    cr_expect_str_eq(back.path, req.path);
    cr_expect_str_eq(back.content_type, req.content_type);
    cr_expect_str_eq(back.body, req.body);
    cr_expect_eq(back.body_len, req.body_len);

    free(s);
    pay_psp_request_free(&back);
    pay_psp_request_free(&req);
}


Test(psp, stored_request_keeps_the_configuration_it_was_built_with,
     .description = "a stored request carries the record of the PSP "
                    "settings it was built with (never sent), read back "
                    "as written; a conf that is not an object refuses the "
                    "whole request, and one stored without any reads back "
                    "without")
{
    char               *s;
    size_t              i;
    pay_psp_conf_t      c;
    pay_psp_request_t   req, back;
    const char         *bad[] = {
        "{\"path\":\"/x\",\"content_type\":\"a/b\",\"body\":\"x\","
            "\"conf\":\"{}\"}",
        "{\"path\":\"/x\",\"content_type\":\"a/b\",\"body\":\"x\","
            "\"conf\":null}",
        "{\"path\":\"/x\",\"content_type\":\"a/b\",\"body\":\"x\","
            "\"conf\":[]}",
        "{\"path\":\"/x\",\"content_type\":\"a/b\",\"body\":\"x\","
            "\"conf\":true}",
    };

    memset(&c, 0, sizeof(c));
    c.merchant_account = "ShopECOM";

    memset(&req, 0, sizeof(req));
    req.path = strdup("/v71/sessions");
    req.content_type = strdup("application/json");
    req.body = strdup("{\"merchantAccount\":\"ShopECOM\"}");
    req.conf = pay_psp_conf_record(&c);
    cr_assert_not_null(req.conf);

    s = pay_psp_request_dump(&req);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"path\":\"/v71/sessions\",\"content_type\":"
                        "\"application/json\",\"body\":\"{\\\"merchantAccount"
                        "\\\":\\\"ShopECOM\\\"}\",\"conf\":{\"merchant_account\":"
                        "\"ShopECOM\"}}");

    cr_assert_eq(pay_psp_request_load(s, strlen(s), &back), 0);
    cr_expect_str_eq(back.body, req.body);
    cr_assert_not_null(back.conf);
    cr_expect_str_eq(back.conf, req.conf);
    cr_expect_null(pay_psp_conf_changed(back.conf, strlen(back.conf), &c));

    c.merchant_account = "OtherECOM";
    cr_expect_str_eq(pay_psp_conf_changed(back.conf, strlen(back.conf), &c),
                     "merchant_account");

    free(s);
    pay_psp_request_free(&back);
    pay_psp_request_free(&req);
    cr_expect_null(req.conf);

    s = "{\"path\":\"/x\",\"content_type\":\"a/b\",\"body\":\"x\"}";
    cr_assert_eq(pay_psp_request_load(s, strlen(s), &back), 0);
    cr_expect_null(back.conf);
    pay_psp_request_free(&back);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(pay_psp_request_load(bad[i], strlen(bad[i]), &back), -1,
                     "%s", bad[i]);
        cr_expect_null(back.path);
        cr_expect_null(back.conf);
    }
}


Test(psp, configuration_record_names_what_changed,
     .description = "the record of a PSP's settings holds those given, in "
                    "order; compared with the settings now it names the "
                    "first that differs, one set or unset since included, "
                    "reads PostgreSQL's jsonb spacing, and calls anything "
                    "else unreadable")
{
    char            *s;
    size_t           i;
    pay_psp_conf_t   c, now;
    const char      *unreadable[] = {
        "", "[]", "\"x\"", "{", "null",
        "{\"merchant_account\":1}",
        "{\"merchant_account\":null}",
        "{\"merchant_account\":\"A\\u0000B\"}",
        "{\"merchant_account\":\"A\",\"merchant_account\":\"A\"}",
        "{\"merchant_account\":\"A\",\"stripe_version\":\"2024-06-20\"}",
    };

    memset(&c, 0, sizeof(c));
    s = pay_psp_conf_record(&c);
    cr_expect_str_eq(s, "{}");
    cr_expect_null(pay_psp_conf_changed(s, strlen(s), &c));
    free(s);

    c.merchant_account = "A\"B";
    c.balance_account = "BA1";
    s = pay_psp_conf_record(&c);
    cr_expect_str_eq(s, "{\"merchant_account\":\"A\\\"B\","
                        "\"balance_account\":\"BA1\"}");
    cr_expect_null(pay_psp_conf_changed(s, strlen(s), &c));

    now = c;
    now.balance_account = "BA2";
    cr_expect_str_eq(pay_psp_conf_changed(s, strlen(s), &now),
                     "balance_account");
    now.balance_account = NULL;
    cr_expect_str_eq(pay_psp_conf_changed(s, strlen(s), &now),
                     "balance_account");
    now = c;
    now.merchant_account = "A";
    cr_expect_str_eq(pay_psp_conf_changed(s, strlen(s), &now),
                     "merchant_account");
    free(s);

    /* a setting configured since a record without it */
    s = "{\"balance_account\": \"BA1\"}";
    cr_expect_str_eq(pay_psp_conf_changed(s, strlen(s), &c),
                     "merchant_account");
    now.merchant_account = NULL;
    now.balance_account = "BA1";
    cr_expect_null(pay_psp_conf_changed(s, strlen(s), &now));

    for (i = 0; i < sizeof(unreadable) / sizeof(unreadable[0]); i++) {
        now.merchant_account = "A";
        now.balance_account = NULL;
        cr_expect_str_eq(pay_psp_conf_changed(unreadable[i],
                                              strlen(unreadable[i]), &now),
                         "unreadable", "%s", unreadable[i]);
    }

    cr_expect_str_eq(pay_psp_conf_changed(NULL, 0, &now), "unreadable");

    c.merchant_account = "\xff";
    cr_expect_null(pay_psp_conf_record(&c));
    cr_expect_null(pay_psp_conf_record(NULL));
}


/* what jansson's json_dumps wrote for the stored request (how
 * pay_psp_request_dump made it until it wrote it itself), or NULL */
static char *
ps_jansson_dump(const char *path, const char *ct, const char *body)
{
    char    *s;
    json_t  *o;

    o = json_pack("{s:s, s:s, s:s}", "path", path, "content_type", ct,
                  "body", body);
    if (o == NULL) {
        return NULL;
    }
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);

    return s;
}


Test(psp, stored_request_is_the_bytes_jansson_wrote,
     .description = "pay_psp_request_dump writes what jansson's json_dumps "
                    "wrote for the same three strings, byte for byte: every "
                    "byte 0x01-0x7f (quotes, backslashes and the controls "
                    "escaped), UTF-8 of two, three and four bytes; and "
                    "refuses (NULL) what jansson refuses: overlong forms, "
                    "surrogates, past U+10FFFF, cut sequences, stray "
                    "continuation bytes")
{
    char               body[300], *a, *b;
    int                c, i, n = 0;
    pay_psp_request_t  req;
    static const char *good[] = {
        "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
        "\xf4\x8f\xbf\xbf", "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80",
        "", "/v1/checkout/sessions",
    };
    static const char *bad[] = {
        "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf",
        "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\x80",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80",
        "a\xc3", "a\xe2\x82", "\xf0\x9f\x98", "\xc3\x28",
    };

    memset(&req, 0, sizeof(req));

    for (c = 1; c < 0x80; c++) {
        snprintf(body, sizeof(body), "a=%c&b=%c%c", c, c, c);
        req.path = "/v1/x";
        req.content_type = "application/x-www-form-urlencoded";
        req.body = body;
        a = pay_psp_request_dump(&req);
        b = ps_jansson_dump(req.path, req.content_type, body);
        cr_assert_not_null(b, "%d", c);
        cr_expect_str_eq(a ? a : "(null)", b, "byte 0x%02x", c);
        free(a);
        free(b);
        n++;
    }

    for (i = 0; i < (int) (sizeof(good) / sizeof(good[0])); i++) {
        req.path = (char *) good[i];
        req.content_type = "application/json";
        req.body = (char *) good[(i + 1) % (sizeof(good) / sizeof(good[0]))];
        a = pay_psp_request_dump(&req);
        b = ps_jansson_dump(req.path, req.content_type, req.body);
        cr_assert_not_null(b, "%d", i);
        cr_expect_str_eq(a ? a : "(null)", b, "good %d", i);
        free(a);
        free(b);
        n++;
    }

    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        snprintf(body, sizeof(body), "{\"x\":\"%s\"}", bad[i]);
        req.path = "/v1/x";
        req.content_type = "application/json";
        req.body = body;
        cr_expect_null(ps_jansson_dump(req.path, req.content_type, body),
                       "jansson took bad %d", i);
        a = pay_psp_request_dump(&req);
        cr_expect_null(a, "bad %d: %s", i, a);
        free(a);
        n++;
    }

    cr_expect_eq(n, 127 + 11 + 15);
}


Test(psp, stored_request_must_be_three_strings)
{
    size_t              i;
    pay_psp_request_t   req;
    const char         *bad[] = {
        "",
        "[]",
        "{\"path\":\"/v1/x\",\"content_type\":\"a/b\"}",
        "{\"path\":\"/v1/x\",\"content_type\":\"a/b\",\"body\":1}",
        "{\"path\":null,\"content_type\":\"a/b\",\"body\":\"x\"}",
        "{\"path\":\"/v1/x\",\"content_type\":\"a/b\",\"body\":\"x\\u0000y\"}",
        "{\"path\":\"/a\",\"path\":\"/b\",\"content_type\":\"a/b\","
            "\"body\":\"x\"}",
        "{\"path\":\"/v1/x\",\"content_type\":\"a/b\",\"body\":\"x\"",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(pay_psp_request_load(bad[i], strlen(bad[i]), &req), -1,
                     "%s", bad[i]);
        cr_expect_null(req.path);
        cr_expect_null(req.body);
    }

    cr_expect_eq(pay_psp_request_load(NULL, 0, &req), -1);

    memset(&req, 0, sizeof(req));
    cr_expect_null(pay_psp_request_dump(&req));
    cr_expect_null(pay_psp_request_dump(NULL));
}


/* "capture": "manual" in each dialect's words; nothing of it otherwise */
Test(psp, manual_capture_in_each_dialects_words)
{
    char          *body;
    ps_fixture_t   f;

    ps_fixture(&f, "USD", 2);
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(body);
    cr_expect_null(strstr(body, "payment_intent_data"), "%s", body);
    free(body);

    f.co.manual_capture = 1;
    body = ps_build(PAY_DIALECT_STRIPE, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body,
                              "&payment_intent_data[capture_method]=manual"
                              "&payment_intent_data[metadata][nonce]="
                              "m_1%3Aco_7f3a&"), "%s", body);
    free(body);

    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body,
                              "\"additionalData\":{\"manualCapture\":"
                              "\"true\"}"), "%s", body);
    free(body);

    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_not_null(strstr(body, "\"capture\":\"manual\""), "%s", body);
    free(body);

    f.co.manual_capture = 0;
    body = ps_build(PAY_DIALECT_ADYEN, &f);
    cr_assert_not_null(body);
    cr_expect_null(strstr(body, "manualCapture"), "%s", body);
    free(body);

    body = ps_build(PAY_DIALECT_GENERIC, &f);
    cr_assert_not_null(body);
    cr_expect_null(strstr(body, "\"capture\""), "%s", body);
    free(body);
}
