
/*
 * Copyright (C) ngx_payments authors
 *
 * Counters in shared memory, summed over every worker (_metrics.c), and
 * GET /metrics in Prometheus' text format (_metrics_page.c).  No label value comes from a request: routes,
 * codes and outcomes are fixed sets and PSP names come from nginx.conf, so
 * no secret, token or e-mail can reach a metric.
 */


#ifndef NGX_HTTP_PAYMENTS_METRICS_H
#define NGX_HTTP_PAYMENTS_METRICS_H


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <payments/error.h>
#include <payments/checkout.h>
#include <payments/url.h>
#include <payments/shard.h>


#define NGX_HTTP_PAYMENTS_MAX_PSPS      32
#define NGX_HTTP_PAYMENTS_MAX_WORKERS   64
#define NGX_HTTP_PAYMENTS_PSP_BUCKETS   9       /* and +Inf */
/* a query's wait for one of its pool's connections (payments_db_wait_seconds) */
#define NGX_HTTP_PAYMENTS_DBW_BUCKETS   9       /* and +Inf */

/* the names of the running configuration and of the one being loaded */
#define NGX_HTTP_PAYMENTS_PSP_SLOTS     (2 * NGX_HTTP_PAYMENTS_MAX_PSPS)


/* one PSP attempt (registration) */
typedef enum {
    NGX_HTTP_PAYMENTS_PSP_CREATED = 0,
    NGX_HTTP_PAYMENTS_PSP_REFUSED,      /* 4xx: the checkout FAILED */
    NGX_HTTP_PAYMENTS_PSP_AUTH,         /* 401/403: our credentials */
    NGX_HTTP_PAYMENTS_PSP_RETRYABLE,    /* 5xx, 409, 429 */
    NGX_HTTP_PAYMENTS_PSP_TIMEOUT,
    NGX_HTTP_PAYMENTS_PSP_NETWORK,      /* no answer */
    NGX_HTTP_PAYMENTS_PSP_PIN,          /* its key matched no pin= */
    NGX_HTTP_PAYMENTS_PSP__MAX
} ngx_http_payments_psp_result_e;


/* a webhook refused before anything was applied */
typedef enum {
    NGX_HTTP_PAYMENTS_WH_BAD_SIGNATURE = 0,
    NGX_HTTP_PAYMENTS_WH_STALE,
    NGX_HTTP_PAYMENTS_WH_LIVEMODE,
    NGX_HTTP_PAYMENTS_WH_UNREADABLE,    /* signed, yet not an event */
    NGX_HTTP_PAYMENTS_WH_TOO_LARGE,
    NGX_HTTP_PAYMENTS_WH_ACCOUNT,       /* adyen: another merchant account */
    NGX_HTTP_PAYMENTS_WH__MAX
} ngx_http_payments_wh_reason_e;


/* pay_event_apply's outcomes, in its words (sql/functions/) */
typedef enum {
    NGX_HTTP_PAYMENTS_EV_APPLIED = 0,
    NGX_HTTP_PAYMENTS_EV_DUPLICATE,
    NGX_HTTP_PAYMENTS_EV_ALREADY,
    NGX_HTTP_PAYMENTS_EV_PENDING,
    NGX_HTTP_PAYMENTS_EV_IGNORED,
    NGX_HTTP_PAYMENTS_EV_LATE_CONTRARY,
    NGX_HTTP_PAYMENTS_EV_UNKNOWN_CHECKOUT,
    NGX_HTTP_PAYMENTS_EV_MISMATCH,
    NGX_HTTP_PAYMENTS_EV_AMOUNT_MISMATCH,
    NGX_HTTP_PAYMENTS_EV_UNKNOWN_REFUND,        /* the money after paid */
    NGX_HTTP_PAYMENTS_EV_UNKNOWN_DISPUTE,
    NGX_HTTP_PAYMENTS_EV_UNKNOWN_PAYOUT,
    NGX_HTTP_PAYMENTS_EV_PAID_AFTER_FAILED,
    NGX_HTTP_PAYMENTS_EV_OBJECT_MISMATCH,
    NGX_HTTP_PAYMENTS_EV_CAPTURE_REVERSED,      /* a capture the PSP */
    NGX_HTTP_PAYMENTS_EV_CAPTURE_REVERSED_REFUNDED, /* decided by itself */
    NGX_HTTP_PAYMENTS_EV_CAPTURED_AFTER_RELEASE,
    NGX_HTTP_PAYMENTS_EV_CAPTURED_OUTSIDE,
    NGX_HTTP_PAYMENTS_EV_CAPTURED_FOR_MANUAL,
    NGX_HTTP_PAYMENTS_EV_DISPUTE_EXCESS,
    NGX_HTTP_PAYMENTS_EV_OTHER,
    NGX_HTTP_PAYMENTS_EV__MAX
} ngx_http_payments_ev_outcome_e;


