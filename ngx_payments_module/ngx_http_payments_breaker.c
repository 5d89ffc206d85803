
/*
 * Copyright (C) ngx_payments authors
 *
 * A circuit breaker per PSP, shared by every worker: a shared memory zone
 * ("payments_breakers") holds a table of slots, each a PSP's name and its
 * pay_breaker_t, moved under the zone's mutex by the core's state machine
 * (src/breaker.c).  The registration and money paths ask before each
 * attempt (ngx_http_payments_breaker_allow) and report each attempt's end;
 * so does the sweeper before and after each session look-up.
 *
 * Slots are found by the PSP's name, never by its position in the
 * configuration.  A reload keeps the block: every PSP still configured
 * keeps its slot and its state, whatever the order of the payments_psp
 * lines, and the old cycle's workers, which go on finishing their calls
 * after the reload, report to the slot of the PSP they called.  (A block
 * re-laid in the new order was indexed by the old workers with their old
 * positions: one PSP's failures opened another's breaker.)  One block kept
 * by name rather than a block per configuration: the breaker is about the
 * PSP, not about a configuration, so a reload neither forgets that a PSP
 * is down nor lets the old and the new workers keep two opinions of it.
 *
 * The table has room for twice NGX_HTTP_PAYMENTS_MAX_PSPS: the names of
 * the running configuration and of the one being loaded always fit.  A
 * name in neither is forgotten when its slot is needed (a worker of an
 * older cycle that still calls it finds no slot and calls without a
 * breaker); so the table never fills up across reloads.  Each worker
 * remembers its PSPs' slot numbers (psp->breaker_slot, set at init_zone)
 * and checks the name under the mutex before using one.
 *
 * A slot holds a breaker per API of the PSP: Adyen's Transfers API is on
 * another host than its Checkout API, and pay-outs failing there must not
 * shed the PSP's registrations (nor a Checkout outage its pay-outs).
 */


#include "ngx_http_payments_module.h"

#include <payments/breaker.h>


#define NGX_HTTP_PAYMENTS_BREAKER_SLOTS   (2 * NGX_HTTP_PAYMENTS_MAX_PSPS)


typedef struct {
    ngx_http_payments_slot_name_t   id;     /* first: a named slot */
    pay_breaker_t                   b;      /* PAY_PSP_API_MAIN */
    pay_breaker_t                   bt;     /* PAY_PSP_API_TRANSFERS: a host
                                               of its own, a breaker of its
                                               own */
    ngx_msec_t                      tls_at[2];      /* per API: when a TLS
                                               failure was last logged;
                                               0: none since a success */
    uint64_t                        tls_opens[2];   /* the breaker's opens
                                               then */
} ngx_http_payments_breaker_slot_t;


typedef struct {
    ngx_uint_t                         version;    /* the block's layout */
    ngx_http_payments_breaker_slot_t   slot[NGX_HTTP_PAYMENTS_BREAKER_SLOTS];
} ngx_http_payments_breakers_t;


/* zone->data: a configuration's PSPs and the block they are in */
typedef struct {
    ngx_http_payments_main_conf_t     *pmcf;
    ngx_http_payments_breakers_t      *sh;
} ngx_http_payments_breaker_ctx_t;


#define NGX_HTTP_PAYMENTS_BREAKER_VERSION                                     \
    (0x62726b32 ^ sizeof(ngx_http_payments_breakers_t))


static ngx_int_t ngx_http_payments_breaker_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_http_payments_breaker_slot_t *ngx_http_payments_breaker_slot(
    ngx_http_payments_breakers_t *sh, ngx_http_payments_psp_t *psp);
static ngx_http_payments_breakers_t *ngx_http_payments_breakers_get(
    ngx_slab_pool_t **shpool);


#if (NGX_DEBUG)
/* in pay_breaker_state_e order, for the debug log */
static const char  *ngx_http_payments_breaker_states[] = {
    "closed", "open", "half-open"
};
#endif


