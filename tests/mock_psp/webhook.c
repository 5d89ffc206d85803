/*
 * Mock PSP: webhook delivery, whatever the dialect.
 *
 * Every chain of events gets a thread of its own that delivers its events one
 * after the other; the copies of a duplicated event run in threads of their
 * own, joined by the chain's thread, so they reach the receiver at the same
 * time.  Each copy retries as Stripe does: any answer but a 2xx (a 4xx
 * included) or no answer at all is retried after --webhook-retry-ms,
 * doubling, at most 5 s apart, 10 attempts in all.
 *
 * A reset bumps the generation: sleeping deliveries wake and give up, and a
 * request in flight is aborted by curl's progress callback.  A stop does
 * the same and main() joins every chain thread before it frees the rest.
 * The threads are joined, never detached: a thread still running its exit
 * handlers (OpenSSL's per-thread state) when the process ends would look
 * like a leak to LeakSanitizer.  Finished ones are joined as new chains
 * start.  The records the control API lists live behind their own lock,
 * never held across a request or a sleep.
 *
 * Each record keeps the start of the last answer's body (Adyen wants
 * "[accepted]"; a harness can check what the gateway said), printable
 * ASCII only, anything else shown as '?'.
 *
 * Every attempt opens a connection of its own, but its curl handle comes
 * from a small pool of idle ones (mock_wh_handle_take/_give): a handle keeps
 * its TLS sessions and its CA store, so an attempt resumes the session of
 * an earlier one and does not read the CA file again.  Without the pool,
 * the CA file's parsing and the full handshake took most of the ASan
 * mock's processor time in the e2e suite.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mock_psp.h"


#define MOCK_WH_ATTEMPTS      10
#define MOCK_WH_MAX_DELAY_MS  5000
#define MOCK_WH_CONNECT_MS    5000L
#define MOCK_WH_TIMEOUT_MS    10000L
#define MOCK_WH_STACK_SIZE    (256 * 1024)
#define MOCK_WH_BODY_KEPT     256
#define MOCK_WH_HANDLES_KEPT  32


typedef struct mock_wh_record_s  mock_wh_record_t;

/* What GET /_control/webhooks shows of one copy of one event. */
struct mock_wh_record_s {
    mock_wh_record_t     *next;              /* in the order scheduled */
    char                  event_id[64];
    char                  type[64];
    char                  session[128];
    unsigned              attempts;
    long                  last_status;       /* 0: none yet, or no answer */
    char                  last_body[MOCK_WH_BODY_KEPT + 1];
    unsigned              delivered:1;
    unsigned              busy:1;            /* its chain runs: keep it */
};


typedef struct mock_wh_thread_s  mock_wh_thread_t;

/* A chain thread, until someone joins it. */
struct mock_wh_thread_s {
    mock_wh_thread_t     *next;
    mock_wh_event_t      *chain;
    pthread_t             tid;
    unsigned              done:1;            /* joining it will not block */
};


typedef struct {
    mock_wh_event_t      *ev;
    mock_wh_record_t     *record;
    unsigned              threaded:1;        /* the chain thread's own */
} mock_wh_copy_t;


/* The start of an answer's body. */
typedef struct {
    char                  text[MOCK_WH_BODY_KEPT + 1];
    size_t                len;
} mock_wh_answer_t;


static int mock_wh_aborted(uint64_t gen);
static int mock_wh_sleep(uint64_t gen, long ms);
static int mock_wh_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow);
static size_t mock_wh_keep(char *data, size_t size, size_t nmemb,
    void *arg);
static long mock_wh_post(mock_wh_event_t *ev, mock_wh_answer_t *answer,
    char *err, size_t errlen);
static void mock_wh_deliver(mock_wh_event_t *ev, mock_wh_record_t *record);
static void *mock_wh_copy_thread(void *arg);
static void *mock_wh_chain_thread(void *arg);
static void mock_wh_records_clear(void);
static void mock_wh_record_link(mock_wh_record_t *record);
static void mock_wh_join(int all);
static CURL *mock_wh_handle_take(void);
static void mock_wh_handle_give(CURL *h);


