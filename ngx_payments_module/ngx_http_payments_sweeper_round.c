
/*
 * Copyright (C) ngx_payments authors
 *
 * What every step of the sweeper's round uses, below them all: its
 * queries, the lease kept mid-round, a step's report (the driver's
 * resume, through sw->resume) and the round's end; and what the steps
 * that ask the PSP about checkouts one at a time share (_sweeper_lookups.c,
 * _sweeper_methods.c): the item opened (its PSP, its token) and its
 * look-up sent past the breaker, the next item, the PSP's answer noted, a
 * look-up's event id.  Calls _pg.c, _curl.c, _breaker.c, _psp_conf.c,
 * _metrics.c, _util.c and nothing above.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


static void ngx_http_payments_sweep_noted(ngx_http_payments_pg_query_t *q,
    PGresult *res);


void
ngx_http_payments_sweep_end(ngx_http_payments_sweeper_t *sw)
{
    ngx_http_payments_fetch_cancel(&sw->fetch);
    ngx_memzero(&sw->fetch, sizeof(ngx_http_payments_fetch_t));

    /* a stored method's token, open, outlives no round */
    ngx_explicit_memzero(sw->ev.method, sizeof(sw->ev.method));

    if (sw->pool) {
        ngx_destroy_pool(sw->pool);
        sw->pool = NULL;
    }

    sw->items = NULL;
    sw->risk_items = NULL;
    sw->homeless = NULL;
    sw->state = NGX_HTTP_PAYMENTS_SWEEP_IDLE;

    if (!(ngx_exiting || ngx_terminate || ngx_quit)) {
        ngx_add_timer(&sw->timer, sw->pmcf->sweeper.interval);
    }
}

ngx_int_t
ngx_http_payments_sweep_query(ngx_http_payments_sweeper_t *sw,
    const char *sql, int nparams, ngx_http_payments_pg_handler_pt handler)
{
    return ngx_http_payments_sweep_query_on(sw, sw->shard, sql, nparams,
                                            handler);
}


ngx_int_t
ngx_http_payments_sweep_query_on(ngx_http_payments_sweeper_t *sw,
    ngx_uint_t shard, const char *sql, int nparams,
    ngx_http_payments_pg_handler_pt handler)
{
    ngx_http_payments_pg_query_t  *q;

    q = &sw->queries[sw->nquery++ % 2];

    ngx_memzero(q, sizeof(ngx_http_payments_pg_query_t));
    q->sql = sql;
    q->nparams = nparams;
    q->values = sw->params;
    q->handler = handler;
    q->data = sw;
    q->log = sw->log;
    q->shard = shard;           /* the sweeper's own, but for the home
                                   shard's forwarding */

    return ngx_http_payments_pg_send(q);
}

/* a query's answer: NGX_OK with rows to read, else logged */
ngx_int_t
ngx_http_payments_sweep_ok(ngx_http_payments_sweeper_t *sw, PGresult *res,
    const char *function)
{
    if (res == NULL) {
        ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                      "payments: sweeper: %s: the database is unavailable",
                      function);
        return NGX_ERROR;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                      "payments: sweeper: %s: %s", function,
                      PQresultErrorMessage(res));
        return NGX_ERROR;
    }

    return NGX_OK;
}

/* A renewal of the lease mid-round: NGX_OK while this gateway holds it;
 * lost (another gateway took it: this one was too slow for it), the round
 * ends here, what of "what" it had not reached waits for a later round,
 * and NGX_DECLINED. */
ngx_int_t
ngx_http_payments_sweep_lease_kept(ngx_http_payments_sweeper_t *sw,
    PGresult *res, const char *what, ngx_uint_t done, ngx_uint_t total)
{
    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_lease") == NGX_OK
        && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't')
    {
        sw->leased_at = ngx_current_msec;
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, sw->log, 0,
                  "payments: sweeper: the lease was not renewed mid-round; "
                  "the round stops after %ui of %ui %s", done, total, what);
    sw->leader = 0;

    ngx_http_payments_metrics_gauge(sw->shard_conf,
                                    NGX_HTTP_PAYMENTS_SG_SWEEPER_LEADER, 0);

    ngx_http_payments_sweep_end(sw);
    return NGX_DECLINED;
}


/* a step has done its part: the driver's next step, or the round's end */

void
ngx_http_payments_sweep_step_done(ngx_http_payments_sweeper_t *sw)
{
    sw->resume(sw);
}


/* the next item of sw->items: sw->next, the step's own handler, posted */

void
ngx_http_payments_sweep_next(ngx_http_payments_sweeper_t *sw)
{
    /* a stored method's token, open, outlives no item (nor a round:
     * sweep_end) */
    ngx_explicit_memzero(sw->ev.method, sizeof(sw->ev.method));

    sw->current++;
    ngx_post_event(&sw->next, &ngx_posted_events);
}


/* what the PSP said when nothing was applied: pay_sweeper_note, then the
 * next item */

void
ngx_http_payments_sweep_note(ngx_http_payments_sweeper_t *sw,
    const char *answer)
{
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper: checkout \"%s\" left as it is: %s",
                   it->checkout_id, answer);

    sw->params[0] = it->merchant_id;
    sw->params[1] = it->checkout_id;
    sw->params[2] = answer;

    if (ngx_http_payments_sweep_query(sw,
                                      "SELECT pay_sweeper_note($1, $2, $3)",
                                      3, ngx_http_payments_sweep_noted)
        != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}

