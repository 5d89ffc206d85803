/*
 * The mock PSP's Stripe API: sessions, idempotency, the fault rules,
 * the hosted page, the control API.
 */

#include "mock_client.h"


MOCK_TEST(refuses_a_missing_or_wrong_api_key_with_401)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    form(body, sizeof(body), "m1:co_auth", 1000, NULL);

    request(&r, "POST", "/v1/checkout/sessions", AUTH_NONE, "m1:co_auth",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(error_field(&r, "type"), "invalid_request_error");
    cr_assert_str_eq(error_field(&r, "message"), "Invalid API Key provided");
    resp_free(&r);

    request(&r, "POST", "/v1/checkout/sessions", AUTH_BAD, "m1:co_auth",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    request(&r, "GET", "/v1/checkout/sessions/cs_test_x", AUTH_BAD, NULL,
            NULL, NULL);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    registrations("m1:co_auth", &created, &requests);
    cr_assert_eq(created, 0);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(creates_a_session_and_retrieves_it)
{
    resp_t       r, g;
    char         body[2048], url[256], path[256];
    const char  *id;
    size_t       i;

    form(body, sizeof(body), "m1:co_create", 1000, NULL);
    create(&r, "m1:co_create", body);

    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not(r.replayed);

    id = str(&r, "id");
    cr_assert_not_null(id);
    cr_assert_eq(strlen(id), 8 + 24);
    cr_assert_eq(strncmp(id, "cs_test_", 8), 0);
    for (i = 8; id[i]; i++) {
        cr_assert(isalnum((unsigned char) id[i]), "id %s", id);
    }

    snprintf(url, sizeof(url), "%s/pay/%s", mock_url, id);
    cr_assert_str_eq(str(&r, "url"), url);
    cr_assert_str_eq(str(&r, "object"), "checkout.session");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "amount_total")),
                 1000 + 2 * 500);
    cr_assert_str_eq(str(&r, "currency"), "usd");
    cr_assert_str_eq(str(&r, "status"), "open");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
    cr_assert_str_eq(str(&r, "client_reference_id"), "m1:co_create");
    cr_assert_str_eq(str(&r, "success_url"), SUCCESS);
    cr_assert_str_eq(str(&r, "cancel_url"), CANCEL);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(r.json, "metadata"), "checkout")),
                     "co 7f3a&x");
    cr_assert(json_integer_value(json_object_get(r.json, "expires_at"))
              > time(NULL) + 23 * 3600);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&g, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(g.status, 200);
    cr_assert(json_equal(g.json, r.json), "retrieved %s", g.body);
    resp_free(&g);

    request(&g, "GET", "/v1/checkout/sessions/cs_test_unknown", AUTH_GOOD,
            NULL, NULL, NULL);
    cr_assert_eq(g.status, 404);
    cr_assert_str_eq(error_field(&g, "code"), "resource_missing");
    resp_free(&g);

    resp_free(&r);
}


MOCK_TEST(replays_the_stored_response_for_the_same_key_and_body)
{
    resp_t     a, b;
    char       body[2048];
    long long  created, requests;

    form(body, sizeof(body), "m1:co_replay", 1000, NULL);

    create(&a, "m1:co_replay", body);
    cr_assert_eq(a.status, 200);

    create(&b, "m1:co_replay", body);
    cr_assert_eq(b.status, 200);
    cr_assert(b.replayed, "no Idempotent-Replayed: true");
    cr_assert_str_eq(b.body, a.body, "the replay must be byte-identical");

    registrations("m1:co_replay", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);

    resp_free(&a);
    resp_free(&b);
}


