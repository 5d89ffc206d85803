/*
 * End to end: background work per shard (doc/plans/shards.md section 1.5),
 * on the shards lane's stack (ci/services.sh --shards 2; E2E_SHARDS=1 bash
 * ci/e2e.sh).  Each test starts a gateway of its own over both shards, a
 * and b (a the home), with two workers: shard a's sweeper, housekeeping
 * and notification gauges run in worker 0, shard b's in worker 1, and
 * every worker claims notifications from both shards.  The sweeper is in
 * a hurry (a round every 300 ms, checkouts asked about from 1 s of age)
 * and sweeps only the checkouts of its own PSP name (bg_stripe), so no
 * other suite's checkout is touched.
 *
 * Unsharded (payments_database) the same work is worker 0's alone: the
 * solo_sweeper, notify and wallets suites on the main lane are its proof.
 * On any stack without two shards, or while nginx -t refuses a gateway
 * over several (the stack's gateway then serves a alone), every test here
 * is skipped.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"


#define BG_SWEEPER_CONF                                                       \
    "payments_sweeper on interval=300ms after=1s retry=1s alert=30s "         \
    "grace=1s batch=50;\n"


static gateway_t  bg_gw;
static int        bg_home_b;      /* the home flag on b, not a */


static void
bg_init(void)
{
    shards_need(2);
    /* the stack's gateway serves b, again after a test before this one
     * stopped it */
    shard_wait_served("b", 30);

    /* an earlier test's gateway (stopped) may hold a lease for 3 s more */
    db_exec_on(db_shard("a"), "DELETE FROM sweeper_lease", 0, NULL);
    db_exec_on(db_shard("b"), "DELETE FROM sweeper_lease", 0, NULL);
}


static void
bg_fini(void)
{
    gateway_stop(&bg_gw);
    bg_home_b = 0;
}


TestSuite(shards_background, .timeout = E2E_TIMEOUT, .init = bg_init,
          .fini = bg_fini);


/* the gateway role's conninfo on shard name's cluster (PAY_TEST_PG1 is
 * a's, PAY_TEST_PG2 b's) */
static char *
shard_gateway_conninfo(const char *name)
{
    long         port;
    const char  *p;

    p = strstr(env(strcmp(name, "a") == 0 ? "PAY_TEST_PG1" : "PAY_TEST_PG2"),
               "port=");
    cr_assert_not_null(p);
    port = strtol(p + 5, NULL, 10);

    return str_printf("hostaddr=127.0.0.1 port=%ld dbname=payments "
                      "user=payments_gateway", port);
}


/* The gateway over shards a and b, two workers, ready: /readyz of each
 * shard 200, and each worker connected to each shard; its sweeper's
 * directive sweeper (BG_SWEEPER_CONF). */
static void
bg_start_sweeper(const char *sweeper)
{
    int          i, w, s, up;
    resp_t      *r;
    const char  *names[2] = { "a", "b" };

    gateway_start(&bg_gw, "shards_bg", 2, str_printf(
        "payments_shard a \"%s\" pool=2%s;\n"
        "payments_shard b \"%s\" pool=2%s;\n"
        "%s%s%s",
        shard_gateway_conninfo("a"), bg_home_b ? "" : " home",
        shard_gateway_conninfo("b"), bg_home_b ? " home" : "",
        gw_psp_conf("bg_stripe", "stripe"), sweeper, notify_conf(NULL)));

    for (i = 0; i < 100; i++) {
        up = 1;

        for (s = 0; s < 2 && up; s++) {
            r = gateway_get(&bg_gw, str_printf("/readyz?shard=%s", names[s]));
            up = (r->status == 200);
            resp_free(r);

            for (w = 0; w < 2 && up; w++) {
                up = metric_value(bg_gw.origin,
                                  str_printf("payments_db_pool_connections"
                                             "{worker=\"%d\",shard=\"%s\","
                                             "state=\"up\"}", w, names[s]))
                     >= 1;
            }
        }

        if (up) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("%s never became ready on both shards in both workers "
                   "(see %s)", bg_gw.origin, bg_gw.error_log);
}


static void
bg_start(void)
{
    bg_start_sweeper(BG_SWEEPER_CONF);
}


/* An endpoint of m on its own shard: payments-merchant add-endpoint goes
 * to PAY_TEST_PG (harness_receiver.c), pointed at m's shard meanwhile. */
static void
endpoint_on_shard(const merchant_t *m, endpoint_t *ep)
{
    char  *saved;

    saved = strdup(env("PAY_TEST_PG"));
    setenv("PAY_TEST_PG", env(strcmp(m->shard, "b") == 0 ? "PAY_TEST_PG2"
                                                         : "PAY_TEST_PG1"), 1);
    endpoint_add(m, NULL, ep);
    setenv("PAY_TEST_PG", saved, 1);
    free(saved);
}


/* The mock's session action (pay): the shopper paid. */
static void
session_pay(const char *token)
{
    resp_t  *r;
    req_t    rq;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay",
                                 url_escape(token)));
    rq.body = "";
    rq.len = 0;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "mock pay: %ld %s", r->status, r->body);
    resp_free(r);
}


