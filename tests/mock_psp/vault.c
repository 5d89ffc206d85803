/*
 * Mock PSP: saved payment methods and the charges that use them, in the
 * three dialects (README.md, "Saved payment methods").
 *
 *   saving   a session registered to save the shopper's method (Stripe
 *            payment_intent_data[setup_future_usage] with customer or
 *            customer_creation, Adyen storePaymentMethodMode "enabled"
 *            with shopperReference and recurringProcessingModel, generic
 *            save_payment_method) stores it in the vault when the shopper
 *            pays, and says so in the dialect's event: Stripe's
 *            payment_intent.succeeded with payment_method, customer and
 *            setup_future_usage; Adyen's RECURRING_CONTRACT (its
 *            pspReference the storedPaymentMethodId); generic
 *            payment_method.saved.
 *   charging Stripe POST /v1/payment_intents (off_session, confirm),
 *            Adyen POST /v71/payments (storedPaymentMethodId, ContAuth),
 *            generic POST /payments: the method must be in the vault,
 *            active, and the customer's it names.  The charge's reference
 *            (Stripe metadata[charge], Adyen reference, generic reference)
 *            may have a rule (POST /_control/charges) that declines it,
 *            asks for authentication, or says the card expired, once.  A
 *            paid charge is kept like a paid session (refunds find it by
 *            its payment id) and sent as the dialect's success event.
 *
 * Every create goes through mock_create(): authentication, idempotency,
 * the fault rules.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock_psp.h"


#define MOCK_CHARGE_DELAY_MS  50


static pthread_mutex_t  mock_vault_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t          *mock_vault;        /* token -> method */
static json_t          *mock_vault_rules;  /* reference -> {outcome, code} */


static void mock_vault_event(const json_t *session, json_t *m,
    const mock_webhook_fault_t *wf);


void
mock_vault_reset(void)
{
    pthread_mutex_lock(&mock_vault_lock);
    json_decref(mock_vault);
    json_decref(mock_vault_rules);
    mock_vault = NULL;
    mock_vault_rules = NULL;
    pthread_mutex_unlock(&mock_vault_lock);
}


static char *
mock_vault_id(const char *prefix, size_t n, int digits)
{
    char  *id;

    id = malloc(strlen(prefix) + n + 1);
    if (id == NULL) {
        return NULL;
    }

    strcpy(id, prefix);

    if ((digits ? mock_random_digits(id + strlen(prefix), n)
                : mock_random_alnum(id + strlen(prefix), n))
        != 0)
    {
        free(id);
        return NULL;
    }

    return id;
}


/*
 * The shopper paid a session that asked to save the method: the method
 * in the vault (a copy: {"token", "dialect", "customer", "reference",
 * "usage", "status", "brand", "last4", "exp_month", "exp_year"}), or NULL
 * when the session asked for nothing.  Stripe's customer is the one the
 * session named, or a new one.
 */
json_t *
mock_vault_save(const json_t *session)
{
    char        *token, *cus;
    json_t      *m, *copy;
    const char  *d, *usage, *customer;

    usage = json_string_value(json_object_get(session, "save_usage"));
    if (usage == NULL) {
        return NULL;
    }

    d = json_string_value(json_object_get(session, "dialect"));
    d = d ? d : "stripe";
    customer = json_string_value(json_object_get(session, "save_customer"));

    token = strcmp(d, "adyen") == 0 ? mock_vault_id("", 16, 1)
            : strcmp(d, "generic") == 0 ? mock_vault_id("gpm_", 24, 0)
            : mock_vault_id("pm_", 24, 0);
    cus = customer == NULL ? mock_vault_id("cus_", 14, 0) : NULL;

    if (token == NULL || (customer == NULL && cus == NULL)) {
        free(token);
        free(cus);
        return NULL;
    }

    m = json_pack("{ss ss ss sO ss ss ss ss si si}",
                  "token", token, "dialect", d,
                  "customer", customer ? customer : cus,
                  "reference", json_object_get(session,
                                               "client_reference_id"),
                  "usage", usage, "status", "active",
                  "brand", "visa", "last4", "4242",
                  "exp_month", 12, "exp_year", 2030);
    free(token);
    free(cus);

    if (m == NULL) {
        return NULL;
    }

    /* Adyen keeps a token under the merchant account the session was
     * made for: its delete names that account, or finds nothing */
    if (strcmp(d, "adyen") == 0
        && json_is_string(json_object_get(session, "merchant_account")))
    {
        json_object_set(m, "account",
                        json_object_get(session, "merchant_account"));
    }

    copy = json_deep_copy(m);

    pthread_mutex_lock(&mock_vault_lock);

    if (mock_vault == NULL) {
        mock_vault = json_object();
    }

    json_object_set_new(mock_vault,
                        json_string_value(json_object_get(m, "token")), m);

    pthread_mutex_unlock(&mock_vault_lock);

    mock_log("vault: %s method saved for %s", d,
             json_string_value(json_object_get(copy, "reference")));

    return copy;
}


/* The method of token (a copy), or NULL. */
static json_t *
mock_vault_get(const char *token)
{
    json_t  *m;

    pthread_mutex_lock(&mock_vault_lock);
    m = token ? json_deep_copy(json_object_get(mock_vault, token)) : NULL;
    pthread_mutex_unlock(&mock_vault_lock);

    return m;
}


/* The method the session of reference saved (a copy), or NULL. */
json_t *
mock_vault_of_reference(const char *reference)
{
    json_t      *m, *v;
    const char  *key, *ref;

    m = NULL;

    pthread_mutex_lock(&mock_vault_lock);
    json_object_foreach(mock_vault, key, v) {
        ref = json_string_value(json_object_get(v, "reference"));

        if (reference != NULL && ref != NULL && strcmp(ref, reference) == 0) {
            m = json_deep_copy(v);
            break;
        }
    }
    pthread_mutex_unlock(&mock_vault_lock);

    return m;
}


/*
 * A setup session as its look-up shows it (GET, the sweeper's): Stripe's
 * setup_intent expanded (expand[]=setup_intent) into the intent
 * {id, object, status, usage, customer, payment_method}, "succeeded" with
 * the saved method once the shopper completed it; the generic answer
 * given "payment_method" and its display fields (a setup's, or a paid
 * session's that saved it).  Nothing for a session that saves nothing.
 */
void
mock_vault_lookup_setup(json_t *session, const char *dialect)
{
    json_t      *m, *si;
    const char  *id;

    /* Stripe's mode=setup; the others' zero-amount save, and the generic
     * contract's paid session that saved the method (its look-up names
     * it too) */
    if (strcmp(dialect, "generic") == 0
        ? json_object_get(session, "save_usage") == NULL
        : (!mock_session_is_setup(session)
           && (json_object_get(session, "save_usage") == NULL
               || json_integer_value(json_object_get(session,
                                                     "amount_total"))
                  != 0)))
    {
        return;
    }

    m = mock_vault_of_reference(json_string_value(
            json_object_get(session, "client_reference_id")));

    if (strcmp(dialect, "stripe") == 0) {
        id = json_string_value(json_object_get(session, "setup_intent"));

        if (id != NULL) {
            si = json_pack("{ss ss ss sO* so so}", "id", id,
                           "object", "setup_intent",
                           "status", m ? "succeeded"
                                       : "requires_payment_method",
                           "usage", json_object_get(session, "save_usage"),
                           "customer", m ? json_incref(json_object_get(m,
                                               "customer")) : json_null(),
                           "payment_method", m ? json_incref(
                                                     json_object_get(m,
                                                         "token"))
                                               : json_null());
            if (si != NULL) {
                json_object_set_new(session, "setup_intent", si);
            }
        }

    } else if (m != NULL) {
        json_object_set(session, "payment_method",
                        json_object_get(m, "token"));
        json_object_set(session, "brand", json_object_get(m, "brand"));
        json_object_set(session, "last4", json_object_get(m, "last4"));
        json_object_set(session, "exp_month",
                        json_object_get(m, "exp_month"));
        json_object_set(session, "exp_year", json_object_get(m, "exp_year"));
    }

    json_decref(m);
}


