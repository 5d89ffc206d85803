/*
 * End to end: a checkout's metadata (API.md), per dialect: kept and
 * answered (201, GET), sent to the PSP as its API takes it (the mock keeps
 * what it was sent: GET /_control/sessions/{id}), carried in the
 * notifications; refused over each limit with nothing stored; part of the
 * Idempotency-Key's fingerprint.
 */

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_receiver.h"


#define ADYEN_PSP    "mock_adyen"
#define GENERIC_PSP  "mock_generic"


TestSuite(metadata, .timeout = E2E_TIMEOUT);


/* n keys "kNN" with values of vlen 'v's, plus "order_ref": "A-17" */
static json_t *
meta_of(size_t n, size_t vlen)
{
    char    *val;
    size_t   i;
    json_t  *md;

    md = json_pack("{s:s}", "order_ref", "A-17");
    val = calloc(1, vlen + 1);
    cr_assert(md != NULL && val != NULL);
    memset(val, 'v', vlen);

    for (i = 1; i < n; i++) {
        json_object_set_new(md, str_printf("k%02zu", i), json_string(val));
    }

    free(val);

    return md;
}


/* GET /_control/sessions/{token}: the session as the mock keeps it */
static json_t *
mock_session(const char *token)
{
    resp_t  *r;

    r = http_get(mock_url(str_printf("/_control/sessions/%s", token)));
    cr_assert_eq(r->status, 200, "mock session %s: %ld %s", token, r->status,
                 r->body);

    return resp_json(r);
}


typedef struct {
    merchant_t   m;
    char        *co;
    json_t      *created;       /* the 201's body */
    json_t      *session;       /* the mock's */
} reg_t;


static void
register_meta(reg_t *g, const char *psp, json_t *md)
{
    json_t  *body;
    resp_t  *r;

    merchant_new(&g->m);
    g->co = uid("co");

    body = checkout_new(g->co, 2);
    json_object_set_new(body, "psp", json_string(psp));
    json_object_set(body, "metadata", md);

    r = register_ok(&g->m, uid("key"), dump(body));
    g->created = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(g->created, "status")),
                     "EXECUTING", "%s", r->body);
    g->session = mock_session(json_string_value(
                                  json_object_get(g->created, "psp_token")));
}


