/*
 * The mock PSP's generic PSP API: registration, the hosted page and
 * its ES256-signed webhooks.
 */

#include "mock_dialects.h"


/* --- generic: registration ------------------------------------------------ */

DIALECT_TEST(generic_registration_key_and_idempotency, dl_start)
{
    char         key[300], url[256], *body, *other;
    resp_t       r, again;
    long long    created, requests, exp;

    exp = (long long) time(NULL) + 7200;
    body = dump(json_pack("{ss ss ss ss ss sI}", "reference", "m1:co_g1",
                          "amount", "12.30", "currency", "USD",
                          "return_url", GEN_RETURN, "cancel_url", GEN_CANCEL,
                          "expires_at", (json_int_t) exp));
    other = dump(generic_json("m1:co_g1", "12.31", "USD"));

    dl_post(&r, "/sessions", NULL, "m1:co_g1", "application/json", body);
    cr_assert_eq(r.status, 401, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "unauthorized");
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY "x",
            "m1:co_g1", "application/json", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Basic " GEN_KEY, "m1:co_g1",
            "application/json", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    /* the Stripe secret is not the generic one */
    dl_post(&r, "/sessions", "Authorization: Bearer " SECRET, "m1:co_g1",
            "application/json", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_g1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(json_object_size(r.json), 3, "%s", r.body);
    cr_assert_eq(strncmp(str(&r, "token"), "gs_", 3), 0);
    cr_assert_eq(strlen(str(&r, "token")), 27);
    snprintf(url, sizeof(url), "%s/pay/%s", mock_url, str(&r, "token"));
    cr_assert_str_eq(str(&r, "url"), url);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_at")),
                 exp);

    dl_post(&again, "/sessions", "Authorization: Bearer " GEN_KEY,
            "m1:co_g1", "application/json", body);
    cr_assert_eq(again.status, 201);
    cr_assert(again.replayed);
    cr_assert_str_eq(again.body, r.body);
    resp_free(&again);

    dl_post(&again, "/sessions", "Authorization: Bearer " GEN_KEY,
            "m1:co_g1", "application/json", other);
    cr_assert_eq(again.status, 422, "%s", again.body);
    cr_assert_str_eq(error_field(&again, "code"), "idempotency_key_reused");
    resp_free(&again);
    resp_free(&r);

    registrations("m1:co_g1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 7);

    /* keys up to 255 characters */
    memset(key, 'k', 256);
    key[256] = '\0';
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, key,
            "application/json", other);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "idempotency_key_invalid");
    resp_free(&r);

    key[255] = '\0';
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, key,
            "application/json", other);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    free(body);
    free(other);
}


/* The amount string, parsed in the currency's exponent: minor units. */
DIALECT_TEST(generic_amounts_are_exact_in_the_currency_exponent, dl_start)
{
    size_t       i;
    char         token[64], key[32];
    resp_t       r;
    json_t      *s, *j;

    static const struct {
        const char  *amount, *currency;
        long long    minor;
        const char  *back;                   /* as the webhook says it */
    } good[] = {
        { "10", "USD", 1000, "10.00" },
        { "10.5", "USD", 1050, "10.50" },
        { "10.50", "USD", 1050, "10.50" },
        { "0.01", "USD", 1, "0.01" },
        { "1.500", "KWD", 1500, "1.500" },
        { "0.001", "BHD", 1, "0.001" },
        { "7", "JPY", 7, "7" },
        { "92233720368547758.07", "EUR", 9223372036854775807LL,
          "92233720368547758.07" },
    };

    static const struct {
        const char  *amount, *currency;
    } bad[] = {
        { "7.0", "JPY" }, { "1.001", "USD" }, { "010.00", "USD" },
        { "+10", "USD" }, { "-10", "USD" }, { "1e3", "USD" },
        { " 10", "USD" }, { "10 ", "USD" }, { "10,00", "USD" },
        { "10.", "USD" }, { ".5", "USD" }, { "0", "USD" },
        { "0.00", "USD" }, { "", "USD" }, { "1.2.3", "USD" },
        { "92233720368547758.08", "EUR" }, { "9223372036854775808", "JPY" },
        { "99999999999999999999999", "USD" }
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(key, sizeof(key), "m1:amt_%zu", i);
        generic_create(key, good[i].amount, good[i].currency, token);

        s = session_act(token, "pay", 200);
        cr_assert_eq(json_integer_value(json_object_get(s, "amount_total")),
                     good[i].minor, "%s %s", good[i].amount,
                     good[i].currency);
        json_decref(s);

        rx_wait((int) i + 1, 5000);
        generic_expect_event(&rx.hits[i], "payment.succeeded", key, token,
                             good[i].back, good[i].currency);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        generic_post(&r, NULL, generic_json("m1:amt_bad", bad[i].amount,
                                            bad[i].currency));
        cr_assert_eq(r.status, 400, "\"%s\" %s: %ld %s", bad[i].amount,
                     bad[i].currency, r.status, r.body);
        cr_assert_str_eq(error_field(&r, "code"), "invalid_amount");
        resp_free(&r);
    }

    /* a JSON number is no amount */
    j = generic_json("m1:amt_num", "1", "USD");
    json_object_set_new(j, "amount", json_integer(10));
    generic_post(&r, NULL, j);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_field(&r, "code"), "invalid_amount");
    resp_free(&r);
}


