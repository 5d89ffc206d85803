
/*
 * Copyright (C) ngx_payments authors
 *
 * Saved payment methods (the token broker): GET /v1/payment_methods
 * ?customer=… (a cursor list, newest first), GET /v1/payment_methods/{id}
 * and its detach (DELETE /v1/payment_methods/{id}, or POST .../detach).
 * The merchant sees the gateway's pm_ id, the customer, the PSP and what
 * the PSP told for display; never the PSP's token, which only ever leaves
 * the database sealed, opened in the request's pool for an off-session
 * charge (_register.c) or the PSP's own detach (here).  Another
 * merchant's method is 404.
 */


#include "ngx_http_payments_module.h"


static void ngx_http_payments_methods_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_methods_args(ngx_http_request_t *r);
static void ngx_http_payments_detach_started(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_detach_call(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_detach_retry(ngx_event_t *ev);
static void ngx_http_payments_detach_done(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_detach_fail(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status, const char *why);


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


/* GET /v1/payment_methods/{id}, and its detach (DELETE, POST .../detach) */

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

    /* a detach: a method saved through a PSP of the other mode than the
     * key's is none of this key's (404), refused before anything is
     * detached, here or at its PSP */
    ctx->params[2] = ctx->route == PAY_ROUTE_METHOD_DETACH
                     ? ngx_http_payments_psps_other_mode(ctx)
                     : "";

    if (ctx->params[1] == NULL || ctx->params[2] == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* the method's id names it in the logs of its PSP call */
    ctx->nonce = (char *) ctx->params[1];

    if (ngx_http_payments_query(ctx,
                                ctx->route == PAY_ROUTE_METHOD_DETACH
                                ? "SELECT method, psp, token_sealed, "
                                  "checkout_id, customer_ref, psp_detached, "
                                  "saved_account "
                                  "FROM pay_method_detach_start($1, $2, "
                                  "$3::text[])"
                                : "SELECT pay_method_get($1, $2)",
                                ctx->route == PAY_ROUTE_METHOD_DETACH
                                ? 3 : 2,
                                ctx->route == PAY_ROUTE_METHOD_DETACH
                                ? ngx_http_payments_detach_started
                                : ngx_http_payments_methods_answer)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/*
 * The method is detached at the gateway (committed: no charge of it is
 * claimed from now on); then at its PSP, unless the PSP confirmed it
 * already.  The PSP's detach is the same request whenever it is sent, and
 * a detach the PSP already did is answered as done: sent again at any
 * later time, it changes nothing.
 */

static void
ngx_http_payments_detach_started(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *token, *shopper;
    u_char                   *account;
    pay_psp_detach_t          req;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no saved payment method with this "
                                       "id"));
        return;
    }

    ctx->method_json = ngx_http_payments_strdup(r->pool,
                                                PQgetvalue(res, 0, 0));
    if (ctx->method_json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the PSP confirmed it before: nothing to send */
    if (PQgetvalue(res, 0, 5)[0] == 't') {
        ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                       "application/json",
                                       (u_char *) ctx->method_json,
                                       ngx_strlen(ctx->method_json)));
        return;
    }

    ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, PQgetvalue(res, 0, 1),
                                          PQgetlength(res, 0, 1));
    if (ctx->psp == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: saved method \"%s\": its psp \"%s\" is "
                      "not configured; not detached there", ctx->nonce,
                      PQgetvalue(res, 0, 1));
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP is not configured here");
        return;
    }

    if (ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                 NGX_HTTP_PAYMENTS_SEALED_METHOD,
                                 (char *) ctx->merchant.data,
                                 PQgetvalue(res, 0, 3),
                                 PQgetvalue(res, 0, 2), &token)
        != NGX_OK
        || ngx_strncmp(PQgetvalue(res, 0, 2), "v1.", 3) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: saved method \"%s\" does not open: not "
                      "detached at its PSP", ctx->nonce);
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP token could not be opened");
        return;
    }

    shopper = PQgetvalue(res, 0, 4);

    /* the merchant account its checkout was registered under, where the
     * PSP keeps the method (Adyen deletes a token only under the account
     * that stored it: under another, its 422 would read as already gone
     * while the method is still there); none recorded: the
     * configuration's */
    account = PQgetisnull(res, 0, 6) || PQgetlength(res, 0, 6) == 0
              ? ngx_http_payments_cstr(r->pool, &ctx->psp->merchant_account)
              : (u_char *) PQgetvalue(res, 0, 6);

    if (account == NULL
        || pay_psp_detach_request(ctx->psp->dialect, token, shopper,
                                  (char *) account, &req)
           != 0)
    {
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP's request could not be "
                                      "made");
        return;
    }

    /* in the request's pool, as the token: it names the token */
    ctx->psp_path = ngx_http_payments_strdup(r->pool, req.path);
    free(req.path);

    if (ctx->psp_path == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the same key whenever it is sent (a PSP that keeps keys answers a
     * retry with its first answer); the PSP's detach is idempotent
     * anyway */
    *ngx_snprintf((u_char *) ctx->idem_key, sizeof(ctx->idem_key) - 1,
                  "%s:%s:detach", ctx->merchant.data, ctx->nonce) = '\0';

    ctx->psp_method = req.method;
    ctx->psp_content_type = (char *) req.content_type;
    ctx->psp_body = (char *) req.body;

    ctx->deadline = ngx_current_msec + ctx->pmcf->request_timeout;
    ctx->attempts = 0;

    ngx_http_payments_detach_call(ctx);
}


