/*
 * End to end: PSP webhooks over two shards (doc/plans/shards.md 1.3,
 * "Webhooks, per dialect"), on the shards lane's stack once its gateway
 * serves both shards: each event, verified first, is kept on the shard of
 * the merchant its nonce names, or on the shard that holds the session,
 * payment or object it names (pay_event_locate, asked of every shard),
 * and what no shard claims on the home shard a.  Each dialect's events:
 * Stripe (a dispute without nonce located by its payment intent), an
 * Adyen batch mixing merchants of a and b (a chargeback without
 * merchantReference located), generic (a token without reference
 * located).  A batch with an item of a stopped shard b is 503 and applied
 * once after b is back.
 *
 * The last test stops shard b: the lane runs this suite one test at a
 * time.  On any other stack, or while the gateway serves shard a alone,
 * every test is skipped.
 */

#include "harness.h"

#include <time.h>
#include <unistd.h>


#define ADYEN_PSP    "mock_adyen"
#define GENERIC_PSP  "mock_generic"


static void
shards_webhooks_init(void)
{
    shards_need(2);
    /* the stack's gateway serves b, again after a test before this one
     * stopped it */
    shard_wait_served("b", 30);
}


TestSuite(shards_webhooks, .timeout = E2E_TIMEOUT,
          .init = shards_webhooks_init);


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *co;
    char        *nonce;
    char        *token;
} reg_t;


static void
register_on(reg_t *g, const char *shard, const char *psp)
{
    json_t  *body;
    resp_t  *r;

    g->psp = psp;
    merchant_new_on(&g->m, shard);
    g->co = uid("co");
    g->nonce = nonce(&g->m, g->co);

    body = checkout_new(g->co, 2);
    json_object_set_new(body, "psp", json_string(psp));
    r = register_ok(&g->m, uid("key"), dump(body));
    g->token = strdup(json_string_value(json_object_get(resp_json(r),
                                                        "psp_token")));
    cr_assert(g->token[0] != '\0');
}


/* its status (a worker whose pool of a shard just started again may
 * answer 503 for a moment) */
static char *
status_of(const reg_t *g)
{
    int      i;
    resp_t  *r;

    for (i = 0; ; i++) {
        r = api_get(&g->m, str_printf("/v1/checkouts/%s", g->co));
        if (r->status != 503 || i == 40) {
            break;
        }
        msleep(250);
    }
    cr_assert_eq(r->status, 200, "%s", r->body);
    return strdup(json_string_value(json_object_get(resp_json(r), "status")));
}


/* the inbox rows of (psp, event id) on a shard: their states, "" none */
static char *
kept_on(const char *shard, const char *psp, const char *evt)
{
    char  *v;

    v = db_scalar_on(db_shard(shard), "SELECT coalesce(string_agg(state,"
                     " ','), '') FROM psp_events WHERE psp = $1 AND"
                     " event_id = $2", 2, (const char *[]) { psp, evt });
    cr_assert_not_null(v);
    return v;
}


/* the checkout's ledger transactions on a shard */
static long
ledger_txns_on(const char *shard, const reg_t *g)
{
    return atol(db_scalar_on(db_shard(shard), "SELECT count(*) FROM"
                             " ledger_transactions WHERE merchant_id = $1"
                             " AND checkout_id = $2", 2,
                             (const char *[]) { g->m.id, g->co }));
}


static long
disputes_on(const char *shard, const reg_t *g)
{
    return atol(db_scalar_on(db_shard(shard), "SELECT count(*) FROM"
                             " disputes WHERE merchant_id = $1 AND"
                             " checkout_id = $2", 2,
                             (const char *[]) { g->m.id, g->co }));
}


/* paid once, on its own shard, and nothing of it on the other */
static void
expect_paid_on(const reg_t *g, const char *shard, const char *other)
{
    cr_expect_str_eq(status_of(g), "SUCCESS", "%s on %s", g->co, shard);
    cr_expect_eq(ledger_txns_on(shard, g), 2, "%s on %s", g->co, shard);
    cr_expect_eq(ledger_txns_on(other, g), 0, "%s on %s", g->co, other);
}


