/*
 * ngx_payments core: the POST /v1/payments body, validated (API.md).
 *
 * Details in verdicts name a field and the rule it broke, never a value
 * taken from the body: any value may be card data, and details end up in
 * responses and, through them, in logs.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <payments/json_dump.h>
#include <payments/checkout.h>
#include <payments/error.h>
#include <payments/idempotency.h>
#include <payments/money.h>
#include <payments/url.h>


#define PAY_CARD_MIN      13
#define PAY_CARD_MAX      19
#define PAY_BUYER_ID_MAX  255


/* Card numbers ------------------------------------------------------------ */

/*
 * The text is read as UTF-8 code points, each a digit (with its value), a
 * mark or other.  Digits: ASCII, every block of ten of Unicode's decimal
 * digits (category Nd, Unicode 14: Arabic-Indic, Devanagari, full-width,
 * mathematical and the others: the zero of each below), and the
 * compatibility digits NFKC maps to one ASCII digit (superscripts,
 * subscripts, circled digits).  Marks, what is neither a letter nor a
 * digit: every other ASCII character, and beyond ASCII the Latin-1
 * punctuation and signs, the General Punctuation block (spaces, dashes,
 * zero-width characters, dots, bullets), the supplemental punctuation,
 * CJK and full-width punctuation and spaces, and a few operators used as
 * dashes and dots.  Everything else (letters of any script, symbols, bytes
 * that are not UTF-8) is other.
 */

static const uint32_t  pay_digit_zeros[] = {
    0x0660, 0x06f0, 0x07c0, 0x0966, 0x09e6, 0x0a66, 0x0ae6, 0x0b66, 0x0be6,
    0x0c66, 0x0ce6, 0x0d66, 0x0de6, 0x0e50, 0x0ed0, 0x0f20, 0x1040, 0x1090,
    0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40,
    0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450,
    0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50,
    0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec,
    0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0
};

typedef struct {
    uint32_t  lo;
    uint32_t  hi;
    int       first;        /* lo's digit; -1: a mark */
} pay_cp_range_t;

static const pay_cp_range_t  pay_cp_ranges[] = {
    { 0x0080, 0x00a9, -1 },         /* C1, NBSP, Latin-1 signs ... */
    { 0x00ab, 0x00b1, -1 },         /* ... but ª, µ, º and fractions */
    { 0x00b2, 0x00b3, 2 },          /* superscript two, three */
    { 0x00b4, 0x00b4, -1 },
    { 0x00b6, 0x00b8, -1 },
    { 0x00b9, 0x00b9, 1 },          /* superscript one */
    { 0x00bb, 0x00bb, -1 },
    { 0x00bf, 0x00bf, -1 },
    { 0x00d7, 0x00d7, -1 },
    { 0x00f7, 0x00f7, -1 },
    { 0x1680, 0x1680, -1 },         /* Ogham space */
    { 0x180e, 0x180e, -1 },         /* Mongolian vowel separator */
    { 0x2000, 0x206f, -1 },         /* General Punctuation */
    { 0x2070, 0x2070, 0 },          /* superscript zero */
    { 0x2074, 0x2079, 4 },          /* superscripts four to nine */
    { 0x2080, 0x2089, 0 },          /* subscripts */
    { 0x2212, 0x2212, -1 },         /* minus */
    { 0x2215, 0x2215, -1 },         /* division slash */
    { 0x2219, 0x2219, -1 },         /* bullet operator */
    { 0x2460, 0x2468, 1 },          /* circled one to nine */
    { 0x24ea, 0x24ea, 0 },          /* circled zero */
    { 0x2e00, 0x2e7f, -1 },         /* Supplemental Punctuation */
    { 0x3000, 0x3003, -1 },         /* ideographic space, comma, stop */
    { 0x3008, 0x3011, -1 },
    { 0x3014, 0x301f, -1 },
    { 0x30fb, 0x30fb, -1 },         /* katakana middle dot */
    { 0xfe10, 0xfe19, -1 },         /* vertical forms */
    { 0xfe30, 0xfe6b, -1 },         /* CJK compatibility, small forms */
    { 0xfeff, 0xfeff, -1 },         /* zero-width no-break space */
    { 0xff01, 0xff0f, -1 },         /* full-width ASCII punctuation */
    { 0xff1a, 0xff20, -1 },
    { 0xff3b, 0xff40, -1 },
    { 0xff5b, 0xff65, -1 },
};

typedef enum {
    PAY_CP_DIGIT,
    PAY_CP_MARK,
    PAY_CP_OTHER
} pay_cp_class_e;

#define PAY_CP_BAD  0x110000        /* a byte that is not UTF-8 */


/* the code point at s[*i], *i moved past it */
static uint32_t
pay_utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    size_t    n, k;
    uint32_t  cp;

    cp = s[*i];

    if (cp < 0x80) {
        (*i)++;
        return cp;
    }

    if ((cp & 0xe0) == 0xc0) {
        n = 1;
        cp &= 0x1f;

    } else if ((cp & 0xf0) == 0xe0) {
        n = 2;
        cp &= 0x0f;

    } else if ((cp & 0xf8) == 0xf0) {
        n = 3;
        cp &= 0x07;

    } else {
        (*i)++;
        return PAY_CP_BAD;
    }

    if (len - *i <= n) {
        (*i)++;
        return PAY_CP_BAD;
    }

    for (k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80) {
            (*i)++;
            return PAY_CP_BAD;
        }

        cp = (cp << 6) | (s[*i + k] & 0x3f);
    }

    *i += n + 1;

    return cp;
}


