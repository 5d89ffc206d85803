-- A pay-out's notification, at commit: payout.paid or payout.failed when it
-- is stored paid or failed, or becomes so (a whole reversal after it was
-- paid is payout.failed, whatever amount_reversed it reaches with it), and
-- payout.reversed when a paid pay-out stays paid and what the PSP took back
-- of it (amount_reversed) grows: a partial reversal, told once per growth
-- (payout_event_apply books nothing, and writes nothing, for the same total
-- told again).
CREATE OR REPLACE FUNCTION payouts_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_type  text;
    v_data  jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        IF NEW.status <> 'PAID' OR NEW.amount_reversed <= OLD.amount_reversed THEN
            RETURN NULL;
        END IF;
        v_type := 'payout.reversed';
    ELSE
        v_type := CASE NEW.status WHEN 'PAID' THEN 'payout.paid' ELSE 'payout.failed' END;
    END IF;
    v_data := jsonb_build_object(
                  'payout_id', NEW.payout_id,
                  'seller_account', NEW.seller_account,
                  'status', NEW.status,
                  'amount_minor', NEW.amount,
                  'amount', money_decimal(NEW.amount, NEW.currency),
                  'currency', NEW.currency,
                  'metadata', NEW.metadata,
                  'failure', NEW.failure);
    IF v_type = 'payout.reversed' THEN
        v_data := v_data || jsonb_build_object(
                      'amount_reversed_minor', NEW.amount_reversed,
                      'amount_reversed', money_decimal(NEW.amount_reversed, NEW.currency));
    END IF;
    PERFORM notify_enqueue(NEW.merchant_id, v_type, NULL, NEW.payout_id,
                           jsonb_strip_nulls(v_data));
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION payouts_notify() FROM PUBLIC;

-- The trigger that runs it at commit, when a pay-out is stored paid or
-- failed, or becomes so, or a paid one's amount_reversed moves.  A
-- constraint trigger cannot be replaced: it is created when absent (a
-- migration that changes it drops it first).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.payouts'::regclass AND tgname = 'payouts_notify') THEN
        CREATE CONSTRAINT TRIGGER payouts_notify AFTER INSERT OR UPDATE OF status, amount_reversed
            ON payouts DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN ((new.status = ANY (ARRAY['PAID'::text, 'FAILED'::text])))
            EXECUTE FUNCTION payouts_notify();
    END IF;
END
$$;
