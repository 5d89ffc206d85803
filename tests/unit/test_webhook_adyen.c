/*
 * Unit tests: Adyen webhooks (src/webhook_adyen.c) against PSP_FACTS.md,
 * one rule per test.  Items are built from their eight signed fields and
 * signed with the PSP_FACTS keys; the vectors check the HMAC function and,
 * through items whose fields spell the vectors' data strings, the verifier.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/dialect.h>
#include <payments/webhook.h>


static const char  wa_key1_hex[] =
    "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";
static const char  wa_key2_hex[] =
    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
static const char  wa_data1[] =
    "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:"
    "AUTHORISATION:true";
static const char  wa_data2[] =
    "7914073381342284::TestMerchant:TestPayment-1407325143704:0:EUR:"
    "REFUND:true";
static const char  wa_sig1[] = "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=";
static const char  wa_sig2[] = "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8=";


typedef struct {
    unsigned char  k1[PAY_ADYEN_KEY_LEN];
    unsigned char  k2[PAY_ADYEN_KEY_LEN];
    pay_secret_t   keys[2];
} wa_keys_t;


static void
wa_keys(wa_keys_t *k)
{
    cr_assert_eq(pay_adyen_key_decode(wa_key1_hex, 64, k->k1), 0);
    cr_assert_eq(pay_adyen_key_decode(wa_key2_hex, 64, k->k2), 0);
    k->keys[0].data = k->k1;
    k->keys[0].len = sizeof(k->k1);
    k->keys[1].data = k->k2;
    k->keys[1].len = sizeof(k->k2);
}


/* One item; sig NULL means "sign the fields with key". */
typedef struct {
    const char  *psp, *account, *reference, *currency, *event, *success;
    long long    value;
    const char  *sig;
} wa_item_t;


static size_t
wa_item_json(char *out, size_t size, const wa_item_t *it,
    const unsigned char *key)
{
    char  data[1024], sig[PAY_ADYEN_SIG_B64_LEN + 1];

    snprintf(data, sizeof(data), "%s::%s:%s:%lld:%s:%s:%s", it->psp,
             it->account, it->reference, it->value, it->currency, it->event,
             it->success);

    if (it->sig != NULL) {
        snprintf(sig, sizeof(sig), "%s", it->sig);

    } else {
        cr_assert_eq(pay_adyen_hmac_b64(key, PAY_ADYEN_KEY_LEN, data,
                                        strlen(data), sig), 0);
    }

    return (size_t) snprintf(out, size,
        "{\"NotificationRequestItem\":{"
        "\"additionalData\":{\"hmacSignature\":\"%s\"},"
        "\"amount\":{\"currency\":\"%s\",\"value\":%lld},"
        "\"eventCode\":\"%s\",\"eventDate\":\"2024-01-01T00:00:00+01:00\","
        "\"merchantAccountCode\":\"%s\",\"merchantReference\":\"%s\","
        "\"paymentMethod\":\"visa\",\"pspReference\":\"%s\","
        "\"reason\":\"\",\"success\":\"%s\"}}",
        sig, it->currency, it->value, it->event, it->account,
        it->reference, it->psp, it->success);
}


static char *
wa_body(const wa_item_t *items, size_t n, const unsigned char *key)
{
    char    *b;
    size_t   i, len, size;

    size = 256 + n * 2048;
    b = malloc(size);
    cr_assert_not_null(b);

    len = (size_t) snprintf(b, size,
                            "{\"live\":\"false\",\"notificationItems\":[");
    for (i = 0; i < n; i++) {
        if (i > 0) {
            b[len++] = ',';
        }

        len += wa_item_json(b + len, size - len, &items[i], key);
    }

    snprintf(b + len, size - len, "]}");

    return b;
}


static const wa_item_t  wa_vector1 = {
    "7914073381342284", "TestMerchant", "TestPayment-1407325143704", "EUR",
    "AUTHORISATION", "true", 1130, NULL
};

static const wa_item_t  wa_vector2 = {
    "7914073381342284", "TestMerchant", "TestPayment-1407325143704", "EUR",
    "REFUND", "true", 0, NULL
};


static pay_err_e
wa_verify(const char *body, const pay_secret_t *keys, size_t nkeys,
    pay_event_t *ev, size_t *n)
{
    return pay_adyen_verify(body, strlen(body), keys, nkeys, ev,
                            PAY_WEBHOOK_MAX_ITEMS, n);
}


