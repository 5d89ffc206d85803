CREATE OR REPLACE FUNCTION refunds_within_capture()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    o      payment_orders%ROWTYPE;
    v_sum  bigint;
BEGIN
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = NEW.merchant_id AND po.payment_order_id = NEW.payment_order_id
       FOR UPDATE;
    IF o.status <> 'SUCCESS' OR NEW.currency <> o.currency THEN
        RAISE EXCEPTION 'refund %: order % is % in %', NEW.refund_id, o.payment_order_id,
            o.status, o.currency USING ERRCODE = 'PY007';
    END IF;
    v_sum := order_given_back(NEW.merchant_id, NEW.payment_order_id, NEW.refund_id);
    -- a manual-capture order: what was captured of it, not the authorized
    IF v_sum + NEW.amount > coalesce(o.amount_captured, o.amount) THEN
        RAISE EXCEPTION 'refund %: % + % exceeds the % captured less its chargebacks',
            NEW.refund_id, v_sum, NEW.amount, coalesce(o.amount_captured, o.amount)
            USING ERRCODE = 'PY007';
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION refunds_within_capture() FROM PUBLIC;

-- The trigger that runs it, on every refund stored.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER refunds_within_capture BEFORE INSERT ON public.refunds FOR EACH ROW EXECUTE FUNCTION public.refunds_within_capture()');
