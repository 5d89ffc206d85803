
/*
 * Copyright (C) ngx_payments authors
 *
 * GET /readyz (the load balancer's: 200 once the database answers with a
 * schema as new as this module's and takes writes) and, with
 * payments_shard lines, GET /readyz?shard=NAME and every shard asked at
 * once (doc/OPERATIONS.md, "Health and housekeeping").  One query, one
 * round trip: the schema's version, and whether the server is a standby
 * or read-only (a fenced primary answers, but refuses every write).
 */


#include "ngx_http_payments_module.h"

#include <payments/shard.h>
#include <payments/shard_health.h>


static void ngx_http_payments_readyz_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_readyz_shards(ngx_http_payments_ctx_t *ctx,
    ngx_str_t *name);
static void ngx_http_payments_readyz_shard_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_readyz_down(ngx_http_request_t *r,
    ngx_uint_t old, ngx_uint_t ro, ngx_uint_t index, ngx_str_t *name);


#define NGX_HTTP_PAYMENTS_LOGIN_REFUSED                                       \
    "PostgreSQL refuses the gateway's login; likely cause: "


#define NGX_HTTP_PAYMENTS_SCHEMA_OLD                                          \
    "the database schema is older than this module's: run payments-migrate "  \
    "of this release (doc/OPERATIONS.md, Upgrading)"


#define NGX_HTTP_PAYMENTS_READ_ONLY                                           \
    "the database takes no writes (a standby, or "                            \
    "default_transaction_read_only): the gateway opens its connections "      \
    "again, where target_session_attrs=read-write finds a writable server"


/* the schema's version, and 't' when the server takes no writes */
#define NGX_HTTP_PAYMENTS_READYZ_SQL                                          \
    "SELECT pay_schema_version(), pg_is_in_recovery() "                       \
    "OR current_setting('transaction_read_only') = 'on'"


/* 1 when the readiness row says the server takes no writes */

static ngx_uint_t
ngx_http_payments_readyz_read_only(PGresult *res)
{
    return PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
           && PQnfields(res) == 2 && !PQgetisnull(res, 0, 1)
           && ngx_strcmp(PQgetvalue(res, 0, 1), "t") == 0;
}


/* 1 when the database's schema is older than the one this module was built
 * for: pay_schema_version() is lower, or missing (it came with a later
 * migration than the database has); the alert at most once a minute */

static ngx_uint_t
ngx_http_payments_schema_old(ngx_http_request_t *r, PGresult *res)
{
    char           *state, db[16];
    ngx_int_t       have, want;
    static time_t   said;

    want = ngx_atoi((u_char *) NGX_HTTP_PAYMENTS_SCHEMA,
                    sizeof(NGX_HTTP_PAYMENTS_SCHEMA) - 1);

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
            return 0;
        }

        have = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));

        if (have == NGX_ERROR || have >= want) {
            return 0;
        }

        (void) ngx_snprintf((u_char *) db, sizeof(db), "%03i%Z", have);

    } else {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (state == NULL || ngx_strcmp(state, "42883") != 0) {
            return 0;
        }

        (void) ngx_cpystrn((u_char *) db, (u_char *) "unknown", sizeof(db));
    }

    if (ngx_time() - said >= 60) {
        said = ngx_time();
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: the database schema is %s, older than %s "
                      "that this module (" NGX_HTTP_PAYMENTS_VERSION ") was "
                      "built for: /readyz says 503 until payments-migrate "
                      "of this release has run", db,
                      NGX_HTTP_PAYMENTS_SCHEMA);
    }

    return 1;
}