/* A checkout of m through the gateway whose webhook the mock never sends,
 * paid at the mock: only the sweeper of m's shard can book it. */
static char *
paid_without_webhook(merchant_t *m)
{
    char     *co_id, *token;
    json_t   *co, *j;
    resp_t   *r;

    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(m, co_id)));

    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("bg_stripe"));

    r = gateway_send(&bg_gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "registration on shard %s: %ld %s",
                 m->shard, r->status, r->body);

    j = resp_json(r);
    token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(token);
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    session_pay(token);

    return co_id;
}


static char *
status_on(const char *shard, const merchant_t *m, const char *co_id)
{
    return db_scalar_on(db_shard(shard),
                        "SELECT coalesce((SELECT status::text FROM checkouts"
                        " WHERE merchant_id = $1 AND checkout_id = $2),"
                        " 'none')", 2, (const char *[]) { m->id, co_id });
}


static char *
wait_decided_on(const char *shard, const merchant_t *m, const char *co_id,
    int seconds)
{
    int    i;
    char  *s;

    /* read at least once, whatever seconds is */
    for (i = 0; ; i++) {
        s = status_on(shard, m, co_id);
        if (strcmp(s, "EXECUTING") != 0 || i >= seconds * 10) {
            return s;
        }

        msleep(100);
    }
}


/* Each shard's lease is taken by this gateway, under the one owner name
 * /metrics gives, and the leader gauge says so per shard (labelled). */
Test(shards_background, the_sweeper_lease_is_held_on_each_shard)
{
    int          i;
    char        *oa, *ob, *body, *file, *out;
    FILE        *f;
    resp_t      *r;
    const char  *sql = "SELECT coalesce((SELECT owner FROM sweeper_lease"
                       " WHERE until > now()), '')";

    bg_start();

    oa = ob = NULL;

    for (i = 0; i < 100; i++) {
        oa = db_scalar_on(db_shard("a"), sql, 0, NULL);
        ob = db_scalar_on(db_shard("b"), sql, 0, NULL);

        if (oa[0] != '\0' && ob[0] != '\0'
            && metric_value(bg_gw.origin,
                            "payments_sweeper_leader{shard=\"a\"}") == 1
            && metric_value(bg_gw.origin,
                            "payments_sweeper_leader{shard=\"b\"}") == 1)
        {
            break;
        }

        msleep(100);
    }

    cr_assert_neq(oa[0], '\0', "no sweeper holds shard a's lease");
    cr_assert_neq(ob[0], '\0', "no sweeper holds shard b's lease");
    cr_expect_str_eq(oa, ob, "one gateway, one owner name");
    cr_expect(strstr(oa, str_printf(":%d:", (int) bg_gw.pid)) != NULL,
              "the lease's owner %s is not this gateway's (pid %d)", oa,
              (int) bg_gw.pid);

    cr_expect_eq(metric_value(bg_gw.origin,
                              "payments_sweeper_leader{shard=\"a\"}"), 1);
    cr_expect_eq(metric_value(bg_gw.origin,
                              "payments_sweeper_leader{shard=\"b\"}"), 1);

    /* with several shards the gauge is labelled, never one value for all */
    r = gateway_get(&bg_gw, "/metrics");
    body = r->body;
    cr_expect(strstr(body, "\npayments_sweeper_leader ") == NULL,
              "an unlabelled payments_sweeper_leader over two shards");
    cr_expect(strstr(body, "\npayments_checkouts_executing{shard=\"b\"} ")
              != NULL, "no executing gauge of shard b");
    cr_expect(strstr(body, "\npayments_notify_queue_depth{shard=\"b\"} ")
              != NULL, "no notification gauge of shard b");

    /* and the labelled page passes promtool check metrics */
    file = run_file(str_printf("logs/metrics-shards-bg-%d.txt",
                               (int) getpid()));
    f = fopen(file, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(r->body, 1, r->len, f), r->len);
    fclose(f);
    resp_free(r);
    cr_expect_eq(run((char *const[]) {
                         "bash", str_printf("%s/ci/prom-test.sh",
                                            env("PAY_TEST_ROOT")),
                         "metrics", file, NULL }, &out), 0, "%s", out);
}


/* A checkout of a merchant on each shard whose webhook never comes: each
 * is swept by its shard's sweeper and booked there (the sweeper's source,
 * on the merchant's shard alone), and each merchant's endpoint is sent its
 * checkout.succeeded from its own shard's outbox. */
