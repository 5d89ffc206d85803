/*
 * Mock PSP: Adyen's Checkout API, POST /v71/sessions (hosted mode), and
 * Adyen's standard notifications.  Every NotificationRequestItem carries
 * additionalData.hmacSignature (adyen_hmac.c, PSP_FACTS.md).  Adyen's
 * signature has no timestamp: the webhook_stale knob has no effect here.
 * Adyen has one return URL for every outcome: the hosted page sends the
 * browser back to returnUrl with sessionId and sessionResult added, paid or
 * declined.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "mock_psp.h"


#define MOCK_ADYEN_KEY_MAX        64     /* Adyen's Idempotency-Key limit */
#define MOCK_ADYEN_REFERENCE_MAX  80
#define MOCK_ADYEN_URL_MAX        8000
#define MOCK_ADYEN_LIFETIME_MAX   (24 * 60 * 60)


static int mock_adyen_sign(const mock_wh_event_t *ev, char *line,
    size_t size);


static const mock_wh_dialect_t  mock_adyen_dialect = {
    "adyen",
    &mock_conf.adyen_webhook_url,
    mock_adyen_sign
};


/* --- registration --------------------------------------------------------- */

int
mock_adyen_authorized(struct MHD_Connection *c)
{
    size_t       len;
    const char  *key;

    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    if (key == NULL || mock_conf.adyen_secret == NULL) {
        return 0;
    }

    len = strlen(mock_conf.adyen_secret);

    return strlen(key) == len
           && CRYPTO_memcmp(key, mock_conf.adyen_secret, len) == 0;
}


/* The Transfers API's own credential (another host, another key) */
static int
mock_adyen_transfers_authorized(struct MHD_Connection *c)
{
    size_t       len;
    const char  *key;

    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    if (key == NULL || mock_conf.adyen_transfers_secret == NULL) {
        return 0;
    }

    len = strlen(mock_conf.adyen_transfers_secret);

    return strlen(key) == len
           && CRYPTO_memcmp(key, mock_conf.adyen_transfers_secret, len) == 0;
}


/* Adyen's service exception: {"status","errorCode","message","errorType"} */
enum MHD_Result
mock_adyen_error(struct MHD_Connection *c, unsigned status, const char *code,
    const char *type, const char *message)
{
    return mock_send_json(c, status,
                          json_pack("{sI ss ss ss}",
                                    "status", (json_int_t) status,
                                    "errorCode", code,
                                    "message", message,
                                    "errorType", type));
}


static enum MHD_Result
mock_adyen_refuse(struct MHD_Connection *c, mock_refusal_e what,
    unsigned status, const char *key, const mock_invalid_t *inv)
{
    (void) key;

    switch (what) {

    case MOCK_REFUSE_UNAUTHORIZED:
        return mock_adyen_error(c, 401, "000", "security",
                                "HTTP Status Response - Unauthorized");

    case MOCK_REFUSE_KEY_INVALID:
        return mock_adyen_error(c, 422, "704", "validation",
                                "Idempotency key is longer than 64 "
                                "characters");

    case MOCK_REFUSE_KEY_MISMATCH:
        return mock_adyen_error(c, 422, "704", "validation",
                                "request already processed or in progress "
                                "with another body for this idempotency key");

    case MOCK_REFUSE_KEY_IN_USE:
        /* Adyen answers 422 here too, with the same code: the caller must
         * tell "in progress" from a refusal by the code */
        return mock_adyen_error(c, 422, "704", "validation",
                                "request already processed or in progress");

    case MOCK_REFUSE_FAIL:
        return mock_adyen_error(c, status, status == 429 ? "000" : "905",
                                "internal", "mock fault: a transient failure");

    case MOCK_REFUSE_FAULT:
        if (status == 401) {
            return mock_adyen_refuse(c, MOCK_REFUSE_UNAUTHORIZED, status, key,
                                     NULL);
        }

        return mock_adyen_error(c, status, "010", "validation",
                                "mock refusal: not allowed");

    case MOCK_REFUSE_CONTENT_TYPE:
        return mock_adyen_error(c, 415, "000", "validation",
                                "Content-Type must be application/json");

    case MOCK_REFUSE_INVALID:
        return mock_adyen_error(c, 422, inv->code, "validation",
                                inv->message);

    default:
        return mock_adyen_error(c, 500, "000", "internal",
                                inv ? inv->message : "internal error");
    }
}


