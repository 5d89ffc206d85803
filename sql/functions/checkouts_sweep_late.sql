-- A checkout that became one for the sweeper after a round's walk may have
-- passed it (sweeper_late, migration 094): an approved review (REVIEW to
-- EXECUTING: one to alert about, and to ask about once its token is
-- stored), or a token stored more than 30 s after the claim (a resumed
-- claim's, an approval's).  A token stored sooner, as a registration's own
-- is, needs no row: a round never moves its walk past an open session
-- without a token created in the last 60 s (pay_sweeper_due), and the
-- gateway's transactions end within payments_database_timeout.
CREATE OR REPLACE FUNCTION checkouts_sweep_late()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status
       OR (OLD.psp_token IS NULL AND NEW.psp_token IS NOT NULL
           AND NEW.created_at < clock_timestamp() - interval '30 seconds') THEN
        INSERT INTO sweeper_late AS l (merchant_id, checkout_id, ask, alert)
        VALUES (NEW.merchant_id, NEW.checkout_id, NEW.psp_token IS NOT NULL,
                OLD.status IS DISTINCT FROM NEW.status)
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET ask = l.ask OR EXCLUDED.ask, alert = l.alert OR EXCLUDED.alert;
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_sweep_late() FROM PUBLIC;

-- The trigger's condition is short, the rest is the function's: PostgreSQL
-- reads a trigger's condition back at every statement that names one of
-- its columns, every registration's answer (psp_token) among them, and
-- the short one costs a registration fewer instructions than the whole
-- test did (bench/RESULTS.md).
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER checkouts_sweep_late AFTER UPDATE OF status, psp_token ON public.checkouts FOR EACH ROW WHEN ((new.status = ''EXECUTING''::public.pay_status)) EXECUTE FUNCTION public.checkouts_sweep_late()');
