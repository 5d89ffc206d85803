/*
 * ngx_payments core: the likely cause of a refused PostgreSQL login
 * (include/payments/pghint.h).
 */
#include <stddef.h>
#include <string.h>

#include "payments/pghint.h"

/* Phrases of PostgreSQL's server (auth.c, postinit.c) and of libpq, in the
 * order they are tried: the first match wins. */
static const struct {
    const char     *phrase;
    pay_pg_hint_e   hint;
} pay_pg_phrases[] = {
    { "Peer authentication failed",      PAY_PG_HINT_PEER },
    { "Ident authentication failed",     PAY_PG_HINT_PEER },
    { "password authentication failed", PAY_PG_HINT_PASSWORD },
    { "no password supplied",            PAY_PG_HINT_PASSWORD },
    { "no pg_hba.conf entry",            PAY_PG_HINT_HBA },
    { "pg_hba.conf rejects connection",  PAY_PG_HINT_HBA },
    { "role \"",                         PAY_PG_HINT_ROLE },
    { "database \"",                     PAY_PG_HINT_DATABASE },
    { "Connection refused",              PAY_PG_HINT_UNREACHABLE },
    { "No such file or directory",       PAY_PG_HINT_UNREACHABLE },
};

static const char  *pay_pg_hints[PAY_PG_HINT__MAX] = {
    [PAY_PG_HINT_PEER] =
        "PostgreSQL checks the login by peer authentication and the nginx "
        "worker's system user is not the database role: map it in "
        "pg_ident.conf, or connect over TCP with a password file "
        "(doc/OPERATIONS.md, the install checklist)",
    [PAY_PG_HINT_PASSWORD] =
        "the role's password is missing or wrong: give the nginx worker's "
        "user a password file (passfile= in payments_database) with the "
        "role's password",
    [PAY_PG_HINT_HBA] =
        "pg_hba.conf has no line that lets this role log into this database "
        "from this host",
    [PAY_PG_HINT_ROLE] =
        "the database role does not exist: create it (payments-migrate "
        "creates payments_gateway), or name the right one in "
        "payments_database",
    [PAY_PG_HINT_DATABASE] =
        "the database does not exist: create it and run payments-migrate",
    [PAY_PG_HINT_UNREACHABLE] =
        "nothing listens at the address in payments_database: is "
        "PostgreSQL running, on that host, port or socket directory?",
};


pay_pg_hint_e
pay_pg_connect_hint(const char *message)
{
    size_t  i;

    if (message == NULL) {
        return PAY_PG_HINT_NONE;
    }

    for (i = 0; i < sizeof(pay_pg_phrases) / sizeof(pay_pg_phrases[0]); i++) {
        if (strstr(message, pay_pg_phrases[i].phrase) != NULL) {
            /* "role" and "database" only with "does not exist" */
            if ((pay_pg_phrases[i].hint == PAY_PG_HINT_ROLE
                 || pay_pg_phrases[i].hint == PAY_PG_HINT_DATABASE)
                && strstr(message, "does not exist") == NULL)
            {
                continue;
            }

            return pay_pg_phrases[i].hint;
        }
    }

    return PAY_PG_HINT_NONE;
}


const char *
pay_pg_hint_text(pay_pg_hint_e hint)
{
    if ((int) hint <= PAY_PG_HINT_NONE || hint >= PAY_PG_HINT__MAX) {
        return NULL;
    }

    return pay_pg_hints[hint];
}


int
pay_pg_state_reconnects(const char *sqlstate)
{
    if (sqlstate == NULL) {
        return 0;
    }

    return strcmp(sqlstate, "25006") == 0
           || strcmp(sqlstate, "57P01") == 0
           || strcmp(sqlstate, "57P02") == 0
           || strcmp(sqlstate, "57P03") == 0;
}
