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
    reg_t    g;
    json_t  *md;

    md = meta_of(20, 80);
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


Test(metadata, card_data_refused_never_stored)
{
    expect_refused(json_pack("{s:s}", "note", "4111 1111 1111 1111"),
                   "card_data_forbidden", NULL);
    expect_refused(json_pack("{s:s}", "4111111111111111", "x"),
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
