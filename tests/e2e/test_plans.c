/*
 * Plans: every look-up of a row by its key (a primary key or a unique
 * constraint) is planned as a scan of a unique index on that key, even
 * when the plan is made while the table is empty, as a connection's first
 * statements plan it and keep the plan for the connection's life.
 *
 * A plan made on a nearly empty table costs every index alike; an index
 * that merely starts with the same columns (a list's (merchant_id,
 * created_at, checkout_id)) could win, and then every look-up reads every
 * entry of the merchant, growing with the table.  The foreign-key checks a
 * registration's inserts make are such look-ups (SELECT 1 FROM ONLY t x
 * WHERE <key> FOR KEY SHARE OF x), planned once per connection.
 *
 * A look-up written as a join can go the same way: the last tests run the
 * ledger's check of each booking, and a registration's, a webhook's and a
 * refund's SQL, and count the tables they scan whole.
 *
 * The checks run in a database of their own, migrated by
 * bin/payments-migrate and left empty (but for the event inbox's partitions,
 * made as the sweeper makes them), with generic plans forced
 * (plan_cache_mode): the plan a connection keeps.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "plans.h"
#include "sqltest.h"


/*
 * Every key of every table: its table, index, the look-up's parameter
 * types and its WHERE clause ($1..$n on the key's columns), and the
 * unique indexes whose columns are all among the key's (any of them
 * serves the look-up).
 */
static const char  keys_sql[] =
    "WITH k AS ("
    "  SELECT i.indexrelid, i.indrelid, t.relname AS tbl,"
    "         x.relname AS idx, i.indkey::int2[] AS cols"
    "    FROM pg_index i"
    "    JOIN pg_class t ON t.oid = i.indrelid"
    "    JOIN pg_class x ON x.oid = i.indexrelid"
    "    JOIN pg_namespace n ON n.oid = t.relnamespace"
    "   WHERE n.nspname = 'public' AND i.indisunique"
    "     AND i.indpred IS NULL AND i.indexprs IS NULL"
    "     AND t.relkind = 'r')"
    " SELECT k.tbl, k.idx,"
    "        (SELECT string_agg(format_type(a.atttypid, a.atttypmod), ','"
    "                           ORDER BY o.n)"
    "           FROM unnest(k.cols) WITH ORDINALITY o(c, n)"
    "           JOIN pg_attribute a ON a.attrelid = k.indrelid"
    "                              AND a.attnum = o.c),"
    "        (SELECT string_agg(format('%I = $%s', a.attname, o.n), ' AND '"
    "                           ORDER BY o.n)"
    "           FROM unnest(k.cols) WITH ORDINALITY o(c, n)"
    "           JOIN pg_attribute a ON a.attrelid = k.indrelid"
    "                              AND a.attnum = o.c),"
    "        (SELECT string_agg(u.idx, ' ')"
    "           FROM k u"
    "          WHERE u.indrelid = k.indrelid AND u.cols::int2[] <@ k.cols),"
    "        array_length(k.cols, 1)"
    "   FROM k ORDER BY k.tbl, k.idx";


/* the index the plan scans ("Index Scan using X on", "Index Only Scan
 * using X on"), or "" when it scans none */
static const char *
plan_index(const char *plan, char *buf, size_t size)
{
    const char  *p, *e;

    p = strstr(plan, " using ");
    if (p == NULL || (strstr(plan, "Index Scan using ") == NULL
                      && strstr(plan, "Index Only Scan using ") == NULL))
    {
        return "";
    }

    p += sizeof(" using ") - 1;
    e = strchr(p, ' ');
    if (e == NULL || (size_t) (e - p) >= size) {
        return "";
    }

    memcpy(buf, p, e - p);
    buf[e - p] = '\0';
    return buf;
}


/* the look-ups of every key, planned generically on d: the number whose
 * plan scans no unique index on the key, each named in bad */
static int
plans_check(PGconn *d, char *bad, size_t size, int *checked)
{
    int          i, j, n, nbad = 0, shapes;
    char         sql[4096], name[130], idx[128], nulls[512], *plan;
    size_t       used = 0;
    PGresult    *keys, *res;
    const char  *tbl, *types, *where, *good;

    keys = sqlt_ok(d, keys_sql, 0, NULL);
    n = PQntuples(keys);
    cr_assert_gt(n, 40, "the schema's unique keys: %d", n);
    bad[0] = '\0';
    *checked = 0;

    for (i = 0; i < n; i++) {
        tbl = PQgetvalue(keys, i, 0);
        types = PQgetvalue(keys, i, 2);
        where = PQgetvalue(keys, i, 3);
        good = PQgetvalue(keys, i, 4);

        /* payments-migrate's own records of the migrations and function
         * files applied: the only tables it fills past autovacuum's
         * threshold (50 rows and a tenth), so their plans follow its
         * ANALYZE whenever that comes (a seq scan of their few pages once
         * it has); read by payments-migrate alone, they never grow with
         * the traffic (ledger_accounts' few rows stay below it) */
        if (strcmp(tbl, "schema_migrations") == 0
            || strcmp(tbl, "schema_functions") == 0)
        {
            continue;
        }

        nulls[0] = '\0';
        for (j = 0; j < atoi(PQgetvalue(keys, i, 5)); j++) {
            strcat(nulls, j ? ",NULL" : "NULL");
        }

        /* the foreign-key check's shape, and a plain read by the key */
        for (shapes = 0; shapes < 2; shapes++) {
            snprintf(name, sizeof(name), "k%d_%d", i, shapes);
            snprintf(sql, sizeof(sql),
                     shapes == 0
                     ? "PREPARE %s (%s) AS SELECT 1 FROM ONLY public.%s x "
                       "WHERE %s FOR KEY SHARE OF x"
                     : "PREPARE %s (%s) AS SELECT * FROM public.%s "
                       "WHERE %s",
                     name, types, tbl, where);
            OK0(d, sql);

            snprintf(sql, sizeof(sql), "EXPLAIN EXECUTE %s (%s)", name,
                     nulls);
            res = sqlt_ok(d, sql, 0, NULL);

            plan = NULL;
            for (j = 0; j < PQntuples(res); j++) {
                if (strstr(PQgetvalue(res, j, 0), " using ") != NULL) {
                    plan = PQgetvalue(res, j, 0);
                    break;
                }
            }

            idx[0] = '\0';
            plan_index(plan ? plan : "", idx, sizeof(idx));
            (*checked)++;

            /* the index scanned must be one of the key's unique ones */
            snprintf(sql, sizeof(sql), " %s ", good);
            snprintf(name, sizeof(name), " %s ", idx);

            if (idx[0] == '\0' || strstr(sql, name) == NULL) {
                nbad++;
                used += snprintf(bad + used, used < size ? size - used : 0,
                                 "  %s (%s): %s\n", tbl, where,
                                 plan ? plan : PQgetvalue(res, 0, 0));
            }

            PQclear(res);
        }
    }

    PQclear(keys);
    return nbad;
}


Test(plans, every_key_look_up_is_planned_on_a_unique_index_of_its_key,
     .timeout = 120,
     .description = "on an empty, freshly migrated schema with generic plans "
                    "(what a connection keeps), every primary key's and "
                    "unique constraint's look-up, as a foreign-key check "
                    "and as a read, scans a unique index on that key")
{
    char     bad[16384];
    int      nbad, checked;
    PGconn  *d = plans_connect();

    nbad = plans_check(d, bad, sizeof(bad), &checked);
    cr_expect_eq(nbad, 0, "%d of %d key look-ups are not planned on their "
                 "key's unique index:\n%s", nbad, checked, bad);

    plans_drop(d);
}


Test(plans, a_key_look_up_planned_through_another_index_is_found,
     .timeout = 120,
     .description = "the check can fail: with checkouts' primary key made "
                    "unusable to the planner and an index that merely starts "
                    "with the merchant (the lists' shape before they were "
                    "partial), in a transaction rolled back, the look-ups of "
                    "checkouts are reported")
{
    char     bad[16384];
    int      nbad, checked;
    PGconn  *d = plans_connect();

    OK0(d, "BEGIN");
    OK0(d, "CREATE INDEX planted_list ON checkouts (merchant_id, created_at, "
           "checkout_id)");
    OK0(d, "UPDATE pg_index SET indisvalid = false "
           "WHERE indexrelid = 'checkouts_pkey'::regclass");

    nbad = plans_check(d, bad, sizeof(bad), &checked);
    cr_expect_geq(nbad, 2, "%s", bad);
    cr_expect(strstr(bad, "  checkouts (") != NULL, "%s", bad);
    cr_expect(strstr(bad, "planted_list") != NULL, "%s", bad);

    OK0(d, "ROLLBACK");
    plans_drop(d);
}


/*
 * The look-ups a PSP's event makes by the PSP's own id of an object (its
 * way in: the webhook names its capture, refund, dispute, pay-out or
 * payment by that id): each must scan an index that leads with its columns,
 * unique or not (a capture the PSP made at its dashboard is one row per
 * order under its one id).  Not a key of the table, so the keys' check
 * above does not see them.
 */
static const struct {
    const char  *tbl;
    const char  *col;
} psp_ids[] = {
    { "captures", "psp_ref" },
    { "refunds", "psp_refund_id" },
    { "disputes", "psp_dispute_ref" },
    { "payouts", "psp_payout_id" },
    { "psp_payments", "payment_ref" },
    { "psp_tokens", "psp_token" },
};


/* whether index $1's first two columns are psp and $2 */
static const char  leads_sql[] =
    "SELECT (SELECT array_agg(a.attname::text ORDER BY o.n)"
    "          FROM pg_index i"
    "         CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY o(c, n)"
    "          JOIN pg_attribute a ON a.attrelid = i.indrelid"
    "                             AND a.attnum = o.c"
    "         WHERE i.indexrelid = to_regclass('public.' || $1) AND o.n <= 2)"
    "       @> ARRAY['psp', $2]";


/* the number of psp_ids whose look-up scans no index leading with (psp,
 * col), each named in bad */
