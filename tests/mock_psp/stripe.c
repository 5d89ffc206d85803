/*
 * Mock PSP: Stripe's Checkout Sessions API (create and retrieve), with
 * Stripe's idempotency rules and the fault rules of the control API.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mock_psp.h"


/* Stripe's own limits. */
#define MOCK_MAX_LINE_ITEMS    100
#define MOCK_MAX_METADATA      50
#define MOCK_MAX_METADATA_KEY  40
#define MOCK_MAX_METADATA_VAL  500
#define MOCK_MAX_URL           5000
#define MOCK_MAX_REFERENCE     200
#define MOCK_EXPIRES_MIN       (30 * 60)
#define MOCK_EXPIRES_MAX       (24 * 60 * 60)


typedef struct {
    const char           *currency;
    const char           *unit_amount;
    const char           *name;
    const char           *quantity;
} mock_line_t;


/* The parameters of one create request, borrowed from the decoded form. */
typedef struct {
    const char           *mode;
    const char           *success_url;
    const char           *cancel_url;
    const char           *client_reference_id;
    const char           *customer_email;
    const char           *expires_at;
    const char           *capture_method;    /* payment_intent_data[…] */
    const char           *pi_nonce;          /* …[metadata][nonce] */
    const char           *setup_future_usage;   /* payment_intent_data[…] */
    const char           *customer;
    const char           *customer_creation;
    const char           *currency;          /* mode=setup */
    const char           *pm_type;           /* payment_method_types[0] */
    const char           *si_nonce;          /* setup_intent_data[…] */
    const char           *si_usage;          /* setup_intent_data[…] */
    json_t               *metadata;
    mock_line_t           lines[MOCK_MAX_LINE_ITEMS];
    size_t                nlines;
} mock_params_t;


static enum MHD_Result mock_unauthorized(struct MHD_Connection *c);
static int mock_three_decimals(const char *currency);
static int mock_params_slot(mock_params_t *p, const char *key,
    const char ***slot, mock_invalid_t *inv);
static int mock_params_collect(mock_params_t *p, const mock_form_t *form,
    mock_invalid_t *inv);
static json_t *mock_session_build(mock_params_t *p, const mock_fault_t *fault,
    mock_invalid_t *inv);
static json_t *mock_session_new(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv);
static enum MHD_Result mock_send_failure(struct MHD_Connection *c,
    unsigned status);
static enum MHD_Result mock_send_refusal(struct MHD_Connection *c,
    unsigned status);


/* Cuts a string truncated by snprintf() back to a whole UTF-8 character. */
enum MHD_Result
mock_stripe_error(struct MHD_Connection *c, unsigned status, const char *type,
    const char *code, const char *param, const char *fmt, ...)
{
    json_t   *err, *msg;
    va_list   ap;
    char      buf[512];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mock_utf8_trim(buf);

    /* A URL from the request line may not be UTF-8: say less then. */
    msg = json_string(buf);
    if (msg == NULL) {
        msg = json_string("Invalid request.");
    }

    err = json_object();
    if (err == NULL) {
        json_decref(msg);
        return MHD_NO;
    }

    json_object_set_new(err, "type", json_string(type));
    if (code != NULL) {
        json_object_set_new(err, "code", json_string(code));
    }
    if (param != NULL && param[0] != '\0') {
        json_object_set_new(err, "param", json_string(param));
    }
    json_object_set_new(err, "message", msg);

    return mock_send_json(c, status, json_pack("{so}", "error", err));
}


static int
mock_secret_is(const char *given, const char *secret)
{
    size_t  len;

    len = strlen(secret);

    return strlen(given) == len && CRYPTO_memcmp(given, secret, len) == 0;
}


int
mock_authorized(struct MHD_Connection *c)
{
    const char  *auth;

    auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return 0;
    }

    auth += 7;

    return mock_secret_is(auth, mock_conf.stripe_secret)
           || (mock_conf.stripe_live_secret != NULL
               && mock_secret_is(auth, mock_conf.stripe_live_secret));
}


static enum MHD_Result
mock_unauthorized(struct MHD_Connection *c)
{
    return mock_stripe_error(c, MHD_HTTP_UNAUTHORIZED,
                             "invalid_request_error", NULL, NULL,
                             "Invalid API Key provided");
}


/* ^(0|[1-9][0-9]*)$ within int64; -1 otherwise. */
int
mock_parse_int64(const char *s, int64_t *out)
{
    int64_t  v;

    if (s[0] == '0') {
        if (s[1] != '\0') {
            return -1;
        }
        *out = 0;
        return 0;
    }

    if (*s == '\0') {
        return -1;
    }

    for (v = 0; *s; s++) {
        if (*s < '0' || *s > '9'
            || __builtin_mul_overflow(v, 10, &v)
            || __builtin_add_overflow(v, *s - '0', &v))
        {
            return -1;
        }
    }

    *out = v;
    return 0;
}


