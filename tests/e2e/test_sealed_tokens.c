/*
 * End to end: PSP session tokens sealed at rest (doc/NOTIFICATIONS.md
 * "Secrets at rest", sql/functions/psp_token_key.sql).  The suite's gateway has
 * payments_encryption_key with two keys (ci/services.sh): checkouts keeps
 * the token and the hosted page's URL sealed under the first key, psp_tokens
 * the token's blind index, and everything that reads or finds a token opens
 * or computes them.  Rows written before (plaintext) and rows sealed under
 * the second key still work; a ciphertext on another row does not open.
 *
 * The sweeper's side runs in solo_sealed_tokens (tests/e2e/test_sweeper.c:
 * the sweepers share the database's one lease).
 */

#include "harness.h"

#include <time.h>


typedef struct {
    merchant_t   m;
    char        *co;
    char        *token;         /* the PSP session id, as answered */
    char        *pay_url;
} sealed_t;


static void
register_sealed(sealed_t *p, merchant_t *m)
{
    resp_t  *r;
    json_t  *j;

    if (m == NULL) {
        merchant_new(&p->m);

    } else {
        p->m = *m;
    }

    p->co = uid("co");
    r = register_ok(&p->m, uid("key"), body_for(p->co));
    j = resp_json(r);
    p->token = strdup(json_string_value(json_object_get(j, "psp_token")));
    p->pay_url = strdup(json_string_value(json_object_get(j, "pay_url")));
    secret_used(p->token);
    secret_used(url_param(p->pay_url, "t"));
}


static char *
stored(const sealed_t *p, const char *column)
{
    return db_scalar(str_printf("SELECT %s FROM checkouts "
                                "WHERE merchant_id = $1 AND checkout_id = $2",
                                column),
                     2, (const char *[]) { p->m.id, p->co });
}


static char *
index_row(const sealed_t *p)
{
    return db_scalar("SELECT psp_token FROM psp_tokens "
                     "WHERE merchant_id = $1 AND checkout_id = $2",
                     2, (const char *[]) { p->m.id, p->co });
}


static resp_t *
deliver_paid(const sealed_t *p)
{
    char        *body, *sig, *secret;
    size_t       len;
    req_t        rq;
    long         t;

    /* the event names the session by its token only: no reference */
    t = (long) time(NULL);
    body = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                      "\"type\":\"checkout.session.completed\","
                      "\"created\":%ld,\"livemode\":false,\"data\":{"
                      "\"object\":{\"id\":\"%s\",\"object\":"
                      "\"checkout.session\",\"amount_total\":1500,"
                      "\"currency\":\"usd\",\"payment_status\":\"paid\","
                      "\"status\":\"complete\"}}}",
                      uid("evt"), t, p->token);

    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
    cr_assert_not_null(secret);
    sig = stripe_signature(secret, t, body);

    {
        const char  *h[] = { "Content-Type: application/json", sig, NULL };

        memset(&rq, 0, sizeof(req_t));
        rq.method = "POST";
        rq.url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


static char *
status_of(const sealed_t *p)
{
    return stored(p, "status::text");
}


static void
expect_view_token(const sealed_t *p)
{
    resp_t  *r;

    r = api_get(&p->m, str_printf("/v1/checkouts/%s", p->co));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")),
                     p->token, "the view shows the PSP's token");
}


static void
expect_hosted_redirect(const sealed_t *p)
{
    resp_t      *r;
    const char  *loc;

    r = http_get(gw_url_for(p->pay_url));
    cr_assert_eq(r->status, 303, "pay link: %ld %s", r->status, r->body);
    loc = resp_header(r, "Location");
    cr_assert(loc != NULL
              && strcmp(loc, mock_url(str_printf("/pay/%s", p->token))) == 0,
              "Location %s is not the session's hosted page", loc);
}


/* the row as a gateway without a key (or before 014) wrote it */
static void
make_legacy(const sealed_t *p)
{
    db_exec("UPDATE checkouts SET psp_token = $3, psp_url = $4 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 4,
            (const char *[]) { p->m.id, p->co, p->token,
                               mock_url(str_printf("/pay/%s", p->token)) });
    db_exec("UPDATE psp_tokens SET psp_token = $3 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { p->m.id, p->co, p->token });
}


/* the row as it was before a rotation: sealed and indexed under key 2 */
static void
make_second_key(const sealed_t *p)
{
    char  *ad;

    ad = nonce(&p->m, p->co);

    db_exec("UPDATE checkouts SET psp_token = $3, psp_url = $4 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 4,
            (const char *[]) { p->m.id, p->co,
                               test_seal(1, ad, p->token),
                               test_seal(1, str_printf("psp_url:%s", ad),
                                         mock_url(str_printf("/pay/%s",
                                                             p->token))) });
    db_exec("UPDATE psp_tokens SET psp_token = $3 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { p->m.id, p->co,
                               test_blind_index(1, env("PAY_TEST_PSP"),
                                                p->token) });
}


