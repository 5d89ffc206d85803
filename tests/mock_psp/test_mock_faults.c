/*
 * doc/MOCK_PSP.md's fault table, its registration rows in the Adyen and
 * generic dialects (Stripe's are test_mock_stripe.c's; the webhook rows of
 * each dialect are test_mock_webhooks.c's, test_mock_adyen.c's,
 * test_mock_generic.c's and test_mock_lookups.c's): what the mock does to
 * a create request under each rule, as the gateway meets it.
 */

#include "mock_client.h"
#include "mock_receiver.h"
#include "mock_dialects.h"


typedef struct {
    const char  *name;
    void       (*post)(resp_t *r, const char *key);
} fa_dialect_t;


static void
fa_adyen(resp_t *r, const char *key)
{
    adyen_post(r, key, adyen_json(key, 1000, "EUR", ADYEN_RETURN));
}


static void
fa_generic(resp_t *r, const char *key)
{
    generic_post(r, key, generic_json(key, "10.00", "EUR"));
}


static const fa_dialect_t  fa_dialects[] = {
    { "adyen", fa_adyen },
    { "generic", fa_generic },
};

#define FA_N  (sizeof(fa_dialects) / sizeof(fa_dialects[0]))


/* The rule {"match": key, <rule>}; key is "m1:<row>_<dialect>". */
static const char *
fa_rule(char *key, size_t size, const char *row, size_t d, const char *rule)
{
    char  json[512];

    snprintf(key, size, "m1:%s_%s", row, fa_dialects[d].name);
    snprintf(json, sizeof(json), "{\"match\":\"%s\",%s}", key, rule);
    fault(json);

    return key;
}


static void
fa_counts(const char *key, long long created, long long requests)
{
    long long  c, q;

    registrations(key, &c, &q);
    cr_assert_eq(c, created, "%s: sessions_created %lld", key, c);
    cr_assert_eq(q, requests, "%s: requests %lld", key, q);
}


DIALECT_TEST(faults_the_psp_is_slow_in_every_dialect, dl_start)
{
    size_t   d;
    char     key[64];
    double   t;
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "slow", d, "\"latency_ms\":800");
        t = now_ms();
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        cr_assert_geq(now_ms() - t, 790, "%s answered at once", key);
        resp_free(&r);
        fa_counts(key, 1, 1);
    }
}


DIALECT_TEST(faults_the_psp_fails_then_recovers_in_every_dialect, dl_start)
{
    size_t   d;
    char     key[64];
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "flaky", d, "\"fail_times\":1");
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 500, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);
        fa_counts(key, 0, 1);

        /* the gateway's retry, the same key and bytes */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);
        fa_counts(key, 1, 2);
    }
}


DIALECT_TEST(faults_the_psp_is_down_in_every_dialect, dl_start)
{
    size_t   d;
    int      i;
    char     key[64];
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "down", d, "\"fail_times\":100");
        for (i = 0; i < 4; i++) {
            fa_dialects[d].post(&r, key);
            cr_assert_eq(r.status, 500, "%s: %ld %s", key, r.status, r.body);
            resp_free(&r);
        }
        fa_counts(key, 0, 4);
    }
}


DIALECT_TEST(faults_the_psp_refuses_in_every_dialect, dl_start)
{
    size_t   d;
    char     key[64];
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "refuse", d, "\"refuse_status\":402");
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 402, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);

        /* for good: the retry is refused too, and nothing is made */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 402, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);
        fa_counts(key, 0, 2);
    }
}


DIALECT_TEST(faults_the_answer_is_lost_after_the_session_in_every_dialect,
             dl_start)
{
    size_t   d;
    char     key[64], first[128];
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "drop", d, "\"drop_after_register\":1");
        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s was answered: %ld", key, r.status);
        resp_free(&r);
        fa_counts(key, 1, 1);

        /* the retry with the same key gets the session made then */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        snprintf(first, sizeof(first), "%s",
                 str(&r, d == 0 ? "id" : "token"));
        cr_assert_gt(strlen(first), 0);
        resp_free(&r);
        fa_counts(key, 1, 2);
    }
}


DIALECT_TEST(faults_replays_lost_until_drop_replays_runs_out, dl_start)
{
    size_t   d;
    char     key[64];
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "dropall", d,
                "\"drop_after_register\":1,\"drop_replays\":2");
        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s was answered: %ld", key, r.status);
        resp_free(&r);

        /* the two retries find the session, and their answers are lost */
        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s replay 1 was answered: %ld", key,
                      r.status);
        resp_free(&r);
        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s replay 2 was answered: %ld", key,
                      r.status);
        resp_free(&r);
        fa_counts(key, 1, 3);

        /* the third is answered: the one session */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);
        fa_counts(key, 1, 4);
    }
}


/* A rule removed (DELETE /_control/faults/{id}): the PSP answers again,
 * the retry gets the session its lost answers made; an id that names no
 * rule (removed, never added, not a number) is 404. */
