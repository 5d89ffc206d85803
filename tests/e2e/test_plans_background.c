/*
 * Plans of the background work: every SQL function the gateway's
 * background work calls (the sweeper's rounds, the event inbox's steps,
 * the notifier, housekeeping) that takes a bounded number of rows (a
 * LIMIT, a batch, FOR UPDATE SKIP LOCKED, a DELETE of a batch) from a
 * table that can be large reads about what it takes, however the
 * statistics stood when its plan was made.
 *
 * A connection plans a PL/pgSQL function's statements at its first call
 * and keeps the plans.  Made while the statistics say a table is empty,
 * a plan may read a whole index, or test every row before its LIMIT, once
 * the table is large: the notifier's claim, the purge and the homeless
 * step did (test_plans.c).  So each family of functions here is run, in a
 * database of its own (plans_connect), twice on the same rows, a few
 * thousand of which it should take a few dozen:
 *   - never analysed: the tables as a fresh schema leaves them (reltuples
 *     -1, as a new month's partition of the event inbox is);
 *   - analysed while they held only dead rows: the same rows inserted,
 *     rolled back, ANALYZE (reltuples 0, its pages counted), as a table
 *     whose rows were all purged, folded or rolled back is left;
 * each time on a new connection with generic plans forced (the plans it
 * keeps), each call in a transaction of its own, rolled back, that
 * inserts the rows first.  What it read is every row of the family's
 * tables read by a sequential scan, a bitmap scan or an index scan
 * (plans_rows_read: live rows; the dead ones an index still holds are
 * passed over by any walk and are not the plan's doing), bounded far
 * below the rows there so that a plan reading a whole index, or every
 * candidate before its LIMIT, fails.  Autovacuum is off for the tables
 * planted, so that the statistics stay as planted.
 *
 * The bounds leave room for what each function reads by design (a gauge's
 * count of a few hundred candidates, the keys of the rows it takes); the
 * comments say what each read when these tests were written.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "plans.h"
#include "sqltest.h"


/* one function of a family: what it takes (a query whose one value says
 * it), what it should take, the tables whose rows it reads (a LIKE
 * pattern), and how many rows it reads: at least least (the rows it takes
 * are among them: a count that missed them would bound nothing), under
 * bound */
typedef struct {
    const char  *what;
    const char  *sql;
    const char  *took;
    const char  *tables;
    long         least;
    long         bound;
} bg_call_t;


/* the merchant and the sweeper's lease every family's rows belong to */
static void
bg_base(PGconn *d)
{
    OK0(d, "INSERT INTO merchants (merchant_id, name, mode)"
           " VALUES ('m_bg', 'test', 'test')");
    OK0(d, "INSERT INTO sweeper_lease (id, owner, until)"
           " VALUES (1, 'bg', now() + interval '1 day')"
           " ON CONFLICT (id) DO UPDATE SET owner = 'bg',"
           " until = now() + interval '1 day'");
}


static void
bg_setup(PGconn *d, const char *const *setup)
{
    for (; *setup != NULL; setup++) {
        OK0(d, *setup);
    }
}


/* each call in a transaction of its own that makes the rows first,
 * rolled back: what it took and read checked, and said */
static void
bg_measure(PGconn *d, const char *state, const char *const *setup,
    const bg_call_t *calls, size_t n)
{
    size_t       i;
    long         read;
    const char  *took;

    for (i = 0; i < n; i++) {
        OK0(d, "BEGIN");
        OK0(d, "SET LOCAL max_parallel_workers_per_gather = 0");
        bg_setup(d, setup);
        read = plans_rows_read(d, calls[i].tables);
        took = VAL0(d, calls[i].sql);
        read = plans_rows_read(d, calls[i].tables) - read;
        OK0(d, "ROLLBACK");

        cr_log_info("%s, %s: took %s, read %ld rows", calls[i].what, state,
                    took ? took : "NULL", read);
        cr_expect_str_eq(took ? took : "NULL", calls[i].took,
                         "%s, %s: took %s, not %s", calls[i].what, state,
                         took ? took : "NULL", calls[i].took);
        cr_expect(read >= calls[i].least && read < calls[i].bound,
                  "%s, %s: read %ld rows (%ld to %ld expected) to take %s",
                  calls[i].what, state, read, calls[i].least,
                  calls[i].bound - 1, took ? took : "NULL");
    }
}


/* the tables named (separated by commas) and their partitions, as a
 * query of their oids */
