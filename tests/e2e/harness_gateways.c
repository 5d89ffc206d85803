/*
 * End-to-end test harness: gateways of a test's own and the suite's nginx.
 * What it offers: harness_gateways.h.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"


/* -- more gateways ---------------------------------------------------------- */

static void gateway_lease_back(pid_t pid);


long
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


long
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


char *
pg_gateway_conninfo(void)
{
    return str_printf("hostaddr=127.0.0.1 port=%ld dbname=payments "
                      "user=payments_gateway", pg_port());
}


char *
pg_gateway_databases(void)
{
    int          i;
    long         port;
    char        *conf;
    const char  *name, *p;

    if (shards_n() < 2) {
        return str_printf("payments_database \"%s\";\n",
                          pg_gateway_conninfo());
    }

    conf = strdup("");

    for (i = 0; i < shards_n(); i++) {
        name = shard_name(i);
        p = strstr(shard_conninfo(name), "port=");
        cr_assert_not_null(p, "no port in shard %s's conninfo", name);
        port = strtol(p + 5, NULL, 10);
        conf = str_printf("%spayments_shard %s \"hostaddr=127.0.0.1 port=%ld "
                          "dbname=payments user=payments_gateway\"%s;\n",
                          conf, name, port, i == 0 ? " home" : "");
    }

    return conf;
}


/* the module the suite's own nginx loaded */
static char *
gateway_module(void)
{
    char  *conf, *p, *end;

    conf = file_read(run_file("nginx.conf"), NULL);
    cr_assert_not_null(conf);
    p = strstr(conf, "load_module ");
    cr_assert_not_null(p);
    p += strlen("load_module ");
    end = strchr(p, ';');
    cr_assert_not_null(end);

    return strndup(p, (size_t) (end - p));
}


char *
gw_psp_conf_with(const char *name, const char *dialect, const char *params)
{
    char  *s;

    s = gw_psp_conf(name, dialect);
    s[strlen(s) - 2] = '\0';       /* ";\n" */

    return str_printf("%s %s;\n", s, params);
}


char *
gw_psp_conf(const char *name, const char *dialect)
{
    const char  *run = env("PAY_TEST_RUN"), *mock = env("PAY_TEST_MOCK");

    if (strcmp(dialect, "stripe") == 0) {
        return str_printf(
            "payments_psp %s dialect=stripe url=%s\n"
            "    secret_file=%s/conf/psp.secret\n"
            "    webhook_secret_file=%s/conf/webhook.secret\n"
            "    hosted=%s stripe_version=2024-06-20\n"
            "    timeout=1s connect_timeout=1s allow_http;\n",
            name, mock, run, run, mock);
    }

    if (strcmp(dialect, "adyen") == 0) {
        return str_printf(
            "payments_psp %s dialect=adyen url=%s\n"
            "    secret_file=%s/conf/adyen.secret\n"
            "    webhook_secret_file=%s/conf/adyen.hmac\n"
            "    merchant_account=TestMerchant\n"
            "    transfers_url=%s/btl/v4\n"
            "    transfers_secret_file=%s/conf/adyen_transfers.secret\n"
            "    balance_account=BAPLATFORM00000000001\n"
            "    hosted=%s timeout=1s connect_timeout=1s allow_http;\n",
            name, mock, run, run, env("PAY_TEST_MOCK_TRANSFERS"), run,
            mock);
    }

    cr_assert_str_eq(dialect, "generic");

    return str_printf(
        "payments_psp %s dialect=generic url=%s\n"
        "    secret_file=%s/conf/generic.secret\n"
        "    webhook_key=mock-es256:es256:%s/conf/generic_jwt.pub\n"
        "    hosted=%s timeout=1s connect_timeout=1s allow_http;\n",
        name, mock, run, run, mock);
}


void
gateway_start(gateway_t *gw, const char *name, int workers,
    const char *http_conf)
{
    gateway_start_env(gw, name, workers, http_conf, NULL);
}


