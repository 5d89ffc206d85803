CREATE OR REPLACE FUNCTION seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_refunding  bigint;
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
    -- what the seller's PENDING refunds will take from the wallet, at
    -- most: of an order, refunds of R in all give back R - floor(R * C / A)
    -- of the seller's (the commission rule telescopes), which grows with
    -- R, so its PENDING refunds take at most f(S + P) - f(S), S and P its
    -- SUCCEEDED and PENDING refunds, f(x) = x - floor(x * C / A), whichever
    -- of them succeed and in whatever order
    SELECT coalesce(sum(refund_seller_share(x.a, x.c, x.s, x.p)), 0)
      INTO v_refunding
      FROM (SELECT coalesce(o.amount_captured, o.amount) AS a,
                   coalesce(o.commission, 0) AS c,
                   sum(rf.amount)::bigint AS p,
                   (SELECT coalesce(sum(sr.amount), 0)::bigint FROM refunds sr
                     WHERE sr.merchant_id = o.merchant_id
                       AND sr.payment_order_id = o.payment_order_id
                       AND sr.status = 'SUCCEEDED') AS s
              FROM refunds rf
              JOIN payment_orders o ON o.merchant_id = rf.merchant_id
                                   AND o.payment_order_id = rf.payment_order_id
             WHERE rf.merchant_id = p_merchant AND rf.status = 'PENDING'
               AND o.seller_account = p_seller AND o.currency = p_currency
             GROUP BY o.merchant_id, o.payment_order_id, o.amount, o.amount_captured,
                      o.commission) x;
    available := wallet - pending - disputed - v_refunding;
END
$function$;
REVOKE ALL ON FUNCTION seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint) FROM PUBLIC;
