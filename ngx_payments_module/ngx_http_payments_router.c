
/*
 * Copyright (C) ngx_payments authors
 *
 * The content handler: which route a request is (the core's route table,
 * pay_path_parse()), TLS and the request id, the body read into memory
 * (never a temporary file), then the route's handler.  Pay tokens are cut
 * out of the request line the logs see.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"
#include "ngx_http_payments_limit.h"


/* prototypes */
static void ngx_http_payments_body_ready(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_money_post(ngx_http_payments_ctx_t *ctx);
static const char *ngx_http_payments_allow(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_limit_route(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_limited(ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_route_on(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_payments_tls_required(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx, ngx_uint_t browser);
static ngx_uint_t ngx_http_payments_secure(ngx_http_request_t *r);
static void ngx_http_payments_redact(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_hold_request(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx);


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;



/*
 * A browser token (t=) is a bearer credential, and so is Adyen's sessionId
 * on the way back (the PSP's token): neither may reach the access log
 * ($request) or the error log's "request:" context, which both print the
 * request line.  The request line is replaced by a copy with those values
 * cut out (pay_redact_request_line, url.h), read from the line itself: over
 * HTTP/2 nginx builds it apart from r->args.  It runs in the post-read
 * phase, before limit_req, limit_conn or access can refuse the request and
 * log it, for a request line naming one of the module's paths (/v1/) once
 * a payments location is configured; the content handler cuts the rest (a
 * location that rewrote another path to a payments one).  $args and
 * $request_uri still carry the values, so a log_format must not use them
 * (doc/OPERATIONS.md, "Logs", says so).
 */

static void
ngx_http_payments_redact(ngx_http_request_t *r)
{
    u_char  *line;
    size_t   n;

    if (r->request_line.len == 0
        || ngx_strlchr(r->request_line.data,
                       r->request_line.data + r->request_line.len, '?')
           == NULL)
    {
        return;
    }

    line = ngx_pnalloc(r->pool, PAY_REDACT_SIZE(r->request_line.len));
    if (line == NULL) {
        return;
    }

    n = pay_redact_request_line((char *) r->request_line.data,
                                r->request_line.len, (char *) line);
    if (n > 0) {
        r->request_line.data = line;
        r->request_line.len = n;
    }
}


/* the request line names one of the module's paths: cut in post-read */
static ngx_uint_t
ngx_http_payments_redact_early_path(ngx_http_request_t *r)
{
    return r->unparsed_uri.len >= 4
           && ngx_strncmp(r->unparsed_uri.data, "/v1/", 4) == 0;
}


static ngx_int_t
ngx_http_payments_redact_early(ngx_http_request_t *r)
{
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

    if (pmcf != NULL && pmcf->shards->nelts > 0
        && ngx_http_payments_redact_early_path(r))
    {
        ngx_http_payments_redact(r);
    }

    return NGX_DECLINED;
}


/*
 * A graceful stop or reload answers the requests in flight: without a hold
 * (_util.c), a registration waiting for its PSP was cut off, the shop got
 * no answer and its retry found the key in progress until the lease ended.
 * The hold lasts as long as a request may (the PSP's budget and three
 * database round trips, which the lease exceeds) and goes with the
 * request's pool.
 */
static ngx_int_t
ngx_http_payments_hold_request(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ngx_http_payments_hold(&ctx->hold, r->connection->log,
                           ctx->pmcf->request_timeout
                           + 3 * ctx->pmcf->db_timeout);

    cln->handler = ngx_http_payments_unhold;
    cln->data = &ctx->hold;

    return NGX_OK;
}


/*
 * nginx may free a request while its query waits or runs: a client that
 * breaks off a body being discarded (a bad chunk) has the request
 * terminated whatever the module holds (r->count).  The driver must then
 * forget the query, or answer into freed memory.
 */
static void
ngx_http_payments_query_gone(void *data)
{
    ngx_http_payments_pg_cancel(data);
}


ngx_int_t
ngx_http_payments_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_pool_cleanup_t             *cln;
    ngx_uint_t                      route, method;
    pay_path_t                      path;
    const char                     *allow;
    const pay_route_t              *rt;
    ngx_http_payments_ctx_t        *ctx;
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->pmcf = pmcf;
    ngx_http_set_ctx(r, ctx, ngx_http_payments_module);

    if (ngx_http_payments_hold_request(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the request's query goes with its pool (see _pg.c's cancel) */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_payments_query_gone;
    cln->data = &ctx->query;

    /* a payments location reached from another path: not cut yet */
    if (!ngx_http_payments_redact_early_path(r)) {
        ngx_http_payments_redact(r);
    }

    if (ngx_http_payments_request_id(r, &ctx->request_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* GET /v1/payments lists, POST /v1/payments creates */
    (void) pay_path_parse_method((char *) r->uri.data, r->uri.len,
                                 (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
                                 ? PAY_PATH_GET
                                 : (r->method & NGX_HTTP_DELETE)
                                   ? PAY_PATH_DELETE : PAY_PATH_POST,
                                 &path);

    rt = path.route;

    route = rt ? rt->route : PAY_ROUTE_NONE;
    method = rt == NULL ? NGX_HTTP_GET
             : rt->del ? NGX_HTTP_DELETE
             : rt->post ? NGX_HTTP_POST : NGX_HTTP_GET;

    ctx->route = route;

    if (rt == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_payments_problem(r, PAY_ERR_NOT_FOUND, 0, NULL);
    }

    if (!(r->method & (method | (method == NGX_HTTP_GET ? NGX_HTTP_HEAD
                                                        : 0))))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        /* every method the path has a route of */
        allow = ngx_http_payments_allow(r);

        if (allow == NULL
            || ngx_http_payments_add_header(r, "Allow", allow) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_payments_problem(r, PAY_ERR_METHOD_NOT_ALLOWED, 0,
                                         NULL);
    }

    if (!rt->plain && !ngx_http_payments_secure(r)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_payments_tls_required(r, ctx, rt->page);
    }

    ctx->object_id.data = (u_char *) path.id;
    ctx->object_id.len = path.id_len;
    ctx->return_psp.data = (u_char *) path.psp;
    ctx->return_psp.len = path.psp_len;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: route %s \"%V\" object \"%V\"", rt->name,
                   &r->uri, &ctx->object_id);

    rc = ngx_http_payments_limit_route(ctx);

    if (rc == NGX_AGAIN) {
        /* a limit kept in Redis was asked: _limited() goes on */
        r->main->count++;
        return NGX_DONE;
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_payments_route_on(ctx);
}


/* The Allow header of a 405: the methods the path has a route of, in
 * the order GET, HEAD, POST, DELETE; NULL on no memory. */

static const char *
ngx_http_payments_allow(ngx_http_request_t *r)
{
    u_char      *p, *s;
    ngx_int_t    m;
    pay_path_t   other;
    static const char  *names[] = { "GET, HEAD", "POST", "DELETE" };

    s = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, DELETE"));
    if (s == NULL) {
        return NULL;
    }

    p = s;

    for (m = PAY_PATH_GET; m <= PAY_PATH_DELETE; m++) {
        if (pay_path_parse_method((char *) r->uri.data, r->uri.len, m,
                                  &other) != 0
            || pay_route_method(other.route) != m)
        {
            continue;
        }

        if (p != s) {
            *p++ = ',';
            *p++ = ' ';
        }

        p = ngx_cpymem(p, names[m], ngx_strlen(names[m]));
    }

    *p = '\0';

    return (char *) s;
}


/* rate limits that need no body, no signature check and no query */

static ngx_int_t
ngx_http_payments_limit_route(ngx_http_payments_ctx_t *ctx)
{
    switch (ctx->route) {
    case PAY_ROUTE_PAY:
        return ngx_http_payments_limit_early(ctx, NGX_HTTP_PAYMENTS_LIMIT_PAY,
                                             ngx_http_payments_limited);
    case PAY_ROUTE_RETURN:
        return ngx_http_payments_limit_early(ctx,
                                             NGX_HTTP_PAYMENTS_LIMIT_RETURN,
                                             ngx_http_payments_limited);
    case PAY_ROUTE_STATUS:
        return ngx_http_payments_limit_early(ctx,
                                             NGX_HTTP_PAYMENTS_LIMIT_STATUS,
                                             ngx_http_payments_limited);
    case PAY_ROUTE_WEBHOOK:
        return ngx_http_payments_limit_early(ctx,
                                             NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK,
                                             ngx_http_payments_limited);
    default:
        return NGX_DECLINED;
    }
}


/*
 * Redis answered a limit of the route (or did not in time): the handler
 * goes on where it stopped, and its result finalizes the request, as the
 * content phase would have.
 */

static void
ngx_http_payments_limited(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_payments_limit_route(ctx);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_payments_route_on(ctx);
    }

    ngx_http_finalize_request(ctx->request, rc);
}


/* the route past its early limits: its body, then its handler */

static ngx_int_t
ngx_http_payments_route_on(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_uint_t                      route;
    ngx_http_request_t             *r = ctx->request;
    ngx_http_payments_main_conf_t  *pmcf = ctx->pmcf;

    route = ctx->route;

    if (route == PAY_ROUTE_PAYMENTS
        || route == PAY_ROUTE_WEBHOOK
        || route == PAY_ROUTE_REFUNDS
        || route == PAY_ROUTE_CAPTURE
        || route == PAY_ROUTE_VOID
        || route == PAY_ROUTE_PAYOUTS
        || route == PAY_ROUTE_CANCEL
        || route == PAY_ROUTE_ENDPOINT_CREATE
        || route == PAY_ROUTE_ENDPOINT_ROTATE)
    {
        /* never buffer more than the limit: 413 comes after 401 and 400.
         * A PSP's webhook takes its own, larger limit */
        ctx->body_max = (route == PAY_ROUTE_WEBHOOK)
                        ? ngx_max(pmcf->max_body,
                                  NGX_HTTP_PAYMENTS_WEBHOOK_MAX_BODY)
                        : pmcf->max_body;

        if (r->headers_in.content_length_n > (off_t) ctx->body_max) {
            ctx->body_too_large = 1;

            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            r->main->count++;
            ngx_http_payments_body_ready(ctx);
            return NGX_DONE;
        }

        /* the module's request body filter copies the body into memory
         * as it arrives (at most body_max), so that nginx never
         * buffers it to a temporary file, whatever client_body_buffer_size
         * and client_body_in_file_only say */
        ctx->body_filter = 1;
        r->request_body_in_file_only = 0;

        rc = ngx_http_read_client_request_body(r,
                                              ngx_http_payments_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    switch (route) {

    case PAY_ROUTE_HEALTHZ:
        return ngx_http_payments_send(r, NGX_HTTP_OK, "application/json",
                                      (u_char *) "{\"status\":\"ok\"}\n",
                                      sizeof("{\"status\":\"ok\"}\n") - 1);

    case PAY_ROUTE_READYZ:
        r->main->count++;
        ngx_http_payments_readyz(ctx);
        return NGX_DONE;

    case PAY_ROUTE_METRICS:
        return ngx_http_payments_metrics_handler(r, pmcf->psps);

    case PAY_ROUTE_PAY:
        r->main->count++;
        ngx_http_payments_pay(ctx);
        return NGX_DONE;

    case PAY_ROUTE_RETURN:
        r->main->count++;
        ngx_http_payments_return(ctx);
        return NGX_DONE;

    case PAY_ROUTE_STATUS:
        r->main->count++;
        ngx_http_payments_status(ctx);
        return NGX_DONE;

    case PAY_ROUTE_STATIC:
        return ngx_http_payments_static(ctx);

    case PAY_ROUTE_PAYMENT:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_get_order);
        return NGX_DONE;

    case PAY_ROUTE_PAYOUT:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_get_payout);
        return NGX_DONE;

    case PAY_ROUTE_BALANCE:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_get_balance);
        return NGX_DONE;

    case PAY_ROUTE_NOTIFICATIONS:
        r->main->count++;
        ngx_http_payments_authenticate(ctx,
                                       ngx_http_payments_list_notifications);
        return NGX_DONE;

    case PAY_ROUTE_NOTIFICATION_REPLAY:
        r->main->count++;
        ngx_http_payments_authenticate(ctx,
                                       ngx_http_payments_replay_notification);
        return NGX_DONE;

    case PAY_ROUTE_ENDPOINTS:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_list_endpoints);
        return NGX_DONE;

    case PAY_ROUTE_LIST_CHECKOUTS:
    case PAY_ROUTE_LIST_PAYMENTS:
    case PAY_ROUTE_LIST_REFUNDS:
    case PAY_ROUTE_LIST_PAYOUTS:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_list);
        return NGX_DONE;

    case PAY_ROUTE_EVENTS:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_list_events);
        return NGX_DONE;

    case PAY_ROUTE_REVIEWS:
    case PAY_ROUTE_REVIEW_APPROVE:
    case PAY_ROUTE_REVIEW_REJECT:
        /* the admin key, not a merchant's */
        r->main->count++;
        ngx_http_payments_review(ctx);
        return NGX_DONE;

    case PAY_ROUTE_ENDPOINT_ENABLE:
    case PAY_ROUTE_ENDPOINT_DISABLE:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_set_endpoint);
        return NGX_DONE;

    case PAY_ROUTE_METHODS:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_list_methods);
        return NGX_DONE;

    case PAY_ROUTE_METHOD:
    case PAY_ROUTE_METHOD_DETACH:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_method);
        return NGX_DONE;

    default: /* PAY_ROUTE_CHECKOUT */
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_get_checkout);
        return NGX_DONE;
    }
}


