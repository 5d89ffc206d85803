-- The lease ends now: the client's retry resumes the same refund, capture
-- or pay-out (same nonce) at once.  p_sent says whether this attempt may
-- have reached the PSP (NULL: it may have): false only when not a byte of
-- any of its requests was sent (no connection made, the circuit open, no
-- request built).  The operation (operation_keys names it for the key) then
-- keeps psp_contact 'none' if no earlier attempt may have reached the PSP
-- ('trying' -> 'none'); any other attempt makes it 'maybe'.  A key of
-- another lease, a done key, or a key that names no money operation (a
-- cancel's): only what the lease holds changes, if anything.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_op    text;
    v_kind  text;
    v_from  text;
    v_to    text;
BEGIN
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
    RETURNING ik.checkout_id,
              (SELECT ok.kind FROM operation_keys ok
                WHERE ok.merchant_id = ik.merchant_id AND ok.idem_key = ik.idem_key
                  AND ok.fingerprint = ik.fingerprint AND ok.op_id = ik.checkout_id)
         INTO v_op, v_kind;
    IF v_kind IS NULL THEN
        RETURN;
    END IF;

    -- sent nothing: what the claim made 'trying' is 'none' again (never a
    -- 'maybe': an earlier attempt may have); else 'maybe'
    IF p_sent IS NOT DISTINCT FROM false THEN
        v_from := 'trying';
        v_to := 'none';
    ELSE
        v_to := 'maybe';
    END IF;

    IF v_kind = 'refund' THEN
        UPDATE refunds x SET psp_contact = v_to
         WHERE x.merchant_id = p_merchant AND x.refund_id = v_op
           AND x.psp_contact = coalesce(v_from, x.psp_contact) AND x.psp_contact <> v_to;
    ELSIF v_kind = 'capture' THEN
        UPDATE captures x SET psp_contact = v_to
         WHERE x.merchant_id = p_merchant AND x.capture_id = v_op
           AND x.psp_contact = coalesce(v_from, x.psp_contact) AND x.psp_contact <> v_to;
    ELSE
        UPDATE payouts x SET psp_contact = v_to
         WHERE x.merchant_id = p_merchant AND x.payout_id = v_op
           AND x.psp_contact = coalesce(v_from, x.psp_contact) AND x.psp_contact <> v_to;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) TO payments_gateway;

-- The signature without p_sent, which the previous release's module calls
-- during an upgrade: its attempt may have reached the PSP.
CREATE OR REPLACE FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT pay_op_release(p_merchant, p_idem_key, p_lease, NULL::boolean);
$function$;
REVOKE ALL ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) TO payments_gateway;
