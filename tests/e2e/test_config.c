/*
 * End to end: nginx -t refuses every insecure or incomplete configuration
 * with a message that names what to change.  Each test writes one bad
 * configuration into its own directory and runs the real nginx -t with the
 * module; one good configuration proves the baseline passes.
 */

#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>


typedef struct {
    char  *dir;
    char  *module;
} conf_t;


static char *
module_path(void)
{
    char  *conf, *p, *end;

    /* the module the suite's own nginx loaded */
    conf = file_read(run_file("nginx.conf"), NULL);
    cr_assert_not_null(conf);
    p = strstr(conf, "load_module ");
    cr_assert_not_null(p);
    p += strlen("load_module ");
    end = strchr(p, ';');
    cr_assert_not_null(end);

    return strndup(p, (size_t) (end - p));
}


static void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE  *f;

    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}


/* the test's directories, removed after it (one run made 58) */
static char        *conf_dirs[8];
static size_t       conf_ndirs;


static void
conf_cleanup(void)
{
    while (conf_ndirs > 0) {
        conf_ndirs--;
        /* a mkdtemp() name: no character the shell would read */
        if (system(str_printf("rm -rf '%s'", conf_dirs[conf_ndirs])) != 0) {
            e2e_warn("could not remove %s", conf_dirs[conf_ndirs]);
        }
    }
}


TestSuite(config, .fini = conf_cleanup);


static void
conf_init(conf_t *c)
{
    char  *tmpl;

    tmpl = strdup("/tmp/ngx-payments-conf.XXXXXX");
    c->dir = mkdtemp(tmpl);
    cr_assert_not_null(c->dir);
    cr_assert_lt(conf_ndirs, sizeof(conf_dirs) / sizeof(conf_dirs[0]));
    conf_dirs[conf_ndirs++] = c->dir;
    c->module = module_path();

    write_file(str_printf("%s/paytoken.key", c->dir),
               "0123456789abcdef0123456789abcdef0123456789", 0600);
    write_file(str_printf("%s/short.key", c->dir),
               "0123456789abcdef0123456789abcde", 0600);
    write_file(str_printf("%s/open.key", c->dir),
               "0123456789abcdef0123456789abcdef0123456789", 0644);
    write_file(str_printf("%s/psp.secret", c->dir), "sk_test_0123456789abcdef",
               0600);
    write_file(str_printf("%s/open.secret", c->dir),
               "sk_test_0123456789abcdef", 0640);
    write_file(str_printf("%s/webhook.secret", c->dir),
               "whsec_0123456789abcdef0123456789", 0600);
}


/* the good configuration, with each piece replaceable */

typedef struct {
    const char  *database;
    const char  *origin;
    const char  *token_key;
    const char  *psp;
    const char  *extra;
    const char  *listen;
    const char  *location;
} pieces_t;


static pieces_t
good(const conf_t *c)
{
    pieces_t  p;

    p.database = "payments_database \"hostaddr=127.0.0.1 port=5 "
                 "dbname=payments user=payments_gateway\";";
    p.origin = "payments_public_origin https://gw.example;";
    p.token_key = str_printf("payments_pay_token_key %s/paytoken.key;",
                             c->dir);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c->dir, c->dir);
    p.extra = "";
    p.listen = "listen 127.0.0.1:1;";
    p.location = "location / { payments; }";

    return p;
}


/* nginx -t; returns its exit status and its output in *out */

static int
nginx_t(const conf_t *c, const pieces_t *p, char **out)
{
    int      status;
    char    *conf, *cmd, buf[4096];
    FILE    *f;
    size_t   n, len;

    conf = str_printf(
        "load_module %s;\n"
        "pid %s/nginx.pid;\n"
        "error_log %s/error.log;\n"
        "events {}\n"
        "http {\n"
        "  client_body_temp_path %s/cb; proxy_temp_path %s/p;\n"
        "  fastcgi_temp_path %s/f; uwsgi_temp_path %s/u; scgi_temp_path %s/s;\n"
        "  access_log off;\n"
        "  %s\n  %s\n  %s\n  %s\n  %s\n"
        "  server { %s %s }\n"
        "}\n",
        c->module, c->dir, c->dir, c->dir, c->dir, c->dir, c->dir, c->dir,
        p->database, p->origin, p->token_key, p->psp, p->extra, p->listen,
        p->location);

    write_file(str_printf("%s/nginx.conf", c->dir), conf, 0644);

    cmd = str_printf("nginx -t -q -p %s/ -c %s/nginx.conf -e %s/error.log "
                     "2>&1", c->dir, c->dir, c->dir);
    f = popen(cmd, "r");
    cr_assert_not_null(f);

    len = 0;
    *out = strdup("");
    while ((n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
        buf[n] = '\0';
        *out = str_printf("%s%s", *out, buf);
        len += n;
    }

    status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


static void
expect_refused(const conf_t *c, const pieces_t *p, const char *message)
{
    int    rc;
    char  *out;

    rc = nginx_t(c, p, &out);
    cr_assert_neq(rc, 0, "nginx -t accepted it:\n%s", out);
    cr_assert(strstr(out, message) != NULL,
              "nginx -t said:\n%s\nexpected: %s", out, message);
}


Test(config, the_good_configuration_passes_nginx_t)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* A libcurl whose name look-ups run in the caller's thread would block the
 * worker for as long as a PSP's DNS takes: nginx refuses to start.
 * build/slow_dns.so says so of this libcurl (SLOW_DNS_NO_ASYNCH). */
Test(config, refuses_a_libcurl_without_an_asynchronous_resolver)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    cr_assert_eq(setenv("LD_PRELOAD", build_file("slow_dns.so"), 1), 0);
    cr_assert_eq(setenv("SLOW_DNS_NO_ASYNCH", "1", 1), 0);
    expect_refused(&c, &p, "payments: this libcurl resolves names without "
                           "an asynchronous resolver (AsynchDNS)");

    /* the same shim, the real answer: accepted */
    cr_assert_eq(unsetenv("SLOW_DNS_NO_ASYNCH"), 0);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* The sweeper's lease (3 x interval + 2 s, renewed every interval) must
 * outlast one session look-up started just before a renewal was due: a
 * PSP's timeout of 5 s against a 300 ms interval (a 3 s lease) is
 * refused, 1 s passes. */
Test(config, refuses_a_psp_timeout_longer_than_the_sweeper_lease_allows)
{
    int        rc;
    char      *out, *psp;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    psp = strdup(p.psp);
    psp[strlen(psp) - 1] = '\0';

    p.psp = str_printf("%s timeout=5s;", psp);
    p.extra = "payments_sweeper on interval=300ms;";
    expect_refused(&c, &p, "payments_sweeper: a session look-up at psp "
                           "\"stripe\" may take its timeout=5000ms, longer "
                           "than the sweeper's lease allows: the lease is "
                           "3 x interval + 2 s = 3000ms, renewed every "
                           "interval=300ms, so one look-up must end within "
                           "1700ms; raise the sweeper's interval= to at "
                           "least 2500ms, or lower the psp's timeout= to at "
                           "most 1700ms");

    /* the sweeper off: no look-ups, no lease */
    p.extra = "payments_sweeper off interval=300ms;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    p.psp = str_printf("%s timeout=1s;", psp);
    p.extra = "payments_sweeper on interval=300ms;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_a_pay_token_key_readable_by_others)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.token_key = str_printf("payments_pay_token_key %s/open.key;", c.dir);
    expect_refused(&c, &p, "readable by group or others: chmod 600 it");
}


/* payments_encryption_key: two keys of 32 bytes in base64 */
#define ENC_K1  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define ENC_K2  "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="


static char *
encryption_key(const conf_t *c, const char *name, const char *text,
    mode_t mode)
{
    char  *path;

    path = str_printf("%s/%s", c->dir, name);
    write_file(path, text, mode);

    return str_printf("payments_encryption_key %s;", path);
}


Test(config, accepts_an_encryption_key_file_and_warns_without_one)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "PSP session tokens are stored in clear") != NULL,
              "no warning without payments_encryption_key:\n%s", out);

    p.extra = encryption_key(&c, "enc.key",
                             "# kid base64\n"
                             "k2 " ENC_K2 "\n"
                             "\n"
                             "k1 " ENC_K1 "\n", 0600);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "stored in clear") == NULL, "%s", out);
}


Test(config, refuses_an_encryption_key_file_readable_by_others)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = encryption_key(&c, "enc.key", "k1 " ENC_K1 "\n", 0644);
    expect_refused(&c, &p, "readable by group or others: chmod 600 it");
}


Test(config, names_a_bad_encryption_key_line_by_number_never_its_content)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    /* line 3: a key of 31 bytes; line 4 would repeat a kid */
    p.extra = encryption_key(&c, "enc.key",
                             "# keys\n"
                             "k1 " ENC_K1 "\n"
                             "k2 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n"
                             "k1 " ENC_K2 "\n", 0600);
    rc = nginx_t(&c, &p, &out);
    cr_assert_neq(rc, 0, "nginx -t accepted it:\n%s", out);
    cr_assert(strstr(out, "line 3 is not") != NULL, "%s", out);
    cr_assert(strstr(out, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg") == NULL
              && strstr(out, ENC_K1) == NULL, "a key in the output:\n%s",
              out);

    /* a repeated kid is a bad line too */
    p.extra = encryption_key(&c, "enc2.key",
                             "k1 " ENC_K1 "\nk1 " ENC_K2 "\n", 0600);
    expect_refused(&c, &p, "line 2 is not");

    /* no key at all */
    p.extra = encryption_key(&c, "enc3.key", "# nothing yet\n", 0600);
    expect_refused(&c, &p, "holds no key");
}


Test(config, refuses_a_pay_token_key_shorter_than_32_bytes)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.token_key = str_printf("payments_pay_token_key %s/short.key;", c.dir);
    expect_refused(&c, &p, "shorter than 32 bytes");
}


Test(config, refuses_a_psp_secret_readable_by_the_group)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/open.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "readable by group or others");
}


Test(config, refuses_a_psp_without_its_api_key)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;", c.dir);
    expect_refused(&c, &p, "needs secret_file=");
}


Test(config, refuses_a_psp_without_a_webhook_secret)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "hosted=https://checkout.stripe.example;", c.dir);
    expect_refused(&c, &p, "needs webhook_secret_file=");
}


