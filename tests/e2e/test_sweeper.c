/*
 * End to end: the stuck-checkout sweeper (issue 9, part 2).
 *
 * The suite's own gateway runs with "payments_sweeper off": its tests send
 * their webhooks when they choose.  These tests start gateways of their own
 * (gateway_start) on the suite's PostgreSQL and mock PSP, with the mock's
 * three APIs under PSP names of their own (sw_stripe, sw_adyen,
 * sw_generic), so they sweep only the checkouts registered through them,
 * and with a sweeper in a hurry: a round every 300 ms, checkouts asked
 * about from 1 s of age, again every second, alerted at 4 s.
 *
 * The mock is told never to send the webhook ("webhook_never"); the
 * shopper pays or the session expires at the mock; the sweeper must find
 * out and apply it exactly as a webhook would.
 *
 * A solo suite: the sweepers share the database's one lease.
 */

#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define SWEEPER_CONF                                                          \
    "payments_sweeper on interval=300ms after=1s retry=1s alert=4s "          \
    "grace=1s batch=50;\n"


static gateway_t  sweepers[2];


static void
stop_sweepers(void)
{
    gateway_stop(&sweepers[0]);
    gateway_stop(&sweepers[1]);
}


static char *
sweeper_conf(const char *extra)
{
    return str_printf("payments_database \"%s\";\n"
                      "payments_database_pool 2;\n"
                      "%s%s%s%s",
                      pg_gateway_conninfo(),
                      gw_psp_conf("sw_stripe", "stripe"),
                      gw_psp_conf("sw_adyen", "adyen"),
                      gw_psp_conf("sw_generic", "generic"),
                      extra);
}


static void
start_sweeper(gateway_t *gw, const char *name)
{
    gateway_start(gw, name, 2, sweeper_conf(SWEEPER_CONF));

    gateway_wait_ready(gw, 10);
}


/* Waits until gw holds the lease: an earlier test's gateway may have held
 * it until it ran out (3 rounds + 2 s). */

static void
wait_leader(gateway_t *gw)
{
    int  i;

    for (i = 0; i < 100; i++) {
        if (gateway_metric(gw, "payments_sweeper_leader") == 1) {
            return;
        }

        msleep(100);
    }

    cr_assert_fail("%s never took the sweeper lease", gw->origin);
}


/* Registers a one-order checkout with psp through gw; its PSP token. */

static char *
register_with(gateway_t *gw, merchant_t *m, const char *co_id,
    const char *psp, const char *fault)
{
    char     *token;
    json_t   *co, *j;
    resp_t   *r;

    if (fault) {
        mock_fault(str_printf("{\"match\":\"%s\",%s}",
                              nonce(m, co_id), fault));
    }

    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string(psp));

    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "registration: %ld %s", r->status, r->body);

    j = resp_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "EXECUTING", "%s", r->body);

    token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(token);
    secret_used(url_param(json_string_value(json_object_get(j, "pay_url")),
                          "t"));

    return token;
}


static char *
checkout_status(const merchant_t *m, const char *co_id)
{
    return db_scalar("SELECT status::text FROM checkouts "
                     "WHERE merchant_id = $1 AND checkout_id = $2",
                     2, (const char *[]) { m->id, co_id });
}


/* Waits up to seconds for the checkout to leave EXECUTING; its status. */

static char *
wait_decided(const merchant_t *m, const char *co_id, int seconds)
{
    int    i;
    char  *s;

    for (i = 0; i < seconds * 10; i++) {
        s = checkout_status(m, co_id);
        cr_assert_not_null(s);

        if (strcmp(s, "EXECUTING") != 0) {
            return s;
        }

        msleep(100);
    }

    return checkout_status(m, co_id);
}


/* Waits up to seconds for sql (two parameters) to find a row. */

static int
wait_row(const char *sql, const char **params, int seconds)
{
    int  i;

    for (i = 0; i < seconds * 10; i++) {
        if (db_scalar(sql, 2, params) != NULL) {
            return 1;
        }

        msleep(100);
    }

    return 0;
}


/* Waits up to seconds for the checkout to be SUCCESS; its status. */

static char *
wait_paid(const merchant_t *m, const char *co_id, int seconds)
{
    int    i;
    char  *s;

    for (i = 0; i < seconds * 10; i++) {
        s = checkout_status(m, co_id);
        cr_assert_not_null(s);

        if (strcmp(s, "SUCCESS") == 0) {
            return s;
        }

        msleep(100);
    }

    return checkout_status(m, co_id);
}


static void
mock_session(const char *token, const char *action)
{
    resp_t  *r;
    req_t    rq;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/%s",
                                 url_escape(token), action));
    rq.body = "";
    rq.len = 0;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "mock %s: %ld %s", action, r->status,
                 r->body);
    resp_free(r);
}


/* What the sweeper's application left: the same evidence as a webhook's,
 * with the sweeper as its source. */

static void
expect_swept(const merchant_t *m, const char *co_id, const char *psp,
    const char *status)
{
    const char  *p2[2] = { m->id, co_id };
    const char  *p3[3] = { m->id, co_id, psp };

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM order_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND to_status::text = $3 "
                               "AND source LIKE 'sweeper:' || $4 || ':%'",
                               4, (const char *[]) { m->id, co_id, status,
                                                     psp }),
                     "2", "both orders moved by the sweeper");

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND psp = $3 AND source = 'sweeper' "
                               "AND outcome = 'applied'", 3, p3),
                     "1");

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND action = 'sweeper:applied'", 2, p2),
                     "1");

    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1,
                               (const char *[]) { m->id }),
                     "true");

    if (strcmp(status, "SUCCESS") == 0) {
        /* booked like a webhook: two transactions, balanced */
        cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                                   "WHERE merchant_id = $1 "
                                   "AND checkout_id = $2 "
                                   "AND source LIKE 'sweeper:%'", 2, p2),
                         "2");
        cr_assert_str_eq(db_scalar("SELECT coalesce(sum(e.amount), 0) "
                                   "FROM ledger_entries e "
                                   "JOIN ledger_transactions t "
                                   "USING (merchant_id, txn_id) "
                                   "WHERE t.merchant_id = $1 "
                                   "AND t.checkout_id = $2", 2, p2),
                         "0");

    } else {
        cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                                   "WHERE merchant_id = $1 "
                                   "AND checkout_id = $2", 2, p2),
                         "0");
    }
}


TestSuite(solo_sweeper, .timeout = 90, .fini = stop_sweepers);


/*
 * The harness's own rule: a test process that ends without stopping its
 * gateways (a crash, a Criterion timeout: no .fini) leaves no sweeper
 * holding the lease for the tests after it.  A child process starts a
 * sweeper, waits until it leads, and exits as a crash would; the next
 * gateway a test starts stops that orphan and gives its lease back, so a
 * sweeper started now leads at once (the orphan, renewing its lease every
 * round, kept it for 20 minutes of a CI run, and 25 tests after it failed).
 */
Test(solo_sweeper, a_crashed_tests_sweeper_leaves_the_lease_to_the_next_test)
{
    int     st;
    long    orphan;
    char   *pid;
    pid_t   child;

    child = fork();
    cr_assert(child >= 0);

    if (child == 0) {
        start_sweeper(&sweepers[0], "sweeper-orphan");
        wait_leader(&sweepers[0]);
        _exit(0);
    }

    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "the child's sweeper never led (%d)", st);

    pid = file_read(run_file(str_printf("sweeper-orphan-%ld/nginx.pid",
                                        (long) child)), NULL);
    cr_assert_not_null(pid);
    orphan = strtol(pid, NULL, 10);
    cr_assert(pid_running((pid_t) orphan), "the orphan is not running");

    start_sweeper(&sweepers[1], "sweeper-next");
    cr_expect(!pid_running((pid_t) orphan), "the orphan still runs");

    /* at once: not after the orphan's lease would have run out */
    wait_leader(&sweepers[1]);
}


Test(solo_sweeper, a_paid_stripe_session_whose_webhook_never_came_is_booked)
{
    char        *co_id, *token;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-a");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_stripe",
                          "\"webhook_never\":true");
    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS");
    expect_swept(&m, co_id, "sw_stripe", "SUCCESS");

    /* the webhook arriving after all changes nothing */
    cr_assert_str_eq(checkout_status(&m, co_id), "SUCCESS");
}


Test(solo_sweeper,
     a_stripe_session_the_sweeper_finds_paid_is_booked_whatever_the_mode,
     .description = "a look-up that finds the session paid (the PSP "
                    "captured) books it SUCCESS on a checkout stored as "
                    "manual, as the webhook would, and alerts the "
                    "disagreement; it is never held as AUTHORIZED")
{
    char        *co_id, *token, *line, *log, *at, *bol, *eol;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-a");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_stripe",
                          "\"webhook_never\":true");

    /* the store says manual, the PSP's session captures */
    db_exec("UPDATE checkouts SET capture_method = 'manual' WHERE "
            "merchant_id = $1 AND checkout_id = $2", 2,
            (const char *[]) { m.id, co_id });

    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS",
                     "the captured money held as AUTHORIZED");

    /* booked by the sweeper as a webhook would: both orders, the
     * disagreement its outcome, two balanced ledger transactions */
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM order_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND to_status::text = 'SUCCESS' "
                               "AND source LIKE 'sweeper:sw_stripe:%'", 2,
                               (const char *[]) { m.id, co_id }), "2");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND source = 'sweeper' "
                               "AND outcome = 'captured_for_manual'", 2,
                               (const char *[]) { m.id, co_id }), "1");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, (const char *[]) { m.id, co_id }), "2");
    cr_assert_str_eq(db_scalar("SELECT coalesce(sum(e.amount), 0) "
                               "FROM ledger_entries e "
                               "JOIN ledger_transactions t "
                               "USING (merchant_id, txn_id) "
                               "WHERE t.merchant_id = $1 "
                               "AND t.checkout_id = $2", 2,
                               (const char *[]) { m.id, co_id }), "0");
    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1,
                               (const char *[]) { m.id }), "true");

    /* the disagreement alerted: a line of the sweeper's naming it */
    line = str_printf("[alert]");
    log = file_read(sweepers[0].error_log, NULL);
    cr_assert_not_null(log);
    at = strstr(log, str_printf("checkout \"%s\" of merchant \"%s\"",
                                co_id, m.id));
    cr_assert_not_null(at, "no line of the sweeper's names the checkout");
    eol = strchr(at, '\n');
    if (eol != NULL) {
        *eol = '\0';
    }
    for (bol = at; bol > log && bol[-1] != '\n'; bol--) { /* void */ }
    cr_expect(strstr(at, ": captured_for_manual") != NULL
              && strstr(bol, line) != NULL, "%s", bol);
}


Test(solo_sweeper, a_paid_generic_session_whose_webhook_never_came_is_booked)
{
    char        *co_id, *token;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-g");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_generic",
                          "\"webhook_never\":true");
    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS");
    expect_swept(&m, co_id, "sw_generic", "SUCCESS");
}


Test(solo_sweeper, a_session_expired_at_the_psp_fails_the_checkout)
{
    char        *co_id, *token;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-e");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_stripe",
                          "\"webhook_never\":true");
    mock_session(token, "expire");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "FAILED");
    expect_swept(&m, co_id, "sw_stripe", "FAILED");
}


Test(solo_sweeper, an_adyen_session_it_cannot_ask_about_fails_after_expiry)
{
    char        *co_id;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-y");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    /* the shopper never comes: no webhook, no session result */
    (void) register_with(&sweepers[0], &m, co_id, "sw_adyen", NULL);

    /* no sessionResult came back with a shopper: the sweeper waits for
     * the session's end, which is an hour away */
    msleep(2500);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING");
    cr_assert_str_eq(db_scalar("SELECT last_answer FROM checkout_sweeps "
                               "WHERE merchant_id = $1 "
                               "AND checkout_id = $2", 2,
                               (const char *[]) { m.id, co_id }),
                     "cannot ask: waiting for the session to expire");

    /* the session has ended (as if an hour had passed) */
    db_exec("UPDATE checkouts SET expires_at = now() - interval '2 s' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2,
            (const char *[]) { m.id, co_id });

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "FAILED");
    expect_swept(&m, co_id, "sw_adyen", "FAILED");
}


Test(solo_sweeper, an_open_session_stays_executing_and_is_alerted_once)
{
    int          i, found;
    char        *co_id, *line, *log;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-o");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    (void) register_with(&sweepers[0], &m, co_id, "sw_stripe",
                         "\"webhook_never\":true");

    /* asked about, open at the PSP: nothing moves */
    msleep(2500);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING");
    cr_assert_str_eq(db_scalar("SELECT last_answer FROM checkout_sweeps "
                               "WHERE merchant_id = $1 "
                               "AND checkout_id = $2", 2,
                               (const char *[]) { m.id, co_id }),
                     "open at the psp");

    /* past alert=: one log line, and the gauge */
    line = str_printf("checkout \"%s\" of merchant \"%s\" (psp \"sw_stripe\")"
                      " is EXECUTING for", co_id, m.id);
    found = 0;

    for (i = 0; i < 100 && !found; i++) {
        found = file_contains(sweepers[0].error_log, line);
        if (!found) {
            msleep(100);
        }
    }

    cr_assert(found, "no alert line for %s in %s", co_id,
              sweepers[0].error_log);
    cr_assert_geq(gateway_metric(&sweepers[0],
                                 "payments_checkouts_unresolved"), 1);
    cr_assert_eq(gateway_metric(&sweepers[0], "payments_sweeper_leader"), 1);

    /* alerted once, however many rounds pass */
    msleep(1500);
    log = file_read(sweepers[0].error_log, NULL);
    cr_assert_not_null(log);
    cr_assert_null(strstr(strstr(log, line) + 1, line),
                   "alerted twice for %s", co_id);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING");
}


/* How many times needle is in the file. */

static int
file_count(const char *path, const char *needle)
{
    int    n;
    char  *log, *p;

    log = file_read(path, NULL);
    if (log == NULL) {
        return 0;
    }

    n = 0;

    for (p = strstr(log, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }

    free(log);

    return n;
}


Test(solo_sweeper, a_session_the_psp_forgot_is_logged_at_error_once,
     .description = "a mock PSP reset by a test forgets the session: each "
                    "look-up answers 404, the checkout stays EXECUTING, "
                    "and the error is logged once, not every retry=")
{
    int          i;
    char        *co_id, *line;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-forgot");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    (void) register_with(&sweepers[0], &m, co_id, "sw_stripe",
                         "\"webhook_never\":true");

    /* the suite runs alone: nobody else's sessions are forgotten */
    mock_reset();

    line = str_printf("gave no usable answer about checkout \"%s\"", co_id);

    for (i = 0; i < 50 && file_count(sweepers[0].error_log, line) == 0; i++) {
        msleep(100);
    }

    cr_assert_eq(file_count(sweepers[0].error_log, line), 1,
                 "no error line for %s in %s", co_id, sweepers[0].error_log);

    /* retry=1s: three more look-ups, each answered 404 */
    msleep(3500);
    cr_assert_geq(atol(db_scalar("SELECT attempts FROM checkout_sweeps "
                                 "WHERE merchant_id = $1 "
                                 "AND checkout_id = $2", 2,
                                 (const char *[]) { m.id, co_id })), 3);
    cr_assert_eq(file_count(sweepers[0].error_log, line), 1,
                 "logged again at notice or above: %s",
                 sweepers[0].error_log);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING");
}


Test(solo_sweeper, two_gateways_sweep_one_at_a_time_and_the_other_takes_over)
{
    int          i;
    long         a, b;
    char        *co_id, *token;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-1");
    start_sweeper(&sweepers[1], "sweeper-2");

    /* a few rounds: exactly one of them holds the lease */
    msleep(1500);
    a = gateway_metric(&sweepers[0], "payments_sweeper_leader");
    b = gateway_metric(&sweepers[1], "payments_sweeper_leader");
    cr_assert_eq(a + b, 1, "leaders: %ld + %ld", a, b);

    /* the leader dies without a word; the other takes the lease over once
     * it has run out (3 rounds + 2 s) and sweeps */
    gateway_kill(a == 1 ? &sweepers[0] : &sweepers[1]);

    co_id = uid("co");
    token = register_with(a == 1 ? &sweepers[1] : &sweepers[0], &m, co_id,
                          "sw_stripe", "\"webhook_never\":true");
    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 20), "SUCCESS");
    expect_swept(&m, co_id, "sw_stripe", "SUCCESS");

    for (i = 0; i < 20; i++) {
        if (gateway_metric(a == 1 ? &sweepers[1] : &sweepers[0],
                           "payments_sweeper_leader") == 1)
        {
            break;
        }

        msleep(100);
    }

    cr_assert_lt(i, 20, "the survivor does not hold the lease");
}


