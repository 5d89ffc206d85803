/*
 * Operations and cross-cutting rules: /healthz, /readyz, X-Request-Id,
 * TLS required, unknown methods.
 */

#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(ops, .timeout = E2E_TIMEOUT);
TestSuite(request_id, .timeout = E2E_TIMEOUT);
TestSuite(tls, .timeout = E2E_TIMEOUT);
TestSuite(merchant_tool, .timeout = E2E_TIMEOUT);


Test(ops, healthz_answers_200)
{
    resp_t  *r = gw_get("/healthz");

    cr_assert_eq(r->status, 200, "%ld (%s) %s", r->status, r->error, r->body);
    expect_request_id(r);
}


Test(ops, readyz_answers_200_with_postgres_up)
{
    resp_t  *r = gw_get("/readyz");

    cr_assert_eq(r->status, 200, "%ld (%s) %s", r->status, r->error, r->body);
    expect_request_id(r);
}


Test(ops, an_unknown_path_is_404_not_found)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_get(&m, "/v1/nothing-here");
    expect_problem(r, 404, "not_found");
}


Test(ops, an_unsupported_method_is_405)
{
    char        *auth;
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    auth = str_printf("Authorization: Bearer %s", m.key);

    {
        const char  *h[] = { auth, NULL };
        req_t        rq = { "DELETE", gw_url(PATH_PAYMENTS), h, NULL, 0 };

        r = http(&rq);
    }

    expect_problem(r, 405, "method_not_allowed");
}


Test(request_id, echoes_a_sane_client_request_id)
{
    char    *id, *line;
    resp_t  *r;

    id = uid("req");
    line = str_printf("X-Request-Id: %s", id);

    {
        const char  *h[] = { line, NULL };
        req_t        rq = { "GET", gw_url("/healthz"), h, NULL, 0 };

        r = http(&rq);
    }

    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(resp_header(r, "X-Request-Id") ? resp_header(r, "X-Request-Id") : "",
                     id);
}


Test(request_id, replaces_an_insane_client_request_id)
{
    resp_t      *r;
    const char  *line = "X-Request-Id: <script>alert(1)</script>";

    {
        const char  *h[] = { line, NULL };
        req_t        rq = { "GET", gw_url("/healthz"), h, NULL, 0 };

        r = http(&rq);
    }

    expect_request_id(r);
    cr_assert(strstr(resp_header(r, "X-Request-Id"), "<") == NULL,
              "echoed an unsafe id: %s", resp_header(r, "X-Request-Id"));
}


Test(request_id, gives_each_request_its_own_id)
{
    resp_t  *a, *b;

    a = gw_get("/healthz");
    b = gw_get("/healthz");
    expect_request_id(a);
    expect_request_id(b);
    cr_assert_str_neq(resp_header(a, "X-Request-Id"), resp_header(b, "X-Request-Id"));
}


Test(request_id, is_on_an_error_answer)
{
    resp_t  *r;

    r = api_post(NULL, NULL, "{}");
    cr_assert_eq(r->status, 401);
    expect_request_id(r);
}


Test(tls, the_merchant_api_over_plain_http_is_403_tls_required)
{
    req_t        rq;
    resp_t      *r;
    char        *auth, *idem;
    merchant_t   m;

    merchant_demo(&m);
    auth = str_printf("Authorization: Bearer %s", m.key);
    idem = str_printf("Idempotency-Key: %s", uid("key"));

    {
        const char  *h[] = { "Content-Type: application/json", auth, idem, NULL };

        rq.method = "POST";
        rq.url = gw_plain_url(PATH_PAYMENTS);
        rq.headers = h;
        rq.body = body_for(uid("co"));
        rq.len = (size_t) -1;
        r = http(&rq);
    }

    expect_problem(r, 403, "tls_required");
}


Test(tls, a_browser_page_over_plain_http_redirects_to_https)
{
    resp_t      *r;
    const char  *loc;

    r = http_get(gw_plain_url(str_printf("/v1/checkouts/%s/pay?t=x", uid("co"))));
    cr_assert_eq(r->status, 301, "%ld %s", r->status, r->body);
    loc = resp_header(r, "Location");
    cr_assert(loc != NULL && strncmp(loc, "https://", 8) == 0, "Location %s", loc);
    expect_request_id(r);
}


/* Without payments-secrets the endpoint commands say so, once, and what to
 * do; nothing is run in its place and nothing is stored. */
Test(merchant_tool, add_endpoint_without_payments_secrets_says_what_is_missing)
{
    int          rc;
    char        *out;
    merchant_t   m;
    const char  *args[] = { "add-endpoint", NULL, NULL, "--url",
                            "https://hooks.example.com/payments",
                            "--id", NULL, NULL };

    merchant_new(&m);
    setenv("PAYMENTS_SECRETS", "/nonexistent/payments-secrets", 1);
    args[1] = "--id";
    args[2] = m.id;
    args[5] = NULL;

    rc = merchant_toolv(args, &out);

    cr_assert_neq(rc, 0, "add-endpoint succeeded without payments-secrets: %s",
                  out);
    cr_assert(strstr(out, "payments-secrets") != NULL, "%s", out);
    cr_assert(strstr(out, "command not found") == NULL, "%s", out);
    cr_assert(strstr(out, "make secrets") != NULL
              || strstr(out, "PAYMENTS_SECRETS") != NULL, "%s", out);
    {
        const char  *p[] = { m.id };

        cr_assert_str_eq(db_scalar("SELECT count(*) FROM notify_endpoints "
                                   "WHERE merchant_id = $1", 1, p), "0");
    }
}


/* show says when each key last authenticated a request: an operator sees a
 * shop's move to its new key before revoking the old one. */
Test(merchant_tool, show_says_when_each_key_was_last_used)
{
    int          rc;
    char        *out;
    resp_t      *r;
    merchant_t   m;
    const char  *args[] = { "show", "--id", NULL, NULL };

    merchant_new(&m);
    args[2] = m.id;

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "never used") != NULL, "%s", out);

    r = api_get(&m, "/v1/checkouts/co_none");
    cr_assert_eq(r->status, 404, "%ld %s", r->status, r->body);

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "last used ") != NULL, "%s", out);
    cr_assert(strstr(out, "never used") == NULL, "%s", out);
}


/* A gateway at `error_log ... debug`: nginx's debug build names each timer's
 * connection as it sets it, so a timer of the module's must carry one. */

static gateway_t  debug_gw;


static void
stop_debug_gw(void)
{
    gateway_stop(&debug_gw);
}


TestSuite(debug_log, .timeout = E2E_TIMEOUT, .fini = stop_debug_gw);


Test(debug_log, every_worker_serves_and_the_module_logs_the_route)
{
    resp_t  *r;

    cr_assert_eq(setenv("PAY_TEST_ERROR_LOG_LEVEL", "debug", 1), 0);

    gateway_start(&debug_gw, "debug", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&debug_gw, 10);

    r = gateway_get(&debug_gw, "/healthz");
    cr_assert_eq(r->status, 200, "%ld (%s) %s", r->status, r->error, r->body);

    cr_assert(!file_contains(debug_gw.error_log, "exited on signal"),
              "a worker crashed at debug level (see %s)", debug_gw.error_log);
    cr_assert(file_contains(debug_gw.error_log, "payments: route readyz"),
              "no debug line of the module's in %s", debug_gw.error_log);
}
