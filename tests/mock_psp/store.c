/*
 * Mock PSP: in-memory state.  Sessions, idempotency keys, per-key counts and
 * fault rules all sit behind one mutex: the mock serves about a thousand
 * requests a second, each holding the lock for microseconds, and one lock
 * makes reset and the multi-step commit of a registration atomic for free.
 * Nothing ever sleeps with the lock held.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"


typedef struct mock_node_s  mock_node_t;

struct mock_node_s {
    mock_node_t          *next;              /* in its bucket */
    mock_node_t          *older;             /* insertion order, for eviction */
    mock_node_t          *newer;
    void                 *value;
    uint64_t              hash;
    char                  key[];
};


/* A string-keyed hash map that forgets its oldest idle entry when full. */
typedef struct {
    mock_node_t         **buckets;
    size_t                nbuckets;          /* a power of two */
    size_t                count;
    mock_node_t          *oldest;
    mock_node_t          *newest;
    const char           *name;
    void                (*free_value)(void *value);
    int                 (*busy)(const void *value);
    unsigned              warned:1;
} mock_table_t;


typedef struct {
    uint64_t              token;             /* the claim that owns it */
    unsigned              done:1;
    unsigned              status;
    unsigned char         hash[32];          /* SHA-256 of the raw body */
    char                 *response;
} mock_idem_t;


typedef struct {
    uint64_t              sessions_created;
    uint64_t              requests;
} mock_count_t;


/*
 * A session and the Idempotency-Key it was created under: the webhook
 * knobs of the fault rules match on that key, as the other knobs do.
 */
typedef struct {
    json_t               *json;
    char                 *key;               /* NULL: created without one */
} mock_session_t;


typedef struct mock_rule_s  mock_rule_t;

struct mock_rule_s {
    mock_rule_t          *next;
    uint64_t              id;
    char                 *match;
    char                  api[16];           /* "": every API's
                                                registrations; else only
                                                that one's (mock_api_t) */
    long                  latency_ms;
    long                  fail_times;        /* left */
    long                  fail_every;        /* every Nth attempt fails */
    long                  retry_after;       /* s, on those failures */
    unsigned long         attempts;          /* seen, for fail_every */
    long                  hang_ms;
    long                  hang_times;        /* left; -1: every request */
    long                  drop_after_register;  /* left */
    long                  drop_replays;      /* left */
    unsigned              fail_status;
    unsigned              refuse_status;
    char                 *hosted_url;
    mock_webhook_fault_t  wf;
};


static void mock_table_init(mock_table_t *t, const char *name,
    void (*free_value)(void *value), int (*busy)(const void *value));
static uint64_t mock_hash(const char *key);
static mock_node_t *mock_table_find(mock_table_t *t, const char *key);
static mock_node_t *mock_table_insert(mock_table_t *t, const char *key,
    void *value);
static void mock_table_remove(mock_table_t *t, mock_node_t *node);
static void mock_table_clear(mock_table_t *t);
static void mock_session_free(void *value);
static void mock_idem_free(void *value);
static int mock_idem_busy(const void *value);
static mock_count_t *mock_count_get(const char *key);
static void mock_rules_free(void);
static mock_rule_t *mock_rule_find(uint64_t id);
static mock_rule_t *mock_rule_match(const char *subject, const char *api);
static mock_session_t *mock_session_find(const char *id);
static void mock_session_webhook_fault(const mock_session_t *s,
    mock_webhook_fault_t *wf);
static mock_session_state_e mock_session_state(json_t *session);


static pthread_mutex_t  mock_lock = PTHREAD_MUTEX_INITIALIZER;
static mock_table_t     mock_sessions;       /* id -> mock_session_t */
static mock_table_t     mock_keys;           /* key -> mock_idem_t */
static mock_table_t     mock_counts;         /* key -> mock_count_t */
static mock_rule_t     *mock_rules;
static mock_rule_t    **mock_rules_tail = &mock_rules;
static uint64_t         mock_epoch;          /* bumped by every reset */
static uint64_t         mock_last_token;
static uint64_t         mock_last_rule_id;


static void
mock_table_init(mock_table_t *t, const char *name,
    void (*free_value)(void *value), int (*busy)(const void *value))
{
    memset(t, 0, sizeof(*t));
    t->name = name;
    t->free_value = free_value;
    t->busy = busy;
}


/* FNV-1a: the keys come from the test harness, not from an attacker. */
static uint64_t
mock_hash(const char *key)
{
    uint64_t  h;

    h = 14695981039346656037ULL;

    for ( ; *key; key++) {
        h ^= (unsigned char) *key;
        h *= 1099511628211ULL;
    }

    return h;
}


static mock_node_t *
mock_table_find(mock_table_t *t, const char *key)
{
    uint64_t      h;
    mock_node_t  *n;

    if (t->nbuckets == 0) {
        return NULL;
    }

    h = mock_hash(key);

    for (n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->next) {
        if (n->hash == h && strcmp(n->key, key) == 0) {
            return n;
        }
    }

    return NULL;
}


