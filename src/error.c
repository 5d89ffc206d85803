/*
 * ngx_payments core: error codes of the HTTP contract and problem+json.
 *
 * The code/status pairs are API.md's table, which storefronts and PSPs are
 * written against: change them only together with API.md.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <payments/error.h>


/*
 * "type" is a URI per code rather than "about:blank": RFC 9457 reserves
 * about:blank for problems that mean no more than their HTTP status, with
 * the status phrase as title, and ours carry a code and their own title.
 */
#define PAY_PROBLEM_TYPE_BASE  "https://docs.ngx-payments.dev/errors/"


typedef struct {
    int          status;
    const char  *code;
    const char  *title;
} pay_err_info_t;


/* Indexed by pay_err_e; the static assert below keeps them in step. */
static const pay_err_info_t  pay_err_info[] = {
    /* PAY_ERR_NONE is not an error: rendering one is a bug upstream, and a
     * 500 is the honest answer to it. */
    [PAY_ERR_NONE]                 = { 500, "internal_error",
                                       "Internal error" },
    [PAY_ERR_UNAUTHORIZED]         = { 401, "unauthorized",
                                       "Unauthorized" },
    [PAY_ERR_TLS_REQUIRED]         = { 403, "tls_required",
                                       "TLS required" },
    [PAY_ERR_IDEM_MISSING]         = { 400, "idempotency_key_missing",
                                       "Idempotency-Key missing" },
    [PAY_ERR_IDEM_INVALID]         = { 400, "idempotency_key_invalid",
                                       "Idempotency-Key invalid" },
    [PAY_ERR_IDEM_IN_USE]          = { 409, "idempotency_key_in_use",
                                       "Idempotency-Key in use" },
    [PAY_ERR_IDEM_REUSED]          = { 422, "idempotency_key_reused",
                                       "Idempotency-Key reused" },
    [PAY_ERR_DUPLICATE_ORDER]      = { 409, "duplicate_order",
                                       "Duplicate order" },
    [PAY_ERR_INVALID_REQUEST]      = { 400, "invalid_request",
                                       "Invalid request" },
    [PAY_ERR_INVALID_AMOUNT]       = { 400, "invalid_amount",
                                       "Invalid amount" },
    [PAY_ERR_UNSUPPORTED_CURRENCY] = { 400, "unsupported_currency",
                                       "Unsupported currency" },
    [PAY_ERR_MIXED_CURRENCY]       = { 400, "mixed_currency",
                                       "Mixed currencies" },
    [PAY_ERR_FORBIDDEN_RETURN_URL] = { 400, "forbidden_return_url",
                                       "Forbidden return URL" },
    [PAY_ERR_CARD_DATA]            = { 400, "card_data_forbidden",
                                       "Card data forbidden" },
    [PAY_ERR_PAYLOAD_TOO_LARGE]    = { 413, "payload_too_large",
                                       "Payload too large" },
    [PAY_ERR_UNSUPPORTED_MEDIA]    = { 415, "unsupported_media_type",
                                       "Unsupported media type" },
    [PAY_ERR_METHOD_NOT_ALLOWED]   = { 405, "method_not_allowed",
                                       "Method not allowed" },
    [PAY_ERR_NOT_FOUND]            = { 404, "not_found",
                                       "Not found" },
    [PAY_ERR_RATE_LIMITED]         = { 429, "rate_limited",
                                       "Rate limited" },
    [PAY_ERR_BAD_SIGNATURE]        = { 400, "bad_signature",
                                       "Bad signature" },
    [PAY_ERR_STALE_WEBHOOK]        = { 400, "stale_webhook",
                                       "Stale webhook" },
    [PAY_ERR_PSP_UNAVAILABLE]      = { 502, "psp_unavailable",
                                       "PSP unavailable" },
    [PAY_ERR_STORE_UNAVAILABLE]    = { 503, "store_unavailable",
                                       "Store unavailable" },
    [PAY_ERR_NOT_REFUNDABLE]       = { 409, "payment_not_refundable",
                                       "Payment not refundable" },
    [PAY_ERR_REFUND_EXCEEDS]       = { 422, "refund_exceeds_captured",
                                       "Refund exceeds the captured amount" },
    [PAY_ERR_CURRENCY_MISMATCH]    = { 422, "currency_mismatch",
                                       "Currency mismatch" },
    [PAY_ERR_INSUFFICIENT_BALANCE] = { 422, "insufficient_balance",
                                       "Insufficient balance" },
    [PAY_ERR_SELLER_UNKNOWN]       = { 422, "seller_not_registered",
                                       "Seller not registered" },
    [PAY_ERR_ENDPOINT_DISABLED]    = { 409, "endpoint_disabled",
                                       "Endpoint disabled" },
    [PAY_ERR_NOT_CONFIGURED]       = { 503, "not_configured",
                                       "Not configured" },
    [PAY_ERR_INVALID_EXPIRES_AT]   = { 400, "invalid_expires_at",
                                       "Invalid expires_at" },
    [PAY_ERR_ALREADY_PAID]         = { 409, "checkout_already_paid",
                                       "Checkout already paid" },
    [PAY_ERR_NOT_CANCELABLE]       = { 409, "checkout_not_cancelable",
                                       "Checkout not cancelable" },
    [PAY_ERR_RISK_DECLINED]        = { 403, "risk_declined",
                                       "Declined by the risk check" },
    [PAY_ERR_NOT_CAPTURABLE]       = { 409, "payment_not_capturable",
                                       "Payment not capturable" },
    [PAY_ERR_CAPTURE_EXCEEDS]      = { 422, "capture_exceeds_authorized",
                                       "Capture exceeds the authorized "
                                       "amount" },
    [PAY_ERR_PAYMENT_DECLINED]     = { 402, "payment_declined",
                                       "Payment declined" },
    [PAY_ERR_AUTH_REQUIRED]        = { 402, "authentication_required",
                                       "Authentication required" },
    [PAY_ERR_METHOD_UNUSABLE]      = { 409, "payment_method_unusable",
                                       "Payment method unusable" },
};

