
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's own types, shared by its files:
 * _limit.c (directives), _limit_zone.c (zones), _limit_hooks.c (where a
 * request meets them), _limit_wait.c (a request waiting for Redis),
 * _limit_redis.c (the connection to Redis: its life), _limit_redis_proto.c
 * (what goes over it; _limit_redis_int.h their link), _limit_redis_conf.c
 * (its directive), _limit_vars.c (variables, metrics).
 */


#ifndef _NGX_HTTP_PAYMENTS_LIMIT_INT_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_LIMIT_INT_H_INCLUDED_


#include <payments/ratelimit.h>


#define NGX_HTTP_PAYMENTS_LIMIT_RATE        1
#define NGX_HTTP_PAYMENTS_LIMIT_AMOUNT      2
#define NGX_HTTP_PAYMENTS_LIMIT_FAILURES    3

/* the directive that makes a zone of each kind, for messages */
extern const char  *ngx_http_payments_limit_kinds[];

/* the scopes of "payments_limit" */
#define NGX_HTTP_PAYMENTS_LIMIT_CREATE_MERCHANT   0
#define NGX_HTTP_PAYMENTS_LIMIT_CREATE_ADDRESS    1
#define NGX_HTTP_PAYMENTS_LIMIT_PAGES             2
#define NGX_HTTP_PAYMENTS_LIMIT_WEBHOOKS          3
#define NGX_HTTP_PAYMENTS_LIMIT_AMOUNTS           4
#define NGX_HTTP_PAYMENTS_LIMIT_FAILED            5
#define NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK_FAILED    6
#define NGX_HTTP_PAYMENTS_LIMIT_SCOPES            7

/* a window is 16 sub-windows; one more holds the current one (the
 * arithmetic: include/payments/ratelimit.h) */
#define NGX_HTTP_PAYMENTS_LIMIT_SUBWINDOWS  PAY_RL_SUBWINDOWS
#define NGX_HTTP_PAYMENTS_LIMIT_SLOTS       PAY_RL_SLOTS

#define NGX_HTTP_PAYMENTS_LIMIT_HASH        16      /* bytes of a buyer key */
#define NGX_HTTP_PAYMENTS_LIMIT_MAX_RATE    1000000 /* r/s */
#define NGX_HTTP_PAYMENTS_LIMIT_MAX_BURST   1000000
#define NGX_HTTP_PAYMENTS_LIMIT_REDIS_MAX   9007199254740991LL  /* 2^53-1 */


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;
    ngx_uint_t                      kind;
    ngx_msec_t                      window;
    ngx_atomic_t                    rejected;
    u_char                          salt[32];   /* keys the buyer hashes */
    ngx_atomic_t                    fallbacks;  /* decided without Redis */
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
    ngx_uint_t                        redis;    /* store=redis */
    ngx_uint_t                        deny;     /* on_error=deny */
    ngx_uint_t                        gateways; /* the local share: 1/N */
    u_char                            salt[32]; /* failures in Redis: from
                                                   hash_key_file= */
} ngx_http_payments_limit_zone_t;


/* payments_limit_redis */
typedef struct {
    ngx_str_t                         name;     /* as configured */
    ngx_addr_t                       *addrs;    /* resolved when read */
    ngx_uint_t                        naddrs;
    ngx_str_t                         user;     /* a Redis 6 ACL user */
    ngx_str_t                         password; /* a secret: never logged */
    ngx_str_t                         hash_key; /* a secret: the failures
                                                   zones' salts */
    ngx_msec_t                        timeout;
    ngx_str_t                         prefix;
    char                              sha[41];  /* the script's */
#if (NGX_SSL)
    ngx_ssl_t                        *ssl;      /* tls: nginx's OpenSSL */
#endif
    ngx_str_t                         tls_name; /* checked, NUL-ended */
    ngx_str_t                         tls_ca;
    ngx_str_t                         tls_cert;
    ngx_str_t                         tls_key;  /* a path; its key unread */
    unsigned                          tls:1;
    unsigned                          tls_verify:1;
    unsigned                          tls_verify_set:1;
    unsigned                          tls_name_ip:1;
} ngx_http_payments_limit_redis_conf_t;


typedef struct {
    ngx_http_payments_limit_redis_conf_t  *redis;
    ngx_uint_t                             redis_zones;
} ngx_http_payments_limit_main_conf_t;


/* a check sent to Redis, until its answer or its timer */
typedef struct ngx_http_payments_limit_ask_s  ngx_http_payments_limit_ask_t;

typedef void (*ngx_http_payments_limit_redis_pt)(void *data, ngx_int_t rc,
    uint64_t value);


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


/* a key's state in a rate zone, and in an amount or failure zone */
typedef pay_rl_rate_t    ngx_http_payments_limit_rate_t;
typedef pay_rl_window_t  ngx_http_payments_limit_window_t;


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
    u_char                          buyer[2][NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_uint_t                      nbuyers;
    ngx_shm_zone_t                 *reserved_zone;
    uint64_t                        reserved_idx;
    int64_t                         reserved;
    ngx_http_payments_limit_ask_t  *ask;        /* waiting for Redis */
    void                          (*resume)(ngx_http_payments_ctx_t *ctx);
    ngx_uint_t                      step;       /* the check it waits for */
    ngx_int_t                       verdict;    /* Redis's, once answered */
    ngx_msec_t                      wait;
    uint64_t                        value;      /* a window's sub-window */
    ngx_uint_t                      fstep;      /* the buyer it waits for */
    unsigned                        fchecked:1; /* the failures passed */
    unsigned                        kept:1;     /* pay_claim said claimed,
                                                   or its outcome is
                                                   unknown */
    unsigned                        claiming:1; /* the claim is with the
                                                   driver, unanswered */
    unsigned                        reserved_redis:1;
    unsigned                        answered:1;
    unsigned                        cleanup:1;  /* forgets the ask */
} ngx_http_payments_limit_ctx_t;



