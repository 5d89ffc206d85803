CREATE OR REPLACE FUNCTION pay_get_checkout(p_merchant text, p_checkout_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'checkout_id', c.checkout_id,
                   'status', c.status,
                   'psp', c.psp,
                   -- an off-session charge's payment id, from its
                   -- webhook when no answer stored it
                   'psp_token', checkout_shown_token(c.psp_token, c.payment_method_id,
                                                     c.psp_payment_ref),
                   -- a page to pay at (a pay link): not an off-session
                   -- charge the PSP took
                   'hosted', c.psp_url IS NOT NULL,
                   -- as the 201 said: a saved method charged off-session,
                   -- a save asked for
                   'payment_method', c.payment_method_id,
                   'save_payment_method', CASE WHEN c.save_method IS NOT NULL THEN
                       json_build_object('customer', c.save_method ->> 'customer',
                                         'usage', c.save_method ->> 'usage') END,
                   'expires_at', ts_rfc3339(c.expires_at),
                   'failure', checkout_failure(c.failure_code, c.failure),
                   -- paid after it had failed: the PSP's success came last
                   'paid_after_failure', c.status = 'SUCCESS' AND c.failure_code IS NOT NULL,
                   'currency', c.currency,
                   'metadata', c.metadata,
                   -- the risk check's verdict, when one was asked
                   'risk', (SELECT json_build_object(
                                'verdict', rk.verdict, 'score', rk.score,
                                'reason', rk.reason, 'source', rk.source,
                                'review', rk.reviewed,
                                -- asked again once paid (after_payment=on)
                                'after_payment', (
                                    SELECT json_build_object(
                                               'verdict', a.verdict,
                                               'score', a.score,
                                               'reason', a.reason,
                                               'source', a.source,
                                               'decided_at', ts_rfc3339(a.decided_at))
                                      FROM checkout_risk_after a
                                     WHERE a.merchant_id = rk.merchant_id
                                       AND a.checkout_id = rk.checkout_id))
                              FROM checkout_risk rk
                             WHERE rk.merchant_id = c.merchant_id
                               AND rk.checkout_id = c.checkout_id),
                   'capture', c.capture_method,
                   -- a save without a charge: no orders, amount 0
                   'mode', CASE WHEN c.amount_total = 0 THEN 'setup' ELSE 'payment' END,
                   'payment_orders', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'payment_order_id', o.payment_order_id,
                                  'seller_account', o.seller_account,
                                  'amount_minor', o.amount,
                                  'currency', o.currency,
                                  'status', o.status) ORDER BY o.line_no)
                         FROM payment_orders o
                        WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id),
                       '[]'::json),
                   'events', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'at', ts_rfc3339(e.at),
                                  'payment_order_id', e.payment_order_id,
                                  'from', e.from_status,
                                  'to', e.to_status,
                                  'source', e.source) ORDER BY e.event_id)
                         FROM order_events e
                        WHERE e.merchant_id = c.merchant_id AND e.checkout_id = c.checkout_id),
                       '[]'::json),
                   -- routed (payments_route): the route and each PSP tried,
                   -- with why it moved on; NULL when it was not routed
                   'routing', (
                       SELECT json_build_object(
                                  'route', (array_agg(r.route ORDER BY r.seq))[1],
                                  'psps', json_agg(json_build_object(
                                              'psp', r.psp,
                                              'moved_on', r.moved_on,
                                              'at', ts_rfc3339(r.at)) ORDER BY r.seq))
                         FROM checkout_routes r
                        WHERE r.merchant_id = c.merchant_id AND r.checkout_id = c.checkout_id
                       HAVING count(*) > 0))::text
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_get_checkout(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_get_checkout(p_merchant text, p_checkout_id text) TO payments_gateway;