MOCK_TEST(refuses_the_same_key_with_other_parameters)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    (void) create_ok("m1:co_reuse", 1000);

    form(body, sizeof(body), "m1:co_reuse", 1500, NULL);
    create(&r, "m1:co_reuse", body);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_field(&r, "type"), "idempotency_error");
    resp_free(&r);

    registrations("m1:co_reuse", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(answers_409_while_the_first_request_with_the_key_runs)
{
    int         i, running, n200, n409;
    long        status;
    char        body[2048];
    CURL       *h[2];
    CURLM      *m;
    resp_t      r[2];
    CURLMsg    *msg;
    long long   created, requests;
    struct curl_slist  *hdrs[2];

    fault("{\"match\":\"slow-\",\"latency_ms\":800}");
    form(body, sizeof(body), "slow-1", 1000, NULL);

    m = curl_multi_init();
    for (i = 0; i < 2; i++) {
        h[i] = prepare(&r[i], &hdrs[i], "POST", "/v1/checkout/sessions",
                       AUTH_GOOD, "slow-1",
                       "application/x-www-form-urlencoded", body);
        curl_multi_add_handle(m, h[i]);
    }

    do {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
    } while (running > 0);

    while ((msg = curl_multi_info_read(m, &i)) != NULL) {
        cr_assert_eq(msg->data.result, CURLE_OK);
    }

    n200 = 0;
    n409 = 0;
    for (i = 0; i < 2; i++) {
        curl_multi_remove_handle(m, h[i]);
        finish(&r[i], h[i], hdrs[i]);
        status = r[i].status;
        if (status == 200) {
            n200++;
        } else if (status == 409) {
            n409++;
            cr_assert_str_eq(error_field(&r[i], "type"), "idempotency_error");
            cr_assert_str_eq(error_field(&r[i], "code"),
                             "idempotency_key_in_use");
        }
        resp_free(&r[i]);
    }
    curl_multi_cleanup(m);

    cr_assert_eq(n200, 1);
    cr_assert_eq(n409, 1);

    registrations("slow-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(fails_fail_times_with_fail_status_then_succeeds)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    fault("{\"match\":\"ft-\",\"fail_times\":2}");
    form(body, sizeof(body), "m1:ft-1", 1000, NULL);

    create(&r, "m1:ft-1", body);
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(error_field(&r, "type"), "api_error");
    resp_free(&r);

    create(&r, "m1:ft-1", body);
    cr_assert_eq(r.status, 500);
    resp_free(&r);

    create(&r, "m1:ft-1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not(r.replayed);
    resp_free(&r);

    registrations("m1:ft-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 3);
}


MOCK_TEST(fail_every_fails_every_nth_attempt_of_the_rule)
{
    int     i;
    resp_t  r;
    char    body[2048], key[32];
    int     failed;

    fault("{\"match\":\"fe2-\",\"fail_every\":2,\"fail_status\":503}");

    /* ten checkouts, one attempt each: every second one fails */
    failed = 0;

    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "m1:fe2-%d", i);
        form(body, sizeof(body), key, 1000, NULL);
        create(&r, key, body);
        cr_assert(r.status == 200 || r.status == 503, "%d: %ld", i,
                  (long) r.status);
        failed += (r.status == 503);
        cr_assert_eq(r.status == 503, i % 2 == 1, "attempt %d", i + 1);
        resp_free(&r);
    }

    cr_assert_eq(failed, 5);
}


MOCK_TEST(retry_after_goes_with_the_failures_only)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"ra-\",\"fail_times\":1,\"fail_status\":429,"
          "\"retry_after\":7}");
    form(body, sizeof(body), "m1:ra-1", 1000, NULL);

    create(&r, "m1:ra-1", body);
    cr_assert_eq(r.status, 429);
    cr_assert_str_eq(r.retry_after, "7");
    resp_free(&r);

    create(&r, "m1:ra-1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.retry_after, "");
    resp_free(&r);
}


MOCK_TEST(hang_times_hangs_only_the_next_n_requests)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"ht-\",\"hang_ms\":300,\"hang_times\":1}");
    form(body, sizeof(body), "m1:ht-1", 1000, NULL);

    create(&r, "m1:ht-1", body);
    cr_assert_neq(r.rc, CURLE_OK, "the first request was answered");
    resp_free(&r);

    create(&r, "m1:ht-1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
}


