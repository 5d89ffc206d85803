/*
 * End to end: request-rate zones kept in Redis (payments_limit_zone ...
 * store=redis, payments_limit_redis; doc/ngx_http_payments_limit_module.md).
 * Each test starts Debian's redis-server on a free loopback port (with a
 * password, from a file the gateways read) and two gateways of its own
 * (gateway_start, one worker each) that share it: a merchant gets its
 * limit across both, not twice it; Redis stopped mid-run makes each
 * gateway fall back to its share (gateways=2) or, for a zone that says
 * on_error=deny, answer 503; a Redis that hangs (SIGSTOP) delays a limited
 * request by the timeout at most and no other request at all.  One gateway
 * names Redis by a host name (localhost: resolved when the configuration is
 * read).  The connection is nginx's own, non-blocking: a Redis address
 * that accepts no connection, or one that accepts and never answers,
 * costs a limited request its timeout and no other request anything; a
 * worker never resolves the address (a getaddrinfo() of it that hangs,
 * preloaded, is never called).  An ACL user logs in with its own
 * password.  Everything is stopped after, and redis-server dies with the
 * test's process however the test ends (harness_redis.c).  The same suite
 * goes on in test_limits_redis_amount.c (amount zones),
 * test_limits_redis_failures.c (the card-testing guard) and
 * test_limits_redis_tls.c (TLS).
 */

#include "harness.h"
#include "harness_redis.h"

#include <hiredis/hiredis.h>
#include <payments/ratelimit.h>
#include <payments/ratelimit_redis.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* burst=3: a merchant's first 4 requests pass, and on each of 2 gateways
 * falling back alone, 2 (burst 1500, each request adds 1000) */
#define LIMIT_PASSES    4


static gateway_t   gw_a, gw_b;

static void
stop_all(void)
{
    gateway_stop(&gw_a);
    gateway_stop(&gw_b);

    if (redis_dir) {
        redis_stop();
    }
}


/* a gateway's configuration: Redis at address */

static char *
redis_conf(const char *address, const char *password_file,
    const char *timeout)
{
    return str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s"
        "payments_limit_redis %s%s%s "
        "timeout=%s prefix=t%ld;\n"
        "payments_limit_zone shared size=64k rate=1r/m store=redis "
        "gateways=2;\n"
        "payments_limit_zone strict size=64k rate=1r/m store=redis "
        "on_error=deny;\n"
        "payments_limit create_merchant=shared burst=3;\n"
        "payments_limit pages=strict burst=1000;\n",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        address, password_file ? " password_file=" : "",
        password_file ? password_file : "", timeout, (long) getpid());
}


/*
 * Two gateways sharing the Redis: create_merchant= counts in "shared"
 * (falls back to a half share each), the status poll in "strict"
 * (on_error=deny, a burst no test reaches).
 */

static void
start_all(void)
{
    char  *pw;
    FILE  *f;

    redis_port = free_port();
    redis_dir = run_file(str_printf("redis-%ld", (long) getpid()));
    cr_assert_eq(mkdir(redis_dir, 0700), 0, "%s", redis_dir);

    /* ci/log-scan.sh searches every log and /metrics for it */
    secret_used(REDIS_PASSWORD);

    pw = str_printf("%s/redis.password", redis_dir);
    f = fopen(pw, "w");
    cr_assert_not_null(f);
    fputs(REDIS_PASSWORD "\n", f);
    fclose(f);
    cr_assert_eq(chmod(pw, 0600), 0);

    redis_start();

    /* logs of their own: the suite's tests run two at a time; B names
     * Redis by a host name */
    gateway_start(&gw_a, str_printf("rl-a-%ld", (long) getpid()), 1,
                  redis_conf(str_printf("127.0.0.1:%ld", redis_port), pw,
                             "1s"));
    gateway_start(&gw_b, str_printf("rl-b-%ld", (long) getpid()), 1,
                  redis_conf(str_printf("localhost:%ld", redis_port), pw,
                             "1s"));
    gateway_wait_ready(&gw_a, 10);
    gateway_wait_ready(&gw_b, 10);
}


TestSuite(limits_redis, .timeout = E2E_TIMEOUT, .init = start_all,
          .fini = stop_all);


/* POST /v1/payments with a body the limit lets through to a 400: the
 * status says which (400 passed, 429 limited, 503 refused) */

