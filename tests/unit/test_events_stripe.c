/*
 * Unit tests: the Stripe events of the money after "paid" (issue 10):
 * refunds, charge.refunded, disputes, transfers, and the payment_ref of a
 * paid session.  One rule per test; bodies are read after verification
 * (pay_stripe_parse_events), and one goes through the dialect's webhook
 * entry point as the adapter calls it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/dialect.h>
#include <payments/webhook.h>


static int
es_parse(const char *body, pay_event_t *ev, size_t max, size_t *n)
{
    return pay_stripe_parse_events(body, strlen(body), ev, max, n);
}


static const char  es_refund_fmt[] =
    "{\"id\":\"evt_r1\",\"type\":\"%s\",\"livemode\":false,"
    "\"data\":{\"object\":{\"id\":\"re_1\",\"object\":\"refund\","
    "\"amount\":400,\"currency\":\"eur\",\"status\":\"%s\","
    "\"payment_intent\":\"pi_1\","
    "\"metadata\":{\"nonce\":\"m1:rf_0123456789abcdef01234567\"}}}}";


Test(events_stripe, refund_succeeded_is_refund_succeeded_with_its_fields)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev[4];

    snprintf(body, sizeof(body), es_refund_fmt, "refund.updated",
             "succeeded");
    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_SUCCEEDED);
    cr_expect_str_eq(ev[0].event_id, "evt_r1");
    cr_expect_str_eq(ev[0].type, "refund.updated");
    cr_expect_str_eq(ev[0].reference, "m1:rf_0123456789abcdef01234567");
    cr_expect_str_eq(ev[0].object_ref, "re_1");
    cr_expect_str_eq(ev[0].payment_ref, "pi_1");
    cr_expect_eq(ev[0].amount, 400);
    cr_expect_str_eq(ev[0].currency, "EUR");
    cr_expect_str_eq(ev[0].token, "");
    cr_expect_eq(ev[0].livemode, 0);
}


Test(events_stripe, refund_status_decides_the_kind)
{
    static const struct {
        const char        *status;
        pay_event_kind_e   kind;
    } cases[] = {
        { "succeeded", PAY_EVT_REFUND_SUCCEEDED },
        { "failed", PAY_EVT_REFUND_FAILED },
        { "canceled", PAY_EVT_REFUND_FAILED },
        { "pending", PAY_EVT_PENDING },
        { "requires_action", PAY_EVT_PENDING },
    };
    char         body[1024];
    size_t       i, n;
    pay_event_t  ev;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), es_refund_fmt, "refund.created",
                 cases[i].status);
        cr_assert_eq(es_parse(body, &ev, 1, &n), 0, "%s", cases[i].status);
        cr_expect_eq(ev.kind, cases[i].kind, "%s", cases[i].status);
    }
}


Test(events_stripe, refund_without_amount_or_currency_is_unreadable)
{
    size_t       n;
    pay_event_t  ev;
    const char   no_amount[] =
        "{\"id\":\"evt_r1\",\"type\":\"refund.updated\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"re_1\",\"currency\":\"eur\","
        "\"status\":\"succeeded\"}}}";
    const char   no_currency[] =
        "{\"id\":\"evt_r1\",\"type\":\"refund.updated\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"re_1\",\"amount\":400,"
        "\"status\":\"succeeded\"}}}";
    const char   no_id[] =
        "{\"id\":\"evt_r1\",\"type\":\"refund.updated\",\"livemode\":false,"
        "\"data\":{\"object\":{\"amount\":400,\"currency\":\"eur\","
        "\"status\":\"succeeded\"}}}";

    cr_expect_eq(es_parse(no_amount, &ev, 1, &n), -1);
    cr_expect_eq(n, 0);
    cr_expect_eq(es_parse(no_currency, &ev, 1, &n), -1);
    cr_expect_eq(es_parse(no_id, &ev, 1, &n), -1);
    /* the single-event entry point says the same */
    cr_expect_eq(pay_stripe_parse_event(no_amount, strlen(no_amount), &ev),
                 -1);
}