static double
routed(const char *shard, const char *by)
{
    double  v;

    v = metric_value(NULL, str_printf("payments_webhook_events_routed_total"
                                      "{shard=\"%s\",by=\"%s\"}", shard, by));
    return v < 0 ? 0 : v;
}


/* --- stripe ------------------------------------------------------------- */

static resp_t *
stripe_send(const char *body)
{
    size_t  len;
    char   *secret;

    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(secret);

    return webhook_post(env("PAY_TEST_PSP"),
                        stripe_signature(secret, time(NULL), body), body);
}


/* checkout.session.completed, paid; reference NULL: g's nonce */
static char *
stripe_paid(const char *evt, const reg_t *g, const char *token,
    const char *reference, const char *pi)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                      "\"checkout.session.completed\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":{\"id\":"
                      "\"%s\",\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s\",\"amount_total\":1500,"
                      "\"currency\":\"usd\",\"payment_status\":\"paid\","
                      "\"status\":\"complete\",\"payment_intent\":\"%s\"}}}",
                      evt, (long) time(NULL), token,
                      reference ? reference : g->nonce, pi);
}


/* charge.dispute.created: no nonce anywhere, only the payment intent */
static char *
stripe_dispute(const char *evt, const char *pi)
{
    return str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                      "\"charge.dispute.created\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":{\"id\":"
                      "\"%s\",\"object\":\"dispute\",\"amount\":1500,"
                      "\"currency\":\"usd\",\"payment_intent\":\"%s\","
                      "\"status\":\"needs_response\",\"reason\":"
                      "\"fraudulent\"}}}",
                      evt, (long) time(NULL), uid("dp"), pi);
}


/* A paid session of a merchant of a and one of b: each kept and applied
 * on its merchant's shard only; a dispute that names no merchant (its
 * payment intent only) is located on b and applied there. */
Test(shards_webhooks, stripe_events_reach_their_merchants_shard_and_a_dispute_is_located)
{
    reg_t    ga, gb;
    resp_t  *r;
    char    *ea = uid("evt"), *eb = uid("evt"), *ed = uid("evt");
    char    *pia = uid("pi"), *pib = uid("pi");
    double   nonce_b, located_b;

    register_on(&ga, "a", env("PAY_TEST_PSP"));
    register_on(&gb, "b", env("PAY_TEST_PSP"));
    nonce_b = routed("b", "nonce");
    located_b = routed("b", "located");

    r = stripe_send(stripe_paid(ea, &ga, ga.token, NULL, pia));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    r = stripe_send(stripe_paid(eb, &gb, gb.token, NULL, pib));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    expect_paid_on(&ga, "a", "b");
    expect_paid_on(&gb, "b", "a");
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), ea), "applied");
    cr_expect_str_eq(kept_on("b", env("PAY_TEST_PSP"), ea), "");
    cr_expect_str_eq(kept_on("b", env("PAY_TEST_PSP"), eb), "applied");
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), eb), "",
                     "b's event kept on the home shard");

    r = stripe_send(stripe_dispute(ed, pib));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(kept_on("b", env("PAY_TEST_PSP"), ed), "applied");
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), ed), "");
    cr_expect_eq(disputes_on("b", &gb), 1);

    /* delivered again: a duplicate on b, nothing more */
    r = stripe_send(stripe_dispute(ed, pib));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_eq(disputes_on("b", &gb), 1);
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), ed), "");

    cr_expect_geq(routed("b", "nonce"), nonce_b + 1);
    cr_expect_geq(routed("b", "located"), located_b + 2);
}


/* What no shard claims is kept on the home shard a, as one shard would
 * keep it: a dispute of a payment no shard has (pending, for a later
 * retry) and a session whose reference is not our nonce (foreign). */
