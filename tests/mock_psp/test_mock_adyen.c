/*
 * The mock PSP's Adyen API: the HMAC, registration, the hosted page and
 * notifications, the Transfers API on its own port.
 */

#include <unistd.h>

#include "mock_dialects.h"


/* --- Adyen: the HMAC ------------------------------------------------------ */

Test(dialects, adyen_hmac_matches_the_psp_facts_vectors)
{
    size_t          i;
    char           *data, sig[MOCK_ADYEN_HMAC_LEN], own[64];
    unsigned char   key[32];

    static const struct {
        const char  *key, *value, *code, *expect;
    } v[] = {
        { "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00",
          "1130", "AUTHORISATION",
          "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=" },
        { "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
          "0", "REFUND",
          "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8=" }
    };

    for (i = 0; i < 2; i++) {
        /* the mock's signer, built from the fields as a notification is */
        data = mock_adyen_hmac_data("7914073381342284", "", "TestMerchant",
                                    "TestPayment-1407325143704",
                                    atoll(v[i].value), "EUR", v[i].code,
                                    "true");
        cr_assert_not_null(data);
        cr_assert_eq(strncmp(data, "7914073381342284::TestMerchant:"
                             "TestPayment-1407325143704:", 52), 0, "%s",
                     data);

        cr_assert_eq(mock_adyen_hmac_key(v[i].key, key), 0);
        cr_assert_eq(mock_adyen_hmac_sign(key, data, strlen(data), sig), 0);
        cr_assert_str_eq(sig, v[i].expect, "vector %zu: %s", i, data);

        /* and the test's own, which checks the mock's deliveries below */
        test_adyen_hmac(v[i].key, data, own);
        cr_assert_str_eq(own, v[i].expect);

        free(data);
    }

    /* the key parser takes either case and nothing else */
    cr_assert_eq(mock_adyen_hmac_key("dfb1eb5485895cfa84146406857104abb4cbca"
                                     "bdc8aaf103a624c8f6a3eaab00", key), 0);
    cr_assert_eq(key[0], 0xdf);
    cr_assert_eq(key[31], 0x00);
    cr_assert_neq(mock_adyen_hmac_key("DFB1", key), 0);
    cr_assert_neq(mock_adyen_hmac_key("XFB1EB5485895CFA84146406857104ABB4CBCA"
                                      "BDC8AAF103A624C8F6A3EAAB00", key), 0);

    /* a missing field is an empty string */
    data = mock_adyen_hmac_data(NULL, NULL, "M", NULL, 5, "EUR", NULL, NULL);
    cr_assert_str_eq(data, "::M::5:EUR::");
    free(data);
}


/* --- Adyen: registration -------------------------------------------------- */

/* The tests' own request is built as the gateway's: the same order, the
 * same bytes when it is built again for a retry a second later (the mock,
 * as Adyen, refuses another body under the same key). */
Test(dialects, adyen_request_built_again_for_a_retry_is_the_same_bytes)
{
    char  *first, *again;

    first = dump(adyen_json("m1:co_rt", 1500, "EUR", ADYEN_RETURN));
    usleep(1100 * 1000);
    again = dump(adyen_json("m1:co_rt", 1500, "EUR", ADYEN_RETURN));
    cr_assert_str_eq(again, first);

    free(first);
    free(again);
}


