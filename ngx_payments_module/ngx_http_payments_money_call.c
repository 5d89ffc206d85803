
/*
 * Copyright (C) ngx_payments authors
 *
 * A refund's or a pay-out's PSP side (ngx_http_payments_money.h): the
 * dialect's request, the call through libcurl multi with its retries and
 * the breaker, then the claim finished with the answer, or released when
 * the PSP could not be reached (the retry with the same key resumes it),
 * telling the database whether an attempt may have reached the PSP; a
 * claim past the PSP's key window that no attempt can have reached is
 * given up (pay_op_abandon).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_money.h"

#include <payments/view.h>
#include <payments/breaker.h>


static void ngx_http_payments_op_retry(ngx_event_t *ev);
static void ngx_http_payments_op_done(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_op_finished(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_op_released(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static char *ngx_http_payments_op_answer(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t registered, const char *psp_ref, const char *failure,
    const char **failed);
static void ngx_http_payments_op_abandoned(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static const char *ngx_http_payments_op_conf_detail(
    ngx_http_payments_ctx_t *ctx);


/* what a given-up operation's answer says: the PSP never had it */
#define NGX_HTTP_PAYMENTS_OP_NEVER_SENT                                       \
    "never sent: no attempt reached the PSP before it would forget this "    \
    "request's Idempotency-Key, and nothing moved; make it again with a "    \
    "new Idempotency-Key"


/*
 * What the operation's request takes from its PSP's configuration, beside
 * the stored operation: a refund's, capture's or void's the merchant
 * account (Adyen's merchantAccount), a pay-out's the platform's balance
 * account (Adyen's balanceAccountId; no dialect's transfer names the
 * merchant account).  The claim records it (psp_conf), and a resumed
 * claim is sent only while it is the same (_money.c).
 */

void
ngx_http_payments_op_conf(ngx_http_payments_ctx_t *ctx, pay_psp_conf_t *conf)
{
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ngx_memzero(conf, sizeof(pay_psp_conf_t));

    if (op->refund) {
        conf->merchant_account = ctx->psp->merchant_account.len
                                 ? (char *) ctx->psp->merchant_account.data
                                 : NULL;

    } else {
        conf->balance_account = ctx->psp->balance_account;
    }
}


/* The dialect's request for the operation: the same input, the same bytes */

