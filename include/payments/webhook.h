/*
 * ngx_payments core: PSP webhooks.  Verify over the raw bytes first, then
 * parse into events that carry only what was authenticated.  No I/O.
 * The schemes: doc/PSPS.md; their vectors are in tests/unit.
 */
#ifndef PAYMENTS_WEBHOOK_H
#define PAYMENTS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <payments/error.h>

/* The events a webhook's first read makes room for; an Adyen batch of
 * more items asks for more (pay_adyen_verify, PAY_WH_MORE): Adyen sets no
 * bound on a batch, the body's size limit does. */
#define PAY_WEBHOOK_MAX_ITEMS  64

typedef enum {
    PAY_EVT_SUCCEEDED = 1,  /* the checkout is paid */
    PAY_EVT_FAILED,         /* declined, expired, async payment failed */
    PAY_EVT_PENDING,        /* authentic, no move yet (e.g. Stripe unpaid) */
    PAY_EVT_IGNORED,        /* authentic, an event type we do not act on */
    /* the money after "paid" (issue 10): reference is our op nonce for
     * refunds and pay-outs, the checkout nonce (or "") for disputes */
    PAY_EVT_REFUND_SUCCEEDED,
    PAY_EVT_REFUND_FAILED,
    PAY_EVT_DISPUTE_OPENED,
    PAY_EVT_DISPUTE_WON,
    PAY_EVT_DISPUTE_LOST,
    PAY_EVT_PAYOUT_PAID,
    PAY_EVT_PAYOUT_FAILED,
    /* the shopper's payment authorized, not captured (manual capture): a
     * hold, nothing booked */
    PAY_EVT_AUTHORIZED,
    /* a capture or a void of a manual-capture payment: reference is the
     * operation's nonce (a void the PSP made by itself names the
     * checkout's), object_ref the PSP's id of it, payment_ref the payment */
    PAY_EVT_CAPTURE_SUCCEEDED,
    PAY_EVT_CAPTURE_FAILED,
    PAY_EVT_VOID_SUCCEEDED,
    PAY_EVT_VOID_FAILED,
    /* the PSP stored the shopper's payment method for later charges:
     * method is its reusable token, reference the checkout's nonce */
    PAY_EVT_METHOD_SAVED,
    /* part of a paid pay-out taken back (Stripe's partial transfer
     * reversal): amount is what was taken back so far, in all */
    PAY_EVT_PAYOUT_REVERSED,
    /* a dispute's inquiry closed without a chargeback (Stripe's
     * charge.dispute.closed with warning_closed, Adyen's
     * ISSUER_RESPONSE_TIMEFRAME_EXPIRED): the PSP withdrew nothing.
     * object_ref the dispute, payment_ref the payment; the amount, when
     * given, is not read (nothing moves by it) */
    PAY_EVT_DISPUTE_INQUIRY_CLOSED,
    /* one payment attempt the PSP refused (Adyen's AUTHORISATION with
     * success false), reference the checkout's nonce, payment_ref the
     * refused payment: the database decides what it means (an off-session
     * charge with no hosted page has no shopper to try again: FAILED; a
     * hosted session stays open: recorded, nothing moves) */
    PAY_EVT_DECLINED
} pay_event_kind_e;

/* The last kind, for range checks. */
#define PAY_EVT_KIND_MAX  PAY_EVT_DECLINED

