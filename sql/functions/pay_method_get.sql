-- GET /v1/payment_methods/{id}: the merchant's saved method (JSON text),
-- or NULL when it is none of the merchant's.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_method_get(p_merchant text, p_method text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT payment_method_json(p)::text
              FROM payment_methods p
             WHERE p.merchant_id = p_merchant AND p.method_id = p_method);
END
$function$;
REVOKE ALL ON FUNCTION pay_method_get(p_merchant text, p_method text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_get(p_merchant text, p_method text) TO payments_gateway;
