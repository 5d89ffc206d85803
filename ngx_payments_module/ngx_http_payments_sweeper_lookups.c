
/*
 * Copyright (C) ngx_payments authors
 *
 * The sweeper round's look-ups (_sweeper.c runs them first, when this
 * gateway holds the lease):
 *
 *   pay_sweeper_due     the checkouts EXECUTING past after=, not asked
 *                       about in the last retry=, oldest first: hosted
 *                       sessions, and the off-session charges at PSPs
 *                       that can look a payment up (by its id, or by the
 *                       charge's nonce when every answer was lost); and
 *                       those FAILED here whose sessions a cancel cannot
 *                       expire (adyen's), until the session's expiry and
 *                       grace=: only a payment taken since is applied;
 *   for each one, one at a time: the PSP's circuit breaker asked (open:
 *                       no call, noted "circuit open"), the dialect's
 *                       session (or payment) look-up through the worker's
 *                       libcurl
 *                       multi handle, its end told to the breaker as a
 *                       registration's is, then
 *   pay_sweeper_apply   a decided answer, applied as a verified webhook
 *                       would be (one transaction, the same ledger and
 *                       audit, source "sweeper"), or
 *   pay_sweeper_method_saved  a setup's session completed with its stored
 *                       method named (or a paid one's that saved it): the
 *                       method saved (sealed) as the PSP's event that it
 *                       was stored would save it (_sweeper_methods.c), or
 *   pay_sweeper_unsettled  a payment still pending at the PSP past the
 *                       session's expiry and grace=: listed for a person
 *                       once (alert), or
 *   pay_sweeper_note    what the PSP said when nothing moved;
 *
 * the lease renewed every interval on the way.  Each step is a query or a
 * fetch whose handler posts the next one (sw->next); after the last
 * checkout, ngx_http_payments_sweep_step_done.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


static void ngx_http_payments_sweep_step(ngx_event_t *ev);
static void ngx_http_payments_sweep_due(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_sweep_renewed(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_sweep_item(ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_expiry(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it, const char *waiting);
static void ngx_http_payments_sweep_answer(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_sweep_apply(ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_setup(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it);
static void ngx_http_payments_sweep_applied(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static ngx_uint_t ngx_http_payments_sweep_unusable(
    ngx_http_payments_sweeper_t *sw, ngx_http_payments_sweep_item_t *it,
    int status);
static void ngx_http_payments_sweep_unsettled(
    ngx_http_payments_sweeper_t *sw, ngx_http_payments_sweep_item_t *it);
static void ngx_http_payments_sweep_listed(ngx_http_payments_pg_query_t *q,
    PGresult *res);


/* the round's first step, the lease holder's: the checkouts due */

