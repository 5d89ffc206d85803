-- One attempt's outcome, recorded only by the lease's holder, for the
-- claim it belongs to: p_owner, and p_lease, the lease_until its claim
-- returned (anything else is STALE and changes nothing: a row whose lease
-- ended and that was claimed again, by the same worker too, is the new
-- claim's).  p_lease NULL: the owner alone (the previous release's
-- signature).  p_retry_ms NULL: no retry, the row is FAILED (the
-- dead-letter list).  A row replayed while this attempt was in flight
-- (resend) is PENDING again whatever the outcome, due now, from the start
-- of the schedule: the replay asked for one more send.  An endpoint is disabled once its
-- deliveries have been failing for p_disable_failing_ms (0: never), counted
-- from the first failure since its last success; p_disable_after (a count
-- of failures in a row, 0: never) is the rule of the previous release.
-- endpoint_disabled is true only on that move.
CREATE OR REPLACE FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone)
 RETURNS TABLE(status text, endpoint_disabled boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_endpoint  text;
    v_status    text;
    v_failures  int;
    v_since     timestamptz;
    v_disabled  boolean := false;
    v_held      boolean;
BEGIN
    -- the row by its key, whether this claim still holds it told by the
    -- row: "status = 'PENDING' AND lease_owner = ..." in an UPDATE's WHERE
    -- is notifications_leased's predicate (and the status
    -- notifications_pending_endpoint's), and a plan made on empty tables
    -- walked the merchant's leased rows through it for the one
    -- (plans::a_deliverys_outcome_reads_its_row_not_the_endpoints_backlog)
    SELECT n.status = 'PENDING' AND n.lease_owner = p_owner
           AND (p_lease IS NULL OR n.lease_until = p_lease)
      INTO v_held
      FROM notifications n
     WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
       FOR UPDATE;
    IF v_held AND p_ok THEN
        UPDATE notifications n
           SET status = CASE WHEN n.resend THEN 'PENDING' ELSE 'DELIVERED' END,
               delivered_at = CASE WHEN n.resend THEN NULL ELSE now() END,
               next_at = CASE WHEN n.resend THEN now() ELSE n.next_at END,
               resend = false, lease_owner = NULL,
               lease_until = NULL, last_status = p_http_status, last_error = NULL,
               updated_at = now()
         WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        RETURNING n.endpoint_id, n.status INTO v_endpoint, v_status;
    ELSIF v_held THEN
        UPDATE notifications n
           SET status = CASE WHEN n.resend OR p_retry_ms IS NOT NULL THEN 'PENDING'
                             ELSE 'FAILED' END,
               next_at = CASE WHEN n.resend THEN now()
                              WHEN p_retry_ms IS NULL THEN n.next_at
                              ELSE now() + make_interval(secs => p_retry_ms / 1000.0) END,
               resend = false, lease_owner = NULL, lease_until = NULL,
               last_status = p_http_status, last_error = left(p_error, 200),
               updated_at = now()
         WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        RETURNING n.endpoint_id, n.status INTO v_endpoint, v_status;
    END IF;

    IF v_endpoint IS NULL THEN
        RETURN QUERY SELECT 'STALE'::text, false;
        RETURN;
    END IF;

    IF p_ok THEN
        UPDATE notify_endpoints e SET failures = 0, failing_since = NULL
         WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
           AND (e.failures <> 0 OR e.failing_since IS NOT NULL);
    ELSE
        UPDATE notify_endpoints e
           SET failures = e.failures + 1,
               failing_since = coalesce(e.failing_since, now()),
               updated_at = now()
         WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
        RETURNING e.failures, e.failing_since INTO v_failures, v_since;

        IF (p_disable_after > 0 AND v_failures >= p_disable_after)
           OR (p_disable_failing_ms > 0
               AND v_since <= now() - make_interval(secs => p_disable_failing_ms / 1000.0)) THEN
            UPDATE notify_endpoints e
               SET disabled_at = now(), disabled_reason = 'failures', updated_at = now()
             WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
               AND e.disabled_at IS NULL;
            v_disabled := FOUND;
        END IF;
    END IF;

    RETURN QUERY SELECT v_status, v_disabled;
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone) TO payments_gateway;

-- The previous release's signature: the owner alone names the lease.
CREATE OR REPLACE FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint)
 RETURNS TABLE(status text, endpoint_disabled boolean)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_notify_record(p_merchant, p_id, p_owner, p_ok, p_http_status,
                                    p_error, p_retry_ms, p_disable_after, p_disable_failing_ms,
                                    NULL::timestamptz)
$function$;
REVOKE ALL ON FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint) TO payments_gateway;

-- An earlier release's signature: a count of failures in a row only.
CREATE OR REPLACE FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer)
 RETURNS TABLE(status text, endpoint_disabled boolean)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_notify_record(p_merchant, p_id, p_owner, p_ok, p_http_status,
                                    p_error, p_retry_ms, p_disable_after, 0::bigint,
                                    NULL::timestamptz)
$function$;
REVOKE ALL ON FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer) TO payments_gateway;
