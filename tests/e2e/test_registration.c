/*
 * POST /v1/payments: the 201 and every validation rule of API.md, in the
 * contract's order (authentication, Idempotency-Key, body, business rules).
 * Requests that are refused store nothing, so most of these share the demo
 * merchant; those that store something make their own.
 */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(registration, .timeout = E2E_TIMEOUT);
TestSuite(auth, .timeout = E2E_TIMEOUT);
TestSuite(idempotency_key, .timeout = E2E_TIMEOUT);
TestSuite(body, .timeout = E2E_TIMEOUT);
TestSuite(amounts, .timeout = E2E_TIMEOUT);
TestSuite(return_urls, .timeout = E2E_TIMEOUT);
TestSuite(card_data, .timeout = E2E_TIMEOUT);


/* "2026-11-22T10:00:00Z" -> epoch seconds, or -1. */
static long
parse_utc(const char *s)
{
    char       *end;
    struct tm   tm;

    if (s == NULL) {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0' || strlen(s) != 20) {
        return -1;
    }

    return (long) timegm(&tm);
}


/* A registration refused with this problem, with a fresh merchant-less
 * request: the demo merchant and a fresh key. */
static void
expect_refused(const json_t *co, long status, const char *code)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_post_json(&m, co);
    expect_problem(r, status, code);
    resp_free(r);
}


/* -- the 201 ------------------------------------------------------------------ */

Test(registration, answers_201_with_the_contract_shape)
{
    long         exp, now;
    char        *co_id, *body, *prefix;
    size_t       i;
    resp_t      *r;
    json_t      *j, *orders, *o, *req;
    merchant_t   m;
    const char  *s;

    merchant_new(&m);
    co_id = uid("co");
    body = body_for(co_id);
    req = json_loads(body, 0, NULL);

    r = register_ok(&m, uid("key"), body);
    j = resp_json(r);

    cr_assert(strncmp(resp_header(r, "Content-Type") ? resp_header(r, "Content-Type") : "",
                      "application/json", 16) == 0,
              "201 Content-Type: %s", resp_header(r, "Content-Type"));
    cr_assert_str_eq(json_string_value(json_object_get(j, "checkout_id")), co_id);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "EXECUTING");
    cr_assert(json_is_false(json_object_get(j, "is_payment_done")), "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(j, "psp")), env("PAY_TEST_PSP"));

    s = json_string_value(json_object_get(j, "psp_token"));
    cr_assert(s != NULL && s[0] != '\0', "psp_token: %s", r->body);

    /* the session lifetime of the test config is 1 h */
    now = (long) time(NULL);
    exp = parse_utc(json_string_value(json_object_get(j, "expires_at")));
    cr_assert(exp > now + 3000 && exp < now + 4200,
              "expires_at should be about 1 h ahead: %s", r->body);

    prefix = str_printf("%s/v1/checkouts/%s/pay?t=", env("PAY_TEST_PUBLIC_ORIGIN"),
                        co_id);
    s = json_string_value(json_object_get(j, "pay_url"));
    cr_assert(s != NULL && strncmp(s, prefix, strlen(prefix)) == 0
              && strlen(s) > strlen(prefix),
              "pay_url must be on the public origin: %s", r->body);

    orders = json_object_get(j, "payment_orders");
    cr_assert_eq(json_array_size(orders), 2, "%s", r->body);

    for (i = 0; i < 2; i++) {
        json_t  *want = order_of(req, i);

        o = json_array_get(orders, i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "payment_order_id")),
                         json_string_value(json_object_get(want, "payment_order_id")));
        cr_assert_str_eq(json_string_value(json_object_get(o, "seller_account")),
                         json_string_value(json_object_get(want, "seller_account")));
        cr_assert_str_eq(json_string_value(json_object_get(o, "amount")),
                         json_string_value(json_object_get(want, "amount")));
        cr_assert_str_eq(json_string_value(json_object_get(o, "currency")), "USD");
        cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "EXECUTING");
    }

    cr_assert_null(resp_header(r, "Idempotent-Replayed"),
                   "a first answer is not a replay");
}


