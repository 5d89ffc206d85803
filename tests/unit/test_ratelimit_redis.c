/*
 * Unit: request-rate buckets and amount windows in Redis
 * (include/payments/ratelimit_redis.h): the keys, the EVALSHA's arguments,
 * the script's SHA, and the reading of its answers.  Answers are RESP bytes as Redis sends them, parsed by
 * hiredis's own reader (the one the adapter's connection uses).  The
 * script itself runs against a real Redis in tests/e2e/test_limits_redis.c.
 */

#include <criterion/criterion.h>
#include <payments/ratelimit_redis.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>


/* one reply parsed from wire bytes by hiredis */
static redisReply *
parse(const char *resp)
{
    void         *reply = NULL;
    redisReader  *rd;

    rd = redisReaderCreate();
    cr_assert_not_null(rd);
    cr_assert_eq(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    cr_assert_not_null(reply, "incomplete: %s", resp);
    redisReaderFree(rd);

    return reply;
}


static pay_rl_redis_rc_e
answer(const char *resp, uint64_t *wait)
{
    redisReply         *r;
    pay_rl_redis_rc_e   rc;

    r = parse(resp);
    rc = pay_rl_redis_answer(r, wait);
    freeReplyObject(r);

    return rc;
}


Test(rl_redis_key, prefix_zone_and_the_key_bytes)
{
    char    out[64];
    size_t  n;
    const unsigned char  addr[4] = { 127, 0, 0, 1 };

    n = pay_rl_redis_key(out, sizeof(out), "payments", 8, "api", 3,
                         "m_shop1", 7);
    cr_assert_eq(n, 22);
    cr_assert(memcmp(out, "payments:api:r:m_shop1", n) == 0);

    /* binary-safe: an address's bytes, a NUL inside a webhook sender */
    n = pay_rl_redis_key(out, sizeof(out), "p", 1, "z", 1, addr, 4);
    cr_assert_eq(n, 10);
    cr_assert(memcmp(out, "p:z:r:\x7f\x00\x00\x01", 10) == 0);

    n = pay_rl_redis_key(out, sizeof(out), "p", 1, "z", 1, "h" "stripe\0"
                         "\x0a\x00\x00\x02", 12);
    cr_assert_eq(n, 18);
    cr_assert(memcmp(out + 6, "hstripe\0\x0a\x00\x00\x02", 12) == 0);
}


Test(rl_redis_key, refuses_what_would_be_ambiguous_or_too_long)
{
    char    out[64], big[PAY_RL_REDIS_KEY_MAX + 1];

    /* a ':' in the prefix or zone would let two zones share keys */
    cr_assert_eq(pay_rl_redis_key(out, sizeof(out), "a:b", 3, "z", 1, "k",
                                  1), 0);
    cr_assert_eq(pay_rl_redis_key(out, sizeof(out), "a", 1, "z:1", 3, "k",
                                  1), 0);
    cr_assert_eq(pay_rl_redis_key(out, sizeof(out), "", 0, "z", 1, "k", 1),
                 0);
    cr_assert_eq(pay_rl_redis_key(out, sizeof(out), "a", 1, "", 0, "k", 1),
                 0);

    /* exactly the room it needs, and one byte less */
    cr_assert_eq(pay_rl_redis_key(out, 8, "a", 1, "z", 1, "kk", 2), 8);
    cr_assert_eq(pay_rl_redis_key(out, 7, "a", 1, "z", 1, "kk", 2), 0);

    memset(big, 'k', sizeof(big));
    cr_assert_eq(pay_rl_redis_key(out, sizeof(out), "a", 1, "z", 1, big,
                                  sizeof(big)), 0);
}


Test(rl_redis_cmd, evalsha_of_one_key_with_the_bucket_arguments)
{
    char                 sha[PAY_RL_REDIS_SHA_LEN + 1];
    pay_rl_redis_cmd_t   cmd;
    static const char   *want[] = {
        "EVALSHA", NULL, "1", "payments:api:r:m1", "rate", "0",
        "1200000", "40000", "1"
    };
    size_t               i;

    pay_rl_redis_script_sha(sha);
    want[1] = sha;

    pay_rl_redis_rate_cmd(&cmd, sha, "payments:api:r:m1", 17, 0,
                          20 * 60 * 1000, 40000, 1);

    cr_assert_eq(cmd.argc, 9);
    cr_assert_leq((size_t) cmd.argc, (size_t) PAY_RL_REDIS_ARGC);

    for (i = 0; i < 9; i++) {
        cr_assert_eq(cmd.argvlen[i], strlen(want[i]), "argument %zu", i);
        cr_assert(memcmp(cmd.argv[i], want[i], cmd.argvlen[i]) == 0,
                  "argument %zu: %.*s", i, (int) cmd.argvlen[i],
                  cmd.argv[i]);
    }

    /* only look; a time of the caller's; the largest rate and burst */
    pay_rl_redis_rate_cmd(&cmd, sha, "k", 1, 1700000000123ULL,
                          60000000000ULL, 1000000000ULL, 0);
    cr_assert_str_eq(cmd.argv[5], "1700000000123");
    cr_assert_str_eq(cmd.argv[6], "60000000000");
    cr_assert_str_eq(cmd.argv[7], "1000000000");
    cr_assert(memcmp(cmd.argv[8], "0", 1) == 0);
}


Test(rl_redis_cmd, the_sha_is_the_scripts_sha1)
{
    char           sha[PAY_RL_REDIS_SHA_LEN + 1], hex[3];
    unsigned char  md[SHA_DIGEST_LENGTH];
    size_t         i;

    pay_rl_redis_script_sha(sha);
    cr_assert_eq(strlen(sha), 40);

    /* computed here independently */
    SHA1((const unsigned char *) pay_rl_redis_script,
         strlen(pay_rl_redis_script), md);

    for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
        snprintf(hex, sizeof(hex), "%02x", md[i]);
        cr_assert(memcmp(sha + 2 * i, hex, 2) == 0);
    }

    /* the script stores numbers with %.0f, never Lua's %.14g */
    cr_assert_not_null(strstr(pay_rl_redis_script, "'%.0f'"));
}