/* The key must be absent.  Returns NULL, value untouched, if out of memory. */
static mock_node_t *
mock_table_insert(mock_table_t *t, const char *key, void *value)
{
    size_t         i, len, size;
    mock_node_t   *n, *next, **b;

    if (t->count >= MOCK_MAX_ENTRIES) {
        for (n = t->oldest; n; n = n->newer) {
            if (t->busy == NULL || !t->busy(n->value)) {
                break;
            }
        }

        if (n != NULL) {
            if (!t->warned) {
                mock_log("%s: %d entries, forgetting the oldest ones",
                         t->name, MOCK_MAX_ENTRIES);
                t->warned = 1;
            }
            mock_table_remove(t, n);
        }
    }

    if (t->count >= t->nbuckets) {
        size = t->nbuckets ? t->nbuckets * 2 : 1024;

        b = calloc(size, sizeof(mock_node_t *));
        if (b == NULL) {
            return NULL;
        }

        for (i = 0; i < t->nbuckets; i++) {
            for (n = t->buckets[i]; n; n = next) {
                next = n->next;
                n->next = b[n->hash & (size - 1)];
                b[n->hash & (size - 1)] = n;
            }
        }

        free(t->buckets);
        t->buckets = b;
        t->nbuckets = size;
    }

    len = strlen(key);

    n = malloc(sizeof(mock_node_t) + len + 1);
    if (n == NULL) {
        return NULL;
    }

    memcpy(n->key, key, len + 1);
    n->hash = mock_hash(key);
    n->value = value;

    b = &t->buckets[n->hash & (t->nbuckets - 1)];
    n->next = *b;
    *b = n;

    n->newer = NULL;
    n->older = t->newest;
    if (t->newest != NULL) {
        t->newest->newer = n;
    } else {
        t->oldest = n;
    }
    t->newest = n;

    t->count++;

    return n;
}


static void
mock_table_remove(mock_table_t *t, mock_node_t *node)
{
    mock_node_t  **p;

    for (p = &t->buckets[node->hash & (t->nbuckets - 1)]; *p; p = &(*p)->next)
    {
        if (*p == node) {
            *p = node->next;
            break;
        }
    }

    if (node->older != NULL) {
        node->older->newer = node->newer;
    } else {
        t->oldest = node->newer;
    }

    if (node->newer != NULL) {
        node->newer->older = node->older;
    } else {
        t->newest = node->older;
    }

    t->free_value(node->value);
    free(node);
    t->count--;
}


static void
mock_table_clear(mock_table_t *t)
{
    mock_node_t  *n, *newer;

    for (n = t->oldest; n; n = newer) {
        newer = n->newer;
        t->free_value(n->value);
        free(n);
    }

    free(t->buckets);
    mock_table_init(t, t->name, t->free_value, t->busy);
}


static void
mock_session_free(void *value)
{
    mock_session_t  *s;

    s = value;
    json_decref(s->json);
    free(s->key);
    free(s);
}


static void
mock_idem_free(void *value)
{
    mock_idem_t  *e;

    e = value;
    free(e->response);
    free(e);
}


/* Forgetting a key in progress would let its retry register twice. */
static int
mock_idem_busy(const void *value)
{
    const mock_idem_t  *e;

    e = value;
    return !e->done;
}


int
mock_store_init(void)
{
    mock_table_init(&mock_sessions, "sessions", mock_session_free, NULL);
    mock_table_init(&mock_keys, "idempotency keys", mock_idem_free,
                    mock_idem_busy);
    mock_table_init(&mock_counts, "registration counts", free, NULL);

    return 0;
}


void
mock_store_destroy(void)
{
    pthread_mutex_lock(&mock_lock);

    mock_table_clear(&mock_sessions);
    mock_table_clear(&mock_keys);
    mock_table_clear(&mock_counts);
    mock_rules_free();

    pthread_mutex_unlock(&mock_lock);
}


void
mock_store_reset(void)
{
    pthread_mutex_lock(&mock_lock);

    mock_table_clear(&mock_sessions);
    mock_table_clear(&mock_keys);
    mock_table_clear(&mock_counts);
    mock_rules_free();
    mock_epoch++;

    pthread_mutex_unlock(&mock_lock);
}


/* Called with the lock held; NULL if out of memory. */
static mock_count_t *
mock_count_get(const char *key)
{
    mock_node_t   *n;
    mock_count_t  *cnt;

    n = mock_table_find(&mock_counts, key);
    if (n != NULL) {
        return n->value;
    }

    cnt = calloc(1, sizeof(mock_count_t));
    if (cnt == NULL) {
        return NULL;
    }

    if (mock_table_insert(&mock_counts, key, cnt) == NULL) {
        free(cnt);
        return NULL;
    }

    return cnt;
}


/*
 * A registration request has arrived: count it under its key and copy what
 * the first matching fault rule asks of it.  A request without a key matches
 * only the rules whose match is "".  Returns the store's epoch, for commit.
 */