MOCK_TEST(fail_every_of_one_is_refused)
{
    resp_t  r;

    control(&r, "POST", "/_control/faults", "{\"fail_every\":1}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(fail_status_is_configurable)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"ft503\",\"fail_times\":1,\"fail_status\":503}");
    form(body, sizeof(body), "ft503", 1000, NULL);

    create(&r, "ft503", body);
    cr_assert_eq(r.status, 503);
    resp_free(&r);

    create(&r, "ft503", body);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}


MOCK_TEST(drop_after_register_creates_drops_and_the_retry_replays)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    fault("{\"match\":\"drop-\",\"drop_after_register\":1}");
    form(body, sizeof(body), "m1:drop-1", 1000, NULL);

    create(&r, "m1:drop-1", body);
    cr_assert_eq(r.rc, CURLE_GOT_NOTHING, "curl: %s",
                 curl_easy_strerror(r.rc));
    resp_free(&r);

    registrations("m1:drop-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 1);

    create(&r, "m1:drop-1", body);
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert(r.replayed, "the retry must get the stored session");
    cr_assert_str_eq(str(&r, "client_reference_id"), "m1:drop-1");
    resp_free(&r);

    registrations("m1:drop-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(refuse_status_402_refuses_for_good_with_a_card_error)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;
    int        i;

    fault("{\"match\":\"declined\",\"refuse_status\":402}");
    form(body, sizeof(body), "m1:declined", 1000, NULL);

    for (i = 0; i < 2; i++) {
        create(&r, "m1:declined", body);
        cr_assert_eq(r.status, 402);
        cr_assert_str_eq(error_field(&r, "type"), "card_error");
        cr_assert_str_eq(error_field(&r, "code"), "card_declined");
        cr_assert_not_null(strstr(error_field(&r, "message"), "declined"));
        resp_free(&r);
    }

    registrations("m1:declined", &created, &requests);
    cr_assert_eq(created, 0);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(hang_ms_closes_the_connection_without_an_answer)
{
    resp_t     r;
    char       body[2048];
    double     t0, elapsed;
    long long  created, requests;

    fault("{\"match\":\"hang-\",\"hang_ms\":400}");
    form(body, sizeof(body), "hang-1", 1000, NULL);

    t0 = now_ms();
    create(&r, "hang-1", body);
    elapsed = now_ms() - t0;

    cr_assert_eq(r.rc, CURLE_GOT_NOTHING, "curl: %s",
                 curl_easy_strerror(r.rc));
    cr_assert_geq(elapsed, 380.0);
    resp_free(&r);

    registrations("hang-1", &created, &requests);
    cr_assert_eq(created, 0);
    cr_assert_eq(requests, 1);
}


MOCK_TEST(a_hung_connection_does_not_delay_the_exit)
{
    CURL               *h;
    CURLM              *m;
    resp_t              r;
    char                body[2048];
    int                 running, i;
    double              t0;
    struct curl_slist  *hdrs;

    fault("{\"match\":\"\",\"hang_ms\":60000}");
    form(body, sizeof(body), "forever", 1000, NULL);

    m = curl_multi_init();
    h = prepare(&r, &hdrs, "POST", "/v1/checkout/sessions", AUTH_GOOD,
                "forever", "application/x-www-form-urlencoded", body);
    curl_multi_add_handle(m, h);

    /* let the request reach the mock's handler */
    for (i = 0; i < 5; i++) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }

    t0 = now_ms();
    mock_stop();
    cr_assert_lt(now_ms() - t0, 3000.0, "stop took %.0f ms", now_ms() - t0);

    curl_multi_remove_handle(m, h);
    finish(&r, h, hdrs);
    curl_multi_cleanup(m);
    resp_free(&r);
}


MOCK_TEST(hosted_url_replaces_the_session_url)
{
    resp_t  r, g;
    char    body[2048], path[256];

    fault("{\"match\":\"evil\",\"hosted_url\":\"https://evil.example/x\"}");
    form(body, sizeof(body), "m1:evil", 1000, NULL);

    create(&r, "m1:evil", body);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str(&r, "url"), "https://evil.example/x");

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", str(&r, "id"));
    request(&g, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&g, "url"), "https://evil.example/x");

    resp_free(&g);
    resp_free(&r);
}


