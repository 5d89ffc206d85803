-- The row checks of checkouts, payment_orders and idempotency_keys take
-- their row whole (<table>_row_checks(<table>.*)) instead of a column each:
-- PostgreSQL reads a CHECK's expression back and plans it at every
-- statement that writes its table, and a registration writes these three
-- seven times.  The CHECKs that call the earlier signatures go with those
-- signatures; the functions' files add them again with the new ones, which
-- reads every row of the three tables once.

ALTER TABLE checkouts DROP CONSTRAINT IF EXISTS checkouts_row_checks;
DROP FUNCTION IF EXISTS checkouts_row_checks(text, text, text, text, text, bigint,
    text, text, text, text, text, text, text);

ALTER TABLE payment_orders DROP CONSTRAINT IF EXISTS payment_orders_row_checks;
DROP FUNCTION IF EXISTS payment_orders_row_checks(text, integer, text, bigint, text,
    pay_status, boolean, boolean, bigint, bigint);

ALTER TABLE idempotency_keys DROP CONSTRAINT IF EXISTS idempotency_keys_row_checks;
DROP FUNCTION IF EXISTS idempotency_keys_row_checks(text, text, text, bigint,
    timestamptz, integer, text);