static const char *
bg_rels(const char *tables)
{
    return str_printf("SELECT t.oid FROM unnest('{%s}'::regclass[]) t(oid)"
                      " UNION ALL"
                      " SELECT i.inhrelid FROM pg_inherits i"
                      "  WHERE i.inhparent = ANY ('{%s}'::regclass[])",
                      tables, tables);
}


/*
 * The family's calls, first on tables never analysed, then on the same
 * tables analysed while they held only the family's rows rolled back.
 * tables: those the rows go to, as ANALYZE names them (a partitioned
 * table's partitions are analysed with it).
 */
static void
bg_check(const char *tables, const char *const *setup, const bg_call_t *calls,
    size_t n)
{
    const char  *state;
    PGconn      *d = plans_connect();

    bg_base(d);

    /* autovacuum off for the family's tables and their partitions: the
     * statistics stay as planted */
    OK0(d, str_printf("DO $$ DECLARE t regclass; BEGIN"
                      " FOR t IN SELECT c.oid FROM pg_class c"
                      "           WHERE c.relkind = 'r' AND c.oid IN (%s) LOOP"
                      "   EXECUTE format('ALTER TABLE %%s SET (autovacuum_enabled = off)', t);"
                      " END LOOP; END $$", bg_rels(tables)));

    state = VAL0(d, str_printf("SELECT string_agg(DISTINCT c.reltuples::text, ',')"
                               "  FROM pg_class c WHERE c.oid IN (%s)",
                               bg_rels(tables)));
    cr_assert_str_eq(state, "-1", "%s never analysed: reltuples %s", tables, state);
    PQfinish(d);
    d = plans_reconnect();
    bg_measure(d, "never analysed", setup, calls, n);

    /* the same rows, rolled back, analysed: no live row, pages counted
     * (but for a partition no row went to, empty) */
    OK0(d, "BEGIN");
    bg_setup(d, setup);
    OK0(d, "ROLLBACK");
    OK0(d, str_printf("ANALYZE %s", tables));
    state = VAL0(d, str_printf("SELECT string_agg(c.relname || ' ' || c.reltuples || ' '"
                               "                  || c.relpages, ', ' ORDER BY c.relname)"
                               "  FROM pg_class c"
                               " WHERE c.oid IN (%s) AND c.relkind = 'r'"
                               "   AND NOT (c.reltuples = 0 AND c.relpages > 0)"
                               "   AND pg_relation_size(c.oid) > 0",
                               bg_rels(tables)));
    cr_assert(state == NULL, "analysed with dead rows only, but: %s", state);
    PQfinish(d);
    d = plans_reconnect();
    bg_measure(d, "analysed with dead rows only", setup, calls, n);

    plans_drop(d);
}


#define NCALLS(a)  (sizeof(a) / sizeof((a)[0]))


/*
 * 4,000 checkouts of one merchant written directly (triggers off, as the
 * sweeper's own tests write theirs), created 3 hours ago a second apart:
 * one in twenty EXECUTING with a session token (200 open sessions), ten
 * FAILED whose sessions the PSP may still take a payment in (in
 * failed_open_sessions, as a cancel at such a PSP leaves them), the rest
 * paid.
 */
static const char *const sessions_setup[] = {
    "SET LOCAL session_replication_role = replica",
    "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
    " amount_total, success_url, cancel_url, status, psp_request, psp_token,"
    " psp_url, expires_at, created_at)"
    " SELECT 'm_bg', 'co_' || g, 'stripe', 'm_bg:co_' || g, 'EUR', 100,"
    " 'https://shop.example/s', 'https://shop.example/c',"
    " CASE WHEN g % 20 = 0 THEN 'EXECUTING' WHEN g % 400 = 1 THEN 'FAILED'"
    "      ELSE 'SUCCESS' END::pay_status,"
    " 'r', 'tok_' || g,"
    " CASE WHEN g % 400 = 1 THEN 'https://psp.example/pay/' || g END,"
    " now() + interval '1 day',"
    " now() - interval '3 hours' + g * interval '1 second'"
    " FROM generate_series(1, 4000) g",
    "INSERT INTO failed_open_sessions (merchant_id, checkout_id, expires_at)"
    " SELECT 'm_bg', 'co_' || g, now() + interval '1 day'"
    " FROM generate_series(1, 4000) g WHERE g % 400 = 1",
    "SET LOCAL session_replication_role = origin",
    NULL
};