/*
 * Gateways a test process left running when it ended without stopping
 * them (it crashed, or Criterion killed it at its timeout: no .fini runs
 * then), stopped, and the sweeper's lease one of them held given back.
 * A gateway's directory is "<name>-<the test's pid>" under the lane's run
 * directory; one whose test is gone and whose nginx still runs is an
 * orphan.  Left alone, an orphan with a sweeper keeps the database's one
 * lease for the rest of the lane: a CI run lost the 25 later tests that
 * wait for it (solo_chaos, solo_method_sweeps, solo_sealed_tokens,
 * solo_inbox, solo_books_swept) to one crashed test, and the orphan's
 * queries deadlocked solo_shard_breaker's lock of every table.
 */
static void
gateways_reap_orphans(void)
{
    int             i;
    long            owner, master;
    char           *dash, *end, *pid, *conf, *dir, *cmd;
    size_t          len;
    DIR            *d;
    struct dirent  *e;
    const char     *run = env("PAY_TEST_RUN");

    d = opendir(run);
    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        dash = strrchr(e->d_name, '-');
        if (dash == NULL || dash[1] == '\0') {
            continue;
        }

        owner = strtol(dash + 1, &end, 10);
        if (*end != '\0' || owner <= 1 || owner == (long) getpid()
            || pid_running((pid_t) owner))
        {
            continue;
        }

        dir = str_printf("%s/%s", run, e->d_name);
        pid = file_read(str_printf("%s/nginx.pid", dir), NULL);
        if (pid == NULL) {
            continue;
        }

        master = strtol(pid, NULL, 10);
        free(pid);
        if (master <= 1 || !pid_running((pid_t) master)) {
            continue;
        }

        /* that pid is still this gateway's master ("nginx: master process
         * nginx -p <dir>/ ..."), not a process that took its number since
         * (pids here wrap at 32,768) */
        cmd = file_read(str_printf("/proc/%ld/cmdline", master), &len);
        if (cmd == NULL || !mem_contains(cmd, len, dir)) {
            free(cmd);
            continue;
        }
        free(cmd);

        e2e_warn("%s: its test process %ld ended without stopping it: "
                 "stopped now", dir, owner);

        kill((pid_t) master, SIGTERM);
        for (i = 0; i < 50 && pid_running((pid_t) master); i++) {
            msleep(100);
        }
        if (pid_running((pid_t) master)) {
            kill((pid_t) master, SIGKILL);
            for (i = 0; i < 50 && pid_running((pid_t) master); i++) {
                msleep(100);
            }
        }

        conf = file_read(str_printf("%s/nginx.conf", dir), NULL);
        if (conf != NULL && strstr(conf, "payments_sweeper on") != NULL
            && !pid_running((pid_t) master))
        {
            gateway_lease_back((pid_t) master);
        }
        free(conf);
    }

    closedir(d);
}


