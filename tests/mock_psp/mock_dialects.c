/*
 * The mock PSP tests' Adyen and generic helpers: see mock_dialects.h.
 */

#include "mock_dialects.h"

#include <ftw.h>


char  dl_dir[64];
static char  dl_priv[128];                   /* EC P-256 private key, PEM */
char  dl_pub[128];                    /* its public key, PEM */


void
dl_keys(void)
{
    char  cmd[512];

    snprintf(dl_dir, sizeof(dl_dir), "/tmp/mock-dialects.XXXXXX");
    cr_assert_not_null(mkdtemp(dl_dir));
    snprintf(dl_priv, sizeof(dl_priv), "%s/k.pem", dl_dir);
    snprintf(dl_pub, sizeof(dl_pub), "%s/k.pub", dl_dir);
    snprintf(cmd, sizeof(cmd), "openssl ecparam -name prime256v1 -genkey "
             "-noout -out %s 2>/dev/null && openssl ec -in %s -pubout "
             "-out %s 2>/dev/null", dl_priv, dl_priv, dl_pub);
    cr_assert_eq(system(cmd), 0);
}


/* Both dialects, their webhooks to the receiver (if urls; 2: Stripe's
 * too, signed with WH_SECRET), more args. */
void
dl_launch(int urls, const char *const *more)
{
    size_t       k, i;
    char         adyen[128], generic[128], stripe[128];
    const char  *args[40];

    rx_start();
    dl_keys();

    snprintf(adyen, sizeof(adyen),
             "http://127.0.0.1:%u/v1/webhooks/mock_adyen", rx.port);
    snprintf(generic, sizeof(generic),
             "http://127.0.0.1:%u/v1/webhooks/mock_generic", rx.port);
    snprintf(stripe, sizeof(stripe),
             "http://127.0.0.1:%u/v1/webhooks/stripe", rx.port);

    k = 0;
    args[k++] = "--adyen-secret";
    args[k++] = ADYEN_KEY;
    args[k++] = "--adyen-hmac-key";
    args[k++] = ADYEN_HMAC;
    args[k++] = "--generic-secret";
    args[k++] = GEN_KEY;
    args[k++] = "--generic-jwt-key";
    args[k++] = dl_priv;
    args[k++] = "--webhook-retry-ms";
    args[k++] = "50";

    if (urls) {
        args[k++] = "--adyen-webhook-url";
        args[k++] = adyen;
        args[k++] = "--generic-webhook-url";
        args[k++] = generic;
    }

    if (urls == 2) {
        args[k++] = "--webhook-url";
        args[k++] = stripe;
        args[k++] = "--stripe-webhook-secret";
        args[k++] = WH_SECRET;
    }

    for (i = 0; more != NULL && more[i] != NULL && k < 38; i++) {
        args[k++] = more[i];
    }

    args[k] = NULL;

    mock_start_with(args);
}


void
dl_start(void)
{
    dl_launch(1, NULL);
}


/* the three dialects' webhooks to the receiver, and Adyen's Transfers API
 * on its own port (DL_TRANSFERS_KEY): what comes after "paid" */
void
dl_start_money(void)
{
    static const char *const  more[] = {
        "--adyen-transfers-port", "0",
        "--adyen-transfers-secret", DL_TRANSFERS_KEY, NULL
    };

    dl_launch(2, more);
    cr_assert_neq(mock_transfers_url[0], '\0');
}


void
dl_start_no_urls(void)
{
    dl_launch(0, NULL);
}


void
dl_start_claims(void)
{
    static const char  *more[] = {
        "--generic-jwt-kid", "kid-1",
        "--generic-jwt-iss", "https://psp.example",
        "--generic-jwt-aud", "ngx_payments",
        "--generic-jwt-header", "X-Mock-Signature",
        NULL
    };

    rx.jwt_header = "X-Mock-Signature";
    dl_launch(1, more);
}


static int
dl_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;

    return remove(path);
}


