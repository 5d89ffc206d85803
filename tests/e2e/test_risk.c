/*
 * End to end: the risk check before any PSP call (doc/RISK.md).  Each
 * policy is configured on a server of its own (chosen by Host) on the port
 * PAY_TEST_GW_LIMITS (tests/e2e/nginx.conf.in), in front of the mock's
 * risk provider (tests/mock_psp/risk.c), which answers by the buyer's
 * e-mail: risk-deny@, risk-review@, risk-slow@, risk-500@, ...
 *
 * Every test checks what reached the PSP (the mock's requests under the
 * checkout's nonce) and what the provider was asked (its count per
 * checkout), besides the answer and the stored checkout.
 */

#include "harness.h"


#define HOST_DENY     "deny.risk.test"      /* on_error=deny (the default) */
#define HOST_ALLOW    "allow.risk.test"     /* on_error=allow */
#define HOST_REVIEW   "review.risk.test"    /* on_error=review */
#define HOST_FILTER   "filter.risk.test"    /* currencies=EUR,JPY
                                               min_amount=5000 */


static resp_t *
rk_post(const char *host, const merchant_t *m, const char *key,
    const char *body)
{
    req_t        rq;
    const char  *h[5];

    h[0] = str_printf("Host: %s", host);
    h[1] = str_printf("Authorization: Bearer %s", m->key);
    h[2] = str_printf("Idempotency-Key: %s", key);
    h[3] = "Content-Type: application/json";
    h[4] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s%s", env("PAY_TEST_GW_LIMITS"), PATH_PAYMENTS);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


/* a checkout of the harness's body with this buyer e-mail */
static char *
rk_body(const char *checkout_id, const char *email)
{
    char    *s;
    json_t  *co;

    co = checkout_new(checkout_id, 2);
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string(email));
    s = dump(co);
    json_decref(co);

    return s;
}


/* how many requests the provider got for the checkout */
static long
rk_asked(const char *checkout_id)
{
    long     n;
    resp_t  *r;

    r = http_get(str_printf("%s/_control/asked?checkout_id=%s",
                            env("PAY_TEST_RISK"), checkout_id));
    cr_assert_eq(r->status, 200, "the mock's risk control: %ld %s",
                 r->status, r->body);
    n = (long) json_integer_value(json_object_get(resp_json(r),
                                                  "requests"));
    resp_free(r);

    return n;
}


/* The gateway asks once per checkout and never again on a replay. A
 * dropped connection is the one exception the transport makes: libcurl
 * sends a request once more, on a fresh connection, when a kept-alive one
 * turns out closed before any byte of an answer (doc/RISK.md), so a
 * provider that drops may be asked twice, never more. */
static long
rk_expect_asked(const char *checkout_id, const char *email)
{
    long  n;

    n = rk_asked(checkout_id);

    if (strncmp(email, "risk-drop", 9) == 0) {
        cr_assert(n == 1 || n == 2, "a dropping provider asked %ld times "
                  "(once, or twice by libcurl's resend)", n);
        return n;
    }

    cr_assert_eq(n, 1, "the provider asked %ld times", n);

    return n;
}


/* what the PSP got under the checkout's nonce */
static long
rk_psp_requests(const merchant_t *m, const char *checkout_id)
{
    long  sessions, requests;

    mock_registrations(nonce(m, checkout_id), &sessions, &requests);

    return requests;
}


static json_t *
rk_checkout(const merchant_t *m, const char *checkout_id)
{
    json_t  *j;
    resp_t  *r;

    r = api_get(m, str_printf("/v1/checkouts/%s", checkout_id));
    cr_assert_eq(r->status, 200, "GET checkout: %ld %s", r->status, r->body);
    j = json_incref(resp_json(r));
    resp_free(r);

    return j;
}


static char *
rk_audit(const merchant_t *m, const char *checkout_id)
{
    const char  *p[] = { m->id, checkout_id };

    return db_scalar("SELECT coalesce(string_agg(action || ':' || "
                     "coalesce(detail->>'reason', '') || ':' || "
                     "coalesce(detail->>'source', ''), ',' ORDER BY seq), "
                     "'') FROM audit_log WHERE merchant_id = $1 AND "
                     "checkout_id = $2 AND action LIKE 'risk:%'", 2, p);
}


/* a refusal by the deny policy, or by the provider: 403 risk_declined,
 * nothing at the PSP, the checkout FAILED with the reason, replayed */
