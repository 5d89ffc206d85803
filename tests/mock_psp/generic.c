/*
 * Mock PSP: the "generic" PSP of API.md: POST /sessions {"reference",
 * "amount" (decimal string), "currency", "return_url", "cancel_url",
 * "expires_at"} answering {"token", "url", "expires_at"}, and webhooks
 * {"event_id", "type", "reference", "token", "amount", "currency"} signed
 * as a compact ES256 JWT in Payments-Verification (kid, iat,
 * request_body_sha256), the scheme Plaid uses (PSP_FACTS.md).
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mock_psp.h"
#include "../b64url.h"


#define MOCK_GENERIC_KEY_MAX        255
#define MOCK_GENERIC_REFERENCE_MAX  64
#define MOCK_GENERIC_URL_MAX        4096
#define MOCK_GENERIC_LIFETIME_MAX   (24 * 60 * 60)
#define MOCK_GENERIC_STALE_S        600


static int mock_generic_sign(const mock_wh_event_t *ev, char *line,
    size_t size);


static const mock_wh_dialect_t  mock_generic_dialect = {
    "generic",
    &mock_conf.generic_webhook_url,
    mock_generic_sign
};


/* --- registration --------------------------------------------------------- */

int
mock_generic_authorized(struct MHD_Connection *c)
{
    size_t       len;
    const char  *auth;

    auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth == NULL || mock_conf.generic_secret == NULL
        || strncmp(auth, "Bearer ", 7) != 0)
    {
        return 0;
    }

    auth += 7;
    len = strlen(mock_conf.generic_secret);

    return strlen(auth) == len
           && CRYPTO_memcmp(auth, mock_conf.generic_secret, len) == 0;
}


static enum MHD_Result
mock_generic_error(struct MHD_Connection *c, unsigned status,
    const char *code, const char *message)
{
    return mock_send_json(c, status, json_pack("{s{ss ss}}", "error",
                                               "code", code,
                                               "message", message));
}


static enum MHD_Result
mock_generic_refuse(struct MHD_Connection *c, mock_refusal_e what,
    unsigned status, const char *key, const mock_invalid_t *inv)
{
    (void) key;

    switch (what) {
    case MOCK_REFUSE_UNAUTHORIZED:
        return mock_generic_error(c, 401, "unauthorized", "bad API key");
    case MOCK_REFUSE_KEY_INVALID:
        return mock_generic_error(c, 400, "idempotency_key_invalid",
                                  "Idempotency-Key must be 1 to 255 "
                                  "characters");
    case MOCK_REFUSE_KEY_MISMATCH:
        return mock_generic_error(c, 422, "idempotency_key_reused",
                                  "Idempotency-Key used with another body");
    case MOCK_REFUSE_KEY_IN_USE:
        return mock_generic_error(c, 409, "idempotency_key_in_use",
                                  "a request with this key is in progress");
    case MOCK_REFUSE_FAIL:
        return mock_generic_error(c, status, "unavailable",
                                  "mock fault: a transient failure");
    case MOCK_REFUSE_FAULT:
        return (status == 401)
               ? mock_generic_refuse(c, MOCK_REFUSE_UNAUTHORIZED, status, key,
                                     NULL)
               : mock_generic_error(c, status, "refused",
                                    "mock refusal: declined");
    case MOCK_REFUSE_CONTENT_TYPE:
        return mock_generic_error(c, 415, "unsupported_media_type",
                                  "application/json only");
    case MOCK_REFUSE_INVALID:
        return mock_generic_error(c, 400, inv->code, inv->message);
    default:
        return mock_generic_error(c, 500, "internal",
                                  inv ? inv->message : "internal error");
    }
}


/*
 * A decimal amount in the currency's exponent, into minor units, with no
 * floating point: ^(0|[1-9][0-9]*)(\.[0-9]{1,e})?$ and > 0.
 */