/*
 * The fixture's directory (dl_keys) and what the tests wrote there (the
 * key pair, test_mock_cli.c's RSA key), removed without a shell, deepest
 * first.  A failure is printed to stderr, not logged through Criterion:
 * after a test that logs a warning, Criterion 2.4.1's runner exits 1 with
 * every test passed (the e2e harness's e2e_warn says the same).
 */
void
dl_cleanup(void)
{
    if (dl_dir[0] == '\0') {
        return;
    }
    if (nftw(dl_dir, dl_remove, 8, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "mock_dialects: removing %s: %s\n", dl_dir,
                strerror(errno));
    }
    dl_dir[0] = '\0';
}


void
dl_fini(void)
{
    mock_kill();
    rx_stop();
    dl_cleanup();
}


/* POST path with a JSON body and exactly the header line auth (or none). */
void
dl_post(resp_t *r, const char *path, const char *auth, const char *key,
    const char *ctype, const char *body)
{
    CURL               *h;
    struct curl_slist  *hdrs;

    h = prepare(r, &hdrs, "POST", path, AUTH_NONE, key, ctype, body);
    if (auth != NULL) {
        hdrs = curl_slist_append(hdrs, auth);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    r->rc = curl_easy_perform(h);
    finish(r, h, hdrs);
}


/* Takes j. */
static void
dl_post_json(resp_t *r, const char *path, const char *auth, const char *key,
    json_t *j)
{
    char  *body;

    cr_assert_not_null(j);
    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cr_assert_not_null(body);
    dl_post(r, path, auth, key, "application/json", body);
    free(body);
}


/* POST /_control/sessions/{id}/{action}: the session after it (or NULL). */
json_t *
session_act(const char *id, const char *action, long expect)
{
    resp_t   r;
    json_t  *s;
    char     path[256];

    snprintf(path, sizeof(path), "/_control/sessions/%s/%s", id, action);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, expect, "%s %s: %ld %s", action, id, r.status,
                 r.body);
    s = json_incref(r.json);
    resp_free(&r);

    return s;
}


void
rfc3339(char *out, size_t size, time_t t)
{
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}


/* What src/psp.c pay_psp_adyen_body sends: two orders, value in all.  Its
 * expiresAt is an hour after the first body this test process built, the
 * same in every body after it: a request rebuilt for a retry is the same
 * bytes, as the gateway's are (a body built a second later under the same
 * key is refused, 422 704). */
json_t *
adyen_json(const char *ref, long long value, const char *currency,
    const char *return_url)
{
    char           when[32];
    static time_t  expires;

    if (expires == 0) {
        expires = time(NULL) + 3600;
    }

    rfc3339(when, sizeof(when), expires);

    return json_pack("{ss s{sIss} ss ss ss ss s[{ss ss sI sI}{ss ss sI sI}]}",
                     "merchantAccount", "TestMerchant",
                     "amount", "value", (json_int_t) value,
                     "currency", currency,
                     "reference", ref,
                     "returnUrl", return_url,
                     "expiresAt", when,
                     "mode", "hosted",
                     "lineItems",
                     "id", "po_1", "description", "po_1",
                     "amountIncludingTax", (json_int_t) (value - 100),
                     "quantity", (json_int_t) 1,
                     "id", "po_2", "description", "po_2",
                     "amountIncludingTax", (json_int_t) 100,
                     "quantity", (json_int_t) 1);
}


void
adyen_post(resp_t *r, const char *key, json_t *j)
{
    dl_post_json(r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, key, j);
}


/* Registers ref under the key ref; the session id into id. */
void
adyen_create(const char *ref, long long value, char id[64])
{
    resp_t  r;

    adyen_post(&r, ref, adyen_json(ref, value, "EUR", ADYEN_RETURN));
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(id, 64, "%s", str(&r, "id"));
    resp_free(&r);
}


