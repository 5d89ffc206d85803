
/*
 * Copyright (C) ngx_payments authors
 *
 * A step of the sweeper's round, the lease holder's, after the look-ups:
 * the paid checkouts that asked to save the shopper's method and have
 * none recorded, the PSP's event that it was stored lost while the
 * payment's own came (a checkout SUCCESS, or a manual capture's hold
 * AUTHORIZED, is never looked up again otherwise):
 *
 *   pay_sweeper_methods_due   those at least after= old, not asked in the
 *                       last retry=, at the PSPs whose dialect names a
 *                       paid session's stored method (method_lookup:
 *                       stripe, generic), never asked first, batch= at
 *                       most, through their own partial index;
 *   for each one, one at a time: the PSP's circuit breaker asked (open:
 *                       no call), the dialect's session look-up with
 *                       in.method (Stripe's expands the intent's
 *                       payment_method), its end told to the breaker, then
 *   pay_sweeper_method_saved  the method the answer names, sealed and
 *                       recorded by pay_method_saved_apply, the webhook's
 *                       own function: one pm_, one payment_method.saved
 *                       notification, and the late event finds it saved
 *                       ("already"), or
 *   pay_sweeper_note    what the PSP said;
 *   pay_sweeper_methods_unsaved  those still without a method past
 *                       alert= (at every PSP: Adyen's cannot be asked),
 *                       each logged at warn once, and the /metrics gauge
 *                       payments_payment_methods_unsaved.
 *
 * ngx_http_payments_sweep_method is the look-ups' too (a setup's session,
 * or a paid one whose every event was lost).  The PSP's token is open in
 * sw->ev.method only until it is sealed, and never logged.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


static void ngx_http_payments_sweep_methods_due(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_methods_step(ngx_event_t *ev);
static void ngx_http_payments_sweep_methods_renewed(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_methods_item(
    ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_methods_answer(
    ngx_http_payments_fetch_t *f);
static void ngx_http_payments_sweep_methods_unsaved(
    ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_methods_listed(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_saved(ngx_http_payments_pg_query_t *q,
    PGresult *res);


void
ngx_http_payments_sweep_methods(ngx_http_payments_sweeper_t *sw)
{
    ngx_http_payments_sweeper_conf_t  *sc = &sw->pmcf->sweeper;

    sw->state = NGX_HTTP_PAYMENTS_SWEEP_METHODS;
    sw->next.handler = ngx_http_payments_sweep_methods_step;
    sw->items = NULL;
    sw->current = 0;

    /* no PSP here can be asked: only the list for a person */
    if (ngx_strcmp(sw->method_psps, "{}") == 0) {
        ngx_http_payments_sweep_methods_unsaved(sw);
        return;
    }

    sw->params[0] = sw->owner;
    sw->params[1] = sw->method_psps;
    sw->params[2] = ngx_http_payments_num(sw->pool, sc->after);
    sw->params[3] = ngx_http_payments_num(sw->pool, sc->retry);
    sw->params[4] = ngx_http_payments_num(sw->pool, (int64_t) sc->batch);

    if (sw->params[2] == NULL || sw->params[3] == NULL
        || sw->params[4] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT merchant_id, checkout_id, "
                                         "psp, psp_token, nonce, "
                                         "age_seconds, session_result, "
                                         "setup FROM "
                                         "pay_sweeper_methods_due($1, $2, "
                                         "$3, $4, $5)",
                                         5,
                                         ngx_http_payments_sweep_methods_due)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_methods_due(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                              i, n;
    char                            *v[5];
    ngx_uint_t                       k;
    ngx_http_payments_sweeper_t     *sw = q->data;
    ngx_http_payments_sweep_item_t  *it;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_methods_due")
        != NGX_OK)
    {
        ngx_http_payments_sweep_methods_unsaved(sw);
        return;
    }

    n = PQntuples(res);

    sw->items = ngx_array_create(sw->pool, n ? n : 1,
                                 sizeof(ngx_http_payments_sweep_item_t));
    if (sw->items == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    for (i = 0; i < n; i++) {
        it = ngx_array_push(sw->items);
        if (it == NULL) {
            ngx_http_payments_sweep_end(sw);
            return;
        }

        ngx_memzero(it, sizeof(ngx_http_payments_sweep_item_t));

        for (k = 0; k < 5; k++) {
            v[k] = ngx_http_payments_strdup(sw->pool,
                                            PQgetvalue(res, i, (int) k));
            if (v[k] == NULL) {
                ngx_http_payments_sweep_end(sw);
                return;
            }
        }

        it->merchant_id = v[0];
        it->checkout_id = v[1];
        it->psp = v[2];
        it->token = v[3];
        it->nonce = v[4];
        it->age = ngx_atoof((u_char *) PQgetvalue(res, i, 5),
                            PQgetlength(res, i, 5));
        it->setup = (PQgetvalue(res, i, 7)[0] == 't');

        if (!PQgetisnull(res, i, 6)) {
            it->session_result = ngx_http_payments_strdup(sw->pool,
                                                PQgetvalue(res, i, 6));
            if (it->session_result == NULL) {
                ngx_http_payments_sweep_end(sw);
                return;
            }
        }
    }

    if (n > 0) {
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: %d paid checkouts without the "
                      "method they saved to ask about", n);
    }

    sw->current = 0;
    ngx_post_event(&sw->next, &ngx_posted_events);
}


