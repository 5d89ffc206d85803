/*
 * End-to-end test harness: see harness.h.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "harness.h"


/* -- environment and strings ---------------------------------------------- */

const char *
env(const char *name)
{
    const char  *v;

    v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0',
              "%s is not set: run the suite through ci/e2e.sh", name);
    return v;
}


char *
str_printf(const char *fmt, ...)
{
    int      n;
    char    *s;
    va_list  ap;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);

    cr_assert(n >= 0, "out of memory");
    return s;
}


int
mem_contains(const char *haystack, size_t len, const char *needle)
{
    return memmem(haystack, len, needle, strlen(needle)) != NULL;
}


char *
uid(const char *prefix)
{
    static unsigned  counter;

    unsigned long    us;
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    us = ((unsigned long) ts.tv_sec * 1000000UL
          + (unsigned long) ts.tv_nsec / 1000UL) & 0xffffffffUL;

    return str_printf("%s_%07ld_%04u_%08lx", prefix,
                      (long) getpid() % 10000000L, counter++ % 10000U, us);
}


void
msleep(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the rest */
    }
}


/* -- HTTP ------------------------------------------------------------------ */

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    char    *b;
    size_t   len;
    resp_t  *r = ud;

    len = size * n;
    b = realloc(r->body, r->len + len + 1);
    if (b == NULL) {
        return 0;
    }

    memcpy(b + r->len, p, len);
    r->len += len;
    b[r->len] = '\0';
    r->body = b;

    return len;
}


static void
headers_clear(resp_t *r)
{
    size_t  i;

    for (i = 0; i < r->nhdr; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }

    free(r->names);
    free(r->values);
    r->names = NULL;
    r->values = NULL;
    r->nhdr = 0;
}


static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    char        **names, **values;
    size_t        len, nlen, vlen;
    resp_t       *r = ud;
    const char   *colon, *v;

    len = size * n;

    /* a new status line (after a 100 Continue, say): a new header block */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        headers_clear(r);
        return len;
    }

    colon = memchr(p, ':', len);
    if (colon == NULL) {
        return len;
    }

    nlen = (size_t) (colon - p);
    v = colon + 1;
    vlen = len - nlen - 1;

    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }

    while (vlen > 0 && isspace((unsigned char) v[vlen - 1])) {
        vlen--;
    }

    names = realloc(r->names, (r->nhdr + 1) * sizeof(char *));
    if (names == NULL) {
        return 0;
    }
    r->names = names;

    values = realloc(r->values, (r->nhdr + 1) * sizeof(char *));
    if (values == NULL) {
        return 0;
    }
    r->values = values;

    r->names[r->nhdr] = strndup(p, nlen);
    r->values[r->nhdr] = strndup(v, vlen);
    r->nhdr++;

    return len;
}


static CURL *
easy_for(const req_t *rq, resp_t *r, struct curl_slist **list)
{
    CURL                *e;
    size_t               len;
    struct curl_slist   *l;
    const char *const   *h;

    e = curl_easy_init();
    cr_assert_not_null(e, "curl_easy_init failed");

    l = curl_slist_append(NULL, "Expect:");

    for (h = rq->headers; h != NULL && *h != NULL; h++) {
        l = curl_slist_append(l, *h);
    }

    *list = l;

    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);

    if (strncmp(rq->url, "https:", 6) == 0) {
        curl_easy_setopt(e, CURLOPT_CAINFO, env("PAY_TEST_CA"));
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    }

    if (rq->body != NULL) {
        len = rq->len == (size_t) -1 ? strlen(rq->body) : rq->len;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body);

    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");

    } else if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);

    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }

    if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0
        && strcmp(rq->method, "HEAD") != 0)
    {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }

    return e;
}


static resp_t *
resp_new(void)
{
    resp_t  *r;

    r = calloc(1, sizeof(resp_t));
    cr_assert_not_null(r, "out of memory");

    r->body = calloc(1, 1);
    cr_assert_not_null(r->body, "out of memory");

    return r;
}


/*
 * Every answer of the gateway's own listeners, one JSON line each, into
 * PAY_TEST_RECORD when it is set: after the suite, tests/openapi/validate.js
 * checks them all against doc/openapi.yaml, so the document cannot drift
 * from the code.  One write(2) per line on an O_APPEND file: tests running
 * in parallel never interleave.
 */
static void
record(CURL *e, const resp_t *r)
{
    int           fd;
    char         *line, *method, *url;
    size_t        i, n, len;
    json_t       *j, *h;
    const char   *path, *gws[3], *listener;

    path = getenv("PAY_TEST_RECORD");
    if (path == NULL || path[0] == '\0' || r->status == 0) {
        return;
    }

    method = NULL;
    url = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_METHOD, &method);
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);

    if (method == NULL || url == NULL) {
        return;
    }

    gws[0] = getenv("PAY_TEST_GW");
    gws[1] = getenv("PAY_TEST_GW_PLAIN");
    gws[2] = getenv("PAY_TEST_GW_LIMITS");

    for (i = 0; i < 3; i++) {
        n = gws[i] ? strlen(gws[i]) : 0;
        if (n && strncmp(url, gws[i], n) == 0 && (url[n] == '/' || !url[n])) {
            break;
        }
    }

    if (i == 3) {
        return;                 /* the mock PSP, a second nginx, ... */
    }

    listener = i == 0 ? "gateway" : i == 1 ? "plain" : "limits";

    h = json_object();
    for (i = 0; i < r->nhdr; i++) {
        /* lower case, the first of a name */
        line = strdup(r->names[i]);
        cr_assert_not_null(line);
        for (n = 0; line[n]; n++) {
            line[n] = (char) tolower((unsigned char) line[n]);
        }
        if (json_object_get(h, line) == NULL) {
            json_object_set_new(h, line, json_string(r->values[i]));
        }
        free(line);
    }

    len = r->len > 65536 ? 65536 : r->len;

    j = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o*, s:b}",
                  "method", method, "url", url,
                  "listener", listener,
                  "status", (int) r->status, "headers", h,
                  "body", json_stringn(r->body, len),
                  "truncated", r->len > len);
    if (j == NULL) {
        return;                 /* a body that is not UTF-8: not recorded */
    }

    line = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cr_assert_not_null(line);

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        len = strlen(line);
        line[len] = '\n';
        (void) write(fd, line, len + 1);
        close(fd);
    }

    free(line);
}


static void
easy_done(CURL *e, CURLcode rc, resp_t *r)
{
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);

    } else {
        r->status = 0;
        if (r->error[0] == '\0') {
            (void) snprintf(r->error, sizeof(r->error), "%s",
                            curl_easy_strerror(rc));
        }
    }

    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &r->seconds);

    record(e, r);
}


resp_t *
http(const req_t *rq)
{
    CURL               *e;
    resp_t             *r;
    CURLcode            rc;
    struct curl_slist  *list;

    r = resp_new();
    e = easy_for(rq, r, &list);

    rc = curl_easy_perform(e);
    easy_done(e, rc, r);

    curl_easy_cleanup(e);
    curl_slist_free_all(list);

    return r;
}


