/*
 * End to end: the merchant's lists (GET /v1/checkouts, /v1/payments,
 * /v1/refunds, /v1/payouts) and its events feed (GET /v1/events), as
 * doc/API.md ("Lists") and doc/NOTIFICATIONS.md ("Catching up") describe
 * them: pages that visit every object once in both directions, the
 * filters, the limits, the refusals, another merchant's objects never
 * listed, each list's plan an index scan, and a feed that carries what
 * the merchant's endpoint received.
 */

#include "harness.h"


/* --- helpers ----------------------------------------------------------------- */

static char *
q1(const char *sql, const char *a)
{
    const char  *params[] = { a };

    return db_scalar(sql, a ? 1 : 0, params);
}


/* EXPLAIN sql with MID the merchant's id (a constant, as a call of the
 * list's function plans it): the plan's lines */
static char *
explain(const char *query, const char *merchant)
{
    int          i;
    char        *plan, *t, *sql;
    PGresult    *res;
    const char  *at;

    at = strstr(query, "MID");
    cr_assert_not_null(at);
    sql = str_printf("EXPLAIN %.*s'%s'%s", (int) (at - query), query,
                     merchant, at + 3);

    res = PQexec(db(), sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
                 PQresultErrorMessage(res));

    plan = strdup("");

    for (i = 0; i < PQntuples(res); i++) {
        t = str_printf("%s%s\n", plan, PQgetvalue(res, i, 0));
        free(plan);
        plan = t;
    }

    PQclear(res);

    return plan;
}


/* GET path as m: 200 and its JSON (the caller's) */
static json_t *
page_of(const merchant_t *m, const char *path)
{
    json_t  *j;
    resp_t  *r;

    r = api_get(m, path);
    cr_assert_eq(r->status, 200, "GET %s: %ld %s", path, r->status, r->body);
    cr_assert_str_eq(resp_header(r, "Content-Type"), "application/json");

    j = json_incref(resp_json(r));
    cr_assert(json_is_array(json_object_get(j, "data")), "%s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(j, "object")), "list");
    cr_assert(json_is_boolean(json_object_get(j, "has_more")), "%s", r->body);
    resp_free(r);

    return j;
}


static void
refused(const merchant_t *m, const char *path)
{
    resp_t  *r;

    r = api_get(m, path);
    expect_problem(r, 400, "invalid_request");
    resp_free(r);
}


/* The ids of a page's items (key), comma-separated, in the page's order. */
static char *
ids_of(const json_t *page, const char *key)
{
    size_t   i;
    char    *s, *t;
    json_t  *it;

    s = strdup("");

    json_array_foreach(json_object_get(page, "data"), i, it) {
        t = str_printf("%s%s%s", s, *s ? "," : "",
                       json_string_value(json_object_get(it, key)));
        free(s);
        s = t;
    }

    return s;
}


/* n checkouts of m made in SQL (three to a second: ties on created_at that
 * the id orders), status SUCCESS for every third, FAILED for every fifth */
static void
checkouts_made(const merchant_t *m, const char *prefix, int n)
{
    const char  *p[] = { m->id, prefix, NULL };
    char        *num = str_printf("%d", n);

    p[2] = num;
    db_exec("INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
            " currency, amount_total, success_url, cancel_url, status,"
            " psp_request, expires_at, created_at)"
            " SELECT $1, $2 || lpad(g::text, 4, '0'), 'mock',"
            " $1 || ':' || $2 || lpad(g::text, 4, '0'), 'USD', 100 + g,"
            " 'https://shop.example/s', 'https://shop.example/c',"
            " 'EXECUTING', 'r',"
            " now() + interval '1 hour',"
            " timestamptz '2026-01-01T00:00:00Z' + (g / 3) * interval '1 second'"
            " FROM generate_series(1, $3::int) g", 3, p);
    /* a new row starts EXECUTING (status_forward_guard) */
    db_exec("UPDATE checkouts SET status = (CASE WHEN substr(checkout_id,"
            " length($2) + 1)::int % 3 = 0 THEN 'SUCCESS' ELSE 'FAILED'"
            " END)::pay_status WHERE merchant_id = $1"
            " AND checkout_id LIKE $2 || '%'"
            " AND (substr(checkout_id, length($2) + 1)::int % 3 = 0"
            "      OR substr(checkout_id, length($2) + 1)::int % 5 = 0)",
            2, p);
}


/* --- the lists suite --------------------------------------------------------- */

TestSuite(lists, .timeout = 120);


Test(lists, a_thousand_checkouts_each_visited_once_in_both_directions)
{
    int          pages;
    char        *want, *got, *t, *ids, *last, *first;
    json_t      *pg;
    merchant_t   m, other;

    merchant_new(&m);
    merchant_new(&other);
    checkouts_made(&m, "pg_", 1000);
    checkouts_made(&other, "pg_", 20);

    want = q1("SELECT string_agg(checkout_id, ',' ORDER BY created_at DESC,"
              " checkout_id DESC) FROM checkouts WHERE merchant_id = $1",
              m.id);

    /* newest first, 100 a page, each page after the last item of the one
     * before */
    got = strdup("");
    last = NULL;

    for (pages = 0; pages < 20; pages++) {
        pg = page_of(&m, last ? str_printf("/v1/checkouts?limit=100"
                                           "&starting_after=%s", last)
                              : "/v1/checkouts?limit=100");
        ids = ids_of(pg, "checkout_id");
        cr_assert(*ids, "an empty page after %s", last ? last : "-");

        t = str_printf("%s%s%s", got, *got ? "," : "", ids);
        free(got);
        got = t;
        last = strrchr(ids, ',') ? strrchr(ids, ',') + 1 : ids;

        if (!json_is_true(json_object_get(pg, "has_more"))) {
            break;
        }
    }

    cr_expect_eq(pages, 9, "1,000 in ten pages of 100, the last without "
                 "has_more");
    cr_expect_str_eq(got, want, "each once, newest first");

    /* back from the oldest: 37 a page, each page before the first item of
     * the one after; every page still newest first */
    got = strdup(last);
    first = last;

    for (pages = 0; pages < 40; pages++) {
        pg = page_of(&m, str_printf("/v1/checkouts?limit=37"
                                    "&ending_before=%s", first));
        ids = ids_of(pg, "checkout_id");

        if (*ids == '\0') {
            cr_expect(json_is_false(json_object_get(pg, "has_more")));
            break;
        }

        t = str_printf("%s,%s", ids, got);
        free(got);
        got = t;
        first = strdup(ids);
        if (strchr(first, ',')) {
            *strchr(first, ',') = '\0';
        }

        if (!json_is_true(json_object_get(pg, "has_more"))) {
            break;
        }
    }

    cr_expect_eq(pages, 26, "999 before the oldest in 27 pages of 37");
    cr_expect_str_eq(got, want, "each once, backwards too");

    /* another merchant's 20 never appear, nor do m's in its list */
    pg = page_of(&other, "/v1/checkouts?limit=100");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 20);
    cr_expect(json_is_false(json_object_get(pg, "has_more")));
    cr_expect_str_eq(ids_of(pg, "checkout_id"),
                     q1("SELECT string_agg(checkout_id, ',' ORDER BY"
                        " created_at DESC, checkout_id DESC) FROM checkouts"
                        " WHERE merchant_id = $1", other.id));

    /* the payment orders of the same merchant: none were made */
    pg = page_of(&m, "/v1/payments");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
}


