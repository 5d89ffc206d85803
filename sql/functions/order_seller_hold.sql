-- What an order's PENDING refunds and OPEN chargebacks' parts, with
-- p_extra more (a refund being claimed; 0 for none), will take from its
-- seller's wallet at most: their sum P taken as one refund of P would take
-- it (refund_seller_share: P less the commission's part refund_event_apply
-- would book, against what the order gave back for good and the
-- commission's parts of it, order_given_back_for_good).  Exactly that for
-- one, and never less for several, whichever of them succeed or are lost
-- and in whatever order (a chargeback lost is booked as a refund of its
-- part would be: dispute_event_apply).  seller_available sums it over the
-- seller's orders; a refund's claim checks what it grows by with its
-- amount.  Without a commission it is P itself.
CREATE OR REPLACE FUNCTION order_seller_hold(p_merchant text, p_order_id text, p_extra bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_p  bigint;
    o    record;
    g    record;
BEGIN
    SELECT po.amount, po.amount_captured, po.commission INTO o
      FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
    SELECT * INTO g FROM order_given_back_for_good(p_merchant, p_order_id);
    SELECT p_extra
           + (SELECT coalesce(sum(rf.amount), 0)
                FROM refunds rf
               WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
                 AND rf.status = 'PENDING')
           + (SELECT coalesce(sum(dp.amount), 0)
                FROM dispute_parts dp
                JOIN disputes d ON d.merchant_id = dp.merchant_id
                               AND d.dispute_id = dp.dispute_id
               WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
                 AND d.status = 'OPEN')
      INTO v_p;
    RETURN refund_seller_share(coalesce(o.amount_captured, o.amount),
                               coalesce(o.commission, 0), g.given_back,
                               g.commission_back, v_p);
END;
$function$;
REVOKE ALL ON FUNCTION order_seller_hold(p_merchant text, p_order_id text, p_extra bigint) FROM PUBLIC;
