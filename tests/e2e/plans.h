/*
 * The plans suites' databases (test_plans.c, test_plans_background.c):
 * each test plans its statements in a database of its own, migrated by
 * bin/payments-migrate and left empty, so that the statistics are the
 * ones the test plants (never analysed, or analysed while the table held
 * only dead rows) and no other test's rows move them.
 */
#ifndef PLANS_H
#define PLANS_H

#include <libpq-fe.h>

/* A fresh database with the schema (and the event inbox's monthly
 * partitions, as the sweeper makes them), and a connection to it with
 * generic plans forced (plan_cache_mode): the plans a connection keeps. */
PGconn *plans_connect(void);

/* Another connection to the database plans_connect made (a connection
 * plans each statement anew), with generic plans forced. */
PGconn *plans_reconnect(void);

/* d closed and its database dropped. */
void plans_drop(PGconn *d);

/* The index entries this transaction has read of the tables whose name
 * is like pattern (pg_stat_xact_user_tables' idx_tup_fetch: this
 * backend's own counts, live rows only). */
long plans_fetched(PGconn *d, const char *pattern);

/* The rows this transaction has read of the tables whose name is like
 * pattern (partitions included), however it read them: a sequential
 * scan's, a bitmap scan's and each index scan's live rows. */
long plans_rows_read(PGconn *d, const char *pattern);

#endif /* PLANS_H */