Test(lists, filters_limits_and_refusals)
{
    json_t      *pg, *it;
    size_t       i;
    merchant_t   m, other;

    merchant_new(&m);
    merchant_new(&other);
    checkouts_made(&m, "f_", 60);
    checkouts_made(&other, "o_", 5);

    /* the default limit, 10, newest first */
    pg = page_of(&m, "/v1/checkouts");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 10);
    cr_expect(json_is_true(json_object_get(pg, "has_more")));
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(pg, "data"), 0),
                         "checkout_id")), "f_0060");

    it = json_array_get(json_object_get(pg, "data"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(it, "amount")),
                     "1.60", "decimal, as the other views: %s", dump(it));
    cr_expect_str_eq(json_string_value(json_object_get(it, "currency")),
                     "USD");
    cr_expect_str_eq(json_string_value(json_object_get(it, "created_at")),
                     "2026-01-01T00:00:20Z");

    /* status: 20 SUCCESS (every third), as the items spell it or lower */
    pg = page_of(&m, "/v1/checkouts?status=SUCCESS&limit=100");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 20);
    json_array_foreach(json_object_get(pg, "data"), i, it) {
        cr_expect_str_eq(json_string_value(json_object_get(it, "status")),
                         "SUCCESS");
    }
    pg = page_of(&m, "/v1/checkouts?status=failed&limit=100");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 8,
                 "5, 10, 20, 25, 35, 40, 50, 55: %s", dump(pg));

    /* creation time: [00:00:05, 00:00:10) holds g 15 to 29, in both
     * spellings of a time */
    pg = page_of(&m, "/v1/checkouts?limit=100"
                     "&created_after=2026-01-01T00:00:05Z"
                     "&created_before=2026-01-01T00%3A00%3A10Z");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 15,
                 "%s", dump(pg));
    cr_expect_str_eq(ids_of(pg, "checkout_id"),
                     "f_0029,f_0028,f_0027,f_0026,f_0025,f_0024,f_0023,"
                     "f_0022,f_0021,f_0020,f_0019,f_0018,f_0017,f_0016,"
                     "f_0015");
    pg = page_of(&m, "/v1/checkouts?created_after=1767225605"
                     "&created_before=1767225610&status=SUCCESS");
    cr_expect_str_eq(ids_of(pg, "checkout_id"),
                     "f_0027,f_0024,f_0021,f_0018,f_0015");

    /* a filter and a cursor together */
    pg = page_of(&m, "/v1/checkouts?status=SUCCESS&limit=2"
                     "&starting_after=f_0027");
    cr_expect_str_eq(ids_of(pg, "checkout_id"), "f_0024,f_0021");
    cr_expect(json_is_true(json_object_get(pg, "has_more")));
    pg = page_of(&m, "/v1/checkouts?status=SUCCESS&limit=2"
                     "&ending_before=f_0024");
    cr_expect_str_eq(ids_of(pg, "checkout_id"), "f_0030,f_0027");
    cr_expect(json_is_true(json_object_get(pg, "has_more")));

    /* limits: 1 and 100 are taken, the rest refused */
    pg = page_of(&m, "/v1/checkouts?limit=1");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 1);
    pg = page_of(&m, "/v1/checkouts?limit=100");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 60);
    cr_expect(json_is_false(json_object_get(pg, "has_more")));

    refused(&m, "/v1/checkouts?limit=0");
    refused(&m, "/v1/checkouts?limit=101");
    refused(&m, "/v1/checkouts?limit=ten");
    refused(&m, "/v1/checkouts?limit=");
    refused(&m, "/v1/checkouts?limit=5&limit=6");
    refused(&m, "/v1/checkouts?status=PAID");
    refused(&m, "/v1/refunds?status=SUCCESS");
    refused(&m, "/v1/checkouts?created_after=yesterday");
    refused(&m, "/v1/checkouts?created_before=2026-02-30T00:00:00Z");
    refused(&m, "/v1/checkouts?starting_after=f_0001&ending_before=f_0002");
    refused(&m, "/v1/checkouts?starting_after=no%20such");
    refused(&m, "/v1/checkouts?startingafter=f_0001");
    refused(&m, "/v1/checkouts?type=checkout.succeeded");
    refused(&m, "/v1/events?status=SUCCESS");
    refused(&m, "/v1/events?ending_before=msg_000000000000000000000000");

    /* a cursor is one of the merchant's own objects: another's is as
     * unknown as one that never was */
    refused(&m, "/v1/checkouts?starting_after=o_0001");
    refused(&m, "/v1/checkouts?ending_before=f_9999");
    refused(&m, "/v1/payments?starting_after=f_0001");
}


