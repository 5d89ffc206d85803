/*
 * demo_shop: a tiny merchant web shop for the browser journey test and for
 * trying the gateway by hand.  HTTPS only (libmicrohttpd with GnuTLS); the
 * server-side call to the gateway goes through libcurl and verifies the
 * gateway's certificate against --gateway-ca.
 *
 *   GET  /        a product and a "Buy" button (a form, POST /buy), and a
 *                 made-to-order product with "Buy now, ship later"
 *                 (POST /buy-later)
 *   POST /buy     POST /v1/payments with a fresh Idempotency-Key (retried
 *                 with the same key when the gateway says "try again"),
 *                 then 303 to the answer's pay_url
 *   POST /buy-later  the same with "capture": "manual": the shopper's
 *                 payment only authorizes (a hold); the shop remembers the
 *                 order (in memory) for /orders
 *   GET  /thanks  the success_url: "Thank you, payment received"
 *   GET  /held?order=CHECKOUT_ID  the manual checkout's success_url: the
 *                 order as the gateway has it (authorized: held, not charged)
 *   GET  /orders  the shop's manual-capture orders, each looked up with
 *                 GET /v1/payments/{id}: status, captured amount, and the
 *                 forms below while it is authorized
 *   POST /orders/{payment_order_id}/capture  "Ship and capture": POST
 *                 /v1/payments/{id}/capture (all of it), then 303 to /orders
 *   POST /orders/{payment_order_id}/release  "Release": POST
 *                 /v1/payments/{id}/void, then 303 to /orders
 *   GET  /cart    the cancel_url: "Payment cancelled"
 *   POST /subscribe  "Subscribe": the plan's first month, a checkout that
 *                 saves the shopper's card for off-session use
 *                 ("save_payment_method", at --subscribe-psp), then 303 to
 *                 its pay_url; the shop remembers the subscription (in
 *                 memory)
 *   GET  /subscriptions  each subscription: its first month's status and
 *                 the saved card as the gateway lists it (GET
 *                 /v1/payment_methods?customer=...: brand, last four,
 *                 active or detached), its renewals' statuses, and the
 *                 forms below while the card is active
 *   POST /subscriptions/{sub}/charge?month=K  "Charge next month" (what a
 *                 billing run does): POST /v1/payments with the saved
 *                 "payment_method" and "off_session": true, no browser at
 *                 the PSP, the Idempotency-Key the month's; 303 to
 *                 /subscriptions, where the PSP's webhook shows it SUCCESS
 *   POST /subscriptions/{sub}/cancel  "Cancel subscription": DELETE
 *                 /v1/payment_methods/{id}, then 303 to /subscriptions
 *
 * Pages are plain HTML without any script and carry a CSP (/orders
 * and /subscriptions refresh themselves with a meta refresh while a capture,
 * release or renewal waits for the PSP's webhook).  Nothing from a request or from the gateway reaches a
 * page unescaped.  The API key comes from --api-key or $DEMO_SHOP_API_KEY
 * (prefer the environment: a command line is visible to every local user),
 * is sent only to the gateway, and is never logged, nor is a pay_url (its
 * token is a bearer credential for the pay link).
 *
 * Note for real shops: /thanks here trusts the browser's arrival, which is
 * fine for a demo page; a real shop marks an order paid only after asking
 * the gateway (GET /v1/checkouts/{id}) or from its own records.  Its
 * manual-capture orders live here in memory (a restart forgets them); a
 * real shop keeps them in its database, and puts its staff's capture and
 * release behind a login.
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
#define SHOP_MAX_HELD     100    /* manual-capture orders remembered */
#define SHOP_ORDERS_SHOWN 20     /* the newest, on /orders */
#define SHOP_MAX_SUBS     50     /* subscriptions remembered */
#define SHOP_SUBS_SHOWN   10     /* the newest, on /subscriptions */
#define SHOP_MAX_MONTHS   24     /* renewals charged per subscription */
#define SHOP_PLAN_AMOUNT  "9.90"
#define SHOP_PLAN_CURRENCY "USD"
#define SHOP_CSP          "default-src 'none'; img-src 'self'; " \
                          "base-uri 'none'; frame-ancestors 'none'"


