/*
 * Unit tests: origins of return URLs (src/url.c).
 */

#include <string.h>
#include <criterion/criterion.h>
#include <payments/url.h>


static pay_origin_t  shop = { "https", "shop.example", 443 };


static int
ok(const char *url)
{
    pay_origin_t  o;

    return pay_origin_parse(url, &o, 0) == 0;
}


static void
assert_origin(const char *url, int allow_http, const char *scheme,
    const char *host, unsigned port)
{
    pay_origin_t  o;

    memset(&o, 0, sizeof(o));
    cr_assert_eq(pay_origin_parse(url, &o, allow_http), 0, "%s", url);
    cr_assert_str_eq(o.scheme, scheme);
    cr_assert_str_eq(o.host, host);
    cr_assert_eq(o.port, port);
}


Test(url, https_default_port_is_443)
{
    assert_origin("https://shop.example/thanks", 0, "https", "shop.example",
                  443);
}


Test(url, explicit_port_kept)
{
    assert_origin("https://shop.example:8443/x?y=1#z", 0, "https",
                  "shop.example", 8443);
}


Test(url, host_and_scheme_lower_cased)
{
    assert_origin("HTTPS://SHOP.Example/", 0, "https", "shop.example", 443);
}


Test(url, upper_case_with_default_port_equals_plain)
{
    pay_origin_t  a, b;

    cr_assert_eq(pay_origin_parse("https://SHOP.EXAMPLE:443/x", &a, 0), 0);
    cr_assert_eq(pay_origin_parse("https://shop.example", &b, 0), 0);
    cr_assert(pay_origin_equal(&a, &b));
    cr_assert(pay_origin_equal(&a, &shop));
}


Test(url, other_port_differs)
{
    pay_origin_t  a;

    cr_assert_eq(pay_origin_parse("https://shop.example:8443", &a, 0), 0);
    cr_assert_not(pay_origin_equal(&a, &shop));
}


Test(url, http_refused_by_default)
{
    cr_assert_not(ok("http://shop.example/"));
}


Test(url, http_allowed_with_flag_default_port_80)
{
    assert_origin("http://127.0.0.1:8080/x", 1, "http", "127.0.0.1", 8080);
    assert_origin("http://mock.local/", 1, "http", "mock.local", 80);
}


Test(url, http_and_https_origins_differ)
{
    pay_origin_t  a, b;

    cr_assert_eq(pay_origin_parse("http://shop.example:443/", &a, 1), 0);
    cr_assert_eq(pay_origin_parse("https://shop.example/", &b, 1), 0);
    cr_assert_not(pay_origin_equal(&a, &b));
}


Test(url, other_schemes_refused)
{
    cr_assert_not(ok("javascript:alert(1)"));
    cr_assert_not(ok("javascript://shop.example/%0aalert(1)"));
    cr_assert_not(ok("data:text/html,x"));
    cr_assert_not(ok("ftp://shop.example/"));
    cr_assert_not(ok("file:///etc/passwd"));
    cr_assert_not(ok("wss://shop.example/"));
}


Test(url, suffix_host_is_another_host)
{
    cr_assert_not(pay_origin_allowed("https://shop.example.evil", &shop, 1, 0));
    cr_assert_not(pay_origin_allowed("https://evilshop.example", &shop, 1, 0));
    cr_assert_not(pay_origin_allowed("https://x.shop.example", &shop, 1, 0));
}


Test(url, userinfo_refused)
{
    cr_assert_not(ok("https://shop.example@evil"));
    cr_assert_not(ok("https://user:pw@shop.example/"));
    cr_assert_not(ok("https://user@shop.example/"));
    cr_assert_not(ok("https://:@shop.example/"));
}


Test(url, at_sign_after_authority_is_path_or_query)
{
    assert_origin("https://shop.example/a@b", 0, "https", "shop.example",
                  443);
    assert_origin("https://shop.example?@evil", 0, "https", "shop.example",
                  443);
    assert_origin("https://shop.example#@evil", 0, "https", "shop.example",
                  443);
}


Test(url, scheme_relative_refused)
{
    cr_assert_not(ok("//evil"));
    cr_assert_not(ok("//evil/x"));
    cr_assert_not(ok("/x"));
    cr_assert_not(ok("shop.example/x"));
}


Test(url, backslash_refused)
{
    cr_assert_not(ok("https:/\\evil"));
    cr_assert_not(ok("https:\\\\evil"));
    cr_assert_not(ok("https://shop.example\\@evil"));
    cr_assert_not(ok("https://shop.example/\\x"));
}


