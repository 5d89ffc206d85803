/*
 * Unit tests: the generic dialect's JWT webhooks (src/webhook_generic.c),
 * one rule per test.  Keys are made here with OpenSSL EVP (no files) and
 * tokens signed with libjwt, as a PSP's library would; hostile tokens are
 * valid except for the one thing their test is about.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <payments/webhook.h>
#include "../b64url.h"


#define WG_NOW   1795000000LL
#define WG_BODY  "{\"event_id\":\"ev_1\",\"type\":\"payment.succeeded\"," \
                 "\"reference\":\"m1:co_1\",\"token\":\"tok_1\"," \
                 "\"amount\":\"10.50\",\"currency\":\"USD\"}"


typedef struct {
    char  *pub;             /* SubjectPublicKeyInfo PEM */
    char  *priv;            /* PKCS#8 PEM, for libjwt to sign with */
} wg_pair_t;


static char *
wg_bio_string(BIO *bio)
{
    char    *data, *s;
    long     len;

    len = BIO_get_mem_data(bio, &data);
    cr_assert_gt(len, 0);
    s = malloc((size_t) len + 1);
    cr_assert_not_null(s);
    memcpy(s, data, (size_t) len);
    s[len] = '\0';

    return s;
}


static wg_pair_t
wg_pair(int rsa)
{
    BIO        *bio;
    EVP_PKEY   *pkey;
    wg_pair_t   p;

    pkey = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    cr_assert_not_null(pkey);

    bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_PUBKEY(bio, pkey), 1);
    p.pub = wg_bio_string(bio);
    BIO_free(bio);

    bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
                                          NULL), 1);
    p.priv = wg_bio_string(bio);
    BIO_free(bio);

    EVP_PKEY_free(pkey);

    return p;
}


static void
wg_pair_free(wg_pair_t *p)
{
    free(p->pub);
    free(p->priv);
}


static pay_jwt_key_t
wg_key(const char *kid, pay_jwt_alg_e alg, const char *pem)
{
    pay_jwt_key_t  k;

    k.kid = kid;
    k.alg = alg;
    k.pem = pem;
    k.pem_len = strlen(pem);

    return k;
}


