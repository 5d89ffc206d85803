
/*
 * Copyright (C) ngx_payments authors
 *
 * The stuck-checkout sweeper.  A checkout whose PSP never sends the
 * webhook would stay EXECUTING for good; the sweeper asks the PSP.
 *
 * It runs from a timer, one sweeper per shard in the shard's worker (shard
 * i in worker i mod worker_processes; worker 0 for payments_database), and
 * only while this gateway holds that shard's sweeper lease
 * (pay_sweeper_lease), so one worker of one gateway sweeps each shard
 * however many gateways share it.  A round:
 *
 *   pay_sweeper_lease   take or renew the lease (owner: host, master pid
 *                       and the master's random instance id, so a
 *                       reload's new worker 0 keeps it and two masters
 *                       never share it, even with the same host name and
 *                       pid, as containers running nginx as pid 1 have);
 *   pay_sweeper_due     the checkouts EXECUTING past after=, not asked
 *                       about in the last retry=, oldest first;
 *   for each one, one at a time: the PSP's circuit breaker asked (open:
 *                       no call, noted "circuit open"), the dialect's
 *                       session look-up through the worker's libcurl
 *                       multi handle, its end told to the breaker as a
 *                       registration's is, then
 *   pay_sweeper_apply   a decided answer, applied as a verified webhook
 *                       would be (one transaction, the same ledger and
 *                       audit, source "sweeper"), or
 *   pay_sweeper_note    what the PSP said when nothing moved;
 *   then the paid checkouts whose saved method's event was lost, asked
 *                       for it, and those never found listed past alert=
 *                       (_sweeper_methods.c);
 *   then what needs a person (_sweeper_alerts.c): checkouts overdue,
 *                       manual-capture holds near or past their end, risk
 *                       reviews past their deadline;
 *   then the paid checkouts asked again (_risk_after.c);
 *   then the event inbox: its pending events applied again, those never
 *                       matched alerted, and with several shards those
 *                       another shard owns forwarded there
 *                       (_sweeper_inbox.c).
 *
 * This file is the round's driver: the timer, the lease, and the steps in
 * order (ngx_http_payments_sweep_steps); the look-ups are
 * _sweeper_lookups.c.  Each step reports back through
 * ngx_http_payments_sweep_step_done, and the services every step uses
 * (its queries, the lease kept mid-round, the round's end) are below them
 * all, in _sweeper_round.c: no step calls its driver or another step.
 *
 * Adyen's look-up needs the sessionResult its hosted page adds to the
 * shopper's way back (kept by pay_return_target).  A dialect that cannot ask
 * (Adyen when no shopper came back) fails the checkout once its session has
 * expired at the PSP, grace= later, unless a payment is under way: the PSP
 * answers so (PAY_LOOKUP_PENDING), or a signed PENDING event is on record
 * (the database then refuses the expiry).
 * Nothing here blocks: every step is a query or a fetch whose handler posts
 * the next one.  A round's memory is one pool, destroyed when it ends.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


#define NGX_HTTP_PAYMENTS_SWEEP_FIRST   1000    /* ms after start */


