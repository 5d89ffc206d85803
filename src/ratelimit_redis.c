/*
 * ngx_payments core: request-rate buckets in Redis (include/payments/
 * ratelimit_redis.h).
 */

#include <payments/ratelimit_redis.h>

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>



/*
 * KEYS[1] the bucket; ARGV: "rate", now (ms, 0: Redis's TIME), rate
 * (milli-requests a minute), burst (milli-requests), account (0 or 1).
 * Lua's numbers are doubles: every product stays below 2^53 (the time
 * that drains a bucket is capped at what drains it whole, as the C code's
 * day), and numbers are stored with %.0f, never Lua's %.14g.
 */
const char  pay_rl_redis_script[] =
    "local key = KEYS[1]\n"
    "local op = ARGV[1]\n"
    "local now = tonumber(ARGV[2])\n"
    "if now == 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    /*
     * The amount windows (ratelimit.h's pay_rl_window_*): a hash of
     * sub-window index -> sum; index = floor(now / slot) + 1; a window is
     * its last 17 sub-windows; the ones that left are deleted when met.
     * ARGV: op, now, slot, window, amount, max (add) or the index the
     * amount went into (sub).  "peek" answers as "add" would, and adds
     * nothing (the failures guard: amount 1, max its max).
     */
    /*
     * The failures guard's checkout record (a hash of field -> a failure
     * window's key tail): "note" sets one field, "failed" counts one
     * failure in the window of each tail it holds (ARGV[5] the windows'
     * key prefix), the same arithmetic as "add" without a max.
     */
    "local function bump(k, idx, slot, now)\n"
    "  local h = redis.call('HGETALL', k)\n"
    "  for i = 1, #h, 2 do\n"
    "    local n = tonumber(h[i])\n"
    "    if n == nil or tonumber(h[i + 1]) == nil or n + 17 <= idx then\n"
    "      redis.call('HDEL', k, h[i])\n"
    "    end\n"
    "  end\n"
    "  redis.call('HINCRBY', k, string.format('%.0f', idx), 1)\n"
    "  local ttl = (idx + 16) * slot - now\n"
    "  if ttl < 1 then ttl = 1 end\n"
    "  redis.call('PEXPIRE', k, string.format('%.0f', ttl))\n"
    "end\n"
    "if op == 'note' then\n"
    "  redis.call('HSET', key, ARGV[4], ARGV[5])\n"
    "  redis.call('PEXPIRE', key, ARGV[3])\n"
    "  return {0, 0}\n"
    "end\n"
    "if op == 'failed' then\n"
    "  local slot = tonumber(ARGV[3])\n"
    "  local idx = math.floor(now / slot) + 1\n"
    "  local h = redis.call('HGETALL', key)\n"
    "  for i = 2, #h, 2 do\n"
    "    bump(ARGV[5] .. h[i], idx, slot, now)\n"
    "  end\n"
    "  return {0, 0}\n"
    "end\n"
    "if op == 'add' or op == 'sub' or op == 'peek' then\n"
    "  local slot = tonumber(ARGV[3])\n"
    "  local window = tonumber(ARGV[4])\n"
    "  local amount = tonumber(ARGV[5])\n"
    "  local idx = math.floor(now / slot) + 1\n"
    "  local h = redis.call('HGETALL', key)\n"
    "  local sums = {}\n"
    "  local total = 0\n"
    "  for i = 1, #h, 2 do\n"
    "    local k = tonumber(h[i])\n"
    "    local v = tonumber(h[i + 1])\n"
    "    if k == nil or v == nil or k + 17 <= idx then\n"
    "      redis.call('HDEL', key, h[i])\n"
    "    else\n"
    "      sums[k] = v\n"
    "      total = total + v\n"
    "    end\n"
    "  end\n"
    "  if op == 'sub' then\n"
    "    local at = tonumber(ARGV[6])\n"
    "    local v = sums[at]\n"
    "    if v and v > 0 and amount > 0 then\n"
    "      if amount > v then amount = v end\n"
    "      redis.call('HINCRBY', key, string.format('%.0f', at),\n"
    "                 string.format('%.0f', -amount))\n"
    "    end\n"
    "    return {0, 0}\n"
    "  end\n"
    "  local max = tonumber(ARGV[6])\n"
    "  if amount > max - total then\n"
    "    local limit = max - amount\n"
    "    if limit >= 0 then\n"
    "      local first = idx - 16\n"
    "      if first < 1 then first = 1 end\n"
    "      for k = first, idx do\n"
    "        total = total - (sums[k] or 0)\n"
    "        if total <= limit then\n"
    "          local at = (k + 16) * slot\n"
    "          if at > now then return {1, at - now} end\n"
    "          return {1, 1}\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    return {1, window + slot}\n"
    "  end\n"
    "  if op == 'peek' then return {0, 0} end\n"
    "  redis.call('HINCRBY', key, string.format('%.0f', idx),\n"
    "             string.format('%.0f', amount))\n"
    "  local ttl = (idx + 16) * slot - now\n"
    "  if ttl < 1 then ttl = 1 end\n"
    "  redis.call('PEXPIRE', key, string.format('%.0f', ttl))\n"
    "  return {0, idx}\n"
    "end\n"
    "if op ~= 'rate' then\n"
    "  return redis.error_reply('ERR payments: unknown operation')\n"
    "end\n"
    "local rate = tonumber(ARGV[3])\n"
    "local burst = tonumber(ARGV[4])\n"
    "local s = redis.call('HMGET', key, 'e', 't')\n"
    "local excess = tonumber(s[1])\n"
    "local last = tonumber(s[2])\n"
    "local e = 0\n"
    "if last and excess then\n"
    "  local ms = now - last\n"
    "  if ms < 0 then ms = 0 end\n"
    "  if ms > 86400000 then ms = 86400000 end\n"
    "  local whole = math.floor((excess + 1000) * 60000 / rate) + 1\n"
    "  if ms > whole then ms = whole end\n"
    "  e = excess - math.floor(rate * ms / 60000) + 1000\n"
    "  if e < 0 then e = 0 end\n"
    "else\n"
    "  last = nil\n"
    "end\n"
    "if e > burst then\n"
    "  local d = (e - burst) * 60000\n"
    "  local w = math.floor(d / rate)\n"
    "  if d - w * rate > 0 then w = w + 1 end\n"
    "  return {1, w}\n"
    "end\n"
    "if ARGV[5] == '1' then\n"
    "  if last == nil or now > last then last = now end\n"
    "  local ttl = last + math.floor((e + 1000) * 60000 / rate) + 1 - now\n"
    "  if ttl < 1 then ttl = 1 end\n"
    "  redis.call('HSET', key, 'e', string.format('%.0f', e),\n"
    "             't', string.format('%.0f', last))\n"
    "  redis.call('PEXPIRE', key, string.format('%.0f', ttl))\n"
    "end\n"
    "return {0, 0}\n";


/*
 * hiredis 0.14's reader allocates an array's elements as soon as it reads
 * their count ("*2000000000\r\n": 16 GB asked for before one element
 * came); the scripts answer arrays of two.  The reader's own functions,
 * with an array of more than PAY_RL_REDIS_ARRAY_MAX refused (the reader
 * then fails: "Out of memory", the connection dropped).
 */
static redisReplyObjectFunctions  pay_rl_redis_fn;
static void *(*pay_rl_redis_create_array)(const redisReadTask *task,
    int elements);


static void *
pay_rl_redis_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > PAY_RL_REDIS_ARRAY_MAX) {
        return NULL;
    }

    return pay_rl_redis_create_array(task, elements);
}


