/*
 * End to end: a shard's own database breaker and /readyz?shard=NAME, on
 * one payments_shard (a gateway of its own on the suite's PostgreSQL and
 * mock PSP, one worker).  Several shards cannot serve a "payments"
 * location until requests are routed over them (nginx -t refuses it,
 * test_config.c), so the two-shard cases of doc/plans/shards.md (one
 * shard hanging while the other's merchants keep their answers) wait for
 * that; what one shard shows here is each pool's own breaker.
 *
 * A reload that renames the shard shows its metrics' slot goes by name.
 *
 * The shard "hangs" for the gateway while the test holds an ACCESS
 * EXCLUSIVE lock on every table: connections open as usual, queries wait
 * until timeout=.  Solo: the locks stall every other user of the
 * database.
 */

#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>


static gateway_t  br_gw;


static void
stop_br_gw(void)
{
    gateway_stop(&br_gw);

    /* the read-only case's, whatever became of it */
    db_exec("ALTER ROLE payments_gateway RESET default_transaction_read_only",
            0, NULL);
}


TestSuite(solo_shard_breaker, .timeout = 60, .fini = stop_br_gw);


/* the gateway's conninfo, with a passfile holding a password of its own:
 * none of /readyz, /metrics or the logs may ever show it */
static char *
conninfo_with_passfile(const char *password)
{
    char  *path, *line;
    FILE  *f;

    path = run_file(str_printf("%s.pgpass", uid("pf")));
    line = str_printf("127.0.0.1:%ld:payments:payments_gateway:%s\n",
                      pg_port(), password);

    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(line, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, 0600), 0);

    return str_printf("%s passfile=%s", pg_gateway_conninfo(), path);
}


/*
 * The database hangs for its users until the connection returned is
 * rolled back: every table of the schema locked ACCESS EXCLUSIVE, so that
 * every query waits until its timeout=.  Not checkouts alone: a
 * housekeeping query on another table (the wallets' fold, each second)
 * answering between two requests' time-outs is a database that answers,
 * and the failures are then no longer in a row.
 */
static PGconn *
hang_database(void)
{
    PGconn    *lock;
    PGresult  *res;

    lock = PQconnectdb(env("PAY_TEST_PG"));
    cr_assert_eq(PQstatus(lock), CONNECTION_OK, "%s", PQerrorMessage(lock));

    res = PQexec(lock, "BEGIN; DO $$ BEGIN EXECUTE 'LOCK TABLE ' || "
                       "(SELECT string_agg(format('%I.%I', schemaname, "
                       "tablename), ', ') FROM pg_tables "
                       "WHERE schemaname = 'public') "
                       "|| ' IN ACCESS EXCLUSIVE MODE'; END $$");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s",
                 PQerrorMessage(lock));
    PQclear(res);

    return lock;
}


static void
no_password_in(const char *where, const char *text, const char *password)
{
    cr_expect_null(text != NULL ? strstr(text, password) : NULL,
                   "the shard's password is in %s", where);
}


