/*
 * End to end: the token broker (API.md, "Saved payment methods"), per
 * dialect against the mock PSP.  A checkout asks to save the shopper's
 * method; the shopper pays at the mock, whose event says the method was
 * stored; the gateway keeps the PSP's token sealed and lists the method
 * under its own pm_ id.  Then the method is charged without the shopper
 * (off-session): a checkout of its own, booked by the PSP's webhook as any
 * payment, refundable; a decline or the issuer asking for the shopper is a
 * 402 stored under the key; a retry after a lost answer charges once;
 * another merchant's method is 404, a detached one 409.  The PSP's token
 * never shows in an answer.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"


TestSuite(saved_methods, .timeout = E2E_TIMEOUT);


/* 0 stripe (PAY_TEST_PSP), 1 adyen, 2 generic */
static const char *
sm_psp(size_t d)
{
    return d == 0 ? env("PAY_TEST_PSP") : d == 1 ? "mock_adyen"
                                                 : "mock_generic";
}


typedef struct {
    const char  *psp;
    merchant_t   m;
    char        *customer;
    char        *co;            /* the checkout that saved it */
    char        *pm;            /* our id */
    char        *token;         /* the PSP's, from the mock's vault */
} saved_t;


/* POST path under key (NULL: a fresh one) */
static resp_t *
post_path(const merchant_t *m, const char *path, const char *key,
    const char *body)
{
    return api_post_at(m, path, key != NULL ? key : uid("key"), body);
}


static const char *
checkout_status(const merchant_t *m, const char *co)
{
    resp_t  *r;

    r = api_get(m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s", r->body);

    return json_string_value(json_object_get(resp_json(r), "status"));
}


/* how many ledger transactions book checkout mc[1] of merchant mc[0] */
static const char *
ledger_rows(const char **mc)
{
    return db_scalar("SELECT count(*) FROM ledger_transactions WHERE "
                     "merchant_id = $1 AND checkout_id = $2", 2, mc);
}


static void
wait_status(const merchant_t *m, const char *co, const char *want)
{
    int          i;
    const char  *st;

    st = "none";

    for (i = 0; i < 100; i++) {
        st = checkout_status(m, co);
        if (strcmp(st, want) == 0) {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("checkout %s is %s, not %s", co, st, want);
}


/* the merchant's methods of the customer (the list's data) */
static json_t *
methods_of(const merchant_t *m, const char *customer)
{
    resp_t  *r;

    r = api_get(m, str_printf("/v1/payment_methods?customer=%s", customer));
    cr_assert_eq(r->status, 200, "%s", r->body);

    return json_object_get(resp_json(r), "data");
}


/* The PSP's token the mock's vault keeps for the session of reference. */
static char *
vault_token(const char *reference)
{
    size_t   i;
    json_t  *list, *it;
    resp_t  *r;

    r = http_get(mock_url("/_control/payment_methods"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    list = json_object_get(resp_json(r), "payment_methods");

    json_array_foreach(list, i, it) {
        if (strcmp(json_string_value(json_object_get(it, "reference")),
                   reference) == 0)
        {
            return strdup(json_string_value(json_object_get(it, "token")));
        }
    }

    return NULL;
}


/* bin/payments-events with args, against the suite's configuration; its
 * output in *out, its exit status returned */
static int
events_tool(const char *const *args, char **out)
{
    char    *argv[24];
    size_t   n = 0, i;

    argv[n++] = str_printf("%s/bin/payments-events", env("PAY_TEST_ROOT"));
    argv[n++] = (char *) "--db";
    argv[n++] = (char *) env("PAY_TEST_PG");

    for (i = 0; args[i] != NULL && n < 23; i++) {
        argv[n++] = (char *) args[i];
    }

    argv[n] = NULL;

    return run(argv, out);
}


/* A checkout at the dialect's PSP that saves the method for customer,
 * paid at the mock: the method listed, its token found at the mock. */
static void
saved_new_notified(saved_t *s, size_t d, const char *usage, endpoint_t *ep)
{
    int      i;
    json_t  *body, *save, *created, *list;
    resp_t  *r;

    memset(s, 0, sizeof(saved_t));
    s->psp = sm_psp(d);
    merchant_new(&s->m);

    if (ep != NULL) {
        endpoint_add(&s->m, NULL, ep);
    }
    s->customer = uid("cust");
    s->co = uid("co");

    body = checkout_new(s->co, 2);
    json_object_set_new(body, "psp", json_string(s->psp));
    save = json_pack("{ss ss sb}", "customer", s->customer, "usage", usage,
                     "shopper_agreed", 1);
    json_object_set_new(body, "save_payment_method", save);

    r = register_ok(&s->m, uid("key"), dump(body));
    created = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(created, "save_payment_method"),
                         "customer")), s->customer, "%s", r->body);

    r = mock_post(str_printf("/_control/sessions/%s/pay",
                             json_string_value(json_object_get(created,
                                                               "psp_token"))),
                  NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    wait_status(&s->m, s->co, "SUCCESS");

    list = NULL;

    for (i = 0; i < 100; i++) {
        list = methods_of(&s->m, s->customer);
        if (json_array_size(list) > 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(json_array_size(list), 1, "%s: no method saved", s->psp);
    s->pm = strdup(json_string_value(json_object_get(json_array_get(list, 0),
                                                     "id")));
    s->token = vault_token(nonce(&s->m, s->co));
    cr_assert(s->token != NULL, "%s: the mock saved nothing", s->psp);
    secret_used(s->token);
}


static void
saved_new(saved_t *s, size_t d, const char *usage)
{
    saved_new_notified(s, d, usage, NULL);
}


/* POST /v1/payments charging the saved method off-session */
static json_t *
charge_body(const saved_t *s, const char *co)
{
    json_t  *body;

    body = checkout_new(co, 1);
    json_object_del(body, "psp");
    json_object_set_new(body, "payment_method", json_string(s->pm));
    json_object_set_new(body, "off_session", json_true());

    return body;
}


/*
 * The inbox keeps the PSP's token of s nowhere in clear (any event of its
 * PSP: the saving one, and the payment's own event that names the method
 * too); the saving event's body is sealed, and payments-events verify
 * opens it and verifies it, its fields as signed.
 */
static void
inbox_sealed(const saved_t *s)
{
    char        *evt, *out;
    const char  *p[3];

    p[0] = s->psp;
    p[1] = s->token;
    p[2] = s->co;

    /* the event row is written with the method: no wait needed */
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM psp_events WHERE psp "
                               "= $1 AND (position(convert_to($2, 'UTF8') "
                               "IN body) > 0 OR position($2 IN headers::text"
                               ") > 0 OR position($2 IN coalesce(method::"
                               "text, '')) > 0 OR position($2 IN coalesce("
                               "token, '')) > 0)", 2, p), "0",
                     "%s: the PSP's token in clear in psp_events", s->psp);

    evt = db_scalar("SELECT event_id FROM psp_events WHERE psp = $1 AND "
                    "kind = 'METHOD_SAVED' AND checkout_id = $3 AND $2 <> ''",
                    3, p);
    cr_assert_not_null(evt, "%s: no METHOD_SAVED event kept", s->psp);
    p[1] = evt;
    cr_expect_str_eq(db_scalar("SELECT (substring(body FROM 1 FOR 3) = "
                               "'v1.'::bytea AND method ->> 'token_sealed' "
                               "LIKE 'v1.%' AND state = 'applied')::text "
                               "FROM psp_events WHERE psp = $1 AND event_id "
                               "= $2", 2, p), "true", "%s", s->psp);

    /* verify opens it and verifies it, its fields as signed */
    cr_expect_eq(events_tool((const char *[]) { "verify", "--conf",
                     run_file("nginx.conf"), "--psp", s->psp, "--event",
                     evt, NULL }, &out), 0, "%s: %s", s->psp, out);
    cr_expect(strncmp(out, "verified\t", 9) == 0
              && strstr(out, "1 verified, 0 failed") != NULL, "%s: %s",
              s->psp, out);
}


/* --- saving ------------------------------------------------------------------ */

static void
save_while_paying(size_t d)
{
    json_t      *it, *sv;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, d, "off_session");

    r = api_get(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    cr_assert_eq(r->status, 200, "%s", r->body);
    it = resp_json(r);

    cr_expect_str_eq(json_string_value(json_object_get(it, "psp")), s.psp);
    cr_expect_str_eq(json_string_value(json_object_get(it, "customer")),
                     s.customer);
    cr_expect_str_eq(json_string_value(json_object_get(it, "usage")),
                     "off_session");
    cr_expect_str_eq(json_string_value(json_object_get(it, "status")),
                     "active");
    cr_expect_str_eq(json_string_value(json_object_get(it, "checkout_id")),
                     s.co);
    cr_expect(!mem_contains(r->body, r->len, s.token),
              "%s: the PSP's token is in the answer", s.psp);

    /* the checkout that saved it says so, as its 201 did */
    r = api_get(&s.m, str_printf("/v1/checkouts/%s", s.co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    sv = json_object_get(resp_json(r), "save_payment_method");
    cr_expect_str_eq(json_string_value(json_object_get(sv, "customer")),
                     s.customer, "%s: %s", s.psp, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(sv, "usage")),
                     "off_session", "%s: %s", s.psp, r->body);
    cr_expect(json_object_get(resp_json(r), "payment_method") == NULL,
              "%s: %s", s.psp, r->body);
    cr_expect(!mem_contains(r->body, r->len, s.token),
              "%s: the PSP's token is in the answer", s.psp);

    /* the generic PSP tells the card for display; Stripe's and Adyen's
     * events (the signed part) do not */
    if (d == 2) {
        cr_expect_str_eq(json_string_value(json_object_get(
                             json_object_get(it, "card"), "last4")), "4242");
    }

    /* sealed at rest: never the token in clear, in the method's row or in
     * what the PSP was sent for the customer */
    params[0] = s.m.id;
    params[1] = s.token;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods "
                               "WHERE merchant_id = $1 AND token_sealed "
                               "LIKE 'v1.%' AND position($2 in "
                               "token_sealed) = 0", 2, params), "1");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods p "
                               "WHERE p.merchant_id = $1 AND "
                               "position(p.customer in p.customer_ref) = 0",
                               1, params), "1");

    /* nor in the inbox: the events that carry it are kept sealed, the
     * PSP's bytes inside, and still verify against the PSP's key */
    inbox_sealed(&s);
}

Test(saved_methods, stripe_saves_while_paying) { save_while_paying(0); }
Test(saved_methods, adyen_saves_while_paying) { save_while_paying(1); }
Test(saved_methods, generic_saves_while_paying) { save_while_paying(2); }


/* --- the off-session charge ------------------------------------------------- */

static void
charge_booked(size_t d)
{
    char        *co, *po;
    json_t      *j;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, d, "off_session");

    co = uid("ren");
    r = api_post_json(&s.m, charge_body(&s, co));
    cr_assert_eq(r->status, 201, "%s: %s", s.psp, r->body);
    j = resp_json(r);

    cr_expect_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING");
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp")), s.psp);
    cr_expect_str_eq(json_string_value(json_object_get(j, "payment_method")),
                     s.pm);
    cr_expect(json_is_true(json_object_get(j, "off_session")));
    cr_expect(json_object_get(j, "pay_url") == NULL,
              "an off-session charge has no pay link");
    cr_expect(!mem_contains(r->body, r->len, s.token));

    /* the PSP's webhook books it, as any payment */
    wait_status(&s.m, co, "SUCCESS");

    params[0] = s.m.id;
    params[1] = co;
    cr_expect_str_eq(ledger_rows(params), "1", "%s: not booked once", s.psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "psp_request LIKE 'v1.%'", 2, params), "1",
                     "%s: the charge's request (it names the token) is not "
                     "sealed", s.psp);

    /* refundable as any payment */
    po = str_printf("%s_p1", co);
    r = post_path(&s.m, str_printf("/v1/payments/%s/refunds", po), NULL,
                  "{\"amount\":\"1.00\"}");
    cr_expect_eq(r->status, 201, "%s: refund: %s", s.psp, r->body);
}

