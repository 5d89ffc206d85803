/*
 * Tests of the mock PSP, black box: every test starts its own mock
 * (build/mock_psp, or $MOCK_PSP_BIN) on a free loopback port, talks HTTP
 * to it with libcurl, then stops it with SIGTERM and requires a clean exit
 * and a stderr free of sanitizer reports.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ec.h>
#include <openssl/pem.h>


#define SECRET      "sk_test_mock_secret"
#define SUCCESS     "https://shop.example/ok?session={CHECKOUT_SESSION_ID}"
#define CANCEL      "https://shop.example/cart"

/* AUTH_* select the Authorization header a request carries. */
#define AUTH_NONE   0
#define AUTH_GOOD   1
#define AUTH_BAD    2


typedef struct {
    CURLcode     rc;
    long         status;
    char        *body;
    size_t       len;
    char         location[2048];
    char         retry_after[32];
    int          replayed;
    json_t      *json;
} resp_t;


static pid_t  mock_pid;
static char   mock_url[128];
static char   mock_transfers_url[128];     /* --adyen-transfers-port */
static char   mock_log_path[512];


/* extra: more arguments for the mock, NULL-terminated, or NULL. */
static void
mock_start_with(const char *const *extra)
{
    int          out[2], lines;
    char         line[512], *p, *q;
    size_t       n, e;
    ssize_t      got;
    const char  *bin, *logs;
    struct pollfd  pfd;

    bin = getenv("MOCK_PSP_BIN");
    if (bin == NULL) {
        bin = "build/mock_psp";
    }

    logs = getenv("MOCK_PSP_LOGS");
    if (logs == NULL) {
        logs = "build/mock_psp_logs";
    }

    (void) mkdir(logs, 0755);
    snprintf(mock_log_path, sizeof(mock_log_path), "%s/mock-%d.stderr",
             logs, (int) getpid());

    cr_assert_eq(pipe(out), 0);

    mock_pid = fork();
    cr_assert_neq(mock_pid, -1);

    if (mock_pid == 0) {
        int  fd;

        /* the mock must not outlive a test that crashes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);

        fd = open(mock_log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            _exit(120);
        }
        dup2(out[1], STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(fd);

        setenv("UBSAN_OPTIONS", "print_stacktrace=1", 0);

        {
            size_t       i, k;
            const char  *argv[64];

            k = 0;
            argv[k++] = bin;
            argv[k++] = "--port";
            argv[k++] = "0";
            argv[k++] = "--stripe-secret";
            argv[k++] = SECRET;
            for (i = 0; extra != NULL && extra[i] != NULL && k < 63; i++) {
                argv[k++] = extra[i];
            }
            argv[k] = NULL;

            execv(bin, (char *const *) argv);
        }
        _exit(127);
    }

    close(out[1]);

    /* the first stdout line names the URL: "mock_psp listening on URL";
     * with --adyen-transfers-port a second one names the Transfers API's */
    lines = 1;
    for (e = 0; extra != NULL && extra[e] != NULL; e++) {
        if (strcmp(extra[e], "--adyen-transfers-port") == 0) {
            lines = 2;
        }
    }

    n = 0;
    pfd.fd = out[0];
    pfd.events = POLLIN;
    line[0] = '\0';
    mock_transfers_url[0] = '\0';

    while (n < sizeof(line) - 1
           && (memchr(line, '\n', n) == NULL
               || (lines == 2
                   && (q = memchr(line, '\n', n)) != NULL
                   && memchr(q + 1, '\n', n - (size_t) (q + 1 - line))
                      == NULL)))
    {
        cr_assert_gt(poll(&pfd, 1, 10000), 0, "mock_psp did not start");
        got = read(out[0], line + n, sizeof(line) - 1 - n);
        cr_assert_gt(got, 0, "mock_psp exited at start, see %s",
                     mock_log_path);
        n += (size_t) got;
    }

    close(out[0]);
    line[n] = '\0';

    if (lines == 2) {
        q = strstr(line, "adyen transfers listening on ");
        cr_assert_not_null(q, "no transfers line: %s", line);
        q += strlen("adyen transfers listening on ");
        snprintf(mock_transfers_url, sizeof(mock_transfers_url), "%.*s",
                 (int) strcspn(q, "\n"), q);
    }

    p = strstr(line, " on ");
    cr_assert_not_null(p, "unexpected first line: %s", line);
    p += 4;
    p[strcspn(p, "\n")] = '\0';
    snprintf(mock_url, sizeof(mock_url), "%s", p);
}


static void
mock_start(void)
{
    mock_start_with(NULL);
}


static void
mock_stop(void)
{
    int      status, i;
    pid_t    pid;
    FILE    *f;
    char     buf[4096];
    size_t   n;
    int      clean;

    if (mock_pid <= 0) {
        return;
    }

    kill(mock_pid, SIGTERM);

    /* bounded: the mock promises to exit promptly even with hung clients */
    for (i = 0; i < 100; i++) {
        pid = waitpid(mock_pid, &status, WNOHANG);
        if (pid == mock_pid) {
            break;
        }
        usleep(100 * 1000);
    }

    if (i == 100) {
        kill(mock_pid, SIGKILL);
        waitpid(mock_pid, &status, 0);
        mock_pid = 0;
        cr_assert_fail("mock_psp did not exit within 10 s of SIGTERM");
    }

    mock_pid = 0;

    clean = 1;
    f = fopen(mock_log_path, "r");
    cr_assert_not_null(f);

    while (fgets(buf, sizeof(buf), f) != NULL) {
        if (strstr(buf, "Sanitizer") != NULL
            || strstr(buf, "runtime error:") != NULL)
        {
            clean = 0;
        }
    }

    if (!clean) {
        rewind(f);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
            fwrite(buf, 1, n, stderr);
        }
    }

    fclose(f);

    cr_assert(clean, "sanitizer report in %s", mock_log_path);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "mock_psp exit status %d, see %s", status, mock_log_path);

    unlink(mock_log_path);
}


static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    resp_t  *r;
    char    *p;

    r = arg;
    p = realloc(r->body, r->len + size * nmemb + 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p + r->len, data, size * nmemb);
    r->body = p;
    r->len += size * nmemb;
    r->body[r->len] = '\0';

    return size * nmemb;
}


static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    resp_t  *r;
    size_t   len;

    r = arg;
    len = size * nmemb;

    if (len > 10 && strncasecmp(data, "Location: ", 10) == 0) {
        snprintf(r->location, sizeof(r->location), "%.*s",
                 (int) (len - 10), data + 10);
        r->location[strcspn(r->location, "\r\n")] = '\0';
    }

    if (len > 13 && strncasecmp(data, "Retry-After: ", 13) == 0) {
        snprintf(r->retry_after, sizeof(r->retry_after), "%.*s",
                 (int) (len - 13), data + 13);
        r->retry_after[strcspn(r->retry_after, "\r\n")] = '\0';
    }

    if (len >= 25 && strncasecmp(data, "Idempotent-Replayed: true", 25) == 0)
    {
        r->replayed = 1;
    }

    return len;
}


/* A fresh handle per request: no reused connection, no silent retry. */
static CURL *
prepare(resp_t *r, struct curl_slist **hdrs, const char *method,
    const char *path, int auth, const char *key, const char *ctype,
    const char *body)
{
    CURL  *h;
    char   url[4096], line[512];

    memset(r, 0, sizeof(*r));
    *hdrs = NULL;

    h = curl_easy_init();
    cr_assert_not_null(h);

    snprintf(url, sizeof(url), "%s%s", mock_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    }

    if (auth != AUTH_NONE) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s",
                 auth == AUTH_GOOD ? SECRET : "sk_test_wrong");
        *hdrs = curl_slist_append(*hdrs, line);
    }

    if (key != NULL) {
        snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
        *hdrs = curl_slist_append(*hdrs, line);
    }

    if (ctype != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        *hdrs = curl_slist_append(*hdrs, line);
    }

    /* no 100-continue round trip */
    *hdrs = curl_slist_append(*hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);

    return h;
}


static void
finish(resp_t *r, CURL *h, struct curl_slist *hdrs)
{
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);

    if (r->body != NULL) {
        r->json = json_loadb(r->body, r->len, 0, NULL);
    }
}


static void
request(resp_t *r, const char *method, const char *path, int auth,
    const char *key, const char *ctype, const char *body)
{
    CURL               *h;
    struct curl_slist  *hdrs;

    h = prepare(r, &hdrs, method, path, auth, key, ctype, body);
    r->rc = curl_easy_perform(h);
    finish(r, h, hdrs);
}


static void
resp_free(resp_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}


/* POST /v1/checkout/sessions with a good key and a form body. */
static void
create(resp_t *r, const char *key, const char *body)
{
    request(r, "POST", "/v1/checkout/sessions", AUTH_GOOD, key,
            "application/x-www-form-urlencoded", body);
}


static void
form(char *buf, size_t size, const char *ref, long amount,
    const char *extra)
{
    snprintf(buf, size,
             "mode=payment"
             "&success_url=https%%3A%%2F%%2Fshop.example%%2Fok%%3Fsession%%3D"
             "%%7BCHECKOUT_SESSION_ID%%7D"
             "&cancel_url=" CANCEL
             "&line_items%%5B0%%5D%%5Bprice_data%%5D%%5Bcurrency%%5D=USD"
             "&line_items[0][price_data][unit_amount]=%ld"
             "&line_items[0][price_data][product_data][name]=Order+po_1"
             "&line_items[0][quantity]=1"
             "&line_items[1][price_data][currency]=usd"
             "&line_items[1][price_data][unit_amount]=500"
             "&line_items[1][price_data][product_data][name]=Order+po_2"
             "&line_items[1][quantity]=2"
             "&client_reference_id=%s"
             "&metadata[checkout]=co%%207f3a%%26x"
             "%s",
             amount, ref, extra ? extra : "");
}


static void
control(resp_t *r, const char *method, const char *path, const char *json)
{
    request(r, method, path, AUTH_NONE, NULL,
            json ? "application/json" : NULL, json);
}


static void
fault(const char *json)
{
    resp_t  r;

    control(&r, "POST", "/_control/faults", json);
    cr_assert_eq(r.status, 200, "fault %s: %ld %s", json, r.status, r.body);
    cr_assert(json_integer_value(json_object_get(r.json, "id")) > 0);
    resp_free(&r);
}


static void
registrations(const char *key, long long *created, long long *requests)
{
    resp_t  r;
    char    path[512];
    char   *esc;

    esc = curl_easy_escape(NULL, key, 0);
    snprintf(path, sizeof(path), "/_control/registrations?key=%s", esc);
    curl_free(esc);

    control(&r, "GET", path, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "key")), key);
    *created = json_integer_value(json_object_get(r.json, "sessions_created"));
    *requests = json_integer_value(json_object_get(r.json, "requests"));
    resp_free(&r);
}


static const char *
str(const resp_t *r, const char *name)
{
    return json_string_value(json_object_get(r->json, name));
}


static const char *
error_field(const resp_t *r, const char *name)
{
    return json_string_value(json_object_get(json_object_get(r->json,
                                                             "error"),
                                             name));
}


static double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}


/* Creates a session with key and returns its id (static buffer). */
static const char *
create_ok(const char *key, long amount)
{
    resp_t       r;
    char         body[2048];
    static char  id[64];

    form(body, sizeof(body), key, amount, NULL);
    create(&r, key, body);
    cr_assert_eq(r.status, 200, "create: %ld %s", r.status, r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    return id;
}


/*
 * Criterion ignores a failed assertion in a .fini fixture, so the exit and
 * sanitizer checks run at the end of each test body; the fixture only
 * cleans up after a test that failed halfway.
 */
static void
mock_kill(void)
{
    if (mock_pid > 0) {
        kill(mock_pid, SIGKILL);
        waitpid(mock_pid, NULL, 0);
        mock_pid = 0;
    }
}


#define MOCK_TEST(name)                                                      \
    static void name##_body(void);                                          \
    Test(mock_psp, name, .init = mock_start, .fini = mock_kill,             \
         .timeout = 60)                                                     \
    {                                                                        \
        name##_body();                                                       \
        mock_stop();                                                         \
    }                                                                        \
    static void name##_body(void)


MOCK_TEST(refuses_a_missing_or_wrong_api_key_with_401)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    form(body, sizeof(body), "m1:co_auth", 1000, NULL);

    request(&r, "POST", "/v1/checkout/sessions", AUTH_NONE, "m1:co_auth",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(error_field(&r, "type"), "invalid_request_error");
    cr_assert_str_eq(error_field(&r, "message"), "Invalid API Key provided");
    resp_free(&r);

    request(&r, "POST", "/v1/checkout/sessions", AUTH_BAD, "m1:co_auth",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    request(&r, "GET", "/v1/checkout/sessions/cs_test_x", AUTH_BAD, NULL,
            NULL, NULL);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    registrations("m1:co_auth", &created, &requests);
    cr_assert_eq(created, 0);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(creates_a_session_and_retrieves_it)
{
    resp_t       r, g;
    char         body[2048], url[256], path[256];
    const char  *id;
    size_t       i;

    form(body, sizeof(body), "m1:co_create", 1000, NULL);
    create(&r, "m1:co_create", body);

    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not(r.replayed);

    id = str(&r, "id");
    cr_assert_not_null(id);
    cr_assert_eq(strlen(id), 8 + 24);
    cr_assert_eq(strncmp(id, "cs_test_", 8), 0);
    for (i = 8; id[i]; i++) {
        cr_assert(isalnum((unsigned char) id[i]), "id %s", id);
    }

    snprintf(url, sizeof(url), "%s/pay/%s", mock_url, id);
    cr_assert_str_eq(str(&r, "url"), url);
    cr_assert_str_eq(str(&r, "object"), "checkout.session");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "amount_total")),
                 1000 + 2 * 500);
    cr_assert_str_eq(str(&r, "currency"), "usd");
    cr_assert_str_eq(str(&r, "status"), "open");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
    cr_assert_str_eq(str(&r, "client_reference_id"), "m1:co_create");
    cr_assert_str_eq(str(&r, "success_url"), SUCCESS);
    cr_assert_str_eq(str(&r, "cancel_url"), CANCEL);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(r.json, "metadata"), "checkout")),
                     "co 7f3a&x");
    cr_assert(json_integer_value(json_object_get(r.json, "expires_at"))
              > time(NULL) + 23 * 3600);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&g, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(g.status, 200);
    cr_assert(json_equal(g.json, r.json), "retrieved %s", g.body);
    resp_free(&g);

    request(&g, "GET", "/v1/checkout/sessions/cs_test_unknown", AUTH_GOOD,
            NULL, NULL, NULL);
    cr_assert_eq(g.status, 404);
    cr_assert_str_eq(error_field(&g, "code"), "resource_missing");
    resp_free(&g);

    resp_free(&r);
}


MOCK_TEST(replays_the_stored_response_for_the_same_key_and_body)
{
    resp_t     a, b;
    char       body[2048];
    long long  created, requests;

    form(body, sizeof(body), "m1:co_replay", 1000, NULL);

    create(&a, "m1:co_replay", body);
    cr_assert_eq(a.status, 200);

    create(&b, "m1:co_replay", body);
    cr_assert_eq(b.status, 200);
    cr_assert(b.replayed, "no Idempotent-Replayed: true");
    cr_assert_str_eq(b.body, a.body, "the replay must be byte-identical");

    registrations("m1:co_replay", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);

    resp_free(&a);
    resp_free(&b);
}


MOCK_TEST(refuses_the_same_key_with_other_parameters)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    (void) create_ok("m1:co_reuse", 1000);

    form(body, sizeof(body), "m1:co_reuse", 1500, NULL);
    create(&r, "m1:co_reuse", body);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_field(&r, "type"), "idempotency_error");
    resp_free(&r);

    registrations("m1:co_reuse", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(answers_409_while_the_first_request_with_the_key_runs)
{
    int         i, running, n200, n409;
    long        status;
    char        body[2048];
    CURL       *h[2];
    CURLM      *m;
    resp_t      r[2];
    CURLMsg    *msg;
    long long   created, requests;
    struct curl_slist  *hdrs[2];

    fault("{\"match\":\"slow-\",\"latency_ms\":800}");
    form(body, sizeof(body), "slow-1", 1000, NULL);

    m = curl_multi_init();
    for (i = 0; i < 2; i++) {
        h[i] = prepare(&r[i], &hdrs[i], "POST", "/v1/checkout/sessions",
                       AUTH_GOOD, "slow-1",
                       "application/x-www-form-urlencoded", body);
        curl_multi_add_handle(m, h[i]);
    }

    do {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
    } while (running > 0);

    while ((msg = curl_multi_info_read(m, &i)) != NULL) {
        cr_assert_eq(msg->data.result, CURLE_OK);
    }

    n200 = 0;
    n409 = 0;
    for (i = 0; i < 2; i++) {
        curl_multi_remove_handle(m, h[i]);
        finish(&r[i], h[i], hdrs[i]);
        status = r[i].status;
        if (status == 200) {
            n200++;
        } else if (status == 409) {
            n409++;
            cr_assert_str_eq(error_field(&r[i], "type"), "idempotency_error");
            cr_assert_str_eq(error_field(&r[i], "code"),
                             "idempotency_key_in_use");
        }
        resp_free(&r[i]);
    }
    curl_multi_cleanup(m);

    cr_assert_eq(n200, 1);
    cr_assert_eq(n409, 1);

    registrations("slow-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(fails_fail_times_with_fail_status_then_succeeds)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    fault("{\"match\":\"ft-\",\"fail_times\":2}");
    form(body, sizeof(body), "m1:ft-1", 1000, NULL);

    create(&r, "m1:ft-1", body);
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(error_field(&r, "type"), "api_error");
    resp_free(&r);

    create(&r, "m1:ft-1", body);
    cr_assert_eq(r.status, 500);
    resp_free(&r);

    create(&r, "m1:ft-1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not(r.replayed);
    resp_free(&r);

    registrations("m1:ft-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 3);
}


MOCK_TEST(fail_every_fails_every_nth_attempt_of_the_rule)
{
    int     i;
    resp_t  r;
    char    body[2048], key[32];
    int     failed;

    fault("{\"match\":\"fe2-\",\"fail_every\":2,\"fail_status\":503}");

    /* ten checkouts, one attempt each: every second one fails */
    failed = 0;

    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "m1:fe2-%d", i);
        form(body, sizeof(body), key, 1000, NULL);
        create(&r, key, body);
        cr_assert(r.status == 200 || r.status == 503, "%d: %ld", i,
                  (long) r.status);
        failed += (r.status == 503);
        cr_assert_eq(r.status == 503, i % 2 == 1, "attempt %d", i + 1);
        resp_free(&r);
    }

    cr_assert_eq(failed, 5);
}


MOCK_TEST(retry_after_goes_with_the_failures_only)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"ra-\",\"fail_times\":1,\"fail_status\":429,"
          "\"retry_after\":7}");
    form(body, sizeof(body), "m1:ra-1", 1000, NULL);

    create(&r, "m1:ra-1", body);
    cr_assert_eq(r.status, 429);
    cr_assert_str_eq(r.retry_after, "7");
    resp_free(&r);

    create(&r, "m1:ra-1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.retry_after, "");
    resp_free(&r);
}


MOCK_TEST(hang_times_hangs_only_the_next_n_requests)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"ht-\",\"hang_ms\":300,\"hang_times\":1}");
    form(body, sizeof(body), "m1:ht-1", 1000, NULL);

    create(&r, "m1:ht-1", body);
    cr_assert_neq(r.rc, CURLE_OK, "the first request was answered");
    resp_free(&r);

    create(&r, "m1:ht-1", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
}


