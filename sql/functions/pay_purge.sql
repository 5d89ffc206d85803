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
    -- (each row deleted by its place in the table, which its lock keeps,
    -- not by a join on its key: planned while the statistics say the
    -- table holds no row, the join read the whole primary key and
    -- compared each entry with each victim; pay_notify_lease says more)
    WITH victims AS (
        SELECT ik.ctid
          FROM idempotency_keys ik
         WHERE ik.expires_at <= now() AND ik.state = 'done'
         ORDER BY ik.expires_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM idempotency_keys ik
     USING victims v
     WHERE ik.ctid = v.ctid;
    GET DIAGNOSTICS n = ROW_COUNT;

    -- notifications delivered more than 30 days ago
    WITH victims AS (
        SELECT x.ctid
          FROM notifications x
         WHERE x.status = 'DELIVERED'
           AND x.delivered_at < now() - interval '30 days'
         ORDER BY x.delivered_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM notifications x
     USING victims v
     WHERE x.ctid = v.ctid;
    GET DIAGNOSTICS d = ROW_COUNT;
    n := n + d;

    -- the risk check's due list past the round's horizon of a week
    -- (pay_risk_after_due never takes them: written while after_payment
    -- was off, or for a checkout no longer paid)
    WITH victims AS (
        SELECT x.ctid
          FROM checkout_risk_after_due x
         WHERE x.decided_at < now() - interval '8 days'
         ORDER BY x.decided_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM checkout_risk_after_due x
     USING victims v
     WHERE x.ctid = v.ctid;
    GET DIAGNOSTICS d = ROW_COUNT;

    RETURN n + d;
END
$function$;
REVOKE ALL ON FUNCTION pay_purge(p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_purge(p_limit integer) TO payments_gateway;