static void
rk_expect_denied(const char *host, const char *email, const char *reason,
    const char *source)
{
    long         asked;
    char        *id, *key, *body, *detail;
    json_t      *co, *risk;
    resp_t      *r, *again;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rk");
    key = uid("key");
    body = rk_body(id, email);

    r = rk_post(host, &m, key, body);
    expect_problem(r, 403, "risk_declined");
    detail = str_printf("(%s)", reason);
    cr_assert_not_null(strstr(json_string_value(json_object_get(resp_json(r),
                                                                "detail")),
                              detail),
                       "the detail names the reason %s: %s", reason, r->body);

    cr_assert_eq(rk_psp_requests(&m, id), 0, "the PSP was called");
    asked = rk_expect_asked(id, email);

    co = rk_checkout(&m, id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "FAILED");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "failure"), "code")),
                     "risk_declined");
    risk = json_object_get(co, "risk");
    cr_assert_str_eq(json_string_value(json_object_get(risk, "verdict")),
                     "deny");
    cr_assert_str_eq(json_string_value(json_object_get(risk, "reason")),
                     reason);
    cr_assert_str_eq(json_string_value(json_object_get(risk, "source")),
                     source);
    cr_assert_str_eq(rk_audit(&m, id),
                     str_printf("risk:deny:%s:%s", reason, source));
    json_decref(co);

    /* the same key replays the refusal, without asking anyone again */
    again = rk_post(host, &m, key, body);
    cr_assert_eq(again->status, 403, "%ld %s", again->status, again->body);
    cr_assert_str_eq(again->body, r->body);
    cr_assert_eq(rk_asked(id), asked, "asked again on a replay");
    cr_assert_eq(rk_psp_requests(&m, id), 0, "the PSP was called");

    resp_free(again);
    resp_free(r);
}


/* the on_error=allow or review policy in place of an answer */
static void
rk_expect_policy(const char *host, const char *email, long status,
    const char *checkout_status, const char *verdict, const char *reason)
{
    char        *id;
    json_t      *co, *risk;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rk");

    r = rk_post(host, &m, uid("key"), rk_body(id, email));
    cr_assert_eq(r->status, status, "%s: %ld %s", email, r->status,
                 r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     checkout_status);

    cr_assert_eq(rk_psp_requests(&m, id), status == 201 ? 1 : 0);

    co = rk_checkout(&m, id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     checkout_status);
    risk = json_object_get(co, "risk");
    cr_assert_str_eq(json_string_value(json_object_get(risk, "verdict")),
                     verdict);
    cr_assert_str_eq(json_string_value(json_object_get(risk, "source")),
                     "on_error");
    cr_assert_str_eq(json_string_value(json_object_get(risk, "reason")),
                     reason);
    json_decref(co);
    resp_free(r);
}


Test(risk, allow_registers_as_without_a_check)
{
    char        *id;
    long         sessions, requests;
    json_t      *co, *risk;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rk");

    r = rk_post(HOST_DENY, &m, uid("key"), rk_body(id, "ann@example.com"));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING");
    cr_assert_not_null(json_object_get(resp_json(r), "pay_url"));

    mock_registrations(nonce(&m, id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(rk_asked(id), 1);

    co = rk_checkout(&m, id);
    risk = json_object_get(co, "risk");
    cr_assert_str_eq(json_string_value(json_object_get(risk, "verdict")),
                     "allow");
    cr_assert_eq(json_integer_value(json_object_get(risk, "score")), 10);
    cr_assert_str_eq(json_string_value(json_object_get(risk, "source")),
                     "provider");
    cr_assert_str_eq(rk_audit(&m, id), "risk:allow::provider");
    json_decref(co);
    resp_free(r);
}


/* the transactions that wrote the checkout's claim and its verdict */
static long
rk_claim_transactions(const merchant_t *m, const char *checkout_id)
{
    const char  *p[] = { m->id, checkout_id };

    return atol(db_scalar("SELECT count(DISTINCT xmin::text) FROM audit_log"
                          " WHERE merchant_id = $1 AND checkout_id = $2"
                          " AND (action = 'registration:claimed'"
                          " OR action LIKE 'risk:%')", 2, p));
}


Test(risk, a_fresh_checkouts_verdict_is_committed_with_its_claim)
{
    size_t       i;
    char        *id;
    resp_t      *r;
    merchant_t   m;
    static const struct {
        const char  *email;
        long         status;
    } cases[] = {
        { "ann@example.com", 201 },
        { "risk-deny@example.com", 403 },
        { "risk-review@example.com", 202 },
    };

    merchant_new(&m);

    /* asked before the claim, stored in the claim's own transaction: one
     * commit before the PSP call, as without a check (doc/RISK.md) */
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        id = uid("co_rk");

        r = rk_post(HOST_DENY, &m, uid("key"), rk_body(id, cases[i].email));
        cr_assert_eq(r->status, cases[i].status, "%s: %ld %s",
                     cases[i].email, r->status, r->body);
        cr_assert_eq(rk_asked(id), 1);
        cr_expect_eq(rk_claim_transactions(&m, id), 1,
                     "%s: the claim and its verdict were committed apart",
                     cases[i].email);
        resp_free(r);
    }
}


Test(risk, a_known_key_or_checkout_is_claimed_before_the_provider_is_asked)
{
    char        *id, *key, *body;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rk");
    key = uid("key");
    body = rk_body(id, "ann@example.com");

    r = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
    cr_assert_eq(rk_asked(id), 1);

    /* the same key: the 201 replayed, the provider not asked */
    r = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);
    cr_expect_eq(rk_asked(id), 1, "asked again on a replay");

    /* the checkout under another key: 409, the provider not asked */
    r = rk_post(HOST_DENY, &m, uid("key"), body);
    expect_problem(r, 409, "duplicate_order");
    resp_free(r);
    cr_expect_eq(rk_asked(id), 1, "asked about a checkout_id already used");
    cr_expect_eq(rk_psp_requests(&m, id), 1);
}


