
/*
 * Copyright (C) ngx_payments authors
 *
 * Metrics (ngx_http_payments_metrics.h): one block of atomic counters in a
 * shared memory zone that every worker adds to, kept across reloads.  Data
 * every glue file may bump or publish into; it calls only _util.c (the
 * slot table).  GET /metrics, which reads it, is _metrics_page.c.
 *
 * Each PSP's counters are a slot of the block that carries the PSP's
 * name, found by that name, never by the position of its payments_psp
 * line, as the circuit breakers' are (_breaker.c).  A reload keeps the
 * block: every PSP still configured keeps its slot and its counts,
 * whatever the order of the lines (a Prometheus counter never goes back
 * for a PSP that stays), and the old cycle's workers, which go on
 * finishing their calls after the reload, count into the slot of the PSP
 * they called.  (A block re-laid at each change of the PSP list was
 * indexed by the old workers with their old positions: one PSP's calls
 * were counted to another, and every count started again from zero.)
 *
 * The table has room for twice NGX_HTTP_PAYMENTS_MAX_PSPS: the names of
 * the running configuration and of the one being loaded always fit.  A
 * name in neither loses its slot, and its counts, when the slot is
 * needed; a worker of an older cycle that still calls it counts nothing.
 * Slots change hands under the zone's mutex, and a count is added under
 * it, after the slot's name is checked.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"


/* zone->data: a configuration's PSPs and shards, and the block they count
 * in */
typedef struct {
    ngx_array_t                     *psps;
    ngx_array_t                     *shards;
    ngx_http_payments_metrics_t     *m;
} ngx_http_payments_metrics_ctx_t;


#define NGX_HTTP_PAYMENTS_METRICS_VERSION                                     \
    (0x6d747232 ^ sizeof(ngx_http_payments_metrics_t))


ngx_http_payments_metrics_t  *ngx_http_payments_metrics;

/* the zone's slab pool, for its mutex (set with the pointer above) */
ngx_slab_pool_t              *ngx_http_payments_metrics_pool;


static ngx_int_t ngx_http_payments_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* in ngx_http_payments_ev_outcome_e's order */
const char  *ngx_http_payments_ev_outcomes[] = {
    "applied", "duplicate", "already", "pending", "ignored", "late_contrary",
    "unknown_checkout", "mismatch", "amount_mismatch", "unknown_refund",
    "unknown_dispute", "unknown_payout", "paid_after_failed",
    "object_mismatch", "capture_reversed", "capture_reversed_refunded",
    "captured_after_release", "captured_outside", "captured_for_manual",
    "dispute_excess", "other"
};

/* in ngx_http_payments_inbox_state_e's order */
const char  *ngx_http_payments_inbox_states[] = {
    "pending", "foreign", "applied_late", "unmatched"
};

/* in ngx_http_payments_route_outcome_e's order */
const char  *ngx_http_payments_route_outcomes[] = {
    "first", "fallback", "circuit_open", "connect_refused", "refused",
    "throttled", "psp_5xx_nothing_made", "psp_not_allowed"
};

/* in ngx_http_payments_shard_gauge_e's order */
const size_t  ngx_http_payments_shard_gauge_fields[] = {
    offsetof(ngx_http_payments_metrics_t, sweeper_leader),
    offsetof(ngx_http_payments_metrics_t, sweeper_unresolved),
    offsetof(ngx_http_payments_metrics_t, sweeper_unresolved_oldest),
    offsetof(ngx_http_payments_metrics_t, holds_expiring),
    offsetof(ngx_http_payments_metrics_t, detaches_unconfirmed),
    offsetof(ngx_http_payments_metrics_t, methods_unsaved),
    offsetof(ngx_http_payments_metrics_t, executing),
    offsetof(ngx_http_payments_metrics_t, executing_oldest),
    offsetof(ngx_http_payments_metrics_t, notify_pending),
    offsetof(ngx_http_payments_metrics_t, notify_oldest),
    offsetof(ngx_http_payments_metrics_t, notify_failed),
    offsetof(ngx_http_payments_metrics_t, notify_disabled),
    offsetof(ngx_http_payments_metrics_t, wallet_fold_at)
};

