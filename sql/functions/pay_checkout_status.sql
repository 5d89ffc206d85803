CREATE OR REPLACE FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT c.status::text
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
$function$;
REVOKE ALL ON FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text) TO payments_gateway;
