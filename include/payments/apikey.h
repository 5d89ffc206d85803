/*
 * ngx_payments core: merchant API keys.
 *
 * A key is "mk_" mode "_" key_id "_" secret:
 *   mode    "test" | "live"
 *   key_id  12 characters [A-Za-z0-9]   (public: the database looks it up)
 *   secret  43 characters base64url      (32 random bytes)
 * The database stores only the key id and SHA-256 of the whole key; the hash
 * is compared in constant time in C.
 */
#ifndef PAYMENTS_APIKEY_H
#define PAYMENTS_APIKEY_H

#include <stddef.h>

#define PAY_APIKEY_ID_LEN  12

typedef struct {
    char  mode[5];                          /* "test" | "live" */
    char  key_id[PAY_APIKEY_ID_LEN + 1];
} pay_apikey_t;

/* Extracts the token from an Authorization value "Bearer <token>" (scheme
 * case-insensitive, one or more spaces).  Returns 0 or -1. */
int pay_bearer_token(const char *hdr, size_t len, const char **tok,
    size_t *toklen);

/* Parses a key's public parts.  Returns 0 or -1 (malformed). */
int pay_apikey_parse(const char *key, size_t len, pay_apikey_t *k);

/* Lower-case hex SHA-256 of the whole key; hex holds 65 bytes. */
void pay_apikey_hash(const char *key, size_t len, char hex[65]);

/* Constant-time equality of two 64-char hex hashes (NUL-terminated).
 * Returns 1 if equal. */
int pay_hash_equal(const char *a, const char *b);

#endif
