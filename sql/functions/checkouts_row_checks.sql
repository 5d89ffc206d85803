-- checkouts: checkouts_amount, checkouts_cancel_url, checkouts_currency, checkouts_email, checkouts_failure, checkouts_id_format, checkouts_nonce, checkouts_psp_contact, checkouts_psp_format, checkouts_psp_payment_ref, checkouts_psp_token, checkouts_psp_url, checkouts_success_url
CREATE OR REPLACE FUNCTION checkouts_row_checks(r checkouts)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    -- (an amount of 0 is a save without a charge: pay_claim, its one
    -- writer, stores it only with a save and no orders)
    v_broken := CASE
        WHEN NOT (r.amount_total >= 0) THEN 'checkouts_amount'
        WHEN NOT (length(r.cancel_url) <@ int4range(9, 2048, '[]')) THEN 'checkouts_cancel_url'
        WHEN NOT (r.currency ~ '^[A-Z]{3}$'::text) THEN 'checkouts_currency'
        WHEN NOT (length(r.buyer_email) <= 254) THEN 'checkouts_email'
        WHEN NOT (length(r.failure) <= 1000) THEN 'checkouts_failure'
        WHEN NOT ((length(r.checkout_id) <@ int4range(1, 40, '[]')) AND (r.checkout_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'checkouts_id_format'
        WHEN NOT ((r.nonce = ((r.merchant_id || ':'::text) || r.checkout_id)) AND (length(r.nonce) <= 64)) THEN 'checkouts_nonce'
        WHEN NOT (r.psp_contact = ANY (ARRAY['none'::text, 'trying'::text, 'maybe'::text])) THEN 'checkouts_psp_contact'
        WHEN NOT ((length(r.psp) <@ int4range(1, 32, '[]')) AND (r.psp ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'checkouts_psp_format'
        WHEN NOT (length(r.psp_payment_ref) <@ int4range(1, 128, '[]')) THEN 'checkouts_psp_payment_ref'
        WHEN NOT ((length(r.psp_token) <@ int4range(1, 255, '[]')) OR ((r.psp_token ~~ 'v1.%'::text) AND (length(r.psp_token) <= 600))) THEN 'checkouts_psp_token'
        WHEN NOT ((length(r.psp_url) <@ int4range(1, 2048, '[]')) OR ((r.psp_url ~~ 'v1.%'::text) AND (length(r.psp_url) <= 3000))) THEN 'checkouts_psp_url'
        WHEN NOT (length(r.success_url) <@ int4range(9, 2048, '[]')) THEN 'checkouts_success_url'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "checkouts" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'checkouts', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_row_checks(r checkouts) FROM PUBLIC;

-- The CHECK that runs it on every row of checkouts written, added when the
-- table does not have it yet (a table made before this file was applied, or a
-- migration that dropped it to change its arguments).  It passes the row
-- whole: PostgreSQL reads a CHECK's expression back and plans it at every
-- statement that writes the table, and a call with one whole-row argument
-- reads back in a fraction of the instructions of a call with a column each
-- (bench/RESULTS.md; the tables with two to five checked columns keep their
-- list, which costs less there than forming the row).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.checkouts'::regclass AND conname = 'checkouts_row_checks') THEN
        ALTER TABLE checkouts ADD CONSTRAINT checkouts_row_checks
            CHECK (checkouts_row_checks(checkouts.*));
    END IF;
END
$$;
