/*
 * The PSP misbehaving (API.md "Idempotency", last rules): 5xx, dropped
 * connections, hangs, refusals.  Faults are rules at the mock matching this
 * test's nonce only.
 */

#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

TestSuite(psp, .timeout = E2E_TIMEOUT);

/* Resets the mock: alone, after the others (ci/e2e.sh runs solo_* last). */
TestSuite(solo_psp_hang, .timeout = E2E_TIMEOUT);


/* A psp_unavailable answer: 502, 503 or 504. */
static void
expect_psp_unavailable(resp_t *r)
{
    cr_assert(r->status == 502 || r->status == 503 || r->status == 504,
              "expected 502/503/504 psp_unavailable, got %ld (%s): %s",
              r->status, r->error, r->body);
    expect_problem(r, r->status, "psp_unavailable");
}


/*
 * Posts under the same key until a 201, at most tries times; every other
 * answer must be psp_unavailable (the gateway may retry the PSP itself or
 * give up and let the client retry).  Returns the 201.
 */
static resp_t *
register_retrying(const merchant_t *m, const char *key, const char *body,
    int tries)
{
    int      i;
    resp_t  *r;

    for (i = 0; i < tries; i++) {
        r = api_post(m, key, body);

        if (r->status == 201) {
            return r;
        }

        expect_psp_unavailable(r);
        resp_free(r);
        msleep(200);
    }

    cr_assert_fail("no 201 after %d tries", tries);
    return NULL;
}


static const char *
token_of(resp_t *r)
{
    const char  *t;

    t = json_string_value(json_object_get(resp_json(r), "psp_token"));
    cr_assert(t != NULL && t[0] != '\0', "no psp_token: %s", r->body);
    return t;
}


/* The token GET /v1/checkouts/{id} shows. */
static char *
stored_token(const merchant_t *m, const char *co_id)
{
    resp_t      *r;
    const char  *t;

    r = api_get(m, str_printf("/v1/checkouts/%s", co_id));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    t = json_string_value(json_object_get(resp_json(r), "psp_token"));
    cr_assert_not_null(t, "no stored psp_token: %s", r->body);

    return strdup(t);
}


Test(psp, two_psp_500s_then_success_register_once)
{
    long         sessions, requests;
    char        *key, *co_id, *body;
    resp_t      *r, *again;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":2,"
                          "\"fail_status\":500}", nonce(&m, co_id)));

    r = register_retrying(&m, key, body, 4);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1, "one registration");
    cr_assert_eq(requests, 3, "two 500s and the success: %ld", requests);

    /* one token: the answer, the replay and the store agree */
    again = api_post(&m, key, body);
    cr_assert_eq(again->status, 201);
    cr_assert_str_eq(token_of(again), token_of(r));
    cr_assert_str_eq(stored_token(&m, co_id), token_of(r));
}


Test(psp, gives_up_with_psp_unavailable_and_stores_nothing_final)
{
    char        *key, *co_id, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    mock_fault(str_printf("{\"match\":\"%s\",\"fail_times\":1000,"
                          "\"fail_status\":500}", nonce(&m, co_id)));

    a = api_post(&m, key, body);
    expect_psp_unavailable(a);

    /* not a stored answer: the retry goes to the PSP again */
    b = api_post(&m, key, body);
    expect_psp_unavailable(b);
    cr_assert_null(resp_header(b, "Idempotent-Replayed"),
                   "a psp_unavailable must not be stored under the key");
}


Test(psp, a_drop_after_register_then_a_retry_keeps_one_token)
{
    long         sessions, requests;
    char        *key, *co_id, *body;
    resp_t      *r, *again;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    /* the mock creates the session, then drops the connection unanswered */
    mock_fault(str_printf("{\"match\":\"%s\",\"drop_after_register\":1}",
                          nonce(&m, co_id)));

    r = register_retrying(&m, key, body, 4);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1, "the retry must find the first session");
    cr_assert(requests >= 2, "the drop was not retried (%ld requests)",
              requests);

    again = api_post(&m, key, body);
    cr_assert_eq(again->status, 201);
    cr_assert_str_eq(token_of(again), token_of(r));
    cr_assert_str_eq(stored_token(&m, co_id), token_of(r));
}