Test(shards_background,
     checkouts_without_webhooks_are_swept_booked_and_notified_on_their_shard)
{
    int          i;
    char        *ca, *cb, *sa, *sb;
    json_t      *da, *db_;
    endpoint_t   epa, epb;
    merchant_t   ma, mb;

    merchant_new_on(&ma, "a");
    merchant_new_on(&mb, "b");
    endpoint_on_shard(&ma, &epa);
    endpoint_on_shard(&mb, &epb);

    bg_start();

    ca = paid_without_webhook(&ma);
    cb = paid_without_webhook(&mb);

    sb = wait_decided_on("b", &mb, cb, 15);
    sa = wait_decided_on("a", &ma, ca, 15);
    cr_assert_str_eq(sb, "SUCCESS", "shard b's checkout was never swept");
    cr_assert_str_eq(sa, "SUCCESS", "shard a's checkout was never swept");

    /* booked by the sweeper, on the merchant's shard only */
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM webhook_events"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2"
                                  " AND source = 'sweeper'"
                                  " AND outcome = 'applied'",
                                  2, (const char *[]) { mb.id, cb }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT pay_audit_verify($1)::text", 1,
                                  (const char *[]) { mb.id }), "true");
    cr_expect_str_eq(status_on("a", &mb, cb), "none",
                     "shard b's checkout is on shard a");
    cr_expect_str_eq(db_scalar_on(db_shard("a"),
                                  "SELECT count(*) FROM webhook_events"
                                  " WHERE merchant_id = $1", 1,
                                  (const char *[]) { mb.id }), "0");

    /* each merchant's notification, from its own shard */
    db_ = receiver_wait(epb.name, "204", 1, 15);
    cr_expect_eq(deliveries_count(db_, "204", "checkout.succeeded"), 1,
                 "%s", dump(db_));
    da = receiver_wait(epa.name, "204", 1, 15);
    cr_expect_eq(deliveries_count(da, "204", "checkout.succeeded"), 1,
                 "%s", dump(da));
    /* the endpoint's 204 comes before the gateway records it */
    for (i = 0; i < 50; i++) {
        if (strcmp(db_scalar_on(db_shard("b"),
                                "SELECT count(*) FROM notifications"
                                " WHERE merchant_id = $1"
                                " AND status = 'DELIVERED'", 1,
                                (const char *[]) { mb.id }), "1") == 0)
        {
            break;
        }
        msleep(100);
    }
    cr_expect_lt(i, 50, "b's notification never recorded DELIVERED");
}


/* A seller's wallet credit on shard b is folded into its balance by shard
 * b's housekeeping. */
Test(shards_background, wallet_credits_are_folded_on_shard_b)
{
    int          i;
    char        *left;
    double       fold;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    bg_start();

    db_exec_on(db_shard("b"),
               "SELECT wallet_add($1, 's_bg', 'EUR', 700::bigint)", 1,
               (const char *[]) { mb.id });

    left = NULL;

    for (i = 0; i < 50; i++) {
        left = db_scalar_on(db_shard("b"),
                            "SELECT count(*) FROM wallet_credits"
                            " WHERE merchant_id = $1", 1,
                            (const char *[]) { mb.id });
        if (strcmp(left, "0") == 0) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(left, "0", "shard b's wallet credit was never folded");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT balance FROM wallets"
                                  " WHERE merchant_id = $1"
                                  " AND seller_account = 's_bg'"
                                  " AND currency = 'EUR'", 1,
                                  (const char *[]) { mb.id }), "700");

    /* each shard's fold has its own time (one shard stalled must not hide
     * behind another's), never one value for all; this gateway's first
     * round on each may come after the suite's gateway folded the credit */
    fold = 0;

    for (i = 0; i < 50; i++) {
        fold = metric_value(bg_gw.origin,
                            "payments_wallet_fold_last_success_timestamp_"
                            "seconds{shard=\"b\"}");
        if (fold > 0
            && metric_value(bg_gw.origin,
                            "payments_wallet_fold_last_success_timestamp_"
                            "seconds{shard=\"a\"}") > 0)
        {
            break;
        }

        msleep(100);
    }

    cr_expect(fold >= (double) time(NULL) - 30,
              "shard b's fold time %.0f is not recent", fold);
    cr_expect_gt(metric_value(bg_gw.origin,
                     "payments_wallet_fold_last_success_timestamp_seconds"
                     "{shard=\"a\"}"), 0, "shard a's fold never ran");
    cr_expect_eq(metric_value(bg_gw.origin,
                     "payments_wallet_fold_last_success_timestamp_seconds"),
                 -1, "an unlabelled fold time over two shards");

    /* the credit had no ledger entry: take it back, so that the suites
     * after this one on shard b (the invariants' "every wallet equals its
     * ledger, any merchant") find the books as they were */
    db_exec_on(db_shard("b"),
               "SELECT wallet_add($1, 's_bg', 'EUR', -700::bigint)", 1,
               (const char *[]) { mb.id });
}


