/*
 * ngx_payments core: the pieces of JOSE (RFC 7515) that the gateway's own
 * pay tokens and the generic dialect's webhook JWTs share.  No I/O.
 */
#ifndef PAYMENTS_JOSE_H
#define PAYMENTS_JOSE_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

/* The length of n bytes in base64url without padding. */
size_t pay_b64url_len(size_t n);

/* n bytes in base64url without padding, NUL-terminated: out must hold
 * pay_b64url_len(n) + 1 bytes. */
void pay_b64url_encode(const unsigned char *in, size_t n, char *out);

/* The 6-bit value of a base64url character, or -1. */
int pay_b64url_value(unsigned char c);

/*
 * Strict base64url without padding: every character from the alphabet, a
 * length that is not 1 mod 4, and zero unused bits in the last character,
 * so that each byte string has exactly one accepted spelling.  out must
 * hold len * 3 / 4 bytes.  Returns the decoded length or -1.
 */
ssize_t pay_b64url_decode(const char *in, size_t len, unsigned char *out);

/*
 * One base64url segment (1..max characters) decoded into a JSON object,
 * duplicate keys refused.  Returns a new reference or NULL.
 */
json_t *pay_jose_segment_json(const char *seg, size_t len, size_t max);

#endif
