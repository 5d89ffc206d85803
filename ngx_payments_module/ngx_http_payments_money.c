
/*
 * Copyright (C) ngx_payments authors
 *
 * The money after "paid": POST /v1/payments/{id}/refunds and POST
 * /v1/payouts (an operation registered with the PSP under a nonce, with the
 * idempotency of POST /v1/payments), GET /v1/payouts/{id} and GET
 * /v1/sellers/{seller}/balance.  The rules live in the core
 * (payments/operation.h, the dialects' refund and payout) and in the
 * database (sql/functions/pay_refund_claim.sql and its kin); this file
 * performs the I/O.
 *
 * One request:
 *   body checked (core) -> [refund: the order's currency and PSP] ->
 *   claim (pay_refund_claim / pay_payout_claim: the key, the limits, the
 *   row) -> the PSP, with retries and the breaker -> finish (the answer
 *   stored under the key) -> 201.
 * A PSP that cannot be reached leaves the claim to be resumed: the retry
 * with the same key sends the same nonce and the same bytes, while the PSP
 * still keeps its key (the dialect's key_window).  Each release tells the
 * database whether the request's attempts may have reached the PSP (a byte
 * sent: the curl glue's ngx_http_payments_fetch_never_sent); an attempt
 * that never released counts as one that may have.  A claim its webhook
 * settled meanwhile, or whose PSP id is known, is answered from its row
 * (outcome "settled") and sent nowhere; one older than the key window is
 * never sent again: given up if no attempt can have reached the PSP
 * (pay_op_abandon: FAILED, its amount given back, the 201 saying so stored
 * under the key: the shop makes it again with a new key), else a person
 * looks it up at the PSP (an alert, 502).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_money.h"

#include <payments/operation.h>
#include <payments/view.h>
#include <payments/breaker.h>




static ngx_int_t ngx_http_payments_op_common(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_refund_info(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_op_claim(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_op_unusable(ngx_http_payments_ctx_t *ctx,
    pay_err_e err, const char *detail);
static void ngx_http_payments_op_unusable_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_op_claimed(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_op_refusal(ngx_http_payments_ctx_t *ctx,
    const char *outcome, PGresult *res);
static void ngx_http_payments_op_settled(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
static ngx_int_t ngx_http_payments_op_row(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
static void ngx_http_payments_money_view(ngx_http_payments_pg_query_t *q,
    PGresult *res);




/* The operation's state; the router checked the Idempotency-Key, the
 * limits, the size and the type (ngx_http_payments_money_post). */

static ngx_int_t
ngx_http_payments_op_common(ngx_http_payments_ctx_t *ctx)
{
    ctx->op = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_payments_op_t));

    return ctx->op ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* POST /v1/payments/{id}/refunds, after authentication */

