
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, one step a file, driven from _register.c: the
 * request's side (validation, the claim, the route bound; a resume's
 * checks in _register_resume.c) decides what comes next; the risk check (_risk.c) goes on with
 * the step it is given; the PSP's side (_register_psp.c: the call with its
 * retries, shedding and breaker, a routed checkout's fallback, a stale
 * resume's refresh, then finish, release or abandon) ends it.  The PSP
 * request is built in one place, below them all (_register_request.c).
 */


#ifndef NGX_HTTP_PAYMENTS_REGISTER_H_INCLUDED_
#define NGX_HTTP_PAYMENTS_REGISTER_H_INCLUDED_


#include "ngx_http_payments_module.h"


/* the PSP's side: start (the breaker asked), one call, the lease given back */
void ngx_http_payments_psp_start(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_psp_call(ngx_http_payments_ctx_t *ctx);
/* _register_end.c, how a PSP call ends: the claim finished (status
 * "created" and the PSP's result; finish_done its store's answer, also
 * of an off-session charge's finish), released (resumable under its key),
 * or abandoned; the PSP refusing our credentials */
void ngx_http_payments_register_finish(ngx_http_payments_ctx_t *ctx,
    const char *status, pay_psp_result_t *res, int64_t expires_at,
    char *body);
void ngx_http_payments_finish_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
void ngx_http_payments_register_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
void ngx_http_payments_register_abandon(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
void ngx_http_payments_psp_refused_us(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, ngx_uint_t may_abandon);
/* _register_end.c, how an off-session charge ends (_register_psp.c calls
 * them): its outcome stored ("accepted", "declined",
 * "authentication_required") with the answer's status and body; refused
 * at once (402); the hosted page for a shopper the issuer asks for */
void ngx_http_payments_charge_finish(ngx_http_payments_ctx_t *ctx,
    const char *outcome, pay_psp_charge_result_t *res, ngx_uint_t status,
    char *body);
void ngx_http_payments_charge_refused(ngx_http_payments_ctx_t *ctx,
    pay_psp_charge_result_t *res);
void ngx_http_payments_authenticate_finish(ngx_http_payments_ctx_t *ctx,
    pay_psp_result_t *res, int64_t expires_at, char *body);
/* _register_request.c: the PSP request for ctx->psp from the checkout as
 * stored (JSON), and a stored one loaded into ctx */
char *ngx_http_payments_register_build(ngx_http_payments_ctx_t *ctx);
/* the same, or NULL when ctx->psp cannot take this checkout: its amounts,
 * or the caller's expires_at from now (a routed checkout passes it over) */
char *ngx_http_payments_register_takes(ngx_http_payments_ctx_t *ctx);
/* A save's reference for the shop's customer, "cu_" and 24 hex digits of
 * a blind index of "<merchant>:<customer>" (the same every time); NULL
 * without a key or memory. */
char *ngx_http_payments_customer_ref(ngx_http_payments_ctx_t *ctx);
ngx_int_t ngx_http_payments_request_load(ngx_http_payments_ctx_t *ctx,
    const char *stored);
/* before a resumed claim sends the loaded request again under its key:
 * NGX_OK while ctx->psp's settings are those it was built with (or none
 * were recorded); NGX_DECLINED, alerted, with ctx->fail_detail, when one
 * of them changed since (what: "registration", "approval") */
ngx_int_t ngx_http_payments_request_conf_kept(ngx_http_payments_ctx_t *ctx,
    const char *what);
/* pay_method_psp_customers' rows for a save (every path that builds its
 * request looks them up first), kept in ctx->save_psp_customers */
ngx_int_t ngx_http_payments_save_customers_keep(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
/* pay_method_for_charge's row for an off-session charge (the charge and
 * a review's approval look it up first): its PSP and its token opened,
 * kept in ctx; NGX_DECLINED with the answer's error and detail */
ngx_int_t ngx_http_payments_method_keep(ngx_http_payments_ctx_t *ctx,
    PGresult *res, pay_err_e *err, const char **detail);
/* an off-session charge refused as 'merchant_account' (its method saved
 * under account, {"merchant_account": ...}, not the one its PSP names
 * now): alerted; the 502 that answers it */
ngx_int_t ngx_http_payments_method_account_refused(
    ngx_http_payments_ctx_t *ctx, const char *account);
/* the PSP's side: pay_route_bind (from NULL: the route's first PSP), and
 * a routed checkout moved on to its route's next PSP after an outcome
 * that proved the current one made no session (NGX_DECLINED: it holds) */
void ngx_http_payments_route_bind(ngx_http_payments_ctx_t *ctx,
    const char *from, const char *why, const char *req,
    ngx_http_payments_pg_handler_pt handler);
ngx_int_t ngx_http_payments_route_next(ngx_http_payments_ctx_t *ctx,
    const char *why);
/* _register_route.c, a routed checkout before the PSP is called: the
 * route and its PSPs for a checkout sent without "psp" (NGX_DECLINED: no
 * route applies, or none of its PSPs can take it: route_refused says
 * which), the PSPs whose circuit is open passed over before the
 * claim, and the route the claim recorded counted and logged; a first
 * approval of a review taking its route again from the PSP its claim
 * bound, then the PSP */
ngx_int_t ngx_http_payments_route_choose(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_psp_t *taken);
const char *ngx_http_payments_route_refused(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_route_skip_open(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_route_claimed(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_route_approved(ngx_http_payments_ctx_t *ctx);
/* _register_method.c: an off-session charge's saved method, a save's PSP
 * customers, read before the checks; then next (_register.c's checks,
 * limits and claim; for a save's customers, _review.c's approval too) */
void ngx_http_payments_register_method(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx));
void ngx_http_payments_register_saves(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx));
/* _register_known.c: a request known already.  The nonce and the
 * fingerprint, made once (NGX_ERROR: no memory); the answer pay_claim
 * stores for another key's checkout or orders; a claim's outcome that
 * answers a known request (the status to finalize with; NGX_DECLINED for
 * any other); a request no configured PSP can take (ctx->psp_refused),
 * asked about what is stored (NGX_AGAIN; NGX_DONE with *rc set), going on
 * with bound (_register.c's checks of its PSP, limits and claim) when it
 * is a routed one, unanswered, whose bound PSP is configured still */
ngx_int_t ngx_http_payments_register_ids(ngx_http_payments_ctx_t *ctx);
const char *ngx_http_payments_duplicate_body(void);
ngx_int_t ngx_http_payments_claim_known(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
ngx_int_t ngx_http_payments_register_unusable(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc, void (*bound)(ngx_http_payments_ctx_t *ctx));
/* _register_resume.c: a claim pay_claim resumed (res: its row), sent to
 * the PSP again as stored */
void ngx_http_payments_register_resumed(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
/* whether the PSP could refuse a resumed request's stored expires_at by
 * the time its attempts reach it (the stale flag: a refusal then rebuilds
 * it, _register_psp.c); a resumed approval asks it too (_review.c) */
ngx_uint_t ngx_http_payments_expires_too_soon(ngx_http_payments_ctx_t *ctx);
/* _review.c: the review queue's admin API (GET /v1/reviews, POST
 * /v1/reviews/{nonce}/approve and /reject); an approval registers through
 * the PSP's side above */
void ngx_http_payments_review(ngx_http_payments_ctx_t *ctx);
/* _review_list.c: GET /v1/reviews, the queue (one shard's, or every
 * shard's merged); _review.c calls it once the admin key is checked */
void ngx_http_payments_review_list(ngx_http_payments_ctx_t *ctx);


#endif /* NGX_HTTP_PAYMENTS_REGISTER_H_INCLUDED_ */
