
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, a routed checkout's side before the PSP is called
 * (driven from _register.c): the route chosen for a checkout sent without
 * "psp" (its PSPs in the order they are asked), the PSPs whose circuit is
 * open passed over before the claim, and what the claim recorded counted
 * and logged.  What happens after the PSP is called (moving on) is the
 * PSP's side's (_register_psp.c, route_next).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"

#include <payments/breaker.h>


/*
 * The route of a checkout registered without "psp": its PSPs of the API
 * key's mode in the order they are asked (the first drawn by weight from
 * the nonce, so every retry draws the same), the first bound.  NGX_DECLINED
 * when no route applies or none of its PSPs is of the key's mode.
 */

ngx_int_t
ngx_http_payments_route_choose(ngx_http_payments_ctx_t *ctx)
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

        /* test money never reaches a live PSP, nor live money a test one */
        if (psp->live == ctx->key_live) {
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


/*
 * Before a routed checkout's claim: when the circuit of the PSP it would
 * be claimed at is open (not due a probe), the route's next PSP whose
 * circuit is not and that can take these amounts (its request builds)
 * is claimed instead; those passed over for their circuit are recorded
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

        if (ngx_http_payments_register_build(ctx) != NULL) {
            break;
        }

        why[at] = NULL;     /* it cannot take these amounts */
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

