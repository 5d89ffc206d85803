
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's card-testing guard, what it counts and
 * by which key: the keys (a shopper's address, a webhook's sender, a
 * buyer's salted hash, a checkout), the failures counted (a refused
 * registration, a FAILED checkout, a webhook whose signature failed) and
 * the checkout's record of whose failure it would be.  A zone kept in
 * Redis (store=redis) counts and remembers there, every key an HMAC under
 * the zone's salt, which every gateway derives from the same key file
 * (payments_limit_redis hash_key_file=): never an address, an e-mail, a
 * buyer's id or a checkout in the clear.  Without Redis it counts in its
 * own zone, as a local zone does.  Its check, which may wait for Redis,
 * is _limit_wait.c's.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>


/* keys */


/* the client's address as $binary_remote_addr has it; 0 for others */

size_t
ngx_http_payments_limit_addr(ngx_http_request_t *r, u_char *buf)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (r->connection->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) r->connection->sockaddr;
        ngx_memcpy(buf, &sin->sin_addr, 4);
        return 4;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ngx_memcpy(buf, &sin6->sin6_addr.s6_addr[12], 4);
            return 4;
        }

        ngx_memcpy(buf, sin6->sin6_addr.s6_addr, 16);
        return 16;
#endif

    default:
        return 0;
    }
}


/* 'a' + the address: a failures key */

size_t
ngx_http_payments_limit_addr_key(ngx_http_request_t *r, u_char *buf)
{
    size_t  n;

    n = ngx_http_payments_limit_addr(r, buf + 1);
    if (n == 0) {
        return 0;
    }

    buf[0] = 'a';

    return n + 1;
}


/*
 * A webhook's sender: prefix + the PSP's name + NUL + the client's address,
 * an IPv6 address cut to its /64 (one site holds a whole /64, and would
 * otherwise have 2^64 fresh keys).  No address (a unix socket): the PSP
 * alone, as one sender, unless need_addr.  NGX_DECLINED: no key.
 */

ngx_int_t
ngx_http_payments_limit_sender_key(ngx_http_request_t *r, ngx_str_t *psp,
    u_char prefix, ngx_uint_t need_addr, ngx_str_t *key)
{
    u_char  *p, addr[16];
    size_t   n;

    n = ngx_http_payments_limit_addr(r, addr);

    if (n == 16) {
        n = 8;
    }

    if ((n == 0 && need_addr) || psp->len > 1024) {
        return NGX_DECLINED;
    }

    key->data = ngx_pnalloc(r->pool, 1 + psp->len + 1 + n);
    if (key->data == NULL) {
        return NGX_DECLINED;
    }

    p = key->data;
    *p++ = prefix;
    p = ngx_cpymem(p, psp->data, psp->len);
    *p++ = '\0';
    p = ngx_cpymem(p, addr, n);
    key->len = p - key->data;

    return NGX_OK;
}


/* 'c' + merchant + NUL + checkout: whose failure the checkout's would be */

ngx_int_t
ngx_http_payments_limit_checkout_key(ngx_pool_t *pool, ngx_str_t *merchant,
    const u_char *checkout, size_t len, ngx_str_t *key)
{
    u_char  *p;

    if (merchant->len + len > 1024) {
        return NGX_ERROR;
    }

    key->data = ngx_pnalloc(pool, merchant->len + len + 2);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = key->data;
    *p++ = 'c';
    p = ngx_cpymem(p, merchant->data, merchant->len);
    *p++ = '\0';
    p = ngx_cpymem(p, checkout, len);
    key->len = p - key->data;

    return NGX_OK;
}


/*
 * A buyer's key: HMAC-SHA-256 under the zone's salt of the merchant and the
 * buyer's e-mail (lower case) or id, cut to 16 bytes.  The e-mail itself is
 * never stored.  The salt is random and never leaves the shared memory,
 * or, in a zone kept in Redis, derived from the key file every gateway
 * reads (never sent to Redis).
 */

