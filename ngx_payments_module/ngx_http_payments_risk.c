
/*
 * Copyright (C) ngx_payments authors
 *
 * The risk check of POST /v1/payments (doc/RISK.md): before the first PSP
 * call, the checkout's request is POSTed to the provider of payments_risk
 * through the libcurl multi driver, signed with its secret; its answer
 * (verified when answer_secret_file= is given, parsed strictly) or, when
 * there is none usable, the on_error= policy gives the verdict.  A
 * checkout seen for the first time (neither its key nor its checkout_id
 * known: pay_claim_peek, a read) is asked about before its claim, and the
 * verdict is stored in the claim's own transaction
 * (pay_claim_with_verdict): one commit before the PSP call, as without a
 * check.  Any other (a retry, a resume) is asked between its claim (the
 * checkout stored EXECUTING under its Idempotency-Key) and the PSP call,
 * and pay_risk_record stores the verdict under the claim's lease:
 *   allow   the registration goes on to the PSP (_register_psp.c);
 *   deny    the checkout FAILED (risk_declined), the key done with the 403
 *           answer, so the same key replays it; no PSP is called;
 *   review  the checkout in REVIEW, the key done with the 202 answer; no
 *           PSP is called until a person decides.
 * A resumed claim that already has a verdict keeps it (pay_risk_record
 * says which): a checkout the PSP may have seen is never denied later.
 * The request and the judging of its answer are shared with the check
 * after the payment (_risk_after.c, from the sweeper's round).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"
#include "ngx_http_payments_limit.h"

#include <payments/apikey.h>
#include <payments/view.h>


static ngx_uint_t ngx_http_payments_risk_applies(
    ngx_http_payments_risk_t *rk, ngx_http_payments_ctx_t *ctx);
static ngx_int_t ngx_http_payments_risk_call(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_risk_t *rk);
static size_t ngx_http_payments_risk_header(char *buf, size_t size,
    size_t n, void *userdata);
static void ngx_http_payments_risk_peeked(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_risk_asked(ngx_http_payments_ctx_t *ctx);
static void ngx_http_payments_risk_done(ngx_http_payments_fetch_t *f);
static ngx_int_t ngx_http_payments_risk_args(ngx_http_payments_ctx_t *ctx,
    pay_risk_verdict_e verdict, int score, const char *reason,
    const char *source, const char **args);
static void ngx_http_payments_risk_record(ngx_http_payments_ctx_t *ctx,
    pay_risk_verdict_e verdict, int score, const char *reason,
    const char *source);
static void ngx_http_payments_risk_recorded(ngx_http_payments_pg_query_t *q,
    PGresult *res);


#define NGX_HTTP_PAYMENTS_RISK_SIG_HEADER  "Payments-Signature"


/*
 * Before the claim: a checkout this check applies to, whose key and
 * checkout_id the store has never seen, is asked about now, and next (the
 * claim) runs again with the verdict in ctx->risk_args.  A known one is
 * claimed first: next runs again, a replay or a reused checkout_id is
 * answered without asking the provider, and a resume is asked after its
 * claim (risk_start).  NGX_OK: nothing to ask before the claim, go on.
 */

ngx_int_t
ngx_http_payments_risk_first(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx))
{
    ngx_http_request_t            *r = ctx->request;
    ngx_http_payments_loc_conf_t  *plcf;

    if (ctx->risk_first != NGX_HTTP_PAYMENTS_RISK_FIRST_NONE) {
        return NGX_OK;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_module);

    if (plcf->risk == NULL
        || !ngx_http_payments_risk_applies(plcf->risk, ctx))
    {
        ctx->risk_first = NGX_HTTP_PAYMENTS_RISK_FIRST_CLAIM;
        return NGX_OK;
    }

    ctx->risk = plcf->risk;
    ctx->risk_next = next;
    ctx->risk_first = NGX_HTTP_PAYMENTS_RISK_FIRST_ASKING;

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->co.checkout_id;

    if (ngx_http_payments_query(ctx, "SELECT pay_claim_peek($1, $2, $3)", 3,
                                ngx_http_payments_risk_peeked)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }

    return NGX_AGAIN;
}


