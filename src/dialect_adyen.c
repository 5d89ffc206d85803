/*
 * ngx_payments core: the Adyen dialect (Checkout API v71 sessions;
 * notifications with a per-item HMAC, PSP_FACTS.md).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>
#include <payments/time.h>
#include <payments/view.h>
#include <payments/webhook.h>

#include "dialect_internal.h"


/* Adyen's currency-codes page: where its decimals differ from ISO's. */
static const pay_currency_t  pay_adyen_exp[] = {
    { "CLP", 2 }, { "CVE", 0 }, { "IDR", 0 }, { "ISK", 2 }
};


static int
pay_adyen_exponent(const pay_currency_t *iso)
{
    size_t  i;

    for (i = 0; i < sizeof(pay_adyen_exp) / sizeof(pay_adyen_exp[0]); i++) {
        if (memcmp(iso->code, pay_adyen_exp[i].code, 4) == 0) {
            return pay_adyen_exp[i].exponent;
        }
    }

    return iso->exponent;
}


/* An Adyen id that may go into a URL path: [A-Za-z0-9]{1,64}. */
static int
pay_adyen_ref_ok(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= 64
            || !((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
                 || (s[i] >= '0' && s[i] <= '9')))
        {
            return 0;
        }
    }

    return i > 0;
}


/* The HMAC key as Adyen shows it: 64 hex digits. */
static int
pay_adyen_secret_decode(const unsigned char *in, size_t len,
    unsigned char *out, size_t *out_len, const char **why)
{
    if (pay_adyen_key_decode((const char *) in, len, out) != 0) {
        *why = "with dialect=adyen a webhook_secret_file= holds the HMAC "
               "key as Adyen shows it: 64 hex digits";
        return -1;
    }

    *out_len = PAY_ADYEN_KEY_LEN;

    return 0;
}


/*
 * Adyen's session metadata: at most 20 entries, keys of 20 characters,
 * values of 80 (CheckoutService v71).  The merchant's metadata goes as it
 * is when it fits, else none of it: Adyen would refuse the session.
 */
#define PAY_ADYEN_METADATA_MAX    20
#define PAY_ADYEN_METADATA_KEY    20
#define PAY_ADYEN_METADATA_VALUE  80

static size_t
pay_adyen_chars(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        n += (((unsigned char) *s) & 0xc0) != 0x80;
    }

    return n;
}


static int
pay_adyen_metadata_fits(const json_t *md)
{
    json_t      *val;
    const char  *key;

    if (md == NULL || json_object_size(md) == 0
        || json_object_size(md) > PAY_ADYEN_METADATA_MAX)
    {
        return 0;
    }

    json_object_foreach((json_t *) md, key, val) {
        if (pay_adyen_chars(key) > PAY_ADYEN_METADATA_KEY
            || !json_is_string(val)
            || pay_adyen_chars(json_string_value(val))
               > PAY_ADYEN_METADATA_VALUE)
        {
            return 0;
        }
    }

    return 1;
}


