
/*
 * Copyright (C) ngx_payments authors
 *
 * A per-worker pool of PostgreSQL connections driven by nginx's event loop.
 *
 * Nothing here blocks: connections are opened with PQconnectStart and
 * advanced by PQconnectPoll on socket events; queries are sent with
 * PQsendQueryPrepared or PQsendQueryParams (_pg_prepare.c), flushed with
 * PQflush while the socket is writable and read with PQconsumeInput/
 * PQisBusy/PQgetResult while it is readable.  Queries wait for a
 * connection first come, first served; a connection goes to the query
 * waiting longest as soon as an answer is read, before the answer's
 * handler runs (so the handler's next query queues behind it).  libpq owns
 * the socket: the ngx_connection_t wrapped around it is freed, never
 * closed.  A query timeout closes the connection (PQcancel would block)
 * and the connection is opened again after a back-off.  That timer is not
 * cancelable: a graceful stop (nginx -s quit, the old workers of a reload)
 * waits for every query in flight or queued, at most
 * payments_database_timeout, and its handler is called before the worker
 * exits.
 *
 * A connection whose server takes no more writes is opened again
 * (_pg_health.c, pg_leave).
 *
 * Prepared statements, and plans made again now and then:
 * _pg_prepare.c; whether a shard is up, its breaker, the pools' figures
 * on /metrics and what a server says of itself: _pg_health.c; the
 * ngx_connection_t around libpq's socket: _pg_socket.c.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_pg_int.h"

#include <payments/pghint.h>
#include <payments/shard.h>


static void ngx_http_payments_pg_connect(ngx_http_payments_pg_conn_t *pc);
static void ngx_http_payments_pg_reconnect_handler(ngx_event_t *ev);
static void ngx_http_payments_pg_orphan_handler(ngx_event_t *ev);
static void ngx_http_payments_pg_orphan_done(ngx_http_payments_pg_conn_t *pc);
static void ngx_http_payments_pg_event_handler(ngx_event_t *ev);
static void ngx_http_payments_pg_connect_poll(ngx_http_payments_pg_conn_t *pc);
static void ngx_http_payments_pg_io(ngx_http_payments_pg_conn_t *pc,
    ngx_uint_t writable);
static void ngx_http_payments_pg_start(ngx_http_payments_pg_conn_t *pc,
    ngx_http_payments_pg_query_t *q);
static ngx_int_t ngx_http_payments_pg_pool_init(ngx_cycle_t *cycle,
    ngx_http_payments_pg_pool_t *pool);
static void ngx_http_payments_pg_pool_exit(ngx_http_payments_pg_pool_t *pool);
static void ngx_http_payments_pg_dispatch(ngx_http_payments_pg_pool_t *pool);
static void ngx_http_payments_pg_timeout(ngx_event_t *ev);
static void ngx_http_payments_pg_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_pg_defer_failure(
    ngx_http_payments_pg_query_t *q);
static void ngx_http_payments_pg_failure_handler(ngx_event_t *ev);
static void ngx_http_payments_pg_judge(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_pg_query_t *q, ngx_uint_t success);
static void ngx_http_payments_pg_answered(ngx_http_payments_pg_conn_t *pc,
    PGresult *res);


/* A pool per shard in each worker; set up in init_process. */
ngx_http_payments_pg_pool_t  *ngx_http_payments_pg_pools;
ngx_uint_t                    ngx_http_payments_pg_npools;