Test(saved_methods, stripe_charge_off_session_is_booked) { charge_booked(0); }
Test(saved_methods, adyen_charge_off_session_is_booked) { charge_booked(1); }
Test(saved_methods, generic_charge_off_session_is_booked) { charge_booked(2); }


/* The mock's next off-session charge of checkout co answers outcome
 * (POST /_control/charges), code its decline code or NULL. */
static void
charge_rule(const merchant_t *m, const char *co, const char *outcome,
    const char *code)
{
    resp_t  *r;

    r = mock_post("/_control/charges",
                  str_printf("{\"reference\":\"%s\",\"outcome\":\"%s\"%s%s%s}",
                             nonce(m, co), outcome,
                             code ? ",\"code\":\"" : "", code ? code : "",
                             code ? "\"" : ""));
    cr_assert_eq(r->status, 200, "%s", r->body);
}


static void
charge_refused(size_t d, const char *outcome, const char *code,
    const char *problem, const char *decline)
{
    char     *co, *key;
    long      sessions, requests;
    json_t   *j;
    resp_t   *r;
    saved_t   s;

    saved_new(&s, d, "off_session");

    co = uid("ren");
    charge_rule(&s.m, co, outcome, code);

    key = uid("key");
    r = api_post(&s.m, key, dump(charge_body(&s, co)));
    expect_problem(r, 402, problem);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "checkout_id")), co);

    if (decline != NULL) {
        cr_expect_str_eq(json_string_value(json_object_get(j,
                                                           "decline_code")),
                         decline, "%s: %s", s.psp, r->body);
    }

    /* FAILED, and stored under the key: a retry replays, never sends */
    cr_expect_str_eq(checkout_status(&s.m, co), "FAILED");

    r = api_post(&s.m, key, dump(charge_body(&s, co)));
    expect_problem(r, 402, problem);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");

    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, 1, "%s: the charge was sent %ld times", s.psp,
                 requests);
}

Test(saved_methods, stripe_decline_is_402_with_its_reason)
{
    charge_refused(0, "decline", "insufficient_funds", "payment_declined",
                   "insufficient_funds");
}

Test(saved_methods, adyen_decline_is_402_with_its_reason)
{
    charge_refused(1, "expired_card", NULL, "payment_declined",
                   "expired_card");
}

Test(saved_methods, generic_decline_is_402_with_its_reason)
{
    charge_refused(2, "decline", "insufficient_funds", "payment_declined",
                   "insufficient_funds");
}

/*
 * The PSP declined the charge and every answer was lost (the gateway's own
 * retries too): the request ends 5xx with the checkout EXECUTING.  The
 * charge's webhook (Stripe's payment_intent.payment_failed, Adyen's
 * AUTHORISATION with success false, the generic payment.failed) fails it,
 * declined, as the charge's 402 would have: an off-session charge has no
 * shopper to try again.  Adyen's refusal was read as a hosted session's
 * refused attempt (recorded, nothing moved) and left the checkout
 * EXECUTING until the shop retried (found by the money checker's seed
 * 240233).  The shop's retry then finds it decided, nothing sent again.
 */
static void
charge_declined_answer_lost(size_t d, const char *outcome, const char *code)
{
    char     *co, *key, *body;
    long      sessions, requests, before;
    json_t   *j;
    resp_t   *r;
    saved_t   s;

    saved_new(&s, d, "off_session");

    co = uid("ren");
    charge_rule(&s.m, co, outcome, code);
    (void) mock_fault(str_printf("{\"match\":\"%s\",\"drop_after_register\":1,"
                                 "\"drop_replays\":50}", nonce(&s.m, co)));

    key = uid("key");
    body = dump(charge_body(&s, co));
    r = api_post(&s.m, key, body);
    cr_assert_geq(r->status, 500, "%s: the test wants a charge whose answer "
                  "never came: %d %s", s.psp, r->status, r->body);

    wait_status(&s.m, co, "FAILED");

    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(j, "failure"), "code")),
                     "declined", "%s: %s", s.psp, r->body);

    /* decided: the shop's retry sends nothing; the PSP holds the one
     * payment it refused */
    mock_registrations(nonce(&s.m, co), &sessions, &before);
    r = api_post(&s.m, key, body);
    cr_expect_eq(r->status, 409, "%s: %d %s", s.psp, r->status, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r), "code")),
                     "duplicate_order", "%s: %s", s.psp, r->body);
    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, before, "%s: the retry was sent", s.psp);
    cr_expect_eq(sessions, 1, "%s: %ld payments at the PSP", s.psp, sessions);
}

Test(saved_methods, stripe_a_declined_charge_whose_answer_was_lost_fails_by_its_webhook)
{
    charge_declined_answer_lost(0, "decline", "insufficient_funds");
}

Test(saved_methods, adyen_a_declined_charge_whose_answer_was_lost_fails_by_its_webhook)
{
    charge_declined_answer_lost(1, "expired_card", NULL);
}

Test(saved_methods, generic_a_declined_charge_whose_answer_was_lost_fails_by_its_webhook)
{
    charge_declined_answer_lost(2, "decline", "insufficient_funds");
}


/*
 * The card's issuer wants the shopper (SCA): the checkout stays open, and
 * the answer (202, stored under the key) carries a pay link to a hosted
 * page at the same PSP, for the same customer, made under a key of its
 * own; the shopper authenticates there and the PSP's verified webhook
 * books the payment once, as any payment.  The charge itself was sent
 * once; a retry with the same key replays the 202 and sends nothing.
 */
static void
charge_authenticated(size_t d)
{
    char        *co, *key, *body, *pay_url, *session;
    long         sessions, requests;
    json_t      *j;
    resp_t      *r, *again;
    saved_t      s;
    const char  *params[2], *loc;

    saved_new(&s, d, "off_session");

    /* a long checkout id (its order's id is 3 more, at most 40): with
     * ":authenticate" the nonce is longer than Adyen's longest
     * Idempotency-Key, 64 */
    co = uid("ren");
    co = str_printf("%s_%.*s", co, (int) (36 - strlen(co)),
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    cr_assert_eq(strlen(co), 37);
    cr_assert_gt(strlen(nonce(&s.m, co)) + strlen(":authenticate"), 64);
    charge_rule(&s.m, co, "authentication_required", NULL);

    key = uid("key");
    body = dump(charge_body(&s, co));
    r = api_post(&s.m, key, body);
    cr_assert_eq(r->status, 202, "%s: %ld %s", s.psp, r->status, r->body);
    j = resp_json(r);

    cr_expect_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING");
    cr_expect_str_eq(json_string_value(json_object_get(j, "next_action")),
                     "authenticate", "%s: %s", s.psp, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "payment_method")),
                     s.pm);
    cr_assert(json_is_string(json_object_get(j, "pay_url")),
              "%s: no pay link: %s", s.psp, r->body);
    cr_expect(!mem_contains(r->body, r->len, s.token),
              "%s: the PSP's token is in the answer", s.psp);
    pay_url = strdup(json_string_value(json_object_get(j, "pay_url")));
    session = strdup(json_string_value(json_object_get(j, "psp_token")));

    /* Stripe also sends payment_intent.payment_failed for the 402's
     * intent (metadata.charge our nonce, last_payment_error.code
     * authentication_required): the shopper may still pay on the page,
     * so it moves nothing */
    if (d == 0) {
        int    i;
        char  *outcome = NULL;

        params[0] = s.psp;
        params[1] = nonce(&s.m, co);

        for (i = 0; i < 100; i++) {
            outcome = db_scalar("SELECT outcome FROM psp_events WHERE"
                                " psp = $1 AND reference = $2 AND type ="
                                " 'payment_intent.payment_failed' AND"
                                " outcome IS NOT NULL", 2, params);
            if (outcome != NULL) {
                break;
            }
            msleep(100);
        }

        cr_expect_str_eq(outcome ? outcome : "(none came)", "pending",
                         "%s: the authentication's payment_failed",
                         s.psp);
    }

    /* open, not failed; shown as the 202 said it: the shopper is wanted
     * at the pay link */
    cr_expect_str_eq(checkout_status(&s.m, co), "EXECUTING");
    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "pay_url")), pay_url,
                     "%s: %s", s.psp, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "next_action")),
                     "authenticate", "%s: %s", s.psp, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "payment_method")),
                     s.pm, "%s: %s", s.psp, r->body);
    cr_expect(json_is_true(json_object_get(resp_json(r), "off_session")),
              "%s: %s", s.psp, r->body);

    /* the same key: the same answer, nothing sent again */
    again = api_post(&s.m, key, body);
    cr_expect_eq(again->status, 202, "%s", again->body);
    cr_expect_str_eq(resp_header(again, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(again),
                                                       "pay_url")), pay_url);

    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, 1, "%s: the charge was sent %ld times", s.psp,
                 requests);

    /* the pay link sends the shopper to the PSP's hosted page */
    r = http_get(gw_url_for(pay_url));
    cr_expect_eq(r->status, 303, "%s: %ld %s", s.psp, r->status, r->body);
    loc = resp_header(r, "Location");
    cr_expect(loc != NULL && strncmp(loc, mock_url("/pay/"),
                                     strlen(mock_url("/pay/"))) == 0,
              "%s: Location %s", s.psp, loc);

    /* the shopper authenticates and pays there: booked once */
    r = mock_post(str_printf("/_control/sessions/%s/pay", session), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    wait_status(&s.m, co, "SUCCESS");

    params[0] = s.m.id;
    params[1] = co;
    cr_expect_str_eq(ledger_rows(params), "1", "%s: not booked once", s.psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND action = "
                               "'charge:authentication_required' AND "
                               "$2 <> ''", 2, params), "1",
                     "%s: the authentication is not audited", s.psp);

    /* replayed once more after the payment: still the stored 202 */
    again = api_post(&s.m, key, body);
    cr_expect_eq(again->status, 202, "%s", again->body);
}

Test(saved_methods, stripe_authentication_required_opens_a_pay_link)
{
    charge_authenticated(0);
}

Test(saved_methods, adyen_authentication_required_opens_a_pay_link)
{
    charge_authenticated(1);
}

Test(saved_methods, generic_authentication_required_opens_a_pay_link)
{
    charge_authenticated(2);
}


/*
 * A charge that needs the shopper has its hosted page: the shop's cancel
 * ends it as any hosted checkout's (200, FAILED), where the PSP can end
 * it.  Stripe's and the generic PSP's page then refuses the shopper (410)
 * and nothing is booked; Adyen's session cannot be ended, so a shopper
 * who pays there after the cancel is the PSP's money all the same: booked
 * once, SUCCESS as paid after the failure.  (The money checker composes
 * it: seed 261099.)
 */
static void
charge_authenticated_canceled(size_t d)
{
    char        *co, *session;
    json_t      *j;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, d, "off_session");

    co = uid("ren");
    charge_rule(&s.m, co, "authentication_required", NULL);

    r = api_post_json(&s.m, charge_body(&s, co));
    cr_assert_eq(r->status, 202, "%s: %ld %s", s.psp, r->status, r->body);
    session = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));

    r = post_path(&s.m, str_printf("/v1/checkouts/%s/cancel", co),
                  uid("key"), "");
    cr_assert_eq(r->status, 200, "%s: %ld %s", s.psp, r->status, r->body);
    cr_expect_str_eq(checkout_status(&s.m, co), "FAILED", "%s", s.psp);

    r = mock_post(str_printf("/_control/sessions/%s/pay", session), NULL);
    params[0] = s.m.id;
    params[1] = co;

    if (d != 1) {
        cr_expect_eq(r->status, 410, "%s: the page took the shopper's "
                     "payment after the cancel: %ld %s", s.psp, r->status,
                     r->body);
        msleep(500);
        cr_expect_str_eq(checkout_status(&s.m, co), "FAILED", "%s", s.psp);
        cr_expect_str_eq(ledger_rows(params), "0",
                         "%s: booked", s.psp);
        return;
    }

    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
    wait_status(&s.m, co, "SUCCESS");

    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    cr_expect(json_is_true(json_object_get(j, "paid_after_failure")), "%s",
              r->body);
    cr_expect_str_eq(ledger_rows(params), "1", "not booked once");
}