typedef enum {
    NGX_HTTP_PAYMENTS_IDEM_REPLAYED = 0,
    NGX_HTTP_PAYMENTS_IDEM_IN_USE,      /* 409 */
    NGX_HTTP_PAYMENTS_IDEM_REUSED,      /* 422 */
    NGX_HTTP_PAYMENTS_IDEM__MAX
} ngx_http_payments_idem_e;


typedef enum {
    NGX_HTTP_PAYMENTS_DB_QUERIES = 0,   /* sent */
    NGX_HTTP_PAYMENTS_DB_REJECTED,      /* no connection up, or queue full */
    NGX_HTTP_PAYMENTS_DB_TIMEOUTS,
    NGX_HTTP_PAYMENTS_DB_CONNECTION_FAILURES,
    NGX_HTTP_PAYMENTS_DB__MAX
} ngx_http_payments_db_e;


typedef struct {
    ngx_atomic_t    up;                 /* connections idle or busy */
    ngx_atomic_t    busy;
    ngx_atomic_t    waiting;            /* queries queued */
    ngx_atomic_t    size;               /* payments_database_pool */
    ngx_atomic_t    pid;                /* 0: no such worker */
} ngx_http_payments_db_slot_t;


/* what the sweeper's session look-up gave */
typedef enum {
    NGX_HTTP_PAYMENTS_SWEEP_DECIDED = 0,    /* paid or failed: applied */
    NGX_HTTP_PAYMENTS_SWEEP_OPEN,           /* still open at the PSP */
    NGX_HTTP_PAYMENTS_SWEEP_UNKNOWN,        /* no usable answer */
    NGX_HTTP_PAYMENTS_SWEEP_AUTH,           /* 401/403 */
    NGX_HTTP_PAYMENTS_SWEEP_CANNOT,         /* the dialect cannot ask */
    NGX_HTTP_PAYMENTS_SWEEP_CIRCUIT_OPEN,   /* not asked: its breaker is
                                               open */
    NGX_HTTP_PAYMENTS_SWEEP__MAX
} ngx_http_payments_sweep_answer_e;


/* the event inbox: a kept event's state as it was kept (pending, foreign)
 * or as the sweeper's retry changed it (applied late, unmatched) */
typedef enum {
    NGX_HTTP_PAYMENTS_INBOX_PENDING = 0,
    NGX_HTTP_PAYMENTS_INBOX_FOREIGN,
    NGX_HTTP_PAYMENTS_INBOX_APPLIED_LATE,
    NGX_HTTP_PAYMENTS_INBOX_UNMATCHED,
    NGX_HTTP_PAYMENTS_INBOX__MAX
} ngx_http_payments_inbox_state_e;


/* one notification attempt's recorded outcome */
typedef enum {
    NGX_HTTP_PAYMENTS_NOTIFY_DELIVERED = 0,
    NGX_HTTP_PAYMENTS_NOTIFY_RETRY,         /* failed, tried again later */
    NGX_HTTP_PAYMENTS_NOTIFY_FAILED,        /* failed, the dead-letter list */
    NGX_HTTP_PAYMENTS_NOTIFY_REFUSED,       /* a forbidden address or host */
    NGX_HTTP_PAYMENTS_NOTIFY__MAX
} ngx_http_payments_notify_outcome_e;