/*
 * The plans of the lists' pages on big tables: 20,000 rows in each, of 50
 * merchants, made in one transaction that is rolled back (the triggers,
 * which would want real payments behind the refunds and pay-outs, are off
 * in it: session_replication_role), analysed in it, and each page EXPLAINed
 * as the list's function calls it (constants: its custom plan).
 */
Test(lists, each_list_query_is_an_index_scan)
{
    size_t       i;
    char        *plan;
    PGresult    *res;

    static const char  *queries[] = {
        /* first page, a page after a cursor, a page before one, filters */
        "SELECT * FROM checkouts_page(MID, NULL, NULL, NULL, NULL, NULL,"
        " false, 11)",
        "SELECT * FROM checkouts_page(MID, 'SUCCESS', NULL, NULL,"
        " '2026-01-01T01:00:00Z', 'co_07_00200', false, 101)",
        "SELECT * FROM checkouts_page(MID, NULL, '2026-01-01', '2026-01-02',"
        " '2026-01-01T01:00:00Z', 'co_07_00200', true, 11)",
        "SELECT * FROM payment_orders_page(MID, NULL, NULL, NULL,"
        " '2026-01-01T01:00:00Z', 'x', false, 11)",
        "SELECT * FROM payment_orders_page(MID, 'FAILED', NULL, NULL,"
        " '2026-01-01T01:00:00Z', 'x', true, 11)",
        "SELECT * FROM refunds_page(MID, NULL, NULL, NULL, NULL, NULL,"
        " false, 11)",
        "SELECT * FROM refunds_page(MID, 'PENDING', NULL, NULL,"
        " '2026-01-01T01:00:00Z', 'x', true, 11)",
        "SELECT * FROM payouts_page(MID, NULL, NULL, NULL,"
        " '2026-01-01T01:00:00Z', 'x', false, 11)",
        "SELECT * FROM payouts_page(MID, 'PAID', NULL, NULL, NULL, NULL,"
        " true, 11)",
        "SELECT * FROM notifications_feed_page(MID, NULL,"
        " pg_snapshot_xmin(pg_current_snapshot()), NULL, NULL, NULL, 11)",
        "SELECT * FROM notifications_feed_page(MID, 'refund.succeeded',"
        " '4000000000', '700', '2026-01-01T01:00:00Z', 'msg_0', 11)",
    };

    static const char  *index[] = {
        "checkouts_list", "checkouts_list", "checkouts_list",
        "payment_orders_list", "payment_orders_list",
        "refunds_list", "refunds_list", "payouts_list", "payouts_list",
        "notifications_feed", "notifications_feed",
    };

    res = PQexec(db(),
        "BEGIN;"
        "SET LOCAL session_replication_role = replica;"
        "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce,"
        " currency, amount_total, success_url, cancel_url, status,"
        " psp_request, expires_at, created_at)"
        " SELECT 'plan_' || (g % 50), 'co_' || lpad((g % 50)::text, 2, '0')"
        "  || '_' || lpad(g::text, 5, '0'), 'mock', 'plan_' || (g % 50) || ':co_'"
        "  || lpad((g % 50)::text, 2, '0') || '_' || lpad(g::text, 5, '0'),"
        "  'USD', 100, 'https://shop.example/s', 'https://shop.example/c',"
        "  (ARRAY['EXECUTING', 'SUCCESS', 'FAILED'])[g % 3 + 1]::pay_status,"
        "  'r', now(), timestamptz '2026-01-01' + g * interval '1 second'"
        " FROM generate_series(1, 20000) g;"
        "INSERT INTO payment_orders (merchant_id, payment_order_id,"
        " checkout_id, line_no, seller_account, amount, currency, status,"
        " ledger_updated, wallet_updated, created_at)"
        " SELECT merchant_id, checkout_id || '_p', checkout_id, 1, 's1', 100,"
        "  'USD', status, status = 'SUCCESS', status = 'SUCCESS', created_at"
        " FROM checkouts"
        " WHERE merchant_id LIKE 'plan\\_%';"
        "INSERT INTO refunds (merchant_id, refund_id, checkout_id,"
        " payment_order_id, psp, nonce, amount, currency, status, created_at,"
        " seller_account)"
        " SELECT merchant_id, 'rf_' || lpad(to_hex(g), 24, '0'), checkout_id,"
        "  checkout_id || '_p', 'mock', merchant_id || ':rf_'"
        "  || lpad(to_hex(g), 24, '0'), 1, 'USD',"
        "  (ARRAY['PENDING', 'FAILED'])[g % 2 + 1], created_at, 's1'"
        " FROM (SELECT c.*, row_number() OVER () g FROM checkouts c"
        "       WHERE merchant_id LIKE 'plan\\_%') x;"
        "INSERT INTO payouts (merchant_id, payout_id, seller_account, psp,"
        " destination, nonce, amount, currency, status, created_at)"
        " SELECT 'plan_' || (g % 50), 'pyo_' || lpad(to_hex(g), 24, '0'),"
        "  's1', 'mock', 'acct_1', 'plan_' || (g % 50) || ':pyo_'"
        "  || lpad(to_hex(g), 24, '0'), 1, 'USD',"
        "  (ARRAY['PENDING', 'PAID', 'FAILED'])[g % 3 + 1],"
        "  timestamptz '2026-01-01' + g * interval '1 second'"
        " FROM generate_series(1, 20000) g;"
        "INSERT INTO notifications (merchant_id, notification_id,"
        " endpoint_id, event_type, checkout_id, object_id, sequence, payload,"
        " in_feed, created_at)"
        " SELECT 'plan_' || (g % 50), 'msg_' || lpad(to_hex(g), 24, '0'),"
        "  'ep_' || lpad('', 24, '0'),"
        "  (ARRAY['checkout.succeeded', 'refund.succeeded'])[g % 2 + 1],"
        "  'co', 'co', g, '{}', g % 3 > 0,"
        "  now() - interval '40 days' + g * interval '1 minute'"
        " FROM generate_series(1, 20000) g;"
        "ANALYZE checkouts, payment_orders, refunds, payouts, notifications");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s",
                 PQresultErrorMessage(res));
    PQclear(res);

    for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        /* the page function is inlined: its plan is the scan's */
        plan = explain(queries[i], "plan_7");
        cr_expect(strstr(plan, "Seq Scan") == NULL, "%s:\n%s", queries[i],
                  plan);
        /* in the page's order; or, when the planner knows that fewer rows
         * than the page match, all of them through the same index */
        cr_expect(strstr(plan, str_printf("Index Scan Backward using %s ",
                                          index[i])) != NULL
                  || strstr(plan, str_printf("Index Scan using %s ",
                                             index[i])) != NULL
                  || strstr(plan, str_printf("Bitmap Index Scan on %s ",
                                             index[i])) != NULL,
                  "%s:\n%s", queries[i], plan);
        cr_expect(strstr(plan, "Function Scan") == NULL,
                  "not inlined: %s:\n%s", queries[i], plan);
    }

    PQclear(PQexec(db(), "ROLLBACK"));
}


