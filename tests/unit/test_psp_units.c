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