static pay_cp_class_e
pay_cp_class(uint32_t cp, int *digit)
{
    size_t  lo, hi, mid;

    if (cp < 0x80) {
        if (cp >= '0' && cp <= '9') {
            *digit = (int) (cp - '0');
            return PAY_CP_DIGIT;
        }

        return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ? PAY_CP_OTHER
                                                          : PAY_CP_MARK;
    }

    /* the last zero at or below cp */
    lo = 0;
    hi = sizeof(pay_digit_zeros) / sizeof(pay_digit_zeros[0]);

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (pay_digit_zeros[mid] <= cp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    if (lo > 0 && cp - pay_digit_zeros[lo - 1] <= 9) {
        *digit = (int) (cp - pay_digit_zeros[lo - 1]);
        return PAY_CP_DIGIT;
    }

    for (lo = 0; lo < sizeof(pay_cp_ranges) / sizeof(pay_cp_ranges[0]);
         lo++)
    {
        if (cp < pay_cp_ranges[lo].lo) {
            break;
        }

        if (cp <= pay_cp_ranges[lo].hi) {
            if (pay_cp_ranges[lo].first < 0) {
                return PAY_CP_MARK;
            }

            *digit = pay_cp_ranges[lo].first
                     + (int) (cp - pay_cp_ranges[lo].lo);
            return PAY_CP_DIGIT;
        }
    }

    return PAY_CP_OTHER;
}


/* the spaces, whatever their width: separators made only of them are
 * alike */
static int
pay_cp_blank(uint32_t cp)
{
    return cp == '\t' || cp == ' ' || cp == 0xa0 || cp == 0x1680
           || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f
           || cp == 0x205f || cp == 0x3000;
}


static int pay_luhn(const int *d, size_t n);
static int pay_card_brand_shaped(const int *d, size_t n);


/*
 * Card numbers written in groups: groups of 3 to 6 digits with the same
 * separator between every two, a run of 1 to 3 marks (runs made only of
 * blanks are alike), as "4111.1111.1111.1111", "4111  1111  1111 1111",
 * "3782/822463/10005" are written.  Every sequence of whole groups of 13
 * to 19 digits is judged: Luhn alone, or Luhn and a brand's shape for an
 * identifier (id).  What bounds the false positives on ordinary text: it
 * needs three groups at least, the same separator throughout, and no group
 * of 1, 2 or 7 digits or more, so that dates, times, amounts, versions,
 * addresses and phone numbers (groups of 1 or 2, mixed separators) pass;
 * and the digits it joins, written without the separators, would be
 * refused anyway.  Linear: a group ending looks at most 6 groups back.
 */
#define PAY_GROUP_MIN   3
#define PAY_GROUP_MAX   6
#define PAY_GROUPS_MAX  ((PAY_CARD_MAX + PAY_GROUP_MIN - 1) / PAY_GROUP_MIN)
#define PAY_SEP_MAX     3

typedef struct {
    uint32_t  cp[PAY_SEP_MAX];
    size_t    n;
} pay_sep_t;


static int
pay_card_groups(const char *s, size_t len, int id)
{
    int             ring[PAY_CARD_MAX], d[PAY_CARD_MAX], digit, sep_ok, blank,
                    end;
    size_t          i, k, g, pos, glen, total, ngroups;
    size_t          groups[PAY_GROUPS_MAX];
    uint32_t        cp;
    pay_sep_t       sep, cand;
    pay_cp_class_e  cls;

    pos = 0;
    glen = 0;
    ngroups = 0;
    sep_ok = 0;
    blank = 1;
    sep.n = 0;
    cand.n = 0;
    i = 0;

    for ( ;; ) {
        end = i >= len;
        cls = PAY_CP_OTHER;
        cp = PAY_CP_BAD;
        digit = 0;

        if (!end) {
            cp = pay_utf8_next((const unsigned char *) s, len, &i);
            cls = pay_cp_class(cp, &digit);
        }

        if (cls == PAY_CP_DIGIT) {
            if (glen == 0) {
                /* a group begins: it continues the candidate after a
                 * separator like the candidate's */
                if (ngroups > 0 && sep_ok) {
                    if (blank) {
                        sep.n = 1;
                        sep.cp[0] = ' ';
                    }

                    if (ngroups >= 2
                        && (sep.n != cand.n
                            || memcmp(sep.cp, cand.cp,
                                      sep.n * sizeof(uint32_t)) != 0))
                    {
                        groups[0] = groups[ngroups - 1];
                        ngroups = 1;
                    }

                    cand = sep;

                } else {
                    ngroups = 0;
                }
            }

            ring[pos % PAY_CARD_MAX] = digit;
            pos++;
            glen++;
            continue;
        }

        if (glen > 0) {
            /* a group ends */
            if (glen < PAY_GROUP_MIN || glen > PAY_GROUP_MAX) {
                ngroups = 0;

            } else {
                if (ngroups == PAY_GROUPS_MAX) {
                    memmove(groups, groups + 1,
                            (PAY_GROUPS_MAX - 1) * sizeof(size_t));
                    ngroups--;
                }

                groups[ngroups++] = glen;
                total = 0;

                for (g = ngroups; g > 0; g--) {
                    total += groups[g - 1];

                    if (total > PAY_CARD_MAX) {
                        break;
                    }

                    if (total < PAY_CARD_MIN) {
                        continue;
                    }

                    for (k = 0; k < total; k++) {
                        d[k] = ring[(pos - total + k) % PAY_CARD_MAX];
                    }

                    if (pay_luhn(d, total)
                        && (!id || pay_card_brand_shaped(d, total)))
                    {
                        return 1;
                    }
                }
            }

            glen = 0;
            sep.n = 0;
            blank = 1;
            sep_ok = ngroups > 0;
        }

        if (end) {
            return 0;
        }

        if (cls == PAY_CP_MARK && sep_ok && sep.n < PAY_SEP_MAX) {
            sep.cp[sep.n++] = cp;
            blank &= pay_cp_blank(cp);

        } else {
            sep_ok = 0;
        }
    }
}


/*
 * A run is digits where a single space or a single dash may stand between
 * two digits; anything else ends it.  Every window of 13 to 19 consecutive
 * digits of a run is a candidate, not only the whole run: a PAN glued to
 * other digits ("20-digit string") is still a PAN.  The last 19 digits are
 * kept in a ring, and each new digit closes 7 windows whose Luhn sums are
 * computed from that digit backwards, so the scan is linear in the input.
 * Digits are any of pay_cp_class's; then the groups, pay_card_groups.
 */
int
pay_contains_card_number(const char *s, size_t len)
{
    int             ring[PAY_CARD_MAX], d, sum, digit;
    size_t          i, run, off, head;
    uint32_t        cp;
    pay_cp_class_e  cls;
    enum { PAY_SCAN_OTHER, PAY_SCAN_DIGIT, PAY_SCAN_SEP }  prev;

    if (s == NULL) {
        return 0;
    }

    run = 0;
    head = 0;
    prev = PAY_SCAN_OTHER;
    i = 0;

    while (i < len) {
        cp = pay_utf8_next((const unsigned char *) s, len, &i);
        cls = pay_cp_class(cp, &digit);

        if (cls == PAY_CP_DIGIT) {
            if (prev == PAY_SCAN_OTHER) {
                run = 0;
            }

            prev = PAY_SCAN_DIGIT;

            head = (head + 1) % PAY_CARD_MAX;
            ring[head] = digit;
            run++;

            if (run < PAY_CARD_MIN) {
                continue;
            }

            /* Luhn from the right: the check digit (offset 0) as is, every
             * second digit left of it doubled. */
            sum = 0;

            for (off = 0; off < PAY_CARD_MAX && off < run; off++) {
                d = ring[(head + PAY_CARD_MAX - off) % PAY_CARD_MAX];

                if (off & 1) {
                    d *= 2;
                    if (d > 9) {
                        d -= 9;
                    }
                }

                sum += d;

                if (off + 1 >= PAY_CARD_MIN && sum % 10 == 0) {
                    return 1;
                }
            }

            continue;
        }

        if ((cp == ' ' || cp == '-') && prev == PAY_SCAN_DIGIT) {
            prev = PAY_SCAN_SEP;
            continue;
        }

        /* another character, a doubled separator, or one not after a
         * digit: the run ends */
        prev = PAY_SCAN_OTHER;
    }

    return pay_card_groups(s, len, 0);
}


/*
 * Card brands by issuer prefix: lo..hi over the first `digits` digits,
 * and the lengths the brand issues (bit n: n digits).
 */
typedef struct {
    int       digits;
    long      lo;
    long      hi;
    uint32_t  lengths;
} pay_brand_t;

#define PAY_LEN(n)         (1u << (n))
#define PAY_LEN_RANGE(a, b)  (((1u << ((b) + 1)) - 1) & ~((1u << (a)) - 1))

static const pay_brand_t  pay_brands[] = {
    /* Visa */
    { 1, 4, 4, PAY_LEN(13) | PAY_LEN(16) | PAY_LEN(19) },
    /* Mastercard */
    { 2, 51, 55, PAY_LEN(16) },
    { 4, 2221, 2720, PAY_LEN(16) },
    /* American Express */
    { 2, 34, 34, PAY_LEN(15) },
    { 2, 37, 37, PAY_LEN(15) },
    /* Discover */
    { 4, 6011, 6011, PAY_LEN_RANGE(16, 19) },
    { 3, 644, 649, PAY_LEN_RANGE(16, 19) },
    { 2, 65, 65, PAY_LEN_RANGE(16, 19) },
    /* JCB */
    { 4, 3528, 3589, PAY_LEN_RANGE(16, 19) },
    /* Diners Club */
    { 3, 300, 305, PAY_LEN_RANGE(14, 19) },
    { 4, 3095, 3095, PAY_LEN_RANGE(14, 19) },
    { 2, 36, 36, PAY_LEN_RANGE(14, 19) },
    { 2, 38, 39, PAY_LEN_RANGE(14, 19) },
    /* UnionPay */
    { 2, 62, 62, PAY_LEN_RANGE(16, 19) },
    { 2, 81, 81, PAY_LEN_RANGE(16, 19) },
    /* Maestro */
    { 4, 5018, 5018, PAY_LEN_RANGE(13, 19) },
    { 4, 5020, 5020, PAY_LEN_RANGE(13, 19) },
    { 4, 5038, 5038, PAY_LEN_RANGE(13, 19) },
    { 4, 5893, 5893, PAY_LEN_RANGE(13, 19) },
    { 4, 6304, 6304, PAY_LEN_RANGE(13, 19) },
    { 4, 6759, 6759, PAY_LEN_RANGE(13, 19) },
    { 4, 6761, 6763, PAY_LEN_RANGE(13, 19) },
    /* Mir */
    { 4, 2200, 2204, PAY_LEN_RANGE(16, 19) },
};


static int
pay_card_brand_shaped(const int *d, size_t n)
{
    size_t  i;
    int     k;
    long    prefix;

    for (i = 0; i < sizeof(pay_brands) / sizeof(pay_brands[0]); i++) {
        if (!(pay_brands[i].lengths & PAY_LEN(n))) {
            continue;
        }

        prefix = 0;
        for (k = 0; k < pay_brands[i].digits; k++) {
            prefix = prefix * 10 + d[k];
        }

        if (prefix >= pay_brands[i].lo && prefix <= pay_brands[i].hi) {
            return 1;
        }
    }

    return 0;
}


static int
pay_luhn(const int *d, size_t n)
{
    size_t  i;
    int     v, sum;

    sum = 0;

    for (i = 0; i < n; i++) {
        v = d[n - 1 - i];

        if (i & 1) {
            v *= 2;
            if (v > 9) {
                v -= 9;
            }
        }

        sum += v;
    }

    return sum % 10 == 0;
}


int
pay_id_contains_card_number(const char *s, size_t len)
{
    int             d[PAY_CARD_MAX], digit, sep, over, end;
    size_t          i, n;
    uint32_t        cp;
    pay_cp_class_e  cls;

    if (s == NULL) {
        return 0;
    }

    /* runs as pay_contains_card_number() reads them, each judged whole */
    n = 0;
    sep = 0;
    over = 0;
    i = 0;

    for ( ;; ) {
        end = i >= len;
        cp = 0;
        cls = PAY_CP_OTHER;

        if (!end) {
            cp = pay_utf8_next((const unsigned char *) s, len, &i);
            cls = pay_cp_class(cp, &digit);
        }

        if (cls == PAY_CP_DIGIT) {
            if (n < PAY_CARD_MAX) {
                d[n] = digit;
            }

            over |= n >= PAY_CARD_MAX;
            n++;
            sep = 0;
            continue;
        }

        if ((cp == ' ' || cp == '-') && n > 0 && !sep && !end) {
            sep = 1;
            continue;
        }

        if (!over && n >= PAY_CARD_MIN && pay_luhn(d, n)
            && pay_card_brand_shaped(d, n))
        {
            return 1;
        }

        if (end) {
            break;
        }

        n = 0;
        sep = 0;
        over = 0;
    }

    return pay_card_groups(s, len, 1);
}


/* The body's identifier fields: pay_id_contains_card_number() judges them. */
static int
pay_key_is_identifier(const char *key)
{
    return strcmp(key, "checkout_id") == 0
           || strcmp(key, "payment_order_id") == 0
           || strcmp(key, "seller_account") == 0
           || strcmp(key, "customer") == 0
           || strcmp(key, "id") == 0;
}


/*
 * Every object key and string value, at any depth.  Integers too: no field
 * of the body is a JSON number, so a PAN sent as one is never a false
 * positive.  jansson caps nesting (2048 levels), which bounds the
 * recursion.
 */
static int
pay_json_has_card(json_t *j, int in_metadata)
{
    char          buf[32];
    int           n;
    size_t        i;
    json_int_t    iv;
    const char   *key;
    json_t       *val;

    switch (json_typeof(j)) {

    case JSON_STRING:
        return pay_contains_card_number(json_string_value(j),
                                        json_string_length(j));

    case JSON_INTEGER:
        iv = json_integer_value(j);
        n = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, iv);
        return n > 0 && pay_contains_card_number(buf, (size_t) n);

    case JSON_ARRAY:
        for (i = 0; i < json_array_size(j); i++) {
            if (pay_json_has_card(json_array_get(j, i), in_metadata)) {
                return 1;
            }
        }

        return 0;

    case JSON_OBJECT:
        json_object_foreach(j, key, val) {
            if (pay_contains_card_number(key, strlen(key))) {
                return 1;
            }

            /* an identifier may be numeric: only a brand-shaped card
             * number is card data there (two random 16-digit ids in three
             * hold a Luhn-valid window) */
            if (!in_metadata && json_is_string(val)
                && pay_key_is_identifier(key))
            {
                if (pay_id_contains_card_number(json_string_value(val),
                                                json_string_length(val)))
                {
                    return 1;
                }

                continue;
            }

            /* the merchant's own keys are free text, "id" too */
            if (pay_json_has_card(val,
                                  in_metadata || strcmp(key, "metadata") == 0))
            {
                return 1;
            }
        }

        return 0;

    default:
        return 0;
    }
}


