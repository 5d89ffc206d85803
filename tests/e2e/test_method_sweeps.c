/*
 * End to end: a saved method whose own event was lost while the payment's
 * came (doc/PSPS.md, "When the method's event is lost").
 *
 * A checkout asks to save the shopper's method; the mock pays it and
 * sends the payment's event, but never the one saying the method was
 * stored (its knob webhook_no_method).  The suite's gateway (sweeper off)
 * receives the payment's event and books it; then a gateway of the test's
 * own runs the sweeper (a round every 300 ms, after=1s retry=1s alert=4s) under
 * the same PSP names, on the same database and key, and must find the
 * method at the PSP (Stripe: the session with its intent's payment_method
 * expanded; generic: its session look-up) and record it through the
 * webhook's own function: one pm_, listed to the shop, one
 * payment_method.saved notification.  Then the mock sends the method's
 * event late (POST /_control/sessions/{id}/method_event): a no-op.
 * A manual capture's hold (AUTHORIZED) that saved is recovered the same
 * way (Stripe: the held intent names the method).
 * Adyen's API cannot say which stored method a payment stored: the
 * checkout is listed for a person past alert= (a warn line once, the
 * gauge), and its late RECURRING_CONTRACT still saves the method.
 *
 * A solo suite: its sweeper holds the database's one lease.
 */

#include "harness.h"

#include <string.h>
#include <unistd.h>


#define METHOD_SWEEPER_CONF                                                   \
    "payments_sweeper on interval=300ms after=1s retry=1s alert=4s "          \
    "grace=1s batch=50;\n"


static gateway_t  msw;


static void
stop_method_sweeper(void)
{
    gateway_stop(&msw);
}


TestSuite(solo_method_sweeps, .timeout = 60, .fini = stop_method_sweeper);


/* The PSP name of dialect d in the suite's gateway, to which the mock
 * sends that dialect's webhooks. */

static const char *
ms_psp(size_t d)
{
    return d == 0 ? env("PAY_TEST_PSP") : d == 1 ? "mock_adyen"
                                                 : "mock_generic";
}


/* A gateway sweeping under the suite's PSP names, holding the lease. */

static void
start_method_sweeper(void)
{
    int  i;

    gateway_start(&msw, "sweeper-methods", 2,
                  str_printf("payments_database \"%s\";\n"
                             "payments_database_pool 2;\n"
                             "%s%s%s%s",
                             pg_gateway_conninfo(),
                             gw_psp_conf(ms_psp(0), "stripe"),
                             gw_psp_conf(ms_psp(1), "adyen"),
                             gw_psp_conf(ms_psp(2), "generic"),
                             METHOD_SWEEPER_CONF));
    gateway_wait_ready(&msw, 10);

    for (i = 0; i < 100; i++) {
        if (gateway_metric(&msw, "payments_sweeper_leader") == 1) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("%s never took the sweeper lease", msw.origin);
}


static resp_t *
ms_mock_post(const char *path)
{
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", NULL };

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(path);
    rq.headers = h;
    rq.body = "";
    rq.len = 0;

    return http(&rq);
}


static char *
ms_scalar2(const char *sql, const char *a, const char *b)
{
    return db_scalar(sql, 2, (const char *[]) { a, b });
}


/* Waits up to seconds for sql (two parameters) to answer want. */

static int
ms_wait(const char *sql, const char *a, const char *b, const char *want,
    int seconds)
{
    int    i;
    char  *v;

    for (i = 0; i < seconds * 10; i++) {
        v = ms_scalar2(sql, a, b);
        if (v != NULL && strcmp(v, want) == 0) {
            return 1;
        }

        msleep(100);
    }

    return 0;
}


/* The PSP's token of the method the mock's vault saved for reference,
 * marked as a secret no log may hold. */

static char *
ms_vault_token(const char *reference)
{
    req_t        rq;
    size_t       i;
    json_t      *list, *m;
    resp_t      *r;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "GET";
    rq.url = mock_url("/_control/payment_methods");
    r = http(&rq);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    list = json_object_get(resp_json(r), "payment_methods");

    for (i = 0; i < json_array_size(list); i++) {
        m = json_array_get(list, i);

        if (strcmp(json_string_value(json_object_get(m, "reference")),
                   reference) == 0)
        {
            secret_used(json_string_value(json_object_get(m, "token")));
            return strdup(json_string_value(json_object_get(m, "token")));
        }
    }

    cr_assert_fail("the mock saved no method for %s", reference);
    return NULL;
}


typedef struct {
    merchant_t   m;
    endpoint_t   ep;
    char        *co;
    char        *customer;
    char        *token;         /* the session's */
    char        *method;        /* the PSP's stored method's token */
} ms_paid_t;


/*
 * A checkout of dialect d that saves its method, paid at the mock; the
 * payment's event comes and is booked by the suite's gateway, the
 * method's does not.
 */
static void
ms_paid_without_method_event(ms_paid_t *s, size_t d, int manual)
{
    json_t  *body, *j;
    resp_t  *r;

    memset(s, 0, sizeof(ms_paid_t));
    merchant_new(&s->m);
    endpoint_add(&s->m, NULL, &s->ep);
    s->co = uid("co");
    s->customer = uid("cust");

    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_no_method\":true}",
                          nonce(&s->m, s->co)));

    body = checkout_new(s->co, 2);
    json_object_set_new(body, "psp", json_string(ms_psp(d)));
    if (manual) {
        json_object_set_new(body, "capture", json_string("manual"));
    }
    json_object_set_new(body, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", s->customer,
                                  "usage", "off_session",
                                  "shopper_agreed", 1));
    r = register_ok(&s->m, uid("key"), dump(body));
    j = resp_json(r);
    s->token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(s->token);

    r = ms_mock_post(str_printf("/_control/sessions/%s/pay",
                                url_escape(s->token)));
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    /* the payment's own event, booked by the suite's gateway: never by
     * the sweeper */
    cr_assert(ms_wait("SELECT status::text FROM checkouts WHERE "
                      "merchant_id = $1 AND checkout_id = $2",
                      s->m.id, s->co, manual ? "AUTHORIZED" : "SUCCESS", 15),
              "%s: the payment's event was not applied", ms_psp(d));
    cr_assert_str_eq(ms_scalar2("SELECT count(*) FROM webhook_events "
                                "WHERE merchant_id = $1 AND checkout_id = $2 "
                                "AND source = 'sweeper'", s->m.id, s->co),
                     "0");

    s->method = ms_vault_token(nonce(&s->m, s->co));
}


