
/*
 * Copyright (C) ngx_payments authors
 *
 * PSP calls on one libcurl multi handle per worker, driven by nginx's event
 * loop: libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when to wake it (CURLMOPT_TIMERFUNCTION); nginx's events and one timer
 * call curl_multi_socket_action.  curl_easy_perform never runs here.
 * Debian's libcurl resolves names in its own thread, so a PSP host name does
 * not block the worker either (nginx refuses to start with a libcurl that
 * has no asynchronous resolver: _module.c's init_module): and since a
 * transfer that ends (a time-out, a request gone) while its lookup still
 * runs would otherwise wait for that thread inside curl_multi_socket_action
 * or curl_multi_remove_handle, CURLOPT_QUICK_EXIT lets it leave the thread
 * behind (a DNS server that never answers held the worker 5-30 s per lookup
 * before).
 *
 * Nor does TLS read a CA file: left to itself, Debian's libcurl (7.88,
 * OpenSSL) opens and parses its whole bundle
 * (/etc/ssl/certs/ca-certificates.crt, 144 certificates, 215 KB) for every
 * new connection, inside curl_multi_socket_action: about 22 ms of the
 * worker each time; a ca= file's certificates likewise.  Each set of CAs
 * is a trust instead: one X509_STORE built from it at configuration time
 * (the system's bundle in the master, once per start or reload) that each
 * connection's SSL_CTX takes a reference to (CURLOPT_SSL_CTX_FUNCTION),
 * curl given no CA file nor directory.  curl cannot tell trusts apart (it
 * keeps connections and TLS sessions by its own options: a session made
 * under one trust would be resumed, unverified, for a call under another),
 * so each trust has a multi handle of its own in each worker, and with it
 * its connections and sessions.
 */


#include "ngx_http_payments_module.h"

#include <payments/breaker.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>


#define NGX_HTTP_PAYMENTS_FETCH_MAX  (256 * 1024)


/* a set of CAs: its store (the configuration's) and the worker's multi
 * handle for the calls it verifies */
struct ngx_http_payments_trust_s {
    X509_STORE   *store;
    CURLM        *multi;
    ngx_event_t   timer;
    ngx_log_t    *log;
};

typedef ngx_http_payments_trust_t  ngx_http_payments_curl_t;


static int ngx_http_payments_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_payments_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_payments_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_payments_curl_event_handler(ngx_event_t *ev);
static void ngx_http_payments_curl_done(ngx_http_payments_curl_t *cu);
static ngx_int_t ngx_http_payments_curl_multi(ngx_http_payments_curl_t *cu,
    ngx_cycle_t *cycle);
static CURLcode ngx_http_payments_curl_ssl_ctx(CURL *easy, void *ssl_ctx,
    void *userp);
static void ngx_http_payments_curl_trust_free(void *data);
static size_t ngx_http_payments_curl_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static void ngx_http_payments_fetch_cleanup(void *data);


/* this worker's: the system's trust, and every trust of the configuration
 * (the ca= files', made as their directives were read, and the system's) */
static ngx_http_payments_curl_t  *ngx_http_payments_curl;
static ngx_array_t               *ngx_http_payments_curl_trusts;


/*
 * A trust at configuration time: the certificates of a ca= file's text
 * (pem), or with pem NULL the system's, from the CA file libcurl was built
 * to use (Debian's /etc/ssl/certs/ca-certificates.crt, which
 * update-ca-certificates writes with every certificate of /etc/ssl/certs);
 * the directory itself is not searched.  A system's bundle that does not
 * load is a warning, and an empty store: every call it is for then fails
 * its verification, as curl failed each before.
 */

