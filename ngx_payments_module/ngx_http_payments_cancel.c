
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/checkouts/{id}/cancel: the shop stops a checkout before it is
 * paid.  The rules live in the database (pay_cancel_claim,
 * pay_cancel_finish) and in the dialects (session_expire); this file
 * performs the I/O.
 *
 * One request:
 *   body (empty or {}) -> claim (pay_cancel_claim: the Idempotency-Key and
 *   the checkout, one transaction) -> the PSP's expire call, with retries
 *   and the breaker (a 4xx "not open" answer: the session look-up says
 *   why) -> finish (pay_cancel_finish: the checkout and its orders FAILED
 *   `canceled`, or the payment stands; the answer stored under the key,
 *   one transaction) -> 200 with the checkout, or 409.  A checkout whose
 *   registration is still at its PSP is refused by the claim (409 with
 *   Retry-After, nothing stored): the session being made would outlive a
 *   cancel that cannot see it.
 *
 * The PSP decides a cancel that races the shopper's payment: a session it
 * expired can no longer be paid, and a session it says was paid is never
 * canceled here.  A PSP that cannot expire a session (adyen), or a
 * checkout without one yet, is canceled at the gateway alone.  A PSP that
 * cannot be reached leaves the claim to be resumed by the retry with the
 * same key (expiring a session twice changes nothing).
 */


#include "ngx_http_payments_module.h"

#include <payments/breaker.h>
#include <payments/dialect.h>
#include <payments/idempotency.h>


typedef struct {
    pay_psp_lookup_t   in;
    char              *token;
    char              *idem;            /* "<nonce>:cancel", to the PSP */
    char              *paid;            /* the 409 problems, as stored */
    char              *not_cancelable;
    char              *path;
    char              *content_type;
    char              *body;
    size_t             body_len;
    unsigned           asking:1;        /* the look-up after a 4xx */
} ngx_http_payments_cancel_t;


