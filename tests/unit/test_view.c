/*
 * Unit tests: the merchant API's JSON bodies (src/view.c).
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/view.h>


typedef struct {
    pay_order_t              orders[2];
    pay_checkout_t           co;
    pay_registration_view_t  v;
} vw_fixture_t;


static void
vw_fixture(vw_fixture_t *f, const char *currency, int exponent)
{
    memset(f, 0, sizeof(*f));

    strcpy(f->orders[0].id, "po_1");
    strcpy(f->orders[0].seller, "seller_42");
    f->orders[0].amount = 1000;
    strcpy(f->orders[1].id, "po_2");
    strcpy(f->orders[1].seller, "seller_77");
    f->orders[1].amount = 500;

    strcpy(f->co.checkout_id, "co_7f3a");
    strcpy(f->co.psp, "stripe");
    strcpy(f->co.currency, currency);
    f->co.exponent = exponent;
    f->co.total = 1500;
    f->co.norders = 2;
    f->co.orders = f->orders;

    f->v.co = &f->co;
    f->v.status = "EXECUTING";
    f->v.psp_token = "cs_test_a1";
    f->v.expires_at = 1795341600;
    f->v.pay_url = "https://gw.example/v1/checkouts/co_7f3a/pay?t=x.y.z";
    f->v.failure = NULL;
}


static char *
vw_order(const char *db)
{
    return pay_order_view_json(db, strlen(db));
}


static char *
vw_checkout(const char *db, const char *pay_url)
{
    return pay_checkout_view_json(db, strlen(db), pay_url);
}


Test(view, registration_field_order_as_api)
{
    char          *s;
    vw_fixture_t   f;

    vw_fixture(&f, "USD", 2);
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"checkout_id\":\"co_7f3a\",\"status\":\"EXECUTING\","
        "\"is_payment_done\":false,\"psp\":\"stripe\",\"capture\":\"automatic\","
        "\"psp_token\":\"cs_test_a1\",\"expires_at\":\"2026-11-22T10:00:00Z\","
        "\"pay_url\":\"https://gw.example/v1/checkouts/co_7f3a/pay?t=x.y.z\","
        "\"metadata\":{},\"payment_orders\":["
        "{\"payment_order_id\":\"po_1\",\"seller_account\":\"seller_42\","
        "\"amount\":\"10.00\",\"currency\":\"USD\",\"status\":\"EXECUTING\"},"
        "{\"payment_order_id\":\"po_2\",\"seller_account\":\"seller_77\","
        "\"amount\":\"5.00\",\"currency\":\"USD\",\"status\":\"EXECUTING\"}"
        "]}");
    free(s);
}


Test(view, registration_is_deterministic)
{
    char          *a, *b;
    vw_fixture_t   f;

    vw_fixture(&f, "USD", 2);
    a = pay_registration_json(&f.v);
    b = pay_registration_json(&f.v);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}


Test(view, registration_failed_has_failure)
{
    char          *s;
    vw_fixture_t   f;

    vw_fixture(&f, "USD", 2);
    f.v.status = "FAILED";
    f.v.psp_token = NULL;
    f.v.pay_url = NULL;
    f.v.failure = "Amount must be at least $0.50 usd";
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"checkout_id\":\"co_7f3a\",\"status\":\"FAILED\","
        "\"is_payment_done\":false,\"psp\":\"stripe\",\"capture\":\"automatic\","
        "\"expires_at\":\"2026-11-22T10:00:00Z\","
        "\"failure\":{\"code\":\"registration_refused\","
        "\"message\":\"Amount must be at least $0.50 usd\"},"
        "\"metadata\":{},\"payment_orders\":["
        "{\"payment_order_id\":\"po_1\",\"seller_account\":\"seller_42\","
        "\"amount\":\"10.00\",\"currency\":\"USD\",\"status\":\"FAILED\"},"
        "{\"payment_order_id\":\"po_2\",\"seller_account\":\"seller_77\","
        "\"amount\":\"5.00\",\"currency\":\"USD\",\"status\":\"FAILED\"}"
        "]}");
    free(s);
}


Test(view, registration_failure_only_when_failed)
{
    char          *s;
    vw_fixture_t   f;

    vw_fixture(&f, "USD", 2);
    f.v.failure = "stale reason";
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "failure"), "%s", s);
    free(s);
}


Test(view, registration_omits_null_token_and_pay_url)
{
    char          *s;
    vw_fixture_t   f;

    vw_fixture(&f, "USD", 2);
    f.v.psp_token = NULL;
    f.v.pay_url = NULL;
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "psp_token"), "%s", s);
    cr_expect_null(strstr(s, "pay_url"), "%s", s);
    cr_expect_null(strstr(s, "null"), "%s", s);
    free(s);
}


Test(view, registration_amounts_use_currency_exponent)
{
    char          *s;
    vw_fixture_t   f;

    vw_fixture(&f, "JPY", 0);
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"amount\":\"1000\",\"currency\":\"JPY\""),
                       "%s", s);
    free(s);

    /* the table's exponent, not the struct's */
    vw_fixture(&f, "KWD", 2);
    f.orders[1].amount = 5;
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"amount\":\"1.000\""), "%s", s);
    cr_expect_not_null(strstr(s, "\"amount\":\"0.005\""), "%s", s);
    free(s);
}


