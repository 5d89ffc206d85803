
/*
 * Copyright (C) ngx_payments authors
 *
 * API-key authentication: the key's id and secret checked against
 * pay_auth's hash in constant time, and a per-worker cache of the answer
 * (payments_auth_cache, in the worker's cycle pool) so that a key is not
 * looked up on every request.  With payments_shard lines, the key's shard
 * comes from the directory (_shard.c), or from asking every shard for the
 * key's row when it has no entry; the worker then also keeps the keys no
 * shard knows for the same time, so that a stream of unknown keys does not
 * cost every shard a query each.
 */


#include "ngx_http_payments_module.h"

#include <payments/apikey.h>


/* prototypes */
static void ngx_http_payments_auth_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_auth_row(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *key_hash, const char *mode,
    const char *origins);
static ngx_int_t ngx_http_payments_auth_fan_answer(
    ngx_http_payments_ctx_t *ctx, ngx_uint_t shard, PGresult *res);
static void ngx_http_payments_auth_fan_done(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome);
static void ngx_http_payments_auth_forget(ngx_http_payments_ctx_t *ctx);


#define NGX_HTTP_PAYMENTS_AUTH_SQL                                            \
    "SELECT merchant_id, key_hash, mode, "                                    \
    "array_to_string(origins, ' ') FROM pay_auth($1, $2)"



/*
 * authentication: Authorization: Bearer mk_<mode>_<key id>_<secret>
 *
 * The key row is read by key id (pay_auth) and the SHA-256 of the whole key
 * is compared with the stored one in constant time.  A worker keeps the rows
 * it read for payments_auth_cache (default 5s): a revoked key or a disabled
 * merchant is refused everywhere within that time.  Only rows the database
 * returned are kept; a wrong secret is refused by the same comparison.
 */


#define NGX_HTTP_PAYMENTS_AUTH_SLOTS  1024

typedef struct {
    char         key_id[PAY_APIKEY_ID_LEN + 1];
    char         key_hash[65];
    char        *merchant;      /* ngx_alloc'd, with origins after it */
    char        *origins;       /* space-separated */
    ngx_msec_t   expires;
    ngx_uint_t   shard;         /* the key's merchant's */
    ngx_uint_t   unknown;       /* sharded: no shard has the key (merchant
                                   NULL) */
} ngx_http_payments_auth_entry_t;

/*
 * The cache is the worker's: allocated from its cycle's pool when it
 * starts, its strings freed by a cleanup of that pool.  A reload's new
 * workers start with an empty one; nothing outlives the cycle.
 */
struct ngx_http_payments_auth_cache_s {
    ngx_http_payments_auth_entry_t  slot[NGX_HTTP_PAYMENTS_AUTH_SLOTS];
};


static void ngx_http_payments_auth_cleanup(void *data);


ngx_int_t
ngx_http_payments_auth_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_payments_auth_cache_t   *cache;

    if (pmcf->auth_cache == 0) {
        return NGX_OK;
    }

    cache = ngx_pcalloc(cycle->pool, sizeof(ngx_http_payments_auth_cache_t));
    if (cache == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_payments_auth_cleanup;
    cln->data = cache;

    pmcf->auth = cache;

    return NGX_OK;
}


static void
ngx_http_payments_auth_cleanup(void *data)
{
    ngx_http_payments_auth_cache_t  *cache = data;

    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_PAYMENTS_AUTH_SLOTS; i++) {
        if (cache->slot[i].merchant) {
            ngx_free(cache->slot[i].merchant);
            cache->slot[i].merchant = NULL;
        }
    }
}


/* the slot of a key id; NULL when there is no cache */

static ngx_http_payments_auth_entry_t *
ngx_http_payments_auth_slot(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_payments_auth_cache_t  *cache = ctx->pmcf->auth;

    if (cache == NULL) {
        return NULL;
    }

    return &cache->slot[ngx_hash_key((u_char *) ctx->key_id,
                                     ngx_strlen(ctx->key_id))
                        % NGX_HTTP_PAYMENTS_AUTH_SLOTS];
}


