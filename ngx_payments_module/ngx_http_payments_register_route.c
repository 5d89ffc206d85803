
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, a routed checkout's side before the PSP is called
 * (driven from _register.c): the route chosen for a checkout sent without
 * "psp" (its PSPs in the order they are asked), the PSPs whose circuit is
 * open passed over before the claim, and what the claim recorded counted
 * and logged; a first approval of a review taking its route again.  What
 * happens after the PSP is called (moving on) is the PSP's side's
 * (_register_psp.c, route_next).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"

#include <payments/breaker.h>


static void ngx_http_payments_route_recorded_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_route_alone(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_psp_t *bound);


/*
 * The route of a checkout registered without "psp": its PSPs of the API
 * key's mode, but the closed ones, in the order they are asked (the first
 * drawn by weight from the nonce, so every retry draws the same), the
 * first bound.  "taken": the PSP a claim bound the checkout to (an
 * approval's), kept though closed since: a closed PSP goes on with what
 * it took; NULL for a new checkout.  NGX_DECLINED when no route applies
 * or none of its PSPs is of the key's mode and open (or taken).
 */

ngx_int_t
ngx_http_payments_route_choose(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_psp_t *taken)
{
    u_char                     *key, *last;
    size_t                      len, order[PAY_ROUTE_PSPS_MAX];
    ngx_uint_t                  i;
    ngx_http_payments_psp_t    *all, *psp;
    ngx_http_payments_route_t  *rt;

    rt = ngx_http_payments_route_find(ctx->pmcf, &ctx->merchant,
                                      ctx->co.currency, ctx->co.total);
    if (rt == NULL) {
        return NGX_DECLINED;
    }

    len = ctx->merchant.len + 1 + ngx_strlen(ctx->co.checkout_id) + 1;

    key = ngx_pnalloc(ctx->request->pool, len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    last = ngx_snprintf(key, len - 1, "%V:%s", &ctx->merchant,
                        ctx->co.checkout_id);
    *last = '\0';

    pay_route_order(rt->weights, rt->npsps, (char *) key, order);

    all = ctx->pmcf->psps->elts;
    ctx->route_n = 0;

    for (i = 0; i < rt->npsps; i++) {
        psp = &all[rt->psp_index[order[i]]];

        /* test money never reaches a live PSP, nor live money a test one;
         * a closed PSP takes no new checkout (a retry of one it took
         * resumes there: pay_route_state; an approval of one it took is
         * sent there, and moves on from there) */
        if (psp->live == ctx->key_live && (!psp->closed || psp == taken)) {
            ctx->route_psps[ctx->route_n++] = psp;
        }
    }

    if (ctx->route_n == 0) {
        return NGX_DECLINED;
    }

    ctx->route_conf = rt;
    ctx->route_at = 0;
    ctx->psp = ctx->route_psps[0];
    ngx_cpystrn((u_char *) ctx->co.psp, ctx->psp->name.data,
                ctx->psp->name.len + 1);

    return NGX_OK;
}


/* why a checkout sent without "psp" has no route to take it (after
 * route_choose declined it) */

const char *
ngx_http_payments_route_refused(ngx_http_payments_ctx_t *ctx)
{
    if (ngx_http_payments_route_find(ctx->pmcf, &ctx->merchant,
                                     ctx->co.currency, ctx->co.total)
        == NULL)
    {
        return "psp: required, as no payments_route applies to this "
               "checkout";
    }

    return "psp: required, as none of the PSPs of the payments_route that "
           "applies to this checkout takes new checkouts in this API key's "
           "mode (closed, or the other mode)";
}


/*
 * Before a routed checkout's claim: when the circuit of the PSP it would
 * be claimed at is open (not due a probe), the route's next PSP whose
 * circuit is not and that can take this checkout (register_takes) is
 * claimed instead; those passed over for their circuit are recorded
 * with the claim.  A PSP never called made no session, so nothing holds
 * the checkout there (doc/DESIGN.md "Routing across PSPs").  When every
 * later PSP's circuit is open too, the claim stays where it was, and the
 * breaker sheds it as before.
 */

void
ngx_http_payments_route_skip_open(ngx_http_payments_ctx_t *ctx)
{
    uint64_t                  opens;
    ngx_uint_t                at, state;
    const char               *why[PAY_ROUTE_PSPS_MAX];
    ngx_http_payments_psp_t  *first;

    ngx_http_payments_breaker_state(ctx->psp, &state, &opens);

    if (state != PAY_BREAKER_OPEN) {
        return;
    }

    first = ctx->psp;
    why[ctx->route_at] = "circuit_open";

    /* each breaker read once: what is recorded is what was decided on */
    for (at = ctx->route_at + 1; at < ctx->route_n; at++) {
        ngx_http_payments_breaker_state(ctx->route_psps[at], &state, &opens);

        if (state == PAY_BREAKER_OPEN) {
            why[at] = "circuit_open";
            continue;
        }

        ctx->psp = ctx->route_psps[at];

        if (ngx_http_payments_register_takes(ctx) != NULL) {
            break;
        }

        why[at] = NULL;     /* it cannot take this checkout */
    }

    if (at >= ctx->route_n) {
        ctx->psp = first;
        return;
    }

    for ( /* void */ ; ctx->route_at < at; ctx->route_at++) {
        ctx->route_passed[ctx->route_at] = why[ctx->route_at];
    }

    ngx_cpystrn((u_char *) ctx->co.psp, ctx->psp->name.data,
                ctx->psp->name.len + 1);
}


/*
 * A routed checkout's route, claimed: counted and logged as the claim
 * recorded it (pay_claim, checkout_route_first): each PSP passed over for
 * its open circuit, then the one bound, a fallback after those.
 */

void
ngx_http_payments_route_claimed(ngx_http_payments_ctx_t *ctx)
{
    ngx_uint_t                  i, moved;
    ngx_http_payments_route_t  *rt = ctx->route_conf;

    moved = 0;

    for (i = 0; i < ctx->route_at; i++) {
        if (ctx->route_passed[i] == NULL
            || ngx_strcmp(ctx->route_passed[i], "circuit_open") != 0)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "payments: registration \"%s\": psp \"%V\" passed "
                      "over (circuit_open); route \"%V\" binds psp \"%V\"",
                      ctx->nonce, &ctx->route_psps[i]->name, &rt->name,
                      &ctx->psp->name);

        ngx_http_payments_metrics_route(ctx->route_psps[i], &rt->name,
                                        "circuit_open");
        moved = 1;
    }

    ngx_http_payments_metrics_route(ctx->psp, &rt->name,
                                    moved ? "fallback" : "first");
}



