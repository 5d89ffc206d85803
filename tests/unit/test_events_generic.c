/*
 * Unit tests: the generic dialect's events of the money after "paid"
 * (issue 10), read after verification (pay_generic_parse_event).
 */

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/webhook.h>


static int
eg_parse(const char *body, pay_event_t *ev)
{
    return pay_generic_parse_event(body, strlen(body), ev);
}


Test(events_generic, payment_succeeded_carries_payment_id)
{
    pay_event_t  ev;
    const char   body[] =
        "{\"event_id\":\"e1\",\"type\":\"payment.succeeded\","
        "\"reference\":\"m1:co_1\",\"token\":\"gs_1\",\"amount\":\"12.34\","
        "\"currency\":\"EUR\",\"payment_id\":\"gp_1\"}";

    cr_assert_eq(eg_parse(body, &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev.payment_ref, "gp_1");
    cr_expect_str_eq(ev.object_ref, "");
}


/* The money types besides a payment's: the member naming each one's
 * object, and its kind. */
static const struct {
    const char        *type;
    const char        *id_field;
    pay_event_kind_e   kind;
} eg_money_types[] = {
    { "refund.succeeded", "refund_id", PAY_EVT_REFUND_SUCCEEDED },
    { "refund.failed", "refund_id", PAY_EVT_REFUND_FAILED },
    { "dispute.opened", "dispute_id", PAY_EVT_DISPUTE_OPENED },
    { "dispute.won", "dispute_id", PAY_EVT_DISPUTE_WON },
    { "dispute.lost", "dispute_id", PAY_EVT_DISPUTE_LOST },
    { "payout.paid", "payout_id", PAY_EVT_PAYOUT_PAID },
    { "payout.failed", "payout_id", PAY_EVT_PAYOUT_FAILED },
    { "capture.succeeded", "capture_id", PAY_EVT_CAPTURE_SUCCEEDED },
    { "capture.failed", "capture_id", PAY_EVT_CAPTURE_FAILED },
};

#define EG_NMONEY_TYPES  (sizeof(eg_money_types) / sizeof(eg_money_types[0]))


Test(events_generic, each_new_type_has_its_kind_and_object)
{
    char         body[512];
    size_t       i;
    pay_event_t  ev;

    for (i = 0; i < EG_NMONEY_TYPES; i++) {
        snprintf(body, sizeof(body),
                 "{\"event_id\":\"e%zu\",\"type\":\"%s\","
                 "\"reference\":\"m1:rf_1\",\"amount\":\"4.00\","
                 "\"currency\":\"EUR\",\"payment_id\":\"gp_1\","
                 "\"%s\":\"obj_%zu\"}", i, eg_money_types[i].type, eg_money_types[i].id_field,
                 i);
        cr_assert_eq(eg_parse(body, &ev), 0, "%s", eg_money_types[i].type);
        cr_expect_eq(ev.kind, eg_money_types[i].kind, "%s", eg_money_types[i].type);
        cr_expect_eq(ev.amount, 400);
        cr_expect_str_eq(ev.currency, "EUR");
        cr_expect_str_eq(ev.reference, "m1:rf_1");
        cr_expect_str_eq(ev.payment_ref, "gp_1");
        cr_expect_eq(strncmp(ev.object_ref, "obj_", 4), 0, "%s",
                     eg_money_types[i].type);
    }
}


Test(events_generic, object_ref_follows_the_type_not_any_id_present)
{
    pay_event_t  ev;
    const char   body[] =
        "{\"event_id\":\"e1\",\"type\":\"refund.succeeded\","
        "\"reference\":\"m1:rf_1\",\"amount\":\"4.00\",\"currency\":\"EUR\","
        "\"payout_id\":\"po_x\",\"dispute_id\":\"dp_x\"}";

    cr_assert_eq(eg_parse(body, &ev), 0);
    cr_expect_str_eq(ev.object_ref, "");
}


/* Every authentic event is kept (doc/API.md, Webhooks): a refund's, a
 * dispute's, a pay-out's or a capture's event whose money cannot be read
 * keeps its kind and object, with its amount absent or inexact, and the
 * database answers amount_mismatch for it. */
Test(events_generic, money_types_without_a_readable_amount_keep_their_kind_and_object)
{
    static const struct {
        const char  *money;         /* the members after the ids */
        int64_t      amount;
        const char  *currency;
    } money[] = {
        { "", PAY_EVT_AMOUNT_ABSENT, "" },
        { ",\"currency\":\"EUR\"", PAY_EVT_AMOUNT_ABSENT, "EUR" },
        { ",\"amount\":\"4.00\"", PAY_EVT_AMOUNT_INEXACT, "" },
        { ",\"amount\":\"4.001\",\"currency\":\"EUR\"",
          PAY_EVT_AMOUNT_INEXACT, "EUR" },
        { ",\"amount\":400,\"currency\":\"EUR\"", PAY_EVT_AMOUNT_INEXACT,
          "EUR" },
        { ",\"amount\":\"4.00\",\"currency\":\"EU\"", PAY_EVT_AMOUNT_INEXACT,
          "" },
    };
    char         body[512];
    size_t       i, j;
    pay_event_t  ev;

    for (i = 0; i < EG_NMONEY_TYPES; i++) {
        for (j = 0; j < sizeof(money) / sizeof(money[0]); j++) {
            snprintf(body, sizeof(body),
                     "{\"event_id\":\"e%zu\",\"type\":\"%s\","
                     "\"reference\":\"m1:rf_1\",\"payment_id\":\"gp_1\","
                     "\"%s\":\"obj_%zu\"%s}", i, eg_money_types[i].type,
                     eg_money_types[i].id_field, i, money[j].money);
            cr_assert_eq(eg_parse(body, &ev), 0, "%s", body);
            cr_expect_eq(ev.kind, eg_money_types[i].kind, "%s", body);
            cr_expect_eq(ev.amount, money[j].amount, "%s", body);
            cr_expect_str_eq(ev.currency, money[j].currency, "%s", body);
            cr_expect_str_eq(ev.reference, "m1:rf_1", "%s", body);
            cr_expect_str_eq(ev.payment_ref, "gp_1", "%s", body);
            cr_expect_eq(strncmp(ev.object_ref, "obj_", 4), 0, "%s", body);
        }
    }
}


/* What moves no money is kept as well when its amount is unreadable: a
 * void names none, an ignored type is recorded by its type. */
Test(events_generic, an_unreadable_amount_does_not_refuse_an_event_that_moves_no_money)
{
    pay_event_t  ev;

    cr_assert_eq(eg_parse("{\"event_id\":\"e1\",\"type\":\"void.succeeded\","
                          "\"reference\":\"m1:vd_1\",\"void_id\":\"gvd_1\","
                          "\"amount\":\"1.234\",\"currency\":\"EUR\"}", &ev),
                 0);
    cr_expect_eq(ev.kind, PAY_EVT_VOID_SUCCEEDED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);

    cr_assert_eq(eg_parse("{\"event_id\":\"e2\",\"type\":\"refund.pending\","
                          "\"refund_id\":\"gr_1\",\"amount\":4}", &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.object_ref, "gr_1");
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_INEXACT);
}


Test(events_generic, ids_must_be_strings_that_fit)
{
    char         body[512], big[200];
    pay_event_t  ev;

    cr_expect_eq(eg_parse("{\"event_id\":\"e1\",\"type\":\"payout.paid\","
                          "\"amount\":\"4.00\",\"currency\":\"EUR\","
                          "\"payout_id\":7}", &ev), -1);

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(body, sizeof(body),
             "{\"event_id\":\"e1\",\"type\":\"payout.paid\","
             "\"amount\":\"4.00\",\"currency\":\"EUR\",\"payout_id\":\"%s\"}",
             big);
    cr_expect_eq(eg_parse(body, &ev), -1);
}


Test(events_generic, dispute_reference_is_optional)
{
    pay_event_t  ev;
    const char   body[] =
        "{\"event_id\":\"e1\",\"type\":\"dispute.lost\","
        "\"amount\":\"10.00\",\"currency\":\"USD\",\"payment_id\":\"gp_1\","
        "\"dispute_id\":\"gd_1\"}";

    cr_assert_eq(eg_parse(body, &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_DISPUTE_LOST);
    cr_expect_str_eq(ev.reference, "");
    cr_expect_str_eq(ev.object_ref, "gd_1");
    cr_expect_eq(ev.amount, 1000);
}


/* A type the gateway does not act on that is not a payment's (a refund's,
 * a dispute's or a pay-out's progress, or news of nothing of ours):
 * IGNORED about its object (the id member of its kind, else the event),
 * so that it is recorded as ignored and no checkout is looked for; a
 * payment's other types still name the checkout. */
Test(events_generic, ignored_types_are_about_their_object_not_a_checkout)
{
    pay_event_t  ev;

    cr_assert_eq(eg_parse("{\"event_id\":\"e1\",\"type\":\"refund.pending\","
                          "\"reference\":\"m1:rf_1\",\"refund_id\":\"gr_1\","
                          "\"amount\":\"4.00\",\"currency\":\"EUR\"}", &ev),
                 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.object_ref, "gr_1");

    cr_assert_eq(eg_parse("{\"event_id\":\"e2\",\"type\":"
                          "\"dispute.funds_withdrawn\",\"dispute_id\":"
                          "\"gd_1\",\"payment_id\":\"gp_1\"}", &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.object_ref, "gd_1");

    cr_assert_eq(eg_parse("{\"event_id\":\"e3\",\"type\":\"report.ready\"}",
                          &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.object_ref, "e3");

    cr_assert_eq(eg_parse("{\"event_id\":\"e4\",\"type\":\"payment.pending\","
                          "\"reference\":\"m1:co_1\",\"token\":\"gs_1\"}",
                          &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.object_ref, "");
    cr_expect_str_eq(ev.reference, "m1:co_1");
}


Test(events_generic, payment_authorized_is_a_hold_with_its_payment)
{
    pay_event_t  ev;
    const char   body[] =
        "{\"event_id\":\"e9\",\"type\":\"payment.authorized\","
        "\"reference\":\"m1:co_1\",\"token\":\"gs_1\",\"amount\":\"12.34\","
        "\"currency\":\"EUR\",\"payment_id\":\"gp_1\"}";

    cr_assert_eq(eg_parse(body, &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_AUTHORIZED);
    cr_expect_str_eq(ev.payment_ref, "gp_1");
    cr_expect_str_eq(ev.reference, "m1:co_1");
    cr_expect_eq(ev.amount, 1234);
    cr_expect_str_eq(ev.object_ref, "");
}


Test(events_generic, captures_and_voids_have_their_kinds_and_objects)
{
    pay_event_t  ev;

    cr_assert_eq(eg_parse("{\"event_id\":\"e1\",\"type\":\"capture.succeeded\","
                          "\"reference\":\"m1:cp_1\",\"capture_id\":\"gcp_1\","
                          "\"payment_id\":\"gp_1\",\"amount\":\"4.00\","
                          "\"currency\":\"EUR\"}", &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_CAPTURE_SUCCEEDED);
    cr_expect_str_eq(ev.object_ref, "gcp_1");
    cr_expect_str_eq(ev.payment_ref, "gp_1");
    cr_expect_eq(ev.amount, 400);

    /* a capture moves money: without its amount it is kept, and the
     * database refuses to book it (capture_event_apply) */
    cr_assert_eq(eg_parse("{\"event_id\":\"e2\",\"type\":\"capture.failed\","
                          "\"reference\":\"m1:cp_1\",\"capture_id\":\"gcp_1\"}",
                          &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_CAPTURE_FAILED);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);

    /* a void releases, it books nothing: no amount needed */
    cr_assert_eq(eg_parse("{\"event_id\":\"e3\",\"type\":\"void.succeeded\","
                          "\"reference\":\"m1:vd_1\",\"void_id\":\"gvd_1\","
                          "\"payment_id\":\"gp_1\"}", &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_VOID_SUCCEEDED);
    cr_expect_str_eq(ev.object_ref, "gvd_1");

    cr_assert_eq(eg_parse("{\"event_id\":\"e4\",\"type\":\"void.failed\","
                          "\"reference\":\"m1:vd_1\",\"void_id\":\"gvd_1\"}",
                          &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_VOID_FAILED);
}


/* A capture's event names the PSP's capture (doc/PSPS.md, "Manual
 * capture"): without capture_id nothing tells a second capture from the
 * same one delivered again under another event_id, so the event is not
 * readable (400, kept unread and alerted), never booked. */
Test(events_generic, a_capture_without_its_capture_id_is_not_readable)
{
    pay_event_t  ev;

    cr_expect_eq(eg_parse("{\"event_id\":\"e1\",\"type\":\"capture.succeeded\","
                          "\"reference\":\"m1:co_1\",\"payment_id\":\"gp_1\","
                          "\"amount\":\"4.01\",\"currency\":\"EUR\"}", &ev), -1);
    cr_expect_eq(eg_parse("{\"event_id\":\"e2\",\"type\":\"capture.succeeded\","
                          "\"reference\":\"m1:co_1\",\"payment_id\":\"gp_1\","
                          "\"capture_id\":\"\",\"amount\":\"4.01\","
                          "\"currency\":\"EUR\"}", &ev), -1);
    cr_expect_eq(eg_parse("{\"event_id\":\"e3\",\"type\":\"capture.failed\","
                          "\"reference\":\"m1:co_1\",\"payment_id\":\"gp_1\","
                          "\"amount\":\"4.01\",\"currency\":\"EUR\"}", &ev), -1);
}
