/*
 * The mock PSP's Stripe webhooks: signed like Stripe's, retried, and
 * each fault knob.
 */

#include "mock_receiver.h"


WEBHOOK_TEST(completed_event_is_signed_like_stripe, "50")
{
    resp_t       r;
    json_t      *obj, *events;
    wh_hit_t    *hit;
    long long    t;
    char         id[64];

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_sign", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    hit = &rx.hits[0];

    cr_assert_not_null(hit->json, "body: %s", hit->body);
    cr_assert_eq(strncmp(hit->ctype, "application/json", 16), 0, "%s",
                 hit->ctype);
    cr_assert(wh_verify(hit, WH_SECRET, &t), "signature %s", hit->sig);
    cr_assert_leq(llabs(t - (long long) time(NULL)), 5);
    /* a different secret does not verify */
    cr_assert_not(wh_verify(hit, "whsec_other", &t));

    cr_assert_eq(strncmp(wh_id(hit), "evt_", 4), 0);
    cr_assert_str_eq(json_string_value(json_object_get(hit->json, "object")),
                     "event");
    cr_assert_str_eq(wh_type(hit), "checkout.session.completed");
    cr_assert(json_is_false(json_object_get(hit->json, "livemode")));
    cr_assert(json_is_integer(json_object_get(hit->json, "created")));

    obj = wh_object(hit);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "object")),
                     "checkout.session");
    cr_assert_str_eq(json_string_value(json_object_get(obj,
                                                       "payment_status")),
                     "paid");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "status")),
                     "complete");
    cr_assert_eq(json_integer_value(json_object_get(obj, "amount_total")),
                 2000);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "currency")),
                     "usd");
    cr_assert_str_eq(json_string_value(json_object_get(obj,
                                                   "client_reference_id")),
                     "m1:wh_sign");
    cr_assert(json_is_false(json_object_get(obj, "livemode")));

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "id"), wh_id(hit));
    cr_assert_str_eq(rec_str(events, 0, "type"),
                     "checkout.session.completed");
    cr_assert_eq(rec_int(events, 0, "attempts"), 1);
    cr_assert_eq(rec_int(events, 0, "last_status"), 200);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* paying again: 200, the same session, no second event */
    session_post(id, "pay", 200);
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 1);

    /* an unknown session */
    session_post("cs_test_nope", "pay", 404);
    control(&r, "GET", "/_control/sessions/x/pay", NULL);
    cr_assert_eq(r.status, 405);
    resp_free(&r);
    control(&r, "GET", "/_control/webhooks", NULL);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


WEBHOOK_TEST(the_hosted_page_answers_without_waiting_for_the_webhook, "50")
{
    resp_t    r;
    json_t   *events;
    double    t0;
    char      path[256], id[64];

    rx.delay_ms = 1500;
    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_page", 1000));

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    t0 = now_ms();
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_lt(now_ms() - t0, 1000, "the page waited for the webhook");
    resp_free(&r);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);
}


WEBHOOK_TEST(retries_until_a_2xx_and_records_every_attempt, "50")
{
    json_t          *events;
    long long        t;
    char             id[64];
    static const unsigned  script[] = { 500, 404 };

    /* a 4xx is retried too, as Stripe does */
    rx_script(200, 2, script);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_retry", 1000));
    session_post(id, "pay", 200);

    rx_wait(3, 5000);

    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 3);
    cr_assert_eq(rec_int(events, 0, "last_status"), 200);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* the same event every time, signed afresh each time */
    cr_assert_str_eq(wh_id(&rx.hits[1]), wh_id(&rx.hits[0]));
    cr_assert_str_eq(wh_id(&rx.hits[2]), wh_id(&rx.hits[0]));
    cr_assert_str_eq(rx.hits[2].body, rx.hits[0].body);
    cr_assert(wh_verify(&rx.hits[1], WH_SECRET, &t));
    cr_assert(wh_verify(&rx.hits[2], WH_SECRET, &t));

    /* 50 ms, then 100 ms */
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 45);
    cr_assert_geq(rx.hits[2].at - rx.hits[1].at, 95);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


WEBHOOK_TEST(gives_up_after_10_attempts, "1")
{
    json_t  *events;
    char     id[64];

    rx_script(500, 0, NULL);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_giveup", 1000));
    session_post(id, "pay", 200);

    rx_wait(10, 10000);
    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 10);
    cr_assert_eq(rec_int(events, 0, "last_status"), 500);
    cr_assert_not(rec_delivered(events, 0));
    json_decref(events);

    usleep(600 * 1000);
    cr_assert_eq(rx_count(), 10);
}


