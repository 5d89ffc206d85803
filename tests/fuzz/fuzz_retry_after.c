/*
 * libFuzzer: a PSP's Retry-After header (pay_retry_after_ms) and, through
 * it, the HTTP-date form of the one date parser (pay_time_parse).
 *
 * Input: the header's value.  Whatever the bytes, the answer is -1 or a
 * wait of 0 .. one day, never more; a value that is all digits is never
 * -1; an HTTP date parses only from its 29 bytes, to 0 .. PAY_TIME_MAX.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/breaker.h>
#include <payments/time.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       i;
    int64_t      ms, t, now;
    const char  *s = (const char *) data;

    /* 2026-11-22T10:00:00Z, and the epoch */
    for (now = 0; now <= 1795341600000LL; now += 1795341600000LL) {
        ms = pay_retry_after_ms(s, size, now);

        if (ms < -1 || ms > 86400LL * 1000) {
            __builtin_trap();
        }

        for (i = 0; i < size && s[i] >= '0' && s[i] <= '9'; i++) {
            /* void */
        }

        if (size > 0 && i == size && ms < 0) {
            __builtin_trap();
        }
    }

    t = pay_time_parse(s, size, PAY_TIME_HTTP);

    if (t < -1 || t > PAY_TIME_MAX || (t >= 0 && size != 29)) {
        __builtin_trap();
    }

    return 0;
}
