
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
 * still keeps its key (the dialect's key_window).  A claim its webhook
 * settled meanwhile, or whose PSP id is known, is answered from its row
 * (outcome "settled") and sent nowhere; one older than the key window is
 * never sent again: a person looks it up at the PSP (an alert).
 */


#include "ngx_http_payments_module.h"

#include <payments/operation.h>
#include <payments/view.h>
#include <payments/breaker.h>


typedef struct {
    unsigned                    refund:1;
    pay_refund_request_t        rq;
    pay_payout_request_t        pq;
    char                        id[32];         /* rf_… / pyo_… */
    char                       *payment_ref;    /* refund */
    char                       *destination;    /* payout */
    int64_t                     amount;
    char                        currency[4];
    char                       *reason;
    char                       *metadata;       /* the request's, JSON */
    char                       *status;         /* settled: the row's */
    char                       *psp_ref;        /* settled: the row's */
    char                       *failure;        /* settled: the row's */
    char                       *psp_name;       /* settled: the row's */
    unsigned                    stale:1;        /* older than key_window */
    char                       *psp_path;
    char                       *psp_content_type;
    char                       *psp_body;
    size_t                      psp_body_len;
} ngx_http_payments_op_t;


static ngx_int_t ngx_http_payments_op_common(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_refund_info(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_op_claim(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_op_claimed(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_op_refusal(ngx_http_payments_ctx_t *ctx,
    const char *outcome, PGresult *res);
static void ngx_http_payments_op_settled(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
static ngx_int_t ngx_http_payments_op_build(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_op_call(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_op_retry(ngx_event_t *ev);
static void ngx_http_payments_op_done(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_op_finish(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t registered, const char *psp_ref, const char *failure);
static void ngx_http_payments_op_finished(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_op_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
static void ngx_http_payments_op_released(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_money_view(ngx_http_payments_pg_query_t *q,
    PGresult *res);


#define ngx_http_payments_op(ctx)  ((ngx_http_payments_op_t *) (ctx)->op)


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

    if (ctx->psp == NULL || ctx->psp->dl->refund == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_REFUNDABLE, 0,
                                       "the order's PSP is not configured "
                                       "on this gateway"));
        return;
    }

    /* test money never reaches a live PSP, nor live money a test one: the
     * PSP's name may have been given another mode= since the payment */
    if (ctx->key_live != ctx->psp->live) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_REFUNDABLE, 0,
                                       "the order's PSP is configured in "
                                       "another mode than the API key's"));
        return;
    }

    if (!pay_psp_amount_supported(ctx->psp->dialect, cur, op->rq.amount)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_AMOUNT, 0,
                                       "the order's PSP cannot refund this "
                                       "amount in this currency"));
        return;
    }

    ngx_memcpy(op->currency, cur, 3);
    op->amount = op->rq.amount;

    if (pay_operation_id("rf_", op->id, sizeof(op->id)) != 0) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_op_claim(ctx);
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
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       "psp: no PSP of that name that pays "
                                       "out is configured"));
        return;
    }

    /* test money never reaches a live PSP, nor live money a test one */
    if (ctx->key_live != ctx->psp->live) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       "psp: the API key's mode is not the "
                                       "PSP's"));
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
    ngx_uint_t               i;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

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

    for (i = 0; i < 11; i++) {
        if (i == 9) {
            continue;               /* a refund's reason may be NULL */
        }

        if (ctx->params[i] == NULL) {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ngx_http_payments_query(ctx, op->refund
                                ? "SELECT outcome, lease, retry_after, "
                                  "response_status, response_body, "
                                  "refund_id, psp, payment_ref, amount, "
                                  "currency, reason, refundable, "
                                  "op_status, psp_ref, failure, claim_age "
                                  "FROM "
                                  "pay_refund_claim($1, $2, $3, $4, $5, $6, "
                                  "$7, $8, $9, $10, $11::jsonb)"
                                : "SELECT outcome, lease, retry_after, "
                                  "response_status, response_body, "
                                  "payout_id, psp, destination, amount, "
                                  "currency, NULL, available, op_status, "
                                  "psp_ref, failure, claim_age FROM "
                                  "pay_payout_claim($1, $2, $3, $4, $5, $6, "
                                  "$7, $8, $9, $10, $11::jsonb)",
                                11, ngx_http_payments_op_claimed)
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
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_op_t   *op = ngx_http_payments_op(ctx);

    if (ngx_http_payments_pg_row(r, res, op->refund ? "pay_refund_claim"
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
                   op->refund ? "pay_refund_claim" : "pay_payout_claim",
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
                      "lease", op->refund ? "refund" : "pay-out",
                      &ctx->merchant, op->id);
    }

    op->amount = ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                           PQgetlength(res, 0, 8));
    ngx_cpystrn((u_char *) op->currency, (u_char *) PQgetvalue(res, 0, 9),
                sizeof(op->currency));

    if (op->refund) {
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
                      "its row is malformed", op->refund ? "refund"
                                                         : "pay-out",
                      op->id);
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_sprintf((u_char *) ctx->nonce, "%V:%s%Z", &ctx->merchant, op->id);

    /* the PSP may have forgotten the first attempt's key: sent again, the
     * request could make a second refund or transfer */
    if (outcome[0] == 'r'
        && ngx_atoof((u_char *) PQgetvalue(res, 0, 15),
                     PQgetlength(res, 0, 15))
           > (off_t) ctx->psp->dl->key_window)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: %s \"%s\" got no answer from psp \"%V\" "
                      "and is older than the PSP keeps its key: not sent "
                      "again; look it up at the PSP by its reference",
                      op->refund ? "refund" : "pay-out", ctx->nonce,
                      &ctx->psp->name);
        op->stale = 1;
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_op_build(ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: %s \"%s\": the PSP request cannot be "
                      "built from the stored operation",
                      op->refund ? "refund" : "pay-out", ctx->nonce);
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
    char                    *p;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 1));
    p = PQgetvalue(res, 0, 5);

    if (ctx->lease == NULL || ngx_strlen(p) >= sizeof(op->id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ngx_cpystrn((u_char *) op->id, (u_char *) p, sizeof(op->id));

    op->amount = ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                           PQgetlength(res, 0, 8));
    ngx_cpystrn((u_char *) op->currency, (u_char *) PQgetvalue(res, 0, 9),
                sizeof(op->currency));
    op->reason = (op->refund && !PQgetisnull(res, 0, 10))
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
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: %s \"%V:%s\" is %s: answered from its row, "
                  "not sent again", op->refund ? "refund" : "pay-out",
                  &ctx->merchant, op->id, op->status);

    ngx_http_payments_op_finish(ctx, ngx_strcmp(op->status, "FAILED") != 0,
                                op->psp_ref, op->failure);
}