Test(view, registration_rejects_bad_input)
{
    vw_fixture_t  f;

    vw_fixture(&f, "USD", 2);
    f.v.status = "SUCCESS";
    cr_expect_null(pay_registration_json(&f.v));

    vw_fixture(&f, "USD", 2);
    f.v.status = NULL;
    cr_expect_null(pay_registration_json(&f.v));

    vw_fixture(&f, "XYZ", 2);
    cr_expect_null(pay_registration_json(&f.v));

    vw_fixture(&f, "USD", 2);
    f.co.norders = 0;
    cr_expect_null(pay_registration_json(&f.v));

    vw_fixture(&f, "USD", 2);
    f.v.expires_at = 0;
    cr_expect_null(pay_registration_json(&f.v));

    vw_fixture(&f, "USD", 2);
    f.orders[0].amount = 0;
    cr_expect_null(pay_registration_json(&f.v));

    cr_expect_null(pay_registration_json(NULL));
}


#define VW_ORDER \
    "{\"payment_order_id\":\"po_1\",\"checkout_id\":\"co_7f3a\"," \
    "\"status\":\"EXECUTING\",\"amount_minor\":1050,\"currency\":\"USD\"," \
    "\"seller_account\":\"seller_42\",\"psp\":\"stripe\"," \
    "\"psp_token\":\"cs_test_a1\",\"created_at\":\"2026-11-22T09:00:00Z\"," \
    "\"updated_at\":\"2026-11-22T09:00:01Z\"}"


Test(view, order_amount_minor_becomes_amount)
{
    char  *s;

    s = vw_order(VW_ORDER);
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"payment_order_id\":\"po_1\",\"checkout_id\":\"co_7f3a\","
        "\"status\":\"EXECUTING\",\"amount\":\"10.50\",\"currency\":\"USD\","
        "\"seller_account\":\"seller_42\",\"psp\":\"stripe\","
        "\"psp_token\":\"cs_test_a1\",\"created_at\":\"2026-11-22T09:00:00Z\","
        "\"updated_at\":\"2026-11-22T09:00:01Z\","
        "\"refunds\":[],\"disputes\":[]}");
    free(s);
}