Test(registration, registers_one_session_under_the_nonce)
{
    long         sessions, requests;
    char        *co_id;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    resp_free(register_ok(&m, uid("key"), body_for(co_id)));

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1, "sessions created under %s", nonce(&m, co_id));
    cr_assert_eq(requests, 1, "requests under %s", nonce(&m, co_id));
}


Test(registration, answers_amounts_with_the_currency_exponent)
{
    resp_t      *r;
    json_t      *co, *o;
    merchant_t   m;

    merchant_new(&m);
    co = checkout_new(uid("co"), 1);
    json_object_set_new(order_of(co, 0), "amount", json_string("10.5"));

    r = api_post_json(&m, co);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    o = json_array_get(json_object_get(resp_json(r), "payment_orders"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "amount")), "10.50");
}


Test(registration, accepts_a_currency_without_decimals)
{
    resp_t      *r;
    json_t      *co, *o;
    merchant_t   m;

    merchant_new(&m);
    co = checkout_new(uid("co"), 1);
    json_object_set_new(order_of(co, 0), "amount", json_string("500"));
    json_object_set_new(order_of(co, 0), "currency", json_string("JPY"));

    r = api_post_json(&m, co);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    o = json_array_get(json_object_get(resp_json(r), "payment_orders"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "amount")), "500");
    cr_assert_str_eq(json_string_value(json_object_get(o, "currency")), "JPY");
}


/* -- authentication (401) --------------------------------------------------- */

/*
 * A 401 says what is wrong with what was sent, so that an integrator can fix
 * it: no header, a header that is not "Bearer <key>", a token that is not an
 * API key.  A well-formed key that is unknown, revoked or whose secret is
 * wrong gets one and the same detail: which key ids exist is not told.
 */
static void
expect_401_saying(resp_t *r, const char *words)
{
    const char  *detail;

    expect_problem(r, 401, "unauthorized");
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_assert(detail != NULL, "401 without a detail: %s", r->body);
    cr_assert(strstr(detail, words) != NULL, "detail \"%s\" does not say \"%s\"",
              detail, words);
    cr_assert_str_eq(resp_header(r, "WWW-Authenticate"), "Bearer");
}


Test(auth, refuses_a_request_without_authorization)
{
    char    *co_id = uid("co");
    resp_t  *r;

    r = api_post(NULL, uid("key"), body_for(co_id));
    expect_401_saying(r, "no Authorization header");
}


Test(auth, refuses_an_unknown_key)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    /* well-formed, but no such key id */
    strcpy(m.key, "mk_test_ZZZZZZZZZZZZ_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

    r = api_post(&m, uid("key"), body_for(uid("co")));
    expect_401_saying(r, "unknown, revoked or wrong");
}


Test(auth, refuses_a_known_key_id_with_a_wrong_secret)
{
    size_t       n;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    n = strlen(m.key);
    m.key[n - 1] = m.key[n - 1] == 'A' ? 'B' : 'A';

    r = api_post(&m, uid("key"), body_for(uid("co")));
    expect_401_saying(r, "unknown, revoked or wrong");
}


Test(auth, refuses_a_malformed_bearer_token)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    strcpy(m.key, "not-a-key");

    r = api_post(&m, uid("key"), body_for(uid("co")));
    expect_401_saying(r, "not an API key");
}


Test(auth, refuses_basic_authentication)
{
    char        *auth, *idem;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    auth = str_printf("Authorization: Basic %s", m.key);
    idem = str_printf("Idempotency-Key: %s", uid("key"));

    {
        const char  *h[] = { "Content-Type: application/json", auth, idem, NULL };

        r = api_post_raw(h, body_for(uid("co")), (size_t) -1);
    }

    expect_401_saying(r, "not \"Bearer");
}


Test(auth, checks_the_key_before_the_idempotency_key)
{
    resp_t  *r;

    r = api_post(NULL, NULL, body_for(uid("co")));
    expect_401_saying(r, "no Authorization header");
}


/* -- Idempotency-Key (400) ---------------------------------------------------- */

Test(idempotency_key, refuses_a_request_without_one)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_post(&m, NULL, body_for(uid("co")));
    expect_problem(r, 400, "idempotency_key_missing");
}


