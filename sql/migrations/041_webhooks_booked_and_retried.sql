-- Money the PSP took is booked whatever the checkout's state; an event about
-- something not known yet is delivered again rather than forgotten.
--
-- 1. A signed success for a checkout already FAILED (the sweeper inferred
--    an expiry, or a PSP's "expired"/"declined" arrived before its
--    success) was 'late_contrary': recorded, answered 200, nothing booked,
--    the payment not refundable, while the PSP held the shopper's money.
--    Now it is booked as any success (ledger, wallets, the PSP's payment id)
--    and the checkout and its orders move FAILED -> SUCCESS, the outcome
--    'paid_after_failed' (the gateway logs it as an alert).  That one move
--    back from a terminal status is allowed by status_forward_guard only
--    inside pay_webhook_apply_core's booking; SUCCESS never moves again, so
--    money is never taken back by a late FAILED (still 'late_contrary').
--
-- 2. The sweeper's FAILED (a session it sees expired) is not applied while
--    a signed event says a payment of the checkout is under way at the PSP
--    (Adyen's PENDING, Stripe's checkout.session.completed "unpaid": an
--    asynchronous method): outcome 'pending', nothing recorded, the
--    checkout stays EXECUTING and the sweeper's overdue alert says so past
--    alert=.
--
-- 3. A token not found (its blind index computed under a key this gateway
--    does not have yet, in a rolling key change) no longer ends the look-up:
--    the event's signed reference (the checkout's nonce) finds the
--    checkout, as it does for an event without a token.
--
-- 4. unknown_checkout (of a success or a failure), unknown_refund and
--    unknown_dispute are not recorded in webhook_events: the gateway answers so that the PSP delivers the
--    event again, and a later delivery (the payment's own event has
--    arrived, every gateway has the key) applies it instead of finding a
--    'duplicate'.

