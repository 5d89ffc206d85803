/*
 * The e2e harness: where the money features meet (harness_compose.h).
 */

#include "harness.h"
#include "harness_compose.h"

#include <pthread.h>
#include <stdarg.h>
#include <time.h>


const char *const  comp_story_names[COMP_NSTORIES] = {
    "review approval of a manual checkout",
    "disputes on partly captured and refunded checkouts",
    "a capture reversed after its success",
    "the sweeper's release racing a pending capture",
    "a cancel racing its registration in flight"
};

const char *const  comp_check_names[COMP_NCHECKS] = {
    "captured", "refunded", "disputed", "order", "moved", "once", "forward",
    "balanced", "wallets", "audit", "webhooks", "story"
};


/* a failed check: a line on stderr whatever Criterion's verbosity (its
 * warnings and errors are the caller's asserts), and counted */
static void comp_fail(comp_run_t *run, int chk, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
comp_fail(comp_run_t *run, int chk, const char *fmt, ...)
{
    va_list  ap;
    char     line[1024];

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    run->checks[chk]++;
    if (run->quiet) {
        return;
    }
    fprintf(stderr, "[----] compose%s: check %s: %s\n",
            run->chaos ? " (chaos)" : "", comp_check_names[chk], line);
}


static const char *
comp_psp(int d)
{
    return d == 0 ? env("PAY_TEST_PSP") : d == 1 ? "mock_adyen"
                                                 : "mock_generic";
}


/* the stories a dialect has: the mock reverses Adyen's and the generic
 * PSP's captures only (Stripe's API has no such event) */
static int
comp_has(int story, int d)
{
    return story != COMP_REVERSED || d != 0;
}


static void
comp_subject(comp_run_t *run, const char *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < run->nsubjects; i++) {
        if (strcmp(run->subjects[i], s) == 0) {
            return;
        }
    }

    if (run->nsubjects < COMP_SUBJECTS) {
        run->subjects[run->nsubjects++] = strdup(s);
    }
}


static resp_t *
comp_mock(const char *method, const char *path, const char *json)
{
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = method;
    rq.url = mock_url(path);
    rq.headers = h;
    rq.body = json ? json : "";
    rq.len = json ? (size_t) -1 : 0;

    return http(&rq);
}


/* A shop's POST, retried under the same key while the answer is a 5xx or
 * none (what API.md tells a shop to do), at most 8 times. */
static resp_t *
comp_shop(comp_run_t *run, const merchant_t *m, const char *path,
    const char *key, const char *body)
{
    int          i;
    req_t        rq;
    resp_t      *r;
    const char  *h[4];

    h[0] = str_printf("Authorization: Bearer %s", m->key);
    h[1] = str_printf("Idempotency-Key: %s", key ? key : uid("cmk"));
    h[2] = "Content-Type: application/json";
    h[3] = NULL;

    rq.method = "POST";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    r = NULL;
    for (i = 0; i < 8; i++) {
        run->steps++;
        r = http(&rq);
        if (r->status != 0 && r->status < 500) {
            break;
        }
        msleep(250);
    }

    return r;
}


static char *
comp_po(const comp_co_t *c, int order)
{
    return str_printf("%s_p%d", c->co, order);
}


static resp_t *
comp_capture(comp_run_t *run, int story, const comp_co_t *c, int order,
    const char *amount)
{
    return comp_shop(run, &run->m[story],
                     str_printf("/v1/payments/%s/capture", comp_po(c, order)),
                     NULL, amount ? str_printf("{\"amount\":\"%s\"}", amount)
                                  : "{}");
}


static resp_t *
comp_void(comp_run_t *run, int story, const comp_co_t *c, int order)
{
    return comp_shop(run, &run->m[story],
                     str_printf("/v1/payments/%s/void", comp_po(c, order)),
                     NULL, "{}");
}


static resp_t *
comp_refund(comp_run_t *run, int story, const comp_co_t *c, int order,
    const char *amount)
{
    return comp_shop(run, &run->m[story],
                     str_printf("/v1/payments/%s/refunds", comp_po(c, order)),
                     NULL, str_printf("{\"amount\":\"%s\",\"reason\":\"cmp\"}",
                                      amount));
}


/* the checkout's body: orders 10.00 (seller_1) and 5.00 (seller_2), USD */
static char *
comp_body(const comp_co_t *c, int manual, int review)
{
    json_t  *body;

    body = checkout_new(c->co, 2);
    json_object_set_new(body, "psp", json_string(comp_psp(c->dialect)));
    if (manual) {
        json_object_set_new(body, "capture", json_string("manual"));
    }
    if (review) {
        json_object_set_new(json_object_get(body, "buyer_info"), "email",
                            json_string("risk-review@example.com"));
    }

    return dump(body);
}


static void
comp_took(comp_run_t *run, comp_co_t *c, resp_t *r)
{
    const char  *t;

    t = r->status == 201 && r->len > 0
        ? json_string_value(json_object_get(resp_json(r), "psp_token"))
        : NULL;
    if (t != NULL && c->token == NULL) {
        c->token = strdup(t);
        secret_used(c->token);
        secret_used(url_param(json_string_value(json_object_get(
                                  resp_json(r), "pay_url")), "t"));
        comp_subject(run, c->token);
    }
}


static void
comp_register(comp_run_t *run, int story, comp_co_t *c, int manual)
{
    resp_t  *r;

    r = comp_shop(run, &run->m[story], PATH_PAYMENTS, uid("cmr"),
                  comp_body(c, manual, 0));
    cr_assert_eq(r->status, 201, "compose: %s: registration: %ld %s",
                 comp_story_names[story], r->status, r->body);
    comp_took(run, c, r);
}


static long
comp_pay(comp_run_t *run, comp_co_t *c)
{
    resp_t  *r;

    if (c->token == NULL) {
        return 0;
    }

    run->steps++;
    r = comp_mock("POST", str_printf("/_control/sessions/%s/pay",
                                     url_escape(c->token)), NULL);
    c->paid_status = r->status;

    return r->status;
}


static char *
comp_q(const merchant_t *m, const char *sql, const char *arg)
{
    const char  *p[2];

    p[0] = m->id;
    p[1] = arg;

    return db_scalar(sql, arg ? 2 : 1, p);
}


static json_t *
comp_books(const merchant_t *m)
{
    resp_t  *r;

    r = http_get(mock_url(str_printf("/_control/books?reference=%s:",
                                     m->id)));
    cr_assert_eq(r->status, 200, "the mock's books: %ld %s", r->status,
                 r->body);

    return json_incref(resp_json(r));
}


