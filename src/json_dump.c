/*
 * ngx_payments core: JSON written out as jansson writes it (json_dump.h).
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payments/json_dump.h>


/*
 * The length of the UTF-8 sequence s (avail bytes left) starts, when it is
 * one jansson takes, or 0.
 */
static size_t
pay_utf8_seq(const unsigned char *s, size_t avail)
{
    size_t    n, i;
    uint32_t  cp, min;

    if (s[0] < 0x80) {
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2; cp = s[0] & 0x1f; min = 0x80;

    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3; cp = s[0] & 0x0f; min = 0x800;

    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4; cp = s[0] & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (n > avail) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = cp << 6 | (s[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


void
pay_json_buf_add(pay_json_buf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 512;

        while (cap < b->len + n + 1) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}


void
pay_json_buf_string(pay_json_buf_t *b, const char *s, size_t n)
{
    static const char     hex[] = "0123456789ABCDEF";
    char                  esc[6];
    size_t                i, run, k;
    unsigned char         c;

    pay_json_buf_add(b, "\"", 1);

    for (i = 0; i < n; /* void */ ) {
        for (run = i; run < n; run += k) {
            c = (unsigned char) s[run];

            if (c < 0x20 || c == '"' || c == '\\') {
                break;
            }

            k = c < 0x80 ? 1 : pay_utf8_seq((const unsigned char *) s + run,
                                            n - run);
            if (k == 0) {
                b->failed = 1;
                return;
            }
        }

        pay_json_buf_add(b, s + i, run - i);

        if (run == n) {
            break;
        }

        c = (unsigned char) s[run];
        esc[0] = '\\';

        switch (c) {
        case '"':  esc[1] = '"';  k = 2; break;
        case '\\': esc[1] = '\\'; k = 2; break;
        case '\b': esc[1] = 'b';  k = 2; break;
        case '\f': esc[1] = 'f';  k = 2; break;
        case '\n': esc[1] = 'n';  k = 2; break;
        case '\r': esc[1] = 'r';  k = 2; break;
        case '\t': esc[1] = 't';  k = 2; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0f];
            k = 6;
        }

        pay_json_buf_add(b, esc, k);
        i = run + 1;
    }

    pay_json_buf_add(b, "\"", 1);
}


/* 0, or -1 for a value this writer leaves to jansson (a real, or one
 * nested deeper than jansson reads: a value holding itself ends here) */
static int
pay_jd_value(pay_json_buf_t *b, const json_t *v, int depth)
{
    char         num[32];
    int          n;
    size_t       i, klen;
    const char  *key;
    json_t      *m;
    void        *it;

    /* deeper than jansson reads (JSON_PARSER_MAX_DEPTH): left to it */
    if (depth > JSON_PARSER_MAX_DEPTH) {
        return -1;
    }

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        pay_json_buf_add(b, "{", 1);

        i = 0;
        for (it = json_object_iter((json_t *) v); it != NULL;
             it = json_object_iter_next((json_t *) v, it))
        {
            key = json_object_iter_key(it);
            klen = json_object_iter_key_len(it);
            m = json_object_iter_value(it);

            if (i++ > 0) {
                pay_json_buf_add(b, ",", 1);
            }

            pay_json_buf_string(b, key, klen);
            pay_json_buf_add(b, ":", 1);

            if (pay_jd_value(b, m, depth + 1) != 0) {
                return -1;
            }
        }

        pay_json_buf_add(b, "}", 1);
        return 0;

    case JSON_ARRAY:
        pay_json_buf_add(b, "[", 1);

        for (i = 0; i < json_array_size(v); i++) {
            if (i > 0) {
                pay_json_buf_add(b, ",", 1);
            }

            if (pay_jd_value(b, json_array_get(v, i), depth + 1) != 0) {
                return -1;
            }
        }

        pay_json_buf_add(b, "]", 1);
        return 0;

    case JSON_STRING:
        pay_json_buf_string(b, json_string_value(v), json_string_length(v));
        return 0;

    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        if (n < 0 || (size_t) n >= sizeof(num)) {
            return -1;
        }

        pay_json_buf_add(b, num, (size_t) n);
        return 0;

    case JSON_TRUE:
        pay_json_buf_add(b, "true", 4);
        return 0;

    case JSON_FALSE:
        pay_json_buf_add(b, "false", 5);
        return 0;

    case JSON_NULL:
        pay_json_buf_add(b, "null", 4);
        return 0;

    default:
        return -1;
    }
}


char *
pay_json_dumps(const json_t *v)
{
    pay_json_buf_t  b;

    if (v == NULL || !(json_is_object(v) || json_is_array(v))) {
        return NULL;
    }

    memset(&b, 0, sizeof(b));

    if (pay_jd_value(&b, v, 0) != 0) {
        free(b.data);
        return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}
