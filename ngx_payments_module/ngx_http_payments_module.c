
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_module: directives, configuration checks, worker start
 * and exit, routing, and the helpers every handler answers with.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"

#include <payments/apikey.h>
#include <openssl/rand.h>


#define NGX_HTTP_PAYMENTS_ROUTE_HEALTHZ      1
#define NGX_HTTP_PAYMENTS_ROUTE_READYZ       2
#define NGX_HTTP_PAYMENTS_ROUTE_PAYMENTS     3
#define NGX_HTTP_PAYMENTS_ROUTE_PAYMENT      4
#define NGX_HTTP_PAYMENTS_ROUTE_CHECKOUT     5
#define NGX_HTTP_PAYMENTS_ROUTE_PAY          6
#define NGX_HTTP_PAYMENTS_ROUTE_WEBHOOK      7
#define NGX_HTTP_PAYMENTS_ROUTE_RETURN       8
#define NGX_HTTP_PAYMENTS_ROUTE_STATUS       9
#define NGX_HTTP_PAYMENTS_ROUTE_STATIC       10
#define NGX_HTTP_PAYMENTS_ROUTE_METRICS      11


static void *ngx_http_payments_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_payments_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_payments_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_payments_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_payments(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_payments_database(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_payments_public_origin(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_payments_pay_token_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_payments_psp(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_payments_html(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_uint_t ngx_http_payments_return_path(ngx_str_t *uri,
    ngx_str_t *psp, ngx_str_t *id);
static ngx_int_t ngx_http_payments_read_secret(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *directive, size_t min, ngx_str_t *secret);
/* what ngx_http_payments_read_file() reads: at most 4k, mode 0600; 4k; 1m */
#define NGX_HTTP_PAYMENTS_FILE_SECRET  1
#define NGX_HTTP_PAYMENTS_FILE_PUBLIC  0
#define NGX_HTTP_PAYMENTS_FILE_CA      2

static ngx_int_t ngx_http_payments_read_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *directive, size_t min, ngx_uint_t secret,
    ngx_str_t *out);
static char *ngx_http_payments_psp_pin(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *v);
static char *ngx_http_payments_psp_webhook_key(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *v);
static char *ngx_http_payments_psp_params(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, unsigned given);
static const char *ngx_http_payments_dialect_names(ngx_conf_t *cf);
static const char *ngx_http_payments_dialects_taking(ngx_conf_t *cf,
    unsigned bit);
static char *ngx_http_payments_psp_webhook_secret(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *file);
static ngx_int_t ngx_http_payments_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_payments_init_process(ngx_cycle_t *cycle);
static void ngx_http_payments_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_payments_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_payments_log_handler(ngx_http_request_t *r);
static void ngx_http_payments_body_handler(ngx_http_request_t *r);
static void ngx_http_payments_body_ready(ngx_http_payments_ctx_t *ctx);
static ngx_uint_t ngx_http_payments_secure(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_tls_required(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx, ngx_uint_t browser);
static ngx_int_t ngx_http_payments_request_id(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_redact(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_payments_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_payments_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_payments_auth_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_purge(ngx_event_t *ev);
static void ngx_http_payments_purge_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);


#define NGX_HTTP_PAYMENTS_PLAIN_OFF       0
#define NGX_HTTP_PAYMENTS_PLAIN_LOOPBACK  1

static ngx_conf_enum_t  ngx_http_payments_plain_http[] = {
    { ngx_string("off"), NGX_HTTP_PAYMENTS_PLAIN_OFF },
    { ngx_string("loopback"), NGX_HTTP_PAYMENTS_PLAIN_LOOPBACK },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_payments_commands[] = {

    { ngx_string("payments"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_payments,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_database"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_payments_database,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_database_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, pool_size),
      NULL },

    { ngx_string("payments_database_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, db_timeout),
      NULL },

    { ngx_string("payments_database_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, db_queue),
      NULL },

    { ngx_string("payments_public_origin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_payments_public_origin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_pay_token_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_payments_pay_token_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_psp"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_psp,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_idempotency_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, lease),
      NULL },

    { ngx_string("payments_idempotency_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, ttl),
      NULL },

    { ngx_string("payments_request_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, request_timeout),
      NULL },

    { ngx_string("payments_session_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, session_lifetime),
      NULL },

    { ngx_string("payments_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, max_body),
      NULL },

    { ngx_string("payments_html"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_payments_html,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_auth_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, auth_cache),
      NULL },

    { ngx_string("payments_plain_http"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_payments_loc_conf_t, plain_http),
      &ngx_http_payments_plain_http },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_payments_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_payments_postconfiguration,   /* postconfiguration */

    ngx_http_payments_create_main_conf,    /* create main configuration */
    ngx_http_payments_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_payments_create_loc_conf,     /* create location configuration */
    ngx_http_payments_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_payments_module = {
    NGX_MODULE_V1,
    &ngx_http_payments_module_ctx,         /* module context */
    ngx_http_payments_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_payments_init_module,         /* init module */
    ngx_http_payments_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_payments_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;
static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;




/* worker 0 purges idempotency keys past their TTL, a batch a minute */
#define NGX_HTTP_PAYMENTS_PURGE_EVERY  60000

static ngx_event_t                   ngx_http_payments_purge_timer;
static ngx_http_payments_pg_query_t  ngx_http_payments_purge_query;
static const char                   *ngx_http_payments_purge_params[1] = {
    "1000"
};


static void *
ngx_http_payments_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    pmcf->pool_size = NGX_CONF_UNSET_UINT;
    pmcf->db_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->db_queue = NGX_CONF_UNSET_UINT;
    pmcf->lease = NGX_CONF_UNSET;
    pmcf->ttl = NGX_CONF_UNSET;
    pmcf->request_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->session_lifetime = NGX_CONF_UNSET;
    pmcf->max_body = NGX_CONF_UNSET_SIZE;
    pmcf->auth_cache = NGX_CONF_UNSET_MSEC;

    pmcf->token_keys = ngx_array_create(cf->pool, 2, sizeof(pay_token_key_t));
    pmcf->psps = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_payments_psp_t));
    if (pmcf->token_keys == NULL || pmcf->psps == NULL) {
        return NULL;
    }

    return pmcf;
}


static char *
ngx_http_payments_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_uint_t                      i;
    ngx_http_payments_psp_t        *psp;
    ngx_http_payments_main_conf_t  *pmcf = conf;

    ngx_conf_init_uint_value(pmcf->pool_size, 4);
    ngx_conf_init_msec_value(pmcf->db_timeout, 5000);
    ngx_conf_init_uint_value(pmcf->db_queue, 4096);
    ngx_conf_init_value(pmcf->lease, 30);
    ngx_conf_init_value(pmcf->ttl, 24 * 3600);
    ngx_conf_init_msec_value(pmcf->request_timeout, 15000);
    ngx_conf_init_value(pmcf->session_lifetime, 3600);
    ngx_conf_init_size_value(pmcf->max_body, 64 * 1024);
    ngx_conf_init_msec_value(pmcf->auth_cache, 5000);

    if (pmcf->auth_cache > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_auth_cache\" must be at most 60s: "
                           "revocations must take effect within seconds");
        return NGX_CONF_ERROR;
    }

    if (pmcf->pool_size == 0 || pmcf->pool_size > 256) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_database_pool\" must be 1..256");
        return NGX_CONF_ERROR;
    }

    if (pmcf->lease < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_idempotency_lease\" must be >= 1s");
        return NGX_CONF_ERROR;
    }

    /*
     * A claim is live from its INSERT in pay_claim until pay_finish commits:
     * the rest of pay_claim (one database timeout), the PSP budget (the
     * request timeout), then pay_finish waiting for a connection and
     * running (a database timeout each).  A shorter lease lets a retry take
     * over a claim whose holder is still at work.
     */
    if ((ngx_msec_t) pmcf->lease * 1000
        < pmcf->request_timeout + 3 * pmcf->db_timeout)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_idempotency_lease\" %Ts is shorter "
                           "than \"payments_request_timeout\" %Mms plus 3 "
                           "times \"payments_database_timeout\" %Mms: raise "
                           "the lease to at least %Ms or lower the timeouts",
                           pmcf->lease, pmcf->request_timeout,
                           pmcf->db_timeout,
                           (pmcf->request_timeout + 3 * pmcf->db_timeout
                            + 999) / 1000);
        return NGX_CONF_ERROR;
    }

    if (pmcf->ttl < 24 * 3600) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_idempotency_ttl\" must be at least "
                           "24h: merchants retry for a day");
        return NGX_CONF_ERROR;
    }

    /* Stripe: 30 min to 24 h; Adyen: at most 24 h */
    if (pmcf->session_lifetime < 1800 || pmcf->session_lifetime > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_session_lifetime\" must be between "
                           "30m and 24h (the PSPs' limits)");
        return NGX_CONF_ERROR;
    }

    /*
     * Stripe refuses an expires_at less than 30 min ahead when the request
     * reaches it, and a claim's request may be sent up to a lease after
     * expires_at was fixed.
     */
    psp = pmcf->psps->elts;

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (psp[i].dialect == PAY_DIALECT_STRIPE
            && pmcf->session_lifetime < 1800 + pmcf->lease)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_session_lifetime\" %Ts leaves "
                               "the stripe PSP \"%V\" less than its 30m "
                               "minimum once \"payments_idempotency_lease\" "
                               "%Ts has passed: raise it to at least %Ts",
                               pmcf->session_lifetime, &psp[i].name,
                               pmcf->lease, 1800 + pmcf->lease);
            return NGX_CONF_ERROR;
        }
    }

    if (pmcf->max_body < 1024 || pmcf->max_body > 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_max_body\" must be 1k..1m");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_metrics_zone(cf, pmcf->psps->nelts) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* Every request the module handled is counted once it is done. */

static ngx_int_t
ngx_http_payments_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_payments_log_handler;

    /* bodies are read into memory by the module, never into a file */
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_payments_request_body_filter;

    /* nginx's own error answers on the module's routes get problem+json */
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_payments_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_payments_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_log_handler(ngx_http_request_t *r)
{
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx != NULL && r == r->main) {
        ngx_http_payments_metrics_request(ctx->route,
                                          r->headers_out.status);
    }

    return NGX_OK;
}


