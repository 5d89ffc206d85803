/*
 * ngx_payments core: money.  Integer minor units only, parsed and printed
 * digit by digit: binary fractions cannot hold every int64 exactly and
 * round decimal amounts.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <payments/money.h>


/*
 * Active ISO 4217 codes (list one) with their minor-unit exponents.
 *
 * Left out on purpose: codes with no minor unit defined ("N.A.": XAU, XAG,
 * XPD, XPT, XBA-XBD, XDR, XSU, XUA), the test and "no currency" codes (XTS,
 * XXX), and withdrawn codes (HRK since 2023, ZWL since 2024).  The
 * exponents are ISO's, not a PSP's habits: ISO gives HUF, IDR and TWD two
 * decimals even where cash has none.  In code order: pay_currency_find
 * searches it by halves.
 */
static const pay_currency_t  pay_currencies[] = {
    { "AED", 2 }, { "AFN", 2 }, { "ALL", 2 }, { "AMD", 2 }, { "ANG", 2 },
    { "AOA", 2 }, { "ARS", 2 }, { "AUD", 2 }, { "AWG", 2 }, { "AZN", 2 },
    { "BAM", 2 }, { "BBD", 2 }, { "BDT", 2 }, { "BGN", 2 }, { "BHD", 3 },
    { "BIF", 0 }, { "BMD", 2 }, { "BND", 2 }, { "BOB", 2 }, { "BOV", 2 },
    { "BRL", 2 }, { "BSD", 2 }, { "BTN", 2 }, { "BWP", 2 }, { "BYN", 2 },
    { "BZD", 2 }, { "CAD", 2 }, { "CDF", 2 }, { "CHE", 2 }, { "CHF", 2 },
    { "CHW", 2 }, { "CLF", 4 }, { "CLP", 0 }, { "CNY", 2 }, { "COP", 2 },
    { "COU", 2 }, { "CRC", 2 }, { "CUC", 2 }, { "CUP", 2 }, { "CVE", 2 },
    { "CZK", 2 }, { "DJF", 0 }, { "DKK", 2 }, { "DOP", 2 }, { "DZD", 2 },
    { "EGP", 2 }, { "ERN", 2 }, { "ETB", 2 }, { "EUR", 2 }, { "FJD", 2 },
    { "FKP", 2 }, { "GBP", 2 }, { "GEL", 2 }, { "GHS", 2 }, { "GIP", 2 },
    { "GMD", 2 }, { "GNF", 0 }, { "GTQ", 2 }, { "GYD", 2 }, { "HKD", 2 },
    { "HNL", 2 }, { "HTG", 2 }, { "HUF", 2 }, { "IDR", 2 }, { "ILS", 2 },
    { "INR", 2 }, { "IQD", 3 }, { "IRR", 2 }, { "ISK", 0 }, { "JMD", 2 },
    { "JOD", 3 }, { "JPY", 0 }, { "KES", 2 }, { "KGS", 2 }, { "KHR", 2 },
    { "KMF", 0 }, { "KPW", 2 }, { "KRW", 0 }, { "KWD", 3 }, { "KYD", 2 },
    { "KZT", 2 }, { "LAK", 2 }, { "LBP", 2 }, { "LKR", 2 }, { "LRD", 2 },
    { "LSL", 2 }, { "LYD", 3 }, { "MAD", 2 }, { "MDL", 2 }, { "MGA", 2 },
    { "MKD", 2 }, { "MMK", 2 }, { "MNT", 2 }, { "MOP", 2 }, { "MRU", 2 },
    { "MUR", 2 }, { "MVR", 2 }, { "MWK", 2 }, { "MXN", 2 }, { "MXV", 2 },
    { "MYR", 2 }, { "MZN", 2 }, { "NAD", 2 }, { "NGN", 2 }, { "NIO", 2 },
    { "NOK", 2 }, { "NPR", 2 }, { "NZD", 2 }, { "OMR", 3 }, { "PAB", 2 },
    { "PEN", 2 }, { "PGK", 2 }, { "PHP", 2 }, { "PKR", 2 }, { "PLN", 2 },
    { "PYG", 0 }, { "QAR", 2 }, { "RON", 2 }, { "RSD", 2 }, { "RUB", 2 },
    { "RWF", 0 }, { "SAR", 2 }, { "SBD", 2 }, { "SCR", 2 }, { "SDG", 2 },
    { "SEK", 2 }, { "SGD", 2 }, { "SHP", 2 }, { "SLE", 2 }, { "SLL", 2 },
    { "SOS", 2 }, { "SRD", 2 }, { "SSP", 2 }, { "STN", 2 }, { "SVC", 2 },
    { "SYP", 2 }, { "SZL", 2 }, { "THB", 2 }, { "TJS", 2 }, { "TMT", 2 },
    { "TND", 3 }, { "TOP", 2 }, { "TRY", 2 }, { "TTD", 2 }, { "TWD", 2 },
    { "TZS", 2 }, { "UAH", 2 }, { "UGX", 0 }, { "USD", 2 }, { "USN", 2 },
    { "UYI", 0 }, { "UYU", 2 }, { "UYW", 4 }, { "UZS", 2 }, { "VED", 2 },
    { "VES", 2 }, { "VND", 0 }, { "VUV", 0 }, { "WST", 2 }, { "XAF", 0 },
    { "XCD", 2 }, { "XCG", 2 }, { "XOF", 0 }, { "XPF", 0 }, { "YER", 2 },
    { "ZAR", 2 }, { "ZMW", 2 }, { "ZWG", 2 },
};

