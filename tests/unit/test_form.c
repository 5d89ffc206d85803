/*
 * Unit tests: application/x-www-form-urlencoded bodies (Stripe's), read
 * back by an independent parser (tests/form_parse.h) as Stripe reads
 * them: whatever a merchant puts in a metadata key or value arrives as
 * that one metadata entry, and adds, repeats or replaces no other
 * parameter.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <payments/dialect.h>
#include <payments/psp.h>

#include "../form_parse.h"


/* the keys: a bracket closed early, a parameter, a bracket opened */
#define FM_LOCALE_KEY  "a%5D=1&locale=fr&metadata%5Bb"
#define FM_AMOUNT_KEY  "a%5D=1&amount=99999&metadata%5Bb"
#define FM_DEST_KEY    "a%5D=1&destination=acct_evil&metadata%5Bnonce"


typedef struct {
    pay_order_t             orders[1];
    pay_checkout_t          co;
    pay_psp_registration_t  reg;
} fm_fixture_t;


static void
fm_fixture(fm_fixture_t *f, json_t *md)
{
    memset(f, 0, sizeof(*f));

    strcpy(f->orders[0].id, "po_1");
    strcpy(f->orders[0].seller, "seller_42");
    f->orders[0].amount = 1000;

    strcpy(f->co.checkout_id, "co_7f3a");
    strcpy(f->co.psp, "stripe");
    strcpy(f->co.currency, "EUR");
    f->co.exponent = 2;
    f->co.total = 1000;
    f->co.success_url = "https://shop.example/thanks";
    f->co.cancel_url = "https://shop.example/cart";
    f->co.norders = 1;
    f->co.orders = f->orders;
    f->co.metadata = md;

    f->reg.merchant_id = "m_1";
    f->reg.nonce = "m_1:co_7f3a";
    f->reg.co = &f->co;
    f->reg.return_success = "https://gw.example/r/s";
    f->reg.return_cancel = "https://gw.example/r/c";
    f->reg.expires_at = 1795341600;
}


/* the body parsed, or a failed assertion */
static void
fm_parse(const char *body, fp_form_t *form)
{
    cr_assert_not_null(body);
    cr_assert_eq(fp_parse(body, form), 0, "unreadable body: %s", body);
}


/* exactly one field a[/b[/c]], with this value */
static void
fm_one(const fp_form_t *form, const char *want, const char *s0,
    const char *s1, const char *s2)
{
    size_t       n;
    const char  *v;

    v = fp_get(form, &n, s0, s1, s2);
    cr_expect_eq(n, 1, "%s%s%s%s%s: %zu fields", s0, s1 ? "/" : "",
                 s1 ? s1 : "", s2 ? "/" : "", s2 ? s2 : "", n);

    if (n == 1 && want != NULL) {
        cr_expect_str_eq(v, want);
    }
}


/* no field whose path starts with name and is one segment long */
static void
fm_none(const fp_form_t *form, const char *name)
{
    size_t  n;

    (void) fp_get(form, &n, name, NULL, NULL);
    cr_expect_eq(n, 0, "a top-level %s was added", name);
}


Test(form, stripe_session_metadata_key_adds_no_parameter)
{
    json_t             *md;
    fp_form_t           form;
    fm_fixture_t        f;
    pay_psp_request_t   req;

    md = json_pack("{ss}", FM_LOCALE_KEY, "x");
    cr_assert_not_null(md);
    fm_fixture(&f, md);

    cr_assert_eq(pay_psp_build_registration(PAY_DIALECT_STRIPE, &f.reg, &req),
                 0);
    fm_parse(req.body, &form);

    fm_none(&form, "locale");
    fm_one(&form, "x", "metadata", FM_LOCALE_KEY, NULL);
    fm_one(&form, "m_1", "metadata", "merchant_id", NULL);
    fm_one(&form, "co_7f3a", "metadata", "checkout_id", NULL);
    /* mode, client_reference_id, success_url, cancel_url, expires_at, our
     * two keys, the merchant's one and four per line item */
    cr_expect_eq(form.n, 12, "%zu fields in %s", form.n, req.body);

    fp_free(&form);
    pay_psp_request_free(&req);
    json_decref(md);
}


Test(form, stripe_refund_metadata_key_repeats_no_amount)
{
    json_t             *md;
    fp_form_t           form;
    pay_psp_request_t   req;
    pay_psp_refund_t    r;

    md = json_pack("{ss}", FM_AMOUNT_KEY, "y");
    cr_assert_not_null(md);

    memset(&r, 0, sizeof(r));
    r.nonce = "m1:rf_01";
    r.payment_ref = "pi_3AbC";
    r.amount = 400;
    r.currency = "EUR";
    r.metadata = md;

    cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
    fm_parse(req.body, &form);

    fm_one(&form, "400", "amount", NULL, NULL);
    fm_one(&form, "pi_3AbC", "payment_intent", NULL, NULL);
    fm_one(&form, "m1:rf_01", "metadata", "nonce", NULL);
    fm_one(&form, "y", "metadata", FM_AMOUNT_KEY, NULL);
    cr_expect_eq(form.n, 4, "%zu fields in %s", form.n, req.body);

    fp_free(&form);
    pay_psp_request_free(&req);
    json_decref(md);
}