static const bg_call_t sessions_calls[] = {
    /* the 10 FAILED and 40 open taken, each read by its key: 150 rows.
     * Before: the FAILED sessions' join walked every checkout
     * (checkouts_pkey or checkouts_list), the picked ones' join walked
     * them again, and a picked one's look-up with its status walked
     * checkouts_executing_since: 4,300 rows read never analysed, 8,100
     * analysed with dead rows */
    { "pay_sweeper_due",
      "SELECT count(*) FILTER (WHERE failed) || ' of ' || count(*)"
      "  FROM pay_sweeper_due('bg', '{stripe}', '{}', '{stripe}', 60, 30, 0, 50)",
      "10 of 50", "checkout%", 50, 1000 },
    /* the 200 open counted, 20 alerted: 260 rows (the picked ones' join
     * walked every checkout: 4,240 analysed with dead rows) */
    { "pay_sweeper_overdue",
      "SELECT count(*) FILTER (WHERE checkout_id IS NOT NULL) || ' of '"
      "       || max(unresolved)"
      "  FROM pay_sweeper_overdue('bg', '{stripe}', 600, 20)",
      "20 of 200", "checkout%", 20, 1000 },
    /* the 200 open counted: 201 rows */
    { "pay_executing_stats",
      "SELECT executing FROM pay_executing_stats()", "200", "checkout%",
      200, 1000 },
};

Test(plans_background, the_sweepers_rounds_over_open_sessions_read_about_what_they_take,
     .timeout = 300,
     .description = "4,000 checkouts, 200 of them open sessions, in tables "
                    "never analysed, then analysed with dead rows only: a "
                    "round's look-ups (pay_sweeper_due, 50), its alerts "
                    "(pay_sweeper_overdue, 20) and the executing gauge each "
                    "read under 1,000 rows")
{
    bg_check("checkouts,checkout_sweeps,failed_open_sessions", sessions_setup,
             sessions_calls,
             NCALLS(sessions_calls));
}


/*
 * 4,000 checkouts: one in twenty paid (SUCCESS) with a method to save that
 * never came (200), the others manual-capture holds (AUTHORIZED) made a
 * minute apart from 47.5 hours ago: with a window of 48 hours and a
 * warning an hour before its end, 28 holds are to be warned of, the other
 * 3,772 far from it.
 */
static const char *const methods_setup[] = {
    "SET LOCAL session_replication_role = replica",
    "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
    " amount_total, success_url, cancel_url, status, psp_request, psp_token,"
    " expires_at, created_at, save_method, authorized_at, capture_method)"
    " SELECT 'm_bg', 'co_' || g, 'stripe', 'm_bg:co_' || g, 'EUR', 100,"
    " 'https://shop.example/s', 'https://shop.example/c',"
    " CASE WHEN g % 20 = 0 THEN 'SUCCESS' ELSE 'AUTHORIZED' END::pay_status,"
    " 'r', 'tok_' || g, now() + interval '1 day',"
    " now() - interval '3 hours' + g * interval '1 second',"
    " CASE WHEN g % 20 = 0 THEN '{\"usage\": \"off_session\"}'::jsonb END,"
    " CASE WHEN g % 20 <> 0"
    "      THEN now() - interval '47 hours 30 minutes' + g * interval '1 minute' END,"
    " CASE WHEN g % 20 <> 0 THEN 'manual' ELSE 'automatic' END"
    " FROM generate_series(1, 4000) g",
    "SET LOCAL session_replication_role = origin",
    NULL
};

static const bg_call_t methods_calls[] = {
    /* the 200 unsaved read and sorted, 50 taken: 250 rows */
    { "pay_sweeper_methods_due",
      "SELECT count(*) FROM pay_sweeper_methods_due('bg', '{stripe}', 60, 30, 50)",
      "50", "checkout%", 50, 1000 },
    /* the 200 counted, 20 marked by their places: 220 rows; marked by
     * their keys, the join read the whole primary key and the 200 again
     * for each entry (84,200 rows, analysed with dead rows) */
    { "pay_sweeper_methods_unsaved",
      "SELECT count(*) FILTER (WHERE checkout_id IS NOT NULL) || ' of '"
      "       || max(unsaved)"
      "  FROM pay_sweeper_methods_unsaved('bg', '{stripe}', 600, 20)",
      "20 of 200", "checkout%", 20, 1000 },
    /* the 28 near their end counted and walked, 20 warned: 76 rows; with
     * each PSP's window tested alone, every open hold was read twice
     * (7,620) */
    { "pay_holds_sweep",
      "SELECT count(*) FILTER (WHERE action = 'warning') || ' of '"
      "       || max(expiring)"
      "  FROM pay_holds_sweep('bg', '{stripe}', '{172800}', 3600, 20, NULL)",
      "20 of 28", "checkout%", 20, 1000 },
};

