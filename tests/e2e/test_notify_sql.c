/*
 * The notifications outbox's rules (sql/functions/notify_enqueue.sql,
 * pay_notify_*.sql, the *_notify triggers in sql/schema.sql,
 * doc/NOTIFICATIONS.md), proven against a real PostgreSQL through
 * PAY_TEST_PG (a superuser; the tests skip without it).
 *
 * Solo, with the suite's gateway stopped: its notification workers claim
 * due rows too (payments_notify on), and these tests lease rows themselves.
 *
 * Every test makes its own merchant and asserts only on that merchant's rows.
 * pay_notify_claim takes every merchant's due rows, so the tests that claim
 * (or that read attempts and leases) hold one advisory lock for their whole
 * run: they never lease each other's rows, and each filters the claim's
 * answer by its merchant.  Rows of the other tests that such a claim leases
 * are never asserted on by their owners (those only count rows and read
 * payloads).
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sqltest.h"
#include <payments/notify.h>

#define CLAIM_LOCK  "SELECT pg_advisory_lock(4013013)"


static void
nsql_init(void)
{
    suite_gateway_stop();
}


static void
nsql_fini(void)
{
    suite_gateway_start();
}


TestSuite(solo_notify_sql, .init = nsql_init, .fini = nsql_fini);

/* A fresh merchant "n_" + 18 hex. */
static void
nnew_merchant(PGconn *c, char id[24])
{
    id[0] = 'n';
    id[1] = '_';
    sqlt_random_hex(id + 2, 18);
    OK(c, "INSERT INTO merchants (merchant_id, name, mode) VALUES ($1, 'test', 'test')", id);
}

/* An endpoint of m; events "{}" for every type.  ep gets its id. */
static void
new_endpoint(PGconn *c, const char *m, const char *events, char ep[28])
{
    strcpy(ep, "ep_");
    sqlt_random_hex(ep + 3, 24);
    OK(c, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
          " secret_sealed) VALUES ($1, $2, 'https://shop.example/hooks', 'shop.example',"
          " $3::text[], 'v1.k.sealed-' || $2)", m, ep, events);
}

/* A checkout co of m, EXECUTING, orders <co>_1 (1000, line 1) and <co>_2
 * (500, line 2), inserted line 2 first. */
static void
new_checkout(PGconn *c, const char *m, const char *co)
{
    OK(c, "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total,"
          " success_url, cancel_url, status, psp_request, expires_at)"
          " VALUES ($1, $2, 'mock', $1 || ':' || $2, 'EUR', 1500, 'https://shop.example/s',"
          " 'https://shop.example/c', 'EXECUTING', 'r', now() + interval '1 hour')", m, co);
    OK(c, "INSERT INTO payment_orders (merchant_id, payment_order_id, checkout_id, line_no,"
          " seller_account, amount, currency, status)"
          " VALUES ($1, $2 || '_2', $2, 2, 's1', 500, 'EUR', 'EXECUTING'),"
          "        ($1, $2 || '_1', $2, 1, 's1', 1000, 'EUR', 'EXECUTING')", m, co);
}

/* The checkout paid as the webhook does it: the checkout row first (twice),
 * then its orders, in one transaction. */
static void
pay_checkout(PGconn *c, const char *m, const char *co)
{
    OK0(c, "BEGIN");
    OK(c, "UPDATE checkouts SET status = 'SUCCESS' WHERE merchant_id = $1 AND checkout_id = $2", m, co);
    OK(c, "UPDATE checkouts SET updated_at = now() WHERE merchant_id = $1 AND checkout_id = $2", m, co);
    OK(c, "UPDATE payment_orders SET status = 'SUCCESS', ledger_updated = true, wallet_updated = true"
          " WHERE merchant_id = $1 AND checkout_id = $2", m, co);
    OK0(c, "COMMIT");
}

static void
new_refund(PGconn *c, const char *m, const char *co, char rf[28])
{
    strcpy(rf, "rf_");
    sqlt_random_hex(rf + 3, 24);
    OK(c, "INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id, psp, nonce,"
          " amount, currency, status) VALUES ($1, $3, $2, $2 || '_1', 'mock', $1 || ':' || $3,"
          " 100, 'EUR', 'PENDING')", m, co, rf);
}

static void
new_dispute(PGconn *c, const char *m, const char *co, char dp[28])
{
    strcpy(dp, "dp_");
    sqlt_random_hex(dp + 3, 24);
    OK(c, "INSERT INTO disputes (merchant_id, dispute_id, psp, psp_dispute_ref, checkout_id,"
          " amount, currency, status) VALUES ($1, $3, 'mock', 'ref_' || $3, $2, 200, 'EUR', 'OPEN')",
       m, co, dp);
}

static void
new_payout(PGconn *c, const char *m, char pyo[32])
{
    strcpy(pyo, "pyo_");
    sqlt_random_hex(pyo + 4, 24);
    OK(c, "INSERT INTO sellers (merchant_id, seller_account, psp, destination)"
          " VALUES ($1, 's1', 'mock', 'acct_1') ON CONFLICT DO NOTHING", m);
    OK(c, "SELECT wallet_add($1, 's1', 'EUR', 1000)", m);
    OK(c, "INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination, nonce,"
          " amount, currency, status) VALUES ($1, $2, 's1', 'mock', 'acct_1', $1 || ':' || $2,"
          " 300, 'EUR', 'PENDING')", m, pyo);
}

static const char *
count_of(PGconn *c, const char *m)
{
    return VAL(c, "SELECT count(*) FROM notifications WHERE merchant_id = $1", m);
}

/* How many of m's rows a claim by owner (limit 10000) leased. */
static long
claim_mine(PGconn *c, const char *owner, const char *lease_ms, const char *m)
{
    return atol(VAL(c, "SELECT count(*) FROM pay_notify_claim($1, 1000, $2::int, 1000) WHERE merchant_id = $3",
                    owner, lease_ms, m));
}

/* ---- the outbox writes ---------------------------------------------------- */

Test(solo_notify_sql, every_event_type_commits_its_notification,
     .description = "each status change writes one notification per subscribed endpoint, with its payload")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28], ep2[28], rf[28], rf2[28], dp[28], dp2[28], pyo[32], pyo2[32];

    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);
    new_endpoint(c, m, "{checkout.succeeded}", ep2);

    new_checkout(c, m, "co_1");
    pay_checkout(c, m, "co_1");
    /* one per endpoint, once although the checkout row was updated twice,
     * and the orders' final statuses in line order */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notifications WHERE merchant_id = $1"
                            " AND event_type = 'checkout.succeeded'", m), "2");
    cr_expect_str_eq(VAL(c, "SELECT count(DISTINCT payload) FROM notifications WHERE merchant_id = $1", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT payload::jsonb -> 'data' FROM notifications WHERE merchant_id = $1"
                            " AND endpoint_id = $2", m, ep),
                     VAL(c, "SELECT jsonb_build_object('checkout_id', 'co_1', 'status', 'SUCCESS',"
                            " 'amount_total_minor', 1500, 'amount_total', '15.00', 'currency', 'EUR',"
                            " 'merchant_id', $1::text, 'sequence', 1, 'metadata', '{}'::jsonb, 'capture', 'automatic',"
                            " 'payment_orders', jsonb_build_array("
                            "  jsonb_build_object('payment_order_id', 'co_1_1', 'status', 'SUCCESS',"
                            "                     'amount_minor', 1000, 'amount', '10.00', 'currency', 'EUR'),"
                            "  jsonb_build_object('payment_order_id', 'co_1_2', 'status', 'SUCCESS',"
                            "                     'amount_minor', 500, 'amount', '5.00', 'currency', 'EUR')))::text", m));
    cr_expect_str_eq(VAL(c, "SELECT (payload::jsonb ->> 'type') || ' ' ||"
                            " ((payload::jsonb ->> 'timestamp') ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$')"
                            " FROM notifications WHERE merchant_id = $1 AND endpoint_id = $2", m, ep),
                     "checkout.succeeded true");

    /* checkout.failed */
    new_checkout(c, m, "co_2");
    OK0(c, "BEGIN");
    OK(c, "UPDATE checkouts SET status = 'FAILED' WHERE merchant_id = $1 AND checkout_id = 'co_2'", m);
    OK(c, "UPDATE payment_orders SET status = 'FAILED' WHERE merchant_id = $1 AND checkout_id = 'co_2'", m);
    OK0(c, "COMMIT");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(o ->> 'status', ',') FROM notifications n,"
                            " jsonb_array_elements(n.payload::jsonb -> 'data' -> 'payment_orders') o"
                            " WHERE n.merchant_id = $1 AND n.event_type = 'checkout.failed'", m),
                     "FAILED,FAILED");

    /* refunds */
    new_refund(c, m, "co_1", rf);
    cr_expect_str_eq(count_of(c, m), "3");
    OK(c, "UPDATE refunds SET status = 'SUCCEEDED', commission_part = 0 WHERE merchant_id = $1 AND refund_id = $2", m, rf);
    cr_expect_str_eq(VAL(c, "SELECT checkout_id || ' ' || object_id || ' ' || (payload::jsonb -> 'data' ->> 'amount_minor')"
                            " || ' ' || (payload::jsonb -> 'data' ->> 'payment_order_id')"
                            " FROM notifications WHERE merchant_id = $1 AND event_type = 'refund.succeeded'", m),
                     VAL(c, "SELECT 'co_1 ' || $1::text || ' 100 co_1_1'", rf));
    new_refund(c, m, "co_1", rf2);
    OK(c, "UPDATE refunds SET status = 'FAILED', failure = 'refused' WHERE merchant_id = $1 AND refund_id = $2", m, rf2);
    cr_expect_str_eq(VAL(c, "SELECT payload::jsonb -> 'data' ->> 'failure' FROM notifications"
                            " WHERE merchant_id = $1 AND event_type = 'refund.failed'", m), "refused");

    /* disputes */
    new_dispute(c, m, "co_1", dp);
    cr_expect_str_eq(VAL(c, "SELECT object_id || ' ' || (payload::jsonb -> 'data' ->> 'status') FROM notifications"
                            " WHERE merchant_id = $1 AND event_type = 'dispute.opened'", m),
                     VAL(c, "SELECT $1::text || ' OPEN'", dp));
    OK(c, "UPDATE disputes SET status = 'WON' WHERE merchant_id = $1 AND dispute_id = $2", m, dp);
    new_dispute(c, m, "co_1", dp2);
    OK(c, "UPDATE disputes SET status = 'LOST' WHERE merchant_id = $1 AND dispute_id = $2", m, dp2);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(event_type || '=' || sequence, ',' ORDER BY created_at)"
                            " FROM notifications"
                            " WHERE merchant_id = $1 AND event_type LIKE 'dispute.%'", m),
                     "dispute.opened=1,dispute.won=2,dispute.opened=1,dispute.lost=2");

    /* pay-outs: no checkout, their own sequence */
    new_payout(c, m, pyo);
    OK(c, "UPDATE payouts SET status = 'PAID' WHERE merchant_id = $1 AND payout_id = $2", m, pyo);
    new_payout(c, m, pyo2);
    OK(c, "UPDATE payouts SET status = 'FAILED', failure = 'closed' WHERE merchant_id = $1 AND payout_id = $2", m, pyo2);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(event_type || ':' || coalesce(checkout_id, '-') || ':' || sequence"
                            " || ':' || (payload::jsonb -> 'data' ->> 'seller_account'), ',' ORDER BY event_type)"
                            " FROM notifications WHERE merchant_id = $1 AND event_type LIKE 'payout.%'", m),
                     "payout.failed:-:1:s1,payout.paid:-:1:s1");

    /* only the all-types endpoint got the others */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notifications WHERE merchant_id = $1 AND endpoint_id = $2", m, ep2), "1");
    cr_expect_str_eq(count_of(c, m), "11");
    PQfinish(c);
}