static char *
pay_adyen_body(const pay_psp_registration_t *r, int64_t total)
{
    char                   when[21];
    size_t                 i;
    int                    failed;
    int64_t                value;
    json_t                *root, *amount, *items, *item;
    const pay_checkout_t  *co;

    co = r->co;

    /* Adyen's units (CLP, CVE, IDR, ISK differ from ISO): the total and
     * each order convert exactly, pay_psp_build_registration checked */
    if (pay_time_format(r->expires_at, when) != 0
        || pay_dialect_to_psp(&pay_dialect_adyen, co->currency, total,
                              &total) != 0)
    {
        return NULL;
    }

    root = json_object();
    if (root == NULL) {
        return NULL;
    }

    failed = 0;

    amount = json_object();
    if (amount != NULL) {
        pay_json_set(amount, "value", json_integer(total), &failed);
        pay_json_set(amount, "currency", json_string(co->currency), &failed);
    }

    items = json_array();
    if (items != NULL) {
        for (i = 0; i < co->norders; i++) {
            item = json_object();
            if (item == NULL || json_array_append_new(items, item) != 0) {
                failed = 1;
                break;
            }

            pay_json_set(item, "id", json_string(co->orders[i].id), &failed);
            pay_json_set(item, "description", json_string(co->orders[i].id),
                         &failed);
            if (pay_dialect_to_psp(&pay_dialect_adyen, co->currency,
                                   co->orders[i].amount, &value) != 0)
            {
                failed = 1;
                break;
            }

            pay_json_set(item, "amountIncludingTax", json_integer(value),
                         &failed);
            pay_json_set(item, "quantity", json_integer(1), &failed);
        }
    }

    pay_json_set(root, "merchantAccount",
                 json_string(r->adyen_merchant_account), &failed);
    pay_json_set(root, "amount", amount, &failed);
    pay_json_set(root, "reference", json_string(r->nonce), &failed);
    pay_json_set(root, "returnUrl", json_string(r->return_success), &failed);
    pay_json_set(root, "expiresAt", json_string(when), &failed);
    pay_json_set(root, "mode", json_string("hosted"), &failed);

    /* a save without a charge: a zero-amount session, no line items */
    if (co->norders > 0) {
        pay_json_set(root, "lineItems", items, &failed);

    } else {
        json_decref(items);
    }

    /* authorize now, capture later (Adyen's AUTHORISATION is then the
     * hold, its CAPTURE the capture) */
    if (co->manual_capture) {
        pay_json_set(root, "additionalData",
                     json_pack("{s:s}", "manualCapture", "true"), &failed);
    }

    /* save the shopper's method for later charges, for the shopper
     * known by our reference (never the shop's id): its
     * RECURRING_CONTRACT names the stored method */
    if (co->save_usage != NULL) {
        pay_json_set(root, "storePaymentMethodMode", json_string("enabled"),
                     &failed);
        pay_json_set(root, "shopperReference", json_string(r->customer_ref),
                     &failed);
        pay_json_set(root, "recurringProcessingModel",
                     json_string(co->save_recurring), &failed);
        pay_json_set(root, "shopperInteraction", json_string("Ecommerce"),
                     &failed);
    }

    /* the shopper authenticating an off-session charge of their stored
     * method: the session for the shopper it was stored under, which
     * offers it */
    if (r->authenticate && co->save_usage == NULL
        && r->customer_ref != NULL)
    {
        pay_json_set(root, "shopperReference", json_string(r->customer_ref),
                     &failed);
        pay_json_set(root, "shopperInteraction", json_string("Ecommerce"),
                     &failed);
    }

    if (pay_adyen_metadata_fits(co->metadata)) {
        pay_json_set(root, "metadata", json_deep_copy(co->metadata), &failed);
    }

    return pay_json_dump(root, failed);
}


/*
 * An off-session charge: POST /v71/payments with the stored method
 * (paymentMethod.storedPaymentMethodId), the shopper's reference it was
 * stored under, shopperInteraction ContAuth (the shopper is absent) and
 * the recurringProcessingModel it was stored for; the total in Adyen's
 * units, our nonce as reference, the gateway's return link (required by
 * Adyen, used only should it send the shopper anywhere); a manual capture
 * as additionalData.manualCapture, as a session's.
 */
static char *
pay_adyen_charge_body(const pay_psp_registration_t *r, int64_t total)
{
    int                    failed;
    json_t                *root;
    const pay_checkout_t  *co = r->co;

    if (r->customer_ref == NULL
        || pay_dialect_to_psp(&pay_dialect_adyen, co->currency, total,
                              &total) != 0)
    {
        return NULL;
    }

    root = json_object();
    if (root == NULL) {
        return NULL;
    }

    failed = 0;

    pay_json_set(root, "merchantAccount",
                 json_string(r->adyen_merchant_account), &failed);
    pay_json_set(root, "amount", json_pack("{s:I, s:s}", "value",
                                           (json_int_t) total, "currency",
                                           co->currency), &failed);
    pay_json_set(root, "reference", json_string(r->nonce), &failed);
    pay_json_set(root, "paymentMethod",
                 json_pack("{s:s, s:s}", "type", "scheme",
                           "storedPaymentMethodId", r->charge_token),
                 &failed);
    pay_json_set(root, "shopperReference", json_string(r->customer_ref),
                 &failed);
    pay_json_set(root, "shopperInteraction", json_string("ContAuth"),
                 &failed);
    pay_json_set(root, "recurringProcessingModel",
                 json_string(r->recurring), &failed);
    pay_json_set(root, "returnUrl", json_string(r->return_success), &failed);

    /* authorize now, capture later, as a manual-capture session asks:
     * its AUTHORISATION is then the hold, its CAPTURE the capture */
    if (co->manual_capture) {
        pay_json_set(root, "additionalData",
                     json_pack("{s:s}", "manualCapture", "true"), &failed);
    }

    if (pay_adyen_metadata_fits(co->metadata)) {
        pay_json_set(root, "metadata", json_deep_copy(co->metadata), &failed);
    }

    return pay_json_dump(root, failed);
}


