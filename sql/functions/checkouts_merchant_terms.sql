-- A checkout takes its merchant's terms, read in one look-up of the
-- merchant:
--   - it has a merchant (23503 otherwise): what a foreign key to merchants
--     would check, without the KEY SHARE lock on the merchant's row that
--     such a check takes (concurrent registrations of one merchant would
--     turn it into MultiXacts); merchants are never deleted or renamed
--     (merchants_keep), so the row read stays;
--   - it is only ever bound to a PSP its merchant may use (merchants.psps,
--     payments-merchant set-psps; NULL: any): checked when pay_claim
--     registers it and when pay_route_bind moves it on.  Raises PY035, which
--     the gateway answers as a refusal of that PSP (nothing is stored:
--     pay_claim's whole transaction rolls back);
--   - its commission is frozen at registration (the merchant's rate, and its
--     fixed part in the checkout's currency): a later change of the
--     merchant's rate never reaches a checkout already registered
--     (checkouts_commission_frozen keeps it so).
-- One trigger, not one per rule: each was a trigger call and a look-up of
-- the same merchant at every registration, and pay_claim looked it up once
-- more (migration 099).
CREATE OR REPLACE FUNCTION checkouts_merchant_terms()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_psps   text[];
    v_bps    integer;
    v_fixed  bigint;
BEGIN
    SELECT m.psps, m.commission_bps, f.amount INTO v_psps, v_bps, v_fixed
      FROM merchants m
      LEFT JOIN merchant_commission_fixed f
             ON f.merchant_id = m.merchant_id AND f.currency = NEW.currency
     WHERE m.merchant_id = NEW.merchant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkouts: no merchant %', NEW.merchant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT NEW.psp = ANY (v_psps) THEN
        RAISE EXCEPTION 'psp % is not one of this merchant''s PSPs', NEW.psp
            USING ERRCODE = 'PY035';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.commission_bps := coalesce(v_bps, 0);
        NEW.commission_fixed := coalesce(v_fixed, 0);
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_merchant_terms() FROM PUBLIC;

-- The trigger that runs it, on every checkout stored and every change of a
-- checkout's PSP.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER checkouts_merchant_terms BEFORE INSERT OR UPDATE OF psp ON public.checkouts FOR EACH ROW EXECUTE FUNCTION public.checkouts_merchant_terms()');
