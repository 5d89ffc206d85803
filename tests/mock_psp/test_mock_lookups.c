/*
 * The mock PSP's session look-ups (the sweeper's), per dialect, and the
 * knobs they are tested with.
 */

#include "mock_dialects.h"


/* --- session look-ups (the sweeper's) and the knobs it is tested with --- */

/* GET path with exactly the header line auth (or none). */
static void
dl_get(resp_t *r, const char *path, const char *auth)
{
    CURL               *h;
    struct curl_slist  *hdrs;

    h = prepare(r, &hdrs, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    if (auth != NULL) {
        hdrs = curl_slist_append(hdrs, auth);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    r->rc = curl_easy_perform(h);
    finish(r, h, hdrs);
}


/* GET /v1/checkout/sessions/{id}: its status and payment_status. */
static void
stripe_state(const char *id, const char *status, const char *paid)
{
    resp_t  r;
    char    path[256];

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), status, "%s", r.body);
    cr_assert_str_eq(str(&r, "payment_status"), paid, "%s", r.body);
    resp_free(&r);
}


/*
 * expand[]=payment_intent: the session's intent as an object, null before
 * it is paid; a manual capture's requires_capture under the checkout's
 * nonce while held, an automatic one's succeeded once paid.
 */
MOCK_TEST(stripe_retrieve_expands_the_payment_intent)
{
    char         held[64], paid[64], open[64], path[256], body[2048];
    resp_t       r;
    json_t      *pi;

    form(body, sizeof(body), "m1:co_pe1", 1000,
         "&payment_intent_data%5Bcapture_method%5D=manual"
         "&payment_intent_data%5Bmetadata%5D%5Bnonce%5D=m1:co_pe1");
    create(&r, "m1:co_pe1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(held, sizeof(held), "%s", str(&r, "id"));
    resp_free(&r);
    snprintf(paid, sizeof(paid), "%s", create_ok("m1:co_pe2", 1000));
    snprintf(open, sizeof(open), "%s", create_ok("m1:co_pe3", 1000));
    session_post(held, "pay", 200);
    session_post(paid, "pay", 200);

    snprintf(path, sizeof(path),
             "/v1/checkout/sessions/%s?expand%%5B%%5D=payment_intent", held);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid", "%s", r.body);
    pi = json_object_get(r.json, "payment_intent");
    cr_assert(json_is_object(pi), "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(pi, "status")),
                     "requires_capture", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(pi,
                                                       "capture_method")),
                     "manual", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(pi, "metadata"), "nonce")),
                     "m1:co_pe1", "%s", r.body);
    resp_free(&r);

    snprintf(path, sizeof(path),
             "/v1/checkout/sessions/%s?expand%%5B%%5D=payment_intent", paid);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pi = json_object_get(r.json, "payment_intent");
    cr_assert(json_is_object(pi), "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(pi, "status")),
                     "succeeded", "%s", r.body);
    resp_free(&r);

    /* not paid: no intent to expand; not asked: its id */
    snprintf(path, sizeof(path),
             "/v1/checkout/sessions/%s?expand%%5B%%5D=payment_intent", open);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "payment_intent")),
              "%s", r.body);
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", paid);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert(json_is_string(json_object_get(r.json, "payment_intent")),
              "%s", r.body);
    resp_free(&r);
}


MOCK_TEST(stripe_retrieve_tells_the_sweeper_the_sessions_state)
{
    char    paid[64], gone[64], path[256];
    resp_t  r;

    snprintf(paid, sizeof(paid), "%s", create_ok("m1:co_lk1", 1000));
    snprintf(gone, sizeof(gone), "%s", create_ok("m1:co_lk2", 1000));

    stripe_state(paid, "open", "unpaid");
    session_post(paid, "pay", 200);
    stripe_state(paid, "complete", "paid");

    session_post(gone, "expire", 200);
    stripe_state(gone, "expired", "unpaid");

    /* credentials as for the create */
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", paid);
    request(&r, "GET", path, AUTH_BAD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);
}


