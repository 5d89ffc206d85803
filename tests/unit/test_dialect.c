/*
 * The dialect table (dialect.h): every dialect is complete, found by its
 * name only, and its webhook entry point verifies through the caller's
 * header lookup, the way the adapter calls it.
 */
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <payments/dialect.h>


Test(dialect, names_find_their_dialects_exactly)
{
    cr_expect_eq(pay_dialect_find("stripe", 6), &pay_dialect_stripe);
    cr_expect_eq(pay_dialect_find("adyen", 5), &pay_dialect_adyen);
    cr_expect_eq(pay_dialect_find("generic", 7), &pay_dialect_generic);
    cr_expect_null(pay_dialect_find("stripes", 7));
    cr_expect_null(pay_dialect_find("Stripe", 6));
    cr_expect_null(pay_dialect_find("strip", 5));
    cr_expect_null(pay_dialect_find(NULL, 0));
    cr_expect_eq(pay_dialect_get(PAY_DIALECT_ADYEN), &pay_dialect_adyen);
    cr_expect_null(pay_dialect_get(0));
}


Test(dialect, each_dialect_says_how_long_its_psp_keeps_a_key)
{
    /* Stripe documents 24 hours; Adyen at least 7 days; generic is taken
     * as the shortest of them */
    cr_expect_eq(pay_dialect_stripe.key_window, 86400);
    cr_expect_eq(pay_dialect_adyen.key_window, 7 * 86400);
    cr_expect_eq(pay_dialect_generic.key_window, 86400);
}


Test(dialect, each_dialect_says_its_session_lifetimes_and_whether_it_ends_one)
{
    /* Stripe: expires_at 30 min to 24 h ahead; Adyen and generic: in the
     * future, at most 24 h */
    cr_expect_eq(pay_dialect_stripe.session_min, 1800);
    cr_expect_eq(pay_dialect_stripe.session_max, 86400);
    cr_expect_eq(pay_dialect_adyen.session_min, 60);
    cr_expect_eq(pay_dialect_adyen.session_max, 86400);
    cr_expect_eq(pay_dialect_generic.session_min, 60);
    cr_expect_eq(pay_dialect_generic.session_max, 86400);

    /* Adyen's /sessions cannot be ended on demand */
    cr_expect(pay_dialect_stripe.session_expirable);
    cr_expect_not_null(pay_dialect_stripe.session_expire);
    cr_expect(pay_dialect_generic.session_expirable);
    cr_expect_not_null(pay_dialect_generic.session_expire);
    cr_expect_not(pay_dialect_adyen.session_expirable);
    cr_expect_null(pay_dialect_adyen.session_expire);
}


/* What the adapter relies on: nothing optional is missing. */
Test(dialect, every_entry_is_complete)
{
    size_t               i, n;
    const pay_dialect_t  *d;

    for (i = 0; pay_dialects[i] != NULL; i++) {
        d = pay_dialects[i];
        cr_expect_not_null(d->name);
        cr_expect_eq(pay_dialect_find(d->name, strlen(d->name)), d);
        cr_expect_eq(pay_dialect_get(d->id), d);
        cr_expect_not_null(strstr(d->auth_header, "%s"), "%s", d->name);
        cr_expect_not_null(d->exponent, "%s", d->name);
        cr_expect_not_null(d->registration_path, "%s", d->name);
        cr_expect_not_null(d->registration_type, "%s", d->name);
        cr_expect_not_null(d->registration_body, "%s", d->name);
        cr_expect_not_null(d->token_field, "%s", d->name);
        cr_expect_not_null(d->expires_field, "%s", d->name);
        cr_expect_not_null(d->refusal_reason, "%s", d->name);
        cr_expect_not_null(d->webhook, "%s", d->name);
        cr_expect_not_null(d->evidence_verify, "%s", d->name);
        cr_expect_not_null(d->evidence_events, "%s", d->name);
        cr_expect_not_null(d->webhook_answer, "%s", d->name);
        cr_expect_not_null(d->webhook_answer_type, "%s", d->name);
        /* the sweeper asks every PSP, and reads every answer */
        cr_expect_not_null(d->session_lookup, "%s", d->name);
        cr_expect_not_null(d->session_lookup_answer, "%s", d->name);
        /* refunds and pay-outs, and their answers */
        cr_expect_not_null(d->refund, "%s", d->name);
        cr_expect_not_null(d->payout, "%s", d->name);
        cr_expect_not_null(d->op_answer, "%s", d->name);
        cr_expect_not_null(d->op_ref_fields[0], "%s", d->name);
        /* pay-outs to an API of their own: the PSP takes its URL and key
         * (transfers_url=, transfers_secret_file=), and only then */
        cr_expect_eq(d->payout_api == PAY_PSP_API_TRANSFERS,
                     (d->params & PAY_PSP_P_TRANSFERS) != 0, "%s", d->name);
        cr_expect_eq(d->required & PAY_PSP_P_TRANSFERS, 0u, "%s", d->name);
        /* a way to verify webhooks is required, whichever it is */
        cr_expect(d->required & (PAY_PSP_P_WEBHOOK_SECRET
                                 | PAY_PSP_P_WEBHOOK_KEY), "%s", d->name);
        cr_expect_eq(d->required & ~d->params, 0u, "%s", d->name);
    }

    n = i;
    cr_expect_eq(n, 3);
}


