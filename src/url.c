/*
 * ngx_payments core: the one URL and URI parser.  Origins (scheme, host,
 * port) of return URLs, PSP hosted pages and the configured bases, parsed
 * with libcurl's URL API and compared by component; and the gateway's own
 * request paths, against its route table.
 *
 * libcurl is the parser the adapter's HTTP client uses, so what we check is
 * what would be fetched; but libcurl is lenient on purpose (it fixes up
 * slashes, decodes hosts, guesses), so a strict lexical gate runs first and
 * the parsed parts are checked again afterwards.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <payments/checkout.h>
#include <payments/url.h>


static int
pay_url_lexical_ok(const char *url, size_t len, int allow_http)
{
    size_t       i, start;
    const char  *p;

    /* Control characters (CR LF: header injection), spaces, DEL, non-ASCII
     * (IDN spoofing) and backslashes (browsers read "\" as "/") are refused
     * before any parser sees them. */
    for (i = 0; i < len; i++) {
        unsigned char  c = (unsigned char) url[i];

        if (c < 0x21 || c > 0x7e || c == '\\') {
            return 0;
        }
    }

    /* An absolute URL with an authority, spelled out: libcurl would accept
     * "https:/host" and "https:///host" too, and browsers disagree on
     * those. */
    if (len > 8 && strncasecmp(url, "https://", 8) == 0) {
        start = 8;

    } else if (allow_http && len > 7 && strncasecmp(url, "http://", 7) == 0) {
        start = 7;

    } else {
        return 0;
    }

    /* The authority ends at the first '/', '?' or '#'.  No userinfo ('@'
     * is how "https://shop.example@evil" lands on evil), and no percent
     * escapes: libcurl decodes them in hosts, so "shop.example%2eevil.com"
     * would name another host than the one a person reads. */
    for (p = url + start; p < url + len; p++) {
        if (*p == '/' || *p == '?' || *p == '#') {
            break;
        }

        if (*p == '@' || *p == '%') {
            return 0;
        }
    }

    /* empty authority: "https:///x", "https://?x" */
    if (p == url + start) {
        return 0;
    }

    return 1;
}


static int
pay_host_ok(const char *host, size_t len)
{
    size_t  i;
    int     label;

    if (len == 0 || len >= sizeof(((pay_origin_t *) 0)->host)) {
        return 0;
    }

    /* IPv6 literal: libcurl has checked its syntax and kept the brackets. */
    if (host[0] == '[') {
        if (host[len - 1] != ']') {
            return 0;
        }

        for (i = 1; i < len - 1; i++) {
            if (!((host[i] >= '0' && host[i] <= '9')
                  || (host[i] >= 'a' && host[i] <= 'f')
                  || host[i] == ':' || host[i] == '.'))
            {
                return 0;
            }
        }

        return 1;
    }

    /* LDH (and '_') labels, none empty: no leading, doubled or trailing
     * dot.  A trailing dot names the same DNS host but another origin to
     * a browser and to string comparisons, so it is refused, not
     * normalised. */
    label = 0;

    for (i = 0; i < len; i++) {
        if (host[i] == '.') {
            if (label == 0) {
                return 0;
            }

            label = 0;
            continue;
        }

        if (!((host[i] >= 'a' && host[i] <= 'z')
              || (host[i] >= '0' && host[i] <= '9')
              || host[i] == '-' || host[i] == '_'))
        {
            return 0;
        }

        label++;
    }

    return label > 0;
}