/* An event the home shard a kept pending for a merchant that lives on b
 * (its nonce names mb, whose checkout is on b): a's sweeper finds its
 * owner, keeps and applies it on b (the checkout SUCCESS there, the event
 * applied once) and marks it forwarded to b at home. */
Test(shards_background, an_event_kept_at_home_for_a_merchant_on_b_is_forwarded)
{
    int          i;
    char        *co_id, *token, *ev, *ref, *amount, *currency, *state;
    json_t      *co, *j;
    resp_t      *r;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    bg_start();

    /* mb's checkout on b, EXECUTING, its session open at the mock */
    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(&mb, co_id)));
    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("bg_stripe"));
    r = gateway_send(&bg_gw, "POST", PATH_PAYMENTS, &mb, uid("key"),
                     dump(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    j = resp_json(r);
    token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(token);
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    amount = db_scalar_on(db_shard("b"), "SELECT amount_total::text FROM"
                          " checkouts WHERE merchant_id = $1"
                          " AND checkout_id = $2", 2,
                          (const char *[]) { mb.id, co_id });
    currency = db_scalar_on(db_shard("b"), "SELECT currency FROM checkouts"
                            " WHERE merchant_id = $1 AND checkout_id = $2", 2,
                            (const char *[]) { mb.id, co_id });
    cr_assert_not_null(amount);

    /* its success kept on the home shard a, as a gateway that does not
     * route it would keep it: pending, nothing there is its */
    ev = uid("evt");
    ref = nonce(&mb, co_id);
    cr_assert_str_eq(db_scalar_on(db_shard("a"),
        "SELECT state FROM pay_event_keep('bg_stripe', $1, 'SUCCEEDED',"
        " 'checkout.session.completed', '', $2, $3::bigint, $4, '', '', '{}',"
        " '\\x7b7d'::bytea, '{\"stripe-signature\":\"t=1\"}',"
        " 'sha256:0123456789abcdef')", 4,
        (const char *[]) { ev, ref, amount, currency }), "pending");

    state = NULL;

    for (i = 0; i < 100; i++) {
        state = db_scalar_on(db_shard("a"),
                             "SELECT state || ':' || coalesce(forwarded_to,"
                             " '') FROM psp_events WHERE psp = 'bg_stripe'"
                             " AND event_id = $1", 1,
                             (const char *[]) { ev });
        if (strcmp(state, "pending:") != 0) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(state, "forwarded:b", "the event was not forwarded");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT state FROM psp_events"
                                  " WHERE psp = 'bg_stripe'"
                                  " AND event_id = $1", 1,
                                  (const char *[]) { ev }), "applied");
    cr_expect_str_eq(status_on("b", &mb, co_id), "SUCCESS");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM webhook_events"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2"
                                  " AND outcome = 'applied'", 2,
                                  (const char *[]) { mb.id, co_id }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT pay_audit_verify($1)::text", 1,
                                  (const char *[]) { mb.id }), "true");
}


/* The home flag moved from a to b (a reload or a restart with the
 * directory changed) while a kept an event pending for want of an owner:
 * a, no longer the home, still forwards what it keeps for another shard;
 * the event is applied on its owner b, not left to end unmatched on a. */
