/*
 * Copyright (C) ngx_payments authors
 *
 * POST /v1/payments, how a PSP call ends (ngx_http_payments_register.h):
 * the claim finished with the PSP's token and URL (a session, or the
 * hosted page of an off-session charge that needs the shopper) or with an
 * off-session charge's outcome (taken, declined), released when the PSP
 * could not be reached or its answer stayed unsure (resumable under the
 * same key), or abandoned when the PSP refused our credentials and can
 * hold nothing of it.  Below _register_psp.c, which calls it;
 * calls the leaves and the limits' hooks (an amount limit's reservation
 * given back when a charge is refused or a claim abandoned).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"
#include "ngx_http_payments_limit.h"

#include <payments/view.h>


static void ngx_http_payments_release_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_payments_psp_problem(ngx_http_payments_ctx_t *ctx,
    const char *detail);
static void ngx_http_payments_abandon_done(ngx_http_payments_pg_query_t *q,
    PGresult *res);


/*
 * The PSP refused the gateway's credentials: alerted; a claim the PSP
 * cannot hold anything of (may_abandon) is undone, any other released
 * and kept resumable.  Registrations and off-session charges alike.
 */

void
ngx_http_payments_psp_refused_us(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, ngx_uint_t may_abandon)
{
    ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, 0,
                  "payments: psp \"%V\" refused the gateway's "
                  "credentials (HTTP %l): check its secret_file",
                  &ctx->psp->name, f->status);

    if (!may_abandon) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ctx->fail_detail = "the PSP refused the gateway's credentials; "
                       "nothing was stored";
    ngx_http_payments_register_abandon(ctx, NGX_HTTP_BAD_GATEWAY);
}


void
ngx_http_payments_register_finish(ngx_http_payments_ctx_t *ctx,
    const char *status, pay_psp_result_t *res, int64_t expires_at,
    char *body)
{
    ngx_uint_t           created;
    ngx_http_request_t  *r = ctx->request;

    if (body == NULL) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    created = (res->outcome == PAY_PSP_CREATED);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: registration \"%s\": %s after %ui attempts, "
                   "pay_finish", ctx->nonce, status, ctx->attempts);

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ctx->co.checkout_id;
    ctx->params[4] = status;
    /* sealed at rest with a keyring, and found through its blind index */
    ctx->params[5] = created ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                                   NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                                   (char *) ctx->merchant.data,
                                   ctx->co.checkout_id, res->token)
                             : NULL;
    ctx->params[6] = created ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                                   NGX_HTTP_PAYMENTS_SEALED_URL,
                                   (char *) ctx->merchant.data,
                                   ctx->co.checkout_id, res->url)
                             : NULL;
    ctx->params[11] = (created && ctx->pmcf->keyring)
                      ? ngx_http_payments_token_index(r->pool, ctx->pmcf,
                                                      &ctx->psp->name,
                                                      res->token)
                      : NULL;
    ctx->params[7] = ngx_http_payments_num(r->pool, expires_at);
    ctx->params[8] = created ? NULL
                             : ngx_http_payments_strdup(r->pool, res->reason);
    ctx->params[9] = "201";
    /* the answer names the token and the pay link: sealed as well */
    ctx->params[10] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                             NGX_HTTP_PAYMENTS_SEALED_RESPONSE,
                                             (char *) ctx->merchant.data,
                                             ctx->idem_key, body);
    ctx->answer = ngx_http_payments_strdup(r->pool, body);

    free(body);

    if ((created && (ctx->params[5] == NULL || ctx->params[6] == NULL
                     || (ctx->pmcf->keyring && ctx->params[11] == NULL)))
        || ctx->params[7] == NULL || ctx->params[10] == NULL)
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT response_status, response_body FROM "
                                "pay_finish($1, $2, $3, $4, $5, $6, $7, $8, "
                                "$9, $10, $11, $12)",
                                12, ngx_http_payments_finish_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


void
ngx_http_payments_finish_done(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /*
     * Without its row the commit may or may not have happened; the retry with
     * the same key finds out (a replay, or a resume once the lease ends,
     * which the PSP answers with the same session).
     */
    if (ngx_http_payments_pg_row(r, res, "pay_finish") != NGX_OK) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_finish \"%s\": answer %s", ctx->nonce,
                   PQgetvalue(res, 0, 0));

    /* the answer is sent from what was stored, as a replay is; when that
     * is what this request stored, its text in the clear, not opened again */
    if (ctx->answer != NULL && ctx->params[10] != NULL
        && ngx_strcmp(PQgetvalue(res, 0, 1), ctx->params[10]) == 0)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                       PQgetvalue(res, 0, 0), ctx->answer,
                                       ngx_strlen(ctx->answer), 0));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                   PQgetvalue(res, 0, 0),
                                   PQgetvalue(res, 0, 1),
                                   PQgetlength(res, 0, 1), 0));
}