/* Stripe wants these amounts to end in 0 (PSP_FACTS.md). */
static int
mock_three_decimals(const char *currency)
{
    static const char  *three[] = { "bhd", "jod", "kwd", "omr", "tnd" };
    size_t              i;

    for (i = 0; i < sizeof(three) / sizeof(three[0]); i++) {
        if (strcmp(currency, three[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Finds where a scalar parameter goes: *slot is set, or NULL for a metadata
 * entry (already stored by this function).  Returns -1 with inv filled for
 * an unknown or repeated parameter.
 */
static int
mock_params_slot(mock_params_t *p, const char *key, const char ***slot,
    mock_invalid_t *inv)
{
    size_t        i, len, idx;
    const char   *k, *rest;
    mock_line_t  *line;

    static const struct {
        const char  *name;
        size_t       offset;
    }  scalars[] = {
        { "mode", offsetof(mock_params_t, mode) },
        { "success_url", offsetof(mock_params_t, success_url) },
        { "cancel_url", offsetof(mock_params_t, cancel_url) },
        { "client_reference_id",
          offsetof(mock_params_t, client_reference_id) },
        { "customer_email", offsetof(mock_params_t, customer_email) },
        { "expires_at", offsetof(mock_params_t, expires_at) },
        { "payment_intent_data[capture_method]",
          offsetof(mock_params_t, capture_method) },
        { "payment_intent_data[metadata][nonce]",
          offsetof(mock_params_t, pi_nonce) },
        { "payment_intent_data[setup_future_usage]",
          offsetof(mock_params_t, setup_future_usage) },
        { "customer", offsetof(mock_params_t, customer) },
        { "customer_creation", offsetof(mock_params_t, customer_creation) },
        { "currency", offsetof(mock_params_t, currency) },
        { "payment_method_types[0]", offsetof(mock_params_t, pm_type) },
        { "setup_intent_data[metadata][nonce]",
          offsetof(mock_params_t, si_nonce) },
        { "setup_intent_data[metadata][usage]",
          offsetof(mock_params_t, si_usage) }
    };

    static const struct {
        const char  *suffix;
        size_t       offset;
    }  fields[] = {
        { "[price_data][currency]", offsetof(mock_line_t, currency) },
        { "[price_data][unit_amount]", offsetof(mock_line_t, unit_amount) },
        { "[price_data][product_data][name]", offsetof(mock_line_t, name) },
        { "[quantity]", offsetof(mock_line_t, quantity) }
    };

    *slot = NULL;

    for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        if (strcmp(key, scalars[i].name) == 0) {
            *slot = (const char **) ((char *) p + scalars[i].offset);
            return 0;
        }
    }

    if (strncmp(key, "line_items[", 11) == 0) {
        k = key + 11;
        len = strspn(k, "0123456789");

        if (len == 0 || k[len] != ']' || (k[0] == '0' && len > 1)) {
            goto unknown;
        }

        idx = (len > 3) ? MOCK_MAX_LINE_ITEMS : (size_t) atoi(k);

        if (idx >= MOCK_MAX_LINE_ITEMS) {
            mock_invalid(inv, "parameter_invalid", "line_items",
                         "You may only specify up to %d line items.",
                         MOCK_MAX_LINE_ITEMS);
            return -1;
        }

        rest = k + len + 1;

        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (strcmp(rest, fields[i].suffix) == 0) {
                line = &p->lines[idx];
                *slot = (const char **) ((char *) line + fields[i].offset);
                if (idx + 1 > p->nlines) {
                    p->nlines = idx + 1;
                }
                return 0;
            }
        }

        goto unknown;
    }

    if (strncmp(key, "metadata[", 9) == 0) {
        k = key + 9;
        len = strcspn(k, "[]");

        if (len == 0 || k[len] != ']' || k[len + 1] != '\0') {
            goto unknown;
        }

        /* *slot stays NULL: the caller stores metadata itself */
        return 0;
    }

unknown:

    mock_invalid(inv, "parameter_unknown", key,
                 "Received unknown parameter: %s", key);
    return -1;
}


static int
mock_params_collect(mock_params_t *p, const mock_form_t *form,
    mock_invalid_t *inv)
{
    size_t             i, len;
    const char        *key, *value, **slot;
    char               name[MOCK_MAX_METADATA_KEY + 1];

    for (i = 0; i < form->n; i++) {
        key = form->pairs[i].key;
        value = form->pairs[i].value;

        if (mock_params_slot(p, key, &slot, inv) != 0) {
            return -1;
        }

        if (slot == NULL) {
            /* metadata[name]: an empty value unsets, which on create is
             * the same as leaving it out */
            len = strlen(key) - 10;

            if (len > MOCK_MAX_METADATA_KEY) {
                mock_invalid(inv, "parameter_invalid", key,
                             "Metadata keys can be at most %d characters.",
                             MOCK_MAX_METADATA_KEY);
                return -1;
            }

            memcpy(name, key + 9, len);
            name[len] = '\0';

            if (json_object_get(p->metadata, name) != NULL) {
                goto duplicate;
            }

            if (value[0] == '\0') {
                continue;
            }

            if (strlen(value) > MOCK_MAX_METADATA_VAL) {
                mock_invalid(inv, "parameter_invalid", key,
                             "Metadata values can be at most %d characters.",
                             MOCK_MAX_METADATA_VAL);
                return -1;
            }

            if (json_object_size(p->metadata) >= MOCK_MAX_METADATA) {
                mock_invalid(inv, "parameter_invalid", "metadata",
                             "You can specify up to %d metadata keys.",
                             MOCK_MAX_METADATA);
                return -1;
            }

            if (json_object_set_new(p->metadata, name, json_string(value))
                != 0)
            {
                mock_invalid(inv, "parameter_invalid", key,
                             "Cannot store metadata.");
                return -1;
            }

            continue;
        }

        /*
         * Stripe reads every parameter once; a repeat means the client's
         * encoder is broken, which the mock should make visible.
         */
        if (*slot != NULL) {
            goto duplicate;
        }

        if (value[0] == '\0') {
            mock_invalid(inv, "parameter_invalid_empty", key,
                         "You passed an empty string for '%s'. We assume "
                         "empty values are an attempt to unset a parameter; "
                         "however '%s' cannot be unset. You should remove "
                         "'%s' from your request or supply a non-empty "
                         "value.", key, key, key);
            return -1;
        }

        *slot = value;
        continue;

    duplicate:

        mock_invalid(inv, "parameter_invalid", key,
                     "Received parameter %s more than once.", key);
        return -1;
    }

    return 0;
}


/*
 * mode=setup (stripe-node's SessionCreateParams): no line_items and no
 * payment_intent_data (payment mode's), a currency (required in setup
 * mode without payment_method_types; checked when sent), card the one
 * payment method type, setup_intent_data[metadata], customer or
 * customer_creation (setup mode takes both), the URLs and expires_at as
 * in payment mode.  The session: amount_total null, payment_status
 * no_payment_required once completed, setup_intent made when the shopper
 * completes it (vault.c: setup_intent.succeeded names the method).
 */
static json_t *
mock_session_setup(mock_params_t *p, const mock_fault_t *fault,
    mock_invalid_t *inv)
{
    int64_t      expires_at, now;
    json_t      *s;
    char         id[64], url[MOCK_MAX_URL + 128], cur[4];
    size_t       i;

    if (p->nlines != 0) {
        mock_invalid(inv, "parameter_invalid", "line_items",
                     "You cannot pass `line_items` in `setup` mode.");
        return NULL;
    }

    if (p->capture_method != NULL || p->pi_nonce != NULL
        || p->setup_future_usage != NULL)
    {
        mock_invalid(inv, "parameter_invalid", "payment_intent_data",
                     "You can not pass `payment_intent_data` in `setup` "
                     "mode.");
        return NULL;
    }

    if (p->currency == NULL && p->pm_type == NULL) {
        mock_invalid(inv, "parameter_missing", "currency",
                     "Missing required param: currency.");
        return NULL;
    }

    cur[0] = '\0';

    if (p->currency != NULL) {
        if (strlen(p->currency) != 3) {
            mock_invalid(inv, "parameter_invalid", "currency",
                         "Invalid currency: %s.", p->currency);
            return NULL;
        }

        for (i = 0; i < 3; i++) {
            if (!islower((unsigned char) p->currency[i])) {
                mock_invalid(inv, "parameter_invalid", "currency",
                             "Invalid currency: %s.", p->currency);
                return NULL;
            }
            cur[i] = p->currency[i];
        }
        cur[3] = '\0';
    }

    if (p->pm_type != NULL && strcmp(p->pm_type, "card") != 0) {
        mock_invalid(inv, "parameter_invalid", "payment_method_types[0]",
                     "Invalid payment_method_types[0]: this mock takes "
                     "card.");
        return NULL;
    }

    if (p->si_usage != NULL && strcmp(p->si_usage, "off_session") != 0
        && strcmp(p->si_usage, "on_session") != 0)
    {
        mock_invalid(inv, "parameter_invalid",
                     "setup_intent_data[metadata][usage]",
                     "The mock reads the usage from this metadata key: "
                     "off_session or on_session.");
        return NULL;
    }

    if (p->success_url == NULL || !mock_url_valid(p->success_url,
                                                  MOCK_MAX_URL))
    {
        mock_invalid(inv, p->success_url ? "url_invalid"
                                         : "parameter_missing",
                     "success_url", "Invalid or missing success_url.");
        return NULL;
    }

    if (p->cancel_url != NULL
        && !mock_url_valid(p->cancel_url, MOCK_MAX_URL))
    {
        mock_invalid(inv, "url_invalid", "cancel_url", "Not a valid URL");
        return NULL;
    }

    if (p->customer_creation != NULL
        && strcmp(p->customer_creation, "always") != 0
        && strcmp(p->customer_creation, "if_required") != 0)
    {
        mock_invalid(inv, "parameter_invalid", "customer_creation",
                     "Invalid customer_creation: must be one of always or "
                     "if_required");
        return NULL;
    }

    if (p->customer != NULL
        && (p->customer_creation != NULL
            || strncmp(p->customer, "cus_", 4) != 0))
    {
        mock_invalid(inv, p->customer_creation ? "parameter_invalid"
                                               : "resource_missing",
                     "customer", p->customer_creation
                     ? "You may only specify one of these parameters: "
                       "customer, customer_creation."
                     : "No such customer: '%s'", p->customer);
        return NULL;
    }

    now = (int64_t) time(NULL);
    expires_at = now + MOCK_EXPIRES_MAX;

    if (p->expires_at != NULL
        && (mock_parse_int64(p->expires_at, &expires_at) != 0
            || expires_at < now + MOCK_EXPIRES_MIN
            || expires_at > now + MOCK_EXPIRES_MAX))
    {
        mock_invalid(inv, "parameter_invalid", "expires_at",
                     "The expires_at timestamp must be at least 30 minutes "
                     "and at most 24 hours from now (now is %lld).",
                     (long long) now);
        return NULL;
    }

    memcpy(id, MOCK_SESSION_ID_PREFIX, sizeof(MOCK_SESSION_ID_PREFIX) - 1);
    if (mock_random_alnum(id + sizeof(MOCK_SESSION_ID_PREFIX) - 1,
                          MOCK_SESSION_ID_RANDOM)
        != 0)
    {
        mock_invalid(inv, NULL, NULL, "No randomness.");
        return NULL;
    }

    if (fault->hosted_url != NULL) {
        snprintf(url, sizeof(url), "%s", fault->hosted_url);
    } else {
        snprintf(url, sizeof(url), "%s/pay/%s", mock_conf.public_url, id);
    }

    s = json_object();
    if (s == NULL) {
        mock_invalid(inv, NULL, NULL, "Out of memory.");
        return NULL;
    }

    json_object_set_new(s, "id", json_string(id));
    json_object_set_new(s, "object", json_string("checkout.session"));
    json_object_set_new(s, "amount_subtotal", json_null());
    json_object_set_new(s, "amount_total", json_null());
    json_object_set_new(s, "cancel_url", p->cancel_url
                        ? json_string(p->cancel_url) : json_null());
    json_object_set_new(s, "client_reference_id",
                        p->client_reference_id
                        ? json_string(p->client_reference_id) : json_null());
    json_object_set_new(s, "created", json_integer(now));
    json_object_set_new(s, "currency", cur[0] ? json_string(cur)
                                              : json_null());
    json_object_set_new(s, "customer_email", json_null());
    json_object_set_new(s, "expires_at", json_integer(expires_at));
    json_object_set_new(s, "livemode", json_false());
    json_object_set(s, "metadata", p->metadata);
    json_object_set_new(s, "mode", json_string("setup"));
    json_object_set_new(s, "payment_intent", json_null());
    json_object_set_new(s, "payment_status", json_string("unpaid"));
    json_object_set_new(s, "setup_intent", json_null());
    json_object_set_new(s, "status", json_string("open"));
    json_object_set_new(s, "success_url", json_string(p->success_url));
    json_object_set_new(s, "url", json_string(url));

    if (json_object_size(s) != 19) {
        json_decref(s);
        mock_invalid(inv, NULL, NULL, "Out of memory.");
        return NULL;
    }

    /* the mock's own: what the vault saves when the shopper completes
     * it (the usage the gateway named in the setup intent's metadata) */
    json_object_set_new(s, "save_usage",
                        json_string(p->si_usage ? p->si_usage
                                                : "off_session"));
    if (p->si_nonce != NULL) {
        json_object_set_new(s, "setup_intent_metadata",
                            json_pack("{ss}", "nonce", p->si_nonce));
    }
    if (p->customer != NULL) {
        json_object_set_new(s, "save_customer", json_string(p->customer));
    }

    return s;
}


static json_t *
mock_session_build(mock_params_t *p, const mock_fault_t *fault,
    mock_invalid_t *inv)
{
    size_t        i;
    int64_t       amount, quantity, total, expires_at, now;
    json_t       *s;
    mock_line_t  *line;
    char          currency[4], id[64], url[MOCK_MAX_URL + 128], param[96];

    if (p->mode == NULL) {
        mock_invalid(inv, "parameter_missing", "mode",
                     "Missing required param: mode.");
        return NULL;
    }

    if (strcmp(p->mode, "setup") == 0) {
        return mock_session_setup(p, fault, inv);
    }

    if (strcmp(p->mode, "payment") != 0) {
        mock_invalid(inv, "parameter_invalid", "mode",
                     "Invalid mode: this mock supports payment and setup.");
        return NULL;
    }

    /* setup mode's own parameters */
    if (p->currency != NULL || p->si_nonce != NULL || p->si_usage != NULL) {
        mock_invalid(inv, "parameter_invalid",
                     p->currency != NULL ? "currency" : "setup_intent_data",
                     "%s can only be used in setup mode.",
                     p->currency != NULL ? "currency" : "setup_intent_data");
        return NULL;
    }

    if (p->pm_type != NULL && strcmp(p->pm_type, "card") != 0) {
        mock_invalid(inv, "parameter_invalid", "payment_method_types[0]",
                     "Invalid payment_method_types[0]: this mock takes "
                     "card.");
        return NULL;
    }

    if (p->nlines == 0) {
        mock_invalid(inv, "parameter_missing", "line_items",
                     "Missing required param: line_items.");
        return NULL;
    }

    total = 0;
    currency[0] = '\0';

    for (i = 0; i < p->nlines; i++) {
        line = &p->lines[i];

#define MOCK_LINE_PARAM(field)                                               \
        snprintf(param, sizeof(param), "line_items[%zu]" field, i)

        if (line->currency == NULL) {
            MOCK_LINE_PARAM("[price_data][currency]");
            goto missing;
        }

        if (strlen(line->currency) != 3 || !isalpha(line->currency[0])
            || !isalpha(line->currency[1]) || !isalpha(line->currency[2]))
        {
            MOCK_LINE_PARAM("[price_data][currency]");
            mock_invalid(inv, "parameter_invalid", param,
                         "Invalid currency: %s.", line->currency);
            return NULL;
        }

        if (i == 0) {
            currency[0] = (char) tolower(line->currency[0]);
            currency[1] = (char) tolower(line->currency[1]);
            currency[2] = (char) tolower(line->currency[2]);
            currency[3] = '\0';

        } else if (strcasecmp(currency, line->currency) != 0) {
            MOCK_LINE_PARAM("[price_data][currency]");
            mock_invalid(inv, "parameter_invalid", param,
                         "All line items must use the same currency: "
                         "line_items[0] uses %s, line_items[%zu] uses %s.",
                         currency, i, line->currency);
            return NULL;
        }

        if (line->unit_amount == NULL) {
            MOCK_LINE_PARAM("[price_data][unit_amount]");
            goto missing;
        }

        if (mock_parse_int64(line->unit_amount, &amount) != 0 || amount < 1)
        {
            MOCK_LINE_PARAM("[price_data][unit_amount]");
            mock_invalid(inv, "parameter_invalid_integer", param,
                         "Invalid positive integer: %s", line->unit_amount);
            return NULL;
        }

        if (mock_three_decimals(currency) && amount % 10 != 0) {
            MOCK_LINE_PARAM("[price_data][unit_amount]");
            mock_invalid(inv, "amount_invalid", param,
                         "Amounts in %s must be divisible by 10.", currency);
            return NULL;
        }

        if (line->name == NULL) {
            MOCK_LINE_PARAM("[price_data][product_data][name]");
            goto missing;
        }

        if (line->quantity == NULL) {
            MOCK_LINE_PARAM("[quantity]");
            goto missing;
        }

        if (mock_parse_int64(line->quantity, &quantity) != 0 || quantity < 1)
        {
            MOCK_LINE_PARAM("[quantity]");
            mock_invalid(inv, "parameter_invalid_integer", param,
                         "Invalid positive integer: %s", line->quantity);
            return NULL;
        }

#undef MOCK_LINE_PARAM

        if (__builtin_mul_overflow(amount, quantity, &amount)
            || __builtin_add_overflow(total, amount, &total))
        {
            mock_invalid(inv, "amount_too_large", "line_items",
                         "The total amount is too large.");
            return NULL;
        }
    }

    if (p->success_url == NULL) {
        mock_invalid(inv, "parameter_missing", "success_url",
                     "Missing required param: success_url.");
        return NULL;
    }

    if (!mock_url_valid(p->success_url, MOCK_MAX_URL)) {
        mock_invalid(inv, "url_invalid", "success_url", "Not a valid URL");
        return NULL;
    }

    if (p->cancel_url == NULL) {
        mock_invalid(inv, "parameter_missing", "cancel_url",
                     "Missing required param: cancel_url.");
        return NULL;
    }

    if (!mock_url_valid(p->cancel_url, MOCK_MAX_URL)) {
        mock_invalid(inv, "url_invalid", "cancel_url", "Not a valid URL");
        return NULL;
    }

    if (p->client_reference_id != NULL
        && strlen(p->client_reference_id) > MOCK_MAX_REFERENCE)
    {
        mock_invalid(inv, "parameter_invalid", "client_reference_id",
                     "client_reference_id can be at most %d characters.",
                     MOCK_MAX_REFERENCE);
        return NULL;
    }

    if (p->capture_method != NULL
        && strcmp(p->capture_method, "automatic") != 0
        && strcmp(p->capture_method, "automatic_async") != 0
        && strcmp(p->capture_method, "manual") != 0)
    {
        mock_invalid(inv, "parameter_invalid",
                     "payment_intent_data[capture_method]",
                     "Invalid payment_intent_data[capture_method]: must be "
                     "one of automatic, automatic_async, or manual");
        return NULL;
    }

    /* saving the method: Stripe's setup_future_usage words, on a
     * Customer given (cus_…) or made (customer_creation), not both */
    if (p->setup_future_usage != NULL
        && strcmp(p->setup_future_usage, "off_session") != 0
        && strcmp(p->setup_future_usage, "on_session") != 0)
    {
        mock_invalid(inv, "parameter_invalid",
                     "payment_intent_data[setup_future_usage]",
                     "Invalid payment_intent_data[setup_future_usage]: must "
                     "be one of on_session or off_session");
        return NULL;
    }

    if (p->customer_creation != NULL
        && strcmp(p->customer_creation, "always") != 0
        && strcmp(p->customer_creation, "if_required") != 0)
    {
        mock_invalid(inv, "parameter_invalid", "customer_creation",
                     "Invalid customer_creation: must be one of always or "
                     "if_required");
        return NULL;
    }

    if (p->customer != NULL
        && (p->customer_creation != NULL || strncmp(p->customer, "cus_", 4)
                                            != 0))
    {
        mock_invalid(inv, p->customer_creation ? "parameter_invalid"
                                               : "resource_missing",
                     "customer", p->customer_creation
                     ? "You may only specify one of these parameters: "
                       "customer, customer_creation."
                     : "No such customer: '%s'", p->customer);
        return NULL;
    }

    if (p->customer_email != NULL
        && (strchr(p->customer_email, '@') == NULL
            || strpbrk(p->customer_email, " \t") != NULL))
    {
        mock_invalid(inv, "email_invalid", "customer_email",
                     "Invalid email address: %s", p->customer_email);
        return NULL;
    }

    now = (int64_t) time(NULL);

    if (p->expires_at == NULL) {
        /* Stripe's default lifetime */
        expires_at = now + MOCK_EXPIRES_MAX;

    } else if (mock_parse_int64(p->expires_at, &expires_at) != 0) {
        mock_invalid(inv, "parameter_invalid_integer", "expires_at",
                     "Invalid integer: %s", p->expires_at);
        return NULL;

    } else if (expires_at < now + MOCK_EXPIRES_MIN
               || expires_at > now + MOCK_EXPIRES_MAX)
    {
        mock_invalid(inv, "parameter_invalid", "expires_at",
                     "The expires_at timestamp must be at least 30 minutes "
                     "and at most 24 hours from now (now is %lld).",
                     (long long) now);
        return NULL;
    }

    memcpy(id, MOCK_SESSION_ID_PREFIX, sizeof(MOCK_SESSION_ID_PREFIX) - 1);
    if (mock_random_alnum(id + sizeof(MOCK_SESSION_ID_PREFIX) - 1,
                          MOCK_SESSION_ID_RANDOM)
        != 0)
    {
        mock_invalid(inv, NULL, NULL, "No randomness.");
        return NULL;
    }

    if (fault->hosted_url != NULL) {
        snprintf(url, sizeof(url), "%s", fault->hosted_url);
    } else {
        snprintf(url, sizeof(url), "%s/pay/%s", mock_conf.public_url, id);
    }

    /* Field order follows Stripe's checkout.session object. */
    s = json_object();
    if (s == NULL) {
        mock_invalid(inv, NULL, NULL, "Out of memory.");
        return NULL;
    }

    json_object_set_new(s, "id", json_string(id));
    json_object_set_new(s, "object", json_string("checkout.session"));
    json_object_set_new(s, "amount_subtotal", json_integer(total));
    json_object_set_new(s, "amount_total", json_integer(total));
    json_object_set_new(s, "cancel_url", json_string(p->cancel_url));
    json_object_set_new(s, "client_reference_id",
                        p->client_reference_id
                        ? json_string(p->client_reference_id) : json_null());
    json_object_set_new(s, "created", json_integer(now));
    json_object_set_new(s, "currency", json_string(currency));
    json_object_set_new(s, "customer_email",
                        p->customer_email
                        ? json_string(p->customer_email) : json_null());
    json_object_set_new(s, "expires_at", json_integer(expires_at));
    json_object_set_new(s, "livemode", json_false());
    json_object_set(s, "metadata", p->metadata);
    json_object_set_new(s, "mode", json_string("payment"));
    json_object_set_new(s, "payment_intent", json_null());
    json_object_set_new(s, "payment_status", json_string("unpaid"));
    json_object_set_new(s, "status", json_string("open"));
    json_object_set_new(s, "success_url", json_string(p->success_url));
    json_object_set_new(s, "url", json_string(url));

    if (json_object_size(s) != 18) {
        json_decref(s);
        mock_invalid(inv, NULL, NULL, "Out of memory.");
        return NULL;
    }

    /* the mock's own: the payment intent's capture and metadata, which
     * the session object does not show (its payment_intent does) */
    if (p->capture_method != NULL
        && strcmp(p->capture_method, "manual") == 0)
    {
        json_object_set_new(s, "capture", json_string("manual"));
    }

    if (p->pi_nonce != NULL) {
        json_object_set_new(s, "payment_intent_metadata",
                            json_pack("{ss}", "nonce", p->pi_nonce));
    }

    /* the method is saved when the shopper pays (vault.c) */
    if (p->setup_future_usage != NULL) {
        json_object_set_new(s, "save_usage",
                            json_string(p->setup_future_usage));

        if (p->customer != NULL) {
            json_object_set_new(s, "save_customer",
                                json_string(p->customer));
        }
    }

    return s;

missing:

    mock_invalid(inv, "parameter_missing", param,
                 "Missing required param: %s.", param);
    return NULL;
}


/*
 * Parses and validates a create request.  Returns the new session, or NULL
 * with inv filled: inv->code NULL means an internal error (500).
 */
static json_t *
mock_session_new(const char *body, size_t len, const mock_fault_t *fault,
    mock_invalid_t *inv)
{
    json_t         *s;
    mock_form_t     form;
    mock_params_t  *p;

    if (mock_form_parse(body, len, &form, inv->message, sizeof(inv->message))
        != 0)
    {
        inv->code = "parameter_invalid";
        inv->param[0] = '\0';
        return NULL;
    }

    /* 100 line items do not belong on a 512 KiB thread stack */
    p = calloc(1, sizeof(mock_params_t));
    if (p == NULL) {
        mock_form_free(&form);
        mock_invalid(inv, NULL, NULL, "Out of memory.");
        return NULL;
    }

    p->metadata = json_object();
    s = NULL;

    if (p->metadata == NULL) {
        mock_invalid(inv, NULL, NULL, "Out of memory.");

    } else if (mock_params_collect(p, &form, inv) == 0) {
        s = mock_session_build(p, fault, inv);
    }

    json_decref(p->metadata);
    free(p);
    mock_form_free(&form);

    return s;
}


/* fail_status: the transient failures Stripe's clients retry. */
static enum MHD_Result
mock_send_failure(struct MHD_Connection *c, unsigned status)
{
    if (status == MHD_HTTP_TOO_MANY_REQUESTS) {
        return mock_stripe_error(c, status, "invalid_request_error",
                                 "rate_limit", NULL,
                                 "Too many requests hit the API too "
                                 "quickly.");
    }

    if (status == MHD_HTTP_CONFLICT) {
        return mock_stripe_error(c, status, "invalid_request_error",
                                 "lock_timeout", NULL,
                                 "This object cannot be accessed right now "
                                 "because another API request or Stripe "
                                 "process is currently accessing it.");
    }

    return mock_stripe_error(c, status, "api_error", NULL, NULL,
                             "An unknown error occurred (mock fault, HTTP "
                             "%u).", status);
}


/* refuse_status: a refusal for good. */
static enum MHD_Result
mock_send_refusal(struct MHD_Connection *c, unsigned status)
{
    if (status == MHD_HTTP_PAYMENT_REQUIRED) {
        return mock_send_json(c, status,
                   json_pack("{s{ss ss ss ss}}", "error",
                             "type", "card_error",
                             "code", "card_declined",
                             "decline_code", "generic_decline",
                             "message", "Your card was declined."));
    }

    if (status == MHD_HTTP_UNAUTHORIZED) {
        return mock_unauthorized(c);
    }

    if (status == MHD_HTTP_NOT_FOUND) {
        return mock_stripe_error(c, status, "invalid_request_error",
                                 "resource_missing", NULL,
                                 "No such price (mock refusal).");
    }

    return mock_stripe_error(c, status, "invalid_request_error",
                             "parameter_invalid", NULL,
                             "This request was refused (mock refusal, HTTP "
                             "%u).", status);
}


/* Every refusal of POST /v1/checkout/sessions, in Stripe's words. */
static enum MHD_Result
mock_stripe_refuse(struct MHD_Connection *c, mock_refusal_e what,
    unsigned status, const char *key, const mock_invalid_t *inv)
{
    switch (what) {

    case MOCK_REFUSE_UNAUTHORIZED:
        return mock_unauthorized(c);

    case MOCK_REFUSE_KEY_INVALID:
        return mock_stripe_error(c, MHD_HTTP_BAD_REQUEST,
                                 "invalid_request_error", NULL, NULL,
                                 "Keys for idempotent requests must be 1 to "
                                 "%d characters long.", MOCK_MAX_KEY_LEN);

    case MOCK_REFUSE_KEY_MISMATCH:
        return mock_stripe_error(c, MHD_HTTP_BAD_REQUEST, "idempotency_error",
                                 NULL, NULL,
                                 "Keys for idempotent requests can only be "
                                 "used with the same parameters they were "
                                 "first used with. Try using a key other "
                                 "than '%s' if you meant to execute a "
                                 "different request.", key);

    case MOCK_REFUSE_KEY_IN_USE:
        return mock_stripe_error(c, MHD_HTTP_CONFLICT, "idempotency_error",
                                 "idempotency_key_in_use", NULL,
                                 "There is currently another in-progress "
                                 "request using this Idempotent Key (that "
                                 "probably means you submitted twice, and "
                                 "the other request is still going "
                                 "through): %s. Please try again later.",
                                 key);

    case MOCK_REFUSE_FAIL:
        return mock_send_failure(c, status);

    case MOCK_REFUSE_FAULT:
        return mock_send_refusal(c, status);

    case MOCK_REFUSE_CONTENT_TYPE:
        return mock_stripe_error(c, MHD_HTTP_BAD_REQUEST,
                                 "invalid_request_error", NULL, NULL,
                                 "Request bodies must be "
                                 "application/x-www-form-urlencoded.");

    case MOCK_REFUSE_INVALID:
        return mock_stripe_error(c, MHD_HTTP_BAD_REQUEST,
                                 "invalid_request_error", inv->code,
                                 inv->param, "%s", inv->message);

    default: /* MOCK_REFUSE_INTERNAL */
        return mock_stripe_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "api_error", NULL, NULL, "%s",
                                 inv ? inv->message : "Internal error.");
    }
}


static json_t *
mock_stripe_build(const char *body, size_t len, const mock_fault_t *fault,
    mock_invalid_t *inv, char **response)
{
    json_t  *s;

    s = mock_session_new(body, len, fault, inv);
    if (s == NULL) {
        return NULL;
    }

    /* Stripe answers with the session object itself */
    *response = json_dumps(s, JSON_COMPACT);
    if (*response == NULL) {
        json_decref(s);
        mock_invalid(inv, NULL, NULL, "Out of memory.");
        return NULL;
    }

    return s;
}


static const mock_api_t  mock_stripe_api = {
    "stripe",
    MOCK_MAX_KEY_LEN,
    "application/x-www-form-urlencoded",
    MHD_HTTP_OK,
    mock_authorized,
    mock_stripe_refuse,
    mock_stripe_build,
    NULL
};


/* POST /v1/checkout/sessions */
enum MHD_Result
mock_stripe_create(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_stripe_api);
}


/*
 * The session's payment intent expanded into it, once it has one: a manual
 * capture's as its events show it (requires_capture while held, then
 * succeeded or canceled); an automatic one's succeeded once paid, else
 * processing (an asynchronous method on its way).  A session that saved
 * the method: setup_future_usage, payment_method and customer too.
 */
static void
mock_stripe_expand_intent(json_t *session)
{
    int          paid;
    json_t      *pi, *m, *md;
    const char  *ps;

    if (!json_is_string(json_object_get(session, "payment_intent"))) {
        return;
    }

    if (mock_session_manual(session)) {
        pi = mock_stripe_pi_object(session);

    } else {
        ps = json_string_value(json_object_get(session, "payment_status"));
        paid = ps != NULL && strcmp(ps, "paid") == 0;
        pi = json_pack("{sO ss sO so ss sO ss s{}}",
                       "id", json_object_get(session, "payment_intent"),
                       "object", "payment_intent",
                       "amount", json_object_get(session, "amount_total"),
                       "amount_received",
                       paid ? json_incref(json_object_get(session,
                                                          "amount_total"))
                            : json_integer(0),
                       "capture_method", "automatic_async",
                       "currency", json_object_get(session, "currency"),
                       "status", paid ? "succeeded" : "processing",
                       "metadata");

        md = json_object_get(session, "payment_intent_metadata");
        if (pi != NULL && md != NULL) {
            json_object_set_new(pi, "metadata", json_deep_copy(md));
        }
    }

    /* a session that saved the shopper's method: the intent set it up,
     * on the session's customer */
    m = json_object_get(session, "save_usage") != NULL
        ? mock_vault_of_reference(json_string_value(
              json_object_get(session, "client_reference_id")))
        : NULL;

    if (pi != NULL && m != NULL) {
        json_object_set(pi, "setup_future_usage",
                        json_object_get(session, "save_usage"));
        json_object_set(pi, "payment_method", json_object_get(m, "token"));
        json_object_set(pi, "customer", json_object_get(m, "customer"));
    }

    json_decref(m);

    if (pi != NULL) {
        json_object_set_new(session, "payment_intent", pi);
    }
}


/*
 * expand[]=<intent>.payment_method: the expanded intent's payment_method
 * id replaced by the PaymentMethod object (mock_vault_pm_object), as
 * Stripe expands a nested field; nothing when the intent has none.
 */
static void
mock_stripe_expand_pm(json_t *session, const char *intent)
{
    json_t  *si, *pm;

    si = json_object_get(session, intent);

    if (!json_is_object(si)
        || !json_is_string(json_object_get(si, "payment_method")))
    {
        return;
    }

    pm = mock_vault_pm_object(json_string_value(
             json_object_get(session, "client_reference_id")));

    if (pm != NULL) {
        json_object_set_new(si, "payment_method", pm);
    }
}


/* GET /v1/checkout/sessions/{id} */
enum MHD_Result
mock_stripe_retrieve(struct MHD_Connection *c, const char *id)
{
    json_t      *session;
    const char  *expand;

    if (mock_sleep_ms(mock_conf.latency_ms) != 0) {
        return MHD_NO;
    }

    if (!mock_authorized(c)) {
        return mock_unauthorized(c);
    }

    /* an Adyen or generic session is not Stripe's */
    if (mock_session_get(id, &session) == MOCK_SESSION_NOT_FOUND
        || json_object_get(session, "dialect") != NULL)
    {
        json_decref(session);
        return mock_stripe_error(c, MHD_HTTP_NOT_FOUND,
                                 "invalid_request_error", "resource_missing",
                                 "session", "No such checkout.session: '%s'",
                                 id);
    }

    /* Stripe expands what expand[] names: the setup intent, or the
     * payment intent (null before the shopper paid) */
    expand = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                         "expand[]");
    if (expand != NULL && (strcmp(expand, "setup_intent") == 0
                           || strcmp(expand, "setup_intent.payment_method")
                              == 0))
    {
        mock_vault_lookup_setup(session, "stripe");

    } else if (expand != NULL
               && (strcmp(expand, "payment_intent") == 0
                   || strcmp(expand, "payment_intent.payment_method") == 0))
    {
        mock_stripe_expand_intent(session);
    }

    /* ...payment_method: the intent's method as its object (its card) */
    if (expand != NULL && strlen(expand) > 15
        && strcmp(expand + strlen(expand) - 15, ".payment_method") == 0)
    {
        mock_stripe_expand_pm(session, strncmp(expand, "setup", 5) == 0
                                       ? "setup_intent" : "payment_intent");
    }

    return mock_send_json(c, MHD_HTTP_OK, session);
}


