/*
 * ngx_payments core: gateway-signed browser tokens (paytoken.h).
 *
 * A token is signed here, in the bytes libjwt 1.10 writes (its encoder,
 * a JSON object dumped for the header and for the claims, cost twice
 * this: bench/RESULTS.md), and libjwt verifies, as the last of several
 * checks.  It cannot be trusted alone (PSP_FACTS.md): it takes the
 * algorithm from the token, accepts anything with an empty key, ignores
 * exp, and compares the HMAC with strcmp().  So verification here:
 *
 *   1. bounds the token and requires exactly three base64url segments;
 *   2. decodes the header itself (strict base64url, jansson with duplicate
 *      keys refused): alg exactly "HS256", a kid, typ absent or "JWT",
 *      nothing else (an unknown "crit" must not be ignored);
 *   3. picks the key by kid from the configured set only, refusing keys
 *      shorter than PAY_TOKEN_KEY_MIN (never an empty one);
 *   4. recomputes the HMAC itself and compares it in constant time, so no
 *      timing of libjwt's strcmp() is ever observable for a forged token;
 *   5. lets libjwt verify as well and checks jwt_get_alg() afterwards;
 *   6. decodes the claims itself with strict types and checks exp.
 */

#include <sys/types.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/jose.h>
#include <payments/paytoken.h>


#define PAY_TOKEN_SIG_LEN   32          /* HMAC-SHA256 */
#define PAY_TOKEN_KID_MAX   32


static const char *pay_token_uses[] = {
    NULL, "pay", "ok", "cancel", "status"
};