Test(solo_notify_sql, sequence_counts_per_object,
     .description = "data.sequence is 1, 2, 3, ... per object: a checkout, each refund, each dispute, each pay-out")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28], rf[28], dp[28], pyo[32];

    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);
    new_checkout(c, m, "co_a");
    new_checkout(c, m, "co_b");
    pay_checkout(c, m, "co_a");
    pay_checkout(c, m, "co_b");
    new_refund(c, m, "co_a", rf);
    OK(c, "UPDATE refunds SET status = 'SUCCEEDED', commission_part = 0 WHERE merchant_id = $1 AND refund_id = $2", m, rf);
    new_dispute(c, m, "co_a", dp);
    OK(c, "UPDATE disputes SET status = 'LOST' WHERE merchant_id = $1 AND dispute_id = $2", m, dp);
    new_payout(c, m, pyo);
    OK(c, "UPDATE payouts SET status = 'PAID' WHERE merchant_id = $1 AND payout_id = $2", m, pyo);

    cr_expect_str_eq(VAL(c, "SELECT string_agg(event_type || '=' || sequence || '/' || (payload::jsonb -> 'data' ->> 'sequence'),"
                            " ',' ORDER BY created_at) FROM notifications WHERE merchant_id = $1 AND checkout_id = 'co_a'", m),
                     "checkout.succeeded=1/1,refund.succeeded=1/1,dispute.opened=1/1,dispute.lost=2/2");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(subject || '=' || last, ',' ORDER BY subject)"
                            " FROM notify_sequences WHERE merchant_id = $1 AND subject LIKE 'checkout:%'", m),
                     "checkout:co_a=1,checkout:co_b=1");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(sequence::text, ',') FROM notifications"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_b'", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT sequence::text FROM notifications WHERE merchant_id = $1 AND object_id = $2", m, pyo), "1");
    PQfinish(c);
}

/*
 * The status triggers (checkouts_notify, the status guard) have no WHEN: a
 * trigger's condition is read back and prepared at every statement that
 * names one of its columns, which costs more than the call in the usual
 * case (bench/RESULTS.md).  Their functions test it first, so a status
 * named and left as it was, and a move that is not final (to REVIEW and
 * back), write nothing and move no updated_at.
 */
Test(solo_notify_sql, only_a_status_become_final_or_held_notifies,
     .description = "an update that names a checkout's status and leaves it, a move to REVIEW and back, write no notification (and the one left as it was keeps its updated_at); the move to SUCCESS writes one, and the same status named again after it none")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28], at[64];

    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);
    new_checkout(c, m, "co_1");
    snprintf(at, sizeof(at), "%s", VAL(c, "SELECT updated_at::text FROM checkouts"
                                          " WHERE merchant_id = $1", m));

    OK(c, "UPDATE checkouts SET status = status WHERE merchant_id = $1", m);
    OK(c, "UPDATE payment_orders SET status = status WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT updated_at::text FROM checkouts WHERE merchant_id = $1", m), at);
    cr_expect_str_eq(count_of(c, m), "0", "a status left as it was");

    OK(c, "UPDATE checkouts SET status = 'REVIEW' WHERE merchant_id = $1", m);
    OK(c, "UPDATE checkouts SET status = 'EXECUTING' WHERE merchant_id = $1", m);
    cr_expect_str_eq(count_of(c, m), "0", "a move to REVIEW and back");
    FAILS(c, "PY001", "UPDATE checkouts SET status = 'NOT_STARTED' WHERE merchant_id = $1", m);

    pay_checkout(c, m, "co_1");
    OK(c, "UPDATE checkouts SET status = status WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(event_type, ',') FROM notifications"
                            " WHERE merchant_id = $1", m), "checkout.succeeded");
    PQfinish(c);
}

Test(solo_notify_sql, rollback_and_unsubscribed_write_nothing,
     .description = "a rolled-back change, an unsubscribed type and a merchant without endpoints write no row")
{
    PGconn      *c = sqlt_connect();
    char         m[24], m2[24], ep[28], rf[28];

    nnew_merchant(c, m);
    new_endpoint(c, m, "{refund.succeeded}", ep);
    new_checkout(c, m, "co_1");

    /* rolled back: nothing, and no sequence taken */
    OK0(c, "BEGIN");
    OK(c, "UPDATE checkouts SET status = 'SUCCESS' WHERE merchant_id = $1", m);
    OK(c, "UPDATE payment_orders SET status = 'SUCCESS', ledger_updated = true, wallet_updated = true"
          " WHERE merchant_id = $1", m);
    OK0(c, "ROLLBACK");
    /* not subscribed to checkout.succeeded */
    pay_checkout(c, m, "co_1");
    cr_expect_str_eq(count_of(c, m), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notify_sequences WHERE merchant_id = $1", m), "0");

    /* a subscribed type, rolled back, then committed */
    new_refund(c, m, "co_1", rf);
    OK0(c, "BEGIN");
    OK(c, "UPDATE refunds SET status = 'SUCCEEDED', commission_part = 0 WHERE merchant_id = $1", m);
    /* written at the commit (the deferred refunds_notify); made to run now */
    cr_expect_str_eq(count_of(c, m), "0");
    OK0(c, "SET CONSTRAINTS refunds_notify IMMEDIATE");
    cr_expect_str_eq(count_of(c, m), "1");
    OK0(c, "ROLLBACK");
    cr_expect_str_eq(count_of(c, m), "0");
    OK(c, "UPDATE refunds SET status = 'SUCCEEDED', commission_part = 0 WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT event_type || ' ' || sequence FROM notifications WHERE merchant_id = $1", m),
                     "refund.succeeded 1");

    /* a merchant without endpoints */
    nnew_merchant(c, m2);
    new_checkout(c, m2, "co_1");
    pay_checkout(c, m2, "co_1");
    cr_expect_str_eq(count_of(c, m2), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notify_sequences WHERE merchant_id = $1", m2), "0");
    PQfinish(c);
}

/* ---- claim, record ----------------------------------------------------------- */

/* n notifications of m's endpoint ep, due since ago (an interval), written
 * directly. */
static void
rows_due(PGconn *c, const char *m, const char *ep, const char *n,
    const char *ago)
{
    OK(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
          " checkout_id, object_id, sequence, payload, next_at)"
          " SELECT $1, 'msg_' || substr(md5($2 || g), 1, 24), $2, 'checkout.succeeded',"
          " 'co' || g, 'co' || g, 1, '{}', now() - $4::interval"
          " FROM generate_series(1, $3::int) g", m, ep, n, ago);
}

Test(solo_notify_sql, one_endpoints_backlog_never_holds_the_others,
     .description = "each enabled endpoint gets its share of a claim, however many rows "
                    "another has due ahead of it, and a disabled endpoint's backlog is "
                    "not read (sql/functions/pay_notify_claim.sql)")
{
    PGconn      *c = sqlt_connect();
    char         a[24], b[24], d[24], q[24], epa[28], epb[28], epd[28], epq[28];
    long         before, fetched, waiting, leased;

    OK0(c, CLAIM_LOCK);
    /* rolled back at the end: nothing lingers for the gateway's notifier
     * (read committed: the claim may take, and lock, rows the main lane's
     * tests write meanwhile, which a snapshot of its own would refuse to
     * lock once the gateway's notifier had changed them) */
    OK0(c, "BEGIN");

    /* the statistics of a quiet outbox, every row delivered (autovacuum's
     * last ANALYZE before the backlogs below grew): the claim's plan must
     * not scan every PENDING row for each endpoint (an index of PENDING
     * rows by age it once chose, as cheap as its own while none was
     * PENDING: 25,653 index entries read) */
    nnew_merchant(c, q);
    new_endpoint(c, q, "{}", epq);
    OK(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
          " checkout_id, object_id, sequence, payload, status, delivered_at)"
          " SELECT $1, 'msg_' || substr(md5($2 || g), 1, 24), $2, 'checkout.succeeded',"
          " 'co' || g, 'co' || g, 1, '{}', 'DELIVERED', now()"
          " FROM generate_series(1, 150) g", q, epq);
    OK0(c, "ANALYZE notifications");

    nnew_merchant(c, a);
    new_endpoint(c, a, "{}", epa);
    rows_due(c, a, epa, "200", "1 hour");
    nnew_merchant(c, b);
    new_endpoint(c, b, "{}", epb);
    rows_due(c, b, epb, "5", "1 minute");
    /* the oldest backlog of all, of an endpoint disabled */
    nnew_merchant(c, d);
    new_endpoint(c, d, "{}", epd);
    rows_due(c, d, epd, "3000", "2 hours");
    OK(c, "UPDATE notify_endpoints SET disabled_at = now() WHERE merchant_id = $1", d);

    waiting = atol(VAL0(c, "SELECT count(DISTINCT (merchant_id, endpoint_id)) FROM notifications"
                           " WHERE status = 'PENDING'"));
    leased = atol(VAL0(c, "SELECT count(*) FROM notifications"
                          " WHERE status = 'PENDING' AND lease_owner IS NOT NULL"));
    before = atol(VAL0(c, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                          " WHERE relid = 'notifications'::regclass"));
    cr_expect_str_eq(VAL(c, "SELECT count(*) FILTER (WHERE merchant_id = $1) || ' '"
                            " || count(*) FILTER (WHERE merchant_id = $2) || ' '"
                            " || count(*) FILTER (WHERE merchant_id = $3)"
                            " FROM pay_notify_claim('fair', 32, 60000, 8)", a, b, d),
                     "8 5 0", "a's 8 (per endpoint), all of b's, none of the disabled");
    fetched = atol(VAL0(c, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                           " WHERE relid = 'notifications'::regclass")) - before;
    /* two probes an endpoint waiting (these three and any the rest of the
     * run left), the rows leased now, and 1,000 for the rows locked and
     * the endpoints the main lane adds between the count and the claim */
    cr_expect(fetched < 2 * waiting + leased + 1000,
              "a claim read %ld index entries (%ld endpoints waiting, %ld rows leased)",
              fetched, waiting, leased);

    /* a's endpoint holds its 8: the next claim takes no more of it */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM pay_notify_claim('fair', 32, 60000, 8)"
                            " WHERE merchant_id = $1", a), "0");
    OK0(c, "ROLLBACK");
    PQfinish(c);
}