/* The rule for a charge's reference, taken (it applies once): 0 with
 * outcome (and code) set, or -1 when there is none. */
static int
mock_vault_take_rule(const char *reference, char *outcome, size_t osize,
    char *code, size_t csize)
{
    int      rc;
    json_t  *rule;

    rc = -1;

    pthread_mutex_lock(&mock_vault_lock);

    rule = reference ? json_object_get(mock_vault_rules, reference) : NULL;

    if (rule != NULL) {
        snprintf(outcome, osize, "%s",
                 json_string_value(json_object_get(rule, "outcome")));
        snprintf(code, csize, "%s",
                 json_string_value(json_object_get(rule, "code"))
                 ? json_string_value(json_object_get(rule, "code")) : "");
        json_object_del(mock_vault_rules, reference);
        rc = 0;
    }

    pthread_mutex_unlock(&mock_vault_lock);

    return rc;
}


/*
 * Whether the charge may use the method: 0, or -1 with why (a missing or
 * detached method, another dialect's, another customer's).
 */
static int
mock_vault_usable(const json_t *m, const char *dialect, const char *customer,
    const char **why)
{
    if (m == NULL
        || strcmp(json_string_value(json_object_get(m, "dialect")), dialect)
           != 0)
    {
        *why = "no such payment method";
        return -1;
    }

    if (strcmp(json_string_value(json_object_get(m, "status")), "active")
        != 0)
    {
        *why = "the payment method was detached";
        return -1;
    }

    if (customer == NULL
        || strcmp(json_string_value(json_object_get(m, "customer")),
                  customer) != 0)
    {
        *why = "the payment method does not belong to this customer";
        return -1;
    }

    return 0;
}


/*
 * What a charge keeps: a paid one like a paid session (refunds, disputes
 * and the books find it by payment_ref; a manual capture's, its
 * captures and releases too), with the stored answer; status
 * is the answer's HTTP status ("_answer_status", which mock_create
 * takes out).
 */
static json_t *
mock_vault_charge_record(const char *dialect, const char *id,
    const char *reference, json_int_t amount, const char *currency,
    int paid, int manual, const char *account, json_t *answer,
    unsigned status, char **response)
{
    json_t  *s;

    *response = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);

    s = json_pack("{ss ss ss sI ss ss ss ss sb si}",
                  "id", id, "kind", "charge", "charge_dialect", dialect,
                  "amount_total", amount, "currency", currency,
                  "client_reference_id", reference ? reference : "",
                  "status", paid ? "complete" : "expired",
                  "payment_status", paid ? "paid" : "unpaid",
                  "livemode", 0, "_answer_status", (int) status);

    if (s == NULL || *response == NULL) {
        json_decref(s);
        free(*response);
        *response = NULL;
        return NULL;
    }

    /* Stripe's records carry no "dialect" (sessions' rule) */
    if (strcmp(dialect, "stripe") != 0) {
        json_object_set_new(s, "dialect", json_string(dialect));
    }

    if (paid) {
        json_object_set_new(s, "payment_ref", json_string(id));
    }

    /* a manual capture's charge is a hold, captured or released later
     * as a manual-capture session's (capture.c): nothing captured yet */
    if (paid && manual) {
        json_object_set_new(s, "capture", json_string("manual"));
        json_object_set_new(s, "payment_status", json_string("unpaid"));
        json_object_set_new(s, "amount_capturable", json_integer(amount));
        json_object_set_new(s, "amount_captured", json_integer(0));
    }

    if (account != NULL) {
        json_object_set_new(s, "merchant_account", json_string(account));
    }

    return s;
}


static const char *
mock_form_value(const mock_form_t *f, const char *key)
{
    size_t  i;

    for (i = 0; i < f->n; i++) {
        if (strcmp(f->pairs[i].key, key) == 0) {
            return f->pairs[i].value;
        }
    }

    return NULL;
}


/* --- Stripe: POST /v1/payment_intents ------------------------------------ */

