-- A PSP event whose signature verified but which the gateway does not
-- apply as it came: no reader of its dialect can read it (an event format
-- the gateway does not know yet, a field it needs missing: p_outcome
-- 'unreadable'), or it is signed for other money than the PSP's
-- configuration (the other livemode or Adyen environment: 'livemode';
-- another Adyen merchant account under a shared HMAC key:
-- 'merchant_account').  Kept raw all the same, in the inbox, state
-- 'unreadable' (kind UNREADABLE, nothing parsed from it, p_outcome its
-- outcome), with the signed bytes, the header values the verification
-- read and the verifying key's id, under the id "unreadable:<SHA-256 of
-- the bytes>" (the PSP's own id may be among what could not be read).
-- Nothing is applied.  The gateway still answers 400, so that the PSP
-- delivers it again (and the release or the configuration that takes it
-- applies it); a redelivery of the same bytes is 'duplicate'.  Every
-- authentic PSP event is kept (doc/OPERATIONS.md, "The event inbox").
CREATE OR REPLACE FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text)
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

    IF p_outcome IS NULL OR p_outcome NOT IN ('unreadable', 'livemode', 'merchant_account') THEN
        RAISE EXCEPTION 'pay_event_keep_unreadable: the outcome is unreadable, livemode or merchant_account'
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
            'UNREADABLE', '', p_outcome);

    RETURN 'kept';
END
$function$;
REVOKE ALL ON FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text) TO payments_gateway;

-- The previous release's signature, kept for its workers during an
-- upgrade: an unreadable event.
CREATE OR REPLACE FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text)
 RETURNS text
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT pay_event_keep_unreadable(p_psp, p_event_id, p_body, p_headers, p_key_id, 'unreadable')
$function$;
REVOKE ALL ON FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;
