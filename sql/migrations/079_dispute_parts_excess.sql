-- A chargeback beyond what a checkout's captured orders still hold (the
-- PSP withdrew money already refunded to the shopper) is booked whole, as
-- the PSP says; what exceeds an order's holding is the platform's, never
-- its seller's (a seller bears at most what it still holds of the order).
-- Each part keeps the two apart: amount, what the seller bears when the
-- dispute is lost (and what its balance holds back while it is open);
-- excess, what a loss books to psp_shortfall:<psp> for a person to
-- recover.  Parts stored before this have none.
ALTER TABLE dispute_parts ADD COLUMN excess bigint NOT NULL DEFAULT 0;
ALTER TABLE dispute_parts ADD CONSTRAINT dispute_parts_excess CHECK (excess >= 0);
COMMENT ON COLUMN dispute_parts.excess IS 'The part of the order''s share of the dispute beyond what the order still held when it opened: withdrawn by the PSP, the platform''s when lost (psp_shortfall), never the seller''s.';
