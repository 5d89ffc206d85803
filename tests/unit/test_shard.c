/*
 * Unit tests: merchant shards (src/shard.c): shard names, the merchant a
 * nonce names, how each dialect's events find their shard (read by the
 * dialects' own parsers, as the adapter reads them), and the directory's
 * table.  One rule per test.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/shard.h>
#include <payments/webhook.h>


static int
sh_name(const char *name)
{
    const char  *why = NULL;
    int          rc;

    rc = pay_shard_name_check(name, strlen(name), &why);
    if (rc != 0) {
        cr_expect_not_null(why, "%s", name);
    }

    return rc;
}


Test(shard, names_are_1_to_16_of_a_z_0_9_and_underscore)
{
    cr_expect_eq(sh_name("a"), 0);
    cr_expect_eq(sh_name("eu_west_2"), 0);
    cr_expect_eq(sh_name("abcdefghijklmnop"), 0);

    cr_expect_eq(sh_name(""), -1);
    cr_expect_eq(sh_name("abcdefghijklmnopq"), -1);
    cr_expect_eq(sh_name("EU"), -1);
    cr_expect_eq(sh_name("eu-west"), -1);
    cr_expect_eq(sh_name("a b"), -1);
    cr_expect_eq(sh_name("a:b"), -1);
}


Test(shard, default_is_payments_databases_name_and_refused)
{
    const char  *why = NULL;

    cr_expect_eq(pay_shard_name_check("default", 7, &why), -1);
    cr_expect_not_null(strstr(why, "default"));
    cr_expect_eq(sh_name("default2"), 0);
    cr_expect_eq(pay_shard_name_check("default2", 7, &why), -1);
}


static const char *
sh_nonce(const char *ref)
{
    static char  m[PAY_MERCHANT_ID_MAX + 1];

    if (pay_nonce_merchant(ref, m) != 0) {
        cr_expect_str_eq(m, "", "%s", ref);
        return NULL;
    }

    return m;
}


Test(shard, every_object_kinds_nonce_names_its_merchant)
{
    static const char  *refs[] = {
        "shop_1:co_1",
        "shop_1:AbC-9_x",
        "shop_1:rf_0123456789abcdef01234567",
        "shop_1:pyo_0123456789abcdef01234567",
        "shop_1:cp_0123456789abcdef01234567",
        "shop_1:vd_0123456789abcdef01234567",
    };
    size_t               i;
    const char          *m;

    for (i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        m = sh_nonce(refs[i]);
        cr_assert_not_null(m, "%s", refs[i]);
        cr_expect_str_eq(m, "shop_1", "%s", refs[i]);
    }
}


Test(shard, a_23_char_merchant_is_ours_a_24_char_one_is_not)
{
    const char  *m;

    m = sh_nonce("abcdefghijklmnopqrstuvw:co_1");
    cr_assert_not_null(m);
    cr_expect_str_eq(m, "abcdefghijklmnopqrstuvw");

    cr_expect_null(sh_nonce("abcdefghijklmnopqrstuvwx:co_1"));
}


Test(shard, a_b_c_is_not_a_nonce)
{
    cr_expect_null(sh_nonce("a:b:c"));
    cr_expect_null(sh_nonce("m1:co_1:"));
    cr_expect_null(sh_nonce("m1::co_1"));
}


Test(shard, foreign_references_are_not_nonces)
{
    static const char  *refs[] = {
        "",                 /* none */
        "ch_3Nq1",          /* another system's id */
        ":co_1",            /* no merchant */
        "m1:",              /* no id */
        "Shop:co_1",        /* merchant ids are lower case */
        "shop-1:co_1",      /* ... with no '-' */
        "m1:co 1",          /* ids are [A-Za-z0-9_-] */
        "m1:co.1",
        "order 1234",
    };
    size_t               i;

    for (i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        cr_expect_null(sh_nonce(refs[i]), "%s", refs[i]);
    }
}


Test(shard, the_id_has_at_most_64_characters)
{
    char  ref[3 + 66];

    memcpy(ref, "m1:", 3);
    memset(ref + 3, 'a', 64);
    ref[3 + 64] = '\0';
    cr_expect_not_null(sh_nonce(ref));

    ref[3 + 64] = 'a';
    ref[3 + 65] = '\0';
    cr_expect_null(sh_nonce(ref));
}