static void
ngx_http_payments_detach_call(ngx_http_payments_ctx_t *ctx)
{
    u_char              *url, *last;
    size_t               len;
    ngx_uint_t           probe;
    ngx_msec_t           left, wait;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_breaker_allow(ctx->psp, &probe, &wait) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: psp \"%V\": circuit open, the detach of "
                      "\"%s\" not sent", &ctx->psp->name, ctx->nonce);
        ctx->fail_retry_after = (time_t) ((wait + 999) / 1000);
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "its PSP is failing and is not called "
                                      "for a while");
        return;
    }

    ctx->probe = probe;

    len = ctx->psp->url.len + ngx_strlen(ctx->psp_path) + 1;

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    last = ngx_snprintf(url, len, "%V%s", &ctx->psp->url, ctx->psp_path);
    *last = '\0';

    left = ctx->deadline > ngx_current_msec
           ? ctx->deadline - ngx_current_msec : 1;

    ctx->attempts++;
    ctx->fetch.handler = ngx_http_payments_detach_done;
    ctx->fetch.data = ctx;
    ctx->fetch.log = r->connection->log;

    if (ngx_http_payments_fetch_method(r->pool, &ctx->fetch, ctx->psp,
                                       PAY_PSP_API_MAIN, ctx->psp_method,
                                       (char *) url, ctx->psp_content_type,
                                       ctx->idem_key, ctx->psp_body,
                                       ctx->psp_body
                                       ? ngx_strlen(ctx->psp_body) : 0,
                                       ngx_min(left, ctx->psp->timeout))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: psp \"%V\": could not start a request",
                      &ctx->psp->name);
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP could not be called");
    }
}


static void
ngx_http_payments_detach_retry(ngx_event_t *ev)
{
    ngx_http_payments_detach_call(ev->data);
}


/* the PSP's answer: never its body (it names the token) */

static void
ngx_http_payments_detach_done(ngx_http_payments_fetch_t *f)
{
    int                       status;
    pay_psp_outcome_e         outcome;
    pay_detach_outcome_e      dt;
    ngx_http_payments_ctx_t  *ctx = f->data;
    ngx_http_request_t       *r = ctx->request;

    status = f->result == CURLE_OK ? (int) f->status : 0;
    dt = pay_psp_detach_answer(ctx->psp->dialect, status);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: psp \"%V\" detach of \"%s\" attempt %ui: "
                  "HTTP %l, %s, outcome %d, %Mms", &ctx->psp->name,
                  ctx->nonce, ctx->attempts, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  (int) dt, f->elapsed);

    outcome = dt == PAY_DETACH_DONE || dt == PAY_DETACH_GONE
              ? PAY_PSP_CREATED
              : dt == PAY_DETACH_AUTH ? PAY_PSP_AUTH
              : dt == PAY_DETACH_REFUSED ? PAY_PSP_REFUSED : PAY_PSP_RETRY;

    if (ngx_http_payments_psp_answered(ctx->psp, f, outcome, ctx->probe)
        != NGX_OK)
    {
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP failed its pin");
        return;
    }

    switch (dt) {

    case PAY_DETACH_DONE:
    case PAY_DETACH_GONE:
        ctx->params[0] = (char *) ctx->merchant.data;
        ctx->params[1] = ctx->nonce;
        ctx->params[2] = dt == PAY_DETACH_DONE ? "done" : "gone";

        if (ngx_http_payments_query(ctx,
                                    "SELECT pay_method_psp_detached($1, $2, "
                                    "$3)",
                                    3, ngx_http_payments_methods_answer)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                       ngx_http_payments_store_unavailable(r));
        }

        return;

    case PAY_DETACH_AUTH:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: psp \"%V\" refused the gateway's "
                      "credentials (HTTP %l): check its secret_file",
                      &ctx->psp->name, f->status);
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP refused the gateway's "
                                      "credentials");
        return;

    case PAY_DETACH_REFUSED:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: psp \"%V\" refused the detach of \"%s\" "
                      "(HTTP %l)", &ctx->psp->name, ctx->nonce, f->status);
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP refused the detach");
        return;

    default: /* PAY_DETACH_RETRY */
        break;
    }

    switch (ngx_http_payments_psp_retry_later(ctx, f, 0,
                                              ngx_http_payments_detach_retry))
    {
    case NGX_OK:
        return;

    case NGX_ERROR:
        ngx_http_payments_detach_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                      "its PSP did not answer");
        return;

    default: /* NGX_DECLINED: no retry left */
        break;
    }

    ngx_http_payments_detach_fail(ctx,
                                  f->result == CURLE_OPERATION_TIMEDOUT
                                  ? NGX_HTTP_GATEWAY_TIME_OUT
                                  : NGX_HTTP_BAD_GATEWAY,
                                  "its PSP did not answer");
}


/*
 * Detached here, not confirmed by the PSP: 502, 503 or 504 psp_unavailable
 * (Retry-After when it is known) saying so; the same request again sends
 * the PSP's detach again.
 */

static void
ngx_http_payments_detach_fail(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status, const char *why)
{
    u_char              *detail, *last;
    size_t               len;
    char                *p;
    ngx_http_request_t  *r = ctx->request;
    static const char    fmt[] = "the method is detached here and can no "
                                 "longer be charged, but not yet at its "
                                 "PSP: %s; send the same request again";

    if (ctx->fail_retry_after > 0) {
        p = ngx_http_payments_num(r->pool, (int64_t) ctx->fail_retry_after);

        if (p == NULL
            || ngx_http_payments_add_header(r, "Retry-After", p) != NGX_OK)
        {
            ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    len = sizeof(fmt) + ngx_strlen(why);

    detail = ngx_pnalloc(r->pool, len);
    if (detail == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    last = ngx_snprintf(detail, len - 1, fmt, why);
    *last = '\0';

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_PSP_UNAVAILABLE, status,
                                   (char *) detail));
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