/* The control API's expire: as if expires_at had passed, no webhook. */
WEBHOOK_TEST(expire_ends_an_open_session_without_a_webhook, "50")
{
    char     id[64], paid[64], path[256];
    resp_t   r;
    json_t  *events;

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_exp", 1000));
    snprintf(paid, sizeof(paid), "%s", create_ok("m1:wh_exp_paid", 1000));

    snprintf(path, sizeof(path), "/_control/sessions/%s/expire", id);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), "expired");
    cr_assert_str_eq(str(&r, "id"), id);
    resp_free(&r);
    stripe_state(id, "expired", "unpaid");

    /* again: nothing changes; the shopper can no longer pay */
    session_post(id, "expire", 200);
    session_post(id, "pay", 410);
    snprintf(path, sizeof(path), "/pay/%s", id);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 410);
    resp_free(&r);

    /* a paid session does not expire; unknown ones do not exist */
    session_post(paid, "pay", 200);
    session_post(paid, "expire", 409);
    stripe_state(paid, "complete", "paid");
    session_post("cs_test_unknown", "expire", 404);
    control(&r, "GET", "/_control/sessions/x/expire", NULL);
    cr_assert_eq(r.status, 405);
    resp_free(&r);

    /* the paid one's webhook came; the expired one sent none */
    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 1);
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
}


WEBHOOK_TEST(webhook_never_pays_but_sends_nothing, "50")
{
    char     id[64], declined[64], other[64];
    json_t  *events, *rules;
    resp_t   r;

    fault("{\"match\":\"wh_never\",\"webhook_never\":true,"
          "\"webhook_duplicate\":2}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_never_1", 1000));
    snprintf(declined, sizeof(declined), "%s",
             create_ok("m1:wh_never_2", 1000));
    snprintf(other, sizeof(other), "%s", create_ok("m1:wh_other", 1000));

    session_post(id, "pay", 200);
    session_post(declined, "decline", 200);
    session_post(other, "pay", 200);

    /* the session outside the rule gets its webhook, and only it */
    rx_wait(1, 5000);
    cr_assert_str_eq(json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                                       "id")), other);
    usleep(500 * 1000);
    cr_assert_eq(rx_count(), 1);

    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    events = wh_records(declined);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    /* while the look-up tells the truth */
    stripe_state(id, "complete", "paid");
    stripe_state(declined, "expired", "unpaid");

    /* the rule lists it */
    control(&r, "GET", "/_control/faults", NULL);
    cr_assert_eq(r.status, 200);
    rules = json_object_get(r.json, "faults");
    cr_assert(json_is_true(json_object_get(json_array_get(rules, 0),
                                           "webhook_never")), "%s", r.body);
    resp_free(&r);
}


WEBHOOK_TEST(refuses_malformed_webhook_never, "50")
{
    size_t  i;
    resp_t  r;

    static const char  *bad[] = {
        "{\"webhook_never\":1}",
        "{\"webhook_never\":\"true\"}",
        "{\"webhook_never\":null}",
        "{\"webhook_never\":true,\"async_payment\":true}",
        "{\"webhooks_never\":true}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        control(&r, "POST", "/_control/faults", bad[i]);
        cr_assert_eq(r.status, 400, "%s: %ld", bad[i], r.status);
        resp_free(&r);
    }

    fault("{\"match\":\"x\",\"webhook_never\":false,\"async_payment\":true}");
    fault("{\"match\":\"y\",\"webhook_never\":true}");
}


/* sessionResult from the return URL the hosted page sends the shopper to */
static void
adyen_session_result(const char *location, char *out, size_t size)
{
    const char  *p;

    p = strstr(location, "sessionResult=");
    cr_assert_not_null(p, "%s", location);
    p += strlen("sessionResult=");
    snprintf(out, size, "%.*s", (int) strcspn(p, "&#"), p);
    cr_assert_gt(strlen(out), 0);
}


static void
adyen_lookup(resp_t *r, const char *id, const char *result)
{
    char  path[512];

    if (result != NULL) {
        snprintf(path, sizeof(path), "/v71/sessions/%s?sessionResult=%s", id,
                 result);
    } else {
        snprintf(path, sizeof(path), "/v71/sessions/%s", id);
    }

    dl_get(r, path, "X-API-Key: " ADYEN_KEY);
}


static void
adyen_expect_status(const char *id, const char *result, const char *ref,
    const char *status)
{
    resp_t  r;

    adyen_lookup(&r, id, result);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "id"), id);
    cr_assert_str_eq(str(&r, "reference"), ref);
    cr_assert_str_eq(str(&r, "status"), status, "%s", r.body);
    /* no more than Adyen's answer: no amount to lean on */
    cr_assert_null(json_object_get(r.json, "amount"), "%s", r.body);
    resp_free(&r);
}


