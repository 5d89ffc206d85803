/*
 * ngx_payments core: merchant notifications (notify.h): Standard Webhooks
 * secrets and signatures, the retry schedule, where a delivery may connect.
 * No I/O, no logs.
 */
#include <payments/notify.h>

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define WHSEC_PREFIX  "whsec_"


const char *const  pay_notify_event_types[] = {
    "checkout.succeeded",
    "checkout.failed",
    "checkout.paid_after_failure",
    "checkout.canceled",
    "checkout.approved",
    "checkout.authorized",
    "checkout.risk_flagged",
    "refund.succeeded",
    "refund.failed",
    "dispute.opened",
    "dispute.won",
    "dispute.lost",
    "payout.paid",
    "payout.failed",
    "payout.reversed",
    "capture.succeeded",
    "capture.failed",
    "payment_method.saved",
    "payment_method.detached",
    NULL
};


int
pay_whsec_new(char *out, size_t cap)
{
    unsigned char  key[PAY_WHSEC_NEW];

    if (cap < PAY_WHSEC_TEXT_MAX || RAND_bytes(key, sizeof(key)) != 1) {
        return -1;
    }

    memcpy(out, WHSEC_PREFIX, sizeof(WHSEC_PREFIX) - 1);
    EVP_EncodeBlock((unsigned char *) out + sizeof(WHSEC_PREFIX) - 1, key,
                    sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));

    return 0;
}


static int
b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '+' || c == '/';
}


int
pay_whsec_decode(const char *whsec, size_t len, unsigned char *key,
    size_t *klen)
{
    int            n;
    size_t         i, b, pad;
    unsigned char  buf[PAY_WHSEC_KEY_MAX + 3];

    if (len < sizeof(WHSEC_PREFIX) - 1
        || memcmp(whsec, WHSEC_PREFIX, sizeof(WHSEC_PREFIX) - 1) != 0)
    {
        return -1;
    }

    whsec += sizeof(WHSEC_PREFIX) - 1;
    b = len - (sizeof(WHSEC_PREFIX) - 1);

    /* standard base64 with its padding: a multiple of 4, '=' only last */
    if (b == 0 || b % 4 || b > (PAY_WHSEC_KEY_MAX + 2) / 3 * 4) {
        return -1;
    }

    pad = 0;

    for (i = 0; i < b; i++) {
        if (whsec[i] == '=') {
            if (i < b - 2) {
                return -1;
            }

            pad++;

        } else if (pad || !b64_char((unsigned char) whsec[i])) {
            return -1;
        }
    }

    n = EVP_DecodeBlock(buf, (const unsigned char *) whsec, (int) b);
    if (n < 0 || (size_t) n < pad) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return -1;
    }

    n -= (int) pad;     /* EVP_DecodeBlock counts the padding as zeros */

    if (n < PAY_WHSEC_KEY_MIN || n > PAY_WHSEC_KEY_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return -1;
    }

    memcpy(key, buf, (size_t) n);
    *klen = (size_t) n;
    OPENSSL_cleanse(buf, sizeof(buf));

    return 0;
}


int
pay_notify_sign(const unsigned char *key, size_t klen, const char *msg_id,
    int64_t ts, const char *body, size_t len, char *out, size_t cap)
{
    int             n, ok;
    size_t          i, idlen;
    unsigned int    mlen;
    char            head[128];
    unsigned char  *msg, mac[EVP_MAX_MD_SIZE];

    idlen = strlen(msg_id);

    if (cap < PAY_NOTIFY_SIG_MAX || idlen == 0 || idlen > 64 || ts < 0) {
        return -1;
    }

    /* the id goes into a header: its characters are checked here */
    for (i = 0; i < idlen; i++) {
        unsigned char c = (unsigned char) msg_id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return -1;
        }
    }

    n = snprintf(head, sizeof(head), "%s.%lld.", msg_id, (long long) ts);
    if (n < 0 || (size_t) n >= sizeof(head)) {
        return -1;
    }

    msg = OPENSSL_malloc((size_t) n + len + 1);
    if (msg == NULL) {
        return -1;
    }

    memcpy(msg, head, (size_t) n);
    memcpy(msg + n, body, len);

    ok = HMAC(EVP_sha256(), key, (int) klen, msg, (size_t) n + len, mac,
              &mlen) != NULL && mlen == 32;

    OPENSSL_free(msg);

    if (!ok) {
        return -1;
    }

    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *) out + 3, mac, 32);   /* 44 + NUL */
    OPENSSL_cleanse(mac, sizeof(mac));

    return 0;
}