/* The statistics of a busy outbox, in c's transaction (rolled back with
 * it but for ANALYZE's page and row counts): n merchants of one
 * notification each, each first PENDING (as every notification is) and
 * leased, all but one in 500 then delivered (those due in a day stay
 * leased), so that notifications_pending_endpoint and notifications_leased
 * hold many pages for the few rows PENDING or leased when ANALYZE reads
 * the table.  What a whole e2e run leaves on its stack (thousands of
 * merchants of a few notifications each), where a claim once took each
 * endpoint's rows by the primary key (the merchant) and a sort: every row
 * of each merchant read (1,542 index entries against the bound's 652;
 * here 1,620 against 728); and, once the leased index had grown too, the
 * room's count of each endpoint's leases the same way (1,676). */
static void
busy_outbox_statistics(PGconn *c, const char *n)
{
    OK(c, "INSERT INTO merchants (merchant_id, name, mode)"
          " SELECT 'n_busy_' || k, 'test', 'test' FROM generate_series(1, $1::int) k", n);
    OK(c, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
          " secret_sealed)"
          " SELECT 'n_busy_' || k, 'ep_' || left(md5('busy'), 24), 'https://shop.example/hooks',"
          " 'shop.example', '{}', 'v1.k.sealed-x' FROM generate_series(1, $1::int) k", n);
    OK(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
          " checkout_id, object_id, sequence, payload, next_at)"
          " SELECT 'n_busy_' || k, 'msg_' || left(md5('busy'), 24), 'ep_' || left(md5('busy'), 24),"
          " 'checkout.succeeded', 'co1', 'co1', 1, '{}',"
          " now() + CASE WHEN k % 500 = 0 THEN interval '1 day' ELSE interval '0' END"
          " FROM generate_series(1, $1::int) k", n);
    /* each leased once (lease_owner set: notifications_leased holds it),
     * then delivered (its lease let go), as the notifier does */
    OK0(c, "UPDATE notifications SET lease_owner = 'w', lease_until = now() + interval '1 minute'"
           " WHERE notification_id = 'msg_' || left(md5('busy'), 24)"
           " AND merchant_id LIKE 'n\\_busy\\_%'");
    OK0(c, "UPDATE notifications SET status = 'DELIVERED', delivered_at = now(),"
           " lease_owner = NULL, lease_until = NULL"
           " WHERE notification_id = 'msg_' || left(md5('busy'), 24)"
           " AND merchant_id LIKE 'n\\_busy\\_%' AND next_at <= now()");
    OK0(c, "ANALYZE notifications");
}

/* With 100 endpoints' backlogs (and 30 short ones), a claim of 32 (8 an
 * endpoint): the endpoints it takes, and the index entries it reads;
 * busy: on a busy outbox's statistics (busy_outbox_statistics). */
static void
claim_of_many(int busy)
{
    PGconn      *c = sqlt_connect();
    long         before, fetched, waiting, leased;

    OK0(c, CLAIM_LOCK);
    /* one snapshot for the count of endpoints waiting and the claim: the
     * main lane's tests write to the outbox meanwhile (the claim locks
     * rows of this test's endpoints only, the 32 oldest, so it never
     * meets a row changed since the snapshot) */
    OK0(c, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    if (busy) {
        busy_outbox_statistics(c, "20000");
    }
    /* endpoint k's ten rows due since an hour and 10k + g seconds: the
     * higher k, the older */
    OK0(c, "INSERT INTO merchants (merchant_id, name, mode)"
           " SELECT 'n_many_' || k, 'test', 'test' FROM generate_series(1, 100) k");
    OK0(c, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
           " secret_sealed)"
           " SELECT 'n_many_' || k, 'ep_' || left(md5('many' || k), 24),"
           " 'https://shop.example/hooks', 'shop.example', '{}', 'v1.k.sealed-x'"
           " FROM generate_series(1, 100) k");
    OK0(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
           " checkout_id, object_id, sequence, payload, next_at)"
           " SELECT 'n_many_' || k, 'msg_' || substr(md5(k || 'many' || g), 1, 24),"
           " 'ep_' || left(md5('many' || k), 24), 'checkout.succeeded', 'co' || g, 'co' || g,"
           " 1, '{}', now() - interval '1 hour' - (k * 10 + g) * interval '1 second'"
           " FROM generate_series(1, 100) k, generate_series(1, 10) g");
    /* and 30 other endpoints with a short backlog, as the rest of the run
     * leaves in the outbox (shops' endpoints that did not answer): two in
     * three due a minute ago, younger than every row above, the rest due
     * in a minute.  A claim probes each of them too: the bound below
     * counts every endpoint waiting, these and any a test before this one
     * left (once the flat bound of 600: 150 endpoints left waiting read
     * 706) */
    OK0(c, "INSERT INTO merchants (merchant_id, name, mode)"
           " SELECT 'n_other_' || k, 'test', 'test' FROM generate_series(1, 30) k");
    OK0(c, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
           " secret_sealed)"
           " SELECT 'n_other_' || k, 'ep_' || left(md5('other' || k), 24),"
           " 'https://shop.example/hooks', 'shop.example', '{}', 'v1.k.sealed-x'"
           " FROM generate_series(1, 30) k");
    OK0(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
           " checkout_id, object_id, sequence, payload, next_at)"
           " SELECT 'n_other_' || k, 'msg_' || substr(md5(k || 'other' || g), 1, 24),"
           " 'ep_' || left(md5('other' || k), 24), 'checkout.succeeded', 'co' || g, 'co' || g,"
           " 1, '{}', now() + (k % 3 - 1) * interval '1 minute'"
           " FROM generate_series(1, 30) k, generate_series(1, 3) g");
    waiting = atol(VAL0(c, "SELECT count(DISTINCT (merchant_id, endpoint_id)) FROM notifications"
                           " WHERE status = 'PENDING'"));
    leased = atol(VAL0(c, "SELECT count(*) FROM notifications"
                          " WHERE status = 'PENDING' AND lease_owner IS NOT NULL"));
    cr_assert(waiting >= 130, "%ld endpoints waiting", waiting);

    before = atol(VAL0(c, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                          " WHERE relid = 'notifications'::regclass"));
    /* the 32 oldest rows, 8 an endpoint at most: the four oldest
     * endpoints' eight oldest each */
    cr_expect_str_eq(VAL0(c, "SELECT string_agg(merchant_id || ' ' || n, ', '"
                             "                  ORDER BY merchant_id)"
                             " FROM (SELECT merchant_id, count(*) AS n"
                             "        FROM pay_notify_claim('fair', 32, 60000, 8)"
                             "       GROUP BY 1) x"),
                     "n_many_100 8, n_many_97 8, n_many_98 8, n_many_99 8");
    fetched = atol(VAL0(c, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                           " WHERE relid = 'notifications'::regclass")) - before;
    /* a probe for each waiting endpoint's first PENDING row and one for
     * each one's oldest due row (130 and 120 here), the rows leased now
     * (counted for each endpoint's room), the rows of 32 endpoints locked
     * (8 each, 256): 506 read here.  The bound: two probes an endpoint
     * waiting, the leased rows, 256, and 132 for the 32 taken and a
     * margin.  Locking 8 rows of each of the 100 read 1,022 */
    cr_expect(fetched < 2 * waiting + leased + 256 + 132,
              "a claim read %ld index entries (%ld endpoints waiting, %ld rows leased)",
              fetched, waiting, leased);

    OK0(c, "ROLLBACK");
    PQfinish(c);
}

Test(solo_notify_sql, a_claim_locks_rows_of_as_many_endpoints_as_it_takes_rows,
     .description = "with 100 endpoints' backlogs, a claim of 32 locks the due rows of the "
                    "32 endpoints whose oldest row is oldest, not 8 rows of each of the 100 "
                    "(sql/functions/pay_notify_lease.sql)")
{
    claim_of_many(0);
}

Test(solo_notify_sql, a_claim_reads_each_endpoints_rows_by_its_key_on_a_busy_outboxs_statistics,
     .description = "on the statistics of an outbox whose rows are nearly all delivered, "
                    "over many merchants of a row or two, a claim still reads each "
                    "endpoint's due rows by (merchant, endpoint, next_at) and its leases "
                    "by (merchant, endpoint, lease_until), not every row of each merchant "
                    "by the primary key and a sort (sql/functions/pay_notify_lease.sql: "
                    "enable_sort off; migration 138)")
{
    claim_of_many(1);
}

/* m with one endpoint (all types) and n due notifications (checkouts paid). */
static void
setup_due(PGconn *c, char m[24], char ep[28], int n)
{
    char  co[16];
    int   i;

    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);
    for (i = 1; i <= n; i++) {
        snprintf(co, sizeof(co), "co_%d", i);
        new_checkout(c, m, co);
        pay_checkout(c, m, co);
    }
}