/*
 * TLS is required: plain HTTP is served only where "payments_plain_http
 * loopback" says so, and then only to loopback clients (tests, the demo).
 */

static ngx_uint_t
ngx_http_payments_secure(ngx_http_request_t *r)
{
    struct sockaddr_in            *sin;
    ngx_http_payments_loc_conf_t  *plcf;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6           *sin6;
#endif

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        return 1;
    }
#endif

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_module);

    if (plcf->plain_http != NGX_HTTP_PAYMENTS_PLAIN_LOOPBACK) {
        return 0;
    }

    switch (r->connection->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) r->connection->sockaddr;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;
        return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
#endif

    default:
        return 0;
    }
}


static ngx_int_t
ngx_http_payments_tls_required(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx, ngx_uint_t browser)
{
    u_char     *p, *last;
    size_t      len;
    uintptr_t   escape;

    /* a browser is sent to the https origin; an API client is refused, so
     * that it notices before a key or body goes over plain HTTP again */

    if (!browser || !ctx->pmcf->public_https) {
        return ngx_http_payments_problem(r, PAY_ERR_TLS_REQUIRED, 0,
                                         "use https");
    }

    /*
     * r->uri is decoded: "%0d%0a" in the request line is a CR LF here, and
     * copied into the Location it would end the header (a header injected
     * through the link).  A control byte in the path or the query is
     * refused; the rest of the path is escaped again; the query is the
     * request line's own bytes and must be plain printable ASCII.
     */
    for (p = r->uri.data; p < r->uri.data + r->uri.len; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return ngx_http_payments_problem(r, PAY_ERR_INVALID_REQUEST, 0,
                                             "control character in the path");
        }
    }

    for (p = r->args.data; p < r->args.data + r->args.len; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            return ngx_http_payments_problem(r, PAY_ERR_INVALID_REQUEST, 0,
                                             "invalid character in the query");
        }
    }

    escape = ngx_escape_uri(NULL, r->uri.data, r->uri.len, NGX_ESCAPE_URI);

    len = ctx->pmcf->public_origin.len + r->uri.len + 2 * escape + 2
          + r->args.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_cpymem(p, ctx->pmcf->public_origin.data,
                      ctx->pmcf->public_origin.len);
    last = (u_char *) ngx_escape_uri(last, r->uri.data, r->uri.len,
                                     NGX_ESCAPE_URI);

    if (r->args.len) {
        *last++ = '?';
        last = ngx_cpymem(last, r->args.data, r->args.len);
    }

    *last = '\0';

    if (ngx_http_payments_add_header(r, "Location", (char *) p) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_send(r, NGX_HTTP_MOVED_PERMANENTLY,
                                  "text/plain", NULL, 0);
}