Test(view, order_epoch_times_formatted)
{
    char  *s;

    s = vw_order("{\"payment_order_id\":\"po_1\",\"checkout_id\":\"c\","
                 "\"status\":\"SUCCESS\",\"amount_minor\":5,"
                 "\"currency\":\"JPY\",\"seller_account\":\"s\","
                 "\"psp\":\"p\",\"psp_token\":null,"
                 "\"created_at\":1795341600,\"updated_at\":1795341601}");
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"payment_order_id\":\"po_1\",\"checkout_id\":\"c\","
        "\"status\":\"SUCCESS\",\"amount\":\"5\",\"currency\":\"JPY\","
        "\"seller_account\":\"s\",\"psp\":\"p\",\"psp_token\":null,"
        "\"created_at\":\"2026-11-22T10:00:00Z\","
        "\"updated_at\":\"2026-11-22T10:00:01Z\","
        "\"refunds\":[],\"disputes\":[]}");
    free(s);
}


Test(view, order_internal_fields_not_passed_through)
{
    char  *s;

    s = vw_order("{\"merchant_id\":\"m_1\",\"payment_order_id\":\"po_1\","
                 "\"checkout_id\":\"co_7f3a\",\"status\":\"EXECUTING\","
                 "\"amount_minor\":1050,\"currency\":\"USD\","
                 "\"seller_account\":\"seller_42\",\"psp\":\"stripe\","
                 "\"psp_token\":\"cs_test_a1\",\"created_at\":\"t1\","
                 "\"updated_at\":\"t2\",\"psp_url\":\"https://secret/\"}");
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "merchant_id"), "%s", s);
    cr_expect_null(strstr(s, "psp_url"), "%s", s);
    cr_expect_null(strstr(s, "amount_minor"), "%s", s);
    free(s);
}


Test(view, order_unexpected_shape_is_null)
{
    size_t              i;
    static const char  *bad[] = {
        "", "null", "[]", "\"x\"", "{", "{}",
        /* each field missing or mistyped in turn */
        "{\"checkout_id\":\"c\",\"status\":\"EXECUTING\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"DONE\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":\"1\","
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1.5,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":-1,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1,"
        "\"currency\":\"usd\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":7,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":true,\"updated_at\":\"b\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\"}",
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"seller_account\":\"\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
        /* duplicate key */
        "{\"payment_order_id\":\"po\",\"checkout_id\":\"c\","
        "\"status\":\"EXECUTING\",\"amount_minor\":1,\"amount_minor\":2,"
        "\"currency\":\"USD\",\"seller_account\":\"s\",\"psp\":\"p\","
        "\"psp_token\":null,\"created_at\":\"a\",\"updated_at\":\"b\"}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_null(vw_order(bad[i]), "accepted #%zu", i);
    }

    cr_expect_null(pay_order_view_json(NULL, 10));
}


#define VW_CHECKOUT(status, failure, events) \
    "{\"checkout_id\":\"co_7f3a\",\"status\":\"" status "\"," \
    "\"psp\":\"stripe\",\"psp_token\":\"cs_test_a1\"," \
    "\"expires_at\":1795341600,\"failure\":" failure "," \
    "\"currency\":\"USD\",\"payment_orders\":[" \
    "{\"payment_order_id\":\"po_1\",\"seller_account\":\"seller_42\"," \
    "\"amount_minor\":1000,\"currency\":\"USD\",\"status\":\"" status "\"}," \
    "{\"payment_order_id\":\"po_2\",\"seller_account\":\"seller_77\"," \
    "\"amount_minor\":500,\"currency\":\"USD\",\"status\":\"" status "\"}]," \
    "\"events\":" events "}"

#define VW_EVENTS \
    "[{\"at\":\"2026-11-22T09:00:00Z\",\"payment_order_id\":\"po_1\"," \
    "\"from\":\"NOT_STARTED\",\"to\":\"EXECUTING\"," \
    "\"source\":\"registration\"}," \
    "{\"at\":1795341000,\"payment_order_id\":\"po_1\"," \
    "\"from\":\"EXECUTING\",\"to\":\"SUCCESS\"," \
    "\"source\":\"webhook:stripe:evt_1\"}]"


