/*
 * End to end: the gateway logs PostgreSQL's errors without their DETAIL
 * (issue 15, item 11).  A unique violation's DETAIL spells out the key it
 * collided on ("Key (psp, psp_token)=(stripe, cs_test_...) already
 * exists."), so at libpq's default verbosity a PSP token would reach the
 * error log.
 *
 * The collision is a PSP that answers two checkouts with the same session:
 * a trigger of this test's own, scoped to its second checkout, hands
 * pay_finish the first checkout's token when it records the second one's.
 * The first token is recorded with secret_used() (register_ok), so
 * ci/log-scan.sh searches every log for it after the suite as well.
 */

#include "harness.h"


static char  *trigger_name;


static void
drop_trigger(void)
{
    if (trigger_name != NULL) {
        db_exec(str_printf("DROP TRIGGER IF EXISTS %s ON psp_tokens",
                           trigger_name), 0, NULL);
        trigger_name = NULL;
    }
}


TestSuite(db_errors, .timeout = E2E_TIMEOUT, .fini = drop_trigger);


Test(db_errors, a_unique_violation_on_a_psp_token_logs_no_token)
{
    char        *co_a, *co_b, *token, *log;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co_a = uid("co");
    co_b = uid("co");

    r = register_ok(&m, uid("key"), body_for(co_a));
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "psp_token")));
    cr_assert(strlen(token) >= 8, "psp_token %s", token);

    /*
     * Out of the public schema and executable by nobody but its owner: the
     * gateway's role must keep executing pay_* functions only (sql suite).
     * A trigger runs its function without an EXECUTE check, as the role
     * that fires it (pay_finish's owner).
     */
    db_exec("CREATE SCHEMA IF NOT EXISTS e2e", 0, NULL);
    db_exec("CREATE OR REPLACE FUNCTION e2e.psp_token_collision() "
            "RETURNS trigger LANGUAGE plpgsql "
            "SET search_path = public, pg_temp AS $$ "
            "BEGIN "
            "  NEW.psp_token := (SELECT t.psp_token FROM psp_tokens t "
            "                     WHERE t.merchant_id = TG_ARGV[0] "
            "                       AND t.checkout_id = TG_ARGV[1]); "
            "  RETURN NEW; "
            "END $$", 0, NULL);
    db_exec("REVOKE ALL ON FUNCTION e2e.psp_token_collision() FROM PUBLIC",
            0, NULL);

    trigger_name = uid("e2e_tg");
    db_exec(str_printf("CREATE TRIGGER %s BEFORE INSERT ON psp_tokens "
                       "FOR EACH ROW WHEN (NEW.merchant_id = %s "
                       "AND NEW.checkout_id = %s) "
                       "EXECUTE FUNCTION e2e.psp_token_collision(%s, %s)",
                       trigger_name,
                       PQescapeLiteral(db(), m.id, strlen(m.id)),
                       PQescapeLiteral(db(), co_b, strlen(co_b)),
                       PQescapeLiteral(db(), m.id, strlen(m.id)),
                       PQescapeLiteral(db(), co_a, strlen(co_a))),
            0, NULL);

    /* pay_finish of the second checkout fails: its transaction is undone */
    r = api_post(&m, uid("key"), body_for(co_b));
    expect_problem(r, 503, "store_unavailable");

    drop_trigger();

    cr_assert_null(db_scalar("SELECT psp_token FROM checkouts "
                             "WHERE merchant_id = $1 AND checkout_id = $2",
                             2, (const char *[]) { m.id, co_b }),
                   "the colliding token was stored");

    /* the failure is logged, tersely: the constraint, never the key */
    log = file_read(run_file("logs/error.log"), NULL);
    cr_assert_not_null(log);
    cr_assert(strstr(log, "violates unique constraint \"psp_tokens_pkey\"")
              != NULL, "the unique violation was not logged");
    cr_assert(strstr(log, token) == NULL,
              "the error log holds the PSP token of %s", co_a);
    cr_assert(strstr(log, "Key (psp, psp_token)") == NULL,
              "the error log holds a unique violation's DETAIL");
}
