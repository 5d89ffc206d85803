
/*
 * Copyright (C) ngx_payments authors
 *
 * Merchant notifications: the outbox's delivery (doc/NOTIFICATIONS.md).
 *
 * Every worker runs a timer.  A round claims due rows with a lease
 * (sql/functions/pay_notify_lease.sql: FOR UPDATE SKIP LOCKED, so
 * workers and gateways never hold one row at once) and starts one POST per
 * row on the worker's libcurl multi handle.  Each delivery records its own
 * outcome (pay_notify_record), which counts only while this worker still
 * holds the lease of that claim (the lease_until the claim returned: a
 * later claim of the row, this worker's too, is another's); a worker that
 * dies leaves its rows to the next claim
 * once their leases end.  A worker that stops gracefully (nginx -s quit,
 * or the old workers of a reload) claims nothing more but finishes and
 * records what it holds: every delivery holds a timer that is not
 * cancelable (nginx's graceful exit waits for those), bounded by the lease,
 * and a claim in flight holds its query's own (_pg.c), bounded by the
 * database time-out.  Nothing here blocks: queries go through _pg.c,
 * POSTs through _curl.c, and curl resolves names in its own thread, which
 * a delivery that times out leaves behind (CURLOPT_QUICK_EXIT, _curl.c).
 *
 * What a delivery may connect to is checked where the connection is made:
 * CURLOPT_OPENSOCKETFUNCTION sees every address curl is about to connect
 * to and refuses a forbidden one (pay_addr_forbidden), so a name that
 * resolves to an inside address after registration (DNS rebinding) gets
 * no socket.  No proxy, no redirects, https only.
 *
 * Logs name the notification and the endpoint, the status or curl's error:
 * never a secret, a signature, a URL's query or a body.  A failed attempt
 * is a warning: a receiver that fails is the merchant's to hear about.
 *
 * The gauges of /metrics (pay_notify_stats, _notify_gauges.c) are read by
 * every gateway with a database, delivering or not: the backlog is the
 * database's, and a gateway that does not deliver is the one most likely
 * to be asked about it.  The shard's worker of a delivering gateway also notes its host in
 * notify_deliverers about once a minute (pay_notify_heartbeat), so that
 * the tools can tell when no gateway delivers.
 *
 * Each shard has its own notifier in every worker (claims, deliveries in
 * flight up to batch=, their records): every query of it goes to its
 * shard only, so a shard that is down fails its own claims at once (its
 * pool refuses them) and the other shards' notifiers go on.  The gauges
 * and the heartbeat of shard i are read and sent by worker i mod
 * worker_processes (worker 0 for payments_database).
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_notify_int.h"

#include <payments/notify.h>
#include <payments/seal.h>

#include <openssl/crypto.h>


#define NGX_HTTP_PAYMENTS_NOTIFY_FIRST   500     /* ms after start */
#define NGX_HTTP_PAYMENTS_NOTIFY_SECRET  256     /* an opened whsec_ */


