/*
 * End to end: the risk check asked again after the payment (payments_risk
 * after_payment=on, doc/RISK.md).  A gateway of the test's own
 * (gateway_start) on the suite's PostgreSQL, mock PSP and the mock's risk
 * provider, with a sweeper in a hurry (a round every 300 ms) and
 * after_payment_retry=3s; the mock's PSP never sends the webhook, so the
 * sweeper books the payment, and a later round asks the provider again.
 * The provider's after- knobs (tests/mock_psp/risk.c) allow the first
 * check and answer the second one: risk-after-deny@, risk-after-500@.
 *
 * A solo suite: the sweeper's lease is the database's one, and its rounds
 * ask about every paid checkout the first check saw.
 */

#include "harness.h"

#include <string.h>


#define RA_CONF                                                               \
    "payments_sweeper on interval=300ms after=1s retry=1s alert=60s "         \
    "grace=1s batch=50;\n"


static gateway_t  ra_gw;


static void
ra_stop(void)
{
    gateway_stop(&ra_gw);
}


static void
ra_start(void)
{
    int   i;
    char *conf;

    conf = str_printf("payments_database \"%s\";\n"
                      "payments_database_pool 2;\n"
                      "%s" RA_CONF
                      "payments_risk url=%s/risk secret_file=%s "
                      "answer_secret_file=%s timeout=500ms "
                      "connect_timeout=500ms allow_http after_payment=on "
                      "after_payment_retry=3s;\n",
                      pg_gateway_conninfo(),
                      gw_psp_conf("ra_stripe", "stripe"),
                      env("PAY_TEST_RISK"), run_file("conf/risk.secret"),
                      run_file("conf/risk_answer.secret"));

    gateway_start(&ra_gw, "risk-after", 1, conf);
    gateway_wait_ready(&ra_gw, 10);

    /* an earlier suite's sweeper may hold the lease until it runs out */
    for (i = 0; i < 150; i++) {
        if (gateway_metric(&ra_gw, "payments_sweeper_leader") == 1) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("the gateway never took the sweeper lease");
}


static char *
ra_db(const char *sql, const merchant_t *m, const char *co_id)
{
    return db_scalar(sql, 2, (const char *[]) { m->id, co_id });
}


static long
ra_asked_after(const char *co_id)
{
    long     n;
    resp_t  *r;

    r = http_get(str_printf("%s/_control/asked?checkout_id=%s"
                            "&phase=after_payment", env("PAY_TEST_RISK"),
                            co_id));
    cr_assert_eq(r->status, 200, "the mock's risk control: %ld %s",
                 r->status, r->body);
    n = (long) json_integer_value(json_object_get(resp_json(r),
                                                  "requests"));
    resp_free(r);

    return n;
}


/* a checkout of the buyer's e-mail registered through the gateway (its
 * first check asked), paid at the mock, booked by the sweeper */
static char *
ra_paid(merchant_t *m, const char *email)
{
    int       i;
    char     *co_id, *s;
    json_t   *co;
    resp_t   *r;
    req_t     rq;

    co_id = uid("co_ra");
    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(m, co_id)));

    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("ra_stripe"));
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string(email));

    r = gateway_send(&ra_gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "registration: %ld %s", r->status, r->body);
    secret_used(json_string_value(json_object_get(resp_json(r),
                                                  "psp_token")));
    secret_used(url_param(json_string_value(json_object_get(resp_json(r),
                                                            "pay_url")),
                          "t"));

    /* asked once before its PSP, allowed */
    cr_assert_str_eq(ra_db("SELECT verdict FROM checkout_risk "
                           "WHERE merchant_id = $1 AND checkout_id = $2",
                           m, co_id), "allow");

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay",
                                 url_escape(json_string_value(
                                     json_object_get(resp_json(r),
                                                     "psp_token")))));
    rq.body = "";
    rq.len = 0;
    resp_free(r);

    r = http(&rq);
    cr_assert_eq(r->status, 200, "mock pay: %ld %s", r->status, r->body);
    resp_free(r);

    for (i = 0; i < 200; i++) {
        s = ra_db("SELECT status::text FROM checkouts "
                  "WHERE merchant_id = $1 AND checkout_id = $2", m, co_id);
        if (strcmp(s, "SUCCESS") == 0) {
            return co_id;
        }

        msleep(100);
    }

    cr_assert_fail("checkout %s was never booked SUCCESS", co_id);
    return NULL;
}


/* what a failed wait reports: whether the gateway still leads the sweep,
 * the checkout's place on the due list, the list's length and its oldest
 * row's age, and how often the provider was asked about it after the
 * payment (it named the row that stopped every round: "on the due list:
 * true; asked 0", a_paid_checkout_with_no_orders_does_not_stop_the_round) */
