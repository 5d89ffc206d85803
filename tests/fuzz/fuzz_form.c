/*
 * libFuzzer: the form writer (dialect.h pay_form_encode), which writes
 * every application/x-www-form-urlencoded body the gateway sends.  The
 * input is up to 16 fields separated by NUL bytes; each field's first
 * byte picks one of the gateway's own names (or, with bit 7, takes a name
 * from the input) and whether it has a key (bit 6); the rest is
 * [name \x01] [key \x01] value.  The writer must refuse exactly the fields
 * it cannot write (a name not "seg[seg]..." of [A-Za-z0-9_], a key empty
 * or with a bracket), and otherwise its body, read back by an independent
 * parser as Stripe reads it (tests/form_parse.h), must be exactly the
 * fields given: as many, in order, each name's segments and the key as
 * the last, each value byte for byte.  The same keys and values then go
 * through a Stripe refund as the merchant's metadata: amount, nonce and
 * payment intent stay one each, and every key arrives as itself.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <payments/dialect.h>

#include "../form_parse.h"


#define FZ_FIELDS  16


static const char *const  fz_names[] = {
    "amount", "metadata", "destination", "payment_intent_data[metadata]",
    "line_items[0][price_data][currency]", "metadata[nonce]", "a_9",
    "payment_intent"
};


/* the independent rule for our names, with no limit on their depth:
 * seg[seg]... with every segment of [A-Za-z0-9_]; how many segments, or 0
 * when the name is not of that shape */
static size_t
fz_name_depth(const char *name)
{
    size_t       n, len;
    const char  *p;

    p = name;

    for (n = 1; ; n++) {
        len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789_");
        if (len == 0) {
            return 0;
        }
        p += len;

        if (n > 1 && *p++ != ']') {
            return 0;
        }
        if (*p == '\0') {
            return n;
        }
        if (*p++ != '[') {
            return 0;
        }
    }
}


/* a name of the rule (fz_name_depth), split as the parser splits: its
 * segments in seg[], *nseg of them; 0 for a name not of the rule, and for
 * one deeper than the parser reads (FP_SEGMENTS_MAX), *deep set then: the
 * writer may take it, and the parser cannot judge it */
static int
fz_name_ok(const char *name, char *seg[], size_t *nseg, int *deep)
{
    size_t      k, depth;
    fp_field_t  f;

    depth = fz_name_depth(name);
    *deep = depth > FP_SEGMENTS_MAX;

    if (depth == 0 || *deep) {
        return 0;
    }

    memset(&f, 0, sizeof(f));

    if (fp_split(name, &f) != 0) {
        for (k = 0; k < f.nseg; k++) {
            free(f.seg[k]);
        }
        return 0;
    }

    for (k = 0; k < f.nseg; k++) {
        seg[k] = f.seg[k];
    }
    *nseg = f.nseg;

    return 1;
}


