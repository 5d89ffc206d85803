/*
 * Unit tests: the POST /v1/payments body (pay_checkout_parse).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <payments/checkout.h>
#include <payments/idempotency.h>


/* API.md's example body */
static const char  example[] =
    "{\n"
    "  \"checkout_id\": \"co_7f3a\",\n"
    "  \"buyer_info\": {\"email\": \"ann@example.com\"},\n"
    "  \"payment_orders\": [\n"
    "    {\"payment_order_id\": \"po_1\", \"seller_account\": \"seller_42\","
    " \"amount\": \"10.00\", \"currency\": \"USD\"},\n"
    "    {\"payment_order_id\": \"po_2\", \"seller_account\": \"seller_77\","
    " \"amount\": \"5.00\", \"currency\": \"USD\"}\n"
    "  ],\n"
    "  \"success_url\": \"https://shop.example/thanks\",\n"
    "  \"cancel_url\": \"https://shop.example/cart\",\n"
    "  \"psp\": \"stripe\"\n"
    "}\n";


static json_t *
base(void)
{
    json_t  *j;

    j = json_loads(example, 0, NULL);
    cr_assert_not_null(j);

    return j;
}


static json_t *
order(json_t *root, size_t i)
{
    return json_array_get(json_object_get(root, "payment_orders"), i);
}


static void
set_str(json_t *obj, const char *key, const char *val)
{
    cr_assert_eq(json_object_set_new(obj, key, json_string(val)), 0);
}


/* Parses root (consumed); returns pay_checkout_parse's result. */
static int
run(json_t *root, pay_checkout_t *co, pay_verdict_t *v)
{
    char  *s;
    int    rc;

    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    cr_assert_not_null(s);

    rc = pay_checkout_parse(s, strlen(s), co, v);
    free(s);

    return rc;
}


static int
run_str(const char *body, pay_checkout_t *co, pay_verdict_t *v)
{
    return pay_checkout_parse(body, strlen(body), co, v);
}


/* Asserts a refusal with err, whose detail contains want (if not NULL). */
static void
refused(json_t *root, pay_err_e err, const char *want)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run(root, &co, &v), -1);
    cr_assert_eq(v.err, err, "err %d, want %d (%s)", v.err, err, v.detail);
    cr_assert_null(co.root);
    cr_assert_null(co.orders);

    if (want != NULL) {
        cr_assert_not_null(strstr(v.detail, want), "detail \"%s\" lacks "
                           "\"%s\"", v.detail, want);
    }
}


static void
refused_str(const char *body, pay_err_e err, const char *want)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run_str(body, &co, &v), -1);
    cr_assert_eq(v.err, err, "err %d, want %d (%s)", v.err, err, v.detail);
    cr_assert_null(co.root);

    if (want != NULL) {
        cr_assert_not_null(strstr(v.detail, want), "detail \"%s\" lacks "
                           "\"%s\"", v.detail, want);
    }
}


static int64_t
one_amount(const char *amount, const char *currency, pay_verdict_t *v)
{
    json_t          *root;
    pay_checkout_t   co;
    int64_t          m;

    root = base();
    json_array_remove(json_object_get(root, "payment_orders"), 1);
    set_str(order(root, 0), "amount", amount);
    set_str(order(root, 0), "currency", currency);

    if (run(root, &co, v) != 0) {
        return -1;
    }

    m = co.orders[0].amount;
    cr_assert_eq(co.total, m);
    pay_checkout_free(&co);

    return m;
}


/* the valid body */

Test(checkout, api_example_parses)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run_str(example, &co, &v), 0, "%s", v.detail);
    cr_assert_not_null(co.root);
    cr_assert_str_eq(co.checkout_id, "co_7f3a");
    cr_assert_str_eq(co.psp, "stripe");
    cr_assert_str_eq(co.currency, "USD");
    cr_assert_eq(co.exponent, 2);
    cr_assert_eq(co.total, 1500);
    cr_assert_str_eq(co.success_url, "https://shop.example/thanks");
    cr_assert_str_eq(co.cancel_url, "https://shop.example/cart");
    cr_assert_str_eq(co.buyer_email, "ann@example.com");
    cr_assert_eq(co.norders, 2);
    cr_assert_str_eq(co.orders[0].id, "po_1");
    cr_assert_str_eq(co.orders[0].seller, "seller_42");
    cr_assert_eq(co.orders[0].amount, 1000);
    cr_assert_str_eq(co.orders[1].id, "po_2");
    cr_assert_str_eq(co.orders[1].seller, "seller_77");
    cr_assert_eq(co.orders[1].amount, 500);
    pay_checkout_free(&co);
    cr_assert_null(co.root);
    cr_assert_null(co.orders);
    pay_checkout_free(&co);
}


Test(checkout, buyer_info_is_optional)
{
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;

    root = base();
    json_object_del(root, "buyer_info");
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_null(co.buyer_email);
    pay_checkout_free(&co);
}