resp_t *
http_from(const req_t *rq, const char *local)
{
    CURL               *e;
    char                iface[64];
    resp_t             *r;
    CURLcode            rc;
    struct curl_slist  *list;

    r = resp_new();
    e = easy_for(rq, r, &list);

    (void) snprintf(iface, sizeof(iface), "host!%s", local);
    curl_easy_setopt(e, CURLOPT_INTERFACE, iface);

    rc = curl_easy_perform(e);
    easy_done(e, rc, r);

    curl_easy_cleanup(e);
    curl_slist_free_all(list);

    return r;
}


resp_t **
http_parallel(const req_t *rq, size_t n)
{
    int                  running, left;
    size_t               i;
    CURL               **easy;
    CURLM               *m;
    CURLMsg             *msg;
    resp_t             **rs;
    struct curl_slist  **lists;

    rs = calloc(n, sizeof(resp_t *));
    easy = calloc(n, sizeof(CURL *));
    lists = calloc(n, sizeof(struct curl_slist *));
    cr_assert(rs != NULL && easy != NULL && lists != NULL, "out of memory");

    m = curl_multi_init();
    cr_assert_not_null(m, "curl_multi_init failed");

    for (i = 0; i < n; i++) {
        rs[i] = resp_new();
        easy[i] = easy_for(rq, rs[i], &lists[i]);
        curl_easy_setopt(easy[i], CURLOPT_PRIVATE, rs[i]);
        curl_multi_add_handle(m, easy[i]);
    }

    do {
        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);

        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                resp_t  *r = NULL;

                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
                easy_done(msg->easy_handle, msg->data.result, r);
            }
        }

        if (running > 0) {
            cr_assert_eq(curl_multi_poll(m, NULL, 0, 1000, NULL), CURLM_OK);
        }

    } while (running > 0);

    for (i = 0; i < n; i++) {
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(lists[i]);
    }

    curl_multi_cleanup(m);
    free(easy);
    free(lists);

    return rs;
}


resp_t **
http_many(const req_t *rqs, size_t n, size_t at_once)
{
    int                  running, left;
    size_t               next, active, i;
    CURL               **easy;
    CURLM               *m;
    CURLMsg             *msg;
    resp_t             **rs;
    struct curl_slist  **lists;

    rs = calloc(n + 1, sizeof(resp_t *));
    easy = calloc(n + 1, sizeof(CURL *));
    lists = calloc(n + 1, sizeof(struct curl_slist *));
    cr_assert(rs != NULL && easy != NULL && lists != NULL, "out of memory");
    cr_assert(at_once > 0);

    m = curl_multi_init();
    cr_assert_not_null(m, "curl_multi_init failed");

    next = 0;
    active = 0;

    do {
        while (active < at_once && next < n) {
            rs[next] = resp_new();
            easy[next] = easy_for(&rqs[next], rs[next], &lists[next]);
            curl_easy_setopt(easy[next], CURLOPT_PRIVATE, rs[next]);
            cr_assert_eq(curl_multi_add_handle(m, easy[next]), CURLM_OK);
            next++;
            active++;
        }

        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);

        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                resp_t  *r = NULL;

                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
                easy_done(msg->easy_handle, msg->data.result, r);
                curl_multi_remove_handle(m, msg->easy_handle);
                active--;
            }
        }

        if (active > 0 && running > 0) {
            cr_assert_eq(curl_multi_poll(m, NULL, 0, 1000, NULL), CURLM_OK);
        }

    } while (active > 0 || next < n);

    for (i = 0; i < n; i++) {
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(lists[i]);
    }

    curl_multi_cleanup(m);
    free(easy);
    free(lists);

    return rs;
}


const char *
resp_header(const resp_t *r, const char *name)
{
    size_t  i;

    for (i = 0; i < r->nhdr; i++) {
        if (strcasecmp(r->names[i], name) == 0) {
            return r->values[i];
        }
    }

    return NULL;
}


json_t *
resp_json(resp_t *r)
{
    json_error_t  err;

    if (r->json == NULL) {
        r->json = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
        cr_assert_not_null(r->json, "the %ld answer is not JSON (%s): %.*s",
                           r->status, err.text, (int) r->len, r->body);
    }

    return r->json;
}


void
resp_free(resp_t *r)
{
    if (r == NULL) {
        return;
    }

    headers_clear(r);
    json_decref(r->json);
    free(r->body);
    free(r);
}


char *
gw_url(const char *path)
{
    return str_printf("%s%s", env("PAY_TEST_GW"), path);
}


char *
gw_plain_url(const char *path)
{
    return str_printf("%s%s", env("PAY_TEST_GW_PLAIN"), path);
}


char *
mock_url(const char *path)
{
    return str_printf("%s%s", env("PAY_TEST_MOCK"), path);
}


resp_t *
http_get(const char *url)
{
    req_t  rq = { "GET", url, NULL, NULL, 0 };

    return http(&rq);
}


resp_t *
gw_get(const char *path)
{
    return http_get(gw_url(path));
}


/* -- processes --------------------------------------------------------------- */

/*
 * Runs argv (no shell), stdin from /dev/null; its stdout and stderr are
 * returned when out is not NULL (else inherited).  Returns the exit
 * status, or -1.
 */
static int find_key(const char *s, merchant_t *m);


static int
run(char *const argv[], char **out)
{
    int      pipefd[2], status, fd;
    char     buf[4096];
    char    *acc, *p;
    pid_t    pid;
    size_t   len;
    ssize_t  n;

    if (out != NULL) {
        cr_assert_eq(pipe(pipefd), 0, "pipe: %s", strerror(errno));
    }

    pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));

    if (pid == 0) {
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
        }

        if (out != NULL) {
            /* stderr too: a failure's message ends up in the assertion */
            dup2(pipefd[1], 1);
            dup2(pipefd[1], 2);
            close(pipefd[0]);
            close(pipefd[1]);
        }

        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }

    if (out != NULL) {
        close(pipefd[1]);

        acc = NULL;
        len = 0;

        for ( ;; ) {
            n = read(pipefd[0], buf, sizeof(buf));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }

            p = realloc(acc, len + (size_t) n + 1);
            cr_assert_not_null(p, "out of memory");
            acc = p;
            memcpy(acc + len, buf, (size_t) n);
            len += (size_t) n;
            acc[len] = '\0';
        }

        close(pipefd[0]);
        *out = acc != NULL ? acc : strdup("");
    }

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }

    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


/* -- merchants and the merchant API ----------------------------------------- */

int
merchant_tool(const char *a1, const char *a2, const char *a3, char **out)
{
    char  *tool;
    int    rc;

    tool = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));

    {
        char *const  argv[] = {
            tool, (char *) "--db", (char *) env("PAY_TEST_PG"),
            (char *) a1, (char *) a2, (char *) a3, NULL
        };

        rc = run(argv, out);
    }

    free(tool);
    return rc;
}


