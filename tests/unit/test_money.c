/*
 * Unit tests: currencies and amounts (src/money.c).
 */

#include <stdint.h>
#include <string.h>
#include <criterion/criterion.h>
#include <payments/money.h>


static pay_amount_rc_e
parse(const char *s, int exponent, int64_t *minor)
{
    return pay_amount_parse(s, strlen(s), exponent, minor);
}


/* currencies */

Test(money, currency_usd_has_exponent_2)
{
    const pay_currency_t  *c;

    c = pay_currency_find("USD", 3);
    cr_assert_not_null(c);
    cr_assert_str_eq(c->code, "USD");
    cr_assert_eq(c->exponent, 2);
}


Test(money, currency_zero_exponent_codes)
{
    static const char *const  codes[] = {
        "JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "BIF", "DJF",
        "GNF", "KMF", "PYG", "RWF", "UGX", "UYI", "VUV", "XPF", NULL
    };
    const char *const  *c;

    for (c = codes; *c != NULL; c++) {
        cr_assert_not_null(pay_currency_find(*c, 3), "%s", *c);
        cr_assert_eq(pay_currency_find(*c, 3)->exponent, 0, "%s", *c);
    }
}


Test(money, currency_three_exponent_codes)
{
    static const char *const  codes[] = {
        "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", NULL
    };
    const char *const  *c;

    for (c = codes; *c != NULL; c++) {
        cr_assert_not_null(pay_currency_find(*c, 3), "%s", *c);
        cr_assert_eq(pay_currency_find(*c, 3)->exponent, 3, "%s", *c);
    }
}


Test(money, currency_four_exponent_codes)
{
    cr_assert_eq(pay_currency_find("CLF", 3)->exponent, 4);
    cr_assert_eq(pay_currency_find("UYW", 3)->exponent, 4);
}


Test(money, currency_common_two_exponent_codes)
{
    static const char *const  codes[] = {
        "EUR", "GBP", "CHF", "CAD", "AUD", "CNY", "INR", "BRL", "MXN",
        "SEK", "NOK", "DKK", "PLN", "ZAR", "HUF", "IDR", "TWD", "YER",
        "XCD", "XCG", "ZWG", "SLE", "VES", NULL
    };
    const char *const  *c;

    for (c = codes; *c != NULL; c++) {
        cr_assert_not_null(pay_currency_find(*c, 3), "%s", *c);
        cr_assert_eq(pay_currency_find(*c, 3)->exponent, 2, "%s", *c);
    }
}


Test(money, currency_lower_case_refused)
{
    cr_assert_null(pay_currency_find("usd", 3));
    cr_assert_null(pay_currency_find("Usd", 3));
}


Test(money, currency_unknown_withdrawn_and_metals_refused)
{
    static const char *const  codes[] = {
        "XXX", "XTS", "XAU", "XAG", "XDR", "HRK", "ZWL", "DEM", "ABC",
        "US1", NULL
    };
    const char *const  *c;

    for (c = codes; *c != NULL; c++) {
        cr_assert_null(pay_currency_find(*c, 3), "%s", *c);
    }
}


Test(money, every_listed_code_is_found,
     .description = "of the 17,576 codes of three capital letters, the 168 "
                    "codes the table lists are found, each with its own "
                    "code, and no other: the table is searched by halves, "
                    "and a code out of order would be missed")
{
    char                   code[4];
    int                    a, b, c, found = 0;
    const pay_currency_t  *cur;

    code[3] = '\0';
    for (a = 'A'; a <= 'Z'; a++) {
        for (b = 'A'; b <= 'Z'; b++) {
            for (c = 'A'; c <= 'Z'; c++) {
                code[0] = (char) a;
                code[1] = (char) b;
                code[2] = (char) c;
                cur = pay_currency_find(code, 3);
                if (cur != NULL) {
                    cr_expect(memcmp(cur->code, code, 3) == 0, "%s", code);
                    found++;
                }
            }
        }
    }

    cr_expect_eq(found, 168);
}


Test(money, the_table_is_listed_in_code_order,
     .description = "pay_currency_at lists the 168 currencies in code "
                    "order, each the one pay_currency_find finds by its "
                    "code, then NULL")
{
    size_t                 i;
    const pay_currency_t  *cur, *prev;

    for (i = 0, prev = NULL; (cur = pay_currency_at(i)) != NULL; i++) {
        cr_expect_eq(pay_currency_find(cur->code, 3), cur, "%s", cur->code);
        if (prev != NULL) {
            cr_expect_lt(memcmp(prev->code, cur->code, 3), 0, "%s %s",
                         prev->code, cur->code);
        }
        prev = cur;
    }

    cr_expect_eq(i, 168);
    cr_expect_null(pay_currency_at(168));
    cr_expect_null(pay_currency_at((size_t) -1));
}


