-- A lost chargeback gives the commission's share of each order's part back,
-- as a refund of that amount does (doc/MONEY.md, "Disputes"): the seller
-- bears its share only, never the commission's, which it was never
-- credited.  Before this, the seller bore the whole part: an order of 10.00
-- at 10 % charged back whole cost its seller 10.00 of the 9.00 it was
-- credited, and the platform kept its 1.00 on a sale the shopper got back
-- (test sql::a_lost_chargeback_charges_the_seller_its_share_and_gives_the_commission_back).
--
-- Once its dispute is lost, a part records what its order bore (borne: the
-- part within what the order held then; the rest is the platform's
-- shortfall) and the commission's share of it (commission_part), so that
-- the order's later refunds and chargebacks take the commission's share
-- against everything it gave back for good (order_given_back_for_good).
-- Parts lost before this release keep NULL: their sellers bore them whole,
-- and they count as given back with no commission's share, as booked.
ALTER TABLE dispute_parts ADD COLUMN IF NOT EXISTS borne bigint;
ALTER TABLE dispute_parts ADD COLUMN IF NOT EXISTS commission_part bigint;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.dispute_parts'::regclass
                      AND conname = 'dispute_parts_borne') THEN
        ALTER TABLE dispute_parts ADD CONSTRAINT dispute_parts_borne
            CHECK (borne IS NULL AND commission_part IS NULL
                   OR borne BETWEEN 0 AND amount
                      AND commission_part BETWEEN 0 AND borne);
    END IF;
END
$$;

COMMENT ON COLUMN dispute_parts.borne IS 'Once lost: what the order bore of its part (within what it held then; the rest is the platform''s shortfall). NULL while open or won, and for parts lost before migration 139.';
COMMENT ON COLUMN dispute_parts.commission_part IS 'Once lost: the commission''s share of borne, given back as a refund of it would be (commission_refund_share); the seller bore borne - commission_part.';
