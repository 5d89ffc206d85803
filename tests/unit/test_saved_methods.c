/*
 * Unit tests: saved payment methods in the core: the body's
 * save_payment_method / payment_method (src/checkout.c), each dialect's
 * save fields and off-session charge request, the charge answers
 * (pay_psp_parse_charge_redact) and the events that say a method was
 * stored (METHOD_SAVED) or an off-session charge was paid.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/checkout.h>
#include <payments/dialect.h>
#include <payments/psp.h>
#include <payments/webhook.h>


#define SM_PM     "pm_abcdefghijklmnopabcdefgh"
#define SM_BODY   "{\"checkout_id\":\"co_1\",\"payment_orders\":[" \
                  "{\"payment_order_id\":\"po_1\",\"seller_account\":\"s1\"," \
                  "\"amount\":\"10.00\",\"currency\":\"EUR\"}]," \
                  "\"success_url\":\"https://shop.example/ok\"," \
                  "\"cancel_url\":\"https://shop.example/no\"%s}"


static int
sm_parse(const char *extra, pay_checkout_t *co, pay_verdict_t *v)
{
    char  body[2048];

    snprintf(body, sizeof(body), SM_BODY, extra);

    return pay_checkout_parse(body, strlen(body), co, v);
}


/* --- the body ---------------------------------------------------------------- */

Test(saved_methods, save_payment_method_parsed)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(sm_parse(",\"save_payment_method\":{\"customer\":\"c_1\","
                          "\"usage\":\"off_session\",\"schedule\":"
                          "\"subscription\",\"shopper_agreed\":true}",
                          &co, &v), 0, "%s", v.detail);
    cr_expect_str_eq(co.save_customer, "c_1");
    cr_expect_str_eq(co.save_usage, "off_session");
    cr_expect_str_eq(co.save_recurring, "Subscription");
    cr_expect_str_eq(co.payment_method, "");
    pay_checkout_free(&co);

    cr_assert_eq(sm_parse(",\"save_payment_method\":{\"customer\":\"c_1\","
                          "\"usage\":\"off_session\","
                          "\"shopper_agreed\":true}", &co, &v), 0);
    cr_expect_str_eq(co.save_recurring, "UnscheduledCardOnFile");
    pay_checkout_free(&co);

    cr_assert_eq(sm_parse(",\"save_payment_method\":{\"customer\":\"c_1\","
                          "\"usage\":\"on_session\","
                          "\"shopper_agreed\":true}", &co, &v), 0);
    cr_expect_str_eq(co.save_recurring, "CardOnFile");
    pay_checkout_free(&co);

    /* a numeric customer id is an id, not card data */
    cr_assert_eq(sm_parse(",\"save_payment_method\":{\"customer\":"
                          "\"4111111111111112\",\"usage\":\"on_session\","
                          "\"shopper_agreed\":true}", &co, &v), 0,
                 "%s", v.detail);
    pay_checkout_free(&co);
}


Test(saved_methods, save_payment_method_refused)
{
    size_t           i;
    pay_checkout_t   co;
    pay_verdict_t    v;
    static const char  *bad[] = {
        /* no agreement, or not true */
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"off_session\"}",
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"off_session\","
        "\"shopper_agreed\":\"yes\"}",
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"off_session\","
        "\"shopper_agreed\":false}",
        /* not an id */
        ",\"save_payment_method\":{\"customer\":\"ann@example.com\","
        "\"usage\":\"off_session\",\"shopper_agreed\":true}",
        ",\"save_payment_method\":{\"customer\":\"\","
        "\"usage\":\"off_session\",\"shopper_agreed\":true}",
        /* usage, schedule */
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"later\","
        "\"shopper_agreed\":true}",
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"on_session\","
        "\"schedule\":\"subscription\",\"shopper_agreed\":true}",
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"off_session\","
        "\"schedule\":\"weekly\",\"shopper_agreed\":true}",
        /* unknown member, not an object */
        ",\"save_payment_method\":{\"customer\":\"c\",\"usage\":\"off_session\","
        "\"shopper_agreed\":true,\"email\":\"x\"}",
        ",\"save_payment_method\":true",
        /* a charge: off_session true, a pm_ id, no save */
        ",\"payment_method\":\"" SM_PM "\"",
        ",\"payment_method\":\"" SM_PM "\",\"off_session\":false",
        ",\"off_session\":true",
        ",\"payment_method\":\"pm_0123456789abcdef01234567\","
        "\"off_session\":true",
        ",\"payment_method\":\"" SM_PM "\",\"off_session\":true,"
        "\"save_payment_method\":{\"customer\":\"c\",\"usage\":"
        "\"off_session\",\"shopper_agreed\":true}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(sm_parse(bad[i], &co, &v), -1, "accepted: %s", bad[i]);
        cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST, "%s: %s", bad[i],
                     v.detail);
    }
}


Test(saved_methods, payment_method_parsed)
{
    pay_checkout_t  co;
    pay_verdict_t   v;

    cr_assert_eq(sm_parse(",\"payment_method\":\"" SM_PM "\","
                          "\"off_session\":true", &co, &v), 0, "%s",
                 v.detail);
    cr_expect_str_eq(co.payment_method, SM_PM);
    cr_expect_null(co.save_usage);
    cr_expect(!co.manual_capture);
    pay_checkout_free(&co);

    /* authorized now, captured later */
    cr_assert_eq(sm_parse(",\"payment_method\":\"" SM_PM "\","
                          "\"off_session\":true,\"capture\":\"manual\"",
                          &co, &v), 0, "%s", v.detail);
    cr_expect_str_eq(co.payment_method, SM_PM);
    cr_expect(co.manual_capture);
    pay_checkout_free(&co);

    cr_expect(pay_method_id_valid(SM_PM, strlen(SM_PM)));
    cr_expect(!pay_method_id_valid("pm_abcdefghijklmnopabcdefgq", 27));
    cr_expect(!pay_method_id_valid("pm_abcdefghijklmnopabcdefg", 26));
    cr_expect(!pay_method_id_valid("xx_abcdefghijklmnopabcdefgh", 27));
}


