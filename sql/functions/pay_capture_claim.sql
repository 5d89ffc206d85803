-- A capture (p_kind 'capture': p_amount of the order, NULL for all it has
-- left) or a void (p_kind 'void': the checkout's authorization released,
-- what is not captured) of a manual-capture order: the key, the limits and
-- the row, in one transaction, as pay_refund_claim does for a refund.  The
-- answer's columns are pay_refund_claim's (refund_id is the capture's id,
-- payment_ref the checkout's payment at the PSP, refundable what may still
-- be captured).  p_final: the PSP releases the rest of the authorization
-- with a capture (one capture per authorization: Stripe), so a second
-- capture of the checkout is refused.  p_psp_conf: the PSP settings its
-- request carries (pay_psp_conf_record), recorded with the row and
-- returned when the claim is resumed, so that the request is sent again
-- only under the same settings (psp_conf NULL: not recorded); a new one
-- of a payment registered under another merchant account than
-- p_psp_conf's is refused ('merchant_account', as pay_refund_claim's).
-- p_unit: the
-- PSP's unit in the order's currency, in ISO minor units (pay_psp_unit:
-- 100 where it counts whole rupiah, 10 where an amount must end in 0; NULL
-- or 1: any amount): a capture without an amount takes what is left
-- rounded down to it, and none is stored that the PSP cannot be sent:
-- what is left below the unit, or an amount that is not a multiple of it,
-- is refused (not_expressible, refundable what is left), nothing stored.
-- A PENDING capture of the checkout that the previous release stored with
-- an amount that is not a multiple of p_unit (it claimed what was left
-- whole) can never be sent, so none of its attempts reached the PSP: it is
-- given up (capture_unsendable_give_up: FAILED, its amount capturable
-- again) in this transaction, when its key comes again (answered from its
-- row: settled) and by any new claim of the checkout, a void's included.
CREATE OR REPLACE FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint, psp_conf jsonb)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k        record;
    o        payment_orders%ROWTYPE;
    c        checkouts%ROWTYPE;
    cp       captures%ROWTYPE;
    v_held   bigint;
    v_left   bigint;
    v_amt    bigint;
    v_unit   bigint := coalesce(p_unit, 1);
    v_err    text;
    v_prior  text;
