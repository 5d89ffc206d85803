
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's waits for Redis: a rate check whose zone
 * is kept in Redis pauses the request (NGX_AGAIN) while Redis is asked, and
 * resumes it from the event loop once Redis answered or the check's timer
 * gave up; the hook is then called again for the same check and reads the
 * verdict kept in the request's limit context.  Without an answer the zone
 * decides as its on_error= says: its local share, or a 503.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"


static void ngx_http_payments_limit_answered(void *data, ngx_int_t rc,
    uint64_t value);
static ngx_int_t ngx_http_payments_limit_wait_cleanup(ngx_http_request_t *r,
    ngx_http_payments_limit_ctx_t *lctx);
static void ngx_http_payments_limit_ask_gone(void *data);
static ngx_int_t ngx_http_payments_limit_redis_answer(ngx_http_request_t *r,
    ngx_http_payments_limit_zone_t *z, ngx_http_payments_limit_ctx_t **lctxp,
    ngx_msec_t *wait);


/* the request's limit context: the check it waits for, and its verdict */

ngx_http_payments_limit_ctx_t *
ngx_http_payments_limit_get_ctx(ngx_http_request_t *r)
{
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(r, ngx_http_payments_limit_module);

    if (lctx == NULL) {
        lctx = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_limit_ctx_t));
        if (lctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, lctx, ngx_http_payments_limit_module);
    }

    return lctx;
}


/* zones kept in Redis */


/*
 * One request against a rate rule, wherever its zone keeps its buckets.
 * NGX_OK, NGX_BUSY (*wait): as ngx_http_payments_limit_rate().  NGX_AGAIN:
 * Redis was asked; once it answers or its timeout passes, resume(ctx) runs
 * and calls the hook again, which calls this again for the same check and
 * reads the answer.  NGX_ABORT: Redis did not answer and the zone says
 * on_error=deny.  Without Redis (down, stalled, slow, an error) a zone
 * with on_error=local counts in its own zone with 1/gateways of the rate
 * and burst.
 */

ngx_int_t
ngx_http_payments_limit_rate_check(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_rule_t *rule, ngx_str_t *key, ngx_uint_t account,
    void (*resume)(ngx_http_payments_ctx_t *ctx), ngx_msec_t *wait)
{
    ngx_int_t                        rc;
    ngx_http_request_t              *r = ctx->request;
    ngx_http_payments_limit_ctx_t   *lctx;
    ngx_http_payments_limit_zone_t  *z;

    z = rule->zone->data;

    if (!z->redis) {
        return ngx_http_payments_limit_rate(rule, key, account, 1, wait);
    }

    rc = ngx_http_payments_limit_redis_answer(r, z, &lctx, wait);
    if (rc != NGX_AGAIN) {
        if (rc == NGX_DECLINED) {
            goto fallback;
        }

        return rc;
    }

    if (resume != NULL
        && ngx_http_payments_limit_redis_rate(z, key, rule->burst, account,
                                              ngx_http_payments_limit_answered,
                                              ctx, r->connection->log,
                                              &lctx->ask)
           == NGX_OK)
    {
        lctx->resume = resume;
        return NGX_AGAIN;
    }

fallback:

    ngx_http_payments_limit_redis_fell_back(z);

    if (z->deny) {
        return NGX_ABORT;
    }

    return ngx_http_payments_limit_rate(rule, key, account, z->gateways,
                                        wait);
}


/* the request's pool gone while it waits: its answer is dropped */

static ngx_int_t
ngx_http_payments_limit_wait_cleanup(ngx_http_request_t *r,
    ngx_http_payments_limit_ctx_t *lctx)
{
    ngx_pool_cleanup_t  *cln;

    if (lctx->cleanup) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_payments_limit_ask_gone;
    cln->data = lctx;
    lctx->cleanup = 1;

    return NGX_OK;
}


/*
 * Before a check kept in Redis: NGX_OK, or NGX_BUSY (*wait, counted as
 * rejected), is Redis's answer to this check, asked before resume(ctx) ran
 * it again; NGX_AGAIN: nothing asked yet, *lctxp ready to ask (dropped if
 * the request goes); NGX_DECLINED: fall back (no context, no verdict).
 */

