-- A refund's seller is its order's (refunds.seller_account, migration
-- 140): written here on every new refund, whatever inserts it, so that a
-- seller's refunds in flight (refunds_pending_seller: seller_available,
-- order_seller_hold_parts) are every one of them.
CREATE OR REPLACE FUNCTION refunds_seller()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    SELECT po.seller_account INTO NEW.seller_account
      FROM payment_orders po
     WHERE po.merchant_id = NEW.merchant_id
       AND po.payment_order_id = NEW.payment_order_id;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION refunds_seller() FROM PUBLIC;

-- The trigger that runs it, on every new refund.  Made, or made anew, only
-- when missing or other than written here (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER refunds_seller BEFORE INSERT ON public.refunds FOR EACH ROW EXECUTE FUNCTION public.refunds_seller()');
