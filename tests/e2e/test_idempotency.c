/*
 * Idempotency (API.md "Idempotency"): replays, fingerprints, scoping,
 * duplicate orders, a key in use, concurrent requests, lease take-over.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

TestSuite(idempotency, .timeout = E2E_TIMEOUT);
TestSuite(duplicates, .timeout = E2E_TIMEOUT);
TestSuite(concurrency, .timeout = E2E_TIMEOUT);
TestSuite(lease, .timeout = E2E_TIMEOUT);


static int
same_bytes(const resp_t *a, const resp_t *b)
{
    return a->len == b->len && memcmp(a->body, b->body, a->len) == 0;
}


static const char *
replayed(const resp_t *r)
{
    const char  *v = resp_header(r, "Idempotent-Replayed");

    return v != NULL ? v : "(absent)";
}


/* -- replays and fingerprints ------------------------------------------------- */

Test(idempotency, replays_the_stored_201_byte_for_byte)
{
    char        *key, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    body = body_for(uid("co"));

    a = register_ok(&m, key, body);
    b = api_post(&m, key, body);

    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_assert_str_eq(replayed(b), "true");
    cr_assert(same_bytes(a, b), "replay differs:\n%s\n%s", a->body, b->body);
    expect_request_id(b);
}


Test(idempotency, replays_with_the_same_content_type)
{
    char        *key, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    body = body_for(uid("co"));

    a = register_ok(&m, key, body);
    b = api_post(&m, key, body);

    cr_assert_not_null(resp_header(b, "Content-Type"));
    cr_assert_str_eq(resp_header(b, "Content-Type"),
                     resp_header(a, "Content-Type"));
}


Test(idempotency, does_not_call_the_psp_again_on_a_replay)
{
    long         sessions, requests;
    char        *key, *body, *co_id;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    resp_free(register_ok(&m, key, body));
    resp_free(api_post(&m, key, body));
    resp_free(api_post(&m, key, body));

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 1, "a replay must not reach the PSP");
}


Test(idempotency, refuses_the_key_with_a_different_body_422)
{
    char        *key, *co_id, *other;
    resp_t      *r;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    resp_free(register_ok(&m, key, body_for(co_id)));

    co = checkout_new(co_id, 2);
    json_object_set_new(order_of(co, 1), "amount", json_string("6.00"));
    other = dump(co);

    r = api_post(&m, key, other);
    expect_problem(r, 422, "idempotency_key_reused");

    /* over HTTP/1.1 with its reason phrase, which nginx 1.22 leaves out */
    {
        char   line[256] = "";
        char  *path, *cmd;
        FILE  *f, *p;

        path = str_printf("%s/body-%s.json", env("PAY_TEST_RUN"), uid("b"));
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(other, f);
        fclose(f);
        cmd = str_printf("curl -s -i --http1.1 --cacert '%s' -X POST '%s'"
                         " -H 'Authorization: Bearer %s'"
                         " -H 'Idempotency-Key: %s'"
                         " -H 'Content-Type: application/json'"
                         " --data-binary @'%s'", env("PAY_TEST_CA"),
                         gw_url(PATH_PAYMENTS), m.key, key, path);
        p = popen(cmd, "r");
        cr_assert_not_null(p);
        cr_assert_not_null(fgets(line, sizeof(line), p));
        pclose(p);
        cr_expect_str_eq(line, "HTTP/1.1 422 Unprocessable Entity\r\n");
    }
}


Test(idempotency, treats_whitespace_and_key_order_as_the_same_request)
{
    char        *key, *co_id, *compact, *pretty;
    resp_t      *a, *b;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    co = checkout_new(co_id, 2);
    compact = dump(co);
    /* sorted keys, indented: other bytes, the same JSON */
    pretty = json_dumps(co, JSON_INDENT(3) | JSON_SORT_KEYS);
    cr_assert_neq(strcmp(compact, pretty), 0);

    a = register_ok(&m, key, compact);
    b = api_post(&m, key, pretty);

    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_assert_str_eq(replayed(b), "true");
    cr_assert(same_bytes(a, b));
}


