-- The tables that name a checkout by foreign key get an index on it.
--
-- A registration its PSP never took (its circuit open, its credentials
-- refused, a limit: pay_abandon) is undone by deleting its checkout, and
-- PostgreSQL checks every foreign key that references the row: with no
-- index on (merchant_id, checkout_id), each check read the whole table,
-- every merchant's rows.  One abandon read every row of psp_tokens (and
-- once more for its own delete there), psp_payments and disputes (test
-- plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants:
-- 234, 114 and 42 rows with a few hundred checkouts), so that a PSP's
-- outage, when every registration to it is abandoned, would have read
-- those tables whole once a request.  Test
-- plans::every_foreign_key_to_a_table_whose_rows_go_has_an_index_on_its_columns
-- keeps it so for every key.  Checkout first, as captures_checkout and
-- refunds_order lead with the row's own id, not the merchant's prefix.
--
-- Each index is built in one pass over its table, which holds off writes
-- to it meanwhile (a registration's session is stored in psp_tokens: on
-- a large table, run it at a quiet hour); the locks are waited for at
-- most 5 s: past that the migration fails, nothing of it applied, and is
-- run again.
SET LOCAL lock_timeout = '5s';

CREATE INDEX psp_tokens_checkout ON psp_tokens (checkout_id, merchant_id);
CREATE INDEX psp_payments_checkout ON psp_payments (checkout_id, merchant_id);
CREATE INDEX disputes_checkout ON disputes (checkout_id, merchant_id);