MOCK_TEST(the_first_matching_rule_applies)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"m1:\",\"refuse_status\":404}");
    fault("{\"match\":\"\",\"refuse_status\":402}");

    form(body, sizeof(body), "m1:order", 1000, NULL);
    create(&r, "m1:order", body);
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    form(body, sizeof(body), "m2:order", 1000, NULL);
    create(&r, "m2:order", body);
    cr_assert_eq(r.status, 402);
    resp_free(&r);

    /* "" matches a request without a key too */
    create(&r, NULL, body);
    cr_assert_eq(r.status, 402);
    resp_free(&r);
}


MOCK_TEST(pay_redirects_to_success_url_and_marks_the_session_paid)
{
    resp_t       r;
    char         path[256], expect[256], id[64];

    snprintf(id, sizeof(id), "%s", create_ok("m1:co_pay", 1000));

    snprintf(path, sizeof(path), "/pay/%s", id);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "20.00 USD"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "/pay\""));
    cr_assert_not_null(strstr(r.body, "/decline\""));
    cr_assert_null(strstr(r.body, "<script"));
    resp_free(&r);

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(expect, sizeof(expect), "https://shop.example/ok?session=%s",
             id);
    cr_assert_str_eq(r.location, expect);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "status"), "complete");
    cr_assert_str_eq(str(&r, "payment_status"), "paid");
    resp_free(&r);

    /* a paid session cannot be declined any more */
    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 409);
    resp_free(&r);
}


MOCK_TEST(decline_redirects_to_cancel_url_and_expires_the_session)
{
    resp_t  r;
    char    path[256], id[64];

    snprintf(id, sizeof(id), "%s", create_ok("m1:co_decline", 1000));

    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, CANCEL);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "status"), "expired");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
    resp_free(&r);

    /* an expired session has no page and cannot be paid */
    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 410);
    resp_free(&r);
}