Test(dialect, stripe_keys_must_match_the_mode)
{
    const char  *(*check)(const char *, size_t, int);

    check = pay_dialect_stripe.credential_check;
    cr_assert_not_null(check);
    cr_expect_null(check("sk_test_abc", 11, 0));
    cr_expect_null(check("sk_live_abc", 11, 1));
    cr_expect_null(check("rk_live_abc", 11, 1));
    cr_expect_not_null(check("sk_test_abc", 11, 1));
    cr_expect_not_null(check("rk_test_abc", 11, 1));
    cr_expect_not_null(check("sk_live_abc", 11, 0));
    /* an unknown kind of key: no rule */
    cr_expect_null(check("xk_abc_0000", 11, 1));
    /* the message never quotes the key */
    cr_expect_null(strstr(check("sk_live_SECRET", 14, 0), "SECRET"));
}


Test(dialect, adyen_decodes_its_hmac_key_from_hex)
{
    unsigned char  out[64];
    size_t         len;
    const char    *why;
    const char     hex[] =
        "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

    cr_assert_eq(pay_dialect_adyen.secret_decode((const unsigned char *) hex,
                                                 64, out, &len, &why), 0);
    cr_expect_eq(len, 32);
    cr_expect_eq(out[0], 0x44);
    cr_expect_eq(pay_dialect_adyen.secret_decode((const unsigned char *)
                                                 "abc", 3, out, &len, &why),
                 -1);
    cr_expect_not_null(why);
}


/* --- the webhook entry point, with a header lookup -------------------- */

typedef struct {
    const char  *name;
    const char  *value;
    unsigned     count;
} hdr_t;


static const char *
hdr_lookup(void *data, const char *name, size_t *len, unsigned *count)
{
    hdr_t  *h = data;

    if (h->name == NULL || strcasecmp(name, h->name) != 0) {
        *count = 0;
        return NULL;
    }

    *len = strlen(h->value);
    *count = h->count;

    return h->value;
}


static char *
stripe_header(const char *secret, long long t, const char *body)
{
    static char     out[256];
    char            payload[2048], hex[65];
    unsigned char   mac[32];
    unsigned int    n, i;

    snprintf(payload, sizeof(payload), "%lld.%s", t, body);
    HMAC(EVP_sha256(), secret, (int) strlen(secret),
         (unsigned char *) payload, strlen(payload), mac, &n);
    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", mac[i]);
    }

    snprintf(out, sizeof(out), "t=%lld,v1=%s", t, hex);
    return out;
}


static const char  st_body[] =
    "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
    "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_1\","
    "\"client_reference_id\":\"m1:co_1\",\"amount_total\":1500,"
    "\"currency\":\"usd\",\"payment_status\":\"paid\"}}}";