Test(form, stripe_transfer_metadata_key_adds_no_destination_nor_nonce)
{
    json_t             *md;
    fp_form_t           form;
    pay_psp_request_t   req;
    pay_psp_payout_t    p;

    md = json_pack("{ss}", FM_DEST_KEY, "m1:pyo_other");
    cr_assert_not_null(md);

    memset(&p, 0, sizeof(p));
    p.nonce = "m1:pyo_01";
    p.destination = "acct_1Seller";
    p.amount = 2500;
    p.currency = "EUR";
    p.metadata = md;

    cr_assert_eq(pay_dialect_stripe.payout(&p, &req), 0);
    fm_parse(req.body, &form);

    fm_one(&form, "acct_1Seller", "destination", NULL, NULL);
    fm_one(&form, "m1:pyo_01", "metadata", "nonce", NULL);
    fm_one(&form, "m1:pyo_other", "metadata", FM_DEST_KEY, NULL);
    cr_expect_eq(form.n, 6, "%zu fields in %s", form.n, req.body);

    fp_free(&form);
    pay_psp_request_free(&req);
    json_decref(md);
}


/* Keys and values of every byte a JSON string may hold (but NUL and the
 * brackets the API refuses in keys) arrive as they were. */
Test(form, stripe_metadata_of_any_characters_decodes_back)
{
    int                 c;
    char                key[4], val[4];
    json_t             *md;
    fp_form_t           form;
    pay_psp_request_t   req;
    pay_psp_refund_t    r;

    md = json_object();
    cr_assert_not_null(md);

    /* 48 keys at most beside nonce: 1..127 in three objects */
    for (c = 1; c < 128; c++) {
        if (c == '[' || c == ']') {
            continue;
        }

        key[0] = 'k';
        key[1] = (char) c;
        key[2] = '\0';
        val[0] = (char) c;
        val[1] = '+';
        val[2] = '\0';
        cr_assert_eq(json_object_set_new(md, key, json_string(val)), 0);

        if (json_object_size(md) < 45 && c != 127) {
            continue;
        }

        memset(&r, 0, sizeof(r));
        r.nonce = "m1:rf_01";
        r.payment_ref = "pi_3AbC";
        r.amount = 400;
        r.currency = "EUR";
        r.metadata = md;

        cr_assert_eq(pay_dialect_stripe.refund(&r, &req), 0);
        fm_parse(req.body, &form);
        cr_expect_eq(form.n, 3 + json_object_size(md), "%s", req.body);

        {
            const char  *k;
            json_t      *v;

            json_object_foreach(md, k, v) {
                fm_one(&form, json_string_value(v), "metadata", k, NULL);
            }
        }

        fp_free(&form);
        pay_psp_request_free(&req);
        json_object_clear(md);
    }

    json_decref(md);
}


/* --- the writer itself (dialect.h pay_form_encode) ----------------------- */

Test(form, our_brackets_are_structure_and_keys_are_escaped)
{
    char                           *body;
    static const pay_form_field_t   f[] = {
        { "amount", NULL, "400" },
        { "metadata", "a]=1&b[%+ \xc3\xa9", "v&w=x%y+z \xe2\x82\xac" },
        { "line_items[0][price_data][currency]", NULL, "eur" },
        { "payment_intent_data[metadata]", "nonce", "m1:co_1" },
    };

    /* a bracket inside a key cannot go: the whole body fails */
    cr_expect_null(pay_form_encode(f, 2));

    {
        pay_form_field_t  g[4];

        memcpy(g, f, sizeof(g));
        g[1].key = "a=1&b%+ \xc3\xa9";
        body = pay_form_encode(g, 4);
    }

    cr_assert_not_null(body);
    cr_expect_str_eq(body,
        "amount=400"
        "&metadata[a%3D1%26b%25%2B%20%C3%A9]=v%26w%3Dx%25y%2Bz%20%E2%82%AC"
        "&line_items[0][price_data][currency]=eur"
        "&payment_intent_data[metadata][nonce]=m1%3Aco_1");
    free(body);

    /* no field: an empty form */
    body = pay_form_encode(NULL, 0);
    cr_assert_not_null(body);
    cr_expect_str_eq(body, "");
    free(body);
}


Test(form, a_key_empty_or_with_a_bracket_fails_the_body)
{
    size_t                    i;
    pay_form_field_t          f = { "metadata", NULL, "x" };
    static const char *const  bad[] = { "", "[", "]", "a[b", "a]b", "[]" };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f.key = bad[i];
        cr_expect_null(pay_form_encode(&f, 1), "key \"%s\"", bad[i]);
    }

    f.key = "a%5Bb%5D";
    {
        char  *body = pay_form_encode(&f, 1);

        cr_assert_not_null(body);
        cr_expect_str_eq(body, "metadata[a%255Bb%255D]=x");
        free(body);
    }
}


Test(form, a_name_not_of_our_shape_fails_the_body)
{
    size_t                    i;
    char                     *body;
    pay_form_field_t          f = { NULL, NULL, "x" };
    static const char *const  bad[] = {
        "", "[a]", "a[", "a]", "a[]", "a[b]c", "a[b][", "a b", "a&b", "a=b",
        "a%5Bb%5D", "a.b", "a-b", "\xc3\xa9"
    };
    static const char *const  good[] = {
        "a", "A_9", "a[b]", "line_items[0][price_data][unit_amount]"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f.name = bad[i];
        cr_expect_null(pay_form_encode(&f, 1), "name \"%s\"", bad[i]);
    }

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        f.name = good[i];
        body = pay_form_encode(&f, 1);
        cr_expect_not_null(body, "name \"%s\"", good[i]);
        free(body);
    }

    /* a value must be there */
    f.name = "a";
    f.value = NULL;
    cr_expect_null(pay_form_encode(&f, 1));
}