static void ngx_http_payments_cancel_claimed(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_cancel_request(
    ngx_http_payments_ctx_t *ctx, ngx_uint_t lookup);
static void ngx_http_payments_cancel_call(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_cancel_retry(ngx_event_t *ev);
static void ngx_http_payments_cancel_done(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_cancel_finish(ngx_http_payments_ctx_t *ctx,
    const char *result);
static void ngx_http_payments_cancel_finished(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_cancel_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
static void ngx_http_payments_cancel_released(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_cancel_answer(ngx_http_payments_ctx_t *ctx,
    const char *status, const char *body, size_t len, ngx_uint_t replayed);


#define ngx_http_payments_cancel(ctx)                                        \
    ((ngx_http_payments_cancel_t *) (ctx)->op)


/* after authentication and the router's checks (Idempotency-Key, create=
 * limits, size, type) */

void
ngx_http_payments_cancel_start(ngx_http_payments_ctx_t *ctx)
{
    char                        *s, *path, fp[65];
    json_t                      *body;
    u_char                      *last;
    size_t                       len;
    json_error_t                 err;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_cancel_t  *cn;

    if (!pay_id_valid((char *) ctx->object_id.data, ctx->object_id.len)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no checkout with this id"));
        return;
    }

    /* nothing to say but "cancel": an empty body or {} */
    if (ctx->body.len == 0) {
        body = json_object();

    } else {
        body = json_loadb((char *) ctx->body.data, ctx->body.len,
                          JSON_REJECT_DUPLICATES, &err);

        if (body != NULL && (!json_is_object(body) || json_object_size(body)))
        {
            json_decref(body);
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_INVALID_REQUEST, 0,
                                           "a cancel takes an empty body or "
                                           "{}"));
            return;
        }

        if (body == NULL) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_INVALID_REQUEST, 0,
                                           "the body is not JSON"));
            return;
        }
    }

    if (body == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cn = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_cancel_t));
    len = sizeof("/v1/checkouts//cancel") + ctx->object_id.len;
    path = ngx_pnalloc(r->pool, len);

    if (cn == NULL || path == NULL) {
        json_decref(body);
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->op = cn;

    last = ngx_snprintf((u_char *) path, len - 1, "/v1/checkouts/%V/cancel",
                        &ctx->object_id);
    *last = '\0';

    if (pay_fingerprint("POST", path, body, fp) != 0) {
        json_decref(body);
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json_decref(body);

    s = pay_problem_json(PAY_ERR_ALREADY_PAID, 0,
                         "the checkout was paid before it could be "
                         "canceled; the payment stands (refund it to give "
                         "the money back)");
    cn->paid = ngx_http_payments_strdup(r->pool, s);
    free(s);

    s = pay_problem_json(PAY_ERR_NOT_CANCELABLE, 0,
                         "the checkout failed or expired before this "
                         "cancel; nothing was paid");
    cn->not_cancelable = ngx_http_payments_strdup(r->pool, s);
    free(s);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ngx_http_payments_strdup(r->pool, fp);
    ctx->params[3] = ngx_http_payments_num(r->pool, ctx->pmcf->lease);
    ctx->params[4] = ngx_http_payments_num(r->pool, ctx->pmcf->ttl);
    ctx->params[5] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);
    ctx->params[6] = cn->paid;
    ctx->params[7] = cn->not_cancelable;
    ctx->params[8] = ngx_http_payments_psps_other_mode(ctx);

    for (len = 0; len < 9; len++) {
        if (ctx->params[len] == NULL) {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, lease, retry_after, "
                                "response_status, response_body, psp, "
                                "psp_token, nonce, claim_age "
                                "FROM pay_cancel_claim($1, $2, $3, $4, $5, "
                                "$6, $7, $8, $9::text[])",
                                9, ngx_http_payments_cancel_claimed)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_cancel_claimed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                        *outcome, *psp, *stored, *checkout;
    ngx_int_t                    rc;
    ngx_http_payments_ctx_t     *ctx = q->data;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_cancel_t  *cn = ngx_http_payments_cancel(ctx);

    if (ngx_http_payments_pg_row(r, res, "pay_cancel_claim") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_cancel_claim \"%V\": %s", &ctx->object_id,
                   outcome);

    /* another merchant's checkout is as absent as one that never was */
    if (ngx_strcmp(outcome, "not_found") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no checkout with this id"));
        return;
    }

    if (ngx_strcmp(outcome, "replay") == 0
        || ngx_strcmp(outcome, "decided") == 0)
    {
        ngx_http_payments_cancel_answer(ctx, PQgetvalue(res, 0, 3),
                                        PQgetvalue(res, 0, 4),
                                        PQgetlength(res, 0, 4),
                                        outcome[0] == 'r');
        return;
    }

    /* its registration is at the PSP, which may be making the session
     * this cancel has to end: refused for the rest of that lease, nothing
     * stored, so that the same key cancels it once it is registered */
    if (ngx_strcmp(outcome, "registering") == 0) {
        if (ngx_http_payments_add_header(r, "Retry-After",
                                         PQgetvalue(res, 0, 2))
            != NGX_OK)
        {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_CANCELABLE, 0,
                                       "the checkout's registration with "
                                       "its PSP is under way; retry after "
                                       "Retry-After seconds (the same "
                                       "Idempotency-Key may be used), once "
                                       "it can be ended there"));
        return;
    }

    /* in_use, reused: answered from the row */
    rc = ngx_http_payments_claim_answer(r, res);
    if (rc != NGX_DECLINED) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    if (ngx_strcmp(outcome, "new") != 0
        && ngx_strcmp(outcome, "resumed") != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_cancel_claim: unexpected outcome "
                      "\"%s\"", outcome);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 1));
    psp = PQgetvalue(res, 0, 5);
    ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, psp, ngx_strlen(psp));
    ctx->nonce = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 7));

    if (ctx->lease == NULL || ctx->nonce == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (outcome[0] == 'r') {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: resuming the cancel of \"%s\" after an "
                      "expired lease", ctx->nonce);
    }

    /* its PSP is gone from this gateway: the session cannot be asked to
     * end, and canceling here alone could leave it payable unseen */
    if (ctx->psp == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: cancel of \"%s\": its psp \"%s\" is not "
                      "configured on this gateway", ctx->nonce, psp);
        ctx->fail_detail = "the checkout's PSP is not configured on this "
                           "gateway; retry with the same Idempotency-Key "
                           "once it is";
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    /* no session yet (its registration never got the PSP's answer, or it
     * is held for review and no PSP has seen it), or a PSP that cannot end
     * one: the gateway cancels alone */
    if (PQgetisnull(res, 0, 6) || !ctx->psp->dl->session_expirable
        || ctx->psp->dl->session_expire == NULL)
    {
        ngx_http_payments_cancel_finish(ctx, "gateway");
        return;
    }

    stored = PQgetvalue(res, 0, 6);
    checkout = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);

    /* the stored token, opened: never a ciphertext to the PSP */
    if (checkout == NULL
        || ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                    NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                                    (char *) ctx->merchant.data, checkout,
                                    stored, &cn->token)
           != NGX_OK)
    {
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    cn->in.nonce = ctx->nonce;
    cn->in.token = cn->token;
    cn->in.merchant_account = ctx->psp->merchant_account.len
                              ? (char *) ctx->psp->merchant_account.data
                              : NULL;

    cn->idem = ngx_pnalloc(r->pool, ngx_strlen(ctx->nonce)
                                    + sizeof(":cancel"));
    if (cn->idem == NULL) {
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_sprintf((u_char *) cn->idem, "%s:cancel%Z", ctx->nonce);

    if (ngx_http_payments_cancel_request(ctx, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: cancel of \"%s\": the PSP's expire request "
                      "cannot be built from the stored token", ctx->nonce);
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ctx->deadline = ngx_current_msec + ctx->pmcf->request_timeout;
    ctx->attempts = 0;

    ngx_http_payments_cancel_call(ctx);
}


/* the expire call (lookup 0) or the session look-up (1), in the pool */

static ngx_int_t
ngx_http_payments_cancel_request(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t lookup)
{
    int                          rc;
    pay_psp_request_t            preq;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_cancel_t  *cn = ngx_http_payments_cancel(ctx);

    ngx_memzero(&preq, sizeof(pay_psp_request_t));

    rc = lookup ? (ctx->psp->dl->session_lookup
                   ? ctx->psp->dl->session_lookup(&cn->in, &preq) : -1)
                : ctx->psp->dl->session_expire(&cn->in, &preq);

    if (rc != 0) {
        return NGX_ERROR;
    }

    cn->path = ngx_http_payments_strdup(r->pool, preq.path);
    cn->content_type = preq.content_type
                       ? ngx_http_payments_strdup(r->pool, preq.content_type)
                       : NULL;
    cn->body = preq.body ? ngx_http_payments_strdup(r->pool, preq.body)
                         : NULL;
    cn->body_len = preq.body ? preq.body_len : 0;
    cn->asking = lookup;

    rc = (cn->path == NULL || (preq.body && cn->body == NULL)
          || (preq.content_type && cn->content_type == NULL));

    pay_psp_request_free(&preq);

    return rc ? NGX_ERROR : NGX_OK;
}


static void
ngx_http_payments_cancel_call(ngx_http_payments_ctx_t *ctx)
{
    u_char                      *url, *last;
    size_t                       len;
    ngx_uint_t                   probe;
    ngx_msec_t                   left, wait;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_cancel_t  *cn = ngx_http_payments_cancel(ctx);

    if (ngx_http_payments_breaker_allow(ctx->psp, &probe, &wait) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: psp \"%V\": circuit open, the cancel of "
                      "\"%s\" not sent", &ctx->psp->name, ctx->nonce);
        ctx->fail_retry_after = (time_t) ((wait + 999) / 1000);
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    ctx->probe = probe;

    len = ctx->psp->url.len + ngx_strlen(cn->path) + 1;

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    last = ngx_snprintf(url, len, "%V%s", &ctx->psp->url, cn->path);
    *last = '\0';

    left = ctx->deadline > ngx_current_msec
           ? ctx->deadline - ngx_current_msec : 1;

    ctx->attempts++;
    ctx->fetch.handler = ngx_http_payments_cancel_done;
    ctx->fetch.data = ctx;
    ctx->fetch.log = r->connection->log;

    if (ngx_http_payments_fetch(r->pool, &ctx->fetch, ctx->psp,
                                PAY_PSP_API_MAIN, (char *) url,
                                cn->content_type,
                                cn->asking ? NULL : cn->idem,
                                cn->body, cn->body_len,
                                ngx_min(left, ctx->psp->timeout))
        != NGX_OK)
    {
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
    }
}


static void
ngx_http_payments_cancel_retry(ngx_event_t *ev)
{
    ngx_http_payments_cancel_call(ev->data);
}


static void
ngx_http_payments_cancel_done(ngx_http_payments_fetch_t *f)
{
    int                          status;
    pay_event_t                  ev;
    pay_psp_outcome_e            outcome;
    pay_lookup_outcome_e         lo;
    ngx_http_payments_ctx_t     *ctx = f->data;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_cancel_t  *cn = ngx_http_payments_cancel(ctx);

    status = f->result == CURLE_OK ? (int) f->status : 0;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: psp \"%V\" %s of \"%s\" attempt %ui: HTTP %l, "
                  "%s, %Mms", &ctx->psp->name,
                  cn->asking ? "session look-up" : "session expire",
                  ctx->nonce, ctx->attempts, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  f->elapsed);

    outcome = status == 401 || status == 403 ? PAY_PSP_AUTH
              : status >= 200 && status < 300 ? PAY_PSP_CREATED
              : status >= 400 && status < 500 && status != 408
                && status != 429 ? PAY_PSP_REFUSED
              : PAY_PSP_RETRY;

    if (ngx_http_payments_psp_answered(ctx->psp, f, outcome, ctx->probe)
        != NGX_OK)
    {
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (outcome == PAY_PSP_AUTH) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: psp \"%V\" refused the gateway's "
                      "credentials (HTTP %l): check its secret_file",
                      &ctx->psp->name, f->status);
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (outcome == PAY_PSP_REFUSED) {
        /* the session is not open (Stripe's 400): its look-up says
         * whether it was paid or ended; a session the PSP does not know,
         * or a refused look-up, is for a person to see */
        if (!cn->asking && status != 404
            && ngx_http_payments_cancel_request(ctx, 1) == NGX_OK)
        {
            ngx_http_payments_cancel_call(ctx);
            return;
        }

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: psp \"%V\" refused the %s of \"%s\" (HTTP "
                      "%l): the checkout is not canceled", &ctx->psp->name,
                      cn->asking ? "session look-up" : "session expire",
                      ctx->nonce, f->status);
        ctx->fail_detail = "the PSP refused to end this checkout's session; "
                           "it is not canceled";
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (outcome == PAY_PSP_CREATED) {
        /* the session as it is now (after the expire call) */
        lo = ctx->psp->dl->session_lookup_answer(&cn->in, status,
                                                 (char *) f->body, f->len,
                                                 (int64_t) ngx_time(), &ev);

        switch (lo) {

        case PAY_LOOKUP_DECIDED:
            ngx_http_payments_cancel_finish(ctx,
                                            ev.kind == PAY_EVT_SUCCEEDED
                                            ? "paid" : "closed");
            return;

        case PAY_LOOKUP_PENDING:
            /* a payment under way in the session stands */
            ngx_http_payments_cancel_finish(ctx, "paid");
            return;

        case PAY_LOOKUP_AUTH:
            ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;

        case PAY_LOOKUP_OPEN:
            /* still open after a 4xx "not open": the PSP contradicts
             * itself; after an expire, it has not ended it yet */
            if (cn->asking) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "payments: psp \"%V\" would not end the open "
                              "session of \"%s\"", &ctx->psp->name,
                              ctx->nonce);
                ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
                return;
            }

            break;

        default: /* PAY_LOOKUP_UNKNOWN: no answer we can trust */
            break;
        }
    }

    switch (ngx_http_payments_psp_retry_later(ctx, f, 0,
                                              ngx_http_payments_cancel_retry))
    {
    case NGX_OK:
        return;

    case NGX_ERROR:
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;

    default: /* NGX_DECLINED: no retry left */
        break;
    }

    ngx_http_payments_cancel_release(ctx,
                                     f->result == CURLE_OPERATION_TIMEDOUT
                                     ? NGX_HTTP_GATEWAY_TIME_OUT
                                     : NGX_HTTP_BAD_GATEWAY);
}