static json_t *
comp_book_of(json_t *books, const char *nonce_s)
{
    size_t   i;
    json_t  *p;

    json_array_foreach(json_object_get(books, "payments"), i, p) {
        if (strcmp(json_string_value(json_object_get(p, "reference")),
                   nonce_s) == 0)
        {
            return p;
        }
    }

    return NULL;
}


static long
comp_book_int(json_t *p, const char *name)
{
    return p ? (long) json_integer_value(json_object_get(p, name)) : 0;
}


/* -- quiet --------------------------------------------------------------- */

/* the subjects of the merchants' operations; how many are PENDING */
static long
comp_pending(comp_run_t *run)
{
    int        s, i;
    long       n;
    PGresult  *res;

    n = 0;

    for (s = 0; s < COMP_NSTORIES; s++) {
        const char  *p[1] = { run->m[s].id };

        res = PQexecParams(db(),
            "SELECT nonce, status = 'PENDING' FROM captures"
            " WHERE merchant_id = $1"
            " UNION ALL SELECT nonce, status = 'PENDING' FROM refunds"
            " WHERE merchant_id = $1", 1, NULL, p, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s",
                     PQerrorMessage(db()));

        for (i = 0; i < PQntuples(res); i++) {
            comp_subject(run, PQgetvalue(res, i, 0));
            n += PQgetvalue(res, i, 1)[0] == 't';
        }

        PQclear(res);
    }

    return n;
}


/* events the mock scheduled for the run's subjects that are neither
 * delivered nor given up (patient: 10 attempts, else 3); with list, each
 * one never accepted is counted as the webhooks check's failure */
static long
comp_undelivered(comp_run_t *run, int list, int patient)
{
    size_t   i, k;
    long     n, attempts;
    json_t  *ev;
    resp_t  *r;

    n = 0;

    for (i = 0; i < run->nsubjects; i++) {
        r = http_get(mock_url(str_printf("/_control/webhooks?session=%s",
                                         url_escape(run->subjects[i]))));
        if (r->status != 200) {
            n++;
            continue;
        }

        json_array_foreach(json_object_get(resp_json(r), "events"), k, ev) {
            if (json_is_true(json_object_get(ev, "delivered"))) {
                continue;
            }

            attempts = (long) json_integer_value(json_object_get(ev,
                                                            "attempts"));
            if (list) {
                comp_fail(run, COMP_CHK_WEBHOOKS, "%s of %s not accepted "
                          "after %ld attempts: %lld %s",
                          json_string_value(json_object_get(ev, "type")),
                          run->subjects[i], attempts,
                          json_integer_value(json_object_get(ev,
                                                             "last_status")),
                          json_string_value(json_object_get(ev,
                                                            "last_body")));
                continue;
            }

            if (attempts < (patient ? 10 : 3)) {
                n++;
            }
        }

        resp_free(r);
    }

    return n;
}


static int
comp_quiet(comp_run_t *run, int seconds, int patient)
{
    time_t  end;

    end = time(NULL) + seconds;

    do {
        if (comp_pending(run) == 0 && comp_undelivered(run, 0, patient) == 0)
        {
            return 1;
        }
        msleep(100);
    } while (time(NULL) < end);

    return 0;
}


/* until the checkout's status is one of want ("A|B"), at most seconds */
static char *
comp_wait_status(const merchant_t *m, const comp_co_t *c, const char *want,
    int seconds)
{
    int    i;
    char  *s;

    s = NULL;
    for (i = 0; i < seconds * 10; i++) {
        s = comp_q(m, "SELECT status::text FROM checkouts WHERE merchant_id"
                   " = $1 AND checkout_id = $2", c->co);
        if (s != NULL && strstr(want, s) != NULL) {
            break;
        }
        msleep(100);
    }

    return s;
}


/* -- the stories --------------------------------------------------------- */

/* the admin approves the review (the same request again after a 5xx) */
static resp_t *
comp_approve(comp_run_t *run, const char *nonce_s)
{
    int          i;
    req_t        rq;
    resp_t      *r;
    char        *key;
    const char  *h[3];

    key = file_read(env("PAY_TEST_ADMIN_KEY"), NULL);
    cr_assert_not_null(key);
    secret_used(key);

    h[0] = str_printf("Authorization: Bearer %s", key);
    h[1] = "Content-Length: 0";
    h[2] = NULL;

    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/reviews/%s/approve", nonce_s));
    rq.headers = h;
    rq.body = "";
    rq.len = 0;

    r = NULL;
    for (i = 0; i < 8; i++) {
        run->steps++;
        r = http(&rq);
        if (r->status != 0 && r->status < 500) {
            break;
        }
        msleep(250);
    }

    return r;
}


static void
comp_review_register(comp_run_t *run, comp_co_t *c)
{
    req_t        rq;
    resp_t      *r;
    const char  *h[5];

    h[0] = "Host: deny.risk.test";
    h[1] = str_printf("Authorization: Bearer %s", run->m[COMP_REVIEW].key);
    h[2] = str_printf("Idempotency-Key: %s", uid("cmr"));
    h[3] = "Content-Type: application/json";
    h[4] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s%s", env("PAY_TEST_GW_LIMITS"), PATH_PAYMENTS);
    rq.headers = h;
    rq.body = comp_body(c, 1, 1);
    rq.len = (size_t) -1;

    run->steps++;
    r = http(&rq);
    cr_assert_eq(r->status, 202, "compose: review: %ld %s", r->status,
                 r->body);
}


/* a registration with its answer 800 ms away, and a cancel */
typedef struct {
    comp_run_t   *run;
    comp_co_t    *c;
    long          offset_ms;    /* when the cancel is sent */
    resp_t       *reg;
    resp_t       *cancel;       /* the last cancel's answer */
    char         *ckey;
} comp_race_t;


static void *
comp_race_register(void *arg)
{
    comp_race_t  *t = arg;

    t->reg = api_post(&t->run->m[COMP_CANCEL], uid("cmr"),
                      comp_body(t->c, 0, 0));

    return NULL;
}


static resp_t *
comp_cancel(comp_race_t *t)
{
    req_t        rq;
    const char  *h[4];

    h[0] = str_printf("Authorization: Bearer %s", t->run->m[COMP_CANCEL].key);
    h[1] = str_printf("Idempotency-Key: %s", t->ckey);
    h[2] = "Content-Type: application/json";
    h[3] = NULL;

    rq.method = "POST";
    rq.url = gw_url(str_printf("/v1/checkouts/%s/cancel", t->c->co));
    rq.headers = h;
    rq.body = "{}";
    rq.len = (size_t) -1;

    return http(&rq);
}