Test(events_stripe, refund_amount_is_read_in_stripes_units)
{
    size_t       n;
    pay_event_t  ev;
    /* ISK: two decimals at Stripe, none in ISO */
    const char   isk[] =
        "{\"id\":\"evt_r1\",\"type\":\"refund.updated\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"re_1\",\"amount\":50000,"
        "\"currency\":\"isk\",\"status\":\"succeeded\"}}}";
    const char   isk_inexact[] =
        "{\"id\":\"evt_r1\",\"type\":\"refund.updated\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"re_1\",\"amount\":50050,"
        "\"currency\":\"isk\",\"status\":\"succeeded\"}}}";

    cr_assert_eq(es_parse(isk, &ev, 1, &n), 0);
    cr_expect_eq(ev.amount, 500);
    cr_assert_eq(es_parse(isk_inexact, &ev, 1, &n), 0);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);
}


static const char  es_charge_refunded[] =
    "{\"id\":\"evt_c1\",\"type\":\"charge.refunded\",\"livemode\":false,"
    "\"data\":{\"object\":{\"id\":\"ch_1\",\"object\":\"charge\","
    "\"payment_intent\":\"pi_9\",\"refunds\":{\"object\":\"list\","
    "\"data\":["
    "{\"id\":\"re_a\",\"amount\":300,\"currency\":\"eur\","
    "\"status\":\"succeeded\",\"metadata\":{\"nonce\":\"m1:rf_a\"}},"
    "{\"id\":\"re_b\",\"amount\":700,\"currency\":\"eur\","
    "\"status\":\"failed\",\"payment_intent\":\"pi_9\","
    "\"metadata\":{\"nonce\":\"m1:rf_b\"}}]}}}}";


Test(events_stripe, charge_refunded_with_two_refunds_is_two_events)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];

    cr_assert_eq(es_parse(es_charge_refunded, ev, PAY_WEBHOOK_MAX_ITEMS, &n),
                 0);
    cr_assert_eq(n, 2);

    cr_expect_str_eq(ev[0].event_id, "evt_c1:re_a");
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m1:rf_a");
    cr_expect_str_eq(ev[0].object_ref, "re_a");
    /* the charge's payment intent when the refund has none */
    cr_expect_str_eq(ev[0].payment_ref, "pi_9");
    cr_expect_eq(ev[0].amount, 300);
    cr_expect_str_eq(ev[0].type, "charge.refunded");

    cr_expect_str_eq(ev[1].event_id, "evt_c1:re_b");
    cr_expect_eq(ev[1].kind, PAY_EVT_REFUND_FAILED);
    cr_expect_str_eq(ev[1].reference, "m1:rf_b");
    cr_expect_eq(ev[1].amount, 700);
    cr_expect_str_eq(ev[1].currency, "EUR");
}


Test(events_stripe, charge_refunded_reads_at_most_16_refunds_and_max)
{
    char         body[16384];
    size_t       len, i, n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];

    len = (size_t) snprintf(body, sizeof(body),
        "{\"id\":\"evt_c2\",\"type\":\"charge.refunded\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"ch_2\",\"payment_intent\":\"pi_2\","
        "\"refunds\":{\"data\":[");
    for (i = 0; i < 20; i++) {
        len += (size_t) snprintf(body + len, sizeof(body) - len,
            "%s{\"id\":\"re_%zu\",\"amount\":1,\"currency\":\"usd\","
            "\"status\":\"succeeded\"}", i ? "," : "", i);
    }
    snprintf(body + len, sizeof(body) - len, "]}}}}");

    cr_assert_eq(es_parse(body, ev, PAY_WEBHOOK_MAX_ITEMS, &n), 0);
    cr_expect_eq(n, PAY_STRIPE_REFUNDS_MAX);
    cr_expect_str_eq(ev[15].event_id, "evt_c2:re_15");

    cr_assert_eq(es_parse(body, ev, 3, &n), 0);
    cr_expect_eq(n, 3);
}