/* the zone of the cycle the worker runs (set when the worker starts) */
static ngx_shm_zone_t  *ngx_http_payments_breaker_shm;


ngx_int_t
ngx_http_payments_breaker_zone(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_str_t                         name;
    ngx_shm_zone_t                   *zone;
    ngx_http_payments_breaker_ctx_t  *ctx;

    if (pmcf->psps->nelts > NGX_HTTP_PAYMENTS_MAX_PSPS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d \"payments_psp\" are supported",
                           NGX_HTTP_PAYMENTS_MAX_PSPS);
        return NGX_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_breaker_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->pmcf = pmcf;

    ngx_str_set(&name, "payments_breakers");

    zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                 &ngx_http_payments_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_payments_breaker_init_zone;
    zone->data = ctx;
    zone->noreuse = 0;

    pmcf->breaker_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_breaker_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_uint_t                         i, j;
    ngx_slab_pool_t                   *shpool;
    ngx_http_payments_psp_t           *psp;
    ngx_http_payments_breakers_t      *sh;
    ngx_http_payments_breaker_ctx_t   *ctx, *octx = data;

    ctx = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    /* a reload: the running configuration's block, when laid out as this
     * code lays it (else a new one: the old cycle's workers keep theirs) */
    if (octx && octx->sh
        && octx->sh->version == NGX_HTTP_PAYMENTS_BREAKER_VERSION)
    {
        sh = octx->sh;

    } else {
        ngx_shmtx_lock(&shpool->mutex);
        sh = ngx_slab_calloc_locked(shpool,
                                    sizeof(ngx_http_payments_breakers_t));
        ngx_shmtx_unlock(&shpool->mutex);

        if (sh == NULL) {
            return NGX_ERROR;
        }

        sh->version = NGX_HTTP_PAYMENTS_BREAKER_VERSION;
        octx = NULL;
    }

    ctx->sh = sh;

    psp = ctx->pmcf->psps->elts;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < ctx->pmcf->psps->nelts; i++) {

        j = ngx_http_payments_slot_assign(sh->slot,
                sizeof(ngx_http_payments_breaker_slot_t),
                NGX_HTTP_PAYMENTS_BREAKER_SLOTS, &psp[i].name,
                ctx->pmcf->psps, octx ? octx->pmcf->psps : NULL);

        if (j == NGX_HTTP_PAYMENTS_BREAKER_SLOTS) {
            /* cannot happen: the two configurations have at most twice
             * NGX_HTTP_PAYMENTS_MAX_PSPS names; refused, never shared */
            ngx_shmtx_unlock(&shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                          "payments: no circuit breaker slot left for psp "
                          "\"%V\": restart nginx instead of reloading it",
                          &psp[i].name);
            return NGX_ERROR;
        }

        psp[i].breaker_slot = j;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


void
ngx_http_payments_breaker_init_process(ngx_shm_zone_t *zone)
{
    ngx_http_payments_breaker_shm = zone;
}


static ngx_http_payments_breakers_t *
ngx_http_payments_breakers_get(ngx_slab_pool_t **shpool)
{
    ngx_shm_zone_t                   *zone = ngx_http_payments_breaker_shm;
    ngx_http_payments_breaker_ctx_t  *ctx;

    if (zone == NULL || zone->data == NULL) {
        return NULL;
    }

    ctx = zone->data;
    *shpool = (ngx_slab_pool_t *) zone->shm.addr;

    return ctx->sh;
}


/*
 * The PSP's slot, under the mutex: the one init_zone gave it while it
 * still bears its name, else found by name; NULL when a later reload gave
 * it to another name (this worker's cycle is on its way out).
 */
static ngx_http_payments_breaker_slot_t *
ngx_http_payments_breaker_slot(ngx_http_payments_breakers_t *sh,
    ngx_http_payments_psp_t *psp)
{
    return ngx_http_payments_slot_find(sh->slot,
                                       sizeof(ngx_http_payments_breaker_slot_t),
                                       NGX_HTTP_PAYMENTS_BREAKER_SLOTS,
                                       &psp->name, &psp->breaker_slot);
}


static void
ngx_http_payments_breaker_conf(ngx_http_payments_psp_t *psp,
    pay_breaker_conf_t *c)
{
    c->threshold = (uint32_t) psp->breaker;
    c->open_ms = (int64_t) psp->breaker_open;

    /* a probe gets one attempt's time, then another may go */
    c->probe_ms = (int64_t) psp->timeout + 1000;
}


ngx_int_t
ngx_http_payments_breaker_allow(ngx_http_payments_psp_t *psp,
    ngx_uint_t *probe, ngx_msec_t *wait)
{
    return ngx_http_payments_breaker_allow_api(psp, PAY_PSP_API_MAIN, probe,
                                               wait);
}


void
ngx_http_payments_breaker_result(ngx_http_payments_psp_t *psp,
    ngx_uint_t success, ngx_uint_t probe)
{
    ngx_http_payments_breaker_result_api(psp, PAY_PSP_API_MAIN, success,
                                         probe);
}


void
ngx_http_payments_breaker_state(ngx_http_payments_psp_t *psp,
    ngx_uint_t *state, uint64_t *opens)
{
    ngx_http_payments_breaker_state_api(psp, PAY_PSP_API_MAIN, state, opens);
}


static pay_breaker_t *
ngx_http_payments_breaker_of(ngx_http_payments_breaker_slot_t *s,
    pay_psp_api_e api)
{
    return api == PAY_PSP_API_TRANSFERS ? &s->bt : &s->b;
}


ngx_int_t
ngx_http_payments_breaker_allow_api(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, ngx_uint_t *probe, ngx_msec_t *wait)
{
    int                                p, ok;
    int64_t                            w;
    ngx_slab_pool_t                   *shpool;
    pay_breaker_conf_t                 c;
    ngx_http_payments_breakers_t      *sh;
    ngx_http_payments_breaker_slot_t  *s;

    *probe = 0;
    *wait = 0;

    sh = ngx_http_payments_breakers_get(&shpool);

    /* no zone (the master, nginx -t), or a breaker that never opens:
     * calls go */
    if (sh == NULL || psp->breaker == 0) {
        return NGX_OK;
    }

    ngx_http_payments_breaker_conf(psp, &c);

    p = 0;
    w = 0;
    ok = 1;

    ngx_shmtx_lock(&shpool->mutex);

    s = ngx_http_payments_breaker_slot(sh, psp);
    if (s != NULL) {
        ok = pay_breaker_allow(ngx_http_payments_breaker_of(s, api), &c,
                               (int64_t) ngx_current_msec, &p, &w);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "payments: psp \"%V\"%s breaker: %s%s, wait %L ms",
                   &psp->name,
                   api == PAY_PSP_API_TRANSFERS ? " transfers" : "",
                   ok ? "allow" : "shed",
                   s == NULL ? " (no slot)" : p ? " (probe)" : "", w);

    *probe = p;
    *wait = (ngx_msec_t) w;

    return ok ? NGX_OK : NGX_DECLINED;
}


void
ngx_http_payments_breaker_result_api(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, ngx_uint_t success, ngx_uint_t probe)
{
    uint64_t                           opens, after;
    pay_breaker_t                     *b;
    ngx_slab_pool_t                   *shpool;
    pay_breaker_conf_t                 c;
    pay_breaker_state_e                before;
#if (NGX_DEBUG)
    uint32_t                           failures;
    pay_breaker_state_e                state;
#endif
    ngx_http_payments_breakers_t      *sh;
    ngx_http_payments_breaker_slot_t  *s;

    sh = ngx_http_payments_breakers_get(&shpool);

    if (sh == NULL || psp->breaker == 0) {
        return;
    }

    ngx_http_payments_breaker_conf(psp, &c);

    ngx_shmtx_lock(&shpool->mutex);

    s = ngx_http_payments_breaker_slot(sh, psp);
    if (s == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);
        return;
    }

    b = ngx_http_payments_breaker_of(s, api);
    before = b->state;
    opens = b->opens;
    pay_breaker_result(b, &c, (int) success, (int) probe,
                       (int64_t) ngx_current_msec);

    if (success) {
        /* the next TLS failure is news again */
        s->tls_at[api == PAY_PSP_API_TRANSFERS] = 0;
    }
    after = b->opens;
#if (NGX_DEBUG)
    state = b->state;
    failures = b->failures;
#endif

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "payments: psp \"%V\"%s breaker told %s%s: %s -> %s, "
                   "%uD failures in a row",
                   &psp->name,
                   api == PAY_PSP_API_TRANSFERS ? " transfers" : "",
                   success ? "success" : "failure",
                   probe ? " (probe)" : "",
                   ngx_http_payments_breaker_states[before],
                   ngx_http_payments_breaker_states[state], failures);

    if (after != opens) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "payments: psp \"%V\"%s: circuit open for %Mms after "
                      "%ui failed attempts in a row%s", &psp->name,
                      api == PAY_PSP_API_TRANSFERS
                      ? " (its transfers API)" : "",
                      psp->breaker_open, psp->breaker,
                      before == PAY_BREAKER_HALF_OPEN
                      ? " (the probe failed)" : "");

    } else if (before != PAY_BREAKER_CLOSED && success) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "payments: psp \"%V\"%s: circuit closed, the probe "
                      "succeeded", &psp->name,
                      api == PAY_PSP_API_TRANSFERS
                      ? " (its transfers API)" : "");
    }
}


