/*
 * ngx_payments core: the generic dialect's webhooks, a compact JWT signed
 * ES256 or RS256 over claims that bind the raw body (PSP_FACTS.md).
 *
 * libjwt 1.10 cannot be trusted alone: it takes the algorithm from the
 * token (an HS256 token keyed with a public PEM's text verifies), accepts
 * anything with an empty key, and checks no claim.  So, as paytoken.c does
 * for our own tokens, verification here:
 *
 *   1. bounds the token and requires three non-empty base64url segments;
 *   2. decodes the header itself (strict base64url, duplicates refused):
 *      alg ES256 or RS256, a kid, typ absent or "JWT", no "crit";
 *   3. picks the key by kid from the configuration only, and requires the
 *      header's alg to be the one that key is pinned to;
 *   4. loads the PEM with OpenSSL, requires the key type the pin names
 *      (EC P-256, or RSA of at least 2048 bits) and verifies the signature
 *      itself;
 *   5. lets libjwt verify as well, with that PEM (never NULL or empty), and
 *      checks jwt_get_alg() afterwards;
 *   6. decodes the claims itself: request_body_sha256 against the body in
 *      constant time, iss and aud when configured, exp/nbf when present,
 *      and iat within 300 s behind and 60 s ahead.
 */

#include <sys/types.h>
#include <limits.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <payments/money.h>
#include <payments/jose.h>
#include <payments/webhook.h>


#define PAY_JWT_KID_MAX      256
#define PAY_JWT_PEM_MAX      16384
#define PAY_JWT_RSA_MIN      2048
#define PAY_JWT_RSA_MAX      16384
#define PAY_JWT_AUD_MAX      32
#define PAY_JWT_LEEWAY       60


/* A JSON string as a C string, refusing an embedded NUL. */
static const char *
pay_jwt_str(json_t *v)
{
    const char  *s;

    s = json_string_value(v);
    if (s == NULL || strlen(s) != json_string_length(v)) {
        return NULL;
    }

    return s;
}


static const char *
pay_jwt_alg_name(pay_jwt_alg_e alg)
{
    switch (alg) {
    case PAY_JWT_ES256:
        return "ES256";
    case PAY_JWT_RS256:
        return "RS256";
    default:
        return NULL;
    }
}


static int
pay_jwt_no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    return 0;
}


/* The configured PEM as a public key of the pinned type, or NULL. */
static EVP_PKEY *
pay_jwt_load(const pay_jwt_key_t *key)
{
    int        ok;
    BIO       *bio;
    char       group[64];
    size_t     glen;
    EVP_PKEY  *pkey;

    if (key->pem == NULL || key->pem_len == 0
        || key->pem_len > PAY_JWT_PEM_MAX
        || pay_jwt_alg_name(key->alg) == NULL)
    {
        return NULL;
    }

    bio = BIO_new_mem_buf(key->pem, (int) key->pem_len);
    if (bio == NULL) {
        return NULL;
    }

    pkey = PEM_read_bio_PUBKEY(bio, NULL, pay_jwt_no_password, NULL);
    BIO_free(bio);

    if (pkey == NULL) {
        ERR_clear_error();
        return NULL;
    }

    ok = 0;

    if (key->alg == PAY_JWT_ES256) {
        ok = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC
             && EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen)
             && strcmp(group, "prime256v1") == 0;

    } else if (key->alg == PAY_JWT_RS256) {
        ok = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA
             && EVP_PKEY_get_bits(pkey) >= PAY_JWT_RSA_MIN
             && EVP_PKEY_get_bits(pkey) <= PAY_JWT_RSA_MAX;
    }

    if (!ok) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NULL;
    }

    return pkey;
}


static int
pay_jwt_kid_valid(const char *kid)
{
    size_t  len;

    if (kid == NULL) {
        return 0;
    }

    len = strlen(kid);

    return len > 0 && len <= PAY_JWT_KID_MAX;
}


int
pay_jwt_key_check(const pay_jwt_key_t *key)
{
    EVP_PKEY  *pkey;

    if (key == NULL || !pay_jwt_kid_valid(key->kid)) {
        return -1;
    }

    pkey = pay_jwt_load(key);
    if (pkey == NULL) {
        return -1;
    }

    EVP_PKEY_free(pkey);

    return 0;
}


