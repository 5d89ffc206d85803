/*
 * End to end: Stripe webhooks move the money (API.md, "PSP-facing"), and
 * the shopper's way back (return and status endpoints).  The tests sign
 * events with the run's webhook secret, as Stripe would.
 */

#include "harness.h"

#include <pthread.h>
#include <time.h>


typedef struct {
    merchant_t   m;
    char        *co;
    char        *token;         /* the PSP session id */
    char        *pay_url;
} paid_t;


static char *
webhook_secret(void)
{
    size_t  len;
    char   *s;

    s = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(s);
    return s;
}


static char *
stripe_event(const char *evt, const char *type, const paid_t *p,
    long amount, const char *payment_status, int livemode)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":\"%s\","
                      "\"created\":%ld,\"livemode\":%s,\"data\":{\"object\":"
                      "{\"id\":\"%s\",\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s:%s\",\"amount_total\":%ld,"
                      "\"currency\":\"usd\",\"payment_status\":\"%s\","
                      "\"status\":\"complete\"}}}",
                      evt, type, (long) time(NULL),
                      livemode ? "true" : "false", p->token, p->m.id, p->co,
                      amount, payment_status);
}


static resp_t *
deliver(const char *body, long t, const char *secret)
{
    char    *sig;
    resp_t  *r;

    sig = stripe_signature(secret, t, body);
    r = webhook_post(env("PAY_TEST_PSP"), sig, body);
    free(sig);

    return r;
}


static void
register_checkout(paid_t *p)
{
    resp_t  *r;
    json_t  *j;

    merchant_new(&p->m);
    p->co = uid("co");
    r = register_ok(&p->m, uid("key"), body_for(p->co));
    j = resp_json(r);
    p->token = strdup(json_string_value(json_object_get(j, "psp_token")));
    p->pay_url = strdup(json_string_value(json_object_get(j, "pay_url")));
}


/* register_checkout(), then paid: Stripe's signed
 * checkout.session.completed for it, delivered and taken (200) */
static void
paid_checkout(paid_t *p)
{
    resp_t  *r;

    register_checkout(p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", p,
                             1500, "paid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
}


static char *
status_of(const paid_t *p)
{
    resp_t  *r;
    json_t  *j;

    r = api_get(&p->m, str_printf("/v1/checkouts/%s", p->co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    return strdup(json_string_value(json_object_get(j, "status")));
}


static long
count_of(const char *sql, const paid_t *p)
{
    const char  *params[] = { p->m.id, p->co };

    return atol(db_scalar(sql, 2, params));
}


#define LEDGER_TXNS  "SELECT count(*) FROM ledger_transactions " \
                     "WHERE merchant_id = $1 AND checkout_id = $2"


Test(webhooks, a_paid_event_moves_the_checkout_books_the_ledger_and_wallets)
{
    paid_t        p;
    const char   *params[2];

    paid_checkout(&p);
    cr_assert_str_eq(status_of(&p), "SUCCESS");

    cr_assert_eq(count_of(LEDGER_TXNS, &p), 2, "one ledger txn per order");

    params[0] = p.m.id;
    params[1] = p.co;
    cr_assert_str_eq(db_scalar("SELECT sum(e.amount) FROM ledger_entries e "
                               "JOIN ledger_transactions t USING "
                               "(merchant_id, txn_id) WHERE t.merchant_id = $1 "
                               "AND t.checkout_id = $2", 2, params), "0");
    cr_assert_str_eq(db_scalar("SELECT balance FROM wallets WHERE "
                               "merchant_id = $1 AND seller_account = "
                               "'seller_1' AND currency = 'USD'", 1, params),
                     "1000");
    cr_assert_str_eq(db_scalar("SELECT balance FROM wallets WHERE "
                               "merchant_id = $1 AND seller_account = "
                               "'seller_2' AND currency = 'USD'", 1, params),
                     "500");

    /* both orders say so themselves */
    cr_assert_eq(count_of("SELECT count(*) FROM payment_orders WHERE "
                          "merchant_id = $1 AND checkout_id = $2 AND "
                          "ledger_updated AND wallet_updated", &p), 2);
}


Test(webhooks, the_same_event_twice_changes_nothing_the_second_time)
{
    char     *evt, *body;
    paid_t    p;
    resp_t   *r;

    register_checkout(&p);
    evt = uid("evt");
    body = stripe_event(evt, "checkout.session.completed", &p, 1500, "paid",
                        0);

    r = deliver(body, time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    r = deliver(body, time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);

    cr_assert_eq(count_of(LEDGER_TXNS, &p), 2);
}


typedef struct {
    const char  *body;
    const char  *secret;
    long         status;
} delivery_t;


static void *
deliver_thread(void *arg)
{
    delivery_t  *d = arg;
    resp_t      *r;

    r = deliver(d->body, time(NULL), d->secret);
    d->status = r->status;
    return NULL;
}


Test(webhooks, one_event_delivered_100_times_at_once_books_once)
{
    int          i;
    char        *body, *secret;
    paid_t       p;
    pthread_t    th[100];
    delivery_t   d[100];

    register_checkout(&p);
    body = stripe_event(uid("evt"), "checkout.session.completed", &p, 1500,
                        "paid", 0);
    secret = webhook_secret();

    for (i = 0; i < 100; i++) {
        d[i].body = body;
        d[i].secret = secret;
        d[i].status = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, deliver_thread, &d[i]), 0);
    }

    for (i = 0; i < 100; i++) {
        pthread_join(th[i], NULL);
        cr_assert(d[i].status == 200 || d[i].status == 503,
                  "delivery %d: %ld", i, d[i].status);
    }

    cr_assert_str_eq(status_of(&p), "SUCCESS");
    cr_assert_eq(count_of(LEDGER_TXNS, &p), 2);
    cr_assert_eq(count_of("SELECT count(*) FROM order_events WHERE "
                          "merchant_id = $1 AND checkout_id = $2 AND "
                          "to_status = 'SUCCESS'", &p), 2);
}


Test(webhooks, an_expired_session_fails_the_checkout_without_ledger_rows)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.expired", &p, 1500,
                             "unpaid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "FAILED");
    cr_assert_eq(count_of(LEDGER_TXNS, &p), 0);
    cr_assert_eq(count_of("SELECT count(*) FROM payment_orders WHERE "
                          "merchant_id = $1 AND checkout_id = $2 AND "
                          "(ledger_updated OR wallet_updated)", &p), 0);
}


Test(webhooks, a_late_contrary_event_never_moves_a_status_back)
{
    paid_t   p;
    resp_t  *r;

    paid_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.expired", &p, 1500,
                             "unpaid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "a late event is recorded: %s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
    cr_assert_eq(count_of(LEDGER_TXNS, &p), 2);
}


/* a paid session's event naming its payment (payment_intent) */
static char *
stripe_paid_event(const char *evt, const paid_t *p, const char *pi)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                      "\"checkout.session.completed\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":{\"id\":"
                      "\"%s\",\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s:%s\",\"amount_total\":"
                      "1500,\"currency\":\"usd\",\"payment_status\":"
                      "\"paid\",\"status\":\"complete\","
                      "\"payment_intent\":\"%s\"}}}",
                      evt, (long) time(NULL), p->token, p->m.id, p->co, pi);
}


