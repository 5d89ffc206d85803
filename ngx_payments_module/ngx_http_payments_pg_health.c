
/*
 * Copyright (C) ngx_payments authors
 *
 * What a worker's PostgreSQL pools (_pg.c) tell the rest of the gateway:
 * whether a shard is up, why not (the login hint), its breaker, and the
 * pools' figures on /metrics.  The driver (_pg.c) calls in here; nothing
 * here calls the driver.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_pg_int.h"

#include <payments/pghint.h>
#include <payments/shard.h>


static ngx_uint_t ngx_http_payments_pg_up(ngx_http_payments_pg_pool_t *pool,
    ngx_uint_t *busy);


/* the pool's connections up (idle or busy), and of them busy */

static ngx_uint_t
ngx_http_payments_pg_up(ngx_http_payments_pg_pool_t *pool, ngx_uint_t *busy)
{
    ngx_uint_t  i, up;

    up = 0;
    *busy = 0;

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == NGX_HTTP_PAYMENTS_PG_BUSY) {
            (*busy)++;
            up++;

        } else if (pool->conns[i].state == NGX_HTTP_PAYMENTS_PG_IDLE) {
            up++;
        }
    }

    return up;
}


/* This worker's pools, for GET /metrics: their sums (one pool, unsharded,
 * is today's figures exactly). */

void
ngx_http_payments_pg_publish(void)
{
    ngx_uint_t                    s, up, busy, b, waiting, total;
    ngx_http_payments_pg_pool_t  *pool;

    up = 0;
    busy = 0;
    waiting = 0;
    total = 0;

    for (s = 0; s < ngx_http_payments_pg_npools; s++) {
        pool = &ngx_http_payments_pg_pools[s];
        waiting += pool->nwaiting;
        total += pool->nconns;
        up += ngx_http_payments_pg_up(pool, &b);
        busy += b;
    }

    ngx_http_payments_metrics_db_slot(up, busy, waiting, total);

    /* each shard's own, when there is more than one to tell apart, or
     * when a payments_shard line gave it its breaker */
    for (s = 0; s < ngx_http_payments_pg_npools; s++) {
        pool = &ngx_http_payments_pg_pools[s];

        if (ngx_http_payments_pg_npools < 2
            && ngx_strcmp(pool->shard->name.data, PAY_SHARD_DEFAULT) == 0)
        {
            /* payments_database's: today's figures above only */
            continue;
        }

        up = ngx_http_payments_pg_up(pool, &busy);

        ngx_http_payments_metrics_shard_pool(pool->shard, up, busy,
            pool->nwaiting, pool->nconns,
            pay_breaker_state(&pool->breaker, &pool->breaker_conf,
                              (int64_t) ngx_current_msec));
    }
}


/* a count of the database's: the gateway's, and its shard's when there
 * are several */

void
ngx_http_payments_pg_count(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_db_e what)
{
    ngx_http_payments_count(db[what]);

    if (ngx_http_payments_pg_npools > 1) {
        ngx_http_payments_metrics_shard_db(pool->shard, what);
    }
}


/*
 * The shard's breaker (breaker=, breaker_open=; none for
 * payments_database): after breaker= connection failures or query
 * time-outs in a row, the shard's queries are refused at once for
 * breaker_open=, then one goes through as the probe, and any answer from
 * the server closes it.  Per worker, no shared memory: a hanging shard
 * then holds no client connection for timeout= each (worker_connections
 * are every shard's), and the other shards never notice.
 */

ngx_int_t
ngx_http_payments_pg_breaker_allow(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_pg_query_t *q)
{
    int      probe;
    int64_t  wait;

    if (pool->breaker_conf.threshold == 0) {
        return 1;
    }

    if (!pay_breaker_allow(&pool->breaker, &pool->breaker_conf,
                           (int64_t) ngx_current_msec, &probe, &wait))
    {
        return 0;
    }

    if (probe) {
        pool->probe_q = q;

        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "payments: shard \"%V\": its breaker lets a probe "
                      "through", &pool->shard->name);
    }

    return 1;
}


/* the probe was not sent after all (no connection up): the next query
 * is the probe */

void
ngx_http_payments_pg_breaker_unprobe(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_pg_query_t *q)
{
    if (pool->probe_q == q) {
        pool->probe_q = NULL;
        pool->breaker.probe_at = 0;
    }
}


ngx_uint_t
ngx_http_payments_pg_breaker_result(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_pg_query_t *q, ngx_uint_t success)
{
    uint64_t             opens;
    ngx_uint_t           probe, level;
    pay_breaker_state_e  was;

    if (pool->breaker_conf.threshold == 0) {
        return 0;
    }

    probe = (q != NULL && q == pool->probe_q);
    if (probe) {
        pool->probe_q = NULL;
    }

    was = pool->breaker.state;
    opens = pool->breaker.opens;

    pay_breaker_result(&pool->breaker, &pool->breaker_conf, (int) success,
                       (int) probe, (int64_t) ngx_current_msec);

    if (pool->breaker.opens != opens) {
        /* warn once per outage; its probes failing again are info */
        level = (was == PAY_BREAKER_CLOSED) ? NGX_LOG_WARN : NGX_LOG_INFO;

        ngx_log_error(level, pool->log, 0,
                      "payments: shard \"%V\": %s: its breaker opens for "
                      "%Mms, its queries are refused at once (503 "
                      "store_unavailable)", &pool->shard->name,
                      was == PAY_BREAKER_CLOSED
                      ? "database failures in a row" : "the probe failed",
                      pool->shard->breaker_open);

        ngx_http_payments_metrics_shard_opened(pool->shard);
        return 1;
    }

    if (was != PAY_BREAKER_CLOSED
        && pool->breaker.state == PAY_BREAKER_CLOSED)
    {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "payments: shard \"%V\": the database answers "
                      "again: its breaker closes", &pool->shard->name);
        ngx_http_payments_pg_publish();
    }

    return 0;
}


/* the pool of a shard, or NULL: no such shard (no database configured) */

ngx_http_payments_pg_pool_t *
ngx_http_payments_pg_pool_of(ngx_uint_t shard)
{
    if (shard >= ngx_http_payments_pg_npools) {
        return NULL;
    }

    return &ngx_http_payments_pg_pools[shard];
}


ngx_uint_t
ngx_http_payments_pg_connected(ngx_uint_t shard)
{
    ngx_uint_t                    busy;
    ngx_http_payments_pg_pool_t  *pool;

    pool = ngx_http_payments_pg_pool_of(shard);
    if (pool == NULL) {
        return 0;
    }

    return ngx_http_payments_pg_up(pool, &busy);
}


/* what to look at while no connection is up and a login was refused */

const char *
ngx_http_payments_pg_down_hint(ngx_uint_t shard)
{
    ngx_http_payments_pg_pool_t  *pool;

    pool = ngx_http_payments_pg_pool_of(shard);

    if (pool == NULL || ngx_http_payments_pg_connected(shard) > 0) {
        return NULL;
    }

    return pay_pg_hint_text((pay_pg_hint_e) pool->hint);
}