/* the 201 and GET /v1/checkouts/{id} show md as it was sent */
static void
expect_kept(const reg_t *g, const json_t *md)
{
    resp_t  *r;

    cr_expect(json_equal(json_object_get(g->created, "metadata"),
                         (json_t *) md), "201: %s", dump(g->created));

    r = api_get(&g->m, str_printf("/v1/checkouts/%s", g->co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect(json_equal(json_object_get(resp_json(r), "metadata"),
                         (json_t *) md), "GET: %s", r->body);
}


/* --- round trips --------------------------------------------------------- */

Test(metadata, stripe_round_trip)
{
    reg_t    g;
    json_t  *md, *sent, *want;

    md = json_pack("{s:s, s:s, s:s}", "order_ref", "A-17",
                   "note", "gift wrap \xc3\xa9t\xc3\xa9", "empty", "");
    register_meta(&g, env("PAY_TEST_PSP"), md);
    expect_kept(&g, md);

    /* the session's metadata: the merchant's beside the gateway's two
     * (an empty value is Stripe's "unset": not kept) */
    sent = json_object_get(g.session, "metadata");
    want = json_pack("{s:s, s:s, s:s, s:s}", "merchant_id", g.m.id,
                     "checkout_id", g.co, "order_ref", "A-17",
                     "note", "gift wrap \xc3\xa9t\xc3\xa9");
    cr_expect(json_equal(sent, want), "stripe got %s", dump(sent));
}


Test(metadata, stripe_over_its_50_keys_sends_none)
{
    reg_t    g;
    json_t  *md, *sent;

    /* 49 of the merchant's and the gateway's two: more than Stripe takes */
    md = meta_of(49, 3);
    register_meta(&g, env("PAY_TEST_PSP"), md);
    expect_kept(&g, md);

    sent = json_object_get(g.session, "metadata");
    cr_expect_eq(json_object_size(sent), 2, "stripe got %s", dump(sent));
    cr_expect_str_eq(json_string_value(json_object_get(sent, "checkout_id")),
                     g.co);

    /* a merchant key named like the gateway's: none of it either */
    md = json_pack("{s:s, s:s}", "checkout_id", "mine", "order_ref", "A-17");
    register_meta(&g, env("PAY_TEST_PSP"), md);
    expect_kept(&g, md);

    sent = json_object_get(g.session, "metadata");
    cr_expect_str_eq(json_string_value(json_object_get(sent, "checkout_id")),
                     g.co, "stripe got %s", dump(sent));
    cr_expect_null(json_object_get(sent, "order_ref"));
}


Test(metadata, adyen_round_trip)
{
    char    *e80;
    reg_t    g;
    size_t   i;
    json_t  *md;

    md = meta_of(20, 80);
    register_meta(&g, ADYEN_PSP, md);
    expect_kept(&g, md);
    cr_expect(json_equal(json_object_get(g.session, "metadata"), md),
              "adyen got %s", dump(json_object_get(g.session, "metadata")));

    /* Adyen counts characters: 80 two-byte ones fit */
    e80 = calloc(1, 161);
    cr_assert_not_null(e80);

    for (i = 0; i < 80; i++) {
        memcpy(e80 + 2 * i, "\xc3\xa9", 2);
    }

    md = json_pack("{s:s}", "\xc3\xa9t\xc3\xa9", e80);
    free(e80);
    register_meta(&g, ADYEN_PSP, md);
    expect_kept(&g, md);
    cr_expect(json_equal(json_object_get(g.session, "metadata"), md),
              "adyen got %s", dump(json_object_get(g.session, "metadata")));
}


/* Beyond Adyen's 20 entries, 20-character keys or 80-character values
 * Adyen would refuse the session: the checkout goes through without. */
Test(metadata, adyen_over_its_limits_sends_none)
{
    reg_t    g;
    json_t  *md;

    md = meta_of(21, 1);
    register_meta(&g, ADYEN_PSP, md);
    expect_kept(&g, md);
    cr_expect_null(json_object_get(g.session, "metadata"), "adyen got %s",
                   dump(g.session));

    md = meta_of(2, 81);
    register_meta(&g, ADYEN_PSP, md);
    expect_kept(&g, md);
    cr_expect_null(json_object_get(g.session, "metadata"));

    md = json_pack("{s:s}", "a_key_of_21_character", "x");
    register_meta(&g, ADYEN_PSP, md);
    expect_kept(&g, md);
    cr_expect_null(json_object_get(g.session, "metadata"));
}


Test(metadata, generic_round_trip)
{
    reg_t    g;
    json_t  *md;

    md = meta_of(50, 500);
    register_meta(&g, GENERIC_PSP, md);
    expect_kept(&g, md);
    cr_expect(json_equal(json_object_get(g.session, "metadata"), md),
              "generic got %s", dump(json_object_get(g.session, "metadata")));
}


Test(metadata, none_is_an_empty_object)
{
    char        *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    r = register_ok(&m, uid("key"), body_for(co));
    cr_expect_eq(json_object_size(json_object_get(resp_json(r), "metadata")),
                 0, "%s", r->body);
    cr_expect(json_is_object(json_object_get(resp_json(r), "metadata")));
}


/* --- refusals ------------------------------------------------------------ */

static void
expect_refused(json_t *md, const char *code, const char *detail)
{
    char        *co, *stored;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;
    const char  *params[2];

    merchant_new(&m);
    co = uid("co");
    body = checkout_new(co, 1);
    json_object_set_new(body, "metadata", md);

    r = api_post(&m, uid("key"), dump(body));
    expect_problem(r, 400, code);

    if (detail != NULL) {
        cr_expect_not_null(strstr(json_string_value(
                               json_object_get(resp_json(r), "detail")),
                               detail), "%s", r->body);
    }

    cr_expect_null(strstr(r->body, "4111"), "%s", r->body);

    params[0] = m.id;
    params[1] = co;
    stored = db_scalar("SELECT (SELECT count(*) FROM checkouts "
                       "         WHERE merchant_id = $1 AND checkout_id = $2)"
                       "     + (SELECT count(*) FROM idempotency_keys "
                       "         WHERE merchant_id = $1)", 2, params);
    cr_expect_str_eq(stored, "0", "stored after a refusal");
}


Test(metadata, refused_over_each_limit_nothing_stored)
{
    expect_refused(meta_of(51, 1), "invalid_request", "at most 50 keys");
    expect_refused(json_pack("{s:s}",
                             "a_key_of_forty_one_characters_is_too_long", "x"),
                   "invalid_request", "at most 40 characters");
    expect_refused(meta_of(2, 501), "invalid_request",
                   "at most 500 characters");
    expect_refused(json_pack("{s:s}", "", "x"), "invalid_request",
                   "must not be empty");
    expect_refused(json_pack("{s:i}", "n", 7), "invalid_request",
                   "values must be strings");
    expect_refused(json_pack("{s:b}", "n", 1), "invalid_request",
                   "values must be strings");
    expect_refused(json_pack("[s]", "x"), "invalid_request",
                   "metadata must be an object");
    expect_refused(json_pack("{s:s}", "a[b]", "x"), "invalid_request", "'['");
}


/* A key with a form's syntax would have been written into Stripe's form
 * names: the key carried a top-level locale=fr into the session */
Test(metadata, form_syntax_in_keys_refused_nothing_stored)
{
    expect_refused(json_pack("{s:s}", "a%5D=1&locale=fr&metadata%5Bb", "x"),
                   "invalid_request", "metadata keys must not contain");
    expect_refused(json_pack("{s:s}", "a&b", "x"), "invalid_request",
                   "metadata keys must not contain");
    expect_refused(json_pack("{s:s}", "a=b", "x"), "invalid_request",
                   "metadata keys must not contain");
    expect_refused(json_pack("{s:s}", "100%", "x"), "invalid_request",
                   "metadata keys must not contain");
    expect_refused(json_pack("{s:s}", "line\nfeed", "x"), "invalid_request",
                   "metadata keys must not contain");
}


/* every ASCII mark the API allows in a key, a space and two non-ASCII
 * characters, in 35 bytes (the mock takes Stripe's 40) */
#define ODD_KEY  "a b+c/d:#?!~.*'(),;@$|\"\\^`{}<>\xc3\xa9\xe2\x82\xac"
#define ODD_VAL  "v&w=x%y+z \xc3\xa9 metadata[nonce]=1"


Test(metadata, stripe_unusual_key_arrives_intact)
{
    reg_t    g;
    json_t  *md, *sent, *want;

    md = json_pack("{s:s}", ODD_KEY, ODD_VAL);
    register_meta(&g, env("PAY_TEST_PSP"), md);
    expect_kept(&g, md);

    sent = json_object_get(g.session, "metadata");
    want = json_pack("{s:s, s:s, s:s}", "merchant_id", g.m.id,
                     "checkout_id", g.co, ODD_KEY, ODD_VAL);
    cr_expect(json_equal(sent, want), "stripe got %s", dump(sent));
    cr_expect_null(json_object_get(g.session, "locale"), "%s",
                   dump(g.session));
}


Test(metadata, card_data_refused_never_stored)
{
    expect_refused(json_pack("{s:s}", "note", "4111 1111 1111 1111"),
                   "card_data_forbidden", NULL);
    expect_refused(json_pack("{s:s}", "4111111111111111", "x"),
                   "card_data_forbidden", NULL);
}


/* the card rule reads a card number however it is spelt: any short run
 * of marks between its groups, Unicode digits as the digits they are */
Test(metadata, card_numbers_in_other_spellings_refused)
{
    size_t                    i;
    static const char *const  spelt[] = {
        "4111.1111.1111.1111",
        "4111  1111  1111  1111",
        "4111\xc2\xa0" "1111\xc2\xa0" "1111\xc2\xa0" "1111",
        "4111/1111/1111/1111",
        "4111_1111_1111_1111",
        "\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
        "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91",
    };

    for (i = 0; i < sizeof(spelt) / sizeof(spelt[0]); i++) {
        expect_refused(json_pack("{s:s}", "note", spelt[i]),
                       "card_data_forbidden", NULL);
    }

    /* as a key too */
    expect_refused(json_pack("{s:s}", "4111.1111.1111.1111", "x"),
                   "card_data_forbidden", NULL);
}


/* --- the fingerprint ----------------------------------------------------- */

Test(metadata, same_key_other_metadata_is_reused)
{
    char        *co, *key;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co = uid("co");
    key = uid("key");

    body = checkout_new(co, 1);
    json_object_set_new(body, "metadata", json_pack("{s:s}", "k", "1"));
    (void) register_ok(&m, key, dump(body));

    json_object_set_new(body, "metadata", json_pack("{s:s}", "k", "2"));
    r = api_post(&m, key, dump(body));
    expect_problem(r, 422, "idempotency_key_reused");

    /* the same metadata is the same request: its answer again */
    json_object_set_new(body, "metadata", json_pack("{s:s}", "k", "1"));
    r = api_post(&m, key, dump(body));
    cr_expect_eq(r->status, 201, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(resp_json(r), "metadata"), "k")), "1");
}