Test(checkout, buyer_info_email_is_optional_and_id_accepted)
{
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;

    root = base();
    json_object_set_new(root, "buyer_info",
                        json_pack("{s:s}", "id", "buyer-1"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_null(co.buyer_email);
    pay_checkout_free(&co);
}


Test(checkout, key_order_does_not_matter)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run_str("{\"psp\":\"stripe\",\"cancel_url\":"
                         "\"https://shop.example/c\",\"success_url\":"
                         "\"https://shop.example/s\",\"payment_orders\":[{"
                         "\"currency\":\"EUR\",\"amount\":\"1\","
                         "\"seller_account\":\"s.1\",\"payment_order_id\":"
                         "\"p\"}],\"checkout_id\":\"c\"}", &co, &v), 0,
                 "%s", v.detail);
    cr_assert_eq(co.total, 100);
    cr_assert_str_eq(co.currency, "EUR");
    pay_checkout_free(&co);
}


/* JSON */

Test(checkout, invalid_json_refused)
{
    refused_str("{\"checkout_id\":", PAY_ERR_INVALID_REQUEST, "not valid JSON");
    refused_str("", PAY_ERR_INVALID_REQUEST, NULL);
    refused_str("{} x", PAY_ERR_INVALID_REQUEST, NULL);
    refused_str("{'a':1}", PAY_ERR_INVALID_REQUEST, NULL);
}


Test(checkout, invalid_json_detail_does_not_quote_body)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run_str("{\"a\": secret_token_xyz}", &co, &v), -1);
    cr_assert_null(strstr(v.detail, "secret"), "%s", v.detail);
}


Test(checkout, null_body_refused)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(pay_checkout_parse(NULL, 0, &co, &v), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_REQUEST);
}


Test(checkout, duplicate_keys_refused)
{
    refused_str("{\"checkout_id\":\"a\",\"checkout_id\":\"b\"}",
                PAY_ERR_INVALID_REQUEST, "duplicate key");
    refused_str("{\"payment_orders\":[{\"amount\":\"1\",\"amount\":\"2\"}]}",
                PAY_ERR_INVALID_REQUEST, "duplicate key");
}


Test(checkout, body_must_be_an_object)
{
    refused_str("[]", PAY_ERR_INVALID_REQUEST, "object");
    refused_str("[{\"checkout_id\":\"a\"}]", PAY_ERR_INVALID_REQUEST,
                "object");
    refused_str("\"x\"", PAY_ERR_INVALID_REQUEST, NULL);
    refused_str("10", PAY_ERR_INVALID_REQUEST, NULL);
}


Test(checkout, nul_in_string_refused)
{
    refused_str("{\"checkout_id\":\"a\\u0000b\"}", PAY_ERR_INVALID_REQUEST,
                NULL);
}


/* card data */

