
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/webhooks/{psp}: verify the signature over the raw body before
 * anything is parsed, then keep and apply each event in its own
 * transaction (pay_event_keep: the inbox row with the signed bytes, the
 * header values the verifier read and the id of the key that verified
 * them, written with pay_event_apply's outcome: the event row unique per
 * psp + event id, the status moves, the ledger, the wallets, the audit
 * rows).  2xx once every event is committed, whatever its outcome: an
 * event about what is not here yet is kept pending (the sweeper's round
 * applies it once that arrives), one with another system's reference is
 * kept foreign.  Anything not committed is a 5xx, and the PSP delivers
 * again; a kept event delivered again changes nothing.  What does not
 * verify is never kept.  With several shards each verified event is kept
 * on its merchant's shard (ngx_http_payments_webhook_route).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"

#include <payments/shard.h>


static void ngx_http_payments_webhook_apply(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_webhook_route(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev);
static void ngx_http_payments_webhook_by_nonce(ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_webhook_locate_answer(
    ngx_http_payments_ctx_t *ctx, ngx_uint_t shard, PGresult *res);
static void ngx_http_payments_webhook_located(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome);
static void ngx_http_payments_webhook_keep(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_webhook_applied(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_payments_webhook_refuse(ngx_http_payments_ctx_t *ctx,
    pay_err_e err, const char *why);
static void ngx_http_payments_webhook_saved(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev);
void
ngx_http_payments_webhook(ngx_http_payments_ctx_t *ctx)
{
    size_t                    n, max;
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
        /* not read, so not verified: nothing kept, and a PSP's own batch
         * comes back for days (doc/OPERATIONS.md, "Webhook body size") */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: webhook for psp \"%V\" refused: its body "
                      "(%O bytes) is over %uz bytes, nothing kept",
                      &psp->name, r->headers_in.content_length_n,
                      ctx->body_max);
        ngx_http_payments_metrics_webhook_refused(psp,
                                            NGX_HTTP_PAYMENTS_WH_TOO_LARGE);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_PAYLOAD_TOO_LARGE, 0, NULL));
        return;
    }

    max = PAY_WEBHOOK_MAX_ITEMS;
    ctx->events = ngx_pcalloc(r->pool, max * sizeof(pay_event_t));
    if (ctx->events == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memzero(&v, sizeof(pay_wh_verdict_t));

    /* verify over the raw bytes; nothing is parsed before this passes */
    psp->dl->webhook(&psp->wconf, ngx_http_payments_webhook_header, ctx,
                     (char *) ctx->body.data, ctx->body.len,
                     (int64_t) ngx_time(), ctx->events, max, &n, &v);

    if (v.reason == PAY_WH_MORE && v.nneeded > max) {
        /* a batch of more items than that, every one of them verified
         * (Adyen sets no bound): room for each, and read again.  Each
         * item carries its signature, so the body's size limit bounds
         * their number */
        ngx_pfree(r->pool, ctx->events);

        max = v.nneeded;
        ctx->events = ngx_pcalloc(r->pool, max * sizeof(pay_event_t));
        if (ctx->events == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memzero(&v, sizeof(pay_wh_verdict_t));

        psp->dl->webhook(&psp->wconf, ngx_http_payments_webhook_header,
                         ctx, (char *) ctx->body.data, ctx->body.len,
                         (int64_t) ngx_time(), ctx->events, max, &n, &v);
    }

    switch (v.reason) {

    case PAY_WH_OK:
        break;

    case PAY_WH_UNREADABLE:
        /* authentic, yet not an event we can read: kept raw all the same,
         * and the PSP told (a 400: it delivers it again) */
        ngx_http_payments_metrics_webhook_refused(psp,
                                            NGX_HTTP_PAYMENTS_WH_UNREADABLE);
        ngx_http_payments_webhook_unreadable(ctx, "unreadable");
        return;

    case PAY_WH_LIVEMODE:
    case PAY_WH_ACCOUNT:
        /* authentic, but not this PSP's money: a configuration to fix.
         * Its signature verified: never a bad signature, and never a
         * failure of its sender (the PSP's own servers, which deliver
         * this PSP's events too) */
        ngx_http_payments_metrics_webhook_refused(psp,
            v.reason == PAY_WH_LIVEMODE ? NGX_HTTP_PAYMENTS_WH_LIVEMODE
                                        : NGX_HTTP_PAYMENTS_WH_ACCOUNT);
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook for psp \"%V\" is signed for "
                      "other money (%s): kept unapplied, answered 400 "
                      "(%uz of its events are this PSP's: applied)",
                      &psp->name, v.why, n);

        if (n == 0 || v.reason != PAY_WH_ACCOUNT || v.nforeign == 0
            || n + v.nforeign > max)
        {
            /* authentic: kept as evidence, as an unreadable event is */
            ngx_http_payments_webhook_unreadable(ctx,
                v.reason == PAY_WH_LIVEMODE ? "livemode"
                                            : "merchant_account");
            return;
        }

        /* a batch of this account's items and another's: this account's
         * applied as any, then the others kept
         * (ngx_http_payments_webhook_foreign) */
        ctx->nforeign = v.nforeign;
        break;

    case PAY_WH_MORE:
        /* room was made for every event it counted: not kept, a 500,
         * and the PSP delivers again */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook for psp \"%V\" asks room for %uz "
                      "events after %uz were given", &psp->name, v.nneeded,
                      max);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
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

    if (ngx_http_payments_webhook_evidence(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

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

    /* not verified: the sender's failure, not the PSP's (an event signed
     * for other money never comes here) */
    ngx_http_payments_limit_webhook_unverified(ctx);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: webhook from psp \"%V\" refused: %s (%s)",
                  &ctx->psp->name, pay_err_code(err), why);

    return ngx_http_payments_problem(r, err, 0, NULL);
}


static void
ngx_http_payments_webhook_apply(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (ctx->next_event == ctx->nevents && ctx->nforeign != 0) {
        /* this PSP's events committed: the other account's now */
        ngx_http_payments_webhook_foreign(ctx);
        return;
    }

    if (ctx->next_event == ctx->nevents) {
        /* every event kept and committed: the answer the PSP expects,
         * whatever the outcomes */
        ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
            ctx->psp->dl->webhook_answer_type,
            (u_char *) ctx->psp->dl->webhook_answer,
            ngx_strlen(ctx->psp->dl->webhook_answer)));
        return;
    }

    ngx_http_payments_webhook_route(ctx, &ctx->events[ctx->next_event]);
}


