
/*
 * Copyright (C) ngx_payments authors
 *
 * The review queue's admin API (doc/RISK.md, "Review"), behind its own key
 * (payments_admin_key_file), never a merchant's: the risk check is the
 * payment service's duty.  A review is named by its checkout's nonce,
 * <merchant_id>:<checkout_id>.
 *
 *   GET  /v1/reviews                  pay_review_list (_review_list.c,
 *                                     after the admin key)
 *   POST /v1/reviews/{nonce}/approve  pay_review_get (the stored
 *                                     checkout, whole), the merchant's
 *                                     return origins now
 *                                     (pay_merchant_origins, _auth.c's
 *                                     parse); a save's PSP
 *                                     customers, _register_method.c;
 *                                     an off-session charge's saved
 *                                     method, pay_method_for_charge),
 *                                     its PSP request
 *                                     built as the first registration's,
 *                                     pay_review_approve (the checkout
 *                                     EXECUTING, its key claimed again),
 *                                     then the registration's PSP side
 *                                     (_register_psp.c), which answers
 *   POST /v1/reviews/{nonce}/reject   pay_review_reject
 *
 * Over several shards (payments_shard): a review goes to the shard of its
 * nonce's merchant (the directory, _shard.c); the queue is every shard's
 * pay_review_list, asked at once and merged in the list's own order, or
 * one shard's with ?shard=NAME (_review_list.c).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"

#include <payments/apikey.h>
#include <payments/shard.h>
#include <openssl/crypto.h>


static ngx_int_t ngx_http_payments_review_auth(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_review_decide(ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_review_nonce(ngx_http_payments_ctx_t *ctx,
    u_char **checkout);
static void ngx_http_payments_review_got(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_review_origins_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_review_method_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_review_register(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_review_approved(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_review_rejected(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_payments_review_none(ngx_http_request_t *r);
static void ngx_http_payments_review_cleanup(void *data);


void
ngx_http_payments_review(ngx_http_payments_ctx_t *ctx)
{
    u_char              *checkout;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_review_auth(ctx) != NGX_OK) {
        return;
    }

    if (ctx->route == PAY_ROUTE_REVIEWS) {
        ngx_http_payments_review_list(ctx);
        return;
    }

    if (ngx_http_payments_review_nonce(ctx, &checkout) != NGX_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_review_none(r));
        return;
    }

    /* the shard of the nonce's merchant (the admin key checked first) */
    ngx_http_payments_shard_of_merchant(ctx, (char *) ctx->merchant.data,
                                        ngx_http_payments_review_decide);
}


/* approve or reject, on the shard of the nonce's merchant */

static void
ngx_http_payments_review_decide(ngx_http_payments_ctx_t *ctx)
{
    char                *body;
    ngx_http_request_t  *r = ctx->request;

    /* a merchant no shard holds: no review of it awaits a decision */
    if (ctx->shard == NGX_HTTP_PAYMENTS_SHARD_NONE) {
        ngx_http_payments_finalize(r, ngx_http_payments_review_none(r));
        return;
    }

    /* the checkout id: the nonce's copy past its merchant's NUL
     * (ngx_http_payments_review_nonce) */
    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ctx->merchant.data + ctx->merchant.len + 1;

    if (ctx->route == PAY_ROUTE_REVIEW_REJECT) {
        body = pay_problem_json(PAY_ERR_RISK_DECLINED, 0,
                                "the checkout was rejected in review; it is "
                                "FAILED and was sent to no PSP");
        ctx->params[2] = "rejected";
        ctx->params[3] = ngx_http_payments_strdup(r->pool, body);
        free(body);

        if (ctx->params[3] == NULL
            || ngx_http_payments_query(ctx,
                                       "SELECT pay_review_reject($1, $2, $3, "
                                       "$4)",
                                       4, ngx_http_payments_review_rejected)
               != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                       ngx_http_payments_store_unavailable(r));
        }

        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT status, reviewed, psp, body, live FROM "
                                "pay_review_get($1, $2)",
                                2, ngx_http_payments_review_got)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/* Authorization: Bearer <payments_admin_key_file's key>, compared by their
 * SHA-256 in constant time; answers (and finalizes) when it is not */

