/*
 * End to end: amount zones kept in Redis (payments_limit_amount ...
 * store=redis; doc/ngx_http_payments_limit_module.md): two gateways of the
 * test's own sharing the suite's Redis (harness_redis.c) admit a
 * merchant's max once between them, the script is the C window, and an
 * amount Redis added after its check gave up is given back.
 */

#include "harness.h"
#include "harness_redis.h"

#include <payments/ratelimit.h>
#include <payments/ratelimit_redis.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>


/* -- the amount velocity kept in Redis ------------------------------------- */

/* two gateways of a test's own: an amount zone in Redis, nothing else */

static char *
amount_conf(void)
{
    return str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 2;\n"
        "payments_sweeper off;\n%s"
        "payments_limit_redis 127.0.0.1:%ld password_file=%s/redis.password "
        "timeout=1s prefix=t%ld;\n"
        "payments_limit_amount money size=64k window=1h max=USD:100.00 "
        "store=redis gateways=2;\n"
        "payments_limit amount=money;\n",
        pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
        redis_port, redis_dir, (long) getpid());
}


/* a checkout of one order of amount USD */

static char *
one_order(const char *co, const char *amount)
{
    json_t  *j;

    j = checkout_new(co, 1);
    json_object_set_new(order_of(j, 0), "amount", json_string(amount));

    return dump(j);
}


/* POST /v1/payments of body (one_order()): its status */

static long
pay_body(const gateway_t *gw, const merchant_t *m, const char *key,
    const char *body, const char *amount, long *retry_after)
{
    long         status;
    resp_t      *r;
    const char  *v;

    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, key ? key : uid("key"),
                     body);
    status = r->status;

    cr_assert(status == 201 || status == 429, "%s USD answered %ld: %s",
              amount, status, r->body ? r->body : "");

    if (status == 429) {
        expect_problem(r, 429, "rate_limited");
        v = resp_header(r, "Retry-After");
        cr_assert_not_null(v);

        if (retry_after) {
            *retry_after = atol(v);
        }
    }

    resp_free(r);

    return status;
}


static long
pay(const gateway_t *gw, const merchant_t *m, const char *key,
    const char *co, const char *amount, long *retry_after)
{
    return pay_body(gw, m, key, one_order(co, amount), amount, retry_after);
}


/*
 * Two gateways sharing an amount zone in Redis (max=USD:100.00 an hour)
 * admit a merchant's 100.00 once between them, not twice (alone, each
 * would admit 100.00): a replay gives its amount back on the other
 * gateway, 100.00 fits exactly, a cent more does not; the window is in
 * Redis under the prefix, zone and merchant + currency, with an expiry.
 * Redis stopped: each gateway admits its share, max / gateways=2.
 */
/* the merchant's USD window in Redis: its sub-windows' sum, minor units
 * (-1: no window) */
static int64_t
window_sum(const merchant_t *m)
{
    char          *wkey;
    size_t         i, wlen;
    int64_t        sum;
    redisContext  *c;
    redisReply    *r;

    wlen = strlen(str_printf("t%ld:money:w:", (long) getpid()))
           + strlen(m->id) + 4;
    wkey = malloc(wlen + 1);
    cr_assert_not_null(wkey);
    snprintf(wkey, wlen + 1, "t%ld:money:w:%s", (long) getpid(), m->id);
    memcpy(wkey + wlen - 3, "USD", 3);
    wkey[wlen - 4] = '\0';

    c = redis_client();
    r = redisCommand(c, "HVALS %b", wkey, wlen);
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY);
    sum = r->elements ? 0 : -1;
    for (i = 0; i < r->elements; i++) {
        sum += strtoll(r->element[i]->str, NULL, 10);
    }
    freeReplyObject(r);
    redisFree(c);
    free(wkey);

    return sum;
}


