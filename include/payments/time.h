/*
 * ngx_payments core: dates and times, parsed by one function and written by
 * one.  Every date the gateway reads comes through pay_time_parse(): a PSP's
 * session expiry (Stripe's epoch seconds arrive as JSON integers, Adyen's
 * expiresAt as RFC 3339), Stripe's signature timestamp, PostgreSQL's
 * ts_epoch() and ts_rfc3339() columns, a PSP's Retry-After date.
 */
#ifndef PAYMENTS_TIME_H
#define PAYMENTS_TIME_H

#include <stddef.h>
#include <stdint.h>

/* the last second pay_time_parse() and pay_time_format() know */
#define PAY_TIME_MAX      253402300799LL    /* 9999-12-31T23:59:59Z */

/* the forms pay_time_parse() may be asked to accept (or-ed) */

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM),
 * upper-case T and Z, no leap second, year 1970 or later */
#define PAY_TIME_RFC3339  0x01

/* seconds since 1970-01-01T00:00:00Z in decimal: digits only, no sign, no
 * leading zero (but "0" itself), no space */
#define PAY_TIME_EPOCH    0x02

/* HTTP's IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT",
 * exactly that shape, the day name matching the date (a PSP's
 * Retry-After) */
#define PAY_TIME_HTTP     0x04

/*
 * The len bytes at s as one of forms.  Returns seconds since the epoch,
 * UTC, a fraction dropped: 0 .. PAY_TIME_MAX; or -1 when s is none of the
 * forms, names no real date (February 30th, 24:00), or lies outside
 * 1970-01-01T00:00:00Z .. PAY_TIME_MAX once its offset is applied.
 */
int64_t pay_time_parse(const char *s, size_t len, unsigned forms);

/* "2026-11-22T10:00:00Z" (RFC 3339, UTC) for t in 0 .. PAY_TIME_MAX.
 * Returns 0, or -1 out of range. */
int pay_time_format(int64_t t, char buf[21]);

#endif