static ngx_int_t
ngx_http_payments_limit_redis_answer(ngx_http_request_t *r,
    ngx_http_payments_limit_zone_t *z, ngx_http_payments_limit_ctx_t **lctxp,
    ngx_msec_t *wait)
{
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_payments_limit_get_ctx(r);
    *lctxp = lctx;

    if (lctx == NULL) {
        return NGX_DECLINED;
    }

    if (lctx->answered) {
        lctx->answered = 0;

        if (lctx->verdict == NGX_OK) {
            return NGX_OK;
        }

        if (lctx->verdict == NGX_BUSY) {
            *wait = lctx->wait;
            (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);
            return NGX_BUSY;
        }

        return NGX_DECLINED;
    }

    if (ngx_http_payments_limit_wait_cleanup(r, lctx) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_AGAIN;
}


/*
 * An amount against an amount zone (max for its currency), wherever the
 * zone keeps its windows.  NGX_OK: admitted, *idx the sub-window it went
 * into (0: not counted, nothing to give back), *redis whether Redis holds
 * it; NGX_BUSY (*wait): refused; NGX_AGAIN: Redis was asked, resume(ctx)
 * calls the hook again, which calls this again and reads the answer;
 * NGX_ABORT: Redis did not answer and the zone says on_error=deny.
 * Without Redis a zone with on_error=local counts in its own zone with
 * 1/gateways of max.
 */

ngx_int_t
ngx_http_payments_limit_amount_check(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key, int64_t amount,
    int64_t max, void (*resume)(ngx_http_payments_ctx_t *ctx), uint64_t *idx,
    ngx_uint_t *redis, ngx_msec_t *wait)
{
    ngx_int_t                       rc;
    ngx_http_request_t             *r = ctx->request;
    ngx_http_payments_limit_ctx_t  *lctx;

    *redis = 0;

    if (!z->redis) {
        return ngx_http_payments_limit_amount(z, key, amount, max, idx, wait);
    }

    /* more than the whole window holds: refused, whatever the window has */
    if (amount > max) {
        *wait = z->window + z->slot;
        (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);
        return NGX_BUSY;
    }

    rc = ngx_http_payments_limit_redis_answer(r, z, &lctx, wait);

    /* admitted: the sub-window Redis put it in (0: none, fall back) */
    if (rc == NGX_OK && lctx->value) {
        *idx = lctx->value;
        *redis = 1;
        return NGX_OK;
    }

    if (rc == NGX_BUSY) {
        return NGX_BUSY;
    }

    if (rc != NGX_AGAIN) {
        goto fallback;
    }

    if (resume != NULL
        && ngx_http_payments_limit_redis_window(z, key, 0, amount,
               (uint64_t) max, ngx_http_payments_limit_answered, ctx,
               r->connection->log, &lctx->ask)
           == NGX_OK)
    {
        lctx->resume = resume;
        return NGX_AGAIN;
    }

fallback:

    ngx_http_payments_limit_redis_fell_back(z);

    if (z->deny) {
        return NGX_ABORT;
    }

    return ngx_http_payments_limit_amount(z, key, amount,
                                          max / (int64_t) z->gateways, idx,
                                          wait);
}


/*
 * The card-testing guard: whether key may fail once more (its failures in
 * the window below the zone's max), wherever the zone keeps its windows.
 * NGX_OK; NGX_BUSY (*wait): refused; NGX_AGAIN: Redis was asked (its key
 * the HMAC of key: _limit_failures.c), resume(ctx) calls the hook again,
 * which calls this again and reads the answer; NGX_ABORT: Redis did not
 * answer and the zone says on_error=deny.  Without Redis a zone with
 * on_error=local reads its own windows with max / gateways (at least 1).
 */

ngx_int_t
ngx_http_payments_limit_failures_check(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key,
    void (*resume)(ngx_http_payments_ctx_t *ctx), ngx_msec_t *wait)
{
    u_char                          buf[NGX_HTTP_PAYMENTS_LIMIT_HASH];
    int64_t                         max;
    ngx_int_t                       rc;
    ngx_str_t                       tail;
    ngx_http_request_t             *r = ctx->request;
    ngx_http_payments_limit_ctx_t  *lctx;

    max = z->max;

    if (!z->redis) {
        goto local;
    }

    rc = ngx_http_payments_limit_redis_answer(r, z, &lctx, wait);
    if (rc != NGX_AGAIN) {
        if (rc == NGX_DECLINED) {
            goto fallback;
        }

        return rc;
    }

    ngx_http_payments_limit_failures_tail(z, key, buf, &tail);

    if (resume != NULL
        && ngx_http_payments_limit_redis_peek(z, &tail,
                                              ngx_http_payments_limit_answered,
                                              ctx, r->connection->log,
                                              &lctx->ask)
           == NGX_OK)
    {
        lctx->resume = resume;
        return NGX_AGAIN;
    }

fallback:

    ngx_http_payments_limit_redis_fell_back(z);

    if (z->deny) {
        return NGX_ABORT;
    }

    max = z->max / (int64_t) z->gateways;
    if (max < 1) {
        max = 1;
    }

local:

    ngx_shmtx_lock(&z->shpool->mutex);
    rc = ngx_http_payments_limit_failures_locked(z, key, max, wait);
    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


/*
 * Gives back an amount admitted into sub-window idx: in Redis (nothing
 * waits for the answer; Redis down, it stays counted until its sub-window
 * leaves the window: never less than what was admitted), or locally.
 */

void
ngx_http_payments_limit_amount_back(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, uint64_t idx, ngx_uint_t redis,
    ngx_log_t *log)
{
    if (!redis) {
        ngx_http_payments_limit_unreserve(z, key, amount, idx);
        return;
    }

    (void) ngx_http_payments_limit_redis_window(z, key, 1, amount, idx, NULL,
                                                NULL, log, NULL);
}


/* Counts a request that another rule let through; nothing waits. */

void
ngx_http_payments_limit_rate_count(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_rule_t *rule, ngx_str_t *key)
{
    ngx_msec_t                       wait;
    ngx_http_payments_limit_zone_t  *z;

    z = rule->zone->data;

    if (!z->redis) {
        (void) ngx_http_payments_limit_rate(rule, key, 1, 1, &wait);
        return;
    }

    if (ngx_http_payments_limit_redis_rate(z, key, rule->burst, 1, NULL,
                                           NULL, ctx->request->connection->log,
                                           NULL)
        == NGX_OK)
    {
        return;
    }

    ngx_http_payments_limit_redis_fell_back(z);

    if (!z->deny) {
        (void) ngx_http_payments_limit_rate(rule, key, 1, z->gateways, &wait);
    }
}


/* Redis answered the request's check, or gave up: the hook goes on. */

static void
ngx_http_payments_limit_answered(void *data, ngx_int_t rc, uint64_t value)
{
    ngx_http_payments_ctx_t        *ctx = data;
    ngx_connection_t               *c;
    ngx_http_payments_limit_ctx_t  *lctx;

    c = ctx->request->connection;
    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    lctx->ask = NULL;
    lctx->answered = 1;
    lctx->verdict = rc;
    lctx->value = value;
    lctx->wait = (ngx_msec_t) value;

    lctx->resume(ctx);

    ngx_http_run_posted_requests(c);
}


/* The request's pool goes while its check waits: its answer is dropped. */

static void
ngx_http_payments_limit_ask_gone(void *data)
{
    ngx_http_payments_limit_ctx_t  *lctx = data;

    if (lctx->ask) {
        ngx_http_payments_limit_redis_forget(lctx->ask);
        lctx->ask = NULL;
    }
}


/*
 * A zone with on_error=deny could not ask Redis: 503 store_unavailable (an
 * outage of the gateway's own, not the client's excess: never a 429).
 */

ngx_int_t
ngx_http_payments_limit_unavailable(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_shm_zone_t *zone, ngx_uint_t html, const char *detail)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: refusing %s: zone \"%V\" says on_error=deny "
                  "and its Redis does not answer",
                  ngx_http_payments_limit_scopes[scope].what,
                  &zone->shm.name);

    if (ngx_http_payments_add_header(r, "Retry-After", "1") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (html) {
        return ngx_http_payments_page(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "Service unavailable",
                                      "The payment service cannot take "
                                      "this request right now. Please try "
                                      "again in a moment.");
    }

    return ngx_http_payments_problem(r, PAY_ERR_STORE_UNAVAILABLE, 0,
                                     detail);
}
