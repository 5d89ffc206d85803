/*
 * Unit: the rate limits' arithmetic (include/payments/ratelimit.h): the
 * leaky bucket of payments_limit_zone, the sliding windows of
 * payments_limit_amount and payments_limit_failures.  The time is a
 * parameter, in ms.
 */

#include <criterion/criterion.h>
#include <payments/ratelimit.h>

#include <string.h>


/* 60 r/m = 1 r/s, in milli-requests a minute */
#define R60    (60 * 1000)
#define T0     1000000000ULL


/* one request at now; 1 if it fitted */
static int
take(pay_rl_rate_t *b, uint64_t rate, uint64_t burst, uint64_t now,
    uint64_t *wait)
{
    int64_t   excess;
    uint64_t  w = 0;

    if (pay_rl_rate_check(b, rate, burst, now, &excess, &w)) {
        if (wait) {
            *wait = w;
        }

        return 0;
    }

    pay_rl_rate_take(b, excess, now);
    return 1;
}


Test(rate, the_first_request_of_a_key_fits)
{
    pay_rl_rate_t  b = { 0, 0 };

    cr_assert(take(&b, R60, 0, T0, NULL));
    cr_assert_eq(b.last, T0);
}


Test(rate, a_full_bucket_refuses_until_one_request_has_leaked)
{
    uint64_t       wait;
    pay_rl_rate_t  b = { 0, 0 };

    cr_assert(take(&b, R60, 0, T0, NULL));
    cr_assert_not(take(&b, R60, 0, T0, &wait));
    cr_assert_eq(wait, 1000, "1 r/s: the next fits a second later");

    cr_assert_not(take(&b, R60, 0, T0 + 400, &wait));
    cr_assert_eq(wait, 600);

    cr_assert(take(&b, R60, 0, T0 + 1000, NULL));
}


Test(rate, burst_lets_that_many_more_through_at_once)
{
    int            i, ok;
    pay_rl_rate_t  b = { 0, 0 };

    ok = 0;

    for (i = 0; i < 10; i++) {
        ok += take(&b, R60, 3 * 1000, T0, NULL);
    }

    cr_assert_eq(ok, 4, "one, and a burst of 3");
}


Test(rate, a_refused_request_is_not_counted)
{
    pay_rl_rate_t  b = { 0, 0 };

    cr_assert(take(&b, R60, 0, T0, NULL));
    cr_assert_not(take(&b, R60, 0, T0 + 10, NULL));
    cr_assert_not(take(&b, R60, 0, T0 + 20, NULL));

    /* the refusals did not fill it further: a second after the one that
     * fitted, another fits */
    cr_assert(take(&b, R60, 0, T0 + 1000, NULL));
}


Test(rate, a_rate_that_does_not_divide_rounds_the_wait_up)
{
    uint64_t       wait;
    pay_rl_rate_t  b = { 0, 0 };

    /* 7 r/m: one every 8571.43 ms */
    cr_assert(take(&b, 7 * 1000, 0, T0, NULL));
    cr_assert_not(take(&b, 7 * 1000, 0, T0, &wait));
    cr_assert_eq(wait, 8572);
    cr_assert_not(take(&b, 7 * 1000, 0, T0 + 8571, NULL));
    cr_assert(take(&b, 7 * 1000, 0, T0 + 8572, NULL));
}


Test(rate, a_clock_that_goes_back_counts_as_no_time)
{
    uint64_t       wait;
    pay_rl_rate_t  b = { 0, 0 };

    cr_assert(take(&b, R60, 0, T0, NULL));
    cr_assert_not(take(&b, R60, 0, T0 - 5000, &wait));
    cr_assert_eq(wait, 1000);

    /* and an accounted request at a late clock keeps the bucket's time */
    cr_assert(take(&b, R60, 2000, T0 - 5000, NULL));
    cr_assert_eq(b.last, T0);
    cr_assert(take(&b, R60, 2000, T0 + 1000, NULL));
    cr_assert_eq(b.excess, 1000, "one leaked in the second that passed");
}


Test(rate, a_long_idle_key_is_empty_without_overflow)
{
    pay_rl_rate_t  b = { 0, 0 };

    /* the highest rate the directive takes: 10^6 r/s */
    cr_assert(take(&b, 60000000000ULL, 0, T0, NULL));
    cr_assert(take(&b, 60000000000ULL, 0, T0 + 365ULL * 86400000, NULL));
    cr_assert_eq(b.excess, 0);
}


Test(rate, the_state_expires_once_the_bucket_is_empty)
{
    pay_rl_rate_t  b = { 0, 0 };

    cr_assert(take(&b, R60, 2000, T0, NULL));
    cr_assert(take(&b, R60, 2000, T0, NULL));

    /* excess 1000 after two at 1 r/s: empty two seconds on */
    cr_assert_eq(b.excess, 1000);
    cr_assert_eq(pay_rl_rate_expire(&b, R60), T0 + 2000 + 1);
}


/* windows: 16 sub-windows of 100 ms, a window of 1600 ms */

#define SLOT   100
#define WIN    1600


static uint64_t
idx_at(uint64_t now)
{
    return pay_rl_slot(now, SLOT);
}