static void
wg_sha256_hex(const char *body, char out[65])
{
    unsigned char  d[32];
    unsigned int   len, i;

    cr_assert_eq(EVP_Digest(body, strlen(body), d, &len, EVP_sha256(), NULL),
                 1);
    for (i = 0; i < 32; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
}


/* What a token carries; NULL or 0 leaves a claim out. */
typedef struct {
    jwt_alg_t    alg;
    const char  *key;           /* signing key (PEM or HMAC bytes) */
    const char  *kid;
    long         iat;
    long         exp;
    const char  *body;          /* request_body_sha256 of this */
    const char  *iss;
    const char  *aud_json;      /* "\"x\"" or "[\"x\",\"y\"]" */
    const char  *crit;
} wg_claims_t;


static char *
wg_token(const wg_claims_t *c)
{
    char    hex[65], json[256], *tok;
    jwt_t  *jwt;

    cr_assert_eq(jwt_new(&jwt), 0);

    if (c->kid) {
        cr_assert_eq(jwt_add_header(jwt, "kid", c->kid), 0);
    }

    if (c->crit) {
        cr_assert_eq(jwt_add_header(jwt, "crit", c->crit), 0);
    }

    if (c->iat) {
        cr_assert_eq(jwt_add_grant_int(jwt, "iat", c->iat), 0);
    }

    if (c->exp) {
        cr_assert_eq(jwt_add_grant_int(jwt, "exp", c->exp), 0);
    }

    if (c->body) {
        wg_sha256_hex(c->body, hex);
        cr_assert_eq(jwt_add_grant(jwt, "request_body_sha256", hex), 0);
    }

    if (c->iss) {
        cr_assert_eq(jwt_add_grant(jwt, "iss", c->iss), 0);
    }

    if (c->aud_json) {
        snprintf(json, sizeof(json), "{\"aud\":%s}", c->aud_json);
        cr_assert_eq(jwt_add_grants_json(jwt, json), 0);
    }

    cr_assert_eq(jwt_set_alg(jwt, c->alg, (const unsigned char *) c->key,
                             c->key ? (int) strlen(c->key) : 0), 0);
    tok = jwt_encode_str(jwt);
    cr_assert_not_null(tok);
    jwt_free(jwt);

    return tok;
}


static wg_claims_t
wg_good(const wg_pair_t *ec)
{
    wg_claims_t  c;

    memset(&c, 0, sizeof(c));
    c.alg = JWT_ALG_ES256;
    c.key = ec->priv;
    c.kid = "ec1";
    c.iat = (long) WG_NOW;
    c.body = WG_BODY;

    return c;
}


static pay_err_e
wg_verify(const char *tok, const pay_jwt_key_t *keys, size_t n,
    const char *iss, const char *aud)
{
    return pay_generic_verify(tok, strlen(tok), WG_BODY, strlen(WG_BODY),
                              keys, n, iss, aud, WG_NOW);
}


/* An EC key "ec1" pinned ES256 and an RSA key "rsa1" pinned RS256. */
typedef struct {
    wg_pair_t      ec, rsa;
    pay_jwt_key_t  keys[2];
} wg_fixture_t;


static void
wg_setup(wg_fixture_t *f)
{
    f->ec = wg_pair(0);
    f->rsa = wg_pair(1);
    f->keys[0] = wg_key("ec1", PAY_JWT_ES256, f->ec.pub);
    f->keys[1] = wg_key("rsa1", PAY_JWT_RS256, f->rsa.pub);
}


static void
wg_teardown(wg_fixture_t *f)
{
    wg_pair_free(&f->ec);
    wg_pair_free(&f->rsa);
}


static char *
wg_b64url(const char *s)
{
    char    *out;
    size_t   len;

    len = strlen(s);
    out = malloc(len * 2 + 4);
    cr_assert_not_null(out);
    out[test_b64url((const unsigned char *) s, len, out)] = '\0';

    return out;
}


Test(webhook_generic, valid_es256_token_passes)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);

    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL), PAY_ERR_NONE);
    cr_assert_eq(pay_jwt_key_check(&f.keys[0]), 0);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, valid_rs256_token_passes)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.alg = JWT_ALG_RS256;
    c.key = f.rsa.priv;
    c.kid = "rsa1";
    tok = wg_token(&c);

    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL), PAY_ERR_NONE);
    cr_assert_eq(pay_jwt_key_check(&f.keys[1]), 0);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, unknown_kid_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.kid = "ec2";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    /* and no kid at all */
    c.kid = NULL;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, alg_none_is_bad_signature)
{
    char          *tok, *hdr, *pay, buf[4096];
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.alg = JWT_ALG_NONE;
    c.key = NULL;
    tok = wg_token(&c);             /* "header.claims." */
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    /* with a signature segment, so that only the alg can refuse it */
    c = wg_good(&f.ec);
    tok = wg_token(&c);
    hdr = wg_b64url("{\"alg\":\"none\",\"kid\":\"ec1\",\"typ\":\"JWT\"}");
    pay = strchr(tok, '.');
    snprintf(buf, sizeof(buf), "%s%s", hdr, pay);
    cr_assert_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(hdr);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, hs256_keyed_with_the_public_pem_is_bad_signature)
{
    char          *tok;
    jwt_t         *jwt;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.alg = JWT_ALG_HS256;
    c.key = f.ec.pub;               /* the attacker knows the public key */
    tok = wg_token(&c);

    /* the attack is real: libjwt alone, given the PEM, accepts it */
    jwt = NULL;
    cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *) f.ec.pub,
                            (int) strlen(f.ec.pub)), 0);
    jwt_free(jwt);

    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    /* the same against the RSA key */
    c.key = f.rsa.pub;
    c.kid = "rsa1";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, rs256_token_for_a_key_pinned_es256_is_bad_signature)
{
    char           *tok;
    wg_fixture_t    f;
    wg_claims_t     c;
    pay_jwt_key_t   k;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.alg = JWT_ALG_RS256;
    c.key = f.rsa.priv;
    c.kid = "ec1";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);

    /* even when the configured PEM really is that RSA key: the pin says
     * ES256, and an RSA PEM pinned ES256 is no key at all */
    k = wg_key("ec1", PAY_JWT_ES256, f.rsa.pub);
    cr_assert_eq(pay_jwt_key_check(&k), -1);
    cr_assert_eq(wg_verify(tok, &k, 1, NULL, NULL), PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, es256_token_for_a_key_pinned_rs256_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.kid = "rsa1";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, another_key_with_the_right_kid_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_pair_t      other;
    wg_claims_t    c;

    wg_setup(&f);
    other = wg_pair(0);
    c = wg_good(&other);            /* signed by a key not configured */
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_pair_free(&other);
    wg_teardown(&f);
}