void
ngx_http_payments_refund_start(ngx_http_payments_ctx_t *ctx)
{
    char                    *order;
    ngx_int_t                rc;
    pay_verdict_t            v;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op;

    rc = ngx_http_payments_op_common(ctx);
    if (rc != NGX_OK) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    op = ngx_http_payments_op(ctx);
    op->refund = 1;

    order = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);
    if (order == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pay_refund_request_parse((char *) ctx->body.data, ctx->body.len,
                                 order, &op->rq, &v) != 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r, v.err, 0,
                                       v.err == PAY_ERR_NOT_FOUND
                                       ? "no payment order with this id"
                                       : v.detail));
        return;
    }

    op->metadata = ngx_http_payments_strdup(r->pool, op->rq.metadata);
    pay_op_request_free(&op->rq.metadata);

    if (op->metadata == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the amount is read in the order's currency, and sent to its PSP */
    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = order;

    if (ngx_http_payments_query(ctx, "SELECT currency, psp FROM "
                                "pay_order_refund_info($1, $2)", 2,
                                ngx_http_payments_refund_info)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_refund_info(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *cur, *psp;
    pay_verdict_t             v;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_op_t   *op = ngx_http_payments_op(ctx);

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK
        && PQntuples(res) == 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no payment order with this id"));
        return;
    }

    if (ngx_http_payments_pg_row(r, res, "pay_order_refund_info") != NGX_OK) {
        return;
    }

    cur = PQgetvalue(res, 0, 0);
    psp = PQgetvalue(res, 0, 1);

    if (pay_refund_amount(&op->rq, cur, &v) != 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r, v.err, 0,
                                                                v.detail));
        return;
    }

    ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, psp, ngx_strlen(psp));

    if (ctx->psp == NULL
        || (op->capture ? (op->cancel ? ctx->psp->dl->cancel == NULL
                                      : ctx->psp->dl->capture == NULL)
                        : ctx->psp->dl->refund == NULL))
    {
        ngx_http_payments_op_unusable(ctx,
                                      op->capture ? PAY_ERR_NOT_CAPTURABLE
                                                  : PAY_ERR_NOT_REFUNDABLE,
                                      "the order's PSP is not configured "
                                      "on this gateway");
        return;
    }

    /* test money never reaches a live PSP, nor live money a test one: the
     * PSP's name may have been given another mode= since the payment */
    if (ctx->key_live != ctx->psp->live) {
        ngx_http_payments_op_unusable(ctx,
                                      op->capture ? PAY_ERR_NOT_CAPTURABLE
                                                  : PAY_ERR_NOT_REFUNDABLE,
                                      "the order's PSP is configured in "
                                      "another mode than the API key's");
        return;
    }

    if (op->capture) {
        /* what the PSP can be sent is a multiple of its unit (100 for
         * whole rupiah): all that is left is rounded down to it, and the
         * database stores no claim it cannot be sent */
        op->unit = pay_psp_unit(ctx->psp->dialect, cur);

        if (op->unit <= 0) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_NOT_CAPTURABLE, 0,
                                           "the order's PSP takes no "
                                           "amount in its currency"));
            return;
        }
    }

    if (op->capture && op->rq.amount == 0) {
        /* all that is left, in the PSP's unit: the database decides how
         * much */
        ngx_memcpy(op->currency, cur, 3);
        op->amount = 0;

        if (pay_operation_id(op->cancel ? "vd_" : "cp_", op->id,
                             sizeof(op->id))
            != 0)
        {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_payments_op_claim(ctx);
        return;
    }

    if (!pay_psp_amount_supported(ctx->psp->dialect, cur, op->rq.amount)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_AMOUNT, 0,
                                       op->capture
                                       ? "the order's PSP cannot capture "
                                         "this amount in this currency"
                                       : "the order's PSP cannot refund "
                                         "this amount in this currency"));
        return;
    }

    ngx_memcpy(op->currency, cur, 3);
    op->amount = op->rq.amount;

    if (pay_operation_id(op->capture ? "cp_" : "rf_", op->id, sizeof(op->id))
        != 0)
    {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_op_claim(ctx);
}


/*
 * POST /v1/payments/{id}/capture and /void, after authentication: a
 * refund's way (the order's currency and PSP, the claim, the PSP, the
 * finish), with pay_capture_claim and the dialect's capture or cancel.
 */

