
/*
 * Copyright (C) ngx_payments authors
 *
 * What a worker's PostgreSQL pools (_pg.c) tell the rest of the gateway:
 * whether a shard is up, why not (the login hint), its breaker, and the
 * pools' figures on /metrics; and what a server says of itself after an
 * answer (pg_leave).  The driver (_pg.c) calls in here; nothing here
 * calls the driver.
 *
 * A server that answers but takes no writes: a switchover fences the old
 * primary (default_transaction_read_only and a reload, no restart), a
 * fail-over may bring it back as a standby, and its sessions stay open,
 * each write refused with SQLSTATE 25006.  So after an answer that says
 * its server takes no more of the gateway's work (25006, or 57P01..57P03:
 * shutting down, or taking no connections now: pay_pg_state_reconnects),
 * or after the server reports itself read-only (in_hot_standby or
 * default_transaction_read_only on: it tells a session with its next
 * answer) when it was not at the connection's opening, the connection is
 * closed (pg_fail) and opened again after its back-off, where libpq's
 * target_session_attrs=read-write chooses a writable server.  The answer
 * is handed over as it came (the request is answered 503 and retried with
 * its key: the statement refused wrote nothing) and counts as the server's
 * answer for the breaker.  The pool's idle connections opened on a
 * writable server are closed with it: they most likely share its server,
 * and each would cost a request to find out.  A connection opened on a
 * read-only server (one server, no target_session_attrs) serves reads;
 * such an opening does not reset its back-off, so a read-only server is
 * reconnected to once per back-off at most, up to
 * NGX_HTTP_PAYMENTS_PG_BACKOFF_MAX, per connection: no reconnect storm.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_pg_int.h"

#include <payments/pghint.h>
#include <payments/shard.h>

#include <string.h>


static ngx_uint_t ngx_http_payments_pg_up(ngx_http_payments_pg_pool_t *pool,
    ngx_uint_t *busy);
static ngx_uint_t ngx_http_payments_pg_read_only(PGconn *pg);


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


/* 1 when the server says it takes no writes: a standby (in_hot_standby),
 * or default_transaction_read_only on; PostgreSQL 14 and later report
 * both at the opening and, when they change, with the next answer */

static ngx_uint_t
ngx_http_payments_pg_read_only(PGconn *pg)
{
    const char  *v;

    v = PQparameterStatus(pg, "in_hot_standby");
    if (v != NULL && strcmp(v, "on") == 0) {
        return 1;
    }

    v = PQparameterStatus(pg, "default_transaction_read_only");

    return (v != NULL && strcmp(v, "on") == 0);
}


/* pc has just opened: whether its server takes writes, logged; a
 * read-only one's reads are served, and its back-off goes on growing (the
 * connection is closed at its first write), else it starts over */

void
ngx_http_payments_pg_opened(ngx_http_payments_pg_conn_t *pc)
{
    pc->read_only = ngx_http_payments_pg_read_only(pc->pg);

    ngx_log_error(NGX_LOG_INFO, pc->pool->log, 0,
                  "payments: database connection %ui ready%s", pc->index,
                  pc->read_only ? ", on a server that takes no writes "
                                  "(a standby, or "
                                  "default_transaction_read_only)"
                                : "");

    if (!pc->read_only) {
        pc->backoff = NGX_HTTP_PAYMENTS_PG_BACKOFF_MIN;
    }
}


/*
 * Why pc, idle again after an answer (res, NULL when none came), is to be
 * closed and opened again after its back-off (the header comment): the
 * connection lost, its server going away (57P01..57P03, written into
 * buf), refusing a write as read-only (25006), or turned read-only since
 * the connection opened on it; NULL when it stays.  *siblings: 1 when the
 * pool's idle connections opened on a writable server are to go with it.
 * A read-only server that takes writes again (a standby promoted, the
 * setting reset) starts pc's back-off over.
 */

const char *
ngx_http_payments_pg_leave(ngx_http_payments_pg_conn_t *pc, PGresult *res,
    u_char *buf, size_t size, ngx_uint_t *siblings)
{
    ngx_uint_t   ro;
    const char  *state;

    *siblings = 0;

    if (PQstatus(pc->pg) == CONNECTION_BAD) {
        return "connection lost";
    }

    state = (res != NULL) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    ro = ngx_http_payments_pg_read_only(pc->pg);

    /* 57P01..57P03: shutting down, or no connections now */
    if (pay_pg_state_reconnects(state) && state[0] == '5') {
        (void) ngx_snprintf(buf, size,
                            "the server is going away (SQLSTATE %s)%Z",
                            state);
        return (char *) buf;
    }

    /* opened on a writable server: the others opened so share its fate */
    *siblings = !pc->read_only;

    if (pay_pg_state_reconnects(state)) {
        return "the server refused a write as read-only (SQLSTATE 25006: a "
               "standby, or default_transaction_read_only): closed";
    }

    if (ro && !pc->read_only) {
        return "the server has turned read-only (a standby, or "
               "default_transaction_read_only): closed";
    }

    *siblings = 0;

    if (!ro && pc->read_only) {
        pc->read_only = 0;
        pc->backoff = NGX_HTTP_PAYMENTS_PG_BACKOFF_MIN;
    }

    return NULL;
}
