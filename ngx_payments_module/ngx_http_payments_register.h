
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments in two files: the request's side
 * (ngx_http_payments_register.c: validation, the claim, a refreshed
 * resume) and the PSP's (ngx_http_payments_register_psp.c: the call with
 * its retries, shedding and breaker, then finish, release or abandon).
 */


#ifndef NGX_HTTP_PAYMENTS_REGISTER_H_INCLUDED_
#define NGX_HTTP_PAYMENTS_REGISTER_H_INCLUDED_


#include "ngx_http_payments_module.h"


/* the PSP's side: start (the breaker asked), one call, the lease given back */
void ngx_http_payments_psp_start(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_psp_call(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_register_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
/* the request's side: a resume's request rebuilt with a fresh expires_at */
void ngx_http_payments_register_refresh(ngx_http_payments_ctx_t *ctx);
/* the request's side: the PSP request for ctx->psp as stored (JSON), and
 * a stored one loaded into ctx */
char *ngx_http_payments_register_build(ngx_http_payments_ctx_t *ctx);
ngx_int_t ngx_http_payments_request_load(ngx_http_payments_ctx_t *ctx,
    const char *stored);
/* the PSP's side: pay_route_bind (from NULL: the route's first PSP), and
 * a routed checkout moved on to its route's next PSP after an outcome
 * that proved the current one made no session (NGX_DECLINED: it holds) */
void ngx_http_payments_route_bind(ngx_http_payments_ctx_t *ctx,
    const char *from, const char *why, const char *req,
    ngx_http_payments_pg_handler_pt handler);
ngx_int_t ngx_http_payments_route_next(ngx_http_payments_ctx_t *ctx,
    const char *why);
/* _review.c: the review queue's admin API (GET /v1/reviews, POST
 * /v1/reviews/{nonce}/approve and /reject); an approval registers through
 * the PSP's side above */
void ngx_http_payments_review(ngx_http_payments_ctx_t *ctx);


#endif /* NGX_HTTP_PAYMENTS_REGISTER_H_INCLUDED_ */