void
ngx_http_payments_limit_buyer_hash(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *merchant, char kind, const char *value, u_char *out)
{
    u_char         *p, buf[1024], mac[EVP_MAX_MD_SIZE];
    size_t          len, mlen;
    unsigned int    maclen;

    /* merchant ids and buyer values are far shorter: cut, never overrun */
    mlen = ngx_min(merchant->len, 256);
    len = ngx_strlen(value);
    len = ngx_min(len, sizeof(buf) - mlen - 3);

    p = ngx_cpymem(buf, merchant->data, mlen);
    *p++ = '\0';
    *p++ = (u_char) kind;
    *p++ = ':';

    if (kind == 'e') {
        ngx_strlow(p, (u_char *) value, len);
        p += len;

    } else {
        p = ngx_cpymem(p, value, len);
    }

    maclen = 0;

    if (HMAC(EVP_sha256(), z->sh->salt, sizeof(z->sh->salt), buf, p - buf,
             mac, &maclen)
        == NULL || maclen < NGX_HTTP_PAYMENTS_LIMIT_HASH)
    {
        /* cannot happen with SHA-256; a constant key fails safe */
        ngx_memzero(mac, NGX_HTTP_PAYMENTS_LIMIT_HASH);
    }

    ngx_memcpy(out, mac, NGX_HTTP_PAYMENTS_LIMIT_HASH);
}


/*
 * What a key of a failures zone is called in Redis: HMAC-SHA-256 of the
 * local key under the zone's salt, cut to 16 bytes, into buf (16 bytes).
 * The same on every gateway that reads the same key file.
 */

void
ngx_http_payments_limit_failures_tail(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, u_char *buf, ngx_str_t *tail)
{
    u_char        mac[EVP_MAX_MD_SIZE];
    unsigned int  maclen;

    maclen = 0;

    if (HMAC(EVP_sha256(), z->sh->salt, sizeof(z->sh->salt), key->data,
             key->len, mac, &maclen)
        == NULL || maclen < NGX_HTTP_PAYMENTS_LIMIT_HASH)
    {
        ngx_memzero(mac, NGX_HTTP_PAYMENTS_LIMIT_HASH);
    }

    ngx_memcpy(buf, mac, NGX_HTTP_PAYMENTS_LIMIT_HASH);
    tail->data = buf;
    tail->len = NGX_HTTP_PAYMENTS_LIMIT_HASH;
}


/* counts */


/*
 * One failure of key: in Redis (nothing waits for the answer), or, Redis
 * down, in the zone's own memory (what its on_error=local checks read;
 * with on_error=deny nothing reads it, and nothing is counted).
 */

