/*
 * A new worker's pool: its first connections are still opening when the
 * worker takes its first requests (at a start, and at every reload, whose
 * new workers take requests at once).  Those requests wait for them,
 * within the database's timeout=, rather than being answered 503 as if
 * the database were down; a database that refuses the connection is
 * still answered at once.  The database is reached through a slow door
 * (pg_slow_door): a server slow to let a connection in.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static gateway_t  pool_gw;

static void
pool_stop(void)
{
    gateway_stop(&pool_gw);
}

TestSuite(pool_start, .timeout = E2E_TIMEOUT, .fini = pool_stop);


/* a gateway of one worker whose database is at port, through nothing else */
static void
pool_start_gw(long port, const char *timeout)
{
    gateway_start(&pool_gw, "pool-start", 1, str_printf(
        "payments_database \"hostaddr=127.0.0.1 port=%ld dbname=payments "
        "user=payments_gateway\";\n"
        "payments_database_pool 2;\n"
        "payments_database_timeout %s;\n"
        "payments_sweeper off;\n%s",
        port, timeout, gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));
}


Test(pool_start, a_new_workers_first_requests_wait_for_its_first_connections)
{
    long         t0, took;
    char        *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");

    /* each connection is let in 1.5 s after it knocks */
    pool_start_gw(pg_slow_door(1500), "4s");

    t0 = ms_now();
    r = gateway_send(&pool_gw, "POST", "/v1/payments", &m, uid("key"),
                     body_for(co));
    took = ms_now() - t0;

    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    /* it was taken while the pool still connected: it waited for the door */
    cr_expect_geq(took, 300, "answered in %ld ms: the pool was up already",
                  took);
}


Test(pool_start, a_first_connection_slower_than_the_timeout_is_503_within_it)
{
    long         t0, took;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    /* let in after 8 s; the gateway waits 1 s for its database */
    pool_start_gw(pg_slow_door(8000), "1s");

    t0 = ms_now();
    r = gateway_send(&pool_gw, "POST", "/v1/payments", &m, uid("key"),
                     body_for(uid("co")));
    took = ms_now() - t0;

    expect_problem(r, 503, "store_unavailable");
    cr_assert_not_null(resp_header(r, "Retry-After"));
    cr_expect_lt(took, 5000, "answered after %ld ms, not within timeout=1s",
                 took);
}


Test(pool_start, a_database_that_refuses_the_first_connections_is_503_at_once)
{
    long         t0, took;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    /* nothing listens there: each connect is refused at once */
    pool_start_gw(free_port(), "4s");

    t0 = ms_now();
    r = gateway_send(&pool_gw, "POST", "/v1/payments", &m, uid("key"),
                     body_for(uid("co")));
    took = ms_now() - t0;

    expect_problem(r, 503, "store_unavailable");
    cr_expect_lt(took, 3000, "answered after %ld ms, not at once", took);
}
