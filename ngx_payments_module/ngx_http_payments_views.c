
/*
 * Copyright (C) ngx_payments authors
 *
 * Reads: GET /v1/payments/{id}, GET /v1/checkouts/{id} (merchant API),
 * GET /v1/checkouts/{id}/pay?t=... (the shopper's browser), GET /readyz.
 * Status comes from PostgreSQL only.
 */


#include "ngx_http_payments_module.h"

#include <payments/view.h>
#include <jansson.h>


static void ngx_http_payments_order_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_checkout_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_pay_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_readyz_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_read(ngx_http_payments_ctx_t *ctx,
    const char *sql, ngx_http_payments_pg_handler_pt handler);
static int64_t ngx_http_payments_parse_rfc3339(const char *s);


/* GET /v1/payments/{id} and GET /v1/checkouts/{id}, once authenticated */

static void
ngx_http_payments_get(ngx_http_payments_ctx_t *ctx, const char *sql,
    ngx_http_payments_pg_handler_pt handler)
{
    ngx_http_request_t  *r = ctx->request;

    if (!pay_id_valid((char *) ctx->object_id.data, ctx->object_id.len)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    if (ngx_http_payments_read(ctx, sql, handler) != NGX_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_get_order(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_payments_get(ctx, "SELECT pay_get_order($1, $2)",
                          ngx_http_payments_order_done);
}


void
ngx_http_payments_get_checkout(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_payments_get(ctx, "SELECT pay_get_checkout($1, $2)",
                          ngx_http_payments_checkout_done);
}


/* one query of (merchant, object id) */

static ngx_int_t
ngx_http_payments_read(ngx_http_payments_ctx_t *ctx, const char *sql,
    ngx_http_payments_pg_handler_pt handler)
{
    ngx_http_request_t  *r = ctx->request;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);
    if (ctx->params[1] == NULL) {
        return NGX_ERROR;
    }

    ctx->query.sql = sql;
    ctx->query.nparams = 2;
    ctx->query.values = ctx->params;
    ctx->query.handler = handler;
    ctx->query.data = ctx;
    ctx->query.log = r->connection->log;

    return ngx_http_payments_pg_send(&ctx->query);
}


static void
ngx_http_payments_order_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *json;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* another merchant's order is as absent as one that never was */
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no such payment order"));
        return;
    }

    json = pay_order_view_json(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json", (u_char *) json,
                                   ngx_strlen(json)));
    free(json);
}


static void
ngx_http_payments_checkout_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *json, *tok, *pay_url;
    u_char                   *last;
    size_t                    len;
    json_t                   *db, *v;
    int64_t                   exp;
    const char               *status, *checkout;
    pay_token_key_t          *key;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no such checkout"));
        return;
    }

    /*
     * The pay link is signed again: the same claims give the same token,
     * so it equals the one in the 201 answer.
     */

    pay_url = NULL;
    db = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    v = db ? json_object_get(db, "expires_at") : NULL;
    exp = v ? ngx_http_payments_parse_rfc3339(json_string_value(v)) : 0;
    status = db ? json_string_value(json_object_get(db, "status")) : NULL;
    checkout = db ? json_string_value(json_object_get(db, "checkout_id"))
                  : NULL;

    if (exp > 0 && status && checkout
        && ngx_strcmp(status, "EXECUTING") == 0
        && json_is_string(json_object_get(db, "psp_token")))
    {
        key = ctx->pmcf->token_keys->elts;
        tok = pay_token_sign(key, (char *) ctx->merchant.data, checkout,
                             PAY_TOKEN_PAY, exp);

        if (tok) {
            len = ctx->pmcf->public_origin.len + sizeof("/v1/checkouts//pay?t=")
                  + ngx_strlen(checkout) + ngx_strlen(tok);
            pay_url = ngx_pnalloc(r->pool, len);

            if (pay_url) {
                last = ngx_snprintf((u_char *) pay_url, len - 1,
                                    "%V/v1/checkouts/%s/pay?t=%s",
                                    &ctx->pmcf->public_origin, checkout, tok);
                *last = '\0';
            }

            free(tok);
        }
    }

    json_decref(db);

    json = pay_checkout_view_json(PQgetvalue(res, 0, 0),
                                  PQgetlength(res, 0, 0), pay_url);
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json", (u_char *) json,
                                   ngx_strlen(json)));
    free(json);
}


