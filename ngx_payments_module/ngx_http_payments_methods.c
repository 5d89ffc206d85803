
/*
 * Copyright (C) ngx_payments authors
 *
 * Saved payment methods (the token broker): GET /v1/payment_methods
 * ?customer=… (a cursor list, newest first), GET /v1/payment_methods/{id}
 * and POST /v1/payment_methods/{id}/detach.  The merchant sees the
 * gateway's pm_ id, the customer, the PSP and what the PSP told for
 * display; never the PSP's token, which only ever leaves the database
 * sealed, for an off-session charge (_register.c).  Another merchant's
 * method is 404.
 */


#include "ngx_http_payments_module.h"


static void ngx_http_payments_methods_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_methods_args(ngx_http_request_t *r);


/* the query names customer, limit and starting_after, each at most once */

static ngx_int_t
ngx_http_payments_methods_args(ngx_http_request_t *r)
{
    u_char      *p, *last, *amp, *eq;
    ngx_uint_t   i, seen;
    static const char  *names[] = { "customer", "limit", "starting_after" };

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
            for (i = 0; i < 3; i++) {
                if ((size_t) (eq - p) == ngx_strlen(names[i])
                    && ngx_strncmp(p, names[i], eq - p) == 0)
                {
                    break;
                }
            }

            if (i == 3 || (seen & (1u << i))) {
                return NGX_DECLINED;
            }

            seen |= 1u << i;
        }

        p = amp + 1;
    }

    return NGX_OK;
}


/* an argument as is (the values taken here need no decoding: ids of
 * [A-Za-z0-9_.-]), or NULL */

static char *
ngx_http_payments_methods_arg(ngx_http_request_t *r, const char *name)
{
    ngx_str_t  v;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK) {
        return NULL;
    }

    return (char *) ngx_http_payments_cstr(r->pool, &v);
}


void
ngx_http_payments_list_methods(ngx_http_payments_ctx_t *ctx)
{
    char                *customer, *after, *limit;
    ngx_int_t            n;
    ngx_http_request_t  *r = ctx->request;

    customer = ngx_http_payments_methods_arg(r, "customer");
    after = ngx_http_payments_methods_arg(r, "starting_after");
    limit = ngx_http_payments_methods_arg(r, "limit");

    n = limit ? ngx_atoi((u_char *) limit, ngx_strlen(limit)) : 10;

    if (ngx_http_payments_methods_args(r) != NGX_OK
        || customer == NULL
        || !pay_seller_valid(customer, ngx_strlen(customer))
        || (after != NULL && !pay_method_id_valid(after, ngx_strlen(after)))
        || n < 1 || n > 100)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       "customer (required, the shop's id "
                                       "for the shopper), limit (1 to 100) "
                                       "and starting_after (a pm_ id) only"));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = customer;
    ctx->params[2] = after;
    ctx->params[3] = ngx_http_payments_num(r->pool, (int64_t) n);

    if (ctx->params[3] == NULL
        || ngx_http_payments_query(ctx,
                                   "SELECT pay_list_methods($1, $2, $3, $4)",
                                   4, ngx_http_payments_methods_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/* GET /v1/payment_methods/{id} and POST .../detach */

void
ngx_http_payments_method(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!pay_method_id_valid((char *) ctx->object_id.data,
                             ctx->object_id.len))
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx,
                                   ctx->route == PAY_ROUTE_METHOD_DETACH
                                   ? "SELECT pay_method_detach($1, $2)"
                                   : "SELECT pay_method_get($1, $2)",
                                   2, ngx_http_payments_methods_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_methods_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *state;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (state && ngx_strcmp(state, "PY014") == 0) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_INVALID_REQUEST, 0,
                                           "starting_after names none of "
                                           "this customer's methods"));
            return;
        }
    }

    if (ngx_http_payments_pg_row(r, res, "payment methods") != NGX_OK) {
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no saved payment method with this "
                                       "id"));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json",
                                   (u_char *) PQgetvalue(res, 0, 0),
                                   PQgetlength(res, 0, 0)));
}
