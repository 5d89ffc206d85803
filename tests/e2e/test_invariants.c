/*
 * End to end: after 1,000 mixed payments (issue #3) every ledger
 * transaction sums to zero, every wallet equals its ledger sum (and the sum
 * this test expects, to the last minor unit, each order's commission
 * taken), the platform's commission the sum expected, the audit chains
 * verify, each payment was booked exactly once, no order moved
 * backwards, and each checkout ends where its story says.
 *
 * The payments take the real path.  1,000 checkouts (4 fresh merchants,
 * three of them taking a commission, one with a fixed part that takes all
 * of the smallest orders; 7 sellers, 1-3 orders each, USD, EUR, JPY and
 * KWD, amounts from one minor unit to 10^8 of them, some written "10.5"
 * for "10.50") are registered through POST /v1/payments, 24 at a time, on the mock's three APIs
 * (Stripe, Adyen, generic).  Most stories then go through the mock's
 * control API, 96 sessions in flight: it pays or declines each session and
 * sends its own signed webhooks, with fault rules for duplicated,
 * out-of-order, async and lying deliveries.  The shop cancels some
 * checkouts before any payment (POST /v1/checkouts/{id}/cancel: FAILED,
 * canceled, whether Stripe's expiry webhook or the cancel's answer came
 * first) and some right after the shopper paid, with the payment's
 * webhook in flight (409 checkout_already_paid: booked once).  The rest are Stripe events
 * this test signs itself: one event posted twice at the same instant, a
 * success racing its contrary event, an async payment that fails.  When
 * every delivery the mock scheduled has been answered with a 2xx
 * (GET /_control/webhooks), the books are read with libpq, and the
 * gateway's own view (GET /v1/checkouts/{id}) is compared.
 *
 * The checks are proven able to fail at the end: inside a transaction that
 * is rolled back, the books are broken on purpose (an unbalanced ledger
 * transaction, a wallet one minor unit off, an order moved back, an event
 * nobody sent, an edited audit row) and every check must see it.
 *
 * Runs in about 12 s alone on 2 cores; the story counts are inv_stories.
 *
 * On a stack of several merchant shards (E2E_SHARDS=1 bash ci/e2e.sh) the
 * suite's merchants live on the shards in turn (merchant_new_nth): the
 * invariants over every merchant of the database hold in each shard's,
 * the run's merchants are read on their own shard only, and none of them
 * has a row on a shard it does not live on.
 */

#include "harness.h"

#include <openssl/evp.h>
#include <payments/commission.h>
#include <time.h>


#define INV_CHECKOUTS   1000
#define INV_MERCHANTS   4
#define INV_SELLERS     7
#define INV_CURRENCIES  4
#define INV_PSPS        3
#define INV_AT_ONCE     24
#define INV_WINDOW      96
#define INV_SETTLE_S    90
#define INV_SHARDS      4       /* at most (ci/services.sh --shards) */


static const char  *inv_currencies[INV_CURRENCIES] = {
    "USD", "JPY", "KWD", "EUR"
};

static const int    inv_exponents[INV_CURRENCIES] = { 2, 0, 3, 2 };

static const char  *inv_sellers[INV_SELLERS] = {
    "seller_a", "seller.b", "seller-c", "s4", "acct.5.eu", "SELLER_6",
    "s_7-x.y"
};

/* the merchants' commissions (doc/MONEY.md, "Commission"), set with
 * payments-merchant set-commission before their first checkout: none, a
 * rate, and two rates with a fixed part in each currency (in minor units,
 * inv_currencies' order) that takes all of the smallest orders */
static const struct {
    int          bps;
    long         fixed[INV_CURRENCIES];
} inv_commission[INV_MERCHANTS] = {
    { 0, { 0, 0, 0, 0 } },
    { 290, { 0, 0, 0, 0 } },
    { 1234, { 30, 5, 250, 25 } },
    { 4999, { 1, 1, 1, 1 } }
};

/* [0] is PAY_TEST_PSP, the mock's Stripe */
static const char  *inv_psps[INV_PSPS] = {
    NULL, "mock_adyen", "mock_generic"
};


typedef enum {
    /* the mock pays or declines, and sends its own webhooks */
    INV_PAID = 0,
    INV_DECLINED,           /* Stripe: checkout.session.expired */
    INV_DUPLICATED,         /* 1-3 extra copies at once; async every other */
    INV_OUT_OF_ORDER,       /* a contrary event first, then the success */
    INV_AMOUNT_LIE,         /* every event names another amount */
    INV_ASYNC,              /* pending first, the money 150 ms later */
    INV_NEVER_PAID,
    /* the shop cancels (POST /v1/checkouts/{id}/cancel) */
    INV_CANCELED,           /* before any payment: FAILED, canceled */
    INV_PAID_CANCELED,      /* right after the shopper paid: refused, 409 */
    /* Stripe events this test signs */
    INV_TWICE_AT_ONCE,      /* one completed event, posted twice at once */
    INV_RACE,               /* completed and expired, posted at once */
    INV_ASYNC_FAILED,       /* completed unpaid, then async_payment_failed */
    INV_NSTORIES
} inv_story_e;


static const struct {
    const char  *name;
    size_t       count;
} inv_stories[INV_NSTORIES] = {
    { "paid", 400 },
    { "declined", 100 },
    { "duplicated", 80 },
    { "out of order", 60 },
    { "amount mismatch", 50 },
    { "async", 60 },
    { "never paid", 80 },
    { "canceled", 40 },
    { "paid, then a cancel refused", 30 },
    { "signed: twice at once", 40 },
    { "signed: success races expiry", 30 },
    { "signed: async then failed", 30 }
};


/* a payment event's outcomes (pay_event_apply; the decision is
 * sql/functions/pay_webhook_apply_core.sql) */
typedef enum {
    INV_APPLIED = 0,
    INV_ALREADY,
    INV_LATE_CONTRARY,
    INV_PENDING,
    INV_IGNORED,
    INV_UNKNOWN,
    INV_MISMATCH,
    INV_AMOUNT_MISMATCH,
    INV_PAID_AFTER_FAILED,
    INV_NOUTCOMES
} inv_outcome_e;


static const char  *inv_outcomes[INV_NOUTCOMES] = {
    "applied", "already", "late_contrary", "pending", "ignored",
    "unknown_checkout", "mismatch", "amount_mismatch", "paid_after_failed"
};


typedef struct {
    char           co[16];
    char           token[96];
    inv_story_e    story;
    size_t         merchant;
    size_t         psp;
    size_t         currency;
    size_t         norders;
    long           amount[3];
    size_t         seller[3];
    long           total;
    int            copies;      /* INV_DUPLICATED: 1 + webhook_duplicate */
    int            async;
    long           deliveries;  /* what the mock schedules for its story */
    const char    *expect;      /* final status */
    int            late;        /* the success came after a FAILED: booked,
                                   each order FAILED -> SUCCESS too */
    int            expired_first;   /* INV_CANCELED on Stripe: the expiry
                                       webhook the expire call set off
                                       failed it before the cancel's own
                                       answer was stored */

    /* the registration request */
    char          *body;
    char          *auth;
    char          *idem;
    const char    *hdr[4];
} inv_payment_t;


typedef struct {
    merchant_t     m[INV_MERCHANTS];
    int            nshards;     /* shards_n() */
    char          *shard_ids[INV_SHARDS];   /* "{m1,m2,...}", a text[]
                                               parameter: the merchants
                                               on each shard (unsharded:
                                               all of them) */
    char          *whsec;       /* the Stripe webhook secret */
    inv_payment_t  p[INV_CHECKOUTS];

    /* what the stories add up to */
    long           wallet[INV_MERCHANTS][INV_SELLERS][INV_CURRENCIES];
    long           clearing[INV_MERCHANTS][INV_PSPS][INV_CURRENCIES];
    long           commission[INV_MERCHANTS][INV_CURRENCIES];
    long           comm_orders[3];  /* paid orders the commission took
                                       nothing of, a part of, all of */
    long           outcome[INV_MERCHANTS][INV_NOUTCOMES];
    long           txns[INV_MERCHANTS];
    long           terminal_orders[INV_MERCHANTS];
    long           orders[INV_MERCHANTS];
} inv_run_t;


/* -- the plan -------------------------------------------------------------- */

static unsigned long
inv_mix(unsigned long x)
{
    x += 0x9e3779b97f4a7c15UL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
    return x ^ (x >> 31);
}


static const char *
inv_psp(size_t k)
{
    return k == 0 ? env("PAY_TEST_PSP") : inv_psps[k];
}


static void
inv_plan(inv_payment_t *p, size_t i)
{
    size_t         j, slot, cum, k;
    unsigned long  h, hj;

    memset(p, 0, sizeof(*p));
    snprintf(p->co, sizeof(p->co), "inv_%04zu", i);

    /* a permutation of the slots spreads every story over the run */
    slot = (i * 7919 + 13) % INV_CHECKOUTS;
    cum = 0;

    for (k = 0; k < INV_NSTORIES; k++) {
        cum += inv_stories[k].count;
        if (slot < cum) {
            break;
        }
    }

    cr_assert(k < INV_NSTORIES);
    p->story = (inv_story_e) k;

    h = inv_mix(i);
    p->merchant = h % INV_MERCHANTS;
    p->currency = (h >> 8) % INV_CURRENCIES;
    p->psp = p->story >= INV_TWICE_AT_ONCE ? 0 : (h >> 16) % INV_PSPS;

    /* Adyen's session cannot be ended: its cancel right after a payment
     * is the gateway's alone, and whether the payment's webhook came first
     * decides 409 or paid after the failure; the canceled story covers it */
    if (p->story == INV_PAID_CANCELED && p->psp == 1) {
        p->psp = 2;
    }
    p->norders = 1 + (h >> 24) % 3;

    for (j = 0; j < p->norders; j++) {
        hj = inv_mix(h ^ (j + 1));

        switch (hj % 4) {
        case 0:
            p->amount[j] = 1 + (long) ((hj >> 8) % 99);
            break;
        case 1:
            p->amount[j] = 100 + (long) ((hj >> 8) % 9900);
            break;
        case 2:
            p->amount[j] = 10000 + (long) ((hj >> 8) % 990000);
            break;
        default:
            p->amount[j] = 1000000 + (long) ((hj >> 8) % 99000000);
        }

        /* Stripe wants three-decimal amounts to end in 0; the others not */
        if (p->psp == 0 && inv_exponents[p->currency] == 3) {
            p->amount[j] *= 10;
        }

        /* two orders of one checkout may pay the same seller */
        p->seller[j] = (hj >> 40) % INV_SELLERS;
        p->total += p->amount[j];
    }

    switch (p->story) {
    case INV_PAID:
        p->deliveries = 1;
        p->expect = "SUCCESS";
        break;
    case INV_DECLINED:
        p->deliveries = 1;
        /* an Adyen refusal is one attempt: the session stays open */
        p->expect = p->psp == 1 ? "EXECUTING" : "FAILED";
        break;
    case INV_DUPLICATED:
        p->copies = 2 + (int) (i % 3);
        p->async = (int) (i / 3) % 2;
        p->deliveries = p->copies * (p->async ? 2 : 1);
        p->expect = "SUCCESS";
        break;
    case INV_OUT_OF_ORDER:
        p->deliveries = 2;
        /* Adyen: a refused attempt, then the shopper pays: paid.  Stripe:
         * an async payment's success before its unpaid completion (Stripe
         * never expires a completed session).  generic: a failure first,
         * then the success: the money the PSP took is booked all the
         * same */
        p->expect = "SUCCESS";
        p->late = p->psp == 2;
        p->async = p->psp == 0;
        break;
    case INV_AMOUNT_LIE:
        p->deliveries = 1;
        p->expect = "EXECUTING";
        break;
    case INV_ASYNC:
        p->async = 1;
        p->deliveries = 2;
        p->expect = "SUCCESS";
        break;
    case INV_NEVER_PAID:
        p->expect = "EXECUTING";
        break;
    case INV_CANCELED:
        /* Stripe says so with checkout.session.expired; the others send
         * nothing (Adyen's session is left to lapse) */
        p->deliveries = p->psp == 0;
        p->expect = "FAILED";
        break;
    case INV_PAID_CANCELED:
        p->deliveries = 1;
        p->expect = "SUCCESS";
        break;
    case INV_TWICE_AT_ONCE:
        p->expect = "SUCCESS";
        break;
    case INV_RACE:
        /* the success is booked whichever commits first */
        p->expect = "SUCCESS";
        break;
    case INV_ASYNC_FAILED:
        p->expect = "FAILED";
        break;
    default:
        cr_assert_fail("story %d", (int) p->story);
    }
}