/* The key the header names, with the header's alg equal to its pin. */
static const pay_jwt_key_t *
pay_jwt_header_key(const char *seg, size_t len, const pay_jwt_key_t *keys,
    size_t nkeys)
{
    size_t                i;
    json_t               *hdr, *v;
    const char           *name, *alg, *kid, *typ;
    const pay_jwt_key_t  *found;

    hdr = pay_jose_segment_json(seg, len, PAY_JWT_MAX_LEN);
    if (hdr == NULL) {
        return NULL;
    }

    found = NULL;
    alg = NULL;
    kid = NULL;

    json_object_foreach(hdr, name, v) {
        if (strcmp(name, "alg") == 0) {
            alg = pay_jwt_str(v);
            if (alg == NULL) {
                goto done;
            }

        } else if (strcmp(name, "kid") == 0) {
            kid = pay_jwt_str(v);
            if (kid == NULL || !pay_jwt_kid_valid(kid)) {
                goto done;
            }

        } else if (strcmp(name, "typ") == 0) {
            typ = pay_jwt_str(v);
            if (typ == NULL || strcmp(typ, "JWT") != 0) {
                goto done;
            }

        } else if (strcmp(name, "crit") == 0) {
            /* an extension we would have to understand (RFC 7515 4.1.11),
             * e.g. an unencoded payload: refused, not ignored */
            goto done;
        }

        /* other members (jku, jwk, x5u, ...) are never used for a key */
    }

    if (alg == NULL || kid == NULL) {
        goto done;
    }

    for (i = 0; i < nkeys; i++) {
        if (keys[i].kid == NULL || strcmp(keys[i].kid, kid) != 0) {
            continue;
        }

        /* the first key with that kid decides; its pin is the only
         * algorithm, so "none", HS256 and the other asymmetric one stop
         * here, whatever key material would make them verify */
        if (pay_jwt_alg_name(keys[i].alg) != NULL
            && strcmp(alg, pay_jwt_alg_name(keys[i].alg)) == 0
            && keys[i].pem != NULL && keys[i].pem_len != 0)
        {
            found = &keys[i];
        }

        break;
    }

done:

    json_decref(hdr);

    return found;
}


/* Our own check of the signature, before libjwt's. */
static int
pay_jwt_signature_ok(EVP_PKEY *pkey, pay_jwt_alg_e alg,
    const char *input, size_t ilen, const char *seg, size_t slen)
{
    int             ok, derlen;
    BIGNUM         *r, *s;
    ssize_t         n;
    ECDSA_SIG      *esig;
    EVP_MD_CTX     *md;
    unsigned char   raw[PAY_JWT_MAX_LEN], der[80], *p;
    const unsigned char  *sig;
    size_t          siglen;

    if (slen == 0 || slen > sizeof(raw)) {
        return 0;
    }

    n = pay_b64url_decode(seg, slen, raw);
    if (n <= 0) {
        return 0;
    }

    if (alg == PAY_JWT_ES256) {
        /* JOSE: R || S, 32 bytes each; DER for OpenSSL */
        if (n != 64) {
            return 0;
        }

        esig = ECDSA_SIG_new();
        r = BN_bin2bn(raw, 32, NULL);
        s = BN_bin2bn(raw + 32, 32, NULL);

        if (esig == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(esig, r, s) != 1)
        {
            ECDSA_SIG_free(esig);
            BN_free(r);
            BN_free(s);
            return 0;
        }

        /* esig owns r and s now */
        derlen = i2d_ECDSA_SIG(esig, NULL);
        if (derlen <= 0 || (size_t) derlen > sizeof(der)) {
            ECDSA_SIG_free(esig);
            return 0;
        }

        p = der;
        derlen = i2d_ECDSA_SIG(esig, &p);
        ECDSA_SIG_free(esig);

        if (derlen <= 0) {
            return 0;
        }

        sig = der;
        siglen = (size_t) derlen;

    } else {
        /* PKCS#1 v1.5: exactly the modulus size */
        if ((size_t) n != (size_t) EVP_PKEY_get_size(pkey)) {
            return 0;
        }

        sig = raw;
        siglen = (size_t) n;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return 0;
    }

    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1
         && EVP_DigestVerify(md, sig, siglen, (const unsigned char *) input,
                             ilen) == 1;

    EVP_MD_CTX_free(md);
    ERR_clear_error();

    return ok;
}


