/*
 * libFuzzer: pay_generic_verify.  The first byte picks a mode:
 *   0: the rest is "token\nbody", as a PSP (or anyone) sends it;
 *   1: the rest is a claims segment's bytes, signed ES256 here with the
 *      configured key, so that claim checking sees arbitrary JSON;
 *   2: the rest is "header\nclaims", both signed ES256 here, so that the
 *      header checks see arbitrary JSON under a valid signature;
 *   3: as 1, signed RS256.
 * Keys are made once at start-up (the harness may hold state; the core
 * does not).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <payments/webhook.h>
#include "../b64url.h"


#define FJ_NOW  1795000000LL
#define FJ_BODY "{\"event_id\":\"e\"}"


static EVP_PKEY       *fj_ec, *fj_rsa;
static pay_jwt_key_t   fj_keys[2];


static char *
fj_pub_pem(EVP_PKEY *pkey, size_t *len)
{
    BIO   *bio;
    char  *data, *s;
    long   n;

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
        abort();
    }

    n = BIO_get_mem_data(bio, &data);
    s = malloc((size_t) n + 1);
    if (s == NULL) {
        abort();
    }

    memcpy(s, data, (size_t) n);
    s[n] = '\0';
    *len = (size_t) n;
    BIO_free(bio);

    return s;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    fj_ec = EVP_EC_gen("P-256");
    fj_rsa = EVP_RSA_gen(2048);
    if (fj_ec == NULL || fj_rsa == NULL) {
        abort();
    }

    fj_keys[0].kid = "ec1";
    fj_keys[0].alg = PAY_JWT_ES256;
    fj_keys[0].pem = fj_pub_pem(fj_ec, &fj_keys[0].pem_len);
    fj_keys[1].kid = "rsa1";
    fj_keys[1].alg = PAY_JWT_RS256;
    fj_keys[1].pem = fj_pub_pem(fj_rsa, &fj_keys[1].pem_len);

    return 0;
}


/* "b64(hdr).b64(claims).b64(sig)" into a malloc'd buffer, or NULL. */
static char *
fj_sign(int rsa, const unsigned char *hdr, size_t hlen,
    const unsigned char *claims, size_t clen, size_t *len)
{
    char                 *tok;
    size_t                n, siglen;
    EVP_MD_CTX           *md;
    ECDSA_SIG            *es;
    const BIGNUM         *r, *s;
    unsigned char         sig[512], raw[64];
    const unsigned char  *p;

    tok = malloc((hlen + clen) * 4 / 3 + 16 + 700);
    if (tok == NULL) {
        return NULL;
    }

    n = test_b64url(hdr, hlen, tok);
    tok[n++] = '.';
    n += test_b64url(claims, clen, tok + n);

    md = EVP_MD_CTX_new();
    siglen = sizeof(sig);

    if (md == NULL
        || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
                              rsa ? fj_rsa : fj_ec) != 1
        || EVP_DigestSign(md, sig, &siglen, (unsigned char *) tok, n) != 1)
    {
        abort();
    }

    EVP_MD_CTX_free(md);
    tok[n++] = '.';

    if (rsa) {
        n += test_b64url(sig, siglen, tok + n);

    } else {
        p = sig;
        es = d2i_ECDSA_SIG(NULL, &p, (long) siglen);
        if (es == NULL) {
            abort();
        }

        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, raw, 32);
        BN_bn2binpad(s, raw + 32, 32);
        ECDSA_SIG_free(es);
        n += test_b64url(raw, 64, tok + n);
    }

    *len = n;

    return tok;
}


static void
fj_check(pay_err_e rc)
{
    if (rc != PAY_ERR_NONE && rc != PAY_ERR_BAD_SIGNATURE
        && rc != PAY_ERR_STALE_WEBHOOK)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char  es_hdr[] = "{\"alg\":\"ES256\",\"kid\":\"ec1\"}";
    static const char  rs_hdr[] = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";

    char           *tok;
    size_t          len, hlen;
    const uint8_t  *nl;

    if (size == 0 || size > 4096) {
        return 0;
    }

    data++;
    size--;

    switch (data[-1] & 3) {

    case 0:
        nl = memchr(data, '\n', size);
        hlen = nl ? (size_t) (nl - data) : size;
        fj_check(pay_generic_verify((const char *) data, hlen,
                                    nl ? (const char *) nl + 1 : "",
                                    nl ? size - hlen - 1 : 0, fj_keys, 2,
                                    "iss", "aud", FJ_NOW));
        return 0;

    case 1:
    case 3:
        tok = (data[-1] & 3) == 1
              ? fj_sign(0, (const unsigned char *) es_hdr,
                        sizeof(es_hdr) - 1, data, size, &len)
              : fj_sign(1, (const unsigned char *) rs_hdr,
                        sizeof(rs_hdr) - 1, data, size, &len);
        break;

    default:
        nl = memchr(data, '\n', size);
        if (nl == NULL) {
            return 0;
        }

        hlen = (size_t) (nl - data);
        tok = fj_sign(0, data, hlen, nl + 1, size - hlen - 1, &len);
        break;
    }

    if (tok == NULL) {
        return 0;
    }

    fj_check(pay_generic_verify(tok, len, FJ_BODY, sizeof(FJ_BODY) - 1,
                                fj_keys, 2, NULL, NULL, FJ_NOW));
    fj_check(pay_generic_verify(tok, len, FJ_BODY, sizeof(FJ_BODY) - 1,
                                fj_keys, 2, "iss", "aud", FJ_NOW));
    free(tok);

    return 0;
}