Test(webhooks, a_second_payment_of_a_paid_checkout_is_booked_nowhere_and_alerted,
     .description = "a success naming another payment than the one booked "
                    "(the PSP took a second payment under our reference) "
                    "is recorded as mismatch, with its audit entry, and "
                    "books nothing")
{
    char        *first, *second;
    paid_t       p;
    resp_t      *r;
    const char  *ev[2];

    register_checkout(&p);
    first = uid("pi");
    second = uid("pi");
    r = deliver(stripe_paid_event(uid("evt"), &p, first), time(NULL),
                webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");

    ev[0] = uid("evt");
    r = deliver(stripe_paid_event(ev[0], &p, second), time(NULL),
                webhook_secret());
    cr_assert_eq(r->status, 200, "authentic, not applicable: %s", r->body);
    ev[1] = env("PAY_TEST_PSP");
    cr_expect_str_eq(db_scalar("SELECT outcome FROM webhook_events WHERE "
                               "event_id = $1 AND psp = $2", 2, ev),
                     "mismatch");
    cr_expect_eq(count_of(LEDGER_TXNS, &p), 2, "the second payment was "
                 "booked");
    cr_expect_eq(count_of("SELECT count(*) FROM audit_log WHERE merchant_id "
                          "= $1 AND checkout_id = $2 AND action = "
                          "'webhook:mismatch'", &p), 1);
    cr_expect_eq(count_of("SELECT count(*) FROM checkouts WHERE merchant_id "
                          "= $1 AND checkout_id = $2 AND psp_payment_ref = "
                          "(SELECT min(payment_ref) FROM psp_payments WHERE "
                          "merchant_id = $1 AND checkout_id = $2) AND "
                          "(SELECT count(*) FROM psp_payments WHERE "
                          "merchant_id = $1 AND checkout_id = $2) = 1",
                          &p), 1, "the first payment stays the booked one");

    /* the first payment's own event again, under another id: already */
    r = deliver(stripe_paid_event(uid("evt"), &p, first), time(NULL),
                webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_eq(count_of("SELECT count(*) FROM webhook_events WHERE "
                          "merchant_id = $1 AND checkout_id = $2 AND "
                          "outcome = 'already'", &p), 1);
}


Test(webhooks, an_unpaid_completion_is_pending_until_the_async_result)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "unpaid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");

    r = deliver(stripe_event(uid("evt"),
                             "checkout.session.async_payment_succeeded", &p,
                             1500, "paid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
}


Test(webhooks, an_amount_mismatch_changes_nothing)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1499, "paid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "authentic, not applicable: %s", r->body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");
    cr_assert_eq(count_of(LEDGER_TXNS, &p), 0);
}


/* A signed success without amount_total or currency cannot be checked:
 * the database refuses to book it (it was applied unchecked). */
