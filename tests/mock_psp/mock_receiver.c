/*
 * The mock PSP tests' webhook receiver: see mock_receiver.h.
 */

#include "mock_receiver.h"


typedef struct {
    char        *body;
    size_t       len;
} wh_conn_t;


struct rx_state  rx = { .lock = PTHREAD_MUTEX_INITIALIZER };


static enum MHD_Result
rx_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
    long                  waited;
    char                 *p;
    unsigned              status;
    wh_conn_t            *conn;
    wh_hit_t             *hit;
    const char           *v;
    enum MHD_Result       rc;
    struct MHD_Response  *resp;

    (void) cls;
    (void) url;
    (void) method;
    (void) version;

    conn = *con_cls;
    if (conn == NULL) {
        conn = calloc(1, sizeof(wh_conn_t));
        *con_cls = conn;
        return conn ? MHD_YES : MHD_NO;
    }

    if (*upload_size != 0) {
        p = realloc(conn->body, conn->len + *upload_size + 1);
        if (p == NULL) {
            return MHD_NO;
        }
        memcpy(p + conn->len, upload, *upload_size);
        conn->body = p;
        conn->len += *upload_size;
        conn->body[conn->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&rx.lock);

    if (rx.n < WH_MAX) {
        hit = &rx.hits[rx.n++];
        hit->at = now_ms();
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        "Stripe-Signature");
        snprintf(hit->sig, sizeof(hit->sig), "%s", v ? v : "");
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        rx.jwt_header ? rx.jwt_header
                                                      : "Payments-Verification");
        snprintf(hit->jwt, sizeof(hit->jwt), "%s", v ? v : "");
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        snprintf(hit->ctype, sizeof(hit->ctype), "%s", v ? v : "");
        hit->body = strdup(conn->body ? conn->body : "");
        hit->json = json_loads(hit->body ? hit->body : "", 0, NULL);
    }

    status = (rx.next < rx.nscript) ? rx.script[rx.next++] : rx.dflt;

    pthread_mutex_unlock(&rx.lock);

    /* in small steps: stopping the receiver must not wait for it */
    for (waited = 0; waited < rx.delay_ms && !rx.stopping; waited += 10) {
        usleep(10 * 1000);
    }

    v = rx.answer ? rx.answer : "ok";
    resp = MHD_create_response_from_buffer(strlen(v), (void *) v,
                                           MHD_RESPMEM_PERSISTENT);
    rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return rc;
}


static void
rx_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    wh_conn_t  *conn;

    (void) cls;
    (void) c;
    (void) toe;

    conn = *con_cls;
    if (conn != NULL) {
        free(conn->body);
        free(conn);
        *con_cls = NULL;
    }
}


void
rx_start(void)
{
    const union MHD_DaemonInfo  *info;

    rx.dflt = 200;

    rx.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION
                            | MHD_USE_INTERNAL_POLLING_THREAD
                            | MHD_USE_POLL,
                            0, NULL, NULL, rx_handler, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, rx_completed, NULL,
                            MHD_OPTION_END);
    cr_assert_not_null(rx.d);

    info = MHD_get_daemon_info(rx.d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    rx.port = info->port;
}


void
rx_stop(void)
{
    int  i;

    if (rx.d == NULL) {
        return;
    }

    rx.stopping = 1;
    MHD_stop_daemon(rx.d);
    rx.d = NULL;

    for (i = 0; i < rx.n; i++) {
        free(rx.hits[i].body);
        json_decref(rx.hits[i].json);
    }
    rx.n = 0;
}


/* Sets the statuses the receiver answers: the list, then dflt. */
void
rx_script(unsigned dflt, int n, const unsigned *statuses)
{
    int  i;

    pthread_mutex_lock(&rx.lock);
    for (i = 0; i < n; i++) {
        rx.script[i] = statuses[i];
    }
    rx.nscript = n;
    rx.next = 0;
    rx.dflt = dflt;
    pthread_mutex_unlock(&rx.lock);
}


int
rx_count(void)
{
    int  n;

    pthread_mutex_lock(&rx.lock);
    n = rx.n;
    pthread_mutex_unlock(&rx.lock);

    return n;
}


