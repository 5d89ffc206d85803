/*
 * ngx_payments core: Stripe webhooks (PSP_FACTS.md).  The signature is
 * checked over the raw bytes before the body is parsed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <payments/psp.h>
#include <payments/time.h>
#include <payments/webhook.h>


#define PAY_STRIPE_HEADER_MAX  8192
#define PAY_STRIPE_V1_MAX      8


static int
pay_hex32(const char *s, size_t len, unsigned char out[32])
{
    size_t  i;
    int     hi, lo;

    if (len != 64) {
        return -1;
    }

    for (i = 0; i < 32; i++) {
        hi = s[2 * i];
        lo = s[2 * i + 1];

        /* Stripe writes lower-case hex; anything else is not its signature */
        hi = (hi >= '0' && hi <= '9') ? hi - '0'
             : (hi >= 'a' && hi <= 'f') ? hi - 'a' + 10 : -1;
        lo = (lo >= '0' && lo <= '9') ? lo - '0'
             : (lo >= 'a' && lo <= 'f') ? lo - 'a' + 10 : -1;

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


pay_err_e
pay_stripe_verify(const char *header, size_t hlen, const char *body,
    size_t blen, const pay_secret_t *secrets, size_t nsecrets, int64_t now,
    int64_t tolerance)
{
    int             have_t, match;
    size_t          i, j, nv1, klen;
    int64_t         t;
    const char     *p, *end, *item, *comma, *v;
    unsigned int    maclen;
    unsigned char   v1[PAY_STRIPE_V1_MAX][32], mac[32], *signed_payload;
    char            tbuf[24];
    int             tlen;

    if (header == NULL || hlen == 0 || hlen > PAY_STRIPE_HEADER_MAX
        || nsecrets == 0)
    {
        return PAY_ERR_BAD_SIGNATURE;
    }

    have_t = 0;
    t = 0;
    nv1 = 0;
    end = header + hlen;

    for (item = header; item < end; item = comma + 1) {
        comma = memchr(item, ',', (size_t) (end - item));
        if (comma == NULL) {
            comma = end;
        }

        p = memchr(item, '=', (size_t) (comma - item));
        if (p == NULL) {
            return PAY_ERR_BAD_SIGNATURE;
        }

        klen = (size_t) (p - item);
        v = p + 1;

        if (klen == 1 && item[0] == 't') {
            /* epoch seconds, written as they are signed: "t.body" is
             * rebuilt from the number below */
            if (have_t) {
                return PAY_ERR_BAD_SIGNATURE;
            }

            t = pay_time_parse(v, (size_t) (comma - v), PAY_TIME_EPOCH);
            if (t < 0) {
                return PAY_ERR_BAD_SIGNATURE;
            }

            have_t = 1;

        } else if (klen == 2 && item[0] == 'v' && item[1] == '1') {
            /* several v1 while a secret is rolled; others are ignored */
            if (nv1 < PAY_STRIPE_V1_MAX
                && pay_hex32(v, (size_t) (comma - v), v1[nv1]) == 0)
            {
                nv1++;
            }
        }

        /* v0 and unknown schemes do not count */

        if (comma == end) {
            break;
        }
    }

    if (!have_t || nv1 == 0) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    /* the signed payload is "t.body" */
    tlen = snprintf(tbuf, sizeof(tbuf), "%lld.", (long long) t);

    signed_payload = malloc((size_t) tlen + blen + 1);
    if (signed_payload == NULL) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    memcpy(signed_payload, tbuf, (size_t) tlen);
    if (blen) {
        memcpy(signed_payload + tlen, body, blen);
    }

    match = 0;

    for (i = 0; i < nsecrets; i++) {
        if (secrets[i].data == NULL || secrets[i].len == 0
            || HMAC(EVP_sha256(), secrets[i].data, (int) secrets[i].len,
                    signed_payload, (size_t) tlen + blen, mac, &maclen)
               == NULL)
        {
            continue;
        }

        /* every candidate is compared, in constant time */
        for (j = 0; j < nv1; j++) {
            match |= (CRYPTO_memcmp(mac, v1[j], 32) == 0);
        }
    }

    free(signed_payload);

    if (!match) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    /* authentic; now fresh, in either direction */
    if (t > now + tolerance || now > t + tolerance) {
        return PAY_ERR_STALE_WEBHOOK;
    }

    return PAY_ERR_NONE;
}