Test(idempotency, scopes_keys_per_merchant)
{
    long         sa, sb;
    char        *key, *co_id, *body;
    resp_t      *a, *b;
    merchant_t   ma, mb;

    merchant_new(&ma);
    merchant_new(&mb);
    key = uid("key");
    /* the same key and the same body, ids included: ids are per merchant */
    co_id = uid("co");
    body = body_for(co_id);

    a = register_ok(&ma, key, body);
    b = register_ok(&mb, key, body);

    cr_assert_null(resp_header(b, "Idempotent-Replayed"),
                   "another merchant's key must not replay");
    cr_assert_str_neq(json_string_value(json_object_get(resp_json(a), "psp_token")),
                      json_string_value(json_object_get(resp_json(b), "psp_token")));

    mock_registrations(nonce(&ma, co_id), &sa, NULL);
    mock_registrations(nonce(&mb, co_id), &sb, NULL);
    cr_assert_eq(sa, 1);
    cr_assert_eq(sb, 1);
}


Test(idempotency, claims_nothing_for_a_refused_body)
{
    char        *key, *co_id, *good;
    resp_t      *r;
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");

    co = checkout_new(co_id, 2);
    json_object_set_new(order_of(co, 0), "amount", json_string("10.001"));
    r = api_post(&m, key, dump(co));
    expect_problem(r, 400, "invalid_amount");

    /* the client fixes the body and retries with the same key */
    good = body_for(co_id);
    resp_free(register_ok(&m, key, good));
}


/* -- duplicate orders ----------------------------------------------------------- */

Test(duplicates, refuses_a_checkout_id_used_under_another_key_409)
{
    char        *body;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    body = body_for(uid("co"));
    resp_free(register_ok(&m, uid("key"), body));

    r = api_post(&m, uid("key"), body);
    expect_problem(r, 409, "duplicate_order");
}


Test(duplicates, refuses_a_payment_order_id_used_in_another_checkout_409)
{
    json_t      *a, *b;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    a = checkout_new(uid("co"), 2);
    resp_free(register_ok(&m, uid("key"), dump(a)));

    b = checkout_new(uid("co"), 2);
    json_object_set(order_of(b, 1), "payment_order_id",
                    json_object_get(order_of(a, 0), "payment_order_id"));

    r = api_post(&m, uid("key"), dump(b));
    expect_problem(r, 409, "duplicate_order");
}


Test(duplicates, replays_the_stored_409_under_its_key)
{
    char        *body, *key2;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    body = body_for(uid("co"));
    resp_free(register_ok(&m, uid("key"), body));

    key2 = uid("key");
    a = api_post(&m, key2, body);
    expect_problem(a, 409, "duplicate_order");

    b = api_post(&m, key2, body);
    expect_problem(b, 409, "duplicate_order");
    cr_assert_str_eq(replayed(b), "true");
    cr_assert(same_bytes(a, b), "replay differs:\n%s\n%s", a->body, b->body);
}


Test(duplicates, does_not_register_a_duplicate_with_the_psp)
{
    long         sessions, requests;
    char        *body, *co_id;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    body = body_for(co_id);
    resp_free(register_ok(&m, uid("key"), body));
    resp_free(api_post(&m, uid("key"), body));

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 1);
}


/* -- a key in use, concurrent requests ------------------------------------------ */

typedef struct {
    const merchant_t  *m;
    const char        *key;
    const char        *body;
    resp_t            *r;
} post_job_t;


static void *
post_job(void *arg)
{
    post_job_t  *j = arg;

    j->r = api_post(j->m, j->key, j->body);
    return NULL;
}


Test(concurrency, answers_409_in_use_while_the_first_request_runs)
{
    char        *key, *co_id, *body, *rule;
    long         retry;
    resp_t      *b;
    pthread_t    t;
    post_job_t   job;
    merchant_t   m;
    const char  *ra;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    /* the PSP takes 0.8 s: inside its 1 s timeout (test config) */
    rule = str_printf("{\"match\":\"%s\",\"latency_ms\":800}", nonce(&m, co_id));
    mock_fault(rule);

    job.m = &m;
    job.key = key;
    job.body = body;
    job.r = NULL;
    cr_assert_eq(pthread_create(&t, NULL, post_job, &job), 0);

    msleep(300);
    b = api_post(&m, key, body);

    pthread_join(t, NULL);

    expect_problem(b, 409, "idempotency_key_in_use");
    ra = resp_header(b, "Retry-After");
    cr_assert_not_null(ra, "409 in use needs Retry-After");
    retry = strtol(ra, NULL, 10);
    /* about what the first request can still take (its 2.5 s budget less
     * the 0.3 s gone), not the whole 20 s lease */
    cr_assert(retry >= 1 && retry <= 3, "Retry-After: %s", ra);

    cr_assert_eq(job.r->status, 201, "the first request: %ld %s",
                 job.r->status, job.r->body);
}