static void *
ngx_http_payments_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_payments_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    plcf->enable = NGX_CONF_UNSET;
    plcf->plain_http = NGX_CONF_UNSET_UINT;

    return plcf;
}


static char *
ngx_http_payments_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_payments_loc_conf_t *prev = parent;
    ngx_http_payments_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->plain_http, prev->plain_http,
                              NGX_HTTP_PAYMENTS_PLAIN_OFF);

    return NGX_CONF_OK;
}


static char *
ngx_http_payments(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_loc_conf_t   *plcf = conf;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_payments_main_conf_t  *pmcf;

    if (plcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);

    /* fail closed: no location serves payments without its guards */

    if (pmcf->conninfo.len == 0) {
        return "requires \"payments_database\" before it";
    }

    if (pmcf->public_origin.len == 0) {
        return "requires \"payments_public_origin\" before it";
    }

    if (pmcf->token_keys->nelts == 0) {
        return "requires \"payments_pay_token_key\" before it";
    }

    if (pmcf->psps->nelts == 0) {
        return "requires at least one \"payments_psp\" before it";
    }

    plcf->enable = 1;
    pmcf->used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_payments_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_payments_database(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    char                *err;
    u_char              *p;
    ngx_str_t           *value;
    ngx_uint_t           has_hostaddr, has_socket, has_gss;
    PQconninfoOption    *opts, *o;

    if (pmcf->conninfo.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    err = NULL;
    opts = PQconninfoParse((char *) value[1].data, &err);
    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_database\": invalid connection "
                           "string: %s", err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    has_hostaddr = 0;
    has_socket = 0;
    has_gss = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            has_hostaddr = 1;

        } else if (ngx_strcmp(o->keyword, "host") == 0
                   && o->val[0] == '/')
        {
            has_socket = 1;

        } else if (ngx_strcmp(o->keyword, "gssencmode") == 0) {
            has_gss = 1;

        } else if (ngx_strcmp(o->keyword, "password") == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_database\": do not put a "
                               "password in nginx.conf; use passfile=");
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }
    }

    PQconninfoFree(opts);

    /* a host name would be resolved on the worker's thread: refuse it */
    if (!has_hostaddr && !has_socket) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_database\" needs a numeric "
                           "\"hostaddr=\" or a unix socket \"host=/dir\": "
                           "resolving a host name would block nginx");
        return NGX_CONF_ERROR;
    }

    pmcf->conninfo.len = value[1].len + sizeof(" gssencmode=disable") - 1;
    pmcf->conninfo.data = ngx_pnalloc(cf->pool, pmcf->conninfo.len + 1);
    if (pmcf->conninfo.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(pmcf->conninfo.data, value[1].data, value[1].len);

    if (!has_gss) {
        /* GSSAPI negotiation may block on a credentials cache */
        p = ngx_cpymem(p, " gssencmode=disable",
                       sizeof(" gssencmode=disable") - 1);
    }

    *p = '\0';
    pmcf->conninfo.len = p - pmcf->conninfo.data;

    return NGX_CONF_OK;
}


