
/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments: validate, claim the Idempotency-Key together with the
 * checkout and every parameter the PSP will be sent (one transaction),
 * register one hosted session with the PSP under the nonce
 * <merchant_id>:<checkout_id>, commit its token and URL with the final
 * answer (one transaction), answer.
 *
 * A retry with the same key re-reads the stored PSP request, so the PSP
 * sees byte-identical requests under the same nonce and can never register
 * twice.  Nothing final is stored when the PSP cannot be reached: the lease
 * is released, telling the database whether a byte may have reached the
 * PSP (psp_contact), and the client's retry resumes the same registration.
 *
 * Two exceptions to "the stored request, byte for byte":
 * - a resume whose stored expires_at the PSP would now refuse (closer than
 *   its dialect's session_min: Stripe 30 min) rebuilds the request with a
 *   fresh expires_at (payments_session_lifetime from then) under the same
 *   nonce and stores it first (pay_refresh): the old bytes can
 *   only fail, and should the PSP hold a session of the old bytes, it
 *   refuses the new ones under the same Idempotency-Key, so it never makes
 *   two sessions;
 * - a PSP that refuses our credentials on a claim it cannot have seen
 *   before undoes the claim (pay_abandon): nothing stays stored.
 *
 * Without "psp" in the body, a payments_route chooses (_route.c): its
 * PSPs in an order drawn from the nonce, the first stored by pay_claim and
 * recorded by pay_route_bind before it is called.  The PSP's side moves
 * the checkout on to the next, bound in PostgreSQL before that one is
 * called, only after an outcome that proves the first made no session; a
 * resume goes to the PSP the checkout is bound to (pay_route_state).
 *
 * Transient failures (no answer, a timeout, 5xx, 429) are retried inside
 * the request's budget after a backoff with jitter (retry_base=, doubled,
 * retry_max=), or after the PSP's Retry-After when it fits.  Each PSP's
 * circuit breaker (_breaker.c) is asked before every attempt: while it is
 * open, a fresh claim is undone and a resumed one released, and the answer
 * is 503 psp_unavailable with Retry-After, without calling the PSP.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"
#include "ngx_http_payments_limit.h"

#include <payments/breaker.h>
#include <payments/json_dump.h>
#include <payments/view.h>


static ngx_int_t ngx_http_payments_register_parse(
    ngx_http_payments_ctx_t *ctx, ngx_int_t *rc);
static ngx_int_t ngx_http_payments_register_validate(
    ngx_http_payments_ctx_t *ctx, ngx_int_t *rc);
static ngx_int_t ngx_http_payments_register_validate_psp(
    ngx_http_payments_ctx_t *ctx, ngx_int_t *rc);
static void ngx_http_payments_register_bound(ngx_http_payments_ctx_t *ctx);
static char *ngx_http_payments_claim_options(ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_expires_ok(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc);
static void ngx_http_payments_register_claim(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_register_limited(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_register_checked(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_limit_peek_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_claim_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static const char *ngx_http_payments_seller_detail(ngx_http_request_t *r,
    const char *seller);
static void ngx_http_payments_checkout_cleanup(void *data);


void
ngx_http_payments_register_start(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_register_parse(ctx, &rc) != NGX_OK) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    /* a saved method's token is kept sealed, and never without a key */
    if ((ctx->co.save_usage != NULL || ctx->co.payment_method[0] != '\0')
        && ctx->pmcf->keyring == NULL)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_NOT_CONFIGURED, 0,
                                       "saved payment methods need "
                                       "payments_encryption_key: their PSP "
                                       "tokens are kept sealed"));
        return;
    }

    /* an off-session charge: its saved method first (its PSP, its token);
     * a save: the PSP customers the customer's earlier saves were made
     * under (_register_method.c); then the checks and the claim */
    if (ctx->co.payment_method[0] != '\0') {
        ngx_http_payments_register_method(ctx,
                                          ngx_http_payments_register_checked);
        return;
    }

    if (ctx->co.save_usage != NULL) {
        ngx_http_payments_register_saves(ctx,
                                         ngx_http_payments_register_checked);
        return;
    }

    ngx_http_payments_register_checked(ctx);
}


/* the checks every checkout passes, then its limits and its claim; after
 * its saved method or its PSP customers were read (_register_method.c) */

