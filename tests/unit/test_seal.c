/*
 * Unit tests: secrets at rest (src/seal.c): the key file, sealing, opening,
 * blind indexes.
 */

#include <string.h>

#include <criterion/criterion.h>

#include <payments/seal.h>


/* key 00 01 .. 1f, and 1f 1e .. 00 */
#define SL_K0  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SL_K1  "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="


static int
sl_parse(pay_keyring_t *kr, const char *text, size_t *bad)
{
    return pay_keyring_parse(kr, text, strlen(text), bad);
}


static void
sl_ring(pay_keyring_t *kr, const char *text)
{
    size_t  bad;

    cr_assert_eq(sl_parse(kr, text, &bad), 0, "line %zu", bad);
}


static void
sl_seal(const pay_keyring_t *kr, const char *ad, const char *plain, char *out,
    size_t cap)
{
    cr_assert_eq(pay_seal(kr, ad, plain, strlen(plain), out, cap), 0);
}


static int
sl_open(const pay_keyring_t *kr, const char *ad, const char *sealed,
    char *out, size_t cap)
{
    size_t  n;

    return pay_unseal(kr, ad, sealed, strlen(sealed), out, cap, &n);
}


Test(seal, key_file_takes_comments_blank_lines_crlf_and_tabs)
{
    pay_keyring_t  kr;

    sl_ring(&kr, "# keys\r\n\r\n  k2026b " SL_K1 "\r\nk2026a\t" SL_K0 "  \n");
    cr_assert_eq(kr.n, 2);
    cr_expect_str_eq(kr.keys[0].kid, "k2026b");
    cr_expect_str_eq(kr.keys[1].kid, "k2026a");
    cr_expect_eq(kr.keys[1].key[31], 0x1f);
    pay_keyring_wipe(&kr);
    cr_expect_eq(kr.n, 0);
}


Test(seal, key_file_refuses_bad_lines_by_number)
{
    size_t          bad;
    pay_keyring_t   kr;
    const char     *nine;

    cr_expect_eq(sl_parse(&kr, "k1 " SL_K0 "\nk1 " SL_K1 "\n", &bad), -1);
    cr_expect_eq(bad, 2, "a repeated kid");
    cr_expect_eq(sl_parse(&kr, "k1 AAEC\n", &bad), -1);
    cr_expect_eq(bad, 1, "not 32 bytes");
    cr_expect_eq(sl_parse(&kr, "k1 " SL_K0 " extra\n", &bad), -1);
    cr_expect_eq(sl_parse(&kr, "k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
                          &bad), -1, "no padding");
    cr_expect_eq(sl_parse(&kr, "k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH*8=\n",
                          &bad), -1, "not base64");
    cr_expect_eq(sl_parse(&kr, "k.1 " SL_K0 "\n", &bad), -1, "a kid's char");
    cr_expect_eq(sl_parse(&kr, "k12345678901234567 " SL_K0 "\n", &bad), -1,
                 "a kid of 17");
    cr_expect_eq(sl_parse(&kr, SL_K0 "\n", &bad), -1, "no kid");
    cr_expect_eq(sl_parse(&kr, "# nothing\n\n", &bad), -1);
    cr_expect_eq(bad, 0, "no key at all");

    nine = "a " SL_K0 "\nb " SL_K0 "\nc " SL_K0 "\nd " SL_K0 "\ne " SL_K0
           "\nf " SL_K0 "\ng " SL_K0 "\nh " SL_K0 "\ni " SL_K0 "\n";
    cr_expect_eq(sl_parse(&kr, nine, &bad), -1);
    cr_expect_eq(bad, 9, "the ninth key");
}


Test(seal, sealed_value_opens_with_its_associated_data_only)
{
    char           s[256], o[64];
    pay_keyring_t  kr;

    sl_ring(&kr, "k0 " SL_K0 "\n");
    sl_seal(&kr, "ep_1", "whsec_abc", s, sizeof(s));

    cr_expect_eq(strncmp(s, "v1.k0.", 6), 0);
    cr_expect_leq(strlen(s), pay_seal_len(9));
    cr_expect_null(strstr(s, "whsec"));
    cr_assert_eq(sl_open(&kr, "ep_1", s, o, sizeof(o)), 0);
    cr_expect_str_eq(o, "whsec_abc");
    cr_expect_eq(sl_open(&kr, "ep_2", s, o, sizeof(o)), -1,
                 "moved to another row");
    cr_expect_eq(sl_open(&kr, "ep_1", s, o, 9), -1, "no room for the NUL");
}


