CREATE OR REPLACE FUNCTION pay_get_order(p_merchant text, p_order_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'payment_order_id', o.payment_order_id,
                   'checkout_id', o.checkout_id,
                   'status', o.status,
                   'amount_minor', o.amount,
                   'currency', o.currency,
                   'seller_account', o.seller_account,
                   'psp', c.psp,
                   'psp_token', checkout_shown_token(c.psp_token, c.payment_method_id,
                                                     c.psp_payment_ref),
                   'created_at', ts_rfc3339(o.created_at),
                   'updated_at', ts_rfc3339(o.updated_at),
                   'commission_minor', o.commission,
                   -- manual capture: NULL (left out) for an automatic order
                   'captured_minor', o.amount_captured,
                   'captures', CASE WHEN o.amount_captured IS NOT NULL THEN COALESCE((
                       SELECT json_agg(json_build_object(
                                  'capture_id', x.capture_id,
                                  'kind', x.kind,
                                  'status', x.status,
                                  'amount_minor', x.amount,
                                  'currency', x.currency,
                                  'psp_ref', x.psp_ref,
                                  'created_at', ts_rfc3339(x.created_at),
                                  'updated_at', ts_rfc3339(x.updated_at))
                                  ORDER BY x.created_at, x.capture_id)
                         FROM captures x
                        WHERE x.merchant_id = o.merchant_id
                          AND x.payment_order_id = o.payment_order_id), '[]'::json) END,
                   'refunds', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'refund_id', r.refund_id,
                                  'status', r.status,
                                  'amount_minor', r.amount,
                                  'currency', r.currency,
                                  'reason', r.reason,
                                  'metadata', r.metadata,
                                  'psp_refund_id', r.psp_refund_id,
                                  'created_at', ts_rfc3339(r.created_at),
                                  'updated_at', ts_rfc3339(r.updated_at))
                                  ORDER BY r.created_at, r.refund_id)
                         FROM refunds r
                        WHERE r.merchant_id = o.merchant_id
                          AND r.payment_order_id = o.payment_order_id), '[]'::json),
                   'disputes', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'dispute_id', d.dispute_id,
                                  'status', d.status,
                                  'amount_minor', dp.amount + dp.excess,
                                  'currency', d.currency,
                                  'psp_dispute_id', d.psp_dispute_ref,
                                  'created_at', ts_rfc3339(d.created_at),
                                  'updated_at', ts_rfc3339(d.updated_at))
                                  ORDER BY d.created_at, d.dispute_id)
                         FROM dispute_parts dp,
                              LATERAL (SELECT * FROM disputes x
                                        WHERE x.merchant_id = dp.merchant_id
                                          AND x.dispute_id = dp.dispute_id OFFSET 0) d
                        WHERE dp.merchant_id = o.merchant_id
                          AND dp.payment_order_id = o.payment_order_id), '[]'::json))::text
          -- the order's checkout and each part's dispute looked up by
          -- their keys in subqueries of their own (OFFSET 0 keeping them
          -- so): as joins, a plan made on small tables walks the
          -- merchant's checkouts and disputes (test
          -- plans::each_money_move_reads_...)
          FROM payment_orders o,
               LATERAL (SELECT * FROM checkouts x
                         WHERE x.merchant_id = o.merchant_id
                           AND x.checkout_id = o.checkout_id OFFSET 0) c
         WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_get_order(p_merchant text, p_order_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_get_order(p_merchant text, p_order_id text) TO payments_gateway;
