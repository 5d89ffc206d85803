/*
 * GET /v1/checkouts/{checkout_id}/pay?t=... : the browser's way to the PSP's
 * hosted page (API.md "Browser-facing").
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "harness.h"

TestSuite(pay_link, .timeout = E2E_TIMEOUT);


typedef struct {
    merchant_t   m;
    char        *co_id;
    char        *pay_url;       /* as answered, on the public origin */
    char        *token;         /* its t */
} paid_t;


static void
register_checkout(paid_t *p, const merchant_t *m)
{
    resp_t      *r;
    const char  *u;

    if (m != NULL) {
        p->m = *m;
    } else {
        merchant_new(&p->m);
    }

    p->co_id = uid("co");
    r = register_ok(&p->m, uid("key"), body_for(p->co_id));

    u = json_string_value(json_object_get(resp_json(r), "pay_url"));
    cr_assert_not_null(u, "no pay_url: %s", r->body);
    p->pay_url = strdup(u);
    p->token = url_param(u, "t");
    cr_assert_not_null(p->token, "pay_url without t: %s", u);

    resp_free(r);
}


/* GET /v1/checkouts/{co_id}/pay with this t (NULL: none). */
static resp_t *
get_pay(const char *co_id, const char *t)
{
    if (t == NULL) {
        return gw_get(str_printf("/v1/checkouts/%s/pay", co_id));
    }

    return gw_get(str_printf("/v1/checkouts/%s/pay?t=%s", co_id, t));
}


static void
expect_hosted_redirect(const resp_t *r)
{
    char        *prefix;
    const char  *loc;

    cr_assert_eq(r->status, 303, "expected 303, got %ld: %s", r->status, r->body);
    loc = resp_header(r, "Location");
    prefix = mock_url("/pay/");
    cr_assert(loc != NULL && strncmp(loc, prefix, strlen(prefix)) == 0,
              "Location %s is not the mock's hosted page", loc);
    expect_request_id(r);
}


Test(pay_link, redirects_303_to_the_hosted_page)
{
    paid_t  p;

    register_checkout(&p, NULL);
    expect_hosted_redirect(http_get(gw_url_for(p.pay_url)));
}


Test(pay_link, the_replayed_201s_pay_url_still_works)
{
    char        *key, *co_id, *body;
    resp_t      *a, *b;
    merchant_t   m;
    const char  *u;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    a = register_ok(&m, key, body);
    b = api_post(&m, key, body);
    cr_assert_eq(b->status, 201);

    u = json_string_value(json_object_get(resp_json(b), "pay_url"));
    cr_assert_str_eq(u, json_string_value(json_object_get(resp_json(a),
                                                          "pay_url")));
    expect_hosted_redirect(http_get(gw_url_for(u)));
}


Test(pay_link, refuses_a_missing_token_403)
{
    paid_t  p;

    register_checkout(&p, NULL);
    expect_forbidden_page(get_pay(p.co_id, NULL));
}


Test(pay_link, refuses_a_malformed_token_403)
{
    paid_t  p;

    register_checkout(&p, NULL);
    expect_forbidden_page(get_pay(p.co_id, "not.a-token"));
}


Test(pay_link, refuses_a_token_with_changed_claims_403)
{
    char    *forged;
    json_t  *claims;
    paid_t   p;
    char    *sig;

    register_checkout(&p, NULL);

    /* later expiry, the original signature */
    claims = jwt_claims(p.token);
    json_object_set_new(claims, "exp",
                        json_integer(json_integer_value(json_object_get(claims, "exp"))
                                     + 86400));
    forged = jwt_resign(p.token, claims, (const unsigned char *) "x", 1);
    sig = strrchr(p.token, '.');
    forged = str_printf("%.*s%s", (int) (strrchr(forged, '.') - forged), forged,
                        sig);

    expect_forbidden_page(get_pay(p.co_id, forged));
}


Test(pay_link, refuses_a_token_signed_with_another_key_403)
{
    char    *forged;
    json_t  *claims;
    paid_t   p;

    register_checkout(&p, NULL);

    claims = jwt_claims(p.token);
    forged = jwt_resign(p.token, claims,
                        (const unsigned char *) "0123456789abcdef0123456789abcdef",
                        32);

    expect_forbidden_page(get_pay(p.co_id, forged));
}


Test(pay_link, refuses_an_unsigned_alg_none_token_403)
{
    char    *header, *payload, *cj, *forged;
    json_t  *claims;
    paid_t   p;

    register_checkout(&p, NULL);

    header = b64url_encode((const unsigned char *) "{\"alg\":\"none\",\"typ\":\"JWT\"}",
                           strlen("{\"alg\":\"none\",\"typ\":\"JWT\"}"));
    claims = jwt_claims(p.token);
    cj = dump(claims);
    payload = b64url_encode((const unsigned char *) cj, strlen(cj));
    forged = str_printf("%s.%s.", header, payload);

    expect_forbidden_page(get_pay(p.co_id, forged));
}


