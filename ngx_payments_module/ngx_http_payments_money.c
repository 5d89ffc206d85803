
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
static void ngx_http_payments_op_claimed(ngx_http_payments_pg_query_t *q,
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
