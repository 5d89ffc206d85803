/*
 * demo_shop: a tiny merchant web shop for the browser journey test and for
 * trying the gateway by hand.  HTTPS only (libmicrohttpd with GnuTLS); the
 * server-side call to the gateway goes through libcurl and verifies the
 * gateway's certificate against --gateway-ca.
 *
 *   GET  /        a product and a "Buy" button (a form, POST /buy)
 *   POST /buy     POST /v1/payments with a fresh Idempotency-Key (retried
 *                 with the same key when the gateway says "try again"),
 *                 then 303 to the answer's pay_url
 *   GET  /thanks  the success_url: "Thank you, payment received"
 *   GET  /cart    the cancel_url: "Payment cancelled"
 *
 * Pages are plain HTML without any script and carry a CSP.  Nothing from a
 * request or from the gateway reaches a page unescaped.  The API key comes
 * from --api-key or $DEMO_SHOP_API_KEY (prefer the environment: a command
 * line is visible to every local user) and is never logged, nor is a
 * pay_url (its token is a bearer credential for the pay link).
 *
 * Note for real shops: /thanks here trusts the browser's arrival, which is
 * fine for a demo page; a real shop marks an order paid only after asking
 * the gateway (GET /v1/checkouts/{id}) or from its own records.
 */

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>


#define SHOP_MAX_ANSWER   (256 * 1024)
#define SHOP_ATTEMPTS     3
#define SHOP_CSP          "default-src 'none'; img-src 'self'; " \
                          "base-uri 'none'; frame-ancestors 'none'"


typedef struct {
    unsigned     port;
    const char  *listen;
    const char  *gateway;        /* https://host:port, no trailing slash */
    const char  *gateway_ca;
    const char  *api_key;
    const char  *psp;
    const char  *cert_file;
    const char  *key_file;
    const char  *origin;         /* our own origin, for the return URLs */
    char        *cert_pem;
    char        *key_pem;
    char         origin_buf[128];
} shop_conf_t;


typedef struct {
    char    *data;
    size_t   len;
    int      too_big;
} shop_buf_t;


typedef struct {
    int      is_post;
    int      seen;               /* first call done (MHD calls us twice+) */
} shop_req_t;


static shop_conf_t  conf = {
    .listen = "127.0.0.1",
    .psp = "stripe",
};


static void
shop_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
shop_log(const char *fmt, ...)
{
    va_list  ap;
    char     line[1024];

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "demo_shop: %s\n", line);
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: demo_shop --port N --gateway https://HOST:PORT --gateway-ca FILE\n"
        "                 --cert FILE --key FILE [--api-key KEY] [--psp NAME]\n"
        "                 [--listen 127.0.0.1] [--origin https://HOST:PORT]\n"
        "  --port N          TCP port (0 picks a free one)\n"
        "  --listen ADDR     numeric IPv4 address to bind (127.0.0.1)\n"
        "  --gateway URL     the gateway's origin\n"
        "  --gateway-ca FILE PEM certificate(s) the gateway's must chain to\n"
        "  --api-key KEY     the merchant's API key (default $DEMO_SHOP_API_KEY)\n"
        "  --psp NAME        the PSP to pay with, as configured in the gateway (stripe)\n"
        "  --cert, --key     this shop's TLS certificate and key (PEM)\n"
        "  --origin URL      this shop's origin in success_url/cancel_url\n"
        "                    (default https://LISTEN:PORT)\n"
        "The first line on stdout is \"demo_shop listening on ORIGIN\".\n");
}