Test(risk, deny_answers_403_and_calls_no_psp)
{
    rk_expect_denied(HOST_DENY, "risk-deny@example.com", "mock.denied",
                     "provider");
}


Test(risk, deny_by_amount)
{
    char        *id;
    json_t      *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rk");

    /* 6.66 USD: 666 minor units, the mock's deny by amount */
    co = checkout_new(id, 1);
    json_object_set_new(order_of(co, 0), "amount", json_string("6.66"));

    r = rk_post(HOST_DENY, &m, uid("key"), dump(co));
    expect_problem(r, 403, "risk_declined");
    cr_assert_eq(rk_psp_requests(&m, id), 0);

    json_decref(co);
    resp_free(r);
}


Test(risk, a_slow_provider_is_denied_by_default)
{
    rk_expect_denied(HOST_DENY, "risk-slow@example.com", "timeout",
                     "on_error");
}


Test(risk, a_hanging_provider_is_denied_by_default)
{
    rk_expect_denied(HOST_DENY, "risk-hang@example.com", "timeout",
                     "on_error");
}


Test(risk, a_failing_provider_is_denied_by_default)
{
    rk_expect_denied(HOST_DENY, "risk-500@example.com", "unavailable",
                     "on_error");
}


Test(risk, a_dropped_connection_is_denied_by_default)
{
    rk_expect_denied(HOST_DENY, "risk-drop@example.com", "unavailable",
                     "on_error");
}


Test(risk, a_malformed_answer_is_denied_by_default)
{
    rk_expect_denied(HOST_DENY, "risk-malformed@example.com", "malformed",
                     "on_error");
}


Test(risk, a_forged_answer_is_refused)
{
    rk_expect_denied(HOST_DENY, "risk-badsig@example.com", "signature",
                     "on_error");
}


Test(risk, an_unsigned_answer_is_refused)
{
    rk_expect_denied(HOST_DENY, "risk-unsigned@example.com", "signature",
                     "on_error");
}


/* a signed allow is bound to the request it answers: the answer to
 * another checkout, played back, is no answer */
Test(risk, an_answer_signed_for_another_request_is_refused)
{
    rk_expect_denied(HOST_DENY, "risk-replay@example.com", "signature",
                     "on_error");
}


Test(risk, on_error_allow_registers_without_a_verdict)
{
    rk_expect_policy(HOST_ALLOW, "risk-500@example.com", 201, "EXECUTING",
                     "allow", "unavailable");
}


Test(risk, on_error_allow_still_obeys_a_deny)
{
    rk_expect_denied(HOST_ALLOW, "risk-deny@example.com", "mock.denied",
                     "provider");
}


Test(risk, on_error_review_holds_the_checkout)
{
    rk_expect_policy(HOST_REVIEW, "risk-malformed@example.com", 202,
                     "REVIEW", "review", "malformed");
}


Test(risk, review_answers_202_and_calls_no_psp)
{
    char        *id, *key, *body;
    json_t      *co, *risk;
    resp_t      *r, *again;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rk");
    key = uid("key");
    body = rk_body(id, "risk-review@example.com");

    r = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(r->status, 202, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "REVIEW");
    cr_assert_null(json_object_get(resp_json(r), "pay_url"));
    cr_assert_eq(rk_psp_requests(&m, id), 0);

    co = rk_checkout(&m, id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "REVIEW");
    risk = json_object_get(co, "risk");
    cr_assert_str_eq(json_string_value(json_object_get(risk, "verdict")),
                     "review");
    cr_assert_eq(json_integer_value(json_object_get(risk, "score")), 500);
    json_decref(co);

    again = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(again->status, 202);
    cr_assert_str_eq(again->body, r->body);
    cr_assert_eq(rk_asked(id), 1);
    cr_assert_eq(rk_psp_requests(&m, id), 0);

    resp_free(again);
    resp_free(r);
}


