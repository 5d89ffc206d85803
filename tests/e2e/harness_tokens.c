/*
 * End-to-end test harness: links, gateway tokens, secrets at rest, idempotency.
 * What it offers: harness_tokens.h.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <jwt.h>

#include "harness.h"


/* -- links and gateway tokens ---------------------------------------------- */

char *
url_escape(const char *s)
{
    char        *out, *o;
    const char  *hex = "0123456789ABCDEF";

    out = malloc(strlen(s) * 3 + 1);
    cr_assert_not_null(out);

    for (o = out; *s != '\0'; s++) {
        unsigned char  c = (unsigned char) *s;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char) c;

        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }

    *o = '\0';
    return out;
}


char *
url_param(const char *url, const char *name)
{
    size_t       n, vlen;
    const char  *p;

    p = strchr(url, '?');
    if (p == NULL) {
        return NULL;
    }

    n = strlen(name);

    while (p != NULL) {
        p++;

        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            p += n + 1;
            vlen = strcspn(p, "&#");
            return strndup(p, vlen);
        }

        p = strchr(p, '&');
    }

    return NULL;
}


const char *
url_path(const char *url)
{
    const char  *p;

    p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    p = strchr(p, '/');

    return p != NULL ? p : "/";
}


char *
gw_url_for(const char *public_url)
{
    size_t       n;
    const char  *origin;

    origin = env("PAY_TEST_PUBLIC_ORIGIN");
    n = strlen(origin);

    cr_assert(strncmp(public_url, origin, n) == 0 && public_url[n] == '/',
              "%s is not on the configured public origin %s", public_url,
              origin);

    return gw_url(public_url + n);
}


static const char  b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


char *
b64url_encode(const unsigned char *p, size_t len)
{
    char      *s, *o;
    size_t     i;
    uint32_t   v;

    s = malloc(len / 3 * 4 + 5);
    cr_assert_not_null(s);
    o = s;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
        *o++ = b64url[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) p[i] << 16;
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];

    } else if (len - i == 2) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8;
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
    }

    *o = '\0';
    return s;
}


unsigned char *
b64url_decode(const char *s, size_t len, size_t *out)
{
    int             bits;
    size_t          i, n;
    uint32_t        acc;
    const char     *c;
    unsigned char  *p;

    p = malloc(len * 3 / 4 + 3);
    cr_assert_not_null(p);

    n = 0;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '=') {
            break;
        }

        c = strchr(b64url, s[i]);
        if (c == NULL || s[i] == '\0') {
            free(p);
            return NULL;
        }

        acc = acc << 6 | (uint32_t) (c - b64url);
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            p[n++] = (unsigned char) (acc >> bits & 0xff);
        }
    }

    p[n] = '\0';
    *out = n;

    return p;
}


json_t *
jwt_claims(const char *token)
{
    size_t          len;
    json_t         *j;
    const char     *d1, *d2;
    unsigned char  *raw;

    d1 = strchr(token, '.');
    cr_assert_not_null(d1, "not a JWT: %s", token);
    d2 = strchr(d1 + 1, '.');
    cr_assert_not_null(d2, "not a JWT: %s", token);

    raw = b64url_decode(d1 + 1, (size_t) (d2 - d1 - 1), &len);
    cr_assert_not_null(raw, "JWT claims are not base64url: %s", token);

    j = json_loadb((const char *) raw, len, 0, NULL);
    cr_assert_not_null(j, "JWT claims are not JSON: %s", raw);

    free(raw);
    return j;
}


static char *
hs256(const char *data, size_t len, const unsigned char *key, size_t keylen)
{
    unsigned int   mdlen;
    unsigned char  md[EVP_MAX_MD_SIZE];

    cr_assert_not_null(HMAC(EVP_sha256(), key, (int) keylen,
                            (const unsigned char *) data, len, md, &mdlen));

    return b64url_encode(md, mdlen);
}


char *
jwt_resign(const char *token, const json_t *claims, const unsigned char *key,
    size_t keylen)
{
    char        *cj, *payload, *signing, *sig, *out;
    const char  *d1;

    d1 = strchr(token, '.');
    cr_assert_not_null(d1, "not a JWT: %s", token);

    cj = json_dumps(claims, JSON_COMPACT);
    cr_assert_not_null(cj);
    payload = b64url_encode((const unsigned char *) cj, strlen(cj));

    signing = str_printf("%.*s.%s", (int) (d1 - token), token, payload);
    sig = hs256(signing, strlen(signing), key, keylen);
    out = str_printf("%s.%s", signing, sig);

    free(cj);
    free(payload);
    free(signing);
    free(sig);

    return out;
}


