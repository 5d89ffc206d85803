-- The inbox's pending events pay_inbox_retry applies again, at most
-- p_limit, oldest first, locked (FOR UPDATE SKIP LOCKED: another sweeper's
-- step passes over them): every one but those the home shard keeps, for
-- want of an owner, while a shard did not answer its look-up in the last
-- p_unmatched_after seconds (forward_waiting_at; they wait for
-- pay_inbox_homeless).
--
-- The walk follows psp_events_pending to p_limit.  Planned while a
-- partition's statistics said it held no row (an ANALYZE that found only
-- dead rows), the scan read every pending event and sorted them before the
-- limit (3,000 rows read for a step of 100,
-- plans_background::the_inbox_steps_read_about_their_limit), so the
-- sequential and bitmap scans are off here.  Here alone, not for
-- pay_inbox_retry: what it calls for each event (pay_event_apply, and the
-- triggers of what that writes) would make its plans under them too, and
-- a connection keeps a PL/pgSQL function's plans whoever called it first:
-- the webhooks' own calls of pay_event_apply on the same connection would
-- run the sweeper's plans (ci/sql-check.sh, check 14).
CREATE OR REPLACE FUNCTION psp_events_retry_batch(p_unmatched_after integer, p_limit integer)
 RETURNS SETOF psp_events
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
BEGIN
    RETURN QUERY
    SELECT pe.* FROM psp_events pe
     WHERE pe.state = 'pending'
       AND (pe.received_at > now() - make_interval(secs => p_unmatched_after)
            OR pe.forward_waiting_at IS NULL
            OR pe.forward_waiting_at <= now() - make_interval(secs => p_unmatched_after))
     ORDER BY pe.received_at
     LIMIT p_limit
       FOR UPDATE SKIP LOCKED;
END
$function$;
REVOKE ALL ON FUNCTION psp_events_retry_batch(p_unmatched_after integer, p_limit integer) FROM PUBLIC;