/*
 * The PSP refused an off-session charge at once: 402 problem+json
 * (payment_declined with the PSP's decline_code, or
 * authentication_required when no hosted page could be made for the
 * shopper), the checkout FAILED with that failure, stored under the key.
 */

void
ngx_http_payments_charge_refused(ngx_http_payments_ctx_t *ctx,
    pay_psp_charge_result_t *res)
{
    char      *body, *s;
    json_t    *o;
    pay_err_e  err;

    ngx_http_payments_limit_refused(ctx);

    err = res->outcome == PAY_CHARGE_DECLINED ? PAY_ERR_PAYMENT_DECLINED
                                              : PAY_ERR_AUTH_REQUIRED;

    s = pay_problem_json(err, 0,
                         res->outcome == PAY_CHARGE_DECLINED
                         ? "the PSP declined the off-session charge; "
                           "the checkout is FAILED: ask the shopper for "
                           "another method"
                         : "the card's issuer asks for the shopper to "
                           "authenticate; the checkout is FAILED: "
                           "charge again with the shopper present");
    o = s ? json_loads(s, 0, NULL) : NULL;
    free(s);

    body = NULL;

    if (o != NULL
        && json_object_set_new(o, "checkout_id",
                               json_string(ctx->co.checkout_id)) == 0
        && json_object_set_new(o, "decline_code",
                               json_string(res->decline_code)) == 0
        && json_object_set_new(o, "psp_message",
                               json_string(res->reason)) == 0)
    {
        body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }

    json_decref(o);

    ngx_http_payments_charge_finish(ctx,
                                    res->outcome == PAY_CHARGE_DECLINED
                                    ? "declined"
                                    : "authentication_required",
                                    res, 402, body);
}


/* an off-session charge's outcome stored under the key with its answer
 * (pay_charge_finish): taken, with the PSP's payment id sealed, or
 * refused; answered from what was stored (finish_done) */

void
ngx_http_payments_charge_finish(ngx_http_payments_ctx_t *ctx,
    const char *outcome, pay_psp_charge_result_t *res, ngx_uint_t status,
    char *body)
{
    ngx_uint_t           ref;
    ngx_http_request_t  *r = ctx->request;

    if (body == NULL) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ref = (res->psp_ref[0] != '\0');

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ctx->co.checkout_id;
    ctx->params[4] = outcome;
    /* the PSP's payment id: sealed and found by its blind index, as a
     * session's token */
    ctx->params[5] = ref ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                               NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                               (char *) ctx->merchant.data,
                               ctx->co.checkout_id, res->psp_ref)
                         : NULL;
    ctx->params[6] = ref ? ngx_http_payments_token_index(r->pool, ctx->pmcf,
                                                         &ctx->psp->name,
                                                         res->psp_ref)
                         : NULL;
    ctx->params[7] = res->outcome == PAY_CHARGE_ACCEPTED
                     ? NULL
                     : ngx_http_payments_strdup(r->pool,
                                                res->decline_code[0]
                                                ? res->decline_code
                                                : res->reason);
    ctx->params[8] = ngx_http_payments_num(r->pool, (int64_t) status);
    ctx->params[9] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                            NGX_HTTP_PAYMENTS_SEALED_RESPONSE,
                                            (char *) ctx->merchant.data,
                                            ctx->idem_key, body);
    free(body);

    if ((ref && (ctx->params[5] == NULL || ctx->params[6] == NULL))
        || ctx->params[8] == NULL || ctx->params[9] == NULL
        || (res->outcome != PAY_CHARGE_ACCEPTED && ctx->params[7] == NULL))
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT response_status, response_body FROM "
                                "pay_charge_finish($1, $2, $3, $4, $5, $6, "
                                "$7, $8, $9, $10)",
                                10, ngx_http_payments_finish_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/* the hosted page of an off-session charge that needs the shopper, stored
 * with its answer, 202 (pay_charge_authenticate); answered from what was
 * stored (finish_done) */

void
ngx_http_payments_authenticate_finish(ngx_http_payments_ctx_t *ctx,
    pay_psp_result_t *res, int64_t expires_at, char *body)
{
    pay_psp_charge_result_t  *charge = ctx->charge_res;
    ngx_http_request_t       *r = ctx->request;

    if (body == NULL) {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ctx->co.checkout_id;
    /* the session's token and URL sealed, as a registration's */
    ctx->params[4] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                            NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                                            (char *) ctx->merchant.data,
                                            ctx->co.checkout_id, res->token);
    ctx->params[5] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                            NGX_HTTP_PAYMENTS_SEALED_URL,
                                            (char *) ctx->merchant.data,
                                            ctx->co.checkout_id, res->url);
    ctx->params[6] = ngx_http_payments_num(r->pool, expires_at);
    ctx->params[7] = ngx_http_payments_strdup(r->pool,
                                              charge->decline_code[0]
                                              ? charge->decline_code
                                              : charge->reason[0]
                                              ? charge->reason
                                              : "authentication_required");
    ctx->params[8] = "202";
    ctx->params[9] = ngx_http_payments_seal(r->pool, ctx->pmcf,
                                            NGX_HTTP_PAYMENTS_SEALED_RESPONSE,
                                            (char *) ctx->merchant.data,
                                            ctx->idem_key, body);
    ctx->params[10] = ctx->pmcf->keyring
                      ? ngx_http_payments_token_index(r->pool, ctx->pmcf,
                                                      &ctx->psp->name,
                                                      res->token)
                      : NULL;
    free(body);

    if (ctx->params[4] == NULL || ctx->params[5] == NULL
        || ctx->params[6] == NULL || ctx->params[7] == NULL
        || ctx->params[9] == NULL
        || (ctx->pmcf->keyring && ctx->params[10] == NULL))
    {
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT response_status, response_body FROM "
                                "pay_charge_authenticate($1, $2, $3, $4, $5, "
                                "$6, $7, $8, $9, $10, $11)",
                                11, ngx_http_payments_finish_done)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