/* The way back Adyen gives the shopper: the returnUrl the gateway sent,
 * with sessionId and sessionResult added. */

static char *
adyen_return_path(const merchant_t *m, const char *co_id,
    const char *session_result)
{
    char        *req;
    json_t      *j, *body;
    const char  *ret;

    req = db_scalar("SELECT psp_request FROM checkouts "
                    "WHERE merchant_id = $1 AND checkout_id = $2",
                    2, (const char *[]) { m->id, co_id });
    cr_assert_not_null(req);

    j = json_loads(req, 0, NULL);
    cr_assert_not_null(j, "%s", req);
    body = json_loads(json_string_value(json_object_get(j, "body")), 0, NULL);
    cr_assert_not_null(body, "%s", req);

    ret = json_string_value(json_object_get(body, "returnUrl"));
    cr_assert_not_null(ret, "%s", req);

    return str_printf("%s&sessionId=CS123&sessionResult=%s", url_path(ret),
                      session_result);
}


Test(solo_sweeper, a_returning_shoppers_adyen_session_result_is_kept)
{
    char        *co_id;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-r");

    co_id = uid("co");
    (void) register_with(&sweepers[0], &m, co_id, "sw_adyen", NULL);
    p[0] = m.id;
    p[1] = co_id;

    /* a result that is not printable ASCII is not kept; the page shows */
    r = gateway_get(&sweepers[0], adyen_return_path(&m, co_id, "a%0Ab"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_null(db_scalar("SELECT session_result FROM checkout_sweeps "
                             "WHERE merchant_id = $1 AND checkout_id = $2",
                             2, p));

    /* kept decoded, as the PSP gave it */
    r = gateway_get(&sweepers[0],
                    adyen_return_path(&m, co_id, "Ab1%2Bx%2F%3D%3D"));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    cr_assert_str_eq(db_scalar("SELECT session_result FROM checkout_sweeps "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "Ab1+x/==");

    /* a paid checkout keeps nothing new (a failed one does: a session a
     * cancel cannot expire may still be paid, pay_sweeper_due) */
    db_exec("UPDATE checkouts SET status = 'SUCCESS' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);
    r = gateway_get(&sweepers[0], adyen_return_path(&m, co_id, "later"));
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    cr_assert_str_eq(db_scalar("SELECT session_result FROM checkout_sweeps "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "Ab1+x/==");
}


Test(solo_sweeper, an_adyen_session_paid_and_returned_without_a_webhook_is_booked)
{
    char        *co_id, *token;
    req_t        rq;
    resp_t      *r;
    merchant_t   m;
    const char  *loc;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-p");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_adyen",
                          "\"webhook_never\":true");

    /* the shopper pays on the hosted page and is sent back with the
     * session's result; the notification never comes */
    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/pay/%s/pay", url_escape(token)));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    loc = resp_header(r, "Location");
    cr_assert_not_null(loc);
    cr_assert_not_null(strstr(loc, "sessionResult="), "%s", loc);

    r = gateway_get(&sweepers[0], url_path(loc));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS");
    expect_swept(&m, co_id, "sw_adyen", "SUCCESS");
}


/* Registers a one-order manual-capture checkout with psp through gw, its
 * webhooks never sent; its PSP token. */

static char *
register_manual(gateway_t *gw, merchant_t *m, const char *co_id,
    const char *psp)
{
    char    *token;
    json_t  *co, *j;
    resp_t  *r;

    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(m, co_id)));

    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string(psp));
    json_object_set_new(co, "capture", json_string("manual"));
    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "registration: %ld %s", r->status, r->body);
    j = resp_json(r);
    token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(token);

    return token;
}


/* The shopper pays on Adyen's hosted page and comes back through gw with
 * the session's result; what the way back answered. */

static long
adyen_pay_and_return(gateway_t *gw, const char *token)
{
    req_t        rq;
    resp_t      *r;
    const char  *loc;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/pay/%s/pay", url_escape(token)));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    loc = resp_header(r, "Location");
    cr_assert_not_null(loc);

    return gateway_get(gw, url_path(loc))->status;
}


/* The shop cancels co_id through gw: FAILED here. */

static void
shop_cancels(gateway_t *gw, merchant_t *m, const char *co_id)
{
    resp_t  *r;

    r = gateway_send(gw, "POST", str_printf("/v1/checkouts/%s/cancel", co_id),
                     m, uid("key"), "{}");
    cr_assert_eq(r->status, 200, "cancel: %ld %s", r->status, r->body);
    cr_assert_str_eq(checkout_status(m, co_id), "FAILED");
}


/*
 * An Adyen session cannot be expired at the shop's cancel: the checkout
 * is FAILED here, and the shopper can still pay on the hosted page.  With
 * its notification never sent, the sweeper goes on asking about the
 * session until its expiry, and books the payment as the late webhook
 * would: FAILED to SUCCESS, paid_after_failed (alerted), the ledger's.
 */
Test(solo_sweeper, an_adyen_session_paid_after_the_shops_cancel_is_booked)
{
    char        *co_id, *co2, *token, *token2;
    merchant_t   m;
    const char  *p[2], *p2[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-c");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_adyen",
                          "\"webhook_never\":true");
    p[0] = m.id;
    p[1] = co_id;

    /* and a manual capture: its session says completed once authorised */
    co2 = uid("co");
    token2 = register_manual(&sweepers[0], &m, co2, "sw_adyen");
    p2[0] = m.id;
    p2[1] = co2;

    /* the shop cancels: FAILED here, the sessions still open at Adyen; the
     * shoppers pay all the same, and come back to the cancel page */
    shop_cancels(&sweepers[0], &m, co_id);
    shop_cancels(&sweepers[0], &m, co2);
    cr_assert_eq(adyen_pay_and_return(&sweepers[0], token), 303);
    cr_assert_eq(adyen_pay_and_return(&sweepers[0], token2), 303);

    /* the sweeper finds it paid: booked once, as a late webhook's */
    cr_assert_str_eq(wait_paid(&m, co_id, 15), "SUCCESS",
                     "the payment taken after the cancel is booked");

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND source = 'sweeper' "
                               "AND outcome = 'paid_after_failed'", 2, p),
                     "1");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND action = 'sweeper:paid_after_failed'",
                               2, p),
                     "1");
    cr_assert_str_eq(db_scalar("SELECT coalesce(sum(e.amount), 0) "
                               "FROM ledger_entries e "
                               "JOIN ledger_transactions t "
                               "USING (merchant_id, txn_id) "
                               "WHERE t.merchant_id = $1 "
                               "AND t.checkout_id = $2 "
                               "AND e.account LIKE 'psp\\_clearing:%'", 2, p),
                     db_scalar("SELECT amount_total::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "the whole amount booked to the PSP's clearing");
    cr_assert_str_eq(db_scalar("SELECT failure_code::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "canceled", "the cancel it came after is kept");

    /* the authorization after the cancel: Adyen's session says completed
     * (authorised), so it is held as the late AUTHORISATION would hold it:
     * AUTHORIZED, paid_after_failed (alerted), for the shop to capture or
     * void; nothing booked, a hold moves no money */
    cr_assert(wait_row("SELECT 1 FROM checkouts WHERE merchant_id = $1 "
                       "AND checkout_id = $2 AND status = 'AUTHORIZED'",
                       p2, 15),
              "the hold taken after the cancel is held");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND source = 'sweeper' "
                               "AND outcome = 'paid_after_failed'", 2, p2),
                     "1");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND outcome = 'payment_unsettled'", 2, p2),
                     "0", "an authorised session is no payment under way");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p2),
                     "0");
    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1,
                               (const char *[]) { m.id }),
                     "true");
}


/*
 * A manual Adyen checkout held (its AUTHORISATION applied, the shopper
 * back with the session's result) and voided by the shop (its
 * CANCELLATION applied): FAILED voided, its hold closed.  Its session was
 * paid once and is spent, so the sweeper does not ask about it as it asks
 * about a FAILED session still payable (Adyen's session result stays
 * "completed" after a cancel: its look-up was taken for a payment, FAILED
 * -> AUTHORIZED, paid_after_failed, before; pay_webhook_apply_core now
 * answers such a look-up 'already', sql's test of the voided hold): nothing
 * moves, FAILED voided.  The webhooks are applied here as the mock would
 * send them to a gateway that knows the PSP as sw_adyen (the suite's knows
 * it as mock_adyen).
 */
Test(solo_sweeper, an_adyen_hold_voided_is_not_held_again_by_its_session_result)
{
    char        *co_id, *token, *ref, *vd, *loc;
    json_t      *s;
    resp_t      *r;
    req_t        rq;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-vd");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    p[0] = m.id;
    p[1] = co_id;
    token = register_manual(&sweepers[0], &m, co_id, "sw_adyen");
    mock_fault(str_printf("{\"match\":\"%s:vd_\",\"webhook_never\":true}",
                          m.id));

    /* the shopper pays; the AUTHORISATION, applied as its webhook */
    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/pay/%s/pay", url_escape(token)));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    cr_assert_not_null(resp_header(r, "Location"));
    loc = strdup(resp_header(r, "Location"));

    r = http_get(mock_url(str_printf("/_control/sessions/%s",
                                     url_escape(token))));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    s = resp_json(r);
    ref = strdup(json_string_value(json_object_get(s, "payment_ref")));

    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply('sw_adyen',"
                               " $3 || ':AUTHORISATION', 'AUTHORIZED',"
                               " 'AUTHORISATION', '', $1 || ':' || $2,"
                               " (SELECT amount_total FROM checkouts"
                               "   WHERE merchant_id = $1 AND checkout_id = $2),"
                               " 'USD', $3, '', '{}')", 3,
                               (const char *[]) { m.id, co_id, ref }),
                     "applied");
    cr_assert_str_eq(checkout_status(&m, co_id), "AUTHORIZED");

    /* the shop voids the hold; Adyen's CANCELLATION, applied */
    r = gateway_send(&sweepers[0], "POST",
                     str_printf("/v1/payments/%s_p1/void", co_id), &m,
                     uid("vk"), "{}");
    cr_assert_eq(r->status, 201, "void: %ld %s", r->status, r->body);
    vd = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "capture_id")));
    cr_assert_str_eq(db_scalar("SELECT outcome FROM pay_event_apply('sw_adyen',"
                               " $2 || ':CANCELLATION', 'VOID_SUCCEEDED',"
                               " 'CANCELLATION', '', $1 || ':' || $3, NULL,"
                               " 'USD', $2, $2, '{}')", 3,
                               (const char *[]) { m.id, ref, vd }),
                     "applied");
    cr_assert_str_eq(db_scalar("SELECT status || ' ' || failure_code"
                               " FROM checkouts WHERE merchant_id = $1"
                               " AND checkout_id = $2", 2, p),
                     "FAILED voided");

    /* the shopper back with the session's result, after the void (a
     * return while it was held kept none here): the sweeper can ask Adyen */
    cr_assert_eq(gateway_get(&sweepers[0], url_path(loc))->status, 303);

    /* rounds pass (after=1s, every 300 ms): the sweeper never asks about
     * the spent session */
    cr_assert(!wait_row("SELECT 1 FROM webhook_events WHERE merchant_id = $1 "
                        "AND checkout_id = $2 AND source = 'sweeper'", p, 5),
              "the sweeper asked about the voided hold's session");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM failed_open_sessions"
                               " WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "0");
    cr_expect_str_eq(db_scalar("SELECT status || ' ' || failure_code"
                               " FROM checkouts WHERE merchant_id = $1"
                               " AND checkout_id = $2", 2, p),
                     "FAILED voided");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM order_events"
                               " WHERE merchant_id = $1 AND checkout_id = $2"
                               " AND from_status = 'FAILED'", 2, p),
                     "0");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions"
                               " WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "0");
}


/*
 * An Adyen payment by a method that settles later, its AUTHORISATION not
 * sent within the session (the mock sends it an hour after the PENDING):
 * Adyen's session look-up says paymentPending, and Adyen has no look-up of
 * a payment, so nothing tells the sweeper when it settles.  Past the
 * session's expiry and grace= it is listed for a person, once: outcome
 * payment_unsettled, its audit row, an alert; it stays EXECUTING, nothing
 * booked, for the webhook.
 */
/* The checkout's session runs out here: its expires_at 5 s ago (p: the
 * merchant and checkout ids), past the row checks that keep it. */
static void
session_runs_out(const char *const *p)
{
    db_exec("BEGIN", 0, NULL);
    db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec("UPDATE checkouts SET expires_at = now() - interval '5 seconds' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);
    db_exec("COMMIT", 0, NULL);
}


Test(solo_sweeper, an_adyen_payment_pending_past_its_session_is_listed_once)
{
    char        *co_id, *token;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-u");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    p[0] = m.id;
    p[1] = co_id;
    token = register_with(&sweepers[0], &m, co_id, "sw_adyen",
                          "\"async_payment\":true,"
                          "\"async_delay_ms\":3600000");

    /* the shopper pays (a method that settles later) and comes back */
    cr_assert_eq(adyen_pay_and_return(&sweepers[0], token), 200);

    /* pending, within its session: left as it is, nothing listed */
    msleep(2500);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING");
    cr_assert_str_eq(db_scalar("SELECT last_answer FROM checkout_sweeps "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "payment pending at the psp");

    session_runs_out(p);

    /* listed once, however many rounds ask again */
    cr_assert(wait_row("SELECT 1 FROM webhook_events WHERE merchant_id = $1 "
                       "AND checkout_id = $2 AND source = 'sweeper' "
                       "AND outcome = 'payment_unsettled'", p, 15),
              "a payment pending past its session is listed for a person");
    msleep(2500);

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND outcome = 'payment_unsettled'", 2, p),
                     "1");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM audit_log "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND action = 'sweeper:payment_unsettled'",
                               2, p),
                     "1");
    cr_assert_eq(file_count(sweepers[0].error_log,
                            str_printf("checkout \"%s\" of merchant \"%s\": "
                                       "psp \"sw_adyen\" still says a "
                                       "payment is under way", co_id, m.id)),
                 1, "one alert");
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING",
                     "left for the PSP's webhook");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "0");
    cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1,
                               (const char *[]) { m.id }),
                     "true");
}


/*
 * A manual capture paid on the hosted page, its events never sent.  At
 * Stripe the session says complete but unpaid (nothing captured), and
 * only its payment intent, which the look-up expands, says
 * requires_capture under the checkout's nonce; the generic session says
 * "authorized" with its payment_id (as payment.authorized would).  The
 * sweeper holds it AUTHORIZED, as the authorization's event would, with
 * the PSP's payment to capture: nothing booked, and the shop's capture
 * goes through.  (Before the generic look-up read "authorized", the mock
 * answered "pending" and the hold stayed EXECUTING until its session
 * expired, then was listed as payment_unsettled: the money checker's
 * seed 110085.)
 */
static void
manual_hold_looked_up(const char *psp, const char *ref_prefix)
{
    char        *co_id, *token;
    resp_t      *r;
    merchant_t   m;
    const char  *p[3];

    merchant_new(&m);

    co_id = uid("co");
    p[0] = m.id;
    p[1] = co_id;
    p[2] = ref_prefix;
    token = register_manual(&sweepers[0], &m, co_id, psp);
    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "AUTHORIZED",
                     "%s: a hold the PSP has is not a payment under way", psp);
    expect_swept(&m, co_id, psp, "AUTHORIZED");
    cr_assert_str_eq(db_scalar("SELECT (left(psp_payment_ref, "
                               "length($3)) = $3)::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               3, p),
                     "true", "%s: the payment to capture", psp);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "0", "%s: a hold books nothing", psp);

    /* the shop captures the first order: the PSP takes it */
    r = gateway_send(&sweepers[0], "POST",
                     str_printf("/v1/payments/%s_p1/capture", co_id), &m,
                     uid("ck"), "{}");
    cr_assert_eq(r->status, 201, "%s: capture: %ld %s", psp, r->status,
                 r->body);
}


Test(solo_sweeper, a_manual_hold_whose_events_never_came_is_held)
{
    start_sweeper(&sweepers[0], "sweeper-h");
    wait_leader(&sweepers[0]);

    manual_hold_looked_up("sw_stripe", "pi_");
    manual_hold_looked_up("sw_generic", "pay_");
}


/*
 * The same hold captured in part at Stripe's dashboard before the sweeper
 * asks, every event lost: the session reads "paid" with its amount_total,
 * its intent received less (Stripe released the rest).  Nothing is booked
 * (amount_total would be money Stripe never moved); the checkout stays
 * EXECUTING for the intent's webhook, and past its session it is listed
 * for a person once, with an alert.
 */
