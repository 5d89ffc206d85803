/*
 * ngx_payments core: what a PSP call does when the PSP fails.  A circuit
 * breaker per PSP (its state lives in the adapter's shared memory; these
 * functions only move it, under the adapter's lock), the backoff between
 * attempts, and the PSP's Retry-After.  Pure functions: the time is a
 * parameter, in milliseconds, and randomness comes in as a number.
 *
 *   closed     calls go; N transient failures in a row open it
 *   open       no call goes until open_ms have passed since it opened
 *   half-open  one call (the probe) goes; its success closes the breaker,
 *              its failure opens it again; a probe that never reports
 *              (its worker died) is replaced after probe_ms
 */
#ifndef PAYMENTS_BREAKER_H
#define PAYMENTS_BREAKER_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PAY_BREAKER_CLOSED = 0,
    PAY_BREAKER_OPEN,
    PAY_BREAKER_HALF_OPEN
} pay_breaker_state_e;

typedef struct {
    uint32_t   threshold;       /* transient failures in a row; 0: never
                                   opens */
    int64_t    open_ms;         /* how long it stays open */
    int64_t    probe_ms;        /* a probe older than this is replaced */
} pay_breaker_conf_t;

typedef struct {
    pay_breaker_state_e  state;
    uint32_t             failures;      /* in a row, while closed */
    int64_t              opened_at;     /* ms */
    int64_t              probe_at;      /* ms; 0: no probe out */
    uint64_t             opens;         /* how often it opened */
} pay_breaker_t;

/*
 * May a call go now?  1: yes (closed; or this call is the half-open probe,
 * *probe set to 1).  0: no; *wait_ms is how long until a probe may go
 * (at least 1).
 */
int pay_breaker_allow(pay_breaker_t *b, const pay_breaker_conf_t *c,
    int64_t now, int *probe, int64_t *wait_ms);

/*
 * The state as a caller would find it now (what /metrics shows): an open
 * breaker whose open_ms have passed is half-open, its next call the probe,
 * though only that call moves it there.
 */
pay_breaker_state_e pay_breaker_state(const pay_breaker_t *b,
    const pay_breaker_conf_t *c, int64_t now);

/*
 * A call's end: success 1 (the PSP answered: created, or refused for good,
 * or 401/403: it is up), 0 (a transient failure: no answer, a timeout, 5xx,
 * 429).  probe: the call was the half-open probe.
 */
void pay_breaker_result(pay_breaker_t *b, const pay_breaker_conf_t *c,
    int success, int probe, int64_t now);

/*
 * The wait before attempt n + 1 (n >= 1 attempts made): base << (n - 1)
 * capped at cap, then "equal jitter": half of it fixed, the other half
 * scaled by rnd / 2^32.  Never more than cap, never less than half of the
 * capped value.
 */
int64_t pay_backoff_ms(unsigned n, int64_t base, int64_t cap, uint32_t rnd);

/*
 * Retry-After (RFC 9110): delta-seconds ("120") or an HTTP-date
 * ("Fri, 31 Dec 1999 23:59:59 GMT"), in ms from now (0 for a date in the
 * past); -1 for anything else.  Values over a day are a day.
 */
int64_t pay_retry_after_ms(const char *v, size_t len, int64_t now_ms);

#endif
