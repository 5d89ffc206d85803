/*
 * End to end: the routes no merchant's API key authenticates, over two
 * shards (doc/plans/shards.md, 1.3): the pay link, the return link and
 * the status read find the checkout on the shard of their token's
 * merchant; a review goes to the shard of its nonce's merchant, and the
 * review queue is every shard's, merged (or one shard's, ?shard=NAME).
 * Merchant ma lives on shard a (the home), mb on shard b.
 *
 * Skipped unless the stack has two shards and its gateway serves both.
 * The tests stop shard b and count the directory's look-ups: the lane
 * runs this suite one test at a time.
 */

#include <stdlib.h>
#include <string.h>

#include "harness.h"


static void
shards_routes_init(void)
{
    shards_need(2);
    /* the stack's gateway serves b, again after a test before this one
     * stopped it */
    shard_wait_served("b", 30);
}


TestSuite(shards_routes, .timeout = E2E_TIMEOUT, .init = shards_routes_init);


#define HOST_DENY  "deny.risk.test"     /* the risk check, on_error=deny */


typedef struct {
    merchant_t   m;
    char        *co;
    char        *pay_url;
    char        *psp_token;
} sr_checkout_t;


static void
sr_register(sr_checkout_t *c, const char *shard)
{
    resp_t  *r;
    json_t  *j;

    merchant_new_on(&c->m, shard);
    c->co = uid("co");
    r = register_ok(&c->m, uid("key"), body_for(c->co));
    j = resp_json(r);
    c->psp_token = strdup(json_string_value(json_object_get(j, "psp_token")));
    c->pay_url = strdup(json_string_value(json_object_get(j, "pay_url")));
    resp_free(r);
}


/* the checkouts with this id on the shard */
static long
sr_rows(const char *shard, const char *co)
{
    return atol(db_scalar_on(db_shard(shard), "SELECT count(*) FROM"
                             " checkouts WHERE checkout_id = $1", 1,
                             (const char *[]) { co }));
}


/* the session's success_url or cancel_url (the return links the gateway
 * gave the PSP), as a URL on the test gateway */
static char *
sr_return_url(const sr_checkout_t *c, const char *which)
{
    char    *auth;
    req_t    rq;
    resp_t  *r;

    auth = str_printf("Authorization: Bearer %s",
                      file_read(run_file("conf/psp.secret"), NULL));

    {
        const char  *h[] = { auth, NULL };

        memset(&rq, 0, sizeof(req_t));
        rq.method = "GET";
        rq.url = mock_url(str_printf("/v1/checkout/sessions/%s",
                                     c->psp_token));
        rq.headers = h;
        r = http(&rq);
    }

    cr_assert_eq(r->status, 200, "the mock's session: %s", r->body);

    return gw_url_for(json_string_value(json_object_get(resp_json(r),
                                                        which)));
}


/* the pending page's status URL (its own token) */
static char *
sr_status_path(const resp_t *r)
{
    const char  *start, *end;

    start = strstr(r->body, "data-status-url=\"");
    cr_assert_not_null(start, "not the pending page: %s", r->body);
    start += strlen("data-status-url=\"");
    end = strchr(start, '"');
    cr_assert_not_null(end);

    return strndup(start, (size_t) (end - start));
}


/* the token t of a URL with its merchant claim replaced, signed with the
 * gateway's own key */
static char *
sr_token_for(const char *url, const char *merchant)
{
    char           *t;
    size_t          keylen;
    json_t         *claims;
    unsigned char  *key;

    t = url_param(url, "t");
    cr_assert_not_null(t, "no t in %s", url);
    key = paytoken_key(&keylen);
    cr_assert(jwt_signature_matches(t, key, keylen), "not the gateway's key");

    claims = jwt_claims(t);
    json_object_set_new(claims, "m", json_string(merchant));

    return jwt_resign(t, claims, key, keylen);
}


/* the directory's look-ups so far, all results together */
static double
sr_lookups(void)
{
    int          i;
    double       v, sum;
    const char  *results[] = { "hit", "miss_found", "miss_none",
                               "miss_unavailable" };

    sum = 0;
    for (i = 0; i < 4; i++) {
        v = metric_value(NULL, str_printf("payments_shard_directory_lookups"
                                          "_total{result=\"%s\"}",
                                          results[i]));
        cr_assert_geq(v, 0, "no payments_shard_directory_lookups_total");
        sum += v;
    }

    return sum;
}