Test(config, refuses_a_psp_without_hosted_page_origins)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "webhook_secret_file=%s/webhook.secret "
                       "secret_file=%s/psp.secret;", c.dir, c.dir);
    expect_refused(&c, &p, "needs at least one hosted=");
}


Test(config, refuses_a_plain_http_psp_without_allow_http)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=http://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "is not an https URL");
}


Test(config, refuses_a_hosted_origin_with_userinfo)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example@evil.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "is not an https origin");
}


Test(config, refuses_an_unknown_dialect)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=paypalish "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "unknown dialect");
}


Test(config, refuses_a_plain_http_public_origin)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.origin = "payments_public_origin http://gw.example;";
    expect_refused(&c, &p, "is not an https origin");
}


Test(config, refuses_a_database_host_name)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.database = "payments_database \"host=db.example dbname=payments\";";
    expect_refused(&c, &p, "would block nginx");

    /* in any entry of a list of servers: libpq tries each in turn */
    p.database = "payments_database \"host=/run/postgresql,db.example "
                 "dbname=payments\";";
    expect_refused(&c, &p, "(entry 2 has neither): resolving a host name "
                           "would block nginx");
    p.database = "payments_database \"host=db1,db2 hostaddr=127.0.0.1, "
                 "dbname=payments\";";
    expect_refused(&c, &p, "(entry 2 has neither)");
}


Test(config, refuses_a_database_password_in_nginx_conf)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.database = "payments_database \"hostaddr=127.0.0.1 dbname=payments "
                 "password=hunter2\";";
    expect_refused(&c, &p, "do not put a password in nginx.conf");
}


Test(config, refuses_the_handler_without_a_database)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.database = "";
    expect_refused(&c, &p, "requires \"payments_database\"");
}


Test(config, refuses_an_idempotency_ttl_under_24h)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = "payments_idempotency_ttl 1h;";
    expect_refused(&c, &p, "must be at least 24h");
}


Test(config, refuses_an_auth_cache_over_60s)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = "payments_auth_cache 120s;";
    expect_refused(&c, &p, "must be at most 60s");
}


Test(config, refuses_a_session_lifetime_outside_the_psps_limits)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = "payments_session_lifetime 10m;";
    expect_refused(&c, &p, "between 30m and 24h");
}


Test(config, refuses_a_lease_shorter_than_the_request_and_database_timeouts)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    /* the defaults (30s >= 15s + 3 x 5s) pass: the good configuration */
    p.extra = "payments_idempotency_lease 20s;";
    expect_refused(&c, &p, "\"payments_idempotency_lease\" 20s is shorter "
                           "than \"payments_request_timeout\" 15000ms plus 3 "
                           "times \"payments_database_timeout\" 5000ms: "
                           "raise the lease to at least 30s");

    p.extra = "payments_idempotency_lease 10s; payments_request_timeout 5s; "
              "payments_database_timeout 2s;";
    expect_refused(&c, &p, "raise the lease to at least 11s");

    /* the database timeouts count too, not only the PSP budget */
    p.extra = "payments_idempotency_lease 16s; payments_request_timeout 15s;"
              " payments_database_timeout 1s;";
    expect_refused(&c, &p, "raise the lease to at least 18s");

    p.extra = "payments_idempotency_lease 11s; payments_request_timeout 5s; "
              "payments_database_timeout 2s;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_a_stripe_session_lifetime_without_room_for_the_lease)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    /* 30m is Stripe's floor at the time it reads the request, which may be
     * a lease after the claim fixed expires_at */
    p.extra = "payments_session_lifetime 30m;";
    expect_refused(&c, &p, "\"payments_session_lifetime\" 1800s leaves the "
                           "stripe PSP \"stripe\" less than its 30m minimum "
                           "once \"payments_idempotency_lease\" 30s has "
                           "passed: raise it to at least 1830s");

    p.extra = "payments_session_lifetime 1830s;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* --- the adyen and generic dialects' webhook verification ------------------ */

#define ADYEN_HMAC_HEX \
    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"


static void
openssl_run(const char *args)
{
    cr_assert_eq(system(str_printf("openssl %s >/dev/null 2>&1", args)), 0,
                 "openssl %s", args);
}


/* An EC P-256 and an RSA 2048 public key, and a 1024-bit RSA one. */
static void
jwt_keys(const conf_t *c)
{
    openssl_run(str_printf("ecparam -name prime256v1 -genkey -noout "
                           "-out %s/ec.key", c->dir));
    openssl_run(str_printf("ec -in %s/ec.key -pubout -out %s/ec.pub",
                           c->dir, c->dir));
    openssl_run(str_printf("genpkey -algorithm RSA -pkeyopt "
                           "rsa_keygen_bits:2048 -out %s/rsa.key", c->dir));
    openssl_run(str_printf("pkey -in %s/rsa.key -pubout -out %s/rsa.pub",
                           c->dir, c->dir));
    openssl_run(str_printf("genpkey -algorithm RSA -pkeyopt "
                           "rsa_keygen_bits:1024 -out %s/rsa1024.key", c->dir));
    openssl_run(str_printf("pkey -in %s/rsa1024.key -pubout "
                           "-out %s/rsa1024.pub", c->dir, c->dir));
}


static const char *
adyen_psp(const conf_t *c, const char *hmac_file, const char *extra)
{
    return str_printf("payments_psp adyen dialect=adyen "
                      "url=https://checkout-test.adyen.example "
                      "secret_file=%s/psp.secret "
                      "webhook_secret_file=%s "
                      "hosted=https://checkoutshopper-test.adyen.example %s;",
                      c->dir, hmac_file, extra);
}


/* rest: "SECRET_FILE [more parameters]" */
static const char *
generic_psp(const char *rest)
{
    return str_printf("payments_psp gen dialect=generic "
                      "url=https://api.psp.example "
                      "hosted=https://pay.psp.example secret_file=%s;", rest);
}


Test(config, an_adyen_psp_with_its_hmac_key_passes)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    write_file(str_printf("%s/adyen.hmac", c.dir), ADYEN_HMAC_HEX "\n", 0600);
    p = good(&c);
    p.psp = adyen_psp(&c, str_printf("%s/adyen.hmac", c.dir),
                      "merchant_account=TestMerchant");
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* the Transfers API of an Adyen PSP that pays out: its URL, its own key
 * (file name in the test's directory) and the platform's balance account */
static const char *
adyen_transfers(const conf_t *c, const char *url, const char *key_file,
    const char *account)
{
    return str_printf("merchant_account=TestMerchant%s%s%s%s%s%s",
                      url ? " transfers_url=" : "", url ? url : "",
                      key_file ? " transfers_secret_file=" : "",
                      key_file ? str_printf("%s/%s", c->dir, key_file) : "",
                      account ? " balance_account=" : "",
                      account ? account : "");
}


Test(config, an_adyen_psp_that_pays_out_through_the_transfers_api_passes)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    write_file(str_printf("%s/adyen.hmac", c.dir), ADYEN_HMAC_HEX "\n", 0600);
    write_file(str_printf("%s/transfers.secret", c.dir),
               "AQE_transfers_0123456789abcdef", 0600);
    p = good(&c);
    p.psp = adyen_psp(&c, str_printf("%s/adyen.hmac", c.dir),
                      adyen_transfers(&c,
                          "https://balanceplatform-api-test.adyen.example/"
                          "btl/v4", "transfers.secret", "BA3227C223222B5"));
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* Adyen serves Transfers on the balance platform's host with a key of its
 * own: a pay-out configuration without one of them would fail at Adyen */
Test(config, refuses_adyen_payouts_without_the_transfers_api_or_its_key)
{
    conf_t       c;
    pieces_t     p;
    const char  *hmac, *url;

    conf_init(&c);
    hmac = str_printf("%s/adyen.hmac", c.dir);
    url = "https://balanceplatform-api-test.adyen.example/btl/v4";
    write_file(hmac, ADYEN_HMAC_HEX "\n", 0600);
    write_file(str_printf("%s/transfers.secret", c.dir),
               "AQE_transfers_0123456789abcdef", 0600);
    write_file(str_printf("%s/open_transfers.secret", c.dir),
               "AQE_transfers_0123456789abcdef", 0644);
    p = good(&c);

    p.psp = adyen_psp(&c, hmac, adyen_transfers(&c, NULL, "transfers.secret",
                                                "BA1"));
    expect_refused(&c, &p, "pay-outs with dialect=adyen need transfers_url= "
                           "(the Transfers API");
    expect_refused(&c, &p, "transfers_url= is missing");

    p.psp = adyen_psp(&c, hmac, adyen_transfers(&c, url, NULL, "BA1"));
    expect_refused(&c, &p, "transfers_secret_file= is missing");

    p.psp = adyen_psp(&c, hmac, adyen_transfers(&c, url, "transfers.secret",
                                                NULL));
    expect_refused(&c, &p, "balance_account= is missing");

    /* read like secret_file: never readable by others */
    p.psp = adyen_psp(&c, hmac, adyen_transfers(&c, url,
                                                "open_transfers.secret",
                                                "BA1"));
    expect_refused(&c, &p, "readable by group or others");

    /* an Adyen id, as the dialect sends it */
    p.psp = adyen_psp(&c, hmac, adyen_transfers(&c, url, "transfers.secret",
                                                "BA_1"));
    expect_refused(&c, &p, "invalid parameter \"balance_account=BA_1\"");
}


Test(config, refuses_a_transfers_url_that_url_would_refuse)
{
    conf_t       c;
    pieces_t     p;
    const char  *hmac;

    conf_init(&c);
    hmac = str_printf("%s/adyen.hmac", c.dir);
    write_file(hmac, ADYEN_HMAC_HEX "\n", 0600);
    write_file(str_printf("%s/transfers.secret", c.dir),
               "AQE_transfers_0123456789abcdef", 0600);
    p = good(&c);

    p.psp = adyen_psp(&c, hmac, adyen_transfers(&c,
                          "http://balanceplatform-api-test.adyen.example/"
                          "btl/v4", "transfers.secret", "BA1"));
    expect_refused(&c, &p, "transfers_url \"http://balanceplatform-api-test."
                           "adyen.example/btl/v4\" is not an https URL");

    /* allow_http admits a loopback mock, never with pins */
    p.psp = adyen_psp(&c, hmac, str_printf("%s allow_http pin=sha256//"
                          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                          adyen_transfers(&c, "http://127.0.0.1:9/btl/v4",
                                          "transfers.secret", "BA1")));
    expect_refused(&c, &p, "with pin= needs an https transfers_url=");
}


Test(config, refuses_transfers_parameters_on_a_stripe_psp)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "transfers_url=https://balanceplatform-api-test."
                       "adyen.example/btl/v4 "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "transfers_url=, transfers_secret_file= and "
                           "balance_account=: not a parameter of "
                           "dialect=stripe (only of dialect=adyen)");

    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "balance_account=BA1 "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "not a parameter of dialect=stripe");
}