/* --- the requests ------------------------------------------------------------ */

typedef struct {
    pay_order_t             order;
    pay_checkout_t          co;
    pay_psp_registration_t  reg;
} sm_fixture_t;


static void
sm_fixture(sm_fixture_t *f, int charge)
{
    memset(f, 0, sizeof(*f));

    strcpy(f->order.id, "po_1");
    strcpy(f->order.seller, "s1");
    f->order.amount = 1000;

    strcpy(f->co.checkout_id, "co_1");
    strcpy(f->co.currency, "EUR");
    f->co.exponent = 2;
    f->co.total = 1000;
    f->co.success_url = "https://shop.example/ok";
    f->co.cancel_url = "https://shop.example/no";
    f->co.norders = 1;
    f->co.orders = &f->order;

    f->reg.merchant_id = "m_1";
    f->reg.nonce = "m_1:co_1";
    f->reg.co = &f->co;
    f->reg.return_success = "https://gw.example/v1/return/p/co_1?t=a";
    f->reg.return_cancel = "https://gw.example/v1/return/p/co_1?t=b";
    f->reg.expires_at = 1795341600;
    f->reg.adyen_merchant_account = "TestMerchant";
    f->reg.customer_ref = "cu_0123456789abcdef01234567";

    if (charge) {
        strcpy(f->co.payment_method, SM_PM);
        f->reg.charge_token = "pm_1QstripeToken";
        f->reg.psp_customer = "cus_Abc";
        f->reg.recurring = "Subscription";

    } else {
        strcpy(f->co.save_customer, "c_1");
        f->co.save_usage = "off_session";
        f->co.save_recurring = "Subscription";
    }
}


static pay_psp_request_t
sm_build(pay_dialect_e d, const sm_fixture_t *f)
{
    pay_psp_request_t  req;

    cr_assert_eq(pay_psp_build_registration(d, &f->reg, &req), 0);

    return req;
}


Test(saved_methods, stripe_session_saves)
{
    sm_fixture_t       f;
    pay_psp_request_t  req;

    sm_fixture(&f, 0);
    req = sm_build(PAY_DIALECT_STRIPE, &f);

    cr_expect_str_eq(req.path, "/v1/checkout/sessions");
    cr_expect(strstr(req.body, "&payment_intent_data%5Bsetup_future_usage%5D"
                               "=off_session") != NULL
              || strstr(req.body, "&payment_intent_data[setup_future_usage]"
                                  "=off_session") != NULL, "%s", req.body);
    cr_expect(strstr(req.body, "customer_creation=always") != NULL);
    cr_expect(strstr(req.body, "m_1%3Aco_1") != NULL);
    /* never the shop's customer id */
    cr_expect(strstr(req.body, "c_1") == NULL, "%s", req.body);
    pay_psp_request_free(&req);

    /* a known Customer instead of a new one */
    f.reg.psp_customer = "cus_Known";
    req = sm_build(PAY_DIALECT_STRIPE, &f);
    cr_expect(strstr(req.body, "customer=cus_Known") != NULL);
    cr_expect(strstr(req.body, "customer_creation") == NULL);
    pay_psp_request_free(&req);
}


Test(saved_methods, stripe_charge_exact)
{
    sm_fixture_t       f;
    pay_psp_request_t  req;

    sm_fixture(&f, 1);
    req = sm_build(PAY_DIALECT_STRIPE, &f);

    cr_expect_str_eq(req.path, "/v1/payment_intents");
    cr_expect_str_eq(req.content_type, "application/x-www-form-urlencoded");
    cr_expect_str_eq(req.body,
                     "amount=1000&currency=eur&customer=cus_Abc"
                     "&payment_method=pm_1QstripeToken"
                     "&payment_method_types[0]=card&off_session=true"
                     "&confirm=true&metadata[charge]=m_1%3Aco_1"
                     "&metadata[merchant_id]=m_1&metadata[checkout_id]=co_1");
    pay_psp_request_free(&req);

    /* Stripe charges a method on its Customer only */
    f.reg.psp_customer = NULL;
    cr_expect_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg,
                                            &req), -1);

    /* no token: nothing to charge */
    f.reg.psp_customer = "cus_Abc";
    f.reg.charge_token = NULL;
    cr_expect_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg,
                                            &req), -1);
}


Test(saved_methods, adyen_session_saves_and_charge_exact)
{
    json_t             *j;
    sm_fixture_t        f;
    pay_psp_request_t   req;

    sm_fixture(&f, 0);
    req = sm_build(PAY_DIALECT_ADYEN, &f);
    j = json_loads(req.body, 0, NULL);
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "storePaymentMethodMode")), "enabled");
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "shopperReference")), f.reg.customer_ref);
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "recurringProcessingModel")), "Subscription");
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "shopperInteraction")), "Ecommerce");
    json_decref(j);
    pay_psp_request_free(&req);

    sm_fixture(&f, 1);
    f.reg.charge_token = "8415718415172200";
    req = sm_build(PAY_DIALECT_ADYEN, &f);
    cr_expect_str_eq(req.path, "/v71/payments");
    cr_expect_str_eq(req.body,
                     "{\"merchantAccount\":\"TestMerchant\","
                     "\"amount\":{\"value\":1000,\"currency\":\"EUR\"},"
                     "\"reference\":\"m_1:co_1\","
                     "\"paymentMethod\":{\"type\":\"scheme\","
                     "\"storedPaymentMethodId\":\"8415718415172200\"},"
                     "\"shopperReference\":\"cu_0123456789abcdef01234567\","
                     "\"shopperInteraction\":\"ContAuth\","
                     "\"recurringProcessingModel\":\"Subscription\","
                     "\"returnUrl\":"
                     "\"https://gw.example/v1/return/p/co_1?t=a\"}");
    pay_psp_request_free(&req);
}