DIALECT_TEST(adyen_registration_key_and_idempotency, dl_start)
{
    char         key[80], when[32], url[256], id[64], *body, *other;
    resp_t       r, again;
    long long    created, requests;

    body = dump(adyen_json("m1:co_a1", 1500, "EUR", ADYEN_RETURN));
    other = dump(adyen_json("m1:co_a1", 1600, "EUR", ADYEN_RETURN));

    /* no key, a wrong key, a Bearer instead: Adyen's 401, exactly */
    dl_post(&r, "/v71/sessions", NULL, "m1:co_a1", "application/json",
            body);
    adyen_expect_error(&r, 401, "security");
    cr_assert_str_eq(str(&r, "errorCode"), "000");
    cr_assert_str_eq(str(&r, "message"),
                     "HTTP Status Response - Unauthorized");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY "x", "m1:co_a1",
            "application/json", body);
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "Authorization: Bearer " ADYEN_KEY,
            "m1:co_a1", "application/json", body);
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    /* the right key: 201 and Adyen's session */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_a1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_not(r.replayed);
    cr_assert_eq(strncmp(str(&r, "id"), "CS", 2), 0);
    cr_assert_gt(strlen(str(&r, "id")), 10);
    cr_assert_gt(strlen(str(&r, "sessionData")), 10);
    cr_assert_str_eq(str(&r, "reference"), "m1:co_a1");
    cr_assert_str_eq(str(&r, "merchantAccount"), "TestMerchant");
    cr_assert_str_eq(str(&r, "returnUrl"), ADYEN_RETURN);
    cr_assert_str_eq(str(&r, "mode"), "hosted");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r.json,
                     "amount"), "value")), 1500);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
                         r.json, "amount"), "currency")), "EUR");
    rfc3339(when, sizeof(when), time(NULL) + 3600);
    cr_assert_eq(strncmp(str(&r, "expiresAt"), when, 14), 0, "%s",
                 str(&r, "expiresAt"));
    snprintf(url, sizeof(url), "%s/pay/%s", mock_url, str(&r, "id"));
    cr_assert_str_eq(str(&r, "url"), url);

    /* the same key and body: the same answer, byte for byte, nothing new */
    dl_post(&again, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_a1",
            "application/json", body);
    cr_assert_eq(again.status, 201);
    cr_assert(again.replayed);
    cr_assert_str_eq(again.body, r.body);
    resp_free(&again);

    /* the same key, another body: 422 */
    dl_post(&again, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_a1",
            "application/json", other);
    adyen_expect_error(&again, 422, "validation");
    resp_free(&again);

    /* counted as the Stripe side counts: 6 requests, 1 session */
    registrations("m1:co_a1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 6);

    /* another key: another session */
    adyen_create("m1:co_a2", 1500, id);
    cr_assert_str_neq(id, str(&r, "id"));
    resp_free(&r);

    /* Idempotency-Key: at most 64 characters (Adyen's limit) */
    memset(key, 'k', 65);
    key[65] = '\0';
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, key,
            "application/json", other);
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);
    registrations(key, &created, &requests);
    cr_assert_eq(created, 0);

    key[64] = '\0';
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, key,
            "application/json", other);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    /* without a key: a new session every time */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", other);
    dl_post(&again, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", other);
    cr_assert_eq(r.status, 201);
    cr_assert_eq(again.status, 201);
    cr_assert_str_neq(str(&r, "id"), str(&again, "id"));
    resp_free(&r);
    resp_free(&again);

    free(body);
    free(other);
}