/* --- notifications ------------------------------------------------------- */

Test(metadata, notifications_carry_it)
{
    reg_t        g;
    json_t      *md, *ds, *d;
    resp_t      *r;
    size_t       i;
    endpoint_t   ep;

    md = json_pack("{s:s}", "order_ref", "A-17");
    register_meta(&g, env("PAY_TEST_PSP"), md);
    endpoint_add(&g.m, NULL, &ep);

    r = http(&(req_t) {
        "POST", mock_url(str_printf("/_control/sessions/%s/pay",
                                    json_string_value(json_object_get(
                                        g.created, "psp_token")))),
        (const char *[]) { "Content-Type: application/json", NULL }, "",
        (size_t) -1 });
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    ds = receiver_wait(ep.name, "204", 1, 30);
    d = NULL;

    for (i = 0; i < json_array_size(ds); i++) {
        if (strcmp(json_string_value(json_object_get(json_array_get(ds, i),
                                                     "type")),
                   "checkout.succeeded") == 0)
        {
            d = json_array_get(ds, i);
        }
    }

    cr_assert_not_null(d, "no checkout.succeeded among %s", dump(ds));
    cr_expect(json_equal(json_object_get(json_object_get(d, "data"),
                                         "metadata"), md),
              "delivered %s", dump(d));
}


