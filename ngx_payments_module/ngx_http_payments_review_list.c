
/*
 * Copyright (C) ngx_payments authors
 *
 * GET /v1/reviews, the review queue (doc/RISK.md, "Review"): _review.c
 * checks the admin key, then lists here.  One shard's pay_review_list
 * with ?shard=NAME or when there is one; else every shard's, asked at
 * once (_shard.c's fan-out) and merged in the list's own order.  A shard
 * that does not answer makes the whole list 503: a queue shown without it
 * would look shorter than it is.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"

#include <jansson.h>


/* the most reviews one answer lists, whatever the shards */
#define NGX_HTTP_PAYMENTS_REVIEWS_MAX  "100"
#define NGX_HTTP_PAYMENTS_REVIEWS_MAXN  100


/* GET /v1/reviews over several shards: each shard's answer, kept */
typedef struct {
    ngx_uint_t   n;
    ngx_str_t   *list;      /* per shard; data NULL: no answer */
} ngx_http_payments_reviews_t;


static ngx_int_t ngx_http_payments_review_shard_listed(
    ngx_http_payments_ctx_t *ctx, ngx_uint_t shard, PGresult *res);
static void ngx_http_payments_review_merged(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome);
static ngx_int_t ngx_http_payments_review_merge(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_reviews_t *rv);
static void ngx_http_payments_review_listed(ngx_http_payments_pg_query_t *q,
    PGresult *res);


/*
 * GET /v1/reviews: one shard's queue with ?shard=NAME (payments_database's
 * is "default") or when there is one; else every shard's at once, merged.
 */

void
ngx_http_payments_review_list(ngx_http_payments_ctx_t *ctx)
{
    ngx_str_t                     name;
    ngx_uint_t                    i, n;
    ngx_http_request_t           *r = ctx->request;
    ngx_http_payments_shard_t    *shard;
    ngx_http_payments_reviews_t  *rv;

    shard = ctx->pmcf->shards->elts;
    n = ctx->pmcf->shards->nelts;

    ctx->params[0] = NGX_HTTP_PAYMENTS_REVIEWS_MAX;
    ctx->shard = 0;

    if (ngx_http_arg(r, (u_char *) "shard", 5, &name) == NGX_OK) {
        /* a name from the query string: only ever compared */
        for (i = 0; i < n; i++) {
            if (shard[i].name.len == name.len
                && ngx_strncmp(shard[i].name.data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (i == n) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                           PAY_ERR_INVALID_REQUEST, 0,
                                           "shard: no shard of that name "
                                           "(payments_shard's name)"));
            return;
        }

        ctx->shard = i;
        n = 1;
    }

    if (n == 1) {
        if (ngx_http_payments_query(ctx, "SELECT pay_review_list($1)", 1,
                                    ngx_http_payments_review_listed)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                       ngx_http_payments_store_unavailable(r));
        }

        return;
    }

    rv = ngx_pcalloc(r->pool, sizeof(ngx_http_payments_reviews_t));
    if (rv == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rv->n = n;
    rv->list = ngx_pcalloc(r->pool, n * sizeof(ngx_str_t));
    if (rv->list == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->reviews = rv;

    if (ngx_http_payments_shard_fan_all(ctx, "SELECT pay_review_list($1)", 1,
                                        ngx_http_payments_review_shard_listed,
                                        ngx_http_payments_review_merged)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* one shard's queue, kept for the merge: "not here" (NGX_DECLINED) is an
 * answer, NGX_ERROR none */

static ngx_int_t
ngx_http_payments_review_shard_listed(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t shard, PGresult *res)
{
    size_t                        len;
    ngx_http_request_t           *r = ctx->request;
    ngx_http_payments_shard_t    *sh;
    ngx_http_payments_reviews_t  *rv = ctx->reviews;

    sh = ctx->pmcf->shards->elts;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1
        || PQgetisnull(res, 0, 0))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: shard \"%V\": pay_review_list: %s",
                      &sh[shard].name, PQresultErrorMessage(res));
        return NGX_ERROR;
    }

    len = PQgetlength(res, 0, 0);

    rv->list[shard].data = ngx_pnalloc(r->pool, len + 1);
    if (rv->list[shard].data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rv->list[shard].data, PQgetvalue(res, 0, 0), len);
    rv->list[shard].data[len] = '\0';
    rv->list[shard].len = len;

    return NGX_DECLINED;
}


