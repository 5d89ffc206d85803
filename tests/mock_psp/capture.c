/*
 * Mock PSP: manual capture.  A session registered for manual capture is
 * authorized when paid (events.c); its payment is then captured, in parts
 * where the PSP allows it, or released:
 *   Stripe   POST /v1/payment_intents/{pi}/capture (amount_to_capture,
 *            metadata[capture]; one capture, the rest released) and
 *            /cancel, answered with the intent; payment_intent.succeeded
 *            and payment_intent.canceled follow
 *   Adyen    POST /v71/payments/{pspReference}/captures and /cancels
 *            (201 {"pspReference","status":"received"}); CAPTURE and
 *            CANCELLATION notifications follow
 *   generic  POST /captures and /voids {"reference","payment_id",…}
 *            (201 {"id","status"}); capture.succeeded and void.succeeded
 *            follow
 * Each under its Idempotency-Key with the fault rules of every call
 * (mock_create); webhook_op_failed turns the outcome into a failure
 * (Stripe: none is sent, as Stripe answers a refused capture at once).
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock_psp.h"


#define MOCK_CAPTURE_DELAY_MS  50

/* a capture's reversal (webhook_capture_reversed) after its success */
#define MOCK_CAPTURE_REVERSED_MS  2000


/* the payment's id in the path (Stripe's intent, Adyen's pspReference) */
__thread const char  *mock_capture_path_ref;


static char *
mock_id(const char *prefix, size_t n)
{
    char  *id;

    id = malloc(strlen(prefix) + n + 1);
    if (id == NULL) {
        return NULL;
    }

    strcpy(id, prefix);

    if (mock_random_alnum(id + strlen(prefix), n) != 0) {
        free(id);
        return NULL;
    }

    return id;
}


static const char *
mock_form_get(const mock_form_t *f, const char *key)
{
    size_t  i;

    for (i = 0; i < f->n; i++) {
        if (strcmp(f->pairs[i].key, key) == 0) {
            return f->pairs[i].value;
        }
    }

    return NULL;
}


static json_t *
mock_capture_json(const char *body, size_t len, mock_invalid_t *inv)
{
    json_t  *root;

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(root)) {
        json_decref(root);
        mock_invalid(inv, "invalid_json", "", "the body is not a JSON "
                     "object");
        return NULL;
    }

    return root;
}


/*
 * The capture or release, on the authorized session of the payment ref;
 * the stored operation (what mock_capture_committed reads) or NULL with
 * inv.  amount 0: a release.
 */
static json_t *
mock_capture_apply(const char *dialect, const char *ref, const char *nonce,
    json_int_t amount, const char *currency, json_t *obj, char **response,
    mock_invalid_t *inv)
{
    char     err[256];
    json_t  *s, *stored;
    int      rc;

    rc = mock_session_capture(ref, amount, currency,
                              strcmp(dialect, "stripe") == 0, &s, err,
                              sizeof(err));
    if (rc != 0) {
        json_decref(obj);
        mock_invalid(inv, rc == 404 ? "resource_missing"
                                    : "payment_intent_unexpected_state",
                     "payment", "%s", err);
        return NULL;
    }

    if (strcmp(dialect, "stripe") == 0) {
        json_decref(obj);
        obj = mock_stripe_pi_object(s);
        if (obj != NULL && amount > 0 && nonce != NULL) {
            json_object_set_new(json_object_get(obj, "metadata"), "capture",
                                json_string(nonce));
        }
    }

    *response = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    stored = json_pack("{ss ss so ss sI ss sO* sO*}",
                       "kind", amount > 0 ? "capture" : "void",
                       "dialect", dialect, "object", obj,
                       "nonce", nonce ? nonce : "",
                       "amount_value", amount,
                       "currency_code", currency ? currency
                                                 : json_string_value(
                                                       json_object_get(s,
                                                           "currency")),
                       "account", json_object_get(s, "merchant_account"),
                       "checkout_nonce",
                       json_object_get(s, "client_reference_id"));
    json_object_set_new(stored, "payment_ref_of", json_string(ref));

    /* the store keys an operation by its id: Stripe's answer is the
     * intent, the same for each call on it */
    if (strcmp(dialect, "stripe") == 0) {
        char  *id = mock_id("pic_", 20);

        json_object_set_new(stored, "id", id ? json_string(id) : NULL);
        free(id);

    } else {
        json_object_set(stored, "id",
                        json_object_get(obj, strcmp(dialect, "adyen") == 0
                                             ? "pspReference" : "id"));
    }

    if (stored != NULL
        && !json_is_string(json_object_get(stored, "id")))
    {
        json_decref(stored);
        stored = NULL;
    }

    json_object_set(stored, "session", json_object_get(s, "id"));
    json_decref(s);

    if (stored == NULL || *response == NULL) {
        json_decref(stored);
        free(*response);
        *response = NULL;
        mock_invalid(inv, NULL, "", "out of memory");
        return NULL;
    }

    return stored;
}


