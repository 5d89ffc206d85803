/*
 * End to end: database fail-over (issue 15, item 4).  A second gateway is
 * started by the test, its payments_database naming two hosts: a dead one
 * first (127.0.0.1 port 1, refused) and the suite's PostgreSQL second.
 * libpq tries the first host, closes its socket and opens another for the
 * second one inside one PQconnectPoll step, usually under the same
 * descriptor number: the module must follow the new socket, or the pool
 * never connects ("connect timed out", forever).
 *
 * The second gateway is a minimal nginx of its own (payments_database is an
 * http-level directive, one pool per worker): its own directory under the
 * run directory, one worker, the suite's PostgreSQL, mock PSP, secrets and
 * certificate.  Its logs are RUN/logs/failover-*.log, which
 * ci/log-scan.sh searches too.  The test stops it when it ends.
 */

#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>


static pid_t  failover_pid;


static char *
module_path(void)
{
    char  *conf, *p, *end;

    /* the module the suite's own nginx loaded */
    conf = file_read(run_file("nginx.conf"), NULL);
    cr_assert_not_null(conf);
    p = strstr(conf, "load_module ");
    cr_assert_not_null(p);
    p += strlen("load_module ");
    end = strchr(p, ';');
    cr_assert_not_null(end);

    return strndup(p, (size_t) (end - p));
}


/* The suite's PostgreSQL port, from PAY_TEST_PG ("... port=N ..."). */

static long
pg_port(void)
{
    long         port;
    const char  *p;

    p = strstr(env("PAY_TEST_PG"), "port=");
    cr_assert_not_null(p, "no port in PAY_TEST_PG");
    port = strtol(p + 5, NULL, 10);
    cr_assert(port > 1 && port < 65536, "PAY_TEST_PG port %ld", port);

    return port;
}


/* A free loopback port (ci/services.sh port). */