static int
psp_ids_check(PGconn *d, char *bad, size_t size)
{
    int          nbad = 0;
    size_t       i, used = 0;
    char         sql[1024], idx[128], *plan;
    const char  *ok;
    PGresult    *res;

    bad[0] = '\0';

    for (i = 0; i < sizeof(psp_ids) / sizeof(psp_ids[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "PREPARE psp_id_%zu (text, text) AS SELECT * FROM public.%s "
                 "WHERE psp = $1 AND %s = $2", i, psp_ids[i].tbl,
                 psp_ids[i].col);
        OK0(d, sql);
        snprintf(sql, sizeof(sql), "EXPLAIN EXECUTE psp_id_%zu (NULL, NULL)",
                 i);
        res = sqlt_ok(d, sql, 0, NULL);

        plan = PQgetvalue(res, 0, 0);
        idx[0] = '\0';
        if (strstr(plan, "Bitmap Heap Scan") != NULL && PQntuples(res) > 1) {
            plan = PQgetvalue(res, 1, 0);
        }
        if (strstr(plan, "Bitmap Index Scan on ") != NULL) {
            snprintf(idx, sizeof(idx), "%s",
                     strstr(plan, "Bitmap Index Scan on ")
                     + sizeof("Bitmap Index Scan on ") - 1);
            idx[strcspn(idx, " ")] = '\0';
        } else {
            plan_index(plan, idx, sizeof(idx));
        }

        /* the index scanned leads with psp and the id, in either order */
        ok = idx[0] ? VAL(d, leads_sql, idx, psp_ids[i].col) : NULL;

        if (ok == NULL || strcmp(ok, "t") != 0) {
            nbad++;
            used += snprintf(bad + used, used < size ? size - used : 0,
                             "  %s (psp, %s): %s\n", psp_ids[i].tbl,
                             psp_ids[i].col, PQgetvalue(res, 0, 0));
        }

        PQclear(res);
    }

    return nbad;
}


Test(plans, every_look_up_by_a_psps_own_id_scans_an_index_of_it,
     .timeout = 120,
     .description = "on an empty, freshly migrated schema with generic plans, "
                    "each look-up a PSP's event makes by the PSP's id of its "
                    "object (a capture's psp_ref, a refund's, a dispute's, a "
                    "pay-out's, a payment's, a session token) scans an index "
                    "leading with (psp, that id); with the captures' index "
                    "dropped (rolled back), the captures' look-up is "
                    "reported")
{
    char     bad[4096];
    int      nbad;
    PGconn  *d = plans_connect();

    nbad = psp_ids_check(d, bad, sizeof(bad));
    cr_expect_eq(nbad, 0, "%d look-ups by a PSP's id scan no index of it:\n%s",
                 nbad, bad);

    OK0(d, "DEALLOCATE ALL");
    OK0(d, "BEGIN");
    OK0(d, "DROP INDEX captures_psp_ref");
    nbad = psp_ids_check(d, bad, sizeof(bad));
    cr_expect_eq(nbad, 1, "%s", bad);
    cr_expect(strstr(bad, "  captures (psp, psp_ref)") != NULL, "%s", bad);
    OK0(d, "ROLLBACK");

    plans_drop(d);
}


/*
 * The audit chain's head is its last audit_log row, read at every move of
 * money by the log's key (merchant, chain, seq) backwards.  A merchant's
 * log and audit_heads start small, and a small table analysed is planned
 * as a scan of all its pages (and a sort): every row of every merchant
 * read at each append.  audit_log_link finds the last row by its key
 * whatever the size, and its chain's anchor by the anchor's key.
 */
Test(plans, an_audit_append_finds_its_chains_last_row_by_its_key_in_a_small_table,
     .timeout = 120,
     .description = "in a fresh database with one merchant's chains opened "
                    "and audit_log and audit_heads analysed (tables the "
                    "planner would scan whole), sixteen appends to one chain "
                    "in one transaction (past the custom plans; two of them "
                    "move the anchor) read both tables by their index only: "
                    "no sequential scan of either")
{
    PGconn  *d = plans_connect();

    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_small', 'test', 'test')");
    OK0(d, "SELECT audit_append('m_small', 'co_0', 'test:opened', '{}')");
    OK0(d, "ANALYZE audit_heads, audit_log");

    /* (the counts read are this backend's not yet reported: no other
     * statement of the tables comes between the ANALYZE and them) */
    OK0(d, "BEGIN");
    for (int i = 1; i <= 16; i++) {
        OK(d, "SELECT audit_append('m_small', 'co_0', 'test:moved', jsonb_build_object('n', $1::int))",
           str_printf("%d", i));
    }
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(relname || ' ' || seq_scan || ' '"
                             "  || (idx_scan >= 2), ', ' ORDER BY relname)"
                             "  FROM pg_stat_xact_user_tables"
                             " WHERE relname IN ('audit_heads', 'audit_log')"),
                     "audit_heads 0 true, audit_log 0 true");
    OK0(d, "COMMIT");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) || ' ' || max(seq) FILTER (WHERE chain > 0)"
                             "  FROM audit_heads"), "65 16");
    cr_expect_str_eq(VAL0(d, "SELECT pay_audit_verify('m_small')"), "t");

    plans_drop(d);
}


/*
 * A statement that writes ledger entries is checked when it ends
 * (ledger_entries_balanced): each transaction it wrote exists and balances.
 * The check is one plan a connection keeps from its first booking, and a
 * gateway's first booking finds the ledger empty: planned as a hash join
 * over a sequential scan of ledger_transactions, it read the whole ledger
 * at every booking, more as the ledger grew, until an ANALYZE made the
 * connection plan it again (bench/RESULTS.md: 1.3 ms a webhook and 67
 * blocks after 3,000 of them).  The check finds the transactions and their
 * entries by their keys, whatever the ledger held when it was planned.
 */
static void
plans_book(PGconn *d, const char *merchant, int n)
{
    const char  *scans;

    OK0(d, "BEGIN");
    for (int i = 1; i <= n; i++) {
        OK(d, "SELECT ledger_book($1, NULL, NULL, 'fee', 'fee_' || $2, 'test',"
              " 'EUR', ARRAY['psp_fees:test', 'psp_clearing:test'],"
              " ARRAY[100, -100]::bigint[])",
           merchant, str_printf("%d", i));
    }
    /* (this backend's counts not yet reported: the bookings' own) */
    scans = VAL0(d, "SELECT string_agg(format('%s: %s sequential, %s rows by index',"
                    "                         relname, seq_scan, idx_tup_fetch), '; '"
                    "                  ORDER BY relname)"
                    "  FROM pg_stat_xact_user_tables"
                    " WHERE relname IN ('ledger_entries', 'ledger_transactions')");
    /* each booking's transaction found by its key, and its two entries */
    cr_expect_str_eq(scans, str_printf("ledger_entries: 0 sequential, %d rows by index; "
                                       "ledger_transactions: 0 sequential, %d rows by index",
                                       2 * n, n),
                     "the ledger read by %d bookings' checks: %s", n, scans);
    OK0(d, "COMMIT");
}

Test(plans, a_bookings_check_finds_its_transactions_by_their_keys,
     .timeout = 120,
     .description = "seven bookings in one transaction, first in a fresh "
                    "database whose ledger was never analysed (as a new "
                    "gateway's first bookings find it), then in a new "
                    "connection after the ledger was analysed with a few "
                    "rows (a table the planner would scan whole): the "
                    "check at each statement's end scans neither "
                    "ledger_transactions nor ledger_entries sequentially")
{
    PGconn  *d = plans_connect();

    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_ledger', 'test', 'test')");
    plans_book(d, "m_ledger", 7);
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM ledger_entries"), "14");

    OK0(d, "ANALYZE ledger_transactions");
    OK0(d, "ANALYZE ledger_entries");
    PQfinish(d);
    d = plans_reconnect();
    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_ledger_2', 'test', 'test')");
    plans_book(d, "m_ledger_2", 7);
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM ledger_entries"), "28");

    plans_drop(d);
}


/* the sequential scans this backend made and has not reported yet, by
 * table (a JSON object): a backend reports its counts at most once a
 * second, so those of its earlier transactions can still be among them */
static const char *
plans_seq_scans(PGconn *d)
{
    return VAL0(d, "SELECT coalesce(json_object_agg(relname, seq_scan), '{}')"
                   "  FROM pg_stat_xact_user_tables WHERE seq_scan > 0");
}

/* the tables scanned whole since plans_seq_scans gave before, "" for none */
static const char *
plans_scanned_since(PGconn *d, const char *before)
{
    return VAL(d, "SELECT coalesce(string_agg(relname || ' '"
                  "                           || (seq_scan - coalesce(($1::json->>relname)::bigint, 0)),"
                  "                           ', ' ORDER BY relname), '')"
                  "  FROM pg_stat_xact_user_tables"
                  " WHERE seq_scan > coalesce(($1::json->>relname)::bigint, 0)", before);
}

/* SQL run in a transaction of its own: it scans no table whole */
static void
plans_scan_none(PGconn *d, const char *what, const char *sql)
{
    const char  *before, *scanned;

    OK0(d, "BEGIN");
    before = plans_seq_scans(d);
    OK0(d, sql);
    scanned = plans_scanned_since(d, before);
    cr_expect_str_eq(scanned, "", "%s scanned whole: %s", what, scanned);
    OK0(d, "COMMIT");
}

/*
 * What a registration, its webhook and a refund send, each planned by a
 * connection on an empty database (a new gateway's first requests: the
 * plans it keeps): no statement of theirs, nested ones and triggers
 * included, reads a table whole.  The key look-ups are checked one by one
 * above; this finds a look-up written as a join (ledger_entries_balanced's
 * was a hash join over every ledger transaction).  Planned after an
 * ANALYZE of a few rows, they do read small tables whole, until the next
 * ANALYZE (bench/RESULTS.md, "Tried and not adopted").
 */