/* Standard Webhooks' 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then 20 h
 * and 24 h, so the whole schedule is about three days */
static const int64_t  pay_notify_schedule_s[PAY_NOTIFY_ATTEMPTS - 1] = {
    5, 300, 1800, 7200, 18000, 36000, 36000, 72000, 86400
};


int64_t
pay_notify_backoff_ms(unsigned attempts, unsigned scale, double jitter)
{
    int64_t  base, spread, d;

    if (attempts == 0) {
        return 0;       /* never tried: now */
    }

    if (attempts >= PAY_NOTIFY_ATTEMPTS) {
        return -1;
    }

    if (scale == 0) {
        scale = 1;
    }

    if (!(jitter >= 0.0 && jitter < 1.0)) {
        jitter = 0.5;   /* NaN or out of range: no jitter */
    }

    base = pay_notify_schedule_s[attempts - 1] * 1000 / scale;

    /* +-10%: base * 0.9 + base * 0.2 * jitter */
    spread = base / 5;
    d = base - base / 10 + (int64_t) ((double) spread * jitter);

    return d < 1 ? 1 : d;
}


/* a in net/bits, both in host order */
static int
v4_in(uint32_t a, uint32_t net, unsigned bits)
{
    uint32_t  mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);

    return (a & mask) == (net & mask);
}


static int
v4_forbidden(uint32_t a, int allow_loopback)
{
    if (v4_in(a, 0x7f000000, 8)) {                      /* 127/8 */
        return !allow_loopback;
    }

    return v4_in(a, 0x00000000, 8)                      /* "this" net */
           || v4_in(a, 0x0a000000, 8)                   /* 10/8 */
           || v4_in(a, 0x64400000, 10)                  /* 100.64/10 */
           || v4_in(a, 0xa9fe0000, 16)                  /* 169.254/16 */
           || v4_in(a, 0xac100000, 12)                  /* 172.16/12 */
           || v4_in(a, 0xc0000000, 24)                  /* 192.0.0/24 */
           || v4_in(a, 0xc0000200, 24)                  /* 192.0.2/24 */
           || v4_in(a, 0xc0586300, 24)                  /* 192.88.99/24 */
           || v4_in(a, 0xc0a80000, 16)                  /* 192.168/16 */
           || v4_in(a, 0xc6120000, 15)                  /* 198.18/15 */
           || v4_in(a, 0xc6336400, 24)                  /* 198.51.100/24 */
           || v4_in(a, 0xcb007100, 24)                  /* 203.0.113/24 */
           || v4_in(a, 0xe0000000, 4)                   /* multicast */
           || v4_in(a, 0xf0000000, 4);                  /* 240/4, and
                                                           broadcast */
}