ngx_int_t
ngx_http_payments_readyz(ngx_http_payments_ctx_t *ctx)
{
    ngx_str_t            name;
    ngx_http_request_t  *r = ctx->request;

    ngx_str_null(&name);

    /* several shards, or one asked about: each shard's own answer */
    if (ngx_http_arg(r, (u_char *) "shard", 5, &name) == NGX_OK
        || ctx->pmcf->shards->nelts > 1)
    {
        return ngx_http_payments_readyz_shards(ctx, &name);
    }

    /* one database: {"status":"ready"}, or 503 */
    if (ngx_http_payments_query(ctx, NGX_HTTP_PAYMENTS_READYZ_SQL, 0,
                                ngx_http_payments_readyz_done)
        != NGX_OK)
    {
        ngx_http_payments_readyz_done(&ctx->query, NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_payments_readyz_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_uint_t                old, ro;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    old = (res != NULL && ngx_http_payments_schema_old(r, res));
    ro = (res != NULL && ngx_http_payments_readyz_read_only(res));

    if (old || ro || res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_payments_readyz_down(r, old, ro, 0, NULL);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json",
                                   (u_char *) "{\"status\":\"ready\"}\n",
                                   sizeof("{\"status\":\"ready\"}\n") - 1));
}


/*
 * /readyz over shards (doc/plans/shards.md, "Blast radius"): one query to
 * each shard's own pool, in parallel, each bounded by its shard's
 * timeout= and answered at once when its breaker is open.  Several
 * shards: 200 while at least one is ready (answers, and takes writes),
 * with each shard's state; ?shard=NAME: that shard alone, 200 or 503
 * (with why, when known: read-only among them).
 */

typedef struct ngx_http_payments_readyz_s  ngx_http_payments_readyz_t;

typedef struct {
    ngx_http_payments_pg_query_t    q;
    ngx_http_payments_readyz_t     *all;
    ngx_uint_t                      index;      /* in pmcf->shards */
    pay_shard_health_e              state;
    ngx_uint_t                      old;        /* an older schema */
} ngx_http_payments_readyz_probe_t;

struct ngx_http_payments_readyz_s {
    ngx_http_request_t                 *request;
    ngx_http_payments_readyz_probe_t   *probes;
    ngx_uint_t                          n;
    ngx_uint_t                          pending;
    ngx_uint_t                          one;    /* ?shard= */
};


static void ngx_http_payments_readyz_answer(ngx_http_payments_readyz_t *rz);


/* the request has gone: its queries are forgotten (as _router.c's) */
static void
ngx_http_payments_readyz_gone(void *data)
{
    ngx_http_payments_pg_cancel(data);
}


static ngx_int_t
ngx_http_payments_readyz_shards(ngx_http_payments_ctx_t *ctx,
    ngx_str_t *name)
{
    ngx_uint_t                         i, n;
    ngx_pool_cleanup_t                *cln;
    ngx_http_request_t                *r = ctx->request;
    ngx_http_payments_shard_t         *shard;
    ngx_http_payments_readyz_t        *rz;
    ngx_http_payments_readyz_probe_t  *pr;

    shard = ctx->pmcf->shards->elts;
    n = ctx->pmcf->shards->nelts;

    rz = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_readyz_t));
    if (rz == NULL) {
        goto failed;
    }

    rz->request = r;
    rz->probes = ngx_pcalloc(r->pool,
                             (n ? n : 1)
                             * sizeof(ngx_http_payments_readyz_probe_t));
    if (rz->probes == NULL) {
        goto failed;
    }

    if (name->data != NULL) {
        /* a name from the query string: only ever compared */
        for (i = 0; i < n; i++) {
            if (shard[i].name.len == name->len
                && ngx_strncmp(shard[i].name.data, name->data, name->len)
                   == 0)
            {
                break;
            }
        }

        if (i == n) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_NOT_FOUND, 0,
                                           "no shard of that name"));
            return NGX_OK;
        }

        rz->one = 1;
        rz->n = 1;
        rz->probes[0].index = i;

    } else {
        rz->n = n;

        for (i = 0; i < n; i++) {
            rz->probes[i].index = i;
        }
    }

    rz->pending = rz->n;

    for (i = 0; i < rz->n; i++) {
        pr = &rz->probes[i];
        pr->all = rz;
        pr->state = PAY_SHARD_UNAVAILABLE;

        /* the request may go while its queries wait or run */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            goto failed;
        }

        cln->handler = ngx_http_payments_readyz_gone;
        cln->data = &pr->q;

        pr->q.sql = NGX_HTTP_PAYMENTS_READYZ_SQL;
        pr->q.nparams = 0;
        pr->q.values = NULL;
        pr->q.handler = ngx_http_payments_readyz_shard_done;
        pr->q.data = pr;
        pr->q.log = r->connection->log;
        pr->q.shard = pr->index;
    }

    for (i = 0; i < rz->n; i++) {
        pr = &rz->probes[i];

        if (ngx_http_payments_pg_send(&pr->q) != NGX_OK) {
            /* down, or its breaker open: unavailable at once */
            rz->pending--;
        }
    }

    if (rz->pending == 0) {
        ngx_http_payments_readyz_answer(rz);
    }

    return NGX_OK;