DIALECT_TEST(adyen_session_result_lookup, dl_start)
{
    char         id[64], gone[64], pend[64], tok[64], path[256];
    char         result[64], gresult[64], presult[64];
    resp_t       r;
    json_t      *s;

    rx.answer = "[accepted]";
    adyen_create("m1:co_al1", 1500, id);
    adyen_create("m1:co_al2", 1500, gone);
    generic_create("m1:co_al3", "1.00", "EUR", tok);

    /* a refused attempt: back with a sessionResult, the session active */
    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    adyen_session_result(r.location, result, sizeof(result));
    resp_free(&r);
    adyen_expect_status(id, result, "m1:co_al1", "active");

    /* Adyen answers only with the sessionResult, and only its own; the
     * parameter is required by Adyen's document (422 with the rule) */
    adyen_lookup(&r, id, NULL);
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"), "sessionResult"), "%s",
                       r.body);
    resp_free(&r);
    adyen_lookup(&r, id, "");
    adyen_expect_error(&r, 400, "validation");
    resp_free(&r);
    adyen_lookup(&r, id, "Ab02b4c0wrong");
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);

    /* credentials as for the create */
    snprintf(path, sizeof(path), "/v71/sessions/%s?sessionResult=%s", id,
             result);
    dl_get(&r, path, "X-API-Key: wrong");
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);
    dl_get(&r, path, NULL);
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    /* unknown here: no such session, or another dialect's */
    adyen_lookup(&r, "CSUNKNOWN0000000", result);
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
    adyen_lookup(&r, tok, result);
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    /* paid */
    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    resp_free(&r);
    adyen_expect_status(id, result, "m1:co_al1", "completed");

    /* expired: the control API's expire, or its time */
    s = session_act(gone, "expire", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "success_url")),
                     json_string_value(json_object_get(s, "cancel_url")));
    adyen_session_result(json_string_value(json_object_get(s,
                                                           "success_url")),
                         gresult, sizeof(gresult));
    json_decref(s);
    adyen_expect_status(gone, gresult, "m1:co_al2", "expired");

    /* paid by a method that settles later */
    fault("{\"match\":\"co_al4\",\"async_payment\":true,"
          "\"async_delay_ms\":600000}");
    adyen_create("m1:co_al4", 1500, pend);
    s = session_act(pend, "pay", 200);
    adyen_session_result(json_string_value(json_object_get(s,
                                                           "success_url")),
                         presult, sizeof(presult));
    json_decref(s);
    adyen_expect_status(pend, presult, "m1:co_al4", "paymentPending");
}


/* A manual capture's session once authorised: Adyen's
 * SessionResultResponse says "completed" ("the payment was authorized"),
 * not paymentPending, though nothing is captured yet; still so once part
 * of it is captured */
DIALECT_TEST(adyen_an_authorised_manual_session_is_completed, dl_start)
{
    char     id[64], result[64], path[128], body[256], ref[17];
    resp_t   r;
    json_t  *j, *s;

    rx.answer = "[accepted]";

    j = adyen_json("m1:co_am1", 1500, "EUR", ADYEN_RETURN);
    json_object_set_new(j, "additionalData",
                        json_pack("{ss}", "manualCapture", "true"));
    adyen_post(&r, "m1:co_am1", j);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    s = session_act(id, "pay", 200);
    adyen_session_result(json_string_value(json_object_get(s,
                                                           "success_url")),
                         result, sizeof(result));
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "unpaid", "a hold: nothing captured");
    snprintf(ref, sizeof(ref), "%s",
             json_string_value(json_object_get(s, "payment_ref")));
    json_decref(s);
    adyen_expect_status(id, result, "m1:co_am1", "completed");

    snprintf(path, sizeof(path), "/v71/payments/%s/captures", ref);
    snprintf(body, sizeof(body), "{\"merchantAccount\":\"TestMerchant\","
             "\"amount\":{\"value\":400,\"currency\":\"EUR\"},"
             "\"reference\":\"m1:cp_am1\"}");
    dl_post(&r, path, "X-API-Key: " ADYEN_KEY, "m1:cp_am1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    adyen_expect_status(id, result, "m1:co_am1", "completed");
}


DIALECT_TEST(adyen_webhook_never_leaves_only_the_lookup, dl_start)
{
    char     id[64], result[64], path[256];
    resp_t   r;
    json_t  *events;

    fault("{\"match\":\"co_an\",\"webhook_never\":true}");
    adyen_create("m1:co_an1", 1500, id);

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    adyen_session_result(r.location, result, sizeof(result));
    resp_free(&r);

    usleep(400 * 1000);
    cr_assert_eq(rx_count(), 0);
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    adyen_expect_status(id, result, "m1:co_an1", "completed");
}


