
/*
 * Copyright (C) ngx_payments authors
 *
 * Rate limits owned by the gateway (ngx_http_payments_limit_module): request
 * rates per merchant, per source address, per shopper address and per
 * webhook sender (PSP and address); failed webhook signatures per sender;
 * an amount velocity limit per merchant and currency; a card-testing guard
 * on failed payments per buyer and per shopper address.  All of them live in
 * shared memory zones built the way limit_req builds its zones (slab,
 * rbtree, LRU eviction, kept across reloads), and the module's variables
 * ($payments_merchant, $payments_psp, $payments_checkout).
 *
 * The request handlers call the hooks below at the points the contract
 * names; every hook is a no-op when no limit is configured for the request's
 * location.
 */


#ifndef _NGX_HTTP_PAYMENTS_LIMIT_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_LIMIT_H_INCLUDED_


#include "ngx_http_payments_module.h"


/* what the early hook is asked about */
#define NGX_HTTP_PAYMENTS_LIMIT_PAY       1     /* HTML, + guard by address */
#define NGX_HTTP_PAYMENTS_LIMIT_RETURN    2     /* HTML */
#define NGX_HTTP_PAYMENTS_LIMIT_STATUS    3     /* JSON poll */
#define NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK   4     /* before any crypto or query */


extern ngx_module_t  ngx_http_payments_limit_module;


/*
 * In the content handler, before the body is read, before any signature
 * check or query.  NGX_DECLINED: go on.  NGX_AGAIN: a zone kept in Redis
 * was asked; resume(ctx) runs from the event loop once it answered (or did
 * not in time), and calls this again with the same arguments, which then
 * goes on from there.  Anything else: the request was answered (429, or 503
 * for a zone with on_error=deny, its body discarded) and this is the
 * handler's return code.
 */
ngx_int_t ngx_http_payments_limit_early(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t what, void (*resume)(ngx_http_payments_ctx_t *ctx));

/*
 * POST /v1/payments once the merchant is authenticated and the
 * Idempotency-Key checked: per merchant and per source address.  NGX_OK: go
 * on; NGX_DONE: answered, *rc is the result of sending the answer;
 * NGX_AGAIN: as above, resume(ctx) calls this again.
 */
ngx_int_t ngx_http_payments_limit_create(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc, void (*resume)(ngx_http_payments_ctx_t *ctx));

/*
 * POST /v1/payments once the body is valid: the card-testing guard by buyer
 * and the amount velocity limit (whose amount is reserved now).  As above:
 * NGX_OK, NGX_DONE, or NGX_AGAIN (an amount zone kept in Redis was asked;
 * resume(ctx) calls this again).  NGX_DECLINED, nothing answered: one of
 * them would refuse it, and the caller has not yet asked whether the
 * request is known (ctx->limit_peeked): a replay or a retry of a checkout
 * already registered adds nothing, and its claim answers it.  A request
 * known (ctx->limit_known) passes both, reserving nothing.
 */
ngx_int_t ngx_http_payments_limit_checkout(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc, void (*resume)(ngx_http_payments_ctx_t *ctx));

/*
 * pay_claim answered with outcome (NULL: an answer that is no outcome, an
 * error the claim was rolled back with, or no claim made).  Only a fresh
 * claim keeps the amount reserved: a replay, a resumed registration or a
 * refused claim gives it back, so a retried request is counted once.  A
 * request that ends with no answer gives it back then (a cleanup of its
 * pool) only when the claim surely never ran: see limit_claiming.
 */
void ngx_http_payments_limit_claimed(ngx_http_payments_ctx_t *ctx,
    const char *outcome);

/*
 * The claim was handed to the database driver (on = 1, ctx->query), or
 * its answer came (0).  While on, a request that ends keeps the amount
 * counted if the query reached a connection (ctx->query.sent): the claim
 * may have committed, and is then counted by no retry.
 */
void ngx_http_payments_limit_claiming(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t on);

/* The claim was sent and its outcome is unknown (the connection broke or
 * the query timed out after it was sent): the amount stays counted, until
 * its sub-window leaves the window; never less than what was admitted. */
void ngx_http_payments_limit_claim_unknown(ngx_http_payments_ctx_t *ctx);

/* The PSP refused the registration for good: a failure of its buyer, and
 * its reserved amount is given back (no money can move). */
void ngx_http_payments_limit_refused(ngx_http_payments_ctx_t *ctx);

/* The pay page's token was verified: the shopper's address is remembered
 * for the checkout, so that a failed payment counts against it. */
void ngx_http_payments_limit_pay_seen(ngx_http_payments_ctx_t *ctx);

/* A webhook's signature (or its timestamp) did not verify: a failure of
 * its sender, the PSP and the client's address (webhook_failures=).  A
 * verified webhook is never counted. */
void ngx_http_payments_limit_webhook_unverified(ngx_http_payments_ctx_t *ctx);

/* A webhook moved the checkout to FAILED. */
void ngx_http_payments_limit_failed(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *checkout);

/* GET /metrics: payments_rate_limited_total{zone} into [p, last). */
u_char *ngx_http_payments_limit_metrics(u_char *p, u_char *last);


#endif /* _NGX_HTTP_PAYMENTS_LIMIT_H_INCLUDED_ */
