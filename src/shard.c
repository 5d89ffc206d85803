/*
 * ngx_payments core: merchant shards (include/payments/shard.h).
 *
 * Only syntax and routing rules: whether a merchant or a key exists is the
 * answer of the shard that holds it.  pay_nonce_merchant reads a nonce as
 * psp_event_state does (sql/functions/psp_event_state.sql), with the
 * merchant part held to merchants_id_format, so an event routed by nonce
 * is one its shard would call ours.
 */

#include <string.h>

#include <payments/shard.h>


_Static_assert(sizeof(pay_dir_slot_t) == 64, "a directory slot is 64 bytes");
_Static_assert(PAY_SHARD_MAX < PAY_DIR_NO_SHARD, "shard indexes fit");


static int
pay_shard_lower(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}


static int
pay_shard_id_char(unsigned char c)
{
    return pay_shard_lower(c) || (c >= 'A' && c <= 'Z') || c == '-';
}


int
pay_shard_name_check(const char *name, size_t len, const char **why)
{
    size_t  i;

    if (len == 0 || len > PAY_SHARD_NAME_MAX) {
        *why = "a shard name has 1 to 16 characters";
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (!pay_shard_lower((unsigned char) name[i])) {
            *why = "a shard name is made of a-z, 0-9 and _";
            return -1;
        }
    }

    if (len == sizeof(PAY_SHARD_DEFAULT) - 1
        && memcmp(name, PAY_SHARD_DEFAULT, len) == 0)
    {
        *why = "the shard name \"default\" is payments_database's";
        return -1;
    }

    return 0;
}


int
pay_merchant_id_valid(const char *id, size_t len)
{
    size_t  i;

    if (len == 0 || len > PAY_MERCHANT_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!pay_shard_lower((unsigned char) id[i])) {
            return 0;
        }
    }

    return 1;
}


int
pay_nonce_merchant(const char *ref, char merchant[PAY_MERCHANT_ID_MAX + 1])
{
    size_t       m, i;
    const char  *colon;

    merchant[0] = '\0';

    colon = strchr(ref, ':');
    if (colon == NULL) {
        return -1;
    }

    m = (size_t) (colon - ref);
    if (!pay_merchant_id_valid(ref, m)) {
        return -1;
    }

    /* the id: [A-Za-z0-9_-]{1,64}, so no second ':' */
    for (i = 0; colon[1 + i] != '\0'; i++) {
        if (i == PAY_NONCE_ID_MAX
            || !pay_shard_id_char((unsigned char) colon[1 + i]))
        {
            return -1;
        }
    }

    if (i == 0) {
        return -1;
    }

    memcpy(merchant, ref, m);
    merchant[m] = '\0';

    return 0;
}


pay_evroute_e
pay_event_route(const pay_event_t *ev, pay_evroute_t *route)
{
    route->merchant[0] = '\0';
    route->token = "";
    route->payment_ref = "";
    route->object_ref = "";

    /* the fields are NUL-terminated within their arrays by the parsers;
     * an event that is not (memory the parsers never wrote) is not ours */
    if (memchr(ev->reference, '\0', sizeof(ev->reference)) != NULL
        && pay_nonce_merchant(ev->reference, route->merchant) == 0)
    {
        return PAY_EVROUTE_NONCE;
    }

    /* authentic news that moves nothing (a refund still pending, a
     * dispute's update): pay_event_apply records it by its object alone,
     * with no merchant, so no shard is asked */
    if ((ev->kind == PAY_EVT_PENDING || ev->kind == PAY_EVT_IGNORED)
        && ev->object_ref[0] != '\0')
    {
        return PAY_EVROUTE_HOME;
    }

    if (memchr(ev->token, '\0', sizeof(ev->token)) != NULL) {
        route->token = ev->token;
    }

    if (memchr(ev->payment_ref, '\0', sizeof(ev->payment_ref)) != NULL) {
        route->payment_ref = ev->payment_ref;
    }

    if (memchr(ev->object_ref, '\0', sizeof(ev->object_ref)) != NULL) {
        route->object_ref = ev->object_ref;
    }

    if (route->token[0] || route->payment_ref[0] || route->object_ref[0]) {
        return PAY_EVROUTE_LOCATE;
    }

    return PAY_EVROUTE_HOME;
}


const char *
pay_evroute_name(pay_evroute_e by)
{
    switch (by) {
    case PAY_EVROUTE_NONCE:
        return "nonce";
    case PAY_EVROUTE_LOCATE:
        return "located";
    default:
        return "home";
    }
}


uint32_t
pay_dir_hash(char kind, const char *id, size_t len)
{
    size_t    i;
    uint32_t  h = 2166136261u;

    h = (h ^ (unsigned char) kind) * 16777619u;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) id[i]) * 16777619u;
    }

    return h;
}