static char *
ngx_http_payments_public_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    u_char        *url;
    ngx_str_t     *value;
    pay_origin_t   o;

    if (pmcf->public_origin.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    url = ngx_http_payments_cstr(cf->pool, &value[1]);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }

    /* plain http only for a loopback test (see the README) */
    if (pay_origin_parse((char *) url, &o, 1) != 0
        || (ngx_strcmp(o.scheme, "http") == 0
            && ngx_strcmp(o.host, "127.0.0.1") != 0
            && ngx_strcmp(o.host, "localhost") != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_public_origin\": \"%V\" is not an "
                           "https origin (http only for 127.0.0.1)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    pmcf->public_origin = value[1];

    while (pmcf->public_origin.len
           && pmcf->public_origin.data[pmcf->public_origin.len - 1] == '/')
    {
        pmcf->public_origin.len--;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_payments_pay_token_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    size_t            i, n;
    ngx_str_t        *value, secret, kid;
    pay_token_key_t  *k;

    value = cf->args->elts;

    ngx_str_set(&kid, "k1");

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "kid=", 4) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_pay_token_key\": unknown "
                               "parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        kid.data = value[2].data + 4;
        kid.len = value[2].len - 4;
    }

    if (kid.len == 0 || kid.len > 32) {
        return "kid must be 1..32 characters";
    }

    for (i = 0; i < kid.len; i++) {
        if (!isalnum(kid.data[i]) && kid.data[i] != '_'
            && kid.data[i] != '-')
        {
            return "kid must be [A-Za-z0-9_-]";
        }
    }

    k = pmcf->token_keys->elts;
    for (n = 0; n < pmcf->token_keys->nelts; n++) {
        if (ngx_strlen(k[n].kid) == kid.len
            && ngx_strncmp(k[n].kid, kid.data, kid.len) == 0)
        {
            return "has a duplicate kid";
        }
    }

    if (ngx_http_payments_read_secret(cf, &value[1], &cmd->name,
                                      PAY_TOKEN_KEY_MIN, &secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    k = ngx_array_push(pmcf->token_keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(k, sizeof(pay_token_key_t));
    ngx_memcpy(k->kid, kid.data, kid.len);
    k->key = secret.data;
    k->len = secret.len;

    return NGX_CONF_OK;
}



static char *
ngx_http_payments_psp(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    u_char                   *url, *p;
    size_t                    len;
    ngx_str_t                *value, v, secret_file;
    ngx_int_t                 n;
    unsigned                  given;
    const char               *fmt, *msg;
    ngx_uint_t                i;
    pay_origin_t              base, *ho;
    ngx_http_payments_psp_t  *psp;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > PAY_PSP_NAME_MAX) {
        return "needs a name of 1..32 characters";
    }

    for (i = 0; i < value[1].len; i++) {
        if (!(islower(value[1].data[i]) || isdigit(value[1].data[i])
              || value[1].data[i] == '_' || value[1].data[i] == '-'))
        {
            return "name must be [a-z0-9_-]";
        }
    }

    if (ngx_http_payments_find_psp(pmcf, (char *) value[1].data,
                                   value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\": \"%V\" is defined twice",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    psp = ngx_array_push(pmcf->psps);
    if (psp == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(psp, sizeof(ngx_http_payments_psp_t));
    psp->name = value[1];
    psp->index = pmcf->psps->nelts - 1;
    psp->timeout = 10000;
    psp->connect_timeout = 3000;
    psp->retries = 2;
    psp->webhook_tolerance = 300;
    ngx_str_null(&secret_file);
    given = 0;

    psp->webhook_secrets = ngx_array_create(cf->pool, 2,
                                            sizeof(pay_secret_t));
    psp->webhook_keys = ngx_array_create(cf->pool, 2, sizeof(pay_jwt_key_t));
    if (psp->webhook_secrets == NULL || psp->webhook_keys == NULL) {
        return NGX_CONF_ERROR;
    }

    psp->hosted = ngx_array_create(cf->pool, 2, sizeof(pay_origin_t));
    if (psp->hosted == NULL) {
        return NGX_CONF_ERROR;
    }

    /* allow_http first: it decides how the URLs are checked */
    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strcmp(value[i].data, "allow_http") == 0) {
            psp->allow_http = 1;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "allow_http") == 0) {
            continue;
        }

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (p == NULL) {
            goto invalid;
        }

        len = p - value[i].data;
        v.data = p + 1;
        v.len = value[i].len - len - 1;

        if (v.len == 0) {
            goto invalid;
        }

#define ngx_http_payments_param(name)                                        \
        (len == sizeof(name) - 1 && ngx_strncmp(value[i].data, name, len) == 0)

        if (ngx_http_payments_param("dialect")) {
            psp->dl = pay_dialect_find((char *) v.data, v.len);
            if (psp->dl == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\": unknown dialect "
                                   "\"%V\" (%s)", &v,
                                   ngx_http_payments_dialect_names(cf));
                return NGX_CONF_ERROR;
            }

            psp->dialect = psp->dl->id;

        } else if (ngx_http_payments_param("url")) {
            url = ngx_http_payments_cstr(cf->pool, &v);
            if (url == NULL) {
                return NGX_CONF_ERROR;
            }

            if (pay_origin_parse((char *) url, &base, psp->allow_http) != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: url \"%V\" is not "
                                   "an https URL (http needs allow_http)",
                                   &psp->name, &v);
                return NGX_CONF_ERROR;
            }

            if (ngx_strcmp(base.scheme, "http") == 0
                && !pay_origin_is_loopback(&base))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: allow_http is for a "
                                   "mock on this machine only: url \"%V\" is "
                                   "not on a loopback address", &psp->name,
                                   &v);
                return NGX_CONF_ERROR;
            }

            while (v.len && v.data[v.len - 1] == '/') {
                v.len--;
            }

            psp->url = v;

        } else if (ngx_http_payments_param("secret_file")) {
            secret_file = v;

        } else if (ngx_http_payments_param("hosted")) {
            url = ngx_http_payments_cstr(cf->pool, &v);
            ho = ngx_array_push(psp->hosted);
            if (url == NULL || ho == NULL) {
                return NGX_CONF_ERROR;
            }

            if (pay_origin_parse((char *) url, ho, psp->allow_http) != 0
                || (ngx_strcmp(ho->scheme, "http") == 0
                    && !pay_origin_is_loopback(ho)))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: hosted \"%V\" is "
                                   "not an https origin (allow_http admits "
                                   "loopback ones only)", &psp->name, &v);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("stripe_version")) {
            given |= PAY_PSP_P_VERSION;
            psp->stripe_version = v;

        } else if (ngx_http_payments_param("merchant_account")) {
            given |= PAY_PSP_P_MERCHANT_ACCOUNT;
            psp->merchant_account = v;

        } else if (ngx_http_payments_param("timeout")) {
            psp->timeout = ngx_parse_time(&v, 0);
            if (psp->timeout == (ngx_msec_t) NGX_ERROR || psp->timeout == 0) {
                goto invalid;
            }

        } else if (ngx_http_payments_param("connect_timeout")) {
            psp->connect_timeout = ngx_parse_time(&v, 0);
            if (psp->connect_timeout == (ngx_msec_t) NGX_ERROR
                || psp->connect_timeout == 0)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_param("webhook_secret_file")) {
            given |= PAY_PSP_P_WEBHOOK_SECRET;
            if (ngx_http_payments_psp_webhook_secret(cf, psp, &v)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("pin")) {
            if (ngx_http_payments_psp_pin(cf, psp, &v) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("ca_file")) {
            /* read now, so no worker opens a file during a handshake */
            if (ngx_http_payments_read_file(cf, &v, &cmd->name, 1,
                                            NGX_HTTP_PAYMENTS_FILE_CA,
                                            &psp->ca_pem)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_key")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            if (ngx_http_payments_psp_webhook_key(cf, psp, &v)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_header")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            for (n = 0; n < (ngx_int_t) v.len; n++) {
                /* an RFC 9110 token */
                if (!(isalnum(v.data[n])
                      || (v.data[n] != '\0'
                          && ngx_strchr("!#$%&'*+-.^_`|~", v.data[n]))))
                {
                    goto invalid;
                }
            }
            psp->webhook_header = v;

        } else if (ngx_http_payments_param("webhook_iss")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            psp->webhook_iss = (char *) ngx_http_payments_cstr(cf->pool, &v);
            if (psp->webhook_iss == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_aud")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            psp->webhook_aud = (char *) ngx_http_payments_cstr(cf->pool, &v);
            if (psp->webhook_aud == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_tolerance")) {
            given |= PAY_PSP_P_TOLERANCE;
            psp->webhook_tolerance = ngx_parse_time(&v, 1);
            if (psp->webhook_tolerance == (time_t) NGX_ERROR
                || psp->webhook_tolerance < 1
                || psp->webhook_tolerance > 3600)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_param("mode")) {
            if (v.len == 4 && ngx_strncmp(v.data, "live", 4) == 0) {
                psp->live = 1;
            } else if (!(v.len == 4 && ngx_strncmp(v.data, "test", 4) == 0)) {
                goto invalid;
            }

        } else if (ngx_http_payments_param("retries")) {
            n = ngx_atoi(v.data, v.len);
            if (n == NGX_ERROR || n > 10) {
                goto invalid;
            }
            psp->retries = n;

        } else {
            goto invalid;
        }

#undef ngx_http_payments_param
    }

    if (psp->dl == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\" %V: needs dialect=%s",
                           &psp->name, ngx_http_payments_dialect_names(cf));
        return NGX_CONF_ERROR;
    }

    /* the dialect's own parameters, from its table entry */
    if (ngx_http_payments_psp_params(cf, psp, given) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (psp->url.len == 0) {
        return "needs url=";
    }

    if (psp->hosted->nelts == 0) {
        return "needs at least one hosted= origin (the PSP's payment page)";
    }

    if (psp->allow_http && psp->live) {
        return "with mode=live refuses allow_http: live money goes over "
               "https only";
    }

    if (psp->pins && ngx_strncmp(psp->url.data, "https://", 8) != 0) {
        return "with pin= needs an https url=";
    }

    if (secret_file.len == 0) {
        return "needs secret_file= (the PSP API key)";
    }

    if (ngx_http_payments_read_secret(cf, &secret_file, &cmd->name, 8,
                                      &psp->secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* A key may say which money it moves (Stripe's sk_test_/sk_live_): a
     * test key on a live PSP, or the reverse, would fail every payment or
     * move real money from a test setup.  The key is never printed. */
    if (psp->dl->credential_check != NULL) {
        msg = psp->dl->credential_check((char *) psp->secret.data,
                                        psp->secret.len, (int) psp->live);
        if (msg != NULL) {
            return (char *) msg;
        }
    }

    /* the dialect's "Name: prefix%s": the key in place of %s */
    fmt = psp->dl->auth_header;
    p = (u_char *) ngx_strstr(fmt, "%s");
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_strlen(fmt) - 2 + psp->secret.len + 1;
    psp->auth_header = ngx_pnalloc(cf->pool, len);
    if (psp->auth_header == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_snprintf((u_char *) psp->auth_header, len, "%*s%V%s%Z",
                 (size_t) (p - (u_char *) fmt), fmt, &psp->secret, p + 2);

    /* what the webhook verifier is given, once */
    psp->wconf.secrets = psp->webhook_secrets->elts;
    psp->wconf.nsecrets = psp->webhook_secrets->nelts;
    psp->wconf.keys = psp->webhook_keys->elts;
    psp->wconf.nkeys = psp->webhook_keys->nelts;
    psp->wconf.header = (char *) ngx_http_payments_cstr(cf->pool,
                                                        &psp->webhook_header);
    psp->wconf.iss = psp->webhook_iss;
    psp->wconf.aud = psp->webhook_aud;
    psp->wconf.tolerance = psp->webhook_tolerance;
    psp->wconf.live = (int) psp->live;
    psp->wconf.merchant_account =
        psp->merchant_account.len
        ? (char *) ngx_http_payments_cstr(cf->pool, &psp->merchant_account)
        : NULL;

    if (psp->wconf.header == NULL
        || (psp->merchant_account.len && psp->wconf.merchant_account == NULL))
    {
        return NGX_CONF_ERROR;
    }

    if (psp->stripe_version.len) {
        len = psp->stripe_version.len + sizeof("Stripe-Version: ");
        psp->version_header = ngx_pnalloc(cf->pool, len);
        if (psp->version_header == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_snprintf((u_char *) psp->version_header, len,
                     "Stripe-Version: %V%Z", &psp->stripe_version);
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"payments_psp\" %V: invalid parameter \"%V\"",
                       &value[1], &value[i]);
    return NGX_CONF_ERROR;
}


/* payments_html DIR: the pending page's script and the pages' style */

static char *
ngx_http_payments_html(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    u_char     *p;
    ngx_str_t  *value, file;

    if (pmcf->html_js.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    file.len = value[1].len + sizeof("/pending.js");
    file.data = ngx_pnalloc(cf->pool, file.len);
    if (file.data == NULL) {
        return NGX_CONF_ERROR;
    }

    /* a C string: the file is opened by this name */
    p = ngx_sprintf(file.data, "%V/pending.js%Z", &value[1]);
    file.len = p - file.data - 1;

    if (ngx_http_payments_read_file(cf, &file, &cmd->name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_PUBLIC,
                                    &pmcf->html_js)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    file.data = ngx_pnalloc(cf->pool, value[1].len + sizeof("/style.css"));
    if (file.data == NULL) {
        return NGX_CONF_ERROR;
    }

    /* a C string: the file is opened by this name */
    p = ngx_sprintf(file.data, "%V/style.css%Z", &value[1]);
    file.len = p - file.data - 1;

    if (ngx_http_payments_read_file(cf, &file, &cmd->name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_PUBLIC,
                                    &pmcf->html_css)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The dialect's own parameters (dialect.h's PAY_PSP_P_*): one it does not
 * take is refused, one it needs must be there.  The messages name the
 * parameters; the dialects that take them come from the table.
 */

static const struct {
    unsigned     bit;
    const char  *names;
    const char  *needs;
} ngx_http_payments_psp_param_names[] = {
    { PAY_PSP_P_WEBHOOK_SECRET, "webhook_secret_file=",
      "needs webhook_secret_file= (the webhook signing secret; repeat it to "
      "roll the secret)" },
    { PAY_PSP_P_WEBHOOK_KEY,
      "webhook_key=, webhook_header=, webhook_iss= and webhook_aud=",
      "needs webhook_key=KID:es256|rs256:FILE (the PSP's public key; repeat "
      "it to roll keys)" },
    { PAY_PSP_P_MERCHANT_ACCOUNT, "merchant_account=",
      "needs merchant_account= (the PSP's merchant account)" },
    { PAY_PSP_P_VERSION, "stripe_version=", NULL },
    { PAY_PSP_P_TOLERANCE, "webhook_tolerance=", NULL },
};


/* "stripe|adyen|generic": the table's names, for messages */
static const char *
ngx_http_payments_dialect_names(ngx_conf_t *cf)
{
    return ngx_http_payments_dialects_taking(cf, 0);
}


/* the names of the dialects that take bit (0: all), "|"-separated */
static const char *
ngx_http_payments_dialects_taking(ngx_conf_t *cf, unsigned bit)
{
    u_char      *buf, *p, *last;
    ngx_uint_t   i;

    buf = ngx_pnalloc(cf->pool, 256);
    if (buf == NULL) {
        return "?";
    }

    p = buf;
    last = buf + 255;

    for (i = 0; pay_dialects[i] != NULL; i++) {
        if (bit && !(pay_dialects[i]->params & bit)) {
            continue;
        }

        p = ngx_slprintf(p, last, "%s%s", p == buf ? "" : "|",
                         pay_dialects[i]->name);
    }

    *p = '\0';

    return (const char *) buf;
}


static char *
ngx_http_payments_psp_params(ngx_conf_t *cf, ngx_http_payments_psp_t *psp,
    unsigned given)
{
    size_t          len;
    u_char         *key;
    ngx_uint_t      i, j;
    const char     *why;
    pay_secret_t   *sec;
    pay_jwt_key_t  *keys;

    for (i = 0; i < sizeof(ngx_http_payments_psp_param_names)
                    / sizeof(ngx_http_payments_psp_param_names[0]); i++)
    {
        if ((given & ngx_http_payments_psp_param_names[i].bit)
            && !(psp->dl->params & ngx_http_payments_psp_param_names[i].bit))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "\"payments_psp\" %V: %s: not a parameter of dialect=%s "
                "(only of dialect=%s)", &psp->name,
                ngx_http_payments_psp_param_names[i].names, psp->dl->name,
                ngx_http_payments_dialects_taking(cf,
                    ngx_http_payments_psp_param_names[i].bit));
            return NGX_CONF_ERROR;
        }

        if ((psp->dl->required & ngx_http_payments_psp_param_names[i].bit)
            && !(given & ngx_http_payments_psp_param_names[i].bit))
        {
            /* fail closed: a PSP whose webhooks cannot be verified */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_psp\" %V: with dialect=%s %s",
                               &psp->name, psp->dl->name,
                               ngx_http_payments_psp_param_names[i].needs);
            return NGX_CONF_ERROR;
        }
    }

    /* the secrets as the verifier takes them (Adyen's: hex-decoded) */
    if (psp->dl->secret_decode != NULL) {
        sec = psp->webhook_secrets->elts;

        for (i = 0; i < psp->webhook_secrets->nelts; i++) {
            key = ngx_pnalloc(cf->pool, sec[i].len);
            if (key == NULL) {
                return NGX_CONF_ERROR;
            }

            if (psp->dl->secret_decode(sec[i].data, sec[i].len, key, &len,
                                       &why)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: %s", &psp->name,
                                   why);
                return NGX_CONF_ERROR;
            }

            sec[i].data = key;
            sec[i].len = len;
        }
    }

    if (psp->dl->params & PAY_PSP_P_WEBHOOK_KEY) {
        keys = psp->webhook_keys->elts;

        for (i = 0; i < psp->webhook_keys->nelts; i++) {
            for (j = 0; j < i; j++) {
                if (ngx_strcmp(keys[i].kid, keys[j].kid) == 0) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"payments_psp\" %V: webhook_key "
                                       "kid \"%s\" is defined twice",
                                       &psp->name, keys[i].kid);
                    return NGX_CONF_ERROR;
                }
            }
        }

        if (psp->webhook_header.len == 0) {
            ngx_str_set(&psp->webhook_header, "Payments-Verification");
        }
    }

    return NGX_CONF_OK;
}


/*
 * pin=sha256//BASE64: the SHA-256 of the PSP's TLS public key
 * (SubjectPublicKeyInfo, DER), as curl's CURLOPT_PINNEDPUBLICKEY takes it.
 * Repeat it to roll the key: any one of them must match.
 */

static char *
ngx_http_payments_psp_pin(ngx_conf_t *cf, ngx_http_payments_psp_t *psp,
    ngx_str_t *v)
{
    u_char      *p, *pins;
    size_t       len, old;
    ngx_uint_t   i;

    /* "sha256//" and base64 of 32 bytes: 43 characters and one "=" */
    if (v->len != 8 + 44 || ngx_strncmp(v->data, "sha256//", 8) != 0
        || v->data[8 + 43] != '=')
    {
        goto invalid;
    }

    for (i = 8; i < 8 + 43; i++) {
        if (!isalnum(v->data[i]) && v->data[i] != '+' && v->data[i] != '/') {
            goto invalid;
        }
    }

    old = psp->pins ? ngx_strlen(psp->pins) : 0;
    len = old + 1 + v->len + 1;

    pins = ngx_pnalloc(cf->pool, len);
    if (pins == NULL) {
        return NGX_CONF_ERROR;
    }

    p = pins;

    if (old) {
        p = ngx_cpymem(p, psp->pins, old);
        *p++ = ';';
    }

    p = ngx_cpymem(p, v->data, v->len);
    *p = '\0';

    psp->pins = (char *) pins;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"payments_psp\" %V: pin=\"%V\" is not sha256// "
                       "and the base64 of a SHA-256 (44 characters); see "
                       "the README for the openssl command that makes one",
                       &psp->name, v);
    return NGX_CONF_ERROR;
}


/*
 * webhook_key=KID:ALG:FILE (generic): a public key in PEM, pinned to one
 * algorithm; the token's kid picks it, the token's alg must equal ALG.
 */

static char *
ngx_http_payments_psp_webhook_key(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *v)
{
    u_char         *c1, *c2, *last;
    ngx_str_t       kid, alg, file, pem, name;
    pay_jwt_key_t  *key;

    last = v->data + v->len;
    c1 = ngx_strlchr(v->data, last, ':');
    c2 = c1 ? ngx_strlchr(c1 + 1, last, ':') : NULL;

    if (c2 == NULL || c1 == v->data || c2 == c1 + 1 || c2 + 1 == last) {
        goto invalid;
    }

    kid.data = v->data;
    kid.len = c1 - v->data;
    alg.data = c1 + 1;
    alg.len = c2 - c1 - 1;
    file.data = c2 + 1;
    file.len = last - c2 - 1;

    key = ngx_array_push(psp->webhook_keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(key, sizeof(pay_jwt_key_t));

    if (alg.len == 5 && ngx_strncasecmp(alg.data, (u_char *) "es256", 5) == 0)
    {
        key->alg = PAY_JWT_ES256;

    } else if (alg.len == 5
               && ngx_strncasecmp(alg.data, (u_char *) "rs256", 5) == 0)
    {
        key->alg = PAY_JWT_RS256;

    } else {
        goto invalid;
    }

    key->kid = (const char *) ngx_http_payments_cstr(cf->pool, &kid);
    if (key->kid == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "payments_psp");

    /* a public key: it need not be private, only well-formed */
    if (ngx_http_payments_read_file(cf, &file, &name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_PUBLIC, &pem) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    key->pem = (const char *) pem.data;
    key->pem_len = pem.len;

    if (pay_jwt_key_check(key) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\" %V: webhook_key \"%V\": the "
                           "file is not a %s public key in PEM (an EC P-256 "
                           "key for es256, RSA of 2048 bits or more for "
                           "rs256), or the kid is not usable",
                           &psp->name, &kid,
                           key->alg == PAY_JWT_ES256 ? "ES256" : "RS256");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"payments_psp\" %V: webhook_key=\"%V\" is not "
                       "KID:es256|rs256:FILE", &psp->name, v);
    return NGX_CONF_ERROR;
}


/* webhook_secret_file=FILE: read as is; the dialect decides what it is */

static char *
ngx_http_payments_psp_webhook_secret(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *file)
{
    ngx_str_t      content, name;
    pay_secret_t  *sec;

    ngx_str_set(&name, "payments_psp");

    if (ngx_http_payments_read_secret(cf, file, &name, 16, &content)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    sec = ngx_array_push(psp->webhook_secrets);
    if (sec == NULL) {
        return NGX_CONF_ERROR;
    }

    sec->data = content.data;
    sec->len = content.len;

    return NGX_CONF_OK;
}


/*
 * Reads a secret from a file at configuration time.  The file must not be
 * readable by group or others; trailing white space is dropped.  The secret
 * itself is never logged.
 */

static ngx_int_t
ngx_http_payments_read_secret(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *directive, size_t min, ngx_str_t *secret)
{
    return ngx_http_payments_read_file(cf, name, directive, min,
                                       NGX_HTTP_PAYMENTS_FILE_SECRET, secret);
}


static ngx_int_t
ngx_http_payments_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *directive, size_t min, ngx_uint_t kind, ngx_str_t *secret)
{
    ssize_t          n;
    ngx_str_t        path;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    path = *name;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = path;
    file.log = cf->log;

    file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": cannot open file \"%V\"",
                           directive, &path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        goto failed;
    }

    if (kind == NGX_HTTP_PAYMENTS_FILE_SECRET && (fi.st_mode & (S_IRWXG | S_IRWXO))) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": secret file \"%V\" is readable by group "
                           "or others: chmod 600 it", directive, &path);
        goto failed;
    }

    if (ngx_file_size(&fi) > (kind == NGX_HTTP_PAYMENTS_FILE_CA ? 1024 * 1024 : 4096)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": file \"%V\" is larger than %s",
                           directive, &path,
                           kind == NGX_HTTP_PAYMENTS_FILE_CA ? "1m" : "4k");
        goto failed;
    }

    secret->data = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (secret->data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, secret->data, (size_t) ngx_file_size(&fi), 0);
    if (n == NGX_ERROR) {
        goto failed;
    }

    while (n > 0 && (secret->data[n - 1] == '\n' || secret->data[n - 1] == '\r'
                     || secret->data[n - 1] == ' '))
    {
        n--;
    }

    secret->data[n] = '\0';
    secret->len = n;

    ngx_close_file(file.fd);

    if (secret->len < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": secret in \"%V\" is shorter than %uz "
                           "bytes", directive, &path, min);
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_close_file(file.fd);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_payments_init_module(ngx_cycle_t *cycle)
{
    static ngx_uint_t  done;

    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "payments: curl_global_init failed");
            return NGX_ERROR;
        }

        done = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_init_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_payments_module);
    if (pmcf == NULL || !pmcf->used) {
        return NGX_OK;
    }

    if (ngx_http_payments_curl_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_pg_init(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_worker == 0) {
        ngx_memzero(&ngx_http_payments_purge_timer, sizeof(ngx_event_t));
        ngx_http_payments_purge_timer.handler = ngx_http_payments_purge;
        ngx_http_payments_purge_timer.log = cycle->log;
        ngx_http_payments_purge_timer.cancelable = 1;
        ngx_add_timer(&ngx_http_payments_purge_timer,
                      NGX_HTTP_PAYMENTS_PURGE_EVERY);
    }

    return NGX_OK;
}