ngx_int_t
ngx_http_payments_pg_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_uint_t                    s;
    ngx_http_payments_shard_t    *shard;
    ngx_http_payments_pg_pool_t  *pool;

    ngx_http_payments_pg_npools = 0;
    ngx_http_payments_pg_pools = NULL;

    if (pmcf->shards == NULL || pmcf->shards->nelts == 0) {
        return NGX_OK;
    }

    ngx_http_payments_pg_pools = ngx_pcalloc(cycle->pool,
                                        pmcf->shards->nelts
                                        * sizeof(ngx_http_payments_pg_pool_t));
    if (ngx_http_payments_pg_pools == NULL) {
        return NGX_ERROR;
    }

    ngx_http_payments_pg_npools = pmcf->shards->nelts;
    shard = pmcf->shards->elts;

    for (s = 0; s < ngx_http_payments_pg_npools; s++) {
        pool = &ngx_http_payments_pg_pools[s];
        pool->shard = &shard[s];
        pool->index = s;
        pool->log = cycle->log;
        pool->replan = pmcf->db_replan;
        ngx_queue_init(&pool->waiting);

        /* a probe that never reports (its request went, its answer was
         * lost) is replaced once it would have timed out twice */
        pool->breaker_conf.threshold = (uint32_t) shard[s].breaker;
        pool->breaker_conf.open_ms = (int64_t) shard[s].breaker_open;
        pool->breaker_conf.probe_ms = 2 * (int64_t) shard[s].db_timeout
                                      + 1000;

        if (ngx_http_payments_pg_pool_init(cycle, pool) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    ngx_http_payments_pg_publish();

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_pg_pool_init(ngx_cycle_t *cycle,
    ngx_http_payments_pg_pool_t *pool)
{
    ngx_uint_t  i;

    pool->nconns = pool->shard->pool_size;
    pool->conns = ngx_pcalloc(cycle->pool,
                              pool->nconns
                              * sizeof(ngx_http_payments_pg_conn_t));
    if (pool->conns == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < pool->nconns; i++) {
        pool->conns[i].pool = pool;
        pool->conns[i].index = i;
        pool->conns[i].backoff = NGX_HTTP_PAYMENTS_PG_BACKOFF_MIN;
        pool->conns[i].reconnect.handler =
                                       ngx_http_payments_pg_reconnect_handler;
        pool->conns[i].reconnect.data = &pool->conns[i];
        pool->conns[i].reconnect.log = cycle->log;
        pool->conns[i].reconnect.cancelable = 1;
        pool->conns[i].orphan.handler = ngx_http_payments_pg_orphan_handler;
        pool->conns[i].orphan.data = &pool->conns[i];
        pool->conns[i].orphan.log = cycle->log;
        pool->conns[i].orphan.cancelable = 1;   /* nobody waits for it */
        pool->conns[i].first = 1;

        ngx_http_payments_pg_connect(&pool->conns[i]);
    }

    return NGX_OK;
}


void
ngx_http_payments_pg_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t                    s;
    ngx_http_payments_pg_pool_t  *pool;

    for (s = 0; s < ngx_http_payments_pg_npools; s++) {
        pool = &ngx_http_payments_pg_pools[s];
        ngx_http_payments_pg_pool_exit(pool);
    }

    ngx_http_payments_pg_npools = 0;
}


static void
ngx_http_payments_pg_pool_exit(ngx_http_payments_pg_pool_t *pool)
{
    ngx_uint_t                    i;
    ngx_http_payments_pg_conn_t  *pc;

    for (i = 0; i < pool->nconns; i++) {
        pc = &pool->conns[i];

        if (pc->reconnect.timer_set) {
            ngx_del_timer(&pc->reconnect);
        }

        if (pc->orphan.timer_set) {
            ngx_del_timer(&pc->orphan);
        }

        ngx_http_payments_pg_unwrap(pc);

        if (pc->pg) {
            PQfinish(pc->pg);
            pc->pg = NULL;
        }
    }

    pool->nconns = 0;
}


/* A query's outcome to its shard's breaker (_pg_health.c); when that
 * opens it, the queries waiting would only time out behind it: each is
 * refused now, 503 store_unavailable. */

static void
ngx_http_payments_pg_judge(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_pg_query_t *q, ngx_uint_t success)
{
    ngx_queue_t  *qe;

    if (!ngx_http_payments_pg_breaker_result(pool, q, success)) {
        return;
    }

    while (!ngx_queue_empty(&pool->waiting)) {
        qe = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(qe);
        pool->nwaiting--;

        q = ngx_queue_data(qe, ngx_http_payments_pg_query_t, queue);
        q->queued = 0;
        ngx_http_payments_pg_count(pool, NGX_HTTP_PAYMENTS_DB_REJECTED);
        ngx_http_payments_pg_defer_failure(q);
    }

    ngx_http_payments_pg_publish();
}


/* A connection a query may wait for: one running a query, or one still
 * making the worker's first connect (nothing has failed yet) */

static ngx_inline ngx_uint_t
ngx_http_payments_pg_usable(const ngx_http_payments_pg_conn_t *pc)
{
    return pc->state == NGX_HTTP_PAYMENTS_PG_BUSY
           || (pc->state == NGX_HTTP_PAYMENTS_PG_CONNECTING && pc->first);
}


ngx_int_t
ngx_http_payments_pg_send(ngx_http_payments_pg_query_t *q)
{
    ngx_uint_t                    i, usable;
    ngx_http_payments_pg_conn_t  *pc;
    ngx_http_payments_pg_pool_t  *pool;

    q->sent = 0;        /* pg_start: it reaches a connection */

    /* a shard this worker has no pool for: unavailable, never another's */
    pool = ngx_http_payments_pg_pool_of(q->shard);
    if (pool == NULL) {
        ngx_http_payments_count(db[NGX_HTTP_PAYMENTS_DB_REJECTED]);
        return NGX_DECLINED;
    }

    /* its breaker is open: 503 at once, not after timeout= */
    if (!ngx_http_payments_pg_breaker_allow(pool, q)) {
        ngx_http_payments_pg_count(pool, NGX_HTTP_PAYMENTS_DB_REJECTED);
        return NGX_DECLINED;
    }

    usable = 0;
    q->queued = 0;      /* pg_start: no wait in the queue */

    for (i = 0; i < pool->nconns; i++) {
        pc = &pool->conns[i];

        if (pc->state == NGX_HTTP_PAYMENTS_PG_IDLE) {
            ngx_http_payments_pg_start(pc, q);
            return NGX_OK;
        }

        if (ngx_http_payments_pg_usable(pc)) {
            usable++;
        }
    }

    /* a background query (a gauge's poll) yields to the requests: it
     * waits for its next round rather than for a connection */
    if (q->background) {
        ngx_http_payments_pg_breaker_unprobe(pool, q);
        return NGX_DECLINED;
    }

    /*
     * Fail fast when no connection is up: a request must not wait on a
     * database that is down (503 store_unavailable, Retry-After).  Queries
     * wait only behind busy connections, and only so many of them, or for
     * a new worker's first connections (a reload's, a start's), which are
     * not a database down until they fail.
     */

    if (usable == 0 || pool->nwaiting >= pool->shard->db_queue) {
        ngx_http_payments_pg_breaker_unprobe(pool, q);
        ngx_http_payments_pg_count(pool, NGX_HTTP_PAYMENTS_DB_REJECTED);
        return NGX_DECLINED;
    }

    q->queued = 1;
    q->queued_at = ngx_current_msec;
    q->conn = NULL;
    ngx_queue_insert_tail(&pool->waiting, &q->queue);
    pool->nwaiting++;
    ngx_http_payments_pg_publish();

    q->timer.handler = ngx_http_payments_pg_timeout;
    q->timer.data = q;
    q->timer.log = q->log;
    q->timer.cancelable = 0;    /* a graceful stop waits for it (above) */
    ngx_add_timer(&q->timer, pool->shard->db_timeout);

    return NGX_OK;
}


static void
ngx_http_payments_pg_start(ngx_http_payments_pg_conn_t *pc,
    ngx_http_payments_pg_query_t *q)
{
    /* its wait for the connection: the pool's queue, seen in /metrics
     * (payments_db_wait_seconds; 0 when one was free) */
    ngx_http_payments_metrics_db_wait(q->queued
                                      ? ngx_current_msec - q->queued_at : 0);

    q->queued = 0;
    q->sent = 1;
    q->conn = pc;
    pc->query = q;
    pc->result = NULL;
    pc->state = NGX_HTTP_PAYMENTS_PG_BUSY;

    ngx_http_payments_pg_count(pc->pool, NGX_HTTP_PAYMENTS_DB_QUERIES);
    ngx_http_payments_pg_publish();

    q->timer.handler = ngx_http_payments_pg_timeout;
    q->timer.data = q;
    q->timer.log = q->log;
    q->timer.cancelable = 0;    /* a graceful stop waits for it (above) */
    ngx_add_timer(&q->timer, pc->pool->shard->db_timeout);

    if (ngx_http_payments_pg_begin(pc) != NGX_OK) {
        ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
        return;
    }

    (void) ngx_http_payments_pg_flush(pc);
}


static void
ngx_http_payments_pg_dispatch(ngx_http_payments_pg_pool_t *pool)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *qe;
    ngx_http_payments_pg_conn_t   *pc;
    ngx_http_payments_pg_query_t  *q;

    for (i = 0; i < pool->nconns && !ngx_queue_empty(&pool->waiting); i++) {
        pc = &pool->conns[i];

        if (pc->state != NGX_HTTP_PAYMENTS_PG_IDLE) {
            continue;
        }

        qe = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(qe);
        pool->nwaiting--;

        q = ngx_queue_data(qe, ngx_http_payments_pg_query_t, queue);

        if (q->timer.timer_set) {
            ngx_del_timer(&q->timer);
        }

        ngx_http_payments_pg_start(pc, q);
    }
}