/* "15.00", "1500", "1.500"; trim: "15", "1.5" (the same amounts) */
static char *
inv_decimal(long minor, int exponent, int trim)
{
    int     k;
    long    unit;
    char   *s;
    size_t  n;

    if (exponent == 0) {
        return str_printf("%ld", minor);
    }

    for (unit = 1, k = 0; k < exponent; k++) {
        unit *= 10;
    }

    s = str_printf("%ld.%0*ld", minor / unit, exponent, minor % unit);

    if (trim) {
        n = strlen(s);
        while (s[n - 1] == '0') {
            s[--n] = '\0';
        }
        if (s[n - 1] == '.') {
            s[--n] = '\0';
        }
    }

    return s;
}


static void
inv_request(inv_run_t *run, inv_payment_t *p, size_t i)
{
    size_t   j;
    json_t  *orders, *o, *body;

    orders = json_array();

    for (j = 0; j < p->norders; j++) {
        o = json_pack("{s:s, s:s, s:s, s:s}",
                      "payment_order_id", str_printf("%s_p%zu", p->co, j + 1),
                      "seller_account", inv_sellers[p->seller[j]],
                      "amount", inv_decimal(p->amount[j],
                                            inv_exponents[p->currency],
                                            (i + j) % 5 == 0),
                      "currency", inv_currencies[p->currency]);
        cr_assert_not_null(o);
        json_array_append_new(orders, o);
    }

    body = json_pack("{s:s, s:{s:s}, s:o, s:s, s:s, s:s}",
                     "checkout_id", p->co,
                     "buyer_info", "email", "ann@example.com",
                     "payment_orders", orders,
                     "success_url", SHOP_ORIGIN "/thanks",
                     "cancel_url", SHOP_ORIGIN "/cart",
                     "psp", inv_psp(p->psp));
    cr_assert_not_null(body);

    p->body = dump(body);
    json_decref(body);

    p->auth = str_printf("Authorization: Bearer %s",
                         run->m[p->merchant].key);
    p->idem = str_printf("Idempotency-Key: inv-%s-%s", run->m[p->merchant].id,
                         p->co);
    p->hdr[0] = "Content-Type: application/json";
    p->hdr[1] = p->auth;
    p->hdr[2] = p->idem;
    p->hdr[3] = NULL;
}


/* -- talking to the gateway and the mock ----------------------------------- */

static int
inv_transient(resp_t *r)
{
    /* the gateway gave up on the PSP, or the first try still holds the key:
     * the same request under the same key resumes it (API.md) */
    return r->status == 0 || r->status == 502 || r->status == 503
           || r->status == 504
           || (r->status == 409
               && mem_contains(r->body, r->len, "idempotency_key_in_use"));
}


static long
inv_register(inv_run_t *run)
{
    long            retries;
    size_t          i, k, ntodo, round;
    size_t         *todo;
    req_t          *rqs;
    resp_t        **rs;
    json_t         *j;
    const char     *token, *status;
    inv_payment_t  *p;

    todo = calloc(INV_CHECKOUTS, sizeof(size_t));
    rqs = calloc(INV_CHECKOUTS, sizeof(req_t));
    cr_assert(todo != NULL && rqs != NULL);

    for (i = 0; i < INV_CHECKOUTS; i++) {
        todo[i] = i;
    }

    ntodo = INV_CHECKOUTS;
    retries = 0;

    for (round = 0; ntodo > 0 && round < 10; round++) {
        if (round > 0) {
            retries += (long) ntodo;
            msleep(300);
        }

        for (k = 0; k < ntodo; k++) {
            p = &run->p[todo[k]];
            rqs[k].method = "POST";
            rqs[k].url = gw_url(PATH_PAYMENTS);
            rqs[k].headers = p->hdr;
            rqs[k].body = p->body;
            rqs[k].len = (size_t) -1;
        }

        rs = http_many(rqs, ntodo, INV_AT_ONCE);

        for (k = 0, i = 0; k < ntodo; k++) {
            p = &run->p[todo[k]];

            if (rs[k]->status != 201) {
                cr_assert(inv_transient(rs[k]), "%s (%s): %ld (%s) %s", p->co,
                          inv_psp(p->psp), rs[k]->status, rs[k]->error,
                          rs[k]->body);
                todo[i++] = todo[k];
                resp_free(rs[k]);
                continue;
            }

            j = resp_json(rs[k]);
            token = json_string_value(json_object_get(j, "psp_token"));
            status = json_string_value(json_object_get(j, "status"));
            cr_assert(token != NULL && status != NULL
                      && strcmp(status, "EXECUTING") == 0
                      && strlen(token) < sizeof(p->token),
                      "%s: %s", p->co, rs[k]->body);
            cr_assert_eq(json_array_size(json_object_get(j,
                                                         "payment_orders")),
                         p->norders, "%s: %s", p->co, rs[k]->body);
            strcpy(p->token, token);
            resp_free(rs[k]);
        }

        ntodo = i;
        free(rs);
    }

    cr_assert_eq(ntodo, 0, "%zu registrations never succeeded", ntodo);

    free(todo);
    free(rqs);

    return retries;
}


/* The fault rule a story needs (the mock picks it when the shopper acts). */
static char *
inv_rule(const inv_run_t *run, const inv_payment_t *p)
{
    char        *n;
    const char  *extra;

    n = nonce(&run->m[p->merchant], p->co);
    extra = p->async ? ",\"async_payment\":true,\"async_delay_ms\":150" : "";

    switch (p->story) {
    case INV_DUPLICATED:
        return str_printf("{\"match\":\"%s\",\"webhook_duplicate\":%d%s}", n,
                          p->copies - 1, extra);
    case INV_OUT_OF_ORDER:
        return str_printf("{\"match\":\"%s\",\"webhook_out_of_order\":true%s}",
                          n, extra);
    case INV_AMOUNT_LIE:
        /* one unit more, one less (0 is allowed), or the decimals shifted */
        return str_printf("{\"match\":\"%s\",\"webhook_amount\":%ld}", n,
                          p->co[7] % 3 == 0 ? p->total + 1
                          : p->co[7] % 3 == 1 ? p->total - 1
                          : p->total * 10);
    case INV_ASYNC:
        return str_printf("{\"match\":\"%s\"%s}", n, extra);
    default:
        return NULL;
    }
}


/* POSTs to the mock's control API, INV_AT_ONCE at a time; every answer 200. */
static void
inv_control(char **paths, char **bodies, size_t n)
{
    size_t        k;
    req_t        *rqs;
    resp_t      **rs;
    const char   *h[] = { "Content-Type: application/json", NULL };

    if (n == 0) {
        return;
    }

    rqs = calloc(n, sizeof(req_t));
    cr_assert_not_null(rqs);

    for (k = 0; k < n; k++) {
        rqs[k].method = "POST";
        rqs[k].url = mock_url(paths[k]);
        rqs[k].headers = h;
        rqs[k].body = bodies != NULL ? bodies[k] : "";
        rqs[k].len = (size_t) -1;
    }

    rs = http_many(rqs, n, INV_AT_ONCE);

    for (k = 0; k < n; k++) {
        cr_assert(rs[k]->status == 200 || rs[k]->status == 201,
                  "mock %s %s: %ld (%s) %s", paths[k],
                  bodies != NULL ? bodies[k] : "", rs[k]->status,
                  rs[k]->error, rs[k]->body);
        resp_free(rs[k]);
    }

    free(rs);
    free(rqs);
}


static void
inv_faults(inv_run_t *run)
{
    size_t   i, n;
    char   **paths, **bodies;

    paths = calloc(INV_CHECKOUTS, sizeof(char *));
    bodies = calloc(INV_CHECKOUTS, sizeof(char *));
    cr_assert(paths != NULL && bodies != NULL);

    for (i = 0, n = 0; i < INV_CHECKOUTS; i++) {
        bodies[n] = inv_rule(run, &run->p[i]);
        if (bodies[n] != NULL) {
            paths[n++] = "/_control/faults";
        }
    }

    inv_control(paths, bodies, n);

    free(paths);
    free(bodies);
}


/* A Stripe event about p's session, signed as the mock signs its own. */
static void
inv_event(req_t *rq, const inv_run_t *run, const inv_payment_t *p,
    const char *tag, const char *type, int paid)
{
    char         *body, cur[4];
    size_t        k;
    const char  **h;

    for (k = 0; k < 3; k++) {
        cur[k] = (char) (inv_currencies[p->currency][k] - 'A' + 'a');
    }
    cur[3] = '\0';

    body = str_printf("{\"id\":\"evt_%s_%s_%s\",\"object\":\"event\","
                      "\"type\":\"%s\",\"created\":%ld,\"livemode\":false,"
                      "\"data\":{\"object\":{\"id\":\"%s\","
                      "\"object\":\"checkout.session\","
                      "\"client_reference_id\":\"%s:%s\","
                      "\"amount_total\":%ld,\"currency\":\"%s\","
                      "\"payment_status\":\"%s\",\"status\":\"%s\"}}}",
                      run->m[p->merchant].id, p->co, tag, type,
                      (long) time(NULL), p->token, run->m[p->merchant].id,
                      p->co, p->total, cur, paid ? "paid" : "unpaid",
                      strcmp(type, "checkout.session.expired") == 0
                      ? "expired" : "complete");

    h = calloc(3, sizeof(char *));
    cr_assert_not_null(h);
    h[0] = "Content-Type: application/json";
    h[1] = stripe_signature(run->whsec, (long) time(NULL), body);

    rq->method = "POST";
    rq->url = gw_url(str_printf("/v1/webhooks/%s", env("PAY_TEST_PSP")));
    rq->headers = h;
    rq->body = body;
    rq->len = (size_t) -1;
}


/*
 * Posts n events, every one of a batch of `together` at the same moment.
 * Each must be answered 200; an answer the contract lets a PSP retry (none,
 * or a 5xx: "a failed commit is a 5xx so the PSP retries") is sent again,
 * as a PSP would.  Returns how many were.
 */
static long
inv_post(req_t *rqs, size_t n, size_t together)
{
    long      retried;
    size_t    k, b, len, attempt;
    resp_t  **rs, *r;

    retried = 0;

    for (b = 0; b < n; b += together) {
        len = n - b < together ? n - b : together;
        rs = http_many(rqs + b, len, len);

        for (k = 0; k < len; k++) {
            for (attempt = 1;
                 (rs[k]->status == 0 || rs[k]->status >= 500) && attempt < 5;
                 attempt++)
            {
                retried++;
                msleep(200 * (long) attempt);
                r = http(&rqs[b + k]);
                resp_free(rs[k]);
                rs[k] = r;
            }

            cr_assert_eq(rs[k]->status, 200, "webhook %s: %ld (%s) %s",
                         rqs[b + k].body, rs[k]->status, rs[k]->error,
                         rs[k]->body);
            resp_free(rs[k]);
        }

        free(rs);
    }

    return retried;
}


