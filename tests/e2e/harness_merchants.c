/*
 * End-to-end test harness: merchants and the merchant API.
 * What it offers: harness_merchants.h.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <payments/apikey.h>

#include "harness.h"


/* -- merchants and the merchant API ----------------------------------------- */

static int find_key(const char *s, merchant_t *m);

int
merchant_tool(const char *a1, const char *a2, const char *a3, char **out)
{
    char  *tool;
    int    rc;

    tool = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));

    {
        char *const  argv[] = {
            tool, (char *) "--db", (char *) env("PAY_TEST_PG"),
            (char *) a1, (char *) a2, (char *) a3, NULL
        };

        rc = run(argv, out);
    }

    free(tool);
    return rc;
}


/* bin/payments-merchant with the words of pre (NULL-terminated: how it
 * reaches the database), then args */
static int
merchant_tool_run(const char *const *pre, const char *const *args,
    char **out)
{
    int           rc;
    char         *argv[24];
    size_t        n, i;

    /* the endpoint commands seal with the gateway's key file, through
     * this build's payments-secrets */
    if (getenv("PAY_TEST_ENCRYPTION_KEY") != NULL) {
        setenv("PAYMENTS_KEY_FILE", getenv("PAY_TEST_ENCRYPTION_KEY"), 1);
    }

    /* this build's, unless the test chose another */
    setenv("PAYMENTS_SECRETS", build_file("payments-secrets"), 0);

    argv[0] = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    n = 1;

    for (i = 0; pre[i] != NULL && n < 23; i++) {
        argv[n++] = (char *) pre[i];
    }

    for (i = 0; args[i] != NULL && n < 23; i++) {
        argv[n++] = (char *) args[i];
    }

    argv[n] = NULL;

    rc = run(argv, out);
    free(argv[0]);

    return rc;
}


int
merchant_toolv(const char *const *args, char **out)
{
    const char  *pre[] = { "--db", env("PAY_TEST_PG"), NULL };

    return merchant_tool_run(pre, args, out);
}


int
merchant_toolv_of(const merchant_t *m, const char *const *args, char **out)
{
    if (m->shard[0] == '\0') {
        return merchant_toolv(args, out);
    }

    {
        const char  *pre[] = {
            "--shards", env("PAY_TEST_SHARDS_FILE"), "--shard", m->shard,
            NULL
        };

        return merchant_tool_run(pre, args, out);
    }
}


int
merchant_key_from(const char *out, merchant_t *m)
{
    if (find_key(out, m) != 0) {
        return -1;
    }

    secret_used(m->key);
    return 0;
}