static void
ngx_http_payments_pg_timeout(ngx_event_t *ev)
{
    ngx_http_payments_pg_query_t  *q = ev->data;
    ngx_http_payments_pg_pool_t   *pool;

    pool = &ngx_http_payments_pg_pools[q->shard];
    ngx_http_payments_pg_count(pool, NGX_HTTP_PAYMENTS_DB_TIMEOUTS);

    if (q->queued) {
        ngx_log_error(NGX_LOG_ERR, q->log, 0,
                      "payments: database query waited too long for a "
                      "connection");
        ngx_queue_remove(&q->queue);
        pool->nwaiting--;
        q->queued = 0;
        ngx_http_payments_pg_judge(pool, q, 0);
        ngx_http_payments_pg_answer(q, NULL);
        return;
    }

    /* running: only closing the connection stops it without blocking
     * (pg_fail counts it for the breaker) */
    ngx_http_payments_pg_fail(q->conn, "query timed out");
}


static void
ngx_http_payments_pg_answer(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->conn = NULL;
    ngx_http_payments_pg_publish();
    q->handler(q, res);
}


static void
ngx_http_payments_pg_connect(ngx_http_payments_pg_conn_t *pc)
{
    ngx_http_payments_pg_pool_t  *pool = pc->pool;

    pc->nprepared = 0;
    pc->preparing = 0;
    pc->by_name = 0;
    pc->unnamed = 0;
    pc->replanning = 0;
    pc->read_only = 0;

    pc->pg = PQconnectStart((char *) pool->shard->conninfo.data);

    if (pc->pg == NULL || PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_http_payments_pg_fail(pc, pc->pg ? PQerrorMessage(pc->pg)
                                             : "out of memory");
        return;
    }

    /*
     * Every error and notice message is logged: terse keeps the primary
     * message only, never the DETAIL, HINT or CONTEXT, which carry values
     * (a unique violation's DETAIL holds the key, e.g. a PSP token).
     */
    PQsetErrorVerbosity(pc->pg, PQERRORS_TERSE);
    PQsetNoticeReceiver(pc->pg, ngx_http_payments_pg_notice, pool->log);

    pc->state = NGX_HTTP_PAYMENTS_PG_CONNECTING;

    if (ngx_http_payments_pg_wrap(pc, ngx_http_payments_pg_event_handler)
        != NGX_OK)
    {
        ngx_http_payments_pg_fail(pc, "no socket");
        return;
    }

    /* libpq: behave as if PQconnectPoll had answered WRITING */
    if (ngx_http_payments_pg_events(pc, 0, 1) != NGX_OK) {
        ngx_http_payments_pg_fail(pc, "event registration failed");
        return;
    }

    /* while connecting, the reconnect timer bounds the attempt */
    ngx_add_timer(&pc->reconnect, pool->shard->db_timeout);
}