static int
mock_parse_decimal(const char *s, const char *currency, json_int_t *out)
{
    int          e, decimals;
    json_int_t   v;
    const char  *p;

    e = mock_currency_exponent(currency);
    v = 0;
    decimals = -1;

    if (s == NULL || s[0] == '\0' || (s[0] == '0' && isdigit((unsigned char) s[1])))
    {
        return -1;
    }

    for (p = s; *p; p++) {
        if (*p == '.' && decimals < 0 && p != s && p[1] != '\0') {
            decimals = 0;
            continue;
        }

        if (!isdigit((unsigned char) *p)
            || __builtin_mul_overflow(v, 10, &v)
            || __builtin_add_overflow(v, *p - '0', &v))
        {
            return -1;
        }

        if (decimals >= 0 && ++decimals > e) {
            return -1;
        }
    }

    for (decimals = decimals < 0 ? 0 : decimals; decimals < e; decimals++) {
        if (__builtin_mul_overflow(v, 10, &v)) {
            return -1;
        }
    }

    if (v <= 0) {
        return -1;
    }

    *out = v;
    return 0;
}


static json_t *
mock_generic_build(const char *body, size_t len, const mock_fault_t *fault,
    mock_invalid_t *inv, char **response)
{
    char          token[32], url[MOCK_GENERIC_URL_MAX + 128];
    int64_t       now;
    json_t       *req, *s, *exp, *ans, *md, *cap, *save, *setup;
    json_int_t    amount, expires;
    const char   *reference, *currency, *ret, *cancel;
    json_error_t  jerr;

    req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL || !json_is_object(req)) {
        json_decref(req);
        mock_invalid(inv, "invalid_request", NULL, "not a JSON object: %s",
                     jerr.text);
        return NULL;
    }

    s = NULL;
    now = (int64_t) time(NULL);
    reference = json_string_value(json_object_get(req, "reference"));
    currency = json_string_value(json_object_get(req, "currency"));
    ret = json_string_value(json_object_get(req, "return_url"));
    cancel = json_string_value(json_object_get(req, "cancel_url"));
    exp = json_object_get(req, "expires_at");
    expires = exp ? json_integer_value(exp) : now + 3600;

    if (reference == NULL || reference[0] == '\0'
        || strlen(reference) > MOCK_GENERIC_REFERENCE_MAX)
    {
        mock_invalid(inv, "invalid_reference", "reference",
                     "reference: 1 to %d characters",
                     MOCK_GENERIC_REFERENCE_MAX);
        goto done;
    }

    if (!mock_currency_valid(currency)) {
        mock_invalid(inv, "invalid_currency", "currency",
                     "currency: three upper-case letters");
        goto done;
    }

    /* "mode": "setup" with save_payment_method: amount "0" in the
     * currency's exponent, the shopper only saves the method */
    setup = json_object_get(req, "mode");

    if (setup != NULL
        && (!json_is_string(setup)
            || strcmp(json_string_value(setup), "setup") != 0
            || json_object_get(req, "save_payment_method") == NULL
            || json_object_get(req, "capture") != NULL))
    {
        mock_invalid(inv, "invalid_mode", "mode",
                     "mode: \"setup\" only, with save_payment_method and "
                     "no capture");
        goto done;
    }

    if (setup != NULL) {
        if (!json_is_string(json_object_get(req, "amount"))
            || strspn(json_string_value(json_object_get(req, "amount")),
                      "0.") != json_string_length(json_object_get(req,
                                                                 "amount"))
            || json_string_value(json_object_get(req, "amount"))[0] != '0')
        {
            mock_invalid(inv, "invalid_amount", "amount",
                         "amount: \"0\" in a setup");
            goto done;
        }

        amount = 0;

    } else if (mock_parse_decimal(json_string_value(json_object_get(req,
                                                                  "amount")),
                                  currency, &amount)
               != 0)
    {
        mock_invalid(inv, "invalid_amount", "amount",
                     "amount: a positive decimal string in %s's exponent",
                     currency);
        goto done;
    }

    if (!mock_url_valid(ret, MOCK_GENERIC_URL_MAX)
        || !mock_url_valid(cancel, MOCK_GENERIC_URL_MAX))
    {
        mock_invalid(inv, "invalid_url", "return_url",
                     "return_url and cancel_url must be http(s) URLs");
        goto done;
    }

    if ((exp != NULL && !json_is_integer(exp)) || expires <= now
        || expires > now + MOCK_GENERIC_LIFETIME_MAX + 60)
    {
        mock_invalid(inv, "invalid_expires_at", "expires_at",
                     "expires_at: in the future, at most 24 h ahead");
        goto done;
    }

    if (mock_generic_metadata_ok(req, inv) != 0) {
        goto done;
    }

    /* capture (optional): "automatic" or "manual" (authorize now,
     * capture later: payment.authorized instead of payment.succeeded) */
    cap = json_object_get(req, "capture");

    if (cap != NULL
        && (!json_is_string(cap)
            || (strcmp(json_string_value(cap), "automatic") != 0
                && strcmp(json_string_value(cap), "manual") != 0)))
    {
        mock_invalid(inv, "invalid_capture", "capture",
                     "capture: \"automatic\" or \"manual\"");
        goto done;
    }

    /* save_payment_method (optional): {"customer", "usage"}, the method
     * stored when the shopper pays (payment_method.saved) */
    save = json_object_get(req, "save_payment_method");

    if (save != NULL
        && (!json_is_object(save)
            || !json_is_string(json_object_get(save, "customer"))
            || !json_is_string(json_object_get(save, "usage"))
            || (strcmp(json_string_value(json_object_get(save, "usage")),
                       "off_session") != 0
                && strcmp(json_string_value(json_object_get(save, "usage")),
                          "on_session") != 0)))
    {
        mock_invalid(inv, "invalid_save_payment_method",
                     "save_payment_method", "save_payment_method: "
                     "{\"customer\", \"usage\": \"off_session\" or "
                     "\"on_session\"}");
        goto done;
    }

    md = json_object_get(req, "metadata");

    memcpy(token, "gs_", 3);
    if (mock_random_alnum(token + 3, 24) != 0) {
        mock_invalid(inv, NULL, NULL, "No randomness.");
        goto done;
    }

    if (fault->hosted_url != NULL) {
        snprintf(url, sizeof(url), "%s", fault->hosted_url);
    } else {
        snprintf(url, sizeof(url), "%s/pay/%s", mock_conf.public_url, token);
    }

    s = json_pack("{ss ss sI ss ss ss ss sI ss ss sb ss}",
                  "id", token,
                  "dialect", "generic",
                  "amount_total", amount,
                  "currency", currency,
                  "client_reference_id", reference,
                  "success_url", ret,
                  "cancel_url", cancel,
                  "expires_at", expires,
                  "status", "open",
                  "payment_status", "unpaid",
                  "livemode", 0,
                  "url", url);

    if (s != NULL && md != NULL) {
        json_object_set(s, "metadata", md);
    }

    if (s != NULL && cap != NULL) {
        json_object_set(s, "capture", cap);
    }

    if (s != NULL && save != NULL) {
        json_object_set(s, "save_usage", json_object_get(save, "usage"));
        json_object_set(s, "save_customer",
                        json_object_get(save, "customer"));
    }

    ans = json_pack("{ss ss sI}", "token", token, "url", url,
                    "expires_at", expires);
    if (s != NULL && ans != NULL) {
        *response = json_dumps(ans, JSON_COMPACT);
    }
    json_decref(ans);

    if (s == NULL || *response == NULL) {
        json_decref(s);
        s = NULL;
        mock_invalid(inv, NULL, NULL, "Out of memory.");
    }

