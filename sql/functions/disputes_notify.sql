CREATE OR REPLACE FUNCTION disputes_notify()
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
        CASE NEW.status WHEN 'OPEN' THEN 'dispute.opened'
                        WHEN 'WON' THEN 'dispute.won' ELSE 'dispute.lost' END,
        NEW.checkout_id, NEW.dispute_id,
        jsonb_build_object(
            'dispute_id', NEW.dispute_id,
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency));
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION disputes_notify() FROM PUBLIC;

-- The trigger that runs it at commit, when a dispute is stored or its status
-- changes.  A constraint trigger cannot be replaced: it is created when
-- absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.disputes'::regclass AND tgname = 'disputes_notify') THEN
        CREATE CONSTRAINT TRIGGER disputes_notify AFTER INSERT OR UPDATE OF status
            ON disputes DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW
            EXECUTE FUNCTION disputes_notify();
    END IF;
END
$$;
