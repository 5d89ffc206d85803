
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's Redis, the protocol over the link
 * (_limit_redis.c opens and closes it): hiredis only speaks the protocol:
 * redisFormatCommandArgv() writes each command into the link's output
 * buffer (_limit_redis_cmd.c), written from the connection's write
 * handler, and a redisReader parses what Redis sends back, read by its
 * read handler; the replies come in the order of the commands (the link's
 * queue of asks).  Nothing here waits.
 *
 * A check is one EVALSHA of the core's script (src/ratelimit_redis.c),
 * atomic in Redis: a request-rate bucket, or an amount window; its answer
 * comes back through the event loop, or its timer fires first, and the
 * request goes on either way.  A Redis that lost the script (NOSCRIPT:
 * SCRIPT FLUSH, a restart) gets the same check again as EVAL, and SCRIPT
 * LOAD for the next ones.  An amount that Redis added for a check whose
 * request no longer waited (its timer, the request gone) is given back
 * when that late answer comes.
 *
 * Checks made while the link connects wait behind the handshake, unless an
 * outage is on: then, as while the link is down or stalled (a check timed
 * out and no answer came since), a check is not sent and the zone decides
 * without Redis at once, as its on_error= says.  An outage is logged once
 * at warn when it starts and once when Redis answers again; never a key,
 * never the password.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"
#include "ngx_http_payments_limit_redis_int.h"

#include <payments/ratelimit_redis.h>


static ngx_int_t ngx_http_payments_limit_redis_load(
    ngx_http_payments_limit_link_t *link);


ngx_http_payments_limit_link_t  ngx_http_payments_limit_link;


/* outages: one line when one starts, one when it ends */


void
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

ngx_int_t
ngx_http_payments_limit_redis_handshake(ngx_http_payments_limit_link_t *link)
{
    int                                    n;
    const char                            *argv[3];
    size_t                                 argvlen[3];
    ngx_http_payments_limit_ask_t         *ask;
    ngx_http_payments_limit_redis_conf_t  *rc = link->conf;

    if (rc->password.len) {
        ask = ngx_http_payments_limit_redis_ask(link,
                                                NGX_HTTP_PAYMENTS_REDIS_AUTH,
                                                0, link->log);
        if (ask == NULL) {
            return NGX_ERROR;
        }

        /* AUTH [user] password: the ACL user's (Redis 6), else the
         * default user's (requirepass) */
        n = 0;
        argv[n] = "AUTH";
        argvlen[n++] = 4;

        if (rc->user.len) {
            argv[n] = (const char *) rc->user.data;
            argvlen[n++] = rc->user.len;
        }

        argv[n] = (const char *) rc->password.data;
        argvlen[n++] = rc->password.len;

        if (ngx_http_payments_limit_redis_send(link, ask, n, argv, argvlen)
            != NGX_OK)
        {
            ngx_free(ask);
            return NGX_ERROR;
        }
    }

    return ngx_http_payments_limit_redis_load(link);
}


