/*
 * Unit tests: gateway-signed browser tokens (src/paytoken.c).
 *
 * Hostile tokens are built here by hand (base64url + HMAC with OpenSSL) so
 * that every rule is tested on its own: each crafted token is valid except
 * for the one thing the test is about, and pt_crafted_control_accepted
 * proves the crafting itself produces tokens the verifier accepts.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/paytoken.h>


#define PT_NOW  1795000000LL
#define PT_EXP  (PT_NOW + 3600)

static const unsigned char  pt_key1[] = "k1-secret-0123456789abcdef-ABCDEF-xyz";
static const unsigned char  pt_key2[] = "k2-secret-fedcba9876543210-QWERTY-abc";


static pay_token_key_t
pt_key(const char *kid, const unsigned char *key, size_t len)
{
    pay_token_key_t  k;

    memset(&k, 0, sizeof(k));
    snprintf(k.kid, sizeof(k.kid), "%s", kid);
    k.key = key;
    k.len = len;

    return k;
}


static pay_token_key_t  pt_keys[2];


static void
pt_setup(void)
{
    pt_keys[0] = pt_key("k1", pt_key1, sizeof(pt_key1) - 1);
    pt_keys[1] = pt_key("k2", pt_key2, sizeof(pt_key2) - 1);
}


static void
pt_b64url(const unsigned char *in, size_t len, char *out)
{
    int  n, i, j;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);

    for (i = 0, j = 0; i < n; i++) {
        if (out[i] == '=') {
            continue;
        }

        out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }

    out[j] = '\0';
}


/* header.payload.signature with the HMAC given by md (NULL: the empty
 * signature); malloc'd. */
static char *
pt_craft(const char *header, const char *payload, const EVP_MD *md,
    const unsigned char *key, size_t keylen)
{
    char           *tok;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    unsigned int    maclen;
    size_t          hl, pl;

    hl = strlen(header);
    pl = strlen(payload);
    tok = malloc(2 * (hl + pl) + 200);
    cr_assert_not_null(tok);

    pt_b64url((const unsigned char *) header, hl, tok);
    strcat(tok, ".");
    pt_b64url((const unsigned char *) payload, pl, tok + strlen(tok));

    if (md != NULL) {
        cr_assert_not_null(HMAC(md, key, (int) keylen,
                                (unsigned char *) tok, strlen(tok),
                                mac, &maclen));
        strcat(tok, ".");
        pt_b64url(mac, maclen, tok + strlen(tok));

    } else {
        strcat(tok, ".");
    }

    return tok;
}


#define PT_HDR      "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"
#define PT_CLAIMS   "{\"c\":\"co_7f3a\",\"exp\":1795003600,\"m\":\"m_1\"," \
                    "\"u\":\"pay\"}"


static int
pt_verify(const char *tok, pay_token_claims_t *c)
{
    return pay_token_verify(pt_keys, 2, tok, strlen(tok), PT_NOW, c);
}


static void
pt_expect_rejected(const char *header, const char *payload)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pt_craft(header, payload, EVP_sha256(), pt_key1,
                   sizeof(pt_key1) - 1);
    cr_expect_eq(pt_verify(tok, &c), -1, "accepted: %s . %s", header,
                 payload);
    cr_expect_eq(c.exp, 0, "claims filled on failure");
    free(tok);
}


TestSuite(paytoken, .init = pt_setup);


Test(paytoken, round_trip_returns_claims)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_7f3a",
                         PAY_TOKEN_RETURN_CANCEL, PT_EXP);
    cr_assert_not_null(tok);

    cr_assert_eq(pt_verify(tok, &c), 0);
    cr_expect_str_eq(c.merchant, "m_1");
    cr_expect_str_eq(c.checkout, "co_7f3a");
    cr_expect_eq(c.use, PAY_TOKEN_RETURN_CANCEL);
    cr_expect_eq(c.exp, PT_EXP);
    free(tok);
}


Test(paytoken, every_use_round_trips)
{
    int                  u;
    char                *tok;
    pay_token_claims_t   c;

    for (u = PAY_TOKEN_PAY; u <= PAY_TOKEN_STATUS; u++) {
        tok = pay_token_sign(&pt_keys[1], "m_1", "co_1", (pay_token_use_e) u,
                             PT_EXP);
        cr_assert_not_null(tok);
        cr_expect_eq(pt_verify(tok, &c), 0);
        cr_expect_eq(c.use, (pay_token_use_e) u);
        free(tok);
    }
}