Test(solo_sweeper, a_stripe_hold_captured_in_part_unheard_is_listed_not_booked)
{
    int          i;
    char        *co_id, *token, *ref;
    json_t      *s;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    /* after=3s: the dashboard's capture comes before the first look-up */
    gateway_start(&sweepers[0], "sweeper-dp", 2,
                  sweeper_conf("payments_sweeper on interval=300ms after=3s "
                               "retry=1s alert=4s grace=1s batch=50;\n"));
    gateway_wait_ready(&sweepers[0], 10);
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    p[0] = m.id;
    p[1] = co_id;
    token = register_manual(&sweepers[0], &m, co_id, "sw_stripe");
    mock_session(token, "pay");

    r = http_get(mock_url(str_printf("/_control/sessions/%s",
                                     url_escape(token))));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    s = resp_json(r);
    ref = strdup(json_string_value(json_object_get(s, "payment_intent")));
    cr_assert(strncmp(ref, "pi_", 3) == 0, "%s", ref);

    r = http(&(req_t) { .method = "POST",
                        .url = mock_url("/_control/captures"),
                        .headers = (const char *[]) {
                            "Content-Type: application/json", NULL },
                        .body = str_printf("{\"payment_ref\":\"%s\","
                                           "\"amount\":100}", ref),
                        .len = (size_t) -1 });
    cr_assert_eq(r->status, 200, "dashboard capture: %ld %s", r->status,
                 r->body);

    /* asked about, under way: nothing booked */
    for (i = 0; i < 100; i++) {
        if (strcmp(db_scalar("SELECT coalesce(max(last_answer), '') "
                             "FROM checkout_sweeps WHERE merchant_id = $1 "
                             "AND checkout_id = $2", 2, p), "") != 0)
        {
            break;
        }
        msleep(100);
    }
    msleep(1500);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING",
                     "a session paid in part is not paid in full");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "0");

    session_runs_out(p);

    cr_assert(wait_row("SELECT 1 FROM webhook_events WHERE merchant_id = $1 "
                       "AND checkout_id = $2 AND source = 'sweeper' "
                       "AND outcome = 'payment_unsettled'", p, 15),
              "a capture only the PSP knows of is listed for a person");
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p),
                     "0", "nothing booked that the PSP did not move");
}


/*
 * Sealed PSP tokens (tests/e2e/test_sealed_tokens.c has the rest): the
 * sweeper opens the stored token before it asks the PSP, finds the checkout
 * by the token's candidates, and never asks with a ciphertext.  A suite of
 * its own, solo for the lease like the one above.
 */

TestSuite(solo_sealed_tokens, .timeout = 90, .fini = stop_sweepers);


static char *
sealed_column(const merchant_t *m, const char *co_id, const char *column)
{
    return db_scalar(str_printf("SELECT %s FROM checkouts "
                                "WHERE merchant_id = $1 AND checkout_id = $2",
                                column),
                     2, (const char *[]) { m->id, co_id });
}


Test(solo_sealed_tokens, the_sweeper_opens_a_sealed_token_and_resolves_it)
{
    char        *co_id, *token, *s, *ids;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-sealed");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    token = register_with(&sweepers[0], &m, co_id, "sw_stripe",
                          "\"webhook_never\":true");

    s = sealed_column(&m, co_id, "psp_token");
    cr_assert(strncmp(s, "v1.", 3) == 0, "not sealed");
    cr_assert_str_eq(psp_token_open(m.id, co_id, s), token);

    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS");
    expect_swept(&m, co_id, "sw_stripe", "SUCCESS");

    /* the look-up's event id names the blind index, not the token */
    ids = db_scalar("SELECT string_agg(event_id, ' ') FROM webhook_events "
                    "WHERE merchant_id = $1 AND checkout_id = $2", 2,
                    (const char *[]) { m.id, co_id });
    cr_assert_not_null(ids);
    cr_assert(strstr(ids, token) == NULL, "the token is in an event id");
    cr_assert(strstr(ids, test_blind_index(0, "sw_stripe", token)) != NULL,
              "event ids: %s", ids);
}


Test(solo_sealed_tokens, legacy_and_second_key_rows_are_resolved)
{
    char        *legacy, *second, *tl, *t2, *ad;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-rotated");
    wait_leader(&sweepers[0]);

    legacy = uid("co");
    tl = register_with(&sweepers[0], &m, legacy, "sw_stripe",
                       "\"webhook_never\":true");
    second = uid("co");
    t2 = register_with(&sweepers[0], &m, second, "sw_stripe",
                       "\"webhook_never\":true");

    /* as a gateway without a key wrote it */
    db_exec("UPDATE checkouts SET psp_token = $3 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { m.id, legacy, tl });
    db_exec("UPDATE psp_tokens SET psp_token = $3 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { m.id, legacy, tl });

    /* as it was before the second key was moved down */
    ad = nonce(&m, second);
    db_exec("UPDATE checkouts SET psp_token = $3 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { m.id, second, test_seal(1, ad, t2) });
    db_exec("UPDATE psp_tokens SET psp_token = $3 "
            "WHERE merchant_id = $1 AND checkout_id = $2", 3,
            (const char *[]) { m.id, second,
                               test_blind_index(1, "sw_stripe", t2) });

    mock_session(tl, "pay");
    mock_session(t2, "pay");

    cr_assert_str_eq(wait_decided(&m, legacy, 15), "SUCCESS");
    expect_swept(&m, legacy, "sw_stripe", "SUCCESS");
    cr_assert_str_eq(wait_decided(&m, second, 15), "SUCCESS");
    expect_swept(&m, second, "sw_stripe", "SUCCESS");
}


Test(solo_sealed_tokens, a_copied_ciphertext_is_never_sent_to_the_psp)
{
    int          i;
    char        *a, *b, *ta, *tb, *answer;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-copied");
    wait_leader(&sweepers[0]);

    a = uid("co");
    ta = register_with(&sweepers[0], &m, a, "sw_stripe",
                       "\"webhook_never\":true");
    b = uid("co");
    tb = register_with(&sweepers[0], &m, b, "sw_stripe",
                       "\"webhook_never\":true");

    /* b's row gets a's sealed token; both sessions are paid */
    db_exec("UPDATE checkouts SET psp_token = s.psp_token FROM checkouts s "
            "WHERE s.merchant_id = $1 AND s.checkout_id = $2 "
            "AND checkouts.merchant_id = $1 AND checkouts.checkout_id = $3",
            3, (const char *[]) { m.id, a, b });
    mock_session(ta, "pay");
    mock_session(tb, "pay");

    /* a is resolved; b is noted as a store error and left alone */
    cr_assert_str_eq(wait_decided(&m, a, 15), "SUCCESS");

    answer = NULL;

    for (i = 0; i < 100; i++) {
        answer = db_scalar("SELECT last_answer FROM checkout_sweeps "
                           "WHERE merchant_id = $1 AND checkout_id = $2",
                           2, (const char *[]) { m.id, b });
        if (answer != NULL && strstr(answer, "sealed") != NULL) {
            break;
        }

        msleep(100);
    }

    cr_assert_str_eq(answer, "store error: sealed token does not open");
    cr_assert_str_eq(checkout_status(&m, b), "EXECUTING");
    cr_assert(file_contains(sweepers[0].error_log,
                            str_printf("sealed token does not open "
                                       "(checkout \"%s\")", b)),
              "no log line for %s", b);
}


/* n EXECUTING checkouts co_1..co_n of m at psp, with session tokens,
 * written directly an hour ago, a second apart (due to the sweeper), their
 * sessions an hour ahead. */
static void
due_checkouts(const merchant_t *m, const char *psp, int n)
{
    const char  *p[3] = { m->id, psp, str_printf("%d", n) };

    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, psp_token, expires_at, created_at)"
            " SELECT $1, 'co_' || g, $2, $1 || ':co_' || g, 'EUR', 100,"
            " 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', 'tok_' || g, now() + interval '1 hour',"
            " now() - interval '1 hour' + g * interval '1 second'"
            " FROM generate_series(1, $3::int) g", 3, p);
}


Test(solo_sweeper, a_round_asks_first_about_what_it_asked_about_least_recently,
     .description = "abandoned carts stay due until their sessions expire: "
                    "with more due than a round's batch, the never asked come "
                    "first, then the one asked longest ago, so a newer paid "
                    "checkout comes up (sql/functions/pay_sweeper_due.sql)")
{
    merchant_t   m;
    char        *got;
    const char  *p[2];

    merchant_new(&m);
    p[0] = m.id;

    /* in one transaction, rolled back: the lease taken for the test, three
     * checkouts of a PSP of its own, an hour old */
    db_exec("BEGIN", 0, NULL);
    db_exec("INSERT INTO sweeper_lease (id, owner, until) VALUES (1,"
            " 'order-test', now() + interval '1 minute') ON CONFLICT (id)"
            " DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until",
            0, NULL);
    due_checkouts(&m, "mock_sweep_order", 3);

    /* a round of two; then a minute passes (the transaction's now() stands
     * still: the answers are made older instead) */
#define ROUND(got)                                                           \
    do {                                                                     \
        got = db_scalar("SELECT string_agg(checkout_id, ',' ORDER BY"        \
                        " checkout_id) FROM pay_sweeper_due('order-test',"   \
                        " '{mock_sweep_order}', 60, 30, 2)", 0, NULL);       \
        db_exec("UPDATE checkout_sweeps SET last_at = last_at"               \
                " - interval '1 minute' WHERE merchant_id = $1", 1, p);      \
    } while (0)

    ROUND(got);
    cr_assert_str_eq(got, "co_1,co_2", "the oldest two, never asked");
    ROUND(got);
    cr_assert_str_eq(got, "co_1,co_3", "co_3, never asked, then co_1, asked "
                     "as long ago as co_2 but older (008: co_1,co_2 again)");
    ROUND(got);
    cr_assert_str_eq(got, "co_1,co_2", "co_2, asked two rounds ago, then "
                     "co_1 and co_3, asked one round ago, the older first");
#undef ROUND

    db_exec("ROLLBACK", 0, NULL);
}


/* In the caller's transaction (rolled back): 20,000 EXECUTING checkouts
 * co_1..co_20000 of m at psp with session tokens, written directly two
 * hours to 87 minutes ago (past after= and alert=), their sessions open a
 * day more; then ANALYZE, as autovacuum's would after such growth.
 *
 * Written without the table's triggers (session_replication_role
 * replica, for this INSERT only): checkouts_merchant_terms, the one that
 * fires on an EXECUTING row's INSERT, took 0.75 of the INSERT's 1.15 s,
 * each of the suite's 17 tests that make these rows.  Its commission
 * columns are written here as it writes them (the merchant's terms, 0
 * without), so the rows are the trigger's, byte for byte; the row checks
 * (a CHECK) still run.  Triggers fire again from the next statement on
 * (the tests' UPDATEs: status_forward_guard, checkouts_sweep_late). */
static void
open_sessions(const merchant_t *m, const char *psp)
{
    const char  *p[2] = { m->id, psp };

    db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, psp_token, expires_at, created_at,"
            " commission_bps, commission_fixed)"
            " SELECT $1, 'co_' || g, $2, $1 || ':co_' || g, 'EUR', 100,"
            " 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', 'tok_' || g, now() + interval '1 day',"
            " now() - interval '2 hours' + g * interval '100 ms',"
            " coalesce(t.commission_bps, 0), coalesce(t.amount, 0)"
            " FROM generate_series(1, 20000) g, (SELECT mc.commission_bps,"
            " f.amount FROM merchants mc LEFT JOIN merchant_commission_fixed"
            " f ON f.merchant_id = mc.merchant_id AND f.currency = 'EUR'"
            " WHERE mc.merchant_id = $1) t", 2, p);
    db_exec("SET LOCAL session_replication_role = origin", 0, NULL);
    db_exec("ANALYZE checkouts", 0, NULL);
}


/* The reads tests' transaction (rolled back): the lease taken by their
 * sweeper (owner reads-test, no alert recorded: alert_from NULL), m's
 * open sessions of PSP mock_sweep_reads (open_sessions), and the round's
 * walks (of the never asked, and of those to ask again) from m's co_1 on,
 * as rounds that asked about every older open session would have left
 * them: other tests' open sessions of other PSPs, created before these,
 * would count in a round's 10,000 walked (one CI run had 580 of them). */
static void
reads_begin(const merchant_t *m)
{
    db_exec("BEGIN", 0, NULL);
    db_exec("INSERT INTO sweeper_lease (id, owner, until) VALUES (1,"
            " 'reads-test', now() + interval '1 minute') ON CONFLICT (id)"
            " DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until,"
            " walk_from = NULL, alert_from = NULL, walk_psps = NULL,"
            " walk_payment_psps = NULL, alert_psps = NULL", 0, NULL);
    open_sessions(m, "mock_sweep_reads");
    db_exec("UPDATE sweeper_lease SET walk_from = (SELECT created_at"
            " FROM checkouts WHERE merchant_id = $1 AND checkout_id = 'co_1'),"
            " reask_from = (SELECT created_at FROM checkouts"
            " WHERE merchant_id = $1 AND checkout_id = 'co_1')"
            " WHERE id = 1", 1, (const char *[]) { m->id });
}


/* In the reads tests' transaction: m's co_1..co_<asked> asked about ten
 * minutes ago (past every= 30 s), the walk of the never asked from
 * co_<asked + 1> on and the walk of those to ask again from co_<again>:
 * a busy shard's steady state. */
static void
reads_asked(const merchant_t *m, int asked, int again)
{
    char         n[16], a[16];
    const char  *p[3] = { m->id, n, a };

    snprintf(n, sizeof(n), "%d", asked);
    snprintf(a, sizeof(a), "%d", again);
    db_exec("INSERT INTO checkout_sweeps (merchant_id, checkout_id, attempts,"
            " last_at) SELECT $1, 'co_' || g, 1, now() - interval '10 minutes'"
            " FROM generate_series(1, $2::int) g", 2, p);
    db_exec("UPDATE sweeper_lease SET walk_from = (SELECT created_at"
            " FROM checkouts WHERE merchant_id = $1"
            " AND checkout_id = 'co_' || ($2::int + 1)),"
            " reask_from = (SELECT created_at FROM checkouts"
            " WHERE merchant_id = $1 AND checkout_id = 'co_' || $3)"
            " WHERE id = 1", 3, p);
}


/* In the reads tests' transaction: co_20001 of m, EXECUTING without a
 * token (a claim whose PSP call failed, resumed later), created between
 * co_100 and co_101, so that the walks of the open sessions pass it. */
static void
reads_late_session(const merchant_t *m)
{
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, expires_at, created_at)"
            " SELECT $1, 'co_20001', psp, $1 || ':co_20001', 'EUR', 100,"
            " 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', expires_at, created_at + interval '50 ms'"
            " FROM checkouts WHERE merchant_id = $1 AND checkout_id = 'co_100'",
            1, (const char *[]) { m->id });
}


/* The reads tests' planner settings: cost NULL (the default costs), or a
 * statement that sets costs for their transaction, made before the
 * function's first call (a PL/pgSQL plan is kept for the connection). */
static void
reads_cost(const char *cost)
{
    if (cost != NULL) {
        db_exec(cost, 0, NULL);
    }
}


/* Where the open sessions land in the free space of a much-updated table,
 * scattered over pages not all-visible, each index fetch looks dear and a
 * sequential scan and sort of every open session looks cheaper to the
 * planner: a random_page_cost of 40 stands for it.  The walks are cursors,
 * planned for their first tenth (cursor_tuple_fraction): on a scratch
 * cluster that did not save them (pay_sweeper_overdue read every row of
 * the table), but on this suite's tables it did, and the tests passed
 * against the functions that read everything; planned for all their rows
 * (1: a count walks 10,000, not a tenth), they fail whatever the table. */
static const char  whatever_the_costs[] =
    "SELECT set_config('random_page_cost', '40', true),"
    " set_config('cursor_tuple_fraction', '1', true)";


/* what cost names, for an assertion's message */
static const char *
reads_cost_name(const char *cost)
{
    return cost != NULL ? "random_page_cost 40, cursor_tuple_fraction 1"
                        : "default costs";
}


/* with more never asked than a round's batch, a round of 50 over 20,000
 * open sessions reads far fewer than 20,000 rows of checkouts (cost:
 * reads_cost) */