/* until the registration has stored its checkout (and so is at the PSP,
 * 800 ms away), at most 5 s; a connection of the thread's own */
static void
comp_race_stored(comp_race_t *t)
{
    int          i;
    PGconn      *c;
    PGresult    *r;
    const char  *p[2];

    c = PQconnectdb(env("PAY_TEST_PG"));
    p[0] = t->run->m[COMP_CANCEL].id;
    p[1] = t->c->co;

    for (i = 0; i < 250 && PQstatus(c) == CONNECTION_OK; i++) {
        r = PQexecParams(c, "SELECT 1 FROM checkouts WHERE merchant_id = $1 "
                         "AND checkout_id = $2", 2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            PQclear(r);
            break;
        }
        PQclear(r);
        msleep(20);
    }

    PQfinish(c);
}


/* the shop's cancel: sent at offset_ms (without chaos: that long after
 * the registration stored its checkout), then again under the same key as
 * long as it is told to wait (409 with Retry-After) or the gateway is
 * unavailable, at most 20 times */
static void *
comp_race_cancel(void *arg)
{
    int           i;
    comp_race_t  *t = arg;
    const char   *ra;

    if (!t->run->chaos) {
        comp_race_stored(t);
    }
    msleep(t->offset_ms);

    for (i = 0; i < 20; i++) {
        t->cancel = comp_cancel(t);
        if (i == 0) {
            t->c->cancel_status = t->cancel->status;
            t->c->retry_after = resp_header(t->cancel, "Retry-After") != NULL;
        }

        ra = resp_header(t->cancel, "Retry-After");
        if (!(t->cancel->status >= 500 || t->cancel->status == 0
              || (t->cancel->status == 409 && ra != NULL)))
        {
            break;
        }
        msleep(t->run->chaos ? 100 : 200);
    }

    t->c->cancel_last = t->cancel ? t->cancel->status : 0;

    return NULL;
}


static void
comp_cancel_story(comp_run_t *run)
{
    int           d, k;
    comp_race_t   t[COMP_DIALECTS][COMP_PER_STORY];
    pthread_t     reg[COMP_DIALECTS][COMP_PER_STORY];
    pthread_t     can[COMP_DIALECTS][COMP_PER_STORY];
    comp_co_t    *c;

    static const long  offsets[COMP_PER_STORY] = { 100, 300 };
    static const long  chaos_offsets[COMP_PER_STORY] = { 0, 700 };

    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            c = &run->co[COMP_CANCEL][d][k];
            t[d][k].run = run;
            t[d][k].c = c;
            t[d][k].ckey = uid("cmc");
            t[d][k].reg = NULL;
            t[d][k].cancel = NULL;
            t[d][k].offset_ms = run->chaos ? chaos_offsets[k] + 150 * d
                                           : offsets[k];

            cr_assert_eq(pthread_create(&reg[d][k], NULL, comp_race_register,
                                        &t[d][k]), 0);
            cr_assert_eq(pthread_create(&can[d][k], NULL, comp_race_cancel,
                                        &t[d][k]), 0);
        }
    }

    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            cr_assert_eq(pthread_join(reg[d][k], NULL), 0);
            run->steps++;
            comp_took(run, t[d][k].c, t[d][k].reg);

            /* the shopper pays as soon as the session exists (in chaos,
             * while the cancel may still be on its way) */
            if (run->chaos || k == 1) {
                (void) comp_pay(run, t[d][k].c);
            }
        }
    }

    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            cr_assert_eq(pthread_join(can[d][k], NULL), 0);
            run->steps++;
            /* and after the cancel: the session it ended cannot be paid */
            if (!run->chaos && k == 0) {
                (void) comp_pay(run, t[d][k].c);
            }
        }
    }
}


/*
 * The hold's window passes for this checkout (authorized_at 8 days back,
 * past every PSP's 7-day window).  Without chaos, one round of the
 * sweeper's holds as the sweeper runs it (pay_holds_sweep under the
 * lease): its action on the checkout is kept in c->sweep.  In chaos, the
 * sweeper beside the suite's gateway finds it on its next round.
 */
static void
comp_expire(comp_run_t *run, comp_co_t *c, int round)
{
    int          i;
    char        *v;
    const char  *p[3];

    p[0] = run->m[COMP_SWEEP].id;
    p[1] = c->co;

    if (round == 0) {
        db_exec("BEGIN", 0, NULL);
        db_exec("SET LOCAL session_replication_role = replica", 0, NULL);
        db_exec("UPDATE checkouts SET authorized_at = authorized_at - "
                "interval '8 days' WHERE merchant_id = $1 AND checkout_id = "
                "$2 AND authorized_at IS NOT NULL", 2, p);
        db_exec("COMMIT", 0, NULL);
    }

    if (run->chaos) {
        return;
    }

    p[0] = "compose";
    v = NULL;
    for (i = 0; i < 50; i++) {
        v = db_scalar("SELECT pay_sweeper_lease($1, 5)", 1, p);
        if (v != NULL && strcmp(v, "t") == 0) {
            break;
        }
        msleep(100);
    }

    if (v == NULL || strcmp(v, "t") != 0) {
        c->sweep = strdup("the lease is another's");
        return;
    }

    p[1] = str_printf("{%s,mock_adyen,mock_generic}", comp_psp(0));
    p[2] = "{604800,604800,604800}";
    v = db_scalar("SELECT string_agg(merchant_id || ' ' || checkout_id || ' '"
                  " || action, ',') FROM pay_holds_sweep($1, $2::text[], "
                  "$3::integer[], 0, 1000)", 3, p);
    db_exec("UPDATE sweeper_lease SET until = now() WHERE id = 1 AND "
            "owner = $1", 1, p);

    /* this checkout's action, or "none" */
    c->sweep = strdup("none");
    if (v != NULL) {
        char  *hit, *end, *mine;

        mine = str_printf("%s %s ", run->m[COMP_SWEEP].id, c->co);
        hit = strstr(v, mine);
        if (hit != NULL) {
            hit += strlen(mine);
            end = strchr(hit, ',');
            c->sweep = end ? strndup(hit, (size_t) (end - hit))
                           : strdup(hit);
        }
    }
}


/* the id of the PSP's n-th succeeded capture of the checkout */
static char *
comp_capture_id(const merchant_t *m, const comp_co_t *c, int n)
{
    size_t   i;
    int      k;
    json_t  *p, *op;

    p = comp_book_of(comp_books(m), c->nonce);
    k = 0;

    json_array_foreach(json_object_get(p, "ops"), i, op) {
        if (strcmp(json_string_value(json_object_get(op, "kind")),
                   "capture") == 0
            && strcmp(json_string_value(json_object_get(op, "state")),
                      "succeeded") == 0
            && k++ == n)
        {
            return strdup(json_string_value(json_object_get(op, "id")));
        }
    }

    return NULL;
}