Test(events_stripe, charge_refunded_without_a_refund_list_is_ignored)
{
    size_t       n;
    pay_event_t  ev[4];
    const char   body[] =
        "{\"id\":\"evt_c3\",\"type\":\"charge.refunded\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"ch_3\",\"amount_refunded\":100}}}";

    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].event_id, "evt_c3");
}


Test(events_stripe, charge_refunded_with_an_unreadable_refund_is_unreadable)
{
    size_t       n;
    pay_event_t  ev[4];
    const char   body[] =
        "{\"id\":\"evt_c4\",\"type\":\"charge.refunded\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"ch_4\",\"refunds\":{\"data\":["
        "{\"id\":\"re_a\",\"amount\":300,\"currency\":\"eur\","
        "\"status\":\"succeeded\"},"
        "{\"id\":\"re_b\",\"currency\":\"eur\",\"status\":\"succeeded\"}"
        "]}}}}";

    cr_expect_eq(es_parse(body, ev, 4, &n), -1);
    cr_expect_eq(n, 0);
    cr_expect_str_eq(ev[0].event_id, "");
}


static const char  es_dispute_fmt[] =
    "{\"id\":\"evt_d1\",\"type\":\"%s\",\"livemode\":false,"
    "\"data\":{\"object\":{\"id\":\"dp_1\",\"object\":\"dispute\","
    "\"amount\":1999,\"currency\":\"usd\",\"payment_intent\":\"pi_7\","
    "\"status\":\"%s\",\"reason\":\"fraudulent\"}}}";


Test(events_stripe, dispute_created_opens_a_dispute_found_by_payment)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev;

    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.created",
             "needs_response");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_DISPUTE_OPENED);
    cr_expect_str_eq(ev.object_ref, "dp_1");
    cr_expect_str_eq(ev.payment_ref, "pi_7");
    cr_expect_str_eq(ev.reference, "");
    cr_expect_eq(ev.amount, 1999);
    cr_expect_str_eq(ev.currency, "USD");
}


Test(events_stripe, dispute_closed_won_lost_or_other)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev;

    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.closed",
             "won");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_DISPUTE_WON);

    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.closed",
             "lost");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_DISPUTE_LOST);

    /* a status neither won, lost nor an inquiry's end (Stripe's older
     * API's charge_refunded): nothing to act on */
    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.closed",
             "charge_refunded");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.object_ref, "dp_1");
}


/* An inquiry (Stripe's warning_* statuses) withdraws nothing: recorded
 * about the dispute, nothing opened; its close moves nothing either. */
Test(events_stripe, an_inquiry_created_or_closed_books_nothing)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev;

    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.created",
             "warning_needs_response");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);
    cr_expect_str_eq(ev.object_ref, "dp_1");

    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.created",
             "warning_under_review");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_PENDING);

    /* closed as an inquiry: the dispute's inquiry end, named by the
     * dispute and its payment, so that it is found where the payment is
     * (and a dispute an earlier release held for it given back) */
    snprintf(body, sizeof(body), es_dispute_fmt, "charge.dispute.closed",
             "warning_closed");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_str_eq(pay_event_kind_name(&ev), "DISPUTE_INQUIRY_CLOSED");
    cr_expect_str_eq(ev.object_ref, "dp_1");
    cr_expect_str_eq(ev.payment_ref, "pi_7");
    cr_expect_str_eq(ev.reference, "");
}


/* Stripe withdrawing a dispute's money (a chargeback's, or an inquiry's
 * once escalated) opens it: the same dispute as its created event, which
 * the database books once. */
Test(events_stripe, dispute_funds_withdrawn_opens_the_dispute)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev;

    snprintf(body, sizeof(body), es_dispute_fmt,
             "charge.dispute.funds_withdrawn", "needs_response");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_DISPUTE_OPENED);
    cr_expect_str_eq(ev.object_ref, "dp_1");
    cr_expect_str_eq(ev.payment_ref, "pi_7");
    cr_expect_eq(ev.amount, 1999);
    cr_expect_str_eq(ev.currency, "USD");
}