static pthread_mutex_t   mock_wh_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t    mock_wh_cond;       /* on CLOCK_MONOTONIC */
static atomic_ullong     mock_wh_gen;        /* changed under the lock */
static atomic_int        mock_wh_stopping;
static mock_wh_thread_t  *mock_wh_threads;   /* not joined yet */
static mock_wh_record_t  *mock_wh_records;
static mock_wh_record_t  **mock_wh_tail = &mock_wh_records;
static size_t            mock_wh_nrecords;

/* idle curl handles; a handle in use belongs to its attempt alone */
static pthread_mutex_t   mock_wh_handles_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL              *mock_wh_handles[MOCK_WH_HANDLES_KEPT];
static size_t            mock_wh_nhandles;


int
mock_webhook_init(void)
{
    pthread_condattr_t  attr;

    if (pthread_condattr_init(&attr) != 0) {
        return -1;
    }

    /* a wall clock step must not stretch or cut a retry delay */
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0
        || pthread_cond_init(&mock_wh_cond, &attr) != 0)
    {
        pthread_condattr_destroy(&attr);
        return -1;
    }

    pthread_condattr_destroy(&attr);

    /* before any thread exists: curl_global_init() is not thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }

    return 0;
}


/* No new chain from now on; running ones give up at once. */
void
mock_webhook_shutdown(void)
{
    pthread_mutex_lock(&mock_wh_lock);
    atomic_store(&mock_wh_stopping, 1);
    pthread_cond_broadcast(&mock_wh_cond);
    pthread_mutex_unlock(&mock_wh_lock);
}


/*
 * After mock_webhook_shutdown() and once no connection can start a chain:
 * joins the chain threads, frees all.
 */
void
mock_webhook_wait(void)
{
    mock_wh_join(1);

    pthread_mutex_lock(&mock_wh_lock);
    mock_wh_records_clear();
    pthread_mutex_unlock(&mock_wh_lock);

    /* no thread is left to take one */
    while (mock_wh_nhandles > 0) {
        curl_easy_cleanup(mock_wh_handles[--mock_wh_nhandles]);
    }

    curl_global_cleanup();
}


/* An idle handle with its options reset, or a new one; NULL: no memory. */
static CURL *
mock_wh_handle_take(void)
{
    CURL  *h;

    h = NULL;

    pthread_mutex_lock(&mock_wh_handles_lock);
    if (mock_wh_nhandles > 0) {
        h = mock_wh_handles[--mock_wh_nhandles];
    }
    pthread_mutex_unlock(&mock_wh_handles_lock);

    return (h != NULL) ? h : curl_easy_init();
}


/*
 * Back to the pool, options reset (curl_easy_reset keeps the TLS session
 * cache and the CA store); cleaned up when the pool is full.
 */
