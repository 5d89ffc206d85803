
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's Redis: the request-rate zones that say
 * store=redis keep their buckets there, so that every gateway sharing the
 * Redis counts the same requests.  Each worker holds one connection,
 * driven by hiredis's asynchronous API on nginx's event loop: the adapter
 * below hands hiredis's socket to an ngx_connection_t (level-triggered
 * read and write events, as the PostgreSQL driver does) and nothing here
 * ever waits.  A check is one EVALSHA of the core's script (src/
 * ratelimit_redis.c), atomic in Redis; its answer comes back through the
 * event loop, or its timer fires first, and the request goes on either way.
 *
 * The link's states: DOWN (a reconnect timer runs), CONNECTING (AUTH and
 * SCRIPT LOAD sent: up when the script's SHA comes back), UP.  While it is
 * not up, or stalled (a check timed out and no answer came since), a check
 * is not sent: the zone decides without Redis at once, as its on_error=
 * says.  A link stalled or connecting for a second is dropped and
 * connected again.  An outage is logged once at warn when it starts and
 * once when Redis answers again; never a key, never the password.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <payments/ratelimit_redis.h>


#define NGX_HTTP_PAYMENTS_REDIS_DOWN        0
#define NGX_HTTP_PAYMENTS_REDIS_CONNECTING  1
#define NGX_HTTP_PAYMENTS_REDIS_UP          2

/* reconnect delay, and how long a handshake or a stall may last */
#define NGX_HTTP_PAYMENTS_REDIS_RETRY       1000


struct ngx_http_payments_limit_ask_s {
    ngx_event_t                           timer;
    ngx_http_payments_limit_redis_pt      handler;
    void                                 *data;
    ngx_uint_t                            generation;
};


typedef struct {
    ngx_http_payments_limit_redis_conf_t  *conf;
    redisAsyncContext                     *ac;
    ngx_connection_t                      *c;
    ngx_event_t                            timer;
    ngx_log_t                             *log;
    ngx_uint_t                             state;
    ngx_uint_t                             generation;
    ngx_uint_t                             fallbacks;  /* in this outage */
    ngx_msec_t                             since;
    unsigned                               stalled:1;
    unsigned                               outage:1;
    unsigned                               closing:1;
} ngx_http_payments_limit_link_t;


static void ngx_http_payments_limit_redis_connect(
    ngx_http_payments_limit_link_t *link);
static void ngx_http_payments_limit_redis_load(
    ngx_http_payments_limit_link_t *link);
static void ngx_http_payments_limit_redis_timer(ngx_event_t *ev);
static void ngx_http_payments_limit_redis_outage(
    ngx_http_payments_limit_link_t *link, const char *why,
    const char *detail);


static ngx_http_payments_limit_link_t  ngx_http_payments_limit_link;


/* the adapter: hiredis's event hooks on an ngx_connection_t */


static void
ngx_http_payments_limit_redis_event(ngx_event_t *ev)
{
    ngx_connection_t                *c = ev->data;
    ngx_http_payments_limit_link_t  *link = c->data;

    /* hiredis may free the context in there (the peer went): the cleanup
     * hook then clears link->ac, and c is gone; touch neither after */

    if (link->ac == NULL) {
        return;
    }

    if (ev->write) {
        redisAsyncHandleWrite(link->ac);

    } else {
        redisAsyncHandleRead(link->ac);
    }
}


static void
ngx_http_payments_limit_redis_want(void *data, ngx_uint_t write,
    ngx_uint_t on)
{
    ngx_http_payments_limit_link_t  *link = data;

    ngx_event_t  *ev;

    if (link->c == NULL) {
        return;
    }

    ev = write ? link->c->write : link->c->read;

    if (on && !ev->active) {
        if (ngx_add_event(ev, write ? NGX_WRITE_EVENT : NGX_READ_EVENT,
                          NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, link->log, 0,
                          "payments: limit store: could not add an event");
        }

    } else if (!on && ev->active) {
        (void) ngx_del_event(ev, write ? NGX_WRITE_EVENT : NGX_READ_EVENT,
                             0);
    }
}


