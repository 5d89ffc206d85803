-- Frozen at registration: a later change of the merchant's rate never
-- reaches a checkout already registered.
CREATE OR REPLACE FUNCTION checkouts_freeze_commission()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    SELECT m.commission_bps INTO NEW.commission_bps
      FROM merchants m WHERE m.merchant_id = NEW.merchant_id;
    NEW.commission_bps := coalesce(NEW.commission_bps, 0);
    SELECT f.amount INTO NEW.commission_fixed
      FROM merchant_commission_fixed f
     WHERE f.merchant_id = NEW.merchant_id AND f.currency = NEW.currency;
    NEW.commission_fixed := coalesce(NEW.commission_fixed, 0);
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_freeze_commission() FROM PUBLIC;

-- The trigger that runs it, on every checkout stored.
CREATE OR REPLACE TRIGGER checkouts_freeze_commission BEFORE INSERT
    ON checkouts FOR EACH ROW
    EXECUTE FUNCTION checkouts_freeze_commission();