/* YYYY-MM-DDTHH:MM:SSZ (what the gateway sends), or -1 */
static int64_t
mock_adyen_time(const char *s)
{
    char       *end;
    struct tm   tm;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL || !(strcmp(end, "Z") == 0 || strcmp(end, "+00:00") == 0))
    {
        return -1;
    }

    return (int64_t) timegm(&tm);
}



/* additionalData.manualCapture is "true" (Adyen's strings, any case) */
static int
mock_adyen_manual(const json_t *additional)
{
    const char  *v;

    v = json_string_value(json_object_get(additional, "manualCapture"));

    return v != NULL && strcasecmp(v, "true") == 0;
}


/* characters (UTF-8 code points), as Adyen counts its limits */
static size_t
mock_adyen_chars(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        n += (((unsigned char) *s) & 0xc0) != 0x80;
    }

    return n;
}

static json_t *
mock_adyen_build(const char *body, size_t len, const mock_fault_t *fault,
    mock_invalid_t *inv, char **response)
{
    char          id[32], data[40], url[MOCK_ADYEN_URL_MAX + 128];
    char          ret[MOCK_ADYEN_URL_MAX + 128], when[32];
    size_t        i, frag;
    int64_t       now, expires, sum;
    int           ok, zero;
    const char   *mkey;
    json_t       *req, *amount, *items, *it, *s, *ans, *mode, *md, *mval;
    json_int_t    value, n, q;
    const char   *account, *currency, *reference, *return_url, *exp;
    json_error_t  jerr;

    req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL || !json_is_object(req)) {
        json_decref(req);
        mock_invalid(inv, "702", NULL, "Structure of the request is not "
                     "valid JSON: %s", jerr.text);
        return NULL;
    }

    s = NULL;
    account = json_string_value(json_object_get(req, "merchantAccount"));
    amount = json_object_get(req, "amount");
    currency = json_string_value(json_object_get(amount, "currency"));
    value = json_integer_value(json_object_get(amount, "value"));
    reference = json_string_value(json_object_get(req, "reference"));
    return_url = json_string_value(json_object_get(req, "returnUrl"));
    exp = json_string_value(json_object_get(req, "expiresAt"));
    items = json_object_get(req, "lineItems");
    now = (int64_t) time(NULL);

    if (account == NULL || account[0] == '\0') {
        mock_invalid(inv, "901", "merchantAccount",
                     "Invalid Merchant Account");
        goto done;
    }

    /* a zero-amount session only stores the shopper's method (Adyen's
     * zero-value authorisation): storePaymentMethodMode "enabled" */
    zero = json_is_integer(json_object_get(amount, "value")) && value == 0
           && json_is_string(json_object_get(req, "storePaymentMethodMode"))
           && strcmp(json_string_value(json_object_get(req,
                         "storePaymentMethodMode")), "enabled") == 0;

    if (!zero
        && (!json_is_integer(json_object_get(amount, "value"))
            || value <= 0))
    {
        mock_invalid(inv, "100", "amount.value", "Required field "
                     "'amount.value' is not provided or not positive (0 "
                     "only to store a method: storePaymentMethodMode "
                     "enabled).");
        goto done;
    }

    if (!mock_currency_valid(currency)) {
        mock_invalid(inv, "101", "amount.currency",
                     "Invalid amount.currency");
        goto done;
    }

    if (reference == NULL || reference[0] == '\0'
        || strlen(reference) > MOCK_ADYEN_REFERENCE_MAX)
    {
        mock_invalid(inv, "130", "reference", "Required field 'reference' "
                     "is missing or longer than %d characters.",
                     MOCK_ADYEN_REFERENCE_MAX);
        goto done;
    }

    if (!mock_url_valid(return_url, MOCK_ADYEN_URL_MAX)) {
        mock_invalid(inv, "14_0001", "returnUrl",
                     "Required field 'returnUrl' is not a valid URL.");
        goto done;
    }

    expires = now + 3600;

    if (json_object_get(req, "expiresAt") != NULL && exp == NULL) {
        mock_invalid(inv, "14_0417", "expiresAt", "expiresAt must be an ISO "
                     "8601 date-time string.");
        goto done;
    }

    if (exp != NULL) {
        expires = mock_adyen_time(exp);
        if (expires <= now || expires > now + MOCK_ADYEN_LIFETIME_MAX + 60) {
            mock_invalid(inv, "14_0417", "expiresAt", "expiresAt must be in "
                         "the future and at most 24 hours ahead.");
            goto done;
        }
    }

    /* the mock serves hosted pages only */
    mode = json_object_get(req, "mode");
    if (mode != NULL
        && !(json_is_string(mode)
             && strcmp(json_string_value(mode), "hosted") == 0))
    {
        mock_invalid(inv, "14_0502", "mode", "Invalid mode: the mock "
                     "serves \"hosted\" sessions only.");
        goto done;
    }

    /* one line item per payment order, adding up to the amount; a
     * zero-amount session has none */
    if (zero && items != NULL) {
        mock_invalid(inv, "137", "lineItems", "A zero-amount session "
                     "stores a method: it has no lineItems.");
        goto done;
    }

    if (zero) {
        sum = 0;
        goto summed;
    }

    if (!json_is_array(items) || json_array_size(items) == 0) {
        mock_invalid(inv, "100", "lineItems", "Required field 'lineItems' "
                     "is not provided.");
        goto done;
    }

    sum = 0;

    json_array_foreach(items, i, it) {
        n = json_integer_value(json_object_get(it, "amountIncludingTax"));
        q = json_integer_value(json_object_get(it, "quantity"));

        if (!json_is_object(it) || n <= 0 || q <= 0
            || __builtin_mul_overflow(n, q, &n)
            || __builtin_add_overflow(sum, n, &sum))
        {
            mock_invalid(inv, "137", "lineItems", "Invalid lineItems[%zu]: "
                         "amountIncludingTax and quantity must be positive "
                         "integers.", i);
            goto done;
        }
    }

