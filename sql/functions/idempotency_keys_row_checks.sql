-- idempotency_keys: idempotency_keys_fingerprint_format, idempotency_keys_key_format, idempotency_keys_lease, idempotency_keys_state, idempotency_keys_state_fields, idempotency_keys_status
CREATE OR REPLACE FUNCTION idempotency_keys_row_checks(r idempotency_keys)
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
        WHEN NOT ((length(r.fingerprint) = 64) AND (r.fingerprint ~ '^[0-9a-f]*$'::text)) THEN 'idempotency_keys_fingerprint_format'
        WHEN NOT ((length(r.idem_key) <@ int4range(1, 255, '[]')) AND (r.idem_key ~ '^[ -~]*$'::text)) THEN 'idempotency_keys_key_format'
        WHEN NOT (r.lease > 0) THEN 'idempotency_keys_lease'
        WHEN NOT (r.state = ANY (ARRAY['in_progress'::text, 'done'::text])) THEN 'idempotency_keys_state'
        WHEN NOT (((r.state = 'in_progress'::text) AND (r.lease_until IS NOT NULL) AND (r.response_status IS NULL) AND (r.response_body IS NULL)) OR ((r.state = 'done'::text) AND (r.lease_until IS NULL) AND (r.response_status IS NOT NULL) AND (r.response_body IS NOT NULL))) THEN 'idempotency_keys_state_fields'
        WHEN NOT (r.response_status <@ int4range(100, 599, '[]')) THEN 'idempotency_keys_status'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "idempotency_keys" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'idempotency_keys', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION idempotency_keys_row_checks(r idempotency_keys) FROM PUBLIC;

-- The CHECK that runs it on every row of idempotency_keys written, added when the
-- table does not have it yet (a table made before this file was applied, or a
-- migration that dropped it to change its arguments).  It passes the row
-- whole: PostgreSQL reads a CHECK's expression back and plans it at every
-- statement that writes the table, and a call with one whole-row argument
-- reads back in a fraction of the instructions of a call with a column each
-- (bench/RESULTS.md; the tables with two to five checked columns keep their
-- list, which costs less there than forming the row).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.idempotency_keys'::regclass AND conname = 'idempotency_keys_row_checks') THEN
        ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_row_checks
            CHECK (idempotency_keys_row_checks(idempotency_keys.*));
    END IF;
END
$$;