/* The first "mk_..." word of s (at its start or after white space). */
static int
find_key(const char *s, merchant_t *m)
{
    size_t       n;
    const char  *p, *last;

    last = NULL;

    for (p = s; (p = strstr(p, "mk_")) != NULL; p += 3) {
        if (p == s || isspace((unsigned char) p[-1])) {
            last = p;
            break;
        }
    }

    if (last == NULL) {
        return -1;
    }

    n = strspn(last, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-");

    /* mk_ mode _ key_id(12) _ secret */
    if (n >= sizeof(m->key) || n < 3 + 4 + 1 + 12 + 1 + 1
        || last[7] != '_' || last[20] != '_')
    {
        return -1;
    }

    memcpy(m->key, last, n);
    m->key[n] = '\0';
    memcpy(m->key_id, last + 8, 12);
    m->key_id[12] = '\0';

    return 0;
}


void
merchant_new(merchant_t *m)
{
    merchant_new_mode(m, "test");
}


/* An API key of mode as bin/payments-merchant makes one (make_key):
 * "mk_<mode>_<key id>_<secret>", the key id PAY_APIKEY_ID_LEN characters
 * of [A-Za-z0-9], the secret 32 random bytes in base64url
 * (b64url_encode); into m->key and m->key_id, and the key's hash as the
 * gateway computes it (pay_apikey_hash) into hash. */
static void
merchant_key_make(merchant_t *m, const char *mode, char hash[65])
{
    static const char  alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789";
    char              *secret;
    size_t             i, n;
    unsigned char      r[32];

    cr_assert_eq(RAND_bytes(r, sizeof(r)), 1, "RAND_bytes");
    secret = b64url_encode(r, sizeof(r));

    /* a byte's low 6 bits pick one of the 62 characters; 62 and 63 are
     * skipped (no modulo bias) */
    for (n = 0; n < PAY_APIKEY_ID_LEN; ) {
        cr_assert_eq(RAND_bytes(r, sizeof(r)), 1, "RAND_bytes");

        for (i = 0; i < sizeof(r) && n < PAY_APIKEY_ID_LEN; i++) {
            if ((r[i] & 63) < 62) {
                m->key_id[n++] = alnum[r[i] & 63];
            }
        }
    }
    m->key_id[n] = '\0';

    n = (size_t) snprintf(m->key, sizeof(m->key), "mk_%s_%s_%s", mode,
                          m->key_id, secret);
    cr_assert(n < sizeof(m->key));
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    OPENSSL_cleanse(r, sizeof(r));

    pay_apikey_hash(m->key, n, hash);
}


/* m->id from pay_auth on c, which must know m's key as merchant name's */
static void
merchant_known(merchant_t *m, PGconn *c, const char *name)
{
    char        *id;
    const char  *params[1];

    params[0] = m->key_id;
    id = db_scalar_on(c, "SELECT merchant_id FROM pay_auth($1)", 1, params);
    cr_assert_not_null(id, "pay_auth does not know the new key %s",
                       m->key_id);
    cr_assert_str_eq(id, name, "pay_auth answers another merchant");
    cr_assert(strlen(id) < sizeof(m->id));
    strcpy(m->id, id);
    free(id);
}


/* a new merchant of mode on shard, else in the database conninfo db
 * names (NULL: PAY_TEST_PG's).  The three rows bin/payments-merchant's
 * create writes (the merchant, its key's hash, SHOP_ORIGIN), written
 * here in one transaction: the tool costs a process tree (bash, psql,
 * od, sha256sum) a call, and about 900 tests make merchants.  The tool
 * itself is tested by the keys and merchant_tool suites, and
 * merchant_tool::the_harness_makes_a_merchant_as_the_tool_does compares
 * the two. */
static void
merchant_create(merchant_t *m, const char *mode, const char *shard,
    const char *db)
{
    char         *name, hash[65];
    PGconn       *c;
    const char   *params[4];

    memset(m, 0, sizeof(merchant_t));

    /* [a-z0-9_]{1,23}: "m_" + 21 */
    name = uid("m");
    cr_assert(strlen(name) <= 23, "merchant id %s is too long", name);

    if (shard != NULL) {
        cr_assert(strlen(shard) < sizeof(m->shard), "shard %s", shard);
        strcpy(m->shard, shard);
    }

    merchant_key_make(m, mode, hash);
    secret_used(m->key);

    if (db != NULL) {
        c = PQconnectdb(db);
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));

    } else {
        c = db_of(m);
    }

    params[0] = name;
    params[1] = mode;
    params[2] = m->key_id;
    params[3] = hash;

    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, "INSERT INTO merchants (merchant_id, name, mode)"
                  " VALUES ($1, $1, $2)", 2, params);
    db_exec_on(c, "INSERT INTO api_keys (key_id, merchant_id, key_hash, mode)"
                  " VALUES ($3, $1, $4, $2)", 4, params);
    params[1] = SHOP_ORIGIN;
    db_exec_on(c, "INSERT INTO merchant_return_origins (merchant_id, origin)"
                  " VALUES ($1, $2)", 2, params);
    db_exec_on(c, "COMMIT", 0, NULL);

    merchant_known(m, c, name);
    if (db != NULL) {
        PQfinish(c);
    }

    free(name);
}