/* The slot of (kind, id), or the empty slot its probe ends at (NULL when
 * the table is full and it is not there). */

static pay_dir_slot_t *
pay_dir_probe(pay_dir_slot_t *slots, size_t n, char kind, const char *id,
    size_t len)
{
    size_t           i, k;
    pay_dir_slot_t  *s;

    k = pay_dir_hash(kind, id, len) % n;

    for (i = 0; i < n; i++) {
        s = &slots[(k + i) % n];

        if (s->kind == 0) {
            return s;
        }

        if (s->kind == kind && strlen(s->id) == len
            && memcmp(s->id, id, len) == 0)
        {
            return s;
        }
    }

    return NULL;
}


static int
pay_dir_id_valid(char kind, const char *id, size_t len)
{
    size_t  i;

    if (kind == PAY_DIR_MERCHANT) {
        return pay_merchant_id_valid(id, len);
    }

    if (kind != PAY_DIR_KEY || len != PAY_APIKEY_ID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!pay_shard_id_char((unsigned char) id[i])
            || id[i] == '_' || id[i] == '-')
        {
            return 0;
        }
    }

    return 1;
}


pay_dir_slot_t *
pay_dir_find(pay_dir_slot_t *slots, size_t n, char kind, const char *id,
    size_t len)
{
    pay_dir_slot_t  *s;

    if (n == 0 || !pay_dir_id_valid(kind, id, len)) {
        return NULL;
    }

    s = pay_dir_probe(slots, n, kind, id, len);

    return (s != NULL && s->kind != 0) ? s : NULL;
}


pay_dir_put_e
pay_dir_put_merchant(pay_dir_slot_t *slots, size_t n, const char *id,
    size_t len, unsigned shard)
{
    pay_dir_slot_t  *s;

    if (n == 0 || shard >= PAY_SHARD_MAX
        || !pay_dir_id_valid(PAY_DIR_MERCHANT, id, len))
    {
        return PAY_DIR_INVALID;
    }

    s = pay_dir_probe(slots, n, PAY_DIR_MERCHANT, id, len);
    if (s == NULL) {
        return PAY_DIR_FULL;
    }

    if (s->kind == 0) {
        memset(s, 0, sizeof(*s));
        s->kind = PAY_DIR_MERCHANT;
        s->shard = (uint16_t) shard;
        memcpy(s->id, id, len);
        return PAY_DIR_ADDED;
    }

    if (s->shard != shard) {
        s->conflict = 1;
        return PAY_DIR_CONFLICT;
    }

    return s->conflict ? PAY_DIR_CONFLICT : PAY_DIR_SAME;
}


pay_dir_put_e
pay_dir_put_key(pay_dir_slot_t *slots, size_t n, const char *key_id,
    size_t len, const char *merchant)
{
    size_t           mlen;
    pay_dir_slot_t  *s;

    mlen = strnlen(merchant, PAY_MERCHANT_ID_MAX + 1);

    if (n == 0 || !pay_dir_id_valid(PAY_DIR_KEY, key_id, len)
        || !pay_merchant_id_valid(merchant, mlen))
    {
        return PAY_DIR_INVALID;
    }

    s = pay_dir_probe(slots, n, PAY_DIR_KEY, key_id, len);
    if (s == NULL) {
        return PAY_DIR_FULL;
    }

    if (s->kind == 0) {
        memset(s, 0, sizeof(*s));
        s->kind = PAY_DIR_KEY;
        s->shard = PAY_DIR_NO_SHARD;
        memcpy(s->id, key_id, len);
        memcpy(s->merchant, merchant, mlen);
        return PAY_DIR_ADDED;
    }

    if (strcmp(s->merchant, merchant) != 0) {
        s->conflict = 1;
        return PAY_DIR_CONFLICT;
    }

    return s->conflict ? PAY_DIR_CONFLICT : PAY_DIR_SAME;
}


unsigned
pay_dir_shard_of(pay_dir_slot_t *slots, size_t n, char kind, const char *id,
    size_t len, int *conflict)
{
    pay_dir_slot_t  *s;

    *conflict = 0;

    s = pay_dir_find(slots, n, kind, id, len);
    if (s == NULL) {
        return PAY_DIR_NO_SHARD;
    }

    if (s->conflict) {
        *conflict = 1;
        return PAY_DIR_NO_SHARD;
    }

    if (kind == PAY_DIR_KEY) {
        /* a key's shard is always its merchant's */
        s = pay_dir_find(slots, n, PAY_DIR_MERCHANT, s->merchant,
                         strlen(s->merchant));
        if (s == NULL) {
            return PAY_DIR_NO_SHARD;
        }

        if (s->conflict) {
            *conflict = 1;
            return PAY_DIR_NO_SHARD;
        }
    }

    return s->shard;
}