static ngx_int_t
ngx_http_payments_review_auth(ngx_http_payments_ctx_t *ctx)
{
    char                 hash[65];
    size_t               toklen;
    const char          *tok;
    ngx_table_elt_t     *auth;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->pmcf->admin_key_hash == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_CONFIGURED, 0,
                                       "no payments_admin_key_file is "
                                       "configured: the review API is off"));
        return NGX_ERROR;
    }

    auth = r->headers_in.authorization;

    if (auth == NULL
        || pay_bearer_token((char *) auth->value.data, auth->value.len,
                            &tok, &toklen) != 0)
    {
        goto unauthorized;
    }

    pay_apikey_hash(tok, toklen, hash);

    if (CRYPTO_memcmp(hash, ctx->pmcf->admin_key_hash, 64) != 0) {
        goto unauthorized;
    }

    return NGX_OK;

unauthorized:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: review API: missing or wrong admin key");

    if (ngx_http_payments_add_header(r, "WWW-Authenticate", "Bearer")
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_UNAUTHORIZED, 0,
                                   "the review API takes the admin key "
                                   "(payments_admin_key_file) as \"Bearer "
                                   "<key>\""));
    return NGX_ERROR;
}


/* {nonce}: ctx->merchant and the checkout id, both NUL-terminated copies */

static ngx_int_t
ngx_http_payments_review_nonce(ngx_http_payments_ctx_t *ctx,
    u_char **checkout)
{
    u_char      *id, *colon;
    ngx_uint_t   i;

    id = ngx_http_payments_cstr(ctx->request->pool, &ctx->object_id);
    if (id == NULL || ctx->object_id.len > 64) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->object_id.len; i++) {
        if (!(isalnum(id[i]) || id[i] == '_' || id[i] == '-'
              || id[i] == ':'))
        {
            return NGX_ERROR;
        }
    }

    colon = (u_char *) ngx_strchr(id, ':');
    if (colon == NULL || colon == id || colon[1] == '\0'
        || ngx_strchr(colon + 1, ':') != NULL)
    {
        return NGX_ERROR;
    }

    /* a merchant part no merchant can have (merchants_id_format) names no
     * review: no shard is asked about it */
    if (!pay_merchant_id_valid((char *) id, colon - id)) {
        return NGX_ERROR;
    }

    *colon = '\0';
    ctx->merchant.data = id;
    ctx->merchant.len = colon - id;
    *checkout = colon + 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_review_none(ngx_http_request_t *r)
{
    return ngx_http_payments_problem(r, PAY_ERR_NOT_FOUND, 0,
                                     "no review of that checkout awaits a "
                                     "decision (the id is "
                                     "<merchant_id>:<checkout_id>)");
}


/* the held checkout: rebuild its PSP request, then pay_review_approve */

static void
ngx_http_payments_review_got(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *body;
    pay_verdict_t             v;
    ngx_pool_cleanup_t       *cln;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_payments_finalize(r, ngx_http_payments_review_none(r));
        return;
    }

    body = PQgetvalue(res, 0, 3);

    if (pay_checkout_parse(body, ngx_strlen(body), &ctx->co, &v) != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: review of \"%V\": the stored checkout does "
                      "not make a request: %s", &ctx->object_id, v.detail);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        pay_checkout_free(&ctx->co);
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_payments_review_cleanup;
    cln->data = &ctx->co;
    ctx->co_valid = 1;

    ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, ctx->co.psp,
                                          ngx_strlen(ctx->co.psp));
    if (ctx->psp == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: review of \"%V\": psp \"%s\" is not "
                      "configured any more", &ctx->object_id, ctx->co.psp);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_PSP_UNAVAILABLE, 0,
                                       "the checkout's PSP is not configured "
                                       "on this gateway"));
        return;
    }

    /* test money never reaches a live PSP, nor live money a test one: the
     * PSP's name may have been given another mode= since it was held; a
     * routed checkout's route is taken in its merchant's mode */
    ctx->key_live = (PQgetvalue(res, 0, 4)[0] == 't');

    if (ctx->key_live != ctx->psp->live) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: review of \"%V\": psp \"%s\" is now "
                      "configured in another mode than its merchant's: not "
                      "sent", &ctx->object_id, ctx->co.psp);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_PSP_UNAVAILABLE, 0,
                                       "the checkout's PSP is configured in "
                                       "another mode than its merchant's; "
                                       "reject the review, or configure the "
                                       "PSP back"));
        return;
    }

    ctx->nonce = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);

    /* its return URLs on the merchant's origins as they are now */
    ctx->params[0] = (char *) ctx->merchant.data;

    if (ngx_http_payments_query(ctx, "SELECT pay_merchant_origins($1)", 1,
                                ngx_http_payments_review_origins_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/* the merchant's return origins now: a checkout whose success_url or
 * cancel_url is on none of them (removed since it was held) is not sent,
 * its shoppers would be sent there as they come back from the PSP; it
 * stays held: reject it */

static void
ngx_http_payments_review_origins_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_merchant_origins") != NGX_OK) {
        return;
    }

    if (ngx_http_payments_origins_set(ctx, PQgetvalue(res, 0, 0))
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_payments_origins_refuse(ctx) != NULL) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: review of \"%s\": its merchant removed the "
                      "origin of its success_url or cancel_url since it was "
                      "held: not approved", ctx->nonce);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_FORBIDDEN_RETURN_URL, 0,
                                       "success_url or cancel_url: its "
                                       "origin was removed from the "
                                       "merchant's since the checkout was "
                                       "held: not sent; reject the review"));
        return;
    }

    /* a save: under the PSP customer the customer's earlier saves were
     * made under, as a first registration's (_register_method.c) */
    if (ctx->co.save_usage != NULL) {
        ngx_http_payments_register_saves(ctx,
                                         ngx_http_payments_review_register);
        return;
    }

    /* an off-session charge: its saved method's token opened for the
     * request, as the charge's first registration opens it (still the
     * merchant's, still active, at the checkout's PSP) */
    if (ctx->co.payment_method[0] != '\0') {
        ctx->params[0] = (char *) ctx->merchant.data;
        ctx->params[1] = ctx->co.payment_method;

        if (ngx_http_payments_query(ctx,
                                    "SELECT psp, token_sealed, checkout_id, "
                                    "customer_ref, psp_customer, usage, "
                                    "recurring, status FROM "
                                    "pay_method_for_charge($1, $2)",
                                    2, ngx_http_payments_review_method_done)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                       ngx_http_payments_store_unavailable(r));
        }

        return;
    }

    ngx_http_payments_review_register(ctx);
}


