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
    -- each part's dispute looked up by its key (a scalar subquery is
    -- never made a join, whose plan made on small tables may walk the
    -- merchant's disputes instead: test plans::each_money_move_reads_...)
    SELECT coalesce(sum(dp.amount), 0) INTO disputed
      FROM dispute_parts dp
     WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
       AND dp.currency = p_currency
       AND (SELECT d.status FROM disputes d
             WHERE d.merchant_id = dp.merchant_id
               AND d.dispute_id = dp.dispute_id) = 'OPEN';
    -- what the seller's PENDING refunds and OPEN chargebacks will take
    -- from the wallet, at most: each order's hold (order_seller_hold), so
    -- an open chargeback holds back the seller's share of it, not the
    -- commission's too; `disputed` is the parts whole, what the
    -- chargebacks claim
    -- (the seller's refunds in flight by refunds_pending_seller, and the
    -- orders named each looked up by its key: not the merchant's refunds
    -- or orders filtered)
    SELECT coalesce(sum(order_seller_hold(p_merchant, x.payment_order_id, 0)), 0)
      INTO v_held
      FROM (SELECT rf.payment_order_id
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.seller_account = p_seller
               AND rf.currency = p_currency AND rf.status = 'PENDING'
            UNION
            SELECT dp.payment_order_id
              FROM dispute_parts dp
             WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
               AND dp.currency = p_currency
               AND (SELECT d.status FROM disputes d
                     WHERE d.merchant_id = dp.merchant_id
                       AND d.dispute_id = dp.dispute_id) = 'OPEN') x
     WHERE (SELECT o.seller_account = p_seller AND o.currency = p_currency
              FROM payment_orders o
             WHERE o.merchant_id = p_merchant
               AND o.payment_order_id = x.payment_order_id);
    available := wallet - pending - v_held;
END
$function$;
REVOKE ALL ON FUNCTION seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint) FROM PUBLIC;