static long
inv_signed(inv_run_t *run)
{
    long            retried;
    size_t          i, npairs, nfirst, nsecond;
    req_t          *pairs, *first, *second;
    inv_payment_t  *p;

    pairs = calloc(2 * INV_CHECKOUTS, sizeof(req_t));
    first = calloc(INV_CHECKOUTS, sizeof(req_t));
    second = calloc(INV_CHECKOUTS, sizeof(req_t));
    cr_assert(pairs != NULL && first != NULL && second != NULL);

    npairs = 0;
    nfirst = 0;
    nsecond = 0;

    for (i = 0; i < INV_CHECKOUTS; i++) {
        p = &run->p[i];

        switch (p->story) {
        case INV_TWICE_AT_ONCE:
            /* the same bytes twice: one event, two deliveries */
            inv_event(&pairs[npairs], run, p, "c",
                      "checkout.session.completed", 1);
            pairs[npairs + 1] = pairs[npairs];
            npairs += 2;
            break;
        case INV_RACE:
            inv_event(&pairs[npairs++], run, p, "c",
                      "checkout.session.completed", 1);
            inv_event(&pairs[npairs++], run, p, "x",
                      "checkout.session.expired", 0);
            break;
        case INV_ASYNC_FAILED:
            inv_event(&first[nfirst++], run, p, "c",
                      "checkout.session.completed", 0);
            inv_event(&second[nsecond++], run, p, "f",
                      "checkout.session.async_payment_failed", 0);
            break;
        default:
            break;
        }
    }

    /* 16 pairs at a time, both halves of a pair in flight together */
    retried = inv_post(pairs, npairs, 32);
    retried += inv_post(first, nfirst, INV_AT_ONCE);
    retried += inv_post(second, nsecond, INV_AT_ONCE);

    free(pairs);
    free(first);
    free(second);

    return retried;
}


/*
 * One look at the mock's deliveries for the n checkouts of todo: those
 * whose every scheduled delivery has been answered with a 2xx are dropped
 * from todo (the gateway answers only after COMMIT, so their books are
 * final).  Returns how many of their deliveries needed more than one
 * attempt.
 */
static long
inv_poll(inv_run_t *run, size_t *todo, size_t *ntodo, time_t deadline)
{
    long            retried, count, done, tries;
    size_t          i, k, n;
    req_t          *rqs;
    resp_t        **rs;
    json_t         *events, *e;
    inv_payment_t  *p;

    if (*ntodo == 0) {
        return 0;
    }

    rqs = calloc(*ntodo, sizeof(req_t));
    cr_assert_not_null(rqs);

    for (k = 0; k < *ntodo; k++) {
        rqs[k].method = "GET";
        rqs[k].url = mock_url(str_printf("/_control/webhooks?session=%s",
                                         url_escape(run->p[todo[k]].token)));
        rqs[k].headers = NULL;
        rqs[k].body = NULL;
        rqs[k].len = 0;
    }

    rs = http_many(rqs, *ntodo, INV_AT_ONCE);
    retried = 0;

    for (k = 0, n = 0; k < *ntodo; k++) {
        p = &run->p[todo[k]];
        cr_assert_eq(rs[k]->status, 200, "mock webhooks: %ld %s",
                     rs[k]->status, rs[k]->body);

        events = json_object_get(resp_json(rs[k]), "events");
        count = (long) json_array_size(events);
        cr_assert(count <= p->deliveries,
                  "%s (%s, %s): %ld deliveries, %ld expected: %s", p->co,
                  inv_stories[p->story].name, inv_psp(p->psp), count,
                  p->deliveries, rs[k]->body);

        done = 0;
        tries = 0;

        json_array_foreach(events, i, e) {
            if (json_is_true(json_object_get(e, "delivered"))) {
                done++;
                tries += json_integer_value(json_object_get(e, "attempts"))
                         > 1;
                continue;
            }

            cr_assert(json_integer_value(json_object_get(e, "attempts")) < 10,
                      "%s (%s, %s): the mock gave up: %s", p->co,
                      inv_stories[p->story].name, inv_psp(p->psp),
                      rs[k]->body);
        }

        if (count < p->deliveries || done < count) {
            cr_assert(time(NULL) < deadline,
                      "%s (%s, %s) has not settled in %d s: %s", p->co,
                      inv_stories[p->story].name, inv_psp(p->psp),
                      INV_SETTLE_S, rs[k]->body);
            todo[n++] = todo[k];

        } else {
            retried += tries;
        }

        resp_free(rs[k]);
    }

    *ntodo = n;
    free(rs);
    free(rqs);

    return retried;
}


/*
 * POST /v1/checkouts/{id}/cancel for each of the n checkouts of which
 * whose story is story, INV_AT_ONCE at a time: each answers want (200
 * canceled, or 409 checkout_already_paid).
 */
static void
inv_cancel(const inv_run_t *run, const size_t *which, size_t n,
    inv_story_e story, long want)
{
    size_t                k, m;
    req_t                *rqs;
    resp_t              **rs;
    const char          **h;
    const inv_payment_t  *p;

    rqs = calloc(n + 1, sizeof(req_t));
    cr_assert_not_null(rqs);

    for (k = 0, m = 0; k < n; k++) {
        p = &run->p[which[k]];
        if (p->story != story) {
            continue;
        }

        h = calloc(3, sizeof(char *));
        cr_assert_not_null(h);
        h[0] = p->auth;
        h[1] = str_printf("Idempotency-Key: inv-cancel-%s", p->co);
        rqs[m].method = "POST";
        rqs[m].url = gw_url(str_printf("/v1/checkouts/%s/cancel", p->co));
        rqs[m].headers = h;
        rqs[m].body = "";
        rqs[m].len = 0;
        m++;
    }

    if (m == 0) {
        free(rqs);
        return;
    }

    rs = http_many(rqs, m, INV_AT_ONCE);

    for (k = 0; k < m; k++) {
        if (want == 200) {
            cr_assert_eq(rs[k]->status, 200, "%s: %ld %s", rqs[k].url,
                         rs[k]->status, rs[k]->body);
        } else {
            expect_problem(rs[k], want, "checkout_already_paid");
        }
        resp_free(rs[k]);
    }

    free(rs);
    free(rqs);
}


/*
 * The shop cancels the INV_CANCELED checkouts, then waits until every
 * delivery the mock scheduled for them (Stripe's expiry) is answered.
 */
static long
inv_cancels(inv_run_t *run)
{
    long     retried;
    size_t   i, n, *todo;
    time_t   deadline;

    todo = calloc(INV_CHECKOUTS, sizeof(size_t));
    cr_assert_not_null(todo);

    for (i = 0, n = 0; i < INV_CHECKOUTS; i++) {
        if (run->p[i].story == INV_CANCELED) {
            todo[n++] = i;
        }
    }

    inv_cancel(run, todo, n, INV_CANCELED, 200);

    retried = 0;
    deadline = time(NULL) + INV_SETTLE_S;

    while (n > 0) {
        retried += inv_poll(run, todo, &n, deadline);
        if (n > 0) {
            msleep(50);
        }
    }

    free(todo);

    return retried;
}


/*
 * The shoppers pay or decline on the mock, at most INV_WINDOW sessions
 * whose webhooks are not all delivered at any time: concurrent enough for
 * the races (duplicates at once, a merchant's wallets and audit head hot),
 * and no burst of a thousand TLS handshakes on a 2-core machine.  Returns
 * the deliveries the mock had to retry.
 */
static long
inv_shoppers(inv_run_t *run)
{
    long            retried;
    size_t          i, n, next, nflight, len;
    char          **paths;
    size_t         *acting, *flight;
    time_t          deadline;
    inv_payment_t  *p;

    paths = calloc(INV_CHECKOUTS, sizeof(char *));
    acting = calloc(INV_CHECKOUTS, sizeof(size_t));
    flight = calloc(INV_CHECKOUTS, sizeof(size_t));
    cr_assert(paths != NULL && acting != NULL && flight != NULL);

    for (i = 0, n = 0; i < INV_CHECKOUTS; i++) {
        p = &run->p[i];

        if (p->story == INV_NEVER_PAID || p->story == INV_CANCELED
            || p->story >= INV_TWICE_AT_ONCE)
        {
            continue;
        }

        acting[n] = i;
        paths[n++] = str_printf("/_control/sessions/%s/%s", p->token,
                                p->story == INV_DECLINED ? "decline" : "pay");
    }

    retried = 0;
    next = 0;
    nflight = 0;
    deadline = time(NULL) + INV_SETTLE_S;

    while (next < n || nflight > 0) {
        len = INV_WINDOW - nflight;
        len = n - next < len ? n - next : len;

        if (len > 0) {
            inv_control(paths + next, NULL, len);
            /* the shop cancels what was just paid, its webhook in flight:
             * the PSP says paid, the cancel is refused */
            inv_cancel(run, acting + next, len, INV_PAID_CANCELED, 409);
            memcpy(flight + nflight, acting + next, len * sizeof(size_t));
            nflight += len;
            next += len;
        }

        retried += inv_poll(run, flight, &nflight, deadline);

        if (nflight == INV_WINDOW || next == n) {
            msleep(50);
        }
    }

    free(paths);
    free(acting);
    free(flight);

    return retried;
}


/* -- what the database says ------------------------------------------------ */

/*
 * On a stack of several merchant shards the merchants live on the shards
 * in turn (merchant_new_nth), and every query runs on each shard: over
 * every merchant of that database (the invariants), or over the
 * run's merchants that live there (run->shard_ids[s]), never one shard's
 * merchant read on another.  Unsharded, the one shard is db().
 */
static PGconn *
inv_db(int s)
{
    return db_shard(shard_name(s));
}


/* the run's merchants on each shard, as text[] parameters */
static void
inv_shard_ids(inv_run_t *run)
{
    int          s, k;
    const char  *name;

    run->nshards = shards_n();
    cr_assert(run->nshards <= INV_SHARDS);

    for (s = 0; s < run->nshards; s++) {
        name = shard_name(s);
        run->shard_ids[s] = strdup("");

        for (k = 0; k < INV_MERCHANTS; k++) {
            if (strcmp(run->m[k].shard, name) == 0) {
                run->shard_ids[s] = str_printf("%s%s%s", run->shard_ids[s],
                                               run->shard_ids[s][0] ? ","
                                                                    : "",
                                               run->m[k].id);
            }
        }

        run->shard_ids[s] = str_printf("{%s}", run->shard_ids[s]);
    }
}


static PGresult *
inv_query(PGconn *c, const char *sql, int nparams,
    const char *const *params)
{
    PGresult  *res;

    res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK
              || PQresultStatus(res) == PGRES_COMMAND_OK,
              "SQL failed: %s\n%s", PQerrorMessage(c), sql);

    return res;
}


/* The count a query answers, added up over the shards; $1 is each
 * shard's run's merchants (ours), or NULL: every merchant. */
static long
inv_count(const inv_run_t *run, const char *sql, int ours)
{
    int          s;
    long         n;
    PGresult    *res;
    const char  *params[1];

    n = 0;

    for (s = 0; s < run->nshards; s++) {
        params[0] = ours ? run->shard_ids[s] : NULL;
        res = inv_query(inv_db(s), sql, 1, params);
        cr_assert(PQntuples(res) == 1 && !PQgetisnull(res, 0, 0), "%s", sql);
        n += atol(PQgetvalue(res, 0, 0));
        PQclear(res);
    }

    return n;
}


static int
inv_merchant(const inv_run_t *run, const char *id)
{
    int  k;

    for (k = 0; k < INV_MERCHANTS; k++) {
        if (strcmp(run->m[k].id, id) == 0) {
            return k;
        }
    }

    return -1;
}