/*
 * The payment's resultCode: Authorised, Pending, Received (and Success)
 * are taken; an action for the shopper (RedirectShopper, IdentifyShopper,
 * ChallengeShopper, PresentToShopper) is authentication required; Refused,
 * Cancelled and Error decline, refusalReason the reason.  A 4xx
 * {"status","errorCode","message"} is a refusal of the request.
 */
static void
pay_adyen_charge_answer(int status, const json_t *root,
    pay_psp_charge_result_t *res)
{
    const char  *rc, *ref, *why;

    if (status < 200 || status > 299) {
        why = pay_json_str(root, "message");
        res->outcome = PAY_CHARGE_DECLINED;
        pay_charge_code(res, "refused");
        snprintf(res->reason, sizeof(res->reason), "%s",
                 why ? why : "Adyen refused the payment");
        return;
    }

    rc = pay_json_str(root, "resultCode");
    ref = pay_json_str(root, "pspReference");

    if (ref != NULL && strlen(ref) < sizeof(res->psp_ref)) {
        strcpy(res->psp_ref, ref);
    }

    if (rc == NULL) {
        snprintf(res->reason, sizeof(res->reason), "no resultCode");
        res->psp_ref[0] = '\0';
        return;
    }

    if (strcmp(rc, "Authorised") == 0 || strcmp(rc, "Pending") == 0
        || strcmp(rc, "Received") == 0 || strcmp(rc, "Success") == 0)
    {
        res->outcome = PAY_CHARGE_ACCEPTED;
        return;
    }

    if (strcmp(rc, "RedirectShopper") == 0
        || strcmp(rc, "IdentifyShopper") == 0
        || strcmp(rc, "ChallengeShopper") == 0
        || strcmp(rc, "PresentToShopper") == 0)
    {
        res->outcome = PAY_CHARGE_AUTH_REQUIRED;
        pay_charge_code(res, "authentication_required");
        snprintf(res->reason, sizeof(res->reason),
                 "the card's issuer asks for the shopper (%s)", rc);
        return;
    }

    if (strcmp(rc, "Refused") == 0 || strcmp(rc, "Cancelled") == 0
        || strcmp(rc, "Error") == 0)
    {
        why = pay_json_str(root, "refusalReason");
        res->outcome = PAY_CHARGE_DECLINED;
        pay_charge_code(res, why ? why : rc);
        snprintf(res->reason, sizeof(res->reason), "%s", why ? why : rc);
        return;
    }

    /* a resultCode we do not know: ask again under the same key */
    snprintf(res->reason, sizeof(res->reason), "resultCode %s", rc);
    res->psp_ref[0] = '\0';
}


/* {"status","errorCode","message","errorType","pspReference"} */
static const json_t *
pay_adyen_reason(const json_t *root)
{
    return pay_json_reason(root, "message", "errorCode");
}


/* errorCode 704, "request already processed or in progress": Adyen's
 * answer to a request whose Idempotency-Key another request holds. */
static int
pay_adyen_key_in_use(const json_t *root)
{
    const char  *code = pay_json_str(root, "errorCode");

    return code != NULL && strcmp(code, "704") == 0;
}


/* Does the body carry standard notifications?  Only to route: each way
 * verifies everything it reads. */
static int
pay_adyen_has_items(const char *body, size_t blen)
{
    int      has;
    json_t  *root;

    root = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
    has = json_is_object(root)
          && json_object_get(root, "notificationItems") != NULL;
    json_decref(root);

    return has;
}


/*
 * A balance-platform transfer webhook: HmacSignature over the raw body,
 * verified before the body is read; its signed environment must be the
 * PSP's mode.
 */