/*
 * Several shards: each verified event goes to its merchant's shard before
 * it is kept (pay_event_route).  Its reference our nonce: the merchant's
 * shard, from the directory or by asking every shard (a shard known and
 * down, or none answering while one may hold the merchant: 503, and the
 * PSP delivers again; never kept elsewhere).  No nonce: every shard asked
 * at once which holds the event's session token, payment, refund,
 * dispute, pay-out or capture (pay_event_locate).  What no shard claims is
 * kept on the home shard, which classifies it (foreign, or pending); so
 * is an event located nowhere while a shard did not answer (home down
 * too: 503).  Each event of a batch goes its own way: the answer is 2xx
 * once every one is committed on its shard, else the PSP delivers the
 * batch again and the events kept already come back duplicate.  One
 * shard: its events are kept there, as they always were.
 */

static void
ngx_http_payments_webhook_route(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev)
{
    pay_evroute_t       *route;
    ngx_http_request_t  *r = ctx->request;

    ctx->wh_by = 0;
    ctx->wh_merchant = NULL;

    if (ctx->pmcf->shards->nelts < 2) {
        ctx->shard = 0;
        ngx_http_payments_webhook_keep(ctx);
        return;
    }

    route = ngx_palloc(r->pool, sizeof(pay_evroute_t));
    if (route == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->wh_by = pay_event_route(ev, route);

    switch (ctx->wh_by) {

    case PAY_EVROUTE_NONCE:
        ngx_http_payments_shard_of_merchant(ctx, route->merchant,
                                        ngx_http_payments_webhook_by_nonce);
        return;

    case PAY_EVROUTE_LOCATE:
        ctx->params[0] = (char *) ngx_http_payments_cstr(r->pool,
                                                         &ctx->psp->name);
        ctx->params[1] = route->token;
        ctx->params[3] = route->payment_ref;
        ctx->params[4] = route->object_ref;

        if (ctx->params[0] == NULL
            || ngx_http_payments_token_keys(r->pool, ctx->pmcf,
                                            &ctx->psp->name, route->token,
                                            (char **) &ctx->params[2])
               != NGX_OK
            || ngx_http_payments_shard_fan(ctx,
                   "SELECT merchant_id FROM pay_event_locate($1, $2, $3, "
                   "$4, $5)", 5, ngx_http_payments_webhook_locate_answer,
                   ngx_http_payments_webhook_located)
               != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;

    default:
        ctx->shard = ctx->pmcf->shard_home;
        ngx_http_payments_webhook_keep(ctx);
        return;
    }
}


/* the nonce's merchant's shard (ctx->shard), or none holds the merchant:
 * kept at home, foreign to it */
static void
ngx_http_payments_webhook_by_nonce(ngx_http_payments_ctx_t *ctx)
{
    if (ctx->shard == NGX_HTTP_PAYMENTS_SHARD_NONE) {
        ctx->shard = ctx->pmcf->shard_home;
        ctx->wh_by = PAY_EVROUTE_HOME;
    }

    ngx_http_payments_webhook_keep(ctx);
}


/* one shard's pay_event_locate: a row is "here" (its merchant copied) */
static ngx_int_t
ngx_http_payments_webhook_locate_answer(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t shard, PGresult *res)
{
    ngx_http_request_t         *r = ctx->request;
    ngx_http_payments_shard_t  *sh;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        sh = ctx->pmcf->shards->elts;
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: shard \"%V\": pay_event_locate: %s",
                      &sh[shard].name, PQresultErrorMessage(res));
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        return NGX_DECLINED;
    }

    ctx->wh_merchant = ngx_http_payments_strdup(r->pool,
                                                PQgetvalue(res, 0, 0));

    return NGX_OK;
}


