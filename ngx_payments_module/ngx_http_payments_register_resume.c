
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, a resumed claim: the key's holder died (its lease ran
 * out) while a PSP call may have been under way, and a retry with the
 * same key took the claim over (pay_claim's "resumed").  Its stored
 * request goes to the PSP again, byte for byte (the PSP answers the
 * session it may have made), at the PSP a routed checkout is bound to
 * (pay_route_state, pay_route_bind); never once the PSP may have
 * forgotten the first attempt's key (the dialect's key_window, counted
 * from the earliest attempt that may have reached the PSP: a claim none
 * of whose attempts sent a byte is sent however old it is), nor once
 * the PSP's settings it was built with (Adyen's merchant account) are no
 * longer the configuration's, when an operator looks it up instead (or
 * puts the setting back); its risk verdict kept (_risk.c).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"


static void ngx_http_payments_route_state_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_route_first_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_register_resume(ngx_http_payments_ctx_t *ctx);


/* pay_claim's row of a resumed claim (its lease, stored request and
 * expires_at already taken by _register.c) */

void
ngx_http_payments_register_resumed(ngx_http_payments_ctx_t *ctx,
    PGresult *res)
{
    /* an earlier request's attempts may have reached the PSP */
    ctx->psp_maybe = 1;
    ctx->claim_age = ngx_atoof((u_char *) PQgetvalue(res, 0, 8),
                               PQgetlength(res, 0, 8));

    /* an off-session charge whose saved method was detached since: never
     * sent again (were no earlier attempt taken, this one would charge a
     * method its shopper removed); one that was taken is paid by its
     * webhook */
    if (ctx->method_detached) {
        ngx_log_error(NGX_LOG_NOTICE, ctx->request->connection->log, 0,
                      "payments: off-session charge \"%s\": its saved "
                      "method was detached since it was first sent: not "
                      "sent again", ctx->nonce);
        ctx->fail_detail = "payment_method: the saved method was detached "
                           "since this charge was first sent: it is not "
                           "sent again; an earlier attempt may still have "
                           "been taken (GET /v1/checkouts/{checkout_id})";
        ctx->fail_err = PAY_ERR_METHOD_UNUSABLE;
        ngx_http_payments_register_release(ctx, NGX_HTTP_CONFLICT);
        return;
    }

    /* a return URL on an origin the merchant removed since: never sent
     * again (its shoppers would be sent there as they come back from the
     * PSP); an earlier attempt that made a session is paid by its
     * webhook */
    if (ctx->origin_refused != NULL) {
        ngx_log_error(NGX_LOG_NOTICE, ctx->request->connection->log, 0,
                      "payments: registration \"%s\": %s since it was "
                      "first sent: not sent again", ctx->nonce,
                      ctx->origin_refused);
        ctx->fail_detail = "success_url or cancel_url: its origin was "
                           "removed from the merchant's since this "
                           "registration was first sent: it is not sent "
                           "again; an earlier attempt may still have made "
                           "its session (GET /v1/checkouts/{checkout_id})";
        ctx->fail_err = PAY_ERR_FORBIDDEN_RETURN_URL;
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_REQUEST);
        return;
    }

    /* a routed checkout resumes at the PSP it is bound to, which an
     * earlier request may have moved it on to (one whose route is gone
     * too: read before its claim, it is read again under its lease, which
     * no other request can move it under) */
    if (ctx->route_conf != NULL || ctx->route_gone) {
        ctx->route_hold = 1;
        ctx->params[0] = (char *) ctx->merchant.data;
        ctx->params[1] = ctx->co.checkout_id;

        if (ngx_http_payments_query(ctx,
                                    "SELECT pay_route_state($1, $2)",
                                    2, ngx_http_payments_route_state_done)
            != NGX_OK)
        {
            ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        }

        return;
    }

    ngx_http_payments_register_resume(ctx);
}


static void
ngx_http_payments_route_first_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;

    if (ngx_http_payments_pg_row(ctx->request, res, "pay_route_bind")
        != NGX_OK)
    {
        return;
    }

    if (ngx_strcmp(PQgetvalue(res, 0, 0), "bound") != 0) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    /* a resumed claim, bound where it was: its stored request goes there */
    ngx_http_payments_register_resume(ctx);
}


static void
ngx_http_payments_route_state_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *name;
    ngx_http_payments_psp_t  *psp;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_route_state") != NGX_OK) {
        return;
    }

    name = PQgetvalue(res, 0, 0);
    psp = ngx_http_payments_find_psp(ctx->pmcf, name, ngx_strlen(name));

    if (psp == NULL || psp->live != ctx->key_live) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: registration \"%s\" is bound to psp "
                      "\"%s\", which is not configured: not resumed",
                      ctx->nonce, name);
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ctx->psp = psp;
    ngx_cpystrn((u_char *) ctx->co.psp, psp->name.data, psp->name.len + 1);

    /* its route gone: where it is bound, never moving on (pay_claim
     * recorded its binding when it was routed) */
    if (ctx->route_conf == NULL) {
        ngx_http_payments_register_resume(ctx);
        return;
    }

    /* bound before it is called, whatever became of an earlier attempt:
     * a claim of the previous release's workers whose request ended
     * between pay_claim and its first bind has no binding yet
     * (pay_route_bind from NULL records it once, and is a no-op when
     * pay_claim recorded it, as it does now) */
    ngx_http_payments_route_bind(ctx, NULL, NULL, NULL,
                                 ngx_http_payments_route_first_done);
}


/* a resumed claim: its stored request goes to the PSP it is bound to */

static void
ngx_http_payments_register_resume(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

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
     * the request could open a second session.  The claim's age counts
     * from the earliest attempt that may have reached the PSP: 0 when
     * every one before said not a byte was sent (pay_release), when the
     * PSP never saw the key and this request is the first under it */
    if (!pay_dialect_key_kept(ctx->psp->dl, (int64_t) ctx->claim_age,
                              ngx_http_payments_in_flight(ctx->pmcf)))
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

    /* nor once its PSP's settings in the request (Adyen's merchant
     * account) are no longer the configuration's */
    if (ngx_http_payments_request_conf_kept(ctx, "registration") != NGX_OK) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    /* the risk check first, when one is configured for this checkout;
     * then the PSP */
    ngx_http_payments_risk_start(ctx, ngx_http_payments_psp_start);
}


/*
 * Whether the PSP could refuse the stored expires_at by the time this
 * request's attempts reach it (a lease covers them): at least the
 * dialect's session_min ahead (Stripe: 30 min).
 */

ngx_uint_t
ngx_http_payments_expires_too_soon(ngx_http_payments_ctx_t *ctx)
{
    time_t  floor;

    floor = (time_t) ctx->psp->dl->session_min;

    return ctx->expires_at < (int64_t) ngx_time() + floor + ctx->pmcf->lease;
}
