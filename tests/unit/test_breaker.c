/*
 * Unit: the PSP circuit breaker, the backoff between attempts and
 * Retry-After (include/payments/breaker.h).
 */

#include <criterion/criterion.h>
#include <payments/breaker.h>

#include <string.h>


static const pay_breaker_conf_t  conf = {
    .threshold = 3, .open_ms = 10000, .probe_ms = 5000
};


static void
fail(pay_breaker_t *b, int n, int64_t now)
{
    int  i;

    for (i = 0; i < n; i++) {
        pay_breaker_result(b, &conf, 0, 0, now);
    }
}


Test(breaker, stays_closed_below_the_threshold_of_failures_in_a_row)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 2, 1000);
    cr_assert_eq(b.state, PAY_BREAKER_CLOSED);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 1000, &probe, &wait), 1);
    cr_assert_eq(probe, 0);

    /* a success in between starts the count again */
    pay_breaker_result(&b, &conf, 1, 0, 1000);
    fail(&b, 2, 1000);
    cr_assert_eq(b.state, PAY_BREAKER_CLOSED);
    cr_assert_eq(b.opens, 0);
}


Test(breaker, opens_on_the_nth_failure_in_a_row_and_refuses_with_the_wait)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 1000);
    cr_assert_eq(b.state, PAY_BREAKER_OPEN);
    cr_assert_eq(b.opens, 1);

    cr_assert_eq(pay_breaker_allow(&b, &conf, 1000, &probe, &wait), 0);
    cr_assert_eq(wait, 10000);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 8500, &probe, &wait), 0);
    cr_assert_eq(wait, 2500);

    /* failures reported while open (calls made before it opened) do not
     * push the reopening back */
    fail(&b, 5, 9000);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 9000, &probe, &wait), 0);
    cr_assert_eq(wait, 2000);
}


Test(breaker, lets_one_probe_through_once_open_ms_have_passed)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);

    cr_assert_eq(pay_breaker_allow(&b, &conf, 10000, &probe, &wait), 1);
    cr_assert_eq(probe, 1);
    cr_assert_eq(b.state, PAY_BREAKER_HALF_OPEN);

    /* a second caller while the probe is out: refused */
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10001, &probe, &wait), 0);
    cr_assert_eq(probe, 0);
    cr_assert_eq(wait, 4999);
}


Test(breaker, an_open_breaker_past_open_ms_shows_as_half_open_before_any_call)
{
    pay_breaker_t  b = { 0 };

    cr_assert_eq(pay_breaker_state(&b, &conf, 0), PAY_BREAKER_CLOSED);

    fail(&b, 3, 1000);
    cr_assert_eq(pay_breaker_state(&b, &conf, 1000), PAY_BREAKER_OPEN);
    cr_assert_eq(pay_breaker_state(&b, &conf, 10999), PAY_BREAKER_OPEN);

    /* no call has moved it, yet the next one would be the probe */
    cr_assert_eq(pay_breaker_state(&b, &conf, 11000), PAY_BREAKER_HALF_OPEN);
    cr_assert_eq(b.state, PAY_BREAKER_OPEN);
}


Test(breaker, a_successful_probe_closes_it)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10000, &probe, &wait), 1);
    pay_breaker_result(&b, &conf, 1, probe, 10200);

    cr_assert_eq(b.state, PAY_BREAKER_CLOSED);
    cr_assert_eq(b.failures, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10201, &probe, &wait), 1);
    cr_assert_eq(probe, 0);
}


Test(breaker, a_failed_probe_opens_it_again_for_open_ms)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10000, &probe, &wait), 1);
    pay_breaker_result(&b, &conf, 0, probe, 11000);

    cr_assert_eq(b.state, PAY_BREAKER_OPEN);
    cr_assert_eq(b.opens, 2);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 11000, &probe, &wait), 0);
    cr_assert_eq(wait, 10000);
}


Test(breaker, a_probe_that_never_reports_is_replaced_after_probe_ms)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10000, &probe, &wait), 1);

    /* its worker died: after probe_ms another caller is the probe */
    cr_assert_eq(pay_breaker_allow(&b, &conf, 14999, &probe, &wait), 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 15000, &probe, &wait), 1);
    cr_assert_eq(probe, 1);
}


Test(breaker, a_late_failure_of_a_call_from_before_does_not_reopen_a_probe)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10000, &probe, &wait), 1);

    /* not the probe: the probe's own answer decides */
    pay_breaker_result(&b, &conf, 0, 0, 10100);
    cr_assert_eq(b.state, PAY_BREAKER_HALF_OPEN);
    pay_breaker_result(&b, &conf, 1, 1, 10200);
    cr_assert_eq(b.state, PAY_BREAKER_CLOSED);
}


