/*
 * The e2e harness: the gateway's books against the PSP's
 * (harness_books.h).
 */

#include "harness.h"

#include <ctype.h>
#include <stdarg.h>
#include <time.h>

#include <payments/commission.h>


const char *const  books_check_names[BOOKS_NCHECKS] = {
    "captured", "refunded", "disputed", "order", "payouts", "moved", "once",
    "forward", "balanced", "wallets", "audit", "shard", "commission"
};


/* -- the mock PSP's books ------------------------------------------------- */

resp_t *
books_mock(const char *method, const char *path, const char *json)
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


resp_t *
books_retried(const req_t *rq, int tries, long pause_ms, long *count)
{
    int      i;
    resp_t  *r;

    r = NULL;
    for (i = 0; i < tries; i++) {
        if (count != NULL) {
            (*count)++;
        }
        r = http(rq);
        if (r->status != 0 && r->status < 500) {
            break;
        }
        msleep(pause_ms);
    }

    return r;
}


resp_t *
books_approve(const char *nonce_s, int tries, long pause_ms, long *count)
{
    return books_approve_at(env("PAY_TEST_GW"), nonce_s, tries, pause_ms,
                            count);
}


resp_t *
books_approve_at(const char *origin, const char *nonce_s, int tries,
    long pause_ms, long *count)
{
    req_t        rq;
    char        *key;
    const char  *h[3];

    key = file_read(env("PAY_TEST_ADMIN_KEY"), NULL);
    cr_assert_not_null(key);
    secret_used(key);

    h[0] = str_printf("Authorization: Bearer %s", key);
    h[1] = "Content-Length: 0";
    h[2] = NULL;

    rq.method = "POST";
    rq.url = str_printf("%s/v1/reviews/%s/approve", origin, nonce_s);
    rq.headers = h;
    rq.body = "";
    rq.len = 0;

    return books_retried(&rq, tries, pause_ms, count);
}


json_t *
books_fetch(const char *merchant_id)
{
    resp_t  *r;

    r = http_get(mock_url(str_printf("/_control/books?reference=%s:",
                                     merchant_id)));
    cr_assert_eq(r->status, 200, "the mock's books: %ld %s", r->status,
                 r->body);

    return json_incref(resp_json(r));
}


json_t *
books_payment(json_t *books, const char *nonce_s)
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


long
books_int(const json_t *p, const char *name)
{
    return p ? (long) json_integer_value(json_object_get(p, name)) : 0;
}


long
books_held(const json_t *p)
{
    return books_int(p, "captured") - books_int(p, "refunded")
           - books_int(p, "disputed_open") - books_int(p, "disputed_lost");
}


char *
books_payment_ref(const char *merchant_id, const char *nonce_s)
{
    json_t  *p;

    p = books_payment(books_fetch(merchant_id), nonce_s);

    return p ? strdup(json_string_value(json_object_get(p, "payment_ref")))
             : NULL;
}


char *
books_capture_id(const char *merchant_id, const char *nonce_s, int n)
{
    size_t   i;
    int      k;
    json_t  *p, *op;

    p = books_payment(books_fetch(merchant_id), nonce_s);
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


/* -- quiet ----------------------------------------------------------------- */

void
books_subject(books_subjects_t *subjects, const char *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < subjects->n; i++) {
        if (strcmp(subjects->s[i], s) == 0) {
            return;
        }
    }

    if (subjects->n < BOOKS_SUBJECTS) {
        subjects->s[subjects->n++] = strdup(s);
    }
}


PGresult *
books_query(const char *merchant_id, const char *sql)
{
    return books_query_on(db(), merchant_id, sql);
}


PGresult *
books_query_on(PGconn *c, const char *merchant_id, const char *sql)
{
    PGresult    *res;
    const char  *params[1];

    params[0] = merchant_id;
    res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
                 PQerrorMessage(c));

    return res;
}


/* where cmp's merchant's rows are */
static PGconn *
books_conn(const books_cmp_t *cmp)
{
    return cmp->conn != NULL ? cmp->conn : db();
}


/* sql with $1 cmp's merchant, on its connection */
static PGresult *
books_cmp_query(const books_cmp_t *cmp, const char *sql)
{
    return books_query_on(books_conn(cmp), cmp->merchant_id, sql);
}