done:

    json_decref(req);
    return s;
}


static const mock_api_t  mock_generic_api = {
    "generic",
    MOCK_GENERIC_KEY_MAX,
    "application/json",
    201,
    mock_generic_authorized,
    mock_generic_refuse,
    mock_generic_build,
    NULL
};


/* POST /sessions */
enum MHD_Result
mock_generic_create(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_generic_api);
}


/* --- the session look-up -------------------------------------------------- */

/* a manual capture's payment, held: nothing captured nor released */
static int
mock_generic_held(const json_t *s)
{
    return mock_session_manual(s)
           && json_is_string(json_object_get(s, "payment_ref"))
           && json_integer_value(json_object_get(s, "amount_capturable")) > 0
           && json_integer_value(json_object_get(s, "amount_captured")) == 0;
}


/*
 * GET /sessions/{token}: {"token","reference","status","amount",
 * "currency","expires_at"} (and "payment_id" once paid) as the session
 * is now: "open", "succeeded"
 * once paid, "authorized" when a manual capture's payment is held (as
 * payment.authorized says it: nothing captured nor released yet),
 * "pending" when paid but not settled (async_payment), "failed" when the
 * shopper declined, "expired" when its time ran out.
 * The amount is the session's, written back in the currency's exponent.
 * A session of another dialect is unknown here.
 */