static int64_t
ngx_http_payments_parse_rfc3339(const char *s)
{
    char       *end;
    struct tm   tm;

    if (s == NULL) {
        return 0;
    }

    ngx_memzero(&tm, sizeof(struct tm));

    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0') {
        return 0;
    }

    return (int64_t) timegm(&tm);
}


/*
 * The shopper's way to the PSP: a token signed by us, bound to the merchant
 * and the checkout; then a 303 to the hosted page, if its origin is on the
 * PSP's allow-list.  Any doubt is a page without a Location.
 */

ngx_int_t
ngx_http_payments_pay(ngx_http_payments_ctx_t *ctx)
{
    u_char              *checkout;
    ngx_str_t            t;
    pay_token_claims_t   claims;
    ngx_http_request_t  *r = ctx->request;

    checkout = ngx_http_payments_cstr(r->pool, &ctx->object_id);
    if (checkout == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "t", 1, &t) != NGX_OK
        || pay_token_verify_for(ctx->pmcf->token_keys->elts,
                                ctx->pmcf->token_keys->nelts, (char *) t.data,
                                t.len, (int64_t) ngx_time(), PAY_TOKEN_PAY,
                                (char *) checkout, &claims)
           != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: pay link refused: missing, invalid, expired "
                      "or another checkout's token");
        ngx_http_payments_finalize(r, ngx_http_payments_page(r,
                                       NGX_HTTP_FORBIDDEN,
                                       "This payment link is not valid",
                                       "The link is invalid or has expired. "
                                       "Please go back to the shop and start "
                                       "the payment again."));
        return NGX_ERROR;
    }

    ctx->merchant.len = ngx_strlen(claims.merchant);
    ctx->merchant.data = (u_char *) ngx_http_payments_strdup(r->pool,
                                                             claims.merchant);
    if (ctx->merchant.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (ngx_http_payments_read(ctx, "SELECT psp, psp_url, status "
                                    "FROM pay_pay_target($1, $2)",
                               ngx_http_payments_pay_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_page(r,
                                       NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "Please try again",
                                       "The payment service is busy. Please "
                                       "try again in a moment."));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_payments_pay_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *url, *status;
    ngx_http_payments_psp_t  *psp;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_page(r,
                                       NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "Please try again",
                                       "The payment service is busy. Please "
                                       "try again in a moment."));
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)) {
        ngx_http_payments_finalize(r, ngx_http_payments_page(r,
                                       NGX_HTTP_FORBIDDEN,
                                       "This payment link is not valid",
                                       "There is no open payment for this "
                                       "link. Please go back to the shop."));
        return;
    }

    status = PQgetvalue(res, 0, 2);

    if (ngx_strcmp(status, "EXECUTING") != 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_page(r,
                                       410,
                                       "This payment is closed",
                                       "This payment has already been "
                                       "completed or has failed. Please go "
                                       "back to the shop."));
        return;
    }

    psp = ngx_http_payments_find_psp(ctx->pmcf, PQgetvalue(res, 0, 0),
                                     PQgetlength(res, 0, 0));
    url = PQgetvalue(res, 0, 1);

    if (psp == NULL
        || !pay_origin_allowed(url, psp->hosted->elts, psp->hosted->nelts,
                               psp->allow_http))
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: psp \"%s\" gave a hosted-page URL whose "
                      "origin is not one of its hosted= origins; redirect "
                      "refused",
                      PQgetvalue(res, 0, 0));
        ngx_http_payments_finalize(r, ngx_http_payments_page(r,
                                       NGX_HTTP_BAD_GATEWAY,
                                       "Payment page unavailable",
                                       "The payment provider's page cannot "
                                       "be opened. Please go back to the "
                                       "shop."));
        return;
    }

    if (ngx_http_payments_add_header(r, "Location", url) != NGX_OK
        || ngx_http_payments_add_header(r, "Referrer-Policy", "no-referrer")
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_SEE_OTHER,
                                   "text/plain", NULL, 0));
}


ngx_int_t
ngx_http_payments_readyz(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    ctx->query.sql = "SELECT 1";
    ctx->query.nparams = 0;
    ctx->query.values = ctx->params;
    ctx->query.handler = ngx_http_payments_readyz_done;
    ctx->query.data = ctx;
    ctx->query.log = r->connection->log;

    if (ngx_http_payments_pg_send(&ctx->query) != NGX_OK) {
        ngx_http_payments_readyz_done(&ctx->query, NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_payments_readyz_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json",
                                   (u_char *) "{\"status\":\"ready\"}\n",
                                   sizeof("{\"status\":\"ready\"}\n") - 1));
}