Test(risk, only_the_configured_checkouts_are_checked)
{
    char        *usd, *small, *big;
    json_t      *co;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    usd = uid("co_rk");
    small = uid("co_rk");
    big = uid("co_rk");

    /* USD: not one of currencies= */
    r = rk_post(HOST_FILTER, &m, uid("key"), body_for(usd));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_eq(rk_asked(usd), 0);
    resp_free(r);

    /* 15.00 EUR: under min_amount= 5000 minor units */
    co = checkout_new(small, 2);
    json_object_set_new(order_of(co, 0), "currency", json_string("EUR"));
    json_object_set_new(order_of(co, 1), "currency", json_string("EUR"));
    r = rk_post(HOST_FILTER, &m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_eq(rk_asked(small), 0);
    json_decref(co);
    resp_free(r);

    /* 60.00 EUR: checked */
    co = checkout_new(big, 2);
    json_object_set_new(order_of(co, 0), "currency", json_string("EUR"));
    json_object_set_new(order_of(co, 1), "currency", json_string("EUR"));
    json_object_set_new(order_of(co, 0), "amount", json_string("55.00"));
    r = rk_post(HOST_FILTER, &m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_eq(rk_asked(big), 1);
    json_decref(co);
    resp_free(r);
}


Test(risk, metrics_count_verdicts_and_errors)
{
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    resp_free(rk_post(HOST_DENY, &m, uid("key"),
                      rk_body(uid("co_rk"), "risk-deny@example.com")));
    resp_free(rk_post(HOST_DENY, &m, uid("key"),
                      rk_body(uid("co_rk"), "risk-malformed@example.com")));

    r = gw_get("/metrics");
    cr_assert_eq(r->status, 200);
    cr_assert_not_null(strstr(r->body, "# TYPE payments_risk_decisions_total "
                                       "counter"));
    cr_assert_null(strstr(r->body, "payments_risk_decisions_total{verdict="
                                   "\"deny\"} 0\n"),
                   "no deny counted");
    cr_assert_null(strstr(r->body, "payments_risk_errors_total{reason="
                                   "\"malformed\"} 0\n"),
                   "no malformed answer counted");
    cr_assert_null(strstr(r->body, "payments_risk_request_duration_seconds_"
                                   "count 0\n"));
    resp_free(r);
}


/* -- the review queue ------------------------------------------------------ */

/* a review API request with this bearer key (NULL: the admin key) */
static resp_t *
rk_admin(const char *method, const char *path, const char *key)
{
    req_t        rq;
    const char  *h[3];

    if (key == NULL) {
        key = file_read(env("PAY_TEST_ADMIN_KEY"), NULL);
        secret_used(key);
    }

    h[0] = str_printf("Authorization: Bearer %s", key);
    h[1] = strcmp(method, "POST") == 0 ? "Content-Length: 0" : NULL;
    h[2] = NULL;

    rq.method = method;
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = strcmp(method, "POST") == 0 ? "" : NULL;
    rq.len = 0;

    return http(&rq);
}


/* a checkout held for review: its id and Idempotency-Key */
static void
rk_held(const merchant_t *m, char **id, char **key, char **body)
{
    resp_t  *r;

    *id = uid("co_rv");
    *key = uid("key");
    *body = rk_body(*id, "risk-review@example.com");

    r = rk_post(HOST_DENY, m, *key, *body);
    cr_assert_eq(r->status, 202, "%ld %s", r->status, r->body);
    resp_free(r);
}


static char *
rk_status(const merchant_t *m, const char *id)
{
    char    *s;
    json_t  *co;

    co = rk_checkout(m, id);
    s = strdup(json_string_value(json_object_get(co, "status")));
    json_decref(co);

    return s;
}


/* A test merchant's checkout held for review whose PSP name is now a live
 * PSP (its mode= changed since it was held, written here in SQL): the
 * approval never sends test money to a live PSP; it stays held. */
Test(risk, an_approval_never_sends_to_a_psp_of_the_other_mode)
{
    long          sessions, requests;
    char         *id, *key, *body, *n;
    resp_t       *r;
    merchant_t    m;
    const char   *a[2];

    merchant_new(&m);
    rk_held(&m, &id, &key, &body);
    n = nonce(&m, id);

    a[0] = m.id;
    a[1] = id;
    db_exec("BEGIN", 0, NULL);
    db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec("UPDATE checkouts SET psp = 'mock_live' WHERE merchant_id = $1 "
            "AND checkout_id = $2", 2, a);
    db_exec("COMMIT", 0, NULL);

    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 502, "psp_unavailable");
    cr_assert(mem_contains(r->body, r->len, "another mode"), "%s", r->body);

    mock_registrations(n, &sessions, &requests);
    cr_assert_eq(sessions, 0, "a live session was made for test money");
    cr_assert_eq(requests, 0);
    cr_assert_str_eq(db_scalar("SELECT status FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2, a),
                     "REVIEW");
}


/* A checkout held for review whose merchant removed the origin of its
 * return URLs since: the approval does not send it (its shoppers would be
 * sent there as they come back from the PSP); it stays held, to be
 * rejected. */
Test(risk, an_approval_after_the_merchant_removed_its_origin_is_not_sent)
{
    long          sessions, requests;
    char         *id, *key, *body, *n;
    resp_t       *r;
    merchant_t    m;
    const char   *a[2];

    merchant_new(&m);
    rk_held(&m, &id, &key, &body);
    n = nonce(&m, id);

    a[0] = m.id;
    a[1] = id;
    db_exec("UPDATE merchant_return_origins SET origin = "
            "'https://moved.example' WHERE merchant_id = $1 AND $2::text "
            "IS NOT NULL", 2, a);

    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 400, "forbidden_return_url");
    cr_assert(mem_contains(r->body, r->len, "reject the review"), "%s",
              r->body);

    mock_registrations(n, &sessions, &requests);
    cr_assert_eq(requests, 0, "sent to the PSP");
    cr_assert_str_eq(db_scalar("SELECT status FROM checkouts WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2, a),
                     "REVIEW");

    /* the origin back: approved and sent */
    db_exec("UPDATE merchant_return_origins SET origin = '" SHOP_ORIGIN "'"
            " WHERE merchant_id = $1 AND $2::text IS NOT NULL", 2, a);
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    mock_registrations(n, &sessions, &requests);
    cr_assert_eq(sessions, 1);
}


Test(risk, the_review_api_takes_the_admin_key_only)
{
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);

    r = rk_admin("GET", "/v1/reviews", m.key);
    expect_problem(r, 401, "unauthorized");
    resp_free(r);

    r = rk_admin("POST", "/v1/reviews/x:y/approve",
                 "adm_0000000000000000000000000000000000000000000000000");
    expect_problem(r, 401, "unauthorized");
    resp_free(r);

    r = rk_admin("GET", "/v1/reviews", NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert(json_is_array(json_object_get(resp_json(r), "reviews")));
    resp_free(r);

    /* one shard's queue: payments_database's is "default"; a name not
     * configured is refused, not ignored */
    r = rk_admin("GET", str_printf("/v1/reviews?shard=%s",
                                   shards_n() > 1 ? "a" : "default"), NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert(json_is_array(json_object_get(resp_json(r), "reviews")));
    resp_free(r);

    r = rk_admin("GET", "/v1/reviews?shard=zz", NULL);
    expect_problem(r, 400, "invalid_request");
    resp_free(r);

    /* nothing held under that name */
    r = rk_admin("POST", str_printf("/v1/reviews/%s:co_none/approve", m.id),
                 NULL);
    expect_problem(r, 404, "not_found");
    resp_free(r);
}


Test(risk, approval_registers_one_session_and_the_shopper_pays)
{
    int          i, listed;
    char        *id, *key, *body, *n, *pay_url;
    long         sessions, requests;
    size_t       j;
    json_t      *list, *it, *ds;
    resp_t      *r, *again, *shop;
    endpoint_t   ep;
    merchant_t   m;

    merchant_new(&m);
    endpoint_add(&m, NULL, &ep);
    rk_held(&m, &id, &key, &body);
    n = nonce(&m, id);

    /* in the queue, with its provider's score */
    r = rk_admin("GET", "/v1/reviews", NULL);
    cr_assert_eq(r->status, 200);
    list = json_object_get(resp_json(r), "reviews");
    listed = 0;
    json_array_foreach(list, j, it) {
        if (strcmp(json_string_value(json_object_get(it, "nonce")), n) == 0) {
            listed = 1;
            cr_assert_eq(json_integer_value(json_object_get(it, "score")),
                         500);
            cr_assert_str_eq(json_string_value(json_object_get(it,
                                                  "amount_total")), "15.00");
        }
    }
    cr_assert(listed, "not in the review queue: %s", r->body);
    resp_free(r);

    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING");
    pay_url = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "pay_url")));

    mock_registrations(n, &sessions, &requests);
    cr_assert_eq(sessions, 1);

    /* approving again registers nothing more */
    again = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert_eq(again->status, 201, "%ld %s", again->status, again->body);
    cr_assert_str_eq(again->body, r->body);
    mock_registrations(n, &sessions, &requests);
    cr_assert_eq(sessions, 1);
    cr_assert_eq(requests, 1);
    resp_free(again);

    /* the shop's own retry with its key now replays the registration */
    shop = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(shop->status, 201, "%ld %s", shop->status, shop->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(shop),
                                                       "pay_url")), pay_url);
    cr_assert_eq(rk_asked(id), 1);
    resp_free(shop);

    /* the pay link takes the shopper to the session, who pays */
    shop = http_get(gw_url_for(pay_url));
    cr_assert_eq(shop->status, 303, "%ld %s", shop->status, shop->body);
    resp_free(shop);

    {
        req_t  rq;

        memset(&rq, 0, sizeof(req_t));
        rq.method = "POST";
        rq.url = mock_url(str_printf("/_control/sessions/%s/pay",
                                     json_string_value(json_object_get(
                                         resp_json(r), "psp_token"))));
        rq.body = "";
        rq.len = 0;
        shop = http(&rq);
        cr_assert(shop->status >= 200 && shop->status < 300, "mock pay: "
                  "%ld %s", shop->status, shop->body);
        resp_free(shop);
    }

    for (i = 0; i < 100 && strcmp(rk_status(&m, id), "SUCCESS") != 0; i++) {
        msleep(100);
    }
    cr_assert_str_eq(rk_status(&m, id), "SUCCESS");
    cr_assert_str_eq(rk_audit(&m, id),
                     "risk:review:mock.review:provider,risk:approved::");

    /* the merchant was told: approved, then paid */
    ds = receiver_wait(ep.name, "204", 2, 20);
    cr_assert_eq(deliveries_count(ds, "204", "checkout.approved"), 1);
    cr_assert_eq(deliveries_count(ds, "204", "checkout.succeeded"), 1);
    json_decref(ds);

    resp_free(r);
}


