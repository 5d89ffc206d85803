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

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>


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
    int          replayed;
    json_t      *json;
} resp_t;


static pid_t  mock_pid;
static char   mock_url[128];
static char   mock_log_path[512];


static void
mock_start(void)
{
    int          out[2];
    char         line[256], *p;
    size_t       n;
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

        execl(bin, bin, "--port", "0", "--stripe-secret", SECRET,
              (char *) NULL);
        _exit(127);
    }

    close(out[1]);

    /* the first stdout line names the URL: "mock_psp listening on URL" */
    n = 0;
    pfd.fd = out[0];
    pfd.events = POLLIN;

    while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
        cr_assert_gt(poll(&pfd, 1, 10000), 0, "mock_psp did not start");
        got = read(out[0], line + n, sizeof(line) - 1 - n);
        cr_assert_gt(got, 0, "mock_psp exited at start, see %s",
                     mock_log_path);
        n += (size_t) got;
    }

    close(out[0]);
    line[n] = '\0';

    p = strstr(line, " on ");
    cr_assert_not_null(p, "unexpected first line: %s", line);
    p += 4;
    p[strcspn(p, "\n")] = '\0';
    snprintf(mock_url, sizeof(mock_url), "%s", p);
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


MOCK_TEST(decline_redirects_to_cancel_url_and_leaves_the_session_open)
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
    cr_assert_str_eq(str(&r, "status"), "open");
    cr_assert_str_eq(str(&r, "payment_status"), "unpaid");
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
    resp_t  r;
    char    extra[64], body[2048];

    snprintf(extra, sizeof(extra), "&expires_at=%lld",
             (long long) time(NULL) + 3600);
    form(body, sizeof(body), "exp-ok", 1000, extra);
    create(&r, "exp-ok", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_at")),
                 (json_int_t) time(NULL) + 3600, "%s", r.body);
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
