/*
 * The e2e harness: links and gateway tokens (JWTs), the secrets the
 * gateway seals at rest, idempotency fingerprints and PSP signatures.
 */
#ifndef E2E_HARNESS_TOKENS_H
#define E2E_HARNESS_TOKENS_H

#include <stddef.h>
#include <jansson.h>
#include <payments/seal.h>


/* -- links and gateway tokens ---------------------------------------------- */

/* Percent-encodes s (RFC 3986 unreserved characters kept). */
char    *url_escape(const char *s);

/* The value of a query parameter (not decoded), or NULL. */
char    *url_param(const char *url, const char *name);

/* The path and query of an absolute URL ("https://a.b:1/x?y" -> "/x?y"). */
const char *url_path(const char *url);

/* pay_url (on PAY_TEST_PUBLIC_ORIGIN) as a URL on the test gateway. */
char    *gw_url_for(const char *public_url);

char    *b64url_encode(const unsigned char *p, size_t len);
unsigned char *b64url_decode(const char *s, size_t len, size_t *out);

/* The claims of a compact JWT (not verified). */
json_t  *jwt_claims(const char *token);

/* The JWT with the same header and these claims, signed HS256 with key. */
char    *jwt_resign(const char *token, const json_t *claims,
    const unsigned char *key, size_t keylen);

/* 1 if key reproduces the token's HS256 signature over its own bytes. */
int      jwt_signature_matches(const char *token, const unsigned char *key,
    size_t keylen);

/* The gateway's pay-token key (PAY_TEST_PAYTOKEN_KEY), as nginx reads it. */
unsigned char *paytoken_key(size_t *len);


/* -- secrets at rest (payments_encryption_key, doc/NOTIFICATIONS.md) ------- */

/* The gateway's keyring (PAY_TEST_ENCRYPTION_KEY: two keys), parsed by the
 * core as nginx parses it; keys[0] seals. */
const pay_keyring_t *test_keyring(void);

/* A stored checkouts.psp_token of (merchant, checkout) opened as the gateway
 * opens it: a "v1." value unsealed (associated data "<merchant>:<checkout>"),
 * a legacy plaintext one as it is.  NULL for NULL, or when it does not open. */
char    *psp_token_open(const char *merchant, const char *checkout,
    const char *stored);

/* The PSP's token of a checkout, read from checkouts.psp_token and opened
 * (fails the test when a sealed value does not open); NULL when none. */
char    *db_psp_token(const char *merchant, const char *checkout);

/* value sealed under key `key` of the file (0 or 1) with associated data ad
 * (malloc'd) */
char    *test_seal(size_t key, const char *ad, const char *value);

/* the blind index psp_tokens holds for token of psp, under key `key` */
char    *test_blind_index(size_t key, const char *psp, const char *token);


/* -- idempotency ------------------------------------------------------------ */

/* SHA-256 hex of method "\n" path "\n" canonical JSON of body (API.md). */
void     fingerprint(const char *method, const char *path, const char *body,
    char hex[65]);

/* "Stripe-Signature: t=T,v1=<hex>": body signed at t under secret (NULL:
 * the run's webhook secret), as Stripe signs its events. */
char    *stripe_signature(const char *secret, long t, const char *body);

/* One Adyen NotificationRequestItem, HMAC-signed with the run's key
 * (conf/adyen.hmac) as Adyen signs it (pspReference, originalReference,
 * merchantAccountCode, merchantReference, value, currency, eventCode,
 * success); its amount sent as value + tamper (0: as signed). */
typedef struct {
    const char  *psp_ref;
    const char  *original;      /* originalReference; NULL: "" */
    const char  *account;       /* merchantAccountCode; NULL: the run's */
    const char  *merchant_ref;
    long         amount;
    const char  *currency;
    const char  *event_code;
    const char  *success;
} adyen_notification_t;

char    *adyen_notification_item(const adyen_notification_t *it, long tamper);

/* A pspReference no other run or call of this one makes (16 digits). */
char    *adyen_psp_ref(void);

/* "Payments-Verification: <JWT>": the generic dialect's signature of body
 * (of for_body instead when not NULL), ES256 with the run's key
 * (conf/generic_jwt.key) under kid, issued at iat. */
char    *generic_verification(const char *body, long iat, const char *kid,
    const char *for_body);


#endif
