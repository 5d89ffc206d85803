/*
 * Unit tests: card number detection (pay_contains_card_number).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <payments/checkout.h>


static int
card(const char *s)
{
    return pay_contains_card_number(s, strlen(s));
}


static int id_card(const char *s);


Test(card, visa_16_digits_caught)
{
    cr_assert(card("4111111111111111"));
}


Test(card, well_known_test_pans_caught)
{
    cr_assert(card("5555555555554444"));        /* Mastercard */
    cr_assert(card("378282246310005"));         /* Amex, 15 */
    cr_assert(card("6011111111111117"));        /* Discover */
    cr_assert(card("3530111333300000"));        /* JCB */
}


Test(card, thirteen_digits_caught)
{
    cr_assert(card("4222222222222"));
}


Test(card, nineteen_digits_caught)
{
    cr_assert(card("4111111111111111110"));
}


Test(card, twelve_digits_never_caught)
{
    cr_assert_not(card("411111111111"));
    cr_assert_not(card("000000000000"));
}


Test(card, luhn_failure_not_caught)
{
    cr_assert_not(card("1234567812345678"));
    cr_assert_not(card("9999999999999999"));
    cr_assert_not(card("1234567890123"));
}


Test(card, single_spaces_between_digits_caught)
{
    cr_assert(card("4111 1111 1111 1111"));
    cr_assert(card("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"));
}


Test(card, single_dashes_between_digits_caught)
{
    cr_assert(card("4111-1111-1111-1111"));
}


Test(card, mixed_single_separators_caught)
{
    cr_assert(card("4111 1111-1111 1111"));
}


/*
 * Between groups of 3 to 6 digits, any run of one to three marks (what is
 * not a letter or a digit: ASCII punctuation, blanks and controls, and
 * Unicode's spaces, dashes and punctuation), the same run between every
 * group: Luhn still decides.
 */
Test(card, any_short_run_of_marks_between_groups_caught)
{
    static const char *const  spelt[] = {
        "4111.1111.1111.1111",
        "4111_1111_1111_1111",
        "4111/1111/1111/1111",
        "4111  1111  1111  1111",                   /* double spaces */
        "4111  1111 1111 1111",                     /* blanks alike */
        "4111\xc2\xa0" "1111\xc2\xa0" "1111\xc2\xa0" "1111", /* NBSP */
        "4111\xe2\x80\xaf" "1111\xe2\x80\xaf" "1111\xe2\x80\xaf" "1111",
        "4111\t1111\t1111\t1111",
        "4111 - 1111 - 1111 - 1111",
        "4111--1111--1111--1111",
        "4111 -1111 -1111 -1111",
        "4111\xe2\x80\x93" "1111\xe2\x80\x93" "1111\xe2\x80\x93" "1111",
        "4111*1111*1111*1111",
        "card: 4111.1111.1111.1111, thanks",
        "3782.822463.10005",                        /* Amex, 4-6-5 */
        "4111.1111.1111.1111.110",                  /* 19: 4-4-4-4-3 */
        "ref 12.4111.1111.1111.1111",
    };
    size_t  i;

    for (i = 0; i < sizeof(spelt) / sizeof(spelt[0]); i++) {
        cr_expect(card(spelt[i]), "\"%s\" not caught", spelt[i]);
    }

    /* Luhn decides */
    cr_expect_not(card("4111.1111.1111.1112"));
    cr_expect_not(card("4111  1111  1111  1112"));
}


/* Unicode decimal digits count as the digits they are: full-width,
 * Arabic-Indic, Extended Arabic-Indic, Devanagari, mathematical, and the
 * superscripts and circled digits NFKC maps to one digit. */
