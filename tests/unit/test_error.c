/*
 * Unit tests: error codes, statuses and problem+json (src/error.c).
 */

#include <string.h>
#include <stdlib.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <payments/error.h>


/* API.md, "Error codes": code and default status, exactly. */
static const struct {
    pay_err_e    err;
    const char  *code;
    int          status;
} api_table[] = {
    { PAY_ERR_UNAUTHORIZED,         "unauthorized",            401 },
    { PAY_ERR_TLS_REQUIRED,         "tls_required",            403 },
    { PAY_ERR_IDEM_MISSING,         "idempotency_key_missing", 400 },
    { PAY_ERR_IDEM_INVALID,         "idempotency_key_invalid", 400 },
    { PAY_ERR_IDEM_IN_USE,          "idempotency_key_in_use",  409 },
    { PAY_ERR_IDEM_REUSED,          "idempotency_key_reused",  422 },
    { PAY_ERR_DUPLICATE_ORDER,      "duplicate_order",         409 },
    { PAY_ERR_INVALID_REQUEST,      "invalid_request",         400 },
    { PAY_ERR_INVALID_AMOUNT,       "invalid_amount",          400 },
    { PAY_ERR_UNSUPPORTED_CURRENCY, "unsupported_currency",    400 },
    { PAY_ERR_MIXED_CURRENCY,       "mixed_currency",          400 },
    { PAY_ERR_FORBIDDEN_RETURN_URL, "forbidden_return_url",    400 },
    { PAY_ERR_CARD_DATA,            "card_data_forbidden",     400 },
    { PAY_ERR_PAYLOAD_TOO_LARGE,    "payload_too_large",       413 },
    { PAY_ERR_UNSUPPORTED_MEDIA,    "unsupported_media_type",  415 },
    { PAY_ERR_METHOD_NOT_ALLOWED,   "method_not_allowed",      405 },
    { PAY_ERR_NOT_FOUND,            "not_found",               404 },
    { PAY_ERR_RATE_LIMITED,         "rate_limited",            429 },
    { PAY_ERR_BAD_SIGNATURE,        "bad_signature",           400 },
    { PAY_ERR_STALE_WEBHOOK,        "stale_webhook",           400 },
    { PAY_ERR_PSP_UNAVAILABLE,      "psp_unavailable",         502 },
    { PAY_ERR_STORE_UNAVAILABLE,    "store_unavailable",       503 },
    { PAY_ERR_NOT_REFUNDABLE,       "payment_not_refundable",  409 },
    { PAY_ERR_REFUND_EXCEEDS,       "refund_exceeds_captured", 422 },
    { PAY_ERR_CURRENCY_MISMATCH,    "currency_mismatch",       422 },
    { PAY_ERR_INSUFFICIENT_BALANCE, "insufficient_balance",    422 },
    { PAY_ERR_SELLER_UNKNOWN,       "seller_not_registered",   422 },
    { PAY_ERR_ENDPOINT_DISABLED,    "endpoint_disabled",       409 },
    { PAY_ERR_NOT_CONFIGURED,       "not_configured",          503 },
    { PAY_ERR_INVALID_EXPIRES_AT,   "invalid_expires_at",      400 },
    { PAY_ERR_ALREADY_PAID,         "checkout_already_paid",   409 },
    { PAY_ERR_NOT_CANCELABLE,       "checkout_not_cancelable", 409 },
    { PAY_ERR_RISK_DECLINED,        "risk_declined",           403 },
    { PAY_ERR_NOT_CAPTURABLE,       "payment_not_capturable",  409 },
    { PAY_ERR_CAPTURE_EXCEEDS,      "capture_exceeds_authorized", 422 },
    { PAY_ERR_PAYMENT_DECLINED,     "payment_declined",           402 },
    { PAY_ERR_AUTH_REQUIRED,        "authentication_required",    402 },
    { PAY_ERR_METHOD_UNUSABLE,      "payment_method_unusable",    409 },
};

#define API_N  (sizeof(api_table) / sizeof(api_table[0]))


Test(error, every_error_is_in_the_api_table)
{
    cr_assert_eq(API_N, PAY_ERR__MAX - 1);
}


Test(error, codes_are_the_api_codes)
{
    size_t  i;

    for (i = 0; i < API_N; i++) {
        cr_assert_str_eq(pay_err_code(api_table[i].err), api_table[i].code);
    }
}


Test(error, statuses_are_the_api_statuses)
{
    size_t  i;

    for (i = 0; i < API_N; i++) {
        cr_assert_eq(pay_err_status(api_table[i].err), api_table[i].status,
                     "%s", api_table[i].code);
    }
}


Test(error, codes_are_unique)
{
    int  a, b;

    for (a = 1; a < PAY_ERR__MAX; a++) {
        for (b = a + 1; b < PAY_ERR__MAX; b++) {
            cr_assert_str_neq(pay_err_code(a), pay_err_code(b));
        }
    }
}