Test(idempotency_key, is_checked_before_the_body)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_post(&m, NULL, "{not json");
    expect_problem(r, 400, "idempotency_key_missing");
}


/* Sends one raw Idempotency-Key header line. */
static resp_t *
post_with_key_header(const char *line)
{
    char        *auth;
    merchant_t   m;

    merchant_demo(&m);
    auth = str_printf("Authorization: Bearer %s", m.key);

    {
        const char  *h[] = { "Content-Type: application/json", auth, line, NULL };

        return api_post_raw(h, body_for(uid("co")), (size_t) -1);
    }
}


Test(idempotency_key, refuses_an_empty_key)
{
    /* curl sends "Name;" as an empty "Name:" */
    expect_problem(post_with_key_header("Idempotency-Key;"), 400,
                   "idempotency_key_invalid");
}


Test(idempotency_key, refuses_an_empty_quoted_key)
{
    expect_problem(post_with_key_header("Idempotency-Key: \"\""), 400,
                   "idempotency_key_invalid");
}


Test(idempotency_key, refuses_a_key_of_256_characters)
{
    char  key[257];

    memset(key, 'k', 256);
    key[256] = '\0';

    expect_problem(post_with_key_header(str_printf("Idempotency-Key: %s", key)),
                   400, "idempotency_key_invalid");
}


Test(idempotency_key, accepts_a_key_of_255_characters)
{
    char        *k;
    char         key[256];
    merchant_t   m;

    merchant_new(&m);
    k = uid("k");
    memset(key, 'k', 255);
    memcpy(key, k, strlen(k));
    key[255] = '\0';

    resp_free(register_ok(&m, key, body_for(uid("co"))));
}


Test(idempotency_key, refuses_a_key_with_non_ascii_bytes)
{
    expect_problem(post_with_key_header("Idempotency-Key: cl\xc3\xa9-1"), 400,
                   "idempotency_key_invalid");
}


Test(idempotency_key, refuses_a_bare_key_with_a_space)
{
    expect_problem(post_with_key_header("Idempotency-Key: two words"), 400,
                   "idempotency_key_invalid");
}


Test(idempotency_key, refuses_a_key_with_a_control_character)
{
    expect_problem(post_with_key_header("Idempotency-Key: a\tb"), 400,
                   "idempotency_key_invalid");
}


Test(idempotency_key, treats_quoted_and_bare_forms_as_the_same_key)
{
    char        *key, *quoted, *body, *auth, *idem;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    body = body_for(uid("co"));
    a = register_ok(&m, key, body);

    quoted = str_printf("\"%s\"", key);
    auth = str_printf("Authorization: Bearer %s", m.key);
    idem = str_printf("Idempotency-Key: %s", quoted);

    {
        const char  *h[] = { "Content-Type: application/json", auth, idem, NULL };

        b = api_post_raw(h, body, (size_t) -1);
    }

    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_assert_str_eq(resp_header(b, "Idempotent-Replayed") ? resp_header(b, "Idempotent-Replayed") : "",
                     "true", "the quoted key must replay the bare one's answer");
    cr_assert(a->len == b->len && memcmp(a->body, b->body, a->len) == 0,
              "replay differs:\n%s\n%s", a->body, b->body);
}


/* -- the body (413, 415, 400) --------------------------------------------------- */

Test(body, refuses_a_body_over_the_limit_with_413)
{
    char        *big;
    size_t       n = 70 * 1024;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';

    r = api_post(&m, uid("key"), big);
    expect_problem(r, 413, "payload_too_large");
}


Test(body, refuses_a_non_json_content_type_with_415)
{
    char        *auth, *idem;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    auth = str_printf("Authorization: Bearer %s", m.key);
    idem = str_printf("Idempotency-Key: %s", uid("key"));

    {
        const char  *h[] = { "Content-Type: text/plain", auth, idem, NULL };

        r = api_post_raw(h, body_for(uid("co")), (size_t) -1);
    }

    expect_problem(r, 415, "unsupported_media_type");
}


Test(body, refuses_a_missing_content_type_with_415)
{
    char        *auth, *idem;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    auth = str_printf("Authorization: Bearer %s", m.key);
    idem = str_printf("Idempotency-Key: %s", uid("key"));

    {
        /* "Content-Type:" stops curl from adding its form type */
        const char  *h[] = { "Content-Type:", auth, idem, NULL };

        r = api_post_raw(h, body_for(uid("co")), (size_t) -1);
    }

    expect_problem(r, 415, "unsupported_media_type");
}