static void ngx_http_payments_notify_round(ngx_event_t *ev);
static void ngx_http_payments_notify_claimed(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_notify_start(ngx_http_payments_notifier_t *nt,
    PGresult *res, int row);
static ngx_int_t ngx_http_payments_notify_post(
    ngx_http_payments_delivery_t *d, PGresult *res, int row);
static ngx_int_t ngx_http_payments_notify_sign(
    ngx_http_payments_delivery_t *d, const char *sealed, const char *body,
    size_t len, int64_t ts, char *out, size_t cap);
static void ngx_http_payments_notify_answered(ngx_http_payments_fetch_t *f);
static void ngx_http_payments_notify_record(ngx_http_payments_delivery_t *d,
    ngx_uint_t ok, long status, const char *error);
static void ngx_http_payments_notify_recorded(ngx_http_payments_pg_query_t *q,
    PGresult *res);
static void ngx_http_payments_notify_done(ngx_http_payments_delivery_t *d);
static int ngx_http_payments_notify_prereq(void *data, char *primary_ip,
    char *local_ip, int primary_port, int local_port);
static curl_socket_t ngx_http_payments_notify_socket(void *data,
    curlsocktype purpose, struct curl_sockaddr *address);
static size_t ngx_http_payments_notify_discard(char *ptr, size_t size,
    size_t nmemb, void *userdata);


/* the worker's, one per shard (pmcf->shards' order), set up in
 * init_process: gone with the process */
static ngx_http_payments_notifier_t  *ngx_http_payments_notifiers;
static ngx_uint_t                     ngx_http_payments_nnotifiers;


static ngx_int_t ngx_http_payments_notify_init_shard(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf, ngx_http_payments_notifier_t *nt,
    ngx_uint_t shard);


ngx_int_t
ngx_http_payments_notify_init(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_uint_t  i;

    ngx_http_payments_notifiers = NULL;
    ngx_http_payments_nnotifiers = 0;

    if (pmcf->shards == NULL || pmcf->shards->nelts == 0) {
        return NGX_OK;
    }

    ngx_http_payments_notifiers = ngx_pcalloc(cycle->pool,
                                      pmcf->shards->nelts
                                      * sizeof(ngx_http_payments_notifier_t));
    if (ngx_http_payments_notifiers == NULL) {
        return NGX_ERROR;
    }

    ngx_http_payments_nnotifiers = pmcf->shards->nelts;

    for (i = 0; i < pmcf->shards->nelts; i++) {
        if (ngx_http_payments_notify_init_shard(cycle, pmcf,
                                            &ngx_http_payments_notifiers[i], i)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_notify_init_shard(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf, ngx_http_payments_notifier_t *nt,
    ngx_uint_t shard)
{
    u_char                     *p;
    ngx_http_payments_shard_t  *sh;

    sh = pmcf->shards->elts;

    nt->shard = shard;
    nt->shard_conf = pmcf->shards->nelts > 1 ? &sh[shard] : NULL;
    nt->pmcf = pmcf;
    nt->conf = &pmcf->notify;
    nt->log = cycle->log;
    nt->delivers = pmcf->notify.enable ? 1 : 0;
    ngx_queue_init(&nt->deliveries);

    /* the gauges: every five rounds, between 1 s and 10 s (interval= has
     * its default when payments_notify is off) */
    nt->stats_every = ngx_max(1000, ngx_min(10000, 5 * nt->conf->interval));

    if (ngx_http_payments_shard_mine(cycle, shard)) {
        p = ngx_cpymem(nt->host, cycle->hostname.data,
                       ngx_min(cycle->hostname.len, NGX_MAXHOSTNAMELEN));
        *p = '\0';

        nt->stats.handler = ngx_http_payments_notify_stats;
        nt->stats.data = nt;
        nt->stats.log = cycle->log;
        nt->stats.cancelable = 1;

        ngx_add_timer(&nt->stats, NGX_HTTP_PAYMENTS_NOTIFY_FIRST);
    }

    if (!nt->delivers) {
        return NGX_OK;
    }

    /* the lease holder: this worker, on this host (a reload's new workers
     * are new holders; the old ones finish and record the rows they hold) */
    p = ngx_snprintf((u_char *) nt->owner, sizeof(nt->owner) - 1, "%V:%P",
                     &cycle->hostname, ngx_pid);
    *p = '\0';

    p = ngx_snprintf((u_char *) nt->lease, sizeof(nt->lease) - 1, "%M",
                     nt->conf->lease);
    *p = '\0';

    p = ngx_snprintf((u_char *) nt->per_endpoint,
                     sizeof(nt->per_endpoint) - 1, "%ui",
                     nt->conf->per_endpoint);
    *p = '\0';

    p = ngx_snprintf((u_char *) nt->disable_after,
                     sizeof(nt->disable_after) - 1, "%M",
                     nt->conf->disable_after);
    *p = '\0';

    nt->timer.handler = ngx_http_payments_notify_round;
    nt->timer.data = nt;
    nt->timer.log = cycle->log;
    nt->timer.cancelable = 1;

    ngx_add_timer(&nt->timer, NGX_HTTP_PAYMENTS_NOTIFY_FIRST
                              + ngx_worker * 37 % 250);

    return NGX_OK;
}


void
ngx_http_payments_notify_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *qu;
    ngx_http_payments_delivery_t  *d;
    ngx_http_payments_notifier_t  *nt;

    for (i = 0; i < ngx_http_payments_nnotifiers; i++) {
        nt = &ngx_http_payments_notifiers[i];

        if (nt->pmcf == NULL) {
            continue;
        }

        if (nt->timer.timer_set) {
            ngx_del_timer(&nt->timer);
        }

        if (nt->stats.timer_set) {
            ngx_del_timer(&nt->stats);
        }

        /* what is still in flight here (a fast stop, or
         * worker_shutdown_timeout passed): the rows come back to a claim
         * when their leases end */
        while (!ngx_queue_empty(&nt->deliveries)) {
            qu = ngx_queue_head(&nt->deliveries);
            ngx_queue_remove(qu);
            d = ngx_queue_data(qu, ngx_http_payments_delivery_t, queue);

            ngx_http_payments_unhold(&d->hold);

            ngx_http_payments_fetch_cancel(&d->fetch);
            ngx_destroy_pool(d->pool);
        }

        nt->inflight = 0;
        nt->pmcf = NULL;
    }
}


static void
ngx_http_payments_notify_round(ngx_event_t *ev)
{
    u_char                        *p;
    ngx_http_payments_notifier_t  *nt = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (nt->claiming || nt->inflight >= nt->conf->batch) {
        ngx_add_timer(&nt->timer, nt->conf->interval);
        return;
    }

    p = ngx_snprintf((u_char *) nt->limit, sizeof(nt->limit) - 1, "%ui",
                     nt->conf->batch - nt->inflight);
    *p = '\0';

    nt->params[0] = nt->owner;
    nt->params[1] = nt->limit;
    nt->params[2] = nt->lease;
    nt->params[3] = nt->per_endpoint;

    ngx_memzero(&nt->claim, sizeof(ngx_http_payments_pg_query_t));
    nt->claim.sql = "SELECT notification_id, merchant_id, endpoint_id, url, "
                    "host, secret_sealed, prev_secret_sealed, attempts, "
                    "payload, lease_until "
                    "FROM pay_notify_lease($1, $2, $3, $4)";
    nt->claim.nparams = 4;
    nt->claim.values = nt->params;
    nt->claim.handler = ngx_http_payments_notify_claimed;
    nt->claim.data = nt;
    nt->claim.log = nt->log;
    nt->claim.shard = nt->shard;

    if (ngx_http_payments_pg_send(&nt->claim) != NGX_OK) {
        /* the store is down: the rows wait in it */
        ngx_add_timer(&nt->timer, nt->conf->interval);
        return;
    }

    /* a graceful stop waits for the claim (its query's timer is not
     * cancelable, _pg.c) and for the deliveries it starts (each holds one),
     * so that their rows are delivered and recorded, not left leased: an
     * attempt spent, the next one only after the lease */
    nt->claiming = 1;
}


static void
ngx_http_payments_notify_claimed(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    int                            i, n;
    ngx_http_payments_notifier_t  *nt = q->data;

    nt->claiming = 0;

    if (nt->pmcf == NULL) {
        return;
    }

    n = 0;

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == 10)
    {
        n = PQntuples(res);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, nt->log, 0,
                       "payments: pay_notify_lease: %d notifications, %ui "
                       "in flight, batch %ui", n, nt->inflight,
                       nt->conf->batch);

        for (i = 0; i < n; i++) {
            ngx_http_payments_notify_start(nt, res, i);
        }

    } else if (res) {
        ngx_log_error(NGX_LOG_ERR, nt->log, 0,
                      "payments: pay_notify_lease: %s",
                      PQresultErrorMessage(res));
    }

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    /* rows came: more may be due (a claim stops at the batch and at
     * per_endpoint=); the next claim comes as soon as half the batch is
     * done (ngx_http_payments_notify_done), else after interval= */
    nt->more = (n > 0);

    ngx_add_timer(&nt->timer, nt->conf->interval);
}


static void
ngx_http_payments_notify_start(ngx_http_payments_notifier_t *nt,
    PGresult *res, int row)
{
    ngx_pool_t                    *pool;
    ngx_http_payments_delivery_t  *d;

    pool = ngx_create_pool(2048, nt->log);
    if (pool == NULL) {
        return;     /* the lease ends; the row is claimed again */
    }

    d = ngx_pcalloc(pool, sizeof(ngx_http_payments_delivery_t));
    if (d == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    d->pool = pool;
    d->nt = nt;
    d->id = ngx_http_payments_strdup(pool, PQgetvalue(res, row, 0));
    d->merchant = ngx_http_payments_strdup(pool, PQgetvalue(res, row, 1));
    d->endpoint = ngx_http_payments_strdup(pool, PQgetvalue(res, row, 2));
    d->lease = ngx_http_payments_strdup(pool, PQgetvalue(res, row, 9));

    if (d->id == NULL || d->merchant == NULL || d->endpoint == NULL
        || d->lease == NULL)
    {
        ngx_destroy_pool(pool);
        return;
    }

    d->attempts = (ngx_uint_t) ngx_atoi((u_char *) PQgetvalue(res, row, 7),
                                        PQgetlength(res, row, 7));

    ngx_queue_insert_tail(&nt->deliveries, &d->queue);
    nt->inflight++;

    /* never the URL: a merchant may put a credential in it */
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, nt->log, 0,
                   "payments: notification %s to endpoint %s: attempt %ui",
                   d->id, d->endpoint, d->attempts);

    /* even when the worker stops meanwhile: the row is claimed (its attempt
     * counted), so it is delivered and recorded now */
    ngx_http_payments_hold(&d->hold, nt->log, nt->conf->lease);

    if (ngx_http_payments_notify_post(d, res, row) == NGX_ERROR) {
        /* no memory: nothing was sent, the lease ends and the row is
         * claimed again */
        ngx_http_payments_notify_done(d);
    }
}


/* NGX_OK: the POST runs; NGX_DECLINED: refused here and recorded as a
 * failed attempt; NGX_ERROR: nothing recorded (no memory) */
static ngx_int_t
ngx_http_payments_notify_post(ngx_http_payments_delivery_t *d, PGresult *res,
    int row)
{
    int64_t                           ts;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                        *h;
    ngx_uint_t                        i, allowed;
    const char                       *url, *body, *why;
    char                              hdr[256], sig[2 * PAY_NOTIFY_SIG_MAX];
    char                              uhost[256];
    ngx_http_payments_notify_conf_t  *nc = d->nt->conf;

    url = PQgetvalue(res, row, 3);
    len = PQgetlength(res, row, 8);

    /* the URL's rules again (the row may predate them, or come from
     * elsewhere); loopback names and addresses pass here, because every
     * address, named or not, is checked where curl connects (below) */
    if (pay_endpoint_url_check(url, ngx_strlen(url), 1, uhost, sizeof(uhost),
                               &why)
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, d->nt->log, 0,
                      "payments: notification %s: endpoint %s refused: %s",
                      d->id, d->endpoint, why);
        d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_REFUSED;
        d->final = 1;
        ngx_http_payments_notify_record(d, 0, 0, "url_refused");
        return NGX_DECLINED;
    }

    if (nc->allow_hosts) {
        allowed = 0;
        h = nc->allow_hosts->elts;

        for (i = 0; i < nc->allow_hosts->nelts; i++) {
            if (h[i].len == ngx_strlen(uhost)
                && ngx_strncmp(h[i].data, uhost, h[i].len) == 0)
            {
                allowed = 1;
                break;
            }
        }

        if (!allowed) {
            ngx_log_error(NGX_LOG_WARN, d->nt->log, 0,
                          "payments: notification %s: endpoint %s: its host "
                          "is not in payments_notify_allow_host", d->id,
                          d->endpoint);
            d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_REFUSED;
            d->final = 1;
            ngx_http_payments_notify_record(d, 0, 0, "host_not_allowed");
            return NGX_DECLINED;
        }
    }

    body = ngx_http_payments_strdup(d->pool, PQgetvalue(res, row, 8));
    if (body == NULL) {
        return NGX_ERROR;
    }

    ts = (int64_t) ngx_time();

    if (ngx_http_payments_notify_sign(d, PQgetvalue(res, row, 5), body, len,
                                      ts, sig, sizeof(sig))
        != NGX_OK)
    {
        d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_RETRY;
        ngx_http_payments_notify_record(d, 0, 0, "secret_unreadable");
        return NGX_DECLINED;
    }

    /* a rotation's grace: the old secret signs too */
    if (!PQgetisnull(res, row, 6)) {
        size_t  n = ngx_strlen(sig);

        sig[n] = ' ';

        if (ngx_http_payments_notify_sign(d, PQgetvalue(res, row, 6), body,
                                          len, ts, sig + n + 1,
                                          sizeof(sig) - n - 1)
            != NGX_OK)
        {
            sig[n] = '\0';  /* the current one alone still verifies */
        }
    }

    if (ngx_http_payments_fetch_easy(d->pool, &d->fetch) != NGX_OK) {
        OPENSSL_cleanse(sig, sizeof(sig));
        return NGX_ERROR;
    }

    /* one append that fails fails the delivery: never an unsigned one */
    rc = ngx_http_payments_fetch_header(&d->fetch,
                                        "Content-Type: application/json");
    ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1, "webhook-id: %s%Z", d->id);
    rc = (rc == NGX_OK) ? ngx_http_payments_fetch_header(&d->fetch, hdr) : rc;
    ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1, "webhook-timestamp: %L%Z",
                 ts);
    rc = (rc == NGX_OK) ? ngx_http_payments_fetch_header(&d->fetch, hdr) : rc;
    ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1, "webhook-signature: %s%Z",
                 sig);
    rc = (rc == NGX_OK) ? ngx_http_payments_fetch_header(&d->fetch, hdr) : rc;
    rc = (rc == NGX_OK) ? ngx_http_payments_fetch_header(&d->fetch, "Expect:")
                        : rc;

    OPENSSL_cleanse(sig, sizeof(sig));
    OPENSSL_cleanse(hdr, sizeof(hdr));

    if (rc != NGX_OK) {
        ngx_http_payments_fetch_cancel(&d->fetch);
        return NGX_ERROR;
    }

    d->fetch.handler = ngx_http_payments_notify_answered;
    d->fetch.data = d;
    d->fetch.log = d->nt->log;

    curl_easy_setopt(d->fetch.easy, CURLOPT_URL, url);
    curl_easy_setopt(d->fetch.easy, CURLOPT_HTTPHEADER,
                     d->fetch.headers);
    curl_easy_setopt(d->fetch.easy, CURLOPT_POST, 1L);
    curl_easy_setopt(d->fetch.easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(d->fetch.easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t) len);
    curl_easy_setopt(d->fetch.easy, CURLOPT_TIMEOUT_MS, (long) nc->timeout);
    curl_easy_setopt(d->fetch.easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) nc->connect_timeout);
    curl_easy_setopt(d->fetch.easy, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(d->fetch.easy, CURLOPT_PROXY, "");
    curl_easy_setopt(d->fetch.easy, CURLOPT_USERAGENT,
                     "ngx_payments-notify/1");
    curl_easy_setopt(d->fetch.easy, CURLOPT_OPENSOCKETFUNCTION,
                     ngx_http_payments_notify_socket);
    curl_easy_setopt(d->fetch.easy, CURLOPT_OPENSOCKETDATA, d);
    curl_easy_setopt(d->fetch.easy, CURLOPT_PREREQFUNCTION,
                     ngx_http_payments_notify_prereq);
    curl_easy_setopt(d->fetch.easy, CURLOPT_PREREQDATA, d);
    curl_easy_setopt(d->fetch.easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_payments_notify_discard);
    curl_easy_setopt(d->fetch.easy, CURLOPT_WRITEDATA, d);

    /* ca=: the endpoints' CAs; NULL: the system's */
    d->fetch.trust = nc->ca;

    if (ngx_http_payments_fetch_go(&d->fetch) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "v1,<signature>" of this delivery under a sealed secret */
static ngx_int_t
ngx_http_payments_notify_sign(ngx_http_payments_delivery_t *d,
    const char *sealed, const char *body, size_t len, int64_t ts, char *out,
    size_t cap)
{
    int            rc;
    size_t         slen, klen;
    char           secret[NGX_HTTP_PAYMENTS_NOTIFY_SECRET];
    unsigned char  key[PAY_WHSEC_KEY_MAX];

    rc = pay_unseal(d->nt->pmcf->keyring, d->endpoint, sealed,
                    ngx_strlen(sealed), secret, sizeof(secret), &slen);

    if (rc == 0) {
        rc = pay_whsec_decode(secret, slen, key, &klen);
    }

    if (rc == 0) {
        rc = pay_notify_sign(key, klen, d->id, ts, body, len, out, cap);
    }

    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(key, sizeof(key));

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, d->nt->log, 0,
                      "payments: notification %s: the signing secret of "
                      "endpoint %s does not open with payments_encryption_key",
                      d->id, d->endpoint);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static curl_socket_t
ngx_http_payments_notify_socket(void *data, curlsocktype purpose,
    struct curl_sockaddr *address)
{
    ngx_http_payments_delivery_t  *d = data;

    if (purpose != CURLSOCKTYPE_IPCXN
        || pay_addr_forbidden(&address->addr, d->nt->conf->allow_loopback))
    {
        d->refused = 1;
        return CURL_SOCKET_BAD;
    }

    return socket(address->family, address->socktype, address->protocol);
}


/*
 * Before each request, on a new connection or a reused one: the socket check
 * above sees only connections this handle opens.  The worker's connection
 * cache is shared with the PSP calls, and a PSP's connection to the same
 * host, port and TLS settings (a PSP on an internal address) would be reused
 * here without it.  The address is checked again, whoever opened it.
 */
static int
ngx_http_payments_notify_prereq(void *data, char *primary_ip, char *local_ip,
    int primary_port, int local_port)
{
    ngx_http_payments_delivery_t  *d = data;

    (void) local_ip;
    (void) primary_port;
    (void) local_port;

    if (pay_addr_text_forbidden(primary_ip, d->nt->conf->allow_loopback)) {
        d->refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }

    return CURL_PREREQFUNC_OK;
}


/* The endpoint's answer is read up to NGX_HTTP_PAYMENTS_NOTIFY_ANSWER_MAX
 * and dropped.  Past it the transfer stops (an endpoint that answers 200
 * and goes on streaming would otherwise run into the time-out, be retried
 * and counted as failing); its status, already read, stands. */

#define NGX_HTTP_PAYMENTS_NOTIFY_ANSWER_MAX  4096

static size_t
ngx_http_payments_notify_discard(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_payments_delivery_t  *d = userdata;

    (void) ptr;

    d->answer_len += size * nmemb;

    if (d->answer_len > NGX_HTTP_PAYMENTS_NOTIFY_ANSWER_MAX) {
        curl_easy_getinfo(d->fetch.easy, CURLINFO_RESPONSE_CODE,
                          &d->answer_status);
        return 0;
    }

    return size * nmemb;
}


static void
ngx_http_payments_notify_answered(ngx_http_payments_fetch_t *f)
{
    const char                    *error;
    ngx_http_payments_delivery_t  *d = f->data;

    if (f->status == 0 && f->result == CURLE_WRITE_ERROR
        && d->answer_status >= 200 && d->answer_status < 300)
    {
        /* a 2xx whose body went on past the limit: delivered */
        f->status = d->answer_status;
    }

    if (f->status >= 200 && f->status < 300) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, d->nt->log, 0,
                       "payments: notification %s delivered: HTTP %l in "
                       "%M ms", d->id, f->status, f->elapsed);

        d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_DELIVERED;
        ngx_http_payments_notify_record(d, 1, f->status, NULL);
        return;
    }

    if (d->refused) {
        d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_REFUSED;
        error = "address_forbidden";

    } else if (f->status) {
        d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_RETRY;
        error = f->status >= 300 && f->status < 400 ? "redirect_not_followed"
                                                    : "http_status";

    } else {
        d->outcome = NGX_HTTP_PAYMENTS_NOTIFY_RETRY;
        error = f->result == CURLE_OPERATION_TIMEDOUT ? "timeout"
                                                      : curl_easy_strerror(
                                                                  f->result);
    }

    ngx_log_error(NGX_LOG_WARN, d->nt->log, 0,
                  "payments: notification %s to endpoint %s failed "
                  "(attempt %ui): %s %l", d->id, d->endpoint, d->attempts,
                  error, f->status);

    ngx_http_payments_notify_record(d, 0, f->status, error);
}