-- ---------------------------------------------------------------------------
-- A payment under way at the PSP, as a signed event said: the types that
-- mean "the shopper paid with a method that settles later".  A refused
-- attempt (Adyen's AUTHORISATION success=false, also PENDING) is not one:
-- the session stays open and may still expire.

CREATE INDEX IF NOT EXISTS webhook_events_pending
    ON webhook_events (merchant_id, checkout_id)
    WHERE kind = 'PENDING';

CREATE OR REPLACE FUNCTION checkout_payment_under_way(p_psp text, p_merchant text,
    p_checkout text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM webhook_events we
         WHERE we.merchant_id = p_merchant AND we.checkout_id = p_checkout
           AND we.kind = 'PENDING' AND we.psp = p_psp
           AND we.type IN ('PENDING', 'checkout.session.completed'));
$$;

-- ---------------------------------------------------------------------------
-- 001's guard, and FAILED -> SUCCESS while pay_webhook_apply_core books a
-- success the PSP signed (it sets payments.paid_after_failed for that
-- update alone).

CREATE OR REPLACE FUNCTION status_forward_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Only reached through the INSERT trigger's WHEN: a row born terminal.
        RAISE EXCEPTION '%: a new row cannot start in status %', TG_TABLE_NAME, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    IF NOT ((OLD.status = 'NOT_STARTED' AND NEW.status = 'EXECUTING')
            OR (OLD.status = 'EXECUTING' AND NEW.status IN ('SUCCESS', 'FAILED'))
            OR (OLD.status = 'FAILED' AND NEW.status = 'SUCCESS'
                AND coalesce(current_setting('payments.paid_after_failed', true), '') = 'on')) THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------
-- 023's body, with 1 to 4 above.

CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c          checkouts%ROWTYPE;
    o          record;
    v_m        text;
    v_co       text;
    v_ref_m    text;
    v_ref_co   text;
    v_outcome  text;
    v_target   pay_status;
    v_source   text;
    v_comm     bigint;
    v_sellers  text[] := '{}';
    v_wcur     text[] := '{}';
    v_wamount  bigint[] := '{}';
    v_ref      text;
    v_late     boolean := false;
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The event's own lock, held to commit: a second delivery of it waits
    -- here until the first commits, then finds its row (READ COMMITTED: a
    -- statement sees what committed before it began).  The row itself is
    -- written once, at the end, with its outcome.
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    SELECT we.merchant_id, we.checkout_id INTO v_m, v_co
      FROM webhook_events we
     WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v_m, v_co;
        RETURN;
    END IF;

    IF coalesce(p_token, '') <> '' THEN
        SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
          FROM psp_tokens t
         WHERE t.psp = p_psp AND t.psp_token = p_token;
    END IF;

    IF coalesce(p_reference, '') <> '' AND position(':' IN p_reference) > 0 THEN
        v_ref_m := split_part(p_reference, ':', 1);
        v_ref_co := substr(p_reference, length(v_ref_m) + 2);

        -- no token, or one not found here (indexed under a key this
        -- gateway lacks): the signed reference names the checkout
        IF v_m IS NULL THEN
            v_m := v_ref_m;
            v_co := v_ref_co;
        ELSIF v_m <> v_ref_m OR v_co <> v_ref_co THEN
            v_outcome := 'mismatch';
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co AND ck.psp = p_psp
           FOR UPDATE;

        IF NOT FOUND THEN
            v_outcome := 'unknown_checkout';
            v_m := NULL;
            v_co := NULL;
            -- a payment's success or failure is not recorded: the PSP
            -- delivers it again, and it applies once the checkout is found
            IF p_kind IN ('SUCCEEDED', 'FAILED') THEN
                RETURN QUERY SELECT v_outcome, v_m, v_co;
                RETURN;
            END IF;
        ELSIF (p_amount <> -1 AND p_amount <> c.amount_total)
              OR (coalesce(p_currency, '') <> '' AND upper(p_currency) <> c.currency)
              OR (p_kind = 'SUCCEEDED'
                  AND (p_amount = -1 OR coalesce(p_currency, '') = '')) THEN
            v_outcome := 'amount_mismatch';
        ELSIF p_kind = 'PENDING' THEN
            v_outcome := 'pending';
        ELSIF p_kind = 'IGNORED' THEN
            v_outcome := 'ignored';
        ELSE
            v_target := CASE p_kind WHEN 'SUCCEEDED' THEN 'SUCCESS'::pay_status
                                    ELSE 'FAILED'::pay_status END;
            IF c.status = v_target THEN
                v_outcome := 'already';
            ELSIF c.status = 'SUCCESS'
                  OR (c.status = 'FAILED' AND v_target = 'FAILED') THEN
                v_outcome := 'late_contrary';
            ELSIF v_target = 'FAILED' AND c.status = 'EXECUTING'
                  AND coalesce(current_setting('payments.event_source', true), '') = 'sweeper'
                  AND checkout_payment_under_way(p_psp, v_m, v_co) THEN
                -- the sweeper's inference against the PSP's word that a
                -- payment is under way: nothing moves, nothing recorded
                RETURN QUERY SELECT 'pending'::text, v_m, v_co;
                RETURN;
            ELSE
                -- EXECUTING -> either, or FAILED -> SUCCESS: the PSP holds
                -- the money, so it is booked whatever was inferred before
                v_late := (c.status = 'FAILED');
                v_source := coalesce(nullif(current_setting('payments.event_source', true), ''),
                                     'webhook') || ':' || p_psp || ':' || p_event_id;

                -- the PSP's id of the payment, noted with the status (as
                -- payment_ref_note does for a checkout paid before)
                IF v_target = 'SUCCESS' AND c.psp_payment_ref IS NULL
                   AND length(p_payment_ref) BETWEEN 1 AND 128 THEN
                    v_ref := p_payment_ref;
                END IF;

                IF v_late THEN
                    PERFORM set_config('payments.paid_after_failed', 'on', true);
                END IF;

                UPDATE checkouts ck
                   SET status = v_target, updated_at = now(),
                       psp_payment_ref = coalesce(v_ref, ck.psp_payment_ref)
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                IF v_ref IS NOT NULL THEN
                    INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
                    VALUES (p_psp, v_ref, v_m, v_co)
                    ON CONFLICT DO NOTHING;
                END IF;

                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    v_comm := CASE WHEN v_target = 'SUCCESS'
                                   THEN commission_of(o.amount, coalesce(c.commission_bps, 0),
                                                       coalesce(c.commission_fixed, 0))
                              END;

                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           commission = v_comm,
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money: clearing debited, the
                        -- seller's net share and the commission credited
                        PERFORM ledger_book(v_m, v_co, o.payment_order_id, 'payment', NULL,
                            v_source, o.currency,
                            ARRAY['psp_clearing:' || p_psp,
                                  'seller_payable:' || o.seller_account,
                                  'platform_commission'],
                            ARRAY[o.amount, -(o.amount - v_comm), -v_comm]);
                        v_sellers := v_sellers || o.seller_account;
                        v_wcur := v_wcur || o.currency::text;
                        v_wamount := v_wamount || (o.amount - v_comm);
                    END IF;
                END LOOP;

                IF v_late THEN
                    PERFORM set_config('payments.paid_after_failed', '', true);
                END IF;

                -- the wallets last, in the loop's (seller) order: a seller's
                -- wallet row is the one row every payment of that seller
                -- locks, so it is held for the least time
                FOR i IN 1 .. coalesce(array_length(v_sellers, 1), 0) LOOP
                    PERFORM wallet_add(v_m, v_sellers[i], v_wcur[i], v_wamount[i]);
                END LOOP;

                v_outcome := CASE WHEN v_late THEN 'paid_after_failed' ELSE 'applied' END;
            END IF;
        END IF;
    END IF;

    -- Another path recording this event id meanwhile (none takes the lock
    -- above) makes this a unique violation: the whole event rolls back, and
    -- the PSP's retry finds it recorded.
    INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id,
                                checkout_id)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v_outcome,
            v_m, v_co);

    RETURN QUERY SELECT v_outcome, v_m, v_co;
