-- What order_seller_hold reads of an order, once: its captured amount (the
-- amount when nothing was captured separately), its commission, what it
-- gave back for good and the commission's parts of that
-- (order_given_back_for_good), and its PENDING refunds' and OPEN
-- chargebacks' parts summed (held).  order_seller_hold of p_extra is
-- refund_seller_share(captured, commission, given_back, commission_back,
-- held + p_extra); a refund's claim reads it once for the hold with and
-- without its amount.
CREATE OR REPLACE FUNCTION order_seller_hold_parts(p_merchant text, p_order_id text, OUT captured bigint, OUT commission bigint, OUT given_back bigint, OUT commission_back bigint, OUT held bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    g         record;
    v_seller  text;
    v_cur     text;
BEGIN
    SELECT coalesce(po.amount_captured, po.amount), coalesce(po.commission, 0),
           po.seller_account, po.currency
      INTO captured, commission, v_seller, v_cur
      FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
    SELECT * INTO g FROM order_given_back_for_good(p_merchant, p_order_id);
    given_back := g.given_back;
    commission_back := g.commission_back;
    SELECT (SELECT coalesce(sum(rf.amount), 0)
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.seller_account = v_seller
               AND rf.currency = v_cur AND rf.payment_order_id = p_order_id
               AND rf.status = 'PENDING')
           + (SELECT coalesce(sum(dp.amount), 0)
                FROM dispute_parts dp
               WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
                 AND (SELECT d.status FROM disputes d
                       WHERE d.merchant_id = dp.merchant_id
                         AND d.dispute_id = dp.dispute_id) = 'OPEN')
      INTO held;
END;
$function$;
REVOKE ALL ON FUNCTION order_seller_hold_parts(p_merchant text, p_order_id text, OUT captured bigint, OUT commission bigint, OUT given_back bigint, OUT commission_back bigint, OUT held bigint) FROM PUBLIC;