typedef struct {
    char              event_id[256];  /* stripe: evt_…; adyen: pspReference
                                         ":" eventCode; generic: event_id */
    char              type[64];       /* the PSP's own event type */
    pay_event_kind_e  kind;
    char              token[256];     /* the PSP session token: stripe
                                         data.object.id, generic token;
                                         "" for adyen (not signed) */
    char              reference[128]; /* our nonce: stripe
                                         client_reference_id, adyen
                                         merchantReference, generic
                                         reference; "" if absent */
    int64_t           amount;         /* ISO 4217 minor units, converted
                                         from the PSP's own (psp.h);
                                         PAY_EVT_AMOUNT_ABSENT or
                                         PAY_EVT_AMOUNT_INEXACT */
    char              currency[4];    /* upper case; "" if absent */
    int               livemode;       /* 1, 0, or -1 when not signed */
    char              account[128];   /* adyen: the signed
                                         merchantAccountCode; "" for the
                                         others */
    char              payment_ref[128]; /* the PSP's id of the captured
                                         payment: stripe payment_intent,
                                         adyen pspReference of the
                                         AUTHORISATION (originalReference
                                         of a refund or chargeback),
                                         generic payment_id; "" if none */
    char              object_ref[128];  /* the PSP's id of the refund,
                                         dispute or transfer; "" */
    int               captured;       /* 1 on a SUCCEEDED the PSP says
                                         was captured in full (stripe:
                                         payment_status "paid"), which is
                                         paid whatever capture mode the
                                         checkout was stored with; 0 when
                                         its words leave it open (adyen's
                                         AUTHORISATION, the generic
                                         success) */
    int               shopper;        /* a payment look-up's PENDING: the
                                         charge failed asking for the
                                         shopper (stripe
                                         requires_payment_method with
                                         authentication_required, generic
                                         requires_authentication); token
                                         is the PSP's id of that payment */
    size_t            evidence_off;   /* the bytes of the body that are
                                         this event's own signed words:
                                         an Adyen notification item,
                                         which its HMAC verifies alone */
    size_t            evidence_len;   /* 0: the whole body (one signature
                                         covers it: Stripe, generic, an
                                         Adyen transfer) */
    /* METHOD_SAVED: the PSP's reusable token (stripe pm_…, adyen the
     * RECURRING_CONTRACT's pspReference, generic payment_method), the
     * PSP's customer (stripe cus_…, or ""), and what it tells for
     * display: brand ("" absent), last four digits, expiry (0 absent) */
    char              method[256];
    char              psp_customer[128];
    char              brand[33];
    char              last4[5];
    int               exp_month;
    int               exp_year;
} pay_event_t;

/* A Stripe charge.refunded event gives one event per refund in
 * data.object.refunds.data, at most this many. */
#define PAY_STRIPE_REFUNDS_MAX  16

/* No amount in the event (or no currency to read it in). */
#define PAY_EVT_AMOUNT_ABSENT   (-1)
/* An amount in the PSP's units with no exact ISO value (Stripe ISK
 * 500.50): it can match no checkout, and the database says
 * amount_mismatch for any amount other than PAY_EVT_AMOUNT_ABSENT. */
#define PAY_EVT_AMOUNT_INEXACT  (-2)

/* A secret as bytes (Stripe: the whsec_ string as is; Adyen: the HMAC key
 * already hex-decoded). */
typedef struct {
    const unsigned char  *data;
    size_t                len;
} pay_secret_t;

/*
 * Stripe-Signature: "t=…,v1=…[,v1=…][,v0=…]".  HMAC-SHA256 over "t.body"
 * with each secret, any v1 matching in constant time passes; then
 * |now - t| <= tolerance, else PAY_ERR_STALE_WEBHOOK.  Returns PAY_ERR_NONE,
 * PAY_ERR_BAD_SIGNATURE or PAY_ERR_STALE_WEBHOOK.
 */
pay_err_e pay_stripe_verify(const char *header, size_t hlen,
    const char *body, size_t blen, const pay_secret_t *secrets,
    size_t nsecrets, int64_t now, int64_t tolerance);