Test(plans_background, the_methods_and_holds_sweeps_read_about_what_they_take,
     .timeout = 300,
     .description = "4,000 checkouts, 200 paid with a method to save that "
                    "never came and 3,800 holds, 28 near their end, in tables "
                    "never analysed, then analysed with dead rows only: the "
                    "methods' look-ups (50) and alerts (20) and the holds' "
                    "warnings (20) each read under 1,000 rows")
{
    bg_check("checkouts,checkout_sweeps", methods_setup, methods_calls,
             NCALLS(methods_calls));
}


/*
 * 4,000 saved methods, one in twenty detached an hour ago and never
 * confirmed by the PSP (200), written directly.
 */
static const char *const detaches_setup[] = {
    "SET LOCAL session_replication_role = replica",
    "INSERT INTO payment_methods (merchant_id, method_id, customer, customer_ref,"
    " psp, token_sealed, token_index, usage, recurring, status, checkout_id,"
    " event_id, detached_at)"
    " SELECT 'm_bg', 'pm_' || translate(lpad(to_hex(g), 24, '0'),"
    "        '0123456789abcdef', 'abcdefghijklmnop'),"
    " 'cust', 'cu_' || lpad(to_hex(g), 24, '0'), 'stripe', 'v1.x',"
    " lpad(to_hex(g), 64, '0'), 'off_session', 'CardOnFile',"
    " CASE WHEN g % 20 = 0 THEN 'detached' ELSE 'active' END, 'co_' || g,"
    " 'evt_' || g,"
    " CASE WHEN g % 20 = 0 THEN now() - interval '1 hour' + g * interval '1 second' END"
    " FROM generate_series(1, 4000) g",
    "SET LOCAL session_replication_role = origin",
    NULL
};

static const bg_call_t detaches_calls[] = {
    /* the 200 unconfirmed counted, then read and sorted, 20 taken: 400
     * rows; joined with their checkouts, every method was read through
     * payment_methods_checkout_key (4,200, analysed with dead rows) */
    { "pay_sweeper_detaches",
      "SELECT count(*) FROM pay_sweeper_detaches('bg', '{stripe}', 60, 60, 20, 5)",
      "20", "payment_methods%", 20, 1000 },
};

Test(plans_background, the_methods_detach_sweep_reads_the_detached,
     .timeout = 300,
     .description = "4,000 saved methods, 200 detached and unconfirmed, in a "
                    "table never analysed, then analysed with dead rows "
                    "only: the sweeper's detaches to send again (20) read "
                    "under 1,000 rows")
{
    bg_check("payment_methods", detaches_setup, detaches_calls,
             NCALLS(detaches_calls));
}


/*
 * 4,000 checkouts held for review, written directly, their deadlines a
 * second apart from a minute ago: 60 past it.
 */
static const char *const reviews_setup[] = {
    "SET LOCAL session_replication_role = replica",
    "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
    " amount_total, success_url, cancel_url, status, psp_request,"
    " expires_at, created_at)"
    " SELECT 'm_bg', 'co_' || g, 'stripe', 'm_bg:co_' || g, 'EUR', 100,"
    " 'https://shop.example/s', 'https://shop.example/c', 'REVIEW',"
    " 'r', now() + interval '1 day',"
    " now() - interval '3 hours' + g * interval '1 second'"
    " FROM generate_series(1, 4000) g",
    "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, source,"
    " decided_at, review_until)"
    " SELECT 'm_bg', 'co_' || g, 'review', 'provider',"
    " now() - interval '3 hours', now() - interval '1 minute' + g * interval '1 second'"
    " FROM generate_series(1, 4000) g",
    "SET LOCAL session_replication_role = origin",
    NULL
};

static const bg_call_t reviews_calls[] = {
    /* the 20 oldest past their deadline, each rejected by its keys: 120
     * rows; each rejection's look-up of its review by key went through
     * the queue's index (checkout_risk_open_reviews) and read every open
     * review (79,910) */
    { "pay_review_expire",
      "SELECT count(*) FROM pay_review_expire(20, '{}')", "20", "checkout%",
      20, 1000 },
};