TestSuite(sealed_tokens, .timeout = 60);


Test(sealed_tokens, the_stored_token_is_sealed_and_psp_tokens_holds_its_index)
{
    char      *s, *kid;
    sealed_t   p;

    register_sealed(&p, NULL);

    s = stored(&p, "psp_token");
    cr_assert_not_null(s);
    cr_assert_str_neq(s, p.token);
    cr_assert(strncmp(s, "v1.", 3) == 0, "not sealed: %.3s...", s);
    cr_assert(strstr(s, p.token) == NULL);

    /* sealed under the first key of the file */
    kid = str_printf("v1.%s.", test_keyring()->keys[0].kid);
    cr_assert(strncmp(s, kid, strlen(kid)) == 0, "not under the first key");
    cr_assert_str_eq(psp_token_open(p.m.id, p.co, s), p.token);

    /* the hosted page's URL names the session: sealed as well */
    s = stored(&p, "psp_url");
    cr_assert(strncmp(s, "v1.", 3) == 0, "psp_url not sealed");
    cr_assert(strstr(s, p.token) == NULL);

    /* psp_tokens: the blind index under the first key, nothing else */
    s = index_row(&p);
    cr_assert_str_eq(s, test_blind_index(0, env("PAY_TEST_PSP"), p.token));
    cr_assert_eq(strlen(s), 64);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM psp_tokens "
                               "WHERE psp_token = $1", 1,
                               (const char *[]) { p.token }), "0");

    /* what the gateway hands out is the PSP's own token and page */
    cr_assert_str_eq(db_psp_token(p.m.id, p.co), p.token);
    expect_view_token(&p);
    expect_hosted_redirect(&p);
}


Test(sealed_tokens, a_webhook_naming_the_token_completes_the_checkout)
{
    resp_t    *r;
    sealed_t   p;

    register_sealed(&p, NULL);

    r = deliver_paid(&p);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
    cr_assert_str_eq(db_scalar("SELECT outcome FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, (const char *[]) { p.m.id, p.co }),
                     "applied");
}


Test(sealed_tokens, the_order_view_shows_the_opened_token)
{
    char      *order;
    resp_t    *r;
    sealed_t   p;

    register_sealed(&p, NULL);

    order = db_scalar("SELECT payment_order_id FROM payment_orders "
                      "WHERE merchant_id = $1 AND checkout_id = $2 "
                      "ORDER BY line_no LIMIT 1", 2,
                      (const char *[]) { p.m.id, p.co });
    cr_assert_not_null(order);

    r = api_get(&p.m, str_printf("/v1/payments/%s", order));
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")),
                     p.token);
}


Test(sealed_tokens, a_replayed_registration_answers_the_opened_answer)
{
    char      *key, *body, *s;
    resp_t    *a, *b;
    merchant_t m;

    merchant_new(&m);
    key = uid("key");
    body = body_for(uid("co"));

    a = register_ok(&m, key, body);
    secret_used(json_string_value(json_object_get(resp_json(a),
                                                  "psp_token")));

    s = db_scalar("SELECT response_body FROM idempotency_keys "
                  "WHERE merchant_id = $1 AND idem_key = $2", 2,
                  (const char *[]) { m.id, key });
    cr_assert(s != NULL && strncmp(s, "v1.", 3) == 0,
              "the stored answer is not sealed");

    b = api_post(&m, key, body);
    cr_assert_eq(b->status, 201, "%s", b->body);
    cr_assert_str_eq(resp_header(b, "Idempotent-Replayed"), "true");
    cr_assert_str_eq(b->body, a->body);
}


Test(sealed_tokens, a_legacy_plaintext_row_still_works)
{
    resp_t    *r;
    sealed_t   p;

    register_sealed(&p, NULL);
    make_legacy(&p);

    cr_assert_str_eq(stored(&p, "psp_token"), p.token);
    cr_assert_str_eq(db_psp_token(p.m.id, p.co), p.token);
    expect_view_token(&p);
    expect_hosted_redirect(&p);

    /* found by its plaintext, the look-up's last candidate */
    r = deliver_paid(&p);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
}