Test(shards_background, an_event_kept_on_a_former_home_is_forwarded_after_the_home_moved)
{
    int          i;
    char        *co_id, *ev, *amount, *currency, *state;
    json_t      *co;
    resp_t      *r;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    bg_home_b = 1;
    bg_start();

    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(&mb, co_id)));
    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("bg_stripe"));
    r = gateway_send(&bg_gw, "POST", PATH_PAYMENTS, &mb, uid("key"),
                     dump(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    secret_used(json_string_value(json_object_get(resp_json(r),
                                                  "psp_token")));
    secret_used(url_param(json_string_value(json_object_get(resp_json(r),
                                                            "pay_url")),
                          "t"));

    amount = db_scalar_on(db_shard("b"), "SELECT amount_total::text FROM"
                          " checkouts WHERE merchant_id = $1"
                          " AND checkout_id = $2", 2,
                          (const char *[]) { mb.id, co_id });
    currency = db_scalar_on(db_shard("b"), "SELECT currency FROM checkouts"
                            " WHERE merchant_id = $1 AND checkout_id = $2", 2,
                            (const char *[]) { mb.id, co_id });
    cr_assert_not_null(amount);

    /* kept pending on a while a was the home, as before the move */
    ev = uid("evt");
    cr_assert_str_eq(db_scalar_on(db_shard("a"),
        "SELECT state FROM pay_event_keep('bg_stripe', $1, 'SUCCEEDED',"
        " 'checkout.session.completed', '', $2, $3::bigint, $4, '', '', '{}',"
        " '\\x7b7d'::bytea, '{\"stripe-signature\":\"t=1\"}',"
        " 'sha256:0123456789abcdef')", 4,
        (const char *[]) { ev, nonce(&mb, co_id), amount, currency }),
        "pending");

    state = NULL;

    for (i = 0; i < 100; i++) {
        state = db_scalar_on(db_shard("a"),
                             "SELECT state || ':' || coalesce(forwarded_to,"
                             " '') FROM psp_events WHERE psp = 'bg_stripe'"
                             " AND event_id = $1", 1,
                             (const char *[]) { ev });
        if (strcmp(state, "pending:") != 0) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(state, "forwarded:b",
                     "the event kept on the former home a was not forwarded");
    cr_expect_str_eq(status_on("b", &mb, co_id), "SUCCESS");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM webhook_events"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2"
                                  " AND outcome = 'applied'", 2,
                                  (const char *[]) { mb.id, co_id }), "1");
}


/* A Stripe event signed with the stack's webhook secret, posted to the
 * test's gateway as psp bg_stripe's. */
static resp_t *
bg_stripe_send(const char *body)
{
    size_t       len;
    char        *secret;
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", NULL, NULL };

    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(secret);
    h[1] = stripe_signature(secret, time(NULL), body);

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = str_printf("%s/v1/webhooks/bg_stripe", bg_gw.origin);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


/* the state (and the shard it was forwarded to) of an event kept on shard */
static char *
bg_kept_on(const char *shard, const char *evt)
{
    char  *v;

    v = db_scalar_on(db_shard(shard), "SELECT coalesce(string_agg(state"
                     " || ':' || coalesce(forwarded_to, ''), ','), '')"
                     " FROM psp_events WHERE psp = 'bg_stripe'"
                     " AND event_id = $1", 1, (const char *[]) { evt });
    cr_assert_not_null(v);
    return v;
}


/* A checkout of mb (on b) registered at bg_stripe and paid by the PSP's
 * own event (payment intent *pi, event *ev), routed to b by its nonce. */
static void
bg_paid_on_b(const merchant_t *mb, char **co_id, char **pi, char **ev)
{
    char    *token;
    json_t  *co, *j;
    resp_t  *r;

    *co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(mb, *co_id)));
    co = checkout_new(*co_id, 2);
    json_object_set_new(co, "psp", json_string("bg_stripe"));
    r = gateway_send(&bg_gw, "POST", PATH_PAYMENTS, mb, uid("key"),
                     dump(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    j = resp_json(r);
    token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(token);
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    *pi = uid("pi");
    *ev = uid("evt");
    r = bg_stripe_send(str_printf(
        "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
        "\"checkout.session.completed\",\"created\":%ld,"
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"%s\","
        "\"object\":\"checkout.session\",\"client_reference_id\":\"%s\","
        "\"amount_total\":1500,\"currency\":\"usd\",\"payment_status\":"
        "\"paid\",\"status\":\"complete\",\"payment_intent\":\"%s\"}}}",
        *ev, (long) time(NULL), token, nonce(mb, *co_id), *pi));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(status_on("b", mb, *co_id), "SUCCESS");
}


/* A dispute (charge.dispute.created: no nonce, its payment intent only)
 * of a payment on b, while b is stopped: the look-up cannot ask b, so the
 * home shard a keeps it pending and answers 200 (the PSP never sends it
 * again).  b stays down longer than the sweeper's unmatched= (2 s): the
 * event still waits at home for b, and once b is back a's sweeper
 * forwards it there: the dispute booked on b, once. */
Test(shards_background, an_event_kept_at_home_while_b_is_down_past_unmatched_is_forwarded_once_b_is_back,
     .timeout = 120)
{
    int          i;
    char        *co_id, *pi, *ev, *ed, *state;
    resp_t      *r;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    bg_start_sweeper("payments_sweeper on interval=300ms after=1s retry=1s "
                     "alert=30s grace=1s unmatched=2s batch=50;\n");

    /* mb's checkout on b, paid by the PSP's own event (payment intent
     * pi), routed to b by its nonce */
    bg_paid_on_b(&mb, &co_id, &pi, &ev);
    cr_assert_str_eq(bg_kept_on("b", ev), "applied:");

    pg_stop_shard("b");

    /* the dispute: located on no shard while b does not answer, kept
     * pending at home and acknowledged (a gateway's breaker may still
     * answer 503 for b's first failures: the PSP's next try is the same
     * event) */
    ed = uid("evt");

    for (i = 0; i < 50; i++) {
        r = bg_stripe_send(str_printf(
            "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
            "\"charge.dispute.created\",\"created\":%ld,"
            "\"livemode\":false,\"data\":{\"object\":{\"id\":\"%s\","
            "\"object\":\"dispute\",\"amount\":1500,\"currency\":\"usd\","
            "\"payment_intent\":\"%s\",\"status\":\"needs_response\","
            "\"reason\":\"fraudulent\"}}}",
            ed, (long) time(NULL), uid("dp"), pi));
        if (r->status == 200) {
            break;
        }

        cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
        msleep(200);
    }

    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(bg_kept_on("a", ed), "pending:");

    /* b down past unmatched= (2 s), a's sweeper going round meanwhile */
    sleep(3);

    pg_start_shard("b");

    state = NULL;

    for (i = 0; i < 300; i++) {
        state = bg_kept_on("a", ed);
        if (strcmp(state, "forwarded:b") == 0) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(state, "forwarded:b",
                     "the dispute kept at home was never forwarded to b: "
                     "%s", state);
    cr_expect_str_eq(bg_kept_on("b", ed), "applied:");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM disputes"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2", 2,
                                  (const char *[]) { mb.id, co_id }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM webhook_events"
                                  " WHERE psp = 'bg_stripe'"
                                  " AND event_id = $1", 1,
                                  (const char *[]) { ed }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT pay_audit_verify($1)::text", 1,
                                  (const char *[]) { mb.id }), "true");
}


