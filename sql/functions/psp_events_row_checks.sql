-- psp_events: psp_events_applied, psp_events_forwarded, psp_events_method_sealed, psp_events_sizes, psp_events_state, psp_events_unmatched
-- Its columns, not its row whole: the body may be a megabyte, and a row
-- passed whole is copied (an update's body read back from TOAST).
CREATE OR REPLACE FUNCTION psp_events_row_checks(psp text, event_id text, type text, key_id text, body bytea, state text, kind text, method jsonb, applied_at timestamptz, unmatched_at timestamptz, forwarded_to text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT ((state = 'applied'::text) = (applied_at IS NOT NULL)) THEN 'psp_events_applied'
        WHEN NOT (((state = 'forwarded'::text) = (forwarded_to IS NOT NULL)) AND ((forwarded_to IS NULL) OR (forwarded_to ~ '^[a-z0-9_]{1,16}$'::text))) THEN 'psp_events_forwarded'
        WHEN NOT ((kind <> 'METHOD_SAVED'::text) OR ((SUBSTRING(body FROM 1 FOR 3) = '\x76312e'::bytea) AND ((method IS NULL) OR ((method ->> 'token_sealed'::text) ~~ 'v1.%'::text)))) THEN 'psp_events_method_sealed'
        WHEN NOT ((length(psp) <@ int4range(1, 64, '[]')) AND (length(event_id) <@ int4range(1, 255, '[]')) AND (length(type) <= 100) AND (length(COALESCE(key_id, ''::text)) <= 128) AND (octet_length(body) <= 1048576)) THEN 'psp_events_sizes'
        WHEN NOT (state = ANY (ARRAY['applied'::text, 'pending'::text, 'foreign'::text, 'unmatched'::text, 'forwarded'::text, 'unreadable'::text])) THEN 'psp_events_state'
        WHEN NOT ((state <> 'unmatched'::text) OR (unmatched_at IS NOT NULL)) THEN 'psp_events_unmatched'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "psp_events" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'psp_events', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION psp_events_row_checks(psp text, event_id text, type text, key_id text, body bytea, state text, kind text, method jsonb, applied_at timestamptz, unmatched_at timestamptz, forwarded_to text) FROM PUBLIC;

-- The CHECK that runs it on every row of psp_events written, in every
-- partition, added when the table does not have it yet.  NOT VALID: the
-- rows kept before are not read again (the table holds every event of
-- the months kept; they satisfied the six CHECKs this one replaces, three
-- of them NOT VALID themselves: migration 098).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.psp_events'::regclass AND conname = 'psp_events_row_checks') THEN
        ALTER TABLE psp_events ADD CONSTRAINT psp_events_row_checks
            CHECK (psp_events_row_checks(psp, event_id, type, key_id, body, state, kind, method,
                                         applied_at, unmatched_at, forwarded_to)) NOT VALID;
    END IF;
END
$$;