/*
 * An off-session charge the issuer wants the shopper for: the hosted page
 * is the dialect's session (not the charge), for the method's customer,
 * names no token and saves nothing again.
 */
Test(saved_methods, authentication_session_per_dialect)
{
    json_t             *j;
    sm_fixture_t        f;
    pay_psp_request_t   req;

    sm_fixture(&f, 1);
    f.reg.authenticate = 1;

    req = sm_build(PAY_DIALECT_STRIPE, &f);
    cr_expect_str_eq(req.path, "/v1/checkout/sessions");
    cr_expect(strstr(req.body, "mode=payment") != NULL, "%s", req.body);
    cr_expect(strstr(req.body, "&customer=cus_Abc") != NULL, "%s", req.body);
    cr_expect(strstr(req.body, "client_reference_id=m_1%3Aco_1") != NULL,
              "%s", req.body);
    cr_expect(strstr(req.body, "pm_1QstripeToken") == NULL, "%s", req.body);
    cr_expect(strstr(req.body, "setup_future_usage") == NULL, "%s",
              req.body);
    cr_expect(strstr(req.body, "off_session") == NULL, "%s", req.body);
    pay_psp_request_free(&req);

    f.reg.charge_token = "8415718415172200";
    req = sm_build(PAY_DIALECT_ADYEN, &f);
    cr_expect_str_eq(req.path, "/v71/sessions");
    j = json_loads(req.body, 0, NULL);
    cr_assert_not_null(j, "%s", req.body);
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "shopperReference")), f.reg.customer_ref);
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "shopperInteraction")), "Ecommerce");
    cr_expect_str_eq(json_string_value(json_object_get(j, "reference")),
                     "m_1:co_1");
    cr_expect_null(json_object_get(j, "storePaymentMethodMode"));
    cr_expect(strstr(req.body, "8415718415172200") == NULL, "%s", req.body);
    json_decref(j);
    pay_psp_request_free(&req);

    f.reg.charge_token = "gpm_1";
    req = sm_build(PAY_DIALECT_GENERIC, &f);
    cr_expect_str_eq(req.path, "/sessions");
    cr_expect(strstr(req.body, "gpm_1") == NULL, "%s", req.body);
    cr_expect(strstr(req.body, "off_session") == NULL, "%s", req.body);
    pay_psp_request_free(&req);
}


Test(saved_methods, generic_session_saves_and_charge_exact)
{
    json_t             *j;
    sm_fixture_t        f;
    pay_psp_request_t   req;

    sm_fixture(&f, 0);
    req = sm_build(PAY_DIALECT_GENERIC, &f);
    j = json_loads(req.body, 0, NULL);
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j,
                         "save_payment_method"), "customer")),
                     f.reg.customer_ref);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j,
                         "save_payment_method"), "usage")), "off_session");
    json_decref(j);
    pay_psp_request_free(&req);

    sm_fixture(&f, 1);
    f.reg.charge_token = "gpm_tok";
    req = sm_build(PAY_DIALECT_GENERIC, &f);
    cr_expect_str_eq(req.path, "/payments");
    cr_expect_str_eq(req.body,
                     "{\"reference\":\"m_1:co_1\",\"payment_method\":"
                     "\"gpm_tok\",\"customer\":"
                     "\"cu_0123456789abcdef01234567\",\"amount\":\"10.00\","
                     "\"currency\":\"EUR\",\"off_session\":true}");
    pay_psp_request_free(&req);
}


/* --- the answers ------------------------------------------------------------- */

static pay_psp_charge_result_t
sm_answer(const char *dialect, int status, const char *body)
{
    pay_psp_charge_result_t  res;

    pay_psp_parse_charge_redact(pay_dialect_find(dialect, strlen(dialect)),
                                status, body, body ? strlen(body) : 0,
                                "sk_test_SECRET", 14, &res);

    return res;
}


Test(saved_methods, stripe_charge_answers)
{
    pay_psp_charge_result_t  r;

    r = sm_answer("stripe", 200, "{\"id\":\"pi_1\",\"status\":\"succeeded\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_ACCEPTED);
    cr_expect_str_eq(r.psp_ref, "pi_1");

    r = sm_answer("stripe", 200, "{\"id\":\"pi_1\",\"status\":"
                                 "\"requires_action\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_AUTH_REQUIRED);

    r = sm_answer("stripe", 402, "{\"error\":{\"type\":\"card_error\","
                  "\"code\":\"card_declined\",\"decline_code\":"
                  "\"insufficient_funds\",\"message\":\"no sk_test_SECRET\","
                  "\"payment_intent\":{\"id\":\"pi_2\"}}}");
    cr_expect_eq(r.outcome, PAY_CHARGE_DECLINED);
    cr_expect_str_eq(r.decline_code, "insufficient_funds");
    cr_expect_str_eq(r.psp_ref, "pi_2");
    cr_expect(strstr(r.reason, "SECRET") == NULL, "%s", r.reason);

    r = sm_answer("stripe", 402, "{\"error\":{\"type\":\"card_error\","
                  "\"code\":\"authentication_required\"}}");
    cr_expect_eq(r.outcome, PAY_CHARGE_AUTH_REQUIRED);

    r = sm_answer("stripe", 401, "{\"error\":{\"message\":\"sk_test_SECRET\"}}");
    cr_expect_eq(r.outcome, PAY_CHARGE_AUTH);
    cr_expect(strstr(r.reason, "SECRET") == NULL);

    /* may have charged: asked again under the same key */
    r = sm_answer("stripe", 500, "{}");
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY);
    r = sm_answer("stripe", 0, NULL);
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY);
    r = sm_answer("stripe", 200, "not json");
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY);
    r = sm_answer("stripe", 200, "{\"status\":\"succeeded\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY, "taken, but no id");
    r = sm_answer("stripe", 409, "{\"error\":{\"type\":\"idempotency_error\"}}");
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY);
}


