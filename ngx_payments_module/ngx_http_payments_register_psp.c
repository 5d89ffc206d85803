
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, the PSP's side (ngx_http_payments_register.h): one
 * hosted session registered through libcurl multi, retried inside the
 * request's budget, shed or refused by the breaker; then the claim
 * finished with the token and URL, released when the PSP could not be
 * reached, or abandoned when it refused our credentials.  A routed
 * checkout whose PSP surely made no session moves on to its route's next
 * PSP (route_next) instead; a resume's stored request the PSP refused as
 * too close to its expires_at is rebuilt, stored and sent again (refresh).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"
#include "ngx_http_payments_limit.h"

#include <payments/breaker.h>
#include <payments/view.h>


static void ngx_http_payments_psp_shed(ngx_http_payments_ctx_t *ctx,
    ngx_msec_t wait);
static void ngx_http_payments_psp_retry(ngx_event_t *ev);
static void ngx_http_payments_psp_unsure(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, ngx_uint_t key_in_use);
static void ngx_http_payments_psp_done(ngx_http_payments_fetch_t *f);
static char *ngx_http_payments_route_passed_over(
    ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_route_moved(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_register_refresh(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_charge_done(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f);
static void ngx_http_payments_refresh_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_authenticate_start(ngx_http_payments_ctx_t *ctx,
    pay_psp_charge_result_t *res);
static void ngx_http_payments_authenticate_done(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, pay_psp_result_t *res);


void
ngx_http_payments_psp_start(ngx_http_payments_ctx_t *ctx)
{
    ctx->deadline = ngx_current_msec + ctx->pmcf->request_timeout;
    ctx->attempts = 0;

    ngx_http_payments_psp_call(ctx);
}


/*
 * The PSP's circuit is open: this request does not call it.  A claim the
 * PSP cannot have seen is undone (nothing stored), one it may have seen,
 * or an approval's, is released (the retry resumes it); either way 503
 * with Retry-After.
 */

static void
ngx_http_payments_psp_shed(ngx_http_payments_ctx_t *ctx, ngx_msec_t wait)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: psp \"%V\": circuit open, registration "
                  "\"%s\" not sent", &ctx->psp->name, ctx->nonce);

    /* never called: the route's next PSP, if there is one */
    if (ngx_http_payments_route_next(ctx, "circuit_open") == NGX_OK) {
        return;
    }

    ctx->fail_retry_after = (time_t) ((wait + 999) / 1000);
    ctx->fail_detail = "the PSP is failing and is not called for a while; "
                       "retry after Retry-After seconds with the same "
                       "Idempotency-Key";

    if (ctx->psp_maybe || ctx->approval) {
        ngx_http_payments_register_release(ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE);

    } else {
        ngx_http_payments_register_abandon(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
    }
}


void
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
                                ctx->psp_content_type,
                                ctx->psp_key ? ctx->psp_key : ctx->nonce,
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
    const char               *why;
    pay_psp_result_t          res;
    ngx_http_request_t       *r;
    ngx_http_payments_ctx_t  *ctx = f->data;
    pay_registration_view_t   view;

    r = ctx->request;

    /* told with a release: only what surely never left is not "sent" */
    ctx->psp_sent |= !ngx_http_payments_fetch_never_sent(f);

    /* an off-session charge: the PSP's payment, decided at once (not
     * the hosted session of one that needs the shopper) */
    if (ctx->co.payment_method[0] != '\0' && ctx->charge_res == NULL) {
        ngx_http_payments_charge_done(ctx, f);
        return;
    }

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

    /* the session where the shopper authenticates an off-session charge */
    if (ctx->charge_res != NULL) {
        ngx_http_payments_authenticate_done(ctx, f, &res);
        return;
    }

    /* an outcome that proves no session was made lets a routed checkout
     * move on; any other may have made one and holds it here */
    why = pay_dialect_no_session(ctx->psp->dl,
                                 !ngx_http_payments_fetch_never_sent(f),
                                 (int) f->status, res.outcome,
                                 res.key_in_use);

    if (why != NULL && !ctx->stale
        && (res.outcome == PAY_PSP_REFUSED || res.outcome == PAY_PSP_RETRY)
        && ngx_http_payments_route_next(ctx, why) == NGX_OK)
    {
        return;
    }

    if (why == NULL && res.outcome == PAY_PSP_RETRY) {
        ctx->psp_reached = 1;
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
        /* a session of this claim may exist, or it is an approval's:
         * kept resumable */
        ngx_http_payments_psp_refused_us(ctx, f,
                                         !ctx->psp_maybe && !ctx->approval);
        return;

    default: /* PAY_PSP_RETRY */
        break;
    }

    ngx_http_payments_psp_unsure(ctx, f, res.key_in_use);
}


/*
 * No answer that decides (a timeout, a dropped answer, a 5xx): the PSP
 * may have acted on the nonce, so the claim may hold something there.
 * The same bytes are sent again under the same nonce while the request's
 * budget lasts; then the claim is released for the client's retry (502,
 * or 504 after a timeout).  Registrations and off-session charges alike.
 */

static void
ngx_http_payments_psp_unsure(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, ngx_uint_t key_in_use)
{
    ctx->psp_maybe = 1;

    switch (ngx_http_payments_psp_retry_later(ctx, f, key_in_use,
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


/*
 * Routing: the checkout is bound to the route's next PSP in PostgreSQL
 * (pay_route_bind, with why the current one is left behind) before that
 * PSP is called, so that a claim always knows which PSP holds or may hold
 * its session.  Only a checkout whose current PSP surely made no session
 * moves: none of this request's attempts may have reached it, and a
 * resumed claim holds where it is bound.
 */

ngx_int_t
ngx_http_payments_route_next(ngx_http_payments_ctx_t *ctx, const char *why)
{
    char                     *req = NULL;
    ngx_uint_t                at;
    ngx_http_payments_psp_t  *from;
    ngx_http_request_t       *r = ctx->request;

    if (ctx->route_conf == NULL || ctx->route_hold || ctx->psp_maybe
        || ctx->psp_reached)
    {
        return NGX_DECLINED;
    }

    from = ctx->psp;

    for (at = ctx->route_at + 1; at < ctx->route_n; at++) {
        ctx->psp = ctx->route_psps[at];

        /* its request, as the claim stored the first PSP's; a PSP that
         * cannot take this checkout is passed over */
        req = ngx_http_payments_register_takes(ctx);
        if (req != NULL) {
            break;
        }
    }

    if (at >= ctx->route_n) {
        ctx->psp = from;
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: registration \"%s\": psp \"%V\" made no "
                  "session (%s); route \"%V\" moves on to psp \"%V\"",
                  ctx->nonce, &from->name, why, &ctx->route_conf->name,
                  &ctx->psp->name);

    ngx_http_payments_metrics_route(from, &ctx->route_conf->name, why);

    ctx->route_why = why;
    ctx->route_at = at;
    ctx->fallback_from = from;

    ngx_http_payments_route_bind(ctx, (char *) from->name.data, why, req,
                                 ngx_http_payments_route_moved);
    return NGX_OK;
}


/*
 * The route's PSPs before the one bound first, each refused by pay_claim
 * because the merchant may not use it, as a PostgreSQL array literal
 * ({"name",...}) in the request's pool; NULL when there are none.
 */

static char *
ngx_http_payments_route_passed_over(ngx_http_payments_ctx_t *ctx)
{
    u_char      *p, *s, *c;
    size_t       len;
    ngx_uint_t   i, n;

    len = sizeof("{}");
    n = 0;

    for (i = 0; i < ctx->route_at; i++) {
        if (ctx->route_passed[i] != NULL
            && ngx_strcmp(ctx->route_passed[i], "psp_not_allowed") == 0)
        {
            /* quoted, each character possibly escaped, and a comma */
            len += 2 * ctx->route_psps[i]->name.len + 3;
            n++;
        }
    }

    if (n == 0) {
        return NULL;
    }

    s = ngx_pnalloc(ctx->request->pool, len);
    if (s == NULL) {
        return NULL;
    }

    p = s;
    *p++ = '{';

    for (i = 0; i < ctx->route_at; i++) {
        if (ctx->route_passed[i] == NULL
            || ngx_strcmp(ctx->route_passed[i], "psp_not_allowed") != 0)
        {
            continue;
        }

        if (p > s + 1) {
            *p++ = ',';
        }

        *p++ = '"';

        for (c = ctx->route_psps[i]->name.data;
             c < ctx->route_psps[i]->name.data + ctx->route_psps[i]->name.len;
             c++)
        {
            if (*c == '"' || *c == '\\') {
                *p++ = '\\';
            }

            *p++ = *c;
        }

        *p++ = '"';
    }

    *p++ = '}';
    *p = '\0';

    return (char *) s;
}


void
ngx_http_payments_route_bind(ngx_http_payments_ctx_t *ctx, const char *from,
    const char *why, const char *req, ngx_http_payments_pg_handler_pt handler)
{
    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = (char *) ctx->route_conf->name.data;
    ctx->params[4] = from;
    ctx->params[5] = why;
    ctx->params[6] = (char *) ctx->psp->name.data;
    ctx->params[7] = req;

    /* the first bind records the route's PSPs passed over before it
     * because the merchant may not use them (pay_claim refused each) */
    ctx->params[8] = from == NULL
                     ? ngx_http_payments_route_passed_over(ctx) : NULL;

    if (ngx_http_payments_query(ctx,
                                "SELECT pay_route_bind($1, $2, $3, $4, $5, "
                                "$6, $7, $8, $9::text[])",
                                9, handler)
        != NGX_OK)
    {
        ngx_http_payments_finalize(ctx->request,
                                   ngx_http_payments_store_unavailable(
                                       ctx->request));
    }
}


static void
ngx_http_payments_route_moved(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *outcome;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_route_bind") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    if (ngx_strcmp(outcome, "bound") == 0) {
        ngx_cpystrn((u_char *) ctx->co.psp, ctx->psp->name.data,
                    ctx->psp->name.len + 1);

        if (ngx_http_payments_request_load(ctx, ctx->params[7]) != NGX_OK) {
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }

        ngx_http_payments_metrics_route(ctx->psp, &ctx->route_conf->name,
                                        "fallback");

        ctx->attempts = 0;
        ctx->psp_maybe = 0;
        ctx->psp_reached = 0;
        ctx->psp_sent = 0;     /* of the PSP bound now: none sent yet */
        ctx->stale = 0;
        ngx_http_payments_psp_call(ctx);
        return;
    }

    /* not allowed for this merchant, or already tried: the one after,
     * still from the PSP the checkout is bound to */
    if (ngx_strcmp(outcome, "not_allowed") == 0
        || ngx_strcmp(outcome, "tried") == 0)
    {
        if (outcome[0] == 'n') {
            ngx_http_payments_metrics_route(ctx->psp,
                                            &ctx->route_conf->name,
                                            "psp_not_allowed");
        }

        ctx->psp = ctx->fallback_from;

        if (ngx_http_payments_route_next(ctx, ctx->route_why) == NGX_OK) {
            return;
        }

        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: pay_route_bind \"%s\": %s", ctx->nonce,
                  outcome);
    ctx->psp = ctx->fallback_from;
    ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
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


/*
 * An off-session charge's answer.  Taken: 201 with the checkout EXECUTING
 * and the PSP's payment id as its token (no pay link: no shopper), booked
 * by the PSP's webhook as any payment.  Declined: 402 problem+json
 * (payment_declined with the PSP's decline_code), the checkout FAILED,
 * stored under the key: a retry replays it and never sends it again.  The
 * issuer asking for the shopper: a hosted page for them (below).  Our
 * credentials, no answer, a 5xx: as a registration's, the same nonce
 * again never charges twice.
 */

static void
ngx_http_payments_charge_done(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f)
{
    pay_psp_charge_result_t   res;
    pay_registration_view_t   view;
    ngx_http_request_t       *r = ctx->request;

    pay_psp_parse_charge_redact(ctx->psp->dl, (int) f->status,
                                (char *) f->body, f->len,
                                (char *) ctx->psp->secret.data,
                                ctx->psp->secret.len, &res);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: psp \"%V\" off-session charge \"%s\" attempt "
                  "%ui: HTTP %l, %s, outcome %d, %Mms", &ctx->psp->name,
                  ctx->nonce, ctx->attempts, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  (int) res.outcome, f->elapsed);

    if (ngx_http_payments_psp_answered(ctx->psp, f,
            res.outcome == PAY_CHARGE_ACCEPTED ? PAY_PSP_CREATED
            : res.outcome == PAY_CHARGE_AUTH ? PAY_PSP_AUTH
            : res.outcome == PAY_CHARGE_RETRY ? PAY_PSP_RETRY
            : PAY_PSP_REFUSED, ctx->probe)
        != NGX_OK)
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    switch (res.outcome) {

    case PAY_CHARGE_ACCEPTED:
        ngx_memzero(&view, sizeof(pay_registration_view_t));
        view.co = &ctx->co;
        view.status = "EXECUTING";
        view.psp_token = res.psp_ref;
        view.expires_at = ctx->expires_at;

        ngx_http_payments_charge_finish(ctx, "accepted", &res, 201,
                                        pay_registration_json(&view));
        return;

    case PAY_CHARGE_DECLINED:
        ngx_http_payments_charge_refused(ctx, &res);
        return;

    case PAY_CHARGE_AUTH_REQUIRED:
        /* nothing was taken: the shopper is asked on a hosted page */
        ngx_http_payments_authenticate_start(ctx, &res);
        return;

    case PAY_CHARGE_AUTH:
        /* the same claim may yet charge: kept resumable */
        ngx_http_payments_psp_refused_us(ctx, f, 0);
        return;

    default: /* PAY_CHARGE_RETRY */
        break;
    }

    ngx_http_payments_psp_unsure(ctx, f, res.key_in_use);
}


/*
 * The card's issuer wants the shopper for an off-session charge: nothing
 * was taken.  The checkout stays open: a hosted session at the same PSP,
 * for the saved method's customer, is made under the Idempotency-Key
 * "<nonce>:authenticate" (pay_dialect_subkey: within the PSP's longest
 * key; the charge keeps the nonce), with the same
 * budget, retries and breaker as the charge.  A retry of the request
 * resumes the claim: the PSP answers the charge and then the session
 * again under their keys.  No session can be built: the checkout FAILED,
 * 402 authentication_required, as before.
 */

static void
ngx_http_payments_authenticate_start(ngx_http_payments_ctx_t *ctx,
    pay_psp_charge_result_t *res)
{
    char                *stored;
    size_t               len;
    ngx_http_request_t  *r = ctx->request;

    ctx->charge_res = ngx_palloc(r->pool, sizeof(pay_psp_charge_result_t));

    len = ngx_strlen(ctx->nonce) + sizeof(":authenticate");
    ctx->psp_key = ngx_pnalloc(r->pool, len);

    if (ctx->charge_res == NULL || ctx->psp_key == NULL) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ngx_memcpy(ctx->charge_res, res, sizeof(pay_psp_charge_result_t));

    /* within the PSP's longest key (Adyen's 64: a nonce may be 64) */
    if (pay_dialect_subkey(ctx->psp->dl, ctx->nonce, "authenticate",
                           ctx->psp_key, len) != 0)
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    stored = ngx_http_payments_register_build(ctx);

    if (stored == NULL
        || ngx_http_payments_request_load(ctx, stored) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: off-session charge \"%s\": the card's "
                      "issuer wants the shopper, and no hosted page could "
                      "be built for them", ctx->nonce);
        ngx_http_payments_charge_refused(ctx, res);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: off-session charge \"%s\": the card's issuer "
                  "wants the shopper; a hosted page at psp \"%V\"",
                  ctx->nonce, &ctx->psp->name);

    ctx->attempts = 0;

    ngx_http_payments_psp_call(ctx);
}


/*
 * The hosted session's answer.  Made: 202 with the checkout EXECUTING, its
 * pay link and next_action "authenticate", stored under the key with the
 * session (pay_charge_authenticate); the PSP's webhook for it books the
 * payment as any hosted checkout's.  Refused for good: the charge's 402
 * authentication_required, the checkout FAILED.  Our credentials, no
 * answer: released, the client's retry resumes (nothing was taken).
 */

static void
ngx_http_payments_authenticate_done(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, pay_psp_result_t *res)
{
    char                     *body;
    int64_t                   exp;
    pay_registration_view_t   view;
    ngx_http_request_t       *r = ctx->request;

    switch (res->outcome) {

    case PAY_PSP_CREATED:
        exp = res->expires_at ? res->expires_at : ctx->expires_at;

        ngx_memzero(&view, sizeof(pay_registration_view_t));
        view.co = &ctx->co;
        view.status = "EXECUTING";
        view.psp_token = res->token;
        view.expires_at = exp;
        view.next_action = "authenticate";
        view.pay_url = ngx_http_payments_link(r->pool, ctx->pmcf,
                           (char *) ctx->merchant.data, ctx->co.checkout_id,
                           NULL, PAY_TOKEN_PAY, exp);
        if (view.pay_url == NULL) {
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }

        body = pay_registration_json(&view);
        ngx_http_payments_authenticate_finish(ctx, res, exp, body);
        return;

    case PAY_PSP_REFUSED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: psp \"%V\" refused the hosted page of "
                      "off-session charge \"%s\" (HTTP %l): the checkout "
                      "fails as authentication_required", &ctx->psp->name,
                      ctx->nonce, f->status);
        ngx_http_payments_charge_refused(ctx, ctx->charge_res);
        return;

    case PAY_PSP_AUTH:
        ngx_http_payments_psp_refused_us(ctx, f, 0);
        return;

    default: /* PAY_PSP_RETRY */
        break;
    }

    ngx_http_payments_psp_unsure(ctx, f, res->key_in_use);
}
