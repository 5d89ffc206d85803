/*
 * End to end: after 1,000 mixed payments (issue #3) every ledger
 * transaction sums to zero, every wallet equals its ledger sum (and the sum
 * this test expects, to the last minor unit), the audit chains verify, and
 * each checkout ends where its story says.
 *
 * The payments go through the real path: POST /v1/payments to the mock
 * PSP's three APIs (Stripe, Adyen, generic), then the mock's own control
 * API pays or declines each session and the mock sends its signed webhooks,
 * with fault rules for duplicates, out-of-order and async deliveries and a
 * lying amount.  Nothing here signs an event itself.
 */

#include "harness.h"


#define INV_CHECKOUTS   1000
#define INV_MERCHANTS   4
#define INV_SELLERS     7
#define INV_CURRENCIES  4
#define INV_SETTLE_S    90


static const char  *inv_currencies[INV_CURRENCIES] = {
    "USD", "JPY", "KWD", "EUR"
};


typedef enum {
    INV_PAID = 0,           /* stripe */
    INV_DECLINED,           /* stripe */
    INV_DUPLICATED,         /* stripe, 3 extra copies of each event */
    INV_OUT_OF_ORDER,       /* stripe: expired first, completed after */
    INV_AMOUNT_LIE,         /* stripe: the event's amount is off by one */
    INV_NEVER_PAID,         /* stripe */
    INV_ADYEN_PAID,         /* with a duplicate every other time */
    INV_GENERIC_PAID,       /* async every other time */
    INV_ASYNC,              /* stripe: unpaid, then the money later */
    INV_CONTRARY            /* adyen declined, or generic out of order */
} inv_story_e;


typedef struct {
    char          co[32];
    char          token[64];
    const char   *psp;
    inv_story_e   story;
    const char   *expect;       /* final checkout status */
    size_t        merchant;
    size_t        currency;
    size_t        norders;
    long          amount[3];
    size_t        seller[3];
    long          total;
} inv_payment_t;


/* "15.00", "1500", "1.500" */
static char *
inv_decimal(long minor, const char *currency)
{
    if (strcmp(currency, "JPY") == 0) {
        return str_printf("%ld", minor);
    }

    if (strcmp(currency, "KWD") == 0) {
        return str_printf("%ld.%03ld", minor / 1000, minor % 1000);
    }

    return str_printf("%ld.%02ld", minor / 100, minor % 100);
}


static void
inv_plan(inv_payment_t *p, size_t i)
{
    size_t  j;

    memset(p, 0, sizeof(*p));
    snprintf(p->co, sizeof(p->co), "co_inv_%04zu", i);
    p->story = (inv_story_e) (i % 10);
    p->merchant = (i / 10) % INV_MERCHANTS;
    p->currency = i % INV_CURRENCIES;
    p->norders = 1 + i % 3;

    for (j = 0; j < p->norders; j++) {
        p->amount[j] = 100 + (long) ((i * 37 + j * 11) % 5000);
        if (strcmp(inv_currencies[p->currency], "KWD") == 0) {
            p->amount[j] *= 10;     /* Stripe: three-decimal amounts end in 0 */
        }
        p->seller[j] = (i + j) % INV_SELLERS;
        p->total += p->amount[j];
    }

    switch (p->story) {
    case INV_ADYEN_PAID:
        p->psp = "mock_adyen";
        p->expect = "SUCCESS";
        break;
    case INV_GENERIC_PAID:
        p->psp = "mock_generic";
        p->expect = "SUCCESS";
        break;
    case INV_CONTRARY:
        p->psp = (i % 20 == 9) ? "mock_adyen" : "mock_generic";
        p->expect = "FAILED";
        break;
    case INV_DECLINED:
    case INV_OUT_OF_ORDER:
        p->psp = env("PAY_TEST_PSP");
        p->expect = "FAILED";
        break;
    case INV_AMOUNT_LIE:
    case INV_NEVER_PAID:
        p->psp = env("PAY_TEST_PSP");
        p->expect = "EXECUTING";
        break;
    default:
        p->psp = env("PAY_TEST_PSP");
        p->expect = "SUCCESS";
    }
}


/* The fault rule a story needs, or NULL. */
static char *
inv_rule(const inv_payment_t *p, const char *nonce_)
{
    switch (p->story) {
    case INV_DUPLICATED:
        return str_printf("{\"match\":\"%s\",\"webhook_duplicate\":3}", nonce_);
    case INV_OUT_OF_ORDER:
        return str_printf("{\"match\":\"%s\",\"webhook_out_of_order\":true}",
                          nonce_);
    case INV_AMOUNT_LIE:
        return str_printf("{\"match\":\"%s\",\"webhook_amount\":%ld}", nonce_,
                          p->total + 1);
    case INV_ASYNC:
        return str_printf("{\"match\":\"%s\",\"async_payment\":true,"
                          "\"async_delay_ms\":300}", nonce_);
    case INV_ADYEN_PAID:
        return (atoi(p->co + 7) % 20 == 6)
               ? str_printf("{\"match\":\"%s\",\"webhook_duplicate\":1}",
                            nonce_)
               : NULL;
    case INV_GENERIC_PAID:
        return (atoi(p->co + 7) % 20 == 7)
               ? str_printf("{\"match\":\"%s\",\"async_payment\":true,"
                            "\"async_delay_ms\":300}", nonce_)
               : NULL;
    case INV_CONTRARY:
        return strcmp(p->psp, "mock_generic") == 0
               ? str_printf("{\"match\":\"%s\",\"webhook_out_of_order\":true}",
                            nonce_)
               : NULL;
    default:
        return NULL;
    }
}


