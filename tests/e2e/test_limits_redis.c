/*
 * End to end: request-rate zones kept in Redis (payments_limit_zone ...
 * store=redis, payments_limit_redis; doc/ngx_http_payments_limit_module.md).
 * Each test starts Debian's redis-server on a free loopback port (with a
 * password, from a file the gateways read) and two gateways of its own
 * (gateway_start, one worker each) that share it: a merchant gets its
 * limit across both, not twice it; Redis stopped mid-run makes each
 * gateway fall back to its share (gateways=2) or, for a zone that says
 * on_error=deny, answer 503; a Redis that hangs (SIGSTOP) delays a limited
 * request by the timeout at most and no other request at all.  Everything
 * is stopped after.
 */

#include "harness.h"

#include <hiredis/hiredis.h>
#include <payments/ratelimit.h>
#include <payments/ratelimit_redis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define REDIS_PASSWORD  "rl-test-redis-Kq7vXw2p"

/* burst=3: a merchant's first 4 requests pass, and on each of 2 gateways
 * falling back alone, 2 (burst 1500, each request adds 1000) */
#define LIMIT_PASSES    4


static gateway_t   gw_a, gw_b;
static long        redis_port;
static char       *redis_dir;


static long
ms_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}


static pid_t
redis_pid(void)
{
    char  *pid;

    pid = file_read(str_printf("%s/redis.pid", redis_dir), NULL);
    return pid ? (pid_t) strtol(pid, NULL, 10) : 0;
}


/* a client of the test's own, to look into Redis */

static redisContext *
redis_client(void)
{
    redisContext  *c;
    redisReply    *r;

    c = redisConnect("127.0.0.1", (int) redis_port);
    cr_assert(c != NULL && c->err == 0, "cannot connect to the test's Redis");

    r = redisCommand(c, "AUTH %s", REDIS_PASSWORD);
    cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS, "AUTH failed");
    freeReplyObject(r);

    return c;
}


static int
redis_answers(void)
{
    redisContext  *c;
    redisReply    *r;
    int            ok;

    c = redisConnect("127.0.0.1", (int) redis_port);
    if (c == NULL || c->err) {
        if (c) {
            redisFree(c);
        }

        return 0;
    }

    r = redisCommand(c, "PING");
    ok = r != NULL;     /* NOAUTH is an answer too */
    if (r) {
        freeReplyObject(r);
    }

    redisFree(c);

    return ok;
}


/* redis-server on redis_port (a fresh one, or the same port again) */

static void
redis_start(void)
{
    int    i, rc;
    FILE  *f;

    f = fopen(str_printf("%s/redis.conf", redis_dir), "w");
    cr_assert_not_null(f);
    fprintf(f,
            "bind 127.0.0.1\n"
            "port %ld\n"
            "daemonize yes\n"
            "pidfile %s/redis.pid\n"
            "logfile %s/redis.log\n"
            "dir %s\n"
            "save \"\"\n"
            "appendonly no\n"
            "requirepass %s\n",
            redis_port, redis_dir, redis_dir, redis_dir, REDIS_PASSWORD);
    fclose(f);

    unlink(str_printf("%s/redis.pid", redis_dir));

    rc = system(str_printf("redis-server %s/redis.conf", redis_dir));
    cr_assert_eq(rc, 0, "redis-server did not start (%s/redis.log)",
                 redis_dir);

    for (i = 0; i < 100 && !redis_answers(); i++) {
        msleep(20);
    }

    cr_assert(redis_answers(), "redis-server does not answer on %ld",
              redis_port);
}


static void
redis_stop(void)
{
    int    i;
    pid_t  pid;

    pid = redis_pid();
    if (pid <= 0) {
        return;
    }

    kill(pid, SIGCONT);
    kill(pid, SIGKILL);

    for (i = 0; i < 100 && kill(pid, 0) == 0; i++) {
        msleep(20);
    }

    unlink(str_printf("%s/redis.pid", redis_dir));
}


static void
stop_all(void)
{
    gateway_stop(&gw_a);
    gateway_stop(&gw_b);

    if (redis_dir) {
        redis_stop();
    }
}


/*
 * Two gateways sharing the Redis: create_merchant= counts in "shared"
 * (falls back to a half share each), the status poll in "strict"
 * (on_error=deny, a burst no test reaches).
 */

static void
start_all(void)
{
    char  *pw, *conf;
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

    conf = str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s"
        "payments_limit_redis 127.0.0.1:%ld password_file=%s "
        "timeout=1s prefix=t%ld;\n"
        "payments_limit_zone shared size=64k rate=1r/m store=redis "
        "gateways=2;\n"
        "payments_limit_zone strict size=64k rate=1r/m store=redis "
        "on_error=deny;\n"
        "payments_limit create_merchant=shared burst=3;\n"
        "payments_limit pages=strict burst=1000;\n",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        redis_port, pw, (long) getpid());

    /* logs of their own: the suite's tests run two at a time */
    gateway_start(&gw_a, str_printf("rl-a-%ld", (long) getpid()), 1, conf);
    gateway_start(&gw_b, str_printf("rl-b-%ld", (long) getpid()), 1, conf);
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


static double
fallbacks(const gateway_t *gw, const char *zone)
{
    return metric_value(gw->origin,
               str_printf("payments_limit_store_fallbacks_total{zone=\"%s\"}",
                          zone));
}


static int
log_count(const gateway_t *gw, const char *needle)
{
    int     n;
    char   *text;
    size_t  len;
    const char  *p;

    text = file_read(gw->error_log, &len);
    if (text == NULL) {
        return 0;
    }

    n = 0;
    for (p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }

    return n;
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
                           "it"), 1);
    cr_assert_eq(log_count(&gw_b, "zones with store=redis decide without "
                           "it"), 1);
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

    pid = redis_pid();
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
