-- GET /v1/webhook_endpoints: the merchant's endpoints, oldest first.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_endpoint_list(p_merchant text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(notify_endpoint_item(e) ORDER BY e.created_at, e.endpoint_id),
                            '[]'::jsonb)::text
              FROM notify_endpoints e
             WHERE e.merchant_id = p_merchant);
END
$function$;
REVOKE ALL ON FUNCTION pay_endpoint_list(p_merchant text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_endpoint_list(p_merchant text) TO payments_gateway;
