/*
 * Copyright (C) ngx_payments authors
 *
 * Each shard's housekeeping, on timers in the shard's worker (shard i in
 * worker i mod worker_processes: worker 0 for payments_database):
 * idempotency keys past their TTL purged (pay_purge) and then the
 * EXECUTING checkouts' gauges read (pay_executing_stats), once a minute;
 * the sellers' wallet credits folded into their balances
 * (pay_wallets_fold), every second.  Each is one query through the driver
 * (_pg.c) to that shard; a shard that is down only delays its own next
 * run.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_metrics.h"


typedef struct {
    ngx_uint_t                      shard;      /* in pmcf->shards */
    ngx_http_payments_shard_t      *shard_conf; /* its gauges' (NULL: one
                                                   shard) */
    ngx_event_t                     purge_timer;
    ngx_event_t                     fold_timer;
    ngx_http_payments_pg_query_t    purge_query;
    ngx_http_payments_pg_query_t    stats_query;
    ngx_http_payments_pg_query_t    fold_query;
} ngx_http_payments_housekeeper_t;


static void ngx_http_payments_housekeeping_send(
    ngx_http_payments_housekeeper_t *hk, ngx_event_t *ev,
    ngx_http_payments_pg_query_t *q, const char *sql, int nparams,
    const char **values, ngx_http_payments_pg_handler_pt handler,
    ngx_msec_t retry);
static ngx_int_t ngx_http_payments_housekeeping_count(
    ngx_http_payments_pg_query_t *q, PGresult *res, const char *what);
static void ngx_http_payments_housekeeping_timer(ngx_cycle_t *cycle,
    ngx_event_t *ev, ngx_event_handler_pt handler, ngx_msec_t after);
static void ngx_http_payments_purge(ngx_event_t *ev);
static void ngx_http_payments_purge_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_stats_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_fold(ngx_event_t *ev);
static void ngx_http_payments_fold_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);


/* a shard's worker purges its idempotency keys past their TTL a second
 * after it starts, then a batch a minute, and again a second later after
 * a full batch */
#define NGX_HTTP_PAYMENTS_PURGE_EVERY  60000
#define NGX_HTTP_PAYMENTS_PURGE_BATCH  1000
#define NGX_HTTP_PAYMENTS_PURGE_SOON   1000

static const char                   *ngx_http_payments_purge_params[1] = {
    ngx_value(NGX_HTTP_PAYMENTS_PURGE_BATCH)
};

/* and folds the sellers' wallet credits into their balances
 * (pay_wallets_fold), a batch a second, at once again after a
 * full batch */
#define NGX_HTTP_PAYMENTS_FOLD_EVERY  1000
#define NGX_HTTP_PAYMENTS_FOLD_BATCH  20000

static const char                   *ngx_http_payments_fold_params[1] = {
    ngx_value(NGX_HTTP_PAYMENTS_FOLD_BATCH)
};


void
ngx_http_payments_housekeeping_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_http_payments_shard_t        *shard;
    ngx_http_payments_housekeeper_t  *hk;
    ngx_http_payments_main_conf_t    *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_payments_module);
    if (pmcf == NULL || pmcf->shards->nelts == 0) {
        return;
    }

    shard = pmcf->shards->elts;

    for (i = 0; i < pmcf->shards->nelts; i++) {
        if (!ngx_http_payments_shard_mine(cycle, i)) {
            continue;
        }

        /* the worker's: gone with the process (its cycle's pool) */
        hk = ngx_pcalloc(cycle->pool, sizeof(ngx_http_payments_housekeeper_t));
        if (hk == NULL) {
            return;
        }

        hk->shard = i;
        hk->shard_conf = pmcf->shards->nelts > 1 ? &shard[i] : NULL;

        ngx_http_payments_housekeeping_timer(cycle, &hk->purge_timer,
                                             ngx_http_payments_purge,
                                             NGX_HTTP_PAYMENTS_PURGE_SOON);
        ngx_http_payments_housekeeping_timer(cycle, &hk->fold_timer,
                                             ngx_http_payments_fold,
                                             NGX_HTTP_PAYMENTS_FOLD_EVERY);
    }
}


/* a timer's data is the dumb connection nginx's debug log wants
 * (ngx_http_payments_timer_data): its handler finds its housekeeper from
 * the event's place in it */
static void
ngx_http_payments_housekeeping_timer(ngx_cycle_t *cycle, ngx_event_t *ev,
    ngx_event_handler_pt handler, ngx_msec_t after)
{
    ngx_memzero(ev, sizeof(ngx_event_t));
    ngx_http_payments_timer_data(ev);
    ev->handler = handler;
    ev->log = cycle->log;
    ev->cancelable = 1;
    ngx_add_timer(ev, after);
}


/* sql sent on q to hk's shard, the answer to handler; when the shard
 * cannot take it now, ev runs again after retry; nothing new once the
 * worker is exiting */
static void
ngx_http_payments_housekeeping_send(ngx_http_payments_housekeeper_t *hk,
    ngx_event_t *ev, ngx_http_payments_pg_query_t *q, const char *sql,
    int nparams, const char **values,
    ngx_http_payments_pg_handler_pt handler, ngx_msec_t retry)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_memzero(q, sizeof(ngx_http_payments_pg_query_t));
    q->sql = sql;
    q->nparams = nparams;
    q->values = values;
    q->handler = handler;
    q->data = hk;
    q->log = ev->log;
    q->shard = hk->shard;

    /*
     * An idle connection or its next round: housekeeping never takes a
     * request's place in the queue.  Queued behind a connection held by a
     * slow query, a fold each second would fill a small queue and turn the
     * requests after it away (503) while the fold itself waits.
     */
    q->background = 1;

    if (ngx_http_payments_pg_send(q) != NGX_OK) {
        ngx_add_timer(ev, retry);
    }
}