Test(events_stripe, dispute_without_amount_is_unreadable)
{
    size_t       n;
    pay_event_t  ev;
    const char   body[] =
        "{\"id\":\"evt_d2\",\"type\":\"charge.dispute.created\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"dp_2\","
        "\"currency\":\"usd\",\"payment_intent\":\"pi_7\"}}}";

    cr_expect_eq(es_parse(body, &ev, 1, &n), -1);
}


static const char  es_transfer_fmt[] =
    "{\"id\":\"evt_t1\",\"type\":\"%s\",\"livemode\":false,"
    "\"data\":{\"object\":{\"id\":\"tr_1\",\"object\":\"transfer\","
    "\"amount\":2500,\"currency\":\"eur\",\"destination\":\"acct_1\","
    "\"reversed\":%s,"
    "\"metadata\":{\"nonce\":\"m1:pyo_0123456789abcdef01234567\"}}}}";


Test(events_stripe, transfer_created_is_a_paid_payout)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev;

    snprintf(body, sizeof(body), es_transfer_fmt, "transfer.created",
             "false");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_PAYOUT_PAID);
    cr_expect_str_eq(ev.reference, "m1:pyo_0123456789abcdef01234567");
    cr_expect_str_eq(ev.object_ref, "tr_1");
    cr_expect_eq(ev.amount, 2500);
    cr_expect_str_eq(ev.currency, "EUR");
}


Test(events_stripe, transfer_failed_or_wholly_reversed_is_a_failed_payout)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev;

    snprintf(body, sizeof(body), es_transfer_fmt, "transfer.failed",
             "false");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_PAYOUT_FAILED);

    snprintf(body, sizeof(body), es_transfer_fmt, "transfer.reversed",
             "true");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_PAYOUT_FAILED);

    /* a partial reversal: what was taken back so far, in all, on the
     * pay-out named by its nonce */
    snprintf(body, sizeof(body), es_transfer_fmt, "transfer.reversed",
             "false,\"amount_reversed\":900");
    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_PAYOUT_REVERSED);
    cr_expect_eq(ev.amount, 900);
    cr_expect_str_eq(ev.currency, "EUR");
    cr_expect_str_eq(ev.object_ref, "tr_1");
    cr_expect_str_eq(ev.reference, "m1:pyo_0123456789abcdef01234567");

    /* without what was taken back, it cannot be booked: unreadable */
    snprintf(body, sizeof(body), es_transfer_fmt, "transfer.reversed",
             "false");
    cr_expect_eq(es_parse(body, &ev, 1, &n), -1);
}


Test(events_stripe, transfer_without_currency_is_unreadable)
{
    size_t       n;
    pay_event_t  ev;
    const char   body[] =
        "{\"id\":\"evt_t2\",\"type\":\"transfer.created\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"tr_2\",\"amount\":2500}}}";

    cr_expect_eq(es_parse(body, &ev, 1, &n), -1);
}


Test(events_stripe, paid_session_carries_its_payment_intent)
{
    size_t       n;
    pay_event_t  ev;
    const char   body[] =
        "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
        "\"client_reference_id\":\"m1:co_1\",\"amount_total\":1500,"
        "\"currency\":\"usd\",\"payment_status\":\"paid\","
        "\"payment_intent\":\"pi_3Abc\"}}}";
    const char   null_pi[] =
        "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
        "\"client_reference_id\":\"m1:co_1\",\"amount_total\":1500,"
        "\"currency\":\"usd\",\"payment_status\":\"paid\","
        "\"payment_intent\":null}}}";

    cr_assert_eq(es_parse(body, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.payment_ref, "pi_3Abc");
    cr_expect_str_eq(ev.token, "cs_1");
    cr_expect_str_eq(ev.object_ref, "");

    cr_assert_eq(es_parse(null_pi, &ev, 1, &n), 0);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.payment_ref, "");
}


/* --- through the dialect's webhook entry point ----------------------- */