Test(saved_methods, adyen_charge_answers)
{
    pay_psp_charge_result_t  r;

    r = sm_answer("adyen", 200, "{\"pspReference\":\"8815\",\"resultCode\":"
                                "\"Authorised\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_ACCEPTED);
    cr_expect_str_eq(r.psp_ref, "8815");

    r = sm_answer("adyen", 200, "{\"pspReference\":\"8815\",\"resultCode\":"
                                "\"Refused\",\"refusalReason\":"
                                "\"Expired Card\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_DECLINED);
    cr_expect_str_eq(r.decline_code, "expired_card");

    r = sm_answer("adyen", 200, "{\"pspReference\":\"8815\",\"resultCode\":"
                                "\"IdentifyShopper\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_AUTH_REQUIRED);

    r = sm_answer("adyen", 200, "{\"pspReference\":\"8815\",\"resultCode\":"
                                "\"SomethingNew\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY);

    /* "in progress" under the key: not a refusal */
    r = sm_answer("adyen", 422, "{\"status\":422,\"errorCode\":\"704\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_RETRY);
    cr_expect(r.key_in_use);

    r = sm_answer("adyen", 422, "{\"status\":422,\"errorCode\":\"800\","
                                "\"message\":\"Contract not found\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_DECLINED);
}


Test(saved_methods, generic_charge_answers)
{
    pay_psp_charge_result_t  r;

    r = sm_answer("generic", 201, "{\"payment_id\":\"pay_1\",\"status\":"
                                  "\"succeeded\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_ACCEPTED);
    r = sm_answer("generic", 201, "{\"payment_id\":\"pay_1\",\"status\":"
                                  "\"pending\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_ACCEPTED);
    /* a manual capture's hold */
    r = sm_answer("generic", 201, "{\"payment_id\":\"pay_1\",\"status\":"
                                  "\"authorized\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_ACCEPTED);
    cr_expect_str_eq(r.psp_ref, "pay_1");
    r = sm_answer("generic", 201, "{\"payment_id\":\"pay_1\",\"status\":"
                                  "\"declined\",\"decline_code\":"
                                  "\"Insufficient Funds\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_DECLINED);
    cr_expect_str_eq(r.decline_code, "insufficient_funds");
    r = sm_answer("generic", 201, "{\"payment_id\":\"pay_1\",\"status\":"
                                  "\"requires_authentication\"}");
    cr_expect_eq(r.outcome, PAY_CHARGE_AUTH_REQUIRED);
    r = sm_answer("generic", 404, "{\"error\":{\"code\":"
                                  "\"payment_method_unknown\"}}");
    cr_expect_eq(r.outcome, PAY_CHARGE_DECLINED);
    cr_expect_str_eq(r.decline_code, "payment_method_unknown");
}


/* --- the events --------------------------------------------------------------- */

Test(saved_methods, stripe_intent_that_saved_gives_method_saved)
{
    size_t       n;
    pay_event_t  ev[4];
    const char  *b =
        "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_1\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":1000,\"currency\":\"eur\","
        "\"customer\":\"cus_1\",\"payment_method\":\"pm_tok\","
        "\"setup_future_usage\":\"off_session\","
        "\"metadata\":{\"nonce\":\"m_1:co_1\"}}}}";

    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 4, &n), 0);
    cr_assert_eq(n, 2);
    /* the intent's own news: a capture of an automatic checkout, which
     * the database ignores */
    cr_expect_eq(ev[0].kind, PAY_EVT_CAPTURE_SUCCEEDED);
    cr_expect_eq(ev[1].kind, PAY_EVT_METHOD_SAVED);
    cr_expect_str_eq(ev[1].event_id, "evt_1:payment_method");
    cr_expect_str_eq(ev[1].reference, "m_1:co_1");
    cr_expect_str_eq(ev[1].method, "pm_tok");
    cr_expect_str_eq(ev[1].psp_customer, "cus_1");
    cr_expect_str_eq(ev[1].token, "");

    /* room for one event only: the method waits for none */
    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 1, &n), 0);
    cr_expect_eq(n, 1);
}


Test(saved_methods, stripe_off_session_intent_pays_its_checkout)
{
    size_t       n;
    pay_event_t  ev[4];
    const char  *b =
        "{\"id\":\"evt_2\",\"type\":\"payment_intent.succeeded\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_9\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":1000,\"currency\":\"eur\","
        "\"status\":\"succeeded\",\"metadata\":{\"charge\":\"m_1:ren_1\"}}}}";

    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_SUCCEEDED);
    cr_expect(ev[0].captured);
    cr_expect_str_eq(ev[0].token, "pi_9");
    cr_expect_str_eq(ev[0].payment_ref, "pi_9");
    cr_expect_str_eq(ev[0].reference, "m_1:ren_1");
    cr_expect_eq(ev[0].amount, 1000);
    cr_expect_str_eq(ev[0].currency, "EUR");
}


/*
 * An intent whose metadata.nonce is not its metadata.charge is the
 * charge's alone: a merchant's own "nonce" key (sent by an earlier
 * release beside ours) named another merchant's checkout, and the
 * intent's success became that checkout's capture.
 */
Test(saved_methods, stripe_intent_nonce_other_than_its_charge_is_not_read)
{
    size_t       n;
    pay_event_t  ev[4];
    const char  *b =
        "{\"id\":\"evt_5\",\"type\":\"payment_intent.succeeded\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_5\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":1000,\"currency\":\"eur\","
        "\"status\":\"succeeded\",\"metadata\":{\"charge\":\"m_2:ren_5\","
        "\"nonce\":\"m_1:co_1\"}}}}";
    const char  *c =
        "{\"id\":\"evt_6\",\"type\":\"payment_intent.canceled\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_6\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"currency\":\"eur\",\"status\":\"canceled\","
        "\"metadata\":{\"charge\":\"m_2:ren_6\",\"nonce\":\"m_1:co_1\"}}}}";

    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m_2:ren_5");
    cr_expect_str_eq(ev[0].token, "pi_5");

    /* its release names no checkout: not m_1's */
    cr_assert_eq(pay_stripe_parse_events(c, strlen(c), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_neq(ev[0].kind, PAY_EVT_VOID_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "");
}


/* A Connect account's event (its "account" named) is never the
 * platform's: a session naming our nonce as its reference, or an intent
 * naming our charge, moves nothing. */
Test(saved_methods, stripe_connect_accounts_events_move_nothing)
{
    size_t       n;
    pay_event_t  ev[4];
    const char  *b =
        "{\"id\":\"evt_7\",\"type\":\"checkout.session.completed\","
        "\"account\":\"acct_1Seller\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"cs_7\",\"object\":"
        "\"checkout.session\",\"payment_status\":\"paid\","
        "\"client_reference_id\":\"m_1:co_1\",\"amount_total\":1000,"
        "\"currency\":\"eur\",\"payment_intent\":\"pi_7\"}}}";
    const char  *c =
        "{\"id\":\"evt_8\",\"type\":\"payment_intent.succeeded\","
        "\"account\":\"acct_1Seller\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"pi_8\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":1000,\"currency\":\"eur\","
        "\"status\":\"succeeded\",\"metadata\":{\"charge\":\"m_1:ren_8\"}}}}";

    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].reference, "");
    cr_expect_str_eq(ev[0].object_ref, "cs_7");

    cr_assert_eq(pay_stripe_parse_events(c, strlen(c), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].reference, "");
    cr_expect_str_eq(ev[0].token, "");
}


/* The merchant's metadata naming a key the intent's events are read by
 * is not sent (the gateway keeps it all the same). */
Test(saved_methods, stripe_charge_sends_no_merchant_key_named_as_ours)
{
    size_t              i;
    json_t             *md;
    sm_fixture_t        f;
    pay_psp_request_t   req;
    static const char  *keys[] = { "nonce", "charge", "capture" };

    for (i = 0; i < 3; i++) {
        sm_fixture(&f, 1);
        md = json_pack("{ss ss}", keys[i], "m_1:co_9", "note", "x");
        f.co.metadata = md;
        req = sm_build(PAY_DIALECT_STRIPE, &f);
        cr_expect(strstr(req.body, "co_9") == NULL, "%s: %s", keys[i],
                  req.body);
        cr_expect(strstr(req.body, "note") == NULL, "%s: %s", keys[i],
                  req.body);
        pay_psp_request_free(&req);
        json_decref(md);
    }

    /* any other key goes beside ours */
    sm_fixture(&f, 1);
    md = json_pack("{ss}", "note", "x");
    f.co.metadata = md;
    req = sm_build(PAY_DIALECT_STRIPE, &f);
    cr_expect(strstr(req.body, "&metadata[note]=x") != NULL, "%s", req.body);
    pay_psp_request_free(&req);
    json_decref(md);
}


/* Its payment_failed fails the checkout, except when the issuer wants the
 * shopper (authentication_required): the gateway made the 402 a hosted
 * page the shopper may still pay on; recorded, nothing moves. */
Test(saved_methods, stripe_off_session_intent_failed_unless_authentication)
{
    char         b[1024];
    size_t       n;
    pay_event_t  ev[4];
    static const char  fmt[] =
        "{\"id\":\"evt_3\",\"type\":\"payment_intent.payment_failed\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_9\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"currency\":\"eur\",\"status\":\"requires_payment_method\","
        "\"last_payment_error\":{\"type\":\"card_error\",\"code\":\"%s\"},"
        "\"metadata\":{\"charge\":\"m_1:ren_1\"}}}}";

    snprintf(b, sizeof(b), fmt, "card_declined");
    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_FAILED);
    cr_expect_str_eq(ev[0].reference, "m_1:ren_1");

    snprintf(b, sizeof(b), fmt, "authentication_required");
    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_PENDING);
    cr_expect_str_eq(ev[0].reference, "m_1:ren_1");
    cr_expect_str_eq(ev[0].object_ref, "");
    cr_expect_eq(ev[0].amount, 1000);
}


Test(saved_methods, generic_payment_method_saved)
{
    pay_event_t  ev;
    const char  *b =
        "{\"event_id\":\"gev_1\",\"type\":\"payment_method.saved\","
        "\"reference\":\"m_1:co_1\",\"payment_method\":\"gpm_1\","
        "\"brand\":\"visa\",\"last4\":\"4242\",\"exp_month\":12,"
        "\"exp_year\":2030}";
    const char  *bad =
        "{\"event_id\":\"gev_2\",\"type\":\"payment_method.saved\","
        "\"reference\":\"m_1:co_1\",\"payment_method\":\"gpm_1\","
        "\"last4\":\"42x2\"}";

    cr_assert_eq(pay_generic_parse_event(b, strlen(b), &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_METHOD_SAVED);
    cr_expect_str_eq(ev.method, "gpm_1");
    cr_expect_str_eq(ev.brand, "visa");
    cr_expect_str_eq(ev.last4, "4242");
    cr_expect_eq(ev.exp_month, 12);
    cr_expect_eq(ev.exp_year, 2030);

    cr_expect_eq(pay_generic_parse_event(bad, strlen(bad), &ev), -1);
}


/* --- the detach at the PSP ----------------------------------------------------- */

Test(saved_methods, detach_requests_exact)
{
    pay_psp_detach_t  q;

    cr_assert_eq(pay_psp_detach_request(PAY_DIALECT_STRIPE, "pm_1Abc", NULL,
                                        NULL, &q), 0);
    cr_expect_str_eq(q.method, "POST");
    cr_expect_str_eq(q.path, "/v1/payment_methods/pm_1Abc/detach");
    cr_expect_str_eq(q.body, "");
    cr_expect_str_eq(q.content_type, "application/x-www-form-urlencoded");
    free(q.path);

    /* every part percent-encoded: a merchant account with a space and an
     * ampersand cannot add a parameter */
    cr_assert_eq(pay_psp_detach_request(PAY_DIALECT_ADYEN, "8415698462516992",
                                        "cu_0123456789abcdef01234567",
                                        "Shop Co&x=1", &q), 0);
    cr_expect_str_eq(q.method, "DELETE");
    cr_expect_str_eq(q.path, "/v71/storedPaymentMethods/8415698462516992"
                             "?shopperReference=cu_0123456789abcdef01234567"
                             "&merchantAccount=Shop%20Co%26x%3D1");
    cr_expect_null(q.body);
    free(q.path);

    cr_assert_eq(pay_psp_detach_request(PAY_DIALECT_GENERIC, "gpm_a/b", NULL,
                                        NULL, &q), 0);
    cr_expect_str_eq(q.method, "DELETE");
    cr_expect_str_eq(q.path, "/payment_methods/gpm_a%2Fb");
    free(q.path);

    /* Adyen needs the shopper and the merchant account; no token, none */
    cr_expect_eq(pay_psp_detach_request(PAY_DIALECT_ADYEN, "1", NULL, "M",
                                        &q), -1);
    cr_expect_null(q.path);
    cr_expect_eq(pay_psp_detach_request(PAY_DIALECT_ADYEN, "1", "cu_1", "",
                                        &q), -1);
    cr_expect_eq(pay_psp_detach_request(PAY_DIALECT_STRIPE, "", NULL, NULL,
                                        &q), -1);
    cr_expect_eq(pay_psp_detach_request((pay_dialect_e) 0, "pm_1", NULL,
                                        NULL, &q), -1);
    cr_expect_null(q.path);
}


Test(saved_methods, detach_answers)
{
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_STRIPE, 200),
                 PAY_DETACH_DONE);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_ADYEN, 204),
                 PAY_DETACH_DONE);
    /* already detached, or unknown there: the goal is reached */
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_STRIPE, 400),
                 PAY_DETACH_GONE);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_ADYEN, 422),
                 PAY_DETACH_GONE);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_GENERIC, 404),
                 PAY_DETACH_GONE);
    /* a 400 or 422 of another dialect is a refusal */
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_ADYEN, 400),
                 PAY_DETACH_REFUSED);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_GENERIC, 422),
                 PAY_DETACH_REFUSED);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_STRIPE, 401),
                 PAY_DETACH_AUTH);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_ADYEN, 403),
                 PAY_DETACH_AUTH);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_STRIPE, 0),
                 PAY_DETACH_RETRY);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_STRIPE, 429),
                 PAY_DETACH_RETRY);
    cr_expect_eq(pay_psp_detach_answer(PAY_DIALECT_GENERIC, 503),
                 PAY_DETACH_RETRY);
}