Test(webhook_adyen, hmac_of_vector_1_is_psp_facts_base64)
{
    wa_keys_t  k;
    char       out[PAY_ADYEN_SIG_B64_LEN + 1];

    wa_keys(&k);
    cr_assert_eq(pay_adyen_hmac_b64(k.k1, sizeof(k.k1), wa_data1,
                                    strlen(wa_data1), out), 0);
    cr_assert_str_eq(out, wa_sig1);
}


Test(webhook_adyen, hmac_of_vector_2_is_psp_facts_base64)
{
    wa_keys_t  k;
    char       out[PAY_ADYEN_SIG_B64_LEN + 1];

    wa_keys(&k);
    cr_assert_eq(pay_adyen_hmac_b64(k.k2, sizeof(k.k2), wa_data2,
                                    strlen(wa_data2), out), 0);
    cr_assert_str_eq(out, wa_sig2);
}


Test(webhook_adyen, item_spelling_vector_1_verifies_with_its_signature)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it.sig = wa_sig1;           /* the PSP_FACTS output, not ours */
    b = wa_body(&it, 1, NULL);

    cr_assert_eq(wa_verify(b, &k.keys[0], 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ev[0].event_id, "7914073381342284:AUTHORISATION");
    cr_assert_str_eq(ev[0].type, "AUTHORISATION");
    cr_assert_eq(ev[0].kind, PAY_EVT_SUCCEEDED);
    cr_assert_str_eq(ev[0].reference, "TestPayment-1407325143704");
    cr_assert_str_eq(ev[0].token, "");
    cr_assert_eq(ev[0].amount, 1130);
    cr_assert_str_eq(ev[0].currency, "EUR");
    cr_assert_eq(ev[0].livemode, -1);
    free(b);
}


Test(webhook_adyen, item_spelling_vector_2_verifies_with_its_signature)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector2;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it.sig = wa_sig2;
    b = wa_body(&it, 1, NULL);

    cr_assert_eq(wa_verify(b, &k.keys[1], 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ev[0].event_id, "7914073381342284:REFUND");
    /* a refund is an event of its own since issue 10 */
    cr_assert_eq(ev[0].kind, PAY_EVT_REFUND_SUCCEEDED);
    cr_assert_eq(ev[0].amount, 0);
    free(b);
}


Test(webhook_adyen, any_configured_key_passes)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it.sig = wa_sig1;
    b = wa_body(&it, 1, NULL);

    /* signed with key 1, key 2 listed first: rotation */
    cr_assert_eq(wa_verify(b, k.keys + 1, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    k.keys[0].data = k.k2;
    k.keys[1].data = k.k1;
    cr_assert_eq(wa_verify(b, k.keys, 2, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);
    free(b);
}


/* One refused attempt does not end an Adyen session: the shopper may pay
 * with another card, so the checkout must stay open (issue: a refused
 * attempt that failed the checkout for good lost the later payment).  It
 * is DECLINED, never FAILED: the database keeps a hosted session open on
 * it, and fails only an off-session charge, whose refusal is final
 * (sql::a_refused_attempt_fails_an_off_session_charge_and_leaves_a_session_open). */
Test(webhook_adyen, authorisation_false_is_declined_not_failed)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it.success = "false";
    b = wa_body(&it, 1, k.k1);

    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(ev[0].kind, PAY_EVT_DECLINED);
    free(b);
}


/* Adyen's minor units: CLP has 2 decimals there (ISO 0), CVE none (ISO
 * 2).  The event carries ISO minor units; an amount with no exact ISO
 * value can match nothing. */
Test(webhook_adyen, amounts_are_read_in_adyens_units)
{
    static const struct {
        const char  *currency;
        long long    adyen;
        int64_t      iso;
    } cases[] = {
        { "CLP", 100000, 1000 },    /* 1000.00 CLP at Adyen: 1000 in ISO */
        { "CLP", 100050, PAY_EVT_AMOUNT_INEXACT },  /* 1000.50: no ISO */
        { "CVE", 10, 1000 },        /* 10 CVE at Adyen: 10.00 in ISO */
        { "EUR", 1999, 1999 },
    };
    char         *b;
    size_t        i, n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        it.currency = cases[i].currency;
        it.value = cases[i].adyen;
        b = wa_body(&it, 1, k.k1);
        cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);
        cr_expect_eq(ev[0].amount, cases[i].iso, "%s %lld",
                     cases[i].currency, cases[i].adyen);
        cr_expect_str_eq(ev[0].currency, cases[i].currency);
        free(b);
    }
}


