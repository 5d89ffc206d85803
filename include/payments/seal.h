/*
 * ngx_payments core: secrets at rest.
 *
 * A key file holds one key per line, "<kid> <base64 of 32 bytes>"; blank
 * lines and lines starting with '#' are skipped.  kid is [A-Za-z0-9_-]{1,16}
 * and unique in the file.  The FIRST key seals; every key opens, so a key is
 * rotated by putting the new one first and re-sealing the rows
 * (payments-secrets rekey) before the old line is deleted.
 *
 * A sealed value is text, safe in a PostgreSQL text column:
 *     "v1." kid "." base64url(nonce[12] || ciphertext || tag[16])
 * AES-256-GCM, a random 96-bit nonce per seal, and the caller's associated
 * data (the row's id: a sealed value copied onto another row does not open).
 *
 * A blind index lets the database find a row by a secret value without
 * holding the value: lower-case hex HMAC-SHA256 under a key derived from a
 * keyring key (HMAC-SHA256(key, "ngx_payments blind index v1")) over
 * domain "\0" value.  Look-ups compute it under every key of the ring
 * (pay_blind_index with i = 0 .. n-1), so rows written before a rotation are
 * still found; rekey rewrites them under the first key.
 *
 * Nothing here logs; buffers holding keys or plaintext are the caller's to
 * wipe (pay_keyring_wipe, OPENSSL_cleanse).
 */
#ifndef PAYMENTS_SEAL_H
#define PAYMENTS_SEAL_H

#include <stddef.h>

#define PAY_SEAL_KEY_LEN    32
#define PAY_SEAL_KID_MAX    16
#define PAY_SEAL_KEYS_MAX   8
#define PAY_BLIND_INDEX_LEN 64              /* hex characters */

typedef struct {
    char           kid[PAY_SEAL_KID_MAX + 1];
    unsigned char  key[PAY_SEAL_KEY_LEN];
    /* the blind indexes' key, HMAC-SHA256(key, their label): derived as
     * pay_keyring_parse reads the key, not at every index (a webhook's
     * indexes, one a key of the ring, derived it each time: 40,000
     * instructions, bench/RESULTS.md); pay_blind_index refuses a key
     * without it */
    unsigned char  index_key[32];
    int            index_ready;
} pay_seal_key_t;

typedef struct {
    pay_seal_key_t  keys[PAY_SEAL_KEYS_MAX];    /* keys[0] seals */
    size_t          n;
} pay_keyring_t;

/* Parses a key file's text.  Returns 0, or -1 with *bad_line (1-based; 0
 * when the file holds no key) and nothing of the text in any message. */
int pay_keyring_parse(pay_keyring_t *kr, const char *text, size_t len,
    size_t *bad_line);

void pay_keyring_wipe(pay_keyring_t *kr);

/* The length of the sealed text of len bytes (without the NUL). */
size_t pay_seal_len(size_t len);

/* Seals plain[0 .. len - 1] under keys[0]; writes a NUL-terminated text of
 * pay_seal_len(len) characters.  Returns 0, or -1 (cap too small, no key,
 * no randomness). */
int pay_seal(const pay_keyring_t *kr, const char *ad, const void *plain,
    size_t len, char *out, size_t cap);

/* Opens a sealed text under the key its kid names.  out gets the plaintext
 * and a NUL after it (cap must allow for it).  Returns 0, or -1: malformed,
 * unknown kid, wrong associated data, tampered. */
int pay_unseal(const pay_keyring_t *kr, const char *ad, const char *sealed,
    size_t slen, void *out, size_t cap, size_t *outlen);

/* 1 when sealed names keys[0] (rekey skips it), else 0. */
int pay_seal_is_current(const pay_keyring_t *kr, const char *sealed,
    size_t slen);

/* The blind index of value under keys[i]: PAY_BLIND_INDEX_LEN hex
 * characters and a NUL in out.  Returns 0 or -1 (i out of range). */
int pay_blind_index(const pay_keyring_t *kr, size_t i, const char *domain,
    const char *value, size_t len, char out[PAY_BLIND_INDEX_LEN + 1]);

#endif
