-- What the PSP took back of a paid pay-out before (or without) reversing it
-- whole: Stripe's partial transfer reversal (transfer.reversed with
-- reversed false and its cumulative amount_reversed).  Booked back to the
-- seller's wallet once, by what it grew (payout_event_apply); a later whole
-- reversal books the rest.

ALTER TABLE payouts ADD COLUMN IF NOT EXISTS amount_reversed bigint NOT NULL DEFAULT 0;
ALTER TABLE payouts DROP CONSTRAINT IF EXISTS payouts_amount_reversed;
ALTER TABLE payouts ADD CONSTRAINT payouts_amount_reversed
    CHECK (amount_reversed >= 0 AND amount_reversed <= amount);
COMMENT ON COLUMN payouts.amount_reversed IS
    'what the PSP took back of the paid pay-out so far, booked back to the seller''s wallet (a whole reversal: FAILED)';
