/*
 * Unit tests: the Adyen events of the money after "paid" (issue 10):
 * REFUND, REFUND_FAILED and the chargeback codes in standard
 * notifications (HMAC per item), the AUTHORISATION's payment_ref, and the
 * balance-platform transfer webhooks signed with the HmacSignature header
 * over the raw body, through the dialect's entry point.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include <payments/dialect.h>
#include <payments/webhook.h>


static const char  ea_key_hex[] =
    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
static const char  ea_other_hex[] =
    "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";


typedef struct {
    const char  *psp, *orig, *reference, *currency, *event, *success;
    long long    value;     /* < 0: no amount */
} ea_item_t;


static unsigned char  ea_key[PAY_ADYEN_KEY_LEN];
static unsigned char  ea_other[PAY_ADYEN_KEY_LEN];


static void
ea_keys(void)
{
    cr_assert_eq(pay_adyen_key_decode(ea_key_hex, 64, ea_key), 0);
    cr_assert_eq(pay_adyen_key_decode(ea_other_hex, 64, ea_other), 0);
}


/* One signed notification of one item, for merchant account "M". */
static char *
ea_body(const ea_item_t *it)
{
    char   data[1024], sig[PAY_ADYEN_SIG_B64_LEN + 1], amount[128], *b;
    char   val[24];

    val[0] = '\0';
    amount[0] = '\0';
    if (it->value >= 0) {
        snprintf(val, sizeof(val), "%lld", it->value);
        snprintf(amount, sizeof(amount),
                 "\"amount\":{\"currency\":\"%s\",\"value\":%lld},",
                 it->currency, it->value);
    }

    snprintf(data, sizeof(data), "%s:%s:M:%s:%s:%s:%s:%s", it->psp,
             it->orig, it->reference, val, it->value >= 0 ? it->currency : "",
             it->event, it->success);
    cr_assert_eq(pay_adyen_hmac_b64(ea_key, sizeof(ea_key), data,
                                    strlen(data), sig), 0);

    b = malloc(2048);
    cr_assert_not_null(b);
    snprintf(b, 2048,
             "{\"live\":\"false\",\"notificationItems\":["
             "{\"NotificationRequestItem\":{"
             "\"additionalData\":{\"hmacSignature\":\"%s\"},%s"
             "\"eventCode\":\"%s\",\"merchantAccountCode\":\"M\","
             "\"merchantReference\":\"%s\",\"originalReference\":\"%s\","
             "\"pspReference\":\"%s\",\"success\":\"%s\"}}]}",
             sig, amount, it->event, it->reference, it->orig, it->psp,
             it->success);

    return b;
}


static pay_err_e
ea_verify(const ea_item_t *it, pay_event_t *ev, size_t *n)
{
    char          *b;
    pay_err_e      rc;
    pay_secret_t   k = { ea_key, sizeof(ea_key) };

    b = ea_body(it);
    rc = pay_adyen_verify(b, strlen(b), &k, 1, ev, PAY_WEBHOOK_MAX_ITEMS, n);
    free(b);

    return rc;
}


Test(events_adyen, authorisation_carries_its_psp_reference_as_payment_ref)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPAUTH1", "", "m1:co_1", "EUR", "AUTHORISATION",
                        "true", 1500 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_expect_eq(ev[0].kind, PAY_EVT_SUCCEEDED);
    cr_expect_str_eq(ev[0].payment_ref, "PSPAUTH1");
    cr_expect_str_eq(ev[0].object_ref, "");
}


/* AUTHORISATION with success false: one refused attempt, its own kind
 * (the database reads it by the checkout: an off-session charge's is final,
 * a hosted session's leaves it open), with the refused payment and the
 * checkout's nonce; never a success, never PENDING (which no checkout
 * would ever leave EXECUTING by) */
