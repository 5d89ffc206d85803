/*
 * ngx_payments core: circuit breaker, backoff and Retry-After
 * (include/payments/breaker.h).
 */

#include <payments/breaker.h>

#include <stdio.h>
#include <string.h>
#include <time.h>


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
        /* one probe at a time; one that never reported is replaced (a
         * clock that went back counts as a fresh probe) */
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


static int
pay_month(const char *m)
{
    static const char  months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int                i;

    for (i = 0; i < 12; i++) {
        if (memcmp(months + 3 * i, m, 3) == 0) {
            return i;
        }
    }

    return -1;
}


int64_t
pay_retry_after_ms(const char *v, size_t len, int64_t now_ms)
{
    char       buf[64], wday[4], mon[4], zone[4];
    int        day, year, hh, mm, ss, n;
    size_t     i;
    int64_t    secs, at;
    struct tm  tm;

    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }

    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
        len--;
    }

    if (len == 0 || len >= sizeof(buf)) {
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

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (the only form a
     * sender may generate) */
    memcpy(buf, v, len);
    buf[len] = '\0';

    n = 0;
    if (sscanf(buf, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n",
               wday, &day, mon, &year, &hh, &mm, &ss, zone, &n) != 8
        || (size_t) n != len || strcmp(zone, "GMT") != 0
        || len != 29)
    {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = day;
    tm.tm_mon = pay_month(mon);
    tm.tm_year = year - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;

    if (tm.tm_mon < 0 || day < 1 || day > 31 || hh > 23 || mm > 59
        || ss > 60 || year < 1970)
    {
        return -1;
    }

    at = (int64_t) timegm(&tm) * 1000;

    if (at <= now_ms) {
        return 0;
    }

    return at - now_ms > PAY_RETRY_AFTER_MAX_MS ? PAY_RETRY_AFTER_MAX_MS
                                                : at - now_ms;
}