ngx_int_t
ngx_http_payments_op_build(ngx_http_payments_ctx_t *ctx)
{
    int                      rc;
    json_t                  *md;
    pay_psp_conf_t           conf;
    pay_psp_request_t        preq;
    pay_psp_refund_t         rin;
    pay_psp_payout_t         pin;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ngx_memzero(&preq, sizeof(pay_psp_request_t));

    /* the configuration's part, as the claim recorded it */
    ngx_http_payments_op_conf(ctx, &conf);

    /* the request's metadata, as the core's parser left it (the stored
     * operation's too: the fingerprint covers it) */
    md = NULL;

    if (op->metadata != NULL) {
        md = json_loads(op->metadata, JSON_REJECT_DUPLICATES, NULL);
        if (md == NULL) {
            return NGX_ERROR;
        }
    }

    if (op->refund) {
        ngx_memzero(&rin, sizeof(pay_psp_refund_t));
        rin.nonce = ctx->nonce;
        rin.payment_ref = op->payment_ref;
        rin.amount = op->amount;
        rin.currency = op->currency;
        rin.reason = op->reason;
        rin.metadata = md;
        rin.merchant_account = conf.merchant_account;
        if (op->capture) {
            rc = op->cancel
                 ? (ctx->psp->dl->cancel ? ctx->psp->dl->cancel(&rin, &preq)
                                         : -1)
                 : (ctx->psp->dl->capture ? ctx->psp->dl->capture(&rin, &preq)
                                          : -1);

        } else {
            rc = ctx->psp->dl->refund ? ctx->psp->dl->refund(&rin, &preq)
                                      : -1;
        }

    } else {
        ngx_memzero(&pin, sizeof(pay_psp_payout_t));
        pin.nonce = ctx->nonce;
        pin.destination = op->destination;
        pin.amount = op->amount;
        pin.currency = op->currency;
        pin.source_account = conf.balance_account;
        pin.metadata = md;
        rc = ctx->psp->dl->payout ? ctx->psp->dl->payout(&pin, &preq) : -1;
    }

    json_decref(md);

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


void
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

    /* a pay-out goes to the API the dialect names (Adyen: Transfers, on
     * another host than Checkout's, with its own key and its own breaker) */
    api = op->refund ? PAY_PSP_API_MAIN : ctx->psp->dl->payout_api;

    if (ngx_http_payments_breaker_allow_api(ctx->psp, api, &probe, &wait)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: psp \"%V\"%s: circuit open, \"%s\" not "
                      "sent", &ctx->psp->name,
                      api == PAY_PSP_API_TRANSFERS ? " transfers" : "",
                      ctx->nonce);
        ctx->fail_retry_after = (time_t) ((wait + 999) / 1000);
        ngx_http_payments_op_release(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    ctx->probe = probe;

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

    /* told to the database with the release: only a request that surely
     * never left keeps the operation "never sent" */
    if (!ngx_http_payments_fetch_never_sent(f)) {
        op->sent = 1;
    }

    /* the credential the request went with, taken out of the reason */
    secret = (!op->refund && ctx->psp->dl->payout_api
                             == PAY_PSP_API_TRANSFERS)
             ? &ctx->psp->transfers_secret : &ctx->psp->secret;

    pay_psp_parse_op_redact(ctx->psp->dl, (int) f->status, (char *) f->body,
                            f->len, (char *) secret->data, secret->len,
                            &res);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: psp \"%V\" %s \"%s\" attempt %ui: HTTP %l, %s, "
                  "%Mms", &ctx->psp->name, ngx_http_payments_op_kind(op),
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
                   &ctx->psp->name, ngx_http_payments_op_kind(op),
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

void
ngx_http_payments_op_finish(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t registered, const char *psp_ref, const char *failure)
{
    char                    *body;
    const char              *failed;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    body = ngx_http_payments_op_answer(ctx, registered, psp_ref, failure,
                                       &failed);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = op->id;
    ctx->params[4] = registered ? "true" : "false";
    ctx->params[5] = (registered && psp_ref)
                     ? ngx_http_payments_strdup(r->pool, psp_ref) : NULL;
    ctx->params[6] = registered ? NULL
                                : ngx_http_payments_strdup(r->pool, failed);
    ctx->params[7] = "201";
    ctx->params[8] = body;

    /* a settled row may have no PSP id (its webhook named none) */
    if (ctx->params[8] == NULL
        || (registered ? (psp_ref && ctx->params[5] == NULL)
                       : ctx->params[6] == NULL))
    {
        ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx, op->capture
                                ? "SELECT response_status, response_body "
                                  "FROM pay_capture_finish($1, $2, $3, $4, "
                                  "$5, $6, $7, $8, $9)"
                                : op->refund
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


/*
 * The operation's row as a 201, stored nowhere: a retry whose key is past
 * its TTL while no configured PSP can take it (pay_op_key_answer's
 * 'settled'); the retry after the PSP is back stores it under the key as
 * the claim's 'settled' does.
 */

ngx_int_t
ngx_http_payments_op_answer_row(ngx_http_payments_ctx_t *ctx)
{
    char                    *body;
    const char              *failed;
    ngx_uint_t               registered;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    registered = ngx_strcmp(op->status, "FAILED") != 0;

    body = ngx_http_payments_op_answer(ctx, registered, op->psp_ref,
                                       op->failure, &failed);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_send_stored(ctx->request, "201", body,
                                         ngx_strlen(body), 0);
}


/* The 201's body of the operation (pay_operation_json), in the request's
 * pool, registered or not (its failure, the PSP's reason or ours, into
 * *failed); NULL on failure. */

static char *
ngx_http_payments_op_answer(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t registered, const char *psp_ref, const char *failure,
    const char **failed)
{
    char                    *body, *p;
    pay_operation_view_t     v;
    ngx_http_request_t      *r = ctx->request;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    ngx_memzero(&v, sizeof(pay_operation_view_t));
    v.kind = op->capture ? (op->cancel ? "void" : "capture")
             : op->refund ? "refund" : "payout";
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

    *failed = v.failure;

    if (v.psp == NULL) {
        return NULL;
    }

    body = pay_operation_json(&v);
    if (body == NULL) {
        return NULL;
    }

    p = ngx_http_payments_strdup(r->pool, body);
    free(body);

    return p;
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

void
ngx_http_payments_op_release(ngx_http_payments_ctx_t *ctx, ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ngx_http_payments_op(ctx)->sent ? "true" : "false";

    if (ngx_http_payments_query(ctx, "SELECT pay_op_release($1, $2, $3, "
                                "$4::boolean)", 4,
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
                                   : ngx_http_payments_op(ctx)->conf_changed
                                   ? ngx_http_payments_op_conf_detail(ctx)
                                   : "the PSP did not complete the "
                                     "operation; retry with the same "
                                     "Idempotency-Key"));
}


/*
 * A resumed claim older than the PSP keeps its key (op->stale) is never
 * sent again.  If no attempt can have reached the PSP, no webhook of it
 * will ever come: the database gives it up (pay_op_abandon: FAILED, its
 * amount given back, the 201 saying so stored under the key), in one
 * transaction, and only if its own record says so.  Else it waits for its
 * webhook and a person (an alert, 502).
 */

void
ngx_http_payments_op_abandon(ngx_http_payments_ctx_t *ctx)
{
    char                    *body;
    const char              *failed;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);

    body = ngx_http_payments_op_answer(ctx, 0, NULL,
                                       NGX_HTTP_PAYMENTS_OP_NEVER_SENT,
                                       &failed);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = op->id;
    ctx->params[4] = (char *) failed;
    ctx->params[5] = "201";
    ctx->params[6] = body;

    if (body == NULL
        || ngx_http_payments_query(ctx, "SELECT response_status, "
                                   "response_body FROM pay_op_abandon($1, "
                                   "$2, $3, $4, $5, $6, $7)", 7,
                                   ngx_http_payments_op_abandoned)
           != NGX_OK)
    {
        ngx_http_payments_op_abandoned(&ctx->query, NULL);
    }
}


static void
ngx_http_payments_op_abandoned(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_op_t   *op = ngx_http_payments_op(ctx);

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK
        && PQntuples(res) == 1 && PQnfields(res) == 2)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: %s \"%s\" never reached psp \"%V\" at any "
                      "attempt and is older than the PSP keeps its key: "
                      "given up, FAILED, its amount given back",
                      ngx_http_payments_op_kind(op), ctx->nonce,
                      &ctx->psp->name);

        ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                       PQgetvalue(res, 0, 0),
                                       PQgetvalue(res, 0, 1),
                                       PQgetlength(res, 0, 1), 0));
        return;
    }

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_op_abandon \"%s\" failed%s%s",
                      ctx->nonce, res ? ": " : "",
                      res ? PQresultErrorMessage(res) : "");
    }

    /* an attempt may have reached the PSP (or the database did not say):
     * its webhook, or a person, settles it */
    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "payments: %s \"%s\" got no answer from psp \"%V\" "
                  "and is older than the PSP keeps its key: not sent "
                  "again; look it up at the PSP by its reference",
                  ngx_http_payments_op_kind(op), ctx->nonce,
                  &ctx->psp->name);

    ngx_http_payments_op_release(ctx, NGX_HTTP_BAD_GATEWAY);
}


/* what the operation is, for a log line: refund, capture, void, pay-out */

const char *
ngx_http_payments_op_kind(ngx_http_payments_op_t *op)
{
    return op->capture ? (op->cancel ? "void" : "capture")
           : op->refund ? "refund" : "pay-out";
}


/* a resumed claim whose PSP's settings changed: why it was not sent */

static const char *
ngx_http_payments_op_conf_detail(ngx_http_payments_ctx_t *ctx)
{
    u_char                  *p, *last;
    size_t                   len;
    ngx_http_payments_op_t  *op = ngx_http_payments_op(ctx);
    static const char        fmt[] =
        "the PSP never answered this operation, and the gateway's "
        "configuration of its PSP differs in %s from when it was sent: "
        "sent again under its key it would be another request, so it is "
        "not; retry with the same Idempotency-Key once the setting is as "
        "it was, or an operator looks it up at the PSP; its state comes "
        "with the PSP's webhook";

    len = sizeof(fmt) + ngx_strlen(op->conf_changed);

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return "the PSP's configuration changed since this operation was "
               "sent: it is not sent again";
    }

    last = ngx_snprintf(p, len - 1, fmt, op->conf_changed);
    *last = '\0';

    return (char *) p;
}