/* a chargeback of amount (0: all the PSP still holds of the payment;
 * whole: all it captured, whatever was refunded since) */
static void
comp_dispute(comp_run_t *run, comp_co_t *c, long amount, int whole)
{
    long         held;
    json_t      *p;
    resp_t      *r;
    const char  *ref, *id;

    p = comp_book_of(comp_books(&run->m[COMP_DISPUTE]), c->nonce);
    ref = p ? json_string_value(json_object_get(p, "payment_ref")) : NULL;
    cr_assert_not_null(ref, "compose: no payment at the PSP for %s", c->co);

    held = comp_book_int(p, "captured") - comp_book_int(p, "refunded")
           - comp_book_int(p, "disputed_open")
           - comp_book_int(p, "disputed_lost");
    if (whole) {
        amount = comp_book_int(p, "captured");
    } else if (amount == 0 || amount > held) {
        amount = held;
    }
    cr_assert(amount > 0, "compose: nothing to dispute of %s", c->co);

    run->steps++;
    r = comp_mock("POST", "/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":%ld}", ref,
                             amount));
    cr_assert_eq(r->status, 200, "compose: dispute: %ld %s", r->status,
                 r->body);
    id = json_string_value(json_object_get(resp_json(r), "id"));
    cr_assert_not_null(id);
    c->dispute = strdup(id);
    comp_subject(run, c->dispute);
}


static void
comp_faults(comp_run_t *run)
{
    int          s, d, k;
    comp_co_t   *c;
    const char  *f;

    /* the sweeper's race: every capture's webhook 3 s late */
    mock_fault(str_printf("{\"match\":\"%s:cp_\",\"webhook_delay_ms\":3000%s}",
                          run->m[COMP_SWEEP].id,
                          run->chaos ? ",\"fail_times\":1,\"fail_status\":503"
                                     : ""));

    /* the cancel's race: the registration's answer 800 ms away (and the
     * cancel's own call to end the session, under the same nonce) */
    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            mock_fault(str_printf("{\"match\":\"%s\",\"latency_ms\":800%s}",
                                  run->co[COMP_CANCEL][d][k].nonce,
                                  run->chaos && k == 1
                                  ? ",\"webhook_duplicate\":2" : ""));
        }
    }

    if (!run->chaos) {
        return;
    }

    /* the merchant's operations fail once (the shop retries under its
     * key), their webhooks doubled or late */
    for (s = 0; s < COMP_NSTORIES; s++) {
        if (s == COMP_SWEEP || s == COMP_CANCEL) {
            continue;
        }
        mock_fault(str_printf("{\"match\":\"%s:cp_\",\"fail_times\":1,"
                              "\"fail_status\":503,\"webhook_duplicate\":2}",
                              run->m[s].id));
        mock_fault(str_printf("{\"match\":\"%s:rf_\",\"fail_times\":1,"
                              "\"fail_status\":503,"
                              "\"webhook_delay_ms\":400}", run->m[s].id));
        mock_fault(str_printf("{\"match\":\"%s:vd_\",\"webhook_duplicate\":1}",
                              run->m[s].id));
    }

    /* the sessions' webhooks doubled, out of order or late; the review's
     * approval meets a PSP failing once */
    for (s = 0; s < COMP_NSTORIES; s++) {
        if (s == COMP_CANCEL) {
            continue;
        }
        for (d = 0; d < COMP_DIALECTS; d++) {
            for (k = 0; k < COMP_PER_STORY; k++) {
                c = &run->co[s][d][k];
                switch ((d + k + s) % 3) {
                case 0:
                    f = "\"webhook_duplicate\":2";
                    break;
                case 1:
                    f = "\"webhook_delay_ms\":400";
                    break;
                default:
                    f = "\"webhook_out_of_order\":true";
                }
                mock_fault(str_printf("{\"match\":\"%s\",%s%s}", c->nonce, f,
                                      s == COMP_REVIEW
                                      ? ",\"fail_times\":1,"
                                        "\"fail_status\":503" : ""));
            }
        }
    }
}