Test(view, checkout_as_201_plus_events)
{
    char  *s;

    s = vw_checkout(VW_CHECKOUT("SUCCESS", "null", VW_EVENTS),
                    "https://gw.example/v1/checkouts/co_7f3a/pay?t=x");
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"checkout_id\":\"co_7f3a\",\"status\":\"SUCCESS\","
        "\"is_payment_done\":true,\"psp\":\"stripe\",\"capture\":\"automatic\","
        "\"psp_token\":\"cs_test_a1\",\"expires_at\":\"2026-11-22T10:00:00Z\","
        "\"pay_url\":\"https://gw.example/v1/checkouts/co_7f3a/pay?t=x\","
        "\"metadata\":{},\"payment_orders\":["
        "{\"payment_order_id\":\"po_1\",\"seller_account\":\"seller_42\","
        "\"amount\":\"10.00\",\"currency\":\"USD\",\"status\":\"SUCCESS\"},"
        "{\"payment_order_id\":\"po_2\",\"seller_account\":\"seller_77\","
        "\"amount\":\"5.00\",\"currency\":\"USD\",\"status\":\"SUCCESS\"}],"
        "\"events\":["
        "{\"at\":\"2026-11-22T09:00:00Z\",\"payment_order_id\":\"po_1\","
        "\"from\":\"NOT_STARTED\",\"to\":\"EXECUTING\","
        "\"source\":\"registration\"},"
        "{\"at\":\"2026-11-22T09:50:00Z\",\"payment_order_id\":\"po_1\","
        "\"from\":\"EXECUTING\",\"to\":\"SUCCESS\","
        "\"source\":\"webhook:stripe:evt_1\"}]}");
    free(s);
}


Test(view, checkout_is_payment_done_only_on_success)
{
    char  *s;

    s = vw_checkout(VW_CHECKOUT("EXECUTING", "null", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"is_payment_done\":false"), "%s", s);
    free(s);

    s = vw_checkout(VW_CHECKOUT("FAILED", "null", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"is_payment_done\":false"), "%s", s);
    free(s);

    s = vw_checkout(VW_CHECKOUT("NOT_STARTED", "null", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"is_payment_done\":false"), "%s", s);
    free(s);
}


Test(view, checkout_pay_url_only_when_given)
{
    char  *s;

    s = vw_checkout(VW_CHECKOUT("EXECUTING", "null", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "pay_url"), "%s", s);
    free(s);
}


Test(view, checkout_failure_only_when_failed)
{
    char  *s;

    s = vw_checkout(VW_CHECKOUT("FAILED", "{\"code\":\"declined\",\"message\":\"m\"}", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "pay_url"), "%s", s);
    cr_expect_not_null(strstr(s, "\"expires_at\":\"2026-11-22T10:00:00Z\","
                                 "\"failure\":{\"code\":\"declined\","
                                 "\"message\":\"m\"},"
                                 "\"metadata\":{},\"payment_orders\""), "%s", s);
    free(s);

    s = vw_checkout(VW_CHECKOUT("SUCCESS", "{\"code\":\"expired\",\"message\":\"m\"}", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "failure"), "%s", s);
    free(s);
}


Test(view, checkout_null_token_omitted_as_in_201)
{
    char  *s;

    s = vw_checkout("{\"checkout_id\":\"co_1\",\"status\":\"FAILED\","
                    "\"psp\":\"stripe\",\"psp_token\":null,"
                    "\"expires_at\":1795341600,"
                    "\"failure\":{\"code\":\"expired\",\"message\":\"no\"},"
                    "\"currency\":\"USD\",\"payment_orders\":["
                    "{\"payment_order_id\":\"po_1\",\"seller_account\":\"s\","
                    "\"amount_minor\":1,\"currency\":\"USD\","
                    "\"status\":\"FAILED\"}],\"events\":null}", NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"checkout_id\":\"co_1\",\"status\":\"FAILED\","
        "\"is_payment_done\":false,\"psp\":\"stripe\",\"capture\":\"automatic\","
        "\"expires_at\":\"2026-11-22T10:00:00Z\","
        "\"failure\":{\"code\":\"expired\",\"message\":\"no\"},"
        "\"metadata\":{},\"payment_orders\":[{\"payment_order_id\":\"po_1\","
        "\"seller_account\":\"s\",\"amount\":\"0.01\",\"currency\":\"USD\","
        "\"status\":\"FAILED\"}],\"events\":[]}");
    free(s);
}


