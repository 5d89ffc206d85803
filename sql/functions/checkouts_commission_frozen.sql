CREATE OR REPLACE FUNCTION checkouts_commission_frozen()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION 'a checkout''s commission is frozen at registration'
        USING ERRCODE = 'PY002';
END
$function$;
REVOKE ALL ON FUNCTION checkouts_commission_frozen() FROM PUBLIC;

-- The trigger that runs it, on every change of a checkout's commission.
-- Made, or made anew, only when missing or other than written here (as
-- pg_get_triggerdef writes it): CREATE OR REPLACE TRIGGER locks its table
-- against every write until the upgrade commits (CONTRIBUTING.md, "SQL").
DO $$
DECLARE
    v_path  text := current_setting('search_path');
    v_def   text;
BEGIN
    PERFORM set_config('search_path', '', true);
    FOREACH v_def IN ARRAY ARRAY[
        'CREATE TRIGGER checkouts_commission_frozen BEFORE UPDATE OF commission_bps, commission_fixed ON public.checkouts FOR EACH ROW WHEN (((old.commission_bps IS DISTINCT FROM new.commission_bps) OR (old.commission_fixed IS DISTINCT FROM new.commission_fixed))) EXECUTE FUNCTION public.checkouts_commission_frozen()'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger
                        WHERE tgname = split_part(v_def, ' ', 3)
                          AND pg_get_triggerdef(oid) = v_def) THEN
            EXECUTE regexp_replace(v_def, '^CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER');
        END IF;
    END LOOP;
    PERFORM set_config('search_path', v_path, true);
END
$$;
