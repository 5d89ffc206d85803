/*
 * End-to-end test harness: a real nginx with the module, a real PostgreSQL
 * and the mock PSP, started by ci/services.sh (ci/e2e.sh runs the suite).
 * The services are found through the PAY_TEST_* environment variables
 * (doc/CONTRACTS.md section 4, and ci/services.sh for the extra ones).
 *
 * Criterion runs each test in its own process, two at a time: tests never
 * reset shared state (the mock's fault table); they use ids unique to the
 * test (uid()) and a fresh merchant (merchant_new()), so the mock's fault
 * rules, which match a substring of the PSP Idempotency-Key (the nonce
 * "<merchant_id>:<checkout_id>"), only ever match their own test.
 *
 * Every helper that fails aborts the test with a Criterion assertion; what
 * they return is owned by the caller (malloc'd), unless said otherwise.
 * Tests leak freely: each runs in a process of its own.
 */
#ifndef E2E_HARNESS_H
#define E2E_HARNESS_H

#include <payments/seal.h>
#include <stddef.h>
#include <stdint.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <libpq-fe.h>

/* Seconds a single test may take before Criterion kills it. */
#define E2E_TIMEOUT      60.0

/* The origin every test merchant registers. */
#define SHOP_ORIGIN      "https://shop.example"

#define PATH_PAYMENTS    "/v1/payments"


/* -- environment and strings ---------------------------------------------- */

/* The variable's value; fails the test when it is unset or empty. */
const char *env(const char *name);

/* printf into a fresh string. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether haystack (len bytes, not NUL-terminated) contains needle. */
int mem_contains(const char *haystack, size_t len, const char *needle);

/*
 * A fresh id: prefix "_" pid "_" counter "_" clock, the numbers in fixed
 * width so that no id is a substring of another (mock fault rules match by
 * substring).  At most 32 characters for a prefix of at most 6.
 */
char *uid(const char *prefix);

void msleep(long ms);


/* -- HTTP ------------------------------------------------------------------ */

typedef struct {
    const char         *method;     /* "GET", "POST", ... */
    const char         *url;        /* absolute */
    const char *const  *headers;    /* "Name: value", NULL-terminated, or NULL;
                                       "Name:" removes a header curl adds */
    const char         *body;       /* NULL: no body */
    size_t              len;        /* (size_t) -1: strlen(body) */
} req_t;

typedef struct {
    long     status;                /* 0: no answer (see error) */
    char    *body;                  /* NUL-terminated; len bytes before it */
    size_t   len;
    size_t   nhdr;                  /* the final response's header fields */
    char   **names;
    char   **values;
    json_t  *json;                  /* resp_json()'s cache */
    char     error[256];            /* curl's error, if status is 0 */
    double   seconds;               /* total time */
} resp_t;

/* One exchange; never follows redirects.  TLS is verified against
 * PAY_TEST_CA. */
resp_t  *http(const req_t *rq);

/* The same, from the local address local (e.g. "127.0.0.2": 127.0.0.0/8 is
 * all loopback, so tests can be several senders). */
resp_t  *http_from(const req_t *rq, const char *local);

/* n copies of rq sent at the same time (libcurl multi, one connection each);
 * returns n answers. */
resp_t **http_parallel(const req_t *rq, size_t n);

/* n different requests, at most at_once of them in flight (libcurl multi,
 * keep-alive connections reused); returns their n answers, in order. */
resp_t **http_many(const req_t *rqs, size_t n, size_t at_once);

/* The first header field of that name (case-insensitive), or NULL. */
const char *resp_header(const resp_t *r, const char *name);

/* The body as JSON; fails the test when it is not JSON.  Owned by r. */
json_t  *resp_json(resp_t *r);

void     resp_free(resp_t *r);

/* PAY_TEST_GW / PAY_TEST_GW_PLAIN / PAY_TEST_MOCK followed by path. */
char    *gw_url(const char *path);
char    *gw_plain_url(const char *path);
char    *mock_url(const char *path);

/* GET an absolute URL, or a path on the gateway, without credentials. */
resp_t  *http_get(const char *url);
resp_t  *gw_get(const char *path);


/* -- merchants and the merchant API ----------------------------------------- */

typedef struct {
    char  key[256];                 /* mk_test_<key id>_<secret> */
    char  key_id[32];
    char  id[128];                  /* merchant_id */
} merchant_t;

