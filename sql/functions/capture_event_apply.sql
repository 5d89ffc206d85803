-- A verified capture or void event (CAPTURE_SUCCEEDED, CAPTURE_FAILED,
-- VOID_SUCCEEDED, VOID_FAILED), found by our nonce (p_reference) or, for a
-- release the PSP names by the payment (Stripe's cancelled intent carries
-- the checkout's nonce), by the checkout.  A capture that succeeds is
-- booked as a paid order's part is: the PSP's clearing debited, the
-- seller's net share and the commission's part credited (the commission
-- of what is captured so far, less what earlier parts took), the wallet
-- credited; the order becomes SUCCESS, and the checkout at its first
-- capture.  A final capture, and a void, release the rest (hold_release).
-- 'unknown_capture' is not recorded: the PSP delivers it again.
CREATE OR REPLACE FUNCTION capture_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, p_payment_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    n       record;
    cp      captures%ROWTYPE;
    c       checkouts%ROWTYPE;
    o       payment_orders%ROWTYPE;
    v_src   text := 'webhook:' || p_psp || ':' || p_event_id;
    v_m     text;
    v_co    text;
    v_new   bigint;
    v_comm  bigint;
    v_part  bigint;
BEGIN
    IF p_kind NOT IN ('CAPTURE_SUCCEEDED', 'CAPTURE_FAILED', 'VOID_SUCCEEDED', 'VOID_FAILED') THEN
        RAISE EXCEPTION 'capture_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO cp FROM captures x
     WHERE x.merchant_id = n.merchant_id AND x.capture_id = n.object_id AND x.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO cp FROM captures x WHERE x.psp = p_psp AND x.psp_ref = p_object_ref;
    END IF;

    IF cp.capture_id IS NULL AND p_kind LIKE 'VOID_%' THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id
           AND ck.psp = p_psp;
        IF NOT FOUND AND coalesce(p_payment_ref, '') <> '' THEN
            SELECT ck.* INTO c FROM psp_payments pp
              JOIN checkouts ck ON ck.merchant_id = pp.merchant_id
                               AND ck.checkout_id = pp.checkout_id
             WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
        END IF;
        IF c.checkout_id IS NOT NULL THEN
            SELECT * INTO cp FROM captures x
             WHERE x.merchant_id = c.merchant_id AND x.checkout_id = c.checkout_id
               AND x.kind = 'void' AND x.status = 'PENDING'
             ORDER BY x.created_at DESC
             LIMIT 1;
        END IF;
    END IF;

    IF cp.capture_id IS NULL AND c.checkout_id IS NULL THEN
        outcome := 'unknown_capture';
        RETURN;
    END IF;

    v_m := coalesce(cp.merchant_id, c.merchant_id);
    v_co := coalesce(cp.checkout_id, c.checkout_id);
    merchant_id := v_m;
    checkout_id := v_co;

    -- the checkout's orders in id order (as the claim), then the rest
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
     ORDER BY po.payment_order_id
       FOR UPDATE;
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co FOR UPDATE;
    IF cp.capture_id IS NOT NULL THEN
        SELECT * INTO cp FROM captures x
         WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id FOR UPDATE;
    END IF;

    IF cp.capture_id IS NOT NULL
       AND (cp.kind = 'capture') <> (p_kind LIKE 'CAPTURE_%') THEN
        outcome := 'object_mismatch';
        RETURN;
    END IF;
    IF coalesce(p_object_ref, '') <> '' AND cp.psp_ref IS NOT NULL
       AND cp.psp_ref <> p_object_ref AND p_kind LIKE 'CAPTURE_%' THEN
        outcome := 'object_mismatch';
        RETURN;
    END IF;

    IF p_kind LIKE 'CAPTURE_%' THEN
        IF p_amount IS DISTINCT FROM cp.amount
           OR upper(coalesce(p_currency, '')) <> cp.currency THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        IF (p_kind = 'CAPTURE_SUCCEEDED' AND cp.status = 'SUCCEEDED')
           OR (p_kind = 'CAPTURE_FAILED' AND cp.status = 'FAILED') THEN
            outcome := 'already';
            RETURN;
        END IF;
        IF cp.status <> 'PENDING' THEN
            outcome := 'late_contrary';
            RETURN;
        END IF;
        IF p_kind = 'CAPTURE_FAILED' THEN
            UPDATE captures x SET status = 'FAILED', failure = 'refused by the PSP',
                                  psp_ref = coalesce(x.psp_ref, nullif(p_object_ref, ''))
             WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;
            outcome := 'applied';
            RETURN;
        END IF;

        SELECT * INTO o FROM payment_orders po
         WHERE po.merchant_id = cp.merchant_id AND po.payment_order_id = cp.payment_order_id;
        v_new := coalesce(o.amount_captured, 0) + cp.amount;
        v_comm := commission_of(v_new, coalesce(c.commission_bps, 0),
                                coalesce(c.commission_fixed, 0));
        v_part := v_comm - coalesce(o.commission, 0);

        UPDATE captures x SET status = 'SUCCEEDED', commission_part = v_part,
                              psp_ref = coalesce(x.psp_ref, nullif(p_object_ref, ''))
         WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;

        -- never beyond the authorized amount (the claims count what is
        -- pending, so this is a bug's or a lying PSP's): nothing moves
        IF v_new > o.amount THEN
            RAISE EXCEPTION 'capture %: % captured of order % exceeds its authorized %',
                cp.capture_id, v_new, o.payment_order_id, o.amount
                USING ERRCODE = 'PY007';
        END IF;
        UPDATE payment_orders po
           SET status = 'SUCCESS', amount_captured = v_new, commission = v_comm,
               ledger_updated = true, wallet_updated = true, updated_at = now()
         WHERE po.merchant_id = o.merchant_id AND po.payment_order_id = o.payment_order_id;
        IF o.status = 'AUTHORIZED' THEN
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            VALUES (o.merchant_id, o.checkout_id, o.payment_order_id, 'AUTHORIZED',
                    'SUCCESS', v_src);
        END IF;

        PERFORM ledger_book(o.merchant_id, o.checkout_id, o.payment_order_id, 'payment',
            cp.capture_id, v_src, o.currency,
            ARRAY['psp_clearing:' || p_psp, 'seller_payable:' || o.seller_account,
                  'platform_commission'],
            ARRAY[cp.amount, -(cp.amount - v_part), -v_part]);

        IF c.status = 'AUTHORIZED' THEN
            UPDATE checkouts ck SET status = 'SUCCESS', updated_at = now()
             WHERE ck.merchant_id = c.merchant_id AND ck.checkout_id = c.checkout_id;
        END IF;
        IF cp.final THEN
            PERFORM hold_release(c.merchant_id, c.checkout_id, 'voided', v_src);
        END IF;

        PERFORM wallet_add(o.merchant_id, o.seller_account, o.currency, cp.amount - v_part);
        outcome := 'applied';
        RETURN;
    END IF;

    -- a void
    IF p_kind = 'VOID_FAILED' THEN
        IF cp.capture_id IS NOT NULL AND cp.status = 'PENDING' THEN
            UPDATE captures x SET status = 'FAILED', failure = 'refused by the PSP'
             WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;
            outcome := 'applied';
        ELSE
            outcome := 'already';
        END IF;
        RETURN;
    END IF;

    IF cp.capture_id IS NOT NULL AND cp.status = 'PENDING' THEN
        UPDATE captures x SET status = 'SUCCEEDED',
                              psp_ref = coalesce(x.psp_ref, nullif(p_object_ref, ''))
         WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;
    ELSIF c.hold_closed_at IS NOT NULL THEN
        outcome := 'already';
        RETURN;
    END IF;

    -- released by our void, or by the PSP itself (what it names no void of
    -- ours for: its own expiry, a cancel at its dashboard)
    PERFORM hold_release(c.merchant_id, c.checkout_id,
                         CASE WHEN cp.capture_id IS NULL THEN 'authorization_expired'
                              ELSE 'voided' END::pay_failure_code, v_src);
    outcome := 'applied';
END
$function$;
REVOKE ALL ON FUNCTION capture_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, p_payment_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
