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