static int
inv_index(const char *const *names, int n, const char *name)
{
    int  k;

    for (k = 0; k < n; k++) {
        if (strcmp(names[k], name) == 0) {
            return k;
        }
    }

    return -1;
}


/* A race's end is SUCCESS either way; which event committed first decides
 * the outcomes: read it.  Returns how many races the success won. */
static long
inv_resolve_races(inv_run_t *run)
{
    long            won;
    size_t          i;
    char           *s;
    inv_payment_t  *p;
    const char     *params[2];

    won = 0;

    for (i = 0; i < INV_CHECKOUTS; i++) {
        p = &run->p[i];

        /* a cancel on Stripe: its expiry webhook applied, or already */
        if (p->story == INV_CANCELED && p->psp == 0) {
            params[0] = run->m[p->merchant].id;
            params[1] = p->co;
            s = db_scalar_on(db_of(&run->m[p->merchant]), "SELECT count(*) "
                             "FROM webhook_events WHERE merchant_id = $1 AND "
                             "checkout_id = $2 AND outcome = 'applied'", 2,
                             params);
            cr_assert_not_null(s);
            p->expired_first = atol(s) > 0;
            free(s);
            continue;
        }

        if (p->story != INV_RACE) {
            continue;
        }

        params[0] = run->m[p->merchant].id;
        params[1] = p->co;
        s = db_scalar_on(db_of(&run->m[p->merchant]), "SELECT count(*) FROM "
                         "webhook_events WHERE merchant_id = $1 AND "
                         "checkout_id = $2 AND outcome = "
                         "'paid_after_failed'", 2, params);
        cr_assert_not_null(s);
        p->late = atol(s) > 0;
        won += !p->late;
        free(s);
    }

    return won;
}


/* What the stories add up to, per merchant. */
static void
inv_expect(inv_run_t *run)
{
    size_t          i, j, m;
    long           *o;
    int64_t         c;
    inv_payment_t  *p;

    for (i = 0; i < INV_CHECKOUTS; i++) {
        p = &run->p[i];
        m = p->merchant;
        o = run->outcome[m];

        run->orders[m] += (long) p->norders;

        switch (p->story) {
        case INV_DECLINED:
            /* Adyen's refused AUTHORISATION is recorded, moves nothing */
            o[p->psp == 1 ? INV_PENDING : INV_APPLIED]++;
            break;
        case INV_PAID:
        case INV_TWICE_AT_ONCE:
            o[INV_APPLIED]++;
            break;
        case INV_DUPLICATED:
        case INV_ASYNC:
        case INV_ASYNC_FAILED:
            o[INV_APPLIED]++;
            /* Stripe's unpaid completion and Adyen's PENDING are a
             * payment under way: pending; the generic payment.pending is
             * a type the gateway does not act on: ignored */
            if (p->async || p->story == INV_ASYNC_FAILED) {
                o[p->psp == 2 ? INV_IGNORED : INV_PENDING]++;
            }
            break;
        case INV_OUT_OF_ORDER:
            o[INV_APPLIED]++;
            /* Adyen's refused attempt and Stripe's unpaid completion are
             * a payment under way */
            o[p->psp == 2 ? INV_PAID_AFTER_FAILED : INV_PENDING]++;
            break;
        case INV_RACE:
            o[INV_APPLIED]++;
            o[p->late ? INV_PAID_AFTER_FAILED : INV_LATE_CONTRARY]++;
            break;
        case INV_AMOUNT_LIE:
            o[INV_AMOUNT_MISMATCH]++;
            break;
        case INV_CANCELED:
            if (p->psp == 0) {
                o[p->expired_first ? INV_APPLIED : INV_ALREADY]++;
            }
            break;
        case INV_PAID_CANCELED:
            o[INV_APPLIED]++;
            break;
        default:
            break;
        }

        if (strcmp(p->expect, "EXECUTING") != 0) {
            run->terminal_orders[m] += (long) p->norders * (1 + p->late);
        }

        if (strcmp(p->expect, "SUCCESS") != 0) {
            continue;
        }

        run->txns[m] += (long) p->norders;
        run->clearing[m][p->psp][p->currency] += p->total;

        /* each seller credited its order less the commission, by the
         * core's rule (the database reckons it itself) */
        for (j = 0; j < p->norders; j++) {
            cr_assert_eq(pay_commission(p->amount[j], inv_commission[m].bps,
                                        inv_commission[m].fixed[p->currency],
                                        &c), 0);
            run->wallet[m][p->seller[j]][p->currency] += p->amount[j] - c;
            run->commission[m][p->currency] += c;
            run->comm_orders[c == 0 ? 0 : c < p->amount[j] ? 1 : 2]++;
        }
    }
}


#define INV_OURS  "merchant_id = ANY($1::text[])"
#define INV_SCOPE "($1::text[] IS NULL OR merchant_id = ANY($1::text[]))"


/* Ledger transactions that do not sum to zero in each currency, or have
 * fewer than two entries. */
static const char  inv_sql_unbalanced[] =
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM ledger_entries"
    "         WHERE " INV_SCOPE
    "         GROUP BY merchant_id, txn_id, currency"
    "        HAVING sum(amount) <> 0) x)"
    "     + (SELECT count(*) FROM (SELECT 1 FROM ledger_transactions t"
    "          LEFT JOIN ledger_entries e USING (merchant_id, txn_id)"
    "         WHERE ($1::text[] IS NULL OR t.merchant_id = ANY($1::text[]))"
    "         GROUP BY t.merchant_id, t.txn_id"
    "        HAVING count(e.entry_no) < 2) y)";

/* Wallets that differ from the sum of their seller's ledger entries (and
 * ledger sums without a wallet). */
static const char  inv_sql_wallets[] =
    "SELECT count(*) FROM"
    " (SELECT merchant_id, seller_account, currency, balance FROM wallets"
    "   WHERE " INV_SCOPE ") w"
    " FULL JOIN"
    " (SELECT merchant_id, substr(account, 16) AS seller_account, currency,"
    "         -sum(amount) AS booked"
    "    FROM ledger_entries"
    "   WHERE account LIKE 'seller\\_payable:%' AND " INV_SCOPE
    "   GROUP BY 1, 2, 3) l"
    " USING (merchant_id, seller_account, currency)"
    " WHERE coalesce(w.balance, 0) <> coalesce(l.booked, 0)";

/* Our ledger transactions that are not exactly "PSP clearing debited the
 * order's amount, the order's seller credited it less the commission, the
 * platform's commission credited the rest" (the rule restated here: the
 * checkout's frozen rate rounded down plus its fixed part, at most the
 * amount; an entry of 0 is not written), in the order's currency, booked
 * by a webhook of the checkout's PSP for an order that is SUCCESS. */
static const char  inv_sql_misbooked[] =
    "SELECT count(*) FROM ledger_transactions t"
    "  JOIN payment_orders o USING (merchant_id, checkout_id,"
    "                               payment_order_id)"
    "  JOIN checkouts c USING (merchant_id, checkout_id)"
    "  CROSS JOIN LATERAL (SELECT least(o.amount, o.amount"
    "                             * coalesce(c.commission_bps, 0) / 10000"
    "                             + coalesce(c.commission_fixed, 0)) AS k) r"
    " WHERE t." INV_OURS
    "   AND (o.status <> 'SUCCESS'"
    "        OR t.source NOT LIKE 'webhook:' || c.psp || ':%'"
    "        OR (SELECT count(*) FROM ledger_entries e"
    "             WHERE e.merchant_id = t.merchant_id"
    "               AND e.txn_id = t.txn_id)"
    "           <> 1 + (o.amount > r.k)::int + (r.k > 0)::int"
    "        OR NOT EXISTS (SELECT 1 FROM ledger_entries e"
    "             WHERE e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id"
    "               AND e.account = 'psp_clearing:' || c.psp"
    "               AND e.amount = o.amount AND e.currency = o.currency)"
    "        OR (o.amount > r.k AND NOT EXISTS (SELECT 1"
    "             FROM ledger_entries e"
    "             WHERE e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id"
    "               AND e.account = 'seller_payable:' || o.seller_account"
    "               AND e.amount = r.k - o.amount"
    "               AND e.currency = o.currency))"
    "        OR (r.k > 0 AND NOT EXISTS (SELECT 1 FROM ledger_entries e"
    "             WHERE e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id"
    "               AND e.account = 'platform_commission'"
    "               AND e.amount = -r.k AND e.currency = o.currency)))";

/* Our orders without exactly one ledger transaction when SUCCESS, or with
 * any when not. */
static const char  inv_sql_not_once[] =
    "SELECT count(*) FROM payment_orders o"
    "  LEFT JOIN (SELECT merchant_id, payment_order_id, count(*) AS n"
    "               FROM ledger_transactions WHERE " INV_OURS
    "              GROUP BY 1, 2) t USING (merchant_id, payment_order_id)"
    " WHERE o." INV_OURS
    "   AND coalesce(t.n, 0) <> CASE WHEN o.status = 'SUCCESS' THEN 1"
    "                                ELSE 0 END";

/*
 * Order histories that are not NOT_STARTED -> EXECUTING (registration),
 * then at most one EXECUTING -> SUCCESS | FAILED by an applied webhook
 * event of that checkout (or EXECUTING -> FAILED by the checkout's audited
 * cancel), ending in the order's status: every event that breaks the
 * chain, and every order whose history does not end where it is.
 */
static const char  inv_sql_history[] =
    "WITH e AS ("
    "  SELECT e.*, row_number() OVER w AS rn, lag(to_status) OVER w AS prev"
    "    FROM order_events e WHERE " INV_OURS
    "  WINDOW w AS (PARTITION BY merchant_id, payment_order_id"
    "               ORDER BY event_id)),"
    " fin AS ("
    "  SELECT merchant_id, payment_order_id, count(*) AS n,"
    "         count(*) FILTER (WHERE from_status = 'FAILED') AS late,"
    "         (array_agg(to_status ORDER BY rn DESC))[1] AS last_to"
    "    FROM e GROUP BY 1, 2)"
    "SELECT (SELECT count(*) FROM e"
    "         WHERE (rn = 1 AND (from_status <> 'NOT_STARTED'"
    "                            OR to_status <> 'EXECUTING'"
    "                            OR source <> 'registration'))"
    "            OR (rn > 1 AND (from_status IS DISTINCT FROM prev"
    "                            OR NOT ((rn = 2 AND from_status = 'EXECUTING'"
    "                                     AND to_status IN ('SUCCESS',"
    "                                                       'FAILED'))"
    "                                    OR (rn = 3 AND from_status = 'FAILED'"
    "                                        AND to_status = 'SUCCESS'))"
    "                            OR (NOT EXISTS ("
    "                 SELECT 1 FROM webhook_events we"
    "                  WHERE 'webhook:' || we.psp || ':' || we.event_id"
    "                        = e.source"
    "                    AND we.psp = split_part(e.source, ':', 2)"
    "                    AND we.outcome = CASE WHEN e.rn = 3"
    "                                          THEN 'paid_after_failed'"
    "                                          ELSE 'applied' END"
    "                    AND we.merchant_id = e.merchant_id"
    "                    AND we.checkout_id = e.checkout_id)"
    "                AND NOT (e.rn = 2 AND e.to_status = 'FAILED'"
    "                    AND e.source LIKE 'cancel:%'"
    "                    AND EXISTS ("
    "                 SELECT 1 FROM audit_log a"
    "                  WHERE a.merchant_id = e.merchant_id"
    "                    AND a.checkout_id = e.checkout_id"
    "                    AND a.action = 'cancel:canceled'))))))"
    "     + (SELECT count(*) FROM payment_orders o"
    "          LEFT JOIN fin l USING (merchant_id, payment_order_id)"
    "         WHERE o." INV_OURS
    "           AND (coalesce(l.n, 0) <> CASE WHEN o.status IN ('SUCCESS',"
    "                                     'FAILED') THEN 2 ELSE 1 END"
    "                                   + coalesce(l.late, 0)"
    "                OR l.last_to IS DISTINCT FROM o.status))";