static void
ngx_http_payments_limit_redis_add_read(void *data)
{
    ngx_http_payments_limit_redis_want(data, 0, 1);
}


static void
ngx_http_payments_limit_redis_del_read(void *data)
{
    ngx_http_payments_limit_redis_want(data, 0, 0);
}


static void
ngx_http_payments_limit_redis_add_write(void *data)
{
    ngx_http_payments_limit_redis_want(data, 1, 1);
}


static void
ngx_http_payments_limit_redis_del_write(void *data)
{
    ngx_http_payments_limit_redis_want(data, 1, 0);
}


/*
 * hiredis frees the context (an error, the peer gone, our own free): its
 * socket is still open here and closed right after, so the events are
 * taken out of epoll now.  The asks it held were answered NULL before.
 */

static void
ngx_http_payments_limit_redis_cleanup(void *data)
{
    ngx_http_payments_limit_link_t  *link = data;

    ngx_connection_t  *c = link->c;

    if (!link->closing && link->ac != NULL) {
        ngx_http_payments_limit_redis_outage(link, "closed the connection",
                                             link->ac->err
                                             ? link->ac->errstr : NULL);
    }

    if (c != NULL) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
    }

    link->c = NULL;
    link->ac = NULL;
    link->state = NGX_HTTP_PAYMENTS_REDIS_DOWN;
    link->stalled = 0;
    link->generation++;

    if (link->closing || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);
}


/* outages: one line when one starts, one when it ends */


static void
ngx_http_payments_limit_redis_outage(ngx_http_payments_limit_link_t *link,
    const char *why, const char *detail)
{
    if (link->outage) {
        return;
    }

    link->outage = 1;
    link->since = ngx_current_msec;
    link->fallbacks = 0;

    ngx_log_error(NGX_LOG_WARN, link->log, 0,
                  "payments: limit store redis \"%V\" %s%s%s: zones with "
                  "store=redis decide without it, as their on_error= says, "
                  "until it answers", &link->conf->name, why,
                  detail ? ": " : "", detail ? detail : "");
}


static void
ngx_http_payments_limit_redis_answers(ngx_http_payments_limit_link_t *link)
{
    link->stalled = 0;

    if (!link->outage) {
        return;
    }

    link->outage = 0;

    ngx_log_error(NGX_LOG_WARN, link->log, 0,
                  "payments: limit store redis \"%V\" answers again after "
                  "%M ms; %ui checks of this worker were decided without it",
                  &link->conf->name, ngx_current_msec - link->since,
                  link->fallbacks);
}


/* an error reply's text, cut: Redis's own words, never a key of ours */

static const char *
ngx_http_payments_limit_redis_errstr(const redisReply *reply, u_char *buf,
    size_t size)
{
    size_t  n;

    if (reply == NULL || reply->str == NULL) {
        return "no answer";
    }

    n = ngx_min(reply->len, size - 1);
    ngx_memcpy(buf, reply->str, n);
    buf[n] = '\0';

    return (const char *) buf;
}


/* the handshake: AUTH, then SCRIPT LOAD, whose SHA must be ours */


static void
ngx_http_payments_limit_redis_authed(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char                           buf[96];
    redisReply                      *reply = r;
    ngx_http_payments_limit_link_t  *link = ac->ev.data;

    (void) privdata;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        /* the reply names no password: "WRONGPASS ...", "ERR ..." */
        ngx_http_payments_limit_redis_outage(link, "refused the password "
            "(AUTH)", ngx_http_payments_limit_redis_errstr(reply, buf,
                                                           sizeof(buf)));
    }
}