Test(saved_methods, stripe_a_charge_needing_the_shopper_canceled_cannot_be_paid)
{
    charge_authenticated_canceled(0);
}

Test(saved_methods, adyen_a_charge_needing_the_shopper_paid_after_the_cancel_is_booked)
{
    charge_authenticated_canceled(1);
}

Test(saved_methods, generic_a_charge_needing_the_shopper_canceled_cannot_be_paid)
{
    charge_authenticated_canceled(2);
}


/* checkout co's charge needs the shopper, and every answer to it is lost
 * (the gateway's own retries too): the mock's rule, to remove once the
 * PSP answers again */
static long
auth_answers_lost(const saved_t *s, const char *co)
{
    charge_rule(&s->m, co, "authentication_required", NULL);

    return mock_fault(str_printf("{\"match\":\"%s\",\"drop_after_register\":1,"
                                 "\"drop_replays\":50}", nonce(&s->m, co)));
}


/* its news, if any, moved nothing meanwhile: still open, no page,
 * nothing booked */
static void
auth_lost_moved_nothing(const saved_t *s, const char *co)
{
    const char  *params[2];

    msleep(1500);
    params[0] = s->m.id;
    params[1] = co;
    cr_expect_str_eq(checkout_status(&s->m, co), "EXECUTING", "%s", s->psp);
    cr_expect_str_eq(ledger_rows(params), "0", "%s: booked", s->psp);
}


/* r, what sent the charge again once the PSP answered (what: the shop's
 * retry, an approval again), opened the page as the first answer would
 * have: 202 with the pay link, the checkout naming its session; the
 * shopper's payment there is booked once, one charge at the PSP */
static void
auth_page_paid_once(const saved_t *s, const char *co, resp_t *r,
    const char *what)
{
    char        *session;
    long         sessions, requests;
    json_t      *j;
    const char  *params[2];

    cr_assert_eq(r->status, 202, "%s: %s: %ld %s", s->psp, what, r->status,
                 r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "next_action")),
                     "authenticate", "%s: %s", s->psp, r->body);
    cr_assert(json_is_string(json_object_get(j, "pay_url")),
              "%s: no pay link: %s", s->psp, r->body);
    session = strdup(json_string_value(json_object_get(j, "psp_token")));

    r = api_get(&s->m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")),
                     session, "%s: %s", s->psp, r->body);

    r = mock_post(str_printf("/_control/sessions/%s/pay", session), NULL);
    cr_assert(r->status >= 200 && r->status < 300, "%s: mock pay: %ld %s",
              s->psp, r->status, r->body);

    wait_status(&s->m, co, "SUCCESS");
    params[0] = s->m.id;
    params[1] = co;
    cr_expect_str_eq(ledger_rows(params), "1", "%s: not booked once",
                     s->psp);
    mock_registrations(nonce(&s->m, co), &sessions, &requests);
    cr_expect_eq(sessions, 1, "%s: %ld charges at the PSP", s->psp,
                 sessions);
}


/*
 * A charge that needs the shopper, every answer to it lost (the gateway's
 * own retries too): the shop's request ends 5xx, the checkout EXECUTING
 * with no page, and the shopper was never asked.  The PSP's news of it
 * (Stripe's payment_failed asking for the shopper) moves nothing.  The
 * shop's retry under its key, once the PSP answers again, sends the same
 * charge under the same nonce: the PSP's replayed answer opens the page
 * (202 with the pay link), and the shopper's payment there is booked
 * once; one charge at the PSP.
 */
static void
charge_authenticated_answer_lost(size_t d)
{
    char        *co, *key, *body;
    long         fault;
    resp_t      *r;
    saved_t      s;

    saved_new(&s, d, "off_session");

    co = uid("ren");
    fault = auth_answers_lost(&s, co);

    key = uid("key");
    body = dump(charge_body(&s, co));
    r = api_post(&s.m, key, body);
    cr_assert_geq(r->status, 500, "%s: the test wants a charge whose answer "
                  "never came: %ld %s", s.psp, r->status, r->body);

    auth_lost_moved_nothing(&s, co);

    /* the PSP answers again; the shop's retry */
    mock_fault_remove(fault);
    auth_page_paid_once(&s, co, api_post(&s.m, key, body), "the shop's retry");
}

Test(saved_methods, stripe_a_charge_needing_the_shopper_whose_answer_was_lost_opens_its_page_on_retry)
{
    charge_authenticated_answer_lost(0);
}

Test(saved_methods, adyen_a_charge_needing_the_shopper_whose_answer_was_lost_opens_its_page_on_retry)
{
    charge_authenticated_answer_lost(1);
}

Test(saved_methods, generic_a_charge_needing_the_shopper_whose_answer_was_lost_opens_its_page_on_retry)
{
    charge_authenticated_answer_lost(2);
}

/*
 * The PSP charged, and its answer was lost (the mock drops the connection
 * after the commit): the gateway sends the same bytes again under the same
 * nonce, within the request, and the PSP answers its first charge again;
 * the client's retry under the same key replays it.  One charge at the
 * PSP, one booking.
 */
static void
charge_retried_once(size_t d)
{
    char        *co, *key, *body;
    long         sessions, requests;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, d, "off_session");

    co = uid("ren");
    (void) mock_fault(str_printf("{\"match\":\"%s\",\"drop_after_register\":1}",
                                 nonce(&s.m, co)));

    key = uid("key");
    body = dump(charge_body(&s, co));
    r = api_post(&s.m, key, body);
    cr_assert_eq(r->status, 201, "%s: %s", s.psp, r->body);

    r = api_post(&s.m, key, body);
    cr_assert_eq(r->status, 201, "%s: %s", s.psp, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");

    wait_status(&s.m, co, "SUCCESS");

    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, 2, "%s: %ld requests (the dropped one and its "
                 "retry)", s.psp, requests);
    cr_expect_eq(sessions, 1, "%s: %ld charges at the PSP", s.psp, sessions);

    params[0] = s.m.id;
    params[1] = co;
    cr_expect_str_eq(ledger_rows(params), "1");
}

Test(saved_methods, stripe_retry_after_a_lost_answer_charges_once)
{
    charge_retried_once(0);
}

Test(saved_methods, adyen_retry_after_a_lost_answer_charges_once)
{
    charge_retried_once(1);
}

Test(saved_methods, generic_retry_after_a_lost_answer_charges_once)
{
    charge_retried_once(2);
}


/*
 * The PSP charged and every answer was lost (the gateway's own retries
 * too): the request ends 5xx with the checkout EXECUTING and no PSP id
 * stored.  The charge's webhook pays it; the checkout and its order then
 * show the PSP's payment id as psp_token, as an answered charge's do (the
 * id the webhook named), not nothing.
 */
static void
charge_answer_lost_paid_by_webhook(size_t d)
{
    char        *co, *po, *ref;
    json_t      *j;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, d, "off_session");

    co = uid("ren");
    (void) mock_fault(str_printf("{\"match\":\"%s\",\"drop_after_register\":1,"
                                 "\"drop_replays\":50}", nonce(&s.m, co)));

    r = api_post_json(&s.m, charge_body(&s, co));
    cr_assert_geq(r->status, 500, "%s: %d %s", s.psp, r->status, r->body);

    wait_status(&s.m, co, "SUCCESS");

    params[0] = s.m.id;
    params[1] = co;
    ref = db_scalar("SELECT psp_payment_ref FROM checkouts "
                    "WHERE merchant_id = $1 AND checkout_id = $2", 2, params);
    cr_assert(ref != NULL && ref[0] != '\0', "%s: no payment id booked",
              s.psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "psp_token IS NULL", 2, params), "1",
                     "%s: the test wants a charge whose answer never came",
                     s.psp);

    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp_token")), ref,
                     "%s: %s", s.psp, r->body);

    po = str_printf("%s_p1", co);
    r = api_get(&s.m, str_printf("/v1/payments/%s", po));
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "psp_token")), ref,
                     "%s: %s", s.psp, r->body);
}

Test(saved_methods, stripe_a_charge_whose_answer_was_lost_shows_its_payment_id)
{
    charge_answer_lost_paid_by_webhook(0);
}

Test(saved_methods, adyen_a_charge_whose_answer_was_lost_shows_its_payment_id)
{
    charge_answer_lost_paid_by_webhook(1);
}

Test(saved_methods, generic_a_charge_whose_answer_was_lost_shows_its_payment_id)
{
    charge_answer_lost_paid_by_webhook(2);
}


/*
 * An off-session charge the PSP has (taken, its webhook not here yet)
 * cannot be canceled: 409 checkout_not_cancelable saying why, stored under
 * the key, and the charge stands.  Before, Adyen's (no session to end)
 * was FAILED `canceled` at the gateway alone, while the PSP paid it, and
 * Stripe's was sent to the session's expire under the intent's id: a 404,
 * a 502 at every retry.
 */
static void
charge_not_canceled(size_t d)
{
    char        *co, *key;
    resp_t      *r, *g;
    const char  *tok;
    saved_t   s;

    saved_new(&s, d, "off_session");

    co = uid("ren");
    (void) mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                                 nonce(&s.m, co)));
    r = api_post_json(&s.m, charge_body(&s, co));
    cr_assert_eq(r->status, 201, "%s: %s", s.psp, r->body);
    cr_assert_str_eq(checkout_status(&s.m, co), "EXECUTING");

    /* shown as the 201 said it: the PSP's payment id, the method, and no
     * pay link (there is no page to pay at) */
    tok = json_string_value(json_object_get(resp_json(r), "psp_token"));
    cr_assert(tok != NULL, "%s: %s", s.psp, r->body);
    g = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(g->status, 200, "%s: %s", s.psp, g->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(g),
                                                       "psp_token")), tok,
                     "%s: %s", s.psp, g->body);
    cr_expect(json_object_get(resp_json(g), "pay_url") == NULL,
              "%s: a pay link to no page: %s", s.psp, g->body);
    cr_expect(json_object_get(resp_json(g), "next_action") == NULL,
              "%s: %s", s.psp, g->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(g),
                                                       "payment_method")),
                     s.pm, "%s: %s", s.psp, g->body);
    cr_expect(json_is_true(json_object_get(resp_json(g), "off_session")),
              "%s: %s", s.psp, g->body);

    key = uid("key");
    r = post_path(&s.m, str_printf("/v1/checkouts/%s/cancel", co), key, "");
    expect_problem(r, 409, "checkout_not_cancelable");
    cr_expect_not_null(strstr(r->body, "off-session charge"), "%s: %s",
                       s.psp, r->body);
    cr_expect_str_eq(checkout_status(&s.m, co), "EXECUTING", "%s", s.psp);

    /* the same key: the same answer */
    r = post_path(&s.m, str_printf("/v1/checkouts/%s/cancel", co), key, "");
    expect_problem(r, 409, "checkout_not_cancelable");
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
}

Test(saved_methods, stripe_a_charge_sent_is_not_canceled)
{
    charge_not_canceled(0);
}

Test(saved_methods, adyen_a_charge_sent_is_not_canceled)
{
    charge_not_canceled(1);
}

Test(saved_methods, generic_a_charge_sent_is_not_canceled)
{
    charge_not_canceled(2);
}


/* --- whose, and detached ----------------------------------------------------- */

Test(saved_methods, another_merchants_method_is_404)
{
    char        *co;
    resp_t      *r;
    saved_t      s;
    merchant_t   other;
    const char  *params[2];

    saved_new(&s, 2, "off_session");
    merchant_new(&other);

    r = api_get(&other, str_printf("/v1/payment_methods/%s", s.pm));
    expect_problem(r, 404, "not_found");

    co = uid("ren");
    r = api_post_json(&other, charge_body(&s, co));
    expect_problem(r, 404, "not_found");

    r = api_get(&other, str_printf("/v1/payment_methods?customer=%s",
                                   s.customer));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_eq(json_array_size(json_object_get(resp_json(r), "data")), 0);

    r = post_path(&other, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    expect_problem(r, 404, "not_found");

    params[0] = other.id;
    params[1] = co;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2,
                               params), "0");
}


