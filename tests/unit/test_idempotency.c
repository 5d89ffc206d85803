/*
 * Unit tests: Idempotency-Key parsing, canonical JSON, fingerprints
 * (src/idempotency.c).
 */

#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <payments/idempotency.h>


static int
key(const char *hdr, char *out, size_t *outlen)
{
    return pay_idem_key_parse(hdr, strlen(hdr), out, outlen);
}


static void
key_is(const char *hdr, const char *want)
{
    char    out[PAY_IDEM_KEY_MAX + 1];
    size_t  n = 0;

    cr_assert_eq(key(hdr, out, &n), 0, "%s", hdr);
    cr_assert_str_eq(out, want);
    cr_assert_eq(n, strlen(want));
}


static void
key_refused(const char *hdr)
{
    char  out[PAY_IDEM_KEY_MAX + 1];

    cr_assert_eq(key(hdr, out, NULL), -1, "%s", hdr);
}


/* Idempotency-Key */

Test(idempotency, bare_token_is_the_key)
{
    key_is("k", "k");
    key_is("3f1c-9a2e_key:1/2", "3f1c-9a2e_key:1/2");
}


Test(idempotency, quoted_and_bare_are_the_same_key)
{
    char    a[PAY_IDEM_KEY_MAX + 1], b[PAY_IDEM_KEY_MAX + 1];
    size_t  na, nb;

    cr_assert_eq(key("\"k\"", a, &na), 0);
    cr_assert_eq(key("k", b, &nb), 0);
    cr_assert_str_eq(a, b);
    cr_assert_eq(na, nb);
}


Test(idempotency, quoted_escapes_backslash_and_quote_only)
{
    key_is("\"a\\\"b\"", "a\"b");
    key_is("\"a\\\\b\"", "a\\b");
    key_refused("\"a\\nb\"");
    key_refused("\"a\\x\"");
    key_refused("\"a\\\"");
}


Test(idempotency, quoted_allows_space)
{
    key_is("\"a b\"", "a b");
    key_is("\" \"", " ");
}


Test(idempotency, bare_refuses_space_inside)
{
    key_refused("a b");
}


Test(idempotency, surrounding_whitespace_ignored)
{
    key_is("  k\t", "k");
    key_is(" \"k\" ", "k");
}


Test(idempotency, empty_refused)
{
    key_refused("");
    key_refused("   ");
    key_refused("\"\"");
}


Test(idempotency, quoted_must_close_at_the_end)
{
    key_refused("\"k");
    key_refused("\"");
    key_refused("\"k\";a=1");
    key_refused("\"k\"x");
    key_refused("\"k\", \"j\"");
}


Test(idempotency, control_and_non_ascii_refused)
{
    key_refused("k\x01");
    key_refused("k\x7f");
    key_refused("k\r\nX: y");
    key_refused("\"k\tj\"");
    key_refused("\"k\x7f\"");
    key_refused("cl\xc3\xa9");
    key_refused("\"cl\xc3\xa9\"");
}


Test(idempotency, embedded_nul_refused)
{
    char  out[PAY_IDEM_KEY_MAX + 1];

    cr_assert_eq(pay_idem_key_parse("a\0b", 3, out, NULL), -1);
    cr_assert_eq(pay_idem_key_parse("\"a\0b\"", 5, out, NULL), -1);
}


Test(idempotency, length_is_1_to_255)
{
    char    hdr[300], out[PAY_IDEM_KEY_MAX + 1];
    size_t  n;

    memset(hdr, 'k', 255);
    hdr[255] = '\0';
    cr_assert_eq(key(hdr, out, &n), 0);
    cr_assert_eq(n, 255);
    cr_assert_eq(strlen(out), 255);

    hdr[255] = 'k';
    hdr[256] = '\0';
    cr_assert_eq(key(hdr, out, &n), -1);
}


Test(idempotency, quoted_length_counts_after_unquoting)
{
    char    hdr[600], out[PAY_IDEM_KEY_MAX + 1];
    size_t  n, i;

    /* 255 escaped quotes: 512 bytes on the wire, a 255-byte key */
    hdr[0] = '"';
    for (i = 0; i < 255; i++) {
        hdr[1 + 2 * i] = '\\';
        hdr[2 + 2 * i] = '"';
    }
    hdr[511] = '"';
    hdr[512] = '\0';
    cr_assert_eq(key(hdr, out, &n), 0);
    cr_assert_eq(n, 255);
    cr_assert_eq(out[254], '"');

    /* 256 */
    memset(hdr, 'k', 258);
    hdr[0] = '"';
    hdr[257] = '"';
    hdr[258] = '\0';
    cr_assert_eq(key(hdr, out, &n), -1);
}


Test(idempotency, not_nul_terminated_uses_len)
{
    char    out[PAY_IDEM_KEY_MAX + 1];
    size_t  n;

    cr_assert_eq(pay_idem_key_parse("abcdef", 3, out, &n), 0);
    cr_assert_str_eq(out, "abc");
    cr_assert_eq(n, 3);
}