/* --- money moved through the mock PSP, as test_notify.c moves it ------------- */

static resp_t *
post_as(const merchant_t *m, const char *path, const char *body)
{
    req_t        rq;
    const char  *h[] = { str_printf("Authorization: Bearer %s", m->key),
                         str_printf("Idempotency-Key: %s", uid("lk")),
                         "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = gw_url(path);
    rq.headers = h;
    rq.body = body;
    rq.len = (size_t) -1;

    return http(&rq);
}


/* Polls GET path until its "status", or the status of its refunds' first
 * item (refunds 1), is want. */
static void
becomes(const merchant_t *m, const char *path, int refunds,
    const char *want)
{
    int          i;
    json_t      *j;
    resp_t      *r;
    const char  *v;

    for (i = 0; i < 150; i++) {
        r = api_get(m, path);
        cr_assert_eq(r->status, 200, "%s: %s", path, r->body);
        j = resp_json(r);
        if (refunds) {
            j = json_array_get(json_object_get(j, "refunds"), 0);
        }
        v = json_string_value(json_object_get(j, "status"));

        if (v != NULL && strcmp(v, want) == 0) {
            resp_free(r);
            return;
        }

        resp_free(r);
        msleep(100);
    }

    cr_assert_fail("%s never became %s", path, want);
}



/*
 * The lists' indexes lead with the merchant like the tables' keys, so a
 * full one could serve an equality on the key by reading every entry of
 * the merchant.  A foreign-key check planned while its table was nearly
 * empty took checkouts_list that way (make bench, auto_explain) and kept
 * it for its connection's life.  Partial on created_at IS NOT NULL, which
 * only the list pages state, they can never be chosen for a key.
 */
Test(lists, no_key_lookup_can_be_planned_through_a_list_index)
{
    cr_expect_null(db_scalar("SELECT string_agg(i.indexrelid::regclass::text,"
                             " ', ')"
                             "  FROM pg_index i"
                             " WHERE i.indexrelid::regclass::text IN"
                             "       ('checkouts_list', 'payment_orders_list',"
                             "        'refunds_list', 'payouts_list')"
                             "   AND pg_get_expr(i.indpred, i.indrelid)"
                             "       IS DISTINCT FROM '(created_at IS NOT NULL)'",
                             0, NULL),
                   "list indexes a key lookup could be planned through");
    cr_expect_str_eq(db_scalar("SELECT count(*) FROM pg_index i"
                               " WHERE i.indexrelid::regclass::text IN"
                               "       ('checkouts_list', 'payment_orders_list',"
                               "        'refunds_list', 'payouts_list')",
                               0, NULL), "4");
}

/* The delivery of that type to the endpoint, once answered 204. */
static json_t *
delivered(const endpoint_t *ep, const char *type)
{
    int          i;
    size_t       k;
    json_t      *ds, *d;
    const char  *t, *a;

    for (i = 0; i < 150; i++) {
        ds = receiver_deliveries(ep->name);

        json_array_foreach(ds, k, d) {
            t = json_string_value(json_object_get(d, "type"));
            a = json_string_value(json_object_get(d, "answer"));

            if (t && a && strcmp(t, type) == 0 && strcmp(a, "204") == 0) {
                return json_incref(d);
            }
        }

        json_decref(ds);
        msleep(100);
    }

    cr_assert_fail("%s: no %s delivered", ep->path, type);
    return NULL;
}


static void
feed_item_is(const json_t *it, const json_t *d)
{
    cr_expect_str_eq(json_string_value(json_object_get(it, "id")),
                     json_string_value(json_object_get(d, "webhook_id")),
                     "%s", dump(it));
    cr_expect_str_eq(json_string_value(json_object_get(it, "type")),
                     json_string_value(json_object_get(d, "type")));
    cr_expect(json_equal(json_object_get(it, "data"),
                         json_object_get(d, "data")),
              "the same body:\nfeed: %s\nreceived: %s", dump(it), dump(d));
    cr_expect(json_is_string(json_object_get(it, "timestamp")), "%s",
              dump(it));
}


Test(lists, the_events_feed_is_what_the_endpoint_received_once_per_event)
{
    char        *co, *po, *rf, *payout, *token, *first_of_second;
    json_t      *pg, *paid, *refunded, *payed, *data, *it;
    size_t       i;
    resp_t      *r;
    endpoint_t   ep, ep2;
    merchant_t   m, other;
    const char  *seller[] = { "add-seller", NULL, NULL, "--seller",
                              "seller_2", "--psp", NULL, "--destination",
                              "acct_1MockSeller", NULL };

    merchant_new(&m);
    merchant_new(&other);
    endpoint_add(&m, NULL, &ep);
    /* a second endpoint: each event is stored for both, listed once */
    endpoint_add(&m, NULL, &ep2);

    /* paid through the mock's hosted page, refunded in part, a pay-out */
    co = uid("co");
    po = str_printf("%s_p1", co);
    r = register_ok(&m, uid("key"), body_for(co));
    token = strdup(json_string_value(json_object_get(resp_json(r),
                                                     "psp_token")));
    resp_free(r);

    {
        req_t        rq;
        const char  *h[] = { "Content-Type: application/json", NULL };

        rq.method = "POST";
        rq.url = mock_url(str_printf("/_control/sessions/%s/pay", token));
        rq.headers = h;
        rq.body = "";
        rq.len = 0;
        r = http(&rq);
        cr_assert(r->status >= 200 && r->status < 300, "mock pay: %ld %s",
                  r->status, r->body);
    }

    becomes(&m, str_printf("/v1/payments/%s", po), 0, "SUCCESS");
    paid = delivered(&ep, "checkout.succeeded");

    r = post_as(&m, str_printf("/v1/payments/%s/refunds", po),
                "{\"amount\":\"4.00\",\"reason\":\"returned\"}");
    cr_assert_eq(r->status, 201, "refund: %ld %s", r->status, r->body);
    rf = strdup(json_string_value(json_object_get(resp_json(r),
                                                  "refund_id")));
    becomes(&m, str_printf("/v1/payments/%s", po), 1, "SUCCEEDED");
    refunded = delivered(&ep, "refund.succeeded");

    seller[1] = "--id";
    seller[2] = m.id;
    seller[6] = env("PAY_TEST_PSP");
    cr_assert_eq(merchant_toolv(seller, NULL), 0);
    r = post_as(&m, "/v1/payouts",
                str_printf("{\"seller_account\":\"seller_2\",\"amount\":"
                           "\"1.00\",\"currency\":\"USD\",\"psp\":\"%s\"}",
                           env("PAY_TEST_PSP")));
    cr_assert_eq(r->status, 201, "pay-out: %ld %s", r->status, r->body);
    payout = strdup(json_string_value(json_object_get(resp_json(r),
                                                      "payout_id")));
    becomes(&m, str_printf("/v1/payouts/%s", payout), 0, "PAID");
    payed = delivered(&ep, "payout.paid");
    (void) delivered(&ep2, "payout.paid");

    /* the feed: the three events, oldest first, as the first endpoint got
     * them (ids and bodies), once each though two endpoints got them; an
     * event is listed once every transaction older than its own has ended
     * (another test's, held open, holds it back) */
    for (i = 0; i < 150; i++) {
        pg = page_of(&m, "/v1/events");
        if (json_array_size(json_object_get(pg, "data")) >= 3) {
            break;
        }
        json_decref(pg);
        msleep(100);
    }

    data = json_object_get(pg, "data");
    cr_assert_eq(json_array_size(data), 3, "%s", dump(pg));
    cr_expect(json_is_false(json_object_get(pg, "has_more")));
    feed_item_is(json_array_get(data, 0), paid);
    feed_item_is(json_array_get(data, 1), refunded);
    feed_item_is(json_array_get(data, 2), payed);

    /* what /v1/notifications lists: the same events, one per endpoint */
    r = api_get(&m, "/v1/notifications?limit=100");
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_expect_eq(json_array_size(resp_json(r)), 6, "%s", r->body);

    json_array_foreach(resp_json(r), i, it) {
        const char  *id = json_string_value(json_object_get(it, "id"));
        const char  *ept = json_string_value(json_object_get(it,
                                                             "endpoint_id"));

        if (strcmp(ept, ep.id) == 0) {
            cr_expect(strstr(ids_of(pg, "id"), id) != NULL,
                      "%s listed, not in the feed: %s", id, dump(pg));

        } else {
            cr_expect(strstr(ids_of(pg, "id"), id) == NULL,
                      "the second endpoint's copy %s in the feed", id);
        }
    }

    /* a cursor: after the first event; the second endpoint's copy of an
     * event is the same place in the feed */
    pg = page_of(&m, str_printf("/v1/events?starting_after=%s&limit=1",
                                json_string_value(json_object_get(paid,
                                                  "webhook_id"))));
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 1);
    cr_expect(json_is_true(json_object_get(pg, "has_more")));
    feed_item_is(json_array_get(json_object_get(pg, "data"), 0), refunded);

    first_of_second = q1(str_printf("SELECT notification_id FROM"
                                    " notifications WHERE merchant_id = $1"
                                    " AND endpoint_id = '%s' AND event_type"
                                    " = 'checkout.succeeded'", ep2.id),
                         m.id);
    pg = page_of(&m, str_printf("/v1/events?starting_after=%s",
                                first_of_second));
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 2);
    feed_item_is(json_array_get(json_object_get(pg, "data"), 0), refunded);

    /* the type filter */
    pg = page_of(&m, "/v1/events?type=refund.succeeded");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 1);
    feed_item_is(json_array_get(json_object_get(pg, "data"), 0), refunded);
    pg = page_of(&m, "/v1/events?type=refund.failed");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
    refused(&m, "/v1/events?type=refund.bogus");
    refused(&m, "/v1/events?limit=0");
    refused(&m, "/v1/events?starting_after=msg_000000000000000000000000");

    /* the lists of what moved, the merchant's only */
    pg = page_of(&m, "/v1/refunds");
    cr_expect_str_eq(ids_of(pg, "refund_id"), rf);
    it = json_array_get(json_object_get(pg, "data"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(it, "amount")),
                     "4.00");
    cr_expect_str_eq(json_string_value(json_object_get(it,
                                                       "payment_order_id")),
                     po);
    pg = page_of(&m, "/v1/payouts?status=paid");
    cr_expect_str_eq(ids_of(pg, "payout_id"), payout);
    pg = page_of(&m, "/v1/payments");
    cr_expect_str_eq(ids_of(pg, "payment_order_id"),
                     str_printf("%s_p2,%s_p1", co, co),
                     "one creation time: the id orders them");
    pg = page_of(&m, str_printf("/v1/payments?ending_before=%s_p1", co));
    cr_expect_str_eq(ids_of(pg, "payment_order_id"),
                     str_printf("%s_p2", co));
    pg = page_of(&m, "/v1/checkouts?status=SUCCESS");
    cr_expect_str_eq(ids_of(pg, "checkout_id"), co);

    pg = page_of(&other, "/v1/events");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
    pg = page_of(&other, "/v1/refunds");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
    pg = page_of(&other, "/v1/payouts");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
    pg = page_of(&other, "/v1/payments");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
    pg = page_of(&other, "/v1/checkouts");
    cr_expect_eq(json_array_size(json_object_get(pg, "data")), 0);
    refused(&other, str_printf("/v1/events?starting_after=%s",
                               json_string_value(json_object_get(paid,
                                                 "webhook_id"))));
    refused(&other, str_printf("/v1/refunds?starting_after=%s", rf));
}