typedef struct {
    unsigned     port;
    const char  *listen;
    const char  *gateway;        /* https://host:port, no trailing slash */
    const char  *gateway_ca;
    const char  *api_key;
    const char  *psp;
    const char  *subscribe_psp;  /* where subscriptions save cards */
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


/* A manual-capture order this shop registered (its records, in memory). */
typedef struct {
    char     checkout_id[48];
    char     payment_order_id[48];
} shop_held_t;


/* A subscription (its ids are made from its letters, below). */
typedef struct {
    char      letters[25];
    unsigned  last_month;        /* the last renewal charged; 0: none */
} shop_sub_t;


static shop_conf_t  conf = {
    .listen = "127.0.0.1",
    .psp = "stripe",
};

static pthread_mutex_t  held_lock = PTHREAD_MUTEX_INITIALIZER;
static shop_held_t      held[SHOP_MAX_HELD];
static size_t           held_n;       /* entries in use */
static size_t           held_next;    /* the slot the next one takes */

static pthread_mutex_t  subs_lock = PTHREAD_MUTEX_INITIALIZER;
static shop_sub_t       subs[SHOP_MAX_SUBS];
static size_t           subs_n;
static size_t           subs_next;


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
        "                 [--subscribe-psp NAME]\n"
        "                 [--listen 127.0.0.1] [--origin https://HOST:PORT]\n"
        "  --port N          TCP port (0 picks a free one)\n"
        "  --listen ADDR     numeric IPv4 address to bind (127.0.0.1)\n"
        "  --gateway URL     the gateway's origin\n"
        "  --gateway-ca FILE PEM certificate(s) the gateway's must chain to\n"
        "  --api-key KEY     the merchant's API key (default $DEMO_SHOP_API_KEY)\n"
        "  --psp NAME        the PSP to pay with, as configured in the gateway (stripe)\n"
        "  --subscribe-psp NAME  the PSP subscriptions save the card at (--psp)\n"
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


/* refresh: seconds for a meta refresh (0: none); the CSP allows it. */
static enum MHD_Result
send_page_ex(struct MHD_Connection *c, unsigned status, const char *title,
    const char *body_html, const char *allow, unsigned refresh)
{
    struct MHD_Response  *res;
    enum MHD_Result       rc;
    char                 *page;
    size_t                cap;
    int                   n;
    char                  meta[64] = "";

    if (refresh > 0) {
        snprintf(meta, sizeof(meta),
                 "<meta http-equiv=\"refresh\" content=\"%u\">", refresh);
    }

    cap = strlen(title) + strlen(body_html) + 512;
    page = malloc(cap);
    if (page == NULL) {
        return MHD_NO;
    }
    n = snprintf(page, cap,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "%s<title>%s</title></head>\n<body>\n"
        "<header><a href=\"/\">Demo shop</a> &middot; "
        "<a href=\"/orders\">Your orders</a> &middot; "
        "<a href=\"/subscriptions\">Your subscriptions</a></header>\n"
        "<main>\n%s</main>\n</body></html>\n", meta, title, body_html);
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
send_page(struct MHD_Connection *c, unsigned status, const char *title,
    const char *body_html, const char *allow)
{
    return send_page_ex(c, status, title, body_html, allow, 0);
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


/*
 * The checkout's body: the set is two orders for two sellers, one currency;
 * the made-to-order journal (manual) one order, authorized now and
 * captured when it ships.  One order because a PSP may take one capture per
 * authorization (Stripe), releasing the rest of the checkout with it.
 */
static char *
checkout_body(const char *checkout_id, int manual)
{
    char     po1[64], po2[64], ok_url[256], cancel_url[256];
    json_t  *j;
    char    *s;

    snprintf(po1, sizeof(po1), "po_%s_1", checkout_id + 3);
    snprintf(po2, sizeof(po2), "po_%s_2", checkout_id + 3);
    snprintf(cancel_url, sizeof(cancel_url), "%s/cart", conf.origin);

    if (manual) {
        /* the gateway puts the checkout's id in place of {CHECKOUT_ID} */
        snprintf(ok_url, sizeof(ok_url), "%s/held?order={CHECKOUT_ID}",
                 conf.origin);
        j = json_pack("{s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:s}],"
                      " s:s, s:s, s:s, s:s}",
            "checkout_id", checkout_id,
            "buyer_info", "email", "ann@example.com",
            "payment_orders",
                "payment_order_id", po1, "seller_account", "seller_42",
                "amount", "12.00", "currency", "USD",
            "success_url", ok_url,
            "cancel_url", cancel_url,
            "psp", conf.psp,
            "capture", "manual");
    } else {
        snprintf(ok_url, sizeof(ok_url), "%s/thanks", conf.origin);
        j = json_pack("{s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:s}, "
                      "{s:s, s:s, s:s, s:s}], s:s, s:s, s:s}",
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
    }
    if (j == NULL) {
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}


/*
 * One call to the gateway's merchant API: a POST of body with idem_key, or a
 * GET (a DELETE when del) when body is NULL.  path is appended to the
 * gateway's origin.  Returns the HTTP status (0: no answer; errbuf says
 * why) and the body in *ans; *retry_after gets Retry-After's seconds.
 */
static long
gateway_call(const char *path, const char *body, const char *idem_key,
    int del, shop_buf_t *ans, long *retry_after, char *errbuf)
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
    snprintf(url, sizeof(url), "%s%s", conf.gateway, path);
    snprintf(line, sizeof(line), "Authorization: Bearer %s", conf.api_key);
    tmp = curl_slist_append(hdrs, line);
    if (tmp != NULL) { hdrs = tmp; }
    if (body != NULL) {
        snprintf(line, sizeof(line), "Idempotency-Key: \"%s\"", idem_key);
        tmp = curl_slist_append(hdrs, line);
        if (tmp != NULL) { hdrs = tmp; }
        tmp = curl_slist_append(hdrs, "Content-Type: application/json");
        if (tmp != NULL) { hdrs = tmp; }
    }
    tmp = curl_slist_append(hdrs, "Accept: application/json");
    if (tmp != NULL) { hdrs = tmp; }
    tmp = curl_slist_append(hdrs, "Expect:");
    if (tmp != NULL) { hdrs = tmp; }

    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    } else if (del) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
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


/*
 * POST path with body under idem_key, up to SHOP_ATTEMPTS times: the same
 * key and the same body on every attempt, so the gateway either replays
 * its stored answer or resumes the same request, and a retry can never
 * start a second payment or capture.  Retried: no answer, 429, 5xx, and a
 * 409 that says the first attempt still runs.  Returns as gateway_call;
 * the caller frees ans->data.
 */
static long
gateway_post(const char *path, const char *body, const char *idem,
    shop_buf_t *ans, char *errbuf)
{
    long      status = 0, retry_after;
    int       attempt, in_use;
    json_t   *j;
    const char *code;

    for (attempt = 1; attempt <= SHOP_ATTEMPTS; attempt++) {
        free(ans->data);
        memset(ans, 0, sizeof(*ans));
        retry_after = -1;
        status = gateway_call(path, body, idem, 0, ans, &retry_after,
                              errbuf);
        shop_log("POST %s attempt %d: %ld%s%s", path, attempt, status,
                 status == 0 ? " " : "", status == 0 ? errbuf : "");
        in_use = 0;
        if (status == 409 && ans->data != NULL) {
            j = json_loads(ans->data, 0, NULL);
            code = json_string_value(json_object_get(j, "code"));
            in_use = code != NULL
                     && strcmp(code, "idempotency_key_in_use") == 0;
            json_decref(j);
        }
        if (status != 0 && status != 429 && status < 500 && !in_use) {
            break;
        }
        if (attempt < SHOP_ATTEMPTS) {
            if (retry_after < 0 || retry_after > 2) {
                retry_after = 1;
            }
            usleep(retry_after == 0 ? 200000
                   : (useconds_t) retry_after * 1000000);
        }
    }
    return status;
}


/* A refusal's words for a page: "answered 409 code: detail". */
static void
problem_detail(char *out, size_t cap, long status, json_t *j)
{
    const char  *code, *title;

    code = j != NULL ? json_string_value(json_object_get(j, "code")) : NULL;
    title = j != NULL ? json_string_value(json_object_get(j, "detail")) : NULL;
    if (title == NULL && j != NULL) {
        title = json_string_value(json_object_get(j, "title"));
    }
    snprintf(out, cap, "The payment gateway answered %ld%s%s%s%s.",
             status, code != NULL ? " " : "", code != NULL ? code : "",
             title != NULL ? ": " : "", title != NULL ? title : "");
}


/* --- the shop's manual-capture orders ------------------------------------ */

static void
held_add(const char *checkout_id, const char *payment_order_id)
{
    shop_held_t  *h;

    pthread_mutex_lock(&held_lock);
    h = &held[held_next];
    snprintf(h->checkout_id, sizeof(h->checkout_id), "%s", checkout_id);
    snprintf(h->payment_order_id, sizeof(h->payment_order_id), "%s",
             payment_order_id);
    held_next = (held_next + 1) % SHOP_MAX_HELD;
    if (held_n < SHOP_MAX_HELD) {
        held_n++;
    }
    pthread_mutex_unlock(&held_lock);
}


/* Copies the newest (at most max) into out, newest first; returns how many. */
static size_t
held_newest(shop_held_t *out, size_t max)
{
    size_t  i, n;

    pthread_mutex_lock(&held_lock);
    n = held_n < max ? held_n : max;
    for (i = 0; i < n; i++) {
        out[i] = held[(held_next + SHOP_MAX_HELD - 1 - i) % SHOP_MAX_HELD];
    }
    pthread_mutex_unlock(&held_lock);
    return n;
}


/* Finds one of ours by its payment order's id; 0 when it is not ours. */
static int
held_find(const char *payment_order_id, shop_held_t *out)
{
    size_t  i;
    int     found = 0;

    pthread_mutex_lock(&held_lock);
    for (i = 0; i < held_n; i++) {
        if (strcmp(held[i].payment_order_id, payment_order_id) == 0) {
            *out = held[i];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&held_lock);
    return found;
}


/* Our own ids only: "co_" or "po_", letters a-p, an optional "_1". */
static int
shop_id_ok(const char *s, const char *prefix)
{
    size_t  i, n;

    if (s == NULL || strncmp(s, prefix, 3) != 0) {
        return 0;
    }
    n = strlen(s);
    if (strcmp(prefix, "po_") == 0) {
        if (n < 3 + 2 || strcmp(s + n - 2, "_1") != 0) {
            return 0;
        }
        n -= 2;
    }
    if (n != 3 + 24) {
        return 0;
    }
    for (i = 3; i < n; i++) {
        if (s[i] < 'a' || s[i] > 'p') {
            return 0;
        }
    }
    return 1;
}


/*
 * GET path from the gateway as JSON; NULL (detail says why) unless 200.
 * *status gets the gateway's status (0: no answer).
 */
static json_t *
gateway_get_json(const char *path, char *detail, size_t cap, long *status)
{
    char         errbuf[CURL_ERROR_SIZE];
    shop_buf_t   ans = { 0 };
    long         retry_after = -1;
    json_t      *j = NULL;

    *status = gateway_call(path, NULL, NULL, 0, &ans, &retry_after, errbuf);
    if (ans.data != NULL) {
        j = json_loads(ans.data, 0, NULL);
    }
    free(ans.data);
    if (*status == 200 && json_is_object(j)) {
        return j;
    }
    if (*status == 0) {
        snprintf(detail, cap, "The payment gateway could not be reached "
                 "(%s).", errbuf);
    } else {
        problem_detail(detail, cap, *status, j);
    }
    shop_log("GET %s: %ld", path, *status);
    json_decref(j);
    return NULL;
}


static enum MHD_Result
buy(struct MHD_Connection *c, int manual)
{
    char             co[48], po[48], rnd[33], idem[48];
    char             errbuf[CURL_ERROR_SIZE], detail[1024];
    char            *body;
    shop_buf_t       ans = { 0 };
    long             status;
    json_t          *j = NULL;
    json_error_t     jerr;
    const char      *st, *pay_url, *code;
    enum MHD_Result  rc;

    if (random_id(rnd, 12) != 0) {
        return send_error(c, 500, "Something went wrong", "no randomness");
    }
    snprintf(co, sizeof(co), "co_%s", rnd);
    snprintf(po, sizeof(po), "po_%s_1", rnd);
    if (random_id(rnd, 16) != 0) {
        return send_error(c, 500, "Something went wrong", "no randomness");
    }
    snprintf(idem, sizeof(idem), "buy-%s", rnd);

    body = checkout_body(co, manual);
    if (body == NULL) {
        return send_error(c, 500, "Something went wrong", "cannot build the checkout");
    }
    status = gateway_post("/v1/payments", body, idem, &ans, errbuf);
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
            if (manual) {
                held_add(co, po);
            }
            shop_log("checkout %s%s registered: 303 to the gateway's pay link",
                     co, manual ? " (manual capture)" : "");
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

    problem_detail(detail, sizeof(detail), status, j);
    shop_log("checkout %s refused: %s", co, detail);
    json_decref(j);
    return send_error(c, 502, "Payment could not be started", detail);
}


/*
 * The manual checkout's success_url.  The query is only a hint of which
 * order: what the page says comes from the gateway.
 */
static enum MHD_Result
held_page(struct MHD_Connection *c)
{
    const char  *co, *st, *amount, *currency;
    char         path[128], detail[1024], body[4096];
    long         status;
    json_t      *j, *o;

    /* escaped values get the body less 512 bytes: the fixed text after */

    co = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order");
    if (!shop_id_ok(co, "co_")) {
        return send_error(c, 404, "Not found", "There is no such order.");
    }
    snprintf(path, sizeof(path), "/v1/checkouts/%s", co);
    j = gateway_get_json(path, detail, sizeof(detail), &status);
    if (j == NULL && status == 404) {
        return send_error(c, 404, "Not found", "There is no such order.");
    }
    if (j == NULL) {
        return send_error(c, 502, "Order status unavailable", detail);
    }
    st = json_string_value(json_object_get(j, "status"));
    o = json_array_get(json_object_get(j, "payment_orders"), 0);
    amount = json_string_value(json_object_get(o, "amount"));
    currency = json_string_value(json_object_get(o, "currency"));
    if (st == NULL || amount == NULL || currency == NULL) {
        json_decref(j);
        return send_error(c, 502, "Order status unavailable",
                          "The gateway's answer is not a checkout.");
    }

    body[0] = '\0';
    if (strcmp(st, "AUTHORIZED") == 0) {
        strcat(body, "<h1>Order authorized: held, not charged</h1>\n<p>");
        html_escape(body, sizeof(body) - 512, amount);
        strcat(body, " ");
        html_escape(body, sizeof(body) - 512, currency);
        strcat(body, " is held on your card for order ");
        html_escape(body, sizeof(body) - 512, co);
        strcat(body, ". Nothing is charged until the order ships.</p>\n");
    } else if (strcmp(st, "SUCCESS") == 0) {
        strcat(body, "<h1>Order shipped and charged</h1>\n<p>Order ");
        html_escape(body, sizeof(body) - 512, co);
        strcat(body, " is captured.</p>\n");
    } else if (strcmp(st, "FAILED") == 0) {
        strcat(body, "<h1>Order not paid</h1>\n<p>Nothing is held or "
               "charged for order ");
        html_escape(body, sizeof(body) - 512, co);
        strcat(body, ".</p>\n");
    } else {
        strcat(body, "<h1>Order awaiting payment</h1>\n<p>Order ");
        html_escape(body, sizeof(body) - 512, co);
        strcat(body, " is ");
        html_escape(body, sizeof(body) - 512, st);
        strcat(body, ".</p>\n");
    }
    json_decref(j);
    strcat(body, "<p>The shop's orders page lists it.</p>\n");
    return send_page(c, 200, "Your order", body, NULL);
}


/* Appends s to a growing buffer; returns -1 when out of memory. */
static int
out_add(shop_buf_t *b, const char *s, int escape)
{
    char    *p, tmp[2048];
    size_t   n;

    if (escape) {
        tmp[0] = '\0';
        html_escape(tmp, sizeof(tmp), s);
        s = tmp;
    }
    n = strlen(s);
    p = realloc(b->data, b->len + n + 1);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
    return 0;
}


/* One row of /orders; *pending is set while a capture or void waits. */
static void
orders_row(shop_buf_t *b, const shop_held_t *h, int *pending)
{
    char         path[128], detail[1024];
    const char  *st, *amount, *currency, *captured, *kind, *cst;
    const char  *what = NULL;
    json_t      *j, *x;
    long         status;
    size_t       i;
    int          voided = 0;

    snprintf(path, sizeof(path), "/v1/payments/%s", h->payment_order_id);
    j = gateway_get_json(path, detail, sizeof(detail), &status);

    out_add(b, "<tr data-order=\"", 0);
    out_add(b, h->payment_order_id, 1);
    out_add(b, "\"><td>", 0);
    out_add(b, h->checkout_id, 1);
    out_add(b, "</td><td>", 0);
    out_add(b, h->payment_order_id, 1);
    out_add(b, "</td>", 0);

    st = json_string_value(json_object_get(j, "status"));
    amount = json_string_value(json_object_get(j, "amount"));
    currency = json_string_value(json_object_get(j, "currency"));
    if (st == NULL || amount == NULL || currency == NULL) {
        out_add(b, "<td></td><td class=\"status\">unknown</td><td "
                "class=\"captured\"></td><td>", 0);
        out_add(b, j == NULL ? detail : "not an order", 1);
        out_add(b, "</td></tr>\n", 0);
        json_decref(j);
        return;
    }
    captured = json_string_value(json_object_get(j, "captured"));
    json_array_foreach(json_object_get(j, "captures"), i, x) {
        kind = json_string_value(json_object_get(x, "kind"));
        cst = json_string_value(json_object_get(x, "status"));
        if (kind == NULL || cst == NULL) {
            continue;
        }
        if (strcmp(cst, "PENDING") == 0) {
            *pending = 1;
            what = strcmp(kind, "void") == 0
                   ? "release asked: waiting for the PSP"
                   : "capture asked: waiting for the PSP";
        } else if (strcmp(kind, "void") == 0 && strcmp(cst, "SUCCEEDED") == 0) {
            voided = 1;
        }
    }
    if (what == NULL) {
        what = strcmp(st, "AUTHORIZED") == 0 ? "held, not charged"
             : strcmp(st, "SUCCESS") == 0 ? "shipped and charged"
             : strcmp(st, "FAILED") == 0 ? (voided ? "released" : "not paid")
             : "awaiting payment";
    }

    out_add(b, "<td>", 0);
    out_add(b, amount, 1);
    out_add(b, " ", 0);
    out_add(b, currency, 1);
    out_add(b, "</td><td class=\"status\">", 0);
    out_add(b, st, 1);
    out_add(b, "</td><td class=\"captured\">", 0);
    out_add(b, captured != NULL ? captured : "0.00", 1);
    out_add(b, " ", 0);
    out_add(b, currency, 1);
    out_add(b, "</td><td>", 0);
    out_add(b, what, 1);
    if (strcmp(st, "AUTHORIZED") == 0 && !*pending) {
        out_add(b, "<form method=\"post\" action=\"/orders/", 0);
        out_add(b, h->payment_order_id, 1);
        out_add(b, "/capture\"><button type=\"submit\">Ship and capture"
                "</button></form><form method=\"post\" action=\"/orders/", 0);
        out_add(b, h->payment_order_id, 1);
        out_add(b, "/release\"><button type=\"submit\">Release</button>"
                "</form>", 0);
    }
    out_add(b, "</td></tr>\n", 0);
    json_decref(j);
}


static enum MHD_Result
orders_page(struct MHD_Connection *c)
{
    shop_held_t      list[SHOP_ORDERS_SHOWN];
    shop_buf_t       b = { 0 };
    size_t           n, i;
    int              pending = 0;
    enum MHD_Result  rc;

    n = held_newest(list, SHOP_ORDERS_SHOWN);
    out_add(&b, "<h1>Your orders</h1>\n<p>Orders bought now and shipped "
            "later: the card is authorized when you pay, and charged when "
            "the order ships (Ship and capture), or the hold is released "
            "(Release).</p>\n", 0);
    if (n == 0) {
        out_add(&b, "<p>No such orders yet.</p>\n", 0);
    } else {
        out_add(&b, "<table>\n<tr><th>order</th><th>payment</th><th>amount"
                "</th><th>status</th><th>captured</th><th></th></tr>\n", 0);
        for (i = 0; i < n; i++) {
            orders_row(&b, &list[i], &pending);
        }
        out_add(&b, "</table>\n", 0);
    }
    if (b.data == NULL) {
        return MHD_NO;
    }
    rc = send_page_ex(c, 200, "Your orders", b.data, NULL, pending ? 1 : 0);
    free(b.data);
    return rc;
}


/*
 * "Ship and capture" (all that is authorized) or "Release" (a void) of one
 * of our orders, then back to /orders, where the PSP's webhook shows.  The
 * Idempotency-Key is the order's and the action's: a second click, or a
 * resend of the form, replays the first answer and moves nothing twice.
 */
static enum MHD_Result
order_action(struct MHD_Connection *c, const char *po, const char *action)
{
    char             path[128], idem[64], errbuf[CURL_ERROR_SIZE];
    char             detail[1024];
    const char      *st, *msg, *heading;
    shop_buf_t       ans = { 0 };
    shop_held_t      h;
    long             status;
    json_t          *j = NULL;
    int              capture = strcmp(action, "capture") == 0;

    heading = capture ? "The order could not be captured"
                      : "The hold could not be released";
    if (!shop_id_ok(po, "po_") || !held_find(po, &h)) {
        return send_error(c, 404, "Not found", "There is no such order.");
    }
    snprintf(path, sizeof(path), "/v1/payments/%s/%s", po,
             capture ? "capture" : "void");
    snprintf(idem, sizeof(idem), "%s-%s", capture ? "ship" : "release", po);

    status = gateway_post(path, "{}", idem, &ans, errbuf);
    if (status == 0) {
        free(ans.data);
        snprintf(detail, sizeof(detail), "The payment gateway could not be "
                 "reached (%s). Please try again.", errbuf);
        return send_error(c, 502, heading, detail);
    }
    if (ans.data != NULL) {
        j = json_loads(ans.data, 0, NULL);
    }
    free(ans.data);

    st = json_string_value(json_object_get(j, "status"));
    if (status == 201 && st != NULL && strcmp(st, "FAILED") != 0) {
        shop_log("%s of %s asked: %s", action, po, st);
        json_decref(j);
        return send_redirect(c, "/orders");
    }
    if (status == 201) {
        msg = json_string_value(json_object_get(
                  json_object_get(j, "failure"), "message"));
        snprintf(detail, sizeof(detail), "The payment provider refused it%s%s",
                 msg != NULL ? ": " : ".", msg != NULL ? msg : "");
    } else {
        problem_detail(detail, sizeof(detail), status, j);
    }
    shop_log("%s of %s refused: %s", action, po, detail);
    json_decref(j);
    return send_error(c, 502, heading, detail);
}


/* --- the shop's subscriptions ------------------------------------------- */

/*
 * A subscription is "sub_" and 24 letters L: the shop's customer for it is
 * "cust_L", its first month (paid on the PSP's page, saving the card) the
 * checkout "co_L", its renewals "co_L_mK" for month K, each charged
 * off-session under the Idempotency-Key "renew-L-K": a second click, a
 * resent form or a retry of month K replays month K's answer and never
 * charges it twice.  The saved method is never kept here: each page asks
 * the gateway for the customer's methods.
 */

static void
sub_add(const char *letters)
{
    shop_sub_t  *s;

    pthread_mutex_lock(&subs_lock);
    s = &subs[subs_next];
    memset(s, 0, sizeof(*s));
    snprintf(s->letters, sizeof(s->letters), "%s", letters);
    subs_next = (subs_next + 1) % SHOP_MAX_SUBS;
    if (subs_n < SHOP_MAX_SUBS) {
        subs_n++;
    }
    pthread_mutex_unlock(&subs_lock);
}


/* Copies the newest (at most max) into out, newest first; returns how many. */
static size_t
subs_newest(shop_sub_t *out, size_t max)
{
    size_t  i, n;

    pthread_mutex_lock(&subs_lock);
    n = subs_n < max ? subs_n : max;
    for (i = 0; i < n; i++) {
        out[i] = subs[(subs_next + SHOP_MAX_SUBS - 1 - i) % SHOP_MAX_SUBS];
    }
    pthread_mutex_unlock(&subs_lock);
    return n;
}


/* One of ours by its letters (a copy); 0 when it is not ours. */
static int
sub_find(const char *letters, shop_sub_t *out)
{
    size_t  i;
    int     found = 0;

    pthread_mutex_lock(&subs_lock);
    for (i = 0; i < subs_n; i++) {
        if (strcmp(subs[i].letters, letters) == 0) {
            *out = subs[i];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&subs_lock);
    return found;
}


/* Records that month was charged (asked); once, whatever the clicks. */
static void
sub_charged(const char *letters, unsigned month)
{
    size_t  i;

    pthread_mutex_lock(&subs_lock);
    for (i = 0; i < subs_n; i++) {
        if (strcmp(subs[i].letters, letters) == 0) {
            if (month > subs[i].last_month) {
                subs[i].last_month = month;
            }
            break;
        }
    }
    pthread_mutex_unlock(&subs_lock);
}


/* 24 letters a-p: a subscription's */
static int
letters_ok(const char *s)
{
    size_t  i;

    for (i = 0; i < 24; i++) {
        if (s[i] < 'a' || s[i] > 'p') {
            return 0;
        }
    }
    return s[24] == '\0';
}


/* The first month's checkout: the plan's order, saving the card. */
static char *
subscribe_body(const char *letters)
{
    char     co[48], po[48], customer[48], ok_url[256], cancel_url[256];
    json_t  *j;
    char    *s;

    snprintf(co, sizeof(co), "co_%.24s", letters);
    snprintf(po, sizeof(po), "po_%.24s_1", letters);
    snprintf(customer, sizeof(customer), "cust_%.24s", letters);
    snprintf(ok_url, sizeof(ok_url), "%s/subscriptions", conf.origin);
    snprintf(cancel_url, sizeof(cancel_url), "%s/cart", conf.origin);

    /* shopper_agreed: the Subscribe form says what the shopper agrees to */
    j = json_pack("{s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:s}], s:s, s:s, s:s,"
                  " s:{s:s, s:s, s:s, s:b}}",
        "checkout_id", co,
        "buyer_info", "email", "ann@example.com",
        "payment_orders",
            "payment_order_id", po, "seller_account", "seller_42",
            "amount", SHOP_PLAN_AMOUNT, "currency", SHOP_PLAN_CURRENCY,
        "success_url", ok_url,
        "cancel_url", cancel_url,
        "psp", conf.subscribe_psp,
        "save_payment_method",
            "customer", customer, "usage", "off_session",
            "schedule", "subscription", "shopper_agreed", 1);
    if (j == NULL) {
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}


/* POST /subscribe: the first month on the PSP's hosted page */
static enum MHD_Result
subscribe(struct MHD_Connection *c)
{
    char             letters[25], idem[64], errbuf[CURL_ERROR_SIZE];
    char             detail[1024];
    char            *body;
    const char      *st, *pay_url;
    shop_buf_t       ans = { 0 };
    long             status;
    json_t          *j = NULL;
    enum MHD_Result  rc;

    if (random_id(letters, 12) != 0) {
        return send_error(c, 500, "Something went wrong", "no randomness");
    }
    snprintf(idem, sizeof(idem), "subscribe-%.24s", letters);

    body = subscribe_body(letters);
    if (body == NULL) {
        return send_error(c, 500, "Something went wrong",
                          "cannot build the checkout");
    }
    status = gateway_post("/v1/payments", body, idem, &ans, errbuf);
    free(body);

    if (status == 0) {
        free(ans.data);
        snprintf(detail, sizeof(detail), "The payment gateway could not be "
                 "reached (%s). Please try again.", errbuf);
        return send_error(c, 502, "Subscription could not be started",
                          detail);
    }
    if (ans.data != NULL) {
        j = json_loads(ans.data, 0, NULL);
    }
    free(ans.data);

    st = json_string_value(json_object_get(j, "status"));
    pay_url = json_string_value(json_object_get(j, "pay_url"));
    if (status == 201 && st != NULL && strcmp(st, "EXECUTING") == 0
        && pay_url_ok(pay_url))
    {
        sub_add(letters);
        shop_log("subscription sub_%s: checkout co_%s registered: 303 to "
                 "the gateway's pay link", letters, letters);
        rc = send_redirect(c, pay_url);
        json_decref(j);
        return rc;
    }
    if (status == 201) {
        snprintf(detail, sizeof(detail), "The checkout is %s, without a "
                 "usable pay link.", st != NULL ? st : "in no known state");
    } else {
        problem_detail(detail, sizeof(detail), status, j);
    }
    shop_log("subscription sub_%s refused: %s", letters, detail);
    json_decref(j);
    return send_error(c, 502, "Subscription could not be started", detail);
}


/* The customer's methods (the gateway's list, newest first), or NULL. */
static json_t *
sub_methods(const char *letters, char *detail, size_t cap)
{
    char     path[128];
    long     status;
    json_t  *j, *data;

    snprintf(path, sizeof(path), "/v1/payment_methods?customer=cust_%.24s",
             letters);
    j = gateway_get_json(path, detail, cap, &status);
    data = json_incref(json_object_get(j, "data"));
    json_decref(j);
    if (j != NULL && !json_is_array(data)) {
        snprintf(detail, cap, "The gateway's answer is not a list.");
        json_decref(data);
        return NULL;
    }
    return data;
}


/* The newest active method of the list (borrowed), or NULL. */
static json_t *
sub_active(json_t *methods)
{
    size_t   i;
    json_t  *m;

    json_array_foreach(methods, i, m) {
        if (json_is_string(json_object_get(m, "status"))
            && strcmp(json_string_value(json_object_get(m, "status")),
                      "active") == 0)
        {
            return m;
        }
    }
    return NULL;
}


/* A checkout's status from the gateway, into st (cap bytes); *failure
 * gets its failure's message when it has one (owned by the caller). */
static void
sub_checkout(const char *co, char *st, size_t cap, char **failure)
{
    char         path[128], detail[1024];
    long         status;
    json_t      *j;
    const char  *s, *msg;

    *failure = NULL;
    snprintf(path, sizeof(path), "/v1/checkouts/%s", co);
    j = gateway_get_json(path, detail, sizeof(detail), &status);
    s = json_string_value(json_object_get(j, "status"));
    snprintf(st, cap, "%s", s != NULL ? s : "unknown");
    msg = json_string_value(json_object_get(json_object_get(j, "failure"),
                                            "message"));
    if (msg != NULL) {
        *failure = strdup(msg);
    }
    json_decref(j);
}


/* One subscription's rows: the plan and its card, then each month. */
static void
subs_rows(shop_buf_t *b, shop_buf_t *months, const shop_sub_t *s,
    int *pending)
{
    char         co[64], st[32], detail[1024], line[128];
    char        *failure;
    const char  *brand, *last4, *mst;
    json_t      *methods, *m, *card;
    unsigned     k;

    snprintf(co, sizeof(co), "co_%.24s", s->letters);
    sub_checkout(co, st, sizeof(st), &failure);
    free(failure);
    methods = sub_methods(s->letters, detail, sizeof(detail));
    m = sub_active(methods);
    if (m == NULL) {
        m = json_array_get(methods, 0);
    }

    out_add(b, "<tr data-subscription=\"sub_", 0);
    out_add(b, s->letters, 1);
    out_add(b, "\"><td>sub_", 0);
    out_add(b, s->letters, 1);
    out_add(b, "</td><td class=\"first\">", 0);
    out_add(b, st, 1);
    out_add(b, "</td><td class=\"card\">", 0);

    card = json_object_get(m, "card");
    brand = json_string_value(json_object_get(card, "brand"));
    last4 = json_string_value(json_object_get(card, "last4"));
    mst = json_string_value(json_object_get(m, "status"));
    if (methods == NULL) {
        out_add(b, detail, 1);
    } else if (m == NULL) {
        /* paid: the PSP's event that the card is saved follows */
        if (strcmp(st, "SUCCESS") == 0) {
            out_add(b, "saving your card: waiting for the PSP", 0);
            *pending = 1;
        } else {
            out_add(b, strcmp(st, "FAILED") == 0 ? "no card saved"
                       : "awaiting the first payment", 0);
        }
    } else if (brand != NULL && last4 != NULL) {
        out_add(b, brand, 1);
        out_add(b, " \u2022\u2022\u2022\u2022 ", 0);
        out_add(b, last4, 1);
        if (json_is_integer(json_object_get(card, "exp_month"))
            && json_is_integer(json_object_get(card, "exp_year")))
        {
            snprintf(line, sizeof(line), ", expires %02d/%d",
                (int) json_integer_value(json_object_get(card, "exp_month")),
                (int) json_integer_value(json_object_get(card, "exp_year")));
            out_add(b, line, 1);
        }
    } else {
        /* Stripe's and Adyen's events name the method, not its card */
        out_add(b, "a card saved at ", 0);
        out_add(b, json_string_value(json_object_get(m, "psp")), 1);
    }
    out_add(b, "</td><td class=\"method\">", 0);
    out_add(b, mst != NULL ? mst : "", 1);
    out_add(b, "</td><td>", 0);

    if (mst != NULL && strcmp(mst, "active") == 0) {
        snprintf(line, sizeof(line), "/charge?month=%u",
                 s->last_month < 2 ? 2 : s->last_month + 1);
        out_add(b, "<form method=\"post\" action=\"/subscriptions/sub_", 0);
        out_add(b, s->letters, 1);
        out_add(b, line, 1);
        out_add(b, "\"><button type=\"submit\">Charge next month</button>"
                "</form><form method=\"post\" action=\"/subscriptions/sub_",
                0);
        out_add(b, s->letters, 1);
        out_add(b, "/cancel\"><button type=\"submit\">Cancel subscription"
                "</button></form>", 0);
    } else if (mst != NULL) {
        out_add(b, "cancelled: the card is detached", 0);
    }
    out_add(b, "</td></tr>\n", 0);
    json_decref(methods);

    for (k = 2; k <= s->last_month; k++) {
        snprintf(co, sizeof(co), "co_%.24s_m%u", s->letters, k);
        sub_checkout(co, st, sizeof(st), &failure);
        if (strcmp(st, "EXECUTING") == 0) {
            *pending = 1;
        }
        out_add(months, "<tr data-renewal=\"", 0);
        out_add(months, co, 1);
        out_add(months, "\"><td>sub_", 0);
        out_add(months, s->letters, 1);
        snprintf(line, sizeof(line), "</td><td>month %u</td><td>", k);
        out_add(months, line, 0);
        out_add(months, co, 1);
        out_add(months, "</td><td>" SHOP_PLAN_AMOUNT " " SHOP_PLAN_CURRENCY
                "</td><td class=\"status\">", 0);
        out_add(months, st, 1);
        out_add(months, "</td><td>", 0);
        out_add(months, strcmp(st, "SUCCESS") == 0
                ? "charged without you (off-session)"
                : strcmp(st, "EXECUTING") == 0
                ? "asked: waiting for the PSP"
                : failure != NULL ? failure : "not charged", 1);
        out_add(months, "</td></tr>\n", 0);
        free(failure);
    }
}


/* GET /subscriptions: the shop's subscriptions, each from the gateway */
static enum MHD_Result
subscriptions_page(struct MHD_Connection *c)
{
    shop_sub_t       list[SHOP_SUBS_SHOWN];
    shop_buf_t       b = { 0 }, months = { 0 };
    size_t           n, i;
    int              pending = 0;
    enum MHD_Result  rc;

    n = subs_newest(list, SHOP_SUBS_SHOWN);
    out_add(&b, "<h1>Your subscriptions</h1>\n<p>Field notes monthly: "
            SHOP_PLAN_AMOUNT " " SHOP_PLAN_CURRENCY " a month, charged to "
            "the card you saved on the payment page, without you (Charge "
            "next month does what the shop's billing run would), until you "
            "cancel.</p>\n", 0);
    if (n == 0) {
        out_add(&b, "<p>No subscriptions yet.</p>\n", 0);
    } else {
        out_add(&b, "<table>\n<tr><th>subscription</th><th>first month</th>"
                "<th>card</th><th>status</th><th></th></tr>\n", 0);
        out_add(&months, "", 0);
        for (i = 0; i < n; i++) {
            subs_rows(&b, &months, &list[i], &pending);
        }
        out_add(&b, "</table>\n<h2>Renewals</h2>\n", 0);
        if (months.data != NULL && months.len > 0) {
            out_add(&b, "<table>\n<tr><th>subscription</th><th>month</th>"
                    "<th>checkout</th><th>amount</th><th>status</th><th>"
                    "</th></tr>\n", 0);
            out_add(&b, months.data, 0);
            out_add(&b, "</table>\n", 0);
        } else {
            out_add(&b, "<p>None charged yet.</p>\n", 0);
        }
    }
    free(months.data);
    if (b.data == NULL) {
        return MHD_NO;
    }
    rc = send_page_ex(c, 200, "Your subscriptions", b.data, NULL,
                      pending ? 1 : 0);
    free(b.data);
    return rc;
}


/* The renewal's body: month's order, charged to pm off-session. */
static char *
renewal_body(const char *letters, unsigned month, const char *pm)
{
    char     co[64], po[64], url[256];
    json_t  *j;
    char    *s;

    snprintf(co, sizeof(co), "co_%.24s_m%u", letters, month);
    snprintf(po, sizeof(po), "po_%.24s_m%u", letters, month);
    snprintf(url, sizeof(url), "%s/subscriptions", conf.origin);

    j = json_pack("{s:s, s:s, s:b, s:[{s:s, s:s, s:s, s:s}], s:s, s:s}",
        "checkout_id", co,
        "payment_method", pm,
        "off_session", 1,
        "payment_orders",
            "payment_order_id", po, "seller_account", "seller_42",
            "amount", SHOP_PLAN_AMOUNT, "currency", SHOP_PLAN_CURRENCY,
        "success_url", url,
        "cancel_url", url);
    if (j == NULL) {
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}


/*
 * "Charge next month" (what a billing run does, without the shopper): the
 * customer's active method charged off-session for month, then back to
 * /subscriptions, where the PSP's webhook shows.  The issuer wanting the
 * shopper (202) sends this browser to the PSP's page for it.
 */
static enum MHD_Result
sub_charge(struct MHD_Connection *c, const shop_sub_t *s)
{
    char             idem[64], path[] = "/v1/payments";
    char             errbuf[CURL_ERROR_SIZE], detail[1024];
    char            *body, *pm;
    const char      *q, *code, *pay_url;
    char            *end;
    unsigned long    month;
    shop_buf_t       ans = { 0 };
    long             status;
    json_t          *methods, *m, *j = NULL;
    enum MHD_Result  rc;

    q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "month");
    errno = 0;
    month = q != NULL ? strtoul(q, &end, 10) : 0;
    if (q == NULL || errno != 0 || *end != '\0' || month < 2
        || month > SHOP_MAX_MONTHS || month > (unsigned long) s->last_month
                                             + (s->last_month < 2 ? 2 : 1))
    {
        return send_error(c, 400, "No such month",
                          "Use the subscriptions page's button.");
    }

    methods = sub_methods(s->letters, detail, sizeof(detail));
    if (methods == NULL) {
        return send_error(c, 502, "The renewal could not be charged",
                          detail);
    }
    m = sub_active(methods);
    if (m == NULL) {
        json_decref(methods);
        return send_error(c, 409, "The renewal could not be charged",
                          "No active card is saved for this subscription.");
    }
    pm = strdup(json_string_value(json_object_get(m, "id")));
    json_decref(methods);
    if (pm == NULL) {
        return send_error(c, 500, "Something went wrong", "no memory");
    }

    snprintf(idem, sizeof(idem), "renew-%.24s-%lu", s->letters, month);
    body = renewal_body(s->letters, (unsigned) month, pm);
    free(pm);
    if (body == NULL) {
        return send_error(c, 500, "Something went wrong",
                          "cannot build the renewal");
    }
    status = gateway_post(path, body, idem, &ans, errbuf);
    free(body);
    if (status == 0) {
        free(ans.data);
        snprintf(detail, sizeof(detail), "The payment gateway could not be "
                 "reached (%s). Please try again.", errbuf);
        return send_error(c, 502, "The renewal could not be charged",
                          detail);
    }
    if (ans.data != NULL) {
        j = json_loads(ans.data, 0, NULL);
    }
    free(ans.data);

    /* taken (201), declined (402: the month's row says why) or waiting
     * for the shopper (202): the month exists at the gateway now */
    if (status == 201 || status == 402 || status == 202) {
        sub_charged(s->letters, (unsigned) month);
    }
    code = json_string_value(json_object_get(j, "code"));
    pay_url = json_string_value(json_object_get(j, "pay_url"));
    shop_log("renewal %lu of sub_%s: %ld%s%s", month, s->letters, status,
             code != NULL ? " " : "", code != NULL ? code : "");

    if (status == 202 && pay_url_ok(pay_url)) {
        rc = send_redirect(c, pay_url);
    } else if (status == 201 || status == 402) {
        rc = send_redirect(c, "/subscriptions");
    } else {
        problem_detail(detail, sizeof(detail), status, j);
        rc = send_error(c, 502, "The renewal could not be charged", detail);
    }
    json_decref(j);
    return rc;
}


/* "Cancel subscription": the customer's active methods detached
 * (DELETE /v1/payment_methods/{id}), then back to /subscriptions. */
static enum MHD_Result
sub_cancel(struct MHD_Connection *c, const shop_sub_t *s)
{
    char         path[128], errbuf[CURL_ERROR_SIZE], detail[1024];
    const char  *id;
    shop_buf_t   ans = { 0 };
    long         status, retry_after = -1;
    size_t       i;
    json_t      *methods, *m, *j;

    methods = sub_methods(s->letters, detail, sizeof(detail));
    if (methods == NULL) {
        return send_error(c, 502, "The subscription could not be cancelled",
                          detail);
    }
    json_array_foreach(methods, i, m) {
        id = json_string_value(json_object_get(m, "id"));
        if (id == NULL || strncmp(id, "pm_", 3) != 0 || strlen(id) > 64
            || json_object_get(m, "status") == NULL
            || strcmp(json_string_value(json_object_get(m, "status")),
                      "active") != 0)
        {
            continue;
        }
        snprintf(path, sizeof(path), "/v1/payment_methods/%s", id);
        status = gateway_call(path, NULL, NULL, 1, &ans, &retry_after,
                              errbuf);
        j = ans.data != NULL ? json_loads(ans.data, 0, NULL) : NULL;
        free(ans.data);
        memset(&ans, 0, sizeof(ans));
        shop_log("DELETE %s: %ld", path, status);
        if (status != 200) {
            /* 502-504: detached here all the same, the PSP not yet sure */
            if (status == 0) {
                snprintf(detail, sizeof(detail), "The payment gateway could "
                         "not be reached (%s). Please try again.", errbuf);
            } else {
                problem_detail(detail, sizeof(detail), status, j);
            }
            json_decref(j);
            json_decref(methods);
            return send_error(c, 502, "The subscription could not be "
                              "cancelled", detail);
        }
        json_decref(j);
    }
    json_decref(methods);
    return send_redirect(c, "/subscriptions");
}


/* --- routing ------------------------------------------------------------ */

static const char  product_html[] =
    "<h1>Field notebook set</h1>\n"
    "<p>A pocket notebook (10.00 USD, sold by seller_42) and a pencil "
    "(5.00 USD, sold by seller_77): 15.00 USD in one payment.</p>\n"
    "<form method=\"post\" action=\"/buy\">\n"
    "<button type=\"submit\" id=\"buy\">Buy</button>\n"
    "</form>\n"
    "<h2>Travel journal, made to order</h2>\n"
    "<p>A hand-bound journal (12.00 USD, sold by seller_42), made when you "
    "order it. Buy now, ship later: paying authorizes your card (a hold); "
    "it is charged only when the journal ships.</p>\n"
    "<form method=\"post\" action=\"/buy-later\">\n"
    "<button type=\"submit\" id=\"buy-later\">Buy now, ship later</button>\n"
    "</form>\n"
    "<h2>Field notes monthly</h2>\n"
    "<p>A new notebook every month: " SHOP_PLAN_AMOUNT " " SHOP_PLAN_CURRENCY
    " a month (sold by seller_42). You pay the first month on the payment "
    "page, which saves your card there; by subscribing you agree that the "
    "shop charges " SHOP_PLAN_AMOUNT " " SHOP_PLAN_CURRENCY " to that card "
    "each month without asking you again, until you cancel on your "
    "subscriptions page.</p>\n"
    "<form method=\"post\" action=\"/subscribe\">\n"
    "<button type=\"submit\" id=\"subscribe\">Subscribe</button>\n"
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

    if (strcmp(url, "/buy") == 0 || strcmp(url, "/buy-later") == 0) {
        if (!post) {
            return send_error_allow(c, 405, "Method not allowed",
                                    "Use the Buy button.", "POST");
        }
        if (!same_origin(c)) {
            shop_log("POST %s from another site: refused", url);
            return send_error(c, 403, "Forbidden",
                              "This form was posted from another site.");
        }
        return buy(c, strcmp(url, "/buy-later") == 0);
    }
    if (strcmp(url, "/subscribe") == 0) {
        if (!post) {
            return send_error_allow(c, 405, "Method not allowed",
                                    "Use the Subscribe button.", "POST");
        }
        if (!same_origin(c)) {
            shop_log("POST %s from another site: refused", url);
            return send_error(c, 403, "Forbidden",
                              "This form was posted from another site.");
        }
        return subscribe(c);
    }
    if (strncmp(url, "/subscriptions/sub_", 19) == 0) {
        char         letters[25];
        shop_sub_t   sub;
        const char  *slash = strchr(url + 19, '/');

        if (slash == NULL || slash - (url + 19) != 24
            || (strcmp(slash, "/charge") != 0
                && strcmp(slash, "/cancel") != 0))
        {
            return send_error(c, 404, "Not found", "There is no such page.");
        }
        memcpy(letters, url + 19, 24);
        letters[24] = '\0';
        if (!letters_ok(letters) || !sub_find(letters, &sub)) {
            return send_error(c, 404, "Not found",
                              "There is no such subscription.");
        }
        if (!post) {
            return send_error_allow(c, 405, "Method not allowed",
                                    "Use the subscriptions page's buttons.",
                                    "POST");
        }
        if (!same_origin(c)) {
            shop_log("POST %s from another site: refused", url);
            return send_error(c, 403, "Forbidden",
                              "This form was posted from another site.");
        }
        return strcmp(slash, "/charge") == 0 ? sub_charge(c, &sub)
                                             : sub_cancel(c, &sub);
    }
    if (strncmp(url, "/orders/", 8) == 0) {
        char         po[48];
        const char  *slash = strchr(url + 8, '/');
        size_t       n = slash != NULL ? (size_t) (slash - (url + 8)) : 0;

        if (slash == NULL || n == 0 || n >= sizeof(po)
            || (strcmp(slash, "/capture") != 0
                && strcmp(slash, "/release") != 0))
        {
            return send_error(c, 404, "Not found", "There is no such page.");
        }
        if (!post) {
            return send_error_allow(c, 405, "Method not allowed",
                                    "Use the orders page's buttons.", "POST");
        }
        if (!same_origin(c)) {
            shop_log("POST %s from another site: refused", url);
            return send_error(c, 403, "Forbidden",
                              "This form was posted from another site.");
        }
        memcpy(po, url + 8, n);
        po[n] = '\0';
        return order_action(c, po, slash + 1);
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
    if (strcmp(url, "/held") == 0) {
        return held_page(c);
    }
    if (strcmp(url, "/orders") == 0) {
        return orders_page(c);
    }
    if (strcmp(url, "/subscriptions") == 0) {
        return subscriptions_page(c);
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
        { "subscribe-psp", required_argument, NULL, 'S' },
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
        case 'S': conf.subscribe_psp = optarg; break;
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
    if (conf.subscribe_psp == NULL) {
        conf.subscribe_psp = conf.psp;
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
        || strlen(conf.psp) > 64 || strpbrk(conf.psp, "\"\\\r\n") != NULL
        || strlen(conf.subscribe_psp) > 64
        || strpbrk(conf.subscribe_psp, "\"\\\r\n") != NULL)
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
    shop_log("gateway %s, psp %s, subscriptions at %s, return origin %s",
             conf.gateway, conf.psp, conf.subscribe_psp, conf.origin);

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
