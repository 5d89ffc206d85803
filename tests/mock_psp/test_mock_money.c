/*
 * The mock PSP after "paid": refunds, transfers (and the PSP taking a
 * paid one back), disputes.
 */

#include "mock_dialects.h"


/* --- after "paid": refunds, transfers, disputes -------------------------- */

/* A paid session's payment intent (static buffer). */
static const char *
paid_intent(const char *key, long amount)
{
    resp_t       r;
    char         path[256];
    const char  *id;
    static char  pi[64];

    id = create_ok(key, amount);

    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", id);
    control(&r, "POST", path, NULL);
    cr_assert(r.status >= 200 && r.status < 300, "pay: %ld %s", r.status,
              r.body);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(str(&r, "payment_intent"), "%s", r.body);
    snprintf(pi, sizeof(pi), "%s", str(&r, "payment_intent"));
    resp_free(&r);

    cr_assert_eq(strncmp(pi, "pi_", 3), 0, "%s", pi);
    return pi;
}


MOCK_TEST(stripe_refunds_a_paid_payment_once_per_key_never_beyond_it)
{
    resp_t       a, b, r;
    char         body[512], pi[64];
    long long    created, requests;

    /* 1000 + 2 x 500 in the session */
    snprintf(pi, sizeof(pi), "%s", paid_intent("m1:co_rf", 1000));

    snprintf(body, sizeof(body), "payment_intent=%s&amount=1500"
             "&metadata%%5Bnonce%%5D=m1:rf_1", pi);
    request(&a, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_1",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_assert_eq(strncmp(str(&a, "id"), "re_", 3), 0);
    cr_assert_str_eq(str(&a, "status"), "pending");
    cr_assert_str_eq(str(&a, "payment_intent"), pi);
    cr_assert_eq(json_integer_value(json_object_get(a.json, "amount")), 1500);

    /* the same key and body: the same refund, not a second one */
    request(&b, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_1",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(b.status, 200);
    cr_assert(b.replayed);
    cr_assert_str_eq(str(&b, "id"), str(&a, "id"));
    registrations("m1:rf_1", &created, &requests);
    cr_assert_eq(created, 1);
    resp_free(&b);

    /* 1500 of 2000 refunded: 501 more is refused, 500 is not */
    snprintf(body, sizeof(body), "payment_intent=%s&amount=501", pi);
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_2",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "amount_too_large");
    resp_free(&r);

    snprintf(body, sizeof(body), "payment_intent=%s&amount=500", pi);
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_3",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    /* an unknown payment, and no credentials */
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_4",
            "application/x-www-form-urlencoded",
            "payment_intent=pi_nobody&amount=1");
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_field(&r, "code"), "resource_missing");
    resp_free(&r);

    request(&r, "POST", "/v1/refunds", AUTH_BAD, "m1:rf_5",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    resp_free(&a);
}


MOCK_TEST(a_refund_keeps_its_metadata_and_is_no_session)
{
    resp_t       a, r;
    char         body[512], path[256], pi[64];
    json_t      *md;

    snprintf(pi, sizeof(pi), "%s", paid_intent("m1:co_rfmd", 1000));

    snprintf(body, sizeof(body), "payment_intent=%s&amount=100"
             "&metadata%%5Bnonce%%5D=m1:rf_md&metadata%%5Brma%%5D=R-9", pi);
    request(&a, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_md",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(a.status, 200, "%s", a.body);

    /* echoed as Stripe does: every metadata[k] it was sent */
    md = json_object_get(a.json, "metadata");
    cr_assert_str_eq(json_string_value(json_object_get(md, "nonce")),
                     "m1:rf_md", "%s", a.body);
    cr_assert_str_eq(json_string_value(json_object_get(md, "rma")), "R-9",
                     "%s", a.body);

    /* the control API shows the refund as kept */
    snprintf(path, sizeof(path), "/_control/sessions/%s", str(&a, "id"));
    control(&r, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
        json_object_get(r.json, "object"), "metadata"), "rma")), "R-9",
        "%s", r.body);
    resp_free(&r);

    /* and no session path takes it for one (it has no status of its own) */
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", str(&a, "id"));
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", str(&a, "id"));
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    resp_free(&a);
}


