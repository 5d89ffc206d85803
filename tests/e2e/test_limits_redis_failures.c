/*
 * End to end: the card-testing guard kept in Redis (payments_limit_failures
 * ... store=redis, payments_limit_redis hash_key_file=;
 * doc/ngx_http_payments_limit_module.md).  Two gateways of the test's own
 * share one failures zone in the suite's Redis (harness_redis.c): a buyer
 * gets max failures across both, not max on each; a checkout registered on
 * one and failed by a webhook delivered to the other counts for its buyer
 * and for the address that opened its pay link; every key in Redis is an
 * HMAC under the salt derived from the shared key file (computed here as
 * the documentation says), never an e-mail, a merchant or an address.
 * Redis stopped: on_error=local checks max / gateways, on_error=deny
 * answers 503.  The same zone kind used by webhook_failures=: a sender's
 * failed signature checks count across both gateways.
 */

#include "harness.h"
#include "harness_redis.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* 32 random bytes in hex, as openssl rand -hex 32 writes them */
#define HASH_KEY  "5f1c0e9a7b3d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"

#define MAX_FAILURES  3


static char *
failures_conf(const char *key_file, const char *on_error)
{
    return str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s"
        "payments_limit_redis 127.0.0.1:%ld password_file=%s/redis.password "
        "hash_key_file=%s timeout=1s prefix=t%ld;\n"
        "payments_limit_failures cards size=64k window=10m max=%d "
        "store=redis %s;\n"
        "payments_limit failures=cards;\n",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        redis_port, redis_dir, key_file, (long) getpid(), MAX_FAILURES,
        on_error);
}


static char *
buyer_body(const char *co, const char *email)
{
    json_t  *j;

    /* two orders, 15.00 in all: the failure webhook's amount_total */
    j = checkout_new(co, 2);
    json_object_set_new(j, "buyer_info", json_pack("{s:s}", "email", email));

    return dump(j);
}


/* POST /v1/payments for a buyer: the response (201, 429 or 503) */

static resp_t *
register_for(const gateway_t *gw, const merchant_t *m, const char *co,
    const char *email)
{
    resp_t  *r;

    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"),
                     buyer_body(co, email));
    cr_assert(r->status == 201 || r->status == 429 || r->status == 503,
              "POST /v1/payments answered %ld: %s", r->status,
              r->body ? r->body : "");

    return r;
}


static long
refused_for(const gateway_t *gw, const merchant_t *m, const char *email)
{
    long     status;
    json_t  *j;
    resp_t  *r;

    r = register_for(gw, m, uid("co"), email);
    status = r->status;

    if (status == 201) {
        j = resp_json(r);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                         "FAILED", "the PSP did not refuse it");
    }

    if (status == 429) {
        expect_problem(r, 429, "rate_limited");
        cr_assert(mem_contains(r->body, r->len, "failed payments"));
    }

    if (status == 503) {
        expect_problem(r, 503, "store_unavailable");
        cr_assert_not_null(resp_header(r, "Retry-After"));
    }

    resp_free(r);

    return status;
}


/* a Stripe webhook that fails the checkout, delivered to gw */

static void
fail_on(const gateway_t *gw, const merchant_t *m, const char *co,
    resp_t *created)
{
    char        *evt, *tok;
    req_t        rq;
    json_t      *j;
    resp_t      *r;
    const char  *h[3];

    j = resp_json(created);
    tok = strdup(json_string_value(json_object_get(j, "psp_token")));

    evt = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                     "\"type\":\"checkout.session.async_payment_failed\","
                     "\"created\":%ld,\"livemode\":false,\"data\":{\"object\":"
                     "{\"id\":\"%s\",\"object\":\"checkout.session\","
                     "\"client_reference_id\":\"%s:%s\",\"amount_total\":1500,"
                     "\"currency\":\"usd\",\"payment_status\":\"unpaid\","
                     "\"status\":\"complete\"}}}",
                     uid("evt"), (long) time(NULL), tok, m->id, co);

    h[0] = "Content-Type: application/json";
    h[1] = stripe_signature(NULL, time(NULL), evt);
    h[2] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s/v1/webhooks/%s", gw->origin, env("PAY_TEST_PSP"));
    rq.headers = h;
    rq.body = evt;
    rq.len = (size_t) -1;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    resp_free(r);
}


/* HMAC-SHA-256 cut to 16 bytes */