static json_t *
inv_body(const inv_payment_t *p)
{
    size_t   j;
    json_t  *orders, *o;

    orders = json_array();

    for (j = 0; j < p->norders; j++) {
        o = json_pack("{s:s, s:s, s:s, s:s}",
                      "payment_order_id", str_printf("%s_p%zu", p->co, j + 1),
                      "seller_account", str_printf("seller_%zu", p->seller[j]),
                      "amount", inv_decimal(p->amount[j],
                                            inv_currencies[p->currency]),
                      "currency", inv_currencies[p->currency]);
        cr_assert_not_null(o);
        json_array_append_new(orders, o);
    }

    return json_pack("{s:s, s:{s:s}, s:o, s:s, s:s, s:s}",
                     "checkout_id", p->co,
                     "buyer_info", "email", "ann@example.com",
                     "payment_orders", orders,
                     "success_url", SHOP_ORIGIN "/thanks",
                     "cancel_url", SHOP_ORIGIN "/cart",
                     "psp", p->psp);
}


static void
inv_control(const char *token, const char *action)
{
    req_t    rq;
    resp_t  *r;

    rq.method = "POST";
    rq.url = mock_url(str_printf("/_control/sessions/%s/%s", token, action));
    rq.headers = NULL;
    rq.body = "";
    rq.len = 0;
    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock %s %s: %ld %s",
              action, token, r->status, r->body);
    resp_free(r);
}


static long
inv_count(const char *sql, const char *m)
{
    const char  *params[] = { m };

    return atol(db_scalar(sql, m ? 1 : 0, m ? params : NULL));
}