/* A new merchant with its own API key and the return origin SHOP_ORIGIN
 * (bin/payments-merchant). */
void     merchant_new(merchant_t *m);

/* bin/payments-merchant --db PAY_TEST_PG a1 a2 a3; its exit status, its
 * stdout and stderr in *out. */
int      merchant_tool(const char *a1, const char *a2, const char *a3,
    char **out);

/* The key an output of bin/payments-merchant printed, into m->key and
 * m->key_id (m->id untouched).  Returns 0 or -1. */
/* The same with any arguments (NULL-terminated). */
int      merchant_toolv(const char *const *args, char **out);
int      merchant_key_from(const char *out, merchant_t *m);

/* merchant_new with mode "test" or "live" (keys mk_<mode>_…). */
void     merchant_new_mode(merchant_t *m, const char *mode);

/* The demo merchant ci/services.sh created (PAY_TEST_MERCHANT_KEY, origin
 * SHOP_ORIGIN): for tests that store nothing, such as refused requests. */
void     merchant_demo(merchant_t *m);

/*
 * The body of a valid registration: checkout_id, buyer_info.email,
 * norders orders "<checkout_id>_p<i>" (seller_<i>, "10.00" then "5.00"
 * USD), success_url and cancel_url on SHOP_ORIGIN, psp PAY_TEST_PSP.
 * Tests change it with jansson and dump() it.
 */
json_t  *checkout_new(const char *checkout_id, size_t norders);

/* Compact JSON, member order kept. */
char    *dump(const json_t *j);

/* The body of checkout_new(checkout_id, 2), dumped. */
char    *body_for(const char *checkout_id);

/*
 * POST /v1/payments with Content-Type: application/json.  m NULL: no
 * Authorization; idem_key NULL: no Idempotency-Key.
 */
resp_t  *api_post(const merchant_t *m, const char *idem_key,
    const char *body);

/* api_post of the dumped body under a fresh Idempotency-Key. */
resp_t  *api_post_json(const merchant_t *m, const json_t *body);

/* payment_orders[i] of a checkout_new() body (borrowed). */
json_t  *order_of(json_t *co, size_t i);

/* POST /v1/payments with exactly these headers (NULL-terminated). */
resp_t  *api_post_raw(const char *const *headers, const char *body,
    size_t len);

/* GET path with the merchant's key. */
resp_t  *api_get(const merchant_t *m, const char *path);

/* api_post that must answer 201 (status EXECUTING). */
resp_t  *register_ok(const merchant_t *m, const char *idem_key,
    const char *body);

/*
 * Records a secret a test used (an API key, a pay token, a PSP token) in
 * $PAY_TEST_RUN/secrets-used; after the suite ci/log-scan.sh searches
 * every gateway log for each of them.  Values under 8 bytes are skipped.
 */
void     secret_used(const char *s);

/* "<merchant_id>:<checkout_id>": the PSP Idempotency-Key. */
char    *nonce(const merchant_t *m, const char *checkout_id);


/* -- assertions --------------------------------------------------------------- */

/* X-Request-Id present and non-empty. */
void     expect_request_id(const resp_t *r);

/* status, application/problem+json, its "code" and "status" members, an
 * X-Request-Id. */
void     expect_problem(resp_t *r, long status, const char *code);

/* 403 error page of a browser endpoint: no Location, an X-Request-Id. */
void     expect_forbidden_page(const resp_t *r);


/* -- PostgreSQL ------------------------------------------------------------- */

/* The superuser connection (PAY_TEST_PG), opened on first use. */
PGconn  *db(void);

/* The first column of the first row as text; NULL when there is no row or
 * the value is NULL.  Fails the test on an SQL error. */
char    *db_scalar(const char *sql, int nparams, const char *const *params);

/* Runs a statement; fails the test on an SQL error. */
void     db_exec(const char *sql, int nparams, const char *const *params);

/* Stops / starts the test cluster (pg_ctl as its owner; start is a no-op
 * when it runs).  db() reconnects after a start. */
void     pg_stop(void);
void     pg_start(void);
int      pg_running(void);

/* Polls GET /readyz until it answers want (200 or 503); returns 1 if it
 * did within seconds. */
int      gw_wait_ready(long want, int seconds);