static void
pay_adyen_transfer_webhook(const pay_webhook_conf_t *conf, const char *sig,
    size_t siglen, unsigned count, const char *body, size_t blen,
    pay_event_t *events, size_t max, size_t *nevents, pay_wh_verdict_t *v)
{
    v->why = "HmacSignature";

    v->err = (count != 1 || max == 0)
             ? PAY_ERR_BAD_SIGNATURE
             : pay_adyen_transfer_verify(sig, siglen, body, blen,
                                         conf->secrets, conf->nsecrets);

    if (v->err != PAY_ERR_NONE) {
        v->reason = PAY_WH_BAD_SIGNATURE;
        return;
    }

    if (pay_adyen_parse_transfer(body, blen, &events[0]) != 0) {
        v->err = PAY_ERR_INVALID_REQUEST;
        v->reason = PAY_WH_UNREADABLE;
        v->why = "not a readable transfer event";
        return;
    }

    if (events[0].livemode != (conf->live ? 1 : 0)) {
        v->err = PAY_ERR_BAD_SIGNATURE;
        v->reason = PAY_WH_LIVEMODE;
        v->why = "environment";
        return;
    }

    v->reason = PAY_WH_OK;
    v->why = NULL;
    *nevents = 1;
}


/*
 * A kept event again: a transfer's HmacSignature over the bytes kept, or
 * the kept notification item's own hmacSignature (a whole notification,
 * as kept before items were kept alone: every item's).
 */
static pay_err_e
pay_adyen_evidence(const pay_webhook_conf_t *conf, pay_header_pt header,
    void *hdata, const char *bytes, size_t len, int64_t at)
{
    size_t       siglen;
    unsigned     count;
    const char  *sig;

    (void) at;

    count = 0;
    siglen = 0;
    sig = header(hdata, "HmacSignature", &siglen, &count);

    if (sig != NULL && count == 1
        && pay_adyen_transfer_verify(sig, siglen, bytes, len, conf->secrets,
                                     conf->nsecrets)
           == PAY_ERR_NONE)
    {
        return PAY_ERR_NONE;
    }

    return pay_adyen_evidence_verify(bytes, len, conf->secrets,
                                     conf->nsecrets);
}


/*
 * A kept event's bytes read again by the webhook's parsers: a transfer
 * whose kept HmacSignature verifies them, else a notification item (or a
 * whole notification), every item verified again.
 */
static int
pay_adyen_evidence_events_of(const pay_webhook_conf_t *conf,
    pay_header_pt header, void *hdata, const char *bytes, size_t len,
    pay_event_t *events, size_t max, size_t *nevents)
{
    size_t       siglen;
    unsigned     count;
    const char  *sig;

    *nevents = 0;

    if (max == 0) {
        return -1;
    }

    count = 0;
    siglen = 0;
    sig = header(hdata, "HmacSignature", &siglen, &count);

    if (sig != NULL && count == 1
        && pay_adyen_transfer_verify(sig, siglen, bytes, len, conf->secrets,
                                     conf->nsecrets)
           == PAY_ERR_NONE)
    {
        if (pay_adyen_parse_transfer(bytes, len, &events[0]) != 0) {
            return -1;
        }

        *nevents = 1;
        return 0;
    }

    if (pay_adyen_evidence_events(bytes, len, conf->secrets,
                                  conf->nsecrets, events, max, nevents)
        != PAY_ERR_NONE)
    {
        /* a whole notification of more items than max among them */
        *nevents = 0;
        return -1;
    }

    return 0;
}


/*
 * events[0..n) reordered: the items of account first, in order, then the
 * others, in order (a stable partition); how many are account's.  The
 * others are set aside in one pass, so that a batch of any size costs one
 * copy of each event; without memory for that, one item is moved at a time.
 */