Test(psp, a_refusal_402_is_a_201_failed_with_the_reason)
{
    size_t       i;
    char        *co_id;
    resp_t      *r;
    json_t      *j, *orders, *pay_url;
    merchant_t   m;
    const char  *failure;

    merchant_new(&m);
    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"refuse_status\":402}",
                          nonce(&m, co_id)));

    r = api_post(&m, uid("key"), body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "FAILED");
    cr_assert(json_is_false(json_object_get(j, "is_payment_done")));

    failure = json_string_value(json_object_get(json_object_get(j, "failure"),
                                                "message"));
    cr_assert(failure != NULL && failure[0] != '\0', "no failure: %s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(j, "failure"), "code")),
                     "registration_refused", "%s", r->body);

    pay_url = json_object_get(j, "pay_url");
    cr_assert(pay_url == NULL || json_is_null(pay_url),
              "a FAILED checkout has nothing to pay: %s", r->body);

    orders = json_object_get(j, "payment_orders");
    cr_assert_eq(json_array_size(orders), 2);

    for (i = 0; i < 2; i++) {
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(orders, i), "status")), "FAILED");
    }
}


Test(psp, a_refusal_is_stored_and_replayed)
{
    char        *key, *co_id, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    mock_fault(str_printf("{\"match\":\"%s\",\"refuse_status\":402}",
                          nonce(&m, co_id)));

    a = api_post(&m, key, body);
    cr_assert_eq(a->status, 201, "%ld %s", a->status, a->body);

    b = api_post(&m, key, body);
    cr_assert_eq(b->status, 201);
    cr_assert_str_eq(resp_header(b, "Idempotent-Replayed")
                     ? resp_header(b, "Idempotent-Replayed") : "", "true");
    cr_assert(a->len == b->len && memcmp(a->body, b->body, a->len) == 0);
}


Test(psp, a_credentials_refusal_is_a_502_and_stores_nothing)
{
    char        *key, *co_id, *body;
    resp_t      *a, *b;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    mock_fault(str_printf("{\"match\":\"%s\",\"refuse_status\":401}",
                          nonce(&m, co_id)));

    a = api_post(&m, key, body);
    expect_problem(a, 502, "psp_unavailable");

    b = api_post(&m, key, body);
    expect_problem(b, 502, "psp_unavailable");
    cr_assert_null(resp_header(b, "Idempotent-Replayed"));
}


/* --- egress pinned to the PSP's TLS public key (issue #4) ------------------ */

static resp_t *
register_on(const merchant_t *m, const char *co_id, const char *psp)
{
    json_t  *body;

    body = checkout_new(co_id, 1);
    json_object_set_new(body, "psp", json_string(psp));
    return api_post_json(m, body);
}


Test(psp, a_psp_whose_key_matches_one_of_its_pins_registers)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    r = register_on(&m, co_id, "mock_pinned");
    cr_assert_eq(r->status, 201, "%s", r->body);
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(sessions, 1);
}


Test(psp, a_psp_whose_key_matches_no_pin_fails_closed)
{
    long         sessions, requests;
    char        *co_id;
    resp_t      *r;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    r = register_on(&m, co_id, "mock_wrong_pin");
    expect_problem(r, 502, "psp_unavailable");

    /* no byte of the request reached the PSP, and it was not retried */
    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert_eq(requests, 0);
    cr_assert(file_contains(run_file("logs/error.log"),
                            "psp \"mock_wrong_pin\" failed the pin check"));
}


static gateway_t  tls_gw;


static void
stop_tls_gw(void)
{
    gateway_stop(&tls_gw);
}