static void
ngx_http_payments_webhook_located(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome)
{
    pay_event_t                *ev;
    ngx_http_request_t         *r = ctx->request;
    ngx_http_payments_shard_t  *sh;

    ev = &ctx->events[ctx->next_event];
    sh = ctx->pmcf->shards->elts;

    switch (outcome) {

    case NGX_HTTP_PAYMENTS_FAN_FOUND:
        if (ctx->wh_merchant != NULL) {
            ngx_http_payments_shard_remember(NULL, ctx->wh_merchant,
                                             ctx->shard,
                                             r->connection->log);
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: webhook event \"%s\" located on shard "
                       "\"%V\" (merchant \"%s\")", ev->event_id,
                       &sh[ctx->shard].name,
                       ctx->wh_merchant ? ctx->wh_merchant : "");
        break;

    case NGX_HTTP_PAYMENTS_FAN_NONE:
    case NGX_HTTP_PAYMENTS_FAN_UNAVAILABLE:
        /* no shard holds what it names: the home shard keeps it (foreign
         * or pending); while a shard did not answer, pending there, or
         * 503 when home cannot keep it either */
        if (outcome == NGX_HTTP_PAYMENTS_FAN_UNAVAILABLE) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "payments: webhook psp \"%V\" event \"%s\" is "
                          "located on no shard while some shard does not "
                          "answer: kept on the home shard \"%V\"",
                          &ctx->psp->name, ev->event_id,
                          &sh[ctx->pmcf->shard_home].name);
        }

        ctx->shard = ctx->pmcf->shard_home;
        ctx->wh_by = PAY_EVROUTE_HOME;
        break;

    default:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook psp \"%V\" event \"%s\" is "
                      "claimed by two shards: answered 503 until one "
                      "shard's rows are fixed", &ctx->psp->name,
                      ev->event_id);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ngx_http_payments_webhook_keep(ctx);
}