int
merchant_toolv(const char *const *args, char **out)
{
    int           rc;
    char         *argv[24];
    size_t        n, i;

    /* the endpoint commands seal with the gateway's key file, through
     * this build's payments-secrets */
    if (getenv("PAY_TEST_ENCRYPTION_KEY") != NULL) {
        setenv("PAYMENTS_KEY_FILE", getenv("PAY_TEST_ENCRYPTION_KEY"), 1);
    }

    /* this build's, unless the test chose another */
    setenv("PAYMENTS_SECRETS", build_file("payments-secrets"), 0);

    argv[0] = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    argv[1] = (char *) "--db";
    argv[2] = (char *) env("PAY_TEST_PG");
    n = 3;

    for (i = 0; args[i] != NULL && n < 23; i++) {
        argv[n++] = (char *) args[i];
    }

    argv[n] = NULL;

    rc = run(argv, out);
    free(argv[0]);

    return rc;
}


int
merchant_key_from(const char *out, merchant_t *m)
{
    if (find_key(out, m) != 0) {
        return -1;
    }

    secret_used(m->key);
    return 0;
}


/* The first "mk_..." word of s (at its start or after white space). */
static int
find_key(const char *s, merchant_t *m)
{
    size_t       n;
    const char  *p, *last;

    last = NULL;

    for (p = s; (p = strstr(p, "mk_")) != NULL; p += 3) {
        if (p == s || isspace((unsigned char) p[-1])) {
            last = p;
            break;
        }
    }

    if (last == NULL) {
        return -1;
    }

    n = strspn(last, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-");

    /* mk_ mode _ key_id(12) _ secret */
    if (n >= sizeof(m->key) || n < 3 + 4 + 1 + 12 + 1 + 1
        || last[7] != '_' || last[20] != '_')
    {
        return -1;
    }

    memcpy(m->key, last, n);
    m->key[n] = '\0';
    memcpy(m->key_id, last + 8, 12);
    m->key_id[12] = '\0';

    return 0;
}


void
merchant_new(merchant_t *m)
{
    merchant_new_mode(m, "test");
}


void
merchant_new_mode(merchant_t *m, const char *mode)
{
    int           rc;
    char         *out, *name, *id, *tool;
    const char   *params[1];

    memset(m, 0, sizeof(merchant_t));

    tool = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    /* [a-z0-9_]{1,23}: "m_" + 21 */
    name = uid("m");
    cr_assert(strlen(name) <= 23, "merchant id %s is too long", name);

    {
        char *const  argv[] = {
            tool, (char *) "--db", (char *) env("PAY_TEST_PG"),
            (char *) "create", (char *) "--id", name,
            (char *) "--name", name, (char *) "--mode", (char *) mode,
            (char *) "--origin", (char *) SHOP_ORIGIN, NULL
        };

        rc = run(argv, &out);
    }

    cr_assert_eq(rc, 0, "bin/payments-merchant failed (%d): %s", rc, out);
    cr_assert_eq(find_key(out, m), 0,
                 "bin/payments-merchant printed no API key: %s", out);
    secret_used(m->key);

    params[0] = m->key_id;
    id = db_scalar("SELECT merchant_id FROM pay_auth($1)", 1, params);
    cr_assert_not_null(id, "pay_auth does not know the new key %s",
                       m->key_id);
    cr_assert_str_eq(id, name, "pay_auth answers another merchant");
    cr_assert(strlen(id) < sizeof(m->id));
    strcpy(m->id, id);

    free(id);
    free(out);
    free(name);
    free(tool);
}


void
merchant_demo(merchant_t *m)
{
    memset(m, 0, sizeof(merchant_t));

    cr_assert_eq(find_key(env("PAY_TEST_MERCHANT_KEY"), m), 0,
                 "PAY_TEST_MERCHANT_KEY is not an API key");
    cr_assert(strlen(env("PAY_TEST_MERCHANT_ID")) < sizeof(m->id));
    strcpy(m->id, env("PAY_TEST_MERCHANT_ID"));
}


json_t *
checkout_new(const char *checkout_id, size_t norders)
{
    char    *po, *seller;
    size_t   i;
    json_t  *co, *orders, *o;

    orders = json_array();

    for (i = 0; i < norders; i++) {
        po = str_printf("%s_p%zu", checkout_id, i + 1);
        seller = str_printf("seller_%zu", i + 1);

        o = json_pack("{s:s, s:s, s:s, s:s}",
                      "payment_order_id", po,
                      "seller_account", seller,
                      "amount", i == 0 ? "10.00" : "5.00",
                      "currency", "USD");
        cr_assert_not_null(o);
        json_array_append_new(orders, o);

        free(po);
        free(seller);
    }

    co = json_pack("{s:s, s:{s:s}, s:o, s:s, s:s, s:s}",
                   "checkout_id", checkout_id,
                   "buyer_info", "email", "ann@example.com",
                   "payment_orders", orders,
                   "success_url", SHOP_ORIGIN "/thanks",
                   "cancel_url", SHOP_ORIGIN "/cart",
                   "psp", env("PAY_TEST_PSP"));
    cr_assert_not_null(co);

    return co;
}


char *
dump(const json_t *j)
{
    char  *s;

    s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(s);
    return s;
}


char *
body_for(const char *checkout_id)
{
    char    *s;
    json_t  *co;

    co = checkout_new(checkout_id, 2);
    s = dump(co);
    json_decref(co);

    return s;
}


resp_t *
api_post_raw(const char *const *headers, const char *body, size_t len)
{
    req_t  rq;

    rq.method = "POST";
    rq.url = gw_url(PATH_PAYMENTS);
    rq.headers = headers;
    rq.body = body;
    rq.len = len;

    return http(&rq);
}


resp_t *
api_post(const merchant_t *m, const char *idem_key, const char *body)
{
    size_t       n;
    resp_t      *r;
    const char  *h[4];
    char        *auth, *idem;

    n = 0;
    auth = NULL;
    idem = NULL;

    h[n++] = "Content-Type: application/json";

    if (m != NULL) {
        auth = str_printf("Authorization: Bearer %s", m->key);
        h[n++] = auth;
    }

    if (idem_key != NULL) {
        idem = str_printf("Idempotency-Key: %s", idem_key);
        h[n++] = idem;
    }

    h[n] = NULL;

    r = api_post_raw(h, body, (size_t) -1);

    free(auth);
    free(idem);

    return r;
}


resp_t *
api_post_json(const merchant_t *m, const json_t *body)
{
    char    *s, *key;
    resp_t  *r;

    s = dump(body);
    key = uid("key");
    r = api_post(m, key, s);

    free(s);
    free(key);

    return r;
}


json_t *
order_of(json_t *co, size_t i)
{
    json_t  *o;

    o = json_array_get(json_object_get(co, "payment_orders"), i);
    cr_assert_not_null(o, "no payment_orders[%zu]", i);

    return o;
}


resp_t *
api_get(const merchant_t *m, const char *path)
{
    req_t        rq;
    resp_t      *r;
    char        *auth;
    const char  *h[2];

    auth = str_printf("Authorization: Bearer %s", m->key);
    h[0] = auth;
    h[1] = NULL;

    rq.method = "GET";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = NULL;
    rq.len = 0;

    r = http(&rq);
    free(auth);

    return r;
}


resp_t *
register_ok(const merchant_t *m, const char *idem_key, const char *body)
{
    resp_t  *r;
    json_t  *j;

    r = api_post(m, idem_key, body);
    cr_assert_eq(r->status, 201, "registration: expected 201, got %ld (%s): %s",
                 r->status, r->error, r->body);

    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING", "registration: %s", r->body);
    expect_request_id(r);

    secret_used(json_string_value(json_object_get(j, "psp_token")));
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    return r;
}


void
secret_used(const char *s)
{
    int     fd;
    char   *line;
    size_t  len;

    if (s == NULL || strlen(s) < 8 || strchr(s, '\n') != NULL) {
        return;
    }

    line = str_printf("%s\n", s);
    len = strlen(line);
    fd = open(run_file("secrets-used"), O_WRONLY | O_CREAT | O_APPEND, 0600);
    cr_assert(fd >= 0, "secrets-used: %s", strerror(errno));
    /* one write of a short line: lines of parallel tests never interleave */
    cr_assert_eq(write(fd, line, len), (ssize_t) len);
    close(fd);
    free(line);
}


char *
nonce(const merchant_t *m, const char *checkout_id)
{
    return str_printf("%s:%s", m->id, checkout_id);
}


/* -- assertions --------------------------------------------------------------- */

void
expect_request_id(const resp_t *r)
{
    const char  *v;

    v = resp_header(r, "X-Request-Id");
    cr_assert(v != NULL && v[0] != '\0',
              "the %ld answer has no X-Request-Id", r->status);
}


void
expect_problem(resp_t *r, long status, const char *code)
{
    json_t      *j;
    const char  *ct, *c;

    cr_assert_eq(r->status, status, "expected %ld %s, got %ld (%s): %s",
                 status, code, r->status, r->error, r->body);

    ct = resp_header(r, "Content-Type");
    cr_assert(ct != NULL
              && strncasecmp(ct, "application/problem+json", 24) == 0,
              "expected application/problem+json, got %s",
              ct != NULL ? ct : "(none)");

    j = resp_json(r);
    c = json_string_value(json_object_get(j, "code"));
    cr_assert(c != NULL && strcmp(c, code) == 0,
              "expected code %s: %s", code, r->body);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), status,
                 "problem status member: %s", r->body);
    cr_assert_not_null(json_string_value(json_object_get(j, "title")),
                       "problem title: %s", r->body);

    expect_request_id(r);
}