static void
ngx_http_payments_notify_record(ngx_http_payments_delivery_t *d,
    ngx_uint_t ok, long status, const char *error)
{
    int64_t                        retry;
    ngx_http_payments_notifier_t  *nt = d->nt;

    retry = -1;

    if (!ok && !d->final) {
        retry = pay_notify_backoff_ms((unsigned) d->attempts,
                                      (unsigned) nt->conf->backoff_scale,
                                      (double) (ngx_random() % 10000)
                                      / 10000.0);
    }

    if (!ok && retry < 0) {
        d->outcome = d->outcome == NGX_HTTP_PAYMENTS_NOTIFY_REFUSED
                     ? NGX_HTTP_PAYMENTS_NOTIFY_REFUSED
                     : NGX_HTTP_PAYMENTS_NOTIFY_FAILED;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, nt->log, 0,
                   "payments: notification %s: pay_notify_record %s, %s, "
                   "next attempt in %L ms (-1: none)", d->id,
                   ok ? "delivered" : "failed", error ? error : "-", retry);

    d->params[0] = d->merchant;
    d->params[1] = d->id;
    d->params[2] = nt->owner;
    d->params[3] = ok ? "t" : "f";
    d->params[4] = status ? ngx_http_payments_num(d->pool, status) : NULL;
    d->params[5] = error;
    d->params[6] = retry >= 0 ? ngx_http_payments_num(d->pool, retry) : NULL;
    d->params[7] = "0";                 /* no count: time spent failing */
    d->params[8] = nt->disable_after;
    d->params[9] = d->lease;            /* this claim's, not a later one's */

    ngx_memzero(&d->query, sizeof(ngx_http_payments_pg_query_t));
    d->query.sql = "SELECT status, endpoint_disabled FROM "
                   "pay_notify_record($1, $2, $3, $4, $5, $6, $7, $8, "
                   "$9::bigint, $10::timestamptz)";
    d->query.nparams = 10;
    d->query.values = d->params;
    d->query.handler = ngx_http_payments_notify_recorded;
    d->query.data = d;
    d->query.log = nt->log;
    d->query.shard = nt->shard;         /* the shard it was claimed from */

    if ((status && d->params[4] == NULL) || (retry >= 0 && d->params[6] == NULL)
        || ngx_http_payments_pg_send(&d->query) != NGX_OK)
    {
        /* not recorded: the lease ends and the row is sent again (a
         * receiver deduplicates on webhook-id) */
        ngx_log_error(NGX_LOG_WARN, nt->log, 0,
                      "payments: notification %s: outcome not recorded, the "
                      "store is unavailable", d->id);
        ngx_http_payments_notify_done(d);
    }
}


