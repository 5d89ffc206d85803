/*
 * End to end: events that come late, early or to the "wrong" gateway.
 *
 *   - money the PSP says it took is booked whatever the checkout's state: a
 *     signed success after a FAILED (an expiry that came first, a sweeper's
 *     inference) books the ledger and the wallets, the checkout is SUCCESS,
 *     the payment refundable;
 *   - the sweeper never fails a checkout whose payment is under way at the
 *     PSP (a signed PENDING on record);
 *   - an event about something not known yet (a checkout whose token is
 *     indexed under a key this gateway lacks, a dispute before its payment,
 *     a refund before its row) is not recorded as applied: the inbox keeps
 *     it pending and the PSP is answered 200; the sweeper's round applies
 *     it once what it refers to is here (test_inbox.c);
 *   - a reload that makes a key the sealing key before it was in the ring
 *     is refused (key rotation is two reloads).
 */

#include "harness.h"
#include "sqltest.h"

#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>


typedef struct {
    merchant_t   m;
    char        *co;
    char        *token;
    char        *po[2];
} late_t;


static char *
late_secret(void)
{
    size_t  len;
    char   *s;

    s = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(s);
    return s;
}


/* A Stripe checkout.session event for l's session; payment_intent pi
 * (NULL: none). */
static char *
late_stripe_event(const char *evt, const char *type, const late_t *l,
    const char *payment_status, const char *pi)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":\"%s\","
                      "\"created\":%ld,\"livemode\":false,\"data\":{\"object\":"
                      "{\"id\":\"%s\",\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s:%s\",\"amount_total\":1500,"
                      "\"currency\":\"usd\",\"payment_status\":\"%s\","
                      "\"payment_intent\":%s%s%s,"
                      "\"status\":\"%s\"}}}",
                      evt, type, (long) time(NULL), l->token, l->m.id, l->co,
                      payment_status, pi ? "\"" : "", pi ? pi : "null",
                      pi ? "\"" : "",
                      strstr(type, "expired") ? "expired" : "complete");
}


