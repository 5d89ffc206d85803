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
