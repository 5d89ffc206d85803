
/*
 * Copyright (C) ngx_payments authors
 *
 * Merchant shards: the directory (doc/plans/shards.md, 1.2).  A shared
 * zone, made from payments_shard_directory when payments_shard lines are
 * used, holds the core's table (pay_dir_*: merchant -> shard, key id ->
 * merchant) under the zone's mutex, and the table of the shards' names
 * its entries point into, so that a reload that reorders the
 * payments_shard lines keeps every entry right.  Shard i's worker (i mod
 * worker_processes) polls it (pay_directory): all of it first, then what
 * is new since the last answer less five minutes.  The directory is a
 * hint: each shard's own rows stay the authority.  Without an entry, the
 * request asks every shard at once (the fan-out).
 *
 * With payments_database there is no zone: nothing here runs and nothing
 * is looked up.
 */


#include "ngx_http_payments_module.h"

#include <payments/shard.h>


#define NGX_HTTP_PAYMENTS_DIR_VERSION                                         \
    (0x64697231 ^ sizeof(pay_dir_slot_t) ^ (PAY_SHARD_MAX << 8))

/* rows put under one hold of the mutex: a full load does not stall the
 * other workers' look-ups for its whole length */
#define NGX_HTTP_PAYMENTS_DIR_BATCH  1024

/* ms between tries of a shard's first load */
#define NGX_HTTP_PAYMENTS_DIR_FIRST_RETRY  250


typedef struct {
    ngx_uint_t          version;
    ngx_uint_t          nslots;
    ngx_uint_t          nnames;
    u_char              names[PAY_SHARD_MAX][PAY_SHARD_NAME_MAX + 1];
    ngx_atomic_t        entries;
    ngx_atomic_t        conflicts;
    ngx_atomic_t        lookups[4];
    pay_dir_slot_t      slot[1];
} ngx_http_payments_dir_t;


/* zone->data: a configuration's shards and their places in the names */
typedef struct {
    ngx_http_payments_main_conf_t  *pmcf;
    ngx_http_payments_dir_t        *sh;
    ngx_uint_t                      zidx[PAY_SHARD_MAX];   /* shard -> name */
    ngx_uint_t                      cidx[PAY_SHARD_MAX];   /* name -> shard,
                                                   or SHARD_NONE */
} ngx_http_payments_dir_ctx_t;


/* a shard's poll, in its worker */
typedef struct {
    ngx_event_t                     timer;
    ngx_http_payments_pg_query_t    query;
    ngx_uint_t                      shard;
    ngx_uint_t                      loaded;
    const char                     *params[1];
    char                            since[64];
} ngx_http_payments_dir_poll_t;


typedef struct ngx_http_payments_fan_state_s  ngx_http_payments_fan_state_t;

typedef struct {
    ngx_http_payments_pg_query_t    q;
    ngx_http_payments_fan_state_t  *st;
    ngx_uint_t                      shard;
} ngx_http_payments_fan_t;

struct ngx_http_payments_fan_state_s {
    ngx_http_payments_ctx_t        *ctx;
    ngx_http_payments_fan_t        *fan;
    ngx_uint_t                      n;
    ngx_uint_t                      pending;
    ngx_uint_t                      found;      /* how many said "here" */
    ngx_uint_t                      shard;      /* the last that did */
    ngx_uint_t                      unavailable;
    ngx_uint_t                      lookup;     /* a directory look-up's:
                                                   counted */
    ngx_http_payments_fan_answer_pt answer;
    ngx_http_payments_fan_done_pt   done;
    void                          (*next)(ngx_http_payments_ctx_t *ctx);
    const char                     *merchant;  /* of_merchant's */
};


static ngx_int_t ngx_http_payments_dir_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_payments_dir_name(ngx_http_payments_dir_t *sh,
    ngx_str_t *name);
static ngx_http_payments_dir_ctx_t *ngx_http_payments_dir_get(
    ngx_slab_pool_t **shpool);
static void ngx_http_payments_dir_poll(ngx_event_t *ev);
static ngx_msec_t ngx_http_payments_dir_after(
    ngx_http_payments_dir_poll_t *p, ngx_http_payments_dir_ctx_t *dc);