Test(paytoken, signing_is_deterministic)
{
    char  *a, *b;

    a = pay_token_sign(&pt_keys[0], "m_1", "co_7f3a", PAY_TOKEN_PAY, PT_EXP);
    b = pay_token_sign(&pt_keys[0], "m_1", "co_7f3a", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_expect_str_eq(a, b);

    /* and the header is what the verifier expects */
    cr_expect(strncmp(a, "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.",
                      52) == 0, "%s", a);
    free(a);
    free(b);
}


Test(paytoken, sign_matches_crafted_token_byte_for_byte)
{
    char  *a, *b;

    /* libjwt sorts header and claim keys; the crafted token uses the same
     * order, so any change in libjwt's output shows here. */
    a = pay_token_sign(&pt_keys[0], "m_1", "co_7f3a", PAY_TOKEN_PAY, PT_EXP);
    b = pt_craft(PT_HDR, PT_CLAIMS, EVP_sha256(), pt_key1,
                 sizeof(pt_key1) - 1);
    cr_assert_not_null(a);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}


/* the token as libjwt 1.10 writes it (how pay_token_sign made tokens
 * until it wrote them itself); malloc'd */
static char *
pt_libjwt_sign(const pay_token_key_t *key, const char *merchant,
    const char *checkout, const char *use, long exp)
{
    char   *tok = NULL;
    jwt_t  *jwt;

    cr_assert_eq(jwt_new(&jwt), 0);
    if (jwt_add_header(jwt, "kid", key->kid) == 0
        && jwt_add_grant(jwt, "m", merchant) == 0
        && jwt_add_grant(jwt, "c", checkout) == 0
        && jwt_add_grant(jwt, "u", use) == 0
        && jwt_add_grant_int(jwt, "exp", exp) == 0
        && jwt_set_alg(jwt, JWT_ALG_HS256, key->key, (int) key->len) == 0)
    {
        tok = jwt_encode_str(jwt);
    }
    jwt_free(jwt);
    cr_assert_not_null(tok);

    return tok;
}


Test(paytoken, sign_writes_the_bytes_libjwt_wrote,
     .description = "every pay link made before the signer wrote tokens "
                    "itself is the one made now: for merchants holding each "
                    "visible ASCII character (quotes and backslashes, which "
                    "JSON escapes, among them), every use, both keys and "
                    "exps of 1 to 19 digits, pay_token_sign's token is "
                    "libjwt's, byte for byte, and verifies")
{
    static const char  *uses[] = { NULL, "pay", "ok", "cancel", "status" };
    static const long   exps[] = { 1795003600L, 1L, 99L, 4102444800L,
                                   9223372036854775807L };
    char                merchant[64], *a, *b;
    int                 c, u, k, e, compared = 0;
    pay_token_claims_t  claims;

    for (c = 0x21; c <= 0x7e; c++) {
        /* the character alone, first, last and doubled in a long id */
        snprintf(merchant, sizeof(merchant), "%c", c);
        for (k = 0; k < 2; k++) {
            for (u = PAY_TOKEN_PAY; u <= PAY_TOKEN_STATUS; u++) {
                for (e = 0; e < 5; e++) {
                    if (e > 0 && c != '"' && c != '\\' && c != 'm') {
                        continue;
                    }
                    a = pay_token_sign(&pt_keys[k], merchant, "co_Z-9_a",
                                       (pay_token_use_e) u, exps[e]);
                    b = pt_libjwt_sign(&pt_keys[k], merchant, "co_Z-9_a",
                                       uses[u], exps[e]);
                    cr_assert_not_null(a, "merchant %s", merchant);
                    cr_expect_str_eq(a, b, "merchant %s use %s exp %ld",
                                     merchant, uses[u], exps[e]);
                    free(a);
                    free(b);
                    compared++;
                }
            }
        }

        snprintf(merchant, sizeof(merchant),
                 "%c%c_merchant_with_a_long_id_0123456789_abcdefghijklmno%c",
                 c, c, c);
        a = pay_token_sign(&pt_keys[0], merchant,
                           "co_0123456789012345678901234567890123456",
                           PAY_TOKEN_STATUS, 1795003600L);
        b = pt_libjwt_sign(&pt_keys[0], merchant,
                           "co_0123456789012345678901234567890123456",
                           "status", 1795003600L);
        cr_assert_not_null(a, "merchant %s", merchant);
        cr_expect_str_eq(a, b, "merchant %s", merchant);
        cr_expect_eq(pay_token_verify(pt_keys, 2, a, strlen(a), PT_NOW,
                                      &claims), 0, "%s", a);
        cr_expect_str_eq(claims.merchant, merchant);
        free(a);
        free(b);
        compared++;
    }

    cr_expect_eq(compared, 94 * 8 + 3 * 8 * 4 + 94);
}


Test(paytoken, sign_refuses_short_or_missing_key)
{
    pay_token_key_t  k;

    k = pt_key("k1", pt_key1, PAY_TOKEN_KEY_MIN - 1);
    cr_expect_null(pay_token_sign(&k, "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP));

    k = pt_key("k1", NULL, 0);
    cr_expect_null(pay_token_sign(&k, "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP));

    k = pt_key("k1", pt_key1, 0);
    cr_expect_null(pay_token_sign(&k, "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP));

    cr_expect_null(pay_token_sign(NULL, "m_1", "co_1", PAY_TOKEN_PAY,
                                  PT_EXP));
}


Test(paytoken, sign_refuses_bad_inputs)
{
    pay_token_key_t  k;

    cr_expect_null(pay_token_sign(&pt_keys[0], "", "co_1", PAY_TOKEN_PAY,
                                  PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], NULL, "co_1", PAY_TOKEN_PAY,
                                  PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], "m 1", "co_1", PAY_TOKEN_PAY,
                                  PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], "m_1", "co/1", PAY_TOKEN_PAY,
                                  PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], "m_1",
                                  "0123456789012345678901234567890123456789x",
                                  PAY_TOKEN_PAY, PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], "m_1", "co_1",
                                  (pay_token_use_e) 0, PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], "m_1", "co_1",
                                  (pay_token_use_e) 5, PT_EXP));
    cr_expect_null(pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY,
                                  0));

    k = pt_key("", pt_key1, sizeof(pt_key1) - 1);
    cr_expect_null(pay_token_sign(&k, "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP));

    k = pt_key("k\"1", pt_key1, sizeof(pt_key1) - 1);
    cr_expect_null(pay_token_sign(&k, "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP));
}


Test(paytoken, crafted_control_accepted)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pt_craft(PT_HDR, PT_CLAIMS, EVP_sha256(), pt_key1,
                   sizeof(pt_key1) - 1);
    cr_expect_eq(pt_verify(tok, &c), 0);
    free(tok);

    /* an absent typ is fine (libjwt accepts it too) */
    tok = pt_craft("{\"alg\":\"HS256\",\"kid\":\"k1\"}", PT_CLAIMS,
                   EVP_sha256(), pt_key1, sizeof(pt_key1) - 1);
    cr_expect_eq(pt_verify(tok, &c), 0);
    free(tok);
}


Test(paytoken, forged_signature_rejected)
{
    char                       *tok;
    size_t                      n;
    pay_token_claims_t          c;
    static const unsigned char  other[] =
        "an-attacker-key-that-is-long-enough!!";

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    cr_expect_eq(pt_verify(tok, &c), -1);
    free(tok);

    /* right kid, wrong key */
    tok = pt_craft(PT_HDR, PT_CLAIMS, EVP_sha256(), other, sizeof(other) - 1);
    cr_expect_eq(pt_verify(tok, &c), -1);
    free(tok);

    /* the other configured key under this kid */
    tok = pt_craft(PT_HDR, PT_CLAIMS, EVP_sha256(), pt_key2,
                   sizeof(pt_key2) - 1);
    cr_expect_eq(pt_verify(tok, &c), -1);
    free(tok);
}


Test(paytoken, signature_not_canonical_rejected)
{
    char                *tok;
    size_t               n;
    pay_token_claims_t   c;
    const char          *p;
    static const char    b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /* 43 characters carry 258 bits: the last character's low two bits
     * are padding and must be zero, else two spellings would verify. */
    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    n = strlen(tok);
    p = strchr(b64, tok[n - 1]);
    cr_assert_not_null(p);
    tok[n - 1] = b64[(p - b64) | 1];
    cr_expect_eq(pt_verify(tok, &c), -1);
    free(tok);
}


Test(paytoken, tampered_payload_rejected)
{
    char                *a, *b, *forged;
    const char          *a2, *b2;
    pay_token_claims_t   c;

    /* b's claims with a's signature */
    a = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    b = pay_token_sign(&pt_keys[0], "m_1", "co_2", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(a);
    cr_assert_not_null(b);

    a2 = strrchr(a, '.');
    b2 = strrchr(b, '.');

    forged = malloc(strlen(a) + strlen(b));
    cr_assert_not_null(forged);
    memcpy(forged, b, (size_t) (b2 - b));
    strcpy(forged + (b2 - b), a2);

    cr_expect_eq(pt_verify(forged, &c), -1);
    free(forged);
    free(a);
    free(b);

    /* unsigned edit: exp pushed out */
    a = pt_craft(PT_HDR, PT_CLAIMS, EVP_sha256(), pt_key1,
                 sizeof(pt_key1) - 1);
    b = pt_craft(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1895003600,\"m\":\"m_1\","
                 "\"u\":\"pay\"}", NULL, NULL, 0);
    forged = malloc(strlen(a) + strlen(b) + 1);
    cr_assert_not_null(forged);
    strcpy(forged, b);
    strcat(forged, strrchr(a, '.') + 1);
    cr_expect_eq(pt_verify(forged, &c), -1);
    free(forged);
    free(a);
    free(b);
}


Test(paytoken, alg_none_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pt_craft("{\"alg\":\"none\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
                   PT_CLAIMS, NULL, NULL, 0);
    cr_expect_eq(pt_verify(tok, &c), -1);
    free(tok);

    pt_expect_rejected("{\"alg\":\"none\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
                       PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"None\",\"kid\":\"k1\"}", PT_CLAIMS);
}


Test(paytoken, alg_hs512_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    /* correctly signed with HS512 and the right key: still not ours */
    tok = pt_craft("{\"alg\":\"HS512\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
                   PT_CLAIMS, EVP_sha512(), pt_key1, sizeof(pt_key1) - 1);
    cr_expect_eq(pt_verify(tok, &c), -1);
    free(tok);

    pt_expect_rejected("{\"alg\":\"HS384\",\"kid\":\"k1\"}", PT_CLAIMS);
}


Test(paytoken, alg_rs256_rejected)
{
    pt_expect_rejected("{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
                       PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"ES256\",\"kid\":\"k1\"}", PT_CLAIMS);
}


Test(paytoken, alg_spelling_exact)
{
    pt_expect_rejected("{\"alg\":\"hs256\",\"kid\":\"k1\"}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256 \",\"kid\":\"k1\"}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":[\"HS256\"],\"kid\":\"k1\"}", PT_CLAIMS);
    pt_expect_rejected("{\"kid\":\"k1\",\"typ\":\"JWT\"}", PT_CLAIMS);
}


Test(paytoken, unknown_kid_rejected)
{
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"k3\"}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"K1\"}", PT_CLAIMS);
}


Test(paytoken, empty_or_missing_kid_rejected)
{
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"\"}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\"}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":null}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":1}", PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"k1\\u0000x\"}",
                       PT_CLAIMS);
}


Test(paytoken, key_rotation_both_keys_verify)
{
    char                *t1, *t2;
    pay_token_claims_t   c;

    t1 = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    t2 = pay_token_sign(&pt_keys[1], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(t1);
    cr_assert_not_null(t2);
    cr_expect_neq(strcmp(t1, t2), 0);

    cr_expect_eq(pay_token_verify(pt_keys, 2, t1, strlen(t1), PT_NOW, &c), 0);
    cr_expect_eq(pay_token_verify(pt_keys, 2, t2, strlen(t2), PT_NOW, &c), 0);

    /* once k1 is retired, its tokens stop working */
    cr_expect_eq(pay_token_verify(&pt_keys[1], 1, t1, strlen(t1), PT_NOW,
                                  &c), -1);
    cr_expect_eq(pay_token_verify(&pt_keys[1], 1, t2, strlen(t2), PT_NOW,
                                  &c), 0);
    free(t1);
    free(t2);
}


Test(paytoken, short_key_in_set_rejected)
{
    char                *tok;
    pay_token_key_t      set[2];
    pay_token_claims_t   c;

    /* a configured key shorter than the minimum is never used, even when
     * the token's HMAC matches it; nor is an empty one */
    set[0] = pt_key("k1", pt_key1, PAY_TOKEN_KEY_MIN - 1);
    set[1] = pt_key("k2", NULL, 0);

    tok = pt_craft(PT_HDR, PT_CLAIMS, EVP_sha256(), pt_key1,
                   PAY_TOKEN_KEY_MIN - 1);
    cr_expect_eq(pay_token_verify(set, 2, tok, strlen(tok), PT_NOW, &c), -1);
    free(tok);

    tok = pt_craft("{\"alg\":\"HS256\",\"kid\":\"k2\"}", PT_CLAIMS,
                   EVP_sha256(), (const unsigned char *) "", 0);
    cr_expect_eq(pay_token_verify(set, 2, tok, strlen(tok), PT_NOW, &c), -1);
    free(tok);

    /* and a short key does not fall through to a later one of that kid */
    set[1] = pt_keys[0];
    tok = pay_token_sign(&pt_keys[0], "m_1", "co_7f3a", PAY_TOKEN_PAY, PT_EXP);
    cr_expect_eq(pay_token_verify(set, 2, tok, strlen(tok), PT_NOW, &c), -1);
    free(tok);
}


Test(paytoken, empty_key_set_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    cr_expect_eq(pay_token_verify(NULL, 0, tok, strlen(tok), PT_NOW, &c), -1);
    cr_expect_eq(pay_token_verify(pt_keys, 0, tok, strlen(tok), PT_NOW, &c),
                 -1);
    free(tok);
}


Test(paytoken, expired_by_one_second_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_NOW);
    cr_assert_not_null(tok);
    cr_expect_eq(pay_token_verify(pt_keys, 2, tok, strlen(tok), PT_NOW + 1,
                                  &c), -1);
    free(tok);
}


Test(paytoken, exp_exactly_now_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_NOW);
    cr_assert_not_null(tok);
    cr_expect_eq(pay_token_verify(pt_keys, 2, tok, strlen(tok), PT_NOW, &c),
                 -1);
    cr_expect_eq(pay_token_verify(pt_keys, 2, tok, strlen(tok), PT_NOW - 1,
                                  &c), 0);
    free(tok);
}


Test(paytoken, wrong_use_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_RETURN_CANCEL,
                         PT_EXP);
    cr_assert_not_null(tok);

    cr_expect_eq(pay_token_verify_for(pt_keys, 2, tok, strlen(tok), PT_NOW,
                                      PAY_TOKEN_RETURN_SUCCESS, "co_1", &c),
                 -1);
    cr_expect_eq(pay_token_verify_for(pt_keys, 2, tok, strlen(tok), PT_NOW,
                                      PAY_TOKEN_PAY, "co_1", &c), -1);
    cr_expect_eq(pay_token_verify_for(pt_keys, 2, tok, strlen(tok), PT_NOW,
                                      PAY_TOKEN_RETURN_CANCEL, "co_1", &c), 0);
    cr_expect_str_eq(c.merchant, "m_1");
    free(tok);

    /* a use the gateway never writes */
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":\"m_1\",\"u\":\"refund\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":\"m_1\",\"u\":\"PAY\"}");
}


