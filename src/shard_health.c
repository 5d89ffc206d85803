/*
 * ngx_payments core: /readyz over shards (include/payments/shard_health.h).
 */

#include <payments/shard_health.h>

#include <string.h>

#include <payments/shard.h>


static const char  *pay_shard_health_names[] = {
    "ready", "read_only", "unavailable"
};


const char *
pay_shard_health_name(pay_shard_health_e st)
{
    if ((unsigned) st > PAY_SHARD_UNAVAILABLE) {
        st = PAY_SHARD_UNAVAILABLE;
    }

    return pay_shard_health_names[st];
}


pay_shard_health_e
pay_shard_health_of(int answered, int schema_old, const char *read_only)
{
    if (!answered || schema_old) {
        return PAY_SHARD_UNAVAILABLE;
    }

    if (read_only != NULL && strcmp(read_only, "t") == 0) {
        return PAY_SHARD_READ_ONLY;
    }

    return PAY_SHARD_READY;
}


int
pay_shard_health_any(const pay_shard_health_e *st, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (st[i] == PAY_SHARD_READY) {
            return 1;
        }
    }

    return 0;
}


static int
pay_shard_health_put(char *buf, size_t size, size_t *at, const char *s,
    size_t len)
{
    if (*at + len >= size) {
        return -1;
    }

    memcpy(buf + *at, s, len);
    *at += len;

    return 0;
}


long
pay_shard_health_json(const char *const *names, const size_t *lens,
    const pay_shard_health_e *st, size_t n, char *buf, size_t size)
{
    size_t       i, j, at;
    const char  *state;

    static const char  head[] = "{\"status\":\"ready\",\"shards\":{";

    at = 0;

    if (buf == NULL || size == 0
        || pay_shard_health_put(buf, size, &at, head, sizeof(head) - 1))
    {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > PAY_SHARD_NAME_MAX) {
            return -1;
        }

        for (j = 0; j < lens[i]; j++) {
            if (!((names[i][j] >= 'a' && names[i][j] <= 'z')
                  || (names[i][j] >= '0' && names[i][j] <= '9')
                  || names[i][j] == '_'))
            {
                return -1;
            }
        }

        state = pay_shard_health_name(st[i]);

        if ((i > 0 && pay_shard_health_put(buf, size, &at, ",", 1))
            || pay_shard_health_put(buf, size, &at, "\"", 1)
            || pay_shard_health_put(buf, size, &at, names[i], lens[i])
            || pay_shard_health_put(buf, size, &at, "\":\"", 3)
            || pay_shard_health_put(buf, size, &at, state, strlen(state))
            || pay_shard_health_put(buf, size, &at, "\"", 1))
        {
            return -1;
        }
    }

    if (pay_shard_health_put(buf, size, &at, "}}\n", 3)) {
        return -1;
    }

    buf[at] = '\0';

    return (long) at;
}