static char *
read_file(const char *path)
{
    FILE    *f;
    char    *buf;
    long     n;

    f = fopen(path, "rb");
    if (f == NULL) {
        shop_log("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1024 * 1024
        || fseek(f, 0, SEEK_SET) != 0)
    {
        shop_log("%s: cannot size it", path);
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t) n + 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n) {
        shop_log("%s: cannot read it", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}


/* --- HTML ---------------------------------------------------------------- */

/* Appends s to out (capacity cap), HTML-escaped; truncates quietly. */
static void
html_escape(char *out, size_t cap, const char *s)
{
    size_t       len = strlen(out);
    const char  *rep;
    char         one[2] = { 0, 0 };

    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '&':  rep = "&amp;"; break;
        case '<':  rep = "&lt;"; break;
        case '>':  rep = "&gt;"; break;
        case '"':  rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if ((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t') {
                rep = "?";
            } else {
                one[0] = *s;
                rep = one;
            }
        }
        if (len + strlen(rep) + 1 > cap) {
            return;
        }
        memcpy(out + len, rep, strlen(rep) + 1);
        len += strlen(rep);
    }
}


static enum MHD_Result
send_page(struct MHD_Connection *c, unsigned status, const char *title,
    const char *body_html, const char *allow)
{
    struct MHD_Response  *res;
    enum MHD_Result       rc;
    char                 *page;
    size_t                cap;
    int                   n;

    cap = strlen(title) + strlen(body_html) + 512;
    page = malloc(cap);
    if (page == NULL) {
        return MHD_NO;
    }
    n = snprintf(page, cap,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>%s</title></head>\n<body>\n"
        "<header><a href=\"/\">Demo shop</a></header>\n"
        "<main>\n%s</main>\n</body></html>\n", title, body_html);
    if (n < 0 || (size_t) n >= cap) {
        free(page);
        return MHD_NO;
    }

    res = MHD_create_response_from_buffer((size_t) n, page,
                                          MHD_RESPMEM_MUST_FREE);
    if (res == NULL) {
        free(page);
        return MHD_NO;
    }
    MHD_add_response_header(res, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(res, "Content-Security-Policy", SHOP_CSP);
    MHD_add_response_header(res, "Cache-Control", "no-store");
    MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(res, "X-Frame-Options", "DENY");
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
    if (allow != NULL) {
        MHD_add_response_header(res, "Allow", allow);
    }
    rc = MHD_queue_response(c, status, res);
    MHD_destroy_response(res);
    return rc;
}


static enum MHD_Result
send_redirect(struct MHD_Connection *c, const char *location)
{
    struct MHD_Response  *res;
    enum MHD_Result       rc;

    res = MHD_create_response_from_buffer(0, (void *) "",
                                          MHD_RESPMEM_PERSISTENT);
    if (res == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(res, "Location", location);
    MHD_add_response_header(res, "Cache-Control", "no-store");
    MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
    rc = MHD_queue_response(c, MHD_HTTP_SEE_OTHER, res);
    MHD_destroy_response(res);
    return rc;
}


/* A plain error page: a fixed heading and an escaped detail. */
static enum MHD_Result
send_error_allow(struct MHD_Connection *c, unsigned status,
    const char *heading, const char *detail, const char *allow)
{
    char  body[4096];

    snprintf(body, sizeof(body), "<h1>%s</h1>\n<p>", heading);
    html_escape(body, sizeof(body) - 64, detail);
    strncat(body, "</p>\n<p><a href=\"/\">Back to the shop</a></p>\n",
            sizeof(body) - strlen(body) - 1);
    return send_page(c, status, heading, body, allow);
}


static enum MHD_Result
send_error(struct MHD_Connection *c, unsigned status, const char *heading,
    const char *detail)
{
    return send_error_allow(c, status, heading, detail, NULL);
}


/* --- the gateway call ------------------------------------------------------ */

static size_t
collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    shop_buf_t  *b = userdata;
    size_t       n = size * nmemb;
    char        *p;

    if (b->len + n > SHOP_MAX_ANSWER) {
        b->too_big = 1;
        return 0;
    }
    p = realloc(b->data, b->len + n + 1);
    if (p == NULL) {
        return 0;
    }
    b->data = p;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}


/*
 * bytes random bytes as 2 * bytes letters a-p (a nibble each): ids without
 * a single digit.  Hex would do as well for uniqueness, but the gateway
 * refuses any body with 13 to 19 consecutive digits that pass Luhn (card
 * data), wherever they are, and one random hex checkout id in about 260
 * holds such a run ("co_387b66562074186787dc6d81": 66562074186787).
 */
static int
random_id(char *out, size_t bytes)
{
    unsigned char  raw[32];
    size_t         i;

    if (bytes > sizeof(raw) || getrandom(raw, bytes, 0) != (ssize_t) bytes) {
        return -1;
    }
    for (i = 0; i < bytes; i++) {
        out[2 * i] = (char) ('a' + (raw[i] >> 4));
        out[2 * i + 1] = (char) ('a' + (raw[i] & 0x0f));
    }
    out[2 * bytes] = '\0';
    return 0;
}


/* The checkout's body: two orders for two sellers, one currency. */
static char *
checkout_body(const char *checkout_id)
{
    char     po1[64], po2[64], ok_url[256], cancel_url[256];
    json_t  *j;
    char    *s;

    snprintf(po1, sizeof(po1), "po_%s_1", checkout_id + 3);
    snprintf(po2, sizeof(po2), "po_%s_2", checkout_id + 3);
    snprintf(ok_url, sizeof(ok_url), "%s/thanks", conf.origin);
    snprintf(cancel_url, sizeof(cancel_url), "%s/cart", conf.origin);

    j = json_pack("{s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}],"
                  " s:s, s:s, s:s}",
        "checkout_id", checkout_id,
        "buyer_info", "email", "ann@example.com",
        "payment_orders",
            "payment_order_id", po1, "seller_account", "seller_42",
            "amount", "10.00", "currency", "USD",
            "payment_order_id", po2, "seller_account", "seller_77",
            "amount", "5.00", "currency", "USD",
        "success_url", ok_url,
        "cancel_url", cancel_url,
        "psp", conf.psp);
    if (j == NULL) {
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}


/*
 * POST /v1/payments once.  Returns the HTTP status (0: no answer; errbuf
 * says why) and the body in *ans; *retry_after gets Retry-After's seconds.
 */
static long
post_payment(const char *body, const char *idem_key, shop_buf_t *ans,
    long *retry_after, char *errbuf)
{
    CURL               *h;
    CURLcode            cc;
    struct curl_slist  *hdrs = NULL, *tmp;
    char                line[512], url[512];
    long                status = 0;
    curl_off_t          ra = -1;

    h = curl_easy_init();
    if (h == NULL) {
        snprintf(errbuf, CURL_ERROR_SIZE, "curl_easy_init failed");
        return 0;
    }
    snprintf(url, sizeof(url), "%s/v1/payments", conf.gateway);
    snprintf(line, sizeof(line), "Authorization: Bearer %s", conf.api_key);
    tmp = curl_slist_append(hdrs, line);
    if (tmp != NULL) { hdrs = tmp; }
    snprintf(line, sizeof(line), "Idempotency-Key: \"%s\"", idem_key);
    tmp = curl_slist_append(hdrs, line);
    if (tmp != NULL) { hdrs = tmp; }
    tmp = curl_slist_append(hdrs, "Content-Type: application/json");
    if (tmp != NULL) { hdrs = tmp; }
    tmp = curl_slist_append(hdrs, "Accept: application/json");
    if (tmp != NULL) { hdrs = tmp; }
    tmp = curl_slist_append(hdrs, "Expect:");
    if (tmp != NULL) { hdrs = tmp; }

    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    curl_easy_setopt(h, CURLOPT_CAINFO, conf.gateway_ca);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

    cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK
            && ra >= 0)
        {
            *retry_after = (long) ra;
        }
    } else {
        if (errbuf[0] == '\0') {
            snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(cc));
        }
        if (ans->too_big) {
            snprintf(errbuf, CURL_ERROR_SIZE, "the gateway's answer is too large");
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}


/* pay_url must be on the gateway's origin: never send a shopper elsewhere. */
static int
pay_url_ok(const char *u)
{
    size_t  n = strlen(conf.gateway);

    return u != NULL && strncmp(u, conf.gateway, n) == 0 && u[n] == '/'
           && strpbrk(u, "\r\n\"<> ") == NULL;
}


static enum MHD_Result
buy(struct MHD_Connection *c)
{
    char             co[48], rnd[33], idem[48], errbuf[CURL_ERROR_SIZE];
    char             detail[1024];
    char            *body;
    shop_buf_t       ans = { 0 };
    long             status = 0, retry_after;
    int              attempt;
    json_t          *j = NULL;
    json_error_t     jerr;
    const char      *st, *pay_url, *code, *title;
    enum MHD_Result  rc;

    if (random_id(rnd, 12) != 0) {
        return send_error(c, 500, "Something went wrong", "no randomness");
    }
    snprintf(co, sizeof(co), "co_%s", rnd);
    if (random_id(rnd, 16) != 0) {
        return send_error(c, 500, "Something went wrong", "no randomness");
    }
    snprintf(idem, sizeof(idem), "buy-%s", rnd);

    body = checkout_body(co);
    if (body == NULL) {
        return send_error(c, 500, "Something went wrong", "cannot build the checkout");
    }

    /*
     * The same key and the same body on every attempt: the gateway either
     * replays its stored answer or resumes the same registration, so a
     * retry can never start a second payment.
     */
    for (attempt = 1; attempt <= SHOP_ATTEMPTS; attempt++) {
        free(ans.data);
        memset(&ans, 0, sizeof(ans));
        retry_after = -1;
        status = post_payment(body, idem, &ans, &retry_after, errbuf);
        shop_log("POST /v1/payments %s attempt %d: %ld%s%s", co, attempt,
                 status, status == 0 ? " " : "", status == 0 ? errbuf : "");
        if (status != 0 && status != 409 && status != 429 && status < 500) {
            break;
        }
        if (attempt < SHOP_ATTEMPTS) {
            if (retry_after < 0 || retry_after > 2) {
                retry_after = 1;
            }
            usleep(retry_after == 0 ? 200000 : (useconds_t) retry_after * 1000000);
        }
    }
    free(body);

    if (status == 0) {
        free(ans.data);
        snprintf(detail, sizeof(detail), "The payment gateway could not be "
                 "reached (%s). Please try again.", errbuf);
        return send_error(c, 502, "Payment could not be started", detail);
    }

    if (ans.data != NULL) {
        j = json_loads(ans.data, 0, &jerr);
    }
    free(ans.data);

    if (status == 201 && j != NULL) {
        st = json_string_value(json_object_get(j, "status"));
        pay_url = json_string_value(json_object_get(j, "pay_url"));
        if (st != NULL && strcmp(st, "EXECUTING") == 0 && pay_url_ok(pay_url)) {
            shop_log("checkout %s registered: 303 to the gateway's pay link", co);
            rc = send_redirect(c, pay_url);
            json_decref(j);
            return rc;
        }
        code = json_string_value(json_object_get(j, "failure"));
        if (code == NULL) {
            code = json_string_value(json_object_get(
                       json_object_get(j, "failure"), "message"));
        }
        if (st != NULL && strcmp(st, "FAILED") == 0) {
            snprintf(detail, sizeof(detail), "The payment provider refused "
                     "the payment%s%s", code != NULL ? ": " : ".",
                     code != NULL ? code : "");
        } else if (st != NULL && strcmp(st, "EXECUTING") == 0) {
            snprintf(detail, sizeof(detail),
                     "The gateway's answer has no usable pay link.");
        } else {
            snprintf(detail, sizeof(detail), "The checkout is in an "
                     "unexpected state.");
        }
        shop_log("checkout %s not payable: %s", co, detail);
        json_decref(j);
        return send_error(c, 502, "Payment could not be started", detail);
    }

    code = j != NULL ? json_string_value(json_object_get(j, "code")) : NULL;
    title = j != NULL ? json_string_value(json_object_get(j, "detail")) : NULL;
    if (title == NULL && j != NULL) {
        title = json_string_value(json_object_get(j, "title"));
    }
    snprintf(detail, sizeof(detail), "The payment gateway answered %ld%s%s%s%s.",
             status, code != NULL ? " " : "", code != NULL ? code : "",
             title != NULL ? ": " : "", title != NULL ? title : "");
    shop_log("checkout %s refused: %s", co, detail);
    json_decref(j);
    return send_error(c, 502, "Payment could not be started", detail);
}


/* --- routing ------------------------------------------------------------ */

static const char  product_html[] =
    "<h1>Field notebook set</h1>\n"
    "<p>A pocket notebook (10.00 USD, sold by seller_42) and a pencil "
    "(5.00 USD, sold by seller_77): 15.00 USD in one payment.</p>\n"
    "<form method=\"post\" action=\"/buy\">\n"
    "<button type=\"submit\" id=\"buy\">Buy</button>\n"
    "</form>\n";

static const char  thanks_html[] =
    "<h1>Thank you, payment received</h1>\n"
    "<p>Your order is on its way.</p>\n"
    "<p><a href=\"/\">Back to the shop</a></p>\n";

static const char  cart_html[] =
    "<h1>Payment cancelled</h1>\n"
    "<p>Nothing was charged. Your items are still in the cart.</p>\n"
    "<p><a href=\"/\">Back to the shop</a></p>\n";


/*
 * A POST must come from our own pages.  Our Referrer-Policy (no-referrer)
 * makes browsers send "Origin: null" with our own form, so the browser's
 * Sec-Fetch-Site says where the form was; a real Origin must be ours.
 * Clients that send neither (curl) pass: there is no cookie to protect.
 */
static int
same_origin(struct MHD_Connection *c)
{
    const char  *o, *site;

    site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site != NULL && strcmp(site, "same-origin") != 0
        && strcmp(site, "none") != 0)
    {
        return 0;
    }
    o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    return o == NULL || strcmp(o, "null") == 0 || strcmp(o, conf.origin) == 0;
}


static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    shop_req_t  *r = *con_cls;
    int          get, post;

    (void) cls;
    (void) version;
    (void) upload_data;

    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return MHD_NO;
        }
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        /* the form's body carries nothing we need */
        *upload_data_size = 0;
        return MHD_YES;
    }

    get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    post = strcmp(method, "POST") == 0;
    shop_log("%s %s", method, url);

    if (strcmp(url, "/buy") == 0) {
        if (!post) {
            return send_error_allow(c, 405, "Method not allowed",
                                    "Use the Buy button.", "POST");
        }
        if (!same_origin(c)) {
            shop_log("POST /buy from another site: refused");
            return send_error(c, 403, "Forbidden",
                              "This form was posted from another site.");
        }
        return buy(c);
    }
    if (!get) {
        return send_error_allow(c, 405, "Method not allowed", method,
                                "GET, HEAD");
    }
    if (strcmp(url, "/") == 0) {
        return send_page(c, 200, "Demo shop", product_html, NULL);
    }
    if (strcmp(url, "/thanks") == 0) {
        return send_page(c, 200, "Thank you", thanks_html, NULL);
    }
    if (strcmp(url, "/cart") == 0) {
        return send_page(c, 200, "Payment cancelled", cart_html, NULL);
    }
    if (strcmp(url, "/favicon.ico") == 0) {
        struct MHD_Response  *res;
        enum MHD_Result       rc;

        res = MHD_create_response_from_buffer(0, (void *) "",
                                              MHD_RESPMEM_PERSISTENT);
        if (res == NULL) {
            return MHD_NO;
        }
        rc = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, res);
        MHD_destroy_response(res);
        return rc;
    }
    return send_error(c, 404, "Not found", "There is no such page.");
}


