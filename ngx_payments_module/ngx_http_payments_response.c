
/*
 * Copyright (C) ngx_payments authors
 *
 * Answers: headers, JSON and problem+json bodies, HTML pages, the request
 * id every answer carries ($payments_request_id, X-Request-Id), and the
 * header and body filters that turn nginx's own errors on the module's
 * routes into problem+json with X-Request-Id.  Everything else uses these;
 * they call nothing but nginx, libpq's result accessors and the core.
 */


#include "ngx_http_payments_module.h"

#include <openssl/rand.h>


/* prototypes */
static ngx_int_t ngx_http_payments_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_payments_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

/* random bytes for request ids, taken from the end; a worker refills it
 * (ngx_pid tells a forked copy from its own) */
static u_char                            ngx_http_payments_rnd[4096];
static size_t                            ngx_http_payments_rnd_left;
static ngx_pid_t                         ngx_http_payments_rnd_pid;


/* Every answer's own headers: X-Request-Id (when known), no-store, and
 * nosniff (a JSON answer, a page or a file is never read by a browser as
 * another type). */
static ngx_int_t
ngx_http_payments_answer_headers(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx)
{
    ngx_table_elt_t  *h;

    if (ctx && ctx->request_id.len) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Request-Id");
        h->value = ctx->request_id;
    }

    if (ngx_http_payments_add_header(r, "X-Content-Type-Options", "nosniff")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_payments_add_header(r, "Cache-Control", "no-store");
}



/* answers */


/* the first request header called name; *count says how many there are */

ngx_table_elt_t *
ngx_http_payments_header(ngx_http_request_t *r, const char *name,
    ngx_uint_t *count)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    len = ngx_strlen(name);
    found = NULL;
    *count = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            if (found == NULL) {
                found = &h[i];
            }

            (*count)++;
        }
    }

    return found;
}