/* The pay link, the return links and the status read of a checkout of a
 * merchant on shard a and of one on shard b each find their checkout, on
 * its own shard. */
Test(shards_routes, pay_return_and_status_reach_each_merchants_shard)
{
    int             i;
    char           *status;
    resp_t         *r;
    const char     *loc, *shards[] = { "a", "b" };
    sr_checkout_t   c;

    for (i = 0; i < 2; i++) {
        sr_register(&c, shards[i]);
        cr_assert_eq(sr_rows(shards[i], c.co), 1);
        cr_assert_eq(sr_rows(shards[1 - i], c.co), 0);

        r = http_get(gw_url_for(c.pay_url));
        cr_assert_eq(r->status, 303, "shard %s: pay link: %ld %s", shards[i],
                     r->status, r->body);
        loc = resp_header(r, "Location");
        cr_assert(loc != NULL && strstr(loc, "/pay/") != NULL,
                  "shard %s: Location %s", shards[i], loc);
        resp_free(r);

        r = http_get(sr_return_url(&c, "success_url"));
        cr_assert_eq(r->status, 200, "shard %s: return: %ld %s", shards[i],
                     r->status, r->body);
        status = sr_status_path(r);
        resp_free(r);

        r = gw_get(status);
        cr_assert_eq(r->status, 200, "shard %s: status: %ld %s", shards[i],
                     r->status, r->body);
        cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                           "status")),
                         "pending");
        resp_free(r);

        r = http_get(sr_return_url(&c, "cancel_url"));
        cr_assert_eq(r->status, 303, "shard %s: cancel: %ld %s", shards[i],
                     r->status, r->body);
        cr_assert_str_eq(resp_header(r, "Location"), SHOP_ORIGIN "/cart");
        resp_free(r);
    }
}


/* A token the gateway signed for a merchant no shard holds is answered as
 * an unknown checkout, after asking the shards; a token that does not
 * verify is refused before any look-up. */
