/*
 * The mock PSP's saved payment methods (vault.c), through Stripe's API:
 * a session that saves the method stores it when the shopper pays; an
 * off-session payment intent charges it once per Idempotency-Key; a
 * charge rule declines or asks for authentication once; a method the PSP
 * detached, another customer's, or an unknown one is refused.
 */

#include "mock_client.h"


/* A session that saves the method, paid: the vault's token and customer
 * (static buffers). */
static void
vault_saved(const char *ref, char *token, char *customer)
{
    resp_t   r;
    char     body[4096];
    size_t   i;
    json_t  *it;

    form(body, sizeof(body), ref, 1000,
         "&payment_intent_data[setup_future_usage]=off_session"
         "&customer_creation=always");
    create(&r, ref, body);
    cr_assert_eq(r.status, 200, "create: %ld %s", r.status, r.body);

    {
        char  path[256];

        snprintf(path, sizeof(path), "/_control/sessions/%s/pay",
                 str(&r, "id"));
        resp_free(&r);
        control(&r, "POST", path, NULL);
        cr_assert(r.status >= 200 && r.status < 300, "pay: %ld %s",
                  r.status, r.body);
        resp_free(&r);
    }

    control(&r, "GET", "/_control/payment_methods", NULL);
    cr_assert_eq(r.status, 200);

    json_array_foreach(json_object_get(r.json, "payment_methods"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "reference")), ref)
            == 0)
        {
            snprintf(token, 64, "%s",
                     json_string_value(json_object_get(it, "token")));
            snprintf(customer, 64, "%s",
                     json_string_value(json_object_get(it, "customer")));
        }
    }

    resp_free(&r);
    cr_assert(strncmp(token, "pm_", 3) == 0, "no method saved for %s", ref);
    cr_assert(strncmp(customer, "cus_", 4) == 0);
}


static void
charge(resp_t *r, const char *key, const char *token, const char *customer,
    const char *ref)
{
    char  body[1024];

    snprintf(body, sizeof(body),
             "amount=1000&currency=usd&customer=%s&payment_method=%s"
             "&payment_method_types[0]=card&off_session=true&confirm=true"
             "&metadata[charge]=%s", customer, token, ref);
    request(r, "POST", "/v1/payment_intents", AUTH_GOOD, key,
            "application/x-www-form-urlencoded", body);
}


MOCK_TEST(vault_saves_when_paid_and_charges_once_per_key)
{
    resp_t      r, again;
    long long   created, requests;
    char        token[64], customer[64];

    vault_saved("m1:co_save", token, customer);

    charge(&r, "m1:ren_1", token, customer, "m1:ren_1");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "status"), "succeeded");
    cr_expect(strncmp(str(&r, "id"), "pi_", 3) == 0);

    /* the same key: the same intent, not a second charge */
    charge(&again, "m1:ren_1", token, customer, "m1:ren_1");
    cr_assert_eq(again.status, 200);
    cr_expect(again.replayed);
    cr_expect_str_eq(str(&again, "id"), str(&r, "id"));

    registrations("m1:ren_1", &created, &requests);
    cr_expect_eq(created, 1);
    cr_expect_eq(requests, 2);

    resp_free(&r);
    resp_free(&again);
}


