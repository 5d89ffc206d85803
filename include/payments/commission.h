/*
 * ngx_payments core: the platform's commission on an order, its share of
 * a refund, and a seller's available balance.  Integer minor units only;
 * the SQL implements the same formulas (commission_of, and
 * commission_refund_share for a refund's part) and an e2e test compares
 * them.
 *
 * Rounding rule (stated once, here):
 *
 *   order commission  C = min(A, floor(A * bps / 10000) + fixed)
 *   seller net        A - C
 *
 * where A is the order's amount (> 0 minor units), bps 0..10000 basis
 * points and fixed >= 0 (the merchant's fixed amount in that currency, 0
 * if none).  The percentage is rounded down, so the remainder of the
 * division stays with the seller, and C never exceeds A: C + (A - C) = A
 * exactly.
 *
 *   refund of r, after R_before already refunded of this order
 *   (R_after = R_before + r <= A):
 *     commission part  c = floor(R_after * C / A) - floor(R_before * C / A)
 *     seller part      r - c
 *
 * The commission given back is the cumulative proportion rounded down, so
 * the parts of any sequence of refunds telescope: refunding the whole
 * order, in any number of pieces of any size, gives back exactly C and
 * A - C, and no piece is ever negative (0 <= c <= r).
 *
 * A refund can fail after it succeeded, and its booking is then undone:
 * the parts of the refunds still standing are no longer the telescoped
 * sum.  A part is therefore taken against what the standing refunds have
 * booked (B), not against their amount alone:
 *
 *   refund of r, R_before refunded and B booked by the refunds standing:
 *     commission part  c = min(r, max(0, floor(R_after * C / A) - B))
 *
 * which is the formula above when nothing was undone (B is then
 * floor(R_before * C / A)).  Whatever was undone, the commission given
 * back never exceeds C, the seller's share never exceeds A - C, and the
 * refund that completes the order gives back exactly what is left of both.
 *
 * Every product is computed in 128 bits: amounts up to INT64_MAX (far
 * beyond the 2^53 the JSON API carries) never overflow.
 */
#ifndef PAYMENTS_COMMISSION_H
#define PAYMENTS_COMMISSION_H

#include <stdint.h>

#define PAY_COMMISSION_BPS_MAX  10000

/* C for an order of amount (>= 0), bps 0..10000, fixed >= 0.  Returns 0
 * with *commission set, or -1 on bad input. */
int pay_commission(int64_t amount, int bps, int64_t fixed,
    int64_t *commission);

/* c for a refund (>= 0) of an order of amount (> 0) whose commission is
 * commission (0..amount), refunded_before (>= 0) already refunded, and
 * refunded_before + refund <= amount.  Returns 0 with *commission_part
 * set, or -1 on bad input. */
int pay_commission_refund(int64_t amount, int64_t commission,
    int64_t refunded_before, int64_t refund, int64_t *commission_part);

/* c by the rule above, against booked_before (0..commission) booked by the
 * refunds standing; the inputs otherwise as pay_commission_refund's.
 * Returns 0 with *commission_part set (0 <= c <= refund), or -1 on bad
 * input. */
int pay_commission_refund_share(int64_t amount, int64_t commission,
    int64_t refunded_before, int64_t booked_before, int64_t refund,
    int64_t *commission_part);

/* available = wallet - pending_payouts - held (may be negative; a
 * pay-out needs amount <= available), held what the seller's open
 * chargebacks and pending refunds will take of its wallet at most (per
 * order, one refund of their sum's seller share: the SQL's
 * seller_available).  pending and held >= 0.  Returns 0, or -1 on bad
 * input or when the result does not fit. */
int pay_balance_available(int64_t wallet, int64_t pending, int64_t held,
    int64_t *avail);

#endif