Test(config, refuses_an_adyen_hmac_key_that_is_not_64_hex_digits)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    /* 63 digits, then one that is not hex */
    write_file(str_printf("%s/short.hmac", c.dir),
               "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA05",
               0600);
    write_file(str_printf("%s/nothex.hmac", c.dir),
               "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA05G",
               0600);
    p = good(&c);
    p.psp = adyen_psp(&c, str_printf("%s/short.hmac", c.dir),
                      "merchant_account=TestMerchant");
    expect_refused(&c, &p, "64 hex digits");
    p.psp = adyen_psp(&c, str_printf("%s/nothex.hmac", c.dir),
                      "merchant_account=TestMerchant");
    expect_refused(&c, &p, "64 hex digits");
}


Test(config, refuses_an_adyen_hmac_key_readable_by_others)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    write_file(str_printf("%s/adyen.hmac", c.dir), ADYEN_HMAC_HEX, 0644);
    p = good(&c);
    p.psp = adyen_psp(&c, str_printf("%s/adyen.hmac", c.dir),
                      "merchant_account=TestMerchant");
    expect_refused(&c, &p, "readable by group or others");
}


Test(config, refuses_an_adyen_psp_without_a_merchant_account)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    write_file(str_printf("%s/adyen.hmac", c.dir), ADYEN_HMAC_HEX, 0600);
    p = good(&c);
    p.psp = adyen_psp(&c, str_printf("%s/adyen.hmac", c.dir), "");
    expect_refused(&c, &p, "needs merchant_account=");
}


Test(config, a_generic_psp_with_es256_and_rs256_keys_passes, .timeout = 30)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    jwt_keys(&c);
    p = good(&c);
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:es256:%s/ec.pub "
                                   "webhook_key=k2:rs256:%s/rsa.pub "
                                   "webhook_header=X-Psp-Signature "
                                   "webhook_iss=psp.example "
                                   "webhook_aud=gw.example",
                                   c.dir, c.dir, c.dir));
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_a_generic_psp_without_a_public_key)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = generic_psp(str_printf("%s/psp.secret", c.dir));
    expect_refused(&c, &p, "needs webhook_key=KID:es256|rs256:FILE");

    /* a shared secret is not how this dialect verifies */
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_secret_file=%s/"
                                   "webhook.secret", c.dir, c.dir));
    expect_refused(&c, &p, "webhook_secret_file=: not a parameter of "
                           "dialect=generic (only of dialect=stripe|adyen)");
}


Test(config, refuses_a_generic_key_of_the_wrong_type_or_size, .timeout = 30)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    jwt_keys(&c);
    p = good(&c);

    /* an RSA key pinned to ES256, an EC key pinned to RS256 */
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:es256:%s/"
                                   "rsa.pub", c.dir, c.dir));
    expect_refused(&c, &p, "is not a ES256 public key");
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:rs256:%s/"
                                   "ec.pub", c.dir, c.dir));
    expect_refused(&c, &p, "is not a RS256 public key");

    /* RSA under 2048 bits; a private key where the public one belongs */
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:rs256:%s/"
                                   "rsa1024.pub", c.dir, c.dir));
    expect_refused(&c, &p, "is not a RS256 public key");
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:es256:%s/"
                                   "paytoken.key", c.dir, c.dir));
    expect_refused(&c, &p, "is not a ES256 public key");
}


Test(config, refuses_malformed_or_repeated_generic_keys, .timeout = 30)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    jwt_keys(&c);
    p = good(&c);

    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:%s/ec.pub",
                                   c.dir, c.dir));
    expect_refused(&c, &p, "is not KID:es256|rs256:FILE");
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:hs256:%s/"
                                   "ec.pub", c.dir, c.dir));
    expect_refused(&c, &p, "is not KID:es256|rs256:FILE");
    p.psp = generic_psp(str_printf("%s/psp.secret webhook_key=k1:es256:%s/"
                                   "ec.pub webhook_key=k1:rs256:%s/rsa.pub",
                                   c.dir, c.dir, c.dir));
    expect_refused(&c, &p, "kid \"k1\" is defined twice");
}


Test(config, refuses_generic_parameters_on_a_stripe_psp, .timeout = 30)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    jwt_keys(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "webhook_key=k1:es256:%s/ec.pub "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir, c.dir);
    expect_refused(&c, &p, "not a parameter of dialect=stripe (only of "
                           "dialect=generic)");
}


Test(config, refuses_a_malformed_pin_and_a_pin_on_plain_http)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "pin=sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "is not sha256// and the base64 of a SHA-256");

    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "pin=sha256//AAAA= "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "is not sha256// and the base64 of a SHA-256");

    p.psp = str_printf("payments_psp stripe dialect=stripe allow_http "
                       "url=http://127.0.0.1:9 "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "pin=sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "with pin= needs an https url=");
}


Test(config, refuses_a_ca_file_that_cannot_be_read)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "ca_file=%s/no-such-ca.pem "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir, c.dir);
    expect_refused(&c, &p, "cannot open file");
}


/*
 * /metrics served by a "payments" location without an access rule: nginx -t
 * warns (and still passes); allow/deny there or inherited, auth_basic or a
 * location of its own that denies stays quiet.  The location is the one
 * nginx would pick for the request: exact, prefix or regular expression.
 */

#define METRICS_WARNING  "which has no access rule"

static void
expect_metrics_warning(const conf_t *c, const char *location, int warned)
{
    int        rc;
    char      *out;
    pieces_t   p;

    p = good(c);
    p.location = location;
    rc = nginx_t(c, &p, &out);
    cr_assert_eq(rc, 0, "%s\n%s", location, out);
    cr_assert_eq(strstr(out, METRICS_WARNING) != NULL, warned,
                 "%s:\n%s", location, out);
}


Test(config, warns_when_metrics_has_no_access_rule)
{
    conf_t  c;

    conf_init(&c);

    expect_metrics_warning(&c, "location / { payments; }", 1);
    expect_metrics_warning(&c, "location = /metrics { payments; } "
                               "location / { deny all; payments; }", 1);
    expect_metrics_warning(&c, "location / { deny all; payments; } "
                               "location ~ ^/metr { payments; }", 1);
    expect_metrics_warning(&c, "location /v1/ { allow all; payments; } "
                               "location / { auth_basic off; payments; }", 1);

    expect_metrics_warning(&c, "location = /metrics { allow 127.0.0.1; "
                               "deny all; payments; } "
                               "location / { payments; }", 0);
    expect_metrics_warning(&c, "allow 10.0.0.0/8; deny all; "
                               "location / { payments; }", 0);
    expect_metrics_warning(&c, "location = /metrics { deny all; } "
                               "location / { payments; }", 0);
    expect_metrics_warning(&c, "location / { payments; } "
                               "location = /metrics { auth_basic metrics; "
                               "auth_basic_user_file /dev/null; payments; }",
                           0);
}


/* The production example (conf/nginx/conf.d/payments.conf and
 * conf/nginx/sites-available/payments, doc/OPERATIONS.md) passes nginx -t as
 * it is, in Debian's layout: included inside the http block of a copy of
 * Debian's stock nginx.conf, the module loaded by its own load_module line
 * (the package's modules-enabled file), its paths pointed at test files. */
