-- One endpoint as GET /v1/webhook_endpoints shows it: never a secret.
-- events ["*"]: every type.
CREATE OR REPLACE FUNCTION notify_endpoint_item(e notify_endpoints)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT jsonb_build_object(
               'id', e.endpoint_id,
               'url', e.url,
               'events', CASE WHEN e.event_types = '{}' THEN to_jsonb(ARRAY['*'])
                              ELSE to_jsonb(e.event_types) END,
               'status', CASE WHEN e.disabled_at IS NULL THEN 'enabled' ELSE 'disabled' END,
               'disabled_at', ts_rfc3339(e.disabled_at),
               'disabled_reason', e.disabled_reason,
               'failing_since', ts_rfc3339(e.failing_since),
               'previous_secret_until', ts_rfc3339(e.prev_until),
               'created_at', ts_rfc3339(e.created_at))
$function$;
REVOKE ALL ON FUNCTION notify_endpoint_item(e notify_endpoints) FROM PUBLIC;