Test(saved_methods, a_detached_method_cannot_be_charged)
{
    char    *co;
    json_t  *j;
    resp_t  *r;
    saved_t  s;

    saved_new(&s, 0, "off_session");

    r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "status")),
                     "detached");
    cr_expect(json_is_string(json_object_get(j, "detached_at")));

    /* again: the same */
    r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    cr_assert_eq(r->status, 200, "%s", r->body);

    co = uid("ren");
    r = api_post_json(&s.m, charge_body(&s, co));
    expect_problem(r, 409, "payment_method_unusable");

    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    expect_problem(r, 404, "not_found");
}


/*
 * A charge answered, then its method detached: the shop's retry with the
 * same Idempotency-Key is the same request, and replays its stored answer
 * (a charge taken stays taken; a detach stops only later charges).  And a
 * charge whose first attempt got no answer (the PSP's 503), its method
 * detached before the retry: the checkout stored under the key is not
 * "nothing stored"; the retry says the charge is not sent, and the
 * checkout is FAILED, its answer stored under the key.
 */
Test(saved_methods, a_charge_retried_after_its_method_was_detached_replays)
{
    char        *co, *key, *body;
    resp_t      *r, *first;
    saved_t      s;

    saved_new(&s, 0, "off_session");

    co = uid("ren");
    key = uid("key");
    body = dump(charge_body(&s, co));
    first = api_post(&s.m, key, body);
    cr_assert_eq(first->status, 201, "%s", first->body);

    r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    cr_assert_eq(r->status, 200, "%s", r->body);

    r = api_post(&s.m, key, body);
    cr_assert_eq(r->status, 201, "the retry of a charge taken: %ld %s",
                 r->status, r->body);
    cr_expect_str_eq(resp_header(r, "Idempotent-Replayed"), "true");
    cr_expect_str_eq(r->body, first->body);
}


/* A charge whose first attempt got no charge (the PSP's 503, an hour's
 * Retry-After), its method detached before the shop's retry with the same
 * key: not sent again (it would charge a method its shopper removed), 409
 * saying so; the checkout stays for the PSP's word. */
Test(saved_methods, a_charge_resumed_after_its_method_was_detached_is_not_sent)
{
    char        *co, *key, *body;
    long         sessions, requests;
    resp_t      *r;
    saved_t      s;

    saved_new(&s, 0, "off_session");

    co = uid("ren");
    key = uid("key");
    body = dump(charge_body(&s, co));
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503,\"retry_after\":3600}",
                          nonce(&s.m, co)));
    r = api_post(&s.m, key, body);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);

    r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    cr_assert_eq(r->status, 200, "%s", r->body);

    r = api_post(&s.m, key, body);
    expect_problem(r, 409, "payment_method_unusable");
    cr_expect(strstr(r->body, "not sent again") != NULL, "%s", r->body);

    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, 1, "%ld requests at the PSP", requests);

    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "the checkout: %ld %s", r->status, r->body);
}


/*
 * A merchant's charge names no other merchant's checkout.  Stripe reads an
 * off-session charge's intent by metadata.charge, and a manual capture's
 * news (its capture, its release) by metadata.nonce; the merchant's
 * metadata went beside ours with any key but "charge", so merchant B's
 * charge carrying {"nonce": "<A>:<co>"} made its payment_intent.succeeded
 * a capture of A's manual checkout ("captured outside"): A's unpaid
 * checkout held and booked, and B's charge left to the sweeper.  Now
 * the merchant's metadata that names such a key is not sent, and an
 * intent whose nonce is not its charge is the charge's alone.
 */
Test(saved_methods, a_charge_names_no_other_merchants_checkout)
{
    int          i;
    char        *co, *victim;
    json_t      *body, *md;
    resp_t      *r;
    saved_t      s;
    merchant_t   a;
    const char  *params[2];

    merchant_new(&a);
    victim = uid("co");
    body = checkout_new(victim, 1);
    json_object_set_new(body, "psp", json_string(sm_psp(0)));
    json_object_set_new(body, "capture", json_string("manual"));
    (void) register_ok(&a, uid("key"), dump(body));

    saved_new(&s, 0, "off_session");

    co = uid("ren");
    body = charge_body(&s, co);
    md = json_pack("{ss}", "nonce", nonce(&a, victim));
    json_object_set_new(body, "metadata", md);
    r = api_post_json(&s.m, body);
    cr_assert_eq(r->status, 201, "%s", r->body);

    params[0] = a.id;
    params[1] = victim;

    for (i = 0; i < 100; i++) {
        if (strcmp(checkout_status(&s.m, co), "SUCCESS") == 0
            || strcmp(db_scalar("SELECT count(*) FROM captures WHERE "
                                "merchant_id = $1 AND checkout_id = $2", 2,
                                params), "0") != 0)
        {
            break;
        }
        msleep(100);
    }

    cr_expect_str_eq(db_scalar("SELECT count(*) FROM captures WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2,
                               params), "0",
                     "B's charge was booked as a capture of A's checkout");
    cr_expect_str_eq(db_scalar("SELECT status FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2,
                               params), "EXECUTING");
    cr_expect_str_eq(ledger_rows(params), "0");
    cr_expect_str_eq(checkout_status(&s.m, co), "SUCCESS");

    /* the merchant's metadata is still its own, in the gateway's answer */
    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(
                         resp_json(r), "metadata"), "nonce")),
                     nonce(&a, victim), "%s", r->body);
}


/* A saved method is its PSP's: a charge naming another PSP is refused. */
Test(saved_methods, a_method_is_charged_at_its_own_psp_only)
{
    json_t  *body;
    resp_t  *r;
    saved_t  s;

    saved_new(&s, 2, "on_session");

    body = charge_body(&s, uid("ren"));
    json_object_set_new(body, "psp", json_string("mock_adyen"));
    r = api_post_json(&s.m, body);
    expect_problem(r, 400, "invalid_request");
}


static resp_t *delete_path(const merchant_t *m, const char *path);
static json_int_t vault_detaches(const char *token);


/*
 * Test money never reaches a live PSP: a method saved through a mode=live
 * PSP is none of a test key's.  The method is saved at the mock's test
 * PSP, then made the live PSP's (mock_live: the same mock, behind this
 * nginx's TLS), as a merchant's live key would have saved it; the
 * merchant's mk_test_ key then neither detaches it (404, still active,
 * nothing sent to the PSP, here or by the sweeper) nor charges it.
 */
Test(saved_methods, a_test_key_never_detaches_or_charges_a_live_method)
{
    char        *co;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, 0, "off_session");

    params[0] = s.m.id;
    params[1] = s.pm;
    db_exec("UPDATE payment_methods SET psp = 'mock_live' WHERE merchant_id "
            "= $1 AND method_id = $2", 2, params);

    r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    expect_problem(r, 404, "not_found");

    r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    expect_problem(r, 404, "not_found");

    cr_expect_str_eq(db_scalar("SELECT status || ' ' || (detached_at IS NULL)"
                               "::text FROM payment_methods WHERE "
                               "merchant_id = $1 AND method_id = $2", 2,
                               params), "active true");
    cr_expect_eq(vault_detaches(s.token), 0, "the live PSP was sent a "
                 "detach for a test key");

    /* nor charged off-session: refused before any claim */
    co = uid("ren");
    r = api_post_json(&s.m, charge_body(&s, co));
    expect_problem(r, 400, "invalid_request");
    cr_expect(strstr(r->body, "a test API key cannot use a live PSP")
              != NULL, "%s", r->body);
    params[1] = co;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2,
                               params), "0");
}


/* --- what is refused before anything is stored -------------------------- */

Test(saved_methods, refused_bodies_store_nothing)
{
    char        *co;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");

    /* no agreement */
    body = checkout_new(co, 1);
    json_object_set_new(body, "save_payment_method",
                        json_pack("{ss ss}", "customer", "c1",
                                  "usage", "off_session"));
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* an e-mail is not a customer id */
    body = checkout_new(co, 1);
    json_object_set_new(body, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", "ann@example.com",
                                  "usage", "off_session",
                                  "shopper_agreed", 1));
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* a charge of a saved method: off_session true, never with a save */
    body = checkout_new(co, 1);
    json_object_set_new(body, "payment_method",
                        json_string("pm_abcdefghijklmnopabcdefgh"));
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* a manual capture may be one: only its method is unknown */
    body = checkout_new(co, 1);
    json_object_del(body, "psp");
    json_object_set_new(body, "payment_method",
                        json_string("pm_abcdefghijklmnopabcdefgh"));
    json_object_set_new(body, "off_session", json_true());
    json_object_set_new(body, "capture", json_string("manual"));
    expect_problem(api_post_json(&m, body), 404, "not_found");

    body = checkout_new(co, 1);
    json_object_set_new(body, "payment_method", json_string("card_4242"));
    json_object_set_new(body, "off_session", json_true());
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* an unknown method */
    body = checkout_new(co, 1);
    json_object_del(body, "psp");
    json_object_set_new(body, "payment_method",
                        json_string("pm_abcdefghijklmnopabcdefgh"));
    json_object_set_new(body, "off_session", json_true());
    expect_problem(api_post_json(&m, body), 404, "not_found");

    r = api_get(&m, str_printf("/v1/checkouts/%s", co));
    expect_problem(r, 404, "not_found");

    /* the list needs its customer */
    expect_problem(api_get(&m, "/v1/payment_methods"), 400,
                   "invalid_request");
    expect_problem(api_get(&m, "/v1/payment_methods?customer=c1&x=1"), 400,
                   "invalid_request");
}


/*
 * A saving event that came before its checkout (kept unmatched: no
 * checkout of that nonce yet) is applied by payments-events replay once
 * the checkout is here, from the sealed token its row keeps: one saved
 * method, audited; a second replay is a no-op ('duplicate').
 */
Test(saved_methods, replay_saves_a_method_once)
{
    long         t = (long) time(NULL);
    char        *co, *evt, *pm, *pi, *cus, *body, *sig, *out, *secret;
    size_t       len;
    json_t      *save, *req;
    resp_t      *r;
    merchant_t   m;
    const char  *p[3];

    merchant_new(&m);
    co = uid("co");
    evt = uid("evt");
    pm = uid("pm_test");
    pi = uid("pi_test");
    cus = uid("cus_test");
    secret_used(pm);

    body = str_printf("{\"id\":\"%s\",\"object\":\"event\",\"type\":"
                      "\"payment_intent.succeeded\",\"created\":%ld,"
                      "\"livemode\":false,\"data\":{\"object\":{\"id\":"
                      "\"%s\",\"object\":\"payment_intent\",\"amount\":200,"
                      "\"amount_received\":200,\"currency\":\"usd\","
                      "\"status\":\"succeeded\",\"customer\":\"%s\","
                      "\"payment_method\":\"%s\",\"setup_future_usage\":"
                      "\"off_session\",\"metadata\":{\"nonce\":\"%s\"}}}}",
                      evt, t, pi, cus, pm, nonce(&m, co));
    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(secret);
    sig = stripe_signature(secret, t, body);

    {
        req_t        rq;
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;
        r = http(&rq);
    }
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    p[0] = env("PAY_TEST_PSP");
    p[1] = str_printf("%s:payment_method", evt);
    p[2] = pm;
    cr_assert_str_eq(db_scalar("SELECT state || ' ' || outcome FROM "
                               "psp_events WHERE psp = $1 AND event_id = $2",
                               2, p), "unmatched unknown_checkout");

    /* its checkout, saving the method */
    req = checkout_new(co, 2);
    json_object_set_new(req, "psp", json_string(env("PAY_TEST_PSP")));
    save = json_pack("{ss ss sb}", "customer", uid("cust"), "usage",
                     "off_session", "shopper_agreed", 1);
    json_object_set_new(req, "save_payment_method", save);
    (void) register_ok(&m, uid("key"), dump(req));

    cr_assert_eq(events_tool((const char *[]) { "replay", "--psp", p[0],
                     "--event", p[1], NULL }, &out), 0, "%s", out);
    cr_expect(strstr(out, "saved") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar("SELECT state || ' ' || outcome FROM "
                               "psp_events WHERE psp = $1 AND event_id = $2",
                               2, p), "applied saved");

    p[2] = m.id;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $3 AND event_id = $2 AND psp = "
                               "$1 AND token_sealed LIKE 'v1.%'", 3, p), "1");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $3 AND action IN "
                               "('payment_method:saved', 'inbox:replay') "
                               "AND $1 <> '' AND $2 <> ''", 3, p), "2");

    /* again: nothing twice */
    cr_assert_eq(events_tool((const char *[]) { "replay", "--psp", p[0],
                     "--event", p[1], NULL }, &out), 0, "%s", out);
    cr_expect(strstr(out, "duplicate") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $3 AND $1 <> '' AND $2 <> ''",
                               3, p), "1");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $3 AND action = "
                               "'payment_method:saved' AND $1 <> '' AND $2 "
                               "<> ''", 3, p), "1");

    /* the method is the merchant's, under the gateway's id */
    r = api_get(&m, str_printf("/v1/payment_methods?customer=%s",
                               json_string_value(json_object_get(save,
                                                                 "customer"))));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_eq(json_array_size(json_object_get(resp_json(r), "data")), 1,
                 "%s", r->body);
    cr_expect(!mem_contains(r->body, r->len, pm), "%s", r->body);
}