Test(url, malformed_slashes_refused)
{
    cr_assert_not(ok("https:shop.example"));
    cr_assert_not(ok("https:/shop.example"));
    cr_assert_not(ok("https:///shop.example"));
    cr_assert_not(ok("https://"));
    cr_assert_not(ok("https:///"));
}


Test(url, control_characters_refused)
{
    cr_assert_not(ok("https://shop.example\r\nX: y"));
    cr_assert_not(ok("https://shop.example/\n"));
    cr_assert_not(ok("https://shop.example/\t"));
    cr_assert_not(ok("https://shop.example/\x7f"));
    cr_assert_not(ok("\x01https://shop.example/"));
}


Test(url, spaces_refused)
{
    cr_assert_not(ok(" https://shop.example/"));
    cr_assert_not(ok("https://shop.example/ "));
    cr_assert_not(ok("https://shop .example/"));
}


Test(url, trailing_dot_refused)
{
    cr_assert_not(ok("https://shop.example./"));
    cr_assert_not(ok("https://shop.example."));
    cr_assert_not(ok("https://shop.example.:443/"));
}


Test(url, empty_labels_refused)
{
    cr_assert_not(ok("https://.shop.example/"));
    cr_assert_not(ok("https://shop..example/"));
    cr_assert_not(ok("https://./"));
}


Test(url, empty_host_refused)
{
    cr_assert_not(ok("https://:443/"));
    cr_assert_not(ok("https://?x"));
    cr_assert_not(ok("https://#x"));
}


Test(url, percent_encoded_host_refused)
{
    cr_assert_not(ok("https://shop.example%2eevil.com"));
    cr_assert_not(ok("https://shop%2Eexample/"));
    cr_assert_not(ok("https://%73hop.example/"));
}


Test(url, percent_in_path_allowed)
{
    assert_origin("https://shop.example/a%20b", 0, "https", "shop.example",
                  443);
}


Test(url, non_ascii_host_refused)
{
    cr_assert_not(ok("https://b\xc3\xbc" "cher.example/"));
    cr_assert_not(ok("https://shop.ex\xd0\xb0mple/"));
    cr_assert_not(ok("https://shop.example/\xc3\xa9"));
}


Test(url, punycode_host_allowed)
{
    assert_origin("https://xn--bcher-kva.example/", 0, "https",
                  "xn--bcher-kva.example", 443);
}


Test(url, ip_literals_allowed)
{
    assert_origin("https://127.0.0.1:8443/", 0, "https", "127.0.0.1", 8443);
    assert_origin("https://[::1]:8443/x", 0, "https", "[::1]", 8443);
}


Test(url, ipv6_zone_id_refused)
{
    cr_assert_not(ok("https://[fe80::1%25eth0]/"));
}


Test(url, bad_ports_refused)
{
    cr_assert_not(ok("https://shop.example:0/"));
    cr_assert_not(ok("https://shop.example:65536/"));
    cr_assert_not(ok("https://shop.example:-1/"));
    cr_assert_not(ok("https://shop.example:+443/"));
    cr_assert_not(ok("https://shop.example:443abc/"));
    cr_assert_not(ok("https://shop.example:443:443/"));
}


Test(url, too_long_refused)
{
    char  url[2100];

    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    memcpy(url, "https://shop.example/", 21);

    url[2048] = '\0';
    cr_assert(ok(url));

    url[2048] = 'a';
    url[2049] = '\0';
    cr_assert_not(ok(url));
}


Test(url, null_arguments_refused)
{
    pay_origin_t  o;

    cr_assert_eq(pay_origin_parse(NULL, &o, 0), -1);
    cr_assert_eq(pay_origin_parse("https://shop.example/", NULL, 0), -1);
}


Test(url, equal_is_case_insensitive_on_host)
{
    pay_origin_t  a = { "https", "Shop.Example", 443 };

    cr_assert(pay_origin_equal(&a, &shop));
    cr_assert_not(pay_origin_equal(&a, NULL));
}


Test(url, format_always_writes_port)
{
    char  buf[64];

    cr_assert_eq(pay_origin_format(&shop, buf, sizeof(buf)), 24);
    cr_assert_str_eq(buf, "https://shop.example:443");
}


Test(url, format_buffer_too_small)
{
    char  buf[24];

    cr_assert_eq(pay_origin_format(&shop, buf, sizeof(buf)), -1);
}


