/*
 * libFuzzer: the POST /v1/payments body.  Beyond not crashing: a success
 * must hold what the parser promises (ids valid, amounts > 0, total the
 * exact sum), and a failure must leave nothing to free.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/checkout.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          i;
    int64_t         sum;
    pay_checkout_t  co;
    pay_verdict_t   v;

    if (pay_checkout_parse((const char *) data, size, &co, &v) != 0) {
        if (v.err == PAY_ERR_NONE || co.root != NULL || co.orders != NULL
            || memchr(v.detail, '\0', sizeof(v.detail)) == NULL)
        {
            abort();
        }

        return 0;
    }

    if (co.norders == 0 || co.norders > PAY_ORDERS_MAX
        || !pay_id_valid(co.checkout_id, strlen(co.checkout_id))
        || co.success_url == NULL || co.cancel_url == NULL)
    {
        abort();
    }

    sum = 0;
    for (i = 0; i < co.norders; i++) {
        if (co.orders[i].amount <= 0
            || !pay_id_valid(co.orders[i].id, strlen(co.orders[i].id))
            || !pay_seller_valid(co.orders[i].seller,
                                 strlen(co.orders[i].seller)))
        {
            abort();
        }

        sum += co.orders[i].amount;
    }

    if (sum != co.total) {
        abort();
    }

    pay_checkout_free(&co);

    return 0;
}
