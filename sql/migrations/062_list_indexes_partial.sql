-- The lists' indexes (merchant, created_at, id) are made partial on
-- created_at IS NOT NULL, which every row meets.  As full indexes they
-- could serve an equality on the table's key (merchant, id) by reading
-- every entry of the merchant; a foreign-key check planned while its table
-- was nearly empty could take one of them, and a connection keeps that
-- plan for its life, each check then growing with the merchant's rows.
-- A query can use a partial index only when its own conditions imply the
-- predicate: the list pages say created_at IS NOT NULL, foreign-key
-- checks never do.  Each index is built anew, reading its table once.

DROP INDEX IF EXISTS checkouts_list;
CREATE INDEX checkouts_list
    ON checkouts (merchant_id, created_at, checkout_id) WHERE created_at IS NOT NULL;
DROP INDEX IF EXISTS payment_orders_list;
CREATE INDEX payment_orders_list
    ON payment_orders (merchant_id, created_at, payment_order_id) WHERE created_at IS NOT NULL;
DROP INDEX IF EXISTS refunds_list;
CREATE INDEX refunds_list
    ON refunds (merchant_id, created_at, refund_id) WHERE created_at IS NOT NULL;
DROP INDEX IF EXISTS payouts_list;
CREATE INDEX payouts_list
    ON payouts (merchant_id, created_at, payout_id) WHERE created_at IS NOT NULL;
