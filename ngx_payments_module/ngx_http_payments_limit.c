
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


#define NGX_HTTP_PAYMENTS_LIMIT_RATE        1
#define NGX_HTTP_PAYMENTS_LIMIT_AMOUNT      2
#define NGX_HTTP_PAYMENTS_LIMIT_FAILURES    3

/* the scopes of "payments_limit" */
#define NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT   0
#define NGX_HTTP_PAYMENTS_LIMIT_CREATE_ADDRESS    1
#define NGX_HTTP_PAYMENTS_LIMIT_PAGES             2
#define NGX_HTTP_PAYMENTS_LIMIT_WEBHOOKS          3
#define NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS           4
#define NGX_HTTP_PAYMENTS_LIMIT_FAILED            5
#define NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK_FAILED    6
#define NGX_HTTP_PAYMENTS_LIMIT_SCOPES            7

/* a window is 16 sub-windows; one more holds the current one */
#define NGX_HTTP_PAYMENTS_LIMIT_SUBWINDOWS  16
#define NGX_HTTP_PAYMENTS_LIMIT_SLOTS                                      \
    (NGX_HTTP_PAYMENTS_LIMIT_SUBWINDOWS + 1)

#define NGX_HTTP_PAYMENTS_LIMIT_HASH        16      /* bytes of a buyer key */
#define NGX_HTTP_PAYMENTS_LIMIT_MAX_RATE    1000000 /* r/s */
#define NGX_HTTP_PAYMENTS_LIMIT_MAX_BURST   1000000


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;
    ngx_uint_t                      kind;
    ngx_msec_t                      window;
    ngx_atomic_t                    rejected;
    u_char                          salt[32];   /* keys the buyer hashes */
} ngx_http_payments_limit_shctx_t;


typedef struct {
    char                            currency[4];
    int64_t                         max;        /* minor units */
} ngx_http_payments_limit_max_t;


typedef struct {
    ngx_http_payments_limit_shctx_t  *sh;
    ngx_slab_pool_t                  *shpool;
    ngx_str_t                         name;
    ngx_uint_t                        kind;
    ngx_uint_t                        rate;     /* milli-requests a minute */
    ngx_msec_t                        window;
    ngx_msec_t                        slot;     /* window / 16 */
    int64_t                           max;      /* failures */
    ngx_array_t                      *maxes;    /* amounts, of _max_t */
} ngx_http_payments_limit_zone_t;


/* starts at ngx_rbtree_node_t.color, as limit_req's nodes do */
typedef struct {
    u_char                          color;
    u_char                          dummy;
    u_short                         klen;
    u_short                         vlen;       /* a multiple of 8 */
    ngx_queue_t                     queue;
    ngx_msec_t                      expire;     /* no state left after it */
    u_char                          data[1];    /* value, then key */
} ngx_http_payments_limit_node_t;


typedef struct {
    ngx_int_t                       excess;     /* milli-requests */
    ngx_msec_t                      last;       /* 0: never accounted */
} ngx_http_payments_limit_rate_t;


typedef struct {
    uint64_t                        idx;        /* current sub-window */
    int64_t                         sum[NGX_HTTP_PAYMENTS_LIMIT_SLOTS];
} ngx_http_payments_limit_window_t;


/* whose failure a checkout's FAILED webhook is */
typedef struct {
    u_char                          buyer[2][NGX_HTTP_PAYMENTS_LIMIT_HASH];
    u_char                          nbuyers;
    u_char                          addrlen;
    u_char                          addr[16];
    u_char                          pad[6];
} ngx_http_payments_limit_checkout_t;


typedef struct {
    ngx_shm_zone_t                 *zone;
    ngx_uint_t                      burst;      /* milli-requests */
} ngx_http_payments_limit_rule_t;


typedef struct {
    ngx_http_payments_limit_rule_t  rules[NGX_HTTP_PAYMENTS_LIMIT_SCOPES];
    ngx_uint_t                      set;
} ngx_http_payments_limit_loc_conf_t;


typedef struct {
    ngx_str_t                       request_id;
    u_char                          buyer[2][NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_uint_t                      nbuyers;
    ngx_shm_zone_t                 *reserved_zone;
    uint64_t                        reserved_idx;
    int64_t                         reserved;
} ngx_http_payments_limit_ctx_t;


static ngx_int_t ngx_http_payments_limit_add_variables(ngx_conf_t *cf);
static void *ngx_http_payments_limit_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_payments_limit_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_payments_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_payments_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_payments_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_payments_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static const char  *ngx_http_payments_limit_kinds[] = {
    "",
    "payments_limit_zone",
    "payments_limit_amount",
    "payments_limit_failures"
};


static const struct {
    ngx_str_t                       name;
    ngx_uint_t                      kind;
    const char                     *what;       /* for the log */
} ngx_http_payments_limit_scopes[] = {
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

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

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
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


#define NGX_HTTP_PAYMENTS_VAR_MERCHANT    0
#define NGX_HTTP_PAYMENTS_VAR_PSP         1
#define NGX_HTTP_PAYMENTS_VAR_CHECKOUT    2
#define NGX_HTTP_PAYMENTS_VAR_REQUEST_ID  3

/* random bytes for request ids, taken from the end */
static u_char      ngx_http_payments_limit_rnd[4096];
static size_t      ngx_http_payments_limit_rnd_left;
static ngx_pid_t   ngx_http_payments_limit_rnd_pid;


static ngx_str_t  ngx_http_payments_limit_variables[] = {
    ngx_string("payments_merchant"),
    ngx_string("payments_psp"),
    ngx_string("payments_checkout"),
    ngx_string("payments_request_id")
};


/* configuration */


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


static ngx_shm_zone_t *
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
 * payments_limit_zone NAME size=SIZE rate=Nr/s|Nr/m;
 * payments_limit_amount NAME size=SIZE window=TIME max=CUR:AMOUNT ...;
 * payments_limit_failures NAME size=SIZE window=TIME max=N;
 */

static char *
ngx_http_payments_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                          *p;
    size_t                           len;
    ssize_t                          size;
    ngx_int_t                        n, scale;
    ngx_str_t                       *value, name, s;
    ngx_uint_t                       i, kind;
    ngx_shm_zone_t                  *shm_zone;
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

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\"", &cmd->name,
                           &value[i]);
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
                               ? "" : ": burst= is for request rates only");
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