DIALECT_TEST(adyen_registration_validates_like_adyen, dl_start)
{
    size_t       i;
    json_t      *j;
    resp_t       r;
    long long    created, requests;
    char         when[32], key[32];

    static const char  *cases[] = {
        "merchantAccount", "amount.value", "amount.value:str", "currency",
        "currency:lower", "reference", "reference:long", "returnUrl",
        "returnUrl:ftp", "expiresAt:past", "expiresAt:25h", "expiresAt:num",
        "expiresAt:garbage", "mode", "lineItems", "lineItems:empty",
        "lineItems:sum", "lineItems:quantity"
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(key, sizeof(key), "m1:bad_%zu", i);
        j = adyen_json(key, 1500, "EUR", ADYEN_RETURN);

        if (strcmp(cases[i], "merchantAccount") == 0) {
            json_object_del(j, "merchantAccount");
        } else if (strcmp(cases[i], "amount.value") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "value",
                                json_integer(0));
        } else if (strcmp(cases[i], "amount.value:str") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "value",
                                json_string("1500"));
        } else if (strcmp(cases[i], "currency") == 0) {
            json_object_del(json_object_get(j, "amount"), "currency");
        } else if (strcmp(cases[i], "currency:lower") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "currency",
                                json_string("eur"));
        } else if (strcmp(cases[i], "reference") == 0) {
            json_object_del(j, "reference");
        } else if (strcmp(cases[i], "reference:long") == 0) {
            json_object_set_new(j, "reference", json_string(
                "0123456789012345678901234567890123456789"
                "01234567890123456789012345678901234567891"));
        } else if (strcmp(cases[i], "returnUrl") == 0) {
            json_object_del(j, "returnUrl");
        } else if (strcmp(cases[i], "returnUrl:ftp") == 0) {
            json_object_set_new(j, "returnUrl",
                                json_string("ftp://gw.example/r"));
        } else if (strcmp(cases[i], "expiresAt:past") == 0) {
            rfc3339(when, sizeof(when), time(NULL) - 10);
            json_object_set_new(j, "expiresAt", json_string(when));
        } else if (strcmp(cases[i], "expiresAt:25h") == 0) {
            rfc3339(when, sizeof(when), time(NULL) + 25 * 3600);
            json_object_set_new(j, "expiresAt", json_string(when));
        } else if (strcmp(cases[i], "expiresAt:num") == 0) {
            json_object_set_new(j, "expiresAt",
                                json_integer(time(NULL) + 3600));
        } else if (strcmp(cases[i], "expiresAt:garbage") == 0) {
            json_object_set_new(j, "expiresAt", json_string("tomorrow"));
        } else if (strcmp(cases[i], "mode") == 0) {
            json_object_set_new(j, "mode", json_string("embedded"));
        } else if (strcmp(cases[i], "lineItems") == 0) {
            json_object_del(j, "lineItems");
        } else if (strcmp(cases[i], "lineItems:empty") == 0) {
            json_object_set_new(j, "lineItems", json_array());
        } else if (strcmp(cases[i], "lineItems:sum") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "value",
                                json_integer(1501));
        } else {
            json_object_set_new(json_array_get(json_object_get(j,
                                    "lineItems"), 1), "quantity",
                                json_integer(0));
        }

        adyen_post(&r, key, j);
        cr_assert_eq(r.status, 422, "%s: %ld %s", cases[i], r.status,
                     r.body);
        adyen_expect_error(&r, 422, "validation");
        resp_free(&r);

        /* nothing is stored: the fixed body goes through under the key */
        registrations(key, &created, &requests);
        cr_assert_eq(created, 0, "%s", cases[i]);

        adyen_post(&r, key, adyen_json(key, 1500, "EUR", ADYEN_RETURN));
        cr_assert_eq(r.status, 201, "%s fixed: %s", cases[i], r.body);
        resp_free(&r);
    }

    /* not JSON; duplicate keys; not JSON by its type */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", "{\"merchantAccount\":");
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", "{\"reference\":\"a\",\"reference\":\"b\"}");
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/x-www-form-urlencoded", "reference=a");
    adyen_expect_error(&r, 415, "validation");
    resp_free(&r);
}


/* --- Adyen: hosted page and notifications -------------------------------- */

/* Adyen: a refused attempt does not end the session; the shopper pays
 * with another card and a second AUTHORISATION, under a new pspReference,
 * says so (Stripe's decline, by contrast, expires its session). */
DIALECT_TEST(adyen_a_declined_attempt_leaves_the_session_open, dl_start)
{
    char         id[64], path[256], ref[32];
    resp_t       r;
    json_t      *item;

    rx.answer = "[accepted]";
    adyen_create("m1:co_a9", 1200, id);

    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    resp_free(&r);
    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a9", "AUTHORISATION", "false", 1200);
    snprintf(ref, sizeof(ref), "%s", item_str(item, "pspReference"));

    /* the page still offers to pay, and paying works */
    snprintf(path, sizeof(path), "/pay/%s", id);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "id=\"pay\""));
    resp_free(&r);

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    resp_free(&r);
    rx_wait(2, 5000);
    item = adyen_item(&rx.hits[1]);
    adyen_expect_item(item, "m1:co_a9", "AUTHORISATION", "true", 1200);
    cr_assert_str_neq(item_str(item, "pspReference"), ref);
}