/* a refund's body with md as the merchant's metadata: read back */
static void
fz_stripe_refund(json_t *md)
{
    size_t              n;
    fp_form_t           form;
    const char         *key;
    json_t             *val;
    pay_psp_request_t   req;
    pay_psp_refund_t    r;

    memset(&r, 0, sizeof(r));
    r.nonce = "m1:rf_01";
    r.payment_ref = "pi_3AbC";
    r.amount = 400;
    r.currency = "EUR";
    r.metadata = md;

    if (pay_dialect_stripe.refund(&r, &req) != 0) {
        /* only a key no form can carry is a reason */
        json_object_foreach(md, key, val) {
            if (key[0] == '\0' || strpbrk(key, "[]") != NULL) {
                return;
            }
        }
        abort();
    }

    if (fp_parse(req.body, &form) != 0) {
        abort();
    }

    if (fp_get(&form, &n, "amount", NULL, NULL) == NULL || n != 1
        || strcmp(fp_get(&form, &n, "amount", NULL, NULL), "400") != 0
        || fp_get(&form, &n, "payment_intent", NULL, NULL) == NULL || n != 1
        || fp_get(&form, &n, "metadata", "nonce", NULL) == NULL || n != 1
        || strcmp(fp_get(&form, &n, "metadata", "nonce", NULL), "m1:rf_01")
           != 0)
    {
        abort();
    }

    /* ours, then the merchant's when it fits and takes no name of ours */
    if (form.n != 3
        && (form.n != 3 + json_object_size(md)
            || json_object_get(md, "nonce") != NULL))
    {
        abort();
    }

    if (form.n > 3) {
        json_object_foreach(md, key, val) {
            const char  *got = fp_get(&form, &n, "metadata", key, NULL);

            if (got == NULL || n != 1
                || strcmp(got, json_string_value(val)) != 0)
            {
                abort();
            }
        }
    }

    fp_free(&form);
    pay_psp_request_free(&req);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                ok, deep[FZ_FIELDS];
    char              *buf, *p, *end, *rec, *sep, *body;
    char              *seg[FZ_FIELDS][FP_SEGMENTS_MAX];
    size_t             nseg[FZ_FIELDS], n, i, k, want;
    unsigned char      sel;
    json_t            *md;
    fp_form_t          form;
    pay_form_field_t   f[FZ_FIELDS];

    buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';

    n = 0;
    ok = 1;
    end = buf + size;
    memset(nseg, 0, sizeof(nseg));
    memset(deep, 0, sizeof(deep));

    for (p = buf; p < end && n < FZ_FIELDS; p = rec + strlen(rec) + 1) {
        rec = p;

        if (*rec == '\0') {
            continue;
        }

        sel = (unsigned char) *rec++;
        f[n].name = fz_names[sel % (sizeof(fz_names) / sizeof(fz_names[0]))];
        f[n].key = NULL;

        if (sel & 0x80) {
            sep = strchr(rec, '\x01');
            if (sep == NULL) {
                break;
            }
            *sep = '\0';
            f[n].name = rec;
            rec = sep + 1;
        }

        if (sel & 0x40) {
            sep = strchr(rec, '\x01');
            if (sep == NULL) {
                break;
            }
            *sep = '\0';
            f[n].key = rec;
            rec = sep + 1;
        }

        f[n].value = rec;

        if (!fz_name_ok(f[n].name, seg[n], &nseg[n], &deep[n])
            || (f[n].key != NULL
                && (f[n].key[0] == '\0' || strpbrk(f[n].key, "[]") != NULL))
            || nseg[n] + (f[n].key != NULL) > FP_SEGMENTS_MAX)
        {
            ok = 0;
        }

        n++;

        if (rec + strlen(rec) >= end) {
            break;
        }
    }

    body = pay_form_encode(f, n);

    if (!ok) {
        /* a name of our shape too deep for the parser is not an error of
         * the writer's */
        for (i = 0; i < n; i++) {
            if (deep[i]
                || (nseg[i] + (f[i].key != NULL) > FP_SEGMENTS_MAX
                    && nseg[i] > 0))
            {
                goto done;
            }
        }

        if (body != NULL) {
            abort();
        }
        goto done;
    }

    if (body == NULL || fp_parse(body, &form) != 0 || form.n != n) {
        abort();
    }

    for (i = 0; i < n; i++) {
        want = nseg[i] + (f[i].key != NULL);

        if (form.f[i].nseg != want) {
            abort();
        }

        for (k = 0; k < nseg[i]; k++) {
            if (strcmp(form.f[i].seg[k], seg[i][k]) != 0) {
                abort();
            }
        }

        if (f[i].key != NULL && strcmp(form.f[i].seg[want - 1], f[i].key) != 0)
        {
            abort();
        }

        if (form.f[i].value_len != strlen(f[i].value)
            || memcmp(form.f[i].value, f[i].value, form.f[i].value_len) != 0)
        {
            abort();
        }
    }

    fp_free(&form);

    /* the keys and values as a merchant's metadata (JSON: UTF-8 only) */
    md = json_object();
    if (md != NULL) {
        for (i = 0; i < n; i++) {
            if (f[i].key != NULL) {
                (void) json_object_set_new(md, f[i].key,
                                           json_string(f[i].value));
            }
        }

        fz_stripe_refund(md);
        json_decref(md);
    }

done:

    for (i = 0; i < n; i++) {
        for (k = 0; k < nseg[i]; k++) {
            free(seg[i][k]);
        }
    }

    free(body);
    free(buf);

    return 0;
}