static void
ngx_http_payments_notify_recorded(ngx_http_payments_pg_query_t *q,
    PGresult *res)
{
    ngx_http_payments_delivery_t  *d = q->data;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_log_error(NGX_LOG_ERR, d->nt->log, 0,
                      "payments: notification %s: pay_notify_record: %s",
                      d->id, res ? PQresultErrorMessage(res)
                                 : "store unavailable");

    } else if (ngx_strcmp(PQgetvalue(res, 0, 0), "STALE") == 0) {
        /* another holder has it now: its outcome counts, not ours */
        ngx_log_error(NGX_LOG_INFO, d->nt->log, 0,
                      "payments: notification %s: the lease ended before the "
                      "outcome was recorded", d->id);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, d->nt->log, 0,
                       "payments: notification %s recorded: %s", d->id,
                       PQgetvalue(res, 0, 0));

        if (ngx_http_payments_metrics) {
            (void) ngx_atomic_fetch_add(
                           &ngx_http_payments_metrics->notify[d->outcome], 1);
        }

        if (PQgetvalue(res, 0, 1)[0] == 't') {
            ngx_log_error(NGX_LOG_WARN, d->nt->log, 0,
                          "payments: endpoint %s of merchant %s disabled: "
                          "its deliveries failed for %s ms",
                          d->endpoint, d->merchant, d->nt->disable_after);
        }
    }

    ngx_http_payments_notify_done(d);
}


static void
ngx_http_payments_notify_done(ngx_http_payments_delivery_t *d)
{
    ngx_http_payments_notifier_t  *nt = d->nt;

    ngx_queue_remove(&d->queue);
    nt->inflight--;

    ngx_http_payments_unhold(&d->hold);

    ngx_http_payments_fetch_cancel(&d->fetch);
    ngx_destroy_pool(d->pool);

    if (nt->more && !nt->claiming && nt->inflight <= nt->conf->batch / 2
        && !(ngx_exiting || ngx_terminate || ngx_quit))
    {
        nt->more = 0;

        /* the claim's answer armed it interval= ahead: nginx keeps an armed
         * timer whose new expiry is within NGX_TIMER_LAZY_DELAY (300 ms)
         * of the old one, so the next claim would wait for that instead */
        if (nt->timer.timer_set) {
            ngx_del_timer(&nt->timer);
        }

        ngx_add_timer(&nt->timer, 1);
    }
}