Test(plans, a_registration_its_webhook_and_a_refund_planned_on_an_empty_database_scan_no_table,
     .timeout = 120,
     .description = "in a fresh database, seven registrations (pay_claim, "
                    "pay_finish) in one transaction, seven paid webhooks "
                    "(pay_event_keep) in a second, seven refunds (claim, "
                    "finish, their REFUND_SUCCEEDED event) in a third: none "
                    "scans a table sequentially, and each booked its money")
{
    PGconn  *d = plans_connect();

    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_path', 'test', 'test')");

    plans_scan_none(d, "seven registrations",
           "DO $$ DECLARE l bigint;"
           "   exp bigint := extract(epoch FROM now())::bigint + 3600;"
           " BEGIN FOR i IN 1..7 LOOP"
           "   SELECT c.lease INTO l FROM pay_claim('m_path', 'k' || i,"
           "       repeat('a', 64), 30, 86400, 'co_' || i, 'stripe', 'USD', 1500,"
           "       'https://shop.example/t', 'https://shop.example/c', NULL, exp,"
           "       '{}', jsonb_build_array("
           "         jsonb_build_object('payment_order_id', 'po_' || i || 'a',"
           "                            'seller_account', 'seller_1', 'amount_minor', 1000),"
           "         jsonb_build_object('payment_order_id', 'po_' || i || 'b',"
           "                            'seller_account', 'seller_2', 'amount_minor', 500)),"
           "       '{}') c;"
           "   PERFORM pay_finish('m_path', 'k' || i, l, 'co_' || i, 'EXECUTING',"
           "       'cs_' || i, 'https://psp.example/pay', exp, NULL, 201, '{}');"
           " END LOOP; END $$");

    plans_scan_none(d, "seven webhooks",
           "DO $$ BEGIN FOR i IN 1..7 LOOP"
           "   PERFORM pay_event_keep('stripe', 'evt_' || i, 'CAPTURED',"
           "       'checkout.session.completed', 'cs_' || i, 'm_path:co_' || i, 1500,"
           "       'USD', 'pi_' || i, '', ARRAY['cs_' || i], convert_to('{}', 'UTF8'),"
           "       '{}', 'k1');"
           " END LOOP; END $$");

    cr_expect_str_eq(VAL0(d, "SELECT count(*) FILTER (WHERE status = 'SUCCESS') || ' '"
                             "       || (SELECT count(*) FROM ledger_transactions)"
                             "  FROM checkouts"), "7 14");

    plans_scan_none(d, "seven refunds",
           "DO $$ DECLARE r record; rid text; BEGIN FOR i IN 1..7 LOOP"
           "   rid := 'rf_' || lpad(to_hex(i), 24, '0');"
           "   SELECT * INTO r FROM pay_refund_claim('m_path', 'rk' || i,"
           "       repeat('b', 64), 30, 86400, rid, 'po_' || i || 'a', 400, 'USD',"
           "       NULL, '{}');"
           "   PERFORM pay_refund_finish('m_path', 'rk' || i, r.lease, rid, true,"
           "       're_psp_' || i, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('stripe', 'evt_re_' || i, 'REFUND_SUCCEEDED',"
           "       'refund.updated', NULL, 'm_path:' || rid, 400, 'USD', NULL,"
           "       're_psp_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END LOOP; END $$");

    cr_expect_str_eq(VAL0(d, "SELECT count(*) FILTER (WHERE status = 'SUCCEEDED') || ' '"
                             "       || (SELECT count(*) FROM ledger_transactions)"
                             "  FROM refunds"), "7 21");

    plans_drop(d);
}


/*
 * The money a shop moves after a registration, each planned by a
 * connection on an empty database as above: a manual capture and a void of
 * a hold (their claim, the PSP's answer, its event), the cancel of an open
 * session, a chargeback opened and won, and a seller's pay-out (its claim,
 * the PSP's answer, its event).  Their look-ups by key are checked one by
 * one above; this finds one written as a join, or a check that reads a
 * table whole (the wallets', the seller's balance, the disputes' parts).
 * The checkouts they act on are registered and paid first, outside the
 * transactions checked (their plans are the test above's).
 */
Test(plans, captures_voids_cancels_disputes_and_payouts_planned_on_an_empty_database_scan_no_table,
     .timeout = 120,
     .description = "in a fresh database, 28 checkouts registered (seven "
                    "manual holds to capture, seven to void, seven paid, "
                    "seven open): seven captures, seven voids, seven "
                    "cancels, seven chargebacks opened and won and seven "
                    "pay-outs, each family in a transaction of its own "
                    "(claim, the PSP's answer, its event): none scans a "
                    "table sequentially, and each moved its money")
{
    PGconn  *d = plans_connect();

    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_ops', 'test', 'test')");
    OK0(d, "INSERT INTO sellers (merchant_id, seller_account, psp, destination)"
           " VALUES ('m_ops', 'seller_1', 'stripe', 'acct_1'),"
           "        ('m_ops', 'seller_1', 'adyen', 'acct_1')");

    /* 1-7 Adyen holds to capture, 8-14 Adyen holds to void, 15-21 paid
     * at Stripe, 22-28 open at Stripe */
    OK0(d, "DO $$ DECLARE l bigint; p text;"
           "   exp bigint := extract(epoch FROM now())::bigint + 3600;"
           " BEGIN FOR i IN 1..28 LOOP"
           "   p := CASE WHEN i <= 14 THEN 'adyen' ELSE 'stripe' END;"
           "   SELECT c.lease INTO l FROM pay_claim('m_ops', 'k' || i,"
           "       repeat('a', 64), 30, 86400, 'co_' || i, p, 'USD', 1500,"
           "       'https://shop.example/t', 'https://shop.example/c', NULL, exp,"
           "       '{}', jsonb_build_array("
           "         jsonb_build_object('payment_order_id', 'po_' || i || 'a',"
           "                            'seller_account', 'seller_1', 'amount_minor', 1500)),"
           "       '{}', '{}',"
           "       CASE WHEN i <= 14 THEN 'manual' ELSE 'automatic' END, '{}') c;"
           "   PERFORM pay_finish('m_ops', 'k' || i, l, 'co_' || i, 'EXECUTING',"
           "       'cs_' || i, 'https://psp.example/pay', exp, NULL, 201, '{}');"
           "   CONTINUE WHEN i > 21;"
           "   PERFORM pay_event_keep(p, 'evt_' || i,"
           "       CASE WHEN i <= 14 THEN 'AUTHORIZED' ELSE 'CAPTURED' END,"
           "       'checkout.session.completed', 'cs_' || i, 'm_ops:co_' || i, 1500,"
           "       'USD', 'pi_' || i, '', ARRAY['cs_' || i], convert_to('{}', 'UTF8'),"
           "       '{}', 'k1');"
           " END LOOP; END $$");
    cr_assert_str_eq(VAL0(d, "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)"
                             "  FROM (SELECT status::text, count(*) AS n FROM checkouts"
                             "         GROUP BY 1) x"),
                     "AUTHORIZED 14, EXECUTING 7, SUCCESS 7");

    plans_scan_none(d, "seven captures",
           "DO $$ DECLARE l bigint; cp text; BEGIN FOR i IN 1..7 LOOP"
           "   cp := 'cp_' || lpad(to_hex(i), 24, '0');"
           "   SELECT c.lease INTO l FROM pay_capture_claim('m_ops', 'ck' || i,"
           "       repeat('c', 64), 30, 86400, cp, 'po_' || i || 'a', NULL, NULL,"
           "       'capture', '{}', false, '{}', 1) c;"
           "   PERFORM pay_capture_finish('m_ops', 'ck' || i, l, cp, true,"
           "       'cap_' || i, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('adyen', 'evt_cap_' || i, 'CAPTURE_SUCCEEDED',"
           "       'CAPTURE', NULL, 'm_ops:' || cp, 1500, 'USD', 'pi_' || i,"
           "       'cap_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END LOOP; END $$");

    plans_scan_none(d, "seven voids",
           "DO $$ DECLARE l bigint; vd text; BEGIN FOR i IN 8..14 LOOP"
           "   vd := 'vd_' || lpad(to_hex(i), 24, '0');"
           "   SELECT c.lease INTO l FROM pay_capture_claim('m_ops', 'vk' || i,"
           "       repeat('d', 64), 30, 86400, vd, 'po_' || i || 'a', NULL, NULL,"
           "       'void', '{}', false, '{}', 1) c;"
           "   PERFORM pay_capture_finish('m_ops', 'vk' || i, l, vd, true,"
           "       'pi_' || i, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('adyen', 'evt_vd_' || i, 'VOID_SUCCEEDED',"
           "       'CANCELLATION', NULL, 'm_ops:' || vd, 1500, 'USD', 'pi_' || i,"
           "       'pi_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END LOOP; END $$");

    plans_scan_none(d, "seven cancels",
           "DO $$ DECLARE l bigint; BEGIN FOR i IN 22..28 LOOP"
           "   SELECT c.lease INTO l FROM pay_cancel_claim('m_ops', 'xk' || i,"
           "       repeat('e', 64), 30, 86400, 'co_' || i, 'paid', 'not_cancelable',"
           "       '{}') c;"
           "   PERFORM pay_cancel_finish('m_ops', 'xk' || i, l, 'co_' || i, 'closed',"
           "       'paid', 'not_cancelable');"
           " END LOOP; END $$");

    plans_scan_none(d, "seven chargebacks",
           "DO $$ BEGIN FOR i IN 15..21 LOOP"
           "   PERFORM pay_event_keep('stripe', 'evt_dpo_' || i, 'DISPUTE_OPENED',"
           "       'charge.dispute.created', NULL, 'm_ops:co_' || i, 1500, 'USD',"
           "       'pi_' || i, 'dp_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           "   PERFORM pay_event_keep('stripe', 'evt_dpw_' || i, 'DISPUTE_WON',"
           "       'charge.dispute.closed', NULL, 'm_ops:co_' || i, 1500, 'USD',"
           "       'pi_' || i, 'dp_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END LOOP; END $$");

    plans_scan_none(d, "seven pay-outs",
           "DO $$ DECLARE l bigint; pid text; BEGIN FOR i IN 1..7 LOOP"
           "   pid := 'pyo_' || lpad(to_hex(i), 24, '0');"
           "   SELECT c.lease INTO l FROM pay_payout_claim('m_ops', 'pk' || i,"
           "       repeat('f', 64), 30, 86400, pid, 'seller_1', 100, 'USD', 'stripe',"
           "       '{}', '{}') c;"
           "   PERFORM pay_payout_finish('m_ops', 'pk' || i, l, pid, true,"
           "       'tr_' || i, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('stripe', 'evt_tr_' || i, 'PAYOUT_PAID',"
           "       'transfer.created', NULL, 'm_ops:' || pid, 100, 'USD', NULL,"
           "       'tr_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END LOOP; END $$");

    /* each moved its money */
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(kind || ' ' || status || ' ' || n, ', '"
                             "                   ORDER BY kind)"
                             "  FROM (SELECT kind::text, status::text, count(*) AS n"
                             "          FROM captures GROUP BY 1, 2) x"),
                     "capture SUCCEEDED 7, void SUCCEEDED 7");
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(status || ' ' || coalesce(failure_code::text, '-')"
                             "                   || ' ' || n, ', '"
                             "                   ORDER BY status, failure_code::text)"
                             "  FROM (SELECT status::text, failure_code, count(*) AS n"
                             "          FROM checkouts GROUP BY 1, 2) x"),
                     "FAILED canceled 7, FAILED voided 7, SUCCESS - 14");
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(status || ' ' || n, ', ')"
                             "  FROM (SELECT status::text, count(*) AS n FROM disputes"
                             "         GROUP BY 1) x"), "WON 7");
    cr_expect_str_eq(VAL0(d, "SELECT string_agg(status || ' ' || n, ', ')"
                             "  FROM (SELECT status::text, count(*) AS n FROM payouts"
                             "         GROUP BY 1) x"), "PAID 7");
    cr_expect_str_eq(VAL0(d, "SELECT balance FROM wallets WHERE seller_account = 'seller_1'"
                             "   AND currency = 'USD'"),
                     "20300");

    plans_drop(d);
}


