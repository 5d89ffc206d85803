
/*
 * Copyright (C) ngx_payments authors
 *
 * How the PostgreSQL pool (_pg.c) sends a query: a layer below the
 * driver, which hands it a connection and its query and is told whether
 * libpq took it; this file calls no other glue file.
 *
 * Prepared statements.  The first time a connection runs a statement it
 * prepares it (PQsendPrepare, one extra round trip), then executes it by
 * name from then on: PostgreSQL parses and plans it once per connection,
 * not on every call.  The name is a hash of the SQL text ("ngxp_" and 16 hex
 * digits), so one name always means one text, in every worker and every
 * version of the module: behind a PgBouncer in transaction pooling, where
 * a name may reach a server connection prepared by another client, it is
 * the same statement.  A statement the server does not have (SQLSTATE
 * 26000: PgBouncer sent it elsewhere, or someone ran DEALLOCATE) and a plan
 * whose result type changed under it (a migration replaced a function:
 * 0A000, "cached plan must not change result type") are refused before
 * anything runs: the query is sent again unnamed, and that connection
 * sends unnamed statements until it is opened again.  Both are told by
 * their SQLSTATE alone, never by the message, which is in the server's
 * lc_messages language.  Another 0A000 of a statement sent by name (a
 * feature the statement itself uses) fails as well sent unnamed: it costs
 * one round trip and that connection's prepared statements, and the caller
 * gets the unnamed statement's own error.  A
 * statement that fails to prepare (a function a migration has not created
 * yet) is sent unnamed that once, for its own error, and prepared again the
 * next time.
 *
 * Plans kept too long.  PostgreSQL keeps a connection's plans: a prepared
 * statement's generic plan, and the plans of the statements inside the
 * PL/pgSQL functions and of the foreign keys' checks, until an ANALYZE or
 * a schema change invalidates them.  A plan made while a table was small
 * (a new database, analysed while it held a few rows) reads the table
 * whole, and a connection that keeps it reads more at every call as the
 * table grows, until autovacuum's next ANALYZE.  So once a connection's
 * plans are payments_database_replan old (1m by default), its next query
 * is preceded by DISCARD PLANS (one round trip): the prepared statements
 * stay, and each is planned again, on the tables as they are, at its next
 * call.  A DISCARD PLANS that fails is logged and not tried again for an
 * interval; the query goes on.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_pg_int.h"


/* FNV-1a, 64 bits: a statement's name, never 0 */

static uint64_t
ngx_http_payments_pg_statement_hash(const char *sql)
{
    uint64_t  h = 0xcbf29ce484222325ULL;

    while (*sql) {
        h ^= (u_char) *sql++;
        h *= 0x100000001b3ULL;
    }

    return h ? h : 1;
}


static ngx_uint_t ngx_http_payments_pg_prepare_end(
    ngx_http_payments_pg_conn_t *pc);
static void ngx_http_payments_pg_replan_end(ngx_http_payments_pg_conn_t *pc);


/*
 * Send pc->query, a new one: DISCARD PLANS first when this connection's
 * plans are pool->replan old (pc->query follows when it is answered).
 */

ngx_int_t
ngx_http_payments_pg_begin(ngx_http_payments_pg_conn_t *pc)
{
    if ((ngx_msec_int_t) (ngx_current_msec - pc->planned)
        < (ngx_msec_int_t) pc->pool->replan)
    {
        return ngx_http_payments_pg_execute(pc, 0);
    }

    pc->by_name = 0;
    pc->replanning = 1;

    return PQsendQuery(pc->pg, "DISCARD PLANS") ? NGX_OK : NGX_ERROR;
}


/*
 * Send pc->query: by name when prepared on this connection, else prepare it
 * first (the query is sent again when the statement is there); unnamed when
 * asked to, or when the connection no longer prepares.
 */

ngx_int_t
ngx_http_payments_pg_execute(ngx_http_payments_pg_conn_t *pc,
    ngx_uint_t unnamed)
{
    int                            sent;
    char                           name[24];
    uint64_t                       h;
    ngx_uint_t                     i;
    ngx_http_payments_pg_query_t  *q = pc->query;

    pc->by_name = 0;
    h = 0;

    if (!pc->unnamed && !unnamed) {
        h = ngx_http_payments_pg_statement_hash(q->sql);

        for (i = 0; i < pc->nprepared; i++) {
            if (pc->prepared[i] == h) {
                pc->by_name = 1;
                break;
            }
        }

        if (!pc->by_name && pc->nprepared == NGX_HTTP_PAYMENTS_PG_STATEMENTS) {
            h = 0;
        }
    }

    if (h == 0) {
        sent = PQsendQueryParams(pc->pg, q->sql, q->nparams, NULL, q->values,
                                 NULL, NULL, 0);

    } else {
        ngx_sprintf((u_char *) name, "ngxp_%016xL%Z", h);

        if (pc->by_name) {
            sent = PQsendQueryPrepared(pc->pg, name, q->nparams, q->values,
                                       NULL, NULL, 0);

        } else {
            pc->preparing = h;
            sent = PQsendPrepare(pc->pg, name, q->sql, q->nparams, NULL);
        }
    }

    return sent ? NGX_OK : NGX_ERROR;
}


