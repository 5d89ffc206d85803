
/*
 * Copyright (C) ngx_payments authors
 *
 * The risk check asked again after the payment (payments_risk
 * after_payment=on, doc/RISK.md), out of any request: the sweeper's round
 * ends here when this gateway holds its lease.
 *
 *   pay_risk_after_due     the paid checkouts the check asked about before
 *                          their PSP and not yet after, batch= at most;
 *   for each one, one at a time: the same signed request as the first
 *                          check, "phase":"after_payment", Idempotency-Key
 *                          <merchant>:<checkout>:after_payment, through
 *                          the worker's libcurl multi handle, its answer
 *                          judged as the first one's (_risk.c), then
 *   pay_risk_after_record  its verdict, once per checkout; or, when the
 *                          provider has no usable answer, nothing until
 *                          after_payment_retry= after the payment (a
 *                          later round asks again), then "unchecked".
 *
 * Nothing here moves money: a deny, a review or an unchecked checkout is
 * an alert for a person (the error log, /metrics), and a deny or a review
 * the merchant's checkout.risk_flagged notification (in the record's
 * transaction), after which a refund is the merchant's to make.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


/* the first checks the round looks at: a week (a gateway that turns
 * after_payment on does not ask about its past) */
#define NGX_HTTP_PAYMENTS_RISK_AFTER_HORIZON  604800

#define NGX_HTTP_PAYMENTS_RISK_UNCHECKED      3


typedef struct {
    pay_risk_paid_t                 paid;
    char                           *key;        /* <m>:<co>:after_payment */
    char                           *body;       /* our request */
    int64_t                         paid_seconds;
} ngx_http_payments_risk_after_item_t;