MOCK_TEST(stripe_transfers_need_a_connected_account)
{
    resp_t  r;

    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_1",
            "application/x-www-form-urlencoded",
            "amount=700&currency=usd&destination=ba_1"
            "&metadata%5Bnonce%5D=m1:pyo_1");
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "resource_missing");
    resp_free(&r);

    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_2",
            "application/x-www-form-urlencoded",
            "amount=700&currency=usd&destination=acct_1X"
            "&metadata%5Bnonce%5D=m1:pyo_2&transfer_group=m1:pyo_2");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(strncmp(str(&r, "id"), "tr_", 3), 0);
    cr_assert_str_eq(str(&r, "destination"), "acct_1X");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "amount")), 700);
    resp_free(&r);
}


MOCK_TEST(disputes_are_opened_on_paid_payments_and_closed_won_or_lost)
{
    resp_t  r;
    char    body[256], path[256], id[64];

    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":300}",
             paid_intent("m1:co_dp", 1000));
    control(&r, "POST", "/_control/disputes", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    cr_assert_eq(strncmp(id, "dp_", 3), 0, "%s", id);
    resp_free(&r);

    snprintf(path, sizeof(path), "/_control/disputes/%s/close", id);
    control(&r, "POST", path, "{\"outcome\":\"maybe\"}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "POST", path, "{\"outcome\":\"lost\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    control(&r, "POST", "/_control/disputes",
            "{\"payment_ref\":\"pi_nobody\"}");
    cr_assert_eq(r.status, 404);
    resp_free(&r);
}


/* The report's reversal rows (report.c's moves): a dispute's withdrawal
 * and its reversal when won, a transfer taken back a row each part; and
 * the knobs that plant one twice or leave one out. */
MOCK_TEST(stripe_reports_list_disputes_and_reversals_as_stripe_does)
{
    resp_t  r;
    char    body[256], path[512], dp[64], tr[64], row[160];

    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":300}",
             paid_intent("m1:co_rv", 1000));
    control(&r, "POST", "/_control/disputes", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(dp, sizeof(dp), "%s", str(&r, "id"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/_control/disputes/%s/close", dp);
    control(&r, "POST", path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_rv",
            "application/x-www-form-urlencoded",
            "amount=1000&currency=usd&destination=acct_1X"
            "&metadata%5Bnonce%5D=m1:pyo_rv");
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(tr, sizeof(tr), "%s", str(&r, "id"));
    resp_free(&r);
    control(&r, "POST", "/_control/transfers/m1:pyo_rv/reverse",
            "{\"amount\":300}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    control(&r, "POST", "/_control/transfers/m1:pyo_rv/reverse", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    control(&r, "GET", "/_control/reports/stripe?sessions=&merchant=m1",
            NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(row, sizeof(row), "txn_%s_1,", dp);
    cr_assert_not_null(strstr(r.body, row), "%s", r.body);
    cr_assert_not_null(strstr(r.body, ",usd,-3.00,0.00,-3.00,dispute,"),
                       "%s", r.body);
    cr_assert_not_null(strstr(r.body, ",usd,3.00,0.00,3.00,"
                                      "dispute_reversal,"), "%s", r.body);
    snprintf(row, sizeof(row), ",usd,3.00,0.00,3.00,transfer_reversal,"
             "trr_%s_1,", tr);
    cr_assert_not_null(strstr(r.body, row), "%s", r.body);
    snprintf(row, sizeof(row), ",usd,7.00,0.00,7.00,transfer_reversal,"
             "trr_%s_2,", tr);
    cr_assert_not_null(strstr(r.body, row), "%s", r.body);
    resp_free(&r);

    /* the dispute's reversal left out, the first transfer reversal twice */
    snprintf(path, sizeof(path), "/_control/reports/stripe?sessions="
             "&merchant=m1&drop_move=%s:2&extra_move=m1:pyo_rv:1", dp);
    control(&r, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_null(strstr(r.body, "dispute_reversal"), "%s", r.body);
    snprintf(row, sizeof(row), "txn_%s_1_x,", tr);
    cr_assert_not_null(strstr(r.body, row), "%s", r.body);
    resp_free(&r);
}


/* --- the PSP's own books (GET /_control/books) ---------------------------- */

/* the one payment of the books under prefix (a reference), polled until
 * field is want: the outcomes are recorded as they are committed */
static json_int_t
book_field(const char *prefix, const char *field, json_int_t want)
{
    int          i;
    resp_t       r;
    char         path[256];
    json_int_t   v;

    snprintf(path, sizeof(path), "/_control/books?reference=%s", prefix);
    v = -1;

    for (i = 0; i < 100; i++) {
        control(&r, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_eq(json_array_size(json_object_get(r.json, "payments")), 1,
                     "%s", r.body);
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


/* An inquiry withdraws nothing: no dispute in the books until escalated;
 * its outcomes are escalate or inquiry_closed, never won or lost. */
MOCK_TEST(an_inquiry_is_in_the_books_only_once_escalated)
{
    resp_t  r;
    char    body[256], path[256], id[64];

    snprintf(body, sizeof(body),
             "{\"payment_ref\":\"%s\",\"amount\":400,\"inquiry\":true}",
             paid_intent("bkq:co_1", 1000));
    control(&r, "POST", "/_control/disputes", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);
    cr_assert_eq(book_field("bkq:", "disputed_open", 0), 0);

    snprintf(path, sizeof(path), "/_control/disputes/%s/close", id);
    control(&r, "POST", path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);

    control(&r, "POST", path, "{\"outcome\":\"escalate\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(book_field("bkq:", "disputed_open", 400), 400);

    control(&r, "POST", path, "{\"outcome\":\"lost\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(book_field("bkq:", "disputed_lost", 400), 400);
}


MOCK_TEST(the_books_keep_what_the_psp_captured_refunded_and_disputed)
{
    resp_t  r;
    char    body[512], pi[64], id[64], path[256];

    /* 1000 + 2 x 500, captured when paid */
    snprintf(pi, sizeof(pi), "%s", paid_intent("bk1:co_1", 1000));
    cr_assert_eq(book_field("bk1:", "authorized", 2000), 2000);
    cr_assert_eq(book_field("bk1:", "captured", 2000), 2000);

    /* a refund that succeeded counts, one whose outcome failed does not */
    fault("{\"match\":\"bk1:rf_2\",\"webhook_op_failed\":true}");
    snprintf(body, sizeof(body), "payment_intent=%s&amount=300"
             "&metadata%%5Bnonce%%5D=bk1:rf_1", pi);
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "bk1:rf_1",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    snprintf(body, sizeof(body), "payment_intent=%s&amount=200"
             "&metadata%%5Bnonce%%5D=bk1:rf_2", pi);
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "bk1:rf_2",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(book_field("bk1:", "refunded", 300), 300);

    /* a dispute: open, then lost */
    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":500}",
             pi);
    control(&r, "POST", "/_control/disputes", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);
    cr_assert_eq(book_field("bk1:", "disputed_open", 500), 500);

    snprintf(path, sizeof(path), "/_control/disputes/%s/close", id);
    control(&r, "POST", path, "{\"outcome\":\"lost\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(book_field("bk1:", "disputed_open", 0), 0);
    cr_assert_eq(book_field("bk1:", "disputed_lost", 500), 500);
    cr_assert_eq(book_field("bk1:", "captured", 2000), 2000);

    /* a transfer, by its key */
    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "bk1:pyo_1",
            "application/x-www-form-urlencoded",
            "amount=700&currency=usd&destination=acct_1X"
            "&metadata%5Bnonce%5D=bk1:pyo_1");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    control(&r, "GET", "/_control/books?reference=bk1:", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "transfers")), 1,
                 "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(
        json_object_get(r.json, "transfers"), 0), "state")), "paid",
        "%s", r.body);
    resp_free(&r);

    /* another prefix sees none of it; no prefix is refused */
    control(&r, "GET", "/_control/books?reference=bk2:", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "payments")), 0);
    cr_assert_eq(json_array_size(json_object_get(r.json, "transfers")), 0);
    resp_free(&r);

    control(&r, "GET", "/_control/books", NULL);
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
}


MOCK_TEST(the_books_keep_a_hold_its_capture_and_one_made_outside)
{
    resp_t       r;
    char         body[2048], path[256], pi[64];
    const char  *id;

    /* a manual-capture session: authorized, nothing captured */
    form(body, sizeof(body), "bk3:co_1", 1000,
         "&payment_intent_data%5Bcapture_method%5D=manual"
         "&payment_intent_data%5Bmetadata%5D%5Bnonce%5D=bk3:co_1");
    create(&r, "bk3:co_1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", str(&r, "id"));
    resp_free(&r);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    id = str(&r, "payment_intent");
    cr_assert_not_null(id, "%s", r.body);
    snprintf(pi, sizeof(pi), "%s", id);
    resp_free(&r);

    cr_assert_eq(book_field("bk3:", "authorized", 2000), 2000);
    cr_assert_eq(book_field("bk3:", "captured", 0), 0);

    /* captured from the PSP's dashboard: booked by the PSP, the rest of
     * a Stripe hold released with it; Stripe has no contrary event */
    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":1200}",
             pi);
    control(&r, "POST", "/_control/captures", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(path, sizeof(path), "/_control/captures/%s/fail", str(&r, "id"));
    resp_free(&r);
    cr_assert_eq(book_field("bk3:", "captured", 1200), 1200);
    cr_assert_eq(book_field("bk3:", "released", 800), 800);

    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(book_field("bk3:", "captured", 1200), 1200);

    /* nothing left to capture */
    control(&r, "POST", "/_control/captures", body);
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    control(&r, "POST", "/_control/captures/nothing/fail", NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


/* --- a paid transfer taken back ------------------------------------------ */

/* POST /_control/transfers/{key}/reverse with body (NULL: none) */
static void
reverse(resp_t *r, const char *key, const char *body)
{
    char  path[256];

    snprintf(path, sizeof(path), "/_control/transfers/%s/reverse", key);
    control(r, "POST", path, body);
}


/* the transfer under nonce in the PSP's books (a copy) */
static json_t *
book_transfer(const char *nonce)
{
    size_t   i;
    resp_t   r;
    json_t  *t, *found;

    control(&r, "GET", "/_control/books?reference=m1:", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    found = NULL;
    json_array_foreach(json_object_get(r.json, "transfers"), i, t) {
        if (strcmp(json_string_value(json_object_get(t, "nonce")), nonce)
            == 0)
        {
            found = json_deep_copy(t);
        }
    }
    resp_free(&r);
    cr_assert_not_null(found, "no transfer %s in the books", nonce);

    return found;
}


static long long
jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}


/* Stripe takes a transfer back in parts (transfer.reversed, its
 * amount_reversed running, reversed true once whole), Adyen returns one
 * whole (balancePlatform.transfer.updated, returned), the generic PSP
 * fails a paid one whole (payout.failed); the books keep what each still
 * paid out */
DIALECT_TEST(a_paid_transfer_is_taken_back_in_part_or_whole, dl_start_money)
{
    char         tr[64], main_url[sizeof(mock_url)];
    long long    t;
    resp_t       r;
    json_t      *o, *b;

    /* Stripe: 1000 paid */
    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_s",
            "application/x-www-form-urlencoded",
            "amount=1000&currency=usd&destination=acct_1X"
            "&metadata%5Bnonce%5D=m1:pyo_s");
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(tr, sizeof(tr), "%s", str(&r, "id"));
    resp_free(&r);
    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "transfer.created");

    /* 300 of it taken back, by its nonce */
    reverse(&r, "m1:pyo_s", "{\"amount\":300}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(jint(r.json, "reversed"), 300, "%s", r.body);
    cr_assert_eq(jint(r.json, "paid_out"), 700, "%s", r.body);
    cr_assert_str_eq(str(&r, "state"), "paid");
    resp_free(&r);

    rx_wait(2, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[1]), "transfer.reversed");
    cr_assert(wh_verify(&rx.hits[1], WH_SECRET, &t), "%s", rx.hits[1].sig);
    o = wh_object(&rx.hits[1]);
    cr_assert_str_eq(json_string_value(json_object_get(o, "id")), tr);
    cr_assert_eq(jint(o, "amount"), 1000, "%s", rx.hits[1].body);
    cr_assert_eq(jint(o, "amount_reversed"), 300, "%s", rx.hits[1].body);
    cr_assert(json_is_false(json_object_get(o, "reversed")), "%s",
              rx.hits[1].body);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o,
                         "metadata"), "nonce")), "m1:pyo_s");

    /* more than is left: refused, nothing sent; then the rest, by its id */
    reverse(&r, tr, "{\"amount\":701}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    reverse(&r, tr, "{\"amount\":0}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    reverse(&r, tr, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(jint(r.json, "reversed"), 1000, "%s", r.body);
    cr_assert_str_eq(str(&r, "state"), "reversed");
    resp_free(&r);

    rx_wait(3, 5000);
    o = wh_object(&rx.hits[2]);
    cr_assert_str_eq(wh_type(&rx.hits[2]), "transfer.reversed");
    cr_assert_eq(jint(o, "amount_reversed"), 1000, "%s", rx.hits[2].body);
    cr_assert(json_is_true(json_object_get(o, "reversed")), "%s",
              rx.hits[2].body);
    cr_assert_str_neq(wh_id(&rx.hits[1]), wh_id(&rx.hits[2]));

    /* nothing left of it paid out: nothing more to take back */
    reverse(&r, "m1:pyo_s", NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
    b = book_transfer("m1:pyo_s");
    cr_assert_str_eq(json_string_value(json_object_get(b, "state")),
                     "reversed");
    cr_assert_eq(jint(b, "amount"), 1000);
    cr_assert_eq(jint(b, "reversed"), 1000);
    cr_assert_eq(jint(b, "paid_out"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(b, "dialect")),
                     "stripe");
    json_decref(b);

    /* Adyen: 2500 booked, then returned whole; no part */
    memcpy(main_url, mock_url, sizeof(mock_url));
    memcpy(mock_url, mock_transfers_url, sizeof(mock_url));
    dl_post(&r, "/btl/v4/transfers", "X-API-Key: " DL_TRANSFERS_KEY,
            "m1:pyo_a", "application/json",
            "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
            "\"category\":\"internal\",\"counterparty\":"
            "{\"balanceAccountId\":\"BA32272223222B5CTDQPM6W2H\"},"
            "\"reference\":\"m1:pyo_a\",\"description\":\"payout m1\","
            "\"balanceAccountId\":\"BAPLATFORM1\"}");
    memcpy(mock_url, main_url, sizeof(mock_url));
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(tr, sizeof(tr), "%s", str(&r, "id"));
    resp_free(&r);
    rx_wait(4, 5000);
    o = json_object_get(rx.hits[3].json, "data");
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                     "booked", "%s", rx.hits[3].body);

    reverse(&r, "m1:pyo_a", "{\"amount\":100}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    reverse(&r, "m1:pyo_a", "{\"amount\":2500}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "state"), "reversed");
    resp_free(&r);

    rx_wait(5, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[4]), "balancePlatform.transfer.updated");
    o = json_object_get(rx.hits[4].json, "data");
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                     "returned", "%s", rx.hits[4].body);
    cr_assert_str_eq(json_string_value(json_object_get(o, "id")), tr);
    cr_assert_str_eq(json_string_value(json_object_get(o, "reference")),
                     "m1:pyo_a");
    cr_assert_eq(jint(json_object_get(o, "amount"), "value"), 2500);
    b = book_transfer("m1:pyo_a");
    cr_assert_eq(jint(b, "paid_out"), 0);
    json_decref(b);

    /* generic: 15.00 paid, then failed whole */
    dl_post(&r, "/payouts", "Authorization: Bearer " GEN_KEY, "m1:pyo_g",
            "application/json",
            "{\"reference\":\"m1:pyo_g\",\"destination\":\"sel_1\","
            "\"amount\":\"15.00\",\"currency\":\"USD\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(tr, sizeof(tr), "%s", str(&r, "id"));
    resp_free(&r);
    rx_wait(6, 5000);
    cr_assert_str_eq(hit_str(&rx.hits[5], "type"), "payout.paid");

    reverse(&r, "m1:pyo_g", "{\"amount\":1499}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    reverse(&r, tr, "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    rx_wait(7, 5000);
    cr_assert_str_eq(hit_str(&rx.hits[6], "type"), "payout.failed");
    cr_assert_str_eq(hit_str(&rx.hits[6], "payout_id"), tr);
    cr_assert_str_eq(hit_str(&rx.hits[6], "reference"), "m1:pyo_g");
    cr_assert_str_eq(hit_str(&rx.hits[6], "amount"), "15.00");
    cr_assert_str_neq(hit_str(&rx.hits[5], "event_id"),
                      hit_str(&rx.hits[6], "event_id"));
    b = book_transfer("m1:pyo_g");
    cr_assert_eq(jint(b, "reversed"), 1500);
    json_decref(b);

    /* a transfer whose outcome failed was never paid: nothing to take
     * back; nor of one unknown; a body not JSON is refused */
    fault("{\"match\":\"m1:pyo_f\",\"webhook_op_failed\":true}");
    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_f",
            "application/x-www-form-urlencoded",
            "amount=100&currency=usd&destination=acct_1X"
            "&metadata%5Bnonce%5D=m1:pyo_f");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    reverse(&r, "m1:pyo_f", NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
    reverse(&r, "m1:pyo_nobody", NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
    reverse(&r, "m1:pyo_g", "[1]");
    cr_assert_eq(r.status, 400, "%s", r.body);
    resp_free(&r);
    control(&r, "GET", "/_control/transfers/m1:pyo_g/reverse", NULL);
    cr_assert_eq(r.status, 405, "%s", r.body);
    resp_free(&r);
}
