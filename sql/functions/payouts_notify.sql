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
