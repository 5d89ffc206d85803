/*
 * End to end: the adyen and generic dialects, registration and webhooks,
 * against the mock PSP's /v71/sessions and /sessions.  The tests sign
 * events with the run's keys as the PSPs would (Adyen: the HMAC key of
 * conf/adyen.hmac over the eight fields of each item; generic: an ES256
 * JWT by conf/generic_jwt.key, kid mock-es256), and also let the mock pay
 * and send its own signed webhooks.
 */

#include "harness.h"

#include <time.h>
#include <unistd.h>


#define ADYEN_PSP    "mock_adyen"
#define GENERIC_PSP  "mock_generic"
#define GENERIC_KID  "mock-es256"
#define GENERIC_HDR  "Payments-Verification"


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *co;
    char        *nonce;
    char        *token;
} reg_t;


static void
register_with(reg_t *g, const char *psp)
{
    json_t  *body, *j;
    resp_t  *r;

    g->psp = psp;
    merchant_new(&g->m);
    g->co = uid("co");
    g->nonce = nonce(&g->m, g->co);

    body = checkout_new(g->co, 2);
    json_object_set_new(body, "psp", json_string(psp));
    r = register_ok(&g->m, uid("key"), dump(body));
    j = resp_json(r);
    g->token = strdup(json_string_value(json_object_get(j, "psp_token")));
    cr_assert(g->token[0] != '\0');
}


/* The event inbox: g's merchant and checkout id chosen, the checkout not
 * registered yet (register_now registers it under that id). */
static void
register_later(reg_t *g, const char *psp)
{
    g->psp = psp;
    merchant_new(&g->m);
    g->co = uid("co");
    g->nonce = nonce(&g->m, g->co);
    g->token = uid("tok_not_yet");
}


static void
register_now(reg_t *g)
{
    json_t  *body;

    body = checkout_new(g->co, 2);
    json_object_set_new(body, "psp", json_string(g->psp));
    (void) register_ok(&g->m, uid("key"), dump(body));
}


/* the inbox's state of g's PSP's event evt ("a,b" when kept twice) */
static char *
inbox_state(const reg_t *g, const char *evt)
{
    const char  *params[] = { g->psp, evt };

    return db_scalar("SELECT string_agg(state, ',') FROM psp_events "
                     "WHERE psp = $1 AND event_id = $2", 2, params);
}


/* what the sweeper's inbox step runs (the suite's gateway has no sweeper);
 * how many events it moved */
static long
inbox_retry(void)
{
    return atol(db_scalar("SELECT count(*) FROM pay_inbox_retry(3600, 1000)",
                          0, NULL));
}