static void
ngx_http_payments_register_checked(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t  rc;

    switch (ngx_http_payments_register_validate(ctx, &rc)) {

    case NGX_OK:
        ngx_http_payments_register_limited(ctx);
        return;

    case NGX_AGAIN:
        /* what is stored is asked first (ngx_http_payments_unusable_done) */
        return;

    default:
        ngx_http_payments_finalize(ctx->request, rc);
    }
}


/* pay_claim's options: {"save": {...}} or {"payment_method": "pm_…"},
 * with a routed checkout's "route" and "passed_over"; NULL (SQL NULL) for
 * none of them; "" on no memory */

static char *
ngx_http_payments_claim_options(ngx_http_payments_ctx_t *ctx)
{
    char        *s, *out;
    json_t      *o, *passed, *p;
    ngx_uint_t   i;

    o = json_object();
    if (o == NULL) {
        return "";
    }

    if (ctx->co.save_usage != NULL) {
        if (json_object_set_new(o, "save",
                                json_pack("{s:s, s:s, s:s, s:s}",
                                          "customer", ctx->co.save_customer,
                                          "customer_ref", ctx->customer_ref,
                                          "usage", ctx->co.save_usage,
                                          "recurring",
                                          ctx->co.save_recurring))
            != 0)
        {
            goto failed;
        }

    } else if (ctx->co.payment_method[0] != '\0') {
        /* with the PSP settings its request is built with: the claim
         * compares them with those the method was saved under */
        if (json_object_set_new(o, "payment_method",
                                json_string(ctx->co.payment_method))
            != 0
            || ctx->built_conf == NULL
            || json_object_set_new(o, "psp_conf",
                                   json_loads(ctx->built_conf, 0, NULL))
               != 0)
        {
            goto failed;
        }
    }

    /* a routed checkout: its route, and the route's PSPs passed over
     * before this one, recorded with the claim */
    if (ctx->route_conf != NULL) {
        passed = json_array();

        if (passed == NULL
            || json_object_set_new(o, "passed_over", passed) != 0
            || json_object_set_new(o, "route",
                                   json_stringn((char *)
                                                ctx->route_conf->name.data,
                                                ctx->route_conf->name.len))
               != 0)
        {
            goto failed;
        }

        for (i = 0; i < ctx->route_at; i++) {
            if (ctx->route_passed[i] == NULL) {
                continue;
            }

            p = json_pack("{s:s%, s:s}",
                          "psp", ctx->route_psps[i]->name.data,
                          ctx->route_psps[i]->name.len,
                          "why", ctx->route_passed[i]);

            if (json_array_append_new(passed, p) != 0) {
                goto failed;
            }
        }
    }

    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }

    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);

    out = s ? ngx_http_payments_strdup(ctx->request->pool, s) : NULL;
    free(s);

    return out ? out : "";

failed:

    json_decref(o);
    return "";
}


/*
 * The body, parsed and kept for the request (the core's checks: JSON,
 * card data, fields, ids, amounts, URLs).  NGX_DONE with the error
 * answered and *rc set otherwise.
 */