static void
ngx_http_payments_limit_redis_loaded(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char                           buf[96];
    redisReply                      *reply = r;
    ngx_http_payments_limit_link_t  *link = ac->ev.data;

    (void) privdata;

    if (reply == NULL) {
        return;
    }

    if (reply->type != REDIS_REPLY_STRING
        || reply->len != PAY_RL_REDIS_SHA_LEN
        || ngx_strncmp(reply->str, link->conf->sha, PAY_RL_REDIS_SHA_LEN)
           != 0)
    {
        ngx_http_payments_limit_redis_outage(link, "did not load the "
            "script", ngx_http_payments_limit_redis_errstr(reply, buf,
                                                           sizeof(buf)));
        return;
    }

    if (link->state == NGX_HTTP_PAYMENTS_REDIS_CONNECTING) {
        link->state = NGX_HTTP_PAYMENTS_REDIS_UP;

        if (link->timer.timer_set) {
            ngx_del_timer(&link->timer);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, link->log, 0,
                       "payments: limit store redis \"%V\" up",
                       &link->conf->name);

        ngx_http_payments_limit_redis_answers(link);
    }
}


static void
ngx_http_payments_limit_redis_connect(ngx_http_payments_limit_link_t *link)
{
    const char                            *argv[2];
    size_t                                 argvlen[2];
    redisAsyncContext                     *ac;
    ngx_connection_t                      *c;
    ngx_http_payments_limit_redis_conf_t  *rc = link->conf;

    /* an address, never a name: the connect is a non-blocking connect(2)
     * and getaddrinfo() of a numeric host asks no resolver */

    if (rc->path.len) {
        ac = redisAsyncConnectUnix((const char *) rc->path.data);

    } else {
        ac = redisAsyncConnect((const char *) rc->host.data, (int) rc->port);
    }

    if (ac == NULL || ac->err) {
        ngx_http_payments_limit_redis_outage(link, "is unreachable",
                                             ac ? ac->errstr : "no memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);
        return;
    }

    c = ngx_get_connection(ac->c.fd, link->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);
        return;
    }

    c->data = link;
    c->read->handler = ngx_http_payments_limit_redis_event;
    c->write->handler = ngx_http_payments_limit_redis_event;
    c->read->log = link->log;
    c->write->log = link->log;

    link->c = c;
    link->ac = ac;
    link->state = NGX_HTTP_PAYMENTS_REDIS_CONNECTING;
    link->stalled = 0;

    ac->ev.data = link;
    ac->ev.addRead = ngx_http_payments_limit_redis_add_read;
    ac->ev.delRead = ngx_http_payments_limit_redis_del_read;
    ac->ev.addWrite = ngx_http_payments_limit_redis_add_write;
    ac->ev.delWrite = ngx_http_payments_limit_redis_del_write;
    ac->ev.cleanup = ngx_http_payments_limit_redis_cleanup;

    if (rc->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (const char *) rc->password.data;
        argvlen[1] = rc->password.len;

        (void) redisAsyncCommandArgv(ac,
                                     ngx_http_payments_limit_redis_authed,
                                     NULL, 2, argv, argvlen);
    }

    ngx_http_payments_limit_redis_load(link);
}


/* SCRIPT LOAD, with the handshake's deadline */

static void
ngx_http_payments_limit_redis_load(ngx_http_payments_limit_link_t *link)
{
    const char  *argv[3];
    size_t       argvlen[3];

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = pay_rl_redis_script;
    argvlen[2] = ngx_strlen(pay_rl_redis_script);

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    if (redisAsyncCommandArgv(link->ac, ngx_http_payments_limit_redis_loaded,
                              NULL, 3, argv, argvlen)
        != REDIS_OK)
    {
        /* the context is going: its cleanup sets the retry */
        return;
    }

    ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);
}