/* the posted event: the next checkout, or the list for a person */
static void
ngx_http_payments_sweep_methods_step(ngx_event_t *ev)
{
    ngx_http_payments_sweeper_t  *sw = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    if (sw->state != NGX_HTTP_PAYMENTS_SWEEP_METHODS) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    if (sw->items == NULL || sw->current >= sw->items->nelts) {
        ngx_http_payments_sweep_methods_unsaved(sw);
        return;
    }

    /* the lease renewed every interval, as the look-ups renew it */
    if (ngx_current_msec - sw->leased_at >= sw->pmcf->sweeper.interval) {
        sw->params[0] = sw->owner;
        sw->params[1] = sw->ttl;

        if (ngx_http_payments_sweep_query(sw,
                "SELECT pay_sweeper_lease($1, $2)", 2,
                ngx_http_payments_sweep_methods_renewed)
            != NGX_OK)
        {
            ngx_http_payments_sweep_end(sw);
        }

        return;
    }

    ngx_http_payments_sweep_methods_item(sw);
}


static void
ngx_http_payments_sweep_methods_renewed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_lease_kept(sw, res, "saved methods",
                                           sw->current, sw->items->nelts)
        != NGX_OK)
    {
        return;
    }

    ngx_post_event(&sw->next, &ngx_posted_events);
}


static void
ngx_http_payments_sweep_methods_item(ngx_http_payments_sweeper_t *sw)
{
    pay_psp_request_t                req;
    ngx_http_payments_psp_t         *psp;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    if (ngx_http_payments_sweep_item_open(sw, it) != NGX_OK) {
        return;
    }

    psp = sw->psp;
    sw->in.method = 1;

    ngx_memzero(&req, sizeof(pay_psp_request_t));

    if (!psp->dl->method_lookup || psp->dl->session_lookup == NULL
        || psp->dl->session_lookup(&sw->in, &req) != 0)
    {
        pay_psp_request_free(&req);
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_CANNOT);
        ngx_http_payments_sweep_note(sw, "cannot ask for the saved method");
        return;
    }

    ngx_http_payments_sweep_ask(sw, &req,
                                ngx_http_payments_sweep_methods_answer,
                                "for the method saved by");
}