MOCK_TEST(vault_rules_decline_and_ask_for_authentication_once)
{
    resp_t  r;
    char    token[64], customer[64];

    vault_saved("m1:co_save", token, customer);

    control(&r, "POST", "/_control/charges",
            "{\"reference\":\"m1:ren_2\",\"outcome\":\"decline\","
            "\"code\":\"insufficient_funds\"}");
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    charge(&r, "m1:ren_2", token, customer, "m1:ren_2");
    cr_assert_eq(r.status, 402, "%ld %s", r.status, r.body);
    cr_expect_str_eq(error_field(&r, "code"), "card_declined");
    cr_expect_str_eq(error_field(&r, "decline_code"), "insufficient_funds");
    resp_free(&r);

    /* once: another key of the same reference is charged */
    charge(&r, "m1:ren_2b", token, customer, "m1:ren_2");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    resp_free(&r);

    control(&r, "POST", "/_control/charges",
            "{\"reference\":\"m1:ren_3\",\"outcome\":"
            "\"authentication_required\"}");
    resp_free(&r);

    charge(&r, "m1:ren_3", token, customer, "m1:ren_3");
    cr_assert_eq(r.status, 402, "%ld %s", r.status, r.body);
    cr_expect_str_eq(error_field(&r, "code"), "authentication_required");
    resp_free(&r);

    control(&r, "POST", "/_control/charges",
            "{\"reference\":\"m1:ren_4\",\"outcome\":\"sometimes\"}");
    cr_expect_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(vault_refuses_unknown_foreign_and_detached_methods)
{
    resp_t  r;
    char    token[64], customer[64];

    vault_saved("m1:co_save", token, customer);

    charge(&r, "m1:ren_5", "pm_nosuchmethod", customer, "m1:ren_5");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    cr_expect_str_eq(error_field(&r, "code"), "resource_missing");
    resp_free(&r);

    charge(&r, "m1:ren_6", token, "cus_someoneelse", "m1:ren_6");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    /* not off-session: refused */
    request(&r, "POST", "/v1/payment_intents", AUTH_GOOD, "m1:ren_7",
            "application/x-www-form-urlencoded",
            "amount=1000&currency=usd&confirm=true");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    control(&r, "POST", "/_control/payment_methods/detach",
            "{\"reference\":\"m1:co_save\"}");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    resp_free(&r);

    charge(&r, "m1:ren_8", token, customer, "m1:ren_8");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);
}


/* The gateway's detach (Stripe's POST /v1/payment_methods/{id}/detach):
 * 200 once, then 400 "not attached"; an unknown method 404; a bad key
 * 401; a detached method is never charged again. */
MOCK_TEST(vault_detach_through_stripes_api)
{
    resp_t  r;
    char    token[64], customer[64], path[128];

    vault_saved("m1:co_det", token, customer);
    snprintf(path, sizeof(path), "/v1/payment_methods/%s/detach", token);

    request(&r, "POST", path, AUTH_BAD, "m1:det",
            "application/x-www-form-urlencoded", "");
    cr_expect_eq(r.status, 401, "%ld %s", r.status, r.body);
    resp_free(&r);

    request(&r, "POST", path, AUTH_GOOD, "m1:det",
            "application/x-www-form-urlencoded", "");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "id"), token);
    cr_expect(json_is_null(json_object_get(r.json, "customer")));
    resp_free(&r);

    request(&r, "POST", path, AUTH_GOOD, "m1:det",
            "application/x-www-form-urlencoded", "");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    charge(&r, "m1:ren_9", token, customer, "m1:ren_9");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    request(&r, "POST", "/v1/payment_methods/pm_nosuchmethod/detach",
            AUTH_GOOD, "m1:det2", "application/x-www-form-urlencoded", "");
    cr_expect_eq(r.status, 404, "%ld %s", r.status, r.body);
    cr_expect_str_eq(error_field(&r, "code"), "resource_missing");
    resp_free(&r);

    control(&r, "GET", "/_control/payment_methods", NULL);
    cr_assert_eq(r.status, 200);
    cr_expect(strstr(r.body, "\"detach_requests\": 2") != NULL
              || strstr(r.body, "\"detach_requests\":2") != NULL,
              "%s", r.body);
    resp_free(&r);
}


/* A method put in the vault by the control API (no session, no event) is
 * charged as a saved one: its customer's only, and the charge rules apply */
MOCK_TEST(vault_method_seeded_by_control_is_charged)
{
    resp_t  r;
    char    token[64], customer[64];

    control(&r, "POST", "/_control/payment_methods",
            "{\"reference\":\"m1:co_seed\",\"dialect\":\"stripe\","
            "\"customer\":\"cus_Seeded1\",\"usage\":\"off_session\"}");
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "reference"), "m1:co_seed");
    cr_expect_str_eq(str(&r, "status"), "active");
    snprintf(token, sizeof(token), "%s", str(&r, "token"));
    snprintf(customer, sizeof(customer), "%s", str(&r, "customer"));
    resp_free(&r);
    cr_assert(strncmp(token, "pm_", 3) == 0, "%s", token);
    cr_expect_str_eq(customer, "cus_Seeded1");

    control(&r, "POST", "/_control/charges",
            "{\"reference\":\"m1:ren_seed\",\"outcome\":"
            "\"authentication_required\"}");
    resp_free(&r);

    charge(&r, "m1:ren_seed", token, customer, "m1:ren_seed");
    cr_assert_eq(r.status, 402, "%ld %s", r.status, r.body);
    resp_free(&r);

    charge(&r, "m1:ren_seed2", token, "cus_Other", "m1:ren_seed2");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    /* customer and usage are required */
    control(&r, "POST", "/_control/payment_methods",
            "{\"reference\":\"m1:co_seed2\",\"dialect\":\"stripe\"}");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);
}


