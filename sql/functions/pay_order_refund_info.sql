-- What a refund request needs before its amount can be read: the order's
-- currency and PSP (no row: no such order of this merchant).
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_order_refund_info(p_merchant text, p_order_id text)
 RETURNS TABLE(currency text, psp text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- the order's checkout by its key, in a subquery of its own (OFFSET
    -- 0): as a join, a plan made on small tables walks the merchant's
    -- checkouts (test plans::each_money_move_reads_...)
    SELECT o.currency, c.psp
      FROM payment_orders o,
           LATERAL (SELECT x.psp FROM checkouts x
                     WHERE x.merchant_id = o.merchant_id
                       AND x.checkout_id = o.checkout_id OFFSET 0) c
     WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_order_refund_info(p_merchant text, p_order_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_order_refund_info(p_merchant text, p_order_id text) TO payments_gateway;