Test(limits_redis, two_gateways_admit_a_merchants_amount_once_not_twice,
     .timeout = 60)
{
    long           ra;
    char          *key1, *body1, *wkey;
    size_t         i, wlen;
    int64_t        sum;
    gateway_t      gc, gd;
    merchant_t     m, later;
    redisContext  *c;
    redisReply    *r;

    memset(&gc, 0, sizeof(gc));
    memset(&gd, 0, sizeof(gd));
    gateway_start(&gc, str_printf("rl-amt-c-%ld", (long) getpid()), 1,
                  amount_conf());
    gateway_start(&gd, str_printf("rl-amt-d-%ld", (long) getpid()), 1,
                  amount_conf());
    gateway_wait_ready(&gc, 10);
    gateway_wait_ready(&gd, 10);

    merchant_new(&m);
    merchant_new(&later);

    key1 = uid("key");
    body1 = one_order(uid("co"), "30.00");

    cr_assert_eq(pay_body(&gc, &m, key1, body1, "30.00", NULL), 201);
    cr_assert_eq(pay(&gd, &m, NULL, uid("co"), "30.00", NULL), 201);

    /* a replay on the other gateway: not a second 30.00.  Its give-back
     * goes to Redis without the answer waiting for it (limit_amount_back):
     * the next payment is sent once Redis has it, or it could count the
     * replay's 30.00 still (seen once in CI, 2026-11-27) */
    cr_assert_eq(pay_body(&gd, &m, key1, body1, "30.00", NULL), 201);
    for (i = 0; i < 200 && window_sum(&m) != 6000; i++) {
        msleep(10);
    }
    cr_assert_eq(window_sum(&m), 6000, "the replay's 30.00 was not given back");

    cr_assert_eq(pay(&gc, &m, NULL, uid("co"), "30.00", NULL), 201);

    /* 90.00 + 20.00 > 100.00, on either gateway: until the first leaves
     * the window, an hour */
    cr_assert_eq(pay(&gd, &m, NULL, uid("co"), "20.00", &ra), 429);
    cr_assert(ra >= 3000 && ra <= 3600 + 3600 / 16 + 1, "Retry-After %ld",
              ra);
    cr_assert_eq(pay(&gc, &m, NULL, uid("co"), "20.00", NULL), 429);

    /* 100.00 exactly, then not a cent more */
    cr_assert_eq(pay(&gd, &m, NULL, uid("co"), "10.00", NULL), 201);
    cr_assert_eq(pay(&gc, &m, NULL, uid("co"), "0.01", NULL), 429);

    /* in Redis: the window's sub-windows sum to 100.00, with an expiry */
    wlen = strlen(str_printf("t%ld:money:w:", (long) getpid()))
           + strlen(m.id) + 4;
    wkey = malloc(wlen + 1);
    cr_assert_not_null(wkey);
    snprintf(wkey, wlen + 1, "t%ld:money:w:%s", (long) getpid(), m.id);
    memcpy(wkey + wlen - 3, "USD", 3);
    wkey[wlen - 4] = '\0';

    c = redis_client();
    r = redisCommand(c, "HVALS %b", wkey, wlen);
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1,
              "no window in Redis for the merchant");
    sum = 0;
    for (i = 0; i < r->elements; i++) {
        sum += strtoll(r->element[i]->str, NULL, 10);
    }
    freeReplyObject(r);
    cr_assert_eq(sum, 10000, "the window in Redis holds %lld", (long long) sum);

    r = redisCommand(c, "PTTL %b", wkey, wlen);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0
              && r->integer <= 3600000 + 3600000 / 16);
    freeReplyObject(r);
    redisFree(c);
    free(wkey);

    cr_assert_eq(fallbacks(&gc, "money"), 0);
    cr_assert_eq(fallbacks(&gd, "money"), 0);

    /* Redis gone: each gateway its share, 50.00 */
    redis_stop();

    cr_assert_eq(pay(&gc, &later, NULL, uid("co"), "30.00", NULL), 201);
    cr_assert_eq(pay(&gc, &later, NULL, uid("co"), "30.00", NULL), 429);
    cr_assert_eq(pay(&gd, &later, NULL, uid("co"), "50.00", NULL), 201);
    cr_assert_eq(pay(&gd, &later, NULL, uid("co"), "0.01", NULL), 429);

    cr_assert(fallbacks(&gc, "money") >= 2);
    cr_assert(fallbacks(&gd, "money") >= 2);
    cr_assert_eq(log_count(&gc, "zones with store=redis decide without "
                           "it"), 1);

    gateway_stop(&gc);
    gateway_stop(&gd);
}


/*
 * The amount script against the C code it stands for (pay_rl_window_add,
 * _remove, _wait in src/ratelimit.c), checkout by checkout on the test's
 * Redis with the time given: the same verdict, the same wait, the same
 * sub-window, and a give-back taken off the same sub-window.
 */
