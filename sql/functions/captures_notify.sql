-- capture.failed: a capture of the merchant's the PSP refused, or took
-- back after it had confirmed it (reversed: its booking undone by
-- capture_event_apply).  capture.succeeded: a capture the shop did not
-- ask for, made at the PSP (its dashboard) and booked from the PSP's event
-- (captured_outside: a capture row per order, made and booked in the
-- event's transaction); a capture of the merchant's own (POST
-- .../capture) is not notified when it succeeds.  The capture's own
-- sequence: a later capture.failed of the same capture follows it.
CREATE OR REPLACE FUNCTION captures_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v  captures%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- at commit, the row as it is now: one the same transaction made
        -- and booked (SUCCEEDED) is a capture made from the PSP's event;
        -- one of ours is made PENDING by its claim and committed so,
        -- before the PSP is asked
        SELECT * INTO v FROM captures x
         WHERE x.merchant_id = NEW.merchant_id AND x.capture_id = NEW.capture_id;
        IF v.status IS DISTINCT FROM 'SUCCEEDED' THEN
            RETURN NULL;
        END IF;
        PERFORM notify_enqueue(
            v.merchant_id, 'capture.succeeded', v.checkout_id, v.capture_id,
            jsonb_strip_nulls(jsonb_build_object(
                'capture_id', v.capture_id,
                'checkout_id', v.checkout_id,
                'payment_order_id', v.payment_order_id,
                'status', v.status,
                'amount_minor', v.amount,
                'amount', money_decimal(v.amount, v.currency),
                'currency', v.currency,
                'metadata', v.metadata,
                'psp_ref', v.psp_ref)));
        RETURN NULL;
    END IF;
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

-- The triggers that run it at commit: when a capture becomes FAILED, and
-- for every capture row made (the function keeps those booked in the same
-- transaction).  A constraint trigger cannot be replaced: each is created
-- when absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.captures'::regclass AND tgname = 'captures_notify') THEN
        CREATE CONSTRAINT TRIGGER captures_notify AFTER UPDATE OF status
            ON captures DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN (((new.status = 'FAILED'::text) AND (new.kind = 'capture'::text)))
            EXECUTE FUNCTION captures_notify();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.captures'::regclass AND tgname = 'captures_notify_made') THEN
        CREATE CONSTRAINT TRIGGER captures_notify_made AFTER INSERT
            ON captures DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN ((new.kind = 'capture'::text))
            EXECUTE FUNCTION captures_notify();
    END IF;
END
$$;
