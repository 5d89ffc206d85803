/*
 * PSP minor units are not ISO 4217 minor units (issue 15): each dialect
 * converts exactly, both ways, and refuses what it cannot convert.
 */
#include <string.h>
#include <criterion/criterion.h>
#include <payments/money.h>
#include <payments/psp.h>


Test(psp_units, stripe_exponents_follow_stripes_lists)
{
    /* zero-decimal at Stripe */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "JPY"), 0);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "MGA"), 0);  /* ISO 2 */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "UGX"), 0);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "CLP"), 0);
    /* two-decimal at Stripe whatever ISO says */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "ISK"), 2);  /* ISO 0 */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "USD"), 2);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "HUF"), 2);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "IQD"), 2);  /* ISO 3 */
    /* three-decimal at Stripe */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "KWD"), 3);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "TND"), 3);
    /* not a currency */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "XTS"), -1);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, "usd"), -1);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_STRIPE, NULL), -1);
}


Test(psp_units, adyen_differs_from_iso_in_four_currencies)
{
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "CLP"), 2);   /* ISO 0 */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "CVE"), 0);   /* ISO 2 */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "IDR"), 0);   /* ISO 2 */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "ISK"), 2);   /* ISO 0 */
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "MGA"), 2);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "JPY"), 0);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "KWD"), 3);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_ADYEN, "EUR"), 2);
}


Test(psp_units, generic_is_iso)
{
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_GENERIC, "ISK"), 0);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_GENERIC, "MGA"), 2);
    cr_expect_eq(pay_psp_exponent(PAY_DIALECT_GENERIC, "CLF"), 4);
    cr_expect_eq(pay_psp_exponent(0, "USD"), -1);
}


Test(psp_units, the_reviewers_examples_convert_right)
{
    int64_t  v;

    /* "500" ISK: 500 ISO minor units, 50000 at Stripe (not 500 = 5 ISK) */
    cr_assert_eq(pay_psp_amount_to_psp(PAY_DIALECT_STRIPE, "ISK", 500, &v), 0);
    cr_expect_eq(v, 50000);
    /* "10.00" MGA: 1000 ISO minor units, 10 at Stripe (not 1000 MGA) */
    cr_assert_eq(pay_psp_amount_to_psp(PAY_DIALECT_STRIPE, "MGA", 1000, &v),
                 0);
    cr_expect_eq(v, 10);
    /* "1000" CLP: 100000 at Adyen */
    cr_assert_eq(pay_psp_amount_to_psp(PAY_DIALECT_ADYEN, "CLP", 1000, &v), 0);
    cr_expect_eq(v, 100000);
    /* "10.00" CVE: 10 at Adyen */
    cr_assert_eq(pay_psp_amount_to_psp(PAY_DIALECT_ADYEN, "CVE", 1000, &v), 0);
    cr_expect_eq(v, 10);
    /* and back */
    cr_assert_eq(pay_psp_amount_from_psp(PAY_DIALECT_STRIPE, "ISK", 50000, &v),
                 0);
    cr_expect_eq(v, 500);
    cr_assert_eq(pay_psp_amount_from_psp(PAY_DIALECT_ADYEN, "CVE", 10, &v), 0);
    cr_expect_eq(v, 1000);
}


Test(psp_units, inexact_conversions_are_refused)
{
    int64_t  v = 42;

    /* 10.50 MGA has no value in Stripe's whole ariary */
    cr_expect_eq(pay_psp_amount_to_psp(PAY_DIALECT_STRIPE, "MGA", 1050, &v),
                 -1);
    /* 10.50 IDR, 10.50 CVE have none in Adyen's whole units */
    cr_expect_eq(pay_psp_amount_to_psp(PAY_DIALECT_ADYEN, "IDR", 1050, &v),
                 -1);
    cr_expect_eq(pay_psp_amount_to_psp(PAY_DIALECT_ADYEN, "CVE", 1001, &v),
                 -1);
    /* 1.005 IQD (ISO 3) is not whole cents at Stripe */
    cr_expect_eq(pay_psp_amount_to_psp(PAY_DIALECT_STRIPE, "IQD", 1005, &v),
                 -1);
    /* back: 500.50 ISK from Stripe has no ISO value */
    cr_expect_eq(pay_psp_amount_from_psp(PAY_DIALECT_STRIPE, "ISK", 50050,
                                         &v), -1);
    cr_expect_eq(v, 42, "nothing written on a refusal");

    /* overflow is refused, never wrapped */
    cr_expect_eq(pay_psp_amount_to_psp(PAY_DIALECT_STRIPE, "ISK",
                                       INT64_MAX / 10, &v), -1);
    cr_expect_eq(pay_amount_rescale(-1, 2, 2, &v), -1);
    cr_expect_eq(pay_amount_rescale(1, 0, 19, &v), -1);
}