Test(solo_notify_sql, concurrent_claimers_never_share_a_row,
     .description = "two connections claiming at once get disjoint rows (SKIP LOCKED, then the lease)")
{
    PGconn      *a = sqlt_connect(), *b = sqlt_connect();
    char         m[24], ep[28];

    OK0(a, CLAIM_LOCK);
    setup_due(a, m, ep, 6);

    /* a claims 3 of them inside a transaction: they stay locked */
    OK0(a, "BEGIN");
    OK(a, "CREATE TEMP TABLE got_a ON COMMIT DROP AS"
          " SELECT notification_id FROM pay_notify_claim('a', 1000, 60000, 1000) WHERE merchant_id = $1"
          " ORDER BY notification_id LIMIT 3", m);
    /* b, meanwhile, skips the locked rows: all six of a's claim's rows are
     * locked (a leased every due row of m) */
    cr_expect_eq(claim_mine(b, "b", "60000", m), 0);
    OK0(a, "COMMIT");
    /* committed: leased to a */
    cr_expect_eq(claim_mine(b, "b", "60000", m), 0);
    cr_expect_str_eq(VAL(a, "SELECT count(*) || ' ' || count(DISTINCT lease_owner) || ' ' || min(lease_owner)"
                            " || ' ' || min(attempts) || ' ' || max(attempts)"
                            " FROM notifications WHERE merchant_id = $1", m), "6 1 a 1 1");

    /* a second merchant's rows claimed from both connections at once */
    {
        char     m2[24], ep2[28];
        PGresult *ra, *rb;

        setup_due(a, m2, ep2, 8);
        OK0(a, "BEGIN");
        OK0(b, "BEGIN");
        /* a takes up to 4 of all due rows, b the rest */
        cr_assert(PQsendQueryParams(a, "SELECT string_agg(notification_id, ',' ORDER BY notification_id)"
                                       " FROM pay_notify_claim('a', 4, 60000, 1000) WHERE merchant_id = $1",
                                    1, NULL, (const char *const []){ m2 }, NULL, NULL, 0));
        cr_assert(PQsendQueryParams(b, "SELECT string_agg(notification_id, ',' ORDER BY notification_id)"
                                       " FROM pay_notify_claim('b', 1000, 60000, 1000) WHERE merchant_id = $1",
                                    1, NULL, (const char *const []){ m2 }, NULL, NULL, 0));
        ra = PQgetResult(a);
        rb = PQgetResult(b);
        cr_assert_eq(PQresultStatus(ra), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(ra));
        cr_assert_eq(PQresultStatus(rb), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(rb));
        while (PQgetResult(a) != NULL) {}
        while (PQgetResult(b) != NULL) {}
        OK0(a, "COMMIT");
        OK0(b, "COMMIT");
        cr_log_info("a: %s / b: %s", PQgetvalue(ra, 0, 0), PQgetvalue(rb, 0, 0));
        PQclear(ra);
        PQclear(rb);
        /* every row leased exactly once: one attempt each, one owner */
        cr_expect_str_eq(VAL(a, "SELECT count(*) || ' ' || min(attempts) || ' ' || max(attempts)"
                                " || ' ' || count(lease_owner) FROM notifications WHERE merchant_id = $1", m2),
                         "8 1 1 8");
    }
    PQfinish(a);
    PQfinish(b);
}

Test(solo_notify_sql, lease_blocks_a_second_claim_until_it_ends,
     .description = "a leased row is not claimed again before its lease ends, and is after")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 1);
    cr_expect_eq(claim_mine(c, "w1", "1000", m), 1);
    cr_expect_eq(claim_mine(c, "w2", "1000", m), 0);
    usleep(1300 * 1000);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FILTER (WHERE secret_sealed = 'v1.k.sealed-' || endpoint_id AND attempts = 2"
                            " AND payload::jsonb ->> 'type' = 'checkout.succeeded' AND url = 'https://shop.example/hooks'"
                            " AND host = 'shop.example' AND prev_secret_sealed IS NULL)"
                            " FROM pay_notify_claim('w2', 1000, 60000, 1000) WHERE merchant_id = $1", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT lease_owner FROM notifications WHERE merchant_id = $1", m), "w2");

    /* the previous secret only during its grace period */
    OK(c, "UPDATE notify_endpoints SET prev_secret_sealed = 'v1.k.old', prev_until = now() + interval '1 hour'"
          " WHERE merchant_id = $1", m);
    OK(c, "UPDATE notifications SET lease_until = now() - interval '1 second' WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(prev_secret_sealed, ',') FROM pay_notify_claim('w3', 1000, 60000, 1000)"
                            " WHERE merchant_id = $1", m), "v1.k.old");
    OK(c, "UPDATE notify_endpoints SET prev_until = now() - interval '1 second' WHERE merchant_id = $1", m);
    OK(c, "UPDATE notifications SET lease_until = now() - interval '1 second' WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT count(*) || ' ' || count(prev_secret_sealed) FROM pay_notify_claim('w4', 1000, 60000, 1000)"
                            " WHERE merchant_id = $1", m), "1 0");
    PQfinish(c);
}

/*
 * A plan a worker's connection kept, made before the table had statistics
 * (a new database, before autovacuum's first ANALYZE), would look each row
 * up through notifications_list, reading every notification of the
 * merchant per row: 98 million index entries for a claim of 8 from a
 * backlog of 3,000.  The claim is planned afresh at every call with index
 * scans only (sql/functions/pay_notify_claim.sql), so it reads about what
 * it claims, however the statistics stand.
 */
Test(solo_notify_sql, a_claim_planned_before_any_statistics_reads_what_it_claims,
     .description = "a claim planned on a never-analysed table still walks its indexes")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    long         before, fetched;
    int          i;

    OK0(c, CLAIM_LOCK);
    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);

    OK0(c, "BEGIN");
    /* the table as the planner sees it before its first ANALYZE */
    OK0(c, "DELETE FROM pg_statistic WHERE starelid = 'notifications'::regclass");
    OK0(c, "UPDATE pg_class SET reltuples = -1, relpages = 0"
           " WHERE oid = 'notifications'::regclass");
    /* six claims: PL/pgSQL keeps a generic plan after the fifth */
    for (i = 0; i < 6; i++) {
        (void) VAL(c, "SELECT count(*) FROM pay_notify_claim('plan', 64, 60000, 1000)"
                      " WHERE merchant_id = $1", m);
    }
    OK(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
          " checkout_id, object_id, sequence, payload)"
          " SELECT $1, 'msg_' || lpad(to_hex(g), 24, '0'), $2, 'checkout.succeeded',"
          " 'co' || g, 'co' || g, 1, '{}' FROM generate_series(1, 3000) g", m, ep);

    before = atol(VAL0(c, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                          " WHERE relid = 'notifications'::regclass"));
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM pay_notify_claim('plan', 64, 60000, 8)"
                            " WHERE merchant_id = $1", m), "8");
    fetched = atol(VAL0(c, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                           " WHERE relid = 'notifications'::regclass")) - before;
    cr_expect(fetched < 5000, "a claim of 8 read %ld index entries", fetched);

    OK0(c, "ROLLBACK");
    PQfinish(c);
}


