-- The merchant API's item.
CREATE OR REPLACE FUNCTION notify_item(n notifications)
 RETURNS json
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT json_build_object(
               'id', n.notification_id,
               'type', n.event_type,
               'endpoint_id', n.endpoint_id,
               'status', n.status,
               'attempts', n.attempts,
               'last_status', n.last_status,
               'last_error', n.last_error,
               'created_at', ts_rfc3339(n.created_at),
               'next_attempt_at', CASE WHEN n.status = 'PENDING' THEN ts_rfc3339(n.next_at) END,
               'delivered_at', ts_rfc3339(n.delivered_at),
               'checkout_id', n.checkout_id,
               'object_id', n.object_id,
               'sequence', n.sequence);
$function$;
REVOKE ALL ON FUNCTION notify_item(n notifications) FROM PUBLIC;
