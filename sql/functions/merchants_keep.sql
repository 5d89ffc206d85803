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
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER merchants_no_delete BEFORE DELETE ON public.merchants FOR EACH ROW EXECUTE FUNCTION public.merchants_keep()',
    'CREATE TRIGGER merchants_no_rename BEFORE UPDATE OF merchant_id ON public.merchants FOR EACH ROW WHEN ((old.merchant_id IS DISTINCT FROM new.merchant_id)) EXECUTE FUNCTION public.merchants_keep()',
    'CREATE TRIGGER merchants_no_truncate BEFORE TRUNCATE ON public.merchants FOR EACH STATEMENT EXECUTE FUNCTION public.merchants_keep()');