static resp_t *
late_deliver(const char *body)
{
    long     t = (long) time(NULL);
    char    *sig;
    req_t    rq;

    sig = stripe_signature(late_secret(), t, body);

    {
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


static void
late_register(late_t *l)
{
    resp_t  *r;

    merchant_new(&l->m);
    l->co = uid("co");
    l->po[0] = str_printf("%s_p1", l->co);
    l->po[1] = str_printf("%s_p2", l->co);
    r = register_ok(&l->m, uid("key"), body_for(l->co));
    l->token = strdup(json_string_value(json_object_get(resp_json(r),
                                                        "psp_token")));
}


static char *
late_q(const char *sql, const late_t *l, const char *a)
{
    const char  *params[] = { l->m.id, l->co, a };

    return db_scalar(sql, a ? 3 : 2, params);
}


static long
late_ql(const char *sql, const late_t *l, const char *a)
{
    char  *s;

    s = late_q(sql, l, a);
    return s ? atol(s) : -1;
}


static char *
late_status(const late_t *l)
{
    return late_q("SELECT status::text FROM checkouts WHERE merchant_id = $1"
                  " AND checkout_id = $2", l, NULL);
}


/* A verified event applied as the webhook handler applies it; outcome. */
static char *
late_apply(const late_t *l, const char *event_id, const char *kind,
    const char *type, const char *token, const char *reference,
    const char *amount, const char *payment_ref, const char *object_ref,
    const char *tokens)
{
    const char  *params[] = { env("PAY_TEST_PSP"), event_id, kind, type,
                              token, reference, amount, payment_ref,
                              object_ref, tokens };

    (void) l;

    return db_scalar("SELECT outcome FROM pay_event_apply($1, $2, $3, $4, "
                     "$5, $6, $7::bigint, 'USD', $8, $9, $10::text[])",
                     10, params);
}


static long
late_event_rows(const char *event_id)
{
    const char  *params[] = { env("PAY_TEST_PSP"), event_id };

    return atol(db_scalar("SELECT count(*) FROM webhook_events WHERE psp = $1"
                          " AND event_id = $2", 2, params));
}


static void
late_books_balance(const late_t *l)
{
    cr_expect_eq(late_ql("SELECT count(*) FROM (SELECT 1 FROM ledger_entries"
                         " WHERE merchant_id = $1 AND $2 <> ''"
                         " GROUP BY txn_id, currency"
                         " HAVING sum(amount) <> 0) x", l, NULL), 0,
                 "unbalanced ledger transactions");
    cr_expect_eq(late_ql("SELECT count(*) FROM (SELECT seller_account,"
                         " currency, balance FROM wallets WHERE"
                         " merchant_id = $1) w FULL JOIN (SELECT"
                         " substr(account, 16) AS seller_account, currency,"
                         " -sum(amount) AS booked FROM ledger_entries WHERE"
                         " merchant_id = $1 AND $2 <> '' AND account LIKE"
                         " 'seller\\_payable:%' GROUP BY 1, 2) b"
                         " USING (seller_account, currency)"
                         " WHERE coalesce(w.balance, 0) <>"
                         " coalesce(b.booked, 0)", l, NULL), 0,
                 "wallets off their ledger");
}


/* --- money the PSP took is booked -------------------------------------------- */

Test(late_events, a_signed_success_after_an_expiry_is_booked_and_paid,
     .description = "an expiry first, then the PSP's signed success: the "
                    "ledger and the wallets book it, the checkout and its "
                    "orders are SUCCESS, the event says paid_after_failed")
{
    late_t   l;
    resp_t  *r;
    char    *evt = uid("evt");

    late_register(&l);
    r = late_deliver(late_stripe_event(uid("evt"), "checkout.session.expired",
                                       &l, "unpaid", NULL));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(late_status(&l), "FAILED");

    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", uid("pi")));
    cr_assert_eq(r->status, 200, "%s", r->body);

    cr_expect_str_eq(late_q("SELECT outcome FROM webhook_events WHERE"
                            " merchant_id = $1 AND checkout_id = $2 AND"
                            " event_id = $3", &l, evt), "paid_after_failed");
    cr_assert_str_eq(late_status(&l), "SUCCESS");
    cr_expect_eq(late_ql("SELECT count(*) FROM payment_orders WHERE"
                         " merchant_id = $1 AND checkout_id = $2 AND"
                         " status = 'SUCCESS' AND ledger_updated AND"
                         " wallet_updated", &l, NULL), 2);
    cr_expect_eq(late_ql("SELECT count(*) FROM ledger_transactions WHERE"
                         " merchant_id = $1 AND checkout_id = $2", &l, NULL),
                 2);
    cr_expect_eq(late_ql("SELECT count(*) FROM order_events WHERE"
                         " merchant_id = $1 AND checkout_id = $2 AND"
                         " from_status = 'FAILED' AND to_status = 'SUCCESS'",
                         &l, NULL), 2);
    cr_expect_eq(late_ql("SELECT count(*) FROM psp_payments WHERE"
                         " merchant_id = $1 AND checkout_id = $2", &l, NULL),
                 1, "refundable: the PSP's payment id is on record");
    late_books_balance(&l);

    /* a FAILED after that never takes it back */
    r = late_deliver(late_stripe_event(uid("evt"), "checkout.session.expired",
                                       &l, "unpaid", NULL));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(late_status(&l), "SUCCESS");
    cr_expect_eq(late_ql("SELECT count(*) FROM ledger_transactions WHERE"
                         " merchant_id = $1 AND checkout_id = $2", &l, NULL),
                 2);
}


/* POST /v1/payments/{po}/refunds of amount; the answer */
static resp_t *
late_refund(const late_t *l, const char *amount)
{
    req_t   rq;
    char   *auth, *idem;

    auth = str_printf("Authorization: Bearer %s", l->m.key);
    idem = str_printf("Idempotency-Key: %s", uid("rk"));

    {
        const char  *h[] = { auth, idem, "Content-Type: application/json",
                             NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/payments/%s/refunds", l->po[0]));
        rq.headers = h;
        rq.body = str_printf("{\"amount\":\"%s\",\"reason\":\"returned\"}",
                             amount);
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


Test(late_events, a_payment_booked_after_an_expiry_is_refundable,
     .timeout = 60,
     .description = "the expiry first, then the shopper pays at the PSP "
                    "(its own signed success): the refund API takes it and "
                    "the PSP's refund is booked")
{
    int      i;
    late_t   l;
    resp_t  *r;
    char    *st, *rf;
    req_t    rq;

    late_register(&l);
    r = late_deliver(late_stripe_event(uid("evt"), "checkout.session.expired",
                                       &l, "unpaid", NULL));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(late_status(&l), "FAILED");

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay", l.token));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    for (i = 0; i < 100; i++) {
        if (strcmp(late_status(&l), "SUCCESS") == 0
            && late_ql("SELECT count(*) FROM checkouts WHERE merchant_id = $1"
                       " AND checkout_id = $2 AND psp_payment_ref IS NOT NULL",
                       &l, NULL) == 1)
        {
            break;
        }
        msleep(100);
    }
    cr_assert_str_eq(late_status(&l), "SUCCESS");

    r = late_refund(&l, "4.00");
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    rf = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "refund_id")));

    st = NULL;
    for (i = 0; i < 100; i++) {
        st = late_q("SELECT status FROM refunds WHERE merchant_id = $1"
                    " AND $2 <> '' AND refund_id = $3", &l, rf);
        if (st != NULL && strcmp(st, "SUCCEEDED") == 0) {
            break;
        }
        msleep(100);
    }
    cr_expect_str_eq(st, "SUCCEEDED");
    late_books_balance(&l);
}


Test(late_events, the_database_moves_failed_to_success_only_for_the_psps_money,
     .description = "status_forward_guard: FAILED -> SUCCESS is refused to "
                    "a plain UPDATE (only a signed success takes it)")
{
    PGconn  *c = sqlt_connect();
    late_t   l;
    resp_t  *r;

    late_register(&l);
    r = late_deliver(late_stripe_event(uid("evt"), "checkout.session.expired",
                                       &l, "unpaid", NULL));
    cr_assert_eq(r->status, 200, "%s", r->body);
    FAILS(c, "PY001", "UPDATE checkouts SET status = 'SUCCESS'"
                      " WHERE merchant_id = $1", l.m.id);
    PQfinish(c);
}


/* --- the sweeper and a payment under way --------------------------------------- */

Test(late_events, the_sweeper_never_fails_a_checkout_with_a_signed_pending,
     .description = "a signed PENDING (Adyen's, an asynchronous method) on "
                    "record: the sweeper's session_expired moves nothing "
                    "and is not recorded; the success then books it")
{
    late_t       l;
    char        *nonce_s, *expired = uid("lookup:x");
    const char  *params[4];

    late_register(&l);
    nonce_s = str_printf("%s:%s", l.m.id, l.co);

    cr_assert_str_eq(late_apply(&l, uid("evt"), "PENDING", "PENDING", NULL,
                                nonce_s, "1500", NULL, NULL, NULL),
                     "pending");

    params[0] = env("PAY_TEST_PSP");
    params[1] = expired;
    params[2] = nonce_s;
    params[3] = NULL;
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_sweeper_apply($1, $2,"
                               " 'FAILED', 'session_expired', NULL, $3, -1,"
                               " '', NULL, NULL)", 3, params), "pending");
    cr_expect_str_eq(late_status(&l), "EXECUTING");
    cr_expect_eq(late_event_rows(expired), 0);

    cr_assert_str_eq(late_apply(&l, uid("evt"), "SUCCEEDED", "AUTHORISATION",
                                NULL, nonce_s, "1500", uid("psp"), NULL,
                                NULL), "applied");
    cr_expect_str_eq(late_status(&l), "SUCCESS");
    late_books_balance(&l);
}