Test(webhooks, a_success_without_amount_or_currency_books_nothing)
{
    paid_t   p;
    resp_t  *r;
    char    *body;
    const char  *params[2];

    register_checkout(&p);

    body = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                      "\"type\":\"checkout.session.completed\","
                      "\"created\":%ld,\"livemode\":false,\"data\":{"
                      "\"object\":{\"id\":\"%s\",\"object\":"
                      "\"checkout.session\",\"client_reference_id\":"
                      "\"%s:%s\",\"currency\":\"usd\","
                      "\"payment_status\":\"paid\"}}}",
                      uid("evt"), (long) time(NULL), p.token, p.m.id, p.co);
    r = deliver(body, time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "authentic, not applicable: %s", r->body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");

    body = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                      "\"type\":\"checkout.session.completed\","
                      "\"created\":%ld,\"livemode\":false,\"data\":{"
                      "\"object\":{\"id\":\"%s\",\"object\":"
                      "\"checkout.session\",\"client_reference_id\":"
                      "\"%s:%s\",\"amount_total\":1500,"
                      "\"payment_status\":\"paid\"}}}",
                      uid("evt"), (long) time(NULL), p.token, p.m.id, p.co);
    r = deliver(body, time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "authentic, not applicable: %s", r->body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");
    cr_assert_eq(count_of(LEDGER_TXNS, &p), 0);

    params[0] = p.m.id;
    params[1] = p.co;
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "outcome = 'amount_mismatch'", 2, params),
                     "2");

    /* with both, it books */
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "paid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
}


/* pay_event_apply as the gateway calls it for a paid Stripe session of
 * 15.00 USD: ev = { psp, the token's blind index, the payment reference };
 * its outcome. */
static char *
paid_event(const char *const *ev)
{
    return db_scalar("SELECT outcome FROM pay_event_apply($1, "
                     "'evt_db_' || md5(random()::text), 'SUCCEEDED', "
                     "'checkout.session.completed', $2, '', 1500, 'USD', $3, "
                     "'', NULL::text[])", 3, ev);
}


/* co = { merchant, checkout }: its psp_payment_ref, "-" for none */
static char *
payment_ref_of(const char *const *co)
{
    return db_scalar("SELECT coalesce(psp_payment_ref, '-') FROM checkouts "
                     "WHERE merchant_id = $1 AND checkout_id = $2", 2, co);
}


/* pp = { psp, reference, merchant, checkout }: its psp_payments rows */
static char *
psp_payments_of(const char *const *pp)
{
    return db_scalar("SELECT count(*) FROM psp_payments WHERE psp = $1 AND "
                     "payment_ref = $2 AND merchant_id = $3 AND "
                     "checkout_id = $4", 4, pp);
}


/* The same answer from the sweeper (pay_sweeper_apply),
 * as a session look-up the PSP answered "paid" applies it. */
static char *
swept_event(const char *const *ev)
{
    return db_scalar("SELECT outcome FROM pay_sweeper_apply($1, "
                     "'sweep_db_' || md5(random()::text), 'SUCCEEDED', "
                     "'checkout.session', $2, '', 1500, 'USD', $3, "
                     "NULL::text[])", 3, ev);
}


/*
 * A payment's answer that pays a checkout writes its row once, the PSP's
 * payment reference with the status (and its psp_payments row); a
 * reference that comes with a later answer is noted only when none was.
 * pg_stat_xact_user_tables counts this transaction's own row writes (rolled
 * back at the end: the suite shares the database).
 */