Test(window, sub_windows_are_numbered_from_one)
{
    cr_assert_eq(pay_rl_slot(0, SLOT), 1);
    cr_assert_eq(pay_rl_slot(99, SLOT), 1);
    cr_assert_eq(pay_rl_slot(100, SLOT), 2);
}


Test(window, amounts_add_up_to_the_maximum_and_no_further)
{
    uint64_t         wait;
    pay_rl_window_t  w;

    memset(&w, 0, sizeof(w));

    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 600, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 400, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 1, 1000, SLOT, WIN, T0,
                                   &wait), 1);
    cr_assert_eq(pay_rl_window_advance(&w, idx_at(T0)), 1000);
}


Test(window, the_wait_is_until_enough_has_left_the_window)
{
    uint64_t         wait, t1;
    pay_rl_window_t  w;

    memset(&w, 0, sizeof(w));

    /* 600 at T0, 400 half a window later */
    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 600, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    t1 = T0 + 800;
    cr_assert_eq(pay_rl_window_add(&w, idx_at(t1), 400, 1000, SLOT, WIN, t1,
                                   &wait), 0);

    /* 500 more fits once the 600 has left: T0's sub-window leaves when
     * the one 17 later begins */
    cr_assert_eq(pay_rl_window_add(&w, idx_at(t1), 500, 1000, SLOT, WIN, t1,
                                   &wait), 1);
    cr_assert_eq(wait, (idx_at(T0) + PAY_RL_SLOTS - 1) * SLOT - t1);

    /* then */
    cr_assert_eq(pay_rl_window_add(&w, idx_at(t1 + wait), 500, 1000, SLOT,
                                   WIN, t1 + wait, &wait), 0);
}


Test(window, more_than_the_maximum_at_once_never_fits)
{
    uint64_t         wait;
    pay_rl_window_t  w;

    memset(&w, 0, sizeof(w));

    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 1001, 1000, SLOT, WIN, T0,
                                   &wait), 1);
    cr_assert_eq(wait, WIN + SLOT);
}


Test(window, the_window_forgets_after_its_length)
{
    pay_rl_window_t  w;
    uint64_t         wait;

    memset(&w, 0, sizeof(w));

    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 1000, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    cr_assert_eq(pay_rl_window_advance(&w, idx_at(T0 + WIN)), 1000,
                 "still there one window on (the current sub-window too)");
    cr_assert_eq(pay_rl_window_advance(&w, idx_at(T0 + WIN + SLOT)), 0);

    /* a long idle time clears it all at once */
    cr_assert_eq(pay_rl_window_add(&w, idx_at(T0), 1000, 1000, SLOT, WIN,
                                   T0, &wait), 0);
    cr_assert_eq(pay_rl_window_advance(&w, idx_at(T0 + 86400000)), 0);
}


Test(window, a_removed_amount_frees_room_while_its_sub_window_is_in)
{
    uint64_t         wait, i0;
    pay_rl_window_t  w;

    memset(&w, 0, sizeof(w));
    i0 = idx_at(T0);

    cr_assert_eq(pay_rl_window_add(&w, i0, 700, 1000, SLOT, WIN, T0, &wait),
                 0);
    pay_rl_window_remove(&w, i0, 700, i0 + 3);
    cr_assert_eq(pay_rl_window_advance(&w, i0 + 3), 0);

    /* never below zero, and nothing once its sub-window has left */
    cr_assert_eq(pay_rl_window_add(&w, i0 + 3, 100, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    pay_rl_window_remove(&w, i0 + 3, 500, i0 + 3);
    cr_assert_eq(pay_rl_window_advance(&w, i0 + 3), 0);

    cr_assert_eq(pay_rl_window_add(&w, i0 + 4, 100, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    cr_assert_eq(pay_rl_window_add(&w, i0 + 40, 200, 1000, SLOT, WIN, T0,
                                   &wait), 0);
    pay_rl_window_remove(&w, i0 + 4, 100, i0 + 40);
    cr_assert_eq(pay_rl_window_advance(&w, i0 + 40), 200);
}


Test(window, failures_count_up_to_the_maximum_per_sub_window)
{
    int              i;
    pay_rl_window_t  w;

    memset(&w, 0, sizeof(w));

    for (i = 0; i < 10; i++) {
        pay_rl_window_count(&w, idx_at(T0), 3);
    }

    cr_assert_eq(pay_rl_window_advance(&w, idx_at(T0)), 3);

    pay_rl_window_count(&w, idx_at(T0 + SLOT), 3);
    cr_assert_eq(pay_rl_window_advance(&w, idx_at(T0 + SLOT)), 4);
}


Test(window, expires_when_its_last_sub_window_has_left)
{
    pay_rl_window_t  w;

    memset(&w, 0, sizeof(w));
    pay_rl_window_count(&w, idx_at(T0), 3);

    cr_assert_eq(pay_rl_window_expire(&w, SLOT),
                 (idx_at(T0) + PAY_RL_SLOTS - 1) * SLOT);
    cr_assert_eq(pay_rl_window_advance(&w,
                     idx_at(pay_rl_window_expire(&w, SLOT))), 0);
}
