-- capture.failed: a capture of the merchant's the PSP refused, or took
-- back after it had confirmed it (reversed: its booking undone by
-- capture_event_apply).  The capture's own sequence.
CREATE OR REPLACE FUNCTION captures_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id, 'capture.failed', NEW.checkout_id, NEW.capture_id,
        jsonb_strip_nulls(jsonb_build_object(
            'capture_id', NEW.capture_id,
            'checkout_id', NEW.checkout_id,
            'payment_order_id', NEW.payment_order_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'failure', NEW.failure))
        || jsonb_build_object('reversed', OLD.status = 'SUCCEEDED'));
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION captures_notify() FROM PUBLIC;

-- The trigger that runs it at commit, when a capture becomes FAILED.  A
-- constraint trigger cannot be replaced: it is created when absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.captures'::regclass AND tgname = 'captures_notify') THEN
        CREATE CONSTRAINT TRIGGER captures_notify AFTER UPDATE OF status
            ON captures DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN (((new.status = 'FAILED'::text) AND (new.kind = 'capture'::text)))
            EXECUTE FUNCTION captures_notify();
    END IF;
END
$$;
