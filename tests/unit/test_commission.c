/*
 * Unit tests: the commission rounding rule, the refund's proportional
 * commission part and the balance arithmetic (commission.h).  A table of
 * cases, then properties over random orders and random splits of full
 * refunds (a fixed-seed generator: every run checks the same cases).
 */

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/commission.h>


#define CM_2_53  (INT64_C(1) << 53)


Test(commission, table_of_orders)
{
    static const struct {
        int64_t  amount;
        int      bps;
        int64_t  fixed;
        int64_t  want;
    } cases[] = {
        { 10000, 250, 0, 250 },         /* 2.5 % of 100.00 */
        { 999, 250, 0, 24 },            /* 24.975 rounds down */
        { 999, 250, 30, 54 },           /* + fixed */
        { 1, 9999, 0, 0 },              /* 0.9999 rounds down */
        { 1, 10000, 0, 1 },             /* all of it */
        { 100, 0, 0, 0 },               /* no commission */
        { 100, 0, 150, 100 },           /* fixed above the amount: capped */
        { 100, 5000, 60, 100 },         /* 50 + 60 capped at 100 */
        { 0, 250, 30, 0 },              /* nothing to take */
        { CM_2_53, 10000, 0, CM_2_53 },
        { CM_2_53, 1, 0, CM_2_53 / 10000 },
        { CM_2_53 - 1, 9999, 0,
          (int64_t) (((__int128) (CM_2_53 - 1) * 9999) / 10000) },
        { INT64_MAX, 10000, INT64_MAX, INT64_MAX },
        { INT64_MAX, 5000, 0, INT64_MAX / 2 },
    };
    size_t   i;
    int64_t  c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(pay_commission(cases[i].amount, cases[i].bps,
                                    cases[i].fixed, &c), 0, "case %zu", i);
        cr_expect_eq(c, cases[i].want, "case %zu: %lld", i, (long long) c);
    }
}


Test(commission, bad_order_inputs_are_refused)
{
    int64_t  c;

    cr_expect_eq(pay_commission(-1, 250, 0, &c), -1);
    cr_expect_eq(pay_commission(100, -1, 0, &c), -1);
    cr_expect_eq(pay_commission(100, 10001, 0, &c), -1);
    cr_expect_eq(pay_commission(100, 250, -1, &c), -1);
    cr_expect_eq(pay_commission(100, 250, 0, NULL), -1);
}


Test(commission, table_of_refund_parts)
{
    static const struct {
        int64_t  amount, commission, before, refund, want;
    } cases[] = {
        { 10000, 250, 0, 10000, 250 },  /* full at once */
        { 10000, 250, 0, 5000, 125 },
        { 10000, 250, 5000, 5000, 125 },
        { 1000, 3, 0, 333, 0 },         /* 0.999 rounds down */
        { 1000, 3, 333, 333, 1 },       /* floor(1.998) - floor(0.999) */
        { 1000, 3, 666, 334, 2 },       /* the rest: 3 - 1 */
        { 100, 0, 0, 100, 0 },          /* no commission */
        { 100, 100, 10, 30, 30 },       /* all commission */
        { 100, 50, 0, 0, 0 },           /* nothing refunded */
        { CM_2_53, CM_2_53 - 1, 0, CM_2_53, CM_2_53 - 1 },
        { INT64_MAX, INT64_MAX / 3, 0, INT64_MAX / 2,
          (int64_t) ((__int128) (INT64_MAX / 2) * (INT64_MAX / 3)
                     / INT64_MAX) },
    };
    size_t   i;
    int64_t  c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(pay_commission_refund(cases[i].amount,
                                           cases[i].commission,
                                           cases[i].before, cases[i].refund,
                                           &c), 0, "case %zu", i);
        cr_expect_eq(c, cases[i].want, "case %zu: %lld", i, (long long) c);
    }
}


Test(commission, bad_refund_inputs_are_refused)
{
    int64_t  c;

    cr_expect_eq(pay_commission_refund(0, 0, 0, 0, &c), -1);
    cr_expect_eq(pay_commission_refund(100, 101, 0, 10, &c), -1);
    cr_expect_eq(pay_commission_refund(100, -1, 0, 10, &c), -1);
    cr_expect_eq(pay_commission_refund(100, 10, -1, 10, &c), -1);
    cr_expect_eq(pay_commission_refund(100, 10, 0, -1, &c), -1);
    /* beyond the order */
    cr_expect_eq(pay_commission_refund(100, 10, 60, 41, &c), -1);
    cr_expect_eq(pay_commission_refund(100, 10, 101, 0, &c), -1);
    cr_expect_eq(pay_commission_refund(INT64_MAX, 10, INT64_MAX, 1, &c), -1);
    cr_expect_eq(pay_commission_refund(100, 10, 0, 10, NULL), -1);
}


