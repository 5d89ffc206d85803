
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, a request known already (driven from _register.c):
 * the outcomes of its claim that answer it from what is stored (replayed,
 * in use, reused, another key's checkout) or never register it again
 * (its key expired, its checkout decided or being canceled); and a
 * request no configured PSP can take (its PSP or route removed, or the
 * PSP in the other mode), answered from what is stored when known
 * (pay_claim_answer, a read), else refused.  With the nonce and the
 * fingerprint both ask with, made once.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"


static void ngx_http_payments_unusable_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_unusable_bound_done(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_unusable_unsent(ngx_http_payments_ctx_t *ctx);
static const char *ngx_http_payments_register_detail(
    ngx_http_payments_ctx_t *ctx, const char *what, const char *status);


/*
 * The answer pay_claim stores for a key whose checkout or order ids another
 * key used (its p_duplicate_body): the same text for every claim, made
 * once a process.
 */
static const char  ngx_http_payments_duplicate_detail[] =
    "checkout_id or a payment_order_id was already used with another "
    "Idempotency-Key";

const char *
ngx_http_payments_duplicate_body(void)
{
    static char  *body;

    if (body == NULL) {
        body = pay_problem_json(PAY_ERR_DUPLICATE_ORDER, 0,
                                ngx_http_payments_duplicate_detail);
    }

    return body;
}


/* The nonce and the request's fingerprint, made once (a risk-checked or
 * routed checkout is claimed again: what is fixed stays as it was). */

ngx_int_t
ngx_http_payments_register_ids(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (ctx->nonce == NULL) {
        ctx->nonce = ngx_pnalloc(r->pool,
                                 ctx->merchant.len + 1 + PAY_ID_MAX + 1);
        if (ctx->nonce == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf((u_char *) ctx->nonce, "%V:%s%Z", &ctx->merchant,
                    ctx->co.checkout_id);
    }

    if (ctx->fingerprint == NULL) {
        ctx->fingerprint = ngx_pnalloc(r->pool, 65);

        if (ctx->fingerprint == NULL
            || pay_checkout_fingerprint(&ctx->co, "POST", "/v1/payments",
                                        ctx->fingerprint)
               != 0)
        {
            ctx->fingerprint = NULL;
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A registration with no PSP to claim it for (ctx->psp_refused says why):
 * what pay_claim would answer from what is stored (pay_claim_answer, a
 * read) answers a known request, so that a shop whose 201 was lost gets it
 * again after an operator removed the PSP, its route, or changed its mode.
 * A new request is refused as before, nothing stored; one whose first
 * attempt was never answered is sent only to the PSP it was claimed for:
 * a routed one whose route is gone goes on with bound (the checks of that
 * PSP, the limits and the claim, which resumes it there) when that PSP is
 * configured still, in its key's mode; otherwise it is not sent.
 * NGX_AGAIN: asked; NGX_DONE with *rc otherwise.
 */

ngx_int_t
ngx_http_payments_register_unusable(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc, void (*bound)(ngx_http_payments_ctx_t *ctx))
{
    ngx_http_request_t  *r = ctx->request;

    ctx->unusable_bound = bound;

    if (ngx_http_payments_register_ids(ctx) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->fingerprint;
    ctx->params[3] = ctx->co.checkout_id;

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, lease, retry_after, "
                                "response_status, response_body, psp_request, "
                                "expires_at, checkout_status, claim_age "
                                "FROM pay_claim_answer($1, $2, $3, $4)",
                                4, ngx_http_payments_unusable_done)
        != NGX_OK)
    {
        *rc = ngx_http_payments_store_unavailable(r);
        return NGX_DONE;
    }

    return NGX_AGAIN;
}


static void
ngx_http_payments_unusable_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *outcome;
    ngx_int_t                 rc;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_claim_answer") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    /* new: refused as it always was, nothing stored */
    if (ngx_strcmp(outcome, "new") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       ctx->psp_refused));
        return;
    }

    /* the checkout is another key's (pay_claim would store this answer
     * under this key; nothing is stored here) */
    if (ngx_strcmp(outcome, "duplicate") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_DUPLICATE_ORDER, 0,
                                       ngx_http_payments_duplicate_detail));
        return;
    }

    /* replay, in_use, reused, expired, decided, canceling */
    rc = ngx_http_payments_claim_known(ctx, res);
    if (rc != NGX_DECLINED) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    if (ngx_strcmp(outcome, "unsent") != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_claim_answer: unexpected outcome \"%s\"",
                      outcome);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* its first attempt was never answered: it may be sent only to the
     * PSP it was claimed for, under its nonce.  A routed one (no "psp" in
     * its body) whose route is gone: that PSP, read from its checkout,
     * may be configured still */
    if (ctx->co.psp[0] == '\0') {
        ctx->params[0] = (char *) ctx->merchant.data;
        ctx->params[1] = ctx->co.checkout_id;

        if (ngx_http_payments_query(ctx, "SELECT pay_route_state($1, $2)",
                                    2, ngx_http_payments_unusable_bound_done)
            != NGX_OK)
        {
            ngx_http_payments_finalize(r,
                                   ngx_http_payments_store_unavailable(r));
        }

        return;
    }

    ngx_http_payments_unusable_unsent(ctx);
}


