/*
 * End-to-end test harness: HTTP requests and their answers.
 * What it offers: harness_http.h.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "harness.h"


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
        /* a line lost would leave an answer unchecked against the
         * OpenAPI document */
        cr_assert_eq(write(fd, line, len + 1), (ssize_t) (len + 1),
                     "%s: %s", path, strerror(errno));
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


resp_t *
webhook_post_to(const char *origin, const char *psp, const char *sig_header,
    const char *body)
{
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", sig_header, NULL };
    char        *path = str_printf("/v1/webhooks/%s", psp);

    rq.method = "POST";
    rq.url = origin != NULL ? str_printf("%s%s", origin, path) : gw_url(path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


resp_t *
webhook_post(const char *psp, const char *sig_header, const char *body)
{
    return webhook_post_to(NULL, psp, sig_header, body);
}


resp_t *
stripe_session_paid_post(const char *origin, const char *merchant_id,
    const char *co, const char *token)
{
    char    *ev, *sig;
    resp_t  *r;

    ev = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                    "\"type\":\"checkout.session.completed\","
                    "\"created\":%ld,\"livemode\":false,"
                    "\"data\":{\"object\":"
                    "{\"id\":\"%s\",\"object\":\"checkout.session\","
                    "\"client_reference_id\":\"%s:%s\","
                    "\"amount_total\":1500,"
                    "\"currency\":\"usd\",\"payment_status\":\"paid\","
                    "\"status\":\"complete\"}}}",
                    uid("evt"), (long) time(NULL), token, merchant_id, co);
    sig = stripe_signature(NULL, (long) time(NULL), ev);
    r = webhook_post_to(origin, env("PAY_TEST_PSP"), sig, ev);
    free(sig);

    return r;
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
