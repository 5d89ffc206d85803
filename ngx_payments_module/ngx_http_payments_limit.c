
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module: the gateway's own rate limits and its
 * variables.
 *
 * A zone is a shared memory segment with a slab pool, a red-black tree of
 * nodes keyed by the CRC32 of the key (the key's bytes are stored and
 * compared too) and an LRU queue.  A lookup moves its node to the head of
 * the queue; a new node first frees one or two nodes at the tail that carry
 * no state any more, and when the slab is full the oldest node is freed by
 * force.  On "nginx -s reload" a zone of the same name, size and kind is
 * handed over with its nodes (shm_zone->init gets the old cycle's data), so
 * a reload forgets nothing.  This is limit_req's design, written for three
 * kinds of state:
 *
 *   rate      leaky bucket, excess in milli-requests, as limit_req with
 *             nodelay: a request passes while the excess stays within the
 *             burst; a rejected request is not counted;
 *   amount    the sum of amounts (int64 minor units) per merchant and
 *             currency over a sliding window, kept in 16 sub-windows plus
 *             the current one: the sum over any window never exceeds max;
 *   failures  the same window, counting failed payments per buyer (a keyed
 *             hash of the e-mail or buyer id, never the e-mail itself) and
 *             per shopper address; it also remembers, per checkout, whose
 *             failure a later FAILED webhook is; and webhooks whose
 *             signature failed, per sender (PSP and address).
 *
 * Every operation on a zone is done under its mutex in a few hundred
 * nanoseconds; nothing here blocks or waits.
 */


#include "ngx_http_payments_limit.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <payments/money.h>


#include "ngx_http_payments_limit_int.h"


static void *ngx_http_payments_limit_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_payments_limit_init_main_conf(ngx_conf_t *cf,
    void *conf);
static ngx_int_t ngx_http_payments_limit_derive_salt(
    ngx_http_payments_limit_redis_conf_t *rc,
    ngx_http_payments_limit_zone_t *z);
static ngx_int_t ngx_http_payments_limit_init_process(ngx_cycle_t *cycle);
static void ngx_http_payments_limit_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_payments_limit_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_payments_limit_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_payments_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_payments_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


const char  *ngx_http_payments_limit_kinds[] = {
    "",
    "payments_limit_zone",
    "payments_limit_amount",
    "payments_limit_failures"
};


const ngx_http_payments_limit_scope_t  ngx_http_payments_limit_scopes[] = {
    { ngx_string("create_merchant"), NGX_HTTP_PAYMENTS_LIMIT_RATE,
      "payments created by a merchant" },
    { ngx_string("create_address"), NGX_HTTP_PAYMENTS_LIMIT_RATE,
      "payments created from an address" },
    { ngx_string("pages"), NGX_HTTP_PAYMENTS_LIMIT_RATE,
      "browser requests from a shopper address" },
    { ngx_string("webhook"), NGX_HTTP_PAYMENTS_LIMIT_RATE,
      "webhooks for a PSP from an address" },
    { ngx_string("amount"), NGX_HTTP_PAYMENTS_LIMIT_AMOUNT,
      "amount registered by a merchant" },
    { ngx_string("failures"), NGX_HTTP_PAYMENTS_LIMIT_FAILURES,
      "failed payments" },
    { ngx_string("webhook_failures"), NGX_HTTP_PAYMENTS_LIMIT_FAILURES,
      "webhooks for a PSP from an address whose signatures failed" }
};


static ngx_command_t  ngx_http_payments_limit_commands[] = {

    /* the zone directives pass their kind in the offset */

    { ngx_string("payments_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_payments_limit_zone,
      0,
      NGX_HTTP_PAYMENTS_LIMIT_RATE,
      NULL },

    { ngx_string("payments_limit_amount"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_payments_limit_zone,
      0,
      NGX_HTTP_PAYMENTS_LIMIT_AMOUNT,
      NULL },

    { ngx_string("payments_limit_failures"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_payments_limit_zone,
      0,
      NGX_HTTP_PAYMENTS_LIMIT_FAILURES,
      NULL },

    { ngx_string("payments_limit_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_payments_limit_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("payments_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_payments_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_payments_limit_module_ctx = {
    ngx_http_payments_limit_add_variables, /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_payments_limit_create_main_conf, /* create main configuration */
    ngx_http_payments_limit_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_payments_limit_create_loc_conf,  /* create location conf */
    ngx_http_payments_limit_merge_loc_conf    /* merge location conf */
};


ngx_module_t  ngx_http_payments_limit_module = {
    NGX_MODULE_V1,
    &ngx_http_payments_limit_module_ctx,   /* module context */
    ngx_http_payments_limit_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_payments_limit_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_payments_limit_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};




/* configuration */


static void *
ngx_http_payments_limit_create_main_conf(ngx_conf_t *cf)
{
    /* set by ngx_pcalloc(): no Redis, no zone that needs it */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_limit_main_conf_t));
}


static char *
ngx_http_payments_limit_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_payments_limit_main_conf_t *lmcf = conf;

    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_payments_limit_zone_t  *z;

    if (lmcf->redis_zones == 0) {
        return NGX_CONF_OK;
    }

    part = &cf->cycle->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].tag != &ngx_http_payments_limit_module) {
            continue;
        }

        z = shm_zone[i].data;

        if (!z->redis) {
            continue;
        }

        if (lmcf->redis == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s \"%V\" says store=redis, but "
                          "no \"payments_limit_redis\" in the http block "
                          "says where Redis is",
                          ngx_http_payments_limit_kinds[z->kind], &z->name);
            return NGX_CONF_ERROR;
        }

        if (z->kind != NGX_HTTP_PAYMENTS_LIMIT_FAILURES) {
            continue;
        }

        /* every gateway must name a buyer, an address, a checkout by the
         * same HMAC in Redis: the zone's salt derived from the key file
         * they share and the zone's name, never a random one */

        if (lmcf->redis->hash_key.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s \"%V\" says store=redis, but "
                          "\"payments_limit_redis\" has no hash_key_file=: "
                          "the gateways sharing the zone must name its keys "
                          "by the same HMAC key, e.g. a file of "
                          "openssl rand -hex 32, the same on each",
                          ngx_http_payments_limit_kinds[z->kind], &z->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_payments_limit_derive_salt(lmcf->redis, z) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* a failures zone's salt: HMAC-SHA-256(hash key, "failures:" zone name) */

static ngx_int_t
ngx_http_payments_limit_derive_salt(ngx_http_payments_limit_redis_conf_t *rc,
    ngx_http_payments_limit_zone_t *z)
{
    u_char        buf[128], *p;
    unsigned int  len;

    if (z->name.len > sizeof(buf) - 9) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(buf, "failures:", 9);
    p = ngx_cpymem(p, z->name.data, z->name.len);

    len = 0;

    if (HMAC(EVP_sha256(), rc->hash_key.data, (int) rc->hash_key.len, buf,
             p - buf, z->salt, &len)
        == NULL || len != sizeof(z->salt))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_limit_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_payments_limit_redis_init_process(cycle);
}


static void
ngx_http_payments_limit_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_payments_limit_redis_exit_process(cycle);
}


static void *
ngx_http_payments_limit_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_payments_limit_loc_conf_t  *conf;

    /* set by ngx_pcalloc(): no rules, nothing set at this level */

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_limit_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    return conf;
}


static char *
ngx_http_payments_limit_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_payments_limit_loc_conf_t *prev = parent;
    ngx_http_payments_limit_loc_conf_t *conf = child;

    /* as limit_req: a level with no "payments_limit" inherits them all */

    if (!conf->set) {
        ngx_memcpy(conf->rules, prev->rules, sizeof(conf->rules));
        conf->set = prev->set;
    }

    return NGX_CONF_OK;
}


