
/*
 * Copyright (C) ngx_payments authors
 *
 * The nginx adapter: types shared by the directive table, the event-loop
 * drivers (PostgreSQL, libcurl) and the request handlers.  The rules of money
 * and security live in the core (include/payments/); this side performs I/O
 * and feeds the results back.
 */


#ifndef _NGX_HTTP_PAYMENTS_MODULE_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

/* the version and the schema this build is for (config writes it) */
#include <ngx_http_payments_build.h>

#include <libpq-fe.h>
#include <curl/curl.h>

#include <payments/error.h>
#include <payments/checkout.h>
#include <payments/url.h>
#include <payments/paytoken.h>
#include <payments/psp.h>
#include <payments/idempotency.h>
#include <payments/webhook.h>
#include <payments/dialect.h>
#include <payments/time.h>
#include <payments/seal.h>
#include <payments/risk.h>
#include <payments/route.h>

/* a set of CAs that verifies outgoing TLS (_curl.c) */
typedef struct ngx_http_payments_trust_s  ngx_http_payments_trust_t;

/*
 * Where a directive was given (nginx.conf's file and line), kept when it is
 * parsed for the checks made once http{} is read, which report it as
 * nginx's own messages do; line 0: not given.
 */
typedef struct {
    u_char                     *file;
    ngx_uint_t                  line;
} ngx_http_payments_conf_at_t;

/* the main conf's directives whose checks come after http{} */
enum {
    NGX_HTTP_PAYMENTS_AT_DATABASE_TIMEOUT = 0,
    NGX_HTTP_PAYMENTS_AT_LEASE,
    NGX_HTTP_PAYMENTS_AT_TTL,
    NGX_HTTP_PAYMENTS_AT_REQUEST_TIMEOUT,
    NGX_HTTP_PAYMENTS_AT_SESSION_LIFETIME,
    NGX_HTTP_PAYMENTS_AT_MAX_BODY,
    NGX_HTTP_PAYMENTS_AT_AUTH_CACHE,
    NGX_HTTP_PAYMENTS_AT_POOL,
    NGX_HTTP_PAYMENTS_AT_DATABASE_REPLAN,
    NGX_HTTP_PAYMENTS_AT_SWEEPER,
    NGX_HTTP_PAYMENTS_AT_NOTIFY,
    NGX_HTTP_PAYMENTS_AT_SHARD_DIRECTORY,
    NGX_HTTP_PAYMENTS_AT_PAYMENTS,          /* the first location that
                                               says "payments" */
    NGX_HTTP_PAYMENTS_AT_N
};


/* the head of a slot a PSP owns by name in a shared table (below) */
typedef struct {
    u_char                      name[PAY_PSP_NAME_MAX];
    size_t                      len;            /* 0: a free slot */
} ngx_http_payments_slot_name_t;


#include "ngx_http_payments_metrics.h"


/* typedef'd in ngx_http_payments_metrics.h */
struct ngx_http_payments_psp_s {
    ngx_str_t                   name;
    ngx_http_payments_conf_at_t at;             /* its payments_psp */
    pay_dialect_e               dialect;
    const pay_dialect_t        *dl;             /* its table entry */
    pay_webhook_conf_t          wconf;          /* what its webhook
                                                   verifier is given */
    ngx_str_t                   url;            /* base, no trailing slash */
    ngx_str_t                   secret;         /* from secret_file */
    ngx_array_t                *hosted;         /* of pay_origin_t */
    ngx_str_t                   stripe_version;
    ngx_str_t                   merchant_account;   /* adyen */
    ngx_msec_t                  timeout;
    ngx_msec_t                  connect_timeout;
    ngx_uint_t                  retries;
    ngx_msec_t                  retry_base;     /* first backoff */
    ngx_msec_t                  retry_max;      /* backoff cap */
    ngx_uint_t                  breaker;        /* failures in a row that
                                                   open it; 0: never */
    ngx_msec_t                  breaker_open;   /* how long it stays open */
    ngx_uint_t                  breaker_slot;   /* its slot in the
                                                   breakers' zone, found
                                                   by name (_breaker.c) */
    ngx_uint_t                  metrics_slot;   /* its counters' slot in
                                                   the metrics zone, by
                                                   name (_metrics.c) */
    ngx_flag_t                  allow_http;
    ngx_flag_t                  closed;         /* takes no new checkout;
                                                   everything else of its
                                                   payments goes on */
    char                       *auth_header;    /* NUL-terminated, secret */
    ngx_array_t                *webhook_secrets;    /* of pay_secret_t:
                                                       stripe whsec_, adyen
                                                       the decoded HMAC key */
    time_t                      webhook_tolerance;  /* stripe */
    ngx_array_t                *webhook_keys;       /* generic: of
                                                       pay_jwt_key_t */
    ngx_str_t                   webhook_header;     /* generic */
    char                       *webhook_iss;        /* generic, or NULL */
    char                       *webhook_aud;        /* generic, or NULL */
    ngx_flag_t                  live;
    char                       *version_header;
    char                       *pins;           /* "sha256//…;sha256//…" for
                                                   CURLOPT_PINNEDPUBLICKEY,
                                                   or NULL */
    ngx_http_payments_trust_t  *ca;             /* ca_file='s, or NULL:
                                                   the system's */
    ngx_str_t                   transfers_url;  /* adyen: the Transfers
                                                   API's base, no trailing
                                                   slash; empty: the PSP
                                                   does not pay out */
    ngx_str_t                   transfers_secret;
    char                       *transfers_auth_header;  /* secret */
    char                       *balance_account;    /* adyen, or NULL */
};


typedef struct ngx_http_payments_auth_cache_s  ngx_http_payments_auth_cache_t;


/* payments_route (ngx_http_payments_route.c) */
typedef struct {
    ngx_str_t                   name;           /* name=, or "default" /
                                                   "route<N>" */
    ngx_array_t                *currencies;     /* of ngx_str_t; NULL: any */
    ngx_array_t                *merchants;      /* of ngx_str_t; NULL: any */
    int64_t                     amount_min;     /* the checkout's total in
                                                   its minor units; -1:
                                                   none */
    int64_t                     amount_max;
    ngx_uint_t                  npsps;
    ngx_str_t                   psp_names[PAY_ROUTE_PSPS_MAX];
    unsigned                    weights[PAY_ROUTE_PSPS_MAX];
    ngx_uint_t                  psp_index[PAY_ROUTE_PSPS_MAX];  /* into
                                                   psps, once checked */
    ngx_uint_t                  line;           /* nginx.conf's, for -t */
} ngx_http_payments_route_t;


/* payments_risk (ngx_http_payments_risk.c) */
typedef struct {
    char                       *url;            /* NUL-terminated */
    ngx_str_t                   secret;         /* signs our requests */
    ngx_str_t                   answer_secret;  /* verifies its answers;
                                                   empty: unsigned */
    ngx_msec_t                  timeout;
    ngx_msec_t                  connect_timeout;
    pay_risk_verdict_e          on_error;       /* the verdict when there
                                                   is no usable answer */
    ngx_array_t                *merchants;      /* of ngx_str_t, or NULL:
                                                   every merchant */
    ngx_array_t                *currencies;     /* of ngx_str_t, or NULL */
    int64_t                     min_amount;     /* minor units */
    time_t                      review;         /* a review's deadline */
    ngx_flag_t                  allow_http;
    char                       *pins;           /* as a PSP's, or NULL */
    ngx_http_payments_trust_t  *ca;             /* as a PSP's */
    ngx_flag_t                  after_payment;  /* asked again once paid,
                                                   by the sweeper */
    time_t                      after_retry;    /* how long after the
                                                   payment a provider
                                                   without a usable answer
                                                   is asked again */
    ngx_http_payments_conf_at_t at;             /* its payments_risk */
} ngx_http_payments_risk_t;


/* a risk answer's Payments-Signature, kept by the header callback, and
 * the Idempotency-Key of the request it must answer */
typedef struct {
    ngx_pool_t                 *pool;
    char                       *value;          /* NULL: none */
    char                       *key;            /* the request's */
} ngx_http_payments_risk_sig_t;


/* payments_sweeper (ngx_http_payments_sweeper.c) */
typedef struct {
    ngx_flag_t                  enable;
    ngx_msec_t                  interval;       /* between rounds */
    time_t                      after;          /* first asked at this age */
    time_t                      retry;          /* asked again this later */
    time_t                      alert;          /* unresolved at this age */
    time_t                      grace;          /* cannot ask: failed this
                                                   long after expires_at */
    time_t                      unmatched;      /* a kept event still
                                                   pending this long is
                                                   unmatched, alerted */
    ngx_uint_t                  batch;          /* checkouts per round */
    ngx_uint_t                  inbox_months;   /* the event inbox's
                                                   retention, whole months */
} ngx_http_payments_sweeper_conf_t;


/* payments_notify (ngx_http_payments_notify.c) */
typedef struct {
    ngx_flag_t                  enable;
    ngx_msec_t                  interval;       /* between claims */
    ngx_uint_t                  batch;          /* in flight per worker */
    ngx_msec_t                  timeout;        /* a whole delivery */
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  lease;          /* a claim's hold */
    ngx_uint_t                  per_endpoint;   /* leased at once, over
                                                   every gateway */
    ngx_msec_t                  disable_after;  /* failing this long
                                                   disables; 0: never */
    ngx_uint_t                  backoff_scale;  /* divides the schedule */
    ngx_flag_t                  allow_loopback; /* test rigs */
    ngx_http_payments_trust_t  *ca;             /* ca='s, or NULL: the
                                                   system's */
    ngx_array_t                *allow_hosts;    /* of ngx_str_t, or NULL:
                                                   any public host */
} ngx_http_payments_notify_conf_t;