static void ngx_http_payments_dir_polled(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_uint_t ngx_http_payments_dir_put(ngx_http_payments_dir_ctx_t *dc,
    char kind, const char *id, const char *merchant, ngx_uint_t shard,
    ngx_log_t *log);
static void ngx_http_payments_fan_answered(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_fan_end(ngx_http_payments_fan_state_t *st);
static void ngx_http_payments_fan_gone(void *data);
static ngx_int_t ngx_http_payments_merchant_here(
    ngx_http_payments_ctx_t *ctx, ngx_uint_t shard, PGresult *res);
static void ngx_http_payments_merchant_found(
    ngx_http_payments_fan_state_t *st, ngx_http_payments_fan_e outcome);
static ngx_int_t ngx_http_payments_fan_go(ngx_http_payments_ctx_t *ctx,
    const char *sql, int nparams, ngx_http_payments_fan_answer_pt answer,
    ngx_http_payments_fan_done_pt done,
    void (*next)(ngx_http_payments_ctx_t *ctx), const char *merchant,
    ngx_uint_t lookup);


/* the zone of the cycle the worker runs (set when the worker starts) */
static ngx_shm_zone_t                 *ngx_http_payments_dir_shm;
static ngx_http_payments_dir_poll_t   *ngx_http_payments_dir_polls;


ngx_int_t
ngx_http_payments_shard_dir_zone(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_str_t                     name;
    ngx_shm_zone_t               *zone;
    ngx_http_payments_dir_ctx_t  *ctx;

    /* payments_database: one shard, nothing to look up */
    if (pmcf->conninfo.len || pmcf->shards->nelts == 0) {
        return NGX_OK;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_dir_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->pmcf = pmcf;

    ngx_str_set(&name, "payments_shard_directory");

    zone = ngx_shared_memory_add(cf, &name, pmcf->shard_dir_size,
                                 &ngx_http_payments_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_payments_dir_init_zone;
    zone->data = ctx;
    zone->noreuse = 0;

    pmcf->shard_dir_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_dir_init_zone(ngx_shm_zone_t *zone, void *data)
{
    size_t                        avail, bytes;
    ngx_int_t                     z;
    ngx_uint_t                    i, nslots;
    ngx_slab_pool_t              *shpool;
    ngx_http_payments_dir_t      *sh;
    ngx_http_payments_shard_t    *shard;
    ngx_http_payments_dir_ctx_t  *ctx, *octx = data;

    ctx = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    sh = NULL;

    /* a reload: the running configuration's table, when laid out as this
     * code lays it and with room for this configuration's names */
    if (octx && octx->sh
        && octx->sh->version == NGX_HTTP_PAYMENTS_DIR_VERSION)
    {
        sh = octx->sh;
    }

    if (sh == NULL) {
        /* what the slab allocator leaves of the zone, as whole pages */
        avail = zone->shm.size - sizeof(ngx_slab_pool_t) - 8 * ngx_pagesize;
        bytes = avail / (ngx_pagesize + sizeof(ngx_slab_page_t))
                * ngx_pagesize;
        nslots = (bytes - sizeof(ngx_http_payments_dir_t))
                 / sizeof(pay_dir_slot_t) + 1;

        ngx_shmtx_lock(&shpool->mutex);

        while (nslots > 64) {
            sh = ngx_slab_calloc_locked(shpool,
                                        sizeof(ngx_http_payments_dir_t)
                                        + (nslots - 1)
                                          * sizeof(pay_dir_slot_t));
            if (sh != NULL) {
                break;
            }

            nslots -= nslots / 16;
        }

        ngx_shmtx_unlock(&shpool->mutex);

        if (sh == NULL) {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                          "payments: the shard directory's zone is too "
                          "small");
            return NGX_ERROR;
        }

        sh->version = NGX_HTTP_PAYMENTS_DIR_VERSION;
        sh->nslots = nslots;
    }

    ctx->sh = sh;

    for (i = 0; i < PAY_SHARD_MAX; i++) {
        ctx->cidx[i] = NGX_HTTP_PAYMENTS_SHARD_NONE;
    }

    shard = ctx->pmcf->shards->elts;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < ctx->pmcf->shards->nelts; i++) {
        z = ngx_http_payments_dir_name(sh, &shard[i].name);

        if (z == NGX_ERROR) {
            ngx_shmtx_unlock(&shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                          "payments: the shard directory has no room for "
                          "the name of shard \"%V\" (%d names since nginx "
                          "started): restart nginx instead of reloading it",
                          &shard[i].name, PAY_SHARD_MAX);
            return NGX_ERROR;
        }

        ctx->zidx[i] = (ngx_uint_t) z;
        ctx->cidx[z] = i;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


/* the index of a shard's name in the zone's table, added if new; NGX_ERROR
 * when the table is full.  Under the mutex. */
static ngx_int_t
ngx_http_payments_dir_name(ngx_http_payments_dir_t *sh, ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < sh->nnames; i++) {
        if (ngx_strlen(sh->names[i]) == name->len
            && ngx_strncmp(sh->names[i], name->data, name->len) == 0)
        {
            return i;
        }
    }

    if (sh->nnames == PAY_SHARD_MAX || name->len > PAY_SHARD_NAME_MAX) {
        return NGX_ERROR;
    }

    ngx_memcpy(sh->names[sh->nnames], name->data, name->len);
    sh->names[sh->nnames][name->len] = '\0';

    return sh->nnames++;
}


static ngx_http_payments_dir_ctx_t *
ngx_http_payments_dir_get(ngx_slab_pool_t **shpool)
{
    ngx_shm_zone_t  *zone = ngx_http_payments_dir_shm;

    if (zone == NULL || zone->data == NULL) {
        return NULL;
    }

    *shpool = (ngx_slab_pool_t *) zone->shm.addr;

    return zone->data;
}


ngx_uint_t
ngx_http_payments_shard_dir_on(void)
{
    return ngx_http_payments_dir_shm != NULL;
}


/*
 * The worker's part: the zone its cycle made, and the polls of the shards
 * that are its own (shard i in worker i mod worker_processes, as the
 * background work of each shard will be).
 */
ngx_int_t
ngx_http_payments_shard_init_process(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_int_t                      workers;
    ngx_uint_t                     i;
    ngx_core_conf_t               *ccf;
    ngx_http_payments_dir_poll_t  *p;

    ngx_http_payments_dir_shm = pmcf->shard_dir_zone;
    ngx_http_payments_dir_polls = NULL;

    if (pmcf->shard_dir_zone == NULL) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    workers = (ccf != NULL && ccf->worker_processes > 0)
              ? ccf->worker_processes : 1;

    p = ngx_pcalloc(cycle->pool, pmcf->shards->nelts
                                 * sizeof(ngx_http_payments_dir_poll_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_payments_dir_polls = p;

    for (i = 0; i < pmcf->shards->nelts; i++) {
        p[i].shard = i;

        if (i % (ngx_uint_t) workers != ngx_worker) {
            continue;
        }

        ngx_cpystrn((u_char *) p[i].since, (u_char *) "-infinity",
                    sizeof(p[i].since));
        ngx_http_payments_timer_data(&p[i].timer);
        p[i].timer.handler = ngx_http_payments_dir_poll;
        p[i].timer.log = cycle->log;
        p[i].timer.cancelable = 1;

        /* at once: the pool connects meanwhile, and a poll it cannot take
         * yet is tried again after refresh= */
        ngx_add_timer(&p[i].timer, 1);
    }

    return NGX_OK;
}


static void
ngx_http_payments_dir_poll(ngx_event_t *ev)
{
    ngx_http_payments_pg_query_t  *q;
    ngx_http_payments_dir_poll_t  *p;
    ngx_http_payments_dir_ctx_t   *dc;
    ngx_slab_pool_t               *shpool;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    dc = ngx_http_payments_dir_get(&shpool);
    if (dc == NULL) {
        return;
    }

    p = (ngx_http_payments_dir_poll_t *)
            ((u_char *) ev - offsetof(ngx_http_payments_dir_poll_t, timer));
    q = &p->query;

    ngx_memzero(q, sizeof(ngx_http_payments_pg_query_t));
    p->params[0] = p->since;
    q->sql = "SELECT kind, id, merchant_id, "
             "(as_of - interval '5 minutes')::text "
             "FROM pay_directory($1::timestamptz)";
    q->nparams = 1;
    q->values = p->params;
    q->handler = ngx_http_payments_dir_polled;
    q->data = p;
    q->log = ev->log;
    q->shard = p->shard;

    /* an idle connection or the next round: never a request's place */
    q->background = 1;

    if (ngx_http_payments_pg_send(q) != NGX_OK) {
        ngx_add_timer(ev, ngx_http_payments_dir_after(p, dc));
    }
}


/* the next poll: after refresh=, or sooner while the first load has not
 * happened (the pool still connecting): until then every key of the
 * shard costs a fan-out */
static ngx_msec_t
ngx_http_payments_dir_after(ngx_http_payments_dir_poll_t *p,
    ngx_http_payments_dir_ctx_t *dc)
{
    if (!p->loaded) {
        return ngx_min(dc->pmcf->shard_dir_refresh,
                       NGX_HTTP_PAYMENTS_DIR_FIRST_RETRY);
    }

    return dc->pmcf->shard_dir_refresh;
}


static void
ngx_http_payments_dir_polled(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    int                             i, n, end;
    ngx_uint_t                      added, conflicts, level;
    ngx_slab_pool_t                *shpool;
    ngx_http_payments_shard_t      *shard;
    ngx_http_payments_dir_ctx_t    *dc;
    ngx_http_payments_dir_poll_t   *p = q->data;

    dc = ngx_http_payments_dir_get(&shpool);
    if (dc == NULL) {
        return;
    }

    shard = dc->pmcf->shards->elts;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || (PQntuples(res) && PQnfields(res) != 4))
    {
        if (res) {
            ngx_log_error(NGX_LOG_ERR, q->log, 0,
                          "payments: shard \"%V\": pay_directory: %s",
                          &shard[p->shard].name, PQresultErrorMessage(res));

            /* an answer, if a wrong one (a shard not migrated yet): the
             * next try after refresh=, not sooner */
            ngx_add_timer(&p->timer, dc->pmcf->shard_dir_refresh);
            return;
        }

        goto next;
    }

    n = PQntuples(res);
    added = 0;
    conflicts = 0;

    for (i = 0; i < n; i = end) {
        end = ngx_min(n, i + NGX_HTTP_PAYMENTS_DIR_BATCH);

        ngx_shmtx_lock(&shpool->mutex);

        for ( /* void */ ; i < end; i++) {
            switch (ngx_http_payments_dir_put(dc, PQgetvalue(res, i, 0)[0],
                                              PQgetvalue(res, i, 1),
                                              PQgetvalue(res, i, 2),
                                              p->shard, q->log))
            {
            case PAY_DIR_ADDED:
                added++;
                break;
            case PAY_DIR_CONFLICT:
                conflicts++;
                break;
            default:
                break;
            }
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }

    /* the first load at notice; then what adds, at info */
    level = p->loaded ? NGX_LOG_INFO : NGX_LOG_NOTICE;

    if (!p->loaded || added) {
        ngx_log_error(level, q->log, 0,
                      "payments: shard \"%V\" directory: %d entries read, "
                      "%ui new, %ui in conflict%s", &shard[p->shard].name,
                      n, added, conflicts,
                      p->loaded ? "" : " (its first load)");
    }

    p->loaded = 1;

    /* as_of less the overlap, as the database wrote it: rows whose time
     * was taken before a commit that came after the last look */
    if (n > 0 && (size_t) PQgetlength(res, 0, 3) < sizeof(p->since)) {
        ngx_cpystrn((u_char *) p->since, (u_char *) PQgetvalue(res, 0, 3),
                    sizeof(p->since));
    }

next:

    if (!(ngx_exiting || ngx_terminate || ngx_quit)) {
        ngx_add_timer(&p->timer, ngx_http_payments_dir_after(p, dc));
    }
}


/*
 * One entry put, under the mutex: a merchant on a shard (kind 'm', id the
 * merchant) or a key id's merchant (kind 'k').  A new conflict is an alert
 * and counted once; the entry then answers 503 until an operator fixes it
 * (the same merchant made on two shards) and restarts nginx: the zone, and
 * the entry with it, outlives a reload.  Returns pay_dir_put_e.
 */
static ngx_uint_t
ngx_http_payments_dir_put(ngx_http_payments_dir_ctx_t *dc, char kind,
    const char *id, const char *merchant, ngx_uint_t shard, ngx_log_t *log)
{
    size_t                    len;
    ngx_uint_t                was, rc;
    pay_dir_slot_t           *s;
    ngx_http_payments_dir_t  *sh = dc->sh;

    len = ngx_strlen(id);

    s = pay_dir_find(sh->slot, sh->nslots, kind, id, len);
    was = (s != NULL && s->conflict);

    if (kind == PAY_DIR_MERCHANT) {
        rc = pay_dir_put_merchant(sh->slot, sh->nslots, id, len,
                                  dc->zidx[shard]);

    } else if (kind == PAY_DIR_KEY) {
        rc = pay_dir_put_key(sh->slot, sh->nslots, id, len, merchant);

    } else {
        rc = PAY_DIR_INVALID;
    }

    switch (rc) {

    case PAY_DIR_ADDED:
        sh->entries++;
        break;

    case PAY_DIR_CONFLICT:
        if (!was) {
            sh->conflicts++;
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "payments: shard directory conflict: %s \"%s\" "
                          "is claimed by two shards (the last \"%s\"); its "
                          "requests are answered 503 until one shard's "
                          "row is removed and nginx is restarted (a "
                          "reload keeps the directory)",
                          kind == PAY_DIR_MERCHANT ? "merchant" : "API key",
                          id, sh->names[dc->zidx[shard]]);
        }
        break;

    case PAY_DIR_FULL:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "payments: the shard directory is full (%ui "
                      "entries): raise payments_shard_directory size=; "
                      "what is not in it is asked of every shard",
                      sh->entries);
        break;

    case PAY_DIR_INVALID:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "payments: shard directory: an entry out of format "
                      "from shard \"%s\", ignored",
                      sh->names[dc->zidx[shard]]);
        break;
    }

    return rc;
}


ngx_int_t
ngx_http_payments_shard_of_key(const char *key_id)
{
    int                           conflict;
    unsigned                      z;
    ngx_slab_pool_t              *shpool;
    ngx_http_payments_dir_ctx_t  *dc;

    dc = ngx_http_payments_dir_get(&shpool);
    if (dc == NULL) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&shpool->mutex);
    z = pay_dir_shard_of(dc->sh->slot, dc->sh->nslots, PAY_DIR_KEY, key_id,
                         ngx_strlen(key_id), &conflict);
    ngx_shmtx_unlock(&shpool->mutex);

    if (conflict) {
        return NGX_BUSY;
    }

    /* absent, or on a shard this configuration no longer has */
    if (z >= PAY_SHARD_MAX || dc->cidx[z] == NGX_HTTP_PAYMENTS_SHARD_NONE) {
        return NGX_DECLINED;
    }

    return (ngx_int_t) dc->cidx[z];
}


void
ngx_http_payments_shard_remember(const char *key_id, const char *merchant,
    ngx_uint_t shard, ngx_log_t *log)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_payments_dir_ctx_t  *dc;

    dc = ngx_http_payments_dir_get(&shpool);
    if (dc == NULL || shard >= dc->pmcf->shards->nelts) {
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);

    (void) ngx_http_payments_dir_put(dc, PAY_DIR_MERCHANT, merchant, NULL,
                                     shard, log);

    if (key_id) {
        (void) ngx_http_payments_dir_put(dc, PAY_DIR_KEY, key_id, merchant,
                                         shard, log);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


void
ngx_http_payments_shard_dir_count(ngx_uint_t result)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_payments_dir_ctx_t  *dc;

    dc = ngx_http_payments_dir_get(&shpool);
    if (dc == NULL || result > 3) {
        return;
    }

    (void) ngx_atomic_fetch_add(&dc->sh->lookups[result], 1);
}


void
ngx_http_payments_shard_dir_stats(ngx_uint_t *entries, ngx_uint_t *conflicts,
    ngx_uint_t lookups[4])
{
    ngx_uint_t                    i;
    ngx_slab_pool_t              *shpool;
    ngx_http_payments_dir_ctx_t  *dc;

    *entries = 0;
    *conflicts = 0;

    for (i = 0; i < 4; i++) {
        lookups[i] = 0;
    }

    dc = ngx_http_payments_dir_get(&shpool);
    if (dc == NULL) {
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);
    *entries = dc->sh->entries;
    *conflicts = dc->sh->conflicts;
    ngx_shmtx_unlock(&shpool->mutex);

    for (i = 0; i < 4; i++) {
        lookups[i] = dc->sh->lookups[i];
    }
}


/*
 * The fan-out: one query per shard, each on its shard's own pool, all at
 * once; each answer judged by the caller's answer(); done() once they are
 * all in (a shard that cannot take the query, or does not answer within
 * its timeout=, is unavailable).  The queries live in r->pool, each with
 * a cleanup that takes it back from the driver if the request goes first.
 */
ngx_int_t
ngx_http_payments_shard_fan(ngx_http_payments_ctx_t *ctx, const char *sql,
    int nparams, ngx_http_payments_fan_answer_pt answer,
    ngx_http_payments_fan_done_pt done)
{
    return ngx_http_payments_fan_go(ctx, sql, nparams, answer, done, NULL,
                                    NULL, 1);
}


/* the same for a question every shard answers for its own part (the
 * review queue): not a directory look-up, so not counted as one */
ngx_int_t
ngx_http_payments_shard_fan_all(ngx_http_payments_ctx_t *ctx,
    const char *sql, int nparams, ngx_http_payments_fan_answer_pt answer,
    ngx_http_payments_fan_done_pt done)
{
    return ngx_http_payments_fan_go(ctx, sql, nparams, answer, done, NULL,
                                    NULL, 0);
}


/* the fan-out; with next, of_merchant's (done unused) */
static ngx_int_t
ngx_http_payments_fan_go(ngx_http_payments_ctx_t *ctx, const char *sql,
    int nparams, ngx_http_payments_fan_answer_pt answer,
    ngx_http_payments_fan_done_pt done,
    void (*next)(ngx_http_payments_ctx_t *ctx), const char *merchant,
    ngx_uint_t lookup)
{
    ngx_uint_t                      i, n;
    ngx_pool_cleanup_t             *cln;
    ngx_http_request_t             *r = ctx->request;
    ngx_http_payments_fan_t        *fan;
    ngx_http_payments_fan_state_t  *st;

    n = ctx->pmcf->shards->nelts;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_fan_state_t));
    fan = ngx_pcalloc(r->pool, n * sizeof(ngx_http_payments_fan_t));
    if (st == NULL || fan == NULL) {
        return NGX_ERROR;
    }

    st->ctx = ctx;
    st->fan = fan;
    st->n = n;
    st->answer = answer;
    st->done = done;
    st->next = next;
    st->merchant = merchant;
    st->lookup = lookup;
    st->shard = NGX_HTTP_PAYMENTS_SHARD_NONE;

    for (i = 0; i < n; i++) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            /* nothing sent yet */
            return NGX_ERROR;
        }

        fan[i].st = st;
        fan[i].shard = i;
        fan[i].q.sql = sql;
        fan[i].q.nparams = nparams;
        fan[i].q.values = ctx->params;
        fan[i].q.handler = ngx_http_payments_fan_answered;
        fan[i].q.data = &fan[i];
        fan[i].q.log = r->connection->log;
        fan[i].q.shard = i;

        cln->handler = ngx_http_payments_fan_gone;
        cln->data = &fan[i].q;
    }

    ctx->fan = st;

    /* counted first: an answer cannot end the fan-out before every shard
     * was asked */
    st->pending = n + 1;

    for (i = 0; i < n; i++) {
        if (ngx_http_payments_pg_send(&fan[i].q) != NGX_OK) {
            st->unavailable++;
            st->pending--;
        }
    }

    if (--st->pending == 0) {
        ngx_http_payments_fan_end(st);
    }

    return NGX_OK;
}


