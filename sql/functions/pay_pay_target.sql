-- Where the pay link sends the browser, and whether it still may.
CREATE OR REPLACE FUNCTION pay_pay_target(p_merchant text, p_checkout_id text)
 RETURNS TABLE(psp text, psp_url text, status text, expires_at bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.psp, c.psp_url, c.status::text, ts_epoch(c.expires_at)
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_pay_target(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_pay_target(p_merchant text, p_checkout_id text) TO payments_gateway;