MOCK_TEST(fail_every_of_one_is_refused)
{
    resp_t  r;

    control(&r, "POST", "/_control/faults", "{\"fail_every\":1}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(fail_status_is_configurable)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"ft503\",\"fail_times\":1,\"fail_status\":503}");
    form(body, sizeof(body), "ft503", 1000, NULL);

    create(&r, "ft503", body);
    cr_assert_eq(r.status, 503);
    resp_free(&r);

    create(&r, "ft503", body);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}


MOCK_TEST(drop_after_register_creates_drops_and_the_retry_replays)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;

    fault("{\"match\":\"drop-\",\"drop_after_register\":1}");
    form(body, sizeof(body), "m1:drop-1", 1000, NULL);

    create(&r, "m1:drop-1", body);
    cr_assert_eq(r.rc, CURLE_GOT_NOTHING, "curl: %s",
                 curl_easy_strerror(r.rc));
    resp_free(&r);

    registrations("m1:drop-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 1);

    create(&r, "m1:drop-1", body);
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert(r.replayed, "the retry must get the stored session");
    cr_assert_str_eq(str(&r, "client_reference_id"), "m1:drop-1");
    resp_free(&r);

    registrations("m1:drop-1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(refuse_status_402_refuses_for_good_with_a_card_error)
{
    resp_t     r;
    char       body[2048];
    long long  created, requests;
    int        i;

    fault("{\"match\":\"declined\",\"refuse_status\":402}");
    form(body, sizeof(body), "m1:declined", 1000, NULL);

    for (i = 0; i < 2; i++) {
        create(&r, "m1:declined", body);
        cr_assert_eq(r.status, 402);
        cr_assert_str_eq(error_field(&r, "type"), "card_error");
        cr_assert_str_eq(error_field(&r, "code"), "card_declined");
        cr_assert_not_null(strstr(error_field(&r, "message"), "declined"));
        resp_free(&r);
    }

    registrations("m1:declined", &created, &requests);
    cr_assert_eq(created, 0);
    cr_assert_eq(requests, 2);
}


MOCK_TEST(hang_ms_closes_the_connection_without_an_answer)
{
    resp_t     r;
    char       body[2048];
    double     t0, elapsed;
    long long  created, requests;

    fault("{\"match\":\"hang-\",\"hang_ms\":400}");
    form(body, sizeof(body), "hang-1", 1000, NULL);

    t0 = now_ms();
    create(&r, "hang-1", body);
    elapsed = now_ms() - t0;

    cr_assert_eq(r.rc, CURLE_GOT_NOTHING, "curl: %s",
                 curl_easy_strerror(r.rc));
    cr_assert_geq(elapsed, 380.0);
    resp_free(&r);

    registrations("hang-1", &created, &requests);
    cr_assert_eq(created, 0);
    cr_assert_eq(requests, 1);
}


MOCK_TEST(a_hung_connection_does_not_delay_the_exit)
{
    CURL               *h;
    CURLM              *m;
    resp_t              r;
    char                body[2048];
    int                 running, i;
    double              t0;
    struct curl_slist  *hdrs;

    fault("{\"match\":\"\",\"hang_ms\":60000}");
    form(body, sizeof(body), "forever", 1000, NULL);

    m = curl_multi_init();
    h = prepare(&r, &hdrs, "POST", "/v1/checkout/sessions", AUTH_GOOD,
                "forever", "application/x-www-form-urlencoded", body);
    curl_multi_add_handle(m, h);

    /* let the request reach the mock's handler */
    for (i = 0; i < 5; i++) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }

    t0 = now_ms();
    mock_stop();
    cr_assert_lt(now_ms() - t0, 3000.0, "stop took %.0f ms", now_ms() - t0);

    curl_multi_remove_handle(m, h);
    finish(&r, h, hdrs);
    curl_multi_cleanup(m);
    resp_free(&r);
}


MOCK_TEST(hosted_url_replaces_the_session_url)
{
    resp_t  r, g;
    char    body[2048], path[256];

    fault("{\"match\":\"evil\",\"hosted_url\":\"https://evil.example/x\"}");
    form(body, sizeof(body), "m1:evil", 1000, NULL);

    create(&r, "m1:evil", body);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str(&r, "url"), "https://evil.example/x");

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", str(&r, "id"));
    request(&g, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&g, "url"), "https://evil.example/x");

    resp_free(&g);
    resp_free(&r);
}


MOCK_TEST(the_first_matching_rule_applies)
{
    resp_t  r;
    char    body[2048];

    fault("{\"match\":\"m1:\",\"refuse_status\":404}");
    fault("{\"match\":\"\",\"refuse_status\":402}");

    form(body, sizeof(body), "m1:order", 1000, NULL);
    create(&r, "m1:order", body);
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    form(body, sizeof(body), "m2:order", 1000, NULL);
    create(&r, "m2:order", body);
    cr_assert_eq(r.status, 402);
    resp_free(&r);

    /* "" matches a request without a key too */
    create(&r, NULL, body);
    cr_assert_eq(r.status, 402);
    resp_free(&r);
}


MOCK_TEST(pay_redirects_to_success_url_and_marks_the_session_paid)
{
    resp_t       r;
    char         path[256], expect[256], id[64];

    snprintf(id, sizeof(id), "%s", create_ok("m1:co_pay", 1000));

    snprintf(path, sizeof(path), "/pay/%s", id);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "20.00 USD"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "/pay\""));
    cr_assert_not_null(strstr(r.body, "/decline\""));
    cr_assert_null(strstr(r.body, "<script"));
    resp_free(&r);

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(expect, sizeof(expect), "https://shop.example/ok?session=%s",
             id);
    cr_assert_str_eq(r.location, expect);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "status"), "complete");
    cr_assert_str_eq(str(&r, "payment_status"), "paid");
    resp_free(&r);

    /* a paid session cannot be declined any more */
    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 409);
    resp_free(&r);
}


MOCK_TEST(decline_redirects_to_cancel_url_and_expires_the_session)
{
    resp_t  r;
    char    path[256], id[64];

    snprintf(id, sizeof(id), "%s", create_ok("m1:co_decline", 1000));

    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, CANCEL);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "status"), "expired");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
    resp_free(&r);

    /* an expired session has no page and cannot be paid */
    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 410);
    resp_free(&r);
}


MOCK_TEST(the_hosted_page_of_an_unknown_session_is_404)
{
    resp_t  r;

    request(&r, "GET", "/pay/cs_test_nope", AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    request(&r, "POST", "/pay/cs_test_nope/pay", AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 404);
    cr_assert_str_empty(r.location);
    resp_free(&r);
}


MOCK_TEST(serves_50_concurrent_requests_with_200_ms_latency_at_once)
{
    int                 i, running;
    char                body[50][2048], key[50][32];
    double              t0, elapsed;
    CURL               *h[50];
    CURLM              *m;
    resp_t              r[50];
    struct curl_slist  *hdrs[50];

    fault("{\"match\":\"conc-\",\"latency_ms\":200}");

    m = curl_multi_init();
    for (i = 0; i < 50; i++) {
        snprintf(key[i], sizeof(key[i]), "conc-%d", i);
        form(body[i], sizeof(body[i]), key[i], 1000 + i, NULL);
        h[i] = prepare(&r[i], &hdrs[i], "POST", "/v1/checkout/sessions",
                       AUTH_GOOD, key[i],
                       "application/x-www-form-urlencoded", body[i]);
        curl_multi_add_handle(m, h[i]);
    }

    t0 = now_ms();
    do {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
    } while (running > 0);
    elapsed = now_ms() - t0;

    for (i = 0; i < 50; i++) {
        curl_multi_remove_handle(m, h[i]);
        finish(&r[i], h[i], hdrs[i]);
        cr_assert_eq(r[i].status, 200, "request %d: %ld", i, r[i].status);
        resp_free(&r[i]);
    }
    curl_multi_cleanup(m);

    /* serial would be 10 s; one latency plus slack proves they overlapped */
    cr_assert_geq(elapsed, 195.0);
    cr_assert_lt(elapsed, 1500.0, "50 requests took %.0f ms", elapsed);
}


MOCK_TEST(validates_parameters_like_stripe)
{
    resp_t  r;
    char    body[4096];

    static const struct {
        const char  *extra_or_body;
        int          whole;
        const char  *code;
        const char  *param;
    }  cases[] = {
        { "&foo=1", 0, "parameter_unknown", "foo" },
        { "&mode=payment", 0, "parameter_invalid", "mode" },
        { "&line_items[0][quantity]=", 0, "parameter_invalid", NULL },
        { "&line_items[2][quantity]=1", 0, "parameter_missing",
          "line_items[2][price_data][currency]" },
        { "&line_items[2][price_data][currency]=eur"
          "&line_items[2][price_data][unit_amount]=100"
          "&line_items[2][price_data][product_data][name]=x"
          "&line_items[2][quantity]=1", 0, "parameter_invalid",
          "line_items[2][price_data][currency]" },
        { "&expires_at=12x", 0, "parameter_invalid_integer", "expires_at" },
        { "&expires_at=1000", 0, "parameter_invalid", "expires_at" },
        { "&customer_email=", 0, "parameter_invalid_empty",
          "customer_email" },
        { "&bad=%zz", 0, "parameter_invalid", NULL },
        { "&bad=%00", 0, "parameter_invalid", NULL },
        { "&bad=%ff", 0, "parameter_invalid", NULL },
        { "mode=payment&success_url=https://a.example&cancel_url=https://"
          "a.example", 1, "parameter_missing", "line_items" },
        { "mode=payment&success_url=https://a.example&cancel_url=https://"
          "a.example&line_items[0][price_data][currency]=usd"
          "&line_items[0][price_data][unit_amount]=0"
          "&line_items[0][price_data][product_data][name]=x"
          "&line_items[0][quantity]=1", 1, "parameter_invalid_integer",
          "line_items[0][price_data][unit_amount]" },
        { "mode=payment&success_url=https://a.example&cancel_url=https://"
          "a.example&line_items[0][price_data][currency]=usd"
          "&line_items[0][price_data][unit_amount]=10"
          "&line_items[0][price_data][product_data][name]=x"
          "&line_items[0][quantity]=1.5", 1, "parameter_invalid_integer",
          "line_items[0][quantity]" },
        { "mode=payment&cancel_url=https://a.example"
          "&line_items[0][price_data][currency]=usd"
          "&line_items[0][price_data][unit_amount]=10"
          "&line_items[0][price_data][product_data][name]=x"
          "&line_items[0][quantity]=1", 1, "parameter_missing",
          "success_url" },
        { "mode=setup", 1, "parameter_invalid", "mode" }
    };
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].whole) {
            snprintf(body, sizeof(body), "%s", cases[i].extra_or_body);
        } else {
            form(body, sizeof(body), "m1:co_invalid", 1000,
                 cases[i].extra_or_body);
        }

        create(&r, "m1:co_invalid", body);
        cr_assert_eq(r.status, 400, "case %zu: %ld %s", i, r.status, r.body);
        cr_assert_str_eq(error_field(&r, "type"), "invalid_request_error",
                         "case %zu: %s", i, r.body);
        cr_assert_str_eq(error_field(&r, "code"), cases[i].code,
                         "case %zu: %s", i, r.body);
        if (cases[i].param != NULL) {
            cr_assert_str_eq(error_field(&r, "param"), cases[i].param,
                             "case %zu: %s", i, r.body);
        }
        resp_free(&r);
    }

    /* a validation error stores nothing: the same key still works */
    form(body, sizeof(body), "m1:co_invalid", 1000, NULL);
    create(&r, "m1:co_invalid", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    /* JSON is not what Stripe takes */
    request(&r, "POST", "/v1/checkout/sessions", AUTH_GOOD, "m1:json",
            "application/json", "{\"mode\":\"payment\"}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(accepts_expires_at_between_30_minutes_and_24_hours)
{
    resp_t     r;
    char       extra[64], body[2048];
    long long  at;

    /* one clock reading: a second may tick between two */
    at = (long long) time(NULL) + 3600;
    snprintf(extra, sizeof(extra), "&expires_at=%lld", at);
    form(body, sizeof(body), "exp-ok", 1000, extra);
    create(&r, "exp-ok", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_at")),
                 (json_int_t) at, "%s", r.body);
    resp_free(&r);

    snprintf(extra, sizeof(extra), "&expires_at=%lld",
             (long long) time(NULL) + 29 * 60);
    form(body, sizeof(body), "exp-short", 1000, extra);
    create(&r, "exp-short", body);
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    snprintf(extra, sizeof(extra), "&expires_at=%lld",
             (long long) time(NULL) + 25 * 3600);
    form(body, sizeof(body), "exp-long", 1000, extra);
    create(&r, "exp-long", body);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


MOCK_TEST(reset_clears_sessions_counts_and_faults)
{
    resp_t     r;
    char       path[256], body[2048];
    long long  created, requests;

    fault("{\"match\":\"\",\"refuse_status\":402}");
    form(body, sizeof(body), "m1:co_reset", 1000, NULL);
    create(&r, "m1:co_reset", body);
    cr_assert_eq(r.status, 402);
    resp_free(&r);

    control(&r, "POST", "/_control/reset", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    registrations("m1:co_reset", &created, &requests);
    cr_assert_eq(requests, 0);

    create(&r, "m1:co_reset", body);
    cr_assert_eq(r.status, 200, "the fault must be gone: %s", r.body);
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", str(&r, "id"));
    resp_free(&r);

    control(&r, "POST", "/_control/reset", NULL);
    resp_free(&r);

    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
}


MOCK_TEST(control_api_refuses_malformed_faults)
{
    resp_t  r;

    control(&r, "GET", "/_control/health", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(json_is_true(json_object_get(r.json, "ok")));
    resp_free(&r);

    control(&r, "POST", "/_control/faults", "{\"fail_tims\":2}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "POST", "/_control/faults", "{\"fail_times\":-1}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "POST", "/_control/faults", "[1]");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "GET", "/_control/registrations", NULL);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


/*
 * Webhooks.  Each test runs a small receiver (libmicrohttpd, a thread per
 * connection so duplicates arrive together) that records every delivery
 * and answers from a script, then starts the mock pointed at it.
 */

#define WH_SECRET   "whsec_test_mock_webhooks"
#define WH_MAX      64


typedef struct {
    double       at;                         /* now_ms() on arrival */
    char         sig[512];                   /* Stripe-Signature */
    char         jwt[2048];                  /* rx.jwt_header */
    char         ctype[128];
    char        *body;
    json_t      *json;
} wh_hit_t;


typedef struct {
    char        *body;
    size_t       len;
} wh_conn_t;


static struct {
    pthread_mutex_t     lock;
    struct MHD_Daemon  *d;
    unsigned            port;
    int                 stopping;
    wh_hit_t            hits[WH_MAX];
    int                 n;
    unsigned            script[16];          /* statuses, in order */
    int                 nscript;
    int                 next;
    unsigned            dflt;                /* after the script */
    long                delay_ms;            /* before each answer */
    const char         *answer;              /* the body: "ok" if NULL */
    const char         *jwt_header;          /* Payments-Verification */
} rx = { .lock = PTHREAD_MUTEX_INITIALIZER };


static enum MHD_Result
rx_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
    long                  waited;
    char                 *p;
    unsigned              status;
    wh_conn_t            *conn;
    wh_hit_t             *hit;
    const char           *v;
    enum MHD_Result       rc;
    struct MHD_Response  *resp;

    (void) cls;
    (void) url;
    (void) method;
    (void) version;

    conn = *con_cls;
    if (conn == NULL) {
        conn = calloc(1, sizeof(wh_conn_t));
        *con_cls = conn;
        return conn ? MHD_YES : MHD_NO;
    }

    if (*upload_size != 0) {
        p = realloc(conn->body, conn->len + *upload_size + 1);
        if (p == NULL) {
            return MHD_NO;
        }
        memcpy(p + conn->len, upload, *upload_size);
        conn->body = p;
        conn->len += *upload_size;
        conn->body[conn->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&rx.lock);

    if (rx.n < WH_MAX) {
        hit = &rx.hits[rx.n++];
        hit->at = now_ms();
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        "Stripe-Signature");
        snprintf(hit->sig, sizeof(hit->sig), "%s", v ? v : "");
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        rx.jwt_header ? rx.jwt_header
                                                      : "Payments-Verification");
        snprintf(hit->jwt, sizeof(hit->jwt), "%s", v ? v : "");
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        snprintf(hit->ctype, sizeof(hit->ctype), "%s", v ? v : "");
        hit->body = strdup(conn->body ? conn->body : "");
        hit->json = json_loads(hit->body ? hit->body : "", 0, NULL);
    }

    status = (rx.next < rx.nscript) ? rx.script[rx.next++] : rx.dflt;

    pthread_mutex_unlock(&rx.lock);

    /* in small steps: stopping the receiver must not wait for it */
    for (waited = 0; waited < rx.delay_ms && !rx.stopping; waited += 10) {
        usleep(10 * 1000);
    }

    v = rx.answer ? rx.answer : "ok";
    resp = MHD_create_response_from_buffer(strlen(v), (void *) v,
                                           MHD_RESPMEM_PERSISTENT);
    rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return rc;
}


static void
rx_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    wh_conn_t  *conn;

    (void) cls;
    (void) c;
    (void) toe;

    conn = *con_cls;
    if (conn != NULL) {
        free(conn->body);
        free(conn);
        *con_cls = NULL;
    }
}


static void
rx_start(void)
{
    const union MHD_DaemonInfo  *info;

    rx.dflt = 200;

    rx.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION
                            | MHD_USE_INTERNAL_POLLING_THREAD
                            | MHD_USE_POLL,
                            0, NULL, NULL, rx_handler, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, rx_completed, NULL,
                            MHD_OPTION_END);
    cr_assert_not_null(rx.d);

    info = MHD_get_daemon_info(rx.d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    rx.port = info->port;
}


static void
rx_stop(void)
{
    int  i;

    if (rx.d == NULL) {
        return;
    }

    rx.stopping = 1;
    MHD_stop_daemon(rx.d);
    rx.d = NULL;

    for (i = 0; i < rx.n; i++) {
        free(rx.hits[i].body);
        json_decref(rx.hits[i].json);
    }
    rx.n = 0;
}


/* Sets the statuses the receiver answers: the list, then dflt. */
static void
rx_script(unsigned dflt, int n, const unsigned *statuses)
{
    int  i;

    pthread_mutex_lock(&rx.lock);
    for (i = 0; i < n; i++) {
        rx.script[i] = statuses[i];
    }
    rx.nscript = n;
    rx.next = 0;
    rx.dflt = dflt;
    pthread_mutex_unlock(&rx.lock);
}


static int
rx_count(void)
{
    int  n;

    pthread_mutex_lock(&rx.lock);
    n = rx.n;
    pthread_mutex_unlock(&rx.lock);

    return n;
}


/* Waits until the receiver has n deliveries (at most timeout_ms). */
static void
rx_wait(int n, long timeout_ms)
{
    double  end;

    end = now_ms() + timeout_ms;

    while (rx_count() < n) {
        cr_assert_lt(now_ms(), end, "%d deliveries after %ld ms, wanted %d",
                     rx_count(), timeout_ms, n);
        usleep(10 * 1000);
    }
}


static const char *
wh_type(const wh_hit_t *hit)
{
    return json_string_value(json_object_get(hit->json, "type"));
}


static const char *
wh_id(const wh_hit_t *hit)
{
    return json_string_value(json_object_get(hit->json, "id"));
}


static json_t *
wh_object(const wh_hit_t *hit)
{
    return json_object_get(json_object_get(hit->json, "data"), "object");
}


/*
 * Recomputes Stripe's signature: HMAC-SHA256 keyed with the secret's bytes
 * over "t.body", lower-case hex, in the v1 entry.  Returns 1 if it matches,
 * and t in *t.
 */
static int
wh_verify(const wh_hit_t *hit, const char *secret, long long *t)
{
    size_t          i;
    unsigned        len;
    char           *payload, hex[65], *v1;
    unsigned char   mac[32];

    cr_assert_eq(sscanf(hit->sig, "t=%lld,", t), 1, "Stripe-Signature: %s",
                 hit->sig);
    v1 = strstr(hit->sig, ",v1=");
    cr_assert_not_null(v1, "Stripe-Signature: %s", hit->sig);
    v1 += 4;
    cr_assert_eq(strlen(v1), 64, "v1: %s", v1);

    cr_assert(asprintf(&payload, "%lld.%s", *t, hit->body) > 0);
    HMAC(EVP_sha256(), secret, (int) strlen(secret),
         (unsigned char *) payload, strlen(payload), mac, &len);
    free(payload);

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }

    return CRYPTO_memcmp(hex, v1, 64) == 0;
}


/* GET /_control/webhooks?session=ID: the events array (caller frees). */
static json_t *
wh_records(const char *id)
{
    resp_t   r;
    json_t  *events;
    char     path[256];

    snprintf(path, sizeof(path), "/_control/webhooks?session=%s", id);
    control(&r, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "session"), id);
    events = json_incref(json_object_get(r.json, "events"));
    cr_assert(json_is_array(events));
    resp_free(&r);

    return events;
}


static long long
rec_int(json_t *events, size_t i, const char *name)
{
    return json_integer_value(json_object_get(json_array_get(events, i),
                                              name));
}


static const char *
rec_str(json_t *events, size_t i, const char *name)
{
    return json_string_value(json_object_get(json_array_get(events, i),
                                             name));
}


static int
rec_delivered(json_t *events, size_t i)
{
    return json_is_true(json_object_get(json_array_get(events, i),
                                        "delivered"));
}


/* Waits until every record of the session is finished: delivered, or
 * attempts reached; returns the events array. */
static json_t *
wh_records_settled(const char *id, size_t n, long long attempts,
    long timeout_ms)
{
    size_t   i;
    double   end;
    json_t  *events;

    end = now_ms() + timeout_ms;

    for ( ;; ) {
        events = wh_records(id);

        if (json_array_size(events) == n) {
            for (i = 0; i < n; i++) {
                if (!rec_delivered(events, i)
                    && rec_int(events, i, "attempts") < attempts)
                {
                    break;
                }
            }
            if (i == n) {
                return events;
            }
        }

        cr_assert_lt(now_ms(), end, "records not settled: %s",
                     json_dumps(events, JSON_COMPACT));
        json_decref(events);
        usleep(20 * 1000);
    }
}


static void
session_post(const char *id, const char *action, long expect)
{
    resp_t  r;
    char    path[256];

    snprintf(path, sizeof(path), "/_control/sessions/%s/%s", id, action);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, expect, "%s %s: %ld %s", action, id, r.status,
                 r.body);
    resp_free(&r);
}


static void
wh_start(const char *retry_ms)
{
    char         url[128];
    const char  *args[12];

    rx_start();

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/webhooks/stripe",
             rx.port);

    args[0] = "--webhook-url";
    args[1] = url;
    args[2] = "--stripe-webhook-secret";
    args[3] = WH_SECRET;
    args[4] = "--webhook-retry-ms";
    args[5] = retry_ms;
    args[6] = NULL;

    mock_start_with(args);
}


static void
wh_fini(void)
{
    mock_kill();
    rx_stop();
}


#define WEBHOOK_TEST(name, retry_ms)                                         \
    static void name##_body(void);                                          \
    static void name##_init(void) { wh_start(retry_ms); }                   \
    Test(webhooks, name, .init = name##_init, .fini = wh_fini,              \
         .timeout = 60)                                                     \
    {                                                                        \
        name##_body();                                                       \
        mock_stop();                                                         \
        rx_stop();                                                           \
    }                                                                        \
    static void name##_body(void)


WEBHOOK_TEST(completed_event_is_signed_like_stripe, "50")
{
    resp_t       r;
    json_t      *obj, *events;
    wh_hit_t    *hit;
    long long    t;
    char         id[64];

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_sign", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    hit = &rx.hits[0];

    cr_assert_not_null(hit->json, "body: %s", hit->body);
    cr_assert_eq(strncmp(hit->ctype, "application/json", 16), 0, "%s",
                 hit->ctype);
    cr_assert(wh_verify(hit, WH_SECRET, &t), "signature %s", hit->sig);
    cr_assert_leq(llabs(t - (long long) time(NULL)), 5);
    /* a different secret does not verify */
    cr_assert_not(wh_verify(hit, "whsec_other", &t));

    cr_assert_eq(strncmp(wh_id(hit), "evt_", 4), 0);
    cr_assert_str_eq(json_string_value(json_object_get(hit->json, "object")),
                     "event");
    cr_assert_str_eq(wh_type(hit), "checkout.session.completed");
    cr_assert(json_is_false(json_object_get(hit->json, "livemode")));
    cr_assert(json_is_integer(json_object_get(hit->json, "created")));

    obj = wh_object(hit);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "object")),
                     "checkout.session");
    cr_assert_str_eq(json_string_value(json_object_get(obj,
                                                       "payment_status")),
                     "paid");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "status")),
                     "complete");
    cr_assert_eq(json_integer_value(json_object_get(obj, "amount_total")),
                 2000);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "currency")),
                     "usd");
    cr_assert_str_eq(json_string_value(json_object_get(obj,
                                                   "client_reference_id")),
                     "m1:wh_sign");
    cr_assert(json_is_false(json_object_get(obj, "livemode")));

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "id"), wh_id(hit));
    cr_assert_str_eq(rec_str(events, 0, "type"),
                     "checkout.session.completed");
    cr_assert_eq(rec_int(events, 0, "attempts"), 1);
    cr_assert_eq(rec_int(events, 0, "last_status"), 200);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* paying again: 200, the same session, no second event */
    session_post(id, "pay", 200);
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 1);

    /* an unknown session */
    session_post("cs_test_nope", "pay", 404);
    control(&r, "GET", "/_control/sessions/x/pay", NULL);
    cr_assert_eq(r.status, 405);
    resp_free(&r);
    control(&r, "GET", "/_control/webhooks", NULL);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