Test(pay_link, refuses_an_expired_token_403)
{
    char           *expired;
    size_t          keylen;
    json_t         *claims;
    paid_t          p;
    unsigned char  *key;

    register_checkout(&p, NULL);
    key = paytoken_key(&keylen);

    /* control: the test signs exactly as the gateway does */
    cr_assert(jwt_signature_matches(p.token, key, keylen),
              "the test cannot reproduce the gateway's signature: is "
              "PAY_TEST_PAYTOKEN_KEY the configured key?");

    claims = jwt_claims(p.token);
    cr_assert(json_is_integer(json_object_get(claims, "exp")),
              "the pay token has no exp claim");
    json_object_set_new(claims, "exp", json_integer((json_int_t) time(NULL) - 60));
    expired = jwt_resign(p.token, claims, key, keylen);

    expect_forbidden_page(get_pay(p.co_id, expired));
}


Test(pay_link, accepts_a_token_the_test_resigned_unchanged)
{
    /* the control of refuses_an_expired_token_403, end to end */
    char           *same;
    size_t          keylen;
    paid_t          p;
    unsigned char  *key;

    register_checkout(&p, NULL);
    key = paytoken_key(&keylen);

    same = jwt_resign(p.token, jwt_claims(p.token), key, keylen);
    expect_hosted_redirect(get_pay(p.co_id, same));
}


Test(pay_link, refuses_another_checkouts_token_403)
{
    paid_t  a, b;

    register_checkout(&a, NULL);
    register_checkout(&b, &a.m);

    expect_forbidden_page(get_pay(b.co_id, a.token));
}


Test(pay_link, a_token_leads_to_its_own_merchants_session)
{
    char        *key, *body;
    resp_t      *ra, *rb;
    merchant_t   ma, mb;
    char        *ta;

    /* the same checkout id at two merchants: the token binds the merchant */
    merchant_new(&ma);
    merchant_new(&mb);
    key = uid("key");
    body = body_for(uid("co"));
    ra = register_ok(&ma, key, body);
    rb = register_ok(&mb, key, body);

    ta = url_param(json_string_value(json_object_get(resp_json(ra), "pay_url")), "t");
    cr_assert_str_neq(ta, url_param(json_string_value(json_object_get(resp_json(rb),
                                                                      "pay_url")), "t"));
    /* both links share the path; only the token tells the merchant apart,
     * and it still redirects to its own merchant's session */
    {
        resp_t      *r = get_pay(json_string_value(json_object_get(resp_json(ra),
                                                                   "checkout_id")), ta);
        const char  *loc;

        expect_hosted_redirect(r);
        loc = resp_header(r, "Location");
        cr_assert(strstr(loc, json_string_value(json_object_get(resp_json(ra),
                                                                "psp_token")))
                  != NULL, "A's link went to %s", loc);
    }
}


Test(pay_link, answers_502_for_a_hosted_url_off_the_allow_list)
{
    char        *co_id;
    resp_t      *r;
    merchant_t   m;
    const char  *u;

    merchant_new(&m);
    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"hosted_url\":"
                          "\"https://evil.example/x\"}", nonce(&m, co_id)));

    r = register_ok(&m, uid("key"), body_for(co_id));
    u = json_string_value(json_object_get(resp_json(r), "pay_url"));
    cr_assert_not_null(u);

    r = http_get(gw_url_for(u));
    cr_assert_eq(r->status, 502, "expected 502, got %ld: %s", r->status, r->body);
    cr_assert_null(resp_header(r, "Location"), "Location: %s",
                   resp_header(r, "Location"));
    expect_request_id(r);
}


Test(pay_link, error_pages_carry_the_browser_security_headers)
{
    resp_t      *r;
    paid_t       p;
    const char  *v;

    register_checkout(&p, NULL);
    r = get_pay(p.co_id, NULL);
    expect_forbidden_page(r);

    v = resp_header(r, "Content-Type");
    cr_assert(v != NULL && strncmp(v, "text/html", 9) == 0, "Content-Type %s", v);
    v = resp_header(r, "Cache-Control");
    cr_assert(v != NULL && strstr(v, "no-store") != NULL, "Cache-Control %s", v);
    v = resp_header(r, "Referrer-Policy");
    cr_assert(v != NULL && strcmp(v, "no-referrer") == 0, "Referrer-Policy %s", v);
    v = resp_header(r, "X-Frame-Options");
    cr_assert(v != NULL && strcasecmp(v, "DENY") == 0, "X-Frame-Options %s", v);
    v = resp_header(r, "Content-Security-Policy");
    cr_assert(v != NULL && strstr(v, "unsafe-inline") == NULL,
              "Content-Security-Policy %s", v);
}