Test(rl_redis_answer, fits_and_busy_with_the_wait)
{
    uint64_t  wait = 7;

    cr_assert_eq(answer("*2\r\n:0\r\n:0\r\n", &wait), PAY_RL_REDIS_FITS);
    cr_assert_eq(wait, 7, "a fit leaves the wait alone");

    cr_assert_eq(answer("*2\r\n:1\r\n:59001\r\n", &wait), PAY_RL_REDIS_BUSY);
    cr_assert_eq(wait, 59001);

    /* at most 31 days */
    cr_assert_eq(answer("*2\r\n:1\r\n:2678400000\r\n", &wait),
                 PAY_RL_REDIS_BUSY);
    cr_assert_eq(wait, 2678400000ULL);
}


Test(rl_redis_answer, errors_the_adapter_acts_on)
{
    uint64_t  wait = 0;

    cr_assert_eq(answer("-NOSCRIPT No matching script. Please use EVAL.\r\n",
                        &wait), PAY_RL_REDIS_NOSCRIPT);
    cr_assert_eq(answer("-NOAUTH Authentication required.\r\n", &wait),
                 PAY_RL_REDIS_REFUSED);
    cr_assert_eq(answer("-OOM command not allowed when used memory > "
                        "'maxmemory'.\r\n", &wait), PAY_RL_REDIS_REFUSED);
    cr_assert_eq(answer("-BUSY Redis is busy running a script.\r\n", &wait),
                 PAY_RL_REDIS_REFUSED);
    cr_assert_eq(pay_rl_redis_answer(NULL, &wait), PAY_RL_REDIS_MALFORMED);
}


Test(rl_redis_answer, anything_but_the_scripts_answer_is_malformed)
{
    size_t      i;
    uint64_t    wait = 0;
    static const char  *bad[] = {
        "+OK\r\n",
        ":0\r\n",
        "$-1\r\n",
        "*-1\r\n",
        "*0\r\n",
        "*1\r\n:0\r\n",
        "*3\r\n:0\r\n:0\r\n:0\r\n",
        "*2\r\n$1\r\n0\r\n:0\r\n",          /* a string, not an integer */
        "*2\r\n:0\r\n$1\r\n0\r\n",
        "*2\r\n:0\r\n:5\r\n",               /* fits, with a wait */
        "*2\r\n:1\r\n:0\r\n",               /* busy, with no wait */
        "*2\r\n:1\r\n:-5\r\n",
        "*2\r\n:1\r\n:2678400001\r\n",      /* more than 31 days */
        "*2\r\n:2\r\n:10\r\n",
        "*2\r\n:-1\r\n:10\r\n",
        "*2\r\n*2\r\n:0\r\n:0\r\n:0\r\n",   /* nested */
        "*2\r\n$-1\r\n:0\r\n",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(answer(bad[i], &wait), PAY_RL_REDIS_MALFORMED,
                     "accepted %s", bad[i]);
    }
}