Test(error, every_error_has_a_title)
{
    int  e;

    for (e = 1; e < PAY_ERR__MAX; e++) {
        cr_assert_not_null(pay_err_title(e));
        cr_assert_gt(strlen(pay_err_title(e)), 0);
    }

    cr_assert_str_eq(pay_err_title(PAY_ERR_IDEM_MISSING),
                     "Idempotency-Key missing");
}


Test(error, none_and_out_of_range_are_internal_500)
{
    cr_assert_eq(pay_err_status(PAY_ERR_NONE), 500);
    cr_assert_str_eq(pay_err_code(PAY_ERR_NONE), "internal_error");
    cr_assert_eq(pay_err_status(PAY_ERR__MAX), 500);
    cr_assert_eq(pay_err_status((pay_err_e) 1000), 500);
    cr_assert_eq(pay_err_status((pay_err_e) -1), 500);
    cr_assert_str_eq(pay_err_code((pay_err_e) 1000), "internal_error");
}


Test(error, verdict_returns_minus_one_and_formats)
{
    pay_verdict_t  v;

    memset(&v, 0, sizeof(v));
    cr_assert_eq(pay_verdict(&v, PAY_ERR_INVALID_AMOUNT, "order %d: %s",
                             3, "too many decimals"), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_assert_str_eq(v.detail, "order 3: too many decimals");
}


Test(error, verdict_truncates_long_detail)
{
    pay_verdict_t  v;
    char           big[400];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    cr_assert_eq(pay_verdict(&v, PAY_ERR_INVALID_REQUEST, "%s", big), -1);
    cr_assert_eq(strlen(v.detail), sizeof(v.detail) - 1);
}


Test(error, verdict_null_format_is_empty_detail)
{
    pay_verdict_t  v;

    memset(&v, 'z', sizeof(v));
    cr_assert_eq(pay_verdict(&v, PAY_ERR_NOT_FOUND, NULL), -1);
    cr_assert_eq(v.err, PAY_ERR_NOT_FOUND);
    cr_assert_str_eq(v.detail, "");
}


Test(error, problem_json_exact_body)
{
    char  *s;

    s = pay_problem_json(PAY_ERR_MIXED_CURRENCY, 0, "all one currency");
    cr_assert_not_null(s);
    cr_assert_str_eq(s,
        "{\"type\":\"https://docs.ngx-payments.dev/errors/mixed_currency\","
        "\"title\":\"Mixed currencies\",\"status\":400,"
        "\"detail\":\"all one currency\",\"code\":\"mixed_currency\"}");
    free(s);
}


Test(error, problem_json_status_override)
{
    char    *s;
    json_t  *j;

    s = pay_problem_json(PAY_ERR_PSP_UNAVAILABLE, 504, "timeout");
    cr_assert_not_null(s);
    j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 504);
    cr_assert_str_eq(json_string_value(json_object_get(j, "code")),
                     "psp_unavailable");
    json_decref(j);
    free(s);
}


Test(error, problem_json_bogus_status_uses_default)
{
    char    *s;
    json_t  *j;

    s = pay_problem_json(PAY_ERR_RATE_LIMITED, 200, NULL);
    cr_assert_not_null(s);
    j = json_loads(s, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 429);
    json_decref(j);
    free(s);
}


Test(error, problem_json_null_detail_is_omitted)
{
    char    *s;
    json_t  *j;

    s = pay_problem_json(PAY_ERR_UNAUTHORIZED, 0, NULL);
    cr_assert_not_null(s);
    j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_null(json_object_get(j, "detail"));
    cr_assert_eq(json_object_size(j), 4);
    json_decref(j);
    free(s);
}


Test(error, problem_json_escapes_detail)
{
    char    *s;
    json_t  *j;

    s = pay_problem_json(PAY_ERR_INVALID_REQUEST, 0, "a \"quote\"\n</x>");
    cr_assert_not_null(s);
    cr_assert_null(strchr(s, '\n'));
    j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "detail")),
                     "a \"quote\"\n</x>");
    json_decref(j);
    free(s);
}


Test(error, problem_json_invalid_utf8_detail_still_renders)
{
    char    *s;
    json_t  *j;

    s = pay_problem_json(PAY_ERR_INVALID_REQUEST, 0, "cut \xc3");
    cr_assert_not_null(s);
    j = json_loads(s, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "detail")),
                     "cut ?");
    json_decref(j);
    free(s);
}


Test(error, problem_json_type_is_per_code)
{
    int      e;
    char    *s, want[128];
    json_t  *j;

    for (e = 1; e < PAY_ERR__MAX; e++) {
        s = pay_problem_json(e, 0, "d");
        cr_assert_not_null(s);
        j = json_loads(s, 0, NULL);
        cr_assert_not_null(j);
        snprintf(want, sizeof(want), "https://docs.ngx-payments.dev/errors/%s",
                 pay_err_code(e));
        cr_assert_str_eq(json_string_value(json_object_get(j, "type")), want);
        cr_assert_str_eq(json_string_value(json_object_get(j, "title")),
                         pay_err_title(e));
        cr_assert_eq(json_integer_value(json_object_get(j, "status")),
                     pay_err_status(e));
        json_decref(j);
        free(s);
    }
}
