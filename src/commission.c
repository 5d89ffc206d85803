/*
 * ngx_payments core: commission and balance arithmetic (commission.h,
 * where the rounding rule is stated).  128-bit products: A * bps and
 * R * C cannot overflow for any int64 inputs.
 */

#include <stddef.h>
#include <stdint.h>

#include <payments/commission.h>


typedef __int128  pay_i128_t;


int
pay_commission(int64_t amount, int bps, int64_t fixed, int64_t *commission)
{
    pay_i128_t  c;

    if (commission == NULL || amount < 0 || bps < 0
        || bps > PAY_COMMISSION_BPS_MAX || fixed < 0)
    {
        return -1;
    }

    /* floor: every operand is >= 0, so C's division truncates down */
    c = (pay_i128_t) amount * bps / PAY_COMMISSION_BPS_MAX;
    c += fixed;

    *commission = c > amount ? amount : (int64_t) c;

    return 0;
}


int
pay_commission_refund(int64_t amount, int64_t commission,
    int64_t refunded_before, int64_t refund, int64_t *commission_part)
{
    if (amount <= 0 || commission < 0 || commission > amount
        || refunded_before < 0 || refunded_before > amount)
    {
        return -1;
    }

    /* nothing undone: the refunds before booked their telescoped sum */
    return pay_commission_refund_share(amount, commission, refunded_before,
               (int64_t) ((pay_i128_t) refunded_before * commission / amount),
               refund, commission_part);
}


int
pay_commission_refund_share(int64_t amount, int64_t commission,
    int64_t refunded_before, int64_t booked_before, int64_t refund,
    int64_t *commission_part)
{
    pay_i128_t  after, c;

    if (commission_part == NULL || amount <= 0 || commission < 0
        || commission > amount || refunded_before < 0 || refund < 0
        || refunded_before > amount || refund > amount - refunded_before
        || booked_before < 0 || booked_before > commission)
    {
        return -1;
    }

    after = (pay_i128_t) (refunded_before + refund) * commission / amount;

    /* against what is booked: a refund undone leaves no unit behind;
     * within [0, refund], so neither share of it is negative */
    c = after - booked_before;

    if (c < 0) {
        c = 0;

    } else if (c > refund) {
        c = refund;
    }

    *commission_part = (int64_t) c;

    return 0;
}


int
pay_balance_available(int64_t wallet, int64_t pending, int64_t held,
    int64_t *avail)
{
    int64_t  v;

    if (avail == NULL || pending < 0 || held < 0
        || __builtin_sub_overflow(wallet, pending, &v)
        || __builtin_sub_overflow(v, held, &v))
    {
        return -1;
    }

    *avail = v;

    return 0;
}