int
pay_json_contains_card(json_t *j)
{
    return pay_json_has_card(j, 1);
}


int
pay_json_body_contains_card(json_t *j)
{
    return pay_json_has_card(j, 0);
}


/* Ids ---------------------------------------------------------------------- */

static int
pay_chars_valid(const char *s, size_t len, size_t max, const char *extra)
{
    size_t  i;

    if (s == NULL || len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9')
              || (s[i] != '\0' && strchr(extra, s[i]) != NULL)))
        {
            return 0;
        }
    }

    return 1;
}


int
pay_id_valid(const char *s, size_t len)
{
    return pay_chars_valid(s, len, PAY_ID_MAX, "_-");
}


int
pay_seller_valid(const char *s, size_t len)
{
    return pay_chars_valid(s, len, PAY_SELLER_MAX, "_.-");
}


static int
pay_psp_name_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > PAY_PSP_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* Fields ------------------------------------------------------------------- */

/*
 * An unknown key is named in the detail so that the client can find it,
 * but only when it looks like a field name: short, of name characters,
 * and with fewer than 12 digits (a card number has 13 or more): details
 * reach responses and logs, and a key is named only if it is plainly not
 * card data, whatever the card scan it has passed made of it.
 */
static int
pay_unknown_field(pay_verdict_t *v, const char *where, const char *key)
{
    size_t  len, i, digits;

    len = strlen(key);
    digits = 0;

    for (i = 0; i < len; i++) {
        digits += (key[i] >= '0' && key[i] <= '9');
    }

    if (digits < 12 && pay_chars_valid(key, len, 40, "_.-")) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "unknown field \"%s\"%s%s", key,
                           where[0] ? " in " : "", where);
    }

    return pay_verdict(v, PAY_ERR_INVALID_REQUEST, "unknown field%s%s",
                       where[0] ? " in " : "", where);
}


