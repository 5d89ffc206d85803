/*
 * Mock PSP: response helpers, interruptible sleeps, small utilities.
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "mock_psp.h"


/*
 * Added latency and hangs sleep in the connection's own thread.  They poll
 * this pipe instead of calling nanosleep() so that a stop signal wakes them
 * all at once: one byte is written and never read.
 */
static int  mock_stop_pipe[2] = { -1, -1 };

__thread long  mock_retry_after;


enum MHD_Result
mock_send(struct MHD_Connection *c, unsigned status, const char *content_type,
    const char *body, size_t len, const mock_header_t *headers,
    size_t nheaders)
{
    size_t                i;
    enum MHD_Result       rc;
    struct MHD_Response  *resp;

    resp = MHD_create_response_from_buffer(len, (void *) body,
                                           MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }

    if (content_type != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type);
    }

    for (i = 0; i < nheaders; i++) {
        MHD_add_response_header(resp, headers[i].name, headers[i].value);
    }

    if (mock_retry_after > 0) {
        char  ra[24];

        snprintf(ra, sizeof(ra), "%ld", mock_retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }

    rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return rc;
}


/* Takes the reference to json. */
enum MHD_Result
mock_send_json(struct MHD_Connection *c, unsigned status, json_t *json)
{
    char             *text;
    enum MHD_Result   rc;

    text = (json != NULL) ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);

    if (text == NULL) {
        return MHD_NO;
    }

    rc = mock_send(c, status, "application/json", text, strlen(text),
                   NULL, 0);
    free(text);

    return rc;
}


enum MHD_Result
mock_send_html(struct MHD_Connection *c, unsigned status, const char *title,
    const char *html_body)
{
    FILE             *f;
    char             *page;
    size_t            len;
    enum MHD_Result   rc;

    static const mock_header_t  headers[] = {
        { "Cache-Control", "no-store" },
        { "Referrer-Policy", "no-referrer" },
        { "X-Frame-Options", "DENY" },
        /*
         * No form-action: browsers apply it to the 303 that follows a
         * form post, and success_url is on another origin.
         */
        { "Content-Security-Policy",
          "default-src 'none'; frame-ancestors 'none'" }
    };

    page = NULL;
    len = 0;

    f = open_memstream(&page, &len);
    if (f == NULL) {
        return MHD_NO;
    }

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
          "<meta charset=\"utf-8\">\n<title>", f);
    mock_html_escape(f, title);
    fputs("</title>\n</head>\n<body>\n<h1>", f);
    mock_html_escape(f, title);
    fprintf(f, "</h1>\n%s</body>\n</html>\n", html_body);

    if (fclose(f) != 0) {
        free(page);
        return MHD_NO;
    }

    rc = mock_send(c, status, "text/html; charset=utf-8", page, len,
                   headers, sizeof(headers) / sizeof(headers[0]));
    free(page);

    return rc;
}


enum MHD_Result
mock_send_redirect(struct MHD_Connection *c, const char *location)
{
    mock_header_t  headers[2];

    headers[0].name = "Location";
    headers[0].value = location;
    headers[1].name = "Cache-Control";
    headers[1].value = "no-store";

    return mock_send(c, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8",
                     "See Other\n", 10, headers, 2);
}


int
mock_sleep_init(void)
{
    if (pipe2(mock_stop_pipe, O_CLOEXEC) != 0) {
        return -1;
    }

    return 0;
}


void
mock_sleep_interrupt(void)
{
    ssize_t  n;

    do {
        n = write(mock_stop_pipe[1], "x", 1);
    } while (n < 0 && errno == EINTR);
}


/* Returns 0 after ms milliseconds, -1 at once if the mock is stopping. */
int
mock_sleep_ms(long ms)
{
    int              n;
    int64_t          left;
    struct pollfd    pfd;
    struct timespec  now;
    int64_t          end;

    clock_gettime(CLOCK_MONOTONIC, &now);
    end = (int64_t) now.tv_sec * 1000000000 + now.tv_nsec
          + (int64_t) ms * 1000000;

    pfd.fd = mock_stop_pipe[0];
    pfd.events = POLLIN;

    for ( ;; ) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = end - ((int64_t) now.tv_sec * 1000000000 + now.tv_nsec);

        /* poll() takes whole milliseconds: round up, never wake early */
        left = (left > 0) ? (left + 999999) / 1000000 : 0;

        pfd.revents = 0;
        n = poll(&pfd, 1, (int) left);

        if (n > 0) {
            return -1;
        }

        if (n == 0 && left == 0) {
            return 0;
        }

        /* EINTR, or the timeout elapsed: look at the clock again */
    }
}


int
mock_client_is_loopback(struct MHD_Connection *c)
{
    const struct sockaddr         *sa;
    const struct sockaddr_in      *sin;
    const struct sockaddr_in6     *sin6;
    const union MHD_ConnectionInfo  *ci;

    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL) {
        return 0;
    }

    sa = ci->client_addr;

    if (sa->sa_family == AF_INET) {
        sin = (const struct sockaddr_in *) (const void *) sa;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }

    if (sa->sa_family == AF_INET6) {
        sin6 = (const struct sockaddr_in6 *) (const void *) sa;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            return 1;
        }

        /* ::ffff:127.x.x.x */
        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
               && sin6->sin6_addr.s6_addr[12] == 127;
    }

    return 0;
}


/*
 * An http(s) URL with a host, no blank or control character, at most max
 * bytes: what every PSP API here takes for its return URLs.
 */
int
mock_url_valid(const char *s, size_t max)
{
    size_t  len;

    if (s == NULL) {
        return 0;
    }

    len = strlen(s);
    if (len > max) {
        return 0;
    }

    if (strncasecmp(s, "https://", 8) == 0) {
        s += 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        s += 7;
    } else {
        return 0;
    }

    if (*s == '\0' || *s == '/' || *s == '?' || *s == '#') {
        return 0;
    }

    for ( ; *s; s++) {
        if ((unsigned char) *s <= 0x20 || *s == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* Three upper-case letters, as ISO 4217 spells a currency. */
int
mock_currency_valid(const char *s)
{
    return s != NULL && strlen(s) == 3
           && s[0] >= 'A' && s[0] <= 'Z'
           && s[1] >= 'A' && s[1] <= 'Z'
           && s[2] >= 'A' && s[2] <= 'Z';
}


/* n random characters of set (at most 256), unbiased; then a NUL. */
static int
mock_random_from(char *out, size_t n, const char *set)
{
    size_t          i, k, len, limit;
    unsigned char   buf[64];

    len = strlen(set);
    /* larger bytes would favour the first characters */
    limit = 256 - 256 % len;
    i = 0;

    while (i < n) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            return -1;
        }

        for (k = 0; k < sizeof(buf) && i < n; k++) {
            if (buf[k] < limit) {
                out[i++] = set[buf[k] % len];
            }
        }
    }

    out[n] = '\0';
    return 0;
}


/* n random characters of [A-Za-z0-9]; out gets a NUL after them. */
int
mock_random_alnum(char *out, size_t n)
{
    return mock_random_from(out, n,
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
}


/* n random decimal digits, the first not 0; then a NUL. */
int
mock_random_digits(char *out, size_t n)
{
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }

    if (mock_random_from(out, 1, "123456789") != 0) {
        return -1;
    }

    return mock_random_from(out + 1, n - 1, "0123456789");
}


void
mock_html_escape(FILE *f, const char *s)
{
    for ( ; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}