Test(checkout, card_in_a_value_refused)
{
    json_t  *root = base();

    json_object_set_new(root, "buyer_info",
                        json_pack("{s:s}", "id", "4111 1111 1111 1111"));
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, card_in_an_id_refused)
{
    json_t  *root = base();

    set_str(root, "checkout_id", "4111111111111111");
    refused(root, PAY_ERR_CARD_DATA, NULL);

    root = base();
    set_str(order(root, 1), "payment_order_id", "po-4111-1111-1111-1111");
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


/* A numeric order id passes Luhn one time in ten: shops with numeric ids
 * saw random 400s.  In an identifier only a brand-shaped card number is
 * card data; in free text every Luhn-valid run still is. */
Test(checkout, numeric_luhn_valid_ids_that_are_no_card_accepted)
{
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root = base();

    set_str(root, "checkout_id", "1000000000000008");
    set_str(order(root, 0), "payment_order_id", "7200000000000003");
    set_str(order(root, 1), "payment_order_id", "9999999999999995");
    set_str(order(root, 1), "seller_account", "3000000000000000004");
    json_object_set_new(root, "buyer_info",
                        json_pack("{s:s}", "id", "1000000000000008"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_expect_str_eq(co.checkout_id, "1000000000000008");
    pay_checkout_free(&co);

    /* the same digits in a URL are refused: free text keeps the rule */
    root = base();
    set_str(root, "success_url", "https://shop.example/?o=1000000000000008");
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, card_in_a_key_refused)
{
    refused_str("{\"4111111111111111\":\"x\"}", PAY_ERR_CARD_DATA, NULL);

    json_t  *root = base();
    json_object_set_new(order(root, 0), "5555555555554444", json_true());
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, card_in_a_url_refused)
{
    json_t  *root = base();

    set_str(root, "success_url", "https://shop.example/?pan=4111111111111111");
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, card_as_json_number_refused)
{
    json_t  *root = base();

    json_object_set_new(order(root, 0), "amount",
                        json_integer(4111111111111111LL));
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, card_check_comes_before_other_errors)
{
    /* unknown field, wrong types, not an object: card data still wins */
    refused_str("{\"bogus\":1,\"checkout_id\":\"4111111111111111\"}",
                PAY_ERR_CARD_DATA, NULL);
    refused_str("[\"4111111111111111\"]", PAY_ERR_CARD_DATA, NULL);
    refused_str("{\"payment_orders\":[[[{\"x\":\"4111111111111111\"}]]]}",
                PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, card_detail_never_quotes_the_value)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run_str("{\"checkout_id\":\"4111111111111111\"}", &co, &v),
                 -1);
    cr_assert_null(strstr(v.detail, "4111"), "%s", v.detail);
    cr_assert_null(strstr(v.detail, "1111"), "%s", v.detail);
}


/* fields and types */

Test(checkout, unknown_root_field_refused_by_name)
{
    json_t  *root = base();

    json_object_set_new(root, "amount_total", json_string("15.00"));
    refused(root, PAY_ERR_INVALID_REQUEST, "unknown field \"amount_total\"");
}


Test(checkout, unknown_order_field_refused_by_name)
{
    json_t  *root = base();

    set_str(order(root, 1), "note", "x");
    refused(root, PAY_ERR_INVALID_REQUEST,
            "unknown field \"note\" in payment_orders[1]");
}


Test(checkout, unknown_buyer_field_refused_by_name)
{
    json_t  *root = base();

    set_str(json_object_get(root, "buyer_info"), "phone", "555");
    refused(root, PAY_ERR_INVALID_REQUEST,
            "unknown field \"phone\" in buyer_info");
}


Test(checkout, unknown_field_with_odd_name_not_echoed)
{
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root = base();

    set_str(root, "<script>alert(1)</script>", "x");
    cr_assert_eq(run(root, &co, &v), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_REQUEST);
    cr_assert_null(strstr(v.detail, "script"), "%s", v.detail);
    cr_assert_not_null(strstr(v.detail, "unknown field"));
}


/* The card scan reads only spaces and dashes as separators: a key with
 * card-many digits is never echoed, whatever stands between them. */
Test(checkout, unknown_field_with_12_digits_not_echoed)
{
    static const char *const  keys[] = {
        "4111.1111_1111-1111", "pan_411111111111", "1.2.3.4.5.6.7.8.9.0.1.2",
        NULL
    };
    const char *const  *k;
    pay_checkout_t      co;
    pay_verdict_t       v;
    json_t             *root;

    for (k = keys; *k != NULL; k++) {
        root = base();
        set_str(order(root, 0), *k, "x");
        cr_assert_eq(run(root, &co, &v), -1, "%s", *k);
        cr_assert_eq(v.err, PAY_ERR_INVALID_REQUEST, "%s: %s", *k, v.detail);
        cr_assert_str_eq(v.detail, "unknown field in payment_orders[0]",
                         "%s: %s", *k, v.detail);
    }

    /* a card number with other separators is card data, as a key too */
    root = base();
    set_str(order(root, 0), "4111.1111.1111.1111", "x");
    refused(root, PAY_ERR_CARD_DATA, NULL);

    root = base();
    set_str(order(root, 0), "4111_1111_1111_1111", "x");
    refused(root, PAY_ERR_CARD_DATA, NULL);

    /* 11 digits: still a field name */
    root = base();
    set_str(root, "field_12345678901", "x");
    refused(root, PAY_ERR_INVALID_REQUEST,
            "unknown field \"field_12345678901\"");
}


Test(checkout, required_fields_missing_refused_by_name)
{
    static const char *const  names[] = {
        "checkout_id", "payment_orders", "success_url", "cancel_url", NULL
    };
    const char *const  *n;
    json_t             *root;

    for (n = names; *n != NULL; n++) {
        root = base();
        json_object_del(root, *n);
        refused(root, PAY_ERR_INVALID_REQUEST, *n);
    }
}


Test(checkout, required_order_fields_missing_refused_by_name)
{
    static const char *const  names[] = {
        "payment_order_id", "seller_account", "amount", "currency", NULL
    };
    const char *const  *n;
    char                want[64];
    json_t             *root;

    for (n = names; *n != NULL; n++) {
        root = base();
        json_object_del(order(root, 1), *n);
        snprintf(want, sizeof(want), "payment_orders[1].%s is required", *n);
        refused(root, PAY_ERR_INVALID_REQUEST, want);
    }
}


Test(checkout, string_fields_of_another_type_refused)
{
    json_t  *root;

    root = base();
    json_object_set_new(root, "checkout_id", json_integer(7));
    refused(root, PAY_ERR_INVALID_REQUEST, "checkout_id must be a string");

    root = base();
    json_object_set_new(root, "psp", json_null());
    refused(root, PAY_ERR_INVALID_REQUEST, "psp must be a string");

    root = base();
    json_object_set_new(order(root, 0), "currency", json_false());
    refused(root, PAY_ERR_INVALID_REQUEST,
            "payment_orders[0].currency must be a string");
}


Test(checkout, payment_orders_must_be_a_non_empty_array)
{
    json_t  *root;

    root = base();
    json_object_set_new(root, "payment_orders", json_array());
    refused(root, PAY_ERR_INVALID_REQUEST, "payment_orders must hold");

    root = base();
    json_object_set_new(root, "payment_orders", json_object());
    refused(root, PAY_ERR_INVALID_REQUEST, "payment_orders must be an array");
}


Test(checkout, payment_order_must_be_an_object)
{
    json_t  *root = base();

    json_array_append_new(json_object_get(root, "payment_orders"),
                          json_string("po_3"));
    refused(root, PAY_ERR_INVALID_REQUEST,
            "payment_orders[2] must be an object");
}


static json_t *
with_orders(size_t n)
{
    json_t  *root, *orders;
    char     id[32];
    size_t   i;

    root = base();
    orders = json_array();

    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "po_%zu", i);
        json_array_append_new(orders,
            json_pack("{s:s,s:s,s:s,s:s}", "payment_order_id", id,
                      "seller_account", "s", "amount", "1.00",
                      "currency", "USD"));
    }

    json_object_set_new(root, "payment_orders", orders);

    return root;
}