static void
ngx_http_payments_purge(ngx_event_t *ev)
{
    ngx_http_payments_pg_query_t  *q = &ngx_http_payments_purge_query;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_memzero(q, sizeof(ngx_http_payments_pg_query_t));
    q->sql = "SELECT pay_purge($1)";
    q->nparams = 1;
    q->values = ngx_http_payments_purge_params;
    q->handler = ngx_http_payments_purge_done;
    q->log = ev->log;

    if (ngx_http_payments_pg_send(q) != NGX_OK) {
        ngx_add_timer(ev, NGX_HTTP_PAYMENTS_PURGE_EVERY);
    }
}


static void
ngx_http_payments_purge_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_int_t  n;

    n = 0;

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        n = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                     PQgetlength(res, 0, 0));

        if (n > 0) {
            ngx_log_error(NGX_LOG_INFO, q->log, 0,
                          "payments: purged %i expired idempotency keys", n);
        }
    }

    /* a full batch: more are waiting, go on soon */
    ngx_add_timer(&ngx_http_payments_purge_timer,
                  n == 1000 ? 1000 : NGX_HTTP_PAYMENTS_PURGE_EVERY);
}


static void
ngx_http_payments_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_metrics_worker_exit();
    ngx_http_payments_pg_exit(cycle);
    ngx_http_payments_curl_exit(cycle);
    ngx_http_payments_auth_forget_all();
}