/*
 * After pay_stripe_verify: the events of one Stripe event
 * (JSON_REJECT_DUPLICATES), at most max, *nevents of them.  One event,
 * except charge.refunded: one per refund in data.object.refunds.data
 * (the first PAY_STRIPE_REFUNDS_MAX and at most max; none listed is one
 * IGNORED event), event_id "<evt id>:<re id>".
 *   checkout.session.*: as before (token the session id, reference
 *     client_reference_id, amount_total), payment_ref payment_intent;
 *   refund.created/updated, charge.refunded: by the refund's status,
 *     succeeded REFUND_SUCCEEDED, failed/canceled REFUND_FAILED, other
 *     PENDING; reference metadata.nonce, object_ref id (required),
 *     payment_ref payment_intent (the charge's if the refund has none);
 *   charge.dispute.created and .funds_withdrawn DISPUTE_OPENED (created
 *     with a warning_* status, an inquiry, PENDING), charge.dispute.closed
 *     won/lost DISPUTE_WON/_LOST (other statuses IGNORED); object_ref id,
 *     payment_ref payment_intent, reference "";
 *   transfer.created PAYOUT_PAID, transfer.failed and transfer.reversed
 *     with reversed true PAYOUT_FAILED, a partial reversal (reversed
 *     false) PAYOUT_REVERSED of amount_reversed; reference
 *     metadata.nonce, object_ref id;
 *   anything else IGNORED.
 * The refund, dispute and transfer events need amount and currency (the
 * amount converted to ISO minor units, PAY_EVT_AMOUNT_INEXACT when it has
 * no exact value) and token is "" for them.  Returns 0, or -1 (with
 * *nevents 0) for a body that is not such a Stripe event.
 */
int pay_stripe_parse_events(const char *body, size_t blen,
    pay_event_t *events, size_t max, size_t *nevents);

/* The same with max 1: the first event only. */
int pay_stripe_parse_event(const char *body, size_t blen, pay_event_t *ev);

/*
 * Adyen: {"live":…,"notificationItems":[{"NotificationRequestItem":{…}}]}.
 * Every item (at least one, as many as the body holds) must carry
 * additionalData.hmacSignature = base64(HMAC-SHA256(key, "pspReference:
 * originalReference:merchantAccountCode:merchantReference:amount.value:
 * amount.currency:eventCode:success")) for one of keys (hex-decoded, see
 * pay_adyen_key_decode); one failing item refuses the whole request.  The
 * events are read from those eight fields only: event_id pspReference ":"
 * eventCode, type eventCode, reference merchantReference, token "",
 * livemode -1 (Adyen's "live" is not signed: the PSP's configuration says).
 * AUTHORISATION success "true" -> SUCCEEDED (only with an amount and a
 * currency; payment_ref pspReference), "false" -> PENDING: one refused
 * attempt does not end an Adyen session, the shopper may try again and
 * pay (the checkout fails when the session expires).
 * REFUND success "true" -> REFUND_SUCCEEDED; REFUND "false" (event_id
 * pspReference ":REFUND:false") and REFUND_FAILED -> REFUND_FAILED;
 * object_ref pspReference, payment_ref originalReference, reference our
 * refund nonce.  NOTIFICATION_OF_CHARGEBACK and CHARGEBACK ->
 * DISPUTE_OPENED, CHARGEBACK_REVERSED -> DISPUTE_WON, SECOND_CHARGEBACK
 * and PREARBITRATION_LOST -> DISPUTE_LOST; payment_ref originalReference
 * (required), object_ref "cb:" originalReference (one dispute per
 * payment).  Refunds and disputes need an amount and a currency.
 * Anything else IGNORED.  Amounts are read in Adyen's units and converted
 * to ISO's (psp.h); account is merchantAccountCode, for the caller to
 * compare with its configuration.  Returns PAY_ERR_NONE with *nevents
 * set; PAY_ERR_PAYLOAD_TOO_LARGE when every item is authentic and there
 * are more than max: *nevents is how many (nothing read; call again with
 * room for them, which the body bounds: each item carries its signature);
 * else *nevents 0 and PAY_ERR_BAD_SIGNATURE (the body is not a
 * well-formed, fully signed notification) or PAY_ERR_INVALID_REQUEST
 * (every item is authentic but one is not an event we can read).
 */
