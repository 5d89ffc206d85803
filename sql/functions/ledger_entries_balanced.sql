-- Each ledger transaction an INSERT into ledger_entries wrote to balances
-- when the statement ends: at least two entries, and zero in each currency
-- (its entries, those before the statement too).  Once per statement, over
-- its rows (the transition table), not once per row at commit: a paid
-- order's entries are one statement, and the per-row check ran the same
-- sum three or four times a booking.  A transaction's entries are written
-- in one statement (ledger_book, pay_webhook_apply_core, recon_book_fee);
-- one written in parts is refused at its first part.  That a transaction
-- has entries at all is checked at commit (ledger_balanced, on
-- ledger_transactions).
CREATE OR REPLACE FUNCTION ledger_entries_balanced()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    r  record;
BEGIN
    -- each transaction written: one aggregate; the verdict
    -- (ledger_balance_check) only for what it flags
    FOR r IN SELECT t.merchant_id, t.txn_id
               FROM (SELECT DISTINCT n.merchant_id, n.txn_id FROM new_entries n) t
              CROSS JOIN LATERAL (
                    SELECT count(*) AS n, min(e.currency) AS lo, max(e.currency) AS hi,
                           sum(e.amount) AS s
                      FROM ledger_entries e
                     WHERE e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id) x
              WHERE x.n < 2 OR x.lo <> x.hi OR x.s <> 0
    LOOP
        PERFORM ledger_balance_check(r.merchant_id, r.txn_id);
    END LOOP;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION ledger_entries_balanced() FROM PUBLIC;

-- The trigger that runs it, after every statement that writes entries.
CREATE OR REPLACE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT
    EXECUTE FUNCTION ledger_entries_balanced();