/*
 * pc->result has come for what was sent before the query (DISCARD PLANS, a
 * prepare), or for a statement sent by name.  NGX_AGAIN: the query was
 * sent (again) (pc->result is consumed; the driver flushes it); NGX_OK:
 * the result is the query's answer; NGX_ERROR: libpq refused to send it
 * (the driver fails the connection).
 */

ngx_int_t
ngx_http_payments_pg_sent_done(ngx_http_payments_pg_conn_t *pc)
{
    ngx_uint_t                    unnamed = 0;
    const char                   *state;
    ExecStatusType                st;
    ngx_http_payments_pg_pool_t  *pool = pc->pool;

    st = pc->result ? PQresultStatus(pc->result) : PGRES_FATAL_ERROR;
    state = pc->result ? PQresultErrorField(pc->result, PG_DIAG_SQLSTATE)
                       : NULL;

    if (pc->replanning) {
        ngx_http_payments_pg_replan_end(pc);

    } else if (pc->preparing) {
        /*
         * Not prepared: e.g. a function that a migration has not created
         * yet; the statement is sent unnamed this once, for its own error
         * (and prepared again next time)
         */
        unnamed = !ngx_http_payments_pg_prepare_end(pc);

    } else if (pc->by_name && st == PGRES_FATAL_ERROR && state
               && (ngx_strcmp(state, "26000") == 0
                   || ngx_strcmp(state, "0A000") == 0))
    {
        /* refused before anything ran: send it again, unnamed */
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "payments: database connection %ui: a prepared "
                      "statement was refused (%s: %s): sending its "
                      "statements unnamed until it reconnects", pc->index,
                      state, state[0] == '2'
                             ? "not there; a PgBouncer in transaction pooling "
                               "sent it to another server connection"
                             : "a migration changed a function's result type");
        pc->unnamed = 1;
        pc->nprepared = 0;

    } else {
        return NGX_OK;
    }

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    if (ngx_http_payments_pg_execute(pc, unnamed) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/*
 * The answer has come to what was sent before a query whose request has
 * gone: a statement prepared is there, plans discarded are gone, as for
 * any query.
 */

void
ngx_http_payments_pg_sent_dropped(ngx_http_payments_pg_conn_t *pc)
{
    if (pc->replanning) {
        ngx_http_payments_pg_replan_end(pc);

    } else if (pc->preparing) {
        (void) ngx_http_payments_pg_prepare_end(pc);
    }
}


/*
 * The answer to DISCARD PLANS (pc->result) has come: the connection's
 * plans are new from now on.  A failure is logged; it is not tried again
 * before another interval.
 */

static void
ngx_http_payments_pg_replan_end(ngx_http_payments_pg_conn_t *pc)
{
    const char  *state;

    pc->replanning = 0;
    pc->planned = ngx_current_msec;

    if (pc->result != NULL
        && PQresultStatus(pc->result) == PGRES_COMMAND_OK)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->pool->log, 0,
                       "payments: database connection %ui: plans discarded",
                       pc->index);
        return;
    }

    state = pc->result ? PQresultErrorField(pc->result, PG_DIAG_SQLSTATE)
                       : NULL;

    ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                  "payments: database connection %ui: DISCARD PLANS failed "
                  "(%s): its plans are kept for another %Mms", pc->index,
                  state ? state : "no answer", pc->pool->replan);
}


/*
 * The answer to a prepare (pc->result) has come: the statement is noted as
 * this connection's when the server has it (42P05: there already, under
 * this name, so the same text).  1 when it has it.
 */

static ngx_uint_t
ngx_http_payments_pg_prepare_end(ngx_http_payments_pg_conn_t *pc)
{
    ngx_uint_t   ok;
    const char  *state;

    state = pc->result ? PQresultErrorField(pc->result, PG_DIAG_SQLSTATE)
                       : NULL;
    ok = pc->result != NULL
         && (PQresultStatus(pc->result) == PGRES_COMMAND_OK
             || (state && ngx_strcmp(state, "42P05") == 0));

    if (ok) {
        pc->prepared[pc->nprepared++] = pc->preparing;
    }

    pc->preparing = 0;

    return ok;
}
