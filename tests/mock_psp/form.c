/*
 * Mock PSP: application/x-www-form-urlencoded bodies, decoded strictly.
 * A bad escape, a NUL, a raw control character or invalid UTF-8 is an
 * error rather than something silently repaired: the mock exists to catch
 * a gateway that encodes its parameters wrongly.
 */

#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"


static int mock_hex(int ch);
static int mock_utf8_valid(const unsigned char *s, size_t len);
static char *mock_form_decode(const char *s, size_t len, char *err,
    size_t errlen);


static int
mock_hex(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }

    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }

    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }

    return -1;
}


/* Well-formed UTF-8: no overlong forms, no surrogates, at most U+10FFFF. */
static int
mock_utf8_valid(const unsigned char *s, size_t len)
{
    size_t    i, k, n;
    uint32_t  cp, min;

    for (i = 0; i < len; i += n) {
        if (s[i] < 0x80) {
            n = 1;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = s[i] & 0x1f;
            min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = s[i] & 0x0f;
            min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = s[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


/* Returns a malloc'd NUL-terminated string, or NULL with err set. */
static char *
mock_form_decode(const char *s, size_t len, char *err, size_t errlen)
{
    int     hi, lo;
    char   *out;
    size_t  i, n;

    out = malloc(len + 1);
    if (out == NULL) {
        snprintf(err, errlen, "Out of memory.");
        return NULL;
    }

    n = 0;

    for (i = 0; i < len; i++) {

        if (s[i] == '+') {
            out[n++] = ' ';
            continue;
        }

        if (s[i] == '%') {
            hi = -1;
            lo = -1;
            if (len - i >= 3) {
                hi = mock_hex((unsigned char) s[i + 1]);
                lo = mock_hex((unsigned char) s[i + 2]);
            }

            if (hi < 0 || lo < 0) {
                snprintf(err, errlen,
                         "Invalid percent-encoding in the request body.");
                free(out);
                return NULL;
            }

            if (hi == 0 && lo == 0) {
                snprintf(err, errlen,
                         "The request body contains a NUL byte (%%00).");
                free(out);
                return NULL;
            }

            out[n++] = (char) (hi * 16 + lo);
            i += 2;
            continue;
        }

        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(err, errlen,
                     "The request body contains a raw control character.");
            free(out);
            return NULL;
        }

        out[n++] = s[i];
    }

    out[n] = '\0';

    if (!mock_utf8_valid((unsigned char *) out, n)) {
        snprintf(err, errlen, "The request body is not valid UTF-8.");
        free(out);
        return NULL;
    }

    return out;
}


/*
 * Splits "k=v&k=v".  Empty segments ("a=1&&b=2", a trailing '&') are
 * skipped, as Stripe's own parser does; a segment without '=' or with an
 * empty name is an error.  Returns 0, or -1 with a message in err.
 */
int
mock_form_parse(const char *body, size_t len, mock_form_t *form, char *err,
    size_t errlen)
{
    size_t             n, seg;
    const char        *p, *end, *amp, *eq;
    mock_form_pair_t  *pair;

    form->pairs = NULL;
    form->n = 0;

    /* one pair per '&', plus one */
    n = 1;
    for (p = body; p < body + len; p++) {
        n += (*p == '&');
    }

    form->pairs = calloc(n, sizeof(mock_form_pair_t));
    if (form->pairs == NULL) {
        snprintf(err, errlen, "Out of memory.");
        return -1;
    }

    end = body + len;
    p = body;

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        seg = (size_t) (amp - p);

        if (seg != 0) {
            eq = memchr(p, '=', seg);
            if (eq == NULL || eq == p) {
                /* not quoted back: the bytes may not be UTF-8 */
                snprintf(err, errlen, "Malformed request body: a parameter "
                         "without '=' or without a name.");
                goto failed;
            }

            pair = &form->pairs[form->n];

            pair->key = mock_form_decode(p, (size_t) (eq - p), err, errlen);
            if (pair->key == NULL) {
                goto failed;
            }

            pair->value = mock_form_decode(eq + 1, (size_t) (amp - eq - 1),
                                           err, errlen);
            if (pair->value == NULL) {
                free(pair->key);
                goto failed;
            }

            form->n++;
        }

        p = (amp == end) ? end : amp + 1;
    }

    return 0;

failed:

    mock_form_free(form);
    return -1;
}


void
mock_form_free(mock_form_t *form)
{
    size_t  i;

    for (i = 0; i < form->n; i++) {
        free(form->pairs[i].key);
        free(form->pairs[i].value);
    }

    free(form->pairs);
    form->pairs = NULL;
    form->n = 0;
}