static void
ngx_http_payments_risk_peeked(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;
    ngx_http_request_t       *r = ctx->request;

    /* nothing was stored: the client's retry starts again */
    if (ngx_http_payments_pg_row(r, res, "pay_claim_peek") != NGX_OK) {
        return;
    }

    if (PQgetvalue(res, 0, 0)[0] == 't') {
        ctx->risk_first = NGX_HTTP_PAYMENTS_RISK_FIRST_CLAIM;
        ctx->risk_next(ctx);
        return;
    }

    ngx_http_payments_risk_asked(ctx);
}


/*
 * After the claim: the check risk_first found applying to this checkout
 * (ctx->risk; NULL: none), asked now that the claim is stored.
 */

void
ngx_http_payments_risk_start(ngx_http_payments_ctx_t *ctx,
    void (*next)(ngx_http_payments_ctx_t *ctx))
{
    /* the registration's next step once the checkout may go on */
    ctx->risk_next = next;

    if (ctx->risk == NULL) {
        next(ctx);
        return;
    }

    ngx_http_payments_risk_asked(ctx);
}


/* the provider asked about ctx's checkout, before or after its claim */

static void
ngx_http_payments_risk_asked(ngx_http_payments_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    if (ngx_http_payments_risk_call(ctx, ctx->risk) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "payments: risk check of \"%s\": could not start "
                      "the request", ctx->nonce);
        ngx_http_payments_metrics_risk_error(NGX_HTTP_PAYMENTS_RISKE_NETWORK);
        ngx_http_payments_risk_record(ctx, ctx->risk->on_error, -1,
                                      "unavailable", "on_error");
    }
}


/* merchants=, currencies=, min_amount=: all that are given must match */

static ngx_uint_t
ngx_http_payments_risk_applies(ngx_http_payments_risk_t *rk,
    ngx_http_payments_ctx_t *ctx)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    if (rk->merchants) {
        s = rk->merchants->elts;

        for (i = 0; i < rk->merchants->nelts; i++) {
            if (s[i].len == ctx->merchant.len
                && ngx_strncmp(s[i].data, ctx->merchant.data, s[i].len) == 0)
            {
                break;
            }
        }

        if (i == rk->merchants->nelts) {
            return 0;
        }
    }

    if (rk->currencies) {
        s = rk->currencies->elts;

        for (i = 0; i < rk->currencies->nelts; i++) {
            if (ngx_strncmp(s[i].data, ctx->co.currency, 3) == 0) {
                break;
            }
        }

        if (i == rk->currencies->nelts) {
            return 0;
        }
    }

    return ctx->co.total >= rk->min_amount;
}


static ngx_int_t
ngx_http_payments_risk_call(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_risk_t *rk)
{
    char                *body;
    size_t               len;
    ngx_http_request_t  *r = ctx->request;

    body = pay_risk_request(&ctx->co, (char *) ctx->merchant.data);
    if (body == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(body);

    /* the body lives as long as the transfer: in the request's pool */
    ctx->risk_body = ngx_http_payments_strdup(r->pool, body);
    free(body);

    if (ctx->risk_body == NULL) {
        return NGX_ERROR;
    }

    ctx->fetch.handler = ngx_http_payments_risk_done;
    ctx->fetch.data = ctx;
    ctx->fetch.log = r->connection->log;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: risk check of \"%s\", %uz bytes", ctx->nonce,
                   len);

    /* the nonce: the provider may answer a repeated question the same */
    return ngx_http_payments_risk_ask(rk, r->pool, &ctx->fetch,
                                      ctx->risk_body, len, ctx->nonce,
                                      &ctx->risk_sig);
}