/*
 * The rows of each public table read so far by this backend and not yet
 * reported to the statistics (which happens only between transactions):
 * a sequential scan's rows plus the entries its indexes' scans returned,
 * which counts a walk of an index's prefix as well as a scan.
 */
#define PLANS_READ_SQL                                                     \
    "SELECT c.relname,"                                                    \
    "       pg_stat_get_xact_tuples_returned(c.oid)"                       \
    "       + coalesce((SELECT sum(pg_stat_get_xact_tuples_returned("      \
    "                          i.indexrelid))"                             \
    "                     FROM pg_index i"                                 \
    "                    WHERE i.indrelid = c.oid), 0) AS n"               \
    "  FROM pg_class c"                                                    \
    " WHERE c.relkind = 'r'"                                               \
    "   AND c.relnamespace = 'public'::regnamespace"


/* sql in a transaction of its own, rolled back, after plant (NULL: none):
 * the tables it read more than 20 rows of, "captures 43, payouts 41", ""
 * for none; done (NULL: none), read after the count, says true when sql
 * did what it says (a refused op reads little) */
static const char *
plans_op_reads(PGconn *d, const char *plant, const char *sql, const char *done)
{
    const char  *beyond;

    OK0(d, "BEGIN");
    OK0(d, "SET LOCAL max_parallel_workers_per_gather = 0");
    if (plant != NULL) {
        OK0(d, plant);
    }
    OK0(d, "CREATE TEMP TABLE plans_r0 ON COMMIT DROP AS " PLANS_READ_SQL);
    OK0(d, sql);
    beyond = VAL0(d, "SELECT coalesce(string_agg(a.relname || ' ' || (a.n - b.n),"
                     "                           ', ' ORDER BY a.relname), '')"
                     "  FROM (" PLANS_READ_SQL ") a"
                     "  JOIN plans_r0 b USING (relname)"
                     " WHERE a.n - b.n > 20");
    if (done != NULL) {
        cr_expect_str_eq(VAL0(d, done), "t", "%s: not done (%s)", sql, done);
    }
    OK0(d, "ROLLBACK");

    return beyond;
}


/*
 * Each money move reads its own order's, checkout's and seller's rows, not
 * the merchant's: a capture the captures of its order, a pay-out and a
 * refund the seller's pay-outs, refunds and chargebacks in flight, a
 * chargeback the parts of its order, a lost one its parts' orders, an
 * order read (GET) or looked up for a refund its checkout and disputes, a
 * registration (its request stored again too) and its webhook the
 * checkout's orders, a review approved or rejected, or a cancel during
 * its checkout's registration, its registration's key; a void, a cancel,
 * a pay link and an off-session charge (paid, declined, or needing the
 * shopper) their checkout's
 * and method's rows; each (with an endpoint that wants every
 * notification) through an index that leads with them, not the
 * merchant's prefix of the table's key, or the reads grow with every
 * order and seller of the merchant (each op checks it did what it says,
 * or a refused one would read nothing).  The keys' test and the scans'
 * tests above see neither: the look-up is by no key, and a walk of the
 * key's prefix is no sequential scan (dropping captures_order, payouts_seller or dispute_parts_seller
 * passed both).  The plans are made while the tables are empty (the
 * connection's first calls), then the merchant gets 40 of each at another
 * seller; autovacuum is off for the tables so that no ANALYZE replans them
 * meanwhile.  It first found the look-ups written as joins (a part's
 * dispute, a pay-out's held orders, a paid checkout's orders moved, an
 * order's checkout, a lost chargeback's orders) or as "capture_id = ANY
 * (v_ids)", and the merchant's refunds in flight walked for a seller's:
 * planned on empty tables, a capture read 179 captures and 181 orders, a
 * pay-out 148 disputes, then 254 refunds, a registration and its webhook
 * 91 orders, an order read 127 checkouts, a refund's order look-up 122, a
 * chargeback lost 89 orders; and a review's approval or rejection read
 * every key of the merchant (220: nothing indexes them by checkout), as
 * did a cancel that met a checkout still registering (274; since
 * migration 142 the checkout names its key).
 */
