/*
 * A gateway PostgreSQL will not let in: nginx starts (the database is not
 * needed to check the configuration), /readyz answers 503 store_unavailable
 * and says the likely cause, and the error log says it beside libpq's own
 * message.  The cause is read from PostgreSQL's message (src/pghint.c);
 * this suite's server is reached over TCP, so the role that does not exist
 * stands for the other refusals (peer, password, pg_hba.conf), which the
 * unit tests cover.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static gateway_t  nologin;

static void
stop_nologin(void)
{
    gateway_stop(&nologin);
}

TestSuite(db_login, .timeout = E2E_TIMEOUT, .fini = stop_nologin);


Test(db_login, readyz_and_the_log_name_a_role_that_does_not_exist)
{
    int          i;
    resp_t      *r;
    const char  *detail;

    gateway_start(&nologin, "nologin", 1, str_printf(
        "payments_database \"hostaddr=127.0.0.1 port=%ld dbname=payments "
        "user=no_such_role_%s connect_timeout=2\";\n"
        "payments_sweeper off;\n%s",
        pg_port(), uid("r"), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    r = NULL;
    detail = NULL;

    for (i = 0; i < 50; i++) {
        r = gateway_get(&nologin, "/readyz");
        cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
        detail = json_string_value(json_object_get(resp_json(r), "detail"));
        if (detail != NULL && strstr(detail, "likely cause") != NULL) {
            break;
        }
        usleep(100 * 1000);
    }

    expect_problem(r, 503, "store_unavailable");
    cr_assert(detail != NULL && strstr(detail, "role does not exist") != NULL,
              "%s", r->body);
    cr_assert_not_null(resp_header(r, "Retry-After"));
    /* names nothing of the configuration */
    cr_assert_null(strstr(r->body, "no_such_role"), "%s", r->body);

    /* asked by its shard's name ("default": payments_database's), the
     * same cause, after the shard's name */
    r = gateway_get(&nologin, "/readyz?shard=default");
    expect_problem(r, 503, "store_unavailable");
    detail = json_string_value(json_object_get(resp_json(r), "detail"));
    cr_assert(detail != NULL
              && strstr(detail, "shard default: PostgreSQL refuses the "
                        "gateway's login; likely cause: the database role "
                        "does not exist") == detail, "%s", r->body);
    cr_assert_not_null(resp_header(r, "Retry-After"));
    cr_assert_null(strstr(r->body, "no_such_role"), "%s", r->body);

    cr_assert(file_contains(nologin.error_log, "does not exist, retrying in"),
              "no connection error in %s", nologin.error_log);
    cr_assert(file_contains(nologin.error_log, "likely cause: the database "
                            "role does not exist"), "no hint in %s",
              nologin.error_log);
}


/*
 * libpq looks the OS user's name (no user= in the string) and home
 * directory (nginx clears HOME in a worker: ~/.pgpass, and ~/.postgresql
 * when TLS is negotiated) up in the system's user database at every
 * connection it starts: nscd's socket, /etc/nsswitch.conf, /etc/passwd,
 * or a directory server, on the reconnect timer's path.  The worker
 * looks them up once when it starts (ngx_http_payments_conninfo_worker)
 * and a connection looks nothing up.  The string is a URI without a
 * user: its words still count (the worker adds its own after it), and
 * the role libpq would have picked is still the worker's user, and the
 * pass file its home's.  strace on the worker watches its reconnects.
 */