Test(checkout, orders_max_accepted)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(run(with_orders(PAY_ORDERS_MAX), &co, &v), 0, "%s",
                 v.detail);
    cr_assert_eq(co.norders, PAY_ORDERS_MAX);
    cr_assert_eq(co.total, 100 * PAY_ORDERS_MAX);
    cr_assert_str_eq(co.orders[PAY_ORDERS_MAX - 1].id, "po_99");
    pay_checkout_free(&co);
}


Test(checkout, orders_over_max_refused)
{
    refused(with_orders(PAY_ORDERS_MAX + 1), PAY_ERR_INVALID_REQUEST,
            "1 to 100");
}


Test(checkout, buyer_info_must_be_an_object)
{
    json_t  *root;

    root = base();
    json_object_set_new(root, "buyer_info", json_string("ann@example.com"));
    refused(root, PAY_ERR_INVALID_REQUEST, "buyer_info must be an object");

    root = base();
    json_object_set_new(root, "buyer_info", json_null());
    refused(root, PAY_ERR_INVALID_REQUEST, "buyer_info must be an object");
}


Test(checkout, buyer_id_must_be_a_string)
{
    json_t  *root = base();

    json_object_set_new(json_object_get(root, "buyer_info"), "id",
                        json_integer(5));
    refused(root, PAY_ERR_INVALID_REQUEST, "buyer_info.id");
}


Test(checkout, email_needs_exactly_one_at)
{
    json_t  *root;

    root = base();
    set_str(json_object_get(root, "buyer_info"), "email", "ann.example.com");
    refused(root, PAY_ERR_INVALID_REQUEST, "one '@'");

    root = base();
    set_str(json_object_get(root, "buyer_info"), "email", "a@b@example.com");
    refused(root, PAY_ERR_INVALID_REQUEST, "one '@'");

    root = base();
    set_str(json_object_get(root, "buyer_info"), "email", "@example.com");
    refused(root, PAY_ERR_INVALID_REQUEST, "one '@'");
}


Test(checkout, email_at_most_254_bytes)
{
    char             email[256];
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;

    memset(email, 'a', sizeof(email));
    memcpy(email + 254 - 12, "@example.com", 12);
    email[254] = '\0';

    root = base();
    set_str(json_object_get(root, "buyer_info"), "email", email);
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_eq(strlen(co.buyer_email), 254);
    pay_checkout_free(&co);

    memset(email, 'a', sizeof(email));
    memcpy(email + 255 - 12, "@example.com", 12);
    email[255] = '\0';

    root = base();
    set_str(json_object_get(root, "buyer_info"), "email", email);
    refused(root, PAY_ERR_INVALID_REQUEST, "254");
}


Test(checkout, email_no_whitespace_or_controls)
{
    json_t  *root;

    root = base();
    set_str(json_object_get(root, "buyer_info"), "email",
            "ann@example.com\r\nBcc: x@y");
    refused(root, PAY_ERR_INVALID_REQUEST, "buyer_info.email");
}


Test(checkout, email_detail_never_quotes_the_value)
{
    json_t          *root = base();
    pay_checkout_t   co;
    pay_verdict_t    v;

    set_str(json_object_get(root, "buyer_info"), "email", "secret@@x");
    cr_assert_eq(run(root, &co, &v), -1);
    cr_assert_null(strstr(v.detail, "secret"), "%s", v.detail);
}


/* ids */

Test(checkout, checkout_id_syntax)
{
    json_t  *root;
    char     id[42];

    root = base();
    set_str(root, "checkout_id", "co 1");
    refused(root, PAY_ERR_INVALID_REQUEST, "checkout_id must match");

    root = base();
    set_str(root, "checkout_id", "");
    refused(root, PAY_ERR_INVALID_REQUEST, "checkout_id must match");

    memset(id, 'c', 41);
    id[41] = '\0';
    root = base();
    set_str(root, "checkout_id", id);
    refused(root, PAY_ERR_INVALID_REQUEST, "checkout_id must match");

    root = base();
    set_str(root, "checkout_id", "co:1");
    refused(root, PAY_ERR_INVALID_REQUEST, "checkout_id must match");
}


Test(checkout, checkout_id_40_chars_accepted)
{
    json_t          *root = base();
    pay_checkout_t   co;
    pay_verdict_t    v;
    char             id[41];

    memset(id, 'c', 40);
    id[40] = '\0';
    set_str(root, "checkout_id", id);
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_str_eq(co.checkout_id, id);
    pay_checkout_free(&co);
}


Test(checkout, payment_order_id_syntax)
{
    json_t  *root = base();

    set_str(order(root, 1), "payment_order_id", "po.2");
    refused(root, PAY_ERR_INVALID_REQUEST,
            "payment_orders[1].payment_order_id must match");
}