DIALECT_TEST(adyen_pay_and_decline_redirect_and_send_signed_authorisations,
             dl_start)
{
    char         id[3][64], path[256], want[512];
    resp_t       r;
    json_t      *item, *s, *events;
    const char  *psp0;

    rx.answer = "[accepted]";

    adyen_create("m1:co_a3", 2500, id[0]);
    adyen_create("m1:co_a4", 2500, id[1]);

    /* the page: the amount and both buttons */
    snprintf(path, sizeof(path), "/pay/%s", id[0]);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "<strong id=\"amount\">25.00 EUR"));
    cr_assert_not_null(strstr(r.body, "id=\"pay\""));
    cr_assert_not_null(strstr(r.body, "id=\"decline\""));
    resp_free(&r);

    /* Pay: back to returnUrl with sessionId and sessionResult added */
    snprintf(path, sizeof(path), "/pay/%s/pay", id[0]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(want, sizeof(want), "%s&sessionId=%s&sessionResult=",
             ADYEN_RETURN, id[0]);
    cr_assert_eq(strncmp(r.location, want, strlen(want)), 0, "%s",
                 r.location);
    cr_assert_gt(strlen(r.location), strlen(want) + 8);
    resp_free(&r);

    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a3", "AUTHORISATION", "true", 2500);
    cr_assert(adyen_signed(item), "%s", rx.hits[0].body);
    cr_assert_str_eq(rx.hits[0].sig, "");
    cr_assert_str_eq(rx.hits[0].jwt, "");
    psp0 = item_str(item, "pspReference");

    /* Decline: the same return URL (Adyen has one), success "false" */
    snprintf(path, sizeof(path), "/pay/%s/decline", id[1]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(want, sizeof(want), "%s&sessionId=%s&sessionResult=",
             ADYEN_RETURN, id[1]);
    cr_assert_eq(strncmp(r.location, want, strlen(want)), 0, "%s",
                 r.location);
    resp_free(&r);

    rx_wait(2, 5000);
    item = adyen_item(&rx.hits[1]);
    adyen_expect_item(item, "m1:co_a4", "AUTHORISATION", "false", 2500);
    cr_assert(adyen_signed(item));
    cr_assert_str_neq(item_str(item, "pspReference"), psp0);

    /* the records, with the gateway's answer */
    events = wh_records_settled(id[0], 1, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "AUTHORISATION");
    cr_assert_eq(rec_int(events, 0, "attempts"), 1);
    cr_assert_eq(rec_int(events, 0, "last_status"), 200);
    cr_assert_str_eq(rec_str(events, 0, "last_body"), "[accepted]");
    cr_assert(rec_delivered(events, 0));
    cr_assert_eq(strncmp(rec_str(events, 0, "id"), psp0, 16), 0);
    json_decref(events);

    /* the control API pays as the page does; a return URL without query */
    adyen_post(&r, "m1:co_a5", adyen_json("m1:co_a5", 700, "EUR",
                                          "https://gw.example/back#top"));
    cr_assert_eq(r.status, 201);
    snprintf(id[2], sizeof(id[2]), "%s", str(&r, "id"));
    resp_free(&r);

    s = session_act(id[2], "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "paid");
    json_decref(s);
    rx_wait(3, 5000);
    item = adyen_item(&rx.hits[2]);
    adyen_expect_item(item, "m1:co_a5", "AUTHORISATION", "true", 700);
    cr_assert(adyen_signed(item));

    snprintf(path, sizeof(path), "/pay/%s/pay", id[2]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(want, sizeof(want), "https://gw.example/back?sessionId=%s"
             "&sessionResult=", id[2]);
    cr_assert_eq(strncmp(r.location, want, strlen(want)), 0, "%s",
                 r.location);
    cr_assert_str_eq(r.location + strlen(r.location) - 4, "#top");
    resp_free(&r);

    /* paying again sends nothing; a paid session cannot be declined */
    session_act(id[2], "decline", 409);
    session_act("CSNOSUCHSESSION", "pay", 404);
    /* (a declined Adyen session stays open: see
     * adyen_a_declined_attempt_leaves_the_session_open) */
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


DIALECT_TEST(adyen_without_a_webhook_url_only_logs, dl_start_no_urls)
{
    FILE    *f;
    char     id[64], line[1024];
    int      logged;
    json_t  *events;

    adyen_create("m1:co_a6", 900, id);
    json_decref(session_act(id, "pay", 200));
    usleep(300 * 1000);

    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    cr_assert_eq(rx_count(), 0);

    logged = 0;
    f = fopen(mock_log_path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "event AUTHORISATION true") != NULL
            && strstr(line, id) != NULL)
        {
            logged = 1;
        }
    }
    fclose(f);
    cr_assert(logged, "the event was not logged");
}


DIALECT_TEST(adyen_retries_until_a_2xx, dl_start)
{
    char         id[64];
    json_t      *events;
    static const unsigned  script[] = { 500, 401 };

    rx_script(200, 2, script);

    adyen_create("m1:co_a7", 1200, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(3, 5000);
    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 3);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* the same notification each time */
    cr_assert_str_eq(rx.hits[1].body, rx.hits[0].body);
    cr_assert_str_eq(rx.hits[2].body, rx.hits[0].body);
    cr_assert(adyen_signed(adyen_item(&rx.hits[2])));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 45);
}


DIALECT_TEST(adyen_out_of_order_sends_a_refusal_first, dl_start)
{
    char         id[64];
    json_t      *a, *b, *events;

    fault("{\"match\":\"co_a8\",\"webhook_out_of_order\":true}");
    rx.delay_ms = 200;

    adyen_create("m1:co_a8", 1000, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(2, 5000);
    a = adyen_item(&rx.hits[0]);
    b = adyen_item(&rx.hits[1]);
    adyen_expect_item(a, "m1:co_a8", "AUTHORISATION", "false", 1000);
    adyen_expect_item(b, "m1:co_a8", "AUTHORISATION", "true", 1000);
    cr_assert(adyen_signed(a));
    cr_assert(adyen_signed(b));
    cr_assert_str_neq(item_str(a, "pspReference"), item_str(b,
                                                            "pspReference"));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 190);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_neq(rec_str(events, 0, "id"), rec_str(events, 1, "id"));
    json_decref(events);

    /* no effect on a decline */
    adyen_create("m1:co_a8b", 1000, id);
    json_decref(session_act(id, "decline", 200));
    rx_wait(3, 5000);
    usleep(400 * 1000);
    cr_assert_eq(rx_count(), 3);
    adyen_expect_item(adyen_item(&rx.hits[2]), "m1:co_a8b", "AUTHORISATION",
                      "false", 1000);
}


DIALECT_TEST(adyen_bad_signature_does_not_verify_and_is_retried, dl_start)
{
    char         id[64];
    json_t      *events;
    static const unsigned  script[] = { 401 };

    fault("{\"match\":\"co_a9\",\"webhook_bad_signature\":true}");
    rx_script(200, 1, script);

    adyen_create("m1:co_a9", 1000, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(2, 5000);
    adyen_expect_item(adyen_item(&rx.hits[0]), "m1:co_a9", "AUTHORISATION",
                      "true", 1000);
    cr_assert_not(adyen_signed(adyen_item(&rx.hits[0])));
    cr_assert_not(adyen_signed(adyen_item(&rx.hits[1])));

    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 2);
    json_decref(events);

    /* the rule applies to its session only */
    adyen_create("m1:co_b9", 1000, id);
    json_decref(session_act(id, "pay", 200));
    rx_wait(3, 5000);
    cr_assert(adyen_signed(adyen_item(&rx.hits[2])));
}


/* Adyen's signature has no timestamp: webhook_stale changes nothing. */
DIALECT_TEST(adyen_stale_has_no_effect, dl_start)
{
    char         id[64];
    json_t      *item;
    struct tm    tm;
    const char  *end;

    fault("{\"match\":\"co_a10\",\"webhook_stale\":true}");

    adyen_create("m1:co_a10", 1000, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a10", "AUTHORISATION", "true", 1000);
    cr_assert(adyen_signed(item));

    memset(&tm, 0, sizeof(tm));
    end = strptime(item_str(item, "eventDate"), "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_not_null(end, "eventDate %s", item_str(item, "eventDate"));
    cr_assert_leq(llabs((long long) timegm(&tm) - (long long) time(NULL)), 5);
}


DIALECT_TEST(adyen_async_payment_sends_pending_then_authorisation, dl_start)
{
    char         id[64];
    json_t      *a, *b, *s, *events;

    fault("{\"match\":\"co_a11\",\"async_payment\":true,"
          "\"async_delay_ms\":300}");

    adyen_create("m1:co_a11", 1000, id);
    s = session_act(id, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "unpaid");
    json_decref(s);

    rx_wait(2, 5000);
    a = adyen_item(&rx.hits[0]);
    b = adyen_item(&rx.hits[1]);
    adyen_expect_item(a, "m1:co_a11", "PENDING", "true", 1000);
    adyen_expect_item(b, "m1:co_a11", "AUTHORISATION", "true", 1000);
    cr_assert(adyen_signed(a));
    cr_assert(adyen_signed(b));
    cr_assert_str_neq(item_str(a, "pspReference"), item_str(b,
                                                            "pspReference"));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 290);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "PENDING");
    cr_assert_str_eq(rec_str(events, 1, "type"), "AUTHORISATION");
    json_decref(events);

    /* the session is paid by now */
    s = session_act(id, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "paid");
    json_decref(s);
}


DIALECT_TEST(adyen_duplicate_delay_and_amount, dl_start)
{
    int          i;
    char         id[64];
    double       t0;
    json_t      *item, *events;

    fault("{\"match\":\"co_a12\",\"webhook_duplicate\":2,"
          "\"webhook_delay_ms\":400,\"webhook_amount\":1}");

    adyen_create("m1:co_a12", 1000, id);
    t0 = now_ms();
    json_decref(session_act(id, "pay", 200));

    /* listed at once, not attempted yet */
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 3);
    cr_assert_eq(rec_int(events, 0, "attempts"), 0);
    json_decref(events);

    rx_wait(3, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_geq(rx.hits[i].at - t0, 390);
        cr_assert_str_eq(rx.hits[i].body, rx.hits[0].body);
    }
    cr_assert_lt(rx.hits[2].at - rx.hits[0].at, 500, "not concurrent");

    /* the amount lies, and the signature covers the lie */
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a12", "AUTHORISATION", "true", 1);
    cr_assert(adyen_signed(item));

    events = wh_records_settled(id, 3, 1, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rec_str(events, (size_t) i, "id"),
                         rec_str(events, 0, "id"));
        cr_assert(rec_delivered(events, (size_t) i));
    }
    json_decref(events);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