/* -- more gateways ---------------------------------------------------------- */

/*
 * A gateway of the test's own beside the suite's: nginx with the module the
 * suite's nginx loaded, one worker unless http_conf's caller says more, in
 * its own directory RUN/<name>-<pid>, logging to RUN/logs/<name>-error.log
 * (which ci/log-scan.sh searches).  http_conf goes into http {} as is: the
 * payments_database, payments_psp, payments_sweeper... lines; the server
 * (TLS on a free loopback port, "location / { payments; }"), the public
 * origin, the pay-token key and the html are added.  gw_psp_conf() gives the
 * suite's mock PSP lines under other names.
 */
typedef struct {
    pid_t   pid;
    char   *origin;         /* https://127.0.0.1:port */
    char   *error_log;
    char   *dir;            /* RUN/<name>-<pid>: nginx.conf, nginx.pid */
    int     workers;
} gateway_t;

void     gateway_start(gateway_t *gw, const char *name, int workers,
    const char *http_conf);
/* The same, nginx started with env_words ("NAME=value ...", for the shell)
 * in its environment: the master's, which its workers inherit as it is when
 * they fork (an LD_PRELOAD library stays loaded in them). */
void     gateway_start_env(gateway_t *gw, const char *name, int workers,
    const char *http_conf, const char *env_words);
/* The gateway's nginx.conf with the text from replaced by to (from must
 * be in it), then SIGHUP: returns once the new workers have started and
 * answer and every old worker has stopped accepting (a reload nginx
 * refuses, an [emerg] in its log, fails the test).  The old workers may
 * still be finishing what they had in flight. */
void     gateway_reload(const gateway_t *gw, const char *from, const char *to);
/* SIGTERM, then waits up to 10 s; a no-op when not started */
void     gateway_stop(gateway_t *gw);
/* SIGKILL of the master and its workers: a gateway that dies */
void     gateway_kill(gateway_t *gw);
/* SIGKILL of its workers only (the master starts new ones): how many */
int      gateway_kill_workers(const gateway_t *gw);
resp_t  *gateway_send(const gateway_t *gw, const char *method,
    const char *path, const merchant_t *m, const char *idem_key,
    const char *body);
/* Polls the gateway's /readyz until 200, and /metrics until each of its
 * workers has a database connection up (/readyz is one worker's answer; a
 * request another worker takes while its pool still connects is a 503);
 * fails the test after seconds. */
void     gateway_wait_ready(const gateway_t *gw, int seconds);
/* GET path on the gateway, no credentials */
resp_t  *gateway_get(const gateway_t *gw, const char *path);
/* the value of an unlabelled metric in the gateway's /metrics, or -1 */
long     gateway_metric(const gateway_t *gw, const char *name);

/* payments_psp lines for the suite's mock: dialect stripe, adyen or
 * generic, under the name given. */
char    *gw_psp_conf(const char *name, const char *dialect);

/* The suite's PostgreSQL port, and the gateway role's conninfo there. */
long     pg_port(void);
char    *pg_gateway_conninfo(void);

/* A free loopback port (ci/services.sh port). */
long     free_port(void);


/* -- the mock PSP ------------------------------------------------------------- */

/* POST /_control/faults with this JSON object; returns the rule's id. */
long     mock_fault(const char *json);

/* GET /_control/registrations?key=K: sessions created under that PSP
 * Idempotency-Key, and requests seen with it. */
void     mock_registrations(const char *key, long *sessions, long *requests);

/* POST /_control/reset.  Never from a test that may run beside another. */
void     mock_reset(void);


/* -- files ------------------------------------------------------------------- */

/* PAY_TEST_RUN "/" rel */
char    *run_file(const char *rel);

/* A file the build made: $BUILD (default "build", under PAY_TEST_ROOT unless
 * absolute) "/" rel, e.g. "payments-secrets". */
char    *build_file(const char *rel);

/* The whole file, NUL-terminated, or NULL if it cannot be read. */
char    *file_read(const char *path, size_t *len);

/* 1 if the file contains needle (0 if absent or unreadable). */
int      file_contains(const char *path, const char *needle);


/* -- links and gateway tokens ---------------------------------------------- */

/* Percent-encodes s (RFC 3986 unreserved characters kept). */
char    *url_escape(const char *s);