Test(config, the_production_example_passes_nginx_t, .timeout = 60)
{
    int          rc;
    char        *text, *cmd, *sed, *out, buf[4096];
    const char  *root;
    FILE        *f;
    size_t       n;
    conf_t       c;

    conf_init(&c);
    root = env("PAY_TEST_ROOT");

    cr_assert_eq(mkdir(str_printf("%s/tls", c.dir), 0700), 0);
    openssl_run(str_printf("req -x509 -newkey ec -pkeyopt "
                           "ec_paramgen_curve:prime256v1 -nodes -days 2 "
                           "-subj /CN=pay.example.com -keyout %s/tls/privkey.pem "
                           "-out %s/tls/fullchain.pem", c.dir, c.dir));
    openssl_run(str_printf("x509 -in %s/tls/fullchain.pem -out %s/tls/chain.pem",
                           c.dir, c.dir));
    write_file(str_printf("%s/paytoken-2026-11.key", c.dir),
               "0123456789abcdef0123456789abcdef-2026-11", 0600);
    write_file(str_printf("%s/stripe-api.key", c.dir),
               "sk_live_0123456789abcdef", 0600);
    write_file(str_printf("%s/stripe-whsec.key", c.dir),
               "whsec_0123456789abcdef0123456789", 0600);
    write_file(str_printf("%s/adyen-api.key", c.dir), "AQEyhmfxK0123456789",
               0600);
    write_file(str_printf("%s/adyen-hmac.key", c.dir), ADYEN_HMAC_HEX, 0600);
    write_file(str_printf("%s/adyen-transfers.key", c.dir),
               "AQE_transfers_0123456789abcdef", 0600);
    write_file(str_printf("%s/adyen-webhook.htpasswd", c.dir),
               "adyen:$apr1$e2etest$S6A4VpFdxzZAPMEU7N2YQ/\n", 0644);
    write_file(str_printf("%s/encryption.keys", c.dir),
               "2026-11 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0600);

    /* the two files, with their paths moved under c.dir */
    sed = str_printf("sed -e 's|/etc/payments|%s|g' -e 's|/var/log/nginx|%s|g' "
                     "-e 's|/usr/share/ngx-payments/html|%s/html|'",
                     c.dir, c.dir, root);
    cmd = str_printf("%s %s/conf/nginx/conf.d/payments.conf > %s/payments.conf "
                     "&& %s %s/conf/nginx/sites-available/payments > %s/site",
                     sed, root, c.dir, sed, root, c.dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    text = file_read(str_printf("%s/payments.conf", c.dir), NULL);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "/etc/payments") == NULL);
    cr_assert(strstr(text, "load_module") == NULL,
              "the module is loaded by modules-enabled, not the example");

    /* the limits the module's page says it has: every scope applied, each
     * to a zone the example declares (nginx -t below refuses an unknown
     * zone) */
    {
        size_t       i;
        const char  *scope[] = {
            "payments_limit create_merchant=", "payments_limit create_address=",
            "payments_limit pages=", "payments_limit webhook=",
            "payments_limit webhook_failures=", "payments_limit amount=",
            "payments_limit failures=",
        };

        for (i = 0; i < sizeof(scope) / sizeof(scope[0]); i++) {
            cr_assert(strstr(text, scope[i]) != NULL,
                      "the production example has no \"%s\"", scope[i]);
        }
    }

    /* Debian's stock nginx.conf (bookworm), its includes of
     * modules-enabled, conf.d and sites-enabled pointed at the three */
    write_file(str_printf("%s/prod.conf", c.dir),
               str_printf("%s\n"
                          "worker_processes auto;\n"
                          "pid %s/nginx.pid;\n"
                          "error_log %s/error.log;\n"
                          "load_module %s;\n"
                          "events { worker_connections 768; }\n"
                          "http {\n"
                          "    sendfile on;\n"
                          "    tcp_nopush on;\n"
                          "    types_hash_max_size 2048;\n"
                          "    default_type application/octet-stream;\n"
                          "    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n"
                          "    ssl_prefer_server_ciphers on;\n"
                          "    access_log %s/access.log;\n"
                          "    gzip on;\n"
                          "    include %s/payments.conf;\n"
                          "    include %s/site;\n"
                          "}\n",
                          getuid() == 0 ? "user nobody nogroup;"
                                        : "# user www-data;",
                          c.dir, c.dir, c.module, c.dir, c.dir, c.dir),
               0600);

    cmd = str_printf("nginx -t -p %s/ -c %s/prod.conf -e %s/error.log 2>&1",
                     c.dir, c.dir, c.dir);
    f = popen(cmd, "r");
    cr_assert_not_null(f);
    out = strdup("");
    while ((n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
        buf[n] = '\0';
        out = str_printf("%s%s", out, buf);
    }
    rc = pclose(f);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "nginx -t:\n%s", out);
    /* the example seals tokens: no "stored in clear" warning */
    cr_assert(strstr(out, "in clear") == NULL, "nginx -t:\n%s", out);
    /* and /metrics is guarded on every listener */
    cr_assert(strstr(out, METRICS_WARNING) == NULL, "nginx -t:\n%s", out);
    /* a certificate without an OCSP URL (this one, Let's Encrypt's): no
     * stapling warning at every start */
    cr_assert(strstr(out, "ssl_stapling") == NULL, "nginx -t:\n%s", out);
}


/* payments_limit (doc/ngx_http_payments_limit_module.md): zones and their
 * use, checked at nginx -t */

#define LIMIT_ZONES \
    "payments_limit_zone api size=1m rate=10r/s; " \
    "payments_limit_amount money size=1m window=1h max=USD:10000.00 " \
    "max=JPY:1000000; " \
    "payments_limit_failures cards size=1m window=10m max=5;"


static void
expect_limit_refused(const char *extra, const char *message)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = extra;
    expect_refused(&c, &p, message);
}


Test(config, accepts_every_payments_limit)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = LIMIT_ZONES
              " payments_limit create_merchant=api burst=20;"
              " payments_limit create_address=api;"
              " payments_limit pages=api burst=5;"
              " payments_limit webhook=api burst=100;"
              " payments_limit amount=money;"
              " payments_limit failures=cards;";
    p.location = "location / { payments; } "
                 "location /v1/webhooks/ { payments_limit webhook=api; "
                 "payments; }";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_payments_limit_with_an_unknown_zone)
{
    expect_limit_refused(LIMIT_ZONES " payments_limit pages=nope;",
                         "unknown zone \"nope\": declare it with "
                         "\"payments_limit_zone nope ...\"");
}


Test(config, refuses_a_limit_zone_smaller_than_eight_pages)
{
    expect_limit_refused("payments_limit_zone api size=4k rate=1r/s;",
                         "zone \"api\" is too small");
}


Test(config, refuses_a_bad_rate)
{
    expect_limit_refused("payments_limit_zone api size=1m rate=10r/h;",
                         "invalid rate \"rate=10r/h\"");
    expect_limit_refused("payments_limit_zone api size=1m rate=0r/s;",
                         "invalid rate");
    expect_limit_refused("payments_limit_zone api size=1m;",
                         "needs a rate");
}


Test(config, refuses_a_zone_of_the_wrong_kind_for_the_scope)
{
    expect_limit_refused(LIMIT_ZONES " payments_limit pages=money;",
                         "zone \"money\" is a \"payments_limit_amount\" "
                         "zone; pages= needs a \"payments_limit_zone\"");
    expect_limit_refused(LIMIT_ZONES " payments_limit amount=api;",
                         "needs a \"payments_limit_amount\" zone");
}


Test(config, refuses_an_unknown_scope_and_a_misplaced_burst)
{
    expect_limit_refused(LIMIT_ZONES " payments_limit checkout=api;",
                         "unknown scope \"checkout\"");
    expect_limit_refused(LIMIT_ZONES " payments_limit amount=money burst=5;",
                         "burst= is for request rates only");
    expect_limit_refused(LIMIT_ZONES " payments_limit pages=api burst=-1;",
                         "invalid \"burst=-1\"");
    expect_limit_refused(LIMIT_ZONES " payments_limit pages=api; "
                         "payments_limit pages=api;", "pages= is given twice");
}


Test(config, refuses_an_amount_limit_without_a_valid_max)
{
    expect_limit_refused("payments_limit_amount m size=1m window=1h "
                         "max=usd:10;", "is not an ISO 4217 currency");
    expect_limit_refused("payments_limit_amount m size=1m window=1h "
                         "max=USD:10.001;", "at most 2 decimals");
    expect_limit_refused("payments_limit_amount m size=1m window=1h "
                         "max=USD:99999999999999999999;", "invalid amount");
    expect_limit_refused("payments_limit_amount m size=1m window=1h;",
                         "needs window= and at least one max=");
    expect_limit_refused("payments_limit_amount m size=1m window=0s "
                         "max=USD:1;", "a time from 1s to 31d");
}


/* zones kept in Redis: payments_limit_redis and store=redis */

Test(config, accepts_zones_kept_in_redis)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = str_printf(
        "payments_limit_zone api size=1m rate=10r/s store=redis "
        "gateways=3; "
        "payments_limit_zone strict size=1m rate=1r/s store=redis "
        "on_error=deny; "
        "payments_limit_zone mine size=1m rate=1r/s store=local; "
        "payments_limit_redis [::1]:6379 password_file=%s/psp.secret "
        "timeout=20ms prefix=gw.eu-1; "
        "payments_limit create_merchant=api; payments_limit pages=strict;",
        c.dir);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    p.extra = "payments_limit_redis unix:/run/redis/redis.sock; "
              "payments_limit_zone api size=1m rate=10r/s store=redis "
              "gateways=2;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    /* a host name, resolved here, when the configuration is read */
    p.extra = "payments_limit_redis localhost:6379; "
              "payments_limit_zone api size=1m rate=10r/s store=redis "
              "gateways=2;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_a_redis_zone_without_its_redis_or_its_share)
{
    expect_limit_refused("payments_limit_zone api size=1m rate=1r/s "
                         "store=redis gateways=2;",
                         "payments_limit_zone \"api\" says store=redis, but "
                         "no \"payments_limit_redis\"");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_zone api size=1m rate=1r/s "
                         "store=redis;",
                         "zone \"api\" with store=redis needs gateways=N");
    expect_limit_refused("payments_limit_zone api size=1m rate=1r/s "
                         "gateways=2;",
                         "gateways= and on_error= are for a zone with "
                         "store=redis");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_zone api size=1m rate=1r/s "
                         "store=redis gateways=0;", "invalid \"gateways=0\"");
    expect_limit_refused("payments_limit_zone api size=1m rate=1r/s "
                         "store=memcached;", "write store=local, store=redis");
}


/*
 * A failures zone in Redis: its keys are HMACs under a key every gateway
 * reads from the same file (hash_key_file=), of 32 characters at least,
 * kept as secrets are
 */
Test(config, a_failures_zone_in_redis_needs_the_shared_hash_key)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_failures f size=1m window=1h "
                         "max=5 store=redis gateways=2;",
                         "payments_limit_failures \"f\" says store=redis, "
                         "but \"payments_limit_redis\" has no "
                         "hash_key_file=");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_failures f size=1m window=1h "
                         "max=5 store=redis;",
                         "zone \"f\" with store=redis needs gateways=N");

    conf_init(&c);
    p = good(&c);

    p.extra = str_printf("payments_limit_redis 127.0.0.1:6379 "
                         "hash_key_file=%s/short.key;", c.dir);
    expect_refused(&c, &p, "is shorter than 32 characters");

    p.extra = str_printf("payments_limit_redis 127.0.0.1:6379 "
                         "hash_key_file=%s/open.key;", c.dir);
    expect_refused(&c, &p, "readable by group or others");

    write_file(str_printf("%s/hash.key", c.dir),
               "0123456789abcdef0123456789abcdef\n", 0600);
    p.extra = str_printf("payments_limit_redis 127.0.0.1:6379 "
                         "hash_key_file=%s/hash.key; "
                         "payments_limit_failures f size=1m window=1h "
                         "max=5 store=redis gateways=2; "
                         "payments_limit_failures w size=1m window=1h "
                         "max=5 store=redis on_error=deny; "
                         "payments_limit failures=f; "
                         "payments_limit webhook_failures=w;", c.dir);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* an amount zone in Redis: its Redis, its share, a max Lua counts exactly */