/* --- Stripe ------------------------------------------------------------ */

static json_t *
mock_capture_stripe(const char *body, size_t len, mock_invalid_t *inv,
    char **response, int capture)
{
    char         err[256];
    json_t      *stored;
    int64_t      amount;
    const char  *s;
    mock_form_t  form;

    if (mock_form_parse(body, len, &form, err, sizeof(err)) != 0) {
        mock_invalid(inv, "parameter_invalid", "", "%s", err);
        return NULL;
    }

    stored = NULL;
    amount = 0;

    if (capture) {
        s = mock_form_get(&form, "amount_to_capture");

        if (s == NULL || mock_parse_int64(s, &amount) != 0 || amount <= 0) {
            mock_invalid(inv, "parameter_invalid_integer",
                         "amount_to_capture", "Invalid positive integer");
            goto done;
        }
    }

    stored = mock_capture_apply("stripe", mock_capture_path_ref,
                                capture ? mock_form_get(&form,
                                                        "metadata[capture]")
                                        : NULL,
                                (json_int_t) amount, NULL, json_object(),
                                response, inv);

done:

    mock_form_free(&form);
    return stored;
}


json_t *
mock_capture_stripe_capture_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    (void) fault;
    return mock_capture_stripe(body, len, inv, response, 1);
}


json_t *
mock_capture_stripe_cancel_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    (void) fault;
    return mock_capture_stripe(body, len, inv, response, 0);
}


/* --- Adyen ------------------------------------------------------------- */

static json_t *
mock_capture_adyen(const char *body, size_t len, mock_invalid_t *inv,
    char **response, int capture)
{
    char         ref[17];
    json_t      *root, *obj, *stored, *a;
    json_int_t   value;
    const char  *cur, *reference, *account;

    root = mock_capture_json(body, len, inv);
    if (root == NULL) {
        return NULL;
    }

    stored = NULL;
    reference = json_string_value(json_object_get(root, "reference"));
    account = json_string_value(json_object_get(root, "merchantAccount"));
    a = json_object_get(root, "amount");
    cur = json_string_value(json_object_get(a, "currency"));
    value = json_integer_value(json_object_get(a, "value"));

    if (account == NULL
        || (capture && (cur == NULL || value <= 0)))
    {
        mock_invalid(inv, "validation", "amount", "Required field "
                     "'amount' or 'merchantAccount' is not provided or "
                     "not valid.");
        goto done;
    }

    if (mock_random_digits(ref, 16) != 0) {
        mock_invalid(inv, NULL, "", "No randomness.");
        goto done;
    }

    obj = json_pack("{ss ss ss ss ss}", "merchantAccount", account,
                    "paymentPspReference", mock_capture_path_ref,
                    "pspReference", ref,
                    "reference", reference ? reference : "",
                    "status", "received");
    if (obj != NULL && capture) {
        json_object_set(obj, "amount", a);
    }

    stored = mock_capture_apply("adyen", mock_capture_path_ref, reference,
                                capture ? value : 0, cur, obj, response,
                                inv);

done:

    json_decref(root);
    return stored;
}


json_t *
mock_capture_adyen_capture_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    (void) fault;
    return mock_capture_adyen(body, len, inv, response, 1);
}


json_t *
mock_capture_adyen_cancel_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    (void) fault;
    return mock_capture_adyen(body, len, inv, response, 0);
}


/* --- generic ----------------------------------------------------------- */

