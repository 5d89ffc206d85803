-- The lease ends now: the client's retry resumes the same refund (same
-- nonce) at once.
CREATE OR REPLACE FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease;
$function$;
REVOKE ALL ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) TO payments_gateway;