/* --- refunds and pay-outs ------------------------------------------------ */

static resp_t *
post_json(const merchant_t *m, const char *path, const char *body)
{
    char  *auth, *idem;

    auth = str_printf("Authorization: Bearer %s", m->key);
    idem = str_printf("Idempotency-Key: %s", uid("k"));

    {
        const char  *h[] = { auth, idem, "Content-Type: application/json",
                             NULL };
        req_t        rq = { "POST", gw_url(path), h, body, (size_t) -1 };

        return http(&rq);
    }
}


/* a paid checkout of the suite's Stripe, with an endpoint for every type */
static void
paid_new(reg_t *g, endpoint_t *ep)
{
    int          i;
    resp_t      *r;
    const char  *params[2];

    register_meta(g, env("PAY_TEST_PSP"), json_object());
    endpoint_add(&g->m, NULL, ep);

    r = http(&(req_t) {
        "POST", mock_url(str_printf("/_control/sessions/%s/pay",
                                    json_string_value(json_object_get(
                                        g->created, "psp_token")))),
        (const char *[]) { "Content-Type: application/json", NULL }, "",
        (size_t) -1 });
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);

    params[0] = g->m.id;
    params[1] = g->co;

    for (i = 0; i < 100; i++) {
        if (strcmp(db_scalar("SELECT count(*) FROM checkouts WHERE "
                             "merchant_id = $1 AND checkout_id = $2 AND "
                             "status = 'SUCCESS' AND psp_payment_ref IS NOT "
                             "NULL", 2, params), "1") == 0)
        {
            return;
        }
        msleep(100);
    }

    cr_assert_fail("checkout %s not paid", g->co);
}