void
gateway_start_env(gateway_t *gw, const char *name, int workers,
    const char *http_conf, const char *env_words)
{
    int     rc;
    long    port;
    char   *dir, *conf, *pid, *keep;
    FILE   *f;
    const char  *level, *w, *end, *eq, *run = env("PAY_TEST_RUN");

    memset(gw, 0, sizeof(gateway_t));
    gw->workers = workers;

    gateways_reap_orphans();

    port = free_port();

    dir = run_file(str_printf("%s-%ld", name, (long) getpid()));
    cr_assert_eq(mkdir(dir, 0755), 0, "%s", dir);

    /* the worker may run as nobody: the temp dirs must be reachable */
    cr_assert_eq(chmod(dir, 0755), 0);

    gw->dir = dir;
    /* its own, as its directory: two tests of a suite run at once, each
     * with a gateway of the same name, and a reload (gateway_reload) or an
     * alert (gateway_alerted) is read in its gateway's log alone */
    gw->error_log = str_printf("%s/logs/%s-%ld-error.log", run, name,
                               (long) getpid());

    /* the suite's own gateway's level (ci/services.sh --error-log-level) */
    level = getenv("PAY_TEST_ERROR_LOG_LEVEL");
    if (level == NULL || level[0] == '\0') {
        level = "notice";
    }

    /* the workers keep what the master was started with (nginx clears
     * their environment but for "env" lines) */
    keep = strdup("");
    for (w = env_words; w != NULL && *w != '\0'; w = end) {
        end = w + strcspn(w, " ");
        eq = memchr(w, '=', (size_t) (end - w));
        if (eq != NULL) {
            keep = str_printf("%senv %.*s;\n", keep, (int) (eq - w), w);
        }
        end += strspn(end, " ");
    }

    conf = str_printf(
        "load_module %s;\n"
        "%s"
        "worker_processes %d;\n"
        "pid %s/nginx.pid;\n"
        "error_log %s %s;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  access_log %s/logs/%s-access.log;\n"
        "  client_body_temp_path %s/cb; proxy_temp_path %s/p;\n"
        "  fastcgi_temp_path %s/f; uwsgi_temp_path %s/u; scgi_temp_path %s/s;\n"
        "  payments_public_origin %s;\n"
        "  payments_pay_token_key %s kid=%s;\n"
        "  payments_encryption_key %s;\n"
        "  payments_html %s/html;\n"
        "%s\n"
        "  server {\n"
        "    listen 127.0.0.1:%ld ssl;\n"
        "    ssl_certificate %s/conf/tls.crt;\n"
        "    ssl_certificate_key %s/conf/tls.key;\n"
        GATEWAY_SERVER_CONF
        "    location / { payments; }\n"
        "  }\n"
        "}\n",
        gateway_module(), keep, workers, dir, gw->error_log, level, run,
        name,
        dir, dir, dir, dir, dir,
        env("PAY_TEST_PUBLIC_ORIGIN"), env("PAY_TEST_PAYTOKEN_KEY"),
        env("PAY_TEST_PAYTOKEN_KID"), env("PAY_TEST_ENCRYPTION_KEY"),
        env("PAY_TEST_ROOT"), http_conf,
        port, run, run);

    f = fopen(str_printf("%s/nginx.conf", dir), "w");
    cr_assert_not_null(f);
    fputs(conf, f);
    fclose(f);

    rc = system(str_printf("%s%snginx -p %s/ -c %s/nginx.conf -e %s",
                           env_words ? env_words : "", env_words ? " " : "",
                           dir, dir, gw->error_log));
    cr_assert_eq(rc, 0, "nginx \"%s\" did not start (see %s)", name,
                 gw->error_log);

    pid = file_read(str_printf("%s/nginx.pid", dir), NULL);
    cr_assert_not_null(pid);
    gw->pid = (pid_t) strtol(pid, NULL, 10);
    cr_assert(gw->pid > 1, "nginx.pid: %s", pid);

    gw->origin = str_printf("https://127.0.0.1:%ld", port);
    gw->sweeps = strstr(http_conf, "payments_sweeper on") != NULL;
}


/* how often needle occurs in the len bytes at haystack */
static int
mem_count(const char *haystack, size_t len, const char *needle)
{
    int          n;
    size_t       nlen = strlen(needle);
    const char  *p, *end = haystack + len;

    n = 0;

    for (p = haystack; (size_t) (end - p) >= nlen; p++) {
        p = memmem(p, (size_t) (end - p), needle, nlen);
        if (p == NULL) {
            break;
        }

        n++;
    }

    return n;
}