Test(checkout, seller_account_syntax)
{
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;
    char             s[66];

    root = base();
    set_str(order(root, 0), "seller_account", "seller/42");
    refused(root, PAY_ERR_INVALID_REQUEST,
            "payment_orders[0].seller_account must match");

    memset(s, 's', 65);
    s[65] = '\0';
    root = base();
    set_str(order(root, 0), "seller_account", s);
    refused(root, PAY_ERR_INVALID_REQUEST, "seller_account must match");

    s[64] = '\0';
    s[3] = '.';
    root = base();
    set_str(order(root, 0), "seller_account", s);
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_str_eq(co.orders[0].seller, s);
    pay_checkout_free(&co);
}


Test(checkout, order_ids_unique_within_the_body)
{
    json_t  *root = base();

    set_str(order(root, 1), "payment_order_id", "po_1");
    refused(root, PAY_ERR_INVALID_REQUEST, "unique");
}


Test(checkout, psp_name_syntax)
{
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;

    root = base();
    set_str(root, "psp", "Stripe");
    refused(root, PAY_ERR_INVALID_REQUEST, "psp must match");

    root = base();
    set_str(root, "psp", "");
    refused(root, PAY_ERR_INVALID_REQUEST, "psp must match");

    root = base();
    set_str(root, "psp", "abcdefghijklmnopqrstuvwxyz0123456");
    refused(root, PAY_ERR_INVALID_REQUEST, "psp must match");

    root = base();
    set_str(root, "psp", "abcdefghijklmnopqrstuvwxyz-_0123");
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_str_eq(co.psp, "abcdefghijklmnopqrstuvwxyz-_0123");
    pay_checkout_free(&co);
}


Test(checkout, id_validators)
{
    cr_assert(pay_id_valid("a", 1));
    cr_assert(pay_id_valid("A-z_9", 5));
    cr_assert_not(pay_id_valid("", 0));
    cr_assert_not(pay_id_valid("a.b", 3));
    cr_assert_not(pay_id_valid("a\0b", 3));
    cr_assert_not(pay_id_valid(NULL, 1));
    cr_assert(pay_id_valid("0123456789012345678901234567890123456789", 40));
    cr_assert_not(pay_id_valid("01234567890123456789012345678901234567890",
                               41));
    cr_assert(pay_seller_valid("a.b-c_d", 7));
    cr_assert_not(pay_seller_valid("a b", 3));
    cr_assert_not(pay_seller_valid("", 0));
}


/* currency */

Test(checkout, currency_lower_case_unsupported)
{
    json_t  *root = base();

    set_str(order(root, 0), "currency", "usd");
    refused(root, PAY_ERR_UNSUPPORTED_CURRENCY, "payment_orders[0].currency");
}


Test(checkout, currency_unknown_unsupported)
{
    json_t  *root;

    root = base();
    set_str(order(root, 0), "currency", "XXX");
    refused(root, PAY_ERR_UNSUPPORTED_CURRENCY, NULL);

    root = base();
    set_str(order(root, 0), "currency", "US");
    refused(root, PAY_ERR_UNSUPPORTED_CURRENCY, NULL);

    root = base();
    set_str(order(root, 0), "currency", "USD ");
    refused(root, PAY_ERR_UNSUPPORTED_CURRENCY, NULL);
}


Test(checkout, mixed_currencies_refused)
{
    json_t  *root = base();

    set_str(order(root, 1), "currency", "EUR");
    refused(root, PAY_ERR_MIXED_CURRENCY, "one currency");
}


/* amounts */

Test(checkout, amounts_10_10_5_10_50_same_usd)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("10", "USD", &v), 1000);
    cr_assert_eq(one_amount("10.5", "USD", &v), 1050);
    cr_assert_eq(one_amount("10.50", "USD", &v), 1050);
}


Test(checkout, amount_syntax_refused)
{
    static const char *const  bad[] = {
        "010.00", "+10", "1e3", " 10", "10,00", "-1", "10.", ".5", "", "ten",
        NULL
    };
    const char *const  *a;
    pay_verdict_t       v;

    for (a = bad; *a != NULL; a++) {
        cr_assert_eq(one_amount(*a, "USD", &v), -1, "%s", *a);
        cr_assert_eq(v.err, PAY_ERR_INVALID_AMOUNT, "%s", *a);
        cr_assert_not_null(strstr(v.detail, "syntax"), "%s", v.detail);
    }
}


Test(checkout, amount_json_number_refused)
{
    json_t  *root;

    root = base();
    json_object_set_new(order(root, 0), "amount", json_integer(10));
    refused(root, PAY_ERR_INVALID_AMOUNT, "not a JSON number");

    root = base();
    json_object_set_new(order(root, 0), "amount", json_real(10.5));
    refused(root, PAY_ERR_INVALID_AMOUNT, "not a JSON number");

    refused_str("{\"checkout_id\":\"c\",\"payment_orders\":[{"
                "\"payment_order_id\":\"p\",\"seller_account\":\"s\","
                "\"amount\":10,\"currency\":\"USD\"}],\"success_url\":"
                "\"https://shop.example/\",\"cancel_url\":"
                "\"https://shop.example/\",\"psp\":\"x\"}",
                PAY_ERR_INVALID_AMOUNT, "payment_orders[0].amount");
}


Test(checkout, amount_other_types_refused)
{
    json_t  *root = base();

    json_object_set_new(order(root, 0), "amount", json_null());
    refused(root, PAY_ERR_INVALID_AMOUNT, "decimal string");
}


