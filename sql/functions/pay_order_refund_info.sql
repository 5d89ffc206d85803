-- What a refund request needs before its amount can be read: the order's
-- currency and PSP (no row: no such order of this merchant).
CREATE OR REPLACE FUNCTION pay_order_refund_info(p_merchant text, p_order_id text)
 RETURNS TABLE(currency text, psp text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT o.currency, c.psp
      FROM payment_orders o
      JOIN checkouts c ON c.merchant_id = o.merchant_id AND c.checkout_id = o.checkout_id
     WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id;
$function$;
REVOKE ALL ON FUNCTION pay_order_refund_info(p_merchant text, p_order_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_order_refund_info(p_merchant text, p_order_id text) TO payments_gateway;
