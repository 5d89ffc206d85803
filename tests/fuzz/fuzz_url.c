/*
 * libFuzzer: origins of return URLs.  An accepted URL has an https (or,
 * when allowed, http) scheme, a lower-case ASCII host without a trailing
 * dot, a port in 1..65535, and its formatted origin parses back to an
 * equal origin.  https is never refused where http is allowed but accepted
 * where it is not.  A base (pay_url_base) is an accepted origin, http only
 * on a loopback host.  The same bytes as a request path (pay_path_parse):
 * a route's segments are non-empty views into the path with no '/'.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/url.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *url, buf[300];
    size_t         i, hl, blen;
    int            n, allow_http, r0, r1;
    pay_path_t     path;
    pay_origin_t   o, o1, back, b;

    if (size == 0 || size > 4096) {
        return 0;
    }

    allow_http = data[0] & 1;

    url = malloc(size);
    if (url == NULL) {
        return 0;
    }

    memcpy(url, data + 1, size - 1);
    url[size - 1] = '\0';

    r0 = pay_origin_parse(url, &o, 0);
    r1 = pay_origin_parse(url, &o1, 1);

    /* allowing http can only widen what is accepted */
    if (r0 == 0 && (r1 != 0 || !pay_origin_equal(&o, &o1))) {
        abort();
    }

    if (r0 != 0 && r1 == 0 && strcmp(o1.scheme, "http") != 0) {
        abort();
    }

    if ((allow_http ? r1 : r0) == 0) {
        if (allow_http) {
            o = o1;
        }

        if (strcmp(o.scheme, "https") != 0
            && !(allow_http && strcmp(o.scheme, "http") == 0))
        {
            abort();
        }

        hl = strlen(o.host);
        if (hl == 0 || o.host[hl - 1] == '.' || o.port == 0
            || o.port > 65535)
        {
            abort();
        }

        for (i = 0; i < hl; i++) {
            unsigned char  c = (unsigned char) o.host[i];

            if (c <= 0x20 || c >= 0x7f || (c >= 'A' && c <= 'Z')
                || c == '@' || c == '%' || c == '\\' || c == '/')
            {
                abort();
            }
        }

        n = pay_origin_format(&o, buf, sizeof(buf));
        if (n <= 0 || pay_origin_parse(buf, &back, allow_http) != 0
            || !pay_origin_equal(&o, &back)
            || !pay_origin_allowed(url, &back, 1, allow_http))
        {
            abort();
        }
    }

    if (pay_url_base(url, &b, allow_http, &blen) == 0) {
        if ((allow_http ? r1 : r0) != 0
            || (strcmp(b.scheme, "https") != 0 && !pay_origin_is_loopback(&b))
            || blen == 0 || blen > strlen(url) || url[blen - 1] == '/')
        {
            abort();
        }
    }

    if (pay_path_parse((const char *) data + 1, size - 1, &path) == 0) {
        if (path.route == NULL || path.id_len > size - 1
            || path.psp_len > size - 1)
        {
            abort();
        }

        if (path.id != NULL
            && (path.id_len == 0
                || (const uint8_t *) path.id < data + 1
                || (const uint8_t *) path.id + path.id_len > data + size
                || memchr(path.id, '/', path.id_len) != NULL))
        {
            abort();
        }

        if (path.psp != NULL
            && (path.psp_len == 0
                || (const uint8_t *) path.psp < data + 1
                || (const uint8_t *) path.psp + path.psp_len > data + size
                || memchr(path.psp, '/', path.psp_len) != NULL))
        {
            abort();
        }

    } else if (path.route != NULL) {
        abort();
    }

    free(url);

    return 0;
}