/* Adyen's error shape, its status field equal to the HTTP status. */
void
adyen_expect_error(const resp_t *r, long status, const char *type)
{
    cr_assert_eq(r->status, status, "%ld %s", r->status, r->body);
    cr_assert_eq(json_integer_value(json_object_get(r->json, "status")),
                 status, "%s", r->body);
    cr_assert_str_eq(str(r, "errorType"), type, "%s", r->body);
    cr_assert_not_null(str(r, "errorCode"), "%s", r->body);
    cr_assert_gt(strlen(str(r, "errorCode")), 0);
    cr_assert_not_null(str(r, "message"), "%s", r->body);
}


/* The test's own Adyen HMAC: base64(HMAC-SHA256(hex-decoded key, data)). */
void
test_adyen_hmac(const char *hexkey, const char *data, char out[64])
{
    unsigned int   i, b, n;
    unsigned char  key[32], mac[32];

    cr_assert_eq(strlen(hexkey), 64);
    for (i = 0; i < 32; i++) {
        cr_assert_eq(sscanf(hexkey + 2 * i, "%2x", &b), 1);
        key[i] = (unsigned char) b;
    }

    HMAC(EVP_sha256(), key, 32, (const unsigned char *) data, strlen(data),
         mac, &n);
    cr_assert_eq(n, 32);
    cr_assert_eq(EVP_EncodeBlock((unsigned char *) out, mac, 32), 44);
}


const char *
item_str(json_t *item, const char *name)
{
    const char  *v = json_string_value(json_object_get(item, name));

    return v ? v : "";
}


/* The one NotificationRequestItem of a delivery. */
json_t *
adyen_item(const wh_hit_t *hit)
{
    json_t  *items;

    cr_assert_not_null(hit->json, "body: %s", hit->body);
    cr_assert_str_eq(json_string_value(json_object_get(hit->json, "live")),
                     "false");
    items = json_object_get(hit->json, "notificationItems");
    cr_assert_eq(json_array_size(items), 1, "%s", hit->body);

    return json_object_get(json_array_get(items, 0),
                           "NotificationRequestItem");
}


long long
item_value(json_t *item)
{
    return json_integer_value(json_object_get(json_object_get(item, "amount"),
                                              "value"));
}


static const char *
item_currency(json_t *item)
{
    return item_str(json_object_get(item, "amount"), "currency");
}


/* 1 if additionalData.hmacSignature is right for the eight fields. */
int
adyen_signed(json_t *item)
{
    char          data[1024], b64[64];
    const char   *sig;

    snprintf(data, sizeof(data), "%s:%s:%s:%s:%lld:%s:%s:%s",
             item_str(item, "pspReference"),
             item_str(item, "originalReference"),
             item_str(item, "merchantAccountCode"),
             item_str(item, "merchantReference"), item_value(item),
             item_currency(item), item_str(item, "eventCode"),
             item_str(item, "success"));

    test_adyen_hmac(ADYEN_HMAC, data, b64);

    sig = json_string_value(json_object_get(json_object_get(item,
                                "additionalData"), "hmacSignature"));
    cr_assert_not_null(sig, "no hmacSignature");
    cr_assert_eq(strlen(sig), 44, "hmacSignature %s", sig);

    return strcmp(sig, b64) == 0;
}


/* A notification for ref's session: the fields beside the signature. */
void
adyen_expect_item(json_t *item, const char *ref, const char *code,
    const char *success, long long value)
{
    size_t       i;
    const char  *psp;

    cr_assert_str_eq(item_str(item, "eventCode"), code);
    cr_assert_str_eq(item_str(item, "success"), success);
    cr_assert_str_eq(item_str(item, "merchantAccountCode"), "TestMerchant");
    cr_assert_str_eq(item_str(item, "merchantReference"), ref);
    cr_assert_str_eq(item_str(item, "originalReference"), "");
    cr_assert_eq(item_value(item), value);
    cr_assert_str_eq(item_currency(item), "EUR");
    cr_assert_gt(strlen(item_str(item, "eventDate")), 18);

    psp = item_str(item, "pspReference");
    cr_assert_eq(strlen(psp), 16, "pspReference %s", psp);
    for (i = 0; i < 16; i++) {
        cr_assert(isdigit((unsigned char) psp[i]), "pspReference %s", psp);
    }
}