int
pay_origin_parse(const char *url, pay_origin_t *o, int allow_http)
{
    int          rc;
    char        *scheme, *host, *port, *part, *end;
    size_t       len, i;
    CURLU       *h;
    CURLUcode    uc;
    unsigned long  n;

    if (url == NULL || o == NULL) {
        return -1;
    }

    len = strnlen(url, PAY_URL_MAX + 1);
    if (len > PAY_URL_MAX) {
        return -1;
    }

    if (!pay_url_lexical_ok(url, len, allow_http)) {
        return -1;
    }

    h = curl_url();
    if (h == NULL) {
        return -1;
    }

    rc = -1;
    scheme = NULL;
    host = NULL;
    port = NULL;

    /* No CURLU_NON_SUPPORT_SCHEME, CURLU_GUESS_SCHEME, CURLU_DEFAULT_SCHEME,
     * CURLU_ALLOW_SPACE or CURLU_URLENCODE: the URL must stand as given. */
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK) {
        goto done;
    }

    /* Userinfo again, as libcurl sees it (the lexical gate already refused
     * '@' in the authority). */
    part = NULL;
    uc = curl_url_get(h, CURLUPART_USER, &part, 0);
    curl_free(part);
    if (uc != CURLUE_NO_USER) {
        goto done;
    }

    part = NULL;
    uc = curl_url_get(h, CURLUPART_PASSWORD, &part, 0);
    curl_free(part);
    if (uc != CURLUE_NO_PASSWORD) {
        goto done;
    }

    part = NULL;
    uc = curl_url_get(h, CURLUPART_OPTIONS, &part, 0);
    curl_free(part);
    if (uc != CURLUE_NO_OPTIONS) {
        goto done;
    }

    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        goto done;
    }

    /* libcurl lower-cases the scheme. */
    if (strcmp(scheme, "https") != 0
        && !(allow_http && strcmp(scheme, "http") == 0))
    {
        goto done;
    }

    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        goto done;
    }

    for (i = 0; host[i] != '\0'; i++) {
        if (host[i] >= 'A' && host[i] <= 'Z') {
            host[i] = (char) (host[i] - 'A' + 'a');
        }
    }

    if (!pay_host_ok(host, i)) {
        goto done;
    }

    /* The explicit port, or the scheme's default (443, 80). */
    if (curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
        != CURLUE_OK)
    {
        goto done;
    }

    if (port[0] < '0' || port[0] > '9') {
        goto done;
    }

    n = strtoul(port, &end, 10);
    if (*end != '\0' || n == 0 || n > 65535) {
        goto done;
    }

    memcpy(o->scheme, scheme, strlen(scheme) + 1);
    memcpy(o->host, host, i + 1);
    o->port = (unsigned) n;

    rc = 0;

done:

    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);

    return rc;
}


int
pay_origin_equal(const pay_origin_t *a, const pay_origin_t *b)
{
    if (a == NULL || b == NULL) {
        return 0;
    }

    return strcmp(a->scheme, b->scheme) == 0
           && strcasecmp(a->host, b->host) == 0
           && a->port == b->port;
}


int
pay_origin_format(const pay_origin_t *o, char *buf, size_t size)
{
    int  n;

    if (o == NULL || buf == NULL || size == 0) {
        return -1;
    }

    n = snprintf(buf, size, "%s://%s:%u", o->scheme, o->host, o->port);
    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    return n;
}


int
pay_origin_allowed(const char *url, const pay_origin_t *allowed, size_t n,
    int allow_http)
{
    size_t        i;
    pay_origin_t  o;

    if (allowed == NULL || pay_origin_parse(url, &o, allow_http) != 0) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (pay_origin_equal(&o, &allowed[i])) {
            return 1;
        }
    }

    return 0;
}


int
pay_origin_is_loopback(const pay_origin_t *o)
{
    int          parts, digits;
    long         v;
    const char  *p;

    if (strcmp(o->host, "localhost") == 0 || strcmp(o->host, "[::1]") == 0
        || strcmp(o->host, "::1") == 0)
    {
        return 1;
    }

    if (strncmp(o->host, "127.", 4) != 0) {
        return 0;
    }

    /* exactly four decimal numbers of 0..255, no leading zeros */
    parts = 0;
    p = o->host;

    for ( ;; ) {
        v = 0;
        digits = 0;

        while (*p >= '0' && *p <= '9') {
            if (digits > 0 && v == 0) {
                return 0;
            }
            v = v * 10 + (*p++ - '0');
            if (++digits > 3 || v > 255) {
                return 0;
            }
        }

        if (digits == 0) {
            return 0;
        }

        parts++;

        if (*p == '\0') {
            return parts == 4;
        }

        if (*p++ != '.' || parts == 4) {
            return 0;
        }
    }
}


/* The length of a comma-separated list's current entry; *list moves past
 * it (and its comma).  NULL or exhausted: 0, and *list is NULL. */
static size_t
conninfo_entry(const char **list, const char **entry)
{
    const char  *p = *list, *comma;
    size_t       n;

    *entry = p;

    if (p == NULL) {
        return 0;
    }

    comma = strchr(p, ',');
    n = comma ? (size_t) (comma - p) : strlen(p);
    *list = comma ? comma + 1 : NULL;

    return n;
}


int
pay_conninfo_lookup_entry(const char *host, const char *hostaddr)
{
    int          i;
    size_t       hn, an;
    const char  *h, *a;

    for (i = 1; host != NULL || hostaddr != NULL; i++) {
        hn = conninfo_entry(&host, &h);
        an = conninfo_entry(&hostaddr, &a);

        if (an == 0 && hn != 0 && h[0] != '/' && h[0] != '@') {
            return i;
        }
    }

    return 0;
}


