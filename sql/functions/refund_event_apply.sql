CREATE OR REPLACE FUNCTION refund_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    n         record;
    r         refunds%ROWTYPE;
    o         payment_orders%ROWTYPE;
    v_sum     bigint;
    v_booked  bigint;
    v_part    bigint;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = n.merchant_id AND rf.refund_id = n.object_id AND rf.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO r FROM refunds rf WHERE rf.psp = p_psp AND rf.psp_refund_id = p_object_ref;
    END IF;
    IF r.refund_id IS NULL THEN
        outcome := 'unknown_refund';
        RETURN;
    END IF;

    merchant_id := r.merchant_id;
    checkout_id := r.checkout_id;

    -- the order first, as every refund of it does
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = r.merchant_id AND po.payment_order_id = r.payment_order_id
       FOR UPDATE;
    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id FOR UPDATE;

    IF p_amount IS DISTINCT FROM r.amount OR upper(coalesce(p_currency, '')) <> r.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    -- another refund at the PSP under our nonce: money moved that this
    -- refund's booking does not cover
    IF coalesce(p_object_ref, '') <> '' AND r.psp_refund_id IS NOT NULL
       AND r.psp_refund_id <> p_object_ref THEN
        outcome := 'object_mismatch';
        RETURN;
    END IF;

    IF (p_kind = 'REFUND_SUCCEEDED' AND r.status = 'SUCCEEDED')
       OR (p_kind = 'REFUND_FAILED' AND r.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF r.status = 'SUCCEEDED' AND p_kind = 'REFUND_FAILED' THEN
        -- failed after it succeeded (Adyen's REFUND_FAILED after REFUND,
        -- Stripe's refund.failed after refund.succeeded: the bank sent the
        -- money back): its booking is undone, the seller's wallet and the
        -- platform's commission get their shares back, and the amount is
        -- refundable again
        UPDATE refunds rf SET status = 'FAILED', commission_part = NULL,
                              failure = 'failed at the PSP after it had succeeded',
                              psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
         WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;
        PERFORM ledger_book(r.merchant_id, r.checkout_id, r.payment_order_id, 'refund',
            r.refund_id, 'webhook:' || p_psp || ':' || p_event_id, r.currency,
            ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
                  'psp_clearing:' || p_psp],
            ARRAY[-(r.amount - r.commission_part), -r.commission_part, r.amount]);
        PERFORM wallet_add(r.merchant_id, o.seller_account, r.currency,
                           r.amount - r.commission_part);
        outcome := 'applied';
        RETURN;
    END IF;
    IF r.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'REFUND_FAILED' THEN
        UPDATE refunds rf SET status = 'FAILED', failure = 'refused by the PSP',
                              psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
         WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;
        outcome := 'applied';
        RETURN;
    END IF;

    -- SUCCEEDED: the commission's part against what the order gave back
    -- for good and the commission's parts of that (its refunds standing,
    -- its lost chargebacks: order_given_back_for_good;
    -- commission_refund_share), the seller's the rest
    SELECT g.given_back, g.commission_back INTO v_sum, v_booked
      FROM order_given_back_for_good(r.merchant_id, r.payment_order_id) g;
    v_part := commission_refund_share(coalesce(o.amount_captured, o.amount),
                                      coalesce(o.commission, 0), v_sum, v_booked,
                                      r.amount);

    UPDATE refunds rf SET status = 'SUCCEEDED', commission_part = v_part,
                          psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
     WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;

    PERFORM ledger_book(r.merchant_id, r.checkout_id, r.payment_order_id, 'refund', r.refund_id,
        'webhook:' || p_psp || ':' || p_event_id, r.currency,
        ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
              'psp_clearing:' || p_psp],
        ARRAY[r.amount - v_part, v_part, -r.amount]);
    PERFORM wallet_add(r.merchant_id, o.seller_account, r.currency, -(r.amount - v_part));
    outcome := 'applied';
END
$function$;
REVOKE ALL ON FUNCTION refund_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