Test(sealed_tokens, a_row_sealed_under_the_second_key_opens_and_is_found)
{
    char      *s, *kid;
    resp_t    *r;
    sealed_t   p;

    register_sealed(&p, NULL);
    make_second_key(&p);

    s = stored(&p, "psp_token");
    kid = str_printf("v1.%s.", test_keyring()->keys[1].kid);
    cr_assert(strncmp(s, kid, strlen(kid)) == 0, "not under the second key");
    cr_assert_str_neq(index_row(&p),
                      test_blind_index(0, env("PAY_TEST_PSP"), p.token));

    expect_view_token(&p);
    expect_hosted_redirect(&p);

    /* the blind index under key 2 is among the candidates */
    r = deliver_paid(&p);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(status_of(&p), "SUCCESS");
}


Test(sealed_tokens, a_ciphertext_copied_to_another_checkout_does_not_open)
{
    char      *log;
    resp_t    *r;
    sealed_t   a, b;

    register_sealed(&a, NULL);
    register_sealed(&b, &a.m);

    /* b's row gets a's sealed token and page */
    db_exec("UPDATE checkouts SET psp_token = s.psp_token, psp_url = s.psp_url "
            "FROM checkouts s WHERE s.merchant_id = $1 AND s.checkout_id = $2 "
            "AND checkouts.merchant_id = $1 AND checkouts.checkout_id = $3",
            3, (const char *[]) { a.m.id, a.co, b.co });
    cr_assert_str_eq(stored(&b, "psp_token"), stored(&a, "psp_token"));

    /* the harness cannot open it either: the associated data differs */
    cr_assert_null(psp_token_open(b.m.id, b.co, stored(&b, "psp_token")));

    /* the view: a store error, never a's token */
    r = api_get(&b.m, str_printf("/v1/checkouts/%s", b.co));
    cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
    cr_assert(strstr(r->body, a.token) == NULL);

    /* the pay link: no redirect to a's page */
    r = http_get(gw_url_for(b.pay_url));
    cr_assert_neq(r->status, 303, "redirected to %s",
                  resp_header(r, "Location"));
    cr_assert_null(resp_header(r, "Location"));

    /* logged with the checkout id only */
    log = file_read(run_file("logs/error.log"), NULL);
    cr_assert_not_null(log);
    cr_assert(strstr(log, str_printf("sealed token does not open (checkout "
                                     "\"%s\"", b.co)) != NULL,
              "no \"sealed token does not open\" line for %s", b.co);

    /* a's checkout is untouched */
    expect_view_token(&a);
}


Test(sealed_tokens, a_dump_of_checkouts_and_psp_tokens_holds_no_token)
{
    size_t       i, n;
    json_t      *co;
    resp_t      *r;
    merchant_t   m;
    const char  *psps[] = { NULL, "mock_adyen", "mock_generic" };
    char        *tokens[3], *cos[3];

    merchant_new(&m);

    /* one session on each of the mock's dialects */
    for (i = 0; i < 3; i++) {
        cos[i] = uid("co");
        co = checkout_new(cos[i], 2);
        if (psps[i] != NULL) {
            json_object_set_new(co, "psp", json_string(psps[i]));
        }

        r = register_ok(&m, uid("key"), dump(co));
        tokens[i] = strdup(json_string_value(json_object_get(resp_json(r),
                                                             "psp_token")));
        cr_assert(strlen(tokens[i]) >= 8, "psp_token %s", tokens[i]);
        secret_used(tokens[i]);
    }

    for (i = 0; i < 3; i++) {
        /* every text column of every row, as pg_dump would write it; the
         * stored answers of the registrations name the token too */
        n = (size_t) atol(db_scalar("SELECT (SELECT count(*) FROM checkouts c "
                                    "        WHERE strpos(c::text, $1) > 0)"
                                    "     + (SELECT count(*) FROM psp_tokens t "
                                    "        WHERE strpos(t::text, $1) > 0)"
                                    "     + (SELECT count(*) "
                                    "        FROM idempotency_keys k "
                                    "        WHERE strpos(k::text, $1) > 0)",
                                    1, (const char *[]) { tokens[i] }));
        cr_assert_eq(n, 0, "a token of %s is in the clear",
                     psps[i] ? psps[i] : env("PAY_TEST_PSP"));

        /* and yet the gateway opens each one */
        cr_assert_str_eq(db_psp_token(m.id, cos[i]), tokens[i]);
    }
}
