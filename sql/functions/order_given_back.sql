-- What of an order is given back or held for a chargeback: its PENDING and
-- SUCCEEDED refunds (but p_except), and its parts of OPEN and LOST disputes.
CREATE OR REPLACE FUNCTION order_given_back(p_merchant text, p_order_id text, p_except text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT (SELECT coalesce(sum(rf.amount), 0) FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
               AND rf.status IN ('PENDING', 'SUCCEEDED')
               AND rf.refund_id IS DISTINCT FROM p_except)
         + (SELECT coalesce(sum(dp.amount + dp.excess), 0) FROM dispute_parts dp
             WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
               AND (SELECT d.status FROM disputes d
                     WHERE d.merchant_id = dp.merchant_id
                       AND d.dispute_id = dp.dispute_id) IN ('OPEN', 'LOST'))::bigint;
$function$;
REVOKE ALL ON FUNCTION order_given_back(p_merchant text, p_order_id text, p_except text) FROM PUBLIC;
