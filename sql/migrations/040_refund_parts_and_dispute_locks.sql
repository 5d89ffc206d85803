-- The commission given back by refunds, a dispute's split taken under its
-- orders' locks, and a refund event about another PSP object alerted.
--
-- 1. A refund's commission part was the difference of the rounded-down
--    cumulative shares of the refunds standing before and after it
--    (commission_refund_part, sql/009).  After a refund failed at the PSP
--    and was undone (sql/032), the parts still booked no longer matched the
--    refunds still standing, and later parts were taken against the
--    standing refunds alone: each reversal could add a unit more, without
--    bound (a 0.06 order at 50%: six refunds of 0.01, three of them undone,
--    three more gave back 0.05 of a 0.03 commission).  A part is now taken
--    against what is already booked:
--
--        part = min(r, max(0, floor((R + r) × C / A) − B))
--
--    R the order's SUCCEEDED refunds before this one, B their booked parts.
--    The commission given back never exceeds C, the seller's share never
--    exceeds A − C, and the refund that completes the order gives back
--    exactly what is left of both (commission_refund_share).
--
-- 2. dispute_event_apply split a new dispute over its checkout's orders
--    reading what each had left without locking them: a refund claimed or
--    succeeding at the same moment under the order's lock was not seen, and
--    part of the dispute could land on an order that was now fully
--    refunded.  The orders are now locked FOR UPDATE, in line order, before
--    the split; a refund of one of them waits for the dispute, or the
--    dispute for the refund, and the later one sees the other.
--
-- 3. A refund event whose PSP refund id differs from the one stored on the
--    refund found by our nonce is "object_mismatch" (was "mismatch", the
--    outcome of a session event whose token and reference disagree): the
--    PSP made another refund under our nonce, money that moved and is not
--    booked.  It is stored in webhook_events and alerted, never "already".