static int
pay_key_in(const char *key, const char *const *names)
{
    for ( /* void */ ; *names != NULL; names++) {
        if (strcmp(key, *names) == 0) {
            return 1;
        }
    }

    return 0;
}


/* A required string member: present and a string. */
static int
pay_get_string(json_t *obj, const char *name, const char *where,
    json_t **out, pay_verdict_t *v)
{
    json_t        *j;

    j = json_object_get(obj, name);

    if (j == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "%s%s is required", where, name);
    }

    if (!json_is_string(j)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "%s%s must be a string", where, name);
    }

    *out = j;

    return 0;
}


static int
pay_check_buyer(json_t *buyer, const char **email, const char **id,
    pay_verdict_t *v)
{
    static const char *const  known[] = { "email", "id", NULL };

    size_t         len, i, at;
    const char    *key, *s;
    json_t        *val;

    if (!json_is_object(buyer)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "buyer_info must be an object");
    }

    json_object_foreach(buyer, key, val) {
        if (!pay_key_in(key, known)) {
            return pay_unknown_field(v, "buyer_info", key);
        }
    }

    val = json_object_get(buyer, "id");

    if (val != NULL) {
        if (!json_is_string(val)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "buyer_info.id must be a string");
        }

        len = json_string_length(val);

        if (len == 0 || len > PAY_BUYER_ID_MAX
            || strlen(json_string_value(val)) != len)
        {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "buyer_info.id must be 1 to %d characters",
                               PAY_BUYER_ID_MAX);
        }

        *id = json_string_value(val);
    }

    val = json_object_get(buyer, "email");

    if (val != NULL) {
        if (!json_is_string(val)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "buyer_info.email must be a string");
        }

        s = json_string_value(val);
        len = json_string_length(val);

        if (len == 0 || len > PAY_EMAIL_MAX) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "buyer_info.email must be 1 to %d bytes",
                               PAY_EMAIL_MAX);
        }

        /* Not RFC 5322, which no PSP accepts in full either: one '@'
         * with something on both sides, and no whitespace or control
         * characters that could split a header further on. */
        at = 0;

        for (i = 0; i < len; i++) {
            unsigned char  c = (unsigned char) s[i];

            if (c <= 0x20 || c == 0x7f) {
                return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                                   "buyer_info.email must not contain "
                                   "spaces or control characters");
            }

            if (c == '@') {
                at++;
            }
        }

        if (at != 1 || s[0] == '@' || s[len - 1] == '@') {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "buyer_info.email must be an address with "
                               "one '@'");
        }

        *email = s;
    }

    return 0;
}