static long
create(const gateway_t *gw, const merchant_t *m, long *retry_after)
{
    long         status;
    resp_t      *r;
    const char  *v;

    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), "{}");
    status = r->status;

    cr_assert(status == 400 || status == 429 || status == 503,
              "POST /v1/payments answered %ld: %s", status,
              r->body ? r->body : "");

    if (status == 429) {
        expect_problem(r, 429, "rate_limited");
    }

    if (status == 503) {
        expect_problem(r, 503, "store_unavailable");
    }

    v = resp_header(r, "Retry-After");

    if (status != 400) {
        cr_assert_not_null(v, "%ld without Retry-After", status);
    }

    if (retry_after) {
        *retry_after = v ? atol(v) : 0;
    }

    resp_free(r);

    return status;
}


/* n requests alternating over both gateways (A first): how many passed */

static int
passes(const merchant_t *m, int n)
{
    int  i, passed;

    passed = 0;

    for (i = 0; i < n; i++) {
        if (create(i % 2 ? &gw_b : &gw_a, m, NULL) == 400) {
            passed++;
        }
    }

    return passed;
}


/* Waits until a fresh merchant's requests are counted in Redis again. */

static void
wait_for_redis_use(void)
{
    int         i;
    double      before;
    merchant_t  m;

    merchant_new(&m);

    for (i = 0; i < 50; i++) {
        before = fallbacks(&gw_a, "shared") + fallbacks(&gw_b, "shared");
        (void) passes(&m, 2);

        if (fallbacks(&gw_a, "shared") + fallbacks(&gw_b, "shared")
            == before)
        {
            return;
        }

        msleep(200);
    }

    cr_assert_fail("the gateways did not use Redis again within 10 s");
}


Test(limits_redis, a_merchant_gets_its_limit_across_two_gateways_not_twice)
{
    long           ra;
    char          *key;
    merchant_t     m, other;
    redisContext  *c;
    redisReply    *r;

    merchant_new(&m);
    merchant_new(&other);

    /* alone, each gateway would let 4 through: 8 in all */
    cr_assert_eq(passes(&m, 10), LIMIT_PASSES,
                 "a merchant's limit across two gateways is %d requests",
                 LIMIT_PASSES);

    /* refused on either, with the wait a 1r/m bucket needs */
    cr_assert_eq(create(&gw_a, &m, &ra), 429);
    cr_assert(ra >= 55 && ra <= 60, "Retry-After %ld", ra);
    cr_assert_eq(create(&gw_b, &m, &ra), 429);

    /* another merchant has a bucket of its own */
    cr_assert_eq(passes(&other, 6), LIMIT_PASSES);

    /* the bucket is in Redis under the prefix, zone and merchant, with an
     * expiry; no check fell back */
    c = redis_client();
    key = str_printf("t%ld:shared:r:%s", (long) getpid(), m.id);
    r = redisCommand(c, "PTTL %s", key);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0,
              "no bucket with an expiry at %s", key);
    freeReplyObject(r);
    redisFree(c);

    cr_assert_eq(fallbacks(&gw_a, "shared"), 0);
    cr_assert_eq(fallbacks(&gw_b, "shared"), 0);
    cr_assert_eq(log_count(&gw_a, "decide without it"), 0);
    cr_assert_eq(log_count(&gw_b, "decide without it"), 0);
}


