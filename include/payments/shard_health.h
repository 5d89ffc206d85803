/*
 * ngx_payments core: what GET /readyz says of each shard when there are
 * several, or of the one ?shard=NAME asks about (doc/plans/shards.md,
 * "Blast radius").  No I/O.
 *
 *   ready        the shard answered with a current schema
 *   read_only    it answered, but takes no writes (a standby, or
 *                default_transaction_read_only): reads still work, but it
 *                is not ready
 *   unavailable  no answer, an error, its breaker open, or an older schema
 */
#ifndef PAYMENTS_SHARD_HEALTH_H
#define PAYMENTS_SHARD_HEALTH_H

#include <stddef.h>

typedef enum {
    PAY_SHARD_READY = 0,
    PAY_SHARD_READ_ONLY,
    PAY_SHARD_UNAVAILABLE
} pay_shard_health_e;

/* "ready", "read_only", "unavailable" */
const char *pay_shard_health_name(pay_shard_health_e st);

/*
 * A shard's state from its /readyz row: answered 0 (no row: unavailable),
 * schema_old (its schema is older than the module's: unavailable), and
 * the second column as text ("t": read only).
 */
pay_shard_health_e pay_shard_health_of(int answered, int schema_old,
    const char *read_only);

/*
 * 1 when the gateway is ready: at least one shard is ready (every gateway
 * shares a shard's outage, so one shard down must not take them all out of
 * the balancer; but a gateway that no shard takes a write from is not
 * ready, as with one database).  0 for n == 0.
 */
int pay_shard_health_any(const pay_shard_health_e *st, size_t n);

/*
 * The 200 body: {"status":"ready","shards":{"a":"ready",...}} and a
 * newline, names in the given order.  Returns its length (no NUL
 * counted; one written when it fits), or -1 when a name is not a shard
 * name ([a-z0-9_]{1,16}: nothing is escaped, nothing unchecked is
 * written) or buf is too small.
 */
long pay_shard_health_json(const char *const *names, const size_t *lens,
    const pay_shard_health_e *st, size_t n, char *buf, size_t size);

#endif
