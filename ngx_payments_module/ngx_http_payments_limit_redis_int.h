
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's link to Redis, shared by its two files:
 * _limit_redis.c, the link's life (connect, close, the reconnect and stall
 * timer, a worker's start and exit), and _limit_redis_proto.c, the
 * protocol (the queue of asks, sending, the handshake's commands, reading
 * and parsing the replies, the checks' timers, the outage's log lines).
 * The life calls the protocol; the protocol drops the link only through
 * link->drop, so that the two files do not call each other both ways.
 * _limit_redis_tls.c, TLS on the link (nginx's OpenSSL layer), sits
 * between them: the life starts it, it hands the connection to the
 * protocol.  _limit_redis_cmd.c, below the protocol, formats the
 * commands into the output buffer and queues their asks.
 */


#ifndef _NGX_HTTP_PAYMENTS_LIMIT_REDIS_INT_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_LIMIT_REDIS_INT_H_INCLUDED_


#include <hiredis/hiredis.h>
#include <payments/ratelimit_redis.h>


#define NGX_HTTP_PAYMENTS_REDIS_DOWN        0
#define NGX_HTTP_PAYMENTS_REDIS_CONNECTING  1
#define NGX_HTTP_PAYMENTS_REDIS_UP          2

/* reconnect delay, and how long a connect with its handshake, or a stall,
 * may last */
#define NGX_HTTP_PAYMENTS_REDIS_RETRY       1000

/* what a worker may hold unsent (Redis reading slowly): past it, decide
 * without Redis */
#define NGX_HTTP_PAYMENTS_REDIS_OUT_MAX     (1024 * 1024)

/* what a reply answers */
#define NGX_HTTP_PAYMENTS_REDIS_AUTH        0
#define NGX_HTTP_PAYMENTS_REDIS_LOAD        1
#define NGX_HTTP_PAYMENTS_REDIS_RATE        2
#define NGX_HTTP_PAYMENTS_REDIS_WINDOW      3
#define NGX_HTTP_PAYMENTS_REDIS_PEEK        4   /* the failures guard's */
#define NGX_HTTP_PAYMENTS_REDIS_NOTE        5
#define NGX_HTTP_PAYMENTS_REDIS_FAILED      6


/* a command sent, until its reply (and a check's timer, for its request) */
struct ngx_http_payments_limit_ask_s {
    ngx_queue_t                           queue;
    ngx_event_t                           timer;
    ngx_http_payments_limit_redis_pt      handler;
    void                                 *data;
    ngx_uint_t                            kind;
    ngx_uint_t                            generation;
    uint64_t                              rate;     /* or a window's slot */
    uint64_t                              burst;    /* or its window */
    int64_t                               amount;
    uint64_t                              arg;      /* max, or idx (sub) */
    unsigned                              account:1;
    unsigned                              sub:1;
    unsigned                              evaled:1;   /* sent again: EVAL */
    unsigned                              gone:1;     /* its request no
                                                         longer waits */
    char                                  field;      /* a note's */
    size_t                                xlen;       /* after the key: a
                                                         note's value, the
                                                         windows' prefix */
    size_t                                klen;
    char                                  key[1];
};


typedef struct ngx_http_payments_limit_link_s {
    ngx_http_payments_limit_redis_conf_t  *conf;
    ngx_peer_connection_t                  peer;
    ngx_connection_t                      *c;
    redisReader                           *reader;
    ngx_queue_t                            asks;       /* sent, in order */
    u_char                                *start;      /* not sent yet */
    u_char                                *pos;
    u_char                                *last;
    u_char                                *end;
    ngx_event_t                            timer;
    ngx_log_t                             *log;
    ngx_log_t                              quiet;      /* the connection's */
    ngx_uint_t                             state;
    ngx_uint_t                             generation;
    ngx_uint_t                             addr;       /* the one to try */
    ngx_uint_t                             failed;     /* tries since up */
    ngx_uint_t                             fallbacks;  /* in this outage */
    ngx_msec_t                             since;
    unsigned                               connected:1;
    unsigned                               loading:1;
    unsigned                               stalled:1;
    unsigned                               outage:1;
    unsigned                               closing:1;
    unsigned                               handshaking:1;  /* TLS's */

    /* the life's close (_limit_redis.c): the protocol drops the link
     * through it, and never calls that file */
    void                                 (*drop)(
        struct ngx_http_payments_limit_link_s *link, const char *why,
        const char *detail);
} ngx_http_payments_limit_link_t;


extern ngx_http_payments_limit_link_t  ngx_http_payments_limit_link;


ngx_int_t ngx_http_payments_limit_redis_send(
    ngx_http_payments_limit_link_t *link, ngx_http_payments_limit_ask_t *ask,
    int argc, const char **argv, const size_t *argvlen);
ngx_http_payments_limit_ask_t *ngx_http_payments_limit_redis_ask(
    ngx_http_payments_limit_link_t *link, ngx_uint_t kind, size_t klen,
    ngx_log_t *log);
void ngx_http_payments_limit_redis_cmd(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask, pay_rl_redis_cmd_t *cmd);
ngx_int_t ngx_http_payments_limit_redis_eval(
    ngx_http_payments_limit_link_t *link, ngx_http_payments_limit_ask_t *ask);
ngx_int_t ngx_http_payments_limit_redis_give_back(
    ngx_http_payments_limit_link_t *link, ngx_http_payments_limit_ask_t *ask,
    ngx_uint_t fits, uint64_t w);

ngx_int_t ngx_http_payments_limit_redis_handshake(
    ngx_http_payments_limit_link_t *link);
ngx_int_t ngx_http_payments_limit_redis_test_connect(
    ngx_http_payments_limit_link_t *link);
void ngx_http_payments_limit_redis_read(ngx_event_t *rev);
void ngx_http_payments_limit_redis_write(ngx_event_t *wev);
void ngx_http_payments_limit_redis_outage(ngx_http_payments_limit_link_t *link,
    const char *why, const char *detail);
void ngx_http_payments_limit_redis_fail_asks(
    ngx_http_payments_limit_link_t *link);
#if (NGX_SSL)
void ngx_http_payments_limit_redis_tls_connected(ngx_event_t *ev);
#endif


#endif /* _NGX_HTTP_PAYMENTS_LIMIT_REDIS_INT_H_INCLUDED_ */