Test(shards_routes, a_merchant_no_shard_holds_is_an_unknown_checkout)
{
    int             i;
    char           *nobody, *t, *forged, *status;
    double          before;
    json_t         *claims;
    resp_t         *r;
    sr_checkout_t   c;

    sr_register(&c, "b");

    /* 23 of [a-z0-9_]: a merchant id no merchant has */
    nobody = uid("n");
    cr_assert_eq(strlen(nobody), 23, "%s", nobody);

    t = sr_token_for(c.pay_url, nobody);
    r = gw_get(str_printf("/v1/checkouts/%s/pay?t=%s", c.co, t));
    expect_forbidden_page(r);
    cr_assert(strstr(r->body, "no open payment") != NULL, "%s", r->body);
    resp_free(r);

    r = http_get(sr_return_url(&c, "success_url"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    status = sr_status_path(r);
    resp_free(r);

    t = sr_token_for(status, nobody);
    r = gw_get(str_printf("/v1/checkouts/%s/status?t=%s", c.co, t));
    expect_problem(r, 404, "not_found");
    resp_free(r);

    /* mb's own token, signed with another key: refused, never looked up
     * (no look-up counted while a few are sent) */
    t = url_param(c.pay_url, "t");
    claims = jwt_claims(t);
    forged = jwt_resign(t, claims, (const unsigned char *) "not the key", 11);
    before = sr_lookups();
    for (i = 0; i < 5; i++) {
        r = gw_get(str_printf("/v1/checkouts/%s/pay?t=%s", c.co, forged));
        expect_forbidden_page(r);
        resp_free(r);
    }
    cr_assert_eq(sr_lookups(), before, "a forged token was looked up");

    /* the control: the same request with mb's token is looked up once */
    r = gw_get(str_printf("/v1/checkouts/%s/pay?t=%s", c.co, t));
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    resp_free(r);
    cr_assert_eq(sr_lookups(), before + 1);
}


/* the admin API */
static resp_t *
sr_admin(const char *method, const char *path)
{
    char        *key;
    req_t        rq;
    const char  *h[3];

    key = file_read(env("PAY_TEST_ADMIN_KEY"), NULL);
    secret_used(key);

    h[0] = str_printf("Authorization: Bearer %s", key);
    h[1] = strcmp(method, "POST") == 0 ? "Content-Length: 0" : NULL;
    h[2] = NULL;

    memset(&rq, 0, sizeof(req_t));
    rq.method = method;
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = strcmp(method, "POST") == 0 ? "" : NULL;
    rq.len = 0;

    return http(&rq);
}


/* a checkout of m held for review (the risk check's review@ verdict):
 * its id */
static char *
sr_held(const merchant_t *m)
{
    char        *id;
    req_t        rq;
    json_t      *co;
    resp_t      *r;
    const char  *h[5];

    id = uid("co_rv");
    co = checkout_new(id, 2);
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string("risk-review@example.com"));

    h[0] = "Host: " HOST_DENY;
    h[1] = str_printf("Authorization: Bearer %s", m->key);
    h[2] = str_printf("Idempotency-Key: %s", uid("key"));
    h[3] = "Content-Type: application/json";
    h[4] = NULL;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = str_printf("%s%s", env("PAY_TEST_GW_LIMITS"), PATH_PAYMENTS);
    rq.headers = h;
    rq.body = dump(co);
    rq.len = (size_t) -1;
    r = http(&rq);
    cr_assert_eq(r->status, 202, "%ld %s", r->status, r->body);
    resp_free(r);
    json_decref(co);

    return id;
}


static json_t *sr_queue_of(resp_t *r);


/* the queue (GET /v1/reviews with query q, "" for none): its nonces in
 * order, checked in the list's order (review_until, then nonce) */
static json_t *
sr_queue(const char *q)
{
    resp_t  *r;

    r = sr_admin("GET", str_printf("/v1/reviews%s", q));
    cr_assert_eq(r->status, 200, "GET /v1/reviews%s: %ld %s", q, r->status,
                 r->body);

    return sr_queue_of(r);
}


/* the nonces of a 200 from GET /v1/reviews, checked as sr_queue says; frees
 * the answer */
static json_t *
sr_queue_of(resp_t *r)
{
    size_t       i;
    json_t      *list, *it, *nonces;
    const char  *u, *n, *pu, *pn;

    list = json_object_get(resp_json(r), "reviews");
    cr_assert(json_is_array(list), "%s", r->body);
    cr_assert_leq(json_array_size(list), 100);

    nonces = json_array();
    pu = NULL;
    pn = NULL;
    json_array_foreach(list, i, it) {
        u = json_string_value(json_object_get(it, "review_until"));
        n = json_string_value(json_object_get(it, "nonce"));
        cr_assert(u != NULL && n != NULL, "%s", r->body);
        cr_assert(pu == NULL || strcmp(pu, u) < 0
                  || (strcmp(pu, u) == 0 && strcmp(pn, n) < 0),
                  "out of order: %s %s before %s %s", pu, pn, u, n);
        json_array_append_new(nonces, json_string(n));
        pu = u;
        pn = n;
    }

    resp_free(r);

    return nonces;
}


static int
sr_listed(const json_t *nonces, const char *n)
{
    size_t   i;
    json_t  *it;

    json_array_foreach(nonces, i, it) {
        if (strcmp(json_string_value(it), n) == 0) {
            return 1;
        }
    }

    return 0;
}


/* A review of a merchant on a and one of a merchant on b: the queue lists
 * both, in its order; ?shard= lists one shard's; each is approved or
 * rejected on its own shard. */
Test(shards_routes, reviews_reach_each_merchants_shard_and_the_queue_has_both)
{
    char        *ida, *idb, *na, *nb;
    long         sessions, requests;
    json_t      *q;
    resp_t      *r;
    merchant_t   ma, mb;

    merchant_new_on(&ma, "a");
    merchant_new_on(&mb, "b");
    ida = sr_held(&ma);
    idb = sr_held(&mb);
    na = nonce(&ma, ida);
    nb = nonce(&mb, idb);
    cr_assert_eq(sr_rows("a", ida), 1);
    cr_assert_eq(sr_rows("b", idb), 1);

    q = sr_queue("");
    cr_assert(sr_listed(q, na), "a's review is not in the queue");
    cr_assert(sr_listed(q, nb), "b's review is not in the queue");
    json_decref(q);

    q = sr_queue("?shard=b");
    cr_assert(sr_listed(q, nb));
    cr_assert(!sr_listed(q, na), "a's review in b's queue");
    json_decref(q);

    q = sr_queue("?shard=a");
    cr_assert(sr_listed(q, na));
    cr_assert(!sr_listed(q, nb), "b's review in a's queue");
    json_decref(q);

    r = sr_admin("GET", "/v1/reviews?shard=zz");
    expect_problem(r, 400, "invalid_request");
    resp_free(r);

    /* b's approved on b: its PSP session registered once */
    r = sr_admin("POST", str_printf("/v1/reviews/%s/approve", nb));
    cr_assert_eq(r->status, 201, "approve on b: %ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING");
    resp_free(r);
    mock_registrations(nb, &sessions, &requests);
    cr_assert_eq(sessions, 1);

    /* a's rejected on a */
    r = sr_admin("POST", str_printf("/v1/reviews/%s/reject", na));
    cr_assert_eq(r->status, 200, "reject on a: %ld %s", r->status, r->body);
    resp_free(r);

    cr_assert_str_eq(db_scalar_on(db_shard("b"), "SELECT status FROM"
                                  " checkouts WHERE merchant_id = $1 AND"
                                  " checkout_id = $2", 2,
                                  (const char *[]) { mb.id, idb }),
                     "EXECUTING");
    cr_assert_str_eq(db_scalar_on(db_shard("a"), "SELECT status FROM"
                                  " checkouts WHERE merchant_id = $1 AND"
                                  " checkout_id = $2", 2,
                                  (const char *[]) { ma.id, ida }),
                     "FAILED");

    /* decided: gone from the queue, and not decided again */
    q = sr_queue("");
    cr_assert(!sr_listed(q, na) && !sr_listed(q, nb));
    json_decref(q);

    r = sr_admin("POST", str_printf("/v1/reviews/%s/reject", nb));
    expect_problem(r, 404, "not_found");
    resp_free(r);

    /* a merchant no shard holds has no review */
    r = sr_admin("POST", "/v1/reviews/nobody_at_all:co_1/approve");
    expect_problem(r, 404, "not_found");
    resp_free(r);
}


/* While shard b is down the queue is 503 (never a's alone, which would
 * look complete); a's own queue still answers; b back, the queue too. */
Test(shards_routes, the_queue_is_503_while_a_shard_is_down)
{
    int          i, listed;
    char        *idb;
    json_t      *q;
    resp_t      *r;
    const char  *detail;
    merchant_t   mb;

    merchant_new_on(&mb, "b");
    idb = sr_held(&mb);

    pg_stop_shard("b");

    r = sr_admin("GET", "/v1/reviews");
    expect_problem(r, 503, "store_unavailable");
    cr_assert_not_null(resp_header(r, "Retry-After"));
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_assert(detail != NULL && strstr(detail, "shard(s) b ") != NULL,
              "the detail names shard b: %s", r->body);
    resp_free(r);

    q = sr_queue("?shard=a");
    cr_assert(!sr_listed(q, nonce(&mb, idb)));
    json_decref(q);

    pg_start_shard("b");

    /* listed again once b is back, as a client retrying on 503 sees it:
     * each worker's breaker for b closes on its own probe, so a 503 may
     * still come from one worker after the other answered 200 */
    for (i = 0, listed = 0; i < 300 && !listed; i++) {
        r = sr_admin("GET", "/v1/reviews");
        if (r->status == 200) {
            q = sr_queue_of(r);
            listed = sr_listed(q, nonce(&mb, idb));
            json_decref(q);
            continue;
        }

        expect_problem(r, 503, "store_unavailable");
        resp_free(r);
        msleep(50);
    }

    cr_assert(listed, "shard b's held checkout was not listed again once b"
              " came back");
}