Test(plans, each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants,
     .timeout = 120,
     .description = "in a fresh database, each planned on empty tables, "
                    "then run after the merchant has 40 captured holds, 40 "
                    "pending pay-outs, 40 open chargebacks and 40 refunds "
                    "in flight at another seller, 40 registrations in "
                    "flight and 40 saved methods charged (at the other "
                    "seller too): a capture (claim, answer, "
                    "event), a pay-out, a chargeback opened and one lost, an "
                    "order read and looked up for a refund, a refund, a "
                    "registration with its webhook and one whose request "
                    "is stored again, a review approved and one rejected, "
                    "a void, a cancel, a cancel during its checkout's "
                    "registration, a pay link followed and off-session "
                    "charges paid, declined and one that needs the "
                    "shopper, each with a "
                    "notification endpoint to tell, read at most 20 rows of "
                    "any table; with captures_order, payouts_seller, "
                    "dispute_parts_seller, refunds_pending_seller or "
                    "payment_orders_checkout_order_key dropped (rolled "
                    "back), the rows read are reported")
{
    const char  *got;
    size_t       i;
    PGconn      *d = plans_connect();

    /* each op, then what it did (read after the count) */
    static const struct {
        const char  *what, *op, *done;
    } ops[] = {
        { "a capture", "SELECT t_capture(3)",
          "SELECT status = 'SUCCEEDED' FROM captures WHERE merchant_id = 'm_rd'"
          "   AND capture_id = 'cp_' || lpad(to_hex(3), 24, '0')" },
        { "a pay-out", "SELECT t_payout(3, 'seller_1', true)",
          "SELECT status = 'PAID' FROM payouts WHERE merchant_id = 'm_rd'"
          "   AND payout_id = 'pyo_' || lpad(to_hex(3), 24, '0')" },
        { "a chargeback", "SELECT t_dispute(4)",
          "SELECT status = 'OPEN' FROM disputes WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_4'" },
        { "a chargeback lost", "SELECT t_dispute_lost(2)",
          "SELECT status = 'LOST' FROM disputes WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_2'" },
        { "a registration's request stored again",
          "SELECT t_checkout(10, 'seller_1', 'stripe', false, true)",
          "SELECT psp_request = 'r' FROM checkouts WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_10'" },
        { "a review approved",
          "SELECT outcome FROM pay_review_approve('m_rd', 'co_13', 'r',"
          " extract(epoch FROM now())::bigint + 3600, 30, '{}')",
          "SELECT status = 'EXECUTING' FROM checkouts WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_13'" },
        { "a review rejected",
          "SELECT pay_review_reject('m_rd', 'co_14', 'rejected', '{}')",
          "SELECT status = 'FAILED' FROM checkouts WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_14'" },
        { "a refund's order look-up", "SELECT pay_order_refund_info('m_rd', 'po_4')",
          "SELECT psp = 'stripe' FROM pay_order_refund_info('m_rd', 'po_4')" },
        { "an order read (GET)", "SELECT pay_get_order('m_rd', 'po_2')",
          "SELECT pay_get_order('m_rd', 'po_2')::jsonb -> 'disputes' -> 0"
          "       ->> 'status' = 'OPEN'" },
        { "a refund", "SELECT t_refund(5, true)",
          "SELECT status = 'SUCCEEDED' FROM refunds WHERE merchant_id = 'm_rd'"
          "   AND refund_id = 'rf_' || lpad(to_hex(5), 24, '0')" },
        { "a registration and its webhook",
          "SELECT t_checkout(7, 'seller_1', 'stripe', false)",
          "SELECT status = 'SUCCESS' FROM checkouts WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_7'" },
        { "a void", "SELECT t_void(15)",
          "SELECT status = 'FAILED' AND failure_code = 'voided' FROM checkouts"
          " WHERE merchant_id = 'm_rd' AND checkout_id = 'co_15'" },
        { "a cancel", "SELECT t_cancel(17)",
          "SELECT status = 'FAILED' AND failure_code = 'canceled' FROM checkouts"
          " WHERE merchant_id = 'm_rd' AND checkout_id = 'co_17'" },
        { "a cancel during its checkout's registration",
          "SELECT outcome FROM pay_cancel_claim('m_rd', 'xk19', repeat('e', 64),"
          " 30, 86400, 'co_19', 'paid', 'not_cancelable', '{}')",
          "SELECT outcome = 'registering' FROM pay_cancel_claim('m_rd', 'xk19b',"
          " repeat('e', 64), 30, 86400, 'co_19', 'paid', 'not_cancelable', '{}')" },
        { "a pay link followed", "SELECT pay_pay_target('m_rd', 'co_18')",
          "SELECT status = 'EXECUTING' FROM pay_pay_target('m_rd', 'co_18')" },
        { "an off-session charge and its webhook", "SELECT t_charge(23, true)",
          "SELECT status = 'SUCCESS' FROM checkouts WHERE merchant_id = 'm_rd'"
          "   AND checkout_id = 'co_23'" },
        { "an off-session charge declined", "SELECT t_charge(24, false)",
          "SELECT status = 'FAILED' AND failure_code = 'declined' FROM checkouts"
          " WHERE merchant_id = 'm_rd' AND checkout_id = 'co_24'" },
        { "an off-session charge that needs the shopper",
          "SELECT t_charge_shopper(42)",
          "SELECT status = 'EXECUTING' AND psp_url IS NOT NULL FROM checkouts"
          " WHERE merchant_id = 'm_rd' AND checkout_id = 'co_42'" },
        { "a refund's claim resumed", "SELECT t_refund_again(31)",
          "SELECT psp_contact = 'maybe' FROM refunds WHERE merchant_id = 'm_rd'"
          "   AND refund_id = 'rf_' || lpad(to_hex(31), 24, '0')" },
        { "a refund given up", "SELECT t_refund_abandon(32)",
          "SELECT status = 'FAILED' FROM refunds WHERE merchant_id = 'm_rd'"
          "   AND refund_id = 'rf_' || lpad(to_hex(32), 24, '0')" },
        { "a pay-out's claim resumed", "SELECT t_payout_again(33)",
          "SELECT psp_contact = 'maybe' FROM payouts WHERE merchant_id = 'm_rd'"
          "   AND payout_id = 'pyo_' || lpad(to_hex(33), 24, '0')" },
        { "a registration given up", "SELECT t_abandon(34)",
          "SELECT NOT EXISTS (SELECT FROM checkouts WHERE merchant_id = 'm_rd'"
          "                      AND checkout_id = 'co_34')" },
    };

    OK0(d, "DO $$ DECLARE t regclass; BEGIN"
           " FOR t IN SELECT c.oid FROM pg_class c"
           "           WHERE c.relnamespace = 'public'::regnamespace"
           "             AND c.relkind = 'r' LOOP"
           "   EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', t);"
           " END LOOP; END $$");
    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_rd', 'test', 'test')");
    OK0(d, "INSERT INTO sellers (merchant_id, seller_account, psp, destination)"
           " VALUES ('m_rd', 'seller_1', 'stripe', 'acct_1'),"
           "        ('m_rd', 'seller_2', 'stripe', 'acct_2')");
    /* an endpoint that wants every type: each op's notifications too */
    OK0(d, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host,"
           " secret_sealed) VALUES ('m_rd', 'ep_' || repeat('1', 24),"
           " 'https://shop.example/hooks',"
           " 'shop.example', 'v1.k.sealed')");

    /* checkout i's registration claimed under key k<i>: seller s's order
     * po_i of 15.00 at psp p, captured by hand when manual, charged to a
     * saved method when opts names one; its lease, held lease_s seconds */
    OK0(d, "CREATE FUNCTION t_claim(i int, s text, p text, manual bool,"
           "                        opts jsonb DEFAULT '{}', lease_s int DEFAULT 30)"
           " RETURNS bigint LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint;"
           " BEGIN"
           "   SELECT c.lease INTO l FROM pay_claim('m_rd', 'k' || i,"
           "       repeat('a', 64), lease_s, 86400, 'co_' || i, p, 'USD', 1500,"
           "       'https://shop.example/t', 'https://shop.example/c', NULL,"
           "       extract(epoch FROM now())::bigint + 3600, '{}', jsonb_build_array("
           "         jsonb_build_object('payment_order_id', 'po_' || i,"
           "                            'seller_account', s, 'amount_minor', 1500)),"
           "       '{}', '{}',"
           "       CASE WHEN manual THEN 'manual' ELSE 'automatic' END, opts) c;"
           "   IF l IS NULL THEN RAISE EXCEPTION 'checkout % refused', i; END IF;"
           "   RETURN l;"
           " END $f$");
    /* checkout i of seller s at psp p, one order po_i of 15.00, paid (a
     * hold when manual); when refreshed, its request stored again before
     * it is sent (pay_refresh), and no more */
    OK0(d, "CREATE FUNCTION t_checkout(i int, s text, p text, manual bool,"
           "                           refreshed bool DEFAULT false)"
           " RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint;"
           "   exp bigint := extract(epoch FROM now())::bigint + 3600;"
           " BEGIN"
           "   l := t_claim(i, s, p, manual);"
           "   IF refreshed THEN"
           "     PERFORM pay_refresh('m_rd', 'k' || i, l, exp + 60, 'r');"
           "     RETURN;"
           "   END IF;"
           "   PERFORM pay_finish('m_rd', 'k' || i, l, 'co_' || i, 'EXECUTING',"
           "       'cs_' || i, 'https://psp.example/pay', exp, NULL, 201, '{}');"
           "   PERFORM pay_event_keep(p, 'evt_' || i,"
           "       CASE WHEN manual THEN 'AUTHORIZED' ELSE 'CAPTURED' END,"
           "       'checkout.session.completed', 'cs_' || i, 'm_rd:co_' || i, 1500,"
           "       'USD', 'pi_' || i, '', ARRAY['cs_' || i], convert_to('{}', 'UTF8'),"
           "       '{}', 'k1');"
           " END $f$");
    /* checkout i of seller_1 registered, its session open (no webhook);
     * when only claimed, its registration still at its PSP (the key's
     * lease live, no session yet) */
    OK0(d, "CREATE FUNCTION t_open(i int, claimed_only bool DEFAULT false)"
           " RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint;"
           "   exp bigint := extract(epoch FROM now())::bigint + 3600;"
           " BEGIN"
           "   l := t_claim(i, 'seller_1', 'stripe', false, '{}', 300);"
           "   IF NOT claimed_only THEN"
           "     PERFORM pay_finish('m_rd', 'k' || i, l, 'co_' || i, 'EXECUTING',"
           "         'cs_' || i, 'https://psp.example/pay', exp, NULL, 201, '{}');"
           "   END IF;"
           " END $f$");
    /* the open checkout i canceled: the claim, the PSP's session closed */
    OK0(d, "CREATE FUNCTION t_cancel(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint;"
           " BEGIN"
           "   SELECT c.lease INTO l FROM pay_cancel_claim('m_rd', 'xk' || i,"
           "       repeat('e', 64), 30, 86400, 'co_' || i, 'paid', 'not_cancelable',"
           "       '{}') c;"
           "   IF l IS NULL THEN RAISE EXCEPTION 'cancel % refused', i; END IF;"
           "   PERFORM pay_cancel_finish('m_rd', 'xk' || i, l, 'co_' || i, 'closed',"
           "       'paid', 'not_cancelable');"
           " END $f$");
    /* checkout i of seller_1 held for review (its key's claim, the
     * verdict) */
    OK0(d, "CREATE FUNCTION t_review(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint;"
           " BEGIN"
           "   l := t_claim(i, 'seller_1', 'stripe', false);"
           "   IF (SELECT outcome FROM pay_risk_record('m_rd', 'k' || i, l, 'co_' || i,"
           "           'review', 500, 'manual_check', 'provider', 3600, 202,"
           "           '{\"review\":1}', 30)) <> 'review' THEN"
           "     RAISE EXCEPTION 'checkout % not held', i;"
           "   END IF;"
           " END $f$");
    /* q's one value must be true, or what it did was not done */
    OK0(d, "CREATE FUNCTION t_must(q text) RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE ok boolean;"
           " BEGIN"
           "   EXECUTE q INTO ok;"
           "   IF ok IS NOT TRUE THEN RAISE EXCEPTION 'not done: %', q; END IF;"
           " END $f$");
    /* the whole of hold i captured: claim, the PSP's answer, its event */
    OK0(d, "CREATE FUNCTION t_capture(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint; cp text := 'cp_' || lpad(to_hex(i), 24, '0');"
           " BEGIN"
           "   SELECT c.lease INTO l FROM pay_capture_claim('m_rd', 'ck' || i,"
           "       repeat('c', 64), 30, 86400, cp, 'po_' || i, NULL, NULL,"
           "       'capture', '{}', false, '{}', 1) c;"
           "   IF l IS NULL THEN RAISE EXCEPTION 'capture % refused', i; END IF;"
           "   PERFORM pay_capture_finish('m_rd', 'ck' || i, l, cp, true,"
           "       'cap_' || i, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('adyen', 'evt_cap_' || i, 'CAPTURE_SUCCEEDED',"
           "       'CAPTURE', NULL, 'm_rd:' || cp, 1500, 'USD', 'pi_' || i,"
           "       'cap_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END $f$");
    /* pay-out i of 1.00 to seller s: claimed and sent, paid when paid */
    OK0(d, "CREATE FUNCTION t_payout(i int, s text, paid bool) RETURNS void"
           " LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint; pid text := 'pyo_' || lpad(to_hex(i), 24, '0');"
           " BEGIN"
           "   SELECT c.lease INTO l FROM pay_payout_claim('m_rd', 'pk' || i,"
           "       repeat('f', 64), 30, 86400, pid, s, 100, 'USD', 'stripe',"
           "       '{}', '{}') c;"
           "   IF l IS NULL THEN RAISE EXCEPTION 'pay-out % refused', i; END IF;"
           "   PERFORM pay_payout_finish('m_rd', 'pk' || i, l, pid, true,"
           "       'tr_' || i, NULL, 201, '{}');"
           "   IF paid THEN"
           "     PERFORM pay_event_keep('stripe', 'evt_tr_' || i, 'PAYOUT_PAID',"
           "         'transfer.created', NULL, 'm_rd:' || pid, 100, 'USD', NULL,"
           "         'tr_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           "   END IF;"
           " END $f$");
    /* a refund of 4.00 of order i, its event when done */
    OK0(d, "CREATE FUNCTION t_refund(i int, done bool) RETURNS void"
           " LANGUAGE plpgsql AS $f$"
           " DECLARE r record; rid text := 'rf_' || lpad(to_hex(i), 24, '0');"
           " BEGIN"
           "   SELECT * INTO r FROM pay_refund_claim('m_rd', 'rk' || i,"
           "       repeat('b', 64), 30, 86400, rid, 'po_' || i, 400, 'USD',"
           "       NULL, '{}');"
           "   IF r.lease IS NULL THEN RAISE EXCEPTION 'refund % refused', i; END IF;"
           "   PERFORM pay_refund_finish('m_rd', 'rk' || i, r.lease, rid, true,"
           "       're_psp_' || i, NULL, 201, '{}');"
           "   IF done THEN"
           "     PERFORM pay_event_keep('stripe', 'evt_re_' || i, 'REFUND_SUCCEEDED',"
           "         'refund.updated', NULL, 'm_rd:' || rid, 400, 'USD', NULL,"
           "         're_psp_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           "   END IF;"
           " END $f$");
    /* method i saved by shopper c_i in setup checkout setup_i (its claim,
     * then the row its setup's event saves) */
    OK0(d, "CREATE FUNCTION t_method(i int) RETURNS text LANGUAGE plpgsql AS $f$"
           " DECLARE pm text := 'pm_' || translate(lpad(to_hex(i), 24, '0'),"
           "                                      '0123456789abcdef', 'abcdefghijklmnop');"
           " BEGIN"
           "   PERFORM pay_claim('m_rd', 'sk' || i, repeat('a', 64), 30, 86400,"
           "       'setup_' || i, 'stripe', 'USD', 0, 'https://shop.example/t',"
           "       'https://shop.example/c', NULL,"
           "       extract(epoch FROM now())::bigint + 3600, '{}', '[]', '{}', '{}',"
           "       'automatic', jsonb_build_object('save', jsonb_build_object("
           "         'usage', 'off_session', 'customer', 'c_' || i,"
           "         'customer_ref', 'cu_' || lpad(to_hex(i), 24, '0'),"
           "         'recurring', 'Subscription')));"
           "   INSERT INTO payment_methods (merchant_id, method_id, customer, customer_ref,"
           "       psp, token_sealed, token_index, usage, recurring, checkout_id, event_id)"
           "   VALUES ('m_rd', pm, 'c_' || i, 'cu_' || lpad(to_hex(i), 24, '0'), 'stripe',"
           "       'v1.k1.sealed', md5(pm) || md5(pm), 'off_session', 'Subscription',"
           "       'setup_' || i, 'evt_setup_' || i);"
           "   RETURN pm;"
           " END $f$");
    /* the claim of checkout i charging method i off-session, seller s's
     * order po_i of 15.00: its lease */
    OK0(d, "CREATE FUNCTION t_charge_claim(i int, s text) RETURNS bigint"
           " LANGUAGE sql AS $f$"
           " SELECT t_claim(i, s, 'stripe', false, jsonb_build_object('payment_method',"
           "     'pm_' || translate(lpad(to_hex(i), 24, '0'),"
           "                        '0123456789abcdef', 'abcdefghijklmnop')))"
           " $f$");
    /* checkout i charged off-session to method i: the claim, the PSP's
     * answer (accepted: paid by its webhook; else declined at once) */
    OK0(d, "CREATE FUNCTION t_charge(i int, accepted bool, s text DEFAULT 'seller_1')"
           " RETURNS void"
           " LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint := t_charge_claim(i, s);"
           " BEGIN"
           "   IF NOT accepted THEN"
           "     PERFORM pay_charge_finish('m_rd', 'k' || i, l, 'co_' || i, 'declined',"
           "         NULL, NULL, 'card_declined', 402, '{}');"
           "     RETURN;"
           "   END IF;"
           "   PERFORM pay_charge_finish('m_rd', 'k' || i, l, 'co_' || i, 'accepted',"
           "       'pi_ch_' || i, NULL, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('stripe', 'evt_ch_' || i, 'CAPTURED',"
           "       'payment_intent.succeeded', 'pi_ch_' || i, 'm_rd:co_' || i, 1500,"
           "       'USD', 'pi_ch_' || i, '', ARRAY['pi_ch_' || i],"
           "       convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END $f$");
    /* checkout i charged off-session to method i, the issuer wanting
     * the shopper: the PSP's hosted page for them stored (the checkout
     * stays EXECUTING) */
    OK0(d, "CREATE FUNCTION t_charge_shopper(i int, s text DEFAULT 'seller_1')"
           " RETURNS void"
           " LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint := t_charge_claim(i, s);"
           " BEGIN"
           "   PERFORM pay_charge_authenticate('m_rd', 'k' || i, l, 'co_' || i,"
           "       'cs_auth_' || i, 'https://pay.example/' || i,"
           "       extract(epoch FROM now())::bigint + 3600,"
           "       'authentication_required', 202, '{}', NULL);"
           " END $f$");
    /* hold i voided: claim, the PSP's answer, its event */
    OK0(d, "CREATE FUNCTION t_void(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint; vd text := 'vd_' || lpad(to_hex(i), 24, '0');"
           " BEGIN"
           "   SELECT c.lease INTO l FROM pay_capture_claim('m_rd', 'vk' || i,"
           "       repeat('d', 64), 30, 86400, vd, 'po_' || i, NULL, NULL,"
           "       'void', '{}', false, '{}', 1) c;"
           "   IF l IS NULL THEN RAISE EXCEPTION 'void % refused', i; END IF;"
           "   PERFORM pay_capture_finish('m_rd', 'vk' || i, l, vd, true,"
           "       'pi_' || i, NULL, 201, '{}');"
           "   PERFORM pay_event_keep('adyen', 'evt_vd_' || i, 'VOID_SUCCEEDED',"
           "       'CANCELLATION', NULL, 'm_rd:' || vd, 1500, 'USD', 'pi_' || i,"
           "       'pi_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END $f$");
    /* a refund of 4.00 of order i claimed (its lease), not sent */
    OK0(d, "CREATE FUNCTION t_refund_open(i int) RETURNS bigint LANGUAGE plpgsql AS $f$"
           " DECLARE l bigint;"
           " BEGIN"
           "   SELECT c.lease INTO l FROM pay_refund_claim('m_rd', 'rk' || i,"
           "       repeat('b', 64), 30, 86400, 'rf_' || lpad(to_hex(i), 24, '0'),"
           "       'po_' || i, 400, 'USD', NULL, '{}') c;"
           "   IF l IS NULL THEN RAISE EXCEPTION 'refund % refused', i; END IF;"
           "   RETURN l;"
           " END $f$");
    /* key k's lease run out (its holder gone) */
    OK0(d, "CREATE FUNCTION t_expire(k text) RETURNS void LANGUAGE sql AS $f$"
           " UPDATE idempotency_keys SET lease_until = now() - interval '1 second'"
           "  WHERE merchant_id = 'm_rd' AND idem_key = k $f$");
    /* refund i's claim again, after its holder's lease ran out */
    OK0(d, "CREATE FUNCTION t_refund_again(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   IF (SELECT c.outcome FROM pay_refund_claim('m_rd', 'rk' || i,"
           "         repeat('b', 64), 30, 86400, 'rf_' || lpad(to_hex(i), 24, '0'),"
           "         'po_' || i, 400, 'USD', NULL, '{}') c) <> 'resumed' THEN"
           "     RAISE EXCEPTION 'refund % not resumed', i;"
           "   END IF;"
           " END $f$");
    /* refund i claimed, then given up before it was sent */
    OK0(d, "CREATE FUNCTION t_refund_abandon(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   PERFORM pay_op_abandon('m_rd', 'rk' || i, t_refund_open(i),"
           "       'rf_' || lpad(to_hex(i), 24, '0'), 'given up', 502, '{}');"
           " END $f$");
    /* pay-out i of 1.00 to seller_1 claimed (not sent), or claimed again
     * after its holder's lease ran out */
    OK0(d, "CREATE FUNCTION t_payout_claim(i int) RETURNS text LANGUAGE sql AS $f$"
           " SELECT c.outcome FROM pay_payout_claim('m_rd', 'pk' || i,"
           "     repeat('f', 64), 30, 86400, 'pyo_' || lpad(to_hex(i), 24, '0'),"
           "     'seller_1', 100, 'USD', 'stripe', '{}', '{}') c $f$");
    OK0(d, "CREATE FUNCTION t_payout_again(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   IF t_payout_claim(i) <> 'resumed' THEN"
           "     RAISE EXCEPTION 'pay-out % not resumed', i;"
           "   END IF;"
           " END $f$");
    /* registration i (claimed, its PSP not reached) given up */
    OK0(d, "CREATE FUNCTION t_abandon(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   IF NOT pay_abandon('m_rd', 'k' || i,"
           "          (SELECT lease FROM idempotency_keys WHERE merchant_id = 'm_rd'"
           "              AND idem_key = 'k' || i), 'psp_circuit_open') THEN"
           "     RAISE EXCEPTION 'registration % not given up', i;"
           "   END IF;"
           " END $f$");
    /* a chargeback opened on paid checkout i */
    OK0(d, "CREATE FUNCTION t_dispute(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   PERFORM pay_event_keep('stripe', 'evt_dpo_' || i, 'DISPUTE_OPENED',"
           "       'charge.dispute.created', NULL, 'm_rd:co_' || i, 1500, 'USD',"
           "       'pi_' || i, 'dp_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END $f$");
    /* chargeback i lost */
    OK0(d, "CREATE FUNCTION t_dispute_lost(i int) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   PERFORM pay_event_keep('stripe', 'evt_dpl_' || i, 'DISPUTE_LOST',"
           "       'charge.dispute.closed', NULL, 'm_rd:co_' || i, 1500, 'USD',"
           "       'pi_' || i, 'dp_' || i, NULL, convert_to('{}', 'UTF8'), '{}', 'k1');"
           " END $f$");

    /* planned on empty tables: seller_1's hold 1 captured, its checkout 2
     * paid and disputed, a pay-out */
    OK0(d, "SELECT t_checkout(1, 'seller_1', 'adyen', true),"
           "       t_checkout(2, 'seller_1', 'stripe', false)");
    OK0(d, "SELECT t_capture(1)");
    OK0(d, "SELECT t_payout(1, 'seller_1', true)");
    OK0(d, "SELECT t_dispute(2)");
    OK0(d, "SELECT pay_get_order('m_rd', 'po_2')");
    OK0(d, "SELECT pay_order_refund_info('m_rd', 'po_2')");
    OK0(d, "SELECT t_checkout(8, 'seller_1', 'stripe', false)");
    OK0(d, "SELECT t_dispute(8)");
    OK0(d, "SELECT t_dispute_lost(8)");
    OK0(d, "SELECT t_checkout(9, 'seller_1', 'stripe', false, true)");
    OK0(d, "SELECT t_review(i) FROM generate_series(11, 14) i");
    OK0(d, "SELECT t_must($q$SELECT outcome = 'approved' FROM pay_review_approve("
           " 'm_rd', 'co_11', 'r', extract(epoch FROM now())::bigint + 3600, 30,"
           " '{}')$q$)");
    OK0(d, "SELECT t_must($q$SELECT pay_review_reject('m_rd', 'co_12', 'rejected',"
           " '{}')$q$)");
    OK0(d, "SELECT t_checkout(6, 'seller_1', 'stripe', false)");
    OK0(d, "SELECT t_refund(6, true)");
    OK0(d, "SELECT t_checkout(20, 'seller_1', 'adyen', true)");
    OK0(d, "SELECT t_void(20)");
    OK0(d, "SELECT t_open(21), t_open(22, true)");
    OK0(d, "SELECT t_cancel(21)");
    OK0(d, "SELECT t_must($q$SELECT outcome = 'registering' FROM pay_cancel_claim("
           " 'm_rd', 'xk22', repeat('e', 64), 30, 86400, 'co_22', 'paid',"
           " 'not_cancelable', '{}')$q$)");
    OK0(d, "SELECT pay_pay_target('m_rd', 'co_21')");
    OK0(d, "SELECT t_method(i) FROM generate_series(25, 26) i");
    OK0(d, "SELECT t_charge(25, true), t_charge(26, false)");
    OK0(d, "SELECT t_method(41), t_charge_shopper(41)");
    OK0(d, "SELECT t_checkout(i, 'seller_1', 'stripe', false)"
           "  FROM generate_series(35, 36) i");
    OK0(d, "SELECT t_refund_open(35), t_expire('rk35')");
    OK0(d, "SELECT t_refund_again(35)");
    OK0(d, "SELECT t_refund_abandon(36)");
    OK0(d, "SELECT t_payout_claim(37), t_expire('pk37')");
    OK0(d, "SELECT t_payout_again(37)");
    OK0(d, "SELECT t_open(38, true)");
    OK0(d, "SELECT t_abandon(38)");

    /* seller_1's hold 3 and paid checkout 4, 5; seller_2's 40 holds
     * captured, 40 paid checkouts, 40 pending pay-outs, then chargebacks of
     * its 40 checkouts */
    OK0(d, "SELECT t_checkout(3, 'seller_1', 'adyen', true),"
           "       t_checkout(4, 'seller_1', 'stripe', false),"
           "       t_checkout(5, 'seller_1', 'stripe', false)");
    OK0(d, "SELECT t_checkout(15, 'seller_1', 'adyen', true),"
           "       t_open(17), t_open(18), t_open(19, true)");
    OK0(d, "SELECT t_checkout(i, 'seller_1', 'stripe', false)"
           "  FROM generate_series(31, 32) i");
    OK0(d, "SELECT t_refund_open(31), t_expire('rk31')");
    OK0(d, "SELECT t_payout_claim(33), t_expire('pk33')");
    OK0(d, "SELECT t_open(34, true)");
    OK0(d, "SELECT t_open(i, true) FROM generate_series(401, 440) i");
    OK0(d, "SELECT t_method(i) FROM generate_series(23, 24) i");
    OK0(d, "SELECT t_method(i) FROM generate_series(501, 540) i");
    OK0(d, "SELECT t_charge(i, true, 'seller_2') FROM generate_series(501, 520) i");
    OK0(d, "SELECT t_charge(i, false, 'seller_2') FROM generate_series(521, 540) i");
    OK0(d, "SELECT t_method(i) FROM generate_series(541, 560) i");
    OK0(d, "SELECT t_charge_shopper(i, 'seller_2') FROM generate_series(541, 560) i");
    OK0(d, "SELECT t_method(42)");
    OK0(d, "SELECT t_checkout(i, 'seller_2', 'adyen', true)"
           "  FROM generate_series(101, 140) i");
    OK0(d, "SELECT t_capture(i) FROM generate_series(101, 140) i");
    OK0(d, "SELECT t_checkout(i, 'seller_2', 'stripe', false)"
           "  FROM generate_series(201, 240) i");
    OK0(d, "SELECT t_payout(i, 'seller_2', false) FROM generate_series(301, 340) i");
    OK0(d, "SELECT t_dispute(i) FROM generate_series(201, 240) i");
    OK0(d, "SELECT t_refund(i, false) FROM generate_series(101, 140) i");

    cr_assert_str_eq(VAL0(d, "SELECT (SELECT count(*) FROM captures) || ' '"
                             "    || (SELECT count(*) FROM payouts"
                             "         WHERE status = 'PENDING'"
                             "           AND seller_account = 'seller_2') || ' '"
                             "    || (SELECT count(*) FROM dispute_parts)"),
                     "42 40 42");
    cr_assert_str_eq(VAL0(d, "SELECT count(*) FILTER (WHERE status = 'PENDING')"
                             "  FROM refunds WHERE seller_account = 'seller_2'"), "40");
    /* the wallets folded, as the sweeper folds them, and the credits
     * folded vacuumed away, as autovacuum would (an index scan counts the
     * entries of dead rows it meets): a pay-out and a refund read the
     * seller's credits since */
    OK0(d, "SELECT pay_wallets_fold(100000)");
    OK0(d, "VACUUM wallet_credits");

    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        got = plans_op_reads(d, NULL, ops[i].op, ops[i].done);
        cr_expect_str_eq(got, "", "%s read %s", ops[i].what, got);
    }

    /* each index dropped: the check sees it */
    got = plans_op_reads(d, "DROP INDEX captures_order", ops[0].op, NULL);
    cr_expect(strstr(got, "captures ") != NULL,
              "without captures_order a capture read %s", got);
    got = plans_op_reads(d, "DROP INDEX payouts_seller", ops[1].op, NULL);
    cr_expect(strstr(got, "payouts ") != NULL,
              "without payouts_seller a pay-out read %s", got);
    got = plans_op_reads(d, "DROP INDEX dispute_parts_seller", ops[1].op, NULL);
    cr_expect(strstr(got, "dispute_parts ") != NULL,
              "without dispute_parts_seller a pay-out read %s", got);
    got = plans_op_reads(d, "DROP INDEX refunds_pending_seller", ops[9].op, NULL);
    cr_expect(strstr(got, "refunds ") != NULL,
              "without refunds_pending_seller a refund read %s", got);
    got = plans_op_reads(d, "ALTER TABLE payment_orders DROP CONSTRAINT"
                            " payment_orders_checkout_order_key CASCADE",
                         ops[10].op, NULL);
    cr_expect(strstr(got, "payment_orders ") != NULL,
              "without payment_orders_checkout_order_key a registration read %s",
              got);

    plans_drop(d);
}


