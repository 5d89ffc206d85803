/*
 * End to end: the gateway prepares each statement once per connection and
 * executes it by name from then on (issue 14: PostgreSQL parses and plans a
 * registration's statements once, not on every call); a statement whose
 * function is missing (a migration not applied yet) is prepared once the
 * function is there; a prepared statement that a migration invalidates is
 * answered all the same.
 *
 * PostgreSQL logs every statement of the gateway's role for the length of
 * the test (ALTER ROLE ... SET log_min_duration_statement = 0, with no
 * parameters: log_parameter_max_length = 0), so the log says "parse
 * ngxp_...", "execute ngxp_..." or "execute <unnamed>" for each one.  A
 * gateway of the test's own, one worker with one database connection,
 * opens its connection after that, so every statement it sends is logged
 * and each is prepared at most once.  Solo: the role's settings and the
 * replaced function would reach the other suites' new connections.
 *
 * The refusal of a replaced function's plan is recognised by its SQLSTATE,
 * whatever the language of the server's messages: a second test has the
 * gateway's connections speak German (lc_messages = 'de_DE.UTF-8', the
 * locale ci/install-deps.sh generates).
 */

#include "harness.h"


static gateway_t  own;
static int        swapped;
static int        logging;
static int        german;


/* pay_get_balance moved aside (into schema e2e, renamed), and back */

static void
balance_aside(void)
{
    db_exec("CREATE SCHEMA IF NOT EXISTS e2e", 0, NULL);
    db_exec("DO $$ BEGIN "
            "ALTER FUNCTION pay_get_balance(text, text) "
            "RENAME TO pay_get_balance_saved; "
            "ALTER FUNCTION pay_get_balance_saved(text, text) SET SCHEMA e2e; "
            "END $$", 0, NULL);
    swapped = 1;
}


static void
balance_back(void)
{
    db_exec("DO $$ BEGIN "
            "DROP FUNCTION IF EXISTS public.pay_get_balance(text, text); "
            "ALTER FUNCTION e2e.pay_get_balance_saved(text, text) "
            "SET SCHEMA public; "
            "ALTER FUNCTION pay_get_balance_saved(text, text) "
            "RENAME TO pay_get_balance; "
            "END $$", 0, NULL);
    swapped = 0;
}


static void
restore(void)
{
    gateway_stop(&own);

    if (swapped) {
        balance_back();
    }

    if (logging) {
        db_exec("ALTER ROLE payments_gateway RESET log_min_duration_statement",
                0, NULL);
        db_exec("ALTER ROLE payments_gateway RESET log_parameter_max_length",
                0, NULL);
        logging = 0;
    }

    if (german) {
        db_exec("ALTER ROLE payments_gateway RESET lc_messages", 0, NULL);
        german = 0;
    }
}


/*
 * A migration replaces pay_get_balance with one of another result type
 * (json, not text), as DROP and CREATE would.  PostgreSQL then refuses a
 * statement prepared before ("cached plan must not change result type")
 * before running anything.
 */

static void
balance_replaced(void)
{
    balance_aside();
    db_exec("DO $d$ BEGIN "
            "CREATE FUNCTION pay_get_balance(p_merchant text, p_seller text) "
            "RETURNS json LANGUAGE sql STABLE SECURITY DEFINER "
            "SET search_path = public, pg_temp AS "
            "$$ SELECT e2e.pay_get_balance_saved(p_merchant, p_seller)::json "
            "$$; "
            "REVOKE ALL ON FUNCTION pay_get_balance(text, text) FROM PUBLIC; "
            "GRANT EXECUTE ON FUNCTION pay_get_balance(text, text) "
            "TO payments_gateway; "
            "END $d$", 0, NULL);
}


TestSuite(solo_statements, .timeout = E2E_TIMEOUT, .fini = restore);


/* Lines of text holding both needles. */

static long
lines_with(const char *text, const char *a, const char *b)
{
    long         n = 0;
    const char  *p, *eol;
    char        *line;

    for (p = text; *p; p = *eol ? eol + 1 : eol) {
        eol = strchr(p, '\n');
        if (eol == NULL) {
            eol = p + strlen(p);
        }

        line = strndup(p, (size_t) (eol - p));
        cr_assert_not_null(line);

        if (strstr(line, a) && strstr(line, b)) {
            n++;
        }

        free(line);
    }

    return n;
}