Test(url, allowed_matches_any_of_the_list)
{
    pay_origin_t  list[2] = {
        { "https", "other.example", 443 },
        { "https", "shop.example", 8443 },
    };

    cr_assert(pay_origin_allowed("https://shop.example:8443/ok", list, 2, 0));
    cr_assert_not(pay_origin_allowed("https://shop.example/ok", list, 2, 0));
    cr_assert_not(pay_origin_allowed("https://shop.example:8443/", list, 0,
                                     0));
    cr_assert_not(pay_origin_allowed("https://shop.example:8443/", NULL, 2,
                                     0));
}


Test(url, allowed_refuses_unparsable)
{
    cr_assert_not(pay_origin_allowed("https://shop.example./", &shop, 1, 0));
    cr_assert_not(pay_origin_allowed("http://shop.example:443/", &shop, 1,
                                     1));
    cr_assert_not(pay_origin_allowed(NULL, &shop, 1, 0));
}


Test(url, loopback_hosts_are_localhost_127_slash_8_and_ipv6_one)
{
    size_t        i;
    pay_origin_t  o;
    /* libcurl writes IPv4 hosts out in full first: 127.0.0 is 127.0.0.0
     * and 127.00.0.1 is 127.0.0.1, both on this machine */
    const char   *yes[] = { "http://localhost:1", "http://127.0.0.1:9",
                            "http://127.255.0.3/", "http://[::1]:8080",
                            "http://127.0.0", "http://127.00.0.1" };
    const char   *no[] = { "http://128.0.0.1", "http://127.0.0.1.evil",
                           "http://localhost.evil", "http://127.0.0.256",
                           "http://10.0.0.1", "http://127.0.0.1x" };

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        cr_assert_eq(pay_origin_parse(yes[i], &o, 1), 0, "%s", yes[i]);
        cr_expect(pay_origin_is_loopback(&o), "%s", yes[i]);
    }

    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (pay_origin_parse(no[i], &o, 1) == 0) {
            cr_expect_not(pay_origin_is_loopback(&o), "%s", no[i]);
        }
    }
}


/* The configured bases (pay_url_base) ------------------------------------ */


static int
base(const char *url, int allow_http, size_t *len)
{
    pay_origin_t  o;

    return pay_url_base(url, &o, allow_http, len);
}


Test(url_base, trailing_slashes_are_not_part_of_the_base)
{
    size_t  len;

    cr_assert_eq(base("https://gw.example", 0, &len), 0);
    cr_expect_eq(len, strlen("https://gw.example"));

    cr_assert_eq(base("https://gw.example/", 0, &len), 0);
    cr_expect_eq(len, strlen("https://gw.example"));

    cr_assert_eq(base("https://gw.example///", 0, &len), 0);
    cr_expect_eq(len, strlen("https://gw.example"));

    cr_assert_eq(base("https://api.psp.example/v1/", 0, &len), 0);
    cr_expect_eq(len, strlen("https://api.psp.example/v1"));

    cr_assert_eq(base("https://gw.example/", 0, NULL), 0);
}


Test(url_base, the_origin_is_parsed_as_pay_origin_parse_does)
{
    pay_origin_t  o;

    cr_assert_eq(pay_url_base("HTTPS://GW.Example:8443/x/", &o, 0, NULL), 0);
    cr_expect_str_eq(o.scheme, "https");
    cr_expect_str_eq(o.host, "gw.example");
    cr_expect_eq(o.port, 8443);
}


Test(url_base, plain_http_needs_allow_http_and_a_loopback_host)
{
    size_t        i;
    const char   *loopback[] = { "http://127.0.0.1:8080/", "http://localhost",
                                 "http://127.3.2.1", "http://[::1]:9/" };
    const char   *remote[] = { "http://gw.example", "http://10.0.0.1/",
                               "http://127.0.0.1.evil/",
                               "http://localhost.evil" };

    for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        cr_expect_eq(base(loopback[i], 1, NULL), 0, "%s", loopback[i]);
        cr_expect_eq(base(loopback[i], 0, NULL), -1, "%s", loopback[i]);
    }

    for (i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        cr_expect_eq(base(remote[i], 1, NULL), -1, "%s", remote[i]);
        cr_expect_eq(base(remote[i], 0, NULL), -1, "%s", remote[i]);
    }

    /* https is https anywhere, allow_http or not */
    cr_expect_eq(base("https://gw.example", 1, NULL), 0);
}


