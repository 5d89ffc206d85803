/*
 * The session look-up of every dialect (dialect.h, doc/PSPS.md "Session
 * look-up"): the GET it builds, with the token kept inside its path
 * segment, and what each PSP status means for the checkout.  A look-up
 * decides only on a readable, terminal answer about the session asked
 * about; everything else is "ask later".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <payments/dialect.h>


#define NOW  1700000000LL


static pay_psp_lookup_t
lk(const char *token)
{
    pay_psp_lookup_t  in;

    memset(&in, 0, sizeof(in));
    in.token = token;
    in.nonce = "m1:co_1";
    in.session_result = "Ab02b4c0!BQABAgA+/=";
    in.merchant_account = "TestMerchant";

    return in;
}


static pay_lookup_outcome_e
answer(const pay_dialect_t *d, const pay_psp_lookup_t *in, int status,
    const char *body, pay_event_t *ev)
{
    return d->session_lookup_answer(in, status, body,
                                    body ? strlen(body) : 0, NOW, ev);
}


/* The path the dialect asks for, or NULL when it refuses; a GET always. */
static char *
path_of(const pay_dialect_t *d, const pay_psp_lookup_t *in)
{
    char               *p;
    pay_psp_request_t   req;

    memset(&req, 0xa5, sizeof(req));

    if (d->session_lookup(in, &req) != 0) {
        /* refused: nothing to free, nothing dangling */
        cr_expect_null(req.path);
        cr_expect_null(req.body);
        cr_expect_null(req.content_type);
        return NULL;
    }

    cr_expect_null(req.body, "a look-up is a GET");
    cr_expect_eq(req.body_len, 0);
    cr_expect_null(req.content_type);
    cr_assert_not_null(req.path);

    p = strdup(req.path);
    pay_psp_request_free(&req);

    return p;
}


static void
expect_path(const pay_dialect_t *d, const pay_psp_lookup_t *in,
    const char *want)
{
    char  *p;

    p = path_of(d, in);
    cr_assert_not_null(p, "%s refused %s", d->name, in->token);
    cr_expect_str_eq(p, want);
    free(p);
}


static void
expect_refused(const pay_dialect_t *d, const pay_psp_lookup_t *in)
{
    char  *p;

    p = path_of(d, in);
    cr_expect_null(p, "%s asked for %s", d->name, p ? p : "");
    free(p);
}


static void
expect_cleared(const pay_event_t *ev)
{
    cr_expect_eq(ev->kind, 0);
    cr_expect_str_eq(ev->event_id, "");
    cr_expect_str_eq(ev->token, "");
    cr_expect_eq(ev->amount, PAY_EVT_AMOUNT_ABSENT);
}


/* --- stripe ---------------------------------------------------------- */

static const char  st_paid[] =
    "{\"id\":\"cs_test_a1\",\"object\":\"checkout.session\","
    "\"amount_total\":2198,\"currency\":\"usd\","
    "\"client_reference_id\":\"m1:co_1\",\"livemode\":false,"
    "\"payment_status\":\"paid\",\"status\":\"complete\"}";


Test(lookup, stripe_retrieves_the_checkout_session_with_a_get)
{
    pay_psp_lookup_t  in = lk("cs_test_a1");

    /* the payment intent expanded: a manual capture's hold shows there */
    expect_path(&pay_dialect_stripe, &in, "/v1/checkout/sessions/cs_test_a1"
                                          "?expand%5B%5D=payment_intent");

    /* session_result and merchant_account play no part */
    in.session_result = NULL;
    in.merchant_account = NULL;
    expect_path(&pay_dialect_stripe, &in, "/v1/checkout/sessions/cs_test_a1"
                                          "?expand%5B%5D=payment_intent");
}


Test(lookup, stripe_complete_and_paid_succeeds_with_its_amount)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_test_a1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, st_paid, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.event_id, "lookup:cs_test_a1:complete");
    cr_expect_str_eq(ev.type, "complete");
    cr_expect_str_eq(ev.token, "cs_test_a1");
    cr_expect_str_eq(ev.reference, "m1:co_1");
    cr_expect_eq(ev.amount, 2198);
    cr_expect_str_eq(ev.currency, "USD");
    cr_expect_eq(ev.livemode, -1);
    cr_expect_str_eq(ev.account, "");
    /* paid: captured, whatever the stored mode (the sweeper's CAPTURED) */
    cr_expect_eq(ev.captured, 1);
}


Test(lookup, stripe_no_payment_required_succeeds)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"no_payment_required\","
                        "\"amount_total\":0,\"currency\":\"eur\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.amount, 0);
    cr_expect_str_eq(ev.currency, "EUR");
    cr_expect_eq(ev.captured, 0);
}


Test(lookup, stripe_expired_fails)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"expired\","
                        "\"payment_status\":\"unpaid\","
                        "\"amount_total\":1500,\"currency\":\"usd\","
                        "\"client_reference_id\":\"m1:co_1\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.event_id, "lookup:cs_1:expired");
    cr_expect_str_eq(ev.type, "expired");
    cr_expect_eq(ev.amount, 1500);
}


Test(lookup, stripe_open_is_open)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"open\","
                        "\"payment_status\":\"unpaid\"}", &ev),
                 PAY_LOOKUP_OPEN);
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);
    cr_expect_str_eq(ev.type, "open");
    cr_expect_str_eq(ev.event_id, "");
}


/* an asynchronous method (a bank debit) is still on its way: a payment
 * under way, never failed by the session's expiry */
Test(lookup, stripe_complete_but_unpaid_is_a_payment_under_way)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"unpaid\","
                        "\"amount_total\":1500,\"currency\":\"usd\"}", &ev),
                 PAY_LOOKUP_PENDING);
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);
}


/* a manual capture's session once the shopper paid: complete, unpaid, its
 * payment intent (expanded) holding the money under our nonce */
#define STRIPE_HELD(pi_status, capture, nonce)                               \
    "{\"id\":\"cs_1\",\"status\":\"complete\","                            \
    "\"payment_status\":\"unpaid\",\"amount_total\":1500,"                 \
    "\"currency\":\"usd\",\"client_reference_id\":\"m1:co_1\","            \
    "\"payment_intent\":{\"id\":\"pi_9\",\"object\":\"payment_intent\","   \
    "\"status\":\"" pi_status "\",\"capture_method\":\"" capture "\","      \
    "\"amount\":1500,\"amount_capturable\":1500,"                          \
    "\"metadata\":{\"nonce\":\"" nonce "\"}}}"


Test(lookup, stripe_a_manual_captures_hold_is_a_success_not_captured)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        STRIPE_HELD("requires_capture", "manual", "m1:co_1"),
                        &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.captured, 0, "a hold is not captured money");
    cr_expect_str_eq(ev.payment_ref, "pi_9", "the intent's id, expanded");
    cr_expect_str_eq(ev.reference, "m1:co_1");
    cr_expect_eq(ev.amount, 1500);
    cr_expect_str_eq(ev.currency, "USD");
}


/* only our own manual hold: an intent processing (an asynchronous method),
 * captured or canceled at the dashboard, automatic, or naming another
 * checkout is still a payment under way, left for its events or a person */