/*
 * The link's timer: DOWN, connect again; CONNECTING, the handshake took
 * too long; UP and stalled, no answer came for a second: drop it.
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
        ngx_http_payments_limit_redis_outage(link, "did not answer the "
                                             "handshake in time", NULL);
        redisAsyncFree(link->ac);
        return;

    default: /* UP */
        if (link->stalled) {
            ngx_log_error(NGX_LOG_INFO, link->log, 0,
                          "payments: limit store redis \"%V\" did not "
                          "answer for %d ms: connecting again",
                          &link->conf->name, NGX_HTTP_PAYMENTS_REDIS_RETRY);
            redisAsyncFree(link->ac);
        }
    }
}


/* checks */


static void
ngx_http_payments_limit_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char                            buf[96];
    uint64_t                          w;
    ngx_int_t                         rc;
    redisReply                       *reply = r;
    pay_rl_redis_rc_e                 verdict;
    ngx_http_payments_limit_ask_t    *ask = privdata;
    ngx_http_payments_limit_link_t   *link = ac->ev.data;
    ngx_http_payments_limit_redis_pt  handler;

    w = 0;
    verdict = pay_rl_redis_answer(reply, &w);

    if (reply == NULL) {
        /* the connection goes: no check is sent on it any more */
        link->state = NGX_HTTP_PAYMENTS_REDIS_DOWN;
        ngx_http_payments_limit_redis_outage(link, "closed the connection",
                                             ac->errstr[0] ? ac->errstr
                                                           : NULL);

    } else if (verdict == PAY_RL_REDIS_FITS || verdict == PAY_RL_REDIS_BUSY) {
        ngx_http_payments_limit_redis_answers(link);

    } else {
        ngx_http_payments_limit_redis_outage(link, "answered an error",
            ngx_http_payments_limit_redis_errstr(reply, buf, sizeof(buf)));

        if (verdict == PAY_RL_REDIS_NOSCRIPT
            && link->state == NGX_HTTP_PAYMENTS_REDIS_UP)
        {
            /* SCRIPT FLUSH: load it again, and be up once it is */
            link->state = NGX_HTTP_PAYMENTS_REDIS_CONNECTING;
            ngx_http_payments_limit_redis_load(link);
        }
    }

    if (ask == NULL) {
        return;
    }

    if (ask->timer.timer_set) {
        ngx_del_timer(&ask->timer);
    }

    handler = ask->handler;

    if (handler) {
        rc = verdict == PAY_RL_REDIS_FITS ? NGX_OK
             : verdict == PAY_RL_REDIS_BUSY ? NGX_BUSY : NGX_ERROR;

        handler(ask->data, rc, (ngx_msec_t) w);
    }

    ngx_free(ask);
}


static void
ngx_http_payments_limit_redis_expired(ngx_event_t *ev)
{
    ngx_http_payments_limit_ask_t     *ask = ev->data;
    ngx_http_payments_limit_link_t    *link = &ngx_http_payments_limit_link;
    ngx_http_payments_limit_redis_pt   handler;

    /* the ask stays queued in hiredis: its answer, if one comes, finds no
     * handler and is dropped */

    if (!link->stalled && ask->generation == link->generation) {
        link->stalled = 1;

        ngx_http_payments_limit_redis_outage(link, "did not answer in time",
                                             NULL);

        if (link->timer.timer_set) {
            ngx_del_timer(&link->timer);
        }

        ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);
    }

    handler = ask->handler;
    ask->handler = NULL;

    if (handler) {
        handler(ask->data, NGX_ERROR, 0);
    }
}


/*
 * One request against a bucket in Redis.  NGX_OK: sent; with a handler, it
 * is called once, from the event loop (NGX_OK fits, NGX_BUSY with the wait,
 * NGX_ERROR: no answer within the timeout, the connection gone, an error
 * reply), unless forgotten first.  Without a handler the request is only
 * counted.  NGX_DECLINED: not sent (Redis is down or stalled): decide
 * without it now.
 */