/* a routed registration, unanswered, its route gone: on at the PSP it is
 * bound to when this gateway can use it (configured, in the key's mode;
 * a closed one still takes what it took), else not sent */

static void
ngx_http_payments_unusable_bound_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                     *name;
    ngx_http_payments_psp_t  *psp;
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (ngx_http_payments_pg_row(r, res, "pay_route_state") != NGX_OK) {
        return;
    }

    name = PQgetvalue(res, 0, 0);
    psp = PQgetisnull(res, 0, 0)
          ? NULL
          : ngx_http_payments_find_psp(ctx->pmcf, name, ngx_strlen(name));

    if (psp == NULL || psp->live != ctx->key_live) {
        ngx_http_payments_unusable_unsent(ctx);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "payments: registration \"%s\" was not answered and no "
                  "route takes it now (%s): sent again to psp \"%s\", "
                  "which it is bound to", ctx->nonce, ctx->psp_refused, name);

    ctx->psp = psp;
    ctx->route_gone = 1;
    ngx_cpystrn((u_char *) ctx->co.psp, psp->name.data, psp->name.len + 1);
    ctx->unusable_bound(ctx);
}


/* a registration whose first attempt was never answered, and whose PSP
 * this gateway cannot use now: kept for a retry once it can, and for the
 * PSP's word (a session an attempt made is paid by its webhook) */

static void
ngx_http_payments_unusable_unsent(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: registration \"%s\" was not answered and "
                  "cannot be sent again: %s", ctx->nonce, ctx->psp_refused);

    ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                   PAY_ERR_NOT_CONFIGURED, 0,
                                   ngx_http_payments_register_detail(ctx,
                                       "the registration under this "
                                       "Idempotency-Key was not answered, "
                                       "and is sent again only to the PSP "
                                       "it was claimed for, which this "
                                       "gateway cannot use now; retry with "
                                       "the same key once it can: GET "
                                       "/v1/checkouts/", NULL)));
}


/* The outcomes of a claim (or of pay_claim_answer) of a request known
 * already: answered from the row (replay, duplicate, in_use, reused), or
 * never registered again (expired, decided, canceling); the status to
 * finalize with, NGX_DECLINED for any other outcome. */

ngx_int_t
ngx_http_payments_claim_known(ngx_http_payments_ctx_t *ctx, PGresult *res)
{
    char                *outcome;
    ngx_int_t            rc;
    ngx_http_request_t  *r = ctx->request;

    rc = ngx_http_payments_claim_answer(r, res);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    outcome = PQgetvalue(res, 0, 0);

    /* the same request after its key expired: the checkout it registered
     * is kept as it is, and never registered again */
    if (ngx_strcmp(outcome, "expired") == 0) {
        return ngx_http_payments_problem(r, PAY_ERR_DUPLICATE_ORDER, 0,
                   ngx_http_payments_register_detail(ctx,
                       "this Idempotency-Key expired before this retry; "
                       "the checkout it registered is kept and not "
                       "registered again: GET /v1/checkouts/", NULL));
    }

    /* a resumed registration whose checkout was paid or failed meanwhile
     * (its webhook came): a new session would be a second way to pay */
    if (ngx_strcmp(outcome, "decided") == 0) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: registration \"%s\" is %s: not sent to "
                      "the PSP again", ctx->nonce, PQgetvalue(res, 0, 7));

        return ngx_http_payments_problem(r, PAY_ERR_DUPLICATE_ORDER, 0,
                   ngx_http_payments_register_detail(ctx,
                       "the PSP's answer to this registration was lost, "
                       "and the checkout was decided since; it is not "
                       "registered again: GET /v1/checkouts/",
                       PQgetvalue(res, 0, 7)));
    }

    /* a resumed registration whose checkout the shop asked to cancel: a
     * session made now would outlive the cancel, which ends only the one
     * it saw */
    if (ngx_strcmp(outcome, "canceling") == 0) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "payments: registration \"%s\" is being canceled: "
                      "not sent to the PSP again", ctx->nonce);

        return ngx_http_payments_problem(r, PAY_ERR_DUPLICATE_ORDER, 0,
                   ngx_http_payments_register_detail(ctx,
                       "the PSP's answer to this registration was lost, "
                       "and the shop asked to cancel the checkout since; "
                       "it is not registered again: GET /v1/checkouts/",
                       NULL));
    }

    return NGX_DECLINED;
}


/* "<what><checkout_id>" and " (<status>)" when given: a problem's detail
 * in the request's pool, or a generic one */

static const char *
ngx_http_payments_register_detail(ngx_http_payments_ctx_t *ctx,
    const char *what, const char *status)
{
    u_char  *p, *last;
    size_t   len;

    len = ngx_strlen(what) + ngx_strlen(ctx->co.checkout_id)
          + (status ? ngx_strlen(status) + sizeof(" (is )") : 0) + 1;

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return "the checkout is kept and not registered again";
    }

    last = status ? ngx_snprintf(p, len - 1, "%s%s (is %s)", what,
                                 ctx->co.checkout_id, status)
                  : ngx_snprintf(p, len - 1, "%s%s", what,
                                 ctx->co.checkout_id);
    *last = '\0';

    return (const char *) p;
}
