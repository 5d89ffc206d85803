/*
 * ngx_payments core: the one place URLs and URIs are parsed.  Absolute URLs
 * (return URLs, a PSP's hosted pages, the configured bases) by their origin
 * (scheme, host, port), parsed with libcurl's URL API and compared by
 * component, never by prefix; the gateway's own request paths by the route
 * table (which route, which PSP, which id).
 */
#ifndef PAYMENTS_URL_H
#define PAYMENTS_URL_H

#include <stddef.h>

typedef struct {
    char      scheme[8];        /* "https" (or "http" when allowed) */
    char      host[256];        /* lower-cased, no trailing dot */
    unsigned  port;             /* explicit or the scheme's default */
} pay_origin_t;

/*
 * Parses an absolute URL (NUL-terminated) and extracts its origin.  Refuses:
 * any scheme but https (http too only if allow_http), userinfo, an empty
 * host, a trailing dot, control characters, spaces and backslashes anywhere,
 * a URL longer than 2048 bytes, non-ASCII hosts.  Returns 0 or -1.
 */
int pay_origin_parse(const char *url, pay_origin_t *o, int allow_http);

/* 1 if scheme, host (case-insensitively) and port are equal. */
int pay_origin_equal(const pay_origin_t *a, const pay_origin_t *b);

/* "https://host:port" with the port always written.  Returns the length or
 * -1 if buf is too small. */
int pay_origin_format(const pay_origin_t *o, char *buf, size_t size);

/* 1 if the host is this machine: localhost, 127.0.0.0/8 written as four
 * decimal numbers, or [::1]. */
int pay_origin_is_loopback(const pay_origin_t *o);

/* 1 if url parses (as above) and its origin equals one of the n origins. */
int pay_origin_allowed(const char *url, const pay_origin_t *allowed,
    size_t n, int allow_http);

/*
 * A base URL from the configuration (payments_public_origin, a PSP's url=
 * and hosted=): pay_origin_parse()'s rules, and plain http only if
 * allow_http, and then only for a loopback host (tests, a local mock).
 * *base_len (if not NULL) is the URL's length without its trailing slashes:
 * what paths are appended to.  Returns 0 or -1.
 */
int pay_url_base(const char *url, pay_origin_t *o, int allow_http,
    size_t *base_len);

/*
 * A shop's return URL with every "{CHECKOUT_ID}" (or its percent-encoded
 * form "%7BCHECKOUT_ID%7D", either case of the hex digits) replaced by id;
 * everything else, the query string included, is kept byte for byte.  id
 * is an [A-Za-z0-9_-] checkout id, which needs no escaping anywhere in a
 * URL.  Writes a NUL-terminated URL to buf; returns its length, or -1 when
 * it does not fit in size bytes.
 */
int pay_url_checkout_id(const char *url, const char *id, char *buf,
    size_t size);

/*
 * libpq's host= and hostaddr= values (comma-separated lists, one entry per
 * server to try; either may be NULL): the first entry libpq would resolve
 * by name, counted from 1, or 0 when none would be.  An entry needs no
 * look-up when its hostaddr is given (numeric), or its host is empty (the
 * default socket directory) or a unix-socket directory ("/dir", "@name").
 * libpq resolves names with getaddrinfo() on the caller's thread: in an
 * nginx worker, a blocking call.
 */
int pay_conninfo_lookup_entry(const char *host, const char *hostaddr);

/*
 * The servers libpq tries for those host= and hostaddr= values: the
 * entries of the longer list (libpq refuses two lists of different
 * lengths), 1 when neither is given (its default server).
 */
int pay_conninfo_servers(const char *host, const char *hostaddr);