enum MHD_Result
mock_generic_lookup(struct MHD_Connection *c, const char *token)
{
    char                   amount[32];
    enum MHD_Result        rc;
    json_t                *s, *ans;
    const char            *d, *ps, *status, *currency;
    mock_session_state_e   state;

    if (mock_sleep_ms(mock_conf.latency_ms) != 0) {
        return MHD_NO;
    }

    if (!mock_generic_authorized(c)) {
        return mock_generic_refuse(c, MOCK_REFUSE_UNAUTHORIZED, 401, NULL,
                                   NULL);
    }

    state = mock_session_get(token, &s);
    d = json_string_value(json_object_get(s, "dialect"));

    if (state == MOCK_SESSION_NOT_FOUND || d == NULL
        || strcmp(d, "generic") != 0)
    {
        json_decref(s);
        return mock_generic_error(c, 404, "not_found", "no such session");
    }

    ps = json_string_value(json_object_get(s, "payment_status"));
    currency = json_string_value(json_object_get(s, "currency"));

    switch (state) {
    case MOCK_SESSION_OPEN:
        status = "open";
        break;
    case MOCK_SESSION_COMPLETE:
        status = (ps != NULL && strcmp(ps, "paid") == 0) ? "succeeded"
                 : mock_generic_held(s) ? "authorized"
                 : "pending";
        break;
    default:
        status = json_is_true(json_object_get(s, "declined")) ? "failed"
                                                              : "expired";
        break;
    }

    if (currency == NULL
        || mock_format_minor(amount, sizeof(amount),
                             json_integer_value(json_object_get(
                                 s, "amount_total")),
                             currency)
           != 0)
    {
        json_decref(s);
        return mock_generic_error(c, 500, "internal", "bad session amount");
    }

    ans = json_pack("{ss ss ss ss ss sO}",
                    "token", token,
                    "reference",
                    json_string_value(json_object_get(
                        s, "client_reference_id")),
                    "status", status,
                    "amount", amount,
                    "currency", currency,
                    "expires_at",
                    json_object_get(s, "expires_at"));

    /* a setup completed: the method it saved, as payment_method.saved */
    if (ans != NULL && state == MOCK_SESSION_COMPLETE) {
        mock_vault_lookup_setup(s, "generic");

        if (json_object_get(s, "payment_method") != NULL) {
            json_object_set(ans, "payment_method",
                            json_object_get(s, "payment_method"));
            json_object_set(ans, "brand", json_object_get(s, "brand"));
            json_object_set(ans, "last4", json_object_get(s, "last4"));
            json_object_set(ans, "exp_month",
                            json_object_get(s, "exp_month"));
            json_object_set(ans, "exp_year",
                            json_object_get(s, "exp_year"));
        }
    }

    /* the payment a paid session made, as its payment.succeeded names
     * it: refunds and disputes name it */
    if (ans != NULL && state == MOCK_SESSION_COMPLETE
        && json_is_string(json_object_get(s, "payment_ref")))
    {
        json_object_set(ans, "payment_id", json_object_get(s, "payment_ref"));
    }

    rc = mock_send_json(c, MHD_HTTP_OK, ans);
    json_decref(s);

    return rc;
}


