/*
 * ngx_payments core: base64url and JOSE segments (jose.h).
 */

#include <stdint.h>
#include <stdlib.h>

#include <payments/jose.h>


static const char  pay_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
pay_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}


void
pay_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t    i;
    uint32_t  v;

    for (i = 0; i + 3 <= n; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        *out++ = pay_b64url_alphabet[v >> 18 & 63];
        *out++ = pay_b64url_alphabet[v >> 12 & 63];
        *out++ = pay_b64url_alphabet[v >> 6 & 63];
        *out++ = pay_b64url_alphabet[v & 63];
    }

    if (n - i == 1) {
        v = (uint32_t) in[i] << 16;
        *out++ = pay_b64url_alphabet[v >> 18 & 63];
        *out++ = pay_b64url_alphabet[v >> 12 & 63];

    } else if (n - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        *out++ = pay_b64url_alphabet[v >> 18 & 63];
        *out++ = pay_b64url_alphabet[v >> 12 & 63];
        *out++ = pay_b64url_alphabet[v >> 6 & 63];
    }

    *out = '\0';
}


int
pay_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


ssize_t
pay_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    size_t    i, n;
    uint32_t  acc;
    int       bits, v;

    if (len % 4 == 1) {
        return -1;
    }

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        v = pay_b64url_value((unsigned char) in[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    if (acc != 0) {
        return -1;
    }

    return (ssize_t) n;
}


json_t *
pay_jose_segment_json(const char *seg, size_t len, size_t max)
{
    unsigned char  *buf;
    ssize_t         n;
    json_t         *obj;

    if (len == 0 || len > max) {
        return NULL;
    }

    buf = malloc(len);
    if (buf == NULL) {
        return NULL;
    }

    n = pay_b64url_decode(seg, len, buf);
    obj = NULL;

    if (n > 0) {
        obj = json_loadb((const char *) buf, (size_t) n,
                         JSON_REJECT_DUPLICATES, NULL);
        if (obj != NULL && !json_is_object(obj)) {
            json_decref(obj);
            obj = NULL;
        }
    }

    free(buf);

    return obj;
}