/*
 * A PostgreSQL cluster with the whole schema: payments_database's (shard
 * 0, "default"), or each payments_shard line's, in their order
 * (_shard_conf.c); each worker keeps a pool per shard (_pg.c), and a
 * query goes to its own shard's (q->shard): the merchant's, found by the
 * directory (_shard.c).
 * (ngx_http_payments_shard_t: typedef'd in ngx_http_payments_metrics.h.)
 */
struct ngx_http_payments_shard_s {
    ngx_str_t                   name;
    ngx_str_t                   conninfo;
    ngx_uint_t                  pool_size;      /* pool=, else
                                                   payments_database_pool */
    ngx_msec_t                  db_timeout;     /* timeout=, else
                                                   payments_database_
                                                   timeout */
    ngx_uint_t                  db_queue;       /* queue=, else
                                                   payments_database_queue */
    ngx_uint_t                  home;           /* "home": keeps the
                                                   events no shard claims */
    ngx_uint_t                  breaker;        /* breaker=: failures in
                                                   a row that open the
                                                   shard's breaker (_pg.c);
                                                   0: none (payments_
                                                   database's) */
    ngx_msec_t                  breaker_open;   /* breaker_open= */
    ngx_uint_t                  metrics_slot;   /* its named slot in the
                                                   metrics zone (a hint) */
    ngx_http_payments_conf_at_t at;             /* its line */
};


typedef struct {
    ngx_str_t                   conninfo;
    ngx_uint_t                  pool_size;
    ngx_msec_t                  db_timeout;
    ngx_uint_t                  db_queue;
    ngx_msec_t                  db_replan;      /* payments_database_replan:
                                                   each connection plans
                                                   its statements again
                                                   this often (_pg.c) */
    ngx_array_t                *shards;         /* of ngx_http_payments_
                                                   shard_t: payments_
                                                   database's, the
                                                   payments_shard lines',
                                                   or none */
    ngx_uint_t                  shard_home;     /* the home shard's index */
    size_t                      shard_dir_size; /* payments_shard_directory
                                                   size= */
    ngx_msec_t                  shard_dir_refresh;  /* its refresh= */
    ngx_shm_zone_t             *shard_dir_zone; /* the directory (_shard.c):
                                                   with payments_shard
                                                   lines only; NULL with
                                                   payments_database */

    ngx_str_t                   public_origin;  /* no trailing slash */
    ngx_flag_t                  public_https;   /* else http, loopback */
    ngx_array_t                *token_keys;     /* of pay_token_key_t */
    pay_keyring_t              *keyring;        /* payments_encryption_key
                                                   FILE (mode 0600; the
                                                   text is wiped once
                                                   parsed): seals PSP
                                                   tokens at rest and keys
                                                   their blind indexes;
                                                   NULL when absent
                                                   (tokens stored in
                                                   clear) */

    ngx_array_t                *psps;           /* of ngx_http_payments_psp_t */
    ngx_array_t                *routes;         /* of
                                                   ngx_http_payments_route_t,
                                                   in order: the first that
                                                   matches chooses */

    time_t                      lease;
    time_t                      ttl;
    ngx_msec_t                  request_timeout;    /* a PSP stage's
                                                   attempts, whole */
    time_t                      session_lifetime;
    size_t                      max_body;
    ngx_msec_t                  auth_cache;
    ngx_http_payments_auth_cache_t  *auth;      /* the worker's (_auth.c),
                                                   in its cycle's pool; NULL
                                                   in the master, or with
                                                   payments_auth_cache 0 */
    ngx_str_t                   html_js;        /* payments_html */
    ngx_str_t                   html_css;
    ngx_uint_t                  request_id_index;   /* of
                                                       $payments_request_id */
    ngx_shm_zone_t             *metrics_zone;   /* payments_metrics */
    ngx_shm_zone_t             *breaker_zone;   /* payments_breakers */
    ngx_uint_t                  used;           /* a location says
                                                   "payments": workers open
                                                   the pools (per cycle, so
                                                   a reload without it
                                                   opens none) */
    ngx_http_payments_sweeper_conf_t  sweeper;
    ngx_http_payments_notify_conf_t   notify;
    ngx_http_payments_trust_t  *trust;          /* the system's CAs, made
                                                   after http{} when a
                                                   location says
                                                   "payments" */
    ngx_array_t                *trusts;         /* of ngx_http_payments_
                                                   trust_t *: every trust
                                                   of the configuration,
                                                   each a multi handle in
                                                   the worker */
    ngx_http_payments_risk_t   *risk_after;     /* the payments_risk
                                                   with after_payment=on
                                                   (one at most), or NULL */
    ngx_http_payments_conf_at_t at[NGX_HTTP_PAYMENTS_AT_N];
    char                       *admin_key_hash; /* payments_admin_key_file:
                                                   the hex SHA-256 of the
                                                   review API's key, or
                                                   NULL: no review API */
} ngx_http_payments_main_conf_t;


/* the seconds a PSP request decided now may take to reach the PSP (its
 * attempts' budget, payments_request_timeout): pay_dialect_key_kept's
 * in_flight */
#define ngx_http_payments_in_flight(pmcf)                                     \
    ((int64_t) (((pmcf)->request_timeout + 999) / 1000))


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  plain_http;
    ngx_http_payments_risk_t   *risk;           /* NULL: no risk check */
    ngx_http_payments_conf_at_t at;             /* its "payments" */
    ngx_flag_t                  server_payments;    /* the server's own
                                                   (not a location's): one
                                                   of its locations says
                                                   "payments" */
} ngx_http_payments_loc_conf_t;


/* PostgreSQL: one query on the per-worker pool, answered asynchronously. */

typedef struct ngx_http_payments_pg_query_s  ngx_http_payments_pg_query_t;

/*
 * res is NULL when the store is unavailable (no connection, the connection
 * broke, the query timed out): whether a write committed is then unknown
 * when q->sent (the query reached a connection), and it surely did not
 * otherwise (it only waited for one).  A server that ends the session
 * (FATAL, e.g. terminated after a commit) then closes it: the query is
 * answered NULL as a broken connection, never with that error, so an
 * error res always means the query's transaction rolled back.  The
 * driver clears res after the handler returns.
 */
typedef void (*ngx_http_payments_pg_handler_pt)(
    ngx_http_payments_pg_query_t *q, PGresult *res);

struct ngx_http_payments_pg_query_s {
    ngx_queue_t                         queue;
    const char                         *sql;
    int                                 nparams;
    const char                        **values;
    ngx_http_payments_pg_handler_pt     handler;
    void                               *data;
    ngx_log_t                          *log;
    ngx_event_t                         timer;
    void                               *conn;
    ngx_msec_t                          queued_at;  /* when it joined its
                                                   pool's queue (while
                                                   queued) */
    ngx_uint_t                          shard;      /* its pool: 0 unless
                                                   set (pmcf->shards) */
    unsigned                            queued:1;
    unsigned                            sent:1;     /* handed to a
                                                   connection: the server
                                                   may have run it (kept
                                                   until the next send) */
    unsigned                            background:1;   /* an idle
                                                   connection or nothing:
                                                   never a request's place
                                                   in the queue */
};

ngx_int_t ngx_http_payments_pg_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf);
void ngx_http_payments_pg_exit(ngx_cycle_t *cycle);
/* NGX_OK: the handler will be called later; NGX_DECLINED: the store is
 * unavailable now (nothing will be called). */
ngx_int_t ngx_http_payments_pg_send(ngx_http_payments_pg_query_t *q);
/* The query's owner goes away: its handler will not be called, and the
 * driver holds nothing of it any more (a no-op when it holds nothing). */
void ngx_http_payments_pg_cancel(ngx_http_payments_pg_query_t *q);
/* _pg_health.c: the connections up in this worker's pool of a shard */
ngx_uint_t ngx_http_payments_pg_connected(ngx_uint_t shard);
/* While no connection of the shard's pool is up and PostgreSQL refused the
 * last login: what to look at (static text naming nothing of the
 * configuration); else NULL. */
const char *ngx_http_payments_pg_down_hint(ngx_uint_t shard);


/* PSPs: one HTTP exchange on the per-worker libcurl multi handle. */

typedef struct ngx_http_payments_fetch_s  ngx_http_payments_fetch_t;

typedef void (*ngx_http_payments_fetch_handler_pt)(
    ngx_http_payments_fetch_t *f);

