/*
 * End to end: the sharded stack itself (ci/services.sh --shards 2, the
 * shards lane: E2E_SHARDS=1 bash ci/e2e.sh; doc/plans/shards.md section 3).
 * Two PostgreSQL clusters on loopback, shards a (the home, the demo
 * merchant's) and b, each a full migrated schema; the CLIs over both
 * through the stack's shards file; the harness's helpers that later tests
 * stop, kill, pause and make read-only a shard with.  On any other stack
 * every test here is skipped.
 *
 * The tests stop and pause shard b: the lane runs this suite one test at a
 * time.  The suite's gateway serves both shards.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"


static void
shards_stack_init(void)
{
    shards_need(2);
}


TestSuite(shards_stack, .timeout = E2E_TIMEOUT, .init = shards_stack_init);


/* payments-merchant --shards PAY_TEST_SHARDS_FILE ARGS... (NULL-terminated) */
static int
merchant_shards(const char *const *args, char **out)
{
    char    *argv[16];
    size_t   n, i;

    n = 0;
    argv[n++] = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    argv[n++] = (char *) "--shards";
    argv[n++] = (char *) env("PAY_TEST_SHARDS_FILE");
    for (i = 0; args[i] != NULL && n < 15; i++) {
        argv[n++] = (char *) args[i];
    }
    argv[n] = NULL;

    return run(argv, out);
}

#define MERCHANT_SHARDS(out, ...) \
    merchant_shards((const char *const []){ __VA_ARGS__, NULL }, (out))


/* how many merchants with this id the shard holds */
static long
merchants_with_id(const char *shard, const char *id)
{
    char  *v;

    v = db_scalar_on(db_shard(shard),
                     "SELECT count(*) FROM merchants WHERE merchant_id = $1",
                     1, (const char *[]) { id });
    cr_assert_not_null(v);

    return atol(v);
}


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/* Two clusters, not two databases of one; both at the same migration; the
 * shards file names them a and b; payments-migrate --shards finds nothing
 * to do on either. */
Test(shards_stack, two_migrated_clusters_and_their_shards_file)
{
    int    rc;
    char  *out, *pa, *pb, *va, *vb, *file;

    pa = db_scalar_on(db_shard("a"), "SHOW port", 0, NULL);
    pb = db_scalar_on(db_shard("b"), "SHOW port", 0, NULL);
    cr_assert_str_neq(pa, pb, "shards a and b are one cluster");
    cr_expect_str_eq(db_scalar_on(db_shard("a"), "SHOW data_directory", 0,
                                  NULL),
                     env("PAY_TEST_PGDATA1"));
    cr_expect_str_eq(db_scalar_on(db_shard("b"), "SHOW data_directory", 0,
                                  NULL),
                     env("PAY_TEST_PGDATA2"));

    va = db_scalar_on(db_shard("a"), "SELECT max(version) FROM"
                      " schema_migrations", 0, NULL);
    vb = db_scalar_on(db_shard("b"), "SELECT max(version) FROM"
                      " schema_migrations", 0, NULL);
    cr_assert_not_null(va);
    cr_expect_str_eq(vb, va, "shard b's schema is not shard a's");

    /* PAY_TEST_PG is shard a's: db() and db_shard("a") are one cluster */
    cr_expect_str_eq(db_scalar("SHOW port", 0, NULL), pa);

    file = file_read(env("PAY_TEST_SHARDS_FILE"), NULL);
    cr_assert_not_null(file);
    cr_expect(strstr(file, str_printf("a %s\n", env("PAY_TEST_PG1")))
              != NULL, "%s", file);
    cr_expect(strstr(file, str_printf("b %s\n", env("PAY_TEST_PG2")))
              != NULL, "%s", file);

    {
        char *const  argv[] = {
            str_printf("%s/bin/payments-migrate", env("PAY_TEST_ROOT")),
            (char *) "--shards", (char *) env("PAY_TEST_SHARDS_FILE"), NULL
        };

        rc = run(argv, &out);
    }
    cr_assert_eq(rc, 0, "payments-migrate --shards: %s", out);
    cr_expect(strstr(out, "shard a: payments-migrate: 0 applied,") != NULL,
              "%s", out);
    cr_expect(strstr(out, "shard b: payments-migrate: 0 applied,") != NULL,
              "%s", out);
    cr_expect(strstr(out, "payments-migrate: 2 shards migrated") != NULL,
              "%s", out);
}


/* merchant_new_on places a merchant on its shard alone; merchant_new
 * follows PAY_TEST_SHARD_DEFAULT; db_of and the books' queries read the
 * merchant's own shard; the demo merchant lives on a. */
