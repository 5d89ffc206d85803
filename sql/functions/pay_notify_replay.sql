-- Sends a notification again from the start of the schedule, whatever its
-- status, with the same id.  NULL: not the merchant's.
CREATE OR REPLACE FUNCTION pay_notify_replay(p_merchant text, p_id text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v  notifications;
BEGIN
    PERFORM 1
       FROM notifications n
       JOIN notify_endpoints e ON e.merchant_id = n.merchant_id AND e.endpoint_id = n.endpoint_id
      WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        AND e.disabled_at IS NOT NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'pay_notify_replay: the endpoint is disabled'
            USING ERRCODE = 'PY010';
    END IF;

    UPDATE notifications n
       SET status = 'PENDING', attempts = 0, next_at = now(), lease_owner = NULL,
           lease_until = NULL, delivered_at = NULL, updated_at = now()
     WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
    RETURNING n.* INTO v;

    IF v.notification_id IS NULL THEN
        RETURN NULL;
    END IF;

    RETURN notify_item(v)::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_replay(p_merchant text, p_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_replay(p_merchant text, p_id text) TO payments_gateway;
