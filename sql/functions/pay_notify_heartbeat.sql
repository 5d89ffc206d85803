-- Worker 0 of a gateway that delivers notifications, about once a minute:
-- its host delivers (notify_deliverers).  Hosts not seen for a week go.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_notify_heartbeat(p_host text)
 RETURNS void
 LANGUAGE plpgsql
 VOLATILE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO notify_deliverers AS d (host, seen_at) VALUES (p_host, now())
    ON CONFLICT (host) DO UPDATE SET seen_at = now();
    DELETE FROM notify_deliverers d WHERE d.seen_at < now() - interval '7 days';
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_heartbeat(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_heartbeat(text) TO payments_gateway;