ngx_http_payments_trust_t *
ngx_http_payments_curl_trust(ngx_conf_t *cf, ngx_str_t *pem)
{
    BIO                             *bio;
    CURL                            *easy;
    X509                            *x;
    char                            *path;
    ngx_pool_cleanup_t              *cln;
    ngx_http_payments_trust_t       *tr, **slot;
    ngx_http_payments_main_conf_t   *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);

    if (pmcf->trusts == NULL) {
        pmcf->trusts = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_payments_trust_t *));
        if (pmcf->trusts == NULL) {
            return NULL;
        }
    }

    tr = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_trust_t));
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    slot = ngx_array_push(pmcf->trusts);

    if (tr == NULL || cln == NULL || slot == NULL) {
        return NULL;
    }

    tr->store = X509_STORE_new();
    if (tr->store == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_payments_curl_trust_free;
    cln->data = tr;
    *slot = tr;

    if (pem) {
        /* the text ngx_http_payments_read_file checked: certificates */
        bio = BIO_new_mem_buf(pem->data, (int) pem->len);
        if (bio == NULL) {
            return NULL;
        }

        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            X509_STORE_add_cert(tr->store, x);
            X509_free(x);
        }

        BIO_free(bio);

    } else {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            return NULL;
        }

        path = NULL;
        easy = curl_easy_init();

        if (easy == NULL
            || curl_easy_getinfo(easy, CURLINFO_CAINFO, &path) != CURLE_OK
            || path == NULL)
        {
            path = (char *) X509_get_default_cert_file();
        }

        if (X509_STORE_load_locations(tr->store, path, NULL) != 1) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "payments: the system's CA file \"%s\" does "
                               "not load: every TLS call without a CA file "
                               "of its own fails its verification", path);
            X509_STORE_free(tr->store);
            tr->store = X509_STORE_new();
            if (tr->store == NULL) {
                return NULL;
            }
        }

        if (easy) {
            curl_easy_cleanup(easy);
        }
    }

    ERR_clear_error();

    /* what curl sets on the store it fills itself (and sets again on this
     * one, to the same): an issuer from the store before one the server
     * sent, and a trusted intermediate as an anchor */
    X509_STORE_set_flags(tr->store, X509_V_FLAG_TRUSTED_FIRST
                                    | X509_V_FLAG_PARTIAL_CHAIN);

    return tr;
}


static void
ngx_http_payments_curl_trust_free(void *data)
{
    ngx_http_payments_trust_t  *tr = data;

    if (tr->store) {
        X509_STORE_free(tr->store);
        tr->store = NULL;
    }
}


ngx_int_t
ngx_http_payments_curl_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_http_payments_trust_t      **trusts;
    ngx_http_payments_main_conf_t   *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_payments_module);

    /* postconfiguration made the system's trust (when a location says
     * "payments", as init_process checked) */
    if (pmcf->trusts == NULL || pmcf->trust == NULL) {
        return NGX_ERROR;
    }

    ngx_http_payments_curl = pmcf->trust;
    ngx_http_payments_curl_trusts = pmcf->trusts;

    trusts = pmcf->trusts->elts;

    for (i = 0; i < pmcf->trusts->nelts; i++) {
        if (ngx_http_payments_curl_multi(trusts[i], cycle) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_payments_curl_multi(ngx_http_payments_curl_t *cu, ngx_cycle_t *cycle)
{
    cu->log = cycle->log;

    cu->multi = curl_multi_init();
    if (cu->multi == NULL) {
        return NGX_ERROR;
    }

    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_payments_curl_socket);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_payments_curl_timer);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);

    /* keep-alive connections to the PSPs, reused across requests */
    curl_multi_setopt(cu->multi, CURLMOPT_MAXCONNECTS, 512L);

    ngx_memzero(&cu->timer, sizeof(ngx_event_t));
    cu->timer.handler = ngx_http_payments_curl_timer_handler;
    cu->timer.data = cu;
    cu->timer.log = cycle->log;
    cu->timer.cancelable = 1;

    return NGX_OK;
}


void
ngx_http_payments_curl_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_payments_curl_t   *cu, **trusts;

    if (ngx_http_payments_curl_trusts == NULL) {
        return;
    }

    trusts = ngx_http_payments_curl_trusts->elts;

    for (i = 0; i < ngx_http_payments_curl_trusts->nelts; i++) {
        cu = trusts[i];

        if (cu->timer.timer_set) {
            ngx_del_timer(&cu->timer);
        }

        if (cu->multi) {
            curl_multi_cleanup(cu->multi);
            cu->multi = NULL;
        }
    }
}


