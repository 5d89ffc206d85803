/*
 * Unit tests: merchant API keys and the Authorization header
 * (src/apikey.c).
 */

#include <string.h>

#include <criterion/criterion.h>

#include <payments/apikey.h>


#define AK_KEY   "mk_test_AbCdEf012345_" \
                 "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy"
#define AK_LIVE  "mk_live_ZZZZZZZZZZZZ_" \
                 "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy"


static int
ak_parse(const char *s, pay_apikey_t *k)
{
    return pay_apikey_parse(s, strlen(s), k);
}


static int
ak_bearer(const char *hdr, const char **tok, size_t *len)
{
    return pay_bearer_token(hdr, strlen(hdr), tok, len);
}


Test(apikey, well_formed_key_parses)
{
    pay_apikey_t  k;

    cr_assert_eq(strlen(AK_KEY), 64);
    cr_assert_eq(ak_parse(AK_KEY, &k), 0);
    cr_expect_str_eq(k.mode, "test");
    cr_expect_str_eq(k.key_id, "AbCdEf012345");

    cr_assert_eq(ak_parse(AK_LIVE, &k), 0);
    cr_expect_str_eq(k.mode, "live");
    cr_expect_str_eq(k.key_id, "ZZZZZZZZZZZZ");
}


Test(apikey, prefix_must_be_mk)
{
    pay_apikey_t  k;

    cr_expect_eq(ak_parse("sk_test_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy", &k),
                 -1);
    cr_expect_eq(ak_parse("MK_test_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy", &k),
                 -1);
}


Test(apikey, mode_is_test_or_live)
{
    pay_apikey_t  k;

    cr_expect_eq(ak_parse("mk_prod_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy", &k),
                 -1);
    cr_expect_eq(ak_parse("mk_TEST_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy", &k),
                 -1);
    cr_expect_eq(k.mode[0], '\0', "filled on failure");
}


Test(apikey, key_id_is_12_alnum)
{
    pay_apikey_t  k;

    cr_expect_eq(ak_parse("mk_test_AbCdEf01234-_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy", &k),
                 -1);
    cr_expect_eq(ak_parse("mk_test_AbCdEf01234_x"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xy", &k),
                 -1);
    cr_expect_eq(ak_parse("mk_test_AbCdEf0123456_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_x", &k),
                 -1);
}


Test(apikey, secret_is_43_base64url)
{
    pay_apikey_t  k;

    cr_expect_eq(ak_parse("mk_test_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC+/xy", &k),
                 -1);
    cr_expect_eq(ak_parse("mk_test_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_x=", &k),
                 -1);
    cr_expect_eq(ak_parse("mk_test_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_x", &k),
                 -1);
    cr_expect_eq(ak_parse("mk_test_AbCdEf012345_"
                          "0123456789abcdefghijklmnopqrstuvwxyzABC-_xyz", &k),
                 -1);
}


Test(apikey, length_is_exact)
{
    pay_apikey_t  k;
    char          buf[80];

    cr_expect_eq(pay_apikey_parse("", 0, &k), -1);
    cr_expect_eq(pay_apikey_parse(NULL, 64, &k), -1);
    cr_expect_eq(pay_apikey_parse(AK_KEY, 63, &k), -1);

    /* a NUL inside the given length is not a key character */
    memcpy(buf, AK_KEY, 64);
    buf[40] = '\0';
    cr_expect_eq(pay_apikey_parse(buf, 64, &k), -1);
}


Test(apikey, hash_is_sha256_hex)
{
    char  hex[65];

    /* echo -n abc | sha256sum */
    pay_apikey_hash("abc", 3, hex);
    cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
                          "b00361a396177a9cb410ff61f20015ad");

    pay_apikey_hash("", 0, hex);
    cr_expect_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                          "27ae41e4649b934ca495991b7852b855");

    pay_apikey_hash(AK_KEY, 64, hex);
    cr_expect_eq(strlen(hex), 64);
}


Test(apikey, hash_equal_constant_time_exact)
{
    char  a[65], b[65];

    pay_apikey_hash(AK_KEY, 64, a);
    pay_apikey_hash(AK_KEY, 64, b);
    cr_expect_eq(pay_hash_equal(a, b), 1);

    b[63] = b[63] == '0' ? '1' : '0';
    cr_expect_eq(pay_hash_equal(a, b), 0);

    pay_apikey_hash(AK_LIVE, 64, b);
    cr_expect_eq(pay_hash_equal(a, b), 0);
}


