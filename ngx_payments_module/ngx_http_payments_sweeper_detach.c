
/*
 * Copyright (C) ngx_payments authors
 *
 * A step of the sweeper's round, the lease holder's: the saved methods
 * detached here whose PSP has not confirmed the detach (the merchant's
 * DELETE met no answer, a 5xx, an open circuit or a refusal) are sent the
 * PSP's detach again in the background, one at a time, under the key the
 * merchant's request used (<merchant>:<pm_id>:detach), after= their
 * detach and retry= after the sweeper's last try, until the PSP confirms
 * it or says it no longer has the method (pay_method_psp_detached, as the
 * merchant's request records it).  A try that does not confirm is counted
 * (pay_method_detach_tried); from the NGX_HTTP_PAYMENTS_DETACH_ALERT-th
 * on, each is logged at alert, and the /metrics gauge
 * payments_payment_methods_detach_unconfirmed counts those methods.  The
 * token is opened in the round's pool only; a log line names the method,
 * never the token.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


typedef struct {
    char                           *merchant_id;
    char                           *method_id;
    char                           *psp;
    char                           *token_sealed;
    char                           *checkout_id;
    char                           *customer_ref;
    char                           *saved_account;  /* its checkout's
                                                       merchant account,
                                                       NULL: not recorded */
} ngx_http_payments_sweep_detach_t;


static void ngx_http_payments_sweep_detaches_read(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_detach_next(ngx_event_t *ev);
static void ngx_http_payments_sweep_detach_renewed(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_detach_send(
    ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_detach_answer(
    ngx_http_payments_fetch_t *f);
static void ngx_http_payments_sweep_detach_tried(
    ngx_http_payments_sweeper_t *sw, const char *why);
static void ngx_http_payments_sweep_detach_counted(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_detach_recorded(
    ngx_http_payments_pg_query_t *q, PGresult *res);


void
ngx_http_payments_sweep_detaches(ngx_http_payments_sweeper_t *sw)
{
    ngx_http_payments_sweeper_conf_t  *sc = &sw->pmcf->sweeper;

    sw->state = NGX_HTTP_PAYMENTS_SWEEP_DETACH;
    sw->next.handler = ngx_http_payments_sweep_detach_next;
    sw->detaches = NULL;
    sw->detach_current = 0;

    sw->params[0] = sw->owner;
    sw->params[1] = sw->psps;
    sw->params[2] = ngx_http_payments_num(sw->pool, sc->after);
    sw->params[3] = ngx_http_payments_num(sw->pool, sc->retry);
    sw->params[4] = ngx_http_payments_num(sw->pool, (int64_t) sc->batch);
    sw->params[5] = ngx_http_payments_num(sw->pool,
                                          NGX_HTTP_PAYMENTS_DETACH_ALERT);

    if (sw->params[2] == NULL || sw->params[3] == NULL
        || sw->params[4] == NULL || sw->params[5] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT merchant_id, method_id, "
                                         "psp, token_sealed, checkout_id, "
                                         "customer_ref, tries, stuck, "
                                         "saved_account FROM "
                                         "pay_sweeper_detaches($1, $2, $3, "
                                         "$4, $5, $6)",
                                         6,
                                         ngx_http_payments_sweep_detaches_read)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_detaches_read(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                                i, n;
    ngx_http_payments_sweeper_t       *sw = q->data;
    ngx_http_payments_sweep_detach_t  *d;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_detaches")
        != NGX_OK)
    {
        ngx_http_payments_sweep_step_done(sw);
        return;
    }

    n = PQntuples(res);

    if (n > 0) {
        ngx_http_payments_metrics_gauge(sw->shard_conf,
            NGX_HTTP_PAYMENTS_SG_DETACHES_UNCONFIRMED,
            (ngx_atomic_uint_t) ngx_atoof((u_char *) PQgetvalue(res, 0, 7),
                                          PQgetlength(res, 0, 7)));
    }

    sw->detaches = ngx_array_create(sw->pool, n ? n : 1,
                                    sizeof(ngx_http_payments_sweep_detach_t));
    if (sw->detaches == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    for (i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 0)) {
            continue;
        }

        d = ngx_array_push(sw->detaches);
        if (d == NULL) {
            ngx_http_payments_sweep_end(sw);
            return;
        }

        d->merchant_id = ngx_http_payments_strdup(sw->pool,
                                                  PQgetvalue(res, i, 0));
        d->method_id = ngx_http_payments_strdup(sw->pool,
                                                PQgetvalue(res, i, 1));
        d->psp = ngx_http_payments_strdup(sw->pool, PQgetvalue(res, i, 2));
        d->token_sealed = ngx_http_payments_strdup(sw->pool,
                                                   PQgetvalue(res, i, 3));
        d->checkout_id = ngx_http_payments_strdup(sw->pool,
                                                  PQgetvalue(res, i, 4));
        d->customer_ref = ngx_http_payments_strdup(sw->pool,
                                                   PQgetvalue(res, i, 5));
        d->saved_account = PQgetisnull(res, i, 8)
                           || PQgetlength(res, i, 8) == 0
                           ? NULL
                           : ngx_http_payments_strdup(sw->pool,
                                                      PQgetvalue(res, i, 8));

        if (d->merchant_id == NULL || d->method_id == NULL || d->psp == NULL
            || d->token_sealed == NULL || d->checkout_id == NULL
            || d->customer_ref == NULL)
        {
            ngx_http_payments_sweep_end(sw);
            return;
        }
    }

    if (sw->detaches->nelts > 0) {
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: %ui detaches the PSPs have not "
                      "confirmed to send again", sw->detaches->nelts);
    }

    ngx_post_event(&sw->next, &ngx_posted_events);
}


/* the posted event: the next method, or the step's end */

static void
ngx_http_payments_sweep_detach_next(ngx_event_t *ev)
{
    ngx_http_payments_sweeper_t  *sw = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    if (sw->detaches == NULL || sw->detach_current >= sw->detaches->nelts) {
        sw->detaches = NULL;
        ngx_http_payments_sweep_step_done(sw);
        return;
    }

    /* renewed every interval, as the look-ups do: a step of slow PSPs
     * keeps the lease to its end */
    if (ngx_current_msec - sw->leased_at >= sw->pmcf->sweeper.interval) {
        sw->params[0] = sw->owner;
        sw->params[1] = sw->ttl;

        if (ngx_http_payments_sweep_query(sw,
                "SELECT pay_sweeper_lease($1, $2)", 2,
                ngx_http_payments_sweep_detach_renewed)
            != NGX_OK)
        {
            ngx_http_payments_sweep_end(sw);
        }

        return;
    }

    ngx_http_payments_sweep_detach_send(sw);
}


static void
ngx_http_payments_sweep_detach_renewed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_lease_kept(sw, res, "detaches",
                                           sw->detach_current,
                                           sw->detaches->nelts)
        != NGX_OK)
    {
        return;
    }

    ngx_http_payments_sweep_detach_send(sw);
}