/* Waits until the receiver has n deliveries (at most timeout_ms). */
void
rx_wait(int n, long timeout_ms)
{
    double  end;

    end = now_ms() + timeout_ms;

    while (rx_count() < n) {
        cr_assert_lt(now_ms(), end, "%d deliveries after %ld ms, wanted %d",
                     rx_count(), timeout_ms, n);
        usleep(10 * 1000);
    }
}


const char *
wh_type(const wh_hit_t *hit)
{
    return json_string_value(json_object_get(hit->json, "type"));
}


const char *
wh_id(const wh_hit_t *hit)
{
    return json_string_value(json_object_get(hit->json, "id"));
}


json_t *
wh_object(const wh_hit_t *hit)
{
    return json_object_get(json_object_get(hit->json, "data"), "object");
}


/*
 * Recomputes Stripe's signature: HMAC-SHA256 keyed with the secret's bytes
 * over "t.body", lower-case hex, in the v1 entry.  Returns 1 if it matches,
 * and t in *t.
 */
int
wh_verify(const wh_hit_t *hit, const char *secret, long long *t)
{
    size_t          i;
    unsigned        len;
    char           *payload, hex[65], *v1;
    unsigned char   mac[32];

    cr_assert_eq(sscanf(hit->sig, "t=%lld,", t), 1, "Stripe-Signature: %s",
                 hit->sig);
    v1 = strstr(hit->sig, ",v1=");
    cr_assert_not_null(v1, "Stripe-Signature: %s", hit->sig);
    v1 += 4;
    cr_assert_eq(strlen(v1), 64, "v1: %s", v1);

    cr_assert(asprintf(&payload, "%lld.%s", *t, hit->body) > 0);
    HMAC(EVP_sha256(), secret, (int) strlen(secret),
         (unsigned char *) payload, strlen(payload), mac, &len);
    free(payload);

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }

    return CRYPTO_memcmp(hex, v1, 64) == 0;
}


/* GET /_control/webhooks?session=ID: the events array (caller frees). */
json_t *
wh_records(const char *id)
{
    resp_t   r;
    json_t  *events;
    char     path[256];

    snprintf(path, sizeof(path), "/_control/webhooks?session=%s", id);
    control(&r, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(&r, "session"), id);
    events = json_incref(json_object_get(r.json, "events"));
    cr_assert(json_is_array(events));
    resp_free(&r);

    return events;
}


long long
rec_int(json_t *events, size_t i, const char *name)
{
    return json_integer_value(json_object_get(json_array_get(events, i),
                                              name));
}


const char *
rec_str(json_t *events, size_t i, const char *name)
{
    return json_string_value(json_object_get(json_array_get(events, i),
                                             name));
}


int
rec_delivered(json_t *events, size_t i)
{
    return json_is_true(json_object_get(json_array_get(events, i),
                                        "delivered"));
}


/* Waits until every record of the session is finished: delivered, or
 * attempts reached; returns the events array. */
json_t *
wh_records_settled(const char *id, size_t n, long long attempts,
    long timeout_ms)
{
    size_t   i;
    double   end;
    json_t  *events;

    end = now_ms() + timeout_ms;

    for ( ;; ) {
        events = wh_records(id);

        if (json_array_size(events) == n) {
            for (i = 0; i < n; i++) {
                if (!rec_delivered(events, i)
                    && rec_int(events, i, "attempts") < attempts)
                {
                    break;
                }
            }
            if (i == n) {
                return events;
            }
        }

        cr_assert_lt(now_ms(), end, "records not settled: %s",
                     json_dumps(events, JSON_COMPACT));
        json_decref(events);
        usleep(20 * 1000);
    }
}


void
session_post(const char *id, const char *action, long expect)
{
    resp_t  r;
    char    path[256];

    snprintf(path, sizeof(path), "/_control/sessions/%s/%s", id, action);
    control(&r, "POST", path, NULL);
    cr_assert_eq(r.status, expect, "%s %s: %ld %s", action, id, r.status,
                 r.body);
    resp_free(&r);
}


void
wh_start(const char *retry_ms)
{
    char         url[128];
    const char  *args[12];

    rx_start();

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/webhooks/stripe",
             rx.port);

    args[0] = "--webhook-url";
    args[1] = url;
    args[2] = "--stripe-webhook-secret";
    args[3] = WH_SECRET;
    args[4] = "--webhook-retry-ms";
    args[5] = retry_ms;
    args[6] = NULL;

    mock_start_with(args);
}


void
wh_fini(void)
{
    mock_kill();
    rx_stop();
}