static void
hmac16(const void *key, size_t klen, const void *data, size_t len,
    unsigned char *out)
{
    unsigned char  mac[EVP_MAX_MD_SIZE];
    unsigned int   n = 0;

    cr_assert_not_null(HMAC(EVP_sha256(), key, (int) klen, data, len, mac,
                            &n));
    memcpy(out, mac, 16);
}


/*
 * The key of a buyer's failure window in Redis, as the documentation
 * derives it: salt = HMAC(key file, "failures:" zone); the buyer =
 * HMAC(salt, merchant NUL "e:" e-mail in lower case)[16]; the key's tail
 * = HMAC(salt, "b" buyer)[16].
 */

static size_t
buyer_window_key(const char *merchant, const char *email, char *out)
{
    size_t          n, len;
    unsigned char   salt[32], buyer[17], tail[16], mac[EVP_MAX_MD_SIZE];
    unsigned int    slen = 0;
    char            buf[512], *p;

    cr_assert_not_null(HMAC(EVP_sha256(), HASH_KEY, strlen(HASH_KEY),
                            (const unsigned char *) "failures:cards", 14,
                            mac, &slen));
    memcpy(salt, mac, 32);

    len = strlen(merchant);
    memcpy(buf, merchant, len + 1);
    p = buf + len + 1;
    *p++ = 'e';
    *p++ = ':';
    for (n = 0; email[n]; n++) {
        *p++ = (char) (email[n] >= 'A' && email[n] <= 'Z'
                       ? email[n] + 32 : email[n]);
    }

    buyer[0] = 'b';
    hmac16(salt, 32, buf, (size_t) (p - buf), buyer + 1);
    hmac16(salt, 32, buyer, 17, tail);

    n = (size_t) sprintf(out, "t%ld:cards:f:", (long) getpid());
    memcpy(out + n, tail, 16);

    return n + 16;
}


/*
 * The key of a webhook sender's failure window in Redis (zone senders), as
 * the documentation derives it: the key's tail = HMAC(salt, "w" PSP NUL
 * the address's 4 bytes)[16], salt = HMAC(key file, "failures:senders").
 */

static size_t
sender_window_key(const char *psp, const char *addr, char *out)
{
    size_t          n, len;
    unsigned char   salt[32], tail[16], mac[EVP_MAX_MD_SIZE];
    unsigned int    slen = 0;
    char            buf[512];
    struct in_addr  in;

    cr_assert_not_null(HMAC(EVP_sha256(), HASH_KEY, strlen(HASH_KEY),
                            (const unsigned char *) "failures:senders", 16,
                            mac, &slen));
    memcpy(salt, mac, 32);

    cr_assert_eq(inet_pton(AF_INET, addr, &in), 1, "%s", addr);
    len = strlen(psp);
    cr_assert_lt(len, sizeof(buf) - 6);
    buf[0] = 'w';
    memcpy(buf + 1, psp, len + 1);
    memcpy(buf + 1 + len + 1, &in, 4);
    hmac16(salt, 32, buf, 1 + len + 1 + 4, tail);

    n = (size_t) sprintf(out, "t%ld:senders:f:", (long) getpid());
    memcpy(out + n, tail, 16);

    return n + 16;
}


/* The failures a window holds (the sum of its sub-windows; 0: none). */
static int64_t
window_total(redisContext *c, const char *wkey, size_t wlen)
{
    size_t        k;
    int64_t       sum;
    redisReply   *rr;

    rr = redisCommand(c, "HVALS %b", wkey, wlen);
    cr_assert(rr != NULL && rr->type == REDIS_REPLY_ARRAY, "HVALS");

    sum = 0;
    for (k = 0; k < rr->elements; k++) {
        sum += strtoll(rr->element[k]->str, NULL, 10);
    }

    freeReplyObject(rr);

    return sum;
}


/*
 * A failure is counted in Redis by a call that nothing waits for (the
 * answer to the registration or to the webhook goes first: the module's
 * documentation says so), so a request on the other gateway right after
 * can reach Redis before it: wait until the window holds n (2 s at most).
 */
static void
window_wait(redisContext *c, const char *wkey, size_t wlen, int64_t n)
{
    int  i;

    for (i = 0; i < 200 && window_total(c, wkey, wlen) != n; i++) {
        msleep(10);
    }

    cr_assert_eq(window_total(c, wkey, wlen), n, "the window holds %lld",
                 (long long) window_total(c, wkey, wlen));
}


