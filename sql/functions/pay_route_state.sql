-- The PSP a checkout is bound to (which holds or may hold its session):
-- a resumed routed registration resumes there, whatever its route would
-- choose first.  NULL when there is no such checkout.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_route_state(p_merchant text, p_checkout text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT c.psp FROM checkouts c
             WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout);
END
$function$;
REVOKE ALL ON FUNCTION pay_route_state(p_merchant text, p_checkout text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_route_state(p_merchant text, p_checkout text) TO payments_gateway;
