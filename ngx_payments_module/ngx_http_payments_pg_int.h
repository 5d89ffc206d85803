
/*
 * Copyright (C) ngx_payments authors
 *
 * The PostgreSQL pools' own types, shared by their files: _pg.c (a pool
 * per shard, its connections and their events) and _pg_prepare.c (how a query is sent:
 * prepared statements).
 */


#ifndef _NGX_HTTP_PAYMENTS_PG_INT_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_PG_INT_H_INCLUDED_


#include <payments/breaker.h>


#define NGX_HTTP_PAYMENTS_PG_BACKOFF_MIN  250
#define NGX_HTTP_PAYMENTS_PG_BACKOFF_MAX  5000

/* statements prepared per connection; more are sent unnamed */
#define NGX_HTTP_PAYMENTS_PG_STATEMENTS   64


typedef enum {
    NGX_HTTP_PAYMENTS_PG_DOWN = 0,
    NGX_HTTP_PAYMENTS_PG_CONNECTING,
    NGX_HTTP_PAYMENTS_PG_IDLE,
    NGX_HTTP_PAYMENTS_PG_BUSY
} ngx_http_payments_pg_state_e;


typedef struct ngx_http_payments_pg_pool_s  ngx_http_payments_pg_pool_t;


typedef struct {
    ngx_http_payments_pg_pool_t        *pool;         /* its shard's */
    PGconn                             *pg;
    ngx_connection_t                   *c;
    ngx_http_payments_pg_state_e        state;
    ngx_http_payments_pg_query_t       *query;
    PGresult                           *result;
    ngx_event_t                         reconnect;
    ngx_event_t                         orphan;       /* bounds a running
                                                         query whose request
                                                         has gone */
    ngx_msec_t                          backoff;
    ngx_uint_t                          index;

    /* the hashes of the statements prepared on this connection */
    uint64_t                            prepared[NGX_HTTP_PAYMENTS_PG_STATEMENTS];
    ngx_uint_t                          nprepared;
    uint64_t                            preparing;    /* 0: none */
    /* when its plans were made: opened, or DISCARD PLANS answered */
    ngx_msec_t                          planned;
    unsigned                            by_name:1;    /* sent prepared */
    unsigned                            unnamed:1;    /* prepare no more */
    unsigned                            replanning:1; /* DISCARD PLANS sent,
                                                         pc->query next */
    unsigned                            read_only:1;  /* its server took no
                                                         writes when last
                                                         heard of */
    unsigned                            first:1;      /* the worker's first
                                                         connect, not failed:
                                                         queries may wait
                                                         for it */
} ngx_http_payments_pg_conn_t;


/* A shard's pool in one worker: its connections and the queries waiting
 * for one of them.  A shard's outage is its pool's alone. */
struct ngx_http_payments_pg_pool_s {
    ngx_http_payments_shard_t          *shard;        /* conninfo, sizes */
    ngx_uint_t                          index;        /* in pmcf->shards */
    ngx_http_payments_pg_conn_t        *conns;
    ngx_uint_t                          nconns;
    ngx_queue_t                         waiting;
    ngx_uint_t                          nwaiting;
    ngx_msec_t                          replan;      /* payments_database_
                                                        replan */
    ngx_log_t                          *log;
    /* the pay_pg_hint_e of the last login refused; NONE once one is up */
    ngx_uint_t                          hint;
    /* the shard's breaker in this worker (breaker=, breaker_open=): open,
     * its queries are refused at once; probe_q is the half-open probe
     * (compared, never followed: it may be gone) */
    pay_breaker_t                       breaker;
    pay_breaker_conf_t                  breaker_conf;
    ngx_http_payments_pg_query_t       *probe_q;
};


/* A pool per shard (pmcf->shards' order) in each worker process; set up in
 * init_process (_pg.c). */
extern ngx_http_payments_pg_pool_t  *ngx_http_payments_pg_pools;
extern ngx_uint_t                    ngx_http_payments_pg_npools;


/* _pg.c */
void ngx_http_payments_pg_fail(ngx_http_payments_pg_conn_t *pc,
    const char *why);