Test(concurrency, fifty_identical_requests_register_once)
{
    int          n201, n409;
    long         sessions;
    char        *key, *co_id, *body, *auth, *idem, *rule, *path;
    size_t       i;
    req_t        rq;
    resp_t     **rs, *first, *view;
    json_t      *orders;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    /* slow enough that all fifty arrive while the first is at the PSP,
     * inside its 1 s timeout (test config) */
    rule = str_printf("{\"match\":\"%s\",\"latency_ms\":700}", nonce(&m, co_id));
    mock_fault(rule);

    auth = str_printf("Authorization: Bearer %s", m.key);
    idem = str_printf("Idempotency-Key: %s", key);

    {
        const char  *h[] = { "Content-Type: application/json", auth, idem, NULL };

        rq.method = "POST";
        rq.url = gw_url(PATH_PAYMENTS);
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        rs = http_parallel(&rq, 50);
    }

    n201 = 0;
    n409 = 0;
    first = NULL;

    for (i = 0; i < 50; i++) {
        expect_request_id(rs[i]);

        if (rs[i]->status == 201) {
            n201++;
            if (first == NULL) {
                first = rs[i];
            }
            cr_assert(same_bytes(first, rs[i]), "two different 201s:\n%s\n%s",
                      first->body, rs[i]->body);

        } else {
            expect_problem(rs[i], 409, "idempotency_key_in_use");
            n409++;
        }
    }

    cr_assert(n201 >= 1, "no 201 among 50 (%d in use)", n409);

    mock_registrations(nonce(&m, co_id), &sessions, NULL);
    cr_assert_eq(sessions, 1, "sessions created: %ld", sessions);

    /* one row per order: the checkout holds exactly its two orders */
    path = str_printf("/v1/checkouts/%s", co_id);
    view = api_get(&m, path);
    cr_assert_eq(view->status, 200, "%ld %s", view->status, view->body);
    orders = json_object_get(resp_json(view), "payment_orders");
    cr_assert_eq(json_array_size(orders), 2, "%s", view->body);

    {
        const char  *params[] = { m.id, co_id };
        char        *n;

        n = db_scalar("SELECT json_array_length((pay_get_checkout($1, $2))::json"
                      " -> 'payment_orders')", 2, params);
        cr_assert_not_null(n);
        cr_assert_str_eq(n, "2");
    }
}


/* -- leases ---------------------------------------------------------------------- */

/*
 * Claims the key in PostgreSQL as the gateway would (pay_claim), as if the
 * process holding it then died.  The stored PSP request is what the adapter
 * stores: {"path","content_type","body"}, here a Stripe form whose
 * success_url the test can recognise at the mock afterwards.
 */
