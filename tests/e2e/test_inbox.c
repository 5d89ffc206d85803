/*
 * End to end: the event inbox.  Every webhook event that verifies is kept
 * raw (psp_events) and acknowledged once kept: one about a checkout not
 * registered yet is kept pending and applied, once, by the sweeper's round
 * after the checkout is registered; one with another system's reference is
 * kept foreign, never alerted; one never matched becomes unmatched after
 * the (short, here) window, alerted once and counted.  One whose
 * application fails (a check at the statement's end, or one deferred to
 * commit) fails alone: the round's others are applied, and it becomes
 * unmatched and alerted after the window.
 *
 * The suite's gateway runs without a sweeper: this suite starts one of its
 * own, a round every 300 ms, look-ups and alerts about checkouts far off
 * (after=1h), and unmatched=3s.  Its PSP is the suite's mock under the
 * name ib_stripe.  The inbox's retry is not the PSP's: it applies whatever
 * is pending in the database, as any gateway's round does; the lease holder
 * runs it, so the suite is a solo one: each test's gateway takes the lease
 * once the previous test's has run out.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"


#define IB_PSP  "ib_stripe"


static gateway_t  ib_gw;


static void
ib_start(void)
{
    gateway_start(&ib_gw, "inbox", 1,
                  str_printf("payments_database \"%s\";\n"
                             "payments_database_pool 2;\n"
                             "%s"
                             "payments_sweeper on interval=300ms after=1h "
                             "retry=1h alert=2h unmatched=3s;\n",
                             pg_gateway_conninfo(),
                             gw_psp_conf(IB_PSP, "stripe")));
    gateway_wait_ready(&ib_gw, 10);
}


static void
ib_stop(void)
{
    gateway_stop(&ib_gw);
}


TestSuite(solo_inbox, .init = ib_start, .fini = ib_stop, .timeout = 60);


/* A signed checkout.session.completed for reference ref, 15.00 USD. */
static char *
ib_event(const char *evt, const char *ref)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                      "\"checkout.session.completed\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":{\"id\":"
                      "\"%s\",\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s\",\"amount_total\":1500,"
                      "\"currency\":\"usd\",\"payment_status\":\"paid\","
                      "\"payment_intent\":\"%s\",\"status\":\"complete\"}}}",
                      evt, (long) time(NULL), uid("cs_test_ib"), ref,
                      uid("pi"));
}