static void
ngx_http_payments_auth_remember(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *key_hash, const char *origins)
{
    char                            *m;
    size_t                           mlen, olen;
    ngx_http_payments_auth_entry_t  *e;

    e = ngx_http_payments_auth_slot(ctx);

    if (e == NULL || ngx_strlen(key_hash) != 64) {
        return;
    }

    mlen = ngx_strlen(merchant);
    olen = ngx_strlen(origins);

    m = ngx_alloc(mlen + olen + 2, ctx->request->connection->log);
    if (m == NULL) {
        return;
    }

    ngx_memcpy(m, merchant, mlen + 1);
    ngx_memcpy(m + mlen + 1, origins, olen + 1);

    if (e->merchant) {
        ngx_free(e->merchant);
    }

    ngx_memcpy(e->key_id, ctx->key_id, sizeof(e->key_id));
    ngx_memcpy(e->key_hash, key_hash, 65);
    e->merchant = m;
    e->origins = m + mlen + 1;
    e->expires = ngx_current_msec + ctx->pmcf->auth_cache;
    e->shard = ctx->shard;
    e->unknown = 0;
}


/* sharded: no shard has the key (or its own shard refused it), for as long
 * as a known key is kept */
static void
ngx_http_payments_auth_forget(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_payments_auth_entry_t  *e;

    e = ngx_http_payments_auth_slot(ctx);

    if (e == NULL || !ngx_http_payments_shard_dir_on()) {
        return;
    }

    if (e->merchant) {
        ngx_free(e->merchant);
        e->merchant = NULL;
    }

    ngx_memcpy(e->key_id, ctx->key_id, sizeof(e->key_id));
    e->key_hash[0] = '\0';
    e->origins = NULL;
    e->expires = ngx_current_msec + ctx->pmcf->auth_cache;
    e->shard = NGX_HTTP_PAYMENTS_SHARD_NONE;
    e->unknown = 1;
}


/*
 * What a 401 says: enough for an integrator to fix what was sent.  A
 * well-formed key that is unknown, revoked, of the other mode or whose
 * secret is wrong gets one detail for all four, so that the answer never
 * tells which key ids exist.
 */
#define NGX_HTTP_PAYMENTS_AUTH_MISSING                                        \
    "no Authorization header: send the API key as "                           \
    "\"Authorization: Bearer mk_test_...\""
#define NGX_HTTP_PAYMENTS_AUTH_SCHEME                                         \
    "the Authorization header is not \"Bearer <API key>\""
#define NGX_HTTP_PAYMENTS_AUTH_MALFORMED                                      \
    "the bearer token is not an API key (mk_test_... or mk_live_..., as "    \
    "payments-merchant printed it)"
#define NGX_HTTP_PAYMENTS_AUTH_REFUSED                                        \
    "the API key is unknown, revoked or wrong; use an active key of the "    \
    "merchant (payments-merchant show lists them)"


static void
ngx_http_payments_unauthorized(ngx_http_request_t *r, const char *detail)
{
    if (ngx_http_payments_add_header(r, "WWW-Authenticate", "Bearer")
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_UNAUTHORIZED, 0, detail));
}


/* the key row is known: compare, take the merchant and its origins, go on */

static void
ngx_http_payments_authenticated(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *key_hash, const char *origins)
{
    ngx_http_request_t  *r = ctx->request;

    if (!pay_hash_equal(key_hash, ctx->key_hash)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: wrong secret for API key \"%s\"",
                      ctx->key_id);
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_REFUSED);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: API key \"%s\" is merchant \"%s\"",
                   ctx->key_id, merchant);

    ctx->merchant.len = ngx_strlen(merchant);
    ctx->merchant.data = (u_char *) ngx_http_payments_strdup(r->pool,
                                                             merchant);

    if (ctx->merchant.data == NULL
        || ngx_http_payments_origins_set(ctx, origins) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->auth_next(ctx);
}


/* origins are stored as URLs, space-separated (pay_auth,
 * pay_merchant_origins); they are compared by parsed components */

