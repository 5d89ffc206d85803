-- A PSP event whose signature verified but which no reader of its dialect
-- can read (an event format the gateway does not know yet, a field it
-- needs missing): kept raw all the same, in the inbox, state 'unreadable'
-- (kind UNREADABLE, nothing parsed from it), with the signed bytes, the
-- header values the verification read and the verifying key's id, under
-- the id "unreadable:<SHA-256 of the bytes>" (the PSP's own id is among
-- what could not be read).  Nothing is applied.  The gateway still answers
-- 400, so that the PSP delivers it again (and the release that reads it
-- applies it); a redelivery of the same bytes is 'duplicate'.  Every
-- authentic PSP event is kept (doc/OPERATIONS.md, "The event inbox").
CREATE OR REPLACE FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF p_event_id IS NULL OR p_event_id !~ '^unreadable:[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'pay_event_keep_unreadable: the id is "unreadable:" and the bytes'' SHA-256'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- this month's partition, when the sweeper has not made it ahead
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    PERFORM 1 FROM psp_event_kept(p_psp, p_event_id) k;
    IF FOUND THEN
        RETURN 'duplicate';
    END IF;

    INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                            outcome)
    VALUES (p_psp, p_event_id, 'unreadable', p_body, coalesce(p_headers, '{}'), p_key_id,
            'UNREADABLE', '', 'unreadable');

    RETURN 'kept';
END
$function$;
REVOKE ALL ON FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;
