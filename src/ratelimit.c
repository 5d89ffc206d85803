/*
 * ngx_payments core: the rate limits' arithmetic (include/payments/
 * ratelimit.h).
 */

#include <payments/ratelimit.h>

#include <string.h>


#define PAY_RL_DAY_MS  86400000LL


int
pay_rl_rate_check(const pay_rl_rate_t *b, uint64_t rate, uint64_t burst,
    uint64_t now, int64_t *excess, uint64_t *wait)
{
    int64_t  e, ms;

    if (b->last == 0) {
        e = 0;

    } else {
        ms = now > b->last ? (int64_t) (now - b->last) : 0;

        if (ms > PAY_RL_DAY_MS) {
            ms = PAY_RL_DAY_MS;
        }

        /* rate <= 6 * 10^10 and ms <= 86400000: no overflow */
        e = b->excess - (int64_t) (rate * (uint64_t) ms / 60000) + 1000;

        if (e < 0) {
            e = 0;
        }
    }

    if ((uint64_t) e > burst) {
        *wait = ((uint64_t) e - burst) * 60000 / rate
                + (((uint64_t) e - burst) * 60000 % rate ? 1 : 0);
        return 1;
    }

    *excess = e;
    return 0;
}


void
pay_rl_rate_take(pay_rl_rate_t *b, int64_t excess, uint64_t now)
{
    /* a clock that went back does not move the bucket back: the next
     * request would find time that never passed */
    if (now > b->last) {
        b->last = now;
    }

    b->excess = excess;
}


uint64_t
pay_rl_rate_expire(const pay_rl_rate_t *b, uint64_t rate)
{
    return b->last + (uint64_t) (b->excess + 1000) * 60000 / rate + 1;
}


uint64_t
pay_rl_slot(uint64_t now, uint64_t slot)
{
    return now / slot + 1;
}


int64_t
pay_rl_window_advance(pay_rl_window_t *w, uint64_t idx)
{
    int64_t   total;
    uint64_t  k;
    unsigned  i;

    if (w->idx == 0 || idx >= w->idx + PAY_RL_SLOTS) {
        memset(w->sum, 0, sizeof(w->sum));
        w->idx = idx;

    } else if (idx > w->idx) {
        for (k = w->idx + 1; k <= idx; k++) {
            w->sum[k % PAY_RL_SLOTS] = 0;
        }

        w->idx = idx;
    }

    total = 0;

    /* every slot is at most max, and their sum too: no overflow */
    for (i = 0; i < PAY_RL_SLOTS; i++) {
        total += w->sum[i];
    }

    return total;
}


uint64_t
pay_rl_window_wait(const pay_rl_window_t *w, int64_t total, int64_t limit,
    uint64_t slot, uint64_t window, uint64_t now)
{
    uint64_t  k, first, at;

    if (limit >= 0) {
        first = w->idx + 1 > PAY_RL_SLOTS ? w->idx + 1 - PAY_RL_SLOTS : 1;

        for (k = first; k <= w->idx; k++) {
            total -= w->sum[k % PAY_RL_SLOTS];

            if (total <= limit) {
                /* sub-window k leaves when k + PAY_RL_SLOTS begins */
                at = (k + PAY_RL_SLOTS - 1) * slot;

                return at > now ? at - now : 1;
            }
        }
    }

    /* more than the limit on its own: never fits */
    return window + slot;
}


uint64_t
pay_rl_window_expire(const pay_rl_window_t *w, uint64_t slot)
{
    return (w->idx + PAY_RL_SLOTS - 1) * slot;
}


int
pay_rl_window_add(pay_rl_window_t *w, uint64_t idx, int64_t amount,
    int64_t max, uint64_t slot, uint64_t window, uint64_t now,
    uint64_t *wait)
{
    int64_t  total;

    total = pay_rl_window_advance(w, idx);

    /* total <= max always holds, so max - total cannot overflow */
    if (amount > max - total) {
        *wait = pay_rl_window_wait(w, total, max - amount, slot, window, now);
        return 1;
    }

    w->sum[idx % PAY_RL_SLOTS] += amount;

    return 0;
}


void
pay_rl_window_remove(pay_rl_window_t *w, uint64_t idx, int64_t amount,
    uint64_t now_idx)
{
    int64_t  *s;

    (void) pay_rl_window_advance(w, now_idx);

    /* only while the sub-window it went into is still in the window */
    if (idx + PAY_RL_SLOTS > w->idx) {
        s = &w->sum[idx % PAY_RL_SLOTS];
        *s -= *s < amount ? *s : amount;
    }
}


void
pay_rl_window_count(pay_rl_window_t *w, uint64_t idx, int64_t max)
{
    (void) pay_rl_window_advance(w, idx);

    if (w->sum[idx % PAY_RL_SLOTS] < max) {
        w->sum[idx % PAY_RL_SLOTS]++;
    }
}
