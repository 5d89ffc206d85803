-- checkouts_freeze_commission and checkouts_psp_allowed become one trigger,
-- checkouts_merchant_terms (made by sql/functions/checkouts_merchant_terms.sql,
-- after this, as every trigger): both looked the same merchant up at every
-- registration, each in a trigger call of its own.
SET LOCAL lock_timeout = '5s';

DROP TRIGGER IF EXISTS checkouts_freeze_commission ON checkouts;
DROP TRIGGER IF EXISTS checkouts_psp_allowed ON checkouts;
DROP FUNCTION IF EXISTS checkouts_freeze_commission();
DROP FUNCTION IF EXISTS checkouts_psp_allowed();