uint64_t
mock_store_arrive(const char *key, const char *api, mock_fault_t *fault)
{
    uint64_t       epoch;
    mock_rule_t   *rule;
    mock_count_t  *cnt;

    memset(fault, 0, sizeof(*fault));

    pthread_mutex_lock(&mock_lock);

    epoch = mock_epoch;

    if (key != NULL) {
        cnt = mock_count_get(key);
        if (cnt != NULL) {
            cnt->requests++;
        }
    }

    rule = mock_rule_match(key ? key : "", api);

    if (rule != NULL) {
        fault->id = rule->id;
        fault->latency_ms = rule->latency_ms;
        if (rule->hang_times != 0) {
            fault->hang_ms = rule->hang_ms;

            if (rule->hang_times > 0) {
                rule->hang_times--;
            }
        }

        fault->retry_after = rule->retry_after;
        fault->refuse_status = rule->refuse_status;
        if (rule->hosted_url != NULL) {
            /* Out of memory here only loses the override. */
            fault->hosted_url = strdup(rule->hosted_url);
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return epoch;
}


/*
 * Stripe's idempotency: a key first seen is claimed (in progress) by this
 * request; a finished key with the same body is replayed; any other body is
 * an error, even while the first request still runs.  claim->epoch must
 * already hold what mock_store_arrive() returned.
 */
mock_idem_e
mock_store_claim(const char *key, const unsigned char *hash,
    mock_claim_t *claim)
{
    mock_idem_e   rc;
    mock_node_t  *n;
    mock_idem_t  *e;

    claim->token = 0;
    claim->status = 0;
    claim->body = NULL;

    pthread_mutex_lock(&mock_lock);

    n = mock_table_find(&mock_keys, key);

    if (n != NULL) {
        e = n->value;

        if (memcmp(e->hash, hash, sizeof(e->hash)) != 0) {
            rc = MOCK_IDEM_MISMATCH;

        } else if (!e->done) {
            rc = MOCK_IDEM_IN_USE;

        } else {
            rc = MOCK_IDEM_REPLAY;
            claim->status = e->status;
            claim->body = strdup(e->response);
            if (claim->body == NULL) {
                rc = MOCK_IDEM_IN_USE;
            }
        }

        pthread_mutex_unlock(&mock_lock);
        return rc;
    }

    e = calloc(1, sizeof(mock_idem_t));
    if (e == NULL) {
        pthread_mutex_unlock(&mock_lock);
        return MOCK_IDEM_IN_USE;
    }

    e->token = ++mock_last_token;
    memcpy(e->hash, hash, sizeof(e->hash));

    if (mock_table_insert(&mock_keys, key, e) == NULL) {
        free(e);
        pthread_mutex_unlock(&mock_lock);
        return MOCK_IDEM_IN_USE;
    }

    claim->token = e->token;

    pthread_mutex_unlock(&mock_lock);

    return MOCK_IDEM_CLAIMED;
}


/* The request failed before creating anything: a retry starts afresh. */
void
mock_store_release(const char *key, const mock_claim_t *claim)
{
    mock_node_t  *n;
    mock_idem_t  *e;

    pthread_mutex_lock(&mock_lock);

    n = mock_table_find(&mock_keys, key);
    if (n != NULL) {
        e = n->value;
        if (!e->done && e->token == claim->token) {
            mock_table_remove(&mock_keys, n);
        }
    }

    pthread_mutex_unlock(&mock_lock);
}


/*
 * Stores a new session, the response under its key, and counts it, in one
 * step.  Takes the reference to session.  Returns -1 if a reset happened
 * since the request arrived (its state belongs to a forgotten past: the
 * caller drops the connection, as a restarted PSP would) or if out of
 * memory; nothing is stored then.
 */
int
mock_store_commit(const char *key, const char *ikey,
    const mock_claim_t *claim, json_t *session, const char *response,
    unsigned status)
{
    char            *copy;
    mock_node_t     *n;
    mock_idem_t     *e;
    mock_count_t    *cnt;
    mock_session_t  *stored;

    copy = NULL;

    stored = calloc(1, sizeof(mock_session_t));
    if (stored == NULL) {
        json_decref(session);
        return -1;
    }

    stored->json = session;

    if (key != NULL) {
        copy = strdup(response);
        stored->key = strdup(key);
        if (copy == NULL || stored->key == NULL) {
            mock_session_free(stored);
            free(copy);
            return -1;
        }
    }

    pthread_mutex_lock(&mock_lock);

    if (claim->epoch != mock_epoch) {
        pthread_mutex_unlock(&mock_lock);
        mock_log("a reset happened while a registration ran; dropping it");
        mock_session_free(stored);
        free(copy);
        return -1;
    }

    if (mock_table_insert(&mock_sessions,
                          json_string_value(json_object_get(session, "id")),
                          stored)
        == NULL)
    {
        pthread_mutex_unlock(&mock_lock);
        mock_session_free(stored);
        free(copy);
        return -1;
    }

    if (key != NULL) {
        /*
         * Our claim is still there: keys in progress are never evicted,
         * and a reset would have changed the epoch.
         */
        n = mock_table_find(&mock_keys, ikey);
        if (n != NULL) {
            e = n->value;
            if (!e->done && e->token == claim->token) {
                e->done = 1;
                e->status = status;
                e->response = copy;
                copy = NULL;
            }
        }

        cnt = mock_count_get(key);
        if (cnt != NULL) {
            cnt->sessions_created++;
        }
    }

    pthread_mutex_unlock(&mock_lock);

    free(copy);

    return 0;
}


/*
 * The PSP forgets the idempotency keys of finished requests whose key has
 * match in it (as a PSP does after its key window, or after losing its
 * memory): a request sent again under one of them is a new request.  Keys
 * in progress are kept (forgetting one would let its own retry run beside
 * it).  Sessions, operations and counts stay.  Returns how many went.
 */
unsigned long
mock_store_forget_keys(const char *match)
{
    unsigned long   n;
    mock_node_t    *node, *newer;
    mock_idem_t    *e;

    n = 0;

    pthread_mutex_lock(&mock_lock);

    for (node = mock_keys.oldest; node != NULL; node = newer) {
        newer = node->newer;
        e = node->value;
        if (e->done && strstr(node->key, match) != NULL) {
            mock_table_remove(&mock_keys, node);
            n++;
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return n;
}

void
mock_store_registrations(const char *key, uint64_t *sessions_created,
    uint64_t *requests)
{
    mock_node_t   *n;
    mock_count_t  *cnt;

    *sessions_created = 0;
    *requests = 0;

    pthread_mutex_lock(&mock_lock);

    n = mock_table_find(&mock_counts, key);
    if (n != NULL) {
        cnt = n->value;
        *sessions_created = cnt->sessions_created;
        *requests = cnt->requests;
    }

    pthread_mutex_unlock(&mock_lock);
}


static void
mock_rules_free(void)
{
    mock_rule_t  *rule, *next;

    for (rule = mock_rules; rule; rule = next) {
        next = rule->next;
        free(rule->match);
        free(rule->hosted_url);
        free(rule);
    }

    mock_rules = NULL;
    mock_rules_tail = &mock_rules;
}


/*
 * Called with the lock held: the first rule whose match is a substring of
 * subject ("" for a request without a key: only match "" then).
 */
static mock_rule_t *
mock_rule_match(const char *subject, const char *api)
{
    mock_rule_t  *rule;

    for (rule = mock_rules; rule; rule = rule->next) {
        if (api != NULL && rule->api[0] != '\0'
            && strcmp(api, rule->api) != 0)
        {
            continue;
        }

        if (strstr(subject, rule->match) != NULL) {
            return rule;
        }
    }

    return NULL;
}


/* Called with the lock held; NULL once a reset removed the rule. */
static mock_rule_t *
mock_rule_find(uint64_t id)
{
    mock_rule_t  *rule;

    for (rule = mock_rules; rule; rule = rule->next) {
        if (rule->id == id) {
            return rule;
        }
    }

    return NULL;
}


/* The status this attempt must fail with, or 0 to let it go on. */
unsigned
mock_fault_take_fail(uint64_t id)
{
    unsigned      status;
    mock_rule_t  *rule;

    status = 0;

    pthread_mutex_lock(&mock_lock);

    rule = mock_rule_find(id);
    if (rule != NULL && rule->fail_times > 0) {
        rule->fail_times--;
        status = rule->fail_status;

    } else if (rule != NULL && rule->fail_every > 0
               && ++rule->attempts % (unsigned long) rule->fail_every == 0)
    {
        status = rule->fail_status;
    }

    pthread_mutex_unlock(&mock_lock);

    return status;
}


/* The rule's next answer is lost: of a request that created its session
 * (replay 0: drop_after_register) or of one answered from the key's stored
 * session (replay 1: drop_replays).  1, one fewer left; else 0. */
int
mock_fault_take_drop(uint64_t id, int replay)
{
    int           drop;
    long         *left;
    mock_rule_t  *rule;

    drop = 0;

    pthread_mutex_lock(&mock_lock);

    rule = mock_rule_find(id);
    if (rule != NULL) {
        left = replay ? &rule->drop_replays : &rule->drop_after_register;
        if (*left > 0) {
            (*left)--;
            drop = 1;
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return drop;
}


void
mock_fault_free(mock_fault_t *fault)
{
    free(fault->hosted_url);
    fault->hosted_url = NULL;
}


/* The rule's counted faults: only the next hang_times requests it matches
 * hang (0: every one, as added); the next drop_replays answers replayed from
 * a stored session are lost too (the connection closes without them): with
 * drop_after_register, a PSP whose every answer is lost, its retries' too. */
void
mock_fault_counts(uint64_t id, long hang_times, long drop_replays)
{
    mock_rule_t  *rule;

    pthread_mutex_lock(&mock_lock);

    rule = mock_rule_find(id);
    if (rule != NULL) {
        if (hang_times > 0) {
            rule->hang_times = hang_times;
        }
        rule->drop_replays = drop_replays;
    }

    pthread_mutex_unlock(&mock_lock);
}


/* Removes the rule: the requests it matched are answered as any again
 * (a PSP whose outage ended).  1 removed; 0 no such rule. */
int
mock_fault_remove(uint64_t id)
{
    int            found;
    mock_rule_t  **at, *rule;

    found = 0;

    pthread_mutex_lock(&mock_lock);

    for (at = &mock_rules; *at != NULL; at = &(*at)->next) {
        if ((*at)->id == id) {
            rule = *at;
            *at = rule->next;
            if (mock_rules_tail == &rule->next) {
                mock_rules_tail = at;
            }
            free(rule->match);
            free(rule->hosted_url);
            free(rule);
            found = 1;
            break;
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return found;
}


/* The rule's registration faults only for that API's registrations
 * ("stripe", "adyen", "generic"): one PSP failing beside another. */
void
mock_fault_api(uint64_t id, const char *api)
{
    mock_rule_t  *rule;

    pthread_mutex_lock(&mock_lock);

    rule = mock_rule_find(id);
    if (rule != NULL) {
        snprintf(rule->api, sizeof(rule->api), "%s", api);
    }

    pthread_mutex_unlock(&mock_lock);
}


/* Returns the new rule's id, 0 if out of memory. */
uint64_t
mock_fault_add(const char *match, long latency_ms, long fail_times,
    long fail_every, long retry_after, unsigned fail_status,
    unsigned refuse_status, long hang_ms,
    long drop_after_register, const char *hosted_url,
    const mock_webhook_fault_t *wf)
{
    uint64_t      id;
    mock_rule_t  *rule;

    rule = calloc(1, sizeof(mock_rule_t));
    if (rule == NULL) {
        return 0;
    }

    rule->match = strdup(match);
    rule->hosted_url = hosted_url ? strdup(hosted_url) : NULL;

    if (rule->match == NULL || (hosted_url != NULL && rule->hosted_url == NULL))
    {
        free(rule->match);
        free(rule->hosted_url);
        free(rule);
        return 0;
    }

    rule->latency_ms = latency_ms;
    rule->fail_times = fail_times;
    rule->fail_every = fail_every;
    rule->retry_after = retry_after;
    rule->fail_status = fail_status;
    rule->refuse_status = refuse_status;
    rule->hang_ms = hang_ms;
    rule->hang_times = -1;
    rule->drop_after_register = drop_after_register;
    rule->wf = *wf;

    pthread_mutex_lock(&mock_lock);

    /* Ids are never reused, not even across resets. */
    id = ++mock_last_rule_id;
    rule->id = id;
    *mock_rules_tail = rule;
    mock_rules_tail = &rule->next;

    pthread_mutex_unlock(&mock_lock);

    return id;
}


json_t *
mock_fault_list(void)
{
    json_t       *list, *item, *wh;
    mock_rule_t  *rule;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    pthread_mutex_lock(&mock_lock);

    for (rule = mock_rules; rule; rule = rule->next) {
        item = json_pack("{sI ss sI sI sI sI si si sI sI sI sI ss?}",
                         "id", (json_int_t) rule->id,
                         "match", rule->match,
                         "latency_ms", (json_int_t) rule->latency_ms,
                         "fail_times", (json_int_t) rule->fail_times,
                         "fail_every", (json_int_t) rule->fail_every,
                         "retry_after", (json_int_t) rule->retry_after,
                         "fail_status", (int) rule->fail_status,
                         "refuse_status", (int) rule->refuse_status,
                         "hang_ms", (json_int_t) rule->hang_ms,
                         "hang_times", (json_int_t) rule->hang_times,
                         "drop_after_register",
                             (json_int_t) rule->drop_after_register,
                         "drop_replays", (json_int_t) rule->drop_replays,
                         "hosted_url", rule->hosted_url);

        wh = json_pack("{sI sI sb sb sb sb sI so sb}",
                       "webhook_delay_ms", (json_int_t) rule->wf.delay_ms,
                       "webhook_duplicate", (json_int_t) rule->wf.duplicate,
                       "webhook_out_of_order", (int) rule->wf.out_of_order,
                       "webhook_bad_signature",
                           (int) rule->wf.bad_signature,
                       "webhook_stale", (int) rule->wf.stale,
                       "async_payment", (int) rule->wf.async_payment,
                       "async_delay_ms",
                           (json_int_t) rule->wf.async_delay_ms,
                       "webhook_amount",
                           rule->wf.has_amount
                           ? json_integer(rule->wf.amount) : json_null(),
                       "webhook_never", (int) rule->wf.never);

        if (item != NULL && (wh == NULL || json_object_update(item, wh) != 0))
        {
            json_decref(item);
            item = NULL;
        }

        json_decref(wh);

        if (item == NULL || json_array_append_new(list, item) != 0) {
            pthread_mutex_unlock(&mock_lock);
            json_decref(list);
            return NULL;
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return list;
}


/*
 * Called with the lock held.  An open session past expires_at expires.
 * A refund or transfer kept in the same map (mock_op_stored: no "status"
 * of its own) is no session: NOT_FOUND for every session path.
 */
static mock_session_state_e
mock_session_state(json_t *session)
{
    const char  *status;

    status = json_string_value(json_object_get(session, "status"));

    if (status == NULL) {
        return MOCK_SESSION_NOT_FOUND;
    }

    if (strcmp(status, "open") == 0) {
        if ((json_int_t) time(NULL)
            < json_integer_value(json_object_get(session, "expires_at")))
        {
            return MOCK_SESSION_OPEN;
        }

        json_object_set_new(session, "status", json_string("expired"));
        return MOCK_SESSION_EXPIRED;
    }

    if (strcmp(status, "complete") == 0) {
        return MOCK_SESSION_COMPLETE;
    }

    return MOCK_SESSION_EXPIRED;
}


/* Called with the lock held. */
static mock_session_t *
mock_session_find(const char *id)
{
    mock_node_t  *n;

    n = mock_table_find(&mock_sessions, id);

    return (n != NULL) ? n->value : NULL;
}


/*
 * Called with the lock held.  The webhook knobs of the rule that matches
 * the session's Idempotency-Key, or its client_reference_id (the same nonce
 * at the gateway) when it was created without a key.
 */
static void
mock_session_webhook_fault(const mock_session_t *s, mock_webhook_fault_t *wf)
{
    const char   *subject;
    mock_rule_t  *rule;

    memset(wf, 0, sizeof(*wf));

    subject = s->key;
    if (subject == NULL) {
        subject = json_string_value(json_object_get(s->json,
                                                    "client_reference_id"));
    }

    rule = mock_rule_match(subject ? subject : "", NULL);
    if (rule != NULL) {
        *wf = rule->wf;
        wf->id = rule->id;
    }
}


/* 1 when the session was registered for manual capture (any dialect) */
int
mock_session_manual(const json_t *session)
{
    const char  *c;

    c = json_string_value(json_object_get(session, "capture"));

    return c != NULL && strcmp(c, "manual") == 0;
}


/*
 * The PSP's id of the payment a paid session made, in the dialect's shape:
 * Stripe a payment intent "pi_…" (also the session's payment_intent),
 * Adyen a 16-digit pspReference, generic "pay_…".  Refunds and disputes
 * name it (money.c).
 */
/* Stripe's Checkout session in mode=setup: 1 */
int
mock_session_is_setup(const json_t *session)
{
    const char  *mode;

    mode = json_string_value(json_object_get(session, "mode"));

    return mode != NULL && strcmp(mode, "setup") == 0;
}


/* A setup session completed: its setup intent, seti_… */
static void
mock_session_setup_intent(json_t *session)
{
    char  ref[32];

    snprintf(ref, sizeof(ref), "seti_");
    if (mock_random_alnum(ref + 5, 24) != 0) {
        return;
    }

    json_object_set_new(session, "setup_intent", json_string(ref));
}


static void
mock_session_payment_ref(json_t *session)
{
    char         ref[32];
    const char  *d;

    if (json_object_get(session, "payment_ref") != NULL) {
        return;
    }

    d = json_string_value(json_object_get(session, "dialect"));

    if (d != NULL && strcmp(d, "adyen") == 0) {
        if (mock_random_digits(ref, 16) != 0) {
            return;
        }

    } else {
        snprintf(ref, sizeof(ref), "%s", d == NULL ? "pi_" : "pay_");
        if (mock_random_alnum(ref + strlen(ref), 24) != 0) {
            return;
        }
    }

    json_object_set_new(session, "payment_ref", json_string(ref));

    if (d == NULL) {
        json_object_set_new(session, "payment_intent", json_string(ref));
    }
}


int
mock_session_capture(const char *ref, json_int_t amount,
    const char *currency, int once, json_t **copy, char *err, size_t size)
{
    int              rc;
    const char      *r, *cur;
    json_int_t       capturable, captured;
    mock_node_t     *n;
    mock_session_t  *s;

    *copy = NULL;
    rc = 404;
    snprintf(err, size, "No such payment: '%s'", ref ? ref : "");

    pthread_mutex_lock(&mock_lock);

    for (n = mock_sessions.newest; n != NULL && ref != NULL; n = n->older) {
        s = n->value;
        r = json_string_value(json_object_get(s->json, "payment_ref"));

        if (r == NULL || strcmp(r, ref) != 0) {
            continue;
        }

        rc = 400;
        capturable = json_integer_value(json_object_get(s->json,
                                                        "amount_capturable"));
        captured = json_integer_value(json_object_get(s->json,
                                                      "amount_captured"));
        cur = json_string_value(json_object_get(s->json, "currency"));

        if (!mock_session_manual(s->json)
            || json_object_get(s->json, "amount_capturable") == NULL)
        {
            snprintf(err, size, "This payment was not authorized for a "
                     "manual capture.");
            break;
        }

        if (capturable == 0) {
            snprintf(err, size, "This payment has nothing left to capture "
                     "or release (captured %lld).", (long long) captured);
            break;
        }

        if (currency != NULL && cur != NULL && strcasecmp(currency, cur) != 0)
        {
            snprintf(err, size, "The capture's currency is not the "
                     "payment's.");
            break;
        }

        if (amount > capturable) {
            snprintf(err, size, "Amount to capture (%lld) is greater than "
                     "the amount capturable (%lld).", (long long) amount,
                     (long long) capturable);
            break;
        }

        if (amount > 0) {
            captured += amount;
            capturable = once ? 0 : capturable - amount;
            json_object_set_new(s->json, "amount_captured",
                                json_integer(captured));
            /* refunds may follow, of what was captured */
            json_object_set_new(s->json, "payment_status",
                                json_string("paid"));
            json_object_set_new(s->json, "pi_status",
                                json_string(capturable > 0
                                            ? "requires_capture"
                                            : "succeeded"));
        } else {
            capturable = 0;
            json_object_set_new(s->json, "pi_status",
                                json_string(captured > 0 ? "succeeded"
                                                         : "canceled"));
        }

        json_object_set_new(s->json, "amount_capturable",
                            json_integer(capturable));
        *copy = json_deep_copy(s->json);
        rc = *copy != NULL ? 0 : 400;
        break;
    }

    pthread_mutex_unlock(&mock_lock);

    return rc;
}


json_t *
mock_session_by_payment(const char *ref)
{
    json_t          *copy;
    const char      *r;
    mock_node_t     *n;
    mock_session_t  *s;

    copy = NULL;

    pthread_mutex_lock(&mock_lock);

    /* newest first: the paid session is usually recent */
    for (n = mock_sessions.newest; n != NULL && copy == NULL; n = n->older) {
        s = n->value;
        r = json_string_value(json_object_get(s->json, "payment_ref"));

        if (r != NULL && strcmp(r, ref) == 0) {
            copy = json_deep_copy(s->json);
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return copy;
}


json_t *
mock_charges_by_reference(const char *dialect, const char *ref)
{
    json_t          *ids;
    const char      *k, *d, *r;
    mock_node_t     *n;
    mock_session_t  *s;

    ids = json_array();
    if (ids == NULL) {
        return NULL;
    }

    pthread_mutex_lock(&mock_lock);

    for (n = mock_sessions.newest; n != NULL; n = n->older) {
        s = n->value;
        k = json_string_value(json_object_get(s->json, "kind"));
        d = json_string_value(json_object_get(s->json, "charge_dialect"));
        r = json_string_value(json_object_get(s->json,
                                              "client_reference_id"));

        if (k != NULL && strcmp(k, "charge") == 0 && d != NULL
            && strcmp(d, dialect) == 0 && r != NULL && strcmp(r, ref) == 0)
        {
            json_array_append_new(ids, json_string(json_string_value(
                json_object_get(s->json, "id"))));
        }
    }

    pthread_mutex_unlock(&mock_lock);

    return ids;
}


void
mock_store_webhook_fault(const char *subject, mock_webhook_fault_t *wf)
{
    mock_rule_t  *rule;

    memset(wf, 0, sizeof(*wf));

    pthread_mutex_lock(&mock_lock);

    rule = mock_rule_match(subject ? subject : "", NULL);
    if (rule != NULL) {
        *wf = rule->wf;
        wf->id = rule->id;
    }

    pthread_mutex_unlock(&mock_lock);
}


/* *copy gets a deep copy of the session, owned by the caller. */
mock_session_state_e
mock_session_get(const char *id, json_t **copy)
{
    mock_session_t        *s;
    mock_session_state_e   state;

    *copy = NULL;

    pthread_mutex_lock(&mock_lock);

    s = mock_session_find(id);
    if (s == NULL) {
        pthread_mutex_unlock(&mock_lock);
        return MOCK_SESSION_NOT_FOUND;
    }

    state = mock_session_state(s->json);
    *copy = state == MOCK_SESSION_NOT_FOUND ? NULL : json_deep_copy(s->json);

    pthread_mutex_unlock(&mock_lock);

    return state;
}


json_t *
mock_record_get(const char *id)
{
    json_t          *copy;
    mock_session_t  *s;

    pthread_mutex_lock(&mock_lock);

    s = mock_session_find(id);
    copy = s != NULL ? json_deep_copy(s->json) : NULL;

    pthread_mutex_unlock(&mock_lock);

    return copy;
}


/*
 * Pays an open session.  Returns the state BEFORE paying (OPEN: it was paid
 * just now), in *copy the session as it is after, and in *wf what the fault
 * rules ask of its webhooks.  With async_payment the session completes but
 * stays unpaid until mock_session_settle(), as with Stripe's delayed
 * payment methods.
 */
mock_session_state_e
mock_session_pay(const char *id, json_t **copy, mock_webhook_fault_t *wf)
{
    mock_session_t        *s;
    mock_session_state_e   state;

    *copy = NULL;
    memset(wf, 0, sizeof(*wf));

    pthread_mutex_lock(&mock_lock);

    s = mock_session_find(id);
    if (s == NULL) {
        pthread_mutex_unlock(&mock_lock);
        return MOCK_SESSION_NOT_FOUND;
    }

    state = mock_session_state(s->json);

    if (state == MOCK_SESSION_OPEN) {
        mock_session_webhook_fault(s, wf);

        json_object_set_new(s->json, "status", json_string("complete"));

        /* Stripe's mode=setup: nothing to pay, its setup intent made */
        if (mock_session_is_setup(s->json)) {
            json_object_set_new(s->json, "payment_status",
                                json_string("no_payment_required"));
            mock_session_setup_intent(s->json);
            *copy = json_deep_copy(s->json);
            pthread_mutex_unlock(&mock_lock);
            return state;
        }

        /* a manual-capture payment is authorized, not paid, until it is
         * captured */
        json_object_set_new(s->json, "payment_status",
                            json_string(wf->async_payment
                                        || mock_session_manual(s->json)
                                        ? "unpaid" : "paid"));
        /* an asynchronous method's payment: its look-up says pending
         * until it settles, a manual hold's says authorised */
        if (wf->async_payment) {
            json_object_set_new(s->json, "async_payment", json_true());
        }
        mock_session_payment_ref(s->json);

        if (mock_session_manual(s->json)) {
            json_object_set_new(s->json, "amount_capturable",
                                json_integer(json_integer_value(
                                    json_object_get(s->json,
                                                    "amount_total"))));
            json_object_set_new(s->json, "amount_captured", json_integer(0));
        }
    }

    *copy = json_deep_copy(s->json);

    pthread_mutex_unlock(&mock_lock);

    return state;
}


/*
 * The shopper declined: an open session expires at once, except an Adyen
 * one: there a refused attempt leaves the session open, and the shopper
 * may still pay with another card.  Returns the state before, like
 * mock_session_pay().
 */
mock_session_state_e
mock_session_decline(const char *id, json_t **copy, mock_webhook_fault_t *wf)
{
    const char            *d;
    mock_session_t        *s;
    mock_session_state_e   state;

    *copy = NULL;
    memset(wf, 0, sizeof(*wf));

    pthread_mutex_lock(&mock_lock);

    s = mock_session_find(id);
    if (s == NULL) {
        pthread_mutex_unlock(&mock_lock);
        return MOCK_SESSION_NOT_FOUND;
    }

    state = mock_session_state(s->json);

    if (state == MOCK_SESSION_OPEN) {
        mock_session_webhook_fault(s, wf);
        d = json_string_value(json_object_get(s->json, "dialect"));
        if (d == NULL || strcmp(d, "adyen") != 0) {
            json_object_set_new(s->json, "status", json_string("expired"));
        }
        /* the generic look-up tells a declined session ("failed") from
         * one that timed out ("expired") */
        if (d != NULL && strcmp(d, "generic") == 0) {
            json_object_set_new(s->json, "declined", json_true());
        }
    }

    *copy = json_deep_copy(s->json);

    pthread_mutex_unlock(&mock_lock);

    return state;
}


/*
 * An async payment went through: a complete, unpaid session turns paid.
 * Returns COMPLETE with *copy after the change, or another state (a reset
 * forgot the session: NOT_FOUND) and changes nothing.
 */
mock_session_state_e
mock_session_settle(const char *id, json_t **copy)
{
    mock_session_t        *s;
    mock_session_state_e   state;

    *copy = NULL;

    pthread_mutex_lock(&mock_lock);

    s = mock_session_find(id);
    if (s == NULL) {
        pthread_mutex_unlock(&mock_lock);
        return MOCK_SESSION_NOT_FOUND;
    }

    state = mock_session_state(s->json);

    if (state == MOCK_SESSION_COMPLETE) {
        json_object_set_new(s->json, "payment_status", json_string("paid"));
        *copy = json_deep_copy(s->json);
    }

    pthread_mutex_unlock(&mock_lock);

    return state;
}


/*
 * The session expires now, as if its expires_at had passed: an open one
 * turns "expired" (and sends nothing, as a natural expiry).  Returns the
 * state before (OPEN: expired just now; EXPIRED: it already was, nothing
 * changes) with *copy after; COMPLETE changes nothing and copies nothing.
 */
mock_session_state_e
mock_session_expire(const char *id, json_t **copy)
{
    mock_session_t        *s;
    mock_session_state_e   state;

    *copy = NULL;

    pthread_mutex_lock(&mock_lock);

    s = mock_session_find(id);
    if (s == NULL) {
        pthread_mutex_unlock(&mock_lock);
        return MOCK_SESSION_NOT_FOUND;
    }

    state = mock_session_state(s->json);

    if (state == MOCK_SESSION_OPEN) {
        json_object_set_new(s->json, "status", json_string("expired"));
    }

    if (state != MOCK_SESSION_COMPLETE) {
        *copy = json_deep_copy(s->json);
    }

    pthread_mutex_unlock(&mock_lock);

    return state;
}