/* The shop's list of its customer's methods: the data array. */

static json_t *
ms_methods_of(ms_paid_t *s)
{
    resp_t  *r;

    r = api_get(&s->m, str_printf("/v1/payment_methods?customer=%s",
                                  s->customer));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert(strstr(r->body, s->method) == NULL,
              "the PSP's token in an answer");

    return json_object_get(resp_json(r), "data");
}


static const char  *ms_count_methods =
    "SELECT count(*) FROM payment_methods "
    "WHERE merchant_id = $1 AND checkout_id = $2";

static const char  *ms_count_saved_notifications =
    "SELECT count(*) FROM notifications WHERE merchant_id = $1 "
    "AND checkout_id = $2 AND event_type = 'payment_method.saved'";


/* The late method event, sent by the mock now; waits until the suite's
 * gateway has kept it (psp_events, the method event's row). */

static void
ms_late_event(ms_paid_t *s, size_t d)
{
    resp_t  *r;

    r = ms_mock_post(str_printf("/_control/sessions/%s/method_event",
                                url_escape(s->token)));
    cr_assert_eq(r->status, 200, "late event: %ld %s", r->status, r->body);

    cr_assert(ms_wait("SELECT count(*) FROM psp_events WHERE "
                      "merchant_id = $1 AND checkout_id = $2 "
                      "AND kind = 'METHOD_SAVED' AND outcome IS NOT NULL",
                      s->m.id, s->co, "1", 15),
              "%s: the late method event never came", ms_psp(d));
}


