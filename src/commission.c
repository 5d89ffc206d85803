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
    pay_i128_t  before, after;

    if (commission_part == NULL || amount <= 0 || commission < 0
        || commission > amount || refunded_before < 0 || refund < 0
        || refunded_before > amount || refund > amount - refunded_before)
    {
        return -1;
    }

    before = (pay_i128_t) refunded_before * commission / amount;
    after = (pay_i128_t) (refunded_before + refund) * commission / amount;

    *commission_part = (int64_t) (after - before);

    return 0;
}


int
pay_balance_available(int64_t wallet, int64_t pending, int64_t disputes,
    int64_t *avail)
{
    int64_t  v;

    if (avail == NULL || pending < 0 || disputes < 0
        || __builtin_sub_overflow(wallet, pending, &v)
        || __builtin_sub_overflow(v, disputes, &v))
    {
        return -1;
    }

    *avail = v;

    return 0;
}