void
comp_run(comp_run_t *run, int chaos)
{
    int          s, d, k;
    char        *st;
    resp_t      *r;
    comp_co_t   *c;

    memset(run, 0, sizeof(*run));
    run->chaos = chaos;

    for (s = 0; s < COMP_NSTORIES; s++) {
        merchant_new(&run->m[s]);
        for (d = 0; d < COMP_DIALECTS; d++) {
            for (k = 0; k < COMP_PER_STORY; k++) {
                c = &run->co[s][d][k];
                c->dialect = d;
                c->used = comp_has(s, d)
                          && (k == 0 || s == COMP_DISPUTE
                              || s == COMP_CANCEL);
                c->co = uid("cmp");
                c->nonce = nonce(&run->m[s], c->co);
                c->cancel_status = -1;
                c->paid_status = -1;
                comp_subject(run, c->nonce);
            }
        }
    }

    comp_faults(run);

    /* 1. registrations: held for review, manual, automatic; and the
     * cancels racing theirs */
    for (d = 0; d < COMP_DIALECTS; d++) {
        comp_review_register(run, &run->co[COMP_REVIEW][d][0]);
        comp_register(run, COMP_DISPUTE, &run->co[COMP_DISPUTE][d][0], 1);
        comp_register(run, COMP_DISPUTE, &run->co[COMP_DISPUTE][d][1], 0);
        if (comp_has(COMP_REVERSED, d)) {
            comp_register(run, COMP_REVERSED, &run->co[COMP_REVERSED][d][0],
                          1);
        }
        comp_register(run, COMP_SWEEP, &run->co[COMP_SWEEP][d][0], 1);
    }

    comp_cancel_story(run);

    /* 2. the approvals: registered as stored, manual capture kept */
    for (d = 0; d < COMP_DIALECTS; d++) {
        c = &run->co[COMP_REVIEW][d][0];
        r = comp_approve(run, c->nonce);
        cr_assert_eq(r->status, 201, "compose: approve %s: %ld %s", c->co,
                     r->status, r->body);
        if (strcmp(json_string_value(json_object_get(resp_json(r),
                                                     "capture")),
                   "manual") != 0)
        {
            comp_fail(run, COMP_CHK_STORY, "review: the approval of %s "
                      "answered %s", c->co, r->body);
        }
        comp_took(run, c, r);
    }

    /* 3. the shoppers pay */
    for (s = 0; s < COMP_NSTORIES; s++) {
        if (s == COMP_CANCEL) {
            continue;
        }
        for (d = 0; d < COMP_DIALECTS; d++) {
            for (k = 0; k < COMP_PER_STORY; k++) {
                c = &run->co[s][d][k];
                if (c->used && comp_pay(run, c) != 200) {
                    comp_fail(run, COMP_CHK_STORY, "%s: the shopper could "
                              "not pay %s: %ld", comp_story_names[s], c->co,
                              c->paid_status);
                }
            }
        }
    }

    comp_quiet(run, 20, 0);

    for (s = 0; s < COMP_NSTORIES; s++) {
        if (s == COMP_CANCEL) {
            continue;
        }
        for (d = 0; d < COMP_DIALECTS; d++) {
            for (k = 0; k < COMP_PER_STORY; k++) {
                c = &run->co[s][d][k];
                if (!c->used) {
                    continue;
                }
                st = comp_wait_status(&run->m[s], c, "AUTHORIZED|SUCCESS",
                                      20);
                cr_assert(st != NULL && strstr("AUTHORIZED|SUCCESS", st),
                          "compose: %s: %s is %s after the payment",
                          comp_story_names[s], c->co, st ? st : "gone");
            }
        }
    }

    /* 4. captures: part of the reviewed and disputed holds, whole orders
     * of the ones to be reversed; the sweeper's hold captured with the
     * capture's webhook 3 s away, and the window passing at once */
    for (d = 0; d < COMP_DIALECTS; d++) {
        c = &run->co[COMP_REVIEW][d][0];
        (void) comp_capture(run, COMP_REVIEW, c, 1, "3.00");

        c = &run->co[COMP_DISPUTE][d][0];
        (void) comp_capture(run, COMP_DISPUTE, c, 1, "4.00");

        if (comp_has(COMP_REVERSED, d)) {
            c = &run->co[COMP_REVERSED][d][0];
            (void) comp_capture(run, COMP_REVERSED, c, 1, NULL);
            (void) comp_capture(run, COMP_REVERSED, c, 2, NULL);
        }

        c = &run->co[COMP_SWEEP][d][0];
        r = comp_capture(run, COMP_SWEEP, c, 1, "4.00");
        if (r->status != 201) {
            comp_fail(run, COMP_CHK_STORY, "sweep: the capture of %s: %ld %s",
                      c->co, r->status, r->body);
        }
        comp_expire(run, c, 0);
    }

    comp_quiet(run, 20, 0);

    /* 5. the rest released; refunds; the PSP reverses a capture; the
     * sweeper's round again, nothing in flight now */
    for (d = 0; d < COMP_DIALECTS; d++) {
        (void) comp_void(run, COMP_REVIEW, &run->co[COMP_REVIEW][d][0], 2);

        c = &run->co[COMP_DISPUTE][d][0];
        (void) comp_void(run, COMP_DISPUTE, c, 2);
        (void) comp_refund(run, COMP_DISPUTE, c, 1, "1.00");

        c = &run->co[COMP_DISPUTE][d][1];
        (void) comp_refund(run, COMP_DISPUTE, c, 2, "5.00");
        (void) comp_refund(run, COMP_DISPUTE, c, 1, "2.00");

        if (comp_has(COMP_REVERSED, d)) {
            char  *id;

            c = &run->co[COMP_REVERSED][d][0];
            id = comp_capture_id(&run->m[COMP_REVERSED], c, 0);
            if (id == NULL) {
                comp_fail(run, COMP_CHK_STORY, "reversed: no capture of %s "
                          "at the PSP", c->co);
            } else {
                run->steps++;
                r = comp_mock("POST", str_printf("/_control/captures/%s/fail",
                                                 id), NULL);
                if (r->status != 200) {
                    comp_fail(run, COMP_CHK_STORY, "reversed: the PSP "
                              "refused to reverse %s: %ld %s", id, r->status,
                              r->body);
                }
            }
        }

        c = &run->co[COMP_SWEEP][d][0];
        {
            char  *first;

            first = c->sweep;
            comp_expire(run, c, 1);
            if (!run->chaos) {
                c->sweep = str_printf("%s, then %s", first ? first : "-",
                                      c->sweep);
            }
        }
    }

    comp_quiet(run, 20, 0);

    /* 6. chargebacks: of the partly captured and refunded hold, all the
     * PSP still holds; of the paid one, all it captured (its second order
     * refunded whole, its first in part) */
    for (d = 0; d < COMP_DIALECTS; d++) {
        comp_dispute(run, &run->co[COMP_DISPUTE][d][0], 0, 0);
        comp_dispute(run, &run->co[COMP_DISPUTE][d][1], 0, d == 2);
    }

    comp_quiet(run, 20, 0);

    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            c = &run->co[COMP_DISPUTE][d][k];
            run->steps++;
            r = comp_mock("POST", str_printf("/_control/disputes/%s/close",
                                             c->dispute),
                          (d + k) % 3 == 1 ? "{\"outcome\":\"won\"}"
                                           : "{\"outcome\":\"lost\"}");
            cr_assert_eq(r->status, 200, "compose: close: %ld %s", r->status,
                         r->body);
        }
    }

    /* in chaos the sweeper's round is the sweeper's: give it a few */
    if (chaos) {
        msleep(1500);
    }

    comp_quiet(run, 30, 1);
}


/* -- the checks ---------------------------------------------------------- */

static PGresult *
comp_query(const merchant_t *m, const char *sql)
{
    PGresult    *res;
    const char  *params[1];

    params[0] = m->id;
    res = PQexecParams(db(), sql, 1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
                 PQerrorMessage(db()));

    return res;
}


static long
comp_count(const merchant_t *m, const char *sql)
{
    long       n;
    PGresult  *res;

    res = comp_query(m, sql);
    n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);

    return n;
}


/* per checkout: captured, refunded, taken for disputes, held for open
 * ones, from the ledger */
static const char  comp_sql_checkouts[] =
    "SELECT c.checkout_id,"
    "  coalesce(sum(e.amount) FILTER (WHERE t.kind = 'payment'"
    "    AND e.account LIKE 'psp\\_clearing:%'), 0),"
    "  coalesce(-sum(e.amount) FILTER (WHERE t.kind = 'refund'"
    "    AND e.account LIKE 'psp\\_clearing:%'), 0),"
    "  coalesce(-sum(e.amount) FILTER (WHERE t.kind = 'dispute'"
    "    AND e.account LIKE 'psp\\_clearing:%'), 0),"
    "  coalesce(sum(e.amount) FILTER (WHERE t.kind = 'dispute'"
    "    AND e.account LIKE 'disputes:%'), 0)"
    "  FROM checkouts c"
    "  LEFT JOIN ledger_transactions t"
    "         ON t.merchant_id = c.merchant_id"
    "        AND t.checkout_id = c.checkout_id"
    "  LEFT JOIN ledger_entries e"
    "         ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id"
    " WHERE c.merchant_id = $1"
    " GROUP BY 1";

