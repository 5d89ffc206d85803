-- A verified PSP event, in the dialect-neutral words of the gateway (kind
-- SUCCEEDED, CAPTURED (a success the PSP says was captured: paid whatever
-- the stored capture mode), AUTHORIZED, FAILED, PENDING, IGNORED, or a
-- refund's, dispute's or pay-out's), applied in one transaction: the
-- event recorded once per PSP and event id, the status moved forward, the
-- money booked, the audit row.
-- p_token is the PSP's session token as the event names it; p_tokens are its
-- blind indexes under each key of the ring (sealed tokens), tried in order.
CREATE OR REPLACE FUNCTION pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v           record;
    w           record;
    v_recorded  boolean;
BEGIN
    -- A dispute's inquiry closed without a chargeback, or what earlier
    -- releases' workers (still running during an upgrade) read it as:
    -- IGNORED, Stripe's charge.dispute.closed neither won nor lost about
    -- the dispute, Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED about its own
    -- pspReference (the dispute is then its checkout's, by our nonce).
    -- dispute_inquiry_closed gives back a dispute they opened for the
    -- inquiry.  Applied again once recorded (the sweeper's retry of one
    -- kept before the upgrade, migration 123; an operator's replay): what
    -- it releases now, else 'duplicate'; the event is recorded once.
    IF p_kind = 'DISPUTE_INQUIRY_CLOSED'
       OR (p_kind = 'IGNORED'
           AND p_type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')) THEN
        PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
        SELECT we.merchant_id, we.checkout_id INTO w
          FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
        v_recorded := FOUND;

        SELECT * INTO v FROM dispute_inquiry_closed(p_psp, p_event_id, p_reference,
            p_payment_ref,
            CASE WHEN p_kind = 'IGNORED' AND p_type = 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED'
                 THEN NULL ELSE p_object_ref END) x;

        IF v_recorded AND v.outcome <> 'applied' THEN
            outcome := 'duplicate';
            merchant_id := w.merchant_id;
            checkout_id := w.checkout_id;
            RETURN;
        END IF;
        IF v.outcome = 'unknown_dispute' THEN
            outcome := v.outcome;
            RETURN;
        END IF;
        IF NOT v_recorded THEN
            INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id,
                                        checkout_id)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v.outcome,
                    v.merchant_id, v.checkout_id);
        END IF;
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id, 'kind', p_kind,
                               'type', p_type, 'object', p_object_ref,
                               'again', v_recorded));
        outcome := v.outcome;
        merchant_id := v.merchant_id;
        checkout_id := v.checkout_id;
        RETURN;
    END IF;

    IF p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED', 'FAILED', 'PENDING', 'IGNORED',
                  'DECLINED') THEN
        IF p_kind IN ('PENDING', 'IGNORED') AND coalesce(p_object_ref, '') <> '' THEN
            -- authentic news of a refund, dispute or pay-out that moves nothing
            INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100),
                    lower(p_kind))
            ON CONFLICT (psp, event_id) DO NOTHING;
            outcome := CASE WHEN FOUND THEN lower(p_kind) ELSE 'duplicate' END;
            RETURN;
        END IF;

        -- called in an expression (it returns one row, not a set): a
        -- SELECT from it would be a statement, an executor's start
        -- (bench/RESULTS.md); its answer is this function's own (a RETURN
        -- QUERY would be a statement more)
        v := pay_webhook_apply_core(p_psp, p_event_id, p_kind, p_type,
            p_token, p_reference, p_amount, p_currency,
            CASE WHEN p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') THEN p_payment_ref END,
            p_tokens);
        outcome := v.outcome;
        merchant_id := v.merchant_id;
        checkout_id := v.checkout_id;

        -- the audit row (a duplicate delivery changed nothing), appended in
        -- an expression: a PERFORM is a statement of its own.  Its own IF,
        -- not a third operand of the AND: SQL does not promise to evaluate
        -- an AND's operands in order, and a duplicate must append nothing
        IF merchant_id IS NOT NULL AND outcome <> 'duplicate' THEN
            IF audit_append(merchant_id, checkout_id, 'webhook:' || outcome,
                   jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                      'kind', p_kind, 'type', p_type)) IS NULL THEN
                RAISE EXCEPTION 'pay_event_apply: no audit row';
            END IF;
        END IF;

        IF p_kind IN ('SUCCEEDED', 'CAPTURED') AND outcome = 'already' THEN
            PERFORM payment_ref_note(p_psp, merchant_id, checkout_id, p_payment_ref);
        END IF;
        RETURN;
    END IF;

    IF p_kind NOT IN ('REFUND_SUCCEEDED', 'REFUND_FAILED', 'DISPUTE_OPENED', 'DISPUTE_WON',
                      'DISPUTE_LOST', 'PAYOUT_PAID', 'PAYOUT_FAILED', 'PAYOUT_REVERSED',
                      'CAPTURE_SUCCEEDED',
                      'CAPTURE_FAILED', 'VOID_SUCCEEDED', 'VOID_FAILED') THEN
        RAISE EXCEPTION 'pay_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    SELECT we.merchant_id, we.checkout_id INTO v
      FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        outcome := 'duplicate';
        merchant_id := v.merchant_id;
        checkout_id := v.checkout_id;
        RETURN;
    END IF;

    IF p_kind LIKE 'REFUND_%' THEN
        SELECT * INTO v FROM refund_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    ELSIF p_kind LIKE 'CAPTURE_%' OR p_kind LIKE 'VOID_%' THEN
        SELECT * INTO v FROM capture_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_object_ref,
                                                 p_payment_ref);
    ELSIF p_kind LIKE 'DISPUTE_%' THEN
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_payment_ref,
                                                 p_object_ref);
    ELSE
        SELECT * INTO v FROM payout_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    END IF;

    -- not here yet: not recorded, so that pay_event_keep keeps it pending
    -- and pay_inbox_retry applies it once it is
    IF v.outcome IN ('unknown_refund', 'unknown_dispute', 'unknown_capture',
                     'unknown_payout') THEN
        outcome := v.outcome;
        RETURN;
    END IF;

    -- Another path recording this event id meanwhile (none takes the lock
    -- above) makes this a unique violation: the whole event rolls back, and
    -- the PSP's retry finds it recorded.
    INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id,
                                checkout_id)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v.outcome,
            v.merchant_id, v.checkout_id);

    IF v.merchant_id IS NOT NULL THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id, 'kind', p_kind,
                               'type', p_type, 'object', p_object_ref));
    END IF;

    outcome := v.outcome;
    merchant_id := v.merchant_id;
    checkout_id := v.checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) TO payments_gateway;

-- The signatures this one replaced, dropped in the transaction that
-- changes its body, so no caller ever finds neither (the previous release's
-- workers call this signature too).
DROP FUNCTION IF EXISTS pay_event_apply(text, text, text, text, text, text, bigint, text, text, text);
DROP FUNCTION IF EXISTS pay_webhook_apply(text, text, text, text, text, text, bigint, text);