DIALECT_TEST(generic_registration_validates, dl_start)
{
    size_t       i;
    json_t      *j;
    resp_t       r;

    static const struct {
        const char  *field;
        int          kind;                   /* 0 delete, 1 string, 2 int,
                                                3 {"k": 1} */
        const char  *value;
        long long    offset;                 /* kind 2: now + offset */
        const char  *code;
    } cases[] = {
        { "reference", 0, NULL, 0, "invalid_reference" },
        { "reference", 1, "", 0, "invalid_reference" },
        { "currency", 0, NULL, 0, "invalid_currency" },
        { "currency", 1, "usd", 0, "invalid_currency" },
        { "currency", 1, "USDX", 0, "invalid_currency" },
        { "amount", 0, NULL, 0, "invalid_amount" },
        { "return_url", 0, NULL, 0, "invalid_url" },
        { "return_url", 1, "javascript:alert(1)", 0, "invalid_url" },
        { "cancel_url", 0, NULL, 0, "invalid_url" },
        { "cancel_url", 1, "https://", 0, "invalid_url" },
        { "expires_at", 2, NULL, -5, "invalid_expires_at" },
        { "expires_at", 2, NULL, 25 * 3600, "invalid_expires_at" },
        { "expires_at", 1, "1800000000", 0, "invalid_expires_at" },
        { "metadata", 1, "order=4711", 0, "invalid_metadata" },
        { "metadata", 3, NULL, 0, "invalid_metadata" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        j = generic_json("m1:co_gv", "5.00", "USD");

        if (cases[i].kind == 0) {
            json_object_del(j, cases[i].field);
        } else if (cases[i].kind == 1) {
            json_object_set_new(j, cases[i].field,
                                json_string(cases[i].value));
        } else if (cases[i].kind == 3) {
            json_object_set_new(j, cases[i].field, json_pack("{si}", "k", 1));
        } else {
            json_object_set_new(j, cases[i].field,
                                json_integer(time(NULL) + cases[i].offset));
        }

        generic_post(&r, NULL, j);
        cr_assert_eq(r.status, 400, "%zu %s: %ld %s", i, cases[i].field,
                     r.status, r.body);
        cr_assert_str_eq(error_field(&r, "code"), cases[i].code, "%zu: %s",
                         i, r.body);
        resp_free(&r);
    }

    /* expires_at may be left out */
    j = generic_json("m1:co_gv", "5.00", "USD");
    json_object_del(j, "expires_at");
    generic_post(&r, NULL, j);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, NULL,
            "text/plain", "{}");
    cr_assert_eq(r.status, 415);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, NULL,
            "application/json", "[1]");
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


/* --- generic: hosted page and webhooks ------------------------------------ */