Test(paytoken, other_checkout_rejected)
{
    char                *tok;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    cr_expect_eq(pay_token_verify_for(pt_keys, 2, tok, strlen(tok), PT_NOW,
                                      PAY_TOKEN_PAY, "co_2", &c), -1);
    cr_expect_eq(pay_token_verify_for(pt_keys, 2, tok, strlen(tok), PT_NOW,
                                      PAY_TOKEN_PAY, "co_1x", &c), -1);
    cr_expect_eq(pay_token_verify_for(pt_keys, 2, tok, strlen(tok), PT_NOW,
                                      PAY_TOKEN_PAY, NULL, &c), -1);
    free(tok);
}


Test(paytoken, missing_claims_rejected)
{
    pt_expect_rejected(PT_HDR, "{\"exp\":1795003600,\"m\":\"m_1\","
                       "\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"m\":\"m_1\","
                       "\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":\"m_1\"}");
    pt_expect_rejected(PT_HDR, "{}");
}


Test(paytoken, claim_types_strict)
{
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":\"1795003600\","
                       "\"m\":\"m_1\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600.0,"
                       "\"m\":\"m_1\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":1,\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":[\"co_7f3a\"],\"exp\":1795003600,"
                       "\"m\":\"m_1\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":\"\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co/7f3a\",\"exp\":1795003600,"
                       "\"m\":\"m_1\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":\"m_1\\u0000\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":-1,"
                       "\"m\":\"m_1\",\"u\":\"pay\"}");
    pt_expect_rejected(PT_HDR, "[\"co_7f3a\",1795003600,\"m_1\",\"pay\"]");
}


