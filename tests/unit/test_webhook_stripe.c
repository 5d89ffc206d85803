/*
 * Unit tests: Stripe webhooks (src/webhook_stripe.c) against PSP_FACTS.md,
 * one rule per test.  Signatures other than the documented vector are made
 * here with OpenSSL's HMAC so that each hostile header is valid except for
 * the one thing its test is about.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/webhook.h>


#define WS_T    1700000000LL
#define WS_TOL  300

static const char  ws_secret[] = "whsec_test_secret_123";
static const char  ws_other[] = "whsec_other_secret_456";
static const char  ws_vector[] =
    "67cdb9dd841bf9c50df01f0b8d50e5f88e8952d0fc1b525ec972e3444bb838d4";


static pay_secret_t
ws_sec(const char *s)
{
    pay_secret_t  sec;

    sec.data = (const unsigned char *) s;
    sec.len = strlen(s);

    return sec;
}


/* lower-case hex HMAC-SHA256(secret, t "." body) into out[65] */
static void
ws_sign(const char *secret, long long t, const char *body, char *out)
{
    char           payload[4096];
    unsigned char  mac[32];
    unsigned int   len, i;

    snprintf(payload, sizeof(payload), "%lld.%s", t, body);
    cr_assert_not_null(HMAC(EVP_sha256(), secret, (int) strlen(secret),
                            (unsigned char *) payload, strlen(payload), mac,
                            &len));

    for (i = 0; i < 32; i++) {
        sprintf(out + 2 * i, "%02x", mac[i]);
    }
}


static pay_err_e
ws_verify(const char *header, const char *body, const char *secret,
    long long now)
{
    pay_secret_t  sec = ws_sec(secret);

    return pay_stripe_verify(header, strlen(header), body, strlen(body),
                             &sec, 1, now, WS_TOL);
}


Test(webhook_stripe, psp_facts_vector_verifies)
{
    char  h[128], mine[65];

    ws_sign(ws_secret, WS_T, "hello", mine);
    cr_assert_str_eq(mine, ws_vector);

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T), PAY_ERR_NONE);
}


Test(webhook_stripe, tampered_body_is_bad_signature)
{
    char  h[128];

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hellO", ws_secret, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(ws_verify(h, "hello ", ws_secret, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(ws_verify(h, "", ws_secret, WS_T), PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, tampered_timestamp_is_bad_signature)
{
    char  h[128];

    /* a replay with a fresh t: the signature covers t */
    snprintf(h, sizeof(h), "t=1700000100,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T + 100),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, timestamp_301_s_old_is_stale)
{
    char  h[128];

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T + 301),
                 PAY_ERR_STALE_WEBHOOK);
}


Test(webhook_stripe, timestamp_301_s_in_the_future_is_stale)
{
    char  h[128];

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T - 301),
                 PAY_ERR_STALE_WEBHOOK);
}


Test(webhook_stripe, timestamp_exactly_300_s_either_way_passes)
{
    char  h[128];

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T + 300), PAY_ERR_NONE);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T - 300), PAY_ERR_NONE);
}


Test(webhook_stripe, bad_signature_wins_over_staleness)
{
    char  h[128];

    /* an old forged request says "bad", never "stale" */
    snprintf(h, sizeof(h), "t=1700000000,v1=%064d", 0);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T + 10000),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, one_valid_v1_among_several_passes)
{
    char  h[512];

    snprintf(h, sizeof(h), "t=1700000000,v1=%064d,v1=%s,v1=%s", 0,
             "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
             ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T), PAY_ERR_NONE);
}