/* zones */


static void
ngx_http_payments_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_payments_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = (ngx_http_payments_limit_node_t *) &node->color;
            lnt = (ngx_http_payments_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data + ln->vlen, lnt->data + lnt->vlen,
                              ln->klen, lnt->klen) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_int_t
ngx_http_payments_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_payments_limit_zone_t  *oz = data;

    size_t                           len;
    ngx_http_payments_limit_zone_t  *z;

    z = shm_zone->data;

    if (oz) {
        /* the old nodes' layout and meaning must not change under them */
        if (oz->kind != z->kind
            || (z->kind != NGX_HTTP_PAYMENTS_LIMIT_RATE
                && oz->window != z->window))
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "payments_limit zone \"%V\" was a \"%s\" zone "
                          "with another kind or window before the reload: "
                          "give the new zone a new name",
                          &shm_zone->shm.name,
                          ngx_http_payments_limit_kinds[oz->kind]);
            return NGX_ERROR;
        }

        z->sh = oz->sh;
        z->shpool = oz->shpool;

        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;

        return NGX_OK;
    }

    z->sh = ngx_slab_alloc(z->shpool,
                           sizeof(ngx_http_payments_limit_shctx_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_payments_limit_rbtree_insert_value);
    ngx_queue_init(&z->sh->queue);

    z->sh->kind = z->kind;
    z->sh->window = z->window;
    z->sh->rejected = 0;

    if (RAND_bytes(z->sh->salt, sizeof(z->sh->salt)) != 1) {
        return NGX_ERROR;
    }

    len = sizeof(" in payments_limit zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in payments_limit zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Frees nodes at the LRU tail: force == 0 frees one or two that carry no
 * state any more; force == 1 frees the oldest first, whatever it holds.
 * Under the zone's mutex.
 */

static void
ngx_http_payments_limit_expire(ngx_http_payments_limit_zone_t *z,
    ngx_uint_t force)
{
    ngx_uint_t                       n;
    ngx_msec_t                       now;
    ngx_queue_t                     *q;
    ngx_rbtree_node_t               *node;
    ngx_http_payments_limit_node_t  *ln;

    now = ngx_current_msec;

    for (n = force ? 0 : 1; n < 3; n++) {

        if (ngx_queue_empty(&z->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&z->sh->queue);
        ln = ngx_queue_data(q, ngx_http_payments_limit_node_t, queue);

        /* lookups move nodes to the head: past a live one, all are live */
        if (n != 0 && (ngx_msec_int_t) (now - ln->expire) < 0) {
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&z->sh->rbtree, node);
        ngx_slab_free_locked(z->shpool, node);
    }
}


/* The node of key, moved to the LRU head; a new zeroed one if create.
 * Under the zone's mutex.  NULL: absent, or no memory (logged). */

static ngx_http_payments_limit_node_t *
ngx_http_payments_limit_lookup(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, size_t vlen, ngx_uint_t create)
{
    size_t                           size;
    uint32_t                         hash;
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_payments_limit_node_t  *ln;

    hash = ngx_crc32_short(key->data, key->len);

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_http_payments_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, ln->data + ln->vlen, key->len,
                          ln->klen);

        if (rc == 0 && ln->vlen == vlen) {
            ngx_queue_remove(&ln->queue);
            ngx_queue_insert_head(&z->sh->queue, &ln->queue);
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    if (!create) {
        return NULL;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_payments_limit_node_t, data)
           + vlen + key->len;

    ngx_http_payments_limit_expire(z, 0);

    node = ngx_slab_alloc_locked(z->shpool, size);

    if (node == NULL) {
        ngx_http_payments_limit_expire(z, 1);

        node = ngx_slab_alloc_locked(z->shpool, size);
        if (node == NULL) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "payments: could not allocate a node%s",
                          z->shpool->log_ctx);
            return NULL;
        }
    }

    node->key = hash;

    ln = (ngx_http_payments_limit_node_t *) &node->color;

    ln->klen = (u_short) key->len;
    ln->vlen = (u_short) vlen;
    ln->expire = ngx_current_msec;
    ngx_memzero(ln->data, vlen);
    ngx_memcpy(ln->data + vlen, key->data, key->len);

    ngx_rbtree_insert(&z->sh->rbtree, node);
    ngx_queue_insert_head(&z->sh->queue, &ln->queue);

    return ln;
}


/*
 * One request against a rate rule.  NGX_OK: it fits (and was counted if
 * account); NGX_BUSY: it does not, *wait is the time in ms until one
 * request fits.  An unknown key fits: its first request starts its bucket.
 */

static ngx_int_t
ngx_http_payments_limit_rate(ngx_http_payments_limit_rule_t *rule,
    ngx_str_t *key, ngx_uint_t account, ngx_msec_t *wait)
{
    ngx_int_t                        excess;
    ngx_msec_t                       now;
    ngx_msec_int_t                   ms;
    ngx_http_payments_limit_rate_t  *rt;
    ngx_http_payments_limit_node_t  *ln;
    ngx_http_payments_limit_zone_t  *z;

    z = rule->zone->data;
    now = ngx_current_msec;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, key,
                                        sizeof(ngx_http_payments_limit_rate_t),
                                        account);
    if (ln == NULL) {
        /* not seen yet, or no memory: fail open, as limit_req does */
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_OK;
    }

    rt = (ngx_http_payments_limit_rate_t *) ln->data;

    if (rt->last == 0) {
        excess = 0;

    } else {
        ms = (ngx_msec_int_t) (now - rt->last);

        if (ms < 0) {
            ms = 0;

        } else if (ms > 86400000) {
            ms = 86400000;
        }

        /* rate <= 6 * 10^10 and ms <= 86400000: no overflow */
        excess = rt->excess - (ngx_int_t) (z->rate * ms / 60000) + 1000;

        if (excess < 0) {
            excess = 0;
        }
    }

    if ((ngx_uint_t) excess > rule->burst) {
        *wait = (ngx_msec_t) ((excess - (ngx_int_t) rule->burst) * 60000
                              + z->rate - 1) / z->rate;
        (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    if (account) {
        if (rt->last == 0 || now != rt->last) {
            rt->last = now;
        }

        rt->excess = excess;

        /* a new node would be no different after this */
        ln->expire = rt->last
                     + (ngx_msec_t) ((excess + 1000) * 60000 / z->rate) + 1;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


/* windows: 17 slots of window / 16; slot k covers [(k-1)*slot, k*slot) */

static uint64_t
ngx_http_payments_limit_slot(ngx_http_payments_limit_zone_t *z)
{
    return (uint64_t) (ngx_current_msec / z->slot) + 1;
}


/* Moves the window to now; returns its sum. */

static int64_t
ngx_http_payments_limit_advance(ngx_http_payments_limit_window_t *w,
    uint64_t idx)
{
    int64_t     total;
    uint64_t    k;
    ngx_uint_t  i;

    if (w->idx == 0 || idx >= w->idx + NGX_HTTP_PAYMENTS_LIMIT_SLOTS) {
        ngx_memzero(w->sum, sizeof(w->sum));
        w->idx = idx;

    } else if (idx > w->idx) {
        for (k = w->idx + 1; k <= idx; k++) {
            w->sum[k % NGX_HTTP_PAYMENTS_LIMIT_SLOTS] = 0;
        }

        w->idx = idx;
    }

    total = 0;

    /* every slot is at most max, and their sum too: no overflow */
    for (i = 0; i < NGX_HTTP_PAYMENTS_LIMIT_SLOTS; i++) {
        total += w->sum[i];
    }

    return total;
}


/* ms until the window's sum is at most limit (it is more now) */

static ngx_msec_t
ngx_http_payments_limit_window_wait(ngx_http_payments_limit_zone_t *z,
    ngx_http_payments_limit_window_t *w, int64_t total, int64_t limit)
{
    uint64_t    k, end;
    ngx_msec_t  at;

    if (limit >= 0) {
        for (k = w->idx + 1 - NGX_HTTP_PAYMENTS_LIMIT_SLOTS; k <= w->idx; k++)
        {
            total -= w->sum[k % NGX_HTTP_PAYMENTS_LIMIT_SLOTS];

            if (total <= limit) {
                /* slot k leaves when slot k + 17 begins */
                end = k + NGX_HTTP_PAYMENTS_LIMIT_SLOTS - 1;
                at = (ngx_msec_t) (end * z->slot);

                return at > ngx_current_msec ? at - ngx_current_msec : 1;
            }
        }
    }

    /* more than the limit on its own: never fits */
    return z->window + z->slot;
}


/* A sum of amounts per (merchant, currency): reserve amount, or say when
 * it would fit. */

static ngx_int_t
ngx_http_payments_limit_amount(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, int64_t max, uint64_t *idx,
    ngx_msec_t *wait)
{
    int64_t                            total;
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *w;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     1);
    if (ln == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        *idx = 0;
        return NGX_OK;
    }

    w = (ngx_http_payments_limit_window_t *) ln->data;
    *idx = ngx_http_payments_limit_slot(z);
    total = ngx_http_payments_limit_advance(w, *idx);

    /* total <= max always holds, so max - total cannot overflow */
    if (amount > max - total) {
        *wait = ngx_http_payments_limit_window_wait(z, w, total,
                                                    max - amount);
        (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    w->sum[*idx % NGX_HTTP_PAYMENTS_LIMIT_SLOTS] += amount;
    ln->expire = (ngx_msec_t) ((w->idx + NGX_HTTP_PAYMENTS_LIMIT_SLOTS - 1)
                               * z->slot);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


static void
ngx_http_payments_limit_unreserve(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, uint64_t idx)
{
    int64_t                           *slot;
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *w;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     0);
    if (ln) {
        w = (ngx_http_payments_limit_window_t *) ln->data;
        (void) ngx_http_payments_limit_advance(w,
                                             ngx_http_payments_limit_slot(z));

        /* only while the slot it went into is still in the window */
        if (idx + NGX_HTTP_PAYMENTS_LIMIT_SLOTS > w->idx) {
            slot = &w->sum[idx % NGX_HTTP_PAYMENTS_LIMIT_SLOTS];
            *slot -= ngx_min(*slot, amount);
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* failures: is key at max?  Under the zone's mutex. */

static ngx_int_t
ngx_http_payments_limit_failures_locked(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_msec_t *wait)
{
    int64_t                            total;
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *w;

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     0);
    if (ln == NULL) {
        return NGX_OK;
    }

    w = (ngx_http_payments_limit_window_t *) ln->data;
    total = ngx_http_payments_limit_advance(w,
                                            ngx_http_payments_limit_slot(z));

    if (total < z->max) {
        return NGX_OK;
    }

    *wait = ngx_http_payments_limit_window_wait(z, w, total, z->max - 1);
    (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);

    return NGX_BUSY;
}


static void
ngx_http_payments_limit_fail_locked(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key)
{
    uint64_t                           idx;
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *w;

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     1);
    if (ln == NULL) {
        return;
    }

    w = (ngx_http_payments_limit_window_t *) ln->data;
    idx = ngx_http_payments_limit_slot(z);
    (void) ngx_http_payments_limit_advance(w, idx);

    if (w->sum[idx % NGX_HTTP_PAYMENTS_LIMIT_SLOTS] < z->max) {
        w->sum[idx % NGX_HTTP_PAYMENTS_LIMIT_SLOTS]++;
    }

    ln->expire = (ngx_msec_t) ((w->idx + NGX_HTTP_PAYMENTS_LIMIT_SLOTS - 1)
                               * z->slot);
}


/* keys */


/* the client's address as $binary_remote_addr has it; 0 for others */

static size_t
ngx_http_payments_limit_addr(ngx_http_request_t *r, u_char *buf)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (r->connection->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) r->connection->sockaddr;
        ngx_memcpy(buf, &sin->sin_addr, 4);
        return 4;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ngx_memcpy(buf, &sin6->sin6_addr.s6_addr[12], 4);
            return 4;
        }

        ngx_memcpy(buf, sin6->sin6_addr.s6_addr, 16);
        return 16;
#endif

    default:
        return 0;
    }
}


/* 'a' + the address: a failures key */

static size_t
ngx_http_payments_limit_addr_key(ngx_http_request_t *r, u_char *buf)
{
    size_t  n;

    n = ngx_http_payments_limit_addr(r, buf + 1);
    if (n == 0) {
        return 0;
    }

    buf[0] = 'a';

    return n + 1;
}


/*
 * A webhook's sender: prefix + the PSP's name + NUL + the client's address,
 * an IPv6 address cut to its /64 (one site holds a whole /64, and would
 * otherwise have 2^64 fresh keys).  No address (a unix socket): the PSP
 * alone, as one sender, unless need_addr.  NGX_DECLINED: no key.
 */

static ngx_int_t
ngx_http_payments_limit_sender_key(ngx_http_request_t *r, ngx_str_t *psp,
    u_char prefix, ngx_uint_t need_addr, ngx_str_t *key)
{
    u_char  *p, addr[16];
    size_t   n;

    n = ngx_http_payments_limit_addr(r, addr);

    if (n == 16) {
        n = 8;
    }

    if ((n == 0 && need_addr) || psp->len > 1024) {
        return NGX_DECLINED;
    }

    key->data = ngx_pnalloc(r->pool, 1 + psp->len + 1 + n);
    if (key->data == NULL) {
        return NGX_DECLINED;
    }

    p = key->data;
    *p++ = prefix;
    p = ngx_cpymem(p, psp->data, psp->len);
    *p++ = '\0';
    p = ngx_cpymem(p, addr, n);
    key->len = p - key->data;

    return NGX_OK;
}


/* 'c' + merchant + NUL + checkout: whose failure the checkout's would be */

static ngx_int_t
ngx_http_payments_limit_checkout_key(ngx_pool_t *pool, ngx_str_t *merchant,
    const u_char *checkout, size_t len, ngx_str_t *key)
{
    u_char  *p;

    if (merchant->len + len > 1024) {
        return NGX_ERROR;
    }

    key->data = ngx_pnalloc(pool, merchant->len + len + 2);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = key->data;
    *p++ = 'c';
    p = ngx_cpymem(p, merchant->data, merchant->len);
    *p++ = '\0';
    p = ngx_cpymem(p, checkout, len);
    key->len = p - key->data;

    return NGX_OK;
}


/*
 * A buyer's key: HMAC-SHA-256 under the zone's random salt of the merchant
 * and the buyer's e-mail (lower case) or id, cut to 16 bytes.  The e-mail
 * itself is never stored, and the salt never leaves the shared memory.
 */

static void
ngx_http_payments_limit_buyer_hash(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *merchant, char kind, const char *value, u_char *out)
{
    u_char         *p, buf[1024], mac[EVP_MAX_MD_SIZE];
    size_t          len, mlen;
    unsigned int    maclen;

    /* merchant ids and buyer values are far shorter: cut, never overrun */
    mlen = ngx_min(merchant->len, 256);
    len = ngx_strlen(value);
    len = ngx_min(len, sizeof(buf) - mlen - 3);

    p = ngx_cpymem(buf, merchant->data, mlen);
    *p++ = '\0';
    *p++ = (u_char) kind;
    *p++ = ':';

    if (kind == 'e') {
        ngx_strlow(p, (u_char *) value, len);
        p += len;

    } else {
        p = ngx_cpymem(p, value, len);
    }

    maclen = 0;

    if (HMAC(EVP_sha256(), z->sh->salt, sizeof(z->sh->salt), buf, p - buf,
             mac, &maclen)
        == NULL || maclen < NGX_HTTP_PAYMENTS_LIMIT_HASH)
    {
        /* cannot happen with SHA-256; a constant key fails safe */
        ngx_memzero(mac, NGX_HTTP_PAYMENTS_LIMIT_HASH);
    }

    ngx_memcpy(out, mac, NGX_HTTP_PAYMENTS_LIMIT_HASH);
}


static ngx_http_payments_limit_ctx_t *
ngx_http_payments_limit_get_ctx(ngx_http_request_t *r)
{
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(r, ngx_http_payments_limit_module);

    if (lctx == NULL) {
        lctx = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_limit_ctx_t));
        if (lctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, lctx, ngx_http_payments_limit_module);
    }

    return lctx;
}


/* answers */


static ngx_int_t
ngx_http_payments_limit_reject(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_shm_zone_t *zone, ngx_uint_t html, ngx_msec_t wait,
    const char *detail)
{
    u_char      buf[NGX_TIME_T_LEN + 1], *p;
    ngx_msec_t  secs;

    /* ceil: Retry-After is when one request fits, never before */
    secs = (wait + 999) / 1000;
    if (secs == 0) {
        secs = 1;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: limiting %s by zone \"%V\", retry after %M s",
                  ngx_http_payments_limit_scopes[scope].what,
                  &zone->shm.name, secs);

    p = ngx_sprintf(buf, "%M", secs);
    *p = '\0';

    if (ngx_http_payments_add_header(r, "Retry-After", (char *) buf)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (html) {
        return ngx_http_payments_page(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "Too many requests",
                                      "Too many requests came from your "
                                      "network or for this payment. Please "
                                      "wait a moment and try again.");
    }

    return ngx_http_payments_problem(r, PAY_ERR_RATE_LIMITED, 0, detail);
}


/* hooks */


/*
 * POST /v1/webhooks/{psp}, before the body is read: each sender (PSP and
 * address) on its own.  A sender whose signatures failed too often is shed
 * first (webhook_failures=, not counted), then the sender's request rate
 * (webhook=).  Junk from one address never uses up the buckets of the
 * PSP's real senders.
 */

static ngx_int_t
ngx_http_payments_limit_webhook(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_loc_conf_t *lcf)
{
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       scope;
    ngx_msec_t                       wait;
    ngx_http_request_t              *r = ctx->request;
    ngx_http_payments_psp_t         *psp;
    ngx_http_payments_limit_rule_t  *rule;
    ngx_http_payments_limit_zone_t  *z;

    /* only configured PSPs have buckets; others are a 404 anyway */
    psp = ngx_http_payments_find_psp(ctx->pmcf, (char *) ctx->object_id.data,
                                     ctx->object_id.len);
    if (psp == NULL) {
        return NGX_DECLINED;
    }

    scope = NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK_FAILED;
    rule = &lcf->rules[scope];

    if (rule->zone
        && ngx_http_payments_limit_sender_key(r, &psp->name, 'w', 1, &key)
           == NGX_OK)
    {
        z = rule->zone->data;

        ngx_shmtx_lock(&z->shpool->mutex);
        rc = ngx_http_payments_limit_failures_locked(z, &key, &wait);
        ngx_shmtx_unlock(&z->shpool->mutex);

        if (rc == NGX_BUSY) {
            goto reject;
        }
    }

    scope = NGX_HTTP_PAYMENTS_LIMIT_WEBHOOKS;
    rule = &lcf->rules[scope];

    if (rule->zone == NULL
        || ngx_http_payments_limit_sender_key(r, &psp->name, 'h', 0, &key)
           != NGX_OK
        || ngx_http_payments_limit_rate(rule, &key, 1, &wait) != NGX_BUSY)
    {
        return NGX_DECLINED;
    }

reject:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_payments_limit_reject(r, scope, rule->zone, 0, wait,
               scope == NGX_HTTP_PAYMENTS_LIMIT_WEBHOOKS
               ? "too many webhooks from this address; deliver again later"
               : "too many webhooks with a bad signature from this "
                 "address; deliver again later");
}


void
ngx_http_payments_limit_webhook_unverified(ngx_http_payments_ctx_t *ctx)
{
    ngx_str_t                            key;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_rule_t      *rule;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);
    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK_FAILED];

    if (rule->zone == NULL || ctx->psp == NULL
        || ngx_http_payments_limit_sender_key(r, &ctx->psp->name, 'w', 1,
                                              &key)
           != NGX_OK)
    {
        return;
    }

    z = rule->zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);
    ngx_http_payments_limit_fail_locked(z, &key);
    ngx_shmtx_unlock(&z->shpool->mutex);
}