Test(solo_shard_breaker,
     a_hanging_shard_opens_its_breaker_and_is_answered_at_once)
{
    char      *co_id, *password, *path, *log;
    PGconn    *lock;
    resp_t    *r;
    PGresult  *res;
    merchant_t m;
    int        i, got;

    password = uid("pw");
    secret_used(password);

    merchant_new(&m);

    gateway_start(&br_gw, "shard_breaker", 1, str_printf(
        "payments_shard a \"%s\" pool=2 timeout=1s breaker=2 "
        "breaker_open=3s;\n"
        "payments_sweeper off;\n%s",
        conninfo_with_passfile(password),
        gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&br_gw, 10);

    co_id = uid("co");
    r = gateway_send(&br_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    path = str_printf("/v1/checkouts/%s", co_id);

    /* one shard: /readyz as ever; ?shard= names it, or is 404 */
    r = gateway_get(&br_gw, "/readyz");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(r->body, "{\"status\":\"ready\"}\n");
    resp_free(r);

    r = gateway_get(&br_gw, "/readyz?shard=a");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(r->body,
                     "{\"status\":\"ready\",\"shards\":{\"a\":\"ready\"}}\n");
    resp_free(r);

    r = gateway_get(&br_gw, "/readyz?shard=b");
    cr_expect_eq(r->status, 404, "%ld %s", r->status, r->body);
    cr_expect_not_null(strstr(r->body, "\"not_found\""), "%s", r->body);
    resp_free(r);

    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_state"), 0);
    cr_expect_eq(gateway_metric(&br_gw, "payments_shard_up"), 1);
    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_opens_total"),
                 0);

    lock = hang_database();

    /* the first waits its whole timeout=; the second too, unless a
     * background query (housekeeping's) timed out beside it, which counts
     * as well */
    for (i = 0; i < 2; i++) {
        r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
        cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
        if (i == 0 && r->seconds < 0.9) {
            /* background queries (housekeeping's) that met the lock
             * first may have opened the breaker before this request came:
             * then the open breaker refused it at once (seen in CI: two
             * of them timed out together, 0.008 s) */
            cr_expect_eq(gateway_metric(&br_gw,
                                        "payments_db_breaker_opens_total"),
                         1, "a query that waited %.3f s, the breaker "
                         "closed", r->seconds);
        }
        resp_free(r);
    }

    /* its connections open again within the back-off: without the
     * breaker, the next query would wait its whole timeout= again */
    msleep(700);

    r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
    cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
    cr_expect_not_null(strstr(r->body, "\"store_unavailable\""), "%s",
                       r->body);
    cr_expect_not_null(resp_header(r, "Retry-After"));
    cr_expect_lt(r->seconds, 0.5, "answered after %.3f s", r->seconds);
    resp_free(r);

    r = gateway_get(&br_gw, "/readyz?shard=a");
    cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
    cr_expect_lt(r->seconds, 0.5, "answered after %.3f s", r->seconds);
    no_password_in("/readyz?shard=a", r->body, password);
    resp_free(r);

    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_state"), 1);
    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_opens_total"),
                 1);

    res = PQexec(lock, "ROLLBACK");
    PQclear(res);
    PQfinish(lock);

    /* the database answers again, but the breaker holds for breaker_open=:
     * then one query goes through as the probe and closes it */
    r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
    cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
    resp_free(r);

    got = 0;

    for (i = 0; i < 40 && got != 200; i++) {
        msleep(200);
        r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
        got = (int) r->status;
        resp_free(r);
    }

    cr_assert_eq(got, 200, "the breaker never closed");
    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_state"), 0);

    r = gateway_get(&br_gw, "/readyz?shard=a");
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    r = gateway_get(&br_gw, "/metrics");
    cr_assert_eq(r->status, 200);
    cr_expect_null(strstr(r->body, "shard="), "a shard label with one "
                   "shard");
    no_password_in("/metrics", r->body, password);
    resp_free(r);

    /* a shard's series live under its name in the zone: a reload that
     * names the shard otherwise starts from zero (a slot by position would
     * have kept a's count), and one back to its name finds its count */
    gateway_reload(&br_gw, "payments_shard a \"", "payments_shard b \"");
    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_opens_total"),
                 0);

    r = gateway_get(&br_gw, "/readyz?shard=b");
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    gateway_reload(&br_gw, "payments_shard b \"", "payments_shard a \"");
    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_opens_total"),
                 1);

    log = file_read(br_gw.error_log, NULL);
    cr_assert_not_null(log);
    cr_expect_not_null(strstr(log, "shard \"a\": database failures in a "
                                   "row: its breaker opens for 3000ms"));
    cr_expect_not_null(strstr(log, "shard \"a\": the database answers "
                                   "again: its breaker closes"));
    no_password_in("the error log", log, password);
}


