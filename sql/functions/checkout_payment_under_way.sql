-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION checkout_payment_under_way(p_psp text, p_merchant text, p_checkout text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM webhook_events we
         WHERE we.merchant_id = p_merchant AND we.checkout_id = p_checkout
           AND we.kind = 'PENDING' AND we.psp = p_psp
           AND we.type IN ('PENDING', 'checkout.session.completed'));
END
$function$;
REVOKE ALL ON FUNCTION checkout_payment_under_way(p_psp text, p_merchant text, p_checkout text) FROM PUBLIC;
