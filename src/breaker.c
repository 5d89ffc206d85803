/*
 * ngx_payments core: circuit breaker, backoff and Retry-After
 * (include/payments/breaker.h).
 */

#include <payments/breaker.h>

#include <payments/time.h>


#define PAY_RETRY_AFTER_MAX_MS  (86400LL * 1000)


int
pay_breaker_allow(pay_breaker_t *b, const pay_breaker_conf_t *c, int64_t now,
    int *probe, int64_t *wait_ms)
{
    int64_t  until;

    *probe = 0;
    *wait_ms = 0;

    switch (b->state) {

    case PAY_BREAKER_CLOSED:
        return 1;

    case PAY_BREAKER_OPEN:
        until = b->opened_at + c->open_ms;

        if (now < until) {
            *wait_ms = until - now;
            return 0;
        }

        b->state = PAY_BREAKER_HALF_OPEN;
        b->probe_at = now;
        *probe = 1;
        return 1;

    case PAY_BREAKER_HALF_OPEN:
    default:
        /* one probe at a time; one that never reported is replaced after
         * probe_ms.  A now a little before probe_at is another worker's
         * clock, read a little earlier than the probe's (each nginx
         * worker reads the time once per turn of its event loop): the
         * probe is out.  A clock that went back further than probe_ms
         * counts as a fresh probe, so it never blocks for long. */
        if (b->probe_at != 0 && now < b->probe_at
            && b->probe_at - now <= c->probe_ms)
        {
            *wait_ms = c->probe_ms;
            return 0;
        }

        if (b->probe_at != 0 && now >= b->probe_at
            && now - b->probe_at < c->probe_ms)
        {
            *wait_ms = c->probe_ms - (now - b->probe_at);
            return 0;
        }

        b->probe_at = now;
        *probe = 1;
        return 1;
    }
}


pay_breaker_state_e
pay_breaker_state(const pay_breaker_t *b, const pay_breaker_conf_t *c,
    int64_t now)
{
    if (b->state == PAY_BREAKER_OPEN && now >= b->opened_at + c->open_ms) {
        return PAY_BREAKER_HALF_OPEN;
    }

    return b->state;
}


void
pay_breaker_result(pay_breaker_t *b, const pay_breaker_conf_t *c,
    int success, int probe, int64_t now)
{
    if (success) {
        /* any answer closes it: the PSP is up */
        b->state = PAY_BREAKER_CLOSED;
        b->failures = 0;
        b->probe_at = 0;
        return;
    }

    if (b->state == PAY_BREAKER_HALF_OPEN) {
        /* the probe failed (or a call from before it opened did): again */
        if (probe || b->probe_at == 0) {
            b->state = PAY_BREAKER_OPEN;
            b->opened_at = now;
            b->probe_at = 0;
            b->opens++;
        }

        return;
    }

    if (b->state == PAY_BREAKER_OPEN) {
        return;
    }

    if (b->failures < UINT32_MAX) {
        b->failures++;
    }

    if (c->threshold > 0 && b->failures >= c->threshold) {
        b->state = PAY_BREAKER_OPEN;
        b->opened_at = now;
        b->probe_at = 0;
        b->failures = 0;
        b->opens++;
    }
}


int64_t
pay_backoff_ms(unsigned n, int64_t base, int64_t cap, uint32_t rnd)
{
    int64_t  d, half;

    if (base <= 0 || cap <= 0) {
        return 0;
    }

    d = base;

    /* base << (n - 1), stopping at the cap (no overflow) */
    while (n > 1 && d < cap) {
        if (d > cap / 2) {
            d = cap;
            break;
        }

        d *= 2;
        n--;
    }

    if (d > cap) {
        d = cap;
    }

    half = d / 2;

    return half + (int64_t) (((uint64_t) (d - half) * rnd) >> 32);
}




int64_t
pay_retry_after_ms(const char *v, size_t len, int64_t now_ms)
{
    size_t   i;
    int64_t  secs, at;

    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }

    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
        len--;
    }

    if (len == 0) {
        return -1;
    }

    /* delta-seconds */
    for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++) { /* void */ }

    if (i == len) {
        secs = 0;

        for (i = 0; i < len; i++) {
            secs = secs * 10 + (v[i] - '0');

            if (secs > 86400) {
                return PAY_RETRY_AFTER_MAX_MS;
            }
        }

        return secs * 1000;
    }

    /* an HTTP date: the one date parser (src/time.c) */
    at = pay_time_parse(v, len, PAY_TIME_HTTP);
    if (at < 0) {
        return -1;
    }

    at *= 1000;

    if (at <= now_ms) {
        return 0;
    }

    return at - now_ms > PAY_RETRY_AFTER_MAX_MS ? PAY_RETRY_AFTER_MAX_MS
                                                : at - now_ms;
}