struct ngx_http_payments_fetch_s {
    CURL                                   *easy;
    struct curl_slist                      *headers;
    u_char                                 *body;       /* response */
    size_t                                  len;
    size_t                                  cap;
    long                                    status;     /* 0: no answer */
    CURLcode                                result;
    ngx_msec_t                              elapsed;
    ngx_msec_t                              timeout;    /* this attempt's:
                                                   under the PSP's own when
                                                   the request's deadline
                                                   cut it short */
    ngx_http_payments_fetch_handler_pt      handler;
    void                                   *data;
    ngx_log_t                              *log;
    ngx_pool_t                             *pool;       /* of body */
    int64_t                                 retry_after;  /* ms, from a
                                                   429 or 503's Retry-After;
                                                   -1: none */
    pay_psp_api_e                           api;        /* which of the
                                                   PSP's APIs (its breaker) */
    ngx_http_payments_trust_t              *trust;      /* whose CAs verify
                                                   the peer: set between
                                                   fetch_easy and fetch_go;
                                                   NULL: the system's */
    char                                    errbuf[CURL_ERROR_SIZE];
                                                /* curl's words for a
                                                   failure (a TLS one's
                                                   cause) */
    unsigned                                running:1;
    unsigned                                sent:1;     /* some of the
                                                   request went out: libcurl
                                                   sends it again on a new
                                                   connection when a reused
                                                   one dies unanswered, and
                                                   that connect's failure is
                                                   the result, yet the PSP
                                                   may have the request */
};

/* The request surely never reached the PSP: no connection was made (or
 * its name not resolved) and not a byte of it was sent on any. */
#define ngx_http_payments_fetch_never_sent(f)                                 \
    (!(f)->sent && ((f)->result == CURLE_COULDNT_CONNECT                      \
                    || (f)->result == CURLE_COULDNT_RESOLVE_HOST))

/* A trust of a ca= file's PEM text, or of the system's CA file with pem
 * NULL, read and parsed now (configuration time), never by a worker; NULL
 * on failure (no memory). */
ngx_http_payments_trust_t *ngx_http_payments_curl_trust(ngx_conf_t *cf,
    ngx_str_t *pem);
ngx_int_t ngx_http_payments_curl_init(ngx_cycle_t *cycle);
void ngx_http_payments_curl_exit(ngx_cycle_t *cycle);
/* POSTs body to url with the PSP's credentials and the extra headers; a
 * GET when body is NULL (content_type is then unused).  f and the answer
 * live in pool; a pool cleanup stops it if the pool goes first. */
ngx_int_t ngx_http_payments_fetch(ngx_pool_t *pool,
    ngx_http_payments_fetch_t *f, ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, const char *url, const char *content_type,
    const char *idempotency_key, const char *body, size_t len,
    ngx_msec_t timeout);
/* The same with another method than POST or GET (method NULL: as fetch
 * does); a body, if any, goes with it. */
ngx_int_t ngx_http_payments_fetch_method(ngx_pool_t *pool,
    ngx_http_payments_fetch_t *f, ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, const char *method, const char *url,
    const char *content_type, const char *idempotency_key, const char *body,
    size_t len, ngx_msec_t timeout);
void ngx_http_payments_fetch_cancel(ngx_http_payments_fetch_t *f);
/* The parts of a fetch that are not a PSP's: fetch_easy resets f and makes
 * f->easy with the answer's buffer, no redirects, peer verification; the
 * caller sets the rest on f->easy (f->headers is freed with it) and its
 * trust (f->trust), then fetch_go hands it to that trust's multi handle.
 * On NGX_ERROR nothing runs. */
ngx_int_t ngx_http_payments_fetch_easy(ngx_pool_t *pool,
    ngx_http_payments_fetch_t *f);
ngx_int_t ngx_http_payments_fetch_go(ngx_http_payments_fetch_t *f);
/* Appends a request header line to the fetch's list, which the fetch owns
 * from its first line on (freed with it).  NGX_ERROR: nothing appended. */
ngx_int_t ngx_http_payments_fetch_header(ngx_http_payments_fetch_t *f,
    const char *line);


/* Requests. */

/* the header values a webhook verifier may read, kept with its events */
#define NGX_HTTP_PAYMENTS_WH_HEADERS  4

/* The largest webhook body, whatever payments_max_body says: a PSP's
 * batch (Adyen's notificationItems have no bound) must not be refused for
 * its size, since the PSP would deliver the same bytes again for days.
 * The most payments_max_body allows, and nginx's default
 * client_max_body_size. */
#define NGX_HTTP_PAYMENTS_WEBHOOK_MAX_BODY  (1024 * 1024)


typedef struct ngx_http_payments_ctx_s {
    ngx_http_request_t             *request;
    ngx_http_payments_main_conf_t  *pmcf;
    ngx_str_t                       request_id;

    ngx_http_payments_pg_query_t    query;
    ngx_http_payments_fetch_t       fetch;
    ngx_event_t                     retry;
    ngx_event_t                     hold;       /* a graceful stop waits
                                                   for the request */

    /* the authenticated merchant */
    void                          (*auth_next)(
                                        struct ngx_http_payments_ctx_s *ctx);
    char                            key_id[16];
    char                            key_hash[65];
    char                           *auth_row[4];    /* a fan-out's pay_auth
                                                       row: merchant, hash,
                                                       mode, origins */
    /* the merchant's shard: every ngx_http_payments_query() of the
     * request goes to its pool (0, the only one, unless the directory
     * said otherwise); a fan-out's state while every shard is asked */
    ngx_uint_t                      shard;
    void                           *fan;
    void                           *reviews;        /* GET /v1/reviews over
                                                       every shard: their
                                                       answers (_review.c) */
    unsigned                        key_live:1;     /* mk_live_: the mode is
                                                       inside the hashed key */
    const char                     *params[28];
    ngx_str_t                       merchant;
    ngx_array_t                    *origins;        /* of pay_origin_t */

    /* POST /v1/payments */
    ngx_str_t                       body;
    unsigned                        body_too_large:1;
    unsigned                        body_read:1;
    char                            idem_key[PAY_IDEM_KEY_MAX + 1];
    pay_checkout_t                  co;
    unsigned                        co_valid:1;
    ngx_http_payments_psp_t        *psp;
    char                           *nonce;
    char                           *fingerprint;   /* the checkout's, once */
    char                           *lease;
    int64_t                         expires_at;
    char                           *psp_path;
    char                           *psp_content_type;
    char                           *psp_body;
    /* the last request ngx_http_payments_register_build made, as stored,
     * and its parts: ngx_http_payments_request_load takes them for that
     * text without parsing it back (a fresh claim's stored request is the
     * one just built) */
    char                           *built;
    char                           *built_path;
    char                           *built_content_type;
    char                           *built_body;
    char                           *built_conf;
    /* the PSP settings the loaded request was built with (its record,
     * pay_psp_conf_record), NULL: none recorded */
    char                           *psp_conf;
    /* the registration's answer pay_finish was sent sealed (params[10]),
     * in the clear: sent as it is when pay_finish answers with that text */
    char                           *answer;
    ngx_uint_t                      attempts;
    unsigned                        psp_maybe:1;    /* the PSP may hold a
                                                       session of this
                                                       claim */
    unsigned                        probe:1;        /* this attempt is the
                                                       breaker's probe */
    unsigned                        stale:1;        /* the stored request's
                                                       expires_at is too
                                                       close: rebuilt if the
                                                       PSP refuses it */
    /* routed (no psp in the body): the route and its PSPs in the order
     * they are asked; route_at is the one bound now */
    ngx_http_payments_route_t      *route_conf;
    ngx_http_payments_psp_t        *route_psps[PAY_ROUTE_PSPS_MAX];
    ngx_uint_t                      route_n;
    ngx_uint_t                      route_at;
    /* why each PSP before route_at was passed over before the claim
     * ("psp_not_allowed", "circuit_open"; NULL: it cannot take these
     * amounts, not recorded), sent with the claim (pay_claim's options) */
    const char                     *route_passed[PAY_ROUTE_PSPS_MAX];
    const char                     *route_why;      /* why it moves on */
    ngx_http_payments_psp_t        *fallback_from;  /* the PSP it leaves */
    unsigned                        psp_reached:1;  /* an attempt at this
                                                       PSP may have reached
                                                       it */
    unsigned                        psp_sent:1;     /* a byte of this
                                                       request's attempts
                                                       may have gone to the
                                                       PSP bound now (told
                                                       with the release) */
    unsigned                        route_hold:1;   /* a resume: held at
                                                       the bound PSP */
    unsigned                        route_gone:1;   /* routed, unanswered,
                                                       its route gone: sent
                                                       on at its bound PSP,
                                                       read again once
                                                       claimed */
    unsigned                        approval:1;     /* a review's approval:
                                                       its claim is never
                                                       undone (pay_abandon),
                                                       whatever the PSP
                                                       says */
    unsigned                        limit_peeked:1; /* asked whether
                                                       the request is known
                                                       before a checkout
                                                       limit refuses it */
    unsigned                        limit_known:1;  /* it is (its key or
                                                       its checkout): the
                                                       limits add nothing,
                                                       its claim answers */
    unsigned                        expires_soon:1; /* its expires_at
                                                       is too close now:
                                                       refused unless it is
                                                       known */
    unsigned                        method_detached:1;  /* an
                                                       off-session charge
                                                       whose saved method
                                                       was detached, its key
                                                       or checkout known:
                                                       claimed to replay,
                                                       never sent */
    const char                     *psp_refused;   /* why no PSP can
                                                       take it (none of that
                                                       name, none routed, the
                                                       other mode): answered
                                                       from what is stored
                                                       when known, else
                                                       refused */
    const char                     *origin_refused; /* why its success_url
                                                       or cancel_url is on
                                                       none of the
                                                       merchant's origins
                                                       now: refused unless
                                                       it is known (NULL:
                                                       both are) */
    const char                     *closed_refused; /* why the PSP it
                                                       names takes no new
                                                       checkout (closed):
                                                       refused unless it is
                                                       known */
    void                          (*unusable_bound)(
                                        struct ngx_http_payments_ctx_s *ctx);
                                                    /* a routed request
                                                       unanswered, its route
                                                       gone: on at its bound
                                                       PSP (_register.c) */
    off_t                           claim_age;      /* s, of a resume */
    ngx_uint_t                      fail_status;
    time_t                          fail_retry_after;   /* s; 0: none */
    const char                     *fail_detail;
    pay_err_e                       fail_err;       /* the problem of a
                                                       release or undo
                                                       (PAY_ERR_NONE:
                                                       psp_unavailable) */
    ngx_msec_t                      deadline;
    ngx_http_payments_risk_t       *risk;           /* the check that
                                                       applies (risk_first),
                                                       or NULL */
    void                          (*risk_next)(struct ngx_http_payments_ctx_s
                                               *ctx);  /* the step after
                                                          an allow */
    void                          (*method_next)(
                                      struct ngx_http_payments_ctx_s *ctx);
                                                    /* the step after a
                                                       saved method or a
                                                       save's PSP customers
                                                       were read */
    ngx_http_payments_risk_sig_t    risk_sig;       /* its answer's
                                                       Payments-Signature */
    char                           *risk_body;      /* our request */
    /* a fresh checkout's verdict, asked before its claim and stored with
     * it (pay_claim_with_verdict): its arguments there, in the request's
     * pool (verdict, score, reason, source, review seconds, the answer's
     * status and body) */
    const char                     *risk_args[7];
    unsigned                        risk_first:2;   /* NGX_HTTP_PAYMENTS_
                                                       RISK_FIRST_* */
    /* saved payment methods: a save's reference for the customer (sent to
     * the PSP instead of the shop's id); an off-session charge's method:
     * the PSP's token (opened), its customer there, Adyen's model */
    char                           *customer_ref;
    char                           *charge_token;
    char                           *charge_psp_customer;
    char                           *charge_recurring;
    /* an off-session charge the card's issuer wants the shopper for: the
     * charge's answer, while the hosted session where the shopper
     * authenticates is made under its own Idempotency-Key (psp_key) */
    void                           *charge_res;
    char                           *psp_key;
    /* a save: the PSP's own customers (Stripe cus_) the customer's
     * earlier saves were made under, key the PSP's name (ngx_keyval_t);
     * NULL when not looked up */
    ngx_array_t                    *save_psp_customers;
    /* a saved method's detach at its PSP: the method ("DELETE", "POST")
     * of psp_path, and the method's answer once the PSP confirmed */
    const char                     *psp_method;
    char                           *method_json;

    /* POST /v1/payments/{id}/refunds, POST /v1/payouts (_money.c) */
    void                           *op;

    /* POST /v1/webhooks/{psp} */
    pay_event_t                    *events;
    size_t                          nevents;
    size_t                          next_event;
    /* after them, events of the same request signed for another Adyen
     * merchant account: kept, not applied (then the answer is a 400) */
    size_t                          nforeign;
    /* what the inbox keeps of them (pay_event_keep): the header values
     * the verifier read, the signed bytes as bytea hex, the verifying
     * key's id */
    ngx_str_t                       wh_hname[NGX_HTTP_PAYMENTS_WH_HEADERS];
    ngx_str_t                       wh_hvalue[NGX_HTTP_PAYMENTS_WH_HEADERS];
    ngx_uint_t                      wh_nheaders;
    char                           *wh_headers;     /* a JSON object */
    char                           *wh_body;        /* the whole body's
                                                       hex, once */
    ngx_uint_t                      wh_key_i;       /* its key's index */
    /* with several shards, how the current event found its shard
     * (pay_evroute_e: by nonce, located, or kept at home; 0 with one
     * shard) and, located, the merchant its shard named */
    ngx_uint_t                      wh_by;
    char                           *wh_merchant;

    /* GET views */
    ngx_str_t                       return_psp;
    unsigned                        cancel_path:1;
    ngx_str_t                       object_id;
    ngx_uint_t                      route;

    /* the body, read into memory by the module's request body filter */
    size_t                          body_size;      /* bytes allocated */
    size_t                          body_max;       /* the route's limit */
    unsigned                        body_filter:1;
    /* an answer of the module's own went out (ngx_http_payments_send);
     * otherwise an error status becomes problem+json in the header filter */
    unsigned                        answered:1;
    unsigned                        problem_sent:1;
    ngx_str_t                       problem;
} ngx_http_payments_ctx_t;