static int
occurrences(const char *path, const char *needle)
{
    int          n;
    char        *text;
    const char  *p;

    text = file_read(path, NULL);
    cr_assert_not_null(text, "%s", path);

    n = 0;
    for (p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }

    return n;
}


/*
 * A PSP whose certificate does not verify (the suite's TLS front of the
 * mock, without its CA): every call fails, and why is at error in the
 * log with curl's words, once until the circuit opens again rather than
 * per call; nginx's "ignoring stale global SSL error" never follows.
 */
Test(psp, a_tls_failure_is_logged_with_its_cause_once_per_breaker_opening,
     .timeout = 30, .fini = stop_tls_gw)
{
    int          i;
    char        *co_id;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;
    const char  *run = env("PAY_TEST_RUN");

    gateway_start(&tls_gw, "tlsfail", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "payments_psp tls_unverified dialect=stripe url=%s/psp-tls\n"
        "    secret_file=%s/conf/psp.secret\n"
        "    webhook_secret_file=%s/conf/webhook.secret\n"
        "    hosted=%s stripe_version=2024-06-20 allow_http\n"
        "    timeout=1s connect_timeout=1s retries=0 breaker=2 "
        "breaker_open=1s;\n",
        pg_gateway_conninfo(), env("PAY_TEST_GW"), run, run,
        env("PAY_TEST_MOCK")));
    gateway_wait_ready(&tls_gw, 10);

    merchant_new(&m);

    /* two failures open the circuit, the next two are refused at once */
    for (i = 0; i < 4; i++) {
        co_id = uid("co");
        body = checkout_new(co_id, 1);
        json_object_set_new(body, "psp", json_string("tls_unverified"));
        r = gateway_send(&tls_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                         dump(body));
        cr_assert(r->status == 502 || r->status == 503, "%ld %s", r->status,
                  r->body);
        resp_free(r);
    }

    cr_assert_eq(occurrences(tls_gw.error_log, "TLS failed"), 1,
                 "not logged once:\n%s", file_read(tls_gw.error_log, NULL));
    cr_assert(file_contains(tls_gw.error_log, "[error]"));
    cr_assert(file_contains(tls_gw.error_log, "psp \"tls_unverified\": TLS "
                                              "failed: SSL certificate "
                                              "problem"),
              "%s", file_read(tls_gw.error_log, NULL));

    /* the circuit's probe after breaker_open= fails the same way: logged
     * again, once */
    msleep(1200);
    co_id = uid("co");
    body = checkout_new(co_id, 1);
    json_object_set_new(body, "psp", json_string("tls_unverified"));
    r = gateway_send(&tls_gw, "POST", PATH_PAYMENTS, &m, uid("key"),
                     dump(body));
    cr_assert_eq(r->status, 502, "the probe: %ld %s", r->status, r->body);
    resp_free(r);

    cr_assert_eq(occurrences(tls_gw.error_log, "TLS failed"), 2,
                 "%s", file_read(tls_gw.error_log, NULL));
    cr_assert_eq(occurrences(tls_gw.error_log, "stale global SSL error"), 0,
                 "%s", file_read(tls_gw.error_log, NULL));
}


/* registers a checkout at psp on gw: its status */
static long
register_at(const gateway_t *gw, const merchant_t *m, const char *psp)
{
    long     status;
    json_t  *body;
    resp_t  *r;

    body = checkout_new(uid("co"), 1);
    json_object_set_new(body, "psp", json_string(psp));
    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(body));
    status = r->status;
    resp_free(r);

    return status;
}