static size_t
pay_adyen_ours_first(pay_event_t *events, size_t n, const char *account)
{
    size_t        i, ours, other;
    pay_event_t  *others, tmp;

    ours = 0;
    other = 0;
    others = NULL;

    for (i = 0; i < n; i++) {
        if (account != NULL && strcmp(events[i].account, account) == 0) {
            if (others != NULL) {
                events[ours] = events[i];

            } else if (i != ours) {
                tmp = events[i];
                memmove(&events[ours + 1], &events[ours],
                        (i - ours) * sizeof(pay_event_t));
                events[ours] = tmp;
            }

            ours++;
            continue;
        }

        if (other == 0 && i == ours) {
            /* the first other: room for it and every one after it */
            others = malloc((n - i) * sizeof(pay_event_t));
        }

        if (others != NULL) {
            others[other] = events[i];
        }

        other++;
    }

    if (others != NULL) {
        memcpy(&events[ours], others, other * sizeof(pay_event_t));
        free(others);
    }

    return ours;
}


/*
 * Standard notifications: every item must verify or none is applied; only
 * the eight signed fields are read.  Adyen's "live" is not signed, so the
 * PSP's mode= says which money this is.  An HMAC key can be shared by a
 * company's merchant accounts: an authentic item for another account is
 * not this PSP's money (PAY_WH_ACCOUNT).  A batch of both: this account's
 * items first (*nevents of them, as Adyen sent them), the others after
 * (v->nforeign), for the caller to apply the first and keep the others.
 * A batch has as many items as Adyen puts in it (the body's size limit
 * bounds it): every item verified and more of them than max is PAY_WH_MORE
 * with v->nneeded, for the caller to call again with room for all.  A
 * body without notificationItems that comes with an HmacSignature header
 * is a balance-platform webhook (the pay-outs' transfers).
 */
static void
pay_adyen_webhook(const pay_webhook_conf_t *conf, pay_header_pt header,
    void *hdata, const char *body, size_t blen, int64_t now,
    pay_event_t *events, size_t max, size_t *nevents, pay_wh_verdict_t *v)
{
    size_t       ours, siglen;
    unsigned     count;
    const char  *sig;

    (void) now;

    *nevents = 0;
    v->nforeign = 0;
    v->nneeded = 0;
    count = 0;
    siglen = 0;
    sig = header(hdata, "HmacSignature", &siglen, &count);

    if (sig != NULL && count > 0 && !pay_adyen_has_items(body, blen)) {
        pay_adyen_transfer_webhook(conf, sig, siglen, count, body, blen,
                                   events, max, nevents, v);
        return;
    }

    v->err = pay_adyen_verify(body, blen, conf->secrets, conf->nsecrets,
                              events, max, nevents);
    if (v->err == PAY_ERR_PAYLOAD_TOO_LARGE) {
        /* every item authentic: room for each is asked for */
        v->nneeded = *nevents;
        *nevents = 0;
        v->err = PAY_ERR_NONE;
        v->reason = PAY_WH_MORE;
        v->why = "more items";
        return;
    }

    if (v->err == PAY_ERR_INVALID_REQUEST) {
        v->reason = PAY_WH_UNREADABLE;
        v->why = "not a readable notification";
        return;
    }

    if (v->err != PAY_ERR_NONE) {
        v->reason = PAY_WH_BAD_SIGNATURE;
        v->why = "hmacSignature";
        return;
    }

    ours = pay_adyen_ours_first(events, *nevents, conf->merchant_account);

    if (ours != *nevents) {
        v->nforeign = *nevents - ours;
        *nevents = ours;
        v->err = PAY_ERR_BAD_SIGNATURE;
        v->reason = PAY_WH_ACCOUNT;
        v->why = "merchantAccountCode";
        return;
    }

    v->reason = PAY_WH_OK;
    v->why = NULL;
}


/*
 * GET /v71/sessions/{sessionId}?sessionResult=…: Adyen answers only with
 * the sessionResult the shopper's browser brought back to the return URL;
 * without one there is nothing to ask (-1).  Session ids are
 * [A-Za-z0-9_-]; the sessionResult, which the shopper could have altered,
 * is percent-encoded whole.
 */
static int
pay_adyen_lookup(const pay_psp_lookup_t *in, pay_psp_request_t *req)
{
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_lookup_token_ok(in->token, 1)
        || in->session_result == NULL || in->session_result[0] == '\0'
        || strnlen(in->session_result, PAY_LOOKUP_RESULT_MAX + 1)
           > PAY_LOOKUP_RESULT_MAX)
    {
        return -1;
    }

    memset(&b, 0, sizeof(b));
    pay_buf_str(&b, "/v71/sessions/");
    pay_buf_str(&b, in->token);
    pay_buf_str(&b, "?sessionResult=");
    pay_buf_escape(&b, in->session_result);

    return pay_lookup_request(&b, req);
}