/* --- a save without a charge ("mode": "setup") ------------------------------ */

#define SM_SETUP  "{\"checkout_id\":\"co_1\",\"mode\":\"setup\"," \
                  "\"success_url\":\"https://shop.example/ok\"," \
                  "\"cancel_url\":\"https://shop.example/no\"%s}"
#define SM_SAVE   ",\"save_payment_method\":{\"customer\":\"c_1\"," \
                  "\"usage\":\"off_session\",\"shopper_agreed\":true}"


static int
sm_setup_parse(const char *extra, pay_checkout_t *co, pay_verdict_t *v)
{
    char  body[2048];

    snprintf(body, sizeof(body), SM_SETUP, extra);

    return pay_checkout_parse(body, strlen(body), co, v);
}


Test(saved_methods, setup_parsed)
{
    char            *orders;
    pay_checkout_t   co;
    pay_verdict_t    v;

    cr_assert_eq(sm_setup_parse(",\"currency\":\"JPY\"" SM_SAVE, &co, &v), 0,
                 "%s", v.detail);
    cr_expect(co.setup);
    cr_expect_str_eq(co.currency, "JPY");
    cr_expect_eq(co.exponent, 0);
    cr_expect_eq(co.total, 0);
    cr_expect_eq(co.norders, 0);
    cr_expect_str_eq(co.save_usage, "off_session");
    orders = pay_checkout_orders_json(&co);
    cr_expect_str_eq(orders, "[]");
    free(orders);
    pay_checkout_free(&co);

    /* "payment" is the default, said or not */
    cr_assert_eq(sm_parse(",\"mode\":\"payment\"", &co, &v), 0, "%s",
                 v.detail);
    cr_expect(!co.setup);
    cr_expect_eq(co.total, 1000);
    pay_checkout_free(&co);
}


