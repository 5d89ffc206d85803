CREATE OR REPLACE FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k        idempotency_keys%ROWTYPE;
    v_psp    text;
    v_moved  jsonb;
    v_valid  boolean := p_status IN ('EXECUTING', 'FAILED')
                        AND (p_status = 'FAILED' OR (p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL))
                        AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL;
BEGIN
    -- The usual case in one statement: our key, still in progress under our
    -- lease, becomes done.  The row lock it takes also makes a concurrent
    -- second pay_finish wait, then fall to the slow path and find it done.
    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL,
           response_status = p_response_status, response_body = p_response_body,
           -- the answer is kept for the whole TTL from when it is stored
           expires_at = now() + (ik.expires_at - ik.created_at)
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.checkout_id = p_checkout_id AND v_valid;
    IF NOT FOUND THEN
        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_finish: no key % for merchant %', p_idem_key, p_merchant
                USING ERRCODE = 'PY004';
        END IF;
        -- A done key answers what it stored, whatever this call carries.
        IF k.state = 'done' THEN
            RETURN QUERY SELECT k.response_status, k.response_body;
            RETURN;
        END IF;
        IF v_valid IS NOT TRUE THEN
            RAISE EXCEPTION 'pay_finish: EXECUTING needs a token and url; status and response are required'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k.lease IS DISTINCT FROM p_lease THEN
            RAISE EXCEPTION 'pay_finish: lease % of key % was taken over (now %)',
                p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
        END IF;
        RAISE EXCEPTION 'pay_finish: key % belongs to checkout %, not %',
            p_idem_key, k.checkout_id, p_checkout_id USING ERRCODE = 'PY004';
    END IF;

    -- The status only moves from EXECUTING: should anything have moved the
    -- checkout already, the PSP's answer is still recorded but not applied.
    UPDATE checkouts c
       SET psp_token = p_psp_token, psp_url = p_psp_url,
           expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
           failure = p_failure,
           failure_code = CASE WHEN p_status = 'FAILED' AND c.status = 'EXECUTING'
                               THEN 'registration_refused' ELSE c.failure_code END,
           status = CASE WHEN p_status = 'FAILED' AND c.status = 'EXECUTING'
                         THEN 'FAILED'::pay_status ELSE c.status END,
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
    RETURNING c.psp INTO v_psp;
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
        WITH moved AS (
            UPDATE payment_orders o
               SET status = 'FAILED', updated_at = now()
             WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout_id
               AND o.status = 'EXECUTING'
            RETURNING o.payment_order_id, o.line_no
        ), ev AS (
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT p_merchant, p_checkout_id, moved.payment_order_id,
                   'EXECUTING', 'FAILED', 'registration'
              FROM moved ORDER BY moved.line_no
        )
        SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no)
          INTO v_moved FROM moved;

        -- the PSP's refusal, as the moves it made, on the audit chain
        IF v_moved IS NOT NULL THEN
            PERFORM audit_append(p_merchant, p_checkout_id, 'registration:failed',
                jsonb_build_object('from', 'EXECUTING', 'to', 'FAILED',
                                   'psp', v_psp, 'failure', p_failure,
                                   'payment_orders', v_moved));
        END IF;
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