WEBHOOK_TEST(duplicate_delivers_the_same_event_again_at_once, "50")
{
    int      i;
    json_t  *events;
    char     id[64];

    fault("{\"match\":\"wh_dup\",\"webhook_duplicate\":2}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_dup", 1000));
    session_post(id, "pay", 200);

    rx_wait(3, 5000);

    for (i = 1; i < 3; i++) {
        cr_assert_str_eq(wh_id(&rx.hits[i]), wh_id(&rx.hits[0]));
        cr_assert_str_eq(rx.hits[i].body, rx.hits[0].body);
        cr_assert_lt(rx.hits[i].at - rx.hits[0].at, 500, "not concurrent");
    }

    events = wh_records_settled(id, 3, 1, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rec_str(events, (size_t) i, "id"),
                         wh_id(&rx.hits[0]));
        cr_assert(rec_delivered(events, (size_t) i));
        cr_assert_eq(rec_int(events, (size_t) i, "attempts"), 1);
    }
    json_decref(events);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


WEBHOOK_TEST(out_of_order_sends_the_async_success_before_the_completion, "50")
{
    json_t      *events;
    char         id[64];
    const char  *ps;

    /* Stripe does not promise the order of its events: the settlement
     * may come before the completion it follows */
    fault("{\"match\":\"wh_ooo\",\"webhook_out_of_order\":true,"
          "\"async_payment\":true,\"async_delay_ms\":100}");

    /* the receiver is slow: the second event must wait for the first */
    rx.delay_ms = 200;

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_ooo", 1000));
    session_post(id, "pay", 200);

    rx_wait(2, 5000);

    cr_assert_str_eq(wh_type(&rx.hits[0]),
                     "checkout.session.async_payment_succeeded");
    ps = json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                           "payment_status"));
    cr_assert_str_eq(ps, "paid");
    cr_assert_str_eq(wh_type(&rx.hits[1]), "checkout.session.completed");
    ps = json_string_value(json_object_get(wh_object(&rx.hits[1]),
                                           "payment_status"));
    cr_assert_str_eq(ps, "unpaid");
    cr_assert_str_neq(wh_id(&rx.hits[1]), wh_id(&rx.hits[0]));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 190);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"),
                     "checkout.session.async_payment_succeeded");
    cr_assert_str_eq(rec_str(events, 1, "type"),
                     "checkout.session.completed");
    json_decref(events);
}


WEBHOOK_TEST(out_of_order_never_expires_a_session_stripe_completed, "50")
{
    json_t  *events;
    char     id[64];

    /* a card paid at once is one event: nothing to reorder, and Stripe
     * never sends an expiry for a completed session */
    fault("{\"match\":\"wh_ooo1\",\"webhook_out_of_order\":true}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_ooo1", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert_eq(json_array_size(events), 1);
    json_decref(events);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 1);
}


WEBHOOK_TEST(bad_signature_does_not_verify_and_is_still_retried, "50")
{
    json_t     *events;
    long long   t;
    char        id[64];
    static const unsigned  script[] = { 400 };

    fault("{\"match\":\"wh_badsig\",\"webhook_bad_signature\":true}");
    rx_script(200, 1, script);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_badsig", 1000));
    session_post(id, "pay", 200);

    rx_wait(2, 5000);
    cr_assert_not(wh_verify(&rx.hits[0], WH_SECRET, &t));
    cr_assert_not(wh_verify(&rx.hits[1], WH_SECRET, &t));
    cr_assert_leq(llabs(t - (long long) time(NULL)), 5);

    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 2);
    json_decref(events);
}


WEBHOOK_TEST(stale_signs_a_timestamp_400_s_old, "50")
{
    long long   t;
    char        id[64];

    fault("{\"match\":\"wh_stale\",\"webhook_stale\":true}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_stale", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    cr_assert(wh_verify(&rx.hits[0], WH_SECRET, &t),
              "a stale event is still signed correctly");
    cr_assert_leq(llabs((long long) time(NULL) - 400 - t), 5, "t=%lld", t);
}


WEBHOOK_TEST(async_payment_completes_unpaid_then_succeeds, "50")
{
    resp_t       r;
    json_t      *events;
    char         id[64], path[256];
    const char  *ps;

    fault("{\"match\":\"wh_async\",\"async_payment\":true,"
          "\"async_delay_ms\":300}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_async", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");
    ps = json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                           "payment_status"));
    cr_assert_str_eq(ps, "unpaid");

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "status"), "complete");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
    resp_free(&r);

    rx_wait(2, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[1]),
                     "checkout.session.async_payment_succeeded");
    ps = json_string_value(json_object_get(wh_object(&rx.hits[1]),
                                           "payment_status"));
    cr_assert_str_eq(ps, "paid");
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 290);

    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "payment_status"), "paid");
    resp_free(&r);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 1, "type"),
                     "checkout.session.async_payment_succeeded");
    json_decref(events);
}


