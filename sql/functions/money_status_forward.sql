CREATE OR REPLACE FUNCTION money_status_forward()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_from  text := CASE TG_TABLE_NAME WHEN 'disputes' THEN 'OPEN' ELSE 'PENDING' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'PY002';
    END IF;
    IF NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency
       OR NEW.merchant_id <> OLD.merchant_id THEN
        RAISE EXCEPTION '%: amount, currency and merchant never change', TG_TABLE_NAME
            USING ERRCODE = 'PY002';
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status AND OLD.status <> v_from
       AND NOT (TG_TABLE_NAME = 'refunds' AND OLD.status = 'SUCCEEDED' AND NEW.status = 'FAILED')
       -- a capture the PSP took back after confirming it (capture_event_apply)
       AND NOT (TG_TABLE_NAME = 'captures' AND OLD.status = 'SUCCEEDED' AND NEW.status = 'FAILED')
       AND NOT (TG_TABLE_NAME = 'payouts' AND OLD.status = 'PAID' AND NEW.status = 'FAILED')
       AND NOT (TG_TABLE_NAME = 'disputes' AND OLD.status = 'WON' AND NEW.status = 'LOST')
    THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY009';
    END IF;
    -- what the claims and releases note of the PSP calls (psp_contact) is
    -- not a change of the refund, capture or pay-out: its updated_at stays
    IF (to_jsonb(NEW) -> 'psp_contact') IS DISTINCT FROM (to_jsonb(OLD) -> 'psp_contact')
       AND to_jsonb(NEW) - 'psp_contact' = to_jsonb(OLD) - 'psp_contact' THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION money_status_forward() FROM PUBLIC;

-- The triggers that run it, on every change of a refund's, pay-out's,
-- dispute's or capture's row.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER disputes_forward BEFORE DELETE OR UPDATE ON public.disputes FOR EACH ROW EXECUTE FUNCTION public.money_status_forward()',
    'CREATE TRIGGER payouts_forward BEFORE DELETE OR UPDATE ON public.payouts FOR EACH ROW EXECUTE FUNCTION public.money_status_forward()',
    'CREATE TRIGGER refunds_forward BEFORE DELETE OR UPDATE ON public.refunds FOR EACH ROW EXECUTE FUNCTION public.money_status_forward()',
    'CREATE TRIGGER captures_forward BEFORE DELETE OR UPDATE ON public.captures FOR EACH ROW EXECUTE FUNCTION public.money_status_forward()');
