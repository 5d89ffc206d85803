/*
 * End to end: the OWASP API Security Top 10 cases that apply to the
 * merchant API and the webhooks (issue #4): objects of another merchant,
 * oversize and chunked bodies, deep nesting, invalid UTF-8, duplicate
 * header fields, header injection through values that reach a Location,
 * and mass assignment.  Each refused request must also leave nothing
 * registered at the PSP.
 */

#include "harness.h"
#include "../hostile_urls.h"


static void
expect_nothing_registered(const merchant_t *m, const char *co)
{
    long  sessions, requests;

    mock_registrations(nonce(m, co), &sessions, &requests);
    cr_assert_eq(requests, 0, "the PSP saw %ld requests for %s", requests, co);
}


static resp_t *
post_with(const char *const *extra, const merchant_t *m, const char *body)
{
    size_t        i, n;
    const char   *h[16];

    n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = str_printf("Authorization: Bearer %s", m->key);
    for (i = 0; extra && extra[i]; i++) {
        h[n++] = extra[i];
    }
    h[n] = NULL;

    return api_post_raw(h, body, (size_t) -1);
}


/* API1: broken object level authorization */

Test(owasp, another_merchants_checkout_and_its_pay_link_are_out_of_reach)
{
    resp_t      *r;
    json_t      *j;
    merchant_t   a, b;
    const char  *order, *pay_url, *co;

    merchant_new(&a);
    merchant_new(&b);
    co = uid("co");
    r = register_ok(&a, uid("key"), body_for(co));
    j = resp_json(r);
    order = json_string_value(json_object_get(order_of(j, 0),
                                              "payment_order_id"));
    pay_url = json_string_value(json_object_get(j, "pay_url"));
    cr_assert_not_null(order);
    cr_assert_not_null(pay_url);

    expect_problem(api_get(&b, str_printf("/v1/payments/%s", order)), 404,
                   "not_found");
    expect_problem(api_get(&b, str_printf("/v1/checkouts/%s", co)), 404,
                   "not_found");

    /* the same checkout id under another merchant is another checkout */
    r = register_ok(&b, uid("key"), body_for(co));
    cr_assert_str_neq(json_string_value(json_object_get(resp_json(r),
                                                        "pay_url")),
                      pay_url);
}


/* API4: unrestricted resource consumption */

Test(owasp, a_chunked_body_over_the_limit_is_413)
{
    char        *big;
    size_t       n = 200 * 1024;
    resp_t      *r;
    merchant_t   m;
    const char  *extra[] = { "Transfer-Encoding: chunked", NULL };

    merchant_demo(&m);
    big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';

    r = post_with((const char *const[]) {
                      extra[0], str_printf("Idempotency-Key: %s", uid("k")),
                      NULL }, &m, big);
    expect_problem(r, 413, "payload_too_large");
}


Test(owasp, json_nested_ten_thousand_deep_is_400)
{
    char        *body, *co;
    size_t       depth = 10000, i, n;
    resp_t      *r;
    merchant_t   m;
    json_t      *good;

    merchant_new(&m);
    co = uid("co");
    good = checkout_new(co, 1);

    /* {"checkout_id":..., ..., "x":[[[[...]]]]} */
    body = dump(good);
    n = strlen(body);
    body = realloc(body, n + depth * 2 + 16);
    cr_assert_not_null(body);
    n--;                                    /* drop the closing brace */
    n += (size_t) sprintf(body + n, ",\"x\":");
    for (i = 0; i < depth; i++) {
        body[n++] = '[';
    }
    for (i = 0; i < depth; i++) {
        body[n++] = ']';
    }
    body[n++] = '}';
    body[n] = '\0';

    r = api_post(&m, uid("key"), body);
    expect_problem(r, 400, "invalid_request");
    expect_nothing_registered(&m, co);

    /* the worker survived it */
    cr_assert_eq(gw_get("/healthz")->status, 200);
}


/* API8: security misconfiguration and injection */

Test(owasp, invalid_utf8_in_a_string_is_400)
{
    char        *body, *co, *p;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    body = dump(checkout_new(co, 1));

    /* an overlong "/" (C0 AF) and a lone continuation byte in the e-mail */
    p = strstr(body, "@");
    cr_assert_not_null(p);
    body = str_printf("%.*s\xc0\xaf\x80%s", (int) (p - body), body, p);

    r = api_post(&m, uid("key"), body);
    expect_problem(r, 400, "invalid_request");
    expect_nothing_registered(&m, co);
}


