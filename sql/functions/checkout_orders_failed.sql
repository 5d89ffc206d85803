-- A checkout's orders still EXECUTING moved to FAILED, each with its order
-- event (p_source), in line order: the ids moved, as a JSON array in line
-- order, NULL when none was.  The one place that fails a checkout's orders
-- for checkout_orders_fail (a PSP's refusal), risk_verdict_record (a deny)
-- and pay_review_reject; each caller moves the checkout itself and writes
-- its own audit row with these ids.
CREATE OR REPLACE FUNCTION checkout_orders_failed(p_merchant text, p_checkout_id text, p_source text)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    WITH moved AS (
        UPDATE payment_orders o
           SET status = 'FAILED', updated_at = now()
         WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout_id
           AND o.status = 'EXECUTING'
        RETURNING o.payment_order_id, o.line_no
    ), ev AS (
        INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                  from_status, to_status, source)
        SELECT p_merchant, p_checkout_id, moved.payment_order_id,
               'EXECUTING', 'FAILED', p_source
          FROM moved ORDER BY moved.line_no
    )
    SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no) FROM moved;
$function$;
REVOKE ALL ON FUNCTION checkout_orders_failed(p_merchant text, p_checkout_id text, p_source text) FROM PUBLIC;
