
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_module: the module skeleton, its configuration (create,
 * merge and the directives but payments_psp and payments_shard), worker
 * start and exit.  The rest, one concern a file (who calls whom:
 * ngx_http_payments_module.h): _router.c (the content handler),
 * _response.c (answers, the request id and the error filters), _util.c
 * (pool strings, configuration files), _auth.c (API keys), _psp_conf.c
 * (payments_psp), _shard_conf.c (payments_shard and the connection
 * string's checks), _pages_conf.c (payments_public_origin and
 * payments_html), _register.c, _read.c,
 * _webhook.c, _limit*.c (the rate limits: directives, zones, hooks,
 * variables), _metrics.c, _housekeeping.c (worker 0's timers), and the
 * event-loop drivers _pg.c and _curl.c.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif


static void *ngx_http_payments_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_payments_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_payments_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_payments_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_payments(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_payments_database(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_payments_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_payments_init_process(ngx_cycle_t *cycle);
#if defined(__SANITIZE_ADDRESS__)
static void ngx_http_payments_lsan_nginx_arrays(ngx_cycle_t *cycle);
#endif
static void ngx_http_payments_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_payments_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_payments_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_payments_log_handler(ngx_http_request_t *r);





static ngx_conf_enum_t  ngx_http_payments_plain_http[] = {
    { ngx_string("off"), NGX_HTTP_PAYMENTS_PLAIN_OFF },
    { ngx_string("loopback"), NGX_HTTP_PAYMENTS_PLAIN_LOOPBACK },
    { ngx_null_string, 0 }
};


/* each keeps its directive's place for the checks after http{} */
static ngx_http_payments_at_post_t  ngx_http_payments_at_pool =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_POOL };
static ngx_http_payments_at_post_t  ngx_http_payments_at_database_timeout =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_DATABASE_TIMEOUT };
static ngx_http_payments_at_post_t  ngx_http_payments_at_database_replan =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_DATABASE_REPLAN };
static ngx_http_payments_at_post_t  ngx_http_payments_at_lease =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_LEASE };
static ngx_http_payments_at_post_t  ngx_http_payments_at_ttl =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_TTL };
static ngx_http_payments_at_post_t  ngx_http_payments_at_request_timeout =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_REQUEST_TIMEOUT };
static ngx_http_payments_at_post_t  ngx_http_payments_at_session_lifetime =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_SESSION_LIFETIME };
static ngx_http_payments_at_post_t  ngx_http_payments_at_max_body =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_MAX_BODY };
static ngx_http_payments_at_post_t  ngx_http_payments_at_auth_cache =
    { ngx_http_payments_at_post, NGX_HTTP_PAYMENTS_AT_AUTH_CACHE };


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

    { ngx_string("payments_shard"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_payments_shard_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_shard_directory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_ANY,
      ngx_http_payments_shard_directory_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_database_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, pool_size),
      &ngx_http_payments_at_pool },

    { ngx_string("payments_database_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, db_timeout),
      &ngx_http_payments_at_database_timeout },

    { ngx_string("payments_database_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, db_queue),
      NULL },

    { ngx_string("payments_database_replan"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, db_replan),
      &ngx_http_payments_at_database_replan },

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

    { ngx_string("payments_encryption_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_payments_encryption_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_psp"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_psp,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_route"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_route,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_idempotency_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, lease),
      &ngx_http_payments_at_lease },

    { ngx_string("payments_idempotency_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, ttl),
      &ngx_http_payments_at_ttl },

    { ngx_string("payments_request_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, request_timeout),
      &ngx_http_payments_at_request_timeout },

    { ngx_string("payments_session_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, session_lifetime),
      &ngx_http_payments_at_session_lifetime },

    { ngx_string("payments_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_payments_main_conf_t, max_body),
      &ngx_http_payments_at_max_body },

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
      &ngx_http_payments_at_auth_cache },

    { ngx_string("payments_admin_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_payments_admin_key_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_risk"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_payments_risk_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_sweeper"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_sweeper_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_notify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_notify_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_notify_allow_host"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_notify_allow_host,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
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
    ngx_http_payments_preconfiguration,    /* preconfiguration */
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








static void *
ngx_http_payments_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /* no keyring unless this configuration names one */
    ngx_http_payments_keys_reading();

    pmcf->pool_size = NGX_CONF_UNSET_UINT;
    pmcf->db_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->db_queue = NGX_CONF_UNSET_UINT;
    pmcf->db_replan = NGX_CONF_UNSET_MSEC;
    pmcf->lease = NGX_CONF_UNSET;
    pmcf->ttl = NGX_CONF_UNSET;
    pmcf->request_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->session_lifetime = NGX_CONF_UNSET;
    pmcf->max_body = NGX_CONF_UNSET_SIZE;
    pmcf->auth_cache = NGX_CONF_UNSET_MSEC;
    pmcf->shard_dir_size = NGX_CONF_UNSET_SIZE;
    pmcf->shard_dir_refresh = NGX_CONF_UNSET_MSEC;
    pmcf->sweeper.enable = NGX_CONF_UNSET;
    pmcf->sweeper.interval = NGX_CONF_UNSET_MSEC;
    pmcf->sweeper.after = NGX_CONF_UNSET;
    pmcf->sweeper.retry = NGX_CONF_UNSET;
    pmcf->sweeper.alert = NGX_CONF_UNSET;
    pmcf->sweeper.grace = NGX_CONF_UNSET;
    pmcf->sweeper.unmatched = NGX_CONF_UNSET;
    pmcf->sweeper.batch = NGX_CONF_UNSET_UINT;
    pmcf->sweeper.inbox_months = NGX_CONF_UNSET_UINT;

    pmcf->notify.enable = NGX_CONF_UNSET;
    pmcf->notify.interval = NGX_CONF_UNSET_MSEC;
    pmcf->notify.batch = NGX_CONF_UNSET_UINT;
    pmcf->notify.timeout = NGX_CONF_UNSET_MSEC;
    pmcf->notify.connect_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->notify.lease = NGX_CONF_UNSET_MSEC;
    pmcf->notify.disable_after = NGX_CONF_UNSET_MSEC;
    pmcf->notify.per_endpoint = NGX_CONF_UNSET_UINT;
    pmcf->notify.backoff_scale = NGX_CONF_UNSET_UINT;
    pmcf->notify.allow_loopback = NGX_CONF_UNSET;

    pmcf->token_keys = ngx_array_create(cf->pool, 2, sizeof(pay_token_key_t));
    pmcf->psps = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_payments_psp_t));
    pmcf->routes = ngx_array_create(cf->pool, 2,
                                    sizeof(ngx_http_payments_route_t));
    /* payments_shard's lines as they are read; payments_database's one
     * once http{} is (_shard_conf.c) */
    pmcf->shards = ngx_array_create(cf->pool, 1,
                                    sizeof(ngx_http_payments_shard_t));
    if (pmcf->token_keys == NULL || pmcf->psps == NULL
        || pmcf->routes == NULL || pmcf->shards == NULL)
    {
        return NULL;
    }

    return pmcf;
}


static char *
ngx_http_payments_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_uint_t                      i;
    ngx_http_payments_psp_t        *psp;
    ngx_http_payments_conf_at_t    *at, *psp_at;
    ngx_http_payments_main_conf_t  *pmcf = conf;

    ngx_conf_init_uint_value(pmcf->pool_size, 4);
    ngx_conf_init_msec_value(pmcf->db_timeout, 5000);
    ngx_conf_init_uint_value(pmcf->db_queue, 4096);
    ngx_conf_init_msec_value(pmcf->db_replan, 60000);
    ngx_conf_init_value(pmcf->lease, 30);
    ngx_conf_init_value(pmcf->ttl, 24 * 3600);
    ngx_conf_init_msec_value(pmcf->request_timeout, 15000);
    ngx_conf_init_value(pmcf->session_lifetime, 3600);
    ngx_conf_init_size_value(pmcf->max_body, 64 * 1024);
    ngx_conf_init_msec_value(pmcf->auth_cache, 5000);

    if (ngx_http_payments_notify_merge(cf, pmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_sweeper_merge(cf, pmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    at = pmcf->at;

    if (pmcf->auth_cache > 60000) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_AUTH_CACHE],
                                   "\"payments_auth_cache\" must be at most "
                                   "60s: revocations must take effect "
                                   "within seconds");
        return NGX_CONF_ERROR;
    }

    if (pmcf->pool_size == 0 || pmcf->pool_size > 256) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_POOL],
                                   "\"payments_database_pool\" must be "
                                   "1..256");
        return NGX_CONF_ERROR;
    }

    if (pmcf->db_replan < 1000 || pmcf->db_replan > 3600000) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_DATABASE_REPLAN],
                                   "\"payments_database_replan\" must be "
                                   "1s..1h");
        return NGX_CONF_ERROR;
    }

    /* payments_database is shard 0, "default", or the payments_shard
     * lines are the shards: each worker keeps a pool per shard (_pg.c) */
    if (ngx_http_payments_shard_merge(cf, pmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (pmcf->lease < 1) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_LEASE],
                                   "\"payments_idempotency_lease\" must be "
                                   ">= 1s");
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
        /* the lease's line, else the timeout's that made it too short */
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
            ngx_http_payments_conf_first(
                &at[NGX_HTTP_PAYMENTS_AT_LEASE],
                ngx_http_payments_conf_first(
                    &at[NGX_HTTP_PAYMENTS_AT_REQUEST_TIMEOUT],
                    &at[NGX_HTTP_PAYMENTS_AT_DATABASE_TIMEOUT])),
            "\"payments_idempotency_lease\" %Ts is shorter than "
            "\"payments_request_timeout\" %Mms plus 3 times "
            "\"payments_database_timeout\" %Mms: raise the lease to at "
            "least %Ms or lower the timeouts",
            pmcf->lease, pmcf->request_timeout, pmcf->db_timeout,
            (pmcf->request_timeout + 3 * pmcf->db_timeout + 999) / 1000);
        return NGX_CONF_ERROR;
    }

    if (pmcf->ttl < 24 * 3600) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_TTL],
                                   "\"payments_idempotency_ttl\" must be at "
                                   "least 24h: merchants retry for a day");
        return NGX_CONF_ERROR;
    }

    /* Stripe: 30 min to 24 h; Adyen: at most 24 h */
    if (pmcf->session_lifetime < 1800 || pmcf->session_lifetime > 86400) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_SESSION_LIFETIME],
                                   "\"payments_session_lifetime\" must be "
                                   "between 30m and 24h (the PSPs' limits)");
        return NGX_CONF_ERROR;
    }

    /*
     * Each PSP refuses an expires_at closer than its dialect's shortest
     * session (Stripe: 30 min) when the request reaches it, or further
     * than its longest, and a claim's request may be sent up to a lease
     * after expires_at was fixed.
     */
    psp = pmcf->psps->elts;

    for (i = 0; i < pmcf->psps->nelts; i++) {
        /* the lifetime's line, else the PSP's */
        psp_at = ngx_http_payments_conf_first(
                     &at[NGX_HTTP_PAYMENTS_AT_SESSION_LIFETIME], &psp[i].at);

        if (pmcf->session_lifetime < psp[i].dl->session_min + pmcf->lease) {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, psp_at,
                               "\"payments_session_lifetime\" %Ts leaves "
                               "the %s PSP \"%V\" less than its %Tm "
                               "minimum once \"payments_idempotency_lease\" "
                               "%Ts has passed: raise it to at least %Ts",
                               pmcf->session_lifetime, psp[i].dl->name,
                               &psp[i].name,
                               (time_t) (psp[i].dl->session_min / 60),
                               pmcf->lease,
                               (time_t) psp[i].dl->session_min + pmcf->lease);
            return NGX_CONF_ERROR;
        }

        if (pmcf->session_lifetime > psp[i].dl->session_max) {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, psp_at,
                               "\"payments_session_lifetime\" %Ts is longer "
                               "than the %s PSP \"%V\" keeps a session "
                               "(%Ts)", pmcf->session_lifetime,
                               psp[i].dl->name, &psp[i].name,
                               (time_t) psp[i].dl->session_max);
            return NGX_CONF_ERROR;
        }
    }

    /* every route's PSPs are configured and take its currencies */
    if (ngx_http_payments_route_check(cf, pmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (pmcf->max_body < 1024 || pmcf->max_body > 1024 * 1024) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &at[NGX_HTTP_PAYMENTS_AT_MAX_BODY],
                                   "\"payments_max_body\" must be 1k..1m");
        return NGX_CONF_ERROR;
    }

    pmcf->metrics_zone = ngx_http_payments_metrics_zone(cf, pmcf->psps);
    if (pmcf->metrics_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_breaker_zone(cf, pmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* payments_shard lines: the directory of merchants' shards */
    if (ngx_http_payments_shard_dir_zone(cf, pmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* at the first PSP, whose tokens would be stored so */
    if (pmcf->keyring == NULL && pmcf->psps->nelts) {
        ngx_http_payments_conf_log(NGX_LOG_WARN, cf, &psp[0].at,
                                   "no \"payments_encryption_key\": PSP "
                                   "session tokens are stored in clear in "
                                   "the database");
    }

    return NGX_CONF_OK;
}


/* $payments_request_id: the id every answer carries (_response.c) */

static ngx_int_t
ngx_http_payments_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_payments_request_id_add(cf);
}


/* Every request the module handled is counted once it is done. */

static ngx_int_t
ngx_http_payments_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_payments_main_conf_t  *pmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);

    /* the system's CAs, read and parsed here (the master, at every start
     * and reload) for the workers' TLS calls: never in a handshake */
    if (pmcf->used) {
        pmcf->trust = ngx_http_payments_curl_trust(cf, NULL);
        if (pmcf->trust == NULL) {
            return NGX_ERROR;
        }
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_payments_log_handler;

    /* bodies are read into memory by the module, never into a file; the
     * request line's tokens are cut out before anything may log it */
    if (ngx_http_payments_router_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* nginx's own error answers on the module's routes get problem+json */
    ngx_http_payments_response_init(cf);

    ngx_http_payments_metrics_guard(cf);

    ngx_http_payments_tls_guard(cf);

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
    plcf->risk = NGX_CONF_UNSET_PTR;

    return plcf;
}


static char *
ngx_http_payments_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_payments_loc_conf_t *prev = parent;
    ngx_http_payments_loc_conf_t *conf = child;

    ngx_msec_t                      lease, most;
    ngx_http_payments_main_conf_t  *pmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    if (conf->at.line == 0) {
        conf->at = prev->at;
    }
    ngx_conf_merge_uint_value(conf->plain_http, prev->plain_http,
                              NGX_HTTP_PAYMENTS_PLAIN_OFF);
    ngx_conf_merge_ptr_value(conf->risk, prev->risk, NULL);

    /* the risk check runs inside the claim's lease: the rest of pay_claim,
     * the provider's timeout, pay_risk_record waiting and running (which
     * renews the lease for the PSP's part, checked in init_main_conf) */
    if (conf->risk != NULL) {
        pmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_payments_module);

        if ((ngx_msec_t) pmcf->lease * 1000
            < conf->risk->timeout + 3 * pmcf->db_timeout)
        {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, &conf->risk->at,
                               "\"payments_idempotency_lease\" %Ts is "
                               "shorter than \"payments_risk\" timeout= "
                               "%Mms plus 3 times "
                               "\"payments_database_timeout\" %Mms: raise "
                               "the lease or lower the timeouts",
                               pmcf->lease, conf->risk->timeout,
                               pmcf->db_timeout);
            return NGX_CONF_ERROR;
        }

        /* after the payment the sweeper asks: without it nobody would */
        if (conf->risk->after_payment && !pmcf->sweeper.enable) {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, &conf->risk->at,
                               "\"payments_risk\" after_payment=on needs "
                               "\"payments_sweeper on\": the sweeper's "
                               "round asks after the payment");
            return NGX_CONF_ERROR;
        }

        /* and under its lease, as its session look-ups (_sweeper_conf.c) */
        if (conf->risk->after_payment) {
            lease = ((pmcf->sweeper.interval * 3 + 999) / 1000 + 2) * 1000;
            most = lease - pmcf->sweeper.interval - 1000;

            if (conf->risk->timeout > most) {
                ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, &conf->risk->at,
                                   "\"payments_risk\" after_payment=on: a "
                                   "request may take its timeout=%Mms, "
                                   "longer than the sweeper's lease allows "
                                   "(one must end within %Mms): raise "
                                   "\"payments_sweeper\" interval= or "
                                   "lower timeout=", conf->risk->timeout,
                                   most);
                return NGX_CONF_ERROR;
            }
        }

        /* a review's approval claims the registration's key again: it must
         * still be there (pay_purge takes it a TTL after the 202) */
        if (conf->risk->review >= pmcf->ttl) {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, &conf->risk->at,
                               "\"payments_risk\" review= %Ts is not "
                               "shorter than \"payments_idempotency_ttl\" "
                               "%Ts: an approval would find the checkout's "
                               "Idempotency-Key gone", conf->risk->review,
                               pmcf->ttl);
            return NGX_CONF_ERROR;
        }
    }

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

    if (pmcf->conninfo.len == 0 && pmcf->shards->nelts == 0) {
        return "requires \"payments_database\" or \"payments_shard\" "
               "before it";
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

    if (!pmcf->used) {
        /* the line nginx -t names when shards cannot serve it yet */
        ngx_http_payments_conf_at(cf,
                                  &pmcf->at[NGX_HTTP_PAYMENTS_AT_PAYMENTS]);
    }

    pmcf->used = 1;
    ngx_http_payments_conf_at(cf, &plcf->at);

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_payments_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_payments_database(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    ngx_str_t  *value;

    if (pmcf->conninfo.len) {
        return "is duplicate";
    }

    if (pmcf->shards->nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_database\" and \"payments_shard\" "
                           "do not mix: give every database as a "
                           "\"payments_shard\" line, or one "
                           "\"payments_database\"");
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (ngx_http_payments_conninfo_check(cf, "\"payments_database\"",
                                         &value[1], &pmcf->conninfo)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}



static ngx_int_t
ngx_http_payments_init_module(ngx_cycle_t *cycle)
{
    static ngx_uint_t               done;
    ngx_http_payments_main_conf_t  *pmcf;

    /* this configuration runs now: the keys a reload is checked against */
    ngx_http_payments_keys_running();

    /* at every start and reload: which module runs (a reload after an
     * upgrade keeps the one already loaded: `service nginx upgrade`) */
    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "payments: ngx_payments " NGX_HTTP_PAYMENTS_VERSION
                  " (schema " NGX_HTTP_PAYMENTS_SCHEMA ")");

    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "payments: curl_global_init failed");
            return NGX_ERROR;
        }

        done = 1;
    }

    /* a libcurl that resolves names in the calling thread would hold a
     * worker's event loop for as long as a PSP's DNS takes: refused */
    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_payments_module);

    if (pmcf != NULL && pmcf->used
        && !(curl_version_info(CURLVERSION_NOW)->features
             & CURL_VERSION_ASYNCHDNS))
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "payments: this libcurl resolves names without an "
                      "asynchronous resolver (AsynchDNS): a PSP's name "
                      "look-up would block nginx's workers; use a libcurl "
                      "built with the threaded resolver or c-ares "
                      "(Debian's libcurl4 is)");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_init_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_main_conf_t  *pmcf;