static int
pay_copy(char *dst, size_t size, json_t *v)
{
    const char  *s;

    s = json_string_value(v);
    if (s == NULL) {
        dst[0] = '\0';
        return -1;
    }

    if (strlen(s) >= size) {
        return -1;
    }

    strcpy(dst, s);
    return 0;
}


/* An optional string of the new events: absent, null or another type is
 * "" (0); a string that does not fit or holds a NUL is -1. */
static int
pay_copy_opt(char *dst, size_t size, json_t *v)
{
    const char  *s;

    dst[0] = '\0';

    if (!json_is_string(v)) {
        return 0;
    }

    s = json_string_value(v);

    if (strlen(s) != json_string_length(v) || strlen(s) >= size) {
        return -1;
    }

    strcpy(dst, s);
    return 0;
}


/* A required id: a non-empty string that fits. */
static int
pay_copy_id(char *dst, size_t size, json_t *v)
{
    return (pay_copy_opt(dst, size, v) != 0 || dst[0] == '\0') ? -1 : 0;
}


/*
 * currency and obj[key] (Stripe's minor units) into ev, as ISO minor
 * units; an amount with no exact ISO value is PAY_EVT_AMOUNT_INEXACT.
 * required: no integer amount >= 0 or no three-letter currency is -1.
 */
static int
pay_stripe_money(json_t *obj, const char *key, pay_event_t *ev,
    int required)
{
    size_t   i;
    json_t  *amount;

    ev->amount = PAY_EVT_AMOUNT_ABSENT;

    if (pay_copy(ev->currency, sizeof(ev->currency),
                 json_object_get(obj, "currency")) == 0)
    {
        for (i = 0; ev->currency[i]; i++) {
            if (ev->currency[i] >= 'a' && ev->currency[i] <= 'z') {
                ev->currency[i] = (char) (ev->currency[i] - 'a' + 'A');
            }
        }

    } else {
        ev->currency[0] = '\0';
    }

    /* in Stripe's minor units (ISK has two decimals there, MGA none):
     * read in its currency, as ISO minor units */
    amount = json_object_get(obj, key);
    if (json_is_integer(amount) && json_integer_value(amount) >= 0
        && ev->currency[0] != '\0')
    {
        if (pay_psp_amount_from_psp(PAY_DIALECT_STRIPE, ev->currency,
                                    (int64_t) json_integer_value(amount),
                                    &ev->amount)
            != 0)
        {
            ev->amount = PAY_EVT_AMOUNT_INEXACT;
        }
    }

    if (required
        && (ev->amount == PAY_EVT_AMOUNT_ABSENT
            || strlen(ev->currency) != 3))
    {
        return -1;
    }

    return 0;
}


/*
 * A refund object {id, amount, currency, status, payment_intent,
 * metadata:{nonce}} into ev (event_id, type and livemode already set).
 * pi: the charge's payment_intent when the refund has none, or NULL.
 */
static int
pay_stripe_refund_event(json_t *re, json_t *pi, pay_event_t *ev)
{
    const char  *status;

    if (!json_is_object(re)) {
        return -1;
    }

    status = json_string_value(json_object_get(re, "status"));

    if (status == NULL
        || pay_copy_id(ev->object_ref, sizeof(ev->object_ref),
                       json_object_get(re, "id")) != 0
        || pay_copy_opt(ev->reference, sizeof(ev->reference),
                        json_object_get(json_object_get(re, "metadata"),
                                        "nonce")) != 0
        || pay_copy_opt(ev->payment_ref, sizeof(ev->payment_ref),
                        json_object_get(re, "payment_intent")) != 0
        || pay_stripe_money(re, "amount", ev, 1) != 0)
    {
        return -1;
    }

    if (ev->payment_ref[0] == '\0' && pi != NULL
        && pay_copy_opt(ev->payment_ref, sizeof(ev->payment_ref), pi) != 0)
    {
        return -1;
    }

    if (strcmp(status, "succeeded") == 0) {
        ev->kind = PAY_EVT_REFUND_SUCCEEDED;

    } else if (strcmp(status, "failed") == 0
               || strcmp(status, "canceled") == 0)
    {
        ev->kind = PAY_EVT_REFUND_FAILED;

    } else {
        /* pending, requires_action, or a status Stripe adds later:
         * nothing moves yet */
        ev->kind = PAY_EVT_PENDING;
    }

    return 0;
}