static json_t *
mock_capture_generic(const char *body, size_t len, mock_invalid_t *inv,
    char **response, int capture)
{
    char        *id;
    json_t      *root, *obj, *stored;
    json_int_t   amount;
    const char  *cur, *reference, *payment;

    root = mock_capture_json(body, len, inv);
    if (root == NULL) {
        return NULL;
    }

    stored = NULL;
    amount = 0;
    reference = json_string_value(json_object_get(root, "reference"));
    payment = json_string_value(json_object_get(root, "payment_id"));
    cur = json_string_value(json_object_get(root, "currency"));

    if (reference == NULL || payment == NULL
        || (capture
            && (cur == NULL
                || mock_generic_decimal(json_string_value(
                                            json_object_get(root, "amount")),
                                        cur, &amount) != 0)))
    {
        mock_invalid(inv, "invalid_request", "amount", "reference, "
                     "payment_id, amount and currency are required");
        goto done;
    }

    id = mock_id(capture ? "gcp_" : "gvd_", 20);
    obj = id ? json_pack("{ss ss}", "id", id, "status", "pending") : NULL;
    free(id);

    stored = mock_capture_apply("generic", payment, reference, amount, cur,
                                obj, response, inv);

done:

    json_decref(root);
    return stored;
}


json_t *
mock_capture_generic_capture_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    (void) fault;
    return mock_capture_generic(body, len, inv, response, 1);
}


json_t *
mock_capture_generic_cancel_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    (void) fault;
    return mock_capture_generic(body, len, inv, response, 0);
}


/* --- the outcome ------------------------------------------------------- */

/* The operation committed: its outcome as the dialect's signed webhook. */
void
mock_capture_committed(const json_t *stored, const char *key)
{
    int                    capture, failed;
    char                   cur[4], amount[32];
    size_t                 i;
    json_t                *obj, *rev;
    json_int_t             value;
    const char            *dialect, *id, *nonce, *pref, *c;
    mock_webhook_fault_t   wf;

    mock_store_webhook_fault(key, &wf);

    dialect = json_string_value(json_object_get(stored, "dialect"));
    capture = strcmp(json_string_value(json_object_get(stored, "kind")),
                     "capture") == 0;
    id = json_string_value(json_object_get(stored, "id"));
    nonce = json_string_value(json_object_get(stored, "nonce"));
    pref = json_string_value(json_object_get(stored, "payment_ref_of"));
    value = json_integer_value(json_object_get(stored, "amount_value"));
    c = json_string_value(json_object_get(stored, "currency_code"));
    failed = wf.op_failed;

    mock_books_op(stored, failed);

    /* Stripe's one capture releases the rest */
    if (capture && !failed && strcmp(dialect, "stripe") == 0) {
        mock_books_release_rest(pref);
    }

    /* the reversal below is decided now: no longer captured */
    if (capture && !failed && wf.capture_reversed
        && strcmp(dialect, "stripe") != 0)
    {
        mock_books_capture_reversed(id);
    }

    for (i = 0; c != NULL && i < 3 && c[i]; i++) {
        cur[i] = (char) (c[i] >= 'a' && c[i] <= 'z' ? c[i] - 'a' + 'A'
                                                    : c[i]);
    }
    cur[i] = '\0';

    if (wf.never) {
        mock_log("%s %s: no webhook (webhook_never)",
                 capture ? "capture" : "void", id ? id : "");
        return;
    }

    if (strcmp(dialect, "stripe") == 0) {
        if (failed) {
            return;
        }

        obj = json_deep_copy(json_object_get(stored, "object"));
        mock_stripe_webhook_object(capture ? "payment_intent.succeeded"
                                           : "payment_intent.canceled",
                                   obj, nonce, &wf, MOCK_CAPTURE_DELAY_MS);

    } else if (strcmp(dialect, "adyen") == 0) {
        mock_adyen_webhook_item(capture ? "CAPTURE" : "CANCELLATION", id,
            pref, json_string_value(json_object_get(stored, "account")),
            nonce, value, cur, !failed, nonce, &wf, MOCK_CAPTURE_DELAY_MS);

        /* the scheme refused it after Adyen had confirmed it: the same
         * modification's CAPTURE_FAILED, once the CAPTURE is delivered */
        if (capture && !failed && wf.capture_reversed) {
            mock_adyen_webhook_item("CAPTURE_FAILED", id, pref,
                json_string_value(json_object_get(stored, "account")),
                nonce, value, cur, 1, nonce, &wf,
                MOCK_CAPTURE_REVERSED_MS);
        }

    } else {
        obj = json_pack("{ss ss ss}", "reference", nonce,
                        capture ? "capture_id" : "void_id", id,
                        "payment_id", pref);

        if (obj != NULL && capture
            && mock_format_minor(amount, sizeof(amount), value, cur) == 0)
        {
            json_object_set_new(obj, "amount", json_string(amount));
            json_object_set_new(obj, "currency", json_string(cur));
        }

        if (capture && !failed && wf.capture_reversed && obj != NULL) {
            rev = json_deep_copy(obj);
            mock_generic_webhook_json("capture.failed", rev, nonce, &wf,
                                      MOCK_CAPTURE_REVERSED_MS);
        }

        mock_generic_webhook_json(capture ? (failed ? "capture.failed"
                                                    : "capture.succeeded")
                                          : (failed ? "void.failed"
                                                    : "void.succeeded"),
                                  obj, nonce, &wf, MOCK_CAPTURE_DELAY_MS);
    }
}


