
/*
 * Copyright (C) ngx_payments authors
 *
 * The GET routes: GET /v1/payments/{id}, GET /v1/checkouts/{id} (merchant
 * API); GET /v1/checkouts/{id}/pay?t=..., GET /v1/return/{psp}/{id}?t=...,
 * GET /v1/checkouts/{id}/status?t=... and /v1/static/ (the shopper's
 * browser).  Status comes from PostgreSQL only.  The browser's routes
 * carry no API key: their signed token's merchant, once the token is
 * verified, says which shard holds the checkout (_shard.c).  GET /readyz:
 * _readyz.c.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"

#include <payments/view.h>
#include <jansson.h>


static void ngx_http_payments_order_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_checkout_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_pay_target(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_pay_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_pay_none(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_read(ngx_http_payments_ctx_t *ctx,
    const char *sql, ngx_http_payments_pg_handler_pt handler);
static ngx_int_t ngx_http_payments_busy_page(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_view_open(ngx_http_payments_ctx_t *ctx,
    PGresult *res, const char **json, size_t *len);


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

    return ngx_http_payments_query(ctx, sql, 2, handler);
}


static void
ngx_http_payments_order_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *json;
    size_t                    len;
    const char               *db;
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

    if (ngx_http_payments_view_open(ctx, res, &db, &len) != NGX_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    json = pay_order_view_json(db, len);
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
    char                     *json, *pay_url;
    json_t                   *db, *v;
    size_t                    len;
    int64_t                   exp;
    const char               *status, *checkout, *text;
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

    if (ngx_http_payments_view_open(ctx, res, &text, &len) != NGX_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /*
     * The pay link is signed again: the same claims give the same token,
     * so it equals the one in the 201 answer.
     */

    pay_url = NULL;
    db = json_loadb(text, len, 0, NULL);
    v = db ? json_object_get(db, "expires_at") : NULL;
    exp = json_is_string(v) ? pay_time_parse(json_string_value(v),
                                             json_string_length(v),
                                             PAY_TIME_RFC3339)
                            : 0;
    status = db ? json_string_value(json_object_get(db, "status")) : NULL;
    checkout = db ? json_string_value(json_object_get(db, "checkout_id"))
                  : NULL;

    /* a page to pay at: an off-session charge the PSP took has its
     * payment id and no page ("hosted" false; an older database's view
     * says nothing) */
    if (exp > 0 && status && checkout
        && ngx_strcmp(status, "EXECUTING") == 0
        && json_is_string(json_object_get(db, "psp_token"))
        && !json_is_false(json_object_get(db, "hosted")))
    {
        pay_url = ngx_http_payments_link(r->pool, ctx->pmcf,
                                         (char *) ctx->merchant.data,
                                         checkout, NULL, PAY_TOKEN_PAY, exp);
    }

    json_decref(db);

    json = pay_checkout_view_json(text, len, pay_url);
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json", (u_char *) json,
                                   ngx_strlen(json)));
    free(json);
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

    /* a failure of this checkout will count against this shopper too */
    ngx_http_payments_limit_pay_seen(ctx);

    /* the token is ours: only now is its merchant's shard looked up */
    ngx_http_payments_shard_of_merchant(ctx, (char *) ctx->merchant.data,
                                        ngx_http_payments_pay_target);

    return NGX_OK;
}


/* the checkout, on the shard of the token's merchant */

static void
ngx_http_payments_pay_target(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    /* a merchant no shard holds: as a checkout that is not there */
    if (ctx->shard == NGX_HTTP_PAYMENTS_SHARD_NONE) {
        ngx_http_payments_finalize(r, ngx_http_payments_pay_none(r));
        return;
    }

    if (ngx_http_payments_read(ctx, "SELECT psp, psp_url, status "
                                    "FROM pay_pay_target($1, $2)",
                               ngx_http_payments_pay_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_busy_page(r));
    }
}


static ngx_int_t
ngx_http_payments_pay_none(ngx_http_request_t *r)
{
    return ngx_http_payments_page(r, NGX_HTTP_FORBIDDEN,
                                  "This payment link is not valid",
                                  "There is no open payment for this "
                                  "link. Please go back to the shop.");
}


