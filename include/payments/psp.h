/*
 * ngx_payments core: PSP dialects.  Builds the registration request (stored
 * in PostgreSQL when the idempotency key is claimed, so every retry sends
 * the same bytes) and classifies the PSP's answer.  Credentials are not part
 * of the stored request: the adapter adds them when sending.
 */
#ifndef PAYMENTS_PSP_H
#define PAYMENTS_PSP_H

#include <stddef.h>
#include <stdint.h>
#include <payments/checkout.h>

typedef enum {
    PAY_DIALECT_STRIPE = 1,
    PAY_DIALECT_ADYEN,
    PAY_DIALECT_GENERIC
} pay_dialect_e;

/* "stripe" -> PAY_DIALECT_STRIPE; 0 if unknown. */
pay_dialect_e pay_dialect_parse(const char *name, size_t len);

typedef struct {
    const char          *merchant_id;
    const char          *nonce;           /* merchant_id ":" checkout_id */
    const pay_checkout_t *co;
    const char          *return_success;  /* gateway URL with its token */
    const char          *return_cancel;   /* gateway URL with its token */
    int64_t              expires_at;      /* epoch seconds */
    const char          *adyen_merchant_account;   /* adyen only */
    /* a save (co->save_usage): the gateway's reference for (merchant,
     * customer), sent instead of the shop's id ("cu_" and 24 hex) */
    const char          *customer_ref;
    /* an off-session charge (co->payment_method): the PSP's reusable
     * token as the PSP gave it, the PSP's own customer (stripe cus_…;
     * NULL for the others) and Adyen's recurringProcessingModel */
    const char          *charge_token;
    const char          *psp_customer;
    const char          *recurring;
    /* an off-session charge the card's issuer wants the shopper for: the
     * hosted session where they authenticate and pay (the registration's
     * body, not the charge's), for the saved method's customer (Stripe's
     * customer = psp_customer, Adyen's shopperReference = customer_ref) */
    int                  authenticate;
} pay_psp_registration_t;

/*
 * One request to a PSP.  The method follows from the body: a POST of body
 * (content_type says what it is) when body is not NULL, a GET with no body
 * and no Content-Type when body is NULL (content_type NULL, body_len 0):
 * the session look-ups (dialect.h) are GETs.  path may carry a query
 * ("?sessionResult=…"), every part of it already percent-encoded.
 */
typedef struct {
    char    *path;          /* appended to the PSP base URL, malloc'd */
    char    *content_type;  /* malloc'd; NULL for a GET */
    char    *body;          /* malloc'd, NUL-terminated; NULL: a GET */
    size_t   body_len;
    char    *conf;          /* never sent: the configuration it was built
                               with (pay_psp_conf_record), stored with it;
                               malloc'd, NULL: none recorded */
} pay_psp_request_t;

/*
 * The values of a PSP's configuration (payments_psp) that a request to it
 * carries in its bytes, beside what the stored checkout or operation
 * gives: recorded when the claim is made, compared before a resumed claim
 * sends its request again under the same Idempotency-Key, which must be
 * the first attempt's request or none (doc/PSPS.md, "What a request
 * carries from the configuration").  NULL: not configured, or not in this
 * request.  Credentials, URLs and stripe_version= are not among them (the
 * same account behind another key or address; Stripe keys its replay on
 * the parameters alone).
 */
typedef struct {
    const char  *merchant_account;  /* merchant_account= (adyen): sessions,
                                       refunds, captures, voids */
    const char  *balance_account;   /* balance_account= (adyen): pay-outs */
} pay_psp_conf_t;

/*
 * The record of conf: a JSON object of the settings given, compact, in
 * the order above ("{}" with none), malloc'd; NULL when memory ran out or
 * a value is not UTF-8.
 */
char *pay_psp_conf_record(const pay_psp_conf_t *conf);

/*
 * Whether a request recorded with recorded (len bytes, a record as
 * pay_psp_conf_record writes it, any JSON spacing) may be sent again under
 * the configuration now: NULL when every setting is the same; else the
 * name of the first that differs ("merchant_account", "balance_account"),
 * or "unreadable" when recorded is not such an object (a member of
 * another type or name included): never sent then either.
 */
const char *pay_psp_conf_changed(const char *recorded, size_t len,
    const pay_psp_conf_t *now);