Test(shards_webhooks, an_event_no_shard_claims_is_kept_on_the_home_shard)
{
    resp_t  *r;
    reg_t    none;
    char    *ed = uid("evt"), *ef = uid("evt");
    double   home_a;

    home_a = routed("a", "home");
    memset(&none, 0, sizeof(none));

    r = stripe_send(stripe_dispute(ed, uid("pi_nowhere")));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), ed), "pending");
    cr_expect_str_eq(kept_on("b", env("PAY_TEST_PSP"), ed), "");

    r = stripe_send(stripe_paid(ef, &none, uid("cs_test_nowhere"),
                                "ORDER-4711", uid("pi")));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), ef), "foreign");
    cr_expect_str_eq(kept_on("b", env("PAY_TEST_PSP"), ef), "");

    cr_expect_geq(routed("a", "home"), home_a + 2);
}


/* --- adyen ---------------------------------------------------------------- */

/* one signed NotificationRequestItem of 15.00 USD */
static char *
adyen_item(const char *psp, const char *orig, const char *merchant_ref,
    const char *code)
{
    return adyen_notification_item(&(adyen_notification_t) {
                                       .psp_ref = psp,
                                       .original = orig,
                                       .merchant_ref = merchant_ref,
                                       .amount = 1500,
                                       .currency = "USD",
                                       .event_code = code,
                                       .success = "true" }, 0);
}


static resp_t *
adyen_send(const char *items)
{
    return webhook_post(ADYEN_PSP, "X-Unused: 1",
                        str_printf("{\"live\":\"false\",\"notificationItems\":"
                                   "[%s]}", items));
}


/* One batch with an authorisation for a merchant of a and one for a
 * merchant of b: each applied on its own shard; then a chargeback whose
 * merchantReference is empty, located on b by the payment it names. */