Test(events_adyen, a_refused_authorisation_is_declined_with_its_payment)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPAUTH2", "", "m1:co_1", "EUR", "AUTHORISATION",
                        "false", 1500 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_DECLINED);
    cr_expect_str_eq(pay_event_kind_name(&ev[0]), "DECLINED");
    cr_expect_str_eq(ev[0].reference, "m1:co_1");
    cr_expect_str_eq(ev[0].payment_ref, "PSPAUTH2");
    cr_expect_str_eq(ev[0].object_ref, "");
    cr_expect_eq(ev[0].amount, 1500);
}


/* RECURRING_CONTRACT: its pspReference is the stored method's token,
 * which is kept only sealed: the event's id (logged, kept in the inbox in
 * clear) is the payment's reference instead, or our nonce without one. */
Test(events_adyen, recurring_contract_id_never_names_the_token)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "8415698462516992", "PSPAUTH1", "m1:co_1", "EUR",
                        "RECURRING_CONTRACT", "true", -1 };
    ea_item_t    alone = { "8415698462516993", "", "m1:co_2", "EUR",
                           "RECURRING_CONTRACT", "true", -1 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_METHOD_SAVED);
    cr_expect_str_eq(ev[0].method, "8415698462516992");
    cr_expect_str_eq(ev[0].event_id, "PSPAUTH1:RECURRING_CONTRACT");
    cr_expect_null(strstr(ev[0].event_id, "8415698462516992"));

    cr_assert_eq(ea_verify(&alone, ev, &n), PAY_ERR_NONE);
    cr_expect_eq(ev[0].kind, PAY_EVT_METHOD_SAVED);
    cr_expect_str_eq(ev[0].event_id, "m1:co_2:RECURRING_CONTRACT");
    cr_expect_null(strstr(ev[0].event_id, "8415698462516993"));
}


/* An asynchronous method: the payment is under way at the PSP.  PENDING,
 * with its checkout's reference, so that the database holds the sweeper's
 * expiry back (not IGNORED: that would let the checkout be failed). */
Test(events_adyen, pending_is_a_payment_under_way_for_its_checkout)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPAUTH1", "", "m1:co_1", "EUR", "PENDING",
                        "true", 1500 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_PENDING);
    cr_expect_str_eq(ev[0].type, "PENDING");
    cr_expect_str_eq(ev[0].reference, "m1:co_1");
    cr_expect_str_eq(ev[0].object_ref, "");
    cr_expect_eq(ev[0].amount, 1500);
}


Test(events_adyen, refund_success_is_refund_succeeded_with_its_fields)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPREF1", "PSPAUTH1", "m1:rf_0123", "EUR", "REFUND",
                        "true", 400 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_SUCCEEDED);
    cr_expect_str_eq(ev[0].event_id, "PSPREF1:REFUND");
    cr_expect_str_eq(ev[0].reference, "m1:rf_0123");
    cr_expect_str_eq(ev[0].object_ref, "PSPREF1");
    cr_expect_str_eq(ev[0].payment_ref, "PSPAUTH1");
    cr_expect_eq(ev[0].amount, 400);
    cr_expect_str_eq(ev[0].currency, "EUR");
}


Test(events_adyen, refund_false_and_refund_failed_are_refund_failed)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPREF1", "PSPAUTH1", "m1:rf_0123", "EUR", "REFUND",
                        "false", 400 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_FAILED);
    /* distinct from a later success of the same refund */
    cr_expect_str_eq(ev[0].event_id, "PSPREF1:REFUND:false");

    it.event = "REFUND_FAILED";
    it.success = "true";
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_expect_eq(ev[0].kind, PAY_EVT_REFUND_FAILED);
    cr_expect_str_eq(ev[0].event_id, "PSPREF1:REFUND_FAILED");
    cr_expect_str_eq(ev[0].object_ref, "PSPREF1");
}