void
ngx_http_payments_sweep_lookups(ngx_http_payments_sweeper_t *sw)
{
    ngx_http_payments_sweeper_conf_t  *sc = &sw->pmcf->sweeper;

    sw->next.handler = ngx_http_payments_sweep_step;

    sw->params[0] = sw->owner;
    sw->params[1] = sw->psps;
    sw->params[2] = sw->payment_psps;
    sw->params[3] = sw->open_psps;
    sw->params[4] = ngx_http_payments_num(sw->pool, sc->after);
    sw->params[5] = ngx_http_payments_num(sw->pool, sc->retry);
    sw->params[6] = ngx_http_payments_num(sw->pool, sc->grace);
    sw->params[7] = ngx_http_payments_num(sw->pool, (int64_t) sc->batch);

    if (sw->params[4] == NULL || sw->params[5] == NULL
        || sw->params[6] == NULL || sw->params[7] == NULL)
    {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    sw->state = NGX_HTTP_PAYMENTS_SWEEP_DUE;

    if (ngx_http_payments_sweep_query(sw,
                                      "SELECT merchant_id, checkout_id, psp, "
                                      "psp_token, nonce, expires_epoch, "
                                      "age_seconds, session_result, payment, "
                                      "setup, failed "
                                      "FROM pay_sweeper_due($1, $2, $3, $4, "
                                      "$5, $6, $7, $8)",
                                      8, ngx_http_payments_sweep_due)
        != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


/* The lease renewed mid-round: the look-ups go on */
static void
ngx_http_payments_sweep_renewed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_lease_kept(sw, res, "checkouts", sw->current,
                                           sw->items->nelts)
        != NGX_OK)
    {
        return;
    }

    sw->state = NGX_HTTP_PAYMENTS_SWEEP_ITEMS;
    ngx_post_event(&sw->next, &ngx_posted_events);
}

static char *
ngx_http_payments_sweep_value(ngx_pool_t *pool, PGresult *res, int row,
    int col)
{
    return ngx_http_payments_strdup(pool, PQgetvalue(res, row, col));
}

static void
ngx_http_payments_sweep_due(ngx_http_payments_pg_query_t *q, PGresult *res)
{
    int                              i, n;
    ngx_http_payments_sweeper_t     *sw = q->data;
    ngx_http_payments_sweep_item_t  *it;

    sw->state = NGX_HTTP_PAYMENTS_SWEEP_OVERDUE;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_due") != NGX_OK) {
        ngx_post_event(&sw->next, &ngx_posted_events);
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

        it->merchant_id = ngx_http_payments_sweep_value(sw->pool, res, i, 0);
        it->checkout_id = ngx_http_payments_sweep_value(sw->pool, res, i, 1);
        it->psp = ngx_http_payments_sweep_value(sw->pool, res, i, 2);
        it->token = ngx_http_payments_sweep_value(sw->pool, res, i, 3);
        it->nonce = ngx_http_payments_sweep_value(sw->pool, res, i, 4);
        it->expires = ngx_atoof((u_char *) PQgetvalue(res, i, 5),
                                PQgetlength(res, i, 5));
        it->age = ngx_atoof((u_char *) PQgetvalue(res, i, 6),
                            PQgetlength(res, i, 6));
        it->payment = (PQgetvalue(res, i, 8)[0] == 't');
        it->setup = (PQgetvalue(res, i, 9)[0] == 't');
        it->failed = (PQgetvalue(res, i, 10)[0] == 't');
        it->session_result = PQgetisnull(res, i, 7)
                             ? NULL
                             : ngx_http_payments_sweep_value(sw->pool, res,
                                                             i, 7);

        if (it->merchant_id == NULL || it->checkout_id == NULL
            || it->psp == NULL || it->token == NULL || it->nonce == NULL)
        {
            ngx_http_payments_sweep_end(sw);
            return;
        }
    }

    if (n > 0) {
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: %d checkouts to ask about", n);
    }

    sw->state = NGX_HTTP_PAYMENTS_SWEEP_ITEMS;
    sw->current = 0;
    ngx_post_event(&sw->next, &ngx_posted_events);
}

/* the posted event: the next checkout, or the round's last query */
static void
ngx_http_payments_sweep_step(ngx_event_t *ev)
{
    ngx_http_payments_sweeper_t  *sw = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    if (sw->state == NGX_HTTP_PAYMENTS_SWEEP_ITEMS) {
        if (sw->items && sw->current < sw->items->nelts) {
            /* a round of slow look-ups can outlast the lease (three
             * intervals): renewed every interval, so that no other gateway
             * takes it over mid-round and sweeps beside this one */
            if (ngx_current_msec - sw->leased_at
                >= sw->pmcf->sweeper.interval)
            {
                sw->state = NGX_HTTP_PAYMENTS_SWEEP_RENEW;
                sw->params[0] = sw->owner;
                sw->params[1] = sw->ttl;

                if (ngx_http_payments_sweep_query(sw,
                        "SELECT pay_sweeper_lease($1, $2)", 2,
                        ngx_http_payments_sweep_renewed)
                    != NGX_OK)
                {
                    ngx_http_payments_sweep_end(sw);
                }

                return;
            }

            ngx_http_payments_sweep_item(sw);
            return;
        }

        sw->state = NGX_HTTP_PAYMENTS_SWEEP_OVERDUE;
    }

    if (sw->state != NGX_HTTP_PAYMENTS_SWEEP_OVERDUE) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    /* the look-ups are done: the round goes on */
    ngx_http_payments_sweep_step_done(sw);
}