enum MHD_Result
mock_stripe_expire_call(struct MHD_Connection *c, const char *id)
{
    return mock_stripe_expire(c, id, mock_authorized);
}


/* POST /v1/refunds and POST /v1/transfers (money.c builds them) */

static const mock_api_t  mock_stripe_refund_api = {
    "stripe refund", MOCK_MAX_KEY_LEN, "application/x-www-form-urlencoded",
    MHD_HTTP_OK, mock_authorized, mock_stripe_refuse,
    mock_money_stripe_refund_build, mock_money_committed
};

static const mock_api_t  mock_stripe_transfer_api = {
    "stripe transfer", MOCK_MAX_KEY_LEN, "application/x-www-form-urlencoded",
    MHD_HTTP_OK, mock_authorized, mock_stripe_refuse,
    mock_money_stripe_transfer_build, mock_money_committed
};


/* POST /v1/payment_intents/{pi}/capture and /cancel (capture.c) */

static const mock_api_t  mock_stripe_capture_api = {
    "stripe capture", MOCK_MAX_KEY_LEN, "application/x-www-form-urlencoded",
    MHD_HTTP_OK, mock_authorized, mock_stripe_refuse,
    mock_capture_stripe_capture_build, mock_capture_committed
};

static const mock_api_t  mock_stripe_cancel_api = {
    "stripe cancel", MOCK_MAX_KEY_LEN, "application/x-www-form-urlencoded",
    MHD_HTTP_OK, mock_authorized, mock_stripe_refuse,
    mock_capture_stripe_cancel_build, mock_capture_committed
};


enum MHD_Result
mock_stripe_capture(struct MHD_Connection *c, mock_request_t *r, int capture)
{
    return mock_create(c, r, capture ? &mock_stripe_capture_api
                                     : &mock_stripe_cancel_api);
}


enum MHD_Result
mock_stripe_refund(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_stripe_refund_api);
}


enum MHD_Result
mock_stripe_transfer(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_stripe_transfer_api);
}


/* POST /v1/payment_intents: an off-session charge of a saved method
 * (vault.c) */

static const mock_api_t  mock_stripe_charge_api = {
    "stripe charge", MOCK_MAX_KEY_LEN, "application/x-www-form-urlencoded",
    MHD_HTTP_OK, mock_authorized, mock_stripe_refuse,
    mock_vault_stripe_charge_build, mock_vault_committed
};


enum MHD_Result
mock_stripe_charge(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_stripe_charge_api);
}
