CREATE OR REPLACE FUNCTION checkouts_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_type  text := CASE NEW.status WHEN 'SUCCESS' THEN 'checkout.succeeded'
                                    ELSE 'checkout.failed' END;
BEGIN
    -- notify_enqueue's own test of the endpoints, before the payload is made
    PERFORM 1 FROM notify_endpoints e
     WHERE e.merchant_id = NEW.merchant_id
       AND (e.event_types = '{}' OR v_type = ANY (e.event_types))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM notify_enqueue(
        NEW.merchant_id, v_type, NEW.checkout_id, NEW.checkout_id,
        jsonb_build_object(
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_total_minor', NEW.amount_total,
            'currency', NEW.currency,
            'payment_orders', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'payment_order_id', o.payment_order_id,
                           'status', o.status,
                           'amount_minor', o.amount,
                           'currency', o.currency) ORDER BY o.line_no)
                  FROM payment_orders o
                 WHERE o.merchant_id = NEW.merchant_id
                   AND o.checkout_id = NEW.checkout_id), '[]'::jsonb))
        -- why it failed, on checkout.failed only
        || CASE WHEN NEW.status = 'FAILED' AND NEW.failure_code IS NOT NULL
                THEN jsonb_build_object('failure',
                         checkout_failure(NEW.failure_code, NEW.failure))
                ELSE '{}'::jsonb END);
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_notify() FROM PUBLIC;
