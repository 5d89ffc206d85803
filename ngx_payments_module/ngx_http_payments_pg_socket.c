
/*
 * Copyright (C) ngx_payments authors
 *
 * The ngx_connection_t a pool's connection (_pg.c) wraps around libpq's
 * socket, so that nginx's event loop tells the driver when to read and
 * write: made (pg_wrap, with the driver's event handler) once libpq has a
 * socket, its read and write events set level-triggered as libpq wants
 * (pg_events), and freed, never closed (pg_unwrap: libpq owns the socket
 * and closes it).  And libpq's notices, logged at info.  Nothing here
 * calls the driver.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_pg_int.h"


void
ngx_http_payments_pg_notice(void *arg, const PGresult *res)
{
    ngx_log_error(NGX_LOG_INFO, (ngx_log_t *) arg, 0,
                  "payments: postgresql: %s", PQresultErrorMessage(res));
}


ngx_int_t
ngx_http_payments_pg_wrap(ngx_http_payments_pg_conn_t *pc,
    ngx_event_handler_pt handler)
{
    int                          fd;
    ngx_connection_t            *c;
    ngx_http_payments_pg_pool_t  *pool = pc->pool;

    fd = PQsocket(pc->pg);
    if (fd == -1) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;
    c->read->handler = handler;
    c->write->handler = handler;
    c->read->log = pool->log;
    c->write->log = pool->log;

    pc->c = c;

    return NGX_OK;
}


void
ngx_http_payments_pg_unwrap(ngx_http_payments_pg_conn_t *pc)
{
    ngx_connection_t  *c = pc->c;

    if (c == NULL) {
        return;
    }

    /*
     * libpq closes the socket itself (PQfinish), which drops it from epoll:
     * mark the events inactive without touching the kernel.  (Before each
     * PQconnectPoll step, which may close it too, connect_poll() has
     * already taken it out of epoll.)
     */

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
    pc->c = NULL;
}


ngx_int_t
ngx_http_payments_pg_events(ngx_http_payments_pg_conn_t *pc,
    ngx_uint_t want_read, ngx_uint_t want_write)
{
    ngx_connection_t  *c = pc->c;

    /* level-triggered: libpq reads and writes only as much as it wants */

    if (want_read && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!want_read && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (want_write && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!want_write && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