void
ngx_http_payments_capture_start(ngx_http_payments_ctx_t *ctx)
{
    char                    *order;
    ngx_int_t                rc;
    pay_verdict_t            v;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op;

    rc = ngx_http_payments_op_common(ctx);
    if (rc != NGX_OK) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    op = ngx_http_payments_op(ctx);
    op->refund = 1;
    op->capture = 1;
    op->cancel = (ctx->route == PAY_ROUTE_VOID);

    order = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);
    if (order == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pay_capture_request_parse((char *) ctx->body.data, ctx->body.len,
                                  order, op->cancel, &op->rq, &v)
        != 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r, v.err, 0,
                                       v.err == PAY_ERR_NOT_FOUND
                                       ? "no payment order with this id"
                                       : v.detail));
        return;
    }

    op->metadata = ngx_http_payments_strdup(r->pool, op->rq.metadata);
    pay_op_request_free(&op->rq.metadata);

    if (op->metadata == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = order;

    if (ngx_http_payments_query(ctx, "SELECT currency, psp FROM "
                                "pay_order_refund_info($1, $2)", 2,
                                ngx_http_payments_refund_info)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/* POST /v1/payouts, after authentication */

void
ngx_http_payments_payout_start(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t                rc;
    pay_verdict_t            v;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op;

    rc = ngx_http_payments_op_common(ctx);
    if (rc != NGX_OK) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    op = ngx_http_payments_op(ctx);

    if (pay_payout_request_parse((char *) ctx->body.data, ctx->body.len,
                                 &op->pq, &v) != 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r, v.err, 0,
                                                                v.detail));
        return;
    }

    op->metadata = ngx_http_payments_strdup(r->pool, op->pq.metadata);
    pay_op_request_free(&op->pq.metadata);

    if (op->metadata == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, op->pq.psp,
                                          ngx_strlen(op->pq.psp));

    /* a PSP whose pay-outs go to an API it has no URL for does not pay
     * out (Adyen without transfers_url=) */
    if (ctx->psp == NULL || ctx->psp->dl->payout == NULL
        || (ctx->psp->dl->payout_api == PAY_PSP_API_TRANSFERS
            && ctx->psp->transfers_url.len == 0))
    {
        ngx_http_payments_op_unusable(ctx, PAY_ERR_INVALID_REQUEST,
                                      "psp: no PSP of that name that pays "
                                      "out is configured");
        return;
    }

    /* test money never reaches a live PSP, nor live money a test one */
    if (ctx->key_live != ctx->psp->live) {
        ngx_http_payments_op_unusable(ctx, PAY_ERR_INVALID_REQUEST,
                                      "psp: the API key's mode is not the "
                                      "PSP's");
        return;
    }

    if (!pay_psp_amount_supported(ctx->psp->dialect, op->pq.currency,
                                  op->pq.amount))
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_AMOUNT, 0,
                                       "this PSP cannot pay out this amount "
                                       "in this currency"));
        return;
    }

    ngx_memcpy(op->currency, op->pq.currency, 3);
    op->amount = op->pq.amount;

    if (pay_operation_id("pyo_", op->id, sizeof(op->id)) != 0) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_op_claim(ctx);
}


/*
 * An operation no configured PSP can send now (its order's PSP, or the
 * pay-out's, removed from nginx.conf, or in the other mode): a retry under
 * its key is answered from what is stored (pay_op_key_answer, a read), so that
 * a shop whose 201 was lost is not told its refund or pay-out cannot be
 * made; a new one is refused with err and detail, nothing stored; one
 * claimed and never answered is not sent (503 not_configured).  A retry
 * whose key is past its TTL is the operation its request made
 * (operation_keys), answered from its row when settled or known to the
 * PSP, else not sent either.
 */

static void
ngx_http_payments_op_unusable(ngx_http_payments_ctx_t *ctx, pay_err_e err,
    const char *detail)
{
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    op->refused_err = err;
    op->refused_detail = detail;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = op->refund ? op->rq.fingerprint : op->pq.fingerprint;

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, lease, retry_after, "
                                "response_status, response_body, op_id, "
                                "psp, payment_ref, amount, currency, "
                                "reason, refundable, op_status, psp_ref, "
                                "failure "
                                "FROM pay_op_key_answer($1, $2, $3)",
                                3, ngx_http_payments_op_unusable_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(ctx->request,
                                   ngx_http_payments_store_unavailable(
                                       ctx->request));
    }
}