/* What src/psp.c pay_psp_generic_body sends.  Its expires_at is an hour
 * after the first body this test process built, as adyen_json's: a body
 * rebuilt for a retry is the same bytes, as the gateway's are (one built a
 * second later under the same key is refused, 422 idempotency_key_reused:
 * a CI run of 3bf2a35 met it). */
json_t *
generic_json(const char *ref, const char *amount, const char *currency)
{
    static time_t  expires;

    if (expires == 0) {
        expires = time(NULL) + 3600;
    }

    return json_pack("{ss ss ss ss ss sI}",
                     "reference", ref,
                     "amount", amount,
                     "currency", currency,
                     "return_url", GEN_RETURN,
                     "cancel_url", GEN_CANCEL,
                     "expires_at", (json_int_t) expires);
}


void
generic_post(resp_t *r, const char *key, json_t *j)
{
    dl_post_json(r, "/sessions", "Authorization: Bearer " GEN_KEY, key, j);
}


void
generic_create(const char *ref, const char *amount, const char *currency,
    char token[64])
{
    resp_t  r;

    generic_post(&r, ref, generic_json(ref, amount, currency));
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(token, 64, "%s", str(&r, "token"));
    resp_free(&r);
}


void
generic_create_manual(const char *ref, const char *amount,
    const char *currency, char token[64])
{
    json_t  *j;
    resp_t   r;

    j = generic_json(ref, amount, currency);
    json_object_set_new(j, "capture", json_string("manual"));
    generic_post(&r, ref, j);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(token, 64, "%s", str(&r, "token"));
    resp_free(&r);
}


/* b64url -> bytes (test only: the alphabet is mapped, padding added) */
static size_t
b64url_decode(const char *in, size_t len, unsigned char *out)
{
    char    buf[4096];
    size_t  i, pad;
    int     got;

    cr_assert_lt(len + 4, sizeof(buf));
    for (i = 0; i < len; i++) {
        cr_assert(isalnum((unsigned char) in[i]) || in[i] == '-'
                  || in[i] == '_', "not base64url: %.*s", (int) len, in);
        buf[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    }
    for (pad = 0; i % 4; pad++) {
        buf[i++] = '=';
    }
    buf[i] = '\0';
    got = EVP_DecodeBlock(out, (unsigned char *) buf, (int) i);
    cr_assert_geq(got, (int) pad);

    /* EVP_DecodeBlock counts the padding's zero bytes too */
    return (size_t) got - pad;
}




/*
 * Splits a compact JWT, decodes header and claims, and verifies the
 * signature (JOSE R||S, 64 bytes) with the public key PEM, as a gateway
 * would: R||S back to DER, then ECDSA-SHA256 over "header.claims".
 */
void
jwt_open(const char *jwt, jwt_t *out)
{
    FILE           *f;
    size_t          n;
    EVP_PKEY       *pk;
    EVP_MD_CTX     *md;
    ECDSA_SIG      *es;
    const char     *dot1, *dot2;
    unsigned char   buf[4096], *der;
    int             derlen;

    memset(out, 0, sizeof(*out));

    dot1 = strchr(jwt, '.');
    cr_assert_not_null(dot1, "no JWT: \"%s\"", jwt);
    dot2 = strchr(dot1 + 1, '.');
    cr_assert_not_null(dot2, "no JWT: \"%s\"", jwt);
    cr_assert_null(strchr(dot2 + 1, '.'));

    n = b64url_decode(jwt, (size_t) (dot1 - jwt), buf);
    out->header = json_loadb((char *) buf, n, JSON_REJECT_DUPLICATES, NULL);
    cr_assert_not_null(out->header);

    n = b64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), buf);
    out->claims = json_loadb((char *) buf, n, JSON_REJECT_DUPLICATES, NULL);
    cr_assert_not_null(out->claims);

    n = b64url_decode(dot2 + 1, strlen(dot2 + 1), buf);
    cr_assert_eq(n, 64, "an ES256 signature is R||S, 64 bytes, not %zu", n);

    es = ECDSA_SIG_new();
    cr_assert_not_null(es);
    cr_assert_eq(ECDSA_SIG_set0(es, BN_bin2bn(buf, 32, NULL),
                                BN_bin2bn(buf + 32, 32, NULL)), 1);
    der = NULL;
    derlen = i2d_ECDSA_SIG(es, &der);
    cr_assert_gt(derlen, 0);

    f = fopen(dl_pub, "r");
    cr_assert_not_null(f);
    pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(pk);

    md = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
    out->verified = EVP_DigestVerify(md, der, (size_t) derlen,
                                     (const unsigned char *) jwt,
                                     (size_t) (dot2 - jwt)) == 1;

    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
}


