/*
 * ngx_payments core: PSP webhooks.  Verify over the raw bytes first, then
 * parse into events that carry only what was authenticated.  No I/O.
 * Facts and vectors: ../shared/design/PSP_FACTS.md.
 */
#ifndef PAYMENTS_WEBHOOK_H
#define PAYMENTS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <payments/error.h>

#define PAY_WEBHOOK_MAX_ITEMS  64

typedef enum {
    PAY_EVT_SUCCEEDED = 1,  /* the checkout is paid */
    PAY_EVT_FAILED,         /* declined, expired, async payment failed */
    PAY_EVT_PENDING,        /* authentic, no move yet (e.g. Stripe unpaid) */
    PAY_EVT_IGNORED         /* authentic, an event type we do not act on */
} pay_event_kind_e;

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
    int64_t           amount;         /* minor units; -1 if absent */
    char              currency[4];    /* upper case; "" if absent */
    int               livemode;       /* 1, 0, or -1 when not signed */
} pay_event_t;

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

/* After pay_stripe_verify: the event (JSON_REJECT_DUPLICATES).  Returns 0,
 * or -1 for a body that is not a Stripe event. */
int pay_stripe_parse_event(const char *body, size_t blen, pay_event_t *ev);

/*
 * Not yet here (issue #3): Adyen (per-item HMAC over the eight signed
 * fields, all or none) and the generic dialect (JWT with a kid pinned to
 * ES256/RS256).  Until they are, nginx -t refuses webhooks for those
 * dialects.
 */

#endif