/* Sends what libpq holds of the query and sets the events for the rest:
 * NGX_OK all sent, NGX_AGAIN some left (the socket is watched for writing),
 * NGX_ERROR the connection has failed (pg_fail ran). */
ngx_int_t ngx_http_payments_pg_flush(ngx_http_payments_pg_conn_t *pc);

/* _pg_health.c, below _pg.c: what the pools tell the rest of the gateway.
 * pg_publish puts this worker's pool figures on /metrics; pg_count counts
 * a database event (the gateway's, and its shard's when there are
 * several); pg_pool_of is a shard's pool, or NULL.  The shard's breaker
 * (breaker=, breaker_open=; none for payments_database): breaker_allow
 * says whether q may go (and makes it the probe when half-open),
 * breaker_unprobe takes that back when q was not sent, breaker_result
 * records an outcome and says 1 when it opened the breaker just now (the
 * driver then refuses the queries waiting). */
void ngx_http_payments_pg_publish(void);
void ngx_http_payments_pg_count(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_db_e what);
ngx_http_payments_pg_pool_t *ngx_http_payments_pg_pool_of(ngx_uint_t shard);
ngx_int_t ngx_http_payments_pg_breaker_allow(
    ngx_http_payments_pg_pool_t *pool, ngx_http_payments_pg_query_t *q);
void ngx_http_payments_pg_breaker_unprobe(ngx_http_payments_pg_pool_t *pool,
    ngx_http_payments_pg_query_t *q);
ngx_uint_t ngx_http_payments_pg_breaker_result(
    ngx_http_payments_pg_pool_t *pool, ngx_http_payments_pg_query_t *q,
    ngx_uint_t success);
/* What a server says of itself (whether it takes writes: a standby, or
 * default_transaction_read_only on): pg_opened notes it of a connection
 * just opened (logged; the back-off starts over on a writable
 * server only); pg_leave why pc, idle
 * again after an answer, is to be closed and opened again (NULL: it stays;
 * *siblings: the pool's idle connections opened on a writable server go
 * with it; buf holds a reason it writes). */
void ngx_http_payments_pg_opened(ngx_http_payments_pg_conn_t *pc);
const char *ngx_http_payments_pg_leave(ngx_http_payments_pg_conn_t *pc,
    PGresult *res, u_char *buf, size_t size, ngx_uint_t *siblings);

/* _pg_socket.c, below _pg.c: the ngx_connection_t around libpq's socket,
 * made with the driver's event handler (NGX_ERROR: no socket, or no free
 * connection), its events set as libpq wants them (level-triggered), and
 * freed, never closed (libpq closes the socket); libpq's notices, logged. */
ngx_int_t ngx_http_payments_pg_wrap(ngx_http_payments_pg_conn_t *pc,
    ngx_event_handler_pt handler);
void ngx_http_payments_pg_unwrap(ngx_http_payments_pg_conn_t *pc);
ngx_int_t ngx_http_payments_pg_events(ngx_http_payments_pg_conn_t *pc,
    ngx_uint_t want_read, ngx_uint_t want_write);
void ngx_http_payments_pg_notice(void *arg, const PGresult *res);

/* _pg_prepare.c, below _pg.c: it sends pc->query (by name, prepared, or
 * unnamed; pg_begin sends DISCARD PLANS before it when the connection's
 * plans are pool->replan old) and says whether libpq took it, NGX_OK or
 * NGX_ERROR; the driver flushes, or fails the connection.  pg_sent_done
 * takes the answer to what was sent before the query itself (a prepare,
 * DISCARD PLANS) or to a statement sent by name; pg_sent_dropped the same
 * when the query's request has gone. */
ngx_int_t ngx_http_payments_pg_begin(ngx_http_payments_pg_conn_t *pc);
ngx_int_t ngx_http_payments_pg_execute(ngx_http_payments_pg_conn_t *pc,
    ngx_uint_t unnamed);
ngx_int_t ngx_http_payments_pg_sent_done(ngx_http_payments_pg_conn_t *pc);
void ngx_http_payments_pg_sent_dropped(ngx_http_payments_pg_conn_t *pc);


#endif /* _NGX_HTTP_PAYMENTS_PG_INT_H_INCLUDED_ */
