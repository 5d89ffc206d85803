CREATE OR REPLACE FUNCTION refunds_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'SUCCEEDED' THEN 'refund.succeeded' ELSE 'refund.failed' END,
        NEW.checkout_id, NEW.refund_id,
        jsonb_strip_nulls(jsonb_build_object(
            'refund_id', NEW.refund_id,
            'checkout_id', NEW.checkout_id,
            'payment_order_id', NEW.payment_order_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'failure', NEW.failure)));
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION refunds_notify() FROM PUBLIC;

-- The trigger that runs it at commit, when a refund is stored succeeded or
-- failed, or becomes so.  A constraint trigger cannot be replaced: it is
-- created when absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.refunds'::regclass AND tgname = 'refunds_notify') THEN
        CREATE CONSTRAINT TRIGGER refunds_notify AFTER INSERT OR UPDATE OF status
            ON refunds DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN ((new.status = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text])))
            EXECUTE FUNCTION refunds_notify();
    END IF;
END
$$;