Test(limits_redis, the_amount_script_is_the_c_window)
{
    int              i, k, fits;
    char            *key;
    int64_t          amount, max;
    uint64_t         now, wait, slot, window, seed, idx;
    redisContext    *c;
    redisReply      *r;
    pay_rl_window_t  w;
    static const uint64_t  steps[] = { 0, 1, 17, 999, 60000, 225000,
                                        3600000, 7200000 };

    c = redis_client();
    seed = 0x2545f4914f6cdd1dULL ^ (uint64_t) getpid();
    window = 3600000;
    slot = window / PAY_RL_SUBWINDOWS;

    for (k = 0; k < 4; k++) {
        key = str_printf("t%ld:eq:w:%d", (long) getpid(), k);
        memset(&w, 0, sizeof(w));
        now = 1700000000000ULL + (uint64_t) k * 77777;
        max = k % 2 ? 10000 : 1;

        for (i = 0; i < 150; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            now += steps[(seed >> 33) % (sizeof(steps) / sizeof(steps[0]))];
            amount = (int64_t) ((seed >> 13) % (uint64_t) (max + max / 3 + 1));
            idx = pay_rl_slot(now, slot);

            if (((seed >> 7) & 7) == 0 && i > 0) {
                /* a give-back of what went into an earlier sub-window */
                uint64_t  at = idx - ((seed >> 40) % 3);

                pay_rl_window_remove(&w, at, amount, idx);
                r = redisCommand(c, "EVAL %s 1 %s sub %llu %llu %llu %lld "
                                 "%llu", pay_rl_redis_script, key,
                                 (unsigned long long) now,
                                 (unsigned long long) slot,
                                 (unsigned long long) window,
                                 (long long) amount,
                                 (unsigned long long) at);
                cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY,
                          "step %d: sub: %s", i,
                          r && r->str ? r->str : "no array");
                freeReplyObject(r);
                continue;
            }

            wait = 0;
            fits = pay_rl_window_add(&w, idx, amount, max, slot, window, now,
                                     &wait) == 0;

            r = redisCommand(c, "EVAL %s 1 %s add %llu %llu %llu %lld %lld",
                             pay_rl_redis_script, key,
                             (unsigned long long) now,
                             (unsigned long long) slot,
                             (unsigned long long) window,
                             (long long) amount, (long long) max);
            cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY
                      && r->elements == 2, "step %d: %s", i,
                      r && r->str ? r->str : "no array");
            cr_assert_eq(r->element[0]->integer, fits ? 0 : 1,
                         "key %d step %d: the script says %lld, C %d", k, i,
                         r->element[0]->integer, !fits);
            cr_assert_eq((uint64_t) r->element[1]->integer,
                         fits ? idx : wait, "key %d step %d: %s", k, i,
                         fits ? "sub-window" : "wait");
            freeReplyObject(r);
        }
    }

    redisFree(c);
}


/*
 * A check that Redis answers too late adds nothing for good: its request
 * went on without the answer (on_error=deny: a 503), and the amount the
 * script added all the same is given back once the late answer shows it
 * (on the same connection, before any later check of it).  A retry with
 * the same Idempotency-Key then fits: 60.00 + 60.00 would not
 * (max=USD:100.00).
 */
Test(limits_redis, an_amount_redis_added_too_late_is_given_back,
     .timeout = 60)
{
    int         i, answered;
    char       *key, *body;
    resp_t     *r;
    gateway_t   gw;
    merchant_t  m, warm;

    memset(&gw, 0, sizeof(gw));
    gateway_start(&gw, str_printf("rl-amt-late-%ld", (long) getpid()), 1,
        str_printf(
            "payments_database \"%s\";\n"
            "payments_database_pool 2;\n"
            "payments_sweeper off;\n%s"
            "payments_limit_redis 127.0.0.1:%ld "
            "password_file=%s/redis.password timeout=200ms prefix=t%ld;\n"
            "payments_limit_amount money size=64k window=1h "
            "max=USD:100.00 store=redis on_error=deny;\n"
            "payments_limit amount=money;\n",
            pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
            redis_port, redis_dir, (long) getpid()));
    gateway_wait_ready(&gw, 10);

    merchant_new(&m);
    merchant_new(&warm);

    /* the link up: a checkout admitted through Redis */
    for (i = 0; i < 50; i++) {
        r = gateway_send(&gw, "POST", PATH_PAYMENTS, &warm, uid("key"),
                         one_order(uid("co"), "1.00"));
        if (r->status == 201) {
            resp_free(r);
            break;
        }
        resp_free(r);
        msleep(100);
    }
    cr_assert(i < 50, "the gateway did not use Redis within 5 s");

    key = uid("key");
    body = one_order(uid("co"), "60.00");

    /* Redis hangs: the check's timer fires first, 503 */
    answered = log_count(&gw, "answers again after");
    cr_assert(redis_child > 0);
    cr_assert_eq(kill(redis_child, SIGSTOP), 0);

    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    kill(redis_child, SIGCONT);
    expect_problem(r, 503, "store_unavailable");
    resp_free(r);

    /* Redis runs the script late and answers: the link is used again */
    for (i = 0; i < 100 && log_count(&gw, "answers again after") == answered;
         i++)
    {
        msleep(20);
    }
    cr_assert_eq(log_count(&gw, "answers again after"), answered + 1,
                 "Redis's late answer never came");

    /* the same checkout again: 60.00 fits, once */
    cr_assert_eq(pay_body(&gw, &m, key, body, "60.00", NULL), 201,
                 "the late 60.00 was never given back (window %lld)",
                 (long long) window_sum(&m));
    cr_assert_eq(window_sum(&m), 6000);

    gateway_stop(&gw);
}


