-- The claims return more columns than before (a resume's age, the settled
-- outcome of a refund or pay-out): a function's result type cannot be
-- replaced, so the earlier definitions are dropped here and the current
-- ones, in sql/functions/, are created after the migrations.  On a new
-- database there is nothing to drop.

SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_claim(text, text, text, int, int, text, text, text, bigint,
                                  text, text, text, bigint, text, jsonb, text);
DROP FUNCTION IF EXISTS pay_refund_claim(text, text, text, int, int, text, text, bigint,
                                         text, text);
DROP FUNCTION IF EXISTS pay_payout_claim(text, text, text, int, int, text, text, bigint,
                                         text, text);

-- A seller's available balance holds back its share of PENDING refunds
-- (seller_available): PENDING refunds are found by merchant, few at a time.
CREATE INDEX IF NOT EXISTS refunds_pending ON refunds (merchant_id)
    WHERE status = 'PENDING';
