/*
 * The SQL layer's rules (sql/, doc/CONTRACTS.md section 1), proven against a
 * real PostgreSQL.  PAY_TEST_PG is a libpq conninfo for a superuser on a
 * database where bin/payments-migrate has run; without it the tests skip.
 *
 * Every test makes its own random merchant, so tests share the database but
 * never each other's rows, and can run in parallel (Criterion forks them).
 * The statement helpers are sqltest.h's (shared with test_notify_sql.c), so
 * this file owes nothing to the e2e harness.
 */
#include <errno.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <payments/money.h>
#include <payments/psp.h>

#include "sqltest.h"

#define FP_A  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define EXPIRES_EPOCH  "1795341600"              /* 2026-11-22T10:00:00Z */
#define EXPIRES_RFC    "2026-11-22T10:00:00Z"
#define DUP_BODY       "{\"code\":\"duplicate_order\",\"status\":409}"
#define NTHREADS       20

/* ---- helpers (and sqltest.h's) ---------------------------------------- */

/* A fresh merchant "t_" + hex (len characters in all, 3..23) with one return
 * origin, so that no two tests (or runs) ever share rows. */
static void
new_merchant_len(PGconn *c, char id[24], size_t len)
{
    id[0] = 't';
    id[1] = '_';
    sqlt_random_hex(id + 2, len - 2);
    OK(c, "INSERT INTO merchants (merchant_id, name, mode) VALUES ($1, 'test', 'test')", id);
    OK(c, "INSERT INTO merchant_return_origins (merchant_id, origin)"
          " VALUES ($1, 'https://shop.example')", id);
}

static void
new_merchant(PGconn *c, char id[24])
{
    new_merchant_len(c, id, 18);
}

/* One pay_claim call.  Unset fields take the defaults noted. */
typedef struct {
    const char  *merchant;
    const char  *key;           /* "k1" */
    const char  *fp;            /* FP_A */
    const char  *lease_s;       /* "30" */
    const char  *ttl_s;         /* "86400" */
    const char  *checkout;      /* "co_1" */
    const char  *orders;        /* <checkout>_1: 1000, <checkout>_2: 500 */
    const char  *total;         /* "1500" */
    const char  *psp_request;   /* "psp-request-<checkout>" */
} claim_req_t;

typedef struct {
    char  outcome[16];
    char  lease[24];            /* "" for NULL */
    int   retry_after;          /* -1 for NULL */
    int   status;               /* -1 for NULL */
    char  body[1024];
    char  psp_request[1024];
    char  expires_at[24];
} claim_t;

static void
copy_field(char *dst, size_t size, PGresult *r, int col)
{
    const char  *v = PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col);

    cr_assert_lt(strlen(v), size);
    strcpy(dst, v);
}

/* one order of 1500: orders that pass pay_claim's own checks, for the
 * cases that some other rule refuses (an empty list is a save's alone) */
#define ORD1500  "[{\"payment_order_id\":\"po_f\",\"seller_account\":" \
                 "\"seller_42\",\"amount_minor\":1500}]"

static const char *claim_sql =
    "SELECT * FROM pay_claim($1, $2, $3, $4, $5, $6, 'stripe', 'USD', $7,"
    " 'https://shop.example/thanks', 'https://shop.example/cart', 'ann@example.com',"
    " " EXPIRES_EPOCH ", $8, $9, '" DUP_BODY "')";

static PGresult *
claim_exec(PGconn *c, const claim_req_t *q)
{
    char         orders[512], request[128];
    const char  *co = q->checkout ? q->checkout : "co_1";
    const char  *p[9];

    snprintf(orders, sizeof(orders),
             "[{\"payment_order_id\":\"%s_1\",\"seller_account\":\"seller_42\",\"amount_minor\":1000},"
             "{\"payment_order_id\":\"%s_2\",\"seller_account\":\"seller_77\",\"amount_minor\":500}]",
             co, co);
    snprintf(request, sizeof(request), "psp-request-%s", co);
    p[0] = q->merchant;
    p[1] = q->key ? q->key : "k1";
    p[2] = q->fp ? q->fp : FP_A;
    p[3] = q->lease_s ? q->lease_s : "30";
    p[4] = q->ttl_s ? q->ttl_s : "86400";
    p[5] = co;
    p[6] = q->total ? q->total : "1500";
    p[7] = q->psp_request ? q->psp_request : request;
    p[8] = q->orders ? q->orders : orders;
    return PQexecParams(c, claim_sql, 9, NULL, p, NULL, NULL, 0);
}

static claim_t
claim(PGconn *c, const claim_req_t *q)
{
    claim_t    out;
    PGresult  *r = claim_exec(c, q);

    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "pay_claim: %s",
                 PQresultErrorMessage(r));
    cr_assert_eq(PQntuples(r), 1);
    copy_field(out.outcome, sizeof(out.outcome), r, 0);
    copy_field(out.lease, sizeof(out.lease), r, 1);
    out.retry_after = PQgetisnull(r, 0, 2) ? -1 : atoi(PQgetvalue(r, 0, 2));
    out.status = PQgetisnull(r, 0, 3) ? -1 : atoi(PQgetvalue(r, 0, 3));
    copy_field(out.body, sizeof(out.body), r, 4);
    copy_field(out.psp_request, sizeof(out.psp_request), r, 5);
    copy_field(out.expires_at, sizeof(out.expires_at), r, 6);
    PQclear(r);
    return out;
}

static const char *finish_sql =
    "SELECT response_status, response_body FROM pay_finish($1, $2, $3, $4, $5, $6, $7,"
    " NULL, $8, $9, $10)";

/* pay_finish with PSP token "<m>.<token>" and URL https://psp.example/pay/
 * <that token>, or NULL for both.  Returns the key's stored body (a ring
 * buffer of sqlt_value's). */
static const char *
finish(PGconn *c, const char *m, const char *key, const char *lease,
    const char *co, const char *status, const char *token, const char *failure,
    const char *resp_status, const char *body)
{
    char         tok[64], url[128];
    const char  *t = NULL, *u = NULL, *v;
    PGresult    *r;

    /* (psp, token) is unique across merchants: tokens carry the merchant. */
    if (token) {
        snprintf(tok, sizeof(tok), "%s.%s", m, token);
        snprintf(url, sizeof(url), "https://psp.example/pay/%s", tok);
        t = tok;
        u = url;
    }
    r = sqlt_ok(c, finish_sql, 10,
               ARGV(m, key, lease, co, status, t, u, failure, resp_status, body));
    cr_assert_eq(PQntuples(r), 1);
    PQclear(r);
    v = VAL(c, "SELECT response_body FROM idempotency_keys"
               " WHERE merchant_id = $1 AND idem_key = $2", m, key);
    return v;
}

/* ---- claims ------------------------------------------------------------- */

Test(sql, new_key_claims_checkout_orders_and_events,
     .description = "a new key claims: key in progress, checkout and orders EXECUTING, events from registration")
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;

    new_merchant(c, m);
    r = claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(r.outcome, "claimed");
    cr_expect_str_eq(r.lease, "1");
    cr_expect_str_eq(r.psp_request, "psp-request-co_1");
    cr_expect_str_eq(r.expires_at, EXPIRES_EPOCH);
    cr_expect_eq(r.status, -1);

    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || lease || ' ' || fingerprint FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m),
                     "in_progress 1 " FP_A);
    cr_expect_str_eq(VAL(c, "SELECT nonce = $1 || ':co_1' AND status = 'EXECUTING'"
                            " AND psp_request = 'psp-request-co_1' AND amount_total = 1500"
                            " AND ts_epoch(expires_at) = " EXPIRES_EPOCH " AND psp_token IS NULL"
                            " FROM checkouts WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "t");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ':' || status || ':' || amount"
                            " || ':' || currency, ',' ORDER BY line_no)"
                            " FROM payment_orders WHERE merchant_id = $1", m),
                     "co_1_1:EXECUTING:1000:USD,co_1_2:EXECUTING:500:USD");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ':' || from_status || '>'"
                            " || to_status || ':' || source, ',' ORDER BY event_id)"
                            " FROM order_events WHERE merchant_id = $1", m),
                     "co_1_1:NOT_STARTED>EXECUTING:registration,"
                     "co_1_2:NOT_STARTED>EXECUTING:registration");
    PQfinish(c);
}

Test(sql, live_lease_is_in_use_with_retry_after,
     .description = "same key and fingerprint while the lease is live: in_use, retry_after = seconds left")
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;

    new_merchant(c, m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
    r = claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(r.outcome, "in_use");
    /* Seconds left of a 30 s lease, rounded up; slack for a loaded machine. */
    cr_expect(r.retry_after >= 20 && r.retry_after <= 30, "retry_after %d", r.retry_after);
    cr_expect_str_eq(r.lease, "");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1", m), "2");
    PQfinish(c);
}

Test(sql, other_fingerprint_in_progress_is_reused,
     .description = "another fingerprint under an in-progress key: reused")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .fp = FP_B }).outcome, "reused");
    PQfinish(c);
}

Test(sql, done_key_replays_byte_for_byte,
     .description = "a finished key replays the stored status and body byte for byte")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    claim_t      r;
    const char  *body = "{ \"checkout_id\" : \"co_1\",\n  \"note\": \"caf\xc3\xa9 \\u00e9\" }  ";

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", body);
    r = claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(r.outcome, "replay");
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, body);
    PQfinish(c);
}

Test(sql, other_fingerprint_done_is_reused,
     .description = "another fingerprint under a finished key: reused, not replayed")
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    r = claim(c, &(claim_req_t){ .merchant = m, .fp = FP_B });
    cr_expect_str_eq(r.outcome, "reused");
    cr_expect_eq(r.status, -1);
    cr_expect_str_eq(r.body, "");
    PQfinish(c);
}

Test(sql, expired_lease_is_taken_over_with_stored_parameters,
     .description = "an expired lease is resumed with a new lease and the STORED request and expiry; the old lease cannot finish",
     .timeout = 30)
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;

    new_merchant(c, m);
    r = claim(c, &(claim_req_t){ .merchant = m, .lease_s = "1" });
    cr_assert_str_eq(r.outcome, "claimed");
    usleep(1200 * 1000);
    r = claim(c, &(claim_req_t){ .merchant = m, .lease_s = "1",
                                 .psp_request = "a request that must not be used" });
    cr_expect_str_eq(r.outcome, "resumed");
    cr_expect_str_eq(r.lease, "2");
    cr_expect_str_eq(r.psp_request, "psp-request-co_1");
    cr_expect_str_eq(r.expires_at, EXPIRES_EPOCH);

    /* The holder that lost its lease is fenced off; the new one finishes. */
    FAILS(c, "PY003", finish_sql, m, "k1", "1", "co_1", "EXECUTING", "cs_1",
          "https://psp.example/pay/cs_1", NULL, "201", "{\"old\":1}");
    cr_expect_str_eq(finish(c, m, "k1", "2", "co_1", "EXECUTING", "cs_1", NULL, "201",
                            "{\"new\":1}"), "{\"new\":1}");
    PQfinish(c);
}

Test(sql, expired_lease_with_other_fingerprint_is_reused,
     .description = "the fingerprint is checked before a take-over: an expired lease with another body is reused",
     .timeout = 30)
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m, .lease_s = "1" });
    usleep(1200 * 1000);
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .fp = FP_B }).outcome, "reused");
    cr_expect_str_eq(VAL(c, "SELECT lease FROM idempotency_keys WHERE merchant_id = $1", m), "1");
    PQfinish(c);
}

Test(sql, release_lets_a_retry_resume_at_once,
     .description = "pay_release under the right lease ends it now; under another lease it changes nothing")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    OK(c, "SELECT pay_release($1, 'k1', 7)", m);
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "in_use");
    OK(c, "SELECT pay_release($1, 'k1', 1)", m);
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "resumed");
    cr_expect_str_eq(VAL(c, "SELECT state FROM idempotency_keys WHERE merchant_id = $1", m),
                     "in_progress");
    PQfinish(c);
}

/* A cancel of co_1 under key kc: pay_cancel_claim's outcome. */
static const char *
cancel_claim(PGconn *c, const char *m, const char *key)
{
    return VAL(c, "SELECT outcome FROM pay_cancel_claim($1, $2, '" FP_B "', 30,"
                  " 86400, 'co_1', '{\"paid\":1}', '{\"not_cancelable\":1}',"
                  " '{}')", m, key);
}

Test(sql, a_registration_is_not_resumed_once_a_cancel_was_requested,
     .description = "a registration whose holder died (its lease run out) and whose checkout the shop then asked to cancel is never sent to the PSP again: canceling, the key and the checkout as they were; once the cancel decided it, decided")
{
    PGconn  *c = sqlt_connect();
    char     m[24];
    claim_t  r;

    new_merchant(c, m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
    /* its holder died: the lease ran out without the PSP's answer */
    OK(c, "UPDATE idempotency_keys SET lease_until = clock_timestamp()"
          " - interval '1 second' WHERE merchant_id = $1 AND idem_key = 'k1'", m);

    /* the cancel, claimed (no live lease, no session): under way */
    cr_assert_str_eq(cancel_claim(c, m, "kc"), "new");
    cr_assert_str_eq(VAL(c, "SELECT (cancel_requested_at IS NOT NULL)::text"
                            " FROM checkouts WHERE merchant_id = $1", m), "true");

    r = claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(r.outcome, "canceling");
    cr_expect_str_eq(r.lease, "");
    cr_expect_str_eq(r.psp_request, "");
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || lease FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m),
                     "in_progress 1");

    /* the cancel ends at the gateway alone; the retry finds it decided */
    cr_expect_str_eq(VAL(c, "SELECT response_status FROM pay_cancel_finish($1, 'kc',"
                            " 1, 'co_1', 'gateway', '{\"paid\":1}',"
                            " '{\"not_cancelable\":1}')", m), "200");
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "decided");
    PQfinish(c);
}

/* co_1 of m held for review: claimed under k1, the risk check's review
 * recorded (k1 done with the 202). */
static void
held(PGconn *c, const char *m)
{
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_risk_record($1, 'k1', 1, 'co_1',"
                            " 'review', 500, 'manual_check', 'provider', 3600, 202,"
                            " '{\"review\":1}', 30)", m), "review");
}

/* pay_claim_with_verdict of checkout co under key with the verdict (deny:
 * its 403; review: its 202): "<outcome> <risk_outcome> <risk_status>", "-"
 * for NULL */
static const char *
claim_judged(PGconn *c, const char *m, const char *key, const char *co,
    const char *verdict)
{
    char         orders[512];
    const char  *status, *body;

    snprintf(orders, sizeof(orders),
             "[{\"payment_order_id\":\"%s_1\",\"seller_account\":\"seller_42\","
             "\"amount_minor\":1500}]", co);
    status = strcmp(verdict, "deny") == 0 ? "403"
             : strcmp(verdict, "review") == 0 ? "202" : NULL;
    body = status ? "{\"risk\":1}" : NULL;

    return VAL(c, "SELECT outcome || ' ' || coalesce(risk_outcome, '-') || ' '"
                  " || coalesce(risk_status::text, '-')"
                  " FROM pay_claim_with_verdict($1, $2, '" FP_A "', 30, 86400, $3,"
                  " 'stripe', 'USD', 1500, 'https://shop.example/thanks',"
                  " 'https://shop.example/cart', 'ann@example.com', " EXPIRES_EPOCH ","
                  " 'psp-request', $4::jsonb, '" DUP_BODY "', '{}'::jsonb, 'automatic',"
                  " NULL::jsonb, $5, 900, 'mock.reason', 'provider', 3600, $6::int, $7)",
               m, key, co, orders, verdict, status, body);
}

Test(sql, a_verdict_asked_before_the_claim_is_stored_with_its_own_claim_only,
     .description = "pay_claim_with_verdict: a fresh claim and its verdict in one transaction (one commit before the PSP call), the deny's 403 stored with the key; a replay, or a key another request holds, records nothing of the verdict")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);

    cr_assert_str_eq(claim_judged(c, m, "k1", "co_1", "deny"), "claimed deny 403");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || failure_code FROM checkouts"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "FAILED risk_declined");
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || response_status FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m),
                     "done 403");
    /* the claim's audit entry and the verdict's: one transaction */
    cr_expect_str_eq(VAL(c, "SELECT count(DISTINCT xmin::text)::text FROM audit_log"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'"
                            " AND action IN ('registration:claimed', 'risk:deny')", m),
                     "1");
    cr_expect_str_eq(VAL(c, "SELECT (r.xmin::text = a.xmin::text)::text"
                            " FROM checkout_risk r JOIN audit_log a"
                            " ON a.merchant_id = r.merchant_id AND a.checkout_id = r.checkout_id"
                            " WHERE r.merchant_id = $1 AND r.checkout_id = 'co_1'"
                            " AND a.action = 'registration:claimed'", m), "true");

    /* the same key again: its stored answer, no second verdict */
    cr_expect_str_eq(claim_judged(c, m, "k1", "co_1", "allow"), "replay - -");

    /* a key another request holds: in use, its verdict not recorded */
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = "k2",
                                              .checkout = "co_2" }).outcome,
                     "claimed");
    cr_expect_str_eq(claim_judged(c, m, "k2", "co_2", "review"), "in_use - -");
    cr_expect_str_eq(VAL(c, "SELECT count(*)::text FROM checkout_risk"
                            " WHERE merchant_id = $1", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT status FROM checkouts"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_2'", m),
                     "EXECUTING");

    /* an allow leaves the key in progress under the lease it claimed with */
    cr_expect_str_eq(claim_judged(c, m, "k3", "co_3", "allow"), "claimed allow -");
    cr_expect_str_eq(VAL(c, "SELECT state FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k3'", m),
                     "in_progress");
    cr_expect_str_eq(VAL(c, "SELECT pay_claim_peek($1, 'k3', 'co_9')::text || ' '"
                            " || pay_claim_peek($1, 'k9', 'co_3')::text || ' '"
                            " || pay_claim_peek($1, 'k9', 'co_9')::text", m),
                     "true true false");
    PQfinish(c);
}

Test(sql, a_verdict_with_its_own_claim_writes_the_key_once_and_locks_nothing_more,
     .description = "pay_claim_with_verdict's allow, in the claim's transaction: the key and the checkout the claim just wrote are not written or locked again (no renewed lease, no FOR UPDATE of rows no other transaction can see yet, no MultiXact on the checkout): the risk line's claim writes the plain claim's rows and the verdict's own")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);

    OK0(c, "BEGIN");
    cr_assert_str_eq(claim_judged(c, m, "k1", "co_1", "allow"), "claimed allow -");
    /* this transaction's own writes, before its commit */
    cr_expect_str_eq(VAL0(c, "SELECT n_tup_ins || ' ' || n_tup_upd"
                             " FROM pg_stat_xact_user_tables"
                             " WHERE relname = 'idempotency_keys'"), "1 0");
    cr_expect_str_eq(VAL(c, "SELECT xmax::text FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m), "0");
    /* the checkout's one lock is the claim's own (its order's foreign-key
     * check, in the subtransaction that inserted both): no second locker,
     * so no MultiXact joining the two */
    cr_expect_str_eq(VAL(c, "SELECT (ck.xmax::text = o.xmin::text)::text"
                            " FROM checkouts ck JOIN payment_orders o"
                            " ON o.merchant_id = ck.merchant_id AND o.checkout_id = ck.checkout_id"
                            " WHERE ck.merchant_id = $1 AND ck.checkout_id = 'co_1'", m),
                     "true");
    OK0(c, "COMMIT");

    /* recorded as before: the verdict, its audit entry, the key in progress */
    cr_expect_str_eq(VAL(c, "SELECT verdict FROM checkout_risk"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "allow");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(action, ',' ORDER BY seq) FROM audit_log"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "registration:claimed,risk:allow");
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || lease || ' '"
                            " || (lease_until > clock_timestamp())::text"
                            " FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m),
                     "in_progress 1 true");
    PQfinish(c);
}

/* co_1 held, and a younger key that names co_1 too, "a-cancel" (sorting
 * before k1), done with a 409 stored under it: a cancel refused while the
 * checkout's registration held its lease would leave such a key. */
static void
held_with_a_cancel(PGconn *c, const char *m)
{
    held(c, m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM op_key_take($1, 'a-cancel', '"
                            FP_B "', 30, 86400, 'co_1')", m), "new");
    OK(c, "SELECT op_key_done($1, 'a-cancel', 1, 409,"
          " '{\"not_cancelable\":1}')", m);

    /* the keys of the merchant read in key order, the cancel's first */
    OK0(c, "SET enable_seqscan = off");
    OK0(c, "SET enable_bitmapscan = off");
}

Test(sql, a_review_approval_takes_the_registrations_key_not_a_cancels,
     .description = "pay_review_approve claims the key that registered the checkout, never a younger key that names the same checkout (a cancel's, done with its 409): that key's stored answer stays")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    held_with_a_cancel(c, m);

    cr_expect_str_eq(VAL(c, "SELECT outcome || ' ' || idem_key || ' ' || lease"
                            " FROM pay_review_approve($1, 'co_1', 'approved-request',"
                            " " EXPIRES_EPOCH ", 30)", m),
                     "approved k1 2");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(idem_key || ' ' || state || ' '"
                            " || coalesce(response_status::text, '-'), ', '"
                            " ORDER BY idem_key) FROM idempotency_keys"
                            " WHERE merchant_id = $1", m),
                     "a-cancel done 409, k1 in_progress -");
    PQfinish(c);
}

Test(sql, an_approved_checkout_is_never_abandoned,
     .description = "pay_abandon never undoes a checkout a person approved: checkout.approved was told and the review decided, so the approval's claim (EXECUTING, no token, under its lease) stays for a retry to resume, whatever the caller")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    held(c, m);

    cr_assert_str_eq(VAL(c, "SELECT outcome || ' ' || lease FROM pay_review_approve($1,"
                            " 'co_1', 'approved-request', " EXPIRES_EPOCH ", 30)", m),
                     "approved 2");
    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k1', 2, 'psp_circuit_open')", m), "f");
    cr_expect_str_eq(VAL(c, "SELECT c.status || ' ' || r.reviewed || ' ' || k.state"
                            " FROM checkouts c JOIN checkout_risk r USING (merchant_id, checkout_id)"
                            " JOIN idempotency_keys k USING (merchant_id, checkout_id)"
                            " WHERE c.merchant_id = $1", m),
                     "EXECUTING approved in_progress");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'registration:abandoned'", m), "0");
    PQfinish(c);
}

Test(sql, a_review_rejection_answers_under_the_registrations_key_only,
     .description = "pay_review_reject stores its 403 under the key that registered the checkout; a cancel's key naming the same checkout keeps its own answer")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    held_with_a_cancel(c, m);

    cr_expect_str_eq(VAL(c, "SELECT pay_review_reject($1, 'co_1', 'rejected',"
                            " '{\"risk\":1}')::text", m), "true");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(idem_key || ' ' || response_status"
                            " || ' ' || response_body, ', ' ORDER BY idem_key)"
                            " FROM idempotency_keys WHERE merchant_id = $1", m),
                     "a-cancel 409 {\"not_cancelable\":1}, k1 403 {\"risk\":1}");
    PQfinish(c);
}

Test(sql, a_cancel_of_a_checkout_in_review_cancels_it_and_decides_the_review,
     .description = "the shop's cancel of a checkout held for review cancels it at the gateway alone: the checkout and its orders FAILED canceled, the review decided as canceled (out of the queue), audited once; neither an approval nor a rejection decides it again")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    held(c, m);

    cr_assert_str_eq(cancel_claim(c, m, "kc"), "new");
    cr_expect_str_eq(VAL(c, "SELECT response_status || ' ' || response_body"
                            " FROM pay_cancel_finish($1, 'kc', 1, 'co_1', 'gateway',"
                            " '{\"paid\":1}', '{\"not_cancelable\":1}')", m),
                     "200 {\"status\": \"FAILED\", \"checkout_id\": \"co_1\"}");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || failure_code || ' '"
                            " || (cancel_requested_at IS NULL)::text"
                            " FROM checkouts WHERE merchant_id = $1", m),
                     "FAILED canceled true");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(DISTINCT o.status::text, ',')"
                            " || ' ' || string_agg(DISTINCT e.source, ',')"
                            " FROM payment_orders o JOIN order_events e"
                            " ON e.merchant_id = o.merchant_id"
                            " AND e.payment_order_id = o.payment_order_id"
                            " AND e.to_status = 'FAILED'"
                            " WHERE o.merchant_id = $1", m),
                     "FAILED cancel:review");
    cr_expect_str_eq(VAL(c, "SELECT reviewed || ' ' || (reviewed_at IS NOT NULL)::text"
                            " FROM checkout_risk WHERE merchant_id = $1", m),
                     "canceled true");
    cr_expect_str_eq(VAL(c, "SELECT (strpos(pay_review_list(1000), $1) = 0)::text",
                         m), "true");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(action || ' ' || coalesce(detail->>'from', '-'),"
                            " ',' ORDER BY seq) FROM audit_log WHERE merchant_id = $1"
                            " AND action LIKE 'cancel:%'", m),
                     "cancel:requested -,cancel:canceled REVIEW");

    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_review_approve($1, 'co_1',"
                            " 'approved-request', " EXPIRES_EPOCH ", 30)", m),
                     "decided");
    cr_expect_str_eq(VAL(c, "SELECT pay_review_reject($1, 'co_1', 'rejected',"
                            " '{\"risk\":1}')::text", m), "false");
    /* a second cancel answers the same canceled checkout */
    cr_expect_str_eq(VAL(c, "SELECT outcome || ' ' || response_status FROM"
                            " pay_cancel_claim($1, 'kc2', '" FP_B "', 30, 86400,"
                            " 'co_1', '{\"paid\":1}', '{\"not_cancelable\":1}',"
                            " '{}')", m), "decided 200");
    PQfinish(c);
}

Test(sql, done_key_past_ttl_counts_as_absent,
     .description = "a finished key past its TTL counts as absent: a new request under it is claimed",
     .timeout = 30)
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m, .ttl_s = "1" });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    usleep(1200 * 1000);
    r = claim(c, &(claim_req_t){ .merchant = m, .fp = FP_B, .checkout = "co_2" });
    cr_expect_str_eq(r.outcome, "claimed");
    /* the finished row taken over (lease 2), or, when another suite's
     * gateway purged it past its TTL meanwhile, a row made afresh (1) */
    cr_expect(strcmp(r.lease, "2") == 0 || strcmp(r.lease, "1") == 0,
              "lease %s", r.lease);
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || checkout_id || ' ' || fingerprint"
                            " FROM idempotency_keys WHERE merchant_id = $1", m),
                     "in_progress co_2 " FP_B);
    PQfinish(c);
}

/* pay_purge until the query `left` (on merchant m) answers "0", at most
 * 50 calls 100 ms apart; the calls it took, or 0.  Other tests and the
 * other suites' sweepers purge the same tables at the same time, and
 * pay_purge passes over the rows another purge holds (SKIP LOCKED), so
 * one call may leave a victim that the other purge then deletes or lets
 * go; the rows a purge must keep are checked after, whoever deleted. */
static int
purge_until(PGconn *c, const char *m, const char *left)
{
    for (int i = 1; i <= 50; i++) {
        (void) VAL0(c, "SELECT pay_purge(100000)");
        if (strcmp(VAL(c, left, m), "0") == 0) {
            return i;
        }
        usleep(100 * 1000);
    }
    return 0;
}

Test(sql, purge_deletes_only_done_keys_past_ttl,
     .description = "pay_purge deletes finished keys past their TTL and keeps in-progress and live ones",
     .timeout = 30)
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m, .key = "done-old", .ttl_s = "1", .checkout = "co_1" });
    finish(c, m, "done-old", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    claim(c, &(claim_req_t){ .merchant = m, .key = "open-old", .ttl_s = "1", .lease_s = "1",
                             .checkout = "co_2" });
    claim(c, &(claim_req_t){ .merchant = m, .key = "done-new", .checkout = "co_3" });
    finish(c, m, "done-new", "1", "co_3", "EXECUTING", "cs_3", NULL, "201", "{}");
    usleep(1200 * 1000);
    cr_expect_gt(purge_until(c, m, "SELECT count(*) FROM idempotency_keys"
                                   " WHERE merchant_id = $1 AND idem_key = 'done-old'"), 0);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(idem_key, ',' ORDER BY idem_key)"
                            " FROM idempotency_keys WHERE merchant_id = $1", m),
                     "done-new,open-old");
    PQfinish(c);
}

Test(sql, purge_deletes_notifications_delivered_over_30_days_ago_only,
     .description = "pay_purge deletes DELIVERED notifications delivered more than 30 days "
                    "ago, and keeps newer ones, PENDING ones and the dead letters "
                    "(sql/functions/pay_purge.sql)",
     .timeout = 30)
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
          " secret_sealed) VALUES ($1, 'ep_0000000000000000000000aa', 'https://shop.example/hooks',"
          " 'shop.example', '{}', 'v1.k.sealed')", m);
    /* delivered 31 and 29 days ago, pending and failed from 40 days ago */
    OK(c, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
          " checkout_id, object_id, sequence, payload, status, delivered_at, created_at)"
          " SELECT $1, 'msg_' || lpad(g::text, 24, '0'), 'ep_0000000000000000000000aa', 'checkout.succeeded',"
          " 'co' || g, 'co' || g, 1, '{}', s, d, now() - interval '40 days'"
          " FROM (VALUES (1, 'DELIVERED', now() - interval '31 days'),"
          "              (2, 'DELIVERED', now() - interval '29 days'),"
          "              (3, 'PENDING', NULL::timestamptz),"
          "              (4, 'FAILED', NULL)) v (g, s, d)", m);
    cr_expect_gt(purge_until(c, m, "SELECT count(*) FROM notifications"
                                   " WHERE merchant_id = $1 AND notification_id LIKE '%1'"), 0);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(right(notification_id, 1) || status, ','"
                            " ORDER BY notification_id) FROM notifications"
                            " WHERE merchant_id = $1", m),
                     "2DELIVERED,3PENDING,4FAILED");
    PQfinish(c);
}

Test(sql, purge_deletes_the_risk_due_list_past_the_rounds_horizon_only,
     .description = "pay_purge deletes the risk check's due rows decided more than 8 "
                    "days ago (past the round's week, never taken) and keeps newer ones "
                    "(sql/functions/pay_purge.sql)",
     .timeout = 30)
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    /* two paid checkouts asked about 9 and 6 days ago, both still due */
    OK0(c, "SET session_replication_role = replica");
    OK(c, "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
          " amount_total, success_url, cancel_url, status, psp_request, expires_at)"
          " SELECT $1, 'co_' || g, 'stripe', $1 || ':co_' || g, 'EUR', 100,"
          " 'https://shop.example/s', 'https://shop.example/c', 'SUCCESS', 'r',"
          " now() + interval '1 day' FROM generate_series(6, 9, 3) g", m);
    OK(c, "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score, reason,"
          " source, decided_at)"
          " SELECT $1, 'co_' || g, 'allow', 1, 'ok', 'provider',"
          " now() - g * interval '1 day' FROM generate_series(6, 9, 3) g", m);
    OK(c, "INSERT INTO checkout_risk_after_due (merchant_id, checkout_id, decided_at)"
          " SELECT merchant_id, checkout_id, decided_at FROM checkout_risk"
          " WHERE merchant_id = $1", m);
    OK0(c, "RESET session_replication_role");

    cr_expect_gt(purge_until(c, m, "SELECT count(*) FROM checkout_risk_after_due"
                                   " WHERE merchant_id = $1 AND checkout_id = 'co_9'"), 0);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(checkout_id, ',' ORDER BY checkout_id)"
                            " FROM checkout_risk_after_due WHERE merchant_id = $1", m),
                     "co_6");
    PQfinish(c);
}

Test(sql, checkout_id_under_another_key_is_duplicate,
     .description = "a checkout id already used under another key: duplicate, 409 stored under the new key, nothing inserted")
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;
    char      orders[] = "[{\"payment_order_id\":\"fresh_1\",\"seller_account\":\"s\",\"amount_minor\":1500}]";

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    r = claim(c, &(claim_req_t){ .merchant = m, .key = "k2", .fp = FP_B, .orders = orders });
    cr_expect_str_eq(r.outcome, "duplicate");
    cr_expect_eq(r.status, 409);
    cr_expect_str_eq(r.body, DUP_BODY);
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || response_status || ' ' || coalesce(checkout_id, '-')"
                            " FROM idempotency_keys WHERE merchant_id = $1 AND idem_key = 'k2'", m),
                     "done 409 -");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM payment_orders WHERE merchant_id = $1", m), "2");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1", m), "2");

    /* The stored 409 is the key's answer from now on. */
    r = claim(c, &(claim_req_t){ .merchant = m, .key = "k2", .fp = FP_B, .orders = orders });
    cr_expect_str_eq(r.outcome, "replay");
    cr_expect_eq(r.status, 409);
    cr_expect_str_eq(r.body, DUP_BODY);
    PQfinish(c);
}

Test(sql, order_id_under_another_key_is_duplicate,
     .description = "a payment order id already used under another key: duplicate, and none of the new checkout stays")
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;
    char      orders[] = "[{\"payment_order_id\":\"co_2_1\",\"seller_account\":\"s\",\"amount_minor\":1000},"
                         "{\"payment_order_id\":\"co_1_2\",\"seller_account\":\"s\",\"amount_minor\":500}]";

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    r = claim(c, &(claim_req_t){ .merchant = m, .key = "k2", .fp = FP_B, .checkout = "co_2",
                                 .orders = orders });
    cr_expect_str_eq(r.outcome, "duplicate");
    cr_expect_eq(r.status, 409);
    cr_expect_str_eq(r.body, DUP_BODY);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE merchant_id = $1", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || '@' || checkout_id, ','"
                            " ORDER BY payment_order_id) FROM payment_orders WHERE merchant_id = $1", m),
                     "co_1_1@co_1,co_1_2@co_1");
    PQfinish(c);
}

Test(sql, keys_and_ids_are_scoped_per_merchant,
     .description = "the same key, checkout id and order ids under two merchants are independent")
{
    PGconn  *c = sqlt_connect();
    char     a[24], b[24];

    new_merchant(c, a);
    new_merchant(c, b);
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = a }).outcome, "claimed");
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = b, .fp = FP_B }).outcome, "claimed");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE checkout_id = 'co_1'"
                            " AND merchant_id IN ($1, $2)", a, b), "2");
    PQfinish(c);
}

Test(sql, orders_not_summing_to_total_roll_back_everything,
     .description = "orders that do not sum to amount_total are an error and leave no key behind")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    claim_req_t  q = { .total = "1501" };
    PGresult    *r;

    new_merchant(c, m);
    q.merchant = m;
    r = claim_exec(c, &q);
    cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    cr_expect_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22023");
    PQclear(r);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE merchant_id = $1", m), "0");
    PQfinish(c);
}

/* a save of customer c_1 (off-session), as pay_claim's options */
#define SAVE_C1  "{\"save\":{\"customer\":\"c_1\",\"customer_ref\":" \
                 "\"cu_0123456789abcdef01234567\",\"usage\":\"off_session\"," \
                 "\"recurring\":\"Subscription\"}}"

/* one pay_claim call with options: the checkout's id is its key too */
static PGresult *
claim_options(PGconn *c, const char *merchant, const char *checkout,
              const char *total, const char *orders, const char *capture,
              const char *options)
{
    const char  *p[6] = { merchant, checkout, total, orders, capture, options };

    return PQexecParams(c,
        "SELECT outcome FROM pay_claim($1, $2, '" FP_A "', 30, 86400,"
        " $2, 'stripe', 'USD', $3::bigint, 'https://shop.example/thanks',"
        " 'https://shop.example/cart', NULL, " EXPIRES_EPOCH ", 'psp-request',"
        " $4::jsonb, '" DUP_BODY "', '{}'::jsonb, $5, $6::jsonb)",
        6, NULL, p, NULL, NULL, 0);
}

Test(sql, a_claim_of_nothing_is_a_save_only,
     .description = "amount 0 and no orders only for a save (mode setup): stored without orders; without a save, or with orders, refused (22023), nothing kept")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    claim_req_t  q = { .total = "0", .orders = "[]" };
    PGresult    *r;

    new_merchant(c, m);
    q.merchant = m;

    /* no save (the signature without options) */
    r = claim_exec(c, &q);
    cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    cr_expect_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22023");
    PQclear(r);

    /* a save with orders and amount 0, a save of 0 with none */
    r = claim_options(c, m, "setup_1", "0",
                      "[{\"payment_order_id\":\"o_1\",\"seller_account\":\"s\",\"amount_minor\":1000}]",
                      "automatic", SAVE_C1);
    cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE merchant_id = $1", m), "0");

    r = claim_options(c, m, "setup_1", "0", "[]", "automatic", SAVE_C1);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "claimed");
    PQclear(r);
    cr_expect_str_eq(VAL(c, "SELECT amount_total || ' ' || status || ' ' || (save_method ->> 'usage')"
                            " FROM checkouts WHERE merchant_id = $1", m),
                     "0 EXECUTING off_session");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM payment_orders WHERE merchant_id = $1", m), "0");
    PQfinish(c);
}

/* The claim's audit row says what was asked beyond a plain registration:
 * a save (and a save without a charge, "payment_orders" null), a manual
 * capture, a saved method charged off-session; pay_claim builds the detail
 * step by step, and each step is checked here. */
Test(sql, a_claims_audit_detail_names_its_options,
     .description = "registration:claimed's detail for a save without a charge (mode setup, save_payment_method, payment_orders null) and for a saved method charged with a manual capture (payment_method, off_session, capture, the orders' ids in order)")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    PGresult    *r;

    new_merchant(c, m);
    r = claim_options(c, m, "setup_1", "0", "[]", "automatic", SAVE_C1);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "claimed");
    PQclear(r);
    cr_expect_str_eq(VAL(c, "SELECT detail::text FROM audit_log WHERE merchant_id = $1"
                            " AND checkout_id = 'setup_1'", m),
                     "{\"to\": \"EXECUTING\", \"psp\": \"stripe\", \"from\": \"NOT_STARTED\","
                     " \"mode\": \"setup\", \"currency\": \"USD\", \"expires_at\": " EXPIRES_EPOCH ","
                     " \"amount_total\": 0, \"payment_orders\": null,"
                     " \"save_payment_method\": {\"usage\": \"off_session\","
                     " \"customer_ref\": \"cu_0123456789abcdef01234567\"}}");

    /* the method that save made, charged off-session with a manual capture */
    OK(c, "INSERT INTO payment_methods (merchant_id, method_id, customer, customer_ref,"
          " psp, token_sealed, token_index, usage, recurring, checkout_id, event_id)"
          " VALUES ($1, 'pm_abcdefghijklmnopabcdefgh', 'c_1', 'cu_0123456789abcdef01234567',"
          " 'stripe', 'v1.k1.sealed', repeat('ab', 32), 'off_session', 'Subscription',"
          " 'setup_1', 'evt_setup_1')", m);
    r = claim_options(c, m, "charge_1", "1500",
                      "[{\"payment_order_id\":\"o_2\",\"seller_account\":\"s\",\"amount_minor\":500},"
                      "{\"payment_order_id\":\"o_1\",\"seller_account\":\"s\",\"amount_minor\":1000}]",
                      "manual", "{\"payment_method\":\"pm_abcdefghijklmnopabcdefgh\"}");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "claimed");
    PQclear(r);
    cr_expect_str_eq(VAL(c, "SELECT detail::text FROM audit_log WHERE merchant_id = $1"
                            " AND checkout_id = 'charge_1'", m),
                     "{\"to\": \"EXECUTING\", \"psp\": \"stripe\", \"from\": \"NOT_STARTED\","
                     " \"capture\": \"manual\", \"currency\": \"USD\", \"expires_at\": " EXPIRES_EPOCH ","
                     " \"off_session\": true, \"amount_total\": 1500,"
                     " \"payment_method\": \"pm_abcdefghijklmnopabcdefgh\","
                     " \"payment_orders\": [\"o_2\", \"o_1\"]}");
    PQfinish(c);
}

Test(sql, nonce_is_merchant_colon_checkout_within_64,
     .description = "the nonce is <merchant_id>:<checkout_id>, 64 characters at the longest ids, and cannot be changed")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *co = "C123456789012345678901234567890123456789";    /* 40 */

    new_merchant_len(c, m, 23);
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .checkout = "x" }).outcome, "claimed");
    OK(c, "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total,"
          " success_url, cancel_url, status, psp_request, expires_at)"
          " VALUES ($1, $2, 'stripe', $1 || ':' || $2, 'USD', 1, 'https://a.example/',"
          " 'https://a.example/', 'EXECUTING', '', now())", m, co);
    cr_expect_str_eq(VAL(c, "SELECT length(nonce) FROM checkouts WHERE merchant_id = $1"
                            " AND checkout_id = $2", m, co), "64");
    FAILS(c, "23514", "UPDATE checkouts SET nonce = 'other:x' WHERE merchant_id = $1"
                      " AND checkout_id = 'x'", m);
    PQfinish(c);
}

Test(sql, format_checks_hold_at_their_bounds,
     .description = "the stored formats (019: lengths apart from the patterns) take a key of 1 to 255 printable characters, ids of 1 to 40, sellers of 1 to 64, a 64-digit lower-case fingerprint, and nothing past them (23514)")
{
    PGconn      *c = sqlt_connect();
    char         m[24], k255[256], k256[257], co40[41], co41[42];
    char         fp_upper[65];
    const char  *cols = "INSERT INTO payment_orders (merchant_id, payment_order_id,"
                        " checkout_id, line_no, seller_account, amount, currency, status)"
                        " VALUES ($1, $2, 'co_b', 9, $3, 1, 'USD', 'EXECUTING')";

    new_merchant(c, m);
    memset(k255, '~', 255);
    k255[0] = ' ';
    k255[255] = '\0';
    memset(k256, 'k', 256);
    k256[256] = '\0';
    memset(co40, 'c', 40);
    co40[40] = '\0';
    memset(co41, 'c', 41);
    co41[41] = '\0';
    memset(fp_upper, 'A', 64);
    fp_upper[64] = '\0';

    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = k255,
                                              .checkout = co40,
                                              .orders = "[{\"payment_order_id\":\"po_a\","
                                                        "\"seller_account\":\"seller_42\","
                                                        "\"amount_minor\":1500}]" }).outcome,
                     "claimed");
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = "k",
                                              .checkout = "co_b" }).outcome, "claimed");
    FAILS(c, "23514", claim_sql, m, k256, FP_A, "30", "86400", "co_c", "1500",
          "r", ORD1500);
    FAILS(c, "23514", claim_sql, m, "tab\there", FP_A, "30", "86400", "co_c", "1500",
          "r", ORD1500);
    FAILS(c, "23514", claim_sql, m, "", FP_A, "30", "86400", "co_c", "1500", "r", ORD1500);
    FAILS(c, "23514", claim_sql, m, "k2", fp_upper, "30", "86400", "co_c", "1500",
          "r", ORD1500);
    FAILS(c, "23514", claim_sql, m, "k3", "abc", "30", "86400", "co_c", "1500",
          "r", ORD1500);
    /* the nonce moves with the id, so that only the id's format can refuse */
    FAILS(c, "23514", "UPDATE checkouts SET checkout_id = $2, nonce = $1 || ':' || $2"
                      " WHERE merchant_id = $1 AND checkout_id = 'co_b'", m, co41);
    FAILS(c, "23514", "UPDATE checkouts SET checkout_id = $2, nonce = $1 || ':' || $2"
                      " WHERE merchant_id = $1 AND checkout_id = 'co_b'", m, "co b");
    OK(c, cols, m, "po_x", "s.e-l_1");
    FAILS(c, "23514", cols, m, "po_y", "s/1");
    FAILS(c, "23514", cols, m, "po y", "s1");
    FAILS(c, "23514", cols, m, co41, "s1");
    FAILS(c, "23514", "UPDATE payment_orders SET seller_account = repeat('s', 65)"
                      " WHERE merchant_id = $1 AND payment_order_id = 'po_x'", m);
    OK(c, "UPDATE payment_orders SET seller_account = repeat('s', 64)"
          " WHERE merchant_id = $1 AND payment_order_id = 'po_x'", m);
    PQfinish(c);
}

/* Each rule of a table's <table>_row_checks function, with
 * a statement that breaks it alone (the checkout, its orders and its key are
 * pay_claim's; the other tables' rows are inserted whole, failing before
 * their foreign keys are looked at). */
static const struct {
    const char  *constraint;
    const char  *sql;               /* $1: the merchant */
} moved_rules[] = {
#define CO " WHERE merchant_id = $1 AND checkout_id = 'co_1'"
#define PO " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'"
#define IK " WHERE merchant_id = $1 AND idem_key = 'k1'"
    { "checkouts_amount", "UPDATE checkouts SET amount_total = -1" CO },
    { "checkouts_cancel_url", "UPDATE checkouts SET cancel_url = 'https:/'" CO },
    { "checkouts_currency", "UPDATE checkouts SET currency = 'usd'" CO },
    { "checkouts_email", "UPDATE checkouts SET buyer_email = repeat('e', 255)" CO },
    { "checkouts_failure", "UPDATE checkouts SET failure = repeat('f', 1001)" CO },
    { "checkouts_id_format",
      "UPDATE checkouts SET checkout_id = 'co 1', nonce = $1 || ':co 1'" CO },
    { "checkouts_nonce", "UPDATE checkouts SET nonce = 'other:co_1'" CO },
    { "checkouts_psp_contact", "UPDATE checkouts SET psp_contact = 'sent'" CO },
    { "checkouts_psp_format", "UPDATE checkouts SET psp = 'str/pe'" CO },
    { "checkouts_psp_payment_ref", "UPDATE checkouts SET psp_payment_ref = ''" CO },
    { "checkouts_psp_token", "UPDATE checkouts SET psp_token = repeat('t', 256)" CO },
    { "checkouts_psp_url", "UPDATE checkouts SET psp_url = ''" CO },
    { "checkouts_success_url", "UPDATE checkouts SET success_url = 'x'" CO },
    { "payment_orders_amount", "UPDATE payment_orders SET amount = 0" PO },
    { "payment_orders_booked_iff_success",
      "UPDATE payment_orders SET ledger_updated = true" PO },
    /* a manual-capture order captures at most what it authorized */
    { "payment_orders_captured",
      "UPDATE payment_orders SET amount_captured = amount + 1" PO },
    { "payment_orders_commission", "UPDATE payment_orders SET commission = -1" PO },
    { "payment_orders_currency", "UPDATE payment_orders SET currency = 'US'" PO },
    { "payment_orders_id_format",
      "UPDATE payment_orders SET payment_order_id = repeat('p', 41)" PO },
    { "payment_orders_line_no", "UPDATE payment_orders SET line_no = 0" PO },
    { "payment_orders_seller_format",
      "UPDATE payment_orders SET seller_account = 'seller 42'" PO },
    { "idempotency_keys_fingerprint_format",
      "UPDATE idempotency_keys SET fingerprint = upper(fingerprint)" IK },
    { "idempotency_keys_key_format",
      "UPDATE idempotency_keys SET idem_key = 'k' || chr(10)" IK },
    { "idempotency_keys_lease", "UPDATE idempotency_keys SET lease = 0" IK },
    { "idempotency_keys_state", "UPDATE idempotency_keys SET state = 'gone'" IK },
    { "idempotency_keys_state_fields",
      "UPDATE idempotency_keys SET response_status = 201" IK },
    { "idempotency_keys_status",
      "UPDATE idempotency_keys SET state = 'done', lease_until = NULL,"
      " response_status = 600, response_body = '{}'" IK },
#define NT "INSERT INTO notifications (merchant_id, notification_id, endpoint_id," \
           " event_type, object_id, sequence, payload, status, last_error) VALUES ($1, "
    { "notifications_error", NT "'msg_' || repeat('a', 24), 'ep', 'checkout.succeeded',"
                             " 'co_1', 1, '{}', 'PENDING', repeat('e', 201))" },
    { "notifications_id_format", NT "'msg_' || repeat('A', 24), 'ep', 'checkout.succeeded',"
                                 " 'co_1', 1, '{}', 'PENDING', NULL)" },
    { "notifications_sequence", NT "'msg_' || repeat('a', 24), 'ep', 'checkout.succeeded',"
                                " 'co_1', 0, '{}', 'PENDING', NULL)" },
    { "notifications_status", NT "'msg_' || repeat('a', 24), 'ep', 'checkout.succeeded',"
                              " 'co_1', 1, '{}', 'SENT', NULL)" },
    { "notifications_type", NT "'msg_' || repeat('a', 24), 'ep', 'checkout.paid',"
                            " 'co_1', 1, '{}', 'PENDING', NULL)" },
#define WE "INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id," \
           " source) VALUES ('stripe', "
    { "webhook_events_id", WE "'', 'SUCCEEDED', 't', 'applied', $1, 'webhook')" },
    { "webhook_events_kind", WE "'evt_' || $1, 'PAID', 't', 'applied', $1, 'webhook')" },
    { "webhook_events_source", WE "'evt_' || $1, 'SUCCEEDED', 't', 'applied', $1, 'psp')" },
    { "webhook_events_type",
      WE "'evt_' || $1, 'SUCCEEDED', repeat('t', 101), 'applied', $1, 'webhook')" },
#define LE "INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount," \
           " currency) VALUES ($1, -1, 1, "
    { "ledger_entries_account", LE "'', 100, 'USD')" },
    { "ledger_entries_amount", LE "'psp_clearing:stripe', 0, 'USD')" },
    { "ledger_entries_currency", LE "'psp_clearing:stripe', 100, 'usd')" },
    { "ledger_transactions_kind",
      "INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,"
      " kind) VALUES ($1, 'co_1', 'co_1_1', 's', 'gift')" },
    { "ledger_transactions_owner",
      "INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,"
      " kind) VALUES ($1, NULL, 'co_1_1', 's', 'payment')" },
/* (a row's number and hashes are audit_log_link's to give) */
#define AL "INSERT INTO audit_log (merchant_id, chain, at, checkout_id, action, detail)" \
           " VALUES ($1, "
    { "audit_log_action", AL "1, now(), 'co_1', '', '{}')" },
    { "audit_log_chain", AL "65, now(), 'co_1', 'a', '{}')" },
    { "wallet_credits_amount",
      "INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)"
      " VALUES ($1, 'seller_42', 'USD', 0)" },
    { "wallet_credits_currency",
      "INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)"
      " VALUES ($1, 'seller_42', 'EURO', 5)" },
#define PE "INSERT INTO psp_events (psp, event_id, state, body, kind, applied_at," \
           " unmatched_at, forwarded_to) VALUES ('stripe', 'evt_' || $1, "
    { "psp_events_applied", PE "'applied', '\\x7b7d', 'SUCCEEDED', NULL, NULL, NULL)" },
    { "psp_events_forwarded", PE "'pending', '\\x7b7d', 'SUCCEEDED', NULL, NULL, 'b')" },
    { "psp_events_method_sealed",
      PE "'pending', '\\x7b7d', 'METHOD_SAVED', NULL, NULL, NULL)" },
    { "psp_events_sizes",
      PE "'pending', '\\x7b7d' || decode(repeat('20', 1048576), 'hex'), 'SUCCEEDED', NULL,"
         " NULL, NULL)" },
    { "psp_events_state", PE "'held', '\\x7b7d', 'SUCCEEDED', NULL, NULL, NULL)" },
    { "psp_events_unmatched", PE "'unmatched', '\\x7b7d', 'SUCCEEDED', NULL, NULL, NULL)" },
#define RK "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score, reason," \
           " source, review_until, reviewed, reviewed_at) VALUES ($1, 'co_1', "
    { "checkout_risk_reason", RK "'allow', 1, 'Too Risky', 'provider', NULL, NULL, NULL)" },
    /* a review with no end, then a review decided with no time */
    { "checkout_risk_review", RK "'review', 1, NULL, 'provider', NULL, NULL, NULL)" },
    { "checkout_risk_reviewed", RK "'review', 1, NULL, 'provider', now(), 'approved', NULL)" },
    { "checkout_risk_score", RK "'allow', 1001, NULL, 'provider', NULL, NULL, NULL)" },
    { "checkout_risk_source", RK "'allow', 1, NULL, 'psp', NULL, NULL, NULL)" },
    { "checkout_risk_verdict", RK "'maybe', 1, NULL, 'provider', NULL, NULL, NULL)" },
#undef CO
#undef PO
#undef IK
#undef NT
#undef WE
#undef LE
#undef AL
#undef PE
#undef RK
};

Test(sql, each_rule_moved_into_a_row_check_still_refuses_under_its_own_name,
     .description = "026 keeps the nine busiest tables' CHECK rules in one function each, 098 psp_events', 101 checkout_risk's: every one of them still refuses a row that breaks it alone, with 23514 and the rule's own name as the constraint, and those tables have no other CHECK constraint left to prepare at every statement")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *left;
    size_t       i, n = sizeof(moved_rules) / sizeof(moved_rules[0]);
    char         names[2048] = "";

    new_merchant(c, m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
    OK0(c, "SELECT pay_inbox_partitions(1)");
    for (i = 0; i < n; i++) {
        FAILS_AS(c, "23514", moved_rules[i].constraint, moved_rules[i].sql, m);
    }
    /* nothing was written: the claim's checkout reads as it was */
    cr_expect_str_eq(VAL(c, "SELECT currency || amount_total || cancel_url FROM checkouts"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "USD1500https://shop.example/cart");
    /* no other CHECK on those tables, and the functions hold exactly the
     * rules listed above */
    left = VAL0(c, "SELECT string_agg(conrelid::regclass || '.' || conname, ', ')"
                   "  FROM pg_constraint"
                   " WHERE contype = 'c' AND conrelid::regclass::text IN ('checkouts',"
                   "       'payment_orders', 'idempotency_keys', 'notifications',"
                   "       'webhook_events', 'ledger_entries', 'ledger_transactions',"
                   "       'audit_log', 'wallet_credits', 'psp_events', 'checkout_risk')"
                   "   AND conname <> conrelid::regclass || '_row_checks'");
    cr_expect_null(left, "CHECK constraints prepared at every statement: %s", left);
    for (i = 0; i < n; i++) {
        cr_assert_lt(strlen(names) + strlen(moved_rules[i].constraint) + 2, sizeof(names));
        strcat(names, i ? "," : "");
        strcat(names, moved_rules[i].constraint);
    }
    cr_expect_str_eq(VAL0(c, "SELECT string_agg(m[1], ',' ORDER BY m[1]) FROM pg_proc p,"
                             "       regexp_matches(p.prosrc, 'WHEN NOT .* THEN ''(\\w+)''$',"
                             "                      'gn') m"
                             " WHERE p.proname LIKE '%\\_row\\_checks'"
                             "   AND p.pronamespace = 'public'::regnamespace"),
                     VAL(c, "SELECT string_agg(r, ',' ORDER BY r)"
                            "  FROM unnest(string_to_array($1, ',')) r", names));
    PQfinish(c);
}

/* A rule between two bounds is a range's membership in its row check
 * (one operator to prepare where the bounds were three): both bounds are
 * in, one past either is out, under the rule's own name. */
Test(sql, a_row_check_between_two_bounds_keeps_both_bounds,
     .description = "the row checks' ranges are closed: a length or a number at either bound passes, one past it is refused (23514, the rule's name); NULL passes")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
#define CO1 " WHERE merchant_id = $1 AND checkout_id = 'co_1'"
#define K1 " WHERE merchant_id = $1 AND idem_key = 'k1'"
    OK(c, "UPDATE checkouts SET cancel_url = 'https://x'" CO1, m);
    FAILS_AS(c, "23514", "checkouts_cancel_url",
             "UPDATE checkouts SET cancel_url = 'https://'" CO1, m);
    OK(c, "UPDATE checkouts SET cancel_url = 'https://' || repeat('x', 2040)" CO1, m);
    FAILS_AS(c, "23514", "checkouts_cancel_url",
             "UPDATE checkouts SET cancel_url = 'https://' || repeat('x', 2041)" CO1, m);
    OK(c, "UPDATE checkouts SET psp_payment_ref = 'p'" CO1, m);
    OK(c, "UPDATE checkouts SET psp_payment_ref = repeat('p', 128)" CO1, m);
    FAILS_AS(c, "23514", "checkouts_psp_payment_ref",
             "UPDATE checkouts SET psp_payment_ref = repeat('p', 129)" CO1, m);
    OK(c, "UPDATE checkouts SET psp_payment_ref = NULL" CO1, m);
    OK(c, "UPDATE idempotency_keys SET state = 'done', lease_until = NULL,"
          " response_status = 100, response_body = '{}'" K1, m);
    OK(c, "UPDATE idempotency_keys SET response_status = 599" K1, m);
    FAILS_AS(c, "23514", "idempotency_keys_status",
             "UPDATE idempotency_keys SET response_status = 99" K1, m);
    FAILS_AS(c, "23514", "idempotency_keys_status",
             "UPDATE idempotency_keys SET response_status = 600" K1, m);
    OK(c, "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score, source)"
          " VALUES ($1, 'co_1', 'allow', 0, 'provider')", m);
    OK(c, "UPDATE checkout_risk SET score = 1000" CO1, m);
    FAILS_AS(c, "23514", "checkout_risk_score", "UPDATE checkout_risk SET score = -1" CO1, m);
    FAILS_AS(c, "23514", "checkout_risk_score", "UPDATE checkout_risk SET score = 1001" CO1, m);
    OK(c, "UPDATE checkout_risk SET score = NULL" CO1, m);
#undef CO1
#undef K1
    PQfinish(c);
}

Test(sql, ledger_entries_of_no_transaction_are_refused_when_their_statement_ends,
     .description = "what the foreign key of ledger_entries to ledger_transactions checked, ledger_entries_balanced checks (migration 100): balanced entries of a transaction that does not exist are refused at the end of their statement, 23503 under the rule ledger_entries_txn, nothing written; a transaction written in the same statement is found")
{
    PGconn      *c = sqlt_connect();
    char         m[24], sql[512];

    new_merchant(c, m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
    /* at the statement's end: the block's own exception would come first
     * at commit */
    snprintf(sql, sizeof(sql),
             "DO $$ BEGIN INSERT INTO ledger_entries (merchant_id, txn_id, entry_no,"
             " account, amount, currency) VALUES ('%s', -7, 1, 'a', 100, 'USD'),"
             " ('%s', -7, 2, 'b', -100, 'USD'); RAISE EXCEPTION 'not checked'; END $$",
             m, m);
    sqlt_fails_as(c, "23503", "ledger_entries_txn", sql, 0, NULL);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", m),
                     "0");
    OK(c, "WITH t AS (INSERT INTO ledger_transactions (merchant_id, checkout_id,"
          " payment_order_id, source) VALUES ($1, 'co_1', 'co_1_1', 'test')"
          " RETURNING txn_id) INSERT INTO ledger_entries (merchant_id, txn_id, entry_no,"
          " account, amount, currency) SELECT $1, t.txn_id, e.n, e.a, e.x, 'USD'"
          " FROM t, (VALUES (1, 'a', 100), (2, 'b', -100)) e(n, a, x)", m);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", m),
                     "2");
    PQfinish(c);
}

Test(sql, a_checkout_takes_its_merchants_psps_and_commission_when_registered,
     .description = "checkouts_merchant_terms, one look-up of the merchant: a checkout is registered only with one of its merchant's PSPs (PY035, nothing stored) and moved only to one; its commission is the merchant's rate and fixed part in its currency at registration, and a later rate or a move to another PSP leaves it")
{
    PGconn      *c = sqlt_connect();
    PGresult    *r;
    char         m[24];

    new_merchant(c, m);
    OK(c, "UPDATE merchants SET commission_bps = 250, psps = '{stripe,adyen}'"
          " WHERE merchant_id = $1", m);
    OK(c, "INSERT INTO merchant_commission_fixed (merchant_id, currency, amount)"
          " VALUES ($1, 'USD', 30), ($1, 'EUR', 99)", m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "claimed");
#define TERMS(co) VAL(c, "SELECT psp || ' ' || commission_bps || ' ' || commission_fixed" \
                         "  FROM checkouts WHERE merchant_id = $1 AND checkout_id = $2", m, co)
    cr_expect_str_eq(TERMS("co_1"), "stripe 250 30");

    /* a later rate never reaches it; a move to another allowed PSP keeps it */
    OK(c, "UPDATE merchants SET commission_bps = 900 WHERE merchant_id = $1", m);
    OK(c, "UPDATE checkouts SET psp = 'adyen' WHERE merchant_id = $1", m);
    cr_expect_str_eq(TERMS("co_1"), "adyen 250 30");
    FAILS(c, "PY035", "UPDATE checkouts SET psp = 'other' WHERE merchant_id = $1", m);

    /* registered with a PSP the merchant may not use: refused, nothing stored */
    OK(c, "UPDATE merchants SET psps = '{adyen}' WHERE merchant_id = $1", m);
    r = claim_exec(c, &(claim_req_t){ .merchant = m, .key = "k2", .checkout = "co_2" });
    cr_expect_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "PY035", "%s",
                     PQresultErrorMessage(r));
    PQclear(r);
    cr_expect_str_eq(VAL(c, "SELECT (SELECT count(*) FROM idempotency_keys"
                            "         WHERE merchant_id = $1 AND idem_key = 'k2')"
                            "     + (SELECT count(*) FROM checkouts"
                            "         WHERE merchant_id = $1 AND checkout_id = 'co_2')", m),
                     "0");

    /* any PSP when the merchant names none; the rate of the day */
    OK(c, "UPDATE merchants SET psps = NULL WHERE merchant_id = $1", m);
    cr_assert_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = "k3",
                                               .checkout = "co_3" }).outcome, "claimed");
    cr_expect_str_eq(TERMS("co_3"), "stripe 900 30");
#undef TERMS
    PQfinish(c);
}

Test(sql, a_row_check_of_seven_columns_or_more_takes_the_row_whole,
     .description = "checkouts, payment_orders, idempotency_keys and checkout_risk pass their row whole to their row check: PostgreSQL reads a CHECK's expression back and plans it at every statement that writes its table, and with a column each (7 to 13) the first three cost a registration 4% more instructions (bench/RESULTS.md)")
{
    PGconn  *c = sqlt_connect();

    cr_expect_str_eq(VAL0(c, "SELECT string_agg(conrelid::regclass || ': '"
                             "                  || pg_get_constraintdef(oid), '; '"
                             "                  ORDER BY conrelid::regclass::text)"
                             "  FROM pg_constraint WHERE contype = 'c'"
                             "   AND conrelid::regclass::text IN ('checkouts',"
                             "       'payment_orders', 'idempotency_keys', 'checkout_risk')"),
                     "checkout_risk: CHECK (checkout_risk_row_checks(checkout_risk.*)) NOT VALID; "
                     "checkouts: CHECK (checkouts_row_checks(checkouts.*)); "
                     "idempotency_keys: CHECK (idempotency_keys_row_checks(idempotency_keys.*)); "
                     "payment_orders: CHECK (payment_orders_row_checks(payment_orders.*))");
    PQfinish(c);
}

Test(sql, this_releases_checks_on_existing_tables_read_no_rows_at_upgrade,
     .description = "the CHECKs migrations 118, 119, 122 and 140 add to refunds, captures, payouts and recon_rows are NOT VALID: every row there already holds the new columns' defaults, and payments-migrate runs in one transaction, so a validating scan would hold each table's ACCESS EXCLUSIVE lock (every refund, capture and pay-out of the previous release's workers waiting) for as long as it reads a production table; new rows are checked all the same")
{
    PGconn  *c = sqlt_connect();

    cr_expect_str_eq(VAL0(c, "SELECT string_agg(conname || ' ' || convalidated::text, ', '"
                             "                  ORDER BY conname)"
                             "  FROM pg_constraint WHERE contype = 'c' AND conname IN ("
                             "   'refunds_psp_contact', 'captures_psp_contact',"
                             "   'payouts_psp_contact', 'refunds_psp_conf', 'captures_psp_conf',"
                             "   'payouts_psp_conf', 'recon_rows_psp_amounts',"
                             "   'recon_rows_customer', 'refunds_seller_when_pending')"),
                     "captures_psp_conf false, captures_psp_contact false, "
                     "payouts_psp_conf false, payouts_psp_contact false, "
                     "recon_rows_customer false, recon_rows_psp_amounts false, "
                     "refunds_psp_conf false, refunds_psp_contact false, "
                     "refunds_seller_when_pending false");
    PQfinish(c);
}

Test(sql, every_plpgsql_function_passes_plpgsql_check,
     .description = "plpgsql_check finds no error in any PL/pgSQL function: a "
                    "call with the wrong argument types, or a RETURN QUERY whose "
                    "columns are not the declared types, fails only at run time "
                    "and only on the path that makes it (020 fixed two)")
{
    PGconn      *c = sqlt_connect();
    const char  *errors;

    /* A trigger function is checked on one of its tables: the one its body
     * names (a branch for that table alone, as evidence_append_only's for
     * webhook_events' outcome), else the first by name, whatever the order
     * the triggers were made in; with that trigger's transition tables
     * (ledger_entries_balanced reads new_entries). */
    OK0(c, "CREATE EXTENSION IF NOT EXISTS plpgsql_check");
    errors = sqlt_value(c,
        "SELECT string_agg(format('%s line %s: %s %s', p.oid::regprocedure,"
        "                         e.lineno, e.message, coalesce(e.detail, '')),"
        "                  E'\\n' ORDER BY p.oid::regprocedure::text)"
        "  FROM pg_proc p"
        "  JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'"
        "  LEFT JOIN LATERAL (SELECT t.tgrelid, t.tgnewtable, t.tgoldtable"
        "                       FROM pg_trigger t WHERE t.tgfoid = p.oid"
        "                      ORDER BY strpos(p.prosrc, quote_literal(t.tgrelid::regclass::text)) > 0 DESC,"
        "                               t.tgrelid::regclass::text LIMIT 1) t ON true"
        "  CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid,"
        "      coalesce(t.tgrelid, 0), newtable => t.tgnewtable,"
        "      oldtable => t.tgoldtable) e"
        " WHERE p.pronamespace = 'public'::regnamespace AND e.level = 'error'",
        0, NULL);
    cr_expect_null(errors, "%s", errors);
    PQfinish(c);
}

Test(sql, claims_need_a_merchant_that_is_never_deleted,
     .description = "pay_claim refuses an unknown merchant (23503), its key not kept; a checkout stored any other way is refused as a foreign key would (checkouts_merchant_terms); merchants cannot be deleted or renamed (PY002), only disabled")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    PGresult    *r;

    new_merchant(c, m);
    r = claim_exec(c, &(claim_req_t){ .merchant = "t_no_such_merchant" });
    cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    cr_expect_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23503");
    PQclear(r);
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM idempotency_keys"
                             " WHERE merchant_id = 't_no_such_merchant'"), "0");
    FAILS0(c, "23503", "INSERT INTO checkouts (merchant_id, checkout_id, psp, currency)"
                       " VALUES ('t_no_such_merchant', 'co_1', 'stripe', 'USD')");
    /* (Not TRUNCATE here: it would lock three tables the parallel tests
     * use, in an order that can deadlock with them.) */
    FAILS(c, "PY002", "DELETE FROM merchants WHERE merchant_id = $1", m);
    FAILS(c, "PY002", "UPDATE merchants SET merchant_id = merchant_id || 'x' WHERE merchant_id = $1", m);
    OK(c, "UPDATE merchants SET disabled = true WHERE merchant_id = $1", m);
    PQfinish(c);
}

/* ---- finishing ---------------------------------------------------------- */

Test(sql, an_answer_stored_at_once_keeps_its_keys_expiry_and_a_late_one_counts_from_now,
     .description = "pay_claim gives a key its TTL and a minute a day more; pay_finish within that minute of the claim keeps the key's expiry (its UPDATE then changes no indexed column: PostgreSQL writes it in place, no index entry added), still at least the TTL after the answer; an answer stored later counts the TTL from then")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *claimed;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    claimed = VAL(c, "SELECT expires_at::text FROM idempotency_keys"
                     " WHERE merchant_id = $1 AND idem_key = 'k1'", m);
    cr_expect_str_eq(VAL(c, "SELECT expires_at - created_at FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m), "1 day 00:01:00");
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_tok", NULL, "201", "{}");
    cr_expect_str_eq(VAL(c, "SELECT expires_at::text FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m), claimed);
    cr_expect_str_eq(VAL(c, "SELECT expires_at >= now() + interval '1 day' FROM idempotency_keys"
                            " WHERE merchant_id = $1 AND idem_key = 'k1'", m), "t");

    /* claimed an hour ago (a resumed claim, a review): from now */
    claim(c, &(claim_req_t){ .merchant = m, .key = "k2", .checkout = "co_2" });
    OK(c, "UPDATE idempotency_keys SET created_at = created_at - interval '1 hour',"
          " expires_at = expires_at - interval '1 hour'"
          " WHERE merchant_id = $1 AND idem_key = 'k2'", m);
    finish(c, m, "k2", "1", "co_2", "EXECUTING", "cs_tok2", NULL, "201", "{}");
    /* pay_finish's now(): the checkout's updated_at, in its transaction */
    cr_expect_str_eq(VAL(c, "SELECT k.expires_at - c.updated_at FROM idempotency_keys k"
                            "  JOIN checkouts c USING (merchant_id, checkout_id)"
                            " WHERE k.merchant_id = $1 AND k.idem_key = 'k2'", m),
                     "1 day 00:01:00");
    PQfinish(c);
}

Test(sql, no_index_of_checkouts_names_a_column_a_registrations_answer_writes,
     .description = "pay_finish writes the checkout's PSP token, URL, expiry and updated_at: an index naming one of them (as key, expression or predicate) makes every registration's answer an update PostgreSQL cannot make in place, a new entry in each of checkouts' indexes; the FAILED sessions still open are listed in failed_open_sessions instead")
{
    PGconn  *c = sqlt_connect();

    cr_expect_null(VAL0(c, "SELECT string_agg(DISTINCT i.indexrelid::regclass || '.' || a.attname, ', ')"
                           "  FROM pg_index i"
                           "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0"
                           " WHERE i.indrelid = 'checkouts'::regclass"
                           "   AND a.attname IN ('psp_token', 'psp_url', 'expires_at', 'updated_at')"
                           "   AND (a.attnum = ANY (i.indkey)"
                           "        OR coalesce(pg_get_expr(i.indpred, i.indrelid), '')"
                           "           ~ ('\\m' || a.attname || '\\M')"
                           "        OR coalesce(pg_get_expr(i.indexprs, i.indrelid), '')"
                           "           ~ ('\\m' || a.attname || '\\M'))"));
    PQfinish(c);
}

/* failed_open_sessions' rows of merchant $1, "<checkout> <expiry as its
 * checkout's>", or "-" */
#define FAILED_OPEN "SELECT coalesce(string_agg(f.checkout_id || ' ' ||"          \
                    " (f.expires_at = c.expires_at), ','), '-')"                  \
                    " FROM failed_open_sessions f JOIN checkouts c"               \
                    " USING (merchant_id, checkout_id) WHERE f.merchant_id = $1"
#define CO_1        " WHERE merchant_id = $1 AND checkout_id = 'co_1'"

Test(sql, failed_open_sessions_lists_the_failed_checkouts_whose_session_may_still_take_a_payment,
     .description = "checkouts_failed_open keeps failed_open_sessions (the sweeper's list, 096) to the FAILED checkouts with a session URL and an expiry: listed when one fails, its expiry followed, gone when its URL goes or it leaves FAILED (paid after all), listed again when it has both")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_tok", NULL, "201", "{}"),
                     "{}");
    cr_expect_str_eq(VAL(c, FAILED_OPEN, m), "-", "an open session is not a failed one");

    OK(c, "UPDATE checkouts SET status = 'FAILED', failure_code = 'declined'" CO_1, m);
    cr_expect_str_eq(VAL(c, FAILED_OPEN, m), "co_1 true");
    OK(c, "UPDATE checkouts SET expires_at = expires_at + interval '1 hour'" CO_1, m);
    cr_expect_str_eq(VAL(c, FAILED_OPEN, m), "co_1 true", "its expiry followed");
    OK(c, "UPDATE checkouts SET psp_url = NULL" CO_1, m);
    cr_expect_str_eq(VAL(c, FAILED_OPEN, m), "-", "no session URL, nothing to ask about");
    OK(c, "UPDATE checkouts SET psp_url = 'https://psp.example/pay'" CO_1, m);
    cr_expect_str_eq(VAL(c, FAILED_OPEN, m), "co_1 true");
    /* the documented exception: money the PSP took after a failure */
    OK0(c, "SELECT set_config('payments.paid_after_failed', 'on', false)");
    OK(c, "UPDATE checkouts SET status = 'SUCCESS'" CO_1, m);
    cr_expect_str_eq(VAL(c, FAILED_OPEN, m), "-", "paid after it failed: no longer listed");
    PQfinish(c);
}

#undef FAILED_OPEN
#undef CO_1

Test(sql, finish_stores_once_then_returns_the_stored_answer,
     .description = "pay_finish stores token, url, lookup row and answer once; a second call changes nothing")
{
    PGconn  *c = sqlt_connect();
    char     m[24];
    char     body1[] = "{\"status\":\"EXECUTING\"}";
    char     expect[160];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_tok", NULL, "201", body1),
                     body1);
    /* Another status and body, even another lease: the stored answer wins. */
    OK(c, finish_sql, m, "k1", "9", "co_1", "FAILED", NULL, NULL, "declined", "201", "{\"other\":1}");
    OK(c, finish_sql, m, "k1", "1", "co_1", "EXECUTING", NULL, NULL, NULL, "502", "{}");
    cr_expect_str_eq(VAL(c, "SELECT response_status || ' ' || response_body || ' ' || state"
                            " FROM idempotency_keys WHERE merchant_id = $1", m),
                     "201 {\"status\":\"EXECUTING\"} done");
    snprintf(expect, sizeof(expect), "EXECUTING %s.cs_tok https://psp.example/pay/%s.cs_tok -", m, m);
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || psp_token || ' ' || psp_url || ' '"
                            " || coalesce(failure, '-') FROM checkouts WHERE merchant_id = $1", m),
                     expect);
    snprintf(expect, sizeof(expect), "%s co_1", m);
    cr_expect_str_eq(VAL(c, "SELECT merchant_id || ' ' || checkout_id FROM psp_tokens"
                            " WHERE psp = 'stripe' AND psp_token = $1 || '.cs_tok'", m), expect);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(status::text, ',') FROM payment_orders"
                            " WHERE merchant_id = $1", m), "EXECUTING,EXECUTING");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1", m), "2");
    PQfinish(c);
}

Test(sql, finish_refuses_another_checkout_or_unknown_key,
     .description = "pay_finish refuses a key it does not know and a checkout that is not the key's (PY004)")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    FAILS(c, "PY004", finish_sql, m, "nope", "1", "co_1", "EXECUTING", "t", "https://u.example/",
          NULL, "201", "{}");
    FAILS(c, "PY004", finish_sql, m, "k1", "1", "co_9", "EXECUTING", "t", "https://u.example/",
          NULL, "201", "{}");
    FAILS(c, "22023", finish_sql, m, "k1", "1", "co_1", "EXECUTING", NULL, NULL,
          NULL, "201", "{}");
    cr_expect_str_eq(VAL(c, "SELECT state FROM idempotency_keys WHERE merchant_id = $1", m),
                     "in_progress");
    PQfinish(c);
}

Test(sql, finish_failed_moves_checkout_and_orders_with_events,
     .description = "pay_finish FAILED: checkout and orders EXECUTING -> FAILED, events from registration, reason stored")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "FAILED", NULL, "card_declined", "201", "{\"status\":\"FAILED\"}");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || failure || ' ' || (psp_token IS NULL)"
                            " FROM checkouts WHERE merchant_id = $1", m),
                     "FAILED card_declined true");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ':' || status, ',' ORDER BY line_no)"
                            " FROM payment_orders WHERE merchant_id = $1", m),
                     "co_1_1:FAILED,co_1_2:FAILED");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ':' || from_status || '>'"
                            " || to_status || ':' || source, ',' ORDER BY event_id)"
                            " FROM order_events WHERE merchant_id = $1", m),
                     "co_1_1:NOT_STARTED>EXECUTING:registration,"
                     "co_1_2:NOT_STARTED>EXECUTING:registration,"
                     "co_1_1:EXECUTING>FAILED:registration,"
                     "co_1_2:EXECUTING>FAILED:registration");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_tokens WHERE merchant_id = $1", m), "0");
    PQfinish(c);
}

/* ---- registration on the audit chain, abandon, refresh ------------------ */

/* "action:checkout" of the merchant's audit rows, in the order written
 * (a checkout's rows are in one chain, in order; different checkouts'
 * chains differ: 015), without chain 0's row that opened the chains */
#define AUDIT_ROWS \
    "SELECT coalesce(string_agg(action || ':' || coalesce(checkout_id, ''), ','" \
    " ORDER BY at, seq), '') FROM audit_log WHERE merchant_id = $1" \
    " AND action <> 'audit:chains_opened'"

Test(sql, registration_moves_reach_the_audit_chain,
     .description = "pay_claim's NOT_STARTED->EXECUTING and pay_finish's FAILED are audit rows of the same transactions; the chain verifies")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(VAL(c, AUDIT_ROWS, m), "registration:claimed:co_1");
    cr_expect_str_eq(VAL(c, "SELECT detail::text FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'registration:claimed'", m),
                     "{\"to\": \"EXECUTING\", \"psp\": \"stripe\", \"from\": \"NOT_STARTED\","
                     " \"currency\": \"USD\", \"expires_at\": " EXPIRES_EPOCH ","
                     " \"amount_total\": 1500, \"payment_orders\": [\"co_1_1\", \"co_1_2\"]}");

    /* a replay, a duplicate and a live lease move nothing: no row */
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "in_use");
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = "k2" }).outcome,
                     "duplicate");

    finish(c, m, "k1", "1", "co_1", "FAILED", NULL, "card_declined", "201", "{}");
    cr_expect_str_eq(VAL(c, AUDIT_ROWS, m),
                     "registration:claimed:co_1,registration:failed:co_1");
    cr_expect_str_eq(VAL(c, "SELECT detail ->> 'failure' || ' ' || (detail -> 'payment_orders')::text"
                            " FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'registration:failed'", m),
                     "card_declined [\"co_1_1\", \"co_1_2\"]");

    /* a finish that registered moves no status, and a second finish
     * returns the stored answer: nothing more on the chain */
    claim(c, &(claim_req_t){ .merchant = m, .key = "k3", .checkout = "co_3" });
    finish(c, m, "k3", "1", "co_3", "EXECUTING", "cs_3", NULL, "201", "{}");
    finish(c, m, "k1", "1", "co_1", "FAILED", NULL, "card_declined", "201", "{}");
    cr_expect_str_eq(VAL(c, AUDIT_ROWS, m),
                     "registration:claimed:co_1,registration:failed:co_1,"
                     "registration:claimed:co_3");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}

Test(sql, abandon_undoes_a_claim_the_sweeper_noted,
     .description = "a claim whose PSP call failed stays EXECUTING without a token; past alert= the sweeper notes it (checkout_sweeps.alerted_at), an approved review is noted late (sweeper_late); the shop's retry resumes it, the circuit is open, and pay_abandon removes those notes with the checkout (it failed on their foreign keys)")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    OK(c, "INSERT INTO checkout_sweeps (merchant_id, checkout_id, alerted_at)"
            " VALUES ($1, 'co_1', now())", m);
    OK(c, "INSERT INTO sweeper_late (merchant_id, checkout_id, ask, alert)"
            " VALUES ($1, 'co_1', false, true)", m);

    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k1', 1, 'psp_circuit_open')", m), "t");
    cr_expect_str_eq(VAL(c, "SELECT (SELECT count(*) FROM checkouts WHERE merchant_id = $1)"
                            " + (SELECT count(*) FROM checkout_sweeps WHERE merchant_id = $1)"
                            " + (SELECT count(*) FROM sweeper_late WHERE merchant_id = $1)",
                         m), "0");
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = "k2" }).outcome,
                     "claimed", "the ids register again");
    PQfinish(c);
}

Test(sql, abandon_undoes_a_claim_so_the_ids_register_again,
     .description = "pay_abandon under the claim's lease removes the checkout, orders, events and key in one transaction; the ids register again; the audit chain keeps both")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });

    /* another lease, or an unknown key: nothing changes */
    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k1', 7, 'psp_refused_credentials')", m), "f");
    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'nope', 1, 'psp_refused_credentials')", m), "f");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1", m), "2");

    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k1', 1, 'psp_refused_credentials')", m), "t");
    cr_expect_str_eq(VAL(c, "SELECT (SELECT count(*) FROM checkouts WHERE merchant_id = $1)"
                            " + (SELECT count(*) FROM payment_orders WHERE merchant_id = $1)"
                            " + (SELECT count(*) FROM order_events WHERE merchant_id = $1)"
                            " + (SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1)",
                         m), "0");
    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k1', 1, 'psp_refused_credentials')", m), "f");

    /* a new key registers the same checkout and order ids; so would k1 */
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m, .key = "k2" }).outcome,
                     "claimed");
    cr_expect_str_eq(VAL(c, AUDIT_ROWS, m),
                     "registration:claimed:co_1,registration:abandoned:co_1,"
                     "registration:claimed:co_1");
    cr_expect_str_eq(VAL(c, "SELECT detail::text FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'registration:abandoned'", m),
                     "{\"to\": \"NOT_STARTED\", \"from\": \"EXECUTING\", \"reason\":"
                     " \"psp_refused_credentials\", \"payment_orders\": [\"co_1_1\", \"co_1_2\"]}");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");

    /* a claim the PSP answered is never abandoned: FAILED, or registered */
    finish(c, m, "k2", "1", "co_1", "FAILED", NULL, "card_declined", "201", "{}");
    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k2', 1, 'psp_refused_credentials')", m), "f");
    claim(c, &(claim_req_t){ .merchant = m, .key = "k3", .checkout = "co_3" });
    finish(c, m, "k3", "1", "co_3", "EXECUTING", "cs_3", NULL, "201", "{}");
    cr_expect_str_eq(VAL(c, "SELECT pay_abandon($1, 'k3', 1, 'psp_refused_credentials')", m), "f");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1", m), "6");
    PQfinish(c);
}

/* As the owner, in a transaction the caller rolls back: the audit log's
 * append-only guard off, to change its rows.  Both tables locked first, in
 * the order an append takes them (the log, then the anchors,
 * audit_log_link): ALTER TABLE's lock on one table alone, taken while
 * another test's append held the other, can deadlock with it. */
static void
audit_guards_off(PGconn *c)
{
    OK0(c, "BEGIN");
    OK0(c, "LOCK TABLE audit_log, audit_heads IN SHARE ROW EXCLUSIVE MODE");
    OK0(c, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change");
}

Test(sql, a_merchants_audit_chains_each_verify,
     .description = "015: a checkout's rows go to one of 64 chains (1 + sha256 byte mod 64), others to chain 0, which opens the 64 once; pay_audit_verify fails when a row is changed, moved to another chain, or a chain goes whole")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "SELECT audit_append($1, NULL, 'payout:requested', '{}'),"
          " audit_append($1, 'co_a', 'registration:claimed', '{}'),"
          " audit_append($1, 'co_b', 'registration:claimed', '{}'),"
          " audit_append($1, 'co_a', 'webhook:applied', '{}')", m);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(chain || '/' || seq || ':' || action, ','"
                            " ORDER BY chain, seq) FROM audit_log WHERE merchant_id = $1"
                            " AND chain = 0", m),
                     "0/1:payout:requested,0/2:audit:chains_opened");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(seq || ':' || action, ',' ORDER BY seq)"
                            " FROM audit_log WHERE merchant_id = $1"
                            " AND chain = audit_chain_of('co_a')", m),
                     "1:registration:claimed,2:webhook:applied");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_heads WHERE merchant_id = $1", m),
                     "65");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");

    audit_guards_off(c);
    OK0(c, "ALTER TABLE audit_heads DISABLE TRIGGER audit_heads_forward");
    OK0(c, "SAVEPOINT s");
    OK(c, "UPDATE audit_log SET chain = (audit_chain_of('co_a') % 64) + 1"
          " WHERE merchant_id = $1 AND checkout_id = 'co_b'", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "f", "a row moved");
    OK0(c, "ROLLBACK TO s");
    OK(c, "DELETE FROM audit_log WHERE merchant_id = $1 AND checkout_id = 'co_b'", m);
    OK(c, "DELETE FROM audit_heads WHERE merchant_id = $1"
          " AND chain = audit_chain_of('co_b')", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "f", "a chain gone whole");
    OK0(c, "ROLLBACK TO s");
    OK(c, "UPDATE audit_log SET detail = '{\"x\": 1}' WHERE merchant_id = $1"
          " AND action = 'webhook:applied'", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "f", "a row changed");
    OK0(c, "ROLLBACK TO s");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    OK0(c, "ROLLBACK");
    PQfinish(c);
}

Test(sql, an_audit_row_up_to_its_chains_anchor_cannot_go_unseen,
     .description = "every eighth row of a chain is its anchor once the next row comes (audit_log_link): removing the anchor's row, or a row before it, fails pay_audit_verify; the rows after the anchor (eight at most) are the window doc/DESIGN.md states, held by the log's append-only triggers only")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "SELECT audit_append($1, 'co_a', 'test:moved', jsonb_build_object('n', g))"
          " FROM generate_series(1, 9) g", m);
    cr_expect_str_eq(VAL(c, "SELECT h.seq || ' ' || (h.hash = a.hash AND h.prev_hash = a.prev_hash)"
                            " FROM audit_heads h JOIN audit_log a USING (merchant_id, chain, seq)"
                            " WHERE h.merchant_id = $1 AND h.chain = audit_chain_of('co_a')", m),
                     "8 true");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");

    audit_guards_off(c);
    OK0(c, "SAVEPOINT s");
    OK(c, "DELETE FROM audit_log WHERE merchant_id = $1 AND checkout_id = 'co_a'"
          " AND seq >= 8", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "f", "the anchor's row gone");
    OK0(c, "ROLLBACK TO s");
    OK(c, "DELETE FROM audit_log WHERE merchant_id = $1 AND checkout_id = 'co_a'"
          " AND seq >= 3", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "f", "the tail before it gone");
    OK0(c, "ROLLBACK TO s");
    /* the window: the ninth row, past the anchor */
    OK(c, "DELETE FROM audit_log WHERE merchant_id = $1 AND checkout_id = 'co_a'"
          " AND seq = 9", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    OK0(c, "ROLLBACK");

    /* a row comes without its number and hashes: the log gives them */
    FAILS(c, "PY002", "INSERT INTO audit_log (merchant_id, chain, seq, at, checkout_id, action,"
                      " detail, prev_hash, hash) VALUES ($1, audit_chain_of('co_a'), 10, now(),"
                      " 'co_a', 'test:moved', '{}', '\\x', '\\x')", m);
    cr_expect_str_eq(VAL(c, "SELECT max(seq) FROM audit_log WHERE merchant_id = $1"
                            " AND checkout_id = 'co_a'", m), "9");
    PQfinish(c);
}

/* An older release moved a chain's head to every row it appended, so an
 * upgraded chain's anchor may be its last row, an eighth one among them:
 * the next append leaves it there (its guard refuses a move that is not
 * forward) rather than fail. */
Test(sql, an_anchor_an_older_release_left_on_the_last_row_stays_there,
     .description = "a chain of 16 rows whose anchor is its 16th row (where a release before the anchors left its head): the 17th append leaves the anchor at 16 and is stored; the 25th moves it to 24; the chain verifies")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "SELECT audit_append($1, 'co_a', 'test:moved', jsonb_build_object('n', g))"
          " FROM generate_series(1, 16) g", m);
    OK(c, "UPDATE audit_heads h SET seq = a.seq, prev_hash = a.prev_hash, hash = a.hash"
          "  FROM audit_log a WHERE h.merchant_id = $1 AND h.chain = audit_chain_of('co_a')"
          "   AND a.merchant_id = h.merchant_id AND a.chain = h.chain AND a.seq = 16", m);

    OK(c, "SELECT audit_append($1, 'co_a', 'test:moved', '{}')", m);
    cr_expect_str_eq(VAL(c, "SELECT h.seq || ' ' || (SELECT max(seq) FROM audit_log a"
                            "  WHERE a.merchant_id = h.merchant_id AND a.chain = h.chain)"
                            " FROM audit_heads h WHERE h.merchant_id = $1"
                            " AND h.chain = audit_chain_of('co_a')", m), "16 17");
    OK(c, "SELECT audit_append($1, 'co_a', 'test:moved', '{}') FROM generate_series(1, 8)", m);
    cr_expect_str_eq(VAL(c, "SELECT seq FROM audit_heads WHERE merchant_id = $1"
                            " AND chain = audit_chain_of('co_a')", m), "24");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}

Test(sql, an_audit_rows_hash_is_the_documented_formula,
     .description = "each row's hash, in chain 0 and in a checkout's chain, is sha256 of the previous hash and the row's fields as doc/DESIGN.md describes them, written out here apart from the functions: pay_audit_verify shares its formulas with audit_append, so a change to both would pass it and no longer verify the rows stored before")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "SELECT audit_append($1, NULL, 'payout:requested', '{\"amount\": 100}'),"
          " audit_append($1, 'co_a', 'registration:claimed', '{\"n\": [1, 2]}'),"
          " audit_append($1, 'co_a', 'risk:allow', '{}')", m);
    /* chain 0: merchant|seq|µs|checkout|action|detail; a checkout's chain:
     * merchant|chain/seq|µs|checkout|action|detail */
    cr_expect_str_eq(VAL(c, "SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE hash <> sha256("
                            "  prev_hash || convert_to(merchant_id || '|'"
                            "    || CASE WHEN chain = 0 THEN '' ELSE chain || '/' END || seq || '|'"
                            "    || (extract(epoch FROM at) * 1000000)::bigint || '|'"
                            "    || coalesce(checkout_id, '') || '|' || action || '|' || detail::text,"
                            "  'UTF8'))) || ' other'"
                            " FROM audit_log WHERE merchant_id = $1", m),
                     "4 rows, 0 other");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}

Test(sql, an_audit_entry_writes_no_head_but_every_eighth_rows_anchor,
     .description = "a chain's head is its last audit_log row: appends 2..8 of a chain write nothing to audit_heads (their WAL, read back with pg_walinspect, has no record of it); the ninth moves the chain's anchor to the eighth in one update, with no lock of the row before it; the anchor's guard refuses a move backwards, to a row the chain lacks, and a removal")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    OK0(c, "CREATE EXTENSION IF NOT EXISTS pg_walinspect");
    new_merchant(c, m);
    /* the merchant's 64 chains opened (the first entry of a checkout does,
     * noting it in chain 0) */
    OK(c, "SELECT audit_append($1, 'co_a', 'registration:claimed', '{}')", m);

    char from[32], xid[32];
    /* block references read "blkref #0: rel 1663/<db>/<filenode> fork ..." */
#define HEAD_RECORDS(type) \
    "SELECT count(*) FROM pg_get_wal_records_info_till_end_of_wal($1::pg_lsn) r" \
    " WHERE r.xid::text = $2 AND r.resource_manager IN ('Heap', 'Heap2')" \
    "   AND split_part(r.record_type, '+', 1) " type \
    "   AND r.block_ref LIKE '%/' || pg_relation_filenode('audit_heads') || ' %'"
    /* the commit flushed, so that its records can be read back at once */
#define APPEND_IN_ONE(n) do { \
        snprintf(from, sizeof(from), "%s", VAL0(c, "SELECT pg_current_wal_insert_lsn()")); \
        OK0(c, "BEGIN"); \
        OK0(c, "SET LOCAL synchronous_commit = on"); \
        OK(c, "SELECT audit_append($1, 'co_a', 'webhook:applied', '{}')" \
              " FROM generate_series(1, $2::int)", m, #n); \
        snprintf(xid, sizeof(xid), "%s", VAL0(c, "SELECT pg_current_xact_id()::text")); \
        OK0(c, "COMMIT"); \
    } while (0)

    APPEND_IN_ONE(7);
    const char *rows = VAL(c, HEAD_RECORDS("IS NOT NULL"), from, xid);

    cr_expect_str_eq(rows, "0", "rows 2..8 wrote to audit_heads: %s records, from %s, xid %s",
                     rows, from, xid);
    APPEND_IN_ONE(1);
    const char *updates = VAL(c, HEAD_RECORDS("IN ('UPDATE', 'HOT_UPDATE')"), from, xid);
    const char *locks = VAL(c, HEAD_RECORDS("= 'LOCK'"), from, xid);

    cr_expect_str_eq(updates, "1", "the anchor's update is in the ninth's WAL: %s, from %s,"
                     " xid %s", updates, from, xid);
    cr_expect_str_eq(locks, "0", "no lock of the anchor before it: %s", locks);
#undef APPEND_IN_ONE
#undef HEAD_RECORDS
    cr_expect_str_eq(VAL(c, "SELECT seq FROM audit_heads WHERE merchant_id = $1"
                            " AND chain = audit_chain_of('co_a')", m), "8");

    /* the guard: forward only, to a row of the chain, never removed */
    FAILS(c, "PY002", "UPDATE audit_heads h SET seq = a.seq, prev_hash = a.prev_hash,"
                      " hash = a.hash FROM audit_log a WHERE h.merchant_id = $1"
                      " AND h.chain = audit_chain_of('co_a') AND a.merchant_id = h.merchant_id"
                      " AND a.chain = h.chain AND a.seq = 7", m);
    FAILS(c, "PY002", "UPDATE audit_heads SET seq = seq + 1 WHERE merchant_id = $1"
                      " AND chain = audit_chain_of('co_a')", m);
    FAILS(c, "PY002", "DELETE FROM audit_heads WHERE merchant_id = $1"
                      " AND chain = audit_chain_of('co_a')", m);
    cr_expect_str_eq(VAL(c, "SELECT seq FROM audit_heads WHERE merchant_id = $1"
                            " AND chain = audit_chain_of('co_a')", m), "8");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}

Test(sql, refresh_stores_a_new_request_under_the_live_lease_only,
     .description = "pay_refresh replaces the stored request and expires_at under the live lease, audits it, and refuses a stale lease or a registered checkout (PY003)",
     .timeout = 30)
{
    PGconn   *c = sqlt_connect();
    char      m[24];
    claim_t   r;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m, .lease_s = "1" });
    usleep(1200 * 1000);

    /* the lease ran out: its holder may not refresh */
    FAILS(c, "PY003", "SELECT pay_refresh($1, 'k1', 1, 1795400000, 'new')", m);
    r = claim(c, &(claim_req_t){ .merchant = m });
    cr_assert_str_eq(r.outcome, "resumed");
    FAILS(c, "PY003", "SELECT pay_refresh($1, 'k1', 1, 1795400000, 'new')", m);

    cr_expect_str_eq(VAL(c, "SELECT pay_refresh($1, 'k1', 2, 1795400000, 'new')", m),
                     EXPIRES_EPOCH);
    cr_expect_str_eq(VAL(c, "SELECT psp_request || ' ' || ts_epoch(expires_at) FROM checkouts"
                            " WHERE merchant_id = $1", m), "new 1795400000");
    cr_expect_str_eq(VAL(c, AUDIT_ROWS, m),
                     "registration:claimed:co_1,registration:refreshed:co_1");

    /* what a later resume sends is the refreshed request */
    OK(c, "SELECT pay_release($1, 'k1', 2)", m);
    r = claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(r.psp_request, "new");
    cr_expect_str_eq(r.expires_at, "1795400000");

    finish(c, m, "k1", "3", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    FAILS(c, "PY003", "SELECT pay_refresh($1, 'k1', 3, 1795400000, 'newer')", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}

/* ---- the database's own guards ------------------------------------------ */

Test(sql, status_only_moves_forward,
     .description = "the trigger refuses any status move that is not NOT_STARTED->EXECUTING->SUCCESS|FAILED; same->same is a no-op")
{
    PGconn  *c = sqlt_connect();
    char     m[24];
    const char *upd = "UPDATE payment_orders SET status = $2::pay_status,"
                      " ledger_updated = ($2 = 'SUCCESS'),"
                      " wallet_updated = ($2 = 'SUCCESS')"
                      " WHERE merchant_id = $1 AND payment_order_id = $3";

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    FAILS(c, "PY001", upd, m, "NOT_STARTED", "co_1_1");         /* backwards */
    OK(c, upd, m, "EXECUTING", "co_1_1");                       /* same: no-op */
    OK(c, upd, m, "SUCCESS", "co_1_1");
    FAILS(c, "PY001", upd, m, "FAILED", "co_1_1");              /* terminal */
    FAILS(c, "PY001", upd, m, "EXECUTING", "co_1_1");
    OK(c, upd, m, "FAILED", "co_1_2");
    FAILS(c, "PY001", upd, m, "SUCCESS", "co_1_2");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(status::text, ',' ORDER BY line_no)"
                            " FROM payment_orders WHERE merchant_id = $1", m), "SUCCESS,FAILED");

    FAILS(c, "PY001", "UPDATE checkouts SET status = 'NOT_STARTED' WHERE merchant_id = $1", m);
    OK(c, "UPDATE checkouts SET status = 'SUCCESS' WHERE merchant_id = $1", m);
    FAILS(c, "PY001", "UPDATE checkouts SET status = 'EXECUTING' WHERE merchant_id = $1", m);
    FAILS(c, "PY001", "INSERT INTO payment_orders (merchant_id, payment_order_id, checkout_id,"
                      " line_no, seller_account, amount, currency, status)"
                      " VALUES ($1, 'born_done', 'co_1', 3, 's', 1, 'USD', 'SUCCESS')", m);
    PQfinish(c);
}

Test(sql, a_success_is_booked_or_refused,
     .description = "payment_orders: ledger_updated and wallet_updated are true exactly when the status is SUCCESS (23514 otherwise)")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    FAILS(c, "23514", "UPDATE payment_orders SET status = 'SUCCESS'"
                      " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m);
    FAILS(c, "23514", "UPDATE payment_orders SET ledger_updated = true"
                      " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m);
    FAILS(c, "23514", "UPDATE payment_orders SET status = 'SUCCESS',"
                      " ledger_updated = true"
                      " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m);
    OK(c, "UPDATE payment_orders SET status = 'SUCCESS', ledger_updated = true,"
          " wallet_updated = true"
          " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m);
    PQfinish(c);
}

Test(sql, operation_keys_are_append_only,
     .description = "operation_keys (the request that made each refund, capture and pay-out, which a retry after its key was purged finds) refuses UPDATE, DELETE and TRUNCATE, even from the owner")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)"
          " VALUES ($1, 'k1', repeat('a', 64), 'refund', 'rf_' || repeat('0', 24))", m);
    FAILS(c, "PY002", "UPDATE operation_keys SET op_id = 'rf_' || repeat('1', 24)"
                      " WHERE merchant_id = $1", m);
    FAILS(c, "PY002", "DELETE FROM operation_keys WHERE merchant_id = $1", m);
    /* rolled back whatever happens: a missing guard must not wipe the
     * other tests' rows */
    OK0(c, "BEGIN");
    FAILS0(c, "PY002", "TRUNCATE operation_keys");
    OK0(c, "ROLLBACK");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM operation_keys WHERE merchant_id = $1", m),
                     "1");
    PQfinish(c);
}


Test(sql, order_events_are_append_only,
     .description = "order_events refuses UPDATE, DELETE and TRUNCATE, even from the owner")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    FAILS(c, "PY002", "UPDATE order_events SET source = 'forged' WHERE merchant_id = $1", m);
    FAILS(c, "PY002", "DELETE FROM order_events WHERE merchant_id = $1", m);
    /* pay_abandon's setting names another checkout: still refused; and it
     * never lets an update or a later move's event through */
    OK0(c, "BEGIN");
    OK(c, "SELECT set_config('payments.abandon_checkout', $1 || ':co_2', true)", m);
    FAILS(c, "PY002", "DELETE FROM order_events WHERE merchant_id = $1", m);
    OK0(c, "ROLLBACK");
    finish(c, m, "k1", "1", "co_1", "FAILED", NULL, "card_declined", "201", "{}");
    OK0(c, "BEGIN");
    OK(c, "SELECT set_config('payments.abandon_checkout', $1 || ':co_1', true)", m);
    FAILS(c, "PY002", "UPDATE order_events SET source = 'forged' WHERE merchant_id = $1", m);
    OK0(c, "ROLLBACK");
    OK0(c, "BEGIN");
    OK(c, "SELECT set_config('payments.abandon_checkout', $1 || ':co_1', true)", m);
    FAILS(c, "PY002", "DELETE FROM order_events WHERE merchant_id = $1 AND to_status = 'FAILED'", m);
    OK0(c, "ROLLBACK");
    /* In a transaction that is rolled back whatever happens: should the
     * guard ever be missing, the test must not wipe the other tests' rows. */
    OK0(c, "BEGIN");
    FAILS0(c, "PY002", "TRUNCATE order_events");
    OK0(c, "ROLLBACK");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1"
                            " AND source = 'registration'", m), "4");
    PQfinish(c);
}

Test(sql, gateway_role_executes_functions_but_touches_no_table,
     .description = "payments_gateway logs in, may EXECUTE pay_* functions only (the contract's eight among them), and has no table privilege")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *tables[] = { "merchants", "api_keys", "merchant_return_origins",
                              "idempotency_keys", "checkouts", "payment_orders",
                              "order_events", "psp_tokens", "schema_migrations" };
    char         sql[128];
    size_t       i;

    new_merchant(c, m);
    cr_expect_str_eq(VAL0(c, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'payments_gateway'"), "t");
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                             " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm')"
                             " AND has_table_privilege('payments_gateway', c.oid,"
                             " 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')"), "0");
    /* Later migrations may add pay_* functions: the rule is that the gateway
     * executes nothing else, and at least the contract's set. */
    cr_expect_str_eq(VAL0(c, "SELECT coalesce(string_agg(p.proname, ','), 'none') FROM pg_proc p"
                             " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                             " AND has_function_privilege('payments_gateway', p.oid, 'EXECUTE')"
                             " AND p.proname NOT LIKE 'pay\\_%'"
                             " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
                             " AND d.objid = p.oid AND d.deptype = 'e')"), "none");
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM unnest(ARRAY['pay_auth(text)',"
                             " 'pay_claim(text,text,text,int,int,text,text,text,bigint,text,text,text,bigint,text,jsonb,text)',"
                             " 'pay_finish(text,text,bigint,text,text,text,text,bigint,text,int,text)',"
                             " 'pay_release(text,text,bigint)', 'pay_get_order(text,text)',"
                             " 'pay_get_checkout(text,text)', 'pay_pay_target(text,text)', 'pay_purge(int)']) f"
                             " WHERE has_function_privilege('payments_gateway', f::regprocedure, 'EXECUTE')"), "8");
    cr_expect_str_eq(VAL0(c, "SELECT bool_and(p.prosecdef AND p.proconfig @> '{\"search_path=public, pg_temp\"}')"
                             " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                             " WHERE n.nspname = 'public' AND p.proname LIKE 'pay\\_%'"), "t");

    claim(c, &(claim_req_t){ .merchant = m });
    OK0(c, "SET ROLE payments_gateway");
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        snprintf(sql, sizeof(sql), "SELECT * FROM %s LIMIT 1", tables[i]);
        FAILS0(c, "42501", sql);
    }
    FAILS(c, "42501", "UPDATE checkouts SET status = 'SUCCESS' WHERE merchant_id = $1", m);
    FAILS(c, "42501", "INSERT INTO merchants (merchant_id, mode) VALUES ($1 || 'x', 'live')", m);
    FAILS0(c, "42501", "SELECT ts_rfc3339(now())");
    /* ... while the functions work, as the adapter will call them. */
    cr_expect_str_eq(VAL(c, "SELECT pay_get_checkout($1, 'co_1')::json ->> 'status'", m), "EXECUTING");
    cr_expect_str_eq(claim(c, &(claim_req_t){ .merchant = m }).outcome, "in_use");
    OK0(c, "RESET ROLE");
    PQfinish(c);
}

Test(sql, auth_answers_active_keys_of_enabled_merchants,
     .description = "pay_auth: merchant, hash, mode and sorted origins for an active key; nothing when revoked, disabled or unknown")
{
    PGconn      *c = sqlt_connect();
    char         m[24], kid[13], kid2[13];
    PGresult    *r;
    const char  *q = "SELECT merchant_id, key_hash, mode, origins FROM pay_auth($1)";

    new_merchant(c, m);
    sqlt_random_hex(kid, 12);
    sqlt_random_hex(kid2, 12);
    OK(c, "INSERT INTO merchant_return_origins (merchant_id, origin) VALUES ($1, 'https://a.example:8443')", m);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'test')",
       kid, m, FP_B);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'test')",
       kid2, m, FP_A);

    r = sqlt_ok(c, q, 1, ARGV(kid));
    cr_assert_eq(PQntuples(r), 1);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), m);
    cr_expect_str_eq(PQgetvalue(r, 0, 1), FP_B);
    cr_expect_str_eq(PQgetvalue(r, 0, 2), "test");
    cr_expect_str_eq(PQgetvalue(r, 0, 3), "{https://a.example:8443,https://shop.example}");
    PQclear(r);

    OK(c, "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", kid);
    r = sqlt_ok(c, q, 1, ARGV(kid));
    cr_expect_eq(PQntuples(r), 0, "a revoked key authenticates");
    PQclear(r);

    OK(c, "UPDATE merchants SET disabled = true WHERE merchant_id = $1", m);
    r = sqlt_ok(c, q, 1, ARGV(kid2));
    cr_expect_eq(PQntuples(r), 0, "a disabled merchant's key authenticates");
    PQclear(r);

    r = sqlt_ok(c, q, 1, ARGV("nosuchkey000"));
    cr_expect_eq(PQntuples(r), 0);
    PQclear(r);
    PQfinish(c);
}

Test(sql, auth_answers_no_key_of_the_other_mode_than_its_merchants,
     .description = "pay_auth: a live key of a test merchant (written by hand: the CLI "
                    "refuses it) is no key: it could pay test money out at a live PSP")
{
    PGconn      *c = sqlt_connect();
    char         m[24], kid[13];
    PGresult    *r;

    new_merchant(c, m);
    sqlt_random_hex(kid, 12);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'live')",
       kid, m, FP_B);

    cr_assert_str_eq(sqlt_value(c, "SELECT mode FROM merchants WHERE merchant_id = $1", 1,
                                 ARGV(m)), "test");
    r = sqlt_ok(c, "SELECT merchant_id FROM pay_auth($1, $2)", 2, ARGV(kid, FP_B));
    cr_expect_eq(PQntuples(r), 0, "a live key of a test merchant authenticates");
    PQclear(r);
    PQfinish(c);
}

Test(sql, the_previous_releases_notify_claim_keeps_its_nine_columns,
     .description = "pay_notify_claim, called by the previous release's workers during an "
                    "upgrade, answers the nine columns they read (a claim of any other "
                    "number is none to them: its rows would stay leased, unsent); this "
                    "release's pay_notify_lease answers the claim's lease_until too")
{
    PGconn  *c = sqlt_connect();

    cr_expect_str_eq(VAL0(c, "SELECT pg_get_function_result("
                             "'pay_notify_claim(text,integer,integer,integer)'::regprocedure)"),
                     "TABLE(notification_id text, merchant_id text, endpoint_id text, "
                     "url text, host text, secret_sealed text, prev_secret_sealed text, "
                     "attempts integer, payload text)");
    cr_expect_str_eq(VAL0(c, "SELECT pg_get_function_result("
                             "'pay_notify_lease(text,integer,integer,integer)'::regprocedure)"),
                     "TABLE(notification_id text, merchant_id text, endpoint_id text, "
                     "url text, host text, secret_sealed text, prev_secret_sealed text, "
                     "attempts integer, payload text, lease_until timestamp with time zone)");
    PQfinish(c);
}

Test(sql, auth_notes_a_keys_use_at_most_once_an_hour_and_only_with_its_hash,
     .description = "pay_auth(key, hash) notes the key's use when the hash is its own, "
                    "then not again within the hour; a wrong hash or a revoked key notes nothing")
{
    PGconn      *c = sqlt_connect();
    char         m[24], kid[13];
    PGresult    *r;
    const char  *q = "SELECT merchant_id FROM pay_auth($1, $2)";
    const char  *used = "SELECT coalesce(round(extract(epoch FROM now() - last_used_at))::text,"
                        " 'never') FROM api_keys WHERE key_id = $1";

    new_merchant(c, m);
    sqlt_random_hex(kid, 12);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'test')",
       kid, m, FP_B);

    /* a wrong secret: the row is answered (the gateway refuses it), no use */
    r = sqlt_ok(c, q, 2, ARGV(kid, FP_A));
    cr_expect_eq(PQntuples(r), 1);
    PQclear(r);
    cr_expect_str_eq(VAL(c, used, kid), "never");

    r = sqlt_ok(c, q, 2, ARGV(kid, FP_B));
    cr_expect_eq(PQntuples(r), 1);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), m);
    PQclear(r);
    cr_expect_str_eq(VAL(c, used, kid), "0");

    /* within the hour: no write */
    OK(c, "UPDATE api_keys SET last_used_at = now() - interval '59 minutes' WHERE key_id = $1", kid);
    PQclear(sqlt_ok(c, q, 2, ARGV(kid, FP_B)));
    cr_expect_str_eq(VAL(c, used, kid), "3540");

    /* past it: noted again */
    OK(c, "UPDATE api_keys SET last_used_at = now() - interval '61 minutes' WHERE key_id = $1", kid);
    PQclear(sqlt_ok(c, q, 2, ARGV(kid, FP_B)));
    cr_expect_str_eq(VAL(c, used, kid), "0");

    /* a revoked key is never noted */
    OK(c, "UPDATE api_keys SET revoked_at = now(), last_used_at = NULL WHERE key_id = $1", kid);
    r = sqlt_ok(c, q, 2, ARGV(kid, FP_B));
    cr_expect_eq(PQntuples(r), 0);
    PQclear(r);
    cr_expect_str_eq(VAL(c, used, kid), "never");
    PQfinish(c);
}

Test(sql, at_most_two_active_keys_per_merchant,
     .description = "a third active key is refused (PY005), by insert or by un-revoking; revoking makes room")
{
    PGconn      *c = sqlt_connect();
    char         m[24], k[3][13];
    const char  *ins = "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'test')";
    int          i;

    new_merchant(c, m);
    for (i = 0; i < 3; i++) {
        sqlt_random_hex(k[i], 12);
    }
    OK(c, ins, k[0], m, FP_A);
    OK(c, ins, k[1], m, FP_A);
    FAILS(c, "PY005", ins, k[2], m, FP_A);
    OK(c, "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", k[0]);
    OK(c, ins, k[2], m, FP_A);
    FAILS(c, "PY005", "UPDATE api_keys SET revoked_at = NULL WHERE key_id = $1", k[0]);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM api_keys WHERE merchant_id = $1"
                            " AND revoked_at IS NULL", m), "2");
    PQfinish(c);
}

/* ---- views -------------------------------------------------------------- */

static int
matches(const char *re, const char *s)
{
    regex_t  rx;
    int      ok;

    cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    ok = s != NULL && regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

#define RFC3339_UTC  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"

static json_t *
load_json(const char *text)
{
    json_error_t  err;
    json_t       *j;

    cr_assert_not_null(text);
    j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    cr_assert_not_null(j, "bad JSON (%s): %s", err.text, text);
    return j;
}

Test(sql, get_checkout_has_the_view_h_shape,
     .description = "pay_get_checkout: view.h fields, orders in request order, events in event_id order, RFC 3339 UTC times")
{
    PGconn      *c = sqlt_connect();
    char         m[24], other[24];
    json_t      *j, *orders, *events, *e;
    size_t       i;
    const char  *keys[] = { "checkout_id", "status", "psp", "psp_token", "expires_at",
                            "failure", "paid_after_failure", "currency", "metadata",
                            "risk", "capture", "mode", "payment_orders", "events",
                            "routing", "hosted", "payment_method",
                            "save_payment_method" };

    new_merchant(c, m);
    new_merchant(c, other);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "FAILED", NULL, "declined", "201", "{}");

    j = load_json(VAL(c, "SELECT pay_get_checkout($1, 'co_1')", m));
    cr_expect_eq(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        cr_expect_not_null(json_object_get(j, keys[i]), "missing %s", keys[i]);
    }
    cr_expect_str_eq(json_string_value(json_object_get(j, "checkout_id")), "co_1");
    cr_expect_str_eq(json_string_value(json_object_get(j, "status")), "FAILED");
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp")), "stripe");
    cr_expect(json_is_null(json_object_get(j, "psp_token")));
    /* no page to pay at, no saved method charged nor saved */
    cr_expect(json_is_false(json_object_get(j, "hosted")));
    cr_expect(json_is_null(json_object_get(j, "payment_method")));
    cr_expect(json_is_null(json_object_get(j, "save_payment_method")));
    /* named in its request, not routed */
    cr_expect(json_is_null(json_object_get(j, "routing")));
    cr_expect_str_eq(json_string_value(json_object_get(j, "expires_at")), EXPIRES_RFC);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "failure"), "code")),
                     "registration_refused");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "failure"), "message")),
                     "declined");
    cr_expect_str_eq(json_string_value(json_object_get(j, "currency")), "USD");
    /* no risk check was asked about it */
    cr_expect(json_is_null(json_object_get(j, "risk")));

    orders = json_object_get(j, "payment_orders");
    cr_assert_eq(json_array_size(orders), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(orders, 0), "payment_order_id")), "co_1_1");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(orders, 0), "seller_account")), "seller_42");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(orders, 0), "amount_minor")), 1000);
    cr_expect(json_is_integer(json_object_get(json_array_get(orders, 1), "amount_minor")));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(orders, 1), "currency")), "USD");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(orders, 1), "status")), "FAILED");

    events = json_object_get(j, "events");
    cr_assert_eq(json_array_size(events), 4);
    json_array_foreach(events, i, e) {
        cr_expect_eq(json_object_size(e), 5);
        cr_expect(matches(RFC3339_UTC, json_string_value(json_object_get(e, "at"))));
        cr_expect_str_eq(json_string_value(json_object_get(e, "source")), "registration");
        cr_expect_str_eq(json_string_value(json_object_get(e, "from")),
                         i < 2 ? "NOT_STARTED" : "EXECUTING");
        cr_expect_str_eq(json_string_value(json_object_get(e, "to")),
                         i < 2 ? "EXECUTING" : "FAILED");
        cr_expect_str_eq(json_string_value(json_object_get(e, "payment_order_id")),
                         i % 2 ? "co_1_2" : "co_1_1");
    }
    json_decref(j);

    cr_expect_null(VAL(c, "SELECT pay_get_checkout($1, 'co_1')", other));
    cr_expect_null(VAL(c, "SELECT pay_get_checkout($1, 'nope')", m));
    PQfinish(c);
}

Test(sql, get_order_has_the_view_h_shape,
     .description = "pay_get_order: view.h fields with the checkout's psp and token; another merchant's order is NULL")
{
    PGconn      *c = sqlt_connect();
    char         m[24], other[24], expect[64];
    json_t      *j;
    size_t       i;
    const char  *keys[] = { "payment_order_id", "checkout_id", "status", "amount_minor",
                            "currency", "seller_account", "psp", "psp_token",
                            "created_at", "updated_at", "commission_minor",
                            "captured_minor", "captures", "refunds", "disputes" };

    new_merchant(c, m);
    new_merchant(c, other);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_9", NULL, "201", "{}");

    j = load_json(VAL(c, "SELECT pay_get_order($1, 'co_1_2')", m));
    cr_expect_eq(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        cr_expect_not_null(json_object_get(j, keys[i]), "missing %s", keys[i]);
    }
    cr_expect_str_eq(json_string_value(json_object_get(j, "payment_order_id")), "co_1_2");
    cr_expect_str_eq(json_string_value(json_object_get(j, "checkout_id")), "co_1");
    cr_expect_str_eq(json_string_value(json_object_get(j, "status")), "EXECUTING");
    cr_expect_eq(json_integer_value(json_object_get(j, "amount_minor")), 500);
    cr_expect_str_eq(json_string_value(json_object_get(j, "currency")), "USD");
    cr_expect_str_eq(json_string_value(json_object_get(j, "seller_account")), "seller_77");
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp")), "stripe");
    snprintf(expect, sizeof(expect), "%s.cs_9", m);
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp_token")), expect);
    cr_expect(matches(RFC3339_UTC, json_string_value(json_object_get(j, "created_at"))));
    cr_expect(matches(RFC3339_UTC, json_string_value(json_object_get(j, "updated_at"))));
    json_decref(j);

    cr_expect_null(VAL(c, "SELECT pay_get_order($1, 'co_1_2')", other));
    cr_expect_null(VAL(c, "SELECT pay_get_order($1, 'nope')", m));
    PQfinish(c);
}

Test(sql, pay_target_returns_psp_url_status_expiry,
     .description = "pay_pay_target: psp, hosted URL, status and expiry in epoch seconds; nothing for another merchant")
{
    PGconn    *c = sqlt_connect();
    char       m[24], other[24], url[96];
    PGresult  *r;

    new_merchant(c, m);
    new_merchant(c, other);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_7", NULL, "201", "{}");
    r = sqlt_ok(c, "SELECT psp, psp_url, status, expires_at FROM pay_pay_target($1, 'co_1')",
               1, ARGV(m));
    cr_assert_eq(PQntuples(r), 1);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "stripe");
    snprintf(url, sizeof(url), "https://psp.example/pay/%s.cs_7", m);
    cr_expect_str_eq(PQgetvalue(r, 0, 1), url);
    cr_expect_str_eq(PQgetvalue(r, 0, 2), "EXECUTING");
    cr_expect_str_eq(PQgetvalue(r, 0, 3), EXPIRES_EPOCH);
    PQclear(r);
    r = sqlt_ok(c, "SELECT * FROM pay_pay_target($1, 'co_1')", 1, ARGV(other));
    cr_expect_eq(PQntuples(r), 0);
    PQclear(r);
    PQfinish(c);
}

/* ---- concurrency -------------------------------------------------------- */

typedef struct {
    const char         *merchant;
    const char         *key;
    const char         *checkout;
    const char         *fp;
    pthread_barrier_t  *start;
    char                outcome[16];
    char                error[256];
} racer_t;

/* One connection per thread, all released together at the barrier, so the
 * claims really overlap.  Threads only record; the test thread asserts. */
static void *
racer(void *arg)
{
    racer_t   *t = arg;
    PGconn    *c = PQconnectdb(getenv("PAY_TEST_PG"));
    PGresult  *r;

    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(t->error, sizeof(t->error), "connect: %s", PQerrorMessage(c));
        pthread_barrier_wait(t->start);
        PQfinish(c);
        return NULL;
    }
    pthread_barrier_wait(t->start);
    r = claim_exec(c, &(claim_req_t){ .merchant = t->merchant, .key = t->key,
                                      .checkout = t->checkout, .fp = t->fp });
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snprintf(t->outcome, sizeof(t->outcome), "%s", PQgetvalue(r, 0, 0));
    } else {
        snprintf(t->error, sizeof(t->error), "%s", PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
    return NULL;
}

/* Runs NTHREADS claims at once and counts each outcome. */
static void
race(const char *merchant, int same_key, int *claimed, int *in_use, int *duplicate)
{
    pthread_t          th[NTHREADS];
    racer_t            t[NTHREADS];
    char               keys[NTHREADS][24];
    pthread_barrier_t  start;
    int                i;

    *claimed = *in_use = *duplicate = 0;
    cr_assert_eq(pthread_barrier_init(&start, NULL, NTHREADS), 0);
    for (i = 0; i < NTHREADS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "race-%d", same_key ? 0 : i);
        t[i] = (racer_t){ .merchant = merchant, .key = keys[i], .checkout = "co_race",
                          .fp = same_key ? FP_A : FP_B, .start = &start };
        cr_assert_eq(pthread_create(&th[i], NULL, racer, &t[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&start);
    for (i = 0; i < NTHREADS; i++) {
        cr_assert_str_empty(t[i].error, "racer %d: %s", i, t[i].error);
        *claimed += strcmp(t[i].outcome, "claimed") == 0;
        *in_use += strcmp(t[i].outcome, "in_use") == 0;
        *duplicate += strcmp(t[i].outcome, "duplicate") == 0;
    }
}

Test(sql, concurrent_claims_of_one_key_claim_once,
     .description = "20 connections claim the same key at once: exactly one claimed, 19 in_use",
     .timeout = 60)
{
    PGconn  *c = sqlt_connect();
    char     m[24];
    int      claimed, in_use, duplicate;

    new_merchant(c, m);
    race(m, 1, &claimed, &in_use, &duplicate);
    cr_expect_eq(claimed, 1);
    cr_expect_eq(in_use, NTHREADS - 1);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE merchant_id = $1", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1", m), "2");
    PQfinish(c);
}

Test(sql, concurrent_keys_on_one_checkout_register_once,
     .description = "20 connections, 20 keys, one checkout id at once: one claimed, 19 duplicate",
     .timeout = 60)
{
    PGconn  *c = sqlt_connect();
    char     m[24];
    int      claimed, in_use, duplicate;

    new_merchant(c, m);
    race(m, 0, &claimed, &in_use, &duplicate);
    cr_expect_eq(claimed, 1);
    cr_expect_eq(duplicate, NTHREADS - 1);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1"
                            " AND state = 'done' AND response_status = 409", m), "19");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM payment_orders WHERE merchant_id = $1", m), "2");
    PQfinish(c);
}

/* ---- migrations --------------------------------------------------------- */

Test(sql, migrations_are_recorded,
     .description = "schema_migrations records each applied file once with its checksum")
{
    PGconn  *c = sqlt_connect();

    cr_expect_str_eq(VAL0(c, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"
                             " WHERE version IN ('038_baseline.sql', '039_resume_and_balance.sql')"),
                     "038_baseline.sql,039_resume_and_balance.sql");
    /* the history the baseline stands for is not recorded */
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM schema_migrations WHERE version < '038_baseline.sql'"),
                     "0");
    cr_expect_str_eq(VAL0(c, "SELECT bool_and(checksum ~ '^[0-9a-f]{64}$') FROM schema_migrations"), "t");
    PQfinish(c);
}


/* Writes body to dir/name. */
static void
mig_file(const char *dir, const char *name, const char *body)
{
    char   path[1024];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(body, f);
    fclose(f);
}

/* dir's migrations/ and functions/ */
static void
mig_dirs(const char *dir)
{
    char  path[1200];

    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "%s", dir);
    snprintf(path, sizeof(path), "%s/migrations", dir);
    cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
    snprintf(path, sizeof(path), "%s/functions", dir);
    cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
}

/* a new database mig_<hex> (db, 32 bytes) and its sql directory (dir,
 * 1024 bytes) with migrations/ and functions/, under the test run's */
static void
mig_new(PGconn *c, char *db, char *dir)
{
    char  hex[13], sql[128];

    sqlt_random_hex(hex, 12);
    snprintf(db, 32, "mig_%s", hex);
    snprintf(dir, 1024, "%s/mig_%s", getenv("PAY_TEST_RUN"), hex);
    mig_dirs(dir);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    OK0(c, sql);
}

static void
mig_drop(PGconn *c, const char *db)
{
    char  q[128];

    snprintf(q, sizeof(q), "DROP DATABASE %s", db);
    OK0(c, q);
}

/* a connection to database db of the test cluster */
static PGconn *
mig_open(const char *db)
{
    char     conn[512];
    PGconn  *d;

    snprintf(conn, sizeof(conn), "%s dbname=%s", getenv("PAY_TEST_PG"), db);
    d = PQconnectdb(conn);
    cr_assert_eq(PQstatus(d), CONNECTION_OK, "%s", PQerrorMessage(d));
    return d;
}

/* bin/payments-migrate with dir as its sql directory, on database db,
 * run by the command pre (a wrapper: "timeout 20", or ""); its exit
 * status, its output in out. */
static int
mig_run_by(const char *pre, const char *dir, const char *db, char *out,
           size_t size)
{
    char    cmd[4096];
    size_t  n, used = 0;
    FILE   *p;
    int     st;

    snprintf(cmd, sizeof(cmd), "PAYMENTS_SQL_DIR='%s' %s '%s/bin/payments-migrate'"
             " '%s dbname=%s' 2>&1", dir, pre, getenv("PAY_TEST_ROOT"),
             getenv("PAY_TEST_PG"), db);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (used + 1 < size && (n = fread(out + used, 1, size - used - 1, p)) > 0) {
        used += n;
    }
    out[used] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
mig_run(const char *dir, const char *db, char *out, size_t size)
{
    return mig_run_by("", dir, db, out, size);
}

Test(sql, migrate_runs_files_in_order_only_and_ignores_what_they_print,
     .timeout = 60,
     .description = "payments-migrate refuses a pending file that sorts before one "
                    "already applied (it ran last, out of order, without a word), and a "
                    "migration that prints rows (a backfill's SELECT) is applied and "
                    "recorded, not 'unexpected output' after its commit")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[8192], from[1100], to[1100];
    int      rc;

    mig_new(c, db, dir);

    mig_file(dir, "migrations/001_a.sql", "CREATE TABLE a (x int);\n");
    mig_file(dir, "migrations/003_c.sql", "CREATE TABLE c (x int);\n"
                               "INSERT INTO c VALUES (1), (2);\n"
                               "SELECT x AS backfilled FROM c;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "2 applied, 0 already current") != NULL, "%s", out);

    /* a file numbered between the applied ones */
    mig_file(dir, "migrations/002_b.sql", "CREATE TABLE b (x int);\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "002_b.sql is not applied, but 003_c.sql") != NULL, "%s", out);

    /* numbered after them, as the message says: applied */
    snprintf(from, sizeof(from), "%s/migrations/002_b.sql", dir);
    snprintf(to, sizeof(to), "%s/migrations/004_b.sql", dir);
    cr_assert_eq(rename(from, to), 0);
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "1 applied, 2 already current") != NULL, "%s", out);

    mig_drop(c, db);
    PQfinish(c);
}

/* Reads all of p into out (NUL-terminated); pclose's exit status. */
static int
mig_wait(FILE *p, char *out, size_t size)
{
    size_t  n, used = 0;
    int     st;

    while (used + 1 < size && (n = fread(out + used, 1, size - used - 1, p)) > 0) {
        used += n;
    }
    out[used] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* How many lines of out end in ".sql: applied". */
static int
mig_count_applied(const char *out)
{
    const char  *s;
    int          n = 0;

    for (s = out; (s = strstr(s, ".sql: applied\n")) != NULL; s++) {
        n++;
    }
    return n;
}

Test(sql, migrate_run_twice_at_once_applies_each_file_once,
     .timeout = 60,
     .description = "two payments-migrate started at once on an empty database "
                    "(two deploy hosts) both succeed, and between them apply each "
                    "migration exactly once: a file one of them read as pending is "
                    "checked again under the lock, and skipped when the other "
                    "applied it meanwhile")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], cmd[4096], out1[8192], out2[8192];
    FILE    *p1, *p2;
    PGconn  *d;
    int      rc1, rc2;

    mig_new(c, db, dir);

    /* slow files, so that one migrator reads the others' pending work */
    mig_file(dir, "migrations/001_a.sql", "CREATE TABLE a (x int);\n");
    mig_file(dir, "migrations/002_b.sql", "INSERT INTO a VALUES (2);\n"
                                          "SELECT pg_sleep(0.2);\n");
    mig_file(dir, "migrations/003_c.sql", "INSERT INTO a VALUES (3);\n"
                                          "SELECT pg_sleep(0.2);\n");
    mig_file(dir, "migrations/004_d.sql", "INSERT INTO a VALUES (4);\n"
                                          "SELECT pg_sleep(0.2);\n");
    snprintf(cmd, sizeof(cmd), "PAYMENTS_SQL_DIR='%s' '%s/bin/payments-migrate'"
             " '%s dbname=%s' 2>&1", dir, getenv("PAY_TEST_ROOT"),
             getenv("PAY_TEST_PG"), db);
    p1 = popen(cmd, "r");
    cr_assert_not_null(p1);
    p2 = popen(cmd, "r");
    cr_assert_not_null(p2);
    rc1 = mig_wait(p1, out1, sizeof(out1));
    rc2 = mig_wait(p2, out2, sizeof(out2));
    cr_expect_eq(rc1, 0, "%s", out1);
    cr_expect_eq(rc2, 0, "%s", out2);
    cr_expect_eq(mig_count_applied(out1) + mig_count_applied(out2), 4,
                 "first:\n%s\nsecond:\n%s", out1, out2);
    cr_expect(strstr(out1, "warning") == NULL && strstr(out2, "warning") == NULL,
              "first:\n%s\nsecond:\n%s", out1, out2);

    d = mig_open(db);
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(x::text, ',' ORDER BY x) FROM a"), "2,3,4");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM schema_migrations"), "4");
    PQfinish(d);

    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migrate_applies_a_function_file_again_only_when_it_changed_and_all_or_none,
     .timeout = 60,
     .description = "the functions step: every file applied on the first run, "
                    "then only a changed one; a file that fails leaves every "
                    "function as it was (one transaction), and the run says so")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[8192];
    int      rc;
    PGconn  *d;

    mig_new(c, db, dir);

    mig_file(dir, "migrations/001_t.sql", "CREATE TABLE t (x int);\n");
    /* b calls a, which sorts first: bodies are not checked at creation */
    mig_file(dir, "functions/b_two.sql",
             "CREATE OR REPLACE FUNCTION b_two() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT a_one() + 1 $$;\n");
    mig_file(dir, "functions/a_one.sql",
             "CREATE OR REPLACE FUNCTION a_one() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT 1 $$;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "2 function files applied, 0 already current") != NULL,
              "%s", out);

    d = mig_open(db);
    cr_expect_str_eq(VAL0(d, "SELECT b_two()"), "2");

    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect(strstr(out, "0 function files applied, 2 already current") != NULL,
              "%s", out);

    /* a changed: applied alone */
    mig_file(dir, "functions/a_one.sql",
             "CREATE OR REPLACE FUNCTION a_one() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT 10 $$;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "1 function files applied, 1 already current") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT b_two()"), "11");

    /* a changed again, b's body does not parse: neither is applied (the
     * bodies are checked once every function exists) */
    mig_file(dir, "functions/a_one.sql",
             "CREATE OR REPLACE FUNCTION a_one() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT 100 $$;\n");
    mig_file(dir, "functions/b_two.sql",
             "CREATE OR REPLACE FUNCTION b_two() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT a_one( + 1 $$;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "the functions failed (the error above names the file); "
                          "nothing of it was applied") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT b_two()"), "11");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM schema_functions"
                             " WHERE file = 'a_one.sql' AND applied_at IS NOT NULL"), "1");

    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

/* Migration 137's list of the paid checkouts the risk check still owes a
 * verdict after the payment, run on a database of this release where the
 * checkouts were paid with no list (the triggers off, as a worker of the
 * previous release paid them).  Its statements are idempotent, so the file
 * runs again here as it ran at the upgrade. */
Test(sql, migration_137_lists_the_paid_unasked_checkouts_of_the_last_week_only,
     .timeout = 120,
     .description = "migration 137 on a database whose checkouts were paid with no due "
                    "list: of five risk-checked checkouts (paid, unasked, a day ago; paid "
                    "and asked after; executing; failed; paid, unasked, 9 days ago) only "
                    "the first is listed, with its first check's time")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], sqldir[1024], path[1100], out[16384];
    char    *file, *script;
    long     size;
    FILE      *f;
    PGconn    *d;
    PGresult  *r;
    int        rc;

    mig_new(c, db, dir);
    snprintf(sqldir, sizeof(sqldir), "%s/sql", getenv("PAY_TEST_ROOT"));
    rc = mig_run(sqldir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);

    d = mig_open(db);
    OK0(d, "SET session_replication_role = replica");
    OK0(d, "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
           " amount_total, success_url, cancel_url, status, psp_request, expires_at)"
           " SELECT 'm_137', 'co_' || g, 'stripe', 'm_137:co_' || g, 'EUR', 100,"
           " 'https://shop.example/s', 'https://shop.example/c',"
           " (CASE g WHEN 3 THEN 'EXECUTING' WHEN 4 THEN 'FAILED' ELSE 'SUCCESS' END)::pay_status,"
           " 'r', now() + interval '1 day' FROM generate_series(1, 5) g");
    OK0(d, "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score, reason,"
           " source, decided_at)"
           " SELECT 'm_137', 'co_' || g, 'allow', 1, 'ok', 'provider',"
           " now() - (CASE g WHEN 5 THEN 9 ELSE 1 END) * interval '1 day'"
           " FROM generate_series(1, 5) g");
    OK0(d, "INSERT INTO checkout_risk_after (merchant_id, checkout_id, verdict, score,"
           " reason, source) VALUES ('m_137', 'co_2', 'allow', 1, 'ok', 'provider')");
    OK0(d, "RESET session_replication_role");
    cr_assert_str_eq(VAL0(d, "SELECT count(*) FROM checkout_risk_after_due"), "0");

    snprintf(path, sizeof(path), "%s/migrations/137_checkout_risk_after_due.sql", sqldir);
    f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    file = calloc(1, size + 1);
    cr_assert_not_null(file);
    cr_assert_eq(fread(file, 1, size, f), (size_t) size);
    fclose(f);
    script = calloc(1, size + 32);
    cr_assert_not_null(script);
    snprintf(script, size + 32, "BEGIN;\n%s\nCOMMIT;\n", file);
    /* many statements: the simple query protocol */
    r = PQexec(d, script);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    free(script);
    free(file);

    cr_expect_str_eq(VAL0(d, "SELECT string_agg(d.checkout_id || ' '"
                             " || (d.decided_at = rk.decided_at)::text, ',')"
                             " FROM checkout_risk_after_due d JOIN checkout_risk rk"
                             " USING (merchant_id, checkout_id)"), "co_1 true");
    PQfinish(d);

    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migrate_applies_a_release_s_migrations_and_functions_together_or_not_at_all,
     .timeout = 60,
     .description = "a pending migration that drops a trigger its function file makes "
                    "again, and a function file that fails: nothing is applied, the "
                    "migration not recorded and the trigger still there (migration 106 "
                    "dropped checkouts_notify so that its file made it anew: were the "
                    "migration committed alone, checkouts would move with no "
                    "notification until the functions applied)")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[8192];
    int      rc;
    PGconn  *d;

    mig_new(c, db, dir);

    mig_file(dir, "migrations/001_t.sql", "CREATE TABLE t (x int);\n"
                                          "CREATE TABLE seen (x int);\n");
    mig_file(dir, "functions/t_seen.sql",
             "CREATE OR REPLACE FUNCTION t_seen() RETURNS trigger LANGUAGE plpgsql\n"
             "AS $$ BEGIN INSERT INTO seen VALUES (NEW.x); RETURN NULL; END $$;\n"
             "CREATE OR REPLACE TRIGGER t_seen AFTER INSERT ON t\n"
             "    FOR EACH ROW WHEN (NEW.x > 0) EXECUTE FUNCTION t_seen();\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);

    d = mig_open(db);

    /* the next release: the trigger without its WHEN, the function testing
     * it; and another file that does not parse */
    mig_file(dir, "migrations/002_t_seen_anew.sql", "DROP TRIGGER t_seen ON t;\n");
    mig_file(dir, "functions/t_seen.sql",
             "CREATE OR REPLACE FUNCTION t_seen() RETURNS trigger LANGUAGE plpgsql\n"
             "AS $$ BEGIN IF NEW.x > 0 THEN INSERT INTO seen VALUES (NEW.x); END IF;\n"
             "RETURN NULL; END $$;\n"
             "CREATE OR REPLACE TRIGGER t_seen AFTER INSERT ON t\n"
             "    FOR EACH ROW EXECUTE FUNCTION t_seen();\n");
    mig_file(dir, "functions/u_broken.sql",
             "CREATE OR REPLACE FUNCTION u_broken() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT 1 + $$;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "the migration 002_t_seen_anew.sql and the functions failed "
                          "(the error above names the file); nothing of it was applied")
              != NULL, "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(version, ',') FROM schema_migrations"),
                     "001_t.sql");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM pg_trigger WHERE tgname = 't_seen'"),
                     "1", "the trigger its migration dropped is still there");
    OK0(d, "INSERT INTO t VALUES (7)");
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(x::text, ',') FROM seen"), "7");

    /* mended: both applied at once */
    mig_file(dir, "functions/u_broken.sql",
             "CREATE OR REPLACE FUNCTION u_broken() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT 1 $$;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "002_t_seen_anew.sql: applied\n") != NULL
              && strstr(out, "1 applied, 1 already current") != NULL
              && strstr(out, "2 function files applied, 0 already current") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM pg_trigger"
                             " WHERE tgname = 't_seen' AND tgqual IS NULL"), "1");
    OK0(d, "INSERT INTO t VALUES (0), (8)");
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(x::text, ',' ORDER BY x) FROM seen"), "7,8");

    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migrate_commits_a_migration_that_adds_an_enum_value_before_what_uses_it,
     .timeout = 60,
     .description = "PostgreSQL refuses an enum value in the transaction that added it "
                    "(to a type made earlier): a migration that adds one commits with "
                    "those before it, and a later migration and a function file that "
                    "use the value apply after it (054 and 074 add values an upgrade "
                    "from an earlier release then uses)")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[8192], path[1200];
    int      rc;
    PGconn  *d;

    mig_new(c, db, dir);

    mig_file(dir, "migrations/001_e.sql", "CREATE TYPE e AS ENUM ('a');\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);

    mig_file(dir, "migrations/002_t.sql", "CREATE TABLE t (x int);\n");
    mig_file(dir, "migrations/003_e_b.sql", "ALTER TYPE e\n    ADD VALUE IF NOT EXISTS 'b';\n");
    mig_file(dir, "migrations/004_u.sql", "CREATE TABLE u (v e NOT NULL DEFAULT 'b');\n");
    mig_file(dir, "functions/e_b.sql",
             "CREATE OR REPLACE FUNCTION e_b() RETURNS e LANGUAGE sql\n"
             "AS $$ SELECT 'b'::e $$;\n");

    /* a function file misnamed: refused before anything runs, the enum's
     * transaction included */
    mig_file(dir, "functions/E-B.sql", "SELECT 1;\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "functions/E-B.sql: function files are named after their "
                          "function") != NULL, "%s", out);
    d = mig_open(db);
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(version, ',') FROM schema_migrations"),
                     "001_e.sql");
    PQfinish(d);
    snprintf(path, sizeof(path), "%s/functions/E-B.sql", dir);
    cr_assert_eq(unlink(path), 0, "%s", path);

    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "3 applied, 1 already current") != NULL
              && strstr(out, "1 function files applied, 0 already current") != NULL,
              "%s", out);

    d = mig_open(db);
    OK0(d, "INSERT INTO u DEFAULT VALUES");
    cr_expect_str_eq(VAL0(d, "SELECT v::text || ',' || e_b()::text FROM u"), "b,b");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM schema_migrations"), "4");
    PQfinish(d);

    mig_drop(c, db);
    PQfinish(c);
}

/* a database dbname with the rows of schema_migrations given ("version
 * checksum" pairs) and the SQL given, as an earlier layout left it */
static void
mig_earlier(PGconn *c, const char *db, const char *rows, const char *sql)
{
    char       q[256];
    PGconn    *d;
    PGresult  *r;

    snprintf(q, sizeof(q), "CREATE DATABASE %s", db);
    OK0(c, q);
    d = mig_open(db);
    OK0(d, "CREATE TABLE schema_migrations (version text PRIMARY KEY,"
           " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    snprintf(q, sizeof(q), "INSERT INTO schema_migrations (version, checksum) %s", rows);
    OK0(d, q);
    r = PQexec(d, sql);     /* several statements */
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(d);
}

Test(sql, migrate_folds_a_whole_history_into_its_baseline_and_refuses_a_partial_one,
     .timeout = 60,
     .description = "a database that recorded every migration a baseline folds "
                    "(whatever their checksums) records the baseline instead and "
                    "runs nothing of it; one that recorded only some is refused "
                    "(partial history) and left as it was")
{
    PGconn  *c = sqlt_connect();
    char     hex[13], whole[32], part[32], fresh[32], dir[1024], out[8192], conn[512];
    PGconn  *d;
    int      rc;

    sqlt_random_hex(hex, 12);
    snprintf(whole, sizeof(whole), "mig_w%s", hex);
    snprintf(part, sizeof(part), "mig_p%s", hex);
    snprintf(fresh, sizeof(fresh), "mig_f%s", hex);
    snprintf(dir, sizeof(dir), "%s/mig_%s", getenv("PAY_TEST_RUN"), hex);
    mig_dirs(dir);
    mig_file(dir, "migrations/history.txt",
             "# earlier layouts\n"
             "fold 002_base.sql 001_a.sql\n"
             "fold 002_base.sql 002_b.sql\n");
    /* run on a database that has a and b, it fails: a second a */
    mig_file(dir, "migrations/002_base.sql", "CREATE TABLE a (x int);\nCREATE TABLE b (x int);\n");
    mig_file(dir, "migrations/003_c.sql", "CREATE TABLE c (x int);\n");

    mig_earlier(c, whole, "VALUES ('001_a.sql', 'x'), ('002_b.sql', 'y')",
                "CREATE TABLE a (x int); CREATE TABLE b (x int);");
    rc = mig_run(dir, whole, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "002_base.sql recorded for the 2 migrations it replaces") != NULL,
              "%s", out);
    cr_expect(strstr(out, "1 applied, 1 already current") != NULL, "%s", out);
    snprintf(conn, sizeof(conn), "%s dbname=%s", getenv("PAY_TEST_PG"), whole);
    d = PQconnectdb(conn);
    cr_assert_eq(PQstatus(d), CONNECTION_OK, "%s", PQerrorMessage(d));
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(version, ',' ORDER BY version)"
                             " FROM schema_migrations"), "002_base.sql,003_c.sql");
    PQfinish(d);
    rc = mig_run(dir, whole, out, sizeof(out));
    cr_expect(rc == 0 && strstr(out, "0 applied, 2 already current") != NULL
              && strstr(out, "recorded for") == NULL && strstr(out, "warning") == NULL,
              "%s", out);

    /* a alone: nothing done, and said why */
    mig_earlier(c, part, "VALUES ('001_a.sql', 'x')", "CREATE TABLE a (x int);");
    rc = mig_run(dir, part, out, sizeof(out));
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "partial history: the database recorded 1 of the 2 migrations "
                          "002_base.sql replaces (missing: 002_b.sql)") != NULL, "%s", out);
    snprintf(conn, sizeof(conn), "%s dbname=%s", getenv("PAY_TEST_PG"), part);
    d = PQconnectdb(conn);
    cr_assert_eq(PQstatus(d), CONNECTION_OK, "%s", PQerrorMessage(d));
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(version, ',') FROM schema_migrations"),
                     "001_a.sql");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"), "0");
    PQfinish(d);

    /* a new database: the baseline runs */
    mig_earlier(c, fresh, "SELECT 'none', 'none' WHERE false", "CREATE TABLE unrelated (x int)");
    rc = mig_run(dir, fresh, out, sizeof(out));
    cr_expect(rc == 0 && strstr(out, "2 applied, 0 already current") != NULL, "%s", out);

    mig_drop(c, whole);
    mig_drop(c, part);
    mig_drop(c, fresh);
    PQfinish(c);
}

Test(sql, migrate_takes_a_listed_earlier_checksum_as_current_and_warns_of_others,
     .timeout = 60,
     .description = "an applied migration whose recorded checksum is one history.txt "
                    "lists (the file lost its functions since) is current, not run "
                    "again, and recorded with today's checksum; another checksum is "
                    "still warned about, and not run either")
{
    PGconn  *c = sqlt_connect();
    char     hex[13], db[32], dir[1024], out[8192], rows[1200];
    char     sum[65] = "";
    PGconn  *d;
    FILE    *p;
    int      rc;

    sqlt_random_hex(hex, 12);
    snprintf(db, sizeof(db), "mig_%s", hex);
    snprintf(dir, sizeof(dir), "%s/mig_%s", getenv("PAY_TEST_RUN"), hex);
    mig_dirs(dir);
    /* run again, it fails: t exists */
    mig_file(dir, "migrations/001_t.sql", "CREATE TABLE t (x int);\n");
    mig_file(dir, "migrations/002_u.sql", "CREATE TABLE u (x int);\n");
    mig_file(dir, "migrations/history.txt",
             "was 001_t.sql 1111111111111111111111111111111111111111111111111111111111111111\n");
    snprintf(rows, sizeof(rows), "sha256sum < '%s/migrations/001_t.sql'", dir);
    p = popen(rows, "r");
    cr_assert_not_null(p);
    cr_assert_eq(fscanf(p, "%64s", sum), 1);
    pclose(p);

    mig_earlier(c, db, "VALUES ('001_t.sql', '1111111111111111111111111111111111111111111111111111111111111111'),"
                       " ('002_u.sql', '2222222222222222222222222222222222222222222222222222222222222222')",
                "CREATE TABLE t (x int); CREATE TABLE u (x int);");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "0 applied, 2 already current") != NULL, "%s", out);
    cr_expect(strstr(out, "001_t.sql changed") == NULL, "%s", out);
    cr_expect(strstr(out, "warning: 002_u.sql changed since it was applied") != NULL, "%s", out);

    d = mig_open(db);
    cr_expect_str_eq(VAL0(d, "SELECT checksum FROM schema_migrations WHERE version = '001_t.sql'"),
                     sum);
    cr_expect_str_eq(VAL0(d, "SELECT checksum FROM schema_migrations WHERE version = '002_u.sql'"),
                     "2222222222222222222222222222222222222222222222222222222222222222");
    PQfinish(d);

    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migrate_finds_the_sql_beside_itself_and_says_which,
     .timeout = 60,
     .description = "a package unpacked elsewhere (dpkg -x) migrates with its own "
                    "SQL, not the installed package's, and says which directory it read")
{
    PGconn  *c = sqlt_connect();
    char     hex[13], db[32], root[1024], dir[1200], cmd[4096], out[8192], sql[128];
    int      rc;
    size_t   n;
    FILE    *p;

    sqlt_random_hex(hex, 12);
    snprintf(db, sizeof(db), "mig_%s", hex);
    snprintf(root, sizeof(root), "%s/unpacked_%s", getenv("PAY_TEST_RUN"), hex);
    snprintf(dir, sizeof(dir), "%s/usr/share/ngx-payments/sql", root);
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' '%s/usr/bin' && cp '%s/bin/payments-migrate' "
             "'%s/usr/bin/'", dir, root, getenv("PAY_TEST_ROOT"), root);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    mig_dirs(dir);
    mig_file(dir, "migrations/001_a.sql", "CREATE TABLE a (x int);\n");
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    OK0(c, sql);

    snprintf(cmd, sizeof(cmd), "env -u PAYMENTS_SQL_DIR '%s/usr/bin/payments-migrate'"
             " '%s dbname=%s' 2>&1", root, getenv("PAY_TEST_PG"), db);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    rc = pclose(p);

    cr_expect_eq(rc, 0, "%s", out);
    snprintf(cmd, sizeof(cmd), "payments-migrate: SQL from %s\n", dir);
    cr_expect(strstr(out, cmd) != NULL, "wanted \"%s\" in: %s", cmd, out);
    cr_expect(strstr(out, "1 applied, 0 already current") != NULL, "%s", out);

    mig_drop(c, db);
    PQfinish(c);
}


/* this release's migrations and functions copied into dir (mig_new's) */
static void
mig_this_release(const char *dir)
{
    char  cmd[4096];

    snprintf(cmd, sizeof(cmd), "cp '%s'/sql/migrations/* '%s/migrations/' &&"
             " cp '%s'/sql/functions/*.sql '%s/functions/'",
             getenv("PAY_TEST_ROOT"), dir, getenv("PAY_TEST_ROOT"), dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* the files of dir (mig_new's) that paths names ("migrations/14[0-9]_*
 * functions/x.sql", relative to dir, globs allowed) set aside, so that
 * payments-migrate makes the release before; mig_bring_back puts them
 * where they were */
static void
mig_set_aside(const char *dir, const char *paths)
{
    char  cmd[4096];

    snprintf(cmd, sizeof(cmd), "cd '%s' && mkdir -p aside/migrations aside/functions"
             " && for f in %s; do mv \"$f\" \"aside/$f\" || exit 1; done", dir, paths);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void
mig_bring_back(const char *dir)
{
    char  cmd[2048];

    snprintf(cmd, sizeof(cmd), "cd '%s/aside' && for f in */*; do mv \"$f\" \"../$f\""
             " || exit 1; done", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* a new database (db, dir: mig_new's) of the release before this one's
 * files that aside names (mig_set_aside), open; mig_upgrade then applies
 * them */
static PGconn *
mig_release_before(PGconn *c, char *db, char *dir, const char *aside)
{
    char  out[16384];
    int   rc;

    mig_new(c, db, dir);
    mig_this_release(dir);
    mig_set_aside(dir, aside);
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);
    return mig_open(db);
}

static void
mig_upgrade(const char *dir, const char *db)
{
    char  out[16384];
    int   rc;

    mig_bring_back(dir);
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);
}

/* a line appended to every function file of dir (pattern "*.sql"), or to
 * one: its checksum changes, so payments-migrate applies it again */
static void
mig_touch_functions(const char *dir, const char *pattern)
{
    char  cmd[4096];

    snprintf(cmd, sizeof(cmd), "for f in '%s'/functions/%s; do"
             " printf '%%s\\n' '-- changed' >>\"$f\"; done", dir, pattern);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* every table of the public schema locked as a worker's write locks it
 * (ROW EXCLUSIVE), in a transaction left open on w */
static void
mig_hold_writes(PGconn *w)
{
    const char  *tables;
    char         sql[16384];

    OK0(w, "BEGIN");
    tables = VAL0(w, "SELECT string_agg(format('%I', relname), ', ' ORDER BY relname)"
                     "  FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                     "   AND relkind IN ('r', 'p') AND NOT relispartition");
    cr_assert_lt(strlen(tables), sizeof(sql) - 64);
    snprintf(sql, sizeof(sql), "LOCK TABLE %s IN ROW EXCLUSIVE MODE", tables);
    OK0(w, sql);
}

Test(sql, migrate_applies_the_functions_again_while_every_table_is_written,
     .timeout = 180,
     .description = "payments-migrate on a database of this release, every "
                    "function file changed (each applied again), while another "
                    "session holds every table as a write does (a refund, a "
                    "capture, a pay-out, a dispute, a checkout of the previous "
                    "release's workers): it does not wait for them, for a "
                    "trigger already as its file makes it is not made again "
                    "(CREATE OR REPLACE TRIGGER takes SHARE ROW EXCLUSIVE: every "
                    "write of the table waited for the upgrade's commit); a "
                    "trigger missing or other than its file's is made anew")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[16384];
    int      rc;
    PGconn  *d, *w;

    mig_new(c, db, dir);
    mig_this_release(dir);
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);

    d = mig_open(db);
    w = mig_open(db);
    mig_hold_writes(w);
    mig_touch_functions(dir, "*.sql");
    rc = mig_run_by("timeout 30", dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, " function files applied, 0 already current") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM schema_functions"
                             " WHERE applied_at > now() - interval '1 minute'"),
                     VAL0(d, "SELECT count(*) FROM schema_functions"));
    OK0(w, "COMMIT");

    /* missing, other than its file's: made as the file makes it */
    OK0(d, "DROP TRIGGER refunds_forward ON refunds");
    OK0(d, "CREATE OR REPLACE TRIGGER captures_forward AFTER UPDATE ON captures"
           " FOR EACH ROW EXECUTE FUNCTION money_status_forward()");
    mig_touch_functions(dir, "money_status_forward.sql");
    rc = mig_run_by("timeout 30", dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "1 function files applied") != NULL, "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(pg_get_triggerdef(oid), E'\\n' ORDER BY tgname)"
                             "  FROM pg_trigger"
                             " WHERE tgname IN ('captures_forward', 'refunds_forward')"),
                     "CREATE TRIGGER captures_forward BEFORE DELETE OR UPDATE ON public.captures"
                     " FOR EACH ROW EXECUTE FUNCTION money_status_forward()\n"
                     "CREATE TRIGGER refunds_forward BEFORE DELETE OR UPDATE ON public.refunds"
                     " FOR EACH ROW EXECUTE FUNCTION money_status_forward()");

    PQfinish(w);
    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

/* a trigger function and its trigger, made by trigger_ensure: on INSERT
 * (ins) or on INSERT OR UPDATE */
#define MIG_GUARD(ins)                                                        \
    "CREATE OR REPLACE FUNCTION a_guard() RETURNS trigger LANGUAGE plpgsql\n" \
    "AS $$ BEGIN NEW.x := NEW.x + 1; RETURN NEW; END $$;\n"                   \
    "REVOKE ALL ON FUNCTION a_guard() FROM PUBLIC;\n"                         \
    "SELECT trigger_ensure(\n"                                                \
    "    'CREATE TRIGGER a_guard BEFORE " ins " ON public.t FOR EACH ROW"     \
    " EXECUTE FUNCTION public.a_guard()');\n"

Test(sql, migrate_applies_trigger_ensure_before_the_files_that_call_it,
     .timeout = 60,
     .description = "the function files make their triggers by trigger_ensure "
                    "(sql/functions/trigger_ensure.sql): payments-migrate "
                    "applies it before the others, so a file that sorts "
                    "before it finds it on a fresh database and when both "
                    "change in one upgrade, and one changed alone finds it "
                    "in the database; a trigger as written is left alone, "
                    "one other than written is made anew")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[8192], cmd[4096];
    int      rc;
    PGconn  *d;

    mig_new(c, db, dir);
    mig_file(dir, "migrations/001_t.sql", "CREATE TABLE t (x int);\n");
    snprintf(cmd, sizeof(cmd), "cp '%s'/sql/functions/trigger_ensure.sql '%s/functions/'",
             getenv("PAY_TEST_ROOT"), dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    /* a_guard.sql sorts before trigger_ensure.sql */
    mig_file(dir, "functions/a_guard.sql", MIG_GUARD("INSERT"));
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "2 function files applied, 0 already current") != NULL,
              "%s", out);

    d = mig_open(db);
    OK0(d, "INSERT INTO t VALUES (1)");
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(x::text, ',') FROM t"), "2");
    cr_expect_str_eq(VAL0(d, "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
                             " WHERE tgname = 'a_guard'"),
                     "CREATE TRIGGER a_guard BEFORE INSERT ON public.t"
                     " FOR EACH ROW EXECUTE FUNCTION a_guard()");

    /* both changed, the trigger now other than written: made anew */
    mig_touch_functions(dir, "trigger_ensure.sql");
    mig_file(dir, "functions/a_guard.sql", MIG_GUARD("INSERT OR UPDATE"));
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "2 function files applied, 0 already current") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
                             " WHERE tgname = 'a_guard'"),
                     "CREATE TRIGGER a_guard BEFORE INSERT OR UPDATE ON public.t"
                     " FOR EACH ROW EXECUTE FUNCTION a_guard()");

    /* a_guard.sql changed alone, its trigger as written: left alone (its
     * catalog row not written again: the same xmin) */
    snprintf(cmd, sizeof(cmd), "%s",
             VAL0(d, "SELECT xmin FROM pg_trigger WHERE tgname = 'a_guard'"));
    mig_touch_functions(dir, "a_guard.sql");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "1 function files applied, 1 already current") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT xmin FROM pg_trigger WHERE tgname = 'a_guard'"),
                     cmd);

    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migrate_is_not_stopped_by_a_statement_timeout_and_waits_for_a_lock_5_s,
     .timeout = 120,
     .description = "a statement_timeout set on the database (or the migrating "
                    "role) would cut short a slow migration at every attempt: "
                    "payments-migrate's sessions set none.  A lock a migration "
                    "waits for is waited for 5 s, every write of that table "
                    "queued behind it meanwhile, then nothing is applied and it "
                    "says to run it again; once the lock is free, it applies")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], out[8192], sql[128];
    int      rc;
    PGconn  *d, *w;

    mig_new(c, db, dir);
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET statement_timeout = '300ms'", db);
    OK0(c, sql);
    mig_file(dir, "migrations/001_slow.sql", "CREATE TABLE t (x int);\n"
                                            "SELECT pg_sleep(1);\n");
    mig_file(dir, "functions/f_slow.sql",
             "CREATE OR REPLACE FUNCTION f_slow() RETURNS int LANGUAGE sql\n"
             "AS $$ SELECT 1 $$;\n"
             "SELECT pg_sleep(0.5);\n");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "001_slow.sql: applied\n") != NULL, "%s", out);

    /* a long transaction reads t: the migration altering it waits 5 s */
    d = mig_open(db);
    w = mig_open(db);
    OK0(w, "BEGIN");
    OK0(w, "LOCK TABLE t IN ACCESS SHARE MODE");
    mig_file(dir, "migrations/002_alter.sql", "ALTER TABLE t ADD COLUMN y int;\n");
    rc = mig_run_by("timeout 30", dir, db, out, sizeof(out));
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "the migration 002_alter.sql and the functions waited too "
                          "long for a lock another session holds") != NULL
              && strstr(out, "run payments-migrate again") != NULL, "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM schema_migrations"), "1");
    OK0(w, "COMMIT");

    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "002_alter.sql: applied\n") != NULL, "%s", out);

    PQfinish(w);
    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migrate_upgrade_s_transaction_reads_not_the_inbox,
     .timeout = 180,
     .description = "the upgrade to migrations 123 and 126 commits while another "
                    "session holds the event inbox (psp_events) locked: its "
                    "transaction, holding the locks of the migrations before "
                    "it, does not read the inbox (whole, nothing indexing the "
                    "inquiry ends it looks for); payments-migrate reads it "
                    "after the commit, a month at a time, and says so")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024], cmd[8192], out[16384];
    FILE    *p;
    int      rc, i;
    PGconn  *d, *w;

    /* a database of the release before: up to 122 (123 and 126 list the
     * inbox's months for payments-migrate to read after the commit; every
     * later one is set aside too, since migrations run in order) */
    mig_new(c, db, dir);
    mig_this_release(dir);
    mig_set_aside(dir, "migrations/12[3-9]_* migrations/1[3-9][0-9]_*"
                  " functions/inquiry_ends_applied_again.sql");
    rc = mig_run(dir, db, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);
    d = mig_open(db);
    OK0(d, "SELECT pay_inbox_partitions(1)");

    /* the upgrade while a session holds the inbox */
    w = mig_open(db);
    OK0(w, "BEGIN");
    OK0(w, "LOCK TABLE psp_events IN ACCESS EXCLUSIVE MODE");
    mig_bring_back(dir);
    snprintf(cmd, sizeof(cmd), "PAYMENTS_SQL_DIR='%s' timeout 60 '%s/bin/payments-migrate'"
             " '%s dbname=%s' 2>&1", dir, getenv("PAY_TEST_ROOT"),
             getenv("PAY_TEST_PG"), db);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    /* the upgrade commits its migrations (123 to the last) at once: 15 s
     * for 123 to 136 on a loaded CI machine (load 16), so up to 40 s */
    for (i = 0; i < 400; i++) {
        if (strcmp(VAL0(d, "SELECT count(*) FROM schema_migrations"
                           " WHERE version LIKE '123\\_%'"), "1") == 0) {
            break;
        }
        usleep(100 * 1000);
    }
    cr_expect_lt(i, 400, "the upgrade did not commit while the inbox was held");
    OK0(w, "COMMIT");
    rc = mig_wait(p, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "123_inquiry_ends_applied_again.sql: applied\n") != NULL
              && strstr(out, "the inquiry ends kept before the upgrade: ") != NULL,
              "%s", out);
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM inquiry_ends_unread"), "0");

    /* done: nothing more to read */
    rc = mig_run(dir, db, out, sizeof(out));
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "inquiry ends") == NULL, "%s", out);

    PQfinish(w);
    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}


Test(sql, migration_140_gives_the_refunds_in_flight_their_sellers_and_changes_nothing_else,
     .timeout = 120,
     .description = "a database of the release before (up to 139) with a "
                    "refund in flight and a settled one, upgraded: the one in "
                    "flight names its order's seller, its updated_at as it "
                    "was; the settled one none; a refund inserted after, "
                    "naming none, gets its order's (refunds_seller); the "
                    "sellers' index replaces refunds_pending")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024];
    PGconn  *d;

    /* up to 139, with this release's functions but the trigger that
     * writes the column 140 adds */
    d = mig_release_before(c, db, dir,
                           "migrations/14[0-9]_* functions/refunds_seller.sql");
    OK0(d, "SET session_replication_role = replica");
    OK0(d, "INSERT INTO payment_orders (merchant_id, payment_order_id, checkout_id,"
           " line_no, seller_account, amount, currency, status, ledger_updated,"
           " wallet_updated, commission)"
           " VALUES ('m_140', 'po_1', 'co_1', 1, 'seller_a', 1000, 'EUR', 'SUCCESS',"
           " true, true, 0)");
    OK0(d, "INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id,"
           " psp, nonce, amount, currency, status, commission_part, updated_at)"
           " SELECT 'm_140', 'rf_' || lpad(g::text, 24, '0'), 'co_1', 'po_1', 'stripe',"
           " 'm_140:rf_' || lpad(g::text, 24, '0'), 100, 'EUR',"
           " CASE g WHEN 1 THEN 'PENDING' ELSE 'SUCCEEDED' END,"
           " CASE g WHEN 1 THEN NULL ELSE 0 END, timestamptz '2026-01-02 03:04:05+00'"
           " FROM generate_series(1, 2) g");
    OK0(d, "RESET session_replication_role");

    mig_upgrade(dir, db);

    cr_expect_str_eq(VAL0(d, "SELECT string_agg(status || ' ' || coalesce(seller_account, '-')"
                             "    || ' ' || (updated_at = '2026-01-02 03:04:05+00')::text,"
                             "    ', ' ORDER BY refund_id) FROM refunds"),
                     "PENDING seller_a true, SUCCEEDED - true");

    /* a refund after it names its order's seller, whatever inserts it */
    OK0(d, "SET session_replication_role = replica");
    OK0(d, "ALTER TABLE refunds ENABLE ALWAYS TRIGGER refunds_seller");
    OK0(d, "INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id,"
           " psp, nonce, amount, currency, status)"
           " VALUES ('m_140', 'rf_000000000000000000000003', 'co_1', 'po_1', 'stripe',"
           " 'm_140:rf_000000000000000000000003', 100, 'EUR', 'PENDING')");
    OK0(d, "RESET session_replication_role");
    cr_expect_str_eq(VAL0(d, "SELECT seller_account FROM refunds"
                             " WHERE refund_id = 'rf_000000000000000000000003'"),
                     "seller_a");
    FAILS0(d, "23514", "UPDATE refunds SET seller_account = NULL"
                       " WHERE refund_id = 'rf_000000000000000000000003'");

    cr_expect_str_eq(VAL0(d, "SELECT string_agg(indexname, ', ' ORDER BY indexname)"
                             "  FROM pg_indexes WHERE tablename = 'refunds'"
                             "   AND indexname LIKE 'refunds_pending%'"),
                     "refunds_pending_seller");
    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

/*
 * Merchant m, and its checkouts co_<from>..co_<to> (15.00 USD,
 * EXECUTING, no session, no orders) each with the key k<i> that
 * registered it, in
 * progress, as pay_claim stores them (in one transaction: the key's
 * created_at is the checkout's), in plain SQL: this release's pay_claim
 * writes columns a release before has not.
 */
static void
mig_registering(PGconn *d, const char *m, int from, int to)
{
    char  sql[2048];

    snprintf(sql, sizeof(sql),
             "DO $$ BEGIN"
             " INSERT INTO merchants (merchant_id, name, mode) VALUES ('%s', 'test', 'test');"
             " INSERT INTO idempotency_keys (merchant_id, idem_key, fingerprint, state,"
             "     lease, lease_until, checkout_id, expires_at)"
             " SELECT '%s', 'k' || i, '" FP_A "', 'in_progress', 1,"
             "     now() + interval '1 hour', 'co_' || i, now() + interval '1 day'"
             "   FROM generate_series(%d, %d) i;"
             " INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
             "     amount_total, success_url, cancel_url, status, psp_request, expires_at)"
             " SELECT '%s', 'co_' || i, 'stripe', '%s:co_' || i, 'USD', 1500,"
             "     'https://shop.example/t', 'https://shop.example/c', 'EXECUTING', '{}',"
             "     now() + interval '1 hour'"
             "   FROM generate_series(%d, %d) i;"
             " END $$", m, m, from, to, m, m, from, to);
    OK0(d, sql);
}

Test(sql, migration_141_names_each_held_reviews_registration_key,
     .timeout = 120,
     .description = "a database of the release before (up to 140) with a "
                    "checkout held for review, a younger cancel's key naming "
                    "it too, and a review rejected: upgraded, the held one "
                    "names the key that registered it (review_key, which "
                    "review_key_of reads), not the cancel's; the rejected "
                    "one none")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024];
    PGconn  *d = mig_release_before(c, db, dir, "migrations/14[1-9]_*");

    /* two checkouts registered, each held as risk_verdict_record held
     * them before 141 (a verdict with no key); the first with a cancel's
     * key after it, the second rejected */
    mig_registering(d, "m_141", 1, 2);
    OK0(d, "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score,"
           " reason, source, review_until, reviewed, reviewed_at)"
           " VALUES ('m_141', 'co_1', 'review', 500, 'manual_check', 'provider',"
           "         now() + interval '1 hour', NULL, NULL),"
           "        ('m_141', 'co_2', 'review', 500, 'manual_check', 'provider',"
           "         now() + interval '1 hour', 'rejected', now())");
    OK0(d, "UPDATE checkouts SET status = 'REVIEW' WHERE merchant_id = 'm_141'"
           "   AND checkout_id = 'co_1'");
    cr_assert_str_eq(VAL0(d, "SELECT outcome FROM op_key_take('m_141', 'a-cancel', '"
                             FP_B "', 30, 86400, 'co_1')"), "new");

    mig_upgrade(dir, db);

    cr_expect_str_eq(VAL0(d, "SELECT string_agg(checkout_id || ' '"
                             "    || coalesce(review_key, '-'), ', ' ORDER BY checkout_id)"
                             "  FROM checkout_risk WHERE merchant_id = 'm_141'"),
                     "co_1 k1, co_2 -");
    cr_expect_str_eq(VAL0(d, "SELECT review_key_of('m_141', 'co_1')"), "k1");
    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

Test(sql, migration_142_names_the_key_of_each_checkout_a_registration_may_hold,
     .timeout = 120,
     .description = "a database of the release before (up to 141) with "
                    "checkouts registering (one with a cancel's key naming "
                    "it too), one with its session, one held for review: "
                    "upgraded, those registering and the held one name the "
                    "key that registered them (idem_key), the one with its "
                    "session none; a cancel then waits for a registration "
                    "whose lease is live, and not for one whose lease ran "
                    "out")
{
    PGconn  *c = sqlt_connect();
    char     db[32], dir[1024];
    PGconn  *d = mig_release_before(c, db, dir, "migrations/14[2-9]_*");

    mig_registering(d, "m_142", 1, 4);
    OK0(d, "UPDATE checkouts SET psp_token = 'cs_3' WHERE checkout_id = 'co_3'");
    OK0(d, "UPDATE checkouts SET status = 'REVIEW' WHERE checkout_id = 'co_4'");
    OK0(d, "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score,"
           " reason, source, review_until, review_key)"
           " VALUES ('m_142', 'co_4', 'review', 500, 'manual_check', 'provider',"
           "         now() + interval '1 hour', 'k4')");
    cr_assert_str_eq(VAL0(d, "SELECT outcome FROM op_key_take('m_142', 'a-cancel', '"
                             FP_B "', 30, 86400, 'co_1')"), "new");
    /* co_2's registration gave up its lease */
    OK0(d, "UPDATE idempotency_keys SET lease_until = now() WHERE idem_key = 'k2'");

    mig_upgrade(dir, db);

    cr_expect_str_eq(VAL0(d, "SELECT string_agg(checkout_id || ' '"
                             "    || coalesce(idem_key, '-'), ', ' ORDER BY checkout_id)"
                             "  FROM checkouts WHERE merchant_id = 'm_142'"),
                     "co_1 k1, co_2 k2, co_3 -, co_4 k4");
    cr_expect_str_eq(VAL0(d, "SELECT outcome FROM pay_cancel_claim('m_142', 'x1', '"
                             FP_B "', 30, 86400, 'co_1', 'paid', 'not_cancelable',"
                             " '{}')"), "registering");
    cr_expect_str_eq(VAL0(d, "SELECT outcome FROM pay_cancel_claim('m_142', 'x2', '"
                             FP_B "', 30, 86400, 'co_2', 'paid', 'not_cancelable',"
                             " '{}')"), "new");
    PQfinish(d);
    mig_drop(c, db);
    PQfinish(c);
}

/* ---- the token's look-up (sql/functions/psp_token_key.sql) -------------- */

static char  plan_notices[65536];

static void
plan_notice(void *arg, const char *msg)
{
    size_t  used = strlen(plan_notices);

    (void) arg;
    snprintf(plan_notices + used, sizeof(plan_notices) - used, "%s", msg);
}

/* auto_explain, loaded in c's session, hands the plans of every statement,
 * nested ones too, back as notices (into plan_notices, emptied), each
 * planned as a generic plan: the plan a connection keeps */
static void
plans_as_notices(PGconn *c)
{
    PQsetNoticeProcessor(c, plan_notice, NULL);
    OK0(c, "LOAD 'auto_explain'");
    OK0(c, "SET auto_explain.log_min_duration = 0");
    OK0(c, "SET auto_explain.log_nested_statements = on");
    OK0(c, "SET auto_explain.log_level = notice");
    OK0(c, "SET client_min_messages = notice");
    OK0(c, "SET plan_cache_mode = force_generic_plan");
    plan_notices[0] = '\0';
}

/*
 * An event's token is found by its candidates (a blind index per key), each
 * by the whole primary key of psp_tokens, whatever plan PostgreSQL keeps:
 * under a kept generic plan, "psp_token = ANY (p_tokens)" became a filter
 * over all of the PSP's tokens for every event (its plans read back with
 * plans_as_notices).
 */
Test(sql, the_token_lookup_reads_each_candidate_by_its_key_in_a_generic_plan)
{
    PGconn      *c = sqlt_connect();
    const char  *scan;

    plans_as_notices(c);
    /* the suite's psp_tokens holds a few rows, and once autovacuum has
     * analyzed them a scan of its one page is the cheapest plan of any
     * look-up, whenever that comes: the shape checked is the condition's
     * (the key, not "= ANY" nor a bitmap), which an index scan shows */
    OK0(c, "SET enable_seqscan = off");
    cr_assert_str_eq(VAL0(c, "SELECT psp_token_key('stripe', 'tok_x',"
                             " ARRAY['no-such-1', 'no-such-2'])"), "tok_x");

    scan = strstr(plan_notices, "on psp_tokens");
    cr_assert(scan != NULL, "no plan of psp_tokens: %s", plan_notices);
    cr_expect(strstr(plan_notices, "Index Cond: ((psp = $1) AND (psp_token = $") != NULL,
              "not by the whole key: %s", plan_notices);
    cr_expect(strstr(plan_notices, "ANY") == NULL && strstr(plan_notices, "Filter") == NULL
              && strstr(plan_notices, "Bitmap") == NULL, "%s", plan_notices);
    PQfinish(c);
}


/*
 * A chain's last row is found by the log's key backwards from the chain's
 * anchor on, whatever plan PostgreSQL keeps: PostgreSQL 15 reads a leaf
 * page of the index whole before it returns the first entry, so a scan
 * bounded by (merchant, chain) alone checked every entry of a long chain
 * on the page, about a hundred, at every append (bench/RESULTS.md).  The
 * anchor is at most eight rows back.
 */
Test(sql, an_audit_append_reads_its_chain_from_the_anchor_on_in_a_generic_plan)
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *scan;

    new_merchant(c, m);
    OK(c, "SELECT audit_append($1, 'co_a', 'test:moved', jsonb_build_object('n', g))"
          " FROM generate_series(1, 10) g", m);

    plans_as_notices(c);
    OK(c, "SELECT audit_append($1, 'co_a', 'test:moved', '{}')", m);
    OK0(c, "RESET client_min_messages");

    scan = strstr(plan_notices, "Index Scan Backward using audit_log_pkey on audit_log");
    cr_assert(scan != NULL, "no backward scan of the log's key: %s", plan_notices);
    cr_expect(strstr(scan, "Index Cond: ((merchant_id = $") != NULL
              && strstr(scan, "AND (seq >= COALESCE($") != NULL,
              "not from the anchor on: %s", plan_notices);
    cr_expect(strstr(plan_notices, "Seq Scan") == NULL, "%s", plan_notices);
    cr_expect_str_eq(VAL(c, "SELECT max(a.seq) || ' ' || h.seq FROM audit_log a"
                            " JOIN audit_heads h USING (merchant_id, chain)"
                            " WHERE a.merchant_id = $1 AND a.checkout_id = 'co_a'"
                            " GROUP BY h.seq", m), "11 8");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}


/*
 * A function that turns a scan type off (enable_seqscan, enable_bitmapscan:
 * so that a plan made on small tables stays an index walk as they grow)
 * keeps JIT off too.  Where a statement has no other plan for a node (a
 * table without an index on its condition), the planner keeps the
 * disabled scan at a cost of 1e10, far above jit_above_cost, and every
 * call compiled its plan with LLVM: pay_notify_stats, the gauges every
 * gateway's shard worker reads every one to ten seconds, cost 0.2 to 1.2 s
 * of database CPU a call for its count of the disabled endpoints.  The
 * gauges are called as the gateway calls them, their plans read back.
 */
Test(sql, the_gauges_of_metrics_compile_no_jit_code)
{
    PGconn      *c = sqlt_connect();
    const char  *calls[] = {
        "SELECT pending, oldest_pending_seconds, failed, endpoints_disabled"
        " FROM pay_notify_stats()",
        "SELECT * FROM pay_executing_stats(1000)",
    };
    size_t       i;

    /* else no plan would ever be compiled, and this test could not fail */
    cr_assert_str_eq(VAL0(c, "SELECT pg_jit_available()::text"), "true",
                     "this PostgreSQL cannot JIT (postgresql-15's llvmjit)");

    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        plans_as_notices(c);
        OK0(c, "SET jit = on");
        OK0(c, calls[i]);
        OK0(c, "RESET client_min_messages");
        cr_expect(strstr(plan_notices, "Query Text") != NULL,
                  "no plan was read back for %s", calls[i]);
        cr_expect(strstr(plan_notices, "JIT:") == NULL,
                  "%s compiled its plan:\n%s", calls[i], plan_notices);
    }
    PQfinish(c);
}


/*
 * What a paid event costs the database: its token read once (the first
 * candidate psp_tokens holds ends the look-up; it was read again after
 * psp_token_key had found it), and its orders moved, booked and credited
 * by one statement, not a ledger_book and a wallet_add call per order.
 * The transaction's own statistics (pg_stat_xact_*) count what this
 * session did; the booking still balances at commit.
 */
Test(sql, a_paid_event_reads_its_token_once_and_books_its_orders_in_one_statement)
{
    PGconn      *c = sqlt_connect();
    char         m[24], tok[64], evt[48];
    const char  *called;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(evt, sizeof(evt), "evt_%s", m);

    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL track_functions = 'all'");
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'SUCCEEDED', 'checkout.session.completed', 'tok_sent',"
                            " '', 1500, 'USD', 'pi_once', '', ARRAY[$2, 'no-such'])",
                         evt, tok), "applied");
    cr_expect_str_eq(VAL0(c, "SELECT idx_scan + seq_scan FROM pg_stat_xact_user_tables"
                             " WHERE relname = 'psp_tokens'"), "1");
    called = VAL0(c, "SELECT string_agg(funcname || ': ' || calls, ', '"
                     " ORDER BY funcname) FROM pg_stat_xact_user_functions"
                     " WHERE funcname IN ('psp_token_key', 'ledger_book', 'wallet_add')");
    cr_expect_null(called, "called per event: %s", called);
    OK0(c, "COMMIT");

    cr_expect_str_eq(VAL(c, "SELECT string_agg(t.payment_order_id || ' ' || e.account"
                            " || ' ' || e.amount, ', ' ORDER BY t.payment_order_id,"
                            " e.entry_no) FROM ledger_transactions t"
                            " JOIN ledger_entries e USING (merchant_id, txn_id)"
                            " WHERE t.merchant_id = $1", m),
                     "co_1_1 psp_clearing:stripe 1000, co_1_1 seller_payable:seller_42 -1000, "
                     "co_1_2 psp_clearing:stripe 500, co_1_2 seller_payable:seller_77 -500");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(seller_account || ' ' || amount, ', '"
                            " ORDER BY seller_account) FROM wallet_credits"
                            " WHERE merchant_id = $1", m),
                     "seller_42 1000, seller_77 500");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || from_status"
                            " || '>' || to_status, ', ' ORDER BY payment_order_id)"
                            " FROM order_events WHERE merchant_id = $1"
                            " AND to_status = 'SUCCESS'", m),
                     "co_1_1 EXECUTING>SUCCESS, co_1_2 EXECUTING>SUCCESS");
    PQfinish(c);
}

/* A new event kept by pay_event_keep (the webhook's transaction) looks its
 * id up in psp_event_ids by the key and calls neither psp_event_kept (only
 * for an id found there) nor psp_event_state (its state when applied: the
 * row every path that answers "applied" writes); its state and record are
 * what they were, and a second delivery is still found, as a duplicate of
 * the applied event. */
Test(sql, a_new_event_kept_calls_no_duplicate_or_state_function)
{
    PGconn      *c = sqlt_connect();
    char         m[24], tok[64], evt[48], ref[48];
    const char  *called;
    const char  *keep = "SELECT outcome || ' ' || state FROM pay_event_keep('stripe', $1,"
                        " 'CAPTURED', 'checkout.session.completed', 'tok_sent', $3, 1500,"
                        " 'USD', 'pi_kept', '', ARRAY[$2], '\\x7b7d'::bytea, '{}', 'k1')";

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(evt, sizeof(evt), "evt_%s", m);
    snprintf(ref, sizeof(ref), "%s:co_1", m);
    OK0(c, "SELECT pay_inbox_partitions(1)");

    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL track_functions = 'all'");
    cr_assert_str_eq(VAL(c, keep, evt, tok, ref), "applied applied");
    called = VAL0(c, "SELECT string_agg(funcname || ': ' || calls, ', '"
                     " ORDER BY funcname) FROM pg_stat_xact_user_functions"
                     " WHERE funcname IN ('psp_event_kept', 'psp_event_state')");
    cr_expect_null(called, "called for a new event: %s", called);
    OK0(c, "COMMIT");

    cr_expect_str_eq(VAL(c, "SELECT (SELECT state || ' ' || outcome || ' ' || checkout_id"
                            "         FROM psp_events WHERE event_id = $1)"
                            " || ' ' || (SELECT outcome FROM webhook_events"
                            "             WHERE psp = 'stripe' AND event_id = $1)"
                            " || ' ' || (SELECT status FROM checkouts"
                            "             WHERE merchant_id = $2 AND checkout_id = 'co_1')",
                         evt, m),
                     "applied applied co_1 applied SUCCESS");
    /* delivered again: found by its id, nothing applied twice */
    cr_expect_str_eq(VAL(c, keep, evt, tok, ref), "duplicate applied");
    cr_expect_str_eq(VAL(c, "SELECT (SELECT count(*) FROM psp_events WHERE event_id = $1)"
                            " || ' ' || (SELECT count(*) FROM ledger_transactions"
                            "             WHERE merchant_id = $2)", evt, m),
                     "1 2");
    PQfinish(c);
}

/* The statements a session ran (each executor's run, nested ones too), as
 * auto_explain hands them back: one line each, the first 300 characters of
 * its text with its white space squeezed */
static char  stmt_lines[32768];
static int   stmt_count;

static void
stmt_notice(void *arg, const char *msg)
{
    const char  *q = strstr(msg, "Query Text: ");
    const char  *end;
    size_t       used = strlen(stmt_lines), n = 0;
    int          space = 0;

    (void) arg;
    if (q == NULL) {
        return;
    }
    q += sizeof("Query Text: ") - 1;
    /* the plan follows the text: its first line is a node's, unindented */
    end = strstr(q, "\n");
    while (end != NULL && end[1] == ' ') {
        end = strstr(end + 1, "\n");
    }
    stmt_count++;
    if (used + 304 >= sizeof(stmt_lines)) {
        return;
    }
    stmt_lines[used++] = ' ';
    for (; *q != '\0' && (end == NULL || q < end) && n < 300; q++) {
        if (*q == ' ' || *q == '\n' || *q == '\t') {
            space = 1;
            continue;
        }
        if (space) {
            stmt_lines[used++] = ' ';
            n++;
            space = 0;
        }
        stmt_lines[used++] = *q;
        n++;
    }
    stmt_lines[used++] = '\n';
    stmt_lines[used] = '\0';
}

/*
 * A paid event's webhook (pay_event_keep, a new event of a two-order
 * checkout) runs 20 statements, deferred triggers' at commit included
 * (it ran 29): each costs PostgreSQL an executor's start
 * (bench/RESULTS.md).  The event's advisory lock and the audit row's call
 * are expressions, not PERFORMs, and so are pay_event_keep's call of
 * pay_event_apply and pay_event_apply's of pay_webhook_apply_core (each
 * answers one row, not a set); each function's answer is its last
 * INSERT's RETURNING, not a RETURN QUERY of its own; the test of a save
 * without a charge looks payment_methods up only for a zero-amount
 * checkout with a method to save.  What it wrote is what it was.
 */
Test(sql, a_paid_webhook_runs_no_statement_an_expression_or_its_insert_does)
{
    PGconn      *c = sqlt_connect();
    char         m[24], tok[64], evt[48], ref[48];
    const char  *keep = "SELECT outcome || ' ' || state FROM pay_event_keep('stripe', $1,"
                        " 'CAPTURED', 'checkout.session.completed', 'tok_sent', $3, 1500,"
                        " 'USD', 'pi_kept', '', ARRAY[$2], '\\x7b7d'::bytea, '{}', 'k1')";
    const char  *gone[] = { "pg_advisory_xact_lock", "SELECT audit_append",
                            "payment_methods", "SELECT a.outcome", "SELECT v.outcome",
                            "SELECT v_outcome", "FROM pay_webhook_apply_core",
                            "FROM pay_event_apply" };
    size_t       i;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(evt, sizeof(evt), "evt_%s", m);
    snprintf(ref, sizeof(ref), "%s:co_1", m);
    OK0(c, "SELECT pay_inbox_partitions(1)");

    PQsetNoticeProcessor(c, stmt_notice, NULL);
    OK0(c, "LOAD 'auto_explain'");
    OK0(c, "SET auto_explain.log_min_duration = 0");
    OK0(c, "SET auto_explain.log_nested_statements = on");
    OK0(c, "SET auto_explain.log_level = notice");
    OK0(c, "SET client_min_messages = notice");
    stmt_lines[0] = '\0';
    stmt_count = 0;
    cr_assert_str_eq(VAL(c, keep, evt, tok, ref), "applied applied");
    OK0(c, "RESET client_min_messages");
    OK0(c, "RESET auto_explain.log_min_duration");

    cr_expect_leq(stmt_count, 20, "%d statements:\n%s", stmt_count, stmt_lines);
    for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        cr_expect(strstr(stmt_lines, gone[i]) == NULL, "a statement of its own: %s\n%s",
                  gone[i], stmt_lines);
    }

    cr_expect_str_eq(VAL(c, "SELECT (SELECT state || ' ' || outcome || ' ' || checkout_id"
                            "         FROM psp_events WHERE event_id = $1)"
                            " || ' ' || (SELECT outcome || ' ' || checkout_id"
                            "             FROM webhook_events"
                            "             WHERE psp = 'stripe' AND event_id = $1)"
                            " || ' ' || (SELECT status FROM checkouts"
                            "             WHERE merchant_id = $2 AND checkout_id = 'co_1')"
                            " || ' ' || (SELECT count(*) FROM audit_log"
                            "             WHERE merchant_id = $2 AND action = 'webhook:applied')"
                            " || ' ' || (SELECT count(*) FROM ledger_transactions"
                            "             WHERE merchant_id = $2)",
                         evt, m),
                     "applied applied co_1 applied co_1 SUCCESS 1 2");
    cr_expect_str_eq(VAL(c, "SELECT e.merchant_id = $2 AND w.merchant_id = $2"
                            " FROM psp_events e JOIN webhook_events w USING (psp, event_id)"
                            " WHERE e.event_id = $1", evt, m), "t");
    /* delivered again: a duplicate, nothing applied twice */
    cr_expect_str_eq(VAL(c, keep, evt, tok, ref), "duplicate applied");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(c);
}


#define CP_B     "cp_00000000000000000000000b"

/* The names of m's co_1 and of what the PSP says of it, as the capture
 * tests give them: the PSP's ids are the PSP's own, unique across
 * merchants. */
typedef struct {
    char  tok[64];      /* its session's token, "<m>.cs_1" */
    char  nonce[48];    /* its nonce, "<m>:co_1" */
    char  ours[64];     /* our capture CP_B's nonce, "<m>:" CP_B */
    char  psp[48];      /* the PSP's payment, "psp_<m>" */
    char  ev[4][48];    /* the PSP's events, "evt_<i>_<m>" */
    char  cap[4][48];   /* the PSP's captures, "cap_<i>_<m>" */
} cap_names_t;

static void
cap_names(cap_names_t *nm, const char *m)
{
    snprintf(nm->tok, sizeof(nm->tok), "%s.cs_1", m);
    snprintf(nm->nonce, sizeof(nm->nonce), "%s:co_1", m);
    snprintf(nm->ours, sizeof(nm->ours), "%s:" CP_B, m);
    snprintf(nm->psp, sizeof(nm->psp), "psp_%s", m);
    for (int i = 0; i < 4; i++) {
        snprintf(nm->ev[i], sizeof(nm->ev[i]), "evt_%d_%s", i, m);
        snprintf(nm->cap[i], sizeof(nm->cap[i]), "cap_%d_%s", i, m);
    }
}


Test(sql, the_sweeper_books_no_amount_of_its_own_after_the_psp_told_another,
     .description = "pay_sweeper_apply: the PSP's success for 14.00 of a 15.00 checkout is recorded amount_mismatch (nothing booked, the checkout EXECUTING); the sweeper's look-up then says paid with no amount (Adyen's session result): the checkout's own 15.00 is not put in for it, so nothing is booked and the outcome is amount_mismatch (alerted, recorded as the sweeper's) -- before, 15.00 was booked 'applied'; a look-up that names 15.00 itself still books it")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    cap_names_t  nm;
    const char  *sweep =
        "SELECT outcome FROM pay_sweeper_apply('stripe', $1, 'SUCCEEDED',"
        " 'completed', 'tok_sent', '', $3::bigint, $4, 'psp_x', ARRAY[$2])";

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    cap_names(&nm, m);

    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'SUCCEEDED', 'AUTHORISATION', 'tok_sent', '', 1400, 'USD',"
                            " 'psp_x', '', ARRAY[$2])", nm.ev[0], nm.tok), "amount_mismatch");

    cr_expect_str_eq(VAL(c, sweep, nm.ev[1], nm.tok, "-1", ""), "amount_mismatch");
    cr_expect_str_eq(VAL(c, "SELECT outcome || ' ' || source FROM webhook_events"
                            " WHERE psp = 'stripe' AND event_id = $1", nm.ev[1]),
                     "amount_mismatch sweeper");
    cr_expect_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "EXECUTING");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", m),
                     "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM payment_orders WHERE merchant_id = $1"
                            " AND status <> 'EXECUTING'", m), "0");

    /* the PSP's look-up naming the amount itself: booked */
    cr_expect_str_eq(VAL(c, sweep, nm.ev[2], nm.tok, "1500", "USD"), "applied");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_clearing:stripe'", m), "1500");
    PQfinish(c);
}


Test(sql, claim_stores_metadata_an_object_only,
     .description = "pay_claim with p_metadata stores it on the checkout and pay_get_checkout answers it; anything but an object is refused (22023) with nothing stored; the signature without it stores {}")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *sql =
        "SELECT outcome FROM pay_claim($1, $2, repeat('a', 64), 30, 86400, $3, 'stripe', 'USD', 1000,"
        " 'https://shop.example/thanks', 'https://shop.example/cart', NULL,"
        " " EXPIRES_EPOCH ", 'req', ('[{\"payment_order_id\":\"' || $3 || '_1\","
        "\"seller_account\":\"s\",\"amount_minor\":1000}]')::jsonb, 'dup', $4::jsonb)";

    new_merchant(c, m);
    cr_expect_str_eq(VAL(c, sql, m, "mk1", "co_m1", "{\"order_ref\":\"A-17\"}"),
                     "claimed");
    cr_expect_str_eq(VAL(c, "SELECT (pay_get_checkout($1, 'co_m1')::jsonb)"
                            " -> 'metadata' ->> 'order_ref'", m), "A-17");

    FAILS(c, "22023", sql, m, "mk2", "co_m2", "[\"x\"]");
    FAILS(c, "22023", sql, m, "mk3", "co_m3", "\"x\"");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE merchant_id = $1",
                         m), "1");

    claim(c, &(claim_req_t){ .merchant = m });
    cr_expect_str_eq(VAL(c, "SELECT metadata::text FROM checkouts"
                            " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m),
                     "{}");
}


Test(sql, a_capture_made_at_the_psp_is_split_over_the_orders_and_taken_back_whole,
     .description = "capture_event_apply: a CAPTURE_SUCCEEDED naming the checkout (no capture of ours) books 4.01 of a 10.00 + 5.00 hold as 2.68 + 1.33 (floor by what each holds, the unit left to the first line), a capture row each under the PSP's id, alerted captured_outside; again under another event id it is 'already'; its CAPTURE_FAILED undoes both parts (capture_reversed): nothing captured, the ledger back to nought, every transaction balanced")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    cap_names_t  nm;

    new_merchant(c, m);
    OK(c, "UPDATE merchants SET commission_bps = 1000 WHERE merchant_id = $1", m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    OK(c, "UPDATE checkouts SET capture_method = 'manual' WHERE merchant_id = $1", m);
    cap_names(&nm, m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'AUTHORIZED', 'payment_intent.amount_capturable_updated',"
                            " '', $2, 1500, 'USD', 'pi_held', '', ARRAY[$3])",
                         nm.ev[0], nm.nonce, nm.tok), "applied");
    cr_assert_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "AUTHORIZED");

    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, 401, 'USD',"
                            " 'pi_held', 'cap_dash', '{}')", nm.ev[1], nm.nonce),
                     "captured_outside");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 268 SUCCESS, co_1_2 133 SUCCESS");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount || ' '"
                            " || status || ' ' || psp_ref, ', ' ORDER BY payment_order_id)"
                            " FROM captures WHERE merchant_id = $1", m),
                     "co_1_1 268 SUCCEEDED cap_dash, co_1_2 133 SUCCEEDED cap_dash");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_clearing:stripe'", m), "401");
    /* the commission's parts (10 %) booked and kept on the orders */
    cr_expect_str_eq(VAL(c, "SELECT (SELECT -sum(amount) FROM ledger_entries"
                            " WHERE merchant_id = $1 AND account = 'platform_commission')"
                            " = (SELECT sum(commission) FROM payment_orders WHERE merchant_id = $1)"
                            " AND (SELECT sum(commission) FROM payment_orders"
                            " WHERE merchant_id = $1) = (SELECT sum(commission_part) FROM captures"
                            " WHERE merchant_id = $1) AND (SELECT sum(commission_part) FROM captures"
                            " WHERE merchant_id = $1) BETWEEN 39 AND 41", m), "t");
    /* the wallets view: the suite's gateway folds wallet_credits every second */
    cr_expect_str_eq(VAL(c, "SELECT (SELECT sum(balance) FROM wallets WHERE merchant_id = $1)"
                            " + (SELECT sum(commission_part) FROM captures WHERE merchant_id = $1)",
                         m), "401");
    cr_expect_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "SUCCESS");

    /* the same capture again under another event id: nothing moves */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, 401, 'USD',"
                            " 'pi_held', 'cap_dash', '{}')", nm.ev[2], nm.nonce),
                     "already");

    /* taken back: both parts undone */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_FAILED', 'capture.failed', '', $2, 401, 'USD',"
                            " 'pi_held', 'cap_dash', '{}')", nm.ev[3], nm.nonce),
                     "capture_reversed");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || commission, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 0 0, co_1_2 0 0");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(status, ',') FROM captures"
                            " WHERE merchant_id = $1", m), "FAILED,FAILED");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(account || ' ' || total, ', '"
                            " ORDER BY account) FROM (SELECT account, sum(amount) AS total"
                            " FROM ledger_entries WHERE merchant_id = $1"
                            " GROUP BY account) x", m),
                     "platform_commission 0, psp_clearing:stripe 0, "
                     "seller_payable:seller_42 0, seller_payable:seller_77 0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM (SELECT txn_id FROM ledger_entries"
                            " WHERE merchant_id = $1 GROUP BY txn_id"
                            " HAVING sum(amount) <> 0) x", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT coalesce(sum(balance), 0) FROM wallets"
                            " WHERE merchant_id = $1", m), "0");
    PQfinish(c);
}


Test(sql, a_capture_made_at_the_psp_naming_no_capture_id_is_booked_nowhere,
     .description = "capture_event_apply: two CAPTURE_SUCCEEDED of 4.01 of a 15.00 hold naming the checkout, under two event ids and no PSP capture id: nothing tells the second from a delivery of the first, so neither is booked (each recorded object_mismatch, alerted, for a person): nothing captured, the ledger untouched, the checkout still AUTHORIZED (before: both booked as captured_outside, 8.02 captured)")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    cap_names_t  nm;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    OK(c, "UPDATE checkouts SET capture_method = 'manual' WHERE merchant_id = $1", m);
    cap_names(&nm, m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'AUTHORIZED', 'payment_intent.amount_capturable_updated',"
                            " '', $2, 1500, 'USD', 'pi_held', '', ARRAY[$3])",
                         nm.ev[0], nm.nonce, nm.tok), "applied");

    for (int i = 1; i < 3; i++) {
        cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                                " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, 401,"
                                " 'USD', 'pi_held', '', '{}')", nm.ev[i], nm.nonce),
                         "object_mismatch");
    }
    cr_expect_str_eq(VAL(c, "SELECT string_agg(outcome, ',' ORDER BY event_id)"
                            " FROM webhook_events WHERE merchant_id = $1"
                            " AND kind = 'CAPTURE_SUCCEEDED'", m),
                     "object_mismatch,object_mismatch");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 0 AUTHORIZED, co_1_2 0 AUTHORIZED");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM captures WHERE merchant_id = $1", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", m),
                     "0");
    cr_expect_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "AUTHORIZED");
    PQfinish(c);
}


Test(sql, a_capture_made_at_the_psp_holds_a_checkout_whose_authorization_never_came,
     .description = "capture_event_apply: a manual checkout still EXECUTING (its authorization's event lost): the reversal of a capture made at the PSP, come first, is not recorded (unknown_capture, kept); the capture then holds the checkout (EXECUTING>AUTHORIZED, the PSP's payment noted) and is booked (captured_outside); the reversal delivered again takes it back whole (capture_reversed); the authorization's own event, late, is 'already'; every transaction balanced")
{
    PGconn      *c = sqlt_connect();
    char         m[24], pi[48], cap[48], want[80];
    cap_names_t  nm;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    OK(c, "UPDATE checkouts SET capture_method = 'manual' WHERE merchant_id = $1", m);
    cap_names(&nm, m);
    /* the PSP's ids are its own, unique across merchants */
    snprintf(pi, sizeof(pi), "pi_%s", m);
    snprintf(cap, sizeof(cap), "cap_%s", m);
    snprintf(want, sizeof(want), "SUCCESS %s true", pi);

    /* the reversal first: kept for its capture, nothing recorded */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_FAILED', 'capture.failed', '', $2, 401, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, pi, cap),
                     "unknown_capture");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM webhook_events WHERE merchant_id = $1", m),
                     "0");

    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, 401, 'USD',"
                            " $3, $4, '{}')", nm.ev[1], nm.nonce, pi, cap),
                     "captured_outside");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || psp_payment_ref || ' '"
                            " || (authorized_at IS NOT NULL) FROM checkouts"
                            " WHERE merchant_id = $1", m),
                     want);
    cr_expect_str_eq(VAL(c, "SELECT checkout_id FROM psp_payments WHERE psp = 'stripe'"
                            " AND payment_ref = $2 AND merchant_id = $1", m, pi),
                     "co_1");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || from_status"
                            " || '>' || to_status, ', ' ORDER BY payment_order_id, event_id)"
                            " FROM order_events WHERE merchant_id = $1"
                            " AND from_status IN ('EXECUTING', 'AUTHORIZED')", m),
                     "co_1_1 EXECUTING>AUTHORIZED, co_1_1 AUTHORIZED>SUCCESS, "
                     "co_1_2 EXECUTING>AUTHORIZED, co_1_2 AUTHORIZED>SUCCESS");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 268 SUCCESS, co_1_2 133 SUCCESS");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_clearing:stripe'", m), "401");

    /* the reversal again, under its own id: both parts undone */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_FAILED', 'capture.failed', '', $2, 401, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, pi, cap),
                     "capture_reversed");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(status, ',') FROM captures"
                            " WHERE merchant_id = $1", m), "FAILED,FAILED");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_clearing:stripe'", m), "0");

    /* the authorization's own event, late: the hold is known */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'AUTHORIZED', 'payment_intent.amount_capturable_updated',"
                            " '', $2, 1500, 'USD', $4, '', ARRAY[$3])",
                         nm.ev[2], nm.nonce, nm.tok, pi), "already");
    cr_expect_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "SUCCESS");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM (SELECT txn_id FROM ledger_entries"
                            " WHERE merchant_id = $1 GROUP BY txn_id"
                            " HAVING sum(amount) <> 0) x", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT coalesce(sum(balance), 0) FROM wallets"
                            " WHERE merchant_id = $1", m), "0");
    PQfinish(c);
}


/* ---- disputes of a partly captured checkout ----------------------------- */

/* co_1 of m as a manual capture leaves it: 1000 authorized of seller_42
 * with a captured of it (SUCCESS), 500 of seller_77 with b captured
 * (SUCCESS, or FAILED when b is 0: released), a_refunded of the first
 * refunded (SUCCEEDED).  Written as the capture's and refund's own
 * functions leave the rows (their bookings are theirs, not this test's). */
static void
partly_captured(PGconn *c, const char *m, const char *a, const char *b,
    const char *a_refunded)
{
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");

    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, "UPDATE checkouts SET status = 'SUCCESS', capture_method = 'manual',"
          " authorized_at = now(), hold_closed_at = now()"
          " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m);
    OK(c, "UPDATE payment_orders SET amount_captured = CASE line_no WHEN 1"
          " THEN $2::bigint ELSE $3::bigint END, status = CASE WHEN (CASE"
          " line_no WHEN 1 THEN $2::bigint ELSE $3::bigint END) > 0 THEN"
          " 'SUCCESS' ELSE 'FAILED' END::pay_status, commission = CASE WHEN"
          " (CASE line_no WHEN 1 THEN $2::bigint ELSE $3::bigint END) > 0"
          " THEN 0 END, ledger_updated = (CASE line_no WHEN 1 THEN $2::bigint"
          " ELSE $3::bigint END) > 0, wallet_updated = (CASE line_no WHEN 1"
          " THEN $2::bigint ELSE $3::bigint END) > 0"
          " WHERE merchant_id = $1 AND checkout_id = 'co_1'", m, a, b);
    OK(c, "INSERT INTO refunds (merchant_id, refund_id, checkout_id,"
          " payment_order_id, psp, nonce, amount, currency, status,"
          " commission_part) SELECT $1, 'rf_000000000000000000000001', 'co_1',"
          " 'co_1_1', 'stripe', $1 || ':rf_000000000000000000000001',"
          " $2::bigint, 'USD', 'SUCCEEDED', 0 WHERE $2::bigint > 0",
       m, a_refunded);
    OK0(c, "COMMIT");
}

/* A dispute event of co_1 as the webhook applies it: its outcome. */
static const char *
dispute_event(PGconn *c, const char *m, const char *kind, const char *ref,
    const char *amount)
{
    char  evt[80], nonce[40], dref[48];

    /* a PSP's dispute id is the PSP's, across merchants */
    snprintf(evt, sizeof(evt), "evt_%s_%s_%s", ref, kind, m);
    snprintf(nonce, sizeof(nonce), "%s:co_1", m);
    snprintf(dref, sizeof(dref), "%s_%s", ref, m);

    return VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1, $2,"
                  " 'charge.dispute', '', $3, $4::bigint, 'USD', '', $5,"
                  " ARRAY[]::text[])", evt, kind, nonce, amount, dref);
}

static const char *
dispute_parts_of(PGconn *c, const char *m, const char *ref)
{
    return VAL(c, "SELECT string_agg(dp.seller_account || ' ' || dp.amount"
                  " || CASE WHEN dp.excess > 0 THEN ' +' || dp.excess ELSE '' END,"
                  " ', ' ORDER BY dp.payment_order_id) FROM dispute_parts dp"
                  " JOIN disputes d USING (merchant_id, dispute_id)"
                  " WHERE dp.merchant_id = $1 AND d.psp_dispute_ref = $2 || '_' || $1",
               m, ref);
}

static const char *
dispute_wallets(PGconn *c, const char *m)
{
    return VAL(c, "SELECT string_agg(seller_account || ' ' || balance, ', '"
                  " ORDER BY seller_account) FROM wallets WHERE merchant_id = $1"
                  " AND balance <> 0", m);
}

Test(sql, a_chargeback_is_split_over_what_captured_orders_still_hold,
     .description = "dispute_event_apply and dispute_split: a dispute of a manual checkout of 10.00 (seller_42, 4.00 captured) and 5.00 (seller_77, released, nothing captured) is all the first's, open and lost; the released order has no part and its seller's wallet is untouched (doc/MONEY.md, Disputes)")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    partly_captured(c, m, "400", "0", "0");

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_a", "400"), "applied");
    cr_expect_str_eq(dispute_parts_of(c, m, "dp_a"), "seller_42 400");
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_a", "400"), "applied");
    cr_expect_str_eq(dispute_wallets(c, m), "seller_42 -400");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(account || ' ' || s, ', ' ORDER BY account)"
                            " FROM (SELECT account, sum(amount) AS s FROM ledger_entries"
                            " WHERE merchant_id = $1 GROUP BY 1) l", m),
                     "disputes:stripe 0, psp_clearing:stripe -400, seller_payable:seller_42 400");

    /* beyond what was captured: no PSP can withdraw it; nothing booked */
    cr_expect_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_b", "401"), "amount_mismatch");
    cr_expect_null(dispute_parts_of(c, m, "dp_b"));
    PQfinish(c);
}

Test(sql, a_fully_refunded_part_takes_no_share_of_a_chargeback,
     .description = "4.00 of the first order captured and refunded, 5.00 of the second captured: a 5.00 dispute is all the second's; one beyond what is held (the PSP's word) is booked whole, what no order holds spread by what each captured as the parts' excess, and reported dispute_excess; lost, the excess is the platform's (psp_shortfall, audited), no seller's; one beyond the captured total is amount_mismatch")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    partly_captured(c, m, "400", "500", "400");

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_a", "500"), "applied");
    cr_expect_str_eq(dispute_parts_of(c, m, "dp_a"), "seller_42 0, seller_77 500");

    /* nothing is held any more: 100 by the captured 400 and 500, floor
     * 44 and 55, the unit left to the first in line */
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_b", "100"),
                     "dispute_excess");
    cr_expect_str_eq(dispute_parts_of(c, m, "dp_b"), "seller_42 0 +45, seller_77 0 +55");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries"
                            " WHERE merchant_id = $1 AND account = 'disputes:stripe'", m),
                     "600");
    /* lost: neither seller holds any of it (one refunded it, the other's
     * is under the open dp_a): the platform's, for a person to recover */
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_b", "100"), "applied");
    cr_expect_null(dispute_wallets(c, m), "a seller charged for money it no "
                   "longer held: %s", dispute_wallets(c, m));
    cr_expect_str_eq(VAL(c, "SELECT string_agg(account || ' ' || s, ', ' ORDER BY account)"
                            " FROM (SELECT account, sum(amount) AS s FROM ledger_entries"
                            " WHERE merchant_id = $1 AND account NOT LIKE 'psp\\_clearing:%'"
                            " GROUP BY 1) l", m),
                     "disputes:stripe 500, psp_shortfall:stripe 100");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'dispute:shortfall'"
                            " AND (detail->>'shortfall')::bigint = 100", m), "1");

    cr_expect_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_c", "901"), "amount_mismatch");
    PQfinish(c);
}


/* ---- commission and refund shares after reversals, disputes won then lost */

/* co_1 of m, a manual checkout of two orders of 1.00 (co_1_1 of seller_42,
 * co_1_2 of seller_77) held at the PSP as payment "pi_<m>", at the
 * merchant's commission of bps basis points plus fixed (USD). */
static void
held_two(PGconn *c, const char *m, const char *bps, const char *fixed)
{
    char  tok[64], nonce[48], ev[64], pi[40];

    OK(c, "UPDATE merchants SET commission_bps = $2::int WHERE merchant_id = $1", m, bps);
    OK(c, "INSERT INTO merchant_commission_fixed (merchant_id, currency, amount)"
          " VALUES ($1, 'USD', $2::bigint)", m, fixed);
    claim(c, &(claim_req_t){ .merchant = m, .total = "200", .orders =
        "[{\"payment_order_id\":\"co_1_1\",\"seller_account\":\"seller_42\",\"amount_minor\":100},"
        "{\"payment_order_id\":\"co_1_2\",\"seller_account\":\"seller_77\",\"amount_minor\":100}]" });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    OK(c, "UPDATE checkouts SET capture_method = 'manual' WHERE merchant_id = $1", m);
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(nonce, sizeof(nonce), "%s:co_1", m);
    snprintf(ev, sizeof(ev), "evt_auth_%s", m);
    snprintf(pi, sizeof(pi), "pi_%s", m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'AUTHORIZED', 'payment_intent.amount_capturable_updated',"
                            " '', $2, 200, 'USD', $3, '', ARRAY[$4])",
                         ev, nonce, pi, tok), "applied");
}

/* A capture of ours of amount of order po, claimed (as pay_capture_claim
 * writes it) and confirmed by the PSP's event; its id into id. */
static void
capture_of(PGconn *c, const char *m, const char *po, const char *amount, char id[32])
{
    char  ev[80], pi[40], nonce[64];

    strcpy(id, "cp_");
    sqlt_random_hex(id + 3, 24);
    snprintf(nonce, sizeof(nonce), "%s:%s", m, id);
    snprintf(ev, sizeof(ev), "evt_%s_ok", id);
    snprintf(pi, sizeof(pi), "pi_%s", m);
    OK(c, "INSERT INTO captures (merchant_id, capture_id, kind, checkout_id,"
          " payment_order_id, psp, nonce, amount, currency, final, status)"
          " VALUES ($1, $2, 'capture', 'co_1', $3, 'stripe', $4, $5::bigint,"
          " 'USD', false, 'PENDING')", m, id, po, nonce, amount);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, $3::bigint,"
                            " 'USD', $4, '', '{}')", ev, nonce, amount, pi), "applied");
}

/* The PSP's reversal of capture id (CAPTURE_FAILED after it succeeded):
 * its outcome. */
static const char *
capture_reversed(PGconn *c, const char *m, const char *id)
{
    char  ev[80], pi[40], nonce[64];

    snprintf(nonce, sizeof(nonce), "%s:%s", m, id);
    snprintf(ev, sizeof(ev), "evt_%s_rev", id);
    snprintf(pi, sizeof(pi), "pi_%s", m);
    return VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                  " 'CAPTURE_FAILED', 'capture.failed', '', $2, (SELECT x.amount"
                  " FROM captures x WHERE x.merchant_id = $4 AND x.capture_id = $5),"
                  " 'USD', $3, '', '{}')",
               ev, nonce, pi, m, id);
}

/* pay_refund_claim of amount of order po under a new id (into id): its
 * outcome, and what it answers refundable (or "-"), as "outcome refundable". */
static const char *
refund_claim(PGconn *c, const char *m, const char *po, const char *amount, char id[32])
{
    strcpy(id, "rf_");
    sqlt_random_hex(id + 3, 24);
    return VAL(c, "SELECT outcome || ' ' || coalesce(refundable::text, '-')"
                  " FROM pay_refund_claim($1, $2, $3, 30, 86400, $2, $4, $5::bigint,"
                  " 'USD', NULL, '{}')", m, id, FP_A, po, amount);
}

/* The PSP's word on refund id (REFUND_SUCCEEDED, REFUND_FAILED): its
 * outcome; n tells deliveries apart. */
static const char *
refund_event(PGconn *c, const char *m, const char *id, const char *kind, int n)
{
    char  ev[80], nonce[64], obj[40];

    snprintf(nonce, sizeof(nonce), "%s:%s", m, id);
    snprintf(ev, sizeof(ev), "evt_%s_%s_%d", id, kind, n);
    snprintf(obj, sizeof(obj), "re_%s", id + 3);
    return VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1, $2, $2, NULL, $3,"
                  " (SELECT x.amount FROM refunds x WHERE x.merchant_id = $5"
                  " AND x.refund_id = $6), 'USD', NULL, $4, NULL)",
               ev, kind, nonce, obj, m, id);
}

/* The sums of m's ledger per account ("account sum, ..."), of order po
 * alone when po is not NULL. */
static const char *
ledger_sums(PGconn *c, const char *m, const char *po)
{
    return VAL(c, "SELECT string_agg(account || ' ' || s, ', ' ORDER BY account)"
                  " FROM (SELECT e.account, sum(e.amount) AS s FROM ledger_transactions t"
                  " JOIN ledger_entries e USING (merchant_id, txn_id)"
                  " WHERE t.merchant_id = $1 AND ($2::text IS NULL"
                  " OR t.payment_order_id = $2) GROUP BY 1) l", m, po);
}

/* Every ledger transaction of m balanced, every wallet its seller_payable
 * negated. */
static void
expect_balanced(PGconn *c, const char *m)
{
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM (SELECT txn_id FROM ledger_entries"
                            " WHERE merchant_id = $1 GROUP BY txn_id"
                            " HAVING sum(amount) <> 0) x", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM wallets w WHERE w.merchant_id = $1"
                            " AND w.balance <> -(SELECT coalesce(sum(e.amount), 0)"
                            " FROM ledger_entries e WHERE e.merchant_id = $1"
                            " AND e.account = 'seller_payable:' || w.seller_account)", m),
                     "0");
}

static const char *
available_of(PGconn *c, const char *m, const char *seller)
{
    return VAL(c, "SELECT wallet || ' ' || pending || ' ' || disputed || ' ' || available"
                  " FROM seller_available($1, $2, 'USD')", m, seller);
}

Test(sql, a_whole_capture_reversed_under_a_pending_refund_then_refunded_is_booked,
     .description = "orders of 1.00 and 1.00 at 10 %, both captured; a refund of the first's 1.00 PENDING, then the PSP reverses the first's capture (capture_reversed_refunded: 0 captured, commission 0.10 kept): seller_available still answers (no division by zero), holding back the seller's 0.90; the refund's REFUND_SUCCEEDED is booked, giving back the 0.10 and the seller's 0.90, the shortfall 1.00 the platform's")
{
    PGconn  *c = sqlt_connect();
    char     m[24], cp1[32], cp2[32], rf[32];

    new_merchant(c, m);
    held_two(c, m, "1000", "0");
    capture_of(c, m, "co_1_1", "100", cp1);
    capture_of(c, m, "co_1_2", "100", cp2);
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "100", rf), "new -");
    cr_assert_str_eq(capture_reversed(c, m, cp1), "capture_reversed_refunded");
    cr_expect_str_eq(VAL(c, "SELECT amount_captured || ' ' || commission FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m),
                     "0 10");

    /* the seller's 0.90 still held back for the refund, nothing to pay out */
    cr_expect_str_eq(available_of(c, m, "seller_42"), "90 0 0 0");

    cr_assert_str_eq(refund_event(c, m, rf, "REFUND_SUCCEEDED", 1), "applied");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || commission_part FROM refunds"
                            " WHERE merchant_id = $1 AND refund_id = $2", m, rf),
                     "SUCCEEDED 10");
    cr_expect_str_eq(ledger_sums(c, m, "co_1_1"),
                     "platform_commission 0, psp_clearing:stripe -100, "
                     "psp_shortfall:stripe 100, seller_payable:seller_42 0");
    cr_expect_str_eq(available_of(c, m, "seller_42"), "0 0 0 0");
    expect_balanced(c, m);
    PQfinish(c);
}

Test(sql, a_capture_reversed_under_a_refund_of_more_gives_back_the_commission_once,
     .description = "an order of 1.00 at 10 % captured as 0.50 + 0.50 (0.05 + 0.05), a refund of 1.00 PENDING, the second capture reversed (capture_reversed_refunded, 0.50 captured): the refund's REFUND_SUCCEEDED gives back the order's 0.10 of commission, not 0.20; the platform's commission on the order ends at 0, never below; the seller's 0.90 taken")
{
    PGconn  *c = sqlt_connect();
    char     m[24], cp1[32], cp2[32], cp3[32], rf[32];

    new_merchant(c, m);
    held_two(c, m, "1000", "0");
    capture_of(c, m, "co_1_1", "50", cp1);
    capture_of(c, m, "co_1_1", "50", cp2);
    capture_of(c, m, "co_1_2", "100", cp3);
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "100", rf), "new -");
    cr_assert_str_eq(capture_reversed(c, m, cp2), "capture_reversed_refunded");
    cr_expect_str_eq(VAL(c, "SELECT amount_captured || ' ' || commission FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m),
                     "50 10");
    cr_expect_str_eq(available_of(c, m, "seller_42"), "90 0 0 0");

    cr_assert_str_eq(refund_event(c, m, rf, "REFUND_SUCCEEDED", 1), "applied");
    cr_expect_str_eq(VAL(c, "SELECT commission_part FROM refunds"
                            " WHERE merchant_id = $1 AND refund_id = $2", m, rf), "10");
    cr_expect_str_eq(ledger_sums(c, m, "co_1_1"),
                     "platform_commission 0, psp_clearing:stripe -50, "
                     "psp_shortfall:stripe 50, seller_payable:seller_42 0");
    cr_expect_str_eq(available_of(c, m, "seller_42"), "0 0 0 0");
    expect_balanced(c, m);
    PQfinish(c);
}

#define CP_OVER  "cp_0000000000000000000000ff"
#define VD_A     "vd_00000000000000000000000a"

/* co_1 of m (10.00 of seller_42, 5.00 of seller_77) as a manual Adyen
 * checkout whose 15.00 authorization was told (its payment psp_<m>). */
static void
adyen_held(PGconn *c, const char *m)
{
    char  tok[64], nonce[48], ev[48], psp[48];

    claim(c, &(claim_req_t){ .merchant = m });
    OK(c, "UPDATE checkouts SET capture_method = 'manual', psp = 'adyen'"
          " WHERE merchant_id = $1", m);
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(nonce, sizeof(nonce), "%s:co_1", m);
    snprintf(ev, sizeof(ev), "evt_auth_%s", m);
    snprintf(psp, sizeof(psp), "psp_%s", m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'AUTHORIZED', 'AUTHORISATION', '', $2, 1500, 'USD', $3, '',"
                            " ARRAY[$4])", ev, nonce, psp, tok), "applied");
    cr_assert_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "AUTHORIZED");
}

/* pay_capture_claim of amount of order po under id: its outcome and amount */
static const char *
capture_claim(PGconn *c, const char *m, const char *id, const char *po, const char *amount)
{
    return VAL(c, "SELECT outcome || ' ' || coalesce(amount::text, '-')"
                  " FROM pay_capture_claim($1, $2, $3, 30, 86400, $2, $4, $5::bigint,"
                  " NULL, 'capture', '{}', false)", m, id, FP_A, po, amount);
}

Test(sql, a_capture_made_at_the_psp_leaves_their_room_to_our_captures_in_flight,
     .description = "capture_event_apply: of a 10.00 + 5.00 Adyen hold the shop captures all of the 5.00 order (PENDING, its event slow); 10.00 captured at the PSP's dashboard is split over what is left beside that capture: all of it to the 10.00 order (captured_outside), none to the 5.00 one; our capture's own event then books its 5.00 (applied): 15.00 at the clearing, each order captured whole, every transaction balanced (before: the 10.00 was split 6.67 + 3.33 and our capture's event raised PY007 at every delivery, 5.00 the PSP moved booked nowhere)")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    cap_names_t  nm;

    new_merchant(c, m);
    adyen_held(c, m);
    cap_names(&nm, m);

    cr_assert_str_eq(capture_claim(c, m, CP_B, "co_1_2", "500"), "new 500");

    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 1000, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, nm.psp, nm.cap[0]),
                     "captured_outside");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 1000 SUCCESS, co_1_2 0 AUTHORIZED");

    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 500, 'USD',"
                            " $3, $4, '{}')", nm.ev[1], nm.ours, nm.psp, nm.cap[1]),
                     "applied");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 1000 SUCCESS, co_1_2 500 SUCCESS");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount || ' '"
                            " || status, ', ' ORDER BY payment_order_id) FROM captures"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 1000 SUCCEEDED, co_1_2 500 SUCCEEDED");
    cr_expect_str_eq(ledger_sums(c, m, NULL),
                     "psp_clearing:adyen 1500, seller_payable:seller_42 -1000, "
                     "seller_payable:seller_77 -500");
    expect_balanced(c, m);
    PQfinish(c);
}

Test(sql, a_capture_made_at_the_psp_that_needs_the_room_of_our_capture_in_flight_waits_for_it,
     .description = "capture_event_apply: of a 10.00 + 5.00 Adyen hold the shop captures 5.00 of the 5.00 order (PENDING); the PSP's dashboard capture of all 15.00 fits only if ours never stands: it is not recorded (unknown_capture, kept pending in the inbox), nothing booked; our capture refused by the PSP, the same event again books all 15.00 (captured_outside, 10.00 + 5.00); had ours stood, the same event would be amount_mismatch (recorded, alerted), nothing booked beyond the PSP's authorization (before: the 15.00 was booked at once over our capture's room, and our capture's success would have raised PY007)")
{
    PGconn      *c = sqlt_connect();
    char         m[24], cap[48];
    cap_names_t  nm;

    new_merchant(c, m);
    adyen_held(c, m);
    cap_names(&nm, m);
    snprintf(cap, sizeof(cap), "cap_%s", m);

    cr_assert_str_eq(capture_claim(c, m, CP_B, "co_1_2", "500"), "new 500");

    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 1500, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, nm.psp, cap),
                     "unknown_capture");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM webhook_events WHERE psp = 'adyen'"
                            " AND event_id = $1", nm.ev[0]), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", m),
                     "0");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 0 AUTHORIZED, co_1_2 0 AUTHORIZED");

    /* ours refused: its room is the PSP's capture's */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_FAILED', 'CAPTURE', '', $2, 500, 'USD',"
                            " $3, '', '{}')", nm.ev[1], nm.ours, nm.psp),
                     "applied");
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 1500, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, nm.psp, cap),
                     "captured_outside");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured"
                            " || ' ' || status, ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 1000 SUCCESS, co_1_2 500 SUCCESS");
    cr_expect_str_eq(ledger_sums(c, m, NULL),
                     "psp_clearing:adyen 1500, seller_payable:seller_42 -1000, "
                     "seller_payable:seller_77 -500");
    expect_balanced(c, m);

    /* a second merchant's: ours stood, so the 15.00 never fits */
    new_merchant(c, m);
    adyen_held(c, m);
    cap_names(&nm, m);
    snprintf(cap, sizeof(cap), "cap_%s", m);
    cr_assert_str_eq(capture_claim(c, m, CP_B, "co_1_2", "500"), "new 500");
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 1500, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, nm.psp, cap),
                     "unknown_capture");
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 500, 'USD',"
                            " $3, 'cap_ours', '{}')", nm.ev[1], nm.ours, nm.psp),
                     "applied");
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $2, 1500, 'USD',"
                            " $3, $4, '{}')", nm.ev[0], nm.nonce, nm.psp, cap),
                     "amount_mismatch");
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM webhook_events WHERE psp = 'adyen'"
                            " AND event_id = $1", nm.ev[0]), "amount_mismatch");
    cr_expect_str_eq(ledger_sums(c, m, NULL),
                     "psp_clearing:adyen 500, seller_payable:seller_77 -500");
    expect_balanced(c, m);
    PQfinish(c);
}

Test(sql, a_capture_of_ours_beyond_what_its_order_has_left_is_recorded_not_raised,
     .description = "capture_event_apply: the PSP confirms a capture of ours of 1.00 of an order of 1.00 captured already (a capture row no claim would have made: a bug's, or one booked before its room was kept): recorded amount_mismatch (alerted), nothing booked, the capture still PENDING for a person (before: PY007 raised, the event rolled back at every delivery)")
{
    PGconn  *c = sqlt_connect();
    char     m[24], id[32], nonce[64], ev[48], pi[40];

    new_merchant(c, m);
    held_two(c, m, "0", "0");
    capture_of(c, m, "co_1_2", "100", id);
    OK(c, "INSERT INTO captures (merchant_id, capture_id, kind, checkout_id,"
          " payment_order_id, psp, nonce, amount, currency, final, status)"
          " VALUES ($1, $2, 'capture', 'co_1', 'co_1_2', 'stripe', $1 || ':' || $2,"
          " 100, 'USD', false, 'PENDING')", m, CP_OVER);
    snprintf(nonce, sizeof(nonce), "%s:" CP_OVER, m);
    snprintf(ev, sizeof(ev), "evt_over_%s", m);
    snprintf(pi, sizeof(pi), "pi_%s", m);
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, 100, 'USD',"
                            " $3, '', '{}')", ev, nonce, pi),
                     "amount_mismatch");
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM webhook_events WHERE psp = 'stripe'"
                            " AND event_id = $1", ev), "amount_mismatch");
    cr_expect_str_eq(VAL(c, "SELECT status FROM captures WHERE merchant_id = $1"
                            " AND capture_id = $2", m, CP_OVER), "PENDING");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured,"
                            " ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 0, co_1_2 100");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_clearing:stripe'", m), "100");
    PQfinish(c);
}

/* co_1 of m at psp in cur, a manual checkout of the orders (pay_claim's
 * JSON: co_1_1, co_1_2...) totalling total, whose authorization was told
 * (its payment psp_<m>). */
static void
held_in(PGconn *c, const char *m, const char *psp, const char *cur, const char *orders,
    const char *total)
{
    char  tok[64], nonce[48], ev[48], pay[48];

    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_claim($1, 'k1', '" FP_A "', 30, 86400,"
                            " 'co_1', $2, $3, $4::bigint, 'https://shop.example/thanks',"
                            " 'https://shop.example/cart', 'ann@example.com', " EXPIRES_EPOCH ","
                            " 'psp-request-co_1', $5::jsonb, '" DUP_BODY "', '{}'::jsonb,"
                            " 'manual')", m, psp, cur, total, orders), "claimed");
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(nonce, sizeof(nonce), "%s:co_1", m);
    snprintf(ev, sizeof(ev), "evt_auth_%s", m);
    snprintf(pay, sizeof(pay), "psp_%s", m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply($1, $2, 'AUTHORIZED',"
                            " 'AUTHORISATION', '', $3, $4::bigint, $5, $6, '', ARRAY[$7])",
                         psp, ev, nonce, total, cur, pay, tok), "applied");
    cr_assert_str_eq(VAL(c, "SELECT status::text FROM checkouts WHERE merchant_id = $1", m),
                     "AUTHORIZED");
}

/* pay_capture_claim of amount (NULL: the rest) of order po under id, with
 * the PSP's unit: its outcome, amount and refundable */
static const char *
capture_claim_unit(PGconn *c, const char *m, const char *id, const char *po,
    const char *amount, const char *unit)
{
    return VAL(c, "SELECT outcome || ' ' || coalesce(amount::text, '-') || ' '"
                  " || coalesce(refundable::text, '-')"
                  " FROM pay_capture_claim($1, $2, $3, 30, 86400, $2, $4, $5::bigint,"
                  " NULL, 'capture', '{}', false, NULL, $6::bigint)", m, id, FP_A, po, amount, unit);
}

#define IDR_ORDERS(a, b)                                                         \
    "[{\"payment_order_id\":\"co_1_1\",\"seller_account\":\"seller_42\","        \
    "\"amount_minor\":" a "},{\"payment_order_id\":\"co_1_2\",\"seller_account\":" \
    "\"seller_77\",\"amount_minor\":" b "}]"

Test(sql, a_capture_without_an_amount_takes_what_the_psp_can_be_sent,
     .description = "pay_capture_claim with the PSP's unit (100: Adyen counts whole rupiah): of an IDR order with 10.50 left, a capture without an amount claims 10.00 (the rest rounded down to the unit); with 0.50 left it is refused not_expressible (refundable 50), nothing stored, its key free; an amount that is not a multiple of the unit is refused the same; the previous release's signature (no unit) claims the whole rest; a unit below 1 raises (before: the 0.50 rest was claimed, a PENDING capture the PSP could never be sent, and every later void of the checkout was capture_in_progress)")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    held_in(c, m, "adyen", "IDR", IDR_ORDERS("1050", "10000"), "11050");

    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000001a", "co_1_1",
                                        NULL, "100"), "new 1000 -");
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000001b", "co_1_1",
                                        NULL, "100"), "not_expressible - 50");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1"
                            " AND idem_key = 'cp_00000000000000000000001b'", m), "0");
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000001c", "co_1_2",
                                        "150", "100"), "not_expressible - 10000");
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000001d", "co_1_2",
                                        "20000", "100"), "exceeds_authorization - 10000");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount || ' '"
                            " || status, ', ' ORDER BY payment_order_id) FROM captures"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 1000 PENDING");

    /* the previous release's workers: any amount, as before */
    cr_expect_str_eq(capture_claim(c, m, "cp_00000000000000000000001e", "co_1_2", NULL),
                     "new 10000");
    /* a unit of 1: any amount */
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000001f", "co_1_1",
                                        NULL, "1"), "new 50 -");

    FAILS(c, "22023", "SELECT outcome FROM pay_capture_claim($1, 'cpk', '" FP_A "', 30,"
                      " 86400, 'cp_00000000000000000000002a', 'co_1_1', NULL, NULL,"
                      " 'capture', '{}', false, NULL, 0)", m);
    PQfinish(c);
}

/* pay_capture_claim of the void of po's checkout under id, with the PSP's
 * unit: its outcome and amount */
static const char *
void_claim_unit(PGconn *c, const char *m, const char *id, const char *po, const char *unit)
{
    return VAL(c, "SELECT outcome || ' ' || coalesce(amount::text, '-')"
                  " FROM pay_capture_claim($1, $2, $3, 30, 86400, $2, $4, NULL,"
                  " NULL, 'void', '{}', true, NULL, $5::bigint)", m, id, FP_A, po, unit);
}

/* id's capture as the previous release left it when its request could not
 * be built: the key's lease over, psp_contact as a row from before its
 * column ('maybe', the column's default) */
static void
capture_left_unsent(PGconn *c, const char *m, const char *id)
{
    OK(c, "UPDATE captures SET psp_contact = 'maybe' WHERE merchant_id = $1"
          " AND capture_id = $2", m, id);
    OK(c, "UPDATE idempotency_keys SET lease_until = now() - interval '1 second'"
          " WHERE merchant_id = $1 AND idem_key = $2", m, id);
}

Test(sql, a_pending_capture_the_psp_cannot_be_sent_is_given_up,
     .description = "pay_capture_claim with the PSP's unit (100: whole rupiah) gives up a PENDING capture of an amount that is not a multiple of it (stored by the previous release, which claimed all that was left, 10.50 IDR: its request can never be built, so nothing was ever sent, whatever its psp_contact): resumed under its key it is settled FAILED ('never sent', psp_contact none, audited capture:abandoned, capture.failed queued), its amount capturable again; with a unit of 1 (a PSP that counts sen) it is resumed as before; one nobody resumes is given up by the checkout's void, in the void's transaction, and its key then answered from its row; a new capture of the checkout gives it up first and claims its amount (rounded down) again; a PENDING capture of an amount the PSP can be sent still makes the void capture_in_progress (before: resumed at every retry, and every void capture_in_progress)")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);
    OK(c, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
          " secret_sealed) VALUES ($1, 'ep_0000000000000000000000aa', 'https://shop.example/hooks',"
          " 'shop.example', '{}', 'v1.k.sealed')", m);
    held_in(c, m, "adyen", "IDR", IDR_ORDERS("1050", "9950"), "11000");

    /* the previous release's claims (no unit): all that was left */
    cr_assert_str_eq(capture_claim(c, m, "cp_00000000000000000000004a", "co_1_1", NULL),
                     "new 1050");
    cr_assert_str_eq(capture_claim(c, m, "cp_00000000000000000000004b", "co_1_2", NULL),
                     "new 9950");
    capture_left_unsent(c, m, "cp_00000000000000000000004a");
    capture_left_unsent(c, m, "cp_00000000000000000000004b");

    /* a PSP that counts sen could be sent it: resumed, as before */
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000004b", "co_1_2",
                                        NULL, "1"), "resumed 9950 -");
    capture_left_unsent(c, m, "cp_00000000000000000000004b");

    /* its retry: given up, settled FAILED; the other one is not its */
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000004a", "co_1_1",
                                        NULL, "100"), "settled 1050 -");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || psp_contact || ' '"
                            " || (failure LIKE 'never sent: 10.50 IDR %')::text FROM captures"
                            " WHERE merchant_id = $1 AND capture_id = 'cp_00000000000000000000004a'", m),
                     "FAILED none true");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'capture:abandoned'"
                            " AND detail->>'capture_id' = 'cp_00000000000000000000004a'"
                            " AND detail->>'reason' = 'not_expressible'", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM notifications WHERE merchant_id = $1"
                            " AND event_type = 'capture.failed'"
                            " AND object_id = 'cp_00000000000000000000004a'", m), "1");
    cr_expect_str_eq(VAL(c, "SELECT status FROM captures WHERE merchant_id = $1"
                            " AND capture_id = 'cp_00000000000000000000004b'", m), "PENDING");

    /* the void gives up the one nobody resumes; its capture's key is then
     * answered from the row */
    cr_expect_str_eq(void_claim_unit(c, m, "vd_00000000000000000000004d", "co_1_1", "100"),
                     "new 11000");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(capture_id || ' ' || status, ', '"
                            " ORDER BY capture_id) FROM captures WHERE merchant_id = $1", m),
                     "cp_00000000000000000000004a FAILED, cp_00000000000000000000004b FAILED, "
                     "vd_00000000000000000000004d PENDING");
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000004b", "co_1_2",
                                        NULL, "100"), "settled 9950 -");

    /* a new capture of the checkout gives it up first: its amount is
     * capturable again in the same transaction */
    new_merchant(c, m);
    held_in(c, m, "adyen", "IDR", IDR_ORDERS("1050", "9950"), "11000");
    cr_assert_str_eq(capture_claim(c, m, "cp_00000000000000000000004e", "co_1_1", NULL),
                     "new 1050");
    capture_left_unsent(c, m, "cp_00000000000000000000004e");
    cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000004f", "co_1_1",
                                        NULL, "100"), "new 1000 -");

    /* one the PSP can be sent may have been: the void waits for it */
    cr_assert_str_eq(capture_claim(c, m, "cp_00000000000000000000005a", "co_1_2", "9900"),
                     "new 9900");
    capture_left_unsent(c, m, "cp_00000000000000000000005a");
    cr_expect_str_eq(void_claim_unit(c, m, "vd_00000000000000000000005b", "co_1_2", "100"),
                     "capture_in_progress -");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(capture_id || ' ' || status, ', '"
                            " ORDER BY capture_id) FROM captures WHERE merchant_id = $1", m),
                     "cp_00000000000000000000004e FAILED, cp_00000000000000000000004f PENDING, "
                     "cp_00000000000000000000005a PENDING");
    PQfinish(c);
}

/* The sweeper's lease for owner 'sqltest' (a gateway's sweeper may hold it
 * for a moment): pay_holds_sweep acts only for the lease's owner. */
static void
sweeper_lease_take(PGconn *c)
{
    int  i;

    for (i = 0; i < 50 && strcmp(VAL0(c, "SELECT pay_sweeper_lease('sqltest', 5)::text"),
                                 "true") != 0; i++) {
        usleep(100000);
    }
    cr_assert_lt(i, 50, "the sweeper's lease is another's");
}

static void
sweeper_lease_give(PGconn *c)
{
    OK0(c, "UPDATE sweeper_lease SET until = now() WHERE id = 1 AND owner = 'sqltest'");
}

Test(sql, the_sweeper_gives_up_a_capture_the_psp_cannot_be_sent_and_releases_the_hold,
     .description = "pay_holds_sweep with the PSPs' units ({\"adyen\":{\"IDR\":100}}): an Adyen IDR hold past its end whose only capture in flight is one the previous release stored with an amount Adyen cannot be sent (10.50 IDR) gives it up (FAILED, audited capture:abandoned) and releases the hold (expired) in the same transaction; the previous release's signature, without units, postpones it as before")
{
    PGconn      *c = sqlt_connect();
    char         m[24];
    const char  *mine =
        "SELECT coalesce(string_agg(checkout_id || ' ' || action, ','), 'none')"
        " FROM pay_holds_sweep('sqltest', '{adyen}', '{604800}', 0, 1000)"
        " WHERE merchant_id = $1";
    const char  *units =
        "SELECT coalesce(string_agg(checkout_id || ' ' || action, ','), 'none')"
        " FROM pay_holds_sweep('sqltest', '{adyen}', '{604800}', 0, 1000,"
        " '{\"adyen\":{\"IDR\":100}}') WHERE merchant_id = $1";

    new_merchant(c, m);
    held_in(c, m, "adyen", "IDR", IDR_ORDERS("1050", "9950"), "11000");
    cr_assert_str_eq(capture_claim(c, m, "cp_00000000000000000000006a", "co_1_1", NULL),
                     "new 1050");
    capture_left_unsent(c, m, "cp_00000000000000000000006a");

    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, "UPDATE checkouts SET authorized_at = authorized_at - interval '8 days'"
          " WHERE merchant_id = $1", m);
    OK0(c, "COMMIT");

    sweeper_lease_take(c);

    cr_expect_str_eq(VAL(c, mine, m), "co_1 postponed");
    cr_expect_str_eq(VAL(c, "SELECT status FROM captures WHERE merchant_id = $1", m),
                     "PENDING");

    cr_expect_str_eq(VAL(c, units, m),
                     "co_1 expired");
    sweeper_lease_give(c);

    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || psp_contact FROM captures"
                            " WHERE merchant_id = $1", m), "FAILED none");
    cr_expect_str_eq(VAL(c, "SELECT (hold_closed_at IS NOT NULL)::text FROM checkouts"
                            " WHERE merchant_id = $1", m), "true");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'capture:abandoned'"
                            " AND detail->>'reason' = 'not_expressible'", m), "1");
    PQfinish(c);
}

Test(sql, the_holds_sweep_takes_what_it_must_do_before_what_it_only_waits_for,
     .description = "pay_holds_sweep with a limit of 1: of an Adyen hold already warned and not yet at its end (the oldest), a generic hold past its end with a capture in flight (postponed) and a newer generic hold past its end, the first round releases the last one (expired) and the second names the postponed one; the warned hold is in no round's rows, only in the count (before: the warned hold took the round's one place, and rounds did nothing while it waited: held with 100 such holds, no hold expired or was warned)")
{
    PGconn      *c = sqlt_connect();
    char         warned[24], pending[24], due[24], want[64];
    /* windows of 57 and 38 years: no other test's hold is near their end */
    const char  *round =
        "SELECT coalesce(string_agg(merchant_id || ' ' || action, ','), 'none')"
        " FROM pay_holds_sweep('sqltest', '{adyen,generic}',"
        " '{1800000000,1200000000}', 7200, 1, NULL)"
        " WHERE merchant_id IN ($1, $2, $3)";
    const char  *age =
        "UPDATE checkouts SET authorized_at = now() - make_interval(secs => $2::bigint),"
        " hold_warned_at = CASE WHEN $3 THEN now() END WHERE merchant_id = $1";

    new_merchant(c, warned);
    held_in(c, warned, "adyen", "EUR", IDR_ORDERS("1000", "2000"), "3000");
    new_merchant(c, pending);
    held_in(c, pending, "generic", "EUR", IDR_ORDERS("1000", "2000"), "3000");
    cr_assert_str_eq(capture_claim(c, pending, "cp_00000000000000000000007a", "co_1_1", NULL),
                     "new 1000");
    new_merchant(c, due);
    held_in(c, due, "generic", "EUR", IDR_ORDERS("1000", "2000"), "3000");

    sweeper_lease_take(c);

    /* aged in one transaction with the rounds: no other sweep sees them */
    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, age, warned, "1799996400", "true");
    OK(c, age, pending, "1200007200", "false");
    OK(c, age, due, "1200003600", "false");
    OK0(c, "SET LOCAL session_replication_role = origin");

    snprintf(want, sizeof(want), "%s expired", due);
    cr_expect_str_eq(VAL(c, round, warned, pending, due), want);
    snprintf(want, sizeof(want), "%s postponed", pending);
    cr_expect_str_eq(VAL(c, round, warned, pending, due), want);
    snprintf(want, sizeof(want), "%s true,%s false", due, warned);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(merchant_id || ' '"
                            " || (hold_closed_at IS NOT NULL)::text, ',' ORDER BY"
                            " merchant_id = $1 DESC) FROM checkouts"
                            " WHERE merchant_id IN ($1, $2)", due, warned), want);
    OK0(c, "ROLLBACK");
    sweeper_lease_give(c);
    PQfinish(c);
}

Test(sql, a_hold_waiting_for_its_psp_is_named_in_a_round_full_of_others,
     .description = "pay_holds_sweep with a limit of 2: of a generic hold past its end with a capture in flight (postponed, the most overdue) and two newer generic holds past their end, the first round names the postponed one and releases the older of the two, the second names it again and releases the other; a tenth of the places (one at least) is kept for the holds waiting for their PSP (before: the two releases took the first round, and with more holds than places passing their end in every round the one waiting was never named, nor alerted at an hour)")
{
    PGconn      *c = sqlt_connect();
    char         pending[24], due1[24], due2[24], want[96];
    /* a window of 38 years: no other test's hold is near its end */
    const char  *round =
        "SELECT coalesce(string_agg(merchant_id || ' ' || action, ','), 'none')"
        " FROM pay_holds_sweep('sqltest', '{generic}', '{1200000000}', 7200, 2, NULL)"
        " WHERE merchant_id IN ($1, $2, $3)";
    const char  *age =
        "UPDATE checkouts SET authorized_at = now() - make_interval(secs => $2::bigint)"
        " WHERE merchant_id = $1";

    new_merchant(c, pending);
    held_in(c, pending, "generic", "EUR", IDR_ORDERS("1000", "2000"), "3000");
    cr_assert_str_eq(capture_claim(c, pending, "cp_00000000000000000000007b", "co_1_1", NULL),
                     "new 1000");
    new_merchant(c, due1);
    held_in(c, due1, "generic", "EUR", IDR_ORDERS("1000", "2000"), "3000");
    new_merchant(c, due2);
    held_in(c, due2, "generic", "EUR", IDR_ORDERS("1000", "2000"), "3000");

    sweeper_lease_take(c);

    /* aged in one transaction with the rounds: no other sweep sees them */
    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, age, pending, "1200007200");
    OK(c, age, due1, "1200003600");
    OK(c, age, due2, "1200001800");
    OK0(c, "SET LOCAL session_replication_role = origin");

    snprintf(want, sizeof(want), "%s postponed,%s expired", pending, due1);
    cr_expect_str_eq(VAL(c, round, pending, due1, due2), want);
    snprintf(want, sizeof(want), "%s postponed,%s expired", pending, due2);
    cr_expect_str_eq(VAL(c, round, pending, due1, due2), want);
    snprintf(want, sizeof(want), "%s postponed", pending);
    cr_expect_str_eq(VAL(c, round, pending, due1, due2), want);
    OK0(c, "ROLLBACK");
    sweeper_lease_give(c);
    PQfinish(c);
}

Test(sql, a_capture_made_at_the_psp_is_split_in_the_psps_unit,
     .description = "capture_event_apply: 10000 IDR captured at the PSP's dashboard (1000000 ISO minor units) over a manual checkout of three orders of 10000.00 IDR is split in whole rupiah, 3334 + 3333 + 3333 IDR (captured_outside), so that each order's rest is whole rupiah and is captured whole at a PSP that counts them (6667.00 IDR); 10000.70 IDR over a like checkout, from a PSP that counts sen, is split in tens of sen, 3333.60 + 3333.60 + 3333.50; every transaction balanced (before: 3333.34 + 3333.33 + 3333.33, rests Adyen cannot be sent)")
{
    PGconn      *c = sqlt_connect();
    char         m[24], nonce[48], ev[48], pay[48], cap[48];
    const char  *orders =
        "[{\"payment_order_id\":\"co_1_1\",\"seller_account\":\"seller_42\",\"amount_minor\":1000000},"
        "{\"payment_order_id\":\"co_1_2\",\"seller_account\":\"seller_77\",\"amount_minor\":1000000},"
        "{\"payment_order_id\":\"co_1_3\",\"seller_account\":\"seller_77\",\"amount_minor\":1000000}]";
    const char  *parts =
        "SELECT string_agg(payment_order_id || ' ' || amount_captured, ', ' ORDER BY line_no)"
        " FROM payment_orders WHERE merchant_id = $1";

    for (int i = 0; i < 2; i++) {
        const char  *psp = i == 0 ? "adyen" : "generic";

        new_merchant(c, m);
        held_in(c, m, psp, "IDR", orders, "3000000");
        snprintf(nonce, sizeof(nonce), "%s:co_1", m);
        snprintf(ev, sizeof(ev), "evt_cap_%s", m);
        snprintf(pay, sizeof(pay), "psp_%s", m);
        snprintf(cap, sizeof(cap), "cap_%s", m);
        cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply($1, $2,"
                                " 'CAPTURE_SUCCEEDED', 'CAPTURE', '', $3, $4::bigint, 'IDR',"
                                " $5, $6, '{}')", psp, ev, nonce,
                             i == 0 ? "1000000" : "1000070", pay, cap),
                         "captured_outside");
        cr_expect_str_eq(VAL(c, parts, m),
                         i == 0 ? "co_1_1 333400, co_1_2 333300, co_1_3 333300"
                                : "co_1_1 333360, co_1_2 333360, co_1_3 333350");
        expect_balanced(c, m);

        if (i == 0) {
            /* the rest of an order, whole, at a PSP that counts whole
             * rupiah */
            cr_expect_str_eq(capture_claim_unit(c, m, "cp_00000000000000000000003a",
                                                "co_1_3", NULL, "100"),
                             "new 666700 -");
        }
    }

    PQfinish(c);
}

Test(sql, a_capture_made_at_the_psp_over_rests_that_are_not_whole_units_is_split_in_iso_units,
     .description = "capture_event_apply: a capture of 20.10 IDR at the PSP over two orders of 10.05 IDR each (a PSP that counts sen; whole units of ten sen would hold only 20.00 of it) is split in ISO's units, 10.05 + 10.05, all of it booked, every transaction balanced")
{
    PGconn  *c = sqlt_connect();
    char     m[24], nonce[48], ev[48], pay[48];

    new_merchant(c, m);
    held_in(c, m, "generic", "IDR", IDR_ORDERS("1005", "1005"), "2010");
    snprintf(nonce, sizeof(nonce), "%s:co_1", m);
    snprintf(ev, sizeof(ev), "evt_cap_%s", m);
    snprintf(pay, sizeof(pay), "psp_%s", m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('generic', $1,"
                            " 'CAPTURE_SUCCEEDED', 'capture.succeeded', '', $2, 2010, 'IDR',"
                            " $3, 'cap_1', '{}')", ev, nonce, pay),
                     "captured_outside");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(payment_order_id || ' ' || amount_captured,"
                            " ', ' ORDER BY line_no) FROM payment_orders"
                            " WHERE merchant_id = $1", m),
                     "co_1_1 1005, co_1_2 1005");
    cr_expect_str_eq(ledger_sums(c, m, NULL),
                     "psp_clearing:generic 2010, seller_payable:seller_42 -1005, "
                     "seller_payable:seller_77 -1005");
    expect_balanced(c, m);
    PQfinish(c);
}

Test(sql, the_coarsest_psp_unit_of_a_capture_split_is_the_dialects,
     .description = "psp_unit_coarsest, the unit a capture made at the PSP is split in at most, is for every ISO 4217 currency the largest unit any dialect counts it in (pay_psp_unit of stripe, adyen and generic)")
{
    PGconn          *c = sqlt_connect();
    int              n;
    char             code[4], want[24];
    int64_t          u, max;
    pay_dialect_e    ds[] = { PAY_DIALECT_STRIPE, PAY_DIALECT_ADYEN,
                              PAY_DIALECT_GENERIC };

    n = 0;
    code[3] = '\0';

    for (code[0] = 'A'; code[0] <= 'Z'; code[0]++) {
        for (code[1] = 'A'; code[1] <= 'Z'; code[1]++) {
            for (code[2] = 'A'; code[2] <= 'Z'; code[2]++) {
                if (pay_currency_find(code, 3) == NULL) {
                    continue;
                }

                max = 1;

                for (size_t d = 0; d < 3; d++) {
                    u = pay_psp_unit(ds[d], code);
                    cr_assert_gt(u, 0, "%s", code);
                    max = u > max ? u : max;
                }

                snprintf(want, sizeof(want), "%lld", (long long) max);
                cr_expect_str_eq(VAL(c, "SELECT psp_unit_coarsest($1)", code), want,
                                 "%s", code);
                n++;
            }
        }
    }

    cr_expect_gt(n, 150);
    PQfinish(c);
}

Test(sql, a_voided_hold_is_not_held_again_by_the_psps_word_of_its_authorization,
     .description = "a manual Adyen checkout held (15.00) and voided by the shop (CANCELLATION: FAILED voided, its hold closed, listed for the sweeper's look-ups as a FAILED session is); the sweeper's look-up then says completed (Adyen's session result stays so after a cancel) and a generic-style authorization of the same payment comes late under a new event id: each is 'already', recorded, nothing moves (FAILED voided, the orders FAILED, no order event from FAILED: no checkout.authorized sent); a success naming another payment is mismatch (alerted), nothing moves (before: FAILED -> AUTHORIZED as paid_after_failed, for money the PSP released)")
{
    PGconn      *c = sqlt_connect();
    char         m[24], vd[64], lookup[96];
    cap_names_t  nm;
    const char  *state =
        "SELECT status || ' ' || coalesce(failure_code::text, '-') || ' '"
        " || (hold_closed_at IS NOT NULL) || ' ' || (SELECT string_agg(status::text, ','"
        " ORDER BY line_no) FROM payment_orders o WHERE o.merchant_id = $1)"
        " FROM checkouts WHERE merchant_id = $1";

    new_merchant(c, m);
    adyen_held(c, m);
    cap_names(&nm, m);
    snprintf(vd, sizeof(vd), "%s:" VD_A, m);
    snprintf(lookup, sizeof(lookup), "lookup:%s:completed", nm.tok);

    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_capture_claim($1, 'vk', $2, 30, 86400,"
                            " $3, 'co_1_1', NULL, NULL, 'void', '{}', false)", m, FP_A, VD_A),
                     "new");
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'VOID_SUCCEEDED', 'CANCELLATION', '', $2, 1500, 'USD',"
                            " $3, $3, '{}')", nm.ev[0], vd, nm.psp), "applied");
    cr_assert_str_eq(VAL(c, state, m), "FAILED voided true FAILED,FAILED");
    /* its session was paid once and is spent: not a FAILED session the
     * sweeper asks about (it would only say completed again) */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM failed_open_sessions"
                            " WHERE merchant_id = $1", m), "0");

    /* the session's result, looked up all the same (a round that listed
     * it before): completed, no amount, no payment */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_sweeper_apply('adyen', $1,"
                            " 'SUCCEEDED', 'completed', $2, '', -1, '', '', ARRAY[$2])",
                         lookup, nm.tok), "already");
    cr_expect_str_eq(VAL(c, "SELECT outcome || ' ' || source FROM webhook_events"
                            " WHERE psp = 'adyen' AND event_id = $1", lookup),
                     "already sweeper");
    cr_expect_str_eq(VAL(c, state, m), "FAILED voided true FAILED,FAILED");

    /* the same payment's authorization, late under a new event id */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'AUTHORIZED', 'AUTHORISATION', '', $2 || ':co_1', 1500, 'USD',"
                            " $3, '', ARRAY[$4])", nm.ev[1], m, nm.psp, nm.tok), "already");
    cr_expect_str_eq(VAL(c, state, m), "FAILED voided true FAILED,FAILED");

    /* another payment under the checkout's reference: for a person */
    cr_expect_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('adyen', $1,"
                            " 'AUTHORIZED', 'AUTHORISATION', '', $2 || ':co_1', 1500, 'USD',"
                            " $3 || '_2', '', ARRAY[$4])", nm.ev[2], m, nm.psp, nm.tok),
                     "mismatch");
    cr_expect_str_eq(VAL(c, state, m), "FAILED voided true FAILED,FAILED");

    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM order_events WHERE merchant_id = $1"
                            " AND from_status = 'FAILED'", m), "0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", m),
                     "0");
    PQfinish(c);
}

Test(sql, the_share_functions_never_divide_by_zero_nor_give_back_more_than_the_commission,
     .description = "commission_refund_share, refund_seller_share and commission_refund_part with nothing captured answer (no division by zero); the commission given back never exceeds C and the seller's share is the rest, whatever was refunded before")
{
    PGconn  *c = sqlt_connect();

    /* nothing captured: a refund gives back what is left of C */
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_share(0, 10, 0, 0, 100)"), "10");
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_share(0, 10, 0, 4, 100)"), "6");
    cr_expect_str_eq(VAL0(c, "SELECT refund_seller_share(0, 10, 0, 0, 100)"), "90");
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_part(0, 10, 0, 100)"), "10");
    /* refunds beyond what is captured: C at most */
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_share(50, 10, 0, 0, 100)"), "10");
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_share(50, 10, 40, 8, 60)"), "2");
    cr_expect_str_eq(VAL0(c, "SELECT refund_seller_share(50, 10, 0, 0, 100)"), "90");
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_part(50, 10, 40, 60)"), "2");
    /* the rule itself, unchanged within the capture */
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_share(100, 10, 5, 1, 5)"), "0");
    cr_expect_str_eq(VAL0(c, "SELECT commission_refund_share(1000, 55, 1, 0, 333)"), "18");
    PQfinish(c);
}




Test(sql, the_hold_for_a_pending_refund_is_what_its_booking_takes_after_a_reversal,
     .description = "an order of 1.00 at 10 %: refunds of 0.05 (commission 0) and 0.05 (0.01), the first undone after it succeeded (REFUND_FAILED); a new refund of 0.05 will take all 0.05 from the seller: its claim is refused while only 0.04 is available, and once claimed seller_available holds back 0.05, as its REFUND_SUCCEEDED then takes")
{
    PGconn  *c = sqlt_connect();
    char     m[24], cp1[32], cp2[32], r1[32], r2[32], r3[32], r4[32], p1[32], p2[32];

    new_merchant(c, m);
    held_two(c, m, "1000", "0");
    capture_of(c, m, "co_1_1", "100", cp1);
    capture_of(c, m, "co_1_2", "100", cp2);
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "5", r1), "new -");
    cr_assert_str_eq(refund_event(c, m, r1, "REFUND_SUCCEEDED", 1), "applied");
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "5", r2), "new -");
    cr_assert_str_eq(refund_event(c, m, r2, "REFUND_SUCCEEDED", 1), "applied");
    cr_assert_str_eq(VAL(c, "SELECT string_agg(commission_part::text, ' ' ORDER BY created_at)"
                            " FROM refunds WHERE merchant_id = $1", m), "0 1");
    cr_assert_str_eq(refund_event(c, m, r1, "REFUND_FAILED", 2), "applied");
    cr_assert_str_eq(available_of(c, m, "seller_42"), "86 0 0 86");

    /* a pay-out leaves 0.04: the next 0.05 would take 0.05 of the seller's */
    OK(c, "INSERT INTO sellers (merchant_id, seller_account, psp, destination)"
          " VALUES ($1, 'seller_42', 'stripe', 'acct_42')", m);
    strcpy(p1, "pyo_");
    sqlt_random_hex(p1 + 4, 24);
    OK(c, "INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination,"
          " nonce, amount, currency, status) VALUES ($1, $2, 'seller_42', 'stripe',"
          " 'acct_42', $1 || ':' || $2, 82, 'USD', 'PENDING')", m, p1);
    cr_expect_str_eq(refund_claim(c, m, "co_1_1", "5", r3), "insufficient_balance 4");
    OK(c, "UPDATE payouts SET status = 'FAILED' WHERE merchant_id = $1 AND payout_id = $2",
       m, p1);

    /* 0.05 available: claimed, and all of it held back */
    strcpy(p2, "pyo_");
    sqlt_random_hex(p2 + 4, 24);
    OK(c, "INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination,"
          " nonce, amount, currency, status) VALUES ($1, $2, 'seller_42', 'stripe',"
          " 'acct_42', $1 || ':' || $2, 81, 'USD', 'PENDING')", m, p2);
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "5", r4), "new -");
    cr_expect_str_eq(available_of(c, m, "seller_42"), "86 81 0 0");
    cr_assert_str_eq(refund_event(c, m, r4, "REFUND_SUCCEEDED", 1), "applied");
    cr_expect_str_eq(VAL(c, "SELECT commission_part FROM refunds"
                            " WHERE merchant_id = $1 AND refund_id = $2", m, r4), "0");
    cr_expect_str_eq(available_of(c, m, "seller_42"), "81 81 0 0");
    expect_balanced(c, m);
    PQfinish(c);
}


/* a merchant m at 10 % commission whose checkout co_1 (one order co_1_1
 * of 10.00, seller_42) Stripe paid */
static void
paid_at_ten_percent(PGconn *c, char *m)
{
    char  tok[64], ev[64], pi[40];

    new_merchant(c, m);
    OK(c, "UPDATE merchants SET commission_bps = 1000 WHERE merchant_id = $1", m);
    claim(c, &(claim_req_t){ .merchant = m, .total = "1000", .orders =
        "[{\"payment_order_id\":\"co_1_1\",\"seller_account\":\"seller_42\",\"amount_minor\":1000}]" });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(ev, sizeof(ev), "evt_paid_%s", m);
    snprintf(pi, sizeof(pi), "pi_%s", m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'SUCCEEDED', 'checkout.session.completed', 'tok_sent',"
                            " '', 1000, 'USD', $2, '', ARRAY[$3])", ev, pi, tok), "applied");
}


/* pay_refund_claim of amount of co_1_1 under key (its id "rf_" + 24 hex
 * into id on a new claim) with a lease of 1 s: "<outcome> <lease or ->" */
static const char *
refund_claim_short(PGconn *c, const char *m, const char *key, const char *amount,
    char id[32])
{
    if (id[0] == '\0') {
        strcpy(id, "rf_");
        sqlt_random_hex(id + 3, 24);
    }
    return VAL(c, "SELECT outcome || ' ' || coalesce(lease::text, '-') FROM pay_refund_claim($1, $2, $3, 1,"
                  " 86400, $4, 'co_1_1', $5::bigint, 'USD', NULL, '{}')",
               m, key, FP_A, id, amount);
}

/* pay_op_abandon of key's operation id under lease: its answer's status,
 * or "-" when it gave nothing up */
static const char *
op_abandon(PGconn *c, const char *m, const char *key, const char *lease, const char *id)
{
    return VAL(c, "SELECT coalesce((SELECT response_status::text FROM pay_op_abandon($1, $2,"
                  " $3::bigint, $4, 'never sent', 201, '{\"status\":\"FAILED\"}')), '-')",
               m, key, lease, id);
}

static const char *
contact_of(PGconn *c, const char *m, const char *id)
{
    return VAL(c, "SELECT status || ' ' || psp_contact FROM refunds"
                  " WHERE merchant_id = $1 AND refund_id = $2", m, id);
}

Test(sql, an_operation_is_given_up_only_when_no_attempt_may_have_reached_its_psp,
     .description = "psp_contact: a claim is 'trying', a release that sent nothing makes it "
                    "'none' again, one that may have sent (or the previous release's "
                    "release, without p_sent) 'maybe'; a lease that ran out without a release "
                    "counts as 'maybe' at the next claim, whatever that attempt says; "
                    "pay_op_abandon gives up only a 'trying' operation under its holder's "
                    "lease (FAILED, the key done with the answer, audited, refundable "
                    "again), nothing else; the bookkeeping leaves updated_at alone")
{
    PGconn  *c = sqlt_connect();
    char     m[24], a[32] = "", b[32] = "", d[32] = "", e[32] = "", rf[32];

    paid_at_ten_percent(c, m);

    /* d: the previous release's workers' release says nothing: may have
     * sent */
    cr_assert_str_eq(refund_claim_short(c, m, "kd", "100", d), "new 1");
    cr_expect_str_eq(contact_of(c, m, d), "PENDING trying");
    OK(c, "SELECT pay_op_release($1, 'kd', 1)", m);
    cr_expect_str_eq(contact_of(c, m, d), "PENDING maybe");

    /* e: an attempt that may have sent; sent nothing after that, still
     * may have */
    cr_assert_str_eq(refund_claim_short(c, m, "ke", "100", e), "new 1");
    OK(c, "SELECT pay_op_release($1, 'ke', 1, false)", m);
    cr_expect_str_eq(contact_of(c, m, e), "PENDING none");
    cr_assert_str_eq(refund_claim_short(c, m, "ke", "100", e), "resumed 2");
    OK(c, "SELECT pay_op_release($1, 'ke', 2, true)", m);
    cr_expect_str_eq(contact_of(c, m, e), "PENDING maybe");
    cr_assert_str_eq(refund_claim_short(c, m, "ke", "100", e), "resumed 3");
    OK(c, "SELECT pay_op_release($1, 'ke', 3, false)", m);
    cr_expect_str_eq(contact_of(c, m, e), "PENDING maybe");

    /* the claims and releases leave updated_at alone */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM refunds WHERE merchant_id = $1"
                            " AND refund_id IN ($2, $3) AND updated_at = created_at", m, d, e),
                     "2");

    /* a: its holder died (no release): may have sent, whatever the next
     * attempt says */
    cr_assert_str_eq(refund_claim_short(c, m, "ka", "100", a), "new 1");
    usleep(1200 * 1000);
    cr_assert_str_eq(refund_claim_short(c, m, "ka", "100", a), "resumed 2");
    cr_expect_str_eq(contact_of(c, m, a), "PENDING maybe");
    cr_expect_str_eq(op_abandon(c, m, "ka", "2", a), "-");
    OK(c, "SELECT pay_op_release($1, 'ka', 2, false)", m);
    cr_expect_str_eq(contact_of(c, m, a), "PENDING maybe");
    cr_assert_str_eq(refund_claim_short(c, m, "ka", "100", a), "resumed 3");
    cr_expect_str_eq(op_abandon(c, m, "ka", "3", a), "-");
    cr_expect_str_eq(contact_of(c, m, a), "PENDING maybe");

    /* b: every attempt sent nothing: given up, by its holder only */
    cr_assert_str_eq(refund_claim_short(c, m, "kb", "100", b), "new 1");
    OK(c, "SELECT pay_op_release($1, 'kb', 1, false)", m);
    cr_expect_str_eq(contact_of(c, m, b), "PENDING none");
    cr_expect_str_eq(op_abandon(c, m, "kb", "1", b), "-", "a released lease gave it up");
    cr_assert_str_eq(refund_claim_short(c, m, "kb", "100", b), "resumed 2");
    cr_expect_str_eq(contact_of(c, m, b), "PENDING trying");
    cr_expect_str_eq(op_abandon(c, m, "kb", "1", b), "-", "another lease gave it up");
    cr_expect_str_eq(op_abandon(c, m, "kb", "2", a), "-", "another operation given up");
    cr_expect_str_eq(op_abandon(c, m, "kb", "2", b), "201");
    cr_expect_str_eq(contact_of(c, m, b), "FAILED none");
    cr_expect_str_eq(VAL(c, "SELECT failure FROM refunds WHERE merchant_id = $1"
                            " AND refund_id = $2", m, b), "never sent");
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || response_status || ' ' || response_body"
                            " FROM idempotency_keys WHERE merchant_id = $1 AND idem_key = 'kb'",
                         m), "done 201 {\"status\":\"FAILED\"}");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'refund:abandoned' AND detail->>'refund_id' = $2",
                         m, b), "1");
    cr_expect_str_eq(op_abandon(c, m, "kb", "2", b), "-", "given up twice");
    cr_assert_str_eq(refund_claim_short(c, m, "kb", "100", b), "replay -");

    /* its 1.00 refundable again: 10.00 less the 3.00 of a, d and e */
    cr_expect_str_eq(refund_claim(c, m, "co_1_1", "700", rf), "new -");
    expect_balanced(c, m);
    PQfinish(c);
}


/* pay_claim of checkout co under key with the default request: "<outcome>
 * <lease> <claim_age>" ("-" for NULL), the age bucketed ("young": under a
 * minute, "old": 25 hours or more) */
static const char *
claim_aged(PGconn *c, const char *m, const char *key, const char *co)
{
    static char  out[4][64];
    static int   n;
    char        *o = out[n++ % 4];
    long         age;
    PGresult    *r = claim_exec(c, &(claim_req_t){ .merchant = m, .key = key,
                                                   .checkout = co });

    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "pay_claim: %s",
                 PQresultErrorMessage(r));
    age = PQgetisnull(r, 0, 8) ? -1 : atol(PQgetvalue(r, 0, 8));
    snprintf(o, sizeof(out[0]), "%s %s %s", PQgetvalue(r, 0, 0),
             PQgetisnull(r, 0, 1) ? "-" : PQgetvalue(r, 0, 1),
             age < 0 ? "-" : age < 60 ? "young"
             : age >= 25 * 3600 ? "old" : "?");
    PQclear(r);
    return o;
}

static const char *
co_contact(PGconn *c, const char *m, const char *co)
{
    return VAL(c, "SELECT psp_contact FROM checkouts WHERE merchant_id = $1"
                  " AND checkout_id = $2", m, co);
}

Test(sql, a_registration_no_attempt_reached_is_sent_past_its_psps_key_window,
     .description = "checkouts.psp_contact: a registration's claim is 'trying', a release "
                    "that sent nothing makes it 'none' again, one that may have sent (or the "
                    "previous release's pay_release, without p_sent) 'maybe'; a lease that ran "
                    "out without a release counts as 'maybe' at the next claim, whatever that "
                    "attempt says.  A resume that finds 'none' has claim_age 0 however old the "
                    "checkout (the PSP never saw its key: it is sent), and the key window is "
                    "counted from that resume on; any other keeps the checkout's age; "
                    "updated_at is left alone")
{
    PGconn  *c = sqlt_connect();
    char     m[24];

    new_merchant(c, m);

    /* co_a: every attempt sent nothing, the claim 25 hours old */
    cr_assert_str_eq(claim_aged(c, m, "ka", "co_a"), "claimed 1 young");
    cr_expect_str_eq(co_contact(c, m, "co_a"), "trying");
    OK(c, "SELECT pay_release($1, 'ka', 1, false)", m);
    cr_expect_str_eq(co_contact(c, m, "co_a"), "none");
    OK(c, "UPDATE checkouts SET created_at = created_at - interval '25 hours'"
          " WHERE merchant_id = $1", m);
    cr_expect_str_eq(claim_aged(c, m, "ka", "co_a"), "resumed 2 young");
    cr_expect_str_eq(co_contact(c, m, "co_a"), "trying");
    /* another lease's release changes nothing */
    OK(c, "SELECT pay_release($1, 'ka', 1, true)", m);
    cr_expect_str_eq(co_contact(c, m, "co_a"), "trying");
    /* this one may have reached the PSP: from then on, counted from this
     * resume, not from the checkout's making */
    OK(c, "SELECT pay_release($1, 'ka', 2, true)", m);
    cr_expect_str_eq(co_contact(c, m, "co_a"), "maybe");
    cr_expect_str_eq(claim_aged(c, m, "ka", "co_a"), "resumed 3 young");
    OK(c, "SELECT pay_release($1, 'ka', 3, false)", m);
    cr_expect_str_eq(co_contact(c, m, "co_a"), "maybe");
    cr_expect_str_eq(claim_aged(c, m, "ka", "co_a"), "resumed 4 young");
    OK(c, "UPDATE checkouts SET psp_contact_since = psp_contact_since - interval '25 hours'"
          " WHERE merchant_id = $1", m);
    OK(c, "SELECT pay_release($1, 'ka', 4, false)", m);
    cr_expect_str_eq(claim_aged(c, m, "ka", "co_a"), "resumed 5 old");

    /* co_b: its holder died (no release): may have sent, whatever the
     * next attempt says, and as old as the checkout */
    cr_assert_str_eq(claim_aged(c, m, "kb", "co_b"), "claimed 1 young");
    OK(c, "UPDATE idempotency_keys SET lease_until = clock_timestamp() - interval '1 second'"
          " WHERE merchant_id = $1 AND idem_key = 'kb'", m);
    OK(c, "UPDATE checkouts SET created_at = created_at - interval '25 hours'"
          " WHERE merchant_id = $1 AND checkout_id = 'co_b'", m);
    cr_expect_str_eq(claim_aged(c, m, "kb", "co_b"), "resumed 2 old");
    cr_expect_str_eq(co_contact(c, m, "co_b"), "maybe");
    OK(c, "SELECT pay_release($1, 'kb', 2, false)", m);
    cr_expect_str_eq(co_contact(c, m, "co_b"), "maybe");
    cr_expect_str_eq(claim_aged(c, m, "kb", "co_b"), "resumed 3 old");

    /* co_c: the previous release's workers' release says nothing: may
     * have sent */
    cr_assert_str_eq(claim_aged(c, m, "kc", "co_c"), "claimed 1 young");
    OK(c, "SELECT pay_release($1, 'kc', 1)", m);
    cr_expect_str_eq(co_contact(c, m, "co_c"), "maybe");
    OK(c, "UPDATE checkouts SET created_at = created_at - interval '25 hours'"
          " WHERE merchant_id = $1 AND checkout_id = 'co_c'", m);
    cr_expect_str_eq(claim_aged(c, m, "kc", "co_c"), "resumed 2 old");

    /* the claims and releases leave updated_at alone */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM checkouts WHERE merchant_id = $1"
                            " AND updated_at = created_at + interval '25 hours'", m),
                     "3");
    PQfinish(c);
}


Test(sql, a_capture_no_attempt_sent_is_given_up_and_capturable_again,
     .description = "a manual capture of all of a 1.00 order, claimed and released twice "
                    "without a byte sent: pay_op_abandon makes it FAILED (audited "
                    "capture:abandoned) and the 1.00 can be captured again; a void given "
                    "up likewise leaves the hold to be voided again")
{
    PGconn  *c = sqlt_connect();
    char     m[24], cp[32], cp2[32] = "cp_", vd[32] = "vd_", vd2[32] = "vd_";
    const char  *claim_cp = "SELECT outcome || ' ' || coalesce(lease::text, '-')"
                            " FROM pay_capture_claim($1, $2, $3, 1, 86400, $4, 'co_1_1',"
                            " $5::bigint, NULL, $6, '{}', false)";

    new_merchant(c, m);
    held_two(c, m, "0", "0");
    strcpy(cp, "cp_");
    sqlt_random_hex(cp + 3, 24);
    sqlt_random_hex(cp2 + 3, 24);
    sqlt_random_hex(vd + 3, 24);
    sqlt_random_hex(vd2 + 3, 24);

    cr_assert_str_eq(VAL(c, claim_cp, m, "kc", FP_A, cp, "100", "capture"), "new 1");
    OK(c, "SELECT pay_op_release($1, 'kc', 1, false)", m);
    cr_expect_str_eq(capture_claim(c, m, cp2, "co_1_1", "100"), "exceeds_authorization -");
    cr_assert_str_eq(VAL(c, claim_cp, m, "kc", FP_A, cp, "100", "capture"), "resumed 2");
    cr_expect_str_eq(op_abandon(c, m, "kc", "2", cp), "201");
    cr_expect_str_eq(VAL(c, "SELECT status || ' ' || psp_contact || ' ' || failure FROM captures"
                            " WHERE merchant_id = $1 AND capture_id = $2", m, cp),
                     "FAILED none never sent");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'capture:abandoned'", m), "1");
    cr_expect_str_eq(capture_claim(c, m, cp2, "co_1_1", "100"), "new 100");

    /* a void of another hold: given up, the hold voidable again */
    new_merchant(c, m);
    held_two(c, m, "0", "0");
    cr_assert_str_eq(VAL(c, claim_cp, m, "kv", FP_B, vd, NULL, "void"), "new 1");
    OK(c, "SELECT pay_op_release($1, 'kv', 1, false)", m);
    cr_assert_str_eq(VAL(c, claim_cp, m, "kv", FP_B, vd, NULL, "void"), "resumed 2");
    cr_expect_str_eq(op_abandon(c, m, "kv", "2", vd), "201");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'void:abandoned'", m), "1");
    cr_expect_str_eq(VAL(c, claim_cp, m, "kw", FP_B, vd2, NULL, "void"), "new 1");
    PQfinish(c);
}


/* the platform's commission on m's books, net (what the ledger credited
 * it less what it gave back) */
static const char *
commission_kept(PGconn *c, const char *m)
{
    return VAL(c, "SELECT coalesce(-sum(amount), 0) FROM ledger_entries"
                  " WHERE merchant_id = $1 AND account = 'platform_commission'", m);
}

Test(sql, a_dispute_won_then_refunded_then_lost_again_charges_the_seller_once,
     .description = "an order of 10.00 at 10 % paid, charged back (DISPUTE_OPENED), won, then refunded whole (the claim accepted, REFUND_SUCCEEDED: the wallet 9.00 -> 0); lost after all (Adyen's SECOND_CHARGEBACK): the order holds nothing any more, so its seller bears nothing and the 10.00 is the platform's (psp_shortfall, audit dispute:shortfall), alerted dispute_excess")
{
    PGconn  *c = sqlt_connect();
    char     m[24], rf[32];

    paid_at_ten_percent(c, m);
    cr_assert_str_eq(dispute_wallets(c, m), "seller_42 900");

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_w", "1000"), "applied");
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_WON", "dp_w", "1000"), "applied");
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "1000", rf), "new -");
    cr_assert_str_eq(refund_event(c, m, rf, "REFUND_SUCCEEDED", 1), "applied");
    cr_expect_null(dispute_wallets(c, m));

    cr_expect_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_w", "1000"), "dispute_excess");
    cr_expect_null(dispute_wallets(c, m), "a seller charged twice: %s",
                   dispute_wallets(c, m));
    cr_expect_str_eq(ledger_sums(c, m, NULL),
                     "disputes:stripe 0, platform_commission 0, psp_clearing:stripe -1000, "
                     "psp_shortfall:stripe 1000, seller_payable:seller_42 0");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log WHERE merchant_id = $1"
                            " AND action = 'dispute:shortfall'"
                            " AND (detail->>'shortfall')::bigint = 1000", m), "1");
    expect_balanced(c, m);
    PQfinish(c);
}


Test(sql, a_dispute_lost_after_a_win_and_a_partial_refund_charges_the_seller_what_is_left,
     .description = "an order of 10.00 at 10 % charged back, won, refunded 4.00 (its seller 3.60, the commission 0.40), then lost again: the order bears the 6.00 it still held as a refund of it would, its seller 5.40 and the commission the 0.60 left of its 1.00 (the seller gave back exactly the 9.00 it was credited), and the 4.00 refunded is the platform's (psp_shortfall), dispute_excess")
{
    PGconn  *c = sqlt_connect();
    char     m[24], rf[32];

    paid_at_ten_percent(c, m);

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_w", "1000"), "applied");
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_WON", "dp_w", "1000"), "applied");
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "400", rf), "new -");
    cr_assert_str_eq(refund_event(c, m, rf, "REFUND_SUCCEEDED", 1), "applied");
    cr_expect_str_eq(dispute_wallets(c, m), "seller_42 540");

    cr_expect_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_w", "1000"), "dispute_excess");
    cr_expect_null(dispute_wallets(c, m), "the seller charged beyond its 9.00: %s",
                   dispute_wallets(c, m));
    cr_expect_str_eq(commission_kept(c, m), "0");
    cr_expect_str_eq(VAL(c, "SELECT borne || ' ' || commission_part FROM dispute_parts"
                            " WHERE merchant_id = $1", m), "600 60");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_shortfall:stripe'", m), "400");
    expect_balanced(c, m);
    PQfinish(c);
}


Test(sql, a_lost_chargeback_charges_the_seller_its_share_and_gives_the_commission_back,
     .description = "an order of 10.00 at 10 % (its seller credited 9.00, the platform 1.00) charged back whole and lost: the seller bears its 9.00, the commission gives its 1.00 back, as a refund of the whole would; charged back 3.33 and lost, then refunded the 6.67 left: the chargeback takes the commission's part as a refund does (0.33), the refund the rest of it (0.67, counted after the chargeback's), so the seller gives back exactly the 9.00 it was credited and the commission exactly its 1.00 (doc/MONEY.md, Disputes)")
{
    PGconn  *c = sqlt_connect();
    char     m[24], rf[32];

    paid_at_ten_percent(c, m);
    cr_assert_str_eq(dispute_wallets(c, m), "seller_42 900");
    cr_assert_str_eq(commission_kept(c, m), "100");

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_w", "1000"), "applied");
    cr_expect_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_w", "1000"), "applied");
    cr_expect_null(dispute_wallets(c, m), "the seller charged beyond its 9.00: %s",
                   dispute_wallets(c, m));
    cr_expect_str_eq(commission_kept(c, m), "0");
    expect_balanced(c, m);

    paid_at_ten_percent(c, m);
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_p", "333"), "applied");
    cr_expect_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_p", "333"), "applied");
    cr_expect_str_eq(dispute_wallets(c, m), "seller_42 600");
    cr_expect_str_eq(commission_kept(c, m), "67");
    cr_assert_str_eq(refund_claim(c, m, "co_1_1", "667", rf), "new -");
    cr_assert_str_eq(refund_event(c, m, rf, "REFUND_SUCCEEDED", 1), "applied");
    cr_expect_null(dispute_wallets(c, m), "the seller charged beyond its 9.00: %s",
                   dispute_wallets(c, m));
    cr_expect_str_eq(commission_kept(c, m), "0");
    expect_balanced(c, m);
    PQfinish(c);
}


Test(sql, an_open_chargeback_holds_back_what_its_loss_would_take_of_the_seller,
     .description = "an order of 10.00 at 10 % (its seller credited 9.00) charged back 5.00: while it is open the seller's available balance holds back what a loss takes of it, 4.50 (the commission gives back its 0.50), not the whole 5.00; so the refund of the 5.00 left (the seller's 4.50) is accepted, and whether the chargeback is lost before or after that refund succeeds, the seller gives back exactly its 9.00 and never goes below nothing (doc/MONEY.md, Disputes)")
{
    PGconn  *c = sqlt_connect();
    char     m[24], rf[32];
    int      lost_first;

    for (lost_first = 0; lost_first < 2; lost_first++) {
        paid_at_ten_percent(c, m);
        cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_h", "500"), "applied");
        cr_expect_str_eq(available_of(c, m, "seller_42"), "900 0 500 450",
                         "the open chargeback's hold");

        cr_assert_str_eq(refund_claim(c, m, "co_1_1", "500", rf), "new -",
                         "the refund of the 5.00 left, its seller's 4.50 held");
        cr_expect_str_eq(available_of(c, m, "seller_42"), "900 0 500 0");

        if (lost_first) {
            cr_assert_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_h", "500"),
                             "applied");
            cr_expect_str_eq(dispute_wallets(c, m), "seller_42 450");
            cr_expect_str_eq(available_of(c, m, "seller_42"), "450 0 0 0");
        }
        cr_assert_str_eq(refund_event(c, m, rf, "REFUND_SUCCEEDED", 1), "applied");
        if (!lost_first) {
            cr_expect_str_eq(dispute_wallets(c, m), "seller_42 450");
            cr_expect_str_eq(available_of(c, m, "seller_42"), "450 0 500 0");
            cr_assert_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_h", "500"),
                             "applied");
        }

        cr_expect_null(dispute_wallets(c, m), "the seller charged beyond its 9.00: %s",
                       dispute_wallets(c, m));
        cr_expect_str_eq(available_of(c, m, "seller_42"), "0 0 0 0");
        cr_expect_str_eq(commission_kept(c, m), "0");
        expect_balanced(c, m);
    }
    PQfinish(c);
}


Test(sql, a_reversed_capture_leaves_the_commission_the_rule_gives_what_stays_captured,
     .description = "fixed fee 0.30, no percentage: an order of 1.00 captured as 0.50 + 0.50 (parts 0.30 and 0), the first reversed: 0.50 stays captured with commission 0.30, the seller's 0.20; at 1 %, captures 0.50 + 0.50 (parts 0 and 0.01), the part-0 one reversed: commission 0 on the 0.50 left, the seller's 0.50")
{
    PGconn  *c = sqlt_connect();
    char     m[24], n[24], cp1[32], cp2[32];

    new_merchant(c, m);
    held_two(c, m, "0", "30");
    capture_of(c, m, "co_1_1", "50", cp1);
    capture_of(c, m, "co_1_1", "50", cp2);
    cr_assert_str_eq(VAL(c, "SELECT string_agg(commission_part::text, ' ' ORDER BY created_at)"
                            " FROM captures WHERE merchant_id = $1", m), "30 0");
    cr_assert_str_eq(capture_reversed(c, m, cp1), "capture_reversed");
    cr_expect_str_eq(VAL(c, "SELECT amount_captured || ' ' || commission FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m),
                     "50 30");
    cr_expect_str_eq(ledger_sums(c, m, "co_1_1"),
                     "platform_commission -30, psp_clearing:stripe 50, "
                     "seller_payable:seller_42 -20");
    cr_expect_str_eq(dispute_wallets(c, m), "seller_42 20");
    expect_balanced(c, m);

    new_merchant(c, n);
    held_two(c, n, "100", "0");
    capture_of(c, n, "co_1_1", "50", cp1);
    capture_of(c, n, "co_1_1", "50", cp2);
    cr_assert_str_eq(VAL(c, "SELECT string_agg(commission_part::text, ' ' ORDER BY created_at)"
                            " FROM captures WHERE merchant_id = $1", n), "0 1");
    cr_assert_str_eq(capture_reversed(c, n, cp1), "capture_reversed");
    cr_expect_str_eq(VAL(c, "SELECT amount_captured || ' ' || commission FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", n),
                     "50 0");
    cr_expect_str_eq(ledger_sums(c, n, "co_1_1"),
                     "platform_commission 0, psp_clearing:stripe 50, "
                     "seller_payable:seller_42 -50");
    cr_expect_str_eq(dispute_wallets(c, n), "seller_42 50");
    expect_balanced(c, n);
    PQfinish(c);
}


Test(sql, a_capture_reversed_beside_an_open_chargeback_leaves_the_commission_the_rule_gives,
     .description = "10 %: 0.40 of an order captured and charged back (open), 0.50 more captured, then reversed by the PSP: the commission back to the rule's on the 0.40 that stays captured (0.04), the seller giving back its share of the 0.50 (0.45), not the commission all of its 0.09 because the chargeback may charge the seller yet (money-check seed 140198: a won chargeback left the platform none of its commission); lost after, the seller bears the 0.40 less the commission's share, and holds nothing")
{
    PGconn  *c = sqlt_connect();
    char     m[24], cp1[32], cp2[32];

    new_merchant(c, m);
    held_two(c, m, "1000", "0");
    capture_of(c, m, "co_1_1", "40", cp1);
    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_a", "40"), "applied");
    cr_assert_str_eq(dispute_parts_of(c, m, "dp_a"), "seller_42 40");
    capture_of(c, m, "co_1_1", "50", cp2);
    cr_assert_str_eq(VAL(c, "SELECT amount_captured || ' ' || commission FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m),
                     "90 9");

    cr_assert_str_eq(capture_reversed(c, m, cp2), "capture_reversed");
    cr_expect_str_eq(VAL(c, "SELECT amount_captured || ' ' || commission FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m),
                     "40 4");
    cr_expect_str_eq(dispute_wallets(c, m), "seller_42 36");
    expect_balanced(c, m);

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_LOST", "dp_a", "40"), "applied");
    cr_expect_null(dispute_wallets(c, m), "%s", dispute_wallets(c, m));
    cr_expect_str_eq(VAL(c, "SELECT coalesce(sum(amount), 0) FROM ledger_entries"
                            " WHERE merchant_id = $1 AND account = 'platform_commission'", m),
                     "0");
    expect_balanced(c, m);
    PQfinish(c);
}


/* ---- the lock order of the money functions ------------------------------- */

/* Waits (10 s at most) until the backend pid waits for a lock. */
static void
wait_for_lock(PGconn *c, int pid)
{
    char  p[16];
    int   i;

    snprintf(p, sizeof(p), "%d", pid);
    for (i = 0; i < 1000; i++) {
        if (strcmp(VAL(c, "SELECT coalesce(wait_event_type, '') FROM"
                          " pg_stat_activity WHERE pid = $1::int", p), "Lock") == 0)
        {
            return;
        }
        usleep(10 * 1000);
    }
    cr_assert_fail("backend %d never waited for a lock", pid);
}

/* The answer of a statement sent with PQsendQueryParams: its one value, or
 * "error <SQLSTATE>". */
static const char *
sent_result(PGconn *c, char *out, size_t size)
{
    PGresult  *r;

    out[0] = '\0';
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
        } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(out, size, "error %s",
                     PQresultErrorField(r, PG_DIAG_SQLSTATE));
        }
        PQclear(r);
    }
    return out;
}

Test(sql, two_appends_to_one_audit_chain_at_once_link_one_after_the_other,
     .description = "a chain's head is its last row, and its appends are serialised by the chain's advisory lock (audit_log_link): a second append to a chain whose last row is not yet committed waits, then links to that row; an append to another chain of the merchant does not wait",
     .timeout = 60)
{
    PGconn      *c = sqlt_connect(), *a, *b;
    char         m[24], other[32], r_b[64];

    new_merchant(c, m);
    OK(c, "SELECT audit_append($1, 'co_a', 'registration:claimed', '{}')", m);
    snprintf(other, sizeof(other), "%s",
             VAL0(c, "SELECT 'co_' || g FROM generate_series(1, 1000) g"
                     " WHERE audit_chain_of('co_' || g) <> audit_chain_of('co_a') LIMIT 1"));
    a = sqlt_connect();
    b = sqlt_connect();

    OK0(a, "BEGIN");
    OK(a, "SELECT audit_append($1, 'co_a', 'test:first', '{}')", m);
    cr_assert_eq(PQsendQueryParams(b, "SELECT 'appended' FROM"
                                      " audit_append($1, 'co_a', 'test:second', '{}')",
                                   1, NULL, ARGV(m), NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(b));
    /* another chain of the merchant: no wait (c's statement returns) */
    OK(c, "SELECT audit_append($1, $2, 'test:elsewhere', '{}')", m, other);
    OK0(a, "COMMIT");
    cr_expect_str_eq(sent_result(b, r_b, sizeof(r_b)), "appended");

    cr_expect_str_eq(VAL(c, "SELECT string_agg(seq || ':' || action, ',' ORDER BY seq)"
                            " FROM audit_log WHERE merchant_id = $1"
                            " AND chain = audit_chain_of('co_a')", m),
                     "1:registration:claimed,2:test:first,3:test:second");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM audit_log l JOIN audit_log p"
                            " ON p.merchant_id = l.merchant_id AND p.chain = l.chain"
                            " AND p.seq = l.seq - 1 AND p.hash = l.prev_hash"
                            " WHERE l.merchant_id = $1 AND l.chain = audit_chain_of('co_a')", m),
                     "2");
    cr_expect_str_eq(VAL(c, "SELECT pay_audit_verify($1)", m), "t");
    PQfinish(a);
    PQfinish(b);
    PQfinish(c);
}

Test(sql, a_dispute_and_a_capture_of_one_checkout_at_once_never_deadlock,
     .description = "the money functions lock in one order (doc/MONEY.md, Lock order: the checkout, its orders in id order, then the rest): a capture's event held up at the checkout's second order while a dispute of the same checkout opens, then both let go, both apply (they deadlocked when the capture took the orders before the checkout and the dispute the checkout before the orders)",
     .timeout = 60)
{
    PGconn      *c = sqlt_connect(), *blocker, *cap, *dis;
    char         m[24], cp[40], ev_cap[64], ev_dis[64], nonce[64], dref[64];
    char         r_cap[64], r_dis[64];
    const char  *cap_sql, *dis_sql;

    new_merchant(c, m);
    /* a manual checkout: 4.00 of co_1_1 captured, co_1_2 released; a
     * second capture of 1.00 of co_1_1 at the PSP */
    partly_captured(c, m, "400", "0", "0");
    snprintf(cp, sizeof(cp), "cp_");
    sqlt_random_hex(cp + 3, 24);
    OK(c, "INSERT INTO captures (merchant_id, capture_id, kind, checkout_id,"
          " payment_order_id, psp, nonce, amount, currency, final, status)"
          " VALUES ($1, $2, 'capture', 'co_1', 'co_1_1', 'stripe', $1 || ':' || $2,"
          " 100, 'USD', false, 'PENDING')", m, cp);
    snprintf(ev_cap, sizeof(ev_cap), "evt_cap_%s", m);
    snprintf(ev_dis, sizeof(ev_dis), "evt_dis_%s", m);
    snprintf(nonce, sizeof(nonce), "%s:%s", m, cp);
    snprintf(dref, sizeof(dref), "dp_lock_%s", m);

    cap_sql = "SELECT outcome FROM pay_event_apply('stripe', $1, 'CAPTURE_SUCCEEDED',"
              " 'capture.succeeded', '', $2, 100, 'USD', '', '', '{}')";
    dis_sql = "SELECT outcome FROM pay_event_apply('stripe', $1, 'DISPUTE_OPENED',"
              " 'charge.dispute.created', '', $2, 400, 'USD', '', $3, '{}')";

    blocker = sqlt_connect();
    cap = sqlt_connect();
    dis = sqlt_connect();

    /* the checkout's second order held, as a refund of it would */
    OK0(blocker, "BEGIN");
    OK(blocker, "SELECT 1 FROM payment_orders WHERE merchant_id = $1"
                " AND payment_order_id = 'co_1_2' FOR UPDATE", m);

    /* the capture's event waits there, holding what it took before */
    cr_assert_eq(PQsendQueryParams(cap, cap_sql, 2, NULL,
                                   ARGV(ev_cap, nonce), NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(cap));

    /* the dispute's event of the same checkout, meanwhile */
    snprintf(nonce, sizeof(nonce), "%s:co_1", m);
    cr_assert_eq(PQsendQueryParams(dis, dis_sql, 3, NULL,
                                   ARGV(ev_dis, nonce, dref), NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(dis));

    OK0(blocker, "COMMIT");

    cr_expect_str_eq(sent_result(cap, r_cap, sizeof(r_cap)), "applied");
    cr_expect_str_eq(sent_result(dis, r_dis, sizeof(r_dis)), "applied");
    cr_expect_str_eq(VAL(c, "SELECT amount_captured FROM payment_orders"
                            " WHERE merchant_id = $1 AND payment_order_id = 'co_1_1'", m),
                     "500");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM disputes WHERE merchant_id = $1", m),
                     "1");

    PQfinish(blocker);
    PQfinish(cap);
    PQfinish(dis);
    PQfinish(c);
}


/*
 * Two checkouts of one merchant sharing two new sellers in opposite line
 * orders (co_1: seller_42 then seller_77; co_2: seller_77 then seller_42),
 * each captured whole at the PSP's dashboard at the same moment: each
 * event makes the sellers' first wallet rows.  A trigger of the test's
 * own holds each new wallet row of this merchant 0.4 s after its insert,
 * so the two events interleave.  Made in seller order (doc/MONEY.md, Lock
 * order), the second waits for the first; made in line order they
 * deadlocked (one event 40P01, the PSP's delivery refused).
 */
Test(sql, two_captures_making_the_same_sellers_wallets_never_deadlock,
     .timeout = 60)
{
    PGconn      *c = sqlt_connect(), *a, *b;
    char         m[24], tok[64], nonce[2][64], ev[4][64], trig[64];
    char         r_a[64], r_b[64], ddl[256];
    const char  *cap_sql;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    claim(c, &(claim_req_t){ .merchant = m, .key = "k2", .checkout = "co_2",
                             .orders = "[{\"payment_order_id\":\"co_2_1\","
                                       "\"seller_account\":\"seller_77\","
                                       "\"amount_minor\":1000},"
                                       "{\"payment_order_id\":\"co_2_2\","
                                       "\"seller_account\":\"seller_42\","
                                       "\"amount_minor\":500}]" });
    finish(c, m, "k2", "1", "co_2", "EXECUTING", "cs_2", NULL, "201", "{}");
    OK(c, "UPDATE checkouts SET capture_method = 'manual' WHERE merchant_id = $1", m);

    for (int i = 0; i < 2; i++) {
        snprintf(tok, sizeof(tok), "%s.cs_%d", m, i + 1);
        snprintf(nonce[i], sizeof(nonce[i]), "%s:co_%d", m, i + 1);
        snprintf(ev[i], sizeof(ev[i]), "evt_auth_%d_%s", i, m);
        snprintf(ev[i + 2], sizeof(ev[i + 2]), "evt_cap_%d_%s", i, m);
        cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                                " 'AUTHORIZED', 'payment_intent.amount_capturable_updated',"
                                " '', $2, 1500, 'USD', $3, '', ARRAY[$4])",
                             ev[i], nonce[i], i ? "pi_w2" : "pi_w1", tok), "applied");
    }
    cr_assert_str_eq(VAL(c, "SELECT count(*) FROM wallets_folded WHERE merchant_id = $1",
                         m), "0");

    /* every new wallet row of this merchant held 0.4 s after its insert */
    snprintf(trig, sizeof(trig), "sqlt_slow_wallets_%s", m);
    OK0(c, "CREATE OR REPLACE FUNCTION sqlt_slow_wallet() RETURNS trigger"
           " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$");
    snprintf(ddl, sizeof(ddl), "CREATE TRIGGER %s AFTER INSERT ON wallets_folded"
             " FOR EACH ROW WHEN (NEW.merchant_id = '%s')"
             " EXECUTE FUNCTION sqlt_slow_wallet()", trig, m);
    OK0(c, ddl);

    cap_sql = "SELECT outcome FROM pay_event_apply('stripe', $1, 'CAPTURE_SUCCEEDED',"
              " 'capture.succeeded', '', $2, 1500, 'USD', $3, $4, '{}')";
    a = sqlt_connect();
    b = sqlt_connect();
    cr_assert_eq(PQsendQueryParams(a, cap_sql, 4, NULL,
                                   ARGV(ev[2], nonce[0], "pi_w1", "cap_w1"),
                                   NULL, NULL, 0), 1);
    usleep(100 * 1000);
    cr_assert_eq(PQsendQueryParams(b, cap_sql, 4, NULL,
                                   ARGV(ev[3], nonce[1], "pi_w2", "cap_w2"),
                                   NULL, NULL, 0), 1);

    (void) sent_result(a, r_a, sizeof(r_a));
    (void) sent_result(b, r_b, sizeof(r_b));
    snprintf(ddl, sizeof(ddl), "DROP TRIGGER %s ON wallets_folded", trig);
    OK0(c, ddl);

    cr_expect_str_eq(r_a, "captured_outside");
    cr_expect_str_eq(r_b, "captured_outside");
    cr_expect_str_eq(VAL(c, "SELECT string_agg(seller_account || ' ' || balance, ', '"
                            " ORDER BY seller_account) FROM wallets WHERE merchant_id = $1",
                         m), "seller_42 1500, seller_77 1500");

    PQfinish(a);
    PQfinish(b);
    PQfinish(c);
}


/*
 * One capture made at the PSP's dashboard (4.01 of a 15.00 hold, the PSP's
 * capture id cap_same) delivered twice at once under two event ids: both
 * deliveries look for a capture of that id before the checkout's lock,
 * held meanwhile by a third connection, and find none.  The first to get
 * the lock books it (captured_outside); the second, looking again under
 * the lock, finds it booked: 'already', 4.01 captured once.
 */
Test(sql, one_capture_made_at_the_psp_delivered_twice_at_once_is_booked_once,
     .timeout = 60)
{
    PGconn      *c = sqlt_connect(), *blocker, *a, *b;
    char         m[24], r_a[64], r_b[64];
    cap_names_t  nm;
    const char  *cap_sql;

    new_merchant(c, m);
    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    OK(c, "UPDATE checkouts SET capture_method = 'manual' WHERE merchant_id = $1", m);
    cap_names(&nm, m);
    cr_assert_str_eq(VAL(c, "SELECT outcome FROM pay_event_apply('stripe', $1,"
                            " 'AUTHORIZED', 'payment_intent.amount_capturable_updated',"
                            " '', $2, 1500, 'USD', 'pi_held', '', ARRAY[$3])",
                         nm.ev[0], nm.nonce, nm.tok), "applied");

    cap_sql = "SELECT outcome FROM pay_event_apply('stripe', $1, 'CAPTURE_SUCCEEDED',"
              " 'capture.succeeded', '', $2, 401, 'USD', 'pi_held', 'cap_same', '{}')";
    blocker = sqlt_connect();
    a = sqlt_connect();
    b = sqlt_connect();

    /* the checkout held, as another money function of it would */
    OK0(blocker, "BEGIN");
    OK(blocker, "SELECT 1 FROM checkouts WHERE merchant_id = $1"
                " AND checkout_id = 'co_1' FOR UPDATE", m);

    cr_assert_eq(PQsendQueryParams(a, cap_sql, 2, NULL, ARGV(nm.ev[1], nm.nonce),
                                   NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(a));
    cr_assert_eq(PQsendQueryParams(b, cap_sql, 2, NULL, ARGV(nm.ev[2], nm.nonce),
                                   NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(b));

    OK0(blocker, "COMMIT");

    cr_expect_str_eq(sent_result(a, r_a, sizeof(r_a)), "captured_outside");
    cr_expect_str_eq(sent_result(b, r_b, sizeof(r_b)), "already");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount_captured) FROM payment_orders"
                            " WHERE merchant_id = $1", m), "401");
    cr_expect_str_eq(VAL(c, "SELECT count(*) || ' ' || sum(amount) FROM captures"
                            " WHERE merchant_id = $1", m), "2 401");
    cr_expect_str_eq(VAL(c, "SELECT sum(amount) FROM ledger_entries WHERE merchant_id = $1"
                            " AND account = 'psp_clearing:stripe'", m), "401");

    PQfinish(blocker);
    PQfinish(a);
    PQfinish(b);
    PQfinish(c);
}


/* The event inbox's retention: whole monthly partitions dropped past
 * p_keep_months whole months before the current one, the months inside it
 * kept; partitions made ahead from the current month.  A dropped month's
 * event ids (psp_event_ids) go with it: its event, delivered again, is
 * kept anew, in this month. */
Test(sql, the_inbox_drops_whole_months_past_its_retention)
{
    PGconn  *c = sqlt_connect();
    char     evt[40];

    strcpy(evt, "evt_old_");
    sqlt_random_hex(evt + 8, 16);

    OK0(c, "SELECT pay_inbox_partitions(2)");
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM generate_series(0, 2) i "
                             "WHERE to_regclass('psp_events_' || to_char("
                             "(now() AT TIME ZONE 'UTC') + make_interval("
                             "months => i), '\"y\"YYYY\"m\"MM')) IS NOT NULL"),
                     "3");

    /* 14 and 13 whole months before this one (UTC) */
    OK0(c, "DO $$ DECLARE m timestamptz; BEGIN FOR i IN 13 .. 14 LOOP "
           "m := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE "
           "'UTC' - make_interval(months => i); "
           "EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF "
           "psp_events FOR VALUES FROM (%L) TO (%L)', 'psp_events_' || "
           "to_char(m AT TIME ZONE 'UTC', '\"y\"YYYY\"m\"MM'), m, "
           "m + interval '1 month'); END LOOP; END $$");
    /* an event kept 14 months ago */
    OK(c, "INSERT INTO psp_events (psp, event_id, received_at, state, body, kind)"
          " VALUES ('stripe', $1, date_trunc('month', now() AT TIME ZONE 'UTC')"
          " AT TIME ZONE 'UTC' - interval '14 months' + interval '1 day', 'foreign',"
          " '\\x7b7d', 'REFUND_SUCCEEDED')", evt);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_event_ids WHERE event_id = $1", evt),
                     "1");

    cr_expect_str_eq(VAL0(c, "SELECT string_agg(x, ',') FROM "
                             "pay_inbox_drop_old(13) x"),
                     VAL0(c, "SELECT 'psp_events_' || to_char((now() AT TIME "
                             "ZONE 'UTC') - interval '14 months', "
                             "'\"y\"YYYY\"m\"MM')"));
    cr_expect_str_eq(VAL0(c, "SELECT (to_regclass('psp_events_' || to_char("
                             "(now() AT TIME ZONE 'UTC') - interval "
                             "'13 months', '\"y\"YYYY\"m\"MM')) IS NOT NULL)"
                             "::text"), "true");
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM pay_inbox_drop_old(13)"),
                     "0");
    /* and the 13th month goes with a shorter retention */
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM pay_inbox_drop_old(12)"),
                     "1");

    /* the dropped month's event: its id gone with it, kept anew */
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_event_ids WHERE event_id = $1", evt),
                     "0");
    cr_expect_str_eq(VAL(c, "SELECT state FROM pay_event_keep('stripe', $1,"
                            " 'REFUND_SUCCEEDED', 'charge.refunded', '', 'order-43', 100,"
                            " 'USD', '', '', '{}', '\\x7b7d'::bytea, '{}', 'k1')", evt),
                     "foreign");
    cr_expect_str_eq(VAL(c, "SELECT count(*) || ' ' || (min(received_at) >= date_trunc("
                            "'month', now()))::text FROM psp_events WHERE event_id = $1",
                         evt), "1 true");

    /* an id left behind by a month dropped by hand: given back, the event
     * kept anew */
    evt[4] = 'x';
    OK(c, "INSERT INTO psp_event_ids (psp, event_id, received_at)"
          " VALUES ('stripe', $1, now() - interval '20 months')", evt);
    cr_expect_str_eq(VAL(c, "SELECT (outcome <> 'duplicate')::text || ' ' || state"
                            " FROM pay_event_keep('stripe', $1,"
                            " 'REFUND_SUCCEEDED', 'charge.refunded', '', 'order-43', 100,"
                            " 'USD', '', '', '{}', '\\x7b7d'::bytea, '{}', 'k1')", evt),
                     "true foreign");
    cr_expect_str_eq(VAL(c, "SELECT count(*) || ' ' || (min(i.received_at) = min(e.received_at))"
                            "::text FROM psp_event_ids i JOIN psp_events e USING (psp, event_id)"
                            " WHERE event_id = $1", evt), "1 true");
    PQfinish(c);
}

/* ---- merchant shards ---------------------------------------------------- */

/* rows of pay_directory(since) for merchant m: "kind id merchant", m first */
static const char *
directory_of(PGconn *c, const char *m, const char *since)
{
    return VAL(c, "SELECT string_agg(kind || ' ' || id || ' ' || merchant_id, ','"
                  " ORDER BY kind DESC, id) FROM pay_directory($2::timestamptz)"
                  " WHERE merchant_id = $1", m, since);
}

Test(sql, the_directory_lists_merchants_placed_and_active_keys_made_since,
     .description = "pay_directory: a merchant ('m') and its active keys ('k'), not its revoked one, "
                    "all of them from -infinity (or NULL), none older than p_since; a merchant placed "
                    "again (a move) or a key made since comes back alone; as_of is the statement's time")
{
    PGconn  *c = sqlt_connect();
    char     m[24], k1[13], k2[13], k3[13], want[128];

    new_merchant(c, m);
    sqlt_random_hex(k1, 12);
    sqlt_random_hex(k2, 12);
    sqlt_random_hex(k3, 12);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'test')",
       k1, m, FP_A);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode, revoked_at)"
          " VALUES ($1, $2, $3, 'test', now())", k2, m, FP_B);
    cr_expect_str_eq(VAL(c, "SELECT (placed_at = created_at)::text FROM merchants"
                            " WHERE merchant_id = $1", m), "true");

    snprintf(want, sizeof(want), "m %s %s,k %s %s", m, m, k1, m);
    cr_expect_str_eq(directory_of(c, m, "-infinity"), want);
    cr_expect_str_eq(directory_of(c, m, NULL), want);
    cr_expect_str_eq(VAL(c, "SELECT bool_and(as_of = now())::text"
                            " FROM pay_directory('-infinity') WHERE merchant_id = $1", m),
                     "true");

    /* placed and made a day ago: not since an hour ago */
    OK(c, "UPDATE merchants SET placed_at = now() - interval '1 day' WHERE merchant_id = $1", m);
    OK(c, "UPDATE api_keys SET created_at = now() - interval '1 day' WHERE merchant_id = $1", m);
    cr_expect_null(directory_of(c, m, VAL0(c, "SELECT (now() - interval '1 hour')::text")));
    cr_expect_str_eq(directory_of(c, m, VAL0(c, "SELECT (now() - interval '2 days')::text")),
                     want);

    /* placed here again (as a move would), then a new key: each alone */
    OK(c, "UPDATE merchants SET placed_at = now() WHERE merchant_id = $1", m);
    snprintf(want, sizeof(want), "m %s %s", m, m);
    cr_expect_str_eq(directory_of(c, m, VAL0(c, "SELECT (now() - interval '1 hour')::text")),
                     want);
    OK(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode) VALUES ($1, $2, $3, 'test')",
       k3, m, FP_B);
    snprintf(want, sizeof(want), "m %s %s,k %s %s", m, m, k3, m);
    cr_expect_str_eq(directory_of(c, m, VAL0(c, "SELECT (now() - interval '1 hour')::text")),
                     want);
    PQfinish(c);
}

Test(sql, merchant_here_answers_for_its_own_merchants_only,
     .description = "pay_merchant_here: 'here' for a merchant of this database, disabled too; NULL for another")
{
    PGconn  *c = sqlt_connect();
    char     m[24], other[24];

    new_merchant(c, m);
    strcpy(other, "zz_");
    sqlt_random_hex(other + 3, 18);
    cr_expect_str_eq(VAL(c, "SELECT pay_merchant_here($1)", m), "here");
    cr_expect_null(VAL(c, "SELECT pay_merchant_here($1)", other));
    OK(c, "UPDATE merchants SET disabled = true WHERE merchant_id = $1", m);
    cr_expect_str_eq(VAL(c, "SELECT pay_merchant_here($1)", m), "here");
    PQfinish(c);
}

/* pay_event_locate's row as "merchant checkout found_by" (checkout "-" for
 * NULL), NULL when it has none */
static const char *
locate(PGconn *c, const char *psp, const char *token, const char *tokens,
    const char *payment_ref, const char *object_ref)
{
    return VAL(c, "SELECT string_agg(merchant_id || ' ' || coalesce(checkout_id, '-')"
                  " || ' ' || found_by, ',') FROM pay_event_locate($1, $2, $3::text[], $4, $5)",
               psp, token, tokens, payment_ref, object_ref);
}

Test(sql, an_event_naming_no_merchant_is_located_by_what_it_names,
     .description = "pay_event_locate: by the session token (a blind-index candidate or the token as sent), "
                    "the PSP's payment id, and the PSP's ids of a refund, dispute, pay-out and capture; "
                    "nothing for unknown ids or another PSP's")
{
    PGconn  *c = sqlt_connect();
    char     m[24], tok[48], cands[96], pi[48], re[48], dp[48], po[48], cpref[48];
    char     pyo[32], cp[32], want[96];

    new_merchant(c, m);
    /* co_1 paid (its token <m>.cs_1), 1.00 of it refunded */
    partly_captured(c, m, "1000", "500", "100");
    snprintf(tok, sizeof(tok), "%s.cs_1", m);
    snprintf(pi, sizeof(pi), "pi_%s", m);
    snprintf(re, sizeof(re), "re_%s", m);
    snprintf(dp, sizeof(dp), "dp_a_%s", m);
    snprintf(po, sizeof(po), "po_%s", m);
    snprintf(cpref, sizeof(cpref), "cpref_%s", m);

    snprintf(want, sizeof(want), "%s co_1 token", m);
    cr_expect_str_eq(locate(c, "stripe", tok, "{}", "", ""), want);
    snprintf(cands, sizeof(cands), "{nosuchindex,%s}", tok);
    cr_expect_str_eq(locate(c, "stripe", "other", cands, "", ""), want);
    cr_expect_null(locate(c, "stripe", "other", "{nosuchindex}", "", ""));

    OK(c, "INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)"
          " VALUES ('stripe', $1, $2, 'co_1')", pi, m);
    snprintf(want, sizeof(want), "%s co_1 payment", m);
    cr_expect_str_eq(locate(c, "stripe", NULL, NULL, pi, ""), want);
    cr_expect_null(locate(c, "adyen", NULL, NULL, pi, ""));

    /* the refund's PSP id (set as the PSP's answer would) */
    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, "UPDATE refunds SET psp_refund_id = $2 WHERE merchant_id = $1", m, re);
    OK0(c, "COMMIT");
    snprintf(want, sizeof(want), "%s co_1 refund", m);
    cr_expect_str_eq(locate(c, "stripe", NULL, NULL, "", re), want);

    cr_assert_str_eq(dispute_event(c, m, "DISPUTE_OPENED", "dp_a", "200"), "applied");
    snprintf(want, sizeof(want), "%s co_1 dispute", m);
    cr_expect_str_eq(locate(c, "stripe", NULL, NULL, "pi_nowhere", dp), want);

    strcpy(pyo, "pyo_");
    sqlt_random_hex(pyo + 4, 24);
    OK(c, "INSERT INTO sellers (merchant_id, seller_account, psp, destination)"
          " VALUES ($1, 's1', 'stripe', 'acct_1') ON CONFLICT DO NOTHING", m);
    OK(c, "SELECT wallet_add($1, 's1', 'EUR', 1000)", m);
    OK(c, "INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination, nonce,"
          " amount, currency, status, psp_payout_id) VALUES ($1, $2, 's1', 'stripe', 'acct_1',"
          " $1 || ':' || $2, 300, 'EUR', 'PENDING', $3)", m, pyo, po);
    snprintf(want, sizeof(want), "%s - payout", m);
    cr_expect_str_eq(locate(c, "stripe", NULL, NULL, "", po), want);

    strcpy(cp, "cp_");
    sqlt_random_hex(cp + 3, 24);
    OK(c, "INSERT INTO captures (merchant_id, capture_id, kind, checkout_id,"
          " payment_order_id, psp, nonce, amount, currency, final, status, psp_ref)"
          " VALUES ($1, $2, 'capture', 'co_1', 'co_1_1', 'stripe', $1 || ':' || $2,"
          " 100, 'USD', false, 'PENDING', $3)", m, cp, cpref);
    snprintf(want, sizeof(want), "%s co_1 capture", m);
    cr_expect_str_eq(locate(c, "stripe", NULL, NULL, "", cpref), want);

    cr_expect_null(locate(c, "stripe", NULL, NULL, "pi_nowhere", "re_nowhere"));
    cr_expect_null(locate(c, "stripe", "", NULL, "", ""));
    cr_expect_null(locate(c, "adyen", tok, "{}", "", cpref));
    PQfinish(c);
}

/* pay_event_keep of one event (body "{}", a header, a key id): its state */
static const char *
keep_event(PGconn *c, const char *evt, const char *kind, const char *reference,
    const char *payment_ref, const char *object_ref)
{
    return VAL(c, "SELECT state FROM pay_event_keep('stripe', $1, $2, 'test.event', '', $3,"
                  " 100, 'USD', $4, $5, '{}', '\\x7b7d'::bytea,"
                  " '{\"stripe-signature\":\"t=1\"}', 'sha256:0123456789abcdef')",
               evt, kind, reference, payment_ref, object_ref);
}

/* the event ids ending in suffix that pay_inbox_homeless returns */
static const char *
homeless_of(PGconn *c, const char *suffix, const char *window, const char *retry)
{
    return VAL(c, "SELECT string_agg(event_id, ',' ORDER BY event_id)"
                  " FROM pay_inbox_homeless($2::int, $3::int, 100000)"
                  " WHERE right(event_id, length($1)) = $1", suffix, window, retry);
}

/* five events of a home shard's inbox, their ids e1..e5 + "_" + m:
 * e1 a dispute of a payment no merchant here has (pending, homeless);
 * e2 a refund under a nonce of merchant m, here (pending, not homeless);
 * e3 a refund under a nonce of a merchant not here (pending, homeless);
 * e4 a dispute of a payment here, its checkout not paid yet (pending,
 *    located here: not homeless);
 * e5 a refund whose reference is not a nonce (foreign) */
static void
homeless_inbox(PGconn *c, const char *m, char ev[5][48])
{
    char  nonce[64], other[64], pi[48], zz[24];
    int   i;

    for (i = 0; i < 5; i++) {
        snprintf(ev[i], 48, "e%d_%s", i + 1, m);
    }
    strcpy(zz, "zz_");
    sqlt_random_hex(zz + 3, 18);
    snprintf(nonce, sizeof(nonce), "%s:rf_unknown", m);
    snprintf(other, sizeof(other), "%s:rf_unknown", zz);
    snprintf(pi, sizeof(pi), "pi_%s", m);

    claim(c, &(claim_req_t){ .merchant = m });
    finish(c, m, "k1", "1", "co_1", "EXECUTING", "cs_1", NULL, "201", "{}");
    OK(c, "INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)"
          " VALUES ('stripe', $1, $2, 'co_1')", pi, m);

    cr_assert_str_eq(keep_event(c, ev[0], "DISPUTE_OPENED", "", "pi_nowhere", ev[0]), "pending");
    cr_assert_str_eq(keep_event(c, ev[1], "REFUND_SUCCEEDED", nonce, "", ""), "pending");
    cr_assert_str_eq(keep_event(c, ev[2], "REFUND_SUCCEEDED", other, "", ""), "pending");
    cr_assert_str_eq(keep_event(c, ev[3], "DISPUTE_OPENED", "", pi, ev[3]), "pending");
    cr_assert_str_eq(keep_event(c, ev[4], "REFUND_SUCCEEDED", "order-42", "", ""), "foreign");
}

Test(sql, the_home_shards_homeless_events_are_pending_ones_no_merchant_here_owns,
     .description = "pay_inbox_homeless: the pending events naming no merchant here and located nowhere "
                    "here, with their kept bytes, headers and key id; each tried once per p_retry; none "
                    "older than p_unmatched_after, but one a shard did not answer for in the last "
                    "p_unmatched_after (pay_inbox_waiting); 22023 on bad arguments")
{
    PGconn      *c = sqlt_connect();
    char         m[24], ev[5][48], suffix[32], want[128];
    PGresult    *r;

    new_merchant(c, m);
    homeless_inbox(c, m, ev);
    snprintf(suffix, sizeof(suffix), "_%s", m);

    /* e1 and e3, e1 with what pay_event_keep kept of it */
    r = sqlt_ok(c, "SELECT event_id, kind, reference, payment_ref, object_ref,"
                   " convert_from(body, 'UTF8'), headers ->> 'stripe-signature', key_id,"
                   " amount, currency, (received_at <= now())::text"
                   " FROM pay_inbox_homeless(3600, 300, 100000)"
                   " WHERE right(event_id, length($1)) = $1 ORDER BY event_id",
                1, ARGV(suffix));
    cr_assert_eq(PQntuples(r), 2, "homeless: %d rows", PQntuples(r));
    cr_expect_str_eq(PQgetvalue(r, 0, 0), ev[0]);
    cr_expect_str_eq(PQgetvalue(r, 1, 0), ev[2]);
    cr_expect_str_eq(PQgetvalue(r, 0, 1), "DISPUTE_OPENED");
    cr_expect(PQgetisnull(r, 0, 2));
    cr_expect_str_eq(PQgetvalue(r, 0, 3), "pi_nowhere");
    cr_expect_str_eq(PQgetvalue(r, 0, 4), ev[0]);
    cr_expect_str_eq(PQgetvalue(r, 0, 5), "{}");
    cr_expect_str_eq(PQgetvalue(r, 0, 6), "t=1");
    cr_expect_str_eq(PQgetvalue(r, 0, 7), "sha256:0123456789abcdef");
    cr_expect_str_eq(PQgetvalue(r, 0, 8), "100");
    cr_expect_str_eq(PQgetvalue(r, 0, 9), "USD");
    cr_expect_str_eq(PQgetvalue(r, 0, 10), "true");
    PQclear(r);

    /* tried just now: neither again within p_retry */
    cr_expect_null(homeless_of(c, suffix, "3600", "300"));
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id IN ($1, $2)"
                            " AND forward_tried_at IS NOT NULL", ev[0], ev[2]), "2");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id IN ($1, $2, $3)"
                            " AND forward_tried_at IS NOT NULL", ev[1], ev[3], ev[4]), "0");

    /* e1 tried 10 minutes ago: due again past a 5 minute retry, alone */
    OK(c, "UPDATE psp_events SET forward_tried_at = now() - interval '10 minutes'"
          " WHERE event_id = $1", ev[0]);
    cr_expect_str_eq(homeless_of(c, suffix, "3600", "300"), ev[0]);
    snprintf(want, sizeof(want), "%s,%s", ev[0], ev[2]);
    cr_expect_str_eq(homeless_of(c, suffix, "3600", "0"), want);

    /* past the window they are the unmatched alert's, not forwarded */
    usleep(1100 * 1000);
    cr_expect_null(homeless_of(c, suffix, "1", "0"));

    /* but for one whose look-up last found a shard not answering
     * (pay_inbox_waiting, its age returned), that shard may own it: taken
     * however old, for the window after that */
    cr_expect_str_eq(VAL(c, "SELECT (pay_inbox_waiting('stripe', $1) >= 1)::text",
                         ev[2]), "true");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id = $1"
                            " AND forward_waiting_at IS NOT NULL", ev[2]), "1");
    cr_expect_str_eq(homeless_of(c, suffix, "1", "0"), ev[2]);
    cr_expect_str_eq(homeless_of(c, suffix, "3600", "0"), want);
    usleep(1100 * 1000);
    cr_expect_null(homeless_of(c, suffix, "1", "0"));

    /* noted on a pending event only: not a foreign one, not one not kept */
    cr_expect_null(VAL(c, "SELECT pay_inbox_waiting('stripe', $1)", ev[4]));
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id = $1"
                            " AND forward_waiting_at IS NOT NULL", ev[4]), "0");
    cr_expect_null(VAL(c, "SELECT pay_inbox_waiting('stripe', $1 || '_never')", ev[2]));

    FAILS0(c, "22023", "SELECT * FROM pay_inbox_homeless(0, 300, 10)");
    FAILS0(c, "22023", "SELECT * FROM pay_inbox_homeless(3600, -1, 10)");
    FAILS0(c, "22023", "SELECT * FROM pay_inbox_homeless(3600, 300, 0)");
    PQfinish(c);
}

/*
 * A month's partition made while a webhook holds the inbox: the webhook
 * has read it (its duplicate check) and inserts next.  The maker holds
 * nothing an insert waits for (it attaches a table of its own, SHARE
 * UPDATE EXCLUSIVE on the parent): it finishes while the webhook's
 * transaction is open, and the webhook's insert goes through.  Made with
 * CREATE TABLE ... PARTITION OF after a SHARE ROW EXCLUSIVE lock, the two
 * waited on each other (40P01).  The maker's months are rolled back.
 */
Test(sql, a_months_partition_is_made_while_a_webhook_holds_the_inbox,
     .timeout = 60)
{
    PGconn      *c = sqlt_connect(), *a, *b;
    PGresult    *r;
    char         m[24], evt[64], made[64];

    new_merchant(c, m);
    snprintf(evt, sizeof(evt), "part_%s", m);
    a = sqlt_connect();
    b = sqlt_connect();

    /* the webhook: its duplicate check read the inbox, in its transaction,
     * and it holds the parent as inserting would */
    OK0(a, "BEGIN");
    OK0(a, "SELECT count(*) FROM psp_events WHERE false");
    OK0(a, "LOCK TABLE psp_events IN ROW EXCLUSIVE MODE");

    /* months far ahead no sweeper made: made, not waiting on the webhook */
    OK0(b, "BEGIN");
    OK0(b, "SET LOCAL lock_timeout = '5s'");
    r = PQexec(b, "SELECT pay_inbox_partitions(24)");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK,
                 "the maker waited on the webhook: %s",
                 PQresultErrorMessage(r));
    snprintf(made, sizeof(made), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    cr_expect_neq(atoi(made), 0, "no month was missing: nothing tested");
    cr_expect_str_eq(VAL0(b, "SELECT count(*) FROM pg_inherits "
                             "WHERE inhparent = 'psp_events'::regclass "
                             "AND inhrelid = to_regclass('psp_events_' || "
                             "to_char((now() AT TIME ZONE 'UTC') + "
                             "interval '24 months', '\"y\"YYYY\"m\"MM'))"),
                     "1", "the month is a partition of the inbox");
    OK0(b, "ROLLBACK");

    /* the webhook's own insert, then its commit */
    cr_expect_str_eq(keep_event(a, evt, "REFUND_SUCCEEDED", "order-43", "", ""),
                     "foreign");
    OK0(a, "COMMIT");

    PQfinish(a);
    PQfinish(b);
    PQfinish(c);
}

/* the inbox's monthly partitions this backend holds a lock on, by name */
static const char *
inbox_months_locked(PGconn *c)
{
    return VAL0(c, "SELECT count(*) || coalesce(' ' || string_agg(DISTINCT p.relname, ' '), '')"
                   " FROM pg_locks l JOIN pg_inherits i ON i.inhrelid = l.relation"
                   " JOIN pg_class p ON p.oid = l.relation"
                   " WHERE i.inhparent = 'psp_events'::regclass AND l.locktype = 'relation'"
                   " AND l.pid = pg_backend_pid()");
}

/* the relations of the schema this backend holds a lock on */
static const char *
relations_locked(PGconn *c)
{
    return VAL0(c, "SELECT count(*) FROM pg_locks l JOIN pg_class r ON r.oid = l.relation"
                   " WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid()"
                   " AND r.relnamespace = 'public'::regnamespace");
}

/*
 * The past months of the inbox a test made (space-separated partition
 * names), dropped after it by its .fini, also when it failed: the months'
 * event ids first, then the partitions, in one transaction, as an operator
 * drops a month by hand (doc/OPERATIONS.md, the event inbox's retention;
 * pay_inbox_drop_old drops by age, and no retention drops last month).
 * The drop holds the whole inbox a moment: it waits at most 200 ms for
 * another test's webhook holding it, so as never to hold that test's next
 * ones behind it for long, and is tried again, for up to 20 s.
 */
static char  inbox_months_made[1024];

static void
drop_inbox_months_made(void)
{
    PGconn      *c;
    PGresult    *r;
    const char  *st = "";
    int          i;

    if (inbox_months_made[0] == '\0') {
        return;
    }

    c = sqlt_connect();

    for (i = 0; i < 100; i++) {
        OK0(c, "BEGIN");
        OK0(c, "SET LOCAL lock_timeout = '200ms'");
        OK(c, "SELECT set_config('payments_test.months', $1, true)",
           inbox_months_made);
        r = PQexec(c, "DO $$ DECLARE n text; BEGIN"
                      " FOREACH n IN ARRAY string_to_array("
                      "current_setting('payments_test.months'), ' ') LOOP"
                      " EXECUTE format('DELETE FROM psp_event_ids i USING %I p"
                      " WHERE (i.psp, i.event_id, i.received_at)"
                      " = (p.psp, p.event_id, p.received_at)', n);"
                      " EXECUTE format('DROP TABLE %I', n);"
                      " END LOOP; END $$");
        st = PQresultStatus(r) == PGRES_COMMAND_OK
             ? "" : PQresultErrorField(r, PG_DIAG_SQLSTATE);
        st = strdup(st != NULL ? st : "?");
        PQclear(r);

        if (st[0] == '\0') {
            OK0(c, "COMMIT");
            break;
        }

        OK0(c, "ROLLBACK");
        if (strcmp(st, "55P03") != 0) {
            break;
        }

        usleep(100 * 1000);
    }

    cr_expect_str_eq(st, "", "the inbox's months %s not dropped",
                     inbox_months_made);
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM unnest(string_to_array($1,"
                            " ' ')) n WHERE to_regclass(n) IS NOT NULL",
                         inbox_months_made), "0");
    inbox_months_made[0] = '\0';
    PQfinish(c);
}

/*
 * A webhook's duplicate check reads one index whatever the months the
 * inbox keeps (psp_event_ids' key): with 13 monthly partitions (a year
 * behind this month), a new event's keep locks the one partition it
 * inserts into, and a second delivery of an event kept six months ago
 * locks that month's partition alone; each webhook's relation locks stay
 * within the 16 a backend takes on the fast path.  Looked up by its id
 * over every partition, they locked all 13 (and their indexes: past 30).
 * A replay finds the old event by its id too.  The past months it made
 * are dropped after it, with their event ids (drop_inbox_months_made).
 */
Test(sql, the_duplicate_check_reads_one_month_of_a_years_inbox, .timeout = 60,
     .fini = drop_inbox_months_made)
{
    PGconn      *c = sqlt_connect(), *a;
    char         m[24], evt[64], old[64], warm[64], month6[64];

    new_merchant(c, m);
    OK0(c, "SELECT pay_inbox_partitions(0)");
    /* the 12 months behind this one that are not there yet: made here */
    snprintf(inbox_months_made, sizeof(inbox_months_made), "%s",
             VAL0(c, "SELECT coalesce(string_agg(n, ' '), '') FROM ("
                     "SELECT 'psp_events_' || to_char((now() AT TIME ZONE 'UTC')"
                     " - make_interval(months => i), '\"y\"YYYY\"m\"MM') n"
                     " FROM generate_series(1, 12) i) m WHERE to_regclass(n) IS NULL"));
    OK0(c, "DO $$ DECLARE m timestamptz; BEGIN FOR i IN 1 .. 12 LOOP "
           "m := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE "
           "'UTC' - make_interval(months => i); "
           "EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF "
           "psp_events FOR VALUES FROM (%L) TO (%L)', 'psp_events_' || "
           "to_char(m AT TIME ZONE 'UTC', '\"y\"YYYY\"m\"MM'), m, "
           "m + interval '1 month'); END LOOP; END $$");
    /* an event in each of the 12 months behind this one */
    OK(c, "INSERT INTO psp_events (psp, event_id, received_at, state, body, kind)"
          " SELECT 'stripe', 'evt_m' || i || '_' || $1, date_trunc('month', now() AT TIME"
          " ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(months => i) + interval '1 day',"
          " 'foreign', '\\x7b7d', 'REFUND_SUCCEEDED' FROM generate_series(1, 12) i", m);
    cr_assert_str_eq(VAL0(c, "SELECT (count(*) >= 13)::text FROM pg_inherits"
                             " WHERE inhparent = 'psp_events'::regclass"), "true");
    snprintf(old, sizeof(old), "evt_m6_%s", m);
    snprintf(month6, sizeof(month6), "1 %s",
             VAL0(c, "SELECT 'psp_events_' || to_char((now() AT TIME ZONE 'UTC')"
                     " - interval '6 months', '\"y\"YYYY\"m\"MM')"));

    /* a gateway's connection, its statements planned as it keeps them */
    a = sqlt_connect();
    for (int i = 0; i < 8; i++) {
        snprintf(warm, sizeof(warm), "evt_w%d_%s", i, m);
        cr_assert_str_eq(keep_event(a, warm, "REFUND_SUCCEEDED", "order-43", "", ""),
                         "foreign");
        cr_assert_str_eq(keep_event(a, warm, "REFUND_SUCCEEDED", "order-43", "", ""),
                         "foreign");
    }

    /* a new event: the month it goes to, alone */
    snprintf(evt, sizeof(evt), "evt_new_%s", m);
    OK0(a, "BEGIN");
    cr_expect_str_eq(keep_event(a, evt, "REFUND_SUCCEEDED", "order-43", "", ""), "foreign");
    cr_expect_str_eq(inbox_months_locked(a),
                     VAL0(c, "SELECT '1 psp_events_' || to_char(now() AT TIME ZONE 'UTC',"
                             " '\"y\"YYYY\"m\"MM')"));
    cr_expect_lt(atoi(relations_locked(a)), 16, "%s relations locked",
                 relations_locked(a));
    OK0(a, "COMMIT");

    /* an event kept six months ago, delivered again: its month alone */
    OK0(a, "BEGIN");
    cr_expect_str_eq(keep_event(a, old, "REFUND_SUCCEEDED", "order-43", "", ""), "foreign");
    cr_expect_str_eq(inbox_months_locked(a), month6);
    cr_expect_lt(atoi(relations_locked(a)), 16, "%s relations locked",
                 relations_locked(a));
    OK0(a, "COMMIT");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id = $1", old), "1");

    /* found by its id by a replay, in its month */
    cr_expect_str_eq(VAL(c, "SELECT state_before FROM pay_inbox_replay('stripe', $1, 'test')",
                         old), "foreign");

    PQfinish(a);
    PQfinish(c);
}

/*
 * An event is kept once by the database itself, not only by the keepers'
 * advisory lock: a second row of a kept event, written by a writer that
 * takes no such lock and received at another time (so psp_events' own
 * key, which holds received_at, sees no conflict), waits for the first
 * writer's transaction and then fails on psp_event_ids' key (23505).  Two
 * webhooks of one event at once: one keeps it, the other is a duplicate.
 */
Test(sql, an_event_is_kept_once_even_by_two_writers_at_once, .timeout = 60)
{
    PGconn      *c = sqlt_connect(), *a, *b;
    char         m[24], evt[64], ev2[64], r_b[64];
    const char  *ins;

    new_merchant(c, m);
    OK0(c, "SELECT pay_inbox_partitions(0)");
    snprintf(evt, sizeof(evt), "evt_twice_%s", m);
    snprintf(ev2, sizeof(ev2), "evt_hook_twice_%s", m);
    a = sqlt_connect();
    b = sqlt_connect();

    ins = "INSERT INTO psp_events (psp, event_id, received_at, state, body, kind)"
          " VALUES ('stripe', $1, now() + $2::interval, 'foreign', '\\x7b7d',"
          " 'REFUND_SUCCEEDED') RETURNING 'kept'";
    OK0(a, "BEGIN");
    OK(a, ins, evt, "0 s");
    cr_assert_eq(PQsendQueryParams(b, ins, 2, NULL, ARGV(evt, "1 s"), NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(b));
    OK0(a, "COMMIT");
    cr_expect_str_eq(sent_result(b, r_b, sizeof(r_b)), "error 23505");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id = $1", evt), "1");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_event_ids WHERE event_id = $1", evt),
                     "1");

    /* through pay_event_keep, both at once */
    OK0(a, "BEGIN");
    cr_expect_str_eq(keep_event(a, ev2, "REFUND_SUCCEEDED", "order-43", "", ""), "foreign");
    cr_assert_eq(PQsendQueryParams(b, "SELECT outcome FROM pay_event_keep('stripe', $1,"
                                      " 'REFUND_SUCCEEDED', 'test.event', '', 'order-43', 100,"
                                      " 'USD', '', '', '{}', '\\x7b7d'::bytea, '{}', 'k1')",
                                   1, NULL, ARGV(ev2), NULL, NULL, 0), 1);
    wait_for_lock(c, PQbackendPID(b));
    OK0(a, "COMMIT");
    cr_expect_str_eq(sent_result(b, r_b, sizeof(r_b)), "duplicate");
    cr_expect_str_eq(VAL(c, "SELECT count(*) FROM psp_events WHERE event_id = $1", ev2), "1");

    /* a row's event id and month do not change */
    FAILS(c, "0A000", "UPDATE psp_events SET received_at = received_at"
                      " + interval '1 s' WHERE event_id = $1", evt);

    PQfinish(a);
    PQfinish(b);
    PQfinish(c);
}

Test(sql, a_forwarded_event_is_marked_once_and_left_as_it_is,
     .description = "pay_inbox_forwarded: a pending, foreign or unmatched event becomes 'forwarded' "
                    "naming its owner shard, once; an applied one does not; it is homeless no more, a "
                    "replay leaves it; the table refuses a forwarded row without its shard; 22023 on a "
                    "bad shard name")
{
    PGconn  *c = sqlt_connect();
    char     m[24], ev[5][48], suffix[32];

    new_merchant(c, m);
    homeless_inbox(c, m, ev);
    snprintf(suffix, sizeof(suffix), "_%s", m);

    cr_expect_str_eq(VAL(c, "SELECT pay_inbox_forwarded('stripe', $1, 'b')::text", ev[0]), "true");
    cr_expect_str_eq(VAL(c, "SELECT state || ' ' || forwarded_to FROM psp_events"
                            " WHERE event_id = $1", ev[0]), "forwarded b");
    cr_expect_str_eq(VAL(c, "SELECT pay_inbox_forwarded('stripe', $1, 'c')::text", ev[0]), "false");
    cr_expect_str_eq(VAL(c, "SELECT forwarded_to FROM psp_events WHERE event_id = $1", ev[0]), "b");
    cr_expect_str_eq(homeless_of(c, suffix, "3600", "0"), ev[2]);

    /* a replay of it applies nothing here */
    cr_expect_str_eq(VAL(c, "SELECT state_before || ' ' || state || ' ' || outcome"
                            " FROM pay_inbox_replay('stripe', $1, 'ops')", ev[0]),
                     "forwarded forwarded forwarded");
    cr_expect_str_eq(VAL(c, "SELECT state FROM psp_events WHERE event_id = $1", ev[0]),
                     "forwarded");

    /* foreign and unmatched ones too; an unknown event, no */
    cr_expect_str_eq(VAL(c, "SELECT pay_inbox_forwarded('stripe', $1, 'shard_2')::text", ev[4]),
                     "true");
    OK(c, "UPDATE psp_events SET state = 'unmatched', unmatched_at = now() WHERE event_id = $1",
       ev[2]);
    cr_expect_str_eq(VAL(c, "SELECT pay_inbox_forwarded('stripe', $1, 'b')::text", ev[2]), "true");
    cr_expect_str_eq(VAL(c, "SELECT pay_inbox_forwarded('adyen', $1, 'b')::text", ev[3]), "false");

    /* an applied one stays applied */
    OK(c, "UPDATE psp_events SET state = 'applied', applied_at = now() WHERE event_id = $1", ev[1]);
    cr_expect_str_eq(VAL(c, "SELECT pay_inbox_forwarded('stripe', $1, 'b')::text", ev[1]), "false");
    cr_expect_str_eq(VAL(c, "SELECT state FROM psp_events WHERE event_id = $1", ev[1]), "applied");

    FAILS(c, "22023", "SELECT pay_inbox_forwarded('stripe', $1, 'B')", ev[3]);
    FAILS(c, "22023", "SELECT pay_inbox_forwarded('stripe', $1, '')", ev[3]);
    FAILS(c, "22023", "SELECT pay_inbox_forwarded('stripe', $1, 'a_name_of_17_char')", ev[3]);
    FAILS_AS(c, "23514", "psp_events_forwarded",
             "UPDATE psp_events SET state = 'forwarded' WHERE event_id = $1", ev[3]);
    FAILS_AS(c, "23514", "psp_events_forwarded",
             "UPDATE psp_events SET forwarded_to = 'b' WHERE event_id = $1", ev[3]);
    FAILS_AS(c, "23514", "psp_events_state",
             "UPDATE psp_events SET state = 'moved' WHERE event_id = $1", ev[3]);
    PQfinish(c);
}

Test(sql, reconciliation_rows_are_owned_by_the_shard_of_their_merchant,
     .description = "recon_owned: a row is this shard's by its nonce's merchant, else by the PSP's payment "
                    "or object id found here; fees and others' rows are not; reads only")
{
    PGconn  *c = sqlt_connect();
    char     m[24], rows[1024], re[48], want[160];

    new_merchant(c, m);
    partly_captured(c, m, "1000", "500", "100");
    snprintf(re, sizeof(re), "re_%s", m);
    OK0(c, "BEGIN");
    OK0(c, "SET LOCAL session_replication_role = replica");
    OK(c, "UPDATE refunds SET psp_refund_id = $2 WHERE merchant_id = $1", m, re);
    OK0(c, "COMMIT");
    OK(c, "INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)"
          " VALUES ('stripe', 'pi_' || $1, $1, 'co_1')", m);

    snprintf(rows, sizeof(rows),
             "[{\"record\":2,\"reference\":\"%s:co_1\",\"payment_ref\":\"\",\"object_ref\":\"\"},"
             "{\"record\":3,\"reference\":\"zz_nowhere:co_9\",\"payment_ref\":\"pi_%s\",\"object_ref\":\"\"},"
             "{\"record\":4,\"reference\":\"\",\"payment_ref\":\"\",\"object_ref\":\"%s\"},"
             "{\"record\":5,\"reference\":\"\",\"payment_ref\":\"\",\"object_ref\":\"\"},"
             "{\"record\":6,\"reference\":\"zz_nowhere:co_9\",\"payment_ref\":\"pi_nowhere\","
             "\"object_ref\":\"re_nowhere\"},"
             "{\"record\":7,\"reference\":\"not a nonce\"}]", m, m, re);
    snprintf(want, sizeof(want), "2 %s nonce,3 %s payment,4 %s refund", m, m, m);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(record || ' ' || merchant_id || ' ' || found_by,"
                            " ',' ORDER BY record) FROM recon_owned('stripe', $1::jsonb)", rows),
                     want);
    snprintf(want, sizeof(want), "2 %s nonce", m);
    cr_expect_str_eq(VAL(c, "SELECT string_agg(record || ' ' || merchant_id || ' ' || found_by,"
                            " ',' ORDER BY record) FROM recon_owned('adyen', $1::jsonb)", rows),
                     want);
    cr_expect_str_eq(VAL0(c, "SELECT count(*) FROM recon_owned('stripe', '[]')"), "0");
    cr_expect_str_eq(VAL0(c, "SELECT provolatile::text FROM pg_proc WHERE proname = 'recon_owned'"),
                     "s");
    PQfinish(c);
}
