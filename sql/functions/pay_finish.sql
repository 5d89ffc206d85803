CREATE OR REPLACE FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_psp    text;
    v_key    record;
    v_valid  boolean := p_status IN ('EXECUTING', 'FAILED')
                        AND (p_status = 'FAILED' OR (p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL))
                        AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL;
BEGIN
    -- The key done with the answer; a done key answers what it stored,
    -- whatever this call carries.
    SELECT * INTO v_key FROM checkout_key_finish('pay_finish', p_merchant, p_idem_key, p_lease,
                                 p_checkout_id, v_valid,
                                 'EXECUTING needs a token and url; status and response are required',
                                 p_response_status, p_response_body);
    IF v_key.replay THEN
        RETURN QUERY SELECT v_key.stored_status, v_key.stored_body;
        RETURN;
    END IF;

    -- The status only moves from EXECUTING: should anything have moved the
    -- checkout already, the PSP's answer is still recorded but not applied.
    -- A session registered sets no status: the statement names none, so
    -- that no trigger on the status (each read back at every statement
    -- naming its columns) is prepared for a registration.
    IF p_status = 'FAILED' THEN
        UPDATE checkouts c
           SET psp_token = p_psp_token, psp_url = p_psp_url,
               expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
               failure = p_failure,
               failure_code = CASE WHEN c.status = 'EXECUTING'
                                   THEN 'registration_refused' ELSE c.failure_code END,
               status = CASE WHEN c.status = 'EXECUTING'
                             THEN 'FAILED'::pay_status ELSE c.status END,
               updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
        RETURNING c.psp INTO v_psp;
    ELSE
        UPDATE checkouts c
           SET psp_token = p_psp_token, psp_url = p_psp_url,
               expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
               failure = p_failure,
               updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
        RETURNING c.psp INTO v_psp;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_finish: no checkout % for merchant %', p_checkout_id, p_merchant
            USING ERRCODE = 'PY004';
    END IF;

    -- A token another checkout already holds is a unique violation: the PSP
    -- answered inconsistently, and that must not be stored.  The look-up
    -- row holds the blind index when there is one, never the sealed text.
    IF p_psp_token IS NOT NULL THEN
        INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
        VALUES (v_psp, coalesce(p_psp_token_index, p_psp_token), p_merchant, p_checkout_id);
    END IF;

    IF p_status = 'FAILED' THEN
        PERFORM checkout_orders_fail(p_merchant, p_checkout_id, v_psp, p_failure,
                                     'registration', 'registration:failed');
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text) TO payments_gateway;

-- The previous release's signature, without the token's blind index: the
-- look-up row keeps the token as given.  Kept for that release's workers
-- during an upgrade.
CREATE OR REPLACE FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_finish(p_merchant, p_idem_key, p_lease, p_checkout_id, p_status,
                             p_psp_token, p_psp_url, p_psp_expires_at, p_failure,
                             p_response_status, p_response_body, NULL::text)
$function$;
REVOKE ALL ON FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