ngx_int_t
ngx_http_payments_risk_ask(ngx_http_payments_risk_t *rk, ngx_pool_t *pool,
    ngx_http_payments_fetch_t *f, const char *body, size_t len,
    const char *key, ngx_http_payments_risk_sig_t *sig)
{
    char               hdr[PAY_RISK_SIG_MAX + 64], mac[PAY_RISK_SIG_MAX];
    CURL              *easy;

    if (pay_risk_sign(rk->secret.data, rk->secret.len, (int64_t) ngx_time(),
                      NULL, body, len, mac, sizeof(mac))
        != 0)
    {
        return NGX_ERROR;
    }

    /* a signed answer is bound to this request's key (doc/RISK.md) */
    sig->pool = pool;
    sig->value = NULL;
    sig->key = ngx_pnalloc(pool, ngx_strlen(key) + 1);

    if (sig->key == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(sig->key, key, ngx_strlen(key) + 1);

    if (ngx_http_payments_fetch_easy(pool, f) != NGX_OK) {
        return NGX_ERROR;
    }

    easy = f->easy;

    ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1, "%s: %s%Z",
                 NGX_HTTP_PAYMENTS_RISK_SIG_HEADER, mac);

    if (ngx_http_payments_fetch_header(f, hdr) != NGX_OK
        || ngx_http_payments_fetch_header(f, "Content-Type: application/json")
           != NGX_OK
        || ngx_http_payments_fetch_header(f, "Accept: application/json")
           != NGX_OK
        || ngx_http_payments_fetch_header(f, "Expect:") != NGX_OK)
    {
        ngx_http_payments_fetch_cancel(f);
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1, "Idempotency-Key: %s%Z",
                 key);

    if (ngx_strlen(key) > sizeof(hdr) - 32
        || ngx_http_payments_fetch_header(f, hdr) != NGX_OK)
    {
        ngx_http_payments_fetch_cancel(f);
        return NGX_ERROR;
    }

    curl_easy_setopt(easy, CURLOPT_URL, rk->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION,
                     ngx_http_payments_risk_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, sig);
    f->timeout = rk->timeout;
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) rk->timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) rk->connect_timeout);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR,
                     rk->allow_http ? "https,http" : "https");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_payments/0.1");

    /* ca_file=: the provider's CAs; NULL: the system's */
    f->trust = rk->ca;

    if (rk->pins) {
        curl_easy_setopt(easy, CURLOPT_PINNEDPUBLICKEY, rk->pins);
    }

    return ngx_http_payments_fetch_go(f);
}


/* keeps the answer's Payments-Signature (the last one: a provider sends
 * one) for the verification */

static size_t
ngx_http_payments_risk_header(char *buf, size_t size, size_t n,
    void *userdata)
{
    size_t                         len, name;
    u_char                        *p, *last;
    ngx_http_payments_risk_sig_t  *sig = userdata;

    len = size * n;
    name = sizeof(NGX_HTTP_PAYMENTS_RISK_SIG_HEADER) - 1;

    if (len > name + 1 && len < name + 1 + PAY_RISK_SIG_MAX + 8
        && ngx_strncasecmp((u_char *) buf,
                           (u_char *) NGX_HTTP_PAYMENTS_RISK_SIG_HEADER,
                           name) == 0
        && buf[name] == ':')
    {
        p = (u_char *) buf + name + 1;
        last = (u_char *) buf + len;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (last > p && (last[-1] == '\r' || last[-1] == '\n'
                            || last[-1] == ' ' || last[-1] == '\t'))
        {
            last--;
        }

        sig->value = ngx_pnalloc(sig->pool, last - p + 1);
        if (sig->value != NULL) {
            *ngx_cpymem(sig->value, p, last - p) = '\0';
        }
    }

    return len;
}


static void
ngx_http_payments_risk_done(ngx_http_payments_fetch_t *f)
{
    const char                *why;
    pay_risk_answer_t          a;
    ngx_http_request_t        *r;
    ngx_http_payments_ctx_t   *ctx = f->data;
    ngx_http_payments_risk_t  *rk;

    r = ctx->request;
    rk = ctx->risk;

    /* never the body: it names the buyer */
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: risk check of \"%s\": HTTP %l, %s, %Mms",
                  ctx->nonce, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  f->elapsed);

    if (ngx_http_payments_risk_judge(rk, f, &ctx->risk_sig, &a, &why)
        == NGX_OK)
    {
        ngx_http_payments_risk_record(ctx, a.verdict, a.score,
                                      a.reason[0] ? a.reason : NULL,
                                      "provider");
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "payments: risk check of \"%s\": no usable answer (%s): "
                  "on_error=%s", ctx->nonce, why,
                  pay_risk_verdict_name(rk->on_error));

    ngx_http_payments_risk_record(ctx, rk->on_error, -1, why, "on_error");
}


