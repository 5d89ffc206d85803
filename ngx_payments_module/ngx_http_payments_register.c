
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments: validate, claim the Idempotency-Key together with the
 * checkout and every parameter the PSP will be sent (one transaction),
 * register one hosted session with the PSP under the nonce
 * <merchant_id>:<checkout_id>, commit its token and URL with the final
 * answer (one transaction), answer.
 *
 * A retry with the same key re-reads the stored PSP request, so the PSP
 * sees byte-identical requests under the same nonce and can never register
 * twice.  Nothing final is stored when the PSP cannot be reached: the lease
 * is released and the client's retry resumes the same registration.
 *
 * Two exceptions to "the stored request, byte for byte":
 * - a resume whose stored expires_at the PSP would now refuse (Stripe: less
 *   than 30 min ahead) rebuilds the request with a fresh expires_at under
 *   the same nonce and stores it first (pay_refresh): the old bytes can
 *   only fail, and should the PSP hold a session of the old bytes, it
 *   refuses the new ones under the same Idempotency-Key, so it never makes
 *   two sessions;
 * - a PSP that refuses our credentials on a claim it cannot have seen
 *   before undoes the claim (pay_abandon): nothing stays stored.
 *
 * Transient failures (no answer, a timeout, 5xx, 429) are retried inside
 * the request's budget after a backoff with jitter (retry_base=, doubled,
 * retry_max=), or after the PSP's Retry-After when it fits.  Each PSP's
 * circuit breaker (_breaker.c) is asked before every attempt: while it is
 * open, a fresh claim is undone and a resumed one released, and the answer
 * is 503 psp_unavailable with Retry-After, without calling the PSP.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"

#include <payments/breaker.h>
#include <payments/view.h>


static ngx_int_t ngx_http_payments_register_validate(
    ngx_http_payments_ctx_t *ctx, ngx_int_t *rc);