Test(checkout, amount_too_many_decimals_for_usd)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("10.500", "USD", &v), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_assert_not_null(strstr(v.detail, "too many decimals for USD"), "%s",
                       v.detail);
}


Test(checkout, amount_jpy_has_no_decimals)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("10.5", "JPY", &v), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_assert_not_null(strstr(v.detail, "JPY"), "%s", v.detail);
    cr_assert_eq(one_amount("10", "JPY", &v), 10);
}


Test(checkout, amount_kwd_three_decimals)
{
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;

    root = base();
    json_array_remove(json_object_get(root, "payment_orders"), 1);
    set_str(order(root, 0), "amount", "1.234");
    set_str(order(root, 0), "currency", "KWD");
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_eq(co.orders[0].amount, 1234);
    cr_assert_eq(co.exponent, 3);
    cr_assert_str_eq(co.currency, "KWD");
    pay_checkout_free(&co);
}


Test(checkout, amount_must_be_greater_than_zero)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("0.00", "USD", &v), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_assert_not_null(strstr(v.detail, "> 0"), "%s", v.detail);
}


Test(checkout, amount_too_large_refused)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("99999999999999999.99", "USD", &v), -1);
    cr_assert_eq(v.err, PAY_ERR_INVALID_AMOUNT);
    cr_assert_not_null(strstr(v.detail, "too large"), "%s", v.detail);
}


/*
 * Every spelling of INT64_MAX minor units (and of one more) has a digit run
 * with a Luhn-valid window, so in a body the card rule refuses it before
 * the amount rule sees it: the exact boundary is tested in test_money.c.
 */
Test(checkout, amount_at_int64_max_is_caught_as_card_data)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("92233720368547758.07", "USD", &v), -1);
    cr_assert_eq(v.err, PAY_ERR_CARD_DATA);
    cr_assert_eq(one_amount("9223372036854775807", "JPY", &v), -1);
    cr_assert_eq(v.err, PAY_ERR_CARD_DATA);
}


Test(checkout, amount_detail_never_quotes_the_value)
{
    pay_verdict_t  v;

    cr_assert_eq(one_amount("12secret", "USD", &v), -1);
    cr_assert_null(strstr(v.detail, "secret"), "%s", v.detail);
    cr_assert_null(strstr(v.detail, "12"), "%s", v.detail);
}


/* Amounts chosen so that no digit run holds a Luhn-valid window. */
Test(checkout, total_overflow_refused)
{
    json_t  *root = base();

    set_str(order(root, 0), "amount", "50690666996189660.35");
    set_str(order(root, 1), "amount", "41543053372358097.73");
    refused(root, PAY_ERR_INVALID_AMOUNT, "sum");
}


Test(checkout, total_at_int64_max_accepted)
{
    json_t          *root = base();
    pay_checkout_t   co;
    pay_verdict_t    v;

    set_str(order(root, 0), "amount", "50690666996189660.35");
    set_str(order(root, 1), "amount", "41543053372358097.72");
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_eq(co.total, INT64_MAX);
    pay_checkout_free(&co);
}


Test(checkout, currency_checked_before_amount)
{
    json_t  *root = base();

    set_str(order(root, 0), "currency", "usd");
    set_str(order(root, 0), "amount", "1e3");
    refused(root, PAY_ERR_UNSUPPORTED_CURRENCY, NULL);
}


Test(checkout, amount_checked_in_its_own_currency_before_mixed)
{
    json_t  *root = base();

    set_str(order(root, 1), "currency", "JPY");
    set_str(order(root, 1), "amount", "5.5");
    refused(root, PAY_ERR_INVALID_AMOUNT, "JPY");
}


/* return URLs */

Test(checkout, return_urls_must_be_https)
{
    json_t  *root;

    root = base();
    set_str(root, "success_url", "http://shop.example/thanks");
    refused(root, PAY_ERR_FORBIDDEN_RETURN_URL, "success_url");

    root = base();
    set_str(root, "cancel_url", "javascript:alert(1)");
    refused(root, PAY_ERR_FORBIDDEN_RETURN_URL, "cancel_url");
}


Test(checkout, return_urls_refuse_userinfo_and_trailing_dot)
{
    json_t  *root;

    root = base();
    set_str(root, "success_url", "https://shop.example@evil/");
    refused(root, PAY_ERR_FORBIDDEN_RETURN_URL, "success_url");

    root = base();
    set_str(root, "cancel_url", "https://shop.example./cart");
    refused(root, PAY_ERR_FORBIDDEN_RETURN_URL, "cancel_url");

    root = base();
    set_str(root, "cancel_url", "/cart");
    refused(root, PAY_ERR_FORBIDDEN_RETURN_URL, "cancel_url");
}


Test(checkout, return_url_too_long_refused)
{
    char     url[2100];
    json_t  *root = base();

    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    memcpy(url, "https://shop.example/", 21);
    set_str(root, "success_url", url);
    refused(root, PAY_ERR_FORBIDDEN_RETURN_URL, "success_url");
}


Test(checkout, free_of_zeroed_struct_is_safe)
{
    pay_checkout_t  co;

    memset(&co, 0, sizeof(co));
    pay_checkout_free(&co);
    pay_checkout_free(NULL);
}


