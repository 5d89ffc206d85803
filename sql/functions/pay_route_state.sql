-- The PSP a checkout is bound to (which holds or may hold its session):
-- a resumed routed registration resumes there, whatever its route would
-- choose first.  NULL when there is no such checkout.
CREATE OR REPLACE FUNCTION pay_route_state(p_merchant text, p_checkout text)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT c.psp FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout;
$function$;
REVOKE ALL ON FUNCTION pay_route_state(p_merchant text, p_checkout text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_route_state(p_merchant text, p_checkout text) TO payments_gateway;
