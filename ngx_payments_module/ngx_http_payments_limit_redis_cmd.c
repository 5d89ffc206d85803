
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's Redis, the commands
 * (_limit_redis_proto.c sends them and reads their replies): each is
 * formatted by hiredis's redisFormatCommandArgv() into the link's output
 * buffer, which the connection's write handler writes from the event
 * loop, and its ask queued, in the order of the replies to come.  A
 * check's EVALSHA of the core's script (src/ratelimit_redis.c), the same
 * as EVAL when Redis lost the script, and the give-back of an amount
 * Redis added for a request that no longer waited for it.  Nothing here
 * waits; this file calls no other of the glue's.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"
#include "ngx_http_payments_limit_redis_int.h"

#include <payments/ratelimit_redis.h>


/* A command into the output buffer, its ask queued; written from the
 * event loop.  NGX_ERROR: not sent (no memory, or too much unsent). */

ngx_int_t
ngx_http_payments_limit_redis_send(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask, int argc, const char **argv,
    const size_t *argvlen)
{
    int      n;
    char    *cmd;
    size_t   used, size;
    u_char  *p;

    n = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (n < 0) {
        return NGX_ERROR;
    }

    used = link->last - link->pos;

    if ((size_t) (link->end - link->last) < (size_t) n) {

        if (used + n > NGX_HTTP_PAYMENTS_REDIS_OUT_MAX) {
            redisFreeCommand(cmd);
            return NGX_ERROR;
        }

        if ((size_t) (link->end - link->start) >= used + n) {
            ngx_memmove(link->start, link->pos, used);

        } else {
            size = ngx_max(2 * (size_t) (link->end - link->start), used + n);
            size = ngx_max(size, 4096);

            p = ngx_alloc(size, link->log);
            if (p == NULL) {
                redisFreeCommand(cmd);
                return NGX_ERROR;
            }

            if (used) {
                ngx_memcpy(p, link->pos, used);
            }

            if (link->start) {
                ngx_free(link->start);
            }

            link->start = p;
            link->end = p + size;
        }

        link->pos = link->start;
        link->last = link->start + used;
    }

    link->last = ngx_cpymem(link->last, cmd, n);
    redisFreeCommand(cmd);

    ngx_queue_insert_tail(&link->asks, &ask->queue);

    /* written from the event loop, never from the caller's stack */
    if (link->connected && !link->handshaking && !link->c->write->posted) {
        ngx_post_event(link->c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


/* a new ask of kind, with klen bytes for its key and what follows it */

ngx_http_payments_limit_ask_t *
ngx_http_payments_limit_redis_ask(ngx_http_payments_limit_link_t *link,
    ngx_uint_t kind, size_t klen, ngx_log_t *log)
{
    ngx_http_payments_limit_ask_t  *ask;

    ask = ngx_alloc(sizeof(ngx_http_payments_limit_ask_t) + klen, log);
    if (ask == NULL) {
        return NULL;
    }

    ngx_memzero(ask, sizeof(ngx_http_payments_limit_ask_t));
    ask->kind = kind;
    ask->generation = link->generation;

    return ask;
}


/* A check's EVALSHA: a bucket's, or a window's */

void
ngx_http_payments_limit_redis_cmd(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask, pay_rl_redis_cmd_t *cmd)
{
    switch (ask->kind) {

    case NGX_HTTP_PAYMENTS_REDIS_WINDOW:
        pay_rl_redis_window_cmd(cmd, link->conf->sha, ask->key, ask->klen,
                                ask->sub, 0, ask->rate, ask->burst,
                                ask->amount, ask->arg);
        return;

    case NGX_HTTP_PAYMENTS_REDIS_PEEK:
        pay_rl_redis_peek_cmd(cmd, link->conf->sha, ask->key, ask->klen, 0,
                              ask->rate, ask->burst, ask->arg);
        return;

    case NGX_HTTP_PAYMENTS_REDIS_NOTE:
        pay_rl_redis_note_cmd(cmd, link->conf->sha, ask->key, ask->klen,
                              ask->arg, &ask->field, 1,
                              ask->key + ask->klen, ask->xlen);
        return;

    case NGX_HTTP_PAYMENTS_REDIS_FAILED:
        pay_rl_redis_failed_cmd(cmd, link->conf->sha, ask->key, ask->klen, 0,
                                ask->rate, ask->burst, ask->key + ask->klen,
                                ask->xlen);
        return;
    }

    pay_rl_redis_rate_cmd(cmd, link->conf->sha, ask->key, ask->klen, 0,
                          ask->rate, ask->burst, ask->account);
}


/* A check once more, as EVAL with the script itself: Redis lost it. */

ngx_int_t
ngx_http_payments_limit_redis_eval(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask)
{
    pay_rl_redis_cmd_t  cmd;

    ngx_http_payments_limit_redis_cmd(link, ask, &cmd);

    cmd.argv[0] = "EVAL";
    cmd.argvlen[0] = 4;
    cmd.argv[1] = pay_rl_redis_script;
    cmd.argvlen[1] = ngx_strlen(pay_rl_redis_script);

    ask->evaled = 1;

    return ngx_http_payments_limit_redis_send(link, ask, cmd.argc, cmd.argv,
                                              cmd.argvlen);
}


/*
 * The reply to an ask of a request that no longer waits (its timer fired
 * first, or the request went): an amount Redis added all the same (fits,
 * sub-window w) would stay counted for a checkout never registered, so
 * the ask goes again, as the give-back from w: on the same connection,
 * behind whatever was sent before, before anything sent after; once (a
 * give-back gives nothing back).  A refusal or an error added nothing.
 * NGX_OK: sent, the ask is queued again; NGX_DECLINED: nothing to give
 * back, or not sent (the amount stays counted until its sub-window leaves
 * the window): the caller frees the ask.
 */

ngx_int_t
ngx_http_payments_limit_redis_give_back(ngx_http_payments_limit_link_t *link,
    ngx_http_payments_limit_ask_t *ask, ngx_uint_t fits, uint64_t w)
{
    pay_rl_redis_cmd_t  cmd;

    if (!ask->gone || ask->kind != NGX_HTTP_PAYMENTS_REDIS_WINDOW
        || ask->sub || !fits || w == 0)
    {
        return NGX_DECLINED;
    }

    ask->sub = 1;
    ask->arg = w;
    ask->gone = 0;
    ask->evaled = 0;

    ngx_http_payments_limit_redis_cmd(link, ask, &cmd);

    if (ngx_http_payments_limit_redis_send(link, ask, cmd.argc, cmd.argv,
                                           cmd.argvlen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, link->log, 0,
                      "payments: limit store redis \"%V\": an amount "
                      "added after its check gave up could not be given "
                      "back; it stays counted until it leaves the window",
                      &link->conf->name);
        return NGX_DECLINED;
    }

    return NGX_OK;
}