ngx_int_t
ngx_http_payments_limit_redis_rate(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_uint_t burst, ngx_uint_t account,
    ngx_http_payments_limit_redis_pt handler, void *data, ngx_log_t *log,
    ngx_http_payments_limit_ask_t **askp)
{
    char                                   buf[PAY_RL_REDIS_KEY_MAX];
    size_t                                 klen;
    pay_rl_redis_cmd_t                     cmd;
    ngx_http_payments_limit_ask_t         *ask;
    ngx_http_payments_limit_link_t        *link;
    ngx_http_payments_limit_redis_conf_t  *rc;

    link = &ngx_http_payments_limit_link;
    rc = link->conf;

    if (link->ac == NULL || rc == NULL || link->stalled
        || link->state == NGX_HTTP_PAYMENTS_REDIS_DOWN)
    {
        return NGX_DECLINED;
    }

    klen = pay_rl_redis_key(buf, sizeof(buf), (const char *) rc->prefix.data,
                            rc->prefix.len, (const char *) z->name.data,
                            z->name.len, key->data, key->len);
    if (klen == 0) {
        return NGX_DECLINED;
    }

    pay_rl_redis_rate_cmd(&cmd, rc->sha, buf, klen, 0, z->rate, burst,
                          account ? 1 : 0);

    ask = NULL;

    if (handler) {
        ask = ngx_alloc(sizeof(ngx_http_payments_limit_ask_t), log);
        if (ask == NULL) {
            return NGX_DECLINED;
        }

        ngx_memzero(ask, sizeof(ngx_http_payments_limit_ask_t));
        ask->handler = handler;
        ask->data = data;
        ask->generation = link->generation;
        ask->timer.handler = ngx_http_payments_limit_redis_expired;
        ask->timer.data = ask;
        ask->timer.log = log;
    }

    /* hiredis copies the arguments into its output buffer */
    if (redisAsyncCommandArgv(link->ac, ngx_http_payments_limit_redis_reply,
                              ask, cmd.argc, cmd.argv, cmd.argvlen)
        != REDIS_OK)
    {
        if (ask) {
            ngx_free(ask);
        }

        return NGX_DECLINED;
    }

    if (ask) {
        ngx_add_timer(&ask->timer, rc->timeout);
        *askp = ask;
    }

    return NGX_OK;
}


/* The request that asked is gone: its answer is dropped when it comes. */

void
ngx_http_payments_limit_redis_forget(ngx_http_payments_limit_ask_t *ask)
{
    ask->handler = NULL;

    if (ask->timer.timer_set) {
        ngx_del_timer(&ask->timer);
    }
}


/* A check of zone z was decided without Redis. */