extern ngx_module_t  ngx_http_payments_module;


/*
 * The glue files and who calls whom.  Calls go one way, downwards: no file
 * calls, directly or not, back into one that calls it; the leaves call no
 * other glue file at all.  ci/callmap-check.sh reads the calls from the
 * objects and fails on a cycle, or when the map at the end of this comment
 * and the code disagree (ci/callmap-check.sh --write rewrites the map).
 *
 *   _module.c      the skeleton: directives, conf create/merge, worker
 *                  start and exit.  Calls the rest; nothing calls it.
 *   _router.c      the content handler (and the request body filter): the
 *                  route (the core's pay_path_parse), TLS, the body, the
 *                  checks every POST that moves money shares
 *                  (Idempotency-Key, create= limits, size, type), then
 *                  dispatch.  Calls the route handlers, the limits' hooks
 *                  and the leaves; only _module.c calls it.
 *   _auth.c        API keys and the worker's key cache; the router calls
 *                  it before a merchant's route.
 *   _register.c    POST /v1/payments, the registration's driver: it
 *                  validates, claims (with the route, which
 *                  _register_route.c chooses, past PSPs whose circuit is
 *                  open) and decides each next
 *                  step; the risk check (_risk.c) goes on with the step it
 *                  is given (a function pointer, not a call back: the
 *                  claim again, with its verdict, for a checkout seen for
 *                  the first time; else the PSP, after the claim);
 *                  _register_resume.c a claim taken over after its
 *                  holder's lease ran out; _register_known.c the answers
 *                  to a request known already (and to one no configured
 *                  PSP can take; a routed one unanswered whose route is
 *                  gone goes on at its bound PSP with the step it is
 *                  given, as the risk check does); the
 *                  PSP's side (_register_psp.c) calls, retries and falls
 *                  back; _register_end.c, below it, ends the claim
 *                  (finished, released or abandoned); _register_request.c,
 *                  below them all,
 *                  builds the PSP request from the stored checkout, for
 *                  every path (_review.c's approval too).
 *   _review.c, _cancel.c, _money.c, _read.c, _list.c, _notify_api.c,
 *   _webhook.c, _methods.c, _metrics_page.c (GET /metrics)
 *                  the other route handlers (_webhook_evidence.c, below
 *                  _webhook.c, what a webhook keeps as evidence, and the
 *                  authentic events it keeps unapplied; _review_list.c,
 *                  below _review.c, the queue, GET /v1/reviews).  Call the
 *                  limits' hooks, the drivers, _psp_conf.c and the
 *                  leaves; never the router, and _auth.c only for a
 *                  merchant's return origins (_review.c, _read.c).
 *                  _money_answer.c, below _money.c, answers what the
 *                  PSP is not asked for (a settled or refused claim, one
 *                  no configured PSP can send); _money_call.c, below
 *                  both, is their PSP call.
 *   _limit*.c      ngx_http_payments_limit_module: directives, zones,
 *                  hooks, variables; _limit_failures.c the card-testing
 *                  guard's keys and counts (local, or in Redis under an
 *                  HMAC); _limit_wait.c a request waiting for Redis
 *                  (paused, resumed); _limit_redis.c its Redis's link
 *                  (one connection of nginx's own per worker,
 *                  non-blocking on its events: connect, close, timers),
 *                  _limit_redis_tls.c TLS on it (nginx's OpenSSL layer),
 *                  _limit_redis_proto.c what goes over it (the asks'
 *                  queue, sending, the replies; hiredis only writes and
 *                  parses the protocol; it never calls _limit_redis.c),
 *                  _limit_redis_cmd.c, below it, the commands written
 *                  into the output buffer (a check's, an amount's
 *                  give-back after a late answer), _limit_redis_conf.c
 *                  its directive.
 *   _sweeper.c     worker 0's sweeper (no request): the round's driver,
 *                  its lease and its steps in order, each in the file of
 *                  its concern (_sweeper_lookups.c, _sweeper_methods.c,
 *                  _sweeper_alerts.c, _risk_after.c, _sweeper_inbox.c,
 *                  _sweeper_detach.c)
 *                  reporting back through _sweeper_round.c, which is
 *                  below them all; only _module.c (and _sweeper_conf.c)
 *                  call it.
 *   _notify.c      every worker's notification delivery (no request):
 *                  the outbox's claims and records through _pg.c, the
 *                  POSTs through _curl.c; the shard's worker's gauges and
 *                  heartbeat below it (_notify_gauges.c).  Only _module.c
 *                  calls it.
 *   _psp_call.c    what every PSP call does with its answer (metrics,
 *                  the breaker, retries).
 *   _pg.c, _curl.c the event-loop drivers; _pg_prepare.c (it sends; the
 *                  driver flushes or fails) and _pg_socket.c (the socket's
 *                  events) are below _pg.c.  _curl.c also
 *                  makes the trusts (CA stores) the _conf.c files' CA
 *                  files become.
 *   _metrics.c     the counters: data every file bumps, and what the
 *                  sweeper and the pool publish; _metrics_page.c reads it.
 *   _metrics_guard.c, _tls_guard.c
 *                  nginx -t's checks of the servers: who may read
 *                  /metrics, the TLS listeners and settings of those that
 *                  serve payments.  Only _module.c calls them.
 *   _psp_conf.c    payments_psp and the PSP list (find_psp);
 *                  _psp_params.c, below it, the parameters that differ
 *                  by dialect.
 *   _pages_conf.c  payments_public_origin and payments_html (the links'
 *                  origin, the pages' script and style).
 *   _risk_conf.c   payments_risk and payments_admin_key (the check itself
 *                  is _risk.c).
 *   _shard_conf.c  payments_shard, payments_shard_directory and the
 *                  connection string's checks (payments_database's too);
 *                  the shards' defaults and refusals after http{}.
 *   _shard.c       the directory of merchants' shards (a shared zone,
 *                  each shard polled by its worker) and the fan-out that
 *                  asks every shard; _auth.c calls it, it calls the
 *                  drivers and the leaves.
 *   _route.c       payments_route, its check at nginx -t and the route of
 *                  a checkout (route_find).
 *   _response.c    leaf: every answer (JSON, problem+json, pages, stored
 *                  replays), the request id ($payments_request_id =
 *                  X-Request-Id) and the error filters.  Calls only nginx,
 *                  libpq's accessors and the core (it bumps the metrics
 *                  zone's error counters, data, not a call).
 *   _util.c        leaf: pool strings, the signed links, files read at
 *                  configuration time, the graceful stop's hold timer, the
 *                  gateway's instance name.  Calls only nginx and the core.
 *
 * The map: each file and the glue files it calls ("-" for none), as
 * ci/callmap-check.sh --write writes it.
 *
 *   _auth.c              -> _pg.c _response.c _shard.c _util.c
 *   _breaker.c           -> _util.c
 *   _cancel.c            -> _breaker.c _curl.c _pg.c _psp_call.c _psp_conf.c
 *   _cancel.c            -> _read.c _response.c _util.c
 *   _curl.c              -> -
 *   _housekeeping.c      -> _metrics.c _pg.c _util.c
 *   _keys_conf.c         -> _util.c
 *   _limit.c             -> _limit_redis.c _limit_redis_conf.c _limit_vars.c
 *   _limit.c             -> _limit_zone.c
 *   _limit_failures.c    -> _limit_redis_proto.c _limit_zone.c
 *   _limit_hooks.c       -> _limit_failures.c _limit_wait.c _limit_zone.c
 *   _limit_hooks.c       -> _psp_conf.c _response.c
 *   _limit_redis.c       -> _limit_redis_proto.c _limit_redis_tls.c
 *   _limit_redis_cmd.c   -> -
 *   _limit_redis_conf.c  -> _util.c
 *   _limit_redis_proto.c -> _limit_redis_cmd.c
 *   _limit_redis_tls.c   -> _limit_redis_proto.c
 *   _limit_vars.c        -> _psp_conf.c
 *   _limit_wait.c        -> _limit_failures.c _limit_redis_proto.c
 *   _limit_wait.c        -> _limit_zone.c _response.c
 *   _limit_zone.c        -> -
 *   _list.c              -> _pg.c _response.c _util.c
 *   _methods.c           -> _breaker.c _curl.c _pg.c _psp_call.c _psp_conf.c
 *   _methods.c           -> _response.c _util.c
 *   _metrics.c           -> _util.c
 *   _metrics_guard.c     -> _util.c
 *   _metrics_page.c      -> _breaker.c _limit_vars.c _metrics.c _response.c
 *   _metrics_page.c      -> _shard.c _util.c
 *   _module.c            -> _auth.c _breaker.c _curl.c _housekeeping.c
 *   _module.c            -> _keys_conf.c _metrics.c _metrics_guard.c _notify.c
 *   _module.c            -> _notify_conf.c _pages_conf.c _pg.c _psp_conf.c
 *   _module.c            -> _response.c _risk_conf.c _route.c _router.c
 *   _module.c            -> _shard.c _shard_conf.c _sweeper.c _sweeper_conf.c
 *   _module.c            -> _tls_guard.c _util.c
 *   _money.c             -> _money_answer.c _money_call.c _pg.c _psp_conf.c
 *   _money.c             -> _response.c _util.c
 *   _money_answer.c      -> _money_call.c _pg.c _response.c _util.c
 *   _money_call.c        -> _breaker.c _curl.c _pg.c _psp_call.c _response.c
 *   _money_call.c        -> _util.c
 *   _notify.c            -> _curl.c _notify_gauges.c _pg.c _util.c
 *   _notify_api.c        -> _pg.c _response.c _util.c
 *   _notify_conf.c       -> _curl.c _util.c
 *   _notify_gauges.c     -> _metrics.c _pg.c
 *   _pages_conf.c        -> _util.c
 *   _pg.c                -> _metrics.c _pg_health.c _pg_prepare.c _pg_socket.c
 *   _pg_health.c         -> _metrics.c
 *   _pg_prepare.c        -> -
 *   _pg_socket.c         -> -
 *   _psp_call.c          -> _breaker.c _metrics.c
 *   _psp_conf.c          -> _curl.c _psp_params.c _util.c
 *   _psp_params.c        -> -
 *   _read.c              -> _auth.c _limit_failures.c _pg.c _psp_conf.c
 *   _read.c              -> _response.c _shard.c _util.c
 *   _readyz.c            -> _pg.c _pg_health.c _response.c
 *   _register.c          -> _auth.c _limit_hooks.c _metrics.c _pg.c
 *   _register.c          -> _psp_conf.c _register_end.c _register_known.c
 *   _register.c          -> _register_method.c _register_psp.c
 *   _register.c          -> _register_request.c _register_resume.c
 *   _register.c          -> _register_route.c _response.c _risk.c _util.c
 *   _register_end.c      -> _limit_hooks.c _pg.c _response.c _util.c
 *   _register_known.c    -> _pg.c _psp_conf.c _response.c
 *   _register_method.c   -> _pg.c _register_request.c _response.c
 *   _register_psp.c      -> _breaker.c _curl.c _limit_hooks.c _metrics.c _pg.c
 *   _register_psp.c      -> _psp_call.c _register_end.c _register_request.c
 *   _register_psp.c      -> _response.c _util.c
 *   _register_request.c  -> _response.c _util.c
 *   _register_resume.c   -> _pg.c _psp_conf.c _register_end.c _register_psp.c
 *   _register_resume.c   -> _register_request.c _response.c _risk.c
 *   _register_route.c    -> _breaker.c _metrics.c _pg.c _register_psp.c
 *   _register_route.c    -> _register_request.c _route.c
 *   _response.c          -> -
 *   _review.c            -> _auth.c _pg.c _psp_conf.c _register_end.c
 *   _review.c            -> _register_method.c _register_psp.c
 *   _review.c            -> _register_request.c _register_resume.c
 *   _review.c            -> _register_route.c _response.c _review_list.c
 *   _review.c            -> _shard.c _util.c
 *   _review_list.c       -> _pg.c _response.c _shard.c
 *   _risk.c              -> _curl.c _limit_hooks.c _metrics.c _pg.c
 *   _risk.c              -> _register_end.c _response.c _util.c
 *   _risk_after.c        -> _metrics.c _risk.c _sweeper_round.c _util.c
 *   _risk_conf.c         -> _curl.c _psp_conf.c _util.c
 *   _route.c             -> _psp_conf.c
 *   _router.c            -> _auth.c _cancel.c _limit_hooks.c _list.c
 *   _router.c            -> _methods.c _metrics_page.c _money.c _notify_api.c
 *   _router.c            -> _pg.c _read.c _readyz.c _register.c _response.c
 *   _router.c            -> _review.c _util.c _webhook.c
 *   _shard.c             -> _pg.c _response.c _util.c
 *   _shard_conf.c        -> _util.c
 *   _sweeper.c           -> _curl.c _metrics.c _risk_after.c _sweeper_alerts.c
 *   _sweeper.c           -> _sweeper_detach.c _sweeper_inbox.c
 *   _sweeper.c           -> _sweeper_lookups.c _sweeper_methods.c
 *   _sweeper.c           -> _sweeper_round.c _util.c
 *   _sweeper_alerts.c    -> _metrics.c _sweeper_round.c _util.c
 *   _sweeper_conf.c      -> _util.c
 *   _sweeper_detach.c    -> _breaker.c _curl.c _metrics.c _psp_call.c
 *   _sweeper_detach.c    -> _psp_conf.c _sweeper_round.c _util.c
 *   _sweeper_inbox.c     -> _metrics.c _psp_conf.c _sweeper_round.c _util.c
 *   _sweeper_lookups.c   -> _metrics.c _psp_call.c _sweeper_methods.c
 *   _sweeper_lookups.c   -> _sweeper_round.c _util.c
 *   _sweeper_methods.c   -> _metrics.c _psp_call.c _sweeper_round.c _util.c
 *   _sweeper_round.c     -> _breaker.c _curl.c _metrics.c _pg.c _psp_conf.c
 *   _sweeper_round.c     -> _util.c
 *   _tls_guard.c         -> _metrics_guard.c _util.c
 *   _util.c              -> -
 *   _webhook.c           -> _limit_failures.c _metrics.c _pg.c _psp_conf.c
 *   _webhook.c           -> _response.c _shard.c _util.c _webhook_evidence.c
 *   _webhook_evidence.c  -> _pg.c _response.c _util.c
 */