/*
 * The PSP could not be reached or refused our credentials: store nothing
 * final, end the lease so that the client's retry resumes at once, answer
 * 502 or 504.  The database is told whether this request's attempts may
 * have reached the PSP (psp_sent): a checkout that no attempt can have
 * reached is sent by a resume even past the PSP's key window (the PSP
 * never saw its key).  The answer waits for the release: the query lives
 * in the request's pool.
 */

void
ngx_http_payments_register_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ctx->psp_sent ? "true" : "false";

    if (ngx_http_payments_query(ctx, "SELECT pay_release($1, $2, $3, "
                                "$4::boolean)",
                                4, ngx_http_payments_release_done)
        != NGX_OK)
    {
        ngx_http_payments_release_done(&ctx->query, NULL);
    }
}


static void
ngx_http_payments_release_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_release failed; the lease ends by "
                      "itself");

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: pay_release \"%s\": lease ended, answer "
                       "%ui", ctx->nonce, ctx->fail_status);
    }

    ngx_http_payments_finalize(r, ngx_http_payments_psp_problem(ctx,
                                   "the PSP did not complete the "
                                   "registration; retry with the same "
                                   "Idempotency-Key"));
}


/* 502, 503 or 504 psp_unavailable, with Retry-After when it is known;
 * another problem when the release or undo was for its sake (fail_err) */

static ngx_int_t
ngx_http_payments_psp_problem(ngx_http_payments_ctx_t *ctx,
    const char *detail)
{
    char                *p;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->fail_retry_after > 0) {
        p = ngx_http_payments_num(r->pool, (int64_t) ctx->fail_retry_after);

        if (p == NULL
            || ngx_http_payments_add_header(r, "Retry-After", p) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_payments_problem(r, ctx->fail_err != PAY_ERR_NONE
                                        ? ctx->fail_err
                                        : PAY_ERR_PSP_UNAVAILABLE,
                                     ctx->fail_status,
                                     ctx->fail_detail ? ctx->fail_detail
                                                      : detail);
}


/*
 * The PSP refused our credentials and cannot hold a session of this claim,
 * its circuit is open (503), or a limit on new checkouts (429), a return
 * URL's origin or a too close expires_at (400, fail_err says which)
 * refused the claim (_register.c): undo the claim
 * (API.md: nothing stored), so that a retry, with this key or another,
 * registers the same ids afresh.
 */

void
ngx_http_payments_register_abandon(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status)
{
    ctx->fail_status = status;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;

    ctx->params[3] = (status == NGX_HTTP_SERVICE_UNAVAILABLE)
                     ? "psp_circuit_open"
                     : (status == NGX_HTTP_TOO_MANY_REQUESTS)
                       ? "limit_reached"
                       : (ctx->fail_err == PAY_ERR_FORBIDDEN_RETURN_URL)
                         ? "return_url_forbidden"
                         : (status == NGX_HTTP_BAD_REQUEST)
                           ? "expires_too_soon" : "psp_refused_credentials";

    if (ngx_http_payments_query(ctx, "SELECT pay_abandon($1, $2, $3, $4)",
                                4, ngx_http_payments_abandon_done)
        != NGX_OK)
    {
        ngx_http_payments_register_release(ctx, status);
    }
}


static void
ngx_http_payments_abandon_done(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't')
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "payments: pay_abandon did not undo registration "
                      "\"%s\"%s%s; releasing its lease", ctx->nonce,
                      res ? ": " : "", res ? PQresultErrorMessage(res) : "");
        ngx_http_payments_register_release(ctx, ctx->fail_status);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: pay_abandon \"%s\": claim undone, answer %ui",
                   ctx->nonce, ctx->fail_status);

    /* nothing is stored, so nothing stays reserved either */
    ngx_http_payments_limit_claimed(ctx, NULL);

    ngx_http_payments_finalize(r, ngx_http_payments_psp_problem(ctx,
                                   "nothing was stored"));
}