json_t *
mock_vault_stripe_charge_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    int          manual;
    char         err[256], outcome[32], code[64], up[4], *id;
    size_t       i, j;
    int64_t      amount;
    json_t      *m, *md, *pi, *s;
    const char  *pm, *cus, *cur, *ref, *why, *k, *cm;
    mock_form_t  form;

    static const char  *known[] = {
        "amount", "currency", "customer", "payment_method",
        "payment_method_types[0]", "off_session", "confirm",
        "capture_method", NULL
    };

    (void) fault;

    if (mock_form_parse(body, len, &form, err, sizeof(err)) != 0) {
        mock_invalid(inv, "parameter_invalid", "", "%s", err);
        return NULL;
    }

    s = NULL;
    m = NULL;
    md = json_object();

    for (i = 0; i < form.n; i++) {
        k = form.pairs[i].key;

        if (strncmp(k, "metadata[", 9) == 0 && k[strlen(k) - 1] == ']') {
            json_object_setn_new(md, k + 9, strlen(k) - 10,
                                 json_string(form.pairs[i].value));
            continue;
        }

        for (why = NULL, j = 0; known[j] != NULL; j++) {
            if (strcmp(k, known[j]) == 0) {
                why = k;
                break;
            }
        }

        if (why == NULL) {
            mock_invalid(inv, "parameter_unknown", k,
                         "Received unknown parameter: %s", k);
            goto done;
        }
    }

    pm = mock_form_value(&form, "payment_method");
    cus = mock_form_value(&form, "customer");
    cur = mock_form_value(&form, "currency");
    ref = json_string_value(json_object_get(md, "charge"));

    if (mock_form_value(&form, "amount") == NULL
        || mock_parse_int64(mock_form_value(&form, "amount"), &amount) != 0
        || amount < 1)
    {
        mock_invalid(inv, "parameter_invalid_integer", "amount",
                     "Invalid positive integer");
        goto done;
    }

    /* Stripe writes currencies in lower case */
    if (cur == NULL || strlen(cur) != 3) {
        mock_invalid(inv, "parameter_invalid", "currency",
                     "Invalid currency");
        goto done;
    }

    for (i = 0; i < 3; i++) {
        up[i] = (char) (cur[i] & ~0x20);
    }
    up[3] = '\0';

    if (cur[0] < 'a' || !mock_currency_valid(up)) {
        mock_invalid(inv, "parameter_invalid", "currency",
                     "Invalid currency");
        goto done;
    }

    /* the merchant-initiated payment: confirmed at once, without the
     * customer */
    if (mock_form_value(&form, "off_session") == NULL
        || strcmp(mock_form_value(&form, "off_session"), "true") != 0
        || mock_form_value(&form, "confirm") == NULL
        || strcmp(mock_form_value(&form, "confirm"), "true") != 0)
    {
        mock_invalid(inv, "parameter_invalid", "off_session",
                     "This mock charges saved methods off_session=true, "
                     "confirm=true only.");
        goto done;
    }

    /* authorize now, capture later: the intent waits in
     * requires_capture */
    cm = mock_form_value(&form, "capture_method");

    if (cm != NULL && strcmp(cm, "manual") != 0
        && strcmp(cm, "automatic") != 0)
    {
        mock_invalid(inv, "parameter_invalid", "capture_method",
                     "Invalid capture_method: must be one of automatic, "
                     "automatic_async, or manual");
        goto done;
    }

    manual = cm != NULL && strcmp(cm, "manual") == 0;

    m = mock_vault_get(pm);

    if (mock_vault_usable(m, "stripe", cus, &why) != 0) {
        mock_invalid(inv, "resource_missing", "payment_method", "%s: '%s'",
                     why, pm ? pm : "");
        goto done;
    }

    id = mock_vault_id("pi_", 24, 0);
    if (id == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
        goto done;
    }

    outcome[0] = '\0';
    code[0] = '\0';
    (void) mock_vault_take_rule(ref, outcome, sizeof(outcome), code,
                                sizeof(code));

    pi = json_pack("{ss ss sI sI ss ss ss ss sO ss}", "id", id,
                   "object", "payment_intent", "amount", (json_int_t) amount,
                   "amount_received",
                   (json_int_t) (outcome[0] == '\0' && !manual ? amount : 0),
                   "currency", cur, "customer", cus, "payment_method", pm,
                   "status", outcome[0] == '\0'
                             ? (manual ? "requires_capture" : "succeeded")
                             : strcmp(outcome, "authentication_required")
                               == 0 ? "requires_action"
                             : "requires_payment_method",
                   "metadata", md,
                   "capture_method", manual ? "manual" : "automatic");

    if (pi != NULL && manual) {
        json_object_set_new(pi, "amount_capturable", json_integer(
                                outcome[0] == '\0' ? amount : 0));
    }

    if (outcome[0] == '\0') {
        s = mock_vault_charge_record("stripe", id, ref, amount, cur, 1,
                                     manual, NULL, pi, MHD_HTTP_OK,
                                     response);

        /* its events (the payment's; a manual capture's capture and
         * release) carry the charge's metadata back whole, as Stripe's
         * intents do */
        if (s != NULL) {
            json_object_set(s, "payment_intent_metadata", md);
        }

    } else {
        /* Stripe's card error: 402 with the intent it left behind */
        s = mock_vault_charge_record("stripe", id, ref, amount, cur, 0, 0,
                NULL, json_pack("{s{ss ss ss ss so}}", "error",
                          "type", "card_error",
                          "code", strcmp(outcome, "authentication_required")
                                  == 0 ? "authentication_required"
                                  : strcmp(outcome, "expired_card") == 0
                                  ? "expired_card" : "card_declined",
                          "decline_code",
                          code[0] ? code
                          : strcmp(outcome, "expired_card") == 0
                          ? "expired_card" : "generic_decline",
                          "message", "Your card was declined.",
                          "payment_intent", pi),
                402, response);

        /* the intent's payment_failed, sent once committed, for a
         * decline (last_payment_error.code its card error) and for an
         * off-session charge its issuer wanted the shopper for too
         * (authentication_required), while the gateway turns the 402
         * into a hosted page */
        if (s != NULL) {
            json_object_set_new(s, "charge_failure", json_string(
                strcmp(outcome, "authentication_required") == 0
                ? "authentication_required"
                : strcmp(outcome, "expired_card") == 0 ? "expired_card"
                : "card_declined"));
        }
    }

    free(id);

    if (s == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
    }

done:

    json_decref(m);
    json_decref(md);
    mock_form_free(&form);
    return s;
}


/* --- Adyen: POST /v71/payments -------------------------------------------- */

json_t *
mock_vault_adyen_charge_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    int          manual;
    char         outcome[32], code[64], *id;
    json_t      *req, *pmj, *m, *amount, *s, *ans;
    json_int_t   value;
    const char  *token, *shopper, *ref, *account, *cur, *why, *inter, *mc;

    (void) fault;

    req = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        mock_invalid(inv, "702", "", "Structure of the request is not "
                     "valid JSON");
        return NULL;
    }

    s = NULL;
    m = NULL;
    pmj = json_object_get(req, "paymentMethod");
    token = json_string_value(json_object_get(pmj, "storedPaymentMethodId"));
    shopper = json_string_value(json_object_get(req, "shopperReference"));
    ref = json_string_value(json_object_get(req, "reference"));
    account = json_string_value(json_object_get(req, "merchantAccount"));
    inter = json_string_value(json_object_get(req, "shopperInteraction"));
    amount = json_object_get(req, "amount");
    cur = json_string_value(json_object_get(amount, "currency"));
    value = json_integer_value(json_object_get(amount, "value"));

    /* authorize now, capture later (additionalData.manualCapture, as a
     * session's) */
    mc = json_string_value(json_object_get(json_object_get(req,
                                                           "additionalData"),
                                           "manualCapture"));
    manual = mc != NULL && strcmp(mc, "true") == 0;

    if (token == NULL || ref == NULL || account == NULL || cur == NULL
        || value <= 0)
    {
        mock_invalid(inv, "100", "paymentMethod", "Required field "
                     "'paymentMethod.storedPaymentMethodId', 'reference', "
                     "'merchantAccount' or 'amount' is not provided.");
        goto done;
    }

    /* a stored method charged without the shopper */
    if (inter == NULL || strcmp(inter, "ContAuth") != 0
        || json_object_get(req, "recurringProcessingModel") == NULL)
    {
        mock_invalid(inv, "14_0031", "shopperInteraction", "A stored "
                     "payment method is charged without the shopper with "
                     "shopperInteraction ContAuth and its "
                     "recurringProcessingModel.");
        goto done;
    }

    m = mock_vault_get(token);

    if (mock_vault_usable(m, "adyen", shopper, &why) != 0) {
        mock_invalid(inv, "800", "storedPaymentMethodId", "Contract not "
                     "found (%s)", why);
        goto done;
    }

    /* Adyen keeps a token under the merchant account the session that
     * stored it was made for: a charge under another finds nothing */
    if (json_is_string(json_object_get(m, "account"))
        && strcmp(json_string_value(json_object_get(m, "account")), account)
           != 0)
    {
        mock_invalid(inv, "800", "storedPaymentMethodId", "Contract not "
                     "found (the payment method is kept under another "
                     "merchant account)");
        goto done;
    }

    id = mock_vault_id("", 16, 1);
    if (id == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
        goto done;
    }

    outcome[0] = '\0';
    code[0] = '\0';
    (void) mock_vault_take_rule(ref, outcome, sizeof(outcome), code,
                                sizeof(code));

    ans = json_pack("{ss ss s{sIss}}", "pspReference", id,
                    "merchantReference", ref,
                    "amount", "value", value, "currency", cur);

    if (ans != NULL && outcome[0] == '\0') {
        json_object_set_new(ans, "resultCode", json_string("Authorised"));

    } else if (ans != NULL
               && strcmp(outcome, "authentication_required") == 0)
    {
        json_object_set_new(ans, "resultCode",
                            json_string("IdentifyShopper"));

    } else if (ans != NULL) {
        json_object_set_new(ans, "resultCode", json_string("Refused"));
        json_object_set_new(ans, "refusalReason",
                            json_string(strcmp(outcome, "expired_card") == 0
                                        ? "Expired Card"
                                        : code[0] ? code
                                        : "Refused"));
    }

    s = ans ? mock_vault_charge_record("adyen", id, ref, value, cur,
                                       outcome[0] == '\0', manual, account,
                                       ans, MHD_HTTP_OK, response)
            : NULL;
    free(id);

    /* a refusal's AUTHORISATION (success false), sent once committed, as
     * Adyen sends one for every payment; an action for the shopper has
     * none until the shopper ends it */
    if (s != NULL && outcome[0] != '\0'
        && strcmp(outcome, "authentication_required") != 0)
    {
        json_object_set_new(s, "charge_failure", json_string("refused"));
    }

    if (s == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
    }

