CREATE OR REPLACE FUNCTION pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    p  payouts%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_payout_finish: no pay-out %', p_payout_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        UPDATE payouts po SET psp_payout_id = coalesce(po.psp_payout_id, p_psp_payout_id)
         WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id;
    ELSIF p.status = 'PENDING' THEN
        UPDATE payouts po SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id;
        PERFORM audit_append(p_merchant, NULL, 'payout:refused',
            jsonb_build_object('payout_id', p_payout_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