Test(limits_redis, redis_stopped_mid_run_falls_back_as_each_zone_says)
{
    long         out_a, out_b;
    char        *status_path;
    resp_t      *r;
    merchant_t   m, later;

    merchant_new(&m);
    merchant_new(&later);
    status_path = str_printf("/v1/checkouts/%s/status", uid("co"));

    /* up: two requests counted in Redis; the status poll passes the
     * limit (its checkout is unknown: 404) */
    cr_assert_eq(passes(&m, 2), 2);
    r = gateway_get(&gw_a, status_path);
    cr_assert_neq(r->status, 503);
    resp_free(r);

    /* the outage lines so far: a loaded machine's handshake can take
     * longer than the timeout at a gateway's start, an outage of its own */
    out_a = log_count(&gw_a, "zones with store=redis decide without it");
    out_b = log_count(&gw_b, "zones with store=redis decide without it");

    redis_stop();

    /* on_error=local, gateways=2: a fresh merchant gets half the burst on
     * each gateway, so the same limit in all */
    merchant_new(&m);
    cr_assert_eq(passes(&m, 8), LIMIT_PASSES);

    /* on_error=deny: 503 store_unavailable, never a 429 */
    r = gateway_get(&gw_a, status_path);
    expect_problem(r, 503, "store_unavailable");
    cr_assert_not_null(resp_header(r, "Retry-After"));
    resp_free(r);

    cr_assert(fallbacks(&gw_a, "shared") >= 4, "fallbacks on A: %g",
              fallbacks(&gw_a, "shared"));
    cr_assert(fallbacks(&gw_b, "shared") >= 4);
    cr_assert(fallbacks(&gw_a, "strict") >= 1);

    /* one line per outage and worker, naming Redis, never its password */
    cr_assert_eq(log_count(&gw_a, "zones with store=redis decide without "
                           "it"), out_a + 1);
    cr_assert_eq(log_count(&gw_b, "zones with store=redis decide without "
                           "it"), out_b + 1);
    cr_assert_eq(log_count(&gw_a, REDIS_PASSWORD), 0);
    cr_assert_eq(log_count(&gw_b, REDIS_PASSWORD), 0);

    /* back: the gateways connect again by themselves, and the limit is
     * counted in Redis again */
    redis_start();
    wait_for_redis_use();

    cr_assert_eq(passes(&later, 10), LIMIT_PASSES);
    cr_assert_eq(log_count(&gw_a, "answers again after"), 1);

    r = gateway_get(&gw_a, status_path);
    cr_assert_neq(r->status, 503);
    resp_free(r);
}


typedef struct {
    const gateway_t  *gw;
    merchant_t        m;
    long              status;
    long              ms;
} held_t;


static void *
held_create(void *arg)
{
    held_t  *h = arg;
    long     t0;

    t0 = ms_now();
    h->status = create(h->gw, &h->m, NULL);
    h->ms = ms_now() - t0;

    return NULL;
}


Test(limits_redis, a_hung_redis_delays_only_the_limited_request)
{
    int         i;
    long        t0, ms;
    pid_t       pid;
    resp_t     *r;
    held_t      h;
    pthread_t   th;
    merchant_t  m;

    merchant_new(&h.m);
    merchant_new(&m);
    h.gw = &gw_a;

    /* warm: the connection is up */
    cr_assert_eq(passes(&m, 2), 2);

    pid = redis_child;
    cr_assert(pid > 0);
    cr_assert_eq(kill(pid, SIGSTOP), 0);

    cr_assert_eq(pthread_create(&th, NULL, held_create, &h), 0);
    msleep(50);

    /* the one worker answers others while the check waits for Redis (a
     * second, timeout=1s): each well within it, on a loaded machine too */
    for (i = 0; i < 3; i++) {
        t0 = ms_now();
        r = gateway_get(&gw_a, "/healthz");
        ms = ms_now() - t0;
        cr_assert_eq(r->status, 200);
        resp_free(r);
        cr_assert(ms < 300, "/healthz took %ld ms while Redis hung", ms);
    }

    pthread_join(th, NULL);

    /* the check waited for the timeout, then the fallback let it through
     * (its merchant's first request) */
    cr_assert_eq(h.status, 400);
    cr_assert(h.ms >= 950 && h.ms < 3000, "the limited request took %ld ms",
              h.ms);

    /* the link is stalled now: the next check decides at once */
    t0 = ms_now();
    cr_assert_eq(create(&gw_a, &h.m, NULL), 400);
    ms = ms_now() - t0;
    cr_assert(ms < 500, "a check on a stalled link took %ld ms", ms);

    kill(pid, SIGCONT);

    wait_for_redis_use();

    merchant_new(&m);
    cr_assert_eq(passes(&m, 8), LIMIT_PASSES);
}


/*
 * The script against the C code it stands for (pay_rl_rate_check, _take,
 * _expire in src/ratelimit.c), request by request on the test's Redis,
 * with the time given (the script's now argument) so that both see the
 * same clock: the same verdict, the same wait, the same bucket stored and
 * an expiry no later than the C code's.  Rates of 1r/m and 6r/m (a
 * bucket's expiry, in Redis's real time, is 10 s or more: longer than the
 * test), bursts from none to the largest.
 */