Test(psp_units, amount_supported_means_exactly_convertible)
{
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "MGA", 1000), 1);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "MGA", 1050), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_STRIPE, "ISK", 1), 1);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_ADYEN, "IDR", 1050), 0);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_ADYEN, "IDR", 1000), 1);
    cr_expect_eq(pay_psp_amount_supported(PAY_DIALECT_GENERIC, "IDR", 1050),
                 1);
}


/* A checkout of n orders of amount each, in currency. */
static void
pu_checkout(pay_checkout_t *co, pay_order_t *orders, size_t n,
    const char *currency, int64_t amount)
{
    size_t  i;

    memset(co, 0, sizeof(*co));
    memcpy(co->currency, currency, 4);
    co->orders = orders;
    co->norders = n;

    for (i = 0; i < n; i++) {
        memset(&orders[i], 0, sizeof(orders[i]));
        orders[i].amount = amount;
        co->total += amount;
    }
}


/* Two orders of 50000000000000000 ISK are each 5 * 10^18 hundredths at
 * Adyen, below 2^63; their total, 10^19, is not.  The session (and an
 * off-session charge) carries the total in Adyen's units: refused as
 * invalid_amount with the orders, never a request that cannot be built
 * (a 500 the client retries for ever). */
Test(psp_units, a_total_beyond_int64_in_the_psps_units_is_invalid_amount)
{
    pay_order_t     orders[2];
    pay_checkout_t  co;
    pay_verdict_t   v;

    pu_checkout(&co, orders, 2, "ISK", 50000000000000000LL);

    cr_assert_eq(pay_psp_amount_supported(PAY_DIALECT_ADYEN, "ISK",
                                          orders[0].amount), 1,
                 "each order alone fits");
    cr_assert_eq(pay_psp_checkout_amounts(PAY_DIALECT_ADYEN, &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_expect(strstr(v.detail, "the sum of payment_orders amounts is too "
                               "large for this PSP") != NULL, "%s",
              v.detail);
    cr_expect(strstr(v.detail, "ISK") != NULL, "%s", v.detail);

    /* Stripe counts ISK in hundredths too; generic in ISO's units, where
     * the total fits */
    cr_expect_eq(pay_psp_checkout_amounts(PAY_DIALECT_STRIPE, &co, &v), -1);
    cr_expect_eq(pay_psp_checkout_amounts(PAY_DIALECT_GENERIC, &co, &v), 0);

    /* the largest total Adyen can be sent passes */
    pu_checkout(&co, orders, 2, "ISK", INT64_MAX / 100 / 2);
    cr_expect_eq(pay_psp_checkout_amounts(PAY_DIALECT_ADYEN, &co, &v), 0,
                 "%s", v.detail);
}


/* One order beyond 2^63 in the PSP's units is too large, not an amount
 * that must "end in 0". */
Test(psp_units, one_order_beyond_int64_in_the_psps_units_is_too_large)
{
    pay_order_t     orders[1];
    pay_checkout_t  co;
    pay_verdict_t   v;

    pu_checkout(&co, orders, 1, "ISK", INT64_MAX / 10);

    cr_assert_eq(pay_psp_checkout_amounts(PAY_DIALECT_ADYEN, &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_expect(strstr(v.detail, "payment_orders[0].amount is too large for "
                               "this PSP") != NULL, "%s", v.detail);
    cr_expect(strstr(v.detail, "end in 0") == NULL, "%s", v.detail);
}


/* What a PSP cannot express exactly says why: fewer decimals there, or
 * Stripe's three-decimal amounts that must end in 0. */
Test(psp_units, an_order_the_psp_cannot_express_says_why)
{
    pay_order_t     orders[2];
    pay_checkout_t  co;
    pay_verdict_t   v;

    /* 10.50 IDR: Adyen counts whole rupiah */
    pu_checkout(&co, orders, 2, "IDR", 1000);
    orders[1].amount = 1050;
    co.total = 2050;
    cr_assert_eq(pay_psp_checkout_amounts(PAY_DIALECT_ADYEN, &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_expect(strstr(v.detail, "payment_orders[1].amount") != NULL, "%s",
              v.detail);
    cr_expect(strstr(v.detail, "IDR with 0 decimals") != NULL, "%s",
              v.detail);

    /* 1.255 KWD at Stripe */
    pu_checkout(&co, orders, 1, "KWD", 1255);
    cr_assert_eq(pay_psp_checkout_amounts(PAY_DIALECT_STRIPE, &co, &v), -1);
    cr_expect(strstr(v.detail, "payment_orders[0].amount: this PSP needs "
                               "KWD amounts to end in 0") != NULL, "%s",
              v.detail);

    /* the same checkouts another PSP takes */
    cr_expect_eq(pay_psp_checkout_amounts(PAY_DIALECT_ADYEN, &co, &v), 0);

    /* a save without a charge has no orders */
    pu_checkout(&co, orders, 0, "EUR", 0);
    co.setup = 1;
    cr_expect_eq(pay_psp_checkout_amounts(PAY_DIALECT_ADYEN, &co, &v), 0);
}


/* The PSP's unit: the smallest amount it takes in a currency, in ISO
 * minor units (a capture without an amount is rounded down to it). */
Test(psp_units, the_psps_unit_is_its_smallest_amount)
{
    /* whole units of a two-decimal currency */
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, "IDR"), 100);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, "CVE"), 100);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "MGA"), 100);
    /* Stripe's three-decimal amounts end in 0; IQD in its hundredths */
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "KWD"), 10);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "BHD"), 10);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "IQD"), 10);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "CLF"), 100);
    /* ISO's units, or finer */
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, "USD"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, "KWD"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, "ISK"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "IDR"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "JPY"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_STRIPE, "ISK"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_GENERIC, "IDR"), 1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_GENERIC, "CLF"), 1);
    /* not a currency, not a dialect */
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, "XTS"), -1);
    cr_expect_eq(pay_psp_unit(PAY_DIALECT_ADYEN, NULL), -1);
    cr_expect_eq(pay_psp_unit(0, "USD"), -1);
}