static void
round_reads_about_its_batch(const char *cost)
{
    long         read;
    char        *got;
    merchant_t   m;

    merchant_new(&m);

    reads_begin(&m);
    reads_cost(cost);

    read = db_rows_read("checkouts");
    got = db_scalar("SELECT count(*) || ' ' || min(checkout_id) || ' '"
                    " || bool_and(merchant_id = $1) FROM pay_sweeper_due("
                    "'reads-test', '{mock_sweep_reads}', 60, 30, 50)", 1,
                    (const char *[]) { m.id });
    read = db_rows_read("checkouts") - read;

    cr_assert_str_eq(got, "50 co_1 true", "the oldest 50, never asked");
    cr_assert_lt(read, 1000, "the round read %ld rows (%s)", read,
                 reads_cost_name(cost));

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_round_reads_about_its_batch_however_many_sessions_are_open,
     .description = "with more never asked than a round's batch, the round "
                    "finds them through the executing checkouts' index in "
                    "its order: 20,000 open sessions, a batch of 50, and the "
                    "round reads far fewer than 20,000 rows of checkouts "
                    "(a round that read them all took "
                    "210-350 ms at 300,000; bench/sweeper_due.sh)")
{
    round_reads_about_its_batch(NULL);
}


Test(solo_sweeper, a_round_reads_about_its_batch_whatever_the_costs,
     .description = "the round above with a random_page_cost of 40 and its "
                    "walk planned for all its rows (whatever_the_costs): "
                    "still the index's walk, not a scan and sort of every "
                    "open session")
{
    round_reads_about_its_batch(whatever_the_costs);
}


/* One round of the reads tests' sweeper (PSP mock_sweep_reads, after= 60
 * s, every= 30 s, this batch): "<count> <first> <last>" of the numbers of
 * the checkouts (co_<n>) it hands out, and in *read the rows of checkouts
 * it read. */
static char *
reads_round(const char *batch, long *read)
{
    char  *got;

    *read = db_rows_read("checkouts");
    got = db_scalar("SELECT count(*) || ' ' || coalesce(min(n)::text, '-')"
                    " || ' ' || coalesce(max(n)::text, '-') FROM (SELECT"
                    " substr(checkout_id, 4)::int AS n FROM pay_sweeper_due("
                    "'reads-test', '{mock_sweep_reads}', 60, 30, $1::int)) d",
                    1, (const char *[]) { batch });
    *read = db_rows_read("checkouts") - *read;
    return got;
}


/* One alerts round of the reads tests' sweeper (pay_sweeper_overdue, PSP
 * mock_sweep_reads, alert= 1 h, the batch its one parameter): "<count>
 * <first> <last> <unresolved>" of the checkouts it alerts about. */
static const char  reads_alert_round[] =
    "SELECT count(checkout_id) || ' ' || min(substr(checkout_id, 4)::int)"
    " || ' ' || max(substr(checkout_id, 4)::int) || ' ' || min(unresolved)"
    " FROM pay_sweeper_overdue('reads-test', '{mock_sweep_reads}', 3600,"
    " $1::int)";


Test(solo_sweeper, a_round_goes_on_where_the_last_stopped,
     .description = "the steady state of a busy shard: the oldest open "
                    "sessions were asked about, the newest never.  20,000 "
                    "open; two rounds of 9,500 ask about the oldest 19,000; "
                    "a round of 50 then reads about its batch, from where "
                    "the last one stopped (sweeper_lease.walk_from).  "
                    "Walking from the oldest, it read the 19,000 asked "
                    "about first: 0.6-0.8 s a round at 300,000 open "
                    "(bench/sweeper_due.sh)")
{
    long         read;
    merchant_t   m;

    merchant_new(&m);

    reads_begin(&m);

    cr_assert_str_eq(reads_round("9500", &read), "9500 1 9500");
    cr_assert_str_eq(reads_round("9500", &read), "9500 9501 19000");
    cr_assert_str_eq(reads_round("50", &read), "50 19001 19050");
    cr_assert_lt(read, 1000, "the round read %ld rows", read);

    db_exec("ROLLBACK", 0, NULL);
}


/* 19,000 of 20,000 open sessions asked about already, the walk's record
 * behind them all: a round walks 10,000, the next goes on to the never
 * asked; neither reads all 20,000 (cost: reads_cost) */
static void
round_walks_at_most_ten_thousand(const char *cost)
{
    long         read;
    merchant_t   m;
    const char  *p[1];
    const char  *costs = reads_cost_name(cost);

    merchant_new(&m);
    p[0] = m.id;

    reads_begin(&m);
    reads_cost(cost);
    db_exec("INSERT INTO checkout_sweeps (merchant_id, checkout_id, attempts,"
            " last_at) SELECT $1, 'co_' || g, 1, now()"
            " FROM generate_series(1, 19000) g", 1, p);

    cr_assert_str_eq(reads_round("50", &read), "0 - -");
    cr_assert_leq(read, 10100, "the round read %ld rows (%s)", read, costs);
    cr_assert_str_eq(reads_round("50", &read), "50 19001 19050");
    cr_assert_leq(read, 10100, "the next read %ld rows (%s)", read, costs);

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_round_walks_at_most_ten_thousand_open_sessions,
     .description = "19,000 of 20,000 open sessions asked about already, and "
                    "the walk's record behind them all (as the oldest open "
                    "session is for a lease taken before migration 093): a "
                    "round walks 10,000 of them, hands out none, and the "
                    "next goes on from there to the never asked; neither "
                    "reads all 20,000")
{
    round_walks_at_most_ten_thousand(NULL);
}


Test(solo_sweeper, a_round_walks_at_most_ten_thousand_whatever_the_costs,
     .description = "the rounds above with a random_page_cost of 40 and "
                    "their walks planned for all their rows "
                    "(whatever_the_costs): each still "
                    "walks the index, 10,000 at most")
{
    round_walks_at_most_ten_thousand(whatever_the_costs);
}


Test(solo_sweeper, a_busy_round_asks_again_about_those_asked_longest_ago,
     .description = "a busy shard: 20,000 open sessions, the oldest 1,000 "
                    "asked about ten minutes ago, the rest never.  A round "
                    "of 50 asks about 38 never asked and again about 12 of "
                    "the asked (a quarter of its batch), the oldest; the next "
                    "round's 12 follow on from there; each reads about its "
                    "batch.  Before, every such round took 50 never asked, "
                    "and a session asked about once (a shopper who paid "
                    "after, the webhook lost) was not asked again while the "
                    "shard stayed busy")
{
    long         read;
    merchant_t   m;

    merchant_new(&m);

    reads_begin(&m);
    reads_asked(&m, 1000, 1);

    cr_assert_str_eq(reads_round("50", &read), "50 1 1038");
    cr_assert_lt(read, 1000, "the round read %ld rows", read);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM checkout_sweeps"
                               " WHERE merchant_id = $1 AND attempts = 2",
                               1, (const char *[]) { m.id }), "12");
    cr_assert_str_eq(reads_round("50", &read), "50 13 1076");
    cr_assert_lt(read, 1000, "the round read %ld rows", read);

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, the_walk_of_those_to_ask_again_goes_round_from_the_oldest,
     .description = "100 open sessions, the oldest of all (a century old: "
                    "other tests' open sessions come after them), 20 asked "
                    "about ten minutes ago, the walk of those to ask again "
                    "left at the 15th: a round of 50 asks again about the "
                    "15th to the 20th and reaches the walk of the never "
                    "asked; the next starts again from the oldest, and a "
                    "round of 2 keeps one for them (a batch of 1 keeps none)")
{
    long         read;
    merchant_t   m;
    const char  *p[1];

    merchant_new(&m);
    p[0] = m.id;

    db_exec("BEGIN", 0, NULL);
    db_exec("INSERT INTO sweeper_lease (id, owner, until) VALUES (1,"
            " 'reads-test', now() + interval '1 minute') ON CONFLICT (id)"
            " DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until,"
            " walk_psps = NULL, walk_payment_psps = NULL", 0, NULL);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, psp_token, expires_at, created_at)"
            " SELECT $1, 'co_' || g, 'mock_sweep_reads', $1 || ':co_' || g,"
            " 'EUR', 100, 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', 'tok_' || g, now() + interval '1 day',"
            " now() - interval '100 years' + g * interval '1 second'"
            " FROM generate_series(1, 100) g", 1, p);
    reads_asked(&m, 20, 15);

    cr_assert_str_eq(reads_round("50", &read), "50 15 64");
    cr_assert_str_eq(db_scalar("SELECT coalesce(reask_from::text, 'oldest')"
                               " FROM sweeper_lease WHERE id = 1", 0, NULL),
                     "oldest");
    cr_assert_str_eq(reads_round("2", &read), "2 1 65");
    cr_assert_str_eq(reads_round("1", &read), "1 66 66");
    cr_assert_str_eq(reads_round("2", &read), "2 2 67");

    db_exec("ROLLBACK", 0, NULL);
}


/* One round of the reads tests' sweeper with its PSP's FAILED sessions
 * asked about too (as Adyen's: p_open_psps), batch 50: "<count> <FAILED
 * ones> <first> <last>" of the EXECUTING checkouts' numbers. */
static char *
reads_round_failed(void)
{
    return db_scalar("SELECT count(*) || ' ' || count(*) FILTER (WHERE failed)"
                     " || ' ' || coalesce(min(n) FILTER (WHERE NOT failed)::text, '-')"
                     " || ' ' || coalesce(max(n) FILTER (WHERE NOT failed)::text, '-')"
                     " FROM (SELECT substr(checkout_id, 4)::int AS n, failed"
                     " FROM pay_sweeper_due('reads-test', '{mock_sweep_reads}',"
                     " '{}', '{mock_sweep_reads}', 60, 30, 0, 50)) d", 0, NULL);
}


Test(solo_sweeper, a_busy_round_keeps_room_for_the_failed_sessions_it_asks_about,
     .description = "a busy shard of 20,000 open sessions never asked, and "
                    "five FAILED sessions its PSP may still take a payment "
                    "in (as Adyen's after a cancel), three never asked and "
                    "two asked ten minutes ago: a round of 50 asks about "
                    "all five and the oldest 45 open ones, and the next "
                    "goes on from the 46th.  Before, it walked 50 open ones "
                    "and cut the newest three for the FAILED never asked "
                    "(its mark past them: never asked while the shard stays "
                    "busy), and left the two to ask again out")
{
    merchant_t   m;
    const char  *p[1];

    merchant_new(&m);
    p[0] = m.id;

    reads_begin(&m);
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, psp_token, psp_url, expires_at, created_at)"
            " SELECT $1, 'co_' || g, 'mock_sweep_reads', $1 || ':co_' || g,"
            " 'EUR', 100, 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', 'tok_' || g, 'https://psp.example/' || g,"
            " now() + interval '1 day', now() - interval '3 hours'"
            " + g * interval '1 ms' FROM generate_series(30001, 30005) g",
            1, p);
    db_exec("UPDATE checkouts SET status = 'FAILED', failure_code = 'canceled'"
            " WHERE merchant_id = $1 AND checkout_id LIKE 'co_3000_'", 1, p);
    db_exec("INSERT INTO checkout_sweeps (merchant_id, checkout_id, attempts,"
            " last_at) SELECT $1, 'co_' || g, 1, now() - interval '10 minutes'"
            " FROM generate_series(30004, 30005) g", 1, p);
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM failed_open_sessions"
                               " WHERE merchant_id = $1", 1, p), "5");

    cr_assert_str_eq(reads_round_failed(), "50 5 1 45");
    cr_assert_str_eq(reads_round_failed(), "50 0 46 95");

    db_exec("ROLLBACK", 0, NULL);
}


/* 20,000 checkouts EXECUTING past alert=: a round's count reads far fewer
 * than 20,000 rows of checkouts (cost: reads_cost) */
static void
unresolved_count_reads_at_most_ten_thousand(const char *cost)
{
    long         read;
    char        *got;
    merchant_t   m;

    merchant_new(&m);

    db_exec("BEGIN", 0, NULL);
    open_sessions(&m, "mock_sweep_overdue");
    reads_cost(cost);

    /* not the lease's owner: the count and the oldest age only */
    read = db_rows_read("checkouts");
    got = db_scalar("SELECT unresolved || ' ' || (oldest_seconds >= 7190)"
                    " FROM pay_sweeper_overdue('not-the-owner',"
                    " '{mock_sweep_overdue}', 3600, 100)", 0, NULL);
    read = db_rows_read("checkouts") - read;

    cr_assert_lt(read, 20000, "the count read %ld rows (%s)", read,
                 reads_cost_name(cost));
    cr_assert_str_eq(got, "10000 true");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, the_unresolved_count_reads_at_most_ten_thousand_checkouts,
     .description = "payments_checkouts_unresolved counts up to 10,000: "
                    "20,000 checkouts EXECUTING past alert= (sessions that "
                    "live up to a day), and a round's count reads far fewer "
                    "than 20,000 rows of checkouts (a count of a "
                    "million took 0.7-2.1 s; bench/executing_gauge.sh)")
{
    unresolved_count_reads_at_most_ten_thousand(NULL);
}


Test(solo_sweeper, the_unresolved_count_reads_at_most_ten_thousand_whatever_the_costs,
     .description = "the count above with a random_page_cost of 40 and its "
                    "walk planned for all its rows (whatever_the_costs): "
                    "still the index's walk, stopped at 10,000, not a scan "
                    "and sort of every open session")
{
    unresolved_count_reads_at_most_ten_thousand(whatever_the_costs);
}


/* 20,000 paid checkouts whose saved method is not recorded past alert=:
 * a round's count reads far fewer than 20,000 rows of checkouts.  Not run
 * again under whatever_the_costs: there the planner can walk another
 * index of every checkout whole, scans off or not (a CI run read 20,014
 * rows so; pay_sweeper_methods_due walked checkouts_list on a scratch
 * cluster) */
static void
unsaved_count_reads_at_most_ten_thousand(void)
{
    long         read;
    char        *got;
    merchant_t   m;

    merchant_new(&m);

    db_exec("BEGIN", 0, NULL);
    open_sessions(&m, "mock_sweep_unsaved");
    db_exec("UPDATE checkouts SET save_method = '{\"usage\": \"off_session\"}',"
            " status = 'SUCCESS' WHERE merchant_id = $1", 1,
            (const char *[]) { m.id });
    db_exec("ANALYZE checkouts", 0, NULL);

    /* not the lease's owner: the count and the oldest age only */
    read = db_rows_read("checkouts");
    got = db_scalar("SELECT unsaved || ' ' || (oldest_seconds >= 7190)"
                    " FROM pay_sweeper_methods_unsaved('not-the-owner',"
                    " '{mock_sweep_unsaved}', 3600, 100)", 0, NULL);
    read = db_rows_read("checkouts") - read;

    cr_assert_lt(read, 20000, "the count read %ld rows", read);
    cr_assert_str_eq(got, "10000 true");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, the_unsaved_methods_count_reads_at_most_ten_thousand_checkouts,
     .description = "payments_payment_methods_unsaved counts up to 10,000: "
                    "20,000 paid checkouts that asked to save the shopper's "
                    "method and have none recorded past alert= (their "
                    "events lost; Adyen's cannot be asked, so they only "
                    "grow), and a round's count reads far fewer than "
                    "20,000 rows of checkouts")
{
    unsaved_count_reads_at_most_ten_thousand();
}


/* A methods round over 20,000 checkouts, 5,000 of them paid with their
 * saved method not recorded: the round asks about its batch of those and
 * reads about the 5,000 (it orders them by when each was asked), not
 * every checkout.  Not run again under whatever_the_costs, as the count
 * above. */
static void
methods_round_reads_about_the_unsaved(void)
{
    long         read;
    char        *got;
    merchant_t   m;

    merchant_new(&m);

    reads_begin(&m);
    db_exec("UPDATE checkouts SET save_method = '{\"usage\": \"off_session\"}',"
            " status = 'SUCCESS' WHERE merchant_id = $1"
            " AND checkout_id IN (SELECT 'co_' || g"
            " FROM generate_series(1, 5000) g)", 1, (const char *[]) { m.id });
    db_exec("ANALYZE checkouts", 0, NULL);

    read = db_rows_read("checkouts");
    got = db_scalar("SELECT count(*) FROM pay_sweeper_methods_due("
                    "'reads-test', '{mock_sweep_reads}', 60, 30, 50)", 0,
                    NULL);
    read = db_rows_read("checkouts") - read;

    cr_assert_str_eq(got, "50");
    cr_assert_lt(read, 10000, "the round read %ld rows", read);

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_methods_round_reads_about_the_unsaved,
     .description = "pay_sweeper_methods_due over 20,000 checkouts, "
                    "5,000 of them paid without their method recorded: a "
                    "round of 50 reads about the 5,000, through the "
                    "unsaved methods' indexes, not every checkout")
{
    methods_round_reads_about_the_unsaved();
}


