/*
 * The mock PSP tests' client: see mock_client.h.
 */

#include "mock_client.h"


static pid_t  mock_pid;
char   mock_url[128];
char   mock_transfers_url[128];     /* --adyen-transfers-port */
char   mock_log_path[512];


/* extra: more arguments for the mock, NULL-terminated, or NULL. */
void
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


void
mock_start(void)
{
    mock_start_with(NULL);
}


void
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
CURL *
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


void
finish(resp_t *r, CURL *h, struct curl_slist *hdrs)
{
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);

    if (r->body != NULL) {
        r->json = json_loadb(r->body, r->len, 0, NULL);
    }
}


void
request(resp_t *r, const char *method, const char *path, int auth,
    const char *key, const char *ctype, const char *body)
{
    CURL               *h;
    struct curl_slist  *hdrs;

    h = prepare(r, &hdrs, method, path, auth, key, ctype, body);
    r->rc = curl_easy_perform(h);
    finish(r, h, hdrs);
}


void
resp_free(resp_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}


/* POST /v1/checkout/sessions with a good key and a form body. */
void
create(resp_t *r, const char *key, const char *body)
{
    request(r, "POST", "/v1/checkout/sessions", AUTH_GOOD, key,
            "application/x-www-form-urlencoded", body);
}


void
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


void
control(resp_t *r, const char *method, const char *path, const char *json)
{
    request(r, method, path, AUTH_NONE, NULL,
            json ? "application/json" : NULL, json);
}


void
fault(const char *json)
{
    resp_t  r;

    control(&r, "POST", "/_control/faults", json);
    cr_assert_eq(r.status, 200, "fault %s: %ld %s", json, r.status, r.body);
    cr_assert(json_integer_value(json_object_get(r.json, "id")) > 0);
    resp_free(&r);
}


void
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


const char *
str(const resp_t *r, const char *name)
{
    return json_string_value(json_object_get(r->json, name));
}


const char *
error_field(const resp_t *r, const char *name)
{
    return json_string_value(json_object_get(json_object_get(r->json,
                                                             "error"),
                                             name));
}


double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}


/* Creates a session with key and returns its id (static buffer). */
const char *
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
void
mock_kill(void)
{
    if (mock_pid > 0) {
        kill(mock_pid, SIGKILL);
        waitpid(mock_pid, NULL, 0);
        mock_pid = 0;
    }
}
