-- The sweeper's round: the paid checkouts the risk check asked about
-- before their PSP and not yet after their payment (payments_risk
-- after_payment=on, doc/RISK.md), at most p_limit, the oldest first, of
-- the first checks of the last p_horizon_seconds (a gateway that turns
-- after_payment on does not ask about its past).  What the request needs,
-- the orders as a JSON array, and how long ago the checkout was paid.
CREATE OR REPLACE FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, currency text, amount_total bigint, buyer_email text, psp_payment_ref text, orders text, paid_seconds bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    IF coalesce(p_horizon_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'pay_risk_after_due: a horizon of 1 s at least'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    SELECT c.merchant_id, c.checkout_id, c.psp, c.currency, c.amount_total,
           c.buyer_email, c.psp_payment_ref,
           (SELECT json_agg(json_build_object(
                       'payment_order_id', o.payment_order_id,
                       'seller_account', o.seller_account,
                       'amount_minor', o.amount) ORDER BY o.line_no)
              FROM payment_orders o
             WHERE o.merchant_id = c.merchant_id
               AND o.checkout_id = c.checkout_id)::text,
           greatest(0, floor(date_part('epoch', now() - coalesce(
               (SELECT min(e.at) FROM order_events e
                 WHERE e.merchant_id = c.merchant_id
                   AND e.checkout_id = c.checkout_id
                   AND e.to_status = 'SUCCESS'),
               c.updated_at))))::bigint
      FROM checkout_risk rk
      JOIN checkouts c ON c.merchant_id = rk.merchant_id
                      AND c.checkout_id = rk.checkout_id
     WHERE rk.decided_at > now() - p_horizon_seconds * interval '1 second'
       AND c.status = 'SUCCESS'
       AND NOT EXISTS (SELECT 1 FROM checkout_risk_after a
                        WHERE a.merchant_id = rk.merchant_id
                          AND a.checkout_id = rk.checkout_id)
     ORDER BY rk.decided_at
     LIMIT greatest(1, least(coalesce(p_limit, 50), 1000));
END
$function$;
REVOKE ALL ON FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer) TO payments_gateway;
