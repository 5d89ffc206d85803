-- A checkout held for review fails without reaching a PSP: rejected by a
-- person (p_outcome 'rejected') or left past its deadline ('expired', the
-- sweeper's pay_review_expire).  The checkout and its orders FAILED
-- (failure_code risk_rejected, the provider's reason as its failure), the
-- review's outcome recorded, the registration's Idempotency-Key answering
-- p_response_body (the caller's 403) from then on, and the audit chain told.
-- Returns whether it failed the checkout (false: not held for review, or
-- decided already).
CREATE OR REPLACE FUNCTION pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_reason  text;
    v_moved   jsonb;
    v_key     text;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('rejected', 'expired')
       OR p_response_body IS NULL THEN
        RAISE EXCEPTION 'pay_review_reject: rejected or expired, and the answer, are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The locks in the order every function takes them (doc/MONEY.md):
    -- the registration's key (review_key_of: the one stored with the
    -- checkout, at its created_at; a cancel's key names the checkout too,
    -- and is younger), the checkout, its risk row.
    v_key := review_key_of(p_merchant, p_checkout_id);
    PERFORM 1 FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = v_key
       FOR UPDATE;
    PERFORM 1 FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       AND c.status = 'REVIEW'
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE checkout_risk r
       SET reviewed = p_outcome, reviewed_at = now()
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id
       AND r.verdict = 'review' AND r.reviewed IS NULL
    RETURNING r.reason INTO v_reason;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE checkouts c
       SET status = 'FAILED', failure_code = 'risk_rejected',
           failure = coalesce(v_reason, p_outcome), updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;

    v_moved := checkout_orders_failed(p_merchant, p_checkout_id, 'review:' || p_outcome);

    UPDATE idempotency_keys ik
       SET response_status = 403, response_body = p_response_body
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = v_key
       AND ik.checkout_id = p_checkout_id AND ik.state = 'done';

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:' || p_outcome,
        jsonb_strip_nulls(jsonb_build_object(
            'from', 'REVIEW', 'to', 'FAILED', 'reason', v_reason,
            'payment_orders', v_moved)));

    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text) TO payments_gateway;