DIALECT_TEST(faults_a_removed_rule_no_longer_applies, dl_start)
{
    size_t     d;
    char       key[64], json[160], path[64];
    json_int_t id;
    resp_t     r;

    for (d = 0; d < FA_N; d++) {
        snprintf(key, sizeof(key), "m1:removed_%s", fa_dialects[d].name);
        snprintf(json, sizeof(json), "{\"match\":\"%s\","
                 "\"drop_after_register\":1,\"drop_replays\":50}", key);
        control(&r, "POST", "/_control/faults", json);
        cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
        id = json_integer_value(json_object_get(r.json, "id"));
        cr_assert_gt(id, 0);
        resp_free(&r);

        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s was answered: %ld", key, r.status);
        resp_free(&r);
        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s replay was answered: %ld", key,
                      r.status);
        resp_free(&r);

        snprintf(path, sizeof(path), "/_control/faults/%lld", (long long) id);
        control(&r, "DELETE", path, NULL);
        cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
        resp_free(&r);

        /* answered now: the one session the lost answers made */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);
        fa_counts(key, 1, 3);

        control(&r, "DELETE", path, NULL);
        cr_assert_eq(r.status, 404, "removed twice: %ld %s", r.status,
                     r.body);
        resp_free(&r);
    }

    control(&r, "DELETE", "/_control/faults/0", NULL);
    cr_assert_eq(r.status, 404, "%ld %s", r.status, r.body);
    resp_free(&r);
    control(&r, "DELETE", "/_control/faults/1x", NULL);
    cr_assert_eq(r.status, 404, "%ld %s", r.status, r.body);
    resp_free(&r);
    control(&r, "GET", "/_control/faults/1", NULL);
    cr_assert_eq(r.status, 405, "%ld %s", r.status, r.body);
    resp_free(&r);
}


DIALECT_TEST(faults_the_psp_hangs_in_every_dialect, dl_start)
{
    size_t   d;
    char     key[64];
    double   t;
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        fa_rule(key, sizeof(key), "hang", d,
                "\"hang_ms\":1500,\"hang_times\":1");
        t = now_ms();
        fa_dialects[d].post(&r, key);
        cr_assert_neq(r.rc, CURLE_OK, "%s was answered: %ld", key, r.status);
        cr_assert_geq(now_ms() - t, 1400, "%s closed at once", key);
        resp_free(&r);
        fa_counts(key, 0, 1);

        /* the retry resumes: one session */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        resp_free(&r);
        fa_counts(key, 1, 2);
    }
}


/* POST /_control/keys/forget: the PSP forgets the keys of its finished
 * requests that contain match; the same request again under one of them
 * makes a second object, the others are still replayed. */
DIALECT_TEST(faults_the_psp_forgets_its_keys_in_every_dialect, dl_start)
{
    size_t   d;
    char     key[64], other[64], first[128];
    resp_t   r;

    for (d = 0; d < FA_N; d++) {
        snprintf(key, sizeof(key), "m1:forget_%s", fa_dialects[d].name);
        snprintf(other, sizeof(other), "m1:kept_%s", fa_dialects[d].name);

        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        snprintf(first, sizeof(first), "%s",
                 str(&r, d == 0 ? "id" : "token"));
        resp_free(&r);
        fa_dialects[d].post(&r, other);
        cr_assert_eq(r.status, 201, "%s: %ld %s", other, r.status, r.body);
        resp_free(&r);

        control(&r, "POST", "/_control/keys/forget",
                d == 0 ? "{\"match\":\"m1:forget_adyen\"}"
                       : "{\"match\":\"m1:forget_generic\"}");
        cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
        cr_assert_not_null(strstr(r.body, "\"forgotten\":1"), "%s", r.body);
        resp_free(&r);

        /* a new request under the forgotten key: a second session */
        fa_dialects[d].post(&r, key);
        cr_assert_eq(r.status, 201, "%s: %ld %s", key, r.status, r.body);
        cr_assert_str_neq(str(&r, d == 0 ? "id" : "token"), first);
        resp_free(&r);
        fa_counts(key, 2, 2);

        /* the other key is still known: a replay, nothing made */
        fa_dialects[d].post(&r, other);
        cr_assert_eq(r.status, 201, "%s: %ld %s", other, r.status, r.body);
        resp_free(&r);
        fa_counts(other, 1, 2);
    }

    /* a body that says nothing to match is refused */
    control(&r, "POST", "/_control/keys/forget", "{\"match\":\"\"}");
    cr_assert_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);
    control(&r, "POST", "/_control/keys/forget", "{}");
    cr_assert_eq(r.status, 400, "%ld %s", r.status, r.body);
    resp_free(&r);
    control(&r, "GET", "/_control/keys/forget", NULL);
    cr_assert_eq(r.status, 405, "%ld %s", r.status, r.body);
    resp_free(&r);
}
