
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
 *                         counter (not while the home shard's event
 *                         waits for a shard that does not answer, below);
 *   pay_inbox_homeless    with several shards, on each shard (the home
 *                         keeps them; a former home, once the home flag
 *                         moved, still holds those it kept then):
 *                         the events it keeps pending for want of an
 *                         owner (a nonce whose merchant lives elsewhere,
 *                         an event that named none), each located again
 *                         on every other shard (its nonce's merchant,
 *                         pay_merchant_here, or pay_event_locate, one
 *                         shard after the other: background work, no
 *                         request waits), kept and applied on the one
 *                         that owns it (pay_event_keep with the kept
 *                         bytes, headers and key id) and then marked
 *                         forwarded here (pay_inbox_forwarded).  Only the
 *                         owner ever applies it; no owner yet, several,
 *                         or a shard that did not answer: it waits here
 *                         for a later round (retry=).  A shard that did
 *                         not answer is noted (pay_inbox_waiting): the
 *                         event then stays pending past unmatched=, tried
 *                         every retry= until that shard answers.
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
static void ngx_http_payments_sweep_homeless(ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_homeless_read(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_forward_next(
    ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_forward_locate(
    ngx_http_payments_sweeper_t *sw);
static void ngx_http_payments_sweep_forward_located(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_forward_waiting(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_forward_kept(
    ngx_http_payments_pg_query_t *q, PGresult *res);
static void ngx_http_payments_sweep_forward_marked(
    ngx_http_payments_pg_query_t *q, PGresult *res);


/* pay_inbox_homeless's columns, pay_event_keep's parameters in order */
#define NGX_HTTP_PAYMENTS_HOMELESS_FIELDS  14

typedef struct {
    char                           *f[NGX_HTTP_PAYMENTS_HOMELESS_FIELDS];
    char                            merchant[PAY_MERCHANT_ID_MAX + 1];
                                                /* its nonce's, or "" */
} ngx_http_payments_homeless_t;


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

            /* not "refers to nothing": applying it raised, at every round */
            if (ngx_strcmp(PQgetvalue(res, i, 5), "apply_failed") == 0) {
                ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                              "payments: sweeper: kept event \"%s\" (%s, %s) "
                              "of psp \"%s\" could not be applied here in "
                              "%s s (PostgreSQL's log has each try's error: "
                              "\"pay_inbox_retry: event %s ...\"): unmatched",
                              PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                              PQgetvalue(res, i, 3), name,
                              PQgetvalue(res, i, 8), PQgetvalue(res, i, 1));
                continue;
            }

            ngx_log_error(NGX_LOG_ALERT, sw->log, 0,
                          "payments: sweeper: kept event \"%s\" (%s, %s) of "
                          "psp \"%s\" still refers to nothing here after "
                          "%s s: unmatched (%s)",
                          PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                          PQgetvalue(res, i, 3), name, PQgetvalue(res, i, 8),
                          PQgetvalue(res, i, 5));
        }
    }

    ngx_http_payments_sweep_homeless(sw);
}


/* with several shards: the events this shard keeps without an owner
 * here.  The home keeps them; any other shard holds some only if it was
 * the home when they came, and forwards them all the same (none is left
 * to end unmatched because the home flag moved) */

static void
ngx_http_payments_sweep_homeless(ngx_http_payments_sweeper_t *sw)
{
    if (sw->shard_conf == NULL) {
        ngx_http_payments_sweep_step_done(sw);
        return;
    }

    sw->params[0] = ngx_http_payments_num(sw->pool,
                                          sw->pmcf->sweeper.unmatched);
    sw->params[1] = ngx_http_payments_num(sw->pool, sw->pmcf->sweeper.retry);
    sw->params[2] = NGX_HTTP_PAYMENTS_INBOX_BATCH;

    if (sw->params[0] == NULL || sw->params[1] == NULL
        || ngx_http_payments_sweep_query(sw,
                                         "SELECT psp, event_id, kind, type, "
                                         "token, reference, amount, "
                                         "currency, payment_ref, "
                                         "object_ref, tokens, body, "
                                         "headers, key_id "
                                         "FROM pay_inbox_homeless($1, $2, "
                                         "$3)",
                                         3,
                                         ngx_http_payments_sweep_homeless_read)
           != NGX_OK)
    {
        ngx_http_payments_sweep_end(sw);
    }
}


static void
ngx_http_payments_sweep_homeless_read(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                            i, n, k;
    ngx_http_payments_homeless_t  *h;
    ngx_http_payments_sweeper_t   *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_inbox_homeless") != NGX_OK
        || PQnfields(res) != NGX_HTTP_PAYMENTS_HOMELESS_FIELDS
        || (n = PQntuples(res)) == 0)
    {
        ngx_http_payments_sweep_step_done(sw);
        return;
    }

    sw->homeless = ngx_array_create(sw->pool, n,
                                    sizeof(ngx_http_payments_homeless_t));
    if (sw->homeless == NULL) {
        ngx_http_payments_sweep_end(sw);
        return;
    }

    for (i = 0; i < n; i++) {
        h = ngx_array_push(sw->homeless);
        if (h == NULL) {
            ngx_http_payments_sweep_end(sw);
            return;
        }

        for (k = 0; k < NGX_HTTP_PAYMENTS_HOMELESS_FIELDS; k++) {
            h->f[k] = NULL;

            if (PQgetisnull(res, i, k)) {
                continue;
            }

            h->f[k] = ngx_http_payments_strdup(sw->pool,
                                               PQgetvalue(res, i, k));
            if (h->f[k] == NULL) {
                ngx_http_payments_sweep_end(sw);
                return;
            }
        }

        /* a nonce of a merchant on another shard: that shard owns it */
        (void) pay_nonce_merchant(h->f[5] ? h->f[5] : "", h->merchant);
    }

    sw->homeless_current = 0;
    ngx_http_payments_sweep_forward_next(sw);
}