Test(card, unicode_digits_normalised)
{
    static const char *const  spelt[] = {
        /* full-width, whole and grouped by an ideographic space */
        "\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91",
        "\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xe3\x80\x80"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xe3\x80\x80"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xe3\x80\x80"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91",
        /* full-width digits and a full-width hyphen-minus */
        "\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x8d"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x8d"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x8d"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91",
        /* Arabic-Indic 4111111111111111 */
        "\xd9\xa4\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1"
        "\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1"
        "\xd9\xa1\xd9\xa1",
        /* Extended Arabic-Indic (Persian) */
        "\xdb\xb4\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1"
        "\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1\xdb\xb1"
        "\xdb\xb1\xdb\xb1",
        /* Devanagari */
        "\xe0\xa5\xaa\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7"
        "\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7"
        "\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7"
        "\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7\xe0\xa5\xa7",
        /* ASCII and full-width mixed */
        "4111\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "11111111",
        /* mathematical bold 4 (U+1D7D2), then ASCII */
        "\xf0\x9d\x9f\x92" "111111111111111",
        /* superscript one (U+00B9) and circled digit one (U+2460) */
        "4\xc2\xb9" "1111111111111\xe2\x91\xa0",
    };
    size_t  i;

    for (i = 0; i < sizeof(spelt) / sizeof(spelt[0]); i++) {
        cr_expect(card(spelt[i]), "spelling %zu not caught", i);
        cr_expect(id_card(spelt[i]), "spelling %zu not caught as an id", i);
    }

    /* Luhn decides: full-width 1234567812345678, no window of which
     * passes (luhn_failure_not_caught) */
    cr_expect_not(card("\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94"
                       "\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98"
                       "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94"
                       "\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98"));
}


/* What the wider separators must not catch: dates, times, phone numbers,
 * versions, addresses and amounts, lists of short numbers. */
Test(card, ordinary_text_not_caught)
{
    static const char *const  text[] = {
        "2024-01-15 10:30:00.123456",
        "15.01.2024 10:30:45, 16.01.2024 11:00:00",
        "Call +1 (415) 555-2671 or (415) 555-2672",
        "+49 (0) 30 1234 5678 / +49 (0) 40 8765 4321",
        "v1.2.3.4 build 20240115.1030",
        "192.168.100.200:8443 and 10.0.0.1:443",
        "1,234,567.89 EUR",
        "12.50 13.75 199.99 1000.00 45.10",
        "ISBN 978-3-16-148410-0",
        "10:30, 11:45, 13:00, 14:15, 15:30",
        "Order 1234, see 5678; ship 9012/34",
        "tracking 1Z 999 AA1 01 2345 678 4",
        "\xe4\xbb\xa3\xe5\x8f\xb7 2024\xe5\xb9\xb4" "01\xe6\x9c\x88",
    };
    size_t  i;

    for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        cr_expect_not(card(text[i]), "\"%s\" caught", text[i]);
    }
}


Test(card, embedded_in_text_caught)
{
    cr_assert(card("po_4111111111111111"));
    cr_assert(card("card: 4111 1111 1111 1111, thanks"));
    cr_assert(card("https://shop.example/?n=4111111111111111"));
    cr_assert(card(" 4111111111111111 "));
}


Test(card, separators_at_the_edges_do_not_matter)
{
    cr_assert(card("-4111111111111111-"));
    cr_assert(card("x 4111-1111-1111-1111 x"));
}


Test(card, window_inside_longer_run_caught)
{
    /* 20 digits; only the inner 16-digit window (and other inner windows)
     * pass Luhn, neither the whole run nor any prefix */
    cr_assert(card("94111111111111111999"));
    cr_assert(card("12 4111111111111111"));
}


Test(card, random_20_digits_without_luhn_window_not_caught)
{
    cr_assert_not(card("40874138443622436890"));
    cr_assert_not(card("22194355247416285712"));
}


Test(card, all_zeros_pass_luhn_and_are_caught)
{
    cr_assert(card("0000000000000"));
}


Test(card, letter_splits_the_run)
{
    cr_assert_not(card("411111a1111111111"));
}


Test(card, length_is_respected)
{
    /* only the first 12 bytes count: too short to be a card */
    cr_assert_not(pay_contains_card_number("4111111111111111", 12));
    cr_assert(pay_contains_card_number("4111111111111111xyz", 16));
}


Test(card, embedded_nul_splits_the_run)
{
    cr_assert_not(pay_contains_card_number("41111111\0" "11111111", 17));
}


Test(card, empty_and_null)
{
    cr_assert_not(pay_contains_card_number("", 0));
    cr_assert_not(pay_contains_card_number(NULL, 10));
}