done:

    json_decref(m);
    json_decref(req);
    return s;
}


/* --- generic: POST /payments ---------------------------------------------- */

json_t *
mock_vault_generic_charge_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    int          manual;
    char         outcome[32], code[64], *id;
    json_t      *req, *m, *s, *ans;
    json_int_t   amount;
    const char  *token, *customer, *ref, *cur, *why, *cap;

    (void) fault;

    req = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        mock_invalid(inv, "invalid_request", "", "not a JSON object");
        return NULL;
    }

    s = NULL;
    m = NULL;
    token = json_string_value(json_object_get(req, "payment_method"));
    customer = json_string_value(json_object_get(req, "customer"));
    ref = json_string_value(json_object_get(req, "reference"));
    cur = json_string_value(json_object_get(req, "currency"));

    if (ref == NULL || !mock_currency_valid(cur)
        || mock_generic_decimal(json_string_value(json_object_get(req,
                                                                  "amount")),
                                cur, &amount) != 0
        || !json_is_true(json_object_get(req, "off_session")))
    {
        mock_invalid(inv, "invalid_request", "amount", "reference, amount, "
                     "currency and \"off_session\": true are required");
        goto done;
    }

    /* "capture": "manual": an authorization, captured or voided later */
    cap = json_string_value(json_object_get(req, "capture"));

    if (json_object_get(req, "capture") != NULL
        && (cap == NULL || (strcmp(cap, "manual") != 0
                            && strcmp(cap, "automatic") != 0)))
    {
        mock_invalid(inv, "invalid_request", "capture", "capture is "
                     "\"automatic\" or \"manual\"");
        goto done;
    }

    manual = cap != NULL && strcmp(cap, "manual") == 0;

    m = mock_vault_get(token);

    if (mock_vault_usable(m, "generic", customer, &why) != 0) {
        mock_invalid(inv, "payment_method_unknown", "payment_method", "%s",
                     why);
        goto done;
    }

    id = mock_vault_id("pay_", 24, 0);
    if (id == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
        goto done;
    }

    outcome[0] = '\0';
    code[0] = '\0';
    (void) mock_vault_take_rule(ref, outcome, sizeof(outcome), code,
                                sizeof(code));

    ans = json_pack("{ss ss}", "payment_id", id, "status",
                    outcome[0] == '\0' ? (manual ? "authorized" : "succeeded")
                    : strcmp(outcome, "authentication_required") == 0
                    ? "requires_authentication" : "declined");

    if (ans != NULL && outcome[0] != '\0'
        && strcmp(outcome, "authentication_required") != 0)
    {
        json_object_set_new(ans, "decline_code",
                            json_string(strcmp(outcome, "expired_card") == 0
                                        ? "expired_card"
                                        : code[0] ? code : "declined"));
    }

    s = ans ? mock_vault_charge_record("generic", id, ref, amount, cur,
                                       outcome[0] == '\0', manual, NULL, ans,
                                       201, response)
            : NULL;
    free(id);

    /* a decline's payment.failed, sent once committed; one asking for
     * the shopper sends none, and its look-up says so */
    if (s != NULL && outcome[0] != '\0'
        && strcmp(outcome, "authentication_required") != 0)
    {
        json_object_set_new(s, "charge_failure", json_string("declined"));
    }
    if (s != NULL && strcmp(outcome, "authentication_required") == 0) {
        json_object_set_new(s, "charge_needs_shopper", json_true());
    }

    if (s == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
    }

done:

    json_decref(m);
    json_decref(req);
    return s;
}


/* An ISO currency code upper case, as Adyen and the generic PSP send it */
static void
mock_vault_upper(char cur[4])
{
    cur[0] = (char) (cur[0] & ~0x20);
    cur[1] = (char) (cur[1] & ~0x20);
    cur[2] = (char) (cur[2] & ~0x20);
}


/* An Adyen charge's AUTHORISATION, success or refusal */
static void
mock_vault_authorisation(const json_t *stored, const char *id,
    const char *ref, json_int_t value, const char *cur, int success,
    const mock_webhook_fault_t *wf)
{
    mock_adyen_webhook_item("AUTHORISATION", id, "",
        json_string_value(json_object_get(stored, "merchant_account")),
        ref, value, cur, success, ref, wf, MOCK_CHARGE_DELAY_MS);
}


/* A declined charge's failure, in its dialect (cur as stored). */
static void
mock_vault_charge_failed(const json_t *stored, const char *d, const char *id,
    const char *ref, json_int_t value, char cur[4],
    const mock_webhook_fault_t *wf)
{
    char     amount[32];
    json_t  *obj;

    if (strcmp(d, "stripe") == 0) {
        /* the intent's payment_failed, naming our checkout as the
         * charge's metadata does */
        obj = json_pack("{ss ss sI sI ss ss s{ss} s{sO ss ss}}",
                        "id", id, "object", "payment_intent",
                        "amount", value, "amount_received", (json_int_t) 0,
                        "currency", cur, "status", "requires_payment_method",
                        "metadata", "charge", ref,
                        "last_payment_error",
                        "code", json_object_get(stored, "charge_failure"),
                        "type", "card_error",
                        "message", "Your card was declined.");
        mock_stripe_webhook_object("payment_intent.payment_failed", obj, ref,
                                   wf, MOCK_CHARGE_DELAY_MS);
        return;
    }

    mock_vault_upper(cur);

    if (strcmp(d, "adyen") == 0) {
        mock_vault_authorisation(stored, id, ref, value, cur, 0, wf);
        return;
    }

    if (mock_format_minor(amount, sizeof(amount), value, cur) == 0) {
        mock_generic_webhook_json("payment.failed",
                                  json_pack("{ss ss ss ss ss}",
                                            "reference", ref, "token", id,
                                            "payment_id", id,
                                            "amount", amount,
                                            "currency", cur),
                                  ref, wf, MOCK_CHARGE_DELAY_MS);
    }
}


/* A charge committed: a paid one's success event, a declined one's
 * failure (mock_vault_charge_failed), in its dialect. */