enum MHD_Result
mock_generic_expire_call(struct MHD_Connection *c, const char *token)
{
    return mock_generic_expire(c, token, mock_generic_authorized,
                               mock_generic_error);
}


/* --- webhooks ------------------------------------------------------------- */

int
mock_generic_load_key(const char *path)
{
    FILE      *f;
    EVP_PKEY  *k;

    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }

    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC
        || EVP_PKEY_get_bits(k) != 256)
    {
        EVP_PKEY_free(k);
        return -1;
    }

    mock_conf.generic_jwt_key = k;
    return 0;
}


/* base64url of a JSON object's compact text at p; the length, or -1. */
static int
mock_generic_b64_json(json_t *obj, char *p, size_t room)
{
    char    *text;
    size_t   len;

    text = (obj != NULL) ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);

    if (text == NULL) {
        return -1;
    }

    len = strlen(text);
    if ((len + 2) / 3 * 4 + 1 > room) {
        free(text);
        return -1;
    }

    len = test_b64url((unsigned char *) text, len, p);
    free(text);

    return (int) len;
}


/*
 * <--generic-jwt-header>: <JWT>, signed now (or 600 s ago when stale): ES256
 * over header.claims, the signature in JOSE's R||S form (32 + 32 bytes,
 * not DER).  Claims: iat, request_body_sha256 (lower-case hex of the exact
 * body bytes), and iss and aud when the flags name them.
 */
static int
mock_generic_sign(const mock_wh_event_t *ev, char *line, size_t size)
{
    int                  n, ok;
    char                 hex[65], input[MOCK_WH_SIGNATURE_MAX], *p;
    size_t               i, siglen;
    json_t              *claims;
    unsigned char        digest[32], der[80], rs[64];
    EVP_MD_CTX          *md;
    ECDSA_SIG           *sig;
    const BIGNUM        *r, *s;
    const unsigned char *dp;

    if (mock_conf.generic_jwt_key == NULL) {
        return -1;
    }

    if (EVP_Digest(ev->body, strlen(ev->body), digest, NULL, EVP_sha256(),
                   NULL) != 1)
    {
        return -1;
    }

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }

    p = input;
    n = mock_generic_b64_json(json_pack("{ss ss ss}", "alg", "ES256",
                                        "kid", mock_conf.generic_jwt_kid,
                                        "typ", "JWT"),
                              p, sizeof(input));
    if (n < 0) {
        return -1;
    }

    p += n;
    *p++ = '.';

    claims = json_pack("{sI ss}", "iat",
                       (json_int_t) time(NULL)
                       - (ev->fault.stale ? MOCK_GENERIC_STALE_S : 0),
                       "request_body_sha256", hex);
    if (claims != NULL && mock_conf.generic_jwt_iss != NULL) {
        json_object_set_new(claims, "iss",
                            json_string(mock_conf.generic_jwt_iss));
    }
    if (claims != NULL && mock_conf.generic_jwt_aud != NULL) {
        json_object_set_new(claims, "aud",
                            json_string(mock_conf.generic_jwt_aud));
    }

    n = mock_generic_b64_json(claims, p, sizeof(input) - (size_t) (p - input));
    if (n < 0) {
        return -1;
    }

    p += n;

    md = EVP_MD_CTX_new();
    siglen = sizeof(der);
    ok = md != NULL
         && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
                               mock_conf.generic_jwt_key) == 1
         && EVP_DigestSign(md, der, &siglen, (unsigned char *) input,
                           (size_t) (p - input)) == 1;
    EVP_MD_CTX_free(md);

    /* OpenSSL signs in DER; JOSE wants R and S, 32 bytes each */
    sig = NULL;
    if (ok) {
        dp = der;
        sig = d2i_ECDSA_SIG(NULL, &dp, (long) siglen);
    }

    if (sig == NULL) {
        return -1;
    }

    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32;
    ECDSA_SIG_free(sig);

    if (!ok) {
        return -1;
    }

    if (ev->fault.bad_signature) {
        rs[17] ^= 0x40;
    }

    if ((size_t) (p - input) + 1 + 86 + 1 > sizeof(input)) {
        return -1;
    }

    *p++ = '.';
    p += test_b64url(rs, 64, p);
    *p = '\0';

    n = snprintf(line, size, "%s: %s", mock_conf.generic_jwt_header, input);

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