/*
 * A worker's TLS calls read no CA file: the system's CAs (a PSP without
 * ca_file=) and a PSP's ca_file= are read and parsed when the
 * configuration is (doc/ngx_http_payments_module.md, payments_psp
 * ca_file=), and every connection verifies with the store made then.
 * libcurl left to itself (Debian's 7.88) opened and parsed the whole system
 * bundle (/etc/ssl/certs/ca-certificates.crt, 144 certificates) for each
 * new connection, in the worker's event loop: about 20 ms each.  strace on
 * the worker watches five new connections under the system's CAs (the
 * suite's TLS front, which they do not trust: each handshake fails, so no
 * connection is kept) after one verified under ca_file=: no CA file
 * opened, every connect seen.  And the trusts stay apart: the connection
 * or TLS session made under the PSP's ca_file= is never taken for a call
 * under the system's CAs to the same server, which is refused every time.
 */
Test(psp, tls_calls_open_no_ca_file_in_the_worker_and_trusts_stay_apart,
     .timeout = 60, .fini = stop_tls_gw)
{
    int          i, st, opens, connects;
    long         worker;
    char        *trace, *text, *line, *next;
    pid_t        tracer;
    merchant_t   m;
    const char  *run = env("PAY_TEST_RUN");

    gateway_start(&tls_gw, "tlsca", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_sweeper off;\n"
        "payments_psp tls_system dialect=stripe url=%s/psp-tls\n"
        "    secret_file=%s/conf/psp.secret\n"
        "    webhook_secret_file=%s/conf/webhook.secret\n"
        "    hosted=%s stripe_version=2024-06-20 allow_http\n"
        "    timeout=2s connect_timeout=1s retries=0 breaker=0;\n"
        "payments_psp tls_own dialect=stripe url=%s/psp-tls\n"
        "    secret_file=%s/conf/psp.secret\n"
        "    webhook_secret_file=%s/conf/webhook.secret\n"
        "    hosted=%s stripe_version=2024-06-20 allow_http\n"
        "    ca_file=%s/conf/tls.crt\n"
        "    timeout=2s connect_timeout=1s retries=0 breaker=0;\n",
        pg_gateway_conninfo(), env("PAY_TEST_GW"), run, run,
        env("PAY_TEST_MOCK"), env("PAY_TEST_GW"), run, run,
        env("PAY_TEST_MOCK"), run));
    gateway_wait_ready(&tls_gw, 10);
    merchant_new(&m);

    worker = gateway_worker(&tls_gw);
    trace = run_file(str_printf("tlsca-strace-%ld", (long) getpid()));
    tracer = worker_trace_start(worker, "trace=open,openat,connect", trace);

    /* verified under ca_file=: a connection (and a TLS session) at the
     * front for that trust */
    cr_assert_eq(register_at(&tls_gw, &m, "tls_own"), 201);

    for (i = 0; i < 5; i++) {
        st = (int) register_at(&tls_gw, &m, "tls_system");
        cr_assert_eq(st, 502, "call %d under the system's CAs to a server "
                     "they do not trust: %d (a connection or session made "
                     "under ca_file= taken?)", i, st);
    }

    /* and the trusted one still verifies after them */
    cr_assert_eq(register_at(&tls_gw, &m, "tls_own"), 201);

    text = worker_trace_stop(tracer, trace);

    opens = 0;
    connects = 0;

    for (line = text; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }

        if (strstr(line, "connect(") && strstr(line, "127.0.0.1")) {
            connects++;
        }

        if ((strstr(line, "open(") || strstr(line, "openat("))
            && (strstr(line, "/etc/ssl/") || strstr(line, "/usr/lib/ssl/")
                || strstr(line, "tls.crt")))
        {
            opens++;
            cr_log_error("the worker opened a CA file: %s", line);
        }
    }

    /* the six calls' own connections, at least: strace saw them */
    cr_assert_geq(connects, 6, "strace saw %d connects:\n%s", connects,
                  file_read(trace, NULL));
    cr_assert_eq(opens, 0, "the worker opened a CA file %d times over 6 "
                 "new TLS connections", opens);
    cr_assert(file_contains(tls_gw.error_log, "psp \"tls_system\": TLS "
                                              "failed: SSL certificate "
                                              "problem"),
              "%s", file_read(tls_gw.error_log, NULL));
}