static void
ngx_http_payments_pg_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_payments_pg_conn_t  *pc = ev->data;

    if (pc->state == NGX_HTTP_PAYMENTS_PG_CONNECTING) {
        ngx_http_payments_pg_fail(pc, "connect timed out");
        return;
    }

    ngx_http_payments_pg_connect(pc);
}


ngx_int_t
ngx_http_payments_pg_flush(ngx_http_payments_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->pg);

    if (rc == -1) {
        ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
        return NGX_ERROR;
    }

    /* writable again only while libpq still holds some of the query */
    if (ngx_http_payments_pg_events(pc, 1, rc == 1) != NGX_OK) {
        ngx_http_payments_pg_fail(pc, "event registration failed");
        return NGX_ERROR;
    }

    return (rc == 1) ? NGX_AGAIN : NGX_OK;
}


static void
ngx_http_payments_pg_event_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_payments_pg_conn_t  *pc = c->data;

    if (pc->state == NGX_HTTP_PAYMENTS_PG_CONNECTING) {
        ngx_http_payments_pg_connect_poll(pc);
        return;
    }

    ngx_http_payments_pg_io(pc, ev->write);
}


static void
ngx_http_payments_pg_connect_poll(ngx_http_payments_pg_conn_t *pc)
{
    PostgresPollingStatusType     st;
    ngx_http_payments_pg_pool_t  *pool = pc->pool;

    /*
     * With several hosts (or addresses) libpq closes its socket and opens
     * another inside one PQconnectPoll step, often under the same number,
     * and the close silently drops the old one from epoll.  A descriptor
     * number cannot tell the two apart: take the socket out of epoll while
     * it is surely still libpq's old one, and wrap and register afresh
     * whatever socket libpq holds after the step.
     */

    if (ngx_http_payments_pg_events(pc, 0, 0) != NGX_OK) {
        ngx_http_payments_pg_fail(pc, "event registration failed");
        return;
    }

    ngx_http_payments_pg_unwrap(pc);

    st = PQconnectPoll(pc->pg);

    if (st == PGRES_POLLING_FAILED) {
        ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
        return;
    }

    if (ngx_http_payments_pg_wrap(pc, ngx_http_payments_pg_event_handler)
        != NGX_OK)
    {
        ngx_http_payments_pg_fail(pc, "no socket");
        return;
    }

    switch (st) {

    case PGRES_POLLING_READING:
        if (ngx_http_payments_pg_events(pc, 1, 0) != NGX_OK) {
            ngx_http_payments_pg_fail(pc, "event registration failed");
        }
        return;

    case PGRES_POLLING_WRITING:
        if (ngx_http_payments_pg_events(pc, 0, 1) != NGX_OK) {
            ngx_http_payments_pg_fail(pc, "event registration failed");
        }
        return;

    case PGRES_POLLING_OK:
        if (pc->reconnect.timer_set) {
            ngx_del_timer(&pc->reconnect);
        }

        if (PQsetnonblocking(pc->pg, 1) != 0) {
            ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
            return;
        }

        if (ngx_http_payments_pg_events(pc, 1, 0) != NGX_OK) {
            ngx_http_payments_pg_fail(pc, "event registration failed");
            return;
        }

        ngx_http_payments_pg_opened(pc);

        pc->state = NGX_HTTP_PAYMENTS_PG_IDLE;
        pc->first = 0;
        pc->planned = ngx_current_msec;     /* it has none yet */
        pool->hint = PAY_PG_HINT_NONE;
        ngx_http_payments_pg_publish();
        ngx_http_payments_pg_dispatch(pc->pool);
        return;

    default: /* PGRES_POLLING_FAILED */
        ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
        return;
    }
}


