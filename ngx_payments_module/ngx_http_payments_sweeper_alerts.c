
/*
 * Copyright (C) ngx_payments authors
 *
 * Three steps of the sweeper's round, after the PSP look-ups: what needs a
 * person, each a query whose handler reports back to the driver
 * (ngx_http_payments_sweep_step_done):
 *
 *   pay_sweeper_overdue checkouts still EXECUTING past alert=: a log line
 *                       each (once) and the /metrics gauges;
 *   pay_holds_sweep     manual-capture authorizations near their PSP's
 *                       auth_window (a day before: a log line each, once)
 *                       or past it (released, never booked: a log line;
 *                       with a capture or void in flight, postponed: a
 *                       line each round, at alert an hour past the end),
 *                       and the /metrics gauge;
 *   pay_review_expire   the risk check's reviews undecided past their
 *                       deadline: FAILED, a warning each.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


static void ngx_http_payments_sweep_overdue_read(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_holds_read(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_expired(ngx_http_payments_pg_query_t *q,
    PGresult *res);


/* pay_sweeper_overdue: the checkouts still EXECUTING past alert= */

void
ngx_http_payments_sweep_overdue(ngx_http_payments_sweeper_t *sw)
{
    sw->state = NGX_HTTP_PAYMENTS_SWEEP_OVERDUE;
    sw->params[0] = sw->owner;
    sw->params[1] = sw->psps;
    sw->params[2] = ngx_http_payments_num(sw->pool, sw->pmcf->sweeper.alert);
    sw->params[3] = "100";

    if (sw->params[2] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT merchant_id, checkout_id, "
                                         "psp, age_seconds, last_answer, "
                                         "unresolved, oldest_seconds "
                                         "FROM pay_sweeper_overdue($1, $2, "
                                         "$3, $4)",
                                         4,
                                         ngx_http_payments_sweep_overdue_read)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_overdue_read(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                           i, n;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_sweeper_overdue") == NGX_OK
        && (n = PQntuples(res)) > 0)
    {
        ngx_http_payments_metrics_gauge(sw->shard_conf,
            NGX_HTTP_PAYMENTS_SG_UNRESOLVED,
            (ngx_atomic_uint_t) ngx_atoof((u_char *) PQgetvalue(res, 0, 5),
                                          PQgetlength(res, 0, 5)));
        ngx_http_payments_metrics_gauge(sw->shard_conf,
            NGX_HTTP_PAYMENTS_SG_UNRESOLVED_OLDEST,
            (ngx_atomic_uint_t) ngx_atoof((u_char *) PQgetvalue(res, 0, 6),
                                          PQgetlength(res, 0, 6)));

        for (i = 0; i < n; i++) {
            if (PQgetisnull(res, i, 0)) {
                continue;
            }

            /* once per checkout: pay_sweeper_overdue marks it alerted */
            ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                          "payments: sweeper: checkout \"%s\" of merchant "
                          "\"%s\" (psp \"%s\") is EXECUTING for %s s and "
                          "still unresolved; last psp answer: %s",
                          PQgetvalue(res, i, 1), PQgetvalue(res, i, 0),
                          PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                          PQgetisnull(res, i, 4) ? "none"
                                                 : PQgetvalue(res, i, 4));
        }
    }

    ngx_http_payments_sweep_step_done(sw);
}


/* pay_holds_sweep: the manual-capture authorizations near or past their
 * end */

