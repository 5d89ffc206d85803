/*
 * ngx_payments core: the arithmetic of the rate limits.  The adapter keeps
 * these states in shared memory (one per key, under its zone's lock) and
 * calls these functions with the time; they read no clock and hold no
 * state of their own.  Times are milliseconds of a monotonic clock
 * (nginx's ngx_current_msec).
 *
 *   rate     a leaky bucket, as nginx's limit_req: `excess` in
 *            milli-requests drains at `rate` milli-requests a minute; a
 *            request adds 1000 and fits while excess stays within `burst`.
 *   window   a sliding window of PAY_RL_SUBWINDOWS sub-windows (and the
 *            current one): sums of amounts, or counts of failures.
 *            Sub-window k covers [(k - 1) * slot, k * slot); a window's sum
 *            is its last PAY_RL_SLOTS sub-windows'.
 */
#ifndef PAYMENTS_RATELIMIT_H
#define PAYMENTS_RATELIMIT_H

#include <stdint.h>

#define PAY_RL_SUBWINDOWS  16
#define PAY_RL_SLOTS       (PAY_RL_SUBWINDOWS + 1)

typedef struct {
    int64_t     excess;         /* milli-requests */
    uint64_t    last;           /* ms; 0: never accounted */
} pay_rl_rate_t;

typedef struct {
    uint64_t    idx;            /* current sub-window; 0: none yet */
    int64_t     sum[PAY_RL_SLOTS];
} pay_rl_window_t;


/*
 * One request against a bucket (rate: milli-requests a minute, > 0;
 * burst: milli-requests).  Returns 0 when it fits, with the bucket's new
 * excess in *excess (pay_rl_rate_take stores it); 1 when it does not, with
 * *wait the ms until one request fits.  A clock that went back counts as
 * no time passed; gaps over a day as a day.
 */
int pay_rl_rate_check(const pay_rl_rate_t *b, uint64_t rate, uint64_t burst,
    uint64_t now, int64_t *excess, uint64_t *wait);

/* Accounts the request pay_rl_rate_check let through. */
void pay_rl_rate_take(pay_rl_rate_t *b, int64_t excess, uint64_t now);

/* When the bucket is empty again: after this, its state can go. */
uint64_t pay_rl_rate_expire(const pay_rl_rate_t *b, uint64_t rate);


/* The sub-window now falls in (slot: ms, > 0); never 0. */
uint64_t pay_rl_slot(uint64_t now, uint64_t slot);

/* Moves the window to sub-window idx (forgetting the ones that left);
 * returns its sum.  An idx before the window's is the window's own. */
int64_t pay_rl_window_advance(pay_rl_window_t *w, uint64_t idx);

/*
 * The ms from now until the window's sum (total, after advance) is at
 * most limit, as its oldest sub-windows leave; limit < 0, or more in the
 * current sub-window alone: window + slot (never, within the window).
 * At least 1.
 */
uint64_t pay_rl_window_wait(const pay_rl_window_t *w, int64_t total,
    int64_t limit, uint64_t slot, uint64_t window, uint64_t now);

/* When the window holds nothing any more: after this, its state can go. */
uint64_t pay_rl_window_expire(const pay_rl_window_t *w, uint64_t slot);

/*
 * Adds amount (>= 0) to the window at sub-window idx if its sum stays
 * within max: 0; else 1 with *wait (pay_rl_window_wait).  Sums never
 * exceed max, so they cannot overflow.
 */
int pay_rl_window_add(pay_rl_window_t *w, uint64_t idx, int64_t amount,
    int64_t max, uint64_t slot, uint64_t window, uint64_t now,
    uint64_t *wait);

/* Takes back an amount added at sub-window idx, while that sub-window is
 * still in the window (now_idx: the current one); never below zero. */
void pay_rl_window_remove(pay_rl_window_t *w, uint64_t idx, int64_t amount,
    uint64_t now_idx);

/* One more failure at idx, the sub-window kept at most max. */
void pay_rl_window_count(pay_rl_window_t *w, uint64_t idx, int64_t max);

#endif
