-- The lease ends now: the client's retry resumes the same refund (same
-- nonce) at once.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease;
END
$function$;
REVOKE ALL ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) TO payments_gateway;
