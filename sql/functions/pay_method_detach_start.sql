-- DELETE /v1/payment_methods/{id} (and POST .../detach), the gateway's
-- part first: the method detached here at once (pay_method_detach: no
-- charge is claimed after this commits), then what the adapter needs to
-- detach it at the PSP: the method's answer, its PSP, the sealed token
-- with the checkout it was saved in (its associated data), the reference
-- the PSP knows the shopper by, whether the PSP already confirmed
-- (nothing to send), and the merchant account that checkout's request
-- was made under (stored_request_account: an Adyen token is kept
-- under it, and deleted only by naming it; NULL: not recorded).  No row:
-- none of the merchant's, or saved through a
-- PSP in p_other_mode (configured in the other mode than the API key's:
-- a test key never detaches a live method, nor the reverse), and then
-- nothing is detached.
CREATE OR REPLACE FUNCTION pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[])
 RETURNS TABLE(method text, psp text, token_sealed text, checkout_id text, customer_ref text, psp_customer text, psp_detached boolean, saved_account text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_json  text;
BEGIN
    -- a method's PSP never changes: no lock needed to read it first
    PERFORM 1 FROM payment_methods p
      WHERE p.merchant_id = p_merchant AND p.method_id = p_method
        AND p.psp = ANY (coalesce(p_other_mode, '{}'));
    IF FOUND THEN
        RETURN;
    END IF;

    v_json := pay_method_detach(p_merchant, p_method);
    IF v_json IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
        SELECT v_json, p.psp, p.token_sealed, p.checkout_id, p.customer_ref,
               p.psp_customer, p.psp_detached_at IS NOT NULL,
               stored_request_account(c.psp_request)
          FROM payment_methods p
          LEFT JOIN checkouts c ON c.merchant_id = p.merchant_id
                               AND c.checkout_id = p.checkout_id
         WHERE p.merchant_id = p_merchant AND p.method_id = p_method;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[]) TO payments_gateway;

-- The previous release's signature, kept for its workers during an
-- upgrade: every PSP's methods, as that release detached them.
CREATE OR REPLACE FUNCTION pay_method_detach_start(p_merchant text, p_method text)
 RETURNS TABLE(method text, psp text, token_sealed text, checkout_id text, customer_ref text, psp_customer text, psp_detached boolean)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT method, psp, token_sealed, checkout_id, customer_ref, psp_customer, psp_detached FROM pay_method_detach_start(p_merchant, p_method, '{}'::text[])
$function$;
REVOKE ALL ON FUNCTION pay_method_detach_start(p_merchant text, p_method text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_detach_start(p_merchant text, p_method text) TO payments_gateway;
