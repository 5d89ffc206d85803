-- Whether this shard holds a merchant, for a gateway whose directory has
-- no entry for it (a merchant just made, a directory not loaded yet): it
-- asks every shard at once and goes on with the one answering 'here'.
-- 'here': the merchant's row is on this shard (enabled or not: what a
-- disabled merchant may do stays each route's own answer); NULL: not here.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_merchant_here(p_merchant text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (SELECT 'here'::text FROM merchants m WHERE m.merchant_id = p_merchant);
END
$function$;
REVOKE ALL ON FUNCTION pay_merchant_here(p_merchant text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_merchant_here(p_merchant text) TO payments_gateway;