static void
mock_wh_handle_give(CURL *h)
{
    if (h == NULL) {
        return;
    }

    curl_easy_reset(h);

    pthread_mutex_lock(&mock_wh_handles_lock);
    if (mock_wh_nhandles < MOCK_WH_HANDLES_KEPT) {
        mock_wh_handles[mock_wh_nhandles++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&mock_wh_handles_lock);

    curl_easy_cleanup(h);
}


/* Joins the finished chain threads, or all of them (waiting). */
static void
mock_wh_join(int all)
{
    mock_wh_thread_t  *t, **p, *list;

    list = NULL;

    pthread_mutex_lock(&mock_wh_lock);

    for (p = &mock_wh_threads; *p; ) {
        t = *p;
        if (all || t->done) {
            *p = t->next;
            t->next = list;
            list = t;
        } else {
            p = &t->next;
        }
    }

    pthread_mutex_unlock(&mock_wh_lock);

    /* outside the lock: a thread not done yet still needs it */
    while (list != NULL) {
        t = list;
        list = t->next;
        pthread_join(t->tid, NULL);
        free(t);
    }
}


/* Forgets every record; pending deliveries and retries stop. */
void
mock_webhook_reset(void)
{
    pthread_mutex_lock(&mock_wh_lock);
    atomic_fetch_add(&mock_wh_gen, 1);
    mock_wh_records_clear();
    pthread_cond_broadcast(&mock_wh_cond);
    pthread_mutex_unlock(&mock_wh_lock);
}


/* Called with the lock held. */
static void
mock_wh_records_clear(void)
{
    mock_wh_record_t  *r, *next;

    for (r = mock_wh_records; r; r = next) {
        next = r->next;
        free(r);
    }

    mock_wh_records = NULL;
    mock_wh_tail = &mock_wh_records;
    mock_wh_nrecords = 0;
}


/*
 * Called with the lock held.  Past MOCK_MAX_ENTRIES the oldest finished
 * record goes, as the other maps forget their oldest entries.
 */
static void
mock_wh_record_link(mock_wh_record_t *record)
{
    mock_wh_record_t  **p, *old;

    if (mock_wh_nrecords >= MOCK_MAX_ENTRIES) {
        for (p = &mock_wh_records; *p; p = &(*p)->next) {
            if (!(*p)->busy) {
                break;
            }
        }

        if (*p != NULL) {
            old = *p;
            *p = old->next;
            if (mock_wh_tail == &old->next) {
                mock_wh_tail = p;
            }
            free(old);
            mock_wh_nrecords--;
        }
    }

    record->next = NULL;
    *mock_wh_tail = record;
    mock_wh_tail = &record->next;
    mock_wh_nrecords++;
}


mock_wh_event_t *
mock_wh_event_new(const mock_wh_dialect_t *dialect, const char *id,
    const char *type, const char *session, const mock_webhook_fault_t *wf)
{
    mock_wh_event_t  *ev;

    ev = calloc(1, sizeof(mock_wh_event_t));
    if (ev == NULL) {
        return NULL;
    }

    ev->dialect = dialect;
    snprintf(ev->id, sizeof(ev->id), "%s", id);
    snprintf(ev->type, sizeof(ev->type), "%s", type);
    snprintf(ev->session, sizeof(ev->session), "%s", session);
    ev->fault = *wf;
    ev->copies = 1 + (unsigned) wf->duplicate;

    return ev;
}


void
mock_wh_chain_free(mock_wh_event_t *chain)
{
    mock_wh_event_t  *next;

    for ( ; chain; chain = next) {
        next = chain->next;
        free(chain->body);
        free(chain->records);
        free(chain);
    }
}


/*
 * Takes the chain.  Its records appear at once (0 attempts), so a harness
 * sees what is coming even while a delay runs.  Never blocks on the network.
 */
int
mock_wh_send(mock_wh_event_t *chain)
{
    unsigned           i;
    uint64_t           gen;
    pthread_attr_t     attr;
    mock_wh_event_t   *ev;
    mock_wh_record_t  *r;
    mock_wh_thread_t  *t;

    mock_wh_join(0);

    t = calloc(1, sizeof(mock_wh_thread_t));
    if (t == NULL) {
        goto failed;
    }

    t->chain = chain;

    for (ev = chain; ev; ev = ev->next) {
        ev->records = calloc(ev->copies, sizeof(void *));
        if (ev->records == NULL) {
            goto failed;
        }

        for (i = 0; i < ev->copies; i++) {
            r = calloc(1, sizeof(mock_wh_record_t));
            if (r == NULL) {
                goto failed;
            }
            snprintf(r->event_id, sizeof(r->event_id), "%s", ev->id);
            snprintf(r->type, sizeof(r->type), "%s", ev->type);
            snprintf(r->session, sizeof(r->session), "%s", ev->session);
            r->busy = 1;
            ev->records[i] = r;
        }
    }

    if (pthread_attr_init(&attr) != 0) {
        goto failed;
    }

    pthread_attr_setstacksize(&attr, MOCK_WH_STACK_SIZE);

    pthread_mutex_lock(&mock_wh_lock);

    if (atomic_load(&mock_wh_stopping)) {
        pthread_mutex_unlock(&mock_wh_lock);
        pthread_attr_destroy(&attr);
        goto failed;
    }

    gen = atomic_load(&mock_wh_gen);

    for (ev = chain; ev; ev = ev->next) {
        ev->gen = gen;
        for (i = 0; i < ev->copies; i++) {
            mock_wh_record_link(ev->records[i]);
        }
    }

    /* Created under the lock: a stop cannot slip in before it is listed. */
    if (pthread_create(&t->tid, &attr, mock_wh_chain_thread, t) != 0) {
        /* the records stay listed, never attempted; the events go */
        for (ev = chain; ev; ev = ev->next) {
            for (i = 0; i < ev->copies; i++) {
                ((mock_wh_record_t *) ev->records[i])->busy = 0;
            }
        }
        pthread_mutex_unlock(&mock_wh_lock);
        pthread_attr_destroy(&attr);
        mock_log("webhooks for %s: cannot start a thread", chain->session);
        mock_wh_chain_free(chain);
        free(t);
        return -1;
    }

    t->next = mock_wh_threads;
    mock_wh_threads = t;

    pthread_mutex_unlock(&mock_wh_lock);
    pthread_attr_destroy(&attr);

    return 0;

failed:

    /* nothing was linked: every record is still ours */
    for (ev = chain; ev; ev = ev->next) {
        for (i = 0; ev->records != NULL && i < ev->copies; i++) {
            free(ev->records[i]);
        }
    }

    mock_log("webhooks for %s not sent (stopping or out of memory)",
             chain->session);
    mock_wh_chain_free(chain);
    free(t);

    return -1;
}


static int
mock_wh_aborted(uint64_t gen)
{
    return atomic_load(&mock_wh_stopping) || atomic_load(&mock_wh_gen) != gen;
}


/* 0 after ms milliseconds, -1 at once on a reset or a stop. */
static int
mock_wh_sleep(uint64_t gen, long ms)
{
    int              rc;
    struct timespec  until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }

    pthread_mutex_lock(&mock_wh_lock);

    rc = 0;

    while (!mock_wh_aborted(gen)) {
        if (pthread_cond_timedwait(&mock_wh_cond, &mock_wh_lock, &until)
            == ETIMEDOUT)
        {
            break;
        }
    }

    if (mock_wh_aborted(gen)) {
        rc = -1;
    }

    pthread_mutex_unlock(&mock_wh_lock);

    return rc;
}