/* Three alert rounds of q (its batch $1; it answers how many it alerted,
 * the first and last co_<n>, and its count) over the reads tests' 20,000
 * checkouts past alert=: two of 9,500 alert the oldest 19,000, then one of
 * 50 alerts the next 50 and reads its count's 10,000 rows of checkouts
 * and about its batch, not the 19,000 alerted already.  The table is not
 * analysed between the rounds: its statistics say none is alerted, as
 * before autovacuum comes after a large batch.  With an index of all the
 * unsaved methods beside the unalerted one, both looked alike to the
 * planner then, and a CI run took the first and read 29,102 rows. */
static void
alert_rounds(const char *q)
{
    long   read;
    char  *got;

    cr_assert_str_eq(db_scalar(q, 1, (const char *[]) { "9500" }), "9500 1 9500 10000");
    cr_assert_str_eq(db_scalar(q, 1, (const char *[]) { "9500" }), "9500 9501 19000 10000");
    read = db_rows_read("checkouts");
    got = db_scalar(q, 1, (const char *[]) { "50" });
    read = db_rows_read("checkouts") - read;
    cr_assert_str_eq(got, "50 19001 19050 10000");
    cr_assert_lt(read, 11000, "the round read %ld rows", read);
}


/* A round of pay_sweeper_methods_unsaved as the lease's owner: how many
 * of m's checkouts it alerted, the first and last (co_<n>), and its count. */
static const char  methods_alert_round[] =
    "SELECT count(checkout_id) || ' ' || min(substr(checkout_id, 4)::int)"
    " || ' ' || max(substr(checkout_id, 4)::int) || ' ' || min(unsaved)"
    " FROM pay_sweeper_methods_unsaved('reads-test', '{mock_sweep_reads}',"
    " 3600, $1::int)";


Test(solo_sweeper, a_methods_round_alerts_from_the_checkouts_not_alerted_yet,
     .description = "20,000 paid checkouts that asked to save the shopper's "
                    "method and never had one recorded (Adyen's cannot be "
                    "asked: they stay, and only grow); two rounds of 9,500 "
                    "alert the oldest 19,000, and a round of 50 then reads "
                    "its count's 10,000 and about its batch: the checkouts "
                    "alerted already are not in the index it finds its "
                    "batch by (checkouts_method_unalerted), the only one "
                    "that may serve it, whatever the statistics say.  "
                    "Through checkout_sweeps, it read the 19,000 alerted "
                    "first")
{
    merchant_t   m;
    const char  *q = methods_alert_round;

    merchant_new(&m);

    reads_begin(&m);
    db_exec("UPDATE checkouts SET save_method = '{\"usage\": \"off_session\"}',"
            " status = 'SUCCESS' WHERE merchant_id = $1", 1,
            (const char *[]) { m.id });
    db_exec("ANALYZE checkouts", 0, NULL);

    alert_rounds(q);

    /* the oldest is co_1, alerted: its age is the gauge's (not co_19051's,
     * the oldest not alerted) */
    cr_assert_str_eq(db_scalar("SELECT unsaved || ' ' || (oldest_seconds >= 7190)"
                               " FROM pay_sweeper_methods_unsaved('not-the-owner',"
                               " '{mock_sweep_reads}', 3600, 100)", 0, NULL),
                     "10000 true");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_method_listed_for_a_person_is_still_asked_about,
     .description = "a paid checkout whose saved method is not recorded "
                    "past alert= is listed for a person, and the sweeper "
                    "still asks its PSP for the method: the alerted and "
                    "the not alerted are in two indexes, and a round "
                    "finds the checkouts to ask about in both, so that a "
                    "method found late is still recorded")
{
    merchant_t   m;

    merchant_new(&m);

    reads_begin(&m);
    db_exec("UPDATE checkouts SET save_method = '{\"usage\": \"off_session\"}',"
            " status = 'SUCCESS' WHERE merchant_id = $1"
            " AND checkout_id IN ('co_1', 'co_2', 'co_3', 'co_4')", 1,
            (const char *[]) { m.id });

    /* co_1 and co_3 listed for a person */
    db_exec("UPDATE checkouts SET method_alerted_at = now()"
            " WHERE merchant_id = $1 AND checkout_id IN ('co_1', 'co_3')", 1,
            (const char *[]) { m.id });

    cr_assert_str_eq(db_scalar("SELECT string_agg(checkout_id, ',' ORDER BY"
                               " checkout_id) FROM pay_sweeper_methods_due("
                               "'reads-test', '{mock_sweep_reads}', 60, 60, 10)"
                               " WHERE merchant_id = $1", 1,
                               (const char *[]) { m.id }),
                     "co_1,co_2,co_3,co_4");

    /* each asked once within every= */
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM pay_sweeper_methods_due("
                               "'reads-test', '{mock_sweep_reads}', 60, 60, 10)"
                               " WHERE merchant_id = $1", 1,
                               (const char *[]) { m.id }), "0");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_round_alerts_from_where_the_last_stopped,
     .description = "the alerts of checkouts EXECUTING past alert= in a busy "
                    "shard's steady state: 20,000 past it, two rounds of "
                    "9,500 alert the oldest 19,000, and a round of 50 then "
                    "reads its count's 10,000 and about its batch, from "
                    "where the last one stopped (sweeper_lease.alert_from); "
                    "walking from the oldest, it read the 19,000 alerted "
                    "already too")
{
    merchant_t   m;
    const char  *q = reads_alert_round;

    merchant_new(&m);

    reads_begin(&m);

    alert_rounds(q);

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_token_stored_after_the_walk_passed_its_session_is_asked_about,
     .description = "a claim resumed long after its first PSP call stores "
                    "its token when the rounds' walk has passed its session "
                    "(sweeper_lease.walk_from): it is recorded "
                    "(sweeper_late, checkouts_sweep_late) and the next "
                    "round asks about it first, once; before, only a round "
                    "that walked to the end with less than its batch found "
                    "it, and in a busy shard none does")
{
    long         read;
    merchant_t   m;

    merchant_new(&m);

    reads_begin(&m);
    reads_late_session(&m);

    cr_assert_str_eq(reads_round("9500", &read), "9500 1 9500");
    cr_assert_str_eq(reads_round("9500", &read), "9500 9501 19000");

    /* its token stored, as pay_finish stores a resumed claim's */
    db_exec("UPDATE checkouts SET psp_token = 'tok_20001' WHERE"
            " merchant_id = $1 AND checkout_id = 'co_20001'", 1,
            (const char *[]) { m.id });

    cr_assert_str_eq(reads_round("50", &read), "50 19001 20001",
                     "co_20001 first, then 49 from where the walk stopped");
    cr_assert_lt(read, 1000, "the round read %ld rows", read);
    cr_assert_str_eq(reads_round("50", &read), "50 19050 19099",
                     "asked once: not handed out again");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_review_approved_after_the_walk_passed_it_is_alerted,
     .description = "a checkout held for review is not EXECUTING while the "
                    "alerts' walk passes it (sweeper_lease.alert_from); "
                    "approved, it is recorded (sweeper_late) and the next "
                    "round past alert= logs it, where before it was only "
                    "counted in payments_checkouts_unresolved")
{
    merchant_t   m;
    const char  *p[1];
    const char  *q = reads_alert_round;

    merchant_new(&m);
    p[0] = m.id;

    reads_begin(&m);
    reads_late_session(&m);
    db_exec("UPDATE checkouts SET status = 'REVIEW' WHERE merchant_id = $1"
            " AND checkout_id = 'co_20001'", 1, p);

    cr_assert_str_eq(db_scalar(q, 1, (const char *[]) { "9500" }), "9500 1 9500 10000");
    cr_assert_str_eq(db_scalar(q, 1, (const char *[]) { "9500" }), "9500 9501 19000 10000");

    /* approved (pay_review_approve) */
    db_exec("UPDATE checkouts SET status = 'EXECUTING' WHERE merchant_id = $1"
            " AND checkout_id = 'co_20001'", 1, p);

    cr_assert_str_eq(db_scalar(q, 1, (const char *[]) { "50" }), "50 19001 20001 10000",
                     "co_20001 first, then 49 from where the walk stopped");
    cr_assert_str_eq(db_scalar(q, 1, (const char *[]) { "50" }), "50 19050 19099 10000",
                     "alerted once");

    /* not asked about while it has no token */
    cr_assert_str_eq(reads_round("50", &(long) { 0 }), "50 1 50");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_psp_added_to_the_sweeper_is_walked_from_the_oldest,
     .description = "the rounds' walks passed the open sessions of a PSP "
                    "they did not sweep; once it is in the sweeper's list "
                    "(sweeper_lease.walk_psps, alert_psps), the next round "
                    "walks from the oldest and asks and alerts about them, "
                    "where before it went on from its mark and they waited "
                    "while every round found a full batch")
{
    long         read;
    merchant_t   m;
    const char  *batch[1] = { "50" };

    merchant_new(&m);

    reads_begin(&m);
    /* the marks at co_10001, left by rounds of another PSP alone */
    db_exec("UPDATE sweeper_lease SET walk_from = c.created_at, alert_from ="
            " c.created_at, walk_psps = '{mock_sweep_other}',"
            " walk_payment_psps = '{}', alert_psps = '{mock_sweep_other}'"
            " FROM checkouts c WHERE id = 1 AND c.merchant_id = $1"
            " AND c.checkout_id = 'co_10001'", 1, (const char *[]) { m.id });

    cr_assert_str_eq(reads_round("50", &read), "50 1 50");
    cr_assert_lt(read, 11000, "the round read %ld rows", read);
    cr_assert_str_eq(reads_round("50", &read), "50 51 100",
                     "then on from there: the list is recorded");
    cr_assert_str_eq(db_scalar(reads_alert_round, 1, batch), "50 1 50 10000");
    cr_assert_str_eq(db_scalar(reads_alert_round, 1, batch), "50 51 100 10000");

    db_exec("ROLLBACK", 0, NULL);
}


Test(solo_sweeper, a_round_does_not_walk_past_a_registration_under_way,
     .description = "a session claimed 10 s ago whose PSP call is under way "
                    "has no token yet; with after=1s a round walks past it, "
                    "and its token, stored within 30 s, is not recorded as "
                    "late (checkouts_sweep_late): the round's mark stays at "
                    "it, so the next round's walk meets it with its token")
{
    merchant_t   m;
    const char  *p[1];

    merchant_new(&m);
    p[0] = m.id;

    db_exec("BEGIN", 0, NULL);
    db_exec("INSERT INTO sweeper_lease (id, owner, until) VALUES (1,"
            " 'reads-test', now() + interval '1 minute') ON CONFLICT (id)"
            " DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until,"
            " walk_from = now() - interval '1 minute', alert_from = NULL,"
            " walk_psps = NULL, walk_payment_psps = NULL, alert_psps = NULL",
            0, NULL);
    /* co_1 under way (no token), co_2 registered after it */
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, psp_token, expires_at, created_at)"
            " SELECT $1, 'co_' || g, 'mock_sweep_reads', $1 || ':co_' || g,"
            " 'EUR', 100, 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r', CASE g WHEN 2 THEN 'tok_2' END,"
            " now() + interval '1 hour', now() - interval '12 seconds'"
            " + g * interval '2 seconds' FROM generate_series(1, 2) g", 1, p);

    cr_assert_str_eq(db_scalar("SELECT string_agg(checkout_id, ',') FROM"
                               " pay_sweeper_due('reads-test',"
                               " '{mock_sweep_reads}', 1, 30, 50) WHERE"
                               " merchant_id = $1", 1, p), "co_2");
    cr_assert_str_eq(db_scalar("SELECT (walk_from = c.created_at)::text FROM"
                               " sweeper_lease, checkouts c WHERE id = 1 AND"
                               " c.merchant_id = $1 AND c.checkout_id = 'co_1'",
                               1, p), "true",
                     "the mark stays at the session under way");
    db_exec("UPDATE checkouts SET psp_token = 'tok_1' WHERE merchant_id = $1"
            " AND checkout_id = 'co_1'", 1, p);
    cr_assert_str_eq(db_scalar("SELECT count(*)::text FROM sweeper_late"
                               " WHERE merchant_id = $1", 1, p), "0",
                     "a registration's own token is not recorded as late");

    db_exec("ROLLBACK", 0, NULL);
}


/* A loopback port that accepts connections and never answers: a PSP whose
 * every look-up runs into its timeout.  Its socket, and the port in *port. */
static int
silent_port(int *port)
{
    int                 s;
    socklen_t           len;
    struct sockaddr_in  sin;

    s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *) &sin, sizeof(sin)), 0);
    cr_assert_eq(listen(s, 128), 0);
    len = sizeof(sin);
    cr_assert_eq(getsockname(s, (struct sockaddr *) &sin, &len), 0);
    *port = ntohs(sin.sin_port);

    return s;
}


/* The mock's Stripe API as psp name at a loopback port instead, with the
 * parameters extra. */
static char *
psp_at_port(const char *name, int port, const char *extra)
{
    char  *psp, *at;

    psp = gw_psp_conf(name, "stripe");
    at = strstr(psp, env("PAY_TEST_MOCK"));
    cr_assert_not_null(at);
    psp = str_printf("%.*shttp://127.0.0.1:%d%s", (int) (at - psp), psp, port,
                     at + strlen(env("PAY_TEST_MOCK")));

    /* the line ends ";\n" */
    psp[strlen(psp) - 2] = '\0';

    return str_printf("%s %s;\n", psp, extra);
}


Test(solo_sweeper, a_round_longer_than_the_lease_keeps_it_to_the_end,
     .timeout = 60,
     .description = "the lease lasts three intervals and 2 s and was taken "
                    "only at a round's start: a round of slow look-ups "
                    "outlasted it, another gateway took it over and swept "
                    "beside the first; now it is renewed every interval "
                    "mid-round")
{
    int          i, s, port;
    long         other;
    char        *conf, *psp;
    merchant_t   m;
    const char  *p[2];

    s = silent_port(&port);

    /* sw_slow: the mock's Stripe API at that port instead; every look-up
     * slow, and still asked: its breaker never opens */
    psp = psp_at_port("sw_slow", port, "breaker=0");
    conf = sweeper_conf(str_printf("%s" SWEEPER_CONF, psp));

    /* eight checkouts at sw_slow, due at once: a round of 8 x 1 s, the
     * lease 3 x 300 ms + 2 s */
    merchant_new(&m);
    p[0] = m.id;
    due_checkouts(&m, "sw_slow", 8);

    gateway_start(&sweepers[0], "sweeper-long", 2, conf);
    gateway_wait_ready(&sweepers[0], 10);
    wait_leader(&sweepers[0]);
    gateway_start(&sweepers[1], "sweeper-waits", 2, conf);
    gateway_wait_ready(&sweepers[1], 10);

    /* the round goes on for about 8 s; the other never gets the lease */
    other = 0;
    for (i = 0; i < 70; i++) {
        other += gateway_metric(&sweepers[1], "payments_sweeper_leader");
        msleep(100);
    }

    cr_expect_eq(other, 0, "the other gateway held the lease mid-round");
    cr_expect_eq(gateway_metric(&sweepers[0], "payments_sweeper_leader"), 1);
    cr_expect(!file_contains(sweepers[0].error_log, "was not renewed"));

    stop_sweepers();
    db_exec("UPDATE checkouts SET status = 'FAILED' WHERE merchant_id = $1",
            1, p);
    /* stopped mid-round, the gateway could not give the lease back: the
     * next test's gateways must not wait for it to run out */
    db_exec("UPDATE sweeper_lease SET until = now() WHERE id = 1", 0, NULL);
    close(s);
}


/* Connections a silent_port() socket has queued (and now takes), each one
 * a look-up sent to it. */
static long
silent_calls(int s)
{
    int   fd;
    long  n;

    cr_assert_eq(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK), 0);

    for (n = 0; (fd = accept(s, NULL, NULL)) >= 0; n++) {
        close(fd);
    }

    return n;
}


static char *
metrics_of(const gateway_t *gw)
{
    char    *body;
    resp_t  *r;

    r = gateway_get(gw, "/metrics");
    cr_assert_eq(r->status, 200);
    body = strdup(r->body);
    resp_free(r);

    return body;
}


/* the value of a labelled series in the gateway's /metrics, or -1 */
static long
metric_of(const gateway_t *gw, const char *series)
{
    char        *body, *line;
    const char  *p;

    body = metrics_of(gw);
    line = str_printf("%s ", series);
    p = strstr(body, line);

    return p ? strtol(p + strlen(line), NULL, 10) : -1;
}