redisReader *
pay_rl_redis_reader(void)
{
    redisReader  *r;

    r = redisReaderCreate();
    if (r == NULL) {
        return NULL;
    }

    if (pay_rl_redis_create_array == NULL) {
        pay_rl_redis_fn = *r->fn;
        pay_rl_redis_create_array = r->fn->createArray;
        pay_rl_redis_fn.createArray = pay_rl_redis_array;
    }

    r->fn = &pay_rl_redis_fn;

    return r;
}


void
pay_rl_redis_script_sha(char out[PAY_RL_REDIS_SHA_LEN + 1])
{
    unsigned char  md[SHA_DIGEST_LENGTH];
    size_t         i;

    SHA1((const unsigned char *) pay_rl_redis_script,
         sizeof(pay_rl_redis_script) - 1, md);

    for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }

    out[PAY_RL_REDIS_SHA_LEN] = '\0';
}


size_t
pay_rl_redis_key(char *out, size_t cap, const char *prefix, size_t plen,
    const char *zone, size_t zlen, const void *key, size_t klen)
{
    return pay_rl_redis_key_of(out, cap, prefix, plen, zone, zlen, 'r', key,
                               klen);
}


size_t
pay_rl_redis_key_of(char *out, size_t cap, const char *prefix, size_t plen,
    const char *zone, size_t zlen, char kind, const void *key, size_t klen)
{
    size_t  len;

    if (plen == 0 || zlen == 0 || memchr(prefix, ':', plen) != NULL
        || memchr(zone, ':', zlen) != NULL)
    {
        return 0;
    }

    if (plen > PAY_RL_REDIS_KEY_MAX || zlen > PAY_RL_REDIS_KEY_MAX
        || klen > PAY_RL_REDIS_KEY_MAX)
    {
        return 0;
    }

    len = plen + 1 + zlen + 3 + klen;

    if (len > cap || len > PAY_RL_REDIS_KEY_MAX) {
        return 0;
    }

    memcpy(out, prefix, plen);
    out[plen] = ':';
    memcpy(out + plen + 1, zone, zlen);
    out[plen + 1 + zlen] = ':';
    out[plen + 1 + zlen + 1] = kind;
    out[plen + 1 + zlen + 2] = ':';
    memcpy(out + plen + 1 + zlen + 3, key, klen);

    return len;
}