void
gateway_reload(const gateway_t *gw, const char *from, const char *to)
{
    int      i;
    char    *log, *conf, *at, *path;
    size_t   start, len;
    FILE    *f;

    log = file_read(gw->error_log, &start);
    cr_assert_not_null(log);
    free(log);

    path = str_printf("%s/nginx.conf", gw->dir);
    conf = file_read(path, NULL);
    cr_assert_not_null(conf, "%s", path);
    at = strstr(conf, from);
    cr_assert_not_null(at, "\"%s\" is not in %s", from, path);
    *at = '\0';

    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s%s%s", conf, to, at + strlen(from));
    fclose(f);
    free(conf);

    cr_assert_eq(kill(gw->pid, SIGHUP), 0);

    for (i = 0; i < 100; i++) {
        msleep(50);
        log = file_read(gw->error_log, &len);
        cr_assert_not_null(log);
        cr_assert(len <= start
                  || !mem_contains(log + start, len - start, "[emerg]"),
                  "the reload was refused: %s", gw->error_log);

        /* the new workers started and every old one has stopped
         * accepting (each says so as it closes its listening sockets) */
        if (len > start
            && mem_contains(log + start, len - start, "start worker process")
            && mem_count(log + start, len - start, "gracefully shutting down")
               >= gw->workers)
        {
            free(log);
            gateway_wait_ready(gw, 10);
            return;
        }

        free(log);
    }

    cr_assert_fail("no reload in %s", gw->error_log);
}


/*
 * The sweeper lease of the gateway whose master was pid, given back on
 * every shard (until = now(), as pay_sweeper_lease lets the next owner
 * take a lease that has run out): only a lease whose owner is that master
 * (host:pid:instance id, the host as the module writes it), and nothing
 * asserted: a database that is down leaves the lease to run out.
 */
static void
gateway_lease_back(pid_t pid)
{
    int          i;
    char         host[256], *owner;
    size_t       k;
    PGconn      *c;
    PGresult    *res;
    const char  *keys[] = { "dbname", "connect_timeout", NULL };
    const char  *vals[] = { NULL, "2", NULL };

    if (gethostname(host, sizeof(host)) != 0) {
        return;
    }

    host[sizeof(host) - 1] = '\0';
    for (k = 0; host[k]; k++) {
        host[k] = (char) tolower((unsigned char) host[k]);
    }

    owner = str_printf("%s:%ld:%%", host, (long) pid);

    for (i = 0; i < shards_n(); i++) {
        vals[0] = shard_conninfo(shard_name(i));
        c = PQconnectdbParams(keys, vals, 1);

        if (PQstatus(c) == CONNECTION_OK) {
            res = PQexecParams(c, "UPDATE sweeper_lease SET until = now()"
                                  " WHERE owner LIKE $1 AND until > now()",
                               1, NULL, (const char *[]) { owner }, NULL,
                               NULL, 0);
            PQclear(res);
        }

        PQfinish(c);
    }
}


/*
 * Whether pid still runs: a zombie has exited.  A gateway's master is a
 * daemon, its parent whatever reaps orphans (PID 1, or a subreaper), which
 * may take its time: on the test machines' VMs it left each exited master
 * a zombie for 1.2-2 s, which kill(pid, 0) counts as alive (solo_sweeper
 * waited so after each of the 32 gateways it stops).
 */
int
pid_running(pid_t pid)
{
    int    running;
    char  *stat, *p;

    if (pid <= 0 || kill(pid, 0) != 0) {
        return 0;
    }

    stat = file_read(str_printf("/proc/%ld/stat", (long) pid), NULL);
    if (stat == NULL) {
        /* no /proc here: kill(pid, 0) says it all */
        return 1;
    }

    /* "pid (comm) state ...": comm may hold spaces and ")" */
    p = strrchr(stat, ')');
    running = p == NULL || (p[1] != '\0' && p[2] != 'Z' && p[2] != 'X');
    free(stat);

    return running;
}


void
gateway_stop(gateway_t *gw)
{
    int  i;

    if (gw->pid <= 0) {
        return;
    }

    kill(gw->pid, SIGTERM);

    for (i = 0; i < 100 && pid_running(gw->pid); i++) {
        msleep(100);
    }

    /* its workers have exited with it: nothing renews the lease now */
    if (gw->sweeps && !pid_running(gw->pid)) {
        gateway_lease_back(gw->pid);
    }

    gw->pid = 0;
}


