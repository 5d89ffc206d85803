/*
 * End to end: a merchant's API keys over their life (issue #4), through
 * bin/payments-merchant as an operator would run it.  Two active keys let
 * a merchant rotate without downtime; a revoked key and a disabled
 * merchant stop authenticating on every worker within the auth cache's
 * lifetime (payments_auth_cache, 5 s by default).
 */

#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>


#define KEYS_SETTLE_S  8            /* payments_auth_cache 5 s, and margin */


/* GET /v1/checkouts/none with the key: 404 when it authenticates. */
static long
probe(const merchant_t *m)
{
    return api_get(m, "/v1/checkouts/co_none")->status;
}


/* Twenty probes on fresh connections (so on whichever worker accepts). */
static int
all_probes(const merchant_t *m, long want)
{
    int  i;

    for (i = 0; i < 20; i++) {
        if (probe(m) != want) {
            return 0;
        }
    }

    return 1;
}


/* Waits until every probe answers want; returns the seconds it took. */
static int
settles_to(const merchant_t *m, long want)
{
    int  i;

    for (i = 0; i <= KEYS_SETTLE_S * 4; i++) {
        if (all_probes(m, want)) {
            return i / 4;
        }
        msleep(250);
    }

    cr_assert_fail("key %s still does not answer %ld after %d s", m->key_id,
                   want, KEYS_SETTLE_S);
    return -1;
}


static void
second_key(const merchant_t *m, merchant_t *second)
{
    int    rc;
    char  *out;

    rc = merchant_tool("add-key", "--id", m->id, &out);
    cr_assert_eq(rc, 0, "add-key: %s", out);
    *second = *m;
    cr_assert_eq(merchant_key_from(out, second), 0, "no key in: %s", out);
    cr_assert_str_neq(second->key_id, m->key_id);
}


Test(keys, two_keys_work_at_once_and_the_old_one_is_revoked_within_seconds)
{
    int          rc;
    char        *out;
    merchant_t   m, next;

    merchant_new(&m);
    cr_assert_eq(probe(&m), 404, "the first key authenticates");
    second_key(&m, &next);

    /* both keys, both merchants the same */
    cr_assert(all_probes(&m, 404));
    cr_assert(all_probes(&next, 404));
    register_ok(&next, uid("key"), body_for(uid("co")));

    rc = merchant_tool("revoke-key", "--key-id", m.key_id, &out);
    cr_assert_eq(rc, 0, "revoke-key: %s", out);

    settles_to(&m, 401);
    cr_assert(all_probes(&next, 404), "the new key still works");
}


Test(keys, a_third_active_key_is_refused)
{
    int          rc;
    char        *out;
    merchant_t   m, next;

    merchant_new(&m);
    second_key(&m, &next);
    rc = merchant_tool("add-key", "--id", m.id, &out);
    cr_assert_neq(rc, 0, "a third key was issued: %s", out);
    cr_assert(strstr(out, "mk_") == NULL, "a key was printed: %s", out);
}


/* The value of a base64url digit, -1 for any other character. */
static int
b64url_value(char c)
{
    static const char  digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789-_";
    const char        *p;

    p = c == '\0' ? NULL : strchr(digits, c);
    return p == NULL ? -1 : (int) (p - digits);
}


/* A key's secret (43 base64url characters after mk_<mode>_<id>_) as its 32
 * bytes; fails the test unless it is exactly that, canonical. */