/* The value of a query parameter (not decoded), or NULL. */
char    *url_param(const char *url, const char *name);

/* The path and query of an absolute URL ("https://a.b:1/x?y" -> "/x?y"). */
const char *url_path(const char *url);

/* pay_url (on PAY_TEST_PUBLIC_ORIGIN) as a URL on the test gateway. */
char    *gw_url_for(const char *public_url);

char    *b64url_encode(const unsigned char *p, size_t len);
unsigned char *b64url_decode(const char *s, size_t len, size_t *out);

/* The claims of a compact JWT (not verified). */
json_t  *jwt_claims(const char *token);

/* The JWT with the same header and these claims, signed HS256 with key. */
char    *jwt_resign(const char *token, const json_t *claims,
    const unsigned char *key, size_t keylen);

/* 1 if key reproduces the token's HS256 signature over its own bytes. */
int      jwt_signature_matches(const char *token, const unsigned char *key,
    size_t keylen);

/* The gateway's pay-token key (PAY_TEST_PAYTOKEN_KEY), as nginx reads it. */
unsigned char *paytoken_key(size_t *len);


/* -- secrets at rest (payments_encryption_key, doc/NOTIFICATIONS.md) ------- */

/* The gateway's keyring (PAY_TEST_ENCRYPTION_KEY: two keys), parsed by the
 * core as nginx parses it; keys[0] seals. */
const pay_keyring_t *test_keyring(void);

/* A stored checkouts.psp_token of (merchant, checkout) opened as the gateway
 * opens it: a "v1." value unsealed (associated data "<merchant>:<checkout>"),
 * a legacy plaintext one as it is.  NULL for NULL, or when it does not open. */
char    *psp_token_open(const char *merchant, const char *checkout,
    const char *stored);

/* The PSP's token of a checkout, read from checkouts.psp_token and opened
 * (fails the test when a sealed value does not open); NULL when none. */
char    *db_psp_token(const char *merchant, const char *checkout);

/* value sealed under key `key` of the file (0 or 1) with associated data ad
 * (malloc'd) */
char    *test_seal(size_t key, const char *ad, const char *value);

/* the blind index psp_tokens holds for token of psp, under key `key` */
char    *test_blind_index(size_t key, const char *psp, const char *token);


/* -- idempotency ------------------------------------------------------------ */

/* SHA-256 hex of method "\n" path "\n" canonical JSON of body (API.md). */
void     fingerprint(const char *method, const char *path, const char *body,
    char hex[65]);

/* "Stripe-Signature: t=T,v1=<hex>": body signed at t under secret (NULL:
 * the run's webhook secret), as Stripe signs its events. */
char    *stripe_signature(const char *secret, long t, const char *body);


/* -- notifications (doc/NOTIFICATIONS.md) ------------------------------------
 *
 * The merchants' endpoint is ci/receiver.sh's receiver (tests/notify_receiver):
 * HTTPS on loopback, every delivery checked with the standardwebhooks
 * package.  A test takes a path of its own, /hooks/<name> (name from uid()),
 * so tests running beside each other never see each other's deliveries.
 * A delivery's record is a JSON object: path, webhook_id, type, sequence,
 * checkout_id, object_id, merchant_id, data, verified, verified_by (indices
 * into the path's secrets that verified it), signatures, attempt (the
 * how-manieth arrival of that webhook-id), arrived_ms, answer ("204", "500",
 * "hang", "drop", "302", "400"), gave_up_ms, error.
 */

typedef struct {
    char   id[64];                  /* ep_... */
    char   secret[128];             /* whsec_..., the current one */
    char  *name;                    /* the receiver's /hooks/<name> */
    char  *path;                    /* "/hooks/<name>" */
    char  *url;                     /* the URL registered */
} endpoint_t;

/* PAY_TEST_RECEIVER "/hooks/" name; the same on another host name
 * ("localhost", "[::1]") and the receiver's port. */
char    *receiver_url(const char *name);
char    *receiver_url_on(const char *host, const char *name);

/* How /hooks/<name> answers a verified delivery: mode "ok", "status N",
 * "hang", "drop", "redirect", "slow N"; script (NULL-terminated, or NULL):
 * modes used first, one per verified delivery. */
void     receiver_mode(const char *name, const char *mode,
    const char *const *script);