/*
 * POST /_control/captures {"payment_ref": "...", "amount": N (the PSP's
 * minor units; default all that is capturable)} -> {"id": "..."}: a
 * capture made at the PSP itself (its dashboard, Adyen's Customer Area),
 * not through its API by the gateway: the session's payment is captured
 * (Stripe: once, the rest released) and the dialect's event follows,
 * naming the checkout's own reference and no capture nonce: Stripe
 * payment_intent.succeeded without metadata.capture, Adyen CAPTURE with
 * the session's merchantReference, generic capture.succeeded with the
 * session's reference.
 */
enum MHD_Result
mock_capture_control(struct MHD_Connection *c, const char *method,
    mock_request_t *r)
{
    int                    stripe;
    char                   err[256], cur[4], amount[32];
    char                  *id;
    size_t                 i;
    json_t                *root, *pay, *s, *obj;
    json_int_t             value;
    const char            *ref, *dialect, *subject, *cc;
    mock_webhook_fault_t   wf;

    if (strcmp(method, "POST") != 0) {
        return mock_send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                              json_pack("{ss}", "error", "POST only"));
    }

    root = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    ref = json_string_value(json_object_get(root, "payment_ref"));
    pay = ref ? mock_session_by_payment(ref) : NULL;

    if (pay == NULL) {
        json_decref(root);
        return mock_send_json(c, MHD_HTTP_NOT_FOUND,
                              json_pack("{ss}", "error", "no such payment"));
    }

    dialect = json_string_value(json_object_get(pay, "dialect"));
    stripe = dialect == NULL || strcmp(dialect, "stripe") == 0;
    value = json_is_integer(json_object_get(root, "amount"))
            ? json_integer_value(json_object_get(root, "amount"))
            : json_integer_value(json_object_get(pay, "amount_capturable"));

    if (value <= 0
        || mock_session_capture(ref, value, NULL, stripe, &s, err,
                                sizeof(err)) != 0)
    {
        json_decref(pay);
        json_decref(root);
        return mock_send_json(c, MHD_HTTP_BAD_REQUEST,
                              json_pack("{ss}", "error",
                                        value <= 0 ? "nothing to capture"
                                                   : err));
    }

    subject = json_string_value(json_object_get(s, "client_reference_id"));
    cc = json_string_value(json_object_get(s, "currency"));

    for (i = 0; cc != NULL && i < 3 && cc[i]; i++) {
        cur[i] = (char) (cc[i] >= 'a' && cc[i] <= 'z' ? cc[i] - 'a' + 'A'
                                                      : cc[i]);
    }
    cur[i] = '\0';

    mock_store_webhook_fault(subject ? subject : "", &wf);
    wf.op_failed = 0;
    wf.capture_reversed = 0;

    id = NULL;

    if (stripe) {
        /* the intent as the dashboard left it: our checkout's nonce in
         * its metadata, no capture of ours */
        obj = mock_stripe_pi_object(s);
        id = strdup(ref);
        mock_stripe_webhook_object("payment_intent.succeeded", obj,
                                   subject ? subject : ref, &wf,
                                   MOCK_CAPTURE_DELAY_MS);

    } else if (strcmp(dialect, "adyen") == 0) {
        id = malloc(17);
        if (id != NULL && mock_random_digits(id, 16) != 0) {
            free(id);
            id = NULL;
        }

        if (id != NULL) {
            mock_adyen_webhook_item("CAPTURE", id, ref,
                json_string_value(json_object_get(s, "merchant_account")),
                subject ? subject : "", value, cur, 1,
                subject ? subject : ref, &wf, MOCK_CAPTURE_DELAY_MS);
        }

    } else {
        id = mock_id("gcp_", 20);
        obj = id ? json_pack("{ss ss ss}", "reference", subject ? subject : "",
                             "capture_id", id, "payment_id", ref)
                 : NULL;

        if (obj != NULL
            && mock_format_minor(amount, sizeof(amount), value, cur) == 0)
        {
            json_object_set_new(obj, "amount", json_string(amount));
            json_object_set_new(obj, "currency", json_string(cur));
            mock_generic_webhook_json("capture.succeeded", obj,
                                      subject ? subject : ref, &wf,
                                      MOCK_CAPTURE_DELAY_MS);

        } else {
            json_decref(obj);
        }
    }

    mock_log("capture %s of payment %s made at the dashboard: %lld",
             id ? id : "-", ref, (long long) value);

    /* the PSP's books: captured, under no nonce of the gateway's */
    if (id != NULL) {
        obj = json_pack("{ss ss ss sI ss}", "kind", "capture", "id", id,
                        "nonce", "", "amount_value", value,
                        "payment_ref_of", ref);
        if (obj != NULL) {
            mock_books_op(obj, 0);
            if (stripe) {
                mock_books_release_rest(ref);
            }
        }
        json_decref(obj);
    }

    json_decref(s);
    json_decref(pay);
    json_decref(root);

    if (id == NULL) {
        return mock_send_json(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              json_pack("{ss}", "error", "out of memory"));
    }

    obj = json_pack("{ss sI}", "id", id, "amount", value);
    free(id);

    return mock_send_json(c, MHD_HTTP_OK, obj);
}


