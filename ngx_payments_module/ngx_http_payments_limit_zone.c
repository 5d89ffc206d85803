
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's zones: the shared memory, its tree and
 * LRU queue (as limit_req keeps them), and the three kinds of state: a
 * leaky bucket, an amount window, a failures window.  Every function runs
 * under the zone's mutex, in a few hundred nanoseconds.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <payments/money.h>





/* zones */


static void
ngx_http_payments_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_payments_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = (ngx_http_payments_limit_node_t *) &node->color;
            lnt = (ngx_http_payments_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data + ln->vlen, lnt->data + lnt->vlen,
                              ln->klen, lnt->klen) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * A failures zone kept in Redis hashes its keys with the salt every gateway
 * derives from the shared key file (payments_limit_redis hash_key_file=),
 * not a random one: a buyer is the same key in Redis whichever gateway
 * counts it.
 */

static void
ngx_http_payments_limit_shared_salt(ngx_http_payments_limit_zone_t *z)
{
    if (z->redis && z->kind == NGX_HTTP_PAYMENTS_LIMIT_FAILURES) {
        ngx_memcpy(z->sh->salt, z->salt, sizeof(z->salt));
    }
}


ngx_int_t
ngx_http_payments_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_payments_limit_zone_t  *oz = data;

    size_t                           len;
    ngx_http_payments_limit_zone_t  *z;

    z = shm_zone->data;

    if (oz) {
        /* the old nodes' layout and meaning must not change under them */
        if (oz->kind != z->kind
            || (z->kind != NGX_HTTP_PAYMENTS_LIMIT_RATE
                && oz->window != z->window))
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "payments_limit zone \"%V\" was a \"%s\" zone "
                          "with another kind or window before the reload: "
                          "give the new zone a new name",
                          &shm_zone->shm.name,
                          ngx_http_payments_limit_kinds[oz->kind]);
            return NGX_ERROR;
        }

        z->sh = oz->sh;
        z->shpool = oz->shpool;

        ngx_http_payments_limit_shared_salt(z);

        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;

        ngx_http_payments_limit_shared_salt(z);

        return NGX_OK;
    }

    z->sh = ngx_slab_alloc(z->shpool,
                           sizeof(ngx_http_payments_limit_shctx_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_payments_limit_rbtree_insert_value);
    ngx_queue_init(&z->sh->queue);

    z->sh->kind = z->kind;
    z->sh->window = z->window;
    z->sh->rejected = 0;

    if (RAND_bytes(z->sh->salt, sizeof(z->sh->salt)) != 1) {
        return NGX_ERROR;
    }

    ngx_http_payments_limit_shared_salt(z);

    len = sizeof(" in payments_limit zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in payments_limit zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Frees nodes at the LRU tail: force == 0 frees one or two that carry no
 * state any more; force == 1 frees the oldest first, whatever it holds.
 * Under the zone's mutex.
 */

static void
ngx_http_payments_limit_expire(ngx_http_payments_limit_zone_t *z,
    ngx_uint_t force)
{
    ngx_uint_t                       n;
    ngx_msec_t                       now;
    ngx_queue_t                     *q;
    ngx_rbtree_node_t               *node;
    ngx_http_payments_limit_node_t  *ln;

    now = ngx_current_msec;

    for (n = force ? 0 : 1; n < 3; n++) {

        if (ngx_queue_empty(&z->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&z->sh->queue);
        ln = ngx_queue_data(q, ngx_http_payments_limit_node_t, queue);

        /* lookups move nodes to the head: past a live one, all are live */
        if (n != 0 && (ngx_msec_int_t) (now - ln->expire) < 0) {
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&z->sh->rbtree, node);
        ngx_slab_free_locked(z->shpool, node);
    }
}


/* The node of key, moved to the LRU head; a new zeroed one if create.
 * Under the zone's mutex.  NULL: absent, or no memory (logged). */

ngx_http_payments_limit_node_t *
ngx_http_payments_limit_lookup(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, size_t vlen, ngx_uint_t create)
{
    size_t                           size;
    uint32_t                         hash;
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_payments_limit_node_t  *ln;

    hash = ngx_crc32_short(key->data, key->len);

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_http_payments_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, ln->data + ln->vlen, key->len,
                          ln->klen);

        if (rc == 0 && ln->vlen == vlen) {
            ngx_queue_remove(&ln->queue);
            ngx_queue_insert_head(&z->sh->queue, &ln->queue);
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    if (!create) {
        return NULL;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_payments_limit_node_t, data)
           + vlen + key->len;

    ngx_http_payments_limit_expire(z, 0);

    node = ngx_slab_alloc_locked(z->shpool, size);

    if (node == NULL) {
        ngx_http_payments_limit_expire(z, 1);

        node = ngx_slab_alloc_locked(z->shpool, size);
        if (node == NULL) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "payments: could not allocate a node%s",
                          z->shpool->log_ctx);
            return NULL;
        }
    }

    node->key = hash;

    ln = (ngx_http_payments_limit_node_t *) &node->color;

    ln->klen = (u_short) key->len;
    ln->vlen = (u_short) vlen;
    ln->expire = ngx_current_msec;
    ngx_memzero(ln->data, vlen);
    ngx_memcpy(ln->data + vlen, key->data, key->len);

    ngx_rbtree_insert(&z->sh->rbtree, node);
    ngx_queue_insert_head(&z->sh->queue, &ln->queue);

    return ln;
}


/*
 * One request against a rate rule.  NGX_OK: it fits (and was counted if
 * account); NGX_BUSY: it does not, *wait is the time in ms until one
 * request fits.  An unknown key fits: its first request starts its bucket.
 * share > 1: this gateway's share of a zone kept in Redis, while Redis
 * does not answer (rate and burst divided by the zone's gateways=).
 * The bucket's arithmetic: pay_rl_rate_* (src/ratelimit.c).
 */

ngx_int_t
ngx_http_payments_limit_rate(ngx_http_payments_limit_rule_t *rule,
    ngx_str_t *key, ngx_uint_t account, ngx_uint_t share, ngx_msec_t *wait)
{
    int64_t                          excess;
    uint64_t                         w, rate, burst;
    ngx_http_payments_limit_rate_t  *rt;
    ngx_http_payments_limit_node_t  *ln;
    ngx_http_payments_limit_zone_t  *z;

    z = rule->zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, key,
                                        sizeof(ngx_http_payments_limit_rate_t),
                                        account);
    if (ln == NULL) {
        /* not seen yet, or no memory: fail open, as limit_req does */
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_OK;
    }

    rt = (ngx_http_payments_limit_rate_t *) ln->data;

    rate = z->rate / share;
    burst = rule->burst / share;

    if (rate == 0) {
        rate = 1;
    }

    if (pay_rl_rate_check(rt, rate, burst, ngx_current_msec, &excess, &w))
    {
        *wait = (ngx_msec_t) w;
        (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    if (account) {
        pay_rl_rate_take(rt, excess, ngx_current_msec);

        /* a new node would be no different after this */
        ln->expire = (ngx_msec_t) pay_rl_rate_expire(rt, rate);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


/* A sum of amounts per (merchant, currency): reserve amount, or say when
 * it would fit.  The window's arithmetic: pay_rl_window_* (src/
 * ratelimit.c). */

ngx_int_t
ngx_http_payments_limit_amount(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, int64_t max, uint64_t *idx,
    ngx_msec_t *wait)
{
    uint64_t                           w;
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *win;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     1);
    if (ln == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        *idx = 0;
        return NGX_OK;
    }

    win = (ngx_http_payments_limit_window_t *) ln->data;
    *idx = pay_rl_slot(ngx_current_msec, z->slot);

    if (pay_rl_window_add(win, *idx, amount, max, z->slot, z->window,
                          ngx_current_msec, &w))
    {
        *wait = (ngx_msec_t) w;
        (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    ln->expire = (ngx_msec_t) pay_rl_window_expire(win, z->slot);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


void
ngx_http_payments_limit_unreserve(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t amount, uint64_t idx)
{
    ngx_http_payments_limit_node_t  *ln;

    ngx_shmtx_lock(&z->shpool->mutex);

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     0);
    if (ln) {
        pay_rl_window_remove((ngx_http_payments_limit_window_t *) ln->data,
                             idx, amount,
                             pay_rl_slot(ngx_current_msec, z->slot));
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* failures: is key at max?  Under the zone's mutex. */

ngx_int_t
ngx_http_payments_limit_failures_locked(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key, int64_t max, ngx_msec_t *wait)
{
    int64_t                            total;
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *w;

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     0);
    if (ln == NULL) {
        return NGX_OK;
    }

    w = (ngx_http_payments_limit_window_t *) ln->data;
    total = pay_rl_window_advance(w, pay_rl_slot(ngx_current_msec, z->slot));

    if (total < max) {
        return NGX_OK;
    }

    *wait = (ngx_msec_t) pay_rl_window_wait(w, total, max - 1, z->slot,
                                            z->window, ngx_current_msec);
    (void) ngx_atomic_fetch_add(&z->sh->rejected, 1);

    return NGX_BUSY;
}


void
ngx_http_payments_limit_fail_locked(ngx_http_payments_limit_zone_t *z,
    ngx_str_t *key)
{
    ngx_http_payments_limit_node_t    *ln;
    ngx_http_payments_limit_window_t  *w;

    ln = ngx_http_payments_limit_lookup(z, key,
                                     sizeof(ngx_http_payments_limit_window_t),
                                     1);
    if (ln == NULL) {
        return;
    }

    w = (ngx_http_payments_limit_window_t *) ln->data;
    pay_rl_window_count(w, pay_rl_slot(ngx_current_msec, z->slot), z->max);
    ln->expire = (ngx_msec_t) pay_rl_window_expire(w, z->slot);
}