Test(shards_stack, merchants_live_on_the_shard_they_were_created_on)
{
    int          rc;
    char        *out;
    PGresult    *q;
    merchant_t   ma, mb, md, demo;

    merchant_new_on(&ma, "a");
    merchant_new_on(&mb, "b");
    cr_expect_str_eq(ma.shard, "a");
    cr_expect_str_eq(mb.shard, "b");

    cr_expect_eq(merchants_with_id("a", ma.id), 1);
    cr_expect_eq(merchants_with_id("b", ma.id), 0);
    cr_expect_eq(merchants_with_id("b", mb.id), 1);
    cr_expect_eq(merchants_with_id("a", mb.id), 0);
    cr_expect_str_eq(db_scalar_on(db_of(&mb), "SELECT merchant_id FROM"
                                  " pay_auth($1)", 1,
                                  (const char *[]) { mb.key_id }), mb.id);
    cr_expect_null(db_scalar_on(db_of(&ma), "SELECT merchant_id FROM"
                                " pay_auth($1)", 1,
                                (const char *[]) { mb.key_id }),
                   "shard a knows b's key");

    setenv("PAY_TEST_SHARD_DEFAULT", "b", 1);
    merchant_new(&md);
    unsetenv("PAY_TEST_SHARD_DEFAULT");
    cr_expect_str_eq(md.shard, "b");
    cr_expect_eq(merchants_with_id("b", md.id), 1);
    cr_expect_eq(merchants_with_id("a", md.id), 0);

    merchant_demo(&demo);
    cr_expect_str_eq(demo.shard, "a");
    cr_expect_eq(merchants_with_id("a", demo.id), 1);
    cr_expect_eq(merchants_with_id("b", demo.id), 0);

    /* the CLI finds each on its shard */
    rc = MERCHANT_SHARDS(&out, "show", "--id", mb.id);
    cr_expect_eq(rc, 0, "show: %s", out);
    cr_expect(strstr(out, "is on shard b") != NULL, "%s", out);

    /* the books read where they are told */
    q = books_query_on(db_of(&mb), mb.id,
                       "SELECT count(*) FROM merchants WHERE merchant_id = $1");
    cr_expect_str_eq(PQgetvalue(q, 0, 0), "1");
    PQclear(q);
    q = books_query_on(db_of(&ma), mb.id,
                       "SELECT count(*) FROM merchants WHERE merchant_id = $1");
    cr_expect_str_eq(PQgetvalue(q, 0, 0), "0");
    PQclear(q);
}


/* books_compare's failures, counted per check */
static void
count_failure(void *ctx, books_check_e chk, const char *line)
{
    int  *n = ctx;

    (void) line;
    n[chk]++;
}


/* The books' checks read the connection they are given: an unbalanced
 * ledger transaction of a merchant of b, inside a transaction on b never
 * committed, is seen over that connection and not over a's (the
 * merchant's shard is what a check over shards must be given). */
