/*
 * End to end: the gateway through PgBouncer in transaction pooling mode
 * (issue 9, part 4).  Every query the gateway sends is one statement and
 * one transaction (no session state: the sweeper's payments.event_source is
 * transaction-local), so PgBouncer may hand each one to another server
 * connection.  The gateway prepares its statements (issue 14): a prepared
 * statement sent to a server connection that does not have it is refused
 * (26000) before it runs, and the gateway sends it again unnamed (one
 * connection of its pool, unnamed from then on).  The test starts Debian's
 * pgbouncer on a free loopback port in front of the suite's PostgreSQL,
 * with pool_mode = transaction and fewer server connections than the
 * gateway's pool, and a second gateway whose payments_database is
 * PgBouncer; a registration, its webhook and the reads go through it.
 */

#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static gateway_t  bounced;


static void
stop_all(void)
{
    char  *pid;

    gateway_stop(&bounced);

    pid = file_read(run_file(str_printf("pgbouncer-%ld/pgbouncer.pid",
                                        (long) getpid())), NULL);
    if (pid) {
        kill((pid_t) strtol(pid, NULL, 10), SIGTERM);
    }
}


/* Starts pgbouncer in front of the suite's PostgreSQL; its port. */

static long
start_bouncer(void)
{
    int     i, rc;
    long    port;
    char   *dir, *ini;
    FILE   *f;
    const char  *run = env("PAY_TEST_RUN");

    port = free_port();
    dir = run_file(str_printf("pgbouncer-%ld", (long) getpid()));
    cr_assert_eq(mkdir(dir, 0755), 0, "%s", dir);
    cr_assert_eq(chmod(dir, 0777), 0);

    f = fopen(str_printf("%s/userlist.txt", dir), "w");
    cr_assert_not_null(f);
    fputs("\"payments_gateway\" \"\"\n", f);
    fclose(f);

    ini = str_printf(
        "[databases]\n"
        "payments = host=127.0.0.1 port=%ld dbname=payments\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        "listen_port = %ld\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        "auth_file = %s/userlist.txt\n"
        "pool_mode = transaction\n"
        "default_pool_size = 2\n"
        "max_client_conn = 100\n"
        "logfile = %s/logs/pgbouncer.log\n"
        "pidfile = %s/pgbouncer.pid\n",
        pg_port(), port, dir, run, dir);

    f = fopen(str_printf("%s/pgbouncer.ini", dir), "w");
    cr_assert_not_null(f);
    fputs(ini, f);
    fclose(f);

    /* pgbouncer will not run as root: as postgres, like the cluster */
    rc = system(str_printf("touch %s/logs/pgbouncer.log && "
                           "chmod 666 %s/logs/pgbouncer.log && "
                           "if [ \"$(id -u)\" -eq 0 ]; then "
                           "runuser -u postgres -- pgbouncer -d -q %s/pgbouncer.ini; "
                           "else pgbouncer -d -q %s/pgbouncer.ini; fi",
                           run, run, dir, dir));
    cr_assert_eq(rc, 0, "pgbouncer did not start (see %s/logs/pgbouncer.log)",
                 run);

    for (i = 0; i < 50; i++) {
        if (file_read(str_printf("%s/pgbouncer.pid", dir), NULL) != NULL) {
            break;
        }

        msleep(100);
    }

    return port;
}


TestSuite(pgbouncer, .timeout = E2E_TIMEOUT, .fini = stop_all);


Test(pgbouncer, a_payment_goes_through_transaction_pooling)
{
    int          i;
    long         port;
    char        *co_id, *token;
    resp_t      *r, **rs;
    json_t      *j;
    merchant_t   m;

    merchant_new(&m);
    port = start_bouncer();

    /* a pool of 4 connections per worker behind 2 server connections */
    gateway_start(&bounced, "bounced", 2, str_printf(
        "payments_database \"hostaddr=127.0.0.1 port=%ld dbname=payments "
        "user=payments_gateway\";\n"
        "payments_database_pool 4;\n"
        "payments_sweeper off;\n%s",
        port, gw_psp_conf(env("PAY_TEST_PSP"), "stripe")));

    gateway_wait_ready(&bounced, 10);

    /* twenty registrations at once over 2 server connections */
    {
        req_t         rqs[20];
        char         *ids[20];
        const char  **hh;

        for (i = 0; i < 20; i++) {
            ids[i] = uid("co");
            rqs[i].method = "POST";
            rqs[i].url = str_printf("%s%s", bounced.origin, PATH_PAYMENTS);
            hh = calloc(4, sizeof(const char *));
            cr_assert_not_null(hh);
            hh[0] = str_printf("Authorization: Bearer %s", m.key);
            hh[1] = "Content-Type: application/json";
            hh[2] = str_printf("Idempotency-Key: %s", uid("key"));
            rqs[i].headers = hh;
            rqs[i].body = body_for(ids[i]);
            rqs[i].len = (size_t) -1;
        }

        rs = http_many(rqs, 20, 20);

        for (i = 0; i < 20; i++) {
            cr_assert_eq(rs[i]->status, 201, "registration %d: %ld %s", i,
                         rs[i]->status, rs[i]->body);
            j = resp_json(rs[i]);
            secret_used(json_string_value(json_object_get(j, "psp_token")));
            secret_used(url_param(json_string_value(
                            json_object_get(j, "pay_url")), "t"));
        }

        co_id = ids[0];
        token = strdup(json_string_value(json_object_get(resp_json(rs[0]),
                                                         "psp_token")));
    }

    /* its webhook, through the same pooled connections */
    r = stripe_session_paid_post(bounced.origin, m.id, co_id, token);
    cr_assert_eq(r->status, 200, "webhook: %ld %s", r->status, r->body);

    r = gateway_send(&bounced, "GET", str_printf("/v1/checkouts/%s", co_id),
                     &m, NULL, NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "SUCCESS", "%s", r->body);

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkouts "
                               "WHERE merchant_id = $1", 1,
                               (const char *[]) { m.id }),
                     "20");
}