/* --- the detach at the PSP, and the notifications ------------------------------ */

static resp_t *
delete_path(const merchant_t *m, const char *path)
{
    req_t        rq;
    const char  *h[2];

    h[0] = str_printf("Authorization: Bearer %s", m->key);
    h[1] = NULL;

    rq.method = "DELETE";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = NULL;
    rq.len = 0;

    return http(&rq);
}


/* The mock's vault entry of the PSP's token (the caller's), or NULL. */
static json_t *
vault_method(const char *token)
{
    size_t   i;
    json_t  *list, *it;
    resp_t  *r;

    r = http_get(mock_url("/_control/payment_methods"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    list = json_object_get(resp_json(r), "payment_methods");

    json_array_foreach(list, i, it) {
        if (strcmp(json_string_value(json_object_get(it, "token")), token)
            == 0)
        {
            return json_incref(it);
        }
    }

    return NULL;
}


static json_int_t
vault_detaches(const char *token)
{
    json_t  *m;

    m = vault_method(token);
    cr_assert_not_null(m, "the mock has no such method");

    return json_integer_value(json_object_get(m, "detach_requests"));
}


/* the delivery of that type whose data is the method, or NULL */
static json_t *
delivery_of(const json_t *ds, const char *type, const char *pm)
{
    size_t   i;
    json_t  *d;

    json_array_foreach(ds, i, d) {
        if (strcmp(json_string_value(json_object_get(d, "type")), type) == 0
            && json_string_value(json_object_get(json_object_get(d, "data"),
                                                 "id")) != NULL
            && strcmp(json_string_value(json_object_get(
                          json_object_get(d, "data"), "id")), pm) == 0)
        {
            return d;
        }
    }

    return NULL;
}


/*
 * DELETE /v1/payment_methods/{id}: detached at the gateway and at the PSP
 * (Stripe's detach, Adyen's DELETE /storedPaymentMethods, the generic
 * DELETE), whose vault then refuses it; again: the same answer, nothing
 * sent.  The shop is told payment_method.saved, then
 * payment_method.detached, both in the events feed; no answer, delivery
 * or event names the PSP's token.
 */
static void
detached_at_the_psp(size_t d)
{
    int          i;
    char        *co;
    json_t      *j, *ds, *dv, *m;
    resp_t      *r;
    saved_t      s;
    endpoint_t   ep;
    const char  *params[2];

    saved_new_notified(&s, d, "off_session", &ep);

    r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "status")),
                     "detached");
    cr_expect_str_eq(json_string_value(json_object_get(j, "id")), s.pm);
    cr_expect(!mem_contains(r->body, r->len, s.token),
              "%s: the PSP's token is in the answer", s.psp);

    /* the PSP was told once, and its vault has it detached */
    m = vault_method(s.token);
    cr_assert_not_null(m);
    cr_expect_str_eq(json_string_value(json_object_get(m, "status")),
                     "detached", "%s", s.psp);
    cr_expect_eq(json_integer_value(json_object_get(m, "detach_requests")),
                 1, "%s", s.psp);

    params[0] = s.m.id;
    params[1] = s.pm;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $1 AND method_id = $2 AND "
                               "status = 'detached' AND psp_detached_at IS "
                               "NOT NULL", 2, params), "1", "%s", s.psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log a JOIN "
                               "payment_methods p ON p.merchant_id = "
                               "a.merchant_id AND p.checkout_id = "
                               "a.checkout_id WHERE p.merchant_id = $1 AND "
                               "p.method_id = $2 AND a.action = "
                               "'payment_method:psp_detached'", 2, params),
                     "1", "%s", s.psp);

    /* again, both ways: the same, and the PSP is not asked again */
    r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach", s.pm),
                  NULL, "");
    cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
    cr_expect_eq(vault_detaches(s.token), 1, "%s", s.psp);

    co = uid("ren");
    r = api_post_json(&s.m, charge_body(&s, co));
    expect_problem(r, 409, "payment_method_unusable");

    /* the notifications, delivered and verified, then in the feed */
    ds = receiver_wait(ep.name, "204", 2, 30);
    for (i = 0; i < 50 && (delivery_of(ds, "payment_method.saved", s.pm)
                           == NULL
                           || delivery_of(ds, "payment_method.detached",
                                          s.pm) == NULL); i++)
    {
        msleep(100);
        ds = receiver_deliveries(ep.name);
    }

    dv = delivery_of(ds, "payment_method.saved", s.pm);
    cr_assert_not_null(dv, "%s: no payment_method.saved in %s", s.psp,
                       dump(ds));
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(dv, "data"), "status")), "active");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(dv, "data"), "customer")),
                     s.customer);

    dv = delivery_of(ds, "payment_method.detached", s.pm);
    cr_assert_not_null(dv, "%s: no payment_method.detached in %s", s.psp,
                       dump(ds));
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(dv, "data"), "status")), "detached");
    cr_expect_eq(deliveries_count(ds, "204", "payment_method.detached"), 1);
    cr_expect(strstr(dump(ds), s.token) == NULL,
              "%s: the PSP's token is in a notification", s.psp);

    r = api_get(&s.m, "/v1/events?type=payment_method.detached");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect(strstr(r->body, s.pm) != NULL, "%s: %s", s.psp, r->body);
    r = api_get(&s.m, "/v1/events?type=payment_method.saved");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect(strstr(r->body, s.pm) != NULL, "%s: %s", s.psp, r->body);
    cr_expect(!mem_contains(r->body, r->len, s.token));
}

Test(saved_methods, stripe_detached_at_the_psp) { detached_at_the_psp(0); }
Test(saved_methods, adyen_detached_at_the_psp) { detached_at_the_psp(1); }
Test(saved_methods, generic_detached_at_the_psp) { detached_at_the_psp(2); }


/*
 * An Adyen method saved under one merchant account, detached after the
 * PSP's merchant_account= changed (a gateway of the test's own, reloaded
 * with OtherMerchant): Adyen keeps the token under the account that saved
 * it, so the detach names that account; under another it would answer 422
 * ("Contract not found"), which reads as already gone while the method is
 * still stored and chargeable at Adyen.
 */
Test(saved_methods, an_adyen_method_is_detached_under_the_account_that_saved_it,
     .timeout = 60)
{
    char        *psp;
    json_t      *m;
    resp_t      *r;
    saved_t      s;
    gateway_t    gw;
    const char  *params[2];

    saved_new(&s, 1, "off_session");

    psp = gw_psp_conf("mock_adyen", "adyen");
    gateway_start(&gw, "sm-account", 1,
                  str_printf("%s"
                             "payments_database_pool 2;\n"
                             "payments_sweeper off;\n"
                             "%s", pg_gateway_databases(), psp));
    gateway_wait_ready(&gw, 10);
    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    r = gateway_send(&gw, "DELETE", str_printf("/v1/payment_methods/%s",
                                               s.pm), &s.m, NULL, NULL);
    gateway_stop(&gw);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    m = vault_method(s.token);
    cr_assert_not_null(m);
    cr_expect_str_eq(json_string_value(json_object_get(m, "status")),
                     "detached", "the detach did not name the account that "
                     "saved the method: still stored at Adyen");

    params[0] = s.m.id;
    params[1] = s.pm;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $1 AND method_id = $2 AND "
                               "status = 'detached' AND psp_detached_at IS "
                               "NOT NULL", 2, params), "1");
}


static resp_t *review_decide_at(const gateway_t *gw, const char *nonce_,
    const char *what);


/*
 * An Adyen method saved under merchant_account=TestMerchant, charged
 * off-session by a gateway whose mock_adyen names OtherMerchant now: Adyen
 * keeps the token under the account that saved it and refuses a charge
 * under another ("Contract not found", which would read as the card's
 * decline), and a charge sent under the method's account would be
 * booked by no webhook (refused here as another account's).  So it is
 * not sent: 502 naming the setting, an alert naming the method and its
 * account, nothing stored (the key neither).  The setting put back, the
 * same request charges it, once.
 */
Test(saved_methods, an_adyen_method_is_not_charged_under_another_account,
     .timeout = 60)
{
    char        *psp, *co, *key, *body;
    long         sessions, requests;
    resp_t      *r;
    saved_t      s;
    gateway_t    gw;
    const char  *params[2];

    saved_new(&s, 1, "off_session");

    psp = gw_psp_conf("mock_adyen", "adyen");
    gateway_start(&gw, "sm-charge-account", 1,
                  str_printf("%s"
                             "payments_database_pool 2;\n"
                             "payments_sweeper off;\n"
                             "%s", pg_gateway_databases(), psp));
    gateway_wait_ready(&gw, 10);
    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    co = uid("ren");
    key = uid("key");
    body = dump(charge_body(&s, co));
    params[0] = s.m.id;
    params[1] = co;

    r = gateway_send(&gw, "POST", "/v1/payments", &s.m, key, body);
    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, 0, "a charge of TestMerchant's method was sent "
                 "under OtherMerchant: %ld %s", r->status, r->body);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2",
                               2, params), "0",
                     "a checkout was stored: %ld %s", r->status, r->body);
    cr_expect_eq(r->status, 502, "%s", r->body);
    cr_expect_not_null(strstr(r->body, "merchant_account"), "%s", r->body);
    cr_expect(gateway_alerted(&gw, s.pm, "TestMerchant"), "no alert in %s",
              gw.error_log);

    /* the setting put back: the same request charges it, once */
    gateway_reload(&gw, "merchant_account=OtherMerchant",
                   "merchant_account=TestMerchant");

    r = gateway_send(&gw, "POST", "/v1/payments", &s.m, key, body);
    gateway_stop(&gw);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    wait_status(&s.m, co, "SUCCESS");

    mock_registrations(nonce(&s.m, co), &sessions, &requests);
    cr_expect_eq(requests, 1, "the charge was sent %ld times", requests);
}


/*
 * The PSP refuses the detach (a 422 it does not explain): 502
 * psp_unavailable; the method is detached at the gateway all the same (no
 * charge), not at the PSP.  The same request again sends the same detach,
 * which the PSP now takes: 200, detached there, once.  A 503 the PSP
 * answers first is retried within the request.
 */
