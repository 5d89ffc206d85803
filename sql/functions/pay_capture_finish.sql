-- The PSP answered a capture or a void: registered (its id) or refused
-- (FAILED, nothing moved: the amount may be captured again).  The answer
-- is stored under the key.
CREATE OR REPLACE FUNCTION pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    cp  captures%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO cp FROM captures x
     WHERE x.merchant_id = p_merchant AND x.capture_id = p_capture_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_capture_finish: no capture %', p_capture_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        -- a webhook may have come first and set it already
        UPDATE captures x SET psp_ref = coalesce(x.psp_ref, p_psp_ref)
         WHERE x.merchant_id = p_merchant AND x.capture_id = p_capture_id;
    ELSIF cp.status = 'PENDING' THEN
        UPDATE captures x SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE x.merchant_id = p_merchant AND x.capture_id = p_capture_id;
        PERFORM audit_append(p_merchant, cp.checkout_id, cp.kind || ':refused',
            jsonb_build_object('capture_id', p_capture_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