void
mock_vault_committed(const json_t *stored, const char *key)
{
    int                    paid;
    char                   cur[4], amount[32];
    json_t                *obj;
    json_int_t             value;
    const char            *d, *id, *ref;
    mock_webhook_fault_t   wf;

    paid = json_object_get(stored, "payment_ref") != NULL;
    if (!paid && !json_is_string(json_object_get(stored, "charge_failure"))) {
        return;
    }

    mock_store_webhook_fault(key, &wf);

    if (paid) {
        mock_books_paid(stored, 0);
    }

    d = json_string_value(json_object_get(stored, "charge_dialect"));
    id = json_string_value(json_object_get(stored, "id"));
    ref = json_string_value(json_object_get(stored, "client_reference_id"));
    value = json_integer_value(json_object_get(stored, "amount_total"));
    snprintf(cur, sizeof(cur), "%s",
             json_string_value(json_object_get(stored, "currency")));

    if (wf.never) {
        mock_log("charge %s: no webhook (webhook_never)", id);
        return;
    }

    if (!paid) {
        mock_vault_charge_failed(stored, d, id, ref, value, cur, &wf);
        return;
    }

    /* a manual capture's hold: Stripe's amount_capturable_updated, the
     * intent requires_capture; Adyen's AUTHORISATION as ever; generic
     * payment.authorized, as a manual-capture session's */
    if (strcmp(d, "stripe") == 0 && mock_session_manual(stored)) {
        obj = mock_stripe_pi_object(stored);
        mock_stripe_webhook_object("payment_intent.amount_capturable_updated",
                                   obj, ref, &wf, MOCK_CHARGE_DELAY_MS);
        return;
    }

    if (strcmp(d, "stripe") == 0) {
        obj = json_pack("{ss ss sI sI ss ss s{ss}}", "id", id,
                        "object", "payment_intent", "amount", value,
                        "amount_received", value, "currency", cur,
                        "status", "succeeded", "metadata", "charge", ref);

        if (obj != NULL && json_is_object(json_object_get(
                               stored, "payment_intent_metadata")))
        {
            json_object_set_new(obj, "metadata", json_deep_copy(
                json_object_get(stored, "payment_intent_metadata")));
        }
        mock_stripe_webhook_object("payment_intent.succeeded", obj, ref, &wf,
                                   MOCK_CHARGE_DELAY_MS);
        return;
    }

    mock_vault_upper(cur);

    if (strcmp(d, "adyen") == 0) {
        mock_vault_authorisation(stored, id, ref, value, cur, 1, &wf);
        return;
    }

    if (mock_format_minor(amount, sizeof(amount), value, cur) != 0) {
        return;
    }

    mock_generic_webhook_json(mock_session_manual(stored)
                              ? "payment.authorized" : "payment.succeeded",
                              json_pack("{ss ss ss ss ss}", "reference", ref,
                                        "token", id, "payment_id", id,
                                        "amount", amount, "currency", cur),
                              ref, &wf, MOCK_CHARGE_DELAY_MS);
}


/*
 * The shopper paid a session that saves its method: the method into the
 * vault, and its event after the payment's (Stripe's payment intent,
 * Adyen's RECURRING_CONTRACT, generic payment_method.saved).
 */
void
mock_vault_paid(const json_t *session, const mock_webhook_fault_t *wf)
{
    json_t  *m;

    m = mock_vault_save(session);
    if (m == NULL) {
        return;
    }

    /* saved here, its event lost on the way */
    if (wf->no_method) {
        mock_log("vault: method saved, its event not sent "
                 "(webhook_no_method)");
        json_decref(m);
        return;
    }

    mock_vault_event(session, m, wf);
    json_decref(m);
}


/* The event that says the session's method m was stored, in its dialect
 * (m is the caller's). */
static void
mock_vault_event(const json_t *session, json_t *m,
    const mock_webhook_fault_t *wf)
{
    int          manual;
    json_t      *pi;
    const char  *d, *token, *ref, *pref, *cur;
    char         up[4];

    d = json_string_value(json_object_get(m, "dialect"));
    token = json_string_value(json_object_get(m, "token"));
    ref = json_string_value(json_object_get(session, "client_reference_id"));

    pref = json_string_value(json_object_get(session, "payment_ref"));
    cur = json_string_value(json_object_get(session, "currency"));

    /* Stripe's mode=setup: no payment, its setup intent names the method
     * (setup_intent.succeeded, its metadata as the session set it) */
    if (mock_session_is_setup(session)) {
        pi = wf->never ? NULL
             : json_pack("{sO ss ss ss ss ss sO}",
                   "id", json_object_get(session, "setup_intent"),
                   "object", "setup_intent",
                   "status", "succeeded",
                   "usage", json_string_value(json_object_get(session,
                                                              "save_usage")),
                   "customer", json_string_value(json_object_get(m,
                                                     "customer")),
                   "payment_method", token,
                   "metadata", json_object_get(session,
                                               "setup_intent_metadata")
                               ? json_object_get(session,
                                                 "setup_intent_metadata")
                               : json_null());
        if (pi != NULL) {
            mock_stripe_webhook_object("setup_intent.succeeded", pi,
                                       ref ? ref : "", wf,
                                       2 * MOCK_CHARGE_DELAY_MS);
        }
        return;
    }

    if (wf->never || ref == NULL || pref == NULL || cur == NULL) {
        return;
    }

    if (strcmp(d, "stripe") == 0) {
        /* a manual capture's intent is only authorized: Stripe says so
         * with amount_capturable_updated, nothing received yet (its
         * succeeded would say the money was captured) */
        manual = mock_session_manual(session);
        pi = json_pack("{ss ss sO sI ss ss ss ss s{ss}}", "id", pref,
                       "object", "payment_intent",
                       "amount", json_object_get(session, "amount_total"),
                       "amount_received",
                       manual ? (json_int_t) 0
                              : json_integer_value(json_object_get(session,
                                                       "amount_total")),
                       "currency", cur,
                       "status", manual ? "requires_capture" : "succeeded",
                       "customer", json_string_value(json_object_get(m,
                                                         "customer")),
                       "payment_method", token,
                       "metadata", "nonce", ref);
        if (pi != NULL) {
            json_object_set(pi, "setup_future_usage",
                            json_object_get(session, "save_usage"));
            json_object_set_new(pi, "amount_capturable", json_integer(
                manual ? json_integer_value(json_object_get(session,
                                                            "amount_total"))
                       : 0));
        }
        mock_stripe_webhook_object(manual
                                   ? "payment_intent.amount_capturable_updated"
                                   : "payment_intent.succeeded", pi, ref, wf,
                                   2 * MOCK_CHARGE_DELAY_MS);

    } else if (strcmp(d, "adyen") == 0) {
        snprintf(up, sizeof(up), "%s", cur);
        mock_adyen_webhook_item("RECURRING_CONTRACT", token, pref,
            json_string_value(json_object_get(session, "merchant_account")),
            ref, 0, up, 1, ref, wf, 2 * MOCK_CHARGE_DELAY_MS);

    } else {
        mock_generic_webhook_json("payment_method.saved",
            json_pack("{ss ss sO sO sO sO}", "reference", ref,
                      "payment_method", token,
                      "brand", json_object_get(m, "brand"),
                      "last4", json_object_get(m, "last4"),
                      "exp_month", json_object_get(m, "exp_month"),
                      "exp_year", json_object_get(m, "exp_year")),
            ref, wf, 2 * MOCK_CHARGE_DELAY_MS);
    }
}


