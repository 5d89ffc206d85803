-- A manual-capture checkout's authorization ends (its void, the PSP's
-- final capture, or its expiry): what is not captured is released, never
-- booked.  Orders that captured nothing move AUTHORIZED -> FAILED; the
-- checkout is FAILED with p_code when nothing of it was captured, and
-- stays SUCCESS otherwise.  No capture follows (hold_closed_at).  The
-- caller holds the checkout's order rows.
CREATE OR REPLACE FUNCTION hold_release(p_merchant text, p_checkout text, p_code pay_failure_code, p_source text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    o  record;
BEGIN
    FOR o IN
        SELECT po.payment_order_id, po.status
          FROM payment_orders po
         WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
           AND po.status = 'AUTHORIZED'
         ORDER BY po.line_no
    LOOP
        UPDATE payment_orders po SET status = 'FAILED', updated_at = now()
         WHERE po.merchant_id = p_merchant AND po.payment_order_id = o.payment_order_id;
        INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                  from_status, to_status, source)
        VALUES (p_merchant, p_checkout, o.payment_order_id, 'AUTHORIZED', 'FAILED', p_source);
    END LOOP;

    UPDATE checkouts ck
       SET hold_closed_at = coalesce(ck.hold_closed_at, now()),
           status = CASE WHEN ck.status = 'AUTHORIZED' THEN 'FAILED'::pay_status
                         ELSE ck.status END,
           failure_code = CASE WHEN ck.status = 'AUTHORIZED' THEN p_code
                               ELSE ck.failure_code END,
           updated_at = now()
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;

    PERFORM audit_append(p_merchant, p_checkout, 'hold:released',
        jsonb_build_object('code', p_code, 'source', p_source));
END
$function$;
REVOKE ALL ON FUNCTION hold_release(p_merchant text, p_checkout text, p_code pay_failure_code, p_source text) FROM PUBLIC;
