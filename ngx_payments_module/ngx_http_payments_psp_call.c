
/*
 * Copyright (C) ngx_payments authors
 *
 * What every call to a PSP does with its answer, whatever it asked
 * (a registration, a refund, a pay-out): count it in /metrics, tell the
 * PSP's circuit breaker, and when it failed in a way that may heal, retry
 * it inside the request's budget with backoff and the PSP's Retry-After.
 * The callers (_register.c, _money.c) decide what the answer means.
 */


#include "ngx_http_payments_module.h"

#include <payments/breaker.h>


static void ngx_http_payments_psp_retry_cleanup(void *data);


ngx_int_t
ngx_http_payments_psp_answered(ngx_http_payments_psp_t *psp,
    ngx_http_payments_fetch_t *f, pay_psp_outcome_e outcome,
    ngx_uint_t probe)
{
    ngx_http_payments_metrics_psp(psp,
        f->result == CURLE_SSL_PINNEDPUBKEYNOTMATCH
            ? NGX_HTTP_PAYMENTS_PSP_PIN
        : f->result == CURLE_OPERATION_TIMEDOUT
            ? NGX_HTTP_PAYMENTS_PSP_TIMEOUT
        : f->result != CURLE_OK ? NGX_HTTP_PAYMENTS_PSP_NETWORK
        : outcome == PAY_PSP_CREATED ? NGX_HTTP_PAYMENTS_PSP_CREATED
        : outcome == PAY_PSP_REFUSED ? NGX_HTTP_PAYMENTS_PSP_REFUSED
        : outcome == PAY_PSP_AUTH ? NGX_HTTP_PAYMENTS_PSP_AUTH
        : NGX_HTTP_PAYMENTS_PSP_RETRYABLE, f->elapsed);

    ngx_http_payments_psp_tell_breaker(psp, f, probe);

    /* a key that matches no pin does not heal by retrying, and says
     * nothing of the PSP's health: fail closed, the breaker untold */
    if (f->result == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A call that failed in TLS (the PSP's certificate not verified, its key
 * matching no pin, the handshake refused) fails every call until someone
 * acts: logged at error with curl's words for the cause, once over every
 * worker until a call succeeds or the circuit opens again (or, for a pin,
 * which the breaker is not told of, once per breaker_open=), not per call.
 */
static void
ngx_http_payments_psp_tls_failed(ngx_http_payments_psp_t *psp,
    ngx_http_payments_fetch_t *f)
{
    const char  *api, *cause;

    switch (f->result) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        break;

    default:
        return;
    }

    if (!ngx_http_payments_breaker_tls_first(psp, f->api)) {
        return;
    }

    api = (f->api == PAY_PSP_API_TRANSFERS) ? " (its transfers API)" : "";
    cause = f->errbuf[0] ? f->errbuf : curl_easy_strerror(f->result);

    if (f->result == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        ngx_log_error(NGX_LOG_ERR, f->log, 0,
                      "payments: psp \"%V\"%s failed the pin check: its TLS "
                      "public key matches none of its pin= values; nothing "
                      "was sent (%s); logged again after breaker_open=%Mms",
                      &psp->name, api, cause, psp->breaker_open);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, f->log, 0,
                  "payments: psp \"%V\"%s: TLS failed: %s; its calls fail "
                  "until that is fixed (logged again once a call succeeds "
                  "or the circuit opens)", &psp->name, api, cause);
}


void
ngx_http_payments_psp_tell_breaker(ngx_http_payments_psp_t *psp,
    ngx_http_payments_fetch_t *f, ngx_uint_t probe)
{
    ngx_http_payments_psp_tls_failed(psp, f);

    /* a pin that failed: nothing was sent, nothing learnt */
    if (f->result == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        return;
    }

    /* an attempt the request's deadline cut short of the PSP's timeout
     * and that then timed out says nothing of the PSP: its breaker is not
     * told (a last attempt with a few ms left failed for sure, and counted
     * as the PSP failing) */
    if (f->result == CURLE_OPERATION_TIMEDOUT && f->timeout < psp->timeout) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, f->log, 0,
                       "payments: psp \"%V\" timed out after %M ms, cut "
                       "short by the deadline: the breaker is not told",
                       &psp->name, f->timeout);
        return;
    }

    /* any answer but a 5xx or a 429 says the PSP is up; no answer, a
     * timeout, a 5xx or a 429 is a transient failure */
    ngx_http_payments_breaker_result_api(psp, f->api,
                                         f->result == CURLE_OK
                                         && f->status < 500
                                         && f->status != 429, probe);
}


ngx_int_t
ngx_http_payments_psp_retry_later(ngx_http_payments_ctx_t *ctx,
    ngx_http_payments_fetch_t *f, ngx_uint_t key_in_use,
    ngx_event_handler_pt handler)
{
    ngx_msec_t           backoff;
    ngx_pool_cleanup_t  *cln;
    ngx_http_request_t  *r = ctx->request;

    /* a 4xx other than 408, 409 and 429 does not heal by sending the same
     * bytes again (and a 3xx is never followed): no retry; but "an
     * earlier attempt holds the key" (Adyen's 422 with 704) does */
    if (f->status >= 300 && f->status < 500 && f->status != 408
        && f->status != 409 && f->status != 429 && !key_in_use)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: psp \"%V\" answered %l: no retry",
                       &ctx->psp->name, f->status);
        return NGX_DECLINED;
    }

    backoff = (ngx_msec_t) pay_backoff_ms(ctx->attempts,
                                          (int64_t) ctx->psp->retry_base,
                                          (int64_t) ctx->psp->retry_max,
                                          (uint32_t) ngx_random()
                                          ^ ((uint32_t) ngx_random() << 16));

    /* the PSP said when: not sooner (and not at all if that is too late) */
    if (f->retry_after >= 0 && (ngx_msec_t) f->retry_after > backoff) {
        backoff = (ngx_msec_t) f->retry_after;
    }

    if (ctx->attempts > ctx->psp->retries
        || ngx_current_msec + backoff >= ctx->deadline)
    {
        if (f->retry_after >= 0) {
            /* passed on: the client's retry is no use before then */
            ctx->fail_retry_after = (time_t) ((f->retry_after + 999) / 1000);
        }

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "payments: psp \"%V\" attempt %ui failed, no retry: "
                       "%ui retries allowed, the next in %M ms, %i ms left",
                       &ctx->psp->name, ctx->attempts, ctx->psp->retries,
                       backoff,
                       (ngx_int_t) (ngx_msec_int_t)
                                   (ctx->deadline - ngx_current_msec));
        return NGX_DECLINED;
    }

    if (ctx->retry.handler == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        /* the timer lives in the request's pool */
        cln->handler = ngx_http_payments_psp_retry_cleanup;
        cln->data = &ctx->retry;
    }

    ctx->retry.handler = handler;
    ctx->retry.data = ctx;
    ctx->retry.log = r->connection->log;
    ngx_add_timer(&ctx->retry, backoff);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "payments: psp \"%V\" attempt %ui failed: retry in %M ms "
                   "(Retry-After %L ms, -1: none)", &ctx->psp->name,
                   ctx->attempts, backoff, f->retry_after);

    return NGX_OK;
}


static void
ngx_http_payments_psp_retry_cleanup(void *data)
{
    ngx_event_t  *ev = data;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}
