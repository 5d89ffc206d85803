CREATE OR REPLACE FUNCTION payouts_notify()
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
        CASE NEW.status WHEN 'PAID' THEN 'payout.paid' ELSE 'payout.failed' END,
        NULL, NEW.payout_id,
        jsonb_strip_nulls(jsonb_build_object(
            'payout_id', NEW.payout_id,
            'seller_account', NEW.seller_account,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'failure', NEW.failure)));
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION payouts_notify() FROM PUBLIC;

-- The trigger that runs it at commit, when a pay-out is stored paid or
-- failed, or becomes so.  A constraint trigger cannot be replaced: it is
-- created when absent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.payouts'::regclass AND tgname = 'payouts_notify') THEN
        CREATE CONSTRAINT TRIGGER payouts_notify AFTER INSERT OR UPDATE OF status
            ON payouts DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN ((new.status = ANY (ARRAY['PAID'::text, 'FAILED'::text])))
            EXECUTE FUNCTION payouts_notify();
    END IF;
END
$$;