/* A session created without a key: the rules match its reference. */
DIALECT_TEST(adyen_rules_match_the_reference_without_a_key, dl_start)
{
    char         id[64];
    resp_t       r;

    fault("{\"match\":\"co_a13\",\"webhook_amount\":5}");

    adyen_post(&r, NULL, adyen_json("m1:co_a13", 1000, "EUR", ADYEN_RETURN));
    cr_assert_eq(r.status, 201);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    json_decref(session_act(id, "pay", 200));
    rx_wait(1, 5000);
    cr_assert_eq(item_value(adyen_item(&rx.hits[0])), 5);
}


/* --- Adyen: the Transfers API on its own port, Adyen's documents -------- */

#define ADYEN_TRANSFERS_KEY  "AQE_mock_transfers_key"

#define ADYEN_TRANSFER(extra, description)                                   \
    "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"                   \
    "\"category\":\"internal\","                                            \
    "\"counterparty\":{\"balanceAccountId\":\"BA32272223222B5CTDQPM6W2H\"},"\
    "\"reference\":\"m1:pyo_1\",\"description\":\"" description "\","       \
    "\"balanceAccountId\":\"BAPLATFORM1\"" extra "}"


static void
tr_start(void)
{
    static const char *const  more[] = {
        "--adyen-transfers-port", "0",
        "--adyen-transfers-secret", ADYEN_TRANSFERS_KEY, NULL
    };

    dl_launch(0, more);
    cr_assert_neq(mock_transfers_url[0], '\0');
}