Test(limits_redis, the_script_is_the_c_leaky_bucket)
{
    int             i, k, fits, account;
    char           *key;
    int64_t         excess;
    uint64_t        now, wait, rate, burst, expire, seed;
    redisContext   *c;
    redisReply     *r, *e;
    pay_rl_rate_t   b;
    static const uint64_t  rates[] = { 1000, 6000 };
    static const uint64_t  bursts[] = { 0, 1000, 3000, 1000000000ULL };
    static const uint64_t  steps[] = { 0, 0, 1, 17, 999, 1000, 20000,
                                        60001, 86400001ULL };

    c = redis_client();
    seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t) getpid();

    for (k = 0; k < 8; k++) {
        rate = rates[k % 2];
        burst = bursts[k / 2];
        key = str_printf("t%ld:eq:r:%d", (long) getpid(), k);
        memset(&b, 0, sizeof(b));
        now = 1700000000000ULL;

        for (i = 0; i < 120; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            now += steps[(seed >> 33) % (sizeof(steps) / sizeof(steps[0]))];
            account = ((seed >> 20) & 3) != 0;

            wait = 0;
            fits = pay_rl_rate_check(&b, rate, burst, now, &excess, &wait)
                   == 0;

            r = redisCommand(c, "EVAL %s 1 %s rate %llu %llu %llu %d",
                             pay_rl_redis_script, key,
                             (unsigned long long) now,
                             (unsigned long long) rate,
                             (unsigned long long) burst, account);
            cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY
                      && r->elements == 2, "step %d: %s", i,
                      r && r->str ? r->str : "no array");
            cr_assert_eq(r->element[0]->integer, fits ? 0 : 1,
                         "key %d step %d: the script says %lld, C %d", k, i,
                         r->element[0]->integer, !fits);
            cr_assert_eq((uint64_t) r->element[1]->integer,
                         fits ? 0 : wait, "key %d step %d: wait", k, i);
            freeReplyObject(r);

            if (!fits || !account) {
                continue;
            }

            pay_rl_rate_take(&b, excess, now);
            expire = pay_rl_rate_expire(&b, rate);

            e = redisCommand(c, "HMGET %s e t", key);
            cr_assert(e != NULL && e->elements == 2 && e->element[0]->str
                      && e->element[1]->str);
            cr_assert_eq(strtoll(e->element[0]->str, NULL, 10), b.excess,
                         "key %d step %d: excess", k, i);
            cr_assert_eq(strtoull(e->element[1]->str, NULL, 10), b.last,
                         "key %d step %d: last", k, i);
            freeReplyObject(e);

            e = redisCommand(c, "PTTL %s", key);
            cr_assert(e != NULL && e->type == REDIS_REPLY_INTEGER
                      && e->integer > 0
                      && (uint64_t) e->integer <= expire - now,
                      "key %d step %d: PTTL %lld, C's expiry in %llu", k, i,
                      e ? e->integer : -1,
                      (unsigned long long) (expire - now));
            freeReplyObject(e);
        }
    }

    redisFree(c);
}


/* a listening socket on a free loopback port; backlog as given */