Test(solo_notify_sql, record_by_stale_owner_changes_nothing,
     .description = "pay_notify_record by another owner answers STALE and changes nothing")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    char         id[40], before[4096];

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 1);
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 1);
    strcpy(id, VAL(c, "SELECT notification_id FROM notifications WHERE merchant_id = $1", m));
    strcpy(before, VAL(c, "SELECT n::text FROM notifications n WHERE merchant_id = $1", m));
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || endpoint_disabled FROM"
                            " pay_notify_record($1, $2, 'w2', true, 200, NULL, NULL, 1)", m, id), "STALE false");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || endpoint_disabled FROM"
                            " pay_notify_record($1, $2, 'w2', false, 500, 'HTTP 500', 0, 1)", m, id), "STALE false");
    cr_expect_str_eq(VAL(c, "SELECT n::text FROM notifications n WHERE merchant_id = $1", m), before);
    cr_expect_str_eq(VAL(c, "SELECT failures::text || coalesce(disabled_at::text, '-') FROM notify_endpoints"
                            " WHERE merchant_id = $1", m), "0-");

    /* the holder's record counts; a second one is stale */
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || endpoint_disabled FROM"
                            " pay_notify_record($1, $2, 'w1', true, 204, NULL, NULL, 1)", m, id), "DELIVERED false");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || (delivered_at IS NOT NULL) || ' ' || coalesce(lease_owner, '-')"
                            " || ' ' || last_status FROM notifications WHERE merchant_id = $1", m), "DELIVERED true - 204");
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', true, 204, NULL, NULL, 1)", m, id),
                     "STALE");
    cr_expect_eq(claim_mine(c, "w3", "60000", m), 0);
    PQfinish(c);
}

/*
 * A replay while the row's attempt is in flight (claimed, its POST under
 * way): the lease stands, so no claim sends a second copy beside it (the
 * lease owner is one string per worker: the same worker claimed it again
 * at once, before), and the attempt's own outcome, recorded later, does
 * not undo the replay (its last attempt's failure made the row FAILED, its
 * success DELIVERED, though the merchant asked for it to be sent again):
 * once recorded, the row is PENDING, due now, from the start of the
 * schedule, and the next claim sends it.
 */
Test(solo_notify_sql, a_replay_while_an_attempt_is_in_flight_keeps_its_lease,
     .description = "replay of a leased row: the lease stands (no second claim, by the same owner either); the attempt's record, a dead letter's failure or a success, leaves it PENDING due now with attempts 0; then claimed and delivered")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    char         id[40];

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 1);
    strcpy(id, VAL(c, "SELECT notification_id FROM notifications WHERE merchant_id = $1", m));

    /* the tenth attempt in flight, then replayed */
    OK(c, "UPDATE notifications SET attempts = 9 WHERE merchant_id = $1", m);
    cr_assert_eq(claim_mine(c, "w1", "60000", m), 1);
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', j ->> 'status', j ->> 'attempts')"
                            " FROM (SELECT pay_notify_replay($1, $2)::jsonb AS j) s", m, id), "PENDING 0");
    cr_expect_str_eq(VAL(c, "SELECT coalesce(lease_owner, '-') || ' ' || (lease_until > now())"
                            " FROM notifications WHERE merchant_id = $1", m), "w1 true",
                     "the replay broke the lease of the attempt in flight");
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 0, "a second copy is claimed beside the one in flight");
    cr_expect_eq(claim_mine(c, "w2", "60000", m), 0);

    /* the attempt's outcome: the schedule's end (no retry) */
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', false, 500, 'http_status',"
                            " NULL, 0, 0::bigint)", m, id), "PENDING");
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', status, attempts, next_at <= now(), coalesce(lease_owner, '-'),"
                            " last_status, coalesce(delivered_at::text, '-'))"
                            " FROM notifications WHERE merchant_id = $1", m), "PENDING 0 t - 500 -",
                     "the replay was undone by the attempt it crossed");

    /* sent again: claimed, then replayed in flight once more, delivered */
    cr_assert_eq(claim_mine(c, "w1", "60000", m), 1);
    cr_expect_str_eq(VAL(c, "SELECT pay_notify_replay($1, $2)::jsonb ->> 'status'", m, id), "PENDING");
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', true, 204, NULL,"
                            " NULL, 0, 0::bigint)", m, id), "PENDING");
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', status, attempts, next_at <= now(), coalesce(lease_owner, '-'),"
                            " last_status, coalesce(delivered_at::text, '-'))"
                            " FROM notifications WHERE merchant_id = $1", m), "PENDING 0 t - 204 -");
    cr_assert_eq(claim_mine(c, "w1", "60000", m), 1);
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', true, 204, NULL,"
                            " NULL, 0, 0::bigint)", m, id), "DELIVERED");
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', status, attempts, coalesce(lease_owner, '-'), delivered_at IS NOT NULL)"
                            " FROM notifications WHERE merchant_id = $1", m), "DELIVERED 1 - t");

    /* a replay of a row not in flight is as before: from the start */
    cr_expect_str_eq(VAL(c, "SELECT pay_notify_replay($1, $2)::jsonb ->> 'status'", m, id), "PENDING");
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 1);
    PQfinish(c);
}

/*
 * An attempt's record counts for its own claim only.  A worker is one lease
 * owner ("host:pid"): a row whose lease ended while its attempt was still
 * to be recorded, claimed again by the same worker, was recorded by the
 * old attempt as if it were the new one's (its failure made the row FAILED
 * while the new attempt was in flight, and the new one's success was then
 * STALE).  The claim returns its lease (lease_until), and the record names
 * it: another claim's is STALE and changes nothing.
 */
Test(solo_notify_sql, a_record_counts_for_its_own_claim_only,
     .description = "the same owner claims a row again after its lease ended: the old attempt's record (its lease named) is STALE, the row stays leased to the new claim, whose record counts")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    char         id[40], lease1[64], lease2[64], before[4096];

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 1);
    strcpy(id, VAL(c, "SELECT notification_id FROM notifications WHERE merchant_id = $1", m));

    strcpy(lease1, VAL(c, "SELECT lease_until::text FROM pay_notify_lease('w1', 1000, 1000, 1000)"
                          " WHERE merchant_id = $1", m));
    usleep(1300 * 1000);
    strcpy(lease2, VAL(c, "SELECT lease_until::text FROM pay_notify_lease('w1', 1000, 60000, 1000)"
                          " WHERE merchant_id = $1", m));
    cr_assert_str_neq(lease1, lease2);
    strcpy(before, VAL(c, "SELECT n::text FROM notifications n WHERE merchant_id = $1", m));

    /* the first attempt's outcome, late: not the current claim's */
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', false, 500, 'http_status',"
                            " NULL, 0, 0::bigint, $3::timestamptz)", m, id, lease1), "STALE");
    cr_expect_str_eq(VAL(c, "SELECT n::text FROM notifications n WHERE merchant_id = $1", m), before);
    cr_expect_str_eq(VAL(c, "SELECT failures::text FROM notify_endpoints WHERE merchant_id = $1", m), "0");

    /* the second's counts */
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', true, 204, NULL,"
                            " NULL, 0, 0::bigint, $3::timestamptz)", m, id, lease2), "DELIVERED");
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', status, attempts, last_status) FROM notifications"
                            " WHERE merchant_id = $1", m), "DELIVERED 2 204");
    PQfinish(c);
}

Test(solo_notify_sql, retry_then_dead_letter,
     .description = "a failure with a retry delay stays PENDING until then; with none it is FAILED")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    char         id[40];

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 1);
    strcpy(id, VAL(c, "SELECT notification_id FROM notifications WHERE merchant_id = $1", m));
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 1);
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', false, 500, 'HTTP 500', 3600000, 0)",
                         m, id), "PENDING");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || attempts || ' ' || last_status || ' ' || last_error || ' '"
                            " || (next_at > now() + interval '59 minutes') || ' ' || coalesce(lease_owner, '-')"
                            " FROM notifications WHERE merchant_id = $1", m), "PENDING 1 500 HTTP 500 true -");
    /* not due yet */
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 0);
    OK(c, "UPDATE notifications SET next_at = now() - interval '1 second' WHERE merchant_id = $1", m);
    cr_expect_eq(claim_mine(c, "w2", "60000", m), 1);
    /* a long error is cut to 200 */
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w2', false, NULL, repeat('x', 300), NULL, 0)",
                         m, id), "FAILED");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || attempts || ' ' || coalesce(last_status::text, '-') || ' '"
                            " || length(last_error) || ' ' || coalesce(lease_owner, '-')"
                            " FROM notifications WHERE merchant_id = $1", m), "FAILED 2 - 200 -");
    cr_expect_str_eq(VAL(c, "SELECT failures::text FROM notify_endpoints WHERE merchant_id = $1", m), "2");
    cr_expect_eq(claim_mine(c, "w3", "60000", m), 0);
    cr_expect_str_eq(VAL(c, "SELECT pay_notify_get($1, $2)::jsonb ->> 'status'", m, id), "FAILED");
    PQfinish(c);
}

