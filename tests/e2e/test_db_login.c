/*
 * A gateway PostgreSQL will not let in: nginx starts (the database is not
 * needed to check the configuration), /readyz answers 503 store_unavailable
 * and says the likely cause, and the error log says it beside libpq's own
 * message.  The cause is read from PostgreSQL's message (src/pghint.c);
 * this suite's server is reached over TCP, so the role that does not exist
 * stands for the other refusals (peer, password, pg_hba.conf), which the
 * unit tests cover.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static gateway_t  nologin;

static void
stop_nologin(void)
{
    gateway_stop(&nologin);
}

TestSuite(db_login, .timeout = E2E_TIMEOUT, .fini = stop_nologin);


Test(db_login, readyz_and_the_log_name_a_role_that_does_not_exist)
{
    int          i;
    resp_t      *r;
    const char  *detail;

    gateway_start(&nologin, "nologin", 1, str_printf(
        "payments_database \"hostaddr=127.0.0.1 port=%ld dbname=payments "
        "user=no_such_role_%s connect_timeout=2\";\n"
        "payments_sweeper off;\n%s",
        pg_port(), uid("r"), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    r = NULL;
    detail = NULL;

    for (i = 0; i < 50; i++) {
        r = gateway_get(&nologin, "/readyz");
        cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
        detail = json_string_value(json_object_get(resp_json(r), "detail"));
        if (detail != NULL && strstr(detail, "likely cause") != NULL) {
            break;
        }
        usleep(100 * 1000);
    }

    expect_problem(r, 503, "store_unavailable");
    cr_assert(detail != NULL && strstr(detail, "role does not exist") != NULL,
              "%s", r->body);
    cr_assert_not_null(resp_header(r, "Retry-After"));
    /* names nothing of the configuration */
    cr_assert_null(strstr(r->body, "no_such_role"), "%s", r->body);

    /* asked by its shard's name ("default": payments_database's), the
     * same cause, after the shard's name */
    r = gateway_get(&nologin, "/readyz?shard=default");
    expect_problem(r, 503, "store_unavailable");
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_assert(detail != NULL
              && strstr(detail, "shard default: PostgreSQL refuses the "
                        "gateway's login; likely cause: the database role "
                        "does not exist") == detail, "%s", r->body);
    cr_assert_not_null(resp_header(r, "Retry-After"));
    cr_assert_null(strstr(r->body, "no_such_role"), "%s", r->body);

    cr_assert(file_contains(nologin.error_log, "does not exist, retrying in"),
              "no connection error in %s", nologin.error_log);
    cr_assert(file_contains(nologin.error_log, "likely cause: the database "
                            "role does not exist"), "no hint in %s",
              nologin.error_log);
}