Test(late_events, a_refused_attempt_does_not_hold_the_expiry_back,
     .description = "Adyen's AUTHORISATION success=false is PENDING too, but "
                    "not a payment under way: the session still expires")
{
    late_t       l;
    char        *nonce_s;
    const char  *params[3];

    late_register(&l);
    nonce_s = str_printf("%s:%s", l.m.id, l.co);

    cr_assert_str_eq(late_apply(&l, uid("evt"), "PENDING", "AUTHORISATION",
                                NULL, nonce_s, "1500", NULL, NULL, NULL),
                     "pending");
    params[0] = env("PAY_TEST_PSP");
    params[1] = uid("lookup:x");
    params[2] = nonce_s;
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_sweeper_apply($1, $2,"
                               " 'FAILED', 'session_expired', NULL, $3, -1,"
                               " '', NULL, NULL)", 3, params), "applied");
    cr_expect_str_eq(late_status(&l), "FAILED");
}


/* --- what is not known yet is delivered again ---------------------------------- */

Test(late_events, a_token_indexed_under_another_key_is_found_by_its_reference,
     .description = "a gateway without the key the token was indexed under: "
                    "the event finds its checkout by the signed reference")
{
    late_t  l;

    late_register(&l);
    cr_assert_str_eq(late_apply(&l, uid("evt"), "SUCCEEDED",
                                "checkout.session.completed", l.token,
                                str_printf("%s:%s", l.m.id, l.co), "1500",
                                uid("pi"), NULL,
                                "{0000000000000000000000000000000000000000"
                                "000000000000000000000000}"),
                     "applied");
    cr_expect_str_eq(late_status(&l), "SUCCESS");
}


Test(late_events, an_unknown_checkout_is_kept_pending_and_acknowledged,
     .description = "an authentic event for no checkout here: not applied "
                    "(no webhook_events row), kept pending in the inbox for "
                    "the sweeper's retry, answered 200; delivered again, "
                    "the same, kept once")
{
    late_t   l;
    resp_t  *r;
    char    *evt = uid("evt");
    const char  *p[] = { evt };

    merchant_new(&l.m);
    l.co = uid("co");
    l.token = uid("cs_test_unknown");
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_eq(late_event_rows(evt), 0);
    cr_expect_str_eq(db_scalar("SELECT string_agg(state, ',') FROM psp_events"
                               " WHERE event_id = $1", 1, p), "pending");

    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(db_scalar("SELECT string_agg(state, ',') FROM psp_events"
                               " WHERE event_id = $1", 1, p), "pending");
}


Test(late_events, a_declined_attempt_for_an_unknown_checkout_is_not_recorded,
     .description = "a refused attempt (DECLINED, Adyen's AUTHORISATION "
                    "with success false) naming no checkout here: "
                    "unknown_checkout, not recorded (no webhook_events "
                    "row), as a failure is: the PSP delivers it again and "
                    "it applies once its checkout is found (it may be an "
                    "off-session charge's final refusal); naming a hosted "
                    "session here: recorded, pending, nothing moves")
{
    late_t   l;
    char    *evt = uid("evt"), *gone = uid("co");

    late_register(&l);

    cr_assert_str_eq(late_apply(&l, evt, "DECLINED", "AUTHORISATION", NULL,
                                str_printf("%s:%s", l.m.id, gone), "1500",
                                uid("psp"), NULL, NULL),
                     "unknown_checkout");
    cr_expect_eq(late_event_rows(evt), 0, "recorded: never applied again");

    cr_assert_str_eq(late_apply(&l, evt, "DECLINED", "AUTHORISATION", NULL,
                                str_printf("%s:%s", l.m.id, l.co), "1500",
                                uid("psp"), NULL, NULL),
                     "pending");
    cr_expect_eq(late_event_rows(evt), 1);
    cr_expect_str_eq(late_status(&l), "EXECUTING");
    late_books_balance(&l);
}