static void
pay_adyen_lookup_payment(const json_t *root, pay_event_t *ev)
{
    size_t         i;
    const char    *code, *psp;
    const json_t  *list, *p;

    list = json_object_get(root, "payments");

    for (i = 0; i < json_array_size(list); i++) {
        p = json_array_get(list, i);
        code = pay_json_str(p, "resultCode");
        psp = pay_json_str(p, "pspReference");

        if (code != NULL && strcmp(code, "Authorised") == 0 && psp != NULL
            && pay_adyen_ref_ok(psp))
        {
            pay_lookup_payment_ref(ev, psp);
            return;
        }
    }
}


/*
 * {"id","status","reference",…}: "completed" pays; "expired", "canceled"
 * and "refused" fail (Adyen: a refused session is one refused too many
 * times, the shopper can no longer pay in it; a single refused attempt
 * leaves it "active"); "active" is open; "paymentPending" (a method that
 * settles later: the shopper has paid, the money is on its way) is a
 * payment under way, which no expiry of the session may fail.  The answer
 * carries no amount: ev->amount stays PAY_EVT_AMOUNT_ABSENT and currency
 * "", so the database, which refuses a SUCCEEDED without an amount from a
 * webhook, must take the checkout's own amount for a look-up's event.
 */
static pay_lookup_outcome_e
pay_adyen_lookup_answer(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, int64_t now, pay_event_t *ev)
{
    int                    rc;
    json_t                *root;
    const char            *st;
    pay_event_kind_e       kind;
    pay_lookup_outcome_e   out;

    (void) now;

    rc = pay_lookup_begin(in, status, body, len, ev, &root);
    if (rc != 0) {
        return (pay_lookup_outcome_e) rc;
    }

    st = pay_json_str(root, "status");

    if (!pay_lookup_same(in, pay_json_str(root, "id"), 0) || st == NULL) {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    if (strcmp(st, "completed") == 0) {
        kind = PAY_EVT_SUCCEEDED;

    } else if (strcmp(st, "expired") == 0 || strcmp(st, "canceled") == 0
               || strcmp(st, "refused") == 0)
    {
        kind = PAY_EVT_FAILED;

    } else if (strcmp(st, "active") == 0) {
        out = pay_lookup_open(ev, st);
        json_decref(root);
        return out;

    } else if (strcmp(st, "paymentPending") == 0) {
        (void) pay_lookup_open(ev, st);
        json_decref(root);
        return PAY_LOOKUP_PENDING;

    } else {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    out = pay_lookup_decide(in, ev, kind, st,
                            pay_json_str(root, "reference"));

    /* the authorised payment's pspReference, when the answer lists the
     * session's payments: what a refund is registered against */
    if (out == PAY_LOOKUP_DECIDED && kind == PAY_EVT_SUCCEEDED) {
        pay_adyen_lookup_payment(root, ev);
    }

    json_decref(root);

    return out;
}


/* {"value": Adyen's units, "currency"}, or NULL */
static json_t *
pay_adyen_amount(const char *currency, int64_t iso)
{
    int      failed;
    int64_t  value;
    json_t  *amount;

    if (pay_op_amount(&pay_dialect_adyen, currency, iso, &value) != 0) {
        return NULL;
    }

    amount = json_object();
    if (amount == NULL) {
        return NULL;
    }

    failed = 0;
    pay_json_set(amount, "value", json_integer(value), &failed);
    pay_json_set(amount, "currency", json_string(currency), &failed);

    if (failed) {
        json_decref(amount);
        return NULL;
    }

    return amount;
}


/*
 * POST /v71/payments/{pspReference}/refunds: the payment's id goes into
 * the path, so it must be Adyen's alphabet; merchantRefundReason only when
 * the reason is one of Adyen's words.
 */
static int
pay_adyen_refund(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    int         failed;
    char        path[128];
    json_t     *root, *amount;
    const char *r;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || in->payment_ref == NULL || !pay_adyen_ref_ok(in->payment_ref)
        || !pay_op_visible(in->merchant_account, 255)
        || !pay_op_reason_ok(in->reason))
    {
        return -1;
    }

    amount = pay_adyen_amount(in->currency, in->amount);
    if (amount == NULL) {
        return -1;
    }

    root = json_object();
    if (root == NULL) {
        json_decref(amount);
        return -1;
    }

    failed = 0;
    r = in->reason;

    pay_json_set(root, "merchantAccount", json_string(in->merchant_account),
                 &failed);
    pay_json_set(root, "amount", amount, &failed);
    pay_json_set(root, "reference", json_string(in->nonce), &failed);

    if (r != NULL
        && (strcmp(r, "FRAUD") == 0 || strcmp(r, "CUSTOMER REQUEST") == 0
            || strcmp(r, "RETURN") == 0 || strcmp(r, "DUPLICATE") == 0
            || strcmp(r, "OTHER") == 0))
    {
        pay_json_set(root, "merchantRefundReason", json_string(r), &failed);
    }

    snprintf(path, sizeof(path), "/v71/payments/%s/refunds",
             in->payment_ref);

    return pay_op_request(req, path, "application/json",
                          pay_json_dump(root, failed));
}


/*
 * POST /v71/payments/{pspReference}/captures {merchantAccount, amount,
 * reference} and /cancels {merchantAccount, reference}: the reference is
 * our nonce, which the CAPTURE and CANCELLATION notifications carry back
 * as merchantReference.  Adyen takes several partial captures.
 */
static int
pay_adyen_modification(const pay_psp_refund_t *in, pay_psp_request_t *req,
    int capture)
{
    int      failed;
    char     path[128];
    json_t  *root, *amount;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || in->payment_ref == NULL || !pay_adyen_ref_ok(in->payment_ref)
        || !pay_op_visible(in->merchant_account, 255))
    {
        return -1;
    }

    amount = NULL;

    if (capture) {
        amount = pay_adyen_amount(in->currency, in->amount);
        if (amount == NULL) {
            return -1;
        }
    }

    root = json_object();
    if (root == NULL) {
        json_decref(amount);
        return -1;
    }

    failed = 0;

    pay_json_set(root, "merchantAccount", json_string(in->merchant_account),
                 &failed);

    if (capture) {
        pay_json_set(root, "amount", amount, &failed);
    }

    pay_json_set(root, "reference", json_string(in->nonce), &failed);

    snprintf(path, sizeof(path), "/v71/payments/%s/%s", in->payment_ref,
             capture ? "captures" : "cancels");

    return pay_op_request(req, path, "application/json",
                          pay_json_dump(root, failed));
}