static ngx_int_t
ngx_http_payments_register_parse(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc)
{
    pay_verdict_t         v;
    ngx_pool_cleanup_t   *cln;
    ngx_http_request_t   *r = ctx->request;

    if (pay_checkout_parse((char *) ctx->body.data, ctx->body.len, &ctx->co,
                           &v)
        != 0)
    {
        /* v.detail names the field and the rule, never the value */
        *rc = ngx_http_payments_problem(r, v.err, 0, v.detail);
        return NGX_DONE;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        pay_checkout_free(&ctx->co);
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    cln->handler = ngx_http_payments_checkout_cleanup;
    cln->data = &ctx->co;
    ctx->co_valid = 1;

    return NGX_OK;
}


/*
 * The checks after the router's (Idempotency-Key, create= limits, size and
 * type: ngx_http_payments_money_post) and the body's, in the contract's
 * order: business rules.  Nothing here is stored: the client may fix the
 * request and retry with the same key.
 * Returns NGX_OK when valid; otherwise NGX_DONE with the error answered and
 * *rc set to the result of sending it.
 */

static ngx_int_t
ngx_http_payments_register_validate(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc)
{
    /* without "psp" the first payments_route that matches chooses */
    if (ctx->co.psp[0] == '\0') {
        if (ngx_http_payments_route_choose(ctx, NULL) != NGX_OK) {
            ctx->psp = NULL;
            ctx->psp_refused = ngx_http_payments_route_refused(ctx);
        }

    } else {
        ctx->psp = ngx_http_payments_find_psp(ctx->pmcf, ctx->co.psp,
                                              ngx_strlen(ctx->co.psp));
    }

    if (ctx->psp == NULL && ctx->psp_refused == NULL) {
        ctx->psp_refused = "psp: no PSP of that name is configured";
    }

    /* test money never reaches a live PSP, nor live money a test one */
    if (ctx->psp != NULL && ctx->key_live != ctx->psp->live) {
        ctx->psp_refused = ctx->key_live
                           ? "psp: a live API key cannot use a test PSP"
                           : "psp: a test API key cannot use a live PSP";
    }

    /* no PSP to claim it for (an operator may have removed it, or its
     * route, or changed its mode since this request was first made):
     * answered from what is stored when known (a retry of a checkout
     * registered; a routed one unanswered resumes at its bound PSP when
     * that is configured still), else refused */
    if (ctx->psp_refused != NULL) {
        return ngx_http_payments_register_unusable(ctx, rc,
                                          ngx_http_payments_register_bound);
    }

    return ngx_http_payments_register_validate_psp(ctx, rc);
}


/*
 * A routed registration whose first attempt went unanswered, retried when
 * no route takes it any more (_register_known.c found the PSP it is bound
 * to still configured, in its key's mode, and set ctx->psp): the checks
 * of its PSP, then its limits and its claim, which resumes it there as an
 * approval without its route is (never moving on: no route says where).
 */

static void
ngx_http_payments_register_bound(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t  rc;

    ctx->psp_refused = NULL;

    if (ngx_http_payments_register_validate_psp(ctx, &rc) != NGX_OK) {
        ngx_http_payments_finalize(ctx->request, rc);
        return;
    }

    ngx_http_payments_register_limited(ctx);
}


/* the checks of the PSP a checkout is claimed at (ctx->psp); as
 * ngx_http_payments_register_validate */

static ngx_int_t
ngx_http_payments_register_validate_psp(ngx_http_payments_ctx_t *ctx,
    ngx_int_t *rc)
{
    pay_verdict_t         v;
    ngx_http_request_t   *r = ctx->request;

    /* the merchant may have removed an origin since this request was
     * first made: unless it is known (a replay, a retry of a checkout
     * registered), asked before the limits, it is refused */
    ctx->origin_refused = ngx_http_payments_origins_refuse(ctx);

    /* a closed PSP takes no new checkout; a request it took already is
     * answered, or resumed there (it is not new) */
    if (ctx->psp->closed) {
        ctx->closed_refused = "psp: this PSP is closed to new checkouts "
                              "(payments_psp ... closed); name another";
    }

    if (ngx_http_payments_expires_ok(ctx, rc) != NGX_OK) {
        return NGX_DONE;
    }

    /* every order and the total as this PSP counts them: a total
     * beyond 2^63 - 1 in its units (Adyen's ISK, in hundredths) would
     * otherwise be found only when the request is built, after the
     * claim */
    if (pay_psp_checkout_amounts(ctx->psp->dialect, &ctx->co, &v) != 0) {
        *rc = ngx_http_payments_problem(r, v.err, 0, v.detail);
        return NGX_DONE;
    }

    return NGX_OK;
}


/*
 * The amount velocity and the card-testing guard (they need the valid
 * body), then the claim.  An amount zone kept in Redis makes the request
 * wait for its answer: this runs again from the event loop then.
 */

static void
ngx_http_payments_register_limited(ngx_http_payments_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = NGX_OK;

    switch ((ctx->expires_soon || ctx->origin_refused != NULL
             || ctx->closed_refused != NULL)
            && !ctx->limit_peeked
            ? NGX_DECLINED
            : ngx_http_payments_limit_checkout(ctx, &rc,
                                          ngx_http_payments_register_limited))
    {
    case NGX_OK:
        ngx_http_payments_register_claim(ctx);
        return;

    case NGX_AGAIN:
        return;

    case NGX_DECLINED:
        /* a checkout limit would refuse it, its expires_at is too close
         * now, a return URL's origin is the merchant's no more, or its PSP
         * is closed: unless it is known already (a replay, a retry of a
         * checkout registered), which adds nothing and is answered by its
         * claim */
        ctx->params[0] = (char *) ctx->merchant.data;
        ctx->params[1] = ctx->idem_key;
        ctx->params[2] = ctx->co.checkout_id;

        if (ngx_http_payments_query(ctx, "SELECT pay_claim_peek($1, $2, $3)",
                                    3, ngx_http_payments_limit_peek_done)
            != NGX_OK)
        {
            ngx_http_payments_finalize(ctx->request,
                           ngx_http_payments_store_unavailable(ctx->request));
        }

        return;

    default:
        ngx_http_payments_finalize(ctx->request, rc);
    }
}


/* known: claimed, its claim answers it; else its PSP, its return URLs or
 * its expires_at refused, or the limits again, which refuse it now (or admit
 * it, when the window moved meanwhile) */

static void
ngx_http_payments_limit_peek_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_int_t                 rc;
    ngx_http_payments_ctx_t  *ctx = q->data;

    if (ngx_http_payments_pg_row(ctx->request, res, "pay_claim_peek")
        != NGX_OK)
    {
        return;
    }

    ctx->limit_peeked = 1;

    if (ngx_strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        ctx->limit_known = 1;
        ngx_http_payments_register_claim(ctx);
        return;
    }

    /* new: its PSP, its return URLs and its expires_at are refused as for
     * any new checkout */
    if (ctx->closed_refused != NULL) {
        ngx_http_payments_finalize(ctx->request,
                                   ngx_http_payments_problem(ctx->request,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       ctx->closed_refused));
        return;
    }

    if (ctx->origin_refused != NULL) {
        ngx_http_payments_finalize(ctx->request,
                                   ngx_http_payments_problem(ctx->request,
                                       PAY_ERR_FORBIDDEN_RETURN_URL, 0,
                                       ctx->origin_refused));
        return;
    }

    if (ctx->expires_soon
        && ngx_http_payments_expires_ok(ctx, &rc) != NGX_OK)
    {
        ngx_http_payments_finalize(ctx->request, rc);
        return;
    }

    ngx_http_payments_register_limited(ctx);
}