const ngx_msec_t  ngx_http_payments_psp_bounds[] = {
    50, 100, 200, 300, 500, 1000, 2000, 5000, 10000
};

/* payments_db_wait_seconds' upper bounds, in ms (_metrics_page.c's
 * ngx_http_payments_dbw_le[] in seconds) */
const ngx_msec_t  ngx_http_payments_dbw_bounds[] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000
};


ngx_shm_zone_t *
ngx_http_payments_metrics_zone(ngx_conf_t *cf, ngx_array_t *psps)
{
    ngx_str_t                         name;
    ngx_shm_zone_t                   *zone;
    ngx_http_payments_metrics_ctx_t  *ctx;
    ngx_http_payments_main_conf_t    *pmcf;

    if (psps->nelts > NGX_HTTP_PAYMENTS_MAX_PSPS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d \"payments_psp\" are supported",
                           NGX_HTTP_PAYMENTS_MAX_PSPS);
        return NULL;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_metrics_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->psps = psps;

    /* the shards, by name as the PSPs (the array is complete by the time
     * the zone is made) */
    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);
    ctx->shards = pmcf->shards;

    ngx_str_set(&name, "payments_metrics");

    /* room for a second block: one of another layout (another build of
     * the module) is made beside the old workers' */
    zone = ngx_shared_memory_add(cf, &name,
                                 2 * sizeof(ngx_http_payments_metrics_t)
                                 + 8 * ngx_pagesize,
                                 &ngx_http_payments_module);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_http_payments_metrics_init_zone;
    zone->data = ctx;
    zone->noreuse = 0;

    return zone;
}


void
ngx_http_payments_metrics_init_process(ngx_shm_zone_t *zone)
{
    ngx_http_payments_metrics_ctx_t  *ctx;

    ngx_http_payments_metrics = NULL;
    ngx_http_payments_metrics_pool = NULL;

    if (zone == NULL || zone->data == NULL) {
        return;
    }

    ctx = zone->data;
    ngx_http_payments_metrics = ctx->m;
    ngx_http_payments_metrics_pool = (ngx_slab_pool_t *) zone->shm.addr;
}


