-- A seller's refunds in flight read by its key, not the merchant's.
--
-- What a seller holds back for its refunds in flight (seller_available:
-- every refund's claim, every pay-out's claim and its balance trigger)
-- walked the merchant's every PENDING refund, each seller's, by
-- refunds_pending (the merchant), and looked up each one's order to keep
-- the seller's; and what an order holds (order_seller_hold_parts) took
-- refunds_pending by the merchant too, filtering the order, when planned
-- while the table was small.  Both grew with the merchant's refunds in
-- flight at every seller (test
-- plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants:
-- a pay-out read 254 refunds and 84 orders with 40 in flight elsewhere).
--
-- So a refund says its order's seller (refunds.seller_account, written by
-- the trigger refunds_seller on every new refund), required while it is
-- PENDING; the refunds in flight when this runs get theirs from their
-- orders, refunds settled before keep NULL (nothing reads a settled
-- refund's seller).  refunds_pending_seller
-- finds a seller's refunds in flight, and an order's (whose look-ups name
-- its seller and currency too: refunds_order, the order leading, would
-- serve them, but a plan made on small tables takes the partial index
-- by its leading columns and filters the rest).  refunds_pending goes:
-- nothing else walks a merchant's refunds in flight.
--
-- The index is built in one pass over refunds, which holds off writes to
-- the table meanwhile; the lock is waited for at most 5 s: past that the
-- migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE refunds ADD COLUMN seller_account text;
COMMENT ON COLUMN refunds.seller_account IS
    'The seller of the refund''s order (who bears it), written on insert (trigger refunds_seller); NULL only on refunds settled before migration 140.';
-- the refunds in flight get their orders' sellers, found by refunds_pending
-- (before it goes), with the table's triggers off for that statement: a
-- column filled in is no change of the refund, whose updated_at
-- (money_status_forward's stamp) stays
ALTER TABLE refunds DISABLE TRIGGER USER;
UPDATE refunds r SET seller_account = po.seller_account
  FROM payment_orders po
 WHERE po.merchant_id = r.merchant_id AND po.payment_order_id = r.payment_order_id
   AND r.status = 'PENDING';
ALTER TABLE refunds ENABLE TRIGGER USER;
-- NOT VALID: every row holds it after the statement above, and a
-- validating scan would hold the table's lock for as long as it reads
-- every refund (test sql::this_releases_checks_on_existing_tables_...);
-- new and changed rows are checked all the same
ALTER TABLE refunds ADD CONSTRAINT refunds_seller_when_pending
    CHECK (status <> 'PENDING' OR seller_account IS NOT NULL) NOT VALID;

DROP INDEX IF EXISTS refunds_pending;
CREATE INDEX refunds_pending_seller
    ON refunds (merchant_id, seller_account, currency, payment_order_id)
    WHERE status = 'PENDING';
