/*
 * ngx_payments core: a route's order of PSPs for one checkout (route.h).
 */

#include <string.h>

#include <openssl/sha.h>

#include <payments/route.h>


uint32_t
pay_route_draw(const char *key, uint32_t total)
{
    uint64_t       v;
    size_t         i;
    unsigned char  md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *) key, strlen(key), md);

    v = 0;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | md[i];
    }

    return (uint32_t) (v % total);
}


void
pay_route_order(const unsigned *weights, size_t n, const char *key,
    size_t *order)
{
    size_t    i, j, first;
    uint32_t  total, at;

    total = 0;
    for (i = 0; i < n; i++) {
        total += weights[i];
    }

    first = 0;

    if (total > 0) {
        at = pay_route_draw(key, total);

        for (i = 0; i < n; i++) {
            if (at < weights[i]) {
                first = i;
                break;
            }

            at -= weights[i];
        }
    }

    order[0] = first;

    for (i = 0, j = 1; i < n; i++) {
        if (i != first) {
            order[j++] = i;
        }
    }
}