static void
ngx_http_payments_op_unusable_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *outcome;
    ngx_int_t                 rc;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_op_t   *op = ngx_http_payments_op(ctx);

    if (ngx_http_payments_pg_row(r, res, "pay_op_key_answer") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    if (ngx_strcmp(outcome, "new") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       op->refused_err, 0,
                                       op->refused_detail));
        return;
    }

    /* replay, in_use, reused */
    rc = ngx_http_payments_claim_answer(r, res);
    if (rc != NGX_DECLINED) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    /* its key past its TTL, the operation it made settled or known to the
     * PSP: answered from its row, as the claim would */
    if (ngx_strcmp(outcome, "settled") == 0) {
        if (ngx_http_payments_op_row(ctx, res) != NGX_OK) {
            return;
        }

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: %s \"%V:%s\" is %s: answered from its "
                      "row, its PSP not configured",
                      ngx_http_payments_op_kind(op), &ctx->merchant, op->id,
                      op->status);

        ngx_http_payments_finalize(r, ngx_http_payments_op_answer_row(ctx));
        return;
    }

    if (ngx_strcmp(outcome, "unsent") != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_op_key_answer: unexpected outcome \"%s\"",
                      outcome);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* claimed, never answered: sent again only to the PSP it was claimed
     * for, under its nonce (the sweeper and the PSP's webhooks still
     * settle it) */
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: a %s of merchant \"%V\" was not answered and "
                  "cannot be sent again: %s", ngx_http_payments_op_kind(op),
                  &ctx->merchant, op->refused_detail);

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_NOT_CONFIGURED, 0,
                                   "the operation under this "
                                   "Idempotency-Key was not answered, and "
                                   "is sent again only to the PSP it was "
                                   "claimed for, which this gateway cannot "
                                   "use now; retry with the same key once "
                                   "it can"));
}


