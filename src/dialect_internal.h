/*
 * ngx_payments core: what the dialect files (src/dialect_*.c) share with
 * src/psp.c, the dialect-neutral part of a PSP call.  Not a public header.
 */
#ifndef PAYMENTS_DIALECT_INTERNAL_H
#define PAYMENTS_DIALECT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <payments/dialect.h>


/* A growable string; one failed allocation poisons it (checked once). */
typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    int      failed;
} pay_buf_t;

void pay_buf_add(pay_buf_t *b, const char *s, size_t n);
void pay_buf_str(pay_buf_t *b, const char *s);

/* application/x-www-form-urlencoded fields, in the order added */
void pay_form_field(pay_buf_t *b, const char *name, const char *value);
void pay_form_field_int(pay_buf_t *b, const char *name, int64_t value);

/* json_object_set_new that remembers a failure (NULL value or OOM) */
void pay_json_set(json_t *obj, const char *key, json_t *v, int *failed);
/* compact, in insertion order (the same inputs give the same bytes);
 * root is released; NULL when failed */
char *pay_json_dump(json_t *root, int failed);

/* ISO minor units -> the dialect's (psp.h pay_psp_amount_to_psp) */
int pay_dialect_to_psp(const pay_dialect_t *d, const char *currency,
    int64_t iso, int64_t *psp);

/* The HTTP status answers every dialect's refusal reason reads:
 * root.key when a non-empty string, else root.alt (NULL: none). */
const json_t *pay_json_reason(const json_t *root, const char *key,
    const char *alt);

#endif
