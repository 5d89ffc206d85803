-- Whether any attempt of a refund, a capture (or void) or a pay-out may have
-- reached its PSP (psp_contact), so that one that no attempt can have
-- reached, resumed past its PSP's key window, is given up (FAILED, its
-- amount given back: pay_op_abandon) instead of waiting PENDING for a
-- webhook that never comes.  Written by the claims (pay_refund_claim,
-- pay_capture_claim, pay_payout_claim: 'trying' while an attempt holds the
-- key's lease) and by pay_op_release (an attempt that surely sent nothing:
-- 'trying' -> 'none'; any other: 'maybe'); a claim that finds 'trying'
-- finds an attempt that never said, and counts it as 'maybe'.  The rows
-- there are already, and any row a claim did not write, are 'maybe': as
-- before, never given up.  Every row there is holds the default, so the
-- checks need not read the tables under this migration's lock (NOT
-- VALID, as 119's): they hold for every row written from now on.
SET LOCAL lock_timeout = '5s';
SET client_min_messages = warning;

ALTER TABLE refunds ADD COLUMN IF NOT EXISTS psp_contact text DEFAULT 'maybe' NOT NULL;
ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_psp_contact;
ALTER TABLE refunds ADD CONSTRAINT refunds_psp_contact
    CHECK (psp_contact IN ('none', 'trying', 'maybe')) NOT VALID;
COMMENT ON COLUMN refunds.psp_contact IS
    'none: no attempt can have reached the PSP; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';

ALTER TABLE captures ADD COLUMN IF NOT EXISTS psp_contact text DEFAULT 'maybe' NOT NULL;
ALTER TABLE captures DROP CONSTRAINT IF EXISTS captures_psp_contact;
ALTER TABLE captures ADD CONSTRAINT captures_psp_contact
    CHECK (psp_contact IN ('none', 'trying', 'maybe')) NOT VALID;
COMMENT ON COLUMN captures.psp_contact IS
    'none: no attempt can have reached the PSP; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';

ALTER TABLE payouts ADD COLUMN IF NOT EXISTS psp_contact text DEFAULT 'maybe' NOT NULL;
ALTER TABLE payouts DROP CONSTRAINT IF EXISTS payouts_psp_contact;
ALTER TABLE payouts ADD CONSTRAINT payouts_psp_contact
    CHECK (psp_contact IN ('none', 'trying', 'maybe')) NOT VALID;
COMMENT ON COLUMN payouts.psp_contact IS
    'none: no attempt can have reached the PSP; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';
