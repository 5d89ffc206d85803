/*
 * The e2e harness: the Redis of the limits' suite (test_limits_redis.c,
 * test_limits_redis_failures.c).  Debian's redis-server on a free loopback
 * port, a child of the test's process that dies with it (never a daemon),
 * with a password and an ACL user; a client of the test's own to look into
 * it; the gateways' fallback counters and log lines.
 */
#ifndef E2E_HARNESS_REDIS_H
#define E2E_HARNESS_REDIS_H

#include <sys/types.h>
#include <hiredis/hiredis.h>

#include "harness_gateways.h"


#define REDIS_PASSWORD  "rl-test-redis-Kq7vXw2p"

/* a Redis 6 ACL user of its own, for payments_limit_redis user= */
#define REDIS_USER           "payments-gw"
#define REDIS_USER_PASSWORD  "rl-test-acl-Zt4mQe9r"


extern long          redis_port;
extern char         *redis_dir;
extern pid_t         redis_child;

/* more lines for redis.conf (TLS), or NULL */
extern const char   *redis_extra_conf;

/* a client of the test's own (AUTH as the default user) */
redisContext *redis_client(void);

/* whether something answers PING on redis_port */
int redis_answers(void);

/* redis-server on redis_port in redis_dir, answering before it returns */
void redis_start(void);

/* killed and reaped */
void redis_stop(void);

/* payments_limit_store_fallbacks_total{zone} of a gateway's /metrics */
double fallbacks(const gateway_t *gw, const char *zone);

/* how many times needle is in a gateway's error log */
int log_count(const gateway_t *gw, const char *needle);

/* a secret file of mode 0600 in redis_dir */
char *secret_file(const char *name, const char *value);

#endif
