/*
 * ngx_payments core: error codes of the HTTP contract (API.md, "Error codes")
 * and their problem+json rendering.  No I/O, no nginx.
 */
#ifndef PAYMENTS_ERROR_H
#define PAYMENTS_ERROR_H

#include <stddef.h>

typedef enum {
    PAY_ERR_NONE = 0,
    PAY_ERR_UNAUTHORIZED,           /* 401 unauthorized */
    PAY_ERR_TLS_REQUIRED,           /* 403 tls_required */
    PAY_ERR_IDEM_MISSING,           /* 400 idempotency_key_missing */
    PAY_ERR_IDEM_INVALID,           /* 400 idempotency_key_invalid */
    PAY_ERR_IDEM_IN_USE,            /* 409 idempotency_key_in_use */
    PAY_ERR_IDEM_REUSED,            /* 422 idempotency_key_reused */
    PAY_ERR_DUPLICATE_ORDER,        /* 409 duplicate_order */
    PAY_ERR_INVALID_REQUEST,        /* 400 invalid_request */
    PAY_ERR_INVALID_AMOUNT,         /* 400 invalid_amount */
    PAY_ERR_UNSUPPORTED_CURRENCY,   /* 400 unsupported_currency */
    PAY_ERR_MIXED_CURRENCY,         /* 400 mixed_currency */
    PAY_ERR_FORBIDDEN_RETURN_URL,   /* 400 forbidden_return_url */
    PAY_ERR_CARD_DATA,              /* 400 card_data_forbidden */
    PAY_ERR_PAYLOAD_TOO_LARGE,      /* 413 payload_too_large */
    PAY_ERR_UNSUPPORTED_MEDIA,      /* 415 unsupported_media_type */
    PAY_ERR_METHOD_NOT_ALLOWED,     /* 405 method_not_allowed */
    PAY_ERR_NOT_FOUND,              /* 404 not_found */
    PAY_ERR_RATE_LIMITED,           /* 429 rate_limited */
    PAY_ERR_BAD_SIGNATURE,          /* 400 bad_signature */
    PAY_ERR_STALE_WEBHOOK,          /* 400 stale_webhook */
    PAY_ERR_PSP_UNAVAILABLE,        /* 502 (or 503/504) psp_unavailable */
    PAY_ERR_STORE_UNAVAILABLE,      /* 503 store_unavailable */
    PAY_ERR_NOT_REFUNDABLE,         /* 409 payment_not_refundable */
    PAY_ERR_REFUND_EXCEEDS,         /* 422 refund_exceeds_captured */
    PAY_ERR_CURRENCY_MISMATCH,      /* 422 currency_mismatch */
    PAY_ERR_INSUFFICIENT_BALANCE,   /* 422 insufficient_balance */
    PAY_ERR_SELLER_UNKNOWN,         /* 422 seller_not_registered */
    PAY_ERR_ENDPOINT_DISABLED,      /* 409 endpoint_disabled */
    PAY_ERR_NOT_CONFIGURED,         /* 503 not_configured */
    PAY_ERR_INVALID_EXPIRES_AT,     /* 400 invalid_expires_at */
    PAY_ERR_ALREADY_PAID,           /* 409 checkout_already_paid */
    PAY_ERR_NOT_CANCELABLE,         /* 409 checkout_not_cancelable */
    PAY_ERR_RISK_DECLINED,          /* 403 risk_declined */
    PAY_ERR_NOT_CAPTURABLE,         /* 409 payment_not_capturable */
    PAY_ERR_CAPTURE_EXCEEDS,        /* 422 capture_exceeds_authorized */
    PAY_ERR_PAYMENT_DECLINED,       /* 402 payment_declined */
    PAY_ERR_AUTH_REQUIRED,          /* 402 authentication_required */
    PAY_ERR_METHOD_UNUSABLE,        /* 409 payment_method_unusable */
    PAY_ERR__MAX
} pay_err_e;

/* A validation verdict: the error and a human detail that never quotes the
 * offending value (it may be card data or a secret). */
typedef struct {
    pay_err_e  err;
    char       detail[192];
} pay_verdict_t;

int         pay_err_status(pay_err_e e);        /* default HTTP status */
const char *pay_err_code(pay_err_e e);          /* "idempotency_key_missing" */
const char *pay_err_title(pay_err_e e);         /* "Idempotency-Key missing" */

/* Sets v->err and formats v->detail (printf-style).  Returns -1 so that
 * validators can `return pay_verdict(v, ...)`. */
int pay_verdict(pay_verdict_t *v, pay_err_e e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * problem+json (RFC 9457) body: {"type","title","status","detail","code"}.
 * status 0 means pay_err_status(e).  detail may be NULL.
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL on OOM.
 */
char *pay_problem_json(pay_err_e e, int status, const char *detail);

#endif