/* --- the feed and transactions still open -------------------------------- */

/* a connection of its own (PAY_TEST_PG, the superuser) for a transaction
 * the test holds open */
static PGconn *
held_conn(void)
{
    PGconn  *c;

    c = PQconnectdb(env("PAY_TEST_PG"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));

    return c;
}


static void
held_exec(PGconn *c, const char *sql, const char *m, const char *obj)
{
    PGresult    *res;
    const char  *params[] = { m, obj };

    res = PQexecParams(c, sql, obj ? 2 : (m ? 1 : 0), NULL, params, NULL,
                       NULL, 0);
    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK
              || PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(res));
    PQclear(res);
}


/* an event of the refund obj ("rf_a1": rf_ and 22 zeros before its two
 * hex digits, a refund id's shape), as a refund's notification trigger
 * enqueues it, with every field its schema asks: the endpoint delivers it
 * and the suite checks each delivery against doc/openapi.yaml */
static void
held_enqueue(PGconn *c, const char *m, const char *obj)
{
    held_exec(c, "SELECT notify_enqueue($1, 'refund.succeeded', 'co_x', $2,"
                 " jsonb_build_object('refund_id', $2::text,"
                 " 'checkout_id', 'co_x', 'payment_order_id', 'po_x',"
                 " 'status', 'SUCCEEDED', 'amount_minor', 100,"
                 " 'amount', '1.00', 'currency', 'EUR',"
                 " 'metadata', '{}'::jsonb))",
              m, str_printf("rf_0000000000000000000000%s", obj + 3));
}