/* curl calls this at least once a second: a reset or stop aborts. */
static int
mock_wh_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
    const mock_wh_event_t  *ev;

    (void) dltotal;
    (void) dlnow;
    (void) ultotal;
    (void) ulnow;

    ev = arg;

    return mock_wh_aborted(ev->gen);
}


/* Keeps the first MOCK_WH_BODY_KEPT bytes, printable; drops the rest. */
static size_t
mock_wh_keep(char *data, size_t size, size_t nmemb, void *arg)
{
    size_t             i;
    unsigned char      ch;
    mock_wh_answer_t  *a;

    a = arg;

    for (i = 0; i < size * nmemb && a->len < MOCK_WH_BODY_KEPT; i++) {
        ch = (unsigned char) data[i];
        a->text[a->len++] = (ch >= 0x20 && ch < 0x7f) ? (char) ch : '?';
    }

    a->text[a->len] = '\0';

    return size * nmemb;
}


/*
 * One attempt, on a connection of its own: a reused keep-alive connection
 * that closes would make curl resend silently, and the attempt count must
 * be exact.  (A TLS session is resumed: that is not a resend.)  Returns the
 * HTTP status, or 0 with err filled.
 */
static long
mock_wh_post(mock_wh_event_t *ev, mock_wh_answer_t *answer, char *err,
    size_t errlen)
{
    long                status;
    CURL               *h;
    CURLcode            rc;
    struct curl_slist  *hdrs, *tmp;
    char               *line, errbuf[CURL_ERROR_SIZE];

    status = 0;
    hdrs = NULL;
    errbuf[0] = '\0';
    answer->len = 0;
    answer->text[0] = '\0';

    h = mock_wh_handle_take();
    line = malloc(MOCK_WH_SIGNATURE_MAX);
    if (h == NULL || line == NULL) {
        snprintf(err, errlen, "curl_easy_init failed or out of memory");
        mock_wh_handle_give(h);
        free(line);
        return 0;
    }

    line[0] = '\0';
    if (ev->dialect->sign(ev, line, MOCK_WH_SIGNATURE_MAX) != 0) {
        snprintf(err, errlen, "cannot sign");
        mock_wh_handle_give(h);
        free(line);
        return 0;
    }

    {
        const char  *fixed[] = {
            "Content-Type: application/json; charset=utf-8",
            "User-Agent: mock_psp (webhooks)",
            /* no 100-continue round trip */
            "Expect:",
            line[0] != '\0' ? line : NULL
        };
        size_t  i;

        for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
            if (fixed[i] == NULL) {
                continue;
            }
            tmp = curl_slist_append(hdrs, fixed[i]);
            if (tmp == NULL) {
                snprintf(err, errlen, "out of memory");
                goto done;
            }
            hdrs = tmp;
        }
    }

    curl_easy_setopt(h, CURLOPT_URL, *ev->dialect->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, ev->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t) strlen(ev->body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, MOCK_WH_CONNECT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, MOCK_WH_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mock_wh_keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, mock_wh_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, ev);

    /*
     * Verification stays on whatever the flags say: the gateway's webhook
     * endpoint is what is under test, and a mock that skipped the check
     * would hide a broken certificate setup.
     */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (mock_conf.webhook_ca != NULL) {
        /* that CA alone (no system directory): curl keeps its store */
        curl_easy_setopt(h, CURLOPT_CAINFO, mock_conf.webhook_ca);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }

    rc = curl_easy_perform(h);

    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    } else {
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf
                                              : curl_easy_strerror(rc));
    }

