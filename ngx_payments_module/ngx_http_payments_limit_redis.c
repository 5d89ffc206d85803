
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's Redis, the link's life: the zones that
 * say store=redis keep their state there, so that every gateway sharing
 * the Redis counts the same requests and amounts.  Each worker holds one
 * connection of nginx's own: the address was parsed, a name resolved,
 * when the configuration was read (ngx_parse_url(), as for an upstream
 * server); the connection is opened here by ngx_event_connect_peer() (a
 * non-blocking connect with a deadline), closed here, and connected again
 * by the link's timer.  What goes over it (the asks, the replies, hiredis
 * writing and parsing the protocol) is _limit_redis_proto.c's.  Nothing
 * here waits.
 *
 * The link's states: DOWN (a reconnect timer runs), CONNECTING (connect,
 * then AUTH and SCRIPT LOAD: up when the script's SHA comes back), UP.
 * A link connecting or stalled for a second is dropped and connected
 * again: at once on the next of a name's addresses, else after a second.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"
#include "ngx_http_payments_limit_redis_int.h"

#include <payments/ratelimit_redis.h>


static void ngx_http_payments_limit_redis_connect(
    ngx_http_payments_limit_link_t *link);
static void ngx_http_payments_limit_redis_close(
    ngx_http_payments_limit_link_t *link, const char *why,
    const char *detail);


/* connecting */


static void
ngx_http_payments_limit_redis_connect(ngx_http_payments_limit_link_t *link)
{
    u_char                                 text[NGX_MAX_ERROR_STR], *p;
    ngx_int_t                              rv;
    ngx_err_t                              err;
    ngx_addr_t                            *addr;
    ngx_connection_t                      *c;
    ngx_peer_connection_t                 *pc;
    ngx_http_payments_limit_redis_conf_t  *rc = link->conf;

    addr = &rc->addrs[link->addr % rc->naddrs];

    pc = &link->peer;
    ngx_memzero(pc, sizeof(ngx_peer_connection_t));

    pc->sockaddr = addr->sockaddr;
    pc->socklen = addr->socklen;
    pc->name = &addr->name;
    pc->get = ngx_event_get_peer;
    pc->log = &link->quiet;
    pc->log_error = NGX_ERROR_ERR;

    link->reader = pay_rl_redis_reader();
    if (link->reader == NULL) {
        ngx_http_payments_limit_redis_close(link, "is unreachable",
                                            "no memory");
        return;
    }

    /* a socket, a non-blocking connect(2) to an address: no name is
     * looked up here */
    rv = ngx_event_connect_peer(pc);
    err = ngx_socket_errno;

    if (rv != NGX_OK && rv != NGX_AGAIN) {
        p = text;

        if (rv == NGX_DECLINED && err) {
            p = ngx_strerror(err, text, sizeof(text) - 1);
        }

        *p = '\0';

        ngx_http_payments_limit_redis_close(link, "is unreachable",
                                            p == text ? NULL
                                                      : (const char *) text);
        return;
    }

    c = pc->connection;
    c->data = link;
    c->read->handler = ngx_http_payments_limit_redis_read;
    c->write->handler = ngx_http_payments_limit_redis_write;

#if (NGX_SSL)
    /* TLS first, once connected (_limit_redis_tls.c): its state lives in
     * the connection's pool */
    if (rc->ssl) {
        c->read->handler = ngx_http_payments_limit_redis_tls_connected;
        c->write->handler = ngx_http_payments_limit_redis_tls_connected;
        c->pool = ngx_create_pool(1024, &link->quiet);
    }
#endif

    /* small commands, one after the other: never held back by Nagle's
     * algorithm for the previous one's acknowledgement */
    if ((rc->tls && c->pool == NULL) || ngx_tcp_nodelay(c) != NGX_OK) {
        if (c->pool) {
            ngx_destroy_pool(c->pool);
        }

        ngx_close_connection(c);
        ngx_http_payments_limit_redis_close(link, "is unreachable",
                                            "TCP_NODELAY failed");
        return;
    }

    link->c = c;
    link->state = NGX_HTTP_PAYMENTS_REDIS_CONNECTING;
    link->connected = 0;
    link->handshaking = 0;
    link->stalled = 0;
    link->loading = 0;

    if (ngx_http_payments_limit_redis_handshake(link) != NGX_OK) {
        ngx_http_payments_limit_redis_close(link, "is unreachable",
                                            "no memory");
        return;
    }

    /* the connect's and the handshake's deadline */
    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);

    if (rv == NGX_OK) {
        if (!rc->tls) {
            link->connected = 1;
        }

        ngx_post_event(c->write, &ngx_posted_events);
    }
}