static void ngx_http_payments_sweep_round(ngx_event_t *ev);
static void ngx_http_payments_sweep_leased(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_sweep_resume(ngx_http_payments_sweeper_t *sw);
static char *ngx_http_payments_sweep_units(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf);


/*
 * The round's steps, in order, each in the file of its concern; each one
 * ends by ngx_http_payments_sweep_step_done (the next step) or
 * ngx_http_payments_sweep_end (the round stops there).
 */
typedef struct {
    ngx_http_payments_sweep_step_pt     run;
    unsigned                            leader:1;       /* the lease
                                                           holder's only */
    unsigned                            risk_after:1;   /* with a
                                                           payments_risk
                                                           after_payment=on */
} ngx_http_payments_sweep_step_t;

static const ngx_http_payments_sweep_step_t  ngx_http_payments_sweep_steps[] = {
    { ngx_http_payments_sweep_lookups, 1, 0 },      /* _sweeper_lookups.c */
    { ngx_http_payments_sweep_methods, 1, 0 },      /* _sweeper_methods.c */
    { ngx_http_payments_sweep_overdue, 0, 0 },      /* _sweeper_alerts.c */
    { ngx_http_payments_sweep_holds, 0, 0 },
    { ngx_http_payments_sweep_reviews, 0, 0 },
    { ngx_http_payments_sweep_risk_after, 1, 1 },   /* _risk_after.c */
    { ngx_http_payments_sweep_inbox, 1, 0 },        /* _sweeper_inbox.c */
    { ngx_http_payments_sweep_detaches, 1, 0 }      /* _sweeper_detach.c */
};


/* one per shard (pmcf->shards' order), set up in init_process in the
 * shard's worker only (sw->pmcf NULL elsewhere): gone with the process */
static ngx_http_payments_sweeper_t  *ngx_http_payments_sweepers;
static ngx_uint_t                    ngx_http_payments_nsweepers;

ngx_int_t
ngx_http_payments_sweeper_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf)
{
    size_t                        len;
    u_char                       *p;
    ngx_uint_t                    i, s;
    ngx_http_payments_psp_t      *psp;
    ngx_http_payments_shard_t    *shard;
    ngx_http_payments_sweeper_t  *sw, *first;

    ngx_http_payments_sweepers = NULL;
    ngx_http_payments_nsweepers = 0;

    if (!pmcf->sweeper.enable || pmcf->shards->nelts == 0) {
        return NGX_OK;
    }

    first = ngx_pcalloc(cycle->pool, pmcf->shards->nelts
                                     * sizeof(ngx_http_payments_sweeper_t));
    if (first == NULL) {
        return NGX_ERROR;
    }

    /* what every shard's sweeper shares is made in the first one */
    sw = first;

    /* the PSPs it can ask, as a text[] literal: their names are
     * [a-z0-9_-] (payments_psp), nothing to quote */
    psp = pmcf->psps->elts;
    len = sizeof("{}");

    for (i = 0; i < pmcf->psps->nelts; i++) {
        len += psp[i].name.len + 1;
    }

    sw->psps = ngx_pnalloc(cycle->pool, len);
    if (sw->psps == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) sw->psps;
    *p++ = '{';

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, psp[i].name.data, psp[i].name.len);
    }

    *p++ = '}';
    *p = '\0';

    /* those of them that can look an off-session charge up by its payment
     * id (the same length will do) */
    sw->payment_psps = ngx_pnalloc(cycle->pool, len);
    if (sw->payment_psps == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) sw->payment_psps;
    *p++ = '{';

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (psp[i].dl->payment_lookup == NULL) {
            continue;
        }

        if (p[-1] != '{') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, psp[i].name.data, psp[i].name.len);
    }

    *p++ = '}';
    *p = '\0';

    /* those whose session look-up names the method a paid session stored
     * (_sweeper_methods.c; the same length will do) */
    sw->method_psps = ngx_pnalloc(cycle->pool, len);
    if (sw->method_psps == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) sw->method_psps;
    *p++ = '{';

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (!psp[i].dl->method_lookup || psp[i].dl->session_lookup == NULL) {
            continue;
        }

        if (p[-1] != '{') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, psp[i].name.data, psp[i].name.len);
    }

    *p++ = '}';
    *p = '\0';

    /* those whose sessions a cancel cannot expire (adyen's): a checkout
     * failed here may still be paid there, so it is asked about until
     * its session's expiry (the same length will do) */
    sw->open_psps = ngx_pnalloc(cycle->pool, len);
    if (sw->open_psps == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) sw->open_psps;
    *p++ = '{';

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (psp[i].dl->session_expirable
            || psp[i].dl->session_lookup == NULL)
        {
            continue;
        }

        if (p[-1] != '{') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, psp[i].name.data, psp[i].name.len);
    }

    *p++ = '}';
    *p = '\0';

    /* and how long each one holds an authorization */
    sw->windows = ngx_pnalloc(cycle->pool,
                              2 + pmcf->psps->nelts * (NGX_INT64_LEN + 1));
    if (sw->windows == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) sw->windows;
    *p++ = '{';

    for (i = 0; i < pmcf->psps->nelts; i++) {
        p = ngx_sprintf(p, "%s%L", i ? "," : "", psp[i].dl->auth_window);
    }

    *p++ = '}';
    *p = '\0';

    /* and the currencies each counts in coarser units than ISO's */
    sw->units = ngx_http_payments_sweep_units(cycle->pool, pmcf);
    if (sw->units == NULL) {
        return NGX_ERROR;
    }

    /* the master's: the reload's new worker holds the same lease */
    (void) ngx_http_payments_instance_owner(cycle, (u_char *) sw->owner,
                                           sizeof(sw->owner));

    ngx_http_payments_sweepers = first;
    ngx_http_payments_nsweepers = pmcf->shards->nelts;
    shard = pmcf->shards->elts;

    /*
     * Shard s's sweeper runs in worker s mod worker_processes (its
     * directory poll's and housekeeping's too): each holds its own shard's
     * lease (the sweeper_lease row lives in each shard) and sweeps it
     * alone.  One shard (payments_database): worker 0, as ever.
     */
    for (s = 0; s < pmcf->shards->nelts; s++) {
        if (!ngx_http_payments_shard_mine(cycle, s)) {
            continue;
        }

        sw = &first[s];

        if (sw != first) {
            sw->psps = first->psps;
            sw->payment_psps = first->payment_psps;
            sw->method_psps = first->method_psps;
            sw->open_psps = first->open_psps;
            sw->windows = first->windows;
            sw->units = first->units;
            ngx_memcpy(sw->owner, first->owner, sizeof(sw->owner));
        }

        sw->pmcf = pmcf;
        sw->log = cycle->log;
        sw->shard = s;
        sw->shard_conf = pmcf->shards->nelts > 1 ? &shard[s] : NULL;

        sw->timer.handler = ngx_http_payments_sweep_round;
        sw->timer.data = sw;
        sw->timer.log = cycle->log;
        sw->timer.cancelable = 1;

        /* the look-ups' posted steps (_sweeper_lookups.c sets the
         * handler) */
        sw->next.data = sw;
        sw->next.log = cycle->log;

        sw->resume = ngx_http_payments_sweep_resume;

        ngx_add_timer(&sw->timer, NGX_HTTP_PAYMENTS_SWEEP_FIRST);
    }

    return NGX_OK;
}


