/*
 * ngx_payments core: the JSON bodies the merchant API answers with.
 * Amounts go out as decimal strings with the currency's exponent.
 */
#ifndef PAYMENTS_VIEW_H
#define PAYMENTS_VIEW_H

#include <stdint.h>
#include <payments/checkout.h>

typedef struct {
    const pay_checkout_t  *co;
    const char            *status;      /* "EXECUTING" | "FAILED" */
    const char            *psp_token;   /* NULL when FAILED */
    int64_t                expires_at;  /* epoch seconds */
    const char            *pay_url;     /* NULL when FAILED */
    const char            *failure;     /* the PSP's reason, FAILED only */
    const char            *next_action; /* "authenticate": an off-session
                                           charge waiting for the shopper
                                           at pay_url; NULL: none */
} pay_registration_view_t;

/* The 201 body of POST /v1/payments (API.md).  malloc'd, or NULL. */
char *pay_registration_json(const pay_registration_view_t *v);

/*
 * GET views.  The database answers with JSON whose amounts are integer minor
 * units ("amount_minor"); these rewrite it into the API's shape ("amount"
 * decimal strings).  pay_url may be NULL.  malloc'd, or NULL on a malformed
 * input.
 *
 * order:    {"payment_order_id","checkout_id","status","amount_minor",
 *            "currency","seller_account","psp","psp_token","created_at",
 *            "updated_at"}
 * checkout: {"checkout_id","status","psp","psp_token","expires_at",
 *            "failure","currency","payment_orders":[{"payment_order_id",
 *            "seller_account","amount_minor","currency","status"}],
 *            "events":[{"at","payment_order_id","from","to","source"}]}
 *            is_payment_done is derived (status SUCCESS).  Optional:
 *            "payment_method" (an off-session charge: written with
 *            "off_session": true, and "next_action": "authenticate" while
 *            EXECUTING with a pay_url) and "save_payment_method"
 *            {"customer","usage"}; null or absent: left out.
 *
 * Types accepted: amount_minor an integer > 0 with a known currency;
 * statuses one of NOT_STARTED, EXECUTING, SUCCESS, FAILED; timestamps
 * (created_at, updated_at, expires_at, at) epoch-second integers (written
 * as RFC 3339 UTC) or strings (passed as they are); psp_token, failure,
 * an event's payment_order_id and from may be null; events may be null
 * (written []).  Unknown members are ignored (never copied out).  The
 * checkout view omits a null psp_token and shows failure only when FAILED,
 * as the 201 does; the order view writes a null psp_token as null.
 */
char *pay_order_view_json(const char *db_json, size_t len);
char *pay_checkout_view_json(const char *db_json, size_t len,
    const char *pay_url);

/*
 * The money after "paid" (doc/MONEY.md).
 *
 * The order view also carries, from the database's "commission_minor"
 * (null before a SUCCESS: left out), "refunds":[{"refund_id","status",
 * "amount_minor","currency","reason","psp_refund_id","created_at",
 * "updated_at"}] and "disputes":[{"dispute_id","status","amount_minor" (the
 * order's part, may be 0),"currency","psp_dispute_id","created_at",
 * "updated_at"}]; absent or null lists are written [].
 *
 * payout:  {"payout_id","seller_account","psp","status","amount_minor",
 *           "amount_reversed_minor" (what the PSP took back of it, 0 to
 *           amount_minor; absent: left out),"currency","psp_payout_id",
 *           "failure","created_at","updated_at"}
 * balance: {"seller_account","balances":[{"currency","wallet_minor",
 *           "pending_payouts_minor","open_disputes_minor",
 *           "available_minor"}]}: any sign, written as decimal strings.
 */
char *pay_payout_view_json(const char *db_json, size_t len);
char *pay_balance_view_json(const char *db_json, size_t len);

/* The 201 of POST /v1/payments/{id}/refunds (kind "refund"), of POST
 * /v1/payouts ("payout") and of POST /v1/payments/{id}/capture and /void
 * ("capture", "void": capture_id, kind, payment_order_id, psp_ref). */
typedef struct {
    const char  *kind;
    const char  *id;                /* rf_… or pyo_… */
    const char  *payment_order_id;  /* refund */
    const char  *seller_account;    /* payout */
    const char  *psp;               /* payout */
    const char  *status;            /* PENDING, or FAILED (refused) */
    int64_t      amount;            /* minor units, > 0 */
    const char  *currency;
    const char  *reason;            /* refund; NULL or "": left out */
    const char  *psp_ref;           /* the PSP's id; NULL: null */
    const char  *failure;           /* FAILED: the PSP's reason; else NULL */
    const char  *metadata;          /* a JSON object of strings; NULL: {} */
} pay_operation_view_t;

char *pay_operation_json(const pay_operation_view_t *v);

/*
 * GET /v1/checkouts/{id}/status for the pending page:
 * {"checkout_id","status":"pending"|"paid"|"failed","is_payment_done"}
 * from a stored status (NOT_STARTED, EXECUTING, SUCCESS, FAILED).
 * malloc'd, or NULL.
 */
char *pay_status_view_json(const char *checkout_id, const char *status);

#endif
