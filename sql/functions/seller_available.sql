CREATE OR REPLACE FUNCTION seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_held  bigint;
BEGIN
    SELECT coalesce((SELECT w.balance FROM wallets w
                      WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
                        AND w.currency = p_currency), 0) INTO wallet;
    SELECT coalesce(sum(p.amount), 0) INTO pending FROM payouts p
     WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller
       AND p.currency = p_currency AND p.status = 'PENDING';
    SELECT coalesce(sum(dp.amount), 0) INTO disputed
      FROM dispute_parts dp
      JOIN disputes d ON d.merchant_id = dp.merchant_id AND d.dispute_id = dp.dispute_id
     WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
       AND dp.currency = p_currency AND d.status = 'OPEN';
    -- what the seller's PENDING refunds and OPEN chargebacks will take
    -- from the wallet, at most: of an order, its PENDING refunds and its
    -- OPEN chargebacks' parts, P in all, take P less the commission's part
    -- refund_event_apply would book for one refund of P (against S and B,
    -- what the order gave back for good and the commission's parts of it:
    -- order_given_back_for_good): exactly that for one, and never less for
    -- several, whichever of them succeed or are lost and in whatever order
    -- (refund_seller_share; a chargeback lost is booked as a refund of its
    -- part would be, dispute_event_apply).  So an open chargeback holds back
    -- the seller's share of it, not the commission's too; `disputed` is
    -- the parts whole, what the chargebacks claim.
    SELECT coalesce(sum(refund_seller_share(x.a, x.c, st.s, st.b, x.p)), 0)
      INTO v_held
      FROM (SELECT o.merchant_id, o.payment_order_id,
                   coalesce(o.amount_captured, o.amount) AS a,
                   coalesce(o.commission, 0) AS c,
                   sum(t.amount)::bigint AS p
              FROM (SELECT rf.payment_order_id, rf.amount
                      FROM refunds rf
                     WHERE rf.merchant_id = p_merchant AND rf.status = 'PENDING'
                    UNION ALL
                    SELECT dp.payment_order_id, dp.amount
                      FROM dispute_parts dp
                      JOIN disputes d ON d.merchant_id = dp.merchant_id
                                     AND d.dispute_id = dp.dispute_id
                     WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
                       AND dp.currency = p_currency AND d.status = 'OPEN') t
              JOIN payment_orders o ON o.merchant_id = p_merchant
                                   AND o.payment_order_id = t.payment_order_id
             WHERE o.seller_account = p_seller AND o.currency = p_currency
             GROUP BY o.merchant_id, o.payment_order_id, o.amount, o.amount_captured,
                      o.commission) x
     CROSS JOIN LATERAL
           (SELECT g.given_back AS s, g.commission_back AS b
              FROM order_given_back_for_good(x.merchant_id, x.payment_order_id) g) st;
    available := wallet - pending - v_held;
END
$function$;
REVOKE ALL ON FUNCTION seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint) FROM PUBLIC;
