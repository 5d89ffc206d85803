-- Each ledger transaction an INSERT into ledger_entries wrote to exists
-- and balances when the statement ends: at least two entries, and zero in
-- each currency (its entries, those before the statement too).  Once per
-- statement, over its rows (the transition table), not once per row at
-- commit: a paid order's entries are one statement, and the per-row check
-- ran the same sum three or four times a booking.  A transaction's entries
-- are written in one statement (ledger_book, pay_webhook_apply_core,
-- recon_book_fee); one written in parts is refused at its first part.  That
-- a transaction has entries at all is checked at commit (ledger_balanced,
-- on ledger_transactions).
--
-- That the transaction exists is what the foreign key of ledger_entries to
-- ledger_transactions checked (23503, the rule ledger_entries_txn), at the
-- same moment (a foreign key is checked when its statement ends), in the
-- same join: the foreign key was a look-up of its own and a KEY SHARE lock
-- on the transaction's row for every entry, four a paid webhook (migration
-- 100).  Its other half, that a transaction with entries is never deleted
-- or re-keyed, holds without a lock: ledger_transactions only grows
-- (evidence_append_only refuses UPDATE, DELETE and TRUNCATE).
--
-- Both look-ups are by key whatever the ledger held when the statement was
-- planned (a connection plans it once, at its first booking): the
-- transaction's row in a lateral subquery the planner cannot turn into a
-- join (OFFSET 0), and no sequential scan (enable_seqscan off, as
-- audit_append).  Planned on an empty ledger, the look-up was a hash join
-- over a scan of every transaction, at every booking, until an ANALYZE:
-- 1.3 ms and 67 blocks a webhook after 3,000 of them (bench/RESULTS.md);
-- planned on a small ledger analysed, the entries were scanned whole too
-- (tests/e2e/test_plans.c).
CREATE OR REPLACE FUNCTION ledger_entries_balanced()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    r  record;
BEGIN
    -- each transaction written: its row and one aggregate; the verdict
    -- (ledger_balance_check) only for what it flags
    FOR r IN SELECT t.merchant_id, t.txn_id, lt.txn_id IS NULL AS missing
               FROM (SELECT DISTINCT n.merchant_id, n.txn_id FROM new_entries n) t
               LEFT JOIN LATERAL (
                    SELECT l.txn_id FROM ledger_transactions l
                     WHERE l.merchant_id = t.merchant_id AND l.txn_id = t.txn_id
                    OFFSET 0) lt ON true
              CROSS JOIN LATERAL (
                    SELECT count(*) AS n, min(e.currency) AS lo, max(e.currency) AS hi,
                           sum(e.amount) AS s
                      FROM ledger_entries e
                     WHERE e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id) x
              WHERE lt.txn_id IS NULL OR x.n < 2 OR x.lo <> x.hi OR x.s <> 0
    LOOP
        IF r.missing THEN
            RAISE EXCEPTION 'ledger entries of no transaction: %/% is not in ledger_transactions',
                r.merchant_id, r.txn_id
                USING ERRCODE = 'foreign_key_violation', TABLE = 'ledger_entries',
                      CONSTRAINT = 'ledger_entries_txn';
        END IF;
        PERFORM ledger_balance_check(r.merchant_id, r.txn_id);
    END LOOP;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION ledger_entries_balanced() FROM PUBLIC;

-- The trigger that runs it, after every statement that writes entries.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON public.ledger_entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_entries_balanced()');