Test(money, currency_length_must_be_three)
{
    cr_assert_null(pay_currency_find("USDX", 4));
    cr_assert_null(pay_currency_find("US", 2));
    cr_assert_null(pay_currency_find("", 0));
    cr_assert_null(pay_currency_find(NULL, 3));
    /* not NUL-terminated: only len bytes count */
    cr_assert_not_null(pay_currency_find("USDollar", 3));
}


/* amount grammar: API.md examples */

Test(money, amount_10_10_5_10_50_same_usd)
{
    int64_t  a = 0, b = 0, c = 0;

    cr_assert_eq(parse("10", 2, &a), PAY_AMOUNT_OK);
    cr_assert_eq(parse("10.5", 2, &b), PAY_AMOUNT_OK);
    cr_assert_eq(parse("10.50", 2, &c), PAY_AMOUNT_OK);
    cr_assert_eq(a, 1000);
    cr_assert_eq(b, 1050);
    cr_assert_eq(c, 1050);
}


Test(money, amount_leading_zero_refused)
{
    int64_t  m = 7;

    cr_assert_eq(parse("010.00", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("00", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("01", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(m, 7);
}


Test(money, amount_sign_refused)
{
    int64_t  m;

    cr_assert_eq(parse("+10", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("-10", 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_exponent_notation_refused)
{
    int64_t  m;

    cr_assert_eq(parse("1e3", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1E3", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1.0e1", 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_whitespace_refused)
{
    int64_t  m;

    cr_assert_eq(parse(" 10", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("10 ", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1 0", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("\t10", 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_comma_refused)
{
    int64_t  m;

    cr_assert_eq(parse("10,00", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1,000.00", 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_dot_forms_refused)
{
    int64_t  m;

    cr_assert_eq(parse("10.", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse(".5", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse(".", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1.2.3", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1..2", 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_empty_and_garbage_refused)
{
    int64_t  m;

    cr_assert_eq(parse("", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("abc", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("0x10", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("NaN", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("Infinity", 2, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(pay_amount_parse(NULL, 2, 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_embedded_nul_refused)
{
    int64_t  m;

    cr_assert_eq(pay_amount_parse("10\0" "5", 4, 2, &m), PAY_AMOUNT_SYNTAX);
}


Test(money, amount_not_nul_terminated_uses_len)
{
    int64_t  m = 0;

    cr_assert_eq(pay_amount_parse("12.34xyz", 5, 2, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 1234);
}


Test(money, amount_syntax_wins_over_precision)
{
    int64_t  m;

    cr_assert_eq(parse("1.000e5", 2, &m), PAY_AMOUNT_SYNTAX);
}


/* precision */

Test(money, amount_trailing_zeros_count_as_decimals)
{
    int64_t  m;

    cr_assert_eq(parse("10.500", 2, &m), PAY_AMOUNT_PRECISION);
    cr_assert_eq(parse("10.000", 2, &m), PAY_AMOUNT_PRECISION);
}


Test(money, amount_jpy_has_no_decimals)
{
    int64_t  m = 0;

    cr_assert_eq(parse("10.5", 0, &m), PAY_AMOUNT_PRECISION);
    cr_assert_eq(parse("10.0", 0, &m), PAY_AMOUNT_PRECISION);
    cr_assert_eq(parse("10", 0, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 10);
}


Test(money, amount_kwd_three_decimals)
{
    int64_t  m = 0;

    cr_assert_eq(parse("1.234", 3, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 1234);
    cr_assert_eq(parse("1.2345", 3, &m), PAY_AMOUNT_PRECISION);
    cr_assert_eq(parse("1.2", 3, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 1200);
}


Test(money, amount_clf_four_decimals)
{
    int64_t  m = 0;

    cr_assert_eq(parse("0.0001", 4, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 1);
    cr_assert_eq(parse("0.00001", 4, &m), PAY_AMOUNT_PRECISION);
}


/* value */

Test(money, amount_zero_refused)
{
    int64_t  m = 7;

    cr_assert_eq(parse("0", 2, &m), PAY_AMOUNT_ZERO);
    cr_assert_eq(parse("0.0", 2, &m), PAY_AMOUNT_ZERO);
    cr_assert_eq(parse("0.00", 2, &m), PAY_AMOUNT_ZERO);
    cr_assert_eq(parse("0", 0, &m), PAY_AMOUNT_ZERO);
    cr_assert_eq(m, 7);
}


Test(money, amount_smallest_unit)
{
    int64_t  m = 0;

    cr_assert_eq(parse("0.01", 2, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 1);
    cr_assert_eq(parse("0.1", 2, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, 10);
}


Test(money, amount_int64_max_boundary)
{
    int64_t  m = 0;

    cr_assert_eq(parse("92233720368547758.07", 2, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, INT64_MAX);
    cr_assert_eq(parse("9223372036854775807", 0, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, INT64_MAX);
    cr_assert_eq(parse("9223372036854775.807", 3, &m), PAY_AMOUNT_OK);
    cr_assert_eq(m, INT64_MAX);
}


Test(money, amount_one_past_int64_max_overflows)
{
    int64_t  m = 7;

    cr_assert_eq(parse("92233720368547758.08", 2, &m), PAY_AMOUNT_OVERFLOW);
    cr_assert_eq(parse("9223372036854775808", 0, &m), PAY_AMOUNT_OVERFLOW);
    cr_assert_eq(parse("92233720368547759", 2, &m), PAY_AMOUNT_OVERFLOW);
    cr_assert_eq(m, 7);
}


Test(money, amount_overflow_by_scaling)
{
    int64_t  m;

    /* fits as digits, overflows once scaled to minor units */
    cr_assert_eq(parse("922337203685477581", 2, &m), PAY_AMOUNT_OVERFLOW);
    cr_assert_eq(parse("92233720368547758.1", 2, &m), PAY_AMOUNT_OVERFLOW);
}


Test(money, amount_huge_overflows)
{
    int64_t  m;
    char     big[200];

    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(parse(big, 2, &m), PAY_AMOUNT_OVERFLOW);
}


Test(money, amount_bad_exponent_refused)
{
    int64_t  m;

    cr_assert_eq(parse("1", -1, &m), PAY_AMOUNT_SYNTAX);
    cr_assert_eq(parse("1", 19, &m), PAY_AMOUNT_SYNTAX);
}


/* format */

Test(money, format_two_decimals)
{
    char  buf[32];

    cr_assert_eq(pay_amount_format(1050, 2, buf, sizeof(buf)), 5);
    cr_assert_str_eq(buf, "10.50");
    cr_assert_eq(pay_amount_format(1, 2, buf, sizeof(buf)), 4);
    cr_assert_str_eq(buf, "0.01");
    cr_assert_eq(pay_amount_format(0, 2, buf, sizeof(buf)), 4);
    cr_assert_str_eq(buf, "0.00");
}


Test(money, format_zero_exponent)
{
    char  buf[32];

    cr_assert_eq(pay_amount_format(5, 0, buf, sizeof(buf)), 1);
    cr_assert_str_eq(buf, "5");
}


Test(money, format_three_and_four_decimals)
{
    char  buf[32];

    cr_assert_eq(pay_amount_format(1234, 3, buf, sizeof(buf)), 5);
    cr_assert_str_eq(buf, "1.234");
    cr_assert_eq(pay_amount_format(5, 3, buf, sizeof(buf)), 5);
    cr_assert_str_eq(buf, "0.005");
    cr_assert_eq(pay_amount_format(12345, 4, buf, sizeof(buf)), 6);
    cr_assert_str_eq(buf, "1.2345");
}


Test(money, format_int64_max)
{
    char  buf[32];

    cr_assert_eq(pay_amount_format(INT64_MAX, 2, buf, sizeof(buf)), 20);
    cr_assert_str_eq(buf, "92233720368547758.07");
}


Test(money, format_buffer_too_small)
{
    char  buf[5];

    cr_assert_eq(pay_amount_format(1050, 2, buf, sizeof(buf)), -1);
    cr_assert_eq(pay_amount_format(105, 2, buf, sizeof(buf)), 4);
    cr_assert_str_eq(buf, "1.05");
}


Test(money, format_negative_refused)
{
    char  buf[32];

    cr_assert_eq(pay_amount_format(-1, 2, buf, sizeof(buf)), -1);
    cr_assert_eq(pay_amount_format(1, -1, buf, sizeof(buf)), -1);
}


Test(money, format_then_parse_round_trips)
{
    static const int64_t  values[] = {
        1, 9, 10, 99, 100, 101, 1050, 123456789, INT64_MAX - 1, INT64_MAX
    };
    char     buf[32];
    size_t   i;
    int      e, n;
    int64_t  m;

    for (e = 0; e <= 4; e++) {
        for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            n = pay_amount_format(values[i], e, buf, sizeof(buf));
            cr_assert_gt(n, 0);
            cr_assert_eq(pay_amount_parse(buf, (size_t) n, e, &m),
                         PAY_AMOUNT_OK, "%s", buf);
            cr_assert_eq(m, values[i]);
        }
    }
}
