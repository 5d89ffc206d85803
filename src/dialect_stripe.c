/*
 * ngx_payments core: the Stripe dialect (Checkout Sessions; webhooks
 * signed with Stripe-Signature, PSP_FACTS.md).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>
#include <payments/webhook.h>

#include "dialect_internal.h"


/* Stripe's published lists ("zero-decimal", "three-decimal"); every other
 * currency is two-decimal in Stripe's API, whatever ISO says (ISK). */
static const char  pay_stripe_zero[][4] = {
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
    "UGX", "VND", "VUV", "XAF", "XOF", "XPF"
};

static const char  pay_stripe_three[][4] = {
    "BHD", "JOD", "KWD", "OMR", "TND"
};


static int
pay_stripe_in(const char *code, const char (*list)[4], size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (memcmp(code, list[i], 4) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
pay_stripe_exponent(const pay_currency_t *iso)
{
    if (pay_stripe_in(iso->code, pay_stripe_zero,
                      sizeof(pay_stripe_zero) / sizeof(pay_stripe_zero[0])))
    {
        return 0;
    }

    if (pay_stripe_in(iso->code, pay_stripe_three,
                      sizeof(pay_stripe_three) / sizeof(pay_stripe_three[0])))
    {
        return 3;
    }

    return 2;
}


/* Stripe takes three-decimal currencies only in multiples of ten minor
 * units (PSP_FACTS.md): refused as invalid_amount before the key is
 * claimed, rather than by Stripe after. */
static int
pay_stripe_amount_ok(int64_t psp_amount, int e)
{
    return e != 3 || psp_amount % 10 == 0;
}


/* A key's prefix says which money it moves; the key is never quoted. */
static const char *
pay_stripe_credential_check(const char *key, size_t len, int live)
{
    static const char  *prefixes[][2] = {
        { "sk_live_", "sk_test_" }, { "rk_live_", "rk_test_" }
    };
    size_t              i;

    for (i = 0; i < 2; i++) {
        if (len > 8 && memcmp(key, prefixes[i][0], 8) == 0 && !live) {
            return "has a live Stripe key (sk_live_/rk_live_) in "
                   "secret_file= but mode=test: use the test key or "
                   "mode=live";
        }

        if (len > 8 && memcmp(key, prefixes[i][1], 8) == 0 && live) {
            return "has a test Stripe key (sk_test_/rk_test_) in "
                   "secret_file= but mode=live: use the live key or "
                   "mode=test";
        }
    }

    return NULL;
}


/* Stripe's metadata: at most 50 keys per object */
#define PAY_STRIPE_METADATA_MAX  50


/*
 * The merchant's metadata as metadata[KEY] fields beside the gateway's own
 * keys (mine, mine2: NULL when fewer), when it fits Stripe's 50 and takes
 * none of their names; else none of it (the gateway keeps and answers it
 * all the same).  Each key is one escaped segment (pay_form_field_key):
 * whatever it holds, it adds, repeats or replaces no other parameter.
 */
static void
pay_stripe_metadata(pay_buf_t *b, const json_t *md, const char *mine,
    const char *mine2)
{
    size_t       ours;
    json_t      *val;
    const char  *key;

    ours = (mine != NULL) + (mine2 != NULL);

    if (md == NULL || json_object_size(md) == 0
        || json_object_size(md) > PAY_STRIPE_METADATA_MAX - ours
        || (mine != NULL && json_object_get(md, mine) != NULL)
        || (mine2 != NULL && json_object_get(md, mine2) != NULL))
    {
        return;
    }

    json_object_foreach((json_t *) md, key, val) {
        pay_form_field_key(b, "metadata", key, json_string_value(val));
    }
}


/*
 * A save without a charge: a Checkout session in mode=setup (a
 * SetupIntent for card, its metadata our nonce, which its
 * setup_intent.succeeded names back with the payment_method), on the
 * Customer this customer's earlier saves made, else a new one; the
 * session's currency is the checkout's (Stripe asks for it in setup mode
 * with dynamic payment methods; harmless with card).
 */
static char *
pay_stripe_setup_body(const pay_psp_registration_t *r, const char *cur)
{
    pay_buf_t              b;
    const pay_checkout_t  *co = r->co;

    memset(&b, 0, sizeof(b));

    pay_form_field(&b, "mode", "setup");
    pay_form_field(&b, "currency", cur);
    pay_form_field(&b, "payment_method_types[0]", "card");
    pay_form_field(&b, "client_reference_id", r->nonce);
    pay_form_field(&b, "success_url", r->return_success);
    pay_form_field(&b, "cancel_url", r->return_cancel);
    pay_form_field_int(&b, "expires_at", r->expires_at);
    pay_form_field(&b, "metadata[merchant_id]", r->merchant_id);
    pay_form_field(&b, "metadata[checkout_id]", co->checkout_id);
    pay_form_field(&b, "setup_intent_data[metadata][nonce]", r->nonce);
    pay_form_field(&b, "setup_intent_data[metadata][usage]", co->save_usage);

    if (r->psp_customer != NULL) {
        pay_form_field(&b, "customer", r->psp_customer);

    } else {
        pay_form_field(&b, "customer_creation", "always");
    }

    pay_stripe_metadata(&b, co->metadata, "merchant_id", "checkout_id");

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


static char *
pay_stripe_body(const pay_psp_registration_t *r, int64_t total)
{
    char                   name[256], cur[4];
    size_t                 i;
    int64_t                unit;
    pay_buf_t              b;
    const pay_checkout_t  *co;

    (void) total;

    co = r->co;
    memset(&b, 0, sizeof(b));

    /* Stripe spells currencies in lower case. */
    for (i = 0; i < 3; i++) {
        cur[i] = (char) (co->currency[i] | 0x20);
    }
    cur[3] = '\0';

    if (co->setup) {
        return pay_stripe_setup_body(r, cur);
    }

    pay_form_field(&b, "mode", "payment");
    pay_form_field(&b, "client_reference_id", r->nonce);
    pay_form_field(&b, "success_url", r->return_success);
    pay_form_field(&b, "cancel_url", r->return_cancel);
    pay_form_field_int(&b, "expires_at", r->expires_at);
    pay_form_field(&b, "metadata[merchant_id]", r->merchant_id);
    pay_form_field(&b, "metadata[checkout_id]", co->checkout_id);

    /* authorize now, capture later: the payment intent's authorization
     * webhook (payment_intent.amount_capturable_updated) names our nonce
     * in its metadata, as a refund's does */
    if (co->manual_capture) {
        pay_form_field(&b, "payment_intent_data[capture_method]", "manual");
        pay_form_field(&b, "payment_intent_data[metadata][nonce]", r->nonce);
    }

    /* save the shopper's method for later charges: the payment intent
     * sets it up for the usage asked, on a Customer the session makes
     * (or the PSP's own customer we already know); its
     * payment_intent.succeeded names our nonce and the saved method */
    if (co->save_usage != NULL) {
        pay_form_field(&b, "payment_intent_data[setup_future_usage]",
                       co->save_usage);

        if (!co->manual_capture) {
            pay_form_field(&b, "payment_intent_data[metadata][nonce]",
                           r->nonce);
        }

        if (r->psp_customer != NULL) {
            pay_form_field(&b, "customer", r->psp_customer);

        } else {
            pay_form_field(&b, "customer_creation", "always");
        }
    }

    /* the shopper authenticating an off-session charge of their saved
     * method: the session is their Customer's, which holds the method */
    if (r->authenticate && co->save_usage == NULL
        && r->psp_customer != NULL)
    {
        pay_form_field(&b, "customer", r->psp_customer);
    }

    /* the merchant's metadata beside the gateway's two keys */
    pay_stripe_metadata(&b, co->metadata, "merchant_id", "checkout_id");

    for (i = 0; i < co->norders; i++) {
        snprintf(name, sizeof(name), "line_items[%zu][price_data][currency]",
                 i);
        pay_form_field(&b, name, cur);

        /* in Stripe's units: pay_psp_build_registration checked that
         * every order converts exactly */
        if (pay_dialect_to_psp(&pay_dialect_stripe, co->currency,
                               co->orders[i].amount, &unit) != 0)
        {
            b.failed = 1;
            break;
        }

        snprintf(name, sizeof(name),
                 "line_items[%zu][price_data][unit_amount]", i);
        pay_form_field_int(&b, name, unit);

        snprintf(name, sizeof(name),
                 "line_items[%zu][price_data][product_data][name]", i);
        pay_form_field(&b, name, co->orders[i].id);

        snprintf(name, sizeof(name), "line_items[%zu][quantity]", i);
        pay_form_field(&b, name, "1");
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


/*
 * An off-session charge: POST /v1/payment_intents confirming the saved
 * method (payment_method, on its customer) at once, without the shopper
 * (off_session=true), for the checkout's total in Stripe's units; our
 * nonce as metadata[charge], which its payment_intent.succeeded names
 * back, and the merchant's metadata beside the gateway's keys.  A manual
 * capture (capture_method=manual) names it as metadata[nonce] too.
 */
static char *
pay_stripe_charge_body(const pay_psp_registration_t *r, int64_t total)
{
    char                   cur[4];
    size_t                 i;
    int64_t                amount;
    pay_buf_t              b;
    const pay_checkout_t  *co = r->co;

    if (r->psp_customer == NULL
        || pay_dialect_to_psp(&pay_dialect_stripe, co->currency, total,
                              &amount) != 0)
    {
        return NULL;
    }

    for (i = 0; i < 3; i++) {
        cur[i] = (char) (co->currency[i] | 0x20);
    }
    cur[3] = '\0';

    memset(&b, 0, sizeof(b));

    pay_form_field_int(&b, "amount", amount);
    pay_form_field(&b, "currency", cur);
    pay_form_field(&b, "customer", r->psp_customer);
    pay_form_field(&b, "payment_method", r->charge_token);
    pay_form_field(&b, "payment_method_types[0]", "card");
    pay_form_field(&b, "off_session", "true");
    pay_form_field(&b, "confirm", "true");

    /* authorize now, capture later: the intent then waits in
     * requires_capture, and its news (amount_capturable_updated, the
     * capture's succeeded, the release's canceled) names our nonce as a
     * manual-capture session's intent does (metadata[nonce]) */
    if (co->manual_capture) {
        pay_form_field(&b, "capture_method", "manual");
    }

    pay_form_field(&b, "metadata[charge]", r->nonce);

    if (co->manual_capture) {
        pay_form_field(&b, "metadata[nonce]", r->nonce);
    }

    pay_form_field(&b, "metadata[merchant_id]", r->merchant_id);
    pay_form_field(&b, "metadata[checkout_id]", co->checkout_id);

    /* beside three keys of ours (four with a manual capture's): at most
     * 47 (46) of the merchant's, none named as a key the intent's events
     * are read by ("charge", "nonce", "capture": an intent naming another
     * checkout as "nonce" would take that checkout's capture or release) */
    if (co->metadata != NULL && json_object_get(co->metadata, "charge") == NULL
        && json_object_get(co->metadata, "nonce") == NULL
        && json_object_get(co->metadata, "capture") == NULL
        && json_object_size(co->metadata)
           <= PAY_STRIPE_METADATA_MAX - 3 - (size_t) co->manual_capture)
    {
        pay_stripe_metadata(&b, co->metadata, "merchant_id", "checkout_id");
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


/*
 * The payment intent, or Stripe's error: succeeded, processing (settles
 * later) and requires_capture are taken; requires_action is the issuer
 * asking for the shopper; requires_payment_method (and an error) a
 * decline, its decline_code (else code) the reason.  An error with code
 * authentication_required is the issuer asking for the shopper too.
 */
static void
pay_stripe_charge_answer(int status, const json_t *root,
    pay_psp_charge_result_t *res)
{
    const char    *id, *st, *code, *msg;
    const json_t  *err, *pi, *last;

    if (status >= 200 && status <= 299) {
        id = pay_json_str(root, "id");
        st = pay_json_str(root, "status");

        if (id != NULL && strlen(id) < sizeof(res->psp_ref)) {
            strcpy(res->psp_ref, id);
        }

        if (st == NULL) {
            snprintf(res->reason, sizeof(res->reason),
                     "the payment intent has no status");
            res->psp_ref[0] = '\0';
            return;
        }

        if (strcmp(st, "succeeded") == 0 || strcmp(st, "processing") == 0
            || strcmp(st, "requires_capture") == 0)
        {
            res->outcome = PAY_CHARGE_ACCEPTED;
            return;
        }

        if (strcmp(st, "requires_action") == 0
            || strcmp(st, "requires_confirmation") == 0)
        {
            res->outcome = PAY_CHARGE_AUTH_REQUIRED;
            pay_charge_code(res, "authentication_required");
            snprintf(res->reason, sizeof(res->reason),
                     "the card's issuer asks for the shopper");
            return;
        }

        last = json_object_get(root, "last_payment_error");
        code = pay_json_str(last, "decline_code");
        res->outcome = PAY_CHARGE_DECLINED;
        pay_charge_code(res, code ? code : pay_json_str(last, "code"));
        msg = pay_json_str(last, "message");
        snprintf(res->reason, sizeof(res->reason), "%s",
                 msg ? msg : "the payment was declined");
        return;
    }

    err = json_object_get(root, "error");
    pi = json_object_get(err, "payment_intent");
    id = pay_json_str(pi, "id");
    code = pay_json_str(err, "code");
    msg = pay_json_str(err, "message");

    if (id != NULL && strlen(id) < sizeof(res->psp_ref)) {
        strcpy(res->psp_ref, id);
    }

    snprintf(res->reason, sizeof(res->reason), "%s",
             msg ? msg : "the PSP refused the payment");

    if (code != NULL && strcmp(code, "authentication_required") == 0) {
        res->outcome = PAY_CHARGE_AUTH_REQUIRED;
        pay_charge_code(res, code);
        return;
    }

    res->outcome = PAY_CHARGE_DECLINED;
    pay_charge_code(res, pay_json_str(err, "decline_code")
                         ? pay_json_str(err, "decline_code") : code);
}


/* {"error":{"type","code","message"}} */
static const json_t *
pay_stripe_reason(const json_t *root)
{
    const json_t  *err;

    err = json_object_get(root, "error");

    return json_is_object(err) ? pay_json_reason(err, "message", "code")
                               : NULL;
}


/* idempotency_error: the key is held by an earlier request (400: with
 * other parameters; 409: still running), which may have moved money */
static int
pay_stripe_key_in_use(const json_t *root)
{
    const json_t  *err = json_object_get(root, "error");
    const char    *type = json_is_object(err) ? pay_json_str(err, "type")
                                              : NULL;

    return type != NULL && strcmp(type, "idempotency_error") == 0;
}


/* Stripe-Signature over the raw bytes, then the event; the signed
 * livemode must be the PSP's mode. */
static void
pay_stripe_webhook(const pay_webhook_conf_t *conf, pay_header_pt header,
    void *hdata, const char *body, size_t blen, int64_t now,
    pay_event_t *events, size_t max, size_t *nevents, pay_wh_verdict_t *v)
{
    size_t       hlen, n;
    unsigned     count;
    const char  *h;

    *nevents = 0;
    v->why = "Stripe-Signature";

    h = header(hdata, "Stripe-Signature", &hlen, &count);

    v->err = (h == NULL || count != 1 || max == 0)
             ? PAY_ERR_BAD_SIGNATURE
             : pay_stripe_verify(h, hlen, body, blen, conf->secrets,
                                 conf->nsecrets, now, conf->tolerance);

    if (v->err != PAY_ERR_NONE) {
        v->reason = v->err == PAY_ERR_STALE_WEBHOOK ? PAY_WH_STALE
                                                    : PAY_WH_BAD_SIGNATURE;
        return;
    }

    if (pay_stripe_parse_events(body, blen, events, max, &n) != 0) {
        v->err = PAY_ERR_INVALID_REQUEST;
        v->reason = PAY_WH_UNREADABLE;
        v->why = "not a readable event";
        return;
    }

    /* livemode is signed, and the same for every event of one body: a
     * test event never moves a live PSP's money */
    if (events[0].livemode != (conf->live ? 1 : 0)) {
        v->err = PAY_ERR_BAD_SIGNATURE;
        v->reason = PAY_WH_LIVEMODE;
        v->why = "livemode";
        return;
    }

    v->reason = PAY_WH_OK;
    *nevents = n;
}


/* A kept event again: its Stripe-Signature over the bytes kept, as of
 * when it came; one signed too long before is still Stripe's words. */
static pay_err_e
pay_stripe_evidence(const pay_webhook_conf_t *conf, pay_header_pt header,
    void *hdata, const char *bytes, size_t len, int64_t at)
{
    size_t       hlen;
    unsigned     count;
    pay_err_e    err;
    const char  *h;

    count = 0;
    h = header(hdata, "Stripe-Signature", &hlen, &count);

    if (h == NULL || count != 1) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    err = pay_stripe_verify(h, hlen, bytes, len, conf->secrets,
                            conf->nsecrets, at, conf->tolerance);

    return (err == PAY_ERR_NONE || err == PAY_ERR_STALE_WEBHOOK)
           ? PAY_ERR_NONE : PAY_ERR_BAD_SIGNATURE;
}


/* A kept event's bytes read again by the webhook's parser. */
static int
pay_stripe_evidence_events(const pay_webhook_conf_t *conf,
    pay_header_pt header, void *hdata, const char *bytes, size_t len,
    pay_event_t *events, size_t max, size_t *nevents)
{
    (void) conf;
    (void) header;
    (void) hdata;

    return pay_stripe_parse_events(bytes, len, events, max, nevents);
}


/* GET /v1/checkout/sessions/{id}: Stripe's ids are [A-Za-z0-9_]. */
static int
pay_stripe_lookup(const pay_psp_lookup_t *in, pay_psp_request_t *req)
{
    const char  *expand;

    /* a setup's method is its setup intent's; a payment's hold (a manual
     * capture's authorization) shows only in its payment intent; asked
     * for the method a paid session stored, the intent's payment_method
     * is expanded too (its card's brand, last4 and expiry) */
    if (in != NULL && in->method) {
        expand = in->setup ? "?expand%5B%5D=setup_intent.payment_method"
                           : "?expand%5B%5D=payment_intent.payment_method";

    } else {
        expand = in != NULL && in->setup ? "?expand%5B%5D=setup_intent"
                                         : "?expand%5B%5D=payment_intent";
    }

    return pay_lookup_get(in, 1, "/v1/checkout/sessions/", expand, req);
}


/* POST /v1/checkout/sessions/{id}/expire, an empty form: the session, now
 * "expired", or 400 when it was no longer open */
static int
pay_stripe_expire(const pay_psp_lookup_t *in, pay_psp_request_t *req)
{
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_lookup_token_ok(in->token, 1)) {
        return -1;
    }

    memset(&b, 0, sizeof(b));
    pay_buf_str(&b, "/v1/checkout/sessions/");
    pay_buf_str(&b, in->token);
    pay_buf_str(&b, "/expire");

    return pay_expire_request(&b, req, "application/x-www-form-urlencoded",
                              "");
}


/*
 * An intent's payment_method: its id, or an expanded PaymentMethod object
 * (expand[]=...payment_method) whose "id" it is; an object's card tells
 * brand, last4, exp_month and exp_year for display.  The method and
 * customer (the intent's, else the session's) into ev; nothing when the
 * token is missing or not visible ASCII.
 */
static void
pay_stripe_lookup_pm(const json_t *root, const json_t *intent,
    pay_event_t *ev)
{
    json_t      *pm;
    const char  *token, *cus;

    pm = json_object_get(intent, "payment_method");
    token = json_is_object(pm) ? pay_json_str(pm, "id")
                               : json_string_value(pm);
    cus = pay_json_str(intent, "customer");

    if (cus == NULL) {
        cus = pay_json_str(root, "customer");
    }

    if (pay_lookup_method(ev, token, cus) == 0 && json_is_object(pm)) {
        pay_lookup_display(ev, json_object_get(pm, "card"));
    }
}


/* The setup intent of a completed mode=setup session, expanded: when it
 * succeeded, its payment_method (an id, or an object with one) and
 * customer (the intent's, else the session's) into ev; else nothing. */
static void
pay_stripe_lookup_method(const json_t *root, pay_event_t *ev)
{
    json_t      *si;
    const char  *st;

    si = json_object_get(root, "setup_intent");
    st = pay_json_str(si, "status");

    if (!json_is_object(si) || st == NULL || strcmp(st, "succeeded") != 0) {
        return;
    }

    pay_stripe_lookup_pm(root, si, ev);
}


/* An expanded payment intent the checkout's session made: our nonce as its
 * metadata.nonce (payment_intent_data[metadata][nonce]). */
static int
pay_stripe_intent_ours(const pay_psp_lookup_t *in, const json_t *pi)
{
    const char  *nonce;

    nonce = pay_json_str(json_object_get(pi, "metadata"), "nonce");

    return nonce != NULL && in->nonce != NULL
           && strcmp(nonce, in->nonce) == 0;
}


/*
 * A paid session that saved the shopper's method: its payment intent
 * (expanded) set it up (setup_future_usage) under the checkout's nonce, as
 * the intent's own event names it: its payment_method (an id, or expanded
 * with its card) and customer (the intent's, else the session's) into ev;
 * else nothing.
 */
static void
pay_stripe_lookup_saved(const pay_psp_lookup_t *in, const json_t *root,
    const json_t *pi, pay_event_t *ev)
{
    if (!pay_stripe_intent_ours(in, pi)
        || pay_json_str(pi, "setup_future_usage") == NULL)
    {
        return;
    }

    pay_stripe_lookup_pm(root, pi, ev);
}


/*
 * The session's payment intent, expanded (an object) or not (its id): the
 * intent's id, or NULL.
 */
static const char *
pay_stripe_lookup_intent(const json_t *root, const json_t **pi)
{
    const json_t  *v;

    v = json_object_get(root, "payment_intent");
    *pi = json_is_object(v) ? v : NULL;

    return json_is_object(v) ? pay_json_str(v, "id") : json_string_value(v);
}


/*
 * A complete, unpaid session whose expanded payment intent is a manual
 * capture's hold: status "requires_capture", capture_method "manual", and
 * the checkout's own nonce as metadata.nonce (what
 * payment_intent.amount_capturable_updated names).  Anything else (an
 * asynchronous method "processing", an intent captured or canceled at
 * Stripe's dashboard) is not a hold this answer may book.
 */
static int
pay_stripe_lookup_hold(const pay_psp_lookup_t *in, const json_t *pi)
{
    const char  *st, *cm;

    st = pay_json_str(pi, "status");
    cm = pay_json_str(pi, "capture_method");

    return st != NULL && strcmp(st, "requires_capture") == 0
           && cm != NULL && strcmp(cm, "manual") == 0
           && pay_stripe_intent_ours(in, pi);
}


/*
 * A paid session whose intent (expanded) received less than the session's
 * amount_total: a manual capture's hold captured in part (Stripe releases
 * the rest).  An intent not expanded, or without amount_received, says
 * nothing more than the session.
 */
static int
pay_stripe_lookup_part(const json_t *root, const json_t *pi)
{
    json_t  *total, *received;

    total = json_object_get(root, "amount_total");
    received = pi != NULL ? json_object_get(pi, "amount_received") : NULL;

    return json_is_integer(total) && json_is_integer(received)
           && json_integer_value(received) < json_integer_value(total);
}


/*
 * The Checkout Session: status "complete" with payment_status "paid" or
 * "no_payment_required" pays, "expired" fails, "open" is open.  "complete"
 * still "unpaid" is a payment under way (an asynchronous method on its
 * way), unless its payment intent (expanded) is a manual capture's hold:
 * then it is a success not captured, as amount_capturable_updated says.
 * amount_total is in Stripe's units: read in its currency as ISO minor
 * units, as the webhook's.
 */
static pay_lookup_outcome_e
pay_stripe_lookup_answer(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, int64_t now, pay_event_t *ev)
{
    int                    rc, hold;
    json_t                *root, *amount;
    const char            *st, *paid, *cur, *intent;
    const json_t          *pi;
    pay_event_kind_e       kind;
    pay_lookup_outcome_e   out;

    (void) now;

    rc = pay_lookup_begin(in, status, body, len, ev, &root);
    if (rc != 0) {
        return (pay_lookup_outcome_e) rc;
    }

    st = pay_json_str(root, "status");
    paid = pay_json_str(root, "payment_status");
    intent = pay_stripe_lookup_intent(root, &pi);
    hold = 0;

    if (!pay_lookup_same(in, pay_json_str(root, "id"), 0) || st == NULL) {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    if (strcmp(st, "complete") == 0 && paid != NULL
        && strcmp(paid, "paid") == 0 && pay_stripe_lookup_part(root, pi))
    {
        /* a hold captured in part (Stripe's dashboard): the session says
         * amount_total, the money moved is less, and only the intent's
         * events book it; until then a person is told (grace=) */
        (void) pay_lookup_open(ev, "captured in part");
        json_decref(root);
        return PAY_LOOKUP_PENDING;

    } else if (strcmp(st, "complete") == 0 && paid != NULL
        && (strcmp(paid, "paid") == 0
            || strcmp(paid, "no_payment_required") == 0))
    {
        kind = PAY_EVT_SUCCEEDED;

    } else if (strcmp(st, "expired") == 0) {
        kind = PAY_EVT_FAILED;

    } else if (strcmp(st, "open") == 0) {
        out = pay_lookup_open(ev, st);
        json_decref(root);
        return out;

    } else if (strcmp(st, "complete") == 0 && paid != NULL
               && strcmp(paid, "unpaid") == 0
               && pay_stripe_lookup_hold(in, pi))
    {
        /* a manual capture's authorization: held, nothing captured */
        kind = PAY_EVT_SUCCEEDED;
        hold = 1;

    } else if (strcmp(st, "complete") == 0 && paid != NULL
               && strcmp(paid, "unpaid") == 0)
    {
        /* an asynchronous method: paid, the money on its way */
        (void) pay_lookup_open(ev, st);
        json_decref(root);
        return PAY_LOOKUP_PENDING;

    } else {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    out = pay_lookup_decide(in, ev, kind, st,
                            pay_json_str(root, "client_reference_id"));

    cur = pay_json_str(root, "currency");

    /* the payment to refund later, as checkout.session.completed's */
    if (out == PAY_LOOKUP_DECIDED) {
        pay_lookup_payment_ref(ev, intent);

        /* "paid": the money is captured, whatever mode the session was
         * asked for, as checkout.session.completed's; a hold is not */
        ev->captured = (kind == PAY_EVT_SUCCEEDED && !hold
                        && strcmp(paid, "paid") == 0);

        /* a setup's method, as setup_intent.succeeded names it: its
         * setup intent (expanded) succeeded, with a payment_method */
        if (in->setup && kind == PAY_EVT_SUCCEEDED) {
            pay_stripe_lookup_method(root, ev);

        } else if (kind == PAY_EVT_SUCCEEDED) {
            pay_stripe_lookup_saved(in, root, pi, ev);
        }
    }

    if (out == PAY_LOOKUP_DECIDED && pay_lookup_currency(ev, cur) == 0) {
        amount = json_object_get(root, "amount_total");

        if (json_is_integer(amount) && json_integer_value(amount) >= 0
            && pay_psp_amount_from_psp(PAY_DIALECT_STRIPE, ev->currency,
                                       (int64_t) json_integer_value(amount),
                                       &ev->amount)
               != 0)
        {
            ev->amount = PAY_EVT_AMOUNT_INEXACT;
        }
    }

    json_decref(root);

    return out;
}


/*
 * GET /v1/payment_intents/{id}: an off-session charge's payment intent;
 * with no id (the charge's answer was lost), the intents whose
 * metadata.charge is the nonce: GET /v1/payment_intents/search?query=
 * metadata['charge']:'<nonce>' (a nonce is [A-Za-z0-9_-:], nothing to
 * quote in the query; the whole query percent-encoded)
 */
static int
pay_stripe_payment_lookup(const pay_psp_lookup_t *in, pay_psp_request_t *req)
{
    if (pay_lookup_no_token(in)) {
        return pay_lookup_nonce_get(in, "/v1/payment_intents/search?query=",
                                    "metadata['charge']:'", "'", req);
    }

    return pay_lookup_get(in, 1, "/v1/payment_intents/", NULL, req);
}


/* The intent by its id (pay_stripe_intent_read), or with none by the
 * charge's nonce (pay_stripe_charge_found) */
static pay_lookup_outcome_e pay_stripe_intent_read(const pay_psp_lookup_t *in,
    json_t *root, pay_event_t *ev);
static pay_lookup_outcome_e pay_stripe_charge_found(
    const pay_psp_lookup_t *in, int status, const char *body, size_t len,
    pay_event_t *ev);


static pay_lookup_outcome_e
pay_stripe_payment_lookup_answer(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, int64_t now, pay_event_t *ev)
{
    int      rc;
    json_t  *root;

    (void) now;

    if (pay_lookup_no_token(in)) {
        return pay_stripe_charge_found(in, status, body, len, ev);
    }

    rc = pay_lookup_begin(in, status, body, len, ev, &root);
    if (rc != 0) {
        return (pay_lookup_outcome_e) rc;
    }

    return pay_stripe_intent_read(in, root, ev);
}


/*
 * The search by the charge's nonce: the one intent of "data" whose
 * metadata.charge is the nonce, read as the look-up of its id reads it
 * (event id "lookup:<its id>:<status>", so the look-up by id and the
 * webhook later are duplicates of it).  None
 * (never charged, or not searchable yet), two or more (never sent so:
 * someone else's), or an intent id we would not put in a path: nothing
 * decided.
 */
static pay_lookup_outcome_e
pay_stripe_charge_found(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, pay_event_t *ev)
{
    int                rc;
    size_t             i, n;
    json_t            *root, *data, *it, *found;
    const char        *charge, *id;
    pay_psp_lookup_t   one;

    rc = pay_lookup_begin_nonce(in, status, body, len, ev, &root);
    if (rc != 0) {
        return (pay_lookup_outcome_e) rc;
    }

    data = json_object_get(root, "data");

    if (!json_is_array(data)) {
        json_decref(root);
        return PAY_LOOKUP_UNKNOWN;
    }

    found = NULL;
    n = 0;

    json_array_foreach(data, i, it) {
        charge = pay_json_str(json_object_get(it, "metadata"), "charge");

        if (charge != NULL && strcmp(charge, in->nonce) == 0) {
            found = it;
            n++;
        }
    }

    id = pay_json_str(found, "id");

    if (n != 1 || !pay_lookup_token_ok(id, 1)) {
        json_decref(root);
        return PAY_LOOKUP_UNKNOWN;
    }

    one = *in;
    one.token = id;

    /* the intent read on its own, the search's answer dropped with it */
    json_incref(found);
    json_decref(root);

    return pay_stripe_intent_read(&one, found, ev);
}


/* An intent whose last attempt failed because its issuer wants the
 * shopper (last_payment_error.code authentication_required) */
static int
pay_stripe_asks_for_shopper(json_t *intent)
{
    const char  *code;

    code = pay_json_str(json_object_get(intent, "last_payment_error"),
                        "code");

    return code != NULL && strcmp(code, "authentication_required") == 0;
}


/*
 * The charge's PaymentIntent, as payment_intent.succeeded and
 * .payment_failed of it would say: "succeeded" pays (captured,
 * amount_received), "canceled" and "requires_payment_method" (the
 * off-session attempt failed: nothing taken) fail -- but one that failed
 * asking for the shopper (requires_payment_method, last_payment_error.code
 * authentication_required) moves nothing, as its payment_failed webhook:
 * pending (the shop's retry of the charge makes the page); "processing",
 * "requires_capture", "requires_action" and "requires_confirmation" are a
 * payment under way, asked about later and never failed by a clock,
 * but "requires_capture" of a manual-capture charge (metadata.nonce set)
 * is its hold: a success not captured, of "amount".
 * reference: metadata.charge, the nonce the charge set.
 * root taken.
 */
static pay_lookup_outcome_e
pay_stripe_intent_read(const pay_psp_lookup_t *in, json_t *root,
    pay_event_t *ev)
{
    int                    hold;
    json_t                *amount;
    const char            *st;
    pay_event_kind_e       kind;
    pay_lookup_outcome_e   out;

    st = pay_json_str(root, "status");

    if (!pay_lookup_same(in, pay_json_str(root, "id"), 0) || st == NULL) {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    hold = 0;

    if (strcmp(st, "succeeded") == 0) {
        kind = PAY_EVT_SUCCEEDED;

    } else if (strcmp(st, "requires_capture") == 0
               && json_is_string(json_object_get(json_object_get(root,
                                                                 "metadata"),
                                                 "nonce")))
    {
        /* a manual-capture charge's hold (metadata.nonce: the charge asked
         * for it): a success not captured, as amount_capturable_updated
         * says, for the whole amount */
        kind = PAY_EVT_SUCCEEDED;
        hold = 1;

    } else if (strcmp(st, "canceled") == 0
               || (strcmp(st, "requires_payment_method") == 0
                   && !pay_stripe_asks_for_shopper(root)))
    {
        kind = PAY_EVT_FAILED;

    } else if (strcmp(st, "requires_payment_method") == 0) {
        /* asking for the shopper: nothing taken, no page made yet */
        (void) pay_lookup_open(ev, st);
        pay_lookup_shopper(ev, in->token);
        json_decref(root);
        return PAY_LOOKUP_PENDING;

    } else if (strcmp(st, "processing") == 0
               || strcmp(st, "requires_capture") == 0
               || strcmp(st, "requires_action") == 0
               || strcmp(st, "requires_confirmation") == 0)
    {
        (void) pay_lookup_open(ev, st);
        json_decref(root);
        return PAY_LOOKUP_PENDING;

    } else {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    out = pay_lookup_decide(in, ev, kind, st,
                            pay_json_str(json_object_get(root, "metadata"),
                                         "charge"));

    if (out == PAY_LOOKUP_DECIDED) {
        pay_lookup_payment_ref(ev, in->token);
        ev->captured = (kind == PAY_EVT_SUCCEEDED && !hold);
    }

    if (out == PAY_LOOKUP_DECIDED
        && pay_lookup_currency(ev, pay_json_str(root, "currency")) == 0)
    {
        amount = json_object_get(root, kind == PAY_EVT_SUCCEEDED && !hold
                                       ? "amount_received" : "amount");

        if (json_is_integer(amount) && json_integer_value(amount) >= 0
            && pay_psp_amount_from_psp(PAY_DIALECT_STRIPE, ev->currency,
                                       (int64_t) json_integer_value(amount),
                                       &ev->amount)
               != 0)
        {
            ev->amount = PAY_EVT_AMOUNT_INEXACT;
        }
    }

    json_decref(root);

    return out;
}


/* Stripe's currencies are lower case. */
static void
pay_stripe_lower(const char *cur, char out[4])
{
    size_t  i;

    for (i = 0; i < 3; i++) {
        out[i] = (char) (cur[i] | 0x20);
    }

    out[3] = '\0';
}


/*
 * POST /v1/refunds: payment_intent, amount (Stripe's units),
 * metadata[nonce]; Stripe's own reasons as reason=, any other text as
 * metadata[reason]; the merchant's metadata beside them.
 */
static int
pay_stripe_refund(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    int64_t      unit;
    pay_buf_t    b;
    const char  *reason_key;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_id_ok(in->payment_ref, 127, 0)
        || pay_op_amount(&pay_dialect_stripe, in->currency, in->amount,
                         &unit) != 0
        || !pay_op_reason_ok(in->reason))
    {
        return -1;
    }

    memset(&b, 0, sizeof(b));

    pay_form_field(&b, "payment_intent", in->payment_ref);
    pay_form_field_int(&b, "amount", unit);
    pay_form_field(&b, "metadata[nonce]", in->nonce);
    reason_key = NULL;

    if (in->reason != NULL && in->reason[0] != '\0') {
        if (strcmp(in->reason, "duplicate") == 0
            || strcmp(in->reason, "fraudulent") == 0
            || strcmp(in->reason, "requested_by_customer") == 0)
        {
            pay_form_field(&b, "reason", in->reason);

        } else {
            pay_form_field(&b, "metadata[reason]", in->reason);
            reason_key = "reason";
        }
    }

    pay_stripe_metadata(&b, in->metadata, "nonce", reason_key);

    if (b.failed) {
        free(b.data);
        return -1;
    }

    return pay_op_request(req, "/v1/refunds",
                          "application/x-www-form-urlencoded", b.data);
}


/*
 * POST /v1/payment_intents/{pi}/capture: amount_to_capture (Stripe's
 * units) and our nonce as metadata[capture], which the intent's
 * payment_intent.succeeded carries back.  Stripe captures an intent once:
 * the rest is released.
 */
static int
pay_stripe_capture(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    char       path[192];
    int64_t    unit;
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_id_ok(in->payment_ref, 127, 0)
        || pay_op_amount(&pay_dialect_stripe, in->currency, in->amount,
                         &unit) != 0)
    {
        return -1;
    }

    memset(&b, 0, sizeof(b));

    pay_form_field_int(&b, "amount_to_capture", unit);
    pay_form_field(&b, "metadata[capture]", in->nonce);

    if (b.failed) {
        free(b.data);
        return -1;
    }

    snprintf(path, sizeof(path), "/v1/payment_intents/%s/capture",
             in->payment_ref);

    return pay_op_request(req, path, "application/x-www-form-urlencoded",
                          b.data);
}


/* POST /v1/payment_intents/{pi}/cancel: the authorization released
 * (payment_intent.canceled names the checkout's nonce) */
static int
pay_stripe_cancel(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    char       path[192];
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_id_ok(in->payment_ref, 127, 0))
    {
        return -1;
    }

    memset(&b, 0, sizeof(b));

    pay_form_field(&b, "cancellation_reason", "requested_by_customer");

    if (b.failed) {
        free(b.data);
        return -1;
    }

    snprintf(path, sizeof(path), "/v1/payment_intents/%s/cancel",
             in->payment_ref);

    return pay_op_request(req, path, "application/x-www-form-urlencoded",
                          b.data);
}


/* POST /v1/transfers to a connected account acct_…, grouped under the
 * nonce; the merchant's metadata beside metadata[nonce]. */
static int
pay_stripe_payout(const pay_psp_payout_t *in, pay_psp_request_t *req)
{
    char       cur[4];
    int64_t    unit;
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || in->destination == NULL
        || strncmp(in->destination, "acct_", 5) != 0
        || !pay_op_id_ok(in->destination + 5, 122, 1)
        || pay_op_amount(&pay_dialect_stripe, in->currency, in->amount,
                         &unit) != 0)
    {
        return -1;
    }

    pay_stripe_lower(in->currency, cur);
    memset(&b, 0, sizeof(b));

    pay_form_field_int(&b, "amount", unit);
    pay_form_field(&b, "currency", cur);
    pay_form_field(&b, "destination", in->destination);
    pay_form_field(&b, "metadata[nonce]", in->nonce);
    pay_form_field(&b, "transfer_group", in->nonce);
    pay_stripe_metadata(&b, in->metadata, "nonce", NULL);

    if (b.failed) {
        free(b.data);
        return -1;
    }

    return pay_op_request(req, "/v1/transfers",
                          "application/x-www-form-urlencoded", b.data);
}


/* A refund (re_…) or transfer (tr_…) object; an error as registration's. */
static void
pay_stripe_op_answer(int status, const char *body, size_t len,
    pay_psp_op_result_t *res)
{
    pay_psp_parse_op_redact(&pay_dialect_stripe, status, body, len, NULL, 0,
                            res);
}


const pay_dialect_t  pay_dialect_stripe = {
    .name = "stripe",
    .id = PAY_DIALECT_STRIPE,
    .params = PAY_PSP_P_WEBHOOK_SECRET | PAY_PSP_P_VERSION
              | PAY_PSP_P_TOLERANCE,
    .required = PAY_PSP_P_WEBHOOK_SECRET,
    .auth_header = "Authorization: Bearer %s",
    .credential_check = pay_stripe_credential_check,
    .secret_decode = NULL,
    .exponent = pay_stripe_exponent,
    .amount_ok = pay_stripe_amount_ok,
    .registration_path = "/v1/checkout/sessions",
    .registration_type = "application/x-www-form-urlencoded",
    .registration_body = pay_stripe_body,
    .token_field = "id",
    .expires_field = "expires_at",
    .refusal_reason = pay_stripe_reason,
    .key_in_use = pay_stripe_key_in_use,
    .webhook = pay_stripe_webhook,
    .evidence_verify = pay_stripe_evidence,
    .evidence_events = pay_stripe_evidence_events,
    .webhook_answer = "{\"received\":true}",
    .webhook_answer_type = "application/json",
    .session_lookup = pay_stripe_lookup,
    .method_lookup = 1,
    .session_lookup_answer = pay_stripe_lookup_answer,
    .payment_lookup = pay_stripe_payment_lookup,
    .payment_lookup_answer = pay_stripe_payment_lookup_answer,
    .refund = pay_stripe_refund,
    .payout = pay_stripe_payout,
    .op_answer = pay_stripe_op_answer,
    .op_ref_fields = { "id", NULL, NULL },
    /* Stripe keeps a key for at least 24 hours */
    .key_window = 86400,
    /* expires_at: 30 min to 24 h ahead */
    .session_min = 1800,
    .session_max = 86400,
    .session_expirable = 1,
    .session_expire = pay_stripe_expire,
    /* Stripe saves no idempotent result for a request that failed
     * validation or was rate limited: it never ran; a 5xx may have */
    .no_session = PAY_NOSESSION_REFUSED | PAY_NOSESSION_THROTTLED,
    .capture = pay_stripe_capture,
    .cancel = pay_stripe_cancel,
    .capture_once = 1,
    /* Stripe: 7 days for most card payments */
    .auth_window = 7 * 86400,
    .charge_path = "/v1/payment_intents",
    .charge_body = pay_stripe_charge_body,
    .charge_answer = pay_stripe_charge_answer,
};
