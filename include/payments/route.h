/*
 * ngx_payments core: the order in which a route (payments_route) asks its
 * PSPs for one checkout.  The first choice is drawn by the PSPs' weights
 * from a stable hash of the checkout's nonce (<merchant>:<checkout>), so
 * that every retry of a checkout draws the same; the others follow in the
 * order the route lists them.  Which outcomes let a checkout move on to
 * the next: pay_dialect_no_session (dialect.h).
 */
#ifndef PAYMENTS_ROUTE_H
#define PAYMENTS_ROUTE_H

#include <stddef.h>
#include <stdint.h>


#define PAY_ROUTE_PSPS_MAX        8
#define PAY_ROUTE_WEIGHT_MAX      10000


/* A number in [0, total) from the SHA-256 of key; total > 0. */
uint32_t pay_route_draw(const char *key, uint32_t total);

/*
 * order[0..n-1] := the route's PSPs (indexes into weights) in the order
 * they are asked for the checkout whose nonce is key: the first drawn by
 * weight (a weight of 0 is never drawn; when every weight is 0 the first
 * listed goes first), then the rest as listed.  1 <= n <=
 * PAY_ROUTE_PSPS_MAX.
 */
void pay_route_order(const unsigned *weights, size_t n, const char *key,
    size_t *order);

#endif