/* POST to the transfers port: mock_url stands for it meanwhile */
static void
tr_post(resp_t *r, const char *path, const char *auth, const char *key,
    const char *body)
{
    char  main_url[sizeof(mock_url)];

    memcpy(main_url, mock_url, sizeof(mock_url));
    memcpy(mock_url, mock_transfers_url, sizeof(mock_url));
    dl_post(r, path, auth, key, "application/json", body);
    memcpy(mock_url, main_url, sizeof(mock_url));
}


/* Adyen serves Transfers on the balance platform's host with its own key:
 * the Checkout host (the main port) has no /btl/ at all */
DIALECT_TEST(adyen_transfers_only_on_their_own_port_with_their_own_key,
             tr_start)
{
    resp_t  r;

    dl_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:pyo_1", "application/json",
            ADYEN_TRANSFER("", "payout m1:pyo-1"));
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);

    /* the Checkout key is not the Transfers API's */
    tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_KEY, "m1:pyo_1",
            ADYEN_TRANSFER("", "payout m1:pyo-1"));
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:pyo_1", ADYEN_TRANSFER("", "payout m1:pyo-1"));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "reference"), "m1:pyo_1");
    resp_free(&r);

    /* and the Checkout API is not on the transfers port */
    tr_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:co_1", "{}");
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
}