typedef struct {
    long  unbalanced;       /* any merchant's */
    long  wallet_ledger;    /* any merchant's */
    long  misbooked;
    long  not_once;
    long  history;
    long  wallet_expect;    /* cells off the sums of the stories */
    long  clearing_expect;
    long  commission_expect;    /* the platform's, off the stories' sums */
    long  audit_broken;     /* merchants whose chain does not verify */
    long  statuses;         /* checkouts and orders off their stories */
    long  outcomes;         /* webhook outcomes and audit rows off */
    long  elsewhere;        /* rows of a merchant on a shard it does not
                               live on (a sharded stack's) */
} inv_books_t;


static long
inv_check_wallets(const inv_run_t *run, int quiet)
{
    int          m, s, c, sh;
    long         bad, got[INV_MERCHANTS][INV_SELLERS][INV_CURRENCIES];
    PGresult    *res;
    const char  *params[1];
    int          row;

    memset(got, 0, sizeof(got));
    bad = 0;

    for (sh = 0; sh < run->nshards; sh++) {
        params[0] = run->shard_ids[sh];
        res = inv_query(inv_db(sh), "SELECT merchant_id, seller_account, "
                        "currency, balance FROM wallets WHERE " INV_OURS, 1,
                        params);

        for (row = 0; row < PQntuples(res); row++) {
            m = inv_merchant(run, PQgetvalue(res, row, 0));
            s = inv_index(inv_sellers, INV_SELLERS, PQgetvalue(res, row, 1));
            c = inv_index(inv_currencies, INV_CURRENCIES,
                          PQgetvalue(res, row, 2));

            if (m < 0 || s < 0 || c < 0) {
                bad++;
                continue;
            }

            got[m][s][c] = atol(PQgetvalue(res, row, 3));
        }

        PQclear(res);
    }

    for (m = 0; m < INV_MERCHANTS; m++) {
        for (s = 0; s < INV_SELLERS; s++) {
            for (c = 0; c < INV_CURRENCIES; c++) {
                if (got[m][s][c] == run->wallet[m][s][c]) {
                    continue;
                }

                bad++;
                if (!quiet) {
                    cr_log_error("wallet %s %s %s: %ld, expected %ld",
                                 run->m[m].id, inv_sellers[s],
                                 inv_currencies[c], got[m][s][c],
                                 run->wallet[m][s][c]);
                }
            }
        }
    }

    return bad;
}


static long
inv_check_clearing(const inv_run_t *run, int quiet)
{
    int          m, k, c, row, sh;
    long         bad, got[INV_MERCHANTS][INV_PSPS][INV_CURRENCIES];
    PGresult    *res;
    const char  *names[INV_PSPS];
    const char  *params[1];

    memset(got, 0, sizeof(got));
    bad = 0;

    for (k = 0; k < INV_PSPS; k++) {
        names[k] = inv_psp((size_t) k);
    }

    for (sh = 0; sh < run->nshards; sh++) {
        params[0] = run->shard_ids[sh];
        res = inv_query(inv_db(sh), "SELECT merchant_id, substr(account, "
                        "14), currency, sum(amount) FROM ledger_entries "
                        "WHERE " INV_OURS " AND account LIKE "
                        "'psp\\_clearing:%' GROUP BY 1, 2, 3", 1, params);

        for (row = 0; row < PQntuples(res); row++) {
            m = inv_merchant(run, PQgetvalue(res, row, 0));
            k = inv_index(names, INV_PSPS, PQgetvalue(res, row, 1));
            c = inv_index(inv_currencies, INV_CURRENCIES,
                          PQgetvalue(res, row, 2));

            if (m < 0 || k < 0 || c < 0) {
                bad++;
                continue;
            }

            got[m][k][c] = atol(PQgetvalue(res, row, 3));
        }

        PQclear(res);
    }

    for (m = 0; m < INV_MERCHANTS; m++) {
        for (k = 0; k < INV_PSPS; k++) {
            for (c = 0; c < INV_CURRENCIES; c++) {
                if (got[m][k][c] == run->clearing[m][k][c]) {
                    continue;
                }

                bad++;
                if (!quiet) {
                    cr_log_error("clearing %s %s %s: %ld, expected %ld",
                                 run->m[m].id, names[k], inv_currencies[c],
                                 got[m][k][c], run->clearing[m][k][c]);
                }
            }
        }
    }

    return bad;
}


/* Every checkout and order as its story says: status, amounts, sellers,
 * currency, PSP, and booked exactly when SUCCESS. */
static long
inv_check_statuses(const inv_run_t *run, int quiet)
{
    int                   m, row, sh;
    long                  bad, seen[INV_CHECKOUTS];
    size_t                i, j;
    PGresult             *res;
    const char           *want, *booked;
    const inv_payment_t  *p;
    const char           *params[1];

    memset(seen, 0, sizeof(seen));
    bad = 0;

    for (sh = 0; sh < run->nshards; sh++) {
        params[0] = run->shard_ids[sh];
        res = inv_query(inv_db(sh), "SELECT c.merchant_id, c.checkout_id, "
                        "c.status, c.amount_total, c.currency, c.psp, "
                        "o.payment_order_id, o.line_no, o.seller_account, "
                        "o.amount, o.currency, o.status, o.ledger_updated "
                        "AND o.wallet_updated FROM checkouts c JOIN "
                        "payment_orders o USING (merchant_id, checkout_id) "
                        "WHERE c." INV_OURS, 1, params);

        for (row = 0; row < PQntuples(res); row++) {
            m = inv_merchant(run, PQgetvalue(res, row, 0));
            i = (size_t) atol(PQgetvalue(res, row, 1) + 4);
            j = (size_t) atol(PQgetvalue(res, row, 7)) - 1;

            if (m < 0 || i >= INV_CHECKOUTS
                || strcmp(run->p[i].co, PQgetvalue(res, row, 1)) != 0
                || run->p[i].merchant != (size_t) m || j >= run->p[i].norders)
            {
                bad++;
                continue;
            }

            p = &run->p[i];
            want = p->expect;
            booked = strcmp(want, "SUCCESS") == 0 ? "t" : "f";
            seen[i]++;

            if (strcmp(PQgetvalue(res, row, 2), want) != 0
                || atol(PQgetvalue(res, row, 3)) != p->total
                || strcmp(PQgetvalue(res, row, 4),
                          inv_currencies[p->currency]) != 0
                || strcmp(PQgetvalue(res, row, 5), inv_psp(p->psp)) != 0
                || strcmp(PQgetvalue(res, row, 6),
                          str_printf("%s_p%zu", p->co, j + 1)) != 0
                || strcmp(PQgetvalue(res, row, 8),
                          inv_sellers[p->seller[j]]) != 0
                || atol(PQgetvalue(res, row, 9)) != p->amount[j]
                || strcmp(PQgetvalue(res, row, 10),
                          inv_currencies[p->currency]) != 0
                || strcmp(PQgetvalue(res, row, 11), want) != 0
                || strcmp(PQgetvalue(res, row, 12), booked) != 0)
            {
                bad++;
                if (!quiet) {
                    cr_log_error("%s (%s, %s) order %zu: checkout %s, "
                                 "order %s, booked %s; expected %s", p->co,
                                 inv_stories[p->story].name, inv_psp(p->psp),
                                 j + 1, PQgetvalue(res, row, 2),
                                 PQgetvalue(res, row, 11),
                                 PQgetvalue(res, row, 12), want);
                }
            }
        }

        PQclear(res);
    }

    for (i = 0; i < INV_CHECKOUTS; i++) {
        if (seen[i] != (long) run->p[i].norders) {
            bad++;
            if (!quiet) {
                cr_log_error("%s: %ld orders stored, %zu registered",
                             run->p[i].co, seen[i], run->p[i].norders);
            }
        }
    }

    return bad;
}


/* The webhook events recorded per merchant, by outcome, are what the
 * stories sent, and the audit log has one row for each (audit_append). */
static long
inv_check_outcomes(const inv_run_t *run, int quiet)
{
    int          m, o, row, table, sh;
    long         bad, got[INV_MERCHANTS][INV_NOUTCOMES], n;
    PGresult    *res;
    const char  *name;
    const char  *params[1];

    bad = 0;

    for (table = 0; table < 2; table++) {
        memset(got, 0, sizeof(got));

        for (sh = 0; sh < run->nshards; sh++) {
            params[0] = run->shard_ids[sh];
            res = inv_query(inv_db(sh), table == 0
                            ? "SELECT merchant_id, outcome, count(*) "
                              "FROM webhook_events WHERE " INV_OURS
                              " GROUP BY 1, 2"
                            : "SELECT merchant_id, action, count(*) "
                              "FROM audit_log WHERE " INV_OURS
                              " AND action LIKE 'webhook:%' GROUP BY 1, 2",
                            1, params);

            for (row = 0; row < PQntuples(res); row++) {
                m = inv_merchant(run, PQgetvalue(res, row, 0));
                name = PQgetvalue(res, row, 1);

                if (table == 1) {
                    name = strncmp(name, "webhook:", 8) == 0 ? name + 8
                                                             : "";
                }

                o = inv_index(inv_outcomes, INV_NOUTCOMES, name);

                if (m < 0 || o < 0) {
                    bad++;
                    if (!quiet) {
                        cr_log_error("%s: %s rows %s",
                                     table ? "audit_log" : "webhook_events",
                                     PQgetvalue(res, row, 2),
                                     PQgetvalue(res, row, 1));
                    }
                    continue;
                }

                got[m][o] = atol(PQgetvalue(res, row, 2));
            }

            PQclear(res);
        }

        for (m = 0; m < INV_MERCHANTS; m++) {
            for (o = 0; o < INV_NOUTCOMES; o++) {
                if (got[m][o] != run->outcome[m][o]) {
                    bad++;
                    if (!quiet) {
                        cr_log_error("%s %s %s: %ld, expected %ld",
                                     table ? "audit_log" : "webhook_events",
                                     run->m[m].id, inv_outcomes[o],
                                     got[m][o], run->outcome[m][o]);
                    }
                }
            }
        }
    }

    /* and each checkout's registration (the claim) has its one audit row */
    n = inv_count(run, "SELECT count(*) FROM checkouts c WHERE c." INV_OURS
                  " AND (SELECT count(*) FROM audit_log a"
                  " WHERE a.merchant_id = c.merchant_id"
                  " AND a.checkout_id = c.checkout_id"
                  " AND a.action = 'registration:claimed') <> 1", 1);
    if (n != 0) {
        bad += n;
        if (!quiet) {
            cr_log_error("audit_log: %ld checkouts without exactly one "
                         "registration:claimed row", n);
        }
    }

    return bad;
}


/* what the platform kept per merchant and currency: the commission of
 * every order booked paid (inv_expect) */