/*
 * A PSP host whose DNS never answers: build/slow_dns.so makes the
 * getaddrinfo() of psp.slow.test sleep 6 s in the gateway (curl's resolver
 * thread), then creates a mark file.  The registration times out after 1 s;
 * before CURLOPT_QUICK_EXIT libcurl then waited for the lookup's thread
 * inside the worker's event loop, so the answer came after the lookup ended
 * (the mark there) and the worker served nothing meanwhile.
 */
Test(psp, a_name_lookup_that_hangs_never_holds_the_worker, .timeout = 60)
{
    int           i;
    char         *mark, *so;
    const char   *run = env("PAY_TEST_RUN");
    json_t       *body;
    resp_t       *r;
    gateway_t     gw;
    merchant_t    m;
    struct stat   st;

    so = build_file("slow_dns.so");
    cr_assert_eq(stat(so, &st), 0, "%s (make build/slow_dns.so)", so);
    /* the worker may run as nobody: a directory it can write in */
    mark = run_file(str_printf("dns-mark-%ld", (long) getpid()));
    cr_assert_eq(mkdir(mark, 0777), 0, "%s", mark);
    cr_assert_eq(chmod(mark, 0777), 0, "%s", mark);
    mark = str_printf("%s/lookup.done", mark);

    gateway_start_env(&gw, "slow-dns", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_sweeper off;\n"
        "payments_psp slow_dns dialect=stripe url=https://psp.slow.test\n"
        "    secret_file=%s/conf/psp.secret\n"
        "    webhook_secret_file=%s/conf/webhook.secret\n"
        "    hosted=https://psp.slow.test stripe_version=2024-06-20\n"
        "    timeout=1s connect_timeout=1s retries=0;\n",
        pg_gateway_conninfo(), run, run),
        str_printf("SLOW_DNS_HOST=psp.slow.test SLOW_DNS_SECONDS=6 "
                   "SLOW_DNS_MARK='%s' LD_PRELOAD='%s'", mark, so));
    gateway_wait_ready(&gw, 10);

    merchant_new(&m);
    body = checkout_new(uid("co"), 1);
    json_object_set_new(body, "psp", json_string("slow_dns"));
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, uid("key"), dump(body));
    cr_expect(r->status == 502 || r->status == 504, "%ld %s", r->status,
              r->body);
    cr_expect_neq(stat(mark, &st), 0,
                  "the answer waited for the name lookup to end");

    /* and the worker serves meanwhile */
    r = gateway_get(&gw, "/healthz");
    cr_expect_eq(r->status, 200, "%s", r->body);
    cr_expect_neq(stat(mark, &st), 0,
                  "/healthz waited for the name lookup to end");
    /* the lookup did run, and ended later */
    for (i = 0; i < 100 && stat(mark, &st) != 0; i++) {
        msleep(100);
    }
    cr_expect_eq(stat(mark, &st), 0, "the shim's lookup never ended");

    gateway_stop(&gw);
}


/* a registration posted from a thread, and when its answer came */
typedef struct {
    gateway_t        *gw;
    const merchant_t *m;
    char             *body;
    resp_t           *r;
    struct timespec   end;
} psp_job_t;


static void *
psp_job_post(void *arg)
{
    psp_job_t  *j = arg;

    j->r = gateway_send(j->gw, "POST", PATH_PAYMENTS, j->m, uid("key"),
                        j->body);
    clock_gettime(CLOCK_MONOTONIC, &j->end);

    return NULL;
}


static long
ms_between(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}


/*
 * A PSP call that starts while another waits on its timeout starts at
 * once.  libcurl asks to be woken "now" for a transfer just added, and
 * nginx keeps an armed timer whose new expiry is within 300 ms of the old
 * one (NGX_TIMER_LAZY_DELAY): re-armed without being deleted, the worker's
 * curl timer held the new call until the first one's timeout fired.
 */