static void
ngx_http_payments_sweep_detach_send(ngx_http_payments_sweeper_t *sw)
{
    char                              *token, *url, *key;
    u_char                            *p, *account;
    size_t                             len;
    ngx_msec_t                         wait;
    pay_psp_detach_t                   req;
    ngx_http_payments_psp_t           *psp;
    ngx_http_payments_sweep_detach_t  *d;

    d = (ngx_http_payments_sweep_detach_t *) sw->detaches->elts
        + sw->detach_current;

    psp = ngx_http_payments_find_psp(sw->pmcf, d->psp, ngx_strlen(d->psp));
    if (psp == NULL) {
        ngx_http_payments_sweep_detach_tried(sw, "its psp is not "
                                                 "configured here");
        return;
    }

    sw->psp = psp;

    if (ngx_http_payments_unseal(sw->pool, sw->pmcf, sw->log,
                                 NGX_HTTP_PAYMENTS_SEALED_METHOD,
                                 d->merchant_id, d->checkout_id,
                                 d->token_sealed, &token)
        != NGX_OK
        || ngx_strncmp(d->token_sealed, "v1.", 3) != 0)
    {
        ngx_http_payments_sweep_detach_tried(sw, "its token does not open");
        return;
    }

    /* under the merchant account that saved it, as the merchant's own
     * detach (_methods.c); none recorded: the configuration's */
    account = d->saved_account != NULL
              ? (u_char *) d->saved_account
              : ngx_http_payments_cstr(sw->pool, &psp->merchant_account);

    if (account == NULL
        || pay_psp_detach_request(psp->dialect, token, d->customer_ref,
                                  (char *) account, &req)
           != 0)
    {
        ngx_http_payments_sweep_detach_tried(sw, "its request could not be "
                                                 "made");
        return;
    }

    len = psp->url.len + ngx_strlen(req.path) + 1;
    url = ngx_pnalloc(sw->pool, len);

    if (url != NULL) {
        p = ngx_cpymem(url, psp->url.data, psp->url.len);
        p = ngx_cpymem(p, req.path, ngx_strlen(req.path));
        *p = '\0';
    }

    free(req.path);

    /* the merchant's request's key: a PSP that keeps keys answers what it
     * answered then */
    len = ngx_strlen(d->merchant_id) + ngx_strlen(d->method_id)
          + sizeof("::detach");
    key = ngx_pnalloc(sw->pool, len);

    if (url == NULL || key == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    *ngx_snprintf((u_char *) key, len - 1, "%s:%s:detach", d->merchant_id,
                  d->method_id) = '\0';

    /* an open circuit: not sent, counted, tried again retry= later */
    if (ngx_http_payments_breaker_allow(psp, &sw->probe, &wait) != NGX_OK) {
        ngx_http_payments_sweep_detach_tried(sw, "its psp's circuit is "
                                                 "open");
        return;
    }

    sw->fetch.handler = ngx_http_payments_sweep_detach_answer;
    sw->fetch.data = sw;
    sw->fetch.log = sw->log;

    if (ngx_http_payments_fetch_method(sw->pool, &sw->fetch, psp,
                                       PAY_PSP_API_MAIN, req.method, url,
                                       req.content_type, key, req.body,
                                       req.body ? ngx_strlen(req.body) : 0,
                                       psp->timeout)
        != NGX_OK)
    {
        sw->probe = 0;
        ngx_http_payments_sweep_detach_tried(sw, "no request");
    }
}


/* the PSP's answer: never its body (it names the token) */

static void
ngx_http_payments_sweep_detach_answer(ngx_http_payments_fetch_t *f)
{
    int                                status;
    pay_detach_outcome_e               dt;
    ngx_http_payments_sweeper_t       *sw = f->data;
    ngx_http_payments_sweep_detach_t  *d;

    d = (ngx_http_payments_sweep_detach_t *) sw->detaches->elts
        + sw->detach_current;

    status = f->result == CURLE_OK ? (int) f->status : 0;
    dt = pay_psp_detach_answer(sw->psp->dialect, status);

    ngx_http_payments_psp_tell_breaker(sw->psp, f, sw->probe);
    sw->probe = 0;

    ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                  "payments: sweeper: psp \"%V\" detach of saved method "
                  "\"%s\": HTTP %d, outcome %d, %Mms", &sw->psp->name,
                  d->method_id, status, (int) dt, f->elapsed);

    switch (dt) {

    case PAY_DETACH_DONE:
    case PAY_DETACH_GONE:
        sw->params[0] = d->merchant_id;
        sw->params[1] = d->method_id;
        sw->params[2] = dt == PAY_DETACH_DONE ? "done" : "gone";

        if (ngx_http_payments_sweep_query(sw,
                "SELECT pay_method_psp_detached($1, $2, $3)", 3,
                ngx_http_payments_sweep_detach_recorded)
            != NGX_OK)
        {
            ngx_http_payments_sweep_end(sw);
        }

        return;

    case PAY_DETACH_AUTH:
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: psp \"%V\" refused the gateway's "
                      "credentials (HTTP %d): check its secret_file",
                      &sw->psp->name, status);
        ngx_http_payments_sweep_detach_tried(sw, "credentials refused");
        return;

    case PAY_DETACH_REFUSED:
        ngx_http_payments_sweep_detach_tried(sw, "refused");
        return;

    default: /* PAY_DETACH_RETRY */
        ngx_http_payments_sweep_detach_tried(sw, status ? "no usable answer"
                                                        : "no answer");
        return;
    }
}


