/*
 * ngx_payments core: merchant shards (doc/plans/shards.md).  No I/O.
 *
 * A shard is a whole payments database; each merchant lives on one.  What
 * is here: the rules for a shard's name, the merchant a nonce names, how
 * one verified PSP event finds its shard (pay_event_route), and the
 * directory's table (merchant -> shard, key id -> merchant) over memory the
 * caller owns (the glue puts it in a shared zone, under its mutex).
 */
#ifndef PAYMENTS_SHARD_H
#define PAYMENTS_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include <payments/apikey.h>
#include <payments/webhook.h>

#define PAY_SHARD_NAME_MAX   16     /* [a-z0-9_]{1,16} */
#define PAY_SHARD_MAX        64     /* shards one gateway routes over */
#define PAY_MERCHANT_ID_MAX  23     /* merchants_id_format: [a-z0-9_]{1,23} */
#define PAY_NONCE_ID_MAX     64     /* psp_event_state: [A-Za-z0-9_-]{1,64} */

/* The name payments_database's single shard has; no payments_shard may
 * take it. */
#define PAY_SHARD_DEFAULT    "default"

/*
 * A payments_shard name: [a-z0-9_]{1,16}, not "default".  Returns 0, or -1
 * with *why (a static phrase for the configuration's error) set.
 */
int pay_shard_name_check(const char *name, size_t len, const char **why);

/* 1 when id is a merchant id (merchants_id_format), else 0. */
int pay_merchant_id_valid(const char *id, size_t len);

/*
 * The merchant our nonce names: a reference is ours when it is exactly
 * "<merchant>:<id>" with merchant [a-z0-9_]{1,23} and id
 * [A-Za-z0-9_-]{1,64} (checkouts, refunds, pay-outs, captures and voids
 * all have such ids; psp_event_state calls anything else foreign).
 * ref is NUL-terminated.  Returns 0 with merchant (NUL-terminated) set,
 * or -1 (not our nonce: "", "a:b:c", "ch_123", "Shop:1", a 24-character
 * merchant) with merchant "".
 */
int pay_nonce_merchant(const char *ref,
    char merchant[PAY_MERCHANT_ID_MAX + 1]);

typedef enum {
    /* the event's reference is our nonce: its merchant's shard */
    PAY_EVROUTE_NONCE = 1,
    /* no nonce, but the PSP's ids to ask every shard about
     * (pay_event_locate: the session token, the payment, the refund,
     * dispute or transfer) */
    PAY_EVROUTE_LOCATE,
    /* nothing names or finds an owner: kept on the home shard, which
     * classifies it (foreign, or pending for its forwarding step) */
    PAY_EVROUTE_HOME
} pay_evroute_e;

typedef struct {
    char         merchant[PAY_MERCHANT_ID_MAX + 1]; /* NONCE; else "" */
    /* LOCATE: which of the event's fields the shards are asked about,
     * each pointing into the event (never NULL: "" when absent) */
    const char  *token;
    const char  *payment_ref;
    const char  *object_ref;
} pay_evroute_t;

/*
 * How one verified event finds its shard, whatever its kind or dialect
 * (an IGNORED event is kept too, so it is routed too), in this order:
 *   1. its reference is our nonce: NONCE, its merchant;
 *   2. a PENDING or IGNORED event with an object_ref (a refund not final
 *      yet, a dispute's update, a Stripe event type we do not act on):
 *      HOME, since pay_event_apply records it by its object alone, with
 *      no merchant, and a fan-out would cost every shard a query for it;
 *   3. any of token, payment_ref, object_ref not "": LOCATE by those;
 *   4. HOME.
 * The event is borrowed: route's pointers live as long as it does.
 * Returns the route, also for a malformed event (never fails).
 */
pay_evroute_e pay_event_route(const pay_event_t *ev, pay_evroute_t *route);

/* "nonce", "located" or "home": the routed metric's "by" label. */
const char *pay_evroute_name(pay_evroute_e by);


/*
 * The directory's table: fixed 64-byte slots, open addressing with linear
 * probing from pay_dir_hash, no deletion (merchants are never deleted, and
 * a revoked key's shard answers "no such key": the table is a hint, each
 * shard's own rows are the authority).  The caller owns the memory, zeroed
 * before first use, and serialises every call on it.
 */
#define PAY_DIR_MERCHANT  'm'
#define PAY_DIR_KEY       'k'
#define PAY_DIR_NO_SHARD  0xffff

typedef struct {
    char      kind;                            /* 0 empty, 'm' or 'k' */
    uint8_t   conflict;                        /* seen with two owners */
    uint16_t  shard;                           /* 'm': an index into the
                                                  zone's table of names */
    char      id[PAY_MERCHANT_ID_MAX + 1];     /* merchant or key id */
    char      merchant[PAY_MERCHANT_ID_MAX + 1]; /* 'k': its merchant */
    char      pad[12];
} pay_dir_slot_t;

typedef enum {
    PAY_DIR_ADDED = 0,      /* a new entry */
    PAY_DIR_SAME,           /* already there, with the same owner */
    PAY_DIR_CONFLICT,       /* there with another owner: marked conflict
                               (a look-up then finds it, and the caller
                               answers 503 until an operator fixes it) */
    PAY_DIR_FULL,           /* no free slot */
    PAY_DIR_INVALID         /* an id, merchant or shard out of format */
} pay_dir_put_e;

/* FNV-1a (32 bits) over kind then id: where a probe starts. */
uint32_t pay_dir_hash(char kind, const char *id, size_t len);

/* The slot of (kind, id), or NULL when absent.  n > 0. */
pay_dir_slot_t *pay_dir_find(pay_dir_slot_t *slots, size_t n, char kind,
    const char *id, size_t len);

/* merchant id (1..23, merchants_id_format) -> shard (< PAY_SHARD_MAX). */
pay_dir_put_e pay_dir_put_merchant(pay_dir_slot_t *slots, size_t n,
    const char *id, size_t len, unsigned shard);

/* key id (12 [A-Za-z0-9]) -> merchant id (NUL-terminated). */
pay_dir_put_e pay_dir_put_key(pay_dir_slot_t *slots, size_t n,
    const char *key_id, size_t len, const char *merchant);

/*
 * The shard of a merchant, or of a key id through its merchant:
 * PAY_DIR_NO_SHARD when absent (a miss: the caller asks every shard) or
 * when either entry is in conflict (*conflict set to 1; else 0).
 */
unsigned pay_dir_shard_of(pay_dir_slot_t *slots, size_t n, char kind,
    const char *id, size_t len, int *conflict);

#endif