Test(config, refuses_an_amount_zone_in_redis_without_its_redis_or_share)
{
    expect_limit_refused("payments_limit_amount m size=1m window=1h "
                         "max=USD:1 store=redis gateways=2;",
                         "payments_limit_amount \"m\" says store=redis, but "
                         "no \"payments_limit_redis\"");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_amount m size=1m window=1h "
                         "max=USD:1 store=redis;",
                         "zone \"m\" with store=redis needs gateways=N");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_amount m size=1m window=1h "
                         "max=USD:90071992547409.92 store=redis "
                         "on_error=deny;",
                         "max= for USD is more than a zone with store=redis "
                         "counts exactly");
}


/*
 * Redis's name is resolved by nginx -t (and at start and reload), never by
 * a worker: one that does not resolve (RFC 6761's .invalid) is refused.
 */
Test(config, resolves_the_redis_name_when_reading_the_configuration)
{
    expect_limit_refused("payments_limit_redis redis.invalid:6379;",
                         "host \"redis.invalid\" not found: Redis's name is "
                         "resolved when nginx reads its configuration");
    expect_limit_refused("payments_limit_redis 127.0.0.1:99999;",
                         "is not an address and port (invalid port)");
}


Test(config, refuses_a_malformed_redis_line_or_an_open_password_file)
{
    conf_t     c;
    pieces_t   p;

    expect_limit_refused("payments_limit_redis 127.0.0.1;",
                         "is not an address and port");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 "
                         "timeout=5s;", "1ms to 1s");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 "
                         "prefix=a:b;", "invalid \"prefix=a:b\"");
    expect_limit_refused("payments_limit_redis unix:run/redis.sock;",
                         "a unix socket's path is absolute");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379; "
                         "payments_limit_redis 127.0.0.1:6380;",
                         "is duplicate");

    /* the password file as every secret: not readable by others */
    conf_init(&c);
    p = good(&c);
    p.extra = str_printf("payments_limit_redis 127.0.0.1:6379 "
                         "password_file=%s/open.secret;", c.dir);
    expect_refused(&c, &p, "readable by group or others");
}


/*
 * TLS to Redis: verified by default, so a CA file is needed; parameters
 * that would do nothing, or half a client certificate, are refused; the
 * client key is a secret (mode 0600)
 */
Test(config, redis_tls_verifies_by_default_and_refuses_what_cannot_work)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 tls;",
                         "tls needs tls_ca_file=");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 "
                         "tls_ca_file=/etc/ssl/certs/ca-certificates.crt;",
                         "tls_ parameters need \"tls\"");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 tls "
                         "tls_verify=off "
                         "tls_ca_file=/etc/ssl/certs/ca-certificates.crt;",
                         "tls_verify=off checks no certificate");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 tls "
                         "tls_ca_file=/etc/ssl/certs/ca-certificates.crt "
                         "tls_certificate=/etc/ssl/certs/x.pem;",
                         "tls_certificate= and tls_certificate_key= go "
                         "together");
    expect_limit_refused("payments_limit_redis unix:/run/redis/redis.sock "
                         "tls "
                         "tls_ca_file=/etc/ssl/certs/ca-certificates.crt;",
                         "a unix socket names no host: give tls_name=");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 tls "
                         "tls_verify=maybe;", "invalid \"tls_verify=maybe\"");

    conf_init(&c);
    p = good(&c);

    /* a client key readable by others, as any secret */
    p.extra = str_printf("payments_limit_redis 127.0.0.1:6379 tls "
                         "tls_ca_file=/etc/ssl/certs/ca-certificates.crt "
                         "tls_certificate=%s/tls.crt "
                         "tls_certificate_key=%s/open.secret;", c.dir,
                         c.dir);
    expect_refused(&c, &p, "readable by group or others");

    /* a CA file nginx cannot load */
    p.extra = str_printf("payments_limit_redis 127.0.0.1:6379 tls "
                         "tls_ca_file=%s/psp.secret;", c.dir);
    expect_refused(&c, &p, "SSL_CTX_load_verify_locations");

    p.extra = "payments_limit_redis 127.0.0.1:6379 tls "
              "tls_ca_file=/etc/ssl/certs/ca-certificates.crt; "
              "payments_limit_zone api size=1m rate=10r/s store=redis "
              "gateways=2;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    p.extra = "payments_limit_redis unix:/run/redis/redis.sock tls "
              "tls_ca_file=/etc/ssl/certs/ca-certificates.crt "
              "tls_name=redis.internal; "
              "payments_limit_zone api size=1m rate=10r/s store=redis "
              "gateways=2;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* an ACL user comes with its password; its name is one word */
Test(config, refuses_an_acl_user_without_its_password)
{
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 "
                         "user=payments;", "user= needs password_file=");
    expect_limit_refused("payments_limit_redis 127.0.0.1:6379 user=;",
                         "invalid \"user=\"");
}


Test(config, refuses_a_failures_guard_without_max)
{
    expect_limit_refused("payments_limit_failures f size=1m window=10m;",
                         "needs window= and max=");
    expect_limit_refused("payments_limit_failures f size=1m window=10m "
                         "max=0;", "invalid \"max=0\"");
}


Test(config, refuses_a_limit_zone_declared_twice)
{
    expect_limit_refused("payments_limit_zone a size=1m rate=1r/s; "
                         "payments_limit_failures a size=1m window=1m max=1;",
                         "zone \"a\" is already declared");
}


Test(config, refuses_plain_http_off_loopback_and_for_live_money)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.psp = str_printf("payments_psp mock dialect=stripe allow_http "
                       "url=http://psp.example secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=http://127.0.0.1:9;", c.dir, c.dir);
    expect_refused(&c, &p, "is not on a loopback address");

    p.psp = str_printf("payments_psp mock dialect=stripe allow_http "
                       "url=http://127.0.0.1:9 secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=http://pay.example;", c.dir, c.dir);
    expect_refused(&c, &p, "allow_http admits loopback ones only");

    p.psp = str_printf("payments_psp mock dialect=stripe allow_http mode=live "
                       "url=http://127.0.0.1:9 secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=http://127.0.0.1:9;", c.dir, c.dir);
    expect_refused(&c, &p, "with mode=live refuses allow_http");
}


/* A Stripe key says which money it moves: a test key on a mode=live PSP,
 * or a live one on mode=test, is refused, and the key never printed. */
Test(config, refuses_a_stripe_key_of_the_other_mode)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    /* the good configuration: sk_test_ under the default mode=test */
    write_file(str_printf("%s/live.secret", c.dir),
               "sk_live_0123456789abcdef", 0600);
    write_file(str_printf("%s/rktest.secret", c.dir),
               "rk_test_0123456789abcdef", 0600);

    p.psp = str_printf("payments_psp stripe dialect=stripe mode=live "
                       "url=https://api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "has a test Stripe key (sk_test_/rk_test_) in "
                           "secret_file= but mode=live");
    rc = nginx_t(&c, &p, &out);
    cr_assert(strstr(out, "0123456789abcdef") == NULL, "%s", out);

    p.psp = str_printf("payments_psp stripe dialect=stripe mode=live "
                       "url=https://api.stripe.example "
                       "secret_file=%s/rktest.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "has a test Stripe key");

    p.psp = str_printf("payments_psp stripe dialect=stripe mode=test "
                       "url=https://api.stripe.example "
                       "secret_file=%s/live.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    expect_refused(&c, &p, "has a live Stripe key (sk_live_/rk_live_) in "
                           "secret_file= but mode=test");

    /* the matching pair passes */
    p.psp = str_printf("payments_psp stripe dialect=stripe mode=live "
                       "url=https://api.stripe.example "
                       "secret_file=%s/live.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


static char *
psp_with(const conf_t *c, const char *params)
{
    return str_printf("payments_psp stripe dialect=stripe "
                      "url=https://api.stripe.example "
                      "secret_file=%s/psp.secret "
                      "webhook_secret_file=%s/webhook.secret "
                      "hosted=https://checkout.stripe.example %s;",
                      c->dir, c->dir, params);
}


Test(config, takes_a_retry_policy_and_a_breaker)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = psp_with(&c, "retries=3 retry_base=50ms retry_max=1s breaker=10 "
                         "breaker_open=1m");
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    p.psp = psp_with(&c, "breaker=0");
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_a_retry_policy_or_breaker_out_of_range)
{
    conf_t        c;
    pieces_t      p;
    size_t        i;
    const char   *bad[] = {
        "retry_base=0", "retry_base=2m", "retry_max=0", "retry_max=x",
        "breaker=-1", "breaker=1001", "breaker_open=500ms",
        "breaker_open=2h",
    };

    conf_init(&c);
    p = good(&c);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p.psp = psp_with(&c, bad[i]);
        expect_refused(&c, &p, "invalid");
    }

    p.psp = psp_with(&c, "retry_base=2s retry_max=1s");
    expect_refused(&c, &p, "needs retry_base= at most retry_max=");
}


Test(config, notify_disable_after_is_a_time_and_a_bare_count_is_refused)
{
    int          rc;
    size_t       i;
    char        *out, *key;
    conf_t       c;
    pieces_t     p;

    static const struct { const char *value; int ok; }  cases[] = {
        { "3d", 1 }, { "12h", 1 }, { "90s", 1 }, { "off", 1 }, { "0", 1 },
        { "50", 0 }, { "5", 0 }, { "", 0 }, { "3x", 0 },
    };

    conf_init(&c);
    p = good(&c);
    key = encryption_key(&c, "enc.key", "k1 " ENC_K1 "\n", 0600);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p.extra = str_printf("%s payments_notify on disable_after=%s;", key,
                             cases[i].value);
        rc = nginx_t(&c, &p, &out);

        if (cases[i].ok) {
            cr_expect_eq(rc, 0, "disable_after=%s: %s", cases[i].value, out);

        } else {
            cr_expect_neq(rc, 0, "disable_after=%s accepted", cases[i].value);
        }
    }

    p.extra = str_printf("%s payments_notify on disable_after=50;", key);
    rc = nginx_t(&c, &p, &out);
    cr_expect(strstr(out, "with its unit") != NULL, "%s", out);
}