/* _risk.c: payments_risk, and the check of a registration, a step of it
 * which goes on with next when the checkout may go on and answers itself
 * otherwise.  A checkout seen for the first time (pay_claim_peek) is
 * asked about before its claim: risk_first answers NGX_AGAIN and runs
 * next (the claim) again with ctx->risk_args set, for
 * pay_claim_with_verdict, whose columns from 9 risk_decided then reads;
 * NGX_OK: no check before the claim.  Any other (a key or checkout known
 * already, a resume) is asked between the claim and the PSP: risk_start,
 * next the PSP. */
#define NGX_HTTP_PAYMENTS_RISK_FIRST_NONE    0   /* not decided yet */
#define NGX_HTTP_PAYMENTS_RISK_FIRST_CLAIM   1   /* the claim first */
#define NGX_HTTP_PAYMENTS_RISK_FIRST_ASKING  2   /* peeked; provider asked */
#define NGX_HTTP_PAYMENTS_RISK_FIRST_JUDGED  3   /* risk_args set */

char *ngx_http_payments_risk_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_payments_risk_first(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx));
void ngx_http_payments_risk_start(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx));
void ngx_http_payments_risk_decided(ngx_http_payments_ctx_t *ctx,
    PGresult *res, int col);
/* The provider asked: body (len bytes, living as long as f) signed and
 * POSTed to rk's url with key as Idempotency-Key, the answer's signature
 * kept in sig; f's handler, data and log set by the caller.  NGX_ERROR:
 * nothing runs. */
