/*
 * The plans suites' databases: plans.h says what each does.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "plans.h"
#include "sqltest.h"


static char  plans_db[32];


PGconn *
plans_connect(void)
{
    char     hex[13], cmd[4096], sql[128];
    PGconn  *c, *d;
    int      st;

    c = sqlt_connect();
    sqlt_random_hex(hex, 12);
    snprintf(plans_db, sizeof(plans_db), "plans_%s", hex);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", plans_db);
    OK0(c, sql);
    PQfinish(c);

    snprintf(cmd, sizeof(cmd), "'%s/bin/payments-migrate' '%s dbname=%s' "
             ">/dev/null 2>&1", getenv("PAY_TEST_ROOT"), getenv("PAY_TEST_PG"),
             plans_db);
    st = system(cmd);
    cr_assert_eq(st, 0, "payments-migrate on %s: %d", plans_db, st);

    d = plans_reconnect();

    /* the event inbox's monthly partitions, as the sweeper makes them at
     * run time (a fresh schema has none): their keys are checked too */
    OK0(d, "SELECT pay_inbox_partitions(1)");

    return d;
}


PGconn *
plans_reconnect(void)
{
    char     conninfo[1024];
    PGconn  *d;

    snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", getenv("PAY_TEST_PG"),
             plans_db);
    d = PQconnectdb(conninfo);
    cr_assert_eq(PQstatus(d), CONNECTION_OK, "%s", PQerrorMessage(d));
    OK0(d, "SET plan_cache_mode = force_generic_plan");
    return d;
}


void
plans_drop(PGconn *d)
{
    char     sql[128];
    PGconn  *c;

    PQfinish(d);
    c = sqlt_connect();
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", plans_db);
    OK0(c, sql);
    PQfinish(c);
}


long
plans_fetched(PGconn *d, const char *pattern)
{
    return atol(VAL(d, "SELECT sum(idx_tup_fetch) FROM pg_stat_xact_user_tables"
                       " WHERE relname LIKE $1", pattern));
}


long
plans_rows_read(PGconn *d, const char *pattern)
{
    /* a row an index scan fetches counts in its index's statistics, not
     * in the table's (there only a sequential scan's rows and a bitmap
     * scan's); fetched, not returned: the entries of rows rolled back
     * (the dead rows a test plants its statistics with) are passed over
     * by every walk of an index and are not the plan's doing */
    return atol(VAL(d, "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)"
                       "        + pg_stat_get_xact_tuples_fetched(c.oid)"
                       "        + coalesce((SELECT sum(pg_stat_get_xact_tuples_fetched("
                       "                      i.indexrelid))"
                       "                      FROM pg_index i WHERE i.indrelid = c.oid), 0)),"
                       "        0)"
                       "  FROM pg_class c"
                       " WHERE c.relkind = 'r' AND c.relname LIKE $1", pattern));
}