/* payments_risk: an incomplete or insecure provider is refused */
Test(config, refuses_an_incomplete_or_insecure_risk_provider)
{
    int        rc;
    char      *out, *rs, *ra;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    rs = str_printf("%s/risk.secret", c.dir);
    ra = str_printf("%s/risk_answer.secret", c.dir);
    write_file(rs, "rk_0123456789abcdef0123456789abcdef", 0600);
    write_file(ra, "rka_0123456789abcdef0123456789abcdef", 0600);

    /* a good one passes, in a location as in http{} */
    p.location = str_printf("location / { payments; payments_risk "
                            "url=https://risk.example/v1/check "
                            "secret_file=%s answer_secret_file=%s "
                            "on_error=review currencies=EUR,USD "
                            "min_amount=1000; }", rs, ra);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "nginx -t refused it:\n%s", out);

    p.location = "location / { payments; }";

    p.extra = str_printf("payments_risk secret_file=%s;", rs);
    expect_refused(&c, &p, "needs url=");

    p.extra = "payments_risk url=https://risk.example/check;";
    expect_refused(&c, &p, "needs secret_file=");

    /* http only to a loopback mock, with allow_http */
    p.extra = str_printf("payments_risk url=http://risk.example/check "
                         "secret_file=%s;", rs);
    expect_refused(&c, &p, "is not an https URL (http needs allow_http)");

    p.extra = str_printf("payments_risk url=http://risk.example/check "
                         "secret_file=%s allow_http;", rs);
    expect_refused(&c, &p, "not on a loopback address");

    /* a short secret, one others can read */
    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s/short.key;", c.dir);
    expect_refused(&c, &p, "short.key");

    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s/open.key;", c.dir);
    expect_refused(&c, &p, "open.key");

    /* the provider's answers signed with our own secret */
    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s answer_secret_file=%s;", rs, rs);
    expect_refused(&c, &p, "needs answer_secret_file= other than "
                           "secret_file=");

    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s on_error=maybe;", rs);
    expect_refused(&c, &p, "invalid parameter \"on_error=maybe\"");

    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s currencies=EURO;", rs);
    expect_refused(&c, &p, "invalid parameter \"currencies=EURO\"");

    p.extra = str_printf("payments_risk url=http://127.0.0.1:9/check "
                         "secret_file=%s allow_http "
                         "pin=sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;",
                         rs);
    expect_refused(&c, &p, "with pin= needs an https url=");

    /* a pin that is not one: refused as payments_psp's are */
    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s pin=sha256//short=;", rs);
    expect_refused(&c, &p, "\"payments_risk\": pin=\"sha256//short=\" is "
                           "not sha256// and the base64 of a SHA-256");

    /* the lease must hold the provider's timeout too */
    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s timeout=20s;", rs);
    expect_refused(&c, &p, "\"payments_idempotency_lease\" 30s is shorter "
                           "than \"payments_risk\" timeout= 20000ms");

    /* a review outliving the key an approval claims again */
    p.extra = str_printf("payments_risk url=https://risk.example/check "
                         "secret_file=%s review=2d;", rs);
    expect_refused(&c, &p, "review= 172800s is not shorter than "
                           "\"payments_idempotency_ttl\"");

    /* the review API's key: 32 bytes at least, 0600 */
    p.extra = str_printf("payments_admin_key_file %s/short.key;", c.dir);
    expect_refused(&c, &p, "short.key");
    p.extra = str_printf("payments_admin_key_file %s/open.key;", c.dir);
    expect_refused(&c, &p, "open.key");
}


/* payments_risk after_payment=: asked by the sweeper, one provider */
Test(config, checks_the_risk_check_after_the_payment)
{
    int        rc;
    char      *out, *rs, *risk, *psp;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    rs = str_printf("%s/risk.secret", c.dir);
    write_file(rs, "rk_0123456789abcdef0123456789abcdef", 0600);
    risk = str_printf("payments_risk url=https://risk.example/check "
                      "secret_file=%s", rs);

    p.extra = str_printf("%s after_payment=on after_payment_retry=2h;",
                         risk);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "nginx -t refused it:\n%s", out);

    p.extra = str_printf("%s after_payment=off;", risk);
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "nginx -t refused it:\n%s", out);

    p.extra = str_printf("%s after_payment=maybe;", risk);
    expect_refused(&c, &p, "invalid parameter \"after_payment=maybe\"");

    p.extra = str_printf("%s after_payment=on after_payment_retry=2d;", risk);
    expect_refused(&c, &p, "invalid parameter \"after_payment_retry=2d\"");

    p.extra = str_printf("%s after_payment_retry=2h;", risk);
    expect_refused(&c, &p, "with after_payment_retry= needs "
                           "after_payment=on");

    p.extra = "payments_risk off after_payment=on;";
    expect_refused(&c, &p, "invalid parameter \"off\"");

    /* nobody would ask without the sweeper */
    p.extra = str_printf("payments_sweeper off; %s after_payment=on;", risk);
    expect_refused(&c, &p, "after_payment=on needs \"payments_sweeper on\"");

    /* under the sweeper's lease: 3 x 300ms + 2 s, renewed every 300ms
     * (the psp's look-ups fit it) */
    psp = strdup(p.psp);
    psp[strlen(psp) - 1] = '\0';
    p.psp = str_printf("%s timeout=1s;", psp);
    p.extra = str_printf("payments_sweeper on interval=300ms; %s "
                         "after_payment=on timeout=2s;", risk);
    expect_refused(&c, &p, "after_payment=on: a request may take its "
                           "timeout=2000ms, longer than the sweeper's lease "
                           "allows (one must end within 1700ms)");

    /* the sweeper asks one provider */
    p.extra = str_printf("%s after_payment=on;", risk);
    p.location = str_printf("location / { payments; %s after_payment=on; }",
                            risk);
    expect_refused(&c, &p, "with after_payment=on is duplicate");
}


/* payments_route: checked against the PSPs and their dialects' currencies */

static char *
route_psps(const conf_t *c)
{
    return str_printf("payments_psp stripe dialect=stripe "
                      "url=https://api.stripe.example "
                      "secret_file=%s/psp.secret "
                      "webhook_secret_file=%s/webhook.secret "
                      "hosted=https://checkout.stripe.example;\n"
                      "  payments_psp stripe2 dialect=stripe "
                      "url=https://api.stripe.example "
                      "secret_file=%s/psp.secret "
                      "webhook_secret_file=%s/webhook.secret "
                      "hosted=https://checkout.stripe.example;",
                      c->dir, c->dir, c->dir, c->dir);
}


Test(config, takes_routes_with_conditions_weights_and_a_default)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = route_psps(&c);
    p.extra = "payments_route name=eu currency=EUR,GBP amount<=50000 "
              "psps=stripe2,stripe;\n"
              "  payments_route merchant=m_1,m_2 psps=stripe:70,stripe2:30;\n"
              "  payments_route psps=stripe;";

    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "nginx -t refused routes:\n%s", out);
}


Test(config, refuses_a_route_naming_an_unknown_psp)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.extra = "payments_route currency=EUR psps=stripe,adyen;";

    expect_refused(&c, &p, "names \"adyen\", which no payments_psp defines");
}


Test(config, refuses_a_route_whose_psp_cannot_take_its_currency_exactly)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    /* Stripe takes KWD's three decimals in tens only */
    p.extra = "payments_route currency=EUR,KWD psps=stripe;";

    expect_refused(&c, &p, "the stripe dialect of \"stripe\" cannot take "
                           "every KWD amount in exact minor units");
}


Test(config, refuses_a_route_after_the_default_and_a_psp_named_twice)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);
    p.psp = route_psps(&c);
    p.extra = "payments_route psps=stripe;\n"
              "  payments_route currency=EUR psps=stripe2;";

    expect_refused(&c, &p, "comes after \"default\", which matches every "
                           "checkout: it is never used");

    p.extra = "payments_route psps=stripe,stripe2,stripe;";
    expect_refused(&c, &p, "names \"stripe\" twice");
}


/* --- where nginx -t points, and what it warns of ----------------------- */

/*
 * The checks made once http{} is read name the line of the directive they
 * are about, as nginx's own do ("... in /path/nginx.conf:13"), never the
 * closing brace of http{} (line 15 of nginx_t's file).  Line 12 is the
 * PSP's, 13 the extra directives', 14 the server's.
 */

static void
expect_at(const conf_t *c, const pieces_t *p, int refused,
    const char *message, unsigned line)
{
    int    rc;
    char  *out, *m, *eol, *said;

    rc = nginx_t(c, p, &out);
    cr_assert_eq(rc != 0, refused, "nginx -t exited %d:\n%s", rc, out);

    m = strstr(out, message);
    cr_assert_not_null(m, "nginx -t said:\n%s\nexpected: %s", out, message);

    /* the line of nginx's output that says it */
    eol = strchr(m, '\n');
    said = strndup(m, eol ? (size_t) (eol - m) : strlen(m));
    cr_assert(strstr(said, str_printf(" in %s/nginx.conf:%u", c->dir, line))
              != NULL, "nginx -t said:\n%s\nexpected \"%s\" at "
              "nginx.conf:%u", out, message, line);
}


