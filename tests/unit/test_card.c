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


Test(card, double_space_splits_the_run)
{
    cr_assert_not(card("4111  1111 1111 1111"));
    cr_assert_not(card("4111--1111-1111-1111"));
    cr_assert_not(card("4111 -1111-1111-1111"));
}


Test(card, other_separators_split_the_run)
{
    cr_assert_not(card("4111.1111.1111.1111"));
    cr_assert_not(card("4111_1111_1111_1111"));
    cr_assert_not(card("4111\t1111\t1111\t1111"));
    cr_assert_not(card("4111/1111/1111/1111"));
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
naive_card(const char *s, size_t len)
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


Test(card, matches_naive_reference_on_random_strings)
{
    static const char  alphabet[] = "0123456789012345678901234567 - a";
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
