CREATE OR REPLACE FUNCTION pay_purge(p_limit integer)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    n  int;
    d  int;
BEGIN
    -- done idempotency keys past their TTL
    WITH victims AS (
        SELECT ik.merchant_id, ik.idem_key
          FROM idempotency_keys ik
         WHERE ik.expires_at <= now() AND ik.state = 'done'
         ORDER BY ik.expires_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM idempotency_keys ik
     USING victims v
     WHERE ik.merchant_id = v.merchant_id AND ik.idem_key = v.idem_key;
    GET DIAGNOSTICS n = ROW_COUNT;

    -- notifications delivered more than 30 days ago
    WITH victims AS (
        SELECT x.merchant_id, x.notification_id
          FROM notifications x
         WHERE x.status = 'DELIVERED'
           AND x.delivered_at < now() - interval '30 days'
         ORDER BY x.delivered_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM notifications x
     USING victims v
     WHERE x.merchant_id = v.merchant_id AND x.notification_id = v.notification_id;
    GET DIAGNOSTICS d = ROW_COUNT;

    RETURN n + d;
END
$function$;
REVOKE ALL ON FUNCTION pay_purge(p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_purge(p_limit integer) TO payments_gateway;
