-- idempotency_keys: idempotency_keys_fingerprint_format, idempotency_keys_key_format, idempotency_keys_lease, idempotency_keys_state, idempotency_keys_state_fields, idempotency_keys_status
CREATE OR REPLACE FUNCTION idempotency_keys_row_checks(idem_key text, fingerprint text, state text, lease bigint, lease_until timestamp with time zone, response_status integer, response_body text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT ((length(fingerprint) = 64) AND (fingerprint ~ '^[0-9a-f]*$'::text)) THEN 'idempotency_keys_fingerprint_format'
        WHEN NOT ((length(idem_key) >= 1) AND (length(idem_key) <= 255) AND (idem_key ~ '^[ -~]*$'::text)) THEN 'idempotency_keys_key_format'
        WHEN NOT (lease > 0) THEN 'idempotency_keys_lease'
        WHEN NOT (state = ANY (ARRAY['in_progress'::text, 'done'::text])) THEN 'idempotency_keys_state'
        WHEN NOT (((state = 'in_progress'::text) AND (lease_until IS NOT NULL) AND (response_status IS NULL) AND (response_body IS NULL)) OR ((state = 'done'::text) AND (lease_until IS NULL) AND (response_status IS NOT NULL) AND (response_body IS NOT NULL))) THEN 'idempotency_keys_state_fields'
        WHEN NOT ((response_status >= 100) AND (response_status <= 599)) THEN 'idempotency_keys_status'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "idempotency_keys" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'idempotency_keys', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION idempotency_keys_row_checks(idem_key text, fingerprint text, state text, lease bigint, lease_until timestamp with time zone, response_status integer, response_body text) FROM PUBLIC;

-- The CHECK that runs it on every row of idempotency_keys written, added when
-- the table does not have it yet (a table made before this file was applied,
-- or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.idempotency_keys'::regclass AND conname = 'idempotency_keys_row_checks') THEN
        ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_row_checks
            CHECK (idempotency_keys_row_checks(idem_key, fingerprint, state, lease, lease_until, response_status, response_body));
    END IF;
END
$$;
