/*
 * Stripe webhook verification and event reading (PSP_FACTS.md vectors).
 */

#include <criterion/criterion.h>
#include <string.h>
#include <payments/webhook.h>


#define VEC_SECRET  "whsec_test_secret_123"
#define VEC_T       1700000000
#define VEC_V1      "67cdb9dd841bf9c50df01f0b8d50e5f88e8952d0fc1b525ec972e3444bb838d4"


static pay_secret_t  vec_secret[] = {
    { (const unsigned char *) VEC_SECRET, sizeof(VEC_SECRET) - 1 }
};


static pay_err_e
verify(const char *header, const char *body, int64_t now)
{
    return pay_stripe_verify(header, strlen(header), body, strlen(body),
                             vec_secret, 1, now, 300);
}


Test(stripe_verify, accepts_the_psp_facts_vector)
{
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hello", VEC_T),
                 PAY_ERR_NONE);
}


Test(stripe_verify, refuses_a_tampered_body)
{
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hellO", VEC_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, refuses_a_tampered_timestamp)
{
    cr_assert_eq(verify("t=1700000001,v1=" VEC_V1, "hello", VEC_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, refuses_another_secret)
{
    pay_secret_t  other[] = { { (const unsigned char *) "whsec_other", 11 } };

    cr_assert_eq(pay_stripe_verify("t=1700000000,v1=" VEC_V1, 80, "hello", 5,
                                   other, 1, VEC_T, 300),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, accepts_one_valid_v1_among_several)
{
    cr_assert_eq(verify("t=1700000000,v1=0000000000000000000000000000000000000"
                        "000000000000000000000000000,v1=" VEC_V1 ",v0=abc",
                        "hello", VEC_T), PAY_ERR_NONE);
}


Test(stripe_verify, accepts_either_secret_while_rolling)
{
    pay_secret_t  two[] = {
        { (const unsigned char *) "whsec_new_one", 13 },
        { (const unsigned char *) VEC_SECRET, sizeof(VEC_SECRET) - 1 }
    };

    cr_assert_eq(pay_stripe_verify("t=1700000000,v1=" VEC_V1, 80, "hello", 5,
                                   two, 2, VEC_T, 300), PAY_ERR_NONE);
}


Test(stripe_verify, refuses_a_header_with_only_v0)
{
    cr_assert_eq(verify("t=1700000000,v0=" VEC_V1, "hello", VEC_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, refuses_upper_case_hex)
{
    cr_assert_eq(verify("t=1700000000,v1=67CDB9DD841BF9C50DF01F0B8D50E5F88E8"
                        "952D0FC1B525EC972E3444BB838D4", "hello", VEC_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, refuses_a_missing_or_malformed_timestamp)
{
    cr_assert_eq(verify("v1=" VEC_V1, "hello", VEC_T), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(verify("t=17e8,v1=" VEC_V1, "hello", VEC_T),
                 PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(verify("t=,v1=" VEC_V1, "hello", VEC_T),
                 PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(verify("t=1700000000,t=1700000000,v1=" VEC_V1, "hello",
                        VEC_T), PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, refuses_an_empty_header_and_an_empty_secret_list)
{
    cr_assert_eq(verify("", "hello", VEC_T), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(pay_stripe_verify("t=1700000000,v1=" VEC_V1, 80, "hello", 5,
                                   vec_secret, 0, VEC_T, 300),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(stripe_verify, accepts_a_timestamp_exactly_300_s_old_or_ahead)
{
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hello", VEC_T + 300),
                 PAY_ERR_NONE);
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hello", VEC_T - 300),
                 PAY_ERR_NONE);
}


Test(stripe_verify, refuses_a_timestamp_301_s_old)
{
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hello", VEC_T + 301),
                 PAY_ERR_STALE_WEBHOOK);
}


Test(stripe_verify, refuses_a_timestamp_301_s_in_the_future)
{
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hello", VEC_T - 301),
                 PAY_ERR_STALE_WEBHOOK);
}


Test(stripe_verify, a_bad_signature_wins_over_staleness)
{
    /* nothing about an unauthenticated request is trusted, its age neither */
    cr_assert_eq(verify("t=1700000000,v1=" VEC_V1, "hellO", VEC_T + 1000),
                 PAY_ERR_BAD_SIGNATURE);
}


#define SESSION(type, status, amount, live) \
    "{\"id\":\"evt_1\",\"type\":\"" type "\",\"livemode\":" live "," \
    "\"data\":{\"object\":{\"id\":\"cs_test_1\",\"client_reference_id\":" \
    "\"m1:co_1\",\"amount_total\":" amount ",\"currency\":\"usd\"," \
    "\"payment_status\":\"" status "\"}}}"


static pay_event_t
parse(const char *body)
{
    pay_event_t  ev;

    cr_assert_eq(pay_stripe_parse_event(body, strlen(body), &ev), 0, "%s",
                 body);
    return ev;
}


Test(stripe_event, reads_a_paid_completion)
{
    pay_event_t  ev;

    ev = parse(SESSION("checkout.session.completed", "paid", "1500", "false"));
    cr_assert_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_assert_str_eq(ev.event_id, "evt_1");
    cr_assert_str_eq(ev.token, "cs_test_1");
    cr_assert_str_eq(ev.reference, "m1:co_1");
    cr_assert_eq(ev.amount, 1500);
    cr_assert_str_eq(ev.currency, "USD");
    cr_assert_eq(ev.livemode, 0);
}


Test(stripe_event, an_unpaid_completion_is_pending)
{
    cr_assert_eq(parse(SESSION("checkout.session.completed", "unpaid", "1",
                               "false")).kind, PAY_EVT_PENDING);
}


Test(stripe_event, async_results_and_expiry_are_read)
{
    cr_assert_eq(parse(SESSION("checkout.session.async_payment_succeeded",
                               "paid", "1", "false")).kind,
                 PAY_EVT_SUCCEEDED);
    cr_assert_eq(parse(SESSION("checkout.session.async_payment_failed",
                               "unpaid", "1", "false")).kind, PAY_EVT_FAILED);
    cr_assert_eq(parse(SESSION("checkout.session.expired", "unpaid", "1",
                               "false")).kind, PAY_EVT_FAILED);
}


Test(stripe_event, other_types_are_ignored)
{
    cr_assert_eq(parse(SESSION("charge.refunded", "paid", "1",
                               "true")).kind, PAY_EVT_IGNORED);
}


Test(stripe_event, livemode_is_read)
{
    cr_assert_eq(parse(SESSION("checkout.session.completed", "paid", "1",
                               "true")).livemode, 1);
}


Test(stripe_event, refuses_duplicate_keys_and_non_events)
{
    pay_event_t  ev;
    const char  *dup = "{\"id\":\"evt_1\",\"id\":\"evt_2\",\"type\":\"x\","
                       "\"data\":{\"object\":{}}}";

    cr_assert_eq(pay_stripe_parse_event(dup, strlen(dup), &ev), -1);
    cr_assert_eq(pay_stripe_parse_event("[]", 2, &ev), -1);
    cr_assert_eq(pay_stripe_parse_event("{\"id\":\"e\",\"type\":\"t\"}", 22,
                                        &ev), -1);
    cr_assert_eq(pay_stripe_parse_event("{", 1, &ev), -1);
}