/* A naive reference: every run, every window, Luhn from scratch. */
static int
naive_luhn(const int *d, size_t n)
{
    size_t  i;
    int     sum, x;

    sum = 0;
    for (i = 0; i < n; i++) {
        x = d[n - 1 - i];
        if (i & 1) {
            x = x * 2 > 9 ? x * 2 - 9 : x * 2;
        }
        sum += x;
    }

    return sum % 10 == 0;
}


static int
naive_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z');
}


/* the old rule: digits with single spaces or dashes, every window */
static int
naive_runs(const char *s, size_t len)
{
    int     digits[256];
    size_t  i, n, L, start;

    i = 0;
    while (i < len) {
        if (s[i] < '0' || s[i] > '9') {
            i++;
            continue;
        }

        n = 0;
        for (;;) {
            digits[n++] = s[i++] - '0';
            if (i < len && s[i] >= '0' && s[i] <= '9') {
                continue;
            }
            if (i + 1 < len && (s[i] == ' ' || s[i] == '-')
                && s[i + 1] >= '0' && s[i + 1] <= '9')
            {
                i++;
                continue;
            }
            break;
        }

        for (L = 13; L <= 19; L++) {
            for (start = 0; start + L <= n; start++) {
                if (naive_luhn(digits + start, L)) {
                    return 1;
                }
            }
        }
    }

    return 0;
}


/* two separators alike: the same bytes, or both only blanks */
static int
naive_same_sep(const char *a, size_t an, const char *b, size_t bn)
{
    return (an == bn && memcmp(a, b, an) == 0)
           || (strspn(a, " \t") >= an && strspn(b, " \t") >= bn);
}


/* the grouped rule (ASCII): groups of 3-6 digits, separated by the same
 * 1-3 non-alphanumerics; every sequence of whole groups of 13-19 digits */
static int
naive_groups(const char *s, size_t len)
{
    int          digits[64];
    size_t       gs[64], gl[64], ss[64], sl[64], ng, i, j, k, a, b, n, t;
    const char  *p;

    /* groups: maximal digit runs; ss/sl: the text before each group,
     * back to the previous group (or the start) */
    ng = 0;
    i = 0;
    a = 0;
    while (i < len && ng < 64) {
        if (s[i] >= '0' && s[i] <= '9') {
            gs[ng] = i;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                i++;
            }
            gl[ng] = i - gs[ng];
            ss[ng] = a;
            sl[ng] = gs[ng] - a;
            a = i;
            ng++;
            continue;
        }
        i++;
    }

    for (i = 0; i < ng; i++) {
        for (j = i; j < ng; j++) {
            t = 0;
            for (k = i; k <= j; k++) {
                if (gl[k] < 3 || gl[k] > 6) {
                    goto next_i;
                }
                if (k > i) {
                    if (sl[k] < 1 || sl[k] > 3) {
                        goto next_i;
                    }
                    for (b = 0; b < sl[k]; b++) {
                        if (naive_alnum(s[ss[k] + b])) {
                            goto next_i;
                        }
                    }
                    if (k > i + 1
                        && !naive_same_sep(s + ss[k], sl[k],
                                           s + ss[i + 1], sl[i + 1]))
                    {
                        goto next_i;
                    }
                }
                t += gl[k];
            }

            if (t < 13 || t > 19) {
                continue;
            }

            n = 0;
            for (k = i; k <= j; k++) {
                for (p = s + gs[k]; p < s + gs[k] + gl[k]; p++) {
                    digits[n++] = *p - '0';
                }
            }

            if (naive_luhn(digits, n)) {
                return 1;
            }
        }
    next_i:
        continue;
    }

    return 0;
}


static int
naive_card(const char *s, size_t len)
{
    return naive_runs(s, len) || naive_groups(s, len);
}


Test(card, matches_naive_reference_on_random_strings)
{
    static const char  alphabet[] = "0123456789012345678901234567 - a._\t";
    char               buf[64];
    size_t             len, k;
    int                iter, hits;
    uint32_t           x = 2463534242u;

    hits = 0;

    for (iter = 0; iter < 50000; iter++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        len = 10 + x % 40;

        for (k = 0; k < len; k++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            buf[k] = alphabet[x % (sizeof(alphabet) - 1)];
        }

        cr_assert_eq(pay_contains_card_number(buf, len),
                     naive_card(buf, len), "%.*s", (int) len, buf);
        hits += naive_card(buf, len);
    }

    /* both outcomes were exercised */
    cr_assert_gt(hits, 1000);
    cr_assert_lt(hits, 49000);
}