static void ngx_http_payments_risk_after_due(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_risk_after_next(
    ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_risk_after_renewed(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_risk_after_ask(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_risk_after_item_t *it);
static void ngx_http_payments_risk_after_answer(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_risk_after_failed(
    ngx_http_payments_sweeper_t *sw, ngx_http_payments_risk_after_item_t *it,
    const char *why);
static void ngx_http_payments_risk_after_record(
    ngx_http_payments_sweeper_t *sw, const char *verdict, int score,
    const char *reason, const char *source);
static void ngx_http_payments_risk_after_recorded(
    ngx_http_payments_pg_query_t *q, PGresult *res);


void
ngx_http_payments_sweep_risk_after(ngx_http_payments_sweeper_t *sw)
{
    sw->state = NGX_HTTP_PAYMENTS_SWEEP_RISK_AFTER;
    sw->params[0] = ngx_http_payments_num(sw->pool,
                                          (int64_t) sw->pmcf->sweeper.batch);
    sw->params[1] = ngx_http_payments_num(sw->pool,
                                          NGX_HTTP_PAYMENTS_RISK_AFTER_HORIZON);

    if (sw->params[0] == NULL || sw->params[1] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT merchant_id, checkout_id, "
                                         "psp, currency, amount_total, "
                                         "buyer_email, psp_payment_ref, "
                                         "orders, paid_seconds "
                                         "FROM pay_risk_after_due($1, $2)",
                                         2, ngx_http_payments_risk_after_due)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static char *
ngx_http_payments_risk_after_value(ngx_pool_t *pool, PGresult *res, int row,
    int col)
{
    if (PQgetisnull(res, row, col)) {
        return NULL;
    }

    return ngx_http_payments_strdup(pool, PQgetvalue(res, row, col));
}


static void
ngx_http_payments_risk_after_due(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                                   i, n;
    u_char                               *last;
    size_t                                len;
    ngx_http_payments_sweeper_t          *sw = q->data;
    ngx_http_payments_risk_after_item_t  *it;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_risk_after_due") != NGX_OK) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    n = PQntuples(res);

    sw->risk_items = ngx_array_create(sw->pool, n ? n : 1,
                                   sizeof(ngx_http_payments_risk_after_item_t));
    if (sw->risk_items == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    for (i = 0; i < n; i++) {
        it = ngx_array_push(sw->risk_items);
        if (it == NULL) {
            ngx_http_payments_sweep_end(sw);
            return;
        }

        ngx_memzero(it, sizeof(ngx_http_payments_risk_after_item_t));

        it->paid.merchant_id = ngx_http_payments_risk_after_value(sw->pool,
                                                                  res, i, 0);
        it->paid.checkout_id = ngx_http_payments_risk_after_value(sw->pool,
                                                                  res, i, 1);
        it->paid.psp = ngx_http_payments_risk_after_value(sw->pool, res, i,
                                                          2);
        it->paid.currency = ngx_http_payments_risk_after_value(sw->pool, res,
                                                               i, 3);
        it->paid.total = ngx_atoof((u_char *) PQgetvalue(res, i, 4),
                                   PQgetlength(res, i, 4));
        it->paid.buyer_email = ngx_http_payments_risk_after_value(sw->pool,
                                                                  res, i, 5);
        it->paid.psp_payment_ref = ngx_http_payments_risk_after_value(
                                       sw->pool, res, i, 6);
        it->paid.orders = ngx_http_payments_risk_after_value(sw->pool, res,
                                                             i, 7);
        it->paid_seconds = ngx_atoof((u_char *) PQgetvalue(res, i, 8),
                                     PQgetlength(res, i, 8));

        /* a row the round cannot ask about is passed over, never the end
         * of the round: the list is walked oldest first, and one such row
         * ended every round before the rest were asked about
         * (solo_risk_after::a_paid_checkout_with_no_orders_does_not_stop_the_round).
         * No orders (a NULL array) is asked about as a request that cannot
         * be made: retried, then unchecked, and so off the list */
        if (it->paid.merchant_id == NULL || it->paid.checkout_id == NULL
            || it->paid.psp == NULL || it->paid.currency == NULL)
        {
            ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                          "payments: sweeper: risk check after payment: a "
                          "due row without its checkout's merchant, id, psp "
                          "or currency, passed over");
            sw->risk_items->nelts--;
            continue;
        }

        len = ngx_strlen(it->paid.merchant_id)
              + ngx_strlen(it->paid.checkout_id)
              + sizeof("::after_payment");
        it->key = ngx_pnalloc(sw->pool, len);
        if (it->key == NULL) {
            ngx_http_payments_sweep_end(sw);
            return;
        }

        last = ngx_snprintf((u_char *) it->key, len - 1, "%s:%s:after_payment",
                            it->paid.merchant_id, it->paid.checkout_id);
        *last = '\0';
    }

    if (n > 0) {
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: %d paid checkouts to ask the risk "
                      "provider about", n);
    }

    sw->risk_current = 0;
    ngx_http_payments_risk_after_next(sw);
}


/* the next checkout, the lease renewed every interval as the look-ups
 * renew it; the round ends after the last one */

static void
ngx_http_payments_risk_after_next(ngx_http_payments_sweeper_t *sw)
{
    ngx_http_payments_risk_after_item_t  *it;

    if (ngx_exiting || ngx_terminate || ngx_quit
        || sw->risk_items == NULL
        || sw->risk_current >= sw->risk_items->nelts)
    {
        ngx_http_payments_sweep_step_done(sw);
        return;
    }

    if (ngx_current_msec - sw->leased_at >= sw->pmcf->sweeper.interval) {
        sw->params[0] = sw->owner;
        sw->params[1] = sw->ttl;

        if (ngx_http_payments_sweep_query(sw,
                                          "SELECT pay_sweeper_lease($1, $2)",
                                          2,
                                          ngx_http_payments_risk_after_renewed)
            != NGX_OK)
        {
            ngx_http_payments_sweep_end(sw);
        }

        return;
    }

    it = (ngx_http_payments_risk_after_item_t *) sw->risk_items->elts
         + sw->risk_current;

    ngx_http_payments_risk_after_ask(sw, it);
}


static void
ngx_http_payments_risk_after_renewed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    /* lost: another gateway holds it now, and asks the rest */
    if (ngx_http_payments_sweep_lease_kept(sw, res,
                                           "paid checkouts to ask about",
                                           sw->risk_current,
                                           sw->risk_items->nelts)
        != NGX_OK)
    {
        return;
    }

    ngx_http_payments_risk_after_next(sw);
}


static void
ngx_http_payments_risk_after_ask(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_risk_after_item_t *it)
{
    char  *body;

    body = pay_risk_request_paid(&it->paid);
    if (body == NULL) {
        ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                      "payments: sweeper: risk check after payment of "
                      "checkout \"%s\" of merchant \"%s\": no request "
                      "(its orders do not add up)", it->paid.checkout_id,
                      it->paid.merchant_id);
        ngx_http_payments_risk_after_failed(sw, it, "unavailable");
        return;
    }

    /* the body lives as long as the transfer: in the round's pool */
    it->body = ngx_http_payments_strdup(sw->pool, body);
    free(body);

    if (it->body == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    sw->fetch.handler = ngx_http_payments_risk_after_answer;
    sw->fetch.data = sw;
    sw->fetch.log = sw->log;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sw->log, 0,
                   "payments: sweeper: risk check after payment of \"%s\", "
                   "paid %L s ago", it->key, it->paid_seconds);

    if (ngx_http_payments_risk_ask(sw->pmcf->risk_after, sw->pool,
                                   &sw->fetch, it->body,
                                   ngx_strlen(it->body), it->key,
                                   &sw->risk_sig)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                      "payments: sweeper: risk check after payment of "
                      "\"%s\": could not start the request", it->key);
        ngx_http_payments_risk_after_failed(sw, it, "unavailable");
    }
}


static void
ngx_http_payments_risk_after_answer(ngx_http_payments_fetch_t *f)
{
    const char                           *why;
    pay_risk_answer_t                     a;
    ngx_http_payments_sweeper_t          *sw = f->data;
    ngx_http_payments_risk_after_item_t  *it;

    it = (ngx_http_payments_risk_after_item_t *) sw->risk_items->elts
         + sw->risk_current;

    /* never the body: it names the buyer */
    ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                  "payments: sweeper: risk check after payment of \"%s\": "
                  "HTTP %l, %s, %Mms", it->key, f->status,
                  f->result == CURLE_OK ? "answered"
                                        : curl_easy_strerror(f->result),
                  f->elapsed);

    if (ngx_http_payments_risk_judge(sw->pmcf->risk_after, f, &sw->risk_sig,
                                     &a, &why)
        != NGX_OK)
    {
        ngx_http_payments_risk_after_failed(sw, it, why);
        return;
    }

    ngx_http_payments_risk_after_record(sw, pay_risk_verdict_name(a.verdict),
                                        a.score,
                                        a.reason[0] ? a.reason : NULL,
                                        "provider");
}