Test(events_adyen, chargeback_codes_open_win_and_lose_one_dispute)
{
    static const struct {
        const char        *code;
        pay_event_kind_e   kind;
    } cases[] = {
        /* the dispute process opened: Adyen deducted nothing yet */
        { "NOTIFICATION_OF_CHARGEBACK", PAY_EVT_PENDING },
        { "CHARGEBACK", PAY_EVT_DISPUTE_OPENED },
        { "CHARGEBACK_REVERSED", PAY_EVT_DISPUTE_WON },
        { "SECOND_CHARGEBACK", PAY_EVT_DISPUTE_LOST },
        { "PREARBITRATION_LOST", PAY_EVT_DISPUTE_LOST },
    };
    size_t       i, n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPCB1", "PSPAUTH1", "m1:co_1", "EUR", NULL, "true",
                        1500 };

    ea_keys();

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        it.event = cases[i].code;
        cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE, "%s", it.event);
        cr_expect_eq(ev[0].kind, cases[i].kind, "%s", it.event);
        cr_expect_str_eq(ev[0].object_ref, "cb:PSPAUTH1");
        cr_expect_str_eq(ev[0].payment_ref, "PSPAUTH1");
        cr_expect_str_eq(ev[0].reference, "m1:co_1");
        cr_expect_eq(ev[0].amount, 1500);
    }
}


/* ISSUER_RESPONSE_TIMEFRAME_EXPIRED: the issuer accepted the defence of a
 * notification of chargeback or let it lapse, nothing deducted: the
 * dispute's inquiry end, named as its other stages name it; without the
 * payment's originalReference it names no dispute and is ignored. */
Test(events_adyen, an_issuer_response_expired_ends_the_payments_inquiry)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPCB1", "PSPAUTH1", "m1:co_1", "EUR",
                        "ISSUER_RESPONSE_TIMEFRAME_EXPIRED", "true", 1500 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(pay_event_kind_name(&ev[0]), "DISPUTE_INQUIRY_CLOSED");
    cr_expect_str_eq(ev[0].event_id,
                     "PSPCB1:ISSUER_RESPONSE_TIMEFRAME_EXPIRED");
    cr_expect_str_eq(ev[0].object_ref, "cb:PSPAUTH1");
    cr_expect_str_eq(ev[0].payment_ref, "PSPAUTH1");
    cr_expect_str_eq(ev[0].reference, "m1:co_1");

    /* it moves nothing by its amount: readable without one */
    it.value = -1;
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_expect_str_eq(pay_event_kind_name(&ev[0]), "DISPUTE_INQUIRY_CLOSED");

    it.value = 1500;
    it.orig = "";
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].object_ref, "PSPCB1");
    cr_expect_str_eq(ev[0].payment_ref, "");
}


Test(events_adyen, refund_or_chargeback_without_amount_is_unreadable)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPREF1", "PSPAUTH1", "m1:rf_0123", "EUR", "REFUND",
                        "true", -1 };

    ea_keys();
    /* authentic, so not a bad signature: unreadable */
    cr_expect_eq(ea_verify(&it, ev, &n), PAY_ERR_INVALID_REQUEST);
    cr_expect_eq(n, 0);

    it.event = "CHARGEBACK";
    cr_expect_eq(ea_verify(&it, ev, &n), PAY_ERR_INVALID_REQUEST);

    /* a chargeback names its payment, or it cannot be found */
    it.value = 100;
    it.orig = "";
    cr_expect_eq(ea_verify(&it, ev, &n), PAY_ERR_INVALID_REQUEST);
}


/* --- balance-platform transfer webhooks ------------------------------ */

typedef struct {
    const char  *sig;
    unsigned     count;
} ea_hdr_t;


static const char *
ea_header(void *data, const char *name, size_t *len, unsigned *count)
{
    ea_hdr_t  *h = data;

    if (h->sig == NULL || strcasecmp(name, "HmacSignature") != 0) {
        *count = 0;
        return NULL;
    }

    *len = strlen(h->sig);
    *count = h->count;

    return h->sig;
}


static const char  ea_transfer_fmt[] =
    "{\"type\":\"balancePlatform.transfer.updated\","
    "\"environment\":\"%s\",\"data\":{\"id\":\"TR0001\","
    "\"reference\":\"m1:pyo_0123456789abcdef01234567\","
    "\"status\":\"%s\",\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
    "\"sequenceNumber\":3}}";