static void
ngx_http_payments_pg_io(ngx_http_payments_pg_conn_t *pc, ngx_uint_t writable)
{
    ngx_int_t                      rc;
    PGresult                      *res;
    PGnotify                      *n;
    ngx_http_payments_pg_query_t  *q;

    /* NGX_AGAIN: more of the query to send when writable again */
    if (writable && pc->state == NGX_HTTP_PAYMENTS_PG_BUSY
        && ngx_http_payments_pg_flush(pc) != NGX_OK)
    {
        return;
    }

    if (!PQconsumeInput(pc->pg)) {
        ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
        return;
    }

    while ((n = PQnotifies(pc->pg)) != NULL) {
        PQfreemem(n);
    }

    if (pc->state != NGX_HTTP_PAYMENTS_PG_BUSY) {
        /* an idle connection that reads: the server said something (it
         * may be going away); PQconsumeInput caught a closed socket above */
        if (PQstatus(pc->pg) == CONNECTION_BAD) {
            ngx_http_payments_pg_fail(pc, "connection lost");
        }
        return;
    }

    while (!PQisBusy(pc->pg)) {
        res = PQgetResult(pc->pg);

        if (res == NULL) {
            if (pc->query == NULL) {
                /* its request has gone (ngx_http_payments_pg_cancel) */
                ngx_http_payments_pg_orphan_done(pc);
                ngx_http_payments_pg_dispatch(pc->pool);
                return;
            }

            if (pc->replanning || pc->preparing || pc->by_name) {
                rc = ngx_http_payments_pg_sent_done(pc);

                if (rc == NGX_AGAIN) {
                    /* sent (again): after DISCARD PLANS, unnamed, or
                     * prepared at last */
                    (void) ngx_http_payments_pg_flush(pc);
                    return;
                }

                if (rc == NGX_ERROR) {
                    ngx_http_payments_pg_fail(pc, PQerrorMessage(pc->pg));
                    return;
                }
            }

            /* the query is complete: hand the last result over */
            q = pc->query;
            res = pc->result;
            pc->query = NULL;
            pc->result = NULL;
            pc->state = NGX_HTTP_PAYMENTS_PG_IDLE;

            if (res == NULL) {
                res = PQmakeEmptyPGresult(pc->pg, PGRES_FATAL_ERROR);
            }

            /* the server answered: the shard is up */
            ngx_http_payments_pg_judge(pc->pool, q, 1);

            /* closed when its server takes no more (before it is handed
             * on); the answer stands */
            ngx_http_payments_pg_answered(pc, res);

            /*
             * The connection goes to the query waiting longest before the
             * answer's handler runs: the server starts on it now, not
             * after the handler's work (a PSP call set up, a response
             * sent), and a query the handler sends next waits its turn
             * behind the ones queued before it.
             */
            ngx_http_payments_pg_dispatch(pc->pool);

            ngx_http_payments_pg_answer(q, res);
            PQclear(res);
            return;
        }

        if (pc->result) {
            PQclear(pc->result);
        }

        pc->result = res;
    }
}