Test(dialect, stripe_webhook_verifies_reads_and_checks_livemode)
{
    size_t              n;
    hdr_t               h;
    pay_secret_t        sec;
    pay_event_t         ev[2];
    pay_wh_verdict_t    v;
    pay_webhook_conf_t  conf;
    const char          secret[] = "whsec_dialect_test";

    memset(&conf, 0, sizeof(conf));
    sec.data = (const unsigned char *) secret;
    sec.len = strlen(secret);
    conf.secrets = &sec;
    conf.nsecrets = 1;
    conf.tolerance = 300;

    h.name = "Stripe-Signature";
    h.value = stripe_header(secret, 1700000000LL, st_body);
    h.count = 1;

    pay_dialect_stripe.webhook(&conf, hdr_lookup, &h, st_body,
                               strlen(st_body), 1700000000LL, ev, 2, &n, &v);
    cr_assert_eq(v.err, PAY_ERR_NONE, "%s", v.why);
    cr_expect_eq(n, 1);
    cr_expect_eq(ev[0].kind, PAY_EVT_SUCCEEDED);
    cr_expect_eq(ev[0].amount, 1500);

    /* a test event for a live PSP */
    conf.live = 1;
    pay_dialect_stripe.webhook(&conf, hdr_lookup, &h, st_body,
                               strlen(st_body), 1700000000LL, ev, 2, &n, &v);
    cr_expect_eq(v.err, PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(v.reason, PAY_WH_LIVEMODE);
    cr_expect_eq(n, 0);
    conf.live = 0;

    /* stale, twice the header, none */
    pay_dialect_stripe.webhook(&conf, hdr_lookup, &h, st_body,
                               strlen(st_body), 1700000301LL, ev, 2, &n, &v);
    cr_expect_eq(v.reason, PAY_WH_STALE);
    h.count = 2;
    pay_dialect_stripe.webhook(&conf, hdr_lookup, &h, st_body,
                               strlen(st_body), 1700000000LL, ev, 2, &n, &v);
    cr_expect_eq(v.reason, PAY_WH_BAD_SIGNATURE);
    h.name = NULL;
    pay_dialect_stripe.webhook(&conf, hdr_lookup, &h, st_body,
                               strlen(st_body), 1700000000LL, ev, 2, &n, &v);
    cr_expect_eq(v.err, PAY_ERR_BAD_SIGNATURE);
    cr_expect_eq(n, 0);
}


Test(dialect, generic_webhook_needs_its_header)
{
    size_t              n;
    hdr_t               h;
    pay_event_t         ev[1];
    pay_wh_verdict_t    v;
    pay_webhook_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.header = "Payments-Verification";
    h.name = NULL;

    pay_dialect_generic.webhook(&conf, hdr_lookup, &h, "{}", 2, 0, ev, 1,
                                &n, &v);
    cr_expect_eq(v.err, PAY_ERR_BAD_SIGNATURE);
    cr_expect_str_eq(v.why, "Payments-Verification");
    cr_expect_eq(n, 0);
}


/*
 * A claim is sent again under its key only while the PSP surely keeps
 * the key when the request reaches it: the window less the attempts'
 * bound and PAY_KEY_MARGIN.
 */
Test(dialect, a_claim_is_sent_again_only_well_inside_the_key_window)
{
    const pay_dialect_t  *s = &pay_dialect_stripe;

    cr_expect_eq(s->key_window, 86400);
    cr_expect(pay_dialect_key_kept(s, 0, 10));
    cr_expect(pay_dialect_key_kept(s, 86400 - 10 - PAY_KEY_MARGIN, 10));
    cr_expect(!pay_dialect_key_kept(s, 86400 - 10 - PAY_KEY_MARGIN + 1, 10));
    cr_expect(!pay_dialect_key_kept(s, 86399, 10));
    cr_expect(!pay_dialect_key_kept(s, 86400, 0));
    cr_expect(!pay_dialect_key_kept(s, -1, 10));
    /* attempts bound longer than the window: never */
    cr_expect(!pay_dialect_key_kept(s, 0, 86401));
    cr_expect(!pay_dialect_key_kept(NULL, 0, 0));
    cr_expect(pay_dialect_key_kept(&pay_dialect_adyen, 6 * 86400, 60));
}


Test(dialect, a_second_requests_key_fits_the_psps_longest,
     .description = "a charge's hosted session goes under \"<nonce>:"
                    "authenticate\"; a nonce may be 64 characters and "
                    "Adyen takes keys of at most 64: there the key is the "
                    "nonce's digest, the same at every retry")
{
    char         a[128], b[128], c[128];
    const char  *nonce = "m_0000000_0000_00000000:"
                         "co_0123456789012345678901234567890123456";

    cr_assert_eq(strlen(nonce), 64);

    cr_assert_eq(pay_dialect_subkey(&pay_dialect_stripe, nonce,
                                    "authenticate", a, sizeof(a)), 0);
    cr_expect_str_eq(a, "m_0000000_0000_00000000:"
                        "co_0123456789012345678901234567890123456"
                        ":authenticate");

    cr_assert_eq(pay_dialect_subkey(&pay_dialect_adyen, nonce,
                                    "authenticate", a, sizeof(a)), 0);
    cr_expect_eq(strlen(a), 64, "%s", a);
    cr_expect_eq(strncmp(a, "authenticate:", 13), 0, "%s", a);
    cr_assert_eq(pay_dialect_subkey(&pay_dialect_adyen, nonce,
                                    "authenticate", b, sizeof(b)), 0);
    cr_expect_str_eq(a, b, "not the same at every retry");

    /* another nonce, another key; a short one keeps its plain form */
    cr_assert_eq(pay_dialect_subkey(&pay_dialect_adyen,
                                    "m_0000000_0000_00000000:"
                                    "co_0123456789012345678901234567890123457",
                                    "authenticate", c, sizeof(c)), 0);
    cr_expect_str_neq(a, c);
    cr_assert_eq(pay_dialect_subkey(&pay_dialect_adyen, "m_1:co_1",
                                    "authenticate", c, sizeof(c)), 0);
    cr_expect_str_eq(c, "m_1:co_1:authenticate");

    /* no room: refused, never cut */
    cr_expect_eq(pay_dialect_subkey(&pay_dialect_adyen, nonce,
                                    "authenticate", c, 20), -1);
}
