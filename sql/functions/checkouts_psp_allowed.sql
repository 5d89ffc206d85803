-- A checkout is only ever bound to a PSP its merchant may use
-- (merchants.psps, payments-merchant set-psps; NULL: any): checked when
-- pay_claim registers it and when pay_route_bind moves it on.  Raises
-- PY035, which the gateway answers as a refusal of that PSP (nothing is
-- stored: pay_claim's whole transaction rolls back).
CREATE OR REPLACE FUNCTION checkouts_psp_allowed()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM merchants m
                WHERE m.merchant_id = NEW.merchant_id AND m.psps IS NOT NULL
                  AND NOT NEW.psp = ANY (m.psps)) THEN
        RAISE EXCEPTION 'psp % is not one of this merchant''s PSPs', NEW.psp
            USING ERRCODE = 'PY035';
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_psp_allowed() FROM PUBLIC;

DROP TRIGGER IF EXISTS checkouts_psp_allowed ON checkouts;
CREATE TRIGGER checkouts_psp_allowed BEFORE INSERT OR UPDATE OF psp ON checkouts
    FOR EACH ROW EXECUTE FUNCTION checkouts_psp_allowed();