void
expect_forbidden_page(const resp_t *r)
{
    cr_assert_eq(r->status, 403, "expected 403, got %ld: %s", r->status,
                 r->body);
    cr_assert_null(resp_header(r, "Location"),
                   "a refused pay link must not redirect (Location: %s)",
                   resp_header(r, "Location"));
    expect_request_id(r);
}


/* -- PostgreSQL ------------------------------------------------------------- */

static PGconn  *conn;


PGconn *
db(void)
{
    if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = NULL;
    }

    if (conn == NULL) {
        conn = PQconnectdb(env("PAY_TEST_PG"));
        cr_assert_eq(PQstatus(conn), CONNECTION_OK, "PostgreSQL: %s",
                     PQerrorMessage(conn));
    }

    return conn;
}


static PGresult *
db_query(const char *sql, int nparams, const char *const *params)
{
    PGresult  *res;

    res = PQexecParams(db(), sql, nparams, NULL, params, NULL, NULL, 0);

    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK
              || PQresultStatus(res) == PGRES_COMMAND_OK,
              "SQL failed: %s\n%s", PQerrorMessage(conn), sql);

    return res;
}


char *
db_scalar(const char *sql, int nparams, const char *const *params)
{
    char      *v;
    PGresult  *res;

    res = db_query(sql, nparams, params);

    v = NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0
        && !PQgetisnull(res, 0, 0))
    {
        v = strdup(PQgetvalue(res, 0, 0));
    }

    PQclear(res);
    return v;
}


void
db_exec(const char *sql, int nparams, const char *const *params)
{
    PQclear(db_query(sql, nparams, params));
}


static int
pg_ctl_run(const char *action)
{
    int          rc;
    char        *ctl, *log, *out;
    const char  *data;

    if (conn != NULL) {
        PQfinish(conn);
        conn = NULL;
    }

    data = env("PAY_TEST_PGDATA");
    ctl = str_printf("%s/pg_ctl",
                     getenv("PGBIN") ? getenv("PGBIN")
                                     : "/usr/lib/postgresql/15/bin");
    log = str_printf("%s/postgres.log", env("PAY_TEST_PGDIR"));

    if (geteuid() == 0) {
        /* pg_ctl refuses root */
        char *const  argv[] = {
            (char *) "runuser", (char *) "-u", (char *) "postgres", (char *) "--",
            ctl, (char *) "-D", (char *) data, (char *) "-l", log,
            (char *) "-m", (char *) "fast", (char *) "-w",
            (char *) "-t", (char *) "60", (char *) action, NULL
        };

        rc = run(argv, &out);

    } else {
        char *const  argv[] = {
            ctl, (char *) "-D", (char *) data, (char *) "-l", log,
            (char *) "-m", (char *) "fast", (char *) "-w",
            (char *) "-t", (char *) "60", (char *) action, NULL
        };

        rc = run(argv, &out);
    }

    free(out);
    free(ctl);
    free(log);

    return rc;
}


int
pg_running(void)
{
    /* pg_ctl status: 0 running, 3 not running */
    return pg_ctl_run("status") == 0;
}


void
pg_stop(void)
{
    int  rc;

    rc = pg_ctl_run("stop");
    cr_assert_eq(rc, 0, "pg_ctl stop failed (%d)", rc);
}


void
pg_start(void)
{
    int  rc;

    if (pg_running()) {
        return;
    }

    rc = pg_ctl_run("start");
    cr_assert_eq(rc, 0, "pg_ctl start failed (%d)", rc);
}


/* 1 if the /metrics at origin show each of its workers workers with a
 * database connection up. */
static int
workers_up(const char *origin, int workers)
{
    int  i;

    for (i = 0; i < workers; i++) {
        if (metric_value(origin, str_printf("payments_db_pool_connections"
                                            "{worker=\"%d\",state=\"up\"}", i))
            < 1)
        {
            return 0;
        }
    }

    return 1;
}