ngx_uint_t
ngx_http_payments_breaker_tls_first(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api)
{
    ngx_uint_t                         i, first;
    pay_breaker_t                     *b;
    ngx_slab_pool_t                   *shpool;
    ngx_http_payments_breakers_t      *sh;
    ngx_http_payments_breaker_slot_t  *s;

    sh = ngx_http_payments_breakers_get(&shpool);
    if (sh == NULL) {
        return 1;
    }

    ngx_shmtx_lock(&shpool->mutex);

    s = ngx_http_payments_breaker_slot(sh, psp);
    if (s == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);
        return 1;
    }

    i = (api == PAY_PSP_API_TRANSFERS);
    b = ngx_http_payments_breaker_of(s, api);

    first = (s->tls_at[i] == 0
             || s->tls_opens[i] != b->opens
             || ngx_current_msec - s->tls_at[i] >= psp->breaker_open);

    if (first) {
        s->tls_at[i] = ngx_current_msec ? ngx_current_msec : 1;
        s->tls_opens[i] = b->opens;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return first;
}


void
ngx_http_payments_breaker_state_api(ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, ngx_uint_t *state, uint64_t *opens)
{
    pay_breaker_t                     *b;
    ngx_slab_pool_t                   *shpool;
    pay_breaker_conf_t                 c;
    ngx_http_payments_breakers_t      *sh;
    ngx_http_payments_breaker_slot_t  *s;

    *state = 0;
    *opens = 0;

    ngx_http_payments_breaker_conf(psp, &c);

    sh = ngx_http_payments_breakers_get(&shpool);

    if (sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);

    s = ngx_http_payments_breaker_slot(sh, psp);
    if (s != NULL) {
        b = ngx_http_payments_breaker_of(s, api);
        /* past its open time an open breaker lets the next call through
         * as the probe: half-open, as a caller finds it */
        *state = pay_breaker_state(b, &c, (int64_t) ngx_current_msec);
        *opens = b->opens;
    }

    ngx_shmtx_unlock(&shpool->mutex);
}