Test(shards_webhooks, an_adyen_batch_mixing_shards_applies_each_item_on_its_own)
{
    reg_t    ga, gb;
    resp_t  *r;
    char    *pa = adyen_psp_ref(), *pb = adyen_psp_ref();
    char    *cb = adyen_psp_ref();

    register_on(&ga, "a", ADYEN_PSP);
    register_on(&gb, "b", ADYEN_PSP);

    r = adyen_send(str_printf("%s,%s",
                              adyen_item(pa, "", ga.nonce, "AUTHORISATION"),
                              adyen_item(pb, "", gb.nonce, "AUTHORISATION")));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(r->body, "[accepted]");

    expect_paid_on(&ga, "a", "b");
    expect_paid_on(&gb, "b", "a");
    cr_expect_str_eq(kept_on("a", ADYEN_PSP,
                             str_printf("%s:AUTHORISATION", pa)), "applied");
    cr_expect_str_eq(kept_on("b", ADYEN_PSP,
                             str_printf("%s:AUTHORISATION", pa)), "");
    cr_expect_str_eq(kept_on("b", ADYEN_PSP,
                             str_printf("%s:AUTHORISATION", pb)), "applied");
    cr_expect_str_eq(kept_on("a", ADYEN_PSP,
                             str_printf("%s:AUTHORISATION", pb)), "");

    r = adyen_send(adyen_item(cb, pb, "", "CHARGEBACK"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(kept_on("b", ADYEN_PSP,
                             str_printf("%s:CHARGEBACK", cb)), "applied");
    cr_expect_str_eq(kept_on("a", ADYEN_PSP,
                             str_printf("%s:CHARGEBACK", cb)), "");
    cr_expect_eq(disputes_on("b", &gb), 1);
}


/* A batch for a merchant of a and one of b while b is stopped: 503 (the
 * item of b is kept nowhere else); a's item is committed on a.  An event
 * located nowhere meanwhile is kept pending on a.  Once b is back, the
 * same batch again: b's item applied once, a's a duplicate. */
Test(shards_webhooks, a_batch_with_an_item_of_a_stopped_shard_is_503_then_applied_once,
     .timeout = 90)
{
    int      i;
    reg_t    ga, gb;
    resp_t  *r;
    char    *pa = adyen_psp_ref(), *pb = adyen_psp_ref();
    char    *items, *eb, *ed = uid("evt");

    register_on(&ga, "a", ADYEN_PSP);
    register_on(&gb, "b", ADYEN_PSP);
    items = str_printf("%s,%s",
                       adyen_item(pa, "", ga.nonce, "AUTHORISATION"),
                       adyen_item(pb, "", gb.nonce, "AUTHORISATION"));
    eb = str_printf("%s:AUTHORISATION", pb);

    pg_stop_shard("b");

    r = adyen_send(items);
    cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
    cr_expect_str_eq(kept_on("a", ADYEN_PSP, eb), "", "parked on a");
    cr_expect_eq(ledger_txns_on("a", &ga), 2, "a's item is committed");
    cr_expect_eq(ledger_txns_on("a", &gb), 0);

    /* an event without nonce that a does not hold, while b cannot be
     * asked: kept pending on the home shard a (its forwarding is the
     * sweeper's), answered 200 */
    r = stripe_send(stripe_dispute(ed, uid("pi")));
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(kept_on("a", env("PAY_TEST_PSP"), ed), "pending");

    pg_start_shard("b");

    /* the PSP delivers again until answered 2xx */
    for (i = 0; i < 60; i++) {
        r = adyen_send(items);
        if (r->status == 200) {
            break;
        }
        cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
        msleep(250);
    }
    cr_assert_eq(r->status, 200, "b back: %ld %s", r->status, r->body);

    expect_paid_on(&gb, "b", "a");
    expect_paid_on(&ga, "a", "b");
    cr_expect_str_eq(kept_on("b", ADYEN_PSP, eb), "applied");
    cr_expect_str_eq(kept_on("a", ADYEN_PSP, eb), "");
    cr_expect_str_eq(kept_on("b", env("PAY_TEST_PSP"), ed), "");
    cr_expect_str_eq(db_scalar_on(db_shard("a"), "SELECT count(*) FROM"
                                  " webhook_events WHERE psp = $1 AND"
                                  " event_id = $2", 2,
                                  (const char *[]) { ADYEN_PSP,
                                      str_printf("%s:AUTHORISATION", pa) }),
                     "1");

    /* and once more, once every worker serves b again (the 200 above may
     * be one worker's while the other's breaker is still open): nothing
     * moves */
    shard_wait_served("b", 30);
    r = adyen_send(items);
    cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_eq(ledger_txns_on("b", &gb), 2);
    cr_expect_eq(ledger_txns_on("a", &ga), 2);
}


/* --- generic -------------------------------------------------------------- */

static resp_t *
generic_send(const char *body)
{
    return webhook_post(GENERIC_PSP,
                        generic_verification(body, time(NULL), "mock-es256",
                                             NULL), body);
}


static char *
generic_paid(const char *evt, const char *reference, const char *token)
{
    return str_printf("{\"event_id\":\"%s\",\"type\":\"payment.succeeded\","
                      "\"reference\":\"%s\",\"token\":\"%s\",\"amount\":"
                      "\"15.00\",\"currency\":\"USD\"}", evt, reference,
                      token);
}


/* A generic event with b's merchant's nonce is applied on b; one with a
 * session token and no reference is located on b by the token. */
Test(shards_webhooks, generic_events_by_nonce_and_by_token_reach_shard_b)
{
    reg_t    g1, g2, ga;
    resp_t  *r;
    char    *e1 = uid("gev"), *e2 = uid("gev"), *ea = uid("gev");

    register_on(&g1, "b", GENERIC_PSP);
    register_on(&g2, "b", GENERIC_PSP);
    register_on(&ga, "a", GENERIC_PSP);

    r = generic_send(generic_paid(e1, g1.nonce, g1.token));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    r = generic_send(generic_paid(e2, "", g2.token));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    r = generic_send(generic_paid(ea, ga.nonce, ga.token));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    expect_paid_on(&g1, "b", "a");
    expect_paid_on(&g2, "b", "a");
    expect_paid_on(&ga, "a", "b");
    cr_expect_str_eq(kept_on("b", GENERIC_PSP, e1), "applied");
    cr_expect_str_eq(kept_on("b", GENERIC_PSP, e2), "applied");
    cr_expect_str_eq(kept_on("a", GENERIC_PSP, e1), "");
    cr_expect_str_eq(kept_on("a", GENERIC_PSP, e2), "");
    cr_expect_str_eq(kept_on("a", GENERIC_PSP, ea), "applied");
}