int
pay_conninfo_servers(const char *host, const char *hostaddr)
{
    int          n;
    const char  *h, *a;

    if (host == NULL && hostaddr == NULL) {
        return 1;
    }

    for (n = 0; host != NULL || hostaddr != NULL; n++) {
        (void) conninfo_entry(&host, &h);
        (void) conninfo_entry(&hostaddr, &a);
    }

    return n;
}


int
pay_url_base(const char *url, pay_origin_t *o, int allow_http,
    size_t *base_len)
{
    size_t  len;

    if (pay_origin_parse(url, o, allow_http) != 0) {
        return -1;
    }

    /* plain http is for this machine only: a mock PSP, a test gateway */
    if (strcmp(o->scheme, "https") != 0 && !pay_origin_is_loopback(o)) {
        return -1;
    }

    if (base_len != NULL) {
        len = strlen(url);

        while (len > 0 && url[len - 1] == '/') {
            len--;
        }

        *base_len = len;
    }

    return 0;
}


/* The request paths ------------------------------------------------------ */

#define PAY_PATH_EXACT   0              /* prefix is the whole path */
#define PAY_PATH_ID      1              /* prefix {id} suffix */
#define PAY_PATH_RETURN  2              /* prefix {psp}/{id} */

typedef struct {
    pay_route_t   r;
    int           shape;
    const char   *prefix;
    const char   *suffix;
} pay_path_route_t;


/* Matched in this order: the first route whose shape fits wins (the first
 * of the request's method, pay_path_parse_method). */
