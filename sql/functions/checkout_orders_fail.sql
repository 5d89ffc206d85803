-- The PSP refused a checkout at once (pay_finish's registration refused,
-- pay_charge_finish's charge declined or needing the shopper): its orders
-- still EXECUTING move to FAILED, each with its order event (p_source),
-- and the moves made are one audit row p_audit on the checkout's chain
-- with the PSP and its reason.  The caller has moved the checkout itself.
CREATE OR REPLACE FUNCTION checkout_orders_fail(p_merchant text, p_checkout_id text, p_psp text, p_failure text, p_source text, p_audit text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_moved  jsonb;
BEGIN
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
    SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no)
      INTO v_moved FROM moved;

    -- the PSP's refusal, as the moves it made, on the audit chain
    IF v_moved IS NOT NULL THEN
        PERFORM audit_append(p_merchant, p_checkout_id, p_audit,
            jsonb_build_object('from', 'EXECUTING', 'to', 'FAILED',
                               'psp', p_psp, 'failure', p_failure,
                               'payment_orders', v_moved));
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION checkout_orders_fail(p_merchant text, p_checkout_id text, p_psp text, p_failure text, p_source text, p_audit text) FROM PUBLIC;