/* window_wait for the window of webhook sender addr at the test's PSP */
static void
sender_wait(const char *addr, int64_t n)
{
    char           wkey[128];
    size_t         wlen;
    redisContext  *c;

    c = redis_client();
    wlen = sender_window_key(env("PAY_TEST_PSP"), addr, wkey);
    window_wait(c, wkey, wlen, n);
    redisFree(c);
}


/*
 * Two gateways, one failures zone in Redis (max=3): a buyer's refused
 * payments count across both, 3 in all, not 3 on each; the window is in
 * Redis under the HMAC the documentation gives, with an expiry, and no key
 * names the buyer, the merchant or the address.  A checkout registered on
 * one gateway and failed by a webhook on the other counts for its buyer
 * and for the address that opened its pay link on the other.  Redis
 * stopped: the local=... gateway checks 3 / 2 = 1 on its own; the deny one
 * answers 503.
 */
Test(limits_redis, two_gateways_share_the_card_testing_guard,
     .timeout = 90)
{
    int            i, leaked;
    char          *key_file, *co[MAX_FAILURES + 1], *pay[MAX_FAILURES + 1];
    char           wkey[128];
    size_t         wlen, k;
    int64_t        sum;
    json_t        *j;
    resp_t        *r, *created[MAX_FAILURES + 1];
    gateway_t      gc, gd;
    merchant_t     m, m2;
    redisContext  *c;
    redisReply    *rr, *v;

    secret_used(HASH_KEY);
    key_file = secret_file("hash.key", HASH_KEY);

    memset(&gc, 0, sizeof(gc));
    memset(&gd, 0, sizeof(gd));
    gateway_start(&gc, str_printf("rl-f-c-%ld", (long) getpid()), 1,
                  failures_conf(key_file, "gateways=2"));
    gateway_start(&gd, str_printf("rl-f-d-%ld", (long) getpid()), 1,
                  failures_conf(key_file, "on_error=deny"));
    gateway_wait_ready(&gc, 10);
    gateway_wait_ready(&gd, 10);

    /* refused registrations, alternating: 3 in all, then refused on
     * either gateway (alone, each would let 3 through) */
    merchant_new(&m);
    mock_fault(str_printf("{\"match\":\"%s:\",\"refuse_status\":402}", m.id));

    for (i = 0; i < MAX_FAILURES; i++) {
        cr_assert_eq(refused_for(i % 2 ? &gd : &gc, &m,
                                 "Tester@Example.com"), 201,
                     "failure %d", i);
    }

    c = redis_client();
    wlen = buyer_window_key(m.id, "tester@example.com", wkey);
    window_wait(c, wkey, wlen, MAX_FAILURES);

    cr_assert_eq(refused_for(&gd, &m, "tester@example.COM"), 429);
    cr_assert_eq(refused_for(&gc, &m, "tester@example.com"), 429);
    cr_assert_eq(refused_for(&gd, &m, "someone@example.com"), 201);

    /* the window, under the documented HMAC, still holds the 3 failures
     * (the refusals above are not failures) */
    sum = window_total(c, wkey, wlen);
    cr_assert_eq(sum, MAX_FAILURES, "the window holds %lld", (long long) sum);

    rr = redisCommand(c, "PTTL %b", wkey, wlen);
    cr_assert(rr != NULL && rr->type == REDIS_REPLY_INTEGER
              && rr->integer > 0 && rr->integer <= 600000 + 600000 / 16);
    freeReplyObject(rr);

    /* a checkout registered on C, its pay link opened on D, failed by a
     * webhook delivered to D: the buyer's and the address's failures */
    merchant_new(&m2);

    for (i = 0; i <= MAX_FAILURES; i++) {
        co[i] = uid("co");
        created[i] = register_for(&gc, &m2, co[i],
                                  i < MAX_FAILURES ? "card@example.com"
                                                   : "other@example.com");
        cr_assert_eq(created[i]->status, 201, "%s", created[i]->body);
        j = resp_json(created[i]);
        pay[i] = strdup(url_path(json_string_value(json_object_get(j,
                                                               "pay_url"))));
    }

    for (i = 0; i < MAX_FAILURES; i++) {
        r = gateway_get(&gd, pay[i]);
        cr_assert_eq(r->status, 303, "pay page %d: %ld %s", i, r->status,
                     r->body);
        resp_free(r);
        fail_on(&gd, &m2, co[i], created[i]);
    }

    /* both counted in Redis (one call per failure counts the buyer and
     * the address): the buyer on C, the address on C */
    wlen = buyer_window_key(m2.id, "card@example.com", wkey);
    window_wait(c, wkey, wlen, MAX_FAILURES);

    r = register_for(&gc, &m2, uid("co"), "Card@Example.com");
    expect_problem(r, 429, "rate_limited");
    resp_free(r);

    r = gateway_get(&gc, pay[MAX_FAILURES]);
    cr_assert_eq(r->status, 429, "%ld %s", r->status, r->body);
    cr_assert(strncmp(resp_header(r, "Content-Type"), "text/html", 9) == 0);
    resp_free(r);

    /* no key in Redis names a buyer, a merchant or an address: the
     * prefix, the zone, 'f' or 'c', and 16 bytes of HMAC */
    rr = redisCommand(c, "KEYS t%ld:cards:*", (long) getpid());
    cr_assert(rr != NULL && rr->type == REDIS_REPLY_ARRAY
              && rr->elements >= 6, "%zu keys", rr ? rr->elements : 0);
    leaked = 0;
    for (k = 0; k < rr->elements; k++) {
        v = rr->element[k];
        wlen = strlen(str_printf("t%ld:cards:f:", (long) getpid()));
        cr_assert_eq(v->len, wlen + 16, "key of %zu bytes", v->len);
        cr_assert(v->str[wlen - 2] == 'f' || v->str[wlen - 2] == 'c');
        leaked += memmem(v->str, v->len, "example", 7) != NULL
                  || memmem(v->str, v->len, m.id, strlen(m.id)) != NULL
                  || memmem(v->str, v->len, m2.id, strlen(m2.id)) != NULL
                  || memmem(v->str, v->len, "\x7f\0\0\x01", 4) != NULL;
    }
    freeReplyObject(rr);
    redisFree(c);
    cr_assert_eq(leaked, 0);

    cr_assert_eq(fallbacks(&gc, "cards"), 0);
    cr_assert_eq(fallbacks(&gd, "cards"), 0);
    cr_assert_eq(log_count(&gc, "decide without it"), 0);

    /* Redis gone: C checks its share, 3 / gateways=2 = 1; D says
     * on_error=deny: 503, never a 429 */
    redis_stop();

    cr_assert_eq(refused_for(&gc, &m, "later@example.com"), 201);
    cr_assert_eq(refused_for(&gc, &m, "later@example.com"), 429);
    cr_assert_eq(refused_for(&gd, &m, "later@example.com"), 503);

    cr_assert(fallbacks(&gc, "cards") >= 2, "%g", fallbacks(&gc, "cards"));
    cr_assert(fallbacks(&gd, "cards") >= 1);
    cr_assert_eq(log_count(&gc, "zones with store=redis decide without "
                           "it"), 1);
    cr_assert_eq(log_count(&gd, "zones with store=redis decide without "
                           "it"), 1);

    /* neither the key file's key nor Redis's password in a log line */
    cr_assert_eq(log_count(&gc, HASH_KEY), 0);
    cr_assert_eq(log_count(&gd, REDIS_PASSWORD), 0);

    gateway_stop(&gc);
    gateway_stop(&gd);
}