Test(lookup, stripe_an_unpaid_session_not_held_for_us_stays_under_way)
{
    size_t            i;
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");
    static const char  *bodies[] = {
        STRIPE_HELD("processing", "automatic_async", "m1:co_1"),
        STRIPE_HELD("succeeded", "manual", "m1:co_1"),
        STRIPE_HELD("canceled", "manual", "m1:co_1"),
        STRIPE_HELD("requires_capture", "automatic", "m1:co_1"),
        STRIPE_HELD("requires_capture", "manual", "m1:co_2"),
        STRIPE_HELD("requires_capture", "manual", ""),
    };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cr_expect_eq(answer(&pay_dialect_stripe, &in, 200, bodies[i], &ev),
                     PAY_LOOKUP_PENDING, "%s", bodies[i]);
        cr_expect_eq(ev.kind, PAY_EVT_PENDING, "%s", bodies[i]);
    }
}


/* a paid session's expanded intent gives its id as a string would */
Test(lookup, stripe_a_paid_sessions_expanded_intent_names_the_payment)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\",\"amount_total\":1500,"
                        "\"currency\":\"usd\","
                        "\"client_reference_id\":\"m1:co_1\","
                        "\"payment_intent\":{\"id\":\"pi_7\","
                        "\"status\":\"succeeded\"}}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.captured, 1);
    cr_expect_str_eq(ev.payment_ref, "pi_7");
}


/* A manual capture's hold captured in part at Stripe's dashboard, its
 * events lost: the session reads "paid" with amount_total, its intent
 * (expanded) received less.  Booking amount_total would book money Stripe
 * never moved: it stays a payment under way (the sweeper lists it for a
 * person after grace=), while a whole capture pays, as before. */
#define STRIPE_CAPTURED(received)                                            \
    "{\"id\":\"cs_1\",\"status\":\"complete\","                            \
    "\"payment_status\":\"paid\",\"amount_total\":1500,"                   \
    "\"currency\":\"usd\",\"client_reference_id\":\"m1:co_1\","            \
    "\"payment_intent\":{\"id\":\"pi_9\",\"object\":\"payment_intent\","   \
    "\"status\":\"succeeded\",\"capture_method\":\"manual\","              \
    "\"amount\":1500,\"amount_capturable\":0,"                             \
    "\"amount_received\":" received ","                                   \
    "\"metadata\":{\"nonce\":\"m1:co_1\"}}}"

Test(lookup, stripe_a_hold_captured_in_part_at_the_dashboard_books_nothing)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200, STRIPE_CAPTURED("600"),
                        &ev),
                 PAY_LOOKUP_PENDING, "600 of 1500 received");
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        STRIPE_CAPTURED("1500"), &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.captured, 1);
    cr_expect_eq(ev.amount, 1500);
}


/* a paid session that saved the method: its intent (expanded) set it up
 * under our nonce; it names the method and the customer, as the intent's
 * own event would.  Another checkout's intent names none. */
Test(lookup, stripe_a_paid_session_names_the_method_its_intent_saved)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");
    static const char  body[] =
        "{\"id\":\"cs_1\",\"status\":\"complete\","
        "\"payment_status\":\"paid\",\"amount_total\":1500,"
        "\"currency\":\"usd\",\"client_reference_id\":\"m1:co_1\","
        "\"customer\":\"cus_session\","
        "\"payment_intent\":{\"id\":\"pi_7\",\"status\":\"succeeded\","
        "\"setup_future_usage\":\"off_session\","
        "\"payment_method\":\"pm_1\",\"customer\":\"cus_1\","
        "\"metadata\":{\"nonce\":\"%s\"}}}";
    char               buf[1024];

    snprintf(buf, sizeof(buf), body, "m1:co_1");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.method, "pm_1");
    cr_expect_str_eq(ev.psp_customer, "cus_1");

    snprintf(buf, sizeof(buf), body, "m1:co_2");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "", "another checkout's method");
}


Test(lookup, stripe_unknown_or_missing_statuses_decide_nothing)
{
    size_t            i;
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");
    static const char  *bodies[] = {
        "{\"id\":\"cs_1\",\"status\":\"completed\","
            "\"payment_status\":\"paid\"}",
        "{\"id\":\"cs_1\",\"status\":\"complete\"}",
        "{\"id\":\"cs_1\",\"status\":\"complete\","
            "\"payment_status\":\"PAID\"}",
        "{\"id\":\"cs_1\",\"status\":\"complete\","
            "\"payment_status\":true}",
        "{\"id\":\"cs_1\",\"payment_status\":\"paid\"}",
        "{\"id\":\"cs_1\",\"status\":null}",
        "{\"id\":\"cs_1\",\"status\":\"Expired\"}",
        "{\"id\":\"cs_1\",\"status\":\"expired\\u0000\"}",
    };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cr_expect_eq(answer(&pay_dialect_stripe, &in, 200, bodies[i], &ev),
                     PAY_LOOKUP_UNKNOWN, "%s", bodies[i]);
        expect_cleared(&ev);
    }
}


/* Stripe's units are not ISO's: ISK has two decimals there, MGA none */
Test(lookup, stripe_amounts_are_read_in_stripes_units)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    /* 500 ISK is 50000 at Stripe */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":50000,\"currency\":\"isk\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, 500);
    cr_expect_str_eq(ev.currency, "ISK");

    /* 500.50 ISK has no ISO value: it can match no checkout */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":50050,\"currency\":\"isk\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);

    /* 1000 MGA at Stripe is 1000.00 MGA: 100000 ISO minor units */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":1000,\"currency\":\"mga\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, 100000);
    cr_expect_str_eq(ev.currency, "MGA");

    /* JPY is zero-decimal at both */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":700,\"currency\":\"jpy\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, 700);
}


/* a SUCCEEDED without an amount is refused by the database
 * (amount_mismatch): the look-up never invents one */
Test(lookup, stripe_missing_or_odd_amounts_stay_absent)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
    cr_expect_str_eq(ev.currency, "");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":\"2198\",\"currency\":\"usd\"}",
                        &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":-5,\"currency\":\"usd\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);

    /* an amount without a readable currency means nothing */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":100,\"currency\":\"u$d\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
    cr_expect_str_eq(ev.currency, "");

    /* a currency that is not ISO's: no exact value */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":100,\"currency\":\"zzz\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);
}


/* the reference is the answer's when it has one (the database cross-checks
 * it against the token's checkout), else our own nonce */
Test(lookup, stripe_reference_is_the_answers_else_ours)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"expired\","
                        "\"client_reference_id\":\"m9:co_other\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.reference, "m9:co_other");

    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"expired\","
                        "\"client_reference_id\":null}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.reference, "m1:co_1");

    in.nonce = NULL;
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_1\",\"status\":\"expired\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.reference, "");
}


Test(lookup, an_answer_about_another_session_is_not_trusted)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");
    pay_psp_lookup_t  gin = lk("gs_1");
    pay_psp_lookup_t  ain = lk("CS1");

    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_2\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\","
                        "\"amount_total\":1,\"currency\":\"usd\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    expect_cleared(&ev);
    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"status\":\"expired\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"CS_1\",\"status\":\"expired\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_adyen, &ain, 200,
                        "{\"id\":\"CS2\",\"status\":\"completed\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_adyen, &ain, 200,
                        "{\"status\":\"completed\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_generic, &gin, 200,
                        "{\"token\":\"gs_2\",\"status\":\"failed\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_generic, &gin, 200,
                        "{\"status\":\"failed\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
}


/* --- adyen ----------------------------------------------------------- */