failed:

    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    return NGX_ERROR;
}


static void
ngx_http_payments_readyz_shard_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_uint_t                         ok;
    ngx_http_payments_readyz_probe_t  *pr = q->data;
    ngx_http_payments_readyz_t        *rz = pr->all;

    if (res != NULL && ngx_http_payments_schema_old(rz->request, res)) {
        pr->old = 1;
    }

    ok = (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK
          && PQntuples(res) == 1 && PQnfields(res) == 2);

    pr->state = pay_shard_health_of((int) ok, (int) pr->old,
                                    ok ? PQgetvalue(res, 0, 1) : NULL);

    if (--rz->pending == 0) {
        ngx_http_payments_readyz_answer(rz);
    }
}


static void
ngx_http_payments_readyz_answer(ngx_http_payments_readyz_t *rz)
{
    u_char                            *body;
    long                               len;
    size_t                            *lens;
    ngx_uint_t                         i;
    const char                       **names;
    pay_shard_health_e                *st;
    ngx_http_request_t                *r = rz->request;
    ngx_http_payments_ctx_t           *ctx;
    ngx_http_payments_shard_t         *shard;
    ngx_http_payments_readyz_probe_t  *pr;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);
    shard = ctx->pmcf->shards->elts;

    names = ngx_pcalloc(r->pool, rz->n * sizeof(char *));
    lens = ngx_pcalloc(r->pool, rz->n * sizeof(size_t));
    st = ngx_pcalloc(r->pool, rz->n * sizeof(pay_shard_health_e));
    body = ngx_pnalloc(r->pool, 64 + rz->n * (PAY_SHARD_NAME_MAX + 20));
    if (names == NULL || lens == NULL || st == NULL || body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < rz->n; i++) {
        pr = &rz->probes[i];
        names[i] = (const char *) shard[pr->index].name.data;
        lens[i] = shard[pr->index].name.len;
        st[i] = pr->state;
    }

    if (pay_shard_health_any(st, rz->n)) {
        len = pay_shard_health_json(names, lens, st, rz->n, (char *) body,
                                    64 + rz->n * (PAY_SHARD_NAME_MAX + 20));
        if (len < 0) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                       "application/json", body,
                                       (size_t) len));
        return;
    }

    /* one shard asked about: why it is down, when that is known */
    if (!rz->one) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    pr = &rz->probes[0];
    ngx_http_payments_readyz_down(r, pr->old,
                                  pr->state == PAY_SHARD_READ_ONLY,
                                  pr->index, &shard[pr->index].name);
}


/*
 * 503 store_unavailable, with why when that is known: the schema is older
 * than this module's (Retry-After 10), the server takes no writes (ro), or
 * PostgreSQL refuses the login (the hint); "shard NAME: " first when one
 * shard was asked about (the texts speak of one database).
 */

static void
ngx_http_payments_readyz_down(ngx_http_request_t *r, ngx_uint_t old,
    ngx_uint_t ro, ngx_uint_t index, ngx_str_t *name)
{
    u_char      *detail, *p;
    const char  *hint, *what;

    if (old) {
        if (ngx_http_payments_add_header(r, "Retry-After", "10") != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_STORE_UNAVAILABLE, 0,
                                       NGX_HTTP_PAYMENTS_SCHEMA_OLD));
        return;
    }

    if (ro) {
        what = NGX_HTTP_PAYMENTS_READ_ONLY;
        hint = "";

    } else {
        what = NGX_HTTP_PAYMENTS_LOGIN_REFUSED;
        hint = ngx_http_payments_pg_down_hint(index);

        if (hint == NULL) {
            ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
            return;
        }
    }

    detail = ngx_pnalloc(r->pool, sizeof("shard : ")
                                  + (name != NULL ? name->len : 0)
                                  + ngx_strlen(what) + 1
                                  + ngx_strlen(hint));
    if (detail == NULL
        || ngx_http_payments_add_header(r, "Retry-After", "1") != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = (name != NULL) ? ngx_sprintf(detail, "shard %V: ", name) : detail;
    (void) ngx_sprintf(p, "%s%s%Z", what, hint);

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_STORE_UNAVAILABLE, 0,
                                   (char *) detail));
}
