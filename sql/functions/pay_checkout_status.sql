-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT c.status::text
              FROM checkouts c
             WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text) TO payments_gateway;