Test(config, names_the_directive_line_of_a_check_made_after_http)
{
    size_t       i;
    conf_t       c;
    pieces_t     p;
    const char  *enc;
    struct {
        const char  *extra;
        const char  *message;
    } refused[] = {
        { "payments_max_body 100;", "\"payments_max_body\" must be 1k..1m" },
        { "payments_idempotency_ttl 1h;", "must be at least 24h" },
        { "payments_idempotency_lease 20s;", "raise the lease to at least" },
        { "payments_session_lifetime 10m;", "between 30m and 24h" },
        { "payments_auth_cache 120s;", "must be at most 60s" },
        { "payments_database_replan 500ms;",
          "\"payments_database_replan\" must be 1s..1h" },
        { "payments_database_replan 2h;",
          "\"payments_database_replan\" must be 1s..1h" },
        { "payments_sweeper on after=1h alert=30m;",
          "alert=1800 must be longer than after=3600" },
        { "payments_notify on;",
          "payments_notify on needs payments_encryption_key" },
    };

    conf_init(&c);
    p = good(&c);

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        p.extra = refused[i].extra;
        expect_at(&c, &p, 1, refused[i].message, 13);
    }

    /* a PSP's own limit: the lifetime's line when it is given, else the
     * PSP's; the sweeper's lease against a PSP's timeout likewise */
    p.extra = "payments_session_lifetime 1810s;";
    expect_at(&c, &p, 1, "raise it to at least 1830", 13);

    p.extra = "payments_sweeper on interval=300ms;";
    p.psp = psp_with(&c, "timeout=5s");
    expect_at(&c, &p, 1, "longer than the sweeper's lease allows", 13);

    p.extra = "";
    p.psp = psp_with(&c, "timeout=130s");
    expect_at(&c, &p, 1, "longer than the sweeper's lease allows", 12);

    /* the risk provider's, checked as each location is merged */
    write_file(str_printf("%s/risk.secret", c.dir),
               "rk_0123456789abcdef0123456789abcdef", 0600);
    p.psp = psp_with(&c, "");
    p.extra = str_printf("payments_risk url=https://risk.example/v1/check "
                         "secret_file=%s/risk.secret review=2d;", c.dir);
    expect_at(&c, &p, 1, "is not shorter than \"payments_idempotency_ttl\"",
              13);

    /* the warnings: tokens in clear at the PSP's line, /metrics at the
     * "payments" of the location that serves it, the server named by its
     * place when it has no server_name */
    p = good(&c);
    expect_at(&c, &p, 0, "PSP session tokens are stored in clear", 12);
    expect_at(&c, &p, 0, METRICS_WARNING, 14);
    expect_at(&c, &p, 0, str_printf("of the server at %s/nginx.conf:14",
                                    c.dir), 14);

    enc = encryption_key(&c, "enc.key", "k1 " ENC_K1 "\n", 0600);
    p.extra = enc;
    p.listen = "listen 127.0.0.1:1; server_name gw.example;";
    expect_at(&c, &p, 0, "of the server \"gw.example\"", 14);
}


/* Every "invalid parameter" says what the parameter takes. */
Test(config, an_invalid_parameter_says_its_allowed_range)
{
    size_t       i;
    conf_t       c;
    pieces_t     p;
    struct {
        const char  *psp;
        const char  *extra;
        const char  *message;
    } bad[] = {
        { "retries=11", "", "invalid parameter \"retries=11\": 0..10" },
        { "webhook_tolerance=2h", "",
          "invalid parameter \"webhook_tolerance=2h\": 1s..1h" },
        { "breaker=1001", "", "invalid parameter \"breaker=1001\": 0..1000" },
        { "breaker_open=2h", "",
          "invalid parameter \"breaker_open=2h\": 1s..1h" },
        { "retry_base=2m", "",
          "invalid parameter \"retry_base=2m\": 1ms..60s" },
        { "mode=prod", "", "invalid parameter \"mode=prod\": live or test" },
        { "", "payments_sweeper on batch=0;",
          "invalid parameter \"batch=0\" in \"payments_sweeper\": 2..1000" },
        { "", "payments_sweeper on batch=1;",
          "invalid parameter \"batch=1\" in \"payments_sweeper\": 2..1000" },
        { "", "payments_sweeper on after=31d;",
          "invalid parameter \"after=31d\" in \"payments_sweeper\": "
          "1s..30d" },
        { "", "payments_notify off interval=10ms;",
          "invalid parameter \"interval=10ms\" in \"payments_notify\": "
          "50ms..1h" },
        { "", "payments_notify off allow_loopback=yes;",
          "invalid parameter \"allow_loopback=yes\" in \"payments_notify\":"
          " on or off" },
        { "", "payments_limit_zone api size=1m rate=10r/s burst=3;",
          "invalid parameter \"burst=3\": it takes size=, rate=, store=, "
          "gateways= and on_error=" },
        { "", "payments_limit_failures cards size=1m window=1h max=5 "
              "rate=1r/s;",
          "invalid parameter \"rate=1r/s\": it takes size=, window=, max=, "
          "store=, gateways= and on_error=" },
        { "", "RISK on_error=maybe;",
          "invalid parameter \"on_error=maybe\" of \"payments_risk\": "
          "deny, allow or review" },
    };

    conf_init(&c);
    p = good(&c);
    write_file(str_printf("%s/risk.secret", c.dir),
               "rk_0123456789abcdef0123456789abcdef", 0600);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p.psp = psp_with(&c, bad[i].psp);
        p.extra = bad[i].extra;

        if (strncmp(p.extra, "RISK ", 5) == 0) {
            p.extra = str_printf("payments_risk url=https://risk.example/v1 "
                                 "secret_file=%s/risk.secret %s", c.dir,
                                 p.extra + 5);
        }

        expect_refused(&c, &p, bad[i].message);
    }
}


/* A CA file is read and parsed at nginx -t: one that holds no PEM
 * certificate is refused there, not at the first handshake. */
Test(config, refuses_a_ca_file_that_is_not_pem)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    write_file(str_printf("%s/not-a-ca.pem", c.dir), "hello\n", 0644);
    write_file(str_printf("%s/half.pem", c.dir),
               "-----BEGIN CERTIFICATE-----\nAAAA\n"
               "-----END CERTIFICATE-----\n", 0644);

    p.psp = psp_with(&c, str_printf("ca_file=%s/not-a-ca.pem", c.dir));
    expect_refused(&c, &p, "holds no PEM certificate");

    p.psp = psp_with(&c, str_printf("ca_file=%s/half.pem", c.dir));
    expect_refused(&c, &p, "holds no PEM certificate");

    p = good(&c);
    p.extra = str_printf("payments_notify off ca=%s/not-a-ca.pem;", c.dir);
    expect_refused(&c, &p, "holds no PEM certificate");

    /* a real one passes */
    openssl_run(str_printf("req -x509 -newkey ec -pkeyopt "
                           "ec_paramgen_curve:prime256v1 -nodes -days 2 "
                           "-subj /CN=ca.example -keyout %s/ca.key "
                           "-out %s/ca.pem", c.dir, c.dir));
    p.extra = "";
    p.psp = psp_with(&c, str_printf("ca_file=%s/ca.pem", c.dir));
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


static void
expect_warning(const conf_t *c, const pieces_t *p, const char *warning,
    int warned)
{
    int    rc;
    char  *out;

    rc = nginx_t(c, p, &out);
    cr_assert_eq(rc, 0, "nginx -t refused it:\n%s", out);
    cr_assert_eq(strstr(out, warning) != NULL, warned,
                 "nginx -t said:\n%s\n%s: %s", out,
                 warned ? "expected" : "did not expect", warning);
}


static const char *
tls_listen(const conf_t *c, const char *more)
{
    if (access(str_printf("%s/tls.pem", c->dir), R_OK) != 0) {
        openssl_run(str_printf("req -x509 -newkey ec -pkeyopt "
                               "ec_paramgen_curve:prime256v1 -nodes -days 2 "
                               "-subj /CN=gw.example -keyout %s/tls.key "
                               "-out %s/tls.pem", c->dir, c->dir));
    }

    return str_printf("listen 127.0.0.1:1 ssl; ssl_certificate %s/tls.pem; "
                      "ssl_certificate_key %s/tls.key; %s", c->dir, c->dir,
                      more);
}


#define NO_TLS_WARNING  "no TLS listener serves \"payments\""

/* The API on plain HTTP only answers 403 tls_required to every call:
 * nginx -t says so beforehand. */
Test(config, warns_when_no_tls_listener_serves_payments)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    expect_warning(&c, &p, NO_TLS_WARNING, 1);

    p.listen = tls_listen(&c, "ssl_protocols TLSv1.2 TLSv1.3;");
    expect_warning(&c, &p, NO_TLS_WARNING, 0);

    /* a loopback test rig that says so */
    p = good(&c);
    p.location = "location / { payments_plain_http loopback; payments; }";
    expect_warning(&c, &p, NO_TLS_WARNING, 0);
}


Test(config, warns_of_old_tls_protocols_and_non_aead_ciphers)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.listen = tls_listen(&c, "ssl_protocols TLSv1 TLSv1.2;");
    expect_warning(&c, &p, "TLSv1 or TLSv1.1", 1);

    p.listen = tls_listen(&c, "ssl_protocols TLSv1.1 TLSv1.2;");
    expect_warning(&c, &p, "TLSv1 or TLSv1.1", 1);

    p.listen = tls_listen(&c, "ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers "
                              "ECDHE-ECDSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES128-SHA;");
    expect_warning(&c, &p, "ECDHE-ECDSA-AES128-SHA", 1);
    expect_warning(&c, &p, "TLSv1 or TLSv1.1", 0);

    /* the example's settings are quiet */
    p.listen = tls_listen(&c, "ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers "
                              "ECDHE-ECDSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305;");
    expect_warning(&c, &p, "non-AEAD", 0);
    expect_warning(&c, &p, "TLSv1 or TLSv1.1", 0);
}


Test(config, warns_of_loopback_notifications_and_a_database_in_clear)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.extra = str_printf("%s payments_notify on allow_loopback=on;",
                         encryption_key(&c, "enc.key", "k1 " ENC_K1 "\n",
                                        0600));
    expect_warning(&c, &p, "allow_loopback=on", 1);

    p.extra = str_printf("%s payments_notify on;",
                         encryption_key(&c, "enc.key", "k1 " ENC_K1 "\n",
                                        0600));
    expect_warning(&c, &p, "allow_loopback=on", 0);

    p = good(&c);
    p.database = "payments_database \"hostaddr=10.1.2.3 port=5 "
                 "dbname=payments user=payments_gateway sslmode=disable\";";
    expect_warning(&c, &p, "sslmode=disable", 1);

    p.database = "payments_database \"hostaddr=127.0.0.1 port=5 "
                 "dbname=payments user=payments_gateway sslmode=disable\";";
    expect_warning(&c, &p, "sslmode=disable", 0);

    p.database = "payments_database \"host=/run/postgresql "
                 "dbname=payments user=payments_gateway sslmode=disable\";";
    expect_warning(&c, &p, "sslmode=disable", 0);
}


/* Several servers without target_session_attrs=read-write: libpq may
 * choose a standby or a fenced primary, and the gateway's reconnecting
 * cannot lead it away; nginx -t says so, and starts. */