Test(lookup, adyen_asks_with_the_escaped_session_result)
{
    pay_psp_lookup_t  in = lk("CS1D2E3F4A5B6C7D8");

    expect_path(&pay_dialect_adyen, &in,
                "/v71/sessions/CS1D2E3F4A5B6C7D8?sessionResult="
                "Ab02b4c0%21BQABAgA%2B%2F%3D");

    /* whatever the shopper's browser brought back stays in the query */
    in.session_result = "x&merchantAccount=Other#frag /?%";
    expect_path(&pay_dialect_adyen, &in,
                "/v71/sessions/CS1D2E3F4A5B6C7D8?sessionResult="
                "x%26merchantAccount%3DOther%23frag%20%2F%3F%25");
}


/* Adyen answers only with the sessionResult: the glue then relies on the
 * session's expiry */
Test(lookup, adyen_without_a_session_result_cannot_ask)
{
    char              *big, *p;
    pay_psp_lookup_t   in = lk("CS1");

    in.session_result = NULL;
    expect_refused(&pay_dialect_adyen, &in);
    in.session_result = "";
    expect_refused(&pay_dialect_adyen, &in);

    big = malloc(PAY_LOOKUP_RESULT_MAX + 2);
    cr_assert_not_null(big);
    memset(big, 'A', PAY_LOOKUP_RESULT_MAX + 1);
    big[PAY_LOOKUP_RESULT_MAX + 1] = '\0';
    in.session_result = big;
    expect_refused(&pay_dialect_adyen, &in);

    big[PAY_LOOKUP_RESULT_MAX] = '\0';
    p = path_of(&pay_dialect_adyen, &in);
    cr_expect_not_null(p);
    free(p);
    free(big);
}


Test(lookup, adyen_completed_succeeds_without_an_amount)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("CS1");

    cr_assert_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"completed\","
                        "\"reference\":\"m1:co_1\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.event_id, "lookup:CS1:completed");
    cr_expect_str_eq(ev.type, "completed");
    cr_expect_str_eq(ev.token, "CS1");
    cr_expect_str_eq(ev.reference, "m1:co_1");
    /* Adyen's answer has none: the database takes the checkout's own */
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
    cr_expect_str_eq(ev.currency, "");

    /* older answers carry no reference: ours */
    cr_assert_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"completed\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.reference, "m1:co_1");
}


Test(lookup, adyen_expired_canceled_and_refused_fail)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("CS1");

    cr_assert_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"expired\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.event_id, "lookup:CS1:expired");

    cr_assert_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"canceled\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.event_id, "lookup:CS1:canceled");

    /* the session, not one attempt: refused too many times, the shopper
     * can no longer pay in it (one refused attempt leaves it active) */
    cr_assert_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"refused\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.type, "refused");
}


/* paymentPending: the shopper paid with a method that settles later; the
 * sweeper must never read it as an open session that expired */
Test(lookup, adyen_active_is_open_and_payment_pending_is_under_way)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("CS1");

    cr_expect_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"active\"}", &ev),
                 PAY_LOOKUP_OPEN);
    cr_expect_str_eq(ev.type, "active");
    cr_expect_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"paymentPending\"}",
                        &ev),
                 PAY_LOOKUP_PENDING);
    cr_expect_str_eq(ev.type, "paymentPending");
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);
    cr_expect_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"Completed\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_adyen, &in, 200,
                        "{\"id\":\"CS1\",\"status\":\"authorised\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
}


/* --- generic --------------------------------------------------------- */

Test(lookup, generic_gets_the_session_by_its_token)
{
    pay_psp_lookup_t  in = lk("gs_AbC123");

    expect_path(&pay_dialect_generic, &in, "/sessions/gs_AbC123");
}


Test(lookup, generic_succeeded_pays_with_its_decimal_amount)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");

    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"reference\":\"m1:co_1\","
                        "\"status\":\"succeeded\",\"amount\":\"12.34\","
                        "\"currency\":\"EUR\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.event_id, "lookup:gs_1:succeeded");
    cr_expect_str_eq(ev.type, "succeeded");
    cr_expect_str_eq(ev.token, "gs_1");
    cr_expect_str_eq(ev.reference, "m1:co_1");
    cr_expect_eq(ev.amount, 1234);
    cr_expect_str_eq(ev.currency, "EUR");

    /* ISO exponents: ISK 0, KWD 3, lower-case codes accepted */
    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"succeeded\","
                        "\"amount\":\"500\",\"currency\":\"isk\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, 500);
    cr_expect_str_eq(ev.currency, "ISK");
    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"succeeded\","
                        "\"amount\":\"1.5\",\"currency\":\"KWD\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, 1500);
}


Test(lookup, generic_succeeded_without_a_valid_amount_is_not_trusted)
{
    size_t            i;
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");
    static const char  *bodies[] = {
        "{\"token\":\"gs_1\",\"status\":\"succeeded\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"1.00\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"currency\":\"EUR\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":12.34,"
            "\"currency\":\"EUR\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"1.234\","
            "\"currency\":\"EUR\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"0\","
            "\"currency\":\"EUR\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"1e3\","
            "\"currency\":\"EUR\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"-1\","
            "\"currency\":\"EUR\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"1\","
            "\"currency\":\"XXY\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\",\"amount\":\"1\","
            "\"currency\":\"EURO\"}",
        "{\"token\":\"gs_1\",\"status\":\"succeeded\","
            "\"amount\":\"99999999999999999999\",\"currency\":\"EUR\"}",
    };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cr_expect_eq(answer(&pay_dialect_generic, &in, 200, bodies[i], &ev),
                     PAY_LOOKUP_UNKNOWN, "%s", bodies[i]);
        expect_cleared(&ev);
    }
}


/* a manual capture's session paid: its hold, as payment.authorized says
 * it (held, nothing captured), with the payment to capture; its amount
 * needed as a success's is */
Test(lookup, generic_authorized_is_a_manual_captures_hold_with_its_payment)
{
    size_t            i;
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");
    static const char  *untrusted[] = {
        "{\"token\":\"gs_1\",\"status\":\"authorized\","
            "\"payment_id\":\"pay_7\"}",
        "{\"token\":\"gs_1\",\"status\":\"authorized\","
            "\"amount\":\"1.234\",\"currency\":\"EUR\"}",
        "{\"token\":\"gs_2\",\"status\":\"authorized\","
            "\"amount\":\"12.34\",\"currency\":\"EUR\"}",
    };

    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"reference\":\"m1:co_1\","
                        "\"status\":\"authorized\",\"amount\":\"12.34\","
                        "\"currency\":\"EUR\",\"payment_id\":\"pay_7\"}",
                        &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_AUTHORIZED);
    cr_expect_str_eq(pay_event_kind_name(&ev), "AUTHORIZED");
    cr_expect_str_eq(ev.event_id, "lookup:gs_1:authorized");
    cr_expect_str_eq(ev.reference, "m1:co_1");
    cr_expect_str_eq(ev.payment_ref, "pay_7");
    cr_expect_eq(ev.amount, 1234);
    cr_expect_str_eq(ev.currency, "EUR");

    for (i = 0; i < sizeof(untrusted) / sizeof(untrusted[0]); i++) {
        cr_expect_eq(answer(&pay_dialect_generic, &in, 200, untrusted[i],
                            &ev),
                     PAY_LOOKUP_UNKNOWN, "%s", untrusted[i]);
        expect_cleared(&ev);
    }
}