/* a new connection's SSL_CTX verifies with its trust's store: curl, named
 * no CA file or directory, loads none into it */

static CURLcode
ngx_http_payments_curl_ssl_ctx(CURL *easy, void *ssl_ctx, void *userp)
{
    X509_STORE  *store = userp;

    if (store == NULL) {
        return CURLE_SSL_CACERT_BADFILE;
    }

    SSL_CTX_set1_cert_store(ssl_ctx, store);

    return CURLE_OK;
}


ngx_int_t
ngx_http_payments_fetch_easy(ngx_pool_t *pool, ngx_http_payments_fetch_t *f)
{
    CURL                      *easy;
    ngx_pool_cleanup_t        *cln;
    ngx_http_payments_curl_t  *cu = ngx_http_payments_curl;

    if (cu == NULL || cu->multi == NULL) {
        return NGX_ERROR;
    }

    ngx_http_payments_fetch_cancel(f);

    f->trust = NULL;

    f->pool = pool;
    f->len = 0;
    f->status = 0;
    f->result = CURLE_OK;
    f->sent = 0;
    f->elapsed = ngx_current_msec;

    if (f->body == NULL) {
        cln = ngx_pool_cleanup_add(pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_payments_fetch_cleanup;
        cln->data = f;

        f->cap = 4096;
        f->body = ngx_palloc(pool, f->cap);
        if (f->body == NULL) {
            return NGX_ERROR;
        }
    }

    easy = curl_easy_init();
    if (easy == NULL) {
        return NGX_ERROR;
    }

    f->easy = easy;

    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_payments_curl_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, f);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    f->errbuf[0] = '\0';
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);

    /* the CAs are the trust's store (fetch_go), never a file read here */
    if (curl_easy_setopt(easy, CURLOPT_CAINFO, NULL) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_CAPATH, NULL) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION,
                            ngx_http_payments_curl_ssl_ctx)
           != CURLE_OK)
    {
        ngx_http_payments_fetch_cancel(f);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_fetch_go(ngx_http_payments_fetch_t *f)
{
    CURLMcode                  mrc;
    ngx_http_payments_curl_t  *cu;

    /* the system's CAs unless the caller named a trust of its own */
    cu = f->trust ? f->trust : ngx_http_payments_curl;
    f->trust = cu;

    if (cu->multi == NULL) {
        ngx_http_payments_fetch_cancel(f);
        return NGX_ERROR;
    }

    curl_easy_setopt(f->easy, CURLOPT_SSL_CTX_DATA, cu->store);

    mrc = curl_multi_add_handle(cu->multi, f->easy);
    if (mrc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, f->log, 0,
                      "payments: curl_multi_add_handle: %s",
                      curl_multi_strerror(mrc));
        ngx_http_payments_fetch_cancel(f);
        return NGX_ERROR;
    }

    f->running = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_payments_fetch(ngx_pool_t *pool, ngx_http_payments_fetch_t *f,
    ngx_http_payments_psp_t *psp, pay_psp_api_e api, const char *url,
    const char *content_type, const char *idempotency_key, const char *body,
    size_t len, ngx_msec_t timeout)
{
    return ngx_http_payments_fetch_method(pool, f, psp, api, NULL, url,
                                          content_type, idempotency_key,
                                          body, len, timeout);
}


ngx_int_t
ngx_http_payments_fetch_method(ngx_pool_t *pool,
    ngx_http_payments_fetch_t *f, ngx_http_payments_psp_t *psp,
    pay_psp_api_e api, const char *method, const char *url,
    const char *content_type, const char *idempotency_key, const char *body,
    size_t len, ngx_msec_t timeout)
{
    char                       hdr[512], *auth;
    CURL                      *easy;

    if (ngx_http_payments_fetch_easy(pool, f) != NGX_OK) {
        return NGX_ERROR;
    }

    easy = f->easy;
    f->api = api;

    /*
     * The list is the fetch's from its first header on, so that the
     * cleanup frees what was appended; one append that fails fails the
     * call (a request without its credentials must never go out).
     */

    /* the credentials of the API the request goes to: added here, never
     * stored with the request; an API the PSP has no credential for is
     * never called */
    auth = api == PAY_PSP_API_TRANSFERS ? psp->transfers_auth_header
                                        : psp->auth_header;

    if (auth == NULL || ngx_http_payments_fetch_header(f, auth) != NGX_OK) {
        goto failed;
    }

    if (body) {
        ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1, "Content-Type: %s%Z",
                     content_type);
        if (ngx_http_payments_fetch_header(f, hdr) != NGX_OK) {
            goto failed;
        }
    }

    if (idempotency_key) {
        ngx_snprintf((u_char *) hdr, sizeof(hdr) - 1,
                     "Idempotency-Key: %s%Z", idempotency_key);
        if (ngx_http_payments_fetch_header(f, hdr) != NGX_OK) {
            goto failed;
        }
    }

    if ((psp->version_header
         && ngx_http_payments_fetch_header(f, psp->version_header) != NGX_OK)
        || ngx_http_payments_fetch_header(f, "Accept: application/json")
           != NGX_OK
        || ngx_http_payments_fetch_header(f, "Expect:") != NGX_OK)
    {
        goto failed;
    }

    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, f->headers);

    if (body) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);

    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }

    /* another method on the same exchange (a DELETE without a body) */
    if (method) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    }

    f->timeout = timeout;
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) psp->connect_timeout);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR,
                     psp->allow_http ? "https,http" : "https");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_payments/0.1");

    /* ca_file=: the PSP's own CAs; NULL: the system's */
    f->trust = psp->ca;

    if (psp->pins) {
        curl_easy_setopt(easy, CURLOPT_PINNEDPUBLICKEY, psp->pins);
    }

    /* never the URL (a session's id) nor a header (the credentials) */
    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, f->log, 0,
                   "payments: psp \"%V\" %s, %uz bytes, timeout %M ms",
                   &psp->name, method ? method : body ? "POST" : "GET",
                   body ? len : 0,
                   timeout);

    return ngx_http_payments_fetch_go(f);

