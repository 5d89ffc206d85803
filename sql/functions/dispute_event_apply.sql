-- A verified dispute event (DISPUTE_OPENED, DISPUTE_WON, DISPUTE_LOST) of a
-- paid checkout, found by the PSP's payment id or our nonce.  Opened: split
-- over the captured orders within what each still holds (dispute_split),
-- each part moved psp_clearing -> disputes.  A dispute is bounded by what
-- the PSP captured (the captured orders' total; beyond it amount_mismatch,
-- nothing booked); within that the PSP's amount is the truth and is booked
-- whole, and what exceeds what the orders still hold (a refunded payment
-- charged back) is answered dispute_excess, which the gateway alerts.
-- Each order's part keeps apart what the order may bear (at most what it
-- still held) and its excess (dispute_parts.excess): won, both go back to
-- psp_clearing; lost, the order bears its part as a refund of it would:
-- the commission gives back its share (commission_refund_share, against
-- what the order gave back for good: order_given_back_for_good), the
-- seller bears the rest, and the excess is booked to psp_shortfall:<psp>
-- (the platform's, until a person recovers it from the shopper, who was
-- paid back twice), with an audit row dispute:shortfall naming it.  Lost
-- after it was won, each order's part is taken again within what the
-- order holds then (the win made it refundable): the rest is booked to
-- psp_shortfall:<psp> as well, and the event is dispute_excess.  The part
-- the order bore and the commission's share of it are recorded on the
-- part (borne, commission_part).  No seller is charged for money it never
-- held (the commission's share) or already gave back.
CREATE OR REPLACE FUNCTION dispute_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    n         record;
    c         checkouts%ROWTYPE;
    d         disputes%ROWTYPE;
    o         record;
    v_source  text := 'webhook:' || p_psp || ':' || p_event_id;
    v_second  boolean := false;
    v_excess  boolean := false;
    v_capt    bigint;
    v_held    bigint;
    v_room    bigint;
    v_short   bigint := 0;
    v_comm    bigint;
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

    -- never more than the checkout was authorized for; what was captured
    -- of it bounds a new dispute below, under the orders' locks
    IF p_amount IS NULL OR p_amount <= 0 OR p_amount > c.amount_total
       OR upper(coalesce(p_currency, '')) <> c.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    -- The locks in the order every money function takes them (doc/MONEY.md,
    -- "Lock order"): the checkout (its row lock serialises its events: one
    -- dispute per PSP reference), its orders in id order, the dispute.  The
    -- orders are locked before what they have left is read: a refund of
    -- one of them deciding at this moment (under the same lock) either
    -- commits first and is seen by the split, or waits and sees the
    -- dispute's part.
    PERFORM 1 FROM checkouts ck WHERE ck.merchant_id = c.merchant_id
                                  AND ck.checkout_id = c.checkout_id FOR UPDATE;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id
     ORDER BY po.payment_order_id
       FOR UPDATE;
    SELECT * INTO d FROM disputes dd WHERE dd.psp = p_psp AND dd.psp_dispute_ref = p_object_ref
       FOR UPDATE;

    IF d.dispute_id IS NULL THEN
        -- what the PSP captured (a released or never captured order holds
        -- nothing), and what the captured orders still hold of it
        SELECT coalesce(sum(coalesce(po.amount_captured, po.amount)), 0),
               coalesce(sum(greatest(coalesce(po.amount_captured, po.amount)
                                     - order_given_back(po.merchant_id,
                                                        po.payment_order_id, NULL),
                                     0)), 0)
          INTO v_capt, v_held
          FROM payment_orders po
         WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id
           AND po.status = 'SUCCESS';
        IF p_amount > v_capt THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        v_excess := p_amount > v_held;

        -- opened (or closed before we saw it open: opened first, then closed)
        INSERT INTO disputes (merchant_id, dispute_id, psp, psp_dispute_ref, checkout_id,
                              amount, currency, status)
        VALUES (c.merchant_id, 'dp_' || encode(gen_random_bytes_compat(12), 'hex'), p_psp,
                p_object_ref, c.checkout_id, p_amount, c.currency, 'OPEN')
        RETURNING * INTO d;

        -- split over the captured orders within what each still holds
        -- (dispute_split)
        FOR o IN SELECT * FROM dispute_split(c.merchant_id, c.checkout_id, p_amount) x
        LOOP
            -- what the order still holds: its seller's part at most (a
            -- part beyond it is the split's excess, which fills every
            -- order's room first)
            SELECT greatest(coalesce(po.amount_captured, po.amount)
                            - order_given_back(po.merchant_id, po.payment_order_id, NULL), 0)
              INTO v_room
              FROM payment_orders po
             WHERE po.merchant_id = c.merchant_id
               AND po.payment_order_id = o.payment_order_id;
            INSERT INTO dispute_parts (merchant_id, dispute_id, checkout_id, payment_order_id,
                                       seller_account, amount, excess, currency)
            VALUES (c.merchant_id, d.dispute_id, c.checkout_id, o.payment_order_id,
                    o.seller_account, least(o.part, v_room), o.part - least(o.part, v_room),
                    c.currency);
            IF o.part > 0 THEN
                -- the PSP withdrew it: clearing to the disputes account
                PERFORM ledger_book(c.merchant_id, c.checkout_id, o.payment_order_id, 'dispute',
                    d.dispute_id, v_source, c.currency,
                    ARRAY['disputes:' || p_psp, 'psp_clearing:' || p_psp],
                    ARRAY[o.part, -o.part]);
            END IF;
        END LOOP;
        -- more than the orders still hold: booked whole as the PSP says,
        -- the excess spread by what each captured, and alerted
        outcome := CASE WHEN v_excess THEN 'dispute_excess' ELSE 'applied' END;
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

    -- the sellers' wallets in seller order (doc/MONEY.md, "Lock order");
    -- room: what each order still holds without this dispute (read while
    -- it is WON, so order_given_back leaves it out), for a loss after a win
    -- captured, commission, given back and commission back: what the
    -- commission's share of the part a loss takes is reckoned against
    FOR o IN SELECT dp.payment_order_id, dp.seller_account, dp.amount, dp.excess,
                    greatest(coalesce(po.amount_captured, po.amount)
                             - order_given_back(po.merchant_id, po.payment_order_id, NULL),
                             0) AS room,
                    coalesce(po.amount_captured, po.amount) AS captured,
                    coalesce(po.commission, 0) AS commission,
                    g.given_back, g.commission_back
               FROM dispute_parts dp
              -- each part's order by its key, in a subquery of its own
              -- (OFFSET 0): as a join, a plan made on small tables walks
              -- the merchant's orders (test plans::each_money_move_reads_...)
              CROSS JOIN LATERAL (SELECT * FROM payment_orders x
                                   WHERE x.merchant_id = dp.merchant_id
                                     AND x.payment_order_id = dp.payment_order_id
                                  OFFSET 0) po
              CROSS JOIN LATERAL order_given_back_for_good(po.merchant_id,
                                                           po.payment_order_id) g
              WHERE dp.merchant_id = d.merchant_id AND dp.dispute_id = d.dispute_id
                AND dp.amount + dp.excess > 0
              ORDER BY dp.seller_account, dp.payment_order_id
    LOOP
        IF v_target = 'WON' AND NOT v_second THEN
            -- the money comes back to the PSP balance
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['psp_clearing:' || p_psp, 'disputes:' || p_psp],
                ARRAY[o.amount + o.excess, -(o.amount + o.excess)]);
        ELSE
            -- lost: the order bears its part as a refund of it would (the
            -- commission its share, the seller the rest), the excess is
            -- the platform's.  Lost after won, from the PSP balance: the
            -- win gave the part back to the order, which may have been
            -- refunded since (its claim saw no open dispute), so the order
            -- bears it only within what it still holds; the rest is the
            -- platform's too, alerted as an excess
            v_room := CASE WHEN v_second THEN least(o.amount, o.room) ELSE o.amount END;
            IF v_room < o.amount THEN
                v_excess := true;
            END IF;
            v_comm := commission_refund_share(o.captured, o.commission, o.given_back,
                                              o.commission_back, v_room);
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
                      'psp_shortfall:' || p_psp,
                      CASE WHEN v_second THEN 'psp_clearing:' ELSE 'disputes:' END || p_psp],
                ARRAY[v_room - v_comm, v_comm, o.amount - v_room + o.excess,
                      -(o.amount + o.excess)]);
            PERFORM wallet_add(d.merchant_id, o.seller_account, d.currency,
                               -(v_room - v_comm));
            UPDATE dispute_parts dp SET borne = v_room, commission_part = v_comm
             WHERE dp.merchant_id = d.merchant_id AND dp.dispute_id = d.dispute_id
               AND dp.payment_order_id = o.payment_order_id;
            v_short := v_short + o.amount - v_room + o.excess;
        END IF;
    END LOOP;
    UPDATE disputes dd SET status = v_target
     WHERE dd.merchant_id = d.merchant_id AND dd.dispute_id = d.dispute_id;
    IF v_short > 0 THEN
        PERFORM audit_append(d.merchant_id, d.checkout_id, 'dispute:shortfall',
            jsonb_build_object('psp', p_psp, 'dispute', d.dispute_id,
                               'psp_dispute', p_object_ref, 'shortfall', v_short));
    END IF;
    outcome := CASE WHEN v_excess THEN 'dispute_excess' ELSE 'applied' END;
END
$function$;
REVOKE ALL ON FUNCTION dispute_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
