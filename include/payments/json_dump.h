/*
 * ngx_payments core: JSON written out, in the bytes jansson's
 * json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) writes, in fewer
 * instructions (jansson hands its writer a token at a time: a checkout's
 * view cost 77,000 instructions, 32,000 here; bench/RESULTS.md).  The unit
 * test and fuzz_json_dump hold the two to the same bytes.  No I/O.
 */
#ifndef PAYMENTS_JSON_DUMP_H
#define PAYMENTS_JSON_DUMP_H

#include <stddef.h>
#include <jansson.h>

/* A growable string; one failed allocation (or a string that is not
 * UTF-8) poisons it, checked once at the end. */
typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    int      failed;
} pay_json_buf_t;

void pay_json_buf_add(pay_json_buf_t *b, const char *s, size_t n);

/*
 * s (n bytes) as a JSON string, quoted and escaped as json_dumps escapes it
 * without flags: '"' and '\\', the C0 controls (\b \f \n \r \t by name,
 * the others and NUL as \u00XX), nothing else.  A string that is not
 * UTF-8 (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF)
 * fails the buffer, as jansson refuses to hold or write it.
 */
void pay_json_buf_string(pay_json_buf_t *b, const char *s, size_t n);

/*
 * v (an object or an array, as json_dumps takes it) compact, objects in
 * their keys' order; malloc'd, or NULL when json_dumps would give NULL
 * (not an object or array, memory) or v holds a real (written by jansson
 * then: its digits are jansson's own).
 */
char *pay_json_dumps(const json_t *v);

#endif
