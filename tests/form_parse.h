/*
 * Tests: an application/x-www-form-urlencoded body read back as Stripe
 * reads it, written independently of the gateway's form writer
 * (src/psp.c) so that the two can be checked against each other (the unit
 * tests in tests/unit/test_form.c, the fuzz harness
 * tests/fuzz/fuzz_form.c).
 *
 * A body is "name=value" pairs joined by '&'.  Name and value are each
 * percent-decoded whole ('+' is a space), and only then is the decoded
 * name split into its path: the text before the first '[', then every
 * "[segment]" after it, which is how Rack-style parsers, Stripe's among
 * them, read "metadata[key]" (so "%5B" is a bracket as much as "[" is).
 * A name that does not split exactly into segments (an unclosed bracket,
 * text between "]" and "[", an empty segment) is malformed.
 *
 * Everything is static: the header is included by one file per binary.
 */
#ifndef PAY_TESTS_FORM_PARSE_H
#define PAY_TESTS_FORM_PARSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define FP_SEGMENTS_MAX  8

typedef struct {
    char    *seg[FP_SEGMENTS_MAX];   /* decoded name, split */
    size_t   nseg;
    char    *value;                  /* decoded; may hold any byte but NUL */
    size_t   value_len;
} fp_field_t;

typedef struct {
    fp_field_t  *f;
    size_t       n;
} fp_form_t;


static int
fp_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


/* s[0..len) percent-decoded into a new string; NULL on a bad escape or
 * an escaped NUL (which no C string the writer was given can hold) */
static char *
fp_decode(const char *s, size_t len, size_t *outlen)
{
    char    *out;
    size_t   i, n;
    int      hi, lo;

    out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }

    for (i = 0, n = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';

        } else if (s[i] == '%') {
            hi = (len - i >= 3) ? fp_hex((unsigned char) s[i + 1]) : -1;
            lo = (len - i >= 3) ? fp_hex((unsigned char) s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }

            out[n++] = (char) (hi * 16 + lo);
            i += 2;

        } else {
            out[n++] = s[i];
        }
    }

    out[n] = '\0';
    if (outlen != NULL) {
        *outlen = n;
    }

    return out;
}


/* a decoded name into its segments: 0, or -1 when malformed */
static int
fp_split(const char *name, fp_field_t *f)
{
    const char  *p, *close;
    size_t       len;

    f->nseg = 0;

    len = strcspn(name, "[]");
    if (len == 0 || name[len] == ']') {
        return -1;
    }

    p = name;

    for ( ;; ) {
        if (f->nseg == FP_SEGMENTS_MAX) {
            return -1;
        }

        f->seg[f->nseg] = strndup(p, len);
        if (f->seg[f->nseg] == NULL) {
            return -1;
        }
        f->nseg++;

        p += len;
        if (f->nseg > 1) {
            p++;                                /* its ']' */
        }

        if (*p == '\0') {
            return 0;
        }

        if (*p != '[') {
            return -1;
        }

        p++;
        close = strchr(p, ']');
        if (close == NULL) {
            return -1;
        }

        len = (size_t) (close - p);
        if (len == 0 || memchr(p, '[', len) != NULL) {
            return -1;
        }
    }
}


static void
fp_free(fp_form_t *form)
{
    size_t  i, k;

    for (i = 0; i < form->n; i++) {
        for (k = 0; k < form->f[i].nseg; k++) {
            free(form->f[i].seg[k]);
        }
        free(form->f[i].value);
    }

    free(form->f);
    form->f = NULL;
    form->n = 0;
}


/* 0, or -1 (malformed; form is left empty) */
static int
fp_parse(const char *body, fp_form_t *form)
{
    char        *name;
    size_t       n, len;
    const char  *p, *amp, *eq, *end;
    fp_field_t  *f;

    form->f = NULL;
    form->n = 0;

    if (body == NULL) {
        return -1;
    }

    len = strlen(body);
    end = body + len;

    for (n = 1, p = body; p < end; p++) {
        n += (*p == '&');
    }

    form->f = calloc(n, sizeof(fp_field_t));
    if (form->f == NULL) {
        return -1;
    }

    for (p = body; p < end; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', (size_t) (amp - p));
        if (eq == NULL) {
            goto bad;
        }

        f = &form->f[form->n++];

        name = fp_decode(p, (size_t) (eq - p), NULL);
        f->value = fp_decode(eq + 1, (size_t) (amp - eq - 1), &f->value_len);

        if (name == NULL || f->value == NULL || fp_split(name, f) != 0) {
            free(name);
            goto bad;
        }

        free(name);

        if (amp == end) {
            break;
        }
    }

    return 0;

bad:

    fp_free(form);
    return -1;
}


/* the value of the one field whose path is a/b[/c]; NULL when none, and
 * *count how many such fields there were */
static const char *
fp_get(const fp_form_t *form, size_t *count, const char *s0, const char *s1,
    const char *s2)
{
    size_t       i, k, want;
    const char  *found;
    const char  *s[3];

    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    want = s2 != NULL ? 3 : s1 != NULL ? 2 : 1;
    found = NULL;
    *count = 0;

    for (i = 0; i < form->n; i++) {
        if (form->f[i].nseg != want) {
            continue;
        }

        for (k = 0; k < want; k++) {
            if (s[k] == NULL || strcmp(form->f[i].seg[k], s[k]) != 0) {
                break;
            }
        }

        if (k == want) {
            (*count)++;
            found = form->f[i].value;
        }
    }

    return found;
}

#endif