failed:

    ngx_http_payments_fetch_cancel(f);
    return NGX_ERROR;
}


ngx_int_t
ngx_http_payments_fetch_header(ngx_http_payments_fetch_t *f,
    const char *line)
{
    struct curl_slist  *l;

    l = curl_slist_append(f->headers, line);
    if (l == NULL) {
        return NGX_ERROR;
    }

    f->headers = l;

    return NGX_OK;
}


void
ngx_http_payments_fetch_cancel(ngx_http_payments_fetch_t *f)
{
    ngx_http_payments_curl_t  *cu = f->trust;

    if (f->easy) {
        if (f->running && cu && cu->multi) {
            curl_multi_remove_handle(cu->multi, f->easy);
        }

        curl_easy_cleanup(f->easy);
        f->easy = NULL;
    }

    if (f->headers) {
        curl_slist_free_all(f->headers);
        f->headers = NULL;
    }

    f->running = 0;
}


static void
ngx_http_payments_fetch_cleanup(void *data)
{
    ngx_http_payments_fetch_cancel(data);
}


static size_t
ngx_http_payments_curl_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    size_t                      n, cap;
    u_char                     *p;
    ngx_http_payments_fetch_t  *f = userdata;

    n = size * nmemb;

    if (f->len + n > NGX_HTTP_PAYMENTS_FETCH_MAX) {
        return 0;   /* CURLE_WRITE_ERROR: an answer this large is wrong */
    }

    if (f->len + n > f->cap) {
        cap = ngx_max(f->cap * 2, f->len + n);

        /* the caller's pool (the request's, the sweeper's round) */
        p = ngx_palloc(f->pool, cap);
        if (p == NULL) {
            return 0;
        }

        ngx_memcpy(p, f->body, f->len);
        f->body = p;
        f->cap = cap;
    }

    ngx_memcpy(f->body + f->len, ptr, n);
    f->len += n;

    return n;
}


