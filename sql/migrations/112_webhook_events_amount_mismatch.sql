-- A checkout the PSP's own success named another amount (or currency) for
-- is recorded amount_mismatch and left EXECUTING for a person.  The
-- sweeper's look-up of it may say paid with no amount (Adyen's session
-- result), which pay_sweeper_apply would otherwise check against the
-- checkout's own: it asks here first, by the checkout, whether such an
-- event was recorded, and books nothing when one was.  Partial: such
-- events are few (each one alerted), and the table holds every event.
-- The success kinds only (a PENDING event's index, webhook_events_pending,
-- holds no row of this one).
CREATE INDEX IF NOT EXISTS webhook_events_amount_mismatch
    ON webhook_events (merchant_id, checkout_id)
    WHERE outcome = 'amount_mismatch' AND kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED');
