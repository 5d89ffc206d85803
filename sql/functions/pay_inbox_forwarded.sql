-- The home shard's record that an event it kept for want of an owner is
-- now kept by its owner (pay_event_keep there answered, 'duplicate'
-- included): state 'forwarded', forwarded_to the owner's shard name, under
-- the event's lock (pay_event_apply's), so that a retry here never applies
-- it too.  Only an event not applied here changes (pending, foreign or
-- unmatched); true when it did, false when the event is applied here,
-- forwarded already or not kept.
CREATE OR REPLACE FUNCTION pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_at  timestamptz;
    v_n   bigint;
BEGIN
    IF coalesce(p_shard, '') !~ '^[a-z0-9_]{1,16}$' THEN
        RAISE EXCEPTION 'pay_inbox_forwarded: invalid shard name %', p_shard
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    -- its month by its id (psp_event_ids), then its row there alone
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE 'UPDATE psp_events pe SET state = ''forwarded'', forwarded_to = $4'
            ' WHERE pe.psp = $1 AND pe.event_id = $2 AND pe.received_at = $3'
            '   AND pe.state IN (''pending'', ''foreign'', ''unmatched'')'
      USING p_psp, p_event_id, v_at, p_shard;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n > 0;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) TO payments_gateway;