Test(webhook_stripe, only_v0_is_bad_signature)
{
    char  h[128];

    /* the right MAC under the wrong scheme name does not count */
    snprintf(h, sizeof(h), "t=1700000000,v0=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, unknown_schemes_are_ignored)
{
    char  h[256];

    snprintf(h, sizeof(h), "t=1700000000,v2=abc,v0=%064d,v1=%s,x=1", 0,
             ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T), PAY_ERR_NONE);

    snprintf(h, sizeof(h), "t=1700000000,v2=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, secret_rotation_accepts_either_secret)
{
    char          h[256], sig[65];
    pay_secret_t  secs[2];

    secs[0] = ws_sec(ws_other);
    secs[1] = ws_sec(ws_secret);

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(pay_stripe_verify(h, strlen(h), "hello", 5, secs, 2, WS_T,
                                   WS_TOL), PAY_ERR_NONE);

    ws_sign(ws_other, WS_T, "hello", sig);
    snprintf(h, sizeof(h), "t=1700000000,v1=%s", sig);
    cr_assert_eq(pay_stripe_verify(h, strlen(h), "hello", 5, secs, 2, WS_T,
                                   WS_TOL), PAY_ERR_NONE);

    /* and a signature by neither configured secret is refused */
    cr_assert_eq(pay_stripe_verify(h, strlen(h), "hello", 5, &secs[1], 1,
                                   WS_T, WS_TOL), PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, wrong_secret_is_bad_signature)
{
    char  h[128];

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_other, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, upper_case_hex_is_bad_signature)
{
    char    h[128];
    size_t  i;

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);
    for (i = 16; h[i]; i++) {
        if (h[i] >= 'a' && h[i] <= 'f') {
            h[i] = (char) (h[i] - 'a' + 'A');
        }
    }

    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, malformed_headers_are_bad_signature)
{
    char         h[256];
    size_t       i;
    const char  *pre[][2] = {
        { "v1=", "" },                          /* no t */
        { "t=,v1=", "" },                       /* empty t */
        { "t=17000000x0,v1=", "" },             /* t not decimal */
        { "t=-1700000000,v1=", "" },            /* t signed */
        { "t= 1700000000,v1=", "" },            /* t with a space */
        { "t=1700000000,t=1700000000,v1=", "" },    /* t twice */
        { "t=1700000000000000,v1=", "" },       /* t absurdly long */
        { "t=01700000000,v1=", "" },            /* t with a leading zero:
                                                   not the text signed */
        { "t=253402300800,v1=", "" },           /* t past 9999 */
        { "t=1700000000;v1=", "" },             /* wrong separator */
        { "t=1700000000,,v1=", "" },            /* an empty item */
        { "t=1700000000,v1", "" },              /* no '=' */
        { "t=1700000000,v1=", "0" },            /* 65 hex digits */
        { "t=1700000000,v1= ", "" },            /* space in v1 */
    };

    for (i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
        snprintf(h, sizeof(h), "%s%s%s", pre[i][0], ws_vector, pre[i][1]);
        cr_expect_eq(ws_verify(h, "hello", ws_secret, WS_T),
                     PAY_ERR_BAD_SIGNATURE, "header %zu: %s", i, h);
    }

    /* a truncated v1 */
    snprintf(h, sizeof(h), "t=1700000000,v1=%.63s", ws_vector);
    cr_assert_eq(ws_verify(h, "hello", ws_secret, WS_T),
                 PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, empty_header_or_no_secret_is_bad_signature)
{
    char          h[128];
    pay_secret_t  empty = { (const unsigned char *) "", 0 };

    snprintf(h, sizeof(h), "t=1700000000,v1=%s", ws_vector);

    cr_assert_eq(pay_stripe_verify("", 0, "hello", 5, &empty, 1, WS_T,
                                   WS_TOL), PAY_ERR_BAD_SIGNATURE);
    cr_assert_eq(pay_stripe_verify(h, strlen(h), "hello", 5, NULL, 0, WS_T,
                                   WS_TOL), PAY_ERR_BAD_SIGNATURE);
    /* an empty secret is not a key that verifies everything */
    cr_assert_eq(pay_stripe_verify(h, strlen(h), "hello", 5, &empty, 1, WS_T,
                                   WS_TOL), PAY_ERR_BAD_SIGNATURE);
}


Test(webhook_stripe, header_over_8k_is_bad_signature)
{
    char          *h;
    size_t         n;
    pay_secret_t   sec = ws_sec(ws_secret);

    /* a valid header padded with ignored v0 items past 8 KiB */
    h = malloc(9000);
    cr_assert_not_null(h);
    n = (size_t) snprintf(h, 9000, "t=1700000000,v1=%s", ws_vector);
    while (n + 5 < 8500) {
        memcpy(h + n, ",v0=0", 5);
        n += 5;
    }

    cr_assert_eq(pay_stripe_verify(h, n, "hello", 5, &sec, 1, WS_T, WS_TOL),
                 PAY_ERR_BAD_SIGNATURE);
    free(h);
}


Test(webhook_stripe, v1_count_is_bounded)
{
    char          h[2048];
    size_t        n, i;
    pay_secret_t  sec = ws_sec(ws_secret);

    /* eight decoys first: the valid ninth is past the bound and unread */
    n = (size_t) snprintf(h, sizeof(h), "t=1700000000");
    for (i = 0; i < 8; i++) {
        n += (size_t) snprintf(h + n, sizeof(h) - n, ",v1=%064zu", i);
    }

    n += (size_t) snprintf(h + n, sizeof(h) - n, ",v1=%s", ws_vector);

    cr_assert_eq(pay_stripe_verify(h, n, "hello", 5, &sec, 1, WS_T, WS_TOL),
                 PAY_ERR_BAD_SIGNATURE);
}


/* events */

static const char  ws_completed[] =
    "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
    "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_test_a1\","
    "\"client_reference_id\":\"m1:co_1\",\"amount_total\":1999,"
    "\"currency\":\"eur\",\"payment_status\":\"%s\"}}}";


static int
ws_parse_type(const char *type, pay_event_t *ev)
{
    char  body[512];

    snprintf(body, sizeof(body),
             "{\"id\":\"evt_2\",\"type\":\"%s\",\"livemode\":true,"
             "\"data\":{\"object\":{\"id\":\"cs_live_b\"}}}", type);

    return pay_stripe_parse_event(body, strlen(body), ev);
}


Test(webhook_stripe, completed_paid_is_succeeded_with_its_fields)
{
    char         body[512];
    pay_event_t  ev;

    snprintf(body, sizeof(body), ws_completed, "paid");
    cr_assert_eq(pay_stripe_parse_event(body, strlen(body), &ev), 0);

    cr_assert_str_eq(ev.event_id, "evt_1");
    cr_assert_str_eq(ev.type, "checkout.session.completed");
    cr_assert_eq(ev.kind, PAY_EVT_SUCCEEDED);
    /* paid: captured, whatever mode the session was asked for */
    cr_assert_eq(ev.captured, 1);
    cr_assert_str_eq(ev.token, "cs_test_a1");
    cr_assert_str_eq(ev.reference, "m1:co_1");
    cr_assert_eq(ev.amount, 1999);
    cr_assert_str_eq(ev.currency, "EUR");
    cr_assert_eq(ev.livemode, 0);
}


/* amount_total is in Stripe's units: ISK has two decimals at Stripe (0
 * in ISO), MGA none (2 in ISO).  The event carries ISO minor units. */
Test(webhook_stripe, amount_total_is_read_in_stripes_units)
{
    static const struct {
        const char  *currency;
        long long    stripe;
        int64_t      iso;
    } cases[] = {
        { "isk", 50000, 500 },      /* 500 ISK */
        { "isk", 50050, PAY_EVT_AMOUNT_INEXACT },
        { "mga", 1000, 100000 },    /* 1000 MGA = 1000.00 in ISO */
        { "jpy", 500, 500 },
        { "usd", 1999, 1999 },
        { "kwd", 1250, 1250 },
        { "xts", 100, PAY_EVT_AMOUNT_INEXACT },  /* not a currency */
    };
    char         body[512];
    size_t       i;
    pay_event_t  ev;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
                 "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
                 "\"amount_total\":%lld,\"currency\":\"%s\","
                 "\"payment_status\":\"paid\"}}}",
                 cases[i].stripe, cases[i].currency);
        cr_assert_eq(pay_stripe_parse_event(body, strlen(body), &ev), 0);
        cr_expect_eq(ev.amount, cases[i].iso, "%s %lld: %lld",
                     cases[i].currency, cases[i].stripe,
                     (long long) ev.amount);
    }

    /* no currency: the amount cannot be read */
    snprintf(body, sizeof(body),
             "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
             "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
             "\"amount_total\":100,\"payment_status\":\"paid\"}}}");
    cr_assert_eq(pay_stripe_parse_event(body, strlen(body), &ev), 0);
    cr_expect_eq(ev.amount, PAY_EVT_AMOUNT_ABSENT);
}


Test(webhook_stripe, completed_unpaid_is_pending)
{
    char         body[512];
    pay_event_t  ev;

    snprintf(body, sizeof(body), ws_completed, "unpaid");
    cr_assert_eq(pay_stripe_parse_event(body, strlen(body), &ev), 0);
    cr_assert_eq(ev.kind, PAY_EVT_PENDING);
    cr_assert_eq(ev.captured, 0);
}


Test(webhook_stripe, async_payment_succeeded_is_succeeded)
{
    pay_event_t  ev;

    cr_assert_eq(ws_parse_type("checkout.session.async_payment_succeeded",
                               &ev), 0);
    cr_assert_eq(ev.kind, PAY_EVT_SUCCEEDED);
    cr_assert_eq(ev.captured, 1);
    cr_assert_eq(ev.livemode, 1);
}


Test(webhook_stripe, async_payment_failed_is_failed)
{
    pay_event_t  ev;

    cr_assert_eq(ws_parse_type("checkout.session.async_payment_failed", &ev),
                 0);
    cr_assert_eq(ev.kind, PAY_EVT_FAILED);
}


Test(webhook_stripe, expired_is_failed)
{
    pay_event_t  ev;

    cr_assert_eq(ws_parse_type("checkout.session.expired", &ev), 0);
    cr_assert_eq(ev.kind, PAY_EVT_FAILED);
}


Test(webhook_stripe, other_types_are_ignored)
{
    pay_event_t  ev;

    cr_assert_eq(ws_parse_type("payment_intent.succeeded", &ev), 0);
    cr_assert_eq(ev.kind, PAY_EVT_IGNORED);
}


Test(webhook_stripe, duplicate_keys_are_refused)
{
    const char   body[] =
        "{\"id\":\"evt_1\",\"type\":\"checkout.session.expired\","
        "\"type\":\"checkout.session.completed\","
        "\"data\":{\"object\":{\"id\":\"cs_1\"}}}";
    pay_event_t  ev;

    cr_assert_eq(pay_stripe_parse_event(body, strlen(body), &ev), -1);
}


Test(webhook_stripe, non_events_are_refused)
{
    size_t       i;
    pay_event_t  ev;
    const char  *bodies[] = {
        "",
        "[]",
        "{}",
        "{\"id\":\"evt_1\",\"type\":\"x\"}",                  /* no data */
        "{\"id\":1,\"type\":\"x\",\"data\":{\"object\":{}}}",
        "{\"id\":\"evt_1\",\"type\":[],\"data\":{\"object\":{}}}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"data\":{\"object\":[]}}",
    };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cr_expect_eq(pay_stripe_parse_event(bodies[i], strlen(bodies[i]),
                                            &ev), -1, "body %zu", i);
    }
}