ngx_int_t
ngx_http_payments_limit_early(ngx_http_payments_ctx_t *ctx, ngx_uint_t what)
{
    u_char                              addr[17];
    ngx_int_t                           rc;
    ngx_str_t                           key;
    ngx_uint_t                          html;
    ngx_msec_t                          wait;
    ngx_http_request_t                 *r = ctx->request;
    ngx_http_payments_limit_rule_t     *rule;
    ngx_http_payments_limit_zone_t     *z;
    ngx_http_payments_limit_loc_conf_t *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (!lcf->set) {
        return NGX_DECLINED;
    }

    if (what == NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK) {
        return ngx_http_payments_limit_webhook(ctx, lcf);
    }

    html = (what != NGX_HTTP_PAYMENTS_LIMIT_STATUS);

    /* the card-testing guard: a shopper address with too many failures
     * may not start another payment */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED];

    if (what == NGX_HTTP_PAYMENTS_LIMIT_PAY && rule->zone) {
        key.data = addr;
        key.len = ngx_http_payments_limit_addr_key(r, addr);

        if (key.len) {
            z = rule->zone->data;

            ngx_shmtx_lock(&z->shpool->mutex);
            rc = ngx_http_payments_limit_failures_locked(z, &key, &wait);
            ngx_shmtx_unlock(&z->shpool->mutex);

            if (rc == NGX_BUSY) {
                rc = ngx_http_discard_request_body(r);
                if (rc != NGX_OK) {
                    return rc;
                }

                return ngx_http_payments_limit_reject(r,
                           NGX_HTTP_PAYMENTS_LIMIT_FAILED, rule->zone, 1,
                           wait, NULL);
            }
        }
    }

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_PAGES];

    if (rule->zone == NULL) {
        return NGX_DECLINED;
    }

    key.data = addr;
    key.len = ngx_http_payments_limit_addr(r, addr);

    if (key.len == 0
        || ngx_http_payments_limit_rate(rule, &key, 1, &wait) != NGX_BUSY)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_payments_limit_reject(r, NGX_HTTP_PAYMENTS_LIMIT_PAGES,
                                          rule->zone, html, wait,
                                          "too many requests from this "
                                          "address");
}


