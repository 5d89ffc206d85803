-- ---------------------------------------------------------------------------
-- A resumed claim whose stored expires_at the PSP would now refuse: store
-- the rebuilt request (same nonce, new expires_at and return-link tokens)
-- before it is sent, so every later retry sends those bytes.  Only under
-- the caller's live lease, for a checkout still EXECUTING without a PSP
-- token; otherwise PY003.  Returns the previous expires_at.
CREATE OR REPLACE FUNCTION pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_checkout  text;
    v_old       timestamptz;
    v_status    pay_status;
    v_token     text;
BEGIN
    IF p_expires_at IS NULL OR p_psp_request IS NULL THEN
        RAISE EXCEPTION 'pay_refresh: expires_at and psp_request are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the key by its key, then its checkout by the checkout's, its status
    -- told by the row: "status = 'EXECUTING'" in the WHERE is
    -- checkouts_executing_since's predicate, and a plan made on empty
    -- tables walked that index, every EXECUTING checkout, for the one
    -- (plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants).
    -- The key's row locked first, then the checkout's (doc/MONEY.md)
    SELECT ik.checkout_id INTO v_checkout
      FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.lease_until > clock_timestamp()
       FOR UPDATE;
    SELECT c.expires_at, c.status, c.psp_token INTO v_old, v_status, v_token
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = v_checkout
       FOR UPDATE;
    IF v_status IS DISTINCT FROM 'EXECUTING' OR v_token IS NOT NULL THEN
        RAISE EXCEPTION 'pay_refresh: key % of merchant % is not in progress under lease %',
            p_idem_key, p_merchant, p_lease USING ERRCODE = 'PY003';
    END IF;

    UPDATE checkouts c
       SET psp_request = p_psp_request, expires_at = to_timestamp(p_expires_at),
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = v_checkout;

    PERFORM audit_append(p_merchant, v_checkout, 'registration:refreshed',
        jsonb_build_object('expires_at_was', ts_epoch(v_old),
                           'expires_at', p_expires_at));
    RETURN ts_epoch(v_old);
END
$function$;
REVOKE ALL ON FUNCTION pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text) TO payments_gateway;
