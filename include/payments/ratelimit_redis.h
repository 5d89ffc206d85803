/*
 * ngx_payments core: request-rate buckets kept in Redis, so that several
 * gateways share them (doc/ngx_http_payments_limit_module.md,
 * "payments_limit_redis").  The adapter sends one EVALSHA per check and
 * reads its answer; this file builds the keys and the command's arguments
 * and reads the answer (a redisReply that hiredis parsed).  It reads no
 * clock and opens no connection.
 *
 * The script (pay_rl_redis_script) is the leaky bucket of ratelimit.h's
 * pay_rl_rate_check/_take/_expire, done in Redis: one call reads the bucket,
 * decides, stores it and sets its expiry, atomically (Redis runs a script
 * alone).  Its clock is Redis's own (TIME), the same for every gateway;
 * an argument "now" other than 0 replaces it (the tests compare the script
 * with the C arithmetic at chosen times).
 *
 * The same script keeps the amount windows (ratelimit.h's pay_rl_window_*:
 * 16 sub-windows and the current one, as a hash of index -> sum): "add"
 * admits an amount while the window's sum stays within max, "sub" gives
 * one back.
 *
 * A key is  prefix ":" zone ":r:" key-bytes  (binary-safe: an address's
 * bytes, a merchant id, a PSP name and an address); a window's has ":w:".
 * The failures guard's windows have ":f:" and its checkout records ":c:",
 * each followed by an HMAC of the local key (the adapter's: never an
 * address, an e-mail or an id in the clear).
 */
#ifndef PAYMENTS_RATELIMIT_REDIS_H
#define PAYMENTS_RATELIMIT_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define PAY_RL_REDIS_KEY_MAX   1400     /* bytes of a key, at most */
#define PAY_RL_REDIS_SHA_LEN   40       /* hex characters */
#define PAY_RL_REDIS_ARGC      10

extern const char  pay_rl_redis_script[];

/* the most elements of an array a reply may have (the scripts send 2) */
#define PAY_RL_REDIS_ARRAY_MAX  64

/*
 * hiredis's reader (redisReaderCreate()) that refuses an array of more
 * than PAY_RL_REDIS_ARRAY_MAX elements before allocating them: what the
 * adapter reads Redis's replies with.  NULL: no memory.
 */
redisReader *pay_rl_redis_reader(void);

/* The script's SHA-1 in hex (what EVALSHA names), NUL-terminated. */
void pay_rl_redis_script_sha(char out[PAY_RL_REDIS_SHA_LEN + 1]);

/*
 * prefix ":" zone ":r:" key into out (cap bytes).  Returns the length, or
 * 0 when it does not fit, or prefix or zone is empty or holds a ':'.
 */
size_t pay_rl_redis_key(char *out, size_t cap, const char *prefix,
    size_t plen, const char *zone, size_t zlen, const void *key,
    size_t klen);

/* The same with the kind of state ('r' a bucket, 'w' a window). */
size_t pay_rl_redis_key_of(char *out, size_t cap, const char *prefix,
    size_t plen, const char *zone, size_t zlen, char kind, const void *key,
    size_t klen);

/* The arguments of one check, for redisAsyncCommandArgv. */
typedef struct {
    int          argc;
    const char  *argv[PAY_RL_REDIS_ARGC];
    size_t       argvlen[PAY_RL_REDIS_ARGC];
    char         nums[5][24];
} pay_rl_redis_cmd_t;

/*
 * EVALSHA sha 1 key "rate" now rate burst account: one request against the
 * bucket (rate: milli-requests a minute, > 0; burst: milli-requests;
 * account 0: only look; now 0: Redis's clock).  cmd points into key and
 * sha: they must outlive the call that sends it.
 */
void pay_rl_redis_rate_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t now, uint64_t rate,
    uint64_t burst, int account);

/* the longest wait an answer may give, ms: a rate zone's 31 days; a
 * window is 31 days at most, and its longest wait a window and a slot */
#define PAY_RL_REDIS_WAIT_MAX         (31ULL * 86400000ULL)
#define PAY_RL_REDIS_WINDOW_WAIT_MAX  (33ULL * 86400000ULL)

typedef enum {
    PAY_RL_REDIS_FITS = 0,          /* the request fits (and was counted) */
    PAY_RL_REDIS_BUSY,              /* it does not: *wait ms */
    PAY_RL_REDIS_NOSCRIPT,          /* Redis lost the script: load it */
    PAY_RL_REDIS_REFUSED,           /* an error reply (AUTH, OOM, ...) */
    PAY_RL_REDIS_MALFORMED          /* anything else */
} pay_rl_redis_rc_e;

/*
 * EVALSHA sha 1 key "add"|"sub" now slot window amount max|idx: an amount
 * (minor units, >= 0) admitted into the window while its sum stays within
 * max, or (sub) given back from sub-window idx while that one is still in
 * the window (slot, window: ms; now 0: Redis's clock).
 */
void pay_rl_redis_window_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, int sub, uint64_t now, uint64_t slot,
    uint64_t window, int64_t amount, uint64_t max_or_idx);

/*
 * EVALSHA sha 1 key "peek" now slot window 1 max: whether one more would
 * fit the window (the failures guard's check), adding nothing; answered
 * as a window's add, {0, 0} when it fits.
 */
void pay_rl_redis_peek_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t now, uint64_t slot,
    uint64_t window, uint64_t max);

/*
 * EVALSHA sha 1 key "note" 0 ttl field value: one field of a checkout's
 * record (the key tail of a failure window it would count in), the
 * record expiring in ttl ms.  Answered {0, 0}.
 */
void pay_rl_redis_note_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t ttl, const char *field,
    size_t flen, const void *value, size_t vlen);

/*
 * EVALSHA sha 1 key "failed" now slot window fprefix: the checkout of the
 * record failed: one failure counted in the window fprefix + tail of each
 * tail the record holds (none: nothing).  Answered {0, 0}.
 */
void pay_rl_redis_failed_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t now, uint64_t slot,
    uint64_t window, const char *fprefix, size_t fplen);

/*
 * A window's answer: {0, idx} (fits: *value the sub-window it went into,
 * 0 for a give-back) or {1, wait} (*value ms, 1 to 33 days); errors as
 * pay_rl_redis_answer's.
 */
pay_rl_redis_rc_e pay_rl_redis_window_answer(const redisReply *reply,
    uint64_t *value);

/*
 * The script's answer: an array of two integers, {0, 0} (fits) or
 * {1, wait} with 1 <= wait <= 31 days; anything else is not the script's.
 * NULL (no answer: the connection went) is MALFORMED.
 */
pay_rl_redis_rc_e pay_rl_redis_answer(const redisReply *reply,
    uint64_t *wait);

#endif