/* What the adapter reads instead of the parsed JSON: the buyer's id and
 * the body's fingerprint (the same as pay_fingerprint over the body). */
Test(checkout, buyer_id_and_fingerprint_come_from_the_core)
{
    char            a[65], b[65];
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root = base();

    json_object_set_new(root, "buyer_info",
                        json_pack("{s:s, s:s}", "id", "cust_42",
                                  "email", "ann@example.com"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_expect_str_eq(co.buyer_id, "cust_42");
    cr_expect_str_eq(co.buyer_email, "ann@example.com");

    cr_assert_eq(pay_checkout_fingerprint(&co, "POST", "/v1/payments", a), 0);
    cr_assert_eq(pay_fingerprint("POST", "/v1/payments", co.root, b), 0);
    cr_expect_str_eq(a, b);
    pay_checkout_free(&co);

    cr_expect_eq(pay_checkout_fingerprint(NULL, "POST", "/", a), -1);
}


/* what pay_claim is given */

Test(checkout, orders_json_is_what_pay_claim_takes)
{
    char            *s;
    pay_checkout_t   co;
    pay_verdict_t    v;

    cr_assert_eq(run_str(example, &co, &v), 0, "%s", v.detail);

    s = pay_checkout_orders_json(&co);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "[{\"payment_order_id\":\"po_1\","
                        "\"seller_account\":\"seller_42\","
                        "\"amount_minor\":1000},"
                        "{\"payment_order_id\":\"po_2\","
                        "\"seller_account\":\"seller_77\","
                        "\"amount_minor\":500}]");
    free(s);

    pay_checkout_free(&co);

    /* no orders: nothing to store */
    cr_expect_null(pay_checkout_orders_json(&co));
    cr_expect_null(pay_checkout_orders_json(NULL));
}


/* metadata */

static json_t *
meta_n(size_t n, size_t keylen, size_t vallen)
{
    char     key[64], *val;
    size_t   i;
    json_t  *md;

    md = json_object();
    val = malloc(vallen + 1);
    cr_assert(md != NULL && val != NULL && keylen < sizeof(key) && keylen > 3);
    memset(val, 'v', vallen);
    val[vallen] = '\0';

    for (i = 0; i < n; i++) {
        memset(key, 'k', keylen);
        key[keylen] = '\0';
        snprintf(key, keylen + 1, "%03zu", i);
        key[3] = 'k';
        cr_assert_eq(json_object_set_new(md, key, json_string(val)), 0);
    }

    free(val);

    return md;
}


Test(checkout, metadata_accepted_at_the_limits)
{
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root = base();

    json_object_set_new(root, "metadata", meta_n(50, 40, 500));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_not_null(co.metadata);
    cr_expect_eq(json_object_size(co.metadata), 50);
    pay_checkout_free(&co);

    /* characters, not bytes: 40 two-byte and 500 three-byte characters */
    root = base();
    json_object_set_new(root, "metadata",
        json_pack("{s:s}",
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "x"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    pay_checkout_free(&co);

    /* absent or empty: none */
    root = base();
    json_object_set_new(root, "metadata", json_object());
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_expect_null(co.metadata);
    pay_checkout_free(&co);

    cr_assert_eq(run(base(), &co, &v), 0, "%s", v.detail);
    cr_expect_null(co.metadata);
    pay_checkout_free(&co);
}


Test(checkout, metadata_over_the_limits_refused)
{
    json_t  *root;

    root = base();
    json_object_set_new(root, "metadata", meta_n(51, 8, 1));
    refused(root, PAY_ERR_INVALID_REQUEST, "at most 50 keys");

    root = base();
    json_object_set_new(root, "metadata", meta_n(1, 41, 1));
    refused(root, PAY_ERR_INVALID_REQUEST, "at most 40 characters");

    root = base();
    json_object_set_new(root, "metadata", meta_n(1, 8, 501));
    refused(root, PAY_ERR_INVALID_REQUEST, "at most 500 characters");

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:s}", "", "x"));
    refused(root, PAY_ERR_INVALID_REQUEST, "must not be empty");

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:s}", "a[b]", "x"));
    refused(root, PAY_ERR_INVALID_REQUEST, "'['");
}


/* Keys must reach a form body (Stripe's metadata[KEY]) as one name: no
 * '%', '&', '=', brackets or control characters (C0, DEL, C1). */
Test(checkout, metadata_keys_with_form_syntax_or_controls_refused)
{
    size_t              i;
    json_t             *root;
    static const char  *bad[] = {
        "a%5D=1&locale=fr&metadata%5Bb", "50%", "a&b", "a=b", "a[", "b]",
        "tab\there", "nl\n", "del\x7f", "c1\xc2\x85", "\x01"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        root = base();
        json_object_set_new(root, "metadata", json_pack("{s:s}", bad[i], "x"));
        refused(root, PAY_ERR_INVALID_REQUEST, "metadata keys must not "
                "contain");
    }
}


Test(checkout, metadata_keys_of_unusual_characters_accepted)
{
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root;
    /* 32 characters: the ASCII marks allowed, a space, two non-ASCII */
    const char     *key = "a b+c/d:#?!~.*'(),;@$|\"\\^`{}<>"
                          "\xc3\xa9\xe2\x82\xac";

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:s}", key, "x"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_not_null(co.metadata);
    cr_expect_str_eq(json_string_value(json_object_get(co.metadata, key)),
                     "x");
    pay_checkout_free(&co);
}