Test(paytoken, extra_claims_rejected)
{
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,"
                       "\"m\":\"m_1\",\"u\":\"pay\",\"admin\":true}");
}


Test(paytoken, duplicate_keys_rejected)
{
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"k3\",\"kid\":\"k1\"}",
                       PT_CLAIMS);
    pt_expect_rejected(PT_HDR, "{\"c\":\"co_1\",\"c\":\"co_7f3a\","
                       "\"exp\":1795003600,\"m\":\"m_1\",\"u\":\"pay\"}");
}


Test(paytoken, header_fields_strict)
{
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWS\"}",
                       PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"k1\",\"crit\":[\"b64\"]}",
                       PT_CLAIMS);
    pt_expect_rejected("{\"alg\":\"HS256\",\"kid\":\"k1\",\"jku\":"
                       "\"https://evil.example/k\"}", PT_CLAIMS);
    pt_expect_rejected("[\"HS256\",\"k1\"]", PT_CLAIMS);
}


Test(paytoken, garbage_rejected)
{
    static const char   *bad[] = {
        "", ".", "..", "...", "abc", "a.b", "a.b.c", "a..c", ".b.c", "a.b.",
        "eyJ.eyJ.eyJ", "not a token", "eyJhbGciOiJIUzI1NiJ9.e30.",
        "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", "\xff\xfe.\x01.\x02",
        "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30."
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    size_t               i;
    pay_token_claims_t   c;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(pt_verify(bad[i], &c), -1, "accepted #%zu", i);
    }

    cr_expect_eq(pay_token_verify(pt_keys, 2, NULL, 10, PT_NOW, &c), -1);
}