static int
pay_adyen_capture(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    return pay_adyen_modification(in, req, 1);
}


static int
pay_adyen_cancel(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    return pay_adyen_modification(in, req, 0);
}


/*
 * The characters Adyen takes in a transfer's description (Transfers API
 * v4, TransferInfo.description): [a-zA-Z0-9] and / - ? : ( ) . , ' + and
 * the space.  Any other byte becomes '-', so that a nonce's '_' still
 * reads as a separator; at most PAY_ADYEN_DESCRIPTION_MAX characters.
 */
void
pay_adyen_description(const char *in, char *out, size_t size)
{
    size_t         i;
    unsigned char  c;

    if (size == 0) {
        return;
    }

    for (i = 0; in[i] != '\0' && i + 1 < size
                && i < PAY_ADYEN_DESCRIPTION_MAX; i++)
    {
        c = (unsigned char) in[i];
        out[i] = pay_adyen_description_ok(c) ? (char) c : '-';
    }

    out[i] = '\0';
}


int
pay_adyen_description_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("/-?:().,'+ ", c) != NULL);
}


/*
 * POST {transfers_url}/transfers: an internal transfer from the
 * platform's balance account (when given) to the seller's.  The path is
 * relative to the Transfers API's base (payout_api TRANSFERS), which is
 * another host than Checkout's, with its own credential.
 */