/* A claim refused by the database's rules: nothing was stored. */

static ngx_int_t
ngx_http_payments_op_refusal(ngx_http_payments_ctx_t *ctx,
    const char *outcome, PGresult *res)
{
    char                     buf[32], detail[128], *amount;
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


/* The dialect's request for the operation: the same input, the same bytes */

static ngx_int_t
ngx_http_payments_op_build(ngx_http_payments_ctx_t *ctx)
{
    int                      rc;
    pay_psp_request_t        preq;
    pay_psp_refund_t         rin;
    pay_psp_payout_t         pin;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ngx_memzero(&preq, sizeof(pay_psp_request_t));

    if (op->refund) {
        ngx_memzero(&rin, sizeof(pay_psp_refund_t));
        rin.nonce = ctx->nonce;
        rin.payment_ref = op->payment_ref;
        rin.amount = op->amount;
        rin.currency = op->currency;
        rin.reason = op->reason;
        rin.merchant_account = ctx->psp->merchant_account.len
                               ? (char *) ctx->psp->merchant_account.data
                               : NULL;
        rc = ctx->psp->dl->refund ? ctx->psp->dl->refund(&rin, &preq) : -1;

    } else {
        ngx_memzero(&pin, sizeof(pay_psp_payout_t));
        pin.nonce = ctx->nonce;
        pin.destination = op->destination;
        pin.amount = op->amount;
        pin.currency = op->currency;
        pin.merchant_account = ctx->psp->merchant_account.len
                               ? (char *) ctx->psp->merchant_account.data
                               : NULL;
        pin.source_account = ctx->psp->balance_account;
        rc = ctx->psp->dl->payout ? ctx->psp->dl->payout(&pin, &preq) : -1;
    }

    if (rc != 0) {
        return NGX_ERROR;
    }

    op->psp_path = ngx_http_payments_strdup(r->pool, preq.path);
    op->psp_content_type = ngx_http_payments_strdup(r->pool,
                                                    preq.content_type);
    op->psp_body = ngx_http_payments_strdup(r->pool, preq.body);
    op->psp_body_len = preq.body ? preq.body_len : 0;

    pay_psp_request_free(&preq);

    if (op->psp_path == NULL || op->psp_content_type == NULL
        || op->psp_body == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_payments_op_call(ngx_http_payments_ctx_t *ctx)
{
    u_char                  *url, *last;
    size_t                   len;
    ngx_str_t               *base;
    ngx_uint_t               probe;
    ngx_msec_t               left, wait;
    pay_psp_api_e            api;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    if (ngx_http_payments_breaker_allow(ctx->psp, &probe, &wait) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: psp \"%V\": circuit open, \"%s\" not sent",
                      &ctx->psp->name, ctx->nonce);
        ctx->fail_retry_after = (time_t) ((wait + 999) / 1000);
        ngx_http_payments_op_release(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    ctx->probe = probe;

    /* a pay-out goes to the API the dialect names (Adyen: Transfers, on
     * another host than Checkout's, with its own key) */
    api = op->refund ? PAY_PSP_API_MAIN : ctx->psp->dl->payout_api;
    base = api == PAY_PSP_API_TRANSFERS ? &ctx->psp->transfers_url
                                        : &ctx->psp->url;

    len = base->len + ngx_strlen(op->psp_path) + 1;

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    last = ngx_snprintf(url, len, "%V%s", base, op->psp_path);
    *last = '\0';

    left = ctx->deadline > ngx_current_msec
           ? ctx->deadline - ngx_current_msec : 1;

    ctx->attempts++;
    ctx->fetch.handler = ngx_http_payments_op_done;
    ctx->fetch.data = ctx;
    ctx->fetch.log = r->connection->log;

    if (ngx_http_payments_fetch(r->pool, &ctx->fetch, ctx->psp, api,
                                (char *) url,
                                op->psp_content_type, ctx->nonce,
                                op->psp_body, op->psp_body_len,
                                ngx_min(left, ctx->psp->timeout))
        != NGX_OK)
    {
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
    }
}


static void
ngx_http_payments_op_retry(ngx_event_t *ev)
{
    ngx_http_payments_op_call(ev->data);
}


static void
ngx_http_payments_op_done(ngx_http_payments_fetch_t *f)
{
    ngx_str_t                *secret;
    pay_psp_op_result_t       res;
    ngx_http_payments_ctx_t  *ctx = f->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_op_t   *op = ngx_http_payments_op(ctx);

    /* the credential the request went with, taken out of the reason */
    secret = (!op->refund && ctx->psp->dl->payout_api
                             == PAY_PSP_API_TRANSFERS)
             ? &ctx->psp->transfers_secret : &ctx->psp->secret;

    pay_psp_parse_op_redact(ctx->psp->dl, (int) f->status, (char *) f->body,
                            f->len, (char *) secret->data, secret->len,
                            &res);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: psp \"%V\" %s \"%s\" attempt %ui: HTTP %l, %s, "
                  "%Mms", &ctx->psp->name, op->refund ? "refund" : "pay-out",
                  ctx->nonce, ctx->attempts, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  f->elapsed);

    if (ngx_http_payments_psp_answered(ctx->psp, f, res.outcome, ctx->probe)
        != NGX_OK)
    {
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: psp \"%V\" %s attempt %ui: outcome %d",
                   &ctx->psp->name, op->refund ? "refund" : "pay-out",
                   ctx->attempts, (int) res.outcome);

    switch (res.outcome) {

    case PAY_PSP_CREATED:
        ngx_http_payments_op_finish(ctx, 1, res.psp_ref, NULL);
        return;

    case PAY_PSP_REFUSED:
        ngx_http_payments_op_finish(ctx, 0, NULL, res.reason);
        return;

    case PAY_PSP_AUTH:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: psp \"%V\" refused the gateway's "
                      "credentials (HTTP %l): check its %s",
                      &ctx->psp->name, f->status,
                      secret == &ctx->psp->secret ? "secret_file"
                                                  : "transfers_secret_file");
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;

    default: /* PAY_PSP_RETRY */
        break;
    }

    switch (ngx_http_payments_psp_retry_later(ctx, f, res.key_in_use,
                                              ngx_http_payments_op_retry))
    {
    case NGX_OK:
        return;

    case NGX_ERROR:
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;

    default: /* NGX_DECLINED: no retry left */
        break;
    }

    ngx_http_payments_op_release(ctx, f->result == CURLE_OPERATION_TIMEDOUT
                                      ? NGX_HTTP_GATEWAY_TIME_OUT
                                      : NGX_HTTP_BAD_GATEWAY);
}


/* The PSP answered for good: the 201 is stored under the key with the
 * operation's state, in one transaction. */

static void
ngx_http_payments_op_finish(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t registered, const char *psp_ref, const char *failure)
{
    char                    *body;
    pay_operation_view_t     v;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ngx_memzero(&v, sizeof(pay_operation_view_t));
    v.kind = op->refund ? "refund" : "payout";
    v.id = op->id;
    v.payment_order_id = (char *) ngx_http_payments_cstr(r->pool,
                                                         &ctx->object_id);
    v.seller_account = op->pq.seller_account;
    v.psp = op->psp_name ? op->psp_name
                         : (char *) ngx_http_payments_cstr(r->pool,
                                                           &ctx->psp->name);
    v.status = op->status ? op->status : (registered ? "PENDING" : "FAILED");
    v.amount = op->amount;
    v.currency = op->currency;
    v.reason = op->reason;
    v.metadata = op->metadata;
    v.psp_ref = registered ? psp_ref : NULL;
    v.failure = registered ? NULL
                           : (failure && failure[0] ? failure
                                                    : "refused by the PSP");

    body = pay_operation_json(&v);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = op->id;
    ctx->params[4] = registered ? "true" : "false";
    ctx->params[5] = (registered && psp_ref)
                     ? ngx_http_payments_strdup(r->pool, psp_ref) : NULL;
    ctx->params[6] = registered ? NULL
                                : ngx_http_payments_strdup(r->pool,
                                                           v.failure);
    ctx->params[7] = "201";
    ctx->params[8] = ngx_http_payments_strdup(r->pool, body);

    free(body);

    /* a settled row may have no PSP id (its webhook named none) */
    if (ctx->params[8] == NULL || v.psp == NULL
        || (registered ? (psp_ref && ctx->params[5] == NULL)
                       : ctx->params[6] == NULL))
    {
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx, op->refund
                                ? "SELECT response_status, response_body "
                                  "FROM pay_refund_finish($1, $2, $3, $4, "
                                  "$5, $6, $7, $8, $9)"
                                : "SELECT response_status, response_body "
                                  "FROM pay_payout_finish($1, $2, $3, $4, "
                                  "$5, $6, $7, $8, $9)",
                                9, ngx_http_payments_op_finished)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_op_finished(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /* without its row the commit is unknown: the retry with the same key
     * finds a replay, or resumes (the PSP answers the same nonce with the
     * same operation) */
    if (ngx_http_payments_pg_row(r, res, "pay_*_finish") != NGX_OK) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_*_finish \"%s\": answer %s",
                   ngx_http_payments_op(ctx)->id, PQgetvalue(res, 0, 0));

    ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                   PQgetvalue(res, 0, 0),
                                   PQgetvalue(res, 0, 1),
                                   PQgetlength(res, 0, 1), 0));
}


/* No answer we can store: the lease ends, the retry resumes at once. */

static void
ngx_http_payments_op_release(ngx_http_payments_ctx_t *ctx, ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;

    if (ngx_http_payments_query(ctx, "SELECT pay_op_release($1, $2, $3)", 3,
                                ngx_http_payments_op_released)
        != NGX_OK)
    {
        ngx_http_payments_op_released(&ctx->query, NULL);
    }
}


static void
ngx_http_payments_op_released(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    u_char                    ra[NGX_TIME_T_LEN + 1];
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_op_release failed; the lease ends by "
                      "itself");

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: pay_op_release: lease ended, answer %ui",
                       ctx->fail_status);
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
                                   ngx_http_payments_op(ctx)->stale
                                   ? "the PSP never answered this operation "
                                     "and no longer keeps its request: it "
                                     "is not sent again, and an operator "
                                     "looks it up at the PSP; its state "
                                     "comes with the PSP's webhook"
                                   : "the PSP did not complete the "
                                     "operation; retry with the same "
                                     "Idempotency-Key"));
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