ngx_int_t
ngx_http_payments_limit_create(ngx_http_payments_ctx_t *ctx, ngx_int_t *rc)
{
    u_char                               addr[16];
    ngx_str_t                            keys[2];
    ngx_uint_t                           i, n, scope[2];
    ngx_msec_t                           wait;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_rule_t      *rules[2];
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (!lcf->set) {
        return NGX_OK;
    }

    n = 0;

    /* the address first: a stolen key used from elsewhere */

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_CREATE_ADDRESS].zone) {
        keys[n].data = addr;
        keys[n].len = ngx_http_payments_limit_addr(r, addr);

        if (keys[n].len) {
            scope[n] = NGX_HTTP_PAYMENTS_LIMIT_CREATE_ADDRESS;
            rules[n] = &lcf->rules[scope[n]];
            n++;
        }
    }

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT].zone
        && ctx->merchant.len)
    {
        keys[n] = ctx->merchant;
        scope[n] = NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT;
        rules[n] = &lcf->rules[scope[n]];
        n++;
    }

    /*
     * A request refused by one rule is counted by none: all but the last
     * are looked at, the last is counted, then the others are.
     */

    for (i = 0; i < n; i++) {
        if (ngx_http_payments_limit_rate(rules[i], &keys[i], i == n - 1,
                                         &wait)
            == NGX_BUSY)
        {
            *rc = ngx_http_payments_limit_reject(r, scope[i],
                      rules[i]->zone, 0, wait,
                      scope[i] == NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT
                      ? "too many payments created by this merchant; "
                        "retry later with the same Idempotency-Key"
                      : "too many payments created from this address; "
                        "retry later with the same Idempotency-Key");
            return NGX_DONE;
        }
    }

    for (i = 0; i + 1 < n; i++) {
        (void) ngx_http_payments_limit_rate(rules[i], &keys[i], 1, &wait);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_limit_checkout(ngx_http_payments_ctx_t *ctx, ngx_int_t *rc)
{
    u_char                               kbuf[256], *p;
    ngx_int_t                            busy;
    ngx_str_t                            key;
    ngx_uint_t                           i;
    ngx_msec_t                           wait;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_ctx_t       *lctx;
    ngx_http_payments_limit_max_t       *m;
    ngx_http_payments_limit_rule_t      *rule;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_loc_conf_t  *lcf;
    ngx_http_payments_limit_checkout_t  *co;
    ngx_http_payments_limit_node_t      *ln;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (!lcf->set || ctx->merchant.len == 0 || !ctx->co_valid) {
        return NGX_OK;
    }

    lctx = ngx_http_payments_limit_get_ctx(r);
    if (lctx == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    /* the card-testing guard: too many failures of this buyer */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED];

    if (rule->zone) {
        z = rule->zone->data;
        lctx->nbuyers = 0;

        if (ctx->co.buyer_id) {
            ngx_http_payments_limit_buyer_hash(z, &ctx->merchant, 'i',
                                               ctx->co.buyer_id,
                                               lctx->buyer[lctx->nbuyers++]);
        }

        if (ctx->co.buyer_email) {
            ngx_http_payments_limit_buyer_hash(z, &ctx->merchant, 'e',
                                               ctx->co.buyer_email,
                                               lctx->buyer[lctx->nbuyers++]);
        }

        for (i = 0; i < lctx->nbuyers; i++) {
            kbuf[0] = 'b';
            ngx_memcpy(kbuf + 1, lctx->buyer[i], NGX_HTTP_PAYMENTS_LIMIT_HASH);
            key.data = kbuf;
            key.len = 1 + NGX_HTTP_PAYMENTS_LIMIT_HASH;

            ngx_shmtx_lock(&z->shpool->mutex);
            busy = ngx_http_payments_limit_failures_locked(z, &key, &wait);
            ngx_shmtx_unlock(&z->shpool->mutex);

            if (busy == NGX_BUSY) {
                *rc = ngx_http_payments_limit_reject(r,
                          NGX_HTTP_PAYMENTS_LIMIT_FAILED, rule->zone, 0, wait,
                          "too many failed payments for this buyer");
                return NGX_DONE;
            }
        }
    }

    /* the amount velocity: reserved now, given back unless claimed */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS];

    if (rule->zone && ctx->merchant.len + 4 <= sizeof(kbuf)) {
        z = rule->zone->data;
        m = z->maxes->elts;

        for (i = 0; i < z->maxes->nelts; i++) {
            if (ngx_strcmp(m[i].currency, ctx->co.currency) == 0) {
                break;
            }
        }

        if (i < z->maxes->nelts) {
            p = ngx_cpymem(kbuf, ctx->merchant.data, ctx->merchant.len);
            *p++ = '\0';
            p = ngx_cpymem(p, ctx->co.currency, 3);
            key.data = kbuf;
            key.len = p - kbuf;

            if (ngx_http_payments_limit_amount(z, &key, ctx->co.total,
                                               m[i].max, &lctx->reserved_idx,
                                               &wait)
                == NGX_BUSY)
            {
                *rc = ngx_http_payments_limit_reject(r,
                          NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS, rule->zone, 0,
                          wait, ctx->co.total > m[i].max
                          ? "the checkout's amount is more than the "
                            "merchant may register in the window"
                          : "the merchant's amount limit for this currency "
                            "is reached for now");
                return NGX_DONE;
            }

            if (lctx->reserved_idx) {
                lctx->reserved_zone = rule->zone;
                lctx->reserved = ctx->co.total;
            }
        }
    }

    /* remember whose failure this checkout's would be */

    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED];

    if (rule->zone && lctx->nbuyers) {
        z = rule->zone->data;

        if (ngx_http_payments_limit_checkout_key(r->pool, &ctx->merchant,
                                   (u_char *) ctx->co.checkout_id,
                                   ngx_strlen(ctx->co.checkout_id), &key)
            == NGX_OK)
        {
            ngx_shmtx_lock(&z->shpool->mutex);

            ln = ngx_http_payments_limit_lookup(z, &key,
                                   sizeof(ngx_http_payments_limit_checkout_t),
                                   1);
            if (ln) {
                co = (ngx_http_payments_limit_checkout_t *) ln->data;
                ngx_memcpy(co->buyer, lctx->buyer, sizeof(co->buyer));
                co->nbuyers = (u_char) lctx->nbuyers;

                /* a webhook may come until the session ends, and later */
                ln->expire = ngx_current_msec
                             + (ngx_msec_t) ctx->pmcf->session_lifetime
                               * 2000;
            }

            ngx_shmtx_unlock(&z->shpool->mutex);
        }
    }

    return NGX_OK;
}