/* the one integer a pay_* function answered (what), or NGX_ERROR (after
 * logging the store's error, if it sent one) */
static ngx_int_t
ngx_http_payments_housekeeping_count(ngx_http_payments_pg_query_t *q,
    PGresult *res, const char *what)
{
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        return ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    }

    if (res) {
        ngx_log_error(NGX_LOG_ERR, q->log, 0, "payments: %s: %s", what,
                      PQresultErrorMessage(res));
    }

    return NGX_ERROR;
}


static void
ngx_http_payments_fold(ngx_event_t *ev)
{
    ngx_http_payments_housekeeper_t  *hk;

    hk = (ngx_http_payments_housekeeper_t *)
             ((u_char *) ev - offsetof(ngx_http_payments_housekeeper_t,
                                       fold_timer));

    ngx_http_payments_housekeeping_send(hk, ev, &hk->fold_query,
                                        "SELECT pay_wallets_fold($1)", 1,
                                        ngx_http_payments_fold_params,
                                        ngx_http_payments_fold_done,
                                        NGX_HTTP_PAYMENTS_FOLD_EVERY);
}


static void
ngx_http_payments_fold_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_int_t                         n;
    ngx_http_payments_housekeeper_t  *hk = q->data;

    n = ngx_http_payments_housekeeping_count(q, res, "pay_wallets_fold");

    if (n != NGX_ERROR) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, q->log, 0,
                       "payments: folded %i wallet credits (shard %ui)", n,
                       hk->shard);

        ngx_http_payments_metrics_gauge(hk->shard_conf,
                                        NGX_HTTP_PAYMENTS_SG_WALLET_FOLD_AT,
                                        (ngx_atomic_uint_t) ngx_time());
    }

    /* a full batch: more are waiting, go on at once */
    ngx_add_timer(&hk->fold_timer,
                  n == NGX_HTTP_PAYMENTS_FOLD_BATCH
                  ? 1 : NGX_HTTP_PAYMENTS_FOLD_EVERY);
}


static void
ngx_http_payments_purge(ngx_event_t *ev)
{
    ngx_http_payments_housekeeper_t  *hk;

    hk = (ngx_http_payments_housekeeper_t *)
             ((u_char *) ev - offsetof(ngx_http_payments_housekeeper_t,
                                       purge_timer));

    ngx_http_payments_housekeeping_send(hk, ev, &hk->purge_query,
                                        "SELECT pay_purge($1)", 1,
                                        ngx_http_payments_purge_params,
                                        ngx_http_payments_purge_done,
                                        NGX_HTTP_PAYMENTS_PURGE_EVERY);
}


static void
ngx_http_payments_purge_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_int_t                         n;
    ngx_http_payments_housekeeper_t  *hk = q->data;

    n = ngx_http_payments_housekeeping_count(q, res, "pay_purge");

    if (n > 0) {
        ngx_log_error(NGX_LOG_INFO, q->log, 0,
                      "payments: purged %i expired idempotency keys and "
                      "notifications delivered over 30 days ago", n);
    }

    /* a full batch (of either kind): more may be waiting, go on soon */
    if (n >= NGX_HTTP_PAYMENTS_PURGE_BATCH) {
        ngx_add_timer(&hk->purge_timer, NGX_HTTP_PAYMENTS_PURGE_SOON);
        return;
    }

    /* then what /metrics reports of the checkouts still EXECUTING (a query
     * of its own: q is still the driver's while this handler runs) */
    ngx_http_payments_housekeeping_send(hk, &hk->purge_timer,
        &hk->stats_query,
        "SELECT executing, oldest_seconds FROM pay_executing_stats()", 0, NULL,
        ngx_http_payments_stats_done, NGX_HTTP_PAYMENTS_PURGE_EVERY);
}


static void
ngx_http_payments_stats_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_int_t                         executing, oldest;
    ngx_http_payments_housekeeper_t  *hk = q->data;

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        executing = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                             PQgetlength(res, 0, 0));
        oldest = ngx_atoi((u_char *) PQgetvalue(res, 0, 1),
                          PQgetlength(res, 0, 1));

        if (executing != NGX_ERROR && oldest != NGX_ERROR) {
            ngx_http_payments_metrics_gauge(hk->shard_conf,
                                            NGX_HTTP_PAYMENTS_SG_EXECUTING,
                                            (ngx_atomic_uint_t) executing);
            ngx_http_payments_metrics_gauge(hk->shard_conf,
                                        NGX_HTTP_PAYMENTS_SG_EXECUTING_OLDEST,
                                        (ngx_atomic_uint_t) oldest);
        }

    } else if (res) {
        ngx_log_error(NGX_LOG_ERR, q->log, 0,
                      "payments: pay_executing_stats: %s",
                      PQresultErrorMessage(res));
    }

    ngx_add_timer(&hk->purge_timer, NGX_HTTP_PAYMENTS_PURGE_EVERY);
}