Test(url_base, what_pay_origin_parse_refuses_is_refused)
{
    cr_expect_eq(base("https://user@gw.example/", 0, NULL), -1);
    cr_expect_eq(base("https://gw.example./", 0, NULL), -1);
    cr_expect_eq(base("gw.example", 0, NULL), -1);
    cr_expect_eq(base("", 1, NULL), -1);
    cr_expect_eq(base(NULL, 1, NULL), -1);
}


/* The request paths (pay_path_parse) ------------------------------------- */


typedef struct {
    const char   *path;
    pay_route_e   route;
    const char   *psp;
    const char   *id;
} path_case_t;


static const path_case_t  paths[] = {
    { "/healthz", PAY_ROUTE_HEALTHZ, NULL, NULL },
    { "/readyz", PAY_ROUTE_READYZ, NULL, NULL },
    { "/metrics", PAY_ROUTE_METRICS, NULL, NULL },
    { "/v1/payments", PAY_ROUTE_PAYMENTS, NULL, NULL },
    { "/v1/payments/ord_1", PAY_ROUTE_PAYMENT, NULL, "ord_1" },
    { "/v1/webhooks/stripe", PAY_ROUTE_WEBHOOK, "stripe", "stripe" },
    { "/v1/checkouts/co_1", PAY_ROUTE_CHECKOUT, NULL, "co_1" },
    { "/v1/checkouts/co_1/pay", PAY_ROUTE_PAY, NULL, "co_1" },
    { "/v1/checkouts/co_1/status", PAY_ROUTE_STATUS, NULL, "co_1" },
    { "/v1/checkouts/pay", PAY_ROUTE_CHECKOUT, NULL, "pay" },
    { "/v1/checkouts/status", PAY_ROUTE_CHECKOUT, NULL, "status" },
    { "/v1/static/style.css", PAY_ROUTE_STATIC, NULL, "style.css" },
    { "/v1/return/adyen/co_1", PAY_ROUTE_RETURN, "adyen", "co_1" },

    /* no route */
    { "", PAY_ROUTE_NONE, NULL, NULL },
    { "/", PAY_ROUTE_NONE, NULL, NULL },
    { "/healthz/", PAY_ROUTE_NONE, NULL, NULL },
    { "/healthzz", PAY_ROUTE_NONE, NULL, NULL },
    { "/HEALTHZ", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/paymentsx", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/payments/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/payments/a/b", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/payments/ord_1/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/webhooks/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/webhooks/a/b", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/checkouts/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/checkouts//pay", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/checkouts//status", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/checkouts/co_1/other", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/checkouts/co_1/pay/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/checkouts/a/b/pay", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/static/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/static/a/b.css", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/return/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/return/adyen", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/return/adyen/", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/return//co_1", PAY_ROUTE_NONE, NULL, NULL },
    { "/v1/return/adyen/co_1/x", PAY_ROUTE_NONE, NULL, NULL },
    { "v1/payments", PAY_ROUTE_NONE, NULL, NULL },
    { "//v1/payments", PAY_ROUTE_NONE, NULL, NULL },
};


static void
assert_segment(const char *path, const char *got, size_t len,
    const char *want, const char *what)
{
    if (want == NULL) {
        cr_expect_null(got, "%s: %s", path, what);
        cr_expect_eq(len, 0, "%s: %s", path, what);
        return;
    }

    cr_assert_not_null(got, "%s: %s", path, what);
    cr_expect_eq(len, strlen(want), "%s: %s", path, what);
    cr_expect_eq(strncmp(got, want, len), 0, "%s: %s", path, what);

    /* a view into the path, not a copy */
    cr_expect(got >= path && got + len <= path + strlen(path), "%s: %s",
              path, what);
}


Test(url_path, each_path_has_its_route_and_segments)
{
    size_t      i;
    pay_path_t  p;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const path_case_t  *c = &paths[i];

        if (c->route == PAY_ROUTE_NONE) {
            cr_expect_eq(pay_path_parse(c->path, strlen(c->path), &p), -1,
                         "%s", c->path);
            cr_expect_null(p.route, "%s", c->path);

        } else {
            cr_assert_eq(pay_path_parse(c->path, strlen(c->path), &p), 0,
                         "%s", c->path);
            cr_assert_not_null(p.route, "%s", c->path);
            cr_expect_eq(p.route->route, c->route, "%s", c->path);
        }

        assert_segment(c->path, p.psp, p.psp_len, c->psp, "psp");
        assert_segment(c->path, p.id, p.id_len, c->id, "id");
    }
}