Test(paytoken, extra_dots_rejected)
{
    char                *tok, *ext;
    size_t               n;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    n = strlen(tok);
    ext = malloc(n + 8);
    cr_assert_not_null(ext);

    snprintf(ext, n + 8, "%s.", tok);
    cr_expect_eq(pt_verify(ext, &c), -1);
    snprintf(ext, n + 8, "%s.e30", tok);
    cr_expect_eq(pt_verify(ext, &c), -1);
    snprintf(ext, n + 8, ".%s", tok);
    cr_expect_eq(pt_verify(ext, &c), -1);

    /* a dot inside the signature */
    snprintf(ext, n + 8, "%s", tok);
    ext[n - 10] = '.';
    cr_expect_eq(pt_verify(ext, &c), -1);

    cr_expect_eq(pt_verify(tok, &c), 0);
    free(ext);
    free(tok);
}


Test(paytoken, embedded_nul_rejected)
{
    char                *tok, *ext;
    size_t               n;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    n = strlen(tok);
    ext = calloc(1, n + 2);
    cr_assert_not_null(ext);
    memcpy(ext, tok, n);

    /* the length given is the truth, not strlen() */
    cr_expect_eq(pay_token_verify(pt_keys, 2, ext, n + 1, PT_NOW, &c), -1);
    cr_expect_eq(pay_token_verify(pt_keys, 2, ext, n - 1, PT_NOW, &c), -1);
    free(ext);
    free(tok);
}


