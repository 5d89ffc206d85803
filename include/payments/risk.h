/*
 * ngx_payments core: the risk check asked before a checkout reaches its PSP,
 * and again after its payment when so configured (doc/RISK.md).
 *
 * The request is JSON the gateway builds from the checkout (never card
 * data, which it never has), signed with the provider's shared secret:
 *     Payments-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 *                         "<t>." body)>
 * The answer is {"verdict":"allow|deny|review","reason":"...","score":n},
 * parsed strictly; a provider that signs its answers does so with its own
 * secret over "<t>." Idempotency-Key "." body: an answer is bound to the
 * request it answers.
 */
#ifndef PAYMENTS_RISK_H
#define PAYMENTS_RISK_H

#include <stddef.h>
#include <stdint.h>

#include <payments/checkout.h>

#define PAY_RISK_SIG_MAX      (2 + 20 + 4 + 64 + 1)  /* t=…,v1=<hex> NUL */
#define PAY_RISK_REASON_MAX   64
#define PAY_RISK_SCORE_MAX    1000

typedef enum {
    PAY_RISK_ALLOW = 0,
    PAY_RISK_DENY,
    PAY_RISK_REVIEW
} pay_risk_verdict_e;

typedef struct {
    pay_risk_verdict_e  verdict;
    int                 score;          /* 0..1000; -1: not given */
    char                reason[PAY_RISK_REASON_MAX + 1];  /* [a-z0-9_.-],
                                           "" when not given */
} pay_risk_answer_t;

/* "allow", "deny", "review" */
const char *pay_risk_verdict_name(pay_risk_verdict_e v);

/*
 * The request body for a checkout before its PSP: compact JSON
 * {"checkout_id","merchant_id","psp","currency","amount_total",
 *  "payment_orders":[{"payment_order_id","seller_account","amount_minor"}],
 *  "buyer":{"email","id"} (the fields the shop sent),"phase":"before_psp"}.
 * malloc'd, or NULL.
 */
char *pay_risk_request(const pay_checkout_t *co, const char *merchant_id);

/* A paid checkout as the database keeps it, for the check after the
 * payment; every pointer borrowed. */
typedef struct {
    const char  *merchant_id;
    const char  *checkout_id;
    const char  *psp;
    const char  *currency;
    int64_t      total;             /* minor units, the orders' sum */
    const char  *orders;            /* a JSON array of {"payment_order_id",
                                       "seller_account","amount_minor"} */
    const char  *buyer_email;       /* NULL: none kept */
    const char  *psp_payment_ref;   /* NULL: not known yet */
} pay_risk_paid_t;

/*
 * The request after the payment: the first one's members (the buyer's id
 * is not kept, so buyer holds its e-mail or nothing), "phase":
 * "after_payment", then "psp_payment_ref" when known.  Orders that are no
 * such array, or do not add up to total, are refused.  malloc'd, or NULL.
 */
char *pay_risk_request_paid(const pay_risk_paid_t *p);

/*
 * "t=<ts>,v1=<hex>" with secret over "<ts>." body (key NULL: a request),
 * or over "<ts>." key "." body (an answer, key the Idempotency-Key of the
 * request it answers: 1..255 visible ASCII characters without '.'),
 * NUL-terminated in out (cap >= PAY_RISK_SIG_MAX).  Returns 0, or -1.
 */
int pay_risk_sign(const unsigned char *secret, size_t slen, int64_t ts,
    const char *key, const char *body, size_t len, char *out, size_t cap);

/*
 * Whether header (a Payments-Signature value) signs, with secret, the
 * answer body to the request whose Idempotency-Key is key (as
 * pay_risk_sign with that key: an answer played back for another request
 * does not verify), its t= within tolerance seconds of now.  Compared in
 * constant time.  Returns 0 when it does, -1 otherwise (missing,
 * malformed, stale, wrong, key NULL).
 */
int pay_risk_verify(const unsigned char *secret, size_t slen,
    const char *header, size_t hlen, const char *key, const char *body,
    size_t len, int64_t now, int64_t tolerance);

/*
 * The provider's answer, strictly: a JSON object with "verdict" (required)
 * and optional "reason" (a code of [a-z0-9_.-], 1..64) and "score" (an
 * integer 0..1000); no other member, no duplicate.  Returns 0 and fills
 * *a, or -1 (malformed: the caller applies its policy).
 */
int pay_risk_answer_parse(const char *body, size_t len, pay_risk_answer_t *a);

#endif