Test(seal, each_seal_draws_a_new_nonce)
{
    char           a[256], b[256];
    pay_keyring_t  kr;

    sl_ring(&kr, "k0 " SL_K0 "\n");
    sl_seal(&kr, "x", "same", a, sizeof(a));
    sl_seal(&kr, "x", "same", b, sizeof(b));
    cr_expect_str_neq(a, b);
}


Test(seal, tampered_truncated_or_foreign_values_do_not_open)
{
    char           s[256], t[256], o[64];
    size_t         i, n;
    pay_keyring_t  kr, other;

    sl_ring(&kr, "k0 " SL_K0 "\n");
    sl_ring(&other, "k9 " SL_K1 "\n");
    sl_seal(&kr, "ad", "secret", s, sizeof(s));
    n = strlen(s);

    for (i = 6; i < n; i++) {
        strcpy(t, s);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        cr_expect_eq(sl_open(&kr, "ad", t, o, sizeof(o)), -1, "byte %zu", i);
    }

    strcpy(t, s);
    t[n - 1] = '\0';
    cr_expect_eq(sl_open(&kr, "ad", t, o, sizeof(o)), -1, "truncated");
    cr_expect_eq(sl_open(&kr, "ad", "v1.k0.", o, sizeof(o)), -1);
    cr_expect_eq(sl_open(&kr, "ad", "v2.k0.AAAA", o, sizeof(o)), -1);
    cr_expect_eq(sl_open(&kr, "ad", "plain-token", o, sizeof(o)), -1);
    cr_expect_eq(sl_open(&other, "ad", s, o, sizeof(o)), -1, "unknown kid");
}


Test(seal, a_rotated_ring_opens_old_values_and_seals_under_the_first_key)
{
    char           old[256], cur[256], o[64];
    pay_keyring_t  before, after;

    sl_ring(&before, "k0 " SL_K0 "\n");
    sl_ring(&after, "k1 " SL_K1 "\nk0 " SL_K0 "\n");
    sl_seal(&before, "ad", "token", old, sizeof(old));
    sl_seal(&after, "ad", "token", cur, sizeof(cur));

    cr_expect_eq(sl_open(&after, "ad", old, o, sizeof(o)), 0);
    cr_expect_str_eq(o, "token");
    cr_expect_eq(strncmp(cur, "v1.k1.", 6), 0);
    cr_expect_eq(pay_seal_is_current(&after, old, strlen(old)), 0);
    cr_expect_eq(pay_seal_is_current(&after, cur, strlen(cur)), 1);
    cr_expect_eq(pay_seal_is_current(&before, old, strlen(old)), 1);
}


Test(seal, blind_index_is_hmac_under_the_derived_key)
{
    char           idx[PAY_BLIND_INDEX_LEN + 1], again[PAY_BLIND_INDEX_LEN + 1];
    pay_keyring_t  kr;

    sl_ring(&kr, "k1 " SL_K1 "\nk0 " SL_K0 "\n");

    /* python3: ik = HMAC(key 00..1f, "ngx_payments blind index v1");
     * HMAC(ik, b"psp_token\0tok").hexdigest() */
    cr_assert_eq(pay_blind_index(&kr, 1, "psp_token", "tok", 3, idx), 0);
    cr_expect_str_eq(idx, "5af96c517bb98935173a70ed3b3117c709b63b2be5dc75a8"
                          "07df65fd56c1491b");

    cr_assert_eq(pay_blind_index(&kr, 0, "psp_token", "tok", 3, again), 0);
    cr_expect_str_neq(idx, again, "another key, another index");
    cr_assert_eq(pay_blind_index(&kr, 1, "psp_token:x", "tok", 3, again), 0);
    cr_expect_str_neq(idx, again, "another domain, another index");
    cr_expect_eq(pay_blind_index(&kr, 2, "psp_token", "tok", 3, again), -1);
}


Test(seal, blind_index_refuses_a_key_pay_keyring_parse_did_not_read,
     .description = "the index's key is derived as pay_keyring_parse reads "
                    "a key; a ring filled by hand has none, and indexing "
                    "under it would be an index under no key: refused")
{
    char           idx[PAY_BLIND_INDEX_LEN + 1];
    pay_keyring_t  kr;

    sl_ring(&kr, "k1 " SL_K1 "\n");
    cr_assert_eq(pay_blind_index(&kr, 0, "psp_token", "tok", 3, idx), 0);

    memset(&kr, 0, sizeof(kr));
    kr.n = 1;
    strcpy(kr.keys[0].kid, "k1");
    memset(kr.keys[0].key, 7, sizeof(kr.keys[0].key));
    cr_expect_eq(pay_blind_index(&kr, 0, "psp_token", "tok", 3, idx), -1);
}