/*
 * A notifier's claim (pay_notify_lease) with 100 endpoints' backlogs of
 * ten due rows each, in a transaction: what it took, and how many index
 * entries of notifications it read.
 */
static long
plans_notify_claim(PGconn *d, const char **took)
{
    long  before;

    OK0(d, "BEGIN");
    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " SELECT 'n_many_' || k, 'test', 'test' FROM generate_series(1, 100) k");
    OK0(d, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,"
           " secret_sealed)"
           " SELECT 'n_many_' || k, 'ep_' || left(md5('many' || k), 24),"
           " 'https://shop.example/hooks', 'shop.example', '{}', 'v1.k.sealed-x'"
           " FROM generate_series(1, 100) k");
    OK0(d, "INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,"
           " checkout_id, object_id, sequence, payload, next_at)"
           " SELECT 'n_many_' || k, 'msg_' || substr(md5(k || 'many' || g), 1, 24),"
           " 'ep_' || left(md5('many' || k), 24), 'checkout.succeeded', 'co' || g, 'co' || g,"
           " 1, '{}', now() - interval '1 hour' - (k * 10 + g) * interval '1 second'"
           " FROM generate_series(1, 100) k, generate_series(1, 10) g");

    before = plans_fetched(d, "notifications");
    *took = VAL0(d, "SELECT string_agg(merchant_id || ' ' || n, ', ' ORDER BY merchant_id)"
                    "  FROM (SELECT merchant_id, count(*) AS n"
                    "          FROM pay_notify_lease('fair', 32, 60000, 8) GROUP BY 1) x");
    before = plans_fetched(d, "notifications") - before;
    OK0(d, "ROLLBACK");

    return before;
}