/* A dispute of a payment on b left unmatched at home by an earlier
 * release (b down past unmatched= then; the home sweeper had tried to
 * forward it): the sweeper leaves it be, and payments-events replay there
 * (pay_inbox_replay) makes it pending again: a's sweeper forwards it to
 * b, the dispute booked there once. */
Test(shards_background, an_event_left_unmatched_at_home_for_a_merchant_on_b_is_forwarded_once_replayed)
{
    int          i;
    char        *co_id, *pi, *ev, *ed, *state;
    PGconn      *a;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    bg_start();

    bg_paid_on_b(&mb, &co_id, &pi, &ev);

    /* kept at home, tried by its sweeper, then unmatched: in one
     * transaction, so that no sweeper forwards it in between */
    ed = uid("evt");
    a = db_shard("a");
    db_exec_on(a, "BEGIN", 0, NULL);
    cr_assert_str_eq(db_scalar_on(a,
        "SELECT state FROM pay_event_keep('bg_stripe', $1, 'DISPUTE_OPENED',"
        " 'charge.dispute.created', '', '', 1500::bigint, 'USD', $2, $3,"
        " '{}', '\\x7b7d'::bytea, '{\"stripe-signature\":\"t=1\"}',"
        " 'sha256:0123456789abcdef')", 3,
        (const char *[]) { ed, pi, uid("dp") }), "pending");
    db_exec_on(a, "UPDATE psp_events SET state = 'unmatched',"
                  " unmatched_at = now(),"
                  " forward_tried_at = now() - interval '2 hours'"
                  " WHERE psp = 'bg_stripe' AND event_id = $1", 1,
               (const char *[]) { ed });
    db_exec_on(a, "COMMIT", 0, NULL);

    /* rounds go by (300 ms each): it stays unmatched */
    msleep(1500);
    cr_assert_str_eq(bg_kept_on("a", ed), "unmatched:");

    cr_assert_str_eq(db_scalar_on(a,
        "SELECT state_before || '>' || state"
        " FROM pay_inbox_replay('bg_stripe', $1, 'e2e')", 1,
        (const char *[]) { ed }), "unmatched>pending");

    state = NULL;

    for (i = 0; i < 100; i++) {
        state = bg_kept_on("a", ed);
        if (strcmp(state, "pending:") != 0) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(state, "forwarded:b",
                     "the replayed dispute was not forwarded to b: %s",
                     state);
    cr_expect_str_eq(bg_kept_on("b", ed), "applied:");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM disputes"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2", 2,
                                  (const char *[]) { mb.id, co_id }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT pay_audit_verify($1)::text", 1,
                                  (const char *[]) { mb.id }), "true");
}


/* --- an inquiry's end an earlier release kept at home ------------------------ */

/* what shard b's books say of mb's checkout co_id: the disputes account's
 * balance, the dispute bookings (one per order part), and the sellers'
 * wallets, as "held/bookings/wallets" */
