
/*
 * Copyright (C) ngx_payments authors
 *
 * Metrics (ngx_http_payments_metrics.h): one block of atomic counters in a
 * shared memory zone that every worker adds to, kept across reloads while
 * the PSPs stay the same, and GET /metrics.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"


ngx_http_payments_metrics_t  *ngx_http_payments_metrics;


static ngx_int_t ngx_http_payments_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);



static const char  *ngx_http_payments_psp_results[] = {
    "created", "refused", "auth_refused", "retryable", "timeout", "network",
    "pin_mismatch"
};

static const char  *ngx_http_payments_wh_reasons[] = {
    "bad_signature", "stale_webhook", "livemode", "unreadable",
    "payload_too_large", "merchant_account"
};

/* in ngx_http_payments_ev_outcome_e's order */
static const char  *ngx_http_payments_ev_outcomes[] = {
    "applied", "duplicate", "already", "pending", "ignored", "late_contrary",
    "unknown_checkout", "mismatch", "amount_mismatch", "unknown_refund",
    "unknown_dispute", "unknown_payout", "paid_after_failed",
    "object_mismatch", "other"
};

static const char  *ngx_http_payments_sweep_answers[] = {
    "decided", "open", "unknown", "auth", "cannot_ask", "circuit_open"
};

static const char  *ngx_http_payments_idem_names[] = {
    "replayed", "in_use", "reused"
};

static const char  *ngx_http_payments_db_names[][2] = {
    { "payments_db_queries_total", "Queries sent to PostgreSQL." },
    { "payments_db_rejected_total",
      "Queries refused at once: the pool and its queue were full." },
    { "payments_db_timeouts_total",
      "Queries that ran past payments_database_timeout." },
    { "payments_db_connection_failures_total",
      "Failed attempts to connect to PostgreSQL." }
};

static const ngx_msec_t  ngx_http_payments_psp_bounds[] = {
    50, 100, 200, 300, 500, 1000, 2000, 5000, 10000
};

static const char  *ngx_http_payments_psp_le[] = {
    "0.05", "0.1", "0.2", "0.3", "0.5", "1", "2", "5", "10"
};


/* The layout: the block's size and the PSPs' names in their order. */

static ngx_uint_t
ngx_http_payments_metrics_layout(ngx_conf_t *cf)
{
    uint32_t                        crc;
    ngx_uint_t                      i;
    ngx_http_payments_psp_t        *psp;
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);
    psp = pmcf->psps->elts;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, (u_char *) "v1", 2);

    for (i = 0; i < pmcf->psps->nelts; i++) {
        ngx_crc32_update(&crc, psp[i].name.data, psp[i].name.len);
        ngx_crc32_update(&crc, (u_char *) "\n", 1);
    }

    ngx_crc32_final(crc);

    return (ngx_uint_t) crc ^ sizeof(ngx_http_payments_metrics_t);
}


ngx_shm_zone_t *
ngx_http_payments_metrics_zone(ngx_conf_t *cf, ngx_uint_t npsps)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *zone;

    if (npsps > NGX_HTTP_PAYMENTS_MAX_PSPS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d \"payments_psp\" are supported",
                           NGX_HTTP_PAYMENTS_MAX_PSPS);
        return NULL;
    }

    ngx_str_set(&name, "payments_metrics");

    zone = ngx_shared_memory_add(cf, &name,
                                 sizeof(ngx_http_payments_metrics_t)
                                 + 8 * ngx_pagesize,
                                 &ngx_http_payments_module);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_http_payments_metrics_init_zone;
    zone->data = (void *) ngx_http_payments_metrics_layout(cf);
    zone->noreuse = 0;

    return zone;
}


void
ngx_http_payments_metrics_init_process(ngx_shm_zone_t *zone)
{
    ngx_http_payments_metrics = zone ? zone->data : NULL;
}