ngx_shm_zone_t *
ngx_http_payments_limit_find_zone(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *shm_zone;

    part = &cf->cycle->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].tag == &ngx_http_payments_limit_module
            && shm_zone[i].shm.name.len == name->len
            && ngx_strncmp(shm_zone[i].shm.name.data, name->data, name->len)
               == 0)
        {
            return &shm_zone[i];
        }
    }
}


/* USD:10000.00 */

static char *
ngx_http_payments_limit_parse_max(ngx_conf_t *cf, ngx_str_t *directive,
    ngx_http_payments_limit_zone_t *z, ngx_str_t *s)
{
    ngx_uint_t                      i;
    const pay_currency_t           *cur;
    ngx_http_payments_limit_max_t  *m;

    if (s->len < 5 || s->data[3] != ':') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid \"max=%V\": write a currency "
                           "and an amount, e.g. max=USD:10000.00",
                           directive, s);
        return NGX_CONF_ERROR;
    }

    cur = pay_currency_find((char *) s->data, 3);
    if (cur == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"max=%V\": \"%*s\" is not an ISO 4217 "
                           "currency code (upper case)",
                           directive, s, (size_t) 3, s->data);
        return NGX_CONF_ERROR;
    }

    m = z->maxes->elts;
    for (i = 0; i < z->maxes->nelts; i++) {
        if (ngx_strncmp(m[i].currency, cur->code, 3) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": max= for %s is given twice",
                               directive, cur->code);
            return NGX_CONF_ERROR;
        }
    }

    m = ngx_array_push(z->maxes);
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(m->currency, cur->code, 4);

    if (pay_amount_parse((char *) s->data + 4, s->len - 4, cur->exponent,
                         &m->max)
        != PAY_AMOUNT_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid amount in \"max=%V\": a decimal "
                           "greater than zero with at most %d decimals",
                           directive, s, cur->exponent);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * payments_limit_zone NAME size=SIZE rate=Nr/s|Nr/m
 *     [store=local|redis [gateways=N] [on_error=local|deny]];
 * payments_limit_amount NAME size=SIZE window=TIME max=CUR:AMOUNT ...;
 * payments_limit_failures NAME size=SIZE window=TIME max=N;
 */