/*
 * The PSPs' units where they are coarser than ISO 4217's (pay_psp_unit of
 * each one's dialect), as JSON for pay_holds_sweep: {"adyen":{"CVE":100,
 * "IDR":100},...}; "{}" when none.  A capture in flight whose amount is
 * not a multiple of its PSP's unit was never sent (its request cannot be
 * built), and is given up rather than hold a release for ever.  Names
 * are [a-z0-9_-] (payments_psp), codes capital letters: nothing to quote.
 * Made once, at the worker's start.
 */

static char *
ngx_http_payments_sweep_units(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf)
{
    char                     *units;
    size_t                    len, n, k;
    u_char                   *p, *first;
    int64_t                   unit;
    ngx_uint_t                i;
    const pay_currency_t     *cur;
    ngx_http_payments_psp_t  *psp;

    psp = pmcf->psps->elts;

    for (n = 0; pay_currency_at(n) != NULL; n++) { /* void */ }

    len = sizeof("{}");

    for (i = 0; i < pmcf->psps->nelts; i++) {
        len += psp[i].name.len + sizeof(",\"\":{}")
               + n * (sizeof(",\"XXX\":") + NGX_INT64_LEN);
    }

    units = ngx_pnalloc(pool, len);
    if (units == NULL) {
        return NULL;
    }

    p = (u_char *) units;
    *p++ = '{';

    for (i = 0; i < pmcf->psps->nelts; i++) {
        first = p;
        p = ngx_sprintf(p, "%s\"%V\":{", p[-1] == '{' ? "" : ",",
                        &psp[i].name);

        for (k = 0; (cur = pay_currency_at(k)) != NULL; k++) {
            unit = pay_psp_unit(psp[i].dialect, cur->code);

            if (unit > 1) {
                p = ngx_sprintf(p, "%s\"%s\":%L", p[-1] == '{' ? "" : ",",
                                cur->code, unit);
            }
        }

        if (p[-1] == '{') {
            p = first;              /* none coarser: not listed */
            continue;
        }

        *p++ = '}';
    }

    *p++ = '}';
    *p = '\0';

    return units;
}