static char *ra_due(const merchant_t *m, const char *co_id);

static char *
ra_state(const merchant_t *m, const char *co_id)
{
    return str_printf("the gateway leads the sweep: %ld; on the due list: %s; "
                      "due rows: %s; asked after the payment: %ld",
                      gateway_metric(&ra_gw, "payments_sweeper_leader"),
                      ra_due(m, co_id),
                      db_scalar("SELECT count(*) || ', the oldest decided "
                                "' || coalesce(floor(extract(epoch FROM "
                                "now() - min(decided_at)))::text, '-') "
                                "|| ' s ago' FROM checkout_risk_after_due",
                                0, NULL),
                      ra_asked_after(co_id));
}


/* the after-payment verdict once recorded: "verdict:source:reason" */
static char *
ra_wait_recorded(const merchant_t *m, const char *co_id, int seconds)
{
    int    i;
    char  *s;

    for (i = 0; i < seconds * 10; i++) {
        s = ra_db("SELECT verdict || ':' || source || ':' || "
                  "coalesce(reason, '') FROM checkout_risk_after "
                  "WHERE merchant_id = $1 AND checkout_id = $2", m, co_id);
        if (s != NULL && s[0] != '\0') {
            return s;
        }

        msleep(100);
    }

    cr_assert_fail("no verdict after the payment on %s in %d s (%s)", co_id,
                   seconds, ra_state(m, co_id));
    return NULL;
}


/* whether the checkout is on the round's due list
 * (checkout_risk_after_due): "true" or "false" */
static char *
ra_due(const merchant_t *m, const char *co_id)
{
    return ra_db("SELECT EXISTS (SELECT 1 FROM checkout_risk_after_due "
                 "WHERE merchant_id = $1 AND checkout_id = $2)::text",
                 m, co_id);
}


/* the money as booked: its ledger transactions and their entries' sum,
 * and the refunds */
static char *
ra_money(const merchant_t *m, const char *co_id)
{
    return ra_db("SELECT (SELECT count(*) FROM ledger_transactions t "
                 "        WHERE t.merchant_id = $1 AND t.checkout_id = $2) "
                 "|| ':' || (SELECT coalesce(sum(e.amount), 0) "
                 "        FROM ledger_entries e JOIN ledger_transactions t "
                 "        USING (merchant_id, txn_id) "
                 "        WHERE t.merchant_id = $1 AND t.checkout_id = $2 "
                 "          AND e.amount > 0) "
                 "|| ':' || (SELECT count(*) FROM refunds r "
                 "        WHERE r.merchant_id = $1 AND r.checkout_id = $2)",
                 m, co_id);
}


static json_t *
ra_checkout(const merchant_t *m, const char *co_id)
{
    json_t  *j;
    resp_t  *r;

    r = api_get(m, str_printf("/v1/checkouts/%s", co_id));
    cr_assert_eq(r->status, 200, "GET checkout: %ld %s", r->status, r->body);
    j = json_incref(resp_json(r));
    resp_free(r);

    return j;
}


static char *
ra_audit(const merchant_t *m, const char *co_id)
{
    return ra_db("SELECT coalesce(string_agg(action, ',' ORDER BY seq), '') "
                 "FROM audit_log WHERE merchant_id = $1 AND checkout_id = $2 "
                 "AND action LIKE 'risk:%'", m, co_id);
}


TestSuite(solo_risk_after, .init = ra_start, .fini = ra_stop,
          .timeout = 120);


/*
 * The round walks the due list oldest first.  A paid, risk-checked
 * checkout with no payment orders (its orders NULL in the round's rows)
 * ended the whole round, at every round, before any other was asked
 * about: planted by the sql suite's purge test on the database this suite
 * shares when it runs in the main lane, it failed the three tests above
 * (asked 0 times, on the due list: true).  A setup (amount 0, a method
 * saved, no money taken) is risk-checked like any checkout and was listed
 * the same way; it is neither listed nor taken now.
 */
