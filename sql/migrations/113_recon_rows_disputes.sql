-- The report rows of a dispute by the PSP's name of it (object_ref, Adyen's
-- "cb:" Psp Reference, Stripe's dispute id): recon_money counts the
-- withdrawals a PSP reported for one dispute, in every report, against the
-- withdrawals its books show (a SecondChargeback whose webhook was lost is
-- one no book shows).

CREATE INDEX IF NOT EXISTS recon_rows_disputes ON recon_rows (object_ref)
    WHERE type IN ('dispute', 'dispute_won');