/* libjwt, with the pinned key's PEM, then its idea of the algorithm. */
static int
pay_jwt_libjwt_ok(const char *token, size_t len, const pay_jwt_key_t *key)
{
    char        copy[PAY_JWT_MAX_LEN + 1];
    jwt_t      *jwt;
    jwt_alg_t   alg, want;

    if (len > PAY_JWT_MAX_LEN || key->pem_len == 0
        || key->pem_len > INT_MAX)
    {
        return 0;
    }

    memcpy(copy, token, len);
    copy[len] = '\0';

    want = (key->alg == PAY_JWT_ES256) ? JWT_ALG_ES256 : JWT_ALG_RS256;
    jwt = NULL;

    if (jwt_decode(&jwt, copy, (const unsigned char *) key->pem,
                   (int) key->pem_len)
        != 0
        || jwt == NULL)
    {
        if (jwt != NULL) {
            jwt_free(jwt);
        }

        ERR_clear_error();
        return 0;
    }

    alg = jwt_get_alg(jwt);
    jwt_free(jwt);

    return alg == want;
}


static int
pay_jwt_aud_ok(json_t *v, const char *aud)
{
    size_t       i, n;
    const char  *s;

    if (json_is_string(v)) {
        s = pay_jwt_str(v);
        return s != NULL && strcmp(s, aud) == 0;
    }

    n = json_array_size(v);
    if (!json_is_array(v) || n == 0 || n > PAY_JWT_AUD_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        s = pay_jwt_str(json_array_get(v, i));
        if (s == NULL) {
            return 0;
        }

        if (strcmp(s, aud) == 0) {
            return 1;
        }
    }

    return 0;
}


static pay_err_e
pay_jwt_claims(const char *seg, size_t len, const char *body, size_t blen,
    const char *iss, const char *aud, int64_t now)
{
    static const char  hex[] = "0123456789abcdef";

    json_t        *claims, *v;
    json_int_t     iat, t;
    pay_err_e      rc;
    const char    *s;
    unsigned int   i, dlen;
    unsigned char  digest[EVP_MAX_MD_SIZE];
    char           want[65];

    claims = pay_jose_segment_json(seg, len, PAY_JWT_MAX_LEN);
    if (claims == NULL) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    rc = PAY_ERR_BAD_SIGNATURE;

    /* the token authenticates this body, or nothing */
    if (EVP_Digest(body, blen, digest, &dlen, EVP_sha256(), NULL) != 1
        || dlen != 32)
    {
        goto done;
    }

    for (i = 0; i < 32; i++) {
        want[2 * i] = hex[digest[i] >> 4];
        want[2 * i + 1] = hex[digest[i] & 0xf];
    }

    want[64] = '\0';

    s = pay_jwt_str(json_object_get(claims, "request_body_sha256"));
    if (s == NULL || strlen(s) != 64 || CRYPTO_memcmp(s, want, 64) != 0) {
        goto done;
    }

    if (iss != NULL) {
        s = pay_jwt_str(json_object_get(claims, "iss"));
        if (s == NULL || strcmp(s, iss) != 0) {
            goto done;
        }
    }

    if (aud != NULL && !pay_jwt_aud_ok(json_object_get(claims, "aud"), aud)) {
        goto done;
    }

    v = json_object_get(claims, "iat");
    if (!json_is_integer(v)) {
        goto done;
    }

    iat = json_integer_value(v);

    /* exp and nbf are optional; present, they are integers */
    v = json_object_get(claims, "exp");
    if (v != NULL && !json_is_integer(v)) {
        goto done;
    }

    v = json_object_get(claims, "nbf");
    if (v != NULL && !json_is_integer(v)) {
        goto done;
    }

    /* authentic from here on: what is left is freshness.  Written so
     * that no sum can overflow whatever the token's integers are. */
    rc = PAY_ERR_STALE_WEBHOOK;

    if (iat < now - PAY_JWT_IAT_MAX_AGE || iat > now + PAY_JWT_IAT_MAX_AHEAD)
    {
        goto done;
    }

    v = json_object_get(claims, "exp");
    if (v != NULL) {
        t = json_integer_value(v);
        if (t < now - PAY_JWT_LEEWAY) {
            goto done;
        }
    }

    v = json_object_get(claims, "nbf");
    if (v != NULL) {
        t = json_integer_value(v);
        if (t > now + PAY_JWT_LEEWAY) {
            goto done;
        }
    }

    rc = PAY_ERR_NONE;

done:

    json_decref(claims);

    return rc;
}