MOCK_TEST(the_hosted_page_of_an_unknown_session_is_404)
{
    resp_t  r;

    request(&r, "GET", "/pay/cs_test_nope", AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    request(&r, "POST", "/pay/cs_test_nope/pay", AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 404);
    cr_assert_str_empty(r.location);
    resp_free(&r);
}


MOCK_TEST(serves_50_concurrent_requests_with_200_ms_latency_at_once)
{
    int                 i, running;
    char                body[50][2048], key[50][32];
    double              t0, elapsed;
    CURL               *h[50];
    CURLM              *m;
    resp_t              r[50];
    struct curl_slist  *hdrs[50];

    fault("{\"match\":\"conc-\",\"latency_ms\":200}");

    m = curl_multi_init();
    for (i = 0; i < 50; i++) {
        snprintf(key[i], sizeof(key[i]), "conc-%d", i);
        form(body[i], sizeof(body[i]), key[i], 1000 + i, NULL);
        h[i] = prepare(&r[i], &hdrs[i], "POST", "/v1/checkout/sessions",
                       AUTH_GOOD, key[i],
                       "application/x-www-form-urlencoded", body[i]);
        curl_multi_add_handle(m, h[i]);
    }

    t0 = now_ms();
    do {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
    } while (running > 0);
    elapsed = now_ms() - t0;

    for (i = 0; i < 50; i++) {
        curl_multi_remove_handle(m, h[i]);
        finish(&r[i], h[i], hdrs[i]);
        cr_assert_eq(r[i].status, 200, "request %d: %ld", i, r[i].status);
        resp_free(&r[i]);
    }
    curl_multi_cleanup(m);

    /* serial would be 10 s; one latency plus slack proves they overlapped */
    cr_assert_geq(elapsed, 195.0);
    cr_assert_lt(elapsed, 1500.0, "50 requests took %.0f ms", elapsed);
}


MOCK_TEST(validates_parameters_like_stripe)
{
    resp_t  r;
    char    body[4096];

    static const struct {
        const char  *extra_or_body;
        int          whole;
        const char  *code;
        const char  *param;
    }  cases[] = {
        { "&foo=1", 0, "parameter_unknown", "foo" },
        { "&mode=payment", 0, "parameter_invalid", "mode" },
        { "&line_items[0][quantity]=", 0, "parameter_invalid", NULL },
        { "&line_items[2][quantity]=1", 0, "parameter_missing",
          "line_items[2][price_data][currency]" },
        { "&line_items[2][price_data][currency]=eur"
          "&line_items[2][price_data][unit_amount]=100"
          "&line_items[2][price_data][product_data][name]=x"
          "&line_items[2][quantity]=1", 0, "parameter_invalid",
          "line_items[2][price_data][currency]" },
        { "&expires_at=12x", 0, "parameter_invalid_integer", "expires_at" },
        { "&expires_at=1000", 0, "parameter_invalid", "expires_at" },
        { "&customer_email=", 0, "parameter_invalid_empty",
          "customer_email" },
        { "&bad=%zz", 0, "parameter_invalid", NULL },
        { "&bad=%00", 0, "parameter_invalid", NULL },
        { "&bad=%ff", 0, "parameter_invalid", NULL },
        { "mode=payment&success_url=https://a.example&cancel_url=https://"
          "a.example", 1, "parameter_missing", "line_items" },
        { "mode=payment&success_url=https://a.example&cancel_url=https://"
          "a.example&line_items[0][price_data][currency]=usd"
          "&line_items[0][price_data][unit_amount]=0"
          "&line_items[0][price_data][product_data][name]=x"
          "&line_items[0][quantity]=1", 1, "parameter_invalid_integer",
          "line_items[0][price_data][unit_amount]" },
        { "mode=payment&success_url=https://a.example&cancel_url=https://"
          "a.example&line_items[0][price_data][currency]=usd"
          "&line_items[0][price_data][unit_amount]=10"
          "&line_items[0][price_data][product_data][name]=x"
          "&line_items[0][quantity]=1.5", 1, "parameter_invalid_integer",
          "line_items[0][quantity]" },
        { "mode=payment&cancel_url=https://a.example"
          "&line_items[0][price_data][currency]=usd"
          "&line_items[0][price_data][unit_amount]=10"
          "&line_items[0][price_data][product_data][name]=x"
          "&line_items[0][quantity]=1", 1, "parameter_missing",
          "success_url" },
        /* setup mode needs a currency (without payment_method_types) */
        { "mode=setup", 1, "parameter_missing", "currency" },
        { "mode=subscription", 1, "parameter_invalid", "mode" }
    };
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].whole) {
            snprintf(body, sizeof(body), "%s", cases[i].extra_or_body);
        } else {
            form(body, sizeof(body), "m1:co_invalid", 1000,
                 cases[i].extra_or_body);
        }

        create(&r, "m1:co_invalid", body);
        cr_assert_eq(r.status, 400, "case %zu: %ld %s", i, r.status, r.body);
        cr_assert_str_eq(error_field(&r, "type"), "invalid_request_error",
                         "case %zu: %s", i, r.body);
        cr_assert_str_eq(error_field(&r, "code"), cases[i].code,
                         "case %zu: %s", i, r.body);
        if (cases[i].param != NULL) {
            cr_assert_str_eq(error_field(&r, "param"), cases[i].param,
                             "case %zu: %s", i, r.body);
        }
        resp_free(&r);
    }

    /* a validation error stores nothing: the same key still works */
    form(body, sizeof(body), "m1:co_invalid", 1000, NULL);
    create(&r, "m1:co_invalid", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    /* JSON is not what Stripe takes */
    request(&r, "POST", "/v1/checkout/sessions", AUTH_GOOD, "m1:json",
            "application/json", "{\"mode\":\"payment\"}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(accepts_expires_at_between_30_minutes_and_24_hours)
{
    resp_t     r;
    char       extra[64], body[2048];
    long long  at;

    /* one clock reading: a second may tick between two */
    at = (long long) time(NULL) + 3600;
    snprintf(extra, sizeof(extra), "&expires_at=%lld", at);
    form(body, sizeof(body), "exp-ok", 1000, extra);
    create(&r, "exp-ok", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_at")),
                 (json_int_t) at, "%s", r.body);
    resp_free(&r);

    snprintf(extra, sizeof(extra), "&expires_at=%lld",
             (long long) time(NULL) + 29 * 60);
    form(body, sizeof(body), "exp-short", 1000, extra);
    create(&r, "exp-short", body);
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    snprintf(extra, sizeof(extra), "&expires_at=%lld",
             (long long) time(NULL) + 25 * 3600);
    form(body, sizeof(body), "exp-long", 1000, extra);
    create(&r, "exp-long", body);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(reset_clears_sessions_counts_and_faults)
{
    resp_t     r;
    char       path[256], body[2048];
    long long  created, requests;

    fault("{\"match\":\"\",\"refuse_status\":402}");
    form(body, sizeof(body), "m1:co_reset", 1000, NULL);
    create(&r, "m1:co_reset", body);
    cr_assert_eq(r.status, 402);
    resp_free(&r);

    control(&r, "POST", "/_control/reset", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    registrations("m1:co_reset", &created, &requests);
    cr_assert_eq(requests, 0);

    create(&r, "m1:co_reset", body);
    cr_assert_eq(r.status, 200, "the fault must be gone: %s", r.body);
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", str(&r, "id"));
    resp_free(&r);

    control(&r, "POST", "/_control/reset", NULL);
    resp_free(&r);

    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
}


MOCK_TEST(control_api_refuses_malformed_faults)
{
    resp_t  r;

    control(&r, "GET", "/_control/health", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(json_is_true(json_object_get(r.json, "ok")));
    resp_free(&r);

    control(&r, "POST", "/_control/faults", "{\"fail_tims\":2}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "POST", "/_control/faults", "{\"fail_times\":-1}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "POST", "/_control/faults", "[1]");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "GET", "/_control/registrations", NULL);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


/* Stripe counts ISK in hundredths (ISO: whole krónur) and MGA in whole
 * ariary (ISO: two decimals): the session stores Stripe's units, and its
 * page and settlement report write them as Stripe does, in major units
 * with Stripe's decimals (750 ISK is "750.00", never "75000"; 150 MGA is
 * "150", never "1.50"). */
MOCK_TEST(stripe_amounts_are_written_with_stripes_decimals)
{
    static const struct { const char *cur; long unit; const char *page,
                          *row; } c[] = {
        { "isk", 75000, "750.00 ISK", ",isk,750.00,22.05,727.95,charge," },
        { "mga", 150, "150 MGA", ",mga,150,34,116,charge," },
    };
    resp_t  r;
    char    body[2048], path[256], id[64];
    size_t  i;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        snprintf(body, sizeof(body),
                 "mode=payment&success_url=https%%3A%%2F%%2Fshop.example%%2Fok"
                 "&cancel_url=https%%3A%%2F%%2Fshop.example%%2Fcart"
                 "&line_items[0][price_data][currency]=%s"
                 "&line_items[0][price_data][unit_amount]=%ld"
                 "&line_items[0][price_data][product_data][name]=Order"
                 "&line_items[0][quantity]=1&client_reference_id=m1:co_u%zu",
                 c[i].cur, c[i].unit, i);
        create(&r, NULL, body);
        cr_assert_eq(r.status, 200, "%s", r.body);
        snprintf(id, sizeof(id), "%s", str(&r, "id"));
        resp_free(&r);

        snprintf(path, sizeof(path), "/pay/%s", id);
        request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
        cr_assert_not_null(strstr(r.body, c[i].page), "%s", r.body);
        resp_free(&r);

        snprintf(path, sizeof(path), "/pay/%s/pay", id);
        request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
        cr_assert_eq(r.status, 303);
        resp_free(&r);

        snprintf(path, sizeof(path), "/_control/reports/stripe?sessions=%s",
                 id);
        control(&r, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_not_null(strstr(r.body, c[i].row), "%s", r.body);
        resp_free(&r);
    }
}
