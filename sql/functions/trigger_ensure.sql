-- The triggers of a function's file, each written as pg_get_triggerdef
-- prints it with an empty search_path (names qualified, as sql/schema.sql
-- has them: 'CREATE TRIGGER name ... ON public.t ... EXECUTE FUNCTION
-- public.f()'), each made, or made anew, only when pg_trigger has none of
-- that name with that definition.  A trigger already as written is left
-- alone: CREATE OR REPLACE TRIGGER takes SHARE ROW EXCLUSIVE on its table,
-- so every write of the previous release's workers to it (a refund, a
-- capture, a checkout) would wait for the upgrade's commit, every time the
-- file is applied again (CONTRIBUTING.md, "SQL").  Returns the names of
-- the triggers it made, none when all were there.
--
-- Called by the other function files: payments-migrate applies this file
-- before them.  Not the gateway's (no GRANT): the migrating role calls it.
-- Its path puts pg_temp last, so that pg_get_triggerdef qualifies every
-- name of ours and no temporary table stands for pg_trigger.
CREATE OR REPLACE FUNCTION trigger_ensure(VARIADIC p_defs text[])
 RETURNS text[]
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_def   text;
    v_name  text;
    v_made  text[] := '{}';
BEGIN
    FOREACH v_def IN ARRAY p_defs LOOP
        IF v_def !~ '^CREATE TRIGGER [a-z0-9_]+ ' THEN
            RAISE EXCEPTION 'trigger_ensure: not a trigger as pg_get_triggerdef writes it: %', v_def;
        END IF;
        v_name := split_part(v_def, ' ', 3);
        IF NOT EXISTS (SELECT FROM pg_trigger
                        WHERE tgname = v_name AND pg_get_triggerdef(oid) = v_def) THEN
            EXECUTE regexp_replace(v_def, '^CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER');
            v_made := v_made || v_name;
        END IF;
    END LOOP;
    RETURN v_made;
END
$function$;
REVOKE ALL ON FUNCTION trigger_ensure(text[]) FROM PUBLIC;