/*
 * A first approval of a checkout held for review (pay_review_approve's
 * "approved": no PSP ever saw its nonce).  A routed one takes its route
 * again as its registration chose it (from the stored checkout, the
 * route's order drawn from the nonce), at the PSP its claim bound (those
 * before it the claim passed over), so that an outcome there that proves
 * no session moves it on (route_next) as it would have without the
 * review.  Only when the route is the one the claim recorded
 * (pay_route_recorded) and the bound PSP is in it: a configuration that
 * changed since, or a checkout that named its PSP, stays at the bound PSP
 * alone, as an approval always did.  Then the PSP.
 */

void
ngx_http_payments_route_approved(ngx_http_payments_ctx_t *ctx)
{
    ngx_uint_t                at;
    ngx_http_payments_psp_t  *bound = ctx->psp;

    /* ctx->key_live: the merchant's mode, the bound PSP's too (checked by
     * the review) */

    if (ngx_http_payments_route_choose(ctx, bound) != NGX_OK) {
        ngx_http_payments_route_alone(ctx, bound);
        return;
    }

    for (at = 0; at < ctx->route_n; at++) {
        if (ctx->route_psps[at] == bound) {
            break;
        }
    }

    if (at == ctx->route_n) {
        ngx_http_payments_route_alone(ctx, bound);
        return;
    }

    ctx->route_at = at;
    ctx->psp = bound;
    ngx_cpystrn((u_char *) ctx->co.psp, bound->name.data,
                bound->name.len + 1);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->co.checkout_id;

    if (ngx_http_payments_query(ctx,
                                "SELECT route, psp FROM "
                                "pay_route_recorded($1, $2)",
                                2, ngx_http_payments_route_recorded_done)
        != NGX_OK)
    {
        ngx_http_payments_route_alone(ctx, bound);
    }
}


static void
ngx_http_payments_route_recorded_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                       *route, *psp;
    ngx_http_payments_ctx_t    *ctx = q->data;
    ngx_http_payments_route_t  *rt = ctx->route_conf;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1 || PQgetisnull(res, 0, 1))
    {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "payments: review of \"%s\": its recorded route "
                      "could not be read: approved at psp \"%V\" alone",
                      ctx->nonce, &ctx->psp->name);
        ngx_http_payments_route_alone(ctx, ctx->psp);
        return;
    }

    route = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
    psp = PQgetvalue(res, 0, 1);

    if (route == NULL) {
        ngx_http_payments_route_alone(ctx, ctx->psp);
        return;
    }

    if (ngx_strlen(route) != rt->name.len
        || ngx_strncmp(route, rt->name.data, rt->name.len) != 0
        || ngx_strlen(psp) != ctx->psp->name.len
        || ngx_strncmp(psp, ctx->psp->name.data, ctx->psp->name.len) != 0)
    {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "payments: review of \"%s\": claimed on route \"%s\" "
                      "at psp \"%s\", which the configuration no longer "
                      "chooses so (route \"%V\"): approved at psp \"%V\" "
                      "alone", ctx->nonce, route, psp, &rt->name,
                      &ctx->psp->name);
        ngx_http_payments_route_alone(ctx, ctx->psp);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ctx->request->connection->log, 0,
                  "payments: review of \"%s\": approved on route \"%V\" "
                  "at psp \"%V\"", ctx->nonce, &rt->name, &ctx->psp->name);

    ngx_http_payments_psp_start(ctx);
}


/* an approval without its route: at the bound PSP, never moving on */

static void
ngx_http_payments_route_alone(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_psp_t *bound)
{
    ctx->route_conf = NULL;
    ctx->route_n = 0;
    ctx->route_at = 0;
    ctx->psp = bound;
    ngx_cpystrn((u_char *) ctx->co.psp, bound->name.data,
                bound->name.len + 1);

    ngx_http_payments_psp_start(ctx);
}
