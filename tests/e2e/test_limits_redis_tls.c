/*
 * End to end: the limits' Redis over TLS (payments_limit_redis ... tls
 * tls_ca_file= ...; doc/ngx_http_payments_limit_module.md).  The suite's
 * redis-server (harness_redis.c) is started again with a TLS port too,
 * its certificate (for 127.0.0.1 and localhost) and the gateways' client
 * certificates signed by a CA that openssl makes here, and it asks every
 * TLS client for its certificate.  A gateway that trusts that CA counts a
 * merchant's limit in Redis through the TLS port; one that trusts another
 * CA, or expects another name, never talks to Redis: its zones decide
 * without it as their on_error= says (a share, a 503), with one warn line
 * naming why, and no secret in its log.
 */

#include "harness.h"
#include "harness_redis.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static long  tls_port;


/* the test's CA, Redis's certificate, a client's, and another CA */

static void
make_certificates(void)
{
    int    rc;
    char  *cmd;

    cmd = str_printf(
        "set -e; cd %s; exec >openssl.log 2>&1; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -days 2 -subj /CN=limits-test-ca -keyout ca.key -out ca.pem; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -days 2 -subj /CN=another-ca -keyout other.key "
        "-out other.pem; "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; "
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -subj /CN=redis -keyout redis.key -out redis.csr; "
        "openssl x509 -req -in redis.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile san.ext -out redis.pem; "
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -subj /CN=gateway -keyout client.key -out client.csr; "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -out client.pem; "
        "chmod 600 client.key redis.key", redis_dir);

    rc = system(cmd);
    cr_assert_eq(rc, 0, "openssl failed: %s/openssl.log", redis_dir);
}


/* Redis again, with a TLS port that wants a client certificate */

static void
redis_with_tls(void)
{
    make_certificates();
    tls_port = free_port();

    redis_extra_conf = str_printf(
        "tls-port %ld\n"
        "tls-cert-file %s/redis.pem\n"
        "tls-key-file %s/redis.key\n"
        "tls-ca-cert-file %s/ca.pem\n"
        "tls-auth-clients yes\n",
        tls_port, redis_dir, redis_dir, redis_dir);

    redis_stop();
    redis_start();
}


static char *
tls_conf(const char *tls)
{
    return str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s"
        "payments_limit_redis 127.0.0.1:%ld password_file=%s/redis.password "
        "timeout=1s prefix=t%ld %s;\n"
        "payments_limit_zone shared size=64k rate=1r/m store=redis "
        "gateways=2;\n"
        "payments_limit_zone strict size=64k rate=1r/m store=redis "
        "on_error=deny;\n"
        "payments_limit create_merchant=shared burst=3;\n"
        "payments_limit pages=strict burst=1000;\n",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        tls_port, redis_dir, (long) getpid(), tls);
}


/* POST /v1/payments that the limit lets through to a 400, or not */

static int
passes(const gateway_t *gw, const merchant_t *m, int n)
{
    int      i, passed;
    resp_t  *r;

    passed = 0;

    for (i = 0; i < n; i++) {
        r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), "{}");
        cr_assert(r->status == 400 || r->status == 429, "%ld %s", r->status,
                  r->body ? r->body : "");
        passed += r->status == 400;
        resp_free(r);
    }

    return passed;
}


/* a gateway whose TLS to Redis fails: why, in one warn line */

static void
refused_tls(const char *name, const char *tls, const char *why)
{
    char        *status_path;
    resp_t      *r;
    gateway_t    gw;
    merchant_t   m;

    memset(&gw, 0, sizeof(gw));
    gateway_start(&gw, str_printf("rl-tls-%s-%ld", name, (long) getpid()), 1,
                  tls_conf(tls));
    gateway_wait_ready(&gw, 10);
    msleep(300);

    /* on_error=local, gateways=2: half the burst; on_error=deny: 503 */
    merchant_new(&m);
    cr_assert_eq(passes(&gw, &m, 4), 2, "%s: not its local share", name);

    status_path = str_printf("/v1/checkouts/%s/status", uid("co"));
    r = gateway_get(&gw, status_path);
    expect_problem(r, 503, "store_unavailable");
    resp_free(r);

    cr_assert(fallbacks(&gw, "shared") >= 4);
    cr_assert(fallbacks(&gw, "strict") >= 1);
    cr_assert_eq(log_count(&gw, why), 1, "%s: no line \"%s\" in %s", name,
                 why, gw.error_log);
    cr_assert_eq(log_count(&gw, "zones with store=redis decide without it"),
                 1);
    cr_assert_eq(log_count(&gw, REDIS_PASSWORD), 0);
    cr_assert_eq(log_count(&gw, "PRIVATE KEY"), 0);

    gateway_stop(&gw);
}


/*
 * TLS with the test's CA and a client certificate: the limit is counted
 * in Redis through its TLS port (the gateway knows no other), 4 requests
 * and then 429; a gateway trusting another CA, or expecting another name,
 * falls back and says why.
 */
Test(limits_redis, tls_to_redis_verifies_its_certificate, .timeout = 90)
{
    char          *ok, *key;
    gateway_t      gw;
    merchant_t     m;
    redisContext  *c;
    redisReply    *r;

    redis_with_tls();

    ok = str_printf("tls tls_ca_file=%s/ca.pem tls_certificate=%s/client.pem "
                    "tls_certificate_key=%s/client.key", redis_dir, redis_dir,
                    redis_dir);

    memset(&gw, 0, sizeof(gw));
    gateway_start(&gw, str_printf("rl-tls-ok-%ld", (long) getpid()), 1,
                  tls_conf(ok));
    gateway_wait_ready(&gw, 10);

    merchant_new(&m);
    cr_assert_eq(passes(&gw, &m, 6), 4);
    cr_assert_eq(fallbacks(&gw, "shared"), 0);
    cr_assert_eq(log_count(&gw, "decide without it"), 0);

    /* the bucket is in Redis: the gateway reached it over TLS */
    c = redis_client();
    key = str_printf("t%ld:shared:r:%s", (long) getpid(), m.id);
    r = redisCommand(c, "EXISTS %s", key);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1,
              "no bucket at %s", key);
    freeReplyObject(r);
    redisFree(c);

    cr_assert_eq(log_count(&gw, "PRIVATE KEY"), 0);
    gateway_stop(&gw);

    /* another CA: the certificate does not verify */
    refused_tls("ca", str_printf("tls tls_ca_file=%s/other.pem "
                                 "tls_certificate=%s/client.pem "
                                 "tls_certificate_key=%s/client.key",
                                 redis_dir, redis_dir, redis_dir),
                "presented a TLS certificate that does not verify against "
                "tls_ca_file=");

    /* the right CA, another name */
    refused_tls("name", str_printf("tls tls_ca_file=%s/ca.pem "
                                   "tls_name=redis.other.example "
                                   "tls_certificate=%s/client.pem "
                                   "tls_certificate_key=%s/client.key",
                                   redis_dir, redis_dir, redis_dir),
                "presented a TLS certificate for another name than: "
                "redis.other.example");
}
