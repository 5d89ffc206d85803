/*
 * End to end: a request nginx frees while its database query waits or runs.
 *
 * A request whose body nginx is discarding (a GET with a chunked body) is
 * terminated when the client sends a bad chunk, whatever the module still
 * holds: nginx frees it.  Its query must be forgotten by the database
 * driver then, or the driver answers into freed memory (a worker crash, or
 * worse, another request's memory written).  A gateway of the test's own
 * with one database connection: the first request's auth query runs and is
 * held by a lock on api_keys, the second one's /readyz query waits behind
 * it; both requests are broken off.  A solo suite: the lock would hold up
 * every other test's authentication.
 */

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>


static gateway_t  gone;


static void
stop_gone(void)
{
    gateway_stop(&gone);
}


TestSuite(solo_request_gone, .timeout = 60, .fini = stop_gone);


typedef struct {
    int       fd;
    SSL      *ssl;
    SSL_CTX  *ctx;
} raw_t;


/* A TLS connection to the gateway (loopback, its own certificate). */
static void
raw_open(raw_t *c, const gateway_t *gw)
{
    long                port;
    const char         *p;
    struct timeval      tv = { 5, 0 };
    struct sockaddr_in  sa;

    p = strrchr(gw->origin, ':');
    cr_assert_not_null(p);
    port = strtol(p + 1, NULL, 10);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(c->fd >= 0);
    cr_assert_eq(connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    (void) setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    c->ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(c->ctx);
    c->ssl = SSL_new(c->ctx);
    cr_assert_not_null(c->ssl);
    SSL_set_fd(c->ssl, c->fd);
    cr_assert_eq(SSL_connect(c->ssl), 1, "TLS handshake with %s", gw->origin);
}


static void
raw_write(raw_t *c, const char *s)
{
    cr_assert_eq(SSL_write(c->ssl, s, (int) strlen(s)), (int) strlen(s));
}


/* Reads until the gateway closes (or 5 s): what it answered, maybe "". */
static char *
raw_read_all(raw_t *c)
{
    int     n;
    char    buf[4096];
    size_t  len = 0;
    char   *out = calloc(1, 1);

    while ((n = SSL_read(c->ssl, buf, sizeof(buf))) > 0) {
        out = realloc(out, len + (size_t) n + 1);
        memcpy(out + len, buf, (size_t) n);
        len += (size_t) n;
        out[len] = '\0';
    }

    return out;
}


static void
raw_close(raw_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}


static int
log_has(const char *path, const char *what)
{
    char  *log = file_read(path, NULL);
    int    yes = log != NULL && strstr(log, what) != NULL;

    free(log);
    return yes;
}


/* The gateway of the test: one worker, one database connection. */
static void
start_gone(void)
{
    gateway_start(&gone, "gone", 1, str_printf(
        "payments_database \"%s\";\n"
        "payments_database_pool 1;\n"
        "payments_database_timeout 5s;\n"
        "payments_sweeper off;\n"
        "%s",
        pg_gateway_conninfo(), gw_psp_conf("gone_stripe", "stripe")));
    gateway_wait_ready(&gone, 10);
}


/* A request whose auth query will run held by the lock on api_keys (the
 * caller holds it), its body not sent yet. */
static void
open_held(raw_t *c, const merchant_t *m)
{
    raw_open(c, &gone);
    raw_write(c, str_printf(
        "GET /v1/checkouts/co_gone HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n",
        m->key));
}


/* A bad chunk: nginx terminates the request and frees it. */
static void
break_off(raw_t *c)
{
    raw_write(c, "zz\r\n");
    free(raw_read_all(c));
    raw_close(c);
}


static void
wait_log(const char *what, int seconds)
{
    int  i;

    for (i = 0; i < seconds * 10 && !log_has(gone.error_log, what); i++) {
        msleep(100);
    }
}


/* The gateway of the test up, a merchant it has never seen (its key is
 * looked up), api_keys locked by this test's open transaction, and that
 * merchant's request whose auth query runs held by the lock (running). */
static void
start_held(merchant_t *m, raw_t *running)
{
    start_gone();
    merchant_new(m);

    db_exec("BEGIN", 0, NULL);
    db_exec("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE", 0, NULL);

    open_held(running, m);

    /* until its query waits for the lock: the gateway's one connection
     * may still be busy a moment with the worker's first housekeeping
     * (its purge, 1 s after the start), and a request broken off then
     * only withdraws a query that never ran (a CI run failed so after a
     * fixed 300 ms). */
    (void) db_lock_waiter(NULL,
                          "the request's query never waited for the lock");
}


/* The gateway answers m's next request, and no worker crashed. */
static void
expect_serving(const merchant_t *m)
{
    resp_t  *r;

    r = gateway_send(&gone, "GET", "/v1/checkouts/co_gone", m, NULL, NULL);
    cr_assert_eq(r->status, 404, "%ld %s", r->status, r->body);

    cr_assert(!log_has(gone.error_log, "exited on signal"),
              "a worker crashed (see %s)", gone.error_log);
}


Test(solo_request_gone,
     a_request_broken_off_while_its_query_waits_or_runs_is_forgotten,
     .description = "a client that breaks off a discarded body has its "
                    "request freed by nginx: the query it ran is answered "
                    "to nobody, the one it waited with is withdrawn, and the "
                    "connection serves the next request")
{
    int          i;
    raw_t        running, waiting;
    resp_t      *r;
    merchant_t   m;

    /* 1. its auth query runs on the one connection, held by the lock */
    start_held(&m, &running);

    /* 2. its query waits for that connection */
    raw_open(&waiting, &gone);
    raw_write(&waiting, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    msleep(300);

    break_off(&waiting);
    break_off(&running);
    wait_log("the answer will be dropped", 3);

    cr_expect(log_has(gone.error_log, "waited for a connection: the query is "
                                      "withdrawn"),
              "the waiting query was not withdrawn (see %s)", gone.error_log);
    cr_expect(log_has(gone.error_log, "while its query ran: the answer will "
                                      "be dropped"),
              "the running query was not let go (see %s)", gone.error_log);

    /* the auth query ends; its answer goes to nobody */
    db_exec("ROLLBACK", 0, NULL);

    /* the one connection serves the next requests, in the same worker */
    for (i = 0; i < 5; i++) {
        r = gateway_get(&gone, "/readyz");
        cr_assert_eq(r->status, 200, "/readyz after the requests went: %ld %s",
                     r->status, r->body ? r->body : "");
    }

    expect_serving(&m);
}


Test(solo_request_gone,
     a_gone_requests_query_that_outlasts_the_timeout_closes_its_connection,
     .description = "the answer of a query whose request has gone is "
                    "waited for no longer than payments_database_timeout: "
                    "then the connection is closed and opened again")
{
    raw_t        running;
    merchant_t   m;

    start_held(&m, &running);
    break_off(&running);

    /* payments_database_timeout is 5 s */
    wait_log("query timed out (its request had gone)", 8);
    db_exec("ROLLBACK", 0, NULL);

    cr_assert(log_has(gone.error_log, "query timed out (its request had gone)"),
              "the connection still waits for the answer (see %s)",
              gone.error_log);

    /* connected again (after its back-off): the gateway answers */
    gateway_wait_ready(&gone, 10);
    expect_serving(&m);
}