int
jwt_signature_matches(const char *token, const unsigned char *key,
    size_t keylen)
{
    int          same;
    char        *sig;
    const char  *d2;

    d2 = strrchr(token, '.');
    cr_assert_not_null(d2, "not a JWT: %s", token);

    sig = hs256(token, (size_t) (d2 - token), key, keylen);
    same = strcmp(sig, d2 + 1) == 0;
    free(sig);

    return same;
}


const pay_keyring_t *
test_keyring(void)
{
    char                  *s;
    size_t                 n, bad;
    static pay_keyring_t   kr;
    static int             loaded;

    if (!loaded) {
        s = file_read(env("PAY_TEST_ENCRYPTION_KEY"), &n);
        cr_assert_not_null(s, "cannot read %s",
                           env("PAY_TEST_ENCRYPTION_KEY"));
        cr_assert_eq(pay_keyring_parse(&kr, s, n, &bad), 0,
                     "%s: line %zu", env("PAY_TEST_ENCRYPTION_KEY"), bad);
        cr_assert_geq(kr.n, 2, "the e2e key file has two keys");
        OPENSSL_cleanse(s, n);
        free(s);
        loaded = 1;
    }

    return &kr;
}


char *
psp_token_open(const char *merchant, const char *checkout,
    const char *stored)
{
    char    *ad, *out;
    size_t   slen, olen;

    if (stored == NULL) {
        return NULL;
    }

    if (strncmp(stored, "v1.", 3) != 0) {
        return strdup(stored);
    }

    ad = str_printf("%s:%s", merchant, checkout);
    slen = strlen(stored);
    out = malloc(slen + 1);
    cr_assert_not_null(out);

    if (pay_unseal(test_keyring(), ad, stored, slen, out, slen + 1, &olen)
        != 0)
    {
        free(out);
        return NULL;
    }

    return out;
}


char *
db_psp_token(const char *merchant, const char *checkout)
{
    char  *stored, *plain;

    stored = db_scalar("SELECT psp_token FROM checkouts "
                       "WHERE merchant_id = $1 AND checkout_id = $2", 2,
                       (const char *[]) { merchant, checkout });
    if (stored == NULL) {
        return NULL;
    }

    plain = psp_token_open(merchant, checkout, stored);
    cr_assert_not_null(plain, "the stored psp_token of %s:%s does not open",
                       merchant, checkout);
    free(stored);

    return plain;
}


/* a copy of the ring with keys[key] first: it seals */
static pay_keyring_t
test_ring_from(size_t key)
{
    pay_keyring_t  kr;

    kr = *test_keyring();
    cr_assert_lt(key, kr.n);
    kr.keys[0] = test_keyring()->keys[key];
    kr.keys[key] = test_keyring()->keys[0];

    return kr;
}


char *
test_seal(size_t key, const char *ad, const char *value)
{
    char           *out;
    size_t          cap;
    pay_keyring_t   kr;

    kr = test_ring_from(key);
    cap = pay_seal_len(strlen(value)) + 1;
    out = malloc(cap);
    cr_assert_not_null(out);
    cr_assert_eq(pay_seal(&kr, ad, value, strlen(value), out, cap), 0);
    OPENSSL_cleanse(&kr, sizeof(kr));

    return out;
}


char *
test_blind_index(size_t key, const char *psp, const char *token)
{
    char  out[PAY_BLIND_INDEX_LEN + 1];

    cr_assert_eq(pay_blind_index(test_keyring(), key,
                                 str_printf("psp_token:%s", psp), token,
                                 strlen(token), out), 0);

    return strdup(out);
}


unsigned char *
paytoken_key(size_t *len)
{
    char    *s;
    size_t   n;

    s = file_read(env("PAY_TEST_PAYTOKEN_KEY"), &n);
    cr_assert_not_null(s, "cannot read %s", env("PAY_TEST_PAYTOKEN_KEY"));

    /* as the module reads it: trailing CR, LF and spaces dropped */
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) {
        n--;
    }

    s[n] = '\0';
    *len = n;

    return (unsigned char *) s;
}


/* -- idempotency ------------------------------------------------------------ */

void
fingerprint(const char *method, const char *path, const char *body,
    char hex[65])
{
    int            i;
    char          *canon;
    json_t        *j;
    unsigned int   mdlen;
    EVP_MD_CTX    *ctx;
    unsigned char  md[EVP_MAX_MD_SIZE];

    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "fingerprint of a body that is not JSON");

    canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII
                          | JSON_ENCODE_ANY);
    cr_assert_not_null(canon);

    ctx = EVP_MD_CTX_new();
    cr_assert_not_null(ctx);
    cr_assert(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
              && EVP_DigestUpdate(ctx, method, strlen(method)) == 1
              && EVP_DigestUpdate(ctx, "\n", 1) == 1
              && EVP_DigestUpdate(ctx, path, strlen(path)) == 1
              && EVP_DigestUpdate(ctx, "\n", 1) == 1
              && EVP_DigestUpdate(ctx, canon, strlen(canon)) == 1
              && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1
              && mdlen == 32);
    EVP_MD_CTX_free(ctx);

    for (i = 0; i < 32; i++) {
        (void) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }

    free(canon);
    json_decref(j);
}