/*
 * The link goes: every command in flight gets no answer (its request goes
 * on without Redis), and a connect is tried again: at once on the next of
 * a name's addresses, else after a second.
 */

static void
ngx_http_payments_limit_redis_close(ngx_http_payments_limit_link_t *link,
    const char *why, const char *detail)
{
    ngx_pool_t  *pool;

    if (why) {
        ngx_http_payments_limit_redis_outage(link, why, detail);
    }

    if (link->state != NGX_HTTP_PAYMENTS_REDIS_UP) {
        link->addr++;
        link->failed++;
    }

    if (link->c) {
        pool = link->c->pool;

#if (NGX_SSL)
        if (link->c->ssl) {
            link->c->ssl->no_wait_shutdown = 1;
            (void) ngx_ssl_shutdown(link->c);
        }
#endif

        ngx_close_connection(link->c);
        link->c = NULL;

        if (pool) {
            ngx_destroy_pool(pool);
        }
    }

    if (link->reader) {
        redisReaderFree(link->reader);
        link->reader = NULL;
    }

    link->pos = link->start;
    link->last = link->start;
    link->state = NGX_HTTP_PAYMENTS_REDIS_DOWN;
    link->connected = 0;
    link->handshaking = 0;
    link->loading = 0;
    link->stalled = 0;
    link->generation++;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_http_payments_limit_redis_fail_asks(link);

    if (link->closing || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(&link->timer,
                  link->failed % link->conf->naddrs
                  ? 1 : NGX_HTTP_PAYMENTS_REDIS_RETRY);
}

/*
 * The link's timer: DOWN, connect again; CONNECTING, the connect or the
 * handshake took too long; UP and stalled, no answer came for a second:
 * drop it.
 */

static void
ngx_http_payments_limit_redis_timer(ngx_event_t *ev)
{
    ngx_http_payments_limit_link_t  *link = ev->data;

    if (link->closing || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    switch (link->state) {

    case NGX_HTTP_PAYMENTS_REDIS_DOWN:
        ngx_http_payments_limit_redis_connect(link);
        return;

    case NGX_HTTP_PAYMENTS_REDIS_CONNECTING:
        ngx_http_payments_limit_redis_close(link, link->connected
                                        ? "did not answer the handshake in "
                                          "time"
                                        : "did not accept the connection in "
                                          "time", NULL);
        return;

    default: /* UP */
        if (link->stalled) {
            ngx_log_error(NGX_LOG_INFO, link->log, 0,
                          "payments: limit store redis \"%V\" did not "
                          "answer for %d ms: connecting again",
                          &link->conf->name, NGX_HTTP_PAYMENTS_REDIS_RETRY);
            ngx_http_payments_limit_redis_close(link, NULL, NULL);
        }
    }
}



ngx_int_t
ngx_http_payments_limit_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_limit_link_t        *link;
    ngx_http_payments_limit_main_conf_t   *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_payments_limit_module);

    if (lmcf == NULL || lmcf->redis == NULL || lmcf->redis_zones == 0) {
        return NGX_OK;
    }

    link = &ngx_http_payments_limit_link;
    ngx_memzero(link, sizeof(ngx_http_payments_limit_link_t));

    link->conf = lmcf->redis;
    link->log = cycle->log;
    link->drop = ngx_http_payments_limit_redis_close;
    ngx_queue_init(&link->asks);

    /*
     * The connection logs at crit and above only: nginx's own "connect()
     * failed" at every try and its recv() and send() errors would repeat
     * what the one warn line per outage says.
     */
    link->quiet = *cycle->log;
    link->quiet.log_level = ngx_min(cycle->log->log_level, NGX_LOG_CRIT);

    link->timer.handler = ngx_http_payments_limit_redis_timer;
    link->timer.data = link;
    link->timer.log = cycle->log;
    link->timer.cancelable = 1;

    ngx_http_payments_limit_redis_connect(link);

    return NGX_OK;
}


void
ngx_http_payments_limit_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_limit_link_t  *link = &ngx_http_payments_limit_link;

    (void) cycle;

    if (link->conf == NULL) {
        return;
    }

    link->closing = 1;

    ngx_http_payments_limit_redis_close(link, NULL, NULL);

    if (link->start) {
        ngx_free(link->start);
        link->start = NULL;
    }

    link->conf = NULL;
}