/*
 * Checkout mode=setup: no line_items, no payment_intent_data; the session
 * completes with nothing to pay, and the vault saves the method under the
 * Customer it names; an off-session charge of it succeeds.
 */
MOCK_TEST(vault_setup_session_saves_under_its_customer)
{
    resp_t       r;
    char         path[256], token[64];
    size_t       i;
    json_t      *it;
    const char  *setup =
        "mode=setup&currency=usd&payment_method_types[0]=card"
        "&client_reference_id=m1:co_setup"
        "&success_url=https://shop.example/ok"
        "&cancel_url=https://shop.example/no"
        "&setup_intent_data[metadata][nonce]=m1:co_setup"
        "&setup_intent_data[metadata][usage]=off_session"
        "&customer=cus_Known123";

    /* payment mode's parameters are refused in setup mode */
    create(&r, "m1:co_bad1", "mode=setup&currency=usd"
           "&success_url=https://shop.example/ok"
           "&line_items[0][price_data][currency]=usd");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    create(&r, "m1:co_bad2", "mode=setup&currency=usd"
           "&success_url=https://shop.example/ok"
           "&payment_intent_data[setup_future_usage]=off_session");
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);

    create(&r, "m1:co_bad3", "mode=setup&success_url=https://shop.example/ok");
    cr_expect_eq(r.status, 400, "no currency: %ld %s", r.status, r.body);
    resp_free(&r);

    create(&r, "m1:co_setup", setup);
    cr_assert_eq(r.status, 200, "create: %ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "mode"), "setup");
    cr_expect(json_is_null(json_object_get(r.json, "amount_total")));

    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", str(&r, "id"));
    resp_free(&r);
    control(&r, "POST", path, NULL);
    cr_assert(r.status >= 200 && r.status < 300, "pay: %ld %s", r.status,
              r.body);
    resp_free(&r);

    token[0] = '\0';
    control(&r, "GET", "/_control/payment_methods", NULL);
    cr_assert_eq(r.status, 200);

    json_array_foreach(json_object_get(r.json, "payment_methods"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "reference")),
                   "m1:co_setup") == 0)
        {
            snprintf(token, sizeof(token), "%s",
                     json_string_value(json_object_get(it, "token")));
            cr_expect_str_eq(json_string_value(json_object_get(it,
                                 "customer")), "cus_Known123");
        }
    }

    resp_free(&r);
    cr_assert(strncmp(token, "pm_", 3) == 0, "no method saved");

    charge(&r, "m1:ren_setup", token, "cus_Known123", "m1:ren_setup");
    cr_expect_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "status"), "succeeded");
    resp_free(&r);
}


/*
 * capture_method=manual on an off-session charge: the intent waits in
 * requires_capture (nothing received, all capturable); it is captured
 * once (the rest released) through the intent's /capture, or released
 * whole through its /cancel, as a manual-capture session's intent; the
 * look-up says requires_capture while it holds.  Any other
 * capture_method is refused.
 */
