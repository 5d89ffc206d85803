-- ledger_transactions: ledger_transactions_kind, ledger_transactions_owner
CREATE OR REPLACE FUNCTION ledger_transactions_row_checks(checkout_id text, payment_order_id text, kind text, object_id text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (kind = ANY (ARRAY['payment'::text, 'refund'::text, 'dispute'::text, 'payout'::text, 'fee'::text])) THEN 'ledger_transactions_kind'
        WHEN NOT ((((kind = 'payout'::text) = (payment_order_id IS NULL)) OR (kind = 'fee'::text)) AND ((payment_order_id IS NULL) = (checkout_id IS NULL)) AND ((kind = 'payment'::text) OR (object_id IS NOT NULL))) THEN 'ledger_transactions_owner'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "ledger_transactions" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'ledger_transactions', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION ledger_transactions_row_checks(checkout_id text, payment_order_id text, kind text, object_id text) FROM PUBLIC;

-- The CHECK that runs it on every row of ledger_transactions written, added
-- when the table does not have it yet (a table made before this file was
-- applied, or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.ledger_transactions'::regclass AND conname = 'ledger_transactions_row_checks') THEN
        ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_row_checks
            CHECK (ledger_transactions_row_checks(checkout_id, payment_order_id, kind, object_id));
    END IF;
END
$$;
