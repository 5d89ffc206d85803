-- webhook_events: webhook_events_id, webhook_events_kind, webhook_events_source, webhook_events_type
CREATE OR REPLACE FUNCTION webhook_events_row_checks(event_id text, kind text, type text, source text)
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
        WHEN NOT (length(event_id) <@ int4range(1, 255, '[]')) THEN 'webhook_events_id'
        WHEN NOT (kind = ANY (ARRAY['SUCCEEDED'::text, 'CAPTURED'::text, 'AUTHORIZED'::text, 'FAILED'::text, 'PENDING'::text, 'IGNORED'::text, 'REFUND_SUCCEEDED'::text, 'REFUND_FAILED'::text, 'DISPUTE_OPENED'::text, 'DISPUTE_WON'::text, 'DISPUTE_LOST'::text, 'DISPUTE_INQUIRY_CLOSED'::text, 'PAYOUT_PAID'::text, 'PAYOUT_FAILED'::text, 'PAYOUT_REVERSED'::text, 'CAPTURE_SUCCEEDED'::text, 'CAPTURE_FAILED'::text, 'VOID_SUCCEEDED'::text, 'VOID_FAILED'::text, 'DECLINED'::text])) THEN 'webhook_events_kind'
        WHEN NOT (source = ANY (ARRAY['reconciliation'::text, 'webhook'::text, 'sweeper'::text])) THEN 'webhook_events_source'
        WHEN NOT (length(type) <= 100) THEN 'webhook_events_type'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "webhook_events" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'webhook_events', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION webhook_events_row_checks(event_id text, kind text, type text, source text) FROM PUBLIC;

-- The CHECK that runs it on every row of webhook_events written, added when
-- the table does not have it yet (a table made before this file was applied,
-- or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.webhook_events'::regclass AND conname = 'webhook_events_row_checks') THEN
        ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_row_checks
            CHECK (webhook_events_row_checks(event_id, kind, type, source));
    END IF;
END
$$;