Test(config, warns_of_several_servers_without_a_writable_target)
{
    conf_t     c;
    pieces_t   p;

#define SEVERAL_WARNING  "servers without target_session_attrs=read-write"

    conf_init(&c);
    p = good(&c);

    p.database = "payments_database \"hostaddr=127.0.0.1,127.0.0.2 "
                 "port=5,6 dbname=payments user=payments_gateway\";";
    expect_warning(&c, &p, "\"payments_database\": 2 servers without "
                           "target_session_attrs=read-write", 1);

    p.database = "payments_database \"host=/run/a,/run/b,/run/c "
                 "dbname=payments target_session_attrs=any\";";
    expect_warning(&c, &p, "\"payments_database\": 3 " SEVERAL_WARNING, 1);

    p.database = "payments_database \"postgresql://127.0.0.1:5,"
                 "127.0.0.2:6/payments?hostaddr=127.0.0.1,127.0.0.2\";";
    expect_warning(&c, &p, SEVERAL_WARNING, 1);

    p.database = "payments_shard b \"hostaddr=127.0.0.1,127.0.0.2 "
                 "dbname=payments target_session_attrs=prefer-standby\";";
    expect_warning(&c, &p, "\"payments_shard\" \"b\": 2 "
                           SEVERAL_WARNING, 1);

    /* told to take a writable server, or only one server: quiet */
    p.database = "payments_database \"hostaddr=127.0.0.1,127.0.0.2 "
                 "port=5,6 dbname=payments user=payments_gateway "
                 "target_session_attrs=read-write\";";
    expect_warning(&c, &p, SEVERAL_WARNING, 0);

    p.database = "payments_shard b \"hostaddr=127.0.0.1,127.0.0.2 "
                 "dbname=payments target_session_attrs=primary\";";
    expect_warning(&c, &p, SEVERAL_WARNING, 0);

    p = good(&c);
    expect_warning(&c, &p, SEVERAL_WARNING, 0);

#undef SEVERAL_WARNING
}


/* Links are made of the origin and the gateway's own paths: an origin
 * with a path would make every link one nginx does not serve. */
Test(config, refuses_a_public_origin_with_a_path)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.origin = "payments_public_origin https://gw.example/pay;";
    expect_refused(&c, &p, "has a path");

    p.origin = "payments_public_origin https://gw.example/pay/;";
    expect_refused(&c, &p, "has a path");

    p.origin = "payments_public_origin https://gw.example/;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* user:password@ in a PSP's URL is refused for what it is, and the
 * password is not repeated in the message. */
Test(config, refuses_user_info_in_a_psp_url_without_printing_it)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.psp = str_printf("payments_psp stripe dialect=stripe "
                       "url=https://user:hunter2@api.stripe.example "
                       "secret_file=%s/psp.secret "
                       "webhook_secret_file=%s/webhook.secret "
                       "hosted=https://checkout.stripe.example;",
                       c.dir, c.dir);
    rc = nginx_t(&c, &p, &out);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(out, "has user info") != NULL, "%s", out);
    cr_assert(strstr(out, "hunter2") == NULL, "the password printed:\n%s",
              out);
}


/* Every nginx configuration block of README.md and the doc/ pages passes
 * nginx -t with this module, each fragment wrapped in the context its tag
 * names, its files made with placeholder contents
 * (ci/doc-nginx-check.sh). */
Test(config, every_nginx_block_of_the_docs_passes_nginx_t, .timeout = 60)
{
    int      rc;
    char    *out;
    conf_t   c;

    conf_init(&c);

    rc = system(str_printf("bash %s/ci/doc-nginx-check.sh %s > %s/docs.out "
                           "2>&1", env("PAY_TEST_ROOT"), c.module, c.dir));
    out = file_read(str_printf("%s/docs.out", c.dir), NULL);
    cr_assert_eq(rc, 0, "ci/doc-nginx-check.sh:\n%s", out ? out : "");
    cr_assert(out != NULL && strstr(out, " 0 failed") != NULL, "%s", out);
}


/* Merchant shards (doc/plans/shards.md): the directives exist; routing
 * over several shards does not yet, so nginx -t refuses what would send
 * a merchant's requests to another merchant's shard. */

#define SHARD_A  "payments_shard a \"hostaddr=127.0.0.1 port=5 " \
                 "dbname=payments user=payments_gateway\""
#define SHARD_B  "payments_shard b \"hostaddr=127.0.0.1 port=6 " \
                 "dbname=payments user=payments_gateway\""


Test(config, one_named_shard_passes_as_payments_database_does)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.database = SHARD_A " pool=2 timeout=2s queue=10 home;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    /* and "payments" needs one database or the other before it */
    p.database = "";
    expect_refused(&c, &p, "requires \"payments_database\" or "
                           "\"payments_shard\" before it");
}


Test(config, a_payments_location_serves_two_shards)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    /* every route, webhook and background job finds its merchant's shard
     * (doc/ngx_http_payments_module.md, payments_shard) */
    p.database = SHARD_A "; " SHARD_B ";";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    /* and without a payments location, their lines are checked alike */
    p.location = "location / { return 204; }";
    p.extra = "payments_shard_directory size=1m refresh=500ms;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


Test(config, refuses_payments_shard_mixed_with_payments_database)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.extra = SHARD_A ";";
    expect_refused(&c, &p, "\"payments_shard\" and \"payments_database\" "
                           "do not mix");

    p.database = SHARD_A ";";
    p.extra = "payments_database \"hostaddr=127.0.0.1 dbname=payments\";";
    expect_refused(&c, &p, "\"payments_database\" and \"payments_shard\" "
                           "do not mix");
}


Test(config, refuses_a_bad_reserved_or_repeated_shard_name)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.database = "payments_shard EU \"hostaddr=127.0.0.1 dbname=p\";";
    expect_refused(&c, &p, "\"payments_shard\" \"EU\": a shard name is made "
                           "of a-z, 0-9 and _");

    p.database = "payments_shard abcdefghijklmnopq "
                 "\"hostaddr=127.0.0.1 dbname=p\";";
    expect_refused(&c, &p, "a shard name has 1 to 16 characters");

    p.database = "payments_shard default \"hostaddr=127.0.0.1 dbname=p\";";
    expect_refused(&c, &p, "the shard name \"default\" is "
                           "payments_database's");

    p.database = SHARD_A "; payments_shard a \"hostaddr=127.0.0.1 "
                 "dbname=q\";";
    expect_refused(&c, &p, "\"payments_shard\" \"a\" is duplicate");
}


Test(config, refuses_two_home_shards)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.location = "location / { return 204; }";
    p.database = SHARD_A " home; " SHARD_B " home;";
    expect_refused(&c, &p, "\"payments_shard\" \"b\" is a second \"home\" "
                           "(the first is \"a\")");
}


Test(config, checks_a_shards_connection_string_as_payments_databases)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.database = "payments_shard b \"host=db.example dbname=payments\";";
    expect_refused(&c, &p, "\"payments_shard\" \"b\" needs a numeric "
                           "\"hostaddr=\" or a unix socket \"host=/dir\" for "
                           "every server (entry 1 has neither)");

    p.database = "payments_shard b \"hostaddr=127.0.0.1 dbname=payments "
                 "password=hunter2\";";
    expect_refused(&c, &p, "\"payments_shard\" \"b\": do not put a password "
                           "in nginx.conf");

    p.database = "payments_shard b \"hostaddr=10.1.2.3 dbname=payments "
                 "sslmode=disable\";";
    expect_warning(&c, &p, "\"payments_shard\" \"b\": sslmode=disable", 1);
}


Test(config, refuses_shard_parameters_out_of_range)
{
    int        rc;
    char      *out;
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.database = SHARD_A " pool=0;";
    expect_refused(&c, &p, "invalid parameter \"pool=0\" in "
                           "\"payments_shard\": 1..256");

    p.database = SHARD_A " timeout=0;";
    expect_refused(&c, &p, "invalid parameter \"timeout=0\"");

    p.database = SHARD_A " primary;";
    expect_refused(&c, &p, "invalid parameter \"primary\"");

    /* the shard's database breaker (_pg.c) */
    p.database = SHARD_A " breaker=1001;";
    expect_refused(&c, &p, "invalid parameter \"breaker=1001\" in "
                           "\"payments_shard\": 0..1000 (0: no breaker)");

    p.database = SHARD_A " breaker=-1;";
    expect_refused(&c, &p, "invalid parameter \"breaker=-1\"");

    p.database = SHARD_A " breaker_open=50ms;";
    expect_refused(&c, &p, "invalid parameter \"breaker_open=50ms\" in "
                           "\"payments_shard\": 100ms..10m");

    p.database = SHARD_A " breaker_open=11m;";
    expect_refused(&c, &p, "invalid parameter \"breaker_open=11m\"");

    p.database = SHARD_A " breaker=0 breaker_open=100ms;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);

    p.database = SHARD_A " breaker=1000 breaker_open=10m;";
    rc = nginx_t(&c, &p, &out);
    cr_assert_eq(rc, 0, "%s", out);
}


/* the longest shard's timeout= counts in the lease's check */
Test(config, a_shards_timeout_counts_in_the_lease_check)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.database = SHARD_A " timeout=20s;";
    expect_refused(&c, &p, "\"payments_idempotency_lease\" 30s is shorter "
                           "than \"payments_request_timeout\" 15000ms plus "
                           "3 times \"payments_database_timeout\" 20000ms");
}


Test(config, warns_when_a_shards_pool_exceeds_max_connections)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.database = SHARD_A " pool=101;";
    expect_warning(&c, &p, "\"payments_shard\" \"a\": pool=101 times 1 "
                           "workers is 101 connections", 1);

    p.database = SHARD_A " pool=100;";
    expect_warning(&c, &p, "max_connections", 0);
}


Test(config, shard_directory_needs_shards_and_a_size_of_64k)
{
    conf_t     c;
    pieces_t   p;

    conf_init(&c);
    p = good(&c);

    p.extra = "payments_shard_directory;";
    expect_refused(&c, &p, "\"payments_shard_directory\" needs "
                           "\"payments_shard\" lines");

    p.database = SHARD_A ";";
    p.extra = "payments_shard_directory size=32k;";
    expect_refused(&c, &p, "invalid parameter \"size=32k\" in "
                           "\"payments_shard_directory\": 64k or more");

    p.extra = "payments_shard_directory refresh=50ms;";
    expect_refused(&c, &p, "invalid parameter \"refresh=50ms\"");

    p.extra = "payments_shard_directory; payments_shard_directory;";
    expect_refused(&c, &p, "\"payments_shard_directory\" directive is "
                           "duplicate");
}
