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
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER checkouts_commission_frozen BEFORE UPDATE OF commission_bps, commission_fixed ON public.checkouts FOR EACH ROW WHEN (((old.commission_bps IS DISTINCT FROM new.commission_bps) OR (old.commission_fixed IS DISTINCT FROM new.commission_fixed))) EXECUTE FUNCTION public.checkouts_commission_frozen()');
