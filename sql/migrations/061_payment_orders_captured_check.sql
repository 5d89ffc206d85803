-- A manual-capture order never has more captured than it authorized (its
-- amount): payment_orders' row check takes amount_captured.  The CHECK
-- that calls the row check's earlier signature goes with that signature;
-- the function's file adds the CHECK again with the new one, which reads
-- every row of payment_orders once.

ALTER TABLE payment_orders DROP CONSTRAINT IF EXISTS payment_orders_row_checks;

DROP FUNCTION IF EXISTS payment_orders_row_checks(text, integer, text, bigint,
    text, pay_status, boolean, boolean, bigint);
