-- Authorize now, capture later.  A checkout registered with
-- "capture": "manual" is only authorized by the shopper's payment: the PSP
-- holds the money on the card, and its authorization webhook moves the
-- checkout and its orders EXECUTING -> AUTHORIZED.  Nothing is booked for
-- a hold (payment_orders_booked_iff_success already says so: ledger and
-- wallet are updated for SUCCESS only).
--
-- The new status value cannot be used in the transaction that adds it, so
-- the notification trigger below compares the status as text.

ALTER TYPE pay_status ADD VALUE IF NOT EXISTS 'AUTHORIZED' AFTER 'EXECUTING';

ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS capture_method text NOT NULL
    DEFAULT 'automatic';
ALTER TABLE checkouts ADD CONSTRAINT checkouts_capture_method
    CHECK (capture_method IN ('automatic', 'manual')) NOT VALID;
ALTER TABLE checkouts VALIDATE CONSTRAINT checkouts_capture_method;

COMMENT ON COLUMN checkouts.capture_method IS
    'automatic: the PSP captures with the payment; manual: the payment is an authorization (a hold), captured or released later';

-- checkout.authorized beside checkout.succeeded and checkout.failed
DROP TRIGGER IF EXISTS checkouts_notify ON checkouts;
CREATE CONSTRAINT TRIGGER checkouts_notify
    AFTER UPDATE OF status ON checkouts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status::text IN ('SUCCESS', 'FAILED', 'AUTHORIZED'))
    EXECUTE FUNCTION checkouts_notify();