void
ngx_http_payments_sweeper_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t                    s;
    ngx_http_payments_sweeper_t  *sw;

    for (s = 0; s < ngx_http_payments_nsweepers; s++) {
        sw = &ngx_http_payments_sweepers[s];

        if (sw->pmcf == NULL) {
            continue;
        }

        if (sw->timer.timer_set) {
            ngx_del_timer(&sw->timer);
        }

        if (sw->next.posted) {
            ngx_delete_posted_event(&sw->next);
        }

        ngx_http_payments_fetch_cancel(&sw->fetch);

        if (sw->pool) {
            ngx_destroy_pool(sw->pool);
            sw->pool = NULL;
        }

        ngx_http_payments_metrics_gauge(sw->shard_conf,
                                        NGX_HTTP_PAYMENTS_SG_SWEEPER_LEADER,
                                        0);
    }
}


static void
ngx_http_payments_sweep_round(ngx_event_t *ev)
{
    char                         *ttl;
    ngx_http_payments_sweeper_t  *sw = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    sw->pool = ngx_create_pool(4096, sw->log);
    if (sw->pool == NULL) {
        ngx_add_timer(&sw->timer, sw->pmcf->sweeper.interval);
        return;
    }

    /* the lease outlives three rounds and 2 s: a gateway that stops
     * sweeping leaves it to another within that */
    ttl = ngx_http_payments_num(sw->pool,
                                (int64_t) ((sw->pmcf->sweeper.interval * 3
                                            + 999) / 1000 + 2));
    if (ttl == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    sw->ttl = ttl;
    sw->params[0] = sw->owner;
    sw->params[1] = ttl;
    sw->state = NGX_HTTP_PAYMENTS_SWEEP_LEASE;
    sw->step = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper round, owner \"%s\"", sw->owner);

    if (ngx_http_payments_sweep_query(sw,
                                      "SELECT pay_sweeper_lease($1, $2)", 2,
                                      ngx_http_payments_sweep_leased)
        != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_leased(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_uint_t                    leader;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_lease") != NGX_OK
        || PQntuples(res) != 1)
    {
        /* not known to hold it: no look-ups this round */
        sw->step = 1;
        ngx_http_payments_sweep_resume(sw);
        return;
    }

    leader = (PQgetvalue(res, 0, 0)[0] == 't');

    if (leader != sw->leader && sw->shard_conf != NULL) {
        ngx_log_error(NGX_LOG_NOTICE, sw->log, 0,
                      leader ? "payments: sweeper: this gateway took the "
                               "sweeper lease of shard \"%V\" as \"%s\""
                             : "payments: sweeper: this gateway no longer "
                               "holds the sweeper lease of shard \"%V\" "
                               "(\"%s\")",
                      &sw->shard_conf->name, sw->owner);

    } else if (leader != sw->leader) {
        ngx_log_error(NGX_LOG_NOTICE, sw->log, 0,
                      leader ? "payments: sweeper: this gateway took the "
                               "sweeper lease as \"%s\""
                             : "payments: sweeper: this gateway (\"%s\") "
                               "no longer holds the sweeper lease",
                      sw->owner);
    }

    sw->leader = leader;
    sw->leased_at = ngx_current_msec;

    ngx_http_payments_metrics_gauge(sw->shard_conf,
                                    NGX_HTTP_PAYMENTS_SG_SWEEPER_LEADER,
                                    sw->leader);

    if (!sw->leader) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                       "payments: sweeper lease held by another gateway");
    }

    ngx_http_payments_sweep_resume(sw);
}


/* the round's next step that applies to this gateway, or its end */

static void
ngx_http_payments_sweep_resume(ngx_http_payments_sweeper_t *sw)
{
    const ngx_http_payments_sweep_step_t  *st;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    while (sw->step < sizeof(ngx_http_payments_sweep_steps)
                      / sizeof(ngx_http_payments_sweep_step_t))
    {
        st = &ngx_http_payments_sweep_steps[sw->step++];

        if ((st->leader && !sw->leader)
            || (st->risk_after && sw->pmcf->risk_after == NULL))
        {
            continue;
        }

        st->run(sw);
        return;
    }

    ngx_http_payments_sweep_end(sw);
}


