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
    "a cancel racing its registration in flight",
    "a saved method's off-session charge with captures, refunds, disputes"
};

const char *const  comp_check_names[COMP_NCHECKS] = {
    "captured", "refunded", "disputed", "order", "payouts", "moved", "once",
    "forward", "balanced", "wallets", "audit", "shard", "commission",
    "webhooks", "story"
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


/*
 * Each story's merchant takes a commission (doc/MONEY.md, "Commission"),
 * set with payments-merchant set-commission before its first checkout: a
 * capture in part, a reversal, a release, refunds, chargebacks and an
 * off-session charge each meet one, and the books' commission check reads
 * every order.  The platform keeps all of the reversed story's orders.
 */
static const struct {
    const char  *bps;
    const char  *fixed;         /* USD minor units, or NULL */
} comp_commission[COMP_NSTORIES] = {
    { "290", NULL },            /* review */
    { "1234", "USD:30" },       /* dispute */
    { "10000", NULL },          /* reversed */
    { "150", "USD:25" },        /* sweep */
    { "4999", NULL },           /* cancel */
    { "1234", "USD:40" }        /* saved */
};


/* the stories a dialect has: the mock reverses Adyen's and the generic
 * PSP's captures only (Stripe's API has no such event) */
static int
comp_has(int story, int d)
{
    return story != COMP_REVERSED || d != 0;
}


/* A shop's POST, retried under the same key while the answer is a 5xx or
 * none (what API.md tells a shop to do), at most 8 times. */
static resp_t *
comp_shop(comp_run_t *run, const merchant_t *m, const char *path,
    const char *key, const char *body)
{
    req_t        rq;
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

    return books_retried(&rq, 8, 250, &run->steps);
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


/* the shop's id of COMP_SAVED's shopper */
#define COMP_CUSTOMER  "cust_cmp"


/* the checkout's body: orders 10.00 (seller_1) and 5.00 (seller_2), USD */
static char *
comp_body(const comp_co_t *c, int manual, int review)
{
    json_t  *body;

    body = checkout_new(c->co, 2);
    if (c->charge) {
        /* the saved method, charged without the shopper (at its PSP) */
        json_object_del(body, "psp");
        json_object_set_new(body, "payment_method", json_string(c->pm));
        json_object_set_new(body, "off_session", json_true());
    } else {
        json_object_set_new(body, "psp", json_string(comp_psp(c->dialect)));
    }
    if (c->saves) {
        json_object_set_new(body, "save_payment_method",
                            json_pack("{ss ss sb}", "customer", COMP_CUSTOMER,
                                      "usage", "off_session",
                                      "shopper_agreed", 1));
    }
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
    const char  *t, *u;

    t = r->status == 201 && r->len > 0
        ? json_string_value(json_object_get(resp_json(r), "psp_token"))
        : NULL;
    if (t != NULL && c->token == NULL) {
        c->token = strdup(t);
        secret_used(c->token);
        u = json_string_value(json_object_get(resp_json(r), "pay_url"));
        if (u != NULL) {        /* none for an off-session charge */
            secret_used(url_param(u, "t"));
        }
        books_subject(&run->subjects, c->token);
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
    r = books_mock("POST", str_printf("/_control/sessions/%s/pay",
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

    return db_scalar_on(db_of(m), sql, arg ? 2 : 1, p);
}


/* -- quiet --------------------------------------------------------------- */

static int
comp_quiet(comp_run_t *run, int seconds, int patient)
{
    int          s;
    PGconn      *conns[COMP_NSTORIES];
    const char  *ids[COMP_NSTORIES];

    for (s = 0; s < COMP_NSTORIES; s++) {
        ids[s] = run->m[s].id;
        conns[s] = db_of(&run->m[s]);
    }

    return books_quiet_on(&run->subjects, conns, ids, COMP_NSTORIES, seconds,
                          patient);
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

    c = PQconnectdb(shard_conninfo(t->run->m[COMP_CANCEL].shard));
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
    PGconn      *pg;
    const char  *p[3];

    /* the merchant's shard: its checkouts, its lease, its holds */
    pg = db_of(&run->m[COMP_SWEEP]);
    p[0] = run->m[COMP_SWEEP].id;
    p[1] = c->co;

    if (round == 0) {
        db_exec_on(pg, "BEGIN", 0, NULL);
        db_exec_on(pg, "SET LOCAL session_replication_role = replica", 0,
                   NULL);
        db_exec_on(pg, "UPDATE checkouts SET authorized_at = authorized_at - "
                   "interval '8 days' WHERE merchant_id = $1 AND checkout_id "
                   "= $2 AND authorized_at IS NOT NULL", 2, p);
        db_exec_on(pg, "COMMIT", 0, NULL);
    }

    if (run->chaos) {
        return;
    }

    p[0] = "compose";
    v = NULL;
    for (i = 0; i < 50; i++) {
        v = db_scalar_on(pg, "SELECT pay_sweeper_lease($1, 5)", 1, p);
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
    v = db_scalar_on(pg, "SELECT string_agg(merchant_id || ' ' || "
                     "checkout_id || ' ' || action, ',') FROM "
                     "pay_holds_sweep($1, $2::text[], $3::integer[], 0, "
                     "1000)", 3, p);
    db_exec_on(pg, "UPDATE sweeper_lease SET until = now() WHERE id = 1 AND "
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


/* COMP_SAVED: the method the dialect's first checkout saved, charged off
 * session by its second (the method listed within 5 s of the payment) */
static void
comp_charge_saved(comp_run_t *run, int d)
{
    int          i;
    size_t       k;
    json_t      *it;
    resp_t      *r;
    comp_co_t   *saver, *c;
    const char  *co;

    saver = &run->co[COMP_SAVED][d][0];
    c = &run->co[COMP_SAVED][d][1];

    for (i = 0; i < 50 && c->pm == NULL; i++) {
        run->steps++;
        r = api_get(&run->m[COMP_SAVED],
                    "/v1/payment_methods?customer=" COMP_CUSTOMER);
        json_array_foreach(r->status == 200
                           ? json_object_get(resp_json(r), "data") : NULL,
                           k, it)
        {
            co = json_string_value(json_object_get(it, "checkout_id"));
            if (co != NULL && strcmp(co, saver->co) == 0) {
                c->pm = strdup(json_string_value(json_object_get(it, "id")));
            }
        }
        if (c->pm == NULL) {
            msleep(100);
        }
    }

    cr_assert_not_null(c->pm, "compose: saved: %s saved no method",
                       saver->co);
    saver->pm = c->pm;

    comp_register(run, COMP_SAVED, c, 0);
}


/* a chargeback of amount (0: all the PSP still holds of the payment;
 * whole: all it captured, whatever was refunded since) */
static void
comp_dispute(comp_run_t *run, int story, comp_co_t *c, long amount,
    int whole)
{
    long         held;
    json_t      *p;
    resp_t      *r;
    const char  *ref, *id;

    p = books_payment(books_fetch(run->m[story].id), c->nonce);
    ref = p ? json_string_value(json_object_get(p, "payment_ref")) : NULL;
    cr_assert_not_null(ref, "compose: no payment at the PSP for %s", c->co);

    held = books_held(p);
    if (whole) {
        amount = books_int(p, "captured");
    } else if (amount == 0 || amount > held) {
        amount = held;
    }
    cr_assert(amount > 0, "compose: nothing to dispute of %s", c->co);

    run->steps++;
    r = books_mock("POST", "/_control/disputes",
                  str_printf("{\"payment_ref\":\"%s\",\"amount\":%ld}", ref,
                             amount));
    cr_assert_eq(r->status, 200, "compose: dispute: %ld %s", r->status,
                 r->body);
    id = json_string_value(json_object_get(resp_json(r), "id"));
    cr_assert_not_null(id);
    c->dispute = strdup(id);
    books_subject(&run->subjects, c->dispute);
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


static void
comp_set_commission(comp_run_t *run, int s)
{
    char        *out;
    const char  *args[] = { "set-commission", "--id", run->m[s].id, "--bps",
                            comp_commission[s].bps,
                            comp_commission[s].fixed ? "--fixed-minor" : NULL,
                            comp_commission[s].fixed, NULL };

    cr_assert_eq(merchant_toolv_of(&run->m[s], args, &out), 0,
                 "compose: set-commission for %s: %s", comp_story_names[s],
                 out);
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

    /* on a sharded stack, the stories' merchants over every shard */
    for (s = 0; s < COMP_NSTORIES; s++) {
        merchant_new_nth(&run->m[s], (unsigned long) s);
        comp_set_commission(run, s);
        for (d = 0; d < COMP_DIALECTS; d++) {
            for (k = 0; k < COMP_PER_STORY; k++) {
                c = &run->co[s][d][k];
                c->dialect = d;
                c->used = comp_has(s, d)
                          && (k == 0 || s == COMP_DISPUTE
                              || s == COMP_CANCEL || s == COMP_SAVED);
                c->saves = s == COMP_SAVED && k == 0;
                c->charge = s == COMP_SAVED && k == 1;
                c->co = uid("cmp");
                c->nonce = nonce(&run->m[s], c->co);
                c->cancel_status = -1;
                c->paid_status = -1;
                books_subject(&run->subjects, c->nonce);
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
        comp_register(run, COMP_SAVED, &run->co[COMP_SAVED][d][0], 1);
    }

    comp_cancel_story(run);

    /* 2. the approvals: registered as stored, manual capture kept */
    for (d = 0; d < COMP_DIALECTS; d++) {
        c = &run->co[COMP_REVIEW][d][0];
        r = books_approve(c->nonce, 8, 250, &run->steps);
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
                if (c->used && !c->charge && comp_pay(run, c) != 200) {
                    comp_fail(run, COMP_CHK_STORY, "%s: the shopper could "
                              "not pay %s: %ld", comp_story_names[s], c->co,
                              c->paid_status);
                }
            }
        }
    }

    comp_quiet(run, 20, 0);

    /* 3b. the saved methods charged without the shopper */
    for (d = 0; d < COMP_DIALECTS; d++) {
        comp_charge_saved(run, d);
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

        c = &run->co[COMP_SAVED][d][0];
        (void) comp_capture(run, COMP_SAVED, c, 1, "4.00");

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

        c = &run->co[COMP_SAVED][d][0];
        (void) comp_void(run, COMP_SAVED, c, 2);
        (void) comp_refund(run, COMP_SAVED, c, 1, "1.00");

        c = &run->co[COMP_SAVED][d][1];
        (void) comp_refund(run, COMP_SAVED, c, 2, "5.00");
        (void) comp_refund(run, COMP_SAVED, c, 1, "2.00");

        if (comp_has(COMP_REVERSED, d)) {
            char  *id;

            c = &run->co[COMP_REVERSED][d][0];
            id = books_capture_id(run->m[COMP_REVERSED].id, c->nonce, 0);
            if (id == NULL) {
                comp_fail(run, COMP_CHK_STORY, "reversed: no capture of %s "
                          "at the PSP", c->co);
            } else {
                run->steps++;
                r = books_mock("POST", str_printf("/_control/captures/%s/fail",
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
        comp_dispute(run, COMP_DISPUTE, &run->co[COMP_DISPUTE][d][0], 0, 0);
        comp_dispute(run, COMP_DISPUTE, &run->co[COMP_DISPUTE][d][1], 0,
                     d == 2);
        comp_dispute(run, COMP_SAVED, &run->co[COMP_SAVED][d][0], 0, 0);
        comp_dispute(run, COMP_SAVED, &run->co[COMP_SAVED][d][1], 0, 0);
    }

    comp_quiet(run, 20, 0);

    for (s = COMP_DISPUTE; s <= COMP_SAVED; s += COMP_SAVED - COMP_DISPUTE) {
        for (d = 0; d < COMP_DIALECTS; d++) {
            for (k = 0; k < COMP_PER_STORY; k++) {
                c = &run->co[s][d][k];
                run->steps++;
                r = books_mock("POST",
                               str_printf("/_control/disputes/%s/close",
                                          c->dispute),
                               (d + k + s) % 3 == 1
                               ? "{\"outcome\":\"won\"}"
                               : "{\"outcome\":\"lost\"}");
                cr_assert_eq(r->status, 200, "compose: close: %ld %s",
                             r->status, r->body);
            }
        }
    }

    /* in chaos the sweeper's round is the sweeper's: give it a few */
    if (chaos) {
        msleep(1500);
    }

    comp_quiet(run, 30, 1);
}


/* -- the checks ---------------------------------------------------------- */

static void
comp_books_fail(void *ctx, books_check_e chk, const char *line)
{
    comp_run_t  *run = ctx;

    comp_fail(run, (int) chk, "%s", line);
}


/* the gateway's books of one story's merchant against the PSP's */
static void
comp_check_books(comp_run_t *run, int s, json_t *books)
{
    int           d, k;
    size_t        n;
    comp_co_t    *c;
    books_cmp_t   cmp;
    const char   *ids[COMP_DIALECTS * COMP_PER_STORY];
    const char   *nonces[COMP_DIALECTS * COMP_PER_STORY];
    const char   *labels[COMP_DIALECTS * COMP_PER_STORY];

    n = 0;
    for (d = 0; d < COMP_DIALECTS; d++) {
        for (k = 0; k < COMP_PER_STORY; k++) {
            c = &run->co[s][d][k];
            if (!c->used) {
                continue;
            }
            ids[n] = c->co;
            nonces[n] = c->nonce;
            labels[n] = str_printf("%s: %s", comp_story_names[s], c->co);
            n++;
        }
    }

    memset(&cmp, 0, sizeof(cmp));
    cmp.merchant_id = run->m[s].id;
    cmp.conn = db_of(&run->m[s]);
    cmp.shard = run->m[s].shard;
    cmp.books = books;
    cmp.nco = n;
    cmp.checkout_ids = ids;
    cmp.nonces = nonces;
    cmp.labels = labels;
    cmp.strict = 1;
    cmp.fail = comp_books_fail;
    cmp.ctx = run;

    books_compare(&cmp);
}


/* an event the PSP sent and the gateway never accepted */
static void
comp_never_accepted(void *ctx, const char *subject, json_t *ev, int given_up)
{
    comp_run_t  *run = ctx;

    (void) given_up;

    comp_fail(run, COMP_CHK_WEBHOOKS, "%s of %s not accepted after %lld "
              "attempts: %lld %s",
              json_string_value(json_object_get(ev, "type")), subject,
              json_integer_value(json_object_get(ev, "attempts")),
              json_integer_value(json_object_get(ev, "last_status")),
              json_string_value(json_object_get(ev, "last_body")));
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
        p = books_payment(books[COMP_REVIEW], c->nonce);
        if (books_int(p, "captured") != 300) {
            comp_fail(run, COMP_CHK_STORY, "review: %s: the PSP captured "
                      "%ld, not the 3.00 the shop asked for",
                      c->co, books_int(p, "captured"));
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
        p = books_payment(books[COMP_SWEEP], c->nonce);
        if (books_int(p, "captured") != 400) {
            comp_fail(run, COMP_CHK_STORY, "sweep: %s: the PSP captured %ld",
                      c->co, books_int(p, "captured"));
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

        /* saved: the manual checkout saved its method, 4.00 of it
         * captured and 1.00 refunded at the PSP; the off-session charge
         * of that method taken whole (15.00), 7.00 of it refunded, and
         * the checkout SUCCESS with the method on it */
        m = &run->m[COMP_SAVED];
        c = &run->co[COMP_SAVED][d][0];
        p = books_payment(books[COMP_SAVED], c->nonce);
        if (books_int(p, "captured") != 400 || books_int(p, "refunded") != 100)
        {
            comp_fail(run, COMP_CHK_STORY, "saved: %s: the PSP captured %ld "
                      "and refunded %ld, not 4.00 and 1.00", c->co,
                      books_int(p, "captured"), books_int(p, "refunded"));
        }
        v = comp_q(m, "SELECT count(*) FROM payment_methods WHERE "
                   "merchant_id = $1 AND checkout_id = $2", c->co);
        if (v == NULL || strcmp(v, "1") != 0) {
            comp_fail(run, COMP_CHK_STORY, "saved: %s: %s methods saved",
                      c->co, v ? v : "?");
        }
        c = &run->co[COMP_SAVED][d][1];
        p = books_payment(books[COMP_SAVED], c->nonce);
        if (books_int(p, "captured") != 1500
            || books_int(p, "refunded") != 700)
        {
            comp_fail(run, COMP_CHK_STORY, "saved: the charge %s: the PSP "
                      "captured %ld and refunded %ld, not 15.00 and 7.00",
                      c->co, books_int(p, "captured"),
                      books_int(p, "refunded"));
        }
        v = comp_q(m, "SELECT status::text || ' ' || (payment_method_id IS "
                   "NOT NULL)::text FROM checkouts WHERE merchant_id = $1 "
                   "AND checkout_id = $2", c->co);
        if (v == NULL || strcmp(v, "SUCCESS true") != 0) {
            comp_fail(run, COMP_CHK_STORY, "saved: the charge %s is %s",
                      c->co, v ? v : "gone");
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
            p = books_payment(books[COMP_CANCEL], c->nonce);
            if (v != NULL && strncmp(v, "FAILED", 6) == 0
                && books_int(p, "captured") != 0)
            {
                comp_fail(run, COMP_CHK_STORY, "cancel: %s: FAILED here, "
                          "%ld captured at the PSP", c->co,
                          books_int(p, "captured"));
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
        books[s] = books_fetch(run->m[s].id);
        comp_check_books(run, s, books[s]);
    }

    comp_check_stories(run, books);
    (void) books_undelivered(&run->subjects, 1, comp_never_accepted, run);

    for (s = 0; s < COMP_NSTORIES; s++) {
        json_decref(books[s]);
    }

    for (n = 0, i = 0; i < COMP_NCHECKS; i++) {
        n += run->checks[i];
    }

    return n;
}
