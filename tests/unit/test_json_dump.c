/*
 * Unit tests: JSON written out as jansson writes it (src/json_dump.c).
 * Every case is compared with json_dumps(v, JSON_COMPACT |
 * JSON_PRESERVE_ORDER) itself, the writer it replaces.
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include <payments/json_dump.h>


static void
jd_same(json_t *v, const char *what)
{
    char  *a, *b;

    a = pay_json_dumps(v);
    b = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (b == NULL) {
        cr_expect_null(a, "%s: jansson wrote nothing, this wrote %s", what, a);
    } else {
        cr_expect_str_eq(a ? a : "(null)", b, "%s", what);
    }
    free(a);
    free(b);
}


Test(json_dump, writes_the_bytes_jansson_writes,
     .description = "objects in their keys' order, arrays, nesting, empty "
                    "containers, integers to INT64's ends, true, false, "
                    "null, every escape of a string and of a key, UTF-8 of "
                    "two to four bytes, a NUL inside a string: the bytes "
                    "json_dumps writes (compact, in order)")
{
    static const char  *texts[] = {
        "{}", "[]", "[[],{},[[]],{\"a\":{}}]",
        "{\"checkout_id\":\"co_1\",\"status\":\"EXECUTING\","
            "\"is_payment_done\":false,\"x\":true,\"y\":null}",
        "{\"z\":1,\"a\":2,\"m\":3}",
        "[0,-1,9223372036854775807,-9223372036854775808,42]",
        "{\"q\\\"k\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f \":"
            "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u0007\\u001f\\u007f\"}",
        "[\"caf\\u00e9\",\"\\u2028\\u2029\",\"\\ud83d\\ude00\",\"\\uffff\"]",
        "{\"metadata\":{\"order\":\"A-1\",\"note\":\"<script>&'\"}}",
        "{\"a\":[{\"b\":[{\"c\":[1,2,{\"d\":\"e\"}]}]}]}",
    };
    size_t   i;
    json_t  *v;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        v = json_loads(texts[i], JSON_ALLOW_NUL, NULL);
        cr_assert_not_null(v, "%s", texts[i]);
        jd_same(v, texts[i]);
        json_decref(v);
    }
}


Test(json_dump, leaves_reals_to_jansson_and_refuses_what_it_refuses,
     .description = "a real is written by jansson (its digits are its own); "
                    "a scalar alone, a string that is not UTF-8 and a value "
                    "holding itself give NULL, as json_dumps gives; a value "
                    "nested deeper than jansson reads is written as it "
                    "writes it")
{
    char    *deep;
    json_t  *v, *a;

    v = json_loads("{\"r\":0.1,\"n\":[1.5e300,-0.0,3]}", 0, NULL);
    cr_assert_not_null(v);
    jd_same(v, "reals");
    json_decref(v);

    v = json_string("alone");
    cr_expect_null(pay_json_dumps(v));
    json_decref(v);

    v = json_object();
    json_object_set_new(v, "bad", json_stringn_nocheck("a\xc3(", 3));
    jd_same(v, "not UTF-8");
    cr_expect_null(pay_json_dumps(v));
    json_decref(v);

    a = json_array();
    json_array_append(a, a);
    jd_same(a, "itself");
    json_array_remove(a, 0);
    json_decref(a);

    /* nested deeper than jansson reads, which it still writes */
    a = json_array();
    v = a;
    for (int i = 0; i < 3000; i++) {
        json_t  *in = json_array();

        json_array_append_new(v, in);
        v = in;
    }
    jd_same(a, "3,000 deep");
    deep = json_dumps(a, JSON_COMPACT);
    cr_expect_not_null(deep, "jansson writes it");
    free(deep);
    json_decref(a);
}