static void
ngx_http_payments_fan_answered(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_int_t                       rc;
    ngx_http_payments_fan_t        *f = q->data;
    ngx_http_payments_fan_state_t  *st = f->st;

    if (res == NULL) {
        rc = NGX_ERROR;

    } else {
        rc = st->answer(st->ctx, f->shard, res);
    }

    if (rc == NGX_OK) {
        st->found++;
        st->shard = f->shard;

    } else if (rc == NGX_ERROR) {
        st->unavailable++;
    }

    if (--st->pending == 0) {
        ngx_http_payments_fan_end(st);
    }
}


static void
ngx_http_payments_fan_end(ngx_http_payments_fan_state_t *st)
{
    ngx_http_payments_ctx_t  *ctx = st->ctx;
    ngx_http_payments_fan_e   outcome;

    ctx->fan = NULL;

    if (st->found > 1) {
        outcome = NGX_HTTP_PAYMENTS_FAN_CONFLICT;

    } else if (st->found == 1) {
        outcome = NGX_HTTP_PAYMENTS_FAN_FOUND;
        ctx->shard = st->shard;

    } else if (st->unavailable) {
        outcome = NGX_HTTP_PAYMENTS_FAN_UNAVAILABLE;

    } else {
        outcome = NGX_HTTP_PAYMENTS_FAN_NONE;
    }

    if (st->lookup) {
        ngx_http_payments_shard_dir_count(
            outcome == NGX_HTTP_PAYMENTS_FAN_FOUND
            ? 1 : outcome == NGX_HTTP_PAYMENTS_FAN_NONE ? 2 : 3);
    }

    if (st->next) {
        ngx_http_payments_merchant_found(st, outcome);
        return;
    }

    st->done(ctx, outcome);
}