static char *
bg_books_on_b(const merchant_t *mb, const char *co_id)
{
    return db_scalar_on(db_shard("b"),
        "SELECT (SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e"
        "          JOIN ledger_transactions t USING (merchant_id, txn_id)"
        "         WHERE e.merchant_id = $1 AND t.checkout_id = $2"
        "           AND e.account LIKE 'disputes:%') || '/' ||"
        "       (SELECT count(*) FROM ledger_transactions"
        "         WHERE merchant_id = $1 AND checkout_id = $2"
        "           AND kind = 'dispute') || '/' ||"
        "       (SELECT coalesce(sum(balance), 0) FROM wallets"
        "         WHERE merchant_id = $1 AND currency = 'USD')", 2,
        (const char *[]) { mb->id, co_id });
}


/* migration 126 applied on shard name, as payments-migrate applies it: in
 * the upgrade's transaction, then its reading of the inbox after the
 * commit (a statement of its own: it commits as it goes) */
static void
bg_migration_126(const char *name)
{
    char      *sql;
    PGresult  *res;

    sql = file_read(str_printf("%s/sql/migrations/"
                               "126_inquiry_ends_forwarded.sql",
                               env("PAY_TEST_ROOT")), NULL);
    cr_assert_not_null(sql, "no migration 126");
    res = PQexec(db_shard(name), str_printf("BEGIN; %s COMMIT;", sql));
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", name,
                 PQerrorMessage(db_shard(name)));
    PQclear(res);

    res = PQexec(db_shard(name), "CALL inquiry_ends_applied_again()");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", name,
                 PQerrorMessage(db_shard(name)));
    PQclear(res);
    cr_assert_str_eq(db_scalar_on(db_shard(name), "SELECT count(*) FROM "
                                  "inquiry_ends_unread", 0, NULL), "0",
                     "%s: months left unread", name);
}


/*
 * A dispute of mb's payment on b that an earlier release opened for an
 * inquiry (Stripe's charge.dispute.created with warning_needs_response,
 * read as DISPUTE_OPENED and booked on b, located by its payment), whose
 * end (charge.dispute.closed, warning_closed) that release read as
 * IGNORED and so kept on the home shard a, recorded there with no
 * merchant, applied long before this release: too old for the home
 * sweeper to forward, and nothing on a is its dispute.  The upgrade
 * (how 0: migration 126 on every shard) or an operator's replay of the
 * end at home (how 1: payments-events replay, pay_inbox_replay) makes it
 * pending at home for forwarding; a's sweeper keeps it on b, where it
 * gives the dispute back as a won one: WON, the sellers' balances whole,
 * once however often either is run again.
 */