/*
 * A caller's expires_at within the PSP's window when the request arrives:
 * at least the dialect's session_min plus a lease ahead (a claim's request
 * may reach the PSP up to a lease later), at most its session_max.
 * Checked before the claim, as every field: outside, nothing is stored.
 */

static ngx_int_t
ngx_http_payments_expires_ok(ngx_http_payments_ctx_t *ctx, ngx_int_t *rc)
{
    int64_t         now, lo, hi;
    pay_verdict_t   v;

    if (ctx->co.expires_at == 0) {
        return NGX_OK;
    }

    now = (int64_t) ngx_time();
    lo = now + ctx->psp->dl->session_min + ctx->pmcf->lease;
    hi = now + ctx->psp->dl->session_max;

    if (ctx->co.expires_at >= lo && ctx->co.expires_at <= hi) {
        return NGX_OK;
    }

    /* too close now: unless the request is known already (a retry of a
     * checkout this expires_at was fine for), asked before the limits */
    if (ctx->co.expires_at < lo && !ctx->limit_peeked) {
        ctx->expires_soon = 1;
        return NGX_OK;
    }

    pay_verdict(&v, PAY_ERR_INVALID_EXPIRES_AT,
                "expires_at: this PSP takes %lld to %lld seconds ahead",
                (long long) (lo - now), (long long) (hi - now));

    *rc = ngx_http_payments_problem(ctx->request, v.err, 0, v.detail);

    return NGX_DONE;
}


/* Sends pay_claim, or answers (and finalizes) if it cannot. */