pay_err_e
pay_generic_verify(const char *jwt, size_t jlen, const char *body,
    size_t blen, const pay_jwt_key_t *keys, size_t nkeys, const char *iss,
    const char *aud, int64_t now)
{
    int                   ok;
    size_t                i, dot1, dot2, ndots;
    EVP_PKEY             *pkey;
    const pay_jwt_key_t  *key;

    if (jwt == NULL || jlen == 0 || jlen > PAY_JWT_MAX_LEN
        || keys == NULL || nkeys == 0 || (body == NULL && blen != 0)
        || now < 0)
    {
        return PAY_ERR_BAD_SIGNATURE;
    }

    if (body == NULL) {
        body = "";
    }

    ndots = 0;
    dot1 = dot2 = 0;

    for (i = 0; i < jlen; i++) {
        if (jwt[i] == '.') {
            if (++ndots == 1) {
                dot1 = i;
            } else {
                dot2 = i;
            }

        } else if (pay_b64url_value((unsigned char) jwt[i]) < 0) {
            return PAY_ERR_BAD_SIGNATURE;
        }
    }

    if (ndots != 2 || dot1 == 0 || dot2 == dot1 + 1 || dot2 == jlen - 1) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    key = pay_jwt_header_key(jwt, dot1, keys, nkeys);
    if (key == NULL) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    pkey = pay_jwt_load(key);
    if (pkey == NULL) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    ok = pay_jwt_signature_ok(pkey, key->alg, jwt, dot2, jwt + dot2 + 1,
                              jlen - dot2 - 1);
    EVP_PKEY_free(pkey);

    if (!ok || !pay_jwt_libjwt_ok(jwt, jlen, key)) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    return pay_jwt_claims(jwt + dot1 + 1, dot2 - dot1 - 1, body, blen, iss,
                          aud, now);
}


static int
pay_generic_copy(char *dst, size_t size, json_t *v, int required)
{
    size_t       len;
    const char  *s;

    dst[0] = '\0';

    if (v == NULL) {
        return required ? -1 : 0;
    }

    s = pay_jwt_str(v);
    if (s == NULL) {
        return -1;
    }

    len = strlen(s);
    if (len >= size || (required && len == 0)) {
        return -1;
    }

    memcpy(dst, s, len + 1);
    return 0;
}


/* payment_method.saved's own members: 0, or -1 when one is malformed */
static int
pay_generic_saved(json_t *root, pay_event_t *ev)
{
    size_t       i;
    json_t      *m, *y;
    const char  *s;

    ev->kind = PAY_EVT_METHOD_SAVED;

    if (ev->reference[0] == '\0'
        || pay_generic_copy(ev->method, sizeof(ev->method),
                            json_object_get(root, "payment_method"), 1) != 0
        || pay_generic_copy(ev->brand, sizeof(ev->brand),
                            json_object_get(root, "brand"), 0) != 0
        || pay_generic_copy(ev->last4, sizeof(ev->last4),
                            json_object_get(root, "last4"), 0) != 0)
    {
        return -1;
    }

    /* display only, and only what the database takes */
    s = ev->last4;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
    }

    if (i != 0 && i != 4) {
        return -1;
    }

    for (i = 0; ev->brand[i] != '\0'; i++) {
        if (!((ev->brand[i] >= 'a' && ev->brand[i] <= 'z')
              || (ev->brand[i] >= '0' && ev->brand[i] <= '9')
              || ev->brand[i] == '_' || ev->brand[i] == '-'))
        {
            return -1;
        }
    }

    m = json_object_get(root, "exp_month");
    y = json_object_get(root, "exp_year");

    if ((m != NULL && (!json_is_integer(m) || json_integer_value(m) < 1
                       || json_integer_value(m) > 12))
        || (y != NULL && (!json_is_integer(y) || json_integer_value(y) < 2000
                          || json_integer_value(y) > 2200)))
    {
        return -1;
    }

    ev->exp_month = m ? (int) json_integer_value(m) : 0;
    ev->exp_year = y ? (int) json_integer_value(y) : 0;

    return 0;
}