Test(db_login, a_connection_looks_nothing_up_in_the_user_database)
{
    int             i, connects, lookups;
    long            worker;
    char           *port, *trace, *text, *line, *next, *uid_line, *pgpass;
    pid_t           tracer;
    uid_t           uid;
    struct passwd  *pw;

    gateway_start(&nologin, "nouser", 1, str_printf(
        "payments_database \"postgresql://127.0.0.1:%ld/payments"
        "?hostaddr=127.0.0.1&connect_timeout=2\";\n"
        "payments_sweeper off;\n%s",
        pg_port(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    worker = gateway_worker(&nologin);

    /*
     * pgrep finds the worker as soon as it is forked, before it has
     * become its user (started by root, it reads /etc/group to become
     * nobody) and looked that user up once: its uid and strace are read
     * and attached after that.  A CI run attached while it was still
     * starting (the test failed in 0.8 s).  It has started once it has
     * tried PostgreSQL and logged the refusal.
     */
    for (i = 0;
         i < 100 && !file_contains(nologin.error_log,
                                   "does not exist, retrying in");
         i++)
    {
        msleep(100);
    }
    cr_assert(file_contains(nologin.error_log, "does not exist, retrying in"),
              "no refused login in 10 s:\n%s",
              file_read(nologin.error_log, NULL));

    /* the worker's user, as libpq would have named it */
    text = file_read(str_printf("/proc/%ld/status", worker), NULL);
    cr_assert_not_null(text);
    uid_line = strstr(text, "\nUid:");
    cr_assert_not_null(uid_line, "%s", text);
    uid = (uid_t) strtol(uid_line + sizeof("\nUid:") - 1, NULL, 10);
    pw = getpwuid(uid);
    cr_assert_not_null(pw, "no user of uid %ld", (long) uid);
    pgpass = str_printf("\"%s/.pgpass\"", pw->pw_dir);

    cr_assert(file_contains(nologin.error_log,
                            str_printf("role \"%s\" does not exist",
                                       pw->pw_name)),
              "%s", file_read(nologin.error_log, NULL));

    trace = run_file(str_printf("nouser-strace-%ld", (long) getpid()));
    tracer = worker_trace_start(worker, "trace=open,openat,connect,stat,"
                                "newfstatat", trace);

    /*
     * The pool tries again after 250 ms, 500 ms, 1 s, 2 s, 4 s, then every
     * 5 s: a fixed window met no attempt when the worker had been up a
     * while before strace attached (a loaded CI machine).  libpq looks for
     * the pass file as it starts a connection, before the connect():
     * watch until both are traced (strace may attach between the two of
     * one attempt), at most three of the longest waits.
     */
    port = str_printf("htons(%ld)", pg_port());
    for (i = 0;
         i < 150 && !(file_contains(trace, port)
                      && file_contains(trace, pgpass));
         i++)
    {
        msleep(100);
    }
    msleep(300);
    text = worker_trace_stop(tracer, trace);

    connects = 0;
    lookups = 0;

    for (line = text; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }

        if (strstr(line, "connect(")
            && strstr(line, port))
        {
            connects++;
        }

        if (strstr(line, "/etc/passwd") || strstr(line, "/etc/nsswitch")
            || strstr(line, "/etc/group") || strstr(line, "nscd"))
        {
            lookups++;
            cr_log_error("a look-up in the worker: %s", line);
        }
    }

    cr_assert_geq(connects, 1, "no connection to PostgreSQL in 15 s:\n%s",
                  file_read(trace, NULL));
    cr_assert_eq(lookups, 0, "the worker asked the user database %d times "
                 "over %d connections", lookups, connects);
    cr_assert(file_contains(trace, pgpass), "libpq did not look for %s:\n%s",
              pgpass, file_read(trace, NULL));
}


/*
 * A string that names a service leaves its words to libpq's service file,
 * which fills only what the string does not say: the worker adds nothing
 * to it (a user= of the worker's own would win over the file's).  The
 * file (PGSERVICEFILE, kept for the workers by "env") names the gateway's
 * role; the gateway connects as it.
 */
Test(db_login, a_service_files_words_stay_its_own)
{
    char  *svc;
    FILE  *f;

    svc = run_file(str_printf("pg_service-%ld.conf", (long) getpid()));
    f = fopen(svc, "w");
    cr_assert_not_null(f, "%s", svc);
    fputs("[gw]\nuser=payments_gateway\n", f);
    fclose(f);
    cr_assert_eq(chmod(svc, 0644), 0, "%s", svc);

    gateway_start_env(&nologin, "service", 1, str_printf(
        "payments_database \"service=gw hostaddr=127.0.0.1 port=%ld "
        "dbname=payments\";\n"
        "payments_sweeper off;\n%s",
        pg_port(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe")),
        str_printf("PGSERVICEFILE=%s", svc));

    gateway_wait_ready(&nologin, 10);
}
