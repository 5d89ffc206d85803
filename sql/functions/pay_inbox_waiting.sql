-- The home shard's record that its sweeper's look-up of the owner of an
-- event it keeps for want of one (pay_inbox_homeless) found a shard not
-- answering: forward_waiting_at now, under the event's lock
-- (pay_event_apply's).  For p_unmatched_after seconds from now the event
-- stays pending however old (pay_inbox_retry leaves it be) and
-- pay_inbox_homeless still takes it: the shard that did not answer may own
-- it, and it is forwarded once that shard answers.  Only a pending event
-- changes; its age in seconds when it did, NULL when the event is not
-- pending (applied, forwarded or unmatched since) or not kept.
CREATE OR REPLACE FUNCTION pay_inbox_waiting(p_psp text, p_event_id text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_at   timestamptz;
    v_age  bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    -- its month by its id (psp_event_ids), then its row there alone
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE 'UPDATE psp_events pe SET forward_waiting_at = now()'
            ' WHERE pe.psp = $1 AND pe.event_id = $2 AND pe.received_at = $3'
            '   AND pe.state = ''pending'''
            ' RETURNING extract(epoch FROM now() - pe.received_at)::bigint'
       INTO v_age USING p_psp, p_event_id, v_at;
    RETURN v_age;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_waiting(p_psp text, p_event_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_waiting(p_psp text, p_event_id text) TO payments_gateway;
