-- A chain's anchor only moves forward, to a row its chain has: the row's
-- number and both its hashes (audit_log_link moves it to every eighth
-- row).  No row is removed.
CREATE OR REPLACE FUNCTION audit_heads_forward()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.merchant_id <> OLD.merchant_id
       OR NEW.chain <> OLD.chain
       OR NEW.seq <= OLD.seq
       OR NOT EXISTS (SELECT 1 FROM audit_log a
                       WHERE a.merchant_id = NEW.merchant_id AND a.chain = NEW.chain
                         AND a.seq = NEW.seq AND a.hash = NEW.hash
                         AND a.prev_hash = NEW.prev_hash) THEN
        RAISE EXCEPTION 'audit_heads only moves forward, to a row of its chain (% refused)', TG_OP
            USING ERRCODE = 'PY002';
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION audit_heads_forward() FROM PUBLIC;

-- The trigger that runs it, on every change of an anchor: after the row's
-- update, in the same statement (a refusal undoes it).  Not BEFORE: a
-- BEFORE UPDATE row trigger makes PostgreSQL lock the row first, a WAL
-- record more for every anchor moved.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER audit_heads_forward AFTER DELETE OR UPDATE ON public.audit_heads FOR EACH ROW EXECUTE FUNCTION public.audit_heads_forward()');