/*
 * A claim leases the rows it took by their place in the table (the rows
 * it has locked), not by a join on their key: planned while the
 * statistics say notifications holds no row (an ANALYZE that found only
 * dead rows, as a table whose rows were all delivered and purged, or
 * rolled back), the join on the key was a nested loop that read the whole
 * primary key once and compared each entry with each row taken.  One CI
 * run of solo_notify_sql met it (1,454 entries read where 488 are
 * needed).
 */
Test(plans, a_notifier_claim_planned_on_a_table_of_dead_rows_reads_what_it_takes,
     .timeout = 120,
     .description = "in a fresh database, 100 endpoints' backlogs rolled back "
                    "and notifications analysed (no live row, its pages "
                    "counted), then the same backlogs: a claim of 32 takes the "
                    "four oldest endpoints' eight each and reads under 600 "
                    "index entries")
{
    long         fetched;
    PGconn      *d = plans_connect();
    const char  *took;

    (void) plans_notify_claim(d, &took);
    OK0(d, "ANALYZE notifications");
    cr_assert_str_eq(VAL0(d, "SELECT reltuples::bigint || ' ' || (relpages > 0)"
                             "  FROM pg_class WHERE oid = 'notifications'::regclass"),
                     "0 true");

    fetched = plans_notify_claim(d, &took);
    cr_expect_str_eq(took, "n_many_100 8, n_many_97 8, n_many_98 8, n_many_99 8");
    /* a probe per endpoint for its first PENDING row and one for its
     * oldest due row (200), the rows of 32 endpoints locked (8 each,
     * 256): 456; the join on the key read 1,456 */
    cr_expect(fetched < 600, "a claim read %ld index entries", fetched);

    plans_drop(d);
}


/* 20,000 done keys of one merchant past their TTL, in a transaction
 * rolled back after a purge of 100: the index entries of
 * idempotency_keys the purge read, and the keys it deleted */
static long
plans_purge(PGconn *d, const char **deleted)
{
    long  before;

    OK0(d, "BEGIN");
    OK0(d, "INSERT INTO idempotency_keys (merchant_id, idem_key, fingerprint, state,"
           " lease, checkout_id, response_status, response_body, expires_at)"
           " SELECT 'm_purge', 'k' || g, repeat('a', 64), 'done', 1, 'co_' || g, 201,"
           " '{}', now() - interval '1 hour' - g * interval '1 second'"
           " FROM generate_series(1, 20000) g");
    before = plans_fetched(d, "idempotency_keys");
    *deleted = VAL0(d, "SELECT pay_purge(100)");
    before = plans_fetched(d, "idempotency_keys") - before;
    OK0(d, "ROLLBACK");

    return before;
}

/*
 * The purge deletes the keys (and delivered notifications) past their
 * time by their place in the table, as the notifier's claim leases its
 * rows: planned while the statistics say the table holds no row, the
 * delete's join on the key read the whole primary key and compared each
 * entry with each victim (2,000,000 comparisons, 0.8 s, for 100 of
 * 20,000 keys).
 */
Test(plans, a_purge_planned_on_a_table_of_dead_rows_reads_what_it_deletes,
     .timeout = 120,
     .description = "in a fresh database, 20,000 expired keys rolled back and "
                    "idempotency_keys analysed (no live row, its pages "
                    "counted), then the same keys: a purge of 100 deletes "
                    "100 and reads under 1,000 index entries")
{
    long         fetched;
    PGconn      *d = plans_connect();
    const char  *deleted;

    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_purge', 'test', 'test')");
    (void) plans_purge(d, &deleted);
    OK0(d, "ANALYZE idempotency_keys");
    cr_assert_str_eq(VAL0(d, "SELECT reltuples::bigint || ' ' || (relpages > 0)"
                             "  FROM pg_class WHERE oid = 'idempotency_keys'::regclass"),
                     "0 true");

    fetched = plans_purge(d, &deleted);
    cr_expect_str_eq(deleted, "100");
    /* the 100 oldest by the expiry index (100), each deleted by its place;
     * the join on the key read 20,100 */
    cr_expect(fetched < 1000, "a purge read %ld index entries", fetched);

    plans_drop(d);
}


/*
 * A shard's sweeper step over the events no merchant here owns
 * (pay_inbox_homeless) walks the pending events oldest first and stops
 * at its limit: planned while a new month's partition has no statistics,
 * it was a bitmap scan of every pending row, each tested (its merchant,
 * pay_event_locate) before the sort and the limit.
 */