ngx_int_t
ngx_http_payments_origins_set(ngx_http_payments_ctx_t *ctx,
    const char *origins)
{
    char                *list, *o, *end;
    pay_origin_t        *po;
    ngx_http_request_t  *r = ctx->request;

    list = ngx_http_payments_strdup(r->pool, origins);
    ctx->origins = ngx_array_create(r->pool, 2, sizeof(pay_origin_t));

    if (list == NULL || ctx->origins == NULL) {
        return NGX_ERROR;
    }

    for (o = list; *o; o = end) {
        end = o + strcspn(o, " ");
        if (*end) {
            *end++ = '\0';
        }

        if (*o == '\0') {
            continue;
        }

        po = ngx_array_push(ctx->origins);
        if (po == NULL) {
            return NGX_ERROR;
        }

        if (pay_origin_parse(o, po, 0) != 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "payments: merchant \"%V\" has an invalid return "
                          "origin, ignored", &ctx->merchant);
            ctx->origins->nelts--;
        }
    }

    return NGX_OK;
}


/* why ctx->co's success_url or cancel_url is on none of ctx->origins, or
 * NULL when both are on one */

const char *
ngx_http_payments_origins_refuse(ngx_http_payments_ctx_t *ctx)
{
    if (!pay_origin_allowed(ctx->co.success_url, ctx->origins->elts,
                            ctx->origins->nelts, 0))
    {
        return "success_url is not on one of the merchant's registered "
               "origins";
    }

    if (!pay_origin_allowed(ctx->co.cancel_url, ctx->origins->elts,
                            ctx->origins->nelts, 0))
    {
        return "cancel_url is not on one of the merchant's registered "
               "origins";
    }

    return NULL;
}


ngx_int_t
ngx_http_payments_authenticate(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx))
{
    size_t                           toklen;
    ngx_int_t                        rc;
    const char                      *tok;
    pay_apikey_t                     key;
    ngx_table_elt_t                 *auth;
    ngx_http_request_t              *r = ctx->request;
    ngx_http_payments_auth_entry_t  *e;

    auth = r->headers_in.authorization;

    if (auth == NULL) {
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_MISSING);
        return NGX_ERROR;
    }

    if (pay_bearer_token((char *) auth->value.data, auth->value.len,
                         &tok, &toklen) != 0)
    {
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_SCHEME);
        return NGX_ERROR;
    }

    if (pay_apikey_parse(tok, toklen, &key) != 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: the bearer token is not an API key");
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_MALFORMED);
        return NGX_ERROR;
    }

    ctx->auth_next = next;
    ngx_memcpy(ctx->key_id, key.key_id, sizeof(key.key_id));
    ctx->key_live = (ngx_strcmp(key.mode, "live") == 0);

    pay_apikey_hash(tok, toklen, ctx->key_hash);

    e = ngx_http_payments_auth_slot(ctx);

    if (e != NULL
        && e->merchant
        && ngx_strcmp(e->key_id, ctx->key_id) == 0
        && (ngx_msec_int_t) (e->expires - ngx_current_msec) > 0)
    {
        ctx->shard = e->shard;
        ngx_http_payments_authenticated(ctx, e->merchant, e->key_hash,
                                        e->origins);
        return NGX_OK;
    }

    /* with the presented key's hash: the database notes the key's use,
     * coarsely, when it is the key's own (the comparison that decides is
     * still ours, in constant time) */
    ctx->params[0] = ctx->key_id;
    ctx->params[1] = ctx->key_hash;

    if (ngx_http_payments_shard_dir_on()) {

        /* a key no shard had a moment ago */
        if (e != NULL
            && e->unknown
            && ngx_strcmp(e->key_id, ctx->key_id) == 0
            && (ngx_msec_int_t) (e->expires - ngx_current_msec) > 0)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "payments: API key \"%s\" is unknown to every "
                          "shard (this worker asked them less than "
                          "payments_auth_cache ago)", ctx->key_id);
            ngx_http_payments_unauthorized(r,
                                           NGX_HTTP_PAYMENTS_AUTH_REFUSED);
            return NGX_ERROR;
        }

        rc = ngx_http_payments_shard_of_key(ctx->key_id);

        if (rc == NGX_BUSY) {
            ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            /* not in the directory: pay_auth itself asked of every shard,
             * its row is the answer */
            if (ngx_http_payments_shard_fan(ctx, NGX_HTTP_PAYMENTS_AUTH_SQL,
                                            2,
                                            ngx_http_payments_auth_fan_answer,
                                            ngx_http_payments_auth_fan_done)
                != NGX_OK)
            {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return NGX_ERROR;
            }

            return NGX_OK;
        }

        /* the directory's shard, and only it: its "no such key" is the
         * answer (a revoked key, a disabled merchant) */
        ngx_http_payments_shard_dir_count(0);
        ctx->shard = (ngx_uint_t) rc;
    }

    if (ngx_http_payments_query(ctx, NGX_HTTP_PAYMENTS_AUTH_SQL, 2,
                                ngx_http_payments_auth_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_payments_auth_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_http_request_t       *r;
    ngx_http_payments_ctx_t  *ctx = q->data;

    r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "payments: pay_auth: %s",
                          PQresultErrorMessage(res));
        }

        ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: unknown or revoked API key \"%s\"",
                      ctx->key_id);
        ngx_http_payments_auth_forget(ctx);
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_REFUSED);
        return;
    }

    ngx_http_payments_auth_row(ctx, PQgetvalue(res, 0, 0),
                               PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                               PQgetvalue(res, 0, 3));
}