Test(solo_psp_hang, a_call_starts_at_once_while_another_waits_on_its_timeout,
     .timeout = 60)
{
    int               i;
    long              sessions, requests;
    char             *slow, *at, *co_a;
    json_t           *a, *b;
    resp_t           *r;
    gateway_t         gw;
    psp_job_t         job;
    pthread_t         t;
    merchant_t        m;
    struct timespec   b_start, b_end;

    /* the slow PSP times out after 290 ms; the other answers at once */
    slow = gw_psp_conf("lazy_slow", "stripe");
    at = strstr(slow, "timeout=1s ");
    cr_assert_not_null(at);
    *at = '\0';
    slow = str_printf("%stimeout=290ms retries=0 breaker=0 %s", slow,
                      at + sizeof("timeout=1s ") - 1);

    gateway_start(&gw, "lazytimer", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n"
        "%s%s",
        pg_gateway_conninfo(), slow, gw_psp_conf("lazy_fast", "stripe")));
    gateway_wait_ready(&gw, 10);

    merchant_new(&m);
    co_a = uid("co");
    mock_fault(str_printf("{\"match\":\"%s:%s\",\"hang_ms\":2000}", m.id,
                          co_a));

    a = checkout_new(co_a, 1);
    json_object_set_new(a, "psp", json_string("lazy_slow"));
    job.gw = &gw;
    job.m = &m;
    job.body = dump(a);
    cr_assert_eq(pthread_create(&t, NULL, psp_job_post, &job), 0);

    /* the first call is at the PSP, the worker's curl timer armed about
     * 200 ms ahead for it; then the second starts */
    for (i = 0; i < 400; i++) {
        mock_registrations(nonce(&m, co_a), &sessions, &requests);
        if (requests > 0) {
            break;
        }
        msleep(5);
    }
    cr_assert(requests > 0, "the first call never reached the PSP");
    b = checkout_new(uid("co"), 1);
    json_object_set_new(b, "psp", json_string("lazy_fast"));
    clock_gettime(CLOCK_MONOTONIC, &b_start);
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, uid("key"), dump(b));
    clock_gettime(CLOCK_MONOTONIC, &b_end);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    resp_free(r);

    pthread_join(t, NULL);
    expect_psp_unavailable(job.r);
    resp_free(job.r);

    /* answered at once (tens of ms), not when the timer armed for the
     * first call fires (about 190 ms after the second started) */
    cr_assert(ms_between(&b_start, &b_end) < 120,
              "the second registration took %ld ms: it waited for the first "
              "one's timeout", ms_between(&b_start, &b_end));

    gateway_stop(&gw);
}


/*
 * A hang rule applies to every request it matches, so the PSP "recovers"
 * by a mock reset, which is why this suite runs alone.
 */
Test(solo_psp_hang, a_hanging_psp_is_a_504_and_a_retry_succeeds)
{
    long         sessions, requests;
    char        *key, *co_id, *body;
    resp_t      *a;
    merchant_t   m;

    merchant_new(&m);
    key = uid("key");
    co_id = uid("co");
    body = body_for(co_id);
    /* each hang outlasts the PSP timeout (1 s in the test config) */
    mock_fault(str_printf("{\"match\":\"%s\",\"hang_ms\":3000}",
                          nonce(&m, co_id)));

    a = api_post(&m, key, body);
    expect_problem(a, 504, "psp_unavailable");
    cr_assert(a->seconds < 10.0, "the 504 took %.1f s", a->seconds);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_assert(requests >= 1, "the PSP was never called");
    cr_assert_eq(sessions, 0);

    /* the PSP is well again */
    mock_reset();

    resp_free(register_retrying(&m, key, body, 4));

    mock_registrations(nonce(&m, co_id), &sessions, NULL);
    cr_assert_eq(sessions, 1);
}