Test(plans_background, the_review_expiry_reads_what_it_expires,
     .timeout = 300,
     .description = "4,000 checkouts held for review, 60 past their "
                    "deadline, in tables never analysed, then analysed with "
                    "dead rows only: the sweeper's expiry of 20 reads under "
                    "1,000 rows")
{
    bg_check("checkouts,checkout_risk", reviews_setup, reviews_calls,
             NCALLS(reviews_calls));
}


/*
 * 4,000 checkouts the risk check asked about before their PSP, in the
 * last 3 hours, a second apart, written directly: one in five never paid
 * (EXECUTING), one in fifty paid and not yet asked after its payment
 * (80: each on the round's due list, checkout_risk_after_due, as the
 * payment's commit leaves it), the rest paid and asked after (their
 * checkout_risk_after rows).
 */
static const char *const risk_after_setup[] = {
    "SET LOCAL session_replication_role = replica",
    "INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,"
    " amount_total, success_url, cancel_url, status, psp_request,"
    " expires_at, created_at)"
    " SELECT 'm_bg', 'co_' || g, 'stripe', 'm_bg:co_' || g, 'EUR', 100,"
    " 'https://shop.example/s', 'https://shop.example/c',"
    " CASE WHEN g % 5 = 1 THEN 'EXECUTING' ELSE 'SUCCESS' END::pay_status,"
    " 'r', now() + interval '1 day',"
    " now() - interval '3 hours' + g * interval '1 second'"
    " FROM generate_series(1, 4000) g",
    "INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score,"
    " reason, source, decided_at)"
    " SELECT 'm_bg', 'co_' || g, 'allow', 10, 'ok', 'provider',"
    " now() - interval '3 hours' + g * interval '1 second'"
    " FROM generate_series(1, 4000) g",
    "INSERT INTO checkout_risk_after (merchant_id, checkout_id, verdict,"
    " score, reason, source)"
    " SELECT 'm_bg', 'co_' || g, 'allow', 10, 'ok', 'provider'"
    " FROM generate_series(1, 4000) g WHERE g % 5 <> 1 AND g % 50 <> 0",
    "INSERT INTO checkout_risk_after_due (merchant_id, checkout_id,"
    " decided_at)"
    " SELECT 'm_bg', 'co_' || g, now() - interval '3 hours' + g * interval '1 second'"
    " FROM generate_series(1, 4000) g WHERE g % 50 = 0",
    "SET LOCAL session_replication_role = origin",
    NULL
};

static const bg_call_t risk_after_calls[] = {
    /* the 50 oldest of the 80 due, each read by its keys: 110 rows.
     * Before (migration 137): the round walked the week's first checks
     * in their order (checkout_risk_decided) and read each one's checkout
     * and after verdict to pass over the unpaid and the asked: 10,320
     * rows never analysed, 8,146,983 analysed with dead rows, to take 50 */
    { "pay_risk_after_due",
      "SELECT count(*) FROM pay_risk_after_due(50, 604800)", "50",
      "checkout%", 50, 1000 },
};

Test(plans_background, the_risk_after_round_reads_what_is_due,
     .timeout = 300,
     .description = "4,000 checkouts asked about before their PSP, 3,200 "
                    "paid, 80 of them not yet asked after, in tables never "
                    "analysed, then analysed with dead rows only: the "
                    "round's 50 read under 1,000 rows")
{
    bg_check("checkouts,checkout_risk,checkout_risk_after,checkout_risk_after_due",
             risk_after_setup, risk_after_calls, NCALLS(risk_after_calls));
}


/*
 * 3,000 events kept pending for want of an owner (a merchant not here),
 * received now: young, so a retry leaves them pending.
 */
static const char *const inbox_setup[] = {
    "DO $$ BEGIN FOR i IN 1..3000 LOOP"
    "   PERFORM pay_event_keep('stripe', 'evt_' || i, 'CAPTURED',"
    "       'checkout.session.completed', 'cs_' || i, 'm_gone:co_' || i, 1500,"
    "       'USD', 'pi_' || i, '', ARRAY['cs_' || i], convert_to('{}', 'UTF8'),"
    "       '{}', 'k1');"
    " END LOOP; END $$",
    NULL
};

