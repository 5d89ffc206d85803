/*
 * End to end: the OWASP API Security Top 10 cases that apply to the
 * merchant API and the webhooks (issue #4): objects of another merchant,
 * oversize and chunked bodies, deep nesting, invalid UTF-8, duplicate
 * header fields, header injection through values that reach a Location,
 * and mass assignment.  Each refused request must also leave nothing
 * registered at the PSP.
 */

#include <poll.h>
#include <string.h>
#include <curl/curl.h>

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


/* -- issue 15 ------------------------------------------------------------- */


/* Header injection through the path of the http -> https redirect: nginx
 * decodes %0d%0a in the path into a CR LF, which must never reach the
 * Location. */

Test(owasp, crlf_in_the_path_never_reaches_the_https_redirect)
{
    size_t       i, j;
    resp_t      *r;
    const char  *paths[] = {
        "/v1/static/x%0d%0aSet-Cookie:%20injected=1",
        "/v1/static/x%0aSet-Cookie:%20injected=1",
        "/v1/static/x%0dSet-Cookie:%20injected=1",
        "/v1/checkouts/x%0d%0aSet-Cookie:%20injected=1/pay?t=x",
        "/v1/return/stripe/x%0d%0aSet-Cookie:%20injected=1?t=x",
    };

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        r = http_get(gw_plain_url(paths[i]));
        cr_assert_null(resp_header(r, "Set-Cookie"), "%s: Set-Cookie %s",
                       paths[i], resp_header(r, "Set-Cookie"));
        for (j = 0; j < r->nhdr; j++) {
            cr_assert(strstr(r->names[j], "injected") == NULL
                      && strstr(r->values[j], "injected") == NULL,
                      "%s: header %s: %s", paths[i], r->names[j],
                      r->values[j]);
        }
        expect_problem(r, 400, "invalid_request");
    }
}


Test(owasp, the_https_redirect_keeps_the_path_escaped)
{
    resp_t  *r;
    char    *want;

    r = http_get(gw_plain_url("/v1/static/a%20b%3Fc%25d?t=x"));
    cr_assert_eq(r->status, 301, "%ld %s", r->status, r->body);
    want = str_printf("%s/v1/static/a%%20b%%3Fc%%25d?t=x",
                      env("PAY_TEST_PUBLIC_ORIGIN"));
    cr_assert_str_eq(resp_header(r, "Location"), want);
    expect_request_id(r);
}


/* POST /v1/payments?mark=<mark> with this body, chunked or not */
static resp_t *
post_marked(const merchant_t *m, const char *mark, const char *body,
    int chunked)
{
    req_t        rq;
    const char  *h[] = {
        "Content-Type: application/json",
        str_printf("Authorization: Bearer %s", m->key),
        str_printf("Idempotency-Key: %s", uid("k")),
        chunked ? "Transfer-Encoding: chunked" : NULL,
        NULL
    };

    rq.method = "POST";
    rq.url = gw_url(str_printf("%s?mark=%s", PATH_PAYMENTS, mark));
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


/* body_for(co) with n spaces after its "{" */
static char *
padded_body(const char *co, size_t n)
{
    char   *body, *big;
    size_t  len;

    body = body_for(co);
    len = strlen(body);
    big = malloc(len + n + 1);
    cr_assert_not_null(big);
    big[0] = '{';
    memset(big + 1, ' ', n);
    memcpy(big + 1 + n, body + 1, len);     /* with its NUL */

    return big;
}


/* Whether a line of the error log has both strings. */
static int
error_log_has(const char *a, const char *b)
{
    char  *log, *line, *save;

    log = file_read(run_file("logs/error.log"), NULL);
    if (log == NULL) {
        return 0;
    }

    for (line = strtok_r(log, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        if (strstr(line, a) && strstr(line, b)) {
            return 1;
        }
    }

    return 0;
}


/* A body past client_body_buffer_size (16k) but within payments_max_body
 * (64k) is read in memory: nginx never writes it to a temporary file, which
 * the module would then have to read back with a blocking read. */

Test(owasp, a_40k_body_is_read_in_memory_never_from_a_temp_file)
{
    char        *mark;
    resp_t      *r;
    merchant_t   m;
    int          chunked;

    merchant_new(&m);
    mark = uid("mark");

    for (chunked = 0; chunked < 2; chunked++) {
        r = post_marked(&m, mark, padded_body(uid("co"), 40 * 1024),
                        chunked);
        cr_assert_eq(r->status, 201, "chunked %d: %ld %s", chunked,
                     r->status, r->body);
    }

    /* past the limit, chunked: still 413, still nothing in a file */
    r = post_marked(&m, mark, padded_body(uid("co"), 100 * 1024), 1);
    expect_problem(r, 413, "payload_too_large");

    msleep(200);
    cr_assert(!error_log_has("buffered to a temporary file", mark),
              "a request body of the module went to a temporary file");
}


/* nginx's own 413 (past client_max_body_size, 1m) on the module's routes
 * is problem+json with an X-Request-Id, like every other answer. */

Test(owasp, nginx_own_413_is_problem_json_with_a_request_id)
{
    char        *big;
    size_t       n = 1100 * 1024;
    resp_t      *r;
    merchant_t   m;
    int          chunked;

    merchant_demo(&m);
    big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';

    for (chunked = 0; chunked < 2; chunked++) {
        r = post_marked(&m, uid("mark"), big, chunked);
        cr_assert_eq(r->status, 413, "chunked %d: %ld %s", chunked,
                     r->status, r->error);
        expect_problem(r, 413, "payload_too_large");
    }
}


/* The request, as bytes, over TLS to the gateway; the answer, as bytes,
 * until nginx closes the connection. */
static char *
raw_tls_exchange(const char *request)
{
    CURL           *e;
    char           *out;
    size_t          len, sent, got, n;
    CURLcode        rc;
    curl_socket_t   fd;
    struct pollfd   pfd;
    int             rounds;

    e = curl_easy_init();
    cr_assert_not_null(e);
    curl_easy_setopt(e, CURLOPT_URL, gw_url("/"));
    curl_easy_setopt(e, CURLOPT_CAINFO, env("PAY_TEST_CA"));
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(e);
    cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &fd);

    len = strlen(request);
    sent = 0;
    for (rounds = 0; sent < len && rounds < 1000; rounds++) {
        rc = curl_easy_send(e, request + sent, len - sent, &n);
        if (rc == CURLE_AGAIN) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            (void) poll(&pfd, 1, 100);
            continue;
        }
        cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
        sent += n;
    }

    out = calloc(1, 65536);
    cr_assert_not_null(out);
    got = 0;
    for (rounds = 0; got < 65535 && rounds < 100; rounds++) {
        rc = curl_easy_recv(e, out + got, 65535 - got, &n);
        if (rc == CURLE_AGAIN) {
            pfd.fd = fd;
            pfd.events = POLLIN;
            (void) poll(&pfd, 1, 100);
            continue;
        }
        if (rc != CURLE_OK || n == 0) {
            break;
        }
        got += n;
    }

    curl_easy_cleanup(e);
    return out;
}