static void
ngx_http_payments_review_merged(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fan_e outcome)
{
    u_char                       *p, *detail;
    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_request_t           *r = ctx->request;
    ngx_http_payments_shard_t    *sh;
    ngx_http_payments_reviews_t  *rv = ctx->reviews;

    if (outcome == NGX_HTTP_PAYMENTS_FAN_NONE) {
        ngx_http_payments_finalize(r, ngx_http_payments_review_merge(ctx,
                                                                     rv));
        return;
    }

    /* a queue without a shard's reviews would mislead: 503, naming the
     * shards that did not answer (names of the configuration, no more) */
    sh = ctx->pmcf->shards->elts;
    len = sizeof("the review queue of shard(s)  cannot be read; retry, or "
                 "list the others one by one with ?shard=NAME");

    for (i = 0; i < rv->n; i++) {
        len += sh[i].name.len + 1;
    }

    detail = ngx_pnalloc(r->pool, len);
    if (detail == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_cpymem(detail, "the review queue of shard(s) ",
                   sizeof("the review queue of shard(s) ") - 1);

    for (i = 0; i < rv->n; i++) {
        if (rv->list[i].data == NULL) {
            p = ngx_sprintf(p, "%s%V", p[-1] == ' ' ? "" : ",",
                            &sh[i].name);
        }
    }

    p = ngx_cpymem(p, " cannot be read; retry, or list the others one by "
                      "one with ?shard=NAME",
                   sizeof(" cannot be read; retry, or list the others one "
                          "by one with ?shard=NAME") - 1);
    *p = '\0';

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "payments: GET /v1/reviews: %s", detail);

    if (ngx_http_payments_add_header(r, "Retry-After", "1") != NGX_OK) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_STORE_UNAVAILABLE, 0,
                                   (char *) detail));
}


/* "a" before "b" in the queue's order: the earlier review_until, then the
 * nonce (as pay_review_list sorts one shard's) */

static int
ngx_http_payments_review_before(json_t *a, json_t *b)
{
    int          c;
    const char  *ua, *ub, *na, *nb;

    ua = json_string_value(json_object_get(a, "review_until"));
    ub = json_string_value(json_object_get(b, "review_until"));
    na = json_string_value(json_object_get(a, "nonce"));
    nb = json_string_value(json_object_get(b, "nonce"));

    c = ngx_strcmp(ua ? ua : "", ub ? ub : "");
    if (c != 0) {
        return c < 0;
    }

    return ngx_strcmp(na ? na : "", nb ? nb : "") < 0;
}


/*
 * Every shard's queue, each in the list's order already (oldest deadline
 * first), merged into one in that order and cut at the same limit: each
 * shard gave its first 100, so the first 100 of all are among them.  The
 * times are RFC 3339 in UTC to the second (ts_rfc3339), so their text
 * sorts as they do.
 */

static ngx_int_t
ngx_http_payments_review_merge(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_reviews_t *rv)
{
    char                *json;
    size_t              *at, len;
    ngx_int_t            rc;
    ngx_uint_t           i, best;
    json_t             **list, **root, *out, *all, *it, *head;
    ngx_http_request_t  *r = ctx->request;

    root = ngx_pcalloc(r->pool, rv->n * sizeof(json_t *));
    list = ngx_pcalloc(r->pool, rv->n * sizeof(json_t *));
    at = ngx_pcalloc(r->pool, rv->n * sizeof(size_t));
    out = json_object();
    all = json_array();

    rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    if (root == NULL || list == NULL || at == NULL || out == NULL
        || all == NULL || json_object_set(out, "reviews", all) != 0)
    {
        goto done;
    }

    for (i = 0; i < rv->n; i++) {
        root[i] = json_loadb((char *) rv->list[i].data, rv->list[i].len, 0,
                             NULL);
        list[i] = root[i] ? json_object_get(root[i], "reviews") : NULL;

        if (!json_is_array(list[i])) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "payments: pay_review_list gave no list");
            rc = ngx_http_payments_store_unavailable(r);
            goto done;
        }
    }

    while (json_array_size(all) < NGX_HTTP_PAYMENTS_REVIEWS_MAXN) {
        best = rv->n;
        head = NULL;

        for (i = 0; i < rv->n; i++) {
            it = json_array_get(list[i], at[i]);

            if (it != NULL
                && (head == NULL
                    || ngx_http_payments_review_before(it, head)))
            {
                best = i;
                head = it;
            }
        }

        if (head == NULL) {
            break;
        }

        if (json_array_append(all, head) != 0) {
            goto done;
        }

        at[best]++;
    }

    json = json_dumps(out, JSON_COMPACT);
    if (json == NULL) {
        goto done;
    }

    len = ngx_strlen(json);
    rc = ngx_http_payments_send(r, NGX_HTTP_OK, "application/json",
                                (u_char *) json, len);
    free(json);

done:

    for (i = 0; root != NULL && i < rv->n; i++) {
        json_decref(root[i]);
    }

    json_decref(all);
    json_decref(out);

    return rc;
}


static void
ngx_http_payments_review_listed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_review_list") != NGX_OK) {
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json",
                                   (u_char *) PQgetvalue(res, 0, 0),
                                   PQgetlength(res, 0, 0)));
}