/* -- webhook_failures=: a sender's bad signatures, counted in Redis ------- */

static char *
senders_conf(const char *key_file, const char *on_error)
{
    return str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s"
        "payments_limit_redis 127.0.0.1:%ld password_file=%s/redis.password "
        "hash_key_file=%s timeout=1s prefix=t%ld;\n"
        "payments_limit_failures senders size=64k window=10m max=%d "
        "store=redis %s;\n"
        "payments_limit webhook_failures=senders;\n",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        redis_port, redis_dir, key_file, (long) getpid(), MAX_FAILURES,
        on_error);
}


/* a webhook to gw from the loopback address from: signed as the PSP
 * signs, or with a signature that fails; its status */

static long
webhook_from(const gateway_t *gw, const char *from, int signed_ok)
{
    long         status;
    char        *evt;
    req_t        rq;
    resp_t      *r;
    const char  *h[3];

    evt = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                     "\"type\":\"customer.created\",\"created\":%ld,"
                     "\"livemode\":false,\"data\":{\"object\":"
                     "{\"id\":\"%s\",\"object\":\"customer\"}}}",
                     uid("evt"), (long) time(NULL), uid("cus"));

    h[0] = "Content-Type: application/json";
    h[1] = signed_ok ? stripe_signature(NULL, time(NULL), evt)
                     : str_printf("Stripe-Signature: t=%ld,v1=%064d",
                                  (long) time(NULL), 0);
    h[2] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s/v1/webhooks/%s", gw->origin, env("PAY_TEST_PSP"));
    rq.headers = h;
    rq.body = evt;
    rq.len = (size_t) -1;

    r = http_from(&rq, from);
    status = r->status;

    if (status == 400) {
        expect_problem(r, 400, "bad_signature");
    } else if (status == 429) {
        expect_problem(r, 429, "rate_limited");
    } else if (status == 503) {
        expect_problem(r, 503, "store_unavailable");
    } else {
        cr_assert_eq(status, 200, "webhook from %s: %ld %s", from, status,
                     r->body ? r->body : "");
    }

    resp_free(r);

    return status;
}