ngx_http_payments_psp_t *
ngx_http_payments_find_psp(ngx_http_payments_main_conf_t *pmcf,
    const char *name, size_t len)
{
    ngx_uint_t                i;
    ngx_http_payments_psp_t  *psp;

    psp = pmcf->psps->elts;

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (psp[i].name.len == len
            && ngx_strncmp(psp[i].name.data, name, len) == 0)
        {
            return &psp[i];
        }
    }

    return NULL;
}


u_char *
ngx_http_payments_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}


char *
ngx_http_payments_strdup(ngx_pool_t *pool, const char *s)
{
    size_t   len;
    char    *p;

    if (s == NULL) {
        return NULL;
    }

    len = ngx_strlen(s);

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len + 1);

    return p;
}


char *
ngx_http_payments_num(ngx_pool_t *pool, int64_t n)
{
    u_char  *p, *last;

    p = ngx_pnalloc(pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    last = ngx_sprintf(p, "%L", n);
    *last = '\0';

    return (char *) p;
}


/* routing */


/* /v1/return/{psp}/{checkout} */

static ngx_uint_t
ngx_http_payments_return_path(ngx_str_t *uri, ngx_str_t *psp, ngx_str_t *id)
{
    u_char  *p, *end;

    if (uri->len <= sizeof("/v1/return/") - 1
        || ngx_strncmp(uri->data, "/v1/return/", sizeof("/v1/return/") - 1)
           != 0)
    {
        return 0;
    }

    psp->data = uri->data + sizeof("/v1/return/") - 1;
    end = uri->data + uri->len;

    p = ngx_strlchr(psp->data, end, '/');
    if (p == NULL || p == psp->data || p + 1 == end
        || ngx_strlchr(p + 1, end, '/') != NULL)
    {
        return 0;
    }

    psp->len = p - psp->data;
    id->data = p + 1;
    id->len = end - id->data;

    return 1;
}


static ngx_uint_t
ngx_http_payments_match(ngx_str_t *uri, const char *prefix,
    const char *suffix, ngx_str_t *id)
{
    size_t   plen, slen;
    u_char  *p;

    plen = ngx_strlen(prefix);
    slen = ngx_strlen(suffix);

    if (uri->len <= plen + slen
        || ngx_strncmp(uri->data, prefix, plen) != 0
        || ngx_strncmp(uri->data + uri->len - slen, suffix, slen) != 0)
    {
        return 0;
    }

    id->data = uri->data + plen;
    id->len = uri->len - plen - slen;

    for (p = id->data; p < id->data + id->len; p++) {
        if (*p == '/') {
            return 0;
        }
    }

    return 1;
}


/*
 * A browser token (t=) is a bearer credential: it must not reach the
 * access log ($request) or the error log's "request:" context, which both
 * print the request line.  The request line is replaced by a copy with the
 * value of every t= cut out; $args and $request_uri still carry it, so a
 * log_format must not use them (the README says so).
 */

static void
ngx_http_payments_redact(ngx_http_request_t *r)
{
    u_char  *line, *p, *q, *end, *args_end, *v;

    if (r->args.len == 0
        || r->args.data < r->request_line.data
        || r->args.data + r->args.len
           > r->request_line.data + r->request_line.len)
    {
        return;
    }

    /* every "t=" value becomes "redacted", which is never longer than a
     * token, except an empty or short one: reserve for it */
    line = ngx_pnalloc(r->pool, r->request_line.len
                                + r->args.len / 2 * sizeof("redacted"));
    if (line == NULL) {
        return;
    }

    p = r->request_line.data;
    end = r->request_line.data + r->request_line.len;
    args_end = r->args.data + r->args.len;

    q = ngx_cpymem(line, p, r->args.data - p);
    p = r->args.data;

    while (p < args_end) {
        v = p;

        /* ngx_http_arg(), which finds the token, ignores case: so does
         * this ("T=" is a token too) */
        if (args_end - p >= 2 && (p[0] == 't' || p[0] == 'T') && p[1] == '=')
        {
            *q++ = p[0];
            q = ngx_cpymem(q, "=redacted", sizeof("=redacted") - 1);
            p += 2;

            while (p < args_end && *p != '&') {
                p++;
            }

        } else {
            while (p < args_end && *p != '&') {
                p++;
            }

            q = ngx_cpymem(q, v, p - v);
        }

        if (p < args_end) {
            *q++ = *p++;                /* the '&' */
        }
    }

    q = ngx_cpymem(q, args_end, end - args_end);

    r->request_line.data = line;
    r->request_line.len = q - line;
}


static ngx_int_t
ngx_http_payments_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       id;
    ngx_uint_t                      route, method;
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

    ngx_http_payments_redact(r);

    if (ngx_http_payments_request_id(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&id);
    route = 0;
    method = NGX_HTTP_GET;

    if (r->uri.len == sizeof("/healthz") - 1
        && ngx_strncmp(r->uri.data, "/healthz", r->uri.len) == 0)
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_HEALTHZ;

    } else if (r->uri.len == sizeof("/readyz") - 1
               && ngx_strncmp(r->uri.data, "/readyz", r->uri.len) == 0)
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_READYZ;

    } else if (r->uri.len == sizeof("/metrics") - 1
               && ngx_strncmp(r->uri.data, "/metrics", r->uri.len) == 0)
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_METRICS;

    } else if (r->uri.len == sizeof("/v1/payments") - 1
               && ngx_strncmp(r->uri.data, "/v1/payments", r->uri.len) == 0)
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_PAYMENTS;
        method = NGX_HTTP_POST;

    } else if (ngx_http_payments_match(&r->uri, "/v1/payments/", "", &id)) {
        route = NGX_HTTP_PAYMENTS_ROUTE_PAYMENT;

    } else if (ngx_http_payments_match(&r->uri, "/v1/webhooks/", "", &id)) {
        route = NGX_HTTP_PAYMENTS_ROUTE_WEBHOOK;
        method = NGX_HTTP_POST;

    } else if (ngx_http_payments_match(&r->uri, "/v1/checkouts/", "/pay",
                                       &id))
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_PAY;

    } else if (ngx_http_payments_match(&r->uri, "/v1/checkouts/", "/status",
                                       &id))
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_STATUS;

    } else if (ngx_http_payments_match(&r->uri, "/v1/static/", "", &id)) {
        route = NGX_HTTP_PAYMENTS_ROUTE_STATIC;

    } else if (ngx_http_payments_return_path(&r->uri, &ctx->return_psp,
                                             &id))
    {
        route = NGX_HTTP_PAYMENTS_ROUTE_RETURN;

    } else if (ngx_http_payments_match(&r->uri, "/v1/checkouts/", "", &id)) {
        route = NGX_HTTP_PAYMENTS_ROUTE_CHECKOUT;
    }

    ctx->route = route;

    if (route == 0) {
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

        if (ngx_http_payments_add_header(r, "Allow",
                                         method == NGX_HTTP_GET ? "GET, HEAD"
                                                                : "POST")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_payments_problem(r, PAY_ERR_METHOD_NOT_ALLOWED, 0,
                                         NULL);
    }

    if (route != NGX_HTTP_PAYMENTS_ROUTE_HEALTHZ
        && route != NGX_HTTP_PAYMENTS_ROUTE_READYZ
        && route != NGX_HTTP_PAYMENTS_ROUTE_METRICS
        && !ngx_http_payments_secure(r))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_payments_tls_required(r, ctx,
                   route == NGX_HTTP_PAYMENTS_ROUTE_PAY
                   || route == NGX_HTTP_PAYMENTS_ROUTE_RETURN
                   || route == NGX_HTTP_PAYMENTS_ROUTE_STATIC);
    }

    ctx->object_id = id;

    /* rate limits that need no body, no signature check and no query */
    switch (route) {
    case NGX_HTTP_PAYMENTS_ROUTE_PAY:
        rc = ngx_http_payments_limit_early(ctx, NGX_HTTP_PAYMENTS_LIMIT_PAY);
        break;
    case NGX_HTTP_PAYMENTS_ROUTE_RETURN:
        rc = ngx_http_payments_limit_early(ctx,
                                           NGX_HTTP_PAYMENTS_LIMIT_RETURN);
        break;
    case NGX_HTTP_PAYMENTS_ROUTE_STATUS:
        rc = ngx_http_payments_limit_early(ctx,
                                           NGX_HTTP_PAYMENTS_LIMIT_STATUS);
        break;
    case NGX_HTTP_PAYMENTS_ROUTE_WEBHOOK:
        rc = ngx_http_payments_limit_early(ctx,
                                           NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK);
        break;
    default:
        rc = NGX_DECLINED;
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (route == NGX_HTTP_PAYMENTS_ROUTE_PAYMENTS
        || route == NGX_HTTP_PAYMENTS_ROUTE_WEBHOOK)
    {
        /* never buffer more than the limit: 413 comes after 401 and 400 */
        if (r->headers_in.content_length_n > (off_t) pmcf->max_body) {
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
         * as it arrives (at most payments_max_body), so that nginx never
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

    case NGX_HTTP_PAYMENTS_ROUTE_HEALTHZ:
        return ngx_http_payments_send(r, NGX_HTTP_OK, "application/json",
                                      (u_char *) "{\"status\":\"ok\"}\n",
                                      sizeof("{\"status\":\"ok\"}\n") - 1);

    case NGX_HTTP_PAYMENTS_ROUTE_READYZ:
        r->main->count++;
        ngx_http_payments_readyz(ctx);
        return NGX_DONE;

    case NGX_HTTP_PAYMENTS_ROUTE_METRICS:
        return ngx_http_payments_metrics_handler(r, pmcf->psps);

    case NGX_HTTP_PAYMENTS_ROUTE_PAY:
        r->main->count++;
        ngx_http_payments_pay(ctx);
        return NGX_DONE;

    case NGX_HTTP_PAYMENTS_ROUTE_RETURN:
        r->main->count++;
        ngx_http_payments_return(ctx);
        return NGX_DONE;

    case NGX_HTTP_PAYMENTS_ROUTE_STATUS:
        r->main->count++;
        ngx_http_payments_status(ctx);
        return NGX_DONE;

    case NGX_HTTP_PAYMENTS_ROUTE_STATIC:
        return ngx_http_payments_static(ctx);

    case NGX_HTTP_PAYMENTS_ROUTE_PAYMENT:
        r->main->count++;
        ngx_http_payments_authenticate(ctx, ngx_http_payments_get_order);
        return NGX_DONE;

    default: /* NGX_HTTP_PAYMENTS_ROUTE_CHECKOUT */
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

    if (!browser
        || ctx->pmcf->public_origin.len < sizeof("https://") - 1
        || ngx_strncmp(ctx->pmcf->public_origin.data, "https://", 8) != 0)
    {
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
 * payments_max_body bytes; past that it is dropped and body_too_large set)
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

        if (ctx->body_too_large || size > ctx->pmcf->max_body - ctx->body.len)
        {
            ctx->body_too_large = 1;
            b->pos = b->last;
            continue;
        }

        if (ctx->body.data == NULL) {
            /* the announced length, or the limit for a chunked body (whose
             * content_length_n nginx counts up as chunks arrive) */
            ctx->body_size = ctx->pmcf->max_body;

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
    if (ctx->route == NGX_HTTP_PAYMENTS_ROUTE_WEBHOOK) {
        ngx_http_payments_webhook(ctx);
        return;
    }

    ngx_http_payments_authenticate(ctx, ngx_http_payments_register_start);
}


static ngx_int_t
ngx_http_payments_request_id(ngx_http_request_t *r,
    ngx_http_payments_ctx_t *ctx)
{
    u_char            *p, rnd[16];
    ngx_uint_t         n;
    ngx_table_elt_t   *h;

    /* the id $payments_request_id gave, or a new one (cheaper) */
    if (ngx_http_payments_limit_request_id(r, &ctx->request_id) == NGX_OK) {
        return NGX_OK;
    }

    h = ngx_http_payments_header(r, "X-Request-Id", &n);

    /* one sane client id is kept; anything else is replaced */
    if (h && n == 1 && h->value.len > 0 && h->value.len <= 64) {
        for (p = h->value.data; p < h->value.data + h->value.len; p++) {
            if (!isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
                break;
            }
        }

        if (p == h->value.data + h->value.len) {
            ctx->request_id = h->value;
            return NGX_OK;
        }
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_ERROR;
    }

    ctx->request_id.data = ngx_pnalloc(r->pool, 2 * sizeof(rnd));
    if (ctx->request_id.data == NULL) {
        return NGX_ERROR;
    }

    ctx->request_id.len = ngx_hex_dump(ctx->request_id.data, rnd, sizeof(rnd))
                          - ctx->request_id.data;

    return NGX_OK;
}


/* one query with the request's parameters (ctx->params), answered later */

ngx_int_t
ngx_http_payments_query(ngx_http_payments_ctx_t *ctx, const char *sql,
    int nparams, ngx_http_payments_pg_handler_pt handler)
{
    ctx->query.sql = sql;
    ctx->query.nparams = nparams;
    ctx->query.values = ctx->params;
    ctx->query.handler = handler;
    ctx->query.data = ctx;
    ctx->query.log = ctx->request->connection->log;

    return ngx_http_payments_pg_send(&ctx->query);
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
    ngx_table_elt_t          *h;
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx) {
        ctx->answered = 1;
    }

    if (ctx && ctx->request_id.len) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Request-Id");
        h->value = ctx->request_id;
    }

    /* answers about money are never cached anywhere */
    if (ngx_http_payments_add_header(r, "Cache-Control", "no-store")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.status = status;
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
 * except the 413 of client_max_body_size on a "payments" location.
 */

static ngx_int_t
ngx_http_payments_header_filter(ngx_http_request_t *r)
{
    char                          *json;
    ngx_uint_t                     status;
    pay_err_e                      err;
    ngx_table_elt_t               *h;
    ngx_http_payments_ctx_t       *ctx;
    ngx_http_payments_loc_conf_t  *plcf;

    status = r->err_status ? (ngx_uint_t) r->err_status
                           : r->headers_out.status;

    if (r != r->main || status < NGX_HTTP_BAD_REQUEST || status > 599) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);

    if (ctx == NULL) {
        plcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_module);

        if (status != NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
            || plcf == NULL || plcf->enable != 1)
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

        if (ngx_http_payments_request_id(r, ctx) != NGX_OK) {
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

    if (ctx->request_id.len) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Request-Id");
        h->value = ctx->request_id;
    }

    if (ngx_http_payments_add_header(r, "Cache-Control", "no-store")
        != NGX_OK)
    {
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
           != NGX_OK
        || ngx_http_payments_add_header(r, "X-Content-Type-Options",
                                        "nosniff")
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
 * authentication: Authorization: Bearer mk_<mode>_<key id>_<secret>
 *
 * The key row is read by key id (pay_auth) and the SHA-256 of the whole key
 * is compared with the stored one in constant time.  A worker keeps the rows
 * it read for payments_auth_cache (default 5s): a revoked key or a disabled
 * merchant is refused everywhere within that time.  Only rows the database
 * returned are kept; a wrong secret is refused by the same comparison.
 */


#define NGX_HTTP_PAYMENTS_AUTH_SLOTS  1024

typedef struct {
    char         key_id[PAY_APIKEY_ID_LEN + 1];
    char         key_hash[65];
    char        *merchant;      /* malloc'd */
    char        *origins;       /* malloc'd, space-separated */
    ngx_msec_t   expires;
} ngx_http_payments_auth_entry_t;

static ngx_http_payments_auth_entry_t
    ngx_http_payments_auth_cache[NGX_HTTP_PAYMENTS_AUTH_SLOTS];


static ngx_http_payments_auth_entry_t *
ngx_http_payments_auth_slot(const char *key_id)
{
    return &ngx_http_payments_auth_cache[ngx_hash_key((u_char *) key_id,
                                             ngx_strlen(key_id))
                                         % NGX_HTTP_PAYMENTS_AUTH_SLOTS];
}


static void
ngx_http_payments_auth_remember(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *key_hash, const char *origins)
{
    char                            *m, *o;
    ngx_http_payments_auth_entry_t  *e;

    if (ctx->pmcf->auth_cache == 0 || ngx_strlen(key_hash) != 64) {
        return;
    }

    m = strdup(merchant);
    o = strdup(origins);

    if (m == NULL || o == NULL) {
        free(m);
        free(o);
        return;
    }

    e = ngx_http_payments_auth_slot(ctx->key_id);

    free(e->merchant);
    free(e->origins);

    ngx_memcpy(e->key_id, ctx->key_id, sizeof(e->key_id));
    ngx_memcpy(e->key_hash, key_hash, 65);
    e->merchant = m;
    e->origins = o;
    e->expires = ngx_current_msec + ctx->pmcf->auth_cache;
}


void
ngx_http_payments_auth_forget_all(void)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_PAYMENTS_AUTH_SLOTS; i++) {
        free(ngx_http_payments_auth_cache[i].merchant);
        free(ngx_http_payments_auth_cache[i].origins);
    }

    ngx_memzero(ngx_http_payments_auth_cache,
                sizeof(ngx_http_payments_auth_cache));
}


static void
ngx_http_payments_unauthorized(ngx_http_request_t *r)
{
    if (ngx_http_payments_add_header(r, "WWW-Authenticate", "Bearer")
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_UNAUTHORIZED, 0, NULL));
}


/* the key row is known: compare, take the merchant and its origins, go on */

static void
ngx_http_payments_authenticated(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *key_hash, const char *origins)
{
    char                *list, *o, *end;
    pay_origin_t        *po;
    ngx_http_request_t  *r = ctx->request;

    if (!pay_hash_equal(key_hash, ctx->key_hash)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: wrong secret for API key \"%s\"",
                      ctx->key_id);
        ngx_http_payments_unauthorized(r);
        return;
    }

    ctx->merchant.len = ngx_strlen(merchant);
    ctx->merchant.data = (u_char *) ngx_http_payments_strdup(r->pool,
                                                             merchant);
    list = ngx_http_payments_strdup(r->pool, origins);
    ctx->origins = ngx_array_create(r->pool, 2, sizeof(pay_origin_t));

    if (ctx->merchant.data == NULL || list == NULL || ctx->origins == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* origins are stored as URLs; they are compared by parsed components */
    for (o = list; *o; o = end) {
        end = o + strcspn(o, " ");
        if (*end) {
            *end++ = '\0';
        }

        if (*o == '\0') {
            continue;
        }

        po = ngx_array_push(ctx->origins);
        if (po == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (pay_origin_parse(o, po, 0) != 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "payments: merchant \"%V\" has an invalid return "
                          "origin, ignored", &ctx->merchant);
            ctx->origins->nelts--;
        }
    }

    ctx->auth_next(ctx);
}


ngx_int_t
ngx_http_payments_authenticate(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx))
{
    size_t                           toklen;
    const char                      *tok;
    pay_apikey_t                     key;
    ngx_table_elt_t                 *auth;
    ngx_http_request_t              *r = ctx->request;
    ngx_http_payments_auth_entry_t  *e;

    auth = r->headers_in.authorization;

    if (auth == NULL
        || pay_bearer_token((char *) auth->value.data, auth->value.len,
                            &tok, &toklen) != 0
        || pay_apikey_parse(tok, toklen, &key) != 0)
    {
        ngx_http_payments_unauthorized(r);
        return NGX_ERROR;
    }

    ctx->auth_next = next;
    ngx_memcpy(ctx->key_id, key.key_id, sizeof(key.key_id));
    ctx->key_live = (ngx_strcmp(key.mode, "live") == 0);

    pay_apikey_hash(tok, toklen, ctx->key_hash);

    e = ngx_http_payments_auth_slot(ctx->key_id);

    if (ctx->pmcf->auth_cache
        && e->merchant
        && ngx_strcmp(e->key_id, ctx->key_id) == 0
        && (ngx_msec_int_t) (e->expires - ngx_current_msec) > 0)
    {
        ngx_http_payments_authenticated(ctx, e->merchant, e->key_hash,
                                        e->origins);
        return NGX_OK;
    }

    ctx->params[0] = ctx->key_id;

    if (ngx_http_payments_query(ctx,
                                "SELECT merchant_id, key_hash, mode, "
                                "array_to_string(origins, ' ') FROM "
                                "pay_auth($1)",
                                1, ngx_http_payments_auth_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_payments_auth_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_http_request_t       *r;
    ngx_http_payments_ctx_t  *ctx = q->data;

    r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "payments: pay_auth: %s",
                          PQresultErrorMessage(res));
        }

        ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: unknown or revoked API key \"%s\"",
                      ctx->key_id);
        ngx_http_payments_unauthorized(r);
        return;
    }

    /* the database's mode for the key must be the one its text says */
    if (ngx_strcmp(PQgetvalue(res, 0, 2),
                   (ctx->key_live ? "live" : "test")) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: API key \"%s\" is stored as %s but is "
                      "spelled otherwise; refused", ctx->key_id,
                      PQgetvalue(res, 0, 2));
        ngx_http_payments_unauthorized(r);
        return;
    }

    ngx_http_payments_auth_remember(ctx, PQgetvalue(res, 0, 0),
                                    PQgetvalue(res, 0, 1),
                                    PQgetvalue(res, 0, 3));

    ngx_http_payments_authenticated(ctx, PQgetvalue(res, 0, 0),
                                    PQgetvalue(res, 0, 1),
                                    PQgetvalue(res, 0, 3));
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