static char *
ngx_http_payments_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_limit_main_conf_t *lmcf = conf;

    u_char                          *p;
    size_t                           len;
    ssize_t                          size;
    ngx_int_t                        n, scale;
    ngx_str_t                       *value, name, s;
    ngx_uint_t                       i, kind;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_payments_limit_max_t   *m;
    ngx_http_payments_limit_zone_t  *z;

    value = cf->args->elts;
    kind = cmd->offset;

    name = value[1];

    if (name.len == 0 || ngx_strlchr(name.data, name.data + name.len, '=')) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the first parameter is the zone's name, "
                           "e.g. \"%V api size=1m ...\"", &cmd->name,
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_limit_find_zone(cf, &name)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": zone \"%V\" is already declared",
                           &cmd->name, &name);
        return NGX_CONF_ERROR;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_limit_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    z->kind = kind;
    z->name = name;
    z->maxes = ngx_array_create(cf->pool, 2,
                                sizeof(ngx_http_payments_limit_max_t));
    if (z->maxes == NULL) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    z->max = -1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid zone size \"%V\"",
                                   &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": zone \"%V\" is too small: "
                                   "\"%V\", it needs at least %uzk",
                                   &cmd->name, &name, &value[i],
                                   8 * ngx_pagesize / 1024);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (kind == NGX_HTTP_PAYMENTS_LIMIT_RATE
            && ngx_strncmp(value[i].data, "rate=", 5) == 0)
        {
            len = value[i].len;
            p = value[i].data + len - 3;
            scale = 0;

            if (len > 8 && ngx_strncmp(p, "r/s", 3) == 0) {
                scale = 1;

            } else if (len > 8 && ngx_strncmp(p, "r/m", 3) == 0) {
                scale = 60;
            }

            n = scale ? ngx_atoi(value[i].data + 5, len - 8) : NGX_ERROR;

            if (n <= 0 || n > NGX_HTTP_PAYMENTS_LIMIT_MAX_RATE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid rate \"%V\": requests "
                                   "per second or per minute, 1 to %d, e.g. "
                                   "rate=10r/s or rate=30r/m", &cmd->name,
                                   &value[i],
                                   NGX_HTTP_PAYMENTS_LIMIT_MAX_RATE);
                return NGX_CONF_ERROR;
            }

            z->rate = n * 1000 * (60 / scale);
            continue;
        }

        if (kind != NGX_HTTP_PAYMENTS_LIMIT_RATE
            && ngx_strncmp(value[i].data, "window=", 7) == 0)
        {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n < 1000 || n > 31 * 86400 * 1000L) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": a time from 1s "
                                   "to 31d, e.g. window=1h", &cmd->name,
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            z->window = (ngx_msec_t) n;
            continue;
        }

        if (kind == NGX_HTTP_PAYMENTS_LIMIT_AMOUNT
            && ngx_strncmp(value[i].data, "max=", 4) == 0)
        {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (ngx_http_payments_limit_parse_max(cf, &cmd->name, z, &s)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (kind == NGX_HTTP_PAYMENTS_LIMIT_FAILURES
            && ngx_strncmp(value[i].data, "max=", 4) == 0)
        {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n <= 0 || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": the number of "
                                   "failed payments allowed in the window, "
                                   "1 or more", &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            z->max = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "store=", 6) == 0
            || ngx_strncmp(value[i].data, "gateways=", 9) == 0
            || ngx_strncmp(value[i].data, "on_error=", 9) == 0)
        {
            if (ngx_strcmp(value[i].data, "store=redis") == 0) {
                z->redis = 1;
                continue;
            }

            if (ngx_strcmp(value[i].data, "store=local") == 0) {
                z->redis = 0;
                continue;
            }

            if (ngx_strcmp(value[i].data, "on_error=deny") == 0) {
                z->deny = 1;
                continue;
            }

            if (ngx_strcmp(value[i].data, "on_error=local") == 0) {
                z->deny = 0;
                continue;
            }

            if (value[i].data[0] == 'g') {
                n = ngx_atoi(value[i].data + 9, value[i].len - 9);

                if (n < 1 || n > 1000) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"%V\": invalid \"%V\": the number "
                                       "of gateways that share the zone in "
                                       "Redis, 1 to 1000", &cmd->name,
                                       &value[i]);
                    return NGX_CONF_ERROR;
                }

                z->gateways = (ngx_uint_t) n;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid \"%V\": write store=local, "
                               "store=redis, on_error=local or "
                               "on_error=deny", &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\": it takes %s",
                           &cmd->name, &value[i],
                           kind == NGX_HTTP_PAYMENTS_LIMIT_RATE
                           ? "size=, rate=, store=, gateways= and on_error="
                           : kind == NGX_HTTP_PAYMENTS_LIMIT_AMOUNT
                           ? "size=, window=, max=CUR:amount, store=, "
                             "gateways= and on_error="
                           : "size=, window=, max=, store=, gateways= and "
                             "on_error=");
        return NGX_CONF_ERROR;
    }

    if (size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": zone \"%V\" needs a size, e.g. size=1m",
                           &cmd->name, &name);
        return NGX_CONF_ERROR;
    }

    switch (kind) {

    case NGX_HTTP_PAYMENTS_LIMIT_RATE:
        if (z->rate == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": zone \"%V\" needs a rate, e.g. "
                               "rate=10r/s", &cmd->name, &name);
            return NGX_CONF_ERROR;
        }

        break;

    case NGX_HTTP_PAYMENTS_LIMIT_AMOUNT:
        if (z->window == 0 || z->maxes->nelts == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": zone \"%V\" needs window= and at "
                               "least one max=CURRENCY:AMOUNT, e.g. "
                               "window=1h max=USD:10000.00",
                               &cmd->name, &name);
            return NGX_CONF_ERROR;
        }

        /* Redis's script adds in Lua's numbers, exact below 2^53 */
        m = z->maxes->elts;

        for (i = 0; z->redis && i < z->maxes->nelts; i++) {
            if (m[i].max > NGX_HTTP_PAYMENTS_LIMIT_REDIS_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": zone \"%V\": max= for %s is "
                                   "more than a zone with store=redis "
                                   "counts exactly (2^53 - 1 minor units)",
                                   &cmd->name, &name, m[i].currency);
                return NGX_CONF_ERROR;
            }
        }

        break;

    default: /* NGX_HTTP_PAYMENTS_LIMIT_FAILURES */
        if (z->window == 0 || z->max <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": zone \"%V\" needs window= and max=, "
                               "e.g. window=10m max=5", &cmd->name, &name);
            return NGX_CONF_ERROR;
        }

        break;
    }

    if (!z->redis && (z->deny || z->gateways)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": zone \"%V\": gateways= and "
                           "on_error= are for a zone with store=redis",
                           &cmd->name, &name);
        return NGX_CONF_ERROR;
    }

    if (z->redis && !z->deny && z->gateways == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": zone \"%V\" with store=redis needs "
                           "gateways=N, the number of gateways that "
                           "share it (while Redis does not answer, each "
                           "allows 1/N of %s), or on_error=deny",
                           &cmd->name, &name,
                           kind == NGX_HTTP_PAYMENTS_LIMIT_RATE
                           ? "the rate and burst" : "each max=");
        return NGX_CONF_ERROR;
    }

    if (z->gateways == 0) {
        z->gateways = 1;
    }

    if (z->redis) {
        lmcf->redis_zones++;
    }

    z->slot = z->window / NGX_HTTP_PAYMENTS_LIMIT_SUBWINDOWS;
    if (z->slot == 0) {
        z->slot = 1;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_payments_limit_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_payments_limit_init_zone;
    shm_zone->data = z;

    return NGX_CONF_OK;
}