/* --- routes ------------------------------------------------------------ */

/* "/<prefix>{ref}<suffix>" into ref: 1, or 0 when url is not one */
static int
mock_capture_path(const char *url, const char *prefix, const char *suffix,
    char *ref, size_t size)
{
    size_t  n, p, s;

    n = strlen(url);
    p = strlen(prefix);
    s = strlen(suffix);

    if (n <= p + s || strncmp(url, prefix, p) != 0
        || strcmp(url + n - s, suffix) != 0 || n - p - s >= size)
    {
        return 0;
    }

    memcpy(ref, url + p, n - p - s);
    ref[n - p - s] = '\0';

    return strchr(ref, '/') == NULL;
}


enum MHD_Result
mock_capture_route(struct MHD_Connection *c, const char *method,
    const char *url, mock_request_t *r, int *handled)
{
    char             ref[80];
    enum MHD_Result  rc;

    *handled = 0;

    if (strcmp(method, "POST") != 0) {
        return MHD_NO;
    }

    rc = MHD_NO;
    *handled = 1;

    if (mock_capture_path(url, "/v1/payment_intents/", "/capture", ref,
                          sizeof(ref)))
    {
        mock_capture_path_ref = ref;
        rc = mock_stripe_capture(c, r, 1);

    } else if (mock_capture_path(url, "/v1/payment_intents/", "/cancel", ref,
                                 sizeof(ref)))
    {
        mock_capture_path_ref = ref;
        rc = mock_stripe_capture(c, r, 0);

    } else if (mock_conf.adyen_secret != NULL
               && mock_capture_path(url, "/v71/payments/", "/captures", ref,
                                    sizeof(ref)))
    {
        mock_capture_path_ref = ref;
        rc = mock_adyen_capture(c, r, 1);

    } else if (mock_conf.adyen_secret != NULL
               && mock_capture_path(url, "/v71/payments/", "/cancels", ref,
                                    sizeof(ref)))
    {
        mock_capture_path_ref = ref;
        rc = mock_adyen_capture(c, r, 0);

    } else if (mock_conf.generic_secret != NULL
               && strcmp(url, "/captures") == 0)
    {
        rc = mock_generic_capture(c, r, 1);

    } else if (mock_conf.generic_secret != NULL
               && strcmp(url, "/voids") == 0)
    {
        rc = mock_generic_capture(c, r, 0);

    } else {
        *handled = 0;
    }

    mock_capture_path_ref = NULL;

    return rc;
}