/* the event kept and applied on ctx->shard, in one transaction */
static void
ngx_http_payments_webhook_keep(ngx_http_payments_ctx_t *ctx)
{
    pay_event_t         *ev;
    ngx_http_request_t  *r = ctx->request;

    ev = &ctx->events[ctx->next_event];

    /* a payment method the PSP stored: kept sealed, by its own function */
    if (ev->kind == PAY_EVT_METHOD_SAVED) {
        ngx_http_payments_webhook_saved(ctx, ev);
        return;
    }

    ctx->params[0] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->psp->name);
    ctx->params[1] = ev->event_id;
    /* a success the PSP says was captured is paid whatever the stored
     * capture mode (pay_webhook_apply_core's CAPTURED) */
    ctx->params[2] = pay_event_kind_name(ev);
    ctx->params[3] = ev->type;
    ctx->params[4] = ev->token;
    ctx->params[5] = ev->reference;
    ctx->params[6] = ngx_http_payments_num(r->pool, ev->amount);
    ctx->params[7] = ev->currency;
    ctx->params[8] = ev->payment_ref;
    ctx->params[9] = ev->object_ref;
    ctx->params[12] = ctx->wh_headers;

    if (ctx->params[0] == NULL || ctx->params[6] == NULL
        || ngx_http_payments_webhook_event_evidence(ctx, ev,
                                                    (char **) &ctx->params[11],
                                                    (char **) &ctx->params[13])
           != NGX_OK
        || ngx_http_payments_token_keys(r->pool, ctx->pmcf, &ctx->psp->name,
                                        ev->token,
                                        (char **) &ctx->params[10])
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* $11: the token's blind indexes under every key and its plaintext;
     * $12 to $14: what the inbox keeps */
    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, merchant_id, checkout_id, "
                                "state FROM pay_event_keep($1, $2, $3, $4, "
                                "$5, $6, $7, $8, $9, $10, $11, $12, $13, "
                                "$14)",
                                14, ngx_http_payments_webhook_applied)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/*
 * METHOD_SAVED: the PSP's reusable token never reaches the database open
 * nor a log line; it is sealed here with "payment_method:<our nonce>" as
 * associated data (the checkout it was saved in) and indexed under the
 * domain "payment_method:<psp>", and pay_method_event_keep keeps the
 * event and the saved method in one transaction.  Without a key nothing
 * can be kept sealed: a 500, and the PSP delivers again.
 */

