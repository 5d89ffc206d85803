-- audit_log: audit_log_action, audit_log_chain
CREATE OR REPLACE FUNCTION audit_log_row_checks(action text, chain smallint)
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
        WHEN NOT (length(action) <@ int4range(1, 100, '[]')) THEN 'audit_log_action'
        WHEN NOT ((chain >= 0) AND (chain <= 64)) THEN 'audit_log_chain'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "audit_log" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'audit_log', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION audit_log_row_checks(action text, chain smallint) FROM PUBLIC;

-- The CHECK that runs it on every row of audit_log written, added when the
-- table does not have it yet (a table made before this file was applied, or a
-- migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.audit_log'::regclass AND conname = 'audit_log_row_checks') THEN
        ALTER TABLE audit_log ADD CONSTRAINT audit_log_row_checks
            CHECK (audit_log_row_checks(action, chain));
    END IF;
END
$$;
