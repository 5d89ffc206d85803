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
BEGIN
    IF coalesce(p_shard, '') !~ '^[a-z0-9_]{1,16}$' THEN
        RAISE EXCEPTION 'pay_inbox_forwarded: invalid shard name %', p_shard
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    UPDATE psp_events pe
       SET state = 'forwarded', forwarded_to = p_shard
     WHERE pe.psp = p_psp AND pe.event_id = p_event_id
       AND pe.state IN ('pending', 'foreign', 'unmatched');
    RETURN FOUND;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) TO payments_gateway;