static ngx_int_t
ngx_http_payments_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                        i, j;
    ngx_slab_pool_t                  *shpool;
    ngx_http_payments_psp_t          *psp;
    ngx_http_payments_shard_t        *shard;
    ngx_http_payments_metrics_t      *m;
    ngx_http_payments_metrics_ctx_t  *ctx, *octx = data;

    ctx = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* a reload: the running configuration's block, when laid out as this
     * code lays it (else a new one: the old cycle's workers keep theirs,
     * never freed under them) */
    if (octx && octx->m
        && octx->m->version == NGX_HTTP_PAYMENTS_METRICS_VERSION)
    {
        m = octx->m;

    } else {
        m = ngx_slab_calloc(shpool, sizeof(ngx_http_payments_metrics_t));
        if (m == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "payments: no room for the metrics' block: "
                          "restart nginx instead of reloading it");
            return NGX_ERROR;
        }

        m->version = NGX_HTTP_PAYMENTS_METRICS_VERSION;
        octx = NULL;
    }

    ctx->m = m;

    psp = ctx->psps->elts;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < ctx->psps->nelts; i++) {

        j = ngx_http_payments_slot_assign(m->psps,
                sizeof(ngx_http_payments_psp_slot_t),
                NGX_HTTP_PAYMENTS_PSP_SLOTS, &psp[i].name, ctx->psps,
                octx ? octx->psps : NULL);

        if (j == NGX_HTTP_PAYMENTS_PSP_SLOTS) {
            /* cannot happen: the two configurations have at most twice
             * NGX_HTTP_PAYMENTS_MAX_PSPS names; refused, never shared */
            ngx_shmtx_unlock(&shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "payments: no metrics slot left for psp \"%V\": "
                          "restart nginx instead of reloading it",
                          &psp[i].name);
            return NGX_ERROR;
        }

        psp[i].metrics_slot = j;
    }

    shard = ctx->shards->elts;

    for (i = 0; i < ctx->shards->nelts; i++) {

        j = ngx_http_payments_slot_assign(m->shards,
                sizeof(ngx_http_payments_shard_slot_t),
                NGX_HTTP_PAYMENTS_SHARD_SLOTS, &shard[i].name, ctx->shards,
                octx ? octx->shards : NULL);

        if (j == NGX_HTTP_PAYMENTS_SHARD_SLOTS) {
            /* cannot happen either: twice PAY_SHARD_MAX slots */
            ngx_shmtx_unlock(&shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "payments: no metrics slot left for shard "
                          "\"%V\": restart nginx instead of reloading it",
                          &shard[i].name);
            return NGX_ERROR;
        }

        shard[i].metrics_slot = j;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


/*
 * The PSP's counters, under the mutex: the slot init_zone gave it while it
 * still bears its name, else found by name; NULL when a later reload gave
 * it to another name (this worker's cycle is on its way out).
 */
ngx_http_payments_psp_stats_t *
ngx_http_payments_metrics_slot(ngx_http_payments_metrics_t *m,
    ngx_http_payments_psp_t *psp)
{
    ngx_http_payments_psp_slot_t  *s;

    s = ngx_http_payments_slot_find(m->psps,
                                    sizeof(ngx_http_payments_psp_slot_t),
                                    NGX_HTTP_PAYMENTS_PSP_SLOTS, &psp->name,
                                    &psp->metrics_slot);

    return s != NULL ? &s->stats : NULL;
}


void
ngx_http_payments_metrics_request(ngx_uint_t route, ngx_uint_t status)
{
    ngx_uint_t  cls;

    if (ngx_http_payments_metrics == NULL) {
        return;
    }

    cls = status / 100;

    if (route >= PAY_ROUTE__MAX || cls > 5) {
        route = 0;
        cls = 0;
    }

    (void) ngx_atomic_fetch_add(
               &ngx_http_payments_metrics->requests[route][cls], 1);
}


void
ngx_http_payments_metrics_risk_decision(ngx_uint_t verdict)
{
    if (verdict < 3) {
        ngx_http_payments_count(risk_decisions[verdict]);
    }
}


void
ngx_http_payments_metrics_risk_error(ngx_uint_t error)
{
    if (error < NGX_HTTP_PAYMENTS_RISKE__MAX) {
        ngx_http_payments_count(risk_errors[error]);
    }
}


void
ngx_http_payments_metrics_risk_expired(void)
{
    ngx_http_payments_count(risk_reviews_expired);
}


void
ngx_http_payments_metrics_risk_after(ngx_uint_t verdict)
{
    if (verdict < 4) {
        ngx_http_payments_count(risk_after[verdict]);
    }
}


void
ngx_http_payments_metrics_risk_latency(ngx_msec_t elapsed)
{
    ngx_uint_t  b;

    if (ngx_http_payments_metrics == NULL) {
        return;
    }

    for (b = 0; b < NGX_HTTP_PAYMENTS_PSP_BUCKETS; b++) {
        if (elapsed <= ngx_http_payments_psp_bounds[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_http_payments_metrics->risk_latency[b],
                                1);
    (void) ngx_atomic_fetch_add(
                         &ngx_http_payments_metrics->risk_latency_ms_sum,
                         elapsed);
}


void
ngx_http_payments_metrics_db_wait(ngx_msec_t waited)
{
    ngx_uint_t  b;

    if (ngx_http_payments_metrics == NULL) {
        return;
    }

    for (b = 0; b < NGX_HTTP_PAYMENTS_DBW_BUCKETS; b++) {
        if (waited < ngx_http_payments_dbw_bounds[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_http_payments_metrics->db_wait[b], 1);
    (void) ngx_atomic_fetch_add(&ngx_http_payments_metrics->db_wait_ms_sum,
                                waited);
}


void
ngx_http_payments_metrics_psp(ngx_http_payments_psp_t *psp,
    ngx_http_payments_psp_result_e result, ngx_msec_t elapsed)
{
    ngx_uint_t                      b;
    ngx_http_payments_psp_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || psp == NULL
        || result >= NGX_HTTP_PAYMENTS_PSP__MAX)
    {
        return;
    }

    for (b = 0; b < NGX_HTTP_PAYMENTS_PSP_BUCKETS; b++) {
        if (elapsed <= ngx_http_payments_psp_bounds[b]) {
            break;
        }
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_slot(ngx_http_payments_metrics, psp);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->latency[b], 1);
        (void) ngx_atomic_fetch_add(&s->latency_ms_sum, elapsed);
        (void) ngx_atomic_fetch_add(&s->results[result], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_event(ngx_http_payments_psp_t *psp,
    const char *outcome)
{
    ngx_uint_t                      i;
    ngx_http_payments_psp_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || psp == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_PAYMENTS_EV_OTHER; i++) {
        if (ngx_strcmp(outcome, ngx_http_payments_ev_outcomes[i]) == 0) {
            break;
        }
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_slot(ngx_http_payments_metrics, psp);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->events[i], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


/*
 * Under the mutex: the PSP's entry for the route, found by name or taken
 * when free; NULL when the PSP's slot has no room for another route name
 * (a PSP in more than NGX_HTTP_PAYMENTS_PSP_ROUTES routes over the zone's
 * life: those decisions are not counted).
 */
void
ngx_http_payments_metrics_route(ngx_http_payments_psp_t *psp,
    ngx_str_t *route, const char *outcome)
{
    ngx_uint_t                        i, o;
    ngx_http_payments_psp_stats_t    *s;
    ngx_http_payments_route_stats_t  *rs;

    if (ngx_http_payments_metrics == NULL || psp == NULL
        || route->len == 0 || route->len > sizeof(rs->name))
    {
        return;
    }

    for (o = 0; o < NGX_HTTP_PAYMENTS_RT__MAX; o++) {
        if (ngx_strcmp(outcome, ngx_http_payments_route_outcomes[o]) == 0) {
            break;
        }
    }

    if (o == NGX_HTTP_PAYMENTS_RT__MAX) {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_slot(ngx_http_payments_metrics, psp);

    for (i = 0; s != NULL && i < NGX_HTTP_PAYMENTS_PSP_ROUTES; i++) {
        rs = &s->routes[i];

        if (rs->len == 0) {
            ngx_memcpy(rs->name, route->data, route->len);
            rs->len = route->len;
        }

        if (rs->len == route->len
            && ngx_memcmp(rs->name, route->data, route->len) == 0)
        {
            (void) ngx_atomic_fetch_add(&rs->outcomes[o], 1);
            break;
        }
    }

    if (o == NGX_HTTP_PAYMENTS_RT_FALLBACK) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_payments_metrics->route_fallbacks, 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_webhook_refused(ngx_http_payments_psp_t *psp,
    ngx_http_payments_wh_reason_e reason)
{
    ngx_http_payments_psp_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || psp == NULL
        || reason >= NGX_HTTP_PAYMENTS_WH__MAX)
    {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_slot(ngx_http_payments_metrics, psp);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->wh_refused[reason], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_sweep(ngx_http_payments_psp_t *psp,
    ngx_http_payments_sweep_answer_e answer)
{
    ngx_http_payments_psp_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || psp == NULL
        || answer >= NGX_HTTP_PAYMENTS_SWEEP__MAX)
    {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_slot(ngx_http_payments_metrics, psp);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->sweeps[answer], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_inbox(ngx_http_payments_psp_t *psp,
    ngx_http_payments_inbox_state_e state)
{
    ngx_http_payments_psp_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || psp == NULL
        || state >= NGX_HTTP_PAYMENTS_INBOX__MAX)
    {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_slot(ngx_http_payments_metrics, psp);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->inbox[state], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_db_slot(ngx_uint_t up, ngx_uint_t busy,
    ngx_uint_t waiting, ngx_uint_t size)
{
    ngx_http_payments_db_slot_t  *slot;

    if (ngx_http_payments_metrics == NULL
        || ngx_worker >= NGX_HTTP_PAYMENTS_MAX_WORKERS)
    {
        return;
    }

    slot = &ngx_http_payments_metrics->db_workers[ngx_worker];
    slot->up = up;
    slot->busy = busy;
    slot->waiting = waiting;
    slot->size = size;
    slot->pid = (ngx_atomic_uint_t) ngx_pid;
}


/* A worker leaving (a reload) takes its slot with it, unless a new worker
 * of the same number has it already. */

void
ngx_http_payments_metrics_worker_exit(void)
{
    ngx_uint_t                         i;
    ngx_http_payments_db_slot_t       *slot;
    ngx_http_payments_shard_worker_t  *w;

    if (ngx_http_payments_metrics == NULL
        || ngx_worker >= NGX_HTTP_PAYMENTS_MAX_WORKERS)
    {
        return;
    }

    slot = &ngx_http_payments_metrics->db_workers[ngx_worker];
    (void) ngx_atomic_cmp_set(&slot->pid, (ngx_atomic_uint_t) ngx_pid, 0);

    /* and its part of each shard's */
    for (i = 0; i < NGX_HTTP_PAYMENTS_SHARD_SLOTS; i++) {
        w = &ngx_http_payments_metrics->shards[i].stats.workers[ngx_worker];
        (void) ngx_atomic_cmp_set(&w->pid, (ngx_atomic_uint_t) ngx_pid, 0);
    }
}


/*
 * The shard's counters, under the mutex: the slot init_zone gave it while
 * it still bears its name, else found by name; NULL when a later reload
 * gave it to another name.
 */
ngx_http_payments_shard_stats_t *
ngx_http_payments_metrics_shard_slot(ngx_http_payments_metrics_t *m,
    ngx_http_payments_shard_t *shard)
{
    ngx_http_payments_shard_slot_t  *s;

    s = ngx_http_payments_slot_find(m->shards,
                                    sizeof(ngx_http_payments_shard_slot_t),
                                    NGX_HTTP_PAYMENTS_SHARD_SLOTS,
                                    &shard->name, &shard->metrics_slot);

    return s != NULL ? &s->stats : NULL;
}


void
ngx_http_payments_metrics_shard_db(ngx_http_payments_shard_t *shard,
    ngx_http_payments_db_e what)
{
    ngx_http_payments_shard_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || what >= NGX_HTTP_PAYMENTS_DB__MAX)
    {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_shard_slot(ngx_http_payments_metrics,
                                             shard);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->db[what], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_shard_opened(ngx_http_payments_shard_t *shard)
{
    ngx_http_payments_shard_stats_t  *s;

    if (ngx_http_payments_metrics == NULL) {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_shard_slot(ngx_http_payments_metrics,
                                             shard);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->breaker_opens, 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_shard_routed(ngx_http_payments_shard_t *shard,
    ngx_uint_t by)
{
    ngx_http_payments_shard_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || by < PAY_EVROUTE_NONCE
        || by > PAY_EVROUTE_HOME)
    {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_shard_slot(ngx_http_payments_metrics,
                                             shard);
    if (s != NULL) {
        (void) ngx_atomic_fetch_add(&s->routed[by - PAY_EVROUTE_NONCE], 1);
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_shard_pool(ngx_http_payments_shard_t *shard,
    ngx_uint_t up, ngx_uint_t busy, ngx_uint_t waiting, ngx_uint_t size,
    ngx_uint_t breaker)
{
    ngx_http_payments_shard_stats_t   *s;
    ngx_http_payments_shard_worker_t  *w;

    if (ngx_http_payments_metrics == NULL
        || ngx_worker >= NGX_HTTP_PAYMENTS_MAX_WORKERS)
    {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_shard_slot(ngx_http_payments_metrics,
                                             shard);
    if (s != NULL) {
        w = &s->workers[ngx_worker];
        w->up = up;
        w->busy = busy;
        w->waiting = waiting;
        w->size = size;
        w->breaker = breaker;
        w->pid = (ngx_atomic_uint_t) ngx_pid;
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


void
ngx_http_payments_metrics_gauge(ngx_http_payments_shard_t *shard,
    ngx_http_payments_shard_gauge_e g, ngx_atomic_uint_t v)
{
    ngx_http_payments_shard_stats_t  *s;

    if (ngx_http_payments_metrics == NULL || g >= NGX_HTTP_PAYMENTS_SG__MAX) {
        return;
    }

    *(ngx_atomic_t *) ((u_char *) ngx_http_payments_metrics
                       + ngx_http_payments_shard_gauge_fields[g]) = v;

    if (shard == NULL) {
        return;
    }

    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    s = ngx_http_payments_metrics_shard_slot(ngx_http_payments_metrics,
                                             shard);
    if (s != NULL) {
        s->gauges[g] = v;
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);
}


/* GET /metrics: text/plain; version=0.0.4 */