DIALECT_TEST(generic_pay_and_decline_redirect_and_send_es256_webhooks,
             dl_start)
{
    char         tok[2][64], path[256];
    resp_t       r;
    jwt_t        j;
    json_t      *events;

    rx.answer = "{\"received\":true}";

    generic_create("m1:co_g2", "1.500", "KWD", tok[0]);
    generic_create("m1:co_g3", "20", "USD", tok[1]);

    snprintf(path, sizeof(path), "/pay/%s", tok[0]);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "<strong id=\"amount\">1.500 KWD"));
    resp_free(&r);

    /* Pay: to return_url, exactly */
    snprintf(path, sizeof(path), "/pay/%s/pay", tok[0]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, GEN_RETURN);
    resp_free(&r);

    rx_wait(1, 5000);
    generic_expect_event(&rx.hits[0], "payment.succeeded", "m1:co_g2",
                         tok[0], "1.500", "KWD");
    cr_assert_str_eq(rx.hits[0].sig, "");
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert(j.verified, "the ES256 signature does not verify");
    jwt_expect(&j, &rx.hits[0], "mock-es256", 0);
    cr_assert_null(json_object_get(j.claims, "iss"));
    cr_assert_null(json_object_get(j.claims, "aud"));
    jwt_close(&j);

    /* Decline: to cancel_url, payment.failed */
    snprintf(path, sizeof(path), "/pay/%s/decline", tok[1]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, GEN_CANCEL);
    resp_free(&r);

    rx_wait(2, 5000);
    generic_expect_event(&rx.hits[1], "payment.failed", "m1:co_g3", tok[1],
                         "20.00", "USD");
    jwt_open(rx.hits[1].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[1], "mock-es256", 0);
    jwt_close(&j);
    cr_assert_str_neq(hit_str(&rx.hits[0], "event_id"),
                      hit_str(&rx.hits[1], "event_id"));

    events = wh_records_settled(tok[0], 1, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "id"),
                     hit_str(&rx.hits[0], "event_id"));
    cr_assert_str_eq(rec_str(events, 0, "type"), "payment.succeeded");
    cr_assert_str_eq(rec_str(events, 0, "last_body"), "{\"received\":true}");
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* paid: again is a no-op, decline 409; declined: 410 */
    session_act(tok[0], "pay", 200);
    session_act(tok[0], "decline", 409);
    session_act(tok[1], "pay", 410);
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 2);
}


DIALECT_TEST(generic_every_attempt_is_signed_anew, dl_start)
{
    int          i;
    char         tok[64];
    jwt_t        j;
    json_t      *events;
    static const unsigned  script[] = { 500, 400 };

    rx_script(200, 2, script);

    generic_create("m1:co_g4", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));

    rx_wait(3, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rx.hits[i].body, rx.hits[0].body);
        jwt_open(rx.hits[i].jwt, &j);
        cr_assert(j.verified, "attempt %d", i + 1);
        jwt_expect(&j, &rx.hits[i], "mock-es256", 0);
        jwt_close(&j);
    }
    /* ECDSA signatures differ even within one second */
    cr_assert_str_neq(rx.hits[1].jwt, rx.hits[0].jwt);

    events = wh_records_settled(tok, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 3);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);
}


DIALECT_TEST(generic_out_of_order_sends_payment_failed_first, dl_start)
{
    char         tok[64];
    jwt_t        j;
    json_t      *events;

    fault("{\"match\":\"co_g5\",\"webhook_out_of_order\":true}");
    rx.delay_ms = 200;

    generic_create("m1:co_g5", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));

    rx_wait(2, 5000);
    generic_expect_event(&rx.hits[0], "payment.failed", "m1:co_g5", tok,
                         "3.00", "EUR");
    generic_expect_event(&rx.hits[1], "payment.succeeded", "m1:co_g5", tok,
                         "3.00", "EUR");
    cr_assert_str_neq(hit_str(&rx.hits[0], "event_id"),
                      hit_str(&rx.hits[1], "event_id"));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 190);
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert(j.verified);
    jwt_close(&j);

    events = wh_records_settled(tok, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "payment.failed");
    cr_assert_str_eq(rec_str(events, 1, "type"), "payment.succeeded");
    json_decref(events);
}


DIALECT_TEST(generic_bad_signature_and_stale, dl_start)
{
    char         tok[2][64];
    jwt_t        j;
    static const unsigned  script[] = { 400 };

    fault("{\"match\":\"co_g6\",\"webhook_bad_signature\":true}");
    fault("{\"match\":\"co_g7\",\"webhook_stale\":true}");
    rx_script(200, 1, script);

    /* bad: the claims are right, the signature is not; retried */
    generic_create("m1:co_g6", "3.00", "EUR", tok[0]);
    json_decref(session_act(tok[0], "pay", 200));
    rx_wait(2, 5000);
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert_not(j.verified, "a bad signature verified");
    jwt_expect(&j, &rx.hits[0], "mock-es256", 0);
    jwt_close(&j);
    jwt_open(rx.hits[1].jwt, &j);
    cr_assert_not(j.verified);
    jwt_close(&j);

    /* stale: signed right, with an iat 600 s old */
    generic_create("m1:co_g7", "3.00", "EUR", tok[1]);
    json_decref(session_act(tok[1], "pay", 200));
    rx_wait(3, 5000);
    jwt_open(rx.hits[2].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[2], "mock-es256", 600);
    jwt_close(&j);
}