void
merchant_new_by_tool(merchant_t *m)
{
    int    rc;
    char  *out, *name, *tool;

    memset(m, 0, sizeof(merchant_t));

    tool = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    name = uid("m");
    cr_assert(strlen(name) <= 23, "merchant id %s is too long", name);

    {
        char *const  argv[] = {
            tool, (char *) "--db", (char *) env("PAY_TEST_PG"),
            (char *) "create", (char *) "--id", name, (char *) "--name", name,
            (char *) "--mode", (char *) "test",
            (char *) "--origin", (char *) SHOP_ORIGIN, NULL
        };

        rc = run(argv, &out);
    }

    cr_assert_eq(rc, 0, "bin/payments-merchant failed (%d): %s", rc, out);
    cr_assert_eq(find_key(out, m), 0,
                 "bin/payments-merchant printed no API key: %s", out);
    secret_used(m->key);
    merchant_known(m, db(), name);

    free(out);
    free(name);
    free(tool);
}


void
merchant_new_mode(merchant_t *m, const char *mode)
{
    const char  *shard;

    shard = getenv("PAY_TEST_SHARD_DEFAULT");

    merchant_create(m, mode, (shard != NULL && shard[0] != '\0') ? shard
                                                                 : NULL,
                    NULL);
}


void
merchant_new_on(merchant_t *m, const char *shard)
{
    shards_need(2);
    merchant_create(m, "test", shard, NULL);
}


void
merchant_new_in(merchant_t *m, const char *conninfo)
{
    merchant_create(m, "test", NULL, conninfo);
}


void
merchant_new_nth(merchant_t *m, unsigned long i)
{
    if (shards_n() < 2) {
        merchant_new(m);
        return;
    }

    merchant_new_on(m, shard_name((int) (i % (unsigned long) shards_n())));
}


PGconn *
db_of(const merchant_t *m)
{
    return db_shard(m->shard);
}


void
merchant_demo(merchant_t *m)
{
    memset(m, 0, sizeof(merchant_t));

    cr_assert_eq(find_key(env("PAY_TEST_MERCHANT_KEY"), m), 0,
                 "PAY_TEST_MERCHANT_KEY is not an API key");
    cr_assert(strlen(env("PAY_TEST_MERCHANT_ID")) < sizeof(m->id));
    strcpy(m->id, env("PAY_TEST_MERCHANT_ID"));

    /* ci/services.sh makes it on the home shard, a */
    if (shards_n() > 1) {
        strcpy(m->shard, "a");
    }
}


json_t *
checkout_new(const char *checkout_id, size_t norders)
{
    char    *po, *seller;
    size_t   i;
    json_t  *co, *orders, *o;

    orders = json_array();

    for (i = 0; i < norders; i++) {
        po = str_printf("%s_p%zu", checkout_id, i + 1);
        seller = str_printf("seller_%zu", i + 1);

        o = json_pack("{s:s, s:s, s:s, s:s}",
                      "payment_order_id", po,
                      "seller_account", seller,
                      "amount", i == 0 ? "10.00" : "5.00",
                      "currency", "USD");
        cr_assert_not_null(o);
        json_array_append_new(orders, o);

        free(po);
        free(seller);
    }

    co = json_pack("{s:s, s:{s:s}, s:o, s:s, s:s, s:s}",
                   "checkout_id", checkout_id,
                   "buyer_info", "email", "ann@example.com",
                   "payment_orders", orders,
                   "success_url", SHOP_ORIGIN "/thanks",
                   "cancel_url", SHOP_ORIGIN "/cart",
                   "psp", env("PAY_TEST_PSP"));
    cr_assert_not_null(co);

    return co;
}


char *
dump(const json_t *j)
{
    char  *s;

    s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(s);
    return s;
}


char *
body_for(const char *checkout_id)
{
    char    *s;
    json_t  *co;

    co = checkout_new(checkout_id, 2);
    s = dump(co);
    json_decref(co);

    return s;
}


/* POST path with exactly these headers (NULL-terminated) */
static resp_t *
api_post_headers(const char *path, const char *const *headers,
    const char *body, size_t len)
{
    req_t  rq;

    rq.method = "POST";
    rq.url = gw_url(path);
    rq.headers = headers;
    rq.body = body;
    rq.len = len;

    return http(&rq);
}