#define PAY_NCURRENCIES  (sizeof(pay_currencies) / sizeof(pay_currencies[0]))

/* 10^18 is the largest power of ten an int64 holds. */
#define PAY_EXPONENT_MAX  18


const pay_currency_t *
pay_currency_at(size_t i)
{
    return i < PAY_NCURRENCIES ? &pay_currencies[i] : NULL;
}


const pay_currency_t *
pay_currency_find(const char *code, size_t len)
{
    int     cmp;
    size_t  i, lo, hi;

    if (code == NULL || len != 3) {
        return NULL;
    }

    /* A binary search of the table, which is in code order (the unit test
     * money::every_listed_code_is_found fails for a code out of order): a
     * registration looks codes up about twenty times, and a linear search
     * cost it 18,000 instructions (bench/RESULTS.md). */
    lo = 0;
    hi = PAY_NCURRENCIES;

    while (lo < hi) {
        i = lo + (hi - lo) / 2;
        cmp = memcmp(pay_currencies[i].code, code, 3);

        if (cmp == 0) {
            return &pay_currencies[i];
        }

        if (cmp < 0) {
            lo = i + 1;

        } else {
            hi = i;
        }
    }

    return NULL;
}


/* *acc = *acc * 10 + digit, refusing to pass INT64_MAX. */
static int
pay_mul10_add(int64_t *acc, int digit)
{
    if (*acc > (INT64_MAX - digit) / 10) {
        return -1;
    }

    *acc = *acc * 10 + digit;

    return 0;
}


pay_amount_rc_e
pay_amount_parse(const char *s, size_t len, int exponent, int64_t *minor)
{
    size_t   i, int_end, nfrac;
    int64_t  acc;
    int      k, overflow;

    if (s == NULL || minor == NULL || len == 0
        || exponent < 0 || exponent > PAY_EXPONENT_MAX)
    {
        return PAY_AMOUNT_SYNTAX;
    }

    /* The whole grammar first, so that "1e3" is a syntax error and never
     * an overflow or precision one. */

    /* integer part: 0 | [1-9][0-9]* */
    if (s[0] < '0' || s[0] > '9') {
        return PAY_AMOUNT_SYNTAX;
    }

    if (s[0] == '0') {
        i = 1;

    } else {
        for (i = 1; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* void */
        }
    }

    int_end = i;
    nfrac = 0;

    /* fraction: (\.[0-9]+)? */
    if (i < len) {
        if (s[i] != '.') {
            return PAY_AMOUNT_SYNTAX;
        }

        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            nfrac++;
        }

        if (nfrac == 0 || i != len) {
            return PAY_AMOUNT_SYNTAX;
        }
    }

    /* Trailing zeros count: "10.500" is three decimals whatever it's
     * worth, and USD has two. */
    if (nfrac > (size_t) exponent) {
        return PAY_AMOUNT_PRECISION;
    }

    acc = 0;
    overflow = 0;

    for (i = 0; i < int_end && !overflow; i++) {
        overflow = pay_mul10_add(&acc, s[i] - '0');
    }

    for (i = int_end + 1; i < len && !overflow; i++) {
        overflow = pay_mul10_add(&acc, s[i] - '0');
    }

    for (k = (int) nfrac; k < exponent && !overflow; k++) {
        overflow = pay_mul10_add(&acc, 0);
    }

    if (overflow) {
        return PAY_AMOUNT_OVERFLOW;
    }

    if (acc == 0) {
        return PAY_AMOUNT_ZERO;
    }

    *minor = acc;

    return PAY_AMOUNT_OK;
}


int
pay_amount_format(int64_t minor, int exponent, char *buf, size_t size)
{
    int      n, k;
    int64_t  scale;

    if (buf == NULL || size == 0 || minor < 0
        || exponent < 0 || exponent > PAY_EXPONENT_MAX)
    {
        return -1;
    }

    if (exponent == 0) {
        n = snprintf(buf, size, "%" PRId64, minor);

    } else {
        scale = 1;
        for (k = 0; k < exponent; k++) {
            scale *= 10;
        }

        n = snprintf(buf, size, "%" PRId64 ".%0*" PRId64,
                     minor / scale, exponent, minor % scale);
    }

    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    return n;
}


int
pay_amount_rescale(int64_t minor, int from_exp, int to_exp, int64_t *out)
{
    int      k;
    int64_t  scale;

    if (out == NULL || minor < 0
        || from_exp < 0 || from_exp > PAY_EXPONENT_MAX
        || to_exp < 0 || to_exp > PAY_EXPONENT_MAX)
    {
        return -1;
    }

    scale = 1;

    for (k = 0; k < (from_exp > to_exp ? from_exp - to_exp
                                        : to_exp - from_exp); k++)
    {
        scale *= 10;
    }

    if (to_exp >= from_exp) {
        if (minor > INT64_MAX / scale) {
            return -1;
        }

        *out = minor * scale;
        return 0;
    }

    /* fewer digits: only a value with nothing in the digits dropped */
    if (minor % scale != 0) {
        return -1;
    }

    *out = minor / scale;

    return 0;
}
