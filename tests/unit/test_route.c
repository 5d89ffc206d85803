/*
 * Routing (route.h, dialect.h): the order a route asks its PSPs in is the
 * same for every retry of a checkout and follows the weights; which
 * outcomes of a registration prove that no session was made, per dialect;
 * which currencies a dialect takes in exact minor units.
 */
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include <payments/dialect.h>
#include <payments/route.h>


Test(route, the_same_checkout_always_gets_the_same_order)
{
    size_t          a[3], b[3];
    const unsigned  w[3] = { 70, 30, 0 };

    pay_route_order(w, 3, "m_1:co_42", a);
    pay_route_order(w, 3, "m_1:co_42", b);

    cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    /* the one of weight 0 is never first, and every PSP comes once */
    cr_assert_neq(a[0], 2);
    cr_assert_eq(a[0] + a[1] + a[2], 3);
}


Test(route, a_70_30_split_lands_within_two_percent_over_10000_checkouts)
{
    int             i, first[2] = { 0, 0 };
    char            key[64];
    size_t          order[2];
    const unsigned  w[2] = { 70, 30 };

    for (i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "m_route:co_%d", i);
        pay_route_order(w, 2, key, order);
        first[order[0]]++;
        cr_assert_eq(order[1], 1 - order[0]);
    }

    cr_assert(first[0] >= 6800 && first[0] <= 7200, "stripe %d of 10000",
              first[0]);
}


Test(route, without_weights_the_first_listed_goes_first_and_the_rest_follow)
{
    size_t          order[3];
    const unsigned  w[3] = { 0, 0, 0 };

    pay_route_order(w, 3, "m:co", order);
    cr_assert_eq(order[0], 0);
    cr_assert_eq(order[1], 1);
    cr_assert_eq(order[2], 2);
}


Test(route, what_proves_no_session_was_made)
{
    const pay_dialect_t  *s = &pay_dialect_stripe;

    /* never connected: for every dialect */
    cr_assert_str_eq(pay_dialect_no_session(s, 0, 0, PAY_PSP_RETRY, 0),
                     "connect_refused");
    cr_assert_str_eq(pay_dialect_no_session(s, 1, 400, PAY_PSP_REFUSED, 0),
                     "refused");
    cr_assert_str_eq(pay_dialect_no_session(s, 1, 429, PAY_PSP_RETRY, 0),
                     "throttled");

    /* ambiguous: a timeout or dropped answer (connected, status 0), a
     * 5xx, the key held by another attempt, our credentials */
    cr_assert_null(pay_dialect_no_session(s, 1, 0, PAY_PSP_RETRY, 0));
    cr_assert_null(pay_dialect_no_session(s, 1, 500, PAY_PSP_RETRY, 0));
    cr_assert_null(pay_dialect_no_session(s, 1, 503, PAY_PSP_RETRY, 0));
    cr_assert_null(pay_dialect_no_session(s, 1, 409, PAY_PSP_RETRY, 0));
    cr_assert_null(pay_dialect_no_session(&pay_dialect_adyen, 1, 422,
                                          PAY_PSP_RETRY, 1));
    cr_assert_null(pay_dialect_no_session(s, 1, 401, PAY_PSP_AUTH, 0));
    cr_assert_null(pay_dialect_no_session(s, 1, 200, PAY_PSP_CREATED, 0));
}


Test(route, a_5xx_proves_nothing_unless_the_dialect_documents_it)
{
    pay_dialect_t  d;

    memcpy(&d, &pay_dialect_generic, sizeof(d));
    cr_assert_null(pay_dialect_no_session(&d, 1, 503, PAY_PSP_RETRY, 0));

    d.no_session_5xx[0] = 503;
    cr_assert_str_eq(pay_dialect_no_session(&d, 1, 503, PAY_PSP_RETRY, 0),
                     "psp_5xx_nothing_made");
    cr_assert_null(pay_dialect_no_session(&d, 1, 500, PAY_PSP_RETRY, 0));

    d.no_session = 0;
    cr_assert_null(pay_dialect_no_session(&d, 1, 400, PAY_PSP_REFUSED, 0));
}


Test(route, currencies_a_dialect_takes_in_exact_minor_units)
{
    cr_assert(pay_dialect_currency_exact(&pay_dialect_stripe, "EUR"));
    cr_assert(pay_dialect_currency_exact(&pay_dialect_stripe, "JPY"));
    cr_assert(pay_dialect_currency_exact(&pay_dialect_stripe, "ISK"));
    /* three decimals in tens only; MGA without decimals */
    cr_assert_not(pay_dialect_currency_exact(&pay_dialect_stripe, "KWD"));
    cr_assert_not(pay_dialect_currency_exact(&pay_dialect_stripe, "MGA"));
    cr_assert(pay_dialect_currency_exact(&pay_dialect_adyen, "KWD"));
    cr_assert_not(pay_dialect_currency_exact(&pay_dialect_adyen, "IDR"));
    cr_assert(pay_dialect_currency_exact(&pay_dialect_generic, "IDR"));
    cr_assert_not(pay_dialect_currency_exact(&pay_dialect_generic, "XXY"));
}
