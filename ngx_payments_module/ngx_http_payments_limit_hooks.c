
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's hooks: the points of a request where the
 * module's limits apply (before the body, at payment creation, on a
 * webhook before and after its signature, on a checkout's outcome), the
 * keys they count by, and the 429 they answer with.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"

#include <payments/money.h>


static void ngx_http_payments_limit_reserve_end(void *data);

#if (NGX_DEBUG)
static void ngx_http_payments_limit_debug(ngx_http_request_t *r,
    ngx_uint_t scope, ngx_shm_zone_t *zone, ngx_str_t *key, ngx_int_t rc,
    ngx_msec_t wait);
#define ngx_http_payments_limit_verdict(r, scope, zone, key, rc, wait)       \
    ngx_http_payments_limit_debug(r, scope, zone, key, rc, wait)
#else
#define ngx_http_payments_limit_verdict(r, scope, zone, key, rc, wait)
#endif


/* answers */


ngx_int_t
ngx_http_payments_limit_reject(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_shm_zone_t *zone, ngx_uint_t html, ngx_msec_t wait,
    const char *detail)
{
    u_char      buf[NGX_TIME_T_LEN + 1], *p;
    ngx_msec_t  secs;

    /* ceil: Retry-After is when one request fits, never before */
    secs = (wait + 999) / 1000;
    if (secs == 0) {
        secs = 1;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: limiting %s by zone \"%V\", retry after %M s",
                  ngx_http_payments_limit_scopes[scope].what,
                  &zone->shm.name, secs);

    p = ngx_sprintf(buf, "%M", secs);
    *p = '\0';

    if (ngx_http_payments_add_header(r, "Retry-After", (char *) buf)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (html) {
        return ngx_http_payments_page(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "Too many requests",
                                      "Too many requests came from your "
                                      "network or for this payment. Please "
                                      "wait a moment and try again.");
    }

    return ngx_http_payments_problem(r, PAY_ERR_RATE_LIMITED, 0, detail);
}


#if (NGX_DEBUG)

/*
 * The verdict at debug level, as limit_req logs its own: the scope, the
 * zone and the bucket's key (bytes outside printable ASCII as \xNN: an
 * address, a buyer's salted hash; never an e-mail, which is hashed first).
 */

static void
ngx_http_payments_limit_debug(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_shm_zone_t *zone, ngx_str_t *key, ngx_int_t rc, ngx_msec_t wait)
{
    u_char      text[256], *p, *last;
    ngx_uint_t  i;

    p = text;
    last = text + sizeof(text) - 5;

    for (i = 0; i < key->len && p < last; i++) {
        if (key->data[i] > 0x20 && key->data[i] < 0x7f
            && key->data[i] != '"' && key->data[i] != '\\')
        {
            *p++ = key->data[i];

        } else {
            p = ngx_sprintf(p, "\\x%02xd", key->data[i]);
        }
    }

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: limit %s zone \"%V\" key \"%*s\": %s, wait "
                   "%M ms", ngx_http_payments_limit_scopes[scope].what,
                   &zone->shm.name, (size_t) (p - text), text,
                   rc == NGX_BUSY ? "refused" : "fits",
                   rc == NGX_BUSY ? wait : 0);
}

#endif


/* hooks */


/*
 * POST /v1/webhooks/{psp}, before the body is read: each sender (PSP and
 * address) on its own.  A sender whose signatures failed too often is shed
 * first (webhook_failures=, not counted), then the sender's request rate
 * (webhook=).  Junk from one address never uses up the buckets of the
 * PSP's real senders.
 */

