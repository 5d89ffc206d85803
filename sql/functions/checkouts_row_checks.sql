-- checkouts: checkouts_amount, checkouts_cancel_url, checkouts_currency, checkouts_email, checkouts_failure, checkouts_id_format, checkouts_nonce, checkouts_psp_format, checkouts_psp_payment_ref, checkouts_psp_token, checkouts_psp_url, checkouts_success_url
CREATE OR REPLACE FUNCTION checkouts_row_checks(merchant_id text, checkout_id text, psp text, nonce text, currency text, amount_total bigint, success_url text, cancel_url text, buyer_email text, psp_token text, psp_url text, failure text, psp_payment_ref text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (an amount of 0 is a save without a charge: pay_claim, its one
    -- writer, stores it only with a save and no orders)
    v_broken := CASE
        WHEN NOT (amount_total >= 0) THEN 'checkouts_amount'
        WHEN NOT ((length(cancel_url) >= 9) AND (length(cancel_url) <= 2048)) THEN 'checkouts_cancel_url'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'checkouts_currency'
        WHEN NOT (length(buyer_email) <= 254) THEN 'checkouts_email'
        WHEN NOT (length(failure) <= 1000) THEN 'checkouts_failure'
        WHEN NOT ((length(checkout_id) >= 1) AND (length(checkout_id) <= 40) AND (checkout_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'checkouts_id_format'
        WHEN NOT ((nonce = ((merchant_id || ':'::text) || checkout_id)) AND (length(nonce) <= 64)) THEN 'checkouts_nonce'
        WHEN NOT ((length(psp) >= 1) AND (length(psp) <= 32) AND (psp ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'checkouts_psp_format'
        WHEN NOT ((length(psp_payment_ref) >= 1) AND (length(psp_payment_ref) <= 128)) THEN 'checkouts_psp_payment_ref'
        WHEN NOT (((length(psp_token) >= 1) AND (length(psp_token) <= 255)) OR ((psp_token ~~ 'v1.%'::text) AND (length(psp_token) <= 600))) THEN 'checkouts_psp_token'
        WHEN NOT (((length(psp_url) >= 1) AND (length(psp_url) <= 2048)) OR ((psp_url ~~ 'v1.%'::text) AND (length(psp_url) <= 3000))) THEN 'checkouts_psp_url'
        WHEN NOT ((length(success_url) >= 9) AND (length(success_url) <= 2048)) THEN 'checkouts_success_url'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "checkouts" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'checkouts', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_row_checks(merchant_id text, checkout_id text, psp text, nonce text, currency text, amount_total bigint, success_url text, cancel_url text, buyer_email text, psp_token text, psp_url text, failure text, psp_payment_ref text) FROM PUBLIC;

-- The CHECK that runs it on every row of checkouts written, added when the
-- table does not have it yet (a table made before this file was applied, or a
-- migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.checkouts'::regclass AND conname = 'checkouts_row_checks') THEN
        ALTER TABLE checkouts ADD CONSTRAINT checkouts_row_checks
            CHECK (checkouts_row_checks(merchant_id, checkout_id, psp, nonce, currency, amount_total, success_url, cancel_url, buyer_email, psp_token, psp_url, failure, psp_payment_ref));
    END IF;
END
$$;