CREATE OR REPLACE FUNCTION commission_refund_share(p_amount bigint,
    p_commission bigint, p_refunded_before bigint, p_booked_before bigint,
    p_refund bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT least(p_refund::numeric,
                 greatest(0::numeric,
                          floor((p_refunded_before + p_refund)::numeric * p_commission
                                / p_amount) - p_booked_before))::bigint;
$$;

CREATE OR REPLACE FUNCTION refund_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
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

    -- SUCCEEDED: the commission's part against what the refunds standing
    -- have booked already (commission_refund_share), the seller's the rest
    SELECT coalesce(sum(rf.amount), 0), coalesce(sum(rf.commission_part), 0)
      INTO v_sum, v_booked
      FROM refunds rf
     WHERE rf.merchant_id = r.merchant_id AND rf.payment_order_id = r.payment_order_id
       AND rf.status = 'SUCCEEDED';
    v_part := commission_refund_share(o.amount, coalesce(o.commission, 0), v_sum, v_booked,
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
$$;

CREATE OR REPLACE FUNCTION dispute_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n         record;
    c         checkouts%ROWTYPE;
    d         disputes%ROWTYPE;
    o         record;
    v_source  text := 'webhook:' || p_psp || ':' || p_event_id;
    v_second  boolean := false;
    v_target  text := CASE p_kind WHEN 'DISPUTE_WON' THEN 'WON'
                                  WHEN 'DISPUTE_LOST' THEN 'LOST' END;
BEGIN
    IF coalesce(p_object_ref, '') = '' THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;

    -- the checkout: by the PSP's payment id, else by our nonce
    IF coalesce(p_payment_ref, '') <> '' THEN
        SELECT ck.* INTO c FROM psp_payments pp
          JOIN checkouts ck ON ck.merchant_id = pp.merchant_id AND ck.checkout_id = pp.checkout_id
         WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
    END IF;
    IF c.checkout_id IS NULL THEN
        SELECT * INTO n FROM nonce_split(p_reference);
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id AND ck.psp = p_psp;
    END IF;
    IF c.checkout_id IS NULL OR c.status <> 'SUCCESS' THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;
    merchant_id := c.merchant_id;
    checkout_id := c.checkout_id;

    IF p_amount IS NULL OR p_amount <= 0 OR p_amount > c.amount_total
       OR upper(coalesce(p_currency, '')) <> c.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    -- one dispute per PSP reference; the checkout's row lock serialises its events
    PERFORM 1 FROM checkouts ck WHERE ck.merchant_id = c.merchant_id
                                  AND ck.checkout_id = c.checkout_id FOR UPDATE;
    SELECT * INTO d FROM disputes dd WHERE dd.psp = p_psp AND dd.psp_dispute_ref = p_object_ref
       FOR UPDATE;

    IF d.dispute_id IS NULL THEN
        -- the orders' locks, in line order, before what they have left is
        -- read: a refund of one of them deciding at this moment (under the
        -- same lock) either commits first and is seen by the split, or
        -- waits and sees the dispute's part
        PERFORM 1 FROM payment_orders po
         WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id
         ORDER BY po.line_no
           FOR UPDATE;

        -- opened (or closed before we saw it open: opened first, then closed)
        INSERT INTO disputes (merchant_id, dispute_id, psp, psp_dispute_ref, checkout_id,
                              amount, currency, status)
        VALUES (c.merchant_id, 'dp_' || encode(gen_random_bytes_compat(12), 'hex'), p_psp,
                p_object_ref, c.checkout_id, p_amount, c.currency, 'OPEN')
        RETURNING * INTO d;

        -- split over the orders within what each has left (dispute_split)
        FOR o IN SELECT * FROM dispute_split(c.merchant_id, c.checkout_id, p_amount) x
        LOOP
            INSERT INTO dispute_parts (merchant_id, dispute_id, checkout_id, payment_order_id,
                                       seller_account, amount, currency)
            VALUES (c.merchant_id, d.dispute_id, c.checkout_id, o.payment_order_id,
                    o.seller_account, o.part, c.currency);
            IF o.part > 0 THEN
                -- the PSP withdrew it: clearing to the disputes account
                PERFORM ledger_book(c.merchant_id, c.checkout_id, o.payment_order_id, 'dispute',
                    d.dispute_id, v_source, c.currency,
                    ARRAY['disputes:' || p_psp, 'psp_clearing:' || p_psp],
                    ARRAY[o.part, -o.part]);
            END IF;
        END LOOP;
        outcome := 'applied';
        IF v_target IS NULL THEN
            RETURN;
        END IF;
    ELSIF v_target IS NULL THEN
        outcome := 'already';       -- opened again (adyen: notice, then chargeback)
        RETURN;
    ELSIF d.status = v_target THEN
        outcome := 'already';
        RETURN;
    ELSIF d.status = 'WON' AND v_target = 'LOST' THEN
        -- a second chargeback after the first was reversed (Adyen's
        -- SECOND_CHARGEBACK, PREARBITRATION_LOST after CHARGEBACK_REVERSED):
        -- the money the win gave back is withdrawn again, for good
        v_second := true;
    ELSIF d.status <> 'OPEN' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;
    IF d.amount IS DISTINCT FROM p_amount THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    UPDATE disputes dd SET status = v_target
     WHERE dd.merchant_id = d.merchant_id AND dd.dispute_id = d.dispute_id;

    FOR o IN SELECT dp.payment_order_id, dp.seller_account, dp.amount
               FROM dispute_parts dp
              WHERE dp.merchant_id = d.merchant_id AND dp.dispute_id = d.dispute_id
                AND dp.amount > 0
              ORDER BY dp.seller_account, dp.payment_order_id
    LOOP
        IF v_second THEN
            -- lost after won: from the PSP balance, and the seller bears it
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['seller_payable:' || o.seller_account, 'psp_clearing:' || p_psp],
                ARRAY[o.amount, -o.amount]);
            PERFORM wallet_add(d.merchant_id, o.seller_account, d.currency, -o.amount);
        ELSIF v_target = 'WON' THEN
            -- the money comes back to the PSP balance
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['psp_clearing:' || p_psp, 'disputes:' || p_psp],
                ARRAY[o.amount, -o.amount]);
        ELSE
            -- lost: the seller bears it
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['seller_payable:' || o.seller_account, 'disputes:' || p_psp],
                ARRAY[o.amount, -o.amount]);
            PERFORM wallet_add(d.merchant_id, o.seller_account, d.currency, -o.amount);
        END IF;
    END LOOP;
    outcome := 'applied';
END
$$;

REVOKE ALL ON FUNCTION
    commission_refund_share(bigint, bigint, bigint, bigint, bigint)
    FROM PUBLIC;
