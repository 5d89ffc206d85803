
/*
 * Copyright (C) ngx_payments authors
 *
 * The answers of a refund, capture, void or pay-out that the PSP is not
 * asked for (ngx_http_payments_money.c drives the request): a request no
 * configured PSP can send now, answered from what its key stored
 * (pay_op_key_answer); a resumed claim whose operation is settled or
 * known to the PSP, answered from its row; a claim the database's rules
 * refused, with its code and detail.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_money.h"

#include <payments/operation.h>


static void ngx_http_payments_op_unusable_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_payments_op_row(ngx_http_payments_ctx_t *ctx,
    PGresult *res);


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

void
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


/*
 * A resumed claim whose operation was settled (its webhook came) or whose
 * PSP id is known: its row is the answer, stored under the key as a
 * finished request's, and the PSP is not asked again.
 */

void
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

ngx_int_t
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
