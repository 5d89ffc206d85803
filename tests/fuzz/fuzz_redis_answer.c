/*
 * libFuzzer: what a Redis server sends back to the limit zones, read as
 * the gateway reads it: hiredis's reader (the bytes as they arrive on the
 * connection) and then the scripts' answers, the rate zone's
 * (pay_rl_redis_answer) and the amount window's (pay_rl_redis_window_answer).
 *
 * Input: the bytes of the connection, fed in two pieces (the reader keeps
 * a partial reply).  Whatever they are, every reply read is one of the
 * answers' five outcomes; a wait is 1 .. its maximum; "fits" from the rate
 * zone is only the {0, 0} it sends; a NOSCRIPT is only an error reply.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/read.h>

#include <payments/ratelimit_redis.h>


static void
check(const redisReply *reply)
{
    uint64_t           wait, value;
    pay_rl_redis_rc_e  rc;

    wait = 0;
    rc = pay_rl_redis_answer(reply, &wait);

    switch (rc) {
    case PAY_RL_REDIS_FITS:
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
            || reply->element[0]->integer != 0
            || reply->element[1]->integer != 0)
        {
            __builtin_trap();
        }
        break;

    case PAY_RL_REDIS_BUSY:
        if (wait < 1 || wait > PAY_RL_REDIS_WAIT_MAX) {
            __builtin_trap();
        }
        break;

    case PAY_RL_REDIS_NOSCRIPT:
    case PAY_RL_REDIS_REFUSED:
        if (reply->type != REDIS_REPLY_ERROR) {
            __builtin_trap();
        }
        break;

    case PAY_RL_REDIS_MALFORMED:
        break;

    default:
        __builtin_trap();
    }

    value = 0;
    rc = pay_rl_redis_window_answer(reply, &value);

    switch (rc) {
    case PAY_RL_REDIS_FITS:
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
            || reply->element[0]->integer != 0
            || (long long) value != reply->element[1]->integer)
        {
            __builtin_trap();
        }
        break;

    case PAY_RL_REDIS_BUSY:
        if (value < 1 || value > PAY_RL_REDIS_WINDOW_WAIT_MAX) {
            __builtin_trap();
        }
        break;

    case PAY_RL_REDIS_NOSCRIPT:
    case PAY_RL_REDIS_REFUSED:
        if (reply->type != REDIS_REPLY_ERROR) {
            __builtin_trap();
        }
        break;

    case PAY_RL_REDIS_MALFORMED:
        break;

    default:
        __builtin_trap();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          n;
    void        *reply;
    size_t       half;
    redisReader *reader;

    reader = pay_rl_redis_reader();
    if (reader == NULL) {
        return 0;
    }

    half = size / 2;

    if (redisReaderFeed(reader, (const char *) data, half) != REDIS_OK) {
        redisReaderFree(reader);
        return 0;
    }

    for (n = 0; n < 2; n++) {
        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(reader, &reply) != REDIS_OK
                || reply == NULL)
            {
                break;
            }

            check(reply);
            freeReplyObject(reply);
        }

        if (n == 0
            && redisReaderFeed(reader, (const char *) data + half,
                               size - half) != REDIS_OK)
        {
            break;
        }
    }

    redisReaderFree(reader);

    return 0;
}