static char *
status_of(const reg_t *g)
{
    resp_t  *r;

    r = api_get(&g->m, str_printf("/v1/checkouts/%s", g->co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    return strdup(json_string_value(json_object_get(resp_json(r), "status")));
}


static long
ledger_txns(const reg_t *g)
{
    const char  *params[] = { g->m.id, g->co };

    return atol(db_scalar("SELECT count(*) FROM ledger_transactions "
                          "WHERE merchant_id = $1 AND checkout_id = $2",
                          2, params));
}


static void
expect_paid_books(const reg_t *g)
{
    const char  *params[] = { g->m.id, g->co };

    cr_assert_str_eq(status_of(g), "SUCCESS");
    cr_assert_eq(ledger_txns(g), 2, "one ledger transaction per order");
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
}


/* Waits until the checkout's status is want (the mock's own delivery). */
static void
expect_status_within(const reg_t *g, const char *want, int seconds)
{
    int    i;
    char  *s;

    s = NULL;

    for (i = 0; i < seconds * 10; i++) {
        s = status_of(g);
        if (strcmp(s, want) == 0) {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("checkout %s is %s, not %s, after %d s", g->co, s, want,
                   seconds);
}


static void
mock_session(const char *token, const char *action)
{
    req_t    rq;
    resp_t  *r;

    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/%s", token, action));
    rq.headers = NULL;
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock %s: %ld %s", action,
              r->status, r->body);
}


/* --- adyen ------------------------------------------------------------------ */

typedef struct {
    const char  *psp_ref;
    const char  *merchant_ref;
    long         amount;
    const char  *currency;
    const char  *event_code;
    const char  *success;
    const char  *account;       /* merchantAccountCode; NULL: the run's */
} adyen_item_t;


static char *
adyen_item(const adyen_item_t *it, int tamper)
{
    return adyen_notification_item(&(adyen_notification_t) {
                                       .psp_ref = it->psp_ref,
                                       .account = it->account,
                                       .merchant_ref = it->merchant_ref,
                                       .amount = it->amount,
                                       .currency = it->currency,
                                       .event_code = it->event_code,
                                       .success = it->success },
                                   tamper ? 1 : 0);
}


static char *
adyen_body(const char *items)
{
    return str_printf("{\"live\":\"false\",\"notificationItems\":[%s]}",
                      items);
}




static adyen_item_t
adyen_auth(const reg_t *g, long amount, const char *success)
{
    adyen_item_t  it;

    it.psp_ref = adyen_psp_ref();
    it.merchant_ref = g->nonce;
    it.amount = amount;
    it.currency = "USD";
    it.event_code = "AUTHORISATION";
    it.success = success;
    it.account = NULL;

    return it;
}


static resp_t *
adyen_send(const char *body)
{
    return webhook_post(ADYEN_PSP, "X-Unused: 1", body);
}


Test(adyen, registers_a_session_under_the_nonce)
{
    reg_t  g;
    long   sessions, requests;

    register_with(&g, ADYEN_PSP);
    mock_registrations(g.nonce, &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_str_eq(status_of(&g), "EXECUTING");
}


Test(adyen, an_authorisation_books_the_ledger_and_answers_accepted)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   it;

    register_with(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(r->body, "[accepted]");
    expect_paid_books(&g);
}


/* The event inbox: an authorisation before its checkout is acknowledged
 * and kept pending, then applied once by the retry after the registration;
 * a reference that is not a nonce is another system's: kept foreign. */
Test(adyen, an_authorisation_before_its_checkout_is_kept_then_applied_once)
{
    reg_t          g;
    resp_t        *r;
    char          *body, *evt;
    adyen_item_t   it;
    const char    *params[2];

    register_later(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");
    body = adyen_body(adyen_item(&it, 0));

    r = adyen_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(r->body, "[accepted]");

    /* the item's event id begins with its pspReference */
    params[0] = ADYEN_PSP;
    params[1] = it.psp_ref;
    evt = db_scalar("SELECT string_agg(event_id, ',') FROM psp_events "
                    "WHERE psp = $1 AND event_id LIKE $2 || '%'", 2, params);
    cr_assert_not_null(evt);
    cr_assert_str_eq(inbox_state(&g, evt), "pending");
    params[1] = evt;
    cr_expect_str_eq(db_scalar("SELECT (key_id LIKE 'sha256:%' AND "
                               "convert_from(body, 'UTF8') LIKE "
                               "'%hmacSignature%')::text FROM psp_events "
                               "WHERE psp = $1 AND event_id = $2", 2, params),
                     "true");

    inbox_retry();
    cr_expect_str_eq(inbox_state(&g, evt), "pending", "no checkout yet");

    register_now(&g);
    inbox_retry();
    cr_assert_str_eq(inbox_state(&g, evt), "applied");
    expect_paid_books(&g);

    /* delivered again, retried again: nothing twice */
    r = adyen_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    inbox_retry();
    cr_expect_str_eq(inbox_state(&g, evt), "applied");
    cr_expect_eq(ledger_txns(&g), 2);
}


Test(adyen, a_reference_not_ours_is_acknowledged_and_kept_foreign)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   it;
    const char    *params[2];

    register_later(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");
    it.merchant_ref = uid("POS-till-7 order ");
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(r->body, "[accepted]");

    /* over shards, what no shard claims is kept on the home shard, a */
    params[0] = ADYEN_PSP;
    params[1] = it.psp_ref;
    cr_assert_str_eq(db_scalar_on(shards_n() > 1 ? db_shard("a") : db(),
                                  "SELECT string_agg(state, ',') FROM "
                                  "psp_events WHERE psp = $1 AND event_id "
                                  "LIKE $2 || '%'", 2, params), "foreign");
}


/* payments-events verify with args, against the suite's configuration;
 * its output in *out, its exit status returned */
static int
events_verify(const char *const *args, char **out)
{
    char    *argv[24];
    size_t   n = 0, i;

    argv[n++] = str_printf("%s/bin/payments-events", env("PAY_TEST_ROOT"));
    argv[n++] = (char *) "--db";
    argv[n++] = (char *) env("PAY_TEST_PG");
    argv[n++] = (char *) "verify";
    argv[n++] = (char *) "--conf";
    argv[n++] = run_file("nginx.conf");

    for (i = 0; args[i] != NULL && n < 23; i++) {
        argv[n++] = (char *) args[i];
    }

    argv[n] = NULL;

    return run(argv, out);
}


/* the line of verify's output about evt begins with want */
static void
expect_verified(const char *out, const char *evt, const char *want)
{
    const char  *line;

    for (line = out; line != NULL && *line; line = strchr(line, '\n')) {
        line += (*line == '\n');
        if (strncmp(line, want, strlen(want)) == 0
            && line[strlen(want)] == '\t')
        {
            const char  *eol = strchr(line, '\n');

            if (mem_contains(line, eol ? (size_t) (eol - line)
                                       : strlen(line), evt))
            {
                return;
            }
        }
    }

    cr_expect_fail("no \"%s\" line for %s in:\n%s", want, evt, out);
}


/*
 * payments-events verify of the event kept as id: verified, over every
 * shard on a sharded stack (an event kept unread is on the home shard,
 * not a merchant's; each line then begins with its shard's name)
 */
static void
expect_kept_verified(const char *psp, const char *id)
{
    char  *argv[12], *out;

    argv[0] = str_printf("%s/bin/payments-events", env("PAY_TEST_ROOT"));
    argv[1] = (char *) (shards_n() > 1 ? "--shards" : "--db");
    argv[2] = (char *) (shards_n() > 1 ? env("PAY_TEST_SHARDS_FILE")
                                       : env("PAY_TEST_PG"));
    argv[3] = (char *) "verify";
    argv[4] = (char *) "--conf";
    argv[5] = run_file("nginx.conf");
    argv[6] = (char *) "--psp";
    argv[7] = (char *) psp;
    argv[8] = (char *) "--event";
    argv[9] = (char *) id;
    argv[10] = NULL;

    out = NULL;
    cr_expect_eq(run(argv, &out), 0, "%s", out);
    expect_verified(out, id, shards_n() > 1 ? "a\tverified" : "verified");
}


/* Each item of a batch is kept alone, as the PSP wrote it, verifies
 * again alone with the key its row names, and one altered in the table is
 * reported while its neighbour still verifies. */
Test(adyen, each_item_of_a_batch_is_kept_alone_and_verifies_again)
{
    reg_t          g1, g2;
    resp_t        *r;
    char          *i1, *i2, *e1, *e2, *out, *since;
    adyen_item_t   it1, it2;
    const char    *params[3];

    since = db_scalar("SELECT now()::text", 0, NULL);
    register_with(&g1, ADYEN_PSP);
    register_later(&g2, ADYEN_PSP);
    it1 = adyen_auth(&g1, 1500, "true");
    it2 = adyen_auth(&g2, 1500, "true");
    i1 = adyen_item(&it1, 0);
    i2 = adyen_item(&it2, 0);

    r = adyen_send(str_printf("{\"live\":\"false\",\"notificationItems\":"
                              "[\n  %s ,\n  %s\n]}", i1, i2));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    expect_paid_books(&g1);

    params[0] = ADYEN_PSP;
    params[1] = it1.psp_ref;
    e1 = db_scalar("SELECT event_id FROM psp_events WHERE psp = $1 "
                   "AND event_id LIKE $2 || '%'", 2, params);
    params[1] = it2.psp_ref;
    e2 = db_scalar("SELECT event_id FROM psp_events WHERE psp = $1 "
                   "AND event_id LIKE $2 || '%'", 2, params);
    cr_assert_not_null(e1);
    cr_assert_not_null(e2);
    cr_expect_str_eq(inbox_state(&g2, e2), "pending");

    /* each row: its own item's bytes, not the batch's; its key by id */
    params[1] = e1;
    params[2] = i1;
    cr_expect_str_eq(db_scalar("SELECT (convert_from(body, 'UTF8') = $3 "
                               "AND key_id LIKE 'sha256:%')::text FROM "
                               "psp_events WHERE psp = $1 AND event_id = $2",
                               3, params), "true");
    params[1] = e2;
    params[2] = i2;
    cr_expect_str_eq(db_scalar("SELECT (convert_from(body, 'UTF8') = $3)"
                               "::text FROM psp_events WHERE psp = $1 AND "
                               "event_id = $2", 3, params), "true");

    cr_expect_eq(events_verify((const char *[]) { "--psp", ADYEN_PSP,
                     "--event", e1, "--event", e2, NULL }, &out), 0, "%s",
                 out);
    expect_verified(out, e1, "verified");
    expect_verified(out, e2, "verified");
    cr_expect(strstr(out, "2 verified, 0 failed") != NULL, "%s", out);

    /* the first item's amount altered in the table */
    params[1] = e1;
    db_exec("UPDATE psp_events SET body = convert_to(replace(convert_from("
            "body, 'UTF8'), '\"value\":1500', '\"value\":150'), 'UTF8') "
            "WHERE psp = $1 AND event_id = $2", 2, params);

    cr_expect_eq(events_verify((const char *[]) { "--psp", ADYEN_PSP,
                     "--event", e1, "--event", e2, NULL }, &out), 1, "%s",
                 out);
    expect_verified(out, e1, "FAILED");
    expect_verified(out, e2, "verified");
    cr_expect(strstr(out, "1 verified, 1 failed") != NULL, "%s", out);

    /* and in a period's run */
    cr_expect_eq(events_verify((const char *[]) { "--psp", ADYEN_PSP,
                     "--since", since, NULL }, &out), 1, "%s", out);
    expect_verified(out, e1, "FAILED");
    expect_verified(out, e2, "verified");

    /* the second item's bytes intact, the reference its row keeps
     * beside them altered: the re-read item names the field */
    params[1] = e2;
    db_exec("UPDATE psp_events SET reference = reference || 'x' "
            "WHERE psp = $1 AND event_id = $2", 2, params);
    cr_expect_eq(events_verify((const char *[]) { "--psp", ADYEN_PSP,
                     "--event", e2, NULL }, &out), 1, "%s", out);
    expect_verified(out, e2, "FAILED");
    cr_expect(strstr(out, "not as signed: reference\n") != NULL, "%s", out);
}


/*
 * A refused attempt is not the end of an Adyen session: the shopper tries
 * another card and pays.  That payment must be booked (it was recorded as
 * late_contrary behind a FAILED checkout: money taken, nothing booked).
 */
Test(adyen, a_refused_attempt_leaves_the_checkout_open_and_a_later_payment_books)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   refused, paid;
    const char    *params[2];

    register_with(&g, ADYEN_PSP);
    refused = adyen_auth(&g, 1500, "false");
    r = adyen_send(adyen_body(adyen_item(&refused, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(ledger_txns(&g), 0);

    params[0] = ADYEN_PSP;
    params[1] = str_printf("%s:AUTHORISATION", refused.psp_ref);
    cr_assert_str_eq(db_scalar("SELECT outcome FROM webhook_events WHERE "
                               "psp = $1 AND event_id = $2", 2, params),
                     "pending", "recorded, nothing moved");

    paid = adyen_auth(&g, 1500, "true");
    r = adyen_send(adyen_body(adyen_item(&paid, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_paid_books(&g);
}


/*
 * An authentic request the gateway answered 400 without applying it is kept
 * all the same, once (state unreadable under "unreadable:" and the SHA-256
 * of its bytes, outcome why), its bytes as signed; it verifies again, and
 * an operator's replay has nothing to apply from it.
 */
static void
expect_kept_unapplied(const char *psp, const char *body, const char *why)
{
    char        *id;
    PGconn      *home;
    const char  *params[2];

    home = shards_n() > 1 ? db_shard("a") : db();
    params[0] = psp;
    params[1] = body;
    id = db_scalar_on(home, "SELECT 'unreadable:' || encode(sha256("
                      "convert_to($2, 'UTF8')), 'hex') WHERE $1 <> ''", 2,
                      params);
    params[1] = id;
    cr_expect_str_eq(db_scalar_on(home, "SELECT count(*) || ' ' || "
                                  "string_agg(state || ' ' || kind || ' ' || "
                                  "outcome || ' ' || (key_id LIKE 'sha256:%')"
                                  "::text, ',') FROM psp_events WHERE psp = "
                                  "$1 AND event_id = $2", 2, params),
                     str_printf("1 unreadable UNREADABLE %s true", why),
                     "the authentic request is not kept once: %s", body);
    params[1] = body;
    cr_expect_str_eq(db_scalar_on(home, "SELECT count(*) FROM psp_events "
                                  "WHERE psp = $1 AND body = convert_to($2, "
                                  "'UTF8')", 2, params), "1",
                     "the bytes kept are not the bytes signed");

    expect_kept_verified(psp, id);

    params[1] = id;
    cr_expect_str_eq(db_scalar_on(home, "SELECT state_before || ' ' || "
                                  "outcome FROM pay_inbox_replay($1, $2, "
                                  "'test')", 2, params),
                     "unreadable unreadable");
}


/* Every authentic event is kept: an item of another merchant account (a
 * shared HMAC key), delivered twice, is kept once, unapplied. */
Test(adyen, an_item_for_another_merchant_account_is_kept_once_unapplied)
{
    reg_t          g;
    char          *body;
    resp_t        *r;
    adyen_item_t   it;

    register_with(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");
    it.account = "ShopPOS";
    body = adyen_body(adyen_item(&it, 0));

    r = adyen_send(body);
    expect_problem(r, 400, "bad_signature");
    r = adyen_send(body);
    expect_problem(r, 400, "bad_signature");

    expect_kept_unapplied(ADYEN_PSP, body, "merchant_account");
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(ledger_txns(&g), 0);
}


/* A batch of another account's item and this account's: this account's
 * is applied, once however often the batch comes; the other's is kept
 * alone, once, unapplied; the batch is answered 400 as the other's alone
 * is. */
Test(adyen, a_batch_mixing_accounts_applies_ours_and_keeps_the_others)
{
    int            i;
    reg_t          g;
    char          *ours, *theirs, *body;
    resp_t        *r;
    adyen_item_t   it, pos;

    register_with(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");
    pos = adyen_auth(&g, 700, "true");
    pos.account = "ShopPOS";
    pos.merchant_ref = uid("pos");
    ours = adyen_item(&it, 0);
    theirs = adyen_item(&pos, 0);
    body = str_printf("{\"live\":\"false\",\"notificationItems\":"
                      "[\n  %s ,\n  %s\n]}", theirs, ours);

    for (i = 0; i < 2; i++) {
        r = adyen_send(body);
        expect_problem(r, 400, "bad_signature");
        expect_paid_books(&g);
    }

    expect_kept_unapplied(ADYEN_PSP, theirs, "merchant_account");
}


/* An HMAC key may be shared by a company's accounts: an authentic item
 * for another merchant account is not this PSP's and moves nothing. */
Test(adyen, an_item_for_another_merchant_account_is_refused)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   it;

    register_with(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");
    it.account = "OtherMerchantECOM";
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    expect_problem(r, 400, "bad_signature");
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(ledger_txns(&g), 0);

    /* the same item for the configured account is applied */
    it.account = NULL;
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_paid_books(&g);
}


/*
 * A batch of more than 64 items (Adyen sets no bound on notificationItems):
 * nitems checkouts of eight merchants (over every shard of a sharded
 * stack), one authorisation item each; answered [accepted], every item kept
 * once and applied once (its psp_events row applied, its checkout SUCCESS
 * with two ledger transactions); delivered again, nothing twice.  nours
 * of them for this account, the rest for another (ShopPOS): those are kept
 * unapplied and the batch answered 400, as a mixed batch always is.
 */
#define ADYEN_BATCH_MERCHANTS  8

static void
adyen_batch(size_t nitems, size_t nours)
{
    int            pass;
    char          *body, **cos, **refs, *items;
    size_t         i, len, m;
    resp_t        *r;
    json_t        *reg;
    merchant_t     ms[ADYEN_BATCH_MERCHANTS];
    adyen_item_t   it;
    const char    *params[3];
    long           kept, applied, paid, txns, others;

    cos = calloc(nitems, sizeof(char *));
    refs = calloc(nitems, sizeof(char *));
    cr_assert(cos != NULL && refs != NULL);

    for (m = 0; m < ADYEN_BATCH_MERCHANTS; m++) {
        merchant_new_nth(&ms[m], m);
    }

    len = 0;
    items = NULL;

    for (i = 0; i < nitems; i++) {
        m = i % ADYEN_BATCH_MERCHANTS;
        cos[i] = uid("co");

        if (i < nours) {
            reg = checkout_new(cos[i], 2);
            json_object_set_new(reg, "psp", json_string(ADYEN_PSP));
            (void) register_ok(&ms[m], uid("key"), dump(reg));
        }

        it.psp_ref = adyen_psp_ref();
        it.merchant_ref = nonce(&ms[m], cos[i]);
        it.amount = 1500;
        it.currency = "USD";
        it.event_code = "AUTHORISATION";
        it.success = "true";
        it.account = i < nours ? NULL : "ShopPOS";
        refs[i] = str_printf("%s:AUTHORISATION", it.psp_ref);

        items = items ? str_printf("%s,%s", items, adyen_item(&it, 0))
                      : adyen_item(&it, 0);
    }

    body = adyen_body(items);
    len = strlen(body);

    for (pass = 0; pass < 2; pass++) {
        r = adyen_send(body);

        if (nours == nitems) {
            cr_assert_eq(r->status, 200, "%zu items, %zu bytes: %ld %s",
                         nitems, len, r->status, r->body);
            cr_assert_str_eq(r->body, "[accepted]");

        } else {
            expect_problem(r, 400, "bad_signature");
        }

        kept = applied = paid = txns = 0;

        for (m = 0; m < ADYEN_BATCH_MERCHANTS; m++) {
            char  *ids, *co_ids;

            ids = str_printf("{");
            co_ids = str_printf("{");

            for (i = m; i < nours; i += ADYEN_BATCH_MERCHANTS) {
                ids = str_printf("%s%s\"%s\"", ids, i == m ? "" : ",",
                                 refs[i]);
                co_ids = str_printf("%s%s\"%s\"", co_ids, i == m ? "" : ",",
                                    cos[i]);
            }

            ids = str_printf("%s}", ids);
            co_ids = str_printf("%s}", co_ids);

            params[0] = ADYEN_PSP;
            params[1] = ids;
            kept += atol(db_scalar_on(db_of(&ms[m]),
                "SELECT count(*) FROM psp_events WHERE psp = $1 "
                "AND event_id = ANY($2::text[])", 2, params));
            applied += atol(db_scalar_on(db_of(&ms[m]),
                "SELECT count(*) FROM psp_events WHERE psp = $1 "
                "AND event_id = ANY($2::text[]) AND state = 'applied'",
                2, params));

            params[0] = ms[m].id;
            params[1] = co_ids;
            paid += atol(db_scalar_on(db_of(&ms[m]),
                "SELECT count(*) FROM checkouts WHERE merchant_id = $1 "
                "AND checkout_id = ANY($2::text[]) AND status = 'SUCCESS'",
                2, params));
            txns += atol(db_scalar_on(db_of(&ms[m]),
                "SELECT count(*) FROM ledger_transactions WHERE "
                "merchant_id = $1 AND checkout_id = ANY($2::text[])",
                2, params));
        }

        cr_assert_eq(kept, (long) nours, "pass %d: %ld of %zu items kept",
                     pass + 1, kept, nours);
        cr_assert_eq(applied, (long) nours, "pass %d: %ld of %zu applied",
                     pass + 1, applied, nours);
        cr_assert_eq(paid, (long) nours, "pass %d: %ld of %zu paid",
                     pass + 1, paid, nours);
        cr_assert_eq(txns, 2 * (long) nours, "pass %d: %ld ledger "
                     "transactions for %zu checkouts", pass + 1, txns, nours);
    }

    /* the other account's items: each kept once, alone, unapplied */
    others = 0;

    for (i = nours; i < nitems; i++) {
        params[0] = ADYEN_PSP;
        params[1] = refs[i];
        others += atol(db_scalar_on(shards_n() > 1 ? db_shard("a") : db(),
            "SELECT count(*) FROM psp_events WHERE psp = $1 AND state = "
            "'unreadable' AND outcome = 'merchant_account' AND "
            "convert_from(body, 'UTF8') LIKE '%\"pspReference\":\"' || "
            "split_part($2, ':', 1) || '\"%'", 2, params));
    }

    cr_assert_eq(others, (long) (nitems - nours),
                 "%ld of the other account's %zu items kept once", others,
                 nitems - nours);
}


Test(adyen, a_batch_of_65_items_is_kept_and_applied_once)
{
    adyen_batch(65, 65);
}


Test(adyen, a_batch_of_200_items_is_kept_and_applied_once)
{
    adyen_batch(200, 200);
}


Test(adyen, a_batch_of_70_mixing_accounts_applies_ours_and_keeps_the_others)
{
    adyen_batch(70, 64);
}


Test(adyen, one_item_delivered_100_times_at_once_books_once)
{
    size_t         i;
    reg_t          g;
    req_t          rq;
    resp_t       **rs;
    adyen_item_t   it;
    const char    *h[] = { "Content-Type: application/json", NULL };

    register_with(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1500, "true");

    rq.method = "POST";
    rq.url = gw_url("/v1/webhooks/" ADYEN_PSP);
    rq.headers = h;
    rq.body = adyen_body(adyen_item(&it, 0));
    rq.len = (size_t) -1;
    rs = http_parallel(&rq, 100);

    for (i = 0; i < 100; i++) {
        cr_assert(rs[i]->status == 200 || rs[i]->status == 503,
                  "delivery %zu: %ld %s", i, rs[i]->status, rs[i]->body);
    }

    expect_paid_books(&g);
}


Test(adyen, a_refusal_after_the_payment_never_moves_the_status_back)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   fail, ok;

    register_with(&g, ADYEN_PSP);
    fail = adyen_auth(&g, 1500, "false");
    ok = adyen_auth(&g, 1500, "true");

    r = adyen_send(adyen_body(adyen_item(&ok, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    r = adyen_send(adyen_body(adyen_item(&fail, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);

    expect_paid_books(&g);
}


Test(adyen, a_tampered_amount_refuses_the_whole_request)
{
    reg_t          g, h;
    resp_t        *r;
    adyen_item_t   a, b;

    register_with(&g, ADYEN_PSP);
    register_with(&h, ADYEN_PSP);
    a = adyen_auth(&g, 1500, "true");
    b = adyen_auth(&h, 1500, "true");

    /* the first item is good, the second's amount was changed */
    r = adyen_send(adyen_body(str_printf("%s,%s", adyen_item(&a, 0),
                                         adyen_item(&b, 1))));
    expect_problem(r, 400, "bad_signature");
    cr_assert_str_eq(status_of(&g), "EXECUTING", "none applied");
    cr_assert_str_eq(status_of(&h), "EXECUTING");
}


Test(adyen, an_amount_other_than_the_checkouts_changes_nothing)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   it;

    register_with(&g, ADYEN_PSP);
    it = adyen_auth(&g, 1499, "true");
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    cr_assert_eq(r->status, 200, "authentic: answered, %s", r->body);
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(ledger_txns(&g), 0);
}


Test(adyen, the_mock_pays_and_its_signed_webhook_books_the_ledger,
     .timeout = 30)
{
    reg_t  g;

    register_with(&g, ADYEN_PSP);
    mock_session(g.token, "pay");
    expect_status_within(&g, "SUCCESS", 15);
    expect_paid_books(&g);
}


/* The mock's own signed refusal, then the shopper pays on the same
 * session: the payment is booked. */
Test(adyen, the_mock_declines_then_the_shopper_pays_and_it_books,
     .timeout = 30)
{
    int          i;
    reg_t        g;
    const char  *params[2];

    register_with(&g, ADYEN_PSP);
    mock_session(g.token, "decline");

    /* the refusal arrives, is recorded, and moves nothing */
    params[0] = ADYEN_PSP;
    params[1] = g.nonce;
    for (i = 0; i < 150; i++) {
        if (atol(db_scalar("SELECT count(*) FROM webhook_events WHERE "
                           "psp = $1 AND merchant_id || ':' || checkout_id "
                           "= $2 AND outcome = 'pending'", 2, params)) == 1)
        {
            break;
        }
        msleep(100);
    }
    cr_assert_lt(i, 150, "the refused AUTHORISATION was never recorded");
    cr_assert_str_eq(status_of(&g), "EXECUTING");

    mock_session(g.token, "pay");
    expect_status_within(&g, "SUCCESS", 15);
    expect_paid_books(&g);
}


/* --- generic (signed JWT) ------------------------------------------------- */

static char *
generic_event(const reg_t *g, const char *type, const char *amount)
{
    return str_printf("{\"event_id\":\"%s\",\"type\":\"%s\",\"reference\":"
                      "\"%s\",\"token\":\"%s\",\"amount\":\"%s\","
                      "\"currency\":\"USD\"}", uid("gev"), type, g->nonce,
                      g->token, amount);
}


static resp_t *
generic_send(const char *body)
{
    return webhook_post(GENERIC_PSP,
                        generic_verification(body, time(NULL), GENERIC_KID, NULL),
                        body);
}


Test(generic, registers_a_session_under_the_nonce)
{
    reg_t  g;
    long   sessions, requests;

    register_with(&g, GENERIC_PSP);
    mock_registrations(g.nonce, &sessions, &requests);
    cr_assert_eq(sessions, 1);
}


Test(generic, a_succeeded_event_books_the_ledger)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    r = generic_send(generic_event(&g, "payment.succeeded", "15.00"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_paid_books(&g);
}


Test(generic, an_event_before_its_checkout_is_kept_then_applied_once)
{
    reg_t        g;
    resp_t      *r;
    char        *body, *evt;
    json_t      *j;
    const char  *params[2];

    register_later(&g, GENERIC_PSP);
    body = generic_event(&g, "payment.succeeded", "15.00");
    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j);
    evt = strdup(json_string_value(json_object_get(j, "event_id")));

    r = generic_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(inbox_state(&g, evt), "pending");

    /* the JWT header kept, and the kid that verified it */
    params[0] = GENERIC_PSP;
    params[1] = evt;
    cr_expect_str_eq(db_scalar("SELECT key_id || ' ' || (headers ? '"
                               GENERIC_HDR "')::text FROM psp_events "
                               "WHERE psp = $1 AND event_id = $2", 2, params),
                     GENERIC_KID " true");

    register_now(&g);
    inbox_retry();
    cr_assert_str_eq(inbox_state(&g, evt), "applied");
    expect_paid_books(&g);

    r = generic_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    inbox_retry();
    cr_expect_eq(ledger_txns(&g), 2);
}


Test(generic, a_dispute_before_its_payment_is_kept_then_applied_once)
{
    reg_t        g;
    resp_t      *r;
    char        *dispute, *evt = uid("gev_dp");
    const char  *params[2];

    register_with(&g, GENERIC_PSP);
    dispute = str_printf("{\"event_id\":\"%s\",\"type\":\"dispute.opened\","
                         "\"reference\":\"%s\",\"dispute_id\":\"%s\","
                         "\"amount\":\"15.00\",\"currency\":\"USD\"}",
                         evt, g.nonce, uid("dp"));

    /* the checkout is not paid yet: acknowledged, kept pending */
    r = generic_send(dispute);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(inbox_state(&g, evt), "pending");
    inbox_retry();
    cr_assert_str_eq(inbox_state(&g, evt), "pending");

    r = generic_send(generic_event(&g, "payment.succeeded", "15.00"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_paid_books(&g);

    inbox_retry();
    cr_assert_str_eq(inbox_state(&g, evt), "applied");
    params[0] = g.m.id;
    params[1] = g.co;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM disputes "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, params), "1");

    /* delivered and retried again: one dispute, one event row */
    r = generic_send(dispute);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    inbox_retry();
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM disputes "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, params), "1");
    params[0] = GENERIC_PSP;
    params[1] = evt;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE psp = $1 AND event_id = $2", 2, params),
                     "1");
}


/* A pay-out's event before (or without) its pay-out here: acknowledged,
 * kept pending for the retry, not recorded as an unknown pay-out (which
 * no later retry could apply). */
Test(generic, a_payout_event_before_its_payout_is_kept_pending)
{
    reg_t        g;
    resp_t      *r;
    char        *body, *evt;
    const char  *params[2];

    register_later(&g, GENERIC_PSP);
    evt = uid("gev");
    body = str_printf("{\"event_id\":\"%s\",\"type\":\"payout.paid\","
                      "\"reference\":\"%s\",\"token\":\"\",\"amount\":"
                      "\"5.00\",\"currency\":\"USD\",\"payout_id\":\"%s\"}",
                      evt, nonce(&g.m, uid("po")), uid("tr"));

    r = generic_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(inbox_state(&g, evt), "pending");
    params[0] = GENERIC_PSP;
    params[1] = evt;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM webhook_events WHERE "
                               "psp = $1 AND event_id = $2", 2, params), "0");
    cr_expect_str_eq(db_scalar("SELECT outcome FROM psp_events WHERE "
                               "psp = $1 AND event_id = $2", 2, params),
                     "unknown_payout");

    inbox_retry();
    cr_expect_str_eq(inbox_state(&g, evt), "pending", "no pay-out yet");

    /* delivered again: kept once */
    r = generic_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_expect_str_eq(inbox_state(&g, evt), "pending");
}


/* A kept event verifies again with the key its row names; its body or
 * its kept JWT altered in the table is reported; a configuration without
 * its key says so. */
Test(generic, a_kept_event_verifies_again_and_an_altered_one_is_reported)
{
    reg_t        g;
    resp_t      *r;
    char        *body, *evt, *out, *conf;
    json_t      *j;
    FILE        *f;
    const char  *params[2];

    register_with(&g, GENERIC_PSP);
    body = generic_event(&g, "payment.succeeded", "15.00");
    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j);
    evt = strdup(json_string_value(json_object_get(j, "event_id")));

    r = generic_send(body);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    params[0] = GENERIC_PSP;
    params[1] = evt;
    cr_expect_str_eq(db_scalar("SELECT key_id FROM psp_events WHERE psp = $1 "
                               "AND event_id = $2", 2, params), GENERIC_KID);

    cr_expect_eq(events_verify((const char *[]) { "--psp", GENERIC_PSP,
                     "--event", evt, NULL }, &out), 0, "%s", out);
    expect_verified(out, evt, "verified");

    /* a configuration whose only key is another kid: not checked */
    conf = run_file(str_printf("verify-%s.conf", evt));
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "payments_psp " GENERIC_PSP " dialect=generic url=http://x\n"
               "    webhook_key=other:es256:%s;\n",
            run_file("conf/generic_jwt.pub"));
    fclose(f);
    {
        const char  *a[] = { "--conf", conf, "--psp", GENERIC_PSP, "--event",
                             evt, NULL };
        char        *argv[16];
        size_t       i, n = 0;

        argv[n++] = str_printf("%s/bin/payments-events",
                               env("PAY_TEST_ROOT"));
        argv[n++] = (char *) "--db";
        argv[n++] = (char *) env("PAY_TEST_PG");
        argv[n++] = (char *) "verify";
        for (i = 0; a[i] != NULL; i++) {
            argv[n++] = (char *) a[i];
        }
        argv[n] = NULL;
        cr_expect_eq(run(argv, &out), 1, "%s", out);
        expect_verified(out, evt, "no key");
    }

    /* the body altered: the JWT's request_body_sha256 no longer matches */
    db_exec("UPDATE psp_events SET body = convert_to(replace(convert_from("
            "body, 'UTF8'), '15.00', '1.50'), 'UTF8') "
            "WHERE psp = $1 AND event_id = $2", 2, params);
    cr_expect_eq(events_verify((const char *[]) { "--psp", GENERIC_PSP,
                     "--event", evt, NULL }, &out), 1, "%s", out);
    expect_verified(out, evt, "FAILED");
    cr_expect(strstr(out, "0 verified, 1 failed") != NULL, "%s", out);
}


Test(generic, a_failed_event_fails_the_checkout_without_ledger_rows)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    r = generic_send(generic_event(&g, "payment.failed", "15.00"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&g), "FAILED");
    cr_assert_eq(ledger_txns(&g), 0);
}


Test(generic, one_event_delivered_100_times_at_once_books_once)
{
    size_t    i;
    char     *body;
    reg_t     g;
    req_t     rq;
    resp_t  **rs;

    register_with(&g, GENERIC_PSP);
    body = generic_event(&g, "payment.succeeded", "15.00");

    {
        const char  *h[] = { "Content-Type: application/json",
                             generic_verification(body, time(NULL), GENERIC_KID, NULL),
                             NULL };

        rq.method = "POST";
        rq.url = gw_url("/v1/webhooks/" GENERIC_PSP);
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;
        rs = http_parallel(&rq, 100);
    }

    for (i = 0; i < 100; i++) {
        cr_assert(rs[i]->status == 200 || rs[i]->status == 503,
                  "delivery %zu: %ld %s", i, rs[i]->status, rs[i]->body);
    }

    expect_paid_books(&g);
}


Test(generic, a_late_contrary_event_never_moves_the_status_back)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    r = generic_send(generic_event(&g, "payment.succeeded", "15.00"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    r = generic_send(generic_event(&g, "payment.failed", "15.00"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_paid_books(&g);
}


Test(generic, an_amount_other_than_the_checkouts_changes_nothing)
{
    reg_t    g;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    r = generic_send(generic_event(&g, "payment.succeeded", "15.01"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(ledger_txns(&g), 0);
}


/* Every authentic event is kept (doc/API.md, Webhooks): a signed success
 * whose amount is missing, not exact in its currency or not a string is
 * answered 200 and recorded amount_mismatch, and nothing moves (it was a
 * 400 "not a readable event", and nothing was kept). */
Test(generic, a_signed_success_without_a_readable_amount_is_kept_and_moves_nothing)
{
    reg_t        g;
    resp_t      *r;
    size_t       i;
    char        *evt, *body;
    const char  *params[2];
    const char  *money[] = {
        ",\"currency\":\"USD\"",                   /* no amount */
        "",                                        /* neither */
        ",\"amount\":\"15.005\",\"currency\":\"USD\"",
        ",\"amount\":15.00,\"currency\":\"USD\"",
        ",\"amount\":\"15.00\",\"currency\":\"ZZZ\"",
    };

    register_with(&g, GENERIC_PSP);

    for (i = 0; i < sizeof(money) / sizeof(money[0]); i++) {
        evt = uid("gev");
        body = str_printf("{\"event_id\":\"%s\",\"type\":"
                          "\"payment.succeeded\",\"reference\":\"%s\","
                          "\"token\":\"%s\"%s}", evt, g.nonce, g.token,
                          money[i]);

        r = generic_send(body);
        cr_assert_eq(r->status, 200, "%s: %ld %s", body, r->status, r->body);
        cr_expect_str_eq(status_of(&g), "EXECUTING", "%s", body);
        cr_expect_eq(ledger_txns(&g), 0, "%s", body);

        params[0] = GENERIC_PSP;
        params[1] = evt;
        cr_expect_str_eq(db_scalar("SELECT outcome || ' ' || merchant_id || "
                                   "':' || checkout_id FROM webhook_events "
                                   "WHERE psp = $1 AND event_id = $2",
                                   2, params),
                         str_printf("amount_mismatch %s", g.nonce),
                         "%s", body);
        /* the signed bytes kept in the inbox as well */
        cr_expect_str_eq(inbox_state(&g, evt), "applied", "%s", body);
    }

    /* the same checkout still books its readable success */
    r = generic_send(generic_event(&g, "payment.succeeded", "15.00"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    expect_paid_books(&g);
}


/* Every authentic event is kept (doc/API.md, Webhooks): one whose
 * signature verifies but which the gateway cannot read (here without its
 * event_id) is answered 400, so that the PSP delivers it again, and its
 * signed bytes are kept unread in the inbox (state unreadable, under
 * "unreadable:" and their SHA-256), once however often it comes, and
 * verify again; nothing moves. */
Test(generic, an_authentic_event_it_cannot_read_is_kept_unread_once)
{
    reg_t        g;
    resp_t      *r;
    char        *body, *id;
    PGconn      *home;
    const char  *params[2];

    register_with(&g, GENERIC_PSP);
    body = str_printf("{\"type\":\"payment.succeeded\",\"reference\":\"%s\","
                      "\"token\":\"%s\",\"amount\":\"15.00\","
                      "\"currency\":\"USD\",\"n\":\"%s\"}", g.nonce, g.token,
                      uid("x"));

    r = generic_send(body);
    expect_problem(r, 400, "invalid_request");
    r = generic_send(body);
    expect_problem(r, 400, "invalid_request");

    home = shards_n() > 1 ? db_shard("a") : db();
    params[0] = GENERIC_PSP;
    params[1] = body;
    id = db_scalar_on(home, "SELECT 'unreadable:' || encode(sha256("
                      "convert_to($2, 'UTF8')), 'hex') WHERE $1 <> ''", 2,
                      params);
    params[1] = id;
    cr_expect_str_eq(db_scalar_on(home, "SELECT count(*) || ' ' || "
                                  "string_agg(state || ' ' || kind || ' ' || "
                                  "key_id, ',') FROM psp_events WHERE psp = "
                                  "$1 AND event_id = $2", 2, params),
                     "1 unreadable UNREADABLE " GENERIC_KID);
    params[1] = body;
    cr_expect_str_eq(db_scalar_on(home, "SELECT count(*) FROM psp_events "
                                  "WHERE psp = $1 AND body = convert_to($2, "
                                  "'UTF8')", 2, params), "1",
                     "the bytes kept are not the bytes signed");

    cr_expect_str_eq(status_of(&g), "EXECUTING");
    cr_expect_eq(ledger_txns(&g), 0);

    expect_kept_verified(GENERIC_PSP, id);

    /* an operator's replay has nothing to apply from it */
    params[1] = id;
    cr_expect_str_eq(db_scalar_on(home, "SELECT state_before || ' ' || "
                                  "outcome FROM pay_inbox_replay($1, $2, "
                                  "'test')", 2, params),
                     "unreadable unreadable");
}


Test(generic, a_token_for_another_body_an_unknown_kid_or_none_is_400)
{
    char    *body;
    reg_t    g;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    body = generic_event(&g, "payment.succeeded", "15.00");

    r = webhook_post(GENERIC_PSP,
                     generic_verification(body, time(NULL), GENERIC_KID,
                                 generic_event(&g, "payment.succeeded",
                                               "15.00")),
                     body);
    expect_problem(r, 400, "bad_signature");

    r = webhook_post(GENERIC_PSP,
                     generic_verification(body, time(NULL), "another-kid", NULL), body);
    expect_problem(r, 400, "bad_signature");

    r = webhook_post(GENERIC_PSP, "X-Unused: 1", body);
    expect_problem(r, 400, "bad_signature");

    cr_assert_str_eq(status_of(&g), "EXECUTING");
}


Test(generic, a_token_issued_301_s_ago_is_stale)
{
    char    *body;
    reg_t    g;
    resp_t  *r;

    register_with(&g, GENERIC_PSP);
    body = generic_event(&g, "payment.succeeded", "15.00");
    r = webhook_post(GENERIC_PSP,
                     generic_verification(body, time(NULL) - 301, GENERIC_KID, NULL),
                     body);
    expect_problem(r, 400, "stale_webhook");
    cr_assert_str_eq(status_of(&g), "EXECUTING");
}


Test(generic, the_mock_pays_and_its_signed_webhook_books_the_ledger,
     .timeout = 30)
{
    reg_t  g;

    register_with(&g, GENERIC_PSP);
    mock_session(g.token, "pay");
    expect_status_within(&g, "SUCCESS", 15);
    expect_paid_books(&g);
}


Test(generic, the_mock_declines_and_the_checkout_fails, .timeout = 30)
{
    reg_t  g;

    register_with(&g, GENERIC_PSP);
    mock_session(g.token, "decline");
    expect_status_within(&g, "FAILED", 15);
    cr_assert_eq(ledger_txns(&g), 0);
}


/* --- PSP minor units (each PSP's own, not always ISO 4217's) ------------- */

/* A two-order checkout in currency, amounts as decimal strings; the
 * answer, and g filled (token "" when the registration was refused). */
static resp_t *
register_in(reg_t *g, const char *psp, const char *currency, const char *a1,
    const char *a2)
{
    size_t   i;
    json_t  *body, *o;
    resp_t  *r;

    g->psp = psp;
    merchant_new(&g->m);
    g->co = uid("co");
    g->nonce = nonce(&g->m, g->co);
    g->token = "";

    body = checkout_new(g->co, 2);
    json_object_set_new(body, "psp", json_string(psp));

    for (i = 0; i < 2; i++) {
        o = order_of(body, i);
        json_object_set_new(o, "amount", json_string(i == 0 ? a1 : a2));
        json_object_set_new(o, "currency", json_string(currency));
    }

    r = api_post(&g->m, uid("key"), dump(body));

    if (r->status == 201 || r->status == 200) {
        g->token = strdup(json_string_value(
                              json_object_get(resp_json(r), "psp_token")));
    }

    return r;
}


/* What the gateway stored to send (and re-send) to the PSP. */
static char *
psp_request_of(const reg_t *g)
{
    const char  *params[] = { g->m.id, g->co };

    return db_scalar("SELECT psp_request FROM checkouts WHERE "
                     "merchant_id = $1 AND checkout_id = $2", 2, params);
}


static void
expect_wallet(const reg_t *g, const char *seller, const char *currency,
    const char *balance)
{
    const char  *params[] = { g->m.id, seller, currency };

    cr_assert_str_eq(db_scalar("SELECT balance FROM wallets WHERE "
                               "merchant_id = $1 AND seller_account = $2 "
                               "AND currency = $3", 3, params),
                     balance, "%s's %s wallet", seller, currency);
}


/* Expects 201, a session at the PSP, then lets the mock pay with its own
 * signed webhook (whose amount is the PSP's sum of what it was sent). */
static void
pay_on_mock(reg_t *g, resp_t *r)
{
    cr_assert_eq(r->status, 201, "%s", r->body);
    mock_session(g->token, "pay");
    expect_status_within(g, "SUCCESS", 15);
}


/* "500" ISK is 500 minor units in ISO (no decimals), but Stripe counts
 * ISK in hundredths: 50000.  Sent as 500, it charged 5 ISK. */
Test(units, stripe_isk_is_sent_in_hundredths_and_booked_in_krona,
     .timeout = 30)
{
    reg_t    g;
    resp_t  *r;
    char    *req;

    r = register_in(&g, env("PAY_TEST_PSP"), "ISK", "500", "250");
    cr_assert_eq(r->status, 201, "%s", r->body);
    req = psp_request_of(&g);
    cr_assert(strstr(req, "[unit_amount]=50000&") != NULL, "%s", req);
    cr_assert(strstr(req, "[unit_amount]=25000&") != NULL, "%s", req);

    pay_on_mock(&g, r);
    expect_wallet(&g, "seller_1", "ISK", "500");
    expect_wallet(&g, "seller_2", "ISK", "250");
}


/* MGA has two decimals in ISO and none at Stripe: "10.00" is 10. */
Test(units, stripe_mga_is_sent_in_whole_ariary, .timeout = 30)
{
    reg_t    g;
    resp_t  *r;
    char    *req;

    r = register_in(&g, env("PAY_TEST_PSP"), "MGA", "10.00", "5.00");
    cr_assert_eq(r->status, 201, "%s", r->body);
    req = psp_request_of(&g);
    cr_assert(strstr(req, "[unit_amount]=10&") != NULL, "%s", req);
    cr_assert(strstr(req, "[unit_amount]=5&") != NULL, "%s", req);

    pay_on_mock(&g, r);
    expect_wallet(&g, "seller_1", "MGA", "1000");
    expect_wallet(&g, "seller_2", "MGA", "500");
}


/* Adyen counts CLP in hundredths (ISO: none) and CVE in whole escudos
 * (ISO: two decimals). */
Test(units, adyen_clp_and_cve_are_sent_in_adyens_units, .timeout = 45)
{
    reg_t    g;
    resp_t  *r;
    char    *req;

    r = register_in(&g, ADYEN_PSP, "CLP", "1000", "500");
    cr_assert_eq(r->status, 201, "%s", r->body);
    req = psp_request_of(&g);
    /* the body is kept as a JSON string: its quotes are escaped */
    cr_assert(strstr(req, "{\\\"value\\\":150000,") != NULL, "%s", req);
    pay_on_mock(&g, r);
    expect_wallet(&g, "seller_1", "CLP", "1000");

    r = register_in(&g, ADYEN_PSP, "CVE", "10.00", "5.00");
    cr_assert_eq(r->status, 201, "%s", r->body);
    req = psp_request_of(&g);
    cr_assert(strstr(req, "{\\\"value\\\":15,") != NULL, "%s", req);
    pay_on_mock(&g, r);
    expect_wallet(&g, "seller_1", "CVE", "1000");
    expect_wallet(&g, "seller_2", "CVE", "500");
}


/* An amount the PSP cannot express is refused before anything is stored
 * or sent: 10.50 MGA at Stripe, 10.50 IDR at Adyen. */
Test(units, amounts_the_psp_cannot_express_are_invalid_amount)
{
    reg_t        g;
    resp_t      *r;
    long         sessions, requests;
    const char  *params[2];

    r = register_in(&g, env("PAY_TEST_PSP"), "MGA", "10.50", "5.00");
    expect_problem(r, 400, "invalid_amount");
    mock_registrations(g.nonce, &sessions, &requests);
    cr_assert_eq(requests, 0);

    r = register_in(&g, ADYEN_PSP, "IDR", "10.00", "5.50");
    expect_problem(r, 400, "invalid_amount");
    mock_registrations(g.nonce, &sessions, &requests);
    cr_assert_eq(requests, 0);
    params[0] = g.m.id;
    params[1] = g.co;
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2",
                               2, params), "0");
}


/* Adyen counts ISK in hundredths: two orders of about 4.6 * 10^16 ISK
 * each fit in its units, their total (above 2^63 / 100 ISK) does not.
 * Refused as invalid_amount with the orders, before anything is claimed
 * (it was a 500 internal_error, which the retry table tells a client to
 * retry); one order too large says so, not that it must end in 0.  (The
 * amounts are chosen so that the card-number check passes them: a run
 * of 13 zeros is Luhn-valid.) */
Test(units, an_adyen_total_too_large_in_adyens_units_is_invalid_amount)
{
    reg_t        g;
    resp_t      *r;
    long         sessions, requests;
    const char  *detail;

    r = register_in(&g, ADYEN_PSP, "ISK", "46116860184273891",
                    "46116860184273894");
    expect_problem(r, 400, "invalid_amount");
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_expect(detail != NULL && strstr(detail, "the sum of payment_orders "
                                       "amounts is too large for this PSP")
                                != NULL, "%s", r->body);
    mock_registrations(g.nonce, &sessions, &requests);
    cr_expect_eq(requests, 0);
    r = api_get(&g.m, str_printf("/v1/checkouts/%s", g.co));
    cr_expect_eq(r->status, 404, "nothing stored: %ld %s", r->status,
                 r->body);

    r = register_in(&g, ADYEN_PSP, "ISK", "93001234567891011", "1");
    expect_problem(r, 400, "invalid_amount");
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_expect(detail != NULL && strstr(detail, "payment_orders[0].amount is "
                                       "too large for this PSP") != NULL,
              "%s", r->body);
    cr_expect(detail != NULL && strstr(detail, "end in 0") == NULL, "%s",
              r->body);
    r = api_get(&g.m, str_printf("/v1/checkouts/%s", g.co));
    cr_expect_eq(r->status, 404, "nothing stored: %ld %s", r->status,
                 r->body);
}


/* A signed Adyen item whose amount has no ISO value (750.50 ISK) is an
 * amount mismatch: recorded, never booked. */
Test(units, a_psp_amount_with_no_iso_value_books_nothing)
{
    reg_t          g;
    resp_t        *r;
    adyen_item_t   it;

    r = register_in(&g, ADYEN_PSP, "ISK", "500", "250");
    cr_assert_eq(r->status, 201, "%s", r->body);

    it = adyen_auth(&g, 75050, "true");     /* 750.50 ISK at Adyen */
    it.currency = "ISK";
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&g), "EXECUTING");
    cr_assert_eq(ledger_txns(&g), 0);

    it = adyen_auth(&g, 75000, "true");     /* 750 ISK */
    it.currency = "ISK";
    r = adyen_send(adyen_body(adyen_item(&it, 0)));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&g), "SUCCESS");
    expect_wallet(&g, "seller_1", "ISK", "500");
}