END
$$;

-- ---------------------------------------------------------------------------
-- 021's body.  A refund's or dispute's event is held back by the same
-- advisory lock as a payment's (023), looked up, applied, and recorded
-- with its outcome, except unknown_refund and unknown_dispute: what it
-- refers to is not here yet (the payment's own event still on its way), so
-- nothing is recorded and the PSP's next delivery applies it.

CREATE OR REPLACE FUNCTION pay_event_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_object_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v  record;
BEGIN
    IF p_kind IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        IF p_kind IN ('PENDING', 'IGNORED') AND coalesce(p_object_ref, '') <> '' THEN
            -- authentic news of a refund, dispute or pay-out that moves nothing
            INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100),
                    lower(p_kind))
            ON CONFLICT (psp, event_id) DO NOTHING;
            RETURN QUERY SELECT CASE WHEN FOUND THEN lower(p_kind) ELSE 'duplicate' END,
                                NULL::text, NULL::text;
            RETURN;
        END IF;

        SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind, p_type,
            p_token, p_reference, p_amount, p_currency,
            CASE WHEN p_kind = 'SUCCEEDED' THEN p_payment_ref END) x;

        -- 004's audit row (a duplicate delivery changed nothing)
        IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
            PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'kind', p_kind, 'type', p_type));
        END IF;

        IF p_kind = 'SUCCEEDED' AND v.outcome = 'already' THEN
            PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
        END IF;
        RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
        RETURN;
    END IF;

    IF p_kind NOT IN ('REFUND_SUCCEEDED', 'REFUND_FAILED', 'DISPUTE_OPENED', 'DISPUTE_WON',
                      'DISPUTE_LOST', 'PAYOUT_PAID', 'PAYOUT_FAILED') THEN
        RAISE EXCEPTION 'pay_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    SELECT we.merchant_id, we.checkout_id INTO v
      FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id;
        RETURN;
    END IF;

    IF p_kind LIKE 'REFUND_%' THEN
        SELECT * INTO v FROM refund_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    ELSIF p_kind LIKE 'DISPUTE_%' THEN
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_payment_ref,
                                                 p_object_ref);
    ELSE
        SELECT * INTO v FROM payout_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    END IF;

    IF v.outcome IN ('unknown_refund', 'unknown_dispute') THEN
        RETURN QUERY SELECT v.outcome, NULL::text, NULL::text;
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

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

-- ---------------------------------------------------------------------------
-- 022's body: a FAILED held back because a payment is under way ('pending')
-- moved nothing and recorded nothing, so it adds no audit row (the sweeper
-- asks again every retry=); what the PSP said is noted on the checkout.

CREATE OR REPLACE FUNCTION pay_sweeper_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v         record;
    v_amount  bigint := p_amount;
    v_cur     text := p_currency;
BEGIN
    -- Adyen's session result carries no amount: a success without one is
    -- checked against the checkout's own (008 says why)
    IF p_kind = 'SUCCEEDED' AND p_amount = -1 AND coalesce(p_currency, '') = ''
       AND coalesce(p_token, '') <> '' THEN
        SELECT c.amount_total, c.currency INTO v_amount, v_cur
          FROM psp_tokens t
          JOIN checkouts c
            ON c.merchant_id = t.merchant_id AND c.checkout_id = t.checkout_id
         WHERE t.psp = p_psp AND t.psp_token = p_token;
        v_amount := coalesce(v_amount, -1);
        v_cur := coalesce(v_cur, '');
    END IF;

    PERFORM set_config('payments.event_source', 'sweeper', true);

    SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind,
        p_type, p_token, p_reference, v_amount, v_cur,
        CASE WHEN p_kind = 'SUCCEEDED' THEN p_payment_ref END) x;

    PERFORM set_config('payments.event_source', '', true);

    IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
        IF NOT (p_kind = 'FAILED' AND v.outcome = 'pending') THEN
            PERFORM audit_append(v.merchant_id, v.checkout_id, 'sweeper:' || v.outcome,
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'kind', p_kind, 'type', p_type));
        END IF;

        UPDATE checkout_sweeps s SET last_answer = left(p_type || ': ' || v.outcome, 100)
         WHERE s.merchant_id = v.merchant_id AND s.checkout_id = v.checkout_id;
    END IF;

    IF p_kind = 'SUCCEEDED' AND v.outcome = 'already' THEN
        PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

REVOKE ALL ON FUNCTION checkout_payment_under_way(text, text, text) FROM PUBLIC;