/* a risk check without a usable answer (the on_error= policy decided) */
typedef enum {
    NGX_HTTP_PAYMENTS_RISKE_TIMEOUT = 0,
    NGX_HTTP_PAYMENTS_RISKE_NETWORK,        /* no answer */
    NGX_HTTP_PAYMENTS_RISKE_STATUS,         /* not a 200 */
    NGX_HTTP_PAYMENTS_RISKE_MALFORMED,
    NGX_HTTP_PAYMENTS_RISKE_SIGNATURE,      /* unsigned or forged */
    NGX_HTTP_PAYMENTS_RISKE__MAX
} ngx_http_payments_risk_error_e;
/* a routing decision about one PSP of a route (payments_route) */
typedef enum {
    NGX_HTTP_PAYMENTS_RT_FIRST = 0,         /* bound as the first choice */
    NGX_HTTP_PAYMENTS_RT_FALLBACK,          /* bound after another moved
                                               on */
    NGX_HTTP_PAYMENTS_RT_CIRCUIT_OPEN,      /* moved on from it: why */
    NGX_HTTP_PAYMENTS_RT_CONNECT_REFUSED,
    NGX_HTTP_PAYMENTS_RT_REFUSED,
    NGX_HTTP_PAYMENTS_RT_THROTTLED,
    NGX_HTTP_PAYMENTS_RT_5XX_NOTHING_MADE,
    NGX_HTTP_PAYMENTS_RT_NOT_ALLOWED,       /* passed over: the merchant
                                               may not use it */
    NGX_HTTP_PAYMENTS_RT__MAX
} ngx_http_payments_route_outcome_e;

/* the routes a PSP's slot counts decisions for, by route name */
#define NGX_HTTP_PAYMENTS_PSP_ROUTES    16

typedef struct {
    u_char          name[32];
    size_t          len;                /* 0: free */
    ngx_atomic_t    outcomes[NGX_HTTP_PAYMENTS_RT__MAX];
} ngx_http_payments_route_stats_t;


typedef struct {
    ngx_atomic_t    latency[NGX_HTTP_PAYMENTS_PSP_BUCKETS + 1];
    ngx_atomic_t    latency_ms_sum;
    ngx_atomic_t    results[NGX_HTTP_PAYMENTS_PSP__MAX];
    ngx_atomic_t    wh_refused[NGX_HTTP_PAYMENTS_WH__MAX];
    ngx_atomic_t    events[NGX_HTTP_PAYMENTS_EV__MAX];
    ngx_atomic_t    sweeps[NGX_HTTP_PAYMENTS_SWEEP__MAX];
    ngx_atomic_t    inbox[NGX_HTTP_PAYMENTS_INBOX__MAX];
    ngx_http_payments_route_stats_t  routes[NGX_HTTP_PAYMENTS_PSP_ROUTES];
} ngx_http_payments_psp_stats_t;


/* a shard's pool in one worker (as ngx_http_payments_db_slot_t) */
typedef struct {
    ngx_atomic_t    up;
    ngx_atomic_t    busy;
    ngx_atomic_t    waiting;
    ngx_atomic_t    size;
    ngx_atomic_t    breaker;            /* pay_breaker_state_e */
    ngx_atomic_t    pid;                /* 0: no such worker */
} ngx_http_payments_shard_worker_t;


/*
 * A shard's counters under its name (payments_shard's), found by that name
 * as a PSP's are: a reload that reorders the lines keeps each shard's
 * series, and draining workers count on the right shard.  Filled while
 * there are several shards (the "shard" label), or for a shard with a
 * breaker.  Other per-shard figures go after these (the layout's version
 * is the block's size).
 */