/* not confirmed: counted, and said, at alert from the Nth try on */

static void
ngx_http_payments_sweep_detach_tried(ngx_http_payments_sweeper_t *sw,
    const char *why)
{
    ngx_http_payments_sweep_detach_t  *d;

    d = (ngx_http_payments_sweep_detach_t *) sw->detaches->elts
        + sw->detach_current;

    /* the reason outlives the query: a literal */
    sw->detach_why = why;

    sw->params[0] = d->merchant_id;
    sw->params[1] = d->method_id;

    if (ngx_http_payments_sweep_query(sw,
            "SELECT pay_method_detach_tried($1, $2)", 2,
            ngx_http_payments_sweep_detach_counted)
        != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_detach_counted(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_int_t                          tries;
    ngx_uint_t                         level;
    ngx_http_payments_sweeper_t       *sw = q->data;
    ngx_http_payments_sweep_detach_t  *d;

    d = (ngx_http_payments_sweep_detach_t *) sw->detaches->elts
        + sw->detach_current;

    tries = 0;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_method_detach_tried")
        == NGX_OK
        && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
    {
        tries = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                         PQgetlength(res, 0, 0));
    }

    /* ngx_log_error() reads its level twice */
    level = tries >= NGX_HTTP_PAYMENTS_DETACH_ALERT ? NGX_LOG_ALERT
                                                    : NGX_LOG_WARN;

    ngx_log_error(level, sw->log, 0,
                  "payments: sweeper: the detach of saved method \"%s\" of "
                  "merchant \"%s\" is not confirmed by its psp \"%s\" (%s) "
                  "after %i tries; sent again later", d->method_id,
                  d->merchant_id, d->psp, sw->detach_why, tries);

    sw->detach_current++;
    ngx_post_event(&sw->next, &ngx_posted_events);
}


static void
ngx_http_payments_sweep_detach_recorded(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t       *sw = q->data;
    ngx_http_payments_sweep_detach_t  *d;

    d = (ngx_http_payments_sweep_detach_t *) sw->detaches->elts
        + sw->detach_current;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_method_psp_detached")
        == NGX_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, sw->log, 0,
                      "payments: sweeper: psp \"%s\" confirmed the detach "
                      "of saved method \"%s\" of merchant \"%s\"", d->psp,
                      d->method_id, d->merchant_id);
    }

    sw->detach_current++;
    ngx_post_event(&sw->next, &ngx_posted_events);
}