Test(solo_notify_sql, endpoint_disabled_after_n_failures,
     .description = "the N-th consecutive failure disables the endpoint once; its rows wait; a success resets the count")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    PGresult    *r;

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 4);
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 4);
    r = sqlt_ok(c, "SELECT notification_id FROM notifications WHERE merchant_id = $1 ORDER BY notification_id",
                1, (const char *const []){ m });
    cr_assert_eq(PQntuples(r), 4);
    /* a success between failures resets the count */
    cr_expect_str_eq(VAL(c, "SELECT endpoint_disabled::text FROM pay_notify_record($1, $2, 'w1', false, 500, 'e', 0, 2)",
                         m, PQgetvalue(r, 0, 0)), "false");
    cr_expect_str_eq(VAL(c, "SELECT endpoint_disabled::text FROM pay_notify_record($1, $2, 'w1', true, 200, NULL, NULL, 2)",
                         m, PQgetvalue(r, 1, 0)), "false");
    cr_expect_str_eq(VAL(c, "SELECT failures::text FROM notify_endpoints WHERE merchant_id = $1", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT endpoint_disabled::text FROM pay_notify_record($1, $2, 'w1', false, 500, 'e', 0, 2)",
                         m, PQgetvalue(r, 2, 0)), "false");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || endpoint_disabled FROM pay_notify_record($1, $2, 'w1', false, 500, 'e', 0, 2)",
                         m, PQgetvalue(r, 3, 0)), "PENDING true");
    cr_expect_str_eq(VAL(c, "SELECT failures || ' ' || (disabled_at IS NOT NULL) || ' ' || disabled_reason"
                            " FROM notify_endpoints WHERE merchant_id = $1", m), "2 true failures");
    /* due, but not claimed while the endpoint is disabled */
    OK(c, "UPDATE notifications SET next_at = now() - interval '1 second' WHERE merchant_id = $1", m);
    cr_expect_eq(claim_mine(c, "w2", "60000", m), 0);
    /* a further failure (a lease taken before the disable) reports nothing new */
    OK(c, "UPDATE notifications SET lease_owner = 'w9' WHERE merchant_id = $1 AND notification_id = $2",
       m, PQgetvalue(r, 0, 0));
    cr_expect_str_eq(VAL(c, "SELECT endpoint_disabled::text FROM pay_notify_record($1, $2, 'w9', false, 500, 'e', 0, 2)",
                         m, PQgetvalue(r, 0, 0)), "false");
    /* new notifications still wait in the outbox */
    new_checkout(c, m, "co_9");
    pay_checkout(c, m, "co_9");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notifications WHERE merchant_id = $1 AND status = 'PENDING'", m), "4");
    cr_expect_eq(claim_mine(c, "w2", "60000", m), 0);
    /* enabled again (what enable-endpoint does): claimed */
    OK(c, "UPDATE notify_endpoints SET disabled_at = NULL, disabled_reason = NULL, failures = 0 WHERE merchant_id = $1", m);
    cr_expect_eq(claim_mine(c, "w2", "60000", m), 4);
    PQclear(r);
    PQfinish(c);
}

/* ---- the merchant API's functions ---------------------------------------------- */

Test(solo_notify_sql, list_get_replay,
     .description = "list newest first with the documented items, get, replay (PY010 on a disabled endpoint)")
{
    PGconn      *c = sqlt_connect();
    char         m[24], m2[24], ep[28], ep2[28];
    char         id[40];
    const char  *first;

    OK0(c, CLAIM_LOCK);
    setup_due(c, m, ep, 3);
    /* distinct creation times: co_1 oldest */
    OK(c, "UPDATE notifications SET created_at = now() - (4 - substr(checkout_id, 4)::int) * interval '1 minute'"
          " WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(x ->> 'checkout_id', ',') FROM json_array_elements(pay_notify_list($1, NULL, 50)::json) x", m),
                     "co_3,co_2,co_1");
    cr_expect_str_eq(VAL(c, "SELECT json_array_length(pay_notify_list($1, NULL, 2)::json)::text", m), "2");
    cr_expect_str_eq(VAL(c, "SELECT pay_notify_list($1, 'FAILED', 50)::text", m), "[]");
    first = VAL(c, "SELECT (SELECT string_agg(k, ',') FROM json_object_keys(pay_notify_list($1, 'PENDING', 1)::json -> 0) k)", m);
    cr_expect_str_eq(first, "id,type,endpoint_id,status,attempts,last_status,last_error,created_at,"
                            "next_attempt_at,delivered_at,checkout_id,object_id,sequence");

    strcpy(id, VAL(c, "SELECT notification_id FROM notifications WHERE merchant_id = $1 AND checkout_id = 'co_1'", m));
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', j ->> 'id' = $2, j ->> 'type', j ->> 'endpoint_id' = $3, j ->> 'status',"
                            " j ->> 'attempts', coalesce(j ->> 'last_status', 'null'), (j ->> 'next_attempt_at') ~ 'Z$',"
                            " coalesce(j ->> 'delivered_at', 'null'), j ->> 'checkout_id', j ->> 'object_id', j ->> 'sequence')"
                            " FROM (SELECT pay_notify_get($1, $2)::jsonb AS j) s", m, id, ep),
                     "t checkout.succeeded t PENDING 0 null t null co_1 co_1 1");
    /* another merchant's id: nothing */
    nnew_merchant(c, m2);
    new_endpoint(c, m2, "{}", ep2);
    cr_expect_null(VAL(c, "SELECT pay_notify_get($1, $2)::text", m2, id));
    cr_expect_null(VAL(c, "SELECT pay_notify_replay($1, $2)::text", m2, id));
    cr_expect_str_eq(VAL(c, "SELECT pay_notify_list($1, NULL, 50)::text", m2), "[]");

    /* delivered, then replayed: from the start */
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 3);
    cr_expect_str_eq(VAL(c, "SELECT status FROM pay_notify_record($1, $2, 'w1', true, 200, NULL, NULL, 0)", m, id), "DELIVERED");
    cr_expect_str_eq(VAL(c, "SELECT (j ->> 'status') || ' ' || ((j ->> 'delivered_at') IS NOT NULL) || ' '"
                            " || coalesce(j ->> 'next_attempt_at', 'null')"
                            " FROM json_array_elements(pay_notify_list($1, 'DELIVERED', 50)::json) j", m),
                     "DELIVERED true null");
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', j ->> 'status', j ->> 'attempts', coalesce(j ->> 'delivered_at', 'null'))"
                            " FROM (SELECT pay_notify_replay($1, $2)::jsonb AS j) s", m, id), "PENDING 0 null");
    cr_expect_str_eq(VAL(c, "SELECT coalesce(lease_owner, '-') || ' ' || (next_at <= now()) FROM notifications"
                            " WHERE merchant_id = $1 AND notification_id = $2", m, id), "- true");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM pay_notify_claim('w2', 1000, 60000, 1000) WHERE notification_id = $1", id), "1");

    /* disabled endpoint: PY010, nothing changed */
    OK(c, "UPDATE notify_endpoints SET disabled_at = now(), disabled_reason = 'operator' WHERE merchant_id = $1", m);
    FAILS(c, "PY010", "SELECT pay_notify_replay($1, $2)", m, id);
    cr_expect_str_eq(VAL(c, "SELECT lease_owner FROM notifications WHERE merchant_id = $1 AND notification_id = $2", m, id), "w2");
    PQfinish(c);
}

Test(solo_notify_sql, stats_count_pending_failed_disabled,
     .description = "pay_notify_stats counts what the gauges show")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];
    char         id[40];
    long         pending0, failed0, disabled0, pending1, failed1, disabled1;

    OK0(c, CLAIM_LOCK);
    /* stats are over every merchant: compare before and after, other tests
     * that run beside this one only add rows */
    pending0 = atol(VAL0(c, "SELECT pending FROM pay_notify_stats()"));
    setup_due(c, m, ep, 2);
    OK(c, "UPDATE notifications SET created_at = now() - interval '1 hour' WHERE merchant_id = $1", m);
    pending1 = atol(VAL0(c, "SELECT pending FROM pay_notify_stats()"));
    cr_expect_geq(pending1, pending0 + 2);
    cr_expect_geq(atol(VAL0(c, "SELECT oldest_pending_seconds FROM pay_notify_stats()")), 3600);

    failed0 = atol(VAL0(c, "SELECT failed FROM pay_notify_stats()"));
    disabled0 = atol(VAL0(c, "SELECT endpoints_disabled FROM pay_notify_stats()"));
    cr_expect_eq(claim_mine(c, "w1", "60000", m), 2);
    strcpy(id, VAL(c, "SELECT min(notification_id) FROM notifications WHERE merchant_id = $1", m));
    cr_expect_str_eq(VAL(c, "SELECT endpoint_disabled::text FROM pay_notify_record($1, $2, 'w1', false, 500, 'e', NULL, 1)",
                         m, id), "true");
    failed1 = atol(VAL0(c, "SELECT failed FROM pay_notify_stats()"));
    disabled1 = atol(VAL0(c, "SELECT endpoints_disabled FROM pay_notify_stats()"));
    cr_expect_geq(failed1, failed0 + 1);
    cr_expect_geq(disabled1, disabled0 + 1);
    /* this process's own view */
    cr_expect_str_eq(VAL0(c, "SELECT (pending >= 0 AND oldest_pending_seconds >= 0)::text FROM pay_notify_stats()"), "true");
    PQfinish(c);
}

/* 20,000 PENDING and 20,000 FAILED: a call of pay_notify_stats reads
 * 10,000 of each and the oldest.  cost: a planner setting for the
 * transaction, made before the function's first call on this connection
 * (its plan is kept for the connection), or NULL. */