/* Stripe: the events as pay_stripe_parse_events reads them. */

static pay_evroute_e
sh_stripe(const char *body, pay_evroute_t *rt, size_t want)
{
    size_t       n;
    pay_event_t  ev[4];

    cr_assert_eq(pay_stripe_parse_events(body, strlen(body), ev, 4, &n), 0,
                 "%s", body);
    cr_assert_eq(n, want);

    return pay_event_route(&ev[0], rt);
}


Test(shard, stripe_session_routes_by_client_reference_id)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
        "\"client_reference_id\":\"shop_b:co_1\",\"amount_total\":1500,"
        "\"currency\":\"usd\",\"payment_status\":\"paid\","
        "\"payment_intent\":\"pi_1\"}}}";

    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_NONCE);
    cr_expect_str_eq(rt.merchant, "shop_b");
}


Test(shard, stripe_session_without_reference_is_located_by_token)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
        "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_9\","
        "\"amount_total\":1500,\"currency\":\"usd\","
        "\"payment_status\":\"paid\",\"payment_intent\":\"pi_9\"}}}";

    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.merchant, "");
    cr_expect_str_eq(rt.token, "cs_9");
    cr_expect_str_eq(rt.payment_ref, "pi_9");
}


static const char  sh_refund_fmt[] =
    "{\"id\":\"evt_r1\",\"type\":\"refund.updated\",\"livemode\":false,"
    "\"data\":{\"object\":{\"id\":\"re_1\",\"object\":\"refund\","
    "\"amount\":400,\"currency\":\"eur\",\"status\":\"%s\","
    "\"payment_intent\":\"pi_1\"%s}}}";


Test(shard, stripe_refund_routes_by_its_metadata_nonce)
{
    char           body[1024];
    pay_evroute_t  rt;

    snprintf(body, sizeof(body), sh_refund_fmt, "succeeded",
             ",\"metadata\":{\"nonce\":\"shop_b:rf_0123456789abcdef01234567\"}");
    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_NONCE);
    cr_expect_str_eq(rt.merchant, "shop_b");
}


/* a refund made in Stripe's dashboard carries no nonce: its payment
 * leads to the shard that holds it */
Test(shard, stripe_dashboard_refund_is_located_by_payment_intent)
{
    char           body[1024];
    pay_evroute_t  rt;

    snprintf(body, sizeof(body), sh_refund_fmt, "succeeded", "");
    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.payment_ref, "pi_1");
    cr_expect_str_eq(rt.object_ref, "re_1");
    cr_expect_str_eq(rt.token, "");
}


/* a pending refund moves nothing: recorded by its object, at home */
Test(shard, stripe_pending_refund_without_nonce_stays_home)
{
    char           body[1024];
    pay_evroute_t  rt;

    snprintf(body, sizeof(body), sh_refund_fmt, "pending", "");
    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_HOME);
}


static const char  sh_dispute_fmt[] =
    "{\"id\":\"evt_d1\",\"type\":\"%s\",\"livemode\":false,"
    "\"data\":{\"object\":{\"id\":\"dp_1\",\"object\":\"dispute\","
    "\"amount\":1999,\"currency\":\"usd\",\"payment_intent\":\"pi_7\","
    "\"status\":\"%s\",\"reason\":\"fraudulent\"}}}";


Test(shard, stripe_dispute_has_no_nonce_and_is_located_by_payment_intent)
{
    static const char  *cases[][2] = {
        { "charge.dispute.created", "needs_response" },
        { "charge.dispute.closed", "won" },
        { "charge.dispute.closed", "lost" },
    };
    char                 body[1024];
    size_t               i;
    pay_evroute_t        rt;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), sh_dispute_fmt, cases[i][0],
                 cases[i][1]);
        cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_LOCATE,
                     "%s", cases[i][1]);
        cr_expect_str_eq(rt.payment_ref, "pi_7");
        cr_expect_str_eq(rt.object_ref, "dp_1");
    }

    /* an inquiry's end: where its payment is (a dispute an earlier
     * release held for the inquiry is given back there) */
    snprintf(body, sizeof(body), sh_dispute_fmt, "charge.dispute.closed",
             "warning_closed");
    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.payment_ref, "pi_7");
    cr_expect_str_eq(rt.object_ref, "dp_1");

    /* a closing status we do not act on moves nothing */
    snprintf(body, sizeof(body), sh_dispute_fmt, "charge.dispute.closed",
             "charge_refunded");
    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_HOME);
}