static char *
claim_directly_expiring(const merchant_t *m, const char *key,
    const char *co_id, const char *body, const char *lease_seconds,
    const char *marker, long expires_in)
{
    char        fp[65];
    char       *n, *form, *psp_req, *orders, *expires, *outcome, *ret;
    json_t     *j, *co;
    char       *en, *er, *ec;

    fingerprint("POST", PATH_PAYMENTS, body, fp);
    co = json_loads(body, 0, NULL);
    cr_assert_not_null(co);

    n = nonce(m, co_id);
    ret = str_printf("%s/v1/return/%s/%s?t=%s", env("PAY_TEST_PUBLIC_ORIGIN"),
                     env("PAY_TEST_PSP"), co_id, marker);

    en = url_escape(n);
    er = url_escape(ret);
    ec = url_escape(SHOP_ORIGIN "/cart");

#define LI(i, f) "line_items%%5B" #i "%%5D" f
    form = str_printf(
        "mode=payment"
        "&" LI(0, "%%5Bprice_data%%5D%%5Bcurrency%%5D") "=usd"
        "&" LI(0, "%%5Bprice_data%%5D%%5Bunit_amount%%5D") "=1000"
        "&" LI(0, "%%5Bprice_data%%5D%%5Bproduct_data%%5D%%5Bname%%5D") "=%s_p1"
        "&" LI(0, "%%5Bquantity%%5D") "=1"
        "&" LI(1, "%%5Bprice_data%%5D%%5Bcurrency%%5D") "=usd"
        "&" LI(1, "%%5Bprice_data%%5D%%5Bunit_amount%%5D") "=500"
        "&" LI(1, "%%5Bprice_data%%5D%%5Bproduct_data%%5D%%5Bname%%5D") "=%s_p2"
        "&" LI(1, "%%5Bquantity%%5D") "=1"
        "&success_url=%s&cancel_url=%s&client_reference_id=%s"
        "&expires_at=%ld",
        co_id, co_id, er, ec, en, (long) time(NULL) + expires_in);
#undef LI

    free(en);
    free(er);
    free(ec);

    j = json_pack("{s:s, s:s, s:s}", "path", "/v1/checkout/sessions",
                  "content_type", "application/x-www-form-urlencoded",
                  "body", form);
    psp_req = dump(j);

    orders = str_printf("[{\"payment_order_id\":\"%s_p1\",\"seller_account\":"
                        "\"seller_1\",\"amount_minor\":1000},"
                        "{\"payment_order_id\":\"%s_p2\",\"seller_account\":"
                        "\"seller_2\",\"amount_minor\":500}]", co_id, co_id);
    expires = str_printf("%ld", (long) time(NULL) + expires_in);

    {
        const char  *p[] = {
            m->id, key, fp, lease_seconds, "86400", co_id,
            env("PAY_TEST_PSP"), "USD", "1500",
            SHOP_ORIGIN "/thanks", SHOP_ORIGIN "/cart", "ann@example.com",
            expires, psp_req, orders,
            "{\"type\":\"about:blank\",\"title\":\"Duplicate order\","
            "\"status\":409,\"code\":\"duplicate_order\"}"
        };

        outcome = db_scalar("SELECT outcome FROM pay_claim($1, $2, $3, $4, "
                            "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                            "$15, $16)", 16, p);
    }

    cr_assert_not_null(outcome);
    cr_assert_str_eq(outcome, "claimed");

    json_decref(co);
    return ret;
}


static char *
claim_directly(const merchant_t *m, const char *key, const char *co_id,
    const char *body, const char *lease_seconds, const char *marker)
{
    return claim_directly_expiring(m, key, co_id, body, lease_seconds, marker,
                                   3600);
}


/* GET the mock's session as the PSP holds it */
static json_t *
mock_session(const char *token)
{
    char    *auth, *surl;
    resp_t  *s;

    auth = file_read(run_file("conf/psp.secret"), NULL);
    auth = str_printf("Authorization: Bearer %s", auth);
    surl = str_printf("%s/v1/checkout/sessions/%s", env("PAY_TEST_MOCK"),
                      token);

    {
        const char  *h[] = { auth, NULL };
        req_t        rq = { "GET", surl, h, NULL, 0 };

        s = http(&rq);
    }

    cr_assert_eq(s->status, 200, "mock session %s: %ld %s", token, s->status,
                 s->body);
    return resp_json(s);
}


Test(lease, answers_409_while_another_process_holds_the_lease)
{
    char        *key, *co_id, *body;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    claim_directly(&m, key, co_id, body, "30", "live-lease");

    r = api_post(&m, key, body);
    expect_problem(r, 409, "idempotency_key_in_use");
    cr_assert_not_null(resp_header(r, "Retry-After"));
}


