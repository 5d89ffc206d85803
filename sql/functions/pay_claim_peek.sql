-- Whether a registration's key or its checkout is already known, read
-- without a write (no commit to wait for): the risk check asks its
-- provider before the claim only about checkouts seen for the first time,
-- so that a retry, a replay or a reused checkout_id never asks again
-- (doc/RISK.md).  True: the caller claims first, as without a check.
-- PL/pgSQL, so that its plan is kept for the connection: a SQL function
-- marked SECURITY DEFINER is never inlined, and its body is parsed and
-- planned again at every call (400k instructions, a tenth of a
-- risk-checked registration's SQL: make bench-instructions risk).
CREATE OR REPLACE FUNCTION pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN EXISTS (SELECT 1 FROM idempotency_keys ik
                    WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key)
        OR EXISTS (SELECT 1 FROM checkouts c
                    WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text) TO payments_gateway;
