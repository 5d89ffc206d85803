-- An off-session charge's PSP answer, with the key's final answer, in one
-- transaction (pay_finish's part for a checkout without a hosted page):
--   accepted  the PSP took the payment (succeeded, authorised, or under
--             way): its id is stored as the checkout's token (sealed, found
--             by p_psp_ref_index), the checkout stays EXECUTING, and the
--             PSP's webhook books it as any payment;
--   declined, authentication_required  the PSP refused it at once: the
--             checkout and its orders FAILED with that failure code and
--             the PSP's reason, audited; nothing was taken.
-- A done key answers what it stored.
CREATE OR REPLACE FUNCTION pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text)
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
BEGIN
    IF p_outcome IS NULL
       OR p_outcome NOT IN ('accepted', 'declined', 'authentication_required')
       OR (p_outcome = 'accepted' AND p_psp_ref IS NULL)
       OR p_response_status IS NULL OR p_response_body IS NULL THEN
        RAISE EXCEPTION 'pay_charge_finish: outcome, answer (and the PSP''s id when accepted) are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL,
           response_status = p_response_status, response_body = p_response_body,
           expires_at = now() + (ik.expires_at - ik.created_at)
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.checkout_id = p_checkout_id;
    IF NOT FOUND THEN
        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_charge_finish: no key % for merchant %', p_idem_key, p_merchant
                USING ERRCODE = 'PY004';
        END IF;
        IF k.state = 'done' THEN
            RETURN QUERY SELECT k.response_status, k.response_body;
            RETURN;
        END IF;
        RAISE EXCEPTION 'pay_charge_finish: lease % of key % was taken over (now %)',
            p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
    END IF;

    UPDATE checkouts c
       SET psp_token = coalesce(p_psp_ref, c.psp_token),
           failure = CASE WHEN p_outcome <> 'accepted' AND c.status = 'EXECUTING'
                          THEN p_failure ELSE c.failure END,
           failure_code = CASE WHEN p_outcome <> 'accepted' AND c.status = 'EXECUTING'
                               THEN (CASE WHEN p_outcome = 'declined' THEN 'declined'
                                          ELSE 'authentication_required' END)::pay_failure_code
                               ELSE c.failure_code END,
           status = CASE WHEN p_outcome <> 'accepted' AND c.status = 'EXECUTING'
                         THEN 'FAILED'::pay_status ELSE c.status END,
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       AND c.payment_method_id IS NOT NULL
    RETURNING c.psp INTO v_psp;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_charge_finish: no off-session checkout % for merchant %',
            p_checkout_id, p_merchant USING ERRCODE = 'PY004';
    END IF;

    IF p_psp_ref IS NOT NULL THEN
        INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
        VALUES (v_psp, coalesce(p_psp_ref_index, p_psp_ref), p_merchant, p_checkout_id)
        ON CONFLICT DO NOTHING;
    END IF;

    IF p_outcome <> 'accepted' THEN
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
                   'EXECUTING', 'FAILED', 'charge:' || p_outcome
              FROM moved ORDER BY moved.line_no
        )
        SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no)
          INTO v_moved FROM moved;

        IF v_moved IS NOT NULL THEN
            PERFORM audit_append(p_merchant, p_checkout_id, 'charge:' || p_outcome,
                jsonb_build_object('from', 'EXECUTING', 'to', 'FAILED',
                                   'psp', v_psp, 'failure', p_failure,
                                   'payment_orders', v_moved));
        END IF;
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