Test(apikey, hash_equal_requires_64_chars)
{
    char  a[65], b[66];

    pay_apikey_hash(AK_KEY, 64, a);
    memcpy(b, a, 65);
    cr_assert_eq(pay_hash_equal(a, b), 1);

    /* a prefix, an empty string or a longer string never match */
    b[63] = '\0';
    cr_expect_eq(pay_hash_equal(a, b), 0);
    cr_expect_eq(pay_hash_equal(b, a), 0);
    cr_expect_eq(pay_hash_equal("", ""), 0);

    memcpy(b, a, 64);
    b[64] = 'f';
    b[65] = '\0';
    cr_expect_eq(pay_hash_equal(a, b), 0);

    cr_expect_eq(pay_hash_equal(NULL, a), 0);
    cr_expect_eq(pay_hash_equal(a, NULL), 0);
}


Test(apikey, bearer_token_extracted)
{
    const char  *tok;
    size_t       len;

    cr_assert_eq(ak_bearer("Bearer " AK_KEY, &tok, &len), 0);
    cr_expect_eq(len, 64);
    cr_expect_eq(strncmp(tok, AK_KEY, 64), 0);
}


Test(apikey, bearer_scheme_case_insensitive)
{
    const char  *tok;
    size_t       len;

    cr_expect_eq(ak_bearer("bearer abc", &tok, &len), 0);
    cr_expect_eq(ak_bearer("BEARER abc", &tok, &len), 0);
    cr_expect_eq(ak_bearer("BeArEr abc", &tok, &len), 0);
    cr_expect_eq(len, 3);
}


Test(apikey, bearer_several_spaces)
{
    const char  *tok;
    size_t       len;

    cr_assert_eq(ak_bearer("Bearer    abc", &tok, &len), 0);
    cr_expect_eq(len, 3);
    cr_expect_eq(strncmp(tok, "abc", 3), 0);

    /* trailing OWS is not part of the token */
    cr_assert_eq(ak_bearer("Bearer abc \t", &tok, &len), 0);
    cr_expect_eq(len, 3);
}


Test(apikey, bearer_other_scheme_rejected)
{
    const char  *tok;
    size_t       len;

    cr_expect_eq(ak_bearer("Basic YWxhZGRpbjpvcGVuc2VzYW1l", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearerabc", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer\tabc", &tok, &len), -1);
    cr_expect_eq(ak_bearer(" Bearer abc", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bear abc", &tok, &len), -1);
    cr_expect_eq(ak_bearer("abc", &tok, &len), -1);
}


Test(apikey, bearer_empty_token_rejected)
{
    const char  *tok;
    size_t       len;

    cr_expect_eq(ak_bearer("", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer ", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer     ", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer \t", &tok, &len), -1);
    cr_expect_eq(pay_bearer_token(NULL, 0, &tok, &len), -1);
}


Test(apikey, bearer_control_chars_rejected)
{
    const char  *tok;
    size_t       len;

    cr_expect_eq(ak_bearer("Bearer ab\x01" "c", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer abc\x7f", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer ab\r\nX-Evil: 1", &tok, &len), -1);
    cr_expect_eq(pay_bearer_token("Bearer ab\0c", 11, &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer ab\tc", &tok, &len), -1);
}


Test(apikey, bearer_inner_space_or_non_ascii_rejected)
{
    const char  *tok;
    size_t       len;

    cr_expect_eq(ak_bearer("Bearer ab c", &tok, &len), -1);
    cr_expect_eq(ak_bearer("Bearer \xc3\xa9t\xc3\xa9", &tok, &len), -1);
}


Test(apikey, bearer_respects_length)
{
    const char  *tok;
    size_t       len;

    /* the value is not NUL-terminated: only len bytes count */
    cr_assert_eq(pay_bearer_token("Bearer abcdef", 10, &tok, &len), 0);
    cr_expect_eq(len, 3);
    cr_expect_eq(pay_bearer_token("Bearer abcdef", 7, &tok, &len), -1);
}