static void ngx_http_payments_register_claim(ngx_http_payments_ctx_t *ctx);
static char *ngx_http_payments_register_build(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_claim_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_request_load(ngx_http_payments_ctx_t *ctx,
    const char *stored);
static ngx_uint_t ngx_http_payments_expires_too_soon(
    ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_register_refresh(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_refresh_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_psp_start(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_psp_call(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_psp_shed(ngx_http_payments_ctx_t *ctx,
    ngx_msec_t wait);
static void ngx_http_payments_psp_retry(ngx_event_t *ev);
static void ngx_http_payments_psp_done(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_register_finish(ngx_http_payments_ctx_t *ctx,
    const char *status, pay_psp_result_t *res, int64_t expires_at,
    char *body);
static void ngx_http_payments_finish_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_register_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
static const char *ngx_http_payments_register_detail(
    ngx_http_payments_ctx_t *ctx, const char *what, const char *status);
static const char *ngx_http_payments_seller_detail(ngx_http_request_t *r,
    const char *seller);
static void ngx_http_payments_release_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_register_abandon(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
static ngx_int_t ngx_http_payments_psp_problem(ngx_http_payments_ctx_t *ctx,
    const char *detail);
static void ngx_http_payments_abandon_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_checkout_cleanup(void *data);


void
ngx_http_payments_register_start(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ngx_http_payments_register_validate(ctx, &rc) != NGX_OK) {
        ngx_http_payments_finalize(ctx->request, rc);
        return;
    }

    ngx_http_payments_register_claim(ctx);
}


/*
 * The checks after the router's (Idempotency-Key, create= limits, size and
 * type: ngx_http_payments_money_post), in the contract's order: the body
 * (400), business rules.  Nothing here is stored: the client may fix the
 * request and retry with the same key.
 * Returns NGX_OK when valid; otherwise NGX_DONE with the error answered and
 * *rc set to the result of sending it.
 */

static ngx_int_t
ngx_http_payments_register_validate(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc)
{
    ngx_uint_t            i;
    pay_verdict_t         v;
    ngx_pool_cleanup_t   *cln;
    ngx_http_request_t   *r = ctx->request;

    if (pay_checkout_parse((char *) ctx->body.data, ctx->body.len, &ctx->co,
                           &v)
        != 0)
    {
        /* v.detail names the field and the rule, never the value */
        *rc = ngx_http_payments_problem(r, v.err, 0, v.detail);
        return NGX_DONE;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        pay_checkout_free(&ctx->co);
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    cln->handler = ngx_http_payments_checkout_cleanup;
    cln->data = &ctx->co;
    ctx->co_valid = 1;

    ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, ctx->co.psp,
                                          ngx_strlen(ctx->co.psp));
    if (ctx->psp == NULL) {
        *rc = ngx_http_payments_problem(r, PAY_ERR_INVALID_REQUEST, 0,
                                        "psp: no PSP of that name is "
                                        "configured");
        return NGX_DONE;
    }

    /* test money never reaches a live PSP, nor live money a test one */
    if (ctx->key_live != ctx->psp->live) {
        *rc = ngx_http_payments_problem(r, PAY_ERR_INVALID_REQUEST, 0,
                                        ctx->key_live
                                        ? "psp: a live API key cannot use a "
                                          "test PSP"
                                        : "psp: a test API key cannot use a "
                                          "live PSP");
        return NGX_DONE;
    }

    if (!pay_origin_allowed(ctx->co.success_url, ctx->origins->elts,
                            ctx->origins->nelts, 0))
    {
        *rc = ngx_http_payments_problem(r, PAY_ERR_FORBIDDEN_RETURN_URL, 0,
                                        "success_url is not on one of the "
                                        "merchant's registered origins");
        return NGX_DONE;
    }

    if (!pay_origin_allowed(ctx->co.cancel_url, ctx->origins->elts,
                            ctx->origins->nelts, 0))
    {
        *rc = ngx_http_payments_problem(r, PAY_ERR_FORBIDDEN_RETURN_URL, 0,
                                        "cancel_url is not on one of the "
                                        "merchant's registered origins");
        return NGX_DONE;
    }

    for (i = 0; i < ctx->co.norders; i++) {
        if (!pay_psp_amount_supported(ctx->psp->dialect, ctx->co.currency,
                                      ctx->co.orders[i].amount))
        {
            pay_verdict(&v, PAY_ERR_INVALID_AMOUNT,
                        "payment_orders[%u].amount: this PSP needs %s "
                        "amounts to end in 0", (unsigned) i,
                        ctx->co.currency);
            *rc = ngx_http_payments_problem(r, v.err, 0, v.detail);
            return NGX_DONE;
        }
    }

    /* amount velocity and the card-testing guard need the valid body */
    if (ngx_http_payments_limit_checkout(ctx, rc) != NGX_OK) {
        return NGX_DONE;
    }

    return NGX_OK;
}


/* Sends pay_claim, or answers (and finalizes) if it cannot. */

static void
ngx_http_payments_register_claim(ngx_http_payments_ctx_t *ctx)
{
    char                *dup, *req, *orders, *meta, fp[65];
    size_t               i;
    ngx_http_request_t  *r = ctx->request;

    ctx->nonce = ngx_pnalloc(r->pool, ctx->merchant.len + 1 + PAY_ID_MAX + 1);
    if (ctx->nonce == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf((u_char *) ctx->nonce, "%V:%s%Z", &ctx->merchant,
                ctx->co.checkout_id);

    if (pay_checkout_fingerprint(&ctx->co, "POST", "/v1/payments", fp) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /*
     * Everything the PSP will be sent is fixed now and stored with the
     * claim; a retry reads it back instead of building it again.
     */

    ctx->expires_at = (int64_t) ngx_time() + ctx->pmcf->session_lifetime;

    req = ngx_http_payments_register_build(ctx);
    if (req == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    orders = pay_checkout_orders_json(&ctx->co);

    meta = ctx->co.metadata != NULL
           ? json_dumps(ctx->co.metadata, JSON_COMPACT | JSON_PRESERVE_ORDER)
           : strdup("{}");

    dup = pay_problem_json(PAY_ERR_DUPLICATE_ORDER, 0,
                           "checkout_id or a payment_order_id was already "
                           "used with another Idempotency-Key");

    if (req == NULL || orders == NULL || dup == NULL || meta == NULL) {
        goto failed;
    }

    /* values live in the request pool until the answer comes back */

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ngx_http_payments_strdup(r->pool, fp);
    ctx->params[3] = ngx_http_payments_num(r->pool, ctx->pmcf->lease);
    ctx->params[4] = ngx_http_payments_num(r->pool, ctx->pmcf->ttl);
    ctx->params[5] = ctx->co.checkout_id;
    ctx->params[6] = ctx->co.psp;
    ctx->params[7] = ctx->co.currency;
    ctx->params[8] = ngx_http_payments_num(r->pool, ctx->co.total);
    ctx->params[9] = ctx->co.success_url;
    ctx->params[10] = ctx->co.cancel_url;
    ctx->params[11] = ctx->co.buyer_email;          /* NULL: SQL NULL */
    ctx->params[12] = ngx_http_payments_num(r->pool, ctx->expires_at);
    ctx->params[13] = req;

    ctx->params[14] = ngx_http_payments_strdup(r->pool, orders);

    ctx->params[15] = ngx_http_payments_strdup(r->pool, dup);

    ctx->params[16] = ngx_http_payments_strdup(r->pool, meta);

    for (i = 0; i < 17; i++) {
        if (ctx->params[i] == NULL && i != 11) {
            goto failed;
        }
    }

    free(dup);
    free(orders);
    free(meta);

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, lease, retry_after, "
                                "response_status, response_body, psp_request, "
                                "expires_at, checkout_status, claim_age "
                                "FROM pay_claim($1, $2, $3, $4, "
                                "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                                "$15::jsonb, $16, $17::jsonb)",
                                17, ngx_http_payments_claim_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }

    return;

failed:

    free(dup);
    free(orders);
    free(meta);

    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/*
 * The PSP request for ctx->expires_at, as stored: JSON {"path",
 * "content_type", "body"} in the request's pool, or NULL.
 */

static char *
ngx_http_payments_register_build(ngx_http_payments_ctx_t *ctx)
{
    char                    *s, *out;
    pay_psp_request_t        preq;
    ngx_http_request_t      *r = ctx->request;
    pay_psp_registration_t   reg;

    ngx_memzero(&reg, sizeof(pay_psp_registration_t));
    reg.merchant_id = (char *) ctx->merchant.data;
    reg.nonce = ctx->nonce;
    reg.co = &ctx->co;
    reg.expires_at = ctx->expires_at;
    reg.adyen_merchant_account = (char *) ctx->psp->merchant_account.data;

    /* the shopper may come back a while after the session closed */
    reg.return_success = ngx_http_payments_link(r->pool, ctx->pmcf,
                             (char *) ctx->merchant.data, ctx->co.checkout_id,
                             &ctx->psp->name, PAY_TOKEN_RETURN_SUCCESS,
                             ctx->expires_at + 86400);
    reg.return_cancel = ngx_http_payments_link(r->pool, ctx->pmcf,
                             (char *) ctx->merchant.data, ctx->co.checkout_id,
                             &ctx->psp->name, PAY_TOKEN_RETURN_CANCEL,
                             ctx->expires_at + 86400);
    if (reg.return_success == NULL || reg.return_cancel == NULL
        || pay_psp_build_registration(ctx->psp->dialect, &reg, &preq) != 0)
    {
        return NULL;
    }

    s = pay_psp_request_dump(&preq);
    pay_psp_request_free(&preq);

    out = ngx_http_payments_strdup(r->pool, s);
    free(s);

    return out;
}


static void
ngx_http_payments_claim_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *outcome;
    ngx_int_t                 rc;
    ngx_http_request_t       *r;
    ngx_http_payments_ctx_t  *ctx = q->data;

    r = ctx->request;

    /* a reserved amount stays counted only for a fresh claim */
    ngx_http_payments_limit_claimed(ctx,
                                    (res && PQresultStatus(res)
                                            == PGRES_TUPLES_OK
                                     && PQntuples(res) == 1)
                                    ? PQgetvalue(res, 0, 0) : NULL);

    if (ngx_http_payments_pg_row(r, res, "pay_claim") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_claim \"%s\": %s", ctx->nonce, outcome);

    /* replay, duplicate, in_use, reused: answered from the row */
    rc = ngx_http_payments_claim_answer(r, res);
    if (rc != NGX_DECLINED) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    /* the same request after its key expired: the checkout it registered
     * is kept as it is, and never registered again */
    if (ngx_strcmp(outcome, "expired") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_DUPLICATE_ORDER, 0,
                                       ngx_http_payments_register_detail(ctx,
                                           "this Idempotency-Key expired "
                                           "before this retry; the checkout "
                                           "it registered is kept and not "
                                           "registered again: GET "
                                           "/v1/checkouts/", NULL)));
        return;
    }

    /* an order for a seller the merchant has not registered, when it has
     * registered any: nothing was stored, the key included */
    if (ngx_strcmp(outcome, "unknown_seller") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_SELLER_UNKNOWN, 0,
                                       ngx_http_payments_seller_detail(r,
                                           PQgetvalue(res, 0, 4))));
        return;
    }

    /* a resumed registration whose checkout was paid or failed meanwhile
     * (its webhook came): a new session would be a second way to pay */
    if (ngx_strcmp(outcome, "decided") == 0) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: registration \"%s\" is %s: not sent to "
                      "the PSP again", ctx->nonce, PQgetvalue(res, 0, 7));
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_DUPLICATE_ORDER, 0,
                                       ngx_http_payments_register_detail(ctx,
                                           "the PSP's answer to this "
                                           "registration was lost, and the "
                                           "checkout was decided since; it "
                                           "is not registered again: GET "
                                           "/v1/checkouts/",
                                           PQgetvalue(res, 0, 7))));
        return;
    }

    if (ngx_strcmp(outcome, "claimed") != 0
        && ngx_strcmp(outcome, "resumed") != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_claim: unexpected outcome \"%s\"",
                      outcome);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* claimed or resumed: the stored request is what the PSP gets */

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 1));
    ctx->expires_at = pay_time_parse(PQgetvalue(res, 0, 6),
                                     PQgetlength(res, 0, 6), PAY_TIME_EPOCH);

    if (ctx->lease == NULL || ctx->expires_at <= 0
        || ngx_http_payments_request_load(ctx, PQgetvalue(res, 0, 5))
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_claim: malformed stored request");
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (outcome[0] == 'r') {
        /* an earlier request's attempts may have reached the PSP */
        ctx->psp_maybe = 1;

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: resuming registration \"%s\" after an "
                      "expired lease", ctx->nonce);

        /* the stored bytes go first all the same: if an earlier attempt
         * made the session, the PSP answers it again for these bytes and
         * would refuse any others under the same key (Stripe: 400, the
         * parameters differ), which would fail a checkout the shopper can
         * still pay.  Refused (they fail validation now, which the PSPs
         * do not keep under the key), they are rebuilt and sent again. */
        ctx->stale = ngx_http_payments_expires_too_soon(ctx);

        /* the PSP may have forgotten the first attempt's key: sent again,
         * the request could open a second session */
        if (ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                      PQgetlength(res, 0, 8))
            > (off_t) ctx->psp->dl->key_window)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "payments: registration \"%s\" got no answer "
                          "from psp \"%V\" and is older than the PSP keeps "
                          "its key: not sent again; look it up at the PSP "
                          "by its reference", ctx->nonce, &ctx->psp->name);
            ctx->fail_detail = "the PSP never answered this registration "
                               "and no longer keeps its request: it is not "
                               "sent again, and an operator looks it up at "
                               "the PSP";
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }
    }

    ngx_http_payments_psp_start(ctx);
}


