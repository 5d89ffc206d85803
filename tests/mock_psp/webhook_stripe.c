/*
 * Mock PSP: webhooks in Stripe's dialect.  Events are Stripe's event
 * objects with the checkout.session as data.object, signed with
 * Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "t.body")>,
 * the key being the literal bytes of the whsec_... string.
 *
 * What the fault rules ask for is turned into a chain of events here;
 * webhook.c delivers it.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mock_psp.h"


/* Stripe's default tolerance is 300 s; this is well past it. */
#define MOCK_STRIPE_STALE_S  400


static int mock_stripe_sign(const mock_wh_event_t *ev, char *line,
    size_t size);
static char *mock_stripe_body(const mock_wh_event_t *ev,
    const json_t *session);
static mock_wh_event_t *mock_stripe_event(const char *type,
    const json_t *session, const mock_webhook_fault_t *wf);


static const mock_wh_dialect_t  mock_stripe_dialect = {
    "stripe",
    &mock_conf.webhook_url,
    mock_stripe_sign
};


static int
mock_stripe_sign(const mock_wh_event_t *ev, char *line, size_t size)
{
    int             n;
    char           *payload, t[32];
    size_t          tlen, blen, i;
    unsigned        maclen;
    const char     *secret;
    char            wrong[512];
    unsigned char   mac[EVP_MAX_MD_SIZE];
    char            hex[2 * EVP_MAX_MD_SIZE + 1];

    static const char  digits[] = "0123456789abcdef";

    n = snprintf(t, sizeof(t), "%lld",
                 (long long) time(NULL)
                 - (ev->fault.stale ? MOCK_STRIPE_STALE_S : 0));
    tlen = (size_t) n;

    secret = mock_conf.stripe_webhook_secret;
    if (ev->fault.bad_signature) {
        /* a secret that is never the right one: the right one, changed */
        snprintf(wrong, sizeof(wrong), "%s_not", secret);
        secret = wrong;
    }

    blen = strlen(ev->body);

    payload = malloc(tlen + 1 + blen);
    if (payload == NULL) {
        return -1;
    }

    memcpy(payload, t, tlen);
    payload[tlen] = '.';
    memcpy(payload + tlen + 1, ev->body, blen);

    maclen = 0;
    if (HMAC(EVP_sha256(), secret, (int) strlen(secret),
             (const unsigned char *) payload, tlen + 1 + blen, mac, &maclen)
        == NULL)
    {
        free(payload);
        return -1;
    }

    free(payload);

    for (i = 0; i < maclen; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0x0f];
    }
    hex[2 * maclen] = '\0';

    n = snprintf(line, size, "Stripe-Signature: t=%s,v1=%s", t, hex);

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


/* The event object, as Stripe sends it; NULL if out of memory. */
static char *
mock_stripe_body(const mock_wh_event_t *ev, const json_t *session)
{
    char    *body;
    json_t  *obj, *event;

    obj = json_deep_copy(session);
    if (obj == NULL) {
        return NULL;
    }

    if (ev->fault.has_amount) {
        /* only the report lies: the stored session keeps its amount */
        json_object_set_new(obj, "amount_total",
                            json_integer(ev->fault.amount));
    }

    event = json_pack("{ss ss ss sI sb s{so}}",
                      "id", ev->id,
                      "object", "event",
                      "type", ev->type,
                      "created", (json_int_t) time(NULL),
                      "livemode", 0,
                      "data", "object", obj);
    if (event == NULL) {
        return NULL;
    }

    body = json_dumps(event, JSON_COMPACT);
    json_decref(event);

    return body;
}


/* session NULL: the body is made when the event's turn comes. */
static mock_wh_event_t *
mock_stripe_event(const char *type, const json_t *session,
    const mock_webhook_fault_t *wf)
{
    const char       *sid;
    mock_wh_event_t  *ev;
    char              id[64];

    memcpy(id, "evt_", 4);
    if (mock_random_alnum(id + 4, 24) != 0) {
        return NULL;
    }

    sid = json_string_value(json_object_get(session, "id"));

    ev = mock_wh_event_new(&mock_stripe_dialect, id, type, sid ? sid : "",
                           wf);
    if (ev == NULL) {
        return NULL;
    }

    ev->body = mock_stripe_body(ev, session);
    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return NULL;
    }

    return ev;
}


/*
 * A manual-capture session's payment intent as Stripe's event shows it:
 * {id, object, amount, amount_capturable, amount_received, capture_method,
 * currency, metadata, status}, from the session as the mock keeps it
 * (amount_capturable, amount_captured, payment_intent_metadata, and
 * "status" of the intent in pi_status when it is no longer
 * requires_capture).  NULL if out of memory.
 */
json_t *
mock_stripe_pi_object(const json_t *session)
{
    json_t      *md, *o;
    const char  *st;

    md = json_object_get(session, "payment_intent_metadata");
    st = json_string_value(json_object_get(session, "pi_status"));

    o = json_pack("{sO ss sO sO* sO* ss sO ss sb}",
                  "id", json_object_get(session, "payment_ref"),
                  "object", "payment_intent",
                  "amount", json_object_get(session, "amount_total"),
                  "amount_capturable",
                  json_object_get(session, "amount_capturable"),
                  "amount_received",
                  json_object_get(session, "amount_captured"),
                  "capture_method", "manual",
                  "currency", json_object_get(session, "currency"),
                  "status", st != NULL ? st : "requires_capture",
                  "livemode", 0);

    if (o != NULL
        && json_object_set_new(o, "metadata",
                               md != NULL ? json_deep_copy(md)
                                          : json_object()) != 0)
    {
        json_decref(o);
        return NULL;
    }

    return o;
}


