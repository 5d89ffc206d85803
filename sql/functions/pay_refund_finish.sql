-- The PSP answered: registered (its refund id) or refused (the refund
-- FAILED, its amount refundable again).  The answer is stored under the key.
CREATE OR REPLACE FUNCTION pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    r  refunds%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_refund_finish: no refund %', p_refund_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        -- a webhook may have come first and set it already
        UPDATE refunds rf SET psp_refund_id = coalesce(rf.psp_refund_id, p_psp_refund_id)
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id;
    ELSIF r.status = 'PENDING' THEN
        UPDATE refunds rf SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id;
        PERFORM audit_append(p_merchant, r.checkout_id, 'refund:refused',
            jsonb_build_object('refund_id', p_refund_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