/* "<what><checkout_id>" and " (<status>)" when given: a problem's detail
 * in the request's pool, or a generic one */

static const char *
ngx_http_payments_register_detail(ngx_http_payments_ctx_t *ctx,
    const char *what, const char *status)
{
    u_char  *p, *last;
    size_t   len;

    len = ngx_strlen(what) + ngx_strlen(ctx->co.checkout_id)
          + (status ? ngx_strlen(status) + sizeof(" (is )") : 0) + 1;

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return "the checkout is kept and not registered again";
    }

    last = status ? ngx_snprintf(p, len - 1, "%s%s (is %s)", what,
                                 ctx->co.checkout_id, status)
                  : ngx_snprintf(p, len - 1, "%s%s", what,
                                 ctx->co.checkout_id);
    *last = '\0';

    return (const char *) p;
}


/* The detail of an order for a seller not registered, naming it (the
 * seller's account is the merchant's own identifier, never secret). */

static const char *
ngx_http_payments_seller_detail(ngx_http_request_t *r, const char *seller)
{
    u_char  *p, *last;
    size_t   len;

    len = sizeof("seller_account \"\" is not one of this merchant's "
                 "registered sellers (payments-merchant add-seller); "
                 "nothing was stored") + ngx_strlen(seller);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return "a seller_account is not one of this merchant's registered "
               "sellers";
    }

    last = ngx_snprintf(p, len - 1, "seller_account \"%s\" is not one of "
                        "this merchant's registered sellers "
                        "(payments-merchant add-seller); nothing was stored",
                        seller);
    *last = '\0';

    return (const char *) p;
}