void
jwt_close(jwt_t *j)
{
    json_decref(j->header);
    json_decref(j->claims);
}


/* Header {alg, kid, typ}; claims iat (now - age), the body's SHA-256. */
void
jwt_expect(const jwt_t *j, const wh_hit_t *hit, const char *kid,
    long long age)
{
    size_t         i;
    char           hex[65];
    unsigned char  digest[32];

    cr_assert_str_eq(json_string_value(json_object_get(j->header, "alg")),
                     "ES256");
    cr_assert_str_eq(json_string_value(json_object_get(j->header, "kid")),
                     kid);
    cr_assert_str_eq(json_string_value(json_object_get(j->header, "typ")),
                     "JWT");

    cr_assert(json_is_integer(json_object_get(j->claims, "iat")));
    cr_assert_leq(llabs((long long) json_integer_value(
                            json_object_get(j->claims, "iat"))
                        - ((long long) time(NULL) - age)), 5);

    EVP_Digest(hit->body, strlen(hit->body), digest, NULL, EVP_sha256(),
               NULL);
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    cr_assert_str_eq(json_string_value(json_object_get(j->claims,
                         "request_body_sha256")), hex);
}


const char *
hit_str(const wh_hit_t *hit, const char *name)
{
    const char  *v = json_string_value(json_object_get(hit->json, name));

    return v ? v : "";
}


/* A generic event for token's session, as API.md lists its fields. */
void
generic_expect_event(const wh_hit_t *hit, const char *type, const char *ref,
    const char *token, const char *amount, const char *currency)
{
    cr_assert_not_null(hit->json, "body: %s", hit->body);
    /* payment.succeeded also names the payment it made (refunds and
     * disputes name it back) */
    if (strcmp(type, "payment.succeeded") == 0) {
        cr_assert_eq(json_object_size(hit->json), 7, "%s", hit->body);
        cr_assert_eq(strncmp(hit_str(hit, "payment_id"), "pay_", 4), 0,
                     "%s", hit->body);
    } else {
        cr_assert_eq(json_object_size(hit->json), 6, "%s", hit->body);
    }
    cr_assert_eq(strncmp(hit_str(hit, "event_id"), "gev_", 4), 0);
    cr_assert_str_eq(hit_str(hit, "type"), type);
    cr_assert_str_eq(hit_str(hit, "reference"), ref);
    cr_assert_str_eq(hit_str(hit, "token"), token);
    cr_assert_str_eq(hit_str(hit, "amount"), amount);
    cr_assert_str_eq(hit_str(hit, "currency"), currency);
    cr_assert_eq(strncmp(hit->ctype, "application/json", 16), 0);
}


/* The compact text of j (taken); free() it. */
char *
dump(json_t *j)
{
    char  *text;

    cr_assert_not_null(j);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cr_assert_not_null(text);

    return text;
}