static resp_t *
ib_deliver(const char *body)
{
    size_t   len;
    char    *secret, *sig;
    req_t    rq;

    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(secret);
    sig = stripe_signature(secret, (long) time(NULL), body);

    {
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        rq.method = "POST";
        rq.url = str_printf("%s/v1/webhooks/" IB_PSP, ib_gw.origin);
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


static void
ib_acknowledged(resp_t *r)
{
    cr_assert_eq(r->status, 200, "expected 200, got %ld: %s", r->status,
                 r->body);
}


static char *
ib_q(const char *sql, const char *a, const char *b)
{
    const char  *params[] = { a, b };

    return db_scalar(sql, b ? 2 : 1, params);
}


static char *
ib_state(const char *evt)
{
    return ib_q("SELECT string_agg(state, ',') FROM psp_events "
                "WHERE psp = '" IB_PSP "' AND event_id = $1", evt, NULL);
}


/* waits up to seconds for the event's state to be want */
static void
ib_state_within(const char *evt, const char *want, int seconds)
{
    int    i;
    char  *s = NULL;

    for (i = 0; i < seconds * 10; i++) {
        s = ib_state(evt);
        if (s != NULL && strcmp(s, want) == 0) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("event %s: state %s, expected %s", evt, s ? s : "(none)",
                   want);
}


/* the lines of the sweeper gateway's log at alert that name evt (and say
 * text, when not NULL) */
static long
ib_alerts_saying(const char *evt, const char *text)
{
    size_t   len;
    long     n = 0;
    char    *log, *line, *eol;

    log = file_read(ib_gw.error_log, &len);
    if (log == NULL) {
        return 0;
    }

    for (line = log; *line; line = eol + 1) {
        eol = strchr(line, '\n');
        if (eol == NULL) {
            eol = line + strlen(line);
        }

        *eol = '\0';
        n += (strstr(line, evt) != NULL && strstr(line, "[alert]") != NULL
              && (text == NULL || strstr(line, text) != NULL));

        if (eol == log + len) {
            break;
        }
    }

    return n;
}


static long
ib_alerts(const char *evt)
{
    return ib_alerts_saying(evt, NULL);
}


Test(solo_inbox, an_event_before_its_checkout_is_kept_pending_then_applied_once,
     .description = "acknowledged 200 and kept pending, not 404; applied "
                    "once by the sweeper's round after the checkout is "
                    "registered; its deliveries again change nothing")
{
    merchant_t   m;
    json_t      *co;
    resp_t      *r;
    char        *id = uid("co"), *evt = uid("evt_ib"), *body;
    double       late;

    merchant_new(&m);
    body = ib_event(evt, nonce(&m, id));
    late = metric_value(ib_gw.origin, "payments_webhook_inbox_total{psp=\""
                        IB_PSP "\",state=\"applied_late\"}");

    ib_acknowledged(ib_deliver(body));
    cr_assert_str_eq(ib_state(evt), "pending");
    cr_expect_str_eq(ib_q("SELECT count(*) FROM webhook_events "
                          "WHERE psp = '" IB_PSP "' AND event_id = $1", evt,
                          NULL), "0");

    /* kept raw: the signed bytes, the signature header, the key's id */
    cr_expect_str_eq(ib_q("SELECT (convert_from(body, 'UTF8') = $2)::text "
                          "FROM psp_events WHERE psp = '" IB_PSP "' "
                          "AND event_id = $1", evt, body), "true");
    cr_expect_str_eq(ib_q("SELECT (headers ? 'Stripe-Signature' "
                          "AND key_id LIKE 'sha256:%')::text FROM psp_events "
                          "WHERE psp = '" IB_PSP "' AND event_id = $1", evt,
                          NULL), "true");

    /* delivered again while pending: acknowledged, kept once */
    ib_acknowledged(ib_deliver(body));
    cr_assert_str_eq(ib_state(evt), "pending");

    co = json_loads(body_for(id), 0, NULL);
    cr_assert_not_null(co);
    json_object_set_new(co, "psp", json_string(IB_PSP));
    r = gateway_send(&ib_gw, "POST", PATH_PAYMENTS, &m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "registration: %ld %s", r->status, r->body);

    ib_state_within(evt, "applied", 15);
    cr_expect_str_eq(ib_q("SELECT status::text FROM checkouts "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          m.id, id), "SUCCESS");

    /* and delivered again once applied: nothing booked twice */
    ib_acknowledged(ib_deliver(body));
    msleep(1000);
    cr_expect_str_eq(ib_q("SELECT count(*) FROM webhook_events "
                          "WHERE psp = '" IB_PSP "' AND event_id = $1", evt,
                          NULL), "1");
    /* body_for's two orders: one payment transaction each */
    cr_expect_str_eq(ib_q("SELECT count(DISTINCT payment_order_id)::text || "
                          "'/' || count(*) FROM ledger_transactions "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          m.id, id), "2/2");
    cr_expect_geq(metric_value(ib_gw.origin, "payments_webhook_inbox_total"
                               "{psp=\"" IB_PSP "\",state=\"applied_late\"}"),
                  late + 1);
}


Test(solo_inbox, a_foreign_reference_is_kept_and_never_alerted,
     .description = "a reference outside the nonce format: acknowledged, "
                    "kept foreign, counted, never unmatched nor alerted")
{
    char    *evt = uid("evt_ib"), *ref = uid("POS-7/order ");
    double   foreign;

    foreign = metric_value(ib_gw.origin, "payments_webhook_inbox_total{psp=\""
                           IB_PSP "\",state=\"foreign\"}");

    ib_acknowledged(ib_deliver(ib_event(evt, ref)));
    cr_assert_str_eq(ib_state(evt), "foreign");
    cr_expect_geq(metric_value(ib_gw.origin, "payments_webhook_inbox_total"
                               "{psp=\"" IB_PSP "\",state=\"foreign\"}"),
                  foreign + 1);

    /* past the unmatched window and some rounds: still foreign, silent */
    msleep(4500);
    cr_expect_str_eq(ib_state(evt), "foreign");
    cr_expect_eq(ib_alerts(evt), 0, "a foreign event was alerted");
}


Test(solo_inbox, an_event_never_matched_is_unmatched_and_alerted_once,
     .description = "pending past unmatched=3s: unmatched, one alert line, "
                    "counted in /metrics")
{
    merchant_t   m;
    char        *evt = uid("evt_ib");
    double       unmatched;

    merchant_new(&m);
    unmatched = metric_value(ib_gw.origin, "payments_webhook_inbox_total{psp=\""
                             IB_PSP "\",state=\"unmatched\"}");

    ib_acknowledged(ib_deliver(ib_event(evt, nonce(&m, uid("co")))));
    cr_assert_str_eq(ib_state(evt), "pending");
    cr_expect_eq(ib_alerts(evt), 0);

    ib_state_within(evt, "unmatched", 15);
    msleep(1000);           /* some rounds more: still alerted once */
    cr_expect_eq(ib_alerts(evt), 1, "alerted %ld times", ib_alerts(evt));
    cr_expect_geq(metric_value(ib_gw.origin, "payments_webhook_inbox_total"
                               "{psp=\"" IB_PSP "\",state=\"unmatched\"}"),
                  unmatched + 1);
}


/* the check the tests below plant, and its function */
static char  *ib_refuse_trigger;


static void
ib_refuse_drop(void)
{
    if (ib_refuse_trigger != NULL) {
        db_exec(str_printf("DROP TRIGGER IF EXISTS %s ON ledger_transactions",
                           ib_refuse_trigger), 0, NULL);
        db_exec("DROP FUNCTION IF EXISTS e2e.inbox_refuse()", 0, NULL);
        ib_refuse_trigger = NULL;
    }
}


/* a constraint trigger (when: "DEFERRABLE INITIALLY DEFERRED", checked at
 * commit, or "" at the statement's end) that fails every ledger
 * transaction of m's checkout co */
static void
ib_refuse(const merchant_t *m, const char *co, const char *when)
{
    db_exec("CREATE SCHEMA IF NOT EXISTS e2e", 0, NULL);
    db_exec("CREATE OR REPLACE FUNCTION e2e.inbox_refuse() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'e2e: refused' "
            "USING ERRCODE = 'check_violation'; END $$", 0, NULL);
    db_exec("REVOKE ALL ON FUNCTION e2e.inbox_refuse() FROM PUBLIC", 0, NULL);
    ib_refuse_trigger = uid("e2e_tg");
    db_exec(str_printf("CREATE CONSTRAINT TRIGGER %s AFTER INSERT ON "
                       "ledger_transactions %s FOR EACH ROW WHEN "
                       "(NEW.merchant_id = %s AND NEW.checkout_id = %s) "
                       "EXECUTE FUNCTION e2e.inbox_refuse()",
                       ib_refuse_trigger, when,
                       PQescapeLiteral(db(), m->id, strlen(m->id)),
                       PQescapeLiteral(db(), co, strlen(co))), 0, NULL);
}


static void
ib_register(merchant_t *m, const char *id)
{
    json_t  *co;
    resp_t  *r;

    co = json_loads(body_for(id), 0, NULL);
    cr_assert_not_null(co);
    json_object_set_new(co, "psp", json_string(IB_PSP));
    r = gateway_send(&ib_gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "registration: %ld %s", r->status, r->body);
}


/* the refused event: nothing of it recorded, booked or moved; once past
 * unmatched=, unmatched and alerted once */
static void
ib_refused(merchant_t *m, const char *co, const char *evt)
{
    cr_expect_str_neq(ib_state(evt), "applied");
    cr_expect_str_eq(ib_q("SELECT count(*) FROM webhook_events "
                          "WHERE psp = '" IB_PSP "' AND event_id = $1",
                          evt, NULL), "0");
    cr_expect_str_eq(ib_q("SELECT count(*) FROM ledger_transactions "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          m->id, co), "0");

    ib_state_within(evt, "unmatched", 15);
    msleep(1000);           /* some rounds more: still alerted once */
    cr_expect_eq(ib_alerts(evt), 1, "alerted %ld times", ib_alerts(evt));
    /* its alert says what happened: it failed, it did not match nothing */
    cr_expect(ib_alerts_saying(evt, "could not be applied here") == 1,
              "the alert of %s does not say it could not be applied (%s)",
              evt, ib_gw.error_log);
    cr_expect_str_eq(ib_q("SELECT status::text FROM checkouts "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          m->id, co), "EXECUTING");
}


/*
 * A check deferred to commit (a constraint trigger DEFERRABLE INITIALLY
 * DEFERRED, as the ledger's balance and the notifications are) that
 * fails for one kept event is that event's alone: the round's other events
 * are applied, and the one it refuses is not, and becomes unmatched
 * (alerted) once past unmatched=.
 */
Test(solo_inbox, a_check_deferred_to_commit_fails_one_event_not_the_round,
     .fini = ib_refuse_drop,
     .description = "a deferred constraint trigger refuses one checkout's "
                    "ledger: the other kept event is applied by the round, "
                    "the refused one is not, and is unmatched and alerted")
{
    merchant_t   m;
    char        *bad = uid("co"), *good = uid("co");
    char        *evt_bad = uid("evt_ib"), *evt_good = uid("evt_ib");

    merchant_new(&m);

    /* both kept pending: neither checkout is here yet */
    ib_acknowledged(ib_deliver(ib_event(evt_bad, nonce(&m, bad))));
    ib_acknowledged(ib_deliver(ib_event(evt_good, nonce(&m, good))));
    cr_assert_str_eq(ib_state(evt_bad), "pending");
    cr_assert_str_eq(ib_state(evt_good), "pending");

    ib_refuse(&m, bad, "DEFERRABLE INITIALLY DEFERRED");

    /* the refused one first: every round that finds the other finds it */
    ib_register(&m, bad);
    ib_register(&m, good);

    ib_state_within(evt_good, "applied", 15);
    cr_expect_str_eq(ib_q("SELECT status::text FROM checkouts "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          m.id, good), "SUCCESS");
    ib_refused(&m, bad, evt_bad);
}


/*
 * An event whose application fails at once, past unmatched=, is
 * unmatched and alerted, and the round goes on with the others: an event
 * kept pending meanwhile is applied once its checkout is here.
 */
Test(solo_inbox, an_event_that_fails_past_the_window_is_unmatched_and_the_round_goes_on,
     .fini = ib_refuse_drop,
     .description = "a constraint trigger refuses one checkout's ledger at "
                    "once: its kept event is unmatched and alerted after "
                    "unmatched=3s, and an event kept meanwhile is applied")
{
    merchant_t   m;
    char        *bad = uid("co"), *good = uid("co");
    char        *evt_bad = uid("evt_ib"), *evt_good = uid("evt_ib");

    merchant_new(&m);

    ib_acknowledged(ib_deliver(ib_event(evt_bad, nonce(&m, bad))));
    ib_refuse(&m, bad, "");
    ib_register(&m, bad);

    /* the refused one past unmatched=3s, failing at every round; then
     * another kept, pending until its checkout is here */
    msleep(4000);
    ib_acknowledged(ib_deliver(ib_event(evt_good, nonce(&m, good))));
    cr_assert_str_eq(ib_state(evt_good), "pending");
    ib_register(&m, good);

    ib_state_within(evt_good, "applied", 15);
    ib_refused(&m, bad, evt_bad);
}