Test(shard, stripe_transfer_routes_by_its_payout_nonce)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"id\":\"evt_t1\",\"type\":\"transfer.created\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"tr_1\",\"object\":\"transfer\","
        "\"amount\":2500,\"currency\":\"eur\",\"destination\":\"acct_1\","
        "\"reversed\":false,"
        "\"metadata\":{\"nonce\":\"shop_b:pyo_0123456789abcdef01234567\"}}}}";

    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_NONCE);
    cr_expect_str_eq(rt.merchant, "shop_b");
}


Test(shard, stripe_event_type_we_ignore_stays_home)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"id\":\"evt_c1\",\"type\":\"customer.created\",\"livemode\":false,"
        "\"data\":{\"object\":{\"id\":\"cus_1\",\"object\":\"customer\"}}}";

    cr_expect_eq(sh_stripe(body, &rt, 1), PAY_EVROUTE_HOME);
}


/* Adyen: notifications signed item by item, read by pay_adyen_verify. */

static const char  sh_adyen_hex[] =
    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";


typedef struct {
    const char  *psp, *orig, *reference, *event, *success;
    long long    value;     /* < 0: no amount */
} sh_item_t;


/* one item, signed, appended to buf at *off */
static void
sh_adyen_item(const unsigned char *key, const sh_item_t *it, char *buf,
    size_t cap, size_t *off)
{
    int    n;
    char   data[1024], sig[PAY_ADYEN_SIG_B64_LEN + 1], amount[128];
    char   val[24];

    val[0] = '\0';
    amount[0] = '\0';

    if (it->value >= 0) {
        snprintf(val, sizeof(val), "%lld", it->value);
        snprintf(amount, sizeof(amount),
                 "\"amount\":{\"currency\":\"EUR\",\"value\":%lld},",
                 it->value);
    }

    snprintf(data, sizeof(data), "%s:%s:M:%s:%s:%s:%s:%s", it->psp, it->orig,
             it->reference, val, it->value >= 0 ? "EUR" : "", it->event,
             it->success);
    cr_assert_eq(pay_adyen_hmac_b64(key, PAY_ADYEN_KEY_LEN, data,
                                    strlen(data), sig), 0);

    n = snprintf(buf + *off, cap - *off,
                 "%s{\"NotificationRequestItem\":{"
                 "\"additionalData\":{\"hmacSignature\":\"%s\"},%s"
                 "\"eventCode\":\"%s\",\"merchantAccountCode\":\"M\","
                 "\"merchantReference\":\"%s\",\"originalReference\":\"%s\","
                 "\"pspReference\":\"%s\",\"success\":\"%s\"}}",
                 *off > 0 ? "," : "", sig, amount, it->event, it->reference,
                 it->orig, it->psp, it->success);
    cr_assert(n > 0 && (size_t) n < cap - *off);
    *off += (size_t) n;
}


static size_t
sh_adyen(const sh_item_t *items, size_t nitems, pay_event_t *ev)
{
    char            items_json[8192], body[8300];
    size_t          i, off, n;
    unsigned char   key[PAY_ADYEN_KEY_LEN];
    pay_secret_t    k = { key, sizeof(key) };

    cr_assert_eq(pay_adyen_key_decode(sh_adyen_hex, 64, key), 0);

    off = 0;
    for (i = 0; i < nitems; i++) {
        sh_adyen_item(key, &items[i], items_json, sizeof(items_json), &off);
    }

    snprintf(body, sizeof(body),
             "{\"live\":\"false\",\"notificationItems\":[%s]}", items_json);

    cr_assert_eq(pay_adyen_verify(body, strlen(body), &k, 1, ev,
                                  PAY_WEBHOOK_MAX_ITEMS, &n), PAY_ERR_NONE);
    cr_assert_eq(n, nitems);

    return n;
}