WEBHOOK_TEST(the_hosted_page_answers_without_waiting_for_the_webhook, "50")
{
    resp_t    r;
    json_t   *events;
    double    t0;
    char      path[256], id[64];

    rx.delay_ms = 1500;
    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_page", 1000));

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    t0 = now_ms();
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_lt(now_ms() - t0, 1000, "the page waited for the webhook");
    resp_free(&r);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);
}


WEBHOOK_TEST(retries_until_a_2xx_and_records_every_attempt, "50")
{
    json_t          *events;
    long long        t;
    char             id[64];
    static const unsigned  script[] = { 500, 404 };

    /* a 4xx is retried too, as Stripe does */
    rx_script(200, 2, script);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_retry", 1000));
    session_post(id, "pay", 200);

    rx_wait(3, 5000);

    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 3);
    cr_assert_eq(rec_int(events, 0, "last_status"), 200);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* the same event every time, signed afresh each time */
    cr_assert_str_eq(wh_id(&rx.hits[1]), wh_id(&rx.hits[0]));
    cr_assert_str_eq(wh_id(&rx.hits[2]), wh_id(&rx.hits[0]));
    cr_assert_str_eq(rx.hits[2].body, rx.hits[0].body);
    cr_assert(wh_verify(&rx.hits[1], WH_SECRET, &t));
    cr_assert(wh_verify(&rx.hits[2], WH_SECRET, &t));

    /* 50 ms, then 100 ms */
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 45);
    cr_assert_geq(rx.hits[2].at - rx.hits[1].at, 95);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


WEBHOOK_TEST(gives_up_after_10_attempts, "1")
{
    json_t  *events;
    char     id[64];

    rx_script(500, 0, NULL);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_giveup", 1000));
    session_post(id, "pay", 200);

    rx_wait(10, 10000);
    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 10);
    cr_assert_eq(rec_int(events, 0, "last_status"), 500);
    cr_assert_not(rec_delivered(events, 0));
    json_decref(events);

    usleep(600 * 1000);
    cr_assert_eq(rx_count(), 10);
}


WEBHOOK_TEST(duplicate_delivers_the_same_event_again_at_once, "50")
{
    int      i;
    json_t  *events;
    char     id[64];

    fault("{\"match\":\"wh_dup\",\"webhook_duplicate\":2}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_dup", 1000));
    session_post(id, "pay", 200);

    rx_wait(3, 5000);

    for (i = 1; i < 3; i++) {
        cr_assert_str_eq(wh_id(&rx.hits[i]), wh_id(&rx.hits[0]));
        cr_assert_str_eq(rx.hits[i].body, rx.hits[0].body);
        cr_assert_lt(rx.hits[i].at - rx.hits[0].at, 500, "not concurrent");
    }

    events = wh_records_settled(id, 3, 1, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rec_str(events, (size_t) i, "id"),
                         wh_id(&rx.hits[0]));
        cr_assert(rec_delivered(events, (size_t) i));
        cr_assert_eq(rec_int(events, (size_t) i, "attempts"), 1);
    }
    json_decref(events);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


WEBHOOK_TEST(out_of_order_sends_a_contrary_expired_event_first, "50")
{
    json_t       *events;
    char          id[64];
    const char   *status;

    fault("{\"match\":\"wh_ooo\",\"webhook_out_of_order\":true}");

    /* the receiver is slow: the second event must wait for the first */
    rx.delay_ms = 200;

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_ooo", 1000));
    session_post(id, "pay", 200);

    rx_wait(2, 5000);

    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.expired");
    status = json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                               "status"));
    cr_assert_str_eq(status, "expired");
    cr_assert_str_eq(wh_type(&rx.hits[1]), "checkout.session.completed");
    cr_assert_str_neq(wh_id(&rx.hits[1]), wh_id(&rx.hits[0]));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 190);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "checkout.session.expired");
    cr_assert_str_eq(rec_str(events, 1, "type"),
                     "checkout.session.completed");
    json_decref(events);
}


WEBHOOK_TEST(bad_signature_does_not_verify_and_is_still_retried, "50")
{
    json_t     *events;
    long long   t;
    char        id[64];
    static const unsigned  script[] = { 400 };

    fault("{\"match\":\"wh_badsig\",\"webhook_bad_signature\":true}");
    rx_script(200, 1, script);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_badsig", 1000));
    session_post(id, "pay", 200);

    rx_wait(2, 5000);
    cr_assert_not(wh_verify(&rx.hits[0], WH_SECRET, &t));
    cr_assert_not(wh_verify(&rx.hits[1], WH_SECRET, &t));
    cr_assert_leq(llabs(t - (long long) time(NULL)), 5);

    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 2);
    json_decref(events);
}


WEBHOOK_TEST(stale_signs_a_timestamp_400_s_old, "50")
{
    long long   t;
    char        id[64];

    fault("{\"match\":\"wh_stale\",\"webhook_stale\":true}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_stale", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    cr_assert(wh_verify(&rx.hits[0], WH_SECRET, &t),
              "a stale event is still signed correctly");
    cr_assert_leq(llabs((long long) time(NULL) - 400 - t), 5, "t=%lld", t);
}


WEBHOOK_TEST(async_payment_completes_unpaid_then_succeeds, "50")
{
    resp_t       r;
    json_t      *events;
    char         id[64], path[256];
    const char  *ps;

    fault("{\"match\":\"wh_async\",\"async_payment\":true,"
          "\"async_delay_ms\":300}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_async", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");
    ps = json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                           "payment_status"));
    cr_assert_str_eq(ps, "unpaid");

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "status"), "complete");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
    resp_free(&r);

    rx_wait(2, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[1]),
                     "checkout.session.async_payment_succeeded");
    ps = json_string_value(json_object_get(wh_object(&rx.hits[1]),
                                           "payment_status"));
    cr_assert_str_eq(ps, "paid");
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 290);

    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_str_eq(str(&r, "payment_status"), "paid");
    resp_free(&r);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 1, "type"),
                     "checkout.session.async_payment_succeeded");
    json_decref(events);
}


WEBHOOK_TEST(decline_expires_the_session_and_says_so, "50")
{
    resp_t     r;
    json_t    *events;
    long long  t;
    char       id[64], id2[64], path[256];

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_decl", 1000));

    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, CANCEL);
    resp_free(&r);

    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.expired");
    cr_assert(wh_verify(&rx.hits[0], WH_SECRET, &t));
    cr_assert_str_eq(json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                                       "status")),
                     "expired");

    events = wh_records_settled(id, 1, 1, 5000);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* the control API does the same; a paid session cannot be declined */
    snprintf(id2, sizeof(id2), "%s", create_ok("m1:wh_decl2", 1000));
    session_post(id2, "decline", 200);
    rx_wait(2, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[1]), "checkout.session.expired");

    session_post(id2, "decline", 410);
    session_post(id2, "pay", 410);
    session_post(id, "decline", 410);

    snprintf(id2, sizeof(id2), "%s", create_ok("m1:wh_decl3", 1000));
    session_post(id2, "pay", 200);
    session_post(id2, "decline", 409);
    rx_wait(3, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[2]), "checkout.session.completed");
}


WEBHOOK_TEST(delay_and_amount_knobs, "50")
{
    resp_t    r;
    json_t   *events;
    double    t0;
    char      id[64], path[256];

    fault("{\"match\":\"wh_knobs\",\"webhook_delay_ms\":500,"
          "\"webhook_amount\":1}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_knobs", 1000));
    t0 = now_ms();
    session_post(id, "pay", 200);

    /* listed at once, not yet attempted */
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 1);
    cr_assert_eq(rec_int(events, 0, "attempts"), 0);
    cr_assert_not(rec_delivered(events, 0));
    json_decref(events);

    rx_wait(1, 5000);
    cr_assert_geq(rx.hits[0].at - t0, 490);
    cr_assert_eq(json_integer_value(json_object_get(wh_object(&rx.hits[0]),
                                                    "amount_total")), 1);

    /* only the report lies */
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "amount_total")),
                 2000);
    resp_free(&r);

    /* the rule lists its webhook fields */
    control(&r, "GET", "/_control/faults", NULL);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(r.json, "faults"), 0),
                     "webhook_delay_ms")), 500);
    resp_free(&r);
}