/*
 * A PSP's minor units are not always ISO 4217's.  Every amount the core
 * holds is in ISO minor units; it is converted to the dialect's units
 * when a request is built and back when a webhook is read.
 *   stripe:  0 decimals for BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX
 *            VND VUV XAF XOF XPF, 3 for BHD JOD KWD OMR TND, 2 for every
 *            other currency (so ISK, 0 in ISO, is sent with 2 decimals,
 *            and MGA, 2 in ISO, with none);
 *   adyen:   ISO's, except CLP 2, CVE 0, IDR 0, ISK 2;
 *   generic: ISO's (its amounts are decimal strings).
 * Returns the exponent, or -1 for a currency that is not ISO 4217's.
 */
int pay_psp_exponent(pay_dialect_e d, const char *currency);

/* ISO minor units -> the dialect's, exactly.  Returns 0, or -1 when the
 * amount has no exact value in the dialect's units (IDR 10.50 for Adyen,
 * MGA 10.50 for Stripe), for an unknown currency or dialect. */
int pay_psp_amount_to_psp(pay_dialect_e d, const char *currency,
    int64_t iso, int64_t *psp);

/* The dialect's minor units -> ISO's, exactly; the same -1 cases. */
int pay_psp_amount_from_psp(pay_dialect_e d, const char *currency,
    int64_t psp, int64_t *iso);

/*
 * 1 if the dialect takes this amount (ISO minor units > 0) in this
 * currency, 0 if it cannot: the amount has no exact value in the PSP's
 * units (pay_psp_amount_to_psp), or Stripe's three-decimal currencies
 * (BHD, JOD, KWD, OMR, TND) are not a multiple of 10.  The adapter
 * answers invalid_amount on 0 (a registration's orders and total through
 * pay_psp_checkout_amounts, a refund's or a capture's amount with this).
 */
int pay_psp_amount_supported(pay_dialect_e d, const char *currency,
    int64_t minor);

/*
 * The PSP's unit in this currency, in ISO minor units: the smallest amount
 * it takes (pay_psp_amount_supported), every amount it takes a multiple of
 * it.  1 where it counts ISO's units or finer; 100 where it counts whole
 * units of a two-decimal currency (Adyen's IDR and CVE, Stripe's MGA) or
 * hundredths of a four-decimal one (Stripe's CLF); 10 for Stripe's
 * three-decimal amounts that end in 0 (BHD, JOD, KWD, OMR, TND) and its
 * IQD and LYD in hundredths.  -1 for an unknown currency or dialect.  A
 * capture without an amount captures what is left of its order rounded
 * down to it (pay_capture_claim's p_unit).
 */
int64_t pay_psp_unit(pay_dialect_e d, const char *currency);

/*
 * A checkout's amounts as this PSP would be sent them, checked before
 * anything is claimed: every order's (pay_psp_amount_supported), and the
 * total, which a session or an off-session charge carries in the PSP's
 * units and which may pass 2^63 - 1 there when no order does (two orders
 * of 5 * 10^16 ISK are 10^19 hundredths at Adyen).  Returns 0
 * (a save without a charge, with no orders, included), or -1 with v set
 * to PAY_ERR_INVALID_AMOUNT and a detail naming the order, or the sum,
 * and why: fewer decimals at the PSP, Stripe's three-decimal amounts that
 * must end in 0, or too large in the PSP's units.
 */
int pay_psp_checkout_amounts(pay_dialect_e d, const pay_checkout_t *co,
    pay_verdict_t *v);

/* Returns 0 and fills *req (free with pay_psp_request_free), or -1.
 * -1 also when the checkout's amounts are not pay_psp_checkout_amounts'. */
int  pay_psp_build_registration(pay_dialect_e d,
    const pay_psp_registration_t *reg, pay_psp_request_t *req);
void pay_psp_request_free(pay_psp_request_t *req);

/*
 * A built request as pay_claim stores it (psp_request): JSON {"path",
 * "content_type", "body"}, and "conf" when req->conf is set (the record,
 * an object, as it is), compact, malloc'd; NULL if req is incomplete or
 * memory ran out.  pay_psp_request_load() reads it back: 0 and *req filled
 * (conf, compact, when the stored request has one; free with
 * pay_psp_request_free), or -1 when stored is not that object of three
 * strings without a NUL and, if any, a "conf" object.
 */
char *pay_psp_request_dump(const pay_psp_request_t *req);
int  pay_psp_request_load(const char *stored, size_t len,
    pay_psp_request_t *req);