/* the amount windows: the same script, "add" and "sub" */

static pay_rl_redis_rc_e
window_answer(const char *resp, uint64_t *value)
{
    redisReply         *r;
    pay_rl_redis_rc_e   rc;

    r = parse(resp);
    rc = pay_rl_redis_window_answer(r, value);
    freeReplyObject(r);

    return rc;
}


Test(rl_redis_cmd, a_windows_add_and_sub_with_their_arguments)
{
    char                 sha[PAY_RL_REDIS_SHA_LEN + 1];
    size_t               i;
    pay_rl_redis_cmd_t   cmd;
    static const char   *add[] = {
        "EVALSHA", NULL, "1", "payments:money:w:m1", "add", "0", "225000",
        "3600000", "3000", "10000"
    };

    pay_rl_redis_script_sha(sha);
    add[1] = sha;

    pay_rl_redis_window_cmd(&cmd, sha, "payments:money:w:m1", 19, 0, 0,
                            225000, 3600000, 3000, 10000);

    cr_assert_eq(cmd.argc, 10);
    cr_assert_leq((size_t) cmd.argc, (size_t) PAY_RL_REDIS_ARGC);

    for (i = 0; i < 10; i++) {
        cr_assert_eq(cmd.argvlen[i], strlen(add[i]), "argument %zu", i);
        cr_assert(memcmp(cmd.argv[i], add[i], cmd.argvlen[i]) == 0,
                  "argument %zu: %.*s", i, (int) cmd.argvlen[i],
                  cmd.argv[i]);
    }

    /* a give-back names the sub-window; a negative amount is never sent */
    pay_rl_redis_window_cmd(&cmd, sha, "k", 1, 1, 0, 225000, 3600000, -5,
                            7555555ULL);
    cr_assert(memcmp(cmd.argv[4], "sub", 3) == 0);
    cr_assert_str_eq(cmd.argv[8], "0");
    cr_assert_str_eq(cmd.argv[9], "7555555");

    /* the script knows both operations */
    cr_assert_not_null(strstr(pay_rl_redis_script, "op == 'add'"));
    cr_assert_not_null(strstr(pay_rl_redis_script, "op == 'sub'"));
}


Test(rl_redis_answer, a_window_fits_with_its_sub_window_or_waits)
{
    size_t      i;
    uint64_t    v = 0;
    static const char  *bad[] = {
        "*2\r\n:0\r\n:-1\r\n",                  /* no negative index */
        "*2\r\n:1\r\n:0\r\n",                   /* a wait is 1 ms or more */
        "*2\r\n:1\r\n:2851200001\r\n",          /* past 33 days */
        "*2\r\n:2\r\n:1\r\n",
        "*1\r\n:0\r\n",
        "+OK\r\n"
    };

    cr_assert_eq(window_answer("*2\r\n:0\r\n:7555555\r\n", &v),
                 PAY_RL_REDIS_FITS);
    cr_assert_eq(v, 7555555);

    cr_assert_eq(window_answer("*2\r\n:1\r\n:3599999\r\n", &v),
                 PAY_RL_REDIS_BUSY);
    cr_assert_eq(v, 3599999);

    /* a window and a slot at most: 31 days and a sixteenth */
    cr_assert_eq(window_answer("*2\r\n:1\r\n:2851200000\r\n", &v),
                 PAY_RL_REDIS_BUSY);

    cr_assert_eq(window_answer("-NOSCRIPT No matching script.\r\n", &v),
                 PAY_RL_REDIS_NOSCRIPT);
    cr_assert_eq(window_answer("-NOPERM this user has no permissions\r\n",
                               &v), PAY_RL_REDIS_REFUSED);
    cr_assert_eq(pay_rl_redis_window_answer(NULL, &v),
                 PAY_RL_REDIS_MALFORMED);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(window_answer(bad[i], &v), PAY_RL_REDIS_MALFORMED,
                     "%s", bad[i]);
    }
}