static void
ngx_http_payments_sweep_item(ngx_http_payments_sweeper_t *sw)
{
    pay_psp_request_t                req;
    ngx_http_payments_psp_t         *psp;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    if (ngx_http_payments_sweep_item_open(sw, it) != NGX_OK) {
        return;
    }

    psp = sw->psp;

    ngx_memzero(&req, sizeof(pay_psp_request_t));

    /* an off-session charge: its payment, by its id, or by the charge's
     * nonce when every answer to it was lost (no id stored); never failed
     * by an expiry (the payment may have been taken), so one that cannot
     * be asked about waits for its webhook */
    if (it->payment) {
        if (psp->dl->payment_lookup == NULL
            || psp->dl->payment_lookup(&sw->in, &req) != 0)
        {
            pay_psp_request_free(&req);
            ngx_http_payments_metrics_sweep(psp,
                                            NGX_HTTP_PAYMENTS_SWEEP_CANNOT);
            ngx_http_payments_sweep_note(sw, "cannot ask: waiting for the "
                                             "payment's webhook");
            return;
        }

    } else if (psp->dl->session_lookup == NULL
               || psp->dl->session_lookup(&sw->in, &req) != 0)
    {
        pay_psp_request_free(&req);

        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_CANNOT);

        /* failed here already (adyen: the shopper never came back with
         * the session's result after paying) */
        if (it->failed) {
            ngx_http_payments_sweep_note(sw, "failed here, cannot ask");
            return;
        }

        /* the PSP cannot be asked: its session ends at expires_at */
        ngx_http_payments_sweep_expiry(sw, it, "cannot ask: waiting for the "
                                               "session to expire");
        return;
    }

    ngx_http_payments_sweep_ask(sw, &req, ngx_http_payments_sweep_answer,
                                "about");
}

/* FAILED once the session has expired at the PSP (grace= later), else
 * noted as waiting.  An off-session charge whose every answer was lost
 * holds no token: its event is named by the PSP's id of the payment its
 * look-up found (ev.token, pay_lookup_shopper). */

static void
ngx_http_payments_sweep_expiry(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it, const char *waiting)
{
    u_char  id[sizeof(sw->ev.token)];

    if (ngx_time() < it->expires + sw->pmcf->sweeper.grace) {
        ngx_http_payments_sweep_note(sw, waiting);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper: checkout \"%s\" expired %T s ago "
                   "and its grace is over: failed", it->checkout_id,
                   (time_t) (ngx_time() - it->expires));

    ngx_cpystrn(id, (u_char *) (it->token[0] != '\0' ? it->token
                                                     : sw->ev.token),
                sizeof(id));

    ngx_memzero(&sw->ev, sizeof(pay_event_t));
    ngx_snprintf((u_char *) sw->ev.event_id, sizeof(sw->ev.event_id) - 1,
                 "lookup:%s:expired%Z", id);
    ngx_cpystrn((u_char *) sw->ev.type, (u_char *) "session_expired",
                sizeof(sw->ev.type));
    sw->ev.kind = PAY_EVT_FAILED;
    ngx_cpystrn((u_char *) sw->ev.token, id, sizeof(sw->ev.token));
    ngx_cpystrn((u_char *) sw->ev.reference, (u_char *) it->nonce,
                sizeof(sw->ev.reference));
    sw->ev.amount = PAY_EVT_AMOUNT_ABSENT;

    ngx_http_payments_sweep_apply(sw);
}