static int
pay_token_kid_valid(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char) s[i];

        if (i >= PAY_TOKEN_KID_MAX
            || !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
                 || (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return i > 0;
}


/* The merchant id is the database's; any visible ASCII that fits. */
static int
pay_token_merchant_valid(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= sizeof(((pay_token_claims_t *) 0)->merchant) - 1
            || (unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
        {
            return 0;
        }
    }

    return i > 0;
}


/* [A-Za-z0-9_-]{1,40}, as the API's ids. */
static int
pay_token_checkout_valid(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char) s[i];

        if (i >= sizeof(((pay_token_claims_t *) 0)->checkout) - 1
            || !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
                 || (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return i > 0;
}


static int
pay_token_key_usable(const pay_token_key_t *k)
{
    return k->key != NULL && k->len >= PAY_TOKEN_KEY_MIN
           && k->len <= INT_MAX && pay_token_kid_valid(k->kid);
}


/* s into p as a JSON string's characters: the merchant and checkout
 * checks admit only 0x21-0x7e, of which JSON escapes '"' and '\\' alone
 * (jansson as libjwt calls it: no JSON_ESCAPE_SLASH).  Returns the end. */
static char *
pay_token_json_chars(char *p, const char *s)
{
    for ( /* void */ ; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
        }

        *p++ = *s;
    }

    return p;
}


char *
pay_token_sign(const pay_token_key_t *key, const char *merchant,
    const char *checkout, pay_token_use_e use, int64_t exp)
{
    int            n;
    char           json[2 * sizeof(((pay_token_claims_t *) 0)->merchant)
                        + 2 * sizeof(((pay_token_claims_t *) 0)->checkout)
                        + 128];
    char          *tok, *p;
    size_t         hlen, clen, tlen;
    unsigned int   maclen;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    if (key == NULL || !pay_token_key_usable(key)
        || merchant == NULL || !pay_token_merchant_valid(merchant)
        || checkout == NULL || !pay_token_checkout_valid(checkout)
        || use < PAY_TOKEN_PAY || use > PAY_TOKEN_STATUS
        || exp <= 0 || exp > LONG_MAX)
    {
        return NULL;
    }

    /*
     * The bytes libjwt 1.10 wrote (its jansson dump with sorted keys,
     * compact), so that every link made before stays what is made now:
     * header {"alg":"HS256","kid":K,"typ":"JWT"}, claims
     * {"c":C,"exp":E,"m":M,"u":U}; a unit test compares the two for
     * merchants with quotes and backslashes, and the fuzz target for what
     * it finds.  The same inputs give the same bytes: a replayed or
     * re-rendered pay link is identical.
     */
    tok = malloc(pay_b64url_len(sizeof(json)) * 2
                 + pay_b64url_len(PAY_TOKEN_SIG_LEN) + 3);
    if (tok == NULL) {
        return NULL;
    }

    /* the kid is [A-Za-z0-9_-]{1,32}: nothing to escape */
    n = snprintf(json, sizeof(json), "{\"alg\":\"HS256\",\"kid\":\"%s\","
                 "\"typ\":\"JWT\"}", key->kid);
    if (n < 0 || (size_t) n >= sizeof(json)) {
        free(tok);
        return NULL;
    }

    pay_b64url_encode((const unsigned char *) json, (size_t) n, tok);
    hlen = strlen(tok);
    tok[hlen] = '.';

    /* the checkout (< 41 characters) and the merchant (< 64), each at
     * most doubled by its escapes, fit with room for the rest */
    memcpy(json, "{\"c\":\"", 6);
    p = pay_token_json_chars(json + 6, checkout);
    n = snprintf(p, sizeof(json) - (size_t) (p - json),
                 "\",\"exp\":%lld,\"m\":\"", (long long) exp);
    p += n;
    p = pay_token_json_chars(p, merchant);
    n = snprintf(p, sizeof(json) - (size_t) (p - json), "\",\"u\":\"%s\"}",
                 pay_token_uses[use]);
    p += n;

    pay_b64url_encode((const unsigned char *) json, (size_t) (p - json),
                      tok + hlen + 1);
    clen = strlen(tok + hlen + 1);
    tlen = hlen + 1 + clen;

    if (HMAC(EVP_sha256(), key->key, (int) key->len,
             (const unsigned char *) tok, tlen, mac, &maclen) == NULL
        || maclen != PAY_TOKEN_SIG_LEN)
    {
        free(tok);
        return NULL;
    }

    tok[tlen] = '.';
    pay_b64url_encode(mac, PAY_TOKEN_SIG_LEN, tok + tlen + 1);

    return tok;
}


/* Returns the key the header names, or NULL. */
static const pay_token_key_t *
pay_token_header_key(const char *seg, size_t len,
    const pay_token_key_t *keys, size_t nkeys)
{
    size_t                  i;
    json_t                 *hdr, *v;
    const char             *name, *kid;
    const pay_token_key_t  *found;

    hdr = pay_jose_segment_json(seg, len, PAY_TOKEN_MAX_LEN);
    if (hdr == NULL) {
        return NULL;
    }

    found = NULL;
    kid = NULL;

    json_object_foreach(hdr, name, v) {
        if (strcmp(name, "alg") == 0) {
            /* Exactly the pinned algorithm; "none", "hs256", HS512 and
             * the asymmetric ones never reach libjwt. */
            if (!json_is_string(v) || strcmp(json_string_value(v), "HS256"))
            {
                goto done;
            }

        } else if (strcmp(name, "typ") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "JWT")) {
                goto done;
            }

        } else if (strcmp(name, "kid") == 0) {
            if (!json_is_string(v)
                || strlen(json_string_value(v)) != json_string_length(v)
                || !pay_token_kid_valid(json_string_value(v)))
            {
                goto done;
            }

            kid = json_string_value(v);

        } else {
            goto done;
        }
    }

    if (kid == NULL || json_object_get(hdr, "alg") == NULL) {
        goto done;
    }

    for (i = 0; i < nkeys; i++) {
        if (strcmp(keys[i].kid, kid) == 0) {
            /* The first key with that kid decides; a short or empty one
             * is a refusal, never a fallback to another key. */
            if (pay_token_key_usable(&keys[i])) {
                found = &keys[i];
            }

            break;
        }
    }

done:

    json_decref(hdr);

    return found;
}


static int
pay_token_claim_str(json_t *claims, const char *name, const char **out)
{
    json_t  *v;

    v = json_object_get(claims, name);

    /* An embedded NUL would make the C string differ from the JSON one. */
    if (!json_is_string(v)
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return -1;
    }

    *out = json_string_value(v);

    return 0;
}