static const pay_path_route_t  pay_routes[] = {
    { { PAY_ROUTE_HEALTHZ, "healthz", 0, 1, 0, 0 },
      PAY_PATH_EXACT, "/healthz", NULL },
    { { PAY_ROUTE_READYZ, "readyz", 0, 1, 0, 0 },
      PAY_PATH_EXACT, "/readyz", NULL },
    { { PAY_ROUTE_METRICS, "metrics", 0, 1, 0, 0 },
      PAY_PATH_EXACT, "/metrics", NULL },
    { { PAY_ROUTE_PAYMENTS, "create_payment", 1, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/payments", NULL },
    { { PAY_ROUTE_LIST_PAYMENTS, "list_payments", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/payments", NULL },
    { { PAY_ROUTE_LIST_CHECKOUTS, "list_checkouts", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/checkouts", NULL },
    { { PAY_ROUTE_LIST_REFUNDS, "list_refunds", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/refunds", NULL },
    { { PAY_ROUTE_EVENTS, "list_events", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/events", NULL },
    { { PAY_ROUTE_REVIEWS, "list_reviews", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/reviews", NULL },
    { { PAY_ROUTE_REVIEW_APPROVE, "approve_review", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/reviews/", "/approve" },
    { { PAY_ROUTE_REVIEW_REJECT, "reject_review", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/reviews/", "/reject" },
    { { PAY_ROUTE_REFUNDS, "create_refund", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payments/", "/refunds" },
    { { PAY_ROUTE_CAPTURE, "capture_payment", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payments/", "/capture" },
    { { PAY_ROUTE_VOID, "void_payment", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payments/", "/void" },
    { { PAY_ROUTE_PAYMENT, "get_payment", 0, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payments/", "" },
    { { PAY_ROUTE_METHODS, "list_payment_methods", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/payment_methods", NULL },
    { { PAY_ROUTE_METHOD_DETACH, "detach_payment_method", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payment_methods/", "/detach" },
    { { PAY_ROUTE_METHOD, "get_payment_method", 0, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payment_methods/", "" },
    { { PAY_ROUTE_METHOD_DETACH, "detach_payment_method", 0, 0, 0, 1 },
      PAY_PATH_ID, "/v1/payment_methods/", "" },
    { { PAY_ROUTE_PAYOUTS, "create_payout", 1, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/payouts", NULL },
    { { PAY_ROUTE_LIST_PAYOUTS, "list_payouts", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/payouts", NULL },
    { { PAY_ROUTE_PAYOUT, "get_payout", 0, 0, 0, 0 },
      PAY_PATH_ID, "/v1/payouts/", "" },
    { { PAY_ROUTE_BALANCE, "get_balance", 0, 0, 0, 0 },
      PAY_PATH_ID, "/v1/sellers/", "/balance" },
    { { PAY_ROUTE_NOTIFICATIONS, "list_notifications", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/notifications", NULL },
    { { PAY_ROUTE_NOTIFICATION_REPLAY, "replay_notification", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/notifications/", "/replay" },
    { { PAY_ROUTE_ENDPOINTS, "list_webhook_endpoints", 0, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/webhook_endpoints", NULL },
    { { PAY_ROUTE_ENDPOINT_CREATE, "create_webhook_endpoint", 1, 0, 0, 0 },
      PAY_PATH_EXACT, "/v1/webhook_endpoints", NULL },
    { { PAY_ROUTE_ENDPOINT_ENABLE, "enable_webhook_endpoint", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/webhook_endpoints/", "/enable" },
    { { PAY_ROUTE_ENDPOINT_DISABLE, "disable_webhook_endpoint", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/webhook_endpoints/", "/disable" },
    { { PAY_ROUTE_ENDPOINT_ROTATE, "rotate_webhook_endpoint_secret", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/webhook_endpoints/", "/rotate_secret" },
    { { PAY_ROUTE_WEBHOOK, "webhook", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/webhooks/", "" },
    { { PAY_ROUTE_CANCEL, "cancel_checkout", 1, 0, 0, 0 },
      PAY_PATH_ID, "/v1/checkouts/", "/cancel" },
    { { PAY_ROUTE_PAY, "pay", 0, 0, 1, 0 },
      PAY_PATH_ID, "/v1/checkouts/", "/pay" },
    { { PAY_ROUTE_STATUS, "status", 0, 0, 0, 0 },
      PAY_PATH_ID, "/v1/checkouts/", "/status" },
    { { PAY_ROUTE_STATIC, "static", 0, 0, 1, 0 },
      PAY_PATH_ID, "/v1/static/", "" },
    { { PAY_ROUTE_RETURN, "return", 0, 0, 1, 0 },
      PAY_PATH_RETURN, "/v1/return/", NULL },
    { { PAY_ROUTE_CHECKOUT, "get_checkout", 0, 0, 0, 0 },
      PAY_PATH_ID, "/v1/checkouts/", "" },
};


/* a segment: at least one byte, no '/' */
static int
pay_segment(const char *s, size_t len)
{
    return len > 0 && memchr(s, '/', len) == NULL;
}


/* the route's shape against the path: 0 with p's segments set, or -1 */
static int
pay_path_match(const pay_path_route_t *rt, const char *path, size_t len,
    pay_path_t *p)
{
    size_t       plen, slen;
    const char  *seg, *slash;

    memset(p, 0, sizeof(pay_path_t));

    plen = strlen(rt->prefix);

    if (len < plen || memcmp(path, rt->prefix, plen) != 0) {
        return -1;
    }

    seg = path + plen;

    switch (rt->shape) {

    case PAY_PATH_EXACT:
        if (len != plen) {
            return -1;
        }

        break;

    case PAY_PATH_ID:
        slen = strlen(rt->suffix);

        if (len < plen + slen
            || memcmp(path + len - slen, rt->suffix, slen) != 0
            || !pay_segment(seg, len - plen - slen))
        {
            return -1;
        }

        p->id = seg;
        p->id_len = len - plen - slen;

        if (rt->r.route == PAY_ROUTE_WEBHOOK) {
            p->psp = p->id;
            p->psp_len = p->id_len;
        }

        break;

    default: /* PAY_PATH_RETURN */
        slash = memchr(seg, '/', len - plen);

        if (slash == NULL
            || !pay_segment(seg, (size_t) (slash - seg))
            || !pay_segment(slash + 1, (size_t) (path + len - slash - 1)))
        {
            return -1;
        }

        p->psp = seg;
        p->psp_len = (size_t) (slash - seg);
        p->id = slash + 1;
        p->id_len = (size_t) (path + len - p->id);
        break;
    }

    p->route = &rt->r;

    return 0;
}


/* post: PAY_PATH_GET, _POST or _DELETE, -1 for the first route whatever
 * its method */
static int
pay_path_find(const char *path, size_t len, int post, pay_path_t *p)
{
    size_t  i, first;

    if (p == NULL) {
        return -1;
    }

    memset(p, 0, sizeof(pay_path_t));

    if (path == NULL) {
        return -1;
    }

    first = (size_t) -1;

    for (i = 0; i < sizeof(pay_routes) / sizeof(pay_routes[0]); i++) {
        if (pay_path_match(&pay_routes[i], path, len, p) != 0) {
            continue;
        }

        if (post < 0 || pay_route_method(&pay_routes[i].r) == post) {
            return 0;
        }

        if (first == (size_t) -1) {
            first = i;
        }
    }

    if (first != (size_t) -1) {
        return pay_path_match(&pay_routes[first], path, len, p);
    }

    memset(p, 0, sizeof(pay_path_t));

    return -1;
}


int
pay_path_parse(const char *path, size_t len, pay_path_t *p)
{
    return pay_path_find(path, len, -1, p);
}


int
pay_path_parse_method(const char *path, size_t len, int post, pay_path_t *p)
{
    return pay_path_find(path, len,
                         post == PAY_PATH_DELETE ? PAY_PATH_DELETE
                         : post ? PAY_PATH_POST : PAY_PATH_GET, p);
}


const char *
pay_route_name(unsigned route)
{
    size_t  i;

    for (i = 0; i < sizeof(pay_routes) / sizeof(pay_routes[0]); i++) {
        if ((unsigned) pay_routes[i].r.route == route) {
            return pay_routes[i].r.name;
        }
    }

    return "other";
}


/* --- request lines for the logs (url.h) ----------------------------------- */

static int
pay_redact_hex(char c)
{
    return (c >= '0' && c <= '9') ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}


/* the name as whatever decodes the query reads it: "%74" is "t" */
static int
pay_redact_name(const char *p, size_t n)
{
    char    name[16];
    size_t  i, k;
    int     hi, lo;

    for (i = 0, k = 0; i < n; k++) {
        if (k == sizeof(name)) {
            return 0;
        }

        if (p[i] == '%' && i + 2 < n) {
            hi = pay_redact_hex(p[i + 1]);
            lo = pay_redact_hex(p[i + 2]);

            if (hi >= 0 && lo >= 0) {
                name[k] = (char) (hi * 16 + lo);
                i += 3;
                continue;
            }
        }

        name[k] = p[i++];
    }

    return (k == 1 && (name[0] == 't' || name[0] == 'T'))
           || (k == 9 && memcmp(name, "sessionId", 9) == 0)
           || (k == 13 && memcmp(name, "sessionResult", 13) == 0);
}


size_t
pay_redact_request_line(const char *line, size_t len, char *out)
{
    size_t       n, vlen;
    const char  *q, *args, *end, *last_sp, *p, *name, *eq, *amp;
    char        *o;
    int          cut;

    q = memchr(line, '?', len);
    if (q == NULL) {
        return 0;
    }

    args = q + 1;
    end = line + len;

    /* the protocol after the last space, if it comes after the query */
    last_sp = NULL;
    for (p = end; p > args; p--) {
        if (p[-1] == ' ') {
            last_sp = p - 1;
            break;
        }
    }

    if (last_sp != NULL) {
        end = last_sp;
    }

    o = out;
    memcpy(o, line, (size_t) (args - line));
    o += args - line;
    cut = 0;

    for (p = args; p < end; p = amp + 1) {
        name = p;
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', (size_t) (amp - p));

        if (eq != NULL && pay_redact_name(name, (size_t) (eq - name))) {
            vlen = (size_t) (amp - eq - 1);
            n = (size_t) (eq + 1 - name);
            memcpy(o, name, n);
            o += n;
            memcpy(o, "redacted", 8);
            o += 8;

            if (vlen != 8 || memcmp(eq + 1, "redacted", 8) != 0) {
                cut = 1;
            }

        } else {
            memcpy(o, p, (size_t) (amp - p));
            o += amp - p;
        }

        if (amp < end) {
            *o++ = '&';
        }
    }

    memcpy(o, end, (size_t) (line + len - end));
    o += line + len - end;

    return cut ? (size_t) (o - out) : 0;
}


int
pay_url_checkout_id(const char *url, const char *id, char *buf, size_t size)
{
    size_t       n, idlen, skip;
    const char  *p;

    static const char  brace[] = "{CHECKOUT_ID}";
    static const char  enc[] = "%7BCHECKOUT_ID%7D";

    if (url == NULL || id == NULL || buf == NULL || size == 0) {
        return -1;
    }

    idlen = strlen(id);
    n = 0;

    for (p = url; *p != '\0'; p += skip) {
        if (strncmp(p, brace, sizeof(brace) - 1) == 0) {
            skip = sizeof(brace) - 1;

        } else if (strncasecmp(p, enc, 3) == 0
                   && strncmp(p + 3, enc + 3, sizeof("CHECKOUT_ID") - 1) == 0
                   && strncasecmp(p + 14, enc + 14, 3) == 0)
        {
            skip = sizeof(enc) - 1;

        } else {
            if (n + 1 >= size) {
                return -1;
            }

            buf[n++] = *p;
            skip = 1;
            continue;
        }

        if (n + idlen >= size) {
            return -1;
        }

        memcpy(buf + n, id, idlen);
        n += idlen;
    }

    buf[n] = '\0';

    return (int) n;
}