/* What Adyen's documents refuse is answered 422 with the rule, and is not
 * registered: the same key goes through with the body fixed */
DIALECT_TEST(adyen_requests_are_checked_against_adyens_documents, tr_start)
{
    size_t       i;
    resp_t       r;
    const char  *msg;

    static const struct {
        const char  *body;
        const char  *rule;
    } bad[] = {
        { ADYEN_TRANSFER(",\"payout\":true", "payout m1:pyo-1"),
          "unknown field \"payout\"" },
        { "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
          "\"category\":\"payout\",\"counterparty\":{\"balanceAccountId\":"
          "\"BA1\"}}", "category: not one of its enum's" },
        { "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
          "\"category\":\"internal\"}",
          "required field \"counterparty\" missing" },
        { ADYEN_TRANSFER("", "payout m1:pyo_1"),
          "description: character '_'" },
        { ADYEN_TRANSFER(",\"counterpartyX\":{}", "payout m1:pyo-1"),
          "unknown field \"counterpartyX\"" },
        { "{\"amount\":{\"value\":\"2500\",\"currency\":\"EUR\"},"
          "\"category\":\"internal\",\"counterparty\":{}}",
          "amount.value: not of type integer" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
                "m1:pyo_9", bad[i].body);
        adyen_expect_error(&r, 422, "validation");
        msg = str(&r, "message");
        cr_assert_not_null(strstr(msg, bad[i].rule), "%zu: %s", i, msg);
        resp_free(&r);
    }

    tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:pyo_9", ADYEN_TRANSFER("", "payout m1:pyo-9"));
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    /* Checkout: a session with a field Adyen does not know, a bad enum */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_s1",
            "application/json", "{\"merchantAccount\":\"TestMerchant\","
            "\"amount\":{\"value\":1,\"currency\":\"EUR\"},"
            "\"reference\":\"m1:co_s1\",\"returnUrl\":\"https://x.example/\","
            "\"mode\":\"popup\"}");
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"), "mode: not one of"), "%s",
                       r.body);
    resp_free(&r);

    dl_post(&r, "/v71/payments/ABC123/refunds", "X-API-Key: " ADYEN_KEY,
            "m1:rf_s1", "application/json",
            "{\"merchantAccount\":\"TestMerchant\",\"amount\":{\"value\":1,"
            "\"currency\":\"EUR\"},\"reference\":\"m1:rf_s1\","
            "\"refundReason\":\"x\"}");
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"),
                              "unknown field \"refundReason\""), "%s",
                       r.body);
    resp_free(&r);

    dl_post(&r, "/v71/payments/ABC123/refunds", "X-API-Key: " ADYEN_KEY,
            "m1:rf_s2", "application/json",
            "{\"merchantAccount\":\"TestMerchant\",\"amount\":{\"value\":1,"
            "\"currency\":\"EUR\"},\"reference\":\"m1:rf_s2\","
            "\"merchantRefundReason\":\"BORED\"}");
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"), "merchantRefundReason"),
                       "%s", r.body);
    resp_free(&r);

    /* a path Checkout does not have */
    dl_post(&r, "/v71/payouts", "X-API-Key: " ADYEN_KEY, "m1:x",
            "application/json", "{}");
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
}


/* --- one nonce at two PSPs (routing) ------------------------------------- */

/* Each PSP keeps its own Idempotency-Keys: the same nonce at Stripe and at
 * Adyen is two registrations, two sessions, counted together under the
 * key; and a fault rule with "api" fails that API's registrations only. */
DIALECT_TEST(one_nonce_at_two_apis_is_two_sessions_and_a_fault_names_one,
             dl_start)
{
    char        buf[4096], *body;
    resp_t      r;
    long long   created, requests;

    fault("{\"match\":\"m1:co_two\",\"api\":\"stripe\",\"fail_times\":1,"
          "\"fail_status\":503}");

    form(buf, sizeof(buf), "m1:co_two", 1500, NULL);
    create(&r, "m1:co_two", buf);
    cr_assert_eq(r.status, 503, "%s", r.body);
    resp_free(&r);

    body = dump(adyen_json("m1:co_two", 1500, "EUR", ADYEN_RETURN));
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_two",
            "application/json", body);
    cr_assert_eq(r.status, 201, "not Stripe's fault: %s", r.body);
    resp_free(&r);

    /* Stripe's key is its own: not Adyen's body, a session of its own */
    create(&r, "m1:co_two", buf);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    registrations("m1:co_two", &created, &requests);
    cr_assert_eq(created, 2);
    cr_assert_eq(requests, 3);

    /* a rule naming no API it knows is refused */
    control(&r, "POST", "/_control/faults", "{\"api\":\"paypal\"}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
}