static void
ngx_http_payments_op_claim(ngx_http_payments_ctx_t *ctx)
{
    char                    *rec;
    ngx_uint_t               i;
    pay_psp_conf_t           conf;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    /* the PSP's settings its request carries, recorded with the row: a
     * resumed claim is sent again only under the same (op_claimed) */
    ngx_http_payments_op_conf(ctx, &conf);

    rec = pay_psp_conf_record(&conf);
    ctx->params[11] = ngx_http_payments_strdup(r->pool, rec);
    free(rec);

    if (ctx->params[11] == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = op->refund ? op->rq.fingerprint : op->pq.fingerprint;
    ctx->params[3] = ngx_http_payments_num(r->pool, ctx->pmcf->lease);
    ctx->params[4] = ngx_http_payments_num(r->pool, ctx->pmcf->ttl);
    ctx->params[5] = op->id;
    ctx->params[6] = op->refund
                     ? (char *) ngx_http_payments_cstr(r->pool,
                                                       &ctx->object_id)
                     : op->pq.seller_account;
    ctx->params[7] = ngx_http_payments_num(r->pool, op->amount);
    ctx->params[8] = op->currency;
    ctx->params[9] = op->refund
                     ? (op->rq.reason[0] ? op->rq.reason : NULL)
                     : op->pq.psp;
    ctx->params[10] = op->metadata;

    if (op->capture) {
        /* no amount: all that is left; the kind; a PSP that captures an
         * authorization once; then the settings; its unit */
        ctx->params[7] = op->amount > 0 ? ctx->params[7] : NULL;
        ctx->params[9] = op->cancel ? "void" : "capture";
        ctx->params[12] = ctx->params[11];
        ctx->params[11] = ctx->psp->dl->capture_once ? "true" : "false";
        ctx->params[13] = ngx_http_payments_num(r->pool, op->unit);
    }

    for (i = 0; i < (op->capture ? 14 : 12); i++) {
        if (i == 9 || (i == 7 && op->capture && op->amount == 0)) {
            continue;               /* a refund's reason may be NULL */
        }

        if (ctx->params[i] == NULL) {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (op->capture) {
        if (ngx_http_payments_query(ctx,
                                    "SELECT outcome, lease, retry_after, "
                                    "response_status, response_body, "
                                    "refund_id, psp, payment_ref, amount, "
                                    "currency, reason, refundable, "
                                    "op_status, psp_ref, failure, "
                                    "claim_age, psp_conf "
                                    "FROM pay_capture_claim($1, $2, $3, $4, "
                                    "$5, $6, $7, $8, $9, $10, $11::jsonb, "
                                    "$12::boolean, $13::jsonb, "
                                    "$14::bigint)",
                                    14, ngx_http_payments_op_claimed)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                       ngx_http_payments_store_unavailable(r));
        }

        return;
    }

    if (ngx_http_payments_query(ctx, op->refund
                                ? "SELECT outcome, lease, retry_after, "
                                  "response_status, response_body, "
                                  "refund_id, psp, payment_ref, amount, "
                                  "currency, reason, refundable, "
                                  "op_status, psp_ref, failure, "
                                  "claim_age, psp_conf FROM "
                                  "pay_refund_claim($1, $2, $3, $4, $5, $6, "
                                  "$7, $8, $9, $10, $11::jsonb, $12::jsonb)"
                                : "SELECT outcome, lease, retry_after, "
                                  "response_status, response_body, "
                                  "payout_id, psp, destination, amount, "
                                  "currency, NULL, available, op_status, "
                                  "psp_ref, failure, claim_age, psp_conf "
                                  "FROM pay_payout_claim($1, $2, $3, $4, "
                                  "$5, $6, $7, $8, $9, $10, $11::jsonb, "
                                  "$12::jsonb)",
                                12, ngx_http_payments_op_claimed)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_op_claimed(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *outcome, *p;
    ngx_int_t                 rc;
    const char               *changed;
    pay_psp_conf_t            conf;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_op_t   *op = ngx_http_payments_op(ctx);

    if (ngx_http_payments_pg_row(r, res, op->capture ? "pay_capture_claim"
                                         : op->refund ? "pay_refund_claim"
                                                      : "pay_payout_claim")
        != NGX_OK)
    {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    /* the money checks' verdict (new, resumed, settled, replay, in_use,
     * exceeds_capture, insufficient_balance, ...) */
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: %s of \"%V\": %s",
                   op->capture ? "pay_capture_claim"
                               : op->refund ? "pay_refund_claim"
                                            : "pay_payout_claim",
                   &ctx->object_id, outcome);

    /* replay, in_use, reused: answered from the row */
    rc = ngx_http_payments_claim_answer(r, res);
    if (rc != NGX_DECLINED) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    if (ngx_strcmp(outcome, "settled") == 0) {
        ngx_http_payments_op_settled(ctx, res);
        return;
    }

    if (ngx_strcmp(outcome, "new") != 0
        && ngx_strcmp(outcome, "resumed") != 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_op_refusal(ctx,
                                                                   outcome,
                                                                   res));
        return;
    }

    /* new or resumed: what was stored is what the PSP gets */

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 1));
    p = PQgetvalue(res, 0, 5);

    if (ctx->lease == NULL || ngx_strlen(p) >= sizeof(op->id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ngx_cpystrn((u_char *) op->id, (u_char *) p, sizeof(op->id));

    if (outcome[0] == 'r') {
        ctx->psp_maybe = 1;

        /* the stored operation, not this request's copy (the same bytes:
         * the fingerprint matched) */
        p = PQgetvalue(res, 0, 6);
        ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, p, ngx_strlen(p));

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: resuming %s \"%V:%s\" after an expired "
                      "lease, or after its key expired",
                      ngx_http_payments_op_kind(op), &ctx->merchant, op->id);
    }

    op->amount = ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                           PQgetlength(res, 0, 8));
    ngx_cpystrn((u_char *) op->currency, (u_char *) PQgetvalue(res, 0, 9),
                sizeof(op->currency));

    if (op->capture) {
        op->payment_ref = ngx_http_payments_strdup(r->pool,
                                                   PQgetvalue(res, 0, 7));
        op->reason = NULL;

    } else if (op->refund) {
        op->payment_ref = ngx_http_payments_strdup(r->pool,
                                                   PQgetvalue(res, 0, 7));
        op->reason = PQgetisnull(res, 0, 10)
                     ? NULL
                     : ngx_http_payments_strdup(r->pool,
                                                PQgetvalue(res, 0, 10));
    } else {
        op->destination = ngx_http_payments_strdup(r->pool,
                                                   PQgetvalue(res, 0, 7));
    }

    ctx->nonce = ngx_pnalloc(r->pool, ctx->merchant.len + 1
                                      + sizeof(op->id));

    if (ctx->psp == NULL || op->amount <= 0 || ctx->nonce == NULL
        || (op->refund ? op->payment_ref == NULL : op->destination == NULL))
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: %s \"%s\": its PSP is not configured or "
                      "its row is malformed",
                      ngx_http_payments_op_kind(op), op->id);
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_sprintf((u_char *) ctx->nonce, "%V:%s%Z", &ctx->merchant, op->id);

    /* the PSP may have forgotten the first attempt's key: sent again, the
     * request could make a second refund or transfer */
    if (outcome[0] == 'r'
        && !pay_dialect_key_kept(ctx->psp->dl,
                                 (int64_t) ngx_atoof(
                                     (u_char *) PQgetvalue(res, 0, 15),
                                     PQgetlength(res, 0, 15)),
                                 ngx_http_payments_in_flight(ctx->pmcf)))
    {
        /* given up if no attempt can have reached the PSP, else alerted */
        op->stale = 1;
        ngx_http_payments_op_abandon(ctx);
        return;
    }

    /* its request takes the PSP's settings recorded with the claim
     * (NULL: made before they were recorded): sent again under the same
     * key with others, it would be another request, at another account
     * (Adyen refuses it under the key as in use; or, once the key is gone,
     * makes a second operation).  Not sent: the PSP's webhook settles it,
     * or the setting put back resumes it. */
    if (outcome[0] == 'r' && !PQgetisnull(res, 0, 16)) {
        ngx_http_payments_op_conf(ctx, &conf);

        changed = pay_psp_conf_changed(PQgetvalue(res, 0, 16),
                                       PQgetlength(res, 0, 16), &conf);

        if (changed != NULL) {
            op->conf_changed = ngx_http_payments_conf_setting(r->pool,
                                                              changed);

            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "payments: %s \"%s\" got no answer from psp "
                          "\"%V\", whose %s is no longer what it was sent "
                          "with: not sent again; put the setting back to "
                          "resume it, or look it up at the PSP by its "
                          "reference",
                          ngx_http_payments_op_kind(op),
                          ctx->nonce, &ctx->psp->name, op->conf_changed);
            ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }
    }

    if (ngx_http_payments_op_build(ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: %s \"%s\": the PSP request cannot be "
                      "built from the stored operation",
                      ngx_http_payments_op_kind(op), ctx->nonce);
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ctx->deadline = ngx_current_msec + ctx->pmcf->request_timeout;
    ctx->attempts = 0;

    ngx_http_payments_op_call(ctx);
}


