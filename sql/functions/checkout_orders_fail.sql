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
    v_moved := checkout_orders_failed(p_merchant, p_checkout_id, p_source);

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