ngx_int_t
ngx_http_payments_limit_webhook(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_loc_conf_t *lcf,
    void (*resume)(ngx_http_payments_ctx_t *ctx))
{
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       scope;
    ngx_msec_t                       wait = 0;
    ngx_http_request_t              *r = ctx->request;
    ngx_http_payments_psp_t         *psp;
    ngx_http_payments_limit_ctx_t   *lctx;
    ngx_http_payments_limit_rule_t  *rule;

    /* only configured PSPs have buckets; others are a 404 anyway */
    psp = ngx_http_payments_find_psp(ctx->pmcf, (char *) ctx->object_id.data,
                                     ctx->object_id.len);
    if (psp == NULL) {
        return NGX_DECLINED;
    }

    scope = NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK_FAILED;
    rule = &lcf->rules[scope];

    lctx = ngx_http_get_module_ctx(r, ngx_http_payments_limit_module);

    if (rule->zone && (lctx == NULL || !lctx->fchecked)
        && ngx_http_payments_limit_sender_key(r, &psp->name, 'w', 1, &key)
           == NGX_OK)
    {
        rc = ngx_http_payments_limit_failures_check(ctx, rule->zone->data,
                                                    &key, resume, &wait);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        ngx_http_payments_limit_verdict(r, scope, rule->zone, &key, rc,
                                        wait);

        if (rc == NGX_BUSY) {
            goto reject;
        }

        if (rc == NGX_ABORT) {
            goto unavailable;
        }

        lctx = ngx_http_get_module_ctx(r, ngx_http_payments_limit_module);
        if (lctx) {
            lctx->fchecked = 1;
        }
    }

    scope = NGX_HTTP_PAYMENTS_LIMIT_WEBHOOKS;
    rule = &lcf->rules[scope];

    if (rule->zone == NULL
        || ngx_http_payments_limit_sender_key(r, &psp->name, 'h', 0, &key)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_payments_limit_rate_check(ctx, rule, &key, 1, resume,
                                            &wait);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    ngx_http_payments_limit_verdict(r, scope, rule->zone, &key, rc, wait);

    if (rc == NGX_ABORT) {
        goto unavailable;
    }

    if (rc != NGX_BUSY) {
        return NGX_DECLINED;
    }

    goto reject;

unavailable:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_payments_limit_unavailable(r, scope, rule->zone, 0,
               "the gateway's rate limits are unavailable; deliver again "
               "later");

reject:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_payments_limit_reject(r, scope, rule->zone, 0, wait,
               scope == NGX_HTTP_PAYMENTS_LIMIT_WEBHOOKS
               ? "too many webhooks from this address; deliver again later"
               : "too many webhooks with a bad signature from this "
                 "address; deliver again later");
}


ngx_int_t
ngx_http_payments_limit_early(ngx_http_payments_ctx_t *ctx, ngx_uint_t what,
    void (*resume)(ngx_http_payments_ctx_t *ctx))
{
    u_char                              addr[17];
    ngx_int_t                           rc, busy;
    ngx_str_t                           key;
    ngx_uint_t                          html;
    ngx_msec_t                          wait = 0;
    ngx_http_request_t                 *r = ctx->request;
    ngx_http_payments_limit_ctx_t      *lctx;
    ngx_http_payments_limit_rule_t     *rule;
    ngx_http_payments_limit_loc_conf_t *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (!lcf->set) {
        return NGX_DECLINED;
    }

    if (what == NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK) {
        return ngx_http_payments_limit_webhook(ctx, lcf, resume);
    }

    html = (what != NGX_HTTP_PAYMENTS_LIMIT_STATUS);

    /* the card-testing guard: a shopper address with too many failures
     * may not start another payment */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED];

    lctx = ngx_http_get_module_ctx(r, ngx_http_payments_limit_module);

    if (what == NGX_HTTP_PAYMENTS_LIMIT_PAY && rule->zone
        && (lctx == NULL || !lctx->fchecked))
    {
        key.data = addr;
        key.len = ngx_http_payments_limit_addr_key(r, addr);

        if (key.len) {
            rc = ngx_http_payments_limit_failures_check(ctx,
                                                        rule->zone->data,
                                                        &key, resume, &wait);
            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            ngx_http_payments_limit_verdict(r, NGX_HTTP_PAYMENTS_LIMIT_FAILED,
                                            rule->zone, &key, rc, wait);

            if (rc == NGX_BUSY || rc == NGX_ABORT) {
                busy = rc;

                rc = ngx_http_discard_request_body(r);
                if (rc != NGX_OK) {
                    return rc;
                }

                if (busy == NGX_ABORT) {
                    return ngx_http_payments_limit_unavailable(r,
                               NGX_HTTP_PAYMENTS_LIMIT_FAILED, rule->zone,
                               html, NULL);
                }

                return ngx_http_payments_limit_reject(r,
                           NGX_HTTP_PAYMENTS_LIMIT_FAILED, rule->zone, 1,
                           wait, NULL);
            }

            lctx = ngx_http_get_module_ctx(r,
                                           ngx_http_payments_limit_module);
            if (lctx) {
                lctx->fchecked = 1;
            }
        }
    }

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_PAGES];

    if (rule->zone == NULL) {
        return NGX_DECLINED;
    }

    key.data = addr;
    key.len = ngx_http_payments_limit_addr(r, addr);

    if (key.len == 0) {
        return NGX_DECLINED;
    }

    rc = ngx_http_payments_limit_rate_check(ctx, rule, &key, 1, resume,
                                            &wait);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    ngx_http_payments_limit_verdict(r, NGX_HTTP_PAYMENTS_LIMIT_PAGES,
                                    rule->zone, &key, rc, wait);

    if (rc != NGX_BUSY && rc != NGX_ABORT) {
        return NGX_DECLINED;
    }

    busy = rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (busy == NGX_ABORT) {
        return ngx_http_payments_limit_unavailable(r,
                   NGX_HTTP_PAYMENTS_LIMIT_PAGES, rule->zone, html,
                   "the gateway's rate limits are unavailable; retry later");
    }

    return ngx_http_payments_limit_reject(r, NGX_HTTP_PAYMENTS_LIMIT_PAGES,
                                          rule->zone, html, wait,
                                          "too many requests from this "
                                          "address");
}