static void
ngx_http_payments_sweep_noted(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    (void) ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_note");

    ngx_http_payments_sweep_next(sw);
}


/*
 * "lookup:<token>:<status>" is kept in webhook_events and the audit
 * chain: with a keyring the token's blind index stands for it there.
 */
ngx_int_t
ngx_http_payments_sweep_event_id(ngx_http_payments_sweeper_t *sw)
{
    char         *index;
    size_t        tlen;
    pay_event_t  *ev = &sw->ev;
    u_char        id[sizeof(ev->event_id)];

    tlen = ngx_strlen(ev->token);

    if (sw->pmcf->keyring != NULL && tlen
        && ngx_strncmp(ev->event_id, "lookup:", 7) == 0
        && ngx_strncmp(ev->event_id + 7, ev->token, tlen) == 0
        && ev->event_id[7 + tlen] == ':')
    {
        index = ngx_http_payments_token_index(sw->pool, sw->pmcf,
                                              &sw->psp->name, ev->token);
        if (index == NULL) {
            return NGX_ERROR;
        }

        ngx_snprintf(id, sizeof(id) - 1, "lookup:%s%s%Z", index,
                     ev->event_id + 7 + tlen);
        ngx_cpystrn((u_char *) ev->event_id, id, sizeof(ev->event_id));
    }

    return NGX_OK;
}


/*
 * The current item made ready to be asked about: its PSP (sw->psp), its
 * stored session token opened (never a ciphertext to the PSP) and the
 * look-up's input (sw->in) filled from it.  NGX_DECLINED when it cannot
 * be asked (counted and noted: its PSP is no longer configured, or the
 * token does not open), the next item posted.
 */
ngx_int_t
ngx_http_payments_sweep_item_open(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it)
{
    ngx_http_payments_psp_t  *psp;

    psp = ngx_http_payments_find_psp(sw->pmcf, it->psp, ngx_strlen(it->psp));
    if (psp == NULL) {
        /* registered through a PSP this gateway no longer configures */
        ngx_http_payments_metrics_sweep(NULL,
                                        NGX_HTTP_PAYMENTS_SWEEP_CANNOT);
        ngx_http_payments_sweep_note(sw, "psp not configured");
        return NGX_DECLINED;
    }

    sw->psp = psp;

    if (ngx_http_payments_unseal(sw->pool, sw->pmcf, sw->log,
                                 NGX_HTTP_PAYMENTS_SEALED_TOKEN,
                                 it->merchant_id, it->checkout_id, it->token,
                                 &it->token)
        != NGX_OK)
    {
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_CANNOT);
        ngx_http_payments_sweep_note(sw, "store error: sealed token does "
                                         "not open");
        return NGX_DECLINED;
    }

    ngx_memzero(&sw->in, sizeof(pay_psp_lookup_t));
    sw->in.token = it->token;
    sw->in.nonce = it->nonce;
    sw->in.session_result = it->session_result;
    sw->in.setup = it->setup;
    sw->in.merchant_account = psp->merchant_account.len
                              ? (const char *) psp->merchant_account.data
                              : NULL;

    return NGX_OK;
}


/*
 * The dialect's look-up request for the current item (req, freed here)
 * sent to sw->psp, its answer to handler; what is asked ("about", "for
 * the method of") for the debug log.  An open circuit means the PSP gets
 * no call from the sweeper either: counted and noted, the item asked
 * about again retry= later.
 */
void
ngx_http_payments_sweep_ask(ngx_http_payments_sweeper_t *sw,
    pay_psp_request_t *req, ngx_http_payments_fetch_handler_pt handler,
    const char *what)
{
    char                            *url;
    size_t                           len;
    u_char                          *p;
    ngx_msec_t                       wait;
    ngx_http_payments_psp_t         *psp = sw->psp;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    len = psp->url.len + ngx_strlen(req->path);

    url = ngx_pnalloc(sw->pool, len + 1);
    if (url == NULL) {
        pay_psp_request_free(req);
        ngx_http_payments_sweep_end(sw);
        return;
    }

    p = ngx_cpymem(url, psp->url.data, psp->url.len);
    p = ngx_cpymem(p, req->path, ngx_strlen(req->path));
    *p = '\0';

    pay_psp_request_free(req);

    if (ngx_http_payments_breaker_allow(psp, &sw->probe, &wait) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: psp \"%V\" not asked %s "
                      "checkout \"%s\": its circuit is open for %M ms more",
                      &psp->name, what, it->checkout_id, wait);
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_CIRCUIT_OPEN);
        ngx_http_payments_sweep_note(sw, "circuit open: not asked");
        return;
    }

    sw->fetch.handler = handler;
    sw->fetch.data = sw;
    sw->fetch.log = sw->log;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper asks psp \"%V\" %s checkout \"%s\" "
                   "(%L s old)", &psp->name, what, it->checkout_id, it->age);

    if (ngx_http_payments_fetch(sw->pool, &sw->fetch, psp,
                                PAY_PSP_API_MAIN, url, NULL, NULL, NULL, 0,
                                psp->timeout)
        != NGX_OK)
    {
        sw->probe = 0;
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_UNKNOWN);
        ngx_http_payments_sweep_note(sw, "no request");
    }
}
