/*
 * ngx_payments core: what an operator should look at when PostgreSQL refuses
 * the gateway's connection.  libpq gives a connection failure as text only
 * (no SQLSTATE before a session exists), so the hint is read from the
 * message's well-known phrases; a message in another language, or one not
 * recognised, gets no hint and the message stands alone.  No I/O, no nginx.
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

#endif /* PAYMENTS_PGHINT_H */
