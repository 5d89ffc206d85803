-- ledger_entries: ledger_entries_account, ledger_entries_amount, ledger_entries_currency
CREATE OR REPLACE FUNCTION ledger_entries_row_checks(account text, amount bigint, currency text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (length(account) <@ int4range(1, 200, '[]')) THEN 'ledger_entries_account'
        WHEN NOT (amount <> 0) THEN 'ledger_entries_amount'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'ledger_entries_currency'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "ledger_entries" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'ledger_entries', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION ledger_entries_row_checks(account text, amount bigint, currency text) FROM PUBLIC;

-- The CHECK that runs it on every row of ledger_entries written, added when
-- the table does not have it yet (a table made before this file was applied,
-- or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.ledger_entries'::regclass AND conname = 'ledger_entries_row_checks') THEN
        ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_row_checks
            CHECK (ledger_entries_row_checks(account, amount, currency));
    END IF;
END
$$;