typedef struct {
    const char  *value;
} es_hdr_t;


static const char *
es_header(void *data, const char *name, size_t *len, unsigned *count)
{
    es_hdr_t  *h = data;

    if (strcasecmp(name, "Stripe-Signature") != 0) {
        *count = 0;
        return NULL;
    }

    *len = strlen(h->value);
    *count = 1;

    return h->value;
}


Test(events_stripe, signed_charge_refunded_gives_the_adapter_two_events)
{
    char                payload[4096], hex[65], hv[128];
    unsigned char       mac[32];
    unsigned int        ml, i;
    size_t              n;
    es_hdr_t            h;
    pay_secret_t        sec;
    pay_event_t         ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_wh_verdict_t    v;
    pay_webhook_conf_t  conf;
    const char          secret[] = "whsec_events";

    snprintf(payload, sizeof(payload), "1700000000.%s", es_charge_refunded);
    HMAC(EVP_sha256(), secret, (int) strlen(secret),
         (unsigned char *) payload, strlen(payload), mac, &ml);
    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", mac[i]);
    }
    snprintf(hv, sizeof(hv), "t=1700000000,v1=%s", hex);

    memset(&conf, 0, sizeof(conf));
    sec.data = (const unsigned char *) secret;
    sec.len = strlen(secret);
    conf.secrets = &sec;
    conf.nsecrets = 1;
    conf.tolerance = 300;
    h.value = hv;

    pay_dialect_stripe.webhook(&conf, es_header, &h, es_charge_refunded,
                               strlen(es_charge_refunded), 1700000000LL, ev,
                               PAY_WEBHOOK_MAX_ITEMS, &n, &v);
    cr_assert_eq(v.err, PAY_ERR_NONE, "%s", v.why);
    cr_expect_eq(n, 2);
    cr_expect_eq(ev[1].kind, PAY_EVT_REFUND_FAILED);

    /* a test refund for a live PSP moves nothing */
    conf.live = 1;
    pay_dialect_stripe.webhook(&conf, es_header, &h, es_charge_refunded,
                               strlen(es_charge_refunded), 1700000000LL, ev,
                               PAY_WEBHOOK_MAX_ITEMS, &n, &v);
    cr_expect_eq(v.reason, PAY_WH_LIVEMODE);
    cr_expect_eq(n, 0);
}


Test(events_stripe, session_lookup_carries_the_payment_intent)
{
    pay_event_t           ev;
    pay_psp_lookup_t      in;
    pay_lookup_outcome_e  out;
    const char            answer[] =
        "{\"id\":\"cs_1\",\"status\":\"complete\","
        "\"payment_status\":\"paid\",\"client_reference_id\":\"m1:co_1\","
        "\"amount_total\":1500,\"currency\":\"usd\","
        "\"payment_intent\":\"pi_L1\"}";

    memset(&in, 0, sizeof(in));
    in.token = "cs_1";
    in.nonce = "m1:co_1";

    out = pay_dialect_stripe.session_lookup_answer(&in, 200, answer,
                                                   strlen(answer), 0, &ev);
    cr_assert_eq(out, PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.payment_ref, "pi_L1");
}


Test(events_stripe, generic_and_adyen_lookups_carry_the_payment_id)
{
    pay_event_t           ev;
    pay_psp_lookup_t      in;
    pay_lookup_outcome_e  out;
    const char            generic[] =
        "{\"token\":\"gs_1\",\"reference\":\"m1:co_1\","
        "\"status\":\"succeeded\",\"amount\":\"1.00\",\"currency\":\"EUR\","
        "\"payment_id\":\"gp_9\"}";
    const char            adyen[] =
        "{\"id\":\"CS1\",\"status\":\"completed\",\"reference\":\"m1:co_1\","
        "\"payments\":[{\"pspReference\":\"REFUSED1\","
        "\"resultCode\":\"Refused\"},{\"pspReference\":\"AUTH1\","
        "\"resultCode\":\"Authorised\"}]}";

    memset(&in, 0, sizeof(in));
    in.token = "gs_1";
    in.nonce = "m1:co_1";
    out = pay_dialect_generic.session_lookup_answer(&in, 200, generic,
                                                    strlen(generic), 0, &ev);
    cr_assert_eq(out, PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.payment_ref, "gp_9");

    in.token = "CS1";
    out = pay_dialect_adyen.session_lookup_answer(&in, 200, adyen,
                                                  strlen(adyen), 0, &ev);
    cr_assert_eq(out, PAY_LOOKUP_DECIDED);
    cr_expect_str_eq(ev.payment_ref, "AUTH1");
}


