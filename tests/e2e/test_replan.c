/*
 * End to end: a pool connection's plans are made again every
 * payments_database_replan (_pg_prepare.c: DISCARD PLANS before the next
 * query), so a plan made while a table was small does not stay as the
 * table grows.
 *
 * PostgreSQL keeps a connection's generic plans (of its prepared
 * statements, of the statements in PL/pgSQL functions, of the foreign
 * keys' checks) until an ANALYZE or a schema change.  On a new database,
 * analysed while it held a few checkouts, a registration's look-ups are
 * planned as reads of the whole table (one page), and a connection that
 * keeps those plans reads more at every registration as the table grows,
 * until autovacuum's next ANALYZE (bench/RESULTS.md: about 7
 * registrations a second at 11,000 checkouts, against 600 for a new
 * connection).
 *
 * A gateway of the test's own, one worker and one database connection,
 * on a database of the test's own: migrated, autovacuum off for the
 * checkouts and the orders, and generic plans forced for its connections
 * (plan_cache_mode: the plan a connection keeps, made at a statement's
 * first call, where PostgreSQL would choose it after five).  Scans are
 * read from pg_stat_user_tables, which a backend reports when idle at most
 * ten seconds late, and at its exit.
 */

#include "harness.h"


/* the connection's plans are this old when it makes them again: long
 * enough for what comes before its first interval on a loaded machine
 * (a CI run took 13 s to grow the tables by 3,000 rows each) */
#define REPLAN_S   30
/* rows added to the checkouts and to the orders once planned: tens of
 * pages, where a look-up by key is cheaper through the index */
#define GROWN      1000


static gateway_t  replan_gw;


static void
stop_replan(void)
{
    gateway_stop(&replan_gw);
}


TestSuite(replan, .timeout = 120, .fini = stop_replan);


/* n registrations through the test's gateway: the checkout id of the
 * last */
static char *
replan_register(const merchant_t *m, int n)
{
    int      i;
    char    *co = NULL;
    resp_t  *r;

    for (i = 0; i < n; i++) {
        co = uid("co");
        r = gateway_send(&replan_gw, "POST", PATH_PAYMENTS, m, uid("key"),
                         body_for(co));
        cr_assert_eq(r->status, 201, "registration %d: %ld %s", i, r->status,
                     r->body);
    }

    return co;
}


/* what pg_stat_user_tables holds of the checkouts and the orders: which
 * ("seq_scan", "seq_tup_read"), summed */
static long
replan_stat(const char *ci, const char *which)
{
    char  *v;

    v = db_scalar_at(ci, str_printf("SELECT coalesce(sum(%s), 0) FROM "
                                    "pg_stat_user_tables WHERE relname IN "
                                    "('checkouts', 'payment_orders')", which),
                     NULL);

    return strtol(v, NULL, 10);
}


static void
replan_exec(const char *ci, const char *sql)
{
    PGconn  *c;

    c = PQconnectdb(ci);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    db_exec_on(c, sql, 0, NULL);
    PQfinish(c);
}


Test(replan, a_connections_plans_made_on_a_small_table_are_made_again,
     .description = "a connection that planned a registration's look-ups "
                    "on seven analysed checkouts reads the checkouts whole "
                    "once they have grown, and no more once its plans are "
                    "payments_database_replan old")
{
    int          i;
    long         scans, read, rows, before, started, took;
    char        *name, *ci, *co;
    merchant_t   m;

    ci = db_new_shard(&name);
    replan_exec(ci, str_printf("ALTER DATABASE %s SET plan_cache_mode = "
                               "force_generic_plan", name));
    replan_exec(ci, "ALTER TABLE checkouts SET (autovacuum_enabled = off)");
    replan_exec(ci, "ALTER TABLE payment_orders SET "
                    "(autovacuum_enabled = off)");

    merchant_new_in(&m, ci);

    /* the connection opens after this: its first interval ends after
     * started + REPLAN_S */
    started = ms_now();
    gateway_start(&replan_gw, "replan", 1, str_printf(
        "payments_database \"hostaddr=127.0.0.1 port=%ld dbname=%s "
        "user=payments_gateway\";\n"
        "payments_database_pool 1;\n"
        "payments_database_replan %ds;\n"
        "payments_sweeper off;\n%s",
        pg_port(), name, REPLAN_S,
        gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    gateway_wait_ready(&replan_gw, 10);

    /* seven checkouts, analysed: the connection plans again at its next
     * call (an ANALYZE invalidates the plans of the tables), on one page */
    co = replan_register(&m, 7);
    replan_exec(ci, "ANALYZE checkouts, payment_orders");
    (void) replan_register(&m, 7);

    /* the tables grow, unanalysed: copies of the last checkout and its
     * orders */
    replan_exec(ci, str_printf(
        "INSERT INTO checkouts SELECT (jsonb_populate_record(NULL::checkouts,"
        " to_jsonb(c) || jsonb_build_object('checkout_id', c.checkout_id ||"
        " '_' || g, 'nonce', c.nonce || '_' || g, 'psp_token', NULL,"
        " 'psp_url', NULL))).* FROM checkouts c, generate_series(1, %d) g"
        " WHERE c.checkout_id = '%s'", GROWN, co));
    replan_exec(ci, str_printf(
        "INSERT INTO payment_orders SELECT (jsonb_populate_record("
        "NULL::payment_orders, to_jsonb(o) || jsonb_build_object("
        "'checkout_id', o.checkout_id || '_' || g, 'payment_order_id',"
        " o.payment_order_id || '_' || g))).* FROM payment_orders o,"
        " generate_series(1, %d) g WHERE o.checkout_id = '%s'", GROWN, co));

    /* within the interval: the plans made on seven checkouts read the
     * grown tables whole, GROWN rows at least at each of three
     * registrations (the fourteen before read at most 14 rows a scan,
     * whether the backend has reported them yet or not) */
    read = replan_stat(ci, "seq_tup_read");
    (void) replan_register(&m, 3);
    took = ms_now() - started;
    cr_assert_lt(took, REPLAN_S * 1000L, "the registrations before the "
                 "connection's first interval ended took %ld ms: too slow "
                 "a machine for this test's premise", took);

    /* idle: the backend reports within ten seconds; and past the
     * connection's first interval */
    msleep(took + 12000L > REPLAN_S * 1000L + 1000L
            ? 12000L : REPLAN_S * 1000L + 1000L - took);
    rows = replan_stat(ci, "seq_tup_read") - read;
    cr_assert_geq(rows, 3L * GROWN, "plans made on seven checkouts read "
                  "the grown tables whole (the test's premise): %ld rows "
                  "read in three registrations", rows);
    scans = replan_stat(ci, "seq_scan");

    /* its next query is preceded by DISCARD PLANS: planned on the grown
     * tables, each look-up by its key */
    (void) replan_register(&m, 3);

    /* the backend reports what it has at its exit */
    gateway_stop(&replan_gw);

    for (i = 0; i < 100; i++) {
        if (strcmp(db_scalar_at(ci, "SELECT count(*) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND "
                                    "usename = 'payments_gateway'", NULL),
                   "0") == 0)
        {
            break;
        }

        msleep(100);
    }

    cr_assert_lt(i, 100, "the gateway's connection is still there");

    before = scans;
    scans = replan_stat(ci, "seq_scan");
    cr_assert_eq(scans, before, "sequential scans of the checkouts and the "
                 "orders after the connection planned again: %ld",
                 scans - before);
}