/* "rf_a1" for a refund id of held_enqueue's */
static const char *
held_name(const char *id)
{
    return id != NULL && strlen(id) == 27 ? str_printf("rf_%s", id + 25)
                                          : id;
}


/* What a shop following its cursor has read: the page after *cursor (NULL:
 * from the oldest) appended to seen (refund ids, comma-separated), the
 * cursor moved to the page's last item. */
static void
feed_follow(const merchant_t *m, char **cursor, char **seen)
{
    size_t   i;
    json_t  *pg, *it;
    char    *t;

    pg = page_of(m, *cursor ? str_printf("/v1/events?starting_after=%s",
                                         *cursor)
                            : "/v1/events");

    json_array_foreach(json_object_get(pg, "data"), i, it) {
        t = str_printf("%s%s%s", *seen, **seen ? "," : "",
                       held_name(json_string_value(json_object_get(
                           json_object_get(it, "data"), "refund_id"))));
        free(*seen);
        *seen = t;
        *cursor = strdup(json_string_value(json_object_get(it, "id")));
    }

    json_decref(pg);
}


/* The shop follows its cursor, as it polls, until it has read both events
 * (another test's transaction held open may hold them back a while). */
static void
feed_until(const merchant_t *m, char **cursor, char **seen, const char *a,
    const char *b)
{
    int  i;

    for (i = 0; i < 100; i++) {
        feed_follow(m, cursor, seen);
        if (strstr(*seen, a) != NULL && strstr(*seen, b) != NULL) {
            return;
        }
        msleep(100);
    }

    cr_expect_fail("the shop read %s, following its cursor: an event of the "
                   "transaction held open skipped", *seen);
}