ngx_int_t
ngx_http_payments_limit_create(ngx_http_payments_ctx_t *ctx, ngx_int_t *rc,
    void (*resume)(ngx_http_payments_ctx_t *ctx))
{
    u_char                               addr[16];
    ngx_int_t                            busy;
    ngx_str_t                            keys[2];
    ngx_uint_t                           i, n, scope[2];
    ngx_msec_t                           wait = 0;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_ctx_t       *lctx;
    ngx_http_payments_limit_rule_t      *rules[2];
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (!lcf->set) {
        return NGX_OK;
    }

    n = 0;

    /* the address first: a stolen key used from elsewhere */

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_CREATE_ADDRESS].zone) {
        keys[n].data = addr;
        keys[n].len = ngx_http_payments_limit_addr(r, addr);

        if (keys[n].len) {
            scope[n] = NGX_HTTP_PAYMENTS_LIMIT_CREATE_ADDRESS;
            rules[n] = &lcf->rules[scope[n]];
            n++;
        }
    }

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT].zone
        && ctx->merchant.len)
    {
        keys[n] = ctx->merchant;
        scope[n] = NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT;
        rules[n] = &lcf->rules[scope[n]];
        n++;
    }

    /*
     * A request refused by one rule is counted by none: all but the last
     * are looked at, the last is counted, then the others are.  A check
     * that waits for Redis is taken up again at its step.
     */

    lctx = NULL;

    if (n) {
        lctx = ngx_http_payments_limit_get_ctx(r);
        if (lctx == NULL) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }
    }

    for (i = lctx ? lctx->step : 0; i < n; i++) {
        busy = ngx_http_payments_limit_rate_check(ctx, rules[i], &keys[i],
                                                  i == n - 1, resume, &wait);

        if (busy == NGX_AGAIN) {
            lctx->step = i;
            return NGX_AGAIN;
        }

        ngx_http_payments_limit_verdict(r, scope[i], rules[i]->zone,
                                        &keys[i], busy, wait);

        if (busy == NGX_ABORT) {
            lctx->step = 0;
            *rc = ngx_http_payments_limit_unavailable(r, scope[i],
                      rules[i]->zone, 0,
                      "the gateway's rate limits are unavailable; retry "
                      "later with the same Idempotency-Key");
            return NGX_DONE;
        }

        if (busy == NGX_BUSY) {
            lctx->step = 0;
            *rc = ngx_http_payments_limit_reject(r, scope[i],
                      rules[i]->zone, 0, wait,
                      scope[i] == NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT
                      ? "too many payments created by this merchant; "
                        "retry later with the same Idempotency-Key"
                      : "too many payments created from this address; "
                        "retry later with the same Idempotency-Key");
            return NGX_DONE;
        }
    }

    if (lctx) {
        lctx->step = 0;
    }

    for (i = 0; i + 1 < n; i++) {
        ngx_http_payments_limit_rate_count(ctx, rules[i], &keys[i]);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_limit_checkout(ngx_http_payments_ctx_t *ctx, ngx_int_t *rc,
    void (*resume)(ngx_http_payments_ctx_t *ctx))
{
    u_char                               kbuf[256], *p;
    ngx_pool_cleanup_t                  *cln;
    ngx_int_t                            busy;
    ngx_str_t                            key, bkey;
    ngx_uint_t                           i, redis;
    ngx_msec_t                           wait = 0;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_ctx_t       *lctx;
    ngx_http_payments_limit_max_t       *m;
    ngx_http_payments_limit_rule_t      *rule;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_loc_conf_t  *lcf;
    ngx_http_payments_limit_checkout_t  *co;
    ngx_http_payments_limit_node_t      *ln;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (!lcf->set || ctx->merchant.len == 0 || !ctx->co_valid
        || ctx->limit_known)
    {
        return NGX_OK;
    }

    lctx = ngx_http_payments_limit_get_ctx(r);
    if (lctx == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    /* the card-testing guard: too many failures of this buyer */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED];

    if (rule->zone) {
        z = rule->zone->data;
        lctx->nbuyers = 0;

        if (ctx->co.buyer_id) {
            ngx_http_payments_limit_buyer_hash(z, &ctx->merchant, 'i',
                                               ctx->co.buyer_id,
                                               lctx->buyer[lctx->nbuyers++]);
        }

        if (ctx->co.buyer_email) {
            ngx_http_payments_limit_buyer_hash(z, &ctx->merchant, 'e',
                                               ctx->co.buyer_email,
                                               lctx->buyer[lctx->nbuyers++]);
        }

        /* a check that waits for Redis is taken up again at its buyer */

        for (i = lctx->fchecked ? lctx->nbuyers : lctx->fstep;
             i < lctx->nbuyers;
             i++)
        {
            kbuf[0] = 'b';
            ngx_memcpy(kbuf + 1, lctx->buyer[i], NGX_HTTP_PAYMENTS_LIMIT_HASH);
            key.data = kbuf;
            key.len = 1 + NGX_HTTP_PAYMENTS_LIMIT_HASH;

            busy = ngx_http_payments_limit_failures_check(ctx, z, &key,
                                                          resume, &wait);
            if (busy == NGX_AGAIN) {
                lctx->fstep = i;
                return NGX_AGAIN;
            }

            ngx_http_payments_limit_verdict(r, NGX_HTTP_PAYMENTS_LIMIT_FAILED,
                                            rule->zone, &key, busy, wait);

            if (busy == NGX_ABORT) {
                lctx->fstep = 0;
                *rc = ngx_http_payments_limit_unavailable(r,
                          NGX_HTTP_PAYMENTS_LIMIT_FAILED, rule->zone, 0,
                          "the gateway's card-testing guard is "
                          "unavailable; retry later with the same "
                          "Idempotency-Key");
                return NGX_DONE;
            }

            if (busy == NGX_BUSY) {
                lctx->fstep = 0;

                if (!ctx->limit_peeked) {
                    return NGX_DECLINED;
                }

                *rc = ngx_http_payments_limit_reject(r,
                          NGX_HTTP_PAYMENTS_LIMIT_FAILED, rule->zone, 0, wait,
                          "too many failed payments for this buyer");
                return NGX_DONE;
            }
        }

        lctx->fchecked = 1;
        lctx->fstep = 0;
    }

    /* the amount velocity: reserved now, given back unless claimed */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS];

    if (rule->zone && ctx->merchant.len + 4 <= sizeof(kbuf)) {
        z = rule->zone->data;
        m = z->maxes->elts;

        for (i = 0; i < z->maxes->nelts; i++) {
            if (ngx_strcmp(m[i].currency, ctx->co.currency) == 0) {
                break;
            }
        }

        if (i < z->maxes->nelts) {
            p = ngx_cpymem(kbuf, ctx->merchant.data, ctx->merchant.len);
            *p++ = '\0';
            p = ngx_cpymem(p, ctx->co.currency, 3);
            key.data = kbuf;
            key.len = p - kbuf;

            busy = ngx_http_payments_limit_amount_check(ctx, z, &key,
                                                        ctx->co.total,
                                                        m[i].max, resume,
                                                        &lctx->reserved_idx,
                                                        &redis, &wait);

            if (busy == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            ngx_http_payments_limit_verdict(r,
                                            NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS,
                                            rule->zone, &key, busy, wait);

            if (busy == NGX_ABORT) {
                *rc = ngx_http_payments_limit_unavailable(r,
                          NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS, rule->zone, 0,
                          "the gateway's amount limits are unavailable; "
                          "retry later with the same Idempotency-Key");
                return NGX_DONE;
            }

            if (busy == NGX_BUSY) {
                if (!ctx->limit_peeked) {
                    return NGX_DECLINED;
                }

                *rc = ngx_http_payments_limit_reject(r,
                          NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS, rule->zone, 0,
                          wait, ctx->co.total > m[i].max
                          ? "the checkout's amount is more than the "
                            "merchant may register in the window"
                          : "the merchant's amount limit for this currency "
                            "is reached for now");
                return NGX_DONE;
            }

            if (lctx->reserved_idx) {
                lctx->reserved_zone = rule->zone;
                lctx->reserved = ctx->co.total;
                lctx->reserved_redis = redis ? 1 : 0;

                /* given back when the request ends unless a fresh claim
                 * keeps it or the claim's outcome is unknown: the store
                 * down, the claim never sent */
                cln = ngx_pool_cleanup_add(r->pool, 0);
                if (cln == NULL) {
                    ngx_http_payments_limit_claimed(ctx, NULL);
                    *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
                    return NGX_DONE;
                }

                cln->handler = ngx_http_payments_limit_reserve_end;
                cln->data = ctx;
            }
        }
    }

    /* remember whose failure this checkout's would be */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED];

    if (rule->zone && lctx->nbuyers) {
        z = rule->zone->data;

        if (ngx_http_payments_limit_checkout_key(r->pool, &ctx->merchant,
                                   (u_char *) ctx->co.checkout_id,
                                   ngx_strlen(ctx->co.checkout_id), &key)
            == NGX_OK)
        {
            ngx_shmtx_lock(&z->shpool->mutex);

            ln = ngx_http_payments_limit_lookup(z, &key,
                                   sizeof(ngx_http_payments_limit_checkout_t),
                                   1);
            if (ln) {
                co = (ngx_http_payments_limit_checkout_t *) ln->data;
                ngx_memcpy(co->buyer, lctx->buyer, sizeof(co->buyer));
                co->nbuyers = (u_char) lctx->nbuyers;

                /* a webhook may come until the session ends, and later */
                ln->expire = ngx_current_msec
                             + (ngx_msec_t) ctx->pmcf->session_lifetime
                               * 2000;
            }

            ngx_shmtx_unlock(&z->shpool->mutex);

            /* in Redis too, for the gateway the webhook comes to */
            for (i = 0; z->redis && i < lctx->nbuyers; i++) {
                kbuf[0] = 'b';
                ngx_memcpy(kbuf + 1, lctx->buyer[i],
                           NGX_HTTP_PAYMENTS_LIMIT_HASH);
                bkey.data = kbuf;
                bkey.len = 1 + NGX_HTTP_PAYMENTS_LIMIT_HASH;

                ngx_http_payments_limit_failure_note(z, &key, (char) ('0' + i),
                    &bkey, (ngx_msec_t) ctx->pmcf->session_lifetime * 2000,
                    r->connection->log);
            }
        }
    }

    return NGX_OK;
}


