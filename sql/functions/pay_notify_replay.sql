-- Sends a notification again from the start of the schedule, whatever its
-- status, with the same id.  NULL: not the merchant's.  An attempt in
-- flight (a live lease) keeps its lease: no claim sends a second copy
-- beside it, and the row is marked to be sent again once that attempt is
-- recorded (resend, pay_notify_record), whatever its outcome.
CREATE OR REPLACE FUNCTION pay_notify_replay(p_merchant text, p_id text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v      notifications;
    -- one instant for the lease's test, so that the mark and the lease
    -- kept never disagree
    v_now  timestamptz := clock_timestamp();
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
       SET status = 'PENDING', attempts = 0, next_at = now(),
           resend = n.lease_owner IS NOT NULL AND n.lease_until >= v_now,
           lease_owner = CASE WHEN n.lease_until >= v_now THEN n.lease_owner END,
           lease_until = CASE WHEN n.lease_owner IS NOT NULL
                               AND n.lease_until >= v_now THEN n.lease_until END,
           delivered_at = NULL, updated_at = now()
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