pay_err_e pay_adyen_verify(const char *body, size_t blen,
    const pay_secret_t *keys, size_t nkeys, pay_event_t *events, size_t max,
    size_t *nevents);

/*
 * The evidence of one kept Adyen notification item, verified again (an
 * operator's re-verification, years later): bytes is the item as the PSP
 * sent it, {"NotificationRequestItem":{…}} (pay_event_t.evidence_off/_len
 * of its notification), or a whole notification, every item of which
 * must verify.  Its hmacSignature against each of keys; only the eight
 * signed fields are read.  Returns PAY_ERR_NONE or PAY_ERR_BAD_SIGNATURE.
 */
pay_err_e pay_adyen_evidence_verify(const char *bytes, size_t len,
    const pay_secret_t *keys, size_t nkeys);

/*
 * The same kept bytes read again, after pay_adyen_evidence_verify: one
 * item ({"NotificationRequestItem":{…}}) is one event, read from its
 * eight signed fields as pay_adyen_verify reads it; a whole notification
 * is pay_adyen_verify's events.  Every item is verified again with keys.
 * Returns PAY_ERR_NONE with *nevents set, else *nevents 0 and
 * PAY_ERR_BAD_SIGNATURE or PAY_ERR_INVALID_REQUEST as pay_adyen_verify
 * (or its PAY_ERR_PAYLOAD_TOO_LARGE, *nevents the items of a whole
 * notification of more than max).
 */
pay_err_e pay_adyen_evidence_events(const char *bytes, size_t len,
    const pay_secret_t *keys, size_t nkeys, pay_event_t *events, size_t max,
    size_t *nevents);

/* The name a kept event's kind has in the database (pay_event_apply's
 * p_kind, psp_events.kind): "SUCCEEDED" ... "METHOD_SAVED", and
 * "CAPTURED" for a SUCCEEDED the PSP says was captured in full; "IGNORED"
 * for anything else. */
const char *pay_event_kind_name(const pay_event_t *ev);

/* 1 when a kept event's bytes may carry a saved payment method's
 * reusable PSP token (Stripe pm_, card_ or src_ ids, a "payment_method"
 * member, Adyen's recurringDetailReference, storedPaymentMethodId or a
 * RECURRING_CONTRACT), which the inbox keeps sealed; else 0.  A marker
 * found where no token is only costs a seal. */
int pay_evidence_has_method_token(const char *bytes, size_t len);

#define PAY_ADYEN_KEY_LEN      32
#define PAY_ADYEN_SIG_B64_LEN  44

/*
 * Adyen balance-platform webhooks (the pay-outs' transfers): header
 * HmacSignature = base64(HMAC-SHA256(key, raw body)) for one of keys (the
 * same hex-decoded keys), compared in constant time.  Returns
 * PAY_ERR_NONE or PAY_ERR_BAD_SIGNATURE.
 */
pay_err_e pay_adyen_transfer_verify(const char *sig, size_t siglen,
    const char *body, size_t blen, const pay_secret_t *keys, size_t nkeys);

/*
 * After pay_adyen_transfer_verify: {"type","environment","data":{"id",
 * "reference","status","amount":{"value","currency"}}}.
 * balancePlatform.transfer.updated (and .created): status booked ->
 * PAYOUT_PAID; failed, returned, refused -> PAYOUT_FAILED; others
 * PENDING; event_id "transfer:<id>:<status>", object_ref data.id,
 * reference data.reference (our pay-out nonce), amount and currency
 * required (Adyen's units, converted).  Other types: IGNORED, event_id
 * "<type>:<id>".  livemode 1 for environment "live", 0 for "test", -1
 * otherwise (the caller compares it with its mode); token and account "".
 * Returns 0, or -1 (not such an event).
 */
