-- A ledger transaction balances at commit: at least two entries, and zero
-- in each currency.  Runs once per transaction (the deferred trigger on
-- ledger_transactions); each statement writing entries is checked when it
-- ends (ledger_entries_balanced), so this one finds a transaction left
-- without its entries.
CREATE OR REPLACE FUNCTION ledger_balanced()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_entries  bigint;
    v_min      text;
    v_max      text;
    v_sum      numeric;
BEGIN
    -- one aggregate; the verdict (ledger_balance_check) only for what it flags
    SELECT count(*), min(e.currency), max(e.currency), sum(e.amount)
      INTO v_entries, v_min, v_max, v_sum
      FROM ledger_entries e
     WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id;
    IF v_entries < 2 OR v_min <> v_max OR v_sum <> 0 THEN
        PERFORM ledger_balance_check(NEW.merchant_id, NEW.txn_id);
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION ledger_balanced() FROM PUBLIC;

-- The trigger that runs it at commit, on every ledger transaction stored.
-- A constraint trigger cannot be replaced: it is created when absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.ledger_transactions'::regclass AND tgname = 'ledger_transactions_balanced') THEN
        CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT
            ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW
            EXECUTE FUNCTION ledger_balanced();
    END IF;
END
$$;
