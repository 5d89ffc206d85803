-- payment_orders: payment_orders_amount, payment_orders_booked_iff_success, payment_orders_captured, payment_orders_commission, payment_orders_currency, payment_orders_id_format, payment_orders_line_no, payment_orders_seller_format
CREATE OR REPLACE FUNCTION payment_orders_row_checks(r payment_orders)
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
        WHEN NOT (r.amount > 0) THEN 'payment_orders_amount'
        WHEN NOT ((r.ledger_updated = (r.status = 'SUCCESS'::public.pay_status)) AND (r.wallet_updated = (r.status = 'SUCCESS'::public.pay_status))) THEN 'payment_orders_booked_iff_success'
        WHEN NOT ((r.amount_captured >= 0) AND (r.amount_captured <= r.amount)) THEN 'payment_orders_captured'
        WHEN NOT ((r.commission >= 0) AND (r.commission <= r.amount)) THEN 'payment_orders_commission'
        WHEN NOT (r.currency ~ '^[A-Z]{3}$'::text) THEN 'payment_orders_currency'
        WHEN NOT ((length(r.payment_order_id) <@ int4range(1, 40, '[]')) AND (r.payment_order_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'payment_orders_id_format'
        WHEN NOT (r.line_no > 0) THEN 'payment_orders_line_no'
        WHEN NOT ((length(r.seller_account) <@ int4range(1, 64, '[]')) AND (r.seller_account ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'payment_orders_seller_format'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "payment_orders" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'payment_orders', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION payment_orders_row_checks(r payment_orders) FROM PUBLIC;

-- The CHECK that runs it on every row of payment_orders written, added when the
-- table does not have it yet (a table made before this file was applied, or a
-- migration that dropped it to change its arguments).  It passes the row
-- whole: PostgreSQL reads a CHECK's expression back and plans it at every
-- statement that writes the table, and a call with one whole-row argument
-- reads back in a fraction of the instructions of a call with a column each
-- (bench/RESULTS.md; the tables with two to five checked columns keep their
-- list, which costs less there than forming the row).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.payment_orders'::regclass AND conname = 'payment_orders_row_checks') THEN
        ALTER TABLE payment_orders ADD CONSTRAINT payment_orders_row_checks
            CHECK (payment_orders_row_checks(payment_orders.*));
    END IF;
END
$$;