static void
method_recovered(size_t d, int manual)
{
    json_t     *list, *pm;
    ms_paid_t   s;

    /* paid first: the sweeper never sees it EXECUTING */
    ms_paid_without_method_event(&s, d, manual);
    start_method_sweeper();

    /* the sweeper asks the PSP and records the method */
    cr_assert(ms_wait(ms_count_methods, s.m.id, s.co, "1", 15),
              "%s: the sweeper never recorded the method", ms_psp(d));
    cr_expect_str_eq(ms_scalar2("SELECT count(*) FROM audit_log WHERE "
                                "merchant_id = $1 AND checkout_id = $2 "
                                "AND action = 'sweeper:saved'",
                                s.m.id, s.co), "1");
    cr_expect_str_eq(ms_scalar2("SELECT (method_saved_at IS NOT NULL)::text "
                                "FROM checkouts WHERE merchant_id = $1 "
                                "AND checkout_id = $2", s.m.id, s.co),
                     "true");

    list = ms_methods_of(&s);
    cr_assert_eq(json_array_size(list), 1, "%s", dump(list));
    pm = json_array_get(list, 0);
    cr_expect_str_eq(json_string_value(json_object_get(pm, "checkout_id")),
                     s.co);
    cr_expect_str_eq(json_string_value(json_object_get(pm, "status")),
                     "active");
    /* the display fields the look-up told (Stripe: the expanded method's
     * card) */
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(pm, "card"), "last4")),
                     "4242", "%s: %s", ms_psp(d), dump(pm));
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(pm, "card"), "brand")),
                     "visa", "%s: %s", ms_psp(d), dump(pm));
    cr_expect_str_eq(ms_scalar2(ms_count_saved_notifications, s.m.id, s.co),
                     "1");

    /* the late event finds it saved: still one method, one notification */
    ms_late_event(&s, d);
    cr_expect_str_eq(ms_scalar2("SELECT string_agg(outcome, ',') FROM "
                                "psp_events WHERE merchant_id = $1 AND "
                                "checkout_id = $2 AND kind = 'METHOD_SAVED'",
                                s.m.id, s.co), "already");
    msleep(500);
    cr_expect_str_eq(ms_scalar2(ms_count_methods, s.m.id, s.co), "1");
    cr_expect_eq(json_array_size(ms_methods_of(&s)), 1);
    cr_expect_str_eq(ms_scalar2(ms_count_saved_notifications, s.m.id, s.co),
                     "1");
    cr_expect_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1,
                               (const char *[]) { s.m.id }), "true");

    /* the PSP's token in no log line of the sweeper's */
    cr_expect(!file_contains(msw.error_log, s.method),
              "the PSP's token in %s", msw.error_log);
}


Test(solo_method_sweeps, a_stripe_method_whose_event_was_lost_is_recorded_once)
{
    method_recovered(0, 0);
}


Test(solo_method_sweeps, a_generic_method_whose_event_was_lost_is_recorded_once)
{
    method_recovered(2, 0);
}


/* a manual capture's hold (AUTHORIZED) that saved the method: its
 * payment_intent.amount_capturable_updated lost, the hold's session
 * booked; the sweeper finds the method on the held intent */
Test(solo_method_sweeps, a_held_stripe_payments_lost_method_event_is_recorded_once)
{
    method_recovered(0, 1);
}


/*
 * Adyen: nothing the sweeper can ask names the method a payment stored.
 * Past alert= the checkout is listed for a person (one warn line, the
 * gauge); the late RECURRING_CONTRACT saves the method, once, and the
 * gauge no longer counts it.
 */
Test(solo_method_sweeps, an_adyen_method_whose_event_was_lost_is_listed_once)
{
    int          i, found;
    char        *line;
    ms_paid_t    s;

    ms_paid_without_method_event(&s, 1, 0);
    start_method_sweeper();

    line = str_printf("checkout \"%s\" of merchant \"%s\" (psp \"%s\") was "
                      "paid and asked to save the shopper's payment method",
                      s.co, s.m.id, ms_psp(1));
    found = 0;

    for (i = 0; i < 150 && !found; i++) {
        found = file_contains(msw.error_log, line);
        if (!found) {
            msleep(100);
        }
    }

    cr_assert(found, "no alert line for %s in %s", s.co, msw.error_log);
    cr_assert_geq(gateway_metric(&msw, "payments_payment_methods_unsaved"),
                  1);
    cr_expect_str_eq(ms_scalar2(ms_count_methods, s.m.id, s.co), "0");

    /* listed once, however many rounds pass */
    msleep(1000);
    {
        char  *log = file_read(msw.error_log, NULL);

        cr_assert_not_null(log);
        cr_expect_null(strstr(strstr(log, line) + 1, line),
                       "listed twice: %s", s.co);
    }

    /* the late event saves it, once */
    ms_late_event(&s, 1);
    cr_expect_str_eq(ms_scalar2("SELECT string_agg(outcome, ',') FROM "
                                "psp_events WHERE merchant_id = $1 AND "
                                "checkout_id = $2 AND kind = 'METHOD_SAVED'",
                                s.m.id, s.co), "saved");
    cr_expect_str_eq(ms_scalar2(ms_count_methods, s.m.id, s.co), "1");
    cr_expect_str_eq(ms_scalar2(ms_count_saved_notifications, s.m.id, s.co),
                     "1");
    cr_expect_str_eq(ms_scalar2("SELECT (method_saved_at IS NOT NULL)::text "
                                "FROM checkouts WHERE merchant_id = $1 "
                                "AND checkout_id = $2", s.m.id, s.co),
                     "true");
}