static int
pay_adyen_payout(const pay_psp_payout_t *in, pay_psp_request_t *req)
{
    int      failed;
    char     text[80], description[80];
    json_t  *root, *amount, *counterparty;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || in->destination == NULL || !pay_adyen_ref_ok(in->destination)
        || (in->source_account != NULL
            && !pay_adyen_ref_ok(in->source_account)))
    {
        return -1;
    }

    amount = pay_adyen_amount(in->currency, in->amount);
    if (amount == NULL) {
        return -1;
    }

    root = json_object();
    counterparty = json_object();
    if (root == NULL || counterparty == NULL) {
        json_decref(amount);
        json_decref(root);
        json_decref(counterparty);
        return -1;
    }

    failed = 0;
    snprintf(text, sizeof(text), "payout %s", in->nonce);
    pay_adyen_description(text, description, sizeof(description));

    pay_json_set(counterparty, "balanceAccountId",
                 json_string(in->destination), &failed);

    pay_json_set(root, "amount", amount, &failed);
    pay_json_set(root, "category", json_string("internal"), &failed);
    pay_json_set(root, "counterparty", counterparty, &failed);
    pay_json_set(root, "reference", json_string(in->nonce), &failed);
    pay_json_set(root, "description", json_string(description), &failed);

    if (in->source_account != NULL) {
        pay_json_set(root, "balanceAccountId",
                     json_string(in->source_account), &failed);
    }

    return pay_op_request(req, "/transfers", "application/json",
                          pay_json_dump(root, failed));
}


/* A refund's 201 {"pspReference","status":"received"}; a transfer's
 * {"id","status"}. */
static void
pay_adyen_op_answer(int status, const char *body, size_t len,
    pay_psp_op_result_t *res)
{
    pay_psp_parse_op_redact(&pay_dialect_adyen, status, body, len, NULL, 0,
                            res);
}


const pay_dialect_t  pay_dialect_adyen = {
    .name = "adyen",
    .id = PAY_DIALECT_ADYEN,
    .params = PAY_PSP_P_WEBHOOK_SECRET | PAY_PSP_P_MERCHANT_ACCOUNT
              | PAY_PSP_P_TRANSFERS,
    .required = PAY_PSP_P_WEBHOOK_SECRET | PAY_PSP_P_MERCHANT_ACCOUNT,
    .auth_header = "X-API-Key: %s",
    .credential_check = NULL,
    .secret_decode = pay_adyen_secret_decode,
    .exponent = pay_adyen_exponent,
    .amount_ok = NULL,
    .registration_path = "/v71/sessions",
    .registration_type = "application/json",
    .registration_body = pay_adyen_body,
    .token_field = "id",
    .expires_field = "expiresAt",
    .return_session_param = "sessionResult",
    .lookup_snapshot = 1,
    .refusal_reason = pay_adyen_reason,
    .key_in_use = pay_adyen_key_in_use,
    .webhook = pay_adyen_webhook,
    .evidence_verify = pay_adyen_evidence,
    .evidence_events = pay_adyen_evidence_events_of,
    .webhook_answer = "[accepted]",
    .webhook_answer_type = "text/plain",
    .session_lookup = pay_adyen_lookup,
    .session_lookup_answer = pay_adyen_lookup_answer,
    .refund = pay_adyen_refund,
    .payout = pay_adyen_payout,
    .payout_api = PAY_PSP_API_TRANSFERS,
    .op_answer = pay_adyen_op_answer,
    .op_ref_fields = { "pspReference", "id", NULL },
    /* Adyen keeps a key for at least 7 days */
    .key_window = 7 * 86400,
    .key_max = 64,
    /* expiresAt: at most 24 h ahead; /sessions has no way to end a
     * session early (CheckoutService-v71: POST and GET only) */
    .session_min = 60,
    .session_max = 86400,
    .session_expirable = 0,
    .session_expire = NULL,
    /* a 4xx validation error or a 429 is answered before the session is
     * made; Adyen documents no 5xx as making nothing */
    .no_session = PAY_NOSESSION_REFUSED | PAY_NOSESSION_THROTTLED,
    .capture = pay_adyen_capture,
    .cancel = pay_adyen_cancel,
    /* Adyen: the card scheme decides; 7 days, the shortest common one,
     * is assumed (doc/PSPS.md) */
    .auth_window = 7 * 86400,
    .charge_path = "/v71/payments",
    .charge_body = pay_adyen_charge_body,
    .charge_answer = pay_adyen_charge_answer,
};