/*
 * A claim sent whose answer the gateway never read (its query timed out
 * while another transaction held its Idempotency-Key) keeps its amount
 * counted in Redis: PostgreSQL commits it afterwards, and the retry with
 * the same key finds it made and gives its own amount back.  Before, the
 * amount was given back at the 503 and the registered checkout was
 * counted nowhere.
 */
Test(limits_redis, an_amount_whose_claim_timed_out_stays_counted_in_redis,
     .timeout = 60)
{
    int          i;
    char        *co, *key, *body;
    PGconn      *hold;
    resp_t      *r;
    gateway_t    gw;
    merchant_t   m;
    const char  *p[2];

    memset(&gw, 0, sizeof(gw));
    gateway_start(&gw, str_printf("rl-amt-unknown-%ld", (long) getpid()), 1,
        str_printf(
            "payments_database \"%s\";\n"
            "payments_database_pool 2;\n"
            "payments_database_timeout 2s;\n"
            "payments_sweeper off;\n%s"
            "payments_limit_redis 127.0.0.1:%ld "
            "password_file=%s/redis.password timeout=1s prefix=t%ld;\n"
            "payments_limit_amount money size=64k window=1h "
            "max=USD:100.00 store=redis on_error=deny;\n"
            "payments_limit amount=money;\n",
            pg_gateway_conninfo(), gw_psp_conf(env("PAY_TEST_PSP"), "stripe"),
            redis_port, redis_dir, (long) getpid()));
    gateway_wait_ready(&gw, 10);

    merchant_new(&m);

    co = uid("co");
    key = uid("key");
    body = one_order(co, "40.00");

    /* the key held: the claim waits, its query times out, 503 */
    hold = db_hold_key(m.id, key, co);
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    db_release_key(hold);
    expect_problem(r, 503, "store_unavailable");
    resp_free(r);

    /* PostgreSQL never learnt that the gateway left: committed */
    p[0] = m.id;
    p[1] = co;
    for (i = 0; i < 50; i++) {
        if (strcmp(db_scalar("SELECT count(*) FROM checkouts WHERE"
                             " merchant_id = $1 AND checkout_id = $2", 2, p),
                   "1") == 0)
        {
            break;
        }
        msleep(100);
    }
    cr_assert_lt(i, 50, "the held claim never committed");

    cr_assert_eq(window_sum(&m), 4000, "the registered 40.00 was given "
                 "back: the window holds %lld", (long long) window_sum(&m));

    /* 40.00 counted: 61.00 more is over max */
    cr_assert_eq(pay(&gw, &m, NULL, uid("co"), "61.00", NULL), 429);

    /* the retry with the same key gives its own 40.00 back */
    r = gateway_send(&gw, "POST", PATH_PAYMENTS, &m, key, body);
    cr_assert(r->status == 409 || r->status == 201, "the retry: %ld %s",
              r->status, r->body);
    resp_free(r);

    /* counted once: 60.00 fits exactly */
    cr_assert_eq(pay(&gw, &m, NULL, uid("co"), "60.00", NULL), 201);
    cr_assert_eq(window_sum(&m), 10000);

    gateway_stop(&gw);
}