static int
listener(int backlog, long *port)
{
    int                 fd;
    socklen_t           len;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    cr_assert_eq(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    cr_assert_eq(listen(fd, backlog), 0);

    len = sizeof(sin);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    *port = ntohs(sin.sin_port);

    return fd;
}


/* a connect to port that fills its backlog (never accepted) */

static int
fill_backlog(long port)
{
    int                 fd;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert(fd >= 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((in_port_t) port);

    (void) connect(fd, (struct sockaddr *) &sin, sizeof(sin));
    msleep(100);

    return fd;
}


/*
 * A gateway whose Redis never answers (address: a listener that accepts
 * and stays silent, or one whose backlog is full, so that the connect
 * itself never ends): while one worker's limited requests wait for their
 * timeout (200ms), it answers others at once; the limited request ends
 * by its zone's on_error= within the timeout (a fresh merchant's first
 * request passes on the local share: 400 for its empty body; the status
 * poll, on_error=deny: 503); and the outage is one warn line however many
 * connects the worker tries meanwhile.
 */

static void
silent_redis(const char *name, long port)
{
    int          i, k;
    long         t0, ms, worst;
    char        *status_path;
    resp_t      *r;
    held_t       h;
    gateway_t    gw;
    pthread_t    th;

    memset(&gw, 0, sizeof(gw));
    gateway_start(&gw, str_printf("rl-%s-%ld", name, (long) getpid()), 1,
                  redis_conf(str_printf("127.0.0.1:%ld", port), NULL,
                             "200ms"));
    gateway_wait_ready(&gw, 10);

    status_path = str_printf("/v1/checkouts/%s/status", uid("co"));

    for (i = 0; i < 3; i++) {
        merchant_new(&h.m);
        h.gw = &gw;

        cr_assert_eq(pthread_create(&th, NULL, held_create, &h), 0);
        msleep(20);

        worst = 0;

        for (k = 0; k < 3; k++) {
            t0 = ms_now();
            r = gateway_get(&gw, "/healthz");
            ms = ms_now() - t0;
            cr_assert_eq(r->status, 200);
            resp_free(r);
            worst = ms > worst ? ms : worst;
        }

        pthread_join(th, NULL);

        cr_assert(worst < 300, "%s: /healthz took %ld ms while a limited "
                  "request waited for Redis", name, worst);
        cr_assert_eq(h.status, 400, "%s: the limited request answered %ld",
                     name, h.status);
        cr_assert(h.ms < 1500, "%s: the limited request took %ld ms "
                  "(timeout=200ms)", name, h.ms);

        t0 = ms_now();
        r = gateway_get(&gw, status_path);
        ms = ms_now() - t0;
        expect_problem(r, 503, "store_unavailable");
        resp_free(r);
        cr_assert(ms < 1500, "%s: the on_error=deny answer took %ld ms",
                  name, ms);

        /* past the link's connect deadline: a connect again */
        msleep(700);
    }

    cr_assert(fallbacks(&gw, "shared") >= 3, "%s: fallbacks %g", name,
              fallbacks(&gw, "shared"));
    cr_assert_eq(log_count(&gw, "zones with store=redis decide without "
                           "it"), 1, "%s: one warn line per outage", name);

    gateway_stop(&gw);
}


Test(limits_redis, a_redis_that_never_answers_holds_no_other_request,
     .timeout = 60)
{
    int   silent, full, filler;
    long  port;

    /* accepts (the kernel does), never reads nor answers */
    silent = listener(16, &port);
    silent_redis("silent", port);
    close(silent);

    /* a full backlog: the gateway's connect never ends */
    full = listener(0, &port);
    filler = fill_backlog(port);
    silent_redis("noaccept", port);
    close(filler);
    close(full);
}


/*
 * The worker never resolves Redis's address: a getaddrinfo() of 127.0.0.2
 * that hangs 3 s (build/slow_dns.so, preloaded) is never called, so the
 * worker answers at once and its checks are counted in Redis.  hiredis's
 * own connect called getaddrinfo() in the worker at every connect.
 */
Test(limits_redis, a_worker_never_resolves_the_redis_address, .timeout = 60)
{
    int          i;
    long         t0, ms;
    char        *so, *mark, *pw;
    resp_t      *r;
    gateway_t    gw;
    merchant_t   m;
    struct stat  st;

    so = build_file("slow_dns.so");
    cr_assert_eq(stat(so, &st), 0, "%s (make build/slow_dns.so)", so);
    mark = run_file(str_printf("redis-dns-mark-%ld", (long) getpid()));
    cr_assert_eq(mkdir(mark, 0777), 0, "%s", mark);
    cr_assert_eq(chmod(mark, 0777), 0, "%s", mark);
    mark = str_printf("%s/lookup.done", mark);
    pw = str_printf("%s/redis.password", redis_dir);

    memset(&gw, 0, sizeof(gw));
    gateway_start_env(&gw, str_printf("rl-dns-%ld", (long) getpid()), 1,
                      redis_conf(str_printf("127.0.0.2:%ld", redis_port), pw,
                                 "1s"),
                      str_printf("SLOW_DNS_HOST=127.0.0.2 SLOW_DNS_SECONDS=3 "
                                 "SLOW_DNS_MARK='%s' LD_PRELOAD='%s'", mark,
                                 so));
    gateway_wait_ready(&gw, 10);

    for (i = 0; i < 5; i++) {
        t0 = ms_now();
        r = gateway_get(&gw, "/healthz");
        ms = ms_now() - t0;
        cr_assert_eq(r->status, 200);
        resp_free(r);
        cr_assert(ms < 300, "/healthz took %ld ms", ms);
        msleep(100);
    }

    /* a merchant gets its limit from Redis: alone, burst=3 lets 4 pass */
    merchant_new(&m);

    for (i = 0; i < 4; i++) {
        cr_assert_eq(create(&gw, &m, NULL), 400, "request %d", i);
    }

    cr_assert_eq(create(&gw, &m, NULL), 429);
    cr_assert_eq(fallbacks(&gw, "shared"), 0);
    cr_assert_eq(stat(mark, &st), -1, "the worker looked up 127.0.0.2");
    cr_assert_eq(log_count(&gw, "decide without it"), 0);

    gateway_stop(&gw);
}


/*
 * Redis loses the script (SCRIPT FLUSH): the check that meets NOSCRIPT is
 * sent again as EVAL and counted in Redis (no fallback, no outage), and
 * the script is loaded again for the next ones.
 */
Test(limits_redis, a_flushed_script_is_evaluated_and_loaded_again)
{
    char           sha[PAY_RL_REDIS_SHA_LEN + 1];
    merchant_t     m;
    redisContext  *c;
    redisReply    *r;

    merchant_new(&m);
    cr_assert_eq(passes(&m, 2), 2);

    c = redis_client();
    r = redisCommand(c, "SCRIPT FLUSH");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);

    merchant_new(&m);
    cr_assert_eq(passes(&m, 10), LIMIT_PASSES);

    /* and loaded again */
    pay_rl_redis_script_sha(sha);
    r = redisCommand(c, "SCRIPT EXISTS %s", sha);
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1
              && r->element[0]->integer == 1, "the script is not loaded");
    freeReplyObject(r);

    cr_assert_eq(fallbacks(&gw_a, "shared"), 0);
    cr_assert_eq(fallbacks(&gw_b, "shared"), 0);
    cr_assert_eq(log_count(&gw_a, "decide without it"), 0);
    cr_assert_eq(log_count(&gw_b, "decide without it"), 0);

    redisFree(c);
}