typedef struct {
    pay_secret_t        keys[2];
    pay_webhook_conf_t  conf;
    pay_event_t         ev[PAY_WEBHOOK_MAX_ITEMS];
    size_t              n;
    pay_wh_verdict_t    v;
    char                sig[PAY_ADYEN_SIG_B64_LEN + 1];
} ea_tr_t;


static void
ea_tr_init(ea_tr_t *t)
{
    ea_keys();
    memset(t, 0, sizeof(*t));
    /* the configured keys: another first, so any key may match */
    t->keys[0].data = ea_other;
    t->keys[0].len = sizeof(ea_other);
    t->keys[1].data = ea_key;
    t->keys[1].len = sizeof(ea_key);
    t->conf.secrets = t->keys;
    t->conf.nsecrets = 2;
    t->conf.merchant_account = "M";
}


static void
ea_tr_call(ea_tr_t *t, const char *body, const char *sig, unsigned count)
{
    ea_hdr_t  h = { sig, count };

    t->n = 99;
    pay_dialect_adyen.webhook(&t->conf, ea_header, &h, body, strlen(body),
                              1700000000LL, t->ev, PAY_WEBHOOK_MAX_ITEMS,
                              &t->n, &t->v);
}


static const char *
ea_sign(ea_tr_t *t, const char *body)
{
    cr_assert_eq(pay_adyen_hmac_b64(ea_key, sizeof(ea_key), body,
                                    strlen(body), t->sig), 0);
    return t->sig;
}


Test(events_adyen, transfer_booked_is_a_paid_payout)
{
    char      body[512];
    ea_tr_t   t;

    ea_tr_init(&t);
    snprintf(body, sizeof(body), ea_transfer_fmt, "test", "booked");
    ea_tr_call(&t, body, ea_sign(&t, body), 1);

    cr_assert_eq(t.v.err, PAY_ERR_NONE, "%s", t.v.why);
    cr_assert_eq(t.n, 1);
    cr_expect_eq(t.ev[0].kind, PAY_EVT_PAYOUT_PAID);
    cr_expect_str_eq(t.ev[0].event_id, "transfer:TR0001:booked");
    cr_expect_str_eq(t.ev[0].object_ref, "TR0001");
    cr_expect_str_eq(t.ev[0].reference, "m1:pyo_0123456789abcdef01234567");
    cr_expect_eq(t.ev[0].amount, 2500);
    cr_expect_str_eq(t.ev[0].currency, "EUR");
    cr_expect_str_eq(t.ev[0].type, "balancePlatform.transfer.updated");
    cr_expect_str_eq(pay_dialect_adyen.webhook_answer, "[accepted]");
}


Test(events_adyen, transfer_status_decides_the_kind)
{
    static const struct {
        const char        *status;
        pay_event_kind_e   kind;
    } cases[] = {
        { "booked", PAY_EVT_PAYOUT_PAID },
        { "failed", PAY_EVT_PAYOUT_FAILED },
        { "returned", PAY_EVT_PAYOUT_FAILED },
        { "refused", PAY_EVT_PAYOUT_FAILED },
        { "authorised", PAY_EVT_PENDING },
        { "received", PAY_EVT_PENDING },
    };
    char      body[512];
    size_t    i;
    ea_tr_t   t;

    ea_tr_init(&t);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), ea_transfer_fmt, "test",
                 cases[i].status);
        ea_tr_call(&t, body, ea_sign(&t, body), 1);
        cr_assert_eq(t.v.err, PAY_ERR_NONE, "%s", cases[i].status);
        cr_expect_eq(t.ev[0].kind, cases[i].kind, "%s", cases[i].status);
    }
}