/* --- look-ups: GET /v1/payment_intents/{id}, GET /payments/{id}, and by
 * the charge's nonce ---------------------------------------------------- */

/*
 * A charge the gateway asks about (its sweeper, when the webhook never
 * came): the charge as the mock keeps it, in the dialect's shape.
 *   stripe   the PaymentIntent {id, object, amount, amount_received,
 *            currency, status succeeded | requires_payment_method |
 *            requires_capture (a manual capture's hold), metadata
 *            {charge}}; unknown: 404 resource_missing;
 *   generic  {payment_id, reference, status succeeded | failed, amount
 *            (decimal), currency}; unknown: 404.
 * Only charges (kind "charge") of that dialect: a session id is unknown.
 */
/*
 * The charge id of dialect as its look-up answers it: *ans the object (a
 * new reference; NULL out of memory) and 1, or 0 when it is no charge of
 * that dialect.
 */
static int
mock_vault_charge_answer(const char *dialect, const char *id, json_t **ans)
{
    int              stripe, paid, manual;
    char             amount[32], cur[4];
    json_t          *s;
    json_int_t       value;
    const char      *kind, *d, *ref;

    stripe = strcmp(dialect, "stripe") == 0;
    *ans = NULL;

    s = NULL;
    (void) mock_session_get(id, &s);
    kind = json_string_value(json_object_get(s, "kind"));
    d = json_string_value(json_object_get(s, "charge_dialect"));

    if (kind == NULL || strcmp(kind, "charge") != 0 || d == NULL
        || strcmp(d, dialect) != 0)
    {
        json_decref(s);
        return 0;
    }

    paid = json_object_get(s, "payment_ref") != NULL;
    /* a manual capture's hold, neither captured nor released yet:
     * Stripe's intent requires_capture, the generic contract's
     * "authorized" (as the charge's answer said it) */
    manual = paid && mock_session_manual(s)
             && json_integer_value(json_object_get(s, "amount_capturable"))
                > 0
             && json_integer_value(json_object_get(s, "amount_captured"))
                == 0;
    ref = json_string_value(json_object_get(s, "client_reference_id"));
    value = json_integer_value(json_object_get(s, "amount_total"));
    snprintf(cur, sizeof(cur), "%s",
             json_string_value(json_object_get(s, "currency")));

    if (stripe) {
        *ans = json_pack("{ss ss sI sI ss ss s{ss}}", "id", id,
                         "object", "payment_intent", "amount", value,
                         "amount_received",
                         paid && !manual ? value : (json_int_t) 0,
                         "currency", cur,
                         "status", manual ? "requires_capture"
                                   : paid ? "succeeded"
                                   : "requires_payment_method",
                         "metadata", "charge", ref ? ref : "");

        /* an intent keeps the metadata its charge gave */
        if (*ans != NULL
            && json_is_object(json_object_get(s, "payment_intent_metadata")))
        {
            json_object_set_new(*ans, "metadata", json_deep_copy(
                json_object_get(s, "payment_intent_metadata")));
        }

        /* and an attempt that failed keeps why, as its payment_failed
         * said it: authentication_required when the issuer wanted the
         * shopper */
        if (*ans != NULL && !paid
            && json_is_string(json_object_get(s, "charge_failure")))
        {
            json_object_set_new(*ans, "last_payment_error",
                                json_pack("{sO ss}", "code",
                                          json_object_get(s,
                                                          "charge_failure"),
                                          "type", "card_error"));
        }

    } else {
        cur[0] = (char) (cur[0] & ~0x20);
        cur[1] = (char) (cur[1] & ~0x20);
        cur[2] = (char) (cur[2] & ~0x20);

        *ans = mock_format_minor(amount, sizeof(amount), value, cur) == 0
               ? json_pack("{ss ss ss ss ss}", "payment_id", id,
                           "reference", ref ? ref : "",
                           "status", manual ? "authorized"
                                     : paid ? "succeeded"
                                     : json_is_true(json_object_get(s,
                                           "charge_needs_shopper"))
                                     ? "requires_authentication" : "failed",
                           "amount", amount, "currency", cur)
               : NULL;
    }

    json_decref(s);

    mock_log("vault: %s charge looked up: %s", dialect,
             paid ? "succeeded" : "failed");

    return 1;
}


/* the look-ups' shared preamble: latency, then the credentials (a reply
 * sent: *rc set, 1) */
static int
mock_vault_lookup_refused(struct MHD_Connection *c, int stripe,
    enum MHD_Result *rc)
{
    if (mock_sleep_ms(mock_conf.latency_ms) != 0) {
        *rc = MHD_NO;
        return 1;
    }

    if (stripe ? !mock_authorized(c) : !mock_generic_authorized(c)) {
        *rc = stripe
              ? mock_stripe_error(c, 401, "invalid_request_error", NULL,
                                  NULL, "Invalid API Key provided")
              : mock_send_json(c, 401, json_pack("{s{ss ss}}", "error",
                                                 "code", "unauthorized",
                                                 "message", "bad API key"));
        return 1;
    }

    return 0;
}


enum MHD_Result
mock_vault_retrieve(struct MHD_Connection *c, const char *dialect,
    const char *id)
{
    int              stripe;
    json_t          *ans;
    enum MHD_Result  rc;

    stripe = strcmp(dialect, "stripe") == 0;

    if (mock_vault_lookup_refused(c, stripe, &rc)) {
        return rc;
    }

    if (!mock_vault_charge_answer(dialect, id, &ans)) {
        return stripe
               ? mock_stripe_error(c, 404, "invalid_request_error",
                                   "resource_missing", "intent",
                                   "No such payment_intent: '%s'", id)
               : mock_send_json(c, 404, json_pack("{s{ss ss}}", "error",
                                                  "code", "not_found",
                                                  "message",
                                                  "no such payment"));
    }

    return ans != NULL ? mock_send_json(c, MHD_HTTP_OK, ans)
                       : mock_send_json(c, 500, json_pack("{ss}", "error",
                                                          "bad charge"));
}


/*
 * A charge looked up by the nonce it was made under (the gateway's
 * sweeper, when the charge's every answer was lost):
 *   stripe   GET /v1/payment_intents/search?query=metadata['charge']:'<n>'
 *            (the one query form the gateway sends; any other query is
 *            400 as Stripe refuses a query it cannot parse): a
 *            search_result whose data holds the intents of that charge
 *            (none: []);
 *   generic  GET /payments?reference=<n>: the payment, as GET
 *            /payments/{id}; none: 404.
 * The fault rules' latency and failures apply as to the look-up by id
 * (mock_conf); none is matched on the nonce.
 */