Test(body, refuses_invalid_json)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_post(&m, uid("key"), "{\"checkout_id\": \"co_1\",");
    expect_problem(r, 400, "invalid_request");
}


Test(body, refuses_duplicate_json_keys)
{
    char        *body, *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    co_id = uid("co");
    body = body_for(co_id);
    /* a second checkout_id member, first in the object */
    body = str_printf("{\"checkout_id\":\"%s\",%s", uid("co"), body + 1);

    r = api_post(&m, uid("key"), body);
    expect_problem(r, 400, "invalid_request");
}


Test(body, refuses_a_body_that_is_not_an_object)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_post(&m, uid("key"), "[]");
    expect_problem(r, 400, "invalid_request");
}


Test(body, refuses_an_unknown_field)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(co, "amount_total", json_string("15.00"));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_an_invalid_checkout_id)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(co, "checkout_id", json_string("co 1"));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_a_checkout_id_of_41_characters)
{
    char     id[42];
    json_t  *co = checkout_new(uid("co"), 2);

    memset(id, 'c', 41);
    id[41] = '\0';
    json_object_set_new(co, "checkout_id", json_string(id));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_an_invalid_payment_order_id)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(order_of(co, 1), "payment_order_id", json_string("po/1"));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_an_empty_payment_order_id)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(order_of(co, 0), "payment_order_id", json_string(""));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_an_invalid_seller_account)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(order_of(co, 0), "seller_account", json_string("seller 42"));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_duplicate_payment_order_ids)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set(order_of(co, 1), "payment_order_id",
                    json_object_get(order_of(co, 0), "payment_order_id"));
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_a_checkout_without_orders)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(co, "payment_orders", json_array());
    expect_refused(co, 400, "invalid_request");
}


Test(body, refuses_mixed_currencies)
{
    json_t  *co = checkout_new(uid("co"), 2);

    json_object_set_new(order_of(co, 1), "currency", json_string("EUR"));
    expect_refused(co, 400, "mixed_currency");
}


/* -- amounts and currencies ------------------------------------------------------ */

static void
expect_amount_refused(const char *amount, const char *currency,
    const char *code)
{
    json_t  *co = checkout_new(uid("co"), 1);

    json_object_set_new(order_of(co, 0), "amount", json_string(amount));
    json_object_set_new(order_of(co, 0), "currency", json_string(currency));
    expect_refused(co, 400, code);
}


Test(amounts, refuses_more_decimals_than_the_currency_has)
{
    expect_amount_refused("10.001", "USD", "invalid_amount");
}


Test(amounts, refuses_decimals_for_a_currency_without_them)
{
    expect_amount_refused("10.5", "JPY", "invalid_amount");
}


Test(amounts, refuses_zero)
{
    expect_amount_refused("0.00", "USD", "invalid_amount");
}


Test(amounts, refuses_a_negative_amount)
{
    expect_amount_refused("-5.00", "USD", "invalid_amount");
}


/*
 * Amounts this large are long digit runs, and card data is checked first:
 * these were chosen so that no 13-19 digit window passes the Luhn check.
 */

Test(amounts, refuses_more_than_int64_minor_units)
{
    /* 9,266,864,443,758,489,500 cents > 9,223,372,036,854,775,807 */
    expect_amount_refused("92668644437584895.00", "USD", "invalid_amount");
}


Test(amounts, refuses_a_total_over_int64_minor_units)
{
    json_t  *co = checkout_new(uid("co"), 2);

    /* each fits in an int64 of cents, their sum does not */
    json_object_set_new(order_of(co, 0), "amount",
                        json_string("54259359545444902.00"));
    json_object_set_new(order_of(co, 1), "amount",
                        json_string("54259359545444902.00"));
    expect_refused(co, 400, "invalid_amount");
}


Test(amounts, refuses_a_json_number)
{
    json_t  *co = checkout_new(uid("co"), 1);

    json_object_set_new(order_of(co, 0), "amount", json_real(10.5));
    expect_refused(co, 400, "invalid_amount");
}


