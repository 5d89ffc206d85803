-- The money's failure after its success, and chargebacks split within what
-- each order has left (issue 14's review of the money path).
--
-- 1. A PSP can undo a final state, and 009 dropped that news as
--    late_contrary, so money moved at the PSP and was never booked:
--    - a pay-out reversed or returned after it was paid (Stripe's
--      transfer.reversed after transfer.created; Adyen's "returned" after
--      "booked"): the seller's wallet stayed debited although the money was
--      back on the platform's balance.  Now PAID -> FAILED books the pay-out
--      back (psp_clearing -> seller_payable) and credits the wallet;
--    - a refund that fails after it succeeded (Adyen's REFUND_FAILED after
--      REFUND; Stripe's refund.failed): SUCCEEDED -> FAILED undoes its
--      booking (seller's and commission's shares back), and the amount is
--      refundable again;
--    - a second chargeback after the first was reversed (Adyen's
--      SECOND_CHARGEBACK or PREARBITRATION_LOST after CHARGEBACK_REVERSED):
--      WON -> LOST withdraws the money again from the PSP balance, and the
--      seller bears it as for a dispute lost at once.
--    money_status_forward allows exactly these three moves besides 009's:
--    each state still only moves forward (FAILED and LOST are final), and
--    every move books its money in the same transaction.
--
-- 2. 009 split a dispute over its checkout's orders in proportion to their
--    amounts, the last order in line order taking the floors' remainder.
--    That ignored refunds (a fully refunded order was charged a part again,
--    and its seller bore a chargeback of another seller's sale), and the
--    remainder could exceed the last order's amount (orders 333, 333, 1 and
--    a dispute of 666: parts 332, 332, 2).  dispute_split now gives each
--    order a part within what it has left (its amount less its PENDING and
--    SUCCEEDED refunds and its parts of OPEN and LOST disputes, as
--    order_given_back counts them, sql/030), in proportion to it, the
--    floors' remainder a unit at a time in line order to orders with room;
--    only what exceeds every order's room (the PSP withdrew more than is
--    left) is split by the orders' amounts as before.
--
-- 3. The three functions compared the event's amount with "<>", which a
--    NULL amount skipped (the gateway passes -1 for "none"; only a direct
--    SQL caller could): a missing amount is now an amount_mismatch.

CREATE OR REPLACE FUNCTION money_status_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_from  text := CASE TG_TABLE_NAME WHEN 'disputes' THEN 'OPEN' ELSE 'PENDING' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'PY002';
    END IF;
    IF NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency
       OR NEW.merchant_id <> OLD.merchant_id THEN
        RAISE EXCEPTION '%: amount, currency and merchant never change', TG_TABLE_NAME
            USING ERRCODE = 'PY002';
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status AND OLD.status <> v_from
       AND NOT (TG_TABLE_NAME = 'refunds' AND OLD.status = 'SUCCEEDED' AND NEW.status = 'FAILED')
       AND NOT (TG_TABLE_NAME = 'payouts' AND OLD.status = 'PAID' AND NEW.status = 'FAILED')
       AND NOT (TG_TABLE_NAME = 'disputes' AND OLD.status = 'WON' AND NEW.status = 'LOST')
    THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY009';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- A dispute of p_amount over the checkout's orders: each order's part, in
-- line order (see the header).
CREATE OR REPLACE FUNCTION dispute_split(p_merchant text, p_checkout text, p_amount bigint)
RETURNS TABLE(payment_order_id text, seller_account text, part bigint)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id      text[];
    v_seller  text[];
    v_amount  bigint[];
    v_room    bigint[];
    v_part    bigint[];
    v_rooms   bigint;
    v_total   bigint;
    v_fit     bigint;
    v_left    bigint;
    v_n       int;
BEGIN
    SELECT array_agg(po.payment_order_id ORDER BY po.line_no),
           array_agg(po.seller_account ORDER BY po.line_no),
           array_agg(po.amount ORDER BY po.line_no),
           array_agg(greatest(po.amount - order_given_back(po.merchant_id,
                                                           po.payment_order_id, NULL), 0)
                     ORDER BY po.line_no)
      INTO v_id, v_seller, v_amount, v_room
      FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout;
    v_n := coalesce(array_length(v_id, 1), 0);
    IF v_n = 0 THEN
        RETURN;
    END IF;

    SELECT sum(x), 0 INTO v_rooms, v_left FROM unnest(v_room) x;
    SELECT sum(x) INTO v_total FROM unnest(v_amount) x;
    v_fit := least(p_amount, v_rooms);

    -- within each order's room, in proportion to it (floor)
    FOR i IN 1 .. v_n LOOP
        v_part[i] := CASE WHEN v_rooms = 0 THEN 0
                          ELSE floor(v_fit::numeric * v_room[i] / v_rooms)::bigint END;
    END LOOP;
    -- the floors' remainder (fewer units than orders), a unit each in line
    -- order to the orders with room left
    v_left := v_fit - (SELECT sum(x) FROM unnest(v_part) x);
    FOR i IN 1 .. v_n LOOP
        EXIT WHEN v_left = 0;
        IF v_part[i] < v_room[i] THEN
            v_part[i] := v_part[i] + 1;
            v_left := v_left - 1;
        END IF;
    END LOOP;

    -- more than every order has left: the rest by the orders' amounts, the
    -- last order taking the floors' remainder
    v_left := p_amount - v_fit;
    IF v_left > 0 THEN
        DECLARE
            v_rest  bigint := v_left;
            v_add   bigint;
        BEGIN
            FOR i IN 1 .. v_n LOOP
                v_add := CASE WHEN i = v_n THEN v_rest
                              ELSE floor(v_left::numeric * v_amount[i] / v_total)::bigint END;
                v_part[i] := v_part[i] + v_add;
                v_rest := v_rest - v_add;
            END LOOP;
        END;
    END IF;

    RETURN QUERY SELECT v_id[i], v_seller[i], v_part[i] FROM generate_series(1, v_n) i;
END
$$;

CREATE OR REPLACE FUNCTION refund_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n       record;
    r       refunds%ROWTYPE;
    o       payment_orders%ROWTYPE;
    v_sum   bigint;
    v_part  bigint;
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
    IF coalesce(p_object_ref, '') <> '' AND r.psp_refund_id IS NOT NULL
       AND r.psp_refund_id <> p_object_ref THEN
        outcome := 'mismatch';
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

    -- SUCCEEDED: the commission's share back by the rule, the seller's the rest
    SELECT coalesce(sum(rf.amount), 0) INTO v_sum FROM refunds rf
     WHERE rf.merchant_id = r.merchant_id AND rf.payment_order_id = r.payment_order_id
       AND rf.status = 'SUCCEEDED';
    v_part := commission_refund_part(o.amount, coalesce(o.commission, 0), v_sum, r.amount);

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

CREATE OR REPLACE FUNCTION payout_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n  record;
    p  payouts%ROWTYPE;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = n.merchant_id AND po.payout_id = n.object_id AND po.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO p FROM payouts po WHERE po.psp = p_psp AND po.psp_payout_id = p_object_ref;
    END IF;
    IF p.payout_id IS NULL THEN
        outcome := 'unknown_payout';
        RETURN;
    END IF;
    merchant_id := p.merchant_id;

    -- the seller's wallet first, as every pay-out of it does
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = p.merchant_id AND w.seller_account = p.seller_account
       AND w.currency = p.currency FOR UPDATE;
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id FOR UPDATE;

    IF p_amount IS DISTINCT FROM p.amount OR upper(coalesce(p_currency, '')) <> p.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    IF (p_kind = 'PAYOUT_PAID' AND p.status = 'PAID')
       OR (p_kind = 'PAYOUT_FAILED' AND p.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF p.status = 'PAID' AND p_kind = 'PAYOUT_FAILED' THEN
        -- reversed or returned after it was paid (Stripe's transfer.reversed
        -- after transfer.created, Adyen's "returned" after "booked"): the
        -- money is back on the platform's balance, so back in the wallet
        UPDATE payouts po SET status = 'FAILED',
                              failure = 'reversed at the PSP after it was paid',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[-p.amount, p.amount]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency, p.amount);
        outcome := 'applied';
        RETURN;
    END IF;
    IF p.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'PAYOUT_FAILED' THEN
        -- nothing was booked: the money was only held back, it is available again
        UPDATE payouts po SET status = 'FAILED', failure = 'failed at the PSP',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
    ELSE
        UPDATE payouts po SET status = 'PAID',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[p.amount, -p.amount]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency, -p.amount);
    END IF;
    outcome := 'applied';
END
$$;

REVOKE ALL ON FUNCTION dispute_split(text, text, bigint) FROM PUBLIC;