static void
pay_rl_redis_arg(pay_rl_redis_cmd_t *cmd, const char *s, size_t len)
{
    cmd->argv[cmd->argc] = s;
    cmd->argvlen[cmd->argc] = len;
    cmd->argc++;
}


static void
pay_rl_redis_num(pay_rl_redis_cmd_t *cmd, int i, uint64_t v)
{
    int  n;

    n = snprintf(cmd->nums[i], sizeof(cmd->nums[i]), "%llu",
                 (unsigned long long) v);
    pay_rl_redis_arg(cmd, cmd->nums[i], (size_t) n);
}


void
pay_rl_redis_rate_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t now, uint64_t rate,
    uint64_t burst, int account)
{
    cmd->argc = 0;

    pay_rl_redis_arg(cmd, "EVALSHA", 7);
    pay_rl_redis_arg(cmd, sha, strlen(sha));
    pay_rl_redis_arg(cmd, "1", 1);
    pay_rl_redis_arg(cmd, key, klen);
    pay_rl_redis_arg(cmd, "rate", 4);
    pay_rl_redis_num(cmd, 0, now);
    pay_rl_redis_num(cmd, 1, rate);
    pay_rl_redis_num(cmd, 2, burst);
    pay_rl_redis_arg(cmd, account ? "1" : "0", 1);
}


void
pay_rl_redis_window_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, int sub, uint64_t now, uint64_t slot,
    uint64_t window, int64_t amount, uint64_t max_or_idx)
{
    cmd->argc = 0;

    pay_rl_redis_arg(cmd, "EVALSHA", 7);
    pay_rl_redis_arg(cmd, sha, strlen(sha));
    pay_rl_redis_arg(cmd, "1", 1);
    pay_rl_redis_arg(cmd, key, klen);
    pay_rl_redis_arg(cmd, sub ? "sub" : "add", 3);
    pay_rl_redis_num(cmd, 0, now);
    pay_rl_redis_num(cmd, 1, slot);
    pay_rl_redis_num(cmd, 2, window);
    pay_rl_redis_num(cmd, 3, amount > 0 ? (uint64_t) amount : 0);
    pay_rl_redis_num(cmd, 4, max_or_idx);
}


void
pay_rl_redis_peek_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t now, uint64_t slot,
    uint64_t window, uint64_t max)
{
    pay_rl_redis_window_cmd(cmd, sha, key, klen, 0, now, slot, window, 1,
                            max);
    cmd->argv[4] = "peek";
    cmd->argvlen[4] = 4;
}