static void
expect_paid_once_with_reference(char *(*apply)(const char *const *))
{
    char        *ref, *first;
    paid_t       p;
    const char  *ev[3], *co[2], *pp[4];

    register_checkout(&p);
    ev[0] = env("PAY_TEST_PSP");
    ev[1] = test_blind_index(0, env("PAY_TEST_PSP"), p.token);
    co[0] = p.m.id;
    co[1] = p.co;

    first = uid("pi");
    ev[2] = first;
    db_exec("BEGIN", 0, NULL);
    cr_assert_str_eq(apply(ev), "applied");
    cr_expect_str_eq(db_scalar("SELECT n_tup_upd FROM pg_stat_xact_user_tables "
                               "WHERE relid = 'checkouts'::regclass", 0, NULL),
                     "1");
    /* the event's row once, with its outcome; one row for its audit
     * entry, and its chain's anchor moved only when the row follows an
     * eighth (audit_log_link) */
    cr_expect_str_eq(db_scalar("SELECT n_tup_ins || ' ' || n_tup_upd FROM "
                               "pg_stat_xact_user_tables WHERE relid = "
                               "'webhook_events'::regclass", 0, NULL),
                     "1 0");
    cr_expect_str_eq(db_scalar("SELECT ((SELECT n_tup_upd FROM "
                               "pg_stat_xact_user_tables WHERE relid = "
                               "'audit_heads'::regclass) = (SELECT count(*) "
                               "FROM audit_log a WHERE a.merchant_id = $1 AND "
                               "a.xmin::text = pg_current_xact_id()::text AND "
                               "a.seq % 8 = 1 AND a.seq > 1)) || ' ' || "
                               "(SELECT n_tup_ins FROM pg_stat_xact_user_tables "
                               "WHERE relid = 'audit_log'::regclass)", 1, co),
                     "true 1");
    cr_expect_str_eq(db_scalar("SELECT status || ' ' || psp_payment_ref FROM "
                               "checkouts WHERE merchant_id = $1 AND "
                               "checkout_id = $2", 2, co),
                     str_printf("SUCCESS %s", first));
    pp[0] = ev[0];
    pp[1] = first;
    pp[2] = co[0];
    pp[3] = co[1];
    cr_expect_str_eq(psp_payments_of(pp), "1");

    /* a later answer with another reference: a second payment at the
     * PSP, booked nowhere and alerted (mismatch); the first one stays */
    ref = uid("pi");
    ev[2] = ref;
    cr_expect_str_eq(apply(ev), "mismatch");
    cr_expect_eq(count_of(LEDGER_TXNS, &p), 2, "the second payment was "
                 "booked");
    ev[2] = first;
    cr_expect_str_eq(apply(ev), "already");
    ev[2] = ref;
    cr_expect_str_eq(payment_ref_of(co), first);
    pp[1] = ref;
    cr_expect_str_eq(psp_payments_of(pp), "0");
    db_exec("ROLLBACK", 0, NULL);

    /* paid with no reference, then one comes: it is noted then */
    db_exec("BEGIN", 0, NULL);
    ev[2] = "";
    cr_assert_str_eq(apply(ev), "applied");
    cr_expect_str_eq(payment_ref_of(co), "-");
    ev[2] = ref;
    cr_expect_str_eq(apply(ev), "already");
    cr_expect_str_eq(payment_ref_of(co), ref);
    cr_expect_str_eq(psp_payments_of(pp), "1");
    db_exec("ROLLBACK", 0, NULL);
}


/* pay_event_apply: one write of the checkout row */
Test(webhooks, a_paid_checkout_is_written_once_with_its_payment_reference)
{
    expect_paid_once_with_reference(paid_event);
}


/* pay_sweeper_apply: one write of the checkout row */
Test(webhooks, a_checkout_the_sweeper_finds_paid_is_written_once_with_its_payment_reference)
{
    expect_paid_once_with_reference(swept_event);
}


/* The database's own rule, without the core in front of it: SUCCEEDED
 * with no amount (-1) or an inexact one (-2) is an amount_mismatch. */
Test(webhooks, the_database_refuses_a_success_it_cannot_check)
{
    paid_t       p;
    const char  *params[4];

    register_checkout(&p);
    params[0] = env("PAY_TEST_PSP");
    /* psp_tokens holds the token's blind index (the gateway seals tokens
     * at rest): what the database looks the token up by */
    params[1] = test_blind_index(0, env("PAY_TEST_PSP"), p.token);
    params[2] = "-1";
    params[3] = "USD";
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, "
                               "'evt_db_' || md5(random()::text), "
                               "'SUCCEEDED', 'x', $2, '', $3::bigint, $4,"
                               " NULL, NULL, NULL)",
                               4, params), "amount_mismatch");
    params[2] = "-2";
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, "
                               "'evt_db_' || md5(random()::text), "
                               "'SUCCEEDED', 'x', $2, '', $3::bigint, $4,"
                               " NULL, NULL, NULL)",
                               4, params), "amount_mismatch");
    params[2] = "1500";
    params[3] = "";
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply($1, "
                               "'evt_db_' || md5(random()::text), "
                               "'SUCCEEDED', 'x', $2, '', $3::bigint, $4,"
                               " NULL, NULL, NULL)",
                               4, params), "amount_mismatch");
    cr_assert_str_eq(status_of(&p), "EXECUTING");
}


Test(webhooks, a_bad_signature_is_400_and_changes_nothing)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "paid", 0), time(NULL),
                "whsec_not_the_secret_at_all");
    expect_problem(r, 400, "bad_signature");
    cr_assert_str_eq(status_of(&p), "EXECUTING");
}


Test(webhooks, a_tampered_body_is_400)
{
    char     *body, *sig, *tampered;
    paid_t    p;
    req_t     rq;
    resp_t   *r;

    register_checkout(&p);
    body = stripe_event(uid("evt"), "checkout.session.completed", &p, 1500,
                        "paid", 0);
    sig = stripe_signature(webhook_secret(), time(NULL), body);
    tampered = strdup(body);
    *strstr(tampered, "1500") = '9';

    {
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
        rq.headers = h;
        rq.body = tampered;
        rq.len = (size_t) -1;
        r = http(&rq);
    }

    expect_problem(r, 400, "bad_signature");
}


Test(webhooks, a_missing_signature_is_400)
{
    req_t    rq;
    resp_t  *r;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
    rq.headers = h;
    rq.body = "{}";
    rq.len = (size_t) -1;
    r = http(&rq);

    expect_problem(r, 400, "bad_signature");
}


Test(webhooks, a_timestamp_301_s_old_is_stale)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "paid", 0), time(NULL) - 301,
                webhook_secret());
    expect_problem(r, 400, "stale_webhook");
}