int pay_adyen_parse_transfer(const char *body, size_t blen, pay_event_t *ev);

/* The HMAC key as Adyen shows it: 64 hex digits, either case.  Returns 0,
 * or -1 for anything else. */
int pay_adyen_key_decode(const char *hex, size_t len,
    unsigned char out[PAY_ADYEN_KEY_LEN]);

/* out = base64(HMAC-SHA256(key, data)), NUL-terminated.  Returns 0 or -1. */
int pay_adyen_hmac_b64(const unsigned char *key, size_t klen,
    const char *data, size_t dlen, char out[PAY_ADYEN_SIG_B64_LEN + 1]);

/*
 * generic: a compact JWT (header configurable, default
 * Payments-Verification) signed ES256 or RS256 by a key named by kid and
 * pinned to one algorithm in the configuration; the token never picks it.
 */
typedef enum {
    PAY_JWT_ES256 = 1,      /* EC P-256 public key */
    PAY_JWT_RS256           /* RSA public key, >= 2048 bits */
} pay_jwt_alg_e;

typedef struct {
    const char     *kid;        /* NUL-terminated, non-empty */
    pay_jwt_alg_e   alg;
    const char     *pem;        /* SubjectPublicKeyInfo PEM */
    size_t          pem_len;
} pay_jwt_key_t;

#define PAY_JWT_MAX_LEN        8192  /* longer headers are refused unread */
#define PAY_JWT_IAT_MAX_AGE    300
#define PAY_JWT_IAT_MAX_AHEAD  60

/* Configuration time (nginx -t): the kid is usable and the PEM is a public
 * key of the pinned algorithm's type.  Returns 0 or -1. */
int pay_jwt_key_check(const pay_jwt_key_t *key);

/*
 * Verifies the JWT over body: the key by kid, header alg equal to its
 * pinned alg, the signature (ours and libjwt's), then the claims:
 * request_body_sha256 (lower hex, constant time), iss and aud when not
 * NULL (aud a string or an array), exp/nbf when present.  Returns
 * PAY_ERR_NONE, PAY_ERR_BAD_SIGNATURE, or PAY_ERR_STALE_WEBHOOK (authentic
 * but iat older than 300 s or more than 60 s ahead).
 */
pay_err_e pay_generic_verify(const char *jwt, size_t jlen, const char *body,
    size_t blen, const pay_jwt_key_t *keys, size_t nkeys, const char *iss,
    const char *aud, int64_t now);

/*
 * After pay_generic_verify: {"event_id","type","reference","token",
 * "amount" (decimal string),"currency"} and the optional "payment_id",
 * "refund_id", "dispute_id", "payout_id".  payment.succeeded -> SUCCEEDED
 * (payment_ref payment_id), payment.failed -> FAILED;
 * refund.succeeded/.failed -> REFUND_SUCCEEDED/_FAILED (reference our
 * refund nonce, object_ref refund_id, payment_ref payment_id);
 * dispute.opened/.won/.lost -> DISPUTE_OPENED/_WON/_LOST (object_ref
 * dispute_id, payment_ref payment_id, reference the checkout nonce or "");
 * payout.paid/.failed -> PAYOUT_PAID/_FAILED (reference our pay-out
 * nonce, object_ref payout_id); other types IGNORED.  The event is
 * authentic, so its money never refuses it: currency upper case when it
 * is an ISO 4217 code, else ""; amount in its ISO minor units (zero
 * included), PAY_EVT_AMOUNT_ABSENT without an "amount" member, and
 * PAY_EVT_AMOUNT_INEXACT when an amount is not an exact decimal string in
 * an ISO 4217 currency or a currency is present that is not one (the
 * database answers amount_mismatch).  Returns 0, or -1 (not such an
 * event: its ids or type missing or malformed).
 */
int pay_generic_parse_event(const char *body, size_t blen, pay_event_t *ev);

#endif