/* --- Adyen: manual capture's reversal and a capture at the dashboard ---- */

/*
 * webhook_capture_reversed: the capture's CAPTURE (success "true"), then
 * the same modification's CAPTURE_FAILED; a capture made at the
 * dashboard (POST /_control/captures) is a CAPTURE naming the session's
 * own merchantReference and the payment as originalReference.
 */
DIALECT_TEST(adyen_a_capture_reversed_and_one_made_at_the_dashboard,
             dl_start)
{
    char         id[64], path[128], body[256], ref[17];
    resp_t       r;
    json_t      *j, *s, *item;
    const char  *pay;

    rx.answer = "[accepted]";

    j = adyen_json("m1:co_c1", 1500, "EUR", ADYEN_RETURN);
    json_object_set_new(j, "additionalData",
                        json_pack("{ss}", "manualCapture", "true"));
    adyen_post(&r, "m1:co_c1", j);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    s = session_act(id, "pay", 200);
    json_decref(s);
    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_c1", "AUTHORISATION", "true", 1500);
    pay = item_str(item, "pspReference");
    snprintf(ref, sizeof(ref), "%s", pay);

    fault("{\"match\":\"m1:cp_r\",\"webhook_capture_reversed\":true}");

    snprintf(path, sizeof(path), "/v71/payments/%s/captures", ref);
    snprintf(body, sizeof(body), "{\"merchantAccount\":\"TestMerchant\","
             "\"amount\":{\"value\":400,\"currency\":\"EUR\"},"
             "\"reference\":\"m1:cp_r1\"}");
    dl_post(&r, path, "X-API-Key: " ADYEN_KEY, "m1:cp_r1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    rx_wait(3, 5000);
    item = adyen_item(&rx.hits[1]);
    cr_assert_str_eq(item_str(item, "eventCode"), "CAPTURE");
    cr_assert_str_eq(item_str(item, "success"), "true");
    cr_assert_str_eq(item_str(item, "merchantReference"), "m1:cp_r1");
    cr_assert_str_eq(item_str(item, "originalReference"), ref);
    cr_assert_eq(item_value(item), 400);
    cr_assert(adyen_signed(item));
    snprintf(path, sizeof(path), "%s", item_str(item, "pspReference"));

    item = adyen_item(&rx.hits[2]);
    cr_assert_str_eq(item_str(item, "eventCode"), "CAPTURE_FAILED");
    cr_assert_str_eq(item_str(item, "pspReference"), path);
    cr_assert_str_eq(item_str(item, "merchantReference"), "m1:cp_r1");
    cr_assert_str_eq(item_str(item, "originalReference"), ref);
    cr_assert_eq(item_value(item), 400);
    cr_assert(adyen_signed(item));

    /* at the dashboard: the checkout's own reference, no capture nonce */
    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":300}",
             ref);
    control(&r, "POST", "/_control/captures", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(path, sizeof(path), "%s", str(&r, "id"));
    resp_free(&r);

    rx_wait(4, 5000);
    item = adyen_item(&rx.hits[3]);
    cr_assert_str_eq(item_str(item, "eventCode"), "CAPTURE");
    cr_assert_str_eq(item_str(item, "success"), "true");
    cr_assert_str_eq(item_str(item, "merchantReference"), "m1:co_c1");
    cr_assert_str_eq(item_str(item, "originalReference"), ref);
    cr_assert_str_eq(item_str(item, "pspReference"), path);
    cr_assert_eq(item_value(item), 300);
    cr_assert(adyen_signed(item));

    /* more than is left: refused, nothing sent */
    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":900}",
             ref);
    control(&r, "POST", "/_control/captures", body);
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    control(&r, "POST", "/_control/captures",
            "{\"payment_ref\":\"0000000000000000\"}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 4);
}