void
ngx_http_payments_limit_claimed(ngx_http_payments_ctx_t *ctx,
    const char *outcome)
{
    u_char                         kbuf[256], *p;
    ngx_str_t                      key;
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx == NULL || lctx->reserved_zone == NULL) {
        return;
    }

    if (outcome && ngx_strcmp(outcome, "claimed") == 0) {
        lctx->kept = 1;
        return;
    }

    p = ngx_cpymem(kbuf, ctx->merchant.data, ctx->merchant.len);
    *p++ = '\0';
    p = ngx_cpymem(p, ctx->co.currency, 3);
    key.data = kbuf;
    key.len = p - kbuf;

    ngx_http_payments_limit_amount_back(lctx->reserved_zone->data, &key,
                                        lctx->reserved, lctx->reserved_idx,
                                        lctx->reserved_redis,
                                        ctx->request->connection->log);
    lctx->reserved_zone = NULL;
}


void
ngx_http_payments_limit_claiming(ngx_http_payments_ctx_t *ctx, ngx_uint_t on)
{
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx != NULL) {
        lctx->claiming = on ? 1 : 0;
    }
}


void
ngx_http_payments_limit_claim_unknown(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx == NULL || lctx->reserved_zone == NULL || lctx->kept) {
        return;
    }

    /* PostgreSQL may commit it still, and a retry with the same key finds
     * it made and gives its own amount back: counted here or nowhere */
    lctx->kept = 1;

    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "payments: the claim of \"%s\" was sent and its outcome "
                  "is unknown: its amount stays counted in zone \"%V\"",
                  ctx->nonce ? ctx->nonce : "",
                  &lctx->reserved_zone->shm.name);
}


