
/*
 * Copyright (C) ngx_payments authors
 *
 * GET /metrics: the Prometheus text of the metrics zone (_metrics.c), the
 * circuit breakers' states (_breaker.c) and the limits' zones
 * (_limit_vars.c).  A route handler: what it shows of the sweeper and of
 * the database pool is what their owners published into the zone.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_limit.h"

#include <payments/breaker.h>


static const char  *ngx_http_payments_psp_results[] = {
    "created", "refused", "auth_refused", "retryable", "timeout", "network",
    "pin_mismatch"
};

static const char  *ngx_http_payments_wh_reasons[] = {
    "bad_signature", "stale_webhook", "livemode", "unreadable",
    "payload_too_large", "merchant_account"
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

/* the gauges of each shard's background work, in
 * ngx_http_payments_shard_gauge_e's order: name and help */
static const char  *ngx_http_payments_gauge_names[][2] = {
    { "payments_sweeper_leader",
      "1 while this gateway holds the database's sweeper lease (one "
      "gateway sweeps at a time)." },
    { "payments_checkouts_unresolved",
      "Checkouts still EXECUTING past payments_sweeper's alert= age, as of "
      "the last round; counted up to 10000." },
    { "payments_checkouts_unresolved_oldest_seconds",
      "Age of the oldest of them (0: none)." },
    { "payments_authorizations_expiring",
      "Manual-capture authorizations held whose end (the PSP's auth "
      "window) is less than a day away or past, as of the sweeper's last "
      "round." },
    { "payments_payment_methods_detach_unconfirmed",
      "Saved methods detached here whose PSP has not confirmed the detach "
      "after the sweeper's 5th try or more, as of its last round." },
    { "payments_payment_methods_unsaved",
      "Paid checkouts that asked to save the shopper's method and have "
      "none recorded past payments_sweeper's alert= age (the PSP's event "
      "that it was stored lost, and no look-up found it), as of the "
      "sweeper's last round." },
    { "payments_checkouts_executing",
      "Checkouts waiting for the PSP's outcome, as of the last minute's "
      "housekeeping: exact below 10000; from there PostgreSQL's count "
      "of them at its last VACUUM or ANALYZE, at least 10000." },
    { "payments_checkouts_executing_oldest_seconds",
      "Age of the oldest of them (0: none)." },
    { "payments_notify_queue_depth",
      "Notifications waiting to be delivered (PENDING): exact below "
      "10000; from there PostgreSQL's count at its last VACUUM or "
      "ANALYZE, at least 10000." },
    { "payments_notify_oldest_pending_seconds",
      "Age of the oldest of them (0: none)." },
    { "payments_notify_dead_letters",
      "Notifications whose every attempt failed (FAILED), until "
      "replayed: exact below 10000; from there PostgreSQL's count at "
      "its last VACUUM or ANALYZE, at least 10000." },
    { "payments_notify_endpoints_disabled",
      "Endpoints disabled after failing for disable_after=." },
    { "payments_wallet_fold_last_success_timestamp_seconds",
      "When this gateway last ran pay_wallets_fold on the database (it "
      "folds, or another gateway held the fold); 0: never." }
};

static const char  *ngx_http_payments_pool_states[] = {
    "up", "busy", "size"
};

static const char  *ngx_http_payments_psp_le[] = {
    "0.05", "0.1", "0.2", "0.3", "0.5", "1", "2", "5", "10"
};

/* ngx_http_payments_dbw_bounds[] (_metrics.c), in seconds */
static const char  *ngx_http_payments_dbw_le[] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"
};


#define ngx_http_payments_out(...)                                            \
    p = ngx_slprintf(p, last, __VA_ARGS__)


static u_char *ngx_http_payments_metrics_db(u_char *p, u_char *last,
    ngx_http_payments_metrics_t *m);
static u_char *ngx_http_payments_metrics_shards_db(u_char *p, u_char *last,
    ngx_http_payments_shard_t *shard, ngx_uint_t ns,
    ngx_http_payments_shard_stats_t **sps);
static u_char *ngx_http_payments_metrics_directory(u_char *p,
    u_char *last);
static u_char *ngx_http_payments_metrics_gauges(u_char *p, u_char *last,
    ngx_http_payments_metrics_t *m, ngx_http_payments_shard_t *shard,
    ngx_uint_t ns, ngx_http_payments_shard_stats_t **sps, ngx_uint_t from,
    ngx_uint_t to);
