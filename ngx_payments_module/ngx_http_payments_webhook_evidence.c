
/*
 * Copyright (C) ngx_payments authors
 *
 * What a webhook keeps as evidence (_webhook.c decides when): the header
 * values its verifier read, each event's own signed bytes (sealed when
 * they may carry a saved method's token) and the id of the key that
 * verified them; and the authentic events kept unapplied, on the home
 * shard under "unreadable:" and their bytes' SHA-256: one no reader can
 * read, one signed for other money (the other livemode, another Adyen
 * merchant account), and the other account's items of a mixed Adyen
 * batch.  Every authentic PSP event is kept (doc/OPERATIONS.md, "The
 * event inbox").
 */


#include "ngx_http_payments_module.h"

#include <openssl/sha.h>


static ngx_int_t ngx_http_payments_webhook_seal(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev, u_char *bytes, size_t len, char **body);
static ngx_int_t ngx_http_payments_webhook_unread_id(
    ngx_http_payments_ctx_t *ctx, pay_event_t *ev, u_char *bytes, size_t len);
static void ngx_http_payments_webhook_unreadable_kept(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_payments_webhook_unreadable_answer(
    ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_webhook_foreign_kept(
    ngx_http_payments_pg_query_t *q, PGresult *res);


/* pay_header_pt over the request's headers (dialect.h); each one found is
 * noted, once, for the inbox: the values the verification needed */
const char *
ngx_http_payments_webhook_header(void *data, const char *name, size_t *len,
    unsigned *count)
{
    size_t                    nlen;
    ngx_uint_t                n, i;
    ngx_table_elt_t          *h;
    ngx_http_payments_ctx_t  *ctx = data;

    h = ngx_http_payments_header(ctx->request, name, &n);
    *count = (unsigned) n;

    if (h == NULL) {
        *len = 0;
        return NULL;
    }

    *len = h->value.len;

    nlen = ngx_strlen(name);

    for (i = 0; i < ctx->wh_nheaders; i++) {
        if (ctx->wh_hname[i].len == nlen
            && ngx_strncasecmp(ctx->wh_hname[i].data, (u_char *) name, nlen)
               == 0)
        {
            break;
        }
    }

    if (i == ctx->wh_nheaders && i < NGX_HTTP_PAYMENTS_WH_HEADERS) {
        ctx->wh_hname[i].data = (u_char *) name;
        ctx->wh_hname[i].len = nlen;
        ctx->wh_hvalue[i] = h->value;
        ctx->wh_nheaders++;
    }

    return (const char *) h->value.data;
}


/*
 * What the inbox keeps besides the events, the same for each: the header
 * values the verifier read (a JSON object: signatures and timestamps,
 * never a secret).  Each event's own bytes and key id come with it
 * (ngx_http_payments_webhook_event_evidence).
 */

ngx_int_t
ngx_http_payments_webhook_evidence(ngx_http_payments_ctx_t *ctx)
{
    char                *out;
    json_t              *o;
    ngx_uint_t           i;
    ngx_http_request_t  *r = ctx->request;

    o = json_object();
    if (o == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->wh_nheaders; i++) {
        if (json_object_set_new(o, (char *) ngx_http_payments_cstr(r->pool,
                                                        &ctx->wh_hname[i]),
                                json_stringn((char *) ctx->wh_hvalue[i].data,
                                             ctx->wh_hvalue[i].len))
            != 0)
        {
            json_decref(o);
            return NGX_ERROR;
        }
    }

    out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);

    if (out == NULL) {
        return NGX_ERROR;
    }

    ctx->wh_headers = ngx_pnalloc(r->pool, ngx_strlen(out) + 1);
    if (ctx->wh_headers == NULL) {
        free(out);
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) ctx->wh_headers, (u_char *) out,
                ngx_strlen(out) + 1);
    free(out);

    ctx->wh_body = NULL;

    return NGX_OK;
}


/*
 * The index of the one configured key that verifies bytes alone (the
 * dialect's evidence_verify, as payments-events verify will run it), or
 * nkeys when none does.
 */

static ngx_uint_t
ngx_http_payments_webhook_which_key(ngx_http_payments_ctx_t *ctx,
    const char *bytes, size_t len)
{
    ngx_uint_t                i, nkeys;
    pay_webhook_conf_t        one;
    ngx_http_payments_psp_t  *psp = ctx->psp;

    nkeys = psp->wconf.nkeys ? psp->wconf.nkeys : psp->wconf.nsecrets;

    for (i = 0; i < nkeys; i++) {
        one = psp->wconf;

        if (psp->wconf.nkeys) {
            one.keys = &psp->wconf.keys[i];
            one.nkeys = 1;

        } else {
            one.secrets = &psp->wconf.secrets[i];
            one.nsecrets = 1;
        }

        if (psp->dl->evidence_verify(&one, ngx_http_payments_webhook_header,
                                     ctx, bytes, len, (int64_t) ngx_time())
            == PAY_ERR_NONE)
        {
            break;
        }
    }

    return i;
}