Test(url_path, the_length_is_the_path_not_the_nul)
{
    pay_path_t  p;

    /* nginx's r->uri is not NUL-terminated: only len bytes count */
    cr_assert_eq(pay_path_parse("/v1/payments/ord_1/more", 18, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_PAYMENT);
    cr_expect_eq(p.id_len, 5);

    cr_expect_eq(pay_path_parse("/healthzXYZ", 8, &p), 0);
    cr_expect_eq(pay_path_parse("/healthz", 7, &p), -1);
    cr_expect_eq(pay_path_parse(NULL, 0, &p), -1);
    cr_expect_eq(pay_path_parse("/healthz", 8, NULL), -1);
}


Test(url_path, a_path_with_a_route_of_each_method_is_the_requests)
{
    size_t      i;
    pay_path_t  p;

    static const struct {
        const char   *path;
        pay_route_e   post, get;
    } both[] = {
        { "/v1/payments", PAY_ROUTE_PAYMENTS, PAY_ROUTE_LIST_PAYMENTS },
        { "/v1/payouts", PAY_ROUTE_PAYOUTS, PAY_ROUTE_LIST_PAYOUTS },
        /* one method only: that route, for the 405 */
        { "/v1/checkouts", PAY_ROUTE_LIST_CHECKOUTS,
          PAY_ROUTE_LIST_CHECKOUTS },
        { "/v1/refunds", PAY_ROUTE_LIST_REFUNDS, PAY_ROUTE_LIST_REFUNDS },
        { "/v1/events", PAY_ROUTE_EVENTS, PAY_ROUTE_EVENTS },
        { "/v1/reviews", PAY_ROUTE_REVIEWS, PAY_ROUTE_REVIEWS },
        { "/v1/reviews/m_1:co_1/approve", PAY_ROUTE_REVIEW_APPROVE,
          PAY_ROUTE_REVIEW_APPROVE },
        { "/v1/reviews/m_1:co_1/reject", PAY_ROUTE_REVIEW_REJECT,
          PAY_ROUTE_REVIEW_REJECT },
        { "/v1/payments/ord_1/refunds", PAY_ROUTE_REFUNDS,
          PAY_ROUTE_REFUNDS },
        { "/v1/payments/ord_1", PAY_ROUTE_PAYMENT, PAY_ROUTE_PAYMENT },
        { "/v1/checkouts/co_1/cancel", PAY_ROUTE_CANCEL, PAY_ROUTE_CANCEL },
    };

    for (i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        cr_assert_eq(pay_path_parse_method(both[i].path,
                                           strlen(both[i].path), 1, &p), 0);
        cr_expect_eq(p.route->route, both[i].post, "POST %s", both[i].path);

        cr_assert_eq(pay_path_parse_method(both[i].path,
                                           strlen(both[i].path), 0, &p), 0);
        cr_expect_eq(p.route->route, both[i].get, "GET %s", both[i].path);
    }

    /* the segments are the matched route's */
    cr_assert_eq(pay_path_parse_method("/v1/payments/ord_1", 18, 1, &p), 0);
    cr_expect_eq(p.id_len, 5);

    cr_expect_eq(pay_path_parse_method("/v1/nothing", 11, 0, &p), -1);
    cr_expect_null(p.route);

    /* without a method: the first, as the table lists them */
    cr_assert_eq(pay_path_parse("/v1/payments", 12, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_PAYMENTS);

    cr_expect_str_eq(pay_route_name(PAY_ROUTE_LIST_PAYMENTS),
                     "list_payments");
    cr_expect_str_eq(pay_route_name(PAY_ROUTE_EVENTS), "list_events");
    cr_expect_str_eq(pay_route_name(PAY_ROUTE_CANCEL), "cancel_checkout");

    /* a review's id is the checkout's nonce, one segment */
    cr_assert_eq(pay_path_parse_method("/v1/reviews/m_1:co_1/approve", 28, 1,
                                       &p), 0);
    cr_expect_eq(p.id_len, 8);
    cr_expect(p.route->post);
    cr_expect_eq(pay_path_parse_method("/v1/reviews/m_1/co_1/approve", 28, 1,
                                       &p), -1);
}


Test(url_path, methods_plain_http_and_pages)
{
    size_t      i;
    pay_path_t  p;
    struct {
        const char  *path;
        unsigned     post, plain, page;
    } c[] = {
        { "/healthz", 0, 1, 0 },
        { "/readyz", 0, 1, 0 },
        { "/metrics", 0, 1, 0 },
        { "/v1/payments", 1, 0, 0 },
        { "/v1/payments/o", 0, 0, 0 },
        { "/v1/webhooks/s", 1, 0, 0 },
        { "/v1/checkouts/c", 0, 0, 0 },
        { "/v1/checkouts/c/pay", 0, 0, 1 },
        { "/v1/checkouts/c/status", 0, 0, 0 },
        { "/v1/static/s.css", 0, 0, 1 },
        { "/v1/return/s/c", 0, 0, 1 },
        { "/v1/payments/o/refunds", 1, 0, 0 },
        { "/v1/payouts", 1, 0, 0 },
        { "/v1/payouts/p", 0, 0, 0 },
        { "/v1/sellers/s/balance", 0, 0, 0 },
    };

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        cr_assert_eq(pay_path_parse(c[i].path, strlen(c[i].path), &p), 0);
        cr_expect_eq(p.route->post, c[i].post, "%s", c[i].path);
        cr_expect_eq(p.route->plain, c[i].plain, "%s", c[i].path);
        cr_expect_eq(p.route->page, c[i].page, "%s", c[i].path);
    }
}


Test(url_path, the_money_routes_name_their_object)
{
    pay_path_t  p;

    cr_assert_eq(pay_path_parse("/v1/payments/po_1/refunds", 25, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_REFUNDS);
    cr_expect_eq(p.id_len, 4);
    cr_expect_eq(memcmp(p.id, "po_1", 4), 0);

    cr_assert_eq(pay_path_parse("/v1/sellers/seller_42/balance", 29, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_BALANCE);
    cr_expect_eq(p.id_len, 9);

    cr_assert_eq(pay_path_parse("/v1/payouts/pyo_1", 17, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_PAYOUT);

    /* the endpoints' list is GET; POST on its path creates one */
    cr_assert_eq(pay_path_parse_method("/v1/webhook_endpoints", 21, 0, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_ENDPOINTS);
    cr_expect_eq(p.route->post, 0);
    cr_assert_eq(pay_path_parse_method("/v1/webhook_endpoints", 21, 1, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_ENDPOINT_CREATE);
    cr_expect_eq(p.route->post, 1);

    cr_assert_eq(pay_path_parse("/v1/webhook_endpoints/ep_1/rotate_secret",
                                40, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_ENDPOINT_ROTATE);
    cr_expect_eq(p.route->post, 1);
    cr_expect_eq(p.id_len, 4);

    /* no empty object, no deeper path */
    cr_expect_eq(pay_path_parse("/v1/payments//refunds", 21, &p), -1);
    cr_expect_eq(pay_path_parse("/v1/payments/a/b/refunds", 24, &p), -1);
    cr_expect_eq(pay_path_parse("/v1/sellers/s/balance/x", 23, &p), -1);
}


Test(url_path, every_route_has_one_name_and_unknown_ones_are_other)
{
    unsigned  i, j;

    cr_expect_str_eq(pay_route_name(PAY_ROUTE_NONE), "other");
    cr_expect_str_eq(pay_route_name(PAY_ROUTE__MAX), "other");
    cr_expect_str_eq(pay_route_name(1000), "other");
    cr_expect_str_eq(pay_route_name(PAY_ROUTE_PAYMENTS), "create_payment");
    cr_expect_str_eq(pay_route_name(PAY_ROUTE_WEBHOOK), "webhook");

    for (i = 1; i < PAY_ROUTE__MAX; i++) {
        cr_expect_str_neq(pay_route_name(i), "other", "route %u", i);

        for (j = 1; j < i; j++) {
            cr_expect_str_neq(pay_route_name(i), pay_route_name(j),
                              "routes %u and %u", i, j);
        }
    }
}


Test(url, a_database_host_libpq_would_resolve_by_name_is_found_in_its_list)
{
    /* none: numeric addresses, socket directories, the default socket */
    cr_assert_eq(pay_conninfo_lookup_entry(NULL, "127.0.0.1"), 0);
    cr_assert_eq(pay_conninfo_lookup_entry("/run/postgresql", NULL), 0);
    cr_assert_eq(pay_conninfo_lookup_entry("@abstract", NULL), 0);
    cr_assert_eq(pay_conninfo_lookup_entry("", NULL), 0);
    cr_assert_eq(pay_conninfo_lookup_entry(NULL, NULL), 0);
    cr_assert_eq(pay_conninfo_lookup_entry("db1,db2", "10.0.0.1,10.0.0.2"), 0);
    cr_assert_eq(pay_conninfo_lookup_entry("/run/pg,", "10.0.0.1,10.0.0.2"), 0);
    cr_assert_eq(pay_conninfo_lookup_entry(NULL, "10.0.0.1,::1"), 0);

    /* a name, alone or after entries that need none */
    cr_assert_eq(pay_conninfo_lookup_entry("db.example", NULL), 1);
    cr_assert_eq(pay_conninfo_lookup_entry("127.0.0.1", NULL), 1);
    cr_assert_eq(pay_conninfo_lookup_entry("/run/pg,db.example", NULL), 2);
    cr_assert_eq(pay_conninfo_lookup_entry("db1,db2", "10.0.0.1,"), 2);
    cr_assert_eq(pay_conninfo_lookup_entry("/a,/b,,db", NULL), 4);
    cr_assert_eq(pay_conninfo_lookup_entry("db1,db2,db3", "10.0.0.1"), 2);
}


Test(url, the_servers_of_a_database_string_are_its_longer_list)
{
    cr_assert_eq(pay_conninfo_servers(NULL, NULL), 1);
    cr_assert_eq(pay_conninfo_servers("", NULL), 1);
    cr_assert_eq(pay_conninfo_servers("/run/postgresql", NULL), 1);
    cr_assert_eq(pay_conninfo_servers(NULL, "10.0.0.1"), 1);
    cr_assert_eq(pay_conninfo_servers("db1", "10.0.0.1"), 1);
    cr_assert_eq(pay_conninfo_servers(NULL, "10.0.0.1,10.0.0.2"), 2);
    cr_assert_eq(pay_conninfo_servers("db1,db2", "10.0.0.1,10.0.0.2"), 2);
    cr_assert_eq(pay_conninfo_servers("/run/pg,", NULL), 2);
    cr_assert_eq(pay_conninfo_servers("db1,db2,db3", "10.0.0.1"), 3);
    cr_assert_eq(pay_conninfo_servers(NULL, ",,"), 3);
}


/* --- request lines for the logs ------------------------------------------- */

static char *
redact(const char *line)
{
    static char  out[4096];
    size_t       n;

    n = pay_redact_request_line(line, strlen(line), out);
    if (n == 0) {
        return NULL;
    }

    cr_assert_lt(n, PAY_REDACT_SIZE(strlen(line)));
    out[n] = '\0';
    return out;
}


Test(redact, every_bearer_value_of_the_query_is_cut_out_whatever_the_protocol,
     .description = "HTTP/2's request line is nginx's own copy: the adapter "
                    "read the query through r->args, which points elsewhere "
                    "there, and redacted nothing")
{
    cr_expect_str_eq(redact("GET /v1/checkouts/co_1/pay?t=eyJ.a.b HTTP/1.1"),
                     "GET /v1/checkouts/co_1/pay?t=redacted HTTP/1.1");
    cr_expect_str_eq(redact("GET /v1/checkouts/co_1/pay?t=eyJ.a.b HTTP/2.0"),
                     "GET /v1/checkouts/co_1/pay?t=redacted HTTP/2.0");
    cr_expect_str_eq(redact("GET /v1/return/a/co_1?x=1&T=eyJ.c&sessionId=CS1D2E"
                            "&sessionResult=Ab1 HTTP/1.1"),
                     "GET /v1/return/a/co_1?x=1&T=redacted&sessionId=redacted"
                     "&sessionResult=redacted HTTP/1.1");
    /* HTTP/0.9: no protocol; an empty value grows */
    cr_expect_str_eq(redact("GET /p?t="), "GET /p?t=redacted");
    cr_expect_str_eq(redact("GET /p?a=t=1&t&tt=2&t=3 HTTP/1.1"),
                     "GET /p?a=t=1&t&tt=2&t=redacted HTTP/1.1");
}


Test(redact, a_percent_encoded_name_is_read_as_a_decoding_server_reads_it)
{
    cr_expect_str_eq(redact("GET /v1/checkouts/co_1/pay?%74=eyJ.a.b HTTP/1.1"),
                     "GET /v1/checkouts/co_1/pay?%74=redacted HTTP/1.1");
    cr_expect_str_eq(redact("GET /p?x=1&%54=eyJ&session%49d=CS1 HTTP/1.1"),
                     "GET /p?x=1&%54=redacted&session%49d=redacted HTTP/1.1");
    cr_expect_str_eq(redact("GET /p?%73%65%73%73%69%6f%6e%52%65%73%75%6c%74=A"
                            " HTTP/1.1"),
                     "GET /p?%73%65%73%73%69%6f%6e%52%65%73%75%6c%74=redacted"
                     " HTTP/1.1");
    /* not a name of them, decoded or not */
    cr_expect_null(redact("GET /p?%7=1&%74t=2&%zz=3&%=4 HTTP/1.1"));
}


Test(redact, nothing_to_cut_is_said_so)
{
    cr_expect_null(redact("GET /v1/payments HTTP/1.1"));
    cr_expect_null(redact("GET /p?x=1&session=2 HTTP/1.1"));
    cr_expect_null(redact("GET /p?t=redacted&sessionId=redacted HTTP/2.0"),
                   "already cut: nothing to do again");
}


Test(url, the_checkout_id_placeholder_is_substituted_and_the_rest_kept)
{
    char  buf[128];

    cr_expect_eq(pay_url_checkout_id("https://shop.example/t?o={CHECKOUT_ID}"
                                     "&q=a%20b#x", "co_1", buf, sizeof(buf)),
                 (int) strlen("https://shop.example/t?o=co_1&q=a%20b#x"));
    cr_expect_str_eq(buf, "https://shop.example/t?o=co_1&q=a%20b#x");

    pay_url_checkout_id("https://shop.example/%7BCHECKOUT_ID%7D/%7bCHECKOUT_ID"
                        "%7d", "co-2", buf, sizeof(buf));
    cr_expect_str_eq(buf, "https://shop.example/co-2/co-2");

    /* not the placeholder: kept as it is */
    pay_url_checkout_id("https://shop.example/{checkout_id}/{CHECKOUT_ID"
                        "/%7BCHECKOUT_ID", "co_3", buf, sizeof(buf));
    cr_expect_str_eq(buf, "https://shop.example/{checkout_id}/{CHECKOUT_ID"
                          "/%7BCHECKOUT_ID");

    /* too long for buf: -1, never a cut URL */
    cr_expect_eq(pay_url_checkout_id("https://shop.example/{CHECKOUT_ID}",
                                     "co_4", buf, 22), -1);
    cr_expect_eq(pay_url_checkout_id("https://shop.example/x", "co_4", buf,
                                     22), -1);
    cr_expect_eq(pay_url_checkout_id("https://shop.example/x", "co_4", buf,
                                     23), 22);
}


/* A saved method's path: GET reads it, DELETE detaches it (as POST
 * .../detach does); POST has no route there, so its first route (GET)
 * is what a 405 answers for. */
Test(url, payment_method_paths_by_method)
{
    pay_path_t  p;

    cr_assert_eq(pay_path_parse_method("/v1/payment_methods/pm_a", 24,
                                       PAY_PATH_GET, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_METHOD);
    cr_expect_eq(pay_route_method(p.route), PAY_PATH_GET);

    cr_assert_eq(pay_path_parse_method("/v1/payment_methods/pm_a", 24,
                                       PAY_PATH_DELETE, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_METHOD_DETACH);
    cr_expect_eq(pay_route_method(p.route), PAY_PATH_DELETE);
    cr_expect_eq(p.id_len, 4);

    cr_assert_eq(pay_path_parse_method("/v1/payment_methods/pm_a", 24,
                                       PAY_PATH_POST, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_METHOD);

    cr_assert_eq(pay_path_parse_method("/v1/payment_methods/pm_a/detach", 31,
                                       PAY_PATH_POST, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_METHOD_DETACH);
    cr_expect_eq(pay_route_method(p.route), PAY_PATH_POST);

    /* whatever the method, the path's first route: GET's */
    cr_assert_eq(pay_path_parse("/v1/payment_methods/pm_a", 24, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_METHOD);

    /* DELETE has no route elsewhere: the path's own route, for a 405 */
    cr_assert_eq(pay_path_parse_method("/v1/payments/po_1", 17,
                                       PAY_PATH_DELETE, &p), 0);
    cr_expect_eq(p.route->route, PAY_ROUTE_PAYMENT);
    cr_expect_str_eq(pay_route_name(PAY_ROUTE_METHOD_DETACH),
                     "detach_payment_method");
}