Test(solo_risk_after, a_paid_checkout_with_no_orders_does_not_stop_the_round)
{
    char        *bare, *co_id;
    merchant_t   m;

    merchant_new(&m);
    bare = uid("co_ra_bare");

    /* paid 6 days after its check, no orders: the oldest on the list */
    db_exec("SET session_replication_role = replica", 0, NULL);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, "
            "currency, amount_total, success_url, cancel_url, status, "
            "psp_request, expires_at) VALUES ($1, $2, 'ra_stripe', "
            "$1 || ':' || $2, 'EUR', 100, 'https://shop.example/s', "
            "'https://shop.example/c', 'SUCCESS', 'r', "
            "now() + interval '1 day')", 2,
            (const char *[]) { m.id, bare });
    db_exec("INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, "
            "score, reason, source, decided_at) VALUES ($1, $2, 'allow', 1, "
            "'ok', 'provider', now() - interval '6 days')", 2,
            (const char *[]) { m.id, bare });
    db_exec("INSERT INTO checkout_risk_after_due (merchant_id, checkout_id, "
            "decided_at) SELECT merchant_id, checkout_id, decided_at "
            "FROM checkout_risk WHERE merchant_id = $1 AND checkout_id = $2",
            2, (const char *[]) { m.id, bare });
    db_exec("RESET session_replication_role", 0, NULL);

    /* a setup the check asked about (amount 0: a method saved, no money
     * taken), then saved: not listed by its SUCCESS, and passed over by
     * the round when listed (migration 137's backfill listed setups) */
    db_exec("SET session_replication_role = replica", 0, NULL);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, "
            "currency, amount_total, success_url, cancel_url, status, "
            "psp_request, expires_at) SELECT $1, $2 || g, 'ra_stripe', "
            "$1 || ':' || $2 || g, 'EUR', 0, 'https://shop.example/s', "
            "'https://shop.example/c', "
            "(CASE g WHEN 1 THEN 'EXECUTING' ELSE 'SUCCESS' END)::pay_status, "
            "'r', now() + interval '1 day' FROM generate_series(1, 2) g", 2,
            (const char *[]) { m.id, bare });
    db_exec("INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, "
            "score, reason, source, decided_at) SELECT $1, $2 || g, 'allow', "
            "1, 'ok', 'provider', now() - interval '6 days' "
            "FROM generate_series(1, 2) g", 2,
            (const char *[]) { m.id, bare });
    db_exec("INSERT INTO checkout_risk_after_due (merchant_id, checkout_id, "
            "decided_at) VALUES ($1, $2 || '2', now() - interval '6 days')",
            2, (const char *[]) { m.id, bare });
    db_exec("RESET session_replication_role", 0, NULL);
    db_exec("UPDATE checkouts SET status = 'SUCCESS' WHERE merchant_id = $1 "
            "AND checkout_id = $2 || '1'", 2, (const char *[]) { m.id, bare });
    cr_assert_str_eq(ra_due(&m, str_printf("%s1", bare)), "false");

    co_id = ra_paid(&m, "ann@example.com");
    cr_assert_str_eq(ra_wait_recorded(&m, co_id, 60), "allow:provider:");

    /* no request can be made of it: asked again, then unchecked */
    cr_assert_str_eq(ra_wait_recorded(&m, bare, 30),
                     "unchecked:on_error:unavailable");
    cr_assert_str_eq(ra_due(&m, bare), "false");
    /* the listed setup, its SUCCESS as old as bare's: passed over, where
     * a round that took it would have recorded it unchecked by now */
    cr_assert_str_eq(ra_due(&m, str_printf("%s2", bare)), "true");
    cr_assert_str_eq(ra_db("SELECT count(*) FROM checkout_risk_after "
                           "WHERE merchant_id = $1 AND checkout_id = $2",
                           &m, str_printf("%s2", bare)), "0");
    cr_assert(file_contains(ra_gw.error_log,
                            str_printf("risk check after payment of checkout "
                                       "\"%s\" of merchant \"%s\": no "
                                       "request", bare, m.id)),
              "no error line in %s", ra_gw.error_log);
}


Test(solo_risk_after, an_allow_is_recorded_without_an_alert)
{
    char        *co_id;
    json_t      *co, *after;
    merchant_t   m;

    merchant_new(&m);
    co_id = ra_paid(&m, "ann@example.com");

    cr_assert_str_eq(ra_wait_recorded(&m, co_id, 60), "allow:provider:");
    cr_assert_str_eq(ra_audit(&m, co_id), "risk:allow,risk:after_allow");

    co = ra_checkout(&m, co_id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "SUCCESS");
    after = json_object_get(json_object_get(co, "risk"), "after_payment");
    cr_assert_str_eq(json_string_value(json_object_get(after, "verdict")),
                     "allow");
    cr_assert_eq(json_integer_value(json_object_get(after, "score")), 10);
    json_decref(co);

    cr_assert_not(file_contains(ra_gw.error_log,
                                str_printf("checkout \"%s\" of merchant "
                                           "\"%s\" was paid", co_id, m.id)),
                  "an allow raised an alert");

    /* recorded: off the round's due list, never asked again, however
     * many rounds pass */
    cr_assert_str_eq(ra_due(&m, co_id), "false");
    cr_assert_eq(ra_asked_after(co_id), 1);
    msleep(1500);
    cr_assert_eq(ra_asked_after(co_id), 1, "asked again once recorded");
}