static void
secret_bytes(const merchant_t *m, unsigned char out[32])
{
    int          v;
    size_t       i, bits, nbytes;
    const char  *s;
    uint32_t     acc;

    cr_assert_eq(strlen(m->key), 8 + 12 + 1 + 43, "key length: %s", m->key);
    cr_assert(strncmp(m->key, "mk_test_", 8) == 0 && m->key[20] == '_',
              "key shape: %s", m->key);
    s = m->key + 21;
    acc = 0;
    bits = 0;
    nbytes = 0;
    for (i = 0; i < 43; i++) {
        v = b64url_value(s[i]);
        cr_assert_geq(v, 0, "not base64url at %zu: %s", i, m->key);
        acc = acc << 6 | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[nbytes++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    cr_assert_eq(nbytes, 32);
    cr_assert_eq(acc, 0, "the secret's last character is not canonical: %s",
                 m->key);
}


Test(keys, a_new_key_holds_32_random_bytes_and_only_its_sha256_is_stored)
{
    int             i, j, distinct;
    char            hex[65], *stored;
    unsigned char   secret[3][32], md[EVP_MAX_MD_SIZE];
    unsigned int    mdlen;
    merchant_t      k[3];
    const char     *p[1];

    /* two merchants' first keys and a second key: what create and
     * add-key print */
    merchant_new_by_tool(&k[0]);
    merchant_new_by_tool(&k[1]);
    second_key(&k[0], &k[2]);

    for (i = 0; i < 3; i++) {
        for (j = 0; j < 12; j++) {
            cr_assert(isalnum((unsigned char) k[i].key_id[j]),
                      "key id %s", k[i].key_id);
        }
        secret_bytes(&k[i], secret[i]);

        /* stored: the key's SHA-256, never the key */
        cr_assert_eq(EVP_Digest(k[i].key, strlen(k[i].key), md, &mdlen,
                                EVP_sha256(), NULL), 1);
        for (j = 0; j < 32; j++) {
            snprintf(hex + 2 * j, 3, "%02x", md[j]);
        }
        p[0] = k[i].key_id;
        stored = db_scalar("SELECT key_hash || ' ' || (key_hash = lower(key_hash))::text"
                           " FROM api_keys WHERE key_id = $1", 1, p);
        cr_assert_not_null(stored, "no row for key %s", k[i].key_id);
        cr_assert(strncmp(stored, hex, 64) == 0
                  && strcmp(stored + 64, " true") == 0,
                  "stored %s, the key's SHA-256 is %s", stored, hex);
        p[0] = k[i].key + 21;
        cr_assert_str_eq(db_scalar("SELECT count(*)::text FROM api_keys a"
                                   " WHERE strpos(a::text, $1) > 0", 1, p),
                         "0", "the secret is stored");

        /* random: 32 bytes drawn at random repeat few values (a constant,
         * a counter or a short seed repeats many), and no two keys share
         * an id or a secret */
        distinct = 0;
        for (j = 0; j < 32; j++) {
            int  seen = 0, l;

            for (l = 0; l < j; l++) {
                seen |= secret[i][l] == secret[i][j];
            }
            distinct += !seen;
        }
        cr_assert_geq(distinct, 20, "%d distinct bytes in %s's secret",
                      distinct, k[i].key_id);
        for (j = 0; j < i; j++) {
            cr_assert_str_neq(k[i].key_id, k[j].key_id);
            cr_assert_neq(memcmp(secret[i], secret[j], 32), 0,
                          "keys %s and %s share their secret",
                          k[i].key_id, k[j].key_id);
        }
    }
}


Test(keys, a_disabled_merchant_is_refused_within_seconds_and_enabled_again)
{
    int          rc;
    char        *out;
    merchant_t   m, next;

    merchant_new(&m);
    second_key(&m, &next);
    cr_assert(all_probes(&m, 404));

    rc = merchant_tool("disable", "--id", m.id, &out);
    cr_assert_eq(rc, 0, "disable: %s", out);
    settles_to(&m, 401);
    settles_to(&next, 401);

    /* refused before anything is stored or sent */
    expect_problem(api_post(&m, uid("key"), body_for(uid("co"))), 401,
                   "unauthorized");

    rc = merchant_tool("enable", "--id", m.id, &out);
    cr_assert_eq(rc, 0, "enable: %s", out);
    settles_to(&m, 404);
    settles_to(&next, 404);
}


/* -- the CLIs over shards ------------------------------------------------------ */

/* payments-merchant --shards FILE ARGS... (NULL-terminated) */
static int
on_shards(const char *file, const char *const *args, char **out)
{
    char    *argv[16];
    size_t   n = 0, i;

    argv[n++] = str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT"));
    argv[n++] = (char *) "--shards";
    argv[n++] = (char *) file;
    for (i = 0; args[i] != NULL && n < 15; i++) {
        argv[n++] = (char *) args[i];
    }
    argv[n] = NULL;
    return run(argv, out);
}

#define ON_SHARDS(file, out, ...) \
    on_shards((file), (const char *const []){ __VA_ARGS__, NULL }, (out))


/* Two shards in the suite's one cluster: a, the suite's database, and b,
 * a new one.  payments-migrate --shards migrates both (a has nothing to
 * do); payments-merchant places a merchant on b alone, refuses its id on
 * a, finds it on b for the other commands, and refuses to create while a
 * shard does not answer. */
Test(keys, the_clis_migrate_every_shard_and_place_a_merchant_on_one,
     .timeout = 240)
{
    int          rc;
    char        *out, *bdb, *b, *file, *bad, *id, *kid;
    merchant_t   m;
    const char  *a = env("PAY_TEST_PG");

    bdb = str_printf("pay_%s", uid("shard"));
    b = str_printf("%s dbname=%s", a, bdb);
    db_exec(str_printf("CREATE DATABASE %s", bdb), 0, NULL);

    file = shards_file(str_printf("%s.shards", bdb),
                       "# the suite's shards\n\na %s\nb  %s\n", a, b);
    bad = shards_file(str_printf("%s.bad", bdb),
                      "a %s\nb %s\nc host=127.0.0.1 port=1 dbname=x\n", a, b);

    {
        char *const  argv[] = {
            str_printf("%s/bin/payments-migrate", env("PAY_TEST_ROOT")),
            (char *) "--shards", file, NULL
        };

        rc = run(argv, &out);
    }
    cr_assert_eq(rc, 0, "payments-migrate --shards: %s", out);
    cr_expect(strstr(out, "shard a: payments-migrate: 0 applied,") != NULL, "%s", out);
    cr_expect(strstr(out, "shard b: 087_shards.sql: applied") != NULL, "%s", out);
    cr_expect(strstr(out, "payments-migrate: 2 shards migrated") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar_at(b, "SELECT count(*)::text FROM schema_migrations"
                                  " WHERE version = $1", "087_shards.sql"), "1");

    id = uid("s");
    rc = ON_SHARDS(file, &out, "create", "--id", id, "--origin", "https://shop.example");
    cr_expect_neq(rc, 0, "created with no --shard: %s", out);
    cr_expect(strstr(out, "needs --shard") != NULL, "%s", out);
    rc = ON_SHARDS(file, &out, "--shard", "zz", "create", "--id", id, "--origin",
                   "https://shop.example");
    cr_expect_neq(rc, 0, "created on no shard: %s", out);
    cr_expect(strstr(out, "no shard zz") != NULL, "%s", out);

    rc = ON_SHARDS(file, &out, "--shard", "b", "create", "--id", id, "--origin",
                   "https://shop.example");
    cr_assert_eq(rc, 0, "create --shard b: %s", out);
    cr_assert_eq(merchant_key_from(out, &m), 0, "no key in: %s", out);
    cr_expect_str_eq(db_scalar_at(b, "SELECT merchant_id FROM merchants WHERE merchant_id = $1",
                               id), id);
    cr_expect_str_eq(db_scalar_at(a, "SELECT merchant_id FROM merchants WHERE merchant_id = $1",
                               id), "");
    cr_expect_str_eq(db_scalar_at(b, "SELECT merchant_id FROM pay_auth($1)", m.key_id), id);

    /* its id is b's: not again, on any shard */
    rc = ON_SHARDS(file, &out, "--shard", "a", "create", "--id", id, "--origin",
                   "https://shop.example");
    cr_expect_neq(rc, 0, "created twice: %s", out);
    cr_expect(strstr(out, "exists on shard b") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar_at(a, "SELECT count(*)::text FROM merchants WHERE merchant_id = $1",
                               id), "0");

    /* found on b by the other commands */
    rc = ON_SHARDS(file, &out, "show", "--id", id);
    cr_expect_eq(rc, 0, "show: %s", out);
    cr_expect(strstr(out, "is on shard b") != NULL, "%s", out);
    rc = ON_SHARDS(file, &out, "add-key", "--id", id);
    cr_expect_eq(rc, 0, "add-key: %s", out);
    kid = m.key_id;
    rc = ON_SHARDS(file, &out, "revoke-key", "--key-id", kid);
    cr_expect_eq(rc, 0, "revoke-key: %s", out);
    cr_expect_str_eq(db_scalar_at(b, "SELECT (revoked_at IS NOT NULL)::text FROM api_keys"
                                  " WHERE key_id = $1", kid), "true");
    rc = ON_SHARDS(file, &out, "--shard", "a", "show", "--id", id);
    cr_expect_neq(rc, 0, "shown on a: %s", out);
    rc = ON_SHARDS(file, &out, "status");
    cr_expect_neq(rc, 0, "status of no shard: %s", out);

    rc = ON_SHARDS(file, &out, "shards");
    cr_expect_eq(rc, 0, "shards: %s", out);
    cr_expect(strstr(out, "b\t1 merchants") != NULL, "%s", out);

    /* a shard that does not answer: nothing created, listed unreachable */
    id = uid("s");
    rc = ON_SHARDS(bad, &out, "--shard", "b", "create", "--id", id, "--origin",
                   "https://shop.example");
    cr_expect_neq(rc, 0, "created while shard c is down: %s", out);
    cr_expect(strstr(out, "shard c does not answer") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar_at(b, "SELECT count(*)::text FROM merchants WHERE merchant_id = $1",
                               id), "0");
    rc = ON_SHARDS(bad, &out, "shards");
    cr_expect_eq(rc, 1, "shards: %s", out);
    cr_expect(strstr(out, "c\tunreachable") != NULL, "%s", out);

    db_exec(str_printf("DROP DATABASE %s WITH (FORCE)", bdb), 0, NULL);
}


/* payments-secrets rekey --shards: every shard in turn, each line prefixed
 * with its shard; a shard that does not answer is named and the status is
 * 1, the others re-sealed; run again, nothing left to do.  Over a new
 * database (b) and one that does not answer (c): the suite's own stays
 * sealed under the gateway's key. */
Test(keys, secrets_rekey_reseals_every_shard, .timeout = 120)
{
    int          rc;
    char        *bname, *b, *id, *file, *bad, *kf, *keys, *line, *out, *kid;
    FILE        *f;
    const char  *secrets = build_file("payments-secrets");

    b = db_new_shard(&bname);
    id = db_shard_merchant(b, "r");
    {
        char *const  argv[] = {
            str_printf("%s/bin/payments-merchant", env("PAY_TEST_ROOT")),
            (char *) "--db", b, (char *) "add-endpoint", (char *) "--id", id,
            (char *) "--url", (char *) "https://127.0.0.1:9/hook",
            (char *) "--allow-loopback", (char *) "--key-file",
            (char *) env("PAY_TEST_ENCRYPTION_KEY"), NULL
        };

        rc = run(argv, &out);
    }
    cr_assert_eq(rc, 0, "add-endpoint: %s", out);

    /* a new first key beside the gateway's */
    kid = str_printf("k%ld", (long) getpid());
    {
        char *const  argv[] = { (char *) secrets, (char *) "new-key", kid,
                                NULL };

        rc = run(argv, &line);
    }
    cr_assert_eq(rc, 0, "new-key: %s", line);
    keys = file_read(env("PAY_TEST_ENCRYPTION_KEY"), NULL);
    cr_assert_not_null(keys);
    kf = run_file(str_printf("%s.keys", bname));
    f = fopen(kf, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s%s", line, keys);
    fclose(f);
    cr_assert_eq(chmod(kf, 0600), 0);

    file = shards_file(str_printf("%s.shards", bname), "b %s\n", b);
    bad = shards_file(str_printf("%s.bad", bname),
                      "c host=127.0.0.1 port=1 dbname=x\nb %s\n", b);

    out = NULL;
    {
        char *const  argv[] = { (char *) secrets, (char *) "rekey",
                                (char *) "--shards", bad,
                                (char *) "--key-file", kf, NULL };

        rc = run(argv, &out);
    }
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "shard c: cannot connect") != NULL, "%s", out);
    cr_expect(strstr(out, str_printf("shard b: notify_endpoints.secret_sealed:"
                                     " 1 re-sealed under %s, 0 did not open",
                                     kid)) != NULL, "%s", out);
    cr_expect(strstr(out, "1 shard did not answer") != NULL, "%s", out);
    cr_expect_str_eq(db_scalar_at(b, "SELECT split_part(secret_sealed, '.', 2)"
                                     " FROM notify_endpoints WHERE"
                                     " merchant_id = $1", id), kid);

    {
        char *const  argv[] = { (char *) secrets, (char *) "rekey",
                                (char *) "--shards", file,
                                (char *) "--key-file", kf, NULL };

        rc = run(argv, &out);
    }
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, str_printf("shard b: notify_endpoints.secret_sealed:"
                                     " 0 re-sealed under %s", kid)) != NULL,
              "%s", out);

    db_exec(str_printf("DROP DATABASE %s WITH (FORCE)", bname), 0, NULL);
}