/*
 * A resumed claim whose operation was settled (its webhook came) or whose
 * PSP id is known: its row is the answer, stored under the key as a
 * finished request's, and the PSP is not asked again.
 */

static void
ngx_http_payments_op_settled(ngx_http_payments_ctx_t *ctx, PGresult *res)
{
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 1));

    if (ctx->lease == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (ngx_http_payments_op_row(ctx, res) != NGX_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: %s \"%V:%s\" is %s: answered from its row, "
                  "not sent again", ngx_http_payments_op_kind(op),
                  &ctx->merchant, op->id, op->status);

    ngx_http_payments_op_finish(ctx, ngx_strcmp(op->status, "FAILED") != 0,
                                op->psp_ref, op->failure);
}


/*
 * The operation's row in a claim's answer (or pay_op_key_answer's, whose
 * columns are where the claim's are): its id, amount, currency, reason,
 * PSP, status, PSP id and failure, into the request's operation.  On an
 * error the request is finalized and NGX_ERROR returned.
 */

static ngx_int_t
ngx_http_payments_op_row(ngx_http_payments_ctx_t *ctx, PGresult *res)
{
    char                    *p;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    p = PQgetvalue(res, 0, 5);

    if (ngx_strlen(p) >= sizeof(op->id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) op->id, (u_char *) p, sizeof(op->id));

    op->amount = ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                           PQgetlength(res, 0, 8));
    ngx_cpystrn((u_char *) op->currency, (u_char *) PQgetvalue(res, 0, 9),
                sizeof(op->currency));
    op->reason = (op->refund && !op->capture && !PQgetisnull(res, 0, 10))
                 ? ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 10))
                 : NULL;
    op->psp_name = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 6));
    op->status = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 12));
    op->psp_ref = PQgetisnull(res, 0, 13)
                  ? NULL
                  : ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 13));
    op->failure = PQgetisnull(res, 0, 14)
                  ? NULL
                  : ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 14));

    if (op->psp_name == NULL || op->status == NULL
        || (!PQgetisnull(res, 0, 13) && op->psp_ref == NULL)
        || (!PQgetisnull(res, 0, 14) && op->failure == NULL))
    {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* A claim refused by the database's rules: nothing was stored. */

static ngx_int_t
ngx_http_payments_op_refusal(ngx_http_payments_ctx_t *ctx,
    const char *outcome, PGresult *res)
{
    char                     buf[32], unit[32], detail[192], *amount;
    int64_t                  left;
    const pay_currency_t    *cur;
    ngx_http_request_t      *r = ctx->request;

    cur = pay_currency_find(PQgetvalue(res, 0, 9), PQgetlength(res, 0, 9));
    left = PQgetisnull(res, 0, 11)
           ? -1 : ngx_atoof((u_char *) PQgetvalue(res, 0, 11),
                            PQgetlength(res, 0, 11));

    /* the amount left, any sign: "-2.50", "0.00", "6.00" */
    ngx_cpystrn((u_char *) buf, (u_char *) "-", sizeof(buf));

    if (cur == NULL || left == INT64_MIN
        || pay_amount_format(left < 0 ? -left : left, cur->exponent,
                             buf + 1, sizeof(buf) - 1) < 0)
    {
        ngx_cpystrn((u_char *) buf, (u_char *) "-0", sizeof(buf));
    }

    amount = left < 0 ? buf : buf + 1;

    if (ngx_strcmp(outcome, "not_found") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_NOT_FOUND, 0,
                                         "no payment order with this id");
    }

    if (ngx_strcmp(outcome, "not_refundable") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_NOT_REFUNDABLE, 0,
                                         "only a paid order whose PSP "
                                         "payment is known can be refunded");
    }

    if (ngx_strcmp(outcome, "currency_mismatch") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_CURRENCY_MISMATCH, 0,
                                         "the refund's currency is not the "
                                         "order's");
    }

    if (ngx_strcmp(outcome, "exceeds_capture") == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail),
                     "at most %s %s of this order can still be refunded%Z",
                     amount, cur ? cur->code : "");
        return ngx_http_payments_problem(r, PAY_ERR_REFUND_EXCEEDS, 0,
                                         detail);
    }

    if (ngx_strcmp(outcome, "not_capturable") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_NOT_CAPTURABLE, 0,
                                         "only a manual-capture order whose "
                                         "authorization is held, nothing "
                                         "refunded of it, can be captured "
                                         "or voided (a PSP that captures "
                                         "once: one capture)");
    }

    if (ngx_strcmp(outcome, "capture_in_progress") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_NOT_CAPTURABLE, 0,
                                         "a void or a final capture of this "
                                         "checkout is under way; a void "
                                         "waits for the captures under way");
    }

    if (ngx_strcmp(outcome, "exceeds_authorization") == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail),
                     "at most %s %s of this order can still be captured%Z",
                     amount, cur ? cur->code : "");
        return ngx_http_payments_problem(r, PAY_ERR_CAPTURE_EXCEEDS, 0,
                                         detail);
    }

    if (ngx_strcmp(outcome, "not_expressible") == 0) {
        /* what is left is less than the PSP can be sent (or an amount the
         * database found it has no value for): nothing was stored */
        if (ngx_http_payments_op(ctx)->amount != 0) {
            return ngx_http_payments_problem(r, PAY_ERR_INVALID_AMOUNT, 0,
                                             "the order's PSP cannot "
                                             "capture this amount in this "
                                             "currency");
        }

        if (cur == NULL
            || pay_amount_format(ngx_http_payments_op(ctx)->unit,
                                 cur->exponent, unit, sizeof(unit)) < 0)
        {
            ngx_cpystrn((u_char *) unit, (u_char *) "-", sizeof(unit));
        }

        ngx_snprintf((u_char *) detail, sizeof(detail),
                     "%s %s is left of this order, less than the smallest "
                     "amount its PSP captures (%s %s): nothing more can be "
                     "captured of it; void the rest%Z",
                     amount, cur ? cur->code : "", unit,
                     cur ? cur->code : "");
        return ngx_http_payments_problem(r, PAY_ERR_INVALID_AMOUNT, 0,
                                         detail);
    }

    if (ngx_strcmp(outcome, "merchant_account") == 0) {
        /* its payment's registration recorded another merchant account
         * (psp_conf): under the one configured now the PSP refuses it, and
         * under the payment's its webhook is refused as another account's
         * (never settled here) */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: %s of payment order \"%V\" not sent: its "
                      "payment was made under the merchant account %s, "
                      "not the one psp \"%V\"'s merchant_account= names "
                      "now; put the setting back to send it, or do it at "
                      "the PSP on that account",
                      ngx_http_payments_op_kind(ngx_http_payments_op(ctx)),
                      &ctx->object_id,
                      PQgetisnull(res, 0, 16) ? "{}" : PQgetvalue(res, 0, 16),
                      &ctx->psp->name);

        return ngx_http_payments_problem(r, PAY_ERR_PSP_UNAVAILABLE, 0,
                                         "the payment was made under "
                                         "another merchant account than its "
                                         "PSP's configuration names now "
                                         "(merchant_account=): not sent, "
                                         "nothing stored; retry once the "
                                         "setting is as it was, or an "
                                         "operator does it at the PSP");
    }

    if (ngx_strcmp(outcome, "seller_unknown") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_SELLER_UNKNOWN, 0,
                                         "the seller has no destination at "
                                         "this PSP; register it with "
                                         "payments-merchant add-seller");
    }

    if (ngx_strcmp(outcome, "insufficient_balance") == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail),
                     ngx_http_payments_op(ctx)->refund
                     ? "the seller's available balance is %s %s, less than "
                       "its share of this refund%Z"
                     : "the seller's available balance is %s %s%Z", amount,
                     cur ? cur->code : "");
        return ngx_http_payments_problem(r, PAY_ERR_INSUFFICIENT_BALANCE, 0,
                                         detail);
    }

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "payments: unexpected claim outcome \"%s\"", outcome);

    return ngx_http_payments_store_unavailable(r);
}