/* xorshift64*, fixed seed */
static uint64_t  cm_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
cm_rand(void)
{
    cm_state ^= cm_state >> 12;
    cm_state ^= cm_state << 25;
    cm_state ^= cm_state >> 27;

    return cm_state * 0x2545f4914f6cdd1dULL;
}


/* 1..max, biased towards small amounts and the edges */
static int64_t
cm_amount(int64_t max)
{
    switch (cm_rand() % 4) {
    case 0:
        return 1 + (int64_t) (cm_rand() % 100);
    case 1:
        return 1 + (int64_t) (cm_rand() % 1000000);
    case 2:
        return max - (int64_t) (cm_rand() % 1000);
    default:
        return 1 + (int64_t) (cm_rand() % (uint64_t) max);
    }
}


Test(commission, full_refunds_in_random_pieces_give_back_exactly_c)
{
    int      i, bps, pieces;
    int64_t  a, fixed, c, before, r, part, got_c, got_seller;

    for (i = 0; i < 20000; i++) {
        a = cm_amount(CM_2_53);
        bps = (int) (cm_rand() % 10001);
        fixed = (cm_rand() % 3 == 0) ? 0 : (int64_t) (cm_rand() % 1000);

        cr_assert_eq(pay_commission(a, bps, fixed, &c), 0);
        cr_assert(c >= 0 && c <= a);

        before = 0;
        got_c = 0;
        got_seller = 0;
        pieces = 0;

        while (before < a) {
            /* a random piece, sometimes the rest, sometimes one unit */
            switch (cm_rand() % 4) {
            case 0:
                r = a - before;
                break;
            case 1:
                r = 1;
                break;
            default:
                r = 1 + (int64_t) (cm_rand() % (uint64_t) (a - before));
                break;
            }

            if (++pieces > 50) {
                r = a - before;
            }

            cr_assert_eq(pay_commission_refund(a, c, before, r, &part), 0);
            cr_assert(part >= 0 && part <= r, "part %lld of %lld",
                      (long long) part, (long long) r);

            got_c += part;
            got_seller += r - part;
            before += r;
        }

        cr_assert_eq(got_c, c, "A %lld bps %d fixed %lld", (long long) a,
                     bps, (long long) fixed);
        cr_assert_eq(got_seller, a - c);
    }
}


Test(commission, commission_grows_with_the_amount_and_never_passes_it)
{
    int      i, bps;
    int64_t  a, fixed, c1, c2;

    for (i = 0; i < 20000; i++) {
        a = cm_amount(CM_2_53 - 1);
        bps = (int) (cm_rand() % 10001);
        fixed = (int64_t) (cm_rand() % 500);

        cr_assert_eq(pay_commission(a, bps, fixed, &c1), 0);
        cr_assert_eq(pay_commission(a + 1, bps, fixed, &c2), 0);
        cr_assert(c1 <= a && c2 <= a + 1);
        cr_assert(c2 >= c1 && c2 - c1 <= 1);
        /* the seller's net never shrinks with a larger order either */
        cr_assert(a + 1 - c2 >= a - c1);
    }
}


Test(commission, balance_is_wallet_minus_pending_minus_disputes)
{
    int64_t  v;

    cr_assert_eq(pay_balance_available(10000, 2500, 1000, &v), 0);
    cr_expect_eq(v, 6500);
    cr_assert_eq(pay_balance_available(10000, 0, 0, &v), 0);
    cr_expect_eq(v, 10000);
    /* a pay-out needs amount <= available: it may be negative */
    cr_assert_eq(pay_balance_available(1000, 800, 500, &v), 0);
    cr_expect_eq(v, -300);
    cr_assert_eq(pay_balance_available(-200, 0, 0, &v), 0);
    cr_expect_eq(v, -200);
    cr_assert_eq(pay_balance_available(CM_2_53, CM_2_53, CM_2_53, &v), 0);
    cr_expect_eq(v, -CM_2_53);

    cr_expect_eq(pay_balance_available(100, -1, 0, &v), -1);
    cr_expect_eq(pay_balance_available(100, 0, -1, &v), -1);
    cr_expect_eq(pay_balance_available(INT64_MIN, 1, 0, &v), -1);
    cr_expect_eq(pay_balance_available(-2, INT64_MAX, 0, &v), -1);
    cr_expect_eq(pay_balance_available(0, 0, 0, NULL), -1);
}


