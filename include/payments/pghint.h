/*
 * ngx_payments core: what an operator should look at when PostgreSQL refuses
 * the gateway's connection.  libpq gives a connection failure as text only
 * (no SQLSTATE before a session exists), so the hint is read from the
 * message's well-known phrases; a message in another language, or one not
 * recognised, gets no hint and the message stands alone.  And which
 * answers on an open connection say that its server will take none of the
 * gateway's work on it any more.  No I/O, no nginx.
 */
#ifndef PAYMENTS_PGHINT_H
#define PAYMENTS_PGHINT_H

typedef enum {
    PAY_PG_HINT_NONE = 0,
    PAY_PG_HINT_PEER,           /* peer authentication: OS user != role */
    PAY_PG_HINT_PASSWORD,       /* no password, or the wrong one */
    PAY_PG_HINT_HBA,            /* no pg_hba.conf line for this login */
    PAY_PG_HINT_ROLE,           /* the role does not exist */
    PAY_PG_HINT_DATABASE,       /* the database does not exist */
    PAY_PG_HINT_UNREACHABLE,    /* nothing listens there */
    PAY_PG_HINT__MAX
} pay_pg_hint_e;

/*
 * The hint for a libpq connection error message (borrowed, NUL-terminated,
 * NULL allowed: PAY_PG_HINT_NONE).
 */
pay_pg_hint_e pay_pg_connect_hint(const char *message);

/*
 * What to do, one sentence naming no role, host or file of the
 * configuration: safe for /readyz's answer and for logs.  NULL for
 * PAY_PG_HINT_NONE and out-of-range values.  Static storage.
 */
const char *pay_pg_hint_text(pay_pg_hint_e hint);

/*
 * 1 when an answer's SQLSTATE (borrowed, NULL allowed: 0) says that the
 * connection's server takes no more of the gateway's work, so that the
 * connection is better opened again (libpq's target_session_attrs then
 * chooses a server): 25006 read_only_sql_transaction (a standby, or
 * default_transaction_read_only: nothing was written), 57P01
 * admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now.  Any
 * other error is the query's own and leaves its connection as it was.
 * Told by the code alone, never by the message (lc_messages' language).
 */
int pay_pg_state_reconnects(const char *sqlstate);

#endif /* PAYMENTS_PGHINT_H */