Test(idempotency, null_arguments_refused)
{
    char  out[PAY_IDEM_KEY_MAX + 1];

    cr_assert_eq(pay_idem_key_parse(NULL, 0, out, NULL), -1);
    cr_assert_eq(pay_idem_key_parse("k", 1, NULL, NULL), -1);
}


/* canonical JSON */

static char *
canon(const char *text)
{
    json_t  *j;
    char    *s;

    j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "%s", text);
    s = pay_json_canonical(j);
    json_decref(j);
    cr_assert_not_null(s);

    return s;
}


Test(idempotency, canonical_sorts_keys_and_strips_whitespace)
{
    char  *s;

    s = canon("{ \"b\" : 1,\n \"a\" : { \"d\": [1, 2], \"c\": null } }");
    cr_assert_str_eq(s, "{\"a\":{\"c\":null,\"d\":[1,2]},\"b\":1}");
    free(s);
}


Test(idempotency, canonical_escapes_non_ascii)
{
    char  *a, *b;

    a = canon("{\"n\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
    b = canon("{\"n\":\"caf\\u00e9 \\ud83d\\ude00\"}");
    cr_assert_str_eq(a, "{\"n\":\"caf\\u00E9 \\uD83D\\uDE00\"}");
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}


Test(idempotency, canonical_array_order_matters)
{
    char  *a, *b;

    a = canon("[1,2]");
    b = canon("[2,1]");
    cr_assert_str_neq(a, b);
    free(a);
    free(b);
}


Test(idempotency, canonical_null_root)
{
    cr_assert_null(pay_json_canonical(NULL));
}


/* fingerprint */

static void
fp(const char *method, const char *path, const char *body, char hex[65])
{
    json_t  *j;

    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(pay_fingerprint(method, path, j, hex), 0);
    json_decref(j);
}


Test(idempotency, fingerprint_known_vector)
{
    char  hex[65];

    /* sha256("POST\n/v1/payments\n{\"a\":1}"), computed independently */
    fp("POST", "/v1/payments", "{ \"a\" : 1 }", hex);
    cr_assert_str_eq(hex, "98482f14f0c38a774016e604a73a6d6e"
                          "6309989fa5722fa94cb2fc11ea2e8360");
}


Test(idempotency, fingerprint_known_vector_unicode_nested)
{
    char  hex[65];

    fp("POST", "/v1/payments",
       "{\"b\":\"\\u00e9/\\u2028\\ud83d\\ude00\",\"a\":[1,2.5,true,null,"
       "{\"z\":1,\"y\":\"\\n\\\"\"}], \"A\":-0}", hex);
    cr_assert_str_eq(hex, "4dbe5f788dcbf574d0258ea867754a34"
                          "55a044b6c9bd0be5474d74dd93acd525");
}


Test(idempotency, fingerprint_ignores_whitespace_and_key_order)
{
    char  a[65], b[65];

    fp("POST", "/v1/payments", "{\"x\":\"1\",\"y\":[{\"q\":1,\"p\":2}]}", a);
    fp("POST", "/v1/payments",
       "\n{ \"y\" : [ { \"p\" : 2 , \"q\" : 1 } ] ,\t\"x\" : \"1\" }\n", b);
    cr_assert_str_eq(a, b);
}


Test(idempotency, fingerprint_depends_on_method_path_and_body)
{
    char  a[65], b[65], c[65], d[65];

    fp("POST", "/v1/payments", "{\"a\":1}", a);
    fp("POST", "/v1/other", "{\"a\":1}", b);
    fp("PUT", "/v1/payments", "{\"a\":1}", c);
    fp("POST", "/v1/payments", "{\"a\":2}", d);
    cr_assert_str_eq(b, "984e63b56c59b1f100ca3dfe56ddf4e3"
                        "ffa5a4f780a6e9c737f37c539b66f815");
    cr_assert_str_neq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_str_neq(a, d);
}


Test(idempotency, fingerprint_without_body_hashes_empty_part)
{
    char  hex[65];

    cr_assert_eq(pay_fingerprint("POST", "/v1/payments", NULL, hex), 0);
    /* sha256("POST\n/v1/payments\n") */
    cr_assert_str_eq(hex, "7eabda7a378ecde76e55018dd2da3612"
                          "b41b84d0123531818f049342a1c9e7bf");
}


Test(idempotency, fingerprint_refuses_newline_in_method_or_path)
{
    char     hex[65];
    json_t  *j = json_object();

    cr_assert_eq(pay_fingerprint("POST\n/v1", "x", j, hex), -1);
    cr_assert_eq(pay_fingerprint("POST", "/v1\n{}", j, hex), -1);
    cr_assert_eq(pay_fingerprint(NULL, "/v1", j, hex), -1);
    cr_assert_eq(pay_fingerprint("POST", NULL, j, hex), -1);
    json_decref(j);
}