Test(commission, balance_property_over_random_movements)
{
    int      i;
    int64_t  w, p, d, v;

    for (i = 0; i < 20000; i++) {
        w = (int64_t) (cm_rand() % (uint64_t) CM_2_53) - CM_2_53 / 2;
        p = (int64_t) (cm_rand() % (uint64_t) CM_2_53);
        d = (int64_t) (cm_rand() % (uint64_t) CM_2_53);

        cr_assert_eq(pay_balance_available(w, p, d, &v), 0);
        cr_assert_eq(v + p + d, w);
    }
}


/* Six refunds of 1 of an order of 6 with commission 3, the three whose
 * part was 0 undone after they succeeded, three more of 1: the commission
 * given back is 3, as taken (the standing refunds' amounts alone gave 5). */
Test(commission, refunds_undone_never_give_back_more_than_c)
{
    int      i;
    int64_t  part[6], booked, refunded;

    booked = 0;
    refunded = 0;

    for (i = 0; i < 6; i++) {
        cr_assert_eq(pay_commission_refund_share(6, 3, refunded, booked, 1,
                                                 &part[i]), 0);
        booked += part[i];
        refunded += 1;
    }

    cr_assert_eq(booked, 3);

    for (i = 0; i < 6; i++) {
        if (part[i] == 0) {
            booked -= part[i];
            refunded -= 1;
        }
    }

    for (i = 0; i < 3; i++) {
        cr_assert_eq(pay_commission_refund_share(6, 3, refunded, booked, 1,
                                                 &part[i]), 0);
        booked += part[i];
        refunded += 1;
    }

    cr_expect_eq(refunded, 6);
    cr_expect_eq(booked, 3, "commission given back %lld of 3",
                 (long long) booked);
}


#define CM_STANDING  64

/* Random sequences of refunds that succeed, refunds the PSP refuses
 * (nothing booked) and refunds undone after they succeeded: the
 * commission given back never exceeds C, the seller's share never exceeds
 * A - C, each part is within its refund, and refunding what is left gives
 * back exactly C and A - C. */
Test(commission, parts_over_refunds_failures_and_reversals_never_pass_c)
{
    int      i, step, k, n;
    int64_t  a, c, r, part, booked, refunded;
    int64_t  amt[CM_STANDING], got[CM_STANDING];

    for (i = 0; i < 20000; i++) {
        a = i % 2 ? 1 + (int64_t) (cm_rand() % 100) : cm_amount(CM_2_53);
        cr_assert_eq(pay_commission(a, (int) (cm_rand() % 10001),
                                    (int64_t) (cm_rand() % 50), &c), 0);

        n = 0;
        booked = 0;
        refunded = 0;

        for (step = 0; step < 40; step++) {
            if (n > 0 && cm_rand() % 3 == 0) {
                /* one standing refund fails after it succeeded: undone */
                k = (int) (cm_rand() % (uint64_t) n);
                refunded -= amt[k];
                booked -= got[k];
                amt[k] = amt[n - 1];
                got[k] = got[n - 1];
                n--;
                continue;
            }

            if (refunded == a || n == CM_STANDING) {
                continue;
            }

            r = cm_rand() % 2 ? 1
                : 1 + (int64_t) (cm_rand() % (uint64_t) (a - refunded));

            if (cm_rand() % 4 == 0) {
                /* refused by the PSP: nothing booked */
                continue;
            }

            cr_assert_eq(pay_commission_refund_share(a, c, refunded, booked,
                                                     r, &part), 0);
            cr_assert(part >= 0 && part <= r);

            amt[n] = r;
            got[n++] = part;
            refunded += r;
            booked += part;

            cr_assert(booked <= c, "A %lld C %lld: %lld given back",
                      (long long) a, (long long) c, (long long) booked);
            cr_assert(refunded - booked <= a - c);
        }

        if (refunded < a) {
            cr_assert_eq(pay_commission_refund_share(a, c, refunded, booked,
                                                     a - refunded, &part), 0);
            booked += part;
            refunded = a;
        }

        cr_assert_eq(booked, c, "A %lld: %lld of C %lld given back",
                     (long long) a, (long long) booked, (long long) c);
    }
}


Test(commission, bad_share_inputs_are_refused)
{
    int64_t  c;

    cr_expect_eq(pay_commission_refund_share(100, 10, 0, -1, 10, &c), -1);
    cr_expect_eq(pay_commission_refund_share(100, 10, 0, 11, 10, &c), -1);
    cr_expect_eq(pay_commission_refund_share(100, 10, 60, 0, 41, &c), -1);
    cr_expect_eq(pay_commission_refund_share(0, 0, 0, 0, 0, &c), -1);
    cr_expect_eq(pay_commission_refund_share(100, 10, 0, 0, 10, NULL), -1);
}