Test(shards_stack, the_books_checks_read_the_shard_they_are_given)
{
    int           i, on_b[BOOKS_NCHECKS], on_a[BOOKS_NCHECKS];
    PGconn       *c;
    merchant_t    mb;
    books_cmp_t   cmp;

    merchant_new_on(&mb, "b");
    c = db_of(&mb);

    db_exec_on(c, "BEGIN", 0, NULL);
    /* the owner, with the guards off for this transaction */
    db_exec_on(c, "SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec_on(c, "WITH t AS (INSERT INTO ledger_transactions (merchant_id,"
               " checkout_id, payment_order_id, source, kind, object_id)"
               " VALUES ($1, 'co_canary', 'co_canary_p1', 'canary',"
               " 'payment', NULL) RETURNING txn_id)"
               " INSERT INTO ledger_entries (merchant_id, txn_id, entry_no,"
               " account, amount, currency)"
               " SELECT $1, t.txn_id, 1, 'seller_payable:s1', 1, 'USD'"
               " FROM t", 1, (const char *[]) { mb.id });

    memset(&cmp, 0, sizeof(cmp));
    cmp.merchant_id = mb.id;
    cmp.books = json_object();
    cmp.fail = count_failure;
    /* the ledger's own checks: nothing of the PSP's to compare with */
    cmp.skip = (1u << BOOKS_CAPTURED) | (1u << BOOKS_REFUNDED)
               | (1u << BOOKS_DISPUTED) | (1u << BOOKS_PAYOUTS)
               | (1u << BOOKS_MOVED) | (1u << BOOKS_ONCE);

    memset(on_b, 0, sizeof(on_b));
    cmp.ctx = on_b;
    cmp.conn = c;
    books_compare(&cmp);

    memset(on_a, 0, sizeof(on_a));
    cmp.ctx = on_a;
    cmp.conn = db_shard("a");
    books_compare(&cmp);

    db_exec_on(c, "ROLLBACK", 0, NULL);

    cr_expect_gt(on_b[BOOKS_BALANCED], 0, "shard b's unbalanced ledger"
                 " transaction was not seen");
    for (i = 0; i < BOOKS_NCHECKS; i++) {
        cr_expect_eq(on_a[i], 0, "check %s failed on shard a, where the"
                     " merchant has nothing", books_check_names[i]);
    }
}


/* A paused shard (SIGSTOP of its cluster) hangs: a connection does not
 * fail, it waits; payments-merchant refuses to create a merchant anywhere
 * while a shard does not answer, within its PGCONNECT_TIMEOUT; shard a
 * answers throughout; SIGCONT brings b back. */
Test(shards_stack, a_paused_shard_hangs_until_resumed)
{
    int          rc;
    char        *out, *id, *ci;
    double       t0, took;
    PGconn      *c;

    cr_assert_geq(pg_pause_shard("b"), 2,
                  "the postmaster and its processes");

    ci = str_printf("%s connect_timeout=1", env("PAY_TEST_PG2"));
    t0 = now_s();
    c = PQconnectdb(ci);
    took = now_s() - t0;
    cr_expect_neq(PQstatus(c), CONNECTION_OK, "a paused shard answered");
    cr_expect(took >= 0.9, "refused in %.2f s, not hanging", took);
    PQfinish(c);

    /* shard a is not paused */
    cr_expect_str_eq(db_scalar_on(db_shard("a"), "SELECT 1", 0, NULL), "1");

    id = uid("s");
    setenv("PGCONNECT_TIMEOUT", "1", 1);
    t0 = now_s();
    rc = MERCHANT_SHARDS(&out, "--shard", "a", "create", "--id", id,
                         "--origin", SHOP_ORIGIN);
    took = now_s() - t0;
    unsetenv("PGCONNECT_TIMEOUT");
    cr_expect_neq(rc, 0, "created while shard b hangs: %s", out);
    cr_expect(strstr(out, "shard b does not answer") != NULL, "%s", out);
    cr_expect(took < 10, "payments-merchant took %.1f s", took);

    cr_assert_geq(pg_resume_shard("b"), 2);
    cr_expect_eq(merchants_with_id("a", id), 0);
    cr_expect_str_eq(db_scalar_on(db_shard("b"), "SELECT 1", 0, NULL), "1");
}


/* A read-only shard refuses writes (a merchant is not created on it) and
 * reads on; shard a takes merchants meanwhile; reset, b writes again. */
Test(shards_stack, a_read_only_shard_refuses_writes_until_reset)
{
    int          rc;
    char        *out, *id;
    merchant_t   ma, mb;

    pg_read_only_shard("b", 1);

    id = uid("s");
    rc = MERCHANT_SHARDS(&out, "--shard", "b", "create", "--id", id,
                         "--origin", SHOP_ORIGIN);
    cr_expect_neq(rc, 0, "created on a read-only shard: %s", out);
    cr_expect(strstr(out, "read-only transaction") != NULL, "%s", out);

    /* reads go on, and a takes merchants */
    cr_expect_eq(merchants_with_id("b", id), 0);
    merchant_new_on(&ma, "a");

    pg_read_only_shard("b", 0);
    cr_expect_eq(merchants_with_id("b", id), 0);
    merchant_new_on(&mb, "b");
    cr_expect_eq(merchants_with_id("b", mb.id), 1);
}


/* A killed shard (pg_ctl -m immediate) is listed unreachable, a alone is
 * listed with its merchants; started again, b answers. */
Test(shards_stack, a_killed_shard_is_unreachable_until_started)
{
    int    rc;
    char  *out;

    pg_kill_shard("b");
    cr_expect(!pg_running_shard("b"));
    cr_expect(pg_running_shard("a"));

    setenv("PGCONNECT_TIMEOUT", "2", 1);
    rc = MERCHANT_SHARDS(&out, "shards");
    unsetenv("PGCONNECT_TIMEOUT");
    cr_expect_eq(rc, 1, "shards: %s", out);
    cr_expect(strstr(out, "b\tunreachable") != NULL, "%s", out);
    cr_expect(strstr(out, "a\t") != NULL, "%s", out);

    pg_start_shard("b");
    cr_expect(pg_running_shard("b"));
    rc = MERCHANT_SHARDS(&out, "shards");
    cr_expect_eq(rc, 0, "shards: %s", out);
    cr_expect(strstr(out, "b\tunreachable") == NULL, "%s", out);
}


/* The stack's gateway serves both shards: its configuration has both
 * lines, and the demo merchant's checkout lands on a and not on b. */
Test(shards_stack, the_gateway_serves_both_shards)
{
    char        *conf, *co_id;
    resp_t      *r;
    merchant_t   demo;

    cr_assert(shard_served("a") && shard_served("b"), "the gateway serves %s",
              env("PAY_TEST_GW_SHARDS"));
    conf = file_read(run_file("nginx.conf"), NULL);
    cr_assert_not_null(conf);
    cr_expect(strstr(conf, "payments_shard a ") != NULL, "%s", conf);
    cr_expect(strstr(conf, "payments_shard b ") != NULL, "%s", conf);

    merchant_demo(&demo);
    co_id = uid("co");
    r = register_ok(&demo, uid("key"), body_for(co_id));
    resp_free(r);

    cr_expect_str_eq(db_scalar_on(db_of(&demo), "SELECT count(*) FROM"
                                  " checkouts WHERE checkout_id = $1", 1,
                                  (const char *[]) { co_id }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"), "SELECT count(*) FROM"
                                  " checkouts WHERE checkout_id = $1", 1,
                                  (const char *[]) { co_id }), "0");
}