typedef enum {
    PAY_PSP_CREATED = 1,    /* 2xx with a token and URL */
    PAY_PSP_REFUSED,        /* 400/402/404/422: refused for good */
    PAY_PSP_AUTH,           /* 401/403: our credentials: config alert */
    PAY_PSP_RETRY           /* 5xx, 409, 429, unparsable 2xx, other */
} pay_psp_outcome_e;

/*
 * An off-session charge's answer (dialect.h charge_answer): the PSP
 * decides at once.
 */
typedef enum {
    PAY_CHARGE_ACCEPTED = 1,    /* taken (succeeded, authorised, or under
                                   way): its webhook books it */
    PAY_CHARGE_DECLINED,        /* refused for good; decline_code says why */
    PAY_CHARGE_AUTH_REQUIRED,   /* the issuer wants the shopper (SCA) */
    PAY_CHARGE_AUTH,            /* 401/403: our credentials */
    PAY_CHARGE_RETRY            /* no answer, 409, 429, 5xx, unreadable */
} pay_charge_outcome_e;

typedef struct {
    pay_charge_outcome_e  outcome;
    char                  psp_ref[128];       /* the PSP's payment id
                                                 (ACCEPTED; "" otherwise
                                                 when absent) */
    char                  decline_code[64];   /* [a-z0-9_], e.g.
                                                 insufficient_funds */
    char                  reason[256];        /* the PSP's words, for the
                                                 merchant */
    int                   key_in_use;         /* RETRY: as below */
} pay_psp_charge_result_t;

typedef struct {
    pay_psp_outcome_e  outcome;
    char               token[256];     /* PAY_PSP_CREATED */
    char               url[2048];      /* PAY_PSP_CREATED: hosted page */
    int64_t            expires_at;     /* PAY_PSP_CREATED, 0 if absent */
    char               reason[256];    /* PAY_PSP_REFUSED: the PSP's reason,
                                          safe to show the merchant */
    int                key_in_use;     /* PAY_PSP_RETRY: a 4xx that only
                                          says an earlier attempt holds the
                                          key (dialect key_in_use): worth
                                          another attempt at once */
} pay_psp_result_t;

/* Classifies an HTTP answer (status, body; status 0: no answer).  Never
 * fails.  reason is also set, for logs, when not PAY_PSP_REFUSED. */
void pay_psp_parse_registration(pay_dialect_e d, int status, const char *body,
    size_t len, pay_psp_result_t *res);

/* The same, and every occurrence of secret (the PSP credential the
 * request was sent with; NULL for none) is removed from res->reason
 * before it is truncated. */
void pay_psp_parse_registration_redact(pay_dialect_e d, int status,
    const char *body, size_t len, const char *secret, size_t secret_len,
    pay_psp_result_t *res);

/*
 * A saved method's detach at its PSP (doc/API.md, "Saved payment
 * methods"): Stripe POST /v1/payment_methods/{token}/detach (an empty
 * form), Adyen DELETE /v71/storedPaymentMethods/{token}?shopperReference=
 * &merchantAccount= (both required), generic DELETE
 * /payment_methods/{token}; every part percent-encoded.  Sent again as
 * often as needed: a detach already done is answered as GONE.  path is
 * malloc'd (the caller frees it); method, content_type and body are
 * static (content_type and body NULL: no body).  Returns 0, or -1 on bad
 * input or no memory (path NULL).
 */
typedef struct {
    const char  *method;            /* "POST" or "DELETE" */
    char        *path;              /* appended to the PSP's URL */
    const char  *content_type;
    const char  *body;
} pay_psp_detach_t;

typedef enum {
    PAY_DETACH_DONE = 1,            /* 2xx: detached now */
    PAY_DETACH_GONE,                /* the PSP no longer has it attached:
                                       404; Stripe's 400, Adyen's 422 */
    PAY_DETACH_AUTH,                /* 401/403: our credentials */
    PAY_DETACH_REFUSED,             /* another 4xx: not detached */
    PAY_DETACH_RETRY                /* no answer, 408/409/429, 5xx */
} pay_detach_outcome_e;

int pay_psp_detach_request(pay_dialect_e d, const char *token,
    const char *shopper_ref, const char *merchant_account,
    pay_psp_detach_t *out);
/* The answer's status (0: none) as an outcome. */
pay_detach_outcome_e pay_psp_detach_answer(pay_dialect_e d, int status);


#endif