Test(solo_shard_breaker, breaker_0_keeps_a_shard_without_one)
{
    char      *co_id, *path;
    PGconn    *lock;
    resp_t    *r;
    PGresult  *res;
    merchant_t m;
    int        i;

    merchant_new(&m);

    gateway_start(&br_gw, "shard_nobreaker", 1, str_printf(
        "payments_shard a \"%s\" pool=2 timeout=1s breaker=0;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&br_gw, 10);

    co_id = uid("co");
    r = gateway_send(&br_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    path = str_printf("/v1/checkouts/%s", co_id);

    lock = hang_database();

    for (i = 0; i < 3; i++) {
        r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
        cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
        resp_free(r);
    }

    res = PQexec(lock, "ROLLBACK");
    PQclear(res);
    PQfinish(lock);

    /* no breaker: served as soon as the database answers */
    msleep(700);

    r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_state"), 0);
    cr_expect_eq(gateway_metric(&br_gw, "payments_db_breaker_opens_total"),
                 0);
}


/*
 * A shard whose server takes no writes (a standby, or
 * default_transaction_read_only, set here on the gateway's role while the
 * test's gateway opens its connections): /readyz?shard= and /readyz are
 * 503 store_unavailable and say why, reads are served, a write is 503
 * store_unavailable; the connection that met the refusal is opened again,
 * and takes writes once the role's setting is reset.
 */
Test(solo_shard_breaker, a_read_only_shard_is_not_ready_and_keeps_its_reads)
{
    int         i;
    long        status;
    char       *co_id, *path;
    resp_t     *r;
    merchant_t  m;

#define READ_ONLY_DETAIL  "the database takes no writes"

    merchant_new(&m);

    /* a checkout to read, through the suite's gateway */
    co_id = uid("co");
    r = api_post(&m, uid("key"), body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    path = str_printf("/v1/checkouts/%s", co_id);

    db_exec("ALTER ROLE payments_gateway SET default_transaction_read_only "
            "= on", 0, NULL);

    gateway_start(&br_gw, "shard_read_only", 1, str_printf(
        "payments_shard a \"%s\" pool=2 timeout=2s;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    /* connected, read-only: never ready */
    status = 0;

    for (i = 0; i < 100; i++) {
        r = gateway_get(&br_gw, "/readyz?shard=a");
        status = r->status;

        if (status == 503 && r->body != NULL
            && strstr(r->body, READ_ONLY_DETAIL) != NULL)
        {
            resp_free(r);
            break;
        }

        cr_assert(status == 503 || status == 0, "%ld %s", status, r->body);
        resp_free(r);
        msleep(100);
    }

    cr_assert_lt(i, 100, "/readyz?shard=a never said read-only: %ld",
                 status);

    /* both of the pool's connections opened read-only before the reset:
     * one still connecting then would open writable, and answer ready
     * (a CI run saw 200 here once) */
    for (i = 0; i < 100; i++) {
        if (metric_value(br_gw.origin, "payments_db_pool_connections"
                         "{worker=\"0\",state=\"up\"}") >= 2)
        {
            break;
        }

        msleep(100);
    }

    cr_assert_lt(i, 100, "the pool's two connections were not up in 10 s");

    /* its connections keep the setting they opened with */
    db_exec("ALTER ROLE payments_gateway RESET default_transaction_read_only",
            0, NULL);

    r = gateway_get(&br_gw, "/readyz?shard=a");
    expect_problem(r, 503, "store_unavailable");
    cr_expect(strstr(r->body, "\"shard a: " READ_ONLY_DETAIL) != NULL,
              "%s", r->body);
    cr_expect_not_null(resp_header(r, "Retry-After"));
    resp_free(r);

    /* one shard: /readyz answers as for payments_database */
    r = gateway_get(&br_gw, "/readyz");
    expect_problem(r, 503, "store_unavailable");
    cr_expect(strstr(r->body, "\"" READ_ONLY_DETAIL) != NULL, "%s",
              r->body);
    resp_free(r);

    /* a read of the merchant API goes on: the key check (pay_auth) notes
     * the key's use only where the server takes writes */
    r = gateway_send(&br_gw, "GET", path, &m, NULL, NULL);
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    r = gateway_send(&br_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_for(uid("co")));
    expect_problem(r, 503, "store_unavailable");
    resp_free(r);

    /* the connections that met a refused write open again, without the
     * role's setting now: writes, and ready, within the back-off */
    status = 0;

    for (i = 0; i < 100 && status != 201; i++) {
        r = gateway_send(&br_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                         body_for(uid("co")));
        status = r->status;
        resp_free(r);

        if (status != 201) {
            msleep(100);
        }
    }

    cr_expect_eq(status, 201, "no write within 10 s of the reset");

    r = gateway_get(&br_gw, "/readyz?shard=a");
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(r->body, "{\"status\":\"ready\",\"shards\":{\"a\":"
                     "\"ready\"}}\n");
    resp_free(r);

#undef READ_ONLY_DETAIL
}