static char *
mock_generic_body(const mock_wh_event_t *ev, const json_t *session)
{
    char         amount[32];
    char        *body;
    json_t      *e;
    json_int_t   minor;
    const char  *currency;

    currency = json_string_value(json_object_get(session, "currency"));
    minor = ev->fault.has_amount
            ? ev->fault.amount
            : json_integer_value(json_object_get(session, "amount_total"));

    if (currency == NULL
        || mock_format_minor(amount, sizeof(amount), minor, currency) != 0)
    {
        return NULL;
    }

    e = json_pack("{ss ss ss ss ss ss}",
                  "event_id", ev->id,
                  "type", ev->type,
                  "reference", json_string_value(json_object_get(session,
                                                 "client_reference_id")),
                  "token", json_string_value(json_object_get(session, "id")),
                  "amount", amount,
                  "currency", currency);
    if (e == NULL) {
        return NULL;
    }

    /* the payment a paid session made: refunds and disputes name it */
    if ((strcmp(ev->type, "payment.succeeded") == 0
         || strcmp(ev->type, "payment.authorized") == 0)
        && json_is_string(json_object_get(session, "payment_ref")))
    {
        json_object_set(e, "payment_id",
                        json_object_get(session, "payment_ref"));
    }

    body = json_dumps(e, JSON_COMPACT);
    json_decref(e);

    return body;
}


static mock_wh_event_t *
mock_generic_event(const json_t *session, const char *type,
    const mock_webhook_fault_t *wf)
{
    char              id[64];
    const char       *sid;
    mock_wh_event_t  *ev;

    memcpy(id, "gev_", 4);
    if (mock_random_alnum(id + 4, 24) != 0) {
        return NULL;
    }

    sid = json_string_value(json_object_get(session, "id"));

    ev = mock_wh_event_new(&mock_generic_dialect, id, type, sid ? sid : "",
                           wf);
    if (ev == NULL) {
        return NULL;
    }

    ev->body = mock_generic_body(ev, session);
    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return NULL;
    }

    return ev;
}


/*
 * paid: [out_of_order: payment.failed first] then payment.succeeded; with
 * async_payment a payment.pending first and payment.succeeded
 * async_delay_ms later.  Declined: payment.failed.
 */