Test(lookup, generic_failed_and_expired_fail)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");

    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"failed\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.event_id, "lookup:gs_1:failed");
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
    cr_expect_str_eq(ev.reference, "m1:co_1");

    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"expired\","
                        "\"amount\":\"7\",\"currency\":\"JPY\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.event_id, "lookup:gs_1:expired");
    cr_expect_eq(ev.amount, 7);
    cr_expect_str_eq(ev.currency, "JPY");

    /* amount and currency both or neither, and valid */
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"failed\","
                        "\"amount\":\"7\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"failed\","
                        "\"amount\":\"7.5\",\"currency\":\"JPY\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
}


Test(lookup, generic_open_is_open_and_pending_is_under_way)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");

    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"open\"}", &ev),
                 PAY_LOOKUP_OPEN);
    cr_expect_str_eq(ev.type, "open");
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"pending\","
                        "\"amount\":\"1.00\",\"currency\":\"EUR\"}", &ev),
                 PAY_LOOKUP_PENDING);
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"paid\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    /* a payment's status, never a session's */
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":"
                        "\"requires_authentication\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
}


/* --- every dialect: HTTP statuses and bodies ------------------------- */

static const char *
good_body(const pay_dialect_t *d)
{
    switch (d->id) {
    case PAY_DIALECT_STRIPE:
        return "{\"id\":\"tok_1\",\"status\":\"expired\"}";
    case PAY_DIALECT_ADYEN:
        return "{\"id\":\"tok_1\",\"status\":\"expired\"}";
    default:
        return "{\"token\":\"tok_1\",\"status\":\"expired\"}";
    }
}


Test(lookup, every_dialect_decides_on_a_good_answer)
{
    size_t             i;
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk("tok_1");

    for (i = 0; pay_dialects[i] != NULL; i++) {
        cr_expect_eq(answer(pay_dialects[i], &in, 200,
                            good_body(pay_dialects[i]), &ev),
                     PAY_LOOKUP_DECIDED, "%s", pay_dialects[i]->name);
        cr_expect_eq(ev.kind, PAY_EVT_FAILED);
        /* any 2xx is an answer */
        cr_expect_eq(answer(pay_dialects[i], &in, 203,
                            good_body(pay_dialects[i]), &ev),
                     PAY_LOOKUP_DECIDED, "%s", pay_dialects[i]->name);
    }
}


Test(lookup, credentials_refused_is_auth_and_never_decides)
{
    size_t             i;
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk("tok_1");

    for (i = 0; pay_dialects[i] != NULL; i++) {
        cr_expect_eq(answer(pay_dialects[i], &in, 401,
                            good_body(pay_dialects[i]), &ev),
                     PAY_LOOKUP_AUTH, "%s", pay_dialects[i]->name);
        expect_cleared(&ev);
        cr_expect_eq(answer(pay_dialects[i], &in, 403, NULL, &ev),
                     PAY_LOOKUP_AUTH, "%s", pay_dialects[i]->name);
    }
}


/* a 404 may be a wrong URL or PSP account as well as a lost session:
 * never a reason to fail a checkout */
Test(lookup, not_found_errors_and_no_answer_are_unknown)
{
    size_t             i, j;
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk("tok_1");
    static const int   statuses[] = {
        0, 100, 199, 301, 304, 400, 402, 404, 409, 410, 422, 429, 500, 502,
        503, 504, 599, -1, 1000
    };

    for (i = 0; pay_dialects[i] != NULL; i++) {
        for (j = 0; j < sizeof(statuses) / sizeof(statuses[0]); j++) {
            memset(&ev, 0x5a, sizeof(ev));
            cr_expect_eq(answer(pay_dialects[i], &in, statuses[j],
                                good_body(pay_dialects[i]), &ev),
                         PAY_LOOKUP_UNKNOWN, "%s %d", pay_dialects[i]->name,
                         statuses[j]);
            expect_cleared(&ev);
        }
    }
}


Test(lookup, garbage_answers_are_unknown)
{
    size_t             i, j;
    char              *big;
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk("tok_1");
    static const char  *bodies[] = {
        NULL, "", "null", "[]", "\"expired\"", "{", "<html>502</html>",
        "{\"id\":\"tok_1\",\"token\":\"tok_1\",\"status\":\"expired\","
            "\"status\":\"expired\"}",
        "{\"id\":1,\"token\":1,\"status\":\"expired\"}",
        "{\"id\":\"tok_1\",\"token\":\"tok_1\",\"status\":[\"expired\"]}",
        "{\"id\":\"tok_1\\u0000x\",\"token\":\"tok_1\\u0000x\","
            "\"status\":\"expired\"}",
    };

    for (i = 0; pay_dialects[i] != NULL; i++) {
        for (j = 0; j < sizeof(bodies) / sizeof(bodies[0]); j++) {
            cr_expect_eq(answer(pay_dialects[i], &in, 200, bodies[j], &ev),
                         PAY_LOOKUP_UNKNOWN, "%s %s", pay_dialects[i]->name,
                         bodies[j] ? bodies[j] : "(null)");
            expect_cleared(&ev);
        }
    }

    /* a body the PSP would not send: more than 256 KiB is not read */
    big = malloc(300 * 1024);
    cr_assert_not_null(big);
    memset(big, ' ', 300 * 1024 - 1);
    big[300 * 1024 - 1] = '\0';
    memcpy(big, good_body(&pay_dialect_generic),
           strlen(good_body(&pay_dialect_generic)));
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200, big, &ev),
                 PAY_LOOKUP_UNKNOWN);
    free(big);
}


