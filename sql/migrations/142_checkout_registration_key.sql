-- A checkout names the key that registered it.
--
-- A cancel that meets a checkout still EXECUTING without a session
-- (pay_cancel_claim) asks whether its registration holds its key's lease
-- (its PSP call may be making a session the cancel would not see).  That
-- key was found by the checkout it names, and nothing indexes the keys by
-- their checkout: the look-up read every key the merchant holds within
-- their TTL, with the checkout locked meanwhile (test
-- plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants:
-- 274 keys read for one cancel).  An index of the keys by checkout would
-- cost every registration and every money move an index entry; the
-- checkout's row gets the key instead (pay_claim writes it with the row:
-- no index, a few bytes), and the key is read by its own key.
--
-- The checkouts a registration or an approval may still hold when this
-- runs get theirs by the look-up the cancel made so far, once: those
-- EXECUTING with no session yet (found by checkouts_executing_since), and
-- those held for review (their verdict names the key since migration
-- 141).  The others never meet that question again: a session, once
-- stored, stays.  No trigger of checkouts fires on this column.  The
-- locks are waited for at most 5 s: past that the migration fails,
-- nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE checkouts ADD COLUMN idem_key text;
COMMENT ON COLUMN checkouts.idem_key IS
    'The Idempotency-Key that registered the checkout (pay_claim, in the transaction that stored the row), whose lease a cancel asks about while the checkout has no session; NULL on checkouts that had their session, or were decided, before migration 142.';

UPDATE checkouts ck SET idem_key = ik.idem_key
  FROM idempotency_keys ik
 WHERE ck.status = 'EXECUTING' AND ck.psp_token IS NULL
   AND ik.merchant_id = ck.merchant_id AND ik.checkout_id = ck.checkout_id
   AND ik.created_at = ck.created_at;
UPDATE checkouts ck SET idem_key = r.review_key
  FROM checkout_risk r
 WHERE r.review_key IS NOT NULL
   AND ck.merchant_id = r.merchant_id AND ck.checkout_id = r.checkout_id
   AND ck.status = 'REVIEW';
