/*
 * ngx_payments core: money.  Amounts are int64 minor units with an ISO 4217
 * currency; decimal strings on the wire.  Never floating point.
 */
#ifndef PAYMENTS_MONEY_H
#define PAYMENTS_MONEY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char  code[4];      /* "USD", NUL-terminated */
    int   exponent;     /* minor-unit digits: USD 2, JPY 0, KWD 3 */
} pay_currency_t;

/* Exact, case-sensitive lookup of an active ISO 4217 code (upper case only).
 * Returns a pointer into a static table, or NULL. */
const pay_currency_t *pay_currency_find(const char *code, size_t len);

/* The i-th currency of the table (code order), or NULL past its end: every
 * active ISO 4217 currency, for a caller that lists them all. */
const pay_currency_t *pay_currency_at(size_t i);

typedef enum {
    PAY_AMOUNT_OK = 0,
    PAY_AMOUNT_SYNTAX,      /* not ^(0|[1-9][0-9]*)(\.[0-9]+)?$ */
    PAY_AMOUNT_PRECISION,   /* more decimals than the exponent allows */
    PAY_AMOUNT_ZERO,        /* zero */
    PAY_AMOUNT_OVERFLOW     /* more than INT64_MAX minor units */
} pay_amount_rc_e;

/* "10.5" with exponent 2 -> 1050.  s need not be NUL-terminated. */
pay_amount_rc_e pay_amount_parse(const char *s, size_t len, int exponent,
    int64_t *minor);

/* 1050, exponent 2 -> "10.50"; 5, exponent 0 -> "5".  minor must be >= 0.
 * Returns the length written (excluding NUL), or -1 if buf is too small. */
int pay_amount_format(int64_t minor, int exponent, char *buf, size_t size);

/*
 * The same amount from one exponent to another, exactly: 1050 from 2 to 0
 * fails (10.50 has no whole-unit value), 500 from 0 to 2 is 50000.
 * Returns 0, or -1 when the value is not exact in to_exp, would overflow,
 * is negative or an exponent is out of range.
 */
int pay_amount_rescale(int64_t minor, int from_exp, int to_exp,
    int64_t *out);

#endif
