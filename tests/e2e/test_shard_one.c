/*
 * End to end: one payments_shard serves as payments_database does (a
 * gateway of its own on the suite's PostgreSQL and mock PSP, 2 workers):
 * ready with today's /readyz body, a checkout registered and read back,
 * the shard's own pool= in every worker, and no shard label in /metrics
 * (labels come only with several shards: the shards lane's suites).  And
 * the directory a
 * payments_shard configuration routes by: filled from the shard after
 * start, a new merchant's key found by asking every shard, a revoked key
 * refused by its own shard alone, unknown keys kept by the worker.  The
 * error log (at info) says which way each key went: one line per answer
 * of the database, so the lines count the queries.
 */

#include "harness.h"
#include "harness_redis.h"


static gateway_t  one_shard;


static void
stop_one_shard(void)
{
    gateway_stop(&one_shard);
}


TestSuite(shard_one, .timeout = E2E_TIMEOUT, .fini = stop_one_shard);


Test(shard_one, a_single_named_shard_serves_as_payments_database)
{
    int          i;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    gateway_start(&one_shard, "shard_one", 2, str_printf(
        "payments_shard eu_1 \"%s\" pool=2 timeout=3s queue=64 home;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&one_shard, 10);

    r = gateway_get(&one_shard, "/readyz");
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(r->body, "{\"status\":\"ready\"}\n");
    resp_free(r);

    co_id = uid("co");
    r = gateway_send(&one_shard, "POST", PATH_PAYMENTS, &m, uid("key"),
                     body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    r = gateway_send(&one_shard, "GET",
                     str_printf("/v1/checkouts/%s", co_id), &m, NULL,
                     NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    /* pool=2 on the shard's line, not payments_database_pool's 4 */
    cr_expect_eq(metric_value(one_shard.origin,
                              "payments_db_pool_connections{worker=\"0\","
                              "state=\"size\"}"), 2);
    cr_expect_eq(metric_value(one_shard.origin,
                              "payments_db_pool_connections{worker=\"1\","
                              "state=\"size\"}"), 2);

    r = gateway_get(&one_shard, "/metrics");
    cr_assert_eq(r->status, 200);
    cr_expect_null(strstr(r->body, "shard="), "a shard label with one "
                   "shard");
    resp_free(r);

    /* its directory: loaded by one worker of the two (shard 0's, worker
     * 0), at notice */
    for (i = 0; i < 50 && log_count(&one_shard, "(its first load)") == 0;
         i++)
    {
        msleep(100);
    }

    msleep(500);
    cr_expect_eq(log_count(&one_shard, "payments: shard \"eu_1\" "
                           "directory: "), 1);
}


static gateway_t  dir_gw;


static void
stop_dir_gw(void)
{
    gateway_stop(&dir_gw);
}


TestSuite(shard_dir, .timeout = E2E_TIMEOUT, .fini = stop_dir_gw);


/* how many times the gateway logged text with key_id in it (fmt has one
 * %s for the key id) */
#define key_lines(fmt, key_id)  log_count(&dir_gw, str_printf(fmt, key_id))


Test(shard_dir, fills_from_the_shard_then_routes_keys_by_it)
{
    int          i, loaded;
    char        *co_id;
    resp_t      *r;
    merchant_t   m, fresh, unknown;

    merchant_new(&m);

    /* info: the lines that say how each key was found */
    cr_assert_eq(setenv("PAY_TEST_ERROR_LOG_LEVEL", "info", 1), 0);

    gateway_start(&dir_gw, "shard_dir", 1, str_printf(
        "payments_shard eu_1 \"%s\" pool=2;\n"
        "payments_shard_directory size=1m refresh=60s;\n"
        "payments_auth_cache 1s;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&dir_gw, 10);

    /* the worker loads the whole shard once it has a connection; the
     * next poll is a minute away (refresh=60s): what is made from now on
     * is found by asking every shard */
    loaded = 0;
    for (i = 0; i < 50 && !loaded; i++) {
        loaded = log_count(&dir_gw, "payments: shard \"eu_1\" directory: ");
        if (!loaded) {
            msleep(100);
        }
    }

    cr_assert_eq(loaded, 1, "no first load of the directory in %s",
                 dir_gw.error_log);
    cr_expect_eq(log_count(&dir_gw, "(its first load)"), 1);
    cr_expect_eq(log_count(&dir_gw, "directory: 0 entries read"), 0);

    /* a key made before the start: the directory's shard answers, no
     * shard is asked about it otherwise */
    r = gateway_send(&dir_gw, "GET", "/v1/checkouts/none_such", &m, NULL,
                     NULL);
    cr_expect_eq(r->status, 404, "%ld %s", r->status, r->body);
    resp_free(r);

    cr_expect_eq(key_lines("API key \"%s\" found on shard", m.key_id), 0);
    cr_expect_eq(key_lines("unknown or revoked API key \"%s\"", m.key_id),
                 0);

    /* a merchant made after the start works at once: asked of every
     * shard, then remembered (the next request asks no shard) */
    merchant_new(&fresh);

    co_id = uid("co");
    r = gateway_send(&dir_gw, "POST", PATH_PAYMENTS, &fresh, uid("key"),
                     body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    cr_expect_eq(key_lines("API key \"%s\" found on shard \"eu_1\" by "
                           "asking every shard", fresh.key_id), 1);

    /* past the auth cache: the directory now has it */
    msleep(1200);

    r = gateway_send(&dir_gw, "GET", str_printf("/v1/checkouts/%s", co_id),
                     &fresh, NULL, NULL);
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    cr_expect_eq(key_lines("API key \"%s\" found on shard", fresh.key_id),
                 1, "asked every shard again for a key the directory has");

    /* revoked: its own shard says no such key, 401, and no other shard
     * is asked */
    cr_assert_eq(merchant_tool("revoke-key", "--key-id", fresh.key_id, NULL),
                 0);
    msleep(1200);

    r = gateway_send(&dir_gw, "GET", str_printf("/v1/checkouts/%s", co_id),
                     &fresh, NULL, NULL);
    cr_expect_eq(r->status, 401, "%ld %s", r->status, r->body);
    resp_free(r);

    cr_expect_eq(key_lines("unknown or revoked API key \"%s\"",
                           fresh.key_id), 1);
    cr_expect_eq(key_lines("API key \"%s\" is unknown to every shard",
                           fresh.key_id), 0);

    /* a key no shard has: every shard asked once, then the worker keeps
     * the answer for payments_auth_cache */
    unknown = m;
    memcpy(unknown.key + strlen("mk_test_"), "Zz0unknown00", 12);
    memcpy(unknown.key_id, "Zz0unknown00", 12);
    unknown.key_id[12] = '\0';

    for (i = 0; i < 3; i++) {
        r = gateway_send(&dir_gw, "GET", "/v1/checkouts/none_such",
                         &unknown, NULL, NULL);
        cr_expect_eq(r->status, 401, "%ld %s", r->status, r->body);
        resp_free(r);
    }

    cr_expect_eq(key_lines("API key \"%s\" is unknown to every shard, ",
                           unknown.key_id), 1,
                 "the shards asked more than once about one unknown key");

    /* and /metrics counts the same: the unknown key missed once (then the
     * worker's cache answered), the fresh one found by asking */
    cr_expect_gt(gateway_metric(&dir_gw, "payments_shard_directory_entries"),
                 0);
    cr_expect_eq(gateway_metric(&dir_gw, "payments_shard_directory_"
                                "lookups_total{result=\"miss_none\"}"), 1);
    cr_expect_eq(gateway_metric(&dir_gw, "payments_shard_directory_"
                                "lookups_total{result=\"miss_found\"}"), 1);
    cr_expect_gt(gateway_metric(&dir_gw, "payments_shard_directory_"
                                "lookups_total{result=\"hit\"}"), 0);
    cr_expect_eq(gateway_metric(&dir_gw, "payments_shard_directory_"
                                "conflicts_total"), 0);
    cr_expect_eq(key_lines("API key \"%s\" is unknown to every shard "
                           "(this worker asked", unknown.key_id), 2);

    /* a reload's workers load the shard again into the same table: what
     * the first load put there (m and its key at least) is not new */
    gateway_reload(&dir_gw, "refresh=60s", "refresh=59s");

    for (i = 0; i < 50 && log_count(&dir_gw, "(its first load)") < 2; i++) {
        msleep(100);
    }

    {
        int          nread, nnew;
        char        *text;
        size_t       len;
        const char  *p, *last;

        text = file_read(dir_gw.error_log, &len);
        cr_assert_not_null(text);

        last = NULL;
        for (p = text; (p = strstr(p, "directory: ")) != NULL; p++) {
            if (strstr(p, "(its first load)") != NULL) {
                last = p;
            }
        }

        cr_assert_not_null(last);
        cr_assert_eq(log_count(&dir_gw, "(its first load)"), 2,
                     "the reload's worker did not load the shard");
        cr_assert_eq(sscanf(last, "directory: %d entries read, %d new",
                            &nread, &nnew), 2, "%.80s", last);
        cr_expect_leq(nnew, nread - 2, "the reload made a new table: %.80s",
                      last);
    }
}


/*
 * A key not in the directory while its shard does not answer (here the
 * only shard, which nothing listens for): 503 store_unavailable, as with
 * payments_database, never 401 (the key may be on that shard), and not
 * kept as unknown: the next request asks again.
 */
Test(shard_dir, a_key_no_shard_could_be_asked_about_is_503_not_401)
{
    int          i;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    cr_assert_eq(setenv("PAY_TEST_ERROR_LOG_LEVEL", "info", 1), 0);

    gateway_start(&dir_gw, "shard_dir_down", 1, str_printf(
        "payments_shard eu_1 \"hostaddr=127.0.0.1 port=%ld dbname=payments "
        "user=payments_gateway connect_timeout=2\" pool=1 timeout=1s;\n"
        "payments_sweeper off;\n%s",
        free_port(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    for (i = 0; i < 2; i++) {
        r = gateway_send(&dir_gw, "GET", "/v1/checkouts/none_such", &m, NULL,
                         NULL);
        expect_problem(r, 503, "store_unavailable");
        cr_expect_not_null(resp_header(r, "Retry-After"));
        resp_free(r);
    }

    cr_expect_eq(log_count(&dir_gw, "is unknown to every shard"), 0);
    cr_expect_eq(log_count(&dir_gw, "unknown or revoked API key"), 0);
    cr_expect_eq(gateway_metric(&dir_gw, "payments_shard_directory_"
                                "lookups_total{result=\"miss_unavailable\"}"),
                 2);
}