static long
inv_check_commission(const inv_run_t *run, int quiet)
{
    int          m, c, row, sh;
    long         bad, got[INV_MERCHANTS][INV_CURRENCIES];
    PGresult    *res;
    const char  *params[1];

    memset(got, 0, sizeof(got));
    bad = 0;

    for (sh = 0; sh < run->nshards; sh++) {
        params[0] = run->shard_ids[sh];
        res = inv_query(inv_db(sh), "SELECT merchant_id, currency, "
                        "-sum(amount) FROM ledger_entries WHERE " INV_OURS
                        " AND account = 'platform_commission' GROUP BY 1, 2",
                        1, params);

        for (row = 0; row < PQntuples(res); row++) {
            m = inv_merchant(run, PQgetvalue(res, row, 0));
            c = inv_index(inv_currencies, INV_CURRENCIES,
                          PQgetvalue(res, row, 1));

            if (m < 0 || c < 0) {
                bad++;
                continue;
            }

            got[m][c] = atol(PQgetvalue(res, row, 2));
        }

        PQclear(res);
    }

    for (m = 0; m < INV_MERCHANTS; m++) {
        for (c = 0; c < INV_CURRENCIES; c++) {
            if (got[m][c] == run->commission[m][c]) {
                continue;
            }

            bad++;
            if (!quiet) {
                cr_log_error("commission %s (%d bps + %ld) %s: %ld, "
                             "expected %ld", run->m[m].id,
                             inv_commission[m].bps,
                             inv_commission[m].fixed[c], inv_currencies[c],
                             got[m][c], run->commission[m][c]);
            }
        }
    }

    return bad;
}


static void
inv_books(const inv_run_t *run, inv_books_t *b, int quiet)
{
    int          m;
    long         n;
    char        *v;
    const char  *params[1];

    memset(b, 0, sizeof(*b));

    /* the invariants hold for every merchant in the database (in
     * each shard's) */
    b->unbalanced = inv_count(run, inv_sql_unbalanced, 0);
    b->wallet_ledger = inv_count(run, inv_sql_wallets, 0);

    b->misbooked = inv_count(run, inv_sql_misbooked, 1);
    b->not_once = inv_count(run, inv_sql_not_once, 1);
    b->history = inv_count(run, inv_sql_history, 1);
    b->wallet_expect = inv_check_wallets(run, quiet);
    b->clearing_expect = inv_check_clearing(run, quiet);
    b->commission_expect = inv_check_commission(run, quiet);
    b->statuses = inv_check_statuses(run, quiet);
    b->outcomes = inv_check_outcomes(run, quiet);

    for (m = 0; m < INV_MERCHANTS; m++) {
        params[0] = run->m[m].id;
        v = db_scalar_on(db_of(&run->m[m]), "SELECT pay_audit_verify($1)", 1,
                         params);
        b->audit_broken += v == NULL || strcmp(v, "t") != 0;
        free(v);

        /* on a sharded stack: nothing of it on another shard */
        n = shards_elsewhere(run->m[m].shard, run->m[m].id, &v);
        b->elsewhere += n;
        if (n > 0 && !quiet) {
            cr_log_error("merchant %s of shard %s: %ld rows on other shards"
                         " (%s)", run->m[m].id, run->m[m].shard, n, v);
        }
        free(v);
    }
}


/* -- what the gateway says ------------------------------------------------- */

/* GET /v1/checkouts/{id} of every checkout: its status, its orders' and
 * each order's events, in order, moving forward only. */
static long
inv_check_views(inv_run_t *run)
{
    long            bad;
    size_t          i, j, k, n, nev;
    req_t          *rqs;
    resp_t        **rs;
    json_t         *v, *orders, *events, *e;
    const char     *st, *po, *want, *from, *to, *src;
    const char    **h;
    inv_payment_t  *p;

    rqs = calloc(INV_CHECKOUTS, sizeof(req_t));
    cr_assert_not_null(rqs);

    for (i = 0; i < INV_CHECKOUTS; i++) {
        h = calloc(2, sizeof(char *));
        cr_assert_not_null(h);
        h[0] = run->p[i].auth;
        rqs[i].method = "GET";
        rqs[i].url = gw_url(str_printf("/v1/checkouts/%s", run->p[i].co));
        rqs[i].headers = h;
        rqs[i].body = NULL;
        rqs[i].len = 0;
    }

    rs = http_many(rqs, INV_CHECKOUTS, INV_AT_ONCE);
    bad = 0;

    for (i = 0; i < INV_CHECKOUTS; i++) {
        p = &run->p[i];
        want = p->expect;

        cr_assert_eq(rs[i]->status, 200, "GET %s: %ld %s", p->co,
                     rs[i]->status, rs[i]->body);
        v = resp_json(rs[i]);
        st = json_string_value(json_object_get(v, "status"));
        orders = json_object_get(v, "payment_orders");
        events = json_object_get(v, "events");
        n = 0;

        if (st == NULL || strcmp(st, want) != 0
            || json_is_true(json_object_get(v, "is_payment_done"))
               != (strcmp(want, "SUCCESS") == 0)
            || json_array_size(orders) != p->norders)
        {
            n++;
        }

        for (j = 0; j < json_array_size(orders); j++) {
            st = json_string_value(json_object_get(json_array_get(orders, j),
                                                   "status"));
            n += st == NULL || strcmp(st, want) != 0;
        }

        /* a canceled checkout says so, whoever failed it first */
        if (p->story == INV_CANCELED) {
            st = json_string_value(json_object_get(
                     json_object_get(v, "failure"), "code"));
            n += st == NULL || strcmp(st, "canceled") != 0;
        }

        /* per order: registration, then at most the one webhook move
         * (two when a success came after a failure) */
        for (j = 0; j < p->norders; j++) {
            po = str_printf("%s_p%zu", p->co, j + 1);
            nev = 0;

            json_array_foreach(events, k, e) {
                if (strcmp(json_string_value(json_object_get(
                               e, "payment_order_id")) ?: "", po) != 0)
                {
                    continue;
                }

                from = json_string_value(json_object_get(e, "from"));
                to = json_string_value(json_object_get(e, "to"));
                src = json_string_value(json_object_get(e, "source"));

                if (from == NULL || to == NULL || src == NULL) {
                    n++;
                } else if (nev == 0) {
                    n += strcmp(from, "NOT_STARTED") != 0
                         || strcmp(to, "EXECUTING") != 0
                         || strcmp(src, "registration") != 0;
                } else if (nev == 1 && p->late) {
                    n += strcmp(from, "EXECUTING") != 0
                         || strcmp(to, "FAILED") != 0
                         || strncmp(src, "webhook:", 8) != 0;
                } else {
                    n += nev > 1u + (size_t) p->late
                         || strcmp(from, p->late ? "FAILED" : "EXECUTING")
                            != 0
                         || strcmp(to, want) != 0
                         || (strncmp(src, "webhook:", 8) != 0
                             && (p->story != INV_CANCELED
                                 || strncmp(src, "cancel:", 7) != 0));
                }

                nev++;
            }

            n += nev != (strcmp(want, "EXECUTING") == 0
                         ? 1u : 2u + (size_t) p->late);
        }

        if (n > 0) {
            bad++;
            cr_log_error("GET /v1/checkouts/%s (%s, %s, expected %s): %s",
                         p->co, inv_stories[p->story].name, inv_psp(p->psp),
                         want, rs[i]->body);
        }

        resp_free(rs[i]);
    }

    free(rs);
    free(rqs);

    return bad;
}


/* -- the checks can fail --------------------------------------------------- */

/*
 * Inside one transaction that is rolled back (one per shard): an
 * unbalanced ledger transaction booked twice for a paid order (one minor
 * unit of it to the platform's commission), a wallet
 * one minor unit off, that order moved back, a never-paid order failed
 * behind the webhooks' back, an event nobody sent, an edited audit row;
 * on a sharded stack also a balanced ledger transaction of the paid
 * order's merchant on a shard it does not live on.  Every check must see
 * it; after the rollback every check is clean again.
 */
static void
inv_canary(const inv_run_t *run)
{
    int                   s;
    size_t                i;
    PGconn               *c;
    inv_books_t           b;
    const char           *params[7];
    const inv_payment_t  *paid, *unpaid, *p;

    paid = NULL;
    unpaid = NULL;

    for (i = 0; i < INV_CHECKOUTS; i++) {
        p = &run->p[i];
        if (paid == NULL && strcmp(p->expect, "SUCCESS") == 0 && !p->late) {
            paid = p;
        }
        if (unpaid == NULL && p->story == INV_NEVER_PAID) {
            unpaid = p;
        }
    }

    cr_assert(paid != NULL && unpaid != NULL);

    for (s = 0; s < run->nshards; s++) {
        db_exec_on(inv_db(s), "BEGIN", 0, NULL);
        /* the owner, with the append-only guards off for this transaction */
        db_exec_on(inv_db(s), "SET LOCAL session_replication_role = replica",
                   0, NULL);
    }

    c = db_of(&run->m[paid->merchant]);
    params[0] = run->m[paid->merchant].id;
    params[1] = paid->co;
    params[2] = str_printf("%s_p1", paid->co);
    params[3] = str_printf("psp_clearing:%s", inv_psp(paid->psp));
    params[4] = str_printf("seller_payable:%s", inv_sellers[paid->seller[0]]);
    params[5] = inv_currencies[paid->currency];
    params[6] = inv_sellers[paid->seller[0]];

    db_exec_on(c, "WITH t AS (INSERT INTO ledger_transactions (merchant_id, "
               "checkout_id, payment_order_id, source) VALUES ($1, $2, $3, "
               "'canary') RETURNING txn_id) "
               "INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, "
               "account, amount, currency) "
               "SELECT $1, t.txn_id, v.n, v.account, v.amount, $6 FROM t, "
               "(VALUES (1, $4, 100), (2, $5, -98), "
               "(3, 'platform_commission', -1)) v(n, account, amount)",
               6, params);
    db_exec_on(c, "UPDATE wallets_folded SET balance = balance + 1 "
               "WHERE merchant_id = $1 AND seller_account = $2 AND "
               "currency = $3", 3,
               (const char *[]) { params[0], params[6], params[5] });
    db_exec_on(c, "INSERT INTO order_events (merchant_id, checkout_id, "
               "payment_order_id, from_status, to_status, source) "
               "VALUES ($1, $2, $3, 'SUCCESS', 'EXECUTING', 'canary')", 3,
               params);
    db_exec_on(c, "INSERT INTO webhook_events (psp, event_id, kind, type, "
               "outcome, merchant_id, checkout_id) VALUES ('canary', $1 || "
               "':' || $2, 'SUCCEEDED', 'canary', 'applied', $1, $2)", 2,
               params);
    db_exec_on(c, "UPDATE audit_log SET detail = detail || "
               "'{\"canary\":1}' WHERE merchant_id = $1 AND seq = 1", 1,
               params);

    /* a sharded stack: the paid order booked again, balanced, on the first
     * shard its merchant does not live on (a statement that crossed) */
    for (s = 0; run->nshards > 1 && s < run->nshards; s++) {
        if (strcmp(shard_name(s), run->m[paid->merchant].shard) != 0) {
            db_exec_on(inv_db(s), "WITH t AS (INSERT INTO ledger_transactions"
                       " (merchant_id, checkout_id, payment_order_id, source)"
                       " VALUES ($1, $2, $3, 'canary') RETURNING txn_id) "
                       "INSERT INTO ledger_entries (merchant_id, txn_id, "
                       "entry_no, account, amount, currency) "
                       "SELECT $1, t.txn_id, v.n, v.account, v.amount, $6 "
                       "FROM t, (VALUES (1, $4, 100), (2, $5, -100)) "
                       "v(n, account, amount)", 6, params);
            break;
        }
    }

    params[0] = run->m[unpaid->merchant].id;
    params[1] = str_printf("%s_p1", unpaid->co);
    db_exec_on(db_of(&run->m[unpaid->merchant]), "UPDATE payment_orders SET "
               "status = 'FAILED' WHERE merchant_id = $1 AND "
               "payment_order_id = $2", 2, params);

    inv_books(run, &b, 1);
    for (s = 0; s < run->nshards; s++) {
        db_exec_on(inv_db(s), "ROLLBACK", 0, NULL);
    }

    cr_expect_gt(b.unbalanced, 0, "an unbalanced transaction went unseen");
    cr_expect_gt(b.wallet_ledger, 0, "a wallet off its ledger went unseen");
    cr_expect_gt(b.misbooked, 0, "a misbooked transaction went unseen");
    cr_expect_gt(b.not_once, 0, "an order booked twice went unseen");
    cr_expect_gt(b.history, 0, "an order moved back went unseen");
    cr_expect_gt(b.wallet_expect, 0, "a wallet one unit off went unseen");
    cr_expect_gt(b.clearing_expect, 0, "clearing off went unseen");
    cr_expect_gt(b.commission_expect, 0, "a commission off went unseen");
    cr_expect_gt(b.audit_broken, 0, "an edited audit row went unseen");
    cr_expect_gt(b.statuses, 0, "an order off its story went unseen");
    cr_expect_gt(b.outcomes, 0, "an extra event went unseen");
    if (run->nshards > 1) {
        cr_expect_gt(b.elsewhere, 0, "a ledger transaction of a merchant on"
                     " a shard it does not live on went unseen");
    }

    inv_books(run, &b, 0);
    cr_expect(b.unbalanced == 0 && b.wallet_ledger == 0 && b.misbooked == 0
              && b.not_once == 0 && b.history == 0 && b.wallet_expect == 0
              && b.clearing_expect == 0 && b.commission_expect == 0
              && b.audit_broken == 0
              && b.statuses == 0 && b.outcomes == 0 && b.elsewhere == 0,
              "the canary's rollback left something behind");
}


