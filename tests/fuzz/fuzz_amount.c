/*
 * libFuzzer: decimal amounts.  The first byte picks the exponent (0-4);
 * an accepted amount must format back to a string that parses to the same
 * minor units, and must be the canonical spelling when the input had all
 * of the exponent's decimals.  A second parser written the slow way (digit
 * strings compared, no arithmetic until the end) must agree on every
 * input.  The same bytes go through the card scans (checkout.h), which
 * must answer alike when every ASCII digit is written full-width.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/money.h>
#include <payments/checkout.h>


static pay_amount_rc_e
slow_parse(const char *s, size_t len, int exponent, int64_t *minor)
{
    static const char  max[] = "9223372036854775807";
    char               digits[64];
    size_t             i, n, dot, nfrac;
    int64_t            v;
    int                k;

    if (len == 0 || len > 40) {
        return PAY_AMOUNT_SYNTAX + 100;         /* not judged here */
    }

    dot = len;
    for (i = 0; i < len; i++) {
        if (s[i] == '.' && dot == len) {
            dot = i;
        } else if (s[i] < '0' || s[i] > '9') {
            return PAY_AMOUNT_SYNTAX;
        }
    }

    if (dot == 0 || dot == len - 1) {
        return PAY_AMOUNT_SYNTAX;
    }

    if (s[0] == '0' && dot > 1) {
        return PAY_AMOUNT_SYNTAX;
    }

    nfrac = (dot == len) ? 0 : len - dot - 1;
    if (nfrac > (size_t) exponent) {
        return PAY_AMOUNT_PRECISION;
    }

    /* minor units as a digit string without leading zeros */
    n = 0;
    for (i = 0; i < len; i++) {
        if (s[i] != '.' && !(n == 0 && s[i] == '0')) {
            digits[n++] = s[i];
        }
    }
    if (n > 0) {
        for (k = (int) nfrac; k < exponent; k++) {
            digits[n++] = '0';
        }
    }
    digits[n] = '\0';

    if (n == 0) {
        return PAY_AMOUNT_ZERO;
    }

    if (n > 19 || (n == 19 && strcmp(digits, max) > 0)) {
        return PAY_AMOUNT_OVERFLOW;
    }

    v = 0;
    for (i = 0; i < n; i++) {
        v = v * 10 + (digits[i] - '0');
    }

    *minor = v;

    return PAY_AMOUNT_OK;
}


/* every ASCII digit of s as its full-width twin (U+FF10-U+FF19): both
 * card scans must answer the same */
static void
card_fullwidth_same(const char *s, size_t size)
{
    char    *w;
    size_t   i, n;

    w = malloc(size * 3 + 1);
    if (w == NULL) {
        return;
    }

    for (i = 0, n = 0; i < size; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            w[n++] = (char) 0xef;
            w[n++] = (char) 0xbc;
            w[n++] = (char) (0x90 + (s[i] - '0'));

        } else {
            w[n++] = s[i];
        }
    }

    if (pay_contains_card_number(s, size) != pay_contains_card_number(w, n)
        || pay_id_contains_card_number(s, size)
           != pay_id_contains_card_number(w, n))
    {
        abort();
    }

    free(w);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              exponent, n;
    char             buf[64];
    int64_t          minor, again, slow;
    const char      *s;
    pay_amount_rc_e  rc, src;

    if (size == 0) {
        return 0;
    }

    exponent = data[0] % 5;
    s = (const char *) data + 1;
    size--;

    minor = -1;
    rc = pay_amount_parse(s, size, exponent, &minor);

    slow = -1;
    src = slow_parse(s, size, exponent, &slow);
    if (src != PAY_AMOUNT_SYNTAX + 100 && (src != rc || slow != minor)) {
        abort();
    }

    /* the card scans must not crash on the same bytes, and must read
     * full-width digits as the digits they are */
    card_fullwidth_same(s, size);

    if (rc != PAY_AMOUNT_OK) {
        if (minor != -1) {
            abort();
        }
        return 0;
    }

    if (minor <= 0) {
        abort();
    }

    n = pay_amount_format(minor, exponent, buf, sizeof(buf));
    if (n <= 0) {
        abort();
    }

    if (pay_amount_parse(buf, (size_t) n, exponent, &again) != PAY_AMOUNT_OK
        || again != minor)
    {
        abort();
    }

    /* with every decimal written out, the input is the canonical form */
    if (exponent > 0 && size > (size_t) exponent
        && s[size - exponent - 1] == '.'
        && ((size_t) n != size || memcmp(buf, s, size) != 0))
    {
        abort();
    }

    return 0;
}