static void
ngx_http_payments_pay_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *url, *status;
    ngx_http_payments_psp_t  *psp;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_busy_page(r));
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)) {
        ngx_http_payments_finalize(r, ngx_http_payments_pay_none(r));
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

    /* the stored URL, opened: a sealed one that does not open is a store
     * error, never a redirect */
    if (ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                 NGX_HTTP_PAYMENTS_SEALED_URL,
                                 (char *) ctx->merchant.data, ctx->params[1],
                                 PQgetvalue(res, 0, 1), &url)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_busy_page(r));
        return;
    }

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


/*
 * The store's view (pay_get_order, pay_get_checkout) with its psp_token
 * opened: *json and *len are the row's own text when there is nothing to
 * open, else a copy in the request's pool.  NGX_ERROR: the token does not
 * open (logged with the checkout id), or no memory.
 */

static ngx_int_t
ngx_http_payments_view_open(ngx_http_payments_ctx_t *ctx, PGresult *res,
    const char **json, size_t *len)
{
    char                *plain, *dump;
    json_t              *db, *tok, *co;
    ngx_int_t            rc;
    ngx_http_request_t  *r = ctx->request;

    *json = PQgetvalue(res, 0, 0);
    *len = PQgetlength(res, 0, 0);

    db = json_loadb(*json, *len, 0, NULL);
    if (db == NULL) {
        /* the core's view refuses it as it always did */
        return NGX_OK;
    }

    tok = json_object_get(db, "psp_token");
    co = json_object_get(db, "checkout_id");

    if (!json_is_string(tok)
        || ngx_strncmp(json_string_value(tok), "v1.", 3) != 0)
    {
        json_decref(db);
        return NGX_OK;
    }

    rc = NGX_ERROR;

    if (json_is_string(co)
        && ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                    NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                                    (char *) ctx->merchant.data,
                                    json_string_value(co),
                                    json_string_value(tok), &plain)
           == NGX_OK
        && json_object_set_new(db, "psp_token", json_string(plain)) == 0)
    {
        dump = json_dumps(db, JSON_COMPACT);

        if (dump != NULL) {
            *len = ngx_strlen(dump);
            *json = ngx_pnalloc(r->pool, *len + 1);

            if (*json != NULL) {
                ngx_memcpy((char *) *json, dump, *len + 1);
                rc = NGX_OK;
            }

            free(dump);
        }
    }

    json_decref(db);

    return rc;
}


/*
 * GET /v1/return/{psp}/{checkout}?t=...: where the PSP sends the browser
 * back.  The token says which path (success or cancel); the status comes
 * from PostgreSQL only, never from the query string.
 */

static char *ngx_http_payments_session_result(ngx_http_request_t *r,
    ngx_http_payments_psp_t *psp);