static ngx_int_t
ngx_http_payments_limit_redis_load(ngx_http_payments_limit_link_t *link)
{
    const char                     *argv[3];
    size_t                          argvlen[3];
    ngx_http_payments_limit_ask_t  *ask;

    if (link->loading) {
        return NGX_OK;
    }

    ask = ngx_http_payments_limit_redis_ask(link,
                                            NGX_HTTP_PAYMENTS_REDIS_LOAD, 0,
                                            link->log);
    if (ask == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = pay_rl_redis_script;
    argvlen[2] = ngx_strlen(pay_rl_redis_script);

    if (ngx_http_payments_limit_redis_send(link, ask, 3, argv, argvlen)
        != NGX_OK)
    {
        ngx_free(ask);
        return NGX_ERROR;
    }

    link->loading = 1;

    return NGX_OK;
}


/* the connect ended: how */

ngx_int_t
ngx_http_payments_limit_redis_test_connect(
    ngx_http_payments_limit_link_t *link)
{
    int        err;
    u_char     text[NGX_MAX_ERROR_STR], *p;
    socklen_t  len;

    err = 0;
    len = sizeof(int);

    if (getsockopt(link->c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
        == -1)
    {
        err = ngx_socket_errno;
    }

    if (err) {
        p = ngx_strerror(err, text, sizeof(text) - 1);
        *p = '\0';

        link->drop(link, "is unreachable",
                                            (const char *) text);
        return NGX_ERROR;
    }

    link->connected = 1;

    return NGX_OK;
}


/*
 * Every command in flight gets no answer (its request goes on without
 * Redis): the link went.
 */

void
ngx_http_payments_limit_redis_fail_asks(ngx_http_payments_limit_link_t *link)
{
    ngx_queue_t                       done, *q;
    ngx_http_payments_limit_ask_t    *ask;
    ngx_http_payments_limit_redis_pt  handler;

    ngx_queue_init(&done);

    if (!ngx_queue_empty(&link->asks)) {
        ngx_queue_add(&done, &link->asks);
        ngx_queue_init(&link->asks);
    }

    /* a request resumed here finds the link down: it decides without */

    while (!ngx_queue_empty(&done)) {
        q = ngx_queue_head(&done);
        ngx_queue_remove(q);
        ask = ngx_queue_data(q, ngx_http_payments_limit_ask_t, queue);

        if (ask->timer.timer_set) {
            ngx_del_timer(&ask->timer);
        }

        handler = ask->handler;
        ask->handler = NULL;

        if (handler) {
            handler(ask->data, NGX_ERROR, 0);
        }

        ngx_free(ask);
    }
}


/* replies */


static void
ngx_http_payments_limit_redis_checked(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask, redisReply *reply)
{
    u_char                            buf[96];
    uint64_t                          w;
    ngx_int_t                         rc;
    pay_rl_redis_rc_e                 verdict;
    ngx_http_payments_limit_redis_pt  handler;

    w = 0;
    verdict = ask->kind == NGX_HTTP_PAYMENTS_REDIS_WINDOW
              || ask->kind == NGX_HTTP_PAYMENTS_REDIS_PEEK
              ? pay_rl_redis_window_answer(reply, &w)
              : pay_rl_redis_answer(reply, &w);

    if (verdict == PAY_RL_REDIS_NOSCRIPT && !ask->evaled) {

        /* the same check again with the script itself, still within its
         * timer; and the script loaded for the next ones */

        if (ngx_http_payments_limit_redis_eval(link, ask) == NGX_OK) {
            (void) ngx_http_payments_limit_redis_load(link);
            return;
        }
    }

    if (verdict == PAY_RL_REDIS_FITS || verdict == PAY_RL_REDIS_BUSY) {
        ngx_http_payments_limit_redis_answers(link);

    } else {
        ngx_http_payments_limit_redis_outage(link, "answered an error",
            ngx_http_payments_limit_redis_errstr(reply, buf, sizeof(buf)));
    }

    if (ask->timer.timer_set) {
        ngx_del_timer(&ask->timer);
    }

    handler = ask->handler;
    ask->handler = NULL;

    if (handler) {
        rc = verdict == PAY_RL_REDIS_FITS ? NGX_OK
             : verdict == PAY_RL_REDIS_BUSY ? NGX_BUSY : NGX_ERROR;

        handler(ask->data, rc, w);

    } else if (ngx_http_payments_limit_redis_give_back(link, ask,
                   verdict == PAY_RL_REDIS_FITS, w) == NGX_OK)
    {
        return;     /* the ask went again: an amount's give-back */
    }

    ngx_free(ask);
}


/* One reply, for the oldest command in flight.  It may close the link. */

static void
ngx_http_payments_limit_redis_reply(ngx_http_payments_limit_link_t *link,
    redisReply *reply)
{
    u_char                          buf[96];
    ngx_queue_t                    *q;
    ngx_http_payments_limit_ask_t  *ask;

    if (ngx_queue_empty(&link->asks)) {
        freeReplyObject(reply);
        link->drop(link, "answered what was not "
                                            "asked", NULL);
        return;
    }

    q = ngx_queue_head(&link->asks);
    ngx_queue_remove(q);
    ask = ngx_queue_data(q, ngx_http_payments_limit_ask_t, queue);

    switch (ask->kind) {

    case NGX_HTTP_PAYMENTS_REDIS_AUTH:
        ngx_free(ask);

        if (reply->type == REDIS_REPLY_ERROR) {
            /* the reply names no password: "WRONGPASS ...", "ERR ..." */
            (void) ngx_http_payments_limit_redis_errstr(reply, buf,
                                                        sizeof(buf));
            freeReplyObject(reply);
            link->drop(link, "refused the password "
                                                "(AUTH)", (const char *) buf);
            return;
        }

        break;

    case NGX_HTTP_PAYMENTS_REDIS_LOAD:
        ngx_free(ask);
        link->loading = 0;

        if (reply->type != REDIS_REPLY_STRING
            || reply->len != PAY_RL_REDIS_SHA_LEN
            || ngx_strncmp(reply->str, link->conf->sha, PAY_RL_REDIS_SHA_LEN)
               != 0)
        {
            (void) ngx_http_payments_limit_redis_errstr(reply, buf,
                                                        sizeof(buf));
            freeReplyObject(reply);
            link->drop(link, "did not load the "
                                                "script", (const char *) buf);
            return;
        }

        if (link->state == NGX_HTTP_PAYMENTS_REDIS_CONNECTING) {
            link->state = NGX_HTTP_PAYMENTS_REDIS_UP;
            link->failed = 0;

            if (link->timer.timer_set) {
                ngx_del_timer(&link->timer);
            }

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, link->log, 0,
                           "payments: limit store redis \"%V\" up",
                           &link->conf->name);

            ngx_http_payments_limit_redis_answers(link);
        }

        break;

    default: /* _RATE, _WINDOW, _PEEK, _NOTE, _FAILED */
        ngx_http_payments_limit_redis_checked(link, ask, reply);
    }

    freeReplyObject(reply);
}


void
ngx_http_payments_limit_redis_read(ngx_event_t *rev)
{
    char                             buf[4096];
    void                            *reply;
    ssize_t                          n;
    ngx_uint_t                       generation;
    ngx_connection_t                *c = rev->data;
    ngx_http_payments_limit_link_t  *link = c->data;

    if (!link->connected) {
        /* the connect ended (an error, usually) */
        if (ngx_http_payments_limit_redis_test_connect(link) != NGX_OK) {
            return;
        }

        ngx_post_event(c->write, &ngx_posted_events);
    }

    generation = link->generation;

    while (rev->ready) {

        n = c->recv(c, (u_char *) buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            link->drop(link, "closed the connection",
                                                NULL);
            return;
        }

        if (redisReaderFeed(link->reader, buf, (size_t) n) != REDIS_OK) {
            link->drop(link, "broke the protocol",
                                                NULL);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(link->reader, &reply) != REDIS_OK) {
                link->drop(link, "broke the "
                                                    "protocol", NULL);
                return;
            }

            if (reply == NULL) {
                break;
            }

            ngx_http_payments_limit_redis_reply(link, reply);

            if (link->generation != generation) {
                return;     /* closed: c is gone */
            }
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        link->drop(link, "is unreachable",
                                            "no read event");
    }
}


void
ngx_http_payments_limit_redis_write(ngx_event_t *wev)
{
    ssize_t                          n;
    ngx_connection_t                *c = wev->data;
    ngx_http_payments_limit_link_t  *link = c->data;

    if (!link->connected) {
        if (!wev->ready) {
            return;     /* posted by a check while the connect goes on */
        }

        if (ngx_http_payments_limit_redis_test_connect(link) != NGX_OK) {
            return;
        }
    }

    while (link->pos < link->last) {
        n = c->send(c, link->pos, link->last - link->pos);

        if (n == NGX_ERROR) {
            link->drop(link, "closed the connection",
                                                NULL);
            return;
        }

        if (n == NGX_AGAIN || n == 0) {
            break;
        }

        link->pos += n;
    }

    if (link->pos == link->last) {
        link->pos = link->start;
        link->last = link->start;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        link->drop(link, "is unreachable",
                                            "no write event");
    }
}


/* checks */


static void
ngx_http_payments_limit_redis_expired(ngx_event_t *ev)
{
    ngx_http_payments_limit_ask_t     *ask = ev->data;
    ngx_http_payments_limit_link_t    *link = &ngx_http_payments_limit_link;
    ngx_http_payments_limit_redis_pt   handler;

    /* the ask stays queued: its reply, if one comes, finds no handler and
     * is dropped, but for an amount Redis added: given back then */

    if (!link->stalled && ask->generation == link->generation) {
        link->stalled = 1;

        ngx_http_payments_limit_redis_outage(link, "did not answer in time",
                                             NULL);

        /* up: dropped if no answer comes within a second; connecting: its
         * own deadline runs */
        if (link->state == NGX_HTTP_PAYMENTS_REDIS_UP) {
            if (link->timer.timer_set) {
                ngx_del_timer(&link->timer);
            }

            ngx_add_timer(&link->timer, NGX_HTTP_PAYMENTS_REDIS_RETRY);
        }
    }

    handler = ask->handler;
    ask->handler = NULL;
    ask->gone = 1;

    if (handler) {
        handler(ask->data, NGX_ERROR, 0);
    }
}


/*
 * Sends a check (ask, its key and arguments set) unless Redis is down or
 * stalled.  NGX_OK: sent (or queued behind the connect); with a handler, it
 * is called once, from the event loop (NGX_OK fits, with the window's
 * sub-window for an amount; NGX_BUSY with the wait; NGX_ERROR: no answer
 * within the timeout, the connection gone, an error reply), unless
 * forgotten first.  Without a handler the check is only counted.
 * NGX_DECLINED: not sent (the ask is freed): decide without Redis now.
 */

static ngx_int_t
ngx_http_payments_limit_redis_check(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask,
    ngx_http_payments_limit_redis_pt handler, void *data, ngx_log_t *log,
    ngx_http_payments_limit_ask_t **askp)
{
    pay_rl_redis_cmd_t  cmd;

    ngx_http_payments_limit_redis_cmd(link, ask, &cmd);

    if (ngx_http_payments_limit_redis_send(link, ask, cmd.argc, cmd.argv,
                                           cmd.argvlen)
        != NGX_OK)
    {
        ngx_free(ask);
        return NGX_DECLINED;
    }

    if (handler) {
        ask->handler = handler;
        ask->data = data;
        ask->timer.handler = ngx_http_payments_limit_redis_expired;
        ask->timer.data = ask;
        ask->timer.log = log;

        ngx_add_timer(&ask->timer, link->conf->timeout);
        *askp = ask;
    }

    return NGX_OK;
}


/*
 * What a key of zone z holds in Redis: 'r' a bucket, 'w' an amount window,
 * 'f' a failure window, 'c' a checkout's record (the failures guard's
 * keys: HMACs, never an address or an e-mail)
 */

static char
ngx_http_payments_limit_redis_kind(ngx_http_payments_limit_zone_t *z,
    ngx_uint_t kind)
{
    switch (kind) {

    case NGX_HTTP_PAYMENTS_REDIS_RATE:
        return 'r';

    case NGX_HTTP_PAYMENTS_REDIS_NOTE:
    case NGX_HTTP_PAYMENTS_REDIS_FAILED:
        return 'c';

    case NGX_HTTP_PAYMENTS_REDIS_PEEK:
        return 'f';

    default:
        return z->kind == NGX_HTTP_PAYMENTS_LIMIT_FAILURES ? 'f' : 'w';
    }
}


/*
 * A new ask for zone z's key, with xlen bytes after it for its kind
 * (filled by the caller), or NULL: Redis is down or stalled
 */

static ngx_http_payments_limit_ask_t *
ngx_http_payments_limit_redis_ask_for(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key, ngx_uint_t kind,
    size_t xlen, ngx_log_t *log)
{
    char                                   buf[PAY_RL_REDIS_KEY_MAX];
    size_t                                 klen;
    ngx_http_payments_limit_ask_t         *ask;
    ngx_http_payments_limit_redis_conf_t  *rc = link->conf;

    if (rc == NULL || link->c == NULL || link->stalled
        || (link->state != NGX_HTTP_PAYMENTS_REDIS_UP && link->outage))
    {
        return NULL;
    }

    klen = pay_rl_redis_key_of(buf, sizeof(buf),
                               (const char *) rc->prefix.data,
                               rc->prefix.len, (const char *) z->name.data,
                               z->name.len,
                               ngx_http_payments_limit_redis_kind(z, kind),
                               key->data, key->len);
    if (klen == 0 || xlen > PAY_RL_REDIS_KEY_MAX) {
        return NULL;
    }

    ask = ngx_http_payments_limit_redis_ask(link, kind, klen + xlen, log);
    if (ask == NULL) {
        return NULL;
    }

    /* kept for an EVAL, should Redis have lost the script */
    ngx_memcpy(ask->key, buf, klen);
    ask->klen = klen;
    ask->xlen = xlen;

    return ask;
}


/* One request against a bucket in Redis: as _redis_check(). */

ngx_int_t
ngx_http_payments_limit_redis_rate(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_uint_t burst, ngx_uint_t account,
    ngx_http_payments_limit_redis_pt handler, void *data, ngx_log_t *log,
    ngx_http_payments_limit_ask_t **askp)
{
    ngx_http_payments_limit_ask_t   *ask;
    ngx_http_payments_limit_link_t  *link = &ngx_http_payments_limit_link;

    ask = ngx_http_payments_limit_redis_ask_for(link, z, key,
                                                NGX_HTTP_PAYMENTS_REDIS_RATE,
                                                0, log);
    if (ask == NULL) {
        return NGX_DECLINED;
    }

    ask->rate = z->rate;
    ask->burst = burst;
    ask->account = account ? 1 : 0;

    return ngx_http_payments_limit_redis_check(link, ask, handler, data, log,
                                               askp);
}


/*
 * An amount into zone z's window for key (at most max), or (sub) one given
 * back from the sub-window idx it went into: as _redis_check().
 */

ngx_int_t
ngx_http_payments_limit_redis_window(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_uint_t sub, int64_t amount, uint64_t arg,
    ngx_http_payments_limit_redis_pt handler, void *data, ngx_log_t *log,
    ngx_http_payments_limit_ask_t **askp)
{
    ngx_http_payments_limit_ask_t   *ask;
    ngx_http_payments_limit_link_t  *link = &ngx_http_payments_limit_link;

    ask = ngx_http_payments_limit_redis_ask_for(link, z, key,
                                              NGX_HTTP_PAYMENTS_REDIS_WINDOW,
                                              0, log);
    if (ask == NULL) {
        return NGX_DECLINED;
    }

    ask->rate = z->slot;
    ask->burst = z->window;
    ask->amount = amount;
    ask->arg = arg;
    ask->sub = sub ? 1 : 0;

    return ngx_http_payments_limit_redis_check(link, ask, handler, data, log,
                                               askp);
}


/*
 * Whether one more failure of key would fit zone z's window in Redis (its
 * max), adding nothing: as _redis_check(), NGX_OK with 0 when it fits.
 */

ngx_int_t
ngx_http_payments_limit_redis_peek(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_http_payments_limit_redis_pt handler, void *data,
    ngx_log_t *log, ngx_http_payments_limit_ask_t **askp)
{
    ngx_http_payments_limit_ask_t   *ask;
    ngx_http_payments_limit_link_t  *link = &ngx_http_payments_limit_link;

    ask = ngx_http_payments_limit_redis_ask_for(link, z, key,
                                                NGX_HTTP_PAYMENTS_REDIS_PEEK,
                                                0, log);
    if (ask == NULL) {
        return NGX_DECLINED;
    }

    ask->rate = z->slot;
    ask->burst = z->window;
    ask->arg = (uint64_t) z->max;

    return ngx_http_payments_limit_redis_check(link, ask, handler, data, log,
                                               askp);
}


/*
 * One field of a checkout's record in zone z (key: the record's), its
 * value the tail of a failure window; the record expires in ttl ms.
 * Nothing waits; NGX_DECLINED: not sent.
 */

ngx_int_t
ngx_http_payments_limit_redis_note(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, char field, ngx_str_t *value, ngx_msec_t ttl,
    ngx_log_t *log)
{
    ngx_http_payments_limit_ask_t   *ask;
    ngx_http_payments_limit_link_t  *link = &ngx_http_payments_limit_link;

    ask = ngx_http_payments_limit_redis_ask_for(link, z, key,
                                                NGX_HTTP_PAYMENTS_REDIS_NOTE,
                                                value->len, log);
    if (ask == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(ask->key + ask->klen, value->data, value->len);
    ask->field = field;
    ask->arg = ttl;

    return ngx_http_payments_limit_redis_check(link, ask, NULL, NULL, log,
                                               NULL);
}


/*
 * The checkout of record key failed: one failure in each window its record
 * names, in Redis.  Nothing waits; NGX_DECLINED: not sent.
 */

ngx_int_t
ngx_http_payments_limit_redis_failed(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_log_t *log)
{
    char                                   buf[PAY_RL_REDIS_KEY_MAX];
    size_t                                 n;
    ngx_http_payments_limit_ask_t         *ask;
    ngx_http_payments_limit_link_t        *link = &ngx_http_payments_limit_link;
    ngx_http_payments_limit_redis_conf_t  *rc = link->conf;

    if (rc == NULL) {
        return NGX_DECLINED;
    }

    /* the windows' prefix: prefix:zone:f: */
    n = pay_rl_redis_key_of(buf, sizeof(buf), (const char *) rc->prefix.data,
                            rc->prefix.len, (const char *) z->name.data,
                            z->name.len, 'f', "", 0);
    if (n == 0) {
        return NGX_DECLINED;
    }

    ask = ngx_http_payments_limit_redis_ask_for(link, z, key,
                                              NGX_HTTP_PAYMENTS_REDIS_FAILED,
                                              n, log);
    if (ask == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(ask->key + ask->klen, buf, n);
    ask->rate = z->slot;
    ask->burst = z->window;

    return ngx_http_payments_limit_redis_check(link, ask, NULL, NULL, log,
                                               NULL);
}


/* The request that asked is gone: its answer is dropped when it comes
 * (an amount Redis added given back then). */

void
ngx_http_payments_limit_redis_forget(ngx_http_payments_limit_ask_t *ask)
{
    ask->handler = NULL;
    ask->gone = 1;

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
