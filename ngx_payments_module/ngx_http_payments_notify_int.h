
/*
 * Copyright (C) ngx_payments authors
 *
 * Merchant notifications' notifier, shared by its two files: _notify.c,
 * the outbox's delivery (claims, POSTs, their records), and
 * _notify_gauges.c, the gauges of /metrics and the heartbeat that the
 * shard's worker reads and sends.  _notify.c arms the gauges' timer; the
 * gauges never call back into the delivery.
 */


#ifndef _NGX_HTTP_PAYMENTS_NOTIFY_INT_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_NOTIFY_INT_H_INCLUDED_


#include <payments/notify.h>


#define NGX_HTTP_PAYMENTS_NOTIFY_BEAT    60      /* s between heartbeats */


typedef struct ngx_http_payments_notifier_s  ngx_http_payments_notifier_t;


typedef struct {
    ngx_queue_t                         queue;
    ngx_pool_t                         *pool;
    ngx_http_payments_notifier_t       *nt;
    ngx_http_payments_fetch_t           fetch;
    ngx_http_payments_pg_query_t        query;
    const char                         *params[10];

    char                               *id;
    char                               *merchant;
    char                               *endpoint;
    char                               *lease;      /* the claim's
                                                       lease_until: its
                                                       record names it */
    ngx_uint_t                          attempts;
    ngx_http_payments_notify_outcome_e  outcome;
    ngx_event_t                         hold;       /* a graceful exit
                                                       waits for it */
    size_t                              answer_len; /* of the body read */
    long                                answer_status;  /* the 2xx of an
                                                           answer cut at
                                                           its limit */
    unsigned                            refused:1;  /* an address was */
    unsigned                            final:1;    /* no retry */
} ngx_http_payments_delivery_t;


struct ngx_http_payments_notifier_s {
    ngx_event_t                         timer;      /* the next claim */
    ngx_event_t                         stats;      /* the shard's worker:
                                                       gauges */
    ngx_log_t                          *log;
    ngx_http_payments_main_conf_t      *pmcf;
    ngx_uint_t                          shard;      /* in pmcf->shards:
                                                       every query's */
    ngx_http_payments_shard_t          *shard_conf; /* its gauges' (NULL:
                                                       one shard) */
    ngx_http_payments_notify_conf_t    *conf;

    ngx_http_payments_pg_query_t        claim;
    ngx_http_payments_pg_query_t        stats_query;
    ngx_http_payments_pg_query_t        beat_query;
    const char                         *params[4];
    const char                         *beat_params[1];
    char                                host[NGX_MAXHOSTNAMELEN + 1];
    time_t                              beat_at;    /* the last one sent */
    char                                limit[NGX_INT_T_LEN + 1];
    char                                lease[NGX_INT_T_LEN + 1];
    char                                owner[NGX_MAXHOSTNAMELEN + 32];
    char                                disable_after[NGX_INT_T_LEN + 1];
    char                                per_endpoint[NGX_INT_T_LEN + 1];

    ngx_queue_t                         deliveries; /* in flight */
    ngx_uint_t                          inflight;
    ngx_msec_t                          stats_every;
    unsigned                            claiming:1;
    unsigned                            counting:1;
    unsigned                            beating:1;
    unsigned                            delivers:1; /* payments_notify on */
    unsigned                            more:1;     /* the last claim was
                                                       full */
};


/* _notify_gauges.c: the stats timer's handler (ev->data: the notifier) */
void ngx_http_payments_notify_stats(ngx_event_t *ev);


#endif /* _NGX_HTTP_PAYMENTS_NOTIFY_INT_H_INCLUDED_ */
