/*
 * PostgreSQL unreachable (API.md: 503 store_unavailable with Retry-After,
 * never passes through unguarded).  These tests stop the test cluster: as
 * every suite named solo_..., ci/e2e.sh runs them alone, one at a time,
 * after all the others, and each test restarts PostgreSQL when it ends,
 * failed or not.
 */

#include <stdlib.h>
#include <string.h>

#include "harness.h"


static void
restore(void)
{
    pg_start();
    cr_assert(gw_wait_ready(200, 30),
              "the gateway is not ready 30 s after PostgreSQL came back");
}


TestSuite(solo_store_down, .timeout = E2E_TIMEOUT, .fini = restore);


Test(solo_store_down, a_registration_is_503_store_unavailable_without_a_psp_call)
{
    long         sessions, requests, retry;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;
    const char  *ra;

    merchant_new(&m);
    co_id = uid("co");
    pg_stop();

    r = api_post(&m, uid("key"), body_for(co_id));
    expect_problem(r, 503, "store_unavailable");

    ra = resp_header(r, "Retry-After");
    cr_assert_not_null(ra, "503 store_unavailable needs Retry-After");
    retry = strtol(ra, NULL, 10);
    cr_assert(retry >= 1, "Retry-After: %s", ra);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 0, "the PSP was called with the store down");
    cr_assert_eq(sessions, 0);
}


Test(solo_store_down, a_view_is_503_store_unavailable)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    pg_stop();

    r = api_get(&m, str_printf("/v1/checkouts/%s", uid("co")));
    expect_problem(r, 503, "store_unavailable");
    cr_assert_not_null(resp_header(r, "Retry-After"));
}


Test(solo_store_down, readyz_is_503_while_healthz_stays_200)
{
    resp_t  *r;

    pg_stop();

    cr_assert(gw_wait_ready(503, 10), "/readyz did not turn 503");

    r = gw_get("/healthz");
    cr_assert_eq(r->status, 200, "/healthz: %ld", r->status);
}


Test(solo_store_down, registrations_work_again_once_postgres_is_back)
{
    char        *co_id, *key;
    resp_t      *r;
    merchant_t   m;
    int          i;

    merchant_new(&m);
    pg_stop();

    co_id = uid("co");
    r = api_post(&m, uid("key"), body_for(co_id));
    cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);

    restore();

    /* /readyz answered from one worker; the other reconnects on its own
     * back-off (500 ms).  A client does what the 503 says, retries with
     * the same key: within 5 s, the registration is made. */
    key = uid("key");
    for (i = 0; i < 25; i++) {
        r = api_post(&m, key, body_for(co_id));
        if (r->status != 503) {
            break;
        }
        resp_free(r);
        msleep(200);
    }
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
}


/*
 * Every route a merchant calls, reads and writes alike, answers 503
 * store_unavailable with Retry-After while PostgreSQL is down: none of
 * them passes a request through, answers from a cache, or hangs.
 */
Test(solo_store_down, every_merchant_route_is_503_store_unavailable)
{
    size_t        i;
    resp_t       *r;
    merchant_t    m;
    const char   *h[4];
    static const struct { const char *method, *path, *body; } routes[] = {
        { "GET",  "/v1/checkouts", NULL },
        { "GET",  "/v1/payments", NULL },
        { "GET",  "/v1/refunds", NULL },
        { "GET",  "/v1/payouts", NULL },
        { "GET",  "/v1/events", NULL },
        { "GET",  "/v1/notifications", NULL },
        { "GET",  "/v1/webhook_endpoints", NULL },
        { "POST", "/v1/webhook_endpoints",
          "{\"url\":\"https://shop.example/hooks\"}" },
        { "GET",  "/v1/sellers/seller_1/balance", NULL },
        { "GET",  "/v1/payments/po_down", NULL },
        { "GET",  "/v1/payouts/pyo_down", NULL },
        { "POST", "/v1/notifications/msg_down/replay", "{}" },
        { "POST", "/v1/webhook_endpoints/we_down/disable", "{}" },
        { "POST", "/v1/webhook_endpoints/we_down/rotate_secret", "{}" },
        { "POST", "/v1/payments/po_down/refunds", "{\"amount\":\"1.00\"}" },
        { "POST", "/v1/payouts",
          "{\"seller_account\":\"seller_1\",\"amount\":\"1.00\","
          "\"currency\":\"USD\",\"psp\":\"stripe\"}" },
    };

    merchant_new(&m);
    pg_stop();

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        h[0] = str_printf("Authorization: Bearer %s", m.key);
        h[1] = "Content-Type: application/json";
        h[2] = str_printf("Idempotency-Key: %s", uid("key"));
        h[3] = NULL;

        r = http(&(req_t) { routes[i].method, gw_url(routes[i].path), h,
                            routes[i].body, (size_t) -1 });
        cr_expect_eq(r->status, 503, "%s %s: %ld %s", routes[i].method,
                     routes[i].path, r->status, r->body);
        if (r->status == 503) {
            expect_problem(r, 503, "store_unavailable");
            cr_expect_not_null(resp_header(r, "Retry-After"), "%s %s",
                               routes[i].method, routes[i].path);
        }
    }
}