Test(shard, adyen_each_nonce_carrying_code_routes_by_merchant_reference)
{
    static const sh_item_t  items[] = {
        { "PSP1", "", "shop_b:co_1", "AUTHORISATION", "true", 1500 },
        { "PSP2", "", "shop_b:co_2", "AUTHORISATION", "false", 1500 },
        { "PSP3", "PSP1", "shop_b:cp_0123456789abcdef01234567", "CAPTURE",
          "true", 1500 },
        { "PSP4", "PSP1", "shop_b:vd_0123456789abcdef01234567",
          "CANCELLATION", "true", -1 },
        { "PSP5", "PSP1", "shop_b:rf_0123456789abcdef01234567", "REFUND",
          "true", 400 },
        { "PSP6", "PSP1", "shop_b:rf_1123456789abcdef01234567",
          "REFUND_FAILED", "true", 400 },
        { "PSP7", "PSP1", "shop_b:co_1", "CHARGEBACK", "true", 1500 },
        { "PSP8", "PSP1", "shop_b:co_1", "CHARGEBACK_REVERSED", "true",
          1500 },
        { "PSP9", "PSP1", "shop_b:co_1", "RECURRING_CONTRACT", "true", -1 },
        { "PSPA", "", "shop_b:co_1", "REPORT_AVAILABLE", "true", -1 },
    };
    size_t                  i, n;
    pay_event_t             ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_evroute_t           rt;

    n = sh_adyen(items, sizeof(items) / sizeof(items[0]), ev);

    for (i = 0; i < n; i++) {
        cr_expect_eq(pay_event_route(&ev[i], &rt), PAY_EVROUTE_NONCE,
                     "%s", items[i].event);
        cr_expect_str_eq(rt.merchant, "shop_b", "%s", items[i].event);
    }
}


/* a batch may mix merchants of different shards: each item its own */
Test(shard, adyen_batch_routes_each_item_to_its_own_merchant)
{
    static const sh_item_t  items[] = {
        { "PSP1", "", "shop_a:co_1", "AUTHORISATION", "true", 1500 },
        { "PSP2", "", "shop_b:co_1", "AUTHORISATION", "true", 1500 },
        { "PSP3", "PSPX", "", "CHARGEBACK", "true", 1500 },
    };
    pay_event_t             ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_evroute_t           rt;

    sh_adyen(items, 3, ev);

    cr_expect_eq(pay_event_route(&ev[0], &rt), PAY_EVROUTE_NONCE);
    cr_expect_str_eq(rt.merchant, "shop_a");
    cr_expect_eq(pay_event_route(&ev[1], &rt), PAY_EVROUTE_NONCE);
    cr_expect_str_eq(rt.merchant, "shop_b");
    cr_expect_eq(pay_event_route(&ev[2], &rt), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.payment_ref, "PSPX");
}


/* an empty merchantReference: located by the payment it concerns */
Test(shard, adyen_codes_without_merchant_reference_are_located)
{
    static const sh_item_t  items[] = {
        { "PSPA1", "", "", "AUTHORISATION", "true", 1500 },
        { "PSPR1", "PSPA1", "", "REFUND", "true", 400 },
        { "PSPC1", "PSPA1", "", "CHARGEBACK", "true", 1500 },
        { "PSPC2", "PSPA1", "", "SECOND_CHARGEBACK", "true", 1500 },
        /* an inquiry's end: where its payment is */
        { "PSPC4", "PSPA1", "", "ISSUER_RESPONSE_TIMEFRAME_EXPIRED", "true",
          1500 },
        /* moves nothing: recorded about the dispute, on the home shard */
        { "PSPC3", "PSPA1", "", "NOTIFICATION_OF_CHARGEBACK", "true",
          1500 },
    };
    size_t                  i, n;
    pay_event_t             ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_evroute_t           rt;

    n = sh_adyen(items, sizeof(items) / sizeof(items[0]), ev);
    cr_assert_eq(n, 6);

    for (i = 0; i < 5; i++) {
        cr_expect_eq(pay_event_route(&ev[i], &rt), PAY_EVROUTE_LOCATE,
                     "%s", items[i].event);
        cr_expect_str_eq(rt.merchant, "");
        cr_expect_str_eq(rt.payment_ref, "PSPA1", "%s", items[i].event);
        cr_expect_str_eq(rt.token, "");
    }

    cr_expect_eq(pay_event_route(&ev[5], &rt), PAY_EVROUTE_HOME);
}


