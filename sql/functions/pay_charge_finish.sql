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
    v_psp    text;
    v_pm     text;
    v_key    record;
BEGIN
    IF p_outcome IS NULL
       OR p_outcome NOT IN ('accepted', 'declined', 'authentication_required')
       OR (p_outcome = 'accepted' AND p_psp_ref IS NULL)
       OR p_response_status IS NULL OR p_response_body IS NULL THEN
        RAISE EXCEPTION 'pay_charge_finish: outcome, answer (and the PSP''s id when accepted) are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO v_key FROM checkout_key_finish('pay_charge_finish', p_merchant, p_idem_key, p_lease,
                                 p_checkout_id, true, NULL,
                                 p_response_status, p_response_body);
    IF v_key.replay THEN
        RETURN QUERY SELECT v_key.stored_status, v_key.stored_body;
        RETURN;
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
    -- the checkout by its key, its method told by the row: a condition
    -- on payment_method_id is checkouts_payment_method's predicate, and
    -- planned without statistics that index's walk of the merchant's
    -- charges was taken for the look-up (plans::each_money_move_...)
    RETURNING c.psp, c.payment_method_id INTO v_psp, v_pm;
    IF v_pm IS NULL THEN
        RAISE EXCEPTION 'pay_charge_finish: no off-session checkout % for merchant %',
            p_checkout_id, p_merchant USING ERRCODE = 'PY004';
    END IF;

    IF p_psp_ref IS NOT NULL THEN
        INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
        VALUES (v_psp, coalesce(p_psp_ref_index, p_psp_ref), p_merchant, p_checkout_id)
        ON CONFLICT DO NOTHING;
    END IF;

    IF p_outcome <> 'accepted' THEN
        PERFORM checkout_orders_fail(p_merchant, p_checkout_id, v_psp, p_failure,
                                     'charge:' || p_outcome, 'charge:' || p_outcome);
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