/* ctx->psp_path, psp_content_type and psp_body from a stored request */

static ngx_int_t
ngx_http_payments_request_load(ngx_http_payments_ctx_t *ctx,
    const char *stored)
{
    pay_psp_request_t    preq;
    ngx_http_request_t  *r = ctx->request;

    if (pay_psp_request_load(stored, ngx_strlen(stored), &preq) != 0) {
        return NGX_ERROR;
    }

    ctx->psp_path = ngx_http_payments_strdup(r->pool, preq.path);
    ctx->psp_content_type = ngx_http_payments_strdup(r->pool,
                                                     preq.content_type);
    ctx->psp_body = ngx_http_payments_strdup(r->pool, preq.body);

    pay_psp_request_free(&preq);

    if (ctx->psp_path == NULL || ctx->psp_content_type == NULL
        || ctx->psp_body == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Whether the PSP could refuse the stored expires_at by the time this
 * request's attempts reach it (a lease covers them): Stripe wants it at
 * least 30 min ahead, the others in the future.
 */

static ngx_uint_t
ngx_http_payments_expires_too_soon(ngx_http_payments_ctx_t *ctx)
{
    time_t  floor;

    floor = (ctx->psp->dialect == PAY_DIALECT_STRIPE) ? 1800 : 0;

    return ctx->expires_at < (int64_t) ngx_time() + floor + ctx->pmcf->lease;
}


/*
 * The PSP refused the stored request of a resume whose expires_at was too
 * close (so no earlier attempt had made a session from it): rebuild it
 * with a fresh expires_at (and return links to match) under the same
 * nonce, and store it before it is sent, so that every later retry sends
 * these bytes.  The request's deadline stands (the lease covers it).
 */

static void
ngx_http_payments_register_refresh(ngx_http_payments_ctx_t *ctx)
{
    char                *req;
    int64_t              old;
    ngx_http_request_t  *r = ctx->request;

    old = ctx->expires_at;
    ctx->expires_at = (int64_t) ngx_time() + ctx->pmcf->session_lifetime;

    req = ngx_http_payments_register_build(ctx);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ngx_http_payments_num(r->pool, ctx->expires_at);
    ctx->params[4] = req;

    if (req == NULL || ctx->params[3] == NULL
        || ngx_http_payments_request_load(ctx, req) != NGX_OK)
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: registration \"%s\": the stored expires_at %L "
                  "is too close for the PSP; resending with %L",
                  ctx->nonce, old, ctx->expires_at);

    if (ngx_http_payments_query(ctx,
                                "SELECT pay_refresh($1, $2, $3, $4, $5)",
                                5, ngx_http_payments_refresh_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_refresh_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /* nothing new was sent: the client's retry resumes again */
    if (ngx_http_payments_pg_row(r, res, "pay_refresh") != NGX_OK) {
        return;
    }

    ctx->attempts = 0;
    ngx_http_payments_psp_call(ctx);
}


static void
ngx_http_payments_psp_start(ngx_http_payments_ctx_t *ctx)
{
    ctx->deadline = ngx_current_msec + ctx->pmcf->request_timeout;
    ctx->attempts = 0;

    ngx_http_payments_psp_call(ctx);
}


/*
 * The PSP's circuit is open: this request does not call it.  A claim the
 * PSP cannot have seen is undone (nothing stored), one it may have seen is
 * released (the retry resumes it); either way 503 with Retry-After.
 */

static void
ngx_http_payments_psp_shed(ngx_http_payments_ctx_t *ctx, ngx_msec_t wait)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: psp \"%V\": circuit open, registration "
                  "\"%s\" not sent", &ctx->psp->name, ctx->nonce);

    ctx->fail_retry_after = (time_t) ((wait + 999) / 1000);
    ctx->fail_detail = "the PSP is failing and is not called for a while; "
                       "retry after Retry-After seconds with the same "
                       "Idempotency-Key";

    if (ctx->psp_maybe) {
        ngx_http_payments_register_release(ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE);

    } else {
        ngx_http_payments_register_abandon(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
    }
}


static void
ngx_http_payments_psp_call(ngx_http_payments_ctx_t *ctx)
{
    u_char              *url, *last;
    size_t               len;
    ngx_uint_t           probe;
    ngx_msec_t           left, wait;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_breaker_allow(ctx->psp, &probe, &wait) != NGX_OK) {
        ngx_http_payments_psp_shed(ctx, wait);
        return;
    }

    ctx->probe = probe;

    len = ctx->psp->url.len + ngx_strlen(ctx->psp_path) + 1;

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    last = ngx_snprintf(url, len, "%V%s", &ctx->psp->url, ctx->psp_path);
    *last = '\0';

    left = ctx->deadline > ngx_current_msec
           ? ctx->deadline - ngx_current_msec : 1;

    ctx->attempts++;
    ctx->fetch.handler = ngx_http_payments_psp_done;
    ctx->fetch.data = ctx;
    ctx->fetch.log = r->connection->log;

    if (ngx_http_payments_fetch(r->pool, &ctx->fetch, ctx->psp,
                                PAY_PSP_API_MAIN, (char *) url,
                                ctx->psp_content_type, ctx->nonce,
                                ctx->psp_body, ngx_strlen(ctx->psp_body),
                                ngx_min(left, ctx->psp->timeout))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: psp \"%V\": could not start a request",
                      &ctx->psp->name);
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
    }
}