Test(shard, adyen_foreign_reference_is_located_or_home)
{
    static const sh_item_t  items[] = {
        { "PSPF1", "", "ORDER-2024-17", "AUTHORISATION", "true", 1500 },
        { "PSPF2", "", "", "REPORT_AVAILABLE", "true", -1 },
        { "PSPF3", "", "a:b:c", "OFFER_CLOSED", "true", -1 },
    };
    pay_event_t             ev[PAY_WEBHOOK_MAX_ITEMS];
    pay_evroute_t           rt;

    sh_adyen(items, 3, ev);

    /* a payment under another system's reference: is it one of ours? */
    cr_expect_eq(pay_event_route(&ev[0], &rt), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.payment_ref, "PSPF1");

    /* a code we do not act on, about its pspReference: moves nothing */
    cr_expect_eq(ev[1].kind, PAY_EVT_IGNORED);
    cr_expect_str_eq(ev[1].object_ref, "PSPF2");
    cr_expect_eq(pay_event_route(&ev[1], &rt), PAY_EVROUTE_HOME);

    /* not our nonce, and nothing to find it by */
    cr_expect_eq(ev[2].kind, PAY_EVT_IGNORED);
    cr_expect_eq(pay_event_route(&ev[2], &rt), PAY_EVROUTE_HOME);
    cr_expect_str_eq(rt.merchant, "");
}


Test(shard, adyen_transfer_routes_by_its_payout_reference)
{
    pay_event_t    ev;
    pay_evroute_t  rt;
    const char     body[] =
        "{\"type\":\"balancePlatform.transfer.updated\","
        "\"environment\":\"test\",\"data\":{\"id\":\"TR0001\","
        "\"reference\":\"shop_b:pyo_0123456789abcdef01234567\","
        "\"status\":\"booked\",\"amount\":{\"value\":2500,"
        "\"currency\":\"EUR\"}}}";
    const char     other[] =
        "{\"type\":\"balancePlatform.transfer.updated\","
        "\"environment\":\"test\",\"data\":{\"id\":\"TR0002\","
        "\"reference\":\"payroll 7\","
        "\"status\":\"booked\",\"amount\":{\"value\":2500,"
        "\"currency\":\"EUR\"}}}";

    cr_assert_eq(pay_adyen_parse_transfer(body, strlen(body), &ev), 0);
    cr_expect_eq(pay_event_route(&ev, &rt), PAY_EVROUTE_NONCE);
    cr_expect_str_eq(rt.merchant, "shop_b");

    cr_assert_eq(pay_adyen_parse_transfer(other, strlen(other), &ev), 0);
    cr_expect_eq(pay_event_route(&ev, &rt), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.object_ref, "TR0002");
}


/* generic: the reference inside the signed body */

static pay_evroute_e
sh_generic(const char *body, pay_evroute_t *rt)
{
    static pay_event_t  ev;

    cr_assert_eq(pay_generic_parse_event(body, strlen(body), &ev), 0,
                 "%s", body);

    return pay_event_route(&ev, rt);
}


Test(shard, generic_every_type_with_a_nonce_routes_by_it)
{
    static const char  *types[] = {
        "payment.succeeded", "payment.failed", "refund.succeeded",
        "refund.failed", "dispute.opened", "dispute.won", "dispute.lost",
        "payout.paid", "payout.failed",
    };
    char                 body[512];
    size_t               i;
    pay_evroute_t        rt;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"event_id\":\"e%zu\",\"type\":\"%s\","
                 "\"reference\":\"shop_b:x_%zu\",\"token\":\"gs_1\","
                 "\"amount\":\"4.00\",\"currency\":\"EUR\","
                 "\"payment_id\":\"gp_1\",\"refund_id\":\"gr_1\","
                 "\"dispute_id\":\"gd_1\",\"payout_id\":\"go_1\"}",
                 i, types[i], i);
        cr_expect_eq(sh_generic(body, &rt), PAY_EVROUTE_NONCE, "%s",
                     types[i]);
        cr_expect_str_eq(rt.merchant, "shop_b", "%s", types[i]);
    }
}


Test(shard, generic_token_only_event_is_located_by_its_token)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"event_id\":\"e1\",\"type\":\"payment.succeeded\","
        "\"token\":\"gs_7\",\"amount\":\"12.34\",\"currency\":\"EUR\"}";

    cr_expect_eq(sh_generic(body, &rt), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.token, "gs_7");
    cr_expect_str_eq(rt.payment_ref, "");
    cr_expect_str_eq(rt.object_ref, "");
}