/*
 * A transaction that enqueued an event and is still open, while a later
 * one commits its own: a shop reading the feed meanwhile, and again after
 * the first commits, following its cursor, reads both events.  Once for a
 * transaction that wrote before the later one began and once for one that
 * began before it but wrote after it.
 */
Test(lists, the_events_feed_never_skips_an_event_of_a_transaction_still_open)
{
    char        *cursor, *seen;
    PGconn      *a, *b;
    merchant_t   m;
    endpoint_t   ep;

    merchant_new(&m);
    endpoint_add(&m, NULL, &ep);
    a = held_conn();
    b = held_conn();
    cursor = NULL;
    seen = strdup("");

    /* A enqueues and stays open; B enqueues and commits */
    held_exec(a, "BEGIN", NULL, NULL);
    held_enqueue(a, m.id, "rf_a1");
    held_exec(b, "BEGIN", NULL, NULL);
    held_enqueue(b, m.id, "rf_b1");
    held_exec(b, "COMMIT", NULL, NULL);

    feed_follow(&m, &cursor, &seen);
    held_exec(a, "COMMIT", NULL, NULL);
    feed_until(&m, &cursor, &seen, "rf_a1", "rf_b1");

    /* A begins (its time is now()) and stays open before writing; B
     * enqueues and commits; A enqueues and stays open */
    held_exec(a, "BEGIN", NULL, NULL);
    held_exec(a, "SELECT now()", NULL, NULL);
    msleep(20);
    held_exec(b, "BEGIN", NULL, NULL);
    held_enqueue(b, m.id, "rf_b2");
    held_exec(b, "COMMIT", NULL, NULL);
    held_enqueue(a, m.id, "rf_a2");

    feed_follow(&m, &cursor, &seen);
    held_exec(a, "COMMIT", NULL, NULL);
    feed_until(&m, &cursor, &seen, "rf_a2", "rf_b2");

    /* each once, and the feed read whole says the same */
    cr_expect_eq(strlen(seen), strlen("rf_a1,rf_b1,rf_a2,rf_b2"), "%s",
                 seen);
    cursor = NULL;
    free(seen);
    seen = strdup("");
    feed_follow(&m, &cursor, &seen);
    cr_expect_eq(strlen(seen), strlen("rf_a1,rf_b1,rf_a2,rf_b2"), "%s",
                 seen);

    /* an event of a transaction still open holds back every later one: B
     * commits after A enqueued, and is not listed while A is open */
    held_exec(a, "BEGIN", NULL, NULL);
    held_enqueue(a, m.id, "rf_a3");
    held_exec(b, "BEGIN", NULL, NULL);
    held_enqueue(b, m.id, "rf_b3");
    held_exec(b, "COMMIT", NULL, NULL);
    feed_follow(&m, &cursor, &seen);
    cr_expect(strstr(seen, "rf_b3") == NULL,
              "listed while an older transaction is open: %s", seen);
    held_exec(a, "ROLLBACK", NULL, NULL);
    feed_until(&m, &cursor, &seen, "rf_b3", "rf_b3");
    cr_expect(strstr(seen, "rf_a3") == NULL, "rolled back, listed: %s",
              seen);

    PQfinish(a);
    PQfinish(b);
}


/* --- the feed after a restore ---------------------------------------------- */

/* The shop reads the whole feed from the oldest, polling until it has read
 * last (another test's transaction held open may hold it back): the refund
 * names read, comma-separated; *ids the ids of the items, in the same order
 * (the caller's). */
