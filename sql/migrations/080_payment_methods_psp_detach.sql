-- A saved method the merchant detaches is detached at its PSP too
-- (Stripe's detach, Adyen's DELETE /storedPaymentMethods, the generic
-- DELETE): psp_detached_at is when the PSP confirmed it, or said it no
-- longer had the method.  A detached method without it is one the PSP
-- has not confirmed yet: detaching it again sends the PSP's detach again.
ALTER TABLE payment_methods ADD COLUMN IF NOT EXISTS psp_detached_at timestamptz;

ALTER TABLE payment_methods DROP CONSTRAINT IF EXISTS payment_methods_psp_detached;
ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_psp_detached
    CHECK (psp_detached_at IS NULL OR status = 'detached');

COMMENT ON COLUMN payment_methods.psp_detached_at IS
    'when the PSP confirmed the method detached on its side (or no longer had it); NULL while it has not';