/* payments_limit SCOPE=ZONE [burst=N]; */

static char *
ngx_http_payments_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_limit_loc_conf_t *lcf = conf;

    u_char                          *eq;
    ngx_int_t                        burst;
    ngx_str_t                       *value, scope, name;
    ngx_uint_t                       i;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_payments_limit_zone_t  *z;

    value = cf->args->elts;

    eq = ngx_strlchr(value[1].data, value[1].data + value[1].len, '=');

    if (eq == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_limit\": write SCOPE=ZONE, e.g. "
                           "create_merchant=api, where SCOPE is "
                           "create_merchant, create_address, pages, "
                           "webhook, webhook_failures, amount or "
                           "failures");
        return NGX_CONF_ERROR;
    }

    scope.data = value[1].data;
    scope.len = eq - value[1].data;
    name.data = eq + 1;
    name.len = value[1].data + value[1].len - name.data;

    for (i = 0; i < NGX_HTTP_PAYMENTS_LIMIT_SCOPES; i++) {
        if (ngx_http_payments_limit_scopes[i].name.len == scope.len
            && ngx_strncmp(ngx_http_payments_limit_scopes[i].name.data,
                           scope.data, scope.len) == 0)
        {
            break;
        }
    }

    if (i == NGX_HTTP_PAYMENTS_LIMIT_SCOPES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_limit\": unknown scope \"%V\": use "
                           "create_merchant, create_address, pages, "
                           "webhook, webhook_failures, amount or "
                           "failures", &scope);
        return NGX_CONF_ERROR;
    }

    if (lcf->rules[i].zone) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_limit\": %V= is given twice at this "
                           "level", &scope);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_http_payments_limit_find_zone(cf, &name);

    if (shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_limit\": unknown zone \"%V\": declare "
                           "it with \"%s %V ...\" in the http block, before "
                           "this line", &name,
                           ngx_http_payments_limit_kinds[
                               ngx_http_payments_limit_scopes[i].kind],
                           &name);
        return NGX_CONF_ERROR;
    }

    z = shm_zone->data;

    if (z->kind != ngx_http_payments_limit_scopes[i].kind) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_limit\": zone \"%V\" is a \"%s\" "
                           "zone; %V= needs a \"%s\" zone", &name,
                           ngx_http_payments_limit_kinds[z->kind], &scope,
                           ngx_http_payments_limit_kinds[
                               ngx_http_payments_limit_scopes[i].kind]);
        return NGX_CONF_ERROR;
    }

    burst = 0;

    if (cf->args->nelts == 3) {
        if (z->kind != NGX_HTTP_PAYMENTS_LIMIT_RATE
            || ngx_strncmp(value[2].data, "burst=", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_limit\": invalid parameter "
                               "\"%V\"%s", &value[2],
                               z->kind == NGX_HTTP_PAYMENTS_LIMIT_RATE
                               ? ": burst=N is its only parameter"
                               : ": burst= is for request rates only");
            return NGX_CONF_ERROR;
        }

        burst = ngx_atoi(value[2].data + 6, value[2].len - 6);

        if (burst < 0 || burst > NGX_HTTP_PAYMENTS_LIMIT_MAX_BURST) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_limit\": invalid \"%V\": a number "
                               "of requests, 0 to %d", &value[2],
                               NGX_HTTP_PAYMENTS_LIMIT_MAX_BURST);
            return NGX_CONF_ERROR;
        }
    }

    lcf->rules[i].zone = shm_zone;
    lcf->rules[i].burst = (ngx_uint_t) burst * 1000;
    lcf->set = 1;

    return NGX_CONF_OK;
}