Test(saved_methods, setup_refused)
{
    size_t           i;
    pay_checkout_t   co;
    pay_verdict_t    v;
    static const struct {
        const char  *extra;
        pay_err_e    err;
    }  bad[] = {
        /* no save */
        { ",\"currency\":\"EUR\"", PAY_ERR_INVALID_REQUEST },
        /* no currency, or not one */
        { SM_SAVE, PAY_ERR_UNSUPPORTED_CURRENCY },
        { ",\"currency\":\"eur\"" SM_SAVE, PAY_ERR_UNSUPPORTED_CURRENCY },
        /* orders, a capture, a charge of a saved method */
        { ",\"currency\":\"EUR\",\"payment_orders\":[]" SM_SAVE,
          PAY_ERR_INVALID_REQUEST },
        { ",\"currency\":\"EUR\",\"capture\":\"automatic\"" SM_SAVE,
          PAY_ERR_INVALID_REQUEST },
        { ",\"currency\":\"EUR\",\"payment_method\":\"" SM_PM "\","
          "\"off_session\":true", PAY_ERR_INVALID_REQUEST },
        { ",\"currency\":\"EUR\",\"payment_method\":\"" SM_PM "\","
          "\"off_session\":true" SM_SAVE, PAY_ERR_INVALID_REQUEST },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(sm_setup_parse(bad[i].extra, &co, &v), -1,
                     "accepted: %s", bad[i].extra);
        cr_expect_eq(v.err, bad[i].err, "%s: %s", bad[i].extra, v.detail);
    }

    /* another mode; a currency outside a setup */
    cr_expect_eq(sm_parse(",\"mode\":\"subscription\"", &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);
    cr_expect_eq(sm_parse(",\"currency\":\"EUR\"", &co, &v), -1);
    cr_expect_eq(v.err, PAY_ERR_INVALID_REQUEST);
}


/* the fixture as a setup: no orders, total 0 */
static void
sm_setup_fixture(sm_fixture_t *f)
{
    sm_fixture(f, 0);
    f->co.setup = 1;
    f->co.norders = 0;
    f->co.orders = NULL;
    f->co.total = 0;
}


Test(saved_methods, stripe_setup_session_exact)
{
    sm_fixture_t       f;
    pay_psp_request_t  req;

    sm_setup_fixture(&f);
    req = sm_build(PAY_DIALECT_STRIPE, &f);

    cr_expect_str_eq(req.path, "/v1/checkout/sessions");
    cr_expect_str_eq(req.body,
        "mode=setup&currency=eur&payment_method_types[0]=card"
        "&client_reference_id=m_1%3Aco_1"
        "&success_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fp%2Fco_1"
        "%3Ft%3Da"
        "&cancel_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fp%2Fco_1"
        "%3Ft%3Db"
        "&expires_at=1795341600&metadata[merchant_id]=m_1"
        "&metadata[checkout_id]=co_1"
        "&setup_intent_data[metadata][nonce]=m_1%3Aco_1"
        "&setup_intent_data[metadata][usage]=off_session"
        "&customer_creation=always");
    pay_psp_request_free(&req);

    /* the Customer of the customer's earlier saves */
    f.reg.psp_customer = "cus_Known";
    req = sm_build(PAY_DIALECT_STRIPE, &f);
    cr_expect(strstr(req.body, "&customer=cus_Known") != NULL, "%s",
              req.body);
    cr_expect(strstr(req.body, "customer_creation") == NULL);
    cr_expect(strstr(req.body, "line_items") == NULL);
    cr_expect(strstr(req.body, "payment_intent_data") == NULL);
    pay_psp_request_free(&req);

    /* a setup that saves nothing is no request */
    f.co.save_usage = NULL;
    cr_expect_neq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg,
                                             &req), 0);
}