static int
pay_check_order_fields(json_t *ord, size_t idx, pay_verdict_t *v)
{
    static const char *const  known[] = {
        "payment_order_id", "seller_account", "amount", "currency", NULL
    };
    static const char *const  strings[] = {
        "payment_order_id", "seller_account", "currency", NULL
    };

    char                where[40];
    size_t              k;
    const char         *key;
    json_t             *val;
    const char *const  *name;

    (void) snprintf(where, sizeof(where), "payment_orders[%zu]", idx);

    if (!json_is_object(ord)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "%s must be an object", where);
    }

    json_object_foreach(ord, key, val) {
        if (!pay_key_in(key, known)) {
            return pay_unknown_field(v, where, key);
        }
    }

    k = strlen(where);
    where[k] = '.';
    where[k + 1] = '\0';

    for (name = strings; *name != NULL; name++) {
        if (pay_get_string(ord, *name, where, &val, v) != 0) {
            return -1;
        }
    }

    val = json_object_get(ord, "amount");

    if (val == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "%samount is required", where);
    }

    /* A JSON number is exactly what the contract refuses: 0.1 + 0.2 has
     * no place in money. */
    if (json_is_number(val)) {
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "%samount must be a decimal string such as "
                           "\"10.50\", not a JSON number", where);
    }

    if (!json_is_string(val)) {
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "%samount must be a decimal string such as "
                           "\"10.50\"", where);
    }

    return 0;
}


static int
pay_amount_verdict(pay_verdict_t *v, pay_amount_rc_e rc, size_t idx,
    const pay_currency_t *cur)
{
    switch (rc) {

    case PAY_AMOUNT_PRECISION:
        if (cur->exponent == 0) {
            return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                               "payment_orders[%zu].amount: too many "
                               "decimals for %s, which has none",
                               idx, cur->code);
        }

        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "payment_orders[%zu].amount: too many decimals "
                           "for %s (at most %d, trailing zeros included)",
                           idx, cur->code, cur->exponent);

    case PAY_AMOUNT_ZERO:
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "payment_orders[%zu].amount must be > 0", idx);

    case PAY_AMOUNT_OVERFLOW:
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "payment_orders[%zu].amount is too large (at "
                           "most %" PRId64 " minor units)", idx, INT64_MAX);

    default:
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "payment_orders[%zu].amount: syntax must be "
                           "digits with an optional '.' and decimals, no "
                           "sign, exponent, spaces or leading zeros", idx);
    }
}


static int
pay_check_url(json_t *root, const char *name, const char **out,
    pay_verdict_t *v)
{
    const char    *s;
    json_t        *j;
    pay_origin_t   o;

    j = json_object_get(root, name);
    s = json_string_value(j);

    if (json_string_length(j) > PAY_URL_MAX
        || pay_origin_parse(s, &o, 0) != 0)
    {
        return pay_verdict(v, PAY_ERR_FORBIDDEN_RETURN_URL,
                           "%s must be an absolute https URL of at most %d "
                           "bytes, without userinfo, with a host name "
                           "without a trailing dot", name, PAY_URL_MAX);
    }

    *out = s;

    return 0;
}


/* Metadata ----------------------------------------------------------------- */

/* UTF-8 code points in s (jansson has checked the encoding). */
static size_t
pay_utf8_chars(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        n += (((unsigned char) s[i]) & 0xc0) != 0x80;
    }

    return n;
}


/*
 * A key that goes into a form body's name as it is read back (Stripe's
 * metadata[KEY]): no bracket, which no escape keeps out of Stripe's
 * parse; no '%', '&' or '=', which would be a form's syntax if anything
 * between us and the PSP ever forgot to escape them (psp.c escapes every
 * key); no control character, C0, DEL or C1 (U+0080-U+009F), which no
 * PSP promises to keep.  1 or 0.
 */
static int
pay_metadata_key_plain(const char *key, size_t len)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) key[i];

        if (c < 0x20 || c == 0x7f || strchr("[]%&=", c) != NULL
            || (c == 0xc2 && i + 1 < len
                && (unsigned char) key[i + 1] >= 0x80
                && (unsigned char) key[i + 1] <= 0x9f))
        {
            return 0;
        }
    }

    return 1;
}


int
pay_metadata_check(const json_t *md, pay_verdict_t *v)
{
    size_t       len;
    const char  *key;
    json_t      *val;

    if (!json_is_object(md)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "metadata must be an object of string values");
    }

    if (json_object_size(md) > PAY_METADATA_KEYS_MAX) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "metadata holds at most %d keys",
                           PAY_METADATA_KEYS_MAX);
    }

    json_object_foreach((json_t *) md, key, val) {
        len = strlen(key);

        if (len == 0) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "metadata keys must not be empty");
        }

        if (pay_utf8_chars(key, len) > PAY_METADATA_KEY_MAX) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "metadata keys are at most %d characters",
                               PAY_METADATA_KEY_MAX);
        }

        if (!pay_metadata_key_plain(key, len)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "metadata keys must not contain '[', ']', "
                               "'%%', '&', '=' or control characters");
        }

        if (!json_is_string(val)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "metadata values must be strings");
        }

        if (pay_utf8_chars(json_string_value(val), json_string_length(val))
            > PAY_METADATA_VALUE_MAX)
        {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "metadata values are at most %d characters",
                               PAY_METADATA_VALUE_MAX);
        }
    }

    return 0;
}