WEBHOOK_TEST(reset_stops_pending_retries, "200")
{
    resp_t   r;
    json_t  *events;
    char     id[64];

    rx_script(500, 0, NULL);

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_reset", 1000));
    session_post(id, "pay", 200);

    rx_wait(1, 5000);

    control(&r, "POST", "/_control/reset", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    usleep(800 * 1000);
    cr_assert_eq(rx_count(), 1, "a retry went out after the reset");
}


WEBHOOK_TEST(stops_promptly_with_a_delivery_in_flight, "50")
{
    double  t0;
    char    id[64];

    /* the receiver holds the request for 20 s */
    rx.delay_ms = 20000;

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_stop", 1000));
    session_post(id, "pay", 200);
    rx_wait(1, 5000);

    t0 = now_ms();
    mock_stop();
    cr_assert_lt(now_ms() - t0, 3000, "the stop waited for the webhook");
}


WEBHOOK_TEST(refuses_malformed_webhook_knobs, "50")
{
    size_t       i;
    resp_t       r;

    static const char  *bad[] = {
        "{\"webhook_duplicate\":-1}",
        "{\"webhook_duplicate\":21}",
        "{\"webhook_stale\":1}",
        "{\"webhook_out_of_order\":\"yes\"}",
        "{\"webhook_amount\":-5}",
        "{\"webhook_delay_ms\":-1}",
        "{\"async_delay_ms\":100}",
        "{\"webhook_bad_sig\":true}"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        control(&r, "POST", "/_control/faults", bad[i]);
        cr_assert_eq(r.status, 400, "%s: %ld", bad[i], r.status);
        resp_free(&r);
    }

    fault("{\"match\":\"x\",\"webhook_amount\":null,\"async_payment\":false,"
          "\"webhook_bad_signature\":false}");
}


Test(webhooks, refuses_a_webhook_url_without_a_secret, .timeout = 30)
{
    int          status;
    pid_t        pid;
    const char  *bin;

    bin = getenv("MOCK_PSP_BIN");
    if (bin == NULL) {
        bin = "build/mock_psp";
    }

    pid = fork();
    cr_assert_neq(pid, -1);

    if (pid == 0) {
        int  fd;

        fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        execl(bin, bin, "--port", "0", "--stripe-secret", SECRET,
              "--webhook-url", "http://127.0.0.1:1/x", (char *) NULL);
        _exit(127);
    }

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2,
              "status %d", status);
}



/*
 * Adyen's and the generic PSP's APIs: registration, credentials,
 * idempotency, hosted pages, and the signed webhooks a payment sends, each
 * fault knob per dialect.  Signatures are checked here with OpenSSL alone:
 * the test recomputes Adyen's HMAC itself (and checks that against
 * PSP_FACTS.md's vectors) and verifies the generic JWT with the public key.
 */

#include "adyen_hmac.h"

#define ADYEN_KEY     "AQE_mock_test_key"
#define ADYEN_HMAC    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
#define ADYEN_RETURN  "https://gw.example/v1/return/mock_adyen/co_1?t=tok"
#define GEN_KEY       "gk_mock_test_key"
#define GEN_RETURN    "https://gw.example/v1/return/mock_generic/co_1?t=ok"
#define GEN_CANCEL    "https://gw.example/v1/return/mock_generic/co_1?t=no"

static char  dl_dir[64];
static char  dl_priv[128];                   /* EC P-256 private key, PEM */
static char  dl_pub[128];                    /* its public key, PEM */


static void
dl_keys(void)
{
    char  cmd[512];

    snprintf(dl_dir, sizeof(dl_dir), "/tmp/mock-dialects.XXXXXX");
    cr_assert_not_null(mkdtemp(dl_dir));
    snprintf(dl_priv, sizeof(dl_priv), "%s/k.pem", dl_dir);
    snprintf(dl_pub, sizeof(dl_pub), "%s/k.pub", dl_dir);
    snprintf(cmd, sizeof(cmd), "openssl ecparam -name prime256v1 -genkey "
             "-noout -out %s 2>/dev/null && openssl ec -in %s -pubout "
             "-out %s 2>/dev/null", dl_priv, dl_priv, dl_pub);
    cr_assert_eq(system(cmd), 0);
}


/* Both dialects, their webhooks to the receiver (if urls), more args. */
static void
dl_launch(int urls, const char *const *more)
{
    size_t       k, i;
    char         adyen[128], generic[128];
    const char  *args[40];

    rx_start();
    dl_keys();

    snprintf(adyen, sizeof(adyen),
             "http://127.0.0.1:%u/v1/webhooks/mock_adyen", rx.port);
    snprintf(generic, sizeof(generic),
             "http://127.0.0.1:%u/v1/webhooks/mock_generic", rx.port);

    k = 0;
    args[k++] = "--adyen-secret";
    args[k++] = ADYEN_KEY;
    args[k++] = "--adyen-hmac-key";
    args[k++] = ADYEN_HMAC;
    args[k++] = "--generic-secret";
    args[k++] = GEN_KEY;
    args[k++] = "--generic-jwt-key";
    args[k++] = dl_priv;
    args[k++] = "--webhook-retry-ms";
    args[k++] = "50";

    if (urls) {
        args[k++] = "--adyen-webhook-url";
        args[k++] = adyen;
        args[k++] = "--generic-webhook-url";
        args[k++] = generic;
    }

    for (i = 0; more != NULL && more[i] != NULL && k < 38; i++) {
        args[k++] = more[i];
    }

    args[k] = NULL;

    mock_start_with(args);
}


static void
dl_start(void)
{
    dl_launch(1, NULL);
}


static void
dl_start_no_urls(void)
{
    dl_launch(0, NULL);
}


static void
dl_start_claims(void)
{
    static const char  *more[] = {
        "--generic-jwt-kid", "kid-1",
        "--generic-jwt-iss", "https://psp.example",
        "--generic-jwt-aud", "ngx_payments",
        "--generic-jwt-header", "X-Mock-Signature",
        NULL
    };

    rx.jwt_header = "X-Mock-Signature";
    dl_launch(1, more);
}


static void
dl_cleanup(void)
{
    char  cmd[128];

    if (dl_dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dl_dir);
        (void) system(cmd);
        dl_dir[0] = '\0';
    }
}


static void
dl_fini(void)
{
    mock_kill();
    rx_stop();
    dl_cleanup();
}


#define DIALECT_TEST(name, setup)                                            \
    static void name##_body(void);                                          \
    Test(dialects, name, .init = setup, .fini = dl_fini, .timeout = 60)     \
    {                                                                        \
        name##_body();                                                       \
        mock_stop();                                                         \
        rx_stop();                                                           \
        dl_cleanup();                                                        \
    }                                                                        \
    static void name##_body(void)


/* POST path with a JSON body and exactly the header line auth (or none). */
static void
dl_post(resp_t *r, const char *path, const char *auth, const char *key,
    const char *ctype, const char *body)
{
    CURL               *h;
    struct curl_slist  *hdrs;

    h = prepare(r, &hdrs, "POST", path, AUTH_NONE, key, ctype, body);
    if (auth != NULL) {
        hdrs = curl_slist_append(hdrs, auth);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    r->rc = curl_easy_perform(h);
    finish(r, h, hdrs);
}


/* Takes j. */
static void
dl_post_json(resp_t *r, const char *path, const char *auth, const char *key,
    json_t *j)
{
    char  *body;

    cr_assert_not_null(j);
    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cr_assert_not_null(body);
    dl_post(r, path, auth, key, "application/json", body);
    free(body);
}


/* POST /_control/sessions/{id}/{action}: the session after it (or NULL). */
static json_t *
session_act(const char *id, const char *action, long expect)
{
    resp_t   r;
    json_t  *s;
    char     path[256];

    snprintf(path, sizeof(path), "/_control/sessions/%s/%s", id, action);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, expect, "%s %s: %ld %s", action, id, r.status,
                 r.body);
    s = json_incref(r.json);
    resp_free(&r);

    return s;
}


static void
rfc3339(char *out, size_t size, time_t t)
{
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}


/* What src/psp.c pay_psp_adyen_body sends: two orders, value in all. */
static json_t *
adyen_json(const char *ref, long long value, const char *currency,
    const char *return_url)
{
    char  when[32];

    rfc3339(when, sizeof(when), time(NULL) + 3600);

    return json_pack("{ss s{sIss} ss ss ss ss s[{ss ss sI sI}{ss ss sI sI}]}",
                     "merchantAccount", "TestMerchant",
                     "amount", "value", (json_int_t) value,
                     "currency", currency,
                     "reference", ref,
                     "returnUrl", return_url,
                     "expiresAt", when,
                     "mode", "hosted",
                     "lineItems",
                     "id", "po_1", "description", "po_1",
                     "amountIncludingTax", (json_int_t) (value - 100),
                     "quantity", (json_int_t) 1,
                     "id", "po_2", "description", "po_2",
                     "amountIncludingTax", (json_int_t) 100,
                     "quantity", (json_int_t) 1);
}


static void
adyen_post(resp_t *r, const char *key, json_t *j)
{
    dl_post_json(r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, key, j);
}


/* Registers ref under the key ref; the session id into id. */
static void
adyen_create(const char *ref, long long value, char id[64])
{
    resp_t  r;

    adyen_post(&r, ref, adyen_json(ref, value, "EUR", ADYEN_RETURN));
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(id, 64, "%s", str(&r, "id"));
    resp_free(&r);
}


/* Adyen's error shape, its status field equal to the HTTP status. */
static void
adyen_expect_error(const resp_t *r, long status, const char *type)
{
    cr_assert_eq(r->status, status, "%ld %s", r->status, r->body);
    cr_assert_eq(json_integer_value(json_object_get(r->json, "status")),
                 status, "%s", r->body);
    cr_assert_str_eq(str(r, "errorType"), type, "%s", r->body);
    cr_assert_not_null(str(r, "errorCode"), "%s", r->body);
    cr_assert_gt(strlen(str(r, "errorCode")), 0);
    cr_assert_not_null(str(r, "message"), "%s", r->body);
}


/* The test's own Adyen HMAC: base64(HMAC-SHA256(hex-decoded key, data)). */
static void
test_adyen_hmac(const char *hexkey, const char *data, char out[64])
{
    unsigned int   i, b, n;
    unsigned char  key[32], mac[32];

    cr_assert_eq(strlen(hexkey), 64);
    for (i = 0; i < 32; i++) {
        cr_assert_eq(sscanf(hexkey + 2 * i, "%2x", &b), 1);
        key[i] = (unsigned char) b;
    }

    HMAC(EVP_sha256(), key, 32, (const unsigned char *) data, strlen(data),
         mac, &n);
    cr_assert_eq(n, 32);
    cr_assert_eq(EVP_EncodeBlock((unsigned char *) out, mac, 32), 44);
}


static const char *
item_str(json_t *item, const char *name)
{
    const char  *v = json_string_value(json_object_get(item, name));

    return v ? v : "";
}


/* The one NotificationRequestItem of a delivery. */
static json_t *
adyen_item(const wh_hit_t *hit)
{
    json_t  *items;

    cr_assert_not_null(hit->json, "body: %s", hit->body);
    cr_assert_str_eq(json_string_value(json_object_get(hit->json, "live")),
                     "false");
    items = json_object_get(hit->json, "notificationItems");
    cr_assert_eq(json_array_size(items), 1, "%s", hit->body);

    return json_object_get(json_array_get(items, 0),
                           "NotificationRequestItem");
}


static long long
item_value(json_t *item)
{
    return json_integer_value(json_object_get(json_object_get(item, "amount"),
                                              "value"));
}


static const char *
item_currency(json_t *item)
{
    return item_str(json_object_get(item, "amount"), "currency");
}


/* 1 if additionalData.hmacSignature is right for the eight fields. */
static int
adyen_signed(json_t *item)
{
    char          data[1024], b64[64];
    const char   *sig;

    snprintf(data, sizeof(data), "%s:%s:%s:%s:%lld:%s:%s:%s",
             item_str(item, "pspReference"),
             item_str(item, "originalReference"),
             item_str(item, "merchantAccountCode"),
             item_str(item, "merchantReference"), item_value(item),
             item_currency(item), item_str(item, "eventCode"),
             item_str(item, "success"));

    test_adyen_hmac(ADYEN_HMAC, data, b64);

    sig = json_string_value(json_object_get(json_object_get(item,
                                "additionalData"), "hmacSignature"));
    cr_assert_not_null(sig, "no hmacSignature");
    cr_assert_eq(strlen(sig), 44, "hmacSignature %s", sig);

    return strcmp(sig, b64) == 0;
}


/* A notification for ref's session: the fields beside the signature. */
static void
adyen_expect_item(json_t *item, const char *ref, const char *code,
    const char *success, long long value)
{
    size_t       i;
    const char  *psp;

    cr_assert_str_eq(item_str(item, "eventCode"), code);
    cr_assert_str_eq(item_str(item, "success"), success);
    cr_assert_str_eq(item_str(item, "merchantAccountCode"), "TestMerchant");
    cr_assert_str_eq(item_str(item, "merchantReference"), ref);
    cr_assert_str_eq(item_str(item, "originalReference"), "");
    cr_assert_eq(item_value(item), value);
    cr_assert_str_eq(item_currency(item), "EUR");
    cr_assert_gt(strlen(item_str(item, "eventDate")), 18);

    psp = item_str(item, "pspReference");
    cr_assert_eq(strlen(psp), 16, "pspReference %s", psp);
    for (i = 0; i < 16; i++) {
        cr_assert(isdigit((unsigned char) psp[i]), "pspReference %s", psp);
    }
}


/* What src/psp.c pay_psp_generic_body sends. */
static json_t *
generic_json(const char *ref, const char *amount, const char *currency)
{
    return json_pack("{ss ss ss ss ss sI}",
                     "reference", ref,
                     "amount", amount,
                     "currency", currency,
                     "return_url", GEN_RETURN,
                     "cancel_url", GEN_CANCEL,
                     "expires_at", (json_int_t) time(NULL) + 3600);
}


static void
generic_post(resp_t *r, const char *key, json_t *j)
{
    dl_post_json(r, "/sessions", "Authorization: Bearer " GEN_KEY, key, j);
}


static void
generic_create(const char *ref, const char *amount, const char *currency,
    char token[64])
{
    resp_t  r;

    generic_post(&r, ref, generic_json(ref, amount, currency));
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(token, 64, "%s", str(&r, "token"));
    resp_free(&r);
}


/* b64url -> bytes (test only: the alphabet is mapped, padding added) */
static size_t
b64url_decode(const char *in, size_t len, unsigned char *out)
{
    char    buf[4096];
    size_t  i, pad;
    int     got;

    cr_assert_lt(len + 4, sizeof(buf));
    for (i = 0; i < len; i++) {
        cr_assert(isalnum((unsigned char) in[i]) || in[i] == '-'
                  || in[i] == '_', "not base64url: %.*s", (int) len, in);
        buf[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    }
    for (pad = 0; i % 4; pad++) {
        buf[i++] = '=';
    }
    buf[i] = '\0';
    got = EVP_DecodeBlock(out, (unsigned char *) buf, (int) i);
    cr_assert_geq(got, (int) pad);

    /* EVP_DecodeBlock counts the padding's zero bytes too */
    return (size_t) got - pad;
}


typedef struct {
    json_t      *header;
    json_t      *claims;
    int          verified;                   /* the ES256 signature */
} jwt_t;


/*
 * Splits a compact JWT, decodes header and claims, and verifies the
 * signature (JOSE R||S, 64 bytes) with the public key PEM, as a gateway
 * would: R||S back to DER, then ECDSA-SHA256 over "header.claims".
 */
static void
jwt_open(const char *jwt, jwt_t *out)
{
    FILE           *f;
    size_t          n;
    EVP_PKEY       *pk;
    EVP_MD_CTX     *md;
    ECDSA_SIG      *es;
    const char     *dot1, *dot2;
    unsigned char   buf[4096], *der;
    int             derlen;

    memset(out, 0, sizeof(*out));

    dot1 = strchr(jwt, '.');
    cr_assert_not_null(dot1, "no JWT: \"%s\"", jwt);
    dot2 = strchr(dot1 + 1, '.');
    cr_assert_not_null(dot2, "no JWT: \"%s\"", jwt);
    cr_assert_null(strchr(dot2 + 1, '.'));

    n = b64url_decode(jwt, (size_t) (dot1 - jwt), buf);
    out->header = json_loadb((char *) buf, n, JSON_REJECT_DUPLICATES, NULL);
    cr_assert_not_null(out->header);

    n = b64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), buf);
    out->claims = json_loadb((char *) buf, n, JSON_REJECT_DUPLICATES, NULL);
    cr_assert_not_null(out->claims);

    n = b64url_decode(dot2 + 1, strlen(dot2 + 1), buf);
    cr_assert_eq(n, 64, "an ES256 signature is R||S, 64 bytes, not %zu", n);

    es = ECDSA_SIG_new();
    cr_assert_not_null(es);
    cr_assert_eq(ECDSA_SIG_set0(es, BN_bin2bn(buf, 32, NULL),
                                BN_bin2bn(buf + 32, 32, NULL)), 1);
    der = NULL;
    derlen = i2d_ECDSA_SIG(es, &der);
    cr_assert_gt(derlen, 0);

    f = fopen(dl_pub, "r");
    cr_assert_not_null(f);
    pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(pk);

    md = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
    out->verified = EVP_DigestVerify(md, der, (size_t) derlen,
                                     (const unsigned char *) jwt,
                                     (size_t) (dot2 - jwt)) == 1;

    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
}


static void
jwt_close(jwt_t *j)
{
    json_decref(j->header);
    json_decref(j->claims);
}