/* -- the test -------------------------------------------------------------- */

/* the merchant's inv_commission, set as an operator sets it */
static void
inv_set_commission(const merchant_t *m, size_t k)
{
    int          i, n;
    char        *out;
    const char  *args[4 + 2 + 2 * INV_CURRENCIES + 1];

    n = 0;
    args[n++] = "set-commission";
    args[n++] = "--id";
    args[n++] = m->id;
    args[n++] = "--bps";
    args[n++] = str_printf("%d", inv_commission[k].bps);
    for (i = 0; i < INV_CURRENCIES; i++) {
        if (inv_commission[k].fixed[i] > 0) {
            args[n++] = "--fixed-minor";
            args[n++] = str_printf("%s:%ld", inv_currencies[i],
                                   inv_commission[k].fixed[i]);
        }
    }
    args[n] = NULL;

    cr_assert_eq(merchant_toolv_of(m, args, &out), 0, "set-commission %s: "
                 "%s", m->id, out);
}


static double
inv_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


Test(invariants, a_thousand_mixed_payments_keep_the_books_right,
     .timeout = 180)
{
    int          k;
    long         retries, retried, resent, won, orders, txns, want;
    size_t       i, count[INV_NSTORIES], psps[INV_PSPS], cur[INV_CURRENCIES];
    double       t0, t_reg, t_shop, t_pay;
    inv_run_t   *run;
    inv_books_t  b;
    const char  *params[1];

    t0 = inv_now();

    run = calloc(1, sizeof(inv_run_t));
    cr_assert_not_null(run);

    /* on a sharded stack, over every shard */
    for (k = 0; k < INV_MERCHANTS; k++) {
        merchant_new_nth(&run->m[k], (unsigned long) k);
        inv_set_commission(&run->m[k], (size_t) k);
    }

    inv_shard_ids(run);
    run->whsec = file_read(env("PAY_TEST_WEBHOOK_SECRET"), NULL);
    cr_assert_not_null(run->whsec);

    memset(count, 0, sizeof(count));
    memset(psps, 0, sizeof(psps));
    memset(cur, 0, sizeof(cur));
    orders = 0;

    for (i = 0; i < INV_CHECKOUTS; i++) {
        inv_plan(&run->p[i], i);
        inv_request(run, &run->p[i], i);
        count[run->p[i].story]++;
        psps[run->p[i].psp]++;
        cur[run->p[i].currency]++;
        orders += (long) run->p[i].norders;
    }

    for (k = 0; k < INV_NSTORIES; k++) {
        cr_assert_eq(count[k], inv_stories[k].count, "story %s",
                     inv_stories[k].name);
    }

    /* 1. registrations, INV_AT_ONCE at a time */
    retries = inv_register(run);
    t_reg = inv_now();

    /* 2. the fault rules, then the shoppers act on the mock */
    inv_faults(run);
    retried = inv_shoppers(run);
    retried += inv_cancels(run);
    t_shop = inv_now();

    /* 3. the events this test signs */
    resent = inv_signed(run);
    t_pay = inv_now();

    won = inv_resolve_races(run);
    inv_expect(run);

    cr_log_info("invariants: %d checkouts, %ld orders (%zu stripe, %zu adyen,"
                " %zu generic; %zu USD, %zu JPY, %zu KWD, %zu EUR): "
                "registered in %.1f s (%ld retried), paid and settled by "
                "the mock in %.1f s (%ld deliveries retried), signed events "
                "in %.1f s (%ld resent); the success won %ld of %zu races",
                INV_CHECKOUTS, orders, psps[0], psps[1], psps[2], cur[0],
                cur[1], cur[2], cur[3], t_reg - t0, retries, t_shop - t_reg,
                retried, t_pay - t_shop, resent, won,
                inv_stories[INV_RACE].count);

    /* the commissions met every case: nothing, a part and all of an order */
    fprintf(stderr, "[----] invariants: paid orders the commission took "
            "nothing of %ld, a part of %ld, all of %ld\n",
            run->comm_orders[0], run->comm_orders[1], run->comm_orders[2]);
    for (k = 0; k < 3; k++) {
        cr_expect_gt(run->comm_orders[k], 0, "no paid order the commission "
                     "took %s of", k == 0 ? "nothing" : k == 1 ? "a part"
                                                               : "all");
    }

    /* 4. the books */
    inv_books(run, &b, 0);

    cr_expect_eq(b.unbalanced, 0, "ledger transactions that do not sum to "
                 "zero per currency (any merchant)");
    cr_expect_eq(b.wallet_ledger, 0, "wallets that differ from their ledger "
                 "sum (any merchant)");
    cr_expect_eq(b.audit_broken, 0, "merchants whose audit chain does not "
                 "verify");
    cr_expect_eq(b.misbooked, 0, "ledger transactions that do not match "
                 "their order");
    cr_expect_eq(b.not_once, 0, "orders not booked exactly once when paid "
                 "(or booked when not)");
    cr_expect_eq(b.history, 0, "order histories that are not forward-only");
    cr_expect_eq(b.wallet_expect, 0, "wallets off the stories' sums");
    cr_expect_eq(b.clearing_expect, 0, "PSP clearing off the stories' sums");
    cr_expect_eq(b.commission_expect, 0, "the platform's commission off the "
                 "stories' sums");
    cr_expect_eq(b.statuses, 0, "checkouts or orders off their stories");
    cr_expect_eq(b.outcomes, 0, "webhook outcomes or audit rows off the "
                 "stories");
    cr_expect_eq(b.elsewhere, 0, "rows of a merchant on a shard it does not "
                 "live on");

    for (k = 0; k < INV_MERCHANTS; k++) {
        params[0] = run->m[k].id;

        /* exactly once: one ledger transaction per order of a paid checkout */
        txns = atol(db_scalar_on(db_of(&run->m[k]), "SELECT count(*) FROM "
                                 "ledger_transactions WHERE merchant_id = $1",
                                 1, params));
        cr_expect_eq(txns, run->txns[k], "merchant %s: %ld ledger "
                     "transactions, %ld orders paid", run->m[k].id, txns,
                     run->txns[k]);

        want = run->orders[k] + run->terminal_orders[k];
        cr_expect_eq(atol(db_scalar_on(db_of(&run->m[k]), "SELECT count(*) "
                                       "FROM order_events WHERE merchant_id "
                                       "= $1", 1, params)),
                     want, "merchant %s: order events", run->m[k].id);
    }

    /* 5. the gateway's own view agrees */
    cr_expect_eq(inv_check_views(run), 0, "GET /v1/checkouts disagrees");

    /* 6. and the checks above would have seen a broken book */
    inv_canary(run);

    cr_log_info("invariants: all checks done in %.1f s", inv_now() - t0);
}


/* -- manual captures ---------------------------------------------------------- */

#define INV_HOLDS  30          /* 10 per dialect, 2 orders each */


static resp_t *
inv_hold_post(const merchant_t *m, const char *url, const char *body)
{
    req_t        rq;
    char        *auth, *idem;

    auth = str_printf("Authorization: Bearer %s", m->key);
    idem = str_printf("Idempotency-Key: %s", uid("ih"));

    {
        const char  *h[] = { auth, idem, "Content-Type: application/json",
                             NULL };

        rq.method = "POST";
        rq.url = url;
        rq.headers = h;
        rq.body = body;
        rq.len = (size_t) -1;

        return http(&rq);
    }
}


/* sql's count with $1 the merchant, on its shard */
static long
inv_hold_count(const char *sql, const merchant_t *m)
{
    const char  *params[] = { m->id };

    return atol(db_scalar_on(db_of(m), sql, 1, params));
}


/*
 * Manual captures, partial captures and voids, per dialect, on checkouts
 * of two orders (10.00 and 5.00): each authorized, then captured in one
 * or two parts (Stripe: one, which releases the rest), voided, or left
 * held; some captures ask for more than is left.  Then: nothing is booked
 * for what was only authorized or released, each order's clearing is its
 * captured part and never more than it authorized, each captured part is
 * booked once, the books balance, the wallets match them, the audit
 * chains verify.
 */