static uint32_t
v4_at(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


/* the first bits of a 16-byte address equal prefix's */
static int
v6_in(const unsigned char *a, const unsigned char *prefix, unsigned bits)
{
    unsigned  full = bits / 8, rest = bits % 8;

    if (memcmp(a, prefix, full) != 0) {
        return 0;
    }

    return rest == 0
           || ((a[full] ^ prefix[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}


static int
v6_forbidden(const unsigned char *a, int allow_loopback)
{
    static const unsigned char  zero[16];
    static const unsigned char  mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
                                               0, 0, 0xff, 0xff };
    static const unsigned char  nat64[12] = { 0, 0x64, 0xff, 0x9b };
    static const unsigned char  nat64_local[6] = { 0, 0x64, 0xff, 0x9b,
                                                   0, 0x01 };
    static const unsigned char  sixto4[2] = { 0x20, 0x02 };
    static const unsigned char  teredo[4] = { 0x20, 0x01, 0, 0 };
    static const unsigned char  doc[4] = { 0x20, 0x01, 0x0d, 0xb8 };
    static const unsigned char  discard[8] = { 0x01, 0 };
    static const unsigned char  ula[1] = { 0xfc };
    static const unsigned char  linklocal[2] = { 0xfe, 0x80 };
    static const unsigned char  sitelocal[2] = { 0xfe, 0xc0 };
    static const unsigned char  multicast[1] = { 0xff };

    if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1)) {
        /* :: is never reachable; ::1 is the loopback */
        return a[15] == 0 || !allow_loopback;
    }

    /* IPv4 inside IPv6: the embedded address decides */
    if (memcmp(a, mapped, 12) == 0 || v6_in(a, nat64, 96)) {
        return v4_forbidden(v4_at(a + 12), allow_loopback);
    }

    if (memcmp(a, zero, 12) == 0) {         /* IPv4-compatible (::/96) */
        return v4_forbidden(v4_at(a + 12), allow_loopback);
    }

    if (v6_in(a, sixto4, 16)) {
        return v4_forbidden(v4_at(a + 2), allow_loopback);
    }

    return v6_in(a, nat64_local, 48)
           || v6_in(a, teredo, 32)
           || v6_in(a, doc, 32)
           || v6_in(a, discard, 64)
           || v6_in(a, ula, 7)
           || v6_in(a, linklocal, 10)
           || v6_in(a, sitelocal, 10)
           || v6_in(a, multicast, 8);
}


int
pay_addr_forbidden(const struct sockaddr *sa, int allow_loopback)
{
    const struct sockaddr_in   *in4;
    const struct sockaddr_in6  *in6;

    if (sa == NULL) {
        return 1;
    }

    switch (sa->sa_family) {

    case AF_INET:
        in4 = (const struct sockaddr_in *) sa;
        return v4_forbidden(ntohl(in4->sin_addr.s_addr), allow_loopback);

    case AF_INET6:
        in6 = (const struct sockaddr_in6 *) sa;
        return v6_forbidden(in6->sin6_addr.s6_addr, allow_loopback);

    default:
        return 1;
    }
}


int
pay_addr_text_forbidden(const char *ip, int allow_loopback)
{
    struct sockaddr_in   in4;
    struct sockaddr_in6  in6;

    if (ip == NULL) {
        return 1;
    }

    memset(&in4, 0, sizeof(in4));
    memset(&in6, 0, sizeof(in6));

    if (inet_pton(AF_INET, ip, &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        return pay_addr_forbidden((struct sockaddr *) &in4, allow_loopback);
    }

    if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        return pay_addr_forbidden((struct sockaddr *) &in6, allow_loopback);
    }

    return 1;
}


static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}


static int
ends_with(const char *s, size_t n, const char *suffix)
{
    size_t  k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}