static void pay_stripe_ignored(json_t *obj, pay_event_t *ev);


/*
 * payment_intent.amount_capturable_updated: a manual-capture payment
 * intent {id, amount_capturable, currency, status, metadata:{nonce}} now
 * holds the shopper's money (status requires_capture).  reference is our
 * checkout nonce (the session's payment_intent_data[metadata][nonce]),
 * payment_ref the intent, the amount what may be captured.  Any other
 * status moves nothing.
 */
static int
pay_stripe_authorized(json_t *pi, pay_event_t *ev)
{
    const char  *status;

    status = json_string_value(json_object_get(pi, "status"));

    if (status == NULL
        || pay_copy_id(ev->payment_ref, sizeof(ev->payment_ref),
                       json_object_get(pi, "id")) != 0
        || pay_copy_opt(ev->reference, sizeof(ev->reference),
                        json_object_get(json_object_get(pi, "metadata"),
                                        "nonce")) != 0
        || pay_stripe_money(pi, "amount_capturable", ev, 0) != 0)
    {
        return -1;
    }

    if (strcmp(status, "requires_capture") != 0 || ev->reference[0] == '\0')
    {
        /* not a hold of ours: recorded as ignored, about the intent */
        ev->reference[0] = '\0';
        ev->payment_ref[0] = '\0';
        pay_stripe_ignored(pi, ev);
        return 0;
    }

    ev->kind = PAY_EVT_AUTHORIZED;

    return 0;
}


/*
 * payment_intent.succeeded of a manual capture (metadata.capture: our
 * capture's nonce, set by the capture; without it, metadata.nonce, the
 * checkout's: an intent of ours captured at Stripe's dashboard, which the
 * database books as a capture made outside the API): CAPTURE_SUCCEEDED of
 * amount_received; payment_intent.canceled of an intent of ours
 * (metadata.nonce): VOID_SUCCEEDED, the checkout's authorization released
 * (by our cancel, or by Stripe when it expired).  Any other intent's news
 * is ignored.
 */
/*
 * An off-session charge's payment intent (metadata.charge: our checkout's
 * nonce, set by the charge): payment_intent.succeeded pays the checkout,
 * captured, as a session's "paid" does (token and payment_ref the intent,
 * amount_received); payment_intent.payment_failed fails it -- unless its
 * last_payment_error.code is authentication_required: the issuer wants the
 * shopper, and the gateway made the charge's 402 a hosted page the shopper
 * may still pay on (the checkout stays EXECUTING); recorded, it moves
 * nothing.
 */
static int
pay_stripe_charge_event(json_t *pi, int succeeded, pay_event_t *ev)
{
    const char  *code;

    if (pay_copy_id(ev->payment_ref, sizeof(ev->payment_ref),
                    json_object_get(pi, "id")) != 0
        || pay_copy_id(ev->reference, sizeof(ev->reference),
                       json_object_get(json_object_get(pi, "metadata"),
                                       "charge")) != 0)
    {
        return -1;
    }

    memcpy(ev->token, ev->payment_ref, strlen(ev->payment_ref) + 1);

    if (succeeded) {
        ev->kind = PAY_EVT_SUCCEEDED;
        ev->captured = 1;
        return pay_stripe_money(pi, "amount_received", ev, 1);
    }

    code = json_string_value(json_object_get(
                                 json_object_get(pi, "last_payment_error"),
                                 "code"));

    ev->kind = (code != NULL && strcmp(code, "authentication_required") == 0)
               ? PAY_EVT_PENDING : PAY_EVT_FAILED;
    (void) pay_stripe_money(pi, "amount", ev, 0);

    return 0;
}


/*
 * A payment intent of a session that saves the shopper's method
 * (setup_future_usage set, metadata.nonce our checkout's nonce, its
 * payment_method and customer ids): one more event, METHOD_SAVED, event id
 * "<evt id>:payment_method", when there is room for it.  Stripe's event
 * carries the method's id, not its card: no display fields.
 */