/* no usable answer: asked again by a later round, until after_payment_retry=
 * after the payment; then unchecked.  on_error= does not apply: money that
 * is booked is not the policy's to move. */

static void
ngx_http_payments_risk_after_failed(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_risk_after_item_t *it, const char *why)
{
    if (it->paid_seconds < sw->pmcf->risk_after->after_retry) {
        ngx_log_error(NGX_LOG_WARN, sw->log, 0,
                      "payments: sweeper: risk check after payment of "
                      "checkout \"%s\" of merchant \"%s\": no usable answer "
                      "(%s); asked again in a later round",
                      it->paid.checkout_id, it->paid.merchant_id, why);
        sw->risk_current++;
        ngx_http_payments_risk_after_next(sw);
        return;
    }

    ngx_http_payments_risk_after_record(sw, "unchecked", -1, why,
                                        "on_error");
}


static void
ngx_http_payments_risk_after_record(ngx_http_payments_sweeper_t *sw,
    const char *verdict, int score, const char *reason, const char *source)
{
    ngx_http_payments_risk_after_item_t  *it;

    it = (ngx_http_payments_risk_after_item_t *) sw->risk_items->elts
         + sw->risk_current;

    sw->params[0] = it->paid.merchant_id;
    sw->params[1] = it->paid.checkout_id;
    sw->params[2] = verdict;
    sw->params[3] = score >= 0 ? ngx_http_payments_num(sw->pool, score)
                               : NULL;
    /* the answer's reason lives on the caller's stack: copied */
    sw->params[4] = reason ? ngx_http_payments_strdup(sw->pool, reason)
                           : NULL;
    sw->params[5] = source;

    if ((score >= 0 && sw->params[3] == NULL)
        || (reason != NULL && sw->params[4] == NULL)
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT pay_risk_after_record($1, "
                                         "$2, $3, $4, $5, $6)",
                                         6,
                                         ngx_http_payments_risk_after_recorded)
           != NGX_OK)
    {
        /* nothing recorded: a later round asks again */
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_risk_after_recorded(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    const char                           *outcome, *verdict, *reason;
    ngx_uint_t                            v;
    ngx_http_payments_sweeper_t          *sw = q->data;
    ngx_http_payments_risk_after_item_t  *it;

    it = (ngx_http_payments_risk_after_item_t *) sw->risk_items->elts
         + sw->risk_current;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_risk_after_record")
        != NGX_OK
        || PQntuples(res) != 1)
    {
        /* nothing known to be recorded: a later round asks again */
        ngx_http_payments_sweep_end(sw);
        return;
    }

    outcome = PQgetvalue(res, 0, 0);
    verdict = sw->params[2];
    reason = sw->params[4] ? sw->params[4] : "none";

    if (ngx_strcmp(outcome, "recorded") != 0) {
        /* another round's, or the checkout moved on: nothing to tell */
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: risk check after payment of "
                      "\"%s\": %s, nothing recorded", it->key, outcome);

    } else if (ngx_strcmp(verdict, "allow") == 0) {
        ngx_http_payments_metrics_risk_after(PAY_RISK_ALLOW);
        ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                      "payments: sweeper: risk check after payment of "
                      "\"%s\": allow", it->key);

    } else if (ngx_strcmp(verdict, "unchecked") == 0) {
        ngx_http_payments_metrics_risk_after(NGX_HTTP_PAYMENTS_RISK_UNCHECKED);
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: checkout \"%s\" of merchant \"%s\" "
                      "was paid and the risk provider gave no usable answer "
                      "after the payment (%s) for %L s: UNCHECKED, a person "
                      "must check it; nothing was reversed",
                      it->paid.checkout_id, it->paid.merchant_id, reason,
                      it->paid_seconds);

    } else {
        v = (verdict[0] == 'd') ? PAY_RISK_DENY : PAY_RISK_REVIEW;
        ngx_http_payments_metrics_risk_after(v);
        ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                      "payments: sweeper: checkout \"%s\" of merchant \"%s\" "
                      "was paid and the risk provider now says %s (%s): a "
                      "person must check it; nothing was reversed, the "
                      "merchant is notified (checkout.risk_flagged)",
                      it->paid.checkout_id, it->paid.merchant_id, verdict,
                      reason);
    }

    sw->risk_current++;
    ngx_http_payments_risk_after_next(sw);
}