Test(risk, an_approval_older_than_the_psps_key_is_not_sent_again,
     .description = "an approval the PSP never answered is sent again "
                    "while the PSP keeps its key, and not once the first "
                    "approval is older than that: 502 saying so")
{
    char        *id, *key, *body, *n;
    long         before, sessions, requests;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    rk_held(&m, &id, &key, &body);
    n = nonce(&m, id);
    (void) mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":100}",
                                 n));

    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 502, "psp_unavailable");
    resp_free(r);
    mock_registrations(n, &sessions, &requests);
    cr_assert_gt(requests, 0, "the first approval reached no PSP");
    cr_assert_eq(sessions, 0);

    /* within the PSP's key window: resumed, the same request again */
    before = requests;
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 502, "psp_unavailable");
    resp_free(r);
    mock_registrations(n, &sessions, &requests);
    cr_assert_gt(requests, before, "a resumed approval was not sent");

    /* a day after the first approval, Stripe has forgotten its key: a
     * request sent now could be a second session, or a second charge */
    db_exec("UPDATE checkout_risk SET reviewed_at = reviewed_at - "
            "interval '25 hours' WHERE merchant_id = $1 AND "
            "checkout_id = $2", 2, (const char *[]) { m.id, id });
    before = requests;

    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 502, "psp_unavailable");
    cr_expect_not_null(strstr(r->body, "not sent again"), "%s", r->body);
    resp_free(r);
    mock_registrations(n, &sessions, &requests);
    cr_expect_eq(requests, before, "an approval older than the PSP's key "
                 "window was sent again");
    cr_expect_str_eq(rk_status(&m, id), "EXECUTING");
}