summed:

    if (sum != value) {
        mock_invalid(inv, "137", "lineItems", "The lineItems add up to "
                     "%lld, not amount.value %lld.", (long long) sum,
                     (long long) value);
        goto done;
    }

    /* metadata: Adyen's limits (20 entries, keys of 20 characters,
     * values of 80), strings only */
    md = json_object_get(req, "metadata");

    if (md != NULL) {
        ok = json_is_object(md) && json_object_size(md) <= 20;

        json_object_foreach(md, mkey, mval) {
            ok = ok && mock_adyen_chars(mkey) <= 20 && json_is_string(mval)
                 && mock_adyen_chars(json_string_value(mval)) <= 80;
        }

        if (!ok) {
            mock_invalid(inv, "702", "metadata", "Invalid metadata: at most "
                         "20 entries, keys of 20 characters, string values "
                         "of 80.");
            goto done;
        }
    }

    memcpy(id, "CS", 2);
    memcpy(data, "Ab02b4c0!", 9);
    if (mock_random_alnum(id + 2, 16) != 0
        || mock_random_alnum(data + 9, 24) != 0)
    {
        mock_invalid(inv, NULL, NULL, "No randomness.");
        goto done;
    }

    for (i = 2; id[i]; i++) {
        id[i] = (char) toupper((unsigned char) id[i]);
    }

    if (fault->hosted_url != NULL) {
        snprintf(url, sizeof(url), "%s", fault->hosted_url);
    } else {
        snprintf(url, sizeof(url), "%s/pay/%s", mock_conf.public_url, id);
    }

    /*
     * Adyen has one return URL and adds the session's outcome to its query,
     * the same for both outcomes here: only a webhook says what happened.
     */
    frag = strcspn(return_url, "#");
    snprintf(ret, sizeof(ret), "%.*s%ssessionId=%s&sessionResult=%s%s",
             (int) frag, return_url,
             memchr(return_url, '?', frag) ? "&" : "?", id, data + 9,
             return_url + frag);

    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
             gmtime(&(time_t) { (time_t) expires }));

    s = json_pack("{ss ss sI ss ss ss ss sI ss ss sb ss ss ss}",
                  "id", id,
                  "dialect", "adyen",
                  "amount_total", value,
                  "currency", currency,
                  "client_reference_id", reference,
                  "success_url", ret,
                  "cancel_url", ret,
                  "expires_at", (json_int_t) expires,
                  "status", "open",
                  "payment_status", "unpaid",
                  "livemode", 0,
                  "url", url,
                  "merchant_account", account,
                  "session_result", data + 9);

    if (s != NULL && md != NULL) {
        json_object_set(s, "metadata", md);
    }

    /* storePaymentMethodMode "enabled": the shopper's method is stored
     * for the shopperReference when they pay (RECURRING_CONTRACT) */
    if (s != NULL
        && json_is_string(json_object_get(req, "storePaymentMethodMode"))
        && strcmp(json_string_value(json_object_get(req,
                                        "storePaymentMethodMode")),
                  "enabled") == 0)
    {
        if (!json_is_string(json_object_get(req, "shopperReference"))
            || !json_is_string(json_object_get(req,
                                               "recurringProcessingModel")))
        {
            json_decref(s);
            s = NULL;
            mock_invalid(inv, "14_0030", "shopperReference", "A stored "
                         "payment method needs shopperReference and "
                         "recurringProcessingModel.");
            goto done;
        }

        json_object_set(s, "save_usage",
                        json_object_get(req, "recurringProcessingModel"));
        json_object_set(s, "save_customer",
                        json_object_get(req, "shopperReference"));
    }

    /* additionalData.manualCapture "true": the AUTHORISATION is a hold,
     * captured or cancelled later */
    if (s != NULL
        && mock_adyen_manual(json_object_get(req, "additionalData")))
    {
        json_object_set_new(s, "capture", json_string("manual"));
    }

    ans = json_pack("{s{sIss} ss ss ss ss ss ss ss ss}",
                    "amount", "value", value, "currency", currency,
                    "expiresAt", when,
                    "id", id,
                    "merchantAccount", account,
                    "mode", "hosted",
                    "reference", reference,
                    "returnUrl", return_url,
                    "sessionData", data,
                    "url", url);

    *response = ans ? json_dumps(ans, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(ans);

    if (s == NULL || *response == NULL) {
        json_decref(s);
        free(*response);
        *response = NULL;
        s = NULL;
        mock_invalid(inv, NULL, NULL, "Out of memory.");
    }

done:

    json_decref(req);
    return s;
}