Test(saved_methods, a_detach_the_psp_refused_is_sent_again)
{
    char        *co;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    saved_new(&s, 0, "off_session");

    (void) mock_fault(str_printf("{\"match\":\"%s:%s:detach\","
                                 "\"fail_times\":1,\"fail_status\":422}",
                                 s.m.id, s.pm));

    r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    expect_problem(r, 502, "psp_unavailable");

    params[0] = s.m.id;
    params[1] = s.pm;
    cr_expect_str_eq(db_scalar("SELECT status || ' ' || (psp_detached_at IS "
                               "NULL) FROM payment_methods WHERE merchant_id "
                               "= $1 AND method_id = $2", 2, params),
                     "detached true");
    cr_expect_str_eq(json_string_value(json_object_get(vault_method(s.token),
                                                       "status")), "active");

    co = uid("ren");
    r = api_post_json(&s.m, charge_body(&s, co));
    expect_problem(r, 409, "payment_method_unusable");

    r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(vault_method(s.token),
                                                       "status")),
                     "detached");
    cr_expect_eq(vault_detaches(s.token), 1);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $1 AND method_id = $2 AND "
                               "psp_detached_at IS NOT NULL", 2, params),
                     "1");

    /* a 503 first: retried within the request, detached once */
    saved_new(&s, 1, "off_session");
    (void) mock_fault(str_printf("{\"match\":\"%s:%s:detach\","
                                 "\"fail_times\":1,\"fail_status\":503}",
                                 s.m.id, s.pm));
    r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_eq(vault_detaches(s.token), 1);
}


/* The vault's own detach (the shopper removed the card at the PSP): the
 * gateway's detach finds it gone there and records it so (200). */
Test(saved_methods, a_method_the_psp_detached_first_is_detached)
{
    size_t   d;
    resp_t  *r;
    saved_t  s;

    for (d = 0; d < 3; d++) {
        saved_new(&s, d, "off_session");

        r = mock_post("/_control/payment_methods/detach",
                      str_printf("{\"reference\":\"%s\"}",
                                 nonce(&s.m, s.co)));
        cr_assert_eq(r->status, 200, "%s", r->body);

        r = delete_path(&s.m, str_printf("/v1/payment_methods/%s", s.pm));
        cr_assert_eq(r->status, 200, "%s: %s", s.psp, r->body);
        cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                           "status")),
                         "detached");
        cr_expect_eq(vault_detaches(s.token), 1, "%s", s.psp);
    }
}


/* --- a save without a charge ("mode": "setup") ------------------------------ */

/* POST /v1/payments saving the method of customer at psp, charging
 * nothing: no payment_orders, a currency */
static json_t *
setup_body(const char *co, const char *psp, const char *customer)
{
    json_t  *body;

    body = checkout_new(co, 1);
    json_object_del(body, "payment_orders");
    json_object_set_new(body, "psp", json_string(psp));
    json_object_set_new(body, "mode", json_string("setup"));
    json_object_set_new(body, "currency", json_string("USD"));
    json_object_set_new(body, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", customer,
                                  "usage", "off_session",
                                  "shopper_agreed", 1));

    return body;
}


/* The setup registered and completed at the mock: the checkout SUCCESS,
 * its method listed (the n-th of the customer's); its id returned. */
static char *
setup_done(const merchant_t *m, const char *psp, const char *customer,
    const char *co, size_t n)
{
    int      i;
    json_t  *j, *list;
    resp_t  *r;

    r = register_ok(m, uid("key"), dump(setup_body(co, psp, customer)));
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "setup",
                     "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "currency")),
                     "USD");
    cr_expect_eq(json_array_size(json_object_get(j, "payment_orders")), 0);
    cr_expect(json_is_string(json_object_get(j, "pay_url")), "%s", r->body);

    r = mock_post(str_printf("/_control/sessions/%s/pay",
                             json_string_value(json_object_get(j,
                                                              "psp_token"))),
                  NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    wait_status(m, co, "SUCCESS");

    list = NULL;

    for (i = 0; i < 100; i++) {
        list = methods_of(m, customer);
        if (json_array_size(list) >= n) {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(json_array_size(list), n, "%s: no method saved", psp);

    /* newest first */
    j = json_array_get(list, 0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "checkout_id")),
                     co);

    return strdup(json_string_value(json_object_get(j, "id")));
}


/* The mock vault's method saved for reference: its customer there. */
static char *
vault_customer(const char *reference)
{
    size_t   i;
    json_t  *list, *it;
    resp_t  *r;

    r = http_get(mock_url("/_control/payment_methods"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    list = json_object_get(resp_json(r), "payment_methods");

    json_array_foreach(list, i, it) {
        if (strcmp(json_string_value(json_object_get(it, "reference")),
                   reference) == 0)
        {
            return strdup(json_string_value(json_object_get(it,
                                                            "customer")));
        }
    }

    return NULL;
}


static void
save_only(size_t d)
{
    char        *co, *ren;
    json_t      *j;
    resp_t      *r;
    saved_t      s;
    const char  *params[2];

    memset(&s, 0, sizeof(s));
    s.psp = sm_psp(d);
    merchant_new(&s.m);
    s.customer = uid("cust");
    co = uid("setup");

    s.pm = setup_done(&s.m, s.psp, s.customer, co, 1);
    s.token = vault_token(nonce(&s.m, co));
    cr_assert(s.token != NULL, "%s: the mock saved nothing", s.psp);
    secret_used(s.token);

    /* the checkout: SUCCESS, no orders, nothing booked, nobody paid */
    r = api_get(&s.m, str_printf("/v1/checkouts/%s", co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "setup");
    cr_expect(json_is_true(json_object_get(j, "is_payment_done")));
    cr_expect_eq(json_array_size(json_object_get(j, "payment_orders")), 0);
    cr_expect(!mem_contains(r->body, r->len, s.token));

    params[0] = s.m.id;
    params[1] = co;
    cr_expect_str_eq(ledger_rows(params), "0", "%s: a setup booked", s.psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_orders "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, params), "0");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM wallet_credits "
                               "WHERE merchant_id = $1", 1, params), "0",
                     "%s: a setup credited a seller", s.psp);

    /* the method is charged off-session, and that charge is booked */
    ren = uid("ren");
    r = api_post_json(&s.m, charge_body(&s, ren));
    cr_assert_eq(r->status, 201, "%s: %s", s.psp, r->body);
    cr_expect(!mem_contains(r->body, r->len, s.token));
    wait_status(&s.m, ren, "SUCCESS");

    params[1] = ren;
    cr_expect_str_eq(ledger_rows(params), "1", "%s: not booked once", s.psp);
}

Test(saved_methods, stripe_saves_only) { save_only(0); }
Test(saved_methods, adyen_saves_only) { save_only(1); }
Test(saved_methods, generic_saves_only) { save_only(2); }


/*
 * A setup is done when its method is known: the PSP's zero-amount success
 * alone (Stripe's checkout.session.completed, Adyen's AUTHORISATION)
 * names no method the shop could charge, so with the method's own event
 * lost (the mock's webhook_no_method) the setup stays EXECUTING, recorded
 * and nothing saved; Adyen's RECURRING_CONTRACT is what carries the
 * stored method's id signed.  (A generic setup sends only
 * payment_method.saved.)
 */
static void
setup_without_its_method(size_t d)
{
    int          i;
    char        *co, *customer;
    json_t      *j;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    customer = uid("cust");
    co = uid("setup");

    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_no_method\":true}",
                          nonce(&m, co)));

    r = register_ok(&m, uid("key"), dump(setup_body(co, sm_psp(d),
                                                    customer)));
    j = resp_json(r);

    r = mock_post(str_printf("/_control/sessions/%s/pay",
                             json_string_value(json_object_get(j,
                                                              "psp_token"))),
                  NULL);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    /* the zero-amount success comes, and is recorded */
    p[0] = m.id;
    p[1] = co;

    for (i = 0; i < 100; i++) {
        if (strcmp(db_scalar("SELECT count(*) FROM webhook_events WHERE "
                             "merchant_id = $1 AND checkout_id = $2", 2, p),
                   "0") != 0)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(db_scalar("SELECT string_agg(outcome, ',') FROM "
                               "webhook_events WHERE merchant_id = $1 "
                               "AND checkout_id = $2", 2, p), "pending",
                     "%s", sm_psp(d));
    msleep(300);

    cr_expect_str_eq(checkout_status(&m, co), "EXECUTING",
                     "%s: a setup done without its method", sm_psp(d));
    cr_expect_eq(json_array_size(methods_of(&m, customer)), 0);
    cr_expect_str_eq(ledger_rows(p), "0");
}

Test(saved_methods, stripe_setup_waits_for_its_method)
{
    setup_without_its_method(0);
}

Test(saved_methods, adyen_setup_waits_for_its_method)
{
    setup_without_its_method(1);
}


/*
 * One shopper is one Stripe Customer: a save while paying makes it, a
 * later save without a charge (and another while paying) is made under
 * the same one; another customer of the shop gets another.
 */
Test(saved_methods, stripe_customer_reused_for_every_save)
{
    int          i;
    char        *co2, *co3, *cus1, *cus2, *cus3, *other;
    json_t      *body;
    resp_t      *r;
    saved_t      s;

    saved_new(&s, 0, "off_session");
    cus1 = vault_customer(nonce(&s.m, s.co));
    cr_assert(cus1 != NULL && strncmp(cus1, "cus_", 4) == 0, "%s",
              cus1 ? cus1 : "none");

    co2 = uid("setup");
    (void) setup_done(&s.m, s.psp, s.customer, co2, 2);
    cus2 = vault_customer(nonce(&s.m, co2));
    cr_expect(cus2 != NULL && strcmp(cus1, cus2) == 0,
              "the second save made another Stripe Customer: %s, %s", cus1,
              cus2 ? cus2 : "none");

    /* a save while paying again */
    co3 = uid("co");
    body = checkout_new(co3, 1);
    json_object_set_new(body, "psp", json_string(s.psp));
    json_object_set_new(body, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", s.customer,
                                  "usage", "on_session",
                                  "shopper_agreed", 1));
    r = register_ok(&s.m, uid("key"), dump(body));
    r = mock_post(str_printf("/_control/sessions/%s/pay",
                             json_string_value(json_object_get(resp_json(r),
                                                              "psp_token"))),
                  NULL);
    cr_assert(r->status >= 200 && r->status < 300, "%s", r->body);
    wait_status(&s.m, co3, "SUCCESS");
    cus3 = vault_customer(nonce(&s.m, co3));
    cr_expect(cus3 != NULL && strcmp(cus1, cus3) == 0,
              "the third save made another Stripe Customer: %s, %s", cus1,
              cus3 ? cus3 : "none");

    /* the three are under one Customer, in the gateway's rows too (the
     * third once its intent's event saved it, after the session's) */
    for (i = 0; i < 100 && json_array_size(methods_of(&s.m, s.customer)) < 3;
         i++)
    {
        msleep(100);
    }

    {
        const char  *p[2] = { s.m.id, s.customer };

        cr_expect_str_eq(db_scalar("SELECT count(DISTINCT psp_customer) || "
                                   "'/' || count(*) FROM payment_methods "
                                   "WHERE merchant_id = $1 AND customer = "
                                   "$2", 2, p), "1/3");
    }

    /* another shopper of the same shop: a Customer of their own */
    other = uid("cust");
    co2 = uid("setup");
    (void) setup_done(&s.m, s.psp, other, co2, 1);
    cus2 = vault_customer(nonce(&s.m, co2));
    cr_expect(cus2 != NULL && strcmp(cus1, cus2) != 0,
              "two shoppers share a Stripe Customer");
}


