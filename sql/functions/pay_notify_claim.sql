-- The previous release's workers' claim: pay_notify_lease's batch without
-- lease_until, its nine columns (they take a claim of any other number of
-- columns for none: its rows would stay leased, unsent, until their lease
-- ended).  PL/pgSQL, so that its plan is kept for the connection.
CREATE OR REPLACE FUNCTION pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer)
 RETURNS TABLE(notification_id text, merchant_id text, endpoint_id text, url text, host text, secret_sealed text, prev_secret_sealed text, attempts integer, payload text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN QUERY
    SELECT l.notification_id, l.merchant_id, l.endpoint_id, l.url, l.host, l.secret_sealed,
           l.prev_secret_sealed, l.attempts, l.payload
      FROM pay_notify_lease(p_owner, p_limit, p_lease_ms, p_per_endpoint) l;
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) TO payments_gateway;
