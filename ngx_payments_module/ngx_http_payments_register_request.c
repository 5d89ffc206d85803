
/*
 * Copyright (C) ngx_payments authors
 *
 * A registration's PSP request: built once, from the checkout as it is
 * stored (ctx->co, ctx->expires_at), by the one function every path uses
 * (the first registration, a review's approval, a refresh of a resume
 * whose expires_at is too close, a routed checkout moved on to its next
 * PSP), and a stored one loaded for sending.  Below every step of the
 * registration: it calls only _util.c and the core.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"


/*
 * The PSP request for ctx->expires_at, as stored: JSON {"path",
 * "content_type", "body"} in the request's pool, or NULL.
 */

char *
ngx_http_payments_register_build(ngx_http_payments_ctx_t *ctx)
{
    char                    *s, *out;
    pay_psp_request_t        preq;
    ngx_http_request_t      *r = ctx->request;
    pay_psp_registration_t   reg;

    ngx_memzero(&reg, sizeof(pay_psp_registration_t));
    reg.merchant_id = (char *) ctx->merchant.data;
    reg.nonce = ctx->nonce;
    reg.co = &ctx->co;
    reg.expires_at = ctx->expires_at;
    reg.adyen_merchant_account = (char *) ctx->psp->merchant_account.data;
    reg.customer_ref = ctx->customer_ref;
    reg.charge_token = ctx->charge_token;
    reg.psp_customer = ctx->charge_psp_customer;
    reg.recurring = ctx->charge_recurring;

    /* the shopper may come back a while after the session closed */
    reg.return_success = ngx_http_payments_link(r->pool, ctx->pmcf,
                             (char *) ctx->merchant.data, ctx->co.checkout_id,
                             &ctx->psp->name, PAY_TOKEN_RETURN_SUCCESS,
                             ctx->expires_at + 86400);
    reg.return_cancel = ngx_http_payments_link(r->pool, ctx->pmcf,
                             (char *) ctx->merchant.data, ctx->co.checkout_id,
                             &ctx->psp->name, PAY_TOKEN_RETURN_CANCEL,
                             ctx->expires_at + 86400);
    if (reg.return_success == NULL || reg.return_cancel == NULL
        || pay_psp_build_registration(ctx->psp->dialect, &reg, &preq) != 0)
    {
        return NULL;
    }

    s = pay_psp_request_dump(&preq);
    pay_psp_request_free(&preq);

    /* an off-session charge's request names the PSP's token: stored
     * sealed, as the token is */
    out = ctx->co.payment_method[0] != '\0'
          ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                                   NGX_HTTP_PAYMENTS_SEALED_REQUEST,
                                   (char *) ctx->merchant.data,
                                   ctx->co.checkout_id, s)
          : ngx_http_payments_strdup(r->pool, s);
    free(s);

    return out;
}


/* ctx->psp_path, psp_content_type and psp_body from a stored request */

ngx_int_t
ngx_http_payments_request_load(ngx_http_payments_ctx_t *ctx,
    const char *stored)
{
    char                *plain;
    pay_psp_request_t    preq;
    ngx_http_request_t  *r = ctx->request;

    /* sealed when it names a saved method's token; a plain one as is */
    if (ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                 NGX_HTTP_PAYMENTS_SEALED_REQUEST,
                                 (char *) ctx->merchant.data,
                                 ctx->co.checkout_id, stored, &plain)
        != NGX_OK
        || pay_psp_request_load(plain, ngx_strlen(plain), &preq) != 0)
    {
        return NGX_ERROR;
    }

    ctx->psp_path = ngx_http_payments_strdup(r->pool, preq.path);
    ctx->psp_content_type = ngx_http_payments_strdup(r->pool,
                                                     preq.content_type);
    ctx->psp_body = ngx_http_payments_strdup(r->pool, preq.body);

    pay_psp_request_free(&preq);

    if (ctx->psp_path == NULL || ctx->psp_content_type == NULL
        || ctx->psp_body == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