char *
stripe_signature(const char *secret, long t, const char *body)
{
    char           *payload, hex[65];
    size_t          len;
    unsigned int    n, i;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    if (secret == NULL) {
        secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
        cr_assert_not_null(secret);
    }

    payload = str_printf("%ld.%s", t, body);
    cr_assert_not_null(HMAC(EVP_sha256(), secret, (int) strlen(secret),
                            (unsigned char *) payload, strlen(payload), mac,
                            &n));
    free(payload);

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }

    return str_printf("Stripe-Signature: t=%ld,v1=%s", t, hex);
}


static unsigned char *
adyen_hmac_key(void)
{
    size_t          len, i;
    char           *hex;
    unsigned char  *key;
    unsigned int    b;

    hex = file_read(run_file("conf/adyen.hmac"), &len);
    cr_assert_not_null(hex);
    while (len && (hex[len - 1] == '\n' || hex[len - 1] == ' ')) {
        len--;
    }
    cr_assert_eq(len, 64);

    key = malloc(32);
    cr_assert_not_null(key);
    for (i = 0; i < 32; i++) {
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &b), 1);
        key[i] = (unsigned char) b;
    }

    free(hex);

    return key;
}


char *
adyen_notification_item(const adyen_notification_t *it, long tamper)
{
    char           *data, b64[64];
    const char     *account, *orig;
    unsigned int    n;
    unsigned char   mac[32], *key;

    /* the run's merchant_account= (ci/services.sh) unless a test says */
    account = it->account != NULL ? it->account : "TestMerchant";
    orig = it->original != NULL ? it->original : "";
    data = str_printf("%s:%s:%s:%s:%ld:%s:%s:%s", it->psp_ref, orig, account,
                      it->merchant_ref, it->amount, it->currency,
                      it->event_code, it->success);
    key = adyen_hmac_key();
    HMAC(EVP_sha256(), key, 32, (unsigned char *) data, strlen(data), mac,
         &n);
    EVP_EncodeBlock((unsigned char *) b64, mac, 32);
    free(key);
    free(data);

    return str_printf("{\"NotificationRequestItem\":{\"additionalData\":"
                      "{\"hmacSignature\":\"%s\"},\"amount\":{\"value\":%ld,"
                      "\"currency\":\"%s\"},\"eventCode\":\"%s\","
                      "\"eventDate\":\"2026-11-22T10:00:00+01:00\","
                      "\"merchantAccountCode\":\"%s\","
                      "\"merchantReference\":\"%s\",\"originalReference\":"
                      "\"%s\",\"pspReference\":\"%s\",\"reason\":\"\","
                      "\"success\":\"%s\"}}",
                      b64, it->amount + tamper, it->currency, it->event_code,
                      account, it->merchant_ref, orig, it->psp_ref,
                      it->success);
}


char *
adyen_psp_ref(void)
{
    static unsigned  seq;
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return str_printf("%08ld%04u%04d", (long) (ts.tv_nsec % 100000000),
                      __atomic_add_fetch(&seq, 1, __ATOMIC_SEQ_CST) % 10000,
                      (int) (getpid() % 10000));
}


static char *
sha256_hex(const char *s)
{
    unsigned int   n, i;
    unsigned char  d[32];
    char          *hex;

    cr_assert_eq(EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL), 1);
    hex = malloc(65);
    cr_assert_not_null(hex);
    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", d[i]);
    }

    return hex;
}


char *
generic_verification(const char *body, long iat, const char *kid,
    const char *for_body)
{
    char    *pem, *tok, *line;
    size_t   len;
    jwt_t   *jwt;

    pem = file_read(run_file("conf/generic_jwt.key"), &len);
    cr_assert_not_null(pem);

    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_header(jwt, "kid", kid), 0);
    cr_assert_eq(jwt_add_grant_int(jwt, "iat", iat), 0);
    cr_assert_eq(jwt_add_grant(jwt, "request_body_sha256",
                               sha256_hex(for_body ? for_body : body)), 0);
    cr_assert_eq(jwt_set_alg(jwt, JWT_ALG_ES256, (unsigned char *) pem,
                             (int) len), 0);
    tok = jwt_encode_str(jwt);
    cr_assert_not_null(tok);
    jwt_free(jwt);
    free(pem);

    line = str_printf("Payments-Verification: %s", tok);
    free(tok);
    return line;
}