/*
 * The body of POST /v1/payments and /v1/webhooks/{psp}, as nginx's length or
 * chunked filter hands it over: copied into ctx->body (at most
 * ctx->body_max bytes; past that it is dropped and body_too_large set)
 * and marked consumed.  Only the last buffer goes on to nginx's save filter,
 * so nothing ever reaches a temporary file: no blocking file I/O in the
 * request path.
 */

static ngx_int_t
ngx_http_payments_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                    size;
    ngx_buf_t                *b;
    ngx_uint_t                last;
    ngx_chain_t              *cl, *out;
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx == NULL || !ctx->body_filter) {
        return ngx_http_next_request_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf) {
            last = 1;
        }

        if (b->in_file) {
            /* never from nginx's length or chunked filter */
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        size = b->last - b->pos;

        if (size == 0) {
            continue;
        }

        if (ctx->body_too_large || size > ctx->body_max - ctx->body.len) {
            ctx->body_too_large = 1;
            b->pos = b->last;
            continue;
        }

        if (ctx->body.data == NULL) {
            /* the announced length, or the limit for a chunked body (whose
             * content_length_n nginx counts up as chunks arrive) */
            ctx->body_size = ctx->body_max;

            if (!r->headers_in.chunked
                && r->headers_in.content_length_n >= 0
                && r->headers_in.content_length_n < (off_t) ctx->body_size)
            {
                ctx->body_size = (size_t) r->headers_in.content_length_n;
            }

            ctx->body.data = ngx_pnalloc(r->pool, ctx->body_size + 1);
            if (ctx->body.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (size > ctx->body_size - ctx->body.len) {
            /* more than Content-Length said: the length filter stops that */
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->body.data + ctx->body.len, b->pos, size);
        ctx->body.len += size;
        b->pos = b->last;
    }

    if (!last) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(r->pool);
    out = ngx_alloc_chain_link(r->pool);
    if (b == NULL || out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = 1;
    out->buf = b;
    out->next = NULL;

    return ngx_http_next_request_body_filter(r, out);
}


static void
ngx_http_payments_body_handler(ngx_http_request_t *r)
{
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx->body_too_large) {
        ngx_http_payments_body_ready(ctx);
        return;
    }

    if (ctx->body.data == NULL) {
        /* no body at all */
        ctx->body.data = ngx_pnalloc(r->pool, 1);
        if (ctx->body.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ctx->body.data[ctx->body.len] = '\0';

    ctx->body_read = 1;

    ngx_http_payments_body_ready(ctx);
}


/* a merchant is authenticated by its key; a PSP by its signature */

static void
ngx_http_payments_body_ready(ngx_http_payments_ctx_t *ctx)
{
    if (ctx->route == PAY_ROUTE_WEBHOOK) {
        ngx_http_payments_webhook(ctx);
        return;
    }

    ngx_http_payments_authenticate(ctx, ngx_http_payments_money_post);
}


/*
 * What every POST that moves money (and the two that make an endpoint's
 * secret) checks after 401, in the contract's order: the Idempotency-Key (400), the create= limits (429; payments,
 * refunds and pay-outs alike), the body's size (413) and its type (415).
 * Nothing is stored: the client may fix the request and retry with the
 * same key.  Then the route's own handler.
 */

static void
ngx_http_payments_money_post(ngx_http_payments_ctx_t *ctx)
{
    size_t               len;
    u_char              *ct;
    ngx_int_t            rc;
    ngx_uint_t           i, n;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r = ctx->request;

    h = ngx_http_payments_header(r, "Idempotency-Key", &n);

    if (h == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_IDEM_MISSING, 0,
                                       "send an Idempotency-Key header"));
        return;
    }

    if (n > 1
        || pay_idem_key_parse((char *) h->value.data, h->value.len,
                              ctx->idem_key, &len) != 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_IDEM_INVALID, 0,
                                       "Idempotency-Key must be 1 to 255 "
                                       "visible ASCII characters, bare or "
                                       "as a quoted string"));
        return;
    }

    switch (ngx_http_payments_limit_create(ctx, &rc,
                                           ngx_http_payments_money_post))
    {
    case NGX_OK:
        break;

    case NGX_AGAIN:
        /* Redis was asked: this runs again once it answered */
        return;

    default:
        ngx_http_payments_finalize(r, rc);
        return;
    }

    if (ctx->body_too_large) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_PAYLOAD_TOO_LARGE, 0,
                                       "the body is larger than the "
                                       "configured limit"));
        return;
    }

    ct = r->headers_in.content_type ? r->headers_in.content_type->value.data
                                    : NULL;

    /* a cancel takes no body, and an empty one needs no type (clients
     * label an empty POST as a form) */
    if (ctx->route == PAY_ROUTE_CANCEL && ctx->body.len == 0) {
        ngx_http_payments_cancel_start(ctx);
        return;
    }

    len = ct ? r->headers_in.content_type->value.len : 0;

    while (len && ct[len - 1] == ' ') {
        len--;
    }

    for (i = 0; i < len && ct[i] != ';' && ct[i] != ' '; i++) {
        /* void */
    }

    if (i != sizeof("application/json") - 1
        || ngx_strncasecmp(ct, (u_char *) "application/json", i) != 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_UNSUPPORTED_MEDIA, 0,
                                       "send Content-Type: "
                                       "application/json"));
        return;
    }

    switch (ctx->route) {

    case PAY_ROUTE_REFUNDS:
        ngx_http_payments_refund_start(ctx);
        return;

    case PAY_ROUTE_PAYOUTS:
        ngx_http_payments_payout_start(ctx);
        return;

    case PAY_ROUTE_CANCEL:
        ngx_http_payments_cancel_start(ctx);
        return;

    case PAY_ROUTE_CAPTURE:
    case PAY_ROUTE_VOID:
        ngx_http_payments_capture_start(ctx);
        return;

    case PAY_ROUTE_ENDPOINT_CREATE:
        ngx_http_payments_create_endpoint(ctx);
        return;

    case PAY_ROUTE_ENDPOINT_ROTATE:
        ngx_http_payments_rotate_endpoint(ctx);
        return;

    default: /* PAY_ROUTE_PAYMENTS */
        ngx_http_payments_register_start(ctx);
    }
}




ngx_int_t
ngx_http_payments_router_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_payments_request_body_filter;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_payments_redact_early;

    return NGX_OK;
}