static int
pay_token_claims_parse(const char *seg, size_t len, int64_t now,
    pay_token_claims_t *claims)
{
    int          rc, use;
    json_t      *obj, *exp;
    const char  *m, *c, *u;
    json_int_t   e;

    obj = pay_jose_segment_json(seg, len, PAY_TOKEN_MAX_LEN);
    if (obj == NULL) {
        return -1;
    }

    rc = -1;

    /* Only the four claims this gateway writes: a token carrying others
     * was not made by pay_token_sign. */
    if (json_object_size(obj) != 4
        || pay_token_claim_str(obj, "m", &m) != 0
        || pay_token_claim_str(obj, "c", &c) != 0
        || pay_token_claim_str(obj, "u", &u) != 0)
    {
        goto done;
    }

    exp = json_object_get(obj, "exp");
    if (!json_is_integer(exp)) {
        goto done;
    }

    e = json_integer_value(exp);

    /* No leeway: the token lives exactly as long as the PSP session. */
    if (e <= 0 || now >= e) {
        goto done;
    }

    if (!pay_token_merchant_valid(m) || !pay_token_checkout_valid(c)) {
        goto done;
    }

    for (use = PAY_TOKEN_PAY; use <= PAY_TOKEN_STATUS; use++) {
        if (strcmp(u, pay_token_uses[use]) == 0) {
            break;
        }
    }

    if (use > PAY_TOKEN_STATUS) {
        goto done;
    }

    strcpy(claims->merchant, m);
    strcpy(claims->checkout, c);
    claims->use = (pay_token_use_e) use;
    claims->exp = e;
    rc = 0;

done:

    json_decref(obj);

    return rc;
}


int
pay_token_verify(const pay_token_key_t *keys, size_t nkeys,
    const char *token, size_t len, int64_t now, pay_token_claims_t *claims)
{
    char                    copy[PAY_TOKEN_MAX_LEN + 1];
    unsigned char           sig[PAY_TOKEN_SIG_LEN + 3];
    unsigned char           mac[EVP_MAX_MD_SIZE];
    unsigned int            maclen;
    size_t                  i, dot1, dot2, ndots;
    jwt_t                  *jwt;
    jwt_alg_t               alg;
    const pay_token_key_t  *key;
    pay_token_claims_t      out;

    if (claims != NULL) {
        memset(claims, 0, sizeof(*claims));
    }

    if (keys == NULL || nkeys == 0 || token == NULL || claims == NULL
        || len == 0 || len > PAY_TOKEN_MAX_LEN)
    {
        return -1;
    }

    /* header "." claims "." signature, each non-empty base64url. */
    ndots = 0;
    dot1 = dot2 = 0;

    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (++ndots == 1) {
                dot1 = i;
            } else {
                dot2 = i;
            }

        } else if (pay_b64url_value((unsigned char) token[i]) < 0) {
            return -1;
        }
    }

    if (ndots != 2 || dot1 == 0 || dot2 == dot1 + 1 || dot2 == len - 1) {
        return -1;
    }

    key = pay_token_header_key(token, dot1, keys, nkeys);
    if (key == NULL) {
        return -1;
    }

    /* Our own HMAC, compared in constant time, before libjwt sees the
     * token: 43 characters decode to exactly 32 bytes. */
    if (len - dot2 - 1 != 43
        || pay_b64url_decode(token + dot2 + 1, len - dot2 - 1, sig)
           != PAY_TOKEN_SIG_LEN)
    {
        return -1;
    }

    if (HMAC(EVP_sha256(), key->key, (int) key->len,
             (const unsigned char *) token, dot2, mac, &maclen) == NULL
        || maclen != PAY_TOKEN_SIG_LEN
        || CRYPTO_memcmp(mac, sig, PAY_TOKEN_SIG_LEN) != 0)
    {
        return -1;
    }

    memcpy(copy, token, len);
    copy[len] = '\0';

    jwt = NULL;

    if (jwt_decode(&jwt, copy, key->key, (int) key->len) != 0
        || jwt == NULL)
    {
        if (jwt != NULL) {
            jwt_free(jwt);
        }

        return -1;
    }

    alg = jwt_get_alg(jwt);
    jwt_free(jwt);

    if (alg != JWT_ALG_HS256) {
        return -1;
    }

    memset(&out, 0, sizeof(out));

    if (pay_token_claims_parse(token + dot1 + 1, dot2 - dot1 - 1, now, &out)
        != 0)
    {
        return -1;
    }

    *claims = out;

    return 0;
}


int
pay_token_verify_for(const pay_token_key_t *keys, size_t nkeys,
    const char *token, size_t len, int64_t now, pay_token_use_e use,
    const char *checkout, pay_token_claims_t *claims)
{
    pay_token_claims_t  out;

    if (claims != NULL) {
        memset(claims, 0, sizeof(*claims));
    }

    if (checkout == NULL || claims == NULL
        || pay_token_verify(keys, nkeys, token, len, now, &out) != 0
        || out.use != use || strcmp(out.checkout, checkout) != 0)
    {
        return -1;
    }

    *claims = out;

    return 0;
}
