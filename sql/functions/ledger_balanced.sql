-- A ledger transaction balances: at least two entries, and zero in each
-- currency.  One query (it runs at commit for every ledger row: three or
-- four times per paid order).
CREATE OR REPLACE FUNCTION ledger_balanced()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_entries  int;
    v_bad      text;
BEGIN
    SELECT coalesce(sum(x.n), 0), min(x.currency) FILTER (WHERE x.s <> 0)
      INTO v_entries, v_bad
      FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS s
              FROM ledger_entries e
             WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id
             GROUP BY e.currency) x;

    IF v_entries < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction %/% is not balanced (% entries, % off)',
            NEW.merchant_id, NEW.txn_id, v_entries, coalesce(v_bad, '-')
            USING ERRCODE = 'PY006';
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION ledger_balanced() FROM PUBLIC;

-- The triggers that run it at commit, on every ledger row stored.  A
-- constraint trigger cannot be replaced: each is created when absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.ledger_entries'::regclass AND tgname = 'ledger_entries_balanced') THEN
        CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT
            ON ledger_entries DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW
            EXECUTE FUNCTION ledger_balanced();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.ledger_transactions'::regclass AND tgname = 'ledger_transactions_balanced') THEN
        CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT
            ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW
            EXECUTE FUNCTION ledger_balanced();
    END IF;
END
$$;
