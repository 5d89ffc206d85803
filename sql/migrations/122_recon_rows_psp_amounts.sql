-- A report row's amounts as the PSP wrote them where ISO minor units
-- cannot hold them (src/settlement.c): a fee or a net finer than ISO
-- (Adyen's CLP and ISK in hundredths) is booked rounded half to even, the
-- PSP's own value kept beside it; a gross with no exact ISO value is kept
-- here for a person, never matched nor booked (gross holds it rounded, to
-- show).  And the amount the customer paid, in the currency they paid it
-- in, when the PSP settled the row in another (Stripe's
-- customer_facing_amount and customer_facing_currency): such a payment is
-- a person's, with its reason (doc/RECONCILIATION.md).  Every row there
-- is holds the defaults, so the checks need not read the table under
-- this migration's lock (NOT VALID): they hold for every row written from
-- now on.

SET LOCAL lock_timeout = '5s';

ALTER TABLE recon_rows ADD COLUMN IF NOT EXISTS psp_gross text NOT NULL DEFAULT '';
ALTER TABLE recon_rows ADD COLUMN IF NOT EXISTS psp_fee text NOT NULL DEFAULT '';
ALTER TABLE recon_rows ADD COLUMN IF NOT EXISTS psp_net text NOT NULL DEFAULT '';
ALTER TABLE recon_rows ADD COLUMN IF NOT EXISTS customer_currency text NOT NULL DEFAULT '';
ALTER TABLE recon_rows ADD COLUMN IF NOT EXISTS customer_amount bigint;

ALTER TABLE recon_rows DROP CONSTRAINT IF EXISTS recon_rows_psp_amounts;
ALTER TABLE recon_rows ADD CONSTRAINT recon_rows_psp_amounts
    CHECK (psp_gross ~ '^(-?[0-9]{1,20}(\.[0-9]{1,18})?)?$'
           AND psp_fee ~ '^(-?[0-9]{1,20}(\.[0-9]{1,18})?)?$'
           AND psp_net ~ '^(-?[0-9]{1,20}(\.[0-9]{1,18})?)?$') NOT VALID;
ALTER TABLE recon_rows DROP CONSTRAINT IF EXISTS recon_rows_customer;
ALTER TABLE recon_rows ADD CONSTRAINT recon_rows_customer
    CHECK ((customer_currency = '' AND customer_amount IS NULL)
           OR (customer_currency ~ '^[A-Z]{3}$' AND customer_amount IS NOT NULL))
    NOT VALID;

COMMENT ON COLUMN recon_rows.psp_gross IS
    'the gross as the PSP wrote it when it has no exact value in ISO minor units (gross holds it rounded, never matched nor booked: a person''s); '''' otherwise';
COMMENT ON COLUMN recon_rows.psp_fee IS
    'the fee as the PSP computed it when finer than ISO minor units (fee holds it rounded half to even, as booked); '''' otherwise';
COMMENT ON COLUMN recon_rows.psp_net IS
    'the net as the PSP computed it when finer than ISO minor units (net holds gross - fee as booked, or it rounded half to even); '''' otherwise';
COMMENT ON COLUMN recon_rows.customer_currency IS
    'the currency the customer paid in when the PSP settled the row in another (Stripe''s customer_facing_currency); '''' otherwise';
COMMENT ON COLUMN recon_rows.customer_amount IS
    'the amount the customer paid, ISO minor units of customer_currency; NULL when customer_currency is ''''';
