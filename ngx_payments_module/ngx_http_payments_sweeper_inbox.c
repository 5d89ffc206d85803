
/*
 * Copyright (C) ngx_payments authors
 *
 * A step of the sweeper's round, the lease holder's: the event inbox.
 *
 *   pay_inbox_partitions  the inbox's monthly partitions made ahead
 *                         (this month and the next two), so that no
 *                         webhook makes one on its way;
 *   pay_inbox_drop_old    the partitions older than inbox_months= whole
 *                         months dropped (retention: never a row deleted);
 *   pay_inbox_retry       the events kept pending (what they refer to was
 *                         not here) applied again, oldest first: each
 *                         applied once what it refers to is committed, or
 *                         found unmatched once pending for unmatched=: a
 *                         log line at alert, once, and the /metrics
 *                         counter.
 *
 * A timer rather than the referenced object's commit: a checkout, refund,
 * capture, dispute or pay-out is committed on many paths (registration,
 * the API, the PSP's own events, the sweeper's look-ups, reconciliation),
 * each of which would have to search the inbox in its transaction and
 * apply another event's money there, under that event's locks; the round
 * keeps that cost and those locks off every request, and applies an event
 * at most one interval after what it refers to arrives.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_sweeper.h"


#define NGX_HTTP_PAYMENTS_INBOX_AHEAD  "2"     /* months */
#define NGX_HTTP_PAYMENTS_INBOX_BATCH  "100"   /* events per round */


static void ngx_http_payments_sweep_inbox_made(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_inbox_dropped(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_inbox_read(
    ngx_http_payments_pg_query_t *q, PGresult *res);


void
ngx_http_payments_sweep_inbox(ngx_http_payments_sweeper_t *sw)
{
    sw->state = NGX_HTTP_PAYMENTS_SWEEP_INBOX;
    sw->params[0] = NGX_HTTP_PAYMENTS_INBOX_AHEAD;

    if (ngx_http_payments_sweep_query(sw,
                                      "SELECT pay_inbox_partitions($1)",
                                      1, ngx_http_payments_sweep_inbox_made)
        != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_inbox_made(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    /* logged when it failed; the retry is worth a try all the same */
    if (ngx_http_payments_sweep_ok(sw, res, "pay_inbox_partitions")
        == NGX_OK
        && PQntuples(res) == 1
        && ngx_strcmp(PQgetvalue(res, 0, 0), "0") != 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, sw->log, 0,
                      "payments: sweeper: %s event inbox partition(s) made",
                      PQgetvalue(res, 0, 0));
    }

    sw->params[0] = ngx_http_payments_num(sw->pool,
                                          sw->pmcf->sweeper.inbox_months);

    if (sw->params[0] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT pay_inbox_drop_old($1)", 1,
                                         ngx_http_payments_sweep_inbox_dropped)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_inbox_dropped(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                           i;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_inbox_drop_old") == NGX_OK) {
        for (i = 0; i < PQntuples(res); i++) {
            ngx_log_error(NGX_LOG_NOTICE, sw->log, 0,
                          "payments: sweeper: event inbox partition \"%s\" "
                          "dropped: older than inbox_months=%ui",
                          PQgetvalue(res, i, 0),
                          sw->pmcf->sweeper.inbox_months);
        }
    }

    sw->params[0] = ngx_http_payments_num(sw->pool,
                                          sw->pmcf->sweeper.unmatched);
    sw->params[1] = NGX_HTTP_PAYMENTS_INBOX_BATCH;

    if (sw->params[0] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT psp, event_id, kind, type, "
                                         "state, outcome, merchant_id, "
                                         "checkout_id, age_seconds "
                                         "FROM pay_inbox_retry($1, $2)",
                                         2,
                                         ngx_http_payments_sweep_inbox_read)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_inbox_read(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                           i, n;
    char                         *name, *state;
    ngx_http_payments_psp_t      *psp;
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_inbox_retry") == NGX_OK) {
        n = PQntuples(res);

        for (i = 0; i < n; i++) {
            name = PQgetvalue(res, i, 0);
            state = PQgetvalue(res, i, 4);
            psp = ngx_http_payments_find_psp(sw->pmcf, name,
                                             ngx_strlen(name));

            if (ngx_strcmp(state, "applied") == 0) {
                ngx_http_payments_metrics_inbox(psp,
                                        NGX_HTTP_PAYMENTS_INBOX_APPLIED_LATE);
                ngx_http_payments_metrics_event(psp, PQgetvalue(res, i, 5));

                ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                              "payments: sweeper: kept event \"%s\" (%s) of "
                              "psp \"%s\" applied %s s after it came, "
                              "checkout \"%s:%s\": %s",
                              PQgetvalue(res, i, 1), PQgetvalue(res, i, 3),
                              name, PQgetvalue(res, i, 8),
                              PQgetvalue(res, i, 6), PQgetvalue(res, i, 7),
                              PQgetvalue(res, i, 5));
                continue;
            }

            /* once: only the change to unmatched returns it */
            ngx_http_payments_metrics_inbox(psp,
                                            NGX_HTTP_PAYMENTS_INBOX_UNMATCHED);

            ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                          "payments: sweeper: kept event \"%s\" (%s, %s) of "
                          "psp \"%s\" still refers to nothing here after "
                          "%s s: unmatched (%s)",
                          PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                          PQgetvalue(res, i, 3), name, PQgetvalue(res, i, 8),
                          PQgetvalue(res, i, 5));
        }
    }

    ngx_http_payments_sweep_step_done(sw);
}