static void
bg_inquiry_end_kept_home(int how)
{
    int          i;
    char        *co_id, *pi, *ev, *dp, *evo, *evc, *before, *state, *again;
    PGconn      *a;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    bg_start_sweeper("payments_sweeper on interval=300ms after=1s retry=1s "
                     "alert=30s grace=1s unmatched=60s batch=50;\n");

    bg_paid_on_b(&mb, &co_id, &pi, &ev);
    before = bg_books_on_b(&mb, co_id);

    /* the inquiry's first news as the earlier release read it, on b */
    dp = uid("dp");
    evo = uid("evt");
    cr_assert_str_eq(db_scalar_on(db_shard("b"),
        "SELECT outcome FROM pay_event_keep('bg_stripe', $1, 'DISPUTE_OPENED',"
        " 'charge.dispute.created', '', '', 1500::bigint, 'USD', $2, $3, '{}',"
        " convert_to($4, 'UTF8'), '{\"stripe-signature\":\"t=1\"}',"
        " 'sha256:0123456789abcdef')", 4,
        (const char *[]) { evo, pi, dp, str_printf(
            "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
            "\"charge.dispute.created\",\"created\":%ld,\"livemode\":false,"
            "\"data\":{\"object\":{\"id\":\"%s\",\"object\":\"dispute\","
            "\"amount\":1500,\"currency\":\"usd\",\"payment_intent\":\"%s\","
            "\"status\":\"warning_needs_response\",\"reason\":"
            "\"fraudulent\"}}}", evo, (long) time(NULL), dp, pi) }),
        "applied");
    cr_assert_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT status FROM disputes"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2", 2,
                                  (const char *[]) { mb.id, co_id }), "OPEN");
    cr_assert_str_neq(bg_books_on_b(&mb, co_id), before);

    /* its end kept at home as that release recorded it (ignored, no
     * merchant), received and applied an hour before the upgrade (within
     * this month's partition) */
    evc = uid("evt");
    a = db_shard("a");
    (void) db_scalar_on(a, "SELECT pay_inbox_partitions(1)", 0, NULL);
    db_exec_on(a, "INSERT INTO webhook_events (psp, event_id, kind, type,"
                  " outcome) VALUES ('bg_stripe', $1, 'IGNORED',"
                  " 'charge.dispute.closed', 'ignored')", 1,
               (const char *[]) { evc });
    db_exec_on(a, "INSERT INTO psp_events (psp, event_id, received_at,"
                  " state, body, headers, key_id, kind, type, token,"
                  " reference, amount, currency, payment_ref, object_ref,"
                  " tokens, outcome, applied_at)"
                  " SELECT 'bg_stripe', $1, r, 'applied',"
                  " convert_to($4, 'UTF8'), '{\"stripe-signature\":\"t=1\"}',"
                  " 'sha256:0123456789abcdef', 'IGNORED',"
                  " 'charge.dispute.closed', '', '', 1500, 'USD', $2, $3,"
                  " '{}', 'ignored', r"
                  " FROM (SELECT greatest(now() - interval '1 hour',"
                  " date_trunc('month', now() AT TIME ZONE 'UTC')"
                  " AT TIME ZONE 'UTC') AS r) x", 4,
               (const char *[]) { evc, pi, dp, str_printf(
                   "{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                   "\"charge.dispute.closed\",\"created\":%ld,\"livemode\":"
                   "false,\"data\":{\"object\":{\"id\":\"%s\",\"object\":"
                   "\"dispute\",\"amount\":1500,\"currency\":\"usd\","
                   "\"payment_intent\":\"%s\",\"status\":\"warning_closed\","
                   "\"reason\":\"fraudulent\"}}}", evc,
                   (long) time(NULL) - 3600, dp, pi) });

    /* rounds go by (300 ms each): it stays as it was */
    msleep(1500);
    cr_assert_str_eq(bg_kept_on("a", evc), "applied:");
    cr_assert_str_eq(bg_kept_on("b", evc), "");

    if (how == 0) {
        /* the upgrade, on every shard */
        bg_migration_126("a");
        bg_migration_126("b");

    } else {
        cr_assert_str_eq(db_scalar_on(a,
            "SELECT state_before || '>' || state || ':' || outcome"
            " FROM pay_inbox_replay('bg_stripe', $1, 'e2e')", 1,
            (const char *[]) { evc }), "applied>pending:duplicate");
    }

    state = NULL;

    for (i = 0; i < 100; i++) {
        state = bg_kept_on("a", evc);
        if (strcmp(state, "forwarded:b") == 0) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(state, "forwarded:b",
                     "the inquiry's end kept at home was never forwarded to "
                     "b: %s", state);
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT state || ':' || outcome"
                                  " FROM psp_events WHERE psp = 'bg_stripe'"
                                  " AND event_id = $1", 1,
                                  (const char *[]) { evc }),
                     "applied:applied");

    /* the dispute given back as a won one: nothing held, the sellers'
     * wallets as before it opened, each part booked back once */
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT status FROM disputes"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2", 2,
                                  (const char *[]) { mb.id, co_id }), "WON");
    cr_expect_str_eq(bg_books_on_b(&mb, co_id),
                     str_printf("0/4/%s", strrchr(before, '/') + 1));

    /* once: the upgrade, or a replay at home or on b, again */
    bg_migration_126("a");
    again = db_scalar_on(a, "SELECT state || ':' || outcome FROM"
                         " pay_inbox_replay('bg_stripe', $1, 'e2e')", 1,
                         (const char *[]) { evc });
    cr_expect_str_eq(again, "forwarded:forwarded");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT outcome FROM pay_inbox_replay("
                                  "'bg_stripe', $1, 'e2e')", 1,
                                  (const char *[]) { evc }), "duplicate");
    msleep(1500);
    cr_expect_str_eq(bg_kept_on("a", evc), "forwarded:b");
    cr_expect_str_eq(bg_books_on_b(&mb, co_id),
                     str_printf("0/4/%s", strrchr(before, '/') + 1));
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM audit_log"
                                  " WHERE merchant_id = $1"
                                  " AND checkout_id = $2 AND action ="
                                  " 'dispute:inquiry_released'", 2,
                                  (const char *[]) { mb.id, co_id }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT count(*) FROM webhook_events"
                                  " WHERE psp = 'bg_stripe'"
                                  " AND event_id = $1", 1,
                                  (const char *[]) { evc }), "1");
    cr_expect_str_eq(db_scalar_on(db_shard("b"),
                                  "SELECT pay_audit_verify($1)::text", 1,
                                  (const char *[]) { mb.id }), "true");
}


Test(shards_background, an_inquiry_end_kept_at_home_before_the_upgrade_gives_back_the_dispute_on_b,
     .timeout = 120)
{
    bg_inquiry_end_kept_home(0);
}


Test(shards_background, an_inquiry_end_kept_at_home_replayed_gives_back_the_dispute_on_b,
     .timeout = 120)
{
    bg_inquiry_end_kept_home(1);
}