ngx_int_t ngx_http_payments_risk_ask(ngx_http_payments_risk_t *rk,
    ngx_pool_t *pool, ngx_http_payments_fetch_t *f, const char *body,
    size_t len, const char *key, ngx_http_payments_risk_sig_t *sig);
/* The answer judged as doc/RISK.md says (status, signature when
 * answer_secret_file= is set, the strict parser), counted in /metrics:
 * NGX_OK and *a, or NGX_DECLINED and *why (timeout, unavailable,
 * signature, malformed). */
ngx_int_t ngx_http_payments_risk_judge(ngx_http_payments_risk_t *rk,
    ngx_http_payments_fetch_t *f, ngx_http_payments_risk_sig_t *sig,
    pay_risk_answer_t *a, const char **why);
char *ngx_http_payments_admin_key_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* _response.c: answers */
ngx_int_t ngx_http_payments_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *content_type, const u_char *body, size_t len);
ngx_int_t ngx_http_payments_problem(ngx_http_request_t *r, pay_err_e err,
    ngx_uint_t status, const char *detail);
ngx_int_t ngx_http_payments_store_unavailable(ngx_http_request_t *r);
ngx_int_t ngx_http_payments_send_stored(ngx_http_request_t *r,
    const char *status, const char *body, size_t len, ngx_uint_t replayed);
ngx_int_t ngx_http_payments_pg_row(ngx_http_request_t *r, PGresult *res,
    const char *function);
/* a claim's replay, duplicate, in_use or reused, answered; NGX_DECLINED
 * for the others */
ngx_int_t ngx_http_payments_claim_answer(ngx_http_request_t *r,
    PGresult *res);
ngx_int_t ngx_http_payments_html_headers(ngx_http_request_t *r,
    ngx_uint_t script);
ngx_int_t ngx_http_payments_page(ngx_http_request_t *r, ngx_uint_t status,
    const char *title, const char *message);
void ngx_http_payments_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_payments_add_header(ngx_http_request_t *r,
    const char *name, const char *value);
ngx_table_elt_t *ngx_http_payments_header(ngx_http_request_t *r,
    const char *name, ngx_uint_t *count);
/* $payments_request_id, defined in preconfiguration; the request's id (the
 * same for the variable and X-Request-Id), or NGX_ERROR */
ngx_int_t ngx_http_payments_request_id_add(ngx_conf_t *cf);
ngx_int_t ngx_http_payments_request_id(ngx_http_request_t *r, ngx_str_t *id);
/* the error filters, in postconfiguration */
void ngx_http_payments_response_init(ngx_conf_t *cf);


/* _util.c */
u_char *ngx_http_payments_cstr(ngx_pool_t *pool, ngx_str_t *s);
/* a NUL-terminated copy of s in pool; NULL if s is NULL */
char *ngx_http_payments_strdup(ngx_pool_t *pool, const char *s);
/* the setting pay_psp_conf_changed named ("merchant_account=", or what an
 * unreadable record is), for a log line or a problem's detail */
const char *ngx_http_payments_conf_setting(ngx_pool_t *pool,
    const char *changed);
/* the decimal text of n in pool */
char *ngx_http_payments_num(ngx_pool_t *pool, int64_t n);
/* a pay link (psp NULL) or a return URL of psp, signed, in pool */
char *ngx_http_payments_link(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, const char *merchant,
    const char *checkout, ngx_str_t *psp, pay_token_use_e use, int64_t exp);
/* a timer a graceful stop waits for, for at most ms (work in flight that
 * must finish first); unhold deletes it (data: the ngx_event_t, so that it
 * serves as a pool cleanup handler too) */
void ngx_http_payments_hold(ngx_event_t *ev, ngx_log_t *log, ngx_msec_t ms);
/* the data of a timer that has no connection: nginx's debug build logs
 * ev->data's fd as it adds a timer (ngx_event_ident), as its cache
 * manager's dumb connection does */
void ngx_http_payments_timer_data(ngx_event_t *ev);
/* whether shard s's background work (sweeper, housekeeping, directory
 * poll) is this worker's: shard s runs in worker s mod worker_processes */
ngx_uint_t ngx_http_payments_shard_mine(ngx_cycle_t *cycle, ngx_uint_t s);
void ngx_http_payments_unhold(void *data);
/* the gateway's name.  make: the master's random instance id, once
 * (NGX_ERROR: no randomness); owner: "hostname:master pid:instance id",
 * NUL-terminated in buf, as the sweeper lease's owner and /metrics name it
 * (any process of the master's) */
ngx_int_t ngx_http_payments_instance_make(ngx_conf_t *cf);
u_char *ngx_http_payments_instance_owner(ngx_cycle_t *cycle, u_char *buf,
    size_t len);

/* what ngx_http_payments_read_file() reads: a secret (at most 4k, mode
 * 0600), a public file (4k), a CA bundle (1m) */
#define NGX_HTTP_PAYMENTS_FILE_SECRET  1
#define NGX_HTTP_PAYMENTS_FILE_PUBLIC  0
#define NGX_HTTP_PAYMENTS_FILE_CA      2

ngx_int_t ngx_http_payments_read_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *directive, size_t min, ngx_uint_t kind,
    ngx_str_t *out);
ngx_int_t ngx_http_payments_read_secret(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *directive, size_t min, ngx_str_t *secret);

/* PSP tokens at rest (pmcf->keyring; the psp_tokens table): what is
 * sealed, and its associated data: the token ("<merchant>:<checkout>", the
 * checkout's nonce), the PSP URL ("psp_url:<merchant>:<checkout>"), a
 * registration's stored answer ("response:<merchant>:<idempotency key>";
 * pass the key as checkout) */
#define NGX_HTTP_PAYMENTS_SEALED_TOKEN     0
#define NGX_HTTP_PAYMENTS_SEALED_URL       1
#define NGX_HTTP_PAYMENTS_SEALED_RESPONSE  2
/* a saved method's PSP token: "payment_method:<merchant>:<checkout it was
 * saved in>"; an off-session charge's stored request, which carries it:
 * "request:<merchant>:<checkout>" */
#define NGX_HTTP_PAYMENTS_SEALED_METHOD    3
#define NGX_HTTP_PAYMENTS_SEALED_REQUEST   4

/* value sealed, in pool; value itself (a copy) without a keyring; NULL on
 * failure */
char *ngx_http_payments_seal(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_uint_t what,
    const char *merchant, const char *checkout, const char *value);
/* a stored value opened into *out (in pool; a legacy plaintext value is
 * stored itself); NGX_ERROR when it does not open (logged with the checkout
 * id only: fail closed, a store error) or on no memory */
ngx_int_t ngx_http_payments_unseal(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_log_t *log, ngx_uint_t what,
    const char *merchant, const char *checkout, const char *stored,
    char **out);
/* the token's blind index under the first key (what psp_tokens stores), in
 * pool; NULL without a keyring or on failure */
char *ngx_http_payments_token_index(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_str_t *psp, const char *token);
/* the token's look-up candidates, a PostgreSQL text[] literal in pool: its
 * blind index under every key, then the plaintext (legacy rows); *keys NULL
 * (SQL NULL: look the token up as it is) without a keyring or a token */
ngx_int_t ngx_http_payments_token_keys(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_str_t *psp, const char *token,
    char **keys);