Test(shard, generic_dispute_without_reference_is_located_by_payment)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"event_id\":\"e2\",\"type\":\"dispute.opened\","
        "\"amount\":\"12.34\",\"currency\":\"EUR\","
        "\"payment_id\":\"gp_3\",\"dispute_id\":\"gd_3\"}";

    cr_expect_eq(sh_generic(body, &rt), PAY_EVROUTE_LOCATE);
    cr_expect_str_eq(rt.payment_ref, "gp_3");
    cr_expect_str_eq(rt.object_ref, "gd_3");
}


Test(shard, event_naming_nothing_goes_home)
{
    pay_evroute_t  rt;
    const char     body[] =
        "{\"event_id\":\"e3\",\"type\":\"payment.failed\","
        "\"reference\":\"a:b:c\",\"amount\":\"1.00\",\"currency\":\"EUR\"}";

    cr_expect_eq(sh_generic(body, &rt), PAY_EVROUTE_HOME);
    cr_expect_str_eq(rt.merchant, "");
    cr_expect_str_eq(rt.token, "");
    cr_expect_str_eq(rt.payment_ref, "");
    cr_expect_str_eq(rt.object_ref, "");
}


Test(shard, route_names_are_the_metric_labels)
{
    cr_expect_str_eq(pay_evroute_name(PAY_EVROUTE_NONCE), "nonce");
    cr_expect_str_eq(pay_evroute_name(PAY_EVROUTE_LOCATE), "located");
    cr_expect_str_eq(pay_evroute_name(PAY_EVROUTE_HOME), "home");
}


/* the directory's table */

#define SH_KEY1  "AbCdEf012345"
#define SH_KEY2  "ZZZZZZZZZZZ9"


static unsigned
sh_shard_of(pay_dir_slot_t *t, size_t n, char kind, const char *id,
    int *conflict)
{
    return pay_dir_shard_of(t, n, kind, id, strlen(id), conflict);
}


Test(shard, directory_merchant_and_key_lead_to_the_shard)
{
    int             c;
    pay_dir_slot_t  t[64];

    memset(t, 0, sizeof(t));

    cr_expect_eq(pay_dir_put_merchant(t, 64, "shop_b", 6, 1), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_key(t, 64, SH_KEY1, 12, "shop_b"),
                 PAY_DIR_ADDED);

    cr_expect_eq(sh_shard_of(t, 64, PAY_DIR_MERCHANT, "shop_b", &c), 1);
    cr_expect_eq(c, 0);
    cr_expect_eq(sh_shard_of(t, 64, PAY_DIR_KEY, SH_KEY1, &c), 1);
    cr_expect_eq(c, 0);

    /* a miss: the caller asks every shard */
    cr_expect_eq(sh_shard_of(t, 64, PAY_DIR_MERCHANT, "shop_c", &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(sh_shard_of(t, 64, PAY_DIR_KEY, SH_KEY2, &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(c, 0);
}


Test(shard, directory_refresh_of_the_same_rows_changes_nothing)
{
    int             c;
    pay_dir_slot_t  t[16];

    memset(t, 0, sizeof(t));

    cr_expect_eq(pay_dir_put_merchant(t, 16, "m1", 2, 3), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "m1", 2, 3), PAY_DIR_SAME);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "m1"), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "m1"), PAY_DIR_SAME);
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_KEY, SH_KEY1, &c), 3);
}


/* the same merchant on two shards: neither is trusted until fixed */
Test(shard, directory_merchant_on_two_shards_is_a_conflict)
{
    int             c;
    pay_dir_slot_t  t[16];

    memset(t, 0, sizeof(t));

    cr_expect_eq(pay_dir_put_merchant(t, 16, "m1", 2, 0), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "m1"), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "m1", 2, 1), PAY_DIR_CONFLICT);
    /* and stays one when the first shard's row comes again */
    cr_expect_eq(pay_dir_put_merchant(t, 16, "m1", 2, 0), PAY_DIR_CONFLICT);

    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_MERCHANT, "m1", &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(c, 1);
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_KEY, SH_KEY1, &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(c, 1);
}