static const mock_api_t  mock_adyen_api = {
    "adyen",
    MOCK_ADYEN_KEY_MAX,
    "application/json",
    201,
    mock_adyen_authorized,
    mock_adyen_refuse,
    mock_adyen_build,
    NULL
};


/* POST /v71/sessions */
enum MHD_Result
mock_adyen_create(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_adyen_api);
}


/* --- the session result --------------------------------------------------- */

/*
 * GET /v71/sessions/{sessionId}?sessionResult=…: the session as it is now,
 * {"id","reference","status"}: "active" while open, "completed" once paid
 * or, for a manual capture, authorised (Adyen's SessionResultResponse:
 * "the payment was authorized"), "paymentPending" when paid but not
 * settled (async_payment), "expired"
 * when its time ran out.  Adyen answers only with the sessionResult it put
 * on the shopper's return URL: 400 without one, 422 with another.  A
 * session of another dialect is unknown here.
 */
enum MHD_Result
mock_adyen_lookup(struct MHD_Connection *c, const char *id)
{
    enum MHD_Result        rc;
    json_t                *s;
    const char            *result, *want, *d, *ps, *status;
    mock_session_state_e   state;

    if (mock_sleep_ms(mock_conf.latency_ms) != 0) {
        return MHD_NO;
    }

    if (!mock_adyen_authorized(c)) {
        return mock_adyen_refuse(c, MOCK_REFUSE_UNAUTHORIZED, 401, NULL,
                                 NULL);
    }

    result = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                         "sessionResult");
    if (result == NULL || result[0] == '\0') {
        return mock_adyen_error(c, 400, "100", "validation",
                                "Required field 'sessionResult' is not "
                                "provided.");
    }

    state = mock_session_get(id, &s);
    d = json_string_value(json_object_get(s, "dialect"));

    if (state == MOCK_SESSION_NOT_FOUND || d == NULL
        || strcmp(d, "adyen") != 0)
    {
        json_decref(s);
        return mock_adyen_error(c, 404, "000", "validation",
                                "Session not found.");
    }

    want = json_string_value(json_object_get(s, "session_result"));
    if (want == NULL || strcmp(result, want) != 0) {
        json_decref(s);
        return mock_adyen_error(c, 422, "14_0510", "validation",
                                "Invalid sessionResult.");
    }

    ps = json_string_value(json_object_get(s, "payment_status"));

    switch (state) {
    case MOCK_SESSION_OPEN:
        status = "active";
        break;
    case MOCK_SESSION_COMPLETE:
        /* Adyen's SessionResultResponse: "completed" once the payment is
         * authorised, a manual capture's hold included; "paymentPending"
         * only for a method that settles later */
        status = (ps != NULL && strcmp(ps, "paid") == 0)
                 || (mock_session_manual(s)
                     && !json_is_true(json_object_get(s, "async_payment")))
                 ? "completed" : "paymentPending";
        break;
    default:
        status = "expired";
        break;
    }

    rc = mock_send_json(c, MHD_HTTP_OK,
                        json_pack("{ss ss ss}", "id", id,
                                  "reference",
                                  json_string_value(json_object_get(
                                      s, "client_reference_id")),
                                  "status", status));
    json_decref(s);

    return rc;
}