Test(invariants, a_thousand_mixed_payments_keep_the_books_right,
     .timeout = 240)
{
    int             settled, done, quiet;
    long            lies;
    long            expected[INV_MERCHANTS][INV_SELLERS][INV_CURRENCIES];
    long            want_success[INV_MERCHANTS], want_failed[INV_MERCHANTS];
    long            want_executing[INV_MERCHANTS], want_txns[INV_MERCHANTS];
    long            want_lies, events, last_events;
    size_t          i, j, k, s, c;
    char           *rule, *n;
    resp_t         *r;
    json_t         *body;
    merchant_t      m[INV_MERCHANTS];
    inv_payment_t  *p;
    const char     *params[3];

    p = calloc(INV_CHECKOUTS, sizeof(inv_payment_t));
    cr_assert_not_null(p);
    memset(expected, 0, sizeof(expected));
    memset(want_success, 0, sizeof(want_success));
    memset(want_failed, 0, sizeof(want_failed));
    memset(want_executing, 0, sizeof(want_executing));
    memset(want_txns, 0, sizeof(want_txns));
    want_lies = 0;

    for (k = 0; k < INV_MERCHANTS; k++) {
        merchant_new(&m[k]);
    }

    /* register every checkout, and set its story's fault rule first */
    for (i = 0; i < INV_CHECKOUTS; i++) {
        inv_plan(&p[i], i);
        n = nonce(&m[p[i].merchant], p[i].co);

        rule = inv_rule(&p[i], n);
        if (rule != NULL) {
            mock_fault(rule);
        }

        body = inv_body(&p[i]);
        r = api_post_json(&m[p[i].merchant], body);
        cr_assert_eq(r->status, 201, "%s (%s): %s", p[i].co, p[i].psp,
                     r->body);
        snprintf(p[i].token, sizeof(p[i].token), "%s",
                 json_string_value(json_object_get(resp_json(r),
                                                   "psp_token")));
        cr_assert(p[i].token[0] != '\0');
        resp_free(r);
        json_decref(body);
    }

    /* the shoppers pay or decline on the hosted pages */
    for (i = 0; i < INV_CHECKOUTS; i++) {
        k = p[i].merchant;

        switch (p[i].story) {
        case INV_NEVER_PAID:
            break;
        case INV_DECLINED:
            inv_control(p[i].token, "decline");
            break;
        case INV_CONTRARY:
            inv_control(p[i].token,
                        strcmp(p[i].psp, "mock_adyen") == 0 ? "decline"
                                                            : "pay");
            break;
        default:
            inv_control(p[i].token, "pay");
        }

        if (strcmp(p[i].expect, "SUCCESS") == 0) {
            want_success[k]++;
            want_txns[k] += (long) p[i].norders;
            for (j = 0; j < p[i].norders; j++) {
                expected[k][p[i].seller[j]][p[i].currency] += p[i].amount[j];
            }

        } else if (strcmp(p[i].expect, "FAILED") == 0) {
            want_failed[k]++;

        } else {
            want_executing[k]++;
        }

        want_lies += (p[i].story == INV_AMOUNT_LIE);
    }

    /*
     * Settled: every checkout where its story ends, every lie seen, and no
     * event row added for two seconds (late copies and contrary events).
     */
    settled = 0;
    last_events = -1;
    quiet = 0;

    for (i = 0; i < INV_SETTLE_S * 2 && !settled; i++) {
        msleep(500);

        done = 1;
        events = 0;
        lies = 0;

        for (k = 0; k < INV_MERCHANTS; k++) {
            done = done
                   && inv_count("SELECT count(*) FROM checkouts WHERE "
                                "merchant_id = $1 AND status = 'SUCCESS'",
                                m[k].id) == want_success[k]
                   && inv_count("SELECT count(*) FROM checkouts WHERE "
                                "merchant_id = $1 AND status = 'FAILED'",
                                m[k].id) == want_failed[k];
            events += inv_count("SELECT count(*) FROM webhook_events WHERE "
                                "merchant_id = $1", m[k].id);
            lies += inv_count("SELECT count(*) FROM webhook_events WHERE "
                              "merchant_id = $1 AND outcome = "
                              "'amount_mismatch'", m[k].id);
        }

        quiet = (events == last_events) ? quiet + 1 : 0;
        last_events = events;

        settled = done && lies >= want_lies && quiet >= 4;
    }

    cr_assert(settled, "the webhooks did not settle in %d s", INV_SETTLE_S);

    /* each checkout where its story says */
    for (i = 0; i < INV_CHECKOUTS; i++) {
        params[0] = m[p[i].merchant].id;
        params[1] = p[i].co;
        cr_expect_str_eq(db_scalar("SELECT status FROM checkouts WHERE "
                                   "merchant_id = $1 AND checkout_id = $2",
                                   2, params), p[i].expect,
                         "%s (story %d, %s)", p[i].co, (int) p[i].story,
                         p[i].psp);
    }

    /* every ledger transaction sums to zero, in each currency */
    cr_assert_eq(inv_count("SELECT count(*) FROM (SELECT 1 FROM "
                           "ledger_entries GROUP BY merchant_id, txn_id, "
                           "currency HAVING sum(amount) <> 0) x", NULL), 0);

    /* every wallet equals its ledger sum (all merchants, ours included) */
    cr_assert_eq(inv_count(
        "SELECT count(*) FROM wallets w FULL JOIN ("
        "  SELECT merchant_id, substr(account, 16) AS seller, currency, "
        "         -sum(amount) AS s FROM ledger_entries "
        "   WHERE account LIKE 'seller\\_payable:%' "
        "   GROUP BY 1, 2, 3) l "
        "  ON l.merchant_id = w.merchant_id AND l.seller = w.seller_account "
        " AND l.currency = w.currency "
        "WHERE coalesce(w.balance, 0) <> coalesce(l.s, 0)", NULL), 0);

    for (k = 0; k < INV_MERCHANTS; k++) {
        /* exactly one ledger transaction per order paid, no more */
        cr_assert_eq(inv_count("SELECT count(*) FROM ledger_transactions "
                               "WHERE merchant_id = $1", m[k].id),
                     want_txns[k], "merchant %zu", k);

        /* orders say they are booked exactly when they are SUCCESS */
        cr_assert_eq(inv_count("SELECT count(*) FROM payment_orders WHERE "
                               "merchant_id = $1 AND status = 'SUCCESS' AND "
                               "ledger_updated AND wallet_updated", m[k].id),
                     want_txns[k]);

        /* nothing ever moved out of SUCCESS or FAILED */
        cr_assert_eq(inv_count("SELECT count(*) FROM order_events WHERE "
                               "merchant_id = $1 AND from_status IN "
                               "('SUCCESS', 'FAILED')", m[k].id), 0);

        /* the audit chain verifies */
        params[0] = m[k].id;
        cr_assert_str_eq(db_scalar("SELECT pay_audit_verify($1)", 1, params),
                         "t", "merchant %s", m[k].id);

        /* each wallet holds what this test paid its seller, to the unit */
        for (s = 0; s < INV_SELLERS; s++) {
            for (c = 0; c < INV_CURRENCIES; c++) {
                params[1] = str_printf("seller_%zu", s);
                params[2] = inv_currencies[c];
                cr_expect_eq(atol(db_scalar(
                                 "SELECT coalesce(sum(balance), 0) FROM "
                                 "wallets WHERE merchant_id = $1 AND "
                                 "seller_account = $2 AND currency = $3",
                                 3, params)),
                             expected[k][s][c], "merchant %zu %s %s", k,
                             params[1], params[2]);
            }
        }
    }

    free(p);
}