/* A setup's own rules: refused, nothing stored. */
Test(saved_methods, setup_refusals_store_nothing)
{
    json_t      *body;
    merchant_t   m;
    char        *co;
    const char  *params[2];

    merchant_new(&m);
    co = uid("setup");

    /* orders in a setup */
    body = setup_body(co, env("PAY_TEST_PSP"), "cust_1");
    json_object_set_new(body, "payment_orders",
                        json_deep_copy(json_object_get(checkout_new(co, 1),
                                                       "payment_orders")));
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* no save */
    body = setup_body(co, env("PAY_TEST_PSP"), "cust_1");
    json_object_del(body, "save_payment_method");
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* no currency */
    body = setup_body(co, env("PAY_TEST_PSP"), "cust_1");
    json_object_del(body, "currency");
    expect_problem(api_post_json(&m, body), 400, "unsupported_currency");

    /* a currency outside a setup */
    body = checkout_new(co, 1);
    json_object_set_new(body, "currency", json_string("USD"));
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    /* a manual capture of nothing */
    body = setup_body(co, env("PAY_TEST_PSP"), "cust_1");
    json_object_set_new(body, "capture", json_string("manual"));
    expect_problem(api_post_json(&m, body), 400, "invalid_request");

    params[0] = m.id;
    params[1] = co;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2,
                               params), "0");
}


/* --- one Stripe Customer on the paths that rebuild the request ------------- */

/*
 * A review's approval, a resume whose stored expires_at the PSP refuses
 * (rebuilt), and a routed checkout moved on to its next PSP each build
 * the PSP's request again, later or elsewhere than the first
 * registration: a save there is made under the Stripe Customer the shop
 * customer's earlier save made, as a first registration's is.
 */

/* a checkout of one order that saves the method of customer off-session;
 * psp NULL: none (a route chooses) */
static json_t *
save_body(const char *co, const char *psp, const char *customer)
{
    json_t  *body;

    body = checkout_new(co, 1);
    json_object_del(body, "psp");

    if (psp != NULL) {
        json_object_set_new(body, "psp", json_string(psp));
    }

    json_object_set_new(body, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", customer,
                                  "usage", "off_session",
                                  "shopper_agreed", 1));
    return body;
}


/* the Stripe Customer the mock's session token was made for (its
 * "customer" parameter), or NULL when it was asked to make one */
static char *
session_customer(const char *token)
{
    resp_t      *r;
    const char  *c;

    r = http_get(mock_url(str_printf("/_control/sessions/%s", token)));
    cr_assert_eq(r->status, 200, "mock session %s: %ld %s", token,
                 r->status, r->body);
    c = json_string_value(json_object_get(resp_json(r), "save_customer"));

    return c != NULL ? strdup(c) : NULL;
}


/* A shopper's first save at the suite's Stripe, paid: its Customer there. */
static char *
first_stripe_save(saved_t *s)
{
    char  *cus;

    saved_new(s, 0, "off_session");
    cus = vault_customer(nonce(&s->m, s->co));
    cr_assert(cus != NULL && strncmp(cus, "cus_", 4) == 0, "%s",
              cus ? cus : "none");

    return cus;
}


/* POST /v1/payments on the risk servers' port, by Host */
static resp_t *
post_host(const char *host, const merchant_t *m, const char *key,
    const char *body)
{
    req_t        rq;
    const char  *h[5];

    h[0] = str_printf("Host: %s", host);
    h[1] = str_printf("Authorization: Bearer %s", m->key);
    h[2] = str_printf("Idempotency-Key: %s", key);
    h[3] = "Content-Type: application/json";
    h[4] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s%s", env("PAY_TEST_GW_LIMITS"), PATH_PAYMENTS);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


Test(saved_methods, a_reviews_approval_saves_under_the_same_stripe_customer)
{
    char        *cus1, *cus2, *co2, *admin;
    json_t      *body;
    resp_t      *r;
    req_t        rq;
    saved_t      s;
    const char  *h[3];

    cus1 = first_stripe_save(&s);

    /* the risk provider holds this one (test_risk.c's review server) */
    co2 = uid("co_rv");
    body = save_body(co2, s.psp, s.customer);
    json_object_set_new(json_object_get(body, "buyer_info"), "email",
                        json_string("risk-review@example.com"));
    r = post_host("deny.risk.test", &s.m, uid("key"), dump(body));
    cr_assert_eq(r->status, 202, "%ld %s", r->status, r->body);

    admin = file_read(env("PAY_TEST_ADMIN_KEY"), NULL);
    secret_used(admin);
    h[0] = str_printf("Authorization: Bearer %s", admin);
    h[1] = "Content-Length: 0";
    h[2] = NULL;
    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/reviews/%s/approve", nonce(&s.m, co2)));
    rq.headers = h;
    rq.body = "";
    rq.len = 0;

    r = http(&rq);
    cr_assert_eq(r->status, 201, "approve: %ld %s", r->status, r->body);

    cus2 = session_customer(json_string_value(json_object_get(resp_json(r),
                                                              "psp_token")));
    cr_expect(cus2 != NULL && strcmp(cus1, cus2) == 0,
              "the approved save asks Stripe for %s, not the customer's %s",
              cus2 ? cus2 : "a new Customer", cus1);
}


Test(saved_methods, a_refreshed_resume_saves_under_the_same_stripe_customer)
{
    char        *cus1, *cus2, *co2, *key, *body;
    resp_t      *r;
    saved_t      s;
    const char  *p[2];

    cus1 = first_stripe_save(&s);

    /* the first attempt: the PSP answers 503 and asks for an hour, so the
     * request ends without a session, its claim kept for the retry */
    co2 = uid("co");
    key = uid("key");
    body = dump(save_body(co2, s.psp, s.customer));
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503,\"retry_after\":3600}",
                          nonce(&s.m, co2)));
    r = api_post(&s.m, key, body);
    cr_assert(r->status >= 500, "%ld %s", r->status, r->body);

    /* its stored request now ends in ten minutes: too close for Stripe,
     * which refuses it, so the resume rebuilds it */
    p[0] = s.m.id;
    p[1] = co2;
    db_exec("UPDATE checkouts SET expires_at = now() + interval '10 min', "
            "psp_request = regexp_replace(psp_request, 'expires_at=[0-9]+', "
            "'expires_at=' || (ts_epoch(now()) + 600)) "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);

    r = api_post(&s.m, key, body);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "action = 'registration:refreshed'", 2, p),
                     "1", "not a refreshed resume");

    cus2 = session_customer(json_string_value(json_object_get(resp_json(r),
                                                              "psp_token")));
    cr_expect(cus2 != NULL && strcmp(cus1, cus2) == 0,
              "the refreshed save asks Stripe for %s, not the customer's %s",
              cus2 ? cus2 : "a new Customer", cus1);
}


Test(saved_methods, a_routed_save_moved_on_saves_under_the_same_stripe_customer)
{
    char        *cus1, *cus2, *co2, *conf;
    json_t      *j;
    resp_t      *r;
    saved_t      s;
    gateway_t    gw;
    const char  *run = env("PAY_TEST_RUN"), *p[2];

    cus1 = first_stripe_save(&s);

    /* a gateway of its own, whose route for the merchant tries a Stripe
     * PSP nothing listens for first, then the suite's Stripe (the same
     * name, so the same PSP: its Customers) */
    conf = str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "payments_request_timeout 2500ms;\n"
        "%s"
        "payments_psp sm_dead dialect=stripe url=http://127.0.0.1:%ld\n"
        "    secret_file=%s/conf/psp.secret\n"
        "    webhook_secret_file=%s/conf/webhook.secret\n"
        "    hosted=%s allow_http retries=0 breaker=0;\n"
        "payments_route merchant=%s psps=sm_dead,%s;\n",
        pg_gateway_conninfo(), gw_psp_conf(s.psp, "stripe"), free_port(),
        run, run, env("PAY_TEST_MOCK"), s.m.id, s.psp);
    gateway_start(&gw, "sm_route", 1, conf);
    gateway_wait_ready(&gw, 10);

    co2 = uid("co");
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &s.m, uid("key"),
                     dump(save_body(co2, NULL, s.customer)));
    gateway_stop(&gw);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "psp")), s.psp);
    p[0] = s.m.id;
    p[1] = co2;
    cr_assert_str_eq(db_scalar("SELECT string_agg(psp || ':' || "
                               "coalesce(moved_on, ''), ',' ORDER BY seq) "
                               "FROM checkout_routes WHERE merchant_id = $1 "
                               "AND checkout_id = $2", 2, p),
                     str_printf("sm_dead:connect_refused,%s:", s.psp));

    cus2 = session_customer(json_string_value(json_object_get(j,
                                                              "psp_token")));
    cr_expect(cus2 != NULL && strcmp(cus1, cus2) == 0,
              "the moved save asks Stripe for %s, not the customer's %s",
              cus2 ? cus2 : "a new Customer", cus1);
}


/* --- an off-session charge captured later ------------------------------------ */

/* the capture or void of id becomes want in the database */
static void
sm_op_becomes(const merchant_t *m, const char *id, const char *want)
{
    int          i;
    char        *st;
    const char  *params[2];

    params[0] = m->id;
    params[1] = id;
    st = NULL;

    for (i = 0; i < 100; i++) {
        st = db_scalar("SELECT status FROM captures WHERE merchant_id = $1 "
                       "AND capture_id = $2", 2, params);
        if (st != NULL && strcmp(st, want) == 0) {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("%s is %s, not %s", id, st ? st : "absent", want);
}


static const char *
sm_order(const merchant_t *m, const char *po, const char *column)
{
    const char  *params[2];

    params[0] = m->id;
    params[1] = po;

    return db_scalar(str_printf("SELECT %s::text FROM payment_orders WHERE "
                                "merchant_id = $1 AND payment_order_id = $2",
                                column), 2, params);
}


/* what the ledger holds for the checkout: its clearing's sum, and how
 * many of its transactions do not balance */
static void
sm_books(const merchant_t *m, const char *co, const char *clearing)
{
    const char  *params[2];

    params[0] = m->id;
    params[1] = co;

    cr_expect_str_eq(db_scalar("SELECT coalesce(sum(e.amount), 0)::text "
                               "FROM ledger_entries e JOIN "
                               "ledger_transactions t USING (txn_id) WHERE "
                               "t.merchant_id = $1 AND t.checkout_id = $2 "
                               "AND e.account LIKE 'psp\\_clearing:%'", 2,
                               params), clearing, "clearing of %s", co);
    cr_expect_str_eq(db_scalar("SELECT count(*)::text FROM (SELECT 1 FROM "
                               "ledger_entries e JOIN ledger_transactions t "
                               "USING (txn_id) WHERE t.merchant_id = $1 AND "
                               "t.checkout_id = $2 GROUP BY e.txn_id, "
                               "e.currency HAVING sum(e.amount) <> 0) x", 2,
                               params), "0", "unbalanced: %s", co);
}


/* An off-session charge with "capture": "manual": 201 EXECUTING, then
 * the PSP's authorization holds it (AUTHORIZED), nothing booked. */
static char *
manual_charged(const saved_t *s)
{
    char    *co;
    json_t  *body, *j;
    resp_t  *r;

    co = uid("ren");
    body = charge_body(s, co);
    json_object_set_new(body, "capture", json_string("manual"));

    r = api_post_json(&s->m, body);
    cr_assert_eq(r->status, 201, "%s: %s", s->psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING");
    cr_expect_str_eq(json_string_value(json_object_get(j, "capture")),
                     "manual", "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "payment_method")),
                     s->pm);
    cr_expect(!mem_contains(r->body, r->len, s->token));

    wait_status(&s->m, co, "AUTHORIZED");
    cr_expect_str_eq(sm_order(&s->m, str_printf("%s_p1", co), "status"),
                     "AUTHORIZED", "%s", s->psp);
    sm_books(&s->m, co, "0");

    return co;
}


/*
 * Authorize now, capture later, without the shopper: one off-session
 * charge captured in part (4.00 of 10.00: booked 4.00; Adyen and generic
 * take a second part, Stripe releases the rest with its one capture),
 * another released whole by its void (nothing booked, the order FAILED).
 */
static void
manual_charge(size_t d)
{
    char     *co, *po, *id;
    json_t   *j;
    resp_t   *r;
    saved_t   s;

    saved_new(&s, d, "off_session");

    co = manual_charged(&s);
    po = str_printf("%s_p1", co);

    r = post_path(&s.m, str_printf("/v1/payments/%s/capture", po), NULL,
                  "{\"amount\":\"4.00\"}");
    cr_assert_eq(r->status, 201, "%s: capture: %s", s.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "kind")),
                     "capture");
    id = strdup(json_string_value(json_object_get(j, "capture_id")));
    sm_op_becomes(&s.m, id, "SUCCEEDED");

    cr_expect_str_eq(sm_order(&s.m, po, "status"), "SUCCESS", "%s", s.psp);
    cr_expect_str_eq(sm_order(&s.m, po, "amount_captured"), "400", "%s",
                     s.psp);
    sm_books(&s.m, co, "400");

    r = post_path(&s.m, str_printf("/v1/payments/%s/capture", po), NULL,
                  "{\"amount\":\"3.00\"}");

    if (d == 0) {
        /* Stripe captures an intent once: the rest was released */
        cr_expect_eq(r->status, 409, "%s: %s", s.psp, r->body);

    } else {
        cr_assert_eq(r->status, 201, "%s: capture: %s", s.psp, r->body);
        sm_op_becomes(&s.m, json_string_value(json_object_get(resp_json(r),
                                                              "capture_id")),
                      "SUCCEEDED");
        cr_expect_str_eq(sm_order(&s.m, po, "amount_captured"), "700");
        sm_books(&s.m, co, "700");
    }

    /* refundable as any payment, of what was captured */
    r = post_path(&s.m, str_printf("/v1/payments/%s/refunds", po), NULL,
                  "{\"amount\":\"1.00\"}");
    cr_expect_eq(r->status, 201, "%s: refund: %s", s.psp, r->body);

    /* another, released whole */
    co = manual_charged(&s);
    po = str_printf("%s_p1", co);

    r = post_path(&s.m, str_printf("/v1/payments/%s/void", po), NULL, "{}");
    cr_assert_eq(r->status, 201, "%s: void: %s", s.psp, r->body);
    j = resp_json(r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "kind")), "void");
    sm_op_becomes(&s.m, json_string_value(json_object_get(j, "capture_id")),
                  "SUCCEEDED");

    cr_expect_str_eq(sm_order(&s.m, po, "status"), "FAILED", "%s", s.psp);
    cr_expect_str_eq(sm_order(&s.m, po, "amount_captured"), "0");
    sm_books(&s.m, co, "0");

    r = post_path(&s.m, str_printf("/v1/payments/%s/capture", po), NULL,
                  "{\"amount\":\"1.00\"}");
    cr_expect_eq(r->status, 409, "%s: captured after its void: %s", s.psp,
                 r->body);
}