BEGIN
    IF p_kind NOT IN ('capture', 'void') THEN
        RAISE EXCEPTION 'pay_capture_claim: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_unit < 1 THEN
        RAISE EXCEPTION 'pay_capture_claim: a PSP''s unit is at least 1, not %', p_unit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_capture_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::jsonb;
        RETURN;
    END IF;

    -- the same request (key and body) after its key expired, or was
    -- purged: the capture it made, resumed, never made a second time
    IF k.outcome = 'new' THEN
        v_prior := op_key_prior(p_merchant, p_idem_key, p_fingerprint, 'capture', k.lease);
        IF v_prior IS NOT NULL THEN
            k.outcome := 'resumed';
            k.op_id := v_prior;
        END IF;
    END IF;

    IF k.outcome = 'resumed' THEN
        -- one its PSP can never be sent (an amount that is not a multiple
        -- of its unit): no attempt of it can have reached the PSP, so it
        -- is given up, FAILED, and answered from its row below
        PERFORM capture_unsendable_give_up(p_merchant, x.checkout_id, x.capture_id,
                                           x.currency, v_unit)
           FROM captures x
          WHERE x.merchant_id = p_merchant AND x.capture_id = k.op_id;
        -- one to send again: this attempt may reach the PSP ('trying'), and
        -- an earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write)
        UPDATE captures x
           SET psp_contact = CASE x.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END
         WHERE x.merchant_id = p_merchant AND x.capture_id = k.op_id
           AND x.status = 'PENDING' AND x.psp_ref IS NULL
           AND x.psp_contact <> 'maybe'
        RETURNING * INTO cp;
        IF NOT FOUND THEN
            SELECT * INTO cp FROM captures x
             WHERE x.merchant_id = p_merchant AND x.capture_id = k.op_id;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_capture_claim: in-progress key % has no capture', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = cp.checkout_id;
        -- settled, or known to the PSP: answered from the row, never sent
        -- again
        RETURN QUERY SELECT CASE WHEN cp.status <> 'PENDING' OR cp.psp_ref IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            cp.capture_id, cp.psp, c.psp_payment_ref, cp.amount, cp.currency,
                            cp.kind, NULL::bigint, cp.status, cp.psp_ref, cp.failure,
                            floor(date_part('epoch', clock_timestamp() - cp.created_at))::bigint,
                            cp.psp_conf;
        RETURN;
    END IF;

    -- A new one: the checkout and its orders are locked (in the order
    -- every money function takes them, doc/MONEY.md "Lock order": the
    -- checkout, then its orders in id order), so the captures and voids of
    -- one authorization are decided one at a time, and what is PENDING
    -- counts as taken
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
    IF FOUND THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = o.checkout_id
           FOR UPDATE;
        PERFORM 1 FROM payment_orders po
         WHERE po.merchant_id = p_merchant AND po.checkout_id = o.checkout_id
         ORDER BY po.payment_order_id
           FOR UPDATE;
        SELECT * INTO o FROM payment_orders po
         WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
        -- a capture of the checkout its PSP can never be sent, stored by
        -- the previous release, holds nothing: given up first, so that it
        -- neither counts as taken nor makes a void capture_in_progress
        PERFORM capture_unsendable_give_up(p_merchant, o.checkout_id, NULL,
                                           o.currency, v_unit);
    END IF;

    IF o.payment_order_id IS NULL THEN
        v_err := 'not_found';
    ELSIF c.capture_method <> 'manual' OR c.psp_payment_ref IS NULL
          OR o.status NOT IN ('AUTHORIZED', 'SUCCESS') OR o.amount_captured IS NULL
          OR c.hold_closed_at IS NOT NULL THEN
        v_err := 'not_capturable';
    ELSIF p_psp_conf ? 'merchant_account'
          AND stored_request_account(c.psp_request)
              <> p_psp_conf ->> 'merchant_account' THEN
        -- made under another merchant account than the PSP's configuration
        -- names now: refused there, or, under the payment's, its webhook
        -- refused here as another account's (pay_refund_claim): not sent
        v_err := 'merchant_account';
    ELSIF EXISTS (SELECT 1 FROM captures x
                   WHERE x.merchant_id = p_merchant AND x.checkout_id = o.checkout_id
                     AND x.status = 'PENDING'
                     AND (x.kind = 'void' OR x.final OR p_kind = 'void')) THEN
        -- a void or a final capture under way decides the rest: nothing
        -- is taken beside it
        v_err := 'capture_in_progress';
    ELSIF p_kind = 'capture' AND p_final
          AND EXISTS (SELECT 1 FROM captures x
                       WHERE x.merchant_id = p_merchant AND x.checkout_id = o.checkout_id
                         AND x.kind = 'capture' AND x.status <> 'FAILED') THEN
        -- the PSP captures an authorization once
        v_err := 'not_capturable';
    ELSIF p_kind = 'capture' AND EXISTS (SELECT 1 FROM refunds rf
                                          WHERE rf.merchant_id = p_merchant
                                            AND rf.payment_order_id = p_order_id) THEN
        -- refunds are shares of what was captured: captured first
        v_err := 'not_capturable';
    ELSIF p_currency IS NOT NULL AND p_currency <> o.currency THEN
        v_err := 'currency_mismatch';
    ELSE
        SELECT coalesce(sum(x.amount), 0)::bigint INTO v_held FROM captures x
         WHERE x.merchant_id = p_merchant AND x.payment_order_id = p_order_id
           AND x.kind = 'capture' AND x.status = 'PENDING';
        v_left := o.amount - o.amount_captured - v_held;
        IF p_kind = 'capture' THEN
            -- without an amount: what is left, rounded down to what the
            -- PSP can be sent (a rest of 6666.66 IDR at a PSP that counts
            -- whole rupiah is 6666.00 captured; the 0.66 is released with
            -- the rest of the hold)
            v_amt := CASE WHEN p_amount IS NOT NULL THEN p_amount
                          WHEN v_left > 0 THEN v_left - v_left % v_unit
                          ELSE v_left END;
            IF v_amt > v_left OR (v_amt <= 0 AND (p_amount IS NOT NULL OR v_left <= 0)) THEN
                v_err := 'exceeds_authorization';
            ELSIF v_amt <= 0 OR v_amt % v_unit <> 0 THEN
                -- less than the PSP's unit left, or an amount it has no
                -- value for: never a claim it cannot be sent
                v_err := 'not_expressible';
            END IF;
        ELSE
            -- a void releases every order's rest: its amount is the
            -- checkout's uncaptured part, for the record
            SELECT coalesce(sum(po.amount - po.amount_captured), 0)::bigint INTO v_amt
              FROM payment_orders po
             WHERE po.merchant_id = p_merchant AND po.checkout_id = o.checkout_id;
            IF v_amt <= 0 THEN
                v_err := 'not_capturable';
            END IF;
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            o.currency, NULL::text,
                            CASE WHEN v_left IS NULL THEN NULL ELSE greatest(v_left, 0) END,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            CASE WHEN v_err = 'merchant_account'
                                 THEN jsonb_build_object('merchant_account',
                                          stored_request_account(c.psp_request)) END;
        RETURN;
    END IF;

    INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)
    VALUES (p_merchant, p_idem_key, p_fingerprint, 'capture', p_capture_id);

    INSERT INTO captures (merchant_id, capture_id, kind, checkout_id, payment_order_id, psp,
                          nonce, amount, currency, final, status, metadata, psp_contact, psp_conf)
    VALUES (p_merchant, p_capture_id, p_kind, o.checkout_id, p_order_id, c.psp,
            p_merchant || ':' || p_capture_id, v_amt, o.currency,
            p_kind = 'void' OR coalesce(p_final, false), 'PENDING',
            coalesce(p_metadata, '{}'), 'trying', p_psp_conf);

    PERFORM audit_append(p_merchant, o.checkout_id, p_kind || ':requested',
        jsonb_build_object('capture_id', p_capture_id, 'payment_order_id', p_order_id,
                           'amount', v_amt, 'currency', o.currency));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_capture_id, c.psp, c.psp_payment_ref, v_amt, o.currency,
                        p_kind, NULL::bigint, 'PENDING'::text, NULL::text, NULL::text,
                        0::bigint, p_psp_conf;
END
$function$;
REVOKE ALL ON FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint) TO payments_gateway;

-- The previous release's signature, without the PSP's settings or unit,
-- which its workers call during an upgrade: none recorded, any amount
-- (what is left, whole).
CREATE OR REPLACE FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT outcome, lease, retry_after, response_status, response_body, refund_id, psp, payment_ref, amount, currency, reason, refundable, op_status, psp_ref, failure, claim_age FROM pay_capture_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_capture_id, p_order_id, p_amount, p_currency, p_kind, p_metadata, p_final, NULL::jsonb, NULL::bigint);
$function$;
REVOKE ALL ON FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean) TO payments_gateway;
