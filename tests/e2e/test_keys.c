/*
 * End to end: a merchant's API keys over their life (issue #4), through
 * bin/payments-merchant as an operator would run it.  Two active keys let
 * a merchant rotate without downtime; a revoked key and a disabled
 * merchant stop authenticating on every worker within the auth cache's
 * lifetime (payments_auth_cache, 5 s by default).
 */

#include "harness.h"


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