Test(solo_sweeper, a_psps_failing_look_ups_open_its_circuit_and_then_it_gets_none,
     .timeout = 60,
     .description = "the sweeper's look-ups went around the circuit "
                    "breaker: a PSP that was down got them all, and their "
                    "failures never opened its circuit; now each look-up "
                    "asks the breaker first and tells it how it ended")
{
    int          i, s, port;
    long         calls, later;
    char        *conf, *psp;
    merchant_t   m;
    const char  *p[2];

    s = silent_port(&port);

    /* sw_down: a PSP that accepts and never answers; open at 2 failures */
    psp = psp_at_port("sw_down", port, "breaker=2 breaker_open=60s");
    conf = sweeper_conf(str_printf("%s" SWEEPER_CONF, psp));

    merchant_new(&m);
    p[0] = m.id;
    due_checkouts(&m, "sw_down", 6);

    gateway_start(&sweepers[0], "sweeper-down", 2, conf);
    gateway_wait_ready(&sweepers[0], 10);
    wait_leader(&sweepers[0]);

    /* two look-ups time out (1 s each): the circuit opens */
    for (i = 0; i < 100; i++) {
        if (metric_of(&sweepers[0],
                      "payments_psp_circuit_state{psp=\"sw_down\"}") == 1)
        {
            break;
        }

        msleep(100);
    }

    cr_assert_eq(metric_of(&sweepers[0],
                           "payments_psp_circuit_state{psp=\"sw_down\"}"), 1,
                 "the sweeper's failed look-ups did not open the circuit");

    calls = silent_calls(s);
    cr_assert_eq(calls, 2, "%ld look-ups before the circuit opened", calls);

    /* open: rounds go on (retry=1s), the PSP gets no look-up */
    msleep(3000);
    later = silent_calls(s);
    cr_assert_eq(later, 0, "%ld look-ups while the circuit was open", later);

    cr_assert_gt(metric_of(&sweepers[0],
                           "payments_sweeper_lookups_total{psp=\"sw_down\","
                           "answer=\"circuit_open\"}"), 0);
    cr_assert_neq(atol(db_scalar("SELECT count(*) FROM checkout_sweeps "
                                 "WHERE merchant_id = $1 AND last_answer = "
                                 "'circuit open: not asked'", 1, p)), 0);

    stop_sweepers();
    db_exec("UPDATE checkouts SET status = 'FAILED' WHERE merchant_id = $1",
            1, p);
    db_exec("UPDATE sweeper_lease SET until = now() WHERE id = 1", 0, NULL);
    close(s);
}


/* The gateway's lease owner as its /metrics names it */
static char *
owner_of(const gateway_t *gw)
{
    char        *body;
    const char  *p, *q, *name = "payments_sweeper_owner_info{owner=\"";

    body = metrics_of(gw);
    p = strstr(body, name);
    cr_assert_not_null(p, "no payments_sweeper_owner_info in /metrics");
    p += strlen(name);
    q = strchr(p, '"');
    cr_assert_not_null(q);

    return strndup(p, (size_t) (q - p));
}


Test(solo_sweeper, the_lease_owner_carries_the_masters_random_instance_id,
     .description = "the owner was host:master pid, which two containers "
                    "running nginx as pid 1 under one host name share: "
                    "both swept at once; now a random instance id of the "
                    "master's follows")
{
    size_t   i;
    char     host[256], *owner, *prefix, *other;

    cr_assert_eq(gethostname(host, sizeof(host)), 0);
    for (i = 0; host[i]; i++) {
        host[i] = (char) tolower((unsigned char) host[i]);
    }

    start_sweeper(&sweepers[0], "sweeper-owner");
    wait_leader(&sweepers[0]);

    owner = db_scalar("SELECT owner FROM sweeper_lease WHERE id = 1", 0,
                      NULL);
    cr_assert_not_null(owner);

    /* host:pid:16 hex digits */
    prefix = str_printf("%s:%ld:", host, (long) sweepers[0].pid);
    cr_assert(strncmp(owner, prefix, strlen(prefix)) == 0,
              "owner \"%s\", not \"%s...\"", owner, prefix);
    cr_assert_eq(strlen(owner + strlen(prefix)), 16, "owner \"%s\"", owner);
    cr_assert_eq(strspn(owner + strlen(prefix), "0123456789abcdef"), 16,
                 "owner \"%s\"", owner);

    /* shown where an operator looks */
    cr_assert_str_eq(owner_of(&sweepers[0]), owner);
    cr_assert(file_contains(sweepers[0].error_log,
                            str_printf("took the sweeper lease as \"%s\"",
                                       owner)));

    /* another master: another id */
    start_sweeper(&sweepers[1], "sweeper-owner2");
    other = owner_of(&sweepers[1]);
    cr_assert_str_neq(strrchr(other, ':'), strrchr(owner, ':'),
                      "two masters with one instance id");
}


/*
 * Manual capture: an authorization the PSP holds for its dialect's
 * auth_window (7 days here) is named a day before its end (a log line,
 * once, and payments_authorizations_expiring), and released once past it:
 * the checkout FAILED with failure.code authorization_expired, its orders
 * FAILED, nothing booked, an alert line.  The hold is authorized through
 * the suite's gateway (the mock's webhook reaches it); the sweeper's
 * gateway serves the same PSP name.  Its age is moved in the database.
 */
Test(solo_sweeper, an_authorization_near_its_end_is_named_and_past_it_released)
{
    int           i;
    char         *co_id, *token, *log, *body, *failure;
    json_t       *co;
    resp_t       *r;
    merchant_t    m;
    const char   *params[2];

    merchant_new(&m);
    co_id = uid("co");
    params[0] = m.id;
    params[1] = co_id;

    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("mock_generic"));
    json_object_set_new(co, "capture", json_string("manual"));
    r = register_ok(&m, uid("key"), dump(co));
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "psp_token")));
    mock_session(token, "pay");

    for (i = 0; i < 100; i++) {
        if (strcmp(checkout_status(&m, co_id), "AUTHORIZED") == 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(checkout_status(&m, co_id), "AUTHORIZED");

    gateway_start(&sweepers[0], "sweeper-holds", 2,
                  str_printf("payments_database \"%s\";\n"
                             "payments_database_pool 2;\n%s%s",
                             pg_gateway_conninfo(),
                             gw_psp_conf("mock_generic", "generic"),
                             SWEEPER_CONF));
    gateway_wait_ready(&sweepers[0], 10);
    wait_leader(&sweepers[0]);

    /* a day before its end: named once, counted */
    (void) db_scalar("UPDATE checkouts SET authorized_at = now() - "
                     "interval '6 days 23 hours' WHERE merchant_id = $1 "
                     "AND checkout_id = $2 RETURNING 1", 2, params);

    for (i = 0; i < 100; i++) {
        if (db_scalar("SELECT hold_warned_at FROM checkouts WHERE "
                      "merchant_id = $1 AND checkout_id = $2", 2, params)
            != NULL)
        {
            break;
        }
        msleep(100);
    }

    log = str_printf("the authorization of checkout \"%s\" of merchant "
                     "\"%s\" (psp \"mock_generic\") expires in", co_id, m.id);
    for (i = 0; i < 50 && !file_contains(sweepers[0].error_log, log); i++) {
        msleep(100);
    }
    cr_expect(file_contains(sweepers[0].error_log, log), "no warning: %s",
              log);
    cr_expect_geq(gateway_metric(&sweepers[0],
                                 "payments_authorizations_expiring"), 1);
    cr_expect_str_eq(checkout_status(&m, co_id), "AUTHORIZED");

    /* past it: released, never booked */
    (void) db_scalar("UPDATE checkouts SET authorized_at = now() - "
                     "interval '8 days' WHERE merchant_id = $1 AND "
                     "checkout_id = $2 RETURNING 1", 2, params);

    for (i = 0; i < 150; i++) {
        if (strcmp(checkout_status(&m, co_id), "FAILED") == 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(checkout_status(&m, co_id), "FAILED");

    failure = db_scalar("SELECT failure_code::text FROM checkouts WHERE "
                        "merchant_id = $1 AND checkout_id = $2", 2, params);
    cr_expect_str_eq(failure, "authorization_expired");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_orders WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "status = 'FAILED'", 2, params), "2");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_entries WHERE "
                               "merchant_id = $1", 1, params), "0");

    body = str_printf("checkout \"%s\" of merchant \"%s\" (psp "
                      "\"mock_generic\") expired", co_id, m.id);
    for (i = 0; i < 50 && !file_contains(sweepers[0].error_log, body); i++) {
        msleep(100);
    }
    cr_expect(file_contains(sweepers[0].error_log, body), "no alert: %s",
              body);

    /* nothing left to capture */
    r = gateway_send(&sweepers[0], "POST",
                     str_printf("/v1/payments/%s_p1/capture", co_id), &m,
                     uid("key"), "{}");
    cr_expect_eq(r->status, 409, "%s", r->body);
}


/*
 * A capture in flight at the authorization's end: the sweeper does not
 * release the hold under it (postponed, a log line each round) but waits
 * for the PSP's word; the capture's webhook, 6 s late, books it, and the
 * next round releases only what was not captured.  The capture is never
 * refused (no FAILED -> SUCCESS for the status guard to stop).
 */
Test(solo_sweeper, a_capture_in_flight_at_the_holds_end_postpones_its_release)
{
    int           i;
    char         *co_id, *token, *log, *cap;
    json_t       *co;
    resp_t       *r;
    merchant_t    m;
    const char   *params[2];

    merchant_new(&m);
    co_id = uid("co");
    params[0] = m.id;
    params[1] = co_id;

    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("mock_generic"));
    json_object_set_new(co, "capture", json_string("manual"));
    r = register_ok(&m, uid("key"), dump(co));
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "psp_token")));
    mock_session(token, "pay");

    for (i = 0; i < 100; i++) {
        if (strcmp(checkout_status(&m, co_id), "AUTHORIZED") == 0) {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(checkout_status(&m, co_id), "AUTHORIZED");

    gateway_start(&sweepers[0], "sweeper-inflight", 2,
                  str_printf("payments_database \"%s\";\n"
                             "payments_database_pool 2;\n%s%s",
                             pg_gateway_conninfo(),
                             gw_psp_conf("mock_generic", "generic"),
                             SWEEPER_CONF));
    gateway_wait_ready(&sweepers[0], 10);
    wait_leader(&sweepers[0]);

    /* the capture's webhook comes 6 s after it */
    mock_fault(str_printf("{\"match\":\"%s:cp_\",\"webhook_delay_ms\":6000}",
                          m.id));
    r = gateway_send(&sweepers[0], "POST",
                     str_printf("/v1/payments/%s_p1/capture", co_id), &m,
                     uid("key"), "{\"amount\":\"4.00\"}");
    cr_assert_eq(r->status, 201, "%s", r->body);
    cap = strdup(json_string_value(json_object_get(resp_json(r),
                                                   "capture_id")));

    /* past its end with the capture in flight: several rounds go by */
    (void) db_scalar("UPDATE checkouts SET authorized_at = now() - "
                     "interval '8 days' WHERE merchant_id = $1 AND "
                     "checkout_id = $2 RETURNING 1", 2, params);
    msleep(2000);

    cr_assert_str_eq(checkout_status(&m, co_id), "AUTHORIZED",
                     "the hold was released under a capture in flight");
    cr_expect_null(db_scalar("SELECT hold_closed_at FROM checkouts WHERE "
                             "merchant_id = $1 AND checkout_id = $2", 2,
                             params));
    log = str_printf("the authorization of checkout \"%s\" of merchant "
                     "\"%s\" (psp \"mock_generic\") is past its end with a "
                     "capture or void in flight", co_id, m.id);
    cr_expect(file_contains(sweepers[0].error_log, log), "no line: %s", log);

    /* the PSP's word: booked; then what was not captured is released */
    for (i = 0; i < 150; i++) {
        if (db_scalar("SELECT hold_closed_at FROM checkouts WHERE "
                      "merchant_id = $1 AND checkout_id = $2", 2, params)
            != NULL)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_str_eq(db_scalar("SELECT status FROM captures WHERE "
                               "merchant_id = $1 AND capture_id = $2", 2,
                               (const char *[]) { m.id, cap }),
                     "SUCCEEDED");
    cr_expect_str_eq(db_scalar("SELECT string_agg(outcome, ',') FROM "
                               "webhook_events WHERE merchant_id = $1 AND "
                               "checkout_id = $2 AND kind = "
                               "'CAPTURE_SUCCEEDED'", 2, params), "applied");
    cr_expect_str_eq(checkout_status(&m, co_id), "SUCCESS");
    cr_expect_str_eq(db_scalar("SELECT string_agg(status::text || ':' || "
                               "amount_captured, ',' ORDER BY line_no) FROM "
                               "payment_orders WHERE merchant_id = $1 AND "
                               "checkout_id = $2", 2, params),
                     "SUCCESS:400,FAILED:0");
    cr_expect_str_eq(db_scalar("SELECT coalesce(sum(amount), 0) FROM "
                               "ledger_entries WHERE merchant_id = $1 AND "
                               "account LIKE 'psp\\_clearing:%'", 1, params),
                     "400");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM (SELECT 1 FROM "
                               "ledger_entries WHERE merchant_id = $1 GROUP "
                               "BY txn_id HAVING sum(amount) <> 0) x", 1,
                               params), "0");
}


/*
 * A saved method detached here whose PSP did not confirm the detach (the
 * merchant's DELETE met its 5xx) is sent the PSP's detach again by the
 * sweeper, in the background, under the merchant's request's key, until
 * the PSP confirms; every try that does not confirm is counted, and a
 * detach still unconfirmed after the 5th is alerted (a log line each try,
 * and the /metrics gauge).  The rows stand for what DELETE leaves behind:
 * detached, psp_detached_at NULL.
 */

static char *
detached_method(gateway_t *gw, const merchant_t *m, const char *token)
{
    int          i;
    char        *co_id, *pm;
    const char  *p[8];

    co_id = uid("co");
    (void) register_with(gw, (merchant_t *) m, co_id, "sw_stripe",
                         "\"webhook_never\":true");

    /* the gateway's shape of id, ^pm_[a-p]{24}$ */
    pm = str_printf("pm_%24s", "");
    for (i = 0; i < 24; i++) {
        pm[3 + i] = (char) ('a' + random() % 16);
    }

    p[0] = m->id;
    p[1] = pm;
    p[2] = test_seal(0, str_printf("payment_method:%s:%s", m->id, co_id),
                     token);
    p[3] = test_blind_index(0, "sw_stripe", token);
    p[4] = co_id;
    p[5] = str_printf("cu_%.24s", p[3]);
    p[6] = uid("evt");
    p[7] = "cus_Sweep";
    db_exec("INSERT INTO payment_methods (merchant_id, method_id, customer, "
            "customer_ref, psp, psp_customer, token_sealed, token_index, "
            "usage, recurring, status, checkout_id, event_id, detached_at) "
            "VALUES ($1, $2, 'cust_sweep', $6, 'sw_stripe', $8, $3, $4, "
            "'off_session', 'Subscription', 'detached', $5, $7, now())",
            8, p);

    return pm;
}


static char *
method_col(const merchant_t *m, const char *pm, const char *col)
{
    return db_scalar(str_printf("SELECT %s FROM payment_methods WHERE "
                                "merchant_id = $1 AND method_id = $2", col),
                     2, (const char *[]) { m->id, pm });
}


Test(solo_sweeper, an_unconfirmed_detach_is_sent_again_until_the_psp_confirms)
{
    int          i;
    char        *ok, *stuck, *tok_ok, *tok_stuck;
    merchant_t   m;

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-detach");
    wait_leader(&sweepers[0]);

    tok_ok = str_printf("pm_1Sweep%s", uid("t"));
    tok_stuck = str_printf("pm_1Stuck%s", uid("t"));
    ok = detached_method(&sweepers[0], &m, tok_ok);
    stuck = detached_method(&sweepers[0], &m, tok_stuck);

    /* the PSP fails the first two, and the other one every time */
    mock_fault(str_printf("{\"match\":\"%s:%s:detach\",\"fail_times\":2}",
                          m.id, ok));
    mock_fault(str_printf("{\"match\":\"%s:%s:detach\",\"fail_times\":100}",
                          m.id, stuck));

    for (i = 0; i < 150; i++) {
        if (method_col(&m, ok, "psp_detached_at") != NULL
            && atoi(method_col(&m, stuck, "psp_detach_tries")) >= 5
            && gateway_metric(&sweepers[0],
                              "payments_payment_methods_detach_unconfirmed")
               >= 1)
        {
            break;
        }

        msleep(100);
    }

    /* confirmed by the third send: recorded once, audited */
    cr_assert_not_null(method_col(&m, ok, "psp_detached_at"),
                       "the sweeper never had the detach confirmed");
    cr_expect_str_eq(method_col(&m, ok, "psp_detach_tries"), "2");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND action = "
                               "'payment_method:psp_detached' AND "
                               "detail->>'payment_method' = $2", 2,
                               (const char *[]) { m.id, ok }), "1");

    /* never confirmed: tried again and again, alerted */
    cr_expect_null(method_col(&m, stuck, "psp_detached_at"));
    cr_expect_geq(atoi(method_col(&m, stuck, "psp_detach_tries")), 5);
    cr_expect_geq(gateway_metric(&sweepers[0],
                                 "payments_payment_methods_detach_unconfirmed"),
                  1);
    cr_expect(file_contains(sweepers[0].error_log, "[alert]")
              && file_contains(sweepers[0].error_log,
                               str_printf("the detach of saved method \"%s\"",
                                          stuck)),
              "no alert for %s", stuck);

    /* the token never in a log line */
    cr_expect(!file_contains(sweepers[0].error_log, tok_ok));
    cr_expect(!file_contains(sweepers[0].error_log, tok_stuck));
}