static void
ngx_http_payments_psp_retry(ngx_event_t *ev)
{
    ngx_http_payments_psp_call(ev->data);
}


static void
ngx_http_payments_psp_done(ngx_http_payments_fetch_t *f)
{
    char                     *body;
    int64_t                   exp;
    pay_psp_result_t          res;
    ngx_http_request_t       *r;
    ngx_http_payments_ctx_t  *ctx = f->data;
    pay_registration_view_t   view;

    r = ctx->request;

    /* the reason may be shown to the merchant: our key is cut out of it */
    pay_psp_parse_registration_redact(ctx->psp->dialect, (int) f->status,
                                      (char *) f->body, f->len,
                                      (char *) ctx->psp->secret.data,
                                      ctx->psp->secret.len, &res);

    /* never the body: it may carry the PSP's view of the shopper */
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: psp \"%V\" registration \"%s\" attempt %ui: "
                  "HTTP %l, %s, %Mms", &ctx->psp->name, ctx->nonce,
                  ctx->attempts, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  f->elapsed);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: psp \"%V\" attempt %ui: outcome %d",
                   &ctx->psp->name, ctx->attempts, (int) res.outcome);

    /* counted, the breaker told; a key that matches no pin: fail closed */
    if (ngx_http_payments_psp_answered(ctx->psp, f, res.outcome, ctx->probe)
        != NGX_OK)
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_memzero(&view, sizeof(pay_registration_view_t));
    view.co = &ctx->co;

    switch (res.outcome) {

    case PAY_PSP_CREATED:
        exp = res.expires_at ? res.expires_at : ctx->expires_at;

        view.status = "EXECUTING";
        view.psp_token = res.token;
        view.expires_at = exp;
        view.pay_url = ngx_http_payments_link(r->pool, ctx->pmcf,
                           (char *) ctx->merchant.data, ctx->co.checkout_id,
                           NULL, PAY_TOKEN_PAY, exp);
        if (view.pay_url == NULL) {
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }

        body = pay_registration_json(&view);
        ngx_http_payments_register_finish(ctx, "EXECUTING", &res, exp, body);
        return;

    case PAY_PSP_REFUSED:
        if (ctx->stale) {
            ctx->stale = 0;
            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "payments: psp \"%V\" refused the stored request "
                          "of \"%s\" (HTTP %l), whose expires_at is too "
                          "close", &ctx->psp->name, ctx->nonce, f->status);
            ngx_http_payments_register_refresh(ctx);
            return;
        }

        ngx_http_payments_limit_refused(ctx);

        view.status = "FAILED";
        view.expires_at = ctx->expires_at;
        view.failure = res.reason;

        body = pay_registration_json(&view);
        ngx_http_payments_register_finish(ctx, "FAILED", &res,
                                          ctx->expires_at, body);
        return;

    case PAY_PSP_AUTH:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: psp \"%V\" refused the gateway's "
                      "credentials (HTTP %l): check its secret_file",
                      &ctx->psp->name, f->status);

        if (ctx->psp_maybe) {
            /* a session of this claim may exist: keep it resumable */
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);

        } else {
            ctx->fail_detail = "the PSP refused the gateway's credentials; "
                               "nothing was stored";
            ngx_http_payments_register_abandon(ctx, NGX_HTTP_BAD_GATEWAY);
        }

        return;

    default: /* PAY_PSP_RETRY */
        break;
    }

    /* a timeout, a dropped answer or a 5xx may have made a session */
    ctx->psp_maybe = 1;

    switch (ngx_http_payments_psp_retry_later(ctx, f, res.key_in_use,
                                              ngx_http_payments_psp_retry))
    {
    case NGX_OK:
        return;

    case NGX_ERROR:
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;

    default: /* NGX_DECLINED: no retry left */
        break;
    }

    ngx_http_payments_register_release(ctx,
                                       f->result == CURLE_OPERATION_TIMEDOUT
                                       ? NGX_HTTP_GATEWAY_TIME_OUT
                                       : NGX_HTTP_BAD_GATEWAY);
}