/* the card-testing guard's commands: peek, a checkout's note, its failure */
Test(rl_redis_cmd, the_failures_peek_note_and_failed_with_their_arguments)
{
    char                 sha[PAY_RL_REDIS_SHA_LEN + 1];
    size_t               i;
    pay_rl_redis_cmd_t   cmd;
    static const char   *peek[] = {
        "EVALSHA", NULL, "1", "p:cards:f:K", "peek", "0", "37500", "600000",
        "1", "5"
    };
    static const char   *note[] = {
        "EVALSHA", NULL, "1", "p:cards:c:C", "note", "0", "3600000", "a",
        "\x01\x00\x02"
    };
    static const char   *failed[] = {
        "EVALSHA", NULL, "1", "p:cards:c:C", "failed", "0", "37500",
        "600000", "p:cards:f:"
    };

    pay_rl_redis_script_sha(sha);
    peek[1] = note[1] = failed[1] = sha;

    pay_rl_redis_peek_cmd(&cmd, sha, "p:cards:f:K", 11, 0, 37500, 600000, 5);
    cr_assert_eq(cmd.argc, 10);
    for (i = 0; i < 10; i++) {
        cr_assert_eq(cmd.argvlen[i], strlen(peek[i]), "peek %zu", i);
        cr_assert(memcmp(cmd.argv[i], peek[i], cmd.argvlen[i]) == 0,
                  "peek %zu: %.*s", i, (int) cmd.argvlen[i], cmd.argv[i]);
    }

    /* a binary value, its NUL included */
    pay_rl_redis_note_cmd(&cmd, sha, "p:cards:c:C", 11, 3600000, "a", 1,
                          "\x01\x00\x02", 3);
    cr_assert_eq(cmd.argc, 9);
    cr_assert_leq((size_t) cmd.argc, (size_t) PAY_RL_REDIS_ARGC);
    for (i = 0; i < 8; i++) {
        cr_assert_eq(cmd.argvlen[i], strlen(note[i]), "note %zu", i);
        cr_assert(memcmp(cmd.argv[i], note[i], cmd.argvlen[i]) == 0,
                  "note %zu", i);
    }
    cr_assert_eq(cmd.argvlen[8], 3);
    cr_assert(memcmp(cmd.argv[8], "\x01\x00\x02", 3) == 0);

    /* a ttl of 0 is never sent: PEXPIRE 0 would delete the record */
    pay_rl_redis_note_cmd(&cmd, sha, "k", 1, 0, "0", 1, "v", 1);
    cr_assert_str_eq(cmd.argv[6], "1");

    pay_rl_redis_failed_cmd(&cmd, sha, "p:cards:c:C", 11, 0, 37500, 600000,
                            "p:cards:f:", 10);
    cr_assert_eq(cmd.argc, 9);
    for (i = 0; i < 9; i++) {
        cr_assert_eq(cmd.argvlen[i], strlen(failed[i]), "failed %zu", i);
        cr_assert(memcmp(cmd.argv[i], failed[i], cmd.argvlen[i]) == 0,
                  "failed %zu", i);
    }

    cr_assert_not_null(strstr(pay_rl_redis_script, "op == 'note'"));
    cr_assert_not_null(strstr(pay_rl_redis_script, "op == 'failed'"));
    cr_assert_not_null(strstr(pay_rl_redis_script, "op == 'peek'"));
}


/* the adapter's reader: an array's count is believed only up to 64 */
Test(rl_redis_answer, the_reader_refuses_a_huge_array_before_allocating_it)
{
    void         *reply;
    redisReader  *rd;
    const char   *huge = "*2000000000\r\n:0\r\n:0\r\n";
    const char   *fine = "*2\r\n:0\r\n:0\r\n";

    rd = pay_rl_redis_reader();
    cr_assert_not_null(rd);
    cr_assert_eq(redisReaderFeed(rd, huge, strlen(huge)), REDIS_OK);
    reply = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_ERR);
    cr_assert_null(reply);
    redisReaderFree(rd);

    rd = pay_rl_redis_reader();
    cr_assert_eq(redisReaderFeed(rd, "*65\r\n", 5), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_ERR);
    redisReaderFree(rd);

    /* the scripts' answers, and arrays up to 64, read as before */
    rd = pay_rl_redis_reader();
    cr_assert_eq(redisReaderFeed(rd, fine, strlen(fine)), REDIS_OK);
    reply = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    cr_assert_not_null(reply);
    cr_assert_eq(((redisReply *) reply)->elements, 2);
    freeReplyObject(reply);

    cr_assert_eq(redisReaderFeed(rd, "*64\r\n", 5), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    redisReaderFree(rd);
}