#if defined(__SANITIZE_ADDRESS__)
    ngx_http_payments_lsan_nginx_arrays(cycle);
#endif

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_payments_module);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    /* this cycle's counters (a pointer never set in the master) */
    ngx_http_payments_metrics_init_process(pmcf->metrics_zone);
    ngx_http_payments_breaker_init_process(pmcf->breaker_zone);

    if (!pmcf->used) {
        return NGX_OK;
    }

    if (ngx_http_payments_curl_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_conninfo_worker(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_pg_init(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_auth_init(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_shard_init_process(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_sweeper_init(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_payments_notify_init(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_payments_housekeeping_init(cycle);

    return NGX_OK;
}


#if defined(__SANITIZE_ADDRESS__)

/*
 * The module built with AddressSanitizer (make e2e-asan) only.  nginx never
 * frees a worker's connections and its read and write events: the event
 * module allocates them with ngx_alloc() before this runs, and a worker's
 * exit destroys only the cycle's pool.  The three arrays point at each
 * other, so LeakSanitizer reports them as leaked (indirectly, 110,592
 * bytes for 256 connections, from ngx_alloc) whenever no stale pointer of
 * the exit happens to reach them, as in psp's name-lookup test with a
 * debug log.  They are nginx's, not a leak of ours: not reported, nor what
 * only they reach (as in every run where a stale pointer reached them:
 * epoll's last events point at connections).
 */
static void
ngx_http_payments_lsan_nginx_arrays(ngx_cycle_t *cycle)
{
    if (cycle->connections != NULL) {
        __lsan_ignore_object(cycle->connections);
    }

    if (cycle->read_events != NULL) {
        __lsan_ignore_object(cycle->read_events);
    }

    if (cycle->write_events != NULL) {
        __lsan_ignore_object(cycle->write_events);
    }
}

#endif

static void
ngx_http_payments_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_metrics_worker_exit();
    ngx_http_payments_sweeper_exit(cycle);
    ngx_http_payments_notify_exit(cycle);
    ngx_http_payments_pg_exit(cycle);
    ngx_http_payments_curl_exit(cycle);
}
