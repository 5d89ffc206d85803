-- Undo a claim the PSP never took: it refused the gateway's credentials
-- (API.md: 502, nothing stored), its circuit breaker is open (the gateway
-- did not call it), or a limit on new checkouts, a too close expires_at
-- or a return URL on an origin the merchant removed refused it (claimed
-- as a retry of a known one, it was new after all); p_reason says which,
-- for the audit row.  The checkout, its orders, their registration
-- events, any (psp, token) row, the sweeper's notes of it and the key go,
-- in one transaction, so that the same key or a new one can register the
-- same ids.  Only a claim as pay_claim left it qualifies: in progress
-- under p_lease, checkout and orders EXECUTING, no PSP token, no review
-- decided (an approved checkout's claim is only ever resumed).  The audit
-- chain keeps the claim and records its undoing.  Returns false (and
-- changes nothing) for any other state.
CREATE OR REPLACE FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    k         idempotency_keys%ROWTYPE;
    v_orders  jsonb;
    v_status  pay_status;
    v_token   text;
BEGIN
    IF p_reason NOT IN ('psp_refused_credentials', 'psp_circuit_open', 'limit_reached',
                        'expires_too_soon', 'return_url_forbidden') THEN
        RAISE EXCEPTION 'pay_abandon: unknown reason %', p_reason
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS NULL THEN
        RETURN false;
    END IF;

    -- by its key, its status told by the row (a WHERE naming the status
    -- is checkouts_executing_since's predicate: pay_refresh)
    SELECT c.status, c.psp_token INTO v_status, v_token FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id
       FOR UPDATE;
    IF v_status IS DISTINCT FROM 'EXECUTING' OR v_token IS NOT NULL THEN
        RETURN false;
    END IF;

    -- A checkout a person approved is never undone: the review is decided
    -- and checkout.approved was told; its claim stays to be resumed.
    PERFORM 1 FROM checkout_risk r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = k.checkout_id
       AND r.reviewed IS NOT NULL;
    IF FOUND THEN
        RETURN false;
    END IF;

    -- Locked in id order, as pay_claim inserts them.
    PERFORM 1 FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id
     ORDER BY o.payment_order_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM payment_orders o
                WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id
                  AND o.status <> 'EXECUTING')
       OR EXISTS (SELECT 1 FROM order_events e
                   WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id
                     AND (e.source <> 'registration' OR e.from_status <> 'NOT_STARTED')) THEN
        RETURN false;
    END IF;

    SELECT jsonb_agg(o.payment_order_id ORDER BY o.line_no) INTO v_orders
      FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id;

    -- order_events is append-only; its guard (order_events_append_only) lets this transaction
    -- delete the claim's own registration events of this checkout only.
    PERFORM set_config('payments.abandon_checkout', p_merchant || ':' || k.checkout_id, true);
    DELETE FROM order_events e
     WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id;
    PERFORM set_config('payments.abandon_checkout', '', true);

    DELETE FROM psp_tokens t
     WHERE t.merchant_id = p_merchant AND t.checkout_id = k.checkout_id;
    -- the sweeper's notes: a resumed claim may have been alerted about
    -- (past alert=, with or without a token), an approved review noted late
    DELETE FROM checkout_sweeps s
     WHERE s.merchant_id = p_merchant AND s.checkout_id = k.checkout_id;
    DELETE FROM sweeper_late l
     WHERE l.merchant_id = p_merchant AND l.checkout_id = k.checkout_id;
    DELETE FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id;
    DELETE FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id;
    DELETE FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    PERFORM audit_append(p_merchant, k.checkout_id, 'registration:abandoned',
        jsonb_build_object('from', 'EXECUTING', 'to', 'NOT_STARTED',
                           'reason', p_reason,
                           'payment_orders', v_orders));
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text) TO payments_gateway;

-- The signatures this one replaced, dropped in the transaction that
-- changes its body, so no caller ever finds neither (the previous release's
-- workers call this signature too).
DROP FUNCTION IF EXISTS pay_abandon(text, text, bigint);
