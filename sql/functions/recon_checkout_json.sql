CREATE OR REPLACE FUNCTION recon_checkout_json(p_merchant text, p_checkout text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT jsonb_build_object('merchant_id', c.merchant_id, 'checkout_id', c.checkout_id,
               'psp', c.psp, 'status', c.status, 'amount_total', c.amount_total,
               'currency', c.currency, 'created_at', c.created_at,
               'orders', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'payment_order_id', o.payment_order_id,
                              'seller_account', o.seller_account, 'amount', o.amount,
                              'currency', o.currency, 'status', o.status)
                            ORDER BY o.line_no), '[]'::jsonb)
                            FROM payment_orders o
                           WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id))
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout;
$function$;
REVOKE ALL ON FUNCTION recon_checkout_json(p_merchant text, p_checkout text) FROM PUBLIC;
