-- A checkout held for review, as the approval rebuilds its PSP request
-- from: its status, the review's outcome so far, its PSP, and the body of
-- POST /v1/payments that makes the same checkout, every field the first
-- registration built its PSP request from (orders with amounts as decimal
-- strings, as pay_checkout_parse reads them; return URLs; buyer e-mail;
-- metadata; capture; a save asked for or the saved method charged; the
-- stored expires_at, which the approval keeps
-- while the PSP still takes it).  A field left out here would register
-- another checkout than the one the shop asked for (a manual capture
-- captured at once).  No row: no such checkout, or it never was held for
-- review.  live: its merchant's mode (the approval sends it to a PSP of
-- that mode only: a PSP's name may have been given the other mode= since).
CREATE OR REPLACE FUNCTION pay_review_get(p_merchant text, p_checkout_id text)
 RETURNS TABLE(status text, reviewed text, psp text, body text, live boolean)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.status::text, rk.reviewed, c.psp,
           jsonb_strip_nulls(jsonb_build_object(
               'checkout_id', c.checkout_id,
               'psp', c.psp,
               'success_url', c.success_url,
               'cancel_url', c.cancel_url,
               'buyer_info', CASE WHEN c.buyer_email IS NOT NULL
                                  THEN jsonb_build_object('email', c.buyer_email) END,
               'metadata', nullif(c.metadata, '{}'::jsonb),
               'capture', c.capture_method,
               'expires_at', ts_epoch(c.expires_at),
               -- a save asked for, or a saved method charged off-session
               'save_payment_method', CASE WHEN c.save_method IS NOT NULL THEN
                   jsonb_build_object('customer', c.save_method -> 'customer',
                                      'usage', c.save_method -> 'usage',
                                      'schedule', CASE c.save_method ->> 'recurring'
                                                      WHEN 'Subscription' THEN 'subscription'
                                                      WHEN 'UnscheduledCardOnFile' THEN 'unscheduled'
                                                  END,
                                      'shopper_agreed', true) END,
               'payment_method', c.payment_method_id,
               'off_session', CASE WHEN c.payment_method_id IS NOT NULL THEN true END,
               'payment_orders', (
                   SELECT jsonb_agg(jsonb_build_object(
                              'payment_order_id', o.payment_order_id,
                              'seller_account', o.seller_account,
                              'amount', money_decimal(o.amount, o.currency),
                              'currency', o.currency) ORDER BY o.line_no)
                     FROM payment_orders o
                    WHERE o.merchant_id = c.merchant_id
                      AND o.checkout_id = c.checkout_id)))::text,
           m.mode = 'live'
      FROM checkouts c
      JOIN checkout_risk rk ON rk.merchant_id = c.merchant_id
                           AND rk.checkout_id = c.checkout_id
      JOIN merchants m ON m.merchant_id = c.merchant_id
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       AND rk.verdict = 'review';
END
$function$;
REVOKE ALL ON FUNCTION pay_review_get(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_review_get(p_merchant text, p_checkout_id text) TO payments_gateway;