Test(amounts, refuses_a_lower_case_currency)
{
    expect_amount_refused("10.00", "usd", "unsupported_currency");
}


Test(amounts, refuses_an_unknown_currency)
{
    expect_amount_refused("10.00", "XYZ", "unsupported_currency");
}


struct amount_syntax {
    char  amount[24];
};

ParameterizedTestParameters(amounts, refuses_a_non_canonical_amount_string)
{
    static struct amount_syntax  cases[] = {
        { "010.00" }, { "+10" }, { "1e3" }, { " 10" }, { "10 " },
        { "10,00" }, { "10." }, { ".5" }, { "" }, { "0x10" },
    };

    return cr_make_param_array(struct amount_syntax, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct amount_syntax *c, amounts,
                  refuses_a_non_canonical_amount_string,
                  .timeout = E2E_TIMEOUT)
{
    expect_amount_refused(c->amount, "USD", "invalid_amount");
}


/* -- return URLs ------------------------------------------------------------ */

static void
expect_url_refused(const char *which, const char *url)
{
    json_t  *co = checkout_new(uid("co"), 1);

    json_object_set_new(co, which, json_string(url));
    expect_refused(co, 400, "forbidden_return_url");
}


static void
expect_url_accepted(const char *which, const char *url)
{
    resp_t      *r;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    co = checkout_new(uid("co"), 1);
    json_object_set_new(co, which, json_string(url));

    r = api_post_json(&m, co);
    cr_assert_eq(r->status, 201, "%s %s: %ld %s", which, url, r->status,
                 r->body);
}


Test(return_urls, refuses_another_origin)
{
    expect_url_refused("success_url", "https://evil.example/thanks");
}


Test(return_urls, refuses_http)
{
    expect_url_refused("success_url", "http://shop.example/thanks");
}


Test(return_urls, refuses_userinfo)
{
    expect_url_refused("cancel_url", "https://user@shop.example/cart");
}


Test(return_urls, refuses_another_port)
{
    expect_url_refused("cancel_url", "https://shop.example:8443/cart");
}


Test(return_urls, refuses_a_trailing_dot)
{
    expect_url_refused("success_url", "https://shop.example./thanks");
}


Test(return_urls, refuses_a_subdomain_of_the_origin)
{
    expect_url_refused("success_url", "https://evil.shop.example/thanks");
}


Test(return_urls, accepts_the_default_port_written_out)
{
    expect_url_accepted("success_url", "https://shop.example:443/thanks");
}


Test(return_urls, compares_the_host_case_insensitively)
{
    expect_url_accepted("cancel_url", "https://SHOP.Example/cart");
}


/* bin/payments-merchant CMD --id m --origin origin: its exit status, its
 * output in *out */
static int
origin_tool(const merchant_t *m, const char *cmd, const char *origin,
    char **out)
{
    const char  *args[] = { cmd, "--id", m->id, "--origin", origin, NULL };

    return merchant_toolv_of(m, args, out);
}


/* The merchant's return origin moved to another, as an operator does it
 * (payments-merchant add-origin, then remove-origin); the suite's gateway
 * reads them again once its key's cache of payments_auth_cache, 5 s, has
 * passed. */
static void
origins_moved(const merchant_t *m)
{
    char  *out;

    cr_assert_eq(origin_tool(m, "add-origin", "https://moved.example", &out),
                 0, "%s", out);
    cr_assert_eq(origin_tool(m, "remove-origin", SHOP_ORIGIN, &out), 0,
                 "%s", out);
    msleep(5500);
}


/* payments-merchant remove-origin removes one origin, never the last */
Test(return_urls, remove_origin_keeps_the_merchants_last_origin)
{
    char        *out;
    merchant_t   m;

    merchant_new(&m);

    cr_assert_neq(origin_tool(&m, "remove-origin", SHOP_ORIGIN, &out), 0,
                  "removed the only origin: %s", out);
    cr_expect(strstr(out, "only return origin") != NULL, "%s", out);

    cr_assert_neq(origin_tool(&m, "remove-origin", "https://other.example",
                              &out), 0, "%s", out);
    cr_expect(strstr(out, "has no return origin") != NULL, "%s", out);

    cr_assert_eq(origin_tool(&m, "add-origin", "https://new.example", &out),
                 0, "%s", out);
    cr_assert_eq(origin_tool(&m, "remove-origin", "https://SHOP.example/",
                             &out), 0, "%s", out);
    cr_assert_eq(merchant_toolv_of(&m, (const char *[]) { "show", "--id",
                                                         m.id, NULL },
                                   &out), 0, "%s", out);
    cr_expect(strstr(out, "origin|https://new.example") != NULL, "%s", out);
    cr_expect(strstr(out, "shop.example") == NULL, "%s", out);
}


/*
 * A retry under the same key after the merchant removed the origin of its
 * return URLs is the request already made: its 201 replayed (it was 400
 * forbidden_return_url, as if the checkout were not registered); a new
 * checkout with those URLs is refused, nothing stored.
 */
Test(return_urls, a_retry_replays_after_the_merchant_removed_its_origin,
     .timeout = 30)
{
    char        *co, *key, *body;
    resp_t      *r, *first;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    key = uid("key");
    body = dump(checkout_new(co, 1));

    first = api_post(&m, key, body);
    cr_assert_eq(first->status, 201, "%s", first->body);

    origins_moved(&m);

    r = api_post(&m, key, body);
    cr_assert_eq(r->status, 201, "the retry: %ld %s", r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);

    co = uid("co");
    r = api_post(&m, uid("key"), dump(checkout_new(co, 1)));
    expect_problem(r, 400, "forbidden_return_url");
    cr_expect(strstr(r->body, "success_url") != NULL, "%s", r->body);
    cr_assert_eq(checkouts_named(&m, co), 0);
}


/*
 * A registration whose first attempt went unanswered (the PSP's 503) and
 * whose return URLs' origin the merchant removed since is never sent again:
 * its shoppers would be sent there as they come back from the PSP.  400
 * forbidden_return_url saying so; the checkout is kept for the PSP's word.
 */
Test(return_urls, a_registration_resumed_after_its_origin_was_removed_is_not_sent,
     .timeout = 30)
{
    char        *co, *key, *body;
    long         sessions, requests;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    key = uid("key");
    body = dump(checkout_new(co, 1));

    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503,\"retry_after\":3600}",
                          nonce(&m, co)));
    r = api_post(&m, key, body);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);

    origins_moved(&m);

    r = api_post(&m, key, body);
    expect_problem(r, 400, "forbidden_return_url");
    cr_expect(strstr(r->body, "not sent again") != NULL, "%s", r->body);

    mock_registrations(nonce(&m, co), &sessions, &requests);
    cr_expect_eq(requests, 1, "%ld requests at the PSP", requests);
    cr_expect_eq(checkouts_named(&m, co), 1);
}


