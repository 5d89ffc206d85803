-- An off-session charge the card's issuer wanted the shopper for, and the
-- hosted page made for them at the same PSP, in one transaction (with the
-- key's final answer): the checkout stays EXECUTING and becomes a hosted
-- checkout, the session's token (sealed, found by p_psp_token_index) and
-- its URL (sealed) stored as a registration's, its expiry the session's;
-- audited charge:authentication_required (the PSP, its reason, the
-- expiry).  The PSP's webhook for the session books it as any payment; the
-- sweeper expires it as any hosted checkout.  A done key answers what it
-- stored.
CREATE OR REPLACE FUNCTION pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_psp     text;
    v_status  pay_status;
    v_pm      text;
    v_key     record;
BEGIN
    SELECT * INTO v_key FROM checkout_key_finish('pay_charge_authenticate', p_merchant, p_idem_key,
                                 p_lease, p_checkout_id,
                                 p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL
                                 AND p_psp_expires_at IS NOT NULL
                                 AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL,
                                 'the session''s token, url and expiry, and the answer, are required',
                                 p_response_status, p_response_body);
    IF v_key.replay THEN
        RETURN QUERY SELECT v_key.stored_status, v_key.stored_body;
        RETURN;
    END IF;

    UPDATE checkouts c
       SET psp_token = p_psp_token, psp_url = p_psp_url,
           expires_at = to_timestamp(p_psp_expires_at),
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
    -- by its key, its method told by the row (as pay_charge_finish)
    RETURNING c.psp, c.status, c.payment_method_id INTO v_psp, v_status, v_pm;
    IF v_pm IS NULL THEN
        RAISE EXCEPTION 'pay_charge_authenticate: no off-session checkout % for merchant %',
            p_checkout_id, p_merchant USING ERRCODE = 'PY004';
    END IF;

    INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
    VALUES (v_psp, coalesce(p_psp_token_index, p_psp_token), p_merchant, p_checkout_id);

    PERFORM audit_append(p_merchant, p_checkout_id, 'charge:authentication_required',
        jsonb_build_object('psp', v_psp, 'status', v_status::text,
                           'reason', p_reason,
                           'expires_at', to_timestamp(p_psp_expires_at)));

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text) TO payments_gateway;