/* Saved payment methods ---------------------------------------------------- */

int
pay_method_id_valid(const char *s, size_t len)
{
    size_t  i;

    if (s == NULL || len != PAY_METHOD_ID_LEN || strncmp(s, "pm_", 3) != 0) {
        return 0;
    }

    for (i = 3; i < len; i++) {
        if (s[i] < 'a' || s[i] > 'p') {
            return 0;
        }
    }

    return 1;
}


/*
 * "save_payment_method": {"customer", "usage", "schedule" (optional),
 * "shopper_agreed": true}, or "payment_method" with "off_session": true;
 * never both.  An off-session charge may be a manual capture too: then
 * it is authorized, and captured or released later, as a checkout is.
 */
static int
pay_check_saved_method(pay_checkout_t *co, json_t *root, pay_verdict_t *v)
{
    const char         *key, *s, *sched;
    size_t              len;
    json_t             *save, *val, *pm, *off;
    static const char  *const known[] = {
        "customer", "usage", "schedule", "shopper_agreed", NULL
    };

    save = json_object_get(root, "save_payment_method");
    pm = json_object_get(root, "payment_method");
    off = json_object_get(root, "off_session");

    if (save != NULL) {
        if (!json_is_object(save)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "save_payment_method must be an object");
        }

        json_object_foreach(save, key, val) {
            if (!pay_key_in(key, known)) {
                return pay_unknown_field(v, "save_payment_method", key);
            }
        }

        val = json_object_get(save, "customer");
        s = json_string_value(val);
        len = json_string_length(val);

        if (!pay_chars_valid(s, len, PAY_CUSTOMER_MAX, "_.-")) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "save_payment_method.customer must match "
                               "[A-Za-z0-9_.-]{1,%d}: the shop's id for the "
                               "shopper, never an e-mail or a name",
                               PAY_CUSTOMER_MAX);
        }

        memcpy(co->save_customer, s, len + 1);

        s = json_string_value(json_object_get(save, "usage"));
        sched = json_string_value(json_object_get(save, "schedule"));

        if (json_object_get(save, "schedule") != NULL
            && (sched == NULL || (strcmp(sched, "unscheduled") != 0
                                  && strcmp(sched, "subscription") != 0)))
        {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "save_payment_method.schedule must be "
                               "\"unscheduled\" or \"subscription\"");
        }

        if (s != NULL && strcmp(s, "off_session") == 0) {
            co->save_usage = "off_session";
            co->save_recurring = (sched && strcmp(sched, "subscription") == 0)
                                 ? "Subscription" : "UnscheduledCardOnFile";

        } else if (s != NULL && strcmp(s, "on_session") == 0 && sched == NULL)
        {
            co->save_usage = "on_session";
            co->save_recurring = "CardOnFile";

        } else {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "save_payment_method.usage must be "
                               "\"off_session\" or \"on_session\" (a "
                               "schedule only with off_session)");
        }

        if (!json_is_true(json_object_get(save, "shopper_agreed"))) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "save_payment_method.shopper_agreed must be "
                               "true: the shop has the shopper's agreement "
                               "to save the method%s",
                               co->save_usage[1] == 'f'
                               ? " and to charge it without them" : "");
        }
    }

    if (pm == NULL && off == NULL) {
        return 0;
    }

    if (save != NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "payment_method charges a saved method: not "
                           "with save_payment_method");
    }

    s = json_string_value(pm);
    len = json_string_length(pm);

    if (!pay_method_id_valid(s, len)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "payment_method must be a saved method's id "
                           "(pm_ and 24 letters)");
    }

    if (!json_is_true(off)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "off_session must be true with payment_method: "
                           "a saved method is charged without the shopper");
    }

    memcpy(co->payment_method, s, len + 1);

    return 0;
}


/* The body ----------------------------------------------------------------- */

/*
 * "mode": "payment" (the default: the shopper pays the orders) or "setup"
 * (Stripe's Checkout word: the shopper only saves a method, nothing is
 * charged).  A top-level "currency" is a setup's alone: a payment's is
 * its orders'.
 */
static int
pay_checkout_mode(pay_checkout_t *co, json_t *root, pay_verdict_t *v)
{
    json_t      *val;
    const char  *s;

    val = json_object_get(root, "mode");

    if (val != NULL) {
        s = json_string_value(val);

        if (s != NULL && strcmp(s, "setup") == 0) {
            co->setup = 1;

        } else if (s == NULL || strcmp(s, "payment") != 0) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "mode must be \"payment\" or \"setup\"");
        }
    }

    if (!co->setup && json_object_get(root, "currency") != NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "currency is for \"mode\": \"setup\" only: a "
                           "payment's currency is its payment_orders'");
    }

    return 0;
}


/*
 * What a payment and a setup take alike: buyer_info, metadata and
 * expires_at (a positive integer of epoch seconds; the PSP's window is the
 * adapter's to check).
 */
static int
pay_checkout_common(pay_checkout_t *co, json_t *root, pay_verdict_t *v)
{
    json_t  *val;

    val = json_object_get(root, "buyer_info");

    if (val != NULL
        && pay_check_buyer(val, &co->buyer_email, &co->buyer_id, v) != 0)
    {
        return -1;
    }

    val = json_object_get(root, "metadata");

    if (val != NULL) {
        if (pay_metadata_check(val, v) != 0) {
            return -1;
        }

        co->metadata = json_object_size(val) > 0 ? val : NULL;
    }

    val = json_object_get(root, "expires_at");

    if (val != NULL) {
        if (!json_is_integer(val) || json_integer_value(val) <= 0) {
            return pay_verdict(v, PAY_ERR_INVALID_EXPIRES_AT,
                               "expires_at must be a positive integer of "
                               "epoch seconds");
        }

        co->expires_at = (int64_t) json_integer_value(val);
    }

    return 0;
}