/* --- notifications -------------------------------------------------------- */

/* The signature is in the body: no header. */
static int
mock_adyen_sign(const mock_wh_event_t *ev, char *line, size_t size)
{
    (void) ev;
    (void) size;

    line[0] = '\0';
    return 0;
}


/* One notification with one signed item. */
static char *
mock_adyen_body(const mock_wh_event_t *ev, const json_t *session,
    const char *psp_ref, const char *code, int success)
{
    char          currency[4], sig[MOCK_ADYEN_HMAC_LEN], when[32], *data;
    char         *body;
    size_t        i;
    json_t       *n;
    json_int_t    value;
    const char   *account, *reference;

    account = json_string_value(json_object_get(session, "merchant_account"));
    reference = json_string_value(json_object_get(session,
                                                  "client_reference_id"));
    value = ev->fault.has_amount
            ? ev->fault.amount
            : json_integer_value(json_object_get(session, "amount_total"));

    snprintf(currency, sizeof(currency), "%s",
             json_string_value(json_object_get(session, "currency")));
    for (i = 0; currency[i]; i++) {
        currency[i] = (char) toupper((unsigned char) currency[i]);
    }

    if (account == NULL || reference == NULL) {
        return NULL;
    }

    data = mock_adyen_hmac_data(psp_ref, "", account, reference,
                                (long long) value, currency, code,
                                success ? "true" : "false");
    if (data == NULL) {
        return NULL;
    }

    /* webhook_bad_signature: the HMAC of the string without its last byte */
    if (mock_adyen_hmac_sign(mock_conf.adyen_hmac_key, data,
                             strlen(data) - (ev->fault.bad_signature ? 1 : 0),
                             sig)
        != 0)
    {
        free(data);
        return NULL;
    }

    free(data);

    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S+00:00",
             gmtime(&(time_t) { time(NULL) }));

    n = json_pack("{ss s[{s{s{ss} s{sIss} ss ss ss ss ss ss ss ss}}]}",
                  "live", "false",
                  "notificationItems",
                  "NotificationRequestItem",
                  "additionalData", "hmacSignature", sig,
                  "amount", "value", value, "currency", currency,
                  "eventCode", code,
                  "eventDate", when,
                  "merchantAccountCode", account,
                  "merchantReference", reference,
                  "originalReference", "",
                  "pspReference", psp_ref,
                  "reason", success ? "" : "Refused",
                  "success", success ? "true" : "false");
    if (n == NULL) {
        return NULL;
    }

    body = json_dumps(n, JSON_COMPACT);
    json_decref(n);

    return body;
}


static mock_wh_event_t *
mock_adyen_event(const json_t *session, const char *code, int success,
    const mock_webhook_fault_t *wf)
{
    char              ref[17], id[64];
    const char       *sid;
    mock_wh_event_t  *ev;

    /* 16 digits, as Adyen's pspReference; a successful AUTHORISATION
     * carries the payment's own (refunds and chargebacks name it) */
    if (success && strcmp(code, "AUTHORISATION") == 0
        && json_is_string(json_object_get(session, "payment_ref")))
    {
        snprintf(ref, sizeof(ref), "%s",
                 json_string_value(json_object_get(session, "payment_ref")));

    } else if (mock_random_digits(ref, 16) != 0) {
        return NULL;
    }

    snprintf(id, sizeof(id), "%s:%s", ref, code);
    sid = json_string_value(json_object_get(session, "id"));

    ev = mock_wh_event_new(&mock_adyen_dialect, id, code, sid ? sid : "", wf);
    if (ev == NULL) {
        return NULL;
    }

    ev->body = mock_adyen_body(ev, session, ref, code, success);
    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return NULL;
    }

    return ev;
}