static void
ngx_http_payments_sweep_answer(ngx_http_payments_fetch_t *f)
{
    int                              status;
    const char                      *what;
    ngx_uint_t                       level;
    pay_lookup_outcome_e             outcome;
    ngx_http_payments_psp_t         *psp;
    ngx_http_payments_sweeper_t     *sw = f->data;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;
    psp = sw->psp;
    status = (f->result == CURLE_OK) ? (int) f->status : 0;

    /* the breaker learns from a look-up as from a registration */
    ngx_http_payments_psp_tell_breaker(psp, f, sw->probe);
    sw->probe = 0;

    ngx_memzero(&sw->ev, sizeof(pay_event_t));

    outcome = it->payment
              ? psp->dl->payment_lookup_answer(&sw->in, status,
                                               (const char *) f->body, f->len,
                                               (int64_t) ngx_time(), &sw->ev)
              : psp->dl->session_lookup_answer(&sw->in, status,
                                               (const char *) f->body, f->len,
                                               (int64_t) ngx_time(), &sw->ev);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper: psp \"%V\" answered %d: outcome %d",
                   &psp->name, status, (int) outcome);

    /*
     * A checkout failed here (the shop's cancel, a decline) whose session
     * the PSP could not expire: only a payment it took in that session
     * since is applied, as its late webhook would be (FAILED -> SUCCESS
     * or AUTHORIZED, "paid_after_failed", alerted); any other answer
     * leaves it failed, and past the session's expiry and grace= it is
     * asked about no more (pay_sweeper_due).
     */
    if (it->failed && outcome == PAY_LOOKUP_PENDING) {
        /* a payment under way in a session failed here (an adyen manual
         * capture paid after the shop's cancel: paymentPending for good):
         * listed for a person at once */
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_OPEN);
        ngx_http_payments_sweep_unsettled(sw, it);
        return;
    }

    if (it->failed
        && ((outcome == PAY_LOOKUP_DECIDED
             && (sw->ev.kind != PAY_EVT_SUCCEEDED || it->setup))
            || outcome == PAY_LOOKUP_OPEN))
    {
        ngx_http_payments_metrics_sweep(psp,
                                        outcome == PAY_LOOKUP_DECIDED
                                        ? NGX_HTTP_PAYMENTS_SWEEP_DECIDED
                                        : NGX_HTTP_PAYMENTS_SWEEP_OPEN);
        ngx_http_payments_sweep_note(sw, "failed here, not paid at the "
                                         "psp");
        return;
    }

    switch (outcome) {

    case PAY_LOOKUP_DECIDED:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_DECIDED);

        /* a setup is done when its method is saved, never by the PSP's
         * word that the shopper completed it alone */
        if (it->setup && sw->ev.kind == PAY_EVT_SUCCEEDED) {
            ngx_http_payments_sweep_setup(sw, it);
            return;
        }

        ngx_http_payments_sweep_apply(sw);
        return;

    case PAY_LOOKUP_OPEN:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_OPEN);

        /* a snapshot (adyen's session result) stays "open" after the
         * session has ended */
        if (psp->dl->lookup_snapshot && !it->payment) {
            ngx_http_payments_sweep_expiry(sw, it, "open at the psp");
            return;
        }

        what = "open at the psp";
        break;

    case PAY_LOOKUP_PENDING:
        /* paid with a method that settles later: never failed by the
         * session's expiry; past alert= the overdue line says so.  Still
         * pending grace= after the session's expiry (adyen's manual
         * capture: its session says paymentPending for good), nothing
         * the sweeper can ask settles it: listed for a person, once */
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_OPEN);

        /* but an off-session charge the PSP says failed asking for the
         * shopper took nothing, and no page was made for them (every
         * answer to it lost, and the shop never came back for it): as a
         * page left alone, it fails "expired" once the checkout's
         * expires_at and grace= have passed, its event named by the
         * payment's id; until then the shop's retry of the charge makes
         * the page */
        if (it->payment && sw->ev.shopper && sw->ev.token[0] != '\0'
            && it->expires > 0)
        {
            ngx_http_payments_sweep_expiry(sw, it, "waiting for the "
                                                   "shopper's page");
            return;
        }

        if (!it->payment && !it->setup
            && ngx_time() >= it->expires + sw->pmcf->sweeper.grace)
        {
            ngx_http_payments_sweep_unsettled(sw, it);
            return;
        }

        what = "payment pending at the psp";
        break;

    case PAY_LOOKUP_AUTH:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_AUTH);
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: psp \"%V\" refused our credentials "
                      "(HTTP %d) when asked about checkout \"%s\"",
                      &psp->name, status, it->checkout_id);
        what = "credentials refused";
        break;

    default:
        ngx_http_payments_metrics_sweep(psp,
                                        NGX_HTTP_PAYMENTS_SWEEP_UNKNOWN);
        /* ngx_log_error() reads its level twice */
        level = ngx_http_payments_sweep_unusable(sw, it, status);
        ngx_log_error(level, sw->log, 0,
                      "payments: sweeper: psp \"%V\" gave no usable answer "
                      "about checkout \"%s\" (HTTP %d)",
                      &psp->name, it->checkout_id, status);
        what = status == 0 ? "no answer"
               : (it->payment && it->token[0] == '\0'
                  && status >= 200 && status <= 299)
                 ? "no payment under its nonce at the psp"
                 : "no usable answer";
        break;
    }

    ngx_http_payments_sweep_note(sw, what);
}