int
gw_wait_ready(long want, int seconds)
{
    int      i;
    long     status;
    resp_t  *r;

    for (i = 0; i < seconds * 5; i++) {
        r = gw_get("/readyz");
        status = r->status;
        resp_free(r);

        /* ready: in every worker (gateway_wait_ready) */
        if (status == want
            && (want != 200
                || workers_up(env("PAY_TEST_GW"), atoi(env("PAY_TEST_WORKERS")))))
        {
            return 1;
        }

        msleep(200);
    }

    return 0;
}


/* -- the mock PSP ------------------------------------------------------------- */

long
mock_fault(const char *json)
{
    req_t        rq;
    long         id;
    resp_t      *r;
    json_t      *j;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = mock_url("/_control/faults");
    rq.headers = h;
    rq.body = json;
    rq.len = (size_t) -1;

    r = http(&rq);
    cr_assert(r->status == 200 || r->status == 201,
              "mock fault %s: %ld (%s) %s", json, r->status, r->error,
              r->body);

    j = resp_json(r);
    cr_assert(json_is_integer(json_object_get(j, "id")),
              "mock fault: no id: %s", r->body);
    id = (long) json_integer_value(json_object_get(j, "id"));

    resp_free(r);
    return id;
}


void
mock_registrations(const char *key, long *sessions, long *requests)
{
    char    *esc, *url;
    resp_t  *r;
    json_t  *j, *s, *q;

    esc = url_escape(key);
    url = str_printf("%s/_control/registrations?key=%s", env("PAY_TEST_MOCK"),
                     esc);
    free(esc);

    r = http_get(url);
    cr_assert_eq(r->status, 200, "mock registrations: %ld (%s) %s",
                 r->status, r->error, r->body);

    j = resp_json(r);
    s = json_object_get(j, "sessions_created");
    q = json_object_get(j, "requests");
    cr_assert(json_is_integer(s) && json_is_integer(q),
              "mock registrations: %s", r->body);

    if (sessions != NULL) {
        *sessions = (long) json_integer_value(s);
    }

    if (requests != NULL) {
        *requests = (long) json_integer_value(q);
    }

    resp_free(r);
    free(url);
}


void
mock_reset(void)
{
    req_t    rq = { "POST", mock_url("/_control/reset"), NULL, "{}", 2 };
    resp_t  *r;

    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock reset: %ld",
              r->status);
    resp_free(r);
}


/* -- files ------------------------------------------------------------------- */

char *
run_file(const char *rel)
{
    return str_printf("%s/%s", env("PAY_TEST_RUN"), rel);
}


char *
build_file(const char *rel)
{
    const char  *build = getenv("BUILD") ? getenv("BUILD") : "build";

    if (build[0] == '/') {
        return str_printf("%s/%s", build, rel);
    }

    return str_printf("%s/%s/%s", env("PAY_TEST_ROOT"), build, rel);
}


char *
file_read(const char *path, size_t *len)
{
    char    *buf, *p;
    FILE    *f;
    size_t   n, cap;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    cap = 65536;
    n = 0;
    buf = malloc(cap + 1);
    cr_assert_not_null(buf);

    for ( ;; ) {
        n += fread(buf + n, 1, cap - n, f);

        if (n < cap) {
            break;
        }

        cap *= 2;
        p = realloc(buf, cap + 1);
        cr_assert_not_null(p);
        buf = p;
    }

    fclose(f);
    buf[n] = '\0';

    if (len != NULL) {
        *len = n;
    }

    return buf;
}


int
file_contains(const char *path, const char *needle)
{
    int      found;
    char    *s;
    size_t   len;

    s = file_read(path, &len);
    if (s == NULL) {
        return 0;
    }

    found = mem_contains(s, len, needle);
    free(s);

    return found;
}


/* -- links and gateway tokens ---------------------------------------------- */

char *
url_escape(const char *s)
{
    char        *out, *o;
    const char  *hex = "0123456789ABCDEF";

    out = malloc(strlen(s) * 3 + 1);
    cr_assert_not_null(out);

    for (o = out; *s != '\0'; s++) {
        unsigned char  c = (unsigned char) *s;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char) c;

        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }

    *o = '\0';
    return out;
}


char *
url_param(const char *url, const char *name)
{
    size_t       n, vlen;
    const char  *p;

    p = strchr(url, '?');
    if (p == NULL) {
        return NULL;
    }

    n = strlen(name);

    while (p != NULL) {
        p++;

        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            p += n + 1;
            vlen = strcspn(p, "&#");
            return strndup(p, vlen);
        }

        p = strchr(p, '&');
    }

    return NULL;
}


const char *
url_path(const char *url)
{
    const char  *p;

    p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    p = strchr(p, '/');

    return p != NULL ? p : "/";
}


char *
gw_url_for(const char *public_url)
{
    size_t       n;
    const char  *origin;

    origin = env("PAY_TEST_PUBLIC_ORIGIN");
    n = strlen(origin);

    cr_assert(strncmp(public_url, origin, n) == 0 && public_url[n] == '/',
              "%s is not on the configured public origin %s", public_url,
              origin);

    return gw_url(public_url + n);
}


static const char  b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


char *
b64url_encode(const unsigned char *p, size_t len)
{
    char      *s, *o;
    size_t     i;
    uint32_t   v;

    s = malloc(len / 3 * 4 + 5);
    cr_assert_not_null(s);
    o = s;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
        *o++ = b64url[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) p[i] << 16;
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];

    } else if (len - i == 2) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8;
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
    }

    *o = '\0';
    return s;
}


unsigned char *
b64url_decode(const char *s, size_t len, size_t *out)
{
    int             bits;
    size_t          i, n;
    uint32_t        acc;
    const char     *c;
    unsigned char  *p;

    p = malloc(len * 3 / 4 + 3);
    cr_assert_not_null(p);

    n = 0;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '=') {
            break;
        }

        c = strchr(b64url, s[i]);
        if (c == NULL || s[i] == '\0') {
            free(p);
            return NULL;
        }

        acc = acc << 6 | (uint32_t) (c - b64url);
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            p[n++] = (unsigned char) (acc >> bits & 0xff);
        }
    }

    p[n] = '\0';
    *out = n;

    return p;
}


json_t *
jwt_claims(const char *token)
{
    size_t          len;
    json_t         *j;
    const char     *d1, *d2;
    unsigned char  *raw;

    d1 = strchr(token, '.');
    cr_assert_not_null(d1, "not a JWT: %s", token);
    d2 = strchr(d1 + 1, '.');
    cr_assert_not_null(d2, "not a JWT: %s", token);

    raw = b64url_decode(d1 + 1, (size_t) (d2 - d1 - 1), &len);
    cr_assert_not_null(raw, "JWT claims are not base64url: %s", token);

    j = json_loadb((const char *) raw, len, 0, NULL);
    cr_assert_not_null(j, "JWT claims are not JSON: %s", raw);

    free(raw);
    return j;
}