/* orders below nothing at the clearing (less what was booked apart to
 * psp_shortfall with its event alerted), sellers charged beyond what an
 * order credited them */
static const char  comp_sql_orders[] =
    "SELECT t.payment_order_id,"
    "  coalesce(sum(e.amount) FILTER (WHERE e.account LIKE"
    "    'psp\\_clearing:%'), 0),"
    "  coalesce(sum(e.amount) FILTER (WHERE e.account LIKE"
    "    'seller\\_payable:%'), 0),"
    "  coalesce(sum(e.amount) FILTER (WHERE e.account LIKE"
    "    'psp\\_shortfall:%'), 0)"
    "  FROM ledger_transactions t JOIN ledger_entries e"
    "       USING (merchant_id, txn_id)"
    " WHERE t.merchant_id = $1 AND t.payment_order_id IS NOT NULL"
    " GROUP BY t.payment_order_id, t.checkout_id"
    " HAVING coalesce(sum(e.amount) FILTER (WHERE e.account LIKE"
    "          'psp\\_clearing:%' OR (e.account LIKE 'psp\\_shortfall:%'"
    "          AND EXISTS (SELECT 1 FROM webhook_events w"
    "                       WHERE w.merchant_id = $1"
    "                         AND w.checkout_id = t.checkout_id"
    "                         AND w.outcome IN ('capture_reversed_refunded',"
    "                                           'dispute_excess')))),"
    "          0) < 0"
    "     OR coalesce(sum(e.amount) FILTER (WHERE e.account LIKE"
    "          'seller\\_payable:%'), 0) > 0"
    "     OR coalesce(sum(e.amount) FILTER (WHERE e.account LIKE"
    "          'psp\\_shortfall:%'), 0) < 0";

static const char  comp_sql_succeeded[] =
    "SELECT 'capture', nonce, amount, coalesce(psp_ref, '') FROM captures"
    " WHERE merchant_id = $1 AND kind = 'capture' AND status = 'SUCCEEDED'"
    " UNION ALL SELECT 'refund', nonce, amount, coalesce(psp_refund_id, '')"
    " FROM refunds WHERE merchant_id = $1 AND status = 'SUCCEEDED'";

/*
 * Every order's history: from NOT_STARTED by its registration, each event
 * from where the last one left it, each move one the status guard allows
 * (EXECUTING to AUTHORIZED, SUCCESS or FAILED; AUTHORIZED to SUCCESS or
 * FAILED; FAILED to AUTHORIZED or SUCCESS only by money the PSP took
 * after a failure, recorded as such), ending where the order is.
 */
static const char  comp_sql_history[] =
    "WITH e AS ("
    "  SELECT e.*, row_number() OVER w AS rn, lag(to_status) OVER w AS prev"
    "    FROM order_events e WHERE merchant_id = $1"
    "  WINDOW w AS (PARTITION BY payment_order_id ORDER BY event_id)),"
    " fin AS ("
    "  SELECT payment_order_id,"
    "         (array_agg(to_status ORDER BY rn DESC))[1] AS last_to"
    "    FROM e GROUP BY 1)"
    "SELECT (SELECT count(*) FROM e"
    "         WHERE (rn = 1 AND (from_status <> 'NOT_STARTED'"
    "                            OR to_status <> 'EXECUTING'"
    "                            OR source <> 'registration'))"
    "            OR (rn > 1 AND (from_status IS DISTINCT FROM prev"
    "                 OR NOT ((from_status = 'EXECUTING'"
    "                          AND to_status IN ('AUTHORIZED', 'SUCCESS',"
    "                                            'FAILED'))"
    "                      OR (from_status = 'AUTHORIZED'"
    "                          AND to_status IN ('SUCCESS', 'FAILED'))"
    "                      OR (from_status = 'FAILED'"
    "                          AND to_status IN ('AUTHORIZED', 'SUCCESS')"
    "                          AND EXISTS (SELECT 1 FROM checkouts c"
    "                                       WHERE c.merchant_id = e.merchant_id"
    "                                         AND c.checkout_id = e.checkout_id"
    "                                         AND c.failure_code IS NOT NULL))))))"
    "     + (SELECT count(*) FROM payment_orders o"
    "          LEFT JOIN fin l USING (payment_order_id)"
    "         WHERE o.merchant_id = $1"
    "           AND l.last_to IS DISTINCT FROM o.status)";

static const char  comp_sql_unbalanced[] =
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM ledger_entries"
    "         WHERE merchant_id = $1 GROUP BY txn_id, currency"
    "        HAVING sum(amount) <> 0) x)"
    "     + (SELECT count(*) FROM (SELECT 1 FROM ledger_transactions t"
    "          LEFT JOIN ledger_entries e USING (merchant_id, txn_id)"
    "         WHERE t.merchant_id = $1 GROUP BY t.txn_id"
    "        HAVING count(e.entry_no) < 2) y)";

static const char  comp_sql_wallets[] =
    "SELECT count(*) FROM"
    " (SELECT seller_account, currency, balance FROM wallets"
    "   WHERE merchant_id = $1) w"
    " FULL JOIN"
    " (SELECT substr(account, 16) AS seller_account, currency,"
    "         -sum(amount) AS booked"
    "    FROM ledger_entries"
    "   WHERE account LIKE 'seller\\_payable:%' AND merchant_id = $1"
    "   GROUP BY 1, 2) l"
    " USING (seller_account, currency)"
    " WHERE coalesce(w.balance, 0) <> coalesce(l.booked, 0)";


static comp_co_t *
comp_find(comp_run_t *run, int s, const char *co)
{
    int  d, k;

    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            if (strcmp(run->co[s][d][k].co, co) == 0) {
                return &run->co[s][d][k];
            }
        }
    }

    return NULL;
}


