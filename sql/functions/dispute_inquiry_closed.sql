-- A dispute's inquiry closed without a chargeback (DISPUTE_INQUIRY_CLOSED:
-- Stripe's charge.dispute.closed with warning_closed, Adyen's
-- ISSUER_RESPONSE_TIMEFRAME_EXPIRED; or what earlier releases' workers
-- read it as, pay_event_apply): the PSP withdrew nothing.  This release
-- books nothing for an inquiry, so there is nothing to undo: 'ignored'.
-- But a dispute an earlier release opened for the inquiry
-- (dispute_inquiry_held: OPEN, opened by the inquiry's first news, nothing
-- of it withdrawn) holds money the PSP never took, and no other event will
-- close it: it is released here exactly as a won dispute is
-- (dispute_event_apply with DISPUTE_WON: each part disputes ->
-- psp_clearing, the status WON, dispute.won notified), with an audit row
-- dispute:inquiry_released; 'applied'.  Escalated (a withdrawal of it
-- kept), it changes nothing and the dispute goes on to its won or lost.
-- The dispute is the PSP's reference of it (p_object_ref), within the
-- checkout found as dispute_event_apply finds it (the PSP's payment id,
-- else our nonce); without one (an earlier release's Adyen reading, which
-- kept only its own pspReference), every dispute of that checkout at this
-- PSP.  A checkout not here: 'unknown_dispute' (kept pending, as any
-- dispute's event before its payment).  Idempotent: a dispute released
-- is WON, and a second application changes nothing.  Locks in the lock
-- order (doc/MONEY.md): the checkout, its orders, the dispute.
CREATE OR REPLACE FUNCTION dispute_inquiry_closed(p_psp text, p_event_id text, p_reference text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    n     record;
    d     disputes%ROWTYPE;
    v     record;
    v_m   text;
    v_co  text;
BEGIN
    -- the checkout: the dispute's, else by the PSP's payment id, else by
    -- our nonce
    IF coalesce(p_object_ref, '') <> '' THEN
        SELECT dd.merchant_id, dd.checkout_id INTO v_m, v_co
          FROM disputes dd WHERE dd.psp = p_psp AND dd.psp_dispute_ref = p_object_ref;
    END IF;
    IF v_co IS NULL AND coalesce(p_payment_ref, '') <> '' THEN
        SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co
          FROM psp_payments pp WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
    END IF;
    IF v_co IS NULL THEN
        SELECT * INTO n FROM nonce_split(p_reference);
        SELECT ck.merchant_id, ck.checkout_id INTO v_m, v_co
          FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id
           AND ck.psp = p_psp;
    END IF;
    IF v_co IS NULL THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;
    merchant_id := v_m;
    checkout_id := v_co;
    outcome := 'ignored';

    -- this release's inquiry (nothing booked): nothing to lock
    IF NOT EXISTS (SELECT 1 FROM disputes dd
                    WHERE dd.merchant_id = v_m AND dd.checkout_id = v_co
                      AND dd.psp = p_psp AND dd.status = 'OPEN'
                      AND (dd.psp_dispute_ref = p_object_ref
                           OR coalesce(p_object_ref, '') = '')) THEN
        RETURN;
    END IF;

    PERFORM 1 FROM checkouts ck WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co
       FOR UPDATE;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
     ORDER BY po.payment_order_id
       FOR UPDATE;

    FOR d IN SELECT * FROM disputes dd
              WHERE dd.merchant_id = v_m AND dd.checkout_id = v_co AND dd.psp = p_psp
                AND (dd.psp_dispute_ref = p_object_ref OR coalesce(p_object_ref, '') = '')
              ORDER BY dd.dispute_id
                FOR UPDATE
    LOOP
        CONTINUE WHEN NOT dispute_inquiry_held(d.merchant_id, d.dispute_id);

        -- as won: found by the checkout's nonce, so that it is this one
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, 'DISPUTE_WON',
                                                 d.merchant_id || ':' || d.checkout_id,
                                                 d.amount, d.currency, NULL,
                                                 d.psp_dispute_ref) x;
        IF v.outcome IS DISTINCT FROM 'applied' THEN
            -- an OPEN dispute, locked, of its own amount: never
            RAISE EXCEPTION 'dispute_inquiry_closed: releasing dispute % of % was %',
                d.dispute_id, d.merchant_id, v.outcome;
        END IF;
        PERFORM audit_append(d.merchant_id, d.checkout_id, 'dispute:inquiry_released',
            jsonb_build_object('psp', p_psp, 'dispute', d.dispute_id,
                               'psp_dispute', d.psp_dispute_ref, 'amount', d.amount,
                               'currency', d.currency, 'event_id', p_event_id));
        outcome := 'applied';
    END LOOP;
END
$function$;
REVOKE ALL ON FUNCTION dispute_inquiry_closed(p_psp text, p_event_id text, p_reference text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
