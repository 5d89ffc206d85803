/*
 * ngx_payments core: Idempotency-Key header and request fingerprints.
 */
#ifndef PAYMENTS_IDEMPOTENCY_H
#define PAYMENTS_IDEMPOTENCY_H

#include <stddef.h>
#include <jansson.h>

#define PAY_IDEM_KEY_MAX  255

/*
 * Parses an Idempotency-Key value: an sf-string ("k", with \" and \\
 * escapes) or a bare token; both mean the same key.  The key is 1..255
 * visible ASCII characters (0x21-0x7e; inside a quoted string also space).
 * Writes the key (NUL-terminated) into out[PAY_IDEM_KEY_MAX + 1].
 * Returns 0, or -1 for a malformed value.
 */
int pay_idem_key_parse(const char *hdr, size_t len, char *out, size_t *outlen);

/*
 * Canonical JSON: keys sorted, no insignificant whitespace, jansson's
 * escaping.  Returns a malloc'd string or NULL.
 */
char *pay_json_canonical(const json_t *root);

/*
 * Fingerprint = lower-case hex SHA-256 over method "\n" path "\n"
 * canonical JSON of the body.  hex must hold 65 bytes.  Returns 0 or -1.
 */
int pay_fingerprint(const char *method, const char *path, const json_t *body,
    char hex[65]);

#endif