Test(view, checkout_in_review_shows_its_risk_verdict_and_nothing_else)
{
    char  *s;

    s = vw_checkout("{\"checkout_id\":\"co_1\",\"status\":\"REVIEW\","
                    "\"psp\":\"stripe\",\"psp_token\":null,"
                    "\"expires_at\":1795341600,\"failure\":null,"
                    "\"risk\":{\"verdict\":\"review\",\"score\":500,"
                    "\"reason\":\"mock.review\",\"source\":\"provider\","
                    "\"review\":null,\"internal\":\"x\"},"
                    "\"currency\":\"USD\",\"payment_orders\":["
                    "{\"payment_order_id\":\"po_1\",\"seller_account\":\"s\","
                    "\"amount_minor\":1,\"currency\":\"USD\","
                    "\"status\":\"EXECUTING\"}],\"events\":null}", NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s,
        "{\"checkout_id\":\"co_1\",\"status\":\"REVIEW\","
        "\"is_payment_done\":false,\"psp\":\"stripe\","
        "\"capture\":\"automatic\","
        "\"expires_at\":\"2026-11-22T10:00:00Z\","
        "\"risk\":{\"verdict\":\"review\",\"score\":500,"
        "\"reason\":\"mock.review\",\"source\":\"provider\"},"
        "\"metadata\":{},\"payment_orders\":[{\"payment_order_id\":\"po_1\","
        "\"seller_account\":\"s\",\"amount\":\"0.01\",\"currency\":\"USD\","
        "\"status\":\"EXECUTING\"}],\"events\":[]}");
    free(s);
}


Test(view, checkout_paid_shows_its_verdict_after_the_payment)
{
    char  *s;

    s = vw_checkout("{\"checkout_id\":\"co_1\",\"status\":\"SUCCESS\","
                    "\"psp\":\"stripe\",\"psp_token\":null,"
                    "\"expires_at\":1795341600,\"failure\":null,"
                    "\"risk\":{\"verdict\":\"allow\",\"score\":10,"
                    "\"reason\":null,\"source\":\"provider\","
                    "\"review\":null,\"after_payment\":{\"verdict\":"
                    "\"deny\",\"score\":880,\"reason\":\"aml.hit\","
                    "\"source\":\"provider\",\"decided_at\":"
                    "\"2026-11-22T10:00:00Z\",\"internal\":\"x\"}},"
                    "\"currency\":\"USD\",\"payment_orders\":["
                    "{\"payment_order_id\":\"po_1\",\"seller_account\":\"s\","
                    "\"amount_minor\":1,\"currency\":\"USD\","
                    "\"status\":\"SUCCESS\"}],\"events\":null}", NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s,
        "\"risk\":{\"verdict\":\"allow\",\"score\":10,"
        "\"source\":\"provider\",\"after_payment\":{\"verdict\":\"deny\","
        "\"score\":880,\"reason\":\"aml.hit\",\"source\":\"provider\","
        "\"decided_at\":\"2026-11-22T10:00:00Z\"}},"), "%s", s);
    free(s);

    /* not asked yet: no after_payment at all */
    s = vw_checkout("{\"checkout_id\":\"co_1\",\"status\":\"SUCCESS\","
                    "\"psp\":\"stripe\",\"psp_token\":null,"
                    "\"expires_at\":1795341600,\"failure\":null,"
                    "\"risk\":{\"verdict\":\"allow\",\"score\":10,"
                    "\"reason\":null,\"source\":\"provider\","
                    "\"review\":null,\"after_payment\":null},"
                    "\"currency\":\"USD\",\"payment_orders\":["
                    "{\"payment_order_id\":\"po_1\",\"seller_account\":\"s\","
                    "\"amount_minor\":1,\"currency\":\"USD\","
                    "\"status\":\"SUCCESS\"}],\"events\":null}", NULL);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "after_payment"), "%s", s);
    free(s);
}