/*
 * A Redis 6 ACL user (user= and password_file=, AUTH user password): the
 * gateway's checks are counted in Redis as that user, which may run only
 * what the module sends (the ACL of redis_start()); the wrong password
 * for it is one warn line naming AUTH and neither password, and the zone
 * falls back meanwhile.
 */
Test(limits_redis, an_acl_user_authenticates_with_its_own_password,
     .timeout = 60)
{
    int            i;
    char          *user;
    gateway_t      gw, bad;
    merchant_t     m;
    redisContext  *c;
    redisReply    *r;

    secret_used(REDIS_USER_PASSWORD);
    user = str_printf("127.0.0.1:%ld user=%s", redis_port, REDIS_USER);

    memset(&gw, 0, sizeof(gw));
    gateway_start(&gw, str_printf("rl-acl-%ld", (long) getpid()), 1,
                  redis_conf(user, secret_file("acl.password",
                                               REDIS_USER_PASSWORD), "1s"));
    gateway_wait_ready(&gw, 10);

    merchant_new(&m);

    for (i = 0; i < 4; i++) {
        cr_assert_eq(create(&gw, &m, NULL), 400, "request %d", i);
    }

    cr_assert_eq(create(&gw, &m, NULL), 429);
    cr_assert_eq(fallbacks(&gw, "shared"), 0);
    cr_assert_eq(log_count(&gw, "decide without it"), 0);

    /* the gateway's connection is the ACL user's */
    c = redis_client();
    r = redisCommand(c, "CLIENT LIST");
    cr_assert(r != NULL && r->str != NULL);
    cr_assert_not_null(strstr(r->str, "user=" REDIS_USER " "),
                       "no client of user %s: %s", REDIS_USER, r->str);
    freeReplyObject(r);
    redisFree(c);

    gateway_stop(&gw);

    /* the default user's password is not the ACL user's */
    memset(&bad, 0, sizeof(bad));
    gateway_start(&bad, str_printf("rl-acl-bad-%ld", (long) getpid()), 1,
                  redis_conf(user, secret_file("wrong.password",
                                               REDIS_PASSWORD), "1s"));
    gateway_wait_ready(&bad, 10);

    merchant_new(&m);
    msleep(300);
    cr_assert_eq(create(&bad, &m, NULL), 400);
    cr_assert(fallbacks(&bad, "shared") >= 1);
    cr_assert_eq(log_count(&bad, "refused the password (AUTH)"), 1);
    cr_assert_eq(log_count(&bad, REDIS_PASSWORD), 0);
    cr_assert_eq(log_count(&bad, REDIS_USER_PASSWORD), 0);

    gateway_stop(&bad);
}