static void
ngx_http_payments_register_finish(ngx_http_payments_ctx_t *ctx,
    const char *status, pay_psp_result_t *res, int64_t expires_at,
    char *body)
{
    ngx_uint_t           created;
    ngx_http_request_t  *r = ctx->request;

    if (body == NULL) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    created = (res->outcome == PAY_PSP_CREATED);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: registration \"%s\": %s after %ui attempts, "
                   "pay_finish", ctx->nonce, status, ctx->attempts);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ctx->co.checkout_id;
    ctx->params[4] = status;
    /* sealed at rest with a keyring, and found through its blind index */
    ctx->params[5] = created ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                                   NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                                   (char *) ctx->merchant.data,
                                   ctx->co.checkout_id, res->token)
                             : NULL;
    ctx->params[6] = created ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                                   NGX_HTTP_PAYMENTS_SEALED_URL,
                                   (char *) ctx->merchant.data,
                                   ctx->co.checkout_id, res->url)
                             : NULL;
    ctx->params[11] = (created && ctx->pmcf->keyring)
                      ? ngx_http_payments_token_index(r->pool, ctx->pmcf,
                                                      &ctx->psp->name,
                                                      res->token)
                      : NULL;
    ctx->params[7] = ngx_http_payments_num(r->pool, expires_at);
    ctx->params[8] = created ? NULL
                             : ngx_http_payments_strdup(r->pool, res->reason);
    ctx->params[9] = "201";
    /* the answer names the token and the pay link: sealed as well */
    ctx->params[10] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                             NGX_HTTP_PAYMENTS_SEALED_RESPONSE,
                                             (char *) ctx->merchant.data,
                                             ctx->idem_key, body);

    free(body);

    if ((created && (ctx->params[5] == NULL || ctx->params[6] == NULL
                     || (ctx->pmcf->keyring && ctx->params[11] == NULL)))
        || ctx->params[7] == NULL || ctx->params[10] == NULL)
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT response_status, response_body FROM "
                                "pay_finish($1, $2, $3, $4, $5, $6, $7, $8, "
                                "$9, $10, $11, $12)",
                                12, ngx_http_payments_finish_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_finish_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /*
     * Without its row the commit may or may not have happened; the retry with
     * the same key finds out (a replay, or a resume once the lease ends,
     * which the PSP answers with the same session).
     */
    if (ngx_http_payments_pg_row(r, res, "pay_finish") != NGX_OK) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_finish \"%s\": answer %s", ctx->nonce,
                   PQgetvalue(res, 0, 0));

    ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                   PQgetvalue(res, 0, 0),
                                   PQgetvalue(res, 0, 1),
                                   PQgetlength(res, 0, 1), 0));
}