void
ngx_http_payments_pg_fail(ngx_http_payments_pg_conn_t *pc, const char *why)
{
    size_t                         len;
    ngx_uint_t                     i, up, hint, failed;
    ngx_queue_t                   *qe;
    ngx_http_payments_pg_query_t  *q;
    ngx_http_payments_pg_pool_t   *pool = pc->pool;

    len = ngx_strlen(why);
    while (len && (why[len - 1] == '\n' || why[len - 1] == ' ')) {
        len--;
    }

    /* a login refused: say what to look at, once per cause and worker */
    hint = PAY_PG_HINT_NONE;

    if (pc->state == NGX_HTTP_PAYMENTS_PG_CONNECTING
        || pc->state == NGX_HTTP_PAYMENTS_PG_DOWN)
    {
        hint = pay_pg_connect_hint(why);
    }

    if (hint != PAY_PG_HINT_NONE && hint != pool->hint) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "payments: database connection %ui: %*s, retrying in "
                      "%Mms; likely cause: %s", pc->index, len, why,
                      pc->backoff, pay_pg_hint_text(hint));

    } else {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "payments: database connection %ui: %*s, retrying in "
                      "%Mms", pc->index, len, why, pc->backoff);
    }

    if (hint != PAY_PG_HINT_NONE) {
        pool->hint = hint;
    }

    q = pc->query;
    pc->query = NULL;

    /* a connection that failed to open, or a query that timed out or lost
     * its connection, counts against the shard's breaker; an idle
     * connection the server closed does not (its reopening will tell) */
    failed = (pc->state != NGX_HTTP_PAYMENTS_PG_IDLE);

    if (pc->orphan.timer_set) {
        ngx_del_timer(&pc->orphan);
    }

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    ngx_http_payments_pg_unwrap(pc);

    if (pc->pg) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }

    pc->state = NGX_HTTP_PAYMENTS_PG_DOWN;
    pc->first = 0;
    ngx_http_payments_pg_count(pool,
                               NGX_HTTP_PAYMENTS_DB_CONNECTION_FAILURES);

    ngx_add_timer(&pc->reconnect, pc->backoff);
    pc->backoff = ngx_min(pc->backoff * 2, NGX_HTTP_PAYMENTS_PG_BACKOFF_MAX);

    if (failed) {
        /* may open it, and fail the queries waiting */
        ngx_http_payments_pg_judge(pool, q, 0);
    }

    if (q) {
        ngx_http_payments_pg_defer_failure(q);
    }

    /* with nothing up, the queries waiting would only time out: answer now */

    up = 0;
    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == NGX_HTTP_PAYMENTS_PG_IDLE
            || ngx_http_payments_pg_usable(&pool->conns[i]))
        {
            up++;
        }
    }

    while (up == 0 && !ngx_queue_empty(&pool->waiting)) {
        qe = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(qe);
        pool->nwaiting--;

        q = ngx_queue_data(qe, ngx_http_payments_pg_query_t, queue);
        q->queued = 0;
        ngx_http_payments_pg_defer_failure(q);
    }

    ngx_http_payments_pg_publish();
}


