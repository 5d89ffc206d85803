/*
 * Unit tests: the likely cause of a refused PostgreSQL login (src/pghint.c),
 * from the messages PostgreSQL 15 and libpq give.
 */

#include <string.h>
#include <criterion/criterion.h>
#include <payments/pghint.h>


Test(pghint, peer_authentication_points_at_the_system_user)
{
    const char  *m = "connection to server on socket \"/run/postgresql/.s.PGSQL"
                     ".5432\" failed: FATAL:  Peer authentication failed for "
                     "user \"payments_gateway\"";

    cr_assert_eq(pay_pg_connect_hint(m), PAY_PG_HINT_PEER);
    cr_assert(strstr(pay_pg_hint_text(PAY_PG_HINT_PEER), "pg_ident.conf"));
}


Test(pghint, a_missing_or_wrong_password_points_at_the_password_file)
{
    cr_assert_eq(pay_pg_connect_hint("connection to server at \"127.0.0.1\", "
                 "port 5432 failed: fe_sendauth: no password supplied"),
                 PAY_PG_HINT_PASSWORD);
    cr_assert_eq(pay_pg_connect_hint("FATAL:  password authentication failed "
                 "for user \"payments_gateway\""), PAY_PG_HINT_PASSWORD);
}


Test(pghint, no_hba_line_and_a_rejecting_line_point_at_pg_hba)
{
    cr_assert_eq(pay_pg_connect_hint("FATAL:  no pg_hba.conf entry for host "
                 "\"10.0.0.5\", user \"payments_gateway\", database "
                 "\"payments\", no encryption"), PAY_PG_HINT_HBA);
    cr_assert_eq(pay_pg_connect_hint("FATAL:  pg_hba.conf rejects connection "
                 "for host \"10.0.0.5\""), PAY_PG_HINT_HBA);
}


Test(pghint, a_missing_role_or_database_is_named_as_such)
{
    cr_assert_eq(pay_pg_connect_hint("FATAL:  role \"payments-reconcile\" "
                 "does not exist"), PAY_PG_HINT_ROLE);
    cr_assert_eq(pay_pg_connect_hint("FATAL:  database \"payments\" does not "
                 "exist"), PAY_PG_HINT_DATABASE);
    /* a role named in another message is no missing role */
    cr_assert_eq(pay_pg_connect_hint("FATAL:  role \"x\" is not permitted to "
                 "log in"), PAY_PG_HINT_NONE);
}


Test(pghint, nothing_listening_is_an_unreachable_server)
{
    cr_assert_eq(pay_pg_connect_hint("connection to server at \"127.0.0.1\", "
                 "port 1 failed: Connection refused\n\tIs the server running "
                 "on that host and accepting TCP/IP connections?"),
                 PAY_PG_HINT_UNREACHABLE);
}


Test(pghint, an_unknown_or_translated_message_gets_no_hint)
{
    cr_assert_eq(pay_pg_connect_hint(NULL), PAY_PG_HINT_NONE);
    cr_assert_eq(pay_pg_connect_hint(""), PAY_PG_HINT_NONE);
    cr_assert_eq(pay_pg_connect_hint("FATAL:  la authentification peer a "
                 "échoué pour l'utilisateur"), PAY_PG_HINT_NONE);
    cr_assert_null(pay_pg_hint_text(PAY_PG_HINT_NONE));
    cr_assert_null(pay_pg_hint_text(PAY_PG_HINT__MAX));
}


Test(pghint, no_hint_names_a_role_a_host_or_a_secret)
{
    int          h;
    const char  *t;

    for (h = PAY_PG_HINT_NONE + 1; h < PAY_PG_HINT__MAX; h++) {
        t = pay_pg_hint_text((pay_pg_hint_e) h);
        cr_assert_not_null(t, "hint %d has no text", h);
        cr_assert_null(strchr(t, '"'), "hint %d quotes something: %s", h, t);
        cr_assert_null(strstr(t, "password="), "%s", t);
    }
}


Test(pghint, a_read_only_or_going_server_is_left_for_another_connection)
{
    cr_expect_eq(pay_pg_state_reconnects("25006"), 1);
    cr_expect_eq(pay_pg_state_reconnects("57P01"), 1);
    cr_expect_eq(pay_pg_state_reconnects("57P02"), 1);
    cr_expect_eq(pay_pg_state_reconnects("57P03"), 1);

    /* the query's own errors: the connection is as good as it was */
    cr_expect_eq(pay_pg_state_reconnects(NULL), 0);
    cr_expect_eq(pay_pg_state_reconnects(""), 0);
    cr_expect_eq(pay_pg_state_reconnects("23505"), 0);
    cr_expect_eq(pay_pg_state_reconnects("40001"), 0);
    cr_expect_eq(pay_pg_state_reconnects("57014"), 0);     /* cancelled */
    cr_expect_eq(pay_pg_state_reconnects("25P02"), 0);
    cr_expect_eq(pay_pg_state_reconnects("25006 "), 0);
    cr_expect_eq(pay_pg_state_reconnects("2500"), 0);
}