/* the length given, not a NUL, ends the body */
Test(lookup, the_body_is_read_to_its_length)
{
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk("tok_1");
    const char        *b = "{\"token\":\"tok_1\",\"status\":\"expired\"}";

    cr_expect_eq(pay_dialect_generic.session_lookup_answer(&in, 200, b,
                                                           strlen(b) - 1,
                                                           NOW, &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_dialect_generic.session_lookup_answer(&in, 200, b,
                                                           strlen(b),
                                                           NOW, &ev),
                 PAY_LOOKUP_DECIDED);
}


Test(lookup, no_input_is_unknown_never_a_crash)
{
    size_t             i;
    pay_event_t        ev;
    pay_psp_request_t  req;
    pay_psp_lookup_t   in = lk(NULL);

    for (i = 0; pay_dialects[i] != NULL; i++) {
        cr_expect_eq(pay_dialects[i]->session_lookup(NULL, &req), -1);
        cr_expect_null(req.path);
        cr_expect_eq(pay_dialects[i]->session_lookup(&in, &req), -1);
        cr_expect_eq(pay_dialects[i]->session_lookup_answer(
                         NULL, 200, good_body(pay_dialects[i]),
                         strlen(good_body(pay_dialects[i])), NOW, &ev),
                     PAY_LOOKUP_UNKNOWN);
        cr_expect_eq(answer(pay_dialects[i], &in, 200,
                            good_body(pay_dialects[i]), &ev),
                     PAY_LOOKUP_UNKNOWN);
    }
}


/* --- the token is interpolated into the path ------------------------- */

static const char  *const hostile_tokens[] = {
    "cs_1/../../v1/charges", "cs_1?expand[]=x", "cs_1#x", "../x", "..",
    ".", "cs 1", "cs_1\r\nX-Evil: 1", "cs_1%2F..", "cs_1\\..", "cs_1;x",
    "cs_1&x=1", "", "\xc3\xa9", "cs_1\t", "cs_1@evil", "cs_1:x", "a.b",
};


Test(lookup, stripe_and_adyen_refuse_tokens_outside_their_alphabet)
{
    size_t             i;
    pay_psp_lookup_t   in;

    for (i = 0; i < sizeof(hostile_tokens) / sizeof(hostile_tokens[0]); i++)
    {
        in = lk(hostile_tokens[i]);
        expect_refused(&pay_dialect_stripe, &in);
        expect_refused(&pay_dialect_adyen, &in);
    }

    in = lk("cs_test_a1-B2");
    expect_path(&pay_dialect_stripe, &in,
                "/v1/checkout/sessions/cs_test_a1-B2"
                "?expand%5B%5D=payment_intent");
}


/* --- a cancel's expire call ------------------------------------------ */

static void
expect_expire(const pay_dialect_t *d, const char *token, const char *path,
    const char *type, const char *body)
{
    pay_psp_lookup_t   in = lk(token);
    pay_psp_request_t  req;

    cr_assert_eq(d->session_expire(&in, &req), 0, "%s", token);
    cr_expect_str_eq(req.path, path);
    cr_expect_str_eq(req.content_type, type);
    cr_expect_str_eq(req.body, body);
    cr_expect_eq(req.body_len, strlen(body));
    pay_psp_request_free(&req);
}


Test(lookup, stripe_expires_the_session_with_an_empty_post)
{
    expect_expire(&pay_dialect_stripe, "cs_test_a1",
                  "/v1/checkout/sessions/cs_test_a1/expire",
                  "application/x-www-form-urlencoded", "");
}


Test(lookup, generic_expires_the_session_with_an_empty_object)
{
    expect_expire(&pay_dialect_generic, "gs_AbC123",
                  "/sessions/gs_AbC123/expire", "application/json", "{}");

    /* the token is escaped as the look-up's */
    expect_expire(&pay_dialect_generic, "a/b?c",
                  "/sessions/a%2Fb%3Fc/expire", "application/json", "{}");
}


Test(lookup, expire_refuses_tokens_the_lookup_refuses)
{
    size_t             i;
    pay_psp_lookup_t   in;
    pay_psp_request_t  req;

    for (i = 0; i < sizeof(hostile_tokens) / sizeof(hostile_tokens[0]); i++)
    {
        in = lk(hostile_tokens[i]);
        cr_expect_eq(pay_dialect_stripe.session_expire(&in, &req), -1);
        cr_expect_null(req.path);
    }

    cr_expect_eq(pay_dialect_stripe.session_expire(NULL, &req), -1);
    cr_expect_eq(pay_dialect_generic.session_expire(NULL, &req), -1);

    in = lk("..");
    cr_expect_eq(pay_dialect_generic.session_expire(&in, &req), -1);
}


/* the generic dialect escapes instead: its tokens are any visible ASCII */
Test(lookup, generic_escapes_every_token_byte_that_could_leave_the_segment)
{
    pay_psp_lookup_t   in;

    in = lk("a/../../admin?x=1#y");
    expect_path(&pay_dialect_generic, &in,
                "/sessions/a%2F%2E%2E%2F%2E%2E%2Fadmin%3Fx%3D1%23y");
    in = lk("tok%2F1");
    expect_path(&pay_dialect_generic, &in, "/sessions/tok%252F1");
    in = lk("a.b~c:d@e");
    expect_path(&pay_dialect_generic, &in, "/sessions/a%2Eb%7Ec%3Ad%40e");

    /* nothing an escape can make safe: dot segments, blanks, controls,
     * non-ASCII, empty */
    in = lk(".");
    expect_refused(&pay_dialect_generic, &in);
    in = lk("..");
    expect_refused(&pay_dialect_generic, &in);
    in = lk("tok 1");
    expect_refused(&pay_dialect_generic, &in);
    in = lk("tok\r\nX: 1");
    expect_refused(&pay_dialect_generic, &in);
    in = lk("t\xc3\xa9");
    expect_refused(&pay_dialect_generic, &in);
    in = lk("");
    expect_refused(&pay_dialect_generic, &in);
}


/* "lookup:<token>:<status>" must fit the event id whole: two long tokens
 * cut to one id would dedupe each other's outcome */
Test(lookup, tokens_past_the_maximum_are_never_looked_up)
{
    size_t             i;
    char               tok[PAY_LOOKUP_TOKEN_MAX + 2], *p;
    pay_event_t        ev;
    pay_psp_lookup_t   in;
    char               body[512];

    memset(tok, 'a', sizeof(tok) - 1);
    tok[PAY_LOOKUP_TOKEN_MAX] = '\0';

    for (i = 0; pay_dialects[i] != NULL; i++) {
        in = lk(tok);
        p = path_of(pay_dialects[i], &in);
        cr_expect_not_null(p, "%s", pay_dialects[i]->name);
        free(p);

        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"token\":\"%s\",\"status\":\"expired\"}",
                 tok, tok);
        cr_expect_eq(answer(pay_dialects[i], &in, 200, body, &ev),
                     PAY_LOOKUP_DECIDED, "%s", pay_dialects[i]->name);
        cr_expect_eq(strlen(ev.event_id),
                     strlen("lookup::expired") + PAY_LOOKUP_TOKEN_MAX);
    }

    tok[PAY_LOOKUP_TOKEN_MAX] = 'a';
    tok[PAY_LOOKUP_TOKEN_MAX + 1] = '\0';

    for (i = 0; pay_dialects[i] != NULL; i++) {
        in = lk(tok);
        expect_refused(pay_dialects[i], &in);

        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"token\":\"%s\",\"status\":\"expired\"}",
                 tok, tok);
        cr_expect_eq(answer(pay_dialects[i], &in, 200, body, &ev),
                     PAY_LOOKUP_UNKNOWN, "%s", pay_dialects[i]->name);
    }
}


/* a reference too long for the event is not cut to something else */
Test(lookup, a_reference_that_does_not_fit_is_not_trusted)
{
    char               ref[200], body[400];
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk("cs_1");

    memset(ref, 'r', sizeof(ref) - 1);
    ref[sizeof(ref) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"id\":\"cs_1\",\"status\":\"expired\","
             "\"client_reference_id\":\"%s\"}", ref);

    cr_expect_eq(answer(&pay_dialect_stripe, &in, 200, body, &ev),
                 PAY_LOOKUP_UNKNOWN);
    expect_cleared(&ev);
}


/* --- an off-session charge's payment, by its id ---------------------- */

static pay_lookup_outcome_e
pay_answer(const pay_dialect_t *d, const pay_psp_lookup_t *in, int status,
    const char *body, pay_event_t *ev)
{
    return d->payment_lookup_answer(in, status, body,
                                    body ? strlen(body) : 0, NOW, ev);
}


static char *
payment_path_of(const pay_dialect_t *d, const pay_psp_lookup_t *in)
{
    char               *p;
    pay_psp_request_t   req;

    memset(&req, 0xa5, sizeof(req));

    if (d->payment_lookup(in, &req) != 0) {
        cr_expect_null(req.path);
        return NULL;
    }

    cr_expect_null(req.body, "a look-up is a GET");
    cr_expect_null(req.content_type);
    cr_assert_not_null(req.path);

    p = strdup(req.path);
    pay_psp_request_free(&req);

    return p;
}