/*
 * A setup's session completed: with its stored method named, the method
 * saved as the PSP's event that it was stored would save it (sealed with
 * "payment_method:<nonce>" as associated data, indexed under the domain
 * "payment_method:<psp>"); without one (Adyen's session result names
 * none) nothing shows a method the shop could charge: the setup fails
 * once its session has expired here, as one never completed, and a
 * method event coming after still saves the method.
 */
static void
ngx_http_payments_sweep_setup(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it)
{
    pay_event_t  *ev = &sw->ev;

    if (ev->method[0] == '\0') {
        ngx_http_payments_sweep_expiry(sw, it, "completed at the psp, its "
                                               "method not known");
        return;
    }

    if (ngx_strcmp(ev->reference, it->nonce) != 0) {
        ngx_http_payments_sweep_note(sw, "answer names another checkout");
        return;
    }

    ngx_http_payments_sweep_method(sw, it);
}


static void
ngx_http_payments_sweep_apply(ngx_http_payments_sweeper_t *sw)
{
    pay_event_t  *ev = &sw->ev;

    if (ngx_http_payments_sweep_event_id(sw) != NGX_OK) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    sw->params[0] = (char *) ngx_http_payments_cstr(sw->pool, &sw->psp->name);
    sw->params[1] = ev->event_id;
    /* a success the PSP says was captured is paid whatever the stored
     * capture mode, as the webhook's (pay_webhook_apply_core's CAPTURED) */
    sw->params[2] = pay_event_kind_name(ev);
    sw->params[3] = ev->type;
    sw->params[4] = ev->token;
    sw->params[5] = ev->reference;
    sw->params[6] = ngx_http_payments_num(sw->pool, ev->amount);
    sw->params[7] = ev->currency;
    sw->params[8] = ev->payment_ref;

    /* $10: the token's blind indexes under every key and its plaintext */
    if (sw->params[0] == NULL || sw->params[6] == NULL
        || ngx_http_payments_token_keys(sw->pool, sw->pmcf, &sw->psp->name,
                                        ev->token,
                                        (char **) &sw->params[9])
           != NGX_OK
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT outcome, merchant_id, "
                                         "checkout_id FROM pay_sweeper_apply("
                                         "$1, $2, $3, $4, $5, $6, $7, $8, "
                                         "$9, $10)",
                                         10, ngx_http_payments_sweep_applied)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}

static void
ngx_http_payments_sweep_applied(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                            *outcome;
    ngx_uint_t                       level;
    ngx_http_payments_sweeper_t     *sw = q->data;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_apply") != NGX_OK
        || PQntuples(res) != 1)
    {
        /* not known to be committed: asked again retry= later */
        ngx_http_payments_sweep_next(sw);
        return;
    }

    outcome = PQgetvalue(res, 0, 0);

    ngx_http_payments_metrics_event(sw->psp, outcome);

    /* "pending": an expiry held back, a payment is under way at the PSP
     * (the overdue line alerts past alert=) */
    level = (ngx_strcmp(outcome, "applied") == 0
             || ngx_strcmp(outcome, "already") == 0
             || ngx_strcmp(outcome, "duplicate") == 0
             || ngx_strcmp(outcome, "pending") == 0)
            ? NGX_LOG_NOTICE : NGX_LOG_ALERT;

    ngx_log_error(level, sw->log, 0,
                  "payments: sweeper: checkout \"%s\" of merchant \"%s\": "
                  "psp \"%V\" says %s (%s): %s",
                  it->checkout_id, it->merchant_id, &sw->psp->name,
                  sw->ev.type, sw->ev.kind == PAY_EVT_SUCCEEDED
                               ? "paid" : "failed", outcome);

    /* the method the paid session saved, its own event lost with the
     * payment's: kept as that event would keep it, once the payment is
     * here (pay_method_saved_apply waits for it otherwise) */
    if (sw->ev.method[0] != '\0' && sw->ev.kind == PAY_EVT_SUCCEEDED
        && (ngx_strcmp(outcome, "applied") == 0
            || ngx_strcmp(outcome, "already") == 0
            || ngx_strcmp(outcome, "paid_after_failed") == 0
            || ngx_strcmp(outcome, "captured_for_manual") == 0))
    {
        ngx_http_payments_sweep_method(sw, it);
        return;
    }

    ngx_http_payments_sweep_next(sw);
}