/*
 * A save without a charge ("mode": "setup"): save_payment_method, a
 * currency (the PSP's zero-amount session is in one), the return URLs,
 * optional checkout_id rules as any checkout; no payment_orders, no
 * capture, no saved method charged.  Its total is 0 and it has no orders.
 */
static int
pay_checkout_setup(pay_checkout_t *co, json_t *root, pay_verdict_t *v)
{
    size_t                 len;
    json_t                *val;
    const char            *s;
    const pay_currency_t  *cur;

    if (json_object_get(root, "payment_orders") != NULL
        || json_object_get(root, "capture") != NULL)
    {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "\"mode\": \"setup\" saves a method and charges "
                           "nothing: no payment_orders, no capture");
    }

    if (json_object_get(root, "save_payment_method") == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "\"mode\": \"setup\" needs save_payment_method");
    }

    if (pay_checkout_common(co, root, v) != 0) {
        return -1;
    }

    /* save_payment_method's rules; payment_method with it is refused */
    if (pay_check_saved_method(co, root, v) != 0) {
        return -1;
    }

    val = json_object_get(root, "checkout_id");
    s = json_string_value(val);
    len = json_string_length(val);

    if (!pay_id_valid(s, len)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "checkout_id must match [A-Za-z0-9_-]{1,%d}",
                           PAY_ID_MAX);
    }

    memcpy(co->checkout_id, s, len + 1);

    val = json_object_get(root, "psp");

    if (val != NULL) {
        s = json_string_value(val);
        len = json_string_length(val);

        if (s == NULL || !pay_psp_name_valid(s, len)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "psp must match [a-z0-9_-]{1,%d}",
                               PAY_PSP_NAME_MAX);
        }

        memcpy(co->psp, s, len + 1);
    }

    val = json_object_get(root, "currency");
    cur = pay_currency_find(json_string_value(val), json_string_length(val));

    if (cur == NULL) {
        return pay_verdict(v, PAY_ERR_UNSUPPORTED_CURRENCY,
                           "currency must be an active ISO 4217 code in "
                           "upper case (\"mode\": \"setup\" needs one)");
    }

    memcpy(co->currency, cur->code, 4);
    co->exponent = cur->exponent;
    co->total = 0;
    co->norders = 0;

    if (pay_check_url(root, "success_url", &co->success_url, v) != 0
        || pay_check_url(root, "cancel_url", &co->cancel_url, v) != 0)
    {
        return -1;
    }

    return 0;
}


static int
pay_checkout_fields(pay_checkout_t *co, pay_verdict_t *v)
{
    static const char *const  known[] = {
        "checkout_id", "buyer_info", "payment_orders", "success_url",
        "cancel_url", "psp", "metadata", "expires_at", "capture",
        "save_payment_method", "payment_method", "off_session", "mode",
        "currency", NULL
    };
    static const char *const  strings[] = {
        "checkout_id", "success_url", "cancel_url", NULL
    };

    int                    first_mixed;
    size_t                 i, j, n, len;
    int64_t                amount;
    const char            *key, *s;
    json_t                *root, *val, *orders, *ord;
    pay_amount_rc_e        rc;
    const pay_currency_t  *cur, *first;
    const char *const     *name;

    root = co->root;

    /* fields and types, everything before any value rule */

    json_object_foreach(root, key, val) {
        if (!pay_key_in(key, known)) {
            return pay_unknown_field(v, "", key);
        }
    }

    for (name = strings; *name != NULL; name++) {
        if (pay_get_string(root, *name, "", &val, v) != 0) {
            return -1;
        }
    }

    if (pay_checkout_mode(co, root, v) != 0) {
        return -1;
    }

    if (co->setup) {
        return pay_checkout_setup(co, root, v);
    }

    orders = json_object_get(root, "payment_orders");

    if (orders == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "payment_orders is required");
    }

    if (!json_is_array(orders)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "payment_orders must be an array");
    }

    n = json_array_size(orders);

    if (n == 0 || n > PAY_ORDERS_MAX) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "payment_orders must hold 1 to %d orders",
                           PAY_ORDERS_MAX);
    }

    for (i = 0; i < n; i++) {
        if (pay_check_order_fields(json_array_get(orders, i), i, v) != 0) {
            return -1;
        }
    }

    if (pay_checkout_common(co, root, v) != 0) {
        return -1;
    }

    /* "automatic" (the default) or "manual": authorize now, capture
     * later */
    val = json_object_get(root, "capture");

    if (val != NULL) {
        s = json_string_value(val);

        if (s != NULL && strcmp(s, "manual") == 0) {
            co->manual_capture = 1;

        } else if (s == NULL || strcmp(s, "automatic") != 0) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "capture must be \"automatic\" or "
                               "\"manual\"");
        }
    }

    if (pay_check_saved_method(co, root, v) != 0) {
        return -1;
    }

    /* ids */

    val = json_object_get(root, "checkout_id");
    s = json_string_value(val);
    len = json_string_length(val);

    if (!pay_id_valid(s, len)) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "checkout_id must match [A-Za-z0-9_-]{1,%d}",
                           PAY_ID_MAX);
    }

    memcpy(co->checkout_id, s, len + 1);

    /* psp is optional: without it a payments_route chooses (co->psp "") */
    val = json_object_get(root, "psp");

    if (val != NULL) {
        if (!json_is_string(val)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "psp must be a string");
        }

        s = json_string_value(val);
        len = json_string_length(val);

        if (!pay_psp_name_valid(s, len)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "psp must match [a-z0-9_-]{1,%d}",
                               PAY_PSP_NAME_MAX);
        }

        memcpy(co->psp, s, len + 1);
    }

    co->orders = calloc(n, sizeof(pay_order_t));
    if (co->orders == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "out of memory");
    }

    co->norders = n;

    for (i = 0; i < n; i++) {
        ord = json_array_get(orders, i);

        val = json_object_get(ord, "payment_order_id");
        s = json_string_value(val);
        len = json_string_length(val);

        if (!pay_id_valid(s, len)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "payment_orders[%zu].payment_order_id must "
                               "match [A-Za-z0-9_-]{1,%d}", i, PAY_ID_MAX);
        }

        memcpy(co->orders[i].id, s, len + 1);

        val = json_object_get(ord, "seller_account");
        s = json_string_value(val);
        len = json_string_length(val);

        if (!pay_seller_valid(s, len)) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "payment_orders[%zu].seller_account must "
                               "match [A-Za-z0-9_.-]{1,%d}", i,
                               PAY_SELLER_MAX);
        }

        memcpy(co->orders[i].seller, s, len + 1);
    }

    /* currencies: each an active code, exactly as ISO spells it */

    first = NULL;
    first_mixed = 0;

    for (i = 0; i < n; i++) {
        val = json_object_get(json_array_get(orders, i), "currency");
        cur = pay_currency_find(json_string_value(val),
                                json_string_length(val));

        if (cur == NULL) {
            return pay_verdict(v, PAY_ERR_UNSUPPORTED_CURRENCY,
                               "payment_orders[%zu].currency must be an "
                               "active ISO 4217 code in upper case", i);
        }

        if (first == NULL) {
            first = cur;

        } else if (cur != first) {
            first_mixed = 1;
        }
    }

    /* amounts, each in its own order's currency */

    for (i = 0; i < n; i++) {
        ord = json_array_get(orders, i);
        val = json_object_get(ord, "amount");
        cur = pay_currency_find(
                  json_string_value(json_object_get(ord, "currency")), 3);

        rc = pay_amount_parse(json_string_value(val),
                              json_string_length(val), cur->exponent,
                              &amount);

        if (rc != PAY_AMOUNT_OK) {
            return pay_amount_verdict(v, rc, i, cur);
        }

        co->orders[i].amount = amount;
    }

    if (first_mixed) {
        return pay_verdict(v, PAY_ERR_MIXED_CURRENCY,
                           "all payment_orders of a checkout must share "
                           "one currency");
    }

    memcpy(co->currency, first->code, 4);
    co->exponent = first->exponent;

    co->total = 0;

    for (i = 0; i < n; i++) {
        if (co->orders[i].amount > INT64_MAX - co->total) {
            return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                               "the sum of payment_orders amounts is too "
                               "large (at most %" PRId64 " minor units)",
                               INT64_MAX);
        }

        co->total += co->orders[i].amount;
    }

    /* Quadratic, but n <= PAY_ORDERS_MAX. */
    for (i = 1; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(co->orders[i].id, co->orders[j].id) == 0) {
                return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                                   "payment_orders[%zu].payment_order_id "
                                   "repeats payment_orders[%zu]'s: ids "
                                   "must be unique", i, j);
            }
        }
    }

    if (pay_check_url(root, "success_url", &co->success_url, v) != 0
        || pay_check_url(root, "cancel_url", &co->cancel_url, v) != 0)
    {
        return -1;
    }

    return 0;
}