Test(saved_methods, adyen_and_generic_setup_sessions)
{
    json_t             *j;
    sm_fixture_t        f;
    pay_psp_request_t   req;

    sm_setup_fixture(&f);

    req = sm_build(PAY_DIALECT_ADYEN, &f);
    j = json_loads(req.body, 0, NULL);
    cr_assert_not_null(j, "%s", req.body);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(j,
                     "amount"), "value")), 0);
    cr_expect_null(json_object_get(j, "lineItems"), "%s", req.body);
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "storePaymentMethodMode")), "enabled");
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "shopperReference")), "cu_0123456789abcdef01234567");
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "recurringProcessingModel")), "Subscription");
    json_decref(j);
    pay_psp_request_free(&req);

    req = sm_build(PAY_DIALECT_GENERIC, &f);
    j = json_loads(req.body, 0, NULL);
    cr_assert_not_null(j, "%s", req.body);
    cr_expect_str_eq(json_string_value(json_object_get(j, "amount")), "0.00");
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "setup");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j,
                         "save_payment_method"), "usage")), "off_session");
    json_decref(j);
    pay_psp_request_free(&req);

    /* orders in a setup, or none in a payment: no request */
    f.co.setup = 0;
    cr_expect_neq(pay_psp_build_registration(PAY_DIALECT_ADYEN, &f.reg,
                                             &req), 0);
}