/* What the gateway deliberately does not act on (Stripe's current
 * charge.refunded without its refunds list, a dispute's money given back
 * (its close books it) and progress, a charge's or a payment intent's news): IGNORED about its
 * object, so that it is recorded as ignored and no checkout is looked for
 * (as a session's event it was unknown_checkout, alerted). */
Test(events_stripe, ignored_types_are_about_their_object_not_a_checkout)
{
    char         body[1024];
    size_t       i, n;
    pay_event_t  ev[4];
    const char  *types[][2] = {
        { "charge.refunded", "ch_1" },
        { "charge.dispute.funds_reinstated", "du_1" },
        { "charge.dispute.updated", "du_1" },
        { "charge.succeeded", "ch_1" },
        { "payment_intent.succeeded", "pi_1" },
        { "customer.created", "cus_1" },
    };

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"id\":\"evt_i%zu\",\"type\":\"%s\",\"livemode\":false,"
                 "\"data\":{\"object\":{\"id\":\"%s\",\"amount\":500,"
                 "\"currency\":\"usd\",\"payment_intent\":\"pi_1\"}}}", i,
                 types[i][0], types[i][1]);
        cr_assert_eq(es_parse(body, ev, 4, &n), 0, "%s", types[i][0]);
        cr_assert_eq(n, 1);
        cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED, "%s", types[i][0]);
        cr_expect_str_eq(ev[0].object_ref, types[i][1], "%s", types[i][0]);
        cr_expect_str_eq(ev[0].token, "", "%s", types[i][0]);
    }

    /* an object without an id: about the event */
    cr_assert_eq(es_parse("{\"id\":\"evt_i9\",\"type\":\"charge.refunded\","
                          "\"livemode\":false,\"data\":{\"object\":{}}}",
                          ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].object_ref, "evt_i9");
}


/* A session's other events still name the session: looked up by it. */
Test(events_stripe, other_session_types_are_looked_up_by_the_session)
{
    size_t       n;
    pay_event_t  ev[4];
    const char   body[] =
        "{\"id\":\"evt_s1\",\"type\":\"checkout.session.created\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
        "\"client_reference_id\":\"m1:co_1\"}}}";

    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].token, "cs_1");
    cr_expect_str_eq(ev[0].object_ref, "");
}


/* refund.failed and charge.refund.updated carry a refund, as
 * refund.updated does. */
Test(events_stripe, refund_failed_and_charge_refund_updated_carry_a_refund)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev[4];

    snprintf(body, sizeof(body), es_refund_fmt, "refund.failed", "failed");
    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_FAILED);
    cr_expect_str_eq(ev[0].object_ref, "re_1");
    cr_expect_str_eq(ev[0].reference, "m1:rf_0123456789abcdef01234567");

    snprintf(body, sizeof(body), es_refund_fmt, "charge.refund.updated",
             "succeeded");
    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_SUCCEEDED);
    cr_expect_str_eq(ev[0].object_ref, "re_1");
}


static const char  es_pi_fmt[] =
    "{\"id\":\"evt_a1\",\"type\":\"payment_intent.amount_capturable_updated\","
    "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_9\","
    "\"object\":\"payment_intent\",\"amount\":1500,"
    "\"amount_capturable\":1500,\"amount_received\":0,"
    "\"capture_method\":\"manual\",\"currency\":\"usd\",\"status\":\"%s\","
    "\"metadata\":{%s}}}}";