Test(events_adyen, transfer_with_a_bad_signature_is_refused)
{
    char      body[512], tampered[512], sig[PAY_ADYEN_SIG_B64_LEN + 1];
    ea_tr_t   t;

    ea_tr_init(&t);
    snprintf(body, sizeof(body), ea_transfer_fmt, "test", "booked");

    /* signed over another body */
    snprintf(tampered, sizeof(tampered), "%s", body);
    tampered[strlen(tampered) - 3] = '4';
    ea_tr_call(&t, tampered, ea_sign(&t, body), 1);
    cr_expect_eq(t.v.err, PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
    cr_expect_eq(t.n, 0);

    /* signed with a key we do not have */
    pay_adyen_hmac_b64((const unsigned char *) "0123456789abcdef0123456789"
                       "abcdef", 32, body, strlen(body), sig);
    ea_tr_call(&t, body, sig, 1);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
    cr_expect_eq(t.n, 0);

    /* truncated, empty, twice the header */
    ea_sign(&t, body);
    t.sig[43] = '\0';
    ea_tr_call(&t, body, t.sig, 1);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
    ea_tr_call(&t, body, "", 1);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
    ea_tr_call(&t, body, ea_sign(&t, body), 2);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
    cr_expect_eq(t.n, 0);

    /* no key configured */
    t.conf.nsecrets = 0;
    ea_tr_call(&t, body, ea_sign(&t, body), 1);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
}


Test(events_adyen, transfer_direct_verify_takes_any_configured_key)
{
    char           body[512], sig[PAY_ADYEN_SIG_B64_LEN + 1];
    pay_secret_t   keys[2] = { { ea_other, 32 }, { ea_key, 32 } };

    ea_keys();
    snprintf(body, sizeof(body), ea_transfer_fmt, "test", "booked");
    cr_assert_eq(pay_adyen_hmac_b64(ea_key, 32, body, strlen(body), sig), 0);

    cr_expect_eq(pay_adyen_transfer_verify(sig, strlen(sig), body,
                                           strlen(body), keys, 2),
                 PAY_ERR_NONE);
    cr_expect_eq(pay_adyen_transfer_verify(sig, strlen(sig), body,
                                           strlen(body), keys, 1),
                 PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(pay_adyen_transfer_verify(NULL, 0, body, strlen(body), keys,
                                           2),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(events_adyen, transfer_environment_must_be_the_psps_mode)
{
    char      body[512];
    ea_tr_t   t;

    ea_tr_init(&t);
    snprintf(body, sizeof(body), ea_transfer_fmt, "live", "booked");
    ea_tr_call(&t, body, ea_sign(&t, body), 1);
    cr_expect_eq(t.v.reason, PAY_WH_LIVEMODE);
    cr_expect_eq(t.n, 0);

    t.conf.live = 1;
    ea_tr_call(&t, body, ea_sign(&t, body), 1);
    cr_expect_eq(t.v.err, PAY_ERR_NONE);
    cr_expect_eq(t.n, 1);

    snprintf(body, sizeof(body), ea_transfer_fmt, "staging", "booked");
    ea_tr_call(&t, body, ea_sign(&t, body), 1);
    cr_expect_eq(t.v.reason, PAY_WH_LIVEMODE);
}


Test(events_adyen, transfer_without_amount_is_unreadable)
{
    ea_tr_t     t;
    const char  body[] =
        "{\"type\":\"balancePlatform.transfer.updated\","
        "\"environment\":\"test\",\"data\":{\"id\":\"TR0002\","
        "\"reference\":\"m1:pyo_1\",\"status\":\"booked\"}}";

    ea_tr_init(&t);
    ea_tr_call(&t, body, ea_sign(&t, body), 1);
    cr_expect_eq(t.v.err, PAY_ERR_INVALID_REQUEST);
    cr_expect_eq(t.v.reason, PAY_WH_UNREADABLE);
    cr_expect_eq(t.n, 0);
}


Test(events_adyen, other_balance_platform_types_are_ignored)
{
    size_t       n;
    pay_event_t  ev;
    const char   body[] =
        "{\"type\":\"balancePlatform.accountHolder.updated\","
        "\"environment\":\"test\",\"data\":{\"id\":\"AH1\"}}";

    (void) n;
    cr_assert_eq(pay_adyen_parse_transfer(body, strlen(body), &ev), 0);
    cr_expect_eq(ev.kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev.event_id,
                     "balancePlatform.accountHolder.updated:AH1");
}


Test(events_adyen, standard_notifications_ignore_an_hmacsignature_header)
{
    char       *b;
    ea_tr_t     t;
    ea_item_t   it = { "PSPREF1", "PSPAUTH1", "m1:rf_0123", "EUR", "REFUND",
                       "true", 400 };

    ea_tr_init(&t);
    b = ea_body(&it);
    /* a body with notificationItems is read item by item, as always */
    ea_tr_call(&t, b, "bogus", 1);
    cr_expect_eq(t.v.err, PAY_ERR_NONE, "%s", t.v.why);
    cr_expect_eq(t.n, 1);
    cr_expect_eq(t.ev[0].kind, PAY_EVT_REFUND_SUCCEEDED);

    /* and without the header */
    ea_tr_call(&t, b, NULL, 0);
    cr_expect_eq(t.v.err, PAY_ERR_NONE);
    free(b);

    /* a transfer body without the header is not a standard notification */
    ea_tr_call(&t, "{\"type\":\"balancePlatform.transfer.updated\"}", NULL,
               0);
    cr_expect_eq(t.v.reason, PAY_WH_BAD_SIGNATURE);
}


Test(events_adyen, unreadable_standard_notification_is_unreadable)
{
    char       *b;
    ea_tr_t     t;
    ea_item_t   it = { "PSPREF1", "PSPAUTH1", "m1:rf_0123", "EUR", "REFUND",
                       "true", -1 };

    ea_tr_init(&t);
    b = ea_body(&it);
    ea_tr_call(&t, b, NULL, 0);
    cr_expect_eq(t.v.reason, PAY_WH_UNREADABLE);
    cr_expect_eq(t.n, 0);
    free(b);
}


/* The codes the gateway deliberately ignores that are about no session
 * (a report, a dispute's progress, a capture), and any code naming no
 * merchantReference: IGNORED about their pspReference, so that they are
 * recorded as ignored and no checkout is looked for (as a session's event
 * they were unknown_checkout or amount_mismatch, both alerted). */
Test(events_adyen, ignored_codes_are_about_their_psp_reference_not_a_checkout)
{
    size_t       i, n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    its[] = {
        { "PSPRPT1", "", "", "", "REPORT_AVAILABLE", "true", -1 },
        { "PSPRFI1", "PSPAUTH1", "m1:co_1", "EUR", "REQUEST_FOR_INFORMATION",
          "true", 500 },
        { "PSPNOF1", "PSPAUTH1", "m1:co_1", "EUR", "NOTIFICATION_OF_FRAUD",
          "true", 1500 },
        { "PSPDDP1", "PSPAUTH1", "m1:co_1", "EUR",
          "DISPUTE_DEFENSE_PERIOD_ENDED", "true", 500 },
        { "PSPPAW1", "PSPAUTH1", "m1:co_1", "EUR", "PREARBITRATION_WON",
          "true", 500 },
        { "PSPXYZ1", "", "", "EUR", "SOME_NEW_CODE", "true", 1 },
    };

    ea_keys();

    for (i = 0; i < sizeof(its) / sizeof(its[0]); i++) {
        cr_assert_eq(ea_verify(&its[i], ev, &n), PAY_ERR_NONE, "%s",
                     its[i].event);
        cr_assert_eq(n, 1);
        cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED, "%s", its[i].event);
        cr_expect_str_eq(ev[0].object_ref, its[i].psp, "%s", its[i].event);
        cr_expect_str_eq(ev[0].token, "");
    }
}


/* A code about a session of ours keeps naming it: looked up by its
 * merchantReference (an unknown one stays unknown_checkout). */
Test(events_adyen, other_codes_naming_a_session_are_looked_up_by_it)
{
    size_t       n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    ea_item_t    it = { "PSPOC1", "", "m1:co_1", "EUR", "OFFER_CLOSED",
                        "true", 1500 };

    ea_keys();
    cr_assert_eq(ea_verify(&it, ev, &n), PAY_ERR_NONE);
    cr_expect_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[0].reference, "m1:co_1");
    cr_expect_str_eq(ev[0].object_ref, "");
}
