-- A checkout that asked to save the shopper's method, paid (or its hold
-- authorized), whose PSP event saying the method was stored was lost while
-- the payment's own came: nothing saved it.  The sweeper now asks the PSP
-- for the method (pay_sweeper_methods_due) and lists for a person those
-- still without one past alert= (pay_sweeper_methods_unsaved).
--
-- checkouts.method_saved_at is set when the checkout's method is saved
-- (pay_method_saved_apply, the webhook's and the sweeper's alike); the
-- partial index holds the paid checkouts still without it, so a round
-- reads those few and never the long history of methods saved.  The rows
-- saved before this migration are marked from payment_methods.
--
-- The index is built in one pass over checkouts, which holds off writes to
-- the table meanwhile (as 088's did); the lock is waited for at most 5 s
-- instead of queueing every registration behind a long transaction: past
-- that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS method_saved_at timestamptz;

COMMENT ON COLUMN checkouts.method_saved_at IS
    'when the method this checkout saved (save_method) was recorded, by the PSP''s event or the sweeper''s look-up; NULL while none is';

UPDATE checkouts c
   SET method_saved_at = m.created_at
  FROM payment_methods m
 WHERE m.merchant_id = c.merchant_id
   AND m.checkout_id = c.checkout_id
   AND c.save_method IS NOT NULL
   AND c.method_saved_at IS NULL;

ALTER TABLE checkout_sweeps ADD COLUMN IF NOT EXISTS method_asked_at timestamptz;
ALTER TABLE checkout_sweeps ADD COLUMN IF NOT EXISTS method_alerted_at timestamptz;

COMMENT ON COLUMN checkout_sweeps.method_asked_at IS
    'when the sweeper last asked the PSP for the method a paid checkout saved, its event lost (pay_sweeper_methods_due)';
COMMENT ON COLUMN checkout_sweeps.method_alerted_at IS
    'when the "paid, its saved method never recorded" alert was raised (pay_sweeper_methods_unsaved), once';

CREATE INDEX IF NOT EXISTS checkouts_method_unsaved ON checkouts (created_at)
    WHERE save_method IS NOT NULL AND method_saved_at IS NULL
      AND status IN ('SUCCESS', 'AUTHORIZED');
