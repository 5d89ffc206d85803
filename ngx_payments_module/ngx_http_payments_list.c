
/*
 * Copyright (C) ngx_payments authors
 *
 * The merchant's lists and its events feed (doc/API.md, "Lists"):
 *
 *   GET /v1/checkouts   pay_list_checkouts       newest first
 *   GET /v1/payments    pay_list_payment_orders  newest first
 *   GET /v1/refunds     pay_list_refunds         newest first
 *   GET /v1/payouts     pay_list_payouts         newest first
 *   GET /v1/events      pay_list_events          oldest first
 *
 * They run after the API key is checked (_auth.c) and only ever see the
 * authenticated merchant's rows: the merchant is the functions' first
 * argument.  The query's parameters are checked here (an unknown one, a
 * limit out of 1 to 100, a cursor or a time that is not one: 400); a status
 * or type the objects never have and a cursor that names none of the
 * merchant's objects are the database's to say (PY013, PY014: 400 too).
 * The pages are built by the database.  A feed that holds events another
 * PostgreSQL cluster stored (a database restored from a backup that
 * payments-migrate has not renumbered yet: PY015) answers 503, with an
 * alert at most once a minute per worker (doc/OPERATIONS.md, "Restoring
 * a backup").
 */


#include "ngx_http_payments_module.h"

#include <payments/time.h>


#define NGX_HTTP_PAYMENTS_LIST_DEFAULT  10
#define NGX_HTTP_PAYMENTS_LIST_MAX      100


typedef struct {
    ngx_str_t   name;
    ngx_uint_t  events;         /* 0: the lists', 1: the feed's, 2: both */
} ngx_http_payments_list_arg_t;


static void ngx_http_payments_list_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_list_restored(ngx_http_request_t *r);


static ngx_http_payments_list_arg_t  ngx_http_payments_list_args[] = {
    { ngx_string("limit"), 2 },
    { ngx_string("starting_after"), 2 },
    { ngx_string("ending_before"), 0 },
    { ngx_string("status"), 0 },
    { ngx_string("created_after"), 0 },
    { ngx_string("created_before"), 0 },
    { ngx_string("type"), 1 },
    { ngx_null_string, 0 }
};


/* every parameter of the query is one this route takes, at most once */

static ngx_int_t
ngx_http_payments_list_known(ngx_http_request_t *r, ngx_uint_t events)
{
    u_char                        *p, *last, *amp, *eq;
    ngx_uint_t                     i, seen;
    ngx_http_payments_list_arg_t  *a;

    p = r->args.data;
    last = p + r->args.len;
    seen = 0;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');
        if (eq == NULL) {
            eq = amp;
        }

        if (eq > p) {
            for (i = 0, a = ngx_http_payments_list_args; a->name.len; i++, a++)
            {
                if ((a->events == 2 || a->events == events)
                    && (size_t) (eq - p) == a->name.len
                    && ngx_strncmp(p, a->name.data, a->name.len) == 0)
                {
                    break;
                }
            }

            if (a->name.len == 0 || (seen & (1u << i))) {
                return NGX_DECLINED;
            }

            seen |= 1u << i;
        }

        p = amp + 1;
    }

    return NGX_OK;
}


/* the argument, percent-decoded, as a C string in the pool; NULL and
 * *rc NGX_OK when it is absent, NULL and *rc NGX_ERROR when it is empty
 * or holds a byte outside printable ASCII */

static char *
ngx_http_payments_list_arg(ngx_http_request_t *r, const char *name,
    ngx_int_t *rc)
{
    u_char     *dst, *src, *p;
    ngx_str_t   v;

    *rc = NGX_OK;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK) {
        return NULL;
    }

    *rc = NGX_ERROR;

    dst = ngx_pnalloc(r->pool, v.len + 1);
    if (dst == NULL) {
        return NULL;
    }

    src = v.data;
    p = dst;
    ngx_unescape_uri(&p, &src, v.len, 0);

    if (p == dst) {
        return NULL;
    }

    *p = '\0';

    for (src = dst; src < p; src++) {
        if (*src <= 0x20 || *src >= 0x7f) {
            return NULL;
        }
    }

    *rc = NGX_OK;

    return (char *) dst;
}