DIALECT_TEST(generic_async_payment_sends_pending_first, dl_start)
{
    char         tok[64];
    jwt_t        j;
    json_t      *s, *events;

    fault("{\"match\":\"co_g8\",\"async_payment\":true,"
          "\"async_delay_ms\":300}");

    generic_create("m1:co_g8", "3.00", "EUR", tok);
    s = session_act(tok, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "unpaid");
    json_decref(s);

    rx_wait(2, 5000);
    generic_expect_event(&rx.hits[0], "payment.pending", "m1:co_g8", tok,
                         "3.00", "EUR");
    generic_expect_event(&rx.hits[1], "payment.succeeded", "m1:co_g8", tok,
                         "3.00", "EUR");
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 290);
    jwt_open(rx.hits[1].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[1], "mock-es256", 0);
    jwt_close(&j);

    events = wh_records_settled(tok, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "payment.pending");
    json_decref(events);

    s = session_act(tok, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "paid");
    json_decref(s);
}


DIALECT_TEST(generic_duplicate_delay_and_amount, dl_start)
{
    int          i;
    char         tok[64];
    double       t0;
    jwt_t        j;

    fault("{\"match\":\"co_g9\",\"webhook_duplicate\":1,"
          "\"webhook_delay_ms\":400,\"webhook_amount\":1}");

    generic_create("m1:co_g9", "3.00", "EUR", tok);
    t0 = now_ms();
    json_decref(session_act(tok, "pay", 200));

    rx_wait(2, 5000);
    for (i = 0; i < 2; i++) {
        cr_assert_geq(rx.hits[i].at - t0, 390);
        generic_expect_event(&rx.hits[i], "payment.succeeded", "m1:co_g9",
                             tok, "0.01", "EUR");
        jwt_open(rx.hits[i].jwt, &j);
        cr_assert(j.verified);
        jwt_close(&j);
    }
    cr_assert_str_eq(rx.hits[1].body, rx.hits[0].body);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 2);
}


DIALECT_TEST(generic_jwt_kid_iss_aud_and_header_flags, dl_start_claims)
{
    char         tok[64];
    jwt_t        j;

    generic_create("m1:co_g10", "3.00", "EUR", tok);
    json_decref(session_act(tok, "decline", 200));

    rx_wait(1, 5000);
    generic_expect_event(&rx.hits[0], "payment.failed", "m1:co_g10", tok,
                         "3.00", "EUR");
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[0], "kid-1", 0);
    cr_assert_str_eq(json_string_value(json_object_get(j.claims, "iss")),
                     "https://psp.example");
    cr_assert_str_eq(json_string_value(json_object_get(j.claims, "aud")),
                     "ngx_payments");
    jwt_close(&j);
}


DIALECT_TEST(generic_without_a_webhook_url_only_logs, dl_start_no_urls)
{
    char     tok[64];
    json_t  *events;

    generic_create("m1:co_g11", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));
    usleep(300 * 1000);

    events = wh_records(tok);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    cr_assert_eq(rx_count(), 0);
}


/* --- generic: manual capture's reversal and a capture at the dashboard -- */

/*
 * webhook_capture_reversed: capture.succeeded, then capture.failed of the
 * same capture_id; a capture made at the dashboard (POST
 * /_control/captures) is a capture.succeeded naming the session's own
 * reference.
 */
