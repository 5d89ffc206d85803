-- The checkouts FAILED here whose hosted session the PSP may still take a
-- payment in (a cancel cannot expire an Adyen session), which the sweeper
-- asks about until that session's expiry and grace= (pay_sweeper_due), in
-- a table of their own instead of checkouts' partial index by expiry.  An
-- index of checkouts naming psp_url and expires_at made every
-- registration's answer (pay_finish writes both) an update PostgreSQL
-- cannot make in place (HOT): a new entry in three of checkouts' indexes
-- and their WAL, at every registration, for a list of a few failures.  The
-- rows are written by the trigger checkouts_failed_open when a checkout is
-- FAILED with a session URL and an expiry, and go with their checkout.
--
-- The table is filled in one pass over checkouts, which holds off writes to
-- the table meanwhile; the lock is waited for at most 5 s instead of
-- queueing every registration behind a long transaction: past that the
-- migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

CREATE TABLE IF NOT EXISTS failed_open_sessions (
    merchant_id  text NOT NULL,
    checkout_id  text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, checkout_id),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
        ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS failed_open_sessions_expiry ON failed_open_sessions (expires_at);

LOCK TABLE checkouts IN SHARE MODE;

INSERT INTO failed_open_sessions (merchant_id, checkout_id, expires_at)
SELECT merchant_id, checkout_id, expires_at
  FROM checkouts
 WHERE status = 'FAILED' AND psp_url IS NOT NULL AND expires_at IS NOT NULL
ON CONFLICT (merchant_id, checkout_id) DO NOTHING;

DROP INDEX IF EXISTS checkouts_failed_open;

COMMENT ON TABLE failed_open_sessions IS
    'Checkouts FAILED here with a hosted session (psp_url) the PSP may still take a payment in until its expiry (expires_at, the checkout''s): the sweeper asks about them (pay_sweeper_due); written by the trigger checkouts_failed_open, deleted with their checkout or when it leaves that state';