#define VW_CHECKOUT_WITH(status, extra) \
    "{\"checkout_id\":\"co_7f3a\",\"status\":\"" status "\"," \
    "\"psp\":\"stripe\",\"psp_token\":\"pi_1\",\"expires_at\":1795341600," \
    "\"failure\":null,\"currency\":\"USD\"," extra \
    "\"payment_orders\":[{\"payment_order_id\":\"po_1\"," \
    "\"seller_account\":\"seller_42\",\"amount_minor\":1000," \
    "\"currency\":\"USD\",\"status\":\"" status "\"}],\"events\":[]}"


Test(view, checkout_saved_methods_fields_as_in_201)
{
    char  *s;

    /* an off-session charge: its method, no next action without a link */
    s = vw_checkout(VW_CHECKOUT_WITH("EXECUTING",
                        "\"payment_method\":\"pm_abc\","
                        "\"save_payment_method\":null,"), NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"metadata\":{},\"payment_method\":"
                              "\"pm_abc\",\"off_session\":true,"
                              "\"payment_orders\""), "%s", s);
    cr_expect_null(strstr(s, "next_action"), "%s", s);
    cr_expect_null(strstr(s, "save_payment_method"), "%s", s);
    free(s);

    /* waiting for the shopper at its pay link */
    s = vw_checkout(VW_CHECKOUT_WITH("EXECUTING",
                        "\"payment_method\":\"pm_abc\","),
                    "https://gw.example/p");
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"off_session\":true,"
                              "\"next_action\":\"authenticate\""), "%s", s);
    free(s);

    /* paid through that link: nothing left to do */
    s = vw_checkout(VW_CHECKOUT_WITH("SUCCESS",
                        "\"payment_method\":\"pm_abc\","),
                    "https://gw.example/p");
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "next_action"), "%s", s);
    free(s);

    /* a hosted checkout that saves the shopper's method */
    s = vw_checkout(VW_CHECKOUT_WITH("SUCCESS",
                        "\"payment_method\":null,\"save_payment_method\":"
                        "{\"customer\":\"cust_81\",\"usage\":\"on_session\"},"),
                    NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"save_payment_method\":{\"customer\":"
                              "\"cust_81\",\"usage\":\"on_session\"}"),
                       "%s", s);
    cr_expect_null(strstr(s, "off_session"), "%s", s);
    free(s);

    /* not what the database gives: no view */
    cr_expect_null(vw_checkout(VW_CHECKOUT_WITH("SUCCESS",
                       "\"payment_method\":7,"), NULL));
    cr_expect_null(vw_checkout(VW_CHECKOUT_WITH("SUCCESS",
                       "\"payment_method\":\"\","), NULL));
    cr_expect_null(vw_checkout(VW_CHECKOUT_WITH("SUCCESS",
                       "\"save_payment_method\":{\"customer\":\"c\"},"),
                               NULL));
    cr_expect_null(vw_checkout(VW_CHECKOUT_WITH("SUCCESS",
                       "\"save_payment_method\":\"cust\","), NULL));
}