/*
 * The PSP could not be reached or refused our credentials: store nothing
 * final, end the lease so that the client's retry resumes at once, answer
 * 502 or 504.  The answer waits for the release: the query lives in the
 * request's pool.
 */

static void
ngx_http_payments_register_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;

    if (ngx_http_payments_query(ctx, "SELECT pay_release($1, $2, $3)",
                                3, ngx_http_payments_release_done)
        != NGX_OK)
    {
        ngx_http_payments_release_done(&ctx->query, NULL);
    }
}


static void
ngx_http_payments_release_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_release failed; the lease ends by "
                      "itself");

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: pay_release \"%s\": lease ended, answer "
                       "%ui", ctx->nonce, ctx->fail_status);
    }

    ngx_http_payments_finalize(r, ngx_http_payments_psp_problem(ctx,
                                   "the PSP did not complete the "
                                   "registration; retry with the same "
                                   "Idempotency-Key"));
}


/* 502, 503 or 504 psp_unavailable, with Retry-After when it is known */

static ngx_int_t
ngx_http_payments_psp_problem(ngx_http_payments_ctx_t *ctx,
    const char *detail)
{
    char                *p;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->fail_retry_after > 0) {
        p = ngx_http_payments_num(r->pool, (int64_t) ctx->fail_retry_after);

        if (p == NULL
            || ngx_http_payments_add_header(r, "Retry-After", p) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_payments_problem(r, PAY_ERR_PSP_UNAVAILABLE,
                                     ctx->fail_status,
                                     ctx->fail_detail ? ctx->fail_detail
                                                      : detail);
}


/*
 * The PSP refused our credentials and cannot hold a session of this claim:
 * undo the claim (API.md: 502, nothing stored), so that a retry, with this
 * key or another, registers the same ids afresh.
 */

static void
ngx_http_payments_register_abandon(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;

    ctx->params[3] = (status == NGX_HTTP_SERVICE_UNAVAILABLE)
                     ? "psp_circuit_open" : "psp_refused_credentials";

    if (ngx_http_payments_query(ctx, "SELECT pay_abandon($1, $2, $3, $4)",
                                4, ngx_http_payments_abandon_done)
        != NGX_OK)
    {
        ngx_http_payments_register_release(ctx, status);
    }
}


static void
ngx_http_payments_abandon_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't')
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_abandon did not undo registration "
                      "\"%s\"%s%s; releasing its lease", ctx->nonce,
                      res ? ": " : "", res ? PQresultErrorMessage(res) : "");
        ngx_http_payments_register_release(ctx, ctx->fail_status);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_abandon \"%s\": claim undone, answer %ui",
                   ctx->nonce, ctx->fail_status);

    /* nothing is stored, so nothing stays reserved either */
    ngx_http_payments_limit_claimed(ctx, NULL);

    ngx_http_payments_finalize(r, ngx_http_payments_psp_problem(ctx,
                                   "nothing was stored"));
}


static void
ngx_http_payments_checkout_cleanup(void *data)
{
    pay_checkout_free(data);
}