static void
stats_read_at_most_ten_thousand(const char *cost)
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    long         read;
    const char  *got;

    nnew_merchant(c, m);

    /* in a transaction rolled back: 20,000 PENDING two hours to 87 minutes
     * old, 20,000 FAILED; then ANALYZE, as autovacuum's after such growth */
    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, "INSERT INTO notifications (merchant_id, notification_id,"
          " endpoint_id, event_type, object_id, sequence, payload, status,"
          " created_at)"
          " SELECT $1, 'msg_' || left(md5($1 || g), 24), 'ep_1',"
          " 'checkout.succeeded', 'co_' || g, 1, '{}',"
          " CASE WHEN g % 2 = 0 THEN 'PENDING' ELSE 'FAILED' END,"
          " now() - interval '2 hours' + g * interval '50 ms'"
          " FROM generate_series(1, 40000) g", m);
    OK0(c, "ANALYZE notifications");
    if (cost != NULL) {
        OK0(c, cost);
    }

    read = db_rows_read_on(c, "notifications");
    got = VAL0(c, "SELECT (pending = greatest(10000,"
                  " (SELECT reltuples::bigint FROM pg_class WHERE"
                  " oid = 'notifications_pending_since'::regclass)))"
                  " || ' ' || (failed = greatest(10000,"
                  " (SELECT reltuples::bigint FROM pg_class WHERE"
                  " oid = 'notifications_failed'::regclass)))"
                  " || ' ' || (oldest_pending_seconds >= 7190)"
                  " FROM pay_notify_stats()");
    read = db_rows_read_on(c, "notifications") - read;
    /* 10,000 of each counted, and the oldest PENDING */
    cr_assert_leq(read, 20001, "pay_notify_stats read %ld rows (%s)", read,
                  cost != NULL ? cost : "default costs");
    cr_assert_str_eq(got, "true true true");

    OK0(c, "ROLLBACK");
    PQfinish(c);
}

Test(solo_notify_sql, stats_read_at_most_ten_thousand_of_each,
     .description = "pay_notify_stats (every few seconds) counts up to 10,000 "
                    "PENDING and 10,000 FAILED, then says their indexes' "
                    "sizes as PostgreSQL last counted them; the oldest "
                    "PENDING from notifications_pending_since's first entry: "
                    "20,000 of each, and a call reads 10,000 of each and the "
                    "oldest, not all 40,000 (a backlog of a million cost "
                    "0.4-0.6 s a call)")
{
    stats_read_at_most_ten_thousand(NULL);
}

Test(solo_notify_sql, stats_read_at_most_ten_thousand_whatever_the_costs,
     .description = "the call above with a random_page_cost of 40: where "
                    "the outbox's rows are scattered over pages not "
                    "all-visible, index fetches look dear and a scan and "
                    "sort of every notification looks cheaper; the counts "
                    "still walk their indexes and stop at 10,000")
{
    stats_read_at_most_ten_thousand("SET LOCAL random_page_cost = 40");
}

Test(solo_notify_sql, gateway_role_executes_only_the_functions,
     .description = "payments_gateway cannot read or write the outbox tables, nor call its internals, but calls pay_notify_*")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ep[28];

    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);
    cr_expect_str_eq(VAL0(c, "SELECT bool_and(p.prosecdef AND p.proconfig @> '{\"search_path=public, pg_temp\"}')::text"
                             " FROM pg_proc p WHERE p.proname LIKE 'pay\\_notify\\_%'"), "true");
    OK0(c, "SET ROLE payments_gateway");
    FAILS0(c, "42501", "SELECT * FROM notifications LIMIT 1");
    FAILS0(c, "42501", "SELECT * FROM notify_endpoints LIMIT 1");
    FAILS0(c, "42501", "SELECT * FROM notify_sequences LIMIT 1");
    FAILS(c, "42501", "UPDATE notify_endpoints SET disabled_at = NULL WHERE merchant_id = $1", m);
    FAILS(c, "42501", "SELECT notify_enqueue($1, 'checkout.succeeded', 'co_1', 'co_1', '{}')", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_notify_list($1, NULL, 10)::text", m), "[]");
    cr_expect_null(VAL(c, "SELECT pay_notify_get($1, 'msg_000000000000000000000000')::text", m));
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM pay_notify_stats()"), "1");
    OK0(c, "RESET ROLE");
    PQfinish(c);
}

/* ---- bin/payments-merchant's endpoint commands ------------------------------------
 *
 * They need build/payments-secrets (check-endpoint, new-secret); without it
 * they skip.  The key file is a fresh one of the test's own. */

#include "harness.h"

static void
cli_setup(merchant_t *m)
{
    char           path[512], line[128];
    unsigned char  key[32];
    FILE          *f;
    char          *tool = NULL;
    PGconn        *c = sqlt_connect();

    PQfinish(c);
    cr_assert(asprintf(&tool, "%s/build/payments-secrets", getenv("PAY_TEST_ROOT") ? getenv("PAY_TEST_ROOT") : ".") > 0);
    if (access(tool, X_OK) != 0) {
        free(tool);
        cr_skip_test("build/payments-secrets is not built");
    }
    free(tool);
    cr_assert_eq(getrandom(key, sizeof(key), 0), (ssize_t) sizeof(key));
    /* in the run's directory, which goes with the run (a key file left in
     * /tmp by every run was one more secret on the machine) */
    snprintf(path, sizeof(path), "%s/notify-key-%d", env("PAY_TEST_RUN"),
             (int) getpid());
    f = fopen(path, "w");
    cr_assert_not_null(f);
    {
        static const char  b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t             i, o = 0;
        uint32_t           v;

        for (i = 0; i + 3 <= 30; i += 3) {
            v = (uint32_t) key[i] << 16 | (uint32_t) key[i + 1] << 8 | key[i + 2];
            line[o++] = b64[v >> 18 & 63]; line[o++] = b64[v >> 12 & 63];
            line[o++] = b64[v >> 6 & 63];  line[o++] = b64[v & 63];
        }
        v = (uint32_t) key[30] << 16 | (uint32_t) key[31] << 8;
        line[o++] = b64[v >> 18 & 63]; line[o++] = b64[v >> 12 & 63];
        line[o++] = b64[v >> 6 & 63];  line[o++] = '=';
        line[o] = '\0';
    }
    fprintf(f, "k1 %s\n", line);
    fclose(f);
    chmod(path, 0600);
    setenv("PAYMENTS_KEY_FILE", path, 1);
    merchant_new(m);
}

/* The whsec_ line of a tool's output, into secret. */
static void
secret_of(const char *out, char secret[128])
{
    const char  *p = strstr(out, "whsec_");
    size_t       n;

    cr_assert_not_null(p, "no whsec_ secret in: %s", out);
    n = strcspn(p, "\n");
    cr_assert_lt(n, 128);
    memcpy(secret, p, n);
    secret[n] = '\0';
}

Test(solo_notify_sql, cli_add_endpoint_seals_its_secret,
     .description = "add-endpoint checks the URL and the types, prints the secret once and stores it sealed only")
{
    merchant_t   m;
    PGconn      *c;
    char        *out = NULL, secret[128], ep[32];

    cli_setup(&m);
    c = sqlt_connect();
    /* loopback refused without --allow-loopback; unknown types refused */
    cr_expect_neq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                 "https://127.0.0.1:9/hooks", NULL }, &out), 0, "%s", out);
    free(out);
    cr_expect_neq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                 "https://127.0.0.1:9/hooks", "--allow-loopback", "--events",
                                 "checkout.succeeded,checkout.paid", NULL }, &out), 0, "%s", out);
    free(out);
    /* two types with a space: stored as one type no event has, before */
    cr_expect_neq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                 "https://127.0.0.1:9/hooks", "--allow-loopback", "--events",
                                 "checkout.succeeded checkout.failed", NULL }, &out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "separated by commas"), "%s", out);
    free(out);
    cr_expect_neq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                 "http://127.0.0.1:9/hooks", "--allow-loopback", NULL }, &out), 0, "%s", out);
    free(out);
    cr_expect_str_eq(count_of(c, m.id), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notify_endpoints WHERE merchant_id = $1", m.id), "0");

    cr_assert_eq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                "https://127.0.0.1:9/hooks", "--allow-loopback", "--events",
                                "checkout.succeeded,refund.failed", NULL }, &out), 0, "%s", out);
    secret_of(out, secret);
    free(out);
    strcpy(ep, VAL(c, "SELECT endpoint_id FROM notify_endpoints WHERE merchant_id = $1", m.id));
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', host, event_types::text, secret_sealed LIKE 'v1.%',"
                            " strpos(secret_sealed, $2) = 0, prev_secret_sealed IS NULL, failures)"
                            " FROM notify_endpoints WHERE merchant_id = $1", m.id, secret + 6),
                     "127.0.0.1 {checkout.succeeded,refund.failed} t t t 0");
    /* listed, without any secret */
    cr_assert_eq(merchant_toolv((const char *[]){ "list-endpoints", "--id", m.id, NULL }, &out), 0, "%s", out);
    cr_expect_not_null(strstr(out, ep), "%s", out);
    cr_expect_null(strstr(out, "whsec_"), "%s", out);
    cr_expect_null(strstr(out, "v1."), "%s", out);
    free(out);
    PQfinish(c);
}

/* every type a notification can have (the core's closed list) can be
 * subscribed to, and is stored as given */