/* the scopes of "payments_limit", in NGX_HTTP_PAYMENTS_LIMIT_* order */
typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      kind;
    const char                     *what;       /* for the log */
} ngx_http_payments_limit_scope_t;

extern const ngx_http_payments_limit_scope_t
    ngx_http_payments_limit_scopes[NGX_HTTP_PAYMENTS_LIMIT_SCOPES];
extern ngx_module_t  ngx_http_payments_limit_module;


ngx_int_t ngx_http_payments_limit_add_variables(ngx_conf_t *cf);
ngx_shm_zone_t * ngx_http_payments_limit_find_zone(ngx_conf_t *cf, ngx_str_t *name);
ngx_int_t ngx_http_payments_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_int_t ngx_http_payments_limit_amount(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, int64_t max, uint64_t *idx,
    ngx_msec_t *wait);
void ngx_http_payments_limit_fail_locked(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key);
ngx_int_t ngx_http_payments_limit_failures_locked(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t max, ngx_msec_t *wait);
ngx_int_t ngx_http_payments_limit_failures_check(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key,
    void (*resume)(ngx_http_payments_ctx_t *ctx), ngx_msec_t *wait);
size_t ngx_http_payments_limit_addr(ngx_http_request_t *r, u_char *buf);
size_t ngx_http_payments_limit_addr_key(ngx_http_request_t *r, u_char *buf);
ngx_int_t ngx_http_payments_limit_sender_key(ngx_http_request_t *r,
    ngx_str_t *psp, u_char prefix, ngx_uint_t need_addr, ngx_str_t *key);
ngx_int_t ngx_http_payments_limit_checkout_key(ngx_pool_t *pool,
    ngx_str_t *merchant, const u_char *checkout, size_t len, ngx_str_t *key);
void ngx_http_payments_limit_buyer_hash(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *merchant, char kind, const char *value, u_char *out);
void ngx_http_payments_limit_failures_tail(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, u_char *buf, ngx_str_t *tail);
void ngx_http_payments_limit_failure_count(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_log_t *log);
void ngx_http_payments_limit_failure_note(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *ckey, char field, ngx_str_t *key, ngx_msec_t ttl,
    ngx_log_t *log);
ngx_int_t ngx_http_payments_limit_redis_peek(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_http_payments_limit_redis_pt handler, void *data,
    ngx_log_t *log, ngx_http_payments_limit_ask_t **askp);
ngx_int_t ngx_http_payments_limit_redis_note(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, char field, ngx_str_t *value, ngx_msec_t ttl,
    ngx_log_t *log);
ngx_int_t ngx_http_payments_limit_redis_failed(
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key, ngx_log_t *log);
ngx_http_payments_limit_node_t * ngx_http_payments_limit_lookup(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, size_t vlen, ngx_uint_t create);
ngx_int_t ngx_http_payments_limit_rate(ngx_http_payments_limit_rule_t *rule,
    ngx_str_t *key, ngx_uint_t account, ngx_uint_t share, ngx_msec_t *wait);
ngx_int_t ngx_http_payments_limit_reject(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_shm_zone_t *zone, ngx_uint_t html, ngx_msec_t wait,
    const char *detail);
void ngx_http_payments_limit_unreserve(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, uint64_t idx);
ngx_int_t ngx_http_payments_limit_webhook(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_loc_conf_t *lcf,
    void (*resume)(ngx_http_payments_ctx_t *ctx));
ngx_http_payments_limit_ctx_t * ngx_http_payments_limit_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_payments_limit_rate_check(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_rule_t *rule, ngx_str_t *key, ngx_uint_t account,
    void (*resume)(ngx_http_payments_ctx_t *ctx), ngx_msec_t *wait);
ngx_int_t ngx_http_payments_limit_amount_check(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key, int64_t amount,
    int64_t max, void (*resume)(ngx_http_payments_ctx_t *ctx), uint64_t *idx,
    ngx_uint_t *redis, ngx_msec_t *wait);
void ngx_http_payments_limit_amount_back(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, uint64_t idx, ngx_uint_t redis,
    ngx_log_t *log);
void ngx_http_payments_limit_rate_count(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_limit_rule_t *rule, ngx_str_t *key);
ngx_int_t ngx_http_payments_limit_unavailable(ngx_http_request_t *r,
    ngx_uint_t scope, ngx_shm_zone_t *zone, ngx_uint_t html,
    const char *detail);
char *ngx_http_payments_limit_redis_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_payments_limit_redis_rate(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_uint_t burst, ngx_uint_t account,
    ngx_http_payments_limit_redis_pt handler, void *data, ngx_log_t *log,
    ngx_http_payments_limit_ask_t **askp);
ngx_int_t ngx_http_payments_limit_redis_window(
    ngx_http_payments_limit_zone_t *z, ngx_str_t *key, ngx_uint_t sub, int64_t amount, uint64_t arg,
    ngx_http_payments_limit_redis_pt handler, void *data, ngx_log_t *log,
    ngx_http_payments_limit_ask_t **askp);
void ngx_http_payments_limit_redis_forget(ngx_http_payments_limit_ask_t *ask);
void ngx_http_payments_limit_redis_fell_back(ngx_http_payments_limit_zone_t *z);
ngx_int_t ngx_http_payments_limit_redis_init_process(ngx_cycle_t *cycle);
void ngx_http_payments_limit_redis_exit_process(ngx_cycle_t *cycle);
#endif /* _NGX_HTTP_PAYMENTS_LIMIT_INT_H_INCLUDED_ */