static char *
feed_whole(const merchant_t *m, const char *last, char ***ids)
{
    int      i;
    char    *cursor, *seen;
    size_t   n, k;
    json_t  *pg, *it;

    for (i = 0; i < 100; i++) {
        cursor = NULL;
        seen = strdup("");
        feed_follow(m, &cursor, &seen);
        if (strstr(seen, last) != NULL) {
            break;
        }
        free(seen);
        msleep(100);
    }

    cr_assert(i < 100, "the feed never listed %s", last);

    pg = page_of(m, "/v1/events?limit=100");
    n = json_array_size(json_object_get(pg, "data"));
    *ids = calloc(n + 1, sizeof(char *));
    cr_assert_not_null(*ids);

    json_array_foreach(json_object_get(pg, "data"), k, it) {
        (*ids)[k] = strdup(json_string_value(json_object_get(it, "id")));
    }

    json_decref(pg);

    return seen;
}


/* bin/payments-migrate on the suite's database: what it printed */
static char *
migrated(void)
{
    int     rc;
    char   *out;

    {
        char *const  argv[] = {
            str_printf("%s/bin/payments-migrate", env("PAY_TEST_ROOT")),
            (char *) env("PAY_TEST_PG"), NULL
        };

        rc = run(argv, &out);
    }

    cr_assert_eq(rc, 0, "payments-migrate: %s", out);

    return out;
}


/*
 * A database restored from pg_dump into a new cluster keeps each event's
 * feed_xact, the id of the old cluster's transaction that stored it; the
 * new cluster's ids start again near 700.  Simulated here by moving the
 * merchant's events a billion ids past this cluster's: the feed refuses
 * to answer (503) rather than hide them, an event stored meanwhile waits
 * behind them, and once payments-migrate has run the feed lists every
 * event in the order it listed them before (a transaction that began
 * first and stored last still after the one it waited on; two events of
 * one transaction in their order), a cursor taken before the restore
 * goes on from where it was, and events stored after follow.
 */
Test(lists, a_restored_feed_lists_every_event_in_its_order_and_keeps_its_cursors)
{
    char         *before, *after, *cursor, *seen, *out, **ids, **ids2;
    resp_t       *r;
    PGconn       *a, *b;
    merchant_t    m;
    endpoint_t    ep;
    const char   *mid[] = { NULL };

    merchant_new(&m);
    endpoint_add(&m, NULL, &ep);
    a = held_conn();
    b = held_conn();

    /* c1; c3's transaction begins first and stores after c2's commits;
     * c4 and c5 in one transaction */
    held_exec(a, "BEGIN", NULL, NULL);
    held_enqueue(a, m.id, "rf_c1");
    held_exec(a, "COMMIT", NULL, NULL);
    held_exec(a, "BEGIN", NULL, NULL);
    held_exec(a, "SELECT now()", NULL, NULL);
    msleep(20);
    held_exec(b, "BEGIN", NULL, NULL);
    held_enqueue(b, m.id, "rf_c2");
    held_exec(b, "COMMIT", NULL, NULL);
    held_enqueue(a, m.id, "rf_c3");
    held_exec(a, "COMMIT", NULL, NULL);
    held_exec(a, "BEGIN", NULL, NULL);
    held_enqueue(a, m.id, "rf_c4");
    held_enqueue(a, m.id, "rf_c5");
    held_exec(a, "COMMIT", NULL, NULL);

    before = feed_whole(&m, "rf_c4", &ids);
    cr_assert(strstr(before, "rf_c5") != NULL, "%s", before);
    cr_assert_eq(strncmp(before, "rf_c1,rf_c2,rf_c3,", 18), 0,
                 "the order of the transactions' ids: %s", before);
    /* the shop's cursor: c2 */
    cursor = ids[1];

    /* the restore */
    mid[0] = m.id;
    db_exec("UPDATE notifications SET feed_xact"
            " = (feed_xact::text::numeric + 1e9)::text::xid8"
            " WHERE merchant_id = $1", 1, mid);

    /* an event the gateway stores before payments-migrate has run */
    held_enqueue(a, m.id, "rf_d1");

    r = api_get(&m, "/v1/events");
    cr_expect_eq(r->status, 503, "events stored by another cluster, not "
                 "renumbered yet: %ld %s", r->status, r->body);
    if (r->status == 503) {
        cr_expect(resp_header(r, "Retry-After") != NULL
                  && strcmp(resp_header(r, "Retry-After"), "60") == 0,
                  "Retry-After: %s", resp_header(r, "Retry-After"));
        expect_problem(r, 503, "store_unavailable");
        cr_expect(file_contains(run_file("logs/error.log"),
                                "[alert]")
                  && file_contains(run_file("logs/error.log"),
                                   "the events feed holds events stored by "
                                   "another PostgreSQL cluster"),
                  "no alert says why the feed answers 503");
    }
    resp_free(r);

    out = migrated();
    cr_expect(strstr(out, "the events feed: 6 notifications of 1 merchant "
                          "renumbered") != NULL, "%s", out);

    /* the same order, then the event stored meanwhile */
    after = feed_whole(&m, "rf_d1", &ids2);
    cr_expect_str_eq(after, str_printf("%s,rf_d1", before));
    cr_expect_str_eq(ids2[1], ids[1]);

    /* the cursor taken before the restore goes on from where it was; an
     * event stored now follows */
    held_enqueue(a, m.id, "rf_d2");
    seen = strdup("");
    feed_until(&m, &cursor, &seen, "rf_d1", "rf_d2");
    cr_expect_str_eq(seen, str_printf("%s,rf_d1,rf_d2", before + 12));

    /* nothing more to renumber */
    out = migrated();
    cr_expect(strstr(out, "renumbered") == NULL, "%s", out);

    PQfinish(a);
    PQfinish(b);
}