/* The PSP answered for good (or the gateway cancels alone): the result,
 * the checkout and the key's answer in one transaction. */

static void
ngx_http_payments_cancel_finish(ngx_http_payments_ctx_t *ctx,
    const char *result)
{
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_cancel_t  *cn = ngx_http_payments_cancel(ctx);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: cancel of \"%s\": %s", ctx->nonce, result);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);
    ctx->params[4] = (char *) result;
    ctx->params[5] = cn->paid;
    ctx->params[6] = cn->not_cancelable;

    if (ctx->params[3] == NULL) {
        ngx_http_payments_cancel_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT response_status, response_body "
                                "FROM pay_cancel_finish($1, $2, $3, $4, $5, "
                                "$6, $7)",
                                7, ngx_http_payments_cancel_finished)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_cancel_finished(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /* without its row the commit is unknown: the retry with the same key
     * finds a replay, or resumes (expiring twice changes nothing) */
    if (ngx_http_payments_pg_row(r, res, "pay_cancel_finish") != NGX_OK) {
        return;
    }

    ngx_http_payments_cancel_answer(ctx, PQgetvalue(res, 0, 0),
                                    PQgetvalue(res, 0, 1),
                                    PQgetlength(res, 0, 1), 0);
}


/* A stored answer: a 200 is the checkout as GET /v1/checkouts/{id} shows
 * it (canceled, for good), a 409 its problem. */