Test(webhook_adyen, merchant_account_is_reported_for_the_caller)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    b = wa_body(&it, 1, k.k1);
    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_expect_str_eq(ev[0].account, it.account);
    free(b);
}


Test(webhook_adyen, tampered_amount_is_bad_signature)
{
    char         *b, *p;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    b = wa_body(&it, 1, k.k1);
    p = strstr(b, "\"value\":1130");
    cr_assert_not_null(p);
    p[9] = '2';                 /* 1130 -> 1230 */

    n = 99;
    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(n, 0);
    free(b);
}


Test(webhook_adyen, one_of_two_items_tampered_refuses_the_whole_request)
{
    char         *b, *p;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it[2];
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it[0] = wa_vector1;
    it[1] = wa_vector1;
    it[1].psp = "8814073381342285";
    it[1].value = 500;
    b = wa_body(it, 2, k.k1);

    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 2);

    /* the second item's amount changes: the first, intact, is not applied */
    p = strstr(b, "\"value\":500");
    cr_assert_not_null(p);
    p[8] = '9';

    n = 99;
    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(n, 0);
    cr_assert_str_eq(ev[0].event_id, "");
    free(b);
}


/* The dialect's verdict on a batch of two merchant accounts' items (an
 * HMAC key shared by a company's accounts): this account's first, in
 * order, the other's after them, counted in nforeign; the other's alone:
 * none of this account's. */
static const char *wa_no_header(void *data, const char *name, size_t *len,
    unsigned *count);


Test(webhook_adyen, a_batch_of_two_accounts_puts_this_accounts_items_first)
{
    char                *b;
    size_t               n;
    wa_keys_t            k;
    wa_item_t            it[4];
    pay_event_t          ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_wh_verdict_t     v;
    pay_webhook_conf_t   conf;

    wa_keys(&k);
    memset(&conf, 0, sizeof(conf));
    conf.secrets = k.keys;
    conf.nsecrets = 1;
    conf.merchant_account = "TestMerchant";

    it[0] = wa_vector1;
    it[0].account = "ShopPOS";
    it[0].psp = "1000000000000001";
    it[1] = wa_vector1;
    it[1].psp = "1000000000000002";
    it[2] = wa_vector1;
    it[2].account = "ShopPOS";
    it[2].psp = "1000000000000003";
    it[3] = wa_vector1;
    it[3].psp = "1000000000000004";
    b = wa_body(it, 4, k.k1);

    memset(&v, 0, sizeof(v));
    pay_dialect_adyen.webhook(&conf, wa_no_header, NULL, b, strlen(b), 0,
                              ev, PAY_WEBHOOK_MAX_ITEMS, &n, &v);
    cr_assert_eq(v.reason, PAY_WH_ACCOUNT);
    cr_assert_eq(n, 2);
    cr_assert_eq(v.nforeign, 2);
    cr_expect_str_eq(ev[0].event_id, "1000000000000002:AUTHORISATION");
    cr_expect_str_eq(ev[1].event_id, "1000000000000004:AUTHORISATION");
    cr_expect_str_eq(ev[2].event_id, "1000000000000001:AUTHORISATION");
    cr_expect_str_eq(ev[3].event_id, "1000000000000003:AUTHORISATION");
    cr_expect_str_eq(ev[2].account, "ShopPOS");
    /* each still names its own bytes */
    cr_expect(strncmp(b + ev[2].evidence_off, "{\"NotificationRequestItem\"",
                      26) == 0);
    cr_expect(memmem(b + ev[2].evidence_off, ev[2].evidence_len,
                     "1000000000000001", 16) != NULL);
    free(b);

    /* the other account's alone: none of this account's */
    b = wa_body(it, 1, k.k1);
    memset(&v, 0, sizeof(v));
    pay_dialect_adyen.webhook(&conf, wa_no_header, NULL, b, strlen(b), 0,
                              ev, PAY_WEBHOOK_MAX_ITEMS, &n, &v);
    cr_assert_eq(v.reason, PAY_WH_ACCOUNT);
    cr_assert_eq(n, 0);
    cr_assert_eq(v.nforeign, 1);
    free(b);

    /* this account's alone: applied as always */
    b = wa_body(&it[1], 1, k.k1);
    memset(&v, 0, sizeof(v));
    pay_dialect_adyen.webhook(&conf, wa_no_header, NULL, b, strlen(b), 0,
                              ev, PAY_WEBHOOK_MAX_ITEMS, &n, &v);
    cr_assert_eq(v.reason, PAY_WH_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(v.nforeign, 0);
    free(b);
}


Test(webhook_adyen, tampered_unsigned_field_changes_nothing_read)
{
    char         *b, *p;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    b = wa_body(&it, 1, k.k1);

    /* paymentMethod is outside the eight fields: still verifies, and no
     * event field comes from it */
    p = strstr(b, "\"visa\"");
    cr_assert_not_null(p);
    memcpy(p, "\"amex\"", 6);

    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(ev[0].amount, 1130);
    free(b);
}


Test(webhook_adyen, other_event_codes_are_ignored)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it.event = "OFFER_CLOSED";
    b = wa_body(&it, 1, k.k1);

    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(ev[0].kind, PAY_EVT_IGNORED);
    cr_assert_str_eq(ev[0].event_id, "7914073381342284:OFFER_CLOSED");
    free(b);
}