/* the next event: located on every other shard, one after the other */

static void
ngx_http_payments_sweep_forward_next(ngx_http_payments_sweeper_t *sw)
{
    if (sw->homeless == NULL || sw->homeless_current >= sw->homeless->nelts)
    {
        sw->homeless = NULL;
        ngx_http_payments_sweep_step_done(sw);
        return;
    }

    sw->locate_shard = 0;
    sw->owner_shard = NGX_HTTP_PAYMENTS_SHARD_NONE;
    sw->owners = 0;
    sw->unanswered = 0;

    ngx_http_payments_sweep_forward_locate(sw);
}


static void
ngx_http_payments_sweep_forward_locate(ngx_http_payments_sweeper_t *sw)
{
    ngx_uint_t                     level;
    ngx_http_payments_shard_t     *shard;
    ngx_http_payments_homeless_t  *h;

    h = (ngx_http_payments_homeless_t *) sw->homeless->elts
        + sw->homeless_current;
    shard = sw->pmcf->shards->elts;

    for ( ;; ) {
        if (sw->locate_shard == sw->shard) {
            sw->locate_shard++;
            continue;
        }

        if (sw->locate_shard >= sw->pmcf->shards->nelts) {
            break;
        }

        /* psp, token, tokens, payment_ref, object_ref; its nonce's
         * merchant */
        sw->params[0] = h->f[0];
        sw->params[1] = h->f[4];
        sw->params[2] = h->f[10];
        sw->params[3] = h->f[8];
        sw->params[4] = h->f[9];
        sw->params[5] = h->merchant[0] ? h->merchant : NULL;

        if (ngx_http_payments_sweep_query_on(sw, sw->locate_shard,
                "SELECT merchant_id FROM pay_event_locate($1, $2, $3, $4, "
                "$5) UNION ALL SELECT $6::text WHERE pay_merchant_here($6) "
                "IS NOT NULL", 6, ngx_http_payments_sweep_forward_located)
            == NGX_OK)
        {
            return;
        }

        /* that shard is down: it may be the owner, the event waits */
        sw->unanswered++;
        sw->locate_shard++;
    }

    if (sw->owners != 1 || sw->unanswered) {

        if (sw->unanswered) {
            /* a shard that did not answer may own it: noted here, so that
             * it waits pending, never unmatched, until that shard answers
             * (pay_inbox_retry leaves it, pay_inbox_homeless takes it) */
            sw->params[0] = h->f[0];
            sw->params[1] = h->f[1];

            if (ngx_http_payments_sweep_query(sw,
                                    "SELECT pay_inbox_waiting($1, $2)", 2,
                                    ngx_http_payments_sweep_forward_waiting)
                == NGX_OK)
            {
                return;
            }
        }

        level = (sw->owners > 1) ? NGX_LOG_ALERT : NGX_LOG_INFO;

        ngx_log_error(level, sw->log, 0,
                      "payments: sweeper: kept event \"%s\" of psp \"%s\" "
                      "not forwarded: %ui shard(s) own it, %ui did not "
                      "answer; it waits on shard \"%V\"",
                      h->f[1], h->f[0], sw->owners, sw->unanswered,
                      &shard[sw->shard].name);

        sw->homeless_current++;
        ngx_http_payments_sweep_forward_next(sw);
        return;
    }

    /* pay_event_keep on the owner: the event kept and applied there */
    ngx_memcpy(sw->params, h->f, sizeof(h->f));

    if (ngx_http_payments_sweep_query_on(sw, sw->owner_shard,
            "SELECT outcome, merchant_id, checkout_id, state "
            "FROM pay_event_keep($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
            "$11, $12, $13, $14)", 14, ngx_http_payments_sweep_forward_kept)
        != NGX_OK)
    {
        sw->homeless_current++;
        ngx_http_payments_sweep_forward_next(sw);
    }
}