Test(plans, the_homeless_step_planned_without_statistics_stops_at_its_limit,
     .timeout = 120,
     .description = "in a fresh database, 3,000 pending events of a merchant "
                    "not here (the inbox's partitions never analysed): a step "
                    "of 100 takes 100 and reads under 1,000 index entries of "
                    "psp_events")
{
    long         fetched;
    PGconn      *d = plans_connect();

    OK0(d, "BEGIN");
    OK0(d, "DO $$ BEGIN FOR i IN 1..3000 LOOP"
           "   PERFORM pay_event_keep('stripe', 'evt_' || i, 'CAPTURED',"
           "       'checkout.session.completed', 'cs_' || i, 'm_gone:co_' || i, 1500,"
           "       'USD', 'pi_' || i, '', ARRAY['cs_' || i], convert_to('{}', 'UTF8'),"
           "       '{}', 'k1');"
           " END LOOP; END $$");
    fetched = plans_fetched(d, "psp_events%");
    cr_expect_str_eq(VAL0(d, "SELECT count(*) FROM pay_inbox_homeless(3600, 0, 100)"),
                     "100");
    fetched = plans_fetched(d, "psp_events%") - fetched;
    /* the 100 oldest, in order, and each marked tried by its key: 200;
     * the scan of every pending row read 3,100 */
    cr_expect(fetched < 1000, "a step read %ld index entries", fetched);
    OK0(d, "ROLLBACK");

    plans_drop(d);
}


/*
 * A foreign key whose referencing table has no index leading with its
 * columns makes every delete (and key change) of a referenced row read
 * that whole table: PostgreSQL's check looks for rows still naming it.
 * pay_abandon deletes a checkout (a registration its PSP never took:
 * circuit open, credentials refused), and each one read every row of
 * psp_tokens (twice), psp_payments and disputes of every merchant.  Every
 * key without one is listed here with the index that serves it or why its
 * referenced rows are never deleted, and every key listed must still be
 * one without (a list that outlived its keys says nothing).
 */
Test(plans, every_foreign_key_to_a_table_whose_rows_go_has_an_index_on_its_columns,
     .timeout = 120,
     .description = "in a freshly migrated schema, each foreign key either "
                    "has an index on the referencing table whose leading "
                    "columns are the key's, or references a table whose "
                    "rows are never deleted nor their keys changed (each "
                    "listed with why)")
{
    int          i, j, n, found[16] = { 0 };
    PGresult    *r;
    PGconn      *d = plans_connect();

    /* the keys without an index, each with why its rows stay */
    static const struct {
        const char  *key, *why;
    } kept[] = {
        { "checkouts_payment_method_fk",
          "checkouts_payment_method (merchant_id, payment_method_id) WHERE "
          "payment_method_id IS NOT NULL serves it (a key's = is NOT NULL); "
          "a method is detached, never deleted" },
        { "dispute_parts_merchant_id_checkout_id_payment_order_id_fkey",
          "dispute_parts_order (payment_order_id, merchant_id, ...) serves it: "
          "an order's id is the merchant's once" },
        { "ledger_transactions_merchant_id_checkout_id_payment_order__fkey",
          "ledger_transactions_checkout (merchant_id, checkout_id) serves it: "
          "a checkout's few transactions" },
        { "order_events_merchant_id_checkout_id_payment_order_id_fkey",
          "its primary key (merchant_id, checkout_id, event_id) serves it: a "
          "checkout's few events" },
        { "refunds_merchant_id_checkout_id_payment_order_id_fkey",
          "refunds_order (payment_order_id, merchant_id) serves it" },
        { "notifications_merchant_id_endpoint_id_fkey",
          "an endpoint is disabled, never deleted (no function deletes one)" },
        { "payouts_merchant_id_seller_account_psp_fkey",
          "a seller's row is never deleted (no function deletes one)" },
        { "recon_seen_report_id_fkey",
          "a reconciliation report is never deleted (no function deletes one)" },
    };

    r = sqlt_ok(d,
        "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text"
        "  FROM pg_constraint c"
        " WHERE c.contype = 'f'"
        "   AND c.connamespace = 'public'::regnamespace"
        "   AND NOT EXISTS ("
        "       SELECT FROM pg_index i"
        "        WHERE i.indrelid = c.conrelid AND i.indpred IS NULL"
        "          AND (SELECT array_agg(k ORDER BY k)"
        "                 FROM unnest((i.indkey::int2[])[0:cardinality(c.conkey) - 1]) k)"
        "              = (SELECT array_agg(k ORDER BY k) FROM unnest(c.conkey) k))"
        " ORDER BY 2, 1", 0, NULL);
    n = PQntuples(r);
    cr_assert_leq(sizeof(kept) / sizeof(kept[0]), sizeof(found) / sizeof(found[0]));
    for (i = 0; i < n; i++) {
        for (j = 0; j < (int) (sizeof(kept) / sizeof(kept[0])); j++) {
            if (strcmp(kept[j].key, PQgetvalue(r, i, 0)) == 0) {
                found[j] = 1;
                break;
            }
        }
        cr_expect(j < (int) (sizeof(kept) / sizeof(kept[0])),
                  "%s -> %s (%s): no index leads with its columns",
                  PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 0));
    }
    PQclear(r);
    for (j = 0; j < (int) (sizeof(kept) / sizeof(kept[0])); j++) {
        cr_expect(found[j], "%s is listed (%s) but has an index now, or is gone",
                  kept[j].key, kept[j].why);
    }

    plans_drop(d);
}


/*
 * A delivery's outcome (pay_notify_record) updates its one row by its key
 * and lease: "status = 'PENDING' AND lease_owner = ..." in that WHERE is
 * the predicate of notifications_pending_endpoint and notifications_leased
 * (both lead with the merchant), so a plan made on an empty table could
 * walk the merchant's whole backlog, which grows while an endpoint is down
 * (the merchant's deliveries recorded one at a time, each reading it all).
 * Planned on empty tables (the connection's first calls), then run with
 * a backlog of 200 due rows at the endpoint and 42 leased.
 */
Test(plans, a_deliverys_outcome_reads_its_row_not_the_endpoints_backlog,
     .timeout = 120,
     .description = "in a fresh database, a delivery's success and a "
                    "failure to retry, each planned on empty tables, then "
                    "recorded with 200 notifications due and 42 leased at "
                    "the endpoint: each reads at most 20 rows of any table "
                    "and moves its row")
{
    char         op[1024], id[64], lease[64];
    const char  *got;
    int          k;
    PGconn      *d = plans_connect();

    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_nt', 'test', 'test')");
    OK0(d, "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host,"
           " secret_sealed) VALUES ('m_nt', 'ep_' || repeat('2', 24),"
           " 'https://shop.example/hooks', 'shop.example', 'v1.k.sealed')");
    /* n notifications due at the endpoint, from g */
    OK0(d, "CREATE FUNCTION t_due(g int, n int) RETURNS void LANGUAGE sql AS $f$"
           " INSERT INTO notifications (merchant_id, notification_id, endpoint_id,"
           "     event_type, checkout_id, object_id, sequence, payload, next_at)"
           " SELECT 'm_nt', 'msg_' || lpad(to_hex(i), 24, '0'), 'ep_' || repeat('2', 24),"
           "     'checkout.succeeded', 'co_' || i, 'co_' || i, 1, '{}',"
           "     now() - interval '1 hour' + i * interval '1 millisecond'"
           "   FROM generate_series(g, g + n - 1) i $f$");
    /* the next due one leased by w */
    OK0(d, "CREATE FUNCTION t_lease(w text) RETURNS void LANGUAGE plpgsql AS $f$"
           " BEGIN"
           "   PERFORM FROM pay_notify_lease(w, 1, 600000, 100);"
           "   IF NOT FOUND THEN RAISE EXCEPTION 'none leased'; END IF;"
           " END $f$");
    /* the one w leased, recorded: delivered, or failed to be retried */
    OK0(d, "CREATE FUNCTION t_record(w text, ok bool) RETURNS text"
           " LANGUAGE sql AS $f$"
           " SELECT r.status FROM notifications n,"
           "   LATERAL pay_notify_record('m_nt', n.notification_id, w, ok,"
           "       CASE WHEN ok THEN 200 ELSE 503 END,"
           "       CASE WHEN ok THEN NULL ELSE 'down' END,"
           "       CASE WHEN ok THEN NULL ELSE 1000 END, 0, 0, n.lease_until) r"
           "  WHERE n.lease_owner = w $f$");

    /* planned on empty tables */
    OK0(d, "SELECT t_due(1, 2), t_lease('w0'), t_lease('w00')");
    cr_assert_str_eq(VAL0(d, "SELECT t_record('w0', true)"), "DELIVERED");
    cr_assert_str_eq(VAL0(d, "SELECT t_record('w00', false)"), "PENDING");

    /* a backlog: 200 due, 42 of them leased, by w_ok, w_no and 40 others */
    OK0(d, "SELECT t_due(100, 200), t_lease('w_ok'), t_lease('w_no')");
    OK0(d, "SELECT t_lease('w' || k) FROM generate_series(1, 40) k");
    cr_assert_str_eq(VAL0(d, "SELECT count(*) FILTER (WHERE lease_owner IS NOT NULL)"
                             "  FROM notifications"), "42");

    /* each recorded by its key and lease, read here first */
    for (k = 0; k < 2; k++) {
        snprintf(id, sizeof(id), "%s",
                 VAL0(d, k == 0 ? "SELECT notification_id FROM notifications"
                                  " WHERE lease_owner = 'w_ok'"
                                : "SELECT notification_id FROM notifications"
                                  " WHERE lease_owner = 'w_no'"));
        snprintf(lease, sizeof(lease), "%s",
                 VAL0(d, k == 0 ? "SELECT lease_until FROM notifications"
                                  " WHERE lease_owner = 'w_ok'"
                                : "SELECT lease_until FROM notifications"
                                  " WHERE lease_owner = 'w_no'"));
        snprintf(op, sizeof(op),
                 "SELECT pay_notify_record('m_nt', '%s', '%s', %s, %d, %s, %s, 0, 0,"
                 " '%s')", id, k == 0 ? "w_ok" : "w_no", k == 0 ? "true" : "false",
                 k == 0 ? 200 : 503, k == 0 ? "NULL" : "'down'",
                 k == 0 ? "NULL" : "1000", lease);
        got = plans_op_reads(d, NULL, op,
                             k == 0 ? "SELECT count(*) = 2 FROM notifications"
                                      " WHERE status = 'DELIVERED'"
                                    : "SELECT count(*) = 2 FROM notifications"
                                      " WHERE last_status = 503"
                                      "   AND lease_owner IS NULL"
                                      "   AND status = 'PENDING'");
        cr_expect_str_eq(got, "", "%s recorded read %s",
                         k == 0 ? "a delivery" : "a failure", got);
    }

    plans_drop(d);
}