/* For every currency and dialect: every multiple of the unit is taken,
 * and nothing between two multiples, so that rounding down to it gives
 * the largest amount the PSP takes. */
Test(psp_units, the_psp_takes_the_multiples_of_its_unit_and_nothing_else)
{
    int             d, n;
    char            c[4];
    int64_t         u, k, r;
    pay_dialect_e   ds[] = { PAY_DIALECT_STRIPE, PAY_DIALECT_ADYEN,
                             PAY_DIALECT_GENERIC };

    n = 0;
    c[3] = '\0';

    for (c[0] = 'A'; c[0] <= 'Z'; c[0]++) {
        for (c[1] = 'A'; c[1] <= 'Z'; c[1]++) {
            for (c[2] = 'A'; c[2] <= 'Z'; c[2]++) {
                if (pay_currency_find(c, 3) == NULL) {
                    continue;
                }

                n++;

                for (d = 0; d < 3; d++) {
                    u = pay_psp_unit(ds[d], c);
                    cr_assert(u == 1 || u == 10 || u == 100, "%s at %d: %ld",
                              c, (int) ds[d], (long) u);

                    for (k = 1; k <= 12; k++) {
                        cr_expect(pay_psp_amount_supported(ds[d], c, k * u),
                                  "%s at %d: %ld", c, (int) ds[d],
                                  (long) (k * u));

                        for (r = 1; r < u; r += (u > 10 ? 7 : 1)) {
                            cr_expect(!pay_psp_amount_supported(ds[d], c,
                                                                k * u + r),
                                      "%s at %d: %ld", c, (int) ds[d],
                                      (long) (k * u + r));
                        }
                    }
                }
            }
        }
    }

    cr_expect_gt(n, 150, "%d currencies", n);
}