ngx_int_t
ngx_http_payments_add_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    const char       *c;
    ngx_table_elt_t  *h;

    /* a value from a request, a PSP or the database never ends a header:
     * a CR, LF or other control byte refuses the whole answer */
    for (c = value; *c; c++) {
        if ((u_char) *c < 0x20 || *c == 0x7f) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "payments: control character in a \"%s\" "
                          "header refused", name);
            return NGX_ERROR;
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.len = ngx_strlen(value);
    h->value.data = ngx_pnalloc(r->pool, h->value.len);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, value, h->value.len);

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *content_type, const u_char *body, size_t len)
{
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_chain_t               out;
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx) {
        ctx->answered = 1;
    }

    /* answers about money are never cached anywhere */
    if (ngx_http_payments_answer_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    r->headers_out.status = status;

    if (status == 422) {
        /* nginx 1.22 knows no reason phrase for 422: "HTTP/1.1 422 " */
        ngx_str_set(&r->headers_out.status_line, "422 Unprocessable Entity");
    }

    r->headers_out.content_type.len = ngx_strlen(content_type);
    r->headers_out.content_type.data = (u_char *) content_type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = len;

    if (len == 0 || r->header_only || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->pos, body, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


/*
 * An answer pay_claim or pay_finish stored (status and body), sent again;
 * a replay says so (Idempotent-Replayed) and is counted.
 */

ngx_int_t
ngx_http_payments_send_stored(ngx_http_request_t *r, const char *status,
    const char *body, size_t len, ngx_uint_t replayed)
{
    char                     *ad, *plain;
    size_t                    olen;
    ngx_int_t                 n;
    ngx_http_payments_ctx_t  *ctx;

    n = ngx_atoi((u_char *) status, ngx_strlen(status));
    if (n < 200 || n > 599) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * A registration's answer names the PSP's token: with a keyring it is
     * stored sealed, associated data "response:<merchant>:<idempotency
     * key>" (the psp_tokens table).  A JSON answer never starts so.
     */
    if (len > 3 && ngx_strncmp(body, "v1.", 3) == 0) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

        if (ctx == NULL || ctx->merchant.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ad = ngx_pnalloc(r->pool, sizeof("response::") + ctx->merchant.len
                                  + ngx_strlen(ctx->idem_key));
        plain = ngx_pnalloc(r->pool, len + 1);
        if (ad == NULL || plain == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf((u_char *) ad, "response:%V:%s%Z", &ctx->merchant,
                    ctx->idem_key);

        if (ctx->pmcf->keyring == NULL
            || pay_unseal(ctx->pmcf->keyring, ad, body, len, plain, len + 1,
                          &olen)
               != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "payments: sealed stored answer does not open "
                          "(merchant \"%V\")", &ctx->merchant);
            return ngx_http_payments_store_unavailable(r);
        }

        body = plain;
        len = olen;
    }

    if (replayed) {
        ngx_http_payments_count(
            idempotency[NGX_HTTP_PAYMENTS_IDEM_REPLAYED]);

        if (ngx_http_payments_add_header(r, "Idempotent-Replayed", "true")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_payments_send(r, n, n < 300 ? "application/json"
                                                : "application/problem+json",
                                  (u_char *) body, len);
}


ngx_int_t
ngx_http_payments_problem(ngx_http_request_t *r, pay_err_e err,
    ngx_uint_t status, const char *detail)
{
    char       *json;
    ngx_int_t   rc;

    if (err > PAY_ERR_NONE && err < PAY_ERR__MAX) {
        ngx_http_payments_count(errors[err]);
    }

    json = pay_problem_json(err, (int) status, detail);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_payments_send(r, status ? status
                                          : (ngx_uint_t) pay_err_status(err),
                                "application/problem+json", (u_char *) json,
                                ngx_strlen(json));
    free(json);

    return rc;
}


/*
 * An error answer on the module's routes that the module did not write
 * itself: nginx's own (413 past client_max_body_size, 400 for a broken
 * chunked body, a 500 from ngx_http_finalize_request() or a handler's
 * return code) is turned into problem+json with an X-Request-Id, like every
 * other answer.  Answers of nginx's access phase (limit_req, auth_basic,
 * allow/deny), given before the module saw the request, are left alone,
 * except the 413 of client_max_body_size on a "payments" location, and the
 * 400 of a request nginx could not read far enough to choose a location
 * for, on a server with a "payments" location.
 */

static ngx_int_t
ngx_http_payments_header_filter(ngx_http_request_t *r)
{
    char                          *json;
    ngx_uint_t                     status;
    pay_err_e                      err;
    ngx_uint_t                     unrouted;
    ngx_http_payments_ctx_t       *ctx;
    ngx_http_core_srv_conf_t      *cscf;
    ngx_http_payments_loc_conf_t  *plcf;

    status = r->err_status ? (ngx_uint_t) r->err_status
                           : r->headers_out.status;

    if (r != r->main || status < NGX_HTTP_BAD_REQUEST || status > 599) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx == NULL) {
        plcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_module);
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

        /* a 400 nginx gave before any location was chosen (a request line
         * or a header it could not parse) on a server of the module's:
         * the request still has the server's own configuration */
        unrouted = (status == NGX_HTTP_BAD_REQUEST
                    && plcf != NULL && plcf->server_payments
                    && cscf != NULL && r->loc_conf == cscf->ctx->loc_conf);

        if (!unrouted
            && (status != NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                || plcf == NULL || plcf->enable != 1))
        {
            return ngx_http_next_header_filter(r);
        }

        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->request = r;
        ctx->pmcf = ngx_http_get_module_main_conf(r,
                                                  ngx_http_payments_module);
        ngx_http_set_ctx(r, ctx, ngx_http_payments_module);

        if (ngx_http_payments_request_id(r, &ctx->request_id) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ctx->answered) {
        return ngx_http_next_header_filter(r);
    }

    ctx->answered = 1;

    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        err = PAY_ERR_INVALID_REQUEST;
        break;
    case NGX_HTTP_NOT_FOUND:
        err = PAY_ERR_NOT_FOUND;
        break;
    case NGX_HTTP_NOT_ALLOWED:
        err = PAY_ERR_METHOD_NOT_ALLOWED;
        break;
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        err = PAY_ERR_PAYLOAD_TOO_LARGE;
        break;
    case NGX_HTTP_UNSUPPORTED_MEDIA_TYPE:
        err = PAY_ERR_UNSUPPORTED_MEDIA;
        break;
    case NGX_HTTP_TOO_MANY_REQUESTS:
        err = PAY_ERR_RATE_LIMITED;
        break;
    default:
        err = PAY_ERR_NONE;             /* internal_error, with its status */
    }

    json = pay_problem_json(err, (int) status, NULL);
    if (json == NULL) {
        return NGX_ERROR;
    }

    ctx->problem.len = ngx_strlen(json);
    ctx->problem.data = ngx_pnalloc(r->pool, ctx->problem.len);
    if (ctx->problem.data == NULL) {
        free(json);
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->problem.data, json, ctx->problem.len);
    free(json);

    if (ngx_http_payments_answer_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type, "application/problem+json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = ctx->problem.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_payments_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_chain_t              *cl, out;
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx == NULL || ctx->problem.len == 0 || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's page is dropped; the problem goes out once, instead */
    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->problem_sent) {
        return ngx_http_next_body_filter(r, NULL);
    }

    ctx->problem_sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->memory = 1;
    b->pos = ctx->problem.data;
    b->last = ctx->problem.data + ctx->problem.len;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


ngx_int_t
ngx_http_payments_html_headers(ngx_http_request_t *r, ngx_uint_t script)
{
    /* no inline script or style anywhere: 'self' files only */
    if (ngx_http_payments_add_header(r, "Content-Security-Policy",
            script ? "default-src 'none'; script-src 'self'; "
                     "connect-src 'self'; style-src 'self'; "
                     "frame-ancestors 'none'; base-uri 'none'; "
                     "form-action 'none'"
                   : "default-src 'none'; style-src 'self'; "
                     "frame-ancestors 'none'; base-uri 'none'; "
                     "form-action 'none'")
        != NGX_OK
        || ngx_http_payments_add_header(r, "Referrer-Policy", "no-referrer")
           != NGX_OK
        || ngx_http_payments_add_header(r, "X-Frame-Options", "DENY")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_page(ngx_http_request_t *r, ngx_uint_t status,
    const char *title, const char *message)
{
    u_char  *p, *last;
    size_t   len;

    /* fixed texts only: nothing from the request is echoed into HTML */

    if (ngx_http_payments_html_headers(r, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("<!DOCTYPE html>\n<html lang=\"en\"><head>"
                 "<meta charset=\"utf-8\"><title></title>"
                 "<link rel=\"stylesheet\" href=\"/v1/static/"
                 "style.css\"></head>"
                 "<body><h1></h1><p></p></body></html>\n")
          + 2 * ngx_strlen(title) + ngx_strlen(message);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_snprintf(p, len,
                        "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                        "<meta charset=\"utf-8\"><title>%s</title>"
                        "<link rel=\"stylesheet\" href=\"/v1/static/"
                        "style.css\"></head>"
                        "<body><h1>%s</h1><p>%s</p></body></html>\n",
                        title, title, message);

    return ngx_http_payments_send(r, status, "text/html; charset=utf-8", p,
                                  last - p);
}


void
ngx_http_payments_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_finalize_request(r, rc);
}


/*
 * The one row a pay_* function answers with: NGX_OK.  Otherwise what failed
 * is logged (ERR: a failed query is an operational error, not a broken
 * invariant), the request is answered 503 store_unavailable, and the
 * caller only returns.
 */

ngx_int_t
ngx_http_payments_pg_row(ngx_http_request_t *r, PGresult *res,
    const char *function)
{
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK
        && PQntuples(res) == 1)
    {
        return NGX_OK;
    }

    if (res != NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: %s: %s", function,
                      PQresultErrorMessage(res));
    }

    ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));

    return NGX_ERROR;
}


ngx_int_t
ngx_http_payments_store_unavailable(ngx_http_request_t *r)
{
    if (ngx_http_payments_add_header(r, "Retry-After", "1") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_problem(r, PAY_ERR_STORE_UNAVAILABLE, 0,
                                     "the payment store is unavailable; "
                                     "retry with the same Idempotency-Key");
}


void
ngx_http_payments_response_init(ngx_conf_t *cf)
{
    (void) cf;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_payments_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_payments_body_filter;
}


/*
 * The request id, one per request: the value of $payments_request_id.  The
 * variable is cacheable, so nginx keeps the first value it gave in
 * r->variables (shared with subrequests, kept across internal redirects):
 * the X-Request-Id of every answer, the access log and a limit_req key see
 * the same id, whichever phase asked first.  It is a sane client
 * X-Request-Id (exactly one, 1 to 64 of [A-Za-z0-9._-]), else 32 random hex
 * digits.
 */

ngx_int_t
ngx_http_payments_request_id_add(ngx_conf_t *cf)
{
    ngx_int_t                       index;
    ngx_http_variable_t            *var;
    ngx_http_payments_main_conf_t  *pmcf;

    static ngx_str_t  name = ngx_string("payments_request_id");

    var = ngx_http_add_variable(cf, &name, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_payments_request_id_variable;

    index = ngx_http_get_variable_index(cf, &name);
    if (index == NGX_ERROR) {
        return NGX_ERROR;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);
    pmcf->request_id_index = (ngx_uint_t) index;

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_variable_value_t      *v;
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

    v = ngx_http_get_indexed_variable(r, pmcf->request_id_index);

    if (v == NULL || v->not_found || v->len == 0) {
        return NGX_ERROR;
    }

    id->data = v->data;
    id->len = v->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char           *p, rnd[16];
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    h = ngx_http_payments_header(r, "X-Request-Id", &n);

    if (h && n == 1 && h->value.len > 0 && h->value.len <= 64) {
        for (p = h->value.data; p < h->value.data + h->value.len; p++) {
            if (!isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
                break;
            }
        }

        if (p == h->value.data + h->value.len) {
            v->data = h->value.data;
            v->len = h->value.len;
            goto done;
        }
    }

    /*
     * RAND_bytes() costs about 2 us a call, as much as a whole rejected
     * request: the worker takes its ids from a 4k buffer of it instead.
     */

    if (ngx_http_payments_rnd_left < sizeof(rnd)
        || ngx_http_payments_rnd_pid != ngx_pid)
    {
        if (RAND_bytes(ngx_http_payments_rnd, sizeof(ngx_http_payments_rnd))
            != 1)
        {
            return NGX_ERROR;
        }

        ngx_http_payments_rnd_left = sizeof(ngx_http_payments_rnd);
        ngx_http_payments_rnd_pid = ngx_pid;
    }

    ngx_http_payments_rnd_left -= sizeof(rnd);
    p = ngx_http_payments_rnd + ngx_http_payments_rnd_left;
    ngx_memcpy(rnd, p, sizeof(rnd));
    ngx_memzero(p, sizeof(rnd));

    v->data = ngx_pnalloc(r->pool, 2 * sizeof(rnd));
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_hex_dump(v->data, rnd, sizeof(rnd)) - v->data;

done:

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The outcomes of an Idempotency-Key claim that end the request, from a
 * claim's row (columns outcome, lease, retry_after, response_status,
 * response_body: pay_claim, pay_refund_claim, pay_payout_claim): replay and
 * duplicate send the stored answer, in_use 409 with Retry-After, reused
 * 422.  NGX_DECLINED (nothing sent) for any other outcome.
 */

/*
 * Retry-After of a 409 idempotency_key_in_use: about the time the first
 * request can still take, not its whole lease.  The database says when the
 * lease ends (lease_left seconds); the first request began a lease earlier
 * and is answered within payments_request_timeout of its start, so it ends
 * lease - request_timeout before its lease does.  At least 1 s; never past
 * the lease.
 */

static const char *
ngx_http_payments_in_use_wait(ngx_http_request_t *r, const char *lease_left)
{
    u_char                         *buf;
    ngx_int_t                       left, wait;
    ngx_http_payments_main_conf_t  *pmcf;

    left = ngx_atoi((u_char *) lease_left, ngx_strlen(lease_left));
    if (left == NGX_ERROR || left < 1) {
        return "1";
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

    wait = left - pmcf->lease
           + (ngx_int_t) ((pmcf->request_timeout + 999) / 1000);
    wait = ngx_max(1, ngx_min(wait, left));

    buf = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (buf == NULL) {
        return "1";
    }

    *ngx_sprintf(buf, "%i", wait) = '\0';

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: key in use, lease ends in %is, retry after %is",
                   left, wait);

    return (const char *) buf;
}


ngx_int_t
ngx_http_payments_claim_answer(ngx_http_request_t *r, PGresult *res)
{
    char  *outcome, *p;

    outcome = PQgetvalue(res, 0, 0);

    if (ngx_strcmp(outcome, "replay") == 0
        || ngx_strcmp(outcome, "duplicate") == 0)
    {
        return ngx_http_payments_send_stored(r, PQgetvalue(res, 0, 3),
                                             PQgetvalue(res, 0, 4),
                                             PQgetlength(res, 0, 4),
                                             outcome[0] == 'r');
    }

    if (ngx_strcmp(outcome, "in_use") == 0) {
        ngx_http_payments_count(idempotency[NGX_HTTP_PAYMENTS_IDEM_IN_USE]);
        p = PQgetvalue(res, 0, 2);

        if (ngx_http_payments_add_header(r, "Retry-After",
                                         ngx_http_payments_in_use_wait(r, p))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_payments_problem(r, PAY_ERR_IDEM_IN_USE, 0,
                                         "a request with this "
                                         "Idempotency-Key is still being "
                                         "processed");
    }

    if (ngx_strcmp(outcome, "reused") == 0) {
        ngx_http_payments_count(idempotency[NGX_HTTP_PAYMENTS_IDEM_REUSED]);
        return ngx_http_payments_problem(r, PAY_ERR_IDEM_REUSED, 0,
                                         "this Idempotency-Key was used "
                                         "with a different request");
    }

    return NGX_DECLINED;
}