enum MHD_Result
mock_vault_search(struct MHD_Connection *c, const char *dialect,
    const char *reference)
{
    int              stripe;
    char             nonce[256];
    size_t           i, n;
    json_t          *ids, *ans, *data, *one;
    enum MHD_Result  rc;

    stripe = strcmp(dialect, "stripe") == 0;

    if (mock_vault_lookup_refused(c, stripe, &rc)) {
        return rc;
    }

    if (reference == NULL) {
        return stripe
               ? mock_stripe_error(c, 400, "invalid_request_error",
                                   "parameter_missing", "query",
                                   "Missing required param: query.")
               : mock_send_json(c, 400, json_pack("{s{ss ss}}", "error",
                                                  "code", "invalid_request",
                                                  "message",
                                                  "reference is required"));
    }

    if (stripe) {
        n = strlen(reference);

        if (n < sizeof("metadata['charge']:''") || n >= sizeof(nonce) + 21
            || strncmp(reference, "metadata['charge']:'", 20) != 0
            || reference[n - 1] != '\'')
        {
            return mock_stripe_error(c, 400, "invalid_request_error", NULL,
                                     "query", "The mock answers only "
                                     "metadata['charge']:'<nonce>'");
        }

        memcpy(nonce, reference + 20, n - 21);
        nonce[n - 21] = '\0';

        if (strchr(nonce, '\'') != NULL) {
            return mock_stripe_error(c, 400, "invalid_request_error", NULL,
                                     "query", "Invalid query");
        }

    } else {
        snprintf(nonce, sizeof(nonce), "%s", reference);
    }

    ids = mock_charges_by_reference(dialect, nonce);
    data = json_array();

    if (ids == NULL || data == NULL) {
        json_decref(ids);
        json_decref(data);
        return mock_send_json(c, 500, json_pack("{ss}", "error", "memory"));
    }

    for (i = 0; i < json_array_size(ids); i++) {
        if (mock_vault_charge_answer(dialect,
                json_string_value(json_array_get(ids, i)), &one)
            && one != NULL)
        {
            json_array_append_new(data, one);
        }
    }

    json_decref(ids);

    mock_log("vault: %s charges of %s searched: %zu", dialect, nonce,
             json_array_size(data));

    if (stripe) {
        ans = json_pack("{ss ss sb so}", "object", "search_result",
                        "url", "/v1/payment_intents/search", "has_more", 0,
                        "data", data);
        return ans != NULL ? mock_send_json(c, MHD_HTTP_OK, ans)
                           : mock_send_json(c, 500, json_pack("{ss}",
                                                              "error",
                                                              "memory"));
    }

    if (json_array_size(data) == 0) {
        json_decref(data);
        return mock_send_json(c, 404, json_pack("{s{ss ss}}", "error",
                                                "code", "not_found",
                                                "message",
                                                "no such payment"));
    }

    /* one charge a nonce: the newest */
    ans = json_incref(json_array_get(data, 0));
    json_decref(data);

    return mock_send_json(c, MHD_HTTP_OK, ans);
}


/* --- control: /_control/charges, /_control/payment_methods ------------- */

/*
 * The gateway detaches a saved method at the PSP:
 *   stripe   POST /v1/payment_methods/{token}/detach: 200, the method with
 *            customer null; one not attached (detached already): 400 with
 *            Stripe's words; unknown: 404 resource_missing;
 *   adyen    DELETE /v71/storedPaymentMethods/{token}?shopperReference=
 *            &merchantAccount= (checked against Adyen's document before):
 *            204; none of that shopper's under that merchant account (the
 *            session's that saved it), or detached already: 422
 *            errorCode 800 "Contract not found";
 *   generic  DELETE /payment_methods/{token}: 200 {"id", "status":
 *            "detached"}; unknown or detached already: 404.
 * Authenticated as the dialect's other calls; a fault rule matching the
 * Idempotency-Key applies (hang, latency, fail) as to every create.  The
 * vault counts each method's detach requests ("detach_requests") and
 * refuses its charges once detached.
 */
enum MHD_Result
mock_vault_detach(struct MHD_Connection *c, const char *dialect,
    const char *token)
{
    int              known, was;
    long             latency;
    json_t          *m;
    unsigned         status;
    const char      *key, *shopper, *account, *d;
    mock_fault_t     fault;
    enum MHD_Result  rc;

    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    (void) mock_store_arrive(key ? key : "", "detach", &fault);

    if (fault.hang_ms > 0) {
        mock_log("fault %llu: hanging %ld ms, then closing without an answer",
                 (unsigned long long) fault.id, fault.hang_ms);
        (void) mock_sleep_ms(fault.hang_ms);
        mock_fault_free(&fault);
        return MHD_NO;
    }

    latency = mock_conf.latency_ms + fault.latency_ms;

    if (mock_sleep_ms(latency) != 0) {
        mock_fault_free(&fault);
        return MHD_NO;
    }

    if (strcmp(dialect, "adyen") == 0 ? !mock_adyen_authorized(c)
        : strcmp(dialect, "generic") == 0 ? !mock_generic_authorized(c)
        : !mock_authorized(c))
    {
        mock_fault_free(&fault);
        return strcmp(dialect, "adyen") == 0
               ? mock_adyen_error(c, 401, "000", "security", "HTTP Status "
                                  "Response - Unauthorized")
               : strcmp(dialect, "generic") == 0
               ? mock_send_json(c, 401, json_pack("{s{ss ss}}", "error",
                                                  "code", "unauthorized",
                                                  "message", "bad API key"))
               : mock_stripe_error(c, 401, "invalid_request_error", NULL,
                                   NULL, "Invalid API Key provided");
    }

    status = mock_fault_take_fail(fault.id);
    if (status != 0) {
        mock_log("fault %llu: failing with %u", (unsigned long long) fault.id,
                 status);
        mock_fault_free(&fault);
        return mock_send_json(c, status,
                              json_pack("{ss}", "error", "fault"));
    }

    mock_fault_free(&fault);

    shopper = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                          "shopperReference");
    account = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                          "merchantAccount");

    known = 0;
    was = 0;

    pthread_mutex_lock(&mock_vault_lock);

    m = json_object_get(mock_vault, token);
    d = json_string_value(json_object_get(m, "dialect"));

    if (m != NULL && d != NULL && strcmp(d, dialect) == 0
        && (strcmp(dialect, "adyen") != 0
            || (shopper != NULL
                && strcmp(json_string_value(json_object_get(m, "customer")),
                          shopper) == 0
                && (!json_is_string(json_object_get(m, "account"))
                    || (account != NULL
                        && strcmp(json_string_value(json_object_get(m,
                                      "account")), account) == 0)))))
    {
        known = 1;
        was = strcmp(json_string_value(json_object_get(m, "status")),
                     "active") == 0;
        json_object_set_new(m, "status", json_string("detached"));
        json_object_set_new(m, "detach_requests",
                            json_integer(json_integer_value(
                                json_object_get(m, "detach_requests")) + 1));
    }

    pthread_mutex_unlock(&mock_vault_lock);

    /* never the token in the mock's log: the e2e log scan looks for it */
    mock_log("vault: %s detach: %s", dialect,
             !known ? "unknown" : was ? "detached" : "not attached");

    if (strcmp(dialect, "adyen") == 0) {
        if (!known || !was) {
            return mock_adyen_error(c, 422, "800", "validation",
                                    "Contract not found");
        }

        rc = mock_send(c, MHD_HTTP_NO_CONTENT, NULL, "", 0, NULL, 0);
        return rc;
    }

    if (strcmp(dialect, "generic") == 0) {
        if (!known || !was) {
            return mock_send_json(c, 404, json_pack("{s{ss ss}}", "error",
                                                    "code", "not_found",
                                                    "message",
                                                    "no such payment method"));
        }

        return mock_send_json(c, MHD_HTTP_OK,
                              json_pack("{ss ss}", "id", token,
                                        "status", "detached"));
    }

    if (!known) {
        return mock_stripe_error(c, 404, "invalid_request_error",
                                 "resource_missing", "payment_method",
                                 "No such PaymentMethod");
    }

    if (!was) {
        return mock_stripe_error(c, 400, "invalid_request_error", NULL, NULL,
                                 "The payment method you provided is not "
                                 "attached to a customer so detachment is "
                                 "impossible.");
    }

    return mock_send_json(c, MHD_HTTP_OK,
                          json_pack("{ss ss sn}", "id", token,
                                    "object", "payment_method",
                                    "customer"));
}


