
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/webhooks/{psp}: verify the signature over the raw body before
 * anything is parsed, then apply each event in its own transaction
 * (pay_event_apply: the event row unique per psp + event id, the status
 * moves, the ledger, the wallets, the audit rows).  2xx only after COMMIT;
 * anything else makes the PSP deliver again, and the event row makes a
 * second delivery change nothing.  An event about what is not here yet (a
 * checkout not found, a refund or dispute before its payment) is not
 * recorded: the request is answered 404 once every event is applied, so
 * that the PSP delivers it again.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"


static void ngx_http_payments_webhook_apply(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_webhook_applied(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_payments_webhook_refuse(ngx_http_payments_ctx_t *ctx,
    pay_err_e err, const char *why);


/* pay_header_pt over the request's headers (dialect.h) */
static const char *
ngx_http_payments_webhook_header(void *data, const char *name, size_t *len,
    unsigned *count)
{
    ngx_uint_t           n;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r = data;

    h = ngx_http_payments_header(r, name, &n);
    *count = (unsigned) n;

    if (h == NULL) {
        *len = 0;
        return NULL;
    }

    *len = h->value.len;

    return (const char *) h->value.data;
}


void
ngx_http_payments_webhook(ngx_http_payments_ctx_t *ctx)
{
    size_t                    n;
    pay_wh_verdict_t          v;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_psp_t  *psp;

    psp = ngx_http_payments_find_psp(ctx->pmcf, (char *) ctx->object_id.data,
                                     ctx->object_id.len);
    if (psp == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    ctx->psp = psp;

    if (ctx->body_too_large) {
        ngx_http_payments_metrics_webhook_refused(psp,
                                            NGX_HTTP_PAYMENTS_WH_TOO_LARGE);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_PAYLOAD_TOO_LARGE, 0, NULL));
        return;
    }

    ctx->events = ngx_pcalloc(r->pool,
                              PAY_WEBHOOK_MAX_ITEMS * sizeof(pay_event_t));
    if (ctx->events == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* verify over the raw bytes; nothing is parsed before this passes */
    psp->dl->webhook(&psp->wconf, ngx_http_payments_webhook_header, r,
                     (char *) ctx->body.data, ctx->body.len,
                     (int64_t) ngx_time(), ctx->events, PAY_WEBHOOK_MAX_ITEMS,
                     &n, &v);

    switch (v.reason) {

    case PAY_WH_OK:
        break;

    case PAY_WH_UNREADABLE:
        /* authentic, yet not an event we can read: the PSP should know */
        ngx_http_payments_metrics_webhook_refused(psp,
                                            NGX_HTTP_PAYMENTS_WH_UNREADABLE);
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook from psp \"%V\" is signed but is "
                      "not a readable event", &psp->name);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       "not a readable event"));
        return;

    case PAY_WH_LIVEMODE:
    case PAY_WH_ACCOUNT:
        /* authentic, but not this PSP's money: a configuration to fix */
        ngx_http_payments_metrics_webhook_refused(psp,
            v.reason == PAY_WH_LIVEMODE ? NGX_HTTP_PAYMENTS_WH_LIVEMODE
                                        : NGX_HTTP_PAYMENTS_WH_ACCOUNT);
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook for psp \"%V\" is signed for "
                      "other money (%s)", &psp->name, v.why);
        ngx_http_payments_finalize(r,
            ngx_http_payments_webhook_refuse(ctx, v.err, v.why));
        return;

    default:
        ngx_http_payments_finalize(r,
            ngx_http_payments_webhook_refuse(ctx, v.err, v.why));
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: webhook from psp \"%V\" verified: %uz bytes, "
                   "%uz events", &psp->name, ctx->body.len, n);

    ctx->nevents = n;
    ctx->next_event = 0;

    ngx_http_payments_webhook_apply(ctx);
}


/* Refused before parsing: a log line without the body, and a 400. */

static ngx_int_t
ngx_http_payments_webhook_refuse(ngx_http_payments_ctx_t *ctx, pay_err_e err,
    const char *why)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_http_payments_metrics_webhook_refused(ctx->psp,
        err == PAY_ERR_STALE_WEBHOOK ? NGX_HTTP_PAYMENTS_WH_STALE
                                     : NGX_HTTP_PAYMENTS_WH_BAD_SIGNATURE);

    /* the sender's failure, not the PSP's; livemode's was signed */
    if (ngx_strcmp(why, "livemode") != 0) {
        ngx_http_payments_limit_webhook_unverified(ctx);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: webhook from psp \"%V\" refused: %s (%s)",
                  &ctx->psp->name, pay_err_code(err), why);

    return ngx_http_payments_problem(r, err, 0, NULL);
}