Test(breaker, a_clock_that_goes_back_never_blocks_for_longer_than_probe_ms)
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10000, &probe, &wait), 1);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 4999, &probe, &wait), 1);
    cr_assert_eq(probe, 1);
}


Test(breaker, workers_whose_clocks_lag_the_probes_send_no_probe_of_their_own,
     .description = "each nginx worker reads the time once per turn of its "
                    "event loop, so another worker's now can be a few ms "
                    "before the probe's: the probe is out, they wait (four "
                    "workers used to send four probes)")
{
    int            probe;
    int64_t        wait;
    pay_breaker_t  b = { 0 };

    fail(&b, 3, 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10010, &probe, &wait), 1);
    cr_assert_eq(probe, 1);

    cr_assert_eq(pay_breaker_allow(&b, &conf, 10008, &probe, &wait), 0);
    cr_assert_eq(probe, 0);
    cr_assert_eq(wait, conf.probe_ms);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10005, &probe, &wait), 0);
    cr_assert_eq(pay_breaker_allow(&b, &conf, 10001, &probe, &wait), 0);
    cr_assert_eq(b.probe_at, 10010, "the probe stays the first one");
}


Test(breaker, threshold_zero_never_opens)
{
    pay_breaker_conf_t  never = { 0, 10000, 5000 };
    pay_breaker_t       b = { 0 };
    int                 i;

    for (i = 0; i < 1000; i++) {
        pay_breaker_result(&b, &never, 0, 0, i);
    }

    cr_assert_eq(b.state, PAY_BREAKER_CLOSED);
}


Test(backoff, doubles_from_base_and_stays_within_half_to_whole)
{
    unsigned  n;
    int64_t   d, full;

    for (n = 1; n <= 6; n++) {
        full = 100LL << (n - 1);
        if (full > 2000) {
            full = 2000;
        }

        d = pay_backoff_ms(n, 100, 2000, 0);
        cr_assert_eq(d, full / 2, "attempt %u: %ld", n, (long) d);

        d = pay_backoff_ms(n, 100, 2000, UINT32_MAX);
        cr_assert(d <= full && d >= full - 1, "attempt %u: %ld", n,
                  (long) d);
    }
}


Test(backoff, never_overflows_past_the_cap)
{
    cr_assert_leq(pay_backoff_ms(200, 100, 2000, UINT32_MAX), 2000);
    cr_assert_geq(pay_backoff_ms(200, 100, 2000, 0), 1000);
    cr_assert_leq(pay_backoff_ms(64, INT64_MAX / 2, INT64_MAX, UINT32_MAX),
                  INT64_MAX);
    cr_assert_eq(pay_backoff_ms(3, 0, 2000, 7), 0);
}


Test(backoff, jitter_spreads_the_waits)
{
    int64_t  a, b;

    a = pay_backoff_ms(3, 100, 2000, 0x10000000u);
    b = pay_backoff_ms(3, 100, 2000, 0xF0000000u);
    cr_assert_neq(a, b);
    cr_assert(a >= 200 && a <= 400 && b >= 200 && b <= 400);
}


Test(retry_after, delta_seconds_are_milliseconds_from_now)
{
    cr_assert_eq(pay_retry_after_ms("0", 1, 5), 0);
    cr_assert_eq(pay_retry_after_ms("2", 1, 5), 2000);
    cr_assert_eq(pay_retry_after_ms(" 120 ", 5, 5), 120000);
    cr_assert_eq(pay_retry_after_ms("99999999999999999999", 20, 0),
                 86400LL * 1000, "capped at a day, no overflow");
}


Test(retry_after, an_http_date_is_the_time_until_it)
{
    /* 2026-11-22T10:00:00Z = 1795341600 */
    int64_t  now = 1795341600LL * 1000;

    cr_assert_eq(pay_retry_after_ms("Sun, 22 Nov 2026 10:00:30 GMT", 29, now),
                 30000);
    cr_assert_eq(pay_retry_after_ms("Sun, 22 Nov 2026 09:00:00 GMT", 29, now),
                 0, "a date in the past: now");
}


Test(retry_after, anything_else_is_minus_one)
{
    static const char  *bad[] = {
        "", " ", "-1", "1.5", "1e3", "abc", "12abc",
        "Sun, 22 Nov 2026 10:00:30 UTC",
        "Sunday, 22-Nov-26 10:00:30 GMT",
        "Sun Nov 22 10:00:30 2026",
        "Sun, 32 Nov 2026 10:00:30 GMT",
        "Sun, 22 Foo 2026 10:00:30 GMT",
        "Sun, 22 Nov 2026 25:00:30 GMT",
        "Sun, 22 Nov 2026 10:00:30 GMTX",
    };
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(pay_retry_after_ms(bad[i], strlen(bad[i]), 0), -1,
                     "\"%s\"", bad[i]);
    }
}