int
pay_checkout_parse(const char *body, size_t len, pay_checkout_t *co,
    pay_verdict_t *v)
{
    json_error_t  err;

    if (co == NULL || v == NULL) {
        return -1;
    }

    memset(co, 0, sizeof(*co));
    v->err = PAY_ERR_NONE;
    v->detail[0] = '\0';

    if (body == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST, "the body is empty");
    }

    /* No JSON_ALLOW_NUL: every string is NUL-free, so the C string and its
     * length agree.  jansson's error text is not used: it can quote the
     * body ("invalid token near '...'"). */
    co->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);

    if (co->root == NULL) {
        if (json_error_code(&err) == json_error_duplicate_key) {
            return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                               "duplicate key in a JSON object (line %d, "
                               "column %d)", err.line, err.column);
        }

        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "the body is not valid JSON (line %d, "
                           "column %d)", err.line, err.column);
    }

    /* Card data first, whatever else is wrong with the body: that error
     * is the one that must reach the merchant (and the alerting). */
    if (pay_json_body_contains_card(co->root)) {
        pay_checkout_free(co);
        return pay_verdict(v, PAY_ERR_CARD_DATA,
                           "the body contains what looks like a card "
                           "number; card data must never be sent to the "
                           "gateway");
    }

    if (!json_is_object(co->root)) {
        pay_checkout_free(co);
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST,
                           "the body must be a JSON object");
    }

    if (pay_checkout_fields(co, v) != 0) {
        pay_checkout_free(co);
        return -1;
    }

    return 0;
}


void
pay_checkout_free(pay_checkout_t *co)
{
    if (co == NULL) {
        return;
    }

    json_decref(co->root);
    free(co->orders);
    memset(co, 0, sizeof(*co));
}


int
pay_checkout_fingerprint(const pay_checkout_t *co, const char *method,
    const char *path, char hex[65])
{
    if (co == NULL || co->root == NULL) {
        return -1;
    }

    return pay_fingerprint(method, path, co->root, hex);
}


char *
pay_checkout_orders_json(const pay_checkout_t *co)
{
    char    *s;
    size_t   i;
    json_t  *orders, *o;

    if (co == NULL) {
        return NULL;
    }

    /* a save without a charge has no orders */
    if (co->setup && co->norders == 0) {
        return strdup("[]");
    }

    if (co->orders == NULL || co->norders == 0) {
        return NULL;
    }

    orders = json_array();
    if (orders == NULL) {
        return NULL;
    }

    for (i = 0; i < co->norders; i++) {
        o = json_pack("{s:s, s:s, s:I}",
                      "payment_order_id", co->orders[i].id,
                      "seller_account", co->orders[i].seller,
                      "amount_minor", (json_int_t) co->orders[i].amount);

        if (o == NULL || json_array_append_new(orders, o) != 0) {
            json_decref(orders);
            return NULL;
        }
    }

    s = pay_json_dumps(orders);
    json_decref(orders);

    return s;
}
