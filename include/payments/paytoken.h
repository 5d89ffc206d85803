/*
 * ngx_payments core: gateway-signed browser tokens (pay links, PSP return
 * links, the pending page's status polls), as JWT HS256: signed here in
 * the bytes libjwt 1.10 writes, verified by libjwt among other checks.
 *
 * libjwt 1.10 checks neither exp nor the algorithm against the key
 * (PSP_FACTS.md), so verification here: decodes the header itself, picks
 * the key by kid from the given key set only, requires alg HS256, never
 * passes an empty key, checks jwt_get_alg() after decoding, then checks
 * exp (no leeway: the token's lifetime is the PSP session's), the use, the
 * merchant and checkout claims.
 */
#ifndef PAYMENTS_PAYTOKEN_H
#define PAYMENTS_PAYTOKEN_H

#include <stddef.h>
#include <stdint.h>

#define PAY_TOKEN_KEY_MIN  32
#define PAY_TOKEN_MAX_LEN  2048     /* longer tokens are refused unread */

typedef enum {
    PAY_TOKEN_PAY = 1,          /* "pay":     GET /v1/checkouts/{id}/pay     */
    PAY_TOKEN_RETURN_SUCCESS,   /* "ok":      GET /v1/return/{psp}/{id}      */
    PAY_TOKEN_RETURN_CANCEL,    /* "cancel":  GET /v1/return/{psp}/{id}      */
    PAY_TOKEN_STATUS            /* "status":  GET /v1/checkouts/{id}/status  */
} pay_token_use_e;

typedef struct {
    char                  kid[33];          /* [A-Za-z0-9_-]{1,32} */
    const unsigned char  *key;              /* >= PAY_TOKEN_KEY_MIN bytes */
    size_t                len;
} pay_token_key_t;

typedef struct {
    char             merchant[64];
    char             checkout[41];
    pay_token_use_e  use;
    int64_t          exp;
} pay_token_claims_t;

/* Signs with key (its kid goes in the header).  Returns a malloc'd compact
 * JWT, or NULL. */
char *pay_token_sign(const pay_token_key_t *key, const char *merchant,
    const char *checkout, pay_token_use_e use, int64_t exp);

/*
 * Verifies token (not NUL-terminated) against the key set at time now.
 * Returns 0 and fills *claims, or -1 (malformed, unknown kid, wrong alg,
 * bad signature, expired, missing claims).  Callers check use and checkout.
 */
int pay_token_verify(const pay_token_key_t *keys, size_t nkeys,
    const char *token, size_t len, int64_t now, pay_token_claims_t *claims);

/*
 * pay_token_verify, then requires the claims' use and checkout to be the
 * given ones (the merchant comes from the token).  Returns 0 and fills
 * *claims, or -1.
 */
int pay_token_verify_for(const pay_token_key_t *keys, size_t nkeys,
    const char *token, size_t len, int64_t now, pay_token_use_e use,
    const char *checkout, pay_token_claims_t *claims);

#endif