/*
 * The query's owner is going away (a request's pool is being destroyed: the
 * client broke its request off while the query waited or ran).  Nothing of
 * the query may be touched after this: it leaves the queue, its timer and a
 * failure already posted for it go, and a query already running is left to
 * the server (its function commits or rolls back as a whole) while the
 * connection reads its results and drops them, within db_timeout.  Its
 * handler is never called.  A no-op for a query the driver does not hold.
 */

void
ngx_http_payments_pg_cancel(ngx_http_payments_pg_query_t *q)
{
    ngx_http_payments_pg_conn_t  *pc;
    ngx_http_payments_pg_pool_t  *pool;

    /* every request's pool runs this: most hold nothing by then */
    if (!q->queued && q->conn == NULL && !q->timer.timer_set
        && !q->timer.posted)
    {
        return;
    }

    /* the query's shard: a held query was taken by its pool (pg_send) */
    pool = &ngx_http_payments_pg_pools[q->shard];

    /* a probe whose request went: the next query is the probe */
    ngx_http_payments_pg_breaker_unprobe(pool, q);

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (q->timer.posted) {
        ngx_delete_posted_event(&q->timer);
    }

    if (q->queued) {
        ngx_queue_remove(&q->queue);
        pool->nwaiting--;
        q->queued = 0;

        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "payments: a request went away while its database "
                      "query waited for a connection: the query is "
                      "withdrawn");
    }

    pc = q->conn;
    q->conn = NULL;

    if (pc != NULL && pc->query == q) {
        pc->query = NULL;

        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "payments: database connection %ui: a request went "
                      "away while its query ran: the answer will be dropped",
                      pc->index);

        if (pc->orphan.timer_set) {
            ngx_del_timer(&pc->orphan);
        }

        ngx_add_timer(&pc->orphan, pool->shard->db_timeout);
    }

    ngx_http_payments_pg_publish();
}