WEBHOOK_TEST(decline_expires_the_session_and_says_so, "50")
{
    resp_t     r;
    json_t    *events;
    long long  t;
    char       id[64], id2[64], path[256];

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_decl", 1000));

    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, CANCEL);
    resp_free(&r);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.expired");
    cr_assert(wh_verify(&rx.hits[0], WH_SECRET, &t));
    cr_assert_str_eq(json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                                       "status")),
                     "expired");

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* the control API does the same; a paid session cannot be declined */
    snprintf(id2, sizeof(id2), "%s", create_ok("m1:wh_decl2", 1000));
    session_post(id2, "decline", 200);
    rx_wait(2, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[1]), "checkout.session.expired");

    session_post(id2, "decline", 410);
    session_post(id2, "pay", 410);
    session_post(id, "decline", 410);

    snprintf(id2, sizeof(id2), "%s", create_ok("m1:wh_decl3", 1000));
    session_post(id2, "pay", 200);
    session_post(id2, "decline", 409);
    rx_wait(3, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[2]), "checkout.session.completed");
}


WEBHOOK_TEST(delay_and_amount_knobs, "50")
{
    resp_t    r;
    json_t   *events;
    double    t0;
    char      id[64], path[256];

    fault("{\"match\":\"wh_knobs\",\"webhook_delay_ms\":500,"
          "\"webhook_amount\":1}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_knobs", 1000));
    t0 = now_ms();
    session_post(id, "pay", 200);

    /* listed at once, not yet attempted */
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 1);
    cr_assert_eq(rec_int(events, 0, "attempts"), 0);
    cr_assert_not(rec_delivered(events, 0));
    json_decref(events);

    rx_wait(1, 5000);
    cr_assert_geq(rx.hits[0].at - t0, 490);
    cr_assert_eq(json_integer_value(json_object_get(wh_object(&rx.hits[0]),
                                                    "amount_total")), 1);

    /* only the report lies */
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "amount_total")),
                 2000);
    resp_free(&r);

    /* the rule lists its webhook fields */
    control(&r, "GET", "/_control/faults", NULL);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(r.json, "faults"), 0),
                     "webhook_delay_ms")), 500);
    resp_free(&r);
}


WEBHOOK_TEST(reset_stops_pending_retries, "200")
{
    resp_t   r;
    json_t  *events;
    char     id[64];

    rx_script(500, 0, NULL);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_reset", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);

    control(&r, "POST", "/_control/reset", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    usleep(800 * 1000);
    cr_assert_eq(rx_count(), 1, "a retry went out after the reset");
}


WEBHOOK_TEST(stops_promptly_with_a_delivery_in_flight, "50")
{
    double  t0;
    char    id[64];

    /* the receiver holds the request for 20 s */
    rx.delay_ms = 20000;

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_stop", 1000));
    session_post(id, "pay", 200);
    rx_wait(1, 5000);

    t0 = now_ms();
    mock_stop();
    cr_assert_lt(now_ms() - t0, 3000, "the stop waited for the webhook");
}


WEBHOOK_TEST(refuses_malformed_webhook_knobs, "50")
{
    size_t       i;
    resp_t       r;

    static const char  *bad[] = {
        "{\"webhook_duplicate\":-1}",
        "{\"webhook_duplicate\":21}",
        "{\"webhook_stale\":1}",
        "{\"webhook_out_of_order\":\"yes\"}",
        "{\"webhook_amount\":-5}",
        "{\"webhook_delay_ms\":-1}",
        "{\"async_delay_ms\":100}",
        "{\"webhook_bad_sig\":true}"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        control(&r, "POST", "/_control/faults", bad[i]);
        cr_assert_eq(r.status, 400, "%s: %ld", bad[i], r.status);
        resp_free(&r);
    }

    fault("{\"match\":\"x\",\"webhook_amount\":null,\"async_payment\":false,"
          "\"webhook_bad_signature\":false}");
}


Test(webhooks, refuses_a_webhook_url_without_a_secret, .timeout = 30)
{
    int          status;
    pid_t        pid;
    const char  *bin;

    bin = getenv("MOCK_PSP_BIN");
    if (bin == NULL) {
        bin = "build/mock_psp";
    }

    pid = fork();
    cr_assert_neq(pid, -1);

    if (pid == 0) {
        int  fd;

        fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        execl(bin, bin, "--port", "0", "--stripe-secret", SECRET,
              "--webhook-url", "http://127.0.0.1:1/x", (char *) NULL);
        _exit(127);
    }

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2,
              "status %d", status);
}
