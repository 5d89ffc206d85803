/*
 * Unit tests: /readyz over shards (src/shard_health.c): each shard's
 * state from its row, when the gateway is ready, and the body's bytes.
 */

#include <string.h>

#include <criterion/criterion.h>

#include <payments/shard_health.h>


Test(shard_health, a_row_with_a_current_schema_is_ready)
{
    cr_expect_eq(pay_shard_health_of(1, 0, "f"), PAY_SHARD_READY);
}


Test(shard_health, a_read_only_server_is_read_only)
{
    cr_expect_eq(pay_shard_health_of(1, 0, "t"), PAY_SHARD_READ_ONLY);
}


Test(shard_health, no_answer_or_an_old_schema_is_unavailable)
{
    cr_expect_eq(pay_shard_health_of(0, 0, NULL), PAY_SHARD_UNAVAILABLE);
    cr_expect_eq(pay_shard_health_of(1, 1, "f"), PAY_SHARD_UNAVAILABLE);
    cr_expect_eq(pay_shard_health_of(1, 1, "t"), PAY_SHARD_UNAVAILABLE);
}


Test(shard_health, one_shard_ready_is_enough)
{
    pay_shard_health_e  down[] = { PAY_SHARD_UNAVAILABLE,
                                   PAY_SHARD_UNAVAILABLE };
    pay_shard_health_e  one[] = { PAY_SHARD_UNAVAILABLE, PAY_SHARD_READY };
    pay_shard_health_e  ro[] = { PAY_SHARD_READ_ONLY,
                                 PAY_SHARD_UNAVAILABLE };
    pay_shard_health_e  ro_one[] = { PAY_SHARD_READ_ONLY, PAY_SHARD_READY };

    cr_expect_eq(pay_shard_health_any(down, 2), 0);
    cr_expect_eq(pay_shard_health_any(one, 2), 1);
    /* answering without taking writes is not ready */
    cr_expect_eq(pay_shard_health_any(ro, 2), 0);
    cr_expect_eq(pay_shard_health_any(ro_one, 2), 1);
    cr_expect_eq(pay_shard_health_any(one, 0), 0);
}


Test(shard_health, the_body_names_each_shard_in_order)
{
    char                buf[256];
    long                n;
    const char         *names[] = { "a", "eu_2", "b" };
    size_t              lens[] = { 1, 4, 1 };
    pay_shard_health_e  st[] = { PAY_SHARD_READY, PAY_SHARD_UNAVAILABLE,
                                 PAY_SHARD_READ_ONLY };

    n = pay_shard_health_json(names, lens, st, 3, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_expect_str_eq(buf, "{\"status\":\"ready\",\"shards\":{\"a\":\"ready\","
                     "\"eu_2\":\"unavailable\",\"b\":\"read_only\"}}\n");
    cr_expect_eq((size_t) n, strlen(buf));
}


Test(shard_health, a_name_is_cut_to_its_length)
{
    char                buf[128];
    const char         *names[] = { "abc" };
    size_t              lens[] = { 2 };
    pay_shard_health_e  st[] = { PAY_SHARD_READY };

    cr_assert_gt(pay_shard_health_json(names, lens, st, 1, buf, sizeof(buf)),
                 0);
    cr_expect_str_eq(buf, "{\"status\":\"ready\",\"shards\":{\"ab\":"
                     "\"ready\"}}\n");
}


Test(shard_health, a_name_that_would_need_escaping_is_refused)
{
    char                buf[128];
    const char         *quote[] = { "a\"b" };
    const char         *upper[] = { "A" };
    const char         *longer[] = { "abcdefghijklmnopq" };
    size_t              lens3[] = { 3 }, lens1[] = { 1 }, lens17[] = { 17 };
    size_t              lens0[] = { 0 };
    pay_shard_health_e  st[] = { PAY_SHARD_READY };

    cr_expect_eq(pay_shard_health_json(quote, lens3, st, 1, buf,
                                       sizeof(buf)), -1);
    cr_expect_eq(pay_shard_health_json(upper, lens1, st, 1, buf,
                                       sizeof(buf)), -1);
    cr_expect_eq(pay_shard_health_json(longer, lens17, st, 1, buf,
                                       sizeof(buf)), -1);
    cr_expect_eq(pay_shard_health_json(upper, lens0, st, 1, buf,
                                       sizeof(buf)), -1);
}


Test(shard_health, a_buffer_too_small_is_refused_not_overrun)
{
    char                buf[64];
    size_t              need, size;
    const char         *names[] = { "a", "b" };
    size_t              lens[] = { 1, 1 };
    pay_shard_health_e  st[] = { PAY_SHARD_READY, PAY_SHARD_READY };

    need = (size_t) pay_shard_health_json(names, lens, st, 2, buf,
                                          sizeof(buf));
    cr_assert_gt(need, 0);

    /* the NUL too: exactly need + 1 fits, need does not */
    for (size = 1; size <= need; size++) {
        memset(buf, 'x', sizeof(buf));
        cr_expect_eq(pay_shard_health_json(names, lens, st, 2, buf, size),
                     -1, "size %zu", size);
        cr_expect_eq(buf[size], 'x', "size %zu", size);
    }

    cr_expect_eq(pay_shard_health_json(names, lens, st, 2, buf, need + 1),
                 (long) need);
}


Test(shard_health, an_unknown_state_reads_unavailable)
{
    cr_expect_str_eq(pay_shard_health_name((pay_shard_health_e) 9),
                     "unavailable");
    cr_expect_str_eq(pay_shard_health_name(PAY_SHARD_READ_ONLY),
                     "read_only");
}