done:

    curl_slist_free_all(hdrs);
    mock_wh_handle_give(h);
    free(line);

    return status;
}


static void
mock_wh_deliver(mock_wh_event_t *ev, mock_wh_record_t *record)
{
    int                attempt;
    long               status, delay;
    char               err[CURL_ERROR_SIZE + 32];
    mock_wh_answer_t   answer;

    delay = mock_conf.webhook_retry_ms;

    for (attempt = 1; attempt <= MOCK_WH_ATTEMPTS; attempt++) {

        if (mock_wh_aborted(ev->gen)) {
            return;
        }

        err[0] = '\0';
        status = mock_wh_post(ev, &answer, err, sizeof(err));

        pthread_mutex_lock(&mock_wh_lock);
        if (atomic_load(&mock_wh_gen) == ev->gen) {
            record->attempts++;
            record->last_status = status;
            memcpy(record->last_body, answer.text, answer.len + 1);
            record->delivered = (status >= 200 && status <= 299);
        }
        pthread_mutex_unlock(&mock_wh_lock);

        if (status >= 200 && status <= 299) {
            mock_log("webhook %s %s for %s: attempt %d, HTTP %ld, delivered "
                     "(\"%.40s\")", ev->id, ev->type, ev->session, attempt,
                     status, answer.text);
            return;
        }

        if (status != 0) {
            mock_log("webhook %s %s for %s: attempt %d, HTTP %ld",
                     ev->id, ev->type, ev->session, attempt, status);
        } else {
            mock_log("webhook %s %s for %s: attempt %d, no answer: %s",
                     ev->id, ev->type, ev->session, attempt, err);
        }

        if (attempt == MOCK_WH_ATTEMPTS) {
            mock_log("webhook %s for %s: giving up after %d attempts",
                     ev->id, ev->session, MOCK_WH_ATTEMPTS);
            return;
        }

        if (mock_wh_sleep(ev->gen, delay) != 0) {
            return;
        }

        delay = (delay * 2 > MOCK_WH_MAX_DELAY_MS) ? MOCK_WH_MAX_DELAY_MS
                                                   : delay * 2;
    }
}