Test(invariants, manual_captures_and_voids_book_only_what_is_captured,
     .timeout = 180)
{
    int          i, k, j;
    long         n;
    json_t      *body;
    resp_t      *r;
    merchant_t   m;
    char        *co[INV_HOLDS], *token, *po, *w;
    const char  *psp, *st, *params[1];

    /* on a sharded stack, on the last shard (not the home) */
    merchant_new_nth(&m, (unsigned long) shards_n() - 1);
    params[0] = m.id;

    for (i = 0; i < INV_HOLDS; i++) {
        psp = i % 3 == 0 ? env("PAY_TEST_PSP")
              : i % 3 == 1 ? "mock_adyen" : "mock_generic";
        co[i] = uid("ih");
        body = checkout_new(co[i], 2);
        json_object_set_new(body, "psp", json_string(psp));
        json_object_set_new(body, "capture", json_string("manual"));
        r = register_ok(&m, uid("key"), dump(body));
        token = strdup(json_string_value(json_object_get(resp_json(r),
                                                         "psp_token")));
        r = http(&(req_t) {
            "POST", mock_url(str_printf("/_control/sessions/%s/pay", token)),
            (const char *[]) { "Content-Type: application/json", NULL }, "",
            (size_t) -1 });
        cr_assert(r->status >= 200 && r->status < 300, "%s", r->body);
        free(token);
    }

    /* every one authorized */
    for (k = 0; k < 150; k++) {
        if (inv_hold_count("SELECT count(*) FROM checkouts WHERE merchant_id "
                           "= $1 AND status = 'AUTHORIZED'", &m)
            == INV_HOLDS)
        {
            break;
        }
        msleep(100);
    }

    cr_assert_eq(inv_hold_count("SELECT count(*) FROM checkouts WHERE "
                                "merchant_id = $1 AND status = 'AUTHORIZED'",
                                &m), INV_HOLDS);
    cr_expect_eq(inv_hold_count("SELECT count(*) FROM ledger_entries WHERE "
                                "merchant_id = $1", &m), 0,
                 "an authorization was booked");

    /* the stories: i / 3 picks one of ten */
    for (i = 0; i < INV_HOLDS; i++) {
        j = (i / 3) % 5;
        po = str_printf("%s_p1", co[i]);

        switch (j) {
        case 0:     /* one part, then the rest released */
            (void) inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s/capture", po)), "{\"amount\":\"2.50\"}");
            break;
        case 1:     /* two parts (Stripe takes the first only) */
            (void) inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s/capture", po)), "{\"amount\":\"6.00\"}");
            (void) inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s/capture", po)), "{\"amount\":\"4.00\"}");
            break;
        case 2:     /* voided before anything */
            (void) inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s/void", po)), "{}");
            break;
        case 3:     /* more than authorized: refused; then all of it */
            r = inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s/capture", po)), "{\"amount\":\"10.01\"}");
            cr_expect_eq(r->status, 422, "%s", r->body);
            (void) inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s/capture", po)), "{}");
            break;
        default:    /* left held */
            break;
        }
    }

    /* every capture and void settled */
    for (k = 0; k < 150; k++) {
        if (inv_hold_count("SELECT count(*) FROM captures WHERE merchant_id "
                           "= $1 AND status = 'PENDING'", &m) == 0)
        {
            break;
        }
        msleep(100);
    }

    cr_expect_eq(inv_hold_count("SELECT count(*) FROM captures WHERE "
                                "merchant_id = $1 AND status = 'PENDING'",
                                &m), 0, "captures never settled");

    /* voids release, and the rest void the holds left */
    for (i = 0; i < INV_HOLDS; i++) {
        if ((i / 3) % 5 == 0) {
            (void) inv_hold_post(&m, gw_url(str_printf(
                "/v1/payments/%s_p2/void", co[i])), "{}");
        }
    }

    for (k = 0; k < 150; k++) {
        if (inv_hold_count("SELECT count(*) FROM captures WHERE merchant_id "
                           "= $1 AND status = 'PENDING'", &m) == 0)
        {
            break;
        }
        msleep(100);
    }

    /* nothing booked but what was captured: per order, the clearing is
     * its captured part, and its SUCCEEDED captures add up to it */
    n = inv_hold_count(
        "SELECT count(*) FROM payment_orders o WHERE o.merchant_id = $1 AND "
        "(coalesce(o.amount_captured, 0) <> coalesce((SELECT sum(e.amount) "
        "   FROM ledger_entries e JOIN ledger_transactions t ON t.txn_id = "
        "   e.txn_id WHERE t.merchant_id = o.merchant_id AND "
        "   t.payment_order_id = o.payment_order_id AND e.account LIKE "
        "   'psp\\_clearing:%'), 0) "
        " OR coalesce(o.amount_captured, 0) <> coalesce((SELECT sum(x.amount) "
        "   FROM captures x WHERE x.merchant_id = o.merchant_id AND "
        "   x.payment_order_id = o.payment_order_id AND x.kind = 'capture' "
        "   AND x.status = 'SUCCEEDED'), 0) "
        " OR o.amount_captured > o.amount "
        " OR (o.status <> 'SUCCESS' AND (o.ledger_updated OR o.wallet_updated))"
        " OR (o.status = 'SUCCESS') <> (coalesce(o.amount_captured, 0) > 0))",
        &m);
    cr_expect_eq(n, 0, "orders booked other than their captured part");

    /* what the stories captured, to the minor unit: 2.50, 6.00 (+4.00
     * at Adyen and generic), 0, 10.00, 0 per dialect and lap */
    cr_expect_eq(inv_hold_count("SELECT coalesce(sum(amount_captured), 0) "
                                "FROM payment_orders WHERE merchant_id = $1",
                                &m),
                 2 * (250 + 600 + 1000) * 3 + 2 * 400 * 2);

    /* holds left are held, nothing of them booked */
    cr_expect_eq(inv_hold_count("SELECT count(*) FROM checkouts WHERE "
                                "merchant_id = $1 AND status = 'AUTHORIZED'",
                                &m), 6);

    cr_expect_eq(inv_hold_count("SELECT count(*) FROM (SELECT 1 FROM "
                                "ledger_entries WHERE merchant_id = $1 GROUP "
                                "BY txn_id, currency HAVING sum(amount) <> "
                                "0) x", &m), 0, "unbalanced transactions");
    cr_expect_eq(inv_hold_count("SELECT count(*) FROM (SELECT seller_account,"
                                " currency, balance FROM wallets WHERE "
                                "merchant_id = $1) w FULL JOIN (SELECT "
                                "substr(account, 16) AS seller_account, "
                                "currency, -sum(amount) AS booked FROM "
                                "ledger_entries WHERE merchant_id = $1 AND "
                                "account LIKE 'seller\\_payable:%' GROUP BY "
                                "1, 2) l USING (seller_account, currency) "
                                "WHERE coalesce(w.balance, 0) <> "
                                "coalesce(l.booked, 0)", &m), 0,
                 "wallets off their ledger");
    st = db_scalar_on(db_of(&m), "SELECT pay_audit_verify($1)::text", 1,
                      params);
    cr_expect_str_eq(st, "true");
    cr_expect_eq(shards_elsewhere(m.shard, m.id, &w), 0, "rows of the "
                 "merchant on other shards than its own (%s): %s", m.shard,
                 w);
}


/* -- where the money features meet ---------------------------------------- */

/*
 * Breaks the books of the run's first story on purpose, inside a
 * transaction rolled back: a ledger entry one minor unit off, a wallet one
 * off, the commission of its last booked payment one more (the review
 * story gives nothing back: exactly the rule's is expected), an order's
 * history moved back; on a sharded stack also a ledger
 * transaction of the merchant on each shard it does not live on;
 * comp_check must see each.
 */
static void
inv_compose_canary(comp_run_t *run)
{
    int          s;
    long         before[COMP_NCHECKS];
    PGconn      *c;
    const char  *p[1], *name;

    memcpy(before, run->checks, sizeof(before));
    p[0] = run->m[COMP_REVIEW].id;
    c = db_of(&run->m[COMP_REVIEW]);

    db_exec_on(c, "BEGIN", 0, NULL);
    db_exec_on(c, "SET LOCAL session_replication_role = replica", 0, NULL);
    db_exec_on(c, "UPDATE ledger_entries SET amount = amount + 1 WHERE "
               "(merchant_id, txn_id, entry_no) = (SELECT merchant_id, "
               "txn_id, entry_no FROM ledger_entries WHERE merchant_id = $1 "
               "AND account LIKE 'psp\\_clearing:%' ORDER BY txn_id, "
               "entry_no LIMIT 1)", 1, p);
    db_exec_on(c, "UPDATE wallets_folded SET balance = balance + 1 WHERE "
               "(merchant_id, seller_account, currency) = (SELECT "
               "merchant_id, seller_account, currency FROM wallets_folded "
               "WHERE merchant_id = $1 ORDER BY 2 LIMIT 1)", 1, p);
    db_exec_on(c, "UPDATE ledger_entries SET amount = amount - 1 WHERE "
               "(merchant_id, txn_id, entry_no) = (SELECT merchant_id, "
               "txn_id, entry_no FROM ledger_entries WHERE merchant_id = $1 "
               "AND account = 'platform_commission' ORDER BY txn_id DESC, "
               "entry_no LIMIT 1)", 1, p);
    db_exec_on(c, "UPDATE order_events SET to_status = 'AUTHORIZED' WHERE "
               "(merchant_id, event_id) = (SELECT merchant_id, max(event_id) "
               "FROM order_events WHERE merchant_id = $1 AND to_status = "
               "'SUCCESS' GROUP BY 1)", 1, p);

    for (s = 0; shards_n() > 1 && s < shards_n(); s++) {
        name = shard_name(s);
        if (strcmp(name, run->m[COMP_REVIEW].shard) == 0) {
            continue;
        }
        db_exec_on(db_shard(name), "BEGIN", 0, NULL);
        db_exec_on(db_shard(name), "SET LOCAL session_replication_role = "
                   "replica", 0, NULL);
        db_exec_on(db_shard(name), "INSERT INTO ledger_transactions "
                   "(merchant_id, checkout_id, payment_order_id, source) "
                   "VALUES ($1, 'cmp_canary', 'cmp_canary_p1', 'canary')", 1,
                   p);
    }

    run->quiet = 1;
    (void) comp_check(run);
    run->quiet = 0;
    db_exec_on(c, "ROLLBACK", 0, NULL);
    for (s = 0; shards_n() > 1 && s < shards_n(); s++) {
        if (strcmp(shard_name(s), run->m[COMP_REVIEW].shard) != 0) {
            db_exec_on(db_shard(shard_name(s)), "ROLLBACK", 0, NULL);
        }
    }

    cr_expect_gt(run->checks[COMP_CHK_BALANCED], 0, "canary: an unbalanced "
                 "transaction unseen");
    cr_expect_gt(run->checks[COMP_CHK_CAPTURED], 0, "canary: a capture "
                 "booked off the PSP's unseen");
    cr_expect_gt(run->checks[COMP_CHK_WALLETS], 0, "canary: a wallet off "
                 "its ledger unseen");
    cr_expect_gt(run->checks[COMP_CHK_FORWARD], 0, "canary: a history "
                 "moved back unseen");
    cr_expect_gt(run->checks[COMP_CHK_COMMISSION], 0, "canary: a "
                 "commission kept beyond the rule's unseen");
    if (shards_n() > 1) {
        cr_expect_gt(run->checks[COMP_CHK_SHARD], 0, "canary: a ledger "
                     "transaction of a merchant on another shard unseen");
    }

    memcpy(run->checks, before, sizeof(before));
}


/*
 * The compositions where features meet (tests/e2e/harness_compose.h), as
 * scripted stories in every dialect that has them: a manual checkout held
 * for review and approved, then paid, captured in part and released;
 * chargebacks of a partly captured and refunded hold and of a paid
 * checkout whose second order was refunded whole (in the generic dialect
 * the PSP charges back all it captured, the refunds notwithstanding); a
 * capture the PSP reverses after confirming it; the sweeper's round at a
 * hold's end while its capture's webhook is 3 s away, then again once it
 * came; a cancel while the registration is at the PSP (800 ms), told to
 * come back, the shopper paying before or after it; a manual checkout
 * that saves the shopper's method, captured in part, released, refunded
 * and charged back, and an off-session charge of that method, refunded
 * (one order whole) and charged back.  Then the gateway's
 * books against the PSP's own: captured, refunded and disputed per
 * checkout, every SUCCEEDED operation one the PSP kept, one PSP object per
 * nonce, no seller charged beyond its credit, the books balanced, wallets
 * equal to the ledger, every order's history forward only, every event
 * the PSP sent accepted, and what each story must end with.
 */
Test(invariants, where_the_money_features_meet_the_psps_books_agree,
     .timeout = 150)
{
    int          i;
    long         bad;
    double       t0;
    comp_run_t  *run;

    t0 = inv_now();
    run = calloc(1, sizeof(comp_run_t));
    cr_assert_not_null(run);

    comp_run(run, 0);
    memset(books_commission_seen, 0, sizeof(books_commission_seen));
    bad = comp_check(run);

    fprintf(stderr, "[----] invariants: where features meet: %ld requests, "
            "%ld checks failed, in %.1f s\n", run->steps, bad,
            inv_now() - t0);

    for (i = 0; i < COMP_NCHECKS; i++) {
        cr_expect_eq(run->checks[i], 0, "check %s failed %ld times (the "
                     "lines above say where)", comp_check_names[i],
                     run->checks[i]);
    }

    /* every story's merchant takes a commission: the check read orders
     * with nothing, part and all of what they captured given back */
    fprintf(stderr, "[----] invariants: where features meet: commission "
            "orders: nothing given back %ld, in part %ld, whole %ld\n",
            books_commission_seen[BOOKS_COMM_WHOLE],
            books_commission_seen[BOOKS_COMM_PART],
            books_commission_seen[BOOKS_COMM_REFUNDED]);
    for (i = 0; i < BOOKS_NCOMM; i++) {
        cr_expect_gt(books_commission_seen[i], 0, "the commission check "
                     "read no order of way %d", i);
    }

    inv_compose_canary(run);
}