Test(webhook_generic, empty_key_list_is_bad_signature)
{
    char           *tok;
    wg_fixture_t    f;
    wg_claims_t     c;
    pay_jwt_key_t   k;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 0, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(wg_verify(tok, NULL, 0, NULL, NULL), PAY_ERR_BAD_SIGNATURE);

    /* a key whose PEM is empty never reaches libjwt (which would accept) */
    k = wg_key("ec1", PAY_JWT_ES256, "");
    cr_assert_eq(pay_jwt_key_check(&k), -1);
    cr_assert_eq(wg_verify(tok, &k, 1, NULL, NULL), PAY_ERR_BAD_SIGNATURE);
    k.pem = NULL;
    cr_assert_eq(wg_verify(tok, &k, 1, NULL, NULL), PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, iat_301_s_old_is_stale)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.iat = (long) WG_NOW - 301;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_STALE_WEBHOOK);
    free(tok);
    wg_teardown(&f);
}


/* An exp in the past (beyond the 60 s leeway) is refused even when iat is
 * fresh; one inside the leeway passes. */
Test(webhook_generic, expired_jwt_is_stale)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.exp = (long) WG_NOW - 61;
    tok = wg_token(&c);
    cr_expect_eq(wg_verify(tok, f.keys, 2, NULL, NULL), PAY_ERR_STALE_WEBHOOK);
    free(tok);

    c.exp = (long) WG_NOW - 60;
    tok = wg_token(&c);
    cr_expect_eq(wg_verify(tok, f.keys, 2, NULL, NULL), PAY_ERR_NONE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, iat_300_s_old_passes)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.iat = (long) WG_NOW - 300;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL), PAY_ERR_NONE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, iat_61_s_ahead_is_stale)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.iat = (long) WG_NOW + 61;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_STALE_WEBHOOK);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, iat_60_s_ahead_passes)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.iat = (long) WG_NOW + 60;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL), PAY_ERR_NONE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, missing_iat_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.iat = 0;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, wrong_request_body_sha256_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.body = "{\"event_id\":\"ev_1\",\"type\":\"payment.failed\"}";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    /* no hash at all */
    c.body = NULL;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, tampered_body_is_bad_signature)
{
    char          *tok, body[] = WG_BODY;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);

    *strstr(body, "10.50") = '9';
    cr_assert_eq(pay_generic_verify(tok, strlen(tok), body, strlen(body),
                                    f.keys, 2, NULL, NULL, WG_NOW),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, upper_case_body_hash_is_bad_signature)
{
    char          *tok, hex[65], json[256], *hdr, *pay, *sig, buf[4096];
    size_t         i;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);

    /* only the claims segment differs; the signature is then wrong too,
     * so this is the tampered-payload rule and the hash rule at once */
    wg_sha256_hex(WG_BODY, hex);
    for (i = 0; i < 64; i++) {
        if (hex[i] >= 'a' && hex[i] <= 'f') {
            hex[i] = (char) (hex[i] - 'a' + 'A');
        }
    }

    snprintf(json, sizeof(json),
             "{\"iat\":%lld,\"request_body_sha256\":\"%s\"}", WG_NOW, hex);
    hdr = tok;
    pay = strchr(tok, '.');
    *pay++ = '\0';
    sig = strchr(pay, '.');
    pay = wg_b64url(json);
    snprintf(buf, sizeof(buf), "%s.%s%s", hdr, pay, sig);

    cr_assert_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(pay);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, iss_mismatch_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.iss = "https://psp.example";
    tok = wg_token(&c);

    cr_assert_eq(wg_verify(tok, f.keys, 2, "https://psp.example", NULL),
                 PAY_ERR_NONE);
    cr_assert_eq(wg_verify(tok, f.keys, 2, "https://evil.example", NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    /* configured but absent */
    c.iss = NULL;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, "https://psp.example", NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, aud_mismatch_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.aud_json = "\"gw-1\"";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, "gw-1"), PAY_ERR_NONE);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, "gw-2"),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    c.aud_json = "[\"other\",\"gw-1\"]";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, "gw-1"), PAY_ERR_NONE);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, "gw-2"),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    c.aud_json = "[1,\"gw-1\"]";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, "gw-1"),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);

    c.aud_json = NULL;
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, "gw-1"),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, tampered_payload_is_bad_signature)
{
    char          *tok, *hdr, *pay, *sig, json[256], buf[4096], hex[65];
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);

    /* a fresh iat on an otherwise identical payload: replay refreshed */
    wg_sha256_hex(WG_BODY, hex);
    snprintf(json, sizeof(json),
             "{\"iat\":%lld,\"request_body_sha256\":\"%s\"}", WG_NOW + 1,
             hex);
    hdr = tok;
    pay = strchr(tok, '.');
    *pay++ = '\0';
    sig = strchr(pay, '.');
    pay = wg_b64url(json);
    snprintf(buf, sizeof(buf), "%s.%s%s", hdr, pay, sig);

    cr_assert_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(pay);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, tampered_signature_is_bad_signature)
{
    char          *tok, *sig;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);
    sig = strrchr(tok, '.') + 5;
    *sig = (char) (*sig == 'A' ? 'B' : 'A');
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, crit_header_is_bad_signature)
{
    char          *tok;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    c.crit = "b64";
    tok = wg_token(&c);
    cr_assert_eq(wg_verify(tok, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    free(tok);
    wg_teardown(&f);
}


Test(webhook_generic, malformed_tokens_are_bad_signature)
{
    char          *tok, buf[4096], *big;
    size_t         i, len;
    wg_fixture_t   f;
    wg_claims_t    c;

    wg_setup(&f);
    c = wg_good(&f.ec);
    tok = wg_token(&c);
    len = strlen(tok);

    /* four segments, padding, a space, a trailing dot, a leading dot */
    snprintf(buf, sizeof(buf), "%s.AAAA", tok);
    cr_expect_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    snprintf(buf, sizeof(buf), "%s=", tok);
    cr_expect_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    snprintf(buf, sizeof(buf), " %s", tok);
    cr_expect_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    snprintf(buf, sizeof(buf), ".%s", tok);
    cr_expect_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    snprintf(buf, sizeof(buf), "%.*s", (int) (strrchr(tok, '.') - tok + 1),
             tok);
    cr_expect_eq(wg_verify(buf, f.keys, 2, NULL, NULL),
                 PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(pay_generic_verify("", 0, WG_BODY, strlen(WG_BODY), f.keys,
                                    2, NULL, NULL, WG_NOW),
                 PAY_ERR_BAD_SIGNATURE);

    /* every prefix of a valid token */
    for (i = 1; i < len; i++) {
        cr_expect_eq(pay_generic_verify(tok, i, WG_BODY, strlen(WG_BODY),
                                        f.keys, 2, NULL, NULL, WG_NOW),
                     PAY_ERR_BAD_SIGNATURE, "prefix %zu", i);
    }

    /* over 8 KiB: refused unread */
    big = malloc(PAY_JWT_MAX_LEN + 2);
    cr_assert_not_null(big);
    memset(big, 'A', PAY_JWT_MAX_LEN + 1);
    big[10] = '.';
    big[20] = '.';
    cr_expect_eq(pay_generic_verify(big, PAY_JWT_MAX_LEN + 1, WG_BODY,
                                    strlen(WG_BODY), f.keys, 2, NULL, NULL,
                                    WG_NOW), PAY_ERR_BAD_SIGNATURE);
    free(big);
    free(tok);
    wg_teardown(&f);
}


/* events */

static int
wg_parse(const char *body, pay_event_t *ev)
{
    return pay_generic_parse_event(body, strlen(body), ev);
}


Test(webhook_generic, succeeded_event_is_read)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse(WG_BODY, &ev), 0);
    cr_assert_str_eq(ev.event_id, "ev_1");
    cr_assert_str_eq(ev.type, "payment.succeeded");
    cr_assert_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_assert_str_eq(ev.reference, "m1:co_1");
    cr_assert_str_eq(ev.token, "tok_1");
    cr_assert_eq(ev.amount, 1050);
    cr_assert_str_eq(ev.currency, "USD");
    cr_assert_eq(ev.livemode, -1);
}


Test(webhook_generic, failed_event_is_read)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.failed\","
                          "\"amount\":\"500\",\"currency\":\"JPY\"}", &ev),
                 0);
    cr_assert_eq(ev.kind, PAY_EVT_FAILED);
    cr_assert_eq(ev.amount, 500);
    cr_assert_str_eq(ev.currency, "JPY");
    cr_assert_str_eq(ev.reference, "");
}