static char *
hs256(const char *data, size_t len, const unsigned char *key, size_t keylen)
{
    unsigned int   mdlen;
    unsigned char  md[EVP_MAX_MD_SIZE];

    cr_assert_not_null(HMAC(EVP_sha256(), key, (int) keylen,
                            (const unsigned char *) data, len, md, &mdlen));

    return b64url_encode(md, mdlen);
}


char *
jwt_resign(const char *token, const json_t *claims, const unsigned char *key,
    size_t keylen)
{
    char        *cj, *payload, *signing, *sig, *out;
    const char  *d1;

    d1 = strchr(token, '.');
    cr_assert_not_null(d1, "not a JWT: %s", token);

    cj = json_dumps(claims, JSON_COMPACT);
    cr_assert_not_null(cj);
    payload = b64url_encode((const unsigned char *) cj, strlen(cj));

    signing = str_printf("%.*s.%s", (int) (d1 - token), token, payload);
    sig = hs256(signing, strlen(signing), key, keylen);
    out = str_printf("%s.%s", signing, sig);

    free(cj);
    free(payload);
    free(signing);
    free(sig);

    return out;
}


int
jwt_signature_matches(const char *token, const unsigned char *key,
    size_t keylen)
{
    int          same;
    char        *sig;
    const char  *d2;

    d2 = strrchr(token, '.');
    cr_assert_not_null(d2, "not a JWT: %s", token);

    sig = hs256(token, (size_t) (d2 - token), key, keylen);
    same = strcmp(sig, d2 + 1) == 0;
    free(sig);

    return same;
}


const pay_keyring_t *
test_keyring(void)
{
    char                  *s;
    size_t                 n, bad;
    static pay_keyring_t   kr;
    static int             loaded;

    if (!loaded) {
        s = file_read(env("PAY_TEST_ENCRYPTION_KEY"), &n);
        cr_assert_not_null(s, "cannot read %s",
                           env("PAY_TEST_ENCRYPTION_KEY"));
        cr_assert_eq(pay_keyring_parse(&kr, s, n, &bad), 0,
                     "%s: line %zu", env("PAY_TEST_ENCRYPTION_KEY"), bad);
        cr_assert_geq(kr.n, 2, "the e2e key file has two keys");
        OPENSSL_cleanse(s, n);
        free(s);
        loaded = 1;
    }

    return &kr;
}


char *
psp_token_open(const char *merchant, const char *checkout,
    const char *stored)
{
    char    *ad, *out;
    size_t   slen, olen;

    if (stored == NULL) {
        return NULL;
    }

    if (strncmp(stored, "v1.", 3) != 0) {
        return strdup(stored);
    }

    ad = str_printf("%s:%s", merchant, checkout);
    slen = strlen(stored);
    out = malloc(slen + 1);
    cr_assert_not_null(out);

    if (pay_unseal(test_keyring(), ad, stored, slen, out, slen + 1, &olen)
        != 0)
    {
        free(out);
        return NULL;
    }

    return out;
}


char *
db_psp_token(const char *merchant, const char *checkout)
{
    char  *stored, *plain;

    stored = db_scalar("SELECT psp_token FROM checkouts "
                       "WHERE merchant_id = $1 AND checkout_id = $2", 2,
                       (const char *[]) { merchant, checkout });
    if (stored == NULL) {
        return NULL;
    }

    plain = psp_token_open(merchant, checkout, stored);
    cr_assert_not_null(plain, "the stored psp_token of %s:%s does not open",
                       merchant, checkout);
    free(stored);

    return plain;
}


/* a copy of the ring with keys[key] first: it seals */
static pay_keyring_t
test_ring_from(size_t key)
{
    pay_keyring_t  kr;

    kr = *test_keyring();
    cr_assert_lt(key, kr.n);
    kr.keys[0] = test_keyring()->keys[key];
    kr.keys[key] = test_keyring()->keys[0];

    return kr;
}


char *
test_seal(size_t key, const char *ad, const char *value)
{
    char           *out;
    size_t          cap;
    pay_keyring_t   kr;

    kr = test_ring_from(key);
    cap = pay_seal_len(strlen(value)) + 1;
    out = malloc(cap);
    cr_assert_not_null(out);
    cr_assert_eq(pay_seal(&kr, ad, value, strlen(value), out, cap), 0);
    OPENSSL_cleanse(&kr, sizeof(kr));

    return out;
}


char *
test_blind_index(size_t key, const char *psp, const char *token)
{
    char  out[PAY_BLIND_INDEX_LEN + 1];

    cr_assert_eq(pay_blind_index(test_keyring(), key,
                                 str_printf("psp_token:%s", psp), token,
                                 strlen(token), out), 0);

    return strdup(out);
}


unsigned char *
paytoken_key(size_t *len)
{
    char    *s;
    size_t   n;

    s = file_read(env("PAY_TEST_PAYTOKEN_KEY"), &n);
    cr_assert_not_null(s, "cannot read %s", env("PAY_TEST_PAYTOKEN_KEY"));

    /* as the module reads it: trailing CR, LF and spaces dropped */
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) {
        n--;
    }

    s[n] = '\0';
    *len = n;

    return (unsigned char *) s;
}


/* -- idempotency ------------------------------------------------------------ */

void
fingerprint(const char *method, const char *path, const char *body,
    char hex[65])
{
    int            i;
    char          *canon;
    json_t        *j;
    unsigned int   mdlen;
    EVP_MD_CTX    *ctx;
    unsigned char  md[EVP_MAX_MD_SIZE];

    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "fingerprint of a body that is not JSON");

    canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII
                          | JSON_ENCODE_ANY);
    cr_assert_not_null(canon);

    ctx = EVP_MD_CTX_new();
    cr_assert_not_null(ctx);
    cr_assert(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
              && EVP_DigestUpdate(ctx, method, strlen(method)) == 1
              && EVP_DigestUpdate(ctx, "\n", 1) == 1
              && EVP_DigestUpdate(ctx, path, strlen(path)) == 1
              && EVP_DigestUpdate(ctx, "\n", 1) == 1
              && EVP_DigestUpdate(ctx, canon, strlen(canon)) == 1
              && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1
              && mdlen == 32);
    EVP_MD_CTX_free(ctx);

    for (i = 0; i < 32; i++) {
        (void) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }

    free(canon);
    json_decref(j);
}


char *
stripe_signature(const char *secret, long t, const char *body)
{
    char           *payload, hex[65];
    size_t          len;
    unsigned int    n, i;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    if (secret == NULL) {
        secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), &len);
        cr_assert_not_null(secret);
    }

    payload = str_printf("%ld.%s", t, body);
    cr_assert_not_null(HMAC(EVP_sha256(), secret, (int) strlen(secret),
                            (unsigned char *) payload, strlen(payload), mac,
                            &n));
    free(payload);

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }

    return str_printf("Stripe-Signature: t=%ld,v1=%s", t, hex);
}


/* -- more gateways ---------------------------------------------------------- */

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


