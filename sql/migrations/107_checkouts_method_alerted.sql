-- The "paid, its saved method never recorded" alert is marked on the
-- checkout (checkouts.method_alerted_at), no longer on its checkout_sweeps
-- row, so that a partial index can leave the checkouts alerted already
-- out: pay_sweeper_methods_unsaved finds the ones to alert through
-- checkouts_method_unalerted.  Through checkout_sweeps it walked every
-- alerted, never-saved checkout before reaching one not alerted at each
-- round, and those only grow (Adyen's methods cannot be asked for).
--
-- The index is built in one pass over checkouts, which holds off writes to
-- the table meanwhile (as 090's did); the lock is waited for at most 5 s:
-- past that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS method_alerted_at timestamptz;

COMMENT ON COLUMN checkouts.method_alerted_at IS
    'when the "paid, its saved method never recorded" alert was raised (pay_sweeper_methods_unsaved), once';

UPDATE checkouts c
   SET method_alerted_at = s.method_alerted_at
  FROM checkout_sweeps s
 WHERE s.merchant_id = c.merchant_id
   AND s.checkout_id = c.checkout_id
   AND s.method_alerted_at IS NOT NULL;

ALTER TABLE checkout_sweeps DROP COLUMN IF EXISTS method_alerted_at;

CREATE INDEX IF NOT EXISTS checkouts_method_unalerted ON checkouts (created_at)
    WHERE save_method IS NOT NULL AND method_saved_at IS NULL
      AND method_alerted_at IS NULL
      AND status IN ('SUCCESS', 'AUTHORIZED');