_Static_assert(sizeof(pay_err_info) / sizeof(pay_err_info[0]) == PAY_ERR__MAX,
               "pay_err_info must have one entry per pay_err_e");


static const pay_err_info_t *
pay_err_lookup(pay_err_e e)
{
    /* An out-of-range value (a cast int, memory gone bad) renders as the
     * internal error rather than reading past the table. */
    if ((unsigned) e >= PAY_ERR__MAX) {
        return &pay_err_info[PAY_ERR_NONE];
    }

    return &pay_err_info[e];
}


int
pay_err_status(pay_err_e e)
{
    return pay_err_lookup(e)->status;
}


const char *
pay_err_code(pay_err_e e)
{
    return pay_err_lookup(e)->code;
}


const char *
pay_err_title(pay_err_e e)
{
    return pay_err_lookup(e)->title;
}


int
pay_verdict(pay_verdict_t *v, pay_err_e e, const char *fmt, ...)
{
    va_list  ap;

    if (v == NULL) {
        return -1;
    }

    v->err = e;
    v->detail[0] = '\0';

    if (fmt != NULL) {
        va_start(ap, fmt);
        /* Truncation is acceptable: the detail is for humans. */
        (void) vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
        va_end(ap);
    }

    return -1;
}


/*
 * jansson refuses strings that are not UTF-8.  A detail is ours, but it may
 * have been cut mid-character by vsnprintf; rather than lose it, non-ASCII
 * bytes become '?'.
 */
static json_t *
pay_problem_string(const char *s)
{
    json_t  *j;
    char    *copy;
    size_t   i, len;

    j = json_string(s);
    if (j != NULL) {
        return j;
    }

    len = strlen(s);
    copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }

    for (i = 0; i < len; i++) {
        copy[i] = ((unsigned char) s[i] < 0x80) ? s[i] : '?';
    }
    copy[len] = '\0';

    j = json_string(copy);
    free(copy);

    return j;
}


char *
pay_problem_json(pay_err_e e, int status, const char *detail)
{
    char                  type[128];
    char                 *out;
    json_t               *obj;
    const pay_err_info_t *info;

    info = pay_err_lookup(e);

    /* Only a real HTTP error status may override the default (psp_unavailable
     * answers 502, 503 or 504); anything else is a caller's slip. */
    if (status < 400 || status > 599) {
        status = info->status;
    }

    (void) snprintf(type, sizeof(type), "%s%s", PAY_PROBLEM_TYPE_BASE,
                    info->code);

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    /* jansson keeps insertion order, so the members come out as listed in
     * error.h.  The *_new setters take ownership even on failure. */
    if (json_object_set_new(obj, "type", json_string(type)) != 0
        || json_object_set_new(obj, "title", json_string(info->title)) != 0
        || json_object_set_new(obj, "status", json_integer(status)) != 0
        || (detail != NULL
            && json_object_set_new(obj, "detail",
                                   pay_problem_string(detail)) != 0)
        || json_object_set_new(obj, "code", json_string(info->code)) != 0)
    {
        json_decref(obj);
        return NULL;
    }

    out = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);

    return out;
}
