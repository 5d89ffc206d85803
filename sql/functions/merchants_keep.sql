-- Merchants are disabled, never deleted or renamed: their payments, ledger and
-- audit rows outlive them, and the hot tables rely on it (see above).
CREATE OR REPLACE FUNCTION merchants_keep()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION 'merchants are never deleted (% refused); disable the merchant instead', TG_OP
        USING ERRCODE = 'PY002';
END
$function$;
REVOKE ALL ON FUNCTION merchants_keep() FROM PUBLIC;

-- The triggers that run it, on every DELETE, rename and TRUNCATE of
-- merchants.
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
        'CREATE TRIGGER merchants_no_delete BEFORE DELETE ON public.merchants FOR EACH ROW EXECUTE FUNCTION public.merchants_keep()',
        'CREATE TRIGGER merchants_no_rename BEFORE UPDATE OF merchant_id ON public.merchants FOR EACH ROW WHEN ((old.merchant_id IS DISTINCT FROM new.merchant_id)) EXECUTE FUNCTION public.merchants_keep()',
        'CREATE TRIGGER merchants_no_truncate BEFORE TRUNCATE ON public.merchants FOR EACH STATEMENT EXECUTE FUNCTION public.merchants_keep()'
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
