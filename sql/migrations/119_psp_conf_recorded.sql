-- The PSP settings a refund's, capture's, void's or pay-out's request
-- carries (Adyen's merchant_account=, balance_account=), recorded with the
-- claim that makes the row: a resumed claim sends its request again under
-- the same Idempotency-Key only while the PSP's configuration still has
-- them, or not at all (doc/OPERATIONS.md, "Changing a PSP's account
-- settings").  NULL: made before they were recorded (or by the previous
-- release's workers during an upgrade), resumed as before.  Every row
-- here is NULL, so the checks need not read the tables (NOT VALID); they
-- hold for every row written from now on.
SET LOCAL lock_timeout = '5s';

ALTER TABLE refunds ADD COLUMN IF NOT EXISTS psp_conf jsonb;
ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_psp_conf;
ALTER TABLE refunds ADD CONSTRAINT refunds_psp_conf
    CHECK (jsonb_typeof(psp_conf) = 'object') NOT VALID;
COMMENT ON COLUMN refunds.psp_conf IS
    'the PSP settings its request carried when first sent ({"merchant_account": ...}); NULL: not recorded';

ALTER TABLE captures ADD COLUMN IF NOT EXISTS psp_conf jsonb;
ALTER TABLE captures DROP CONSTRAINT IF EXISTS captures_psp_conf;
ALTER TABLE captures ADD CONSTRAINT captures_psp_conf
    CHECK (jsonb_typeof(psp_conf) = 'object') NOT VALID;
COMMENT ON COLUMN captures.psp_conf IS
    'the PSP settings its request carried when first sent ({"merchant_account": ...}); NULL: not recorded';

ALTER TABLE payouts ADD COLUMN IF NOT EXISTS psp_conf jsonb;
ALTER TABLE payouts DROP CONSTRAINT IF EXISTS payouts_psp_conf;
ALTER TABLE payouts ADD CONSTRAINT payouts_psp_conf
    CHECK (jsonb_typeof(psp_conf) = 'object') NOT VALID;
COMMENT ON COLUMN payouts.psp_conf IS
    'the PSP settings its request carried when first sent ({"balance_account": ...}); NULL: not recorded';