static ngx_int_t
ngx_http_payments_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                    layout;
    ngx_slab_pool_t              *shpool;
    ngx_http_payments_metrics_t  *m, *old = data;

    layout = (ngx_uint_t) shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* a reload with the same PSPs keeps counting where it was */
    if (old && old->layout == layout) {
        shm_zone->data = old;
        return NGX_OK;
    }

    if (old) {
        ngx_slab_free(shpool, old);
    }

    m = ngx_slab_calloc(shpool, sizeof(ngx_http_payments_metrics_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->layout = layout;
    shm_zone->data = m;

    return NGX_OK;
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
ngx_http_payments_metrics_psp(ngx_uint_t psp,
    ngx_http_payments_psp_result_e result, ngx_msec_t elapsed)
{
    ngx_uint_t                      b;
    ngx_http_payments_psp_stats_t  *s;

    if (ngx_http_payments_metrics == NULL
        || psp >= NGX_HTTP_PAYMENTS_MAX_PSPS)
    {
        return;
    }

    s = &ngx_http_payments_metrics->psps[psp];

    for (b = 0; b < NGX_HTTP_PAYMENTS_PSP_BUCKETS; b++) {
        if (elapsed <= ngx_http_payments_psp_bounds[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&s->latency[b], 1);
    (void) ngx_atomic_fetch_add(&s->latency_ms_sum, elapsed);
    (void) ngx_atomic_fetch_add(&s->results[result], 1);
}


void
ngx_http_payments_metrics_event(ngx_uint_t psp, const char *outcome)
{
    ngx_uint_t  i;

    if (ngx_http_payments_metrics == NULL
        || psp >= NGX_HTTP_PAYMENTS_MAX_PSPS)
    {
        return;
    }

    for (i = 0; i < NGX_HTTP_PAYMENTS_EV_OTHER; i++) {
        if (ngx_strcmp(outcome, ngx_http_payments_ev_outcomes[i]) == 0) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(
               &ngx_http_payments_metrics->psps[psp].events[i], 1);
}


void
ngx_http_payments_metrics_sweep(ngx_uint_t psp,
    ngx_http_payments_sweep_answer_e answer)
{
    if (ngx_http_payments_metrics == NULL
        || psp >= NGX_HTTP_PAYMENTS_MAX_PSPS
        || answer >= NGX_HTTP_PAYMENTS_SWEEP__MAX)
    {
        return;
    }

    (void) ngx_atomic_fetch_add(
               &ngx_http_payments_metrics->psps[psp].sweeps[answer], 1);
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
    ngx_http_payments_db_slot_t  *slot;

    if (ngx_http_payments_metrics == NULL
        || ngx_worker >= NGX_HTTP_PAYMENTS_MAX_WORKERS)
    {
        return;
    }

    slot = &ngx_http_payments_metrics->db_workers[ngx_worker];
    (void) ngx_atomic_cmp_set(&slot->pid, (ngx_atomic_uint_t) ngx_pid, 0);
}


/* GET /metrics: text/plain; version=0.0.4 */

#define ngx_http_payments_out(...)                                            \
    p = ngx_slprintf(p, last, __VA_ARGS__)

ngx_int_t
ngx_http_payments_metrics_handler(ngx_http_request_t *r, ngx_array_t *psps)
{
    u_char                         *buf, *p, *last;
    u_char                          owner[NGX_MAXHOSTNAMELEN + 64];
    size_t                          size;
    ngx_uint_t                      i, j, cum, n;
    ngx_http_payments_psp_t        *psp;
    ngx_http_payments_metrics_t    *m;
    ngx_http_payments_psp_stats_t  *s;
    ngx_http_payments_db_slot_t    *w;
    uint64_t                        opens;
    ngx_uint_t                      state;

    m = ngx_http_payments_metrics;
    if (m == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    n = ngx_min(psps->nelts, NGX_HTTP_PAYMENTS_MAX_PSPS);
    size = 24576 + n * 8192;

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;
    last = buf + size;
    psp = psps->elts;

    ngx_http_payments_out(
        "# HELP payments_requests_total Requests by route and status class.\n"
        "# TYPE payments_requests_total counter\n");

    for (i = 0; i < PAY_ROUTE__MAX; i++) {
        for (j = 1; j <= 5; j++) {
            if (m->requests[i][j]) {
                ngx_http_payments_out(
                    "payments_requests_total{route=\"%s\",status=\"%uixx\"} "
                    "%uA\n", pay_route_name(i), j,
                    m->requests[i][j]);
            }
        }
    }

    ngx_http_payments_out(
        "# HELP payments_errors_total Problem answers by code.\n"
        "# TYPE payments_errors_total counter\n");

    for (i = 1; i < PAY_ERR__MAX; i++) {
        ngx_http_payments_out("payments_errors_total{code=\"%s\"} %uA\n",
                              pay_err_code((pay_err_e) i), m->errors[i]);
    }

    ngx_http_payments_out(
        "# HELP payments_idempotency_total Idempotency-Key replays and "
        "conflicts.\n"
        "# TYPE payments_idempotency_total counter\n");

    for (i = 0; i < NGX_HTTP_PAYMENTS_IDEM__MAX; i++) {
        ngx_http_payments_out("payments_idempotency_total{result=\"%s\"} "
                              "%uA\n", ngx_http_payments_idem_names[i],
                              m->idempotency[i]);
    }

    ngx_http_payments_out(
        "# HELP payments_psp_request_duration_seconds PSP registration "
        "attempts.\n"
        "# TYPE payments_psp_request_duration_seconds histogram\n");

    for (i = 0; i < n; i++) {
        s = &m->psps[i];
        cum = 0;

        for (j = 0; j < NGX_HTTP_PAYMENTS_PSP_BUCKETS; j++) {
            cum += s->latency[j];
            ngx_http_payments_out(
                "payments_psp_request_duration_seconds_bucket{psp=\"%V\","
                "le=\"%s\"} %ui\n", &psp[i].name, ngx_http_payments_psp_le[j],
                cum);
        }

        cum += s->latency[NGX_HTTP_PAYMENTS_PSP_BUCKETS];
        ngx_http_payments_out(
            "payments_psp_request_duration_seconds_bucket{psp=\"%V\","
            "le=\"+Inf\"} %ui\n"
            "payments_psp_request_duration_seconds_sum{psp=\"%V\"} %uA.%03uA\n"
            "payments_psp_request_duration_seconds_count{psp=\"%V\"} %ui\n",
            &psp[i].name, cum, &psp[i].name, s->latency_ms_sum / 1000,
            s->latency_ms_sum % 1000, &psp[i].name, cum);
    }

    ngx_http_payments_out(
        "# HELP payments_psp_requests_total PSP registration attempts by "
        "result.\n"
        "# TYPE payments_psp_requests_total counter\n");

    for (i = 0; i < n; i++) {
        for (j = 0; j < NGX_HTTP_PAYMENTS_PSP__MAX; j++) {
            ngx_http_payments_out(
                "payments_psp_requests_total{psp=\"%V\",result=\"%s\"} %uA\n",
                &psp[i].name, ngx_http_payments_psp_results[j],
                m->psps[i].results[j]);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_psp_circuit_state Each PSP's circuit breaker: 0 "
        "closed, 1 open (registrations answer 503 without calling it), 2 "
        "half-open (one probe out).\n"
        "# TYPE payments_psp_circuit_state gauge\n");

    for (i = 0; i < n; i++) {
        ngx_http_payments_breaker_state(&psp[i], &state, &opens);
        ngx_http_payments_out("payments_psp_circuit_state{psp=\"%V\"} %ui\n",
                              &psp[i].name, state);
    }

    ngx_http_payments_out(
        "# HELP payments_psp_circuit_opens_total How often each PSP's "
        "circuit breaker opened.\n"
        "# TYPE payments_psp_circuit_opens_total counter\n");

    for (i = 0; i < n; i++) {
        ngx_http_payments_breaker_state(&psp[i], &state, &opens);
        ngx_http_payments_out("payments_psp_circuit_opens_total{psp=\"%V\"} "
                              "%uL\n", &psp[i].name, opens);
    }

    ngx_http_payments_out(
        "# HELP payments_webhook_refused_total Webhooks refused before "
        "anything was applied, by reason.\n"
        "# TYPE payments_webhook_refused_total counter\n");

    for (i = 0; i < n; i++) {
        for (j = 0; j < NGX_HTTP_PAYMENTS_WH__MAX; j++) {
            ngx_http_payments_out(
                "payments_webhook_refused_total{psp=\"%V\",reason=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_wh_reasons[j],
                m->psps[i].wh_refused[j]);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_webhook_events_total Verified webhook events by "
        "outcome (all but applied, duplicate, already, pending and ignored "
        "are alerted).\n"
        "# TYPE payments_webhook_events_total counter\n");

    for (i = 0; i < n; i++) {
        for (j = 0; j < NGX_HTTP_PAYMENTS_EV__MAX; j++) {
            ngx_http_payments_out(
                "payments_webhook_events_total{psp=\"%V\",outcome=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_ev_outcomes[j],
                m->psps[i].events[j]);
        }
    }

    for (i = 0; i < NGX_HTTP_PAYMENTS_DB__MAX; i++) {
        ngx_http_payments_out("# HELP %s %s\n# TYPE %s counter\n%s %uA\n",
                              ngx_http_payments_db_names[i][0],
                              ngx_http_payments_db_names[i][1],
                              ngx_http_payments_db_names[i][0],
                              ngx_http_payments_db_names[i][0], m->db[i]);
    }

    ngx_http_payments_out(
        "# HELP payments_db_pool_connections Each worker's PostgreSQL "
        "connections.\n"
        "# TYPE payments_db_pool_connections gauge\n");

    for (i = 0; i < NGX_HTTP_PAYMENTS_MAX_WORKERS; i++) {
        w = &m->db_workers[i];

        if (w->pid == 0) {
            continue;
        }

        ngx_http_payments_out(
            "payments_db_pool_connections{worker=\"%ui\",state=\"up\"} %uA\n"
            "payments_db_pool_connections{worker=\"%ui\",state=\"busy\"} "
            "%uA\n"
            "payments_db_pool_connections{worker=\"%ui\",state=\"size\"} "
            "%uA\n",
            i, w->up, i, w->busy, i, w->size);
    }

    ngx_http_payments_out(
        "# HELP payments_db_pool_waiting Each worker's queries waiting for "
        "a connection.\n"
        "# TYPE payments_db_pool_waiting gauge\n");

    for (i = 0; i < NGX_HTTP_PAYMENTS_MAX_WORKERS; i++) {
        w = &m->db_workers[i];

        if (w->pid != 0) {
            ngx_http_payments_out("payments_db_pool_waiting{worker=\"%ui\"} "
                                  "%uA\n", i, w->waiting);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_checkouts_executing Checkouts waiting for the PSP's "
        "outcome, as of the last minute's housekeeping.\n"
        "# TYPE payments_checkouts_executing gauge\n"
        "payments_checkouts_executing %uA\n"
        "# HELP payments_checkouts_executing_oldest_seconds Age of the oldest "
        "of them (0: none).\n"
        "# TYPE payments_checkouts_executing_oldest_seconds gauge\n"
        "payments_checkouts_executing_oldest_seconds %uA\n",
        m->executing, m->executing_oldest);

    ngx_http_payments_out(
        "# HELP payments_wallet_fold_last_success_timestamp_seconds When "
        "this gateway last ran pay_wallets_fold (it folds, or another "
        "gateway held the fold); 0: never.\n"
        "# TYPE payments_wallet_fold_last_success_timestamp_seconds gauge\n"
        "payments_wallet_fold_last_success_timestamp_seconds %uA\n",
        m->wallet_fold_at);

    ngx_http_payments_out(
        "# HELP payments_sweeper_lookups_total The stuck-checkout sweeper's "
        "session look-ups by answer (decided: paid or failed, applied; "
        "circuit_open: not asked, the PSP's circuit breaker is open).\n"
        "# TYPE payments_sweeper_lookups_total counter\n");

    for (i = 0; i < n; i++) {
        for (j = 0; j < NGX_HTTP_PAYMENTS_SWEEP__MAX; j++) {
            ngx_http_payments_out(
                "payments_sweeper_lookups_total{psp=\"%V\",answer=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_sweep_answers[j],
                m->psps[i].sweeps[j]);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_sweeper_leader 1 while this gateway holds the "
        "database's sweeper lease (one gateway sweeps at a time).\n"
        "# TYPE payments_sweeper_leader gauge\n"
        "payments_sweeper_leader %uA\n"
        "# HELP payments_checkouts_unresolved Checkouts still EXECUTING past "
        "payments_sweeper's alert= age, as of the last round.\n"
        "# TYPE payments_checkouts_unresolved gauge\n"
        "payments_checkouts_unresolved %uA\n"
        "# HELP payments_checkouts_unresolved_oldest_seconds Age of the "
        "oldest of them (0: none).\n"
        "# TYPE payments_checkouts_unresolved_oldest_seconds gauge\n"
        "payments_checkouts_unresolved_oldest_seconds %uA\n",
        m->sweeper_leader, m->sweeper_unresolved,
        m->sweeper_unresolved_oldest);

    (void) ngx_http_payments_sweeper_owner((ngx_cycle_t *) ngx_cycle, owner,
                                           sizeof(owner));

    ngx_http_payments_out(
        "# HELP payments_sweeper_owner_info The name this gateway takes the "
        "sweeper lease under (host:master pid:instance id), as in the "
        "database's sweeper_lease.owner.\n"
        "# TYPE payments_sweeper_owner_info gauge\n"
        "payments_sweeper_owner_info{owner=\"%s\"} 1\n", owner);

    ngx_http_payments_out(
        "# HELP payments_notify_deliveries_total Notification attempts to "
        "merchants' endpoints by recorded outcome (retry: failed, tried "
        "again later; failed: the last attempt failed, the dead-letter list; "
        "refused: a forbidden address or host).\n"
        "# TYPE payments_notify_deliveries_total counter\n"
        "payments_notify_deliveries_total{outcome=\"delivered\"} %uA\n"
        "payments_notify_deliveries_total{outcome=\"retry\"} %uA\n"
        "payments_notify_deliveries_total{outcome=\"failed\"} %uA\n"
        "payments_notify_deliveries_total{outcome=\"refused\"} %uA\n"
        "# HELP payments_notify_queue_depth Notifications waiting to be "
        "delivered (PENDING).\n"
        "# TYPE payments_notify_queue_depth gauge\n"
        "payments_notify_queue_depth %uA\n"
        "# HELP payments_notify_oldest_pending_seconds Age of the oldest of "
        "them (0: none).\n"
        "# TYPE payments_notify_oldest_pending_seconds gauge\n"
        "payments_notify_oldest_pending_seconds %uA\n"
        "# HELP payments_notify_dead_letters Notifications whose every "
        "attempt failed (FAILED), until replayed.\n"
        "# TYPE payments_notify_dead_letters gauge\n"
        "payments_notify_dead_letters %uA\n"
        "# HELP payments_notify_endpoints_disabled Endpoints disabled after "
        "failing for disable_after=.\n"
        "# TYPE payments_notify_endpoints_disabled gauge\n"
        "payments_notify_endpoints_disabled %uA\n",
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_DELIVERED],
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_RETRY],
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_FAILED],
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_REFUSED],
        m->notify_pending, m->notify_oldest, m->notify_failed,
        m->notify_disabled);

    p = ngx_http_payments_limit_metrics(p, last);

    if (p == last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: /metrics did not fit in %uz bytes", size);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_send(r, NGX_HTTP_OK,
                                  "text/plain; version=0.0.4", buf, p - buf);
}
