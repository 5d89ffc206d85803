-- wallet_credits: wallet_credits_amount, wallet_credits_currency
CREATE OR REPLACE FUNCTION wallet_credits_row_checks(currency text, amount bigint)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (amount <> 0) THEN 'wallet_credits_amount'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'wallet_credits_currency'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "wallet_credits" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'wallet_credits', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION wallet_credits_row_checks(currency text, amount bigint) FROM PUBLIC;

-- The CHECK that runs it on every row of wallet_credits written, added when
-- the table does not have it yet (a table made before this file was applied,
-- or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.wallet_credits'::regclass AND conname = 'wallet_credits_row_checks') THEN
        ALTER TABLE wallet_credits ADD CONSTRAINT wallet_credits_row_checks
            CHECK (wallet_credits_row_checks(currency, amount));
    END IF;
END
$$;