static void
ngx_http_payments_webhook_saved(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev)
{
    char                *idx, *domain, *m, *co, *display;
    u_char              *last;
    json_t              *d;
    ngx_http_request_t  *r = ctx->request;

    idx = ngx_pnalloc(r->pool, PAY_BLIND_INDEX_LEN + 1);
    domain = ngx_pnalloc(r->pool, sizeof("payment_method:")
                                  + ctx->psp->name.len);
    m = ngx_pnalloc(r->pool, sizeof(ev->reference));

    if (idx == NULL || domain == NULL || m == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->pmcf->keyring == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook psp \"%V\" event \"%s\" saves a "
                      "payment method, and without payments_encryption_key "
                      "it cannot be kept sealed", &ctx->psp->name,
                      ev->event_id);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    last = ngx_sprintf((u_char *) domain, "payment_method:%V",
                       &ctx->psp->name);
    *last = '\0';

    /* the nonce "<merchant>:<checkout>", as the seal's associated data */
    ngx_cpystrn((u_char *) m, (u_char *) ev->reference, sizeof(ev->reference));
    co = ngx_strchr(m, ':');

    if (co != NULL) {
        *co++ = '\0';
    }

    if (pay_blind_index(ctx->pmcf->keyring, 0, domain, ev->method,
                        ngx_strlen(ev->method), idx)
        != 0)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    d = json_object();
    if (d != NULL) {
        if (ev->brand[0] != '\0') {
            json_object_set_new(d, "brand", json_string(ev->brand));
        }

        if (ev->last4[0] != '\0') {
            json_object_set_new(d, "last4", json_string(ev->last4));
        }

        if (ev->exp_month > 0) {
            json_object_set_new(d, "exp_month", json_integer(ev->exp_month));
        }

        if (ev->exp_year > 0) {
            json_object_set_new(d, "exp_year", json_integer(ev->exp_year));
        }
    }

    display = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);

    ctx->params[0] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->psp->name);
    ctx->params[1] = ev->event_id;
    ctx->params[2] = ev->type;
    ctx->params[3] = ev->reference;
    /* an unknown nonce shape seals under "" : it is kept foreign anyway */
    ctx->params[4] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                            NGX_HTTP_PAYMENTS_SEALED_METHOD,
                                            m, co ? co : "", ev->method);
    ctx->params[5] = idx;
    ctx->params[6] = ev->psp_customer;
    ctx->params[7] = display ? ngx_http_payments_strdup(r->pool, display)
                             : NULL;
    ctx->params[9] = ctx->wh_headers;

    free(display);

    /* the evidence is this event's own signed bytes and the key that
     * verified them, as every other kept event's */
    if (ctx->params[0] == NULL || ctx->params[4] == NULL
        || ctx->params[7] == NULL
        || ngx_http_payments_webhook_event_evidence(ctx, ev,
                                                    (char **) &ctx->params[8],
                                                    (char **) &ctx->params[10])
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, merchant_id, checkout_id, "
                                "state FROM pay_method_event_keep($1, $2, "
                                "$3, $4, $5, $6, $7, $8::jsonb, $9, "
                                "$10::jsonb, $11)",
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
    char                     *outcome, *state;
    ngx_uint_t                level;
    pay_event_t              *ev;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /* not committed (or not known to be): the PSP delivers again */
    if (ngx_http_payments_pg_row(r, res, "pay_event_keep") != NGX_OK) {
        return;
    }

    ev = &ctx->events[ctx->next_event];
    outcome = PQgetvalue(res, 0, 0);

    state = PQgetvalue(res, 0, 3);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: webhook event \"%s\" of psp \"%V\": %s, %s",
                   ev->event_id, &ctx->psp->name, outcome, state);

    ngx_http_payments_metrics_event(ctx->psp, outcome);

    /* several shards: where it was kept, and how that shard was found */
    if (ctx->wh_by) {
        ngx_http_payments_metrics_shard_routed(
            &((ngx_http_payments_shard_t *) ctx->pmcf->shards->elts)
                                                                [ctx->shard],
            ctx->wh_by);
    }

    /* kept for later (pending) or another system's (foreign): counted,
     * not alerted; the sweeper alerts a pending one never matched */
    if (ngx_strcmp(outcome, "duplicate") != 0) {
        if (ngx_strcmp(state, "pending") == 0) {
            ngx_http_payments_metrics_inbox(ctx->psp,
                                            NGX_HTTP_PAYMENTS_INBOX_PENDING);

        } else if (ngx_strcmp(state, "foreign") == 0) {
            ngx_http_payments_metrics_inbox(ctx->psp,
                                            NGX_HTTP_PAYMENTS_INBOX_FOREIGN);
        }
    }

    /* authentic but not applicable: recorded by the database, alerted here */
    level = (ngx_strcmp(state, "applied") != 0
             || ngx_strcmp(outcome, "applied") == 0
             || ngx_strcmp(outcome, "duplicate") == 0
             || ngx_strcmp(outcome, "already") == 0
             || ngx_strcmp(outcome, "pending") == 0
             || ngx_strcmp(outcome, "saved") == 0
             || ngx_strcmp(outcome, "ignored") == 0)
            ? NGX_LOG_INFO : NGX_LOG_ALERT;

    ngx_log_error(level, r->connection->log, 0,
                  "payments: webhook psp \"%V\" event \"%s\" (%s) checkout "
                  "\"%s:%s\": %s, kept %s", &ctx->psp->name, ev->event_id,
                  ev->type, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                  outcome, state);

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