/* pay_auth's row, from the key's shard */

static void
ngx_http_payments_auth_row(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *key_hash, const char *mode,
    const char *origins)
{
    ngx_http_request_t  *r = ctx->request;

    /* the database's mode for the key must be the one its text says */
    if (ngx_strcmp(mode, (ctx->key_live ? "live" : "test")) != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: API key \"%s\" is stored as %s but is "
                      "spelled otherwise; refused", ctx->key_id, mode);
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_REFUSED);
        return;
    }

    ngx_http_payments_auth_remember(ctx, merchant, key_hash, origins);

    ngx_http_payments_authenticated(ctx, merchant, key_hash, origins);
}


/* one shard's pay_auth in a fan-out: a row is "here" (copied: the answer
 * is cleared after this returns) */
static ngx_int_t
ngx_http_payments_auth_fan_answer(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t shard, PGresult *res)
{
    int                  i;
    ngx_http_request_t  *r = ctx->request;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: pay_auth: %s", PQresultErrorMessage(res));
        return NGX_ERROR;
    }

    if (PQntuples(res) != 1 || PQnfields(res) != 4) {
        return NGX_DECLINED;
    }

    for (i = 0; i < 4; i++) {
        ctx->auth_row[i] = ngx_http_payments_strdup(r->pool,
                                                    PQgetvalue(res, 0, i));
        if (ctx->auth_row[i] == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_payments_auth_fan_done(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome)
{
    ngx_http_request_t               *r = ctx->request;
    ngx_http_payments_shard_t        *shard;

    switch (outcome) {

    case NGX_HTTP_PAYMENTS_FAN_FOUND:
        shard = ctx->pmcf->shards->elts;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: API key \"%s\" found on shard \"%V\" by "
                      "asking every shard", ctx->key_id,
                      &shard[ctx->shard].name);

        /* the directory learns it for every worker; a mode spelled
         * otherwise is refused below like any other */
        ngx_http_payments_shard_remember(ctx->key_id, ctx->auth_row[0],
                                         ctx->shard, r->connection->log);

        ngx_http_payments_auth_row(ctx, ctx->auth_row[0], ctx->auth_row[1],
                                   ctx->auth_row[2], ctx->auth_row[3]);
        return;

    case NGX_HTTP_PAYMENTS_FAN_NONE:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "payments: API key \"%s\" is unknown to every shard",
                      ctx->key_id);
        ngx_http_payments_auth_forget(ctx);
        ngx_http_payments_unauthorized(r, NGX_HTTP_PAYMENTS_AUTH_REFUSED);
        return;

    case NGX_HTTP_PAYMENTS_FAN_CONFLICT:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: API key \"%s\" is on two shards: its "
                      "requests are answered 503 until one shard's row is "
                      "removed", ctx->key_id);
        break;

    default:
        /* unknown to the shards that answered, and perhaps on one that
         * did not: the gateway cannot tell, so not a 401 */
        break;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
}