/* an off-session charge's saved method, kept for its request; one that
 * can no longer be charged (detached since) is refused, the checkout
 * still held: reject it */

static void
ngx_http_payments_review_method_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_int_t                 rc;
    pay_err_e                 err;
    const char               *detail;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    rc = ngx_http_payments_method_keep(ctx, res, &err, &detail);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: review of \"%s\": its saved method cannot "
                      "be charged: not approved", ctx->nonce);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r, err, 0,
                                                                detail));
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_review_register(ctx);
}


/* The approval's PSP request, built and stored by pay_review_approve. */

static void
ngx_http_payments_review_register(ngx_http_payments_ctx_t *ctx)
{
    char                *req;
    int64_t              now;
    ngx_http_request_t  *r = ctx->request;

    /* the request is the stored checkout's, built as its first
     * registration built it (ngx_http_payments_register_build, from every
     * field pay_review_get gives), with its stored expires_at while the
     * PSP still takes it (as a resume keeps it); a review that outlasted
     * it gets payments_session_lifetime from now, as a resume refused as
     * too close does */
    now = (int64_t) ngx_time();

    if (ctx->co.expires_at >= now + (int64_t) ctx->psp->dl->session_min
                              + (int64_t) ctx->pmcf->lease
        && ctx->co.expires_at <= now + (int64_t) ctx->psp->dl->session_max)
    {
        ctx->expires_at = ctx->co.expires_at;

    } else {
        ctx->expires_at = now + ctx->pmcf->session_lifetime;
    }

    req = ctx->nonce ? ngx_http_payments_register_build(ctx) : NULL;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->co.checkout_id;
    ctx->params[2] = req;
    ctx->params[3] = ngx_http_payments_num(r->pool, ctx->expires_at);
    ctx->params[4] = ngx_http_payments_num(r->pool, ctx->pmcf->lease);
    ctx->params[5] = ctx->built_conf;       /* the settings it is built with */

    if (req == NULL || ctx->params[3] == NULL || ctx->params[4] == NULL
        || ctx->params[5] == NULL)
    {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, idem_key, lease, "
                                "psp_request, expires_at, response_status, "
                                "response_body, retry_after, claim_age "
                                "FROM pay_review_approve($1, $2, $3, $4, "
                                "$5, $6::jsonb)",
                                6, ngx_http_payments_review_approved)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_review_approved(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *outcome;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_review_approve") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: review of \"%s\": %s", ctx->nonce, outcome);

    if (ngx_strcmp(outcome, "decided") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_review_none(r));
        return;
    }

    /* its saved method detached since the read before (a detach that
     * committed meanwhile): nothing approved, the checkout still held */
    if (ngx_strcmp(outcome, "method_unusable") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_METHOD_UNUSABLE, 0,
                                       "the saved method was detached: the "
                                       "charge is not approved; reject "
                                       "it"));
        return;
    }

    /* its method saved under another merchant account than its PSP's
     * configuration names now: nothing approved, still held */
    if (ngx_strcmp(outcome, "merchant_account") == 0) {
        ngx_http_payments_finalize(r,
                                   ngx_http_payments_method_account_refused(
                                       ctx, PQgetvalue(res, 0, 6)));
        return;
    }

    /* the registration's key: a stored answer is sealed under it */
    if (PQgetlength(res, 0, 1) > PAY_IDEM_KEY_MAX) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ngx_memcpy(ctx->idem_key, PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1));
    ctx->idem_key[PQgetlength(res, 0, 1)] = '\0';

    if (ngx_strcmp(outcome, "replay") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                       PQgetvalue(res, 0, 5),
                                       PQgetvalue(res, 0, 6),
                                       PQgetlength(res, 0, 6), 1));
        return;
    }

    if (ngx_strcmp(outcome, "in_use") == 0) {
        if (ngx_http_payments_add_header(r, "Retry-After",
                                         PQgetvalue(res, 0, 7))
            != NGX_OK)
        {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_IDEM_IN_USE, 0,
                                       "the approval's PSP registration is "
                                       "under way; retry after Retry-After "
                                       "seconds"));
        return;
    }

    /* approved or resumed: the registration's PSP side from here on */

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 2));
    ctx->expires_at = ngx_atoof((u_char *) PQgetvalue(res, 0, 4),
                                PQgetlength(res, 0, 4));

    if (ctx->lease == NULL || ctx->expires_at <= 0
        || ngx_http_payments_request_load(ctx, PQgetvalue(res, 0, 3))
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* never abandoned (pay_abandon would delete the approved checkout,
     * its review and the checkout.approved told): after any outcome that
     * does not decide it, the claim stays for a retry (approve again, or
     * the shop's key) to resume */
    ctx->approval = 1;

    /* resumed: an earlier approval's attempts may have reached the PSP
     * the checkout is bound to now; it resumes there, never moving on */
    if (ngx_strcmp(outcome, "resumed") == 0) {
        ctx->psp_maybe = 1;

        /* the PSP may have forgotten the first approval's key: sent
         * again, the request could open a second session, or charge a
         * saved method twice */
        ctx->claim_age = ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                                   PQgetlength(res, 0, 8));

        if (ctx->claim_age == NGX_ERROR
            || !pay_dialect_key_kept(ctx->psp->dl, (int64_t) ctx->claim_age,
                                     ngx_http_payments_in_flight(ctx->pmcf)))
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "payments: approval of \"%s\" got no answer from "
                          "psp \"%V\" and is older than the PSP keeps its "
                          "key: not sent again; look it up at the PSP by "
                          "its reference", ctx->nonce, &ctx->psp->name);
            ctx->fail_detail = "the PSP never answered this approval's "
                               "registration and no longer keeps its "
                               "request: it is not sent again, and an "
                               "operator looks it up at the PSP";
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }

        /* nor under other settings of its PSP than it was built with */
        if (ngx_http_payments_request_conf_kept(ctx, "approval") != NGX_OK)
        {
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }

        /* its stored bytes first, as a registration's resume sends them;
         * refused for an expires_at the PSP no longer takes (the earlier
         * attempts made no session from them), rebuilt with a fresh one
         * under the same nonce: the approved checkout stays payable */
        ctx->stale = ngx_http_payments_expires_too_soon(ctx);

        ngx_http_payments_psp_start(ctx);
        return;
    }

    /* approved: no PSP ever saw the nonce; a routed checkout takes its
     * route again from the PSP its claim bound, and moves on as its
     * registration would have after an outcome that proves no session */
    ngx_http_payments_route_approved(ctx);
}


static void
ngx_http_payments_review_rejected(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    u_char                   *p, *last;
    size_t                    len;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_review_reject") != NGX_OK) {
        return;
    }

    if (PQgetvalue(res, 0, 0)[0] != 't') {
        ngx_http_payments_finalize(r, ngx_http_payments_review_none(r));
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: review of \"%V\": rejected", &ctx->object_id);

    len = sizeof("{\"nonce\":\"\",\"status\":\"FAILED\",\"review\":"
                 "\"rejected\"}") + ctx->object_id.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    last = ngx_snprintf(p, len, "{\"nonce\":\"%V\",\"status\":\"FAILED\","
                        "\"review\":\"rejected\"}", &ctx->object_id);

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json", p, last - p));
}


static void
ngx_http_payments_review_cleanup(void *data)
{
    pay_checkout_free(data);
}