/* the intent holds the money: AUTHORIZED, found by the nonce on it */
Test(events_stripe, amount_capturable_updated_is_a_hold_of_our_nonce)
{
    char         body[1024];
    size_t       n;
    pay_event_t  ev[4];

    snprintf(body, sizeof(body), es_pi_fmt, "requires_capture",
             "\"nonce\":\"m1:co_1\"");
    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_AUTHORIZED);
    cr_expect_str_eq(ev[0].reference, "m1:co_1");
    cr_expect_str_eq(ev[0].payment_ref, "pi_9");
    cr_expect_eq(ev[0].amount, 1500);
    cr_expect_str_eq(ev[0].currency, "USD");
    cr_expect_str_eq(ev[0].object_ref, "");

    /* another status, or no nonce of ours: news of an intent, ignored */
    snprintf(body, sizeof(body), es_pi_fmt, "succeeded",
             "\"nonce\":\"m1:co_1\"");
    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].reference, "");
    cr_expect_str_eq(ev[0].object_ref, "pi_9");

    snprintf(body, sizeof(body), es_pi_fmt, "requires_capture", "");
    cr_assert_eq(es_parse(body, ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
}


/* the intent captured (our capture's nonce in its metadata, else the
 * checkout's) or cancelled (the checkout's nonce): CAPTURE_SUCCEEDED of
 * amount_received, or VOID_SUCCEEDED; an intent of no checkout of ours is
 * ignored */
Test(events_stripe, intent_succeeded_and_canceled_end_a_hold)
{
    size_t       n;
    pay_event_t  ev[4];

    cr_assert_eq(es_parse("{\"id\":\"evt_c1\",\"type\":"
                          "\"payment_intent.succeeded\",\"livemode\":false,"
                          "\"data\":{\"object\":{\"id\":\"pi_9\","
                          "\"amount_received\":700,\"currency\":\"usd\","
                          "\"status\":\"succeeded\",\"metadata\":{\"nonce\":"
                          "\"m1:co_1\",\"capture\":\"m1:cp_1\"}}}}",
                          ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_CAPTURE_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m1:cp_1");
    cr_expect_str_eq(ev[0].object_ref, "pi_9");
    cr_expect_eq(ev[0].amount, 700);

    cr_assert_eq(es_parse("{\"id\":\"evt_c2\",\"type\":"
                          "\"payment_intent.canceled\",\"livemode\":false,"
                          "\"data\":{\"object\":{\"id\":\"pi_9\","
                          "\"currency\":\"usd\",\"status\":\"canceled\","
                          "\"metadata\":{\"nonce\":\"m1:co_1\"}}}}",
                          ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_VOID_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m1:co_1");

    cr_assert_eq(es_parse("{\"id\":\"evt_c3\",\"type\":"
                          "\"payment_intent.succeeded\",\"livemode\":false,"
                          "\"data\":{\"object\":{\"id\":\"pi_8\","
                          "\"amount_received\":700,\"currency\":\"usd\","
                          "\"status\":\"succeeded\",\"metadata\":{}}}}",
                          ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].reference, "");

    /* captured at Stripe's dashboard: no capture of ours, the checkout's
     * nonce; the database books it as a capture made outside the API */
    cr_assert_eq(es_parse("{\"id\":\"evt_c4\",\"type\":"
                          "\"payment_intent.succeeded\",\"livemode\":false,"
                          "\"data\":{\"object\":{\"id\":\"pi_7\","
                          "\"amount_received\":600,\"currency\":\"usd\","
                          "\"status\":\"succeeded\",\"metadata\":{\"nonce\":"
                          "\"m1:co_1\"}}}}", ev, 4, &n), 0);
    cr_expect_eq(ev[0].kind, PAY_EVT_CAPTURE_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m1:co_1");
    cr_expect_str_eq(ev[0].object_ref, "pi_7");
    cr_expect_str_eq(ev[0].payment_ref, "pi_7");
    cr_expect_eq(ev[0].amount, 600);
}