static u_char *ngx_http_payments_metrics_shards_state(u_char *p,
    u_char *last, ngx_http_payments_shard_t *shard, ngx_uint_t ns,
    ngx_http_payments_shard_stats_t **sps);

ngx_int_t
ngx_http_payments_metrics_handler(ngx_http_request_t *r, ngx_array_t *psps)
{
    u_char                         *buf, *p, *last;
    u_char                          owner[NGX_MAXHOSTNAMELEN + 64];
    size_t                          size;
    uint64_t                        opens;
    ngx_uint_t                      i, j, k, cum, n, state;
    ngx_http_payments_psp_t        *psp;
    ngx_http_payments_metrics_t    *m;
    ngx_http_payments_psp_stats_t  *s, *stats, **ps;
    ngx_http_payments_route_stats_t  *rs;
    ngx_uint_t                      ns, named;
    ngx_http_payments_shard_t      *shard;
    ngx_http_payments_shard_stats_t  *ss, *sstats, **sps;
    ngx_http_payments_main_conf_t  *pmcf;

    m = ngx_http_payments_metrics;
    if (m == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

    /* several shards: the database's series by shard (the "shard" label);
     * payments_shard lines: each shard's state and breaker.  Neither for
     * payments_database, whose series stay as they were. */
    ns = ngx_min(pmcf->shards->nelts, PAY_SHARD_MAX);
    named = (pmcf->conninfo.len == 0 && ns > 0);
    shard = pmcf->shards->elts;

    n = ngx_min(psps->nelts, NGX_HTTP_PAYMENTS_MAX_PSPS);
    size = 24576 + n * (8192 + NGX_HTTP_PAYMENTS_PSP_ROUTES * 1536)
           + (named ? 2048 + ns * (2048 + NGX_HTTP_PAYMENTS_MAX_WORKERS * 512)
                    : 0);

    buf = ngx_pnalloc(r->pool, size);
    stats = ngx_pcalloc(r->pool, (n + 1) * sizeof(*stats));
    ps = ngx_pcalloc(r->pool, (n + 1) * sizeof(*ps));
    sstats = ngx_pcalloc(r->pool, (ns + 1) * sizeof(*sstats));
    sps = ngx_pcalloc(r->pool, (ns + 1) * sizeof(*sps));
    if (buf == NULL || stats == NULL || ps == NULL || sstats == NULL
        || sps == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;
    last = buf + size;
    psp = psps->elts;

    /* each PSP's counters as of one moment, from the slot that bears its
     * name; ps[i] NULL: its slot went to another name (a worker of an old
     * cycle), no series rather than a count gone back to zero */
    ngx_shmtx_lock(&ngx_http_payments_metrics_pool->mutex);

    for (i = 0; i < n; i++) {
        s = ngx_http_payments_metrics_slot(m, &psp[i]);
        if (s != NULL) {
            stats[i] = *s;
            ps[i] = &stats[i];
        }
    }

    for (i = 0; named && i < ns; i++) {
        ss = ngx_http_payments_metrics_shard_slot(m, &shard[i]);
        if (ss != NULL) {
            sstats[i] = *ss;
            sps[i] = &sstats[i];
        }
    }

    ngx_shmtx_unlock(&ngx_http_payments_metrics_pool->mutex);

    ngx_http_payments_out(
        "# HELP payments_build_info The module this worker runs: its version "
        "and the schema (last migration) it was built for.\n"
        "# TYPE payments_build_info gauge\n"
        "payments_build_info{version=\"%s\",schema=\"%s\"} 1\n",
        NGX_HTTP_PAYMENTS_VERSION, NGX_HTTP_PAYMENTS_SCHEMA);

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
        s = ps[i];
        if (s == NULL) {
            continue;
        }

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
        if (ps[i] == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_PAYMENTS_PSP__MAX; j++) {
            ngx_http_payments_out(
                "payments_psp_requests_total{psp=\"%V\",result=\"%s\"} %uA\n",
                &psp[i].name, ngx_http_payments_psp_results[j],
                ps[i]->results[j]);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_route_decisions_total Routing decisions by route, "
        "PSP and outcome: first (bound as the first choice), fallback "
        "(bound after another PSP made no session), or why a checkout moved "
        "on from the PSP.\n"
        "# TYPE payments_route_decisions_total counter\n");

    for (i = 0; i < n; i++) {
        if (ps[i] == NULL) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_PAYMENTS_PSP_ROUTES; k++) {
            rs = &ps[i]->routes[k];
            if (rs->len == 0) {
                continue;
            }

            for (j = 0; j < NGX_HTTP_PAYMENTS_RT__MAX; j++) {
                ngx_http_payments_out(
                    "payments_route_decisions_total{route=\"%*s\","
                    "psp=\"%V\",outcome=\"%s\"} %uA\n", rs->len, rs->name,
                    &psp[i].name, ngx_http_payments_route_outcomes[j],
                    rs->outcomes[j]);
            }
        }
    }

    ngx_http_payments_out(
        "# HELP payments_route_fallbacks_total Checkouts moved on to their "
        "route's next PSP after an outcome that proved no session was "
        "made.\n"
        "# TYPE payments_route_fallbacks_total counter\n"
        "payments_route_fallbacks_total %uA\n", m->route_fallbacks);

    ngx_http_payments_out(
        "# HELP payments_psp_circuit_state Each PSP's circuit breaker: 0 "
        "closed, 1 open (registrations answer 503 without calling it), 2 "
        "half-open (the next call is the probe, or the probe is out).\n"
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

    /* the breakers of a second API on a host of its own (Adyen's
     * Transfers: pay-outs), for the PSPs that have one */
    for (i = 0, k = 0; i < n; i++) {
        k += psp[i].transfers_url.len > 0;
    }

    if (k > 0) {
        ngx_http_payments_out(
            "# HELP payments_psp_transfers_circuit_state The circuit breaker "
            "of each PSP's transfers API (its pay-outs, on a host of its "
            "own): 0 closed, 1 open (pay-outs answer 503 without calling "
            "it), 2 half-open.\n"
            "# TYPE payments_psp_transfers_circuit_state gauge\n");

        for (i = 0; i < n; i++) {
            if (psp[i].transfers_url.len == 0) {
                continue;
            }

            ngx_http_payments_breaker_state_api(&psp[i], PAY_PSP_API_TRANSFERS,
                                                &state, &opens);
            ngx_http_payments_out(
                "payments_psp_transfers_circuit_state{psp=\"%V\"} %ui\n",
                &psp[i].name, state);
        }

        ngx_http_payments_out(
            "# HELP payments_psp_transfers_circuit_opens_total How often the "
            "circuit breaker of each PSP's transfers API opened.\n"
            "# TYPE payments_psp_transfers_circuit_opens_total counter\n");

        for (i = 0; i < n; i++) {
            if (psp[i].transfers_url.len == 0) {
                continue;
            }

            ngx_http_payments_breaker_state_api(&psp[i], PAY_PSP_API_TRANSFERS,
                                                &state, &opens);
            ngx_http_payments_out(
                "payments_psp_transfers_circuit_opens_total{psp=\"%V\"} "
                "%uL\n", &psp[i].name, opens);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_webhook_refused_total Webhooks refused before "
        "anything was applied, by reason.\n"
        "# TYPE payments_webhook_refused_total counter\n");

    for (i = 0; i < n; i++) {
        if (ps[i] == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_PAYMENTS_WH__MAX; j++) {
            ngx_http_payments_out(
                "payments_webhook_refused_total{psp=\"%V\",reason=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_wh_reasons[j],
                ps[i]->wh_refused[j]);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_webhook_events_total Verified webhook events by "
        "outcome (all but applied, duplicate, already, pending and ignored "
        "are alerted).\n"
        "# TYPE payments_webhook_events_total counter\n");

    for (i = 0; i < n; i++) {
        if (ps[i] == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_PAYMENTS_EV__MAX; j++) {
            ngx_http_payments_out(
                "payments_webhook_events_total{psp=\"%V\",outcome=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_ev_outcomes[j],
                ps[i]->events[j]);
        }
    }

    ngx_http_payments_out(
        "# HELP payments_webhook_inbox_total Verified events kept pending "
        "(what they refer to not here yet) or foreign (another system's "
        "reference) when received, then applied late or found unmatched "
        "by the sweeper.\n"
        "# TYPE payments_webhook_inbox_total counter\n");

    for (i = 0; i < n; i++) {
        if (ps[i] == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_PAYMENTS_INBOX__MAX; j++) {
            ngx_http_payments_out(
                "payments_webhook_inbox_total{psp=\"%V\",state=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_inbox_states[j],
                ps[i]->inbox[j]);
        }
    }

    if (ns > 1) {
        p = ngx_http_payments_metrics_shards_db(p, last, shard, ns, sps);

    } else {
        p = ngx_http_payments_metrics_db(p, last, m);
    }

    if (named) {
        p = ngx_http_payments_metrics_shards_state(p, last, shard, ns, sps);
    }

    p = ngx_http_payments_metrics_gauges(p, last, m, shard, ns, sps,
                              NGX_HTTP_PAYMENTS_SG_EXECUTING,
                              NGX_HTTP_PAYMENTS_SG_EXECUTING_OLDEST);

    p = ngx_http_payments_metrics_gauges(p, last, m, shard, ns, sps,
                              NGX_HTTP_PAYMENTS_SG_WALLET_FOLD_AT,
                              NGX_HTTP_PAYMENTS_SG_WALLET_FOLD_AT);

    ngx_http_payments_out(
        "# HELP payments_sweeper_lookups_total The stuck-checkout sweeper's "
        "session look-ups by answer (decided: paid or failed, applied; "
        "circuit_open: not asked, the PSP's circuit breaker is open).\n"
        "# TYPE payments_sweeper_lookups_total counter\n");

    for (i = 0; i < n; i++) {
        if (ps[i] == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_PAYMENTS_SWEEP__MAX; j++) {
            ngx_http_payments_out(
                "payments_sweeper_lookups_total{psp=\"%V\",answer=\"%s\"} "
                "%uA\n", &psp[i].name, ngx_http_payments_sweep_answers[j],
                ps[i]->sweeps[j]);
        }
    }

    p = ngx_http_payments_metrics_gauges(p, last, m, shard, ns, sps,
                              NGX_HTTP_PAYMENTS_SG_SWEEPER_LEADER,
                              NGX_HTTP_PAYMENTS_SG_METHODS_UNSAVED);

    (void) ngx_http_payments_instance_owner((ngx_cycle_t *) ngx_cycle, owner,
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
        "payments_notify_deliveries_total{outcome=\"refused\"} %uA\n",
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_DELIVERED],
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_RETRY],
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_FAILED],
        m->notify[NGX_HTTP_PAYMENTS_NOTIFY_REFUSED]);

    p = ngx_http_payments_metrics_gauges(p, last, m, shard, ns, sps,
                                         NGX_HTTP_PAYMENTS_SG_NOTIFY_PENDING,
                                         NGX_HTTP_PAYMENTS_SG_NOTIFY_DISABLED);

    ngx_http_payments_out(
        "# HELP payments_risk_decisions_total Risk verdicts recorded before "
        "a PSP call (the provider's, or on_error='s).\n"
        "# TYPE payments_risk_decisions_total counter\n"
        "payments_risk_decisions_total{verdict=\"allow\"} %uA\n"
        "payments_risk_decisions_total{verdict=\"deny\"} %uA\n"
        "payments_risk_decisions_total{verdict=\"review\"} %uA\n"
        "# HELP payments_risk_errors_total Risk checks without a usable "
        "answer, decided by on_error=.\n"
        "# TYPE payments_risk_errors_total counter\n"
        "payments_risk_errors_total{reason=\"timeout\"} %uA\n"
        "payments_risk_errors_total{reason=\"unavailable\"} %uA\n"
        "payments_risk_errors_total{reason=\"status\"} %uA\n"
        "payments_risk_errors_total{reason=\"malformed\"} %uA\n"
        "payments_risk_errors_total{reason=\"signature\"} %uA\n"
        "# HELP payments_risk_request_duration_seconds Risk provider "
        "calls.\n"
        "# TYPE payments_risk_request_duration_seconds histogram\n",
        m->risk_decisions[0], m->risk_decisions[1], m->risk_decisions[2],
        m->risk_errors[NGX_HTTP_PAYMENTS_RISKE_TIMEOUT],
        m->risk_errors[NGX_HTTP_PAYMENTS_RISKE_NETWORK],
        m->risk_errors[NGX_HTTP_PAYMENTS_RISKE_STATUS],
        m->risk_errors[NGX_HTTP_PAYMENTS_RISKE_MALFORMED],
        m->risk_errors[NGX_HTTP_PAYMENTS_RISKE_SIGNATURE]);

    cum = 0;

    for (j = 0; j < NGX_HTTP_PAYMENTS_PSP_BUCKETS; j++) {
        cum += m->risk_latency[j];
        ngx_http_payments_out(
            "payments_risk_request_duration_seconds_bucket{le=\"%s\"} %ui\n",
            ngx_http_payments_psp_le[j], cum);
    }

    cum += m->risk_latency[NGX_HTTP_PAYMENTS_PSP_BUCKETS];
    ngx_http_payments_out(
        "payments_risk_request_duration_seconds_bucket{le=\"+Inf\"} %ui\n"
        "payments_risk_request_duration_seconds_sum %uA.%03uA\n"
        "payments_risk_request_duration_seconds_count %ui\n"
        "# HELP payments_risk_reviews_expired_total Reviews left undecided "
        "past their deadline, failed by the sweeper.\n"
        "# TYPE payments_risk_reviews_expired_total counter\n"
        "payments_risk_reviews_expired_total %uA\n"
        "# HELP payments_risk_after_payment_total Risk verdicts recorded "
        "after the payment (unchecked: no usable answer in time); money "
        "is never moved by them.\n"
        "# TYPE payments_risk_after_payment_total counter\n"
        "payments_risk_after_payment_total{verdict=\"allow\"} %uA\n"
        "payments_risk_after_payment_total{verdict=\"deny\"} %uA\n"
        "payments_risk_after_payment_total{verdict=\"review\"} %uA\n"
        "payments_risk_after_payment_total{verdict=\"unchecked\"} %uA\n",
        cum, m->risk_latency_ms_sum / 1000, m->risk_latency_ms_sum % 1000,
        cum, m->risk_reviews_expired, m->risk_after[0], m->risk_after[1],
        m->risk_after[2], m->risk_after[3]);

    /* the queries' waits for a connection, every shard's together */
    ngx_http_payments_out(
        "# HELP payments_db_wait_seconds Queries sent to PostgreSQL, by "
        "how long each waited for a connection of its pool.\n"
        "# TYPE payments_db_wait_seconds histogram\n");

    cum = 0;

    for (j = 0; j < NGX_HTTP_PAYMENTS_DBW_BUCKETS; j++) {
        cum += m->db_wait[j];
        ngx_http_payments_out(
            "payments_db_wait_seconds_bucket{le=\"%s\"} %ui\n",
            ngx_http_payments_dbw_le[j], cum);
    }

    cum += m->db_wait[NGX_HTTP_PAYMENTS_DBW_BUCKETS];
    ngx_http_payments_out(
        "payments_db_wait_seconds_bucket{le=\"+Inf\"} %ui\n"
        "payments_db_wait_seconds_sum %uA.%03uA\n"
        "payments_db_wait_seconds_count %ui\n",
        cum, m->db_wait_ms_sum / 1000, m->db_wait_ms_sum % 1000, cum);

    p = ngx_http_payments_limit_metrics(p, last);

    if (p == last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: /metrics did not fit in %uz bytes", size);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_payments_send(r, NGX_HTTP_OK,
                                  "text/plain; version=0.0.4", buf, p - buf);
}


/* one database: the gateway's counters and each worker's pool */

static u_char *
ngx_http_payments_metrics_db(u_char *p, u_char *last,
    ngx_http_payments_metrics_t *m)
{
    ngx_uint_t                    i;
    ngx_http_payments_db_slot_t  *w;

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

    return p;
}


/*
 * The gauges of each shard's background work, from..to: one series per
 * shard with its name when there are several, else the block's own field.
 * sps[i] NULL: the shard's slot went to another name, no series.
 */

static u_char *
ngx_http_payments_metrics_gauges(u_char *p, u_char *last,
    ngx_http_payments_metrics_t *m, ngx_http_payments_shard_t *shard,
    ngx_uint_t ns, ngx_http_payments_shard_stats_t **sps, ngx_uint_t from,
    ngx_uint_t to)
{
    ngx_uint_t  g, i;

    for (g = from; g <= to && g < NGX_HTTP_PAYMENTS_SG__MAX; g++) {
        ngx_http_payments_out("# HELP %s %s\n# TYPE %s gauge\n",
                              ngx_http_payments_gauge_names[g][0],
                              ngx_http_payments_gauge_names[g][1],
                              ngx_http_payments_gauge_names[g][0]);

        if (ns <= 1) {
            ngx_http_payments_out("%s %uA\n",
                ngx_http_payments_gauge_names[g][0],
                *(ngx_atomic_t *) ((u_char *) m
                                   + ngx_http_payments_shard_gauge_fields[g]));
            continue;
        }

        for (i = 0; i < ns; i++) {
            if (sps[i] != NULL) {
                ngx_http_payments_out("%s{shard=\"%V\"} %uA\n",
                                      ngx_http_payments_gauge_names[g][0],
                                      &shard[i].name, sps[i]->gauges[g]);
            }
        }
    }

    return p;
}


/*
 * Several shards: the same families, each series with its shard's name
 * (from nginx.conf, never from a request).  sps[i] NULL: the shard's slot
 * went to another name (a worker of an old cycle), no series.
 */

static u_char *
ngx_http_payments_metrics_shards_db(u_char *p, u_char *last,
    ngx_http_payments_shard_t *shard, ngx_uint_t ns,
    ngx_http_payments_shard_stats_t **sps)
{
    ngx_uint_t                         i, j, k;
    ngx_atomic_uint_t                  v;
    ngx_http_payments_shard_worker_t  *w;

    for (j = 0; j < NGX_HTTP_PAYMENTS_DB__MAX; j++) {
        ngx_http_payments_out("# HELP %s %s\n# TYPE %s counter\n",
                              ngx_http_payments_db_names[j][0],
                              ngx_http_payments_db_names[j][1],
                              ngx_http_payments_db_names[j][0]);

        for (i = 0; i < ns; i++) {
            if (sps[i] != NULL) {
                ngx_http_payments_out("%s{shard=\"%V\"} %uA\n",
                                      ngx_http_payments_db_names[j][0],
                                      &shard[i].name, sps[i]->db[j]);
            }
        }
    }

    ngx_http_payments_out(
        "# HELP payments_db_pool_connections Each worker's PostgreSQL "
        "connections.\n"
        "# TYPE payments_db_pool_connections gauge\n");

    for (i = 0; i < ns; i++) {
        for (k = 0; sps[i] != NULL && k < NGX_HTTP_PAYMENTS_MAX_WORKERS;
             k++)
        {
            w = &sps[i]->workers[k];

            if (w->pid == 0) {
                continue;
            }

            for (j = 0; j < 3; j++) {
                v = (j == 0) ? w->up : (j == 1) ? w->busy : w->size;
                ngx_http_payments_out(
                    "payments_db_pool_connections{worker=\"%ui\","
                    "shard=\"%V\",state=\"%s\"} %uA\n", k,
                    &shard[i].name, ngx_http_payments_pool_states[j], v);
            }
        }
    }

    ngx_http_payments_out(
        "# HELP payments_db_pool_waiting Each worker's queries waiting for "
        "a connection.\n"
        "# TYPE payments_db_pool_waiting gauge\n");

    for (i = 0; i < ns; i++) {
        for (k = 0; sps[i] != NULL && k < NGX_HTTP_PAYMENTS_MAX_WORKERS;
             k++)
        {
            w = &sps[i]->workers[k];

            if (w->pid != 0) {
                ngx_http_payments_out(
                    "payments_db_pool_waiting{worker=\"%ui\","
                    "shard=\"%V\"} %uA\n", k, &shard[i].name,
                    w->waiting);
            }
        }
    }

    ngx_http_payments_out(
        "# HELP payments_webhook_events_routed_total PSP events kept on "
        "each shard, by how they found it: their nonce's merchant, "
        "located by the PSP's ids, or kept on the home shard (no shard "
        "claimed them).\n"
        "# TYPE payments_webhook_events_routed_total counter\n");

    for (i = 0; i < ns; i++) {
        for (j = PAY_EVROUTE_NONCE; sps[i] != NULL && j <= PAY_EVROUTE_HOME;
             j++)
        {
            ngx_http_payments_out(
                "payments_webhook_events_routed_total{shard=\"%V\","
                "by=\"%s\"} %uA\n", &shard[i].name,
                pay_evroute_name((pay_evroute_e) j),
                sps[i]->routed[j - PAY_EVROUTE_NONCE]);
        }
    }

    return p;
}


/*
 * payments_shard lines: whether each shard is up (some worker's pool has a
 * connection) and its breaker (the most open of the workers': each worker
 * has its own), labelled by shard when there are several.
 */

static u_char *
ngx_http_payments_metrics_shards_state(u_char *p, u_char *last,
    ngx_http_payments_shard_t *shard, ngx_uint_t ns,
    ngx_http_payments_shard_stats_t **sps)
{
    u_char                            *label, *end;
    ngx_uint_t                         i, k, f;
    ngx_atomic_uint_t                  v;
    u_char                             lbuf[sizeof("{shard=\"\"}")
                                            + PAY_SHARD_NAME_MAX];
    ngx_http_payments_shard_worker_t  *w;

    static const char  *families[][3] = {
        { "payments_shard_up", "gauge",
          "1 while some worker's pool has a connection to the shard." },
        { "payments_db_breaker_state", "gauge",
          "The shard's database breaker, the most open of the workers' "
          "(each has its own): 0 closed, 1 open (its queries are refused "
          "at once, 503 store_unavailable), 2 half-open (the next query "
          "is the probe)." },
        { "payments_db_breaker_opens_total", "counter",
          "How often the shard's database breaker opened, over the "
          "workers." }
    };

    for (f = 0; f < 3; f++) {
        ngx_http_payments_out("# HELP %s %s\n# TYPE %s %s\n",
                              families[f][0], families[f][2],
                              families[f][0], families[f][1]);

        for (i = 0; i < ns; i++) {
            if (sps[i] == NULL) {
                continue;
            }

            v = 0;

            for (k = 0; f < 2 && k < NGX_HTTP_PAYMENTS_MAX_WORKERS; k++) {
                w = &sps[i]->workers[k];

                if (w->pid == 0) {
                    continue;
                }

                if (f == 0 && w->up > 0) {
                    v = 1;

                } else if (f == 1
                           && (w->breaker == PAY_BREAKER_OPEN
                               || (w->breaker == PAY_BREAKER_HALF_OPEN
                                   && v == PAY_BREAKER_CLOSED)))
                {
                    /* open over half-open over closed */
                    v = w->breaker;
                }
            }

            if (f == 2) {
                v = sps[i]->breaker_opens;
            }

            /* a label only when there are shards to tell apart */
            end = lbuf;
            if (ns > 1) {
                end = ngx_snprintf(lbuf, sizeof(lbuf), "{shard=\"%V\"}",
                                   &shard[i].name);
            }

            label = lbuf;
            ngx_http_payments_out("%s%*s %uA\n", families[f][0],
                                  (size_t) (end - label), label, v);
        }
    }

    return ngx_http_payments_metrics_directory(p, last);
}


/*
 * payments_shard lines: the directory the API keys find their shard by
 * (_shard.c), over every worker: its entries, the ids found on two shards,
 * and its look-ups by result.
 */

static u_char *
ngx_http_payments_metrics_directory(u_char *p, u_char *last)
{
    ngx_uint_t  i, entries, conflicts, lookups[4];

    static const char  *results[] = {
        "hit", "miss_found", "miss_none", "miss_unavailable"
    };

    ngx_http_payments_shard_dir_stats(&entries, &conflicts, lookups);

    ngx_http_payments_out(
        "# HELP payments_shard_directory_entries Merchants and API keys the "
        "shard directory holds.\n"
        "# TYPE payments_shard_directory_entries gauge\n"
        "payments_shard_directory_entries %ui\n"
        "# HELP payments_shard_directory_conflicts_total Ids found on two "
        "shards (each answered 503 until an operator fixes it).\n"
        "# TYPE payments_shard_directory_conflicts_total counter\n"
        "payments_shard_directory_conflicts_total %ui\n"
        "# HELP payments_shard_directory_lookups_total Look-ups of an API "
        "key's or a merchant's shard: hit (in the directory), miss_found, "
        "miss_none (no shard has it), miss_unavailable (a shard did not "
        "answer: 503).\n"
        "# TYPE payments_shard_directory_lookups_total counter\n",
        entries, conflicts);

    for (i = 0; i < 4; i++) {
        ngx_http_payments_out(
            "payments_shard_directory_lookups_total{result=\"%s\"} %ui\n",
            results[i], lookups[i]);
    }

    return p;
}