/* the gateway's books of one merchant against the PSP's */
static void
comp_check_books(comp_run_t *run, int s, json_t *books)
{
    int          i, j;
    long         v[4], b[4], n;
    size_t       k, l;
    char        *name;
    json_t      *p, *op, *seen;
    PGresult    *q;
    comp_co_t   *c;
    const char  *key;

    q = comp_query(&run->m[s], comp_sql_checkouts);

    for (i = 0; i < PQntuples(q); i++) {
        c = comp_find(run, s, PQgetvalue(q, i, 0));
        if (c == NULL) {
            comp_fail(run, COMP_CHK_CAPTURED, "%s: a checkout %s nobody "
                      "made", comp_story_names[s], PQgetvalue(q, i, 0));
            continue;
        }
        p = comp_book_of(books, c->nonce);

        for (j = 0; j < 4; j++) {
            v[j] = atol(PQgetvalue(q, i, j + 1));
        }

        b[0] = comp_book_int(p, "captured");
        b[1] = comp_book_int(p, "refunded");
        b[2] = comp_book_int(p, "disputed_open")
               + comp_book_int(p, "disputed_lost");
        b[3] = comp_book_int(p, "disputed_open");

        if (v[0] != b[0]) {
            comp_fail(run, COMP_CHK_CAPTURED, "%s: %s: the ledger booked "
                      "%ld captured, the PSP captured %ld",
                      comp_story_names[s], c->co, v[0], b[0]);
        }
        if (v[1] != b[1]) {
            comp_fail(run, COMP_CHK_REFUNDED, "%s: %s: the ledger booked "
                      "%ld refunded, the PSP refunded %ld",
                      comp_story_names[s], c->co, v[1], b[1]);
        }
        if (v[2] != b[2] || v[3] != b[3]) {
            comp_fail(run, COMP_CHK_DISPUTED, "%s: %s: the ledger took %ld "
                      "for disputes and holds %ld open, the PSP %ld and %ld",
                      comp_story_names[s], c->co, v[2], v[3], b[2], b[3]);
        }
    }

    PQclear(q);

    /* no seller charged beyond its credit, no order below nothing */
    q = comp_query(&run->m[s], comp_sql_orders);
    for (i = 0; i < PQntuples(q); i++) {
        comp_fail(run, COMP_CHK_ORDER, "%s: order %s: %s at the clearing, "
                  "%s to its seller (above 0: charged more than it was "
                  "credited), %s booked apart to psp_shortfall",
                  comp_story_names[s], PQgetvalue(q, i, 0),
                  PQgetvalue(q, i, 1), PQgetvalue(q, i, 2),
                  PQgetvalue(q, i, 3));
    }
    PQclear(q);

    /* what the gateway holds SUCCEEDED, the PSP made and kept */
    q = comp_query(&run->m[s], comp_sql_succeeded);
    for (i = 0; i < PQntuples(q); i++) {
        key = PQgetvalue(q, i, 1);
        n = -1;
        json_array_foreach(json_object_get(books, "payments"), k, p) {
            json_array_foreach(json_object_get(p, "ops"), l, op) {
                if (strcmp(json_string_value(json_object_get(op, "state")),
                           "succeeded") == 0
                    && strcmp(json_string_value(json_object_get(op,
                                                                "nonce")),
                              key) == 0)
                {
                    n = (long) json_integer_value(json_object_get(op,
                                                                  "amount"));
                }
            }
        }
        if (n != atol(PQgetvalue(q, i, 2))) {
            comp_fail(run, COMP_CHK_MOVED, "%s: the gateway's %s %s of %s "
                      "SUCCEEDED: the PSP %s", comp_story_names[s],
                      PQgetvalue(q, i, 0), key, PQgetvalue(q, i, 2),
                      n < 0 ? "has none it kept" : str_printf("has %ld", n));
        }
    }
    PQclear(q);

    /* one PSP object per nonce, one session per checkout */
    seen = json_object();
    json_array_foreach(json_object_get(books, "payments"), k, p) {
        json_array_foreach(json_object_get(p, "ops"), l, op) {
            key = json_string_value(json_object_get(op, "nonce"));
            if (key == NULL || key[0] == '\0'
                || strcmp(json_string_value(json_object_get(op, "state")),
                          "failed") == 0)
            {
                continue;
            }
            name = str_printf("%s %s",
                              json_string_value(json_object_get(op, "kind")),
                              key);
            if (json_object_get(seen, name) != NULL) {
                comp_fail(run, COMP_CHK_ONCE, "%s: the PSP made two of %s",
                          comp_story_names[s], name);
            }
            json_object_set_new(seen, name, json_true());
        }
    }
    json_decref(seen);

    for (j = 0; j < COMP_DIALECTS; j++) {
        for (i = 0; i < COMP_PER_STORY; i++) {
            long  created, requests;

            c = &run->co[s][j][i];
            if (!c->used) {
                continue;
            }
            mock_registrations(c->nonce, &created, &requests);
            if (created > 1) {
                comp_fail(run, COMP_CHK_ONCE, "%s: %s: %ld sessions at the "
                          "PSP", comp_story_names[s], c->co, created);
            }
        }
    }

    /* statuses only forward; the books balanced; wallets as the ledger */
    n = comp_count(&run->m[s], comp_sql_history);
    if (n > 0) {
        comp_fail(run, COMP_CHK_FORWARD, "%s: %ld order events or orders "
                  "off a forward-only history", comp_story_names[s], n);
    }
    n = comp_count(&run->m[s], comp_sql_unbalanced);
    if (n > 0) {
        comp_fail(run, COMP_CHK_BALANCED, "%s: %ld ledger transactions do "
                  "not balance", comp_story_names[s], n);
    }
    n = comp_count(&run->m[s], comp_sql_wallets);
    if (n > 0) {
        comp_fail(run, COMP_CHK_WALLETS, "%s: %ld wallets differ from the "
                  "ledger", comp_story_names[s], n);
    }
    name = comp_q(&run->m[s], "SELECT pay_audit_verify($1)", NULL);
    if (name == NULL || strcmp(name, "t") != 0) {
        comp_fail(run, COMP_CHK_AUDIT, "%s: the audit chain does not verify",
                  comp_story_names[s]);
    }
}


