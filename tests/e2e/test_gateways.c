/*
 * End to end: several gateways, one database (issue 9, part 3).  The
 * suite's gateway and a second one (gateway_start: its own nginx, the same
 * PostgreSQL and mock PSP, the same PSP under the same name) keep every
 * guarantee together: one registration per checkout under a duplicate-key
 * storm split over both, one booking for a webhook delivered to both at
 * once.  (The sweeper's single runner: test_sweeper.c.)  Each gateway
 * keeps its own rate-limit zones: shared memory is per nginx.
 */

#include "harness.h"

#include <time.h>


static gateway_t  second;


static void
stop_second(void)
{
    gateway_stop(&second);
}


static void
start_second(void)
{
    gateway_start(&second, "second", 2, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 4;\n"
        "payments_sweeper off;\n%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&second, 10);
}


TestSuite(two_gateways, .timeout = E2E_TIMEOUT, .fini = stop_second);


Test(two_gateways, a_duplicate_key_storm_split_over_both_registers_once)
{
    size_t        i, n, created, busy;
    long          sessions, requests;
    char         *co_id, *key, *body, *token;
    req_t         rqs[40];
    resp_t      **rs;
    json_t       *j;
    merchant_t    m;
    const char   *h[4];
    const char   *tok;

    merchant_new(&m);
    start_second();

    co_id = uid("co");
    key = uid("key");
    body = body_for(co_id);

    h[0] = str_printf("Authorization: Bearer %s", m.key);
    h[1] = "Content-Type: application/json";
    h[2] = str_printf("Idempotency-Key: %s", key);
    h[3] = NULL;

    n = sizeof(rqs) / sizeof(rqs[0]);

    for (i = 0; i < n; i++) {
        rqs[i].method = "POST";
        rqs[i].url = (i % 2) ? str_printf("%s%s", second.origin, PATH_PAYMENTS)
                             : gw_url(PATH_PAYMENTS);
        rqs[i].headers = h;
        rqs[i].body = body;
        rqs[i].len = (size_t) -1;
    }

    rs = http_many(rqs, n, n);

    created = 0;
    busy = 0;
    token = NULL;

    for (i = 0; i < n; i++) {
        if (rs[i]->status == 409) {
            busy++;
            continue;
        }

        cr_assert_eq(rs[i]->status, 201, "answer %zu: %ld %s", i,
                     rs[i]->status, rs[i]->body);
        created++;

        j = resp_json(rs[i]);
        tok = json_string_value(json_object_get(j, "psp_token"));
        cr_assert_not_null(tok);

        if (token == NULL) {
            token = strdup(tok);
            secret_used(token);

        } else {
            cr_assert_str_eq(tok, token, "two sessions for one checkout");
        }
    }

    cr_assert_geq(created, 1);
    cr_assert_eq(created + busy, n);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1, "sessions at the PSP: %ld", sessions);

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkouts "
                               "WHERE merchant_id = $1", 1,
                               (const char *[]) { m.id }),
                     "1");
}


/* mk = { merchant, Idempotency-Key }: its idempotency_keys rows */
static char *
key_rows(const char *const *mk)
{
    return db_scalar("SELECT count(*) FROM idempotency_keys WHERE "
                     "merchant_id = $1 AND idem_key = $2", 2, mk);
}


/* Worker 0 purges the keys past their TTL a second after it starts (then
 * every minute); a key purged is a new request, and its checkout id still
 * keeps the payment from a second session. */
Test(two_gateways, a_starting_gateway_purges_the_keys_past_their_ttl)
{
    int          i;
    char        *co_id, *expired, *live;
    long         sessions, requests;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    co_id = uid("co");
    expired = uid("key");
    live = uid("key");
    (void) register_ok(&m, expired, body_for(co_id));
    (void) register_ok(&m, live, body_for(uid("co")));

    p[0] = m.id;
    p[1] = expired;
    db_exec("UPDATE idempotency_keys SET expires_at = now() - interval '1 s' "
            "WHERE merchant_id = $1 AND idem_key = $2", 2, p);

    start_second();

    for (i = 0; i < 100; i++) {
        if (strcmp(key_rows(p), "0") == 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_lt(i, 100, "the key past its TTL is still there after 10 s");

    /* the key within its TTL stays */
    p[1] = live;
    cr_expect_str_eq(key_rows(p), "1");

    /* the purged key again, same body: a new request, refused by the
     * checkout id (no second session at the PSP) */
    r = api_post(&m, expired, body_for(co_id));
    cr_expect_eq(r->status, 409, "%ld %s", r->status, r->body);
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_expect_eq(sessions, 1, "sessions at the PSP: %ld", sessions);
}


Test(two_gateways, a_webhook_delivered_to_both_at_once_books_once)
{
    size_t       i;
    char        *co_id, *token, *evt, *ev, *sig, *secret;
    req_t        rqs[10];
    resp_t      *r, **rs;
    json_t      *j;
    merchant_t   m;
    const char  *h[3];
    const char  *p[2];

    merchant_new(&m);
    start_second();

    co_id = uid("co");
    r = register_ok(&m, uid("key"), body_for(co_id));
    j = resp_json(r);
    token = strdup(json_string_value(json_object_get(j, "psp_token")));

    evt = uid("evt");
    ev = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                    "\"type\":\"checkout.session.completed\","
                    "\"created\":%ld,\"livemode\":false,\"data\":{\"object\":"
                    "{\"id\":\"%s\",\"object\":\"checkout.session\","
                    "\"client_reference_id\":\"%s:%s\",\"amount_total\":1500,"
                    "\"currency\":\"usd\",\"payment_status\":\"paid\","
                    "\"status\":\"complete\"}}}",
                    evt, (long) time(NULL), token, m.id, co_id);

    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), NULL);
    cr_assert_not_null(secret);
    sig = stripe_signature(secret, (long) time(NULL), ev);

    h[0] = "Content-Type: application/json";
    h[1] = sig;
    h[2] = NULL;

    for (i = 0; i < 10; i++) {
        rqs[i].method = "POST";
        rqs[i].url = str_printf("%s/v1/webhooks/%s",
                                (i % 2) ? second.origin : gw_url(""),
                                env("PAY_TEST_PSP"));
        rqs[i].headers = h;
        rqs[i].body = ev;
        rqs[i].len = (size_t) -1;
    }

    rs = http_many(rqs, 10, 10);

    for (i = 0; i < 10; i++) {
        cr_assert_eq(rs[i]->status, 200, "delivery %zu: %ld %s", i,
                     rs[i]->status, rs[i]->body);
    }

    p[0] = m.id;
    p[1] = co_id;

    cr_assert_str_eq(db_scalar("SELECT status::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "SUCCESS");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "2", "one transaction per order, once");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE event_id = $1", 1,
                               (const char *[]) { evt }),
                     "1");
    cr_assert_str_eq(db_scalar("SELECT coalesce(sum(balance), 0) FROM wallets "
                               "WHERE merchant_id = $1", 1, p),
                     "1500");
}