/*
 * The gauges a shard's background work reads from its own database (its
 * sweeper, housekeeping and notifier, in the shard's worker): one value
 * per shard, served with the "shard" label when there are several, else
 * as the block's own field of the same name (ngx_http_payments_metrics_t).
 */
typedef enum {
    NGX_HTTP_PAYMENTS_SG_SWEEPER_LEADER = 0,
    NGX_HTTP_PAYMENTS_SG_UNRESOLVED,
    NGX_HTTP_PAYMENTS_SG_UNRESOLVED_OLDEST,
    NGX_HTTP_PAYMENTS_SG_HOLDS_EXPIRING,
    NGX_HTTP_PAYMENTS_SG_DETACHES_UNCONFIRMED,
    NGX_HTTP_PAYMENTS_SG_METHODS_UNSAVED,
    NGX_HTTP_PAYMENTS_SG_EXECUTING,
    NGX_HTTP_PAYMENTS_SG_EXECUTING_OLDEST,
    NGX_HTTP_PAYMENTS_SG_NOTIFY_PENDING,
    NGX_HTTP_PAYMENTS_SG_NOTIFY_OLDEST,
    NGX_HTTP_PAYMENTS_SG_NOTIFY_FAILED,
    NGX_HTTP_PAYMENTS_SG_NOTIFY_DISABLED,
    NGX_HTTP_PAYMENTS_SG_WALLET_FOLD_AT,
    NGX_HTTP_PAYMENTS_SG__MAX
} ngx_http_payments_shard_gauge_e;


typedef struct {
    ngx_atomic_t                      db[NGX_HTTP_PAYMENTS_DB__MAX];
    ngx_atomic_t                      breaker_opens;
    ngx_http_payments_shard_worker_t  workers[NGX_HTTP_PAYMENTS_MAX_WORKERS];
    /* PSP events kept on the shard, by how they found it
     * (pay_evroute_e - 1: nonce, located, home) */
    ngx_atomic_t                      routed[3];
    ngx_atomic_t                      gauges[NGX_HTTP_PAYMENTS_SG__MAX];
} ngx_http_payments_shard_stats_t;


typedef struct {
    ngx_http_payments_slot_name_t     id;       /* first: a named slot */
    ngx_http_payments_shard_stats_t   stats;
} ngx_http_payments_shard_slot_t;


/* the running configuration's shards and the one being loaded's */
#define NGX_HTTP_PAYMENTS_SHARD_SLOTS   (2 * PAY_SHARD_MAX)


/* a PSP's counters under its name, found by that name (_metrics.c) */
typedef struct {
    ngx_http_payments_slot_name_t   id;         /* first: a named slot */
    ngx_http_payments_psp_stats_t   stats;
} ngx_http_payments_psp_slot_t;