Test(risk, rejection_fails_the_checkout_without_a_psp)
{
    char        *id, *key, *body, *n;
    json_t      *co, *ds, *d;
    size_t       j;
    resp_t      *r, *again;
    endpoint_t   ep;
    merchant_t   m;

    merchant_new(&m);
    endpoint_add(&m, NULL, &ep);
    rk_held(&m, &id, &key, &body);
    n = nonce(&m, id);

    r = rk_admin("POST", str_printf("/v1/reviews/%s/reject", n), NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);

    co = rk_checkout(&m, id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "FAILED");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "failure"), "code")),
                     "risk_rejected");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "risk"), "review")),
                     "rejected");
    json_decref(co);

    /* decided: neither approved nor rejected again */
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 404, "not_found");
    resp_free(r);

    /* the shop's key now replays a refusal */
    again = rk_post(HOST_DENY, &m, key, body);
    expect_problem(again, 403, "risk_declined");
    resp_free(again);

    cr_assert_eq(rk_psp_requests(&m, id), 0);
    cr_assert_str_eq(rk_audit(&m, id),
                     "risk:review:mock.review:provider,"
                     "risk:rejected:mock.review:");

    /* the merchant was told why */
    ds = receiver_wait(ep.name, "204", 1, 20);
    cr_assert_eq(deliveries_count(ds, "204", "checkout.failed"), 1);
    json_array_foreach(ds, j, d) {
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
                             json_object_get(d, "data"), "failure"), "code")),
                         "risk_rejected");
    }
    json_decref(ds);
}


Test(risk, a_review_past_its_deadline_fails_by_itself)
{
    char        *id, *key, *body;
    const char  *p[2];
    json_t      *co;
    merchant_t   m;

    merchant_new(&m);
    rk_held(&m, &id, &key, &body);
    p[0] = m.id;
    p[1] = id;

    /* its deadline passed (review= is 24 h here) */
    db_exec("UPDATE checkout_risk SET review_until = now() - interval '1 s'"
            " WHERE merchant_id = $1 AND checkout_id = $2", 2, p);

    /* the sweeper's step, as its round runs it */
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM pay_review_expire(1000,"
                               " '{}') WHERE nonce = $1 || ':' || $2", 2, p),
                     "1");

    co = rk_checkout(&m, id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "FAILED");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "risk"), "review")),
                     "expired");
    json_decref(co);
    cr_assert_eq(rk_psp_requests(&m, id), 0);
}