/*
 * One event's evidence: the bytes the PSP signed for it (as bytea's hex
 * text) in *body, the id of the key that verified them in *key_id: a
 * generic key's kid, or "sha256:" and the first 16 hex digits of the
 * SHA-256 of a shared secret (an id a key file can be matched against,
 * not the secret).  An Adyen item is kept alone, its own bytes, which its
 * HMAC verifies without the rest of the notification; other events keep
 * the whole body their one signature covers.  Bytes kept alone are
 * verified alone first (else the whole body is kept); with more than one
 * key configured (a rotation), the one that verified is found by
 * verifying with each alone; none alone is "ring".  Bytes that may carry
 * a saved method's reusable token are kept sealed
 * (ngx_http_payments_webhook_seal).
 */

ngx_int_t
ngx_http_payments_webhook_event_evidence(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev, char **body, char **key_id)
{
    char                     *p;
    size_t                    len;
    u_char                   *bytes;
    u_char                    md[SHA256_DIGEST_LENGTH];
    ngx_uint_t                i, nkeys;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_payments_psp_t  *psp = ctx->psp;

    nkeys = psp->wconf.nkeys ? psp->wconf.nkeys : psp->wconf.nsecrets;
    i = 0;
    bytes = NULL;

    if (ev->evidence_len != 0
        && ev->evidence_off + ev->evidence_len <= ctx->body.len)
    {
        bytes = ctx->body.data + ev->evidence_off;
        len = ev->evidence_len;

        i = ngx_http_payments_webhook_which_key(ctx, (char *) bytes, len);

        if (i == nkeys) {
            /* not verifiable alone: the whole body, as signed */
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "payments: webhook event \"%s\" of psp \"%V\" "
                          "does not verify alone: its whole body is kept",
                          ev->event_id, &psp->name);
            len = 0;
        }

    } else {
        len = 0;
    }

    if (len != 0) {
        p = ngx_pnalloc(r->pool, 2 + 2 * len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p[0] = '\\';
        p[1] = 'x';
        *ngx_hex_dump((u_char *) p + 2, bytes, len) = '\0';
        *body = p;

    } else {
        if (ctx->wh_body == NULL) {
            p = ngx_pnalloc(r->pool, 2 + 2 * ctx->body.len + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            p[0] = '\\';
            p[1] = 'x';
            *ngx_hex_dump((u_char *) p + 2, ctx->body.data, ctx->body.len)
                = '\0';
            ctx->wh_body = p;

            i = (nkeys > 1)
                ? ngx_http_payments_webhook_which_key(ctx,
                                                      (char *) ctx->body.data,
                                                      ctx->body.len)
                : 0;
            ctx->wh_key_i = i;

        } else {
            i = ctx->wh_key_i;
        }

        *body = ctx->wh_body;
    }

    /* bytes that may carry a saved method's reusable token are kept
     * sealed, the PSP's exact bytes inside (a METHOD_SAVED event always;
     * it is refused before this without a key) */
    if (ev->kind == PAY_EVT_METHOD_SAVED
        || (ctx->pmcf->keyring != NULL
            && pay_evidence_has_method_token(len ? (char *) bytes
                                                 : (char *) ctx->body.data,
                                             len ? len : ctx->body.len)))
    {
        if (ngx_http_payments_webhook_seal(ctx, ev,
                                           len ? bytes : ctx->body.data,
                                           len ? len : ctx->body.len, body)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (i >= nkeys) {
        *key_id = "ring";

    } else if (psp->wconf.nkeys) {
        *key_id = (char *) psp->wconf.keys[i].kid;

    } else {
        SHA256(psp->wconf.secrets[i].data, psp->wconf.secrets[i].len, md);

        p = ngx_pnalloc(r->pool, sizeof("sha256:") + 16);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *key_id = p;
        p = (char *) ngx_cpymem(p, "sha256:", sizeof("sha256:") - 1);
        *ngx_hex_dump((u_char *) p, md, 8) = '\0';
    }

    return NGX_OK;
}


/*
 * An event's kept bytes sealed whole (seal.h: AES-256-GCM under the
 * payments_encryption_key that seals the session tokens), associated data
 * "psp_event:<psp>:<event id>" so that a sealed body copied onto another
 * row does not open; *body gets the sealed text's bytes as bytea hex.
 * payments-events verify opens it before it verifies the signature.
 */

static ngx_int_t
ngx_http_payments_webhook_seal(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev, u_char *bytes, size_t len, char **body)
{
    char                *ad, *sealed, *p;
    size_t               cap, slen;
    u_char              *last;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->pmcf->keyring == NULL) {
        return NGX_ERROR;
    }

    ad = ngx_pnalloc(r->pool, sizeof("psp_event::") + ctx->psp->name.len
                              + ngx_strlen(ev->event_id));
    cap = pay_seal_len(len) + 1;
    sealed = ngx_pnalloc(r->pool, cap);

    if (ad == NULL || sealed == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf((u_char *) ad, "psp_event:%V:%s", &ctx->psp->name,
                       ev->event_id);
    *last = '\0';

    if (pay_seal(ctx->pmcf->keyring, ad, bytes, len, sealed, cap) != 0) {
        return NGX_ERROR;
    }

    slen = ngx_strlen(sealed);

    p = ngx_pnalloc(r->pool, 2 + 2 * slen + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0] = '\\';
    p[1] = 'x';
    *ngx_hex_dump((u_char *) p + 2, (u_char *) sealed, slen) = '\0';
    *body = p;

    return NGX_OK;
}


/*
 * An authentic event kept unapplied (ngx_http_payments_webhook_unreadable,
 * _foreign): its id "unreadable:" and the SHA-256 of the bytes kept, so a
 * redelivery keeps nothing twice; kept on the home shard; the PSP's name
 * and the id as the keeping's $1 and $2.  NGX_ERROR: no memory.
 */

static ngx_int_t
ngx_http_payments_webhook_unread_id(ngx_http_payments_ctx_t *ctx,
    pay_event_t *ev, u_char *bytes, size_t len)
{
    char    *p;
    u_char   md[SHA256_DIGEST_LENGTH];

    SHA256(bytes, len, md);
    ev->kind = PAY_EVT_IGNORED;
    p = (char *) ngx_cpymem(ev->event_id, "unreadable:",
                            sizeof("unreadable:") - 1);
    *ngx_hex_dump((u_char *) p, md, SHA256_DIGEST_LENGTH) = '\0';

    ctx->shard = ctx->pmcf->shard_home;
    ctx->params[0] = (char *) ngx_http_payments_cstr(ctx->request->pool,
                                                     &ctx->psp->name);
    ctx->params[1] = ev->event_id;

    return ctx->params[0] != NULL ? NGX_OK : NGX_ERROR;
}


/*
 * An authentic event no reader of its dialect can read (outcome
 * "unreadable"), or one signed for other money than the PSP's ("livemode",
 * "merchant_account"): its signed bytes, the header values the
 * verification read and the verifying key's id are kept on the home shard
 * as an unreadable event (pay_event_keep_unreadable: nothing parsed,
 * nothing applied; sealed as any event's bytes are when they may carry a
 * saved method's token), under "unreadable:" and the bytes' SHA-256, so a
 * redelivery keeps nothing twice.  The answer stays a 400 whatever the
 * keeping did: the PSP delivers it again, and a release (or a
 * configuration) that takes it applies it then.
 */

void
ngx_http_payments_webhook_unreadable(ngx_http_payments_ctx_t *ctx,
    const char *outcome)
{
    pay_event_t         *ev;
    ngx_http_request_t  *r = ctx->request;

    /* its answer's reason, for ngx_http_payments_webhook_unreadable_answer */
    ctx->params[5] = outcome;

    if (ngx_strcmp(outcome, "unreadable") == 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook from psp \"%V\" is signed but is "
                      "not a readable event: kept unread, answered 400",
                      &ctx->psp->name);
    }

    ev = &ctx->events[0];
    ngx_memzero(ev, sizeof(pay_event_t));

    if (ngx_http_payments_webhook_unread_id(ctx, ev, ctx->body.data,
                                            ctx->body.len) != NGX_OK
        || ngx_http_payments_webhook_evidence(ctx) != NGX_OK
        || ngx_http_payments_webhook_event_evidence(ctx, ev,
                                                    (char **) &ctx->params[2],
                                                    (char **) &ctx->params[4])
           != NGX_OK)
    {
        /* bytes that may carry a method token and no key to seal them
         * with, or no memory: not kept, and the PSP delivers it again */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook event \"%s\" of psp \"%V\" cannot "
                      "be kept", ev->event_id, &ctx->psp->name);
        ngx_http_payments_finalize(r,
            ngx_http_payments_webhook_unreadable_answer(ctx));
        return;
    }

    ctx->params[3] = ctx->wh_headers;

    if (ngx_http_payments_query(ctx,
                                "SELECT pay_event_keep_unreadable($1, $2, "
                                "$3, $4, $5, $6)",
                                6, ngx_http_payments_webhook_unreadable_kept)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: webhook event \"%s\" of psp \"%V\" not "
                      "kept: the database is not reachable", ev->event_id,
                      &ctx->psp->name);
        ngx_http_payments_finalize(r,
            ngx_http_payments_webhook_unreadable_answer(ctx));
    }
}