Test(view, checkout_unexpected_shape_is_null)
{
    size_t              i;
    static const char  *bad[] = {
        "", "[]", "{}",
        VW_CHECKOUT("PAID", "null", "[]"),
        VW_CHECKOUT("SUCCESS", "3", "[]"),
        VW_CHECKOUT("FAILED", "\"declined\"", "[]"),
        VW_CHECKOUT("FAILED", "{\"message\":\"m\"}", "[]"),
        VW_CHECKOUT("SUCCESS", "null", "{}"),
        VW_CHECKOUT("SUCCESS", "null", "[1]"),
        VW_CHECKOUT("SUCCESS", "null",
                    "[{\"at\":\"t\",\"payment_order_id\":\"po_1\","
                    "\"from\":\"X\",\"to\":\"SUCCESS\",\"source\":\"s\"}]"),
        VW_CHECKOUT("SUCCESS", "null",
                    "[{\"at\":\"t\",\"payment_order_id\":\"po_1\","
                    "\"from\":null,\"to\":null,\"source\":\"s\"}]"),
        VW_CHECKOUT("SUCCESS", "null",
                    "[{\"payment_order_id\":\"po_1\","
                    "\"from\":null,\"to\":\"SUCCESS\",\"source\":\"s\"}]"),
        VW_CHECKOUT("SUCCESS", "null",
                    "[{\"at\":\"t\",\"payment_order_id\":\"po_1\","
                    "\"from\":null,\"to\":\"SUCCESS\"}]"),
        "{\"checkout_id\":\"co_1\",\"status\":\"SUCCESS\",\"psp\":\"p\","
        "\"psp_token\":null,\"expires_at\":1,\"failure\":null,"
        "\"currency\":\"USD\",\"payment_orders\":[],\"events\":[]}",
        "{\"checkout_id\":\"co_1\",\"status\":\"SUCCESS\",\"psp\":\"p\","
        "\"psp_token\":null,\"expires_at\":1,\"failure\":null,"
        "\"currency\":\"USD\",\"payment_orders\":[7],\"events\":[]}",
        "{\"checkout_id\":\"co_1\",\"status\":\"SUCCESS\",\"psp\":\"p\","
        "\"psp_token\":null,\"expires_at\":1,\"failure\":null,"
        "\"currency\":\"ZZZ\",\"payment_orders\":[{\"payment_order_id\":"
        "\"po_1\",\"seller_account\":\"s\",\"amount_minor\":1,"
        "\"currency\":\"USD\",\"status\":\"SUCCESS\"}],\"events\":[]}",
        "{\"checkout_id\":\"co_1\",\"status\":\"SUCCESS\",\"psp\":\"p\","
        "\"psp_token\":null,\"expires_at\":\"x\",\"failure\":null,"
        "\"payment_orders\":[{\"payment_order_id\":"
        "\"po_1\",\"seller_account\":\"s\",\"amount_minor\":1,"
        "\"currency\":\"USD\"}],\"events\":[]}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_null(vw_checkout(bad[i], NULL), "accepted #%zu", i);
    }
}


Test(view, status_view_for_pending_page)
{
    char  *s;

    s = pay_status_view_json("co_1", "EXECUTING");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"checkout_id\":\"co_1\",\"status\":\"pending\","
                        "\"is_payment_done\":false}");
    free(s);

    s = pay_status_view_json("co_1", "NOT_STARTED");
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"pending\""));
    free(s);

    s = pay_status_view_json("co_1", "SUCCESS");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"checkout_id\":\"co_1\",\"status\":\"paid\","
                        "\"is_payment_done\":true}");
    free(s);

    s = pay_status_view_json("co_1", "FAILED");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"checkout_id\":\"co_1\",\"status\":\"failed\","
                        "\"is_payment_done\":false}");
    free(s);

    cr_expect_null(pay_status_view_json("co_1", "paid"));
    cr_expect_null(pay_status_view_json(NULL, "SUCCESS"));
}


Test(view, checkout_paid_after_failure_only_when_true_and_paid)
{
    char  *s;

    s = vw_checkout(VW_CHECKOUT("SUCCESS",
                                "{\"code\":\"expired\",\"message\":\"m\"},"
                                "\"paid_after_failure\":true", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"paid_after_failure\":true"), "%s", s);
    cr_expect_null(strstr(s, "failure\":{"), "%s", s);
    free(s);

    s = vw_checkout(VW_CHECKOUT("SUCCESS", "null", "[]"), NULL);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "paid_after_failure"), "%s", s);
    free(s);

    cr_expect_null(vw_checkout(VW_CHECKOUT("SUCCESS",
                                           "null,\"paid_after_failure\":1",
                                           "[]"), NULL));
}


