/*
 * ngx_payments core: origins (scheme, host, port) parsed with libcurl's URL
 * API and compared by component, never by prefix.
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

#endif