static void
ngx_http_payments_register_claim(ngx_http_payments_ctx_t *ctx)
{
    char                *req, *orders, *meta;
    size_t               i;
    ngx_int_t            rc;
    const char          *dup;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_register_ids(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /*
     * Everything the PSP will be sent is fixed now and stored with the
     * claim; a retry reads it back instead of building it again.
     */

    /* a save: the PSP knows the shopper by our reference */
    if (ctx->co.save_usage != NULL && ctx->customer_ref == NULL) {
        ctx->customer_ref = ngx_http_payments_customer_ref(ctx);

        if (ctx->customer_ref == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    /* the caller's, checked; else the configured lifetime */
    if (ctx->expires_at == 0) {
        ctx->expires_at = ctx->co.expires_at
                          ? ctx->co.expires_at
                          : (int64_t) ngx_time()
                            + ctx->pmcf->session_lifetime;
    }

    /* a checkout seen for the first time is asked about before its
     * claim, and its verdict goes with the claim: this runs again then */
    if (ngx_http_payments_risk_first(ctx, ngx_http_payments_register_claim)
        == NGX_AGAIN)
    {
        return;
    }

    /* a routed checkout is claimed at a PSP it can call now */
    if (ctx->route_conf != NULL) {
        ngx_http_payments_route_skip_open(ctx);
    }

    req = ngx_http_payments_register_build(ctx);
    if (req == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    orders = pay_checkout_orders_json(&ctx->co);

    meta = ctx->co.metadata != NULL
           ? pay_json_dumps(ctx->co.metadata)
           : strdup("{}");

    dup = ngx_http_payments_duplicate_body();

    if (req == NULL || orders == NULL || dup == NULL || meta == NULL) {
        goto failed;
    }

    /* values live in the request pool until the answer comes back */

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->fingerprint;
    ctx->params[3] = ngx_http_payments_num(r->pool, ctx->pmcf->lease);
    ctx->params[4] = ngx_http_payments_num(r->pool, ctx->pmcf->ttl);
    ctx->params[5] = ctx->co.checkout_id;
    ctx->params[6] = ctx->co.psp;
    ctx->params[7] = ctx->co.currency;
    ctx->params[8] = ngx_http_payments_num(r->pool, ctx->co.total);
    ctx->params[9] = ctx->co.success_url;
    ctx->params[10] = ctx->co.cancel_url;
    ctx->params[11] = ctx->co.buyer_email;          /* NULL: SQL NULL */
    ctx->params[12] = ngx_http_payments_num(r->pool, ctx->expires_at);
    ctx->params[13] = req;

    ctx->params[14] = ngx_http_payments_strdup(r->pool, orders);

    ctx->params[15] = (char *) dup;

    ctx->params[16] = ngx_http_payments_strdup(r->pool, meta);

    ctx->params[17] = ctx->co.manual_capture ? "manual" : "automatic";

    /* a save asked for, or the saved method charged (NULL: neither) */
    ctx->params[18] = ngx_http_payments_claim_options(ctx);

    for (i = 0; i < 18; i++) {
        if (ctx->params[i] == NULL && i != 11) {
            goto failed;
        }
    }

    if (ctx->params[18] != NULL && ctx->params[18][0] == '\0') {
        goto failed;
    }

    free(orders);
    free(meta);

    if (ctx->risk_first == NGX_HTTP_PAYMENTS_RISK_FIRST_JUDGED) {
        for (i = 0; i < 7; i++) {
            ctx->params[19 + i] = ctx->risk_args[i];
        }

        rc = ngx_http_payments_query(ctx,
                                "SELECT outcome, lease, retry_after, "
                                "response_status, response_body, psp_request, "
                                "expires_at, checkout_status, claim_age, "
                                "risk_outcome, risk_status, risk_body "
                                "FROM pay_claim_with_verdict($1, $2, $3, $4, "
                                "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                                "$15::jsonb, $16, $17::jsonb, $18, "
                                "$19::jsonb, $20, $21, $22, $23, $24, $25, "
                                "$26)",
                                26, ngx_http_payments_claim_done);

    } else {
        rc = ngx_http_payments_query(ctx,
                                "SELECT outcome, lease, retry_after, "
                                "response_status, response_body, psp_request, "
                                "expires_at, checkout_status, claim_age "
                                "FROM pay_claim($1, $2, $3, $4, "
                                "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                                "$15::jsonb, $16, $17::jsonb, $18, "
                                "$19::jsonb)",
                                19, ngx_http_payments_claim_done);
    }

    if (rc != NGX_OK) {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* from now on a request gone before the answer may leave it made */
    ngx_http_payments_limit_claiming(ctx, 1);

    return;

failed:

    free(orders);
    free(meta);

    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


static void
ngx_http_payments_claim_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    char                     *outcome, *state;
    ngx_int_t                 rc;
    ngx_uint_t                at;
    ngx_http_request_t       *r;
    ngx_http_payments_ctx_t  *ctx = q->data;

    r = ctx->request;

    ngx_http_payments_limit_claiming(ctx, 0);

    /* the merchant may not use this PSP (merchants.psps): nothing stored;
     * a routed checkout is claimed again for its route's next PSP, its
     * reserved amount still counted */
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state != NULL && ngx_strcmp(state, "PY035") == 0
        && ctx->route_conf != NULL && ctx->route_at + 1 < ctx->route_n)
    {
        ngx_http_payments_metrics_route(ctx->psp, &ctx->route_conf->name,
                                        "psp_not_allowed");
        ctx->route_passed[ctx->route_at] = "psp_not_allowed";

        /* the next that can take this checkout; those that cannot are
         * passed over, as when a checkout moves on */
        for (at = ctx->route_at + 1; at < ctx->route_n; at++) {
            ctx->psp = ctx->route_psps[at];

            if (ngx_http_payments_register_takes(ctx) != NULL) {
                break;
            }
        }

        if (at < ctx->route_n) {
            ctx->route_at = at;
            ngx_cpystrn((u_char *) ctx->co.psp, ctx->psp->name.data,
                        ctx->psp->name.len + 1);
            ngx_http_payments_register_claim(ctx);
            return;
        }

        ngx_http_payments_limit_claimed(ctx, NULL);
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       "psp: no PSP of the route that this "
                                       "merchant may use (payments-merchant "
                                       "set-psps) can take this checkout; "
                                       "nothing was stored"));
        return;
    }

    /* a reserved amount stays counted for a fresh claim, and for one sent
     * whose answer never came (it may have committed); an answer that is
     * no claim, or an error it was rolled back with, gives it back */
    if (res == NULL && q->sent) {
        ngx_http_payments_limit_claim_unknown(ctx);

    } else {
        ngx_http_payments_limit_claimed(ctx,
                                        (res && PQresultStatus(res)
                                                == PGRES_TUPLES_OK
                                         && PQntuples(res) == 1)
                                        ? PQgetvalue(res, 0, 0) : NULL);
    }

    if (state != NULL && ngx_strcmp(state, "PY035") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_INVALID_REQUEST, 0,
                                       "psp: this merchant may not use this "
                                       "PSP (payments-merchant set-psps); "
                                       "nothing was stored"));
        return;
    }

    if (ngx_http_payments_pg_row(r, res, "pay_claim") != NGX_OK) {
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_claim \"%s\": %s", ctx->nonce, outcome);

    /* replay, duplicate, in_use, reused: answered from the row; expired,
     * decided or canceling: never registered again */
    rc = ngx_http_payments_claim_known(ctx, res);
    if (rc != NGX_DECLINED) {
        ngx_http_payments_finalize(r, rc);
        return;
    }

    /* an order for a seller the merchant has not registered, when it has
     * registered any: nothing was stored, the key included */
    if (ngx_strcmp(outcome, "unknown_seller") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_SELLER_UNKNOWN, 0,
                                       ngx_http_payments_seller_detail(r,
                                           PQgetvalue(res, 0, 4))));
        return;
    }

    /* the saved method was detached (or is another PSP's) since it was
     * looked up: nothing was stored, the key included */
    if (ngx_strcmp(outcome, "method_unusable") == 0) {
        ngx_http_payments_finalize(r, ngx_http_payments_problem(r,
                                       PAY_ERR_METHOD_UNUSABLE, 0,
                                       "payment_method: the saved method "
                                       "can no longer be charged; nothing "
                                       "was stored"));
        return;
    }

    /* the saved method was saved under another merchant account than
     * its PSP's configuration names now: nothing was stored */
    if (ngx_strcmp(outcome, "merchant_account") == 0) {
        ngx_http_payments_finalize(r,
                                   ngx_http_payments_method_account_refused(
                                       ctx, PQgetvalue(res, 0, 4)));
        return;
    }

    if (ngx_strcmp(outcome, "claimed") != 0
        && ngx_strcmp(outcome, "resumed") != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_claim: unexpected outcome \"%s\"",
                      outcome);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* claimed or resumed: the stored request is what the PSP gets */

    ctx->lease = ngx_http_payments_strdup(r->pool, PQgetvalue(res, 0, 1));
    ctx->expires_at = pay_time_parse(PQgetvalue(res, 0, 6),
                                     PQgetlength(res, 0, 6), PAY_TIME_EPOCH);

    if (ctx->lease == NULL || ctx->expires_at <= 0
        || ngx_http_payments_request_load(ctx, PQgetvalue(res, 0, 5))
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: pay_claim: malformed stored request");
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    /* resumed: its holder's lease ran out (_register_resume.c) */
    if (outcome[0] == 'r') {
        ngx_http_payments_register_resumed(ctx, res);
        return;
    }

    /* claimed past a checkout limit, a closed PSP, a return URL's origin
     * or a too close expires_at as known, but new after all (its key was
     * undone in between): undone too, refused as a new checkout is */
    if (ctx->limit_known && ctx->closed_refused != NULL) {
        ctx->fail_err = PAY_ERR_INVALID_REQUEST;
        ctx->fail_detail = ctx->closed_refused;
        ngx_http_payments_register_abandon(ctx, NGX_HTTP_BAD_REQUEST);
        return;
    }

    if (ctx->limit_known && ctx->origin_refused != NULL) {
        ctx->fail_err = PAY_ERR_FORBIDDEN_RETURN_URL;
        ctx->fail_detail = ctx->origin_refused;
        ngx_http_payments_register_abandon(ctx, NGX_HTTP_BAD_REQUEST);
        return;
    }

    if (ctx->limit_known && ctx->expires_soon) {
        ctx->fail_err = PAY_ERR_INVALID_EXPIRES_AT;
        ctx->fail_detail = "expires_at: too close for this PSP now";
        ngx_http_payments_register_abandon(ctx, NGX_HTTP_BAD_REQUEST);
        return;
    }

    if (ctx->limit_known) {
        ctx->fail_err = PAY_ERR_RATE_LIMITED;
        ctx->fail_retry_after = 60;
        ctx->fail_detail = "the merchant's limits on new checkouts are "
                           "reached for now; retry later with the same "
                           "Idempotency-Key";
        ngx_http_payments_register_abandon(ctx, NGX_HTTP_TOO_MANY_REQUESTS);
        return;
    }

    /* a routed checkout's route and first PSP: recorded by the claim,
     * before the call */
    if (ctx->route_conf != NULL) {
        ngx_http_payments_route_claimed(ctx);
    }

    /* the verdict asked before the claim, stored with it: the PSP on
     * allow, else the answer it stored */
    if (ctx->risk_first == NGX_HTTP_PAYMENTS_RISK_FIRST_JUDGED) {
        ctx->risk_next = ngx_http_payments_psp_start;
        ngx_http_payments_risk_decided(ctx, res, 9);
        return;
    }

    /* the risk check first, when one is configured for this checkout;
     * then the PSP */
    ngx_http_payments_risk_start(ctx, ngx_http_payments_psp_start);
}


/* The detail of an order for a seller not registered, naming it (the
 * seller's account is the merchant's own identifier, never secret). */

static const char *
ngx_http_payments_seller_detail(ngx_http_request_t *r, const char *seller)
{
    u_char  *p, *last;
    size_t   len;

    len = sizeof("seller_account \"\" is not one of this merchant's "
                 "registered sellers (payments-merchant add-seller); "
                 "nothing was stored") + ngx_strlen(seller);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return "a seller_account is not one of this merchant's registered "
               "sellers";
    }

    last = ngx_snprintf(p, len - 1, "seller_account \"%s\" is not one of "
                        "this merchant's registered sellers "
                        "(payments-merchant add-seller); nothing was stored",
                        seller);
    *last = '\0';

    return (const char *) p;
}


static void
ngx_http_payments_checkout_cleanup(void *data)
{
    pay_checkout_free(data);
}