Test(lease, takes_over_an_expired_lease_and_resumes_the_stored_request)
{
    long         sessions;
    char        *key, *co_id, *body, *marker, *ret, *auth, *surl;
    resp_t      *r, *s;
    const char  *token;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    marker = uid("mark");

    ret = claim_directly(&m, key, co_id, body, "1", marker);

    /* the holder "died"; its 1 s lease runs out */
    msleep(1500);

    r = api_post(&m, key, body);
    cr_assert_eq(r->status, 201, "after the lease: %ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r), "status")),
                     "EXECUTING");
    token = json_string_value(json_object_get(resp_json(r), "psp_token"));
    cr_assert_not_null(token);

    mock_registrations(nonce(&m, co_id), &sessions, NULL);
    cr_assert_eq(sessions, 1);

    /* the PSP got the stored request, not a rebuilt one */
    auth = file_read(run_file("conf/psp.secret"), NULL);
    auth = str_printf("Authorization: Bearer %s", auth);
    surl = str_printf("%s/v1/checkout/sessions/%s", env("PAY_TEST_MOCK"), token);

    {
        const char  *h[] = { auth, NULL };
        req_t        rq = { "GET", surl, h, NULL, 0 };

        s = http(&rq);
    }

    cr_assert_eq(s->status, 200, "mock session %s: %ld %s", token, s->status,
                 s->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(s),
                                                       "success_url")), ret);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(s),
                                                       "client_reference_id")),
                     nonce(&m, co_id));
}


/*
 * A resume long after the claim: the stored expires_at is now under
 * Stripe's 30 min floor (or past).  The stored bytes, sent first, are
 * refused; the gateway rebuilds the request with a fresh expires_at under
 * the same nonce, stores it, and registers (API.md: retries resume).
 */
Test(lease, a_resume_past_the_psps_expiry_floor_registers_with_a_fresh_expiry)
{
    long         sessions, now, exp, i;
    long         stored[] = { 600, -60 };
    char        *key, *co_id, *body, *ret;
    resp_t      *r, *again;
    json_t      *j, *session;
    const char  *token;
    merchant_t   m;

    merchant_new(&m);

    for (i = 0; i < 2; i++) {
        key = uid("key");
        co_id = uid("co");
        body = body_for(co_id);

        ret = claim_directly_expiring(&m, key, co_id, body, "1", uid("mark"),
                                      stored[i]);
        msleep(1500);

        r = api_post(&m, key, body);
        now = (long) time(NULL);
        cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
        j = resp_json(r);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                         "EXECUTING", "%s", r->body);
        token = json_string_value(json_object_get(j, "psp_token"));
        cr_assert_not_null(token);

        /* one session, made from the rebuilt request: 1 h ahead again */
        mock_registrations(nonce(&m, co_id), &sessions, NULL);
        cr_assert_eq(sessions, 1);
        session = mock_session(token);
        exp = (long) json_integer_value(json_object_get(session,
                                                        "expires_at"));
        cr_assert(exp >= now + 3600 - 60 && exp <= now + 3600,
                  "session expires_at %ld, now %ld", exp, now);
        cr_assert_str_neq(json_string_value(json_object_get(session,
                                                            "success_url")),
                          ret);
        cr_assert_str_eq(json_string_value(json_object_get(session,
                                               "client_reference_id")),
                         nonce(&m, co_id));

        {
            const char  *p[] = { m.id, co_id };

            cr_assert_str_eq(db_scalar("SELECT ts_epoch(expires_at) FROM "
                                       "checkouts WHERE merchant_id = $1 "
                                       "AND checkout_id = $2", 2, p),
                             str_printf("%ld", exp));
            cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log "
                                       "WHERE merchant_id = $1 AND "
                                       "checkout_id = $2 AND action = "
                                       "'registration:refreshed'", 2, p),
                             "1");
        }

        again = api_post(&m, key, body);
        cr_assert_eq(again->status, 201);
        cr_assert_str_eq(replayed(again), "true");
        cr_assert(same_bytes(r, again));
    }

    {
        const char  *p[] = { m.id };

        cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, p), "t");
    }
}


/*
 * The same, but the stored request had reached the PSP: its session exists
 * (the answer was lost with the holder).  The stored bytes are sent first
 * and the PSP answers that session again; rebuilt bytes under the same key
 * are refused by Stripe (400 idempotency_error: other parameters), which
 * stored the checkout FAILED although the shopper could still pay it.
 */