ngx_int_t
ngx_http_payments_risk_judge(ngx_http_payments_risk_t *rk,
    ngx_http_payments_fetch_t *f, ngx_http_payments_risk_sig_t *sig,
    pay_risk_answer_t *a, const char **why)
{
    ngx_uint_t  err;

    ngx_http_payments_metrics_risk_latency(f->elapsed);

    if (f->status == 0) {
        if (f->result == CURLE_OPERATION_TIMEDOUT) {
            *why = "timeout";
            err = NGX_HTTP_PAYMENTS_RISKE_TIMEOUT;

        } else {
            *why = "unavailable";
            err = NGX_HTTP_PAYMENTS_RISKE_NETWORK;
        }

    } else if (f->status != 200) {
        *why = "unavailable";
        err = NGX_HTTP_PAYMENTS_RISKE_STATUS;

    } else if (rk->answer_secret.len
               && (sig->value == NULL
                   || pay_risk_verify(rk->answer_secret.data,
                                      rk->answer_secret.len, sig->value,
                                      ngx_strlen(sig->value), sig->key,
                                      (char *) f->body, f->len,
                                      (int64_t) ngx_time(), 300)
                      != 0))
    {
        *why = "signature";
        err = NGX_HTTP_PAYMENTS_RISKE_SIGNATURE;

    } else if (pay_risk_answer_parse((char *) f->body, f->len, a) != 0) {
        *why = "malformed";
        err = NGX_HTTP_PAYMENTS_RISKE_MALFORMED;

    } else {
        return NGX_OK;
    }

    ngx_http_payments_metrics_risk_error(err);

    return NGX_DECLINED;
}


/*
 * The verdict's arguments of pay_risk_record and pay_claim_with_verdict, in
 * the request's pool: args[0..6] the verdict, score, reason, source,
 * review seconds, and the answer a deny or a review stores (status, body).
 */