void
ngx_http_payments_sweep_holds(ngx_http_payments_sweeper_t *sw)
{
    sw->state = NGX_HTTP_PAYMENTS_SWEEP_HOLDS;
    sw->params[0] = sw->owner;
    sw->params[1] = sw->psps;
    sw->params[2] = sw->windows;
    sw->params[3] = ngx_http_payments_num(sw->pool,
                                          NGX_HTTP_PAYMENTS_HOLD_WARN);
    sw->params[4] = "100";
    sw->params[5] = sw->units;

    if (sw->params[3] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT merchant_id, checkout_id, "
                                         "psp, action, left_seconds, "
                                         "expiring FROM pay_holds_sweep($1, "
                                         "$2, $3, $4, $5, $6::jsonb)",
                                         6,
                                         ngx_http_payments_sweep_holds_read)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_holds_read(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                           i, n;
    off_t                         left;
    ngx_uint_t                    level;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_holds_sweep") == NGX_OK
        && (n = PQntuples(res)) > 0)
    {
        ngx_http_payments_metrics_gauge(sw->shard_conf,
            NGX_HTTP_PAYMENTS_SG_HOLDS_EXPIRING,
            (ngx_atomic_uint_t) ngx_atoof((u_char *) PQgetvalue(res, 0, 5),
                                          PQgetlength(res, 0, 5)));

        for (i = 0; i < n; i++) {
            if (PQgetisnull(res, i, 0)) {
                continue;
            }

            if (ngx_strcmp(PQgetvalue(res, i, 3), "postponed") == 0) {
                /* a capture or void of it still in flight: the PSP's word
                 * on it comes first; past an hour it needs a person */
                left = PQgetvalue(res, i, 4)[0] == '-'
                       ? ngx_atoof((u_char *) PQgetvalue(res, i, 4) + 1,
                                   PQgetlength(res, i, 4) - 1)
                       : 0;
                level = left >= NGX_HTTP_PAYMENTS_HOLD_STUCK
                        ? NGX_LOG_ALERT : NGX_LOG_WARN;

                ngx_log_error(level, sw->log, 0,
                              "payments: sweeper: the authorization of "
                              "checkout \"%s\" of merchant \"%s\" (psp "
                              "\"%s\") is past its end with a capture or "
                              "void in flight (%s s): not released until the "
                              "psp settles it",
                              PQgetvalue(res, i, 1), PQgetvalue(res, i, 0),
                              PQgetvalue(res, i, 2), PQgetvalue(res, i, 4));
                continue;
            }

            if (ngx_strcmp(PQgetvalue(res, i, 3), "expired") == 0) {
                /* the PSP releases it too: nothing was booked of it */
                ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                              "payments: sweeper: the authorization of "
                              "checkout \"%s\" of merchant \"%s\" (psp "
                              "\"%s\") expired: what was not captured is "
                              "released, never booked",
                              PQgetvalue(res, i, 1), PQgetvalue(res, i, 0),
                              PQgetvalue(res, i, 2));
                continue;
            }

            /* once per checkout: pay_holds_sweep marks it warned */
            ngx_log_error(NGX_LOG_ERR, sw->log, 0,
                          "payments: sweeper: the authorization of checkout "
                          "\"%s\" of merchant \"%s\" (psp \"%s\") expires "
                          "in %s s: capture or void it before",
                          PQgetvalue(res, i, 1), PQgetvalue(res, i, 0),
                          PQgetvalue(res, i, 2), PQgetvalue(res, i, 4));
        }
    }

    ngx_http_payments_sweep_step_done(sw);
}


/* pay_review_expire: the risk check's reviews left past their deadline
 * fail as rejected ones do (doc/RISK.md), with a warning each */

void
ngx_http_payments_sweep_reviews(ngx_http_payments_sweeper_t *sw)
{
    char  *body;

    body = pay_problem_json(PAY_ERR_RISK_DECLINED, 0,
                            "the checkout's review was not decided in time; "
                            "it is FAILED and was sent to no PSP");

    sw->params[0] = ngx_http_payments_num(sw->pool,
                                          (int64_t) sw->pmcf->sweeper.batch);
    sw->params[1] = ngx_http_payments_strdup(sw->pool, body);
    free(body);

    if (sw->params[0] == NULL || sw->params[1] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT nonce FROM "
                                         "pay_review_expire($1, $2)",
                                         2, ngx_http_payments_sweep_expired)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_expired(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                           i, n;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_review_expire") == NGX_OK) {
        n = PQntuples(res);

        for (i = 0; i < n; i++) {
            ngx_http_payments_metrics_risk_expired();
            ngx_log_error(NGX_LOG_WARN, sw->log, 0,
                          "payments: sweeper: the review of checkout \"%s\" "
                          "was not decided before its deadline: FAILED "
                          "(risk_rejected)", PQgetvalue(res, i, 0));
        }
    }

    ngx_http_payments_sweep_step_done(sw);
}
