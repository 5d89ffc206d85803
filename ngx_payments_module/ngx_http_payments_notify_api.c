
/*
 * Copyright (C) ngx_payments authors
 *
 * The merchant's side of its notifications (doc/NOTIFICATIONS.md):
 *
 *   GET  /v1/notifications?status=FAILED&limit=50   pay_notify_list
 *   POST /v1/notifications/{id}/replay              pay_notify_replay
 *   GET  /v1/webhook_endpoints                      pay_endpoint_list
 *   POST /v1/webhook_endpoints/{id}/enable          pay_endpoint_set
 *   POST /v1/webhook_endpoints/{id}/disable         pay_endpoint_set
 *
 * Both run after the API key is checked (_auth.c) and only ever see the
 * authenticated merchant's rows: the merchant is the functions' first
 * argument.  The items are built by the database; nothing here reads a
 * payload or a secret.
 */


#include "ngx_http_payments_module.h"


#define NGX_HTTP_PAYMENTS_NOTIFY_LIST_MAX  100


static void ngx_http_payments_notify_api_answer(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_endpoint_answer(
    ngx_http_payments_pg_query_t *q, PGresult *res);


/* msg_ and 24 lower-case hex digits */
static ngx_uint_t
ngx_http_payments_notification_id_valid(ngx_str_t *id)
{
    ngx_uint_t  i;

    if (id->len != 28 || ngx_strncmp(id->data, "msg_", 4) != 0) {
        return 0;
    }

    for (i = 4; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


void
ngx_http_payments_list_notifications(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t            limit;
    ngx_str_t            v;
    const char          *status;
    ngx_http_request_t  *r = ctx->request;

    status = NULL;
    limit = 50;

    /* as the items spell it (PENDING); the lower case is taken too */
    if (ngx_http_arg(r, (u_char *) "status", 6, &v) == NGX_OK) {
        if (v.len == 7 && ngx_strncasecmp(v.data, (u_char *) "pending", 7)
                          == 0)
        {
            status = "PENDING";

        } else if (v.len == 9
                   && ngx_strncasecmp(v.data, (u_char *) "delivered", 9) == 0)
        {
            status = "DELIVERED";

        } else if (v.len == 6
                   && ngx_strncasecmp(v.data, (u_char *) "failed", 6) == 0)
        {
            status = "FAILED";

        } else {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                           PAY_ERR_INVALID_REQUEST, 0,
                           "status is PENDING, DELIVERED or FAILED"));
            return;
        }
    }

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK) {
        limit = ngx_atoi(v.data, v.len);

        if (limit < 1 || limit > NGX_HTTP_PAYMENTS_NOTIFY_LIST_MAX) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                           PAY_ERR_INVALID_REQUEST, 0,
                           "limit is a number from 1 to 100"));
            return;
        }
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = status;
    ctx->params[2] = ngx_http_payments_num(r->pool, limit);

    if (ctx->params[2] == NULL
        || ngx_http_payments_query(ctx, "SELECT pay_notify_list($1, $2, $3)",
                                   3, ngx_http_payments_notify_api_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_replay_notification(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!ngx_http_payments_notification_id_valid(&ctx->object_id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no notification with this id"));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx, "SELECT pay_notify_replay($1, $2)",
                                   2, ngx_http_payments_notify_api_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_notify_api_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *state;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        /* pay_notify_replay: the endpoint is disabled */
        if (state && ngx_strcmp(state, "PY010") == 0) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                           PAY_ERR_ENDPOINT_DISABLED, 0,
                           "the notification's endpoint is disabled: the "
                           "operator enables it again"));
            return;
        }
    }

    if (ngx_http_payments_pg_row(r, res, ctx->route == PAY_ROUTE_NOTIFICATIONS
                                         ? "pay_notify_list"
                                         : "pay_notify_replay")
        != NGX_OK)
    {
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no notification with this id"));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r,
                               ctx->route == PAY_ROUTE_NOTIFICATIONS
                               ? NGX_HTTP_OK : NGX_HTTP_ACCEPTED,
                               "application/json",
                               (u_char *) PQgetvalue(res, 0, 0),
                               PQgetlength(res, 0, 0)));
}


/* ep_ and 24 lower-case hex digits */
static ngx_uint_t
ngx_http_payments_endpoint_id_valid(ngx_str_t *id)
{
    ngx_uint_t  i;

    if (id->len != 27 || ngx_strncmp(id->data, "ep_", 3) != 0) {
        return 0;
    }

    for (i = 3; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


void
ngx_http_payments_list_endpoints(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    ctx->params[0] = (char *) ctx->merchant.data;

    if (ngx_http_payments_query(ctx, "SELECT pay_endpoint_list($1)", 1,
                                ngx_http_payments_endpoint_answer)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_set_endpoint(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!ngx_http_payments_endpoint_id_valid(&ctx->object_id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no endpoint with this id"));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);
    ctx->params[2] = ctx->route == PAY_ROUTE_ENDPOINT_ENABLE ? "t" : "f";

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx,
                                   "SELECT pay_endpoint_set($1, $2, $3)", 3,
                                   ngx_http_payments_endpoint_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_endpoint_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, ctx->route == PAY_ROUTE_ENDPOINTS
                                         ? "pay_endpoint_list"
                                         : "pay_endpoint_set")
        != NGX_OK)
    {
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no endpoint with this id"));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                               "application/json",
                               (u_char *) PQgetvalue(res, 0, 0),
                               PQgetlength(res, 0, 0)));
}