/*
 * The request ends (its pool's cleanup): an amount no fresh claim kept is
 * given back, unless its claim had reached a connection and was still
 * unanswered: a request freed while its claim ran (the driver drops the
 * answer, and the claim may commit).  nginx keeps a request whose body it
 * has read until the module finalizes it, so a safeguard today.
 */
static void
ngx_http_payments_limit_reserve_end(void *data)
{
    ngx_http_payments_ctx_t        *ctx = data;
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx == NULL || lctx->reserved_zone == NULL || lctx->kept) {
        return;
    }

    if (lctx->claiming && ctx->query.sent) {
        ngx_http_payments_limit_claim_unknown(ctx);
        return;
    }

    ngx_http_payments_limit_claimed(ctx, NULL);
}


void
ngx_http_payments_limit_refused(ngx_http_payments_ctx_t *ctx)
{
    u_char                               kbuf[1 + NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_str_t                            key;
    ngx_uint_t                           i;
    ngx_http_payments_limit_ctx_t       *lctx;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    /* no money moves: the amount it reserved is given back */
    ngx_http_payments_limit_claimed(ctx, NULL);

    lcf = ngx_http_get_module_loc_conf(ctx->request,
                                       ngx_http_payments_limit_module);
    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx == NULL || lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone == NULL)
    {
        return;
    }

    z = lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone->data;

    for (i = 0; i < lctx->nbuyers; i++) {
        kbuf[0] = 'b';
        ngx_memcpy(kbuf + 1, lctx->buyer[i], NGX_HTTP_PAYMENTS_LIMIT_HASH);
        key.data = kbuf;
        key.len = sizeof(kbuf);

        ngx_http_payments_limit_failure_count(z, &key,
                                              ctx->request->connection->log);
    }
}
