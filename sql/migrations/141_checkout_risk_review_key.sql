-- A review's verdict names the key that registered its checkout.
--
-- A person's approval or rejection (pay_review_approve, pay_review_reject)
-- takes the registration's key first (doc/MONEY.md, "Lock order"): the
-- one stored with the checkout, at its created_at, not a younger cancel's
-- naming the same checkout.  Nothing indexes the keys by their checkout,
-- so that look-up read every key the merchant holds (test
-- plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants:
-- 220 keys read for one approval).  An index of the keys by checkout would
-- cost every registration and every money move an index entry for the
-- reviews' sake; the verdict is written under that key's lease instead
-- (risk_verdict_record), so a review's row says it (review_key), and the
-- key is read by its own key.
--
-- The reviews held or approved when this runs get theirs by the look-up
-- they made so far: one pass over the keys, once.  checkout_risk and
-- idempotency_keys are read, checkout_risk's held reviews written; the
-- locks are waited for at most 5 s: past that the migration fails,
-- nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE checkout_risk ADD COLUMN review_key text;
COMMENT ON COLUMN checkout_risk.review_key IS
    'A review''s: the Idempotency-Key that registered the checkout (the verdict is written under its lease), which an approval or a rejection takes first; NULL for other verdicts, and for reviews decided before migration 141.';

UPDATE checkout_risk r SET review_key = ik.idem_key
  FROM checkouts ck, idempotency_keys ik
 WHERE r.verdict = 'review' AND (r.reviewed IS NULL OR r.reviewed = 'approved')
   AND ck.merchant_id = r.merchant_id AND ck.checkout_id = r.checkout_id
   AND ik.merchant_id = ck.merchant_id AND ik.checkout_id = ck.checkout_id
   AND ik.created_at = ck.created_at;
