
/*
 * Copyright (C) ngx_payments authors
 *
 * The merchant's side of its notifications (doc/NOTIFICATIONS.md):
 *
 *   GET  /v1/notifications?status=FAILED&limit=50   pay_notify_list
 *   POST /v1/notifications/{id}/replay              pay_notify_replay
 *   GET  /v1/webhook_endpoints                      pay_endpoint_list
 *   POST /v1/webhook_endpoints/{id}/enable          pay_endpoint_set
 *   POST /v1/webhook_endpoints/{id}/disable         pay_endpoint_set
 *   POST /v1/webhook_endpoints                      pay_endpoint_create
 *   POST /v1/webhook_endpoints/{id}/rotate_secret   pay_endpoint_rotate
 *
 * All run after the API key is checked (_auth.c) and only ever see the
 * authenticated merchant's rows: the merchant is the functions' first
 * argument.  The items are built by the database; nothing here reads a
 * payload.  The two that make a signing secret make it here, seal it with
 * the keyring (associated data: the endpoint's id, as payments-merchant
 * and the deliveries do) and send only the sealed form to the database;
 * the plaintext is in the 201/200 answer once, and wiped from the
 * request's memory after it.  A replay of the same Idempotency-Key is
 * answered from the row, without a secret: none is kept to show again.
 */


#include "ngx_http_payments_module.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <payments/notify.h>
#include <payments/operation.h>
#include <payments/seal.h>


/* a rotation's default grace (payments-merchant rotate-secret's) and most */
#define NGX_HTTP_PAYMENTS_GRACE_DEFAULT  86400
#define NGX_HTTP_PAYMENTS_GRACE_MAX      (7 * 86400)


#define NGX_HTTP_PAYMENTS_NOTIFY_LIST_MAX  100


static void ngx_http_payments_notify_api_answer(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_endpoint_answer(
    ngx_http_payments_pg_query_t *q, PGresult *res);


/* msg_ and 24 lower-case hex digits */
static ngx_uint_t
ngx_http_payments_notification_id_valid(ngx_str_t *id)
{
    ngx_uint_t  i;

    if (id->len != 28 || ngx_strncmp(id->data, "msg_", 4) != 0) {
        return 0;
    }

    for (i = 4; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


void
ngx_http_payments_list_notifications(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t            limit;
    ngx_str_t            v;
    const char          *status;
    ngx_http_request_t  *r = ctx->request;

    status = NULL;
    limit = 50;

    /* as the items spell it (PENDING); the lower case is taken too */
    if (ngx_http_arg(r, (u_char *) "status", 6, &v) == NGX_OK) {
        if (v.len == 7 && ngx_strncasecmp(v.data, (u_char *) "pending", 7)
                          == 0)
        {
            status = "PENDING";

        } else if (v.len == 9
                   && ngx_strncasecmp(v.data, (u_char *) "delivered", 9) == 0)
        {
            status = "DELIVERED";

        } else if (v.len == 6
                   && ngx_strncasecmp(v.data, (u_char *) "failed", 6) == 0)
        {
            status = "FAILED";

        } else {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                           PAY_ERR_INVALID_REQUEST, 0,
                           "status is PENDING, DELIVERED or FAILED"));
            return;
        }
    }

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK) {
        limit = ngx_atoi(v.data, v.len);

        if (limit < 1 || limit > NGX_HTTP_PAYMENTS_NOTIFY_LIST_MAX) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                           PAY_ERR_INVALID_REQUEST, 0,
                           "limit is a number from 1 to 100"));
            return;
        }
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = status;
    ctx->params[2] = ngx_http_payments_num(r->pool, limit);

    if (ctx->params[2] == NULL
        || ngx_http_payments_query(ctx, "SELECT pay_notify_list($1, $2, $3)",
                                   3, ngx_http_payments_notify_api_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_replay_notification(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!ngx_http_payments_notification_id_valid(&ctx->object_id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no notification with this id"));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx, "SELECT pay_notify_replay($1, $2)",
                                   2, ngx_http_payments_notify_api_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_notify_api_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *state;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        /* pay_notify_replay: the endpoint is disabled */
        if (state && ngx_strcmp(state, "PY010") == 0) {
            ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                           PAY_ERR_ENDPOINT_DISABLED, 0,
                           "the notification's endpoint is disabled: the "
                           "operator enables it again"));
            return;
        }
    }

    if (ngx_http_payments_pg_row(r, res, ctx->route == PAY_ROUTE_NOTIFICATIONS
                                         ? "pay_notify_list"
                                         : "pay_notify_replay")
        != NGX_OK)
    {
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no notification with this id"));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r,
                               ctx->route == PAY_ROUTE_NOTIFICATIONS
                               ? NGX_HTTP_OK : NGX_HTTP_ACCEPTED,
                               "application/json",
                               (u_char *) PQgetvalue(res, 0, 0),
                               PQgetlength(res, 0, 0)));
}