/* The results of a query whose request has gone are all in: dropped. */

static void
ngx_http_payments_pg_orphan_done(ngx_http_payments_pg_conn_t *pc)
{
    PGresult                     *res;
    ngx_http_payments_pg_pool_t  *pool = pc->pool;

    if (pc->orphan.timer_set) {
        ngx_del_timer(&pc->orphan);
    }

    /* a statement it was preparing is there now, plans it was discarding
     * are gone, as for any query */
    ngx_http_payments_pg_sent_dropped(pc);

    res = pc->result;
    pc->result = NULL;

    pc->state = NGX_HTTP_PAYMENTS_PG_IDLE;
    ngx_http_payments_pg_judge(pool, NULL, 1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "payments: database connection %ui: a gone request's "
                   "answer dropped", pc->index);

    /* its server may take no more, as for any answer */
    ngx_http_payments_pg_answered(pc, res);

    if (res) {
        PQclear(res);
    }

    ngx_http_payments_pg_publish();
}


/* pc, idle again, has had an answer (res, NULL when none): closed, with
 * the idle connections pg_leave names (_pg_health.c), when it says why */

static void
ngx_http_payments_pg_answered(ngx_http_payments_pg_conn_t *pc,
    PGresult *res)
{
    u_char                        going[80];
    ngx_uint_t                    i, others;
    const char                   *why;
    ngx_http_payments_pg_conn_t  *other;
    ngx_http_payments_pg_pool_t  *pool = pc->pool;

    why = ngx_http_payments_pg_leave(pc, res, going, sizeof(going), &others);
    if (why == NULL) {
        return;
    }

    ngx_http_payments_pg_fail(pc, why);

    for (i = 0; others && i < pool->nconns; i++) {
        other = &pool->conns[i];

        if (other != pc && other->state == NGX_HTTP_PAYMENTS_PG_IDLE
            && !other->read_only)
        {
            ngx_http_payments_pg_fail(other, "closed with another of the "
                                             "pool, whose server has "
                                             "turned read-only");
        }
    }
}


/* A gone request's query ran past db_timeout: as for any query, only
 * closing the connection stops it without blocking. */

static void
ngx_http_payments_pg_orphan_handler(ngx_event_t *ev)
{
    ngx_http_payments_pg_conn_t  *pc = ev->data;

    ngx_http_payments_pg_count(pc->pool, NGX_HTTP_PAYMENTS_DB_TIMEOUTS);
    ngx_http_payments_pg_fail(pc, "query timed out (its request had gone)");
}


/*
 * A failure may be found inside ngx_http_payments_pg_send() (the caller is
 * still on its stack) or while another request's query fails: answer from a
 * posted event, never re-entrantly.
 */

static void
ngx_http_payments_pg_defer_failure(ngx_http_payments_pg_query_t *q)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->conn = NULL;
    q->timer.handler = ngx_http_payments_pg_failure_handler;
    q->timer.data = q;
    q->timer.log = q->log;

    ngx_post_event(&q->timer, &ngx_posted_events);
}


static void
ngx_http_payments_pg_failure_handler(ngx_event_t *ev)
{
    ngx_http_payments_pg_query_t  *q = ev->data;

    q->handler(q, NULL);
}


/* one query with the request's parameters (ctx->params), answered later */

ngx_int_t
ngx_http_payments_query(ngx_http_payments_ctx_t *ctx, const char *sql,
    int nparams, ngx_http_payments_pg_handler_pt handler)
{
    ctx->query.sql = sql;
    ctx->query.nparams = nparams;
    ctx->query.values = ctx->params;
    ctx->query.handler = handler;
    ctx->query.data = ctx;
    ctx->query.log = ctx->request->connection->log;
    ctx->query.shard = ctx->shard;      /* the merchant's (auth, _shard.c) */

    return ngx_http_payments_pg_send(&ctx->query);
}
