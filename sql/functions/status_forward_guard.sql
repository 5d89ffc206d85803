CREATE OR REPLACE FUNCTION status_forward_guard()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Only reached through the INSERT trigger's WHEN: a row born terminal.
        RAISE EXCEPTION '%: a new row cannot start in status %', TG_TABLE_NAME, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    IF NOT ((OLD.status = 'NOT_STARTED' AND NEW.status = 'EXECUTING')
            OR (OLD.status = 'EXECUTING' AND NEW.status IN ('AUTHORIZED', 'SUCCESS', 'FAILED'))
            -- a hold is captured (SUCCESS), or released or expired (FAILED)
            OR (OLD.status = 'AUTHORIZED' AND NEW.status IN ('SUCCESS', 'FAILED'))
            OR (OLD.status = 'FAILED' AND NEW.status IN ('AUTHORIZED', 'SUCCESS')
                AND coalesce(current_setting('payments.paid_after_failed', true), '') = 'on')) THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION status_forward_guard() FROM PUBLIC;
