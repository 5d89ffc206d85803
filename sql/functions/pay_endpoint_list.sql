-- GET /v1/webhook_endpoints: the merchant's endpoints, oldest first.
CREATE OR REPLACE FUNCTION pay_endpoint_list(p_merchant text)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT coalesce(jsonb_agg(notify_endpoint_item(e) ORDER BY e.created_at, e.endpoint_id),
                    '[]'::jsonb)::text
      FROM notify_endpoints e
     WHERE e.merchant_id = p_merchant
$function$;
REVOKE ALL ON FUNCTION pay_endpoint_list(p_merchant text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_endpoint_list(p_merchant text) TO payments_gateway;