static long
books_count(PGconn *c, const char *merchant_id, const char *sql)
{
    long       n;
    PGresult  *res;

    res = books_query_on(c, merchant_id, sql);
    n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);

    return n;
}


long
books_pending(books_subjects_t *subjects, const char *merchant_id)
{
    return books_pending_on(db(), subjects, merchant_id);
}


long
books_pending_on(PGconn *c, books_subjects_t *subjects,
    const char *merchant_id)
{
    int        i;
    long       n;
    PGresult  *res;

    res = books_query_on(c, merchant_id,
        "SELECT nonce, status = 'PENDING' FROM captures WHERE merchant_id = $1"
        " UNION ALL SELECT nonce, status = 'PENDING' FROM refunds"
        " WHERE merchant_id = $1"
        " UNION ALL SELECT nonce, status = 'PENDING' FROM payouts"
        " WHERE merchant_id = $1");

    for (n = 0, i = 0; i < PQntuples(res); i++) {
        books_subject(subjects, PQgetvalue(res, i, 0));
        n += PQgetvalue(res, i, 1)[0] == 't';
    }

    PQclear(res);

    return n;
}


long
books_undelivered(const books_subjects_t *subjects, int patient,
    books_event_f each, void *ctx)
{
    int      given_up;
    size_t   i, k;
    long     n;
    json_t  *ev;
    resp_t  *r;

    n = 0;

    for (i = 0; i < subjects->n; i++) {
        r = http_get(mock_url(str_printf("/_control/webhooks?session=%s",
                                         url_escape(subjects->s[i]))));
        if (r->status != 200) {
            n++;
            continue;
        }

        json_array_foreach(json_object_get(resp_json(r), "events"), k, ev) {
            if (json_is_true(json_object_get(ev, "delivered"))) {
                continue;
            }

            given_up = json_integer_value(json_object_get(ev, "attempts"))
                       >= (patient ? 10 : 3);
            n += !given_up;
            if (each != NULL) {
                each(ctx, subjects->s[i], ev, given_up);
            }
        }

        resp_free(r);
    }

    return n;
}


int
books_quiet(books_subjects_t *subjects, const char *const *merchant_ids,
    size_t n, int seconds, int patient)
{
    return books_quiet_on(subjects, NULL, merchant_ids, n, seconds, patient);
}


int
books_quiet_on(books_subjects_t *subjects, PGconn *const *conns,
    const char *const *merchant_ids, size_t n, int seconds, int patient)
{
    long    pending;
    size_t  i;
    time_t  end;

    end = time(NULL) + seconds;

    do {
        for (pending = 0, i = 0; i < n; i++) {
            pending += books_pending_on((conns != NULL && conns[i] != NULL)
                                        ? conns[i] : db(),
                                        subjects, merchant_ids[i]);
        }
        if (pending == 0
            && books_undelivered(subjects, patient, NULL, NULL) == 0)
        {
            return 1;
        }
        msleep(50);
    } while (time(NULL) < end);

    return 0;
}


/* -- the checks ------------------------------------------------------------ */

/* per checkout: captured, refunded, taken for disputes, held for open
 * ones, from the ledger */
static const char  books_sql_checkouts[] =
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

/* orders that hold less than nothing at the clearing (less what a
 * reversal of a refunded capture, or a lost chargeback of refunded money,
 * booked to psp_shortfall, when its event was alerted), or whose seller
 * was charged more than it was credited */
static const char  books_sql_orders[] =
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

/*
 * Per order with its checkout's commission terms (frozen at registration):
 * what stands captured of it (its payments at the clearing, net of
 * reversals), what it gave back for good (what its refunds took from the
 * clearing net of those undone, and what its lost chargebacks charged its
 * seller and the commission), and the commission the ledger credited net.  Orders of a checkout whose
 * shortfall an alert handed to a person (a capture reversed after a refund
 * of it, a chargeback beyond what the order held) are left out: there the
 * commission takes part of what the seller cannot give back (doc/MONEY.md).
 */