int
pay_generic_parse_event(const char *body, size_t blen, pay_event_t *ev)
{
    int                    rc;
    size_t                 i;
    int64_t                minor;
    pay_amount_rc_e        arc;
    json_t                *root, *amount, *currency;
    const char            *s, *object;
    char                   code[4], refund[128], dispute[128], payout[128],
                           capture[128], cancel[128];
    const pay_currency_t  *cur;

    if (ev == NULL) {
        return -1;
    }

    memset(ev, 0, sizeof(pay_event_t));
    ev->amount = PAY_EVT_AMOUNT_ABSENT;
    ev->livemode = -1;

    if (body == NULL) {
        return -1;
    }

    root = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        return -1;
    }

    rc = -1;

    if (!json_is_object(root)
        || pay_generic_copy(ev->event_id, sizeof(ev->event_id),
                            json_object_get(root, "event_id"), 1) != 0
        || pay_generic_copy(ev->type, sizeof(ev->type),
                            json_object_get(root, "type"), 1) != 0
        || pay_generic_copy(ev->reference, sizeof(ev->reference),
                            json_object_get(root, "reference"), 0) != 0
        || pay_generic_copy(ev->token, sizeof(ev->token),
                            json_object_get(root, "token"), 0) != 0)
    {
        goto done;
    }

    /* the PSP's ids: which one is the event's object follows its type */
    if (pay_generic_copy(ev->payment_ref, sizeof(ev->payment_ref),
                         json_object_get(root, "payment_id"), 0) != 0
        || pay_generic_copy(refund, sizeof(refund),
                            json_object_get(root, "refund_id"), 0) != 0
        || pay_generic_copy(dispute, sizeof(dispute),
                            json_object_get(root, "dispute_id"), 0) != 0
        || pay_generic_copy(payout, sizeof(payout),
                            json_object_get(root, "payout_id"), 0) != 0
        || pay_generic_copy(capture, sizeof(capture),
                            json_object_get(root, "capture_id"), 0) != 0
        || pay_generic_copy(cancel, sizeof(cancel),
                            json_object_get(root, "void_id"), 0) != 0)
    {
        goto done;
    }

    object = NULL;

    if (strcmp(ev->type, "payment.succeeded") == 0) {
        ev->kind = PAY_EVT_SUCCEEDED;

    } else if (strcmp(ev->type, "payment.authorized") == 0) {
        /* manual capture: the payment is held, not captured */
        ev->kind = PAY_EVT_AUTHORIZED;

    } else if (strcmp(ev->type, "payment.failed") == 0) {
        ev->kind = PAY_EVT_FAILED;

    } else if (strcmp(ev->type, "payment_method.saved") == 0) {
        /* the shopper's method stored for later payments: the PSP's
         * token "payment_method", our nonce "reference", and what it
         * tells for display ("brand", "last4", "exp_month",
         * "exp_year"; each optional) */
        if (pay_generic_saved(root, ev) != 0) {
            goto done;
        }

    } else if (strcmp(ev->type, "refund.succeeded") == 0) {
        ev->kind = PAY_EVT_REFUND_SUCCEEDED;
        object = refund;

    } else if (strcmp(ev->type, "refund.failed") == 0) {
        ev->kind = PAY_EVT_REFUND_FAILED;
        object = refund;

    } else if (strcmp(ev->type, "dispute.opened") == 0) {
        ev->kind = PAY_EVT_DISPUTE_OPENED;
        object = dispute;

    } else if (strcmp(ev->type, "dispute.won") == 0) {
        ev->kind = PAY_EVT_DISPUTE_WON;
        object = dispute;

    } else if (strcmp(ev->type, "dispute.lost") == 0) {
        ev->kind = PAY_EVT_DISPUTE_LOST;
        object = dispute;

    } else if (strcmp(ev->type, "payout.paid") == 0) {
        ev->kind = PAY_EVT_PAYOUT_PAID;
        object = payout;

    } else if (strcmp(ev->type, "payout.failed") == 0) {
        ev->kind = PAY_EVT_PAYOUT_FAILED;
        object = payout;

    } else if (strcmp(ev->type, "capture.succeeded") == 0
               || strcmp(ev->type, "capture.failed") == 0)
    {
        /* reference: the capture's nonce; payment_id the authorization;
         * capture_id the PSP's own id of the capture, required: without
         * it a capture made at the PSP, delivered again under another
         * event_id, could not be told from a second one and would be
         * booked twice (unreadable instead: kept, alerted, nothing
         * booked) */
        if (capture[0] == '\0') {
            goto done;
        }

        ev->kind = ev->type[8] == 's' ? PAY_EVT_CAPTURE_SUCCEEDED
                                      : PAY_EVT_CAPTURE_FAILED;
        object = capture;

    } else if (strcmp(ev->type, "void.succeeded") == 0
               || strcmp(ev->type, "void.failed") == 0)
    {
        /* reference: the void's nonce, or the checkout's for a release
         * the PSP made by itself (an expired authorization) */
        ev->kind = ev->type[5] == 's' ? PAY_EVT_VOID_SUCCEEDED
                                      : PAY_EVT_VOID_FAILED;
        object = cancel;

    } else {
        ev->kind = PAY_EVT_IGNORED;

        if (strncmp(ev->type, "payment.", 8) != 0) {
            /* not a payment's: a refund's, a dispute's or a pay-out's
             * progress, or news of no object of ours; recorded as ignored
             * by its type, about its object (else the event), and no
             * checkout looked for */
            object = strncmp(ev->type, "refund.", 7) == 0 ? refund
                     : strncmp(ev->type, "dispute.", 8) == 0 ? dispute
                     : strncmp(ev->type, "payout.", 7) == 0 ? payout
                     : strncmp(ev->type, "capture.", 8) == 0 ? capture
                     : strncmp(ev->type, "void.", 5) == 0 ? cancel : NULL;

            if (object == NULL || object[0] == '\0') {
                object = NULL;
                i = strlen(ev->event_id);
                i = i < sizeof(ev->object_ref) - 1
                    ? i : sizeof(ev->object_ref) - 1;
                memcpy(ev->object_ref, ev->event_id, i);
                ev->object_ref[i] = '\0';
            }
        }
    }

    if (object != NULL) {
        memcpy(ev->object_ref, object, strlen(object) + 1);
    }

    /* The event is authentic (pay_generic_verify): every such event is
     * kept, so its money is read as far as it can be and never refuses
     * it.  The amount's meaning depends on the currency's exponent: a
     * missing amount is PAY_EVT_AMOUNT_ABSENT; one present (in any form)
     * that is not an exact decimal string in an ISO 4217 currency, or a
     * currency present that is not one, is PAY_EVT_AMOUNT_INEXACT.  The
     * database then decides, as for the other dialects: a success without
     * a checkable amount, and any money event whose amount is not the
     * one it books, is amount_mismatch (recorded, alerted, nothing
     * moves). */
    amount = json_object_get(root, "amount");
    currency = json_object_get(root, "currency");

    ev->amount = PAY_EVT_AMOUNT_ABSENT;
    cur = NULL;

    if (currency != NULL) {
        s = pay_jwt_str(currency);

        if (s != NULL && strlen(s) == 3) {
            for (i = 0; i < 3; i++) {
                code[i] = (s[i] >= 'a' && s[i] <= 'z')
                          ? (char) (s[i] - 'a' + 'A') : s[i];
            }

            code[3] = '\0';
            cur = pay_currency_find(code, 3);
        }

        if (cur != NULL) {
            memcpy(ev->currency, code, 4);

        } else {
            ev->amount = PAY_EVT_AMOUNT_INEXACT;
        }
    }

    if (amount != NULL) {
        s = pay_jwt_str(amount);
        arc = (cur == NULL || s == NULL)
              ? PAY_AMOUNT_SYNTAX
              : pay_amount_parse(s, strlen(s), cur->exponent, &minor);

        /* zero is exact too (a registration refuses it, an event may
         * say it: a save without a charge), as Stripe's and Adyen's 0 */
        ev->amount = arc == PAY_AMOUNT_OK ? minor
                     : arc == PAY_AMOUNT_ZERO ? 0
                     : PAY_EVT_AMOUNT_INEXACT;
    }

    rc = 0;

done:

    json_decref(root);

    if (rc != 0) {
        memset(ev, 0, sizeof(pay_event_t));
        ev->amount = PAY_EVT_AMOUNT_ABSENT;
        ev->livemode = -1;
    }

    return rc;
}
