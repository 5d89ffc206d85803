-- The shopper's way back (GET /v1/return/{psp}/{checkout}): where to send
-- the browser, from the database only; psp_matches says whether {psp} is
-- the PSP the checkout was registered with (API.md).  What the PSP added
-- to the return URL for the session look-up is kept while
-- the checkout is EXECUTING with that PSP, or FAILED (a session a cancel
-- cannot expire may still be paid: the sweeper asks about it until its
-- expiry, pay_sweeper_due).  The last one given counts: a
-- shopper who tried twice comes back with the later result.
CREATE OR REPLACE FUNCTION pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text)
 RETURNS TABLE(status text, success_url text, cancel_url text, psp_matches boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    IF coalesce(p_session_result, '') <> '' THEN
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, session_result)
        SELECT c.merchant_id, c.checkout_id, p_session_result
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
           AND c.psp = p_psp AND c.status IN ('EXECUTING', 'FAILED')
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET session_result = EXCLUDED.session_result;
    END IF;

    RETURN QUERY
        SELECT c.status::text, c.success_url, c.cancel_url, c.psp = p_psp
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text) TO payments_gateway;

-- The signatures this one replaced, dropped in the transaction that
-- changes its body, so no caller ever finds neither (the previous release's
-- workers call this signature too).
DROP FUNCTION IF EXISTS pay_return_target(text, text);
DROP FUNCTION IF EXISTS pay_return_target(text, text, text);
