/*
 * Tests only: base64url without padding (RFC 7515), for the fuzzers, unit
 * tests and the mock PSP that make JWTs of their own.  Writes 4 characters
 * per 3 bytes (fewer for the tail) to out, no NUL; returns how many.
 */
#ifndef PAY_TESTS_B64URL_H
#define PAY_TESTS_B64URL_H

#include <stddef.h>
#include <stdint.h>

static inline size_t
test_b64url(const unsigned char *in, size_t len, char *out)
{
    static const char  a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t    i, n;
    uint32_t  v;

    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 63];
        out[n++] = a[(v >> 6) & 63];
        out[n++] = a[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) in[i] << 16;
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 63];
        out[n++] = a[(v >> 6) & 63];
    }

    return n;
}

#endif