/* ep_ and 24 lower-case hex digits */
static ngx_uint_t
ngx_http_payments_endpoint_id_valid(ngx_str_t *id)
{
    ngx_uint_t  i;

    if (id->len != 27 || ngx_strncmp(id->data, "ep_", 3) != 0) {
        return 0;
    }

    for (i = 3; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


void
ngx_http_payments_list_endpoints(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    ctx->params[0] = (char *) ctx->merchant.data;

    if (ngx_http_payments_query(ctx, "SELECT pay_endpoint_list($1)", 1,
                                ngx_http_payments_endpoint_answer)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_set_endpoint(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (!ngx_http_payments_endpoint_id_valid(&ctx->object_id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no endpoint with this id"));
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = (char *) ngx_http_payments_cstr(r->pool,
                                                     &ctx->object_id);
    ctx->params[2] = ctx->route == PAY_ROUTE_ENDPOINT_ENABLE ? "t" : "f";

    if (ctx->params[1] == NULL
        || ngx_http_payments_query(ctx,
                                   "SELECT pay_endpoint_set($1, $2, $3)", 3,
                                   ngx_http_payments_endpoint_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_endpoint_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, ctx->route == PAY_ROUTE_ENDPOINTS
                                         ? "pay_endpoint_list"
                                         : "pay_endpoint_set")
        != NGX_OK)
    {
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no endpoint with this id"));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                               "application/json",
                               (u_char *) PQgetvalue(res, 0, 0),
                               PQgetlength(res, 0, 0)));
}


/* --- secrets made here: create and rotate ------------------------------------ */

typedef struct {
    char   id[32];                          /* ep_... */
    char   secret[PAY_WHSEC_TEXT_MAX];      /* whsec_..., wiped */
} ngx_http_payments_ep_new_t;


static void ngx_http_payments_endpoint_secret_answer(
    ngx_http_payments_pg_query_t *q, PGresult *res);


typedef struct {
    u_char  *p;
    size_t   n;
} ngx_http_payments_wipe_t;


static void
ngx_http_payments_wipe(void *data)
{
    ngx_http_payments_wipe_t  *w = data;

    OPENSSL_cleanse(w->p, w->n);
}


static void
ngx_http_payments_ep_wipe(void *data)
{
    OPENSSL_cleanse(data, sizeof(ngx_http_payments_ep_new_t));
}


/* A new secret for endpoint id, its sealed form in *sealed (NULL with the
 * request finalized: no keyring, 503 not_configured; or an error). */
static ngx_http_payments_ep_new_t *
ngx_http_payments_ep_secret(ngx_http_payments_ctx_t *ctx, const char *id,
    char **sealed)
{
    size_t                       cap;
    ngx_pool_cleanup_t          *cln;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_ep_new_t  *ep;

    *sealed = NULL;

    /* fail closed: a secret is never stored unsealed */
    if (ctx->pmcf->keyring == NULL) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_CONFIGURED, 0,
                                       "this gateway has no "
                                       "payments_encryption_key to seal "
                                       "signing secrets with"));
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_payments_ep_new_t));
    if (cln == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ep = cln->data;
    ngx_memzero(ep, sizeof(ngx_http_payments_ep_new_t));
    cln->handler = ngx_http_payments_ep_wipe;

    if (ngx_strlen(id) >= sizeof(ep->id)) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ngx_cpystrn((u_char *) ep->id, (u_char *) id, sizeof(ep->id));

    cap = pay_seal_len(sizeof(ep->secret)) + 1;
    *sealed = ngx_pnalloc(r->pool, cap);

    if (*sealed == NULL
        || pay_whsec_new(ep->secret, sizeof(ep->secret)) != 0
        || pay_seal(ctx->pmcf->keyring, ep->id, ep->secret,
                    ngx_strlen(ep->secret), *sealed, cap)
           != 0)
    {
        *sealed = NULL;
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ctx->op = ep;

    return ep;
}


static ngx_int_t
ngx_http_payments_ep_bad(ngx_http_request_t *r, json_t *root,
    const char *detail)
{
    json_decref(root);

    return ngx_http_payments_problem(r, PAY_ERR_INVALID_REQUEST, 0, detail);
}


/* POST /v1/webhook_endpoints {url, enabled_events?}, after the router's
 * checks (Idempotency-Key, create= limits, size, type) */

void
ngx_http_payments_create_endpoint(ngx_http_payments_ctx_t *ctx)
{
    char                        id[32], host[256], *events, *p, *sealed;
    size_t                      k, len;
    json_t                     *root, *url, *evs, *ev;
    const char                 *key, *why, *t;
    ngx_http_request_t         *r = ctx->request;
    ngx_http_payments_ep_new_t *ep;

    root = json_loadb((char *) ctx->body.data, ctx->body.len,
                      JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(root)) {
        ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                       "the body is not a JSON object"));
        return;
    }

    json_object_foreach(root, key, ev) {
        if (ngx_strcmp(key, "url") != 0
            && ngx_strcmp(key, "enabled_events") != 0)
        {
            ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                           "unknown field: the fields are "
                                           "url and enabled_events"));
            return;
        }
    }

    url = json_object_get(root, "url");

    if (!json_is_string(url)) {
        ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                       "url: an https URL is required"));
        return;
    }

    if (pay_endpoint_url_check(json_string_value(url), json_string_length(url),
                               ctx->pmcf->notify.allow_loopback, host,
                               sizeof(host), &why)
        != 0
        || ngx_strlen(json_string_value(url)) != json_string_length(url))
    {
        p = ngx_pnalloc(r->pool, 256);
        if (p != NULL) {
            ngx_snprintf((u_char *) p, 256, "url: refused (%s): https, "
                         "a host name or a public address%Z",
                         ngx_strlen(json_string_value(url))
                         != json_string_length(url) ? "a NUL byte" : why);
        }

        ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                       p ? p : "url: refused"));
        return;
    }

    /* the types as a text[] literal: [a-z.], nothing to quote; ["*"] or
     * none: every type ('{}') */
    evs = json_object_get(root, "enabled_events");
    len = 3;

    if (evs != NULL && !json_is_array(evs)) {
        ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                       "enabled_events: an array of event "
                                       "types"));
        return;
    }

    json_array_foreach(evs, k, ev) {
        if (!json_is_string(ev)
            || !pay_notify_event_type_valid(json_string_value(ev),
                                            json_string_length(ev))
            || ngx_strlen(json_string_value(ev)) != json_string_length(ev)
            || (ngx_strcmp(json_string_value(ev), "*") == 0
                && json_array_size(evs) != 1))
        {
            ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                           "enabled_events: an unknown event "
                                           "type (doc/NOTIFICATIONS.md lists "
                                           "them; \"*\" alone is every "
                                           "type)"));
            return;
        }

        len += json_string_length(ev) + 1;
    }

    events = ngx_pnalloc(r->pool, len);
    if (events == NULL) {
        json_decref(root);
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = events;
    *p++ = '{';

    json_array_foreach(evs, k, ev) {
        t = json_string_value(ev);

        if (ngx_strcmp(t, "*") == 0) {
            break;
        }

        if (p > events + 1) {
            *p++ = ',';
        }

        p = (char *) ngx_cpymem(p, t, ngx_strlen(t));
    }

    *p++ = '}';
    *p = '\0';

    ctx->params[3] = ngx_http_payments_strdup(r->pool,
                                              json_string_value(url));
    json_decref(root);

    if (pay_operation_id("ep_", id, sizeof(id)) != 0) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ep = ngx_http_payments_ep_secret(ctx, id, &sealed);
    if (ep == NULL) {
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ep->id;
    ctx->params[4] = ngx_http_payments_strdup(r->pool, host);
    ctx->params[5] = events;
    ctx->params[6] = sealed;

    if (ctx->params[3] == NULL || ctx->params[4] == NULL
        || ngx_http_payments_query(ctx,
                                   "SELECT outcome, item FROM "
                                   "pay_endpoint_create($1, $2, $3, $4, $5, "
                                   "$6, $7)", 7,
                                   ngx_http_payments_endpoint_secret_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/* POST /v1/webhook_endpoints/{id}/rotate_secret {grace_seconds?} */

void
ngx_http_payments_rotate_endpoint(ngx_http_payments_ctx_t *ctx)
{
    char                        *id, *sealed;
    json_t                      *root, *g, *v;
    json_int_t                   grace;
    const char                  *key;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_ep_new_t  *ep;

    if (!ngx_http_payments_endpoint_id_valid(&ctx->object_id)) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no endpoint with this id"));
        return;
    }

    grace = NGX_HTTP_PAYMENTS_GRACE_DEFAULT;
    root = NULL;

    if (ctx->body.len) {
        root = json_loadb((char *) ctx->body.data, ctx->body.len,
                          JSON_REJECT_DUPLICATES, NULL);
    }

    if (ctx->body.len && !json_is_object(root)) {
        ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                       "the body is not a JSON object"));
        return;
    }

    json_object_foreach(root, key, v) {
        if (ngx_strcmp(key, "grace_seconds") != 0) {
            ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                           "unknown field: the only field is "
                                           "grace_seconds"));
            return;
        }
    }

    g = json_object_get(root, "grace_seconds");

    if (g != NULL) {
        if (!json_is_integer(g) || json_integer_value(g) < 0
            || json_integer_value(g) > NGX_HTTP_PAYMENTS_GRACE_MAX)
        {
            ngx_http_payments_finalize(r, ngx_http_payments_ep_bad(r, root,
                                           "grace_seconds: an integer from 0 "
                                           "to 604800 (7 days)"));
            return;
        }

        grace = json_integer_value(g);
    }

    json_decref(root);

    id = (char *) ngx_http_payments_cstr(r->pool, &ctx->object_id);
    if (id == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ep = ngx_http_payments_ep_secret(ctx, id, &sealed);
    if (ep == NULL) {
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ep->id;
    ctx->params[2] = ctx->idem_key;
    ctx->params[3] = sealed;
    ctx->params[4] = ngx_http_payments_num(r->pool, (ngx_int_t) grace);

    if (ctx->params[4] == NULL
        || ngx_http_payments_query(ctx,
                                   "SELECT outcome, item FROM "
                                   "pay_endpoint_rotate($1, $2, $3, $4, $5)",
                                   5, ngx_http_payments_endpoint_secret_answer)
           != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/*
 * created: 201, the item and its secret; rotated: 200, the same; replayed
 * (the same Idempotency-Key again): 200, the item alone; reused (the key
 * created another endpoint): 422; no row (another merchant's endpoint):
 * 404.
 */

static void
ngx_http_payments_endpoint_secret_answer(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    u_char                      *body, *p;
    size_t                       len;
    const char                  *outcome, *item;
    ngx_pool_cleanup_t          *cln;
    ngx_http_payments_wipe_t    *w;
    ngx_http_payments_ctx_t     *ctx = q->data;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_payments_ep_new_t  *ep = ctx->op;

    if (ngx_http_payments_pg_row(r, res,
                                 ctx->route == PAY_ROUTE_ENDPOINT_CREATE
                                 ? "pay_endpoint_create"
                                 : "pay_endpoint_rotate")
        != NGX_OK)
    {
        return;
    }

    outcome = PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
    item = PQgetvalue(res, 0, 1);
    len = PQgetlength(res, 0, 1);

    if (ngx_strcmp(outcome, "reused") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_IDEM_REUSED, 0,
                                       "this Idempotency-Key created an "
                                       "endpoint with another url or "
                                       "enabled_events"));
        return;
    }

    if (PQgetisnull(res, 0, 1) || len < 2 || item[len - 1] != '}') {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_FOUND, 0,
                                       "no endpoint with this id"));
        return;
    }

    if (ngx_strcmp(outcome, "replayed") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_send(r, NGX_HTTP_OK,
                                   "application/json", (u_char *) item, len));
        return;
    }

    /* the item with "secret" added: {..., "secret": "whsec_..."}, in
     * memory wiped with the request's pool */
    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_payments_wipe_t));
    body = ngx_pnalloc(r->pool, len + sizeof(",\"secret\":\"\"}") - 1
                                + ngx_strlen(ep->secret));
    if (cln == NULL || body == NULL) {
        ngx_http_payments_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    w = cln->data;
    w->p = body;
    w->n = len + sizeof(",\"secret\":\"\"}") - 1 + ngx_strlen(ep->secret);
    cln->handler = ngx_http_payments_wipe;

    p = ngx_cpymem(body, item, len - 1);
    p = ngx_cpymem(p, ",\"secret\":\"", sizeof(",\"secret\":\"") - 1);
    p = ngx_cpymem(p, ep->secret, ngx_strlen(ep->secret));
    p = ngx_cpymem(p, "\"}", 2);

    OPENSSL_cleanse(ep->secret, sizeof(ep->secret));

    ngx_http_payments_finalize(r, ngx_http_payments_send(r,
                               ctx->route == PAY_ROUTE_ENDPOINT_CREATE
                               ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                               "application/json", body, p - body));
}