static void
late_dispute(int payment_first)
{
    late_t       l;
    char        *pi = uid("pi"), *dp = uid("dp"), *evt = uid("evt"), *nonce_s;

    late_register(&l);
    nonce_s = str_printf("%s:%s", l.m.id, l.co);

    if (payment_first) {
        cr_assert_str_eq(late_apply(&l, uid("evt"), "SUCCEEDED",
                                    "checkout.session.completed", NULL,
                                    nonce_s, "1500", pi, NULL, NULL),
                         "applied");
    } else {
        cr_assert_str_eq(late_apply(&l, evt, "DISPUTE_OPENED",
                                    "charge.dispute.created", NULL, NULL,
                                    "1500", pi, dp, NULL),
                         "unknown_dispute");
        cr_assert_eq(late_event_rows(evt), 0, "not recorded: retried");

        cr_assert_str_eq(late_apply(&l, uid("evt"), "SUCCEEDED",
                                    "checkout.session.completed", NULL,
                                    nonce_s, "1500", pi, NULL, NULL),
                         "applied");
    }

    cr_assert_str_eq(late_apply(&l, evt, "DISPUTE_OPENED",
                                "charge.dispute.created", NULL, NULL, "1500",
                                pi, dp, NULL), "applied");
    cr_expect_eq(late_event_rows(evt), 1);
    cr_expect_eq(late_ql("SELECT count(*) FROM disputes WHERE merchant_id = $1"
                         " AND checkout_id = $2", &l, NULL), 1);
    cr_expect_str_eq(late_apply(&l, evt, "DISPUTE_OPENED",
                                "charge.dispute.created", NULL, NULL, "1500",
                                pi, dp, NULL), "duplicate");
    late_books_balance(&l);
}


Test(late_events, a_dispute_before_its_payment_applies_when_delivered_again,
     .description = "the dispute first: unknown_dispute, not recorded; after "
                    "the payment the same event applies")
{
    late_dispute(0);
}


Test(late_events, a_dispute_after_its_payment_applies_at_once)
{
    late_dispute(1);
}


Test(late_events, a_refund_event_before_its_refund_is_not_recorded,
     .description = "unknown_refund: the event id is not recorded, so the "
                    "PSP's next delivery is applied, not a duplicate")
{
    late_t   l;
    char    *evt = uid("evt");

    late_register(&l);
    cr_assert_str_eq(late_apply(&l, evt, "REFUND_SUCCEEDED", "refund.updated",
                                NULL, str_printf("%s:%s", l.m.id, uid("rf")),
                                "500", uid("pi"), uid("re"), NULL),
                     "unknown_refund");
    cr_expect_eq(late_event_rows(evt), 0);
}


/* --- key rotation: two reloads ------------------------------------------------ */

static char *
late_key_line(const char *kid)
{
    int            i;
    unsigned char  k[32];
    char          *b64;
    FILE          *f;

    f = fopen("/dev/urandom", "r");
    cr_assert_not_null(f);
    cr_assert_eq(fread(k, 1, sizeof(k), f), sizeof(k));
    fclose(f);

    b64 = malloc(64);
    cr_assert_not_null(b64);
    i = EVP_EncodeBlock((unsigned char *) b64, k, sizeof(k));
    b64[i] = '\0';

    return str_printf("%s %s\n", kid, b64);
}


static void
late_write(const char *path, const char *text)
{
    FILE  *f;

    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, 0600), 0);
}


/* The gateway's key file becomes text; SIGHUP; 1 if the error log then
 * says the reload was refused for the key, 0 if new workers started. */
static int
late_reload(gateway_t *gw, const char *keys, const char *text)
{
    int      i;
    char    *log;
    size_t   from, len;

    log = file_read(gw->error_log, &from);
    cr_assert_not_null(log);
    free(log);

    late_write(keys, text);
    cr_assert_eq(kill(gw->pid, SIGHUP), 0);

    for (i = 0; i < 50; i++) {
        msleep(100);

        log = file_read(gw->error_log, &len);
        cr_assert_not_null(log);

        if (len > from
            && mem_contains(log + from, len - from,
                            "is not in the keys it replaces"))
        {
            return 1;
        }

        if (len > from
            && mem_contains(log + from, len - from, "start worker process"))
        {
            msleep(300);
            return 0;
        }
    }

    cr_assert_fail("no sign of the reload in %s", gw->error_log);
    return -1;
}


Test(late_events, a_new_sealing_key_is_refused_before_it_was_in_the_ring,
     .timeout = 60,
     .description = "a reload that puts a key first that the running "
                    "configuration did not have is refused; added last, "
                    "reloaded, then promoted, it is taken")
{
    char       *ring, *k3, *keys, *conf, *dir, *at;
    size_t      len;
    gateway_t   gw;

    ring = file_read(env("PAY_TEST_ENCRYPTION_KEY"), &len);
    cr_assert_not_null(ring);
    k3 = late_key_line("late-k3");
    keys = run_file(str_printf("late-keyfile-%ld", (long) getpid()));
    late_write(keys, ring);

    gateway_start(&gw, "late-keys", 1, str_printf(
        "payments_database \"%s\";\n%s", pg_gateway_conninfo(),
        gw_psp_conf("late_psp", "stripe")));

    /* the harness's key file becomes this test's copy of it */
    dir = run_file(str_printf("late-keys-%ld", (long) getpid()));
    conf = file_read(str_printf("%s/nginx.conf", dir), NULL);
    cr_assert_not_null(conf);
    at = strstr(conf, env("PAY_TEST_ENCRYPTION_KEY"));
    cr_assert_not_null(at);
    *at = '\0';
    late_write(str_printf("%s/nginx.conf", dir), str_printf("%s%s%s", conf,
               keys, at + strlen(env("PAY_TEST_ENCRYPTION_KEY"))));
    cr_assert_eq(late_reload(&gw, keys, ring), 0);

    /* the new key first at once: refused, the old configuration serves */
    cr_expect_eq(late_reload(&gw, keys, str_printf("%s%s", k3, ring)), 1);
    gateway_wait_ready(&gw, 10);

    /* two phases: added (last) everywhere, then first */
    cr_expect_eq(late_reload(&gw, keys, str_printf("%s%s", ring, k3)), 0);
    cr_expect_eq(late_reload(&gw, keys, str_printf("%s%s", k3, ring)), 0);
    gateway_wait_ready(&gw, 10);

    gateway_stop(&gw);
}


