-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_notify_list(p_merchant text, p_status text, p_limit integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (SELECT coalesce(json_agg(notify_item(l) ORDER BY l.created_at DESC, l.notification_id DESC),
                            '[]'::json)::text
              FROM (SELECT n.*
                      FROM notifications n
                     WHERE n.merchant_id = p_merchant
                       AND n.created_at IS NOT NULL    -- notifications_list's
                       AND (p_status IS NULL OR n.status = p_status)
                     ORDER BY n.created_at DESC, n.notification_id DESC
                     LIMIT greatest(1, least(p_limit, 100))) l);
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_list(p_merchant text, p_status text, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_list(p_merchant text, p_status text, p_limit integer) TO payments_gateway;