static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) c;
    (void) toe;
    free(*con_cls);
    *con_cls = NULL;
}


static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char  line[1024];
    int   n;

    (void) cls;
    n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n > 0 && (size_t) n < sizeof(line) && line[n - 1] == '\n') {
        line[n - 1] = '\0';
    }
    shop_log("microhttpd: %s", line);
}


/* --- main ------------------------------------------------------------------ */

static int
parse_args(int argc, char **argv)
{
    static const struct option  opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "listen", required_argument, NULL, 'l' },
        { "gateway", required_argument, NULL, 'g' },
        { "gateway-ca", required_argument, NULL, 'C' },
        { "api-key", required_argument, NULL, 'a' },
        { "psp", required_argument, NULL, 's' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "origin", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int    ch, have_port = 0;
    char  *end;
    long   v;
    size_t n;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || end == optarg || v < 0 || v > 65535) {
                fprintf(stderr, "demo_shop: --port: not a port: %s\n", optarg);
                return -1;
            }
            conf.port = (unsigned) v;
            have_port = 1;
            break;
        case 'l': conf.listen = optarg; break;
        case 'g': conf.gateway = optarg; break;
        case 'C': conf.gateway_ca = optarg; break;
        case 'a': conf.api_key = optarg; break;
        case 's': conf.psp = optarg; break;
        case 'c': conf.cert_file = optarg; break;
        case 'k': conf.key_file = optarg; break;
        case 'o': conf.origin = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    if (conf.api_key == NULL) {
        conf.api_key = getenv("DEMO_SHOP_API_KEY");
    }
    if (!have_port || conf.gateway == NULL || conf.gateway_ca == NULL
        || conf.cert_file == NULL || conf.key_file == NULL
        || conf.api_key == NULL || conf.api_key[0] == '\0')
    {
        fprintf(stderr, "demo_shop: --port, --gateway, --gateway-ca, --cert, "
                "--key and an API key (--api-key or $DEMO_SHOP_API_KEY) are "
                "required\n");
        usage(stderr);
        return -1;
    }
    if (strncmp(conf.gateway, "https://", 8) != 0
        || strpbrk(conf.gateway, "\r\n \"") != NULL)
    {
        fprintf(stderr, "demo_shop: --gateway must be an https:// origin\n");
        return -1;
    }
    /* drop trailing slashes: the paths are appended */
    n = strlen(conf.gateway);
    while (n > 8 && conf.gateway[n - 1] == '/') {
        ((char *) conf.gateway)[--n] = '\0';
    }
    if (strpbrk(conf.api_key, "\r\n") != NULL || strlen(conf.api_key) > 256
        || strlen(conf.psp) > 64 || strpbrk(conf.psp, "\"\\\r\n") != NULL)
    {
        fprintf(stderr, "demo_shop: bad --api-key or --psp\n");
        return -1;
    }
    if (conf.origin != NULL && (strncmp(conf.origin, "https://", 8) != 0
                                || strlen(conf.origin) > 100))
    {
        fprintf(stderr, "demo_shop: --origin must be an https:// origin\n");
        return -1;
    }
    return 0;
}