static void
ngx_http_payments_sweep_forward_located(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_event_locate") != NGX_OK) {
        sw->unanswered++;

    } else if (PQntuples(res) > 0) {
        sw->owners++;
        sw->owner_shard = sw->locate_shard;
    }

    sw->locate_shard++;
    ngx_http_payments_sweep_forward_locate(sw);
}


/* noted waiting for the shard(s) that did not answer: a warning once it
 * is older than unmatched= (it would have been unmatched), else info */
static void
ngx_http_payments_sweep_forward_waiting(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    char                          *age;
    ngx_int_t                      secs;
    ngx_uint_t                     level;
    ngx_http_payments_shard_t     *shard;
    ngx_http_payments_homeless_t  *h;
    ngx_http_payments_sweeper_t   *sw = q->data;

    h = (ngx_http_payments_homeless_t *) sw->homeless->elts
        + sw->homeless_current;
    shard = sw->pmcf->shards->elts;

    age = "?";
    level = (sw->owners > 1) ? NGX_LOG_ALERT : NGX_LOG_INFO;

    /* logged when it failed; the next try notes it again */
    if (ngx_http_payments_sweep_ok(sw, res, "pay_inbox_waiting") == NGX_OK
        && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
    {
        age = PQgetvalue(res, 0, 0);
        secs = ngx_atoi((u_char *) age, ngx_strlen(age));

        if (level == NGX_LOG_INFO && secs != NGX_ERROR
            && secs >= (ngx_int_t) sw->pmcf->sweeper.unmatched)
        {
            level = NGX_LOG_WARN;
        }
    }

    ngx_log_error(level, sw->log, 0,
                  "payments: sweeper: kept event \"%s\" of psp \"%s\" "
                  "not forwarded: %ui shard(s) own it, %ui did not answer; "
                  "it waits on shard \"%V\" for them, %s s after it came",
                  h->f[1], h->f[0], sw->owners, sw->unanswered,
                  &shard[sw->shard].name, age);

    sw->homeless_current++;
    ngx_http_payments_sweep_forward_next(sw);
}


static void
ngx_http_payments_sweep_forward_kept(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_shard_t     *shard;
    ngx_http_payments_homeless_t  *h;
    ngx_http_payments_sweeper_t   *sw = q->data;

    h = (ngx_http_payments_homeless_t *) sw->homeless->elts
        + sw->homeless_current;
    shard = sw->pmcf->shards->elts;

    if (ngx_http_payments_sweep_ok(sw, res, "pay_event_keep") != NGX_OK
        || PQntuples(res) != 1)
    {
        /* not kept there (or not known to be): it waits here */
        sw->homeless_current++;
        ngx_http_payments_sweep_forward_next(sw);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, sw->log, 0,
                  "payments: sweeper: kept event \"%s\" of psp \"%s\" "
                  "forwarded to shard \"%V\": %s, %s",
                  h->f[1], h->f[0], &shard[sw->owner_shard].name,
                  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 3));

    /* then marked forwarded here: a later round never sends it again */
    sw->params[0] = h->f[0];
    sw->params[1] = h->f[1];
    sw->params[2] = (char *) ngx_http_payments_cstr(sw->pool,
                                                    &shard[sw->owner_shard]
                                                    .name);

    if (sw->params[2] == NULL
        || ngx_http_payments_sweep_query(sw,
                               "SELECT pay_inbox_forwarded($1, $2, $3)", 3,
                               ngx_http_payments_sweep_forward_marked)
           != NGX_OK)
    {
        sw->homeless_current++;
        ngx_http_payments_sweep_forward_next(sw);
    }
}


static void
ngx_http_payments_sweep_forward_marked(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_sweeper_t  *sw = q->data;

    /* logged when it failed: the owner's copy answers "duplicate" to the
     * next try */
    (void) ngx_http_payments_sweep_ok(sw, res, "pay_inbox_forwarded");

    sw->homeless_current++;
    ngx_http_payments_sweep_forward_next(sw);
}
