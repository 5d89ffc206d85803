-- For /metrics (worker 0, every few seconds).
CREATE OR REPLACE FUNCTION pay_notify_stats()
 RETURNS TABLE(pending bigint, oldest_pending_seconds bigint, failed bigint, endpoints_disabled bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT (SELECT count(*) FROM notifications n WHERE n.status = 'PENDING'),
           (SELECT coalesce(ts_epoch(now()) - ts_epoch(min(n.created_at)), 0)
              FROM notifications n WHERE n.status = 'PENDING'),
           (SELECT count(*) FROM notifications n WHERE n.status = 'FAILED'),
           (SELECT count(*) FROM notify_endpoints e WHERE e.disabled_at IS NOT NULL);
$function$;
REVOKE ALL ON FUNCTION pay_notify_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_stats() TO payments_gateway;