static void
pay_stripe_saved(json_t *pi, const pay_event_t *base, pay_event_t *events,
    size_t max, size_t *nevents)
{
    pay_event_t  *ev;

    if (*nevents >= max
        || !json_is_string(json_object_get(pi, "setup_future_usage"))
        || !json_is_string(json_object_get(pi, "payment_method"))
        || strlen(base->event_id) + sizeof(":payment_method")
           > sizeof(base->event_id))
    {
        return;
    }

    ev = &events[*nevents];
    *ev = *base;
    strcat(ev->event_id, ":payment_method");

    if (pay_copy_id(ev->reference, sizeof(ev->reference),
                    json_object_get(json_object_get(pi, "metadata"),
                                    "nonce")) != 0
        || pay_copy_id(ev->method, sizeof(ev->method),
                       json_object_get(pi, "payment_method")) != 0
        || pay_copy_opt(ev->psp_customer, sizeof(ev->psp_customer),
                        json_object_get(pi, "customer")) != 0
        || pay_copy_opt(ev->payment_ref, sizeof(ev->payment_ref),
                        json_object_get(pi, "id")) != 0)
    {
        memset(ev, 0, sizeof(*ev));
        return;
    }

    ev->kind = PAY_EVT_METHOD_SAVED;
    ev->amount = PAY_EVT_AMOUNT_ABSENT;
    (*nevents)++;
}


/*
 * A setup intent of a session in mode=setup (a save without a charge):
 * setup_intent.succeeded names our nonce in its metadata, the saved
 * payment_method and its customer.  METHOD_SAVED under the event's own
 * id; nothing else happens for it.  -1 when it is not one of ours.
 */
static int
pay_stripe_setup_saved(json_t *si, pay_event_t *ev)
{
    if (!json_is_string(json_object_get(si, "payment_method"))
        || pay_copy_id(ev->reference, sizeof(ev->reference),
                       json_object_get(json_object_get(si, "metadata"),
                                       "nonce")) != 0
        || pay_copy_id(ev->method, sizeof(ev->method),
                       json_object_get(si, "payment_method")) != 0
        || pay_copy_opt(ev->psp_customer, sizeof(ev->psp_customer),
                        json_object_get(si, "customer")) != 0
        || pay_copy_opt(ev->payment_ref, sizeof(ev->payment_ref),
                        json_object_get(si, "id")) != 0)
    {
        return -1;
    }

    ev->kind = PAY_EVT_METHOD_SAVED;
    ev->amount = PAY_EVT_AMOUNT_ABSENT;

    return 0;
}


static int
pay_stripe_intent_end(json_t *pi, int succeeded, pay_event_t *ev)
{
    json_t  *md;

    md = json_object_get(pi, "metadata");

    if (pay_copy_id(ev->payment_ref, sizeof(ev->payment_ref),
                    json_object_get(pi, "id")) != 0
        || pay_copy_opt(ev->reference, sizeof(ev->reference),
                        json_object_get(md, succeeded ? "capture" : "nonce"))
           != 0
        || (succeeded && ev->reference[0] == '\0'
            && pay_copy_opt(ev->reference, sizeof(ev->reference),
                            json_object_get(md, "nonce")) != 0))
    {
        return -1;
    }

    if (ev->reference[0] == '\0') {
        ev->payment_ref[0] = '\0';
        pay_stripe_ignored(pi, ev);
        return 0;
    }

    memcpy(ev->object_ref, ev->payment_ref, strlen(ev->payment_ref) + 1);

    if (succeeded) {
        ev->kind = PAY_EVT_CAPTURE_SUCCEEDED;
        return pay_stripe_money(pi, "amount_received", ev, 1);
    }

    ev->kind = PAY_EVT_VOID_SUCCEEDED;

    return 0;
}


/*
 * A dispute {id, amount, currency, payment_intent, status, reason}, of
 * charge.dispute.created, .funds_withdrawn or .closed.  Created, or its
 * funds withdrawn, opens it: booked when Stripe withdraws the money, once
 * (the second of the two is "already").  An inquiry (status warning_*:
 * warning_needs_response, warning_under_review) withdraws nothing:
 * recorded, nothing booked; escalated to a chargeback, Stripe sets the
 * same dispute's status to needs_response and sends
 * charge.dispute.funds_withdrawn, which opens it.  Closed as an inquiry
 * (warning_closed: never escalated, nothing withdrawn) it is
 * DISPUTE_INQUIRY_CLOSED, which books nothing but gives back what an
 * earlier release held for the inquiry (sql/functions/
 * dispute_inquiry_closed.sql); closed with any other status than won or
 * lost, ignored.
 */