static void
generic_lookup(resp_t *r, const char *token, const char *auth)
{
    char  path[256];

    snprintf(path, sizeof(path), "/sessions/%s", token);
    dl_get(r, path, auth);
}


static void
generic_expect_status(const char *token, const char *ref,
    const char *status, const char *amount, const char *currency)
{
    resp_t  r;

    generic_lookup(&r, token, "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "token"), token);
    cr_assert_str_eq(str(&r, "reference"), ref);
    cr_assert_str_eq(str(&r, "status"), status, "%s", r.body);
    cr_assert_str_eq(str(&r, "amount"), amount, "%s", r.body);
    cr_assert_str_eq(str(&r, "currency"), currency);
    cr_assert(json_integer_value(json_object_get(r.json, "expires_at"))
              > time(NULL), "%s", r.body);
    resp_free(&r);
}


DIALECT_TEST(generic_session_lookup, dl_start)
{
    char         paid[64], declined[64], gone[64], jpy[64], pend[64];
    char         ad[64];
    resp_t       r;

    generic_create("m1:co_gl1", "15.00", "USD", paid);
    generic_create("m1:co_gl2", "10.5", "EUR", declined);
    generic_create("m1:co_gl3", "1.500", "KWD", gone);
    generic_create("m1:co_gl4", "700", "JPY", jpy);
    adyen_create("m1:co_gl5", 1500, ad);

    generic_expect_status(paid, "m1:co_gl1", "open", "15.00", "USD");
    generic_expect_status(jpy, "m1:co_gl4", "open", "700", "JPY");

    json_decref(session_act(paid, "pay", 200));
    generic_expect_status(paid, "m1:co_gl1", "succeeded", "15.00", "USD");

    /* a paid session names its payment, as its payment.succeeded does
     * (refunds and disputes name it); an open one has none */
    generic_lookup(&r, paid, "Authorization: Bearer " GEN_KEY);
    cr_assert_not_null(str(&r, "payment_id"), "%s", r.body);
    resp_free(&r);
    generic_lookup(&r, jpy, "Authorization: Bearer " GEN_KEY);
    cr_assert_null(json_object_get(r.json, "payment_id"), "%s", r.body);
    resp_free(&r);

    /* declined is "failed", time out "expired" */
    json_decref(session_act(declined, "decline", 200));
    generic_expect_status(declined, "m1:co_gl2", "failed", "10.50", "EUR");
    json_decref(session_act(gone, "expire", 200));
    generic_expect_status(gone, "m1:co_gl3", "expired", "1.500", "KWD");

    /* settling later */
    fault("{\"match\":\"co_gl6\",\"async_payment\":true,"
          "\"async_delay_ms\":600000}");
    generic_create("m1:co_gl6", "2.00", "EUR", pend);
    json_decref(session_act(pend, "pay", 200));
    generic_expect_status(pend, "m1:co_gl6", "pending", "2.00", "EUR");

    /* a manual capture's payment, held: "authorized", naming the payment
     * to capture, as its payment.authorized does (never "pending": no
     * payment is on its way) */
    {
        char  held[64];

        generic_create_manual("m1:co_gl7", "3.00", "EUR", held);
        json_decref(session_act(held, "pay", 200));
        generic_expect_status(held, "m1:co_gl7", "authorized", "3.00",
                              "EUR");
        generic_lookup(&r, held, "Authorization: Bearer " GEN_KEY);
        cr_assert_not_null(str(&r, "payment_id"), "%s", r.body);
        resp_free(&r);
    }

    /* credentials as for the create */
    generic_lookup(&r, paid, "Authorization: Bearer wrong");
    cr_assert_eq(r.status, 401, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "unauthorized");
    resp_free(&r);
    generic_lookup(&r, paid, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);

    /* unknown here: no such session, or another dialect's */
    generic_lookup(&r, "gs_unknown", "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "not_found");
    resp_free(&r);
    generic_lookup(&r, ad, "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


DIALECT_TEST(generic_webhook_never_leaves_only_the_lookup, dl_start)
{
    char     tok[64];
    json_t  *events;

    fault("{\"match\":\"co_gn\",\"webhook_never\":true}");
    generic_create("m1:co_gn1", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));

    usleep(400 * 1000);
    cr_assert_eq(rx_count(), 0);
    events = wh_records(tok);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    generic_expect_status(tok, "m1:co_gn1", "succeeded", "3.00", "EUR");
}


MOCK_TEST(lookups_are_off_without_their_secrets)
{
    resp_t  r;

    dl_get(&r, "/v71/sessions/CS1?sessionResult=x", "X-API-Key: " ADYEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    dl_get(&r, "/sessions/gs_1", "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


/* --- a session ended on demand (a checkout's cancel) ------------------------ */

static void
stripe_expire(resp_t *r, const char *id, int auth, const char *key)
{
    char  path[256];

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s/expire", id);
    request(r, "POST", path, auth, key, "application/x-www-form-urlencoded",
            "");
}


MOCK_TEST(stripe_expire_ends_an_open_session_and_refuses_one_not_open)
{
    char    open[64], paid[64], path[256];
    resp_t  r;

    snprintf(open, sizeof(open), "%s", create_ok("m1:co_ex1", 1000));
    snprintf(paid, sizeof(paid), "%s", create_ok("m1:co_ex2", 1000));
    session_post(paid, "pay", 200);

    stripe_expire(&r, open, AUTH_GOOD, "m1:co_ex1:cancel");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "id"), open);
    cr_assert_str_eq(str(&r, "status"), "expired");
    resp_free(&r);
    stripe_state(open, "expired", "unpaid");

    /* no longer open: Stripe's 400, whether expired or paid */
    stripe_expire(&r, open, AUTH_GOOD, "m1:co_ex1:cancel");
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "type"), "invalid_request_error");
    resp_free(&r);
    stripe_expire(&r, paid, AUTH_GOOD, "m1:co_ex2:cancel");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    stripe_state(paid, "complete", "paid");

    /* the hosted page refuses the ended session */
    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", open);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, 410, "%s", r.body);
    resp_free(&r);

    stripe_expire(&r, open, AUTH_BAD, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);
    stripe_expire(&r, "cs_test_unknown", AUTH_GOOD, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


MOCK_TEST(stripe_expire_takes_the_fault_rules_of_its_key)
{
    char    id[64];
    resp_t  r;

    snprintf(id, sizeof(id), "%s", create_ok("m1:co_ex3", 1000));

    /* one rule (the first that matches applies): a 503, then the session
     * ends and the answer is dropped */
    fault("{\"match\":\"co_ex3:cancel\",\"fail_times\":1,"
          "\"fail_status\":503,\"drop_after_register\":1}");
    stripe_expire(&r, id, AUTH_GOOD, "m1:co_ex3:cancel");
    cr_assert_eq(r.status, 503, "%s", r.body);
    resp_free(&r);
    stripe_state(id, "open", "unpaid");

    stripe_expire(&r, id, AUTH_GOOD, "m1:co_ex3:cancel");
    cr_assert_eq(r.status, 0, "%s", r.body);
    resp_free(&r);
    stripe_state(id, "expired", "unpaid");
}


DIALECT_TEST(generic_expire_answers_the_session_after_the_call, dl_start)
{
    char    open[64], paid[64], ad[64], path[256];
    resp_t  r;

    generic_create("m1:co_gx1", "15.00", "USD", open);
    generic_create("m1:co_gx2", "5.00", "EUR", paid);
    adyen_create("m1:co_gx3", 1500, ad);
    json_decref(session_act(paid, "pay", 200));

    snprintf(path, sizeof(path), "/sessions/%s/expire", open);
    dl_post(&r, path, "Authorization: Bearer " GEN_KEY, "m1:co_gx1:cancel",
            "application/json", "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), "expired", "%s", r.body);
    cr_assert_str_eq(str(&r, "token"), open);
    resp_free(&r);

    /* again: the same answer */
    dl_post(&r, path, "Authorization: Bearer " GEN_KEY, "m1:co_gx1:cancel",
            "application/json", "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), "expired", "%s", r.body);
    resp_free(&r);
    generic_expect_status(open, "m1:co_gx1", "expired", "15.00", "USD");

    /* paid: it stands */
    snprintf(path, sizeof(path), "/sessions/%s/expire", paid);
    dl_post(&r, path, "Authorization: Bearer " GEN_KEY, "m1:co_gx2:cancel",
            "application/json", "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), "succeeded", "%s", r.body);
    resp_free(&r);

    dl_post(&r, path, "Authorization: Bearer wrong", NULL,
            "application/json", "{}");
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);

    /* another dialect's session is unknown here */
    snprintf(path, sizeof(path), "/sessions/%s/expire", ad);
    dl_post(&r, path, "Authorization: Bearer " GEN_KEY, NULL,
            "application/json", "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}
