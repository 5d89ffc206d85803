-- What an off-session charge of a saved method needs to build its PSP
-- request (before pay_claim, which checks the method again under its
-- lock): the PSP, the sealed token and the checkout it was saved in (its
-- associated data), the references the PSP knows the shopper by, the
-- usage and Adyen's model, and the status.  No row: none of the
-- merchant's.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_method_for_charge(p_merchant text, p_method text)
 RETURNS TABLE(psp text, token_sealed text, checkout_id text, customer_ref text, psp_customer text, usage text, recurring text, status text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT p.psp, p.token_sealed, p.checkout_id, p.customer_ref, p.psp_customer,
           p.usage, p.recurring, p.status
      FROM payment_methods p
     WHERE p.merchant_id = p_merchant AND p.method_id = p_method;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_for_charge(p_merchant text, p_method text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_for_charge(p_merchant text, p_method text) TO payments_gateway;