/* bin/payments-events OPT VAL (--db or --shards) with args; its output in
 * *out, its exit code */
static int
late_events_tool_on(const char *opt, const char *val,
    const char *const *args, char **out)
{
    char    *argv[16];
    size_t   n = 0, i;

    argv[n++] = str_printf("%s/bin/payments-events", env("PAY_TEST_ROOT"));
    argv[n++] = (char *) opt;
    argv[n++] = (char *) val;

    for (i = 0; args[i] != NULL && n < 15; i++) {
        argv[n++] = (char *) args[i];
    }

    argv[n] = NULL;

    return run(argv, out);
}


/* bin/payments-events --db (the suite's) with args */
static int
late_events_tool(const char *const *args, char **out)
{
    return late_events_tool_on("--db", env("PAY_TEST_PG"), args, out);
}


Test(late_events, payments_events_lists_shows_and_replays_once,
     .description = "a pending event: a dry run changes nothing; a replay "
                    "after its checkout registered applies it once and is "
                    "audited; another replay changes nothing")
{
    late_t       l;
    resp_t      *r;
    char        *out, *evt = uid("evt"), *body;
    const char  *p[] = { evt };

    merchant_new(&l.m);
    l.co = uid("co");
    l.token = uid("cs_test_replay");
    body = late_stripe_event(evt, "checkout.session.completed", &l, "paid",
                             NULL);
    r = late_deliver(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    cr_assert_eq(late_events_tool((const char *[]) { "list", "--state",
                     "pending", "--checkout",
                     str_printf("%s:%s", l.m.id, l.co), NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, evt) == NULL,
              "no checkout yet: none listed under it: %s", out);
    cr_assert_eq(late_events_tool((const char *[]) { "show", "--psp",
                     env("PAY_TEST_PSP"), "--event", evt, NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, "pending") != NULL && strstr(out, l.token) != NULL
              && strstr(out, "Stripe-Signature") != NULL, "%s", out);

    /* its checkout registered (under the event's reference) */
    l.po[0] = str_printf("%s_p1", l.co);
    (void) register_ok(&l.m, uid("key"), body_for(l.co));

    cr_assert_eq(late_events_tool((const char *[]) { "replay", "--psp",
                     env("PAY_TEST_PSP"), "--event", evt, "--dry-run",
                     NULL }, &out), 0, "%s", out);
    cr_expect(strstr(out, "applied") != NULL
              && strstr(out, "dry run") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar("SELECT state FROM psp_events "
                               "WHERE event_id = $1", 1, p), "pending");
    cr_expect_str_eq(late_status(&l), "EXECUTING");

    cr_assert_eq(late_events_tool((const char *[]) { "replay", "--psp",
                     env("PAY_TEST_PSP"), "--event", evt, NULL }, &out), 0,
                 "%s", out);
    cr_expect_str_eq(db_scalar("SELECT state || ' ' || outcome FROM "
                               "psp_events WHERE event_id = $1", 1, p),
                     "applied applied");
    cr_expect_str_eq(late_status(&l), "SUCCESS");
    cr_expect_eq(late_ql("SELECT count(*) FROM audit_log WHERE merchant_id"
                         " = $1 AND checkout_id = $2 AND action = "
                         "'inbox:replay'", &l, NULL), 1);

    /* again: nothing twice */
    cr_assert_eq(late_events_tool((const char *[]) { "replay", "--psp",
                     env("PAY_TEST_PSP"), "--event", evt, NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, "duplicate") != NULL, "%s", out);
    cr_expect_eq(late_ql("SELECT count(*) - count(DISTINCT payment_order_id)"
                         " FROM ledger_transactions WHERE merchant_id = $1 "
                         "AND checkout_id = $2", &l, NULL), 0);
    cr_expect_eq(late_ql("SELECT count(*) FROM ledger_transactions WHERE "
                         "merchant_id = $1 AND checkout_id = $2", &l, NULL),
                 2);

    cr_assert_eq(late_events_tool((const char *[]) { "list", "--state",
                     "applied", "--checkout",
                     str_printf("%s:%s", l.m.id, l.co), NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, evt) != NULL, "%s", out);

    /* an event not kept: refused */
    cr_expect_neq(late_events_tool((const char *[]) { "replay", "--psp",
                      env("PAY_TEST_PSP"), "--event", uid("evt_none"),
                      NULL }, &out), 0, "%s", out);
}


Test(late_events, payments_events_verify_reports_a_row_altered_in_the_table,
     .description = "a kept Stripe event verifies again with the gateway's "
                    "configured secret (by the id its row names); its body "
                    "or its kept Stripe-Signature altered is FAILED, exit 1")
{
    late_t       l;
    resp_t      *r;
    char        *out, *evt = uid("evt"), *conf = run_file("nginx.conf");
    const char  *p[] = { evt };

    merchant_new(&l.m);
    l.co = uid("co");
    l.token = uid("cs_test_verify");
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    cr_assert_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 0, "%s", out);
    cr_expect(strncmp(out, "verified\t", 9) == 0 && strstr(out, evt) != NULL
              && strstr(out, "1 verified, 0 failed") != NULL, "%s", out);
    cr_expect(strstr(out, db_scalar("SELECT key_id FROM psp_events WHERE "
                                    "event_id = $1", 1, p)) != NULL,
              "the key's id: %s", out);

    /* the signature kept for it changed: one hex digit of its v1 */
    db_exec("UPDATE psp_events SET headers = jsonb_set(headers, "
            "'{Stripe-Signature}', to_jsonb(regexp_replace(headers->>"
            "'Stripe-Signature', 'v1=(.)', 'v1=' || CASE WHEN substr("
            "headers->>'Stripe-Signature', strpos(headers->>"
            "'Stripe-Signature', 'v1=') + 3, 1) = '0' THEN '1' ELSE '0' END)))"
            " WHERE event_id = $1", 1, p);
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 1, "%s", out);
    cr_expect(strncmp(out, "FAILED\t", 7) == 0, "%s", out);

    /* the event the PSP signed, then its body altered */
    evt = uid("evt");
    p[0] = evt;
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    db_exec("UPDATE psp_events SET body = convert_to(replace(convert_from("
            "body, 'UTF8'), '\"amount_total\":1500', '\"amount_total\":15'),"
            " 'UTF8') WHERE event_id = $1", 1, p);
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 1, "%s", out);
    cr_expect(strncmp(out, "FAILED\t", 7) == 0
              && strstr(out, "0 verified, 1 failed") != NULL, "%s", out);

    /* an event not kept: exit 1, said */
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event",
                     uid("evt_none"), NULL }, &out), 1, "%s", out);
    cr_expect(strstr(out, "no such event is kept") != NULL, "%s", out);
}


