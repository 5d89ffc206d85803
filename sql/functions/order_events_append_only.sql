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
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER order_events_no_change BEFORE DELETE OR UPDATE ON public.order_events FOR EACH ROW EXECUTE FUNCTION public.order_events_append_only()',
    'CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON public.order_events FOR EACH STATEMENT EXECUTE FUNCTION public.order_events_append_only()');
