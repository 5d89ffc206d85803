-- A chain's head moves only forward, one row at a time, within its chain:
-- the previous hash it keeps must be the one it held.
-- No SET search_path: it names no table, type or function of ours
-- (CONTRIBUTING.md, "SQL").
CREATE OR REPLACE FUNCTION audit_heads_forward()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.merchant_id <> OLD.merchant_id
       OR NEW.chain <> OLD.chain
       OR NEW.seq <> OLD.seq + 1
       OR NEW.prev_hash IS DISTINCT FROM OLD.hash THEN
        RAISE EXCEPTION 'audit_heads only moves forward (% refused)', TG_OP
            USING ERRCODE = 'PY002';
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION audit_heads_forward() FROM PUBLIC;

-- The trigger that runs it, on every change of a chain head: after the row's
-- update, in the same statement (a refusal undoes it).  Not BEFORE: a BEFORE
-- UPDATE row trigger makes PostgreSQL lock the row first, a WAL record more
-- for every audit entry.
CREATE OR REPLACE TRIGGER audit_heads_forward AFTER DELETE OR UPDATE
    ON audit_heads FOR EACH ROW
    EXECUTE FUNCTION audit_heads_forward();
