-- A payment the PSP says is under way (the session look-up's pending:
-- Adyen's paymentPending, Stripe's complete but unpaid, generic pending)
-- for a checkout still EXECUTING here grace= after its session's expiry:
-- nothing the sweeper can learn settles it (Adyen's session look-up never
-- says more of a manual capture's authorization; a capture made at the
-- PSP's dashboard, or a payment that settled, comes only by webhook).  So
-- it is listed for a person, once: a webhook_events row of its own
-- (p_event_id "lookup:<token>:unsettled", kind PENDING, source sweeper,
-- outcome payment_unsettled, which the caller logs at alert) and its audit
-- row; nothing is booked and the checkout stays EXECUTING, so that the
-- PSP's webhook, should it come, still books it.  The same for a checkout
-- FAILED here whose session (one a cancel cannot expire) the PSP says
-- holds a payment under way, at once: it may take money the checkout
-- no longer expects (an Adyen manual capture paid after the shop's
-- cancel).  Returns payment_unsettled when recorded now, duplicate when
-- it was before, and already when the checkout is paid or authorized.
CREATE OR REPLACE FUNCTION pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    -- the event's lock, as pay_webhook_apply_core takes it
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    PERFORM 1 FROM webhook_events we
      WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        RETURN 'duplicate';
    END IF;

    PERFORM 1 FROM checkouts c
      WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
        AND c.psp = p_psp AND c.status IN ('EXECUTING', 'FAILED')
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'already';
    END IF;

    INSERT INTO webhook_events (psp, event_id, kind, type, outcome,
                                merchant_id, checkout_id, source)
    VALUES (p_psp, p_event_id, 'PENDING', left(coalesce(p_type, ''), 100),
            'payment_unsettled', p_merchant, p_checkout_id, 'sweeper');

    PERFORM audit_append(p_merchant, p_checkout_id, 'sweeper:payment_unsettled',
        jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                           'kind', 'PENDING', 'type', p_type));

    UPDATE checkout_sweeps s
       SET last_answer = left(coalesce(p_type, '') || ': payment_unsettled', 100)
     WHERE s.merchant_id = p_merchant AND s.checkout_id = p_checkout_id;

    RETURN 'payment_unsettled';
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text) TO payments_gateway;