Test(card, long_input_is_linear)
{
    size_t  n = 1 << 20, i;
    char   *s;

    /* a megabyte of "0123456789x": runs of 10 digits, never a card */
    s = malloc(n);
    cr_assert_not_null(s);
    for (i = 0; i < n; i++) {
        s[i] = (i % 11 == 10) ? 'x' : (char) ('0' + i % 11);
    }

    cr_assert_not(pay_contains_card_number(s, n));
    free(s);
}


/* Identifiers (pay_id_contains_card_number): brand-shaped numbers only. */

static int
id_card(const char *s)
{
    return pay_id_contains_card_number(s, strlen(s));
}


Test(card_id, every_brands_test_numbers_are_refused)
{
    static const char  *pans[] = {
        "4111111111111111",         /* Visa */
        "4222222222222",            /* Visa, 13 */
        "4242424242424242",
        "5555555555554444",         /* Mastercard */
        "2223003122003222",         /* Mastercard 2-series */
        "378282246310005",          /* American Express */
        "371449635398431",
        "6011111111111117",         /* Discover */
        "6445644564456445",
        "3530111333300000",         /* JCB */
        "3566002020360505",
        "30569309025904",           /* Diners Club, 14 */
        "36227206271667",
        "6200000000000005",         /* UnionPay */
        "6759649826438453",         /* Maestro */
        "2200000000000004",         /* Mir */
        "po-4111-1111-1111-1111",   /* separators, inside an id */
        "4111 1111 1111 1111",
        "order_5555555555554444_x",
        "po_4111_1111_1111_1111",   /* other separators, between groups */
        "4111.1111.1111.1111",
        "3782-822463-10005",
    };
    size_t  i;

    for (i = 0; i < sizeof(pans) / sizeof(pans[0]); i++) {
        cr_expect(id_card(pans[i]), "%s not refused", pans[i]);
        cr_expect(card(pans[i]), "%s not refused as text", pans[i]);
    }
}


Test(card_id, luhn_valid_numbers_no_brand_issues_pass)
{
    cr_expect_not(id_card("1000000000000008"));     /* starts with 1 */
    cr_expect_not(id_card("7200000000000003"));     /* 7: no brand */
    cr_expect_not(id_card("9999999999999995"));
    cr_expect_not(id_card("41111111111111110"));    /* Visa has no 17 */
    cr_expect_not(id_card("378282246310005"  "0")); /* Amex is 15 only */
    cr_expect_not(id_card("4111111111111112"));     /* Luhn fails */
    cr_expect_not(id_card("411111111111"));         /* 12 digits */
    cr_expect_not(id_card(""));
    cr_expect_not(pay_id_contains_card_number(NULL, 4));
    /* the text rule refuses them all */
    cr_expect(card("1000000000000008"));
    cr_expect(card("7200000000000003"));
}


/* The measured effect on numeric ids: the text rule, which looks at every
 * 13-19 digit window, refuses about two random 16-digit ids in three; the
 * id rule about three in a hundred; sequential ids from 10^15 never. */
Test(card_id, false_refusals_of_numeric_ids_are_rare)
{
    char      id[17];
    uint64_t  x, v;
    long      i, text, ident;

    x = 0x9e3779b97f4a7c15ULL;
    text = 0;
    ident = 0;

    for (i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = 1000000000000000ULL + x % 9000000000000000ULL;
        snprintf(id, sizeof(id), "%llu", (unsigned long long) v);
        text += card(id);
        ident += id_card(id);
    }

    cr_log_info("random 16-digit ids refused: text rule %ld, id rule %ld "
                "of 100000", text, ident);
    cr_expect(text > 50000, "text rule: %ld", text);
    cr_expect(ident < 3500, "id rule: %ld of 100000", ident);

    for (i = 0; i < 100000; i++) {
        snprintf(id, sizeof(id), "%llu",
                 (unsigned long long) (1000000000000000ULL + (uint64_t) i));
        cr_assert_not(id_card(id), "sequential id %s refused", id);
    }
}