Test(checkout, metadata_types_refused)
{
    json_t  *root;

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:i}", "n", 1));
    refused(root, PAY_ERR_INVALID_REQUEST, "values must be strings");

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:n}", "n"));
    refused(root, PAY_ERR_INVALID_REQUEST, "values must be strings");

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:{}}", "n"));
    refused(root, PAY_ERR_INVALID_REQUEST, "values must be strings");

    root = base();
    json_object_set_new(root, "metadata", json_pack("[s]", "x"));
    refused(root, PAY_ERR_INVALID_REQUEST, "metadata must be an object");

    root = base();
    set_str(root, "metadata", "x");
    refused(root, PAY_ERR_INVALID_REQUEST, "metadata must be an object");
}


/* Card data in metadata: keys and values by the free-text rule, a key
 * named like an identifier included; the detail never quotes it. */
Test(checkout, metadata_card_data_refused)
{
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root;

    root = base();
    json_object_set_new(root, "metadata",
                        json_pack("{s:s}", "note", "card 4111 1111 1111 1111"));
    refused(root, PAY_ERR_CARD_DATA, NULL);

    root = base();
    json_object_set_new(root, "metadata",
                        json_pack("{s:s}", "4111111111111111", "x"));
    refused(root, PAY_ERR_CARD_DATA, NULL);

    /* Luhn-valid, no brand's shape: an identifier, but not in metadata */
    root = base();
    json_object_set_new(root, "metadata",
                        json_pack("{s:s}", "id", "1000000000000008"));
    cr_assert_eq(run(root, &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_CARD_DATA);
    cr_expect_null(strstr(v.detail, "1000000000000008"));

    /* card data wins over the limits */
    root = base();
    json_object_set_new(root, "metadata",
                        json_pack("{s:I}", "n", (json_int_t) 4111111111111111));
    refused(root, PAY_ERR_CARD_DATA, NULL);
}


Test(checkout, metadata_is_in_the_fingerprint)
{
    char            a[65], b[65];
    pay_checkout_t  co;
    pay_verdict_t   v;
    json_t         *root;

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:s}", "k", "1"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_eq(pay_checkout_fingerprint(&co, "POST", "/v1/payments", a), 0);
    pay_checkout_free(&co);

    root = base();
    json_object_set_new(root, "metadata", json_pack("{s:s}", "k", "2"));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_eq(pay_checkout_fingerprint(&co, "POST", "/v1/payments", b), 0);
    pay_checkout_free(&co);

    cr_expect_str_neq(a, b);
}


/* expires_at: epoch seconds, the PSP's window the adapter's to check */

Test(checkout, expires_at_is_read_when_given_and_zero_when_absent)
{
    json_t          *root = base();
    pay_checkout_t   co;
    pay_verdict_t    v;

    cr_assert_eq(run(base(), &co, &v), 0, "%s", v.detail);
    cr_expect_eq(co.expires_at, 0);
    pay_checkout_free(&co);

    json_object_set_new(root, "expires_at", json_integer(1900000000));
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_expect_eq(co.expires_at, 1900000000);
    pay_checkout_free(&co);
}


Test(checkout, expires_at_that_is_not_a_positive_integer_is_refused)
{
    json_t  *root;
    size_t   i;

    json_t  *bad[] = {
        json_integer(0), json_integer(-5), json_real(1900000000.5),
        json_string("1900000000"), json_null(), json_true(),
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        root = base();
        json_object_set_new(root, "expires_at", bad[i]);
        refused(root, PAY_ERR_INVALID_EXPIRES_AT, "expires_at");
    }
}


/* psp may be left out: a payments_route then chooses the PSP */
Test(checkout, psp_is_optional_and_empty_when_absent)
{
    json_t          *root;
    pay_checkout_t   co;
    pay_verdict_t    v;

    root = base();
    json_object_del(root, "psp");
    cr_assert_eq(run(root, &co, &v), 0, "%s", v.detail);
    cr_assert_str_eq(co.psp, "");
    pay_checkout_free(&co);
}


/* "capture": "automatic" (the default) or "manual"; any other value or
 * type is refused */
Test(checkout, capture_is_automatic_or_manual)
{
    json_t          *root;
    pay_verdict_t    v;
    pay_checkout_t   co;

    cr_assert_eq(run(base(), &co, &v), 0);
    cr_expect_eq(co.manual_capture, 0);
    pay_checkout_free(&co);

    root = base();
    set_str(root, "capture", "manual");
    cr_assert_eq(run(root, &co, &v), 0);
    cr_expect_eq(co.manual_capture, 1);
    pay_checkout_free(&co);

    root = base();
    set_str(root, "capture", "automatic");
    cr_assert_eq(run(root, &co, &v), 0);
    cr_expect_eq(co.manual_capture, 0);
    pay_checkout_free(&co);

    root = base();
    set_str(root, "capture", "Manual");
    cr_expect_eq(run(root, &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);

    root = base();
    cr_assert_eq(json_object_set_new(root, "capture", json_true()), 0);
    cr_expect_eq(run(root, &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);
}