Test(late_events, payments_events_verify_reports_a_field_altered_beside_intact_bytes,
     .description = "the bytes and signature intact, a field the row keeps "
                    "beside them altered (amount, reference, type, the "
                    "checkout it was matched to): verify re-reads the "
                    "signed bytes with the webhook's parser, is FAILED and "
                    "names the field; the intact row verifies")
{
    late_t       l, other;
    resp_t      *r;
    char        *out, *evt = uid("evt"), *conf = run_file("nginx.conf");
    const char  *p[] = { evt, NULL };

    late_register(&l);
    late_register(&other);
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(db_scalar("SELECT state || ' ' || checkout_id FROM "
                               "psp_events WHERE event_id = $1", 1, p),
                     str_printf("applied %s", l.co));

    cr_assert_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 0, "%s", out);
    cr_expect(strncmp(out, "verified\t", 9) == 0
              && strstr(out, "not as signed") == NULL, "%s", out);

    /* each field alone, then put back as it was */
    {
        static const struct {
            const char  *set, *back, *field;
        } alt[] = {
            { "amount = 15", "amount = 1500", "amount" },
            { "currency = 'EUR'", "currency = 'USD'", "currency" },
            { "type = 'checkout.session.expired'",
              "type = 'checkout.session.completed'", "type" },
            { "kind = 'FAILED'", "kind = 'CAPTURED'", "kind" },
            { "reference = $2", "reference = $3", "reference" },
            { "checkout_id = $2", "checkout_id = $3", "checkout_id" },
            { "token = 'cs_test_other'", "token = $3", "token" },
            /* the session token's keys, tried before the token: the
             * other checkout's blind index (psp_tokens'), or another
             * token, put first */
            { "tokens = (SELECT t.psp_token FROM psp_tokens t WHERE "
              "t.checkout_id = $2 LIMIT 1) || tokens",
              "tokens = tokens[2:]", "tokens" },
            { "tokens = 'cs_test_other'::text || tokens", "tokens = tokens[2:]",
              "tokens" },
            /* another system's: kept from the sweeper's retry */
            { "state = 'foreign', applied_at = NULL",
              "state = 'applied', applied_at = now()", "state" },
        };
        size_t       i;
        const char  *q[3];

        for (i = 0; i < sizeof(alt) / sizeof(alt[0]); i++) {
            q[0] = evt;
            q[1] = strcmp(alt[i].field, "reference") == 0
                   ? str_printf("%s:%s", other.m.id, other.co) : other.co;
            q[2] = strcmp(alt[i].field, "reference") == 0
                   ? str_printf("%s:%s", l.m.id, l.co)
                   : strcmp(alt[i].field, "token") == 0 ? l.token : l.co;

            db_exec(str_printf("UPDATE psp_events SET %s WHERE event_id = $1"
                               " AND $2::text IS NOT NULL AND $3::text IS "
                               "NOT NULL", alt[i].set), 3, q);
            cr_expect_eq(late_events_tool((const char *[]) { "verify",
                             "--conf", conf, "--psp", env("PAY_TEST_PSP"),
                             "--event", evt, NULL }, &out), 1,
                         "%s: %s", alt[i].field, out);
            cr_expect(strncmp(out, "FAILED\t", 7) == 0
                      && strstr(out, str_printf("not as signed: %s\n",
                                                alt[i].field)) != NULL
                      && strstr(out, "0 verified, 1 failed") != NULL,
                      "%s: %s", alt[i].field, out);

            db_exec(str_printf("UPDATE psp_events SET %s WHERE event_id = $1"
                               " AND $2::text IS NOT NULL AND $3::text IS "
                               "NOT NULL", alt[i].back), 3, q);
            cr_expect_eq(late_events_tool((const char *[]) { "verify",
                             "--conf", conf, "--psp", env("PAY_TEST_PSP"),
                             "--event", evt, NULL }, &out), 0,
                         "%s put back: %s", alt[i].field, out);
        }
    }
}