/* The secrets /hooks/<name> verifies with (NULL-terminated): any of them. */
void     receiver_secrets(const char *name, const char *const *secrets);

/* Every delivery to /hooks/<name> so far (a JSON array, the caller's). */
json_t  *receiver_deliveries(const char *name);

/* The receiver's counters (a JSON object, the caller's): connections (TCP,
 * to its HTTPS port), tls_handshakes, tls_errors, requests, verified,
 * unverified, delivered (2xx answers), delivered_ids, hung, ... */
json_t  *receiver_stats(void);

/* Polls until /hooks/<name> has seen at least n deliveries answered answer
 * ("204"; NULL: any answer, unverified ones included); returns them all.
 * Fails the test after seconds. */
json_t  *receiver_wait(const char *name, const char *answer, size_t n,
    int seconds);

/* How many of ds have that answer and type (NULL: any). */
size_t   deliveries_count(const json_t *ds, const char *answer,
    const char *type);

/* How many distinct webhook-ids among ds answered answer (NULL: any). */
size_t   deliveries_distinct(const json_t *ds, const char *answer);

/* bin/payments-merchant add-endpoint --id m->id --url url, then the extra
 * arguments (NULL-terminated, or NULL); its exit status, its output in *out. */
int      endpoint_add_raw(const merchant_t *m, const char *url,
    const char *const *extra, char **out);

/* An endpoint of m on the receiver's /hooks/<fresh name> (--allow-loopback;
 * events NULL: every type): its id and secret from the tool's output; the
 * receiver is given the secret. */
void     endpoint_add(const merchant_t *m, const char *events,
    endpoint_t *ep);

/* The same with the URL given (on the receiver, say receiver_url_on()),
 * whose path is /hooks/<name>. */
void     endpoint_add_at(const merchant_t *m, const char *url,
    const char *name, const char *events, endpoint_t *ep);

/* payments-merchant rotate-secret --endpoint ep->id [--grace grace]: the new
 * secret into ep->secret; the receiver verifies with the old and the new
 * (indices 0 and 1).  Returns the old one. */
char    *endpoint_rotate(endpoint_t *ep, const char *grace);

/* payments-merchant <command> --endpoint ep->id (disable-endpoint,
 * enable-endpoint); fails the test unless it exits 0. */
void     endpoint_command(const endpoint_t *ep, const char *command);

/* The http {} lines a gateway_start() gateway needs to deliver
 * notifications: payments_encryption_key (the suite's key file) and
 * "payments_notify on <params> ca=<the receiver's CA>"; params NULL: the
 * suite's own (NOTIFY_SUITE_PARAMS). */
#define NOTIFY_SUITE_PARAMS  "interval=200ms batch=32 timeout=2s " \
    "connect_timeout=1s lease=5s disable_after=8s backoff_scale=1000 " \
    "allow_loopback=on"
char    *notify_conf(const char *params);

/* GET /v1/notifications?query on origin (NULL: the suite's gateway): its
 * "items" (or the top-level array), the caller's. */
json_t  *notifications_list(const char *origin, const merchant_t *m,
    const char *query);

/* The merchant's notification of that webhook-id in the list, or NULL. */
json_t  *notification_find(const char *origin, const merchant_t *m,
    const char *id);

/* Polls the list until the notification of that id has status want
 * ("DELIVERED", "FAILED", "PENDING"); returns it.  Fails after seconds. */
json_t  *notification_wait(const char *origin, const merchant_t *m,
    const char *id, const char *want, int seconds);

/* POST /v1/notifications/{id}/replay on origin (NULL: the suite's). */
resp_t  *notification_replay(const char *origin, const merchant_t *m,
    const char *id);

/* The value of one series in GET origin/metrics (NULL: the suite's
 * gateway): name with its labels as written, e.g.
 * payments_notify_deliveries_total{outcome="delivered"}; -1 if absent. */
double   metric_value(const char *origin, const char *series);


/* -- the suite's own nginx (solo_* suites only) ----------------------------- */

/* SIGQUIT and wait (its workers finish what they hold; SIGKILL after
 * 15 s). */
void     suite_gateway_stop(void);
/* nginx -p RUN/ -c RUN/nginx.conf, as ci/services.sh started it, when it
 * does not run; waits for /readyz 200. */
void     suite_gateway_start(void);

#endif
