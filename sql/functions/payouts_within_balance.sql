-- No pay-out beyond the available balance: the wallet row is locked (every
-- pay-out of a seller in a currency takes it first).
CREATE OR REPLACE FUNCTION payouts_within_balance()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    b  record;
BEGIN
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = NEW.merchant_id AND w.seller_account = NEW.seller_account
       AND w.currency = NEW.currency FOR UPDATE;
    SELECT * INTO b FROM seller_available(NEW.merchant_id, NEW.seller_account, NEW.currency);
    IF NEW.amount > b.available THEN
        RAISE EXCEPTION 'pay-out %: % exceeds the seller''s available %', NEW.payout_id,
            NEW.amount, b.available USING ERRCODE = 'PY008';
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION payouts_within_balance() FROM PUBLIC;

-- The trigger that runs it, on every pay-out stored.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER payouts_within_balance BEFORE INSERT ON public.payouts FOR EACH ROW EXECUTE FUNCTION public.payouts_within_balance()');