void
ngx_http_payments_limit_redis_fell_back(ngx_http_payments_limit_zone_t *z)
{
    ngx_http_payments_limit_link_t  *link = &ngx_http_payments_limit_link;

    if (z->sh) {
        (void) ngx_atomic_fetch_add(&z->sh->fallbacks, 1);
    }

    link->fallbacks++;

    if (!link->outage && link->conf) {
        ngx_http_payments_limit_redis_outage(link, "is not connected", NULL);
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

    link->closing = 1;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    if (link->ac) {
        redisAsyncFree(link->ac);
    }

    link->conf = NULL;
}


/*
 * payments_limit_redis ADDRESS [password_file=FILE] [timeout=TIME]
 *     [prefix=NAME];
 *
 * ADDRESS: IPv4:port, [IPv6]:port or unix:/path.  A host name is refused:
 * hiredis would resolve it with a blocking getaddrinfo() at every connect.
 */

char *
ngx_http_payments_limit_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_limit_main_conf_t *lmcf = conf;

    u_char                                *p, *last;
    ngx_int_t                              n, port;
    ngx_str_t                             *value, s, host;
    ngx_uint_t                             i;
    struct in6_addr                        in6;
    ngx_http_payments_limit_redis_conf_t  *rc;

    if (lmcf->redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_limit_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    rc->name = value[1];
    rc->timeout = 50;
    ngx_str_set(&rc->prefix, "payments");
    pay_rl_redis_script_sha(rc->sha);

    s = value[1];

    if (s.len > 5 && ngx_strncmp(s.data, "unix:", 5) == 0) {
        if (s.len == 5 || s.data[5] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\": a unix socket's path is "
                               "absolute, e.g. unix:/run/redis/redis.sock",
                               &cmd->name, &s);
            return NGX_CONF_ERROR;
        }

        rc->path.data = ngx_pnalloc(cf->pool, s.len - 5 + 1);
        if (rc->path.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(rc->path.data, s.data + 5, s.len - 5);
        *p = '\0';
        rc->path.len = s.len - 5;

    } else {
        last = s.data + s.len;
        p = NULL;

        for (i = s.len; i > 0; i--) {
            if (s.data[i - 1] == ':') {
                p = s.data + i - 1;
                break;
            }
        }

        port = p ? ngx_atoi(p + 1, last - p - 1) : NGX_ERROR;

        if (p == NULL || port < 1 || port > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not an address and port: "
                               "write 127.0.0.1:6379, [::1]:6379 or "
                               "unix:/run/redis/redis.sock", &cmd->name, &s);
            return NGX_CONF_ERROR;
        }

        host.data = s.data;
        host.len = p - s.data;

        if (host.len > 2 && host.data[0] == '['
            && host.data[host.len - 1] == ']')
        {
            host.data++;
            host.len -= 2;

            n = ngx_inet6_addr(host.data, host.len, in6.s6_addr);

        } else {
            n = ngx_inet_addr(host.data, host.len) == INADDR_NONE
                ? NGX_ERROR : NGX_OK;
        }

        if (n != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not an IP address: give "
                               "Redis's address, not a name (a name would be "
                               "resolved by a blocking call at every "
                               "connect)", &cmd->name, &host);
            return NGX_CONF_ERROR;
        }

        rc->host.data = ngx_pnalloc(cf->pool, host.len + 1);
        if (rc->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(rc->host.data, host.data, host.len);
        *p = '\0';
        rc->host.len = host.len;
        rc->port = (ngx_uint_t) port;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n < 1 || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": the time a check "
                                   "may wait for Redis, 1ms to 1s, e.g. "
                                   "timeout=50ms", &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            rc->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            for (n = 0; n < (ngx_int_t) s.len; n++) {
                if (!((s.data[n] >= 'a' && s.data[n] <= 'z')
                      || (s.data[n] >= 'A' && s.data[n] <= 'Z')
                      || (s.data[n] >= '0' && s.data[n] <= '9')
                      || s.data[n] == '_' || s.data[n] == '-'
                      || s.data[n] == '.'))
                {
                    break;
                }
            }

            if (s.len == 0 || s.len > 64 || n != (ngx_int_t) s.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": 1 to 64 letters, "
                                   "digits, '_', '-' or '.', e.g. "
                                   "prefix=payments", &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            rc->prefix = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            /* mode 0600 or stricter; the password is never logged */
            if (ngx_http_payments_read_file(cf, &s, &cmd->name, 1,
                                            NGX_HTTP_PAYMENTS_FILE_SECRET,
                                            &rc->password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "tls") == 0
            || ngx_strncmp(value[i].data, "tls=", 4) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\": this build's hiredis (%d.%d, "
                               "Debian's) has no TLS: reach Redis on "
                               "loopback, a unix socket or a private "
                               "network, or through a TLS tunnel (stunnel) "
                               "on loopback", &cmd->name, &value[i],
                               HIREDIS_MAJOR, HIREDIS_MINOR);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\": it takes "
                           "password_file=, timeout= and prefix=",
                           &cmd->name, &value[i]);
        return NGX_CONF_ERROR;
    }

    lmcf->redis = rc;

    return NGX_CONF_OK;
}