/*
 * POST /_control/charges {"reference", "outcome": "decline" |
 * "expired_card" | "authentication_required", "code"}: the next charge of
 * that reference answers so, once.
 * POST /_control/payment_methods/detach {"reference"}: the methods saved
 * by the session of that reference are detached at the PSP's side.
 * GET /_control/payment_methods: the vault (tokens included: the mock's
 * own test data).
 * POST /_control/payment_methods {"reference", "dialect", "customer",
 * "usage", "merchant_account"}: a method put in the vault as if the
 * session of that reference (made for that Adyen merchant account, if
 * given: its delete then names it)
 * had saved it (no session, no event): the method, its token included.
 */
enum MHD_Result
mock_vault_control(struct MHD_Connection *c, const char *method,
    const char *path, mock_request_t *r)
{
    int          n;
    json_t      *req, *v, *list;
    const char  *ref, *outcome, *key;

    if (strcmp(path, "payment_methods") == 0 && strcmp(method, "GET") == 0) {
        list = json_array();

        pthread_mutex_lock(&mock_vault_lock);
        json_object_foreach(mock_vault, key, v) {
            json_array_append(list, v);
        }
        pthread_mutex_unlock(&mock_vault_lock);

        return mock_send_json(c, MHD_HTTP_OK,
                              json_pack("{so}", "payment_methods", list));
    }

    if (strcmp(method, "POST") != 0) {
        return mock_send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                              json_pack("{ss}", "error",
                                        "method not allowed"));
    }

    req = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
    ref = json_string_value(json_object_get(req, "reference"));

    if (ref == NULL) {
        json_decref(req);
        return mock_send_json(c, MHD_HTTP_BAD_REQUEST,
                              json_pack("{ss}", "error",
                                        "reference is required"));
    }

    if (strcmp(path, "charges") == 0) {
        outcome = json_string_value(json_object_get(req, "outcome"));

        if (outcome == NULL
            || (strcmp(outcome, "decline") != 0
                && strcmp(outcome, "expired_card") != 0
                && strcmp(outcome, "authentication_required") != 0))
        {
            json_decref(req);
            return mock_send_json(c, MHD_HTTP_BAD_REQUEST,
                                  json_pack("{ss}", "error",
                                            "outcome: decline, expired_card "
                                            "or authentication_required"));
        }

        pthread_mutex_lock(&mock_vault_lock);

        if (mock_vault_rules == NULL) {
            mock_vault_rules = json_object();
        }

        json_object_set_new(mock_vault_rules, ref,
                            json_pack("{ss sO*}", "outcome", outcome, "code",
                                      json_object_get(req, "code")));

        pthread_mutex_unlock(&mock_vault_lock);

        mock_log("vault: the next charge of %s: %s", ref, outcome);
        json_decref(req);

        return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "ok", 1));
    }

    if (strcmp(path, "payment_methods") == 0) {
        v = json_pack("{ss sO* sO* sO* sO* ss}", "client_reference_id", ref,
                      "dialect", json_object_get(req, "dialect"),
                      "save_customer", json_object_get(req, "customer"),
                      "save_usage", json_object_get(req, "usage"),
                      "merchant_account",
                      json_object_get(req, "merchant_account"),
                      "seeded", "control");
        list = NULL;

        if (v != NULL && json_is_string(json_object_get(req, "customer"))
            && json_is_string(json_object_get(req, "usage"))
            && (json_object_get(req, "dialect") == NULL
                || json_is_string(json_object_get(req, "dialect"))))
        {
            list = mock_vault_save(v);
        }

        json_decref(v);
        json_decref(req);

        return list != NULL
               ? mock_send_json(c, MHD_HTTP_CREATED, list)
               : mock_send_json(c, MHD_HTTP_BAD_REQUEST,
                                json_pack("{ss}", "error", "reference, "
                                          "customer and usage are "
                                          "required"));
    }

    if (strcmp(path, "payment_methods/detach") == 0) {
        n = 0;

        pthread_mutex_lock(&mock_vault_lock);
        json_object_foreach(mock_vault, key, v) {
            if (strcmp(json_string_value(json_object_get(v, "reference")),
                       ref) == 0)
            {
                json_object_set_new(v, "status", json_string("detached"));
                n++;
            }
        }
        pthread_mutex_unlock(&mock_vault_lock);

        json_decref(req);

        return mock_send_json(c, n ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND,
                              json_pack("{si}", "detached", n));
    }

    json_decref(req);

    return mock_send_json(c, MHD_HTTP_NOT_FOUND,
                          json_pack("{ss}", "error",
                                    "unknown control endpoint"));
}


/*
 * Stripe's PaymentMethod object of the method the session of reference
 * saved (expand[]=payment_intent.payment_method or
 * setup_intent.payment_method): {id, object, type, customer, card {brand,
 * last4, exp_month, exp_year}}; NULL when it saved none.
 */
json_t *
mock_vault_pm_object(const char *reference)
{
    json_t  *m, *pm;

    m = mock_vault_of_reference(reference);
    if (m == NULL) {
        return NULL;
    }

    pm = json_pack("{sO ss ss sO s{sO sO sO sO}}",
                   "id", json_object_get(m, "token"),
                   "object", "payment_method",
                   "type", "card",
                   "customer", json_object_get(m, "customer"),
                   "card",
                   "brand", json_object_get(m, "brand"),
                   "last4", json_object_get(m, "last4"),
                   "exp_month", json_object_get(m, "exp_month"),
                   "exp_year", json_object_get(m, "exp_year"));
    json_decref(m);

    return pm;
}


/*
 * POST /_control/sessions/{id}/method_event: the event that says the
 * session's method was stored, sent now (its first sending held back by
 * webhook_no_method: a late event), as mock_vault_paid sends it, without
 * a fault rule.  0, or -1 when the session saved no method (or is not
 * paid).
 */
int
mock_vault_method_event(const char *id)
{
    json_t                *s, *m;
    mock_webhook_fault_t   wf;

    s = NULL;

    if (mock_session_get(id, &s) != MOCK_SESSION_COMPLETE || s == NULL) {
        json_decref(s);
        return -1;
    }

    m = mock_vault_of_reference(json_string_value(
            json_object_get(s, "client_reference_id")));
    if (m == NULL) {
        json_decref(s);
        return -1;
    }

    memset(&wf, 0, sizeof(mock_webhook_fault_t));
    mock_log("vault: the method event of %s sent late", id);
    mock_vault_event(s, m, &wf);

    json_decref(m);
    json_decref(s);

    return 0;
}