/* _psp_conf.c */
char *ngx_http_payments_psp(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* _pages_conf.c, for _module.c's directive table: payments_public_origin
 * (the links' origin) and payments_html (the pages' script and style) */
char *ngx_http_payments_public_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_html(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* the key directives and the key ring's reload rule (_keys_conf.c):
 * reading() when a configuration starts, running() once it runs */
char *ngx_http_payments_pay_token_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_encryption_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_payments_keys_reading(void);
void ngx_http_payments_keys_running(void);

/* nginx -t: warns for each server whose /metrics has no access rule
 * (_metrics_guard.c) */
void ngx_http_payments_metrics_guard(ngx_conf_t *cf);
/* 'server "name"', or "server at FILE:LINE" without a server_name */
u_char *ngx_http_payments_server_name(ngx_pool_t *pool,
    ngx_http_core_srv_conf_t *cscf);
/* nginx -t's warnings on the TLS of the servers that say "payments" */
void ngx_http_payments_tls_guard(ngx_conf_t *cf);

/* the directive being parsed: where it is */
void ngx_http_payments_conf_at(ngx_conf_t *cf,
    ngx_http_payments_conf_at_t *at);
/* the first of ats that was given, or NULL */
ngx_http_payments_conf_at_t *ngx_http_payments_conf_first(
    ngx_http_payments_conf_at_t *a, ngx_http_payments_conf_at_t *b);
/* a message about the directive at "at", ending " in FILE:LINE" as
 * nginx's own do; at NULL or not given: at the place being parsed */
void ngx_cdecl ngx_http_payments_conf_log(ngx_uint_t level, ngx_conf_t *cf,
    ngx_http_payments_conf_at_t *at, const char *fmt, ...);
/* what a directive's NAME= parameter takes, for "invalid parameter" */
typedef struct {
    const char                 *name;           /* "retries=", or NULL */
    const char                 *range;          /* "0..10" */
} ngx_http_payments_range_t;
/* 1: the URL's authority has user info (user:password@) */
ngx_uint_t ngx_http_payments_url_has_userinfo(ngx_str_t *url);
const char *ngx_http_payments_param_range(ngx_str_t *param,
    const ngx_http_payments_range_t *ranges);
/* a conf slot's post handler that keeps the directive's place */
typedef struct {
    ngx_conf_post_handler_pt    post_handler;
    ngx_uint_t                  at;             /* NGX_HTTP_PAYMENTS_AT_* */
} ngx_http_payments_at_post_t;
char *ngx_http_payments_at_post(ngx_conf_t *cf, void *post, void *data);

/* _route.c: payments_route, its check at nginx -t, and the route of a
 * checkout (NULL: none applies) */
char *ngx_http_payments_route(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_route_check(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf);
ngx_http_payments_route_t *ngx_http_payments_route_find(
    ngx_http_payments_main_conf_t *pmcf, ngx_str_t *merchant,
    const char *currency, int64_t total);
ngx_http_payments_psp_t *ngx_http_payments_find_psp(
    ngx_http_payments_main_conf_t *pmcf, const char *name, size_t len);
char *ngx_http_payments_psps_other_mode(ngx_http_payments_ctx_t *ctx);


/*
 * Tables in shared memory whose slots belong to PSPs or shards by name (the
 * circuit breakers, the per-PSP and per-shard metrics).  A reload keeps the
 * table, so a PSP or shard keeps its slot whatever the order of the
 * payments_psp or payments_shard lines, and the old cycle's workers,
 * draining, still find the slot of the PSP they called or shard they
 * queried.
 * A table is n slots of size bytes, each starting with this (_util.c).
 */
/* ngx_http_payments_slot_name_t: above, before the metrics */

/* name's slot: its own, else a free one, else one whose name neither names
 * nor old_names (NULL: none) has, cleared; n when none is left.  names are
 * arrays whose elements begin with their ngx_str_t name (PSPs, shards).
 * Under the zone's mutex, at init_zone. */
ngx_uint_t ngx_http_payments_slot_assign(void *table, size_t size,
    ngx_uint_t n, ngx_str_t *name, ngx_array_t *names,
    ngx_array_t *old_names);
/* the slot bearing name: *hint's first, else searched (and *hint set);
 * NULL when a later reload gave it to another name */
void *ngx_http_payments_slot_find(void *table, size_t size, ngx_uint_t n,
    ngx_str_t *name, ngx_uint_t *hint);


/* _pg.c: sends sql with ctx->params[0 .. nparams - 1]; as pg_send. */
ngx_int_t ngx_http_payments_query(ngx_http_payments_ctx_t *ctx,
    const char *sql, int nparams, ngx_http_payments_pg_handler_pt handler);


/* _auth.c: authenticates the request's bearer key (one query, or the
 * worker's cache), then calls next */
ngx_int_t ngx_http_payments_authenticate(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx));
/* _auth.c: ctx->origins from a merchant's return origins, space-separated
 * (pay_auth's, pay_merchant_origins'); one that does not parse is left
 * out, logged */
ngx_int_t ngx_http_payments_origins_set(ngx_http_payments_ctx_t *ctx,
    const char *origins);
/* _auth.c: why the checkout's success_url or cancel_url is on none of
 * ctx->origins, or NULL */
const char *ngx_http_payments_origins_refuse(ngx_http_payments_ctx_t *ctx);
/* a worker's API-key cache, in cycle->pool (init_process) */
ngx_int_t ngx_http_payments_auth_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf);


/* the route handlers: _register.c, _webhook.c, _read.c, _readyz.c */
void ngx_http_payments_register_start(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_webhook(ngx_http_payments_ctx_t *ctx);

/* _webhook_evidence.c: the verifier's header reader (pay_header_pt: each
 * header it reads noted for the inbox); what a verified webhook keeps
 * besides its events (those header values, in ctx->wh_headers), each event's
 * own bytes ($3, sealed when they may carry a method's token) and key id
 * ($5, NULL when none), and the authentic events kept unapplied: the
 * request's whole body (outcome "unreadable", "livemode",
 * "merchant_account"), or the other account's items of an Adyen batch
 * once ctx->nevents of this PSP's are committed (each answers the request
 * itself) */
const char *ngx_http_payments_webhook_header(void *data, const char *name,
    size_t *len, unsigned *count);
ngx_int_t ngx_http_payments_webhook_evidence(ngx_http_payments_ctx_t *ctx);
ngx_int_t ngx_http_payments_webhook_event_evidence(
    ngx_http_payments_ctx_t *ctx, pay_event_t *ev, char **body,
    char **key_id);
void ngx_http_payments_webhook_unreadable(ngx_http_payments_ctx_t *ctx,
    const char *outcome);
void ngx_http_payments_webhook_foreign(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_get_order(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_get_checkout(ngx_http_payments_ctx_t *ctx);
ngx_int_t ngx_http_payments_pay(ngx_http_payments_ctx_t *ctx);
ngx_int_t ngx_http_payments_readyz(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_return(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_status(ngx_http_payments_ctx_t *ctx);
/* _money.c: refunds, pay-outs, balances */
void ngx_http_payments_refund_start(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_payout_start(ngx_http_payments_ctx_t *ctx);
/* _cancel.c: POST /v1/checkouts/{id}/cancel */
void ngx_http_payments_cancel_start(ngx_http_payments_ctx_t *ctx);
/* _capture.c: POST /v1/payments/{id}/capture and /void */
void ngx_http_payments_capture_start(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_get_payout(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_get_balance(ngx_http_payments_ctx_t *ctx);
ngx_int_t ngx_http_payments_static(ngx_http_payments_ctx_t *ctx);


/* _psp_call.c: what every PSP call does with its answer.  answered:
 * counts it, tells the breaker; NGX_ERROR when the PSP failed its pin
 * (nothing was sent: fail closed).  retry_later: a failure that may heal
 * is retried (NGX_OK: handler is called from ctx->retry later), or
 * NGX_DECLINED (no retry left, or a 4xx that does not heal, which
 * key_in_use, the PSP's "an earlier attempt holds the key", is not;
 * ctx->fail_retry_after from the PSP's Retry-After), NGX_ERROR. */
ngx_int_t ngx_http_payments_psp_answered(ngx_http_payments_psp_t *psp,
    ngx_http_payments_fetch_t *f, pay_psp_outcome_e outcome,
    ngx_uint_t probe);
/* tell_breaker: what a call's end says of the PSP's health, told to its
 * breaker (answered does it; the sweeper's look-ups too) */
void ngx_http_payments_psp_tell_breaker(ngx_http_payments_psp_t *psp,
    ngx_http_payments_fetch_t *f, ngx_uint_t probe);
ngx_int_t ngx_http_payments_psp_retry_later(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, ngx_uint_t key_in_use,
    ngx_event_handler_pt handler);


/* _breaker.c: each PSP's circuit breaker, in shared memory.  allow:
 * NGX_OK (a call may go; *probe when it is the half-open probe) or
 * NGX_DECLINED with *wait (ms until one may). */
ngx_int_t ngx_http_payments_breaker_zone(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf);
void ngx_http_payments_breaker_init_process(ngx_shm_zone_t *zone);
ngx_int_t ngx_http_payments_breaker_allow(ngx_http_payments_psp_t *psp,
    ngx_uint_t *probe, ngx_msec_t *wait);
void ngx_http_payments_breaker_result(ngx_http_payments_psp_t *psp,
    ngx_uint_t success, ngx_uint_t probe);
/* for /metrics: the PSP's own breaker (found by its name): 0 closed,
 * 1 open, 2 half-open; and how often it opened */
void ngx_http_payments_breaker_state(ngx_http_payments_psp_t *psp,
    ngx_uint_t *state, uint64_t *opens);
/* The same for one of the PSP's APIs: a PSP whose API lives on a host of
 * its own (Adyen's Transfers) has a breaker for it beside its main one, so
 * that pay-outs failing never shed its registrations, nor the reverse.
 * The functions above are PAY_PSP_API_MAIN's. */
ngx_int_t ngx_http_payments_breaker_allow_api(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, ngx_uint_t *probe, ngx_msec_t *wait);
void ngx_http_payments_breaker_result_api(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, ngx_uint_t success, ngx_uint_t probe);
void ngx_http_payments_breaker_state_api(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, ngx_uint_t *state, uint64_t *opens);
/* A TLS failure of the PSP's api: 1 when it is the one to log, over every
 * worker: the first since a call last succeeded, since the circuit last
 * opened, or for breaker_open= (a pin's failure, which the breaker is not
 * told of) */
ngx_uint_t ngx_http_payments_breaker_tls_first(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api);


/* _psp_conf.c: pin=sha256//BASE64 (a TLS public key's SHA-256, as curl's
 * CURLOPT_PINNEDPUBLICKEY takes it) appended to *pins ("a;b"): NGX_OK,
 * NGX_DECLINED when it is not one (the caller says so), NGX_ERROR */
ngx_int_t ngx_http_payments_pin_add(ngx_conf_t *cf, char **pins,
    ngx_str_t *v);
/* _psp_params.c, for _psp_conf.c: the parameters given (PAY_PSP_P_* bits)
 * checked against psp's dialect, its webhook secrets decoded and keys'
 * kids checked (NGX_CONF_OK, or NGX_CONF_ERROR logged); the dialects'
 * names, "stripe|adyen|generic", for messages */
char *ngx_http_payments_psp_params(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, unsigned given);
const char *ngx_http_payments_dialect_names(ngx_conf_t *cf);


/* _shard_conf.c: payments_shard, payments_shard_directory, the checks of
 * a libpq connection string (payments_database's too), and nginx -t's
 * refusals of the shards once http{} is read */
char *ngx_http_payments_shard_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_shard_directory_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
/* who names the directive in the messages ("\"payments_database\""); the
 * checked string, as keyword='value' pairs (a URI's too) with
 * gssencmode=disable added unless set, in *conninfo (NUL-terminated, from
 * cf->pool).  NGX_OK, or NGX_ERROR logged. */
ngx_int_t ngx_http_payments_conninfo_check(ngx_conf_t *cf, const char *who,
    ngx_str_t *value, ngx_str_t *conninfo);
/* in each worker, once: the user=, passfile= and TLS files libpq would
 * look up in the system's user database at every connection, made words
 * of each shard's string */
ngx_int_t ngx_http_payments_conninfo_worker(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf);
char *ngx_http_payments_shard_merge(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf);


/* _shard.c: the directory of merchants' and API keys' shards, a shared
 * zone made from payments_shard_directory when payments_shard lines are
 * used (none with payments_database: nothing there looks anything up),
 * filled by the worker that polls each shard (pay_directory); and the
 * fan-out that asks every shard when the directory has no entry */

#define NGX_HTTP_PAYMENTS_SHARD_NONE  ((ngx_uint_t) -1)

typedef enum {
    NGX_HTTP_PAYMENTS_FAN_FOUND = 0,    /* one shard said "here":
                                           ctx->shard */
    NGX_HTTP_PAYMENTS_FAN_NONE,         /* every shard answered "not
                                           here" */
    NGX_HTTP_PAYMENTS_FAN_UNAVAILABLE,  /* none said "here" and some did
                                           not answer: unknown is not
                                           known */
    NGX_HTTP_PAYMENTS_FAN_CONFLICT      /* two shards said "here" */
} ngx_http_payments_fan_e;

/* one shard's answer to a fan-out's query: NGX_OK "here" (the callback
 * copies what it needs: res is cleared after it returns), NGX_DECLINED
 * "not here", NGX_ERROR no usable answer (counted as unavailable) */
typedef ngx_int_t (*ngx_http_payments_fan_answer_pt)(
    ngx_http_payments_ctx_t *ctx, ngx_uint_t shard, PGresult *res);
typedef void (*ngx_http_payments_fan_done_pt)(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome);

ngx_int_t ngx_http_payments_shard_dir_zone(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf);
ngx_int_t ngx_http_payments_shard_init_process(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf);
/* 1 when this worker routes through a directory (payments_shard lines) */
ngx_uint_t ngx_http_payments_shard_dir_on(void);
/* A key id's shard by its merchant's entry: the shard's index, or
 * NGX_DECLINED (no entry: ask every shard), or NGX_BUSY (the key or its
 * merchant is claimed by two shards: 503 until an operator fixes it). */
ngx_int_t ngx_http_payments_shard_of_key(const char *key_id);
/* What a fan-out found: key id -> merchant (key_id may be NULL) and
 * merchant -> shard, for every worker. */
void ngx_http_payments_shard_remember(const char *key_id,
    const char *merchant, ngx_uint_t shard, ngx_log_t *log);
/* A merchant's shard: hit, ctx->shard set and next called; no entry,
 * pay_merchant_here asked of every shard, the one "here" remembered and
 * next called; no shard holds it, next called with ctx->shard
 * NGX_HTTP_PAYMENTS_SHARD_NONE (the caller's own not found); unavailable
 * or in conflict, 503 store_unavailable answered.  merchant lives as long
 * as the request. */
void ngx_http_payments_shard_of_merchant(ngx_http_payments_ctx_t *ctx,
    const char *merchant, void (*next)(ngx_http_payments_ctx_t *ctx));
/* sql with ctx->params sent to every shard's pool at once, each answer to
 * answer, then done once with the outcome (perhaps before this returns,
 * when no shard can take the query).  NGX_OK, or NGX_ERROR (nothing sent,
 * nothing called). */
ngx_int_t ngx_http_payments_shard_fan(ngx_http_payments_ctx_t *ctx,
    const char *sql, int nparams, ngx_http_payments_fan_answer_pt answer,
    ngx_http_payments_fan_done_pt done);
/* The same for a question each shard answers for its own part (the
 * review queue: every answer "not here", NGX_DECLINED, and the outcome
 * NONE when every shard answered): not counted as a directory look-up. */
ngx_int_t ngx_http_payments_shard_fan_all(ngx_http_payments_ctx_t *ctx,
    const char *sql, int nparams, ngx_http_payments_fan_answer_pt answer,
    ngx_http_payments_fan_done_pt done);
/* the directory's counters (the lookups by result, in the order hit,
 * miss_found, miss_none, miss_unavailable); 0s without a directory */
void ngx_http_payments_shard_dir_stats(ngx_uint_t *entries,
    ngx_uint_t *conflicts, ngx_uint_t lookups[4]);
/* a lookup's result, counted: 0 hit, 1 miss_found, 2 miss_none,
 * 3 miss_unavailable (an entry in conflict is none of them: it is counted
 * once, when found) */
void ngx_http_payments_shard_dir_count(ngx_uint_t result);


/* _sweeper_conf.c: payments_sweeper, its defaults and nginx -t's refusals */
char *ngx_http_payments_sweeper_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_sweeper_merge(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf);

/* _sweeper.c: each shard's sweeping timer, in the shard's worker */
ngx_int_t ngx_http_payments_sweeper_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf);
void ngx_http_payments_sweeper_exit(ngx_cycle_t *cycle);


/* _notify_conf.c: payments_notify and payments_notify_allow_host, their
 * defaults and nginx -t's refusals */
char *ngx_http_payments_notify_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_notify_allow_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_payments_notify_merge(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf);

/* _notify.c: every worker's delivery timer */
ngx_int_t ngx_http_payments_notify_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf);
void ngx_http_payments_notify_exit(ngx_cycle_t *cycle);

/* Each shard's timers, in the shard's worker (_housekeeping.c): keys
 * purged and the EXECUTING gauges read once a minute, wallet credits folded
 * every second. */
void ngx_http_payments_housekeeping_init(ngx_cycle_t *cycle);
/* _notify_api.c: GET /v1/notifications, POST /v1/notifications/{id}/replay */
void ngx_http_payments_list_notifications(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_replay_notification(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_list_endpoints(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_set_endpoint(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_create_endpoint(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_rotate_endpoint(ngx_http_payments_ctx_t *ctx);

/* _methods.c: GET /v1/payment_methods, GET /v1/payment_methods/{id} and
 * POST /v1/payment_methods/{id}/detach (by ctx->route) */
void ngx_http_payments_list_methods(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_method(ngx_http_payments_ctx_t *ctx);

/* _list.c: GET /v1/checkouts, /v1/payments, /v1/refunds, /v1/payouts (by
 * ctx->route) and GET /v1/events */
void ngx_http_payments_list(ngx_http_payments_ctx_t *ctx);
void ngx_http_payments_list_events(ngx_http_payments_ctx_t *ctx);


/* _router.c: the content handler; the request body filter and the
 * request line's redaction (post-read phase), in postconfiguration */
ngx_int_t ngx_http_payments_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_payments_router_init(ngx_conf_t *cf);


/* payments_plain_http */
#define NGX_HTTP_PAYMENTS_PLAIN_OFF       0
#define NGX_HTTP_PAYMENTS_PLAIN_LOOPBACK  1

#endif /* _NGX_HTTP_PAYMENTS_MODULE_H_INCLUDED_ */
