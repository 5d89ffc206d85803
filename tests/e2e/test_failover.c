/*
 * End to end: database fail-over (issue 15, item 4).  A second gateway is
 * started by the test, its payments_database naming two hosts: a dead one
 * first (127.0.0.1 port 1, refused) and the suite's PostgreSQL second.
 * libpq tries the first host, closes its socket and opens another for the
 * second one inside one PQconnectPoll step, usually under the same
 * descriptor number: the module must follow the new socket, or the pool
 * never connects ("connect timed out", forever).
 *
 * The second gateway is a minimal nginx of its own (payments_database is an
 * http-level directive, one pool per worker): its own directory under the
 * run directory, one worker, the suite's PostgreSQL, mock PSP, secrets and
 * certificate (gateway_start).  Its logs are RUN/logs/failover-*.log,
 * which ci/log-scan.sh searches too.  The test stops it when it ends.
 */

#include "harness.h"


static gateway_t  failover;


static void
stop_gateway(void)
{
    gateway_stop(&failover);
}


TestSuite(db_failover, .timeout = E2E_TIMEOUT, .fini = stop_gateway);


Test(db_failover, a_dead_first_host_fails_over_to_the_second)
{
    int          i, ready;
    char        *origin, *co_id;
    resp_t      *r;
    json_t      *j;
    merchant_t   m;

    merchant_new(&m);

    gateway_start(&failover, "failover", 1, str_printf(
        "payments_database \"hostaddr=127.0.0.1,127.0.0.1 port=1,%ld "
        "dbname=payments user=payments_gateway\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s",
        pg_port(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
    origin = failover.origin;

    /*
     * Connection refused on port 1 takes microseconds; the second host
     * accepts at once.  The pool's connect timeout is 5 s: 10 s without a
     * connection is the bug.
     */
    ready = 0;

    for (i = 0; i < 100 && !ready; i++) {
        r = http_get(str_printf("%s/readyz", origin));
        ready = (r->status == 200);
        resp_free(r);

        if (!ready) {
            msleep(100);
        }
    }

    cr_assert(ready, "the gateway never connected to the second host "
              "(see RUN/logs/failover-<pid>-error.log)");

    /* a registration and a read, both through the second host */
    co_id = uid("co");
    r = gateway_send(&failover, "POST", PATH_PAYMENTS, &m, uid("key"),
                body_for(co_id));
    cr_assert_eq(r->status, 201, "registration: %ld (%s) %s", r->status,
                 r->error, r->body);
    j = resp_json(r);
    secret_used(json_string_value(json_object_get(j, "psp_token")));
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    r = gateway_send(&failover, "GET", str_printf("/v1/checkouts/%s", co_id), &m,
                NULL, NULL);
    cr_assert_eq(r->status, 200, "GET checkout: %ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING", "%s", r->body);

    /* and the store holds it */
    cr_assert_str_eq(db_scalar("SELECT status::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, (const char *[]) { m.id, co_id }),
                     "EXECUTING");
}