DIALECT_TEST(generic_a_capture_reversed_and_one_made_at_the_dashboard,
             dl_start)
{
    char         token[64], body[256], pay[64], cap[64];
    resp_t       r;
    json_t      *s;

    generic_create_manual("m1:co_g1", "15.00", "USD", token);

    s = session_act(token, "pay", 200);
    json_decref(s);
    rx_wait(1, 5000);
    cr_assert_str_eq(hit_str(&rx.hits[0], "type"), "payment.authorized");
    snprintf(pay, sizeof(pay), "%s", hit_str(&rx.hits[0], "payment_id"));
    cr_assert_eq(strncmp(pay, "pay_", 4), 0, "%s", rx.hits[0].body);

    fault("{\"match\":\"m1:cp_g\",\"webhook_capture_reversed\":true}");

    snprintf(body, sizeof(body), "{\"reference\":\"m1:cp_g1\","
             "\"payment_id\":\"%s\",\"amount\":\"4.00\","
             "\"currency\":\"USD\"}", pay);
    dl_post(&r, "/captures", "Authorization: Bearer " GEN_KEY, "m1:cp_g1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(cap, sizeof(cap), "%s", str(&r, "id"));
    resp_free(&r);

    rx_wait(3, 5000);
    cr_assert_str_eq(hit_str(&rx.hits[1], "type"), "capture.succeeded");
    cr_assert_str_eq(hit_str(&rx.hits[2], "type"), "capture.failed");
    cr_assert_str_eq(hit_str(&rx.hits[1], "capture_id"), cap);
    cr_assert_str_eq(hit_str(&rx.hits[2], "capture_id"), cap);
    cr_assert_str_eq(hit_str(&rx.hits[2], "reference"), "m1:cp_g1");
    cr_assert_str_eq(hit_str(&rx.hits[2], "amount"), "4.00");
    cr_assert_str_neq(hit_str(&rx.hits[1], "event_id"),
                      hit_str(&rx.hits[2], "event_id"));

    /* at the dashboard: the checkout's own reference */
    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":300}",
             pay);
    control(&r, "POST", "/_control/captures", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(cap, sizeof(cap), "%s", str(&r, "id"));
    resp_free(&r);

    rx_wait(4, 5000);
    cr_assert_str_eq(hit_str(&rx.hits[3], "type"), "capture.succeeded");
    cr_assert_str_eq(hit_str(&rx.hits[3], "reference"), "m1:co_g1");
    cr_assert_str_eq(hit_str(&rx.hits[3], "capture_id"), cap);
    cr_assert_str_eq(hit_str(&rx.hits[3], "payment_id"), pay);
    cr_assert_str_eq(hit_str(&rx.hits[3], "amount"), "3.00");
    cr_assert_str_eq(hit_str(&rx.hits[3], "currency"), "USD");
}


/* --- generic: the PSP's books of a capture reversed, and one made outside - */

/* the payment's field in the PSP's books (GET /_control/books), polled
 * until it is want */
static long long
gen_book(const char *prefix, const char *field, long long want)
{
    int         i;
    resp_t      r;
    char        path[256];
    long long   v;

    snprintf(path, sizeof(path), "/_control/books?reference=%s", prefix);
    v = -1;

    for (i = 0; i < 100; i++) {
        control(&r, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        v = json_integer_value(json_object_get(json_array_get(
                json_object_get(r.json, "payments"), 0), field));
        resp_free(&r);
        if (v == want) {
            break;
        }
        usleep(20000);
    }

    return v;
}


DIALECT_TEST(generic_books_a_capture_reversed_and_one_made_outside, dl_start)
{
    char         ref[64], body[512], token[64];
    json_t      *s;
    resp_t       r;

    generic_create_manual("bk4:co_1", "20.00", "USD", token);
    s = session_act(token, "pay", 200);
    snprintf(ref, sizeof(ref), "%s",
             json_string_value(json_object_get(s, "payment_ref")));
    json_decref(s);
    rx_wait(1, 5000);
    cr_assert_eq(gen_book("bk4:", "authorized", 2000), 2000);
    cr_assert_eq(gen_book("bk4:", "captured", 0), 0);

    /* the gateway's capture of 7.00: captured */
    snprintf(body, sizeof(body), "{\"reference\":\"bk4:cp_1\",\"payment_id\":"
             "\"%s\",\"amount\":\"7.00\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/captures", "Authorization: Bearer " GEN_KEY, "bk4:cp_1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    rx_wait(2, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[1]), "capture.succeeded");
    cr_assert_eq(gen_book("bk4:", "captured", 700), 700);

    /* reversed after it succeeded: capture.failed naming our capture,
     * and no longer captured in the PSP's books */
    control(&r, "POST", "/_control/captures/bk4:cp_1/fail", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    rx_wait(3, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[2]), "capture.failed");
    cr_assert_str_eq(hit_str(&rx.hits[2], "reference"), "bk4:cp_1");
    cr_assert_eq(gen_book("bk4:", "captured", 0), 0);

    /* once only */
    control(&r, "POST", "/_control/captures/bk4:cp_1/fail", NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    /* captured outside the gateway: capture.succeeded naming the session's
     * reference */
    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":300}",
             ref);
    control(&r, "POST", "/_control/captures", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    rx_wait(4, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[3]), "capture.succeeded");
    cr_assert_str_eq(hit_str(&rx.hits[3], "reference"), "bk4:co_1");
    cr_assert_eq(gen_book("bk4:", "captured", 300), 300);

    /* the webhook_capture_reversed knob: reversed in the books as well */
    fault("{\"match\":\"bk4:cp_2\",\"webhook_capture_reversed\":true}");
    snprintf(body, sizeof(body), "{\"reference\":\"bk4:cp_2\",\"payment_id\":"
             "\"%s\",\"amount\":\"2.00\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/captures", "Authorization: Bearer " GEN_KEY, "bk4:cp_2",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    rx_wait(6, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[5]), "capture.failed");
    cr_assert_eq(gen_book("bk4:", "captured", 300), 300);
}


/*
 * The PSP keeps one book per payment: a capture is reversed only while the
 * payment's other captures cover its refunds (those accepted and not
 * failed); after a reversal its refunds are bounded by what stays
 * captured.
 */
DIALECT_TEST(generic_a_reversal_is_bounded_by_the_payments_refunds,
             dl_start)
{
    char         ref[64], body[512], token[64];
    json_t      *s;
    resp_t       r;

    generic_create_manual("bk5:co_1", "20.00", "USD", token);
    s = session_act(token, "pay", 200);
    snprintf(ref, sizeof(ref), "%s",
             json_string_value(json_object_get(s, "payment_ref")));
    json_decref(s);
    rx_wait(1, 5000);

    /* 7.00 and 5.00 captured, 6.00 of the payment refunded */
    snprintf(body, sizeof(body), "{\"reference\":\"bk5:cp_a\",\"payment_id\":"
             "\"%s\",\"amount\":\"7.00\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/captures", "Authorization: Bearer " GEN_KEY, "bk5:cp_a",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    snprintf(body, sizeof(body), "{\"reference\":\"bk5:cp_b\",\"payment_id\":"
             "\"%s\",\"amount\":\"5.00\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/captures", "Authorization: Bearer " GEN_KEY, "bk5:cp_b",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    rx_wait(3, 5000);
    cr_assert_eq(gen_book("bk5:", "captured", 1200), 1200);

    snprintf(body, sizeof(body), "{\"reference\":\"bk5:rf_a\",\"payment_id\":"
             "\"%s\",\"amount\":\"6.00\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/refunds", "Authorization: Bearer " GEN_KEY, "bk5:rf_a",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    /* 7.00 back would leave 5.00 captured for 6.00 refunded: refused,
     * whether the refund's outcome is decided yet or not */
    control(&r, "POST", "/_control/captures/bk5:cp_a/fail", NULL);
    cr_assert_eq(r.status, 409, "%s", r.body);
    resp_free(&r);
    rx_wait(4, 5000);
    cr_assert_eq(gen_book("bk5:", "refunded", 600), 600);
    control(&r, "POST", "/_control/captures/bk5:cp_a/fail", NULL);
    cr_assert_eq(r.status, 409, "%s", r.body);
    resp_free(&r);

    /* 5.00 back leaves 7.00 for them: reversed */
    control(&r, "POST", "/_control/captures/bk5:cp_b/fail", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    rx_wait(5, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[4]), "capture.failed");
    cr_assert_eq(gen_book("bk5:", "captured", 700), 700);

    /* refunds are bounded by the 7.00 that stay captured */
    snprintf(body, sizeof(body), "{\"reference\":\"bk5:rf_b\",\"payment_id\":"
             "\"%s\",\"amount\":\"1.01\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/refunds", "Authorization: Bearer " GEN_KEY, "bk5:rf_b",
            "application/json", body);
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    snprintf(body, sizeof(body), "{\"reference\":\"bk5:rf_c\",\"payment_id\":"
             "\"%s\",\"amount\":\"1.00\",\"currency\":\"USD\"}", ref);
    dl_post(&r, "/refunds", "Authorization: Bearer " GEN_KEY, "bk5:rf_c",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
}