/* Header {alg, kid, typ}; claims iat (now - age), the body's SHA-256. */
static void
jwt_expect(const jwt_t *j, const wh_hit_t *hit, const char *kid,
    long long age)
{
    size_t         i;
    char           hex[65];
    unsigned char  digest[32];

    cr_assert_str_eq(json_string_value(json_object_get(j->header, "alg")),
                     "ES256");
    cr_assert_str_eq(json_string_value(json_object_get(j->header, "kid")),
                     kid);
    cr_assert_str_eq(json_string_value(json_object_get(j->header, "typ")),
                     "JWT");

    cr_assert(json_is_integer(json_object_get(j->claims, "iat")));
    cr_assert_leq(llabs((long long) json_integer_value(
                            json_object_get(j->claims, "iat"))
                        - ((long long) time(NULL) - age)), 5);

    EVP_Digest(hit->body, strlen(hit->body), digest, NULL, EVP_sha256(),
               NULL);
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    cr_assert_str_eq(json_string_value(json_object_get(j->claims,
                         "request_body_sha256")), hex);
}


static const char *
hit_str(const wh_hit_t *hit, const char *name)
{
    const char  *v = json_string_value(json_object_get(hit->json, name));

    return v ? v : "";
}


/* A generic event for token's session, as API.md lists its fields. */
static void
generic_expect_event(const wh_hit_t *hit, const char *type, const char *ref,
    const char *token, const char *amount, const char *currency)
{
    cr_assert_not_null(hit->json, "body: %s", hit->body);
    /* payment.succeeded also names the payment it made (refunds and
     * disputes name it back) */
    if (strcmp(type, "payment.succeeded") == 0) {
        cr_assert_eq(json_object_size(hit->json), 7, "%s", hit->body);
        cr_assert_eq(strncmp(hit_str(hit, "payment_id"), "pay_", 4), 0,
                     "%s", hit->body);
    } else {
        cr_assert_eq(json_object_size(hit->json), 6, "%s", hit->body);
    }
    cr_assert_eq(strncmp(hit_str(hit, "event_id"), "gev_", 4), 0);
    cr_assert_str_eq(hit_str(hit, "type"), type);
    cr_assert_str_eq(hit_str(hit, "reference"), ref);
    cr_assert_str_eq(hit_str(hit, "token"), token);
    cr_assert_str_eq(hit_str(hit, "amount"), amount);
    cr_assert_str_eq(hit_str(hit, "currency"), currency);
    cr_assert_eq(strncmp(hit->ctype, "application/json", 16), 0);
}


/* --- Adyen: the HMAC ------------------------------------------------------ */

Test(dialects, adyen_hmac_matches_the_psp_facts_vectors)
{
    size_t          i;
    char           *data, sig[MOCK_ADYEN_HMAC_LEN], own[64];
    unsigned char   key[32];

    static const struct {
        const char  *key, *value, *code, *expect;
    } v[] = {
        { "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00",
          "1130", "AUTHORISATION",
          "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=" },
        { "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
          "0", "REFUND",
          "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8=" }
    };

    for (i = 0; i < 2; i++) {
        /* the mock's signer, built from the fields as a notification is */
        data = mock_adyen_hmac_data("7914073381342284", "", "TestMerchant",
                                    "TestPayment-1407325143704",
                                    atoll(v[i].value), "EUR", v[i].code,
                                    "true");
        cr_assert_not_null(data);
        cr_assert_eq(strncmp(data, "7914073381342284::TestMerchant:"
                             "TestPayment-1407325143704:", 52), 0, "%s",
                     data);

        cr_assert_eq(mock_adyen_hmac_key(v[i].key, key), 0);
        cr_assert_eq(mock_adyen_hmac_sign(key, data, strlen(data), sig), 0);
        cr_assert_str_eq(sig, v[i].expect, "vector %zu: %s", i, data);

        /* and the test's own, which checks the mock's deliveries below */
        test_adyen_hmac(v[i].key, data, own);
        cr_assert_str_eq(own, v[i].expect);

        free(data);
    }

    /* the key parser takes either case and nothing else */
    cr_assert_eq(mock_adyen_hmac_key("dfb1eb5485895cfa84146406857104abb4cbca"
                                     "bdc8aaf103a624c8f6a3eaab00", key), 0);
    cr_assert_eq(key[0], 0xdf);
    cr_assert_eq(key[31], 0x00);
    cr_assert_neq(mock_adyen_hmac_key("DFB1", key), 0);
    cr_assert_neq(mock_adyen_hmac_key("XFB1EB5485895CFA84146406857104ABB4CBCA"
                                      "BDC8AAF103A624C8F6A3EAAB00", key), 0);

    /* a missing field is an empty string */
    data = mock_adyen_hmac_data(NULL, NULL, "M", NULL, 5, "EUR", NULL, NULL);
    cr_assert_str_eq(data, "::M::5:EUR::");
    free(data);
}


/* --- Adyen: registration -------------------------------------------------- */

/* The compact text of j (taken); free() it. */
static char *
dump(json_t *j)
{
    char  *text;

    cr_assert_not_null(j);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cr_assert_not_null(text);

    return text;
}


DIALECT_TEST(adyen_registration_key_and_idempotency, dl_start)
{
    char         key[80], when[32], url[256], id[64], *body, *other;
    resp_t       r, again;
    long long    created, requests;

    body = dump(adyen_json("m1:co_a1", 1500, "EUR", ADYEN_RETURN));
    other = dump(adyen_json("m1:co_a1", 1600, "EUR", ADYEN_RETURN));

    /* no key, a wrong key, a Bearer instead: Adyen's 401, exactly */
    dl_post(&r, "/v71/sessions", NULL, "m1:co_a1", "application/json",
            body);
    adyen_expect_error(&r, 401, "security");
    cr_assert_str_eq(str(&r, "errorCode"), "000");
    cr_assert_str_eq(str(&r, "message"),
                     "HTTP Status Response - Unauthorized");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY "x", "m1:co_a1",
            "application/json", body);
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "Authorization: Bearer " ADYEN_KEY,
            "m1:co_a1", "application/json", body);
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    /* the right key: 201 and Adyen's session */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_a1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_not(r.replayed);
    cr_assert_eq(strncmp(str(&r, "id"), "CS", 2), 0);
    cr_assert_gt(strlen(str(&r, "id")), 10);
    cr_assert_gt(strlen(str(&r, "sessionData")), 10);
    cr_assert_str_eq(str(&r, "reference"), "m1:co_a1");
    cr_assert_str_eq(str(&r, "merchantAccount"), "TestMerchant");
    cr_assert_str_eq(str(&r, "returnUrl"), ADYEN_RETURN);
    cr_assert_str_eq(str(&r, "mode"), "hosted");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r.json,
                     "amount"), "value")), 1500);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
                         r.json, "amount"), "currency")), "EUR");
    rfc3339(when, sizeof(when), time(NULL) + 3600);
    cr_assert_eq(strncmp(str(&r, "expiresAt"), when, 14), 0, "%s",
                 str(&r, "expiresAt"));
    snprintf(url, sizeof(url), "%s/pay/%s", mock_url, str(&r, "id"));
    cr_assert_str_eq(str(&r, "url"), url);

    /* the same key and body: the same answer, byte for byte, nothing new */
    dl_post(&again, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_a1",
            "application/json", body);
    cr_assert_eq(again.status, 201);
    cr_assert(again.replayed);
    cr_assert_str_eq(again.body, r.body);
    resp_free(&again);

    /* the same key, another body: 422 */
    dl_post(&again, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_a1",
            "application/json", other);
    adyen_expect_error(&again, 422, "validation");
    resp_free(&again);

    /* counted as the Stripe side counts: 6 requests, 1 session */
    registrations("m1:co_a1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 6);

    /* another key: another session */
    adyen_create("m1:co_a2", 1500, id);
    cr_assert_str_neq(id, str(&r, "id"));
    resp_free(&r);

    /* Idempotency-Key: at most 64 characters (Adyen's limit) */
    memset(key, 'k', 65);
    key[65] = '\0';
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, key,
            "application/json", other);
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);
    registrations(key, &created, &requests);
    cr_assert_eq(created, 0);

    key[64] = '\0';
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, key,
            "application/json", other);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    /* without a key: a new session every time */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", other);
    dl_post(&again, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", other);
    cr_assert_eq(r.status, 201);
    cr_assert_eq(again.status, 201);
    cr_assert_str_neq(str(&r, "id"), str(&again, "id"));
    resp_free(&r);
    resp_free(&again);

    free(body);
    free(other);
}


DIALECT_TEST(adyen_registration_validates_like_adyen, dl_start)
{
    size_t       i;
    json_t      *j;
    resp_t       r;
    long long    created, requests;
    char         when[32], key[32];

    static const char  *cases[] = {
        "merchantAccount", "amount.value", "amount.value:str", "currency",
        "currency:lower", "reference", "reference:long", "returnUrl",
        "returnUrl:ftp", "expiresAt:past", "expiresAt:25h", "expiresAt:num",
        "expiresAt:garbage", "mode", "lineItems", "lineItems:empty",
        "lineItems:sum", "lineItems:quantity"
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(key, sizeof(key), "m1:bad_%zu", i);
        j = adyen_json(key, 1500, "EUR", ADYEN_RETURN);

        if (strcmp(cases[i], "merchantAccount") == 0) {
            json_object_del(j, "merchantAccount");
        } else if (strcmp(cases[i], "amount.value") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "value",
                                json_integer(0));
        } else if (strcmp(cases[i], "amount.value:str") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "value",
                                json_string("1500"));
        } else if (strcmp(cases[i], "currency") == 0) {
            json_object_del(json_object_get(j, "amount"), "currency");
        } else if (strcmp(cases[i], "currency:lower") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "currency",
                                json_string("eur"));
        } else if (strcmp(cases[i], "reference") == 0) {
            json_object_del(j, "reference");
        } else if (strcmp(cases[i], "reference:long") == 0) {
            json_object_set_new(j, "reference", json_string(
                "0123456789012345678901234567890123456789"
                "01234567890123456789012345678901234567891"));
        } else if (strcmp(cases[i], "returnUrl") == 0) {
            json_object_del(j, "returnUrl");
        } else if (strcmp(cases[i], "returnUrl:ftp") == 0) {
            json_object_set_new(j, "returnUrl",
                                json_string("ftp://gw.example/r"));
        } else if (strcmp(cases[i], "expiresAt:past") == 0) {
            rfc3339(when, sizeof(when), time(NULL) - 10);
            json_object_set_new(j, "expiresAt", json_string(when));
        } else if (strcmp(cases[i], "expiresAt:25h") == 0) {
            rfc3339(when, sizeof(when), time(NULL) + 25 * 3600);
            json_object_set_new(j, "expiresAt", json_string(when));
        } else if (strcmp(cases[i], "expiresAt:num") == 0) {
            json_object_set_new(j, "expiresAt",
                                json_integer(time(NULL) + 3600));
        } else if (strcmp(cases[i], "expiresAt:garbage") == 0) {
            json_object_set_new(j, "expiresAt", json_string("tomorrow"));
        } else if (strcmp(cases[i], "mode") == 0) {
            json_object_set_new(j, "mode", json_string("embedded"));
        } else if (strcmp(cases[i], "lineItems") == 0) {
            json_object_del(j, "lineItems");
        } else if (strcmp(cases[i], "lineItems:empty") == 0) {
            json_object_set_new(j, "lineItems", json_array());
        } else if (strcmp(cases[i], "lineItems:sum") == 0) {
            json_object_set_new(json_object_get(j, "amount"), "value",
                                json_integer(1501));
        } else {
            json_object_set_new(json_array_get(json_object_get(j,
                                    "lineItems"), 1), "quantity",
                                json_integer(0));
        }

        adyen_post(&r, key, j);
        cr_assert_eq(r.status, 422, "%s: %ld %s", cases[i], r.status,
                     r.body);
        adyen_expect_error(&r, 422, "validation");
        resp_free(&r);

        /* nothing is stored: the fixed body goes through under the key */
        registrations(key, &created, &requests);
        cr_assert_eq(created, 0, "%s", cases[i]);

        adyen_post(&r, key, adyen_json(key, 1500, "EUR", ADYEN_RETURN));
        cr_assert_eq(r.status, 201, "%s fixed: %s", cases[i], r.body);
        resp_free(&r);
    }

    /* not JSON; duplicate keys; not JSON by its type */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", "{\"merchantAccount\":");
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", "{\"reference\":\"a\",\"reference\":\"b\"}");
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/x-www-form-urlencoded", "reference=a");
    adyen_expect_error(&r, 415, "validation");
    resp_free(&r);
}


/* --- Adyen: hosted page and notifications -------------------------------- */

/* Adyen: a refused attempt does not end the session; the shopper pays
 * with another card and a second AUTHORISATION, under a new pspReference,
 * says so (Stripe's decline, by contrast, expires its session). */
DIALECT_TEST(adyen_a_declined_attempt_leaves_the_session_open, dl_start)
{
    char         id[64], path[256], ref[32];
    resp_t       r;
    json_t      *item;

    rx.answer = "[accepted]";
    adyen_create("m1:co_a9", 1200, id);

    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    resp_free(&r);
    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a9", "AUTHORISATION", "false", 1200);
    snprintf(ref, sizeof(ref), "%s", item_str(item, "pspReference"));

    /* the page still offers to pay, and paying works */
    snprintf(path, sizeof(path), "/pay/%s", id);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "id=\"pay\""));
    resp_free(&r);

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    resp_free(&r);
    rx_wait(2, 5000);
    item = adyen_item(&rx.hits[1]);
    adyen_expect_item(item, "m1:co_a9", "AUTHORISATION", "true", 1200);
    cr_assert_str_neq(item_str(item, "pspReference"), ref);
}