static void ngx_http_payments_return_target(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_return_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_return_invalid(ngx_http_request_t *r);
static void ngx_http_payments_status_read(ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_pending_page(ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_back_to_shop(ngx_http_payments_ctx_t *ctx,
    const char *url, ngx_uint_t paid);
static void ngx_http_payments_status_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_see_other(ngx_http_payments_ctx_t *ctx,
    const char *url);


static ngx_int_t
ngx_http_payments_wrong_psp(ngx_http_request_t *r)
{
    return ngx_http_payments_page(r, NGX_HTTP_NOT_FOUND,
                                  "This link is not valid",
                                  "Please go back to the shop.");
}


/* verifies t for this checkout and one of two uses; sets ctx->merchant */

static ngx_int_t
ngx_http_payments_browser_token(ngx_http_payments_ctx_t *ctx,
    pay_token_use_e use1, pay_token_use_e use2, pay_token_claims_t *claims)
{
    ngx_str_t            t;
    ngx_http_request_t  *r = ctx->request;

    if (!pay_id_valid((char *) ctx->object_id.data, ctx->object_id.len)
        || ngx_http_arg(r, (u_char *) "t", 1, &t) != NGX_OK
        || pay_token_verify(ctx->pmcf->token_keys->elts,
                            ctx->pmcf->token_keys->nelts, (char *) t.data,
                            t.len, (int64_t) ngx_time(), claims)
           != 0
        || (claims->use != use1 && claims->use != use2)
        || ngx_strlen(claims->checkout) != ctx->object_id.len
        || ngx_strncmp(claims->checkout, ctx->object_id.data,
                       ctx->object_id.len) != 0)
    {
        return NGX_DECLINED;
    }

    ctx->merchant.len = ngx_strlen(claims->merchant);
    ctx->merchant.data = (u_char *) ngx_http_payments_strdup(r->pool,
                                                             claims->merchant);
    if (ctx->merchant.data == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_payments_return(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t                 rc;
    pay_token_claims_t        claims;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_psp_t  *psp;

    /* {psp} must name a configured PSP, and (below) the checkout's own */
    psp = ngx_http_payments_find_psp(ctx->pmcf, (char *) ctx->return_psp.data,
                                     ctx->return_psp.len);
    if (psp == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_wrong_psp(r));
        return;
    }

    rc = ngx_http_payments_browser_token(ctx, PAY_TOKEN_RETURN_SUCCESS,
                                         PAY_TOKEN_RETURN_CANCEL, &claims);
    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_payments_finalize(r, ngx_http_payments_return_invalid(r));
        return;
    }

    ctx->cancel_path = (claims.use == PAY_TOKEN_RETURN_CANCEL);

    /* the token is ours: only now is its merchant's shard looked up */
    ngx_http_payments_shard_of_merchant(ctx, (char *) ctx->merchant.data,
                                        ngx_http_payments_return_target);
}


/* the checkout, on the shard of the token's merchant */

static void
ngx_http_payments_return_target(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_psp_t  *psp;

    /* a merchant no shard holds: as a checkout that is not there */
    if (ctx->shard == NGX_HTTP_PAYMENTS_SHARD_NONE) {
        ngx_http_payments_finalize(r, ngx_http_payments_return_invalid(r));
        return;
    }

    /* configured: ngx_http_payments_return found it */
    psp = ngx_http_payments_find_psp(ctx->pmcf, (char *) ctx->return_psp.data,
                                     ctx->return_psp.len);
    if (psp == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_wrong_psp(r));
        return;
    }

    ctx->params[2] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->return_psp);
    if (ctx->params[2] == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* what the PSP added for its session look-up (the sweeper's) */
    ctx->params[3] = ngx_http_payments_session_result(r, psp);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx, "SELECT status, success_url, "
                                        "cancel_url, psp_matches, "
                                        "pay_merchant_origins($1) "
                                        "FROM pay_return_target($1, $2, $3, "
                                        "$4)", 4,
                                   ngx_http_payments_return_done)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_busy_page(r));
    }
}


/*
 * The value of the PSP's return parameter (adyen: sessionResult), decoded,
 * or "" when the dialect has none, it is absent, or it is not 1 to
 * PAY_LOOKUP_RESULT_MAX printable ASCII characters (then it is ignored:
 * the page is shown all the same, the sweeper waits for the session to
 * expire).
 */

static char *
ngx_http_payments_session_result(ngx_http_request_t *r,
    ngx_http_payments_psp_t *psp)
{
    u_char     *p, *dst, *src;
    ngx_str_t   v;

    if (psp->dl->return_session_param == NULL
        || ngx_http_arg(r, (u_char *) psp->dl->return_session_param,
                        ngx_strlen(psp->dl->return_session_param), &v)
           != NGX_OK
        || v.len == 0 || v.len > 3 * PAY_LOOKUP_RESULT_MAX)
    {
        return "";
    }

    dst = ngx_pnalloc(r->pool, v.len + 1);
    if (dst == NULL) {
        return "";
    }

    p = dst;
    src = v.data;
    ngx_unescape_uri(&dst, &src, v.len, NGX_UNESCAPE_URI);

    if (dst == p || dst - p > PAY_LOOKUP_RESULT_MAX) {
        return "";
    }

    *dst = '\0';

    for (src = p; src < dst; src++) {
        if (*src < 0x21 || *src > 0x7e) {
            return "";
        }
    }

    return (char *) p;
}