/* nginx's own 400 for a broken chunked body, on a module's route: also
 * problem+json with an X-Request-Id */

Test(owasp, nginx_own_400_for_a_broken_chunked_body_is_problem_json)
{
    char  *answer, *split;

    answer = raw_tls_exchange(
        "POST /v1/payments HTTP/1.1\r\n"
        "Host: gw.test.example\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n"
        "\r\n"
        "zz\r\n{}\r\n0\r\n\r\n");

    cr_assert(strncmp(answer, "HTTP/1.1 400 ", 13) == 0, "%s", answer);
    split = strstr(answer, "\r\n\r\n");
    cr_assert_not_null(split, "%s", answer);
    *split = '\0';
    cr_assert(strcasestr(answer, "\r\nContent-Type: application/problem+json")
              != NULL, "%s", answer);
    cr_assert(strcasestr(answer, "\r\nX-Request-Id: ") != NULL, "%s",
              answer);
    cr_assert(strstr(split + 4, "\"code\":\"invalid_request\"") != NULL,
              "%s", split + 4);
}


/* JSON answers, the module's and nginx's own turned into problem+json,
 * say nosniff: a browser never reads one as a script or a page. */
Test(owasp, json_answers_say_nosniff)
{
    const char  *v;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    co_id = uid("co");
    r = register_ok(&m, uid("key"), dump(checkout_new(co_id, 1)));
    v = resp_header(r, "X-Content-Type-Options");
    cr_assert(v != NULL && strcmp(v, "nosniff") == 0, "201: %s", v);
    resp_free(r);

    r = api_get(&m, str_printf("/v1/checkouts/%s", co_id));
    cr_assert_eq(r->status, 200, "%s", r->body);
    v = resp_header(r, "X-Content-Type-Options");
    cr_assert(v != NULL && strcmp(v, "nosniff") == 0, "200: %s", v);
    resp_free(r);

    r = api_get(&m, "/v1/checkouts/co_no_such_checkout");
    cr_assert_eq(r->status, 404, "%s", r->body);
    v = resp_header(r, "X-Content-Type-Options");
    cr_assert(v != NULL && strcmp(v, "nosniff") == 0, "404: %s", v);
    resp_free(r);
}


/* A request line nginx cannot parse never reaches a location: its 400
 * was nginx's HTML page.  On a server with a "payments" location it is
 * problem+json, as every other answer there. */
Test(owasp, a_malformed_request_line_is_answered_in_problem_json)
{
    char  *answer, *split;

    answer = raw_tls_exchange(
        "GET /v1/pay ments HTTP/1.1 x\r\n"
        "Host: gw.test.example\r\n"
        "Connection: close\r\n"
        "\r\n");

    cr_assert(strncmp(answer, "HTTP/1.1 400 ", 13) == 0, "%s", answer);
    split = strstr(answer, "\r\n\r\n");
    cr_assert_not_null(split, "%s", answer);
    *split = '\0';
    cr_assert(strcasestr(answer, "\r\nContent-Type: application/problem+json")
              != NULL, "%s", answer);
    cr_assert(strcasestr(answer, "\r\nX-Content-Type-Options: nosniff")
              != NULL, "%s", answer);
    cr_assert(strstr(split + 4, "\"code\":\"invalid_request\"") != NULL,
              "%s", split + 4);
}