Test(saved_methods, stripe_setup_intent_gives_method_saved)
{
    size_t       n;
    pay_event_t  ev[2];
    const char  *b =
        "{\"id\":\"evt_2\",\"type\":\"setup_intent.succeeded\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"seti_1\","
        "\"object\":\"setup_intent\",\"status\":\"succeeded\","
        "\"usage\":\"off_session\",\"customer\":\"cus_1\","
        "\"payment_method\":\"pm_tok\","
        "\"metadata\":{\"nonce\":\"m_1:co_1\"}}}}";
    const char  *other =
        "{\"id\":\"evt_3\",\"type\":\"setup_intent.succeeded\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"seti_2\","
        "\"object\":\"setup_intent\",\"payment_method\":\"pm_tok\","
        "\"metadata\":{}}}}";

    cr_assert_eq(pay_stripe_parse_events(b, strlen(b), ev, 2, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_METHOD_SAVED);
    cr_expect_str_eq(ev[0].event_id, "evt_2");
    cr_expect_str_eq(ev[0].reference, "m_1:co_1");
    cr_expect_str_eq(ev[0].method, "pm_tok");
    cr_expect_str_eq(ev[0].psp_customer, "cus_1");
    cr_expect_str_eq(ev[0].payment_ref, "seti_1");
    cr_expect_str_eq(ev[0].token, "");
    cr_expect_eq(ev[0].amount, PAY_EVT_AMOUNT_ABSENT);

    /* a setup intent that is none of ours saves nothing */
    cr_assert_eq(pay_stripe_parse_events(other, strlen(other), ev, 2, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
}


/* --- an off-session charge captured later -------------------------------------- */

/* Each dialect asks for a manual capture as its sessions do: Stripe's
 * capture_method with our nonce as metadata[nonce] too, Adyen's
 * additionalData.manualCapture, the generic "capture": "manual". */
Test(saved_methods, manual_charge_exact_per_dialect)
{
    json_t             *j;
    sm_fixture_t        f;
    pay_psp_request_t   req;

    sm_fixture(&f, 1);
    f.co.manual_capture = 1;

    req = sm_build(PAY_DIALECT_STRIPE, &f);
    cr_expect_str_eq(req.path, "/v1/payment_intents");
    cr_expect_str_eq(req.body,
                     "amount=1000&currency=eur&customer=cus_Abc"
                     "&payment_method=pm_1QstripeToken"
                     "&payment_method_types[0]=card&off_session=true"
                     "&confirm=true&capture_method=manual"
                     "&metadata[charge]=m_1%3Aco_1"
                     "&metadata[nonce]=m_1%3Aco_1"
                     "&metadata[merchant_id]=m_1&metadata[checkout_id]=co_1");
    pay_psp_request_free(&req);

    f.reg.charge_token = "8415718415172200";
    req = sm_build(PAY_DIALECT_ADYEN, &f);
    cr_expect_str_eq(req.path, "/v71/payments");
    j = json_loads(req.body, 0, NULL);
    cr_assert_not_null(j, "%s", req.body);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j,
                         "additionalData"), "manualCapture")), "true");
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "shopperInteraction")), "ContAuth");
    cr_expect_str_eq(json_string_value(json_object_get(j,
                         "recurringProcessingModel")), "Subscription");
    json_decref(j);
    pay_psp_request_free(&req);

    f.reg.charge_token = "gpm_tok";
    req = sm_build(PAY_DIALECT_GENERIC, &f);
    cr_expect_str_eq(req.path, "/payments");
    cr_expect_str_eq(req.body,
                     "{\"reference\":\"m_1:co_1\",\"payment_method\":"
                     "\"gpm_tok\",\"customer\":"
                     "\"cu_0123456789abcdef01234567\",\"amount\":\"10.00\","
                     "\"currency\":\"EUR\",\"off_session\":true,"
                     "\"capture\":\"manual\"}");
    pay_psp_request_free(&req);
}


/* A manual off-session charge's intent (metadata charge and nonce): its
 * news is a manual capture's, never the automatic charge's payment. */
Test(saved_methods, stripe_manual_charge_intent_is_a_manual_capture)
{
    size_t       n;
    pay_event_t  ev[4];
    const char  *held =
        "{\"id\":\"evt_3\",\"type\":"
        "\"payment_intent.amount_capturable_updated\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"pi_7\",\"object\":"
        "\"payment_intent\",\"amount\":1000,\"amount_capturable\":1000,"
        "\"currency\":\"eur\",\"status\":\"requires_capture\","
        "\"metadata\":{\"charge\":\"m_1:ren_2\",\"nonce\":\"m_1:ren_2\"}}}}";
    const char  *captured =
        "{\"id\":\"evt_4\",\"type\":\"payment_intent.succeeded\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_7\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":400,\"currency\":\"eur\","
        "\"status\":\"succeeded\",\"metadata\":{\"charge\":\"m_1:ren_2\","
        "\"nonce\":\"m_1:ren_2\",\"capture\":\"m_1:cap_1\"}}}}";
    const char  *released =
        "{\"id\":\"evt_5\",\"type\":\"payment_intent.canceled\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_7\","
        "\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":0,\"currency\":\"eur\","
        "\"status\":\"canceled\",\"metadata\":{\"charge\":\"m_1:ren_2\","
        "\"nonce\":\"m_1:ren_2\"}}}}";

    cr_assert_eq(pay_stripe_parse_events(held, strlen(held), ev, 4, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_AUTHORIZED);
    cr_expect_str_eq(ev[0].reference, "m_1:ren_2");
    cr_expect_str_eq(ev[0].payment_ref, "pi_7");
    cr_expect_eq(ev[0].amount, 1000);

    cr_assert_eq(pay_stripe_parse_events(captured, strlen(captured), ev, 4,
                                         &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_CAPTURE_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m_1:cap_1");

    cr_assert_eq(pay_stripe_parse_events(released, strlen(released), ev, 4,
                                         &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_VOID_SUCCEEDED);
    cr_expect_str_eq(ev[0].reference, "m_1:ren_2");
}


/* The sweeper's look-up of a manual off-session charge whose webhook never
 * came: requires_capture with our metadata.nonce is its hold (a success not
 * captured, of the whole amount); without it, an intent under way. */
Test(saved_methods, stripe_manual_charge_looked_up_is_a_hold)
{
    pay_event_t       ev;
    pay_psp_lookup_t  in;
    const char       *held =
        "{\"id\":\"pi_7\",\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_capturable\":1000,\"amount_received\":0,"
        "\"currency\":\"eur\",\"status\":\"requires_capture\","
        "\"metadata\":{\"charge\":\"m_1:ren_2\",\"nonce\":\"m_1:ren_2\"}}";
    const char       *other =
        "{\"id\":\"pi_7\",\"object\":\"payment_intent\",\"amount\":1000,"
        "\"amount_received\":0,\"currency\":\"eur\","
        "\"status\":\"requires_capture\","
        "\"metadata\":{\"charge\":\"m_1:ren_2\"}}";

    memset(&in, 0, sizeof(in));
    in.token = "pi_7";
    in.nonce = "m_1:ren_2";

    cr_assert_eq(pay_dialect_stripe.payment_lookup_answer(&in, 200, held,
                     strlen(held), 1795341600, &ev), PAY_LOOKUP_DECIDED);
    cr_expect_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_expect(!ev.captured);
    cr_expect_eq(ev.amount, 1000);
    cr_expect_str_eq(ev.currency, "EUR");
    cr_expect_str_eq(ev.reference, "m_1:ren_2");
    cr_expect_str_eq(ev.payment_ref, "pi_7");

    cr_expect_eq(pay_dialect_stripe.payment_lookup_answer(&in, 200, other,
                     strlen(other), 1795341600, &ev), PAY_LOOKUP_PENDING);
}