typedef struct {
    const merchant_t  *m;
    const char        *key;
    const char        *body;
} url_post_t;


static resp_t *
url_post(void *arg)
{
    url_post_t  *a = arg;

    return api_post(a->m, a->key, a->body);
}


/* Taken for known (its key was there when it was asked) but new at its
 * claim (the key deleted in between, as an undone claim's is): the claim
 * is undone (pay_abandon, reason return_url_forbidden) and refused as a
 * new checkout is, nothing stored. */
Test(return_urls, a_known_request_that_turned_out_new_is_undone)
{
    char        *key, *co;
    json_t      *j;
    resp_t      *r;
    url_post_t   a;
    merchant_t   m;
    const char  *p[3];

    merchant_new(&m);

    key = uid("key");
    co = uid("co");
    p[0] = m.id;
    p[1] = key;
    p[2] = co;

    j = checkout_new(co, 1);
    json_object_set_new(j, "success_url",
                        json_string("https://moved.example/thanks"));
    a.m = &m;
    a.key = key;
    a.body = dump(j);
    r = db_key_undone_meanwhile(m.id, key, url_post, &a);

    expect_problem(r, 400, "forbidden_return_url");
    cr_expect_eq(checkouts_named(&m, co), 0, "the claim was kept");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM idempotency_keys WHERE "
                               "merchant_id = $1 AND idem_key = $2", 2, p),
                     "0");
    cr_expect_str_eq(db_scalar("SELECT string_agg(detail->>'reason', ' ') "
                               "FROM audit_log WHERE merchant_id = $1 AND "
                               "checkout_id = $3 AND action = "
                               "'registration:abandoned' AND $2::text IS "
                               "NOT NULL", 3, p),
                     "return_url_forbidden");
}