Test(owasp, two_idempotency_keys_are_400)
{
    char        *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    r = post_with((const char *const[]) {
                      str_printf("Idempotency-Key: %s", uid("k1")),
                      str_printf("Idempotency-Key: %s", uid("k2")), NULL },
                  &m, body_for(co));
    cr_assert_eq(r->status, 400, "%s", r->body);
    cr_assert(strstr(r->body, "idempotency_key") != NULL, "%s", r->body);
    expect_nothing_registered(&m, co);
}


Test(owasp, two_authorization_headers_are_refused)
{
    char        *co;
    resp_t      *r;
    merchant_t   m, other;

    merchant_new(&m);
    merchant_new(&other);
    co = uid("co");
    r = post_with((const char *const[]) {
                      str_printf("Authorization: Bearer %s", other.key),
                      str_printf("Idempotency-Key: %s", uid("k")), NULL },
                  &m, body_for(co));
    cr_assert(r->status == 400 || r->status == 401, "%ld %s", r->status,
              r->body);
    expect_nothing_registered(&m, co);
    expect_nothing_registered(&other, co);
}


Test(owasp, two_stripe_signatures_are_400)
{
    req_t    rq;
    resp_t  *r;

    {
        const char  *h[] = { "Content-Type: application/json",
                             "Stripe-Signature: t=1,v1=00",
                             "Stripe-Signature: t=1,v1=00", NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
        rq.headers = h;
        rq.body = "{}";
        rq.len = (size_t) -1;
        r = http(&rq);
    }

    expect_problem(r, 400, "bad_signature");
}


Test(owasp, crlf_in_a_return_url_never_reaches_a_header)
{
    char        *co;
    resp_t      *r;
    json_t      *body;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    body = checkout_new(co, 1);
    json_object_set_new(body, "success_url",
                        json_string(SHOP_ORIGIN "/ok\r\nSet-Cookie: a=b"));
    r = api_post_json(&m, body);
    cr_assert_eq(r->status, 400, "%s", r->body);
    cr_assert_null(resp_header(r, "Set-Cookie"));
    expect_nothing_registered(&m, co);

    body = checkout_new(co, 1);
    json_object_set_new(body, "cancel_url",
                        json_string(SHOP_ORIGIN "/no%0d%0aSet-Cookie:%20a=b"));
    r = api_post_json(&m, body);
    /* encoded, it is only a path; if accepted, it must stay encoded */
    if (r->status == 201) {
        cr_assert_null(resp_header(r, "Set-Cookie"));
    } else {
        cr_assert_eq(r->status, 400, "%s", r->body);
    }
}


/* API3/API6: mass assignment of server-owned fields */

Test(owasp, server_owned_fields_in_the_body_are_refused)
{
    size_t       i;
    char        *co;
    resp_t      *r;
    json_t      *body;
    merchant_t   m;
    const char  *fields[] = { "status", "merchant_id", "psp_token",
                              "pay_url" };

    merchant_new(&m);

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        co = uid("co");
        body = checkout_new(co, 1);
        json_object_set_new(body, fields[i], json_string("SUCCESS"));
        r = api_post_json(&m, body);
        expect_problem(r, 400, "invalid_request");
        cr_assert(strstr(r->body, fields[i]) != NULL, "%s", r->body);
        expect_nothing_registered(&m, co);
    }
}


/* API10 and the allow-lists: every hostile return URL of the shared table,
 * as success_url and as cancel_url, is refused before the PSP is called. */

#define PAY_HOSTILE_STR(u)  u,

Test(owasp, every_hostile_return_url_is_refused_end_to_end, .timeout = 120)
{
    size_t       i, j;
    char        *co;
    resp_t      *r;
    json_t      *body;
    merchant_t   m;
    const char  *urls[] = { PAY_HOSTILE_URLS(PAY_HOSTILE_STR) };
    const char  *fields[] = { "success_url", "cancel_url" };

    merchant_new(&m);

    for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        for (j = 0; j < 2; j++) {
            co = uid("co");
            body = checkout_new(co, 1);
            json_object_set_new(body, fields[j], json_string(urls[i]));
            r = api_post_json(&m, body);
            cr_assert_eq(r->status, 400, "%s \"%s\": %ld %s", fields[j],
                         urls[i], r->status, r->body);
            cr_assert(strstr(r->body, "\"forbidden_return_url\"") != NULL
                      || strstr(r->body, "\"invalid_request\"") != NULL,
                      "%s", r->body);
            expect_nothing_registered(&m, co);
        }
    }
}