/* the first delivery to ep of that type, waiting for it */
static json_t *
delivery_of(const endpoint_t *ep, const char *type)
{
    int      i;
    size_t   k;
    json_t  *ds, *d;

    for (i = 0; i < 150; i++) {
        ds = receiver_deliveries(ep->name);

        json_array_foreach(ds, k, d) {
            if (strcmp(json_string_value(json_object_get(d, "type")), type)
                == 0 && strcmp(json_string_value(json_object_get(d, "answer")),
                               "204") == 0)
            {
                return d;
            }
        }

        msleep(200);
    }

    cr_assert_fail("no %s delivered to %s", type, ep->name);
    return NULL;
}


/*
 * What the PSP was sent with a refund or pay-out: the mock's stored
 * operation (its PSP id, from the row), whose Stripe object echoes every
 * metadata[KEY] field it got.
 */
static json_t *
psp_op_metadata(const char *table, const char *id_col, const char *psp_col,
    const merchant_t *m, const char *id)
{
    json_t      *op;
    const char  *params[2] = { m->id, id };
    const char  *psp_id;

    psp_id = db_scalar(str_printf("SELECT %s FROM %s WHERE merchant_id = $1 "
                                  "AND %s = $2", psp_col, table, id_col),
                       2, params);
    cr_assert(psp_id != NULL && psp_id[0] != '\0', "no PSP id for %s", id);

    op = mock_session(psp_id);

    return json_object_get(json_object_get(op, "object"), "metadata");
}


Test(metadata, refund_round_trip)
{
    char        *po, *id;
    reg_t        g;
    json_t      *md, *rf, *it;
    resp_t      *r;
    size_t       k;
    endpoint_t   ep;

    paid_new(&g, &ep);
    po = str_printf("%s_p1", g.co);
    md = json_pack("{s:s, s:s}", "rma", "R-9", "note", "box dented");

    r = post_json(&g.m, str_printf("/v1/payments/%s/refunds", po),
                  "{\"amount\":\"1.00\",\"metadata\":{\"rma\":\"R-9\","
                  "\"note\":\"box dented\"}}");
    cr_assert_eq(r->status, 201, "%s", r->body);
    cr_expect(json_equal(json_object_get(resp_json(r), "metadata"), md),
              "201: %s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "refund_id")));

    r = api_get(&g.m, str_printf("/v1/payments/%s", po));
    cr_assert_eq(r->status, 200, "%s", r->body);
    rf = NULL;

    json_array_foreach(json_object_get(resp_json(r), "refunds"), k, it) {
        if (strcmp(json_string_value(json_object_get(it, "refund_id")), id)
            == 0)
        {
            rf = it;
        }
    }

    cr_assert_not_null(rf, "%s", r->body);
    cr_expect(json_equal(json_object_get(rf, "metadata"), md), "GET: %s",
              r->body);

    it = delivery_of(&ep, "refund.succeeded");
    cr_expect(json_equal(json_object_get(json_object_get(it, "data"),
                                         "metadata"), md),
              "delivered %s", dump(it));

    /* Stripe was sent it beside the gateway's nonce */
    json_object_set_new(md, "nonce", json_string(str_printf("%s:%s", g.m.id,
                                                            id)));
    it = psp_op_metadata("refunds", "refund_id", "psp_refund_id", &g.m, id);
    cr_expect(json_equal(it, md), "sent to the PSP: %s", dump(it));
}


Test(metadata, payout_round_trip)
{
    char        *out, *id;
    reg_t        g;
    json_t      *md, *it;
    resp_t      *r;
    endpoint_t   ep;
    const char  *args[] = { "add-seller", "--id", NULL, "--seller",
                            "seller_1", "--psp", NULL, "--destination",
                            "acct_1MockSeller", NULL };

    paid_new(&g, &ep);
    args[2] = g.m.id;
    args[6] = env("PAY_TEST_PSP");
    cr_assert_eq(merchant_toolv(args, &out), 0, "%s", out);

    md = json_pack("{s:s}", "run", "w47");
    r = post_json(&g.m, "/v1/payouts",
                  str_printf("{\"seller_account\":\"seller_1\",\"amount\":"
                             "\"1.00\",\"currency\":\"USD\",\"psp\":\"%s\","
                             "\"metadata\":{\"run\":\"w47\"}}",
                             env("PAY_TEST_PSP")));
    cr_assert_eq(r->status, 201, "%s", r->body);
    cr_expect(json_equal(json_object_get(resp_json(r), "metadata"), md),
              "201: %s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "payout_id")));

    r = api_get(&g.m, str_printf("/v1/payouts/%s", id));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect(json_equal(json_object_get(resp_json(r), "metadata"), md),
              "GET: %s", r->body);

    it = delivery_of(&ep, "payout.paid");
    cr_expect(json_equal(json_object_get(json_object_get(it, "data"),
                                         "metadata"), md),
              "delivered %s", dump(it));

    json_object_set_new(md, "nonce", json_string(str_printf("%s:%s", g.m.id,
                                                            id)));
    it = psp_op_metadata("payouts", "payout_id", "psp_payout_id", &g.m, id);
    cr_expect(json_equal(it, md), "sent to the PSP: %s", dump(it));
}


/* a refund's key with a form's syntax is refused; an unusual one arrives
 * as itself beside the gateway's nonce, the amount sent once */
Test(metadata, refund_keys_form_syntax_refused_unusual_intact)
{
    char        *po, *id, *body;
    reg_t        g;
    json_t      *md, *it;
    resp_t      *r;
    endpoint_t   ep;
    const char  *params[1];

    paid_new(&g, &ep);
    po = str_printf("%s_p1", g.co);

    r = post_json(&g.m, str_printf("/v1/payments/%s/refunds", po),
                  "{\"amount\":\"1.00\",\"metadata\":{\"a%5D=1&amount="
                  "99999&metadata%5Bb\":\"y\"}}");
    expect_problem(r, 400, "invalid_request");
    cr_expect_not_null(strstr(r->body, "metadata keys must not contain"),
                       "%s", r->body);

    params[0] = g.m.id;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM refunds "
                               "WHERE merchant_id = $1", 1, params), "0");

    md = json_pack("{s:s}", ODD_KEY, ODD_VAL);
    body = dump(json_pack("{s:s, s:O}", "amount", "1.00", "metadata", md));
    r = post_json(&g.m, str_printf("/v1/payments/%s/refunds", po), body);
    cr_assert_eq(r->status, 201, "%s", r->body);
    id = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "refund_id")));

    json_object_set_new(md, "nonce", json_string(str_printf("%s:%s", g.m.id,
                                                            id)));
    it = psp_op_metadata("refunds", "refund_id", "psp_refund_id", &g.m, id);
    cr_expect(json_equal(it, md), "sent to the PSP: %s", dump(it));
}