static int
ngx_http_payments_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_connection_t          *c = socketp;
    ngx_http_payments_curl_t  *cu = userp;

    if (what == CURL_POLL_REMOVE) {
        if (c == NULL) {
            return 0;
        }

        /* the socket may live on in curl's connection cache: really
         * remove it from epoll before the ngx_connection_t is reused */

        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        curl_multi_assign(cu->multi, s, NULL);
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, cu->log);
        if (c == NULL) {
            return -1;
        }

        c->data = cu;
        c->read->handler = ngx_http_payments_curl_event_handler;
        c->write->handler = ngx_http_payments_curl_event_handler;
        c->read->log = cu->log;
        c->write->log = cu->log;

        curl_multi_assign(cu->multi, s, c);
    }

    if ((what & CURL_POLL_IN) && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return -1;
        }

    } else if (!(what & CURL_POLL_IN) && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return -1;
        }
    }

    if ((what & CURL_POLL_OUT) && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return -1;
        }

    } else if (!(what & CURL_POLL_OUT) && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return -1;
        }
    }

    return 0;
}


static int
ngx_http_payments_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_payments_curl_t  *cu = userp;

    if (timeout_ms < 0) {
        if (cu->timer.timer_set) {
            ngx_del_timer(&cu->timer);
        }

        return 0;
    }

    /*
     * Never call into curl from its own callback: wake up from a timer.
     * Deleted first: nginx keeps an armed timer whose new expiry is within
     * NGX_TIMER_LAZY_DELAY (300 ms) of the old one, so re-arming alone
     * would hold curl's "now" (a transfer just added, a socket to act on)
     * until the timer already set for another transfer fires, up to 300 ms
     * later.
     */
    if (cu->timer.timer_set) {
        ngx_del_timer(&cu->timer);
    }

    ngx_add_timer(&cu->timer, (ngx_msec_t) timeout_ms);

    return 0;
}


static void
ngx_http_payments_curl_timer_handler(ngx_event_t *ev)
{
    int                        running;
    ngx_http_payments_curl_t  *cu = ev->data;

    curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ngx_http_payments_curl_done(cu);
}


static void
ngx_http_payments_curl_event_handler(ngx_event_t *ev)
{
    int                        running;
    ngx_connection_t          *c = ev->data;
    ngx_http_payments_curl_t  *cu = c->data;

    /* c may be freed inside curl_multi_socket_action (CURL_POLL_REMOVE) */
    curl_multi_socket_action(cu->multi, c->fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);
    ngx_http_payments_curl_done(cu);
}


static void
ngx_http_payments_curl_done(ngx_http_payments_curl_t *cu)
{
    int                         left;
    long                        sent;
    CURL                       *easy;
    CURLMsg                    *msg;
    ngx_http_payments_fetch_t  *f;

    while ((msg = curl_multi_info_read(cu->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        f = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &f);

        if (f == NULL) {
            curl_multi_remove_handle(cu->multi, easy);
            curl_easy_cleanup(easy);
            continue;
        }

        f->result = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &f->status);

        /* the bytes of the request sent, over every connection this
         * transfer tried; unknown counts as sent */
        if (curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent)
            != CURLE_OK)
        {
            sent = 1;
        }

        f->sent = (sent > 0);
        f->elapsed = ngx_current_msec - f->elapsed;

        if (f->result != CURLE_OK) {
            /* a partial answer is no answer */
            f->status = 0;
        }

        f->retry_after = -1;

        /* a 429 or any 5xx: PSPs send it with a 500 as with a 503 */
        if (f->status == 429 || f->status >= 500) {
            struct curl_header  *h;

            if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h)
                == CURLHE_OK)
            {
                f->retry_after = pay_retry_after_ms(h->value,
                                                    ngx_strlen(h->value),
                                                    (int64_t) ngx_time()
                                                    * 1000);
            }
        }

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, f->log, 0,
                       "payments: fetch done: %s, status %l, %uz bytes, "
                       "%M ms, Retry-After %L ms",
                       f->result == CURLE_OK ? "answered"
                                             : curl_easy_strerror(f->result),
                       f->status, f->len, f->elapsed, f->retry_after);

        /* what curl's TLS left in this thread's OpenSSL error queue is not
         * nginx's next handshake's: nginx would log it as "stale" */
        ERR_clear_error();

        ngx_http_payments_fetch_cancel(f);

        f->handler(f);
    }
}