static const char  books_sql_commission[] =
    "SELECT t.payment_order_id, c.commission_bps,"
    "  coalesce(c.commission_fixed, 0),"
    "  coalesce(sum(e.amount) FILTER (WHERE t.kind = 'payment'"
    "    AND e.account LIKE 'psp\\_clearing:%'), 0),"
    "  coalesce(-sum(e.amount) FILTER (WHERE t.kind = 'refund'"
    "    AND e.account LIKE 'psp\\_clearing:%'), 0)"
    "  + coalesce(sum(e.amount) FILTER (WHERE t.kind = 'dispute'"
    "    AND (e.account LIKE 'seller\\_payable:%'"
    "         OR e.account = 'platform_commission')), 0),"
    "  coalesce(-sum(e.amount) FILTER (WHERE"
    "    e.account = 'platform_commission'), 0)"
    "  FROM ledger_transactions t"
    "  JOIN ledger_entries e USING (merchant_id, txn_id)"
    "  JOIN checkouts c ON c.merchant_id = t.merchant_id"
    "                  AND c.checkout_id = t.checkout_id"
    " WHERE t.merchant_id = $1 AND t.payment_order_id IS NOT NULL"
    "   AND NOT EXISTS (SELECT 1 FROM webhook_events w"
    "                    WHERE w.merchant_id = $1"
    "                      AND w.checkout_id = t.checkout_id"
    "                      AND w.outcome IN ('capture_reversed_refunded',"
    "                                        'dispute_excess'))"
    " GROUP BY t.payment_order_id, c.commission_bps, c.commission_fixed";

long  books_commission_seen[BOOKS_NCOMM];

/* checkouts with money the sweeper listed for a person as unlearnable */
static const char  books_sql_unsettled[] =
    "SELECT DISTINCT checkout_id FROM webhook_events"
    " WHERE merchant_id = $1 AND outcome = 'payment_unsettled'"
    "   AND checkout_id IS NOT NULL";

/* the pay-outs the ledger booked, by nonce: what left the PSP's clearing
 * for each net of what was booked back (a reversal), what its seller's
 * wallet was charged net, and what the pay-out says was reversed */
static const char  books_sql_payouts[] =
    "SELECT p.nonce, p.status, p.amount,"
    "  coalesce((SELECT -sum(e.amount) FROM ledger_transactions t"
    "             JOIN ledger_entries e USING (merchant_id, txn_id)"
    "            WHERE t.merchant_id = p.merchant_id AND t.kind = 'payout'"
    "              AND t.object_id = p.payout_id"
    "              AND e.account LIKE 'psp\\_clearing:%'), 0),"
    "  coalesce((SELECT sum(e.amount) FROM ledger_transactions t"
    "             JOIN ledger_entries e USING (merchant_id, txn_id)"
    "            WHERE t.merchant_id = p.merchant_id AND t.kind = 'payout'"
    "              AND t.object_id = p.payout_id"
    "              AND e.account = 'seller_payable:' || p.seller_account),"
    "           0),"
    "  p.amount_reversed, p.currency"
    "  FROM payouts p WHERE p.merchant_id = $1";

/* captures and refunds the gateway holds SUCCEEDED, with the PSP's id */
static const char  books_sql_succeeded[] =
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
static const char  books_sql_history[] =
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

static const char  books_sql_unbalanced[] =
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM ledger_entries"
    "         WHERE merchant_id = $1 GROUP BY txn_id, currency"
    "        HAVING sum(amount) <> 0) x)"
    "     + (SELECT count(*) FROM (SELECT 1 FROM ledger_transactions t"
    "          LEFT JOIN ledger_entries e USING (merchant_id, txn_id)"
    "         WHERE t.merchant_id = $1 GROUP BY t.txn_id"
    "        HAVING count(e.entry_no) < 2) y)";

static const char  books_sql_wallets[] =
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


/* the checks that count what is wrong */
static const struct {
    books_check_e   chk;
    const char     *sql;
    const char     *what;
} books_counts[] = {
    { BOOKS_FORWARD, books_sql_history,
      "order events or orders off a forward-only history" },
    { BOOKS_BALANCED, books_sql_unbalanced,
      "ledger transactions do not balance" },
    { BOOKS_WALLETS, books_sql_wallets, "wallets differ from the ledger" },
};