static int
pay_stripe_dispute(json_t *dp, int closed, pay_event_t *ev)
{
    const char  *status;

    if (pay_copy_id(ev->object_ref, sizeof(ev->object_ref),
                    json_object_get(dp, "id")) != 0
        || pay_copy_opt(ev->payment_ref, sizeof(ev->payment_ref),
                        json_object_get(dp, "payment_intent")) != 0
        || pay_stripe_money(dp, "amount", ev, 1) != 0)
    {
        return -1;
    }

    status = json_string_value(json_object_get(dp, "status"));

    if (!closed) {
        ev->kind = (status != NULL && strncmp(status, "warning_", 8) == 0)
                   ? PAY_EVT_PENDING : PAY_EVT_DISPUTE_OPENED;
        return 0;
    }

    ev->kind = (status != NULL && strcmp(status, "won") == 0)
               ? PAY_EVT_DISPUTE_WON
               : (status != NULL && strcmp(status, "lost") == 0)
               ? PAY_EVT_DISPUTE_LOST
               : (status != NULL && strcmp(status, "warning_closed") == 0)
               ? PAY_EVT_DISPUTE_INQUIRY_CLOSED : PAY_EVT_IGNORED;

    return 0;
}


/* A transfer {id, amount, currency, destination, reversed,
 * amount_reversed, metadata:{nonce}}: created pays (a transfer to a
 * connected account settles at once), failed and a whole reversal fail; a
 * partial reversal is PAYOUT_REVERSED of amount_reversed (what was taken
 * back so far, in all), booked back by what it grew. */