Test(metadata, refund_and_payout_refusals_store_nothing)
{
    char        *po;
    reg_t        g;
    resp_t      *r;
    endpoint_t   ep;
    const char  *params[1];

    paid_new(&g, &ep);
    po = str_printf("%s_p1", g.co);

    r = post_json(&g.m, str_printf("/v1/payments/%s/refunds", po),
                  "{\"amount\":\"1.00\",\"metadata\":{\"n\":1}}");
    expect_problem(r, 400, "invalid_request");
    cr_expect_not_null(strstr(r->body, "values must be strings"), "%s",
                       r->body);

    r = post_json(&g.m, str_printf("/v1/payments/%s/refunds", po),
                  "{\"amount\":\"1.00\",\"metadata\":{\"c\":"
                  "\"4111-1111-1111-1111\"}}");
    expect_problem(r, 400, "card_data_forbidden");
    cr_expect_null(strstr(r->body, "4111"), "%s", r->body);

    r = post_json(&g.m, "/v1/payouts",
                  str_printf("{\"seller_account\":\"seller_1\",\"amount\":"
                             "\"1.00\",\"currency\":\"USD\",\"psp\":\"%s\","
                             "\"metadata\":{\"a_key_of_forty_one_characters"
                             "_is_too_long\":\"x\"}}", env("PAY_TEST_PSP")));
    expect_problem(r, 400, "invalid_request");
    cr_expect_not_null(strstr(r->body, "at most 40 characters"), "%s",
                       r->body);

    params[0] = g.m.id;
    cr_expect_str_eq(db_scalar("SELECT (SELECT count(*) FROM refunds "
                               "WHERE merchant_id = $1) + (SELECT count(*) "
                               "FROM payouts WHERE merchant_id = $1)",
                               1, params), "0");
}
