-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_notify_get(p_merchant text, p_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT notify_item(n)::text
              FROM notifications n
             WHERE n.merchant_id = p_merchant AND n.notification_id = p_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_get(p_merchant text, p_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_get(p_merchant text, p_id text) TO payments_gateway;
