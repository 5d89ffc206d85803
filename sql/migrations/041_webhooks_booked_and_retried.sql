-- A payment under way at the PSP, as a signed event said: the sweeper does
-- not fail a checkout while one exists (checkout_payment_under_way).  The
-- types that mean "the shopper paid with a method that settles later"; a
-- refused attempt (Adyen's AUTHORISATION success=false, also PENDING) is
-- not one: the session stays open and may still expire.

SET client_min_messages = warning;

CREATE INDEX IF NOT EXISTS webhook_events_pending
    ON webhook_events (merchant_id, checkout_id)
    WHERE kind = 'PENDING';