static void *
mock_wh_copy_thread(void *arg)
{
    mock_wh_copy_t  *copy;

    copy = arg;
    mock_wh_deliver(copy->ev, copy->record);

    return NULL;
}


static void *
mock_wh_chain_thread(void *arg)
{
    unsigned           i, n;
    pthread_t         *tids;
    mock_wh_copy_t    *copies;
    mock_wh_event_t   *chain, *ev;
    mock_wh_thread_t  *self;

    self = arg;
    chain = self->chain;

    for (ev = chain; ev; ev = ev->next) {

        if (mock_wh_sleep(ev->gen, ev->delay_ms) != 0) {
            break;
        }

        if (ev->body == NULL
            && (ev->prepare == NULL || ev->prepare(ev) != 0))
        {
            mock_log("webhook %s for %s: nothing to send, the rest of its "
                     "chain is dropped", ev->id, ev->session);
            break;
        }

        tids = calloc(ev->copies, sizeof(pthread_t));
        copies = calloc(ev->copies, sizeof(mock_wh_copy_t));
        if (tids == NULL || copies == NULL) {
            free(tids);
            free(copies);
            break;
        }

        /* copy 0 runs here; the others at the same time, if threads come */
        n = 1;
        for (i = 0; i < ev->copies; i++) {
            copies[i].ev = ev;
            copies[i].record = ev->records[i];
            if (i > 0
                && pthread_create(&tids[n], NULL, mock_wh_copy_thread,
                                  &copies[i]) == 0)
            {
                n++;
                copies[i].threaded = 1;
            }
        }

        mock_wh_deliver(ev, copies[0].record);

        for (i = 1; i < n; i++) {
            pthread_join(tids[i], NULL);
        }

        /* copies no thread could take, one after the other */
        for (i = 1; i < ev->copies; i++) {
            if (!copies[i].threaded) {
                mock_wh_deliver(ev, copies[i].record);
            }
        }

        free(tids);
        free(copies);
    }

    pthread_mutex_lock(&mock_wh_lock);

    /* the records belong to the store again (a reset freed them) */
    for (ev = chain; ev; ev = ev->next) {
        if (ev->gen == atomic_load(&mock_wh_gen)) {
            for (i = 0; i < ev->copies; i++) {
                ((mock_wh_record_t *) ev->records[i])->busy = 0;
            }
        }
    }

    mock_wh_chain_free(chain);
    self->chain = NULL;
    self->done = 1;

    pthread_mutex_unlock(&mock_wh_lock);

    return NULL;
}


/* Every record of the session in the order scheduled; NULL: out of memory. */
json_t *
mock_wh_list(const char *session)
{
    json_t            *list, *item;
    mock_wh_record_t  *r;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    pthread_mutex_lock(&mock_wh_lock);

    for (r = mock_wh_records; r; r = r->next) {
        if (strcmp(r->session, session) != 0) {
            continue;
        }

        item = json_pack("{ss ss sI sI ss sb}",
                         "id", r->event_id,
                         "type", r->type,
                         "attempts", (json_int_t) r->attempts,
                         "last_status", (json_int_t) r->last_status,
                         "last_body", r->last_body,
                         "delivered", (int) r->delivered);

        if (item == NULL || json_array_append_new(list, item) != 0) {
            pthread_mutex_unlock(&mock_wh_lock);
            json_decref(list);
            return NULL;
        }
    }

    pthread_mutex_unlock(&mock_wh_lock);

    return list;
}


/*
 * The second step of an async payment, whatever the dialect: the money
 * arrived, the session turns paid, then the event says so (ev->rebuild
 * makes its body).  -1 if a reset forgot the session.
 */
int
mock_wh_prepare_settled(mock_wh_event_t *ev)
{
    json_t  *s;

    if (mock_session_settle(ev->session, &s) != MOCK_SESSION_COMPLETE
        || s == NULL)
    {
        json_decref(s);
        return -1;
    }

    mock_books_settled(s);
    ev->body = ev->rebuild(ev, s);
    json_decref(s);

    return (ev->body != NULL) ? 0 : -1;
}