static void
ngx_http_payments_return_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *status;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_busy_page(r));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_payments_finalize(r, ngx_http_payments_return_invalid(r));
        return;
    }

    /* the token is this checkout's, but the path names another PSP than
     * the one it was registered with: not an address the PSP was given */
    if (ngx_strcmp(PQgetvalue(res, 0, 3), "t") != 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_wrong_psp(r));
        return;
    }

    status = PQgetvalue(res, 0, 0);

    /* the merchant's return origins as they are now: a URL on one it
     * removed since the checkout was registered (a domain it gave up,
     * which someone else may hold now) is never where a shopper is sent */
    if (ngx_http_payments_origins_set(ctx, PQgetvalue(res, 0, 4)) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the cancel path changes nothing: the PSP session stays open */
    if (ctx->cancel_path || ngx_strcmp(status, "FAILED") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_back_to_shop(ctx,
                                       PQgetvalue(res, 0, 2), 0));
        return;
    }

    /* an authorization (manual capture) is the shopper's part done */
    if (ngx_strcmp(status, "SUCCESS") == 0
        || ngx_strcmp(status, "AUTHORIZED") == 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_back_to_shop(ctx,
                                       PQgetvalue(res, 0, 1), 1));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_pending_page(ctx));
}


/*
 * 303 to the shop's url; or, when its origin is on none of the merchant's
 * return origins any more, the gateway's own page, telling the shopper
 * the payment was received (paid) or to go back to the shop: a merchant
 * that removed an origin no longer vouches for it.
 */

static ngx_int_t
ngx_http_payments_back_to_shop(ngx_http_payments_ctx_t *ctx, const char *url,
    ngx_uint_t paid)
{
    ngx_http_request_t  *r = ctx->request;

    if (pay_origin_allowed(url, ctx->origins->elts, ctx->origins->nelts, 0)) {
        return ngx_http_payments_see_other(ctx, url);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: the return of checkout \"%V\" of merchant "
                  "\"%V\" is on an origin the merchant removed: shown the "
                  "gateway's page instead", &ctx->object_id, &ctx->merchant);

    return paid
           ? ngx_http_payments_page(r, NGX_HTTP_OK, "Payment received",
                                    "Your payment was received. Please "
                                    "return to the shop.")
           : ngx_http_payments_page(r, NGX_HTTP_OK, "Return to the shop",
                                    "Please return to the shop to see your "
                                    "order.");
}


static ngx_int_t
ngx_http_payments_return_invalid(ngx_http_request_t *r)
{
    return ngx_http_payments_page(r, NGX_HTTP_FORBIDDEN,
                                  "This link is not valid",
                                  "Please go back to the shop.");
}