Test(paytoken, oversize_rejected)
{
    char                *tok, *big;
    size_t               n;
    pay_token_claims_t   c;

    tok = pay_token_sign(&pt_keys[0], "m_1", "co_1", PAY_TOKEN_PAY, PT_EXP);
    cr_assert_not_null(tok);
    n = strlen(tok);

    /* a valid token followed by padding up to the bound is refused before
     * anything is decoded */
    big = malloc(PAY_TOKEN_MAX_LEN + 2);
    cr_assert_not_null(big);
    memset(big, 'A', PAY_TOKEN_MAX_LEN + 1);
    memcpy(big, tok, n);
    big[PAY_TOKEN_MAX_LEN + 1] = '\0';
    cr_expect_eq(pay_token_verify(pt_keys, 2, big, PAY_TOKEN_MAX_LEN + 1,
                                  PT_NOW, &c), -1);
    free(big);

    big = pt_craft(PT_HDR, "{\"c\":\"co_7f3a\",\"exp\":1795003600,\"m\":"
                   "\"m_1\",\"u\":\"pay\",\"pad\":\""
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "\"}", EVP_sha256(), pt_key1, sizeof(pt_key1) - 1);
    cr_assert_gt(strlen(big), PAY_TOKEN_MAX_LEN);
    cr_expect_eq(pt_verify(big, &c), -1);
    free(big);
    free(tok);
}