Test(webhooks, a_timestamp_301_s_ahead_is_stale)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    /* 302: the second can tick between signing here and the check there
     * (the exact 300/301 boundary is a unit test's) */
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "paid", 0), time(NULL) + 302,
                webhook_secret());
    expect_problem(r, 400, "stale_webhook");
}


Test(webhooks, a_live_event_on_a_test_psp_is_refused)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "paid", 1), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 400, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");
}


/* It is authentic: kept once (state unreadable, outcome livemode) however
 * often it comes, nothing applied. */
Test(webhooks, a_live_event_on_a_test_psp_is_kept_once_unapplied)
{
    long         t;
    char        *body;
    paid_t       p;
    resp_t      *r;
    PGconn      *home;
    const char  *params[2];

    register_checkout(&p);
    body = stripe_event(uid("evt"), "checkout.session.completed", &p, 1500,
                        "paid", 1);
    t = time(NULL);
    r = deliver(body, t, webhook_secret());
    expect_problem(r, 400, "bad_signature");
    r = deliver(body, t, webhook_secret());
    expect_problem(r, 400, "bad_signature");

    home = shards_n() > 1 ? db_shard("a") : db();
    params[0] = env("PAY_TEST_PSP");
    params[1] = body;
    cr_expect_str_eq(db_scalar_on(home, "SELECT count(*) || ' ' || "
                                  "string_agg(state || ' ' || outcome || ' ' "
                                  "|| (event_id = 'unreadable:' || encode("
                                  "sha256(body), 'hex'))::text, ',') FROM "
                                  "psp_events WHERE psp = $1 AND body = "
                                  "convert_to($2, 'UTF8')", 2, params),
                     "1 unreadable livemode true", "%s", body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");
}


Test(webhooks, an_unknown_psp_is_404)
{
    req_t    rq;
    resp_t  *r;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = gw_url("/v1/webhooks/nosuchpsp");
    rq.headers = h;
    rq.body = "{}";
    rq.len = (size_t) -1;
    r = http(&rq);

    expect_problem(r, 404, "not_found");
}


/* nginx's own auth_basic and allow/deny in front of a PSP's webhooks */

static resp_t *
deliver_guarded(const char *psp, const char *body, const char *auth)
{
    char    *sig;
    req_t    rq;

    sig = stripe_signature(webhook_secret(), time(NULL), body);

    {
        const char  *h[] = { "Content-Type: application/json", sig, auth,
                             NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", psp));
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;
        return http(&rq);
    }
}


Test(webhooks, behind_auth_basic_only_the_psps_password_gets_through)
{
    paid_t   p;
    char    *body, *good, *bad;
    json_t  *co;
    resp_t  *r;

    /* a checkout on the guarded PSP */
    merchant_new(&p.m);
    p.co = uid("co");
    co = checkout_new(p.co, 2);
    json_object_set_new(co, "psp", json_string("mock_guarded"));
    r = register_ok(&p.m, uid("key"), dump(co));
    p.token = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));

    body = stripe_event(uid("evt"), "checkout.session.completed", &p, 1500,
                        "paid", 0);
    /* "psp:webhook-pass-e2e" and "psp:wrong" */
    good = "Authorization: Basic cHNwOndlYmhvb2stcGFzcy1lMmU=";
    bad = "Authorization: Basic cHNwOndyb25n";

    r = deliver_guarded("mock_guarded", body, "X-No-Auth: 1");
    cr_assert_eq(r->status, 401, "%s", r->body);
    r = deliver_guarded("mock_guarded", body, bad);
    cr_assert_eq(r->status, 401, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "EXECUTING");

    r = deliver_guarded("mock_guarded", body, good);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
    cr_assert_eq(count_of(LEDGER_TXNS, &p), 2);
}


Test(webhooks, an_address_off_the_allow_list_is_refused_by_nginx)
{
    resp_t  *r;

    r = deliver_guarded("mock_elsewhere", "{}", "X-No-Auth: 1");
    cr_assert_eq(r->status, 403, "%s", r->body);
}


/* the shopper's way back */


/* the return URLs the PSP was given, read back from the mock's session */

static char *
return_url(const paid_t *p, const char *param)
{
    char    *auth;
    req_t    rq;
    resp_t  *r;
    json_t  *j;

    auth = str_printf("Authorization: Bearer %s",
                      file_read(run_file("conf/psp.secret"), NULL));

    {
        const char  *h[] = { auth, NULL };

        rq.method = "GET";
        rq.url = mock_url(str_printf("/v1/checkout/sessions/%s", p->token));
        rq.headers = h;
        rq.body = NULL;
        rq.len = 0;
        r = http(&rq);
    }

    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);

    return gw_url_for(json_string_value(json_object_get(j, param)));
}