/* a POST of the merchant API on the suite's gateway, under its own key */
static resp_t *
rk_op(const merchant_t *m, const char *path)
{
    req_t        rq;
    const char  *h[4];

    h[0] = str_printf("Authorization: Bearer %s", m->key);
    h[1] = str_printf("Idempotency-Key: %s", uid("op"));
    h[2] = "Content-Type: application/json";
    h[3] = NULL;

    rq.method = "POST";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = "{}";
    rq.len = (size_t) -1;

    return http(&rq);
}


static long
rk_count(const char *sql, const char *a, const char *b)
{
    const char  *p[] = { a, b };

    return atol(db_scalar(sql, 2, p));
}


/* The shop cancels a checkout a person has not reviewed yet: canceled at
 * the gateway alone (no PSP ever saw it), the review decided by it. */
Test(risk, a_cancel_of_a_held_checkout_cancels_it_and_decides_its_review)
{
    char        *id, *key, *body, *n;
    json_t      *co, *ds;
    resp_t      *r, *again;
    endpoint_t   ep;
    merchant_t   m;

    merchant_new(&m);
    endpoint_add(&m, NULL, &ep);
    rk_held(&m, &id, &key, &body);
    n = nonce(&m, id);

    r = rk_op(&m, str_printf("/v1/checkouts/%s/cancel", id));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "FAILED");
    resp_free(r);

    co = rk_checkout(&m, id);
    cr_assert_str_eq(json_string_value(json_object_get(co, "status")),
                     "FAILED");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "failure"), "code")),
                     "canceled");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(co, "risk"), "review")),
                     "canceled");
    json_decref(co);

    /* out of the queue; neither approved nor rejected after it */
    r = rk_admin("GET", "/v1/reviews", NULL);
    cr_assert_eq(r->status, 200);
    cr_assert_null(strstr(r->body, n), "still in the queue: %s", r->body);
    resp_free(r);
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    expect_problem(r, 404, "not_found");
    resp_free(r);
    r = rk_admin("POST", str_printf("/v1/reviews/%s/reject", n), NULL);
    expect_problem(r, 404, "not_found");
    resp_free(r);

    /* the shop's registration key replays what it answered, no PSP call */
    again = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(again->status, 202, "%ld %s", again->status, again->body);
    resp_free(again);
    cr_assert_eq(rk_psp_requests(&m, id), 0);

    /* the merchant was told */
    ds = receiver_wait(ep.name, "204", 1, 20);
    cr_assert_eq(deliveries_count(ds, "204", "checkout.canceled"), 1);
    json_decref(ds);
}


/* An approval registers the checkout the shop asked for, all of it: a
 * manual capture stays manual at the PSP (else the PSP would capture what
 * the gateway holds as an authorization), and the metadata goes with it.
 * The shopper's payment is then a hold, which the shop captures. */