typedef struct {
    ngx_uint_t                      version;    /* the block's layout */
    ngx_atomic_t                    requests[PAY_ROUTE__MAX][6];
    ngx_atomic_t                    errors[PAY_ERR__MAX];
    ngx_atomic_t                    idempotency[NGX_HTTP_PAYMENTS_IDEM__MAX];
    ngx_atomic_t                    db[NGX_HTTP_PAYMENTS_DB__MAX];
    ngx_http_payments_db_slot_t     db_workers[NGX_HTTP_PAYMENTS_MAX_WORKERS];
    ngx_http_payments_psp_slot_t    psps[NGX_HTTP_PAYMENTS_PSP_SLOTS];
    ngx_http_payments_shard_slot_t  shards[NGX_HTTP_PAYMENTS_SHARD_SLOTS];
    ngx_atomic_t                    executing;          /* checkouts */
    ngx_atomic_t                    executing_oldest;   /* seconds */
    ngx_atomic_t                    sweeper_leader;     /* holds the lease */
    ngx_atomic_t                    sweeper_unresolved; /* past alert= */
    ngx_atomic_t                    sweeper_unresolved_oldest;
    ngx_atomic_t                    holds_expiring;     /* within a day */
    ngx_atomic_t                    detaches_unconfirmed;   /* saved
                                                           methods' PSP
                                                           detaches tried
                                                           5 times or more,
                                                           unconfirmed */
    ngx_atomic_t                    methods_unsaved;    /* paid, asked to
                                                           save, no method
                                                           past alert= */
    ngx_atomic_t                    notify[NGX_HTTP_PAYMENTS_NOTIFY__MAX];
    ngx_atomic_t                    notify_pending;     /* gauges, from */
    ngx_atomic_t                    notify_oldest;      /* worker 0's */
    ngx_atomic_t                    notify_failed;      /* pay_notify_stats */
    ngx_atomic_t                    notify_disabled;
    ngx_atomic_t                    route_fallbacks;    /* checkouts
                                                         * moved on to a
                                                         * route's next
                                                         * PSP */
    ngx_atomic_t                    wallet_fold_at;     /* unix seconds of
                                                         * the last
                                                         * pay_wallets_fold
                                                         * (per shard too) */
    ngx_atomic_t                    risk_decisions[3];  /* allow, deny,
                                                           review */
    ngx_atomic_t                    risk_errors[NGX_HTTP_PAYMENTS_RISKE__MAX];
    ngx_atomic_t                    risk_latency[NGX_HTTP_PAYMENTS_PSP_BUCKETS
                                                 + 1];
    ngx_atomic_t                    risk_latency_ms_sum;
    ngx_atomic_t                    risk_reviews_expired;
    ngx_atomic_t                    risk_after[4];      /* after the
                                                           payment: allow,
                                                           deny, review,
                                                           unchecked */
    ngx_atomic_t                    db_wait[NGX_HTTP_PAYMENTS_DBW_BUCKETS
                                            + 1];       /* every query
                                                           sent, by its
                                                           wait in the
                                                           pool's queue
                                                           (all shards) */
    ngx_atomic_t                    db_wait_ms_sum;
} ngx_http_payments_metrics_t;


/*
 * The worker's pointer to its cycle's zone, set when the worker starts
 * (ngx_http_payments_metrics_init_process), never in the master: a reload
 * that fails after making a new zone frees it, and a worker forked later
 * must not inherit a pointer to it.  NULL in the master and in nginx -t:
 * every update checks it.
 */
extern ngx_http_payments_metrics_t  *ngx_http_payments_metrics;


#define ngx_http_payments_count(field)                                        \
    if (ngx_http_payments_metrics) {                                          \
        (void) ngx_atomic_fetch_add(&ngx_http_payments_metrics->field, 1);    \
    }


typedef struct ngx_http_payments_psp_s  ngx_http_payments_psp_t;


ngx_shm_zone_t *ngx_http_payments_metrics_zone(ngx_conf_t *cf,
    ngx_array_t *psps);
void ngx_http_payments_metrics_init_process(ngx_shm_zone_t *zone);
void ngx_http_payments_metrics_request(ngx_uint_t route, ngx_uint_t status);
/* Per PSP: counted in the slot that bears the PSP's name (not counted
 * when a later reload gave it to another name, or psp is NULL: a PSP no
 * longer configured). */
void ngx_http_payments_metrics_psp(ngx_http_payments_psp_t *psp,
    ngx_http_payments_psp_result_e result, ngx_msec_t elapsed);
void ngx_http_payments_metrics_event(ngx_http_payments_psp_t *psp,
    const char *outcome);
/* a routing decision: outcome "first", "fallback" or why the checkout
 * moved on from the PSP (pay_dialect_no_session's words, "circuit_open",
 * "psp_not_allowed"); route is payments_route's name= */
void ngx_http_payments_metrics_route(ngx_http_payments_psp_t *psp,
    ngx_str_t *route, const char *outcome);
void ngx_http_payments_metrics_webhook_refused(ngx_http_payments_psp_t *psp,
    ngx_http_payments_wh_reason_e reason);
void ngx_http_payments_metrics_sweep(ngx_http_payments_psp_t *psp,
    ngx_http_payments_sweep_answer_e answer);