static int
pay_stripe_transfer(json_t *tr, const char *type, pay_event_t *ev)
{
    if (pay_copy_id(ev->object_ref, sizeof(ev->object_ref),
                    json_object_get(tr, "id")) != 0
        || pay_copy_opt(ev->reference, sizeof(ev->reference),
                        json_object_get(json_object_get(tr, "metadata"),
                                        "nonce")) != 0
        || pay_stripe_money(tr, "amount", ev, 1) != 0)
    {
        return -1;
    }

    if (strcmp(type, "transfer.created") == 0) {
        ev->kind = PAY_EVT_PAYOUT_PAID;

    } else if (strcmp(type, "transfer.failed") == 0
               || json_is_true(json_object_get(tr, "reversed")))
    {
        ev->kind = PAY_EVT_PAYOUT_FAILED;

    } else {
        /* a partial reversal: the money taken back so far is on the
         * platform's balance again */
        ev->kind = PAY_EVT_PAYOUT_REVERSED;

        if (pay_stripe_money(tr, "amount_reversed", ev, 1) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * An event the gateway deliberately does not act on: IGNORED, about its
 * object (its id, else the event's), so that it is recorded as ignored by
 * its type and no checkout is looked for.
 */
static void
pay_stripe_ignored(json_t *obj, pay_event_t *ev)
{
    size_t  len;

    ev->kind = PAY_EVT_IGNORED;

    if (pay_copy_id(ev->object_ref, sizeof(ev->object_ref),
                    json_object_get(obj, "id"))
        == 0)
    {
        return;
    }

    len = strlen(ev->event_id);
    len = len < sizeof(ev->object_ref) - 1 ? len : sizeof(ev->object_ref) - 1;
    memcpy(ev->object_ref, ev->event_id, len);
    ev->object_ref[len] = '\0';
}


/* charge.refunded: one event per refund listed in the charge, with
 * event_id "<evt id>:<re id>"; none listed (the API versions that no
 * longer expand refunds) is one IGNORED event. */
static int
pay_stripe_charge_refunded(json_t *ch, const pay_event_t *base,
    pay_event_t *events, size_t max, size_t *n)
{
    int           len;
    size_t        i, count;
    json_t       *list, *re, *pi;
    pay_event_t  *ev;

    list = json_object_get(json_object_get(ch, "refunds"), "data");
    pi = json_object_get(ch, "payment_intent");

    if (list != NULL && !json_is_array(list)) {
        return -1;
    }

    count = json_array_size(list);

    if (count == 0) {
        events[0] = *base;
        pay_stripe_ignored(ch, &events[0]);
        *n = 1;
        return 0;
    }

    if (count > PAY_STRIPE_REFUNDS_MAX) {
        /* Stripe lists the newest first */
        count = PAY_STRIPE_REFUNDS_MAX;
    }

    if (count > max) {
        count = max;
    }

    for (i = 0; i < count; i++) {
        ev = &events[i];
        *ev = *base;
        re = json_array_get(list, i);

        if (pay_stripe_refund_event(re, pi, ev) != 0) {
            return -1;
        }

        len = snprintf(ev->event_id, sizeof(ev->event_id), "%s:%s",
                       base->event_id, ev->object_ref);
        if (len < 0 || (size_t) len >= sizeof(ev->event_id)) {
            return -1;
        }
    }

    *n = count;

    return 0;
}


/*
 * An off-session charge's intent names its checkout as metadata.charge,
 * and as metadata.nonce too only when it is a manual capture's, the same
 * nonce.  A "nonce" beside "charge" that is not the same is not the
 * gateway's: a charge of an earlier release carried the merchant's own
 * metadata beside ours, "nonce" included, and another merchant's checkout
 * named there must not take the charge's news (a capture, a release).  It
 * is dropped from the parsed intent: the charge's news is the charge's.
 */
static void
pay_stripe_charge_own_nonce(json_t *pi)
{
    json_t  *md, *charge, *nonce;

    md = json_object_get(pi, "metadata");
    charge = json_object_get(md, "charge");
    nonce = json_object_get(md, "nonce");

    if (json_is_string(charge) && nonce != NULL
        && !(json_is_string(nonce)
             && strcmp(json_string_value(nonce),
                       json_string_value(charge)) == 0))
    {
        (void) json_object_del(md, "nonce");
    }
}


static void
pay_stripe_event_clear(pay_event_t *ev)
{
    memset(ev, 0, sizeof(pay_event_t));
    ev->amount = PAY_EVT_AMOUNT_ABSENT;
    ev->livemode = -1;
}


int
pay_stripe_parse_events(const char *body, size_t blen, pay_event_t *events,
    size_t max, size_t *nevents)
{
    int           rc;
    size_t        i;
    json_t       *root, *obj, *live;
    const char   *type, *status;
    pay_event_t   base, *ev;
    json_error_t  err;

    if (nevents != NULL) {
        *nevents = 0;
    }

    if (events == NULL || max == 0 || nevents == NULL) {
        return -1;
    }

    pay_stripe_event_clear(&base);

    root = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        pay_stripe_event_clear(&events[0]);
        return -1;
    }

    rc = -1;
    obj = json_object_get(json_object_get(root, "data"), "object");

    if (pay_copy(base.event_id, sizeof(base.event_id),
                 json_object_get(root, "id")) != 0
        || base.event_id[0] == '\0'
        || pay_copy(base.type, sizeof(base.type),
                    json_object_get(root, "type")) != 0
        || !json_is_object(obj))
    {
        goto done;
    }

    live = json_object_get(root, "livemode");
    base.livemode = json_is_boolean(live) ? json_is_true(live) : -1;

    if (strncmp(base.type, "payment_intent.", 15) == 0) {
        pay_stripe_charge_own_nonce(obj);
    }

    type = base.type;
    ev = &events[0];
    *ev = base;

    /* an event of a Stripe Connect account (a Connect endpoint's secret
     * configured beside ours): that account's own objects and money,
     * never the platform's, whatever its metadata or reference names;
     * kept, and nothing moves */
    if (json_is_string(json_object_get(root, "account"))) {
        pay_stripe_ignored(obj, ev);
        *nevents = 1;
        rc = 0;
        goto done;
    }

    if (strcmp(type, "refund.created") == 0
        || strcmp(type, "refund.updated") == 0
        || strcmp(type, "refund.failed") == 0
        || strcmp(type, "charge.refund.updated") == 0)
    {
        rc = pay_stripe_refund_event(obj, NULL, ev);
        *nevents = 1;
        goto done;
    }

    if (strcmp(type, "payment_intent.amount_capturable_updated") == 0) {
        rc = pay_stripe_authorized(obj, ev);
        *nevents = 1;

        if (rc == 0) {
            pay_stripe_saved(obj, &base, events, max, nevents);
        }

        goto done;
    }

    /* an off-session charge of ours names its checkout as "charge"; a
     * manual-capture one names it as "nonce" too, and its intent's news
     * is a manual capture's (the hold, the capture, the release) */
    if ((strcmp(type, "payment_intent.succeeded") == 0
         || strcmp(type, "payment_intent.payment_failed") == 0)
        && json_is_string(json_object_get(json_object_get(obj, "metadata"),
                                          "charge"))
        && json_object_get(json_object_get(obj, "metadata"), "nonce")
           == NULL)
    {
        rc = pay_stripe_charge_event(obj, type[15] == 's', ev);
        *nevents = 1;
        goto done;
    }

    if (strcmp(type, "payment_intent.succeeded") == 0
        || strcmp(type, "payment_intent.canceled") == 0)
    {
        rc = pay_stripe_intent_end(obj, type[15] == 's', ev);
        *nevents = 1;

        if (rc == 0 && type[15] == 's') {
            pay_stripe_saved(obj, &base, events, max, nevents);
        }

        goto done;
    }

    if (strcmp(type, "charge.refunded") == 0) {
        rc = pay_stripe_charge_refunded(obj, &base, events, max, nevents);
        goto done;
    }

    if (strcmp(type, "charge.dispute.created") == 0
        || strcmp(type, "charge.dispute.funds_withdrawn") == 0
        || strcmp(type, "charge.dispute.closed") == 0)
    {
        rc = pay_stripe_dispute(obj,
                                strcmp(type, "charge.dispute.closed") == 0,
                                ev);
        *nevents = 1;
        goto done;
    }

    if (strcmp(type, "transfer.created") == 0
        || strcmp(type, "transfer.failed") == 0
        || strcmp(type, "transfer.reversed") == 0)
    {
        rc = pay_stripe_transfer(obj, type, ev);
        *nevents = 1;
        goto done;
    }

    /* a save without a charge: the session's setup intent saved the
     * method; one without our nonce is no save of ours */
    if (strcmp(type, "setup_intent.succeeded") == 0
        && json_is_string(json_object_get(json_object_get(obj, "metadata"),
                                          "nonce")))
    {
        rc = pay_stripe_setup_saved(obj, ev);
        *nevents = 1;
        goto done;
    }

    if (strncmp(type, "checkout.session.", 17) != 0) {
        /* no session and nothing the gateway acts on: a charge's or a
         * payment intent's news, a dispute's money given back
         * (charge.dispute.funds_reinstated: its close books it), a
         * dispute's progress; recorded as ignored, it names no checkout
         * of ours */
        pay_stripe_ignored(obj, ev);
        *nevents = 1;
        rc = 0;
        goto done;
    }

    /* the session: its id is our stored token, client_reference_id our
     * nonce; both optional here, the database decides what they match */
    (void) pay_copy(ev->token, sizeof(ev->token), json_object_get(obj, "id"));
    (void) pay_copy(ev->reference, sizeof(ev->reference),
                    json_object_get(obj, "client_reference_id"));
    (void) pay_stripe_money(obj, "amount_total", ev, 0);

    status = json_string_value(json_object_get(obj, "payment_status"));

    if (strncmp(type, "checkout.session.", 17) == 0) {
        /* the payment to refund later: a string, null before payment */
        if (pay_copy_opt(ev->payment_ref, sizeof(ev->payment_ref),
                         json_object_get(obj, "payment_intent")) != 0)
        {
            ev->payment_ref[0] = '\0';
        }
    }

    if (strcmp(type, "checkout.session.completed") == 0) {
        /* "unpaid": an asynchronous method is still on its way, or a
         * manual capture's authorization (its intent's event says so);
         * "paid": the money is captured, whatever mode the session was
         * asked for */
        ev->kind = (status && strcmp(status, "paid") == 0)
                   ? PAY_EVT_SUCCEEDED : PAY_EVT_PENDING;
        ev->captured = (ev->kind == PAY_EVT_SUCCEEDED);

    } else if (strcmp(type, "checkout.session.async_payment_succeeded") == 0)
    {
        ev->kind = PAY_EVT_SUCCEEDED;
        ev->captured = 1;

    } else if (strcmp(type, "checkout.session.async_payment_failed") == 0
               || strcmp(type, "checkout.session.expired") == 0)
    {
        ev->kind = PAY_EVT_FAILED;

    } else {
        ev->kind = PAY_EVT_IGNORED;
    }

    *nevents = 1;
    rc = 0;

done:

    json_decref(root);

    if (rc != 0) {
        for (i = 0; i < max && i < PAY_STRIPE_REFUNDS_MAX; i++) {
            pay_stripe_event_clear(&events[i]);
        }

        *nevents = 0;
    }

    return rc;
}


int
pay_stripe_parse_event(const char *body, size_t blen, pay_event_t *ev)
{
    size_t  n;

    return pay_stripe_parse_events(body, blen, ev, 1, &n);
}