Test(risk, approval_keeps_manual_capture_and_metadata)
{
    int          i;
    char        *id, *key, *body, *n, *token, *st, *held_until;
    json_t      *co, *session, *md;
    resp_t      *r;
    req_t        rq;
    merchant_t   m;

    merchant_new(&m);
    id = uid("co_rv");
    key = uid("key");

    co = checkout_new(id, 1);
    json_object_set_new(json_object_get(co, "buyer_info"), "email",
                        json_string("risk-review@example.com"));
    json_object_set_new(co, "capture", json_string("manual"));
    json_object_set_new(co, "metadata",
                        json_pack("{s:s, s:s}", "order_ref", "A-17",
                                  "channel", "web"));
    body = dump(co);
    json_decref(co);

    r = rk_post(HOST_DENY, &m, key, body);
    cr_assert_eq(r->status, 202, "%ld %s", r->status, r->body);
    held_until = strdup(json_string_value(json_object_get(resp_json(r),
                                                          "expires_at")));
    resp_free(r);

    n = nonce(&m, id);
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    /* approved at once: the session ends when the checkout said */
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "expires_at")),
                     held_until, "the approval's answer: %s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "capture")),
                     "manual", "the approval's answer: %s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(
                         resp_json(r), "metadata"), "order_ref")),
                     "A-17", "the approval's answer: %s", r->body);
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "psp_token")));
    resp_free(r);

    /* what the PSP was asked for */
    r = http_get(mock_url(str_printf("/_control/sessions/%s", token)));
    cr_assert_eq(r->status, 200, "mock session: %ld %s", r->status, r->body);
    session = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(session, "capture")),
                     "manual", "the approved session captures by itself: "
                     "%s", r->body);
    md = json_object_get(session, "metadata");
    cr_assert_str_eq(json_string_value(json_object_get(md, "order_ref")),
                     "A-17", "the session's metadata: %s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(md, "channel")),
                     "web", "the session's metadata: %s", r->body);
    resp_free(r);

    /* the shopper pays: a hold, nothing booked */
    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/pay", token));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
              r->status, r->body);
    resp_free(r);

    st = NULL;
    for (i = 0; i < 100; i++) {
        st = rk_status(&m, id);
        if (strcmp(st, "EXECUTING") != 0) {
            break;
        }
        msleep(100);
    }
    cr_assert_str_eq(st, "AUTHORIZED");
    cr_assert_eq(rk_count("SELECT count(*) FROM ledger_entries WHERE "
                          "merchant_id = $1 AND $2::text IS NOT NULL",
                          m.id, id), 0, "a hold was booked");

    /* the shop captures it: booked */
    r = rk_op(&m, str_printf("/v1/payments/%s_p1/capture", id));
    cr_assert_eq(r->status, 201, "capture: %ld %s", r->status, r->body);
    resp_free(r);

    for (i = 0; i < 100; i++) {
        if (rk_count("SELECT count(*) FROM payment_orders WHERE "
                     "merchant_id = $1 AND checkout_id = $2 AND status = "
                     "'SUCCESS' AND ledger_updated", m.id, id) == 1)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(rk_count("SELECT count(*) FROM payment_orders WHERE "
                          "merchant_id = $1 AND checkout_id = $2 AND status "
                          "= 'SUCCESS' AND ledger_updated AND "
                          "amount_captured = amount", m.id, id), 1,
                 "the capture is not booked");
    cr_assert_eq(rk_count("SELECT coalesce(sum(amount), 0) FROM "
                          "ledger_entries WHERE merchant_id = $1 AND account "
                          "= 'psp_clearing:' || $2", m.id,
                          env("PAY_TEST_PSP")), 1000);
    cr_assert_str_eq(rk_status(&m, id), "SUCCESS");
}


/* An approval resumed after its first attempt got no session (the PSP
 * answered 503 and asked for an hour), when its stored request's
 * expires_at is too close for the PSP by then (Stripe refuses a session
 * ending within 30 minutes): rebuilt with a fresh expires_at under the
 * same nonce and sent again, as the shop's own resume does; the checkout a
 * person approved stays payable, never FAILED by its own stale bytes. */
Test(risk, a_resumed_approval_too_close_to_its_expires_at_is_refreshed)
{
    char        *id, *key, *body, *n;
    long         at;
    json_t      *j;
    const char  *p[2];
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    rk_held(&m, &id, &key, &body);
    p[0] = m.id;
    p[1] = id;
    n = nonce(&m, id);

    /* the first approval's attempt: 503, no session, the claim kept */
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1,"
                          "\"fail_status\":503,\"retry_after\":3600}", n));
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert(r->status >= 500, "the first approval: %ld %s", r->status,
              r->body);
    resp_free(r);

    /* its stored request now ends in ten minutes */
    db_exec("UPDATE checkouts SET expires_at = now() + interval '10 min', "
            "psp_request = regexp_replace(psp_request, 'expires_at=[0-9]+', "
            "'expires_at=' || (ts_epoch(now()) + 600)) "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);

    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING", "the approved checkout: %s", r->body);
    cr_assert_not_null(json_object_get(j, "pay_url"), "%s", r->body);

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "action = 'registration:refreshed'", 2, p),
                     "1", "not a refreshed resume");

    at = atol(db_scalar("SELECT ts_epoch(expires_at) - ts_epoch(now()) FROM "
                        "checkouts WHERE merchant_id = $1 AND checkout_id = "
                        "$2", 2, p));
    cr_assert(at > 30 * 60, "the approved session ends %ld s from now", at);
    resp_free(r);
}


/* A review that outlasted the checkout's expires_at as the PSP takes it
 * (Stripe: 30 minutes ahead at least) is registered with a fresh one,
 * payments_session_lifetime from the approval, as a late resume is. */
Test(risk, an_approval_after_the_stored_expires_at_gets_a_fresh_one)
{
    char        *id, *key, *body, *n;
    long         at;
    const char  *p[2];
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    rk_held(&m, &id, &key, &body);
    p[0] = m.id;
    p[1] = id;

    /* ten minutes left: too close for a Stripe session */
    db_exec("UPDATE checkouts SET expires_at = now() + interval '10 min' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);

    n = nonce(&m, id);
    r = rk_admin("POST", str_printf("/v1/reviews/%s/approve", n), NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    at = atol(db_scalar("SELECT ts_epoch(expires_at) - ts_epoch(now()) FROM "
                        "checkouts WHERE merchant_id = $1 AND checkout_id = "
                        "$2", 2, p));
    cr_assert(at > 30 * 60, "the approved session ends %ld s from now", at);
    resp_free(r);
}