DIALECT_TEST(adyen_pay_and_decline_redirect_and_send_signed_authorisations,
             dl_start)
{
    char         id[3][64], path[256], want[512];
    resp_t       r;
    json_t      *item, *s, *events;
    const char  *psp0;

    rx.answer = "[accepted]";

    adyen_create("m1:co_a3", 2500, id[0]);
    adyen_create("m1:co_a4", 2500, id[1]);

    /* the page: the amount and both buttons */
    snprintf(path, sizeof(path), "/pay/%s", id[0]);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "<strong id=\"amount\">25.00 EUR"));
    cr_assert_not_null(strstr(r.body, "id=\"pay\""));
    cr_assert_not_null(strstr(r.body, "id=\"decline\""));
    resp_free(&r);

    /* Pay: back to returnUrl with sessionId and sessionResult added */
    snprintf(path, sizeof(path), "/pay/%s/pay", id[0]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(want, sizeof(want), "%s&sessionId=%s&sessionResult=",
             ADYEN_RETURN, id[0]);
    cr_assert_eq(strncmp(r.location, want, strlen(want)), 0, "%s",
                 r.location);
    cr_assert_gt(strlen(r.location), strlen(want) + 8);
    resp_free(&r);

    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a3", "AUTHORISATION", "true", 2500);
    cr_assert(adyen_signed(item), "%s", rx.hits[0].body);
    cr_assert_str_eq(rx.hits[0].sig, "");
    cr_assert_str_eq(rx.hits[0].jwt, "");
    psp0 = item_str(item, "pspReference");

    /* Decline: the same return URL (Adyen has one), success "false" */
    snprintf(path, sizeof(path), "/pay/%s/decline", id[1]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(want, sizeof(want), "%s&sessionId=%s&sessionResult=",
             ADYEN_RETURN, id[1]);
    cr_assert_eq(strncmp(r.location, want, strlen(want)), 0, "%s",
                 r.location);
    resp_free(&r);

    rx_wait(2, 5000);
    item = adyen_item(&rx.hits[1]);
    adyen_expect_item(item, "m1:co_a4", "AUTHORISATION", "false", 2500);
    cr_assert(adyen_signed(item));
    cr_assert_str_neq(item_str(item, "pspReference"), psp0);

    /* the records, with the gateway's answer */
    events = wh_records_settled(id[0], 1, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "AUTHORISATION");
    cr_assert_eq(rec_int(events, 0, "attempts"), 1);
    cr_assert_eq(rec_int(events, 0, "last_status"), 200);
    cr_assert_str_eq(rec_str(events, 0, "last_body"), "[accepted]");
    cr_assert(rec_delivered(events, 0));
    cr_assert_eq(strncmp(rec_str(events, 0, "id"), psp0, 16), 0);
    json_decref(events);

    /* the control API pays as the page does; a return URL without query */
    adyen_post(&r, "m1:co_a5", adyen_json("m1:co_a5", 700, "EUR",
                                          "https://gw.example/back#top"));
    cr_assert_eq(r.status, 201);
    snprintf(id[2], sizeof(id[2]), "%s", str(&r, "id"));
    resp_free(&r);

    s = session_act(id[2], "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "paid");
    json_decref(s);
    rx_wait(3, 5000);
    item = adyen_item(&rx.hits[2]);
    adyen_expect_item(item, "m1:co_a5", "AUTHORISATION", "true", 700);
    cr_assert(adyen_signed(item));

    snprintf(path, sizeof(path), "/pay/%s/pay", id[2]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    snprintf(want, sizeof(want), "https://gw.example/back?sessionId=%s"
             "&sessionResult=", id[2]);
    cr_assert_eq(strncmp(r.location, want, strlen(want)), 0, "%s",
                 r.location);
    cr_assert_str_eq(r.location + strlen(r.location) - 4, "#top");
    resp_free(&r);

    /* paying again sends nothing; a paid session cannot be declined */
    session_act(id[2], "decline", 409);
    session_act("CSNOSUCHSESSION", "pay", 404);
    /* (a declined Adyen session stays open: see
     * adyen_a_declined_attempt_leaves_the_session_open) */
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


DIALECT_TEST(adyen_without_a_webhook_url_only_logs, dl_start_no_urls)
{
    FILE    *f;
    char     id[64], line[1024];
    int      logged;
    json_t  *events;

    adyen_create("m1:co_a6", 900, id);
    json_decref(session_act(id, "pay", 200));
    usleep(300 * 1000);

    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    cr_assert_eq(rx_count(), 0);

    logged = 0;
    f = fopen(mock_log_path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "event AUTHORISATION true") != NULL
            && strstr(line, id) != NULL)
        {
            logged = 1;
        }
    }
    fclose(f);
    cr_assert(logged, "the event was not logged");
}


DIALECT_TEST(adyen_retries_until_a_2xx, dl_start)
{
    char         id[64];
    json_t      *events;
    static const unsigned  script[] = { 500, 401 };

    rx_script(200, 2, script);

    adyen_create("m1:co_a7", 1200, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(3, 5000);
    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 3);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* the same notification each time */
    cr_assert_str_eq(rx.hits[1].body, rx.hits[0].body);
    cr_assert_str_eq(rx.hits[2].body, rx.hits[0].body);
    cr_assert(adyen_signed(adyen_item(&rx.hits[2])));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 45);
}


DIALECT_TEST(adyen_out_of_order_sends_a_refusal_first, dl_start)
{
    char         id[64];
    json_t      *a, *b, *events;

    fault("{\"match\":\"co_a8\",\"webhook_out_of_order\":true}");
    rx.delay_ms = 200;

    adyen_create("m1:co_a8", 1000, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(2, 5000);
    a = adyen_item(&rx.hits[0]);
    b = adyen_item(&rx.hits[1]);
    adyen_expect_item(a, "m1:co_a8", "AUTHORISATION", "false", 1000);
    adyen_expect_item(b, "m1:co_a8", "AUTHORISATION", "true", 1000);
    cr_assert(adyen_signed(a));
    cr_assert(adyen_signed(b));
    cr_assert_str_neq(item_str(a, "pspReference"), item_str(b,
                                                            "pspReference"));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 190);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_neq(rec_str(events, 0, "id"), rec_str(events, 1, "id"));
    json_decref(events);

    /* no effect on a decline */
    adyen_create("m1:co_a8b", 1000, id);
    json_decref(session_act(id, "decline", 200));
    rx_wait(3, 5000);
    usleep(400 * 1000);
    cr_assert_eq(rx_count(), 3);
    adyen_expect_item(adyen_item(&rx.hits[2]), "m1:co_a8b", "AUTHORISATION",
                      "false", 1000);
}


DIALECT_TEST(adyen_bad_signature_does_not_verify_and_is_retried, dl_start)
{
    char         id[64];
    json_t      *events;
    static const unsigned  script[] = { 401 };

    fault("{\"match\":\"co_a9\",\"webhook_bad_signature\":true}");
    rx_script(200, 1, script);

    adyen_create("m1:co_a9", 1000, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(2, 5000);
    adyen_expect_item(adyen_item(&rx.hits[0]), "m1:co_a9", "AUTHORISATION",
                      "true", 1000);
    cr_assert_not(adyen_signed(adyen_item(&rx.hits[0])));
    cr_assert_not(adyen_signed(adyen_item(&rx.hits[1])));

    events = wh_records_settled(id, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 2);
    json_decref(events);

    /* the rule applies to its session only */
    adyen_create("m1:co_b9", 1000, id);
    json_decref(session_act(id, "pay", 200));
    rx_wait(3, 5000);
    cr_assert(adyen_signed(adyen_item(&rx.hits[2])));
}


/* Adyen's signature has no timestamp: webhook_stale changes nothing. */
DIALECT_TEST(adyen_stale_has_no_effect, dl_start)
{
    char         id[64];
    json_t      *item;
    struct tm    tm;
    const char  *end;

    fault("{\"match\":\"co_a10\",\"webhook_stale\":true}");

    adyen_create("m1:co_a10", 1000, id);
    json_decref(session_act(id, "pay", 200));

    rx_wait(1, 5000);
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a10", "AUTHORISATION", "true", 1000);
    cr_assert(adyen_signed(item));

    memset(&tm, 0, sizeof(tm));
    end = strptime(item_str(item, "eventDate"), "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_not_null(end, "eventDate %s", item_str(item, "eventDate"));
    cr_assert_leq(llabs((long long) timegm(&tm) - (long long) time(NULL)), 5);
}


DIALECT_TEST(adyen_async_payment_sends_pending_then_authorisation, dl_start)
{
    char         id[64];
    json_t      *a, *b, *s, *events;

    fault("{\"match\":\"co_a11\",\"async_payment\":true,"
          "\"async_delay_ms\":300}");

    adyen_create("m1:co_a11", 1000, id);
    s = session_act(id, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "unpaid");
    json_decref(s);

    rx_wait(2, 5000);
    a = adyen_item(&rx.hits[0]);
    b = adyen_item(&rx.hits[1]);
    adyen_expect_item(a, "m1:co_a11", "PENDING", "true", 1000);
    adyen_expect_item(b, "m1:co_a11", "AUTHORISATION", "true", 1000);
    cr_assert(adyen_signed(a));
    cr_assert(adyen_signed(b));
    cr_assert_str_neq(item_str(a, "pspReference"), item_str(b,
                                                            "pspReference"));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 290);

    events = wh_records_settled(id, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "PENDING");
    cr_assert_str_eq(rec_str(events, 1, "type"), "AUTHORISATION");
    json_decref(events);

    /* the session is paid by now */
    s = session_act(id, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "paid");
    json_decref(s);
}


DIALECT_TEST(adyen_duplicate_delay_and_amount, dl_start)
{
    int          i;
    char         id[64];
    double       t0;
    json_t      *item, *events;

    fault("{\"match\":\"co_a12\",\"webhook_duplicate\":2,"
          "\"webhook_delay_ms\":400,\"webhook_amount\":1}");

    adyen_create("m1:co_a12", 1000, id);
    t0 = now_ms();
    json_decref(session_act(id, "pay", 200));

    /* listed at once, not attempted yet */
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 3);
    cr_assert_eq(rec_int(events, 0, "attempts"), 0);
    json_decref(events);

    rx_wait(3, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_geq(rx.hits[i].at - t0, 390);
        cr_assert_str_eq(rx.hits[i].body, rx.hits[0].body);
    }
    cr_assert_lt(rx.hits[2].at - rx.hits[0].at, 500, "not concurrent");

    /* the amount lies, and the signature covers the lie */
    item = adyen_item(&rx.hits[0]);
    adyen_expect_item(item, "m1:co_a12", "AUTHORISATION", "true", 1);
    cr_assert(adyen_signed(item));

    events = wh_records_settled(id, 3, 1, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rec_str(events, (size_t) i, "id"),
                         rec_str(events, 0, "id"));
        cr_assert(rec_delivered(events, (size_t) i));
    }
    json_decref(events);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 3);
}


/* A session created without a key: the rules match its reference. */
DIALECT_TEST(adyen_rules_match_the_reference_without_a_key, dl_start)
{
    char         id[64];
    resp_t       r;

    fault("{\"match\":\"co_a13\",\"webhook_amount\":5}");

    adyen_post(&r, NULL, adyen_json("m1:co_a13", 1000, "EUR", ADYEN_RETURN));
    cr_assert_eq(r.status, 201);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    resp_free(&r);

    json_decref(session_act(id, "pay", 200));
    rx_wait(1, 5000);
    cr_assert_eq(item_value(adyen_item(&rx.hits[0])), 5);
}


/* --- generic: registration ------------------------------------------------ */

DIALECT_TEST(generic_registration_key_and_idempotency, dl_start)
{
    char         key[300], url[256], *body, *other;
    resp_t       r, again;
    long long    created, requests, exp;

    exp = (long long) time(NULL) + 7200;
    body = dump(json_pack("{ss ss ss ss ss sI}", "reference", "m1:co_g1",
                          "amount", "12.30", "currency", "USD",
                          "return_url", GEN_RETURN, "cancel_url", GEN_CANCEL,
                          "expires_at", (json_int_t) exp));
    other = dump(generic_json("m1:co_g1", "12.31", "USD"));

    dl_post(&r, "/sessions", NULL, "m1:co_g1", "application/json", body);
    cr_assert_eq(r.status, 401, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "unauthorized");
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY "x",
            "m1:co_g1", "application/json", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Basic " GEN_KEY, "m1:co_g1",
            "application/json", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    /* the Stripe secret is not the generic one */
    dl_post(&r, "/sessions", "Authorization: Bearer " SECRET, "m1:co_g1",
            "application/json", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_g1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(json_object_size(r.json), 3, "%s", r.body);
    cr_assert_eq(strncmp(str(&r, "token"), "gs_", 3), 0);
    cr_assert_eq(strlen(str(&r, "token")), 27);
    snprintf(url, sizeof(url), "%s/pay/%s", mock_url, str(&r, "token"));
    cr_assert_str_eq(str(&r, "url"), url);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_at")),
                 exp);

    dl_post(&again, "/sessions", "Authorization: Bearer " GEN_KEY,
            "m1:co_g1", "application/json", body);
    cr_assert_eq(again.status, 201);
    cr_assert(again.replayed);
    cr_assert_str_eq(again.body, r.body);
    resp_free(&again);

    dl_post(&again, "/sessions", "Authorization: Bearer " GEN_KEY,
            "m1:co_g1", "application/json", other);
    cr_assert_eq(again.status, 422, "%s", again.body);
    cr_assert_str_eq(error_field(&again, "code"), "idempotency_key_reused");
    resp_free(&again);
    resp_free(&r);

    registrations("m1:co_g1", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 7);

    /* keys up to 255 characters */
    memset(key, 'k', 256);
    key[256] = '\0';
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, key,
            "application/json", other);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "idempotency_key_invalid");
    resp_free(&r);

    key[255] = '\0';
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, key,
            "application/json", other);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    free(body);
    free(other);
}


/* The amount string, parsed in the currency's exponent: minor units. */
DIALECT_TEST(generic_amounts_are_exact_in_the_currency_exponent, dl_start)
{
    size_t       i;
    char         token[64], key[32];
    resp_t       r;
    json_t      *s, *j;

    static const struct {
        const char  *amount, *currency;
        long long    minor;
        const char  *back;                   /* as the webhook says it */
    } good[] = {
        { "10", "USD", 1000, "10.00" },
        { "10.5", "USD", 1050, "10.50" },
        { "10.50", "USD", 1050, "10.50" },
        { "0.01", "USD", 1, "0.01" },
        { "1.500", "KWD", 1500, "1.500" },
        { "0.001", "BHD", 1, "0.001" },
        { "7", "JPY", 7, "7" },
        { "92233720368547758.07", "EUR", 9223372036854775807LL,
          "92233720368547758.07" },
    };

    static const struct {
        const char  *amount, *currency;
    } bad[] = {
        { "7.0", "JPY" }, { "1.001", "USD" }, { "010.00", "USD" },
        { "+10", "USD" }, { "-10", "USD" }, { "1e3", "USD" },
        { " 10", "USD" }, { "10 ", "USD" }, { "10,00", "USD" },
        { "10.", "USD" }, { ".5", "USD" }, { "0", "USD" },
        { "0.00", "USD" }, { "", "USD" }, { "1.2.3", "USD" },
        { "92233720368547758.08", "EUR" }, { "9223372036854775808", "JPY" },
        { "99999999999999999999999", "USD" }
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(key, sizeof(key), "m1:amt_%zu", i);
        generic_create(key, good[i].amount, good[i].currency, token);

        s = session_act(token, "pay", 200);
        cr_assert_eq(json_integer_value(json_object_get(s, "amount_total")),
                     good[i].minor, "%s %s", good[i].amount,
                     good[i].currency);
        json_decref(s);

        rx_wait((int) i + 1, 5000);
        generic_expect_event(&rx.hits[i], "payment.succeeded", key, token,
                             good[i].back, good[i].currency);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        generic_post(&r, NULL, generic_json("m1:amt_bad", bad[i].amount,
                                            bad[i].currency));
        cr_assert_eq(r.status, 400, "\"%s\" %s: %ld %s", bad[i].amount,
                     bad[i].currency, r.status, r.body);
        cr_assert_str_eq(error_field(&r, "code"), "invalid_amount");
        resp_free(&r);
    }

    /* a JSON number is no amount */
    j = generic_json("m1:amt_num", "1", "USD");
    json_object_set_new(j, "amount", json_integer(10));
    generic_post(&r, NULL, j);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_field(&r, "code"), "invalid_amount");
    resp_free(&r);
}


DIALECT_TEST(generic_registration_validates, dl_start)
{
    size_t       i;
    json_t      *j;
    resp_t       r;

    static const struct {
        const char  *field;
        int          kind;                   /* 0 delete, 1 string, 2 int */
        const char  *value;
        long long    offset;                 /* kind 2: now + offset */
        const char  *code;
    } cases[] = {
        { "reference", 0, NULL, 0, "invalid_reference" },
        { "reference", 1, "", 0, "invalid_reference" },
        { "currency", 0, NULL, 0, "invalid_currency" },
        { "currency", 1, "usd", 0, "invalid_currency" },
        { "currency", 1, "USDX", 0, "invalid_currency" },
        { "amount", 0, NULL, 0, "invalid_amount" },
        { "return_url", 0, NULL, 0, "invalid_url" },
        { "return_url", 1, "javascript:alert(1)", 0, "invalid_url" },
        { "cancel_url", 0, NULL, 0, "invalid_url" },
        { "cancel_url", 1, "https://", 0, "invalid_url" },
        { "expires_at", 2, NULL, -5, "invalid_expires_at" },
        { "expires_at", 2, NULL, 25 * 3600, "invalid_expires_at" },
        { "expires_at", 1, "1800000000", 0, "invalid_expires_at" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        j = generic_json("m1:co_gv", "5.00", "USD");

        if (cases[i].kind == 0) {
            json_object_del(j, cases[i].field);
        } else if (cases[i].kind == 1) {
            json_object_set_new(j, cases[i].field,
                                json_string(cases[i].value));
        } else {
            json_object_set_new(j, cases[i].field,
                                json_integer(time(NULL) + cases[i].offset));
        }

        generic_post(&r, NULL, j);
        cr_assert_eq(r.status, 400, "%zu %s: %ld %s", i, cases[i].field,
                     r.status, r.body);
        cr_assert_str_eq(error_field(&r, "code"), cases[i].code, "%zu: %s",
                         i, r.body);
        resp_free(&r);
    }

    /* expires_at may be left out */
    j = generic_json("m1:co_gv", "5.00", "USD");
    json_object_del(j, "expires_at");
    generic_post(&r, NULL, j);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, NULL,
            "text/plain", "{}");
    cr_assert_eq(r.status, 415);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, NULL,
            "application/json", "[1]");
    cr_assert_eq(r.status, 400);
    resp_free(&r);
}


/* --- generic: hosted page and webhooks ------------------------------------ */

DIALECT_TEST(generic_pay_and_decline_redirect_and_send_es256_webhooks,
             dl_start)
{
    char         tok[2][64], path[256];
    resp_t       r;
    jwt_t        j;
    json_t      *events;

    rx.answer = "{\"received\":true}";

    generic_create("m1:co_g2", "1.500", "KWD", tok[0]);
    generic_create("m1:co_g3", "20", "USD", tok[1]);

    snprintf(path, sizeof(path), "/pay/%s", tok[0]);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "<strong id=\"amount\">1.500 KWD"));
    resp_free(&r);

    /* Pay: to return_url, exactly */
    snprintf(path, sizeof(path), "/pay/%s/pay", tok[0]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, GEN_RETURN);
    resp_free(&r);

    rx_wait(1, 5000);
    generic_expect_event(&rx.hits[0], "payment.succeeded", "m1:co_g2",
                         tok[0], "1.500", "KWD");
    cr_assert_str_eq(rx.hits[0].sig, "");
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert(j.verified, "the ES256 signature does not verify");
    jwt_expect(&j, &rx.hits[0], "mock-es256", 0);
    cr_assert_null(json_object_get(j.claims, "iss"));
    cr_assert_null(json_object_get(j.claims, "aud"));
    jwt_close(&j);

    /* Decline: to cancel_url, payment.failed */
    snprintf(path, sizeof(path), "/pay/%s/decline", tok[1]);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    cr_assert_str_eq(r.location, GEN_CANCEL);
    resp_free(&r);

    rx_wait(2, 5000);
    generic_expect_event(&rx.hits[1], "payment.failed", "m1:co_g3", tok[1],
                         "20.00", "USD");
    jwt_open(rx.hits[1].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[1], "mock-es256", 0);
    jwt_close(&j);
    cr_assert_str_neq(hit_str(&rx.hits[0], "event_id"),
                      hit_str(&rx.hits[1], "event_id"));

    events = wh_records_settled(tok[0], 1, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "id"),
                     hit_str(&rx.hits[0], "event_id"));
    cr_assert_str_eq(rec_str(events, 0, "type"), "payment.succeeded");
    cr_assert_str_eq(rec_str(events, 0, "last_body"), "{\"received\":true}");
    cr_assert(rec_delivered(events, 0));
    json_decref(events);

    /* paid: again is a no-op, decline 409; declined: 410 */
    session_act(tok[0], "pay", 200);
    session_act(tok[0], "decline", 409);
    session_act(tok[1], "pay", 410);
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 2);
}


DIALECT_TEST(generic_every_attempt_is_signed_anew, dl_start)
{
    int          i;
    char         tok[64];
    jwt_t        j;
    json_t      *events;
    static const unsigned  script[] = { 500, 400 };

    rx_script(200, 2, script);

    generic_create("m1:co_g4", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));

    rx_wait(3, 5000);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(rx.hits[i].body, rx.hits[0].body);
        jwt_open(rx.hits[i].jwt, &j);
        cr_assert(j.verified, "attempt %d", i + 1);
        jwt_expect(&j, &rx.hits[i], "mock-es256", 0);
        jwt_close(&j);
    }
    /* ECDSA signatures differ even within one second */
    cr_assert_str_neq(rx.hits[1].jwt, rx.hits[0].jwt);

    events = wh_records_settled(tok, 1, 10, 5000);
    cr_assert_eq(rec_int(events, 0, "attempts"), 3);
    cr_assert(rec_delivered(events, 0));
    json_decref(events);
}