Test(shard, directory_key_of_two_merchants_is_a_conflict)
{
    int             c;
    pay_dir_slot_t  t[16];

    memset(t, 0, sizeof(t));

    cr_expect_eq(pay_dir_put_merchant(t, 16, "m1", 2, 0), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "m1"), PAY_DIR_ADDED);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "m2"),
                 PAY_DIR_CONFLICT);
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_KEY, SH_KEY1, &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(c, 1);
    /* the merchant itself is not in doubt */
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_MERCHANT, "m1", &c), 0);
}


/* a key whose merchant is not in the directory yet is a miss */
Test(shard, directory_key_without_its_merchant_is_a_miss)
{
    int             c;
    pay_dir_slot_t  t[16];

    memset(t, 0, sizeof(t));

    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "m1"), PAY_DIR_ADDED);
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_KEY, SH_KEY1, &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(c, 0);
}


/* a merchant and a key id spelt alike are different entries */
Test(shard, directory_kinds_do_not_mix)
{
    int             c;
    pay_dir_slot_t  t[16];

    memset(t, 0, sizeof(t));

    cr_expect_neq(pay_dir_hash('m', "abc", 3), pay_dir_hash('k', "abc", 3));
    cr_expect_eq(pay_dir_hash('m', "abc", 3), pay_dir_hash('m', "abc", 3));

    cr_expect_eq(pay_dir_put_merchant(t, 16, "abcdefghijkl", 12, 2),
                 PAY_DIR_ADDED);
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_KEY, "abcdefghijkl", &c),
                 PAY_DIR_NO_SHARD);
    cr_expect_eq(sh_shard_of(t, 16, PAY_DIR_MERCHANT, "abcdefghijkl", &c),
                 2);
}


/* every slot used, each entry still found past its collisions; then full */
Test(shard, directory_fills_every_slot_then_says_full)
{
    int             c;
    char            id[8];
    size_t          i;
    pay_dir_slot_t  t[8];

    memset(t, 0, sizeof(t));

    for (i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "m%zu", i);
        cr_assert_eq(pay_dir_put_merchant(t, 8, id, strlen(id), i % 4),
                     PAY_DIR_ADDED, "%s", id);
    }

    for (i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "m%zu", i);
        cr_expect_eq(sh_shard_of(t, 8, PAY_DIR_MERCHANT, id, &c), i % 4,
                     "%s", id);
        cr_expect_eq(pay_dir_put_merchant(t, 8, id, strlen(id), i % 4),
                     PAY_DIR_SAME, "%s", id);
    }

    cr_expect_eq(pay_dir_put_merchant(t, 8, "m8", 2, 0), PAY_DIR_FULL);
    cr_expect_eq(pay_dir_put_key(t, 8, SH_KEY1, 12, "m1"), PAY_DIR_FULL);
    cr_expect_eq(sh_shard_of(t, 8, PAY_DIR_MERCHANT, "m8", &c),
                 PAY_DIR_NO_SHARD);
}


Test(shard, directory_refuses_what_no_shard_could_hold)
{
    pay_dir_slot_t  t[16];

    memset(t, 0, sizeof(t));

    /* 24 characters, upper case, '-': not merchant ids */
    cr_expect_eq(pay_dir_put_merchant(t, 16, "abcdefghijklmnopqrstuvwx", 24,
                                      0), PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "Shop", 4, 0), PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "s-1", 3, 0), PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "", 0, 0), PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "abcdefghijklmnopqrstuvw", 23,
                                      PAY_SHARD_MAX), PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_merchant(t, 16, "abcdefghijklmnopqrstuvw", 23,
                                      PAY_SHARD_MAX - 1), PAY_DIR_ADDED);

    /* key ids: 12 of [A-Za-z0-9] */
    cr_expect_eq(pay_dir_put_key(t, 16, "AbCdEf01234", 11, "m1"),
                 PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_key(t, 16, "AbCdEf01234_", 12, "m1"),
                 PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12, "M1"),
                 PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_key(t, 16, SH_KEY1, 12,
                                 "abcdefghijklmnopqrstuvwx"),
                 PAY_DIR_INVALID);
    cr_expect_eq(pay_dir_put_merchant(t, 0, "m1", 2, 0), PAY_DIR_INVALID);
}