/*
 * webhook_failures= on a failures zone in Redis (max=3), two gateways: a
 * sender's failed signature checks count across both, 3 in all, then the
 * sender is refused on either, its signed webhooks too; another sender is
 * not; a verified webhook never counts.  Redis stopped: the gateways=2 one
 * checks 3 / 2 = 1 on its own, the on_error=deny one answers 503.
 */
Test(limits_redis, two_gateways_share_a_senders_bad_signature_window,
     .timeout = 60)
{
    int         i;
    char       *key_file, a[32], b[32], c[32];
    gateway_t   gc, gd;

    secret_used(HASH_KEY);
    key_file = secret_file("hash.key", HASH_KEY);

    /* senders of this run's own: loopback addresses from the pid */
    snprintf(a, sizeof(a), "127.0.%d.11", (int) (getpid() % 250) + 1);
    snprintf(b, sizeof(b), "127.0.%d.12", (int) (getpid() % 250) + 1);
    snprintf(c, sizeof(c), "127.0.%d.13", (int) (getpid() % 250) + 1);

    memset(&gc, 0, sizeof(gc));
    memset(&gd, 0, sizeof(gd));
    gateway_start(&gc, str_printf("rl-w-c-%ld", (long) getpid()), 1,
                  senders_conf(key_file, "gateways=2"));
    gateway_start(&gd, str_printf("rl-w-d-%ld", (long) getpid()), 1,
                  senders_conf(key_file, "on_error=deny"));
    gateway_wait_ready(&gc, 10);
    gateway_wait_ready(&gd, 10);

    /* 3 failures in all, alternating; then refused on either gateway,
     * a signed webhook too (alone, each would let 3 through) */
    for (i = 0; i < MAX_FAILURES; i++) {
        cr_assert_eq(webhook_from(i % 2 ? &gd : &gc, a, 0), 400,
                     "failure %d", i);
    }

    /* the last failure reaches Redis after its answer (window_wait) */
    sender_wait(a, MAX_FAILURES);

    cr_assert_eq(webhook_from(&gd, a, 0), 429);
    cr_assert_eq(webhook_from(&gc, a, 0), 429);
    cr_assert_eq(webhook_from(&gc, a, 1), 429);

    /* another sender: verified webhooks between its failures never
     * count; its third failure is its last */
    cr_assert_eq(webhook_from(&gc, b, 0), 400);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(webhook_from(i % 2 ? &gd : &gc, b, 1), 200,
                     "verified webhook %d", i);
    }
    cr_assert_eq(webhook_from(&gd, b, 0), 400);
    cr_assert_eq(webhook_from(&gc, b, 0), 400);
    sender_wait(b, MAX_FAILURES);
    cr_assert_eq(webhook_from(&gd, b, 1), 429);

    cr_assert_eq(fallbacks(&gc, "senders"), 0);
    cr_assert_eq(fallbacks(&gd, "senders"), 0);

    /* Redis gone: C counts 3 / gateways=2 = 1 on its own; D denies */
    redis_stop();

    cr_assert_eq(webhook_from(&gc, c, 0), 400);
    cr_assert_eq(webhook_from(&gc, c, 0), 429);
    cr_assert_eq(webhook_from(&gd, c, 1), 503);

    cr_assert(fallbacks(&gc, "senders") >= 2, "%g",
              fallbacks(&gc, "senders"));
    cr_assert(fallbacks(&gd, "senders") >= 1);

    /* neither the key file's key nor Redis's password in a log line */
    cr_assert_eq(log_count(&gc, HASH_KEY), 0);
    cr_assert_eq(log_count(&gd, REDIS_PASSWORD), 0);

    gateway_stop(&gc);
    gateway_stop(&gd);
}
