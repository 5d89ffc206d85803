-- The sweeper asks about a checkout FAILED here whose hosted session the
-- PSP may still take a payment in (a cancel cannot expire an Adyen
-- session) until that session's expiry and grace= (pay_sweeper_due).  Its
-- round finds them through this index, by their expiry: it reads the few
-- whose sessions are still open, never every FAILED checkout kept.
--
-- The index is built in one pass over checkouts, which holds off writes to
-- the table meanwhile (as 074's did); the lock is waited for at most 5 s
-- instead of queueing every registration behind a long transaction: past
-- that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

CREATE INDEX IF NOT EXISTS checkouts_failed_open ON checkouts (expires_at)
    WHERE status = 'FAILED' AND psp_url IS NOT NULL AND expires_at IS NOT NULL;