static void
ngx_http_payments_fan_gone(void *data)
{
    ngx_http_payments_pg_cancel(data);
}


void
ngx_http_payments_shard_of_merchant(ngx_http_payments_ctx_t *ctx,
    const char *merchant, void (*next)(ngx_http_payments_ctx_t *ctx))
{
    int                             conflict;
    unsigned                        z;
    ngx_slab_pool_t                *shpool;
    ngx_http_request_t             *r = ctx->request;
    ngx_http_payments_dir_ctx_t    *dc;

    dc = ngx_http_payments_dir_get(&shpool);

    /* payments_database: its one shard */
    if (dc == NULL) {
        ctx->shard = 0;
        next(ctx);
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);
    z = pay_dir_shard_of(dc->sh->slot, dc->sh->nslots, PAY_DIR_MERCHANT,
                         merchant, ngx_strlen(merchant), &conflict);
    ngx_shmtx_unlock(&shpool->mutex);

    if (conflict) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    if (z < PAY_SHARD_MAX && dc->cidx[z] != NGX_HTTP_PAYMENTS_SHARD_NONE) {
        ngx_http_payments_shard_dir_count(0);
        ctx->shard = dc->cidx[z];
        next(ctx);
        return;
    }

    ctx->params[0] = merchant;

    if (ngx_http_payments_fan_go(ctx, "SELECT pay_merchant_here($1)", 1,
                                 ngx_http_payments_merchant_here, NULL, next,
                                 merchant, 1)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static ngx_int_t
ngx_http_payments_merchant_here(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t shard, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "payments: pay_merchant_here: %s",
                      PQresultErrorMessage(res));
        return NGX_ERROR;
    }

    return (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
            && ngx_strcmp(PQgetvalue(res, 0, 0), "here") == 0)
           ? NGX_OK : NGX_DECLINED;
}


static void
ngx_http_payments_merchant_found(ngx_http_payments_fan_state_t *st,
    ngx_http_payments_fan_e outcome)
{
    ngx_http_payments_ctx_t  *ctx = st->ctx;
    ngx_http_request_t       *r = ctx->request;

    switch (outcome) {

    case NGX_HTTP_PAYMENTS_FAN_FOUND:
        ngx_http_payments_shard_remember(NULL, st->merchant, ctx->shard,
                                         r->connection->log);
        st->next(ctx);
        return;

    case NGX_HTTP_PAYMENTS_FAN_NONE:
        ctx->shard = NGX_HTTP_PAYMENTS_SHARD_NONE;
        st->next(ctx);
        return;

    case NGX_HTTP_PAYMENTS_FAN_CONFLICT:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: merchant \"%s\" is on two shards: its "
                      "requests are answered 503 until one shard's row is "
                      "removed", st->merchant);
        break;

    default:
        break;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
}