void
ngx_http_payments_limit_claimed(ngx_http_payments_ctx_t *ctx,
    const char *outcome)
{
    u_char                         kbuf[256], *p;
    ngx_str_t                      key;
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx == NULL || lctx->reserved_zone == NULL) {
        return;
    }

    if (outcome && ngx_strcmp(outcome, "claimed") == 0) {
        return;
    }

    p = ngx_cpymem(kbuf, ctx->merchant.data, ctx->merchant.len);
    *p++ = '\0';
    p = ngx_cpymem(p, ctx->co.currency, 3);
    key.data = kbuf;
    key.len = p - kbuf;

    ngx_http_payments_limit_unreserve(lctx->reserved_zone->data, &key,
                                      lctx->reserved, lctx->reserved_idx);
    lctx->reserved_zone = NULL;
}


void
ngx_http_payments_limit_refused(ngx_http_payments_ctx_t *ctx)
{
    u_char                               kbuf[1 + NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_str_t                            key;
    ngx_uint_t                           i;
    ngx_http_payments_limit_ctx_t       *lctx;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    /* no money moves: the amount it reserved is given back */
    ngx_http_payments_limit_claimed(ctx, NULL);

    lcf = ngx_http_get_module_loc_conf(ctx->request,
                                       ngx_http_payments_limit_module);
    lctx = ngx_http_get_module_ctx(ctx->request,
                                   ngx_http_payments_limit_module);

    if (lctx == NULL || lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone == NULL)
    {
        return;
    }

    z = lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (i = 0; i < lctx->nbuyers; i++) {
        kbuf[0] = 'b';
        ngx_memcpy(kbuf + 1, lctx->buyer[i], NGX_HTTP_PAYMENTS_LIMIT_HASH);
        key.data = kbuf;
        key.len = sizeof(kbuf);

        ngx_http_payments_limit_fail_locked(z, &key);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_payments_limit_pay_seen(ngx_http_payments_ctx_t *ctx)
{
    u_char                               addr[16];
    size_t                               n;
    ngx_str_t                            key;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_node_t      *ln;
    ngx_http_payments_limit_checkout_t  *co;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone == NULL
        || ctx->merchant.len == 0)
    {
        return;
    }

    n = ngx_http_payments_limit_addr(r, addr);

    if (n == 0
        || ngx_http_payments_limit_checkout_key(r->pool, &ctx->merchant,
                                                ctx->object_id.data,
                                                ctx->object_id.len, &key)
           != NGX_OK)
    {
        return;
    }

    z = lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, &key,
                                   sizeof(ngx_http_payments_limit_checkout_t),
                                   1);
    if (ln) {
        co = (ngx_http_payments_limit_checkout_t *) ln->data;
        ngx_memcpy(co->addr, addr, n);
        co->addrlen = (u_char) n;

        if ((ngx_msec_int_t) (ln->expire - ngx_current_msec) <= 0) {
            ln->expire = ngx_current_msec
                         + (ngx_msec_t) ctx->pmcf->session_lifetime * 2000;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_payments_limit_failed(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *checkout)
{
    u_char                               kbuf[1 + 16];
    ngx_str_t                            key, m;
    ngx_uint_t                           i;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_node_t      *ln;
    ngx_http_payments_limit_checkout_t   co;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone == NULL
        || merchant == NULL || checkout == NULL || *merchant == '\0')
    {
        return;
    }

    m.data = (u_char *) merchant;
    m.len = ngx_strlen(merchant);

    if (ngx_http_payments_limit_checkout_key(r->pool, &m,
                                             (u_char *) checkout,
                                             ngx_strlen(checkout), &key)
        != NGX_OK)
    {
        return;
    }

    z = lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, &key,
                                   sizeof(ngx_http_payments_limit_checkout_t),
                                   0);
    if (ln == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    ngx_memcpy(&co, ln->data, sizeof(co));

    for (i = 0; i < co.nbuyers && i < 2; i++) {
        kbuf[0] = 'b';
        ngx_memcpy(kbuf + 1, co.buyer[i], NGX_HTTP_PAYMENTS_LIMIT_HASH);
        key.data = kbuf;
        key.len = 1 + NGX_HTTP_PAYMENTS_LIMIT_HASH;

        ngx_http_payments_limit_fail_locked(z, &key);
    }

    if (co.addrlen) {
        kbuf[0] = 'a';
        ngx_memcpy(kbuf + 1, co.addr, co.addrlen);
        key.data = kbuf;
        key.len = 1 + co.addrlen;

        ngx_http_payments_limit_fail_locked(z, &key);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* variables */


static ngx_int_t
ngx_http_payments_limit_add_variables(ngx_conf_t *cf)
{
    ngx_uint_t            i;
    ngx_http_variable_t  *var;

    for (i = 0; i < sizeof(ngx_http_payments_limit_variables)
                    / sizeof(ngx_str_t); i++)
    {
        var = ngx_http_add_variable(cf, &ngx_http_payments_limit_variables[i],
                                    NGX_HTTP_VAR_NOCACHEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_http_payments_limit_variable;
        var->data = i;
    }

    return NGX_OK;
}


/* the PSP and the checkout a request's URI names, before any handler ran */

static void
ngx_http_payments_limit_uri(ngx_http_request_t *r, ngx_str_t *psp,
    ngx_str_t *checkout)
{
    u_char                         *p, *end, *slash;
    ngx_str_t                       name;
    ngx_http_payments_main_conf_t  *pmcf;

    ngx_str_null(psp);
    ngx_str_null(checkout);

    p = r->uri.data;
    end = r->uri.data + r->uri.len;
    ngx_str_null(&name);

    if (r->uri.len > 13 && ngx_strncmp(p, "/v1/webhooks/", 13) == 0) {
        name.data = p + 13;
        name.len = end - name.data;

    } else if (r->uri.len > 11 && ngx_strncmp(p, "/v1/return/", 11) == 0) {
        name.data = p + 11;
        slash = ngx_strlchr(name.data, end, '/');

        if (slash) {
            name.len = slash - name.data;
            checkout->data = slash + 1;
            checkout->len = end - checkout->data;
        }

    } else if (r->uri.len > 14 && ngx_strncmp(p, "/v1/checkouts/", 14) == 0) {
        checkout->data = p + 14;
        slash = ngx_strlchr(checkout->data, end, '/');
        checkout->len = (slash ? slash : end) - checkout->data;
    }

    if (checkout->len && !pay_id_valid((char *) checkout->data,
                                       checkout->len))
    {
        ngx_str_null(checkout);
    }

    if (name.len) {
        pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

        if (pmcf && ngx_http_payments_find_psp(pmcf, (char *) name.data,
                                               name.len))
        {
            *psp = name;
        }
    }
}


static ngx_int_t
ngx_http_payments_limit_new_request_id(ngx_http_request_t *r,
    ngx_http_payments_limit_ctx_t *lctx)
{
    u_char           *p, rnd[16];
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    /* as the gateway's handler does: one sane client id is kept */

    h = ngx_http_payments_header(r, "X-Request-Id", &n);

    if (h && n == 1 && h->value.len > 0 && h->value.len <= 64) {
        for (p = h->value.data; p < h->value.data + h->value.len; p++) {
            if (!isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
                break;
            }
        }

        if (p == h->value.data + h->value.len) {
            lctx->request_id = h->value;
            return NGX_OK;
        }
    }

    /*
     * RAND_bytes() costs about 2 us a call, as much as a whole rejected
     * request: the worker takes its ids from a 4k buffer of it instead.
     */

    if (ngx_http_payments_limit_rnd_left < sizeof(rnd)
        || ngx_http_payments_limit_rnd_pid != ngx_pid)
    {
        if (RAND_bytes(ngx_http_payments_limit_rnd,
                       sizeof(ngx_http_payments_limit_rnd))
            != 1)
        {
            return NGX_ERROR;
        }

        ngx_http_payments_limit_rnd_left = sizeof(ngx_http_payments_limit_rnd);
        ngx_http_payments_limit_rnd_pid = ngx_pid;
    }

    ngx_http_payments_limit_rnd_left -= sizeof(rnd);
    p = ngx_http_payments_limit_rnd + ngx_http_payments_limit_rnd_left;
    ngx_memcpy(rnd, p, sizeof(rnd));
    ngx_memzero(p, sizeof(rnd));

    lctx->request_id.data = ngx_pnalloc(r->pool, 2 * sizeof(rnd));
    if (lctx->request_id.data == NULL) {
        return NGX_ERROR;
    }

    lctx->request_id.len = ngx_hex_dump(lctx->request_id.data, rnd,
                                        sizeof(rnd))
                           - lctx->request_id.data;

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_limit_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_payments_limit_ctx_t  *lctx;

    lctx = ngx_http_payments_limit_get_ctx(r);
    if (lctx == NULL) {
        return NGX_DECLINED;
    }

    if (lctx->request_id.len == 0
        && ngx_http_payments_limit_new_request_id(r, lctx) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    *id = lctx->request_id;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                       s, psp, checkout;
    ngx_http_payments_ctx_t        *ctx;
    ngx_http_payments_limit_ctx_t  *lctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);
    ngx_str_null(&s);

    switch (data) {

    case NGX_HTTP_PAYMENTS_VAR_MERCHANT:
        /* only once authenticated (a key, or a pay/return token) */
        if (ctx) {
            s = ctx->merchant;
        }

        break;

    case NGX_HTTP_PAYMENTS_VAR_PSP:
        if (ctx && ctx->psp) {
            s = ctx->psp->name;

        } else {
            ngx_http_payments_limit_uri(r, &psp, &checkout);
            s = psp;
        }

        break;

    case NGX_HTTP_PAYMENTS_VAR_CHECKOUT:
        if (ctx && ctx->co_valid) {
            s.data = (u_char *) ctx->co.checkout_id;
            s.len = ngx_strlen(ctx->co.checkout_id);

        } else {
            ngx_http_payments_limit_uri(r, &psp, &checkout);
            s = checkout;
        }

        break;

    default: /* NGX_HTTP_PAYMENTS_VAR_REQUEST_ID */
        if (ctx && ctx->request_id.len) {
            s = ctx->request_id;
            break;
        }

        lctx = ngx_http_payments_limit_get_ctx(r);
        if (lctx == NULL) {
            return NGX_ERROR;
        }

        if (lctx->request_id.len == 0
            && ngx_http_payments_limit_new_request_id(r, lctx) != NGX_OK)
        {
            return NGX_ERROR;
        }

        s = lctx->request_id;
        break;
    }

    if (s.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s.data;

    return NGX_OK;
}


/* For GET /metrics: each zone's rejections, from every worker. */

u_char *
ngx_http_payments_limit_metrics(u_char *p, u_char *last)
{
    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_shm_zone_t                  *shm;
    ngx_http_payments_limit_zone_t  *z;

    p = ngx_slprintf(p, last,
            "# HELP payments_rate_limited_total Requests refused with 429 "
            "by each payments_limit zone.\n"
            "# TYPE payments_rate_limited_total counter\n");

    part = &((ngx_cycle_t *) ngx_cycle)->shared_memory.part;
    shm = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm = part->elts;
            i = 0;
        }

        if (shm[i].tag != &ngx_http_payments_limit_module
            || shm[i].data == NULL)
        {
            continue;
        }

        z = shm[i].data;

        if (z->sh == NULL) {
            continue;
        }

        p = ngx_slprintf(p, last,
                         "payments_rate_limited_total{zone=\"%V\"} %uA\n",
                         &z->name, z->sh->rejected);
    }

    return p;
}
