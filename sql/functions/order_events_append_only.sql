-- The event log is evidence: nobody, the owner included, edits or deletes it.
-- One exception: pay_abandon undoes a claim the PSP never saw and
-- deletes that checkout's NOT_STARTED -> EXECUTING registration events,
-- naming the checkout in a transaction-local setting first.
CREATE OR REPLACE FUNCTION order_events_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.source = 'registration'
       AND OLD.from_status = 'NOT_STARTED' AND OLD.to_status = 'EXECUTING'
       AND current_setting('payments.abandon_checkout', true)
           = OLD.merchant_id || ':' || OLD.checkout_id THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PY002';
END
$function$;
REVOKE ALL ON FUNCTION order_events_append_only() FROM PUBLIC;

-- The triggers that run it, on every change of the event log.
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
        'CREATE TRIGGER order_events_no_change BEFORE DELETE OR UPDATE ON public.order_events FOR EACH ROW EXECUTE FUNCTION public.order_events_append_only()',
        'CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON public.order_events FOR EACH STATEMENT EXECUTE FUNCTION public.order_events_append_only()'
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