void ngx_http_payments_metrics_inbox(ngx_http_payments_psp_t *psp,
    ngx_http_payments_inbox_state_e state);
/* the risk check: a verdict recorded (pay_risk_verdict_e), an answer
 * that could not be used, the provider's time */
void ngx_http_payments_metrics_risk_decision(ngx_uint_t verdict);
void ngx_http_payments_metrics_risk_error(ngx_uint_t error);
void ngx_http_payments_metrics_risk_latency(ngx_msec_t elapsed);
/* a query sent on a connection after waiting for it that long (0: one was
 * free) */
void ngx_http_payments_metrics_db_wait(ngx_msec_t waited);
void ngx_http_payments_metrics_risk_expired(void);
/* a verdict recorded after the payment: pay_risk_verdict_e, or 3 when the
 * provider left it unchecked */
void ngx_http_payments_metrics_risk_after(ngx_uint_t verdict);
void ngx_http_payments_metrics_db_slot(ngx_uint_t up, ngx_uint_t busy,
    ngx_uint_t waiting, ngx_uint_t size);
void ngx_http_payments_metrics_worker_exit(void);

/* Per shard, in the slot that bears its name (nothing when a later reload
 * gave it to another name): a database count, this worker's pool and
 * breaker state, a breaker opening. */
typedef struct ngx_http_payments_shard_s  ngx_http_payments_shard_t;
void ngx_http_payments_metrics_shard_db(ngx_http_payments_shard_t *shard,
    ngx_http_payments_db_e what);
void ngx_http_payments_metrics_shard_pool(ngx_http_payments_shard_t *shard,
    ngx_uint_t up, ngx_uint_t busy, ngx_uint_t waiting, ngx_uint_t size,
    ngx_uint_t breaker);
void ngx_http_payments_metrics_shard_opened(ngx_http_payments_shard_t *shard);
/* a PSP event kept on the shard, found by nonce, located or kept at home
 * (pay_evroute_e) */
void ngx_http_payments_metrics_shard_routed(ngx_http_payments_shard_t *shard,
    ngx_uint_t by);
/* A gauge of a shard's background work (g): in its shard's slot, and in
 * the block's field of the same name, which /metrics serves while there is
 * one shard (shard NULL: the field only). */
void ngx_http_payments_metrics_gauge(ngx_http_payments_shard_t *shard,
    ngx_http_payments_shard_gauge_e g, ngx_atomic_uint_t v);
/* the gauges' fields in the block, in ngx_http_payments_shard_gauge_e's
 * order (_metrics_page.c serves them) */
extern const size_t  ngx_http_payments_shard_gauge_fields[];
/* what _metrics_page.c reads: a shard's slot, under the zone's mutex */
ngx_http_payments_shard_stats_t *ngx_http_payments_metrics_shard_slot(
    ngx_http_payments_metrics_t *m, ngx_http_payments_shard_t *shard);

/* what _metrics_page.c reads: a PSP's slot (under the zone's mutex, in
 * its slab pool), the outcomes' names in their enums' order, the latency
 * buckets' bounds */
ngx_http_payments_psp_stats_t *ngx_http_payments_metrics_slot(
    ngx_http_payments_metrics_t *m, ngx_http_payments_psp_t *psp);
extern ngx_slab_pool_t        *ngx_http_payments_metrics_pool;
extern const char             *ngx_http_payments_ev_outcomes[];
extern const char             *ngx_http_payments_inbox_states[];
extern const char             *ngx_http_payments_route_outcomes[];
extern const ngx_msec_t        ngx_http_payments_psp_bounds[];
extern const ngx_msec_t        ngx_http_payments_dbw_bounds[];

/* _metrics_page.c: GET /metrics */
ngx_int_t ngx_http_payments_metrics_handler(ngx_http_request_t *r,
    ngx_array_t *psps);


#endif /* NGX_HTTP_PAYMENTS_METRICS_H */
