
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, what a checkout that names a saved method or saves
 * one needs read before its checks and its claim (driven from
 * _register.c): an off-session charge's saved method (pay_method_for_charge:
 * its PSP and its token, kept by _register_request.c), and a save's PSP
 * customers (pay_method_psp_customers: a new save at a PSP is made under
 * the customer the earlier ones were).  A charge of a method detached
 * since is refused with nothing stored, unless its key or its checkout is
 * known already (pay_claim_peek): then its claim answers it as any retry
 * under its key, and a resumed one is never sent (_register_resume.c).
 * Each ends in the step it was given (ctx->method_next): the checks, the
 * limits and the claim of _register.c, which calls this file; a review's
 * approval of a save reads its PSP customers here too (_review.c).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"


static void ngx_http_payments_method_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_method_peek_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_save_customers_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);


void
ngx_http_payments_register_method(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx))
{
    ctx->method_next = next;
    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->co.payment_method;

    if (ngx_http_payments_query(ctx,
                                "SELECT psp, token_sealed, checkout_id, "
                                "customer_ref, psp_customer, usage, "
                                "recurring, status FROM "
                                "pay_method_for_charge($1, $2)",
                                2, ngx_http_payments_method_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(ctx->request,
                                   ngx_http_payments_store_unavailable(
                                       ctx->request));
    }
}


void
ngx_http_payments_register_saves(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx))
{
    ctx->method_next = next;
    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->co.save_customer;

    if (ngx_http_payments_query(ctx,
                                "SELECT psp, psp_customer FROM "
                                "pay_method_psp_customers($1, $2)",
                                2, ngx_http_payments_save_customers_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(ctx->request,
                                   ngx_http_payments_store_unavailable(
                                       ctx->request));
    }
}


/*
 * The saved method an off-session charge names (pay_method_for_charge),
 * kept for its request (ngx_http_payments_method_keep), then the checks
 * and the claim as for any checkout.
 */

static void
ngx_http_payments_method_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_int_t                 rc;
    pay_err_e                 err;
    const char               *detail;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* detached: kept, as long as its key or checkout is known (below) */
    ctx->method_detached = (PQntuples(res) == 1
                            && ngx_strcmp(PQgetvalue(res, 0, 7), "active")
                               != 0);

    rc = ngx_http_payments_method_keep(ctx, res, &err, &detail);

    if (rc == NGX_DECLINED) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r, err, 0,
                                                                detail));
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* a detached method is charged no more; but the same request again (a
     * charge already answered, or under way) is answered by its claim, as
     * any retry under its key: replayed, never sent (pay_claim refuses a
     * new claim of a detached method, and a resumed one stops) */
    if (ctx->method_detached) {
        ctx->params[0] = (char *) ctx->merchant.data;
        ctx->params[1] = ctx->idem_key;
        ctx->params[2] = ctx->co.checkout_id;

        if (ngx_http_payments_query(ctx, "SELECT pay_claim_peek($1, $2, $3)",
                                    3, ngx_http_payments_method_peek_done)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                       ngx_http_payments_store_unavailable(r));
        }

        return;
    }

    ctx->method_next(ctx);
}


/* a charge of a detached method: known (its key or checkout), claimed to
 * be answered as before; unknown, refused with nothing stored */

static void
ngx_http_payments_method_peek_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_claim_peek") != NGX_OK) {
        return;
    }

    if (ngx_strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_METHOD_UNUSABLE, 0,
                                       "payment_method: the saved method "
                                       "was detached and can no longer be "
                                       "charged"));
        return;
    }

    ctx->method_next(ctx);
}


/*
 * A save's PSP customers (pay_method_psp_customers): kept for the
 * request, the one of the PSP the checkout goes to named in its session
 * (ngx_http_payments_register_build).
 */

static void
ngx_http_payments_save_customers_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (ngx_http_payments_save_customers_keep(ctx, res) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->method_next(ctx);
}