Test(return_page, an_unsettled_success_return_shows_the_pending_page)
{
    paid_t        p;
    resp_t       *r;
    const char   *csp;

    register_checkout(&p);
    r = http_get(return_url(&p, "success_url"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert(mem_contains(r->body, r->len, "/v1/static/pending.js"));
    cr_assert(!mem_contains(r->body, r->len, "<script>"), "no inline script");
    csp = resp_header(r, "Content-Security-Policy");
    cr_assert_not_null(csp);
    cr_assert(strstr(csp, "unsafe-inline") == NULL);
    cr_assert_str_eq(resp_header(r, "Cache-Control"), "no-store");
    cr_assert_str_eq(resp_header(r, "Referrer-Policy"), "no-referrer");
    cr_assert_str_eq(resp_header(r, "X-Frame-Options"), "DENY");
}


Test(return_page, a_paid_checkout_returns_to_the_shops_success_url)
{
    paid_t   p;
    resp_t  *r;

    paid_checkout(&p);

    r = http_get(return_url(&p, "success_url"));
    cr_assert_eq(r->status, 303, "%s", r->body);
    cr_assert_str_eq(resp_header(r, "Location"), SHOP_ORIGIN "/thanks");
}


Test(return_page, the_cancel_path_returns_to_the_cancel_url_and_moves_nothing)
{
    paid_t   p;
    resp_t  *r;

    register_checkout(&p);
    r = http_get(return_url(&p, "cancel_url"));
    cr_assert_eq(r->status, 303, "%s", r->body);
    cr_assert_str_eq(resp_header(r, "Location"), SHOP_ORIGIN "/cart");
    cr_assert_str_eq(status_of(&p), "EXECUTING");
}


/*
 * A shopper coming back after the merchant removed the origin of its
 * success_url and cancel_url (a domain it gave up, which someone else may
 * hold now) is not sent there: the gateway's own page says the payment was
 * received, or to go back to the shop.  (It was a 303 to the removed
 * origin: only new registrations were refused it.)  With the origin back,
 * the 303 again.
 */
Test(return_page, a_return_to_an_origin_the_merchant_removed_stays_at_the_gateway)
{
    paid_t       p;
    resp_t      *r;
    const char  *params[2];

    paid_checkout(&p);

    params[0] = p.m.id;
    params[1] = "https://moved.example";
    db_exec("UPDATE merchant_return_origins SET origin = $2 "
            "WHERE merchant_id = $1", 2, params);

    r = http_get(return_url(&p, "success_url"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_null(resp_header(r, "Location"), "sent to the removed origin");
    cr_assert(mem_contains(r->body, r->len, "Payment received"), "%s",
              r->body);

    r = http_get(return_url(&p, "cancel_url"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_null(resp_header(r, "Location"), "sent to the removed origin");
    cr_assert(mem_contains(r->body, r->len, "return to the shop"), "%s",
              r->body);

    params[1] = SHOP_ORIGIN;
    db_exec("UPDATE merchant_return_origins SET origin = $2 "
            "WHERE merchant_id = $1", 2, params);

    r = http_get(return_url(&p, "success_url"));
    cr_assert_eq(r->status, 303, "%s", r->body);
    cr_assert_str_eq(resp_header(r, "Location"), SHOP_ORIGIN "/thanks");
}


Test(return_page, a_forged_return_token_is_a_403_page)
{
    paid_t   p;
    resp_t  *r;
    char    *url;

    register_checkout(&p);
    url = return_url(&p, "success_url");
    url[strlen(url) - 3] = url[strlen(url) - 3] == 'A' ? 'B' : 'A';
    r = http_get(url);
    expect_forbidden_page(r);
}


Test(return_page, the_status_poll_says_pending_then_paid)
{
    char     *page, *start, *end, *status_url;
    paid_t    p;
    resp_t   *r;

    register_checkout(&p);
    r = http_get(return_url(&p, "success_url"));
    cr_assert_eq(r->status, 200, "%s", r->body);

    page = r->body;
    start = strstr(page, "data-status-url=\"");
    cr_assert_not_null(start);
    start += strlen("data-status-url=\"");
    end = strchr(start, '"');
    status_url = strndup(start, (size_t) (end - start));

    r = gw_get(status_url);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")), "pending");
    cr_assert(!mem_contains(r->body, r->len, "1500"), "no amounts");

    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", &p,
                             1500, "paid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);

    r = gw_get(status_url);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")), "paid");
}


Test(return_page, the_pending_script_is_served_as_javascript)
{
    resp_t  *r;

    r = gw_get("/v1/static/pending.js");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert(strncmp(resp_header(r, "Content-Type"), "text/javascript", 15)
              == 0);
    cr_assert(mem_contains(r->body, r->len, "data-status-url"));
}


/* the audit log: hash-chained per merchant, append-only */


Test(audit, the_merchants_chain_verifies_after_its_events)
{
    paid_t        p;
    resp_t       *r;
    const char   *params[1];

    paid_checkout(&p);
    r = deliver(stripe_event(uid("evt"), "checkout.session.expired", &p, 1500,
                             "unpaid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);

    /* the registration's claim, then the two events, in the checkout's
     * chain (chain 0 holds the row that opened the chains: 015) */
    params[0] = p.m.id;
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND chain > 0", 1, params),
                     "3");
    cr_assert_str_eq(db_scalar("SELECT action FROM audit_log WHERE "
                               "merchant_id = $1 AND chain > 0 AND seq = 1",
                               1, params),
                     "registration:claimed");
    cr_assert_str_eq(db_scalar("SELECT action FROM audit_log WHERE "
                               "merchant_id = $1 AND chain > 0 AND seq = 3",
                               1, params),
                     "webhook:late_contrary");
    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, params),
                     "t");
}


Test(audit, tampering_with_a_row_breaks_the_chain)
{
    paid_t        p;
    const char   *params[1];

    paid_checkout(&p);

    params[0] = p.m.id;
    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, params),
                     "t");

    /* as the owner, with the guard off inside this one transaction */
    db_exec(str_printf("DO $$ BEGIN "
                       "ALTER TABLE audit_log DISABLE TRIGGER "
                       "audit_log_no_change; "
                       "UPDATE audit_log SET detail = '{\"amount\":1}' "
                       "WHERE merchant_id = '%s'; "
                       "ALTER TABLE audit_log ENABLE TRIGGER "
                       "audit_log_no_change; END $$", p.m.id), 0, NULL);

    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, params),
                     "f");
}


static char *
sql_error_of(const char *sql)
{
    char      *err;
    PGconn    *c;
    PGresult  *res;

    c = PQconnectdb(env("PAY_TEST_PG"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    res = PQexec(c, sql);
    err = PQresultStatus(res) == PGRES_FATAL_ERROR
          ? strdup(PQresultErrorMessage(res)) : NULL;
    PQclear(res);
    PQfinish(c);

    return err;
}


Test(audit, the_log_refuses_updates_and_deletes_even_by_its_owner)
{
    char     *err;
    paid_t    p;

    paid_checkout(&p);

    err = sql_error_of(str_printf("UPDATE audit_log SET action = 'x' "
                                  "WHERE merchant_id = '%s'", p.m.id));
    cr_assert(err && strstr(err, "append-only"), "%s", err ? err : "none");

    err = sql_error_of(str_printf("DELETE FROM audit_log WHERE merchant_id "
                                  "= '%s'", p.m.id));
    cr_assert(err && strstr(err, "append-only"), "%s", err ? err : "none");

    err = sql_error_of(str_printf("DELETE FROM ledger_entries WHERE "
                                  "merchant_id = '%s'", p.m.id));
    cr_assert(err && strstr(err, "append-only"), "%s", err ? err : "none");
}


/* The audit chain (sql/functions/audit_log_link.sql): a chain's head is
 * its last row, linked by the log itself; its anchor (audit_heads) moves
 * only forward, to a row the chain has: it cannot be moved on to a
 * history the log does not hold. */
Test(audit, an_anchor_moves_only_to_a_row_of_its_chain)
{
    char        *err;
    paid_t       p;
    const char  *params[2];

    register_checkout(&p);
    params[0] = p.m.id;
    params[1] = p.co;

    /* the claim's row is its chain's head: the last row, linked to the
     * one before it (none: the chain's first) */
    cr_assert_str_eq(db_scalar("SELECT seq || ' ' || encode(prev_hash, 'hex') || ' ' || "
                               "(hash = audit_chain_hash(prev_hash, merchant_id, chain, seq, "
                               "at, checkout_id, action, detail)) FROM audit_log "
                               "WHERE merchant_id = $1 AND chain = audit_chain_of($2) "
                               "ORDER BY seq LIMIT 1", 2, params),
                     "1  true");

    err = sql_error_of(str_printf("UPDATE audit_heads SET seq = seq + 1, "
                                  "prev_hash = '\\x00', hash = '\\x01' "
                                  "WHERE merchant_id = '%s' AND chain = "
                                  "audit_chain_of('%s')", p.m.id, p.co));
    cr_assert(err && strstr(err, "only moves forward"), "%s",
              err ? err : "none");
    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, params),
                     "t");
}


Test(audit, an_unbalanced_ledger_transaction_is_refused)
{
    char     *err;
    paid_t    p;

    paid_checkout(&p);

    /* one DO block is one transaction: the deferred check runs at its end */
    err = sql_error_of(str_printf(
        "DO $$ DECLARE t bigint; BEGIN "
        "INSERT INTO ledger_transactions (merchant_id, checkout_id, "
        "payment_order_id, source) VALUES ('%s', '%s', '%s_p1', 'test') "
        "RETURNING txn_id INTO t; "
        "INSERT INTO ledger_entries VALUES ('%s', t, 1, 'a', 100, 'USD'), "
        "('%s', t, 2, 'b', -99, 'USD'); END $$",
        p.m.id, p.co, p.co, p.m.id, p.m.id));
    cr_assert(err && strstr(err, "not balanced"), "%s", err ? err : "none");
}


/* The paid checkout's first ledger transaction, for the tests below. */
static char *
booked_txn(const paid_t *p)
{
    resp_t      *r;
    const char  *params[1];

    r = deliver(stripe_event(uid("evt"), "checkout.session.completed", p,
                             1500, "paid", 0), time(NULL), webhook_secret());
    cr_assert_eq(r->status, 200, "%s", r->body);
    params[0] = p->m.id;

    return db_scalar("SELECT min(txn_id) FROM ledger_transactions WHERE"
                     " merchant_id = $1", 1, params);
}


Test(audit, an_entry_that_leaves_a_booked_transaction_off_balance_is_refused_by_its_statement,
     .description = "the balance of each ledger transaction an INSERT of entries wrote is checked when that statement ends, not at commit: an entry added to a transaction booked before is refused before the next statement of the same database transaction runs")
{
    char    *err, *txn;
    paid_t   p;

    register_checkout(&p);
    txn = booked_txn(&p);
    cr_assert_not_null(txn);

    /* checked at commit, the block would end at its own exception first */
    err = sql_error_of(str_printf(
        "DO $$ BEGIN INSERT INTO ledger_entries VALUES ('%s', %s, 9, "
        "'psp_clearing:stripe', 5, 'USD'); RAISE EXCEPTION 'not checked'; "
        "END $$", p.m.id, txn));
    cr_assert(err && strstr(err, "not balanced"), "%s", err ? err : "none");
    cr_assert(strstr(err, " entries, USD off)") != NULL, "%s", err);
}


Test(audit, a_ledger_transaction_balances_in_each_of_its_currencies,
     .description = "entries of two currencies in one transaction: zero in each is booked; zero in total but not in each is refused, naming the first currency off")
{
    char    *err;
    paid_t   p;

    register_checkout(&p);
    (void) booked_txn(&p);

    err = sql_error_of(str_printf(
        "WITH t AS (INSERT INTO ledger_transactions (merchant_id, checkout_id,"
        " payment_order_id, source) VALUES ('%s', '%s', '%s_p1', 'test')"
        " RETURNING txn_id) INSERT INTO ledger_entries SELECT '%s', t.txn_id,"
        " e.n, e.a, e.x, e.c FROM t, (VALUES (1, 'a', 100, 'USD'), (2, 'b',"
        " -100, 'USD'), (3, 'a', 5, 'EUR'), (4, 'b', -5, 'EUR')) e(n, a, x,"
        " c)", p.m.id, p.co, p.co, p.m.id));
    cr_assert_null(err, "%s", err);

    err = sql_error_of(str_printf(
        "WITH t AS (INSERT INTO ledger_transactions (merchant_id, checkout_id,"
        " payment_order_id, source) VALUES ('%s', '%s', '%s_p1', 'test')"
        " RETURNING txn_id) INSERT INTO ledger_entries SELECT '%s', t.txn_id,"
        " e.n, e.a, e.x, e.c FROM t, (VALUES (1, 'a', 100, 'USD'), (2, 'b',"
        " -100, 'EUR')) e(n, a, x, c)", p.m.id, p.co, p.co, p.m.id));
    cr_assert(err && strstr(err, "(2 entries, EUR off)"), "%s",
              err ? err : "none");
}


Test(audit, a_ledger_transaction_left_without_entries_is_refused_at_commit)
{
    char    *err;
    paid_t   p;

    register_checkout(&p);
    (void) booked_txn(&p);

    err = sql_error_of(str_printf(
        "INSERT INTO ledger_transactions (merchant_id, checkout_id,"
        " payment_order_id, source) VALUES ('%s', '%s', '%s_p1', 'test')",
        p.m.id, p.co, p.co));
    cr_assert(err && strstr(err, "not balanced (0 entries"), "%s",
              err ? err : "none");
}


/* {psp} in /v1/return/{psp}/{checkout} must be the checkout's own PSP */

static void
expect_not_found_page(const resp_t *r)
{
    cr_assert_eq(r->status, 404, "expected 404, got %ld: %s", r->status,
                 r->body);
    cr_assert_null(resp_header(r, "Location"), "Location %s",
                   resp_header(r, "Location"));
    cr_assert(strncmp(resp_header(r, "Content-Type"), "text/html", 9) == 0);
    expect_request_id(r);
}


/* url with its /v1/return/<psp>/ replaced by /v1/return/<other>/ */
static char *
return_url_via(const char *url, const char *other)
{
    const char  *start, *end;

    start = strstr(url, "/v1/return/");
    cr_assert_not_null(start, "%s", url);
    start += strlen("/v1/return/");
    end = strchr(start, '/');
    cr_assert_not_null(end, "%s", url);

    return str_printf("%.*s%s%s", (int) (start - url), url, other, end);
}


Test(return_page, another_psp_in_the_return_path_is_a_404_page)
{
    paid_t   p;
    resp_t  *r;
    char    *url;

    register_checkout(&p);
    url = return_url(&p, "success_url");

    /* a configured PSP, but not this checkout's */
    r = http_get(return_url_via(url, "mock_adyen"));
    expect_not_found_page(r);
    r = http_get(return_url_via(return_url(&p, "cancel_url"),
                                "mock_generic"));
    expect_not_found_page(r);

    /* no such PSP */
    r = http_get(return_url_via(url, "no_such_psp"));
    expect_not_found_page(r);

    /* the right one still works */
    r = http_get(url);
    cr_assert_eq(r->status, 200, "%s", r->body);
}