static void
ngx_http_payments_sweep_methods_answer(ngx_http_payments_fetch_t *f)
{
    int                              status;
    const char                      *what;
    pay_lookup_outcome_e             outcome;
    ngx_http_payments_psp_t         *psp;
    ngx_http_payments_sweeper_t     *sw = f->data;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;
    psp = sw->psp;
    status = (f->result == CURLE_OK) ? (int) f->status : 0;

    ngx_http_payments_psp_tell_breaker(psp, f, sw->probe);
    sw->probe = 0;

    ngx_memzero(&sw->ev, sizeof(pay_event_t));

    outcome = psp->dl->session_lookup_answer(&sw->in, status,
                                             (const char *) f->body, f->len,
                                             (int64_t) ngx_time(), &sw->ev);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper: psp \"%V\" answered %d about a saved "
                   "method: outcome %d", &psp->name, status, (int) outcome);

    switch (outcome) {

    case PAY_LOOKUP_DECIDED:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_DECIDED);

        if (sw->ev.kind == PAY_EVT_SUCCEEDED && sw->ev.method[0] != '\0') {

            /* the method of this checkout's own session, or none */
            if (ngx_strcmp(sw->ev.reference, it->nonce) != 0) {
                what = "answer names another checkout";
                break;
            }

            ngx_http_payments_sweep_method(sw, it);
            return;
        }

        what = sw->ev.kind == PAY_EVT_SUCCEEDED
               ? "paid at the psp, no stored method named"
               : "the psp says the session failed";
        break;

    case PAY_LOOKUP_OPEN:
    case PAY_LOOKUP_PENDING:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_OPEN);
        what = "open at the psp, no stored method named";
        break;

    case PAY_LOOKUP_AUTH:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_AUTH);
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: psp \"%V\" refused our credentials "
                      "(HTTP %d) when asked for the method checkout \"%s\" "
                      "saved", &psp->name, status, it->checkout_id);
        what = "credentials refused";
        break;

    default:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_UNKNOWN);
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: psp \"%V\" gave no usable answer "
                      "about the method checkout \"%s\" saved (HTTP %d)",
                      &psp->name, it->checkout_id, status);
        what = status ? "no usable answer" : "no answer";
        break;
    }

    /* the token, open, is kept no longer than the answer */
    ngx_explicit_memzero(sw->ev.method, sizeof(sw->ev.method));

    ngx_http_payments_sweep_note(sw, what);
}


/*
 * pay_sweeper_methods_unsaved: the paid checkouts still without the
 * method they saved past alert=, at every PSP of this gateway (Adyen's
 * too, which the PSP's API cannot tell of): one line each, once, and the
 * gauge.  Then the round goes on.
 */
static void
ngx_http_payments_sweep_methods_unsaved(ngx_http_payments_sweeper_t *sw)
{
    sw->items = NULL;
    sw->params[0] = sw->owner;
    sw->params[1] = sw->psps;
    sw->params[2] = ngx_http_payments_num(sw->pool, sw->pmcf->sweeper.alert);
    sw->params[3] = "100";

    if (sw->params[2] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT merchant_id, checkout_id, "
                                         "psp, age_seconds, last_answer, "
                                         "unsaved, oldest_seconds FROM "
                                         "pay_sweeper_methods_unsaved($1, "
                                         "$2, $3, $4)",
                                         4,
                                         ngx_http_payments_sweep_methods_listed)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_methods_listed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                           i, n;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_methods_unsaved")
        == NGX_OK
        && (n = PQntuples(res)) > 0)
    {
        ngx_http_payments_metrics_gauge(sw->shard_conf,
            NGX_HTTP_PAYMENTS_SG_METHODS_UNSAVED,
            (ngx_atomic_uint_t) ngx_atoof((u_char *) PQgetvalue(res, 0, 5),
                                          PQgetlength(res, 0, 5)));

        for (i = 0; i < n; i++) {
            if (PQgetisnull(res, i, 0)) {
                continue;
            }

            /* once per checkout: pay_sweeper_methods_unsaved marks it */
            ngx_log_error(NGX_LOG_WARN, sw->log, 0,
                          "payments: sweeper: checkout \"%s\" of merchant "
                          "\"%s\" (psp \"%s\") was paid and asked to save "
                          "the shopper's payment method, and %s s later no "
                          "method is recorded: the psp's event that it was "
                          "stored never came; last psp answer: %s; look "
                          "the stored method up at the psp: method_unsaved",
                          PQgetvalue(res, i, 1), PQgetvalue(res, i, 0),
                          PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                          PQgetisnull(res, i, 4) ? "none"
                                                 : PQgetvalue(res, i, 4));
        }
    }

    ngx_http_payments_sweep_step_done(sw);
}


/*
 * The stored method a look-up named (a setup's, or a paid session's that
 * saved it): sealed and applied by pay_sweeper_method_saved, under the
 * event id the look-up's event has (a setup's) or that id with
 * ":payment_method" (a payment's, whose own id the payment took, as the
 * webhook's pay_stripe_saved names it).
 */