void
gateway_start_env(gateway_t *gw, const char *name, int workers,
    const char *http_conf, const char *env_words)
{
    int     rc;
    long    port;
    char   *dir, *conf, *pid;
    FILE   *f;
    const char  *level, *run = env("PAY_TEST_RUN");

    memset(gw, 0, sizeof(gateway_t));
    gw->workers = workers;

    port = free_port();

    dir = run_file(str_printf("%s-%ld", name, (long) getpid()));
    cr_assert_eq(mkdir(dir, 0755), 0, "%s", dir);

    /* the worker may run as nobody: the temp dirs must be reachable */
    cr_assert_eq(chmod(dir, 0755), 0);

    gw->dir = dir;
    gw->error_log = str_printf("%s/logs/%s-error.log", run, name);

    /* the suite's own gateway's level (ci/services.sh --error-log-level) */
    level = getenv("PAY_TEST_ERROR_LOG_LEVEL");
    if (level == NULL || level[0] == '\0') {
        level = "notice";
    }

    conf = str_printf(
        "load_module %s;\n"
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
        "    location / { payments; }\n"
        "  }\n"
        "}\n",
        gateway_module(), workers, dir, gw->error_log, level, run, name,
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


void
gateway_stop(gateway_t *gw)
{
    int  i;

    if (gw->pid <= 0) {
        return;
    }

    kill(gw->pid, SIGTERM);

    for (i = 0; i < 100 && kill(gw->pid, 0) == 0; i++) {
        msleep(100);
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


/* -- notifications ------------------------------------------------------------ */

char *
receiver_url(const char *name)
{
    return str_printf("%s/hooks/%s", env("PAY_TEST_RECEIVER"), name);
}


char *
receiver_url_on(const char *host, const char *name)
{
    const char  *r, *colon;

    r = env("PAY_TEST_RECEIVER");
    colon = strrchr(r, ':');
    cr_assert(colon != NULL && colon > r + 6, "PAY_TEST_RECEIVER %s", r);

    return str_printf("https://%s%s/hooks/%s", host, colon, name);
}


/* A control request to the receiver: its answer, 200 required. */
static resp_t *
receiver_control(const char *method, const char *path, json_t *body)
{
    req_t        rq;
    char        *s;
    resp_t      *r;
    const char  *h[] = { "Content-Type: application/json", NULL };

    s = body != NULL ? dump(body) : NULL;

    rq.method = method;
    rq.url = str_printf("%s%s", env("PAY_TEST_RECEIVER_CONTROL"), path);
    rq.headers = h;
    rq.body = s;
    rq.len = (size_t) -1;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "receiver %s %s: %ld (%s) %s", method, path,
                 r->status, r->error, r->body);

    json_decref(body);
    free(s);

    return r;
}


void
receiver_mode(const char *name, const char *mode, const char *const *script)
{
    json_t  *j, *a;

    a = json_array();
    while (script != NULL && *script != NULL) {
        json_array_append_new(a, json_string(*script++));
    }

    j = json_pack("{s:s, s:s, s:o}", "path", str_printf("/hooks/%s", name),
                  "mode", mode, "script", a);
    cr_assert_not_null(j);

    resp_free(receiver_control("POST", "/_control/mode", j));
}


void
receiver_secrets(const char *name, const char *const *secrets)
{
    json_t  *j, *a;

    a = json_array();
    while (secrets != NULL && *secrets != NULL) {
        json_array_append_new(a, json_string(*secrets++));
    }

    j = json_pack("{s:s, s:o}", "path", str_printf("/hooks/%s", name),
                  "secrets", a);
    cr_assert_not_null(j);

    resp_free(receiver_control("POST", "/_control/secrets", j));
}


json_t *
receiver_deliveries(const char *name)
{
    char    *esc;
    resp_t  *r;
    json_t  *ds;

    esc = url_escape(str_printf("/hooks/%s", name));
    r = receiver_control("GET", str_printf("/_control/deliveries?path=%s",
                                           esc), NULL);
    ds = json_object_get(resp_json(r), "deliveries");
    cr_assert(json_is_array(ds), "receiver deliveries: %s", r->body);
    json_incref(ds);

    resp_free(r);
    free(esc);

    return ds;
}


json_t *
receiver_stats(void)
{
    resp_t  *r;
    json_t  *j;

    r = receiver_control("GET", "/_control/stats", NULL);
    j = json_incref(resp_json(r));
    resp_free(r);

    return j;
}


size_t
deliveries_count(const json_t *ds, const char *answer, const char *type)
{
    size_t       i, n;
    json_t      *d;
    const char  *a, *t;

    n = 0;

    json_array_foreach(ds, i, d) {
        a = json_string_value(json_object_get(d, "answer"));
        t = json_string_value(json_object_get(d, "type"));

        if ((answer == NULL || (a != NULL && strcmp(a, answer) == 0))
            && (type == NULL || (t != NULL && strcmp(t, type) == 0)))
        {
            n++;
        }
    }

    return n;
}


size_t
deliveries_distinct(const json_t *ds, const char *answer)
{
    size_t       i, n;
    json_t      *d, *seen;
    const char  *a, *id;

    seen = json_object();

    json_array_foreach(ds, i, d) {
        a = json_string_value(json_object_get(d, "answer"));
        id = json_string_value(json_object_get(d, "webhook_id"));

        if (id != NULL
            && (answer == NULL || (a != NULL && strcmp(a, answer) == 0)))
        {
            json_object_set_new(seen, id, json_true());
        }
    }

    n = json_object_size(seen);
    json_decref(seen);

    return n;
}


json_t *
receiver_wait(const char *name, const char *answer, size_t n, int seconds)
{
    int      i;
    json_t  *ds;

    for (i = 0; ; i++) {
        ds = receiver_deliveries(name);

        if (deliveries_count(ds, answer, NULL) >= n) {
            return ds;
        }

        if (i >= seconds * 10) {
            break;
        }

        json_decref(ds);
        msleep(100);
    }

    cr_assert_fail("/hooks/%s: %zu of %zu deliveries answered %s after %d s: "
                   "%s", name, deliveries_count(ds, answer, NULL), n,
                   answer ? answer : "anything", seconds, dump(ds));
    return NULL;
}


/* The first word of s that starts with prefix (at the start, or after a
 * character outside charset), made of charset's characters; 0 or -1. */
static int
word_with_prefix(const char *s, const char *prefix, const char *charset,
    char *buf, size_t cap)
{
    size_t       n;
    const char  *p;

    for (p = s; (p = strstr(p, prefix)) != NULL; p++) {
        if (p != s && strchr(charset, p[-1]) != NULL) {
            continue;
        }

        n = strspn(p, charset);
        if (n <= strlen(prefix) || n >= cap) {
            continue;
        }

        memcpy(buf, p, n);
        buf[n] = '\0';
        return 0;
    }

    return -1;
}


#define ID_CHARS      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
                      "0123456789_-"
#define SECRET_CHARS  ID_CHARS "+/="


int
endpoint_add_raw(const merchant_t *m, const char *url,
    const char *const *extra, char **out)
{
    size_t       n;
    const char  *args[20];

    n = 0;
    args[n++] = "add-endpoint";
    args[n++] = "--id";
    args[n++] = m->id;
    args[n++] = "--url";
    args[n++] = url;

    while (extra != NULL && *extra != NULL && n < 19) {
        args[n++] = *extra++;
    }

    args[n] = NULL;

    return merchant_toolv(args, out);
}


void
endpoint_add(const merchant_t *m, const char *events, endpoint_t *ep)
{
    char  *name;

    name = uid("h");
    endpoint_add_at(m, receiver_url(name), name, events, ep);
}


void
endpoint_add_at(const merchant_t *m, const char *url, const char *name,
    const char *events, endpoint_t *ep)
{
    int          rc;
    char        *out;
    const char  *extra[4], *secrets[2];

    memset(ep, 0, sizeof(endpoint_t));

    ep->name = strdup(name);
    ep->path = str_printf("/hooks/%s", ep->name);
    ep->url = strdup(url);

    extra[0] = "--allow-loopback";
    extra[1] = events != NULL ? "--events" : NULL;
    extra[2] = events;
    extra[3] = NULL;

    rc = endpoint_add_raw(m, ep->url, extra, &out);
    cr_assert_eq(rc, 0, "payments-merchant add-endpoint %s: %d %s", ep->url,
                 rc, out);

    cr_assert_eq(word_with_prefix(out, "ep_", ID_CHARS, ep->id,
                                  sizeof(ep->id)), 0,
                 "add-endpoint printed no endpoint id (ep_...): %s", out);
    cr_assert_eq(word_with_prefix(out, "whsec_", SECRET_CHARS, ep->secret,
                                  sizeof(ep->secret)), 0,
                 "add-endpoint printed no secret (whsec_...): %s", out);
    secret_used(ep->secret);

    secrets[0] = ep->secret;
    secrets[1] = NULL;
    receiver_secrets(ep->name, secrets);

    free(out);
}


char *
endpoint_rotate(endpoint_t *ep, const char *grace)
{
    int          rc;
    char        *out, *old, fresh[128];
    const char  *args[6], *secrets[3];

    args[0] = "rotate-secret";
    args[1] = "--endpoint";
    args[2] = ep->id;
    args[3] = grace != NULL ? "--grace" : NULL;
    args[4] = grace;
    args[5] = NULL;

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "payments-merchant rotate-secret: %d %s", rc, out);
    cr_assert_eq(word_with_prefix(out, "whsec_", SECRET_CHARS, fresh,
                                  sizeof(fresh)), 0,
                 "rotate-secret printed no secret (whsec_...): %s", out);
    cr_assert_str_neq(fresh, ep->secret, "rotate-secret printed the old "
                      "secret");
    secret_used(fresh);

    old = strdup(ep->secret);
    strcpy(ep->secret, fresh);

    secrets[0] = old;
    secrets[1] = ep->secret;
    secrets[2] = NULL;
    receiver_secrets(ep->name, secrets);

    free(out);
    return old;
}


void
endpoint_command(const endpoint_t *ep, const char *command)
{
    int          rc;
    char        *out;
    const char  *args[] = { command, "--endpoint", ep->id, NULL };

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "payments-merchant %s %s: %d %s", command, ep->id,
                 rc, out);
    free(out);
}


char *
notify_conf(const char *params)
{
    /* gateway_start's configuration has payments_encryption_key */
    return str_printf("payments_notify on %s ca=%s;\n",
                      params != NULL ? params : NOTIFY_SUITE_PARAMS,
                      env("PAY_TEST_RECEIVER_CA"));
}


static resp_t *
origin_send(const char *origin, const char *method, const char *path,
    const merchant_t *m)
{
    req_t        rq;
    resp_t      *r;
    char        *auth;
    const char  *h[2];

    auth = str_printf("Authorization: Bearer %s", m->key);
    h[0] = auth;
    h[1] = NULL;

    rq.method = method;
    rq.url = str_printf("%s%s", origin != NULL ? origin : env("PAY_TEST_GW"),
                        path);
    rq.headers = h;
    rq.body = NULL;
    rq.len = 0;

    r = http(&rq);
    free(auth);

    return r;
}


json_t *
notifications_list(const char *origin, const merchant_t *m,
    const char *query)
{
    resp_t  *r;
    json_t  *j, *items;

    r = origin_send(origin, "GET", str_printf("/v1/notifications%s%s",
                                              query ? "?" : "",
                                              query ? query : ""), m);
    cr_assert_eq(r->status, 200, "GET /v1/notifications?%s: %ld (%s) %s",
                 query ? query : "", r->status, r->error, r->body);

    j = resp_json(r);
    items = json_is_array(j) ? j : json_object_get(j, "items");
    cr_assert(json_is_array(items), "GET /v1/notifications: no items: %s",
              r->body);
    json_incref(items);
    resp_free(r);

    return items;
}


json_t *
notification_find(const char *origin, const merchant_t *m, const char *id)
{
    size_t       i;
    json_t      *items, *it;
    const char  *v;

    items = notifications_list(origin, m, "limit=100");

    json_array_foreach(items, i, it) {
        v = json_string_value(json_object_get(it, "id"));
        if (v != NULL && strcmp(v, id) == 0) {
            json_incref(it);
            json_decref(items);
            return it;
        }
    }

    json_decref(items);
    return NULL;
}


json_t *
notification_wait(const char *origin, const merchant_t *m, const char *id,
    const char *want, int seconds)
{
    int          i;
    json_t      *it;
    const char  *st;

    it = NULL;

    for (i = 0; i <= seconds * 5; i++) {
        json_decref(it);
        it = notification_find(origin, m, id);
        st = it ? json_string_value(json_object_get(it, "status")) : NULL;

        if (st != NULL && strcmp(st, want) == 0) {
            return it;
        }

        msleep(200);
    }

    cr_assert_fail("notification %s is not %s after %d s: %s", id, want,
                   seconds, it ? dump(it) : "not listed");
    return NULL;
}


resp_t *
notification_replay(const char *origin, const merchant_t *m, const char *id)
{
    char    *esc;
    resp_t  *r;

    esc = url_escape(id);
    r = origin_send(origin, "POST",
                    str_printf("/v1/notifications/%s/replay", esc), m);
    free(esc);

    return r;
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
    v = p != NULL ? strtod(p + strlen(line), NULL) : -1;

    free(line);
    resp_free(r);

    return v;
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

    return pid > 1 && kill((pid_t) pid, 0) == 0 ? (pid_t) pid : 0;
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

    for (i = 0; i < 150 && kill(pid, 0) == 0; i++) {
        msleep(100);
    }

    if (kill(pid, 0) == 0) {
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