/* manual capture's modifications: CAPTURE and CANCELLATION by success,
 * CAPTURE_FAILED; our nonce as reference, the payment as originalReference */
Test(webhook_adyen, capture_and_cancellation_are_read)
{
    char         *b;
    size_t        n, i;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    static const struct {
        const char        *code;
        const char        *success;
        pay_event_kind_e   kind;
    } cases[] = {
        { "CAPTURE", "true", PAY_EVT_CAPTURE_SUCCEEDED },
        { "CAPTURE", "false", PAY_EVT_CAPTURE_FAILED },
        { "CAPTURE_FAILED", "true", PAY_EVT_CAPTURE_FAILED },
        { "CANCELLATION", "true", PAY_EVT_VOID_SUCCEEDED },
        { "CANCELLATION", "false", PAY_EVT_VOID_FAILED },
    };

    wa_keys(&k);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        it.event = cases[i].code;
        it.success = cases[i].success;
        b = wa_body(&it, 1, k.k1);

        cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE, "%s",
                     cases[i].code);
        cr_expect_eq(ev[0].kind, cases[i].kind, "%s %s", cases[i].code,
                     cases[i].success);
        cr_expect_str_eq(ev[0].object_ref, it.psp);
        free(b);
    }
}


Test(webhook_adyen, missing_fields_are_signed_as_empty)
{
    char          data[256], sig[PAY_ADYEN_SIG_B64_LEN + 1], body[512];
    size_t        n;
    wa_keys_t     k;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);

    /* no originalReference, no merchantAccountCode, no amount */
    snprintf(data, sizeof(data), "PSP1:::ref:::AUTHORISATION:true");
    cr_assert_eq(pay_adyen_hmac_b64(k.k1, 32, data, strlen(data), sig), 0);
    snprintf(body, sizeof(body),
             "{\"notificationItems\":[{\"NotificationRequestItem\":{"
             "\"pspReference\":\"PSP1\",\"merchantReference\":\"ref\","
             "\"eventCode\":\"AUTHORISATION\",\"success\":\"true\","
             "\"additionalData\":{\"hmacSignature\":\"%s\"}}}]}", sig);

    cr_assert_eq(wa_verify(body, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(ev[0].amount, -1);
    cr_assert_str_eq(ev[0].currency, "");
    /* a success whose amount cannot be checked moves no money */
    cr_assert_eq(ev[0].kind, PAY_EVT_IGNORED);
}


Test(webhook_adyen, moved_field_boundary_is_refused)
{
    char          data[256], sig[PAY_ADYEN_SIG_B64_LEN + 1], body[512];
    size_t        n;
    wa_keys_t     k;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);

    /* the same data string read with ':' inside pspReference */
    snprintf(data, sizeof(data), "%s", wa_data1);
    cr_assert_eq(pay_adyen_hmac_b64(k.k1, 32, data, strlen(data), sig), 0);
    snprintf(body, sizeof(body),
             "{\"notificationItems\":[{\"NotificationRequestItem\":{"
             "\"pspReference\":\"7914073381342284:\","
             "\"merchantAccountCode\":\"\","
             "\"merchantReference\":\"TestMerchant:TestPayment-1407325143704\","
             "\"amount\":{\"value\":1130,\"currency\":\"EUR\"},"
             "\"eventCode\":\"AUTHORISATION\",\"success\":\"true\","
             "\"additionalData\":{\"hmacSignature\":\"%s\"}}}]}", sig);

    cr_assert_eq(wa_verify(body, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_adyen, duplicate_keys_are_refused)
{
    char         *b, *p, *d;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    b = wa_body(&it, 1, k.k1);
    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_NONE);

    /* a second "success" after the signed one */
    d = malloc(strlen(b) + 32);
    cr_assert_not_null(d);
    p = strstr(b, "\"success\"");
    cr_assert_not_null(p);
    snprintf(d, strlen(b) + 32, "%.*s\"success\":\"false\",%s",
             (int) (p - b), b, p);

    cr_assert_eq(wa_verify(d, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    free(d);
    free(b);
}


Test(webhook_adyen, an_empty_batch_is_refused)
{
    size_t        n;
    wa_keys_t     k;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];
    const char    none[] = "{\"notificationItems\":[]}";

    wa_keys(&k);
    cr_assert_eq(wa_verify(none, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(n, 0);
}


/* Adyen sets no bound on a batch's items: 65 or 200 authentic items are
 * every one read, in order, each naming its own bytes. */
Test(webhook_adyen, a_batch_of_more_than_64_items_is_read_whole)
{
    char          *b, psp[8][17];
    size_t         n, i, t;
    wa_keys_t      k;
    wa_item_t     *it;
    pay_event_t   *ev;
    const size_t   sizes[] = { PAY_WEBHOOK_MAX_ITEMS + 1, 200 };

    wa_keys(&k);
    it = calloc(200, sizeof(wa_item_t));
    ev = calloc(200, sizeof(pay_event_t));
    cr_assert(it != NULL && ev != NULL);

    /* eight pspReferences, each item another event */
    for (i = 0; i < 8; i++) {
        snprintf(psp[i], sizeof(psp[i]), "10000000000001%02zu", i);
    }

    for (t = 0; t < 2; t++) {
        for (i = 0; i < sizes[t]; i++) {
            it[i] = wa_vector1;
            it[i].psp = psp[i % 8];
            it[i].value = 1000 + (long long) i;
        }

        b = wa_body(it, sizes[t], k.k1);
        cr_assert_eq(pay_adyen_verify(b, strlen(b), k.keys, 1, ev, 200, &n),
                     PAY_ERR_NONE, "%zu items", sizes[t]);
        cr_assert_eq(n, sizes[t]);

        for (i = 0; i < n; i++) {
            cr_expect_eq(ev[i].amount, 1000 + (int64_t) i);
            cr_expect_eq(strncmp(ev[i].event_id, psp[i % 8], 16), 0);
            cr_expect(ev[i].evidence_len != 0
                      && memmem(b + ev[i].evidence_off, ev[i].evidence_len,
                                psp[i % 8], 16) != NULL);
        }

        free(b);
    }

    free(it);
    free(ev);
}


/* More authentic items than the caller's array: the count, nothing
 * written, for it to call again with room for all (the dialect's
 * PAY_WH_MORE); a forged item among them is still a bad signature. */
Test(webhook_adyen, more_items_than_the_array_asks_for_room_after_verifying)
{
    char                *b;
    size_t               n, i;
    wa_keys_t            k;
    wa_item_t           *it;
    pay_event_t         *ev;
    pay_wh_verdict_t     v;
    pay_webhook_conf_t   conf;

    wa_keys(&k);
    it = calloc(200, sizeof(wa_item_t));
    ev = calloc(200, sizeof(pay_event_t));
    cr_assert(it != NULL && ev != NULL);

    for (i = 0; i < 200; i++) {
        it[i] = wa_vector1;
        it[i].value = 1000 + (long long) i;
        /* every third another account's: this account's first after */
        it[i].account = (i % 3 == 0) ? "ShopPOS" : "TestMerchant";
    }

    b = wa_body(it, 200, k.k1);
    cr_assert_eq(pay_adyen_verify(b, strlen(b), k.keys, 1, ev, 64, &n),
                 PAY_ERR_PAYLOAD_TOO_LARGE);
    cr_assert_eq(n, 200);
    cr_assert_eq(ev[0].event_id[0], '\0', "nothing written");

    memset(&conf, 0, sizeof(conf));
    conf.secrets = k.keys;
    conf.nsecrets = 1;
    conf.merchant_account = "TestMerchant";

    memset(&v, 0, sizeof(v));
    pay_dialect_adyen.webhook(&conf, wa_no_header, NULL, b, strlen(b), 0,
                              ev, 64, &n, &v);
    cr_assert_eq(v.reason, PAY_WH_MORE);
    cr_assert_eq(v.nneeded, 200);
    cr_assert_eq(n, 0);

    /* again with room: this account's 133 first, in order, then the 67 */
    memset(&v, 0, sizeof(v));
    pay_dialect_adyen.webhook(&conf, wa_no_header, NULL, b, strlen(b), 0,
                              ev, 200, &n, &v);
    cr_assert_eq(v.reason, PAY_WH_ACCOUNT);
    cr_assert_eq(n, 133);
    cr_assert_eq(v.nforeign, 67);

    for (i = 0; i < 133; i++) {
        cr_expect_eq(ev[i].amount, 1000 + (int64_t) (i + i / 2 + 1),
                     "ours %zu", i);
        cr_expect_str_eq(ev[i].account, "TestMerchant");
    }

    for (i = 0; i < 67; i++) {
        cr_expect_eq(ev[133 + i].amount, 1000 + (int64_t) (3 * i),
                     "other %zu", i);
        cr_expect_str_eq(ev[133 + i].account, "ShopPOS");
        cr_expect(memmem(b + ev[133 + i].evidence_off,
                         ev[133 + i].evidence_len, "ShopPOS", 7) != NULL);
    }

    free(b);

    /* one forged item among 200: refused before anything is counted */
    it[150].sig = wa_sig1;
    b = wa_body(it, 200, k.k1);
    cr_assert_eq(pay_adyen_verify(b, strlen(b), k.keys, 1, ev, 64, &n),
                 PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(n, 0);
    free(b);

    free(it);
    free(ev);
}


Test(webhook_adyen, malformed_bodies_are_refused)
{
    size_t       i, n;
    wa_keys_t    k;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS];
    const char  *bodies[] = {
        "",
        "[accepted]",
        "[]",
        "{}",
        "{\"notificationItems\":{}}",
        "{\"notificationItems\":[1]}",
        "{\"notificationItems\":[{}]}",
        "{\"notificationItems\":[{\"NotificationRequestItem\":[]}]}",
        "{\"notificationItems\":[{\"NotificationRequestItem\":{}}]}",
        "{\"notificationItems\":[{\"NotificationRequestItem\":{"
        "\"pspReference\":1,\"additionalData\":{\"hmacSignature\":\"x\"}}}]}",
        "{\"notificationItems\":[{\"NotificationRequestItem\":{"
        "\"amount\":{\"value\":\"1130\"},"
        "\"additionalData\":{\"hmacSignature\":\"x\"}}}]}",
    };

    wa_keys(&k);

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        n = 99;
        cr_expect_eq(pay_adyen_verify(bodies[i], strlen(bodies[i]), k.keys,
                                      1, ev, PAY_WEBHOOK_MAX_ITEMS, &n),
                     PAY_ERR_BAD_SIGNATURE, "body %zu", i);
        cr_expect_eq(n, 0);
    }
}


Test(webhook_adyen, signature_in_another_spelling_is_refused)
{
    char         *b;
    size_t        n;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);

    /* no padding */
    it.sig = "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I";
    b = wa_body(&it, 1, NULL);
    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    free(b);

    /* non-zero unused bits: decodes to the same MAC elsewhere */
    it.sig = "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4J=";
    b = wa_body(&it, 1, NULL);
    cr_assert_eq(wa_verify(b, k.keys, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    free(b);
}


Test(webhook_adyen, no_key_or_empty_key_is_bad_signature)
{
    char          *b;
    size_t         n;
    wa_keys_t      k;
    wa_item_t      it = wa_vector1;
    pay_event_t    ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_secret_t   empty = { (const unsigned char *) "", 0 };

    wa_keys(&k);
    it.sig = wa_sig1;
    b = wa_body(&it, 1, NULL);

    cr_assert_eq(wa_verify(b, NULL, 0, ev, &n), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(wa_verify(b, &empty, 1, ev, &n), PAY_ERR_BAD_SIGNATURE);
    free(b);
}


Test(webhook_adyen, key_decode_takes_64_hex_digits_only)
{
    unsigned char  out[PAY_ADYEN_KEY_LEN];
    char           lower[65], bad[65];
    size_t         i;

    cr_assert_eq(pay_adyen_key_decode(wa_key1_hex, 64, out), 0);
    cr_assert_eq(out[0], 0xDF);
    cr_assert_eq(out[31], 0x00);

    for (i = 0; i < 64; i++) {
        lower[i] = (char) ((wa_key1_hex[i] >= 'A' && wa_key1_hex[i] <= 'F')
                           ? wa_key1_hex[i] - 'A' + 'a' : wa_key1_hex[i]);
    }

    lower[64] = '\0';
    cr_assert_eq(pay_adyen_key_decode(lower, 64, out), 0);
    cr_assert_eq(out[0], 0xDF);

    cr_assert_eq(pay_adyen_key_decode(wa_key1_hex, 63, out), -1);
    cr_assert_eq(pay_adyen_key_decode(wa_key1_hex, 0, out), -1);
    memcpy(bad, wa_key1_hex, 65);
    bad[10] = 'g';
    cr_assert_eq(pay_adyen_key_decode(bad, 64, out), -1);
}


/* --- each item's own bytes, kept alone and verified again ------------------ */

Test(webhook_adyen, each_item_is_found_as_the_psp_wrote_it)
{
    char         *sp, one[2048], data[256], sig[PAY_ADYEN_SIG_B64_LEN + 1];
    size_t        n, i, len;
    wa_keys_t     k;
    wa_item_t     it[3];
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS];

    wa_keys(&k);
    it[0] = wa_vector1;
    it[1] = wa_vector1;
    it[1].psp = "8814073381342285";
    it[1].reference = "m_1:co_\\\"x\\u0041[]{},";   /* escapes, brackets */
    it[2] = wa_vector2;

    /* signed as Adyen signs: the reference as decoded */
    snprintf(data, sizeof(data), "%s::TestMerchant:%s:1130:EUR:"
             "AUTHORISATION:true", it[1].psp, "m_1:co_\"xA[]{},");
    cr_assert_eq(pay_adyen_hmac_b64(k.k1, PAY_ADYEN_KEY_LEN, data,
                                    strlen(data), sig), 0);
    it[1].sig = sig;

    /* whitespace around the items, a key spelled with an escape before
     * them, and a member after them with a key of the same name inside */
    sp = malloc(8192);
    cr_assert_not_null(sp);
    len = (size_t) sprintf(sp, " {\"liv\\u0065\":\"false\",\n"
                               "\"notificationItems\" : [\n\t");
    for (i = 0; i < 3; i++) {
        len += wa_item_json(sp + len, 8192 - len, &it[i], k.k1);
        len += (size_t) sprintf(sp + len, i < 2 ? " ,\r\n " : " \n");
    }
    sprintf(sp + len, "] , \"x\" : [1, {\"notificationItems\":0}, \"]\"] }");

    cr_assert_eq(wa_verify(sp, k.keys, 1, ev, &n), PAY_ERR_NONE, "%s", sp);
    cr_assert_eq(n, 3);

    for (i = 0; i < 3; i++) {
        wa_item_json(one, sizeof(one), &it[i], k.k1);
        cr_assert_eq(ev[i].evidence_len, strlen(one), "item %zu", i);
        cr_expect(memcmp(sp + ev[i].evidence_off, one, strlen(one)) == 0,
                  "item %zu: %.*s", i, (int) ev[i].evidence_len,
                  sp + ev[i].evidence_off);

        /* alone, under its key only */
        cr_expect_eq(pay_adyen_evidence_verify(sp + ev[i].evidence_off,
                                               ev[i].evidence_len, k.keys, 1),
                     PAY_ERR_NONE);
        cr_expect_eq(pay_adyen_evidence_verify(sp + ev[i].evidence_off,
                                               ev[i].evidence_len,
                                               &k.keys[1], 1),
                     PAY_ERR_BAD_SIGNATURE);
    }

    free(sp);
}


/* pay_header_pt of a notification kept without headers */
static const char *
wa_no_header(void *data, const char *name, size_t *len, unsigned *count)
{
    (void) data;
    (void) name;
    *len = 0;
    *count = 0;
    return NULL;
}


Test(webhook_adyen, a_kept_item_read_again_is_the_event_it_was)
{
    char         one[2048], *p;
    size_t        len, n, m;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;
    pay_event_t   ev[PAY_WEBHOOK_MAX_ITEMS], again[2];
    char          body[4096];

    wa_keys(&k);
    len = wa_item_json(one, sizeof(one), &it, k.k1);
    snprintf(body, sizeof(body), "{\"live\":\"false\","
             "\"notificationItems\":[%s]}", one);

    cr_assert_eq(wa_verify(body, k.keys, 1, ev, &n), PAY_ERR_NONE);
    cr_assert_eq(n, 1);

    /* the item alone says what the notification said of it */
    cr_assert_eq(pay_adyen_evidence_events(one, len, k.keys, 1, again, 2,
                                           &m), PAY_ERR_NONE);
    cr_assert_eq(m, 1);
    cr_expect_str_eq(again[0].event_id, ev[0].event_id);
    cr_expect_str_eq(again[0].type, ev[0].type);
    cr_expect_eq(again[0].kind, ev[0].kind);
    cr_expect_str_eq(again[0].reference, ev[0].reference);
    cr_expect_eq(again[0].amount, ev[0].amount);
    cr_expect_str_eq(again[0].currency, ev[0].currency);
    cr_expect_str_eq(again[0].payment_ref, ev[0].payment_ref);
    cr_expect_str_eq(pay_event_kind_name(&again[0]), "SUCCEEDED");

    /* a whole notification: its events */
    cr_expect_eq(pay_adyen_evidence_events(body, strlen(body), k.keys, 1,
                                           again, 2, &m), PAY_ERR_NONE);
    cr_expect_eq(m, 1);

    /* not under its key, or a signed field altered: no events */
    cr_expect_eq(pay_adyen_evidence_events(one, len, &k.keys[1], 1, again,
                                           2, &m), PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(m, 0);
    p = strstr(one, "\"value\":1130");
    cr_assert_not_null(p);
    p[8] = '2';
    cr_expect_eq(pay_adyen_evidence_events(one, len, k.keys, 1, again, 2,
                                           &m), PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(m, 0);

    /* through the dialect table, as payments-events verify reads it */
    p[8] = '1';
    cr_expect_eq(pay_dialect_find("adyen", 5)->evidence_events(
                     &(pay_webhook_conf_t) { .secrets = k.keys,
                                             .nsecrets = 1 },
                     wa_no_header, NULL, one, len, again, 2, &m), 0);
    cr_expect_eq(m, 1);
    cr_expect_str_eq(again[0].event_id, ev[0].event_id);
}


Test(webhook_adyen, a_kept_item_altered_no_longer_verifies)
{
    char         one[2048], *p;
    size_t        len;
    wa_keys_t     k;
    wa_item_t     it = wa_vector1;

    wa_keys(&k);
    len = wa_item_json(one, sizeof(one), &it, k.k2);

    cr_assert_eq(pay_adyen_evidence_verify(one, len, k.keys, 2),
                 PAY_ERR_NONE);

    /* a signed field changed: refused; an unsigned one is not evidence
     * of anything and changes nothing */
    p = strstr(one, "\"value\":1130");
    cr_assert_not_null(p);
    p[8] = '2';
    cr_expect_eq(pay_adyen_evidence_verify(one, len, k.keys, 2),
                 PAY_ERR_BAD_SIGNATURE);
    p[8] = '1';

    p = strstr(one, "AUTHORISATION");
    p[0] = 'B';
    cr_expect_eq(pay_adyen_evidence_verify(one, len, k.keys, 2),
                 PAY_ERR_BAD_SIGNATURE);
    p[0] = 'A';

    cr_expect_eq(pay_adyen_evidence_verify(one, len - 1, k.keys, 2),
                 PAY_ERR_BAD_SIGNATURE, "truncated");
    cr_expect_eq(pay_adyen_evidence_verify("{}", 2, k.keys, 2),
                 PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(pay_adyen_evidence_verify(one, len, NULL, 0),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_adyen, a_whole_notification_kept_verifies_every_item)
{
    char         *b, *p;
    wa_keys_t     k;
    wa_item_t     it[2];

    wa_keys(&k);
    it[0] = wa_vector1;
    it[1] = wa_vector2;
    b = wa_body(it, 2, k.k1);

    cr_assert_eq(pay_adyen_evidence_verify(b, strlen(b), k.keys, 1),
                 PAY_ERR_NONE);

    p = strstr(b, "REFUND");
    cr_assert_not_null(p);
    p[0] = 'X';
    cr_expect_eq(pay_adyen_evidence_verify(b, strlen(b), k.keys, 1),
                 PAY_ERR_BAD_SIGNATURE);
    free(b);
}