Test(webhook_generic, other_types_are_ignored)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.refunded\"}",
                          &ev), 0);
    cr_assert_eq(ev.kind, PAY_EVT_IGNORED);
    cr_assert_eq(ev.amount, -1);
}


Test(webhook_generic, amount_uses_the_currency_exponent)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.failed\","
                          "\"amount\":\"1.5\",\"currency\":\"KWD\"}", &ev),
                 0);
    cr_assert_eq(ev.amount, 1500);

    /* 1.5 yen has no exact value: read, and it can match no checkout */
    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.failed\","
                          "\"amount\":\"1.5\",\"currency\":\"JPY\"}", &ev),
                 0);
    cr_assert_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);
    cr_assert_str_eq(ev.currency, "JPY");
}


/* An authentic event is kept whatever its amount says (doc/API.md,
 * Webhooks): the reader says what it could not read, and the database
 * answers amount_mismatch for any amount that matches nothing. */
Test(webhook_generic, an_amount_with_no_exact_value_in_its_currency_is_inexact)
{
    size_t       i;
    pay_event_t  ev;
    char         body[256];
    const char  *amounts[] = {
        "\"10.505\"", "\"-1\"", "\"1e3\"", "\"\"", "\" 1\"", "\"0.000\"",
        "\"01\"", "\"99999999999999999999\"", "1050", "10.5", "null",
        "{}",
    };

    for (i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                 "\"reference\":\"m1:co_1\",\"amount\":%s,"
                 "\"currency\":\"USD\"}", amounts[i]);
        cr_expect_eq(wg_parse(body, &ev), 0, "amount %s", amounts[i]);
        cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED, "amount %s", amounts[i]);
        cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT, "amount %s",
                     amounts[i]);
        cr_expect_str_eq(ev.currency, "USD", "amount %s", amounts[i]);
        cr_expect_str_eq(ev.reference, "m1:co_1", "amount %s", amounts[i]);
    }
}


