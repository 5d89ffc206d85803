-- payment_orders: payment_orders_amount, payment_orders_booked_iff_success, payment_orders_captured, payment_orders_commission, payment_orders_currency, payment_orders_id_format, payment_orders_line_no, payment_orders_seller_format
CREATE OR REPLACE FUNCTION payment_orders_row_checks(payment_order_id text, line_no integer, seller_account text, amount bigint, currency text, status pay_status, ledger_updated boolean, wallet_updated boolean, commission bigint, amount_captured bigint)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (amount > 0) THEN 'payment_orders_amount'
        WHEN NOT ((ledger_updated = (status = 'SUCCESS'::public.pay_status)) AND (wallet_updated = (status = 'SUCCESS'::public.pay_status))) THEN 'payment_orders_booked_iff_success'
        WHEN NOT ((amount_captured >= 0) AND (amount_captured <= amount)) THEN 'payment_orders_captured'
        WHEN NOT ((commission >= 0) AND (commission <= amount)) THEN 'payment_orders_commission'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'payment_orders_currency'
        WHEN NOT ((length(payment_order_id) >= 1) AND (length(payment_order_id) <= 40) AND (payment_order_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'payment_orders_id_format'
        WHEN NOT (line_no > 0) THEN 'payment_orders_line_no'
        WHEN NOT ((length(seller_account) >= 1) AND (length(seller_account) <= 64) AND (seller_account ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'payment_orders_seller_format'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "payment_orders" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'payment_orders', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION payment_orders_row_checks(payment_order_id text, line_no integer, seller_account text, amount bigint, currency text, status pay_status, ledger_updated boolean, wallet_updated boolean, commission bigint, amount_captured bigint) FROM PUBLIC;

-- The CHECK that runs it on every row of payment_orders written, added when
-- the table does not have it yet (a table made before this file was applied,
-- or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.payment_orders'::regclass AND conname = 'payment_orders_row_checks') THEN
        ALTER TABLE payment_orders ADD CONSTRAINT payment_orders_row_checks
            CHECK (payment_orders_row_checks(payment_order_id, line_no, seller_account, amount, currency, status, ledger_updated, wallet_updated, commission, amount_captured));
    END IF;
END
$$;