DIALECT_TEST(generic_out_of_order_sends_payment_failed_first, dl_start)
{
    char         tok[64];
    jwt_t        j;
    json_t      *events;

    fault("{\"match\":\"co_g5\",\"webhook_out_of_order\":true}");
    rx.delay_ms = 200;

    generic_create("m1:co_g5", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));

    rx_wait(2, 5000);
    generic_expect_event(&rx.hits[0], "payment.failed", "m1:co_g5", tok,
                         "3.00", "EUR");
    generic_expect_event(&rx.hits[1], "payment.succeeded", "m1:co_g5", tok,
                         "3.00", "EUR");
    cr_assert_str_neq(hit_str(&rx.hits[0], "event_id"),
                      hit_str(&rx.hits[1], "event_id"));
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 190);
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert(j.verified);
    jwt_close(&j);

    events = wh_records_settled(tok, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "payment.failed");
    cr_assert_str_eq(rec_str(events, 1, "type"), "payment.succeeded");
    json_decref(events);
}


DIALECT_TEST(generic_bad_signature_and_stale, dl_start)
{
    char         tok[2][64];
    jwt_t        j;
    static const unsigned  script[] = { 400 };

    fault("{\"match\":\"co_g6\",\"webhook_bad_signature\":true}");
    fault("{\"match\":\"co_g7\",\"webhook_stale\":true}");
    rx_script(200, 1, script);

    /* bad: the claims are right, the signature is not; retried */
    generic_create("m1:co_g6", "3.00", "EUR", tok[0]);
    json_decref(session_act(tok[0], "pay", 200));
    rx_wait(2, 5000);
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert_not(j.verified, "a bad signature verified");
    jwt_expect(&j, &rx.hits[0], "mock-es256", 0);
    jwt_close(&j);
    jwt_open(rx.hits[1].jwt, &j);
    cr_assert_not(j.verified);
    jwt_close(&j);

    /* stale: signed right, with an iat 600 s old */
    generic_create("m1:co_g7", "3.00", "EUR", tok[1]);
    json_decref(session_act(tok[1], "pay", 200));
    rx_wait(3, 5000);
    jwt_open(rx.hits[2].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[2], "mock-es256", 600);
    jwt_close(&j);
}


DIALECT_TEST(generic_async_payment_sends_pending_first, dl_start)
{
    char         tok[64];
    jwt_t        j;
    json_t      *s, *events;

    fault("{\"match\":\"co_g8\",\"async_payment\":true,"
          "\"async_delay_ms\":300}");

    generic_create("m1:co_g8", "3.00", "EUR", tok);
    s = session_act(tok, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "unpaid");
    json_decref(s);

    rx_wait(2, 5000);
    generic_expect_event(&rx.hits[0], "payment.pending", "m1:co_g8", tok,
                         "3.00", "EUR");
    generic_expect_event(&rx.hits[1], "payment.succeeded", "m1:co_g8", tok,
                         "3.00", "EUR");
    cr_assert_geq(rx.hits[1].at - rx.hits[0].at, 290);
    jwt_open(rx.hits[1].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[1], "mock-es256", 0);
    jwt_close(&j);

    events = wh_records_settled(tok, 2, 1, 5000);
    cr_assert_str_eq(rec_str(events, 0, "type"), "payment.pending");
    json_decref(events);

    s = session_act(tok, "pay", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "payment_status")),
                     "paid");
    json_decref(s);
}


DIALECT_TEST(generic_duplicate_delay_and_amount, dl_start)
{
    int          i;
    char         tok[64];
    double       t0;
    jwt_t        j;

    fault("{\"match\":\"co_g9\",\"webhook_duplicate\":1,"
          "\"webhook_delay_ms\":400,\"webhook_amount\":1}");

    generic_create("m1:co_g9", "3.00", "EUR", tok);
    t0 = now_ms();
    json_decref(session_act(tok, "pay", 200));

    rx_wait(2, 5000);
    for (i = 0; i < 2; i++) {
        cr_assert_geq(rx.hits[i].at - t0, 390);
        generic_expect_event(&rx.hits[i], "payment.succeeded", "m1:co_g9",
                             tok, "0.01", "EUR");
        jwt_open(rx.hits[i].jwt, &j);
        cr_assert(j.verified);
        jwt_close(&j);
    }
    cr_assert_str_eq(rx.hits[1].body, rx.hits[0].body);

    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 2);
}


DIALECT_TEST(generic_jwt_kid_iss_aud_and_header_flags, dl_start_claims)
{
    char         tok[64];
    jwt_t        j;

    generic_create("m1:co_g10", "3.00", "EUR", tok);
    json_decref(session_act(tok, "decline", 200));

    rx_wait(1, 5000);
    generic_expect_event(&rx.hits[0], "payment.failed", "m1:co_g10", tok,
                         "3.00", "EUR");
    jwt_open(rx.hits[0].jwt, &j);
    cr_assert(j.verified);
    jwt_expect(&j, &rx.hits[0], "kid-1", 0);
    cr_assert_str_eq(json_string_value(json_object_get(j.claims, "iss")),
                     "https://psp.example");
    cr_assert_str_eq(json_string_value(json_object_get(j.claims, "aud")),
                     "ngx_payments");
    jwt_close(&j);
}


DIALECT_TEST(generic_without_a_webhook_url_only_logs, dl_start_no_urls)
{
    char     tok[64];
    json_t  *events;

    generic_create("m1:co_g11", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));
    usleep(300 * 1000);

    events = wh_records(tok);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    cr_assert_eq(rx_count(), 0);
}


/* --- command line --------------------------------------------------------- */

/* The exit status of the mock run with the Stripe basics and args. */
static int
mock_exit_status(const char *const *args)
{
    int          status;
    size_t       k, i;
    pid_t        pid;
    const char  *bin, *argv[32];

    bin = getenv("MOCK_PSP_BIN");
    if (bin == NULL) {
        bin = "build/mock_psp";
    }

    k = 0;
    argv[k++] = bin;
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k++] = "--stripe-secret";
    argv[k++] = SECRET;
    for (i = 0; args[i] != NULL && k < 31; i++) {
        argv[k++] = args[i];
    }
    argv[k] = NULL;

    pid = fork();
    cr_assert_neq(pid, -1);

    if (pid == 0) {
        int  fd;

        fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        execv(bin, (char *const *) argv);
        _exit(127);
    }

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "status %d", status);

    return WEXITSTATUS(status);
}


Test(dialects, refuses_bad_dialect_flags, .timeout = 60)
{
    size_t  i;
    char    rsa[128], cmd[512];

    dl_keys();
    snprintf(rsa, sizeof(rsa), "%s/rsa.pem", dl_dir);
    snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm RSA "
             "-pkeyopt rsa_keygen_bits:1024 -out %s 2>/dev/null", rsa);
    cr_assert_eq(system(cmd), 0);

    {
        const char  *bad[][8] = {
            /* an unsigned webhook would test nothing */
            { "--adyen-secret", "k", "--adyen-webhook-url", "http://x/", NULL },
            { "--generic-secret", "k", "--generic-webhook-url", "http://x/",
              NULL },
            { "--adyen-hmac-key", "DFB1", NULL },
            { "--adyen-hmac-key", "ZZB1EB5485895CFA84146406857104ABB4CBCABDC8"
              "AAF103A624C8F6A3EAAB00", NULL },
            { "--adyen-webhook-url", "ftp://x/", "--adyen-hmac-key", ADYEN_HMAC,
              NULL },
            { "--generic-jwt-key", "/nonexistent.pem", NULL },
            { "--generic-jwt-key", rsa, NULL },
            { "--generic-jwt-key", dl_pub, NULL },
            { "--generic-jwt-header", "Bad Header", NULL },
            { "--generic-jwt-header", "", NULL },
            { "--generic-jwt-kid", "", NULL },
            { "--generic-jwt-iss", "a\tb", NULL },
        };

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            cr_assert_eq(mock_exit_status(bad[i]), 2, "case %zu (%s %s)", i,
                         bad[i][0], bad[i][1]);
        }
    }

    {
        /* --help lists every dialect flag (ci/services.sh looks) */
        FILE        *f;
        char         out[8192];
        size_t       n;
        const char  *bin;

        static const char  *flags[] = {
            "--adyen-secret", "--adyen-hmac-key", "--adyen-webhook-url",
            "--generic-secret", "--generic-jwt-key", "--generic-jwt-kid",
            "--generic-jwt-iss", "--generic-jwt-aud", "--generic-jwt-header",
            "--generic-webhook-url", "--webhook-url"
        };

        bin = getenv("MOCK_PSP_BIN");
        snprintf(cmd, sizeof(cmd), "%s --help 2>&1",
                 bin ? bin : "build/mock_psp");
        f = popen(cmd, "r");
        cr_assert_not_null(f);
        n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        cr_assert_eq(pclose(f), 0);

        for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
            cr_assert_not_null(strstr(out, flags[i]), "--help lacks %s",
                               flags[i]);
        }
    }

    dl_cleanup();
}


/* Without their secrets the Adyen and generic APIs are not there. */
MOCK_TEST(dialect_apis_are_off_without_their_secrets)
{
    resp_t  r;

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, NULL,
            "application/json", "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


/* The registration fault rules, worded each PSP's way. */
DIALECT_TEST(registration_faults_in_both_dialects, dl_start)
{
    char         id[64], *body;
    resp_t       r;
    long long    created, requests;

    fault("{\"match\":\"co_f1\",\"fail_times\":1,\"fail_status\":503}");
    fault("{\"match\":\"co_f2\",\"refuse_status\":402}");
    fault("{\"match\":\"co_f3\",\"hosted_url\":\"https://evil.example/x\"}");
    fault("{\"match\":\"co_f4\",\"drop_after_register\":1}");

    /* Adyen: a transient failure, then the session */
    body = dump(adyen_json("m1:co_f1a", 1000, "EUR", ADYEN_RETURN));
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_f1a",
            "application/json", body);
    adyen_expect_error(&r, 503, "internal");
    resp_free(&r);
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_f1a",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_not(r.replayed);
    resp_free(&r);
    free(body);
    registrations("m1:co_f1a", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);

    /* generic (a rule of its own: only the first match applies) */
    fault("{\"match\":\"co_h1\",\"fail_times\":1,\"fail_status\":500}");
    body = dump(generic_json("m1:co_h1", "1.00", "EUR"));
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_h1",
            "application/json", body);
    cr_assert_eq(r.status, 500, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "unavailable");
    resp_free(&r);
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_h1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    free(body);

    /* refused for good */
    adyen_post(&r, "m1:co_f2a", adyen_json("m1:co_f2a", 1000, "EUR",
                                           ADYEN_RETURN));
    adyen_expect_error(&r, 402, "validation");
    resp_free(&r);
    generic_post(&r, "m1:co_f2g", generic_json("m1:co_f2g", "1.00", "EUR"));
    cr_assert_eq(r.status, 402, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "refused");
    resp_free(&r);
    registrations("m1:co_f2g", &created, &requests);
    cr_assert_eq(created, 0);

    /* an off-list hosted page */
    adyen_post(&r, "m1:co_f3a", adyen_json("m1:co_f3a", 1000, "EUR",
                                           ADYEN_RETURN));
    cr_assert_str_eq(str(&r, "url"), "https://evil.example/x");
    resp_free(&r);
    generic_post(&r, "m1:co_f3g", generic_json("m1:co_f3g", "1.00", "EUR"));
    cr_assert_str_eq(str(&r, "url"), "https://evil.example/x");
    resp_free(&r);

    /* registered, then the connection dropped: the retry gets it */
    body = dump(generic_json("m1:co_f4g", "1.00", "EUR"));
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_f4g",
            "application/json", body);
    cr_assert_neq(r.rc, CURLE_OK);
    resp_free(&r);
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_f4g",
            "application/json", body);
    cr_assert_eq(r.status, 201);
    cr_assert(r.replayed);
    snprintf(id, sizeof(id), "%s", str(&r, "token"));
    resp_free(&r);
    free(body);
    registrations("m1:co_f4g", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
    json_decref(session_act(id, "pay", 200));
}


/* --- session look-ups (the sweeper's) and the knobs it is tested with --- */

/* GET path with exactly the header line auth (or none). */
static void
dl_get(resp_t *r, const char *path, const char *auth)
{
    CURL               *h;
    struct curl_slist  *hdrs;

    h = prepare(r, &hdrs, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    if (auth != NULL) {
        hdrs = curl_slist_append(hdrs, auth);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    r->rc = curl_easy_perform(h);
    finish(r, h, hdrs);
}


/* GET /v1/checkout/sessions/{id}: its status and payment_status. */
static void
stripe_state(const char *id, const char *status, const char *paid)
{
    resp_t  r;
    char    path[256];

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), status, "%s", r.body);
    cr_assert_str_eq(str(&r, "payment_status"), paid, "%s", r.body);
    resp_free(&r);
}


MOCK_TEST(stripe_retrieve_tells_the_sweeper_the_sessions_state)
{
    char    paid[64], gone[64], path[256];
    resp_t  r;

    snprintf(paid, sizeof(paid), "%s", create_ok("m1:co_lk1", 1000));
    snprintf(gone, sizeof(gone), "%s", create_ok("m1:co_lk2", 1000));

    stripe_state(paid, "open", "unpaid");
    session_post(paid, "pay", 200);
    stripe_state(paid, "complete", "paid");

    session_post(gone, "expire", 200);
    stripe_state(gone, "expired", "unpaid");

    /* credentials as for the create */
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", paid);
    request(&r, "GET", path, AUTH_BAD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);
}


/* The control API's expire: as if expires_at had passed, no webhook. */
WEBHOOK_TEST(expire_ends_an_open_session_without_a_webhook, "50")
{
    char     id[64], paid[64], path[256];
    resp_t   r;
    json_t  *events;

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_exp", 1000));
    snprintf(paid, sizeof(paid), "%s", create_ok("m1:wh_exp_paid", 1000));

    snprintf(path, sizeof(path), "/_control/sessions/%s/expire", id);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "status"), "expired");
    cr_assert_str_eq(str(&r, "id"), id);
    resp_free(&r);
    stripe_state(id, "expired", "unpaid");

    /* again: nothing changes; the shopper can no longer pay */
    session_post(id, "expire", 200);
    session_post(id, "pay", 410);
    snprintf(path, sizeof(path), "/pay/%s", id);
    request(&r, "GET", path, AUTH_NONE, NULL, NULL, NULL);
    cr_assert_eq(r.status, 410);
    resp_free(&r);

    /* a paid session does not expire; unknown ones do not exist */
    session_post(paid, "pay", 200);
    session_post(paid, "expire", 409);
    stripe_state(paid, "complete", "paid");
    session_post("cs_test_unknown", "expire", 404);
    control(&r, "GET", "/_control/sessions/x/expire", NULL);
    cr_assert_eq(r.status, 405);
    resp_free(&r);

    /* the paid one's webhook came; the expired one sent none */
    rx_wait(1, 5000);
    cr_assert_str_eq(wh_type(&rx.hits[0]), "checkout.session.completed");
    usleep(300 * 1000);
    cr_assert_eq(rx_count(), 1);
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
}


WEBHOOK_TEST(webhook_never_pays_but_sends_nothing, "50")
{
    char     id[64], declined[64], other[64];
    json_t  *events, *rules;
    resp_t   r;

    fault("{\"match\":\"wh_never\",\"webhook_never\":true,"
          "\"webhook_duplicate\":2}");

    snprintf(id, sizeof(id), "%s", create_ok("m1:wh_never_1", 1000));
    snprintf(declined, sizeof(declined), "%s",
             create_ok("m1:wh_never_2", 1000));
    snprintf(other, sizeof(other), "%s", create_ok("m1:wh_other", 1000));

    session_post(id, "pay", 200);
    session_post(declined, "decline", 200);
    session_post(other, "pay", 200);

    /* the session outside the rule gets its webhook, and only it */
    rx_wait(1, 5000);
    cr_assert_str_eq(json_string_value(json_object_get(wh_object(&rx.hits[0]),
                                                       "id")), other);
    usleep(500 * 1000);
    cr_assert_eq(rx_count(), 1);

    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    events = wh_records(declined);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    /* while the look-up tells the truth */
    stripe_state(id, "complete", "paid");
    stripe_state(declined, "expired", "unpaid");

    /* the rule lists it */
    control(&r, "GET", "/_control/faults", NULL);
    cr_assert_eq(r.status, 200);
    rules = json_object_get(r.json, "faults");
    cr_assert(json_is_true(json_object_get(json_array_get(rules, 0),
                                           "webhook_never")), "%s", r.body);
    resp_free(&r);
}


WEBHOOK_TEST(refuses_malformed_webhook_never, "50")
{
    size_t  i;
    resp_t  r;

    static const char  *bad[] = {
        "{\"webhook_never\":1}",
        "{\"webhook_never\":\"true\"}",
        "{\"webhook_never\":null}",
        "{\"webhook_never\":true,\"async_payment\":true}",
        "{\"webhooks_never\":true}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        control(&r, "POST", "/_control/faults", bad[i]);
        cr_assert_eq(r.status, 400, "%s: %ld", bad[i], r.status);
        resp_free(&r);
    }

    fault("{\"match\":\"x\",\"webhook_never\":false,\"async_payment\":true}");
    fault("{\"match\":\"y\",\"webhook_never\":true}");
}


/* sessionResult from the return URL the hosted page sends the shopper to */
static void
adyen_session_result(const char *location, char *out, size_t size)
{
    const char  *p;

    p = strstr(location, "sessionResult=");
    cr_assert_not_null(p, "%s", location);
    p += strlen("sessionResult=");
    snprintf(out, size, "%.*s", (int) strcspn(p, "&#"), p);
    cr_assert_gt(strlen(out), 0);
}


static void
adyen_lookup(resp_t *r, const char *id, const char *result)
{
    char  path[512];

    if (result != NULL) {
        snprintf(path, sizeof(path), "/v71/sessions/%s?sessionResult=%s", id,
                 result);
    } else {
        snprintf(path, sizeof(path), "/v71/sessions/%s", id);
    }

    dl_get(r, path, "X-API-Key: " ADYEN_KEY);
}