Test(lookup, a_payment_is_looked_up_where_the_psp_can)
{
    char              *p;
    pay_psp_lookup_t   in = lk("pi_3Abc");

    p = payment_path_of(&pay_dialect_stripe, &in);
    cr_expect_str_eq(p, "/v1/payment_intents/pi_3Abc");
    free(p);

    in.token = "pay/1?x";
    p = payment_path_of(&pay_dialect_generic, &in);
    cr_expect_str_eq(p, "/payments/pay%2F1%3Fx");
    free(p);

    in.token = "pi_../x";
    cr_expect_null(payment_path_of(&pay_dialect_stripe, &in));

    /* Adyen's Checkout API has no GET of a payment */
    cr_expect_null(pay_dialect_adyen.payment_lookup);
    cr_expect_null(pay_dialect_adyen.payment_lookup_answer);
}


Test(lookup, stripe_succeeded_intent_pays_captured_as_its_webhook)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("pi_3Abc");

    cr_assert_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"id\":\"pi_3Abc\",\"object\":\"payment_intent\","
                            "\"amount\":2198,\"amount_received\":2198,"
                            "\"currency\":\"usd\",\"status\":\"succeeded\","
                            "\"metadata\":{\"charge\":\"m1:ren_1\"}}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.captured, 1);
    cr_expect_str_eq(ev.event_id, "lookup:pi_3Abc:succeeded");
    cr_expect_str_eq(ev.token, "pi_3Abc");
    cr_expect_str_eq(ev.payment_ref, "pi_3Abc");
    cr_expect_str_eq(ev.reference, "m1:ren_1");
    cr_expect_eq(ev.amount, 2198);
    cr_expect_str_eq(ev.currency, "USD");
}


Test(lookup, stripe_failed_intent_fails_and_one_under_way_waits)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("pi_1");
    size_t            i;

    static const char  *waits[] = {
        "processing", "requires_capture", "requires_action",
        "requires_confirmation"
    };

    cr_assert_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"id\":\"pi_1\",\"amount\":500,"
                            "\"amount_received\":0,\"currency\":\"eur\","
                            "\"status\":\"requires_payment_method\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_eq(ev.amount, 500);
    cr_expect_str_eq(ev.reference, "m1:co_1", "ours when it names none");

    for (i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        char  body[256];

        snprintf(body, sizeof(body), "{\"id\":\"pi_1\",\"amount\":500,"
                 "\"currency\":\"eur\",\"status\":\"%s\"}", waits[i]);
        cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200, body, &ev),
                     PAY_LOOKUP_PENDING, "%s", waits[i]);
        cr_expect_eq(ev.shopper, 0, "%s", waits[i]);
    }

    /* another intent, a session, nonsense: nothing decided */
    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"id\":\"pi_2\",\"status\":\"succeeded\"}",
                            &ev), PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"id\":\"pi_1\",\"status\":\"complete\"}",
                            &ev), PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 404, "{}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 401, "{}", &ev),
                 PAY_LOOKUP_AUTH);
}


Test(lookup, generic_payment_succeeded_failed_or_pending)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("pay_9");

    cr_assert_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_2\",\"status\":\"succeeded\","
                            "\"amount\":\"12.50\",\"currency\":\"EUR\"}",
                            &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.amount, 1250);
    cr_expect_str_eq(ev.payment_ref, "pay_9");
    cr_expect_str_eq(ev.reference, "m1:ren_2");

    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"status\":\"failed\"}",
                            &ev), PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);

    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"status\":\"pending\"}",
                            &ev), PAY_LOOKUP_PENDING);

    /* a manual capture's hold, as the charge's answer says it */
    cr_assert_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_2\",\"status\":\"authorized\","
                            "\"amount\":\"12.50\",\"currency\":\"EUR\"}",
                            &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_AUTHORIZED);
    cr_expect_str_eq(ev.event_id, "lookup:pay_9:authorized");
    cr_expect_eq(ev.amount, 1250);
    cr_expect_str_eq(ev.payment_ref, "pay_9");

    /* a payment is never open nor expired; a session's answer is not a
     * payment's */
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"status\":\"expired\"}",
                            &ev), PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"token\":\"pay_9\",\"status\":\"succeeded\","
                            "\"amount\":\"1.00\",\"currency\":\"EUR\"}",
                            &ev), PAY_LOOKUP_UNKNOWN);
}


/* --- an off-session charge whose answer was lost: by its nonce -------- */

/* no payment id: asked for by the nonce alone */
static pay_psp_lookup_t
lk_nonce(const char *nonce)
{
    pay_psp_lookup_t  in = lk("");

    in.nonce = nonce;

    return in;
}

Test(lookup, a_charge_without_its_payment_id_is_asked_for_by_its_nonce)
{
    char              *p;
    pay_psp_lookup_t   in = lk_nonce("m1:ren_1");

    p = payment_path_of(&pay_dialect_stripe, &in);
    cr_expect_str_eq(p, "/v1/payment_intents/search?query="
                        "metadata%5B%27charge%27%5D%3A%27m1%3Aren_1%27");
    free(p);

    p = payment_path_of(&pay_dialect_generic, &in);
    cr_expect_str_eq(p, "/payments?reference=m1%3Aren_1");
    free(p);

    in.token = NULL;
    p = payment_path_of(&pay_dialect_generic, &in);
    cr_expect_str_eq(p, "/payments?reference=m1%3Aren_1");
    free(p);

    /* a nonce that is not ours is never put in a query: a quote would end
     * Stripe's string */
    in.nonce = "m1:ren_1' OR status:'succeeded";
    cr_expect_null(payment_path_of(&pay_dialect_stripe, &in));
    cr_expect_null(payment_path_of(&pay_dialect_generic, &in));
    in.nonce = NULL;
    cr_expect_null(payment_path_of(&pay_dialect_stripe, &in));
}


Test(lookup, stripe_the_one_intent_of_the_charges_nonce_is_read_as_by_its_id)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk_nonce("m1:ren_1");

    cr_assert_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"object\":\"search_result\",\"has_more\":false,"
                            "\"data\":[{\"id\":\"pi_other\",\"status\":"
                            "\"succeeded\",\"metadata\":{\"charge\":"
                            "\"m1:ren_10\"}},{\"id\":\"pi_3Abc\",\"object\":"
                            "\"payment_intent\",\"amount\":2198,"
                            "\"amount_received\":2198,\"currency\":\"usd\","
                            "\"status\":\"succeeded\",\"metadata\":"
                            "{\"charge\":\"m1:ren_1\"}}]}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.captured, 1);
    cr_expect_str_eq(ev.event_id, "lookup:pi_3Abc:succeeded",
                     "the look-up by its id says the same: a duplicate");
    cr_expect_str_eq(ev.token, "pi_3Abc");
    cr_expect_str_eq(ev.payment_ref, "pi_3Abc");
    cr_expect_str_eq(ev.reference, "m1:ren_1");
    cr_expect_eq(ev.amount, 2198);
    cr_expect_str_eq(ev.currency, "USD");

    cr_assert_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"data\":[{\"id\":\"pi_1\",\"amount\":500,"
                            "\"currency\":\"eur\",\"status\":\"canceled\","
                            "\"metadata\":{\"charge\":\"m1:ren_1\"}}]}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev.token, "pi_1");

    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                            "{\"data\":[{\"id\":\"pi_1\",\"amount\":500,"
                            "\"currency\":\"eur\",\"status\":\"processing\","
                            "\"metadata\":{\"charge\":\"m1:ren_1\"}}]}", &ev),
                 PAY_LOOKUP_PENDING);
}