/* GET /v1/payouts/{id}, GET /v1/sellers/{seller}/balance */

void
ngx_http_payments_get_payout(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!pay_id_valid((char *) ctx->object_id.data, ctx->object_id.len)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx, "SELECT pay_get_payout($1, $2)", 2,
                                   ngx_http_payments_money_view)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_get_balance(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!pay_seller_valid((char *) ctx->object_id.data, ctx->object_id.len)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx, "SELECT pay_get_balance($1, $2)", 2,
                                   ngx_http_payments_money_view)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_money_view(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *json;
    ngx_int_t                 rc;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "money view") != NGX_OK) {
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       ctx->route == PAY_ROUTE_PAYOUT
                                       ? "no pay-out with this id"
                                       : "no seller with this account"));
        return;
    }

    json = ctx->route == PAY_ROUTE_PAYOUT
           ? pay_payout_view_json(PQgetvalue(res, 0, 0),
                                  PQgetlength(res, 0, 0))
           : pay_balance_view_json(PQgetvalue(res, 0, 0),
                                   PQgetlength(res, 0, 0));

    if (json == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: a money view's row is malformed");
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_payments_send(r, NGX_HTTP_OK, "application/json",
                                (u_char *) json, ngx_strlen(json));
    free(json);

    ngx_http_payments_finalize(r, rc);
}