void
mock_generic_webhook(const json_t *session, int paid,
    const mock_webhook_fault_t *wf)
{
    mock_wh_event_t  *chain, **tail, *ev;

    chain = NULL;
    tail = &chain;

    if (paid && wf->out_of_order) {
        ev = mock_generic_event(session, "payment.failed", wf);
        if (ev == NULL) {
            goto failed;
        }
        *tail = ev;
        tail = &ev->next;
    }

    if (paid && wf->async_payment) {
        ev = mock_generic_event(session, "payment.pending", wf);
        if (ev == NULL) {
            goto failed;
        }
        *tail = ev;
        tail = &ev->next;
    }

    /* a manual-capture session's payment is an authorization */
    ev = mock_generic_event(session, !paid ? "payment.failed"
                                    : mock_session_manual(session)
                                    ? "payment.authorized"
                                    : "payment.succeeded", wf);
    if (ev == NULL) {
        goto failed;
    }

    if (paid && wf->async_payment) {
        free(ev->body);
        ev->body = NULL;
        ev->prepare = mock_wh_prepare_settled;
        ev->rebuild = mock_generic_body;
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


/*
 * After "paid": one JWT-signed event, body e (taken) with "event_id" and
 * "type" added first, delay_ms after now (plus the rule's
 * webhook_delay_ms), with the rule's duplicates.
 */
void
mock_generic_webhook_json(const char *type, json_t *e, const char *subject,
    const mock_webhook_fault_t *wf, long delay_ms)
{
    char              id[64];
    json_t           *full;
    const char       *k;
    json_t           *v;
    mock_wh_event_t  *ev;

    memcpy(id, "gev_", 4);

    if (e == NULL || mock_random_alnum(id + 4, 24) != 0
        || mock_conf.generic_webhook_url == NULL)
    {
        json_decref(e);
        return;
    }

    ev = mock_wh_event_new(&mock_generic_dialect, id, type, subject, wf);
    full = json_pack("{ss ss}", "event_id", id, "type", type);

    if (ev == NULL || full == NULL) {
        json_decref(full);
        json_decref(e);
        mock_wh_chain_free(ev);
        return;
    }

    json_object_foreach(e, k, v) {
        json_object_set(full, k, v);
    }

    json_decref(e);
    ev->body = json_dumps(full, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(full);

    if (ev->body == NULL) {
        mock_wh_chain_free(ev);
        return;
    }

    ev->delay_ms = delay_ms + wf->delay_ms;
    (void) mock_wh_send(ev);
}


/* POST /refunds and POST /payouts */

static const mock_api_t  mock_generic_refund_api = {
    "generic refund", MOCK_GENERIC_KEY_MAX, "application/json", 201,
    mock_generic_authorized, mock_generic_refuse,
    mock_money_generic_refund_build, mock_money_committed
};

static const mock_api_t  mock_generic_payout_api = {
    "generic payout", MOCK_GENERIC_KEY_MAX, "application/json", 201,
    mock_generic_authorized, mock_generic_refuse,
    mock_money_generic_payout_build, mock_money_committed
};


static const mock_api_t  mock_generic_capture_api = {
    "generic capture", MOCK_GENERIC_KEY_MAX, "application/json", 201,
    mock_generic_authorized, mock_generic_refuse,
    mock_capture_generic_capture_build, mock_capture_committed
};

static const mock_api_t  mock_generic_cancel_api = {
    "generic void", MOCK_GENERIC_KEY_MAX, "application/json", 201,
    mock_generic_authorized, mock_generic_refuse,
    mock_capture_generic_cancel_build, mock_capture_committed
};


enum MHD_Result
mock_generic_capture(struct MHD_Connection *c, mock_request_t *r,
    int capture)
{
    return mock_create(c, r, capture ? &mock_generic_capture_api
                                     : &mock_generic_cancel_api);
}


enum MHD_Result
mock_generic_refund(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_generic_refund_api);
}


enum MHD_Result
mock_generic_payout(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_generic_payout_api);
}


/* The generic API's decimal amounts, for money.c. */
int
mock_generic_decimal(const char *s, const char *currency, json_int_t *out)
{
    return mock_parse_decimal(s, currency, out);
}


/*
 * A generic request's optional "metadata": an object of strings (a
 * session's, a refund's, a pay-out's).  Returns -1, with inv set,
 * otherwise.
 */
int
mock_generic_metadata_ok(json_t *req, mock_invalid_t *inv)
{
    int          ok;
    json_t      *md, *val;
    const char  *key;

    md = json_object_get(req, "metadata");
    ok = md == NULL || json_is_object(md);

    json_object_foreach(md, key, val) {
        ok = ok && json_is_string(val);
    }

    if (!ok) {
        mock_invalid(inv, "invalid_metadata", "metadata",
                     "metadata: an object of string values");
        return -1;
    }

    return 0;
}


/* POST /payments: an off-session charge of a saved method (vault.c) */

static const mock_api_t  mock_generic_charge_api = {
    "generic charge", MOCK_GENERIC_KEY_MAX, "application/json", 201,
    mock_generic_authorized, mock_generic_refuse,
    mock_vault_generic_charge_build, mock_vault_committed
};


enum MHD_Result
mock_generic_charge(struct MHD_Connection *c, mock_request_t *r)
{
    return mock_create(c, r, &mock_generic_charge_api);
}