/* The async AUTHORISATION's body, once the session is paid. */
static char *
mock_adyen_rebuild(const mock_wh_event_t *ev, const json_t *session)
{
    char  ref[17];

    /* ev->id is "<pspReference>:<eventCode>" */
    snprintf(ref, sizeof(ref), "%.16s", ev->id);

    return mock_adyen_body(ev, session, ref, ev->type, 1);
}


/*
 * paid: [out_of_order: a refused AUTHORISATION under another pspReference]
 * then AUTHORISATION success "true"; with async_payment a PENDING first
 * and the AUTHORISATION async_delay_ms later.  Declined: AUTHORISATION
 * success "false".
 */
void
mock_adyen_webhook(const json_t *session, int paid,
    const mock_webhook_fault_t *wf)
{
    mock_wh_event_t  *chain, **tail, *ev;

    chain = NULL;
    tail = &chain;

    if (paid && wf->out_of_order) {
        ev = mock_adyen_event(session, "AUTHORISATION", 0, wf);
        if (ev == NULL) {
            goto failed;
        }
        *tail = ev;
        tail = &ev->next;
    }

    if (paid && wf->async_payment) {
        ev = mock_adyen_event(session, "PENDING", 1, wf);
        if (ev == NULL) {
            goto failed;
        }
        *tail = ev;
        tail = &ev->next;
    }

    ev = mock_adyen_event(session, "AUTHORISATION", paid, wf);
    if (ev == NULL) {
        goto failed;
    }

    if (paid && wf->async_payment) {
        free(ev->body);
        ev->body = NULL;
        ev->prepare = mock_wh_prepare_settled;
        ev->rebuild = mock_adyen_rebuild;
        ev->delay_ms = wf->async_delay_ms;
    }

    *tail = ev;
    chain->delay_ms += wf->delay_ms;

    (void) mock_wh_send(chain);
    return;

failed:

    mock_log("webhooks for %s: out of memory",
             json_string_value(json_object_get(session, "id")));
    mock_wh_chain_free(chain);
}


/* --- after "paid": refunds, chargebacks, transfers ------------------------ */

/*
 * One notification of one signed item, delay_ms after now (plus the rule's
 * webhook_delay_ms), with the rule's duplicates: REFUND, REFUND_FAILED,
 * NOTIFICATION_OF_CHARGEBACK, CHARGEBACK, CHARGEBACK_REVERSED,
 * SECOND_CHARGEBACK.  psp_ref is the item's own (a new one when NULL).
 */
void
mock_adyen_webhook_item(const char *code, const char *psp_ref,
    const char *original_ref, const char *account, const char *merchant_ref,
    json_int_t value, const char *currency, int success, const char *subject,
    const mock_webhook_fault_t *wf, long delay_ms)
{
    char              ref[17], id[96], sig[MOCK_ADYEN_HMAC_LEN], when[32];
    char             *data;
    json_t           *n;
    mock_wh_event_t  *ev;

    if (mock_conf.adyen_webhook_url == NULL) {
        mock_log("event %s for %s (no webhook URL: not sent)", code, subject);
        return;
    }

    if (psp_ref == NULL) {
        if (mock_random_digits(ref, 16) != 0) {
            return;
        }
        psp_ref = ref;
    }

    snprintf(id, sizeof(id), "%s:%s%s", psp_ref, code,
             success ? "" : ":false");

    ev = mock_wh_event_new(&mock_adyen_dialect, id, code, subject, wf);
    if (ev == NULL) {
        return;
    }

    data = mock_adyen_hmac_data(psp_ref, original_ref, account, merchant_ref,
                                (long long) value, currency, code,
                                success ? "true" : "false");

    if (data == NULL
        || mock_adyen_hmac_sign(mock_conf.adyen_hmac_key, data,
                                strlen(data)
                                - (wf->bad_signature ? 1 : 0), sig) != 0)
    {
        free(data);
        mock_wh_chain_free(ev);
        return;
    }

    free(data);

    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S+00:00",
             gmtime(&(time_t) { time(NULL) }));

    n = json_pack("{ss s[{s{s{ss} s{sIss} ss ss ss ss ss ss ss ss}}]}",
                  "live", "false",
                  "notificationItems",
                  "NotificationRequestItem",
                  "additionalData", "hmacSignature", sig,
                  "amount", "value", value, "currency", currency,
                  "eventCode", code,
                  "eventDate", when,
                  "merchantAccountCode", account,
                  "merchantReference", merchant_ref,
                  "originalReference", original_ref,
                  "pspReference", psp_ref,
                  "reason", success ? "" : "Refused",
                  "success", success ? "true" : "false");

    ev->body = n ? json_dumps(n, JSON_COMPACT) : NULL;
    json_decref(n);

    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return;
    }

    ev->delay_ms = delay_ms + wf->delay_ms;
    (void) mock_wh_send(ev);
}