static void
ngx_http_payments_webhook_unreadable_kept(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK
        && PQntuples(res) == 1)
    {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: webhook event \"%s\" of psp \"%V\": %s",
                      ctx->events[0].event_id, &ctx->psp->name,
                      PQgetvalue(res, 0, 0));

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: webhook event \"%s\" of psp \"%V\" not "
                      "kept: %s", ctx->events[0].event_id, &ctx->psp->name,
                      res ? PQresultErrorMessage(res) : "no answer");
    }

    ngx_http_payments_finalize(r,
        ngx_http_payments_webhook_unreadable_answer(ctx));
}


/* An unreadable event's answer, whether it was kept or not: a 400, so that
 * the PSP delivers it again; one signed for other money is answered as it
 * always was (bad_signature: not this PSP's event). */

static ngx_int_t
ngx_http_payments_webhook_unreadable_answer(ngx_http_payments_ctx_t *ctx)
{
    if (ngx_strcmp(ctx->params[5], "unreadable") != 0) {
        return ngx_http_payments_problem(ctx->request, PAY_ERR_BAD_SIGNATURE,
                                         0, NULL);
    }

    return ngx_http_payments_problem(ctx->request, PAY_ERR_INVALID_REQUEST,
                                     0, "not a readable event");
}


/*
 * The items of a batch signed for another Adyen merchant account, once this
 * account's are committed: each kept as an unreadable event with outcome
 * merchant_account (pay_event_keep_unreadable), its own bytes when they
 * verify alone (as any Adyen item is kept), else the whole body, under
 * "unreadable:" and the SHA-256 of the bytes kept, on the home shard.
 * Then the request is answered 400 bad_signature, as one of the other
 * account's alone is: Adyen delivers it again, this account's items come
 * back duplicate, the others are kept once.  One not kept (no database, no
 * memory) changes nothing of that answer.
 */