int
pay_endpoint_url_check(const char *url, size_t len, int allow_loopback,
    char *host, size_t hcap, const char **why)
{
    size_t               i, h, hs, he, label;
    long                 port;
    const char          *p, *end;
    struct sockaddr_in   in4;
    struct sockaddr_in6  in6;

    *why = "not an https URL";

    if (hcap < 256 || len > 2048 || len < sizeof("https://x") - 1) {
        *why = len > 2048 ? "longer than 2048 bytes" : *why;
        return -1;
    }

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) url[i];

        if (c <= 0x20 || c >= 0x7f) {
            *why = "a space, control or non-ASCII character";
            return -1;
        }

        if (c == '#') {
            *why = "a fragment";
            return -1;
        }
    }

    for (i = 0; i < 8; i++) {
        if (lower((unsigned char) url[i]) != "https://"[i]) {
            return -1;
        }
    }

    p = url + 8;
    end = url + len;

    /* the authority: up to the path or the query */
    for (i = 0; p + i < end && p[i] != '/' && p[i] != '?'; i++) {
        if (p[i] == '@') {
            *why = "user information";
            return -1;
        }

        if (p[i] == '\\') {
            *why = "a backslash";
            return -1;
        }
    }

    end = p + i;

    if (p == end) {
        *why = "no host";
        return -1;
    }

    h = 0;

    if (*p == '[') {
        /* an IPv6 literal */
        for (i = 1; p + i < end && p[i] != ']'; i++) {
            if (h + 1 >= 64) {
                *why = "an invalid IPv6 literal";
                return -1;
            }

            host[h++] = (char) lower((unsigned char) p[i]);
        }

        host[h] = '\0';

        memset(&in6, 0, sizeof(in6));
        in6.sin6_family = AF_INET6;

        if (p + i == end || h == 0
            || inet_pton(AF_INET6, host, &in6.sin6_addr) != 1)
        {
            *why = "an invalid IPv6 literal";
            return -1;
        }

        if (pay_addr_forbidden((struct sockaddr *) &in6, allow_loopback)) {
            *why = "a loopback, private, link-local or reserved address";
            return -1;
        }

        p += i + 1;

    } else {
        hs = 0;

        for (i = 0; p + i < end && p[i] != ':'; i++) {
            unsigned char c = (unsigned char) lower((unsigned char) p[i]);

            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '-'))
            {
                *why = "a host name with characters outside [a-z0-9.-]";
                return -1;
            }

            if (h + 1 >= 254) {
                *why = "a host name longer than 253 characters";
                return -1;
            }

            host[h++] = (char) c;
        }

        host[h] = '\0';
        p += i;     /* the port, if any, is next */

        /* labels of 1 to 63 characters; one trailing dot is dropped */
        if (h && host[h - 1] == '.') {
            host[--h] = '\0';
        }

        if (h == 0) {
            *why = "no host";
            return -1;
        }

        label = 0;

        for (he = 0; he <= h; he++) {
            if (he == h || host[he] == '.') {
                if (label == 0 || label > 63
                    || host[hs] == '-' || host[he - 1] == '-')
                {
                    *why = "a host name label that is empty, longer than 63 "
                           "characters or starts or ends with '-'";
                    return -1;
                }

                label = 0;
                hs = he + 1;

            } else {
                label++;
            }
        }

        memset(&in4, 0, sizeof(in4));
        in4.sin_family = AF_INET;

        if (inet_pton(AF_INET, host, &in4.sin_addr) == 1) {
            if (pay_addr_forbidden((struct sockaddr *) &in4,
                                   allow_loopback))
            {
                *why = "a loopback, private, link-local or reserved address";
                return -1;
            }

        } else {
            /* a name that is all digits and dots but not an address
             * (010.1, 1.2.3) is read differently by different resolvers */
            for (i = 0; i < h && ((host[i] >= '0' && host[i] <= '9')
                                  || host[i] == '.'); i++) { /* */ }

            if (i == h) {
                *why = "a numeric host that is not a dotted-quad address";
                return -1;
            }

            if (strcmp(host, "localhost") == 0
                || ends_with(host, h, ".localhost"))
            {
                if (!allow_loopback) {
                    *why = "localhost";
                    return -1;
                }

            } else if (ends_with(host, h, ".local")
                       || ends_with(host, h, ".internal")
                       || ends_with(host, h, ".localdomain")
                       || ends_with(host, h, ".home.arpa")
                       || strchr(host, '.') == NULL)
            {
                *why = "a host name that is not public (single label, "
                       ".local, .internal, .localdomain, .home.arpa)";
                return -1;
            }
        }
    }

    if (p < end) {
        if (*p != ':' || p + 1 == end || end - p > 6) {
            *why = "an invalid port";
            return -1;
        }

        port = 0;

        for (p++; p < end; p++) {
            if (*p < '0' || *p > '9') {
                *why = "an invalid port";
                return -1;
            }

            port = port * 10 + (*p - '0');
        }

        if (port < 1 || port > 65535) {
            *why = "an invalid port";
            return -1;
        }
    }

    *why = NULL;

    return 0;
}


int
pay_notify_event_type_valid(const char *type, size_t len)
{
    size_t  i;

    if (len == 1 && type[0] == '*') {
        return 1;
    }

    for (i = 0; pay_notify_event_types[i]; i++) {
        if (strlen(pay_notify_event_types[i]) == len
            && memcmp(pay_notify_event_types[i], type, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
