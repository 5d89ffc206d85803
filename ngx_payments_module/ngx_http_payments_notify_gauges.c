
/*
 * Copyright (C) ngx_payments authors
 *
 * Merchant notifications: the gauges of /metrics (pay_notify_stats) that
 * every gateway with a database reads, and the heartbeat
 * (pay_notify_heartbeat) the shard's worker of a delivering gateway sends
 * about once a minute, so that the tools can tell when no gateway
 * delivers (doc/NOTIFICATIONS.md).  The shard's worker arms the stats
 * timer (_notify.c); both queries are background ones: an idle
 * connection or nothing, never a request's place in the queue.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_notify_int.h"


static void ngx_http_payments_notify_counted(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_notify_beat(ngx_http_payments_notifier_t *nt);
static void ngx_http_payments_notify_beaten(ngx_http_payments_pg_query_t *q,
    PGresult *res);


/* the shard's worker: the gauges of /metrics, from the shard */

void
ngx_http_payments_notify_stats(ngx_event_t *ev)
{
    ngx_http_payments_notifier_t  *nt = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (nt->counting) {
        ngx_add_timer(&nt->stats, nt->stats_every);
        return;
    }

    ngx_memzero(&nt->stats_query, sizeof(ngx_http_payments_pg_query_t));
    nt->stats_query.sql = "SELECT pending, oldest_pending_seconds, failed, "
                          "endpoints_disabled FROM pay_notify_stats()";
    nt->stats_query.handler = ngx_http_payments_notify_counted;
    nt->stats_query.data = nt;
    nt->stats_query.log = nt->log;
    nt->stats_query.shard = nt->shard;
    nt->stats_query.background = 1;

    if (ngx_http_payments_pg_send(&nt->stats_query) != NGX_OK) {
        ngx_add_timer(&nt->stats, nt->stats_every);
        return;
    }

    nt->counting = 1;
}


static void
ngx_http_payments_notify_counted(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                            i;
    ngx_int_t                      v[4];
    ngx_http_payments_notifier_t  *nt = q->data;

    nt->counting = 0;

    if (nt->pmcf == NULL) {
        return;
    }

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
        && PQnfields(res) == 4)
    {
        for (i = 0; i < 4; i++) {
            v[i] = PQgetisnull(res, 0, i)
                   ? 0 : ngx_atoi((u_char *) PQgetvalue(res, 0, i),
                                  PQgetlength(res, 0, i));
        }

        if (v[0] != NGX_ERROR && v[1] != NGX_ERROR && v[2] != NGX_ERROR
            && v[3] != NGX_ERROR)
        {
            for (i = 0; i < 4; i++) {
                ngx_http_payments_metrics_gauge(nt->shard_conf,
                                          NGX_HTTP_PAYMENTS_SG_NOTIFY_PENDING
                                          + i, (ngx_atomic_uint_t) v[i]);
            }
        }

    } else if (res) {
        ngx_log_error(NGX_LOG_ERR, nt->log, 0,
                      "payments: pay_notify_stats: %s",
                      PQresultErrorMessage(res));
    }

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (nt->delivers && !nt->beating
        && ngx_time() - nt->beat_at >= NGX_HTTP_PAYMENTS_NOTIFY_BEAT)
    {
        ngx_http_payments_notify_beat(nt);
    }

    ngx_add_timer(&nt->stats, nt->stats_every);
}


/* the shard's worker of a delivering gateway: "this host delivers", about
 * once a minute; a failure is tried again at the next round of the
 * gauges */

static void
ngx_http_payments_notify_beat(ngx_http_payments_notifier_t *nt)
{
    ngx_memzero(&nt->beat_query, sizeof(ngx_http_payments_pg_query_t));
    nt->beat_params[0] = nt->host;
    nt->beat_query.sql = "SELECT pay_notify_heartbeat($1)";
    nt->beat_query.nparams = 1;
    nt->beat_query.values = nt->beat_params;
    nt->beat_query.handler = ngx_http_payments_notify_beaten;
    nt->beat_query.data = nt;
    nt->beat_query.log = nt->log;
    nt->beat_query.shard = nt->shard;
    nt->beat_query.background = 1;

    if (ngx_http_payments_pg_send(&nt->beat_query) == NGX_OK) {
        nt->beating = 1;
    }
}


static void
ngx_http_payments_notify_beaten(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_notifier_t  *nt = q->data;

    nt->beating = 0;

    if (nt->pmcf == NULL) {
        return;
    }

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        nt->beat_at = ngx_time();

    } else if (res) {
        ngx_log_error(NGX_LOG_ERR, nt->log, 0,
                      "payments: pay_notify_heartbeat: %s",
                      PQresultErrorMessage(res));
    }
}