/*
 * A payment under way at the PSP past the session's expiry and grace=, or
 * in the session of a checkout failed here:
 * pay_sweeper_unsettled records it once (outcome payment_unsettled,
 * "lookup:<token>:unsettled", its audit row), logged at alert; the
 * checkout stays EXECUTING for the PSP's webhook, should it come.
 */
static void
ngx_http_payments_sweep_unsettled(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it)
{
    char  type[sizeof(sw->ev.type)];

    ngx_cpystrn((u_char *) type, (u_char *) sw->ev.type, sizeof(type));

    ngx_memzero(&sw->ev, sizeof(pay_event_t));
    ngx_snprintf((u_char *) sw->ev.event_id, sizeof(sw->ev.event_id) - 1,
                 "lookup:%s:unsettled%Z", it->token);
    ngx_cpystrn((u_char *) sw->ev.type,
                (u_char *) (type[0] ? type : "pending"),
                sizeof(sw->ev.type));
    ngx_cpystrn((u_char *) sw->ev.token, (u_char *) it->token,
                sizeof(sw->ev.token));

    if (ngx_http_payments_sweep_event_id(sw) != NGX_OK) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    sw->params[0] = (char *) ngx_http_payments_cstr(sw->pool, &sw->psp->name);
    sw->params[1] = sw->ev.event_id;
    sw->params[2] = it->merchant_id;
    sw->params[3] = it->checkout_id;
    sw->params[4] = sw->ev.type;

    if (sw->params[0] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT pay_sweeper_unsettled($1, "
                                         "$2, $3, $4, $5)",
                                         5, ngx_http_payments_sweep_listed)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_listed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t     *sw = q->data;
    ngx_http_payments_sweep_item_t  *it;

    it = (ngx_http_payments_sweep_item_t *) sw->items->elts + sw->current;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_unsettled")
        == NGX_OK
        && PQntuples(res) == 1
        && ngx_strcmp(PQgetvalue(res, 0, 0), "payment_unsettled") == 0)
    {
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: checkout \"%s\" of merchant "
                      "\"%s\": psp \"%V\" still says a payment is under "
                      "way (%s) %s: nothing it answers settles it, and a "
                      "capture or settlement made at the psp is booked "
                      "only by its webhook; look it up at the psp: "
                      "payment_unsettled",
                      it->checkout_id, it->merchant_id, &sw->psp->name,
                      sw->ev.type, it->failed ? "for a checkout failed here"
                                              : "past the session's expiry");
    }

    ngx_http_payments_sweep_next(sw);
}


/*
 * The level of a "no usable answer" line: error the first time this
 * checkout got this answer, info when it got it before (a PSP that has
 * forgotten a session, a mock PSP reset by a test, answers 404 every
 * retry=; the checkout stays EXECUTING and past alert= the overdue line
 * says so once).
 */
static ngx_uint_t
ngx_http_payments_sweep_unusable(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it, int status)
{
    uint32_t    h;
    ngx_uint_t  i;

    ngx_crc32_init(h);
    ngx_crc32_update(&h, (u_char *) it->merchant_id,
                     ngx_strlen(it->merchant_id) + 1);
    ngx_crc32_update(&h, (u_char *) it->checkout_id,
                     ngx_strlen(it->checkout_id) + 1);
    ngx_crc32_update(&h, (u_char *) &status, sizeof(int));
    ngx_crc32_final(h);

    /* 0 marks an empty slot */
    h |= 1;

    for (i = 0; i < NGX_HTTP_PAYMENTS_SWEEP_SEEN; i++) {
        if (sw->unusable[i] == h) {
            return NGX_LOG_INFO;
        }
    }

    sw->unusable[sw->unusable_next] = h;
    sw->unusable_next = (sw->unusable_next + 1) % NGX_HTTP_PAYMENTS_SWEEP_SEEN;

    return NGX_LOG_ERR;
}