void
pay_rl_redis_note_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t ttl, const char *field,
    size_t flen, const void *value, size_t vlen)
{
    cmd->argc = 0;

    pay_rl_redis_arg(cmd, "EVALSHA", 7);
    pay_rl_redis_arg(cmd, sha, strlen(sha));
    pay_rl_redis_arg(cmd, "1", 1);
    pay_rl_redis_arg(cmd, key, klen);
    pay_rl_redis_arg(cmd, "note", 4);
    pay_rl_redis_num(cmd, 0, 0);
    pay_rl_redis_num(cmd, 1, ttl > 0 ? ttl : 1);
    pay_rl_redis_arg(cmd, field, flen);
    pay_rl_redis_arg(cmd, value, vlen);
}


void
pay_rl_redis_failed_cmd(pay_rl_redis_cmd_t *cmd, const char *sha,
    const char *key, size_t klen, uint64_t now, uint64_t slot,
    uint64_t window, const char *fprefix, size_t fplen)
{
    cmd->argc = 0;

    pay_rl_redis_arg(cmd, "EVALSHA", 7);
    pay_rl_redis_arg(cmd, sha, strlen(sha));
    pay_rl_redis_arg(cmd, "1", 1);
    pay_rl_redis_arg(cmd, key, klen);
    pay_rl_redis_arg(cmd, "failed", 6);
    pay_rl_redis_num(cmd, 0, now);
    pay_rl_redis_num(cmd, 1, slot);
    pay_rl_redis_num(cmd, 2, window);
    pay_rl_redis_arg(cmd, fprefix, fplen);
}


/*
 * The scripts' reply, {flag, value} two integers, or what else Redis said:
 * FITS with *v and *w set, else NOSCRIPT, REFUSED or MALFORMED.
 */
static pay_rl_redis_rc_e
pay_rl_redis_pair(const redisReply *reply, long long *v, long long *w)
{
    const redisReply  *a, *b;

    if (reply == NULL) {
        return PAY_RL_REDIS_MALFORMED;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        if (reply->str != NULL && reply->len >= 8
            && memcmp(reply->str, "NOSCRIPT", 8) == 0)
        {
            return PAY_RL_REDIS_NOSCRIPT;
        }

        return PAY_RL_REDIS_REFUSED;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element == NULL)
    {
        return PAY_RL_REDIS_MALFORMED;
    }

    a = reply->element[0];
    b = reply->element[1];

    if (a == NULL || b == NULL || a->type != REDIS_REPLY_INTEGER
        || b->type != REDIS_REPLY_INTEGER)
    {
        return PAY_RL_REDIS_MALFORMED;
    }

    *v = a->integer;
    *w = b->integer;

    return PAY_RL_REDIS_FITS;
}


pay_rl_redis_rc_e
pay_rl_redis_window_answer(const redisReply *reply, uint64_t *value)
{
    long long          v, w;
    pay_rl_redis_rc_e  rc;

    rc = pay_rl_redis_pair(reply, &v, &w);

    if (rc != PAY_RL_REDIS_FITS) {
        return rc;
    }

    if (w < 0) {
        return PAY_RL_REDIS_MALFORMED;
    }

    /* fits: the sub-window it went into (0 for a give-back) */
    if (v == 0) {
        *value = (uint64_t) w;
        return PAY_RL_REDIS_FITS;
    }

    if (v == 1 && w >= 1
        && (unsigned long long) w <= PAY_RL_REDIS_WINDOW_WAIT_MAX)
    {
        *value = (uint64_t) w;
        return PAY_RL_REDIS_BUSY;
    }

    return PAY_RL_REDIS_MALFORMED;
}


pay_rl_redis_rc_e
pay_rl_redis_answer(const redisReply *reply, uint64_t *wait)
{
    long long          v, w;
    pay_rl_redis_rc_e  rc;

    rc = pay_rl_redis_pair(reply, &v, &w);

    if (rc != PAY_RL_REDIS_FITS) {
        return rc;
    }

    if (v == 0 && w == 0) {
        return PAY_RL_REDIS_FITS;
    }

    if (v == 1 && w >= 1
        && (unsigned long long) w <= PAY_RL_REDIS_WAIT_MAX)
    {
        *wait = (uint64_t) w;
        return PAY_RL_REDIS_BUSY;
    }

    return PAY_RL_REDIS_MALFORMED;
}