Test(solo_statements, each_statement_is_prepared_once_and_a_missing_or_replaced_function_is_handled)
{
    int          i;
    long         start;
    char        *log, *pglog, *all, *balance;
    size_t       len;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    balance = str_printf("/v1/sellers/%s/balance", uid("nobody"));

    pglog = str_printf("%s/postgres.log", env("PAY_TEST_PGDIR"));
    all = file_read(pglog, &len);
    cr_assert_not_null(all, "%s", pglog);
    start = (long) len;
    free(all);

    logging = 1;
    db_exec("ALTER ROLE payments_gateway SET log_min_duration_statement = 0",
            0, NULL);
    db_exec("ALTER ROLE payments_gateway SET log_parameter_max_length = 0",
            0, NULL);

    gateway_start(&own, "statements", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    gateway_wait_ready(&own, 10);

    for (i = 0; i < 3; i++) {
        r = gateway_send(&own, "POST", PATH_PAYMENTS, &m, uid("key"),
                         body_for(uid("co")));
        cr_assert_eq(r->status, 201, "registration %d: %ld %s", i, r->status,
                     r->body);
        secret_used(json_string_value(json_object_get(resp_json(r),
                                                      "psp_token")));
    }

    /*
     * A function that is not there yet (a migration not applied): the
     * statement fails to prepare, is sent unnamed for its own error, and is
     * prepared again once the function is there.
     */
    balance_aside();
    r = gateway_send(&own, "GET", balance, &m, NULL, NULL);
    cr_assert_geq(r->status, 500, "%ld %s", r->status, r->body);
    balance_back();

    r = gateway_send(&own, "GET", balance, &m, NULL, NULL);
    expect_problem(r, 404, "not_found");

    /* a migration replaces the function under the prepared statement */
    balance_replaced();

    r = gateway_send(&own, "GET", balance, &m, NULL, NULL);
    expect_problem(r, 404, "not_found");

    cr_assert(file_contains(own.error_log,
                            "a prepared statement was refused (0A000:"),
              "no fallback in %s", own.error_log);

    r = gateway_send(&own, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_for(uid("co")));
    cr_assert_eq(r->status, 201, "after the fallback: %ld %s", r->status,
                 r->body);
    secret_used(json_string_value(json_object_get(resp_json(r),
                                                  "psp_token")));

    restore();

    all = file_read(pglog, &len);
    cr_assert_not_null(all);
    cr_assert((long) len > start);
    log = all + start;

    /* three registrations: pay_claim parsed once, executed three times */
    cr_assert_eq(lines_with(log, "parse ngxp_", "FROM pay_claim("), 1,
                 "pay_claim prepared %ld times",
                 lines_with(log, "parse ngxp_", "FROM pay_claim("));
    cr_assert_eq(lines_with(log, "execute ngxp_", "FROM pay_claim("), 3);
    cr_assert_eq(lines_with(log, "execute ngxp_", "FROM pay_finish("), 3);

    /*
     * the balance: not prepared while its function was missing, prepared
     * once it was back and run by name, then refused and run unnamed; so is
     * what follows
     */
    cr_assert_eq(lines_with(log, "parse ngxp_", "pay_get_balance("), 1);
    cr_assert_eq(lines_with(log, "execute ngxp_", "pay_get_balance("), 1);
    cr_assert_eq(lines_with(log, "execute <unnamed>", "pay_get_balance("), 1);
    cr_assert_eq(lines_with(log, "execute <unnamed>", "FROM pay_claim("), 1);

    free(all);
}


Test(solo_statements, a_replaced_function_is_handled_whatever_the_server_language)
{
    int          i;
    char        *balance;
    resp_t      *r;
    PGconn      *c;
    PGresult    *res;
    merchant_t   m;
    const char  *msg;

    merchant_new(&m);
    balance = str_printf("/v1/sellers/%s/balance", uid("nobody"));

    german = 1;
    db_exec("ALTER ROLE payments_gateway SET lc_messages = 'de_DE.UTF-8'",
            0, NULL);

    /* the gateway role's connections do get the server's German messages */
    c = PQconnectdb(pg_gateway_conninfo());
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    res = PQexec(c, "SELECT 1/0");
    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    cr_assert(msg != NULL && strcmp(msg, "division by zero") != 0,
              "the server still speaks English (%s): is the locale "
              "de_DE.UTF-8 there (ci/install-deps.sh generates it)?",
              msg ? msg : "(no message)");
    PQclear(res);
    PQfinish(c);

    gateway_start(&own, "statements-de", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    gateway_wait_ready(&own, 10);

    /* prepared on the gateway's one connection, and run by name */
    for (i = 0; i < 2; i++) {
        r = gateway_send(&own, "GET", balance, &m, NULL, NULL);
        expect_problem(r, 404, "not_found");
    }

    balance_replaced();

    /* refused ("gecachter Plan darf den Ergebnistyp nicht ändern"), sent
     * again unnamed: the same answer, every time */
    for (i = 0; i < 3; i++) {
        r = gateway_send(&own, "GET", balance, &m, NULL, NULL);
        expect_problem(r, 404, "not_found");
    }

    cr_assert(file_contains(own.error_log,
                            "a prepared statement was refused (0A000:"),
              "no fallback in %s", own.error_log);

    r = gateway_send(&own, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_for(uid("co")));
    cr_assert_eq(r->status, 201, "after the fallback: %ld %s", r->status,
                 r->body);
    secret_used(json_string_value(json_object_get(resp_json(r),
                                                  "psp_token")));
}