/* metadata: the stored object as it is; {} when none; anything but an
 * object of strings is a malformed row */
Test(view, checkout_metadata_copied)
{
    char        *s;
    const char  *db;

    db = "{\"checkout_id\":\"co_1\",\"status\":\"EXECUTING\",\"psp\":\"stripe\","
         "\"currency\":\"USD\",\"metadata\":{\"order\":\"A-17\",\"x\":\"\"},"
         "\"payment_orders\":[{\"payment_order_id\":\"po_1\","
         "\"seller_account\":\"s\",\"amount_minor\":1,\"currency\":\"USD\","
         "\"status\":\"EXECUTING\"}],\"events\":[]}";
    s = vw_checkout(db, NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"metadata\":{\"order\":\"A-17\","
                                 "\"x\":\"\"},\"payment_orders\""), "%s", s);
    free(s);

    db = "{\"checkout_id\":\"co_1\",\"status\":\"EXECUTING\",\"psp\":\"stripe\","
         "\"currency\":\"USD\",\"metadata\":{\"n\":1},"
         "\"payment_orders\":[],\"events\":[]}";
    cr_expect_null(vw_checkout(db, NULL));

    db = "{\"checkout_id\":\"co_1\",\"status\":\"EXECUTING\",\"psp\":\"stripe\","
         "\"currency\":\"USD\",\"metadata\":[],"
         "\"payment_orders\":[],\"events\":[]}";
    cr_expect_null(vw_checkout(db, NULL));
}


Test(view, registration_metadata_shown)
{
    char          *s;
    json_t        *md;
    vw_fixture_t   f;

    vw_fixture(&f, "USD", 2);
    md = json_pack("{s:s}", "order", "A-17");
    f.co.metadata = md;
    s = pay_registration_json(&f.v);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"metadata\":{\"order\":\"A-17\"},"
                                 "\"payment_orders\""), "%s", s);
    free(s);
    json_decref(md);
}


/* A routed checkout: its route and each PSP it was bound to, with why it
 * moved on; nothing for one that was not routed; a malformed record is
 * never shown half. */
Test(view, checkout_routing_as_recorded)
{
    char  *s;

    s = vw_checkout(VW_CHECKOUT("EXECUTING", "null",
                                "[],\"routing\":{\"route\":\"eu\",\"psps\":["
                                "{\"psp\":\"stripe\","
                                "\"moved_on\":\"circuit_open\","
                                "\"at\":1795341000},"
                                "{\"psp\":\"adyen\",\"moved_on\":null,"
                                "\"at\":\"2026-11-22T09:50:01Z\"}]}"), NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s,
        "\"events\":[],\"routing\":{\"route\":\"eu\",\"psps\":["
        "{\"psp\":\"stripe\",\"moved_on\":\"circuit_open\","
        "\"at\":\"2026-11-22T09:50:00Z\"},"
        "{\"psp\":\"adyen\",\"at\":\"2026-11-22T09:50:01Z\"}]}}"), "%s", s);
    free(s);

    s = vw_checkout(VW_CHECKOUT("EXECUTING", "null",
                                "[],\"routing\":null"), NULL);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "routing"), "%s", s);
    free(s);

    cr_expect_null(vw_checkout(VW_CHECKOUT("EXECUTING", "null",
                                           "[],\"routing\":{\"route\":\"eu\","
                                           "\"psps\":[]}"), NULL));
    cr_expect_null(vw_checkout(VW_CHECKOUT("EXECUTING", "null",
                                           "[],\"routing\":{\"psps\":["
                                           "{\"psp\":\"a\",\"at\":1}]}"),
                               NULL));
    cr_expect_null(vw_checkout(VW_CHECKOUT("EXECUTING", "null",
                                           "[],\"routing\":{\"route\":\"eu\","
                                           "\"psps\":[{\"psp\":7,"
                                           "\"at\":1}]}"), NULL));
}
