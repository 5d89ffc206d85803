
/*
 * Copyright (C) ngx_payments authors
 *
 * A circuit breaker per PSP, shared by every worker: a shared memory zone
 * ("payments_breakers") holds one pay_breaker_t per payments_psp, in their
 * order, moved under the zone's mutex by the core's state machine
 * (src/breaker.c).  A reload with the same PSP list keeps the states; any
 * other list starts closed.  The registration path asks before each attempt
 * (ngx_http_payments_breaker_allow) and reports each attempt's end.
 */


#include "ngx_http_payments_module.h"

#include <payments/breaker.h>


typedef struct {
    ngx_uint_t          layout;
    pay_breaker_t       b[NGX_HTTP_PAYMENTS_MAX_PSPS];
} ngx_http_payments_breakers_t;


static ngx_int_t ngx_http_payments_breaker_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_http_payments_breakers_t *ngx_http_payments_breakers_get(
    ngx_slab_pool_t **shpool);


/* the zone of the cycle the worker runs (set at init_zone, read through
 * the PSP's conf) */
static ngx_shm_zone_t  *ngx_http_payments_breaker_shm;


ngx_int_t
ngx_http_payments_breaker_zone(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    uint32_t                  crc;
    ngx_str_t                 name;
    ngx_uint_t                i;
    ngx_shm_zone_t           *zone;
    ngx_http_payments_psp_t  *psp;

    ngx_str_set(&name, "payments_breakers");

    zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                 &ngx_http_payments_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    /* the layout: the PSPs' names in their order */
    psp = pmcf->psps->elts;
    ngx_crc32_init(crc);

    for (i = 0; i < pmcf->psps->nelts; i++) {
        ngx_crc32_update(&crc, psp[i].name.data, psp[i].name.len);
        ngx_crc32_update(&crc, (u_char *) "\n", 1);
    }

    ngx_crc32_final(crc);

    zone->init = ngx_http_payments_breaker_init_zone;
    zone->data = (void *) (uintptr_t) (crc ^ sizeof(pay_breaker_t));
    zone->noreuse = 0;

    pmcf->breaker_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_breaker_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_uint_t                     layout;
    ngx_slab_pool_t               *shpool;
    ngx_http_payments_breakers_t  *bs, *old = data;

    layout = (ngx_uint_t) (uintptr_t) zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (old) {
        /* another PSP list: the same block, every breaker closed (the old
         * cycle's workers may still read it; they see closed breakers) */
        if (old->layout != layout) {
            ngx_shmtx_lock(&shpool->mutex);
            ngx_memzero(old->b, sizeof(old->b));
            old->layout = layout;
            ngx_shmtx_unlock(&shpool->mutex);
        }

        zone->data = old;
        return NGX_OK;
    }

    ngx_shmtx_lock(&shpool->mutex);
    bs = ngx_slab_calloc_locked(shpool, sizeof(ngx_http_payments_breakers_t));
    ngx_shmtx_unlock(&shpool->mutex);

    if (bs == NULL) {
        return NGX_ERROR;
    }

    bs->layout = layout;
    zone->data = bs;

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
    ngx_shm_zone_t  *zone = ngx_http_payments_breaker_shm;

    if (zone == NULL || zone->data == NULL) {
        return NULL;
    }

    *shpool = (ngx_slab_pool_t *) zone->shm.addr;

    return zone->data;
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
    int                            p, ok;
    int64_t                        w;
    ngx_slab_pool_t               *shpool;
    pay_breaker_conf_t             c;
    ngx_http_payments_breakers_t  *bs;

    *probe = 0;
    *wait = 0;

    bs = ngx_http_payments_breakers_get(&shpool);

    /* no zone (nginx -t), or a breaker that never opens: calls go */
    if (bs == NULL || psp->breaker == 0
        || psp->index >= NGX_HTTP_PAYMENTS_MAX_PSPS)
    {
        return NGX_OK;
    }

    ngx_http_payments_breaker_conf(psp, &c);

    ngx_shmtx_lock(&shpool->mutex);
    ok = pay_breaker_allow(&bs->b[psp->index], &c,
                           (int64_t) ngx_current_msec, &p, &w);
    ngx_shmtx_unlock(&shpool->mutex);

    *probe = p;
    *wait = (ngx_msec_t) w;

    return ok ? NGX_OK : NGX_DECLINED;
}


void
ngx_http_payments_breaker_result(ngx_http_payments_psp_t *psp,
    ngx_uint_t success, ngx_uint_t probe)
{
    uint64_t                       opens;
    ngx_slab_pool_t               *shpool;
    pay_breaker_t                 *b;
    pay_breaker_conf_t             c;
    pay_breaker_state_e            before;
    ngx_http_payments_breakers_t  *bs;

    bs = ngx_http_payments_breakers_get(&shpool);

    if (bs == NULL || psp->breaker == 0
        || psp->index >= NGX_HTTP_PAYMENTS_MAX_PSPS)
    {
        return;
    }

    ngx_http_payments_breaker_conf(psp, &c);
    b = &bs->b[psp->index];

    ngx_shmtx_lock(&shpool->mutex);
    before = b->state;
    opens = b->opens;
    pay_breaker_result(b, &c, (int) success, (int) probe,
                       (int64_t) ngx_current_msec);
    ngx_shmtx_unlock(&shpool->mutex);

    if (b->opens != opens) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "payments: psp \"%V\": circuit open for %Mms after "
                      "%ui failed attempts in a row%s", &psp->name,
                      psp->breaker_open, psp->breaker,
                      before == PAY_BREAKER_HALF_OPEN
                      ? " (the probe failed)" : "");

    } else if (before != PAY_BREAKER_CLOSED && success) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "payments: psp \"%V\": circuit closed, the probe "
                      "succeeded", &psp->name);
    }
}


void
ngx_http_payments_breaker_state(ngx_uint_t psp, ngx_uint_t *state,
    uint64_t *opens)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_payments_breakers_t  *bs;

    *state = 0;
    *opens = 0;

    bs = ngx_http_payments_breakers_get(&shpool);

    if (bs == NULL || psp >= NGX_HTTP_PAYMENTS_MAX_PSPS) {
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);
    *state = bs->b[psp].state;
    *opens = bs->b[psp].opens;
    ngx_shmtx_unlock(&shpool->mutex);
}