resp_t *
api_post_raw(const char *const *headers, const char *body, size_t len)
{
    return api_post_headers(PATH_PAYMENTS, headers, body, len);
}


resp_t *
api_post(const merchant_t *m, const char *idem_key, const char *body)
{
    return api_post_at(m, PATH_PAYMENTS, idem_key, body);
}


resp_t *
api_post_at(const merchant_t *m, const char *path, const char *idem_key,
    const char *body)
{
    size_t       n;
    resp_t      *r;
    const char  *h[4];
    char        *auth, *idem;

    n = 0;
    auth = NULL;
    idem = NULL;

    h[n++] = "Content-Type: application/json";

    if (m != NULL) {
        auth = str_printf("Authorization: Bearer %s", m->key);
        h[n++] = auth;
    }

    if (idem_key != NULL) {
        idem = str_printf("Idempotency-Key: %s", idem_key);
        h[n++] = idem;
    }

    h[n] = NULL;

    r = api_post_headers(path, h, body, (size_t) -1);

    free(auth);
    free(idem);

    return r;
}


char *
api_post_ok(const merchant_t *m, const char *path, const char *body,
    const char *id_field)
{
    resp_t  *r;

    r = api_post_at(m, path, uid("k"), body);
    cr_assert_eq(r->status, 201, "%s: %ld %s", path, r->status, r->body);

    return strdup(json_string_value(json_object_get(resp_json(r),
                                                    id_field)));
}


resp_t *
api_post_json(const merchant_t *m, const json_t *body)
{
    char    *s, *key;
    resp_t  *r;

    s = dump(body);
    key = uid("key");
    r = api_post(m, key, s);

    free(s);
    free(key);

    return r;
}


json_t *
order_of(json_t *co, size_t i)
{
    json_t  *o;

    o = json_array_get(json_object_get(co, "payment_orders"), i);
    cr_assert_not_null(o, "no payment_orders[%zu]", i);

    return o;
}


resp_t *
api_get_at(const char *origin, const merchant_t *m, const char *path)
{
    req_t        rq;
    resp_t      *r;
    char        *auth;
    const char  *h[2];

    auth = str_printf("Authorization: Bearer %s", m->key);
    h[0] = auth;
    h[1] = NULL;

    rq.method = "GET";
    rq.url = origin != NULL ? str_printf("%s%s", origin, path) : gw_url(path);
    rq.headers = h;
    rq.body = NULL;
    rq.len = 0;

    r = http(&rq);
    free(auth);

    return r;
}


resp_t *
api_get(const merchant_t *m, const char *path)
{
    return api_get_at(NULL, m, path);
}


resp_t *
register_ok(const merchant_t *m, const char *idem_key, const char *body)
{
    resp_t  *r;
    json_t  *j;

    r = api_post(m, idem_key, body);
    cr_assert_eq(r->status, 201, "registration: expected 201, got %ld (%s): %s",
                 r->status, r->error, r->body);

    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING", "registration: %s", r->body);
    expect_request_id(r);

    secret_used(json_string_value(json_object_get(j, "psp_token")));
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    return r;
}


void
secret_used(const char *s)
{
    int     fd;
    char   *line;
    size_t  len;

    if (s == NULL || strlen(s) < 8 || strchr(s, '\n') != NULL) {
        return;
    }

    line = str_printf("%s\n", s);
    len = strlen(line);
    fd = open(run_file("secrets-used"), O_WRONLY | O_CREAT | O_APPEND, 0600);
    cr_assert(fd >= 0, "secrets-used: %s", strerror(errno));
    /* one write of a short line: lines of parallel tests never interleave */
    cr_assert_eq(write(fd, line, len), (ssize_t) len);
    close(fd);
    free(line);
}


char *
nonce(const merchant_t *m, const char *checkout_id)
{
    return str_printf("%s:%s", m->id, checkout_id);
}


long
checkouts_named(const merchant_t *m, const char *co)
{
    const char  *params[] = { m->id, co };

    return atol(db_scalar("SELECT count(*) FROM checkouts WHERE "
                          "merchant_id = $1 AND checkout_id = $2", 2,
                          params));
}