/* Zero is an exact amount (Stripe's and Adyen's 0 are read as 0): the
 * database compares it as any other. */
Test(webhook_generic, a_zero_amount_is_read_as_zero)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                          "\"amount\":\"0.00\",\"currency\":\"EUR\"}", &ev), 0);
    cr_expect_eq(ev.amount, 0);
    cr_expect_str_eq(ev.currency, "EUR");

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                          "\"amount\":\"0\",\"currency\":\"JPY\"}", &ev), 0);
    cr_expect_eq(ev.amount, 0);
}


Test(webhook_generic, a_success_without_an_amount_is_read_with_the_amount_absent)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                          "\"currency\":\"usd\"}", &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
    cr_expect_str_eq(ev.currency, "USD");

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                          "\"reference\":\"m1:co_1\",\"token\":\"t\"}", &ev),
                 0);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
    cr_expect_str_eq(ev.currency, "");
    cr_expect_str_eq(ev.token, "t");
}


/* An amount is only exact in a currency: without an ISO 4217 one it has
 * no value, and a code that is not one is not kept. */
Test(webhook_generic, an_amount_without_an_iso_4217_currency_is_inexact_and_the_currency_empty)
{
    size_t       i;
    pay_event_t  ev;
    char         body[256];
    const char  *currencies[] = {
        "\"XYZ\"", "\"US\"", "\"USDD\"", "\"\"", "\"U$D\"", "840", "null",
    };

    for (i = 0; i < sizeof(currencies) / sizeof(currencies[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                 "\"amount\":\"1\",\"currency\":%s}", currencies[i]);
        cr_expect_eq(wg_parse(body, &ev), 0, "currency %s", currencies[i]);
        cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT, "currency %s",
                     currencies[i]);
        cr_expect_str_eq(ev.currency, "", "currency %s", currencies[i]);
    }

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.succeeded\","
                          "\"amount\":\"1\"}", &ev), 0);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);
    cr_expect_str_eq(ev.currency, "");

    /* a currency that is not one makes even a missing amount unreadable:
     * the event named money in words we cannot read */
    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.failed\","
                          "\"currency\":\"XYZ\"}", &ev), 0);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);
    cr_expect_str_eq(ev.currency, "");
}


Test(webhook_generic, duplicate_keys_are_refused)
{
    pay_event_t  ev;

    cr_assert_eq(wg_parse("{\"event_id\":\"e\",\"type\":\"payment.failed\","
                          "\"type\":\"payment.succeeded\","
                          "\"amount\":\"1\",\"currency\":\"USD\"}", &ev), -1);
}


Test(webhook_generic, non_events_are_refused)
{
    size_t       i;
    pay_event_t  ev;
    const char  *bodies[] = {
        "", "[]", "{}", "{\"type\":\"payment.failed\"}",
        "{\"event_id\":\"\",\"type\":\"x\"}",
        "{\"event_id\":\"e\"}",
        "{\"event_id\":1,\"type\":\"x\"}",
        "{\"event_id\":\"e\",\"type\":\"x\",\"token\":5}",
        "{\"event_id\":\"e\",\"type\":\"x\",\"reference\":\"a\\u0000b\"}",
    };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cr_expect_eq(wg_parse(bodies[i], &ev), -1, "body %zu", i);
    }
}