Test(late_events, payments_events_verify_reports_a_pending_event_said_applied,
     .description = "a pending event's row said applied (hidden from the "
                    "sweeper's retry) with no webhook_events row: FAILED, "
                    "not as signed: state; a key of its session token not "
                    "under a key of the configuration, found nowhere: "
                    "no key, exit 1")
{
    late_t       l;
    resp_t      *r;
    char        *out, *evt = uid("evt"), *conf = run_file("nginx.conf");
    const char  *p[] = { evt };

    merchant_new(&l.m);
    l.co = uid("co");
    l.token = uid("cs_test_hidden");
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(db_scalar("SELECT state FROM psp_events WHERE "
                               "event_id = $1", 1, p), "pending");
    cr_assert_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 0, "%s", out);

    db_exec("UPDATE psp_events SET state = 'applied', applied_at = now() "
            "WHERE event_id = $1", 1, p);
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 1, "%s", out);
    cr_expect(strncmp(out, "FAILED\t", 7) == 0
              && strstr(out, "not as signed: state\n") != NULL, "%s", out);

    /* pending again; a key of its token that no key here makes and
     * psp_tokens does not hold: it may be a retired key's */
    db_exec("UPDATE psp_events SET state = 'pending', applied_at = NULL, "
            "tokens = encode(sha256(convert_to(event_id, 'UTF8')), 'hex') "
            "|| tokens WHERE event_id = $1", 1, p);
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 1, "%s", out);
    cr_expect(strncmp(out, "no key\t", 7) == 0
              && strstr(out, "tokens: an index under a key not in "
                             "payments_encryption_key") != NULL
              && strstr(out, "0 verified, 0 failed") != NULL, "%s", out);

    /* as it was kept */
    db_exec("UPDATE psp_events SET tokens = tokens[2:] WHERE event_id = $1",
            1, p);
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf", conf,
                     "--psp", env("PAY_TEST_PSP"), "--event", evt, NULL },
                     &out), 0, "put back: %s", out);
}


/*
 * payments-events finds an event by its id (psp_event_ids) and reads it
 * from its own month's partition alone: with another month of the inbox
 * locked (ACCESS EXCLUSIVE, as VACUUM FULL of that month holds it), show,
 * verify and a replay's dry run of this month's event answer, on one
 * database and over shards, and an event not kept is still said to be not
 * kept.  Looked up by its id in every partition, each waited on the locked
 * month (here until lock_timeout, then failed).
 */
Test(late_events, payments_events_reads_the_events_month_alone, .timeout = 60)
{
    late_t       l;
    resp_t      *r;
    PGconn      *lk;
    char        *out, *evt = uid("evt"), *month, *other, *file;
    const char  *p[] = { evt }, *psp = env("PAY_TEST_PSP");

    merchant_new(&l.m);
    l.co = uid("co");
    l.token = uid("cs_test_month");
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    /* another month: the newest made ahead (the sweeper makes them) */
    (void) db_scalar("SELECT pay_inbox_partitions(1)", 0, NULL);
    month = db_scalar("SELECT tableoid::regclass::text FROM psp_events "
                      "WHERE event_id = $1", 1, p);
    cr_assert_not_null(month);
    other = db_scalar("SELECT max(c.relname) FROM pg_inherits i JOIN pg_class"
                      " c ON c.oid = i.inhrelid WHERE i.inhparent = "
                      "'psp_events'::regclass AND c.relname <> $1", 1,
                      (const char *[]) { month });
    cr_assert(other != NULL && other[0] != '\0', "no other month");
    file = shards_file(str_printf("month-%ld.shards", (long) getpid()),
                       "a %s\n", env("PAY_TEST_PG"));

    lk = db_lock_table(other);
    cr_assert_eq(setenv("PGOPTIONS", "-c lock_timeout=2s", 1), 0);

    cr_expect_eq(late_events_tool((const char *[]) { "show", "--psp", psp,
                     "--event", evt, NULL }, &out), 0, "%s", out);
    cr_expect(strstr(out, "pending") != NULL && strstr(out, l.token) != NULL
              && strstr(out, "no such event") == NULL, "%s", out);
    cr_expect_eq(late_events_tool((const char *[]) { "verify", "--conf",
                     run_file("nginx.conf"), "--psp", psp, "--event", evt,
                     NULL }, &out), 0, "%s", out);
    cr_expect(strstr(out, "1 verified, 0 failed") != NULL, "%s", out);
    cr_expect_eq(late_events_tool((const char *[]) { "replay", "--psp", psp,
                     "--event", evt, "--dry-run", NULL }, &out), 0, "%s",
                 out);
    cr_expect(strstr(out, "pending") != NULL && strstr(out, "dry run") != NULL,
              "%s", out);
    cr_expect_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "show", "--psp", psp, "--event", evt, NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, "shard a:") != NULL && strstr(out, l.token) != NULL,
              "%s", out);

    /* an event not kept: said so, as before */
    cr_expect_eq(late_events_tool((const char *[]) { "show", "--psp", psp,
                     "--event", uid("evt_none"), NULL }, &out), 0, "%s", out);
    cr_expect(strstr(out, "no such event is kept") != NULL
              && strstr(out, "lock") == NULL, "%s", out);
    cr_expect_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "show", "--psp", psp, "--event", uid("evt_none"), NULL },
                     &out), 1, "%s", out);
    cr_expect(strstr(out, "no such event is kept on any shard") != NULL
              && strstr(out, "lock") == NULL, "%s", out);

    cr_assert_eq(unsetenv("PGOPTIONS"), 0);
    db_unlock(lk);
}


