/*
 * libFuzzer: browser tokens, verified against a fixed key set.
 *
 * Byte 0 picks the mode:
 *   even  the rest is a token, verified as it is (the parser and header
 *         checks before the HMAC; only the seeds' tokens can pass);
 *   odd   the rest is "header JSON \n claims JSON", encoded and signed
 *         here with key k1, so that hostile headers and claims reach the
 *         paths behind the signature check (libjwt, the claims parser).
 * A token that verifies must carry sane claims, and for mode odd only
 * header alg HS256 can have passed; its claims signed again must give the
 * bytes libjwt 1.10 writes for them (pay_token_sign writes them itself).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/paytoken.h>
#include "../b64url.h"


#define FZ_NOW  1795000000LL

static const unsigned char  fz_k1[] = "fuzz-key-one-0123456789abcdefghijkl";
static const unsigned char  fz_k2[] = "fuzz-key-two-0123456789abcdefghijkl";
static const unsigned char  fz_short[] = "short";


static void
fz_check_claims(const pay_token_claims_t *c)
{
    size_t  i;

    if (c->use < PAY_TOKEN_PAY || c->use > PAY_TOKEN_STATUS
        || c->exp <= FZ_NOW || c->merchant[0] == '\0'
        || c->checkout[0] == '\0'
        || strlen(c->merchant) >= sizeof(c->merchant)
        || strlen(c->checkout) >= sizeof(c->checkout))
    {
        __builtin_trap();
    }

    for (i = 0; c->checkout[i] != '\0'; i++) {
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_-", c->checkout[i]) == NULL)
        {
            __builtin_trap();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                  *tok, *re;
    size_t                 n, hl, i;
    const uint8_t         *nl;
    unsigned char          mac[EVP_MAX_MD_SIZE];
    unsigned int           maclen;
    pay_token_key_t        keys[3];
    pay_token_claims_t     c;
    json_t                *hdr;

    if (size < 1 || size > 4096) {
        return 0;
    }

    memset(keys, 0, sizeof(keys));
    strcpy(keys[0].kid, "k1");
    keys[0].key = fz_k1;
    keys[0].len = sizeof(fz_k1) - 1;
    strcpy(keys[1].kid, "k2");
    keys[1].key = fz_k2;
    keys[1].len = sizeof(fz_k2) - 1;
    strcpy(keys[2].kid, "short");
    keys[2].key = fz_short;
    keys[2].len = sizeof(fz_short) - 1;

    if ((data[0] & 1) == 0) {
        /* mutations do not forge HMAC-SHA256: only the seeds' valid
         * tokens pass, and then with sane claims */
        if (pay_token_verify(keys, 3, (const char *) data + 1, size - 1,
                             FZ_NOW, &c) == 0)
        {
            fz_check_claims(&c);
        }

        return 0;
    }

    data++;
    size--;

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }

    hl = (size_t) (nl - data);

    tok = malloc(2 * size + 64);
    if (tok == NULL) {
        return 0;
    }

    n = test_b64url(data, hl, tok);
    tok[n++] = '.';
    n += test_b64url(nl + 1, size - hl - 1, tok + n);

    HMAC(EVP_sha256(), fz_k1, sizeof(fz_k1) - 1, (unsigned char *) tok, n,
         mac, &maclen);

    tok[n++] = '.';
    n += test_b64url(mac, maclen, tok + n);
    tok[n] = '\0';

    if (pay_token_verify(keys, 3, tok, n, FZ_NOW, &c) == 0) {
        fz_check_claims(&c);

        /* only a header naming k1 with alg HS256 can pass */
        hdr = json_loadb((const char *) data, hl, 0, NULL);

        if (hdr == NULL
            || !json_is_string(json_object_get(hdr, "alg"))
            || strcmp(json_string_value(json_object_get(hdr, "alg")),
                      "HS256") != 0
            || !json_is_string(json_object_get(hdr, "kid"))
            || strcmp(json_string_value(json_object_get(hdr, "kid")), "k1")
               != 0)
        {
            __builtin_trap();
        }

        json_decref(hdr);

        /* what passed re-signs to a token that passes with equal claims,
         * in libjwt's bytes */
        re = pay_token_sign(&keys[0], c.merchant, c.checkout, c.use, c.exp);
        if (re == NULL) {
            __builtin_trap();
        }

        {
            static const char  *uses[] = { NULL, "pay", "ok", "cancel",
                                           "status" };
            char               *lj = NULL;
            jwt_t              *jwt;

            if (jwt_new(&jwt) != 0) {
                __builtin_trap();
            }
            if (jwt_add_header(jwt, "kid", keys[0].kid) == 0
                && jwt_add_grant(jwt, "m", c.merchant) == 0
                && jwt_add_grant(jwt, "c", c.checkout) == 0
                && jwt_add_grant(jwt, "u", uses[c.use]) == 0
                && jwt_add_grant_int(jwt, "exp", (long) c.exp) == 0
                && jwt_set_alg(jwt, JWT_ALG_HS256, keys[0].key,
                               (int) keys[0].len) == 0)
            {
                lj = jwt_encode_str(jwt);
            }
            jwt_free(jwt);

            if (lj == NULL || strcmp(lj, re) != 0) {
                __builtin_trap();
            }
            free(lj);
        }

        {
            pay_token_claims_t  c2;

            if (pay_token_verify(keys, 3, re, strlen(re), FZ_NOW, &c2) != 0
                || strcmp(c.merchant, c2.merchant) != 0
                || strcmp(c.checkout, c2.checkout) != 0
                || c.use != c2.use || c.exp != c2.exp)
            {
                __builtin_trap();
            }
        }

        free(re);

        /* any one-byte change of the signed token breaks it */
        for (i = 0; i < n; i += 7) {
            tok[i] ^= 0x01;

            if (pay_token_verify(keys, 3, tok, n, FZ_NOW, &c) == 0) {
                __builtin_trap();
            }

            tok[i] ^= 0x01;
        }
    }

    free(tok);

    return 0;
}
