-- checkout_risk_open_reviews (056: the review queue's index of the
-- undecided reviews by deadline) is for the queue alone.  Its predicate
-- (verdict = 'review' AND reviewed IS NULL) is what every decision's look-up
-- of its row by key says too (pay_review_reject, pay_cancel_finish: UPDATE
-- ... WHERE merchant_id = $1 AND checkout_id = $2 AND verdict = 'review' AND
-- reviewed IS NULL), and planned while the table was never analysed, or
-- analysed while it held only dead rows, the look-up went through this
-- index and read every open review to find its one: the sweeper's expiry of
-- 20 reviews of 4,000 open read 79,910 rows (test
-- plans_background::the_review_expiry_reads_what_it_expires), and each
-- decision through the API read the whole queue.  Now the index also says
-- review_until IS NOT NULL, which the queue's reads say (pay_review_list;
-- pay_review_expire's review_until <= now() implies it) and no look-up by
-- key does, so no look-up by key can use it.  Every review has its
-- deadline (checkout_risk_review: verdict review exactly when
-- review_until is set): the index holds the same rows.
--
-- The index is built in one pass over checkout_risk, which holds off
-- writes to the table meanwhile (as 134's did); the lock is waited for at
-- most 5 s instead of queueing every registration behind a long
-- transaction: past that the migration fails, nothing of it applied, and
-- is run again.
SET LOCAL lock_timeout = '5s';

DROP INDEX IF EXISTS checkout_risk_open_reviews;
CREATE INDEX checkout_risk_open_reviews ON checkout_risk (review_until)
    WHERE verdict = 'review' AND reviewed IS NULL AND review_until IS NOT NULL;