Test(saved_methods, stripe_manual_charge_captured_in_part_or_voided)
{
    manual_charge(0);
}

Test(saved_methods, adyen_manual_charge_captured_in_part_or_voided)
{
    manual_charge(1);
}

Test(saved_methods, generic_manual_charge_captured_in_part_or_voided)
{
    manual_charge(2);
}


/* --- an off-session charge held for review ----------------------------------- */

static resp_t *
review_decide(const char *nonce_, const char *what)
{
    return review_decide_at(NULL, nonce_, what);
}


/* the same, at gw (NULL: the suite's gateway) */
static resp_t *
review_decide_at(const gateway_t *gw, const char *nonce_, const char *what)
{
    char        *admin;
    req_t        rq;
    const char  *h[3];

    admin = file_read(env("PAY_TEST_ADMIN_KEY"), NULL);
    secret_used(admin);
    h[0] = str_printf("Authorization: Bearer %s", admin);
    h[1] = "Content-Length: 0";
    h[2] = NULL;
    rq.method = "POST";
    rq.url = gw != NULL
             ? str_printf("%s/v1/reviews/%s/%s", gw->origin, nonce_, what)
             : gw_url(str_printf("/v1/reviews/%s/%s", nonce_, what));
    rq.headers = h;
    rq.body = "";
    rq.len = 0;

    return http(&rq);
}


/* an off-session charge the risk provider holds (test_risk.c's review
 * server): 202, nothing sent to the PSP */
static char *
charge_held(const saved_t *s, const char *key)
{
    char    *co;
    long     sessions, requests;
    json_t  *body;
    resp_t  *r;

    co = uid("ren_rv");
    body = charge_body(s, co);
    json_object_set_new(json_object_get(body, "buyer_info"), "email",
                        json_string("risk-review@example.com"));

    r = post_host("deny.risk.test", &s->m, key, dump(body));
    cr_assert_eq(r->status, 202, "%s: %ld %s", s->psp, r->status, r->body);

    mock_registrations(nonce(&s->m, co), &sessions, &requests);
    cr_expect_eq(requests, 0, "%s: sent before its review", s->psp);

    return co;
}


/*
 * Approved, the held charge goes to the PSP with its saved method, as the
 * charge would have (its nonce the PSP's key): 201, booked by the PSP's
 * webhook once; approved again, the answer is replayed and nothing is
 * sent again.  Rejected, another is FAILED and never sent.
 */
static void
review_charge(size_t d)
{
    char     *co, *n;
    long      sessions, requests;
    resp_t   *r;
    saved_t   s;
    const char  *params[2];

    saved_new(&s, d, "off_session");

    co = charge_held(&s, uid("key"));
    n = nonce(&s.m, co);

    r = review_decide(n, "approve");
    cr_assert_eq(r->status, 201, "%s: approve: %ld %s", s.psp, r->status,
                 r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "payment_method")),
                     s.pm, "%s", r->body);
    cr_expect(json_object_get(resp_json(r), "pay_url") == NULL, "%s",
              r->body);
    cr_expect(!mem_contains(r->body, r->len, s.token));

    wait_status(&s.m, co, "SUCCESS");

    params[0] = s.m.id;
    params[1] = co;
    cr_expect_str_eq(ledger_rows(params), "1", "%s: not booked once", s.psp);

    r = review_decide(n, "approve");
    cr_expect(r->status == 201 || r->status == 404, "%s: again: %ld %s",
              s.psp, r->status, r->body);

    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(requests, 1, "%s: the approved charge was sent %ld times",
                 s.psp, requests);

    co = charge_held(&s, uid("key"));
    n = nonce(&s.m, co);

    r = review_decide(n, "reject");
    cr_assert_eq(r->status, 200, "%s: reject: %ld %s", s.psp, r->status,
                 r->body);
    cr_expect_str_eq(checkout_status(&s.m, co), "FAILED");

    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(requests, 0, "%s: a rejected charge was sent", s.psp);

    /* its method detached while it was held: not approved (409), still
     * held for a person to reject; never sent */
    if (d == 0) {
        co = charge_held(&s, uid("key"));
        n = nonce(&s.m, co);

        r = post_path(&s.m, str_printf("/v1/payment_methods/%s/detach",
                                       s.pm), NULL, "");
        cr_assert_eq(r->status, 200, "%s", r->body);

        r = review_decide(n, "approve");
        expect_problem(r, 409, "payment_method_unusable");
        cr_expect_str_eq(checkout_status(&s.m, co), "REVIEW");

        /* and the database's own approval, which a detach committed
         * after the gateway's read of the method would meet: it reads
         * the method locked, and approves nothing */
        params[0] = s.m.id;
        params[1] = co;
        cr_expect_str_eq(db_scalar("SELECT outcome FROM pay_review_approve("
                                   "$1, $2, 'v1.x', extract(epoch FROM now()"
                                   " + interval '1 hour')::bigint, 30)", 2,
                                   params), "method_unusable");
        cr_expect_str_eq(checkout_status(&s.m, co), "REVIEW");

        r = review_decide(n, "reject");
        cr_expect_eq(r->status, 200, "%s", r->body);

        mock_registrations(n, &sessions, &requests);
        cr_expect_eq(requests, 0, "a detached method's charge was sent");
    }
}

Test(saved_methods, stripe_held_charge_approved_or_rejected)
{
    review_charge(0);
}

Test(saved_methods, adyen_held_charge_approved_or_rejected)
{
    review_charge(1);
}

Test(saved_methods, generic_held_charge_approved_or_rejected)
{
    review_charge(2);
}


/*
 * A held charge that needs the shopper, every answer to its approval's
 * charge lost (the gateway's own retries too): the approval ends 5xx,
 * the checkout EXECUTING with no page, nothing booked.  Once the PSP
 * answers again, approving again sends the same charge under the same
 * nonce (doc/API.md: an approval the PSP never answered is sent again by
 * the next one): the PSP's replayed answer opens the page, 202 with the
 * pay link, the checkout naming its session.  The shopper's payment there
 * is booked once; one charge at the PSP.
 */
static void
review_charge_authenticated_answer_lost(size_t d)
{
    char        *co, *n;
    long         fault;
    resp_t      *r;
    saved_t      s;

    saved_new(&s, d, "off_session");

    co = charge_held(&s, uid("key"));
    n = nonce(&s.m, co);
    fault = auth_answers_lost(&s, co);

    r = review_decide(n, "approve");
    cr_assert_geq(r->status, 500, "%s: the test wants an approval whose "
                  "charge's answer never came: %ld %s", s.psp, r->status,
                  r->body);

    auth_lost_moved_nothing(&s, co);

    mock_fault_remove(fault);
    auth_page_paid_once(&s, co, review_decide(n, "approve"),
                        "approved again");
}

Test(saved_methods, stripe_a_held_charge_needing_the_shopper_whose_approvals_answer_was_lost_opens_its_page_when_approved_again)
{
    review_charge_authenticated_answer_lost(0);
}

Test(saved_methods, adyen_a_held_charge_needing_the_shopper_whose_approvals_answer_was_lost_opens_its_page_when_approved_again)
{
    review_charge_authenticated_answer_lost(1);
}

Test(saved_methods, generic_a_held_charge_needing_the_shopper_whose_approvals_answer_was_lost_opens_its_page_when_approved_again)
{
    review_charge_authenticated_answer_lost(2);
}


/*
 * An Adyen charge held for review while mock_adyen named TestMerchant,
 * approved on a gateway whose mock_adyen names OtherMerchant now: as a
 * charge's claim, the approval is not sent under another account than
 * the method's (502 naming the setting, an alert), the charge still held
 * for review; the setting put back, the same approval charges it, once.
 */
Test(saved_methods, an_adyen_held_charge_is_not_approved_under_another_account,
     .timeout = 60)
{
    char        *psp, *co, *n;
    long         sessions, requests;
    resp_t      *r;
    saved_t      s;
    gateway_t    gw;

    saved_new(&s, 1, "off_session");
    co = charge_held(&s, uid("key"));
    n = nonce(&s.m, co);

    psp = gw_psp_conf("mock_adyen", "adyen");
    gateway_start(&gw, "sm-review-account", 1,
                  str_printf("%s"
                             "payments_database_pool 2;\n"
                             "payments_sweeper off;\n"
                             "payments_admin_key_file %s;\n"
                             "%s", pg_gateway_databases(),
                             env("PAY_TEST_ADMIN_KEY"), psp));
    gateway_wait_ready(&gw, 10);
    gateway_reload(&gw, "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");

    r = review_decide_at(&gw, n, "approve");
    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(requests, 0, "a held charge of TestMerchant's method was "
                 "sent under OtherMerchant: %ld %s", r->status, r->body);
    cr_expect_str_eq(checkout_status(&s.m, co), "REVIEW", "%ld %s",
                     r->status, r->body);
    cr_expect_eq(r->status, 502, "%s", r->body);
    cr_expect_not_null(strstr(r->body, "merchant_account"), "%s", r->body);
    cr_expect(gateway_alerted(&gw, s.pm, "TestMerchant"), "no alert in %s",
              gw.error_log);

    /* the setting put back: the same approval charges it, once */
    gateway_reload(&gw, "merchant_account=OtherMerchant",
                   "merchant_account=TestMerchant");

    r = review_decide_at(&gw, n, "approve");
    gateway_stop(&gw);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    wait_status(&s.m, co, "SUCCESS");

    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(requests, 1, "the charge was sent %ld times", requests);
}