static void
ngx_http_payments_cancel_answer(ngx_http_payments_ctx_t *ctx,
    const char *status, const char *body, size_t len, ngx_uint_t replayed)
{
    ngx_http_request_t  *r = ctx->request;

    if (ngx_strcmp(status, "200") == 0) {
        if (replayed) {
            ngx_http_payments_count(
                idempotency[NGX_HTTP_PAYMENTS_IDEM_REPLAYED]);

            if (ngx_http_payments_add_header(r, "Idempotent-Replayed",
                                             "true")
                != NGX_OK)
            {
                ngx_http_payments_finalize(r,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }

        ngx_http_payments_get_checkout(ctx);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r, status,
                                   body, len, replayed));
}


/* No answer we can store: the lease ends, the retry resumes at once. */

static void
ngx_http_payments_cancel_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;

    /* a cancel's key names no money operation: only its lease ends */
    if (ngx_http_payments_query(ctx, "SELECT pay_op_release($1, $2, $3, "
                                "NULL::boolean)", 3,
                                ngx_http_payments_cancel_released)
        != NGX_OK)
    {
        ngx_http_payments_cancel_released(&ctx->query, NULL);
    }
}


static void
ngx_http_payments_cancel_released(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    u_char                    ra[NGX_TIME_T_LEN + 1];
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_op_release failed; the lease ends by "
                      "itself");
    }

    if (ctx->fail_retry_after > 0) {
        *ngx_sprintf(ra, "%T", ctx->fail_retry_after) = '\0';

        if (ngx_http_payments_add_header(r, "Retry-After", (char *) ra)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_PSP_UNAVAILABLE, ctx->fail_status,
                                   ctx->fail_detail
                                   ? ctx->fail_detail
                                   : "the PSP did not complete the cancel; "
                                     "retry with the same Idempotency-Key"));
}