/* The gateway's routes: one number each, for the router and /metrics. */
typedef enum {
    PAY_ROUTE_NONE = 0,             /* no route has this path */
    PAY_ROUTE_HEALTHZ,              /* GET /healthz */
    PAY_ROUTE_READYZ,               /* GET /readyz */
    PAY_ROUTE_PAYMENTS,             /* POST /v1/payments */
    PAY_ROUTE_PAYMENT,              /* GET /v1/payments/{id} */
    PAY_ROUTE_CHECKOUT,             /* GET /v1/checkouts/{id} */
    PAY_ROUTE_PAY,                  /* GET /v1/checkouts/{id}/pay */
    PAY_ROUTE_WEBHOOK,              /* POST /v1/webhooks/{psp} */
    PAY_ROUTE_RETURN,               /* GET /v1/return/{psp}/{id} */
    PAY_ROUTE_STATUS,               /* GET /v1/checkouts/{id}/status */
    PAY_ROUTE_STATIC,               /* GET /v1/static/{file} */
    PAY_ROUTE_METRICS,              /* GET /metrics */
    PAY_ROUTE_REFUNDS,              /* POST /v1/payments/{id}/refunds */
    PAY_ROUTE_PAYOUTS,              /* POST /v1/payouts */
    PAY_ROUTE_PAYOUT,               /* GET /v1/payouts/{id} */
    PAY_ROUTE_BALANCE,              /* GET /v1/sellers/{id}/balance */
    PAY_ROUTE_NOTIFICATIONS,        /* GET /v1/notifications */
    PAY_ROUTE_NOTIFICATION_REPLAY,  /* POST /v1/notifications/{id}/replay */
    PAY_ROUTE_ENDPOINTS,            /* GET /v1/webhook_endpoints */
    PAY_ROUTE_ENDPOINT_ENABLE,      /* POST /v1/webhook_endpoints/{id}/enable */
    PAY_ROUTE_ENDPOINT_DISABLE,     /* POST /v1/webhook_endpoints/{id}/disable */
    PAY_ROUTE_ENDPOINT_CREATE,      /* POST /v1/webhook_endpoints */
    PAY_ROUTE_ENDPOINT_ROTATE,      /* POST /v1/webhook_endpoints/{id}/
                                       rotate_secret */
    PAY_ROUTE_LIST_CHECKOUTS,       /* GET /v1/checkouts */
    PAY_ROUTE_LIST_PAYMENTS,        /* GET /v1/payments */
    PAY_ROUTE_LIST_REFUNDS,         /* GET /v1/refunds */
    PAY_ROUTE_LIST_PAYOUTS,         /* GET /v1/payouts */
    PAY_ROUTE_EVENTS,               /* GET /v1/events */
    PAY_ROUTE_CANCEL,               /* POST /v1/checkouts/{id}/cancel */
    PAY_ROUTE_REVIEWS,              /* GET /v1/reviews */
    PAY_ROUTE_REVIEW_APPROVE,       /* POST /v1/reviews/{nonce}/approve */
    PAY_ROUTE_REVIEW_REJECT,        /* POST /v1/reviews/{nonce}/reject */
    PAY_ROUTE_CAPTURE,              /* POST /v1/payments/{id}/capture */
    PAY_ROUTE_VOID,                 /* POST /v1/payments/{id}/void */
    PAY_ROUTE_METHODS,              /* GET /v1/payment_methods */
    PAY_ROUTE_METHOD,               /* GET /v1/payment_methods/{id} */
    PAY_ROUTE_METHOD_DETACH,        /* POST /v1/payment_methods/{id}/
                                       detach, DELETE /v1/payment_methods/
                                       {id} */
    PAY_ROUTE__MAX
} pay_route_e;

typedef struct {
    pay_route_e   route;
    const char   *name;             /* in /metrics */
    unsigned      post:1;           /* POST; otherwise GET (and HEAD) */
    unsigned      plain:1;          /* may be served over plain HTTP */
    unsigned      page:1;           /* a browser page: over plain HTTP it
                                       is redirected, not refused */
    unsigned      del:1;            /* DELETE (post is 0) */
} pay_route_t;

typedef struct {
    const pay_route_t  *route;      /* NULL: no route has this path */
    const char         *psp;        /* /v1/webhooks/{psp},
                                       /v1/return/{psp}/{id}; else NULL */
    size_t              psp_len;
    const char         *id;         /* the {id} (a webhook's is its PSP, a
                                       static file's its name); else NULL */
    size_t              id_len;
} pay_path_t;

/*
 * A request path (as nginx decoded it, without the query) against the route
 * table.  Every segment it returns is non-empty and holds no '/'; it points
 * into path.  Returns 0 with p->route set, or -1 (p->route NULL, no
 * segments) when no route has this path.
 */
int pay_path_parse(const char *path, size_t len, pay_path_t *p);

/*
 * As pay_path_parse(), for a request of that method: a path with a route
 * of each method (POST /v1/payments creates, GET /v1/payments lists) is
 * the route of the request's method (post: PAY_PATH_POST, PAY_PATH_GET
 * for GET and HEAD, PAY_PATH_DELETE); a path with routes of other methods
 * only is the first of them (the caller answers 405).
 */
#define PAY_PATH_GET     0
#define PAY_PATH_POST    1
#define PAY_PATH_DELETE  2

/* a route's method, as pay_path_parse_method takes it */
#define pay_route_method(rt)  ((rt)->del ? PAY_PATH_DELETE                   \
                               : (rt)->post ? PAY_PATH_POST : PAY_PATH_GET)

int pay_path_parse_method(const char *path, size_t len, int post,
    pay_path_t *p);

/* The route's name in /metrics; "other" for PAY_ROUTE_NONE or any unknown
 * number. */
const char *pay_route_name(unsigned route);

/*
 * The bearer values a request line may carry, cut out before it reaches a
 * log: in the query (after the first '?', up to the last ' ' when that
 * comes after it, else to the end), the value of every parameter named t
 * or T (a pay, return or status token), sessionId (Adyen's session, which
 * is the PSP's token) or sessionResult becomes "redacted", each name read
 * percent-decoded ("%74" is "t") as a server on the way may read it.  The
 * line is read as it is, whatever the protocol (HTTP/2's request line is
 * built by nginx from :method and :path).  out holds PAY_REDACT_SIZE(len)
 * bytes.
 * Returns the new length, or 0 when there was nothing to cut (a value
 * already "redacted" counts as nothing).
 */
#define PAY_REDACT_SIZE(len)  ((len) + 9 * ((len) / 2 + 1))

size_t pay_redact_request_line(const char *line, size_t len, char *out);

#endif
