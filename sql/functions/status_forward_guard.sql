-- No SET search_path: it names no table, type or function of ours
-- (CONTRIBUTING.md, "SQL").
CREATE OR REPLACE FUNCTION status_forward_guard()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Only reached through the INSERT trigger's WHEN: a row born terminal.
        RAISE EXCEPTION '%: a new row cannot start in status %', TG_TABLE_NAME, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    -- an update that names the status and leaves it (the trigger has no
    -- WHEN: a trigger's condition is read back and prepared at every
    -- statement, which costs more than this call; bench/RESULTS.md)
    IF OLD.status = NEW.status THEN
        RETURN NEW;
    END IF;
    -- A PSP's answer (EXECUTING to its result) is tested alone first: the
    -- whole list below is prepared (anew in every transaction, as PL/pgSQL
    -- prepares an expression) only for the other moves.
    IF NOT (OLD.status = 'EXECUTING' AND NEW.status IN ('AUTHORIZED', 'SUCCESS', 'FAILED')) THEN
        IF NOT ((OLD.status = 'NOT_STARTED' AND NEW.status = 'EXECUTING')
                OR (OLD.status = 'EXECUTING' AND NEW.status IN ('AUTHORIZED', 'SUCCESS', 'FAILED'))
                -- a hold is captured (SUCCESS), or released or expired (FAILED)
                OR (OLD.status = 'AUTHORIZED' AND NEW.status IN ('SUCCESS', 'FAILED'))
                -- a checkout held for a person's review (the risk check), then
                -- approved (registered at its PSP) or rejected
                OR (TG_TABLE_NAME = 'checkouts' AND OLD.status = 'EXECUTING'
                    AND NEW.status = 'REVIEW')
                OR (TG_TABLE_NAME = 'checkouts' AND OLD.status = 'REVIEW'
                    AND NEW.status IN ('EXECUTING', 'FAILED'))
                OR (OLD.status = 'FAILED' AND NEW.status IN ('AUTHORIZED', 'SUCCESS')
                    AND coalesce(current_setting('payments.paid_after_failed', true), '') = 'on')) THEN
            RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
                USING ERRCODE = 'PY001';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION status_forward_guard() FROM PUBLIC;

-- The triggers that run it, on every change of a checkout's or order's
-- status, and on a row stored with a terminal one.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER checkouts_status_forward BEFORE UPDATE OF status ON public.checkouts FOR EACH ROW EXECUTE FUNCTION public.status_forward_guard()',
    'CREATE TRIGGER checkouts_status_insert BEFORE INSERT ON public.checkouts FOR EACH ROW WHEN ((new.status <> ALL (ARRAY[''NOT_STARTED''::public.pay_status, ''EXECUTING''::public.pay_status]))) EXECUTE FUNCTION public.status_forward_guard()',
    'CREATE TRIGGER payment_orders_status_forward BEFORE UPDATE OF status ON public.payment_orders FOR EACH ROW EXECUTE FUNCTION public.status_forward_guard()',
    'CREATE TRIGGER payment_orders_status_insert BEFORE INSERT ON public.payment_orders FOR EACH ROW WHEN ((new.status <> ALL (ARRAY[''NOT_STARTED''::public.pay_status, ''EXECUTING''::public.pay_status]))) EXECUTE FUNCTION public.status_forward_guard()');