static void
ngx_http_payments_webhook_apply(ngx_http_payments_ctx_t *ctx)
{
    pay_event_t         *ev;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->next_event == ctx->nevents) {
        if (ctx->events_unknown) {
            /* the others are recorded: their next delivery is a duplicate */
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_NOT_FOUND, 0,
                                           "an event refers to what is not "
                                           "known yet; deliver it again"));
            return;
        }

        /* every event committed: the answer the PSP expects */
        ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                       ctx->psp->dl->webhook_answer_type,
                                       (u_char *) ctx->psp->dl->webhook_answer,
                                       ngx_strlen(ctx->psp->dl->webhook_answer)));
        return;
    }

    ev = &ctx->events[ctx->next_event];

    ctx->params[0] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->psp->name);
    ctx->params[1] = ev->event_id;
    /* a success the PSP says was captured is paid whatever the stored
     * capture mode (pay_webhook_apply_core's CAPTURED) */
    ctx->params[2] = (ev->kind == PAY_EVT_SUCCEEDED && ev->captured)
                     ? "CAPTURED" : ngx_http_payments_event_kind(ev->kind);
    ctx->params[3] = ev->type;
    ctx->params[4] = ev->token;
    ctx->params[5] = ev->reference;
    ctx->params[6] = ngx_http_payments_num(r->pool, ev->amount);
    ctx->params[7] = ev->currency;
    ctx->params[8] = ev->payment_ref;
    ctx->params[9] = ev->object_ref;

    if (ctx->params[0] == NULL || ctx->params[6] == NULL
        || ngx_http_payments_token_keys(r->pool, ctx->pmcf, &ctx->psp->name,
                                        ev->token,
                                        (char **) &ctx->params[10])
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* $11: the token's blind indexes under every key and its plaintext */
    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, merchant_id, checkout_id "
                                "FROM pay_event_apply($1, $2, $3, $4, $5, "
                                "$6, $7, $8, $9, $10, $11)",
                                11, ngx_http_payments_webhook_applied)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_webhook_applied(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *outcome;
    ngx_uint_t                level;
    pay_event_t              *ev;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /* not committed (or not known to be): the PSP delivers again */
    if (ngx_http_payments_pg_row(r, res, "pay_event_apply") != NGX_OK) {
        return;
    }

    ev = &ctx->events[ctx->next_event];
    outcome = PQgetvalue(res, 0, 0);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: webhook event \"%s\" of psp \"%V\": %s",
                   ev->event_id, &ctx->psp->name, outcome);

    ngx_http_payments_metrics_event(ctx->psp, outcome);

    /* authentic but not applicable: recorded by the database, alerted here */
    level = (ngx_strcmp(outcome, "applied") == 0
             || ngx_strcmp(outcome, "duplicate") == 0
             || ngx_strcmp(outcome, "already") == 0
             || ngx_strcmp(outcome, "pending") == 0
             || ngx_strcmp(outcome, "ignored") == 0)
            ? NGX_LOG_INFO : NGX_LOG_ALERT;

    ngx_log_error(level, r->connection->log, 0,
                  "payments: webhook psp \"%V\" event \"%s\" (%s) checkout "
                  "\"%s:%s\": %s", &ctx->psp->name, ev->event_id, ev->type,
                  PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), outcome);

    /* not recorded by the database (a payment's event for no checkout
     * here, a refund or dispute before its payment): delivered again */
    if (ngx_strcmp(outcome, "unknown_refund") == 0
        || ngx_strcmp(outcome, "unknown_dispute") == 0
        || ngx_strcmp(outcome, "unknown_capture") == 0
        || (ngx_strcmp(outcome, "unknown_checkout") == 0
            && (ev->kind == PAY_EVT_SUCCEEDED || ev->kind == PAY_EVT_FAILED
                || ev->kind == PAY_EVT_AUTHORIZED)))
    {
        ctx->events_unknown = 1;
    }

    /* a failed payment counts for the card-testing guard; an expired
     * session is an abandoned one, not a declined card */
    if (ev->kind == PAY_EVT_FAILED && ngx_strcmp(outcome, "applied") == 0
        && ngx_strstr(ev->type, "expired") == NULL)
    {
        ngx_http_payments_limit_failed(ctx, PQgetvalue(res, 0, 1),
                                       PQgetvalue(res, 0, 2));
    }

    ctx->next_event++;
    ngx_http_payments_webhook_apply(ctx);
}