static mock_wh_event_t *
mock_stripe_pi_event(const char *type, const json_t *session,
    const mock_webhook_fault_t *wf)
{
    char              id[64];
    json_t           *event, *obj;
    const char       *sid;
    mock_wh_event_t  *ev;

    memcpy(id, "evt_", 4);
    if (mock_random_alnum(id + 4, 24) != 0) {
        return NULL;
    }

    sid = json_string_value(json_object_get(session, "id"));

    ev = mock_wh_event_new(&mock_stripe_dialect, id, type, sid ? sid : "",
                           wf);
    if (ev == NULL) {
        return NULL;
    }

    obj = mock_stripe_pi_object(session);
    event = obj == NULL ? NULL
            : json_pack("{ss ss ss sI sb s{so}}", "id", id, "object", "event",
                        "type", type, "created", (json_int_t) time(NULL),
                        "livemode", 0, "data", "object", obj);
    ev->body = event != NULL ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);

    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return NULL;
    }

    return ev;
}


/*
 * The shopper paid.  The chain, in delivery order (each event starts when
 * every copy of the one before is delivered or given up):
 *   checkout.session.completed (payment_status paid, or unpaid with
 *     async_payment);
 *   async_payment: after async_delay_ms more, the session turns paid and
 *     checkout.session.async_payment_succeeded follows;
 *   a manual-capture session: payment_intent.amount_capturable_updated
 *     (the intent requires_capture) instead.
 * webhook_delay_ms comes before the first of them.  webhook_out_of_order
 * sends the second first, as Stripe may (a chain of one, a card paid at
 * once, has no order to break: Stripe never expires a completed session).
 */
void
mock_stripe_webhook_completed(const json_t *session,
    const mock_webhook_fault_t *wf)
{
    mock_wh_event_t  *chain, **tail, *ev;

    chain = NULL;
    tail = &chain;

    ev = mock_stripe_event("checkout.session.completed", session, wf);
    if (ev == NULL) {
        goto failed;
    }

    *tail = ev;
    tail = &ev->next;

    if (mock_session_manual(session)) {
        /* the hold: the payment intent now requires capture */
        ev = mock_stripe_pi_event("payment_intent.amount_capturable_updated",
                                  session, wf);
        if (ev == NULL) {
            goto failed;
        }

        *tail = ev;
        tail = &ev->next;

    } else if (wf->async_payment) {
        ev = mock_stripe_event("checkout.session.async_payment_succeeded",
                               session, wf);
        if (ev == NULL) {
            goto failed;
        }

        /* the body is the session as it will be then */
        free(ev->body);
        ev->body = NULL;
        ev->prepare = mock_wh_prepare_settled;
        ev->rebuild = mock_stripe_body;
        ev->delay_ms = wf->async_delay_ms;

        *tail = ev;
    }

    if (wf->out_of_order && chain->next != NULL) {
        /* Stripe does not promise its events' order: the later event
         * first (async_payment_succeeded, the session paid by then, or
         * amount_capturable_updated), then checkout.session.completed */
        ev = chain->next;
        chain->next = NULL;
        ev->next = chain;
        ev->delay_ms += wf->delay_ms;
        chain->delay_ms = 0;
        chain = ev;

    } else {
        chain->delay_ms = wf->delay_ms;
    }

    (void) mock_wh_send(chain);
    return;

failed:

    mock_log("webhooks for %s: out of memory",
             json_string_value(json_object_get(session, "id")));
    mock_wh_chain_free(chain);
}


/* The shopper declined: the session expired. */
void
mock_stripe_webhook_expired(const json_t *session,
    const mock_webhook_fault_t *wf)
{
    mock_wh_event_t  *ev;

    ev = mock_stripe_event("checkout.session.expired", session, wf);
    if (ev == NULL) {
        mock_log("webhooks for %s: out of memory",
                 json_string_value(json_object_get(session, "id")));
        return;
    }

    ev->delay_ms = wf->delay_ms;

    (void) mock_wh_send(ev);
}


/*
 * After "paid": one event of type about obj (a refund, a dispute, a
 * transfer; taken), delay_ms after now (plus the rule's webhook_delay_ms),
 * with the rule's duplicates.  subject names it in /_control/webhooks.
 */
void
mock_stripe_webhook_object(const char *type, json_t *obj, const char *subject,
    const mock_webhook_fault_t *wf, long delay_ms)
{
    json_t           *event;
    mock_wh_event_t  *ev;
    char              id[64];

    memcpy(id, "evt_", 4);

    if (obj == NULL || mock_random_alnum(id + 4, 24) != 0
        || mock_conf.webhook_url == NULL)
    {
        if (mock_conf.webhook_url == NULL) {
            mock_log("event %s for %s (no webhook URL: not sent)", type,
                     subject);
        }
        json_decref(obj);
        return;
    }

    ev = mock_wh_event_new(&mock_stripe_dialect, id, type, subject, wf);
    if (ev == NULL) {
        json_decref(obj);
        return;
    }

    event = json_pack("{ss ss ss sI sb s{so}}",
                      "id", id, "object", "event", "type", type,
                      "created", (json_int_t) time(NULL), "livemode", 0,
                      "data", "object", obj);
    ev->body = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);

    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return;
    }

    ev->delay_ms = delay_ms + wf->delay_ms;
    (void) mock_wh_send(ev);
}