Test(solo_risk_after, a_deny_alerts_and_notifies_and_moves_no_money)
{
    char        *co_id, *money;
    double       before;
    json_t      *co, *after, *ds;
    endpoint_t   ep;
    merchant_t   m;

    merchant_new(&m);
    endpoint_add(&m, NULL, &ep);
    before = metric_value(ra_gw.origin,
                          "payments_risk_after_payment_total"
                          "{verdict=\"deny\"}");
    cr_assert_geq(before, 0, "no payments_risk_after_payment_total series");

    co_id = ra_paid(&m, "risk-after-deny@example.com");
    money = ra_money(&m, co_id);

    cr_assert_str_eq(ra_wait_recorded(&m, co_id, 60),
                     "deny:provider:mock.after_denied");
    cr_assert_str_eq(ra_audit(&m, co_id), "risk:allow,risk:after_deny");

    /* nothing reversed: still paid, the same ledger, no refund */
    cr_assert_str_eq(ra_money(&m, co_id), money);
    co = ra_checkout(&m, co_id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "SUCCESS");
    after = json_object_get(json_object_get(co, "risk"), "after_payment");
    cr_assert_str_eq(json_string_value(json_object_get(after, "verdict")),
                     "deny");
    cr_assert_str_eq(json_string_value(json_object_get(after, "reason")),
                     "mock.after_denied");
    cr_assert_str_eq(json_string_value(json_object_get(after, "source")),
                     "provider");
    json_decref(co);

    /* a person is told: the alert line and the metric */
    cr_assert(file_contains(ra_gw.error_log,
                            str_printf("checkout \"%s\" of merchant \"%s\" "
                                       "was paid and the risk provider now "
                                       "says deny (mock.after_denied)",
                                       co_id, m.id)),
              "no alert line in %s", ra_gw.error_log);
    cr_assert_geq(metric_value(ra_gw.origin,
                               "payments_risk_after_payment_total"
                               "{verdict=\"deny\"}"), before + 1);

    /* the merchant is told, and may refund */
    ds = receiver_wait(ep.name, "204", 2, 30);
    cr_assert_eq(deliveries_count(ds, "204", "checkout.succeeded"), 1);
    cr_assert_eq(deliveries_count(ds, "204", "checkout.risk_flagged"), 1);
    json_decref(ds);

    /* never asked twice */
    msleep(1000);
    cr_assert_eq(ra_asked_after(co_id), 1);
}


Test(solo_risk_after, a_provider_down_is_asked_again_then_unchecked)
{
    int          i;
    char        *co_id, *money;
    long         asked;
    merchant_t   m;

    merchant_new(&m);
    co_id = ra_paid(&m, "risk-after-500@example.com");
    money = ra_money(&m, co_id);

    /* asked again in later rounds, nothing recorded meanwhile */
    for (i = 0; i < 100 && ra_asked_after(co_id) < 2; i++) {
        msleep(100);
    }

    asked = ra_asked_after(co_id);
    cr_assert_geq(asked, 2, "not retried: asked %ld times (%s)", asked,
                  ra_state(&m, co_id));
    /* still due: its payment's commit listed it, and no verdict yet */
    cr_assert_str_eq(ra_due(&m, co_id), "true");

    /* after after_payment_retry=: unchecked, alerted, nothing reversed */
    cr_assert_str_eq(ra_wait_recorded(&m, co_id, 30),
                     "unchecked:on_error:unavailable");
    cr_assert_str_eq(ra_audit(&m, co_id), "risk:allow,risk:after_unchecked");
    cr_assert_str_eq(ra_db("SELECT status::text FROM checkouts "
                           "WHERE merchant_id = $1 AND checkout_id = $2",
                           &m, co_id), "SUCCESS");
    cr_assert_str_eq(ra_money(&m, co_id), money);
    cr_assert(file_contains(ra_gw.error_log,
                            str_printf("checkout \"%s\" of merchant \"%s\" "
                                       "was paid and the risk provider gave "
                                       "no usable answer", co_id, m.id)),
              "no alert line in %s", ra_gw.error_log);
    cr_assert_geq(metric_value(ra_gw.origin,
                               "payments_risk_after_payment_total"
                               "{verdict=\"unchecked\"}"), 1);

    /* recorded: off the due list, asked no more */
    cr_assert_str_eq(ra_due(&m, co_id), "false");
    asked = ra_asked_after(co_id);
    msleep(1000);
    cr_assert_eq(ra_asked_after(co_id), asked);
}