/* Two shards, a (the suite's database) and b (a new one): a keeps the event
 * the gateway received, b a copy of it under another id a second later.
 * list merges both by time with their shard; show and verify find each
 * event on its shard; a shard that does not answer is named, exit 1. */
Test(late_events, payments_events_over_two_shards, .timeout = 120)
{
    late_t       l;
    resp_t      *r;
    char        *out, *evt = uid("evt"), *evb = uid("evt"), *bname, *b;
    char        *file, *bad, *row, *since, *la, *lb;
    const char  *p[2] = { evt, evb }, *psp = env("PAY_TEST_PSP");

    b = db_new_shard(&bname);

    merchant_new(&l.m);
    l.co = uid("co");
    l.token = uid("cs_test_shards");
    r = late_deliver(late_stripe_event(evt, "checkout.session.completed", &l,
                                       "paid", NULL));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    row = db_scalar("SELECT (to_jsonb(e) || jsonb_build_object('event_id', "
                    "$2::text, 'received_at', e.received_at + interval "
                    "'1 second'))::text FROM psp_events e WHERE event_id = $1",
                    2, p);
    cr_assert_not_null(row);
    /* the month's partition, as a gateway's housekeeping makes it */
    (void) db_scalar_at(b, "SELECT pay_inbox_partitions(1)", NULL);
    cr_assert_str_eq(db_scalar_at(b, "INSERT INTO psp_events SELECT * FROM "
                                     "jsonb_populate_record(NULL::psp_events,"
                                     " $1::jsonb) RETURNING event_id", row),
                     evb);
    since = db_scalar("SELECT received_at::text FROM psp_events "
                      "WHERE event_id = $1", 1, p);

    file = shards_file(str_printf("%s.shards", bname), "a %s\nb %s\n",
                       env("PAY_TEST_PG"), b);
    bad = shards_file(str_printf("%s.bad", bname),
                      "a %s\nb %s\nc host=127.0.0.1 port=1 dbname=x\n",
                      env("PAY_TEST_PG"), b);

    /* merged by time, newest first, each with its shard */
    cr_assert_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "list", "--psp", psp, "--since", since, "--limit",
                     "1000", NULL }, &out), 0, "%s", out);
    cr_expect(strncmp(out, "shard\treceived\tpsp\tevent_id\t",
                      strlen("shard\treceived\tpsp\tevent_id\t")) == 0,
              "%s", out);
    la = strstr(out, str_printf("\t%s\t", evt));
    lb = strstr(out, str_printf("\t%s\t", evb));
    cr_assert(la != NULL && lb != NULL, "%s", out);
    cr_expect(lb < la, "b's event is the newer: %s", out);
    cr_expect(strncmp(strrchr(strndup(out, (size_t) (lb - out)), '\n'),
                      "\nb\t", 3) == 0, "%s", out);
    cr_expect(strncmp(strrchr(strndup(out, (size_t) (la - out)), '\n'),
                      "\na\t", 3) == 0, "%s", out);

    /* each found on its shard */
    cr_assert_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "show", "--psp", psp, "--event", evb, NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, "shard b:") != NULL && strstr(out, "shard a:") == NULL
              && strstr(out, evb) != NULL, "%s", out);
    cr_assert_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "show", "--psp", psp, "--event", evt, NULL }, &out), 0,
                 "%s", out);
    cr_expect(strstr(out, "shard a:") != NULL && strstr(out, "shard b:") == NULL
              && strstr(out, l.token) != NULL, "%s", out);
    cr_expect_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "show", "--psp", psp, "--event", uid("evt_none"), NULL },
                     &out), 1, "%s", out);
    cr_expect(strstr(out, "no such event is kept on any shard") != NULL, "%s",
              out);
    cr_assert_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "verify", "--conf", run_file("nginx.conf"), "--psp", psp,
                     "--event", evt, NULL }, &out), 0, "%s", out);
    cr_expect(strncmp(out, "a\tverified\t", 11) == 0
              && strstr(out, "1 verified, 0 failed") != NULL, "%s", out);

    /* every check of a row holds over shards: a token list rewritten on
     * a is FAILED there, named, exit 1; put back, verified again */
    db_exec("UPDATE psp_events SET tokens = 'cs_test_other'::text || tokens "
            "WHERE event_id = $1", 1, p);
    cr_expect_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "verify", "--conf", run_file("nginx.conf"), "--psp", psp,
                     "--event", evt, NULL }, &out), 1, "%s", out);
    cr_expect(strncmp(out, "a\tFAILED\t", 9) == 0
              && strstr(out, "not as signed: tokens\n") != NULL
              && strstr(out, "0 verified, 1 failed") != NULL, "%s", out);
    db_exec("UPDATE psp_events SET tokens = tokens[2:] WHERE event_id = $1",
            1, p);
    cr_expect_eq(late_events_tool_on("--shards", file, (const char *[]) {
                     "verify", "--conf", run_file("nginx.conf"), "--psp", psp,
                     "--event", evt, NULL }, &out), 0, "%s", out);

    /* c does not answer: named, the others still listed, exit 1 */
    cr_expect_eq(late_events_tool_on("--shards", bad, (const char *[]) {
                     "list", "--psp", psp, "--since", since, "--limit",
                     "1000", NULL }, &out), 1, "%s", out);
    cr_expect(strstr(out, "shard c does not answer") != NULL
              && strstr(out, evt) != NULL && strstr(out, evb) != NULL, "%s",
              out);

    db_exec(str_printf("DROP DATABASE %s WITH (FORCE)", bname), 0, NULL);
}