static const bg_call_t inbox_calls[] = {
    /* the 100 oldest walked, each applied again and left pending (none
     * returned): 100 rows; planned on dead rows, the walk read every
     * pending event and sorted them (3,000) */
    { "pay_inbox_retry",
      "SELECT count(*) FROM pay_inbox_retry(3600, 100)", "0", "psp_events%",
      100, 1000 },
    /* the 100 oldest, each marked tried by its place: 100 rows; marked
     * by a join on their keys, the partition's whole primary key was read
     * for each (300,100, analysed with dead rows) */
    { "pay_inbox_homeless",
      "SELECT count(*) FROM pay_inbox_homeless(3600, 0, 100)", "100",
      "psp_events%", 100, 1000 },
};

Test(plans_background, the_inbox_steps_read_about_their_limit,
     .timeout = 300,
     .description = "3,000 pending events of a merchant not here, in the "
                    "inbox's partitions never analysed, then analysed with "
                    "dead rows only: a retry step of 100 and a homeless step "
                    "of 100 each read under 1,000 rows of psp_events")
{
    bg_check("psp_events", inbox_setup, inbox_calls, NCALLS(inbox_calls));
}


/*
 * 4,000 done idempotency keys past their time, 4,000 notifications
 * delivered 40 days ago a minute apart (all past the purge's 30 days),
 * 4,000 wallet credits of 50 sellers.
 */
static const char *const housekeeping_setup[] = {
    "INSERT INTO idempotency_keys (merchant_id, idem_key, fingerprint, state,"
    " lease, checkout_id, response_status, response_body, expires_at)"
    " SELECT 'm_bg', 'k' || g, repeat('a', 64), 'done', 1, 'co_' || g, 201,"
    " '{}', now() - interval '1 hour' - g * interval '1 second'"
    " FROM generate_series(1, 4000) g",
    "INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host,"
    " event_types, secret_sealed)"
    " VALUES ('m_bg', 'ep_' || left(md5('bg'), 24), 'https://shop.example/hooks',"
    " 'shop.example', '{}', 'v1.k.sealed-x')",
    "INSERT INTO notifications (merchant_id, notification_id, endpoint_id,"
    " event_type, checkout_id, object_id, sequence, payload, status,"
    " delivered_at, created_at)"
    " SELECT 'm_bg', 'msg_' || substr(md5('bg' || g), 1, 24),"
    " 'ep_' || left(md5('bg'), 24), 'checkout.succeeded', 'co' || g, 'co' || g,"
    " 1, '{}', 'DELIVERED',"
    " now() - interval '40 days' + g * interval '1 minute',"
    " now() - interval '40 days' + g * interval '1 minute'"
    " FROM generate_series(1, 4000) g",
    "INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)"
    " SELECT 'm_bg', 'seller_' || (g % 50), 'EUR', 100"
    " FROM generate_series(1, 4000) g",
    NULL
};

static const bg_call_t housekeeping_calls[] = {
    /* 100 keys and 100 notifications, each found by its expiry: 200 rows
     * (a sequential scan counts here too, which the plans suite's
     * purge test, by index entries, does not see) */
    { "pay_purge", "SELECT pay_purge(100)", "200",
      "idempotency_keys", 100, 1000 },
    { "pay_purge", "SELECT pay_purge(100)", "200", "notifications", 100, 1000 },
    /* the notifier's gauges: none PENDING nor FAILED, nothing read (the
     * delivered ones are in neither index) */
    { "pay_notify_stats",
      "SELECT pending || ' ' || failed FROM pay_notify_stats()", "0 0",
      "notifications", 0, 1000 },
    /* 100 credits taken by their places: 100 rows; joined with the
     * picked ones, every credit was read (4,100, never analysed) */
    { "pay_wallets_fold", "SELECT pay_wallets_fold(100)", "100",
      "wallet_credits", 100, 1000 },
};

Test(plans_background, the_housekeeping_reads_what_it_folds_and_purges,
     .timeout = 300,
     .description = "4,000 expired keys, 4,000 delivered notifications and "
                    "4,000 wallet credits, in tables never analysed, then "
                    "analysed with dead rows only: a purge of 100 of each, "
                    "the notifier's gauges and a fold of 100 credits each "
                    "read under 1,000 rows of each table")
{
    bg_check("idempotency_keys,notifications,wallet_credits",
             housekeeping_setup, housekeeping_calls,
             NCALLS(housekeeping_calls));
}