void
ngx_http_payments_sweep_method(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it)
{
    char         *idx, *domain, *display;
    u_char       *last;
    json_t       *d;
    pay_event_t  *ev = &sw->ev;

    if (sw->pmcf->keyring == NULL) {
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: checkout \"%s\" of merchant "
                      "\"%s\" saved a payment method, and without "
                      "payments_encryption_key it cannot be kept sealed",
                      it->checkout_id, it->merchant_id);
        ngx_http_payments_sweep_note(sw, "cannot keep the method sealed");
        return;
    }

    idx = ngx_pnalloc(sw->pool, PAY_BLIND_INDEX_LEN + 1);
    domain = ngx_pnalloc(sw->pool, sizeof("payment_method:")
                                   + sw->psp->name.len);

    if (idx == NULL || domain == NULL
        || ngx_http_payments_sweep_event_id(sw) != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    /* a payment's look-up: its event id is the payment's */
    if (!it->setup) {
        if (ngx_strlen(ev->event_id) + sizeof(":payment_method")
            > sizeof(ev->event_id))
        {
            ngx_http_payments_sweep_next(sw);
            return;
        }

        ngx_cpystrn((u_char *) ev->event_id + ngx_strlen(ev->event_id),
                    (u_char *) ":payment_method", sizeof(":payment_method"));
    }

    last = ngx_sprintf((u_char *) domain, "payment_method:%V",
                       &sw->psp->name);
    *last = '\0';

    if (pay_blind_index(sw->pmcf->keyring, 0, domain, ev->method,
                        ngx_strlen(ev->method), idx)
        != 0)
    {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    d = json_object();
    if (d != NULL) {
        if (ev->brand[0] != '\0') {
            json_object_set_new(d, "brand", json_string(ev->brand));
        }

        if (ev->last4[0] != '\0') {
            json_object_set_new(d, "last4", json_string(ev->last4));
        }

        if (ev->exp_month > 0) {
            json_object_set_new(d, "exp_month", json_integer(ev->exp_month));
        }

        if (ev->exp_year > 0) {
            json_object_set_new(d, "exp_year", json_integer(ev->exp_year));
        }
    }

    display = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);

    sw->params[0] = (char *) ngx_http_payments_cstr(sw->pool, &sw->psp->name);
    sw->params[1] = ev->event_id;
    sw->params[2] = it->nonce;
    sw->params[3] = ngx_http_payments_seal(sw->pool, sw->pmcf,
                                           NGX_HTTP_PAYMENTS_SEALED_METHOD,
                                           it->merchant_id, it->checkout_id,
                                           ev->method);
    sw->params[4] = idx;
    sw->params[5] = ev->psp_customer;
    sw->params[6] = display ? ngx_http_payments_strdup(sw->pool, display)
                            : NULL;

    free(display);

    /* the token, open, is needed no more */
    ngx_explicit_memzero(ev->method, sizeof(ev->method));

    if (sw->params[0] == NULL || sw->params[3] == NULL
        || sw->params[6] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT outcome, merchant_id, "
                                         "checkout_id, method_id FROM "
                                         "pay_sweeper_method_saved($1, $2, "
                                         "$3, $4, $5, $6, $7::jsonb)",
                                         7, ngx_http_payments_sweep_saved)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_saved(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                            *outcome;
    ngx_uint_t                       level;
    ngx_http_payments_sweeper_t     *sw = q->data;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_method_saved")
        != NGX_OK
        || PQntuples(res) != 1)
    {
        /* not known to be committed: asked again retry= later */
        ngx_http_payments_sweep_next(sw);
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    level = (ngx_strcmp(outcome, "saved") == 0
             || ngx_strcmp(outcome, "already") == 0)
            ? NGX_LOG_NOTICE : NGX_LOG_ALERT;

    ngx_log_error(level, sw->log, 0,
                  "payments: sweeper: checkout \"%s\" of merchant \"%s\": "
                  "psp \"%V\" says its method was stored: %s",
                  it->checkout_id, it->merchant_id, &sw->psp->name, outcome);

    ngx_http_payments_sweep_next(sw);
}