/* ngx_http_arg() finds "T=" as well as "t=": the pay handler takes it as
 * the token, so the request line in the logs must not carry it either
 * (ci/log-scan.sh looks for every token after the run too). */

Test(pay_link, an_upper_case_T_token_is_cut_out_of_the_access_log)
{
    paid_t   p;
    resp_t  *r;
    char    *logged;

    register_checkout(&p, NULL);
    secret_used(p.token);

    r = gw_get(str_printf("/v1/checkouts/%s/pay?x=1&T=%s", p.co_id,
                          p.token));
    expect_hosted_redirect(r);

    logged = str_printf("/v1/checkouts/%s/pay?x=1&T=redacted ", p.co_id);
    msleep(300);
    cr_assert(file_contains(run_file("logs/access.log"), logged),
              "access.log has no \"%s\"", logged);
    cr_assert(!file_contains(run_file("logs/access.log"), p.token),
              "the token is in access.log");
}


/* A name percent-encoded ("%74" is "t") is a token to whatever decodes
 * the query on its way (a proxy, a log reader): cut out as well. */

Test(pay_link, a_percent_encoded_token_name_is_cut_out_of_the_access_log)
{
    paid_t   p;
    resp_t  *r;
    char    *logged;

    register_checkout(&p, NULL);
    secret_used(p.token);

    r = gw_get(str_printf("/v1/checkouts/%s/pay?%%74=%s", p.co_id, p.token));
    resp_free(r);

    logged = str_printf("/v1/checkouts/%s/pay?%%74=redacted ", p.co_id);
    msleep(300);
    cr_assert(file_contains(run_file("logs/access.log"), logged),
              "access.log has no \"%s\"", logged);
    cr_assert(!file_contains(run_file("logs/access.log"), p.token),
              "the token is in access.log");
}


/* Over HTTP/2 nginx builds the request line apart from r->args, which the
 * redaction used to read the query through: nothing was cut out.  And a
 * request limit_req refuses before the content handler was logged with its
 * token.  A gateway of the test's own: HTTP/2 on its own port, limit_req
 * on the return route, its access log to read. */

Test(pay_link, tokens_are_cut_from_the_logs_over_http2_and_when_limit_req_refuses,
     .timeout = 60)
{
    long        port;
    char        cmd[2048], *log, *access, *tok, *sid, *path;
    gateway_t   gw;
    int         i, rc;

    port = free_port();
    gateway_start(&gw, "redact", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "%s"
        "limit_req_zone $binary_remote_addr zone=redact_rl:1m rate=1r/m;\n"
        "server {\n"
        "  listen 127.0.0.1:%ld ssl http2;\n"
        "  ssl_certificate %s/conf/tls.crt;\n"
        "  ssl_certificate_key %s/conf/tls.key;\n"
        GATEWAY_SERVER_CONF
        "  location /v1/return/ { limit_req zone=redact_rl nodelay; payments; }\n"
        "  location / { payments; }\n"
        "}\n",
        pg_gateway_conninfo(), gw_psp_conf("redact_psp", "stripe"), port,
        env("PAY_TEST_RUN"), env("PAY_TEST_RUN")));
    gateway_wait_ready(&gw, 10);

    tok = str_printf("eyJredact%s.aa.bb", uid("t"));
    sid = str_printf("CSREDACT%s", uid("s"));
    secret_used(tok);
    secret_used(sid);

    /* a pay link and, twice, a way back (the second refused by
     * limit_req), all over HTTP/2 */
    for (i = 0; i < 3; i++) {
        path = i == 0 ? str_printf("/v1/checkouts/co_x/pay?t=%s", tok)
                      : str_printf("/v1/return/redact_psp/co_x?t=%s"
                                   "&sessionId=%s&sessionResult=Ab1", tok, sid);
        snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_version}'"
                 " --http2 --cacert '%s' 'https://127.0.0.1:%ld%s'"
                 " | grep -qx 2", env("PAY_TEST_CA"), port, path);
        rc = system(cmd);
        cr_assert_eq(rc, 0, "not answered over HTTP/2: %s", cmd);
    }

    msleep(300);
    access = run_file("logs/redact-access.log");
    log = file_read(access, NULL);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "/pay?t=redacted HTTP/2.0") != NULL, "%s", log);
    cr_expect(strstr(log, "?t=redacted&sessionId=redacted&sessionResult="
                          "redacted HTTP/2.0\" 503") != NULL, "%s", log);
    cr_expect(!file_contains(access, tok), "a token in the access log");
    cr_expect(!file_contains(access, sid), "Adyen's session in the log");
    cr_expect(file_contains(gw.error_log, "limiting requests"));
    cr_expect(!file_contains(gw.error_log, tok), "a token in the error log");

    gateway_stop(&gw);
}