MOCK_TEST(vault_manual_charge_is_held_then_captured_or_released)
{
    resp_t  r;
    char    token[64], customer[64], body[1024], path[128], id[64];

    vault_saved("m1:co_man", token, customer);

    snprintf(body, sizeof(body),
             "amount=1000&currency=usd&customer=%s&payment_method=%s"
             "&payment_method_types[0]=card&off_session=true&confirm=true"
             "&capture_method=manual&metadata[charge]=m1:ren_m1"
             "&metadata[nonce]=m1:ren_m1", customer, token);
    request(&r, "POST", "/v1/payment_intents", AUTH_GOOD, "m1:ren_m1",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "status"), "requires_capture");
    cr_expect_eq(json_integer_value(json_object_get(r.json,
                                                    "amount_received")), 0);
    cr_expect_eq(json_integer_value(json_object_get(r.json,
                                                    "amount_capturable")),
                 1000);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/payment_intents/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "status"), "requires_capture");
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/payment_intents/%s/capture", id);
    request(&r, "POST", path, AUTH_GOOD, "m1:cap_m1",
            "application/x-www-form-urlencoded",
            "amount_to_capture=400&metadata[capture]=m1:cap_m1");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "status"), "succeeded");
    cr_expect_eq(json_integer_value(json_object_get(r.json,
                                                    "amount_received")), 400);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(r.json, "metadata"), "nonce")),
                     "m1:ren_m1");
    resp_free(&r);

    /* another, released whole */
    snprintf(body, sizeof(body),
             "amount=700&currency=usd&customer=%s&payment_method=%s"
             "&payment_method_types[0]=card&off_session=true&confirm=true"
             "&capture_method=manual&metadata[charge]=m1:ren_m2"
             "&metadata[nonce]=m1:ren_m2", customer, token);
    request(&r, "POST", "/v1/payment_intents", AUTH_GOOD, "m1:ren_m2",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    snprintf(path, sizeof(path), "/v1/payment_intents/%s/cancel",
             str(&r, "id"));
    resp_free(&r);

    request(&r, "POST", path, AUTH_GOOD, "m1:void_m2",
            "application/x-www-form-urlencoded", "");
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect_str_eq(str(&r, "status"), "canceled");
    resp_free(&r);

    snprintf(body, sizeof(body),
             "amount=700&currency=usd&customer=%s&payment_method=%s"
             "&payment_method_types[0]=card&off_session=true&confirm=true"
             "&capture_method=later&metadata[charge]=m1:ren_m3",
             customer, token);
    request(&r, "POST", "/v1/payment_intents", AUTH_GOOD, "m1:ren_m3",
            "application/x-www-form-urlencoded", body);
    cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);
}


/*
 * A paid session that saved the method, looked up with
 * expand[]=payment_intent.payment_method: the intent's payment_method is
 * the PaymentMethod object (its id the vault's token, its card the display
 * fields); POST /_control/sessions/{id}/method_event sends the method's
 * event late, and a session that saved nothing is a 409.
 */
MOCK_TEST(vault_paid_session_expands_its_method_and_sends_its_event_late)
{
    resp_t        r;
    char          body[4096], path[256], id[128];
    json_t       *pm;
    const char   *ref = "m1:co_late";

    form(body, sizeof(body), ref, 1000,
         "&payment_intent_data[setup_future_usage]=off_session"
         "&payment_intent_data[metadata][nonce]=m1:co_late"
         "&customer_creation=always");
    fault("{\"match\":\"m1:co_late\",\"webhook_no_method\":true}");
    create(&r, ref, body);
    cr_assert_eq(r.status, 200, "create: %ld %s", r.status, r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    /* not paid yet: no method to send */
    snprintf(path, sizeof(path), "/_control/sessions/%s/method_event", id);
    control(&r, "POST", path, NULL);
    cr_expect_eq(r.status, 409, "%ld %s", r.status, r.body);
    resp_free(&r);

    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", id);
    control(&r, "POST", path, NULL);
    cr_assert(r.status >= 200 && r.status < 300, "pay: %ld %s", r.status,
              r.body);
    resp_free(&r);

    snprintf(path, sizeof(path),
             "/v1/checkout/sessions/%s?expand%%5B%%5D="
             "payment_intent.payment_method", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    pm = json_object_get(json_object_get(r.json, "payment_intent"),
                         "payment_method");
    cr_assert(json_is_object(pm), "%s", r.body);
    cr_expect(strncmp(json_string_value(json_object_get(pm, "id")), "pm_", 3)
              == 0, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(pm, "object")),
                     "payment_method");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(pm, "card"), "last4")), "4242");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(r.json, "payment_intent"),
                         "setup_future_usage")), "off_session");
    resp_free(&r);

    /* without the nested expand: the id, as before */
    snprintf(path, sizeof(path),
             "/v1/checkout/sessions/%s?expand%%5B%%5D=payment_intent", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    cr_expect(json_is_string(json_object_get(json_object_get(r.json,
                                 "payment_intent"), "payment_method")),
              "%s", r.body);
    resp_free(&r);

    snprintf(path, sizeof(path), "/_control/sessions/%s/method_event", id);
    control(&r, "POST", path, NULL);
    cr_expect_eq(r.status, 200, "%ld %s", r.status, r.body);
    resp_free(&r);
}