/* what each story ends with, whatever the faults */
static void
comp_check_stories(comp_run_t *run, json_t *const *books)
{
    int          d, k;
    char        *v;
    json_t      *p;
    comp_co_t   *c;
    const merchant_t  *m;

    for (d = 0; d < COMP_DIALECTS; d++) {
        /* review: registered at the PSP for a manual capture, 3.00 of it
         * captured and booked, the rest released unbooked */
        m = &run->m[COMP_REVIEW];
        c = &run->co[COMP_REVIEW][d][0];
        p = comp_book_of(books[COMP_REVIEW], c->nonce);
        if (comp_book_int(p, "captured") != 300) {
            comp_fail(run, COMP_CHK_STORY, "review: %s: the PSP captured "
                      "%ld, not the 3.00 the shop asked for",
                      c->co, comp_book_int(p, "captured"));
        }
        v = comp_q(m, "SELECT capture_method FROM checkouts WHERE "
                   "merchant_id = $1 AND checkout_id = $2", c->co);
        if (v == NULL || strcmp(v, "manual") != 0) {
            comp_fail(run, COMP_CHK_STORY, "review: %s: capture %s", c->co,
                      v ? v : "?");
        }

        /* dispute: the released order's seller bears nothing, and no
         * dispute part exceeds what its order held */
        m = &run->m[COMP_DISPUTE];
        for (k = 0; k < COMP_PER_STORY; k++) {
            c = &run->co[COMP_DISPUTE][d][k];
            v = comp_q(m, "SELECT coalesce(sum(amount), 0) FROM dispute_parts"
                       " WHERE merchant_id = $1 AND checkout_id = $2 AND "
                       "payment_order_id = $2 || '_p2'", c->co);
            if (v == NULL || strcmp(v, "0") != 0) {
                comp_fail(run, COMP_CHK_STORY, "dispute: %s: %s of the "
                          "chargeback split onto the order with nothing "
                          "left (released or refunded whole)", c->co,
                          v ? v : "?");
            }
        }

        /* reversed: the capture FAILED, its seller's credit undone */
        if (comp_has(COMP_REVERSED, d)) {
            m = &run->m[COMP_REVERSED];
            c = &run->co[COMP_REVERSED][d][0];
            v = comp_q(m, "SELECT count(*) FROM captures WHERE merchant_id = "
                       "$1 AND payment_order_id = $2 || '_p1' AND kind = "
                       "'capture' AND status = 'FAILED'", c->co);
            if (v == NULL || strcmp(v, "1") != 0) {
                comp_fail(run, COMP_CHK_STORY, "reversed: %s: %s captures "
                          "of order 1 FAILED after the reversal", c->co,
                          v ? v : "?");
            }
        }

        /* sweep: the capture booked, never after a release; without
         * chaos, the first round postponed the release and the second
         * made it */
        m = &run->m[COMP_SWEEP];
        c = &run->co[COMP_SWEEP][d][0];
        p = comp_book_of(books[COMP_SWEEP], c->nonce);
        if (comp_book_int(p, "captured") != 400) {
            comp_fail(run, COMP_CHK_STORY, "sweep: %s: the PSP captured %ld",
                      c->co, comp_book_int(p, "captured"));
        }
        v = comp_q(m, "SELECT count(*) FROM order_events WHERE merchant_id "
                   "= $1 AND checkout_id = $2 AND from_status = 'FAILED' "
                   "AND to_status = 'SUCCESS'", c->co);
        if (v == NULL || strcmp(v, "0") != 0) {
            comp_fail(run, COMP_CHK_STORY, "sweep: %s: %s orders captured "
                      "after they were released", c->co, v ? v : "?");
        }
        if (!run->chaos && c->sweep != NULL
            && strstr(c->sweep, "lease") == NULL
            && strncmp(c->sweep, "postponed, then ", 16) != 0)
        {
            comp_fail(run, COMP_CHK_STORY, "sweep: %s: the rounds: %s",
                      c->co, c->sweep);
        }

        /* cancel: the first cancel while the registration was at the PSP
         * was told to come back; a session it ended was never paid, and
         * a checkout canceled and paid is either refused (Stripe,
         * generic) or booked as paid after failure (Adyen) */
        m = &run->m[COMP_CANCEL];
        for (k = 0; k < COMP_PER_STORY; k++) {
            c = &run->co[COMP_CANCEL][d][k];
            v = comp_q(m, "SELECT status::text || ' ' || "
                       "coalesce(failure_code::text, '-') || ' ' || "
                       "(status = 'SUCCESS' AND failure_code IS NOT NULL)::text "
                       "FROM checkouts WHERE "
                       "merchant_id = $1 AND checkout_id = $2", c->co);
            if (!run->chaos
                && (c->cancel_status != 409 || !c->retry_after))
            {
                comp_fail(run, COMP_CHK_STORY, "cancel: %s: the cancel "
                          "during the registration answered %ld%s", c->co,
                          c->cancel_status,
                          c->retry_after ? "" : " without Retry-After");
            }
            if (!run->chaos && k == 0 && d != 1
                && (c->paid_status == 200 || v == NULL
                    || strcmp(v, "FAILED canceled false") != 0))
            {
                comp_fail(run, COMP_CHK_STORY, "cancel: %s: paid %ld after "
                          "the cancel, now %s", c->co, c->paid_status,
                          v ? v : "?");
            }
            /* the shopper paying as the cancel is retried: whichever the
             * PSP took first stands, and the answer says which (in chaos
             * a cancel may also come before the checkout: the books
             * decide there) */
            if (!run->chaos && k == 1 && !(v != NULL
                            && ((strncmp(v, "SUCCESS", 7) == 0
                                 && (c->cancel_last == 409
                                     /* adyen: canceled here alone,
                                      * then paid after failure */
                                     || (d == 1 && c->cancel_last == 200)))
                                || (strcmp(v, "FAILED canceled false") == 0
                                    && c->cancel_last == 200))))
            {
                comp_fail(run, COMP_CHK_STORY, "cancel: %s: the cancel "
                          "answered %ld as the shopper paid (%ld), now %s",
                          c->co, c->cancel_last, c->paid_status,
                          v ? v : "?");
            }
            p = comp_book_of(books[COMP_CANCEL], c->nonce);
            if (v != NULL && strncmp(v, "FAILED", 6) == 0
                && comp_book_int(p, "captured") != 0)
            {
                comp_fail(run, COMP_CHK_STORY, "cancel: %s: FAILED here, "
                          "%ld captured at the PSP", c->co,
                          comp_book_int(p, "captured"));
            }
        }
    }
}


long
comp_check(comp_run_t *run)
{
    int      s, i;
    long     n;
    json_t  *books[COMP_NSTORIES];

    memset(run->checks, 0, sizeof(run->checks));

    for (s = 0; s < COMP_NSTORIES; s++) {
        books[s] = comp_books(&run->m[s]);
        comp_check_books(run, s, books[s]);
    }

    comp_check_stories(run, books);
    (void) comp_undelivered(run, 1, 1);

    for (s = 0; s < COMP_NSTORIES; s++) {
        json_decref(books[s]);
    }

    for (n = 0, i = 0; i < COMP_NCHECKS; i++) {
        n += run->checks[i];
    }

    return n;
}
