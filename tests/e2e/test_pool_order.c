/*
 * End to end: the order in which a worker's database pool serves queries.
 *
 * Queries wait for a connection first come, first served, and a
 * connection goes to the query waiting longest as soon as its answer is
 * read, before that answer's handler runs: the server starts on the next
 * query at once, and a query the handler sends next (a request's next
 * step) waits its turn behind those queued before it.  A gateway of the
 * test's own with one database connection; tables locked by this test's
 * open transactions hold its queries.  A solo suite: the locks would hold
 * up every other test.
 */

#include "harness.h"

#include <pthread.h>


static gateway_t  order_gw;


static void
stop_order(void)
{
    gateway_stop(&order_gw);
}


TestSuite(solo_pool_order, .timeout = 60, .fini = stop_order);


typedef struct {
    const merchant_t  *m;         /* NULL: GET /readyz, no credentials */
    resp_t            *resp;
    volatile int       done;
} call_t;


static void *
call_run(void *arg)
{
    call_t  *c = arg;

    c->resp = c->m != NULL
              ? gateway_send(&order_gw, "GET", "/v1/checkouts/co_order", c->m,
                             NULL, NULL)
              : gateway_get(&order_gw, "/readyz");
    c->done = 1;

    return NULL;
}


/* Waits up to ms for c to be answered: 1 when it was. */
static int
call_wait(const call_t *c, int ms)
{
    int  i;

    for (i = 0; i < ms / 20 && !c->done; i++) {
        msleep(20);
    }

    return c->done;
}


Test(solo_pool_order,
     a_waiting_query_goes_before_the_next_query_of_the_request_just_answered,
     .description = "the one connection, freed by a request's first query "
                    "(its key's look-up), serves the query that waited for "
                    "it before that request's second query (the checkout's "
                    "read)")
{
    PGconn      *keys, *checkouts;
    call_t       a = { 0 }, b = { 0 };
    pthread_t    ta, tb;
    merchant_t   m;

    gateway_start(&order_gw, "order", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_database_timeout 5s;\n"
        "payments_sweeper off;\n"
        "%s",
        pg_gateway_conninfo(), gw_psp_conf("order_stripe", "stripe")));
    gateway_wait_ready(&order_gw, 10);

    /* a merchant this gateway has never seen: its key is looked up first */
    merchant_new(&m);

    keys = db_lock_table("api_keys");
    checkouts = db_lock_table("checkouts");

    /* A's look-up runs on the one connection, held by the lock on api_keys */
    a.m = &m;
    cr_assert_eq(pthread_create(&ta, NULL, call_run, &a), 0);
    msleep(300);

    /* B's query (pay_schema_version) waits for the connection */
    cr_assert_eq(pthread_create(&tb, NULL, call_run, &b), 0);
    msleep(300);
    cr_assert(!a.done && !b.done, "a query was not held");

    /* A's look-up answered: A's next query reads checkouts, still locked */
    db_unlock(keys);

    cr_expect(call_wait(&b, 3000),
              "the waiting /readyz was not served while the answered "
              "request's next query is held: that query took the "
              "connection before it");
    cr_expect(!a.done, "the checkout's read was not held by the lock");

    db_unlock(checkouts);
    cr_assert(call_wait(&a, 5000), "the checkout's read never ended");
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    cr_expect_eq(b.resp->status, 200, "/readyz: %ld %s", b.resp->status,
                 b.resp->body ? b.resp->body : "");
    cr_expect_eq(a.resp->status, 404, "the unknown checkout: %ld %s",
                 a.resp->status, a.resp->body ? a.resp->body : "");
}