int
main(int argc, char **argv)
{
    struct MHD_Daemon     *d;
    const union MHD_DaemonInfo  *info;
    struct sockaddr_in     sa;
    sigset_t               set;
    int                    sig;

    if (parse_args(argc, argv) != 0) {
        return 2;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(stderr, "demo_shop: this libmicrohttpd has no TLS support\n");
        return 1;
    }
    conf.cert_pem = read_file(conf.cert_file);
    conf.key_pem = read_file(conf.key_file);
    if (conf.cert_pem == NULL || conf.key_pem == NULL) {
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "demo_shop: curl_global_init failed\n");
        return 1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) conf.port);
    if (inet_pton(AF_INET, conf.listen, &sa.sin_addr) != 1) {
        fprintf(stderr, "demo_shop: --listen: not an IPv4 address: %s\n",
                conf.listen);
        return 2;
    }

    /* SIGTERM/SIGINT are taken by sigwait below, in this thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION
                         | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
                         | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, handler, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                         MHD_OPTION_HTTPS_MEM_CERT, conf.cert_pem,
                         MHD_OPTION_HTTPS_MEM_KEY, conf.key_pem,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned) 256,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 60,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "demo_shop: cannot listen on %s:%u\n", conf.listen,
                conf.port);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL && info->port != 0) {
        conf.port = info->port;
    }
    if (conf.origin == NULL) {
        snprintf(conf.origin_buf, sizeof(conf.origin_buf), "https://%s:%u",
                 conf.listen, conf.port);
        conf.origin = conf.origin_buf;
    }

    printf("demo_shop listening on https://%s:%u\n", conf.listen, conf.port);
    fflush(stdout);
    shop_log("gateway %s, psp %s, return origin %s", conf.gateway, conf.psp,
             conf.origin);

    for (;;) {
        if (sigwait(&set, &sig) == 0) {
            break;
        }
    }
    shop_log("signal %d: stopping", sig);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    free(conf.cert_pem);
    free(conf.key_pem);
    return 0;
}