static int
books_on(const books_cmp_t *cmp, books_check_e chk)
{
    return (cmp->skip & (1u << chk)) == 0;
}


static void books_fail(const books_cmp_t *cmp, books_check_e chk,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
books_fail(const books_cmp_t *cmp, books_check_e chk, const char *fmt, ...)
{
    va_list  ap;
    char     line[1024];

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    cmp->fail(cmp->ctx, chk, line);
}


/* the run's index of a checkout id, or -1 */
static long
books_checkout_of(const books_cmp_t *cmp, const char *checkout_id)
{
    size_t  i;

    for (i = 0; i < cmp->nco; i++) {
        if (strcmp(cmp->checkout_ids[i], checkout_id) == 0) {
            return (long) i;
        }
    }

    return -1;
}


/* per checkout: the ledger's captured, refunded and disputed money against
 * the PSP's books; a checkout the ledger never saw: the PSP moved nothing
 * either */
static void
books_compare_checkouts(const books_cmp_t *cmp)
{
    int          i, j;
    long         c, v[4], b[4];
    char        *seen, *listed;
    json_t      *p;
    PGresult    *q;
    const char  *who;

    seen = calloc(cmp->nco + 1, 1);
    listed = calloc(cmp->nco + 1, 1);
    cr_assert(seen != NULL && listed != NULL);

    /* money the PSP moved that the gateway could not learn, listed for a
     * person (payment_unsettled): less booked than the PSP moved is what
     * that listing says, so it is not a failure; more booked still is */
    q = books_cmp_query(cmp, books_sql_unsettled);
    for (i = 0; i < PQntuples(q); i++) {
        c = books_checkout_of(cmp, PQgetvalue(q, i, 0));
        if (c >= 0) {
            listed[c] = 1;
        }
    }
    PQclear(q);

    q = books_cmp_query(cmp, books_sql_checkouts);

    for (i = 0; i < PQntuples(q); i++) {
        c = books_checkout_of(cmp, PQgetvalue(q, i, 0));
        if (c < 0) {
            if (cmp->strict && books_on(cmp, BOOKS_CAPTURED)) {
                books_fail(cmp, BOOKS_CAPTURED, "a checkout %s nobody made",
                           PQgetvalue(q, i, 0));
            }
            continue;
        }
        seen[c] = 1;
        who = cmp->labels[c];
        p = books_payment(cmp->books, cmp->nonces[c]);

        for (j = 0; j < 4; j++) {
            v[j] = atol(PQgetvalue(q, i, j + 1));
        }

        b[0] = books_int(p, "captured");
        b[1] = books_int(p, "refunded");
        b[2] = books_int(p, "disputed_open") + books_int(p, "disputed_lost");
        b[3] = books_int(p, "disputed_open");

        if (v[0] != b[0] && !(listed[c] && v[0] < b[0])
            && books_on(cmp, BOOKS_CAPTURED))
        {
            books_fail(cmp, BOOKS_CAPTURED, "%s: the ledger booked %ld "
                       "captured, the PSP captured %ld", who, v[0], b[0]);
        }
        if (v[1] != b[1] && !(listed[c] && v[1] < b[1])
            && books_on(cmp, BOOKS_REFUNDED))
        {
            books_fail(cmp, BOOKS_REFUNDED, "%s: the ledger booked %ld "
                       "refunded, the PSP refunded %ld", who, v[1], b[1]);
        }
        if ((v[2] != b[2] || v[3] != b[3])
            && !(listed[c] && v[2] <= b[2] && v[3] <= b[3])
            && books_on(cmp, BOOKS_DISPUTED))
        {
            books_fail(cmp, BOOKS_DISPUTED, "%s: the ledger took %ld for "
                       "disputes and holds %ld open, the PSP %ld and %ld",
                       who, v[2], v[3], b[2], b[3]);
        }
    }

    PQclear(q);

    for (c = 0; c < (long) cmp->nco; c++) {
        p = seen[c] ? NULL : books_payment(cmp->books, cmp->nonces[c]);
        if (p == NULL) {
            continue;
        }
        who = cmp->labels[c];
        if (books_int(p, "captured") != 0 && books_on(cmp, BOOKS_CAPTURED)) {
            books_fail(cmp, BOOKS_CAPTURED, "%s: the PSP captured %ld, the "
                       "ledger booked nothing", who,
                       books_int(p, "captured"));
        }
        if (books_int(p, "refunded") != 0 && books_on(cmp, BOOKS_REFUNDED)) {
            books_fail(cmp, BOOKS_REFUNDED, "%s: the PSP refunded %ld, the "
                       "ledger booked nothing", who,
                       books_int(p, "refunded"));
        }
        if (books_int(p, "disputed_open") + books_int(p, "disputed_lost")
            != 0 && books_on(cmp, BOOKS_DISPUTED))
        {
            books_fail(cmp, BOOKS_DISPUTED, "%s: the PSP disputed money the "
                       "ledger never booked", who);
        }
    }

    free(seen);
    free(listed);
}


/* per order: 0 <= the commission booked <= the rule's on what stands
 * captured; exactly the rule's while it gave nothing back for good (a
 * refund undone took its part back); nothing once refunds and lost
 * chargebacks took all it captured (in any pieces they give back the
 * whole commission) */
static void
books_compare_commission(const books_cmp_t *cmp)
{
    int          i;
    long         bps, fixed, a, r, k;
    int64_t      want;
    PGresult    *q;
    const char  *po;

    q = books_cmp_query(cmp, books_sql_commission);

    for (i = 0; i < PQntuples(q); i++) {
        po = PQgetvalue(q, i, 0);
        bps = atol(PQgetvalue(q, i, 1));
        fixed = atol(PQgetvalue(q, i, 2));
        a = atol(PQgetvalue(q, i, 3));
        r = atol(PQgetvalue(q, i, 4));
        k = atol(PQgetvalue(q, i, 5));
        /* the rule's on what stands captured, by the core's
         * (doc/MONEY.md, "Commission"), not the database's */
        if (a <= 0 || pay_commission(a, (int) bps, fixed, &want) != 0) {
            want = 0;
        }

        if (want > 0) {
            books_commission_seen[r == 0 ? BOOKS_COMM_WHOLE
                                  : r >= a ? BOOKS_COMM_REFUNDED
                                  : BOOKS_COMM_PART]++;
        }

        if (k < 0 || k > want) {
            books_fail(cmp, BOOKS_COMMISSION, "order %s: the ledger's "
                       "commission %ld, outside [0, %ld] (the rule's on "
                       "%ld captured at %ld bps + %ld; %ld given back)", po,
                       k, want, a, bps, fixed, r);

        } else if (r == 0 && k != want) {
            books_fail(cmp, BOOKS_COMMISSION, "order %s: nothing given back, "
                       "the ledger's commission %ld, the rule's on %ld "
                       "captured at %ld bps + %ld is %ld", po, k, a, bps,
                       fixed, want);

        } else if (a > 0 && r >= a && k != 0) {
            books_fail(cmp, BOOKS_COMMISSION, "order %s: given back whole "
                       "(%ld of %ld captured), the ledger still holds a "
                       "commission of %ld", po, r, a, k);
        }
    }

    PQclear(q);
}


/* a transfer the PSP made: paid, or paid and taken back since (a failed
 * one never left) */
static int
books_transfer_made(const json_t *op)
{
    const char  *st;

    st = json_string_value(json_object_get(op, "state"));

    return st != NULL && (strcmp(st, "paid") == 0
                          || strcmp(st, "reversed") == 0);
}


/* what the PSP took back of a transfer after paying it, in all */
static long
books_transfer_reversed(const json_t *op)
{
    return (long) json_integer_value(json_object_get(op, "reversed"));
}


/* "USD" of "usd" (Stripe writes currencies in lower case) */
static const char *
books_upper(const char *cur)
{
    size_t  i;
    char   *u;

    u = str_printf("%s", cur != NULL ? cur : "");
    for (i = 0; u[i] != '\0'; i++) {
        u[i] = (char) toupper((unsigned char) u[i]);
    }

    return u;
}


/*
 * pay-outs: by nonce, what the ledger paid out net of what it booked back
 * equals what the PSP transferred net of what it took back (a transfer
 * paid at both or at neither; one reversed whole nets nothing at both),
 * and so does what the seller's wallet was charged for it (each reversal
 * given back to the wallet once); the pay-out's amount_reversed is what
 * the PSP took back; the same net per currency in sum; and no transfer
 * the gateway does not know
 */
static void
books_compare_payouts(const books_cmp_t *cmp)
{
    int          i;
    long         n, back;
    size_t       k;
    json_t      *t, *op, *sums, *v;
    PGresult    *q;
    const char  *key, *cur;

    q = books_cmp_query(cmp, books_sql_payouts);
    sums = json_object();

    for (i = 0; i < PQntuples(q); i++) {
        key = PQgetvalue(q, i, 0);
        t = NULL;
        json_array_foreach(json_object_get(cmp->books, "transfers"), k, op) {
            if (strcmp(json_string_value(json_object_get(op, "nonce")),
                       key) == 0
                && books_transfer_made(op))
            {
                t = op;
            }
        }
        n = t ? (long) json_integer_value(json_object_get(t, "amount")) : 0;
        back = t ? books_transfer_reversed(t) : 0;
        if (atol(PQgetvalue(q, i, 3)) != n - back) {
            books_fail(cmp, BOOKS_PAYOUTS, "pay-out %s (%s): the ledger "
                       "paid %s net, the PSP %ld (transferred %ld, took "
                       "back %ld)", key, PQgetvalue(q, i, 1),
                       PQgetvalue(q, i, 3), n - back, n, back);
        }
        if (atol(PQgetvalue(q, i, 4)) != n - back) {
            books_fail(cmp, BOOKS_PAYOUTS, "pay-out %s (%s): its seller's "
                       "wallet was charged %s net for it, the PSP paid out "
                       "%ld (took back %ld: given back to the wallet other "
                       "than once)", key, PQgetvalue(q, i, 1),
                       PQgetvalue(q, i, 4), n - back, back);
        }
        if (atol(PQgetvalue(q, i, 5)) != back) {
            books_fail(cmp, BOOKS_PAYOUTS, "pay-out %s (%s): its "
                       "amount_reversed is %s, the PSP took back %ld", key,
                       PQgetvalue(q, i, 1), PQgetvalue(q, i, 5), back);
        }
        cur = str_printf("ledger %s", books_upper(PQgetvalue(q, i, 6)));
        json_object_set_new(sums, cur, json_integer(
            json_integer_value(json_object_get(sums, cur))
            + atol(PQgetvalue(q, i, 3))));
    }

    json_array_foreach(json_object_get(cmp->books, "transfers"), k, op) {
        if (!books_transfer_made(op)) {
            continue;
        }
        cur = str_printf("PSP %s", books_upper(json_string_value(
                                       json_object_get(op, "currency"))));
        json_object_set_new(sums, cur, json_integer(
            json_integer_value(json_object_get(sums, cur))
            + json_integer_value(json_object_get(op, "amount"))
            - books_transfer_reversed(op)));
        for (i = 0; i < PQntuples(q); i++) {
            if (strcmp(PQgetvalue(q, i, 0),
                       json_string_value(json_object_get(op, "nonce"))) == 0)
            {
                break;
            }
        }
        if (i == PQntuples(q)) {
            books_fail(cmp, BOOKS_PAYOUTS, "the PSP transferred %lld under "
                       "%s, which the gateway has no pay-out for",
                       json_integer_value(json_object_get(op, "amount")),
                       json_string_value(json_object_get(op, "nonce")));
        }
    }

    /* in sum, per currency (each once: by its ledger's key, or by the
     * PSP's where the ledger paid out nothing in it) */
    json_object_foreach(sums, key, v) {
        cur = strncmp(key, "ledger ", 7) == 0 ? key + 7 : key + 4;
        if (strncmp(key, "PSP ", 4) == 0
            && json_object_get(sums, str_printf("ledger %s", cur)) != NULL)
        {
            continue;
        }
        if (json_integer_value(json_object_get(sums, str_printf("ledger %s",
                                                                cur)))
            != json_integer_value(json_object_get(sums, str_printf("PSP %s",
                                                                   cur))))
        {
            books_fail(cmp, BOOKS_PAYOUTS, "in %s, the ledger paid out "
                       "%lld net in all, the PSP %lld", cur,
                       json_integer_value(json_object_get(sums,
                           str_printf("ledger %s", cur))),
                       json_integer_value(json_object_get(sums,
                           str_printf("PSP %s", cur))));
        }
    }

    json_decref(sums);
    PQclear(q);
}


/*
 * What the gateway holds SUCCEEDED, the PSP made and kept: by our nonce,
 * of that amount; or, for what the PSP did by itself (a capture at its
 * dashboard, which the gateway may book in parts over the orders), by the
 * PSP's id, the parts adding up to it.
 */
static void
books_compare_moved(const books_cmp_t *cmp)
{
    int          i;
    long         n;
    size_t       k, l;
    char        *s;
    json_t      *p, *op, *t, *parts, *sum, *want;
    PGresult    *q;
    const char  *key, *name;

    q = books_cmp_query(cmp, books_sql_succeeded);
    parts = json_object();

    for (i = 0; i < PQntuples(q); i++) {
        key = PQgetvalue(q, i, 1);
        n = -1;
        t = NULL;
        json_array_foreach(json_object_get(cmp->books, "payments"), k, p) {
            json_array_foreach(json_object_get(p, "ops"), l, op) {
                if (strcmp(json_string_value(json_object_get(op, "state")),
                           "succeeded") != 0)
                {
                    continue;
                }
                if (strcmp(json_string_value(json_object_get(op, "nonce")),
                           key) == 0)
                {
                    n = (long) json_integer_value(json_object_get(op,
                                                                  "amount"));
                } else if (PQgetvalue(q, i, 3)[0] != '\0'
                           && json_string_value(json_object_get(op,
                                                               "nonce"))[0]
                              == '\0'
                           && strcmp(json_string_value(json_object_get(op,
                                                                   "id")),
                                     PQgetvalue(q, i, 3)) == 0)
                {
                    t = op;
                }
            }
        }
        if (n < 0 && t != NULL) {
            /* a part of the PSP's own operation: summed below */
            s = str_printf("%s %s", PQgetvalue(q, i, 0),
                           PQgetvalue(q, i, 3));
            json_object_set_new(parts, s, json_integer(
                json_integer_value(json_object_get(parts, s))
                + atol(PQgetvalue(q, i, 2))));
            if (json_object_get(parts, str_printf("%s amount", s)) == NULL) {
                json_object_set(parts, str_printf("%s amount", s),
                                json_object_get(t, "amount"));
            }
            continue;
        }
        if (n != atol(PQgetvalue(q, i, 2))) {
            books_fail(cmp, BOOKS_MOVED, "the gateway's %s %s of %s "
                       "SUCCEEDED: the PSP %s", PQgetvalue(q, i, 0), key,
                       PQgetvalue(q, i, 2),
                       n < 0 ? "has none it kept"
                             : str_printf("has %ld", n));
        }
    }

    PQclear(q);

    json_object_foreach(parts, name, sum) {
        want = json_object_get(parts, str_printf("%s amount", name));
        if (want != NULL
            && json_integer_value(want) != json_integer_value(sum))
        {
            books_fail(cmp, BOOKS_MOVED, "the gateway booked %lld in parts "
                       "of the PSP's own %s of %lld",
                       json_integer_value(sum), name,
                       json_integer_value(want));
        }
    }

    json_decref(parts);
}


/* at most one PSP object per nonce, one session per checkout */
static void
books_compare_once(const books_cmp_t *cmp)
{
    long         created, requests;
    size_t       c, k, l;
    char        *s;
    json_t      *p, *op, *seen;
    const char  *key;

    seen = json_object();

    json_array_foreach(json_object_get(cmp->books, "payments"), k, p) {
        json_array_foreach(json_object_get(p, "ops"), l, op) {
            key = json_string_value(json_object_get(op, "nonce"));
            if (key == NULL || key[0] == '\0'
                || strcmp(json_string_value(json_object_get(op, "state")),
                          "failed") == 0)
            {
                continue;
            }
            s = str_printf("%s %s",
                           json_string_value(json_object_get(op, "kind")),
                           key);
            if (json_object_get(seen, s) != NULL) {
                books_fail(cmp, BOOKS_ONCE, "the PSP made two of %s", s);
            }
            json_object_set_new(seen, s, json_true());
        }
    }

    json_array_foreach(json_object_get(cmp->books, "transfers"), k, op) {
        key = json_string_value(json_object_get(op, "nonce"));
        if (!books_transfer_made(op)) {
            continue;
        }
        s = str_printf("transfer %s", key);
        if (json_object_get(seen, s) != NULL) {
            books_fail(cmp, BOOKS_ONCE, "the PSP made two of %s", s);
        }
        json_object_set_new(seen, s, json_true());
    }

    json_decref(seen);

    for (c = 0; c < cmp->nco; c++) {
        mock_registrations(cmp->nonces[c], &created, &requests);
        if (created > 1) {
            books_fail(cmp, BOOKS_ONCE, "%s: the PSP made %ld sessions "
                       "under %s", cmp->labels[c], created, cmp->nonces[c]);
        }
    }
}


/* on a sharded stack: the merchant lives on the connection its books were
 * read on, and nothing of it is on any other shard (no statement of its
 * crossed shards) */
static void
books_compare_shard(const books_cmp_t *cmp)
{
    long   n;
    char  *s;

    s = db_scalar_on(books_conn(cmp), "SELECT count(*) FROM merchants"
                     " WHERE merchant_id = $1", 1,
                     (const char *[]) { cmp->merchant_id });
    if (s == NULL || strcmp(s, "1") != 0) {
        books_fail(cmp, BOOKS_SHARD, "the books were read where the merchant"
                   " does not live (its shard: %s)", cmp->shard);
    }
    free(s);

    n = shards_elsewhere(cmp->shard, cmp->merchant_id, &s);
    if (n > 0) {
        books_fail(cmp, BOOKS_SHARD, "%ld rows of the merchant on shards "
                   "other than its own, %s (%s)", n, cmp->shard, s);
    }
    free(s);
}


void
books_compare(const books_cmp_t *cmp)
{
    int          i;
    long         n;
    char        *s;
    PGresult    *q;

    books_compare_checkouts(cmp);

    if (books_on(cmp, BOOKS_ORDER)) {
        q = books_cmp_query(cmp, books_sql_orders);
        for (i = 0; i < PQntuples(q); i++) {
            books_fail(cmp, BOOKS_ORDER, "order %s: %s at the clearing "
                       "(below 0: charged back or refunded beyond its "
                       "capture; %s of it booked to psp_shortfall, counted "
                       "only when alerted), %s to its seller (above 0: "
                       "charged more than it was credited)",
                       PQgetvalue(q, i, 0), PQgetvalue(q, i, 1),
                       PQgetvalue(q, i, 3), PQgetvalue(q, i, 2));
        }
        PQclear(q);
    }

    if (books_on(cmp, BOOKS_PAYOUTS)) {
        books_compare_payouts(cmp);
    }
    if (books_on(cmp, BOOKS_COMMISSION)) {
        books_compare_commission(cmp);
    }
    if (books_on(cmp, BOOKS_MOVED)) {
        books_compare_moved(cmp);
    }
    if (books_on(cmp, BOOKS_ONCE)) {
        books_compare_once(cmp);
    }

    for (i = 0; i < (int) (sizeof(books_counts) / sizeof(books_counts[0]));
         i++)
    {
        if (!books_on(cmp, books_counts[i].chk)) {
            continue;
        }
        n = books_count(books_conn(cmp), cmp->merchant_id,
                        books_counts[i].sql);
        if (n > 0) {
            books_fail(cmp, books_counts[i].chk, "%ld %s", n,
                       books_counts[i].what);
        }
    }
    if (books_on(cmp, BOOKS_AUDIT)) {
        s = db_scalar_on(books_conn(cmp), "SELECT pay_audit_verify($1)",
                         1, (const char *[]) { cmp->merchant_id });
        if (s == NULL || strcmp(s, "t") != 0) {
            books_fail(cmp, BOOKS_AUDIT, "the audit chain does not verify");
        }
    }
    if (books_on(cmp, BOOKS_SHARD) && shards_n() > 1 && cmp->shard != NULL
        && cmp->shard[0] != '\0')
    {
        books_compare_shard(cmp);
    }
}
