/*
 * Operations and cross-cutting rules: /healthz, /readyz, X-Request-Id,
 * TLS required, unknown methods.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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


/* merchant_new writes a merchant's rows itself, not through the tool (a
 * process tree a call, hundreds of times a run): they must be the rows
 * the tool's create writes, or the suite would test another merchant
 * than an operator's. */
Test(merchant_tool, the_harness_makes_a_merchant_as_the_tool_does)
{
    size_t       i;
    char        *row[2], *where[2];
    long         rows[2];
    merchant_t   m[2];
    const char  *p[1];

    merchant_new_by_tool(&m[0]);
    merchant_new(&m[1]);

    for (i = 0; i < 2; i++) {
        p[0] = m[i].id;
        row[i] = db_scalar_on(db_of(&m[i]),
            "SELECT jsonb_build_object("
            "  'merchant', to_jsonb(m) - 'merchant_id' - 'name'"
            "              - 'created_at' - 'placed_at',"
            "  'named_by_its_id', m.name = m.merchant_id,"
            "  'keys', (SELECT jsonb_agg(to_jsonb(k) - 'key_id' - 'key_hash'"
            "                            - 'merchant_id' - 'created_at')"
            "             FROM api_keys k"
            "            WHERE k.merchant_id = m.merchant_id),"
            "  'origins', (SELECT jsonb_agg(o.origin) FROM"
            "              merchant_return_origins o"
            "              WHERE o.merchant_id = m.merchant_id))::text"
            "  FROM merchants m WHERE m.merchant_id = $1", 1, p);
        cr_assert_not_null(row[i], "no merchant %s", m[i].id);
        rows[i] = db_merchant_rows(db_of(&m[i]), m[i].id, &where[i]);

        /* mk_test_<12>_<43>, and the gateway takes it */
        cr_assert_eq(strlen(m[i].key), 8 + 12 + 1 + 43, "%s", m[i].key_id);
        cr_assert(strncmp(m[i].key, "mk_test_", 8) == 0);
        cr_assert_eq(api_get(&m[i], "/v1/checkouts/co_none")->status, 404,
                     "the key of %s does not authenticate", m[i].id);
    }

    cr_assert_str_eq(row[1], row[0], "the harness's merchant %s is %s; the"
                     " tool's %s is %s", m[1].id, row[1], m[0].id, row[0]);
    cr_assert_eq(rows[1], rows[0], "the harness's merchant has rows in %s,"
                 " the tool's in %s", where[1], where[0]);
    cr_assert_str_eq(where[1], where[0]);
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


/* A shell command's standard output and error, and its exit status. */
static char *
shell(const char *cmd, int *rc)
{
    int      st;
    char     buf[8192];
    size_t   n;
    FILE    *p;

    p = popen(str_printf("%s 2>&1", cmd), "r");
    cr_assert_not_null(p, "%s", cmd);
    n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;

    return strdup(buf);
}


/* --key-file - reads the key file on standard input, in payments-secrets
 * and in payments-merchant's endpoint commands: whoever may read the file
 * pipes it to a tool run by whoever may reach the database. */
Test(merchant_tool, key_file_dash_reads_standard_input)
{
    int          rc;
    char        *out, *secrets, *tool, *keys, *ep;
    merchant_t   m;

    secrets = build_file("payments-secrets");
    tool = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    keys = (char *) env("PAY_TEST_ENCRYPTION_KEY");

    out = shell(str_printf("'%s' new-secret --key-file - --ad ep_x < '%s'",
                           secrets, keys), &rc);
    cr_expect_eq(rc, 0, "new-secret --key-file -: %s", out);
    cr_expect(strncmp(out, "whsec_", 6) == 0 && strstr(out, "\nv1.") != NULL,
              "new-secret --key-file - printed no secret");

    /* seal's standard input is the plaintext: refused, and said why */
    out = shell(str_printf("echo x | '%s' seal --key-file - --ad ep_x",
                           secrets), &rc);
    cr_expect_neq(rc, 0, "%s", out);
    cr_expect(strstr(out, "--key-file FILE") != NULL, "%s", out);

    merchant_new(&m);
    ep = str_printf("%s/hooks/%s", env("PAY_TEST_RECEIVER"), uid("h"));
    out = shell(str_printf("cat '%s' | env -u PAYMENTS_KEY_FILE "
                           "PAYMENTS_SECRETS='%s' '%s' --db '%s' add-endpoint "
                           "--id %s --url '%s' --allow-loopback --key-file -",
                           keys, secrets, tool, env("PAY_TEST_PG"), m.id, ep),
                &rc);
    cr_expect_eq(rc, 0, "add-endpoint --key-file -: %s", out);
    cr_expect(strstr(out, "whsec_") != NULL, "no secret: %s", out);
    {
        const char  *p[] = { m.id };

        cr_expect_str_eq(db_scalar("SELECT count(*) FROM notify_endpoints "
                                   "WHERE merchant_id = $1", 1, p), "1");
    }
}


/* A key file that cannot be opened: the OS's reason, and what to do. */
Test(merchant_tool, a_key_file_that_cannot_be_opened_is_named_with_the_reason)
{
    int          rc;
    char        *out, *secrets, *tool, *link;
    merchant_t   m;

    secrets = build_file("payments-secrets");
    tool = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));

    out = shell(str_printf("'%s' new-secret --key-file /nonexistent/keys "
                           "--ad ep_x", secrets), &rc);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "No such file or directory") != NULL, "%s", out);
    cr_expect(strstr(out, "payments_encryption_key") != NULL, "%s", out);

    /* a symbolic link (/dev/stdin is one) is refused, and the way out
     * named */
    link = str_printf("%s/keys-link-%d", env("PAY_TEST_RUN"), (int) getpid());
    (void) unlink(link);
    cr_assert_eq(symlink(env("PAY_TEST_ENCRYPTION_KEY"), link), 0);
    out = shell(str_printf("'%s' new-secret --key-file '%s' --ad ep_x",
                           secrets, link), &rc);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "Too many levels of symbolic links") != NULL,
              "%s", out);
    cr_expect(strstr(out, "--key-file -") != NULL, "%s", out);
    (void) unlink(link);

    merchant_new(&m);
    out = shell(str_printf("PAYMENTS_SECRETS='%s' '%s' --db '%s' add-endpoint "
                           "--id %s --url https://127.0.0.1:9/x "
                           "--allow-loopback --key-file /nonexistent/keys",
                           secrets, tool, env("PAY_TEST_PG"), m.id), &rc);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "No such file or directory") != NULL, "%s", out);
    cr_expect(strstr(out, "payments_encryption_key") != NULL, "%s", out);
}