void
ngx_http_payments_webhook_foreign(ngx_http_payments_ctx_t *ctx)
{
    u_char              *bytes;
    size_t               len;
    ngx_uint_t           nkeys;
    pay_event_t         *ev;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->next_event == ctx->nevents + ctx->nforeign) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_BAD_SIGNATURE, 0, NULL));
        return;
    }

    ev = &ctx->events[ctx->next_event];
    nkeys = ctx->psp->wconf.nkeys ? ctx->psp->wconf.nkeys
                                  : ctx->psp->wconf.nsecrets;

    /* the bytes kept: the item alone when they verify alone */
    if (ev->evidence_len != 0
        && ev->evidence_off + ev->evidence_len <= ctx->body.len
        && ngx_http_payments_webhook_which_key(ctx,
               (char *) ctx->body.data + ev->evidence_off, ev->evidence_len)
           != nkeys)
    {
        bytes = ctx->body.data + ev->evidence_off;
        len = ev->evidence_len;

    } else {
        ev->evidence_len = 0;
        bytes = ctx->body.data;
        len = ctx->body.len;
    }

    ctx->params[3] = ctx->wh_headers;
    ctx->params[5] = "merchant_account";

    if (ngx_http_payments_webhook_unread_id(ctx, ev, bytes, len) != NGX_OK
        || ngx_http_payments_webhook_event_evidence(ctx, ev,
                                                    (char **) &ctx->params[2],
                                                    (char **) &ctx->params[4])
           != NGX_OK
        || ngx_http_payments_query(ctx,
                                   "SELECT pay_event_keep_unreadable($1, $2, "
                                   "$3, $4, $5, $6)",
                                   6, ngx_http_payments_webhook_foreign_kept)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: webhook event \"%s\" of psp \"%V\" cannot "
                      "be kept", ev->event_id, &ctx->psp->name);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_BAD_SIGNATURE, 0, NULL));
    }
}


static void
ngx_http_payments_webhook_foreign_kept(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: webhook event \"%s\" of psp \"%V\" not "
                      "kept: %s", ctx->events[ctx->next_event].event_id,
                      &ctx->psp->name,
                      res ? PQresultErrorMessage(res) : "no answer");
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_BAD_SIGNATURE, 0, NULL));
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: webhook event \"%s\" of psp \"%V\": %s",
                  ctx->events[ctx->next_event].event_id, &ctx->psp->name,
                  PQgetvalue(res, 0, 0));

    ctx->next_event++;
    ngx_http_payments_webhook_foreign(ctx);
}