/* -- card data ------------------------------------------------------------------- */

/* Neither the error log nor the access log holds any of the strings. */
static void
expect_not_logged(const char *const *needles)
{
    size_t       i, j;
    char        *path;
    const char  *logs[] = { "logs/error.log", "logs/access.log" };

    for (i = 0; i < 2; i++) {
        path = run_file(logs[i]);

        for (j = 0; needles[j] != NULL; j++) {
            cr_assert(!file_contains(path, needles[j]),
                      "%s contains card data %s", logs[i], needles[j]);
        }
    }
}


Test(card_data, refuses_a_card_number_in_the_buyer_email)
{
    json_t      *co;
    const char  *never[] = { "4111111111111111", NULL };

    co = checkout_new(uid("co"), 2);
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string("4111111111111111@example.com"));

    expect_refused(co, 400, "card_data_forbidden");
    expect_not_logged(never);
}


Test(card_data, refuses_a_card_number_in_the_checkout_id)
{
    json_t      *co;
    const char  *never[] = { "5555555555554444", NULL };

    co = checkout_new(uid("co"), 2);
    json_object_set_new(co, "checkout_id", json_string("5555555555554444"));

    expect_refused(co, 400, "card_data_forbidden");
    expect_not_logged(never);
}


Test(card_data, refuses_a_card_number_in_a_payment_order_id)
{
    json_t      *co;
    const char  *never[] = { "6011111111111117", NULL };

    co = checkout_new(uid("co"), 2);
    json_object_set_new(order_of(co, 0), "payment_order_id",
                        json_string("po-6011111111111117"));

    expect_refused(co, 400, "card_data_forbidden");
    expect_not_logged(never);
}


Test(card_data, refuses_a_card_number_with_spaces)
{
    json_t      *co;
    const char  *never[] = { "4000 0566 5566 5556", "4000056655665556", NULL };

    co = checkout_new(uid("co"), 2);
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string("card 4000 0566 5566 5556 @example.com"));

    expect_refused(co, 400, "card_data_forbidden");
    expect_not_logged(never);
}


Test(card_data, refuses_a_card_number_with_dashes)
{
    json_t      *co;
    const char  *never[] = { "3782-822463-10005", "378282246310005", NULL };

    co = checkout_new(uid("co"), 2);
    json_object_set_new(order_of(co, 1), "seller_account",
                        json_string("s-3782-822463-10005"));

    expect_refused(co, 400, "card_data_forbidden");
    expect_not_logged(never);
}


Test(card_data, accepts_a_digit_run_that_fails_the_luhn_check)
{
    const char  *id;
    resp_t      *r;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    /* 16 digits none of whose 13-16 digit windows passes Luhn; the
     * merchant is new, so the id needs no more to be unique */
    id = "4242066907439150_x";
    co = checkout_new(id, 1);

    r = api_post_json(&m, co);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
}


/* --- live and test money never meet (issue #4) ------------------------------ */

static resp_t *
register_on(const merchant_t *m, const char *psp)
{
    json_t  *body;

    body = checkout_new(uid("co"), 1);
    json_object_set_new(body, "psp", json_string(psp));
    return api_post_json(m, body);
}


Test(modes, a_test_key_never_reaches_a_live_psp)
{
    long        sessions, requests;
    resp_t     *r;
    merchant_t  m;
    json_t     *body;
    char       *co;

    merchant_new(&m);
    co = uid("co");
    body = checkout_new(co, 1);
    json_object_set_new(body, "psp", json_string("mock_live"));
    r = api_post_json(&m, body);
    expect_problem(r, 400, "invalid_request");
    cr_assert(strstr(r->body, "a test API key cannot use a live PSP") != NULL,
              "%s", r->body);

    /* nothing was registered at the PSP under the nonce */
    mock_registrations(nonce(&m, co), &sessions, &requests);
    cr_assert_eq(requests, 0);
}