static ngx_int_t
ngx_http_payments_risk_args(ngx_http_payments_ctx_t *ctx,
    pay_risk_verdict_e verdict, int score, const char *reason,
    const char *source, const char **args)
{
    char                     *body, *detail;
    u_char                   *last;
    size_t                    len;
    ngx_http_request_t       *r = ctx->request;
    pay_registration_view_t   view;

    body = NULL;
    args[5] = NULL;

    if (verdict == PAY_RISK_DENY) {
        len = sizeof("the risk check declined this checkout (); it is FAILED "
                     "and was sent to no PSP") + PAY_RISK_REASON_MAX;
        detail = ngx_pnalloc(r->pool, len);
        if (detail == NULL) {
            return NGX_ERROR;
        }

        last = ngx_snprintf((u_char *) detail, len - 1,
                            "the risk check declined this checkout (%s); "
                            "it is FAILED and was sent to no PSP",
                            reason ? reason : "declined");
        *last = '\0';

        body = pay_problem_json(PAY_ERR_RISK_DECLINED, 0, detail);
        args[5] = "403";

    } else if (verdict == PAY_RISK_REVIEW) {
        ngx_memzero(&view, sizeof(pay_registration_view_t));
        view.co = &ctx->co;
        view.status = "REVIEW";
        view.expires_at = ctx->expires_at;

        body = pay_registration_json(&view);
        args[5] = "202";
    }

    args[0] = pay_risk_verdict_name(verdict);
    args[1] = score >= 0 ? ngx_http_payments_num(r->pool, score) : NULL;
    /* the answer's reason lives on the caller's stack: copied */
    args[2] = reason ? ngx_http_payments_strdup(r->pool, reason) : NULL;
    args[3] = source;
    args[4] = ngx_http_payments_num(r->pool, ctx->risk->review);
    args[6] = body ? ngx_http_payments_strdup(r->pool, body) : NULL;

    free(body);

    if (args[4] == NULL
        || (reason != NULL && args[2] == NULL)
        || (score >= 0 && args[1] == NULL)
        || (verdict != PAY_RISK_ALLOW && args[6] == NULL))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The verdict stored: asked before the claim, it goes with the claim
 * (ctx->risk_args, pay_claim_with_verdict); after, pay_risk_record under
 * the claim's lease.
 */

static void
ngx_http_payments_risk_record(ngx_http_payments_ctx_t *ctx,
    pay_risk_verdict_e verdict, int score, const char *reason,
    const char *source)
{
    ngx_http_request_t  *r = ctx->request;

    if (ctx->risk_first == NGX_HTTP_PAYMENTS_RISK_FIRST_ASKING) {
        if (ngx_http_payments_risk_args(ctx, verdict, score, reason, source,
                                        ctx->risk_args)
            != NGX_OK)
        {
            /* nothing was stored: the client's retry asks again */
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ctx->risk_first = NGX_HTTP_PAYMENTS_RISK_FIRST_JUDGED;
        ctx->risk_next(ctx);
        return;
    }

    ctx->params[0] = (char *) ctx->merchant.data;
    ctx->params[1] = ctx->idem_key;
    ctx->params[2] = ctx->lease;
    ctx->params[3] = ctx->co.checkout_id;
    ctx->params[11] = ngx_http_payments_num(r->pool, ctx->pmcf->lease);

    if (ngx_http_payments_risk_args(ctx, verdict, score, reason, source,
                                    &ctx->params[4])
        != NGX_OK
        || ctx->params[11] == NULL)
    {
        /* nothing was decided: the retry resumes the claim and asks
         * again */
        ngx_http_payments_register_release(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (ngx_http_payments_query(ctx,
                                "SELECT outcome, response_status, "
                                "response_body FROM pay_risk_record($1, $2, "
                                "$3, $4, $5, $6, $7, $8, $9, $10, $11, "
                                "$12)",
                                12, ngx_http_payments_risk_recorded)
        != NGX_OK)
    {
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
    }
}


static void
ngx_http_payments_risk_recorded(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_ctx_t  *ctx = q->data;

    /* without its row nothing may have been stored: the client's retry
     * with the same key finds out (a replay, or a resume that asks again) */
    if (ngx_http_payments_pg_row(ctx->request, res, "pay_risk_record")
        != NGX_OK)
    {
        return;
    }

    ngx_http_payments_risk_decided(ctx, res, 0);
}


/*
 * What the stored verdict decides, from res's columns col (the outcome:
 * allow, deny, review, or a replay), col + 1 and col + 2 (the answer a
 * deny or a review stored): allow goes on to ctx->risk_next; any other is
 * answered from the key.
 */

void
ngx_http_payments_risk_decided(ngx_http_payments_ctx_t *ctx, PGresult *res,
    int col)
{
    char                *outcome;
    ngx_http_request_t  *r = ctx->request;

    outcome = PQgetvalue(res, 0, col);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "payments: risk verdict on \"%s\": %s", ctx->nonce,
                  outcome);

    if (ngx_strcmp(outcome, "allow") == 0) {
        ngx_http_payments_metrics_risk_decision(PAY_RISK_ALLOW);
        ctx->risk_next(ctx);
        return;
    }

    if (ngx_strcmp(outcome, "deny") == 0) {
        ngx_http_payments_metrics_risk_decision(PAY_RISK_DENY);

        /* FAILED, sent to no PSP: no money moves, the amount the claim
         * kept counted is given back */
        ngx_http_payments_limit_claimed(ctx, NULL);

    } else if (ngx_strcmp(outcome, "review") == 0) {
        ngx_http_payments_metrics_risk_decision(PAY_RISK_REVIEW);
    }

    /* deny, review, or a replay: the answer the key stored */
    if (PQgetisnull(res, 0, col + 1) || PQgetisnull(res, 0, col + 2)) {
        /* a verdict kept from an earlier attempt that was not allow
         * leaves the key done: this cannot be reached, fail closed */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: risk verdict on \"%s\": %s without an "
                      "answer", ctx->nonce, outcome);
        ngx_http_payments_finalize(r, ngx_http_payments_store_unavailable(r));
        return;
    }

    ngx_http_payments_finalize(r, ngx_http_payments_send_stored(r,
                                   PQgetvalue(res, 0, col + 1),
                                   PQgetvalue(res, 0, col + 2),
                                   PQgetlength(res, 0, col + 2),
                                   outcome[0] == 'r' && outcome[2] == 'p'));
}