void
ngx_http_payments_limit_failure_count(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, ngx_log_t *log)
{
    u_char     buf[NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_str_t  tail;

    if (z->redis) {
        ngx_http_payments_limit_failures_tail(z, key, buf, &tail);

        /* a window's add of 1 that always fits */
        if (ngx_http_payments_limit_redis_window(z, &tail, 0, 1,
                                     NGX_HTTP_PAYMENTS_LIMIT_REDIS_MAX,
                                     NULL, NULL, log, NULL)
            == NGX_OK)
        {
            return;
        }

        ngx_http_payments_limit_redis_fell_back(z);

        if (z->deny) {
            return;
        }
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    ngx_http_payments_limit_fail_locked(z, key);
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * A checkout's record in a zone kept in Redis: field (the buyer's '0' or
 * '1', the address's 'a') names the failure window of key, the record
 * (ckey, the checkout's key) expiring in ttl ms.  Nothing waits; Redis
 * down, only the zone's own record has it.
 */

void
ngx_http_payments_limit_failure_note(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *ckey, char field, ngx_str_t *key, ngx_msec_t ttl,
    ngx_log_t *log)
{
    u_char     cbuf[NGX_HTTP_PAYMENTS_LIMIT_HASH];
    u_char     kbuf[NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_str_t  ctail, ktail;

    if (!z->redis) {
        return;
    }

    ngx_http_payments_limit_failures_tail(z, ckey, cbuf, &ctail);
    ngx_http_payments_limit_failures_tail(z, key, kbuf, &ktail);

    if (ngx_http_payments_limit_redis_note(z, &ctail, field, &ktail, ttl,
                                           log)
        != NGX_OK)
    {
        ngx_http_payments_limit_redis_fell_back(z);
    }
}


/* hooks */


void
ngx_http_payments_limit_webhook_unverified(ngx_http_payments_ctx_t *ctx)
{
    ngx_str_t                            key;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_rule_t      *rule;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);
    rule = &lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_WEBHOOK_FAILED];

    if (rule->zone == NULL || ctx->psp == NULL
        || ngx_http_payments_limit_sender_key(r, &ctx->psp->name, 'w', 1,
                                              &key)
           != NGX_OK)
    {
        return;
    }

    ngx_http_payments_limit_failure_count(rule->zone->data, &key,
                                          r->connection->log);
}


void
ngx_http_payments_limit_pay_seen(ngx_http_payments_ctx_t *ctx)
{
    u_char                               addr[17];
    size_t                               n;
    ngx_str_t                            key, akey;
    ngx_msec_t                           ttl;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_node_t      *ln;
    ngx_http_payments_limit_checkout_t  *co;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone == NULL
        || ctx->merchant.len == 0)
    {
        return;
    }

    n = ngx_http_payments_limit_addr(r, addr + 1);

    if (n == 0
        || ngx_http_payments_limit_checkout_key(r->pool, &ctx->merchant,
                                                ctx->object_id.data,
                                                ctx->object_id.len, &key)
           != NGX_OK)
    {
        return;
    }

    z = lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone->data;
    ttl = (ngx_msec_t) ctx->pmcf->session_lifetime * 2000;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, &key,
                                   sizeof(ngx_http_payments_limit_checkout_t),
                                   1);
    if (ln) {
        co = (ngx_http_payments_limit_checkout_t *) ln->data;
        ngx_memcpy(co->addr, addr + 1, n);
        co->addrlen = (u_char) n;

        if ((ngx_msec_int_t) (ln->expire - ngx_current_msec) <= 0) {
            ln->expire = ngx_current_msec + ttl;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    addr[0] = 'a';
    akey.data = addr;
    akey.len = n + 1;

    ngx_http_payments_limit_failure_note(z, &key, 'a', &akey, ttl,
                                         r->connection->log);
}


void
ngx_http_payments_limit_failed(ngx_http_payments_ctx_t *ctx,
    const char *merchant, const char *checkout)
{
    u_char                               kbuf[1 + 16];
    u_char                               tbuf[NGX_HTTP_PAYMENTS_LIMIT_HASH];
    ngx_str_t                            key, ckey, m, tail;
    ngx_uint_t                           i;
    ngx_http_request_t                  *r = ctx->request;
    ngx_http_payments_limit_zone_t      *z;
    ngx_http_payments_limit_node_t      *ln;
    ngx_http_payments_limit_checkout_t   co;
    ngx_http_payments_limit_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_payments_limit_module);

    if (lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone == NULL
        || merchant == NULL || checkout == NULL || *merchant == '\0')
    {
        return;
    }

    m.data = (u_char *) merchant;
    m.len = ngx_strlen(merchant);

    if (ngx_http_payments_limit_checkout_key(r->pool, &m,
                                             (u_char *) checkout,
                                             ngx_strlen(checkout), &ckey)
        != NGX_OK)
    {
        return;
    }

    z = lcf->rules[NGX_HTTP_PAYMENTS_LIMIT_FAILED].zone->data;

    /* in Redis, whichever gateway noted the checkout: one script call
     * counts a failure for each key its record names */

    if (z->redis) {
        ngx_http_payments_limit_failures_tail(z, &ckey, tbuf, &tail);

        if (ngx_http_payments_limit_redis_failed(z, &tail,
                                                 r->connection->log)
            == NGX_OK)
        {
            return;
        }

        ngx_http_payments_limit_redis_fell_back(z);

        if (z->deny) {
            return;
        }
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, &ckey,
                                   sizeof(ngx_http_payments_limit_checkout_t),
                                   0);
    if (ln == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    ngx_memcpy(&co, ln->data, sizeof(co));

    for (i = 0; i < co.nbuyers && i < 2; i++) {
        kbuf[0] = 'b';
        ngx_memcpy(kbuf + 1, co.buyer[i], NGX_HTTP_PAYMENTS_LIMIT_HASH);
        key.data = kbuf;
        key.len = 1 + NGX_HTTP_PAYMENTS_LIMIT_HASH;

        ngx_http_payments_limit_fail_locked(z, &key);
    }

    if (co.addrlen) {
        kbuf[0] = 'a';
        ngx_memcpy(kbuf + 1, co.addr, co.addrlen);
        key.data = kbuf;
        key.len = 1 + co.addrlen;

        ngx_http_payments_limit_fail_locked(z, &key);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}