Test(modes, a_live_key_never_reaches_a_test_psp)
{
    resp_t     *r;
    merchant_t  m;

    merchant_new_mode(&m, "live");
    cr_assert(strncmp(m.key, "mk_live_", 8) == 0, "%s", m.key);
    r = register_on(&m, env("PAY_TEST_PSP"));
    expect_problem(r, 400, "invalid_request");
    cr_assert(strstr(r->body, "a live API key cannot use a test PSP") != NULL,
              "%s", r->body);
}


Test(modes, a_live_key_registers_with_a_live_psp)
{
    resp_t     *r;
    merchant_t  m;

    merchant_new_mode(&m, "live");
    r = register_on(&m, "mock_live");
    cr_assert_eq(r->status, 201, "%s", r->body);
}


Test(modes, a_key_whose_stored_mode_differs_from_its_text_is_refused)
{
    resp_t      *r;
    merchant_t   m;
    const char  *params[1];

    merchant_new(&m);
    params[0] = m.key_id;
    /* the database says live, the key says mk_test_ */
    db_exec("UPDATE api_keys SET mode = 'live' WHERE key_id = $1", 1, params);
    r = register_on(&m, env("PAY_TEST_PSP"));
    expect_problem(r, 401, "unauthorized");
}


/*
 * What a worker holds does not grow with the requests it served.
 * LeakSanitizer (the sanitized run) reports memory nothing points to when
 * a worker exits; memory the worker keeps reachable and never gives back
 * (an entry a request adds to a list or a cache no one bounds) it cannot
 * see, and it grows until the worker is killed.  The sanitized run's
 * keep_modules.so answers SIGRTMIN+1 with the bytes the worker has
 * allocated and not freed (NGX_ASAN_ALLOCATED): after a first batch fills
 * what is filled once (the connections to PostgreSQL and the PSP, their
 * buffers, the API key's cache entry, TLS sessions), two more batches of
 * registrations, each paid by its webhook and read back, may not leave it
 * holding more than noise.
 * Skipped without the sanitized run's library (ci/e2e.sh E2E_ASAN=1, its
 * leak check on).
 */

/* n registrations (body_for's), each paid by the PSP's signed event and
 * read back */
static void
growth_batch(const gateway_t *gw, const merchant_t *m, int n)
{
    int          i;
    char        *id;
    resp_t      *r;
    const char  *token;

    for (i = 0; i < n; i++) {
        id = uid("gr");
        r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"),
                         body_for(id));
        cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
        token = json_string_value(json_object_get(resp_json(r),
                                                  "psp_token"));
        cr_assert_not_null(token, "%s", r->body);

        r = stripe_session_paid_post(gw->origin, m->id, id, token);
        cr_assert_eq(r->status, 200, "the webhook: %ld %s", r->status,
                     r->body);

        r = gateway_send(gw, "GET", str_printf("/v1/checkouts/%s", id), m,
                         NULL, NULL);
        cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
        cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                           "status")),
                         "SUCCESS", "%s", r->body);
    }
}


Test(registration, a_worker_holds_no_more_for_the_requests_it_served,
     .timeout = 180)
{
    long long   first, second, third;
    gateway_t   gw;
    merchant_t  m;

    gateway_start_growth(&gw, "growth", NULL);
    merchant_new(&m);

    growth_batch(&gw, &m, 100);
    first = gateway_worker_allocated(&gw);
    growth_batch(&gw, &m, 200);
    second = gateway_worker_allocated(&gw);
    growth_batch(&gw, &m, 200);
    third = gateway_worker_allocated(&gw);
    cr_log_info("growth's worker: %lld, %lld, %lld bytes after 100, 300, "
                "500 registrations", first, second, third);
    /* a one-off fill may grow one batch; what each request keeps grows
     * both (8 KB of 600 requests: 14 bytes a request) */
    cr_expect(second - first <= 8192 || third - second <= 8192,
              "the worker held %lld bytes after 100 registrations, %lld "
              "after 300, %lld after 500 (each paid and read back): it keeps "
              "what "
              "requests allocated", first, second, third);

    gateway_stop(&gw);
}
