/*
 * ngx_payments core: merchant notifications (doc/NOTIFICATIONS.md).
 *
 * Signing follows the Standard Webhooks specification: an endpoint's secret
 * is "whsec_" base64(24 to 64 random bytes); a delivery carries
 *     webhook-id         the notification's id (msg_...), the same on retries
 *     webhook-timestamp  seconds since the epoch, of this attempt
 *     webhook-signature  "v1," base64(HMAC-SHA256(key, id "." ts "." body)),
 *                        space-separated when two secrets are valid (a
 *                        rotation's grace period)
 *
 * The retry schedule and the address rules live here too, so they are unit
 * tested away from nginx.
 */
#ifndef PAYMENTS_NOTIFY_H
#define PAYMENTS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define PAY_WHSEC_KEY_MIN   24
#define PAY_WHSEC_KEY_MAX   64
#define PAY_WHSEC_NEW       32              /* bytes of a new secret */
#define PAY_WHSEC_TEXT_MAX  (6 + 88 + 1)    /* "whsec_" base64(64) NUL */
#define PAY_NOTIFY_SIG_MAX  (3 + 44 + 1)    /* "v1," base64(32) NUL */

/* A new secret: "whsec_" base64(PAY_WHSEC_NEW random bytes), NUL-terminated
 * in out (cap >= PAY_WHSEC_TEXT_MAX).  Returns 0 or -1 (no randomness). */
int pay_whsec_new(char *out, size_t cap);

/* The key bytes of a "whsec_..." secret (the prefix is required, standard
 * base64 with padding).  key holds PAY_WHSEC_KEY_MAX bytes.  Returns 0, or
 * -1 (malformed, too short, too long). */
int pay_whsec_decode(const char *whsec, size_t len, unsigned char *key,
    size_t *klen);

/* "v1,<base64 signature>" of one delivery, NUL-terminated in out (cap >=
 * PAY_NOTIFY_SIG_MAX).  msg_id is [A-Za-z0-9_-]+.  Returns 0 or -1. */
int pay_notify_sign(const unsigned char *key, size_t klen,
    const char *msg_id, int64_t ts, const char *body, size_t len,
    char *out, size_t cap);

/* The retry schedule (about three days): the delay in milliseconds before
 * attempt (attempts + 1), given that attempts have been made and the last
 * failed; -1 when attempts is the last one (the row becomes FAILED, the
 * dead-letter list).  The base delays are Standard Webhooks' 5 s, 5 min,
 * 30 min, 2 h, 5 h, 10 h, 10 h, then 20 h and 24 h: ten attempts, 71.6 h;
 * each is divided by scale (>= 1; tests compress the schedule) and jittered
 * by up to +-10% with jitter in [0, 1). */
#define PAY_NOTIFY_ATTEMPTS  10
int64_t pay_notify_backoff_ms(unsigned attempts, unsigned scale,
    double jitter);

/* Where a notification may never connect (checked for every address a
 * host resolves to, at registration and again at connect time):
 * unspecified, loopback, RFC 1918 and other private ranges, shared
 * (100.64/10), link-local (169.254/16, fe80::/10) and so the cloud metadata
 * addresses, multicast, broadcast, reserved (240/4), benchmarking, ULA
 * (fc00::/7), documentation, and any of those inside IPv4-mapped,
 * IPv4-compatible, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) IPv6.
 * allow_loopback lets 127/8 and ::1 through (test rigs only).  Returns 1
 * when forbidden, 0 when it may be reached. */
int pay_addr_forbidden(const struct sockaddr *sa, int allow_loopback);

/* The same for an address written as text (libcurl's CURLINFO_PRIMARY_IP:
 * "203.0.113.7", "2001:db8::1"); text that is not an IPv4 or IPv6 address
 * is forbidden. */
int pay_addr_text_forbidden(const char *ip, int allow_loopback);

/* An endpoint URL a merchant may register: "https://" host [":" port] path,
 * at most 2048 bytes, no user info, no fragment, no whitespace or control
 * characters; host a DNS name or an IP literal (an IP literal is checked
 * with pay_addr_forbidden).  The host, lower-cased and without brackets,
 * NUL-terminated, goes to host (hcap >= 256).  Returns 0 or -1 with *why (a
 * constant string naming the rule). */
int pay_endpoint_url_check(const char *url, size_t len, int allow_loopback,
    char *host, size_t hcap, const char **why);

/* The event types a notification may have; *what in a subscription. */
extern const char *const pay_notify_event_types[];
/* 1 when type is one of them (or "*"), else 0. */
int pay_notify_event_type_valid(const char *type, size_t len);

#endif
