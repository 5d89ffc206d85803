/*
 * The e2e harness: gateways of a test's own (gateway_start), their
 * metrics, and the suite's own nginx (solo_* suites).
 */
#ifndef E2E_HARNESS_GATEWAYS_H
#define E2E_HARNESS_GATEWAYS_H

#include <sys/types.h>

#include "harness_http.h"
#include "harness_merchants.h"


/* -- more gateways ---------------------------------------------------------- */

/*
 * A gateway of the test's own beside the suite's: nginx with the module the
 * suite's nginx loaded, one worker unless http_conf's caller says more, in
 * its own directory RUN/<name>-<pid>, logging to its own
 * RUN/logs/<name>-<pid>-error.log (which ci/log-scan.sh searches; the pid
 * is the test's).  http_conf goes into http {} as is: the
 * payments_database, payments_psp, payments_sweeper... lines; the server
 * (TLS on a free loopback port, "location / { payments; }"), the public
 * origin, the pay-token key and the html are added.  gw_psp_conf() gives the
 * suite's mock PSP lines under other names.
 */
/* What doc/OPERATIONS.md asks of a server that runs "payments", for a
 * test's own server {} (gateway_start's has it): TLS 1.2 and 1.3 with AEAD
 * suites, and /metrics for loopback only; without them nginx -t warns. */
#define GATEWAY_SERVER_CONF                                                   \
    "    ssl_protocols TLSv1.2 TLSv1.3;\n"                                   \
    "    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:"                          \
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"              \
    "ECDHE-RSA-CHACHA20-POLY1305;\n"                                         \
    "    location = /metrics { allow 127.0.0.1; deny all; payments; }\n"

typedef struct {
    pid_t   pid;
    char   *origin;         /* https://127.0.0.1:port */
    char   *error_log;
    char   *dir;            /* RUN/<name>-<pid>: nginx.conf, nginx.pid */
    int     workers;
    int     sweeps;         /* started with "payments_sweeper on" */
} gateway_t;

void     gateway_start(gateway_t *gw, const char *name, int workers,
    const char *http_conf);
/* The same, nginx started with env_words ("NAME=value ...", for the shell)
 * in its environment: the master's, which its workers inherit as it is when
 * they fork (an LD_PRELOAD library stays loaded in them), each name kept
 * in theirs by an "env NAME;" line. */
void     gateway_start_env(gateway_t *gw, const char *name, int workers,
    const char *http_conf, const char *env_words);
/* The gateway's nginx.conf with the text from replaced by to (from must
 * be in it), then SIGHUP: returns once the new workers have started and
 * answer and every old worker has stopped accepting (a reload nginx
 * refuses, an [emerg] in its log, fails the test).  The old workers may
 * still be finishing what they had in flight. */
void     gateway_reload(const gateway_t *gw, const char *from, const char *to);
/* whether pid runs (kill(pid, 0) succeeds and it is not a zombie) */
int      pid_running(pid_t pid);
/* SIGTERM, then waits up to 10 s; a no-op when not started.  A gateway
 * started with "payments_sweeper on" that has exited gives back the
 * sweeper lease it held (the module keeps it until it runs out, 3 x
 * interval + 2 s, and the next test's sweeper would wait for that); a test
 * of the lease running out kills its gateway (gateway_kill) instead. */
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
 * request another worker takes while its pool still connects waits for
 * it, up to the database's timeout=);
 * fails the test after seconds. */
void     gateway_wait_ready(const gateway_t *gw, int seconds);
/* the gateway's one worker (it may have just forked): its pid */
long     gateway_worker(const gateway_t *gw);
/* the bytes the gateway's one worker holds, allocated and not freed: the
 * least of three readings of keep_modules.so's answer to SIGRTMIN+1
 * (NGX_ASAN_ALLOCATED, the sanitized run with its leak check on; what a
 * round or a delivery under way holds is given back when it ends) */
long long gateway_worker_allocated(const gateway_t *gw);
/* a gateway of one worker on the suite's database and PSP (sweeper off),
 * with extra http {} lines (or NULL), ready: the growth tests' (skipped
 * without the sanitized run's keep_modules.so) */
void     gateway_start_growth(gateway_t *gw, const char *name,
    const char *extra);
/* strace -f of the gateway's worker, the system calls given
 * ("trace=openat,connect"), written to the file trace: the tracer's pid,
 * once it is attached (fails the test after 5 s) */
pid_t    worker_trace_start(long worker, const char *calls,
    const char *trace);
/* stops the tracer: what it wrote */
char    *worker_trace_stop(pid_t tracer, const char *trace);
/* GET path on the gateway, no credentials */
resp_t  *gateway_get(const gateway_t *gw, const char *path);
/* the value of an unlabelled metric in the gateway's /metrics, or -1 */
long     gateway_metric(const gateway_t *gw, const char *name);
/* whether the gateway's error log has a line at alert naming both a and b */
int      gateway_alerted(const gateway_t *gw, const char *a, const char *b);

/* payments_psp lines for the suite's mock: dialect stripe, adyen or
 * generic, under the name given. */
char    *gw_psp_conf(const char *name, const char *dialect);
/* the same line with params added ("retries=0 breaker=0", "closed") */
char    *gw_psp_conf_with(const char *name, const char *dialect,
                          const char *params);

/* The suite's PostgreSQL port, and the gateway role's conninfo there. */
long     pg_port(void);
char    *pg_gateway_conninfo(void);

/* The suite's database as a gateway of a test's own names it, as
 * ci/services.sh renders the suite's gateway's: a payments_database line
 * (pg_gateway_conninfo()) on an unsharded stack, else a payments_shard
 * line per shard, the home (the first) marked home. */
char    *pg_gateway_databases(void);

/* A free loopback port (ci/services.sh port). */
long     free_port(void);


/* The value of one series in GET origin/metrics (NULL: the suite's
 * gateway): name with its labels as written, e.g.
 * payments_notify_deliveries_total{outcome="delivered"}; -1 if absent. */
double   metric_value(const char *origin, const char *series);
/* a shard the suite's gateway serves (PAY_TEST_GW_SHARDS; asserted), after
 * a test stopped, paused or made read-only it: until the gateway serves it
 * again (/readyz?shard=NAME 200 and the shard's breaker closed in every
 * worker, payments_db_breaker_state 0, eight times in a row: each worker's
 * pool reconnects, and its breaker closes, on its own), at most seconds */
void     shard_wait_served(const char *name, int seconds);


/* -- the suite's own nginx (solo_* suites only) ----------------------------- */

/* SIGQUIT and wait (its workers finish what they hold; SIGKILL after
 * 15 s). */
void     suite_gateway_stop(void);
/* nginx -p RUN/ -c RUN/nginx.conf, as ci/services.sh started it, when it
 * does not run; waits for /readyz 200. */
void     suite_gateway_start(void);


#endif