/*
 * An Adyen method saved under merchant_account=TestMerchant (the mock's
 * vault keeps it under that account), detached here unconfirmed after a
 * reload that made sw_adyen's OtherMerchant: the sweeper's detach names
 * the account that saved it, which Adyen needs to find it (under another
 * it answers 422, read as already gone while the method is still there).
 */
Test(solo_sweeper, an_adyen_detach_is_sent_under_the_account_that_saved_it)
{
    int          i;
    char        *co_id, *pm, *token, *ref;
    size_t       j;
    json_t      *list, *it, *m_v;
    resp_t      *r;
    merchant_t   m;
    req_t        rq;
    const char  *p[8];
    const char  *h[] = { "Content-Type: application/json", NULL };

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-detach-account");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    (void) register_with(&sweepers[0], &m, co_id, "sw_adyen",
                         "\"webhook_never\":true");
    ref = str_printf("cu_%.24s", test_blind_index(0, "sw_adyen", co_id));

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url("/_control/payment_methods");
    rq.headers = h;
    rq.body = str_printf("{\"reference\":\"%s\",\"dialect\":\"adyen\","
                         "\"customer\":\"%s\",\"usage\":\"off_session\","
                         "\"merchant_account\":\"TestMerchant\"}",
                         nonce(&m, co_id), ref);
    rq.len = (size_t) -1;
    r = http(&rq);
    cr_assert_eq(r->status, 201, "mock vault: %ld %s", r->status, r->body);
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "token")));
    secret_used(token);

    gateway_reload(&sweepers[0], "merchant_account=TestMerchant",
                   "merchant_account=OtherMerchant");
    wait_leader(&sweepers[0]);

    pm = str_printf("pm_%24s", "");
    for (i = 0; i < 24; i++) {
        pm[3 + i] = (char) ('a' + random() % 16);
    }

    p[0] = m.id;
    p[1] = pm;
    p[2] = test_seal(0, str_printf("payment_method:%s:%s", m.id, co_id),
                     token);
    p[3] = test_blind_index(0, "sw_adyen", token);
    p[4] = co_id;
    p[5] = ref;
    p[6] = uid("evt");
    db_exec("INSERT INTO payment_methods (merchant_id, method_id, customer, "
            "customer_ref, psp, token_sealed, token_index, usage, recurring, "
            "status, checkout_id, event_id, detached_at) VALUES ($1, $2, "
            "'cust_sweep', $6, 'sw_adyen', $3, $4, 'off_session', "
            "'UnscheduledCardOnFile', 'detached', $5, $7, now())", 7, p);

    for (i = 0; i < 100 && method_col(&m, pm, "psp_detached_at") == NULL;
         i++)
    {
        msleep(100);
    }

    cr_assert_not_null(method_col(&m, pm, "psp_detached_at"),
                       "the sweeper never had the detach confirmed");

    r = http_get(mock_url("/_control/payment_methods"));
    cr_assert_eq(r->status, 200, "%s", r->body);
    list = json_object_get(resp_json(r), "payment_methods");
    m_v = NULL;

    json_array_foreach(list, j, it) {
        if (strcmp(json_string_value(json_object_get(it, "token")), token)
            == 0)
        {
            m_v = it;
        }
    }

    cr_assert_not_null(m_v);
    cr_expect_str_eq(json_string_value(json_object_get(m_v, "status")),
                     "detached", "the sweeper's detach did not name the "
                     "account that saved the method: still stored at Adyen");
}


/*
 * Off-session charges through a sweeping gateway, of a method saved at
 * sw_stripe, sw_adyen or sw_generic (its row as the save leaves it; the
 * mock's vault given the method by its control API).  One the card's
 * issuer wants the shopper for holds a hosted session: abandoned, the
 * sweeper finds it expired and fails it as any hosted checkout.  One the
 * PSP took holds its payment's id: never looked up as a session nor
 * failed by an expiry; where the PSP has a payment look-up (Stripe's
 * payment intent, the generic GET /payments/{id}) the sweeper asks it and
 * books what it says once, as the webhook would; Adyen's Checkout has no
 * such look-up, so its webhook books it (or the overdue alert lists it).
 */

static char *
saved_at(gateway_t *gw, const merchant_t *m, const char *psp,
    const char *dialect)
{
    int          i;
    char        *co_id, *pm, *token, *ref;
    resp_t      *r;
    const char  *p[9];
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", NULL };

    co_id = uid("co");
    (void) register_with(gw, (merchant_t *) m, co_id, psp,
                         "\"webhook_never\":true");

    /* the PSP's customer: Stripe's cus_ (the gateway keeps it), the
     * others' shopper reference (ours, cu_) */
    ref = str_printf("cu_%.24s", test_blind_index(0, psp, co_id));

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url("/_control/payment_methods");
    rq.headers = h;
    rq.body = str_printf("{\"reference\":\"%s\",\"dialect\":\"%s\","
                         "\"customer\":\"%s\",\"usage\":\"off_session\"}",
                         nonce(m, co_id), dialect,
                         strcmp(dialect, "stripe") == 0
                         ? str_printf("cus_%.14s", ref + 3) : ref);
    rq.len = (size_t) -1;
    r = http(&rq);
    cr_assert_eq(r->status, 201, "mock vault: %ld %s", r->status, r->body);
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "token")));
    secret_used(token);

    pm = str_printf("pm_%24s", "");
    for (i = 0; i < 24; i++) {
        pm[3 + i] = (char) ('a' + random() % 16);
    }

    p[0] = m->id;
    p[1] = pm;
    p[2] = test_seal(0, str_printf("payment_method:%s:%s", m->id, co_id),
                     token);
    p[3] = test_blind_index(0, psp, token);
    p[4] = co_id;
    p[5] = ref;
    p[6] = uid("evt");
    p[7] = psp;
    p[8] = strcmp(dialect, "stripe") == 0
           ? str_printf("cus_%.14s", ref + 3) : NULL;
    db_exec("INSERT INTO payment_methods (merchant_id, method_id, customer, "
            "customer_ref, psp, psp_customer, token_sealed, token_index, "
            "usage, recurring, checkout_id, event_id) VALUES ($1, $2, "
            "'cust_sweep', $6, $8, $9, $3, $4, 'off_session', "
            "'UnscheduledCardOnFile', $5, $7)", 9, p);

    return pm;
}


static char *
saved_generic(gateway_t *gw, const merchant_t *m)
{
    return saved_at(gw, m, "sw_generic", "generic");
}


static resp_t *
charge_faulted(gateway_t *gw, const merchant_t *m, const char *pm,
    const char *co_id, const char *outcome, const char *fault)
{
    json_t      *body;
    req_t        rq;
    resp_t      *r;
    const char  *h[] = { "Content-Type: application/json", NULL };

    mock_fault(str_printf("{\"match\":\"%s\",%s}", nonce(m, co_id), fault));

    if (outcome != NULL) {
        memset(&rq, 0, sizeof(req_t));
        rq.method = "POST";
        rq.url = mock_url("/_control/charges");
        rq.headers = h;
        rq.body = str_printf("{\"reference\":\"%s\",\"outcome\":\"%s\"}",
                             nonce(m, co_id), outcome);
        rq.len = (size_t) -1;
        r = http(&rq);
        cr_assert_eq(r->status, 200, "%s", r->body);
    }

    body = checkout_new(co_id, 1);
    json_object_del(body, "psp");
    json_object_set_new(body, "payment_method", json_string(pm));
    json_object_set_new(body, "off_session", json_true());

    return gateway_send(gw, "POST", PATH_PAYMENTS, (merchant_t *) m,
                        uid("key"), dump(body));
}


static resp_t *
charge_with(gateway_t *gw, const merchant_t *m, const char *pm,
    const char *co_id, const char *outcome)
{
    return charge_faulted(gw, m, pm, co_id, outcome,
                          "\"webhook_never\":true");
}

/* The charge's books: ledger transactions, and the webhook_events rows of
 * that outcome and source */
static void
expect_charge_booked_by_sweeper(const merchant_t *m, const char *co_id,
    const char *psp)
{
    const char  *p[3] = { m->id, co_id, psp };

    cr_assert_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND psp = $3 AND source = 'sweeper' "
                               "AND outcome = 'applied'", 3, p), "1");
    cr_assert_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND source LIKE 'sweeper:' || $3 || ':%'",
                               3, p), "1", "its one order booked once");
    cr_assert_str_eq(db_scalar("SELECT coalesce(sum(e.amount), 0) "
                               "FROM ledger_entries e "
                               "JOIN ledger_transactions t "
                               "USING (merchant_id, txn_id) "
                               "WHERE t.merchant_id = $1 "
                               "AND t.checkout_id = $2", 2, p), "0");
    cr_assert_not_null(db_scalar("SELECT psp_payment_ref FROM checkouts "
                                 "WHERE merchant_id = $1 "
                                 "AND checkout_id = $2", 2, p),
                       "the payment to refund later");
}


Test(solo_sweeper, a_taken_stripe_charge_is_looked_up_and_booked_once)
{
    char        *pm, *co_id, *pi, *ev, *secret;
    req_t        rq;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2], *h[3];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-pi");
    wait_leader(&sweepers[0]);

    pm = saved_at(&sweepers[0], &m, "sw_stripe", "stripe");

    /* taken by the PSP, its webhook lost */
    co_id = uid("ren");
    r = charge_with(&sweepers[0], &m, pm, co_id, NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "status")),
                     "EXECUTING");
    pi = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "psp_token")));
    secret_used(pi);

    cr_assert_str_eq(wait_decided(&m, co_id, 10), "SUCCESS",
                     "the sweeper did not book the taken charge");
    expect_charge_booked_by_sweeper(&m, co_id, "sw_stripe");

    /* its webhook, late: known, books nothing more */
    p[0] = m.id;
    p[1] = co_id;
    ev = str_printf("{\"id\":\"%s\",\"object\":\"event\","
                    "\"type\":\"payment_intent.succeeded\","
                    "\"created\":%ld,\"livemode\":false,\"data\":{\"object\":"
                    "{\"id\":\"%s\",\"object\":\"payment_intent\","
                    "\"amount\":%s,\"amount_received\":%s,"
                    "\"currency\":\"%s\",\"status\":\"succeeded\","
                    "\"metadata\":{\"charge\":\"%s\"}}}}",
                    uid("evt"), (long) time(NULL), pi,
                    db_scalar("SELECT amount_total::text FROM checkouts "
                              "WHERE merchant_id = $1 AND checkout_id = $2",
                              2, p),
                    db_scalar("SELECT amount_total::text FROM checkouts "
                              "WHERE merchant_id = $1 AND checkout_id = $2",
                              2, p),
                    db_scalar("SELECT lower(currency) FROM checkouts "
                              "WHERE merchant_id = $1 AND checkout_id = $2",
                              2, p),
                    nonce(&m, co_id));

    secret = file_read(env("PAY_TEST_WEBHOOK_SECRET"), NULL);
    cr_assert_not_null(secret);

    h[0] = "Content-Type: application/json";
    h[1] = stripe_signature(secret, (long) time(NULL), ev);
    h[2] = NULL;

    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = str_printf("%s/v1/webhooks/sw_stripe", sweepers[0].origin);
    rq.headers = h;
    rq.body = ev;
    rq.len = (size_t) -1;
    r = http(&rq);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    cr_expect_str_eq(db_scalar("SELECT string_agg(outcome, ',') FROM "
                               "webhook_events WHERE merchant_id = $1 "
                               "AND checkout_id = $2 AND source = 'webhook'",
                               2, p), "already");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "1", "booked twice");
}


/*
 * A manual-capture charge the PSP took, its webhook lost: Stripe's intent
 * requires_capture (with the charge's metadata.nonce), and the generic
 * payment succeeded, are its hold: the sweeper moves the checkout to
 * AUTHORIZED with the PSP's payment noted, booking nothing.
 */
static void
held_charge_looked_up(const char *psp, const char *dialect,
    const char *ref_like)
{
    char        *pm, *co_id;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;
    const char  *p[3];

    merchant_new(&m);
    pm = saved_at(&sweepers[0], &m, psp, dialect);

    co_id = uid("ren");
    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(&m, co_id)));
    body = checkout_new(co_id, 1);
    json_object_del(body, "psp");
    json_object_set_new(body, "payment_method", json_string(pm));
    json_object_set_new(body, "off_session", json_true());
    json_object_set_new(body, "capture", json_string("manual"));

    r = gateway_send(&sweepers[0], "POST", PATH_PAYMENTS, &m, uid("key"),
                     dump(body));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    cr_assert_str_eq(wait_decided(&m, co_id, 10), "AUTHORIZED",
                     "%s: the sweeper did not find the charge's hold", psp);

    p[0] = m.id;
    p[1] = co_id;
    p[2] = ref_like;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "0", "%s: a hold is not booked", psp);
    cr_expect_str_eq(db_scalar("SELECT (psp_payment_ref LIKE $3)::text "
                               "FROM checkouts WHERE merchant_id = $1 AND "
                               "checkout_id = $2", 3, p), "true",
                     "%s: the payment to capture is not noted", psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM webhook_events WHERE "
                               "merchant_id = $1 AND checkout_id = $2 AND "
                               "source = 'sweeper' AND outcome = "
                               "'applied'", 2, p), "1", "%s", psp);
}


Test(solo_sweeper, a_held_manual_charge_is_looked_up_as_authorized)
{
    start_sweeper(&sweepers[0], "sweeper-pim");
    wait_leader(&sweepers[0]);

    held_charge_looked_up("sw_stripe", "stripe", "pi\\_%");
    held_charge_looked_up("sw_generic", "generic", "pay\\_%");
}


/* The off-session charge of pm as checkout co_id whose every answer is
 * lost, its webhooks never sent (the mock's rule, whose id is returned):
 * sent once under *key, its body *body, answered 5xx. */
static long
lost_charge_sent(const merchant_t *m, const char *pm, const char *co_id,
    const char *psp, char **key, char **body)
{
    long     rule;
    json_t  *co;
    resp_t  *r;

    rule = mock_fault(str_printf("{\"match\":\"%s\",\"drop_after_register\":1,"
                                 "\"drop_replays\":50,\"webhook_never\":true}",
                                 nonce(m, co_id)));

    co = checkout_new(co_id, 1);
    json_object_del(co, "psp");
    json_object_set_new(co, "payment_method", json_string(pm));
    json_object_set_new(co, "off_session", json_true());
    *body = dump(co);
    *key = uid("key");

    r = gateway_send(&sweepers[0], "POST", PATH_PAYMENTS, (merchant_t *) m,
                     *key, *body);
    cr_assert_geq(r->status, 500, "%s: the test wants a charge whose answer "
                  "never came: %ld %s", psp, r->status, r->body);

    return rule;
}


/*
 * An off-session charge the PSP took whose every answer was lost (the
 * mock drops the connection after the charge, and every replay of it),
 * its webhook lost too: the request ends 5xx with no payment id stored.
 * The sweeper asks the PSP for the payment made under the charge's nonce
 * (Stripe's search by metadata.charge, the generic ?reference=) and
 * books it once, as the look-up by its id would; the shop's retry under
 * its key then finds it decided (409 duplicate_order, nothing sent), and
 * the PSP holds one charge.
 */