Test(solo_notify_sql, cli_takes_every_event_type)
{
    size_t       i;
    merchant_t   m;
    PGconn      *c;
    char        *out = NULL, *all;

    cli_setup(&m);
    c = sqlt_connect();

    all = strdup(pay_notify_event_types[0]);
    for (i = 1; pay_notify_event_types[i] != NULL; i++) {
        all = str_printf("%s,%s", all, pay_notify_event_types[i]);
    }

    cr_assert_eq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                "https://127.0.0.1:9/hooks", "--allow-loopback", "--events",
                                all, NULL }, &out), 0, "%s", out);
    free(out);
    cr_expect_str_eq(VAL(c, "SELECT array_to_string(event_types, ',') FROM notify_endpoints"
                            " WHERE merchant_id = $1", m.id), all);
    PQfinish(c);
}

Test(solo_notify_sql, cli_rotate_disable_enable,
     .description = "rotate-secret keeps the previous secret for the grace period; disable/enable-endpoint")
{
    merchant_t   m;
    PGconn      *c;
    char        *out = NULL, s1[128], s2[128], ep[32], sealed1[512];

    cli_setup(&m);
    c = sqlt_connect();
    cr_assert_eq(merchant_toolv((const char *[]){ "add-endpoint", "--id", m.id, "--url",
                                "https://127.0.0.1:9/hooks", "--allow-loopback", NULL }, &out), 0, "%s", out);
    secret_of(out, s1);
    free(out);
    strcpy(ep, VAL(c, "SELECT endpoint_id FROM notify_endpoints WHERE merchant_id = $1", m.id));
    strcpy(sealed1, VAL(c, "SELECT secret_sealed FROM notify_endpoints WHERE merchant_id = $1", m.id));
    cr_expect_str_eq(VAL(c, "SELECT event_types::text FROM notify_endpoints WHERE merchant_id = $1", m.id), "{}");

    cr_expect_neq(merchant_toolv((const char *[]){ "rotate-secret", "--endpoint", ep, "--grace", "2d", NULL }, &out), 0);
    free(out);
    cr_assert_eq(merchant_toolv((const char *[]){ "rotate-secret", "--endpoint", ep, "--grace", "90m", NULL }, &out),
                 0, "%s", out);
    secret_of(out, s2);
    free(out);
    cr_expect_str_neq(s1, s2);
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', prev_secret_sealed = $2, secret_sealed <> $2,"
                            " prev_until BETWEEN now() + interval '89 minutes' AND now() + interval '91 minutes')"
                            " FROM notify_endpoints WHERE merchant_id = $1", m.id, sealed1), "t t t");

    OK(c, "UPDATE notify_endpoints SET failures = 7 WHERE merchant_id = $1", m.id);
    cr_assert_eq(merchant_toolv((const char *[]){ "disable-endpoint", "--endpoint", ep, NULL }, &out), 0, "%s", out);
    free(out);
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', disabled_at IS NOT NULL, disabled_reason, failures)"
                            " FROM notify_endpoints WHERE merchant_id = $1", m.id), "t operator 7");
    cr_assert_eq(merchant_toolv((const char *[]){ "enable-endpoint", "--endpoint", ep, NULL }, &out), 0, "%s", out);
    free(out);
    cr_expect_str_eq(VAL(c, "SELECT concat_ws(' ', disabled_at IS NULL, failures)"
                            " FROM notify_endpoints WHERE merchant_id = $1", m.id), "t 0");
    cr_expect_neq(merchant_toolv((const char *[]){ "enable-endpoint", "--endpoint", "ep_000000000000000000000000", NULL },
                                 &out), 0);
    free(out);
    PQfinish(c);
}


/* ---- lock order ------------------------------------------------------------ */

/* The lock-order tests' start: m with an endpoint for every type, its
 * checkout co_1 paid, and a chargeback's event id and PSP reference. */
static void
chargeback_ready(PGconn *c, char m[24], char evt[40], char ref[40])
{
    char  ep[28];

    nnew_merchant(c, m);
    new_endpoint(c, m, "{}", ep);
    new_checkout(c, m, "co_1");
    pay_checkout(c, m, "co_1");
    strcpy(evt, "evt_");
    sqlt_random_hex(evt + 4, 24);
    strcpy(ref, "dp_ref_");
    sqlt_random_hex(ref + 7, 24);
}


/*
 * A refund of an order holds the order (refund_event_apply locks it first)
 * and then takes a notify_sequences row (refunds_notify).  A
 * chargeback of the same checkout, applied meanwhile, must not hold that row
 * while it waits for the order (before 029 it did: PostgreSQL failed it with
 * 40P01 after deadlock_timeout).
 */
Test(solo_notify_sql, a_dispute_does_not_deadlock_with_a_refund_of_its_order,
     .timeout = 30)
{
    PGconn           *a = sqlt_connect(), *b = sqlt_connect();
    PGresult         *res;
    const char       *st;
    char              m[24], evt[40], ref[40];
    const char *const params[3] = { m, evt, ref };

    chargeback_ready(a, m, evt, ref);

    /* the refund's first lock */
    OK0(a, "BEGIN");
    OK(a, "SELECT 1 FROM payment_orders WHERE merchant_id = $1"
          " AND payment_order_id = 'co_1_1' FOR UPDATE", m);

    /* the chargeback's event: it comes to wait for that order */
    cr_assert_eq(PQsendQueryParams(b,
        "SELECT outcome FROM pay_event_apply('mock', $2, 'DISPUTE_OPENED',"
        " 'charge.dispute.created', NULL, $1 || ':co_1', 200, 'EUR', NULL, $3,"
        " NULL)",
        3, NULL, params, NULL, NULL, 0), 1, "%s", PQerrorMessage(b));
    msleep(500);
    cr_assert_eq(PQisBusy(b), 1, "the dispute did not wait for the order");

    /* the refund's notification: the checkout's sequence row */
    OK0(a, "SET LOCAL lock_timeout = '10s'");
    OK(a, "SELECT notify_enqueue($1, 'refund.succeeded', 'co_1', 'rf_x', '{}'::jsonb)", m);
    OK0(a, "COMMIT");

    res = PQgetResult(b);
    st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "the dispute failed: %s %s",
                 st ? st : "", PQresultErrorMessage(res));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "applied");
    PQclear(res);
    while ((res = PQgetResult(b)) != NULL) {
        PQclear(res);
    }

    /* both notified, each the first of its object */
    cr_assert_str_eq(VAL(a, "SELECT string_agg(event_type || ' ' || sequence, ','"
                            " ORDER BY event_type) FROM notifications"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "checkout.succeeded 1,dispute.opened 1,refund.succeeded 1");
    PQfinish(a);
    PQfinish(b);
}


/*
 * The notifications written at commit: a refund the PSP refused, written
 * as pay_refund_finish writes it (the refund FAILED, then its audit row; no
 * order locked), while a chargeback of the same checkout is applied and not
 * yet committed.  The dispute holds the checkout's audit chain head; a
 * refund's notification taking the checkout's sequence row at once would
 * wait for that head, and the dispute's, at its commit, for the row: 40P01.
 * The deferred refunds_notify takes the row after the head, at commit.
 */
Test(solo_notify_sql, a_dispute_does_not_deadlock_with_a_refused_refund,
     .timeout = 30)
{
    PGconn           *a = sqlt_connect(), *b = sqlt_connect();
    PGresult         *res;
    const char       *st;
    char              m[24], rf[28], evt[40], ref[40], *sql;

    chargeback_ready(a, m, evt, ref);
    new_refund(a, m, "co_1", rf);

    /* the chargeback, applied, its transaction open */
    OK0(b, "BEGIN");
    cr_assert_str_eq(VAL(b, "SELECT outcome FROM pay_event_apply('mock', $2,"
                            " 'DISPUTE_OPENED', 'charge.dispute.created', NULL,"
                            " $1 || ':co_1', 200, 'EUR', NULL, $3, NULL)", m, evt,
                            ref),
                     "applied");

    /* the refusal comes to wait for the dispute's chain head (the ids are
     * hex: safe in the text) */
    sql = str_printf("BEGIN; SET LOCAL lock_timeout = '10s';"
                     " UPDATE refunds SET status = 'FAILED', failure = 'refused'"
                     " WHERE merchant_id = '%s' AND refund_id = '%s';"
                     " SELECT audit_append('%s', 'co_1', 'refund:refused',"
                     " jsonb_build_object('refund_id', '%s')); COMMIT",
                     m, rf, m, rf);
    cr_assert_eq(PQsendQuery(a, sql), 1, "%s", PQerrorMessage(a));
    msleep(500);
    cr_assert_eq(PQconsumeInput(a), 1, "%s", PQerrorMessage(a));
    cr_assert_eq(PQisBusy(a), 1, "the refusal did not wait for the dispute");

    res = PQexec(b, "COMMIT");
    st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "the dispute failed: %s %s",
                 st ? st : "", PQresultErrorMessage(res));
    PQclear(res);

    while ((res = PQgetResult(a)) != NULL) {
        st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK
                  || PQresultStatus(res) == PGRES_TUPLES_OK,
                  "the refusal failed: %s %s", st ? st : "",
                  PQresultErrorMessage(res));
        PQclear(res);
    }

    /* both notified, each the first of its object */
    cr_assert_str_eq(VAL(a, "SELECT string_agg(event_type || ' ' || sequence, ','"
                            " ORDER BY event_type) FROM notifications"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "checkout.succeeded 1,dispute.opened 1,refund.failed 1");
    PQfinish(a);
    PQfinish(b);
}
