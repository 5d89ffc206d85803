/*
 * End to end: one payments_shard serves as payments_database does (a
 * gateway of its own on the suite's PostgreSQL and mock PSP, 2 workers):
 * ready with today's /readyz body, a checkout registered and read back,
 * the shard's own pool= in every worker, and no shard label in /metrics
 * (labels come only with several shards, which nginx -t refuses to serve
 * until routing over them is built: test_config.c).
 */

#include "harness.h"


static gateway_t  one_shard;


static void
stop_one_shard(void)
{
    gateway_stop(&one_shard);
}


TestSuite(shard_one, .timeout = E2E_TIMEOUT, .fini = stop_one_shard);


Test(shard_one, a_single_named_shard_serves_as_payments_database)
{
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
}