static void
lost_charge_looked_up(const char *psp, const char *dialect,
    const char *ref_like)
{
    char        *pm, *co_id, *key, *body, *ref;
    resp_t      *r;
    merchant_t   m;
    long         sessions, requests;
    const char  *p[3];

    merchant_new(&m);
    pm = saved_at(&sweepers[0], &m, psp, dialect);

    co_id = uid("ren");
    (void) lost_charge_sent(&m, pm, co_id, psp, &key, &body);

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS",
                     "%s: the sweeper did not find the charge by its nonce",
                     psp);
    expect_charge_booked_by_sweeper(&m, co_id, psp);

    p[0] = m.id;
    p[1] = co_id;
    p[2] = ref_like;
    ref = db_scalar("SELECT psp_payment_ref FROM checkouts WHERE "
                    "merchant_id = $1 AND checkout_id = $2 AND "
                    "psp_payment_ref LIKE $3", 3, p);
    cr_assert_not_null(ref, "%s: the payment found is not the checkout's",
                       psp);

    /* shown as the checkout's PSP id, as an answered charge's is */
    r = gateway_send(&sweepers[0], "GET",
                     str_printf("/v1/checkouts/%s", co_id), &m, NULL, NULL);
    cr_assert_eq(r->status, 200, "%s: %s", psp, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")),
                     ref, "%s: %s", psp, r->body);

    /* the shop's retry of a checkout decided meanwhile: 409
     * duplicate_order naming it as it is now (API.md), nothing sent */
    r = gateway_send(&sweepers[0], "POST", PATH_PAYMENTS, &m, key, body);
    cr_expect_eq(r->status, 409, "%s: %ld %s", psp, r->status, r->body);
    cr_expect_str_eq(json_string_value(json_object_get(resp_json(r),
                                                       "code")),
                     "duplicate_order", "%s: %s", psp, r->body);
    cr_expect_not_null(strstr(r->body, "is SUCCESS"), "%s: %s", psp,
                       r->body);

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_expect_eq(sessions, 1, "%s: %ld charges at the PSP", psp, sessions);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "1", "%s: booked twice", psp);
}


Test(solo_sweeper, a_charge_whose_every_answer_was_lost_is_found_by_its_nonce,
     .timeout = 90)
{
    start_sweeper(&sweepers[0], "sweeper-lost-charge");
    wait_leader(&sweepers[0]);

    lost_charge_looked_up("sw_stripe", "stripe", "pi\\_%");
    lost_charge_looked_up("sw_generic", "generic", "pay\\_%");
}


/* A new merchant *m whose method saved at psp is charged as checkout
 * *co_id, a charge whose issuer wants the shopper, sent as
 * lost_charge_sent sends it (its rule's id returned) */
static long
lost_auth_charge_sent(merchant_t *m, const char *psp, const char *dialect,
    char **co_id, char **key, char **body)
{
    char    *pm;
    resp_t  *r;

    merchant_new(m);
    pm = saved_at(&sweepers[0], m, psp, dialect);

    *co_id = uid("ren");
    r = mock_post("/_control/charges",
                  str_printf("{\"reference\":\"%s\",\"outcome\":"
                             "\"authentication_required\"}",
                             nonce(m, *co_id)));
    cr_assert_eq(r->status, 200, "%s", r->body);

    return lost_charge_sent(m, pm, *co_id, psp, key, body);
}


/*
 * An off-session charge that needs the shopper, whose every answer was
 * lost: the PSP holds a payment that wants the shopper (Stripe's intent
 * requires_payment_method with authentication_required, the generic
 * requires_action), and the shopper was never asked.  The sweeper's
 * look-up by its nonce must not decide it: nothing was taken, and the
 * shop's retry, once the PSP answers, opens the page.  Then the shopper
 * pays there: booked once (Adyen's session, paid, is found by the
 * sessionResult of the shopper's way back, not by this sweeper alone:
 * its page opened is the end here; Adyen has no look-up by nonce).
 */
static void
lost_auth_charge_waits(const char *psp, const char *dialect)
{
    char        *co_id, *key, *body, *st, *session;
    long         rule;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    rule = lost_auth_charge_sent(&m, psp, dialect, &co_id, &key, &body);

    /* the sweeper's rounds ask a charge 1 s old, every 300 ms */
    st = wait_decided(&m, co_id, 4);
    p[0] = m.id;
    p[1] = co_id;
    cr_assert_str_eq(st, "EXECUTING", "%s: decided by the sweeper (%s) while "
                     "the shopper was never asked", psp,
                     db_scalar("SELECT coalesce(failure_code::text, '-') FROM "
                               "checkouts WHERE merchant_id = $1 AND "
                               "checkout_id = $2", 2, p));

    mock_fault_remove(rule);
    r = gateway_send(&sweepers[0], "POST", PATH_PAYMENTS, &m, key, body);
    cr_assert_eq(r->status, 202, "%s: the shop's retry: %ld %s", psp,
                 r->status, r->body);
    cr_assert(json_is_string(json_object_get(resp_json(r), "pay_url")),
              "%s: no pay link: %s", psp, r->body);
    session = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));
    if (strcmp(dialect, "adyen") == 0) {
        return;
    }

    mock_session(session, "pay");
    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS", "%s", psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "1", "%s: not booked once", psp);
}


Test(solo_sweeper, a_lost_charge_needing_the_shopper_is_not_decided_by_the_sweeper,
     .timeout = 90)
{
    start_sweeper(&sweepers[0], "sweeper-lost-auth");
    wait_leader(&sweepers[0]);

    lost_auth_charge_waits("sw_stripe", "stripe");
    lost_auth_charge_waits("sw_generic", "generic");
    lost_auth_charge_waits("sw_adyen", "adyen");
}


/*
 * The same charge, and the shop never comes back for it: no page was
 * made, the PSP took nothing.  The sweeper leaves it open until the
 * checkout's expires_at and grace= have passed, then fails it `expired`,
 * as a page left alone, booking nothing; the shop's retry after that is
 * 409 duplicate_order, and the PSP made no page.  (Adyen has no look-up:
 * its charge waits for its webhook, the overdue line past alert=.)
 */
static void
lost_auth_charge_expires(const char *psp, const char *dialect)
{
    char        *co_id, *key, *body;
    long         rule, sessions, requests;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    rule = lost_auth_charge_sent(&m, psp, dialect, &co_id, &key, &body);

    p[0] = m.id;
    p[1] = co_id;
    cr_expect(wait_row("SELECT 1 FROM checkout_sweeps WHERE merchant_id = $1"
                       " AND checkout_id = $2 AND last_answer = 'waiting "
                       "for the shopper''s page'", p, 10),
              "%s: not found waiting for the shopper's page (%s)", psp,
              db_scalar("SELECT coalesce(last_answer, '-') FROM "
                        "checkout_sweeps WHERE merchant_id = $1 AND "
                        "checkout_id = $2", 2, p));
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING",
                     "%s: decided before its expiry", psp);

    /* its time has run out (as if the hour had passed) */
    db_exec("UPDATE checkouts SET expires_at = now() - interval '2 s' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "FAILED", "%s", psp);
    cr_expect_str_eq(db_scalar("SELECT failure_code::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "expired", "%s", psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM webhook_events "
                               "WHERE merchant_id = $1 AND checkout_id = $2 "
                               "AND source = 'sweeper' AND outcome = "
                               "'applied' AND event_id LIKE 'lookup:%:expired'",
                               2, p), "1", "%s", psp);
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "0", "%s: booked", psp);

    mock_fault_remove(rule);
    r = gateway_send(&sweepers[0], "POST", PATH_PAYMENTS, &m, key, body);
    expect_problem(r, 409, "duplicate_order");

    mock_registrations(nonce(&m, co_id), &sessions, &requests);
    cr_expect_eq(sessions, 1, "%s: %ld charges or pages at the PSP", psp,
                 sessions);
}


Test(solo_sweeper, a_lost_charge_needing_the_shopper_never_retried_expires,
     .timeout = 90)
{
    start_sweeper(&sweepers[0], "sweeper-lost-auth-ends");
    wait_leader(&sweepers[0]);

    lost_auth_charge_expires("sw_stripe", "stripe");
    lost_auth_charge_expires("sw_generic", "generic");
}


Test(solo_sweeper, a_taken_adyen_charge_waits_for_its_webhook)
{
    int          i;
    char        *pm, *co_id;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-adyen-charge");
    wait_leader(&sweepers[0]);

    pm = saved_at(&sweepers[0], &m, "sw_adyen", "adyen");

    co_id = uid("ren");
    r = charge_with(&sweepers[0], &m, pm, co_id, NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    /* a few rounds later: Adyen has no look-up of a payment, and no
     * session to look up: never asked about, never failed */
    for (i = 0; i < 25; i++) {
        msleep(100);
    }

    p[0] = m.id;
    p[1] = co_id;
    cr_expect_str_eq(checkout_status(&m, co_id), "EXECUTING");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM checkout_sweeps WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2, p),
                     "0", "the sweeper asked Adyen about a payment");
}


Test(solo_sweeper, off_session_charges_are_swept_as_their_state_says)
{
    char        *pm, *sca, *taken, *session;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-offsession");
    wait_leader(&sweepers[0]);

    pm = saved_generic(&sweepers[0], &m);

    /* the shopper is asked for, and never comes */
    sca = uid("ren");
    r = charge_with(&sweepers[0], &m, pm, sca, "authentication_required");
    cr_assert_eq(r->status, 202, "%ld %s", r->status, r->body);
    session = strdup(json_string_value(json_object_get(resp_json(r),
                                                       "psp_token")));

    /* taken by the PSP, its webhook lost */
    taken = uid("ren");
    r = charge_with(&sweepers[0], &m, pm, taken, NULL);
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    mock_session(session, "expire");

    cr_assert_str_eq(wait_decided(&m, sca, 15), "FAILED");
    p[0] = m.id;
    p[1] = sca;
    cr_expect_str_eq(db_scalar("SELECT failure_code::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "expired");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "0");

    /* looked up as the payment it is (GET /payments/{id}), never as a
     * session: booked once */
    cr_assert_str_eq(wait_decided(&m, taken, 4), "SUCCESS");
    expect_charge_booked_by_sweeper(&m, taken, "sw_generic");
}


/*
 * A save without a charge ("mode": "setup") whose PSP events never come:
 * the shopper completes the page, the events are lost.  The sweeper looks
 * the session up and, where the answer names the stored method (Stripe's
 * setup intent, the generic look-up's payment_method), saves it as the
 * event would: the setup SUCCESS with a method to charge.  Adyen's
 * session result names none: the setup stays EXECUTING until its session
 * expires here, then FAILED.
 */

static char *
setup_with(gateway_t *gw, merchant_t *m, const char *co_id, const char *psp,
    const char *customer)
{
    char     *token;
    json_t   *co, *j;
    resp_t   *r;

    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(m, co_id)));

    co = checkout_new(co_id, 1);
    json_object_del(co, "payment_orders");
    json_object_set_new(co, "psp", json_string(psp));
    json_object_set_new(co, "mode", json_string("setup"));
    json_object_set_new(co, "currency", json_string("USD"));
    json_object_set_new(co, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", customer,
                                  "usage", "off_session",
                                  "shopper_agreed", 1));

    r = gateway_send(gw, "POST", PATH_PAYMENTS, m, uid("key"), dump(co));
    cr_assert_eq(r->status, 201, "setup: %ld %s", r->status, r->body);

    j = resp_json(r);
    token = strdup(json_string_value(json_object_get(j, "psp_token")));
    secret_used(token);

    return token;
}


static void
setup_saved_by_sweeper(const char *psp)
{
    char        *co_id, *token, *customer;
    json_t      *list;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-setup");
    wait_leader(&sweepers[0]);

    co_id = uid("setup");
    customer = uid("cust");
    token = setup_with(&sweepers[0], &m, co_id, psp, customer);
    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS",
                     "%s: the setup was not done by the sweeper", psp);

    p[0] = m.id;
    p[1] = co_id;
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $1 AND checkout_id = $2 "
                               "AND detached_at IS NULL", 2, p), "1");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND checkout_id = $2 "
                               "AND action = 'sweeper:saved'", 2, p), "1");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "0");
    cr_expect_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1, p),
                     "true");

    /* listed to the shop, the PSP's token in no answer nor log line */
    r = gateway_send(&sweepers[0], "GET",
                     str_printf("/v1/payment_methods?customer=%s", customer),
                     &m, NULL, NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    list = json_object_get(resp_json(r), "data");
    cr_expect_eq(json_array_size(list), 1, "%s", r->body);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_array_get(list, 0), "checkout_id")), co_id);
}


Test(solo_sweeper, a_stripe_setup_whose_events_never_came_saves_its_method)
{
    setup_saved_by_sweeper("sw_stripe");
}


Test(solo_sweeper, a_generic_setup_whose_events_never_came_saves_its_method)
{
    setup_saved_by_sweeper("sw_generic");
}


/*
 * A Stripe payment that saves the shopper's method, its events never
 * sent: the session look-up (its payment intent expanded) pays the
 * checkout and names the method the intent set up, and the sweeper keeps
 * it as payment_intent.succeeded would (event id "<the payment's>:
 * payment_method"): the shop can charge it.
 */
Test(solo_sweeper, a_stripe_payment_that_saved_its_method_unheard_keeps_it)
{
    char        *co_id, *token, *customer;
    json_t      *co, *list;
    resp_t      *r;
    merchant_t   m;
    const char  *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-save-pay");
    wait_leader(&sweepers[0]);

    co_id = uid("co");
    customer = uid("cust");
    p[0] = m.id;
    p[1] = co_id;

    mock_fault(str_printf("{\"match\":\"%s\",\"webhook_never\":true}",
                          nonce(&m, co_id)));
    co = checkout_new(co_id, 2);
    json_object_set_new(co, "psp", json_string("sw_stripe"));
    json_object_set_new(co, "save_payment_method",
                        json_pack("{ss ss sb}", "customer", customer,
                                  "usage", "off_session",
                                  "shopper_agreed", 1));
    r = gateway_send(&sweepers[0], "POST", PATH_PAYMENTS, &m, uid("key"),
                     dump(co));
    cr_assert_eq(r->status, 201, "registration: %ld %s", r->status, r->body);
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "psp_token")));
    secret_used(token);
    mock_session(token, "pay");

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "SUCCESS");
    expect_swept(&m, co_id, "sw_stripe", "SUCCESS");

    cr_assert(wait_row("SELECT 1 FROM payment_methods WHERE merchant_id = $1 "
                       "AND checkout_id = $2 AND detached_at IS NULL", p, 10),
              "the method the payment saved is kept");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM audit_log WHERE "
                               "merchant_id = $1 AND checkout_id = $2 "
                               "AND action = 'sweeper:saved'", 2, p), "1");
    cr_expect_str_eq(db_scalar("SELECT pay_audit_verify($1)::text", 1, p),
                     "true");

    r = gateway_send(&sweepers[0], "GET",
                     str_printf("/v1/payment_methods?customer=%s", customer),
                     &m, NULL, NULL);
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    list = json_object_get(resp_json(r), "data");
    cr_expect_eq(json_array_size(list), 1, "%s", r->body);
}


Test(solo_sweeper, an_adyen_setup_completed_without_its_method_fails_at_expiry)
{
    char        *co_id, *token;
    req_t        rq;
    resp_t      *r;
    merchant_t   m;
    const char  *loc, *p[2];

    merchant_new(&m);
    start_sweeper(&sweepers[0], "sweeper-setup-adyen");
    wait_leader(&sweepers[0]);

    co_id = uid("setup");
    token = setup_with(&sweepers[0], &m, co_id, "sw_adyen", uid("cust"));

    /* the shopper completes it and comes back with the session's result;
     * neither AUTHORISATION nor RECURRING_CONTRACT ever comes */
    memset(&rq, 0, sizeof(req_t));
    rq.method = "POST";
    rq.url = mock_url(str_printf("/pay/%s/pay", url_escape(token)));
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert_eq(r->status, 303, "%ld %s", r->status, r->body);
    loc = resp_header(r, "Location");
    cr_assert_not_null(loc);
    cr_assert_not_null(strstr(loc, "sessionResult="), "%s", loc);

    r = gateway_get(&sweepers[0], url_path(loc));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);

    /* "completed" names no method: not done, waiting for the expiry */
    p[0] = m.id;
    p[1] = co_id;
    msleep(2500);
    cr_assert_str_eq(checkout_status(&m, co_id), "EXECUTING",
                     "a setup done without a method");
    cr_assert_str_eq(db_scalar("SELECT last_answer FROM checkout_sweeps "
                               "WHERE merchant_id = $1 "
                               "AND checkout_id = $2", 2, p),
                     "completed at the psp, its method not known");

    db_exec("UPDATE checkouts SET expires_at = now() - interval '2 s' "
            "WHERE merchant_id = $1 AND checkout_id = $2", 2, p);

    cr_assert_str_eq(wait_decided(&m, co_id, 15), "FAILED");
    cr_expect_str_eq(db_scalar("SELECT failure_code::text FROM checkouts "
                               "WHERE merchant_id = $1 AND checkout_id = $2",
                               2, p), "expired");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM payment_methods WHERE "
                               "merchant_id = $1 AND checkout_id = $2", 2, p),
                     "0");
}