static void
adyen_expect_status(const char *id, const char *result, const char *ref,
    const char *status)
{
    resp_t  r;

    adyen_lookup(&r, id, result);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "id"), id);
    cr_assert_str_eq(str(&r, "reference"), ref);
    cr_assert_str_eq(str(&r, "status"), status, "%s", r.body);
    /* no more than Adyen's answer: no amount to lean on */
    cr_assert_null(json_object_get(r.json, "amount"), "%s", r.body);
    resp_free(&r);
}


DIALECT_TEST(adyen_session_result_lookup, dl_start)
{
    char         id[64], gone[64], pend[64], tok[64], path[256];
    char         result[64], gresult[64], presult[64];
    resp_t       r;
    json_t      *s;

    rx.answer = "[accepted]";
    adyen_create("m1:co_al1", 1500, id);
    adyen_create("m1:co_al2", 1500, gone);
    generic_create("m1:co_al3", "1.00", "EUR", tok);

    /* a refused attempt: back with a sessionResult, the session active */
    snprintf(path, sizeof(path), "/pay/%s/decline", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    adyen_session_result(r.location, result, sizeof(result));
    resp_free(&r);
    adyen_expect_status(id, result, "m1:co_al1", "active");

    /* Adyen answers only with the sessionResult, and only its own; the
     * parameter is required by Adyen's document (422 with the rule) */
    adyen_lookup(&r, id, NULL);
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"), "sessionResult"), "%s",
                       r.body);
    resp_free(&r);
    adyen_lookup(&r, id, "");
    adyen_expect_error(&r, 400, "validation");
    resp_free(&r);
    adyen_lookup(&r, id, "Ab02b4c0wrong");
    adyen_expect_error(&r, 422, "validation");
    resp_free(&r);

    /* credentials as for the create */
    snprintf(path, sizeof(path), "/v71/sessions/%s?sessionResult=%s", id,
             result);
    dl_get(&r, path, "X-API-Key: wrong");
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);
    dl_get(&r, path, NULL);
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    /* unknown here: no such session, or another dialect's */
    adyen_lookup(&r, "CSUNKNOWN0000000", result);
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
    adyen_lookup(&r, tok, result);
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    /* paid */
    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    resp_free(&r);
    adyen_expect_status(id, result, "m1:co_al1", "completed");

    /* expired: the control API's expire, or its time */
    s = session_act(gone, "expire", 200);
    cr_assert_str_eq(json_string_value(json_object_get(s, "success_url")),
                     json_string_value(json_object_get(s, "cancel_url")));
    adyen_session_result(json_string_value(json_object_get(s,
                                                           "success_url")),
                         gresult, sizeof(gresult));
    json_decref(s);
    adyen_expect_status(gone, gresult, "m1:co_al2", "expired");

    /* paid by a method that settles later */
    fault("{\"match\":\"co_al4\",\"async_payment\":true,"
          "\"async_delay_ms\":600000}");
    adyen_create("m1:co_al4", 1500, pend);
    s = session_act(pend, "pay", 200);
    adyen_session_result(json_string_value(json_object_get(s,
                                                           "success_url")),
                         presult, sizeof(presult));
    json_decref(s);
    adyen_expect_status(pend, presult, "m1:co_al4", "paymentPending");
}


DIALECT_TEST(adyen_webhook_never_leaves_only_the_lookup, dl_start)
{
    char     id[64], result[64], path[256];
    resp_t   r;
    json_t  *events;

    fault("{\"match\":\"co_an\",\"webhook_never\":true}");
    adyen_create("m1:co_an1", 1500, id);

    snprintf(path, sizeof(path), "/pay/%s/pay", id);
    request(&r, "POST", path, AUTH_NONE, NULL, NULL, "");
    cr_assert_eq(r.status, 303);
    adyen_session_result(r.location, result, sizeof(result));
    resp_free(&r);

    usleep(400 * 1000);
    cr_assert_eq(rx_count(), 0);
    events = wh_records(id);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    adyen_expect_status(id, result, "m1:co_an1", "completed");
}


static void
generic_lookup(resp_t *r, const char *token, const char *auth)
{
    char  path[256];

    snprintf(path, sizeof(path), "/sessions/%s", token);
    dl_get(r, path, auth);
}


static void
generic_expect_status(const char *token, const char *ref,
    const char *status, const char *amount, const char *currency)
{
    resp_t  r;

    generic_lookup(&r, token, "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "token"), token);
    cr_assert_str_eq(str(&r, "reference"), ref);
    cr_assert_str_eq(str(&r, "status"), status, "%s", r.body);
    cr_assert_str_eq(str(&r, "amount"), amount, "%s", r.body);
    cr_assert_str_eq(str(&r, "currency"), currency);
    cr_assert(json_integer_value(json_object_get(r.json, "expires_at"))
              > time(NULL), "%s", r.body);
    resp_free(&r);
}


DIALECT_TEST(generic_session_lookup, dl_start)
{
    char         paid[64], declined[64], gone[64], jpy[64], pend[64];
    char         ad[64];
    resp_t       r;

    generic_create("m1:co_gl1", "15.00", "USD", paid);
    generic_create("m1:co_gl2", "10.5", "EUR", declined);
    generic_create("m1:co_gl3", "1.500", "KWD", gone);
    generic_create("m1:co_gl4", "700", "JPY", jpy);
    adyen_create("m1:co_gl5", 1500, ad);

    generic_expect_status(paid, "m1:co_gl1", "open", "15.00", "USD");
    generic_expect_status(jpy, "m1:co_gl4", "open", "700", "JPY");

    json_decref(session_act(paid, "pay", 200));
    generic_expect_status(paid, "m1:co_gl1", "succeeded", "15.00", "USD");

    /* declined is "failed", time out "expired" */
    json_decref(session_act(declined, "decline", 200));
    generic_expect_status(declined, "m1:co_gl2", "failed", "10.50", "EUR");
    json_decref(session_act(gone, "expire", 200));
    generic_expect_status(gone, "m1:co_gl3", "expired", "1.500", "KWD");

    /* settling later */
    fault("{\"match\":\"co_gl6\",\"async_payment\":true,"
          "\"async_delay_ms\":600000}");
    generic_create("m1:co_gl6", "2.00", "EUR", pend);
    json_decref(session_act(pend, "pay", 200));
    generic_expect_status(pend, "m1:co_gl6", "pending", "2.00", "EUR");

    /* credentials as for the create */
    generic_lookup(&r, paid, "Authorization: Bearer wrong");
    cr_assert_eq(r.status, 401, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "unauthorized");
    resp_free(&r);
    generic_lookup(&r, paid, NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    resp_free(&r);

    /* unknown here: no such session, or another dialect's */
    generic_lookup(&r, "gs_unknown", "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "not_found");
    resp_free(&r);
    generic_lookup(&r, ad, "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


DIALECT_TEST(generic_webhook_never_leaves_only_the_lookup, dl_start)
{
    char     tok[64];
    json_t  *events;

    fault("{\"match\":\"co_gn\",\"webhook_never\":true}");
    generic_create("m1:co_gn1", "3.00", "EUR", tok);
    json_decref(session_act(tok, "pay", 200));

    usleep(400 * 1000);
    cr_assert_eq(rx_count(), 0);
    events = wh_records(tok);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);

    generic_expect_status(tok, "m1:co_gn1", "succeeded", "3.00", "EUR");
}


MOCK_TEST(lookups_are_off_without_their_secrets)
{
    resp_t  r;

    dl_get(&r, "/v71/sessions/CS1?sessionResult=x", "X-API-Key: " ADYEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    dl_get(&r, "/sessions/gs_1", "Authorization: Bearer " GEN_KEY);
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


/* --- after "paid": refunds, transfers, disputes -------------------------- */

/* A paid session's payment intent (static buffer). */
static const char *
paid_intent(const char *key, long amount)
{
    resp_t       r;
    char         path[256];
    const char  *id;
    static char  pi[64];

    id = create_ok(key, amount);

    snprintf(path, sizeof(path), "/_control/sessions/%s/pay", id);
    control(&r, "POST", path, NULL);
    cr_assert(r.status >= 200 && r.status < 300, "pay: %ld %s", r.status,
              r.body);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s", id);
    request(&r, "GET", path, AUTH_GOOD, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(str(&r, "payment_intent"), "%s", r.body);
    snprintf(pi, sizeof(pi), "%s", str(&r, "payment_intent"));
    resp_free(&r);

    cr_assert_eq(strncmp(pi, "pi_", 3), 0, "%s", pi);
    return pi;
}


MOCK_TEST(stripe_refunds_a_paid_payment_once_per_key_never_beyond_it)
{
    resp_t       a, b, r;
    char         body[512], pi[64];
    long long    created, requests;

    /* 1000 + 2 x 500 in the session */
    snprintf(pi, sizeof(pi), "%s", paid_intent("m1:co_rf", 1000));

    snprintf(body, sizeof(body), "payment_intent=%s&amount=1500"
             "&metadata%%5Bnonce%%5D=m1:rf_1", pi);
    request(&a, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_1",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_assert_eq(strncmp(str(&a, "id"), "re_", 3), 0);
    cr_assert_str_eq(str(&a, "status"), "pending");
    cr_assert_str_eq(str(&a, "payment_intent"), pi);
    cr_assert_eq(json_integer_value(json_object_get(a.json, "amount")), 1500);

    /* the same key and body: the same refund, not a second one */
    request(&b, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_1",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(b.status, 200);
    cr_assert(b.replayed);
    cr_assert_str_eq(str(&b, "id"), str(&a, "id"));
    registrations("m1:rf_1", &created, &requests);
    cr_assert_eq(created, 1);
    resp_free(&b);

    /* 1500 of 2000 refunded: 501 more is refused, 500 is not */
    snprintf(body, sizeof(body), "payment_intent=%s&amount=501", pi);
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_2",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "amount_too_large");
    resp_free(&r);

    snprintf(body, sizeof(body), "payment_intent=%s&amount=500", pi);
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_3",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    /* an unknown payment, and no credentials */
    request(&r, "POST", "/v1/refunds", AUTH_GOOD, "m1:rf_4",
            "application/x-www-form-urlencoded",
            "payment_intent=pi_nobody&amount=1");
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_field(&r, "code"), "resource_missing");
    resp_free(&r);

    request(&r, "POST", "/v1/refunds", AUTH_BAD, "m1:rf_5",
            "application/x-www-form-urlencoded", body);
    cr_assert_eq(r.status, 401);
    resp_free(&r);

    resp_free(&a);
}


MOCK_TEST(stripe_transfers_need_a_connected_account)
{
    resp_t  r;

    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_1",
            "application/x-www-form-urlencoded",
            "amount=700&currency=usd&destination=ba_1"
            "&metadata%5Bnonce%5D=m1:pyo_1");
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "resource_missing");
    resp_free(&r);

    request(&r, "POST", "/v1/transfers", AUTH_GOOD, "m1:pyo_2",
            "application/x-www-form-urlencoded",
            "amount=700&currency=usd&destination=acct_1X"
            "&metadata%5Bnonce%5D=m1:pyo_2&transfer_group=m1:pyo_2");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(strncmp(str(&r, "id"), "tr_", 3), 0);
    cr_assert_str_eq(str(&r, "destination"), "acct_1X");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "amount")), 700);
    resp_free(&r);
}


MOCK_TEST(disputes_are_opened_on_paid_payments_and_closed_won_or_lost)
{
    resp_t  r;
    char    body[256], path[256], id[64];

    snprintf(body, sizeof(body), "{\"payment_ref\":\"%s\",\"amount\":300}",
             paid_intent("m1:co_dp", 1000));
    control(&r, "POST", "/_control/disputes", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(id, sizeof(id), "%s", str(&r, "id"));
    cr_assert_eq(strncmp(id, "dp_", 3), 0, "%s", id);
    resp_free(&r);

    snprintf(path, sizeof(path), "/_control/disputes/%s/close", id);
    control(&r, "POST", path, "{\"outcome\":\"maybe\"}");
    cr_assert_eq(r.status, 400);
    resp_free(&r);

    control(&r, "POST", path, "{\"outcome\":\"lost\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    control(&r, "POST", "/_control/disputes",
            "{\"payment_ref\":\"pi_nobody\"}");
    cr_assert_eq(r.status, 404);
    resp_free(&r);
}


/* --- Adyen: the Transfers API on its own port, Adyen's documents -------- */

#define ADYEN_TRANSFERS_KEY  "AQE_mock_transfers_key"

#define ADYEN_TRANSFER(extra, description)                                   \
    "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"                   \
    "\"category\":\"internal\","                                            \
    "\"counterparty\":{\"balanceAccountId\":\"BA32272223222B5CTDQPM6W2H\"},"\
    "\"reference\":\"m1:pyo_1\",\"description\":\"" description "\","       \
    "\"balanceAccountId\":\"BAPLATFORM1\"" extra "}"


static void
tr_start(void)
{
    static const char *const  more[] = {
        "--adyen-transfers-port", "0",
        "--adyen-transfers-secret", ADYEN_TRANSFERS_KEY, NULL
    };

    dl_launch(0, more);
    cr_assert_neq(mock_transfers_url[0], '\0');
}


/* POST to the transfers port: mock_url stands for it meanwhile */
static void
tr_post(resp_t *r, const char *path, const char *auth, const char *key,
    const char *body)
{
    char  main_url[sizeof(mock_url)];

    memcpy(main_url, mock_url, sizeof(mock_url));
    memcpy(mock_url, mock_transfers_url, sizeof(mock_url));
    dl_post(r, path, auth, key, "application/json", body);
    memcpy(mock_url, main_url, sizeof(mock_url));
}


/* Adyen serves Transfers on the balance platform's host with its own key:
 * the Checkout host (the main port) has no /btl/ at all */
DIALECT_TEST(adyen_transfers_only_on_their_own_port_with_their_own_key,
             tr_start)
{
    resp_t  r;

    dl_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:pyo_1", "application/json",
            ADYEN_TRANSFER("", "payout m1:pyo-1"));
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);

    /* the Checkout key is not the Transfers API's */
    tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_KEY, "m1:pyo_1",
            ADYEN_TRANSFER("", "payout m1:pyo-1"));
    adyen_expect_error(&r, 401, "security");
    resp_free(&r);

    tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:pyo_1", ADYEN_TRANSFER("", "payout m1:pyo-1"));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "reference"), "m1:pyo_1");
    resp_free(&r);

    /* and the Checkout API is not on the transfers port */
    tr_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:co_1", "{}");
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
}


/* What Adyen's documents refuse is answered 422 with the rule, and is not
 * registered: the same key goes through with the body fixed */
DIALECT_TEST(adyen_requests_are_checked_against_adyens_documents, tr_start)
{
    size_t       i;
    resp_t       r;
    const char  *msg;

    static const struct {
        const char  *body;
        const char  *rule;
    } bad[] = {
        { ADYEN_TRANSFER(",\"payout\":true", "payout m1:pyo-1"),
          "unknown field \"payout\"" },
        { "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
          "\"category\":\"payout\",\"counterparty\":{\"balanceAccountId\":"
          "\"BA1\"}}", "category: not one of its enum's" },
        { "{\"amount\":{\"value\":2500,\"currency\":\"EUR\"},"
          "\"category\":\"internal\"}",
          "required field \"counterparty\" missing" },
        { ADYEN_TRANSFER("", "payout m1:pyo_1"),
          "description: character '_'" },
        { ADYEN_TRANSFER(",\"counterpartyX\":{}", "payout m1:pyo-1"),
          "unknown field \"counterpartyX\"" },
        { "{\"amount\":{\"value\":\"2500\",\"currency\":\"EUR\"},"
          "\"category\":\"internal\",\"counterparty\":{}}",
          "amount.value: not of type integer" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
                "m1:pyo_9", bad[i].body);
        adyen_expect_error(&r, 422, "validation");
        msg = str(&r, "message");
        cr_assert_not_null(strstr(msg, bad[i].rule), "%zu: %s", i, msg);
        resp_free(&r);
    }

    tr_post(&r, "/btl/v4/transfers", "X-API-Key: " ADYEN_TRANSFERS_KEY,
            "m1:pyo_9", ADYEN_TRANSFER("", "payout m1:pyo-9"));
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);

    /* Checkout: a session with a field Adyen does not know, a bad enum */
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_s1",
            "application/json", "{\"merchantAccount\":\"TestMerchant\","
            "\"amount\":{\"value\":1,\"currency\":\"EUR\"},"
            "\"reference\":\"m1:co_s1\",\"returnUrl\":\"https://x.example/\","
            "\"mode\":\"popup\"}");
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"), "mode: not one of"), "%s",
                       r.body);
    resp_free(&r);

    dl_post(&r, "/v71/payments/ABC123/refunds", "X-API-Key: " ADYEN_KEY,
            "m1:rf_s1", "application/json",
            "{\"merchantAccount\":\"TestMerchant\",\"amount\":{\"value\":1,"
            "\"currency\":\"EUR\"},\"reference\":\"m1:rf_s1\","
            "\"refundReason\":\"x\"}");
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"),
                              "unknown field \"refundReason\""), "%s",
                       r.body);
    resp_free(&r);

    dl_post(&r, "/v71/payments/ABC123/refunds", "X-API-Key: " ADYEN_KEY,
            "m1:rf_s2", "application/json",
            "{\"merchantAccount\":\"TestMerchant\",\"amount\":{\"value\":1,"
            "\"currency\":\"EUR\"},\"reference\":\"m1:rf_s2\","
            "\"merchantRefundReason\":\"BORED\"}");
    adyen_expect_error(&r, 422, "validation");
    cr_assert_not_null(strstr(str(&r, "message"), "merchantRefundReason"),
                       "%s", r.body);
    resp_free(&r);

    /* a path Checkout does not have */
    dl_post(&r, "/v71/payouts", "X-API-Key: " ADYEN_KEY, "m1:x",
            "application/json", "{}");
    adyen_expect_error(&r, 404, "validation");
    resp_free(&r);
}