static void
ngx_http_payments_list_bad(ngx_http_request_t *r, const char *detail)
{
    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_INVALID_REQUEST, 0, detail));
}


/* limit= (1 to 100), starting_after= into params[n], params[n + 1] */

static ngx_int_t
ngx_http_payments_list_page(ngx_http_payments_ctx_t *ctx, ngx_uint_t n,
    ngx_uint_t limit_at)
{
    char                *v;
    ngx_int_t            rc, limit;
    ngx_http_request_t  *r = ctx->request;

    ctx->params[n] = ngx_http_payments_list_arg(r, "starting_after", &rc);

    if (rc != NGX_OK
        || (ctx->params[n] != NULL
            && !pay_id_valid(ctx->params[n], ngx_strlen(ctx->params[n]))))
    {
        ngx_http_payments_list_bad(r, "starting_after is an object's id");
        return NGX_DECLINED;
    }

    limit = NGX_HTTP_PAYMENTS_LIST_DEFAULT;
    v = ngx_http_payments_list_arg(r, "limit", &rc);

    if (rc != NGX_OK
        || (v != NULL
            && ((limit = ngx_atoi((u_char *) v, ngx_strlen(v))) < 1
                || limit > NGX_HTTP_PAYMENTS_LIST_MAX)))
    {
        ngx_http_payments_list_bad(r, "limit is a number from 1 to 100");
        return NGX_DECLINED;
    }

    ctx->params[limit_at] = ngx_http_payments_num(r->pool, limit);
    if (ctx->params[limit_at] == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* created_after= or created_before=: RFC 3339 or Unix seconds, as Unix
 * seconds in params[n] (NULL when absent) */

static ngx_int_t
ngx_http_payments_list_time(ngx_http_payments_ctx_t *ctx, const char *name,
    ngx_uint_t n)
{
    char                *v;
    int64_t              t;
    ngx_int_t            rc;
    ngx_http_request_t  *r = ctx->request;

    v = ngx_http_payments_list_arg(r, name, &rc);
    ctx->params[n] = NULL;

    if (rc == NGX_OK && v == NULL) {
        return NGX_OK;
    }

    t = (rc == NGX_OK) ? pay_time_parse(v, ngx_strlen(v),
                                        PAY_TIME_RFC3339 | PAY_TIME_EPOCH)
                       : -1;

    if (t < 0) {
        ngx_http_payments_list_bad(r, "created_after and created_before are "
                                   "RFC 3339 times or Unix seconds");
        return NGX_DECLINED;
    }

    ctx->params[n] = ngx_http_payments_num(r->pool, t);

    return ctx->params[n] ? NGX_OK : NGX_ERROR;
}


void
ngx_http_payments_list(ngx_http_payments_ctx_t *ctx)
{
    u_char              *p;
    ngx_int_t            rc;
    const char          *sql;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_list_known(r, 0) != NGX_OK) {
        ngx_http_payments_list_bad(r, "unknown or repeated parameter; the "
                                   "lists take limit, starting_after, "
                                   "ending_before, status, created_after "
                                   "and created_before");
        return;
    }

    /* $1 merchant, $2 status, $3 created_after, $4 created_before,
     * $5 starting_after, $6 ending_before, $7 limit */

    ctx->params[0] = (char *) ctx->merchant.data;

    rc = ngx_http_payments_list_page(ctx, 4, 6);
    if (rc == NGX_DECLINED) {
        return;
    }

    if (rc != NGX_OK) {
        goto failed;
    }

    ctx->params[5] = ngx_http_payments_list_arg(r, "ending_before", &rc);

    if (rc != NGX_OK
        || (ctx->params[5] != NULL
            && !pay_id_valid(ctx->params[5], ngx_strlen(ctx->params[5]))))
    {
        ngx_http_payments_list_bad(r, "ending_before is an object's id");
        return;
    }

    if (ctx->params[4] != NULL && ctx->params[5] != NULL) {
        ngx_http_payments_list_bad(r, "starting_after or ending_before, "
                                   "not both");
        return;
    }

    /* as the objects spell it (SUCCESS); the lower case is taken too */
    ctx->params[1] = ngx_http_payments_list_arg(r, "status", &rc);

    if (rc != NGX_OK) {
        ngx_http_payments_list_bad(r, "status is one of the objects' "
                                   "statuses");
        return;
    }

    for (p = (u_char *) ctx->params[1]; p && *p; p++) {
        *p = ngx_toupper(*p);
    }

    rc = ngx_http_payments_list_time(ctx, "created_after", 2);
    if (rc == NGX_OK) {
        rc = ngx_http_payments_list_time(ctx, "created_before", 3);
    }

    if (rc == NGX_DECLINED) {
        return;
    }

    if (rc != NGX_OK) {
        goto failed;
    }

    switch (ctx->route) {

    case PAY_ROUTE_LIST_PAYMENTS:
        sql = "SELECT pay_list_payment_orders($1, $2, $3, $4, $5, $6, $7)";
        break;

    case PAY_ROUTE_LIST_REFUNDS:
        sql = "SELECT pay_list_refunds($1, $2, $3, $4, $5, $6, $7)";
        break;

    case PAY_ROUTE_LIST_PAYOUTS:
        sql = "SELECT pay_list_payouts($1, $2, $3, $4, $5, $6, $7)";
        break;

    default: /* PAY_ROUTE_LIST_CHECKOUTS */
        sql = "SELECT pay_list_checkouts($1, $2, $3, $4, $5, $6, $7)";
    }

    if (ngx_http_payments_query(ctx, sql, 7, ngx_http_payments_list_answer)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
}


void
ngx_http_payments_list_events(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_list_known(r, 1) != NGX_OK) {
        ngx_http_payments_list_bad(r, "unknown or repeated parameter; "
                                   "the events feed takes limit, "
                                   "starting_after and type");
        return;
    }

    /* $1 merchant, $2 type, $3 starting_after, $4 limit */

    ctx->params[0] = (char *) ctx->merchant.data;

    rc = ngx_http_payments_list_page(ctx, 2, 3);
    if (rc == NGX_DECLINED) {
        return;
    }

    if (rc == NGX_OK) {
        ctx->params[1] = ngx_http_payments_list_arg(r, "type", &rc);

        if (rc != NGX_OK) {
            ngx_http_payments_list_bad(r, "type is an event's type");
            return;
        }

        if (ngx_http_payments_query(ctx,
                                    "SELECT pay_list_events($1, $2, $3, $4)",
                                    4, ngx_http_payments_list_answer)
            == NGX_OK)
        {
            return;
        }
    }

    ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
}


/*
 * PY015: the events feed holds events of another PostgreSQL cluster,
 * whose transaction ids this one has not reached: listed now, they would
 * be hidden and every new event put before them.  503 until
 * payments-migrate has renumbered them; the alert at most once a minute.
 */

static void
ngx_http_payments_list_restored(ngx_http_request_t *r)
{
    static time_t  said;

    if (ngx_time() - said >= 60) {
        said = ngx_time();
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: the events feed holds events stored by "
                      "another PostgreSQL cluster (a restored backup): "
                      "GET /v1/events answers 503 until payments-migrate "
                      "has renumbered them (doc/OPERATIONS.md, Restoring a "
                      "backup)");
    }

    if (ngx_http_payments_add_header(r, "Retry-After", "60") != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_STORE_UNAVAILABLE, 0,
                                   "the events feed is unavailable while the "
                                   "database restored from a backup is "
                                   "migrated; retry later"));
}


static void
ngx_http_payments_list_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *state;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (state && ngx_strcmp(state, "PY013") == 0) {
            ngx_http_payments_list_bad(r, ctx->route == PAY_ROUTE_EVENTS
                                          ? "no event has this type"
                                          : "no object of the list has "
                                            "this status");
            return;
        }

        if (state && ngx_strcmp(state, "PY014") == 0) {
            ngx_http_payments_list_bad(r, "the cursor names none of your "
                                          "objects of the list");
            return;
        }

        if (state && ngx_strcmp(state, "PY015") == 0) {
            ngx_http_payments_list_restored(r);
            return;
        }
    }

    if (ngx_http_payments_pg_row(r, res, "pay_list") != NGX_OK) {
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json",
                                   (u_char *) PQgetvalue(res, 0, 0),
                                   PQgetlength(res, 0, 0)));
}
