/*
 * ngx_payments core: the merchant's requests after "paid" (refunds,
 * pay-outs): their bodies read and checked, and their fingerprints.  No I/O.
 * doc/MONEY.md has the contract.
 */
#ifndef PAYMENTS_OPERATION_H
#define PAYMENTS_OPERATION_H

#include <stddef.h>
#include <stdint.h>
#include <payments/error.h>

#define PAY_REASON_MAX  200

/*
 * POST /v1/payments/{id}/refunds: {"amount": "4.00", "currency": "EUR"
 * (optional: the order's), "reason": "…" (optional)}.  The amount is kept
 * as text until the order's currency is known (pay_refund_amount).
 */
typedef struct {
    char     amount_text[32];
    int64_t  amount;                    /* minor units, after _amount */
    char     currency[4];               /* "" when not sent */
    char     reason[PAY_REASON_MAX + 1];    /* "" when not sent */
    char    *metadata;                  /* compact JSON object, malloc'd;
                                           "{}" when not sent */
    char     fingerprint[65];           /* method, path and the body */
} pay_refund_request_t;

/* 0, or -1 with *v (400 invalid_request, invalid_amount,
 * unsupported_currency or card_data_forbidden).  order_id is the path's.
 * "metadata" (optional) as on a checkout (checkout.h pay_metadata_check).
 * On 0, free rq->metadata (pay_op_request_free); on -1 nothing to free. */
int pay_refund_request_parse(const char *body, size_t len,
    const char *order_id, pay_refund_request_t *rq, pay_verdict_t *v);

/*
 * POST /v1/payments/{id}/capture: {"amount": "4.00" (optional: all that is
 * left), "currency" (optional: the order's), "metadata" (optional)}; POST
 * /v1/payments/{id}/void (is_void): {"metadata" (optional)}.  As a
 * refund's; amount 0 after pay_refund_amount when none was sent.
 */
int pay_capture_request_parse(const char *body, size_t len,
    const char *order_id, int is_void, pay_refund_request_t *rq,
    pay_verdict_t *v);

/* The amount in the order's currency: 0, or -1 with *v (invalid_amount,
 * or 422 currency_mismatch when the body named another currency).  A
 * request without amount_text (a capture's "all that is left") is 0 with
 * rq->amount 0. */
int pay_refund_amount(pay_refund_request_t *rq, const char *order_currency,
    pay_verdict_t *v);

/*
 * POST /v1/payouts: {"seller_account","amount","currency","psp"}, all
 * required; "metadata" optional, as on a refund.
 */
typedef struct {
    char     seller_account[65];
    int64_t  amount;
    char     currency[4];
    char     psp[33];
    char    *metadata;                  /* as the refund's */
    char     fingerprint[65];
} pay_payout_request_t;

int pay_payout_request_parse(const char *body, size_t len,
    pay_payout_request_t *rq, pay_verdict_t *v);

/* Frees a parsed request's metadata (NULL: nothing); *metadata is NULL
 * after. */
void pay_op_request_free(char **metadata);

/* A new operation's id: prefix ("rf_", "pyo_") and 24 lower-case hex
 * digits from 12 random bytes (OpenSSL's RAND_bytes).  out holds 32.
 * Returns 0 or -1. */
int pay_operation_id(const char *prefix, char *out, size_t size);

#endif