static ngx_int_t
ngx_http_payments_see_other(ngx_http_payments_ctx_t *ctx, const char *url)
{
    int                  n;
    char                *loc, *id;
    size_t               size;
    ngx_http_request_t  *r = ctx->request;

    /* the merchant's registered URL, its query string as it is, with
     * {CHECKOUT_ID} replaced; its origin was checked at registration and
     * the core's parser refused control characters in it */
    id = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);
    if (id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the placeholder is 13 bytes at least and the id at most 40 */
    size = ngx_strlen(url) * 4 + 1;

    loc = ngx_pnalloc(r->pool, size);
    if (loc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = pay_url_checkout_id(url, id, loc, size);
    if (n < 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_payments_add_header(r, "Location", loc) != NGX_OK
        || ngx_http_payments_add_header(r, "Referrer-Policy", "no-referrer")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL,
                                  0);
}


static ngx_int_t
ngx_http_payments_pending_page(ngx_http_payments_ctx_t *ctx)
{
    char                *tok, *id;
    u_char              *p, *last;
    size_t               len;
    pay_token_key_t     *key;
    ngx_http_request_t  *r = ctx->request;

    key = ctx->pmcf->token_keys->elts;

    /* the page's own token: it may only read this checkout's status */
    id = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);
    tok = (id == NULL) ? NULL
          : pay_token_sign(key, (char *) ctx->merchant.data, id,
                           PAY_TOKEN_STATUS, (int64_t) ngx_time() + 3600);
    if (tok == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_payments_html_headers(r, 1) != NGX_OK) {
        free(tok);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the id is [A-Za-z0-9_-] and the token base64url with dots: neither
     * needs escaping in an attribute */
    len = 1024 + ctx->object_id.len + ngx_strlen(tok);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        free(tok);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_snprintf(p, len,
               "<!DOCTYPE html>\n<html lang=\"en\"><head>"
               "<meta charset=\"utf-8\">"
               "<meta http-equiv=\"refresh\" content=\"10\">"
               "<title>Confirming your payment</title>"
               "<link rel=\"stylesheet\" href=\"/v1/static/style.css\">"
               "<script src=\"/v1/static/pending.js\" defer></script>"
               "</head><body><main id=\"pending\" "
               "data-status-url=\"/v1/checkouts/%V/status?t=%s\">"
               "<h1>Confirming your payment</h1>"
               "<div class=\"spinner\"></div>"
               "<p>Your payment provider is confirming the payment. This "
               "page moves on by itself; there is no need to pay again.</p>"
               "</main></body></html>\n",
               &ctx->object_id, tok);

    free(tok);

    return ngx_http_payments_send(r, NGX_HTTP_OK, "text/html; charset=utf-8",
                                  p, last - p);
}


/*
 * GET /v1/checkouts/{id}/status?t=...: for the pending page: pending, paid
 * or failed; no amounts, no personal data.
 */

void
ngx_http_payments_status(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t            rc;
    pay_token_claims_t   claims;
    ngx_http_request_t  *r = ctx->request;

    rc = ngx_http_payments_browser_token(ctx, PAY_TOKEN_STATUS,
                                         PAY_TOKEN_STATUS, &claims);
    if (rc != NGX_OK) {
        ngx_http_payments_finalize(r, rc == NGX_ERROR
                                   ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                   : ngx_http_payments_problem(r,
                                         PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    /* the token is ours: only now is its merchant's shard looked up */
    ngx_http_payments_shard_of_merchant(ctx, (char *) ctx->merchant.data,
                                        ngx_http_payments_status_read);
}


/* the checkout's status, on the shard of the token's merchant */

static void
ngx_http_payments_status_read(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    /* a merchant no shard holds: as a checkout that is not there */
    if (ctx->shard == NGX_HTTP_PAYMENTS_SHARD_NONE) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    if (ngx_http_payments_read(ctx, "SELECT pay_checkout_status($1, $2)",
                               ngx_http_payments_status_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_status_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *json, *checkout;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0, NULL));
        return;
    }

    checkout = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);
    json = checkout ? pay_status_view_json(checkout, PQgetvalue(res, 0, 0))
                    : NULL;
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json", (u_char *) json,
                                   ngx_strlen(json)));
    free(json);
}


/* /v1/static/pending.js and /v1/static/style.css, from payments_html */

ngx_int_t
ngx_http_payments_static(ngx_http_payments_ctx_t *ctx)
{
    ngx_str_t           *file;
    const char          *type;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->object_id.len == sizeof("pending.js") - 1
        && ngx_strncmp(ctx->object_id.data, "pending.js",
                       ctx->object_id.len) == 0)
    {
        file = &ctx->pmcf->html_js;
        type = "text/javascript; charset=utf-8";

    } else if (ctx->object_id.len == sizeof("style.css") - 1
               && ngx_strncmp(ctx->object_id.data, "style.css",
                              ctx->object_id.len) == 0)
    {
        file = &ctx->pmcf->html_css;
        type = "text/css; charset=utf-8";

    } else {
        file = NULL;
        type = NULL;
    }

    if (file == NULL || file->len == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_NOT_FOUND, 0, NULL);
    }

    /* nosniff: every answer's (ngx_http_payments_send) */
    return ngx_http_payments_send(r, NGX_HTTP_OK, type, file->data,
                                  file->len);
}


/* the store cannot answer: the shopper may simply try again */

static ngx_int_t
ngx_http_payments_busy_page(ngx_http_request_t *r)
{
    if (ngx_http_payments_add_header(r, "Retry-After", "1") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_page(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "Please try again",
                                  "The payment service is busy. Please "
                                  "reload this page in a moment.");
}
