-- What the PSP said when nothing was applied (the session is open, no
-- answer, ...), for the operator's view of a stuck checkout.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    UPDATE checkout_sweeps s SET last_answer = left(p_answer, 100)
     WHERE s.merchant_id = p_merchant AND s.checkout_id = p_checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text) TO payments_gateway;