/* an intent that failed asking for the shopper, as the search by its nonce
 * ("data") or the look-up of its id answers it */
static const char *
intent_failed_for(const char *code, int searched)
{
    static char  body[512];

    snprintf(body, sizeof(body), "%s{\"id\":\"pi_1\",\"amount\":500,"
             "\"currency\":\"eur\",\"status\":\"requires_payment_method\","
             "\"last_payment_error\":{\"code\":\"%s\"},"
             "\"metadata\":{\"charge\":\"m1:ren_1\"}}%s",
             searched ? "{\"data\":[" : "", code, searched ? "]}" : "");

    return body;
}


Test(lookup, stripe_a_charge_found_asking_for_the_shopper_moves_nothing)
{
    int               searched;
    pay_event_t       ev;
    pay_psp_lookup_t  in;

    for (searched = 0; searched < 2; searched++) {
        in = searched ? lk_nonce("m1:ren_1") : lk("pi_1");

        /* as its payment_failed webhook: the shop's retry makes the page */
        cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                                intent_failed_for("authentication_required",
                                                  searched), &ev),
                     PAY_LOOKUP_PENDING, "searched %d", searched);
        cr_expect_eq(ev.kind, PAY_EVT_PENDING);
        /* why it waits, and for which payment (the sweeper's expiry) */
        cr_expect_eq(ev.shopper, 1, "searched %d", searched);
        cr_expect_str_eq(ev.token, "pi_1", "searched %d", searched);

        /* a decline is a decline */
        cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200,
                                intent_failed_for("card_declined", searched),
                                &ev),
                     PAY_LOOKUP_DECIDED, "searched %d", searched);
        cr_expect_eq(ev.kind, PAY_EVT_FAILED);
        cr_expect_eq(ev.shopper, 0, "searched %d", searched);
    }
}


Test(lookup, stripe_no_intent_or_two_of_one_nonce_decide_nothing)
{
    size_t             i;
    pay_event_t        ev;
    pay_psp_lookup_t   in = lk_nonce("m1:ren_1");

    static const char  *nothing[] = {
        /* never charged, or not searchable yet */
        "{\"object\":\"search_result\",\"data\":[]}",
        /* another charge's only */
        "{\"data\":[{\"id\":\"pi_1\",\"status\":\"succeeded\","
        "\"metadata\":{\"charge\":\"m1:ren_10\"}}]}",
        /* two under one nonce: never sent so */
        "{\"data\":[{\"id\":\"pi_1\",\"status\":\"succeeded\","
        "\"amount_received\":5,\"currency\":\"usd\","
        "\"metadata\":{\"charge\":\"m1:ren_1\"}},"
        "{\"id\":\"pi_2\",\"status\":\"succeeded\","
        "\"amount_received\":5,\"currency\":\"usd\","
        "\"metadata\":{\"charge\":\"m1:ren_1\"}}]}",
        /* an id we would not put in a path */
        "{\"data\":[{\"id\":\"pi_../1\",\"status\":\"succeeded\","
        "\"metadata\":{\"charge\":\"m1:ren_1\"}}]}",
        /* an intent, not a search's answer */
        "{\"id\":\"pi_1\",\"status\":\"succeeded\","
        "\"metadata\":{\"charge\":\"m1:ren_1\"}}",
        "{\"data\":{}}", "[]", "nonsense"
    };

    for (i = 0; i < sizeof(nothing) / sizeof(nothing[0]); i++) {
        cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 200, nothing[i],
                                &ev), PAY_LOOKUP_UNKNOWN, "%s", nothing[i]);
        expect_cleared(&ev);
    }

    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 404, "{}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_stripe, &in, 401, "{}", &ev),
                 PAY_LOOKUP_AUTH);
}


Test(lookup, generic_the_payment_of_the_charges_nonce_is_read_as_by_its_id)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk_nonce("m1:ren_2");

    cr_assert_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_2\",\"status\":\"succeeded\","
                            "\"amount\":\"12.50\",\"currency\":\"EUR\"}",
                            &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.event_id, "lookup:pay_9:succeeded");
    cr_expect_str_eq(ev.token, "pay_9");
    cr_expect_str_eq(ev.payment_ref, "pay_9");
    cr_expect_eq(ev.amount, 1250);

    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_2\",\"status\":\"pending\"}", &ev),
                 PAY_LOOKUP_PENDING);
    cr_expect_eq(ev.shopper, 0, "a payment settling later");

    /* one whose issuer asked for the shopper: the shop's retry makes the
     * page, so nothing is decided; why it waits, and for which payment
     * (the sweeper's expiry) */
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_2\",\"status\":"
                            "\"requires_authentication\"}", &ev),
                 PAY_LOOKUP_PENDING);
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);
    cr_expect_eq(ev.shopper, 1);
    cr_expect_str_eq(ev.token, "pay_9");

    /* a manual capture's hold found by its nonce */
    cr_assert_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_2\",\"status\":\"authorized\","
                            "\"amount\":\"12.50\",\"currency\":\"EUR\"}",
                            &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_AUTHORIZED);
    cr_expect_str_eq(ev.event_id, "lookup:pay_9:authorized");

    /* another charge's payment, one naming no reference, none */
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"reference\":"
                            "\"m1:ren_20\",\"status\":\"succeeded\","
                            "\"amount\":\"12.50\",\"currency\":\"EUR\"}",
                            &ev), PAY_LOOKUP_UNKNOWN);
    expect_cleared(&ev);
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"payment_id\":\"pay_9\",\"status\":"
                            "\"succeeded\",\"amount\":\"12.50\","
                            "\"currency\":\"EUR\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 200,
                            "{\"reference\":\"m1:ren_2\",\"status\":"
                            "\"succeeded\"}", &ev), PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 404, "{}", &ev),
                 PAY_LOOKUP_UNKNOWN);
    cr_expect_eq(pay_answer(&pay_dialect_generic, &in, 403, "{}", &ev),
                 PAY_LOOKUP_AUTH);
}


/* --- a setup's session: its stored method ---------------------------- */

Test(lookup, a_setup_asks_stripe_for_its_setup_intent)
{
    char              *p;
    pay_psp_lookup_t   in = lk("cs_test_s1");

    in.setup = 1;
    p = path_of(&pay_dialect_stripe, &in);
    cr_expect_str_eq(p, "/v1/checkout/sessions/cs_test_s1"
                        "?expand%5B%5D=setup_intent");
    free(p);
}


Test(lookup, stripe_setup_names_its_method_once_the_intent_succeeded)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_s1");

    in.setup = 1;
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_s1\",\"status\":\"complete\","
                        "\"payment_status\":\"no_payment_required\","
                        "\"mode\":\"setup\",\"currency\":\"usd\","
                        "\"customer\":\"cus_S\",\"setup_intent\":"
                        "{\"id\":\"seti_1\",\"status\":\"succeeded\","
                        "\"payment_method\":\"pm_1Tok\","
                        "\"customer\":\"cus_A\"}}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.method, "pm_1Tok");
    cr_expect_str_eq(ev.psp_customer, "cus_A");

    /* the intent not succeeded, or not expanded: no method */
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_s1\",\"status\":\"complete\","
                        "\"payment_status\":\"no_payment_required\","
                        "\"setup_intent\":{\"id\":\"seti_1\","
                        "\"status\":\"requires_payment_method\","
                        "\"payment_method\":null}}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_s1\",\"status\":\"complete\","
                        "\"payment_status\":\"no_payment_required\","
                        "\"setup_intent\":\"seti_1\"}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");

    /* a payment's session never names one */
    in.setup = 0;
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200,
                        "{\"id\":\"cs_s1\",\"status\":\"complete\","
                        "\"payment_status\":\"paid\",\"amount_total\":5,"
                        "\"currency\":\"usd\",\"setup_intent\":"
                        "{\"status\":\"succeeded\","
                        "\"payment_method\":\"pm_x\"}}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");
}