/* Balance-platform webhooks sign the raw body into a header. */
static int
mock_adyen_transfer_sign(const mock_wh_event_t *ev, char *line, size_t size)
{
    int   n;
    char  sig[MOCK_ADYEN_HMAC_LEN];

    if (mock_adyen_hmac_sign(mock_conf.adyen_hmac_key, ev->body,
                             strlen(ev->body)
                             - (ev->fault.bad_signature ? 1 : 0), sig) != 0)
    {
        return -1;
    }

    n = snprintf(line, size, "HmacSignature: %s", sig);

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


static const mock_wh_dialect_t  mock_adyen_transfer_dialect = {
    "adyen",
    &mock_conf.adyen_webhook_url,
    mock_adyen_transfer_sign
};


/* balancePlatform.transfer.updated about the transfer data (taken). */
void
mock_adyen_webhook_transfer(json_t *data, const char *subject,
    const mock_webhook_fault_t *wf, long delay_ms)
{
    char              id[96];
    json_t           *n;
    const char       *tid, *st;
    mock_wh_event_t  *ev;

    tid = json_string_value(json_object_get(data, "id"));
    st = json_string_value(json_object_get(data, "status"));

    if (tid == NULL || st == NULL || mock_conf.adyen_webhook_url == NULL) {
        json_decref(data);
        return;
    }

    snprintf(id, sizeof(id), "transfer:%s:%s", tid, st);

    ev = mock_wh_event_new(&mock_adyen_transfer_dialect, id,
                           "balancePlatform.transfer.updated", subject, wf);
    if (ev == NULL) {
        json_decref(data);
        return;
    }

    n = json_pack("{ss ss so}", "type", "balancePlatform.transfer.updated",
                  "environment", "test", "data", data);
    ev->body = n ? json_dumps(n, JSON_COMPACT) : NULL;
    json_decref(n);

    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return;
    }

    ev->delay_ms = delay_ms + wf->delay_ms;
    (void) mock_wh_send(ev);
}


/* POST /v71/payments/{ref}/refunds (Checkout, the main port) and POST
 * /btl/v4/transfers (Transfers, its own port and key) */

static const mock_api_t  mock_adyen_refund_api = {
    "adyen refund", MOCK_ADYEN_KEY_MAX, "application/json", 201,
    mock_adyen_authorized, mock_adyen_refuse, mock_money_adyen_refund_build,
    mock_money_committed
};

static const mock_api_t  mock_adyen_transfer_api = {
    "adyen transfer", MOCK_ADYEN_KEY_MAX, "application/json", 200,
    mock_adyen_transfers_authorized, mock_adyen_refuse, mock_money_adyen_transfer_build,
    mock_money_committed
};


static const mock_api_t  mock_adyen_capture_api = {
    "adyen capture", MOCK_ADYEN_KEY_MAX, "application/json", 201,
    mock_adyen_authorized, mock_adyen_refuse,
    mock_capture_adyen_capture_build, mock_capture_committed
};

static const mock_api_t  mock_adyen_cancel_api = {
    "adyen cancel", MOCK_ADYEN_KEY_MAX, "application/json", 201,
    mock_adyen_authorized, mock_adyen_refuse,
    mock_capture_adyen_cancel_build, mock_capture_committed
};


enum MHD_Result
mock_adyen_capture(struct MHD_Connection *c, mock_request_t *r, int capture)
{
    return mock_create(c, r, capture ? &mock_adyen_capture_api
                                     : &mock_adyen_cancel_api);
}


enum MHD_Result
mock_adyen_refund(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_adyen_refund_api);
}


enum MHD_Result
mock_adyen_transfer(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_adyen_transfer_api);
}


/* POST /v71/payments: an off-session charge of a stored method
 * (vault.c) */

static const mock_api_t  mock_adyen_charge_api = {
    "adyen charge", MOCK_ADYEN_KEY_MAX, "application/json", 200,
    mock_adyen_authorized, mock_adyen_refuse,
    mock_vault_adyen_charge_build, mock_vault_committed
};


enum MHD_Result
mock_adyen_charge(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_adyen_charge_api);
}