static long
free_port(void)
{
    long   port;
    char   buf[32];
    FILE  *f;

    f = popen(str_printf("bash %s/ci/services.sh port",
                         env("PAY_TEST_ROOT")), "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    cr_assert_eq(pclose(f), 0);
    port = strtol(buf, NULL, 10);
    cr_assert(port > 0 && port < 65536, "port %s", buf);

    return port;
}


static void
stop_gateway(void)
{
    int  i;

    if (failover_pid <= 0) {
        return;
    }

    kill(failover_pid, SIGTERM);

    for (i = 0; i < 100 && kill(failover_pid, 0) == 0; i++) {
        msleep(100);
    }

    failover_pid = 0;
}


/*
 * Starts a gateway whose database conninfo is conninfo; returns its https
 * origin.  The pid is kept for stop_gateway().
 */

static char *
start_gateway(const char *conninfo)
{
    int     rc;
    long    port;
    char   *dir, *conf, *pid, *run;
    FILE   *f;

    run = strdup(env("PAY_TEST_RUN"));
    port = free_port();

    dir = run_file(str_printf("failover-%ld", (long) getpid()));
    cr_assert_eq(mkdir(dir, 0755), 0, "%s", dir);

    /* the worker may run as nobody: the temp dirs must be reachable */
    cr_assert_eq(chmod(dir, 0755), 0);

    conf = str_printf(
        "load_module %s;\n"
        "worker_processes 1;\n"
        "pid %s/nginx.pid;\n"
        "error_log %s/logs/failover-error.log notice;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  access_log %s/logs/failover-access.log;\n"
        "  client_body_temp_path %s/cb; proxy_temp_path %s/p;\n"
        "  fastcgi_temp_path %s/f; uwsgi_temp_path %s/u; scgi_temp_path %s/s;\n"
        "  payments_database \"%s\";\n"
        "  payments_database_pool 2;\n"
        "  payments_public_origin %s;\n"
        "  payments_pay_token_key %s kid=%s;\n"
        "  payments_psp %s dialect=stripe url=%s\n"
        "               secret_file=%s/conf/psp.secret\n"
        "               webhook_secret_file=%s/conf/webhook.secret\n"
        "               hosted=%s stripe_version=2024-06-20\n"
        "               timeout=1s connect_timeout=1s allow_http;\n"
        "  payments_html %s/html;\n"
        "  server {\n"
        "    listen 127.0.0.1:%ld ssl;\n"
        "    ssl_certificate %s/conf/tls.crt;\n"
        "    ssl_certificate_key %s/conf/tls.key;\n"
        "    location / { payments; }\n"
        "  }\n"
        "}\n",
        module_path(), dir, run, run, dir, dir, dir, dir, dir, conninfo,
        env("PAY_TEST_PUBLIC_ORIGIN"), env("PAY_TEST_PAYTOKEN_KEY"),
        env("PAY_TEST_PAYTOKEN_KID"), env("PAY_TEST_PSP"),
        env("PAY_TEST_MOCK"), run, run, env("PAY_TEST_MOCK"),
        env("PAY_TEST_ROOT"), port, run, run);

    f = fopen(str_printf("%s/nginx.conf", dir), "w");
    cr_assert_not_null(f);
    fputs(conf, f);
    fclose(f);

    rc = system(str_printf("nginx -p %s/ -c %s/nginx.conf "
                           "-e %s/logs/failover-error.log",
                           dir, dir, run));
    cr_assert_eq(rc, 0, "the second nginx did not start (see "
                 "%s/logs/failover-error.log)", run);

    pid = file_read(str_printf("%s/nginx.pid", dir), NULL);
    cr_assert_not_null(pid);
    failover_pid = (pid_t) strtol(pid, NULL, 10);
    cr_assert(failover_pid > 1, "nginx.pid: %s", pid);

    return str_printf("https://127.0.0.1:%ld", port);
}


static resp_t *
send_to(const char *origin, const char *method, const char *path,
    const merchant_t *m, const char *idem_key, const char *body)
{
    req_t        rq;
    const char  *h[4];
    size_t       n;

    n = 0;
    h[n++] = str_printf("Authorization: Bearer %s", m->key);

    if (body != NULL) {
        h[n++] = "Content-Type: application/json";
        h[n++] = str_printf("Idempotency-Key: %s", idem_key);
    }

    h[n] = NULL;

    rq.method = method;
    rq.url = str_printf("%s%s", origin, path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


TestSuite(db_failover, .timeout = E2E_TIMEOUT, .fini = stop_gateway);


Test(db_failover, a_dead_first_host_fails_over_to_the_second)
{
    int          i, ready;
    char        *origin, *co_id;
    resp_t      *r;
    json_t      *j;
    merchant_t   m;

    merchant_new(&m);

    origin = start_gateway(str_printf(
        "hostaddr=127.0.0.1,127.0.0.1 port=1,%ld "
        "dbname=payments user=payments_gateway", pg_port()));

    /*
     * Connection refused on port 1 takes microseconds; the second host
     * accepts at once.  The pool's connect timeout is 5 s: 10 s without a
     * connection is the bug.
     */
    ready = 0;

    for (i = 0; i < 100 && !ready; i++) {
        r = http_get(str_printf("%s/readyz", origin));
        ready = (r->status == 200);
        resp_free(r);

        if (!ready) {
            msleep(100);
        }
    }

    cr_assert(ready, "the gateway never connected to the second host "
              "(see RUN/logs/failover-error.log)");

    /* a registration and a read, both through the second host */
    co_id = uid("co");
    r = send_to(origin, "POST", PATH_PAYMENTS, &m, uid("key"),
                body_for(co_id));
    cr_assert_eq(r->status, 201, "registration: %ld (%s) %s", r->status,
                 r->error, r->body);
    j = resp_json(r);
    secret_used(json_string_value(json_object_get(j, "psp_token")));
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    r = send_to(origin, "GET", str_printf("/v1/checkouts/%s", co_id), &m,
                NULL, NULL);
    cr_assert_eq(r->status, 200, "GET checkout: %ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING", "%s", r->body);

    /* and the store holds it */
    cr_assert_str_eq(db_scalar("SELECT status::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, (const char *[]) { m.id, co_id }),
                     "EXECUTING");
}