Test(lookup, generic_setup_of_amount_zero_names_its_method)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");

    in.setup = 1;
    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"succeeded\","
                        "\"amount\":\"0.00\",\"currency\":\"EUR\","
                        "\"payment_method\":\"gpm_1\",\"brand\":\"visa\","
                        "\"last4\":\"4242\",\"exp_month\":12,"
                        "\"exp_year\":2031}", &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.amount, 0);
    cr_expect_str_eq(ev.method, "gpm_1");
    cr_expect_str_eq(ev.brand, "visa");
    cr_expect_str_eq(ev.last4, "4242");
    cr_expect_eq(ev.exp_month, 12);
    cr_expect_eq(ev.exp_year, 2031);

    /* amount 0 is no payment's */
    in.setup = 0;
    cr_expect_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"succeeded\","
                        "\"amount\":\"0.00\",\"currency\":\"EUR\"}", &ev),
                 PAY_LOOKUP_UNKNOWN);
}


/* --- a paid session's method, its own event lost (in->method) --------- */

Test(lookup, asked_for_a_saved_method_stripe_expands_the_intents_method)
{
    char              *p;
    pay_psp_lookup_t   in = lk("cs_test_m1");

    in.method = 1;
    p = path_of(&pay_dialect_stripe, &in);
    cr_expect_str_eq(p, "/v1/checkout/sessions/cs_test_m1"
                        "?expand%5B%5D=payment_intent.payment_method");
    free(p);

    in.setup = 1;
    p = path_of(&pay_dialect_stripe, &in);
    cr_expect_str_eq(p, "/v1/checkout/sessions/cs_test_m1"
                        "?expand%5B%5D=setup_intent.payment_method");
    free(p);

    /* the generic asks as ever; adyen's dialect says it cannot answer */
    in.setup = 0;
    expect_path(&pay_dialect_generic, &in, "/sessions/cs_test_m1");
    cr_expect_eq(pay_dialect_stripe.method_lookup, 1);
    cr_expect_eq(pay_dialect_generic.method_lookup, 1);
    cr_expect_eq(pay_dialect_adyen.method_lookup, 0);
}


/* the intent's payment_method expanded: its id is the token, its card the
 * display; a card field of another shape is left out, never the method */
Test(lookup, stripe_an_expanded_payment_method_names_the_token_and_its_card)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");
    static const char  body[] =
        "{\"id\":\"cs_1\",\"status\":\"complete\","
        "\"payment_status\":\"paid\",\"amount_total\":1500,"
        "\"currency\":\"usd\",\"client_reference_id\":\"m1:co_1\","
        "\"payment_intent\":{\"id\":\"pi_7\",\"status\":\"succeeded\","
        "\"setup_future_usage\":\"off_session\",\"customer\":\"cus_1\","
        "\"payment_method\":{\"id\":\"pm_1Exp\",\"object\":"
        "\"payment_method\",\"type\":\"card\",\"card\":%s},"
        "\"metadata\":{\"nonce\":\"m1:co_1\"}}}";
    char               buf[1024];

    in.method = 1;
    snprintf(buf, sizeof(buf), body,
             "{\"brand\":\"mastercard\",\"last4\":\"4444\","
             "\"exp_month\":7,\"exp_year\":2031}");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.reference, "m1:co_1");
    cr_expect_str_eq(ev.method, "pm_1Exp");
    cr_expect_str_eq(ev.psp_customer, "cus_1");
    cr_expect_str_eq(ev.brand, "mastercard");
    cr_expect_str_eq(ev.last4, "4444");
    cr_expect_eq(ev.exp_month, 7);
    cr_expect_eq(ev.exp_year, 2031);

    snprintf(buf, sizeof(buf), body,
             "{\"brand\":\"Visa<script>\",\"last4\":\"42\","
             "\"exp_month\":13,\"exp_year\":\"2031\"}");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "pm_1Exp");
    cr_expect_str_eq(ev.brand, "");
    cr_expect_str_eq(ev.last4, "");
    cr_expect_eq(ev.exp_month, 0);
    cr_expect_eq(ev.exp_year, 0);

    snprintf(buf, sizeof(buf), body, "null");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "pm_1Exp");
    cr_expect_str_eq(ev.last4, "");
}


/* an expanded method without an id, or with one that is no token, names
 * nothing: the display alone is no method */
Test(lookup, stripe_an_expanded_payment_method_without_its_id_names_nothing)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("cs_1");
    static const char  body[] =
        "{\"id\":\"cs_1\",\"status\":\"complete\","
        "\"payment_status\":\"paid\",\"amount_total\":1500,"
        "\"currency\":\"usd\",\"client_reference_id\":\"m1:co_1\","
        "\"payment_intent\":{\"id\":\"pi_7\",\"status\":\"succeeded\","
        "\"setup_future_usage\":\"off_session\",\"customer\":\"cus_1\","
        "\"payment_method\":{%s\"card\":{\"last4\":\"4242\"}},"
        "\"metadata\":{\"nonce\":\"m1:co_1\"}}}";
    char               buf[1024];

    in.method = 1;
    snprintf(buf, sizeof(buf), body, "");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");
    cr_expect_str_eq(ev.last4, "");

    snprintf(buf, sizeof(buf), body, "\"id\":\"pm 1\",");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");

    snprintf(buf, sizeof(buf), body, "\"id\":7,");
    cr_assert_eq(answer(&pay_dialect_stripe, &in, 200, buf, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");
}


/* the generic look-up of a paid session names the method it stored when
 * asked for it; never otherwise (a payment's look-up as ever) */
Test(lookup, generic_a_paid_session_names_its_method_when_asked_for_it)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in = lk("gs_1");
    static const char  body[] =
        "{\"token\":\"gs_1\",\"reference\":\"m1:co_1\","
        "\"status\":\"succeeded\",\"amount\":\"12.50\","
        "\"currency\":\"EUR\",\"payment_id\":\"gp_1\","
        "\"payment_method\":\"gpm_9\",\"brand\":\"visa\","
        "\"last4\":\"4242\",\"exp_month\":12,\"exp_year\":2030}";

    in.method = 1;
    cr_assert_eq(answer(&pay_dialect_generic, &in, 200, body, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev.amount, 1250);
    cr_expect_str_eq(ev.method, "gpm_9");
    cr_expect_str_eq(ev.brand, "visa");
    cr_expect_str_eq(ev.last4, "4242");

    in.method = 0;
    cr_assert_eq(answer(&pay_dialect_generic, &in, 200, body, &ev),
                 PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.method, "");
    cr_expect_str_eq(ev.last4, "");

    /* a session not paid names none, asked or not */
    in.method = 1;
    cr_assert_eq(answer(&pay_dialect_generic, &in, 200,
                        "{\"token\":\"gs_1\",\"status\":\"open\","
                        "\"payment_method\":\"gpm_9\"}", &ev),
                 PAY_LOOKUP_OPEN);
    cr_expect_str_eq(ev.method, "");
}