Test(lease, a_resume_whose_session_exists_gets_it_though_its_expiry_is_close)
{
    long         sessions, requests;
    char        *key, *co_id, *body, *auth, *stored_body, *path, *ctype;
    resp_t      *made, *r;
    json_t      *stored;
    const char  *token;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    /* stored with an expiry 30 min and 10 s ahead: the PSP's floor is
     * 30 min, the gateway's 30 min plus its 20 s lease */
    (void) claim_directly_expiring(&m, key, co_id, body, "1", uid("mark"),
                                   1810);

    /* the holder had sent it: the session exists at the PSP */
    {
        const char  *p[] = { m.id, co_id };

        stored = json_loads(db_scalar("SELECT psp_request FROM checkouts WHERE"
                                      " merchant_id = $1 AND checkout_id = $2",
                                      2, p), 0, NULL);
    }
    cr_assert_not_null(stored);
    path = str_printf("%s%s", env("PAY_TEST_MOCK"),
                      json_string_value(json_object_get(stored, "path")));
    ctype = str_printf("Content-Type: %s", json_string_value(
                           json_object_get(stored, "content_type")));
    stored_body = strdup(json_string_value(json_object_get(stored, "body")));
    auth = str_printf("Authorization: Bearer %s",
                      file_read(run_file("conf/psp.secret"), NULL));
    {
        const char  *h[] = { auth, ctype,
                             str_printf("Idempotency-Key: %s",
                                        nonce(&m, co_id)), NULL };
        req_t        rq = { "POST", path, h, stored_body, (size_t) -1 };

        made = http(&rq);
    }
    cr_assert_eq(made->status, 200, "%s", made->body);
    token = json_string_value(json_object_get(resp_json(made), "id"));
    cr_assert_not_null(token);

    msleep(1500);       /* the claim's 1 s lease runs out */
    r = api_post(&m, key, body);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING", "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")),
                     token, "the session the PSP has");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 2, "the holder's, and the stored bytes again");
}


/*
 * API.md: a PSP that refuses our credentials is a 502 with nothing stored.
 * The claim is undone, so the same orders register under a new key once
 * the PSP takes the credentials again (here: one 401, then it accepts).
 */
Test(duplicates, a_credentials_refusal_leaves_the_orders_free_for_a_new_key)
{
    long         sessions, requests;
    char        *co_id, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    body = body_for(co_id);
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":401}", nonce(&m, co_id)));

    a = api_post(&m, uid("key"), body);
    expect_problem(a, 502, "psp_unavailable");

    {
        const char  *p[] = { m.id, co_id };

        cr_assert_str_eq(db_scalar(
            "SELECT (SELECT count(*) FROM checkouts WHERE merchant_id = $1)"
            " + (SELECT count(*) FROM payment_orders WHERE merchant_id = $1)"
            " + (SELECT count(*) FROM order_events WHERE merchant_id = $1)"
            " + (SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1)"
            " + (SELECT count(*) FROM checkouts WHERE checkout_id = $2)",
            2, p), "0");
    }

    b = api_post(&m, uid("key"), body);
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(b),
                                                       "status")),
                     "EXECUTING");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 2);

    {
        const char  *p[] = { m.id };

        cr_assert_str_eq(db_scalar(
            "SELECT string_agg(action, ',' ORDER BY seq) FROM audit_log"
            " WHERE merchant_id = $1 AND action <> 'audit:chains_opened'", 1, p),
            "registration:claimed,registration:abandoned,"
            "registration:claimed");
        cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, p), "t");
    }
}


/*
 * A credentials refusal on a resumed claim is different: an earlier
 * request's attempt may have made a session under the nonce, so the claim
 * stays, released, and the same key resumes it once the PSP accepts.
 */
Test(lease, a_credentials_refusal_on_a_resume_keeps_the_claim_resumable)
{
    long         sessions;
    char        *key, *co_id, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);

    claim_directly(&m, key, co_id, body, "1", uid("mark"));
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":403}", nonce(&m, co_id)));
    msleep(1500);

    a = api_post(&m, key, body);
    expect_problem(a, 502, "psp_unavailable");

    {
        const char  *p[] = { m.id, key };

        cr_assert_str_eq(db_scalar("SELECT state FROM idempotency_keys "
                                   "WHERE merchant_id = $1 AND idem_key = $2",
                                   2, p), "in_progress");
    }

    b = api_post(&m, key, body);
    cr_assert_eq(b->status, 201, "%ld %s", b->status, b->body);
    mock_registrations(nonce(&m, co_id), &sessions, NULL);
    cr_assert_eq(sessions, 1);
}