/* A command's standard output, NUL-terminated (malloc'd), or NULL. */
static char *
file_read_cmd(const char *cmd)
{
    char    buf[4096];
    FILE   *f;
    size_t  n;

    f = popen(cmd, "r");
    if (f == NULL) {
        return NULL;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    pclose(f);

    return strdup(buf);
}


void
gateway_kill(gateway_t *gw)
{
    long   pid;
    char  *workers, *p, *end;

    if (gw->pid <= 0) {
        return;
    }

    /*
     * The workers' pids first, then the master (so that it cannot start
     * new workers when the old ones die), then the workers it left.
     */
    workers = file_read_cmd(str_printf("pgrep -P %ld", (long) gw->pid));
    kill(gw->pid, SIGKILL);

    for (p = workers; p && *p; ) {
        pid = strtol(p, &end, 10);
        if (end == p) {
            break;
        }

        if (pid > 1) {
            kill((pid_t) pid, SIGKILL);
        }

        p = end;
    }

    gw->pid = 0;
}


int
gateway_kill_workers(const gateway_t *gw)
{
    int    i, n;
    long   w;
    char  *workers, *p, *end;

    cr_assert(gw->pid > 0, "the gateway does not run");

    /* a master that just started may not have forked yet */
    workers = NULL;
    for (i = 0; i < 20; i++) {
        free(workers);
        workers = file_read_cmd(str_printf("pgrep -P %ld", (long) gw->pid));
        if (workers != NULL && workers[0] != '\0') {
            break;
        }
        msleep(100);
    }

    n = 0;

    for (p = workers; p && *p; p = end) {
        w = strtol(p, &end, 10);
        if (end == p) {
            break;
        }

        if (w > 1 && kill((pid_t) w, SIGKILL) == 0) {
            n++;
        }
    }

    free(workers);
    return n;
}


resp_t *
gateway_send(const gateway_t *gw, const char *method, const char *path,
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
    rq.url = str_printf("%s%s", gw->origin, path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


void
gateway_wait_ready(const gateway_t *gw, int seconds)
{
    int      i;
    long     status;
    resp_t  *r;

    for (i = 0; i < seconds * 10; i++) {
        r = gateway_get(gw, "/readyz");
        status = r->status;
        resp_free(r);

        if (status == 200 && workers_up(gw->origin, gw->workers)) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("%s never became ready in every worker (see %s)",
                   gw->origin, gw->error_log);
}


resp_t *
gateway_get(const gateway_t *gw, const char *path)
{
    return http_get(str_printf("%s%s", gw->origin, path));
}


int
gateway_alerted(const gateway_t *gw, const char *a, const char *b)
{
    int      found;
    size_t   len;
    char    *log, *line, *end;

    log = file_read(gw->error_log, &len);
    cr_assert_not_null(log, "%s", gw->error_log);

    found = 0;

    for (line = log; !found && *line != '\0'; line = end) {
        end = strchr(line, '\n');
        if (end != NULL) {
            *end++ = '\0';
        } else {
            end = line + strlen(line);
        }

        found = strstr(line, "[alert]") != NULL && strstr(line, a) != NULL
                && strstr(line, b) != NULL;
    }

    free(log);
    return found;
}


long
gateway_metric(const gateway_t *gw, const char *name)
{
    long         v;
    char        *line;
    resp_t      *r;
    const char  *p;

    r = gateway_get(gw, "/metrics");
    if (r->status != 200 || r->body == NULL) {
        resp_free(r);
        return -1;
    }

    line = str_printf("\n%s ", name);
    p = strstr(r->body, line);
    v = p ? strtol(p + strlen(line), NULL, 10) : -1;
    resp_free(r);

    return v;
}


double
metric_value(const char *origin, const char *series)
{
    double       v;
    char        *line;
    resp_t      *r;
    const char  *p;

    r = http_get(str_printf("%s/metrics", origin != NULL ? origin
                                                          : env("PAY_TEST_GW")));
    if (r->status != 200) {
        resp_free(r);
        return -1;
    }

    line = str_printf("\n%s ", series);
    p = strstr(r->body, line);

    /* a lane whose merchants live on one of several shards: a series of
     * the shards' background work is that shard's (shard="NAME") */
    if (p == NULL && strchr(series, '{') == NULL
        && getenv("PAY_TEST_SHARD_DEFAULT") != NULL)
    {
        free(line);
        line = str_printf("\n%s{shard=\"%s\"} ", series,
                          getenv("PAY_TEST_SHARD_DEFAULT"));
        p = strstr(r->body, line);
    }

    v = p != NULL ? strtod(p + strlen(line), NULL) : -1;

    free(line);
    resp_free(r);

    return v;
}


void
shard_wait_served(const char *name, int seconds)
{
    int      i, ok;
    long     status;
    double   breaker;
    resp_t  *r;

    cr_assert(shard_served(name), "the gateway serves shard(s) \"%s\", "
              "not %s", env("PAY_TEST_GW_SHARDS"), name);

    ok = 0;
    status = 0;
    breaker = -1;

    /* /readyz is answered by whichever worker accepts it, and nginx may
     * hand eight in a row to one worker while another's breaker for the
     * shard is still open (a CI run: eight 200s, then a webhook 503 from
     * the other worker for the 3 s left of its breaker); the breaker's
     * gauge is the most open of the workers' */
    for (i = 0; i < seconds * 20 && ok < 8; i++) {
        r = gw_get(str_printf("/readyz?shard=%s", name));
        status = r->status;
        resp_free(r);
        breaker = metric_value(NULL, str_printf("payments_db_breaker_state"
                                                "{shard=\"%s\"}", name));
        if (breaker < 0) {
            breaker = metric_value(NULL, "payments_db_breaker_state");
        }
        ok = status == 200 && breaker <= 0 ? ok + 1 : 0;
        if (ok < 8) {
            msleep(50);
        }
    }

    cr_assert_geq(ok, 8, "shard %s not served again after %d s (/readyz: "
                  "%ld, payments_db_breaker_state %g)", name, seconds, status,
                  breaker);
}


/* -- the suite's own nginx ------------------------------------------------------ */

static pid_t
suite_gateway_pid(void)
{
    long   pid;
    char  *s;

    s = file_read(run_file("nginx.pid"), NULL);
    if (s == NULL) {
        return 0;
    }

    pid = strtol(s, NULL, 10);
    free(s);

    return pid > 1 && pid_running((pid_t) pid) ? (pid_t) pid : 0;
}


static void suite_gateway_kill(void);


void
suite_gateway_stop(void)
{
    int    i;
    pid_t  pid;

    pid = suite_gateway_pid();
    if (pid == 0) {
        return;
    }

    kill(pid, SIGQUIT);

    for (i = 0; i < 150 && pid_running(pid); i++) {
        msleep(100);
    }

    if (pid_running(pid)) {
        suite_gateway_kill();
    }
}


static void
suite_gateway_kill(void)
{
    gateway_t  gw;

    memset(&gw, 0, sizeof(gw));
    gw.pid = suite_gateway_pid();

    if (gw.pid != 0) {
        gateway_kill(&gw);
        msleep(300);
    }
}


void
suite_gateway_start(void)
{
    int          rc;
    const char  *run;

    if (suite_gateway_pid() == 0) {
        run = env("PAY_TEST_RUN");
        rc = system(str_printf("nginx -p %s/ -c %s/nginx.conf -e "
                               "%s/logs/error.log 2>>%s/logs/error.log",
                               run, run, run, run));
        cr_assert_eq(rc, 0, "the suite's nginx did not start again (see "
                     "%s/logs/error.log)", run);
    }

    cr_assert(gw_wait_ready(200, 20), "the suite's nginx is not ready");
}


long
gateway_worker(const gateway_t *gw)
{
    int    i;
    long   w;
    char  *out, *argv[4];

    argv[0] = "pgrep";
    argv[1] = "-P";
    argv[2] = str_printf("%ld", (long) gw->pid);
    argv[3] = NULL;

    for (i = 0; i < 50; i++) {
        out = NULL;
        (void) run(argv, &out);
        w = out ? strtol(out, NULL, 10) : 0;
        if (w > 1) {
            return w;
        }
        msleep(100);
    }

    cr_assert_fail("the gateway's worker did not start");
    return 0;
}


/* one reading of keep_modules.so's answer to SIGRTMIN+1 */
static long long
worker_allocated_once(long pid)
{
    int    i;
    char  *path, *s = NULL;

    path = str_printf("%s/allocated.%ld", getenv("NGX_ASAN_ALLOCATED"), pid);
    (void) unlink(path);
    cr_assert_eq(kill((pid_t) pid, SIGRTMIN + 1), 0, "worker %ld", pid);
    for (i = 0; i < 100 && s == NULL; i++) {
        msleep(50);
        s = file_read(path, NULL);
    }
    cr_assert_not_null(s, "worker %ld wrote no %s in 5 s", pid, path);

    return atoll(s);
}


long long
gateway_worker_allocated(const gateway_t *gw)
{
    int        i;
    long       pid = gateway_worker(gw);
    long long  v, least = -1;

    cr_assert_not_null(getenv("NGX_ASAN_ALLOCATED"),
                       "gateway_worker_allocated without the sanitized "
                       "run's keep_modules.so");

    /* what a timer's round or a delivery holds while under way is given
     * back when it ends: the least of three readings is what stays */
    for (i = 0; i < 3; i++) {
        if (i > 0) {
            msleep(150);
        }
        v = worker_allocated_once(pid);
        if (least < 0 || v < least) {
            least = v;
        }
    }

    return least;
}


void
gateway_start_growth(gateway_t *gw, const char *name, const char *extra)
{
    if (getenv("NGX_ASAN_ALLOCATED") == NULL) {
        cr_skip_test("the sanitized run's keep_modules.so is not preloaded "
                     "(E2E_ASAN=1 with its leak check on)");
    }

    gateway_start(gw, name, 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n%s%s",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        extra != NULL ? extra : ""));
    gateway_wait_ready(gw, 10);
}


/* who traces pid (TracerPid in /proc/pid/status), 0: nobody */
static long
tracer_of(long pid)
{
    char        *status;
    const char  *p;

    status = file_read(str_printf("/proc/%ld/status", pid), NULL);
    p = status ? strstr(status, "TracerPid:") : NULL;
    return p ? strtol(p + sizeof("TracerPid:") - 1, NULL, 10) : 0;
}


pid_t
worker_trace_start(long worker, const char *calls, const char *trace)
{
    int    i;
    pid_t  tracer, parent;

    parent = getpid();
    tracer = fork();
    cr_assert(tracer >= 0, "fork: %s", strerror(errno));

    if (tracer == 0) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }

        execlp("strace", "strace", "-f", "-qq", "-e", calls, "-o", trace,
               "-p", str_printf("%ld", worker), (char *) NULL);
        _exit(127);
    }

    for (i = 0; i < 100 && tracer_of(worker) == 0; i++) {
        msleep(50);
    }

    cr_assert_neq(tracer_of(worker), 0, "strace did not attach to the "
                  "worker %ld (is strace installed?)", worker);

    return tracer;
}


char *
worker_trace_stop(pid_t tracer, const char *trace)
{
    int    st;
    char  *text;

    kill(tracer, SIGINT);
    cr_assert_eq(waitpid(tracer, &st, 0), tracer);

    text = file_read(trace, NULL);
    cr_assert_not_null(text, "%s", trace);

    return text;
}
