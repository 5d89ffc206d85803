-- A verified capture or void event (CAPTURE_SUCCEEDED, CAPTURE_FAILED,
-- VOID_SUCCEEDED, VOID_FAILED), found by our nonce (p_reference) or, for a
-- release the PSP names by the payment (Stripe's cancelled intent carries
-- the checkout's nonce), by the checkout.  A capture that succeeds is
-- booked as a paid order's part is: the PSP's clearing debited, the
-- seller's net share and the commission's part credited (the commission
-- of what is captured so far, less what earlier parts took), the wallet
-- credited; the order becomes SUCCESS, and the checkout at its first
-- capture.  A final capture, and a void, release the rest (hold_release).
--
-- What the PSP says of a capture by itself is its fact, and books follow
-- it (each an outcome of its own, logged at alert by the module):
--  * captured_after_release: a capture of ours confirmed after the hold was
--    released here (FAILED orders and checkout): the PSP holds the money,
--    so it is booked, FAILED -> SUCCESS, as a payment after a failure is;
--  * capture_reversed: a capture that fails after it succeeded (Adyen's
--    CAPTURE_FAILED after CAPTURE, the generic capture.failed after
--    capture.succeeded): its booking is undone as a refund's that failed
--    after it succeeded (the clearing, the seller's wallet, the order's
--    captured; the commission back to the rule's on what stays captured),
--    the capture FAILED, and the
--    shop sent capture.failed (captures_notify); a wallet already paid out
--    goes below zero, as after a lost chargeback.  Statuses only move
--    forward: the order stays SUCCESS, its captured part less;
--  * capture_reversed_refunded: such a reversal after part of what the
--    order holds was refunded or charged back (the PSP keeps one book per
--    payment: its other captures cover those refunds, so it reverses): the
--    clearing follows the PSP whole, but the order gives back only what it
--    still holds (its clearing less its PENDING refunds), its seller never
--    more than it was credited for the order (less those refunds and its
--    OPEN chargebacks, which will charge it yet), the commission the rest;
--    what the shopper was paid back of a capture that never stood is
--    booked to psp_shortfall:<psp> (the platform's, until a person
--    recovers it) with an audit row naming it;
--  * captured_outside: a capture the PSP confirms for one of our
--    authorizations that no capture of ours asked for (made at its
--    dashboard: the event names the checkout, not a capture nonce): booked
--    as captures are, split over the checkout's orders as they hold what
--    is not captured yet nor held by a capture of ours in flight (floor,
--    the units left one each in line order), in parts the PSP can be sent
--    again (the unit the amount shows, at most the currency's
--    psp_unit_coarsest: whole rupiah for IDR, so that what each order has
--    left stays capturable at a PSP that counts whole rupiah),
--    one capture row each made from the event, under the PSP's id of the
--    capture (looked for again under the checkout's lock, so that the same
--    capture delivered twice at once is booked once; an event naming no
--    such id is object_mismatch, booked nowhere).  When the event's object is
--    the payment itself (Stripe's intent) the PSP captured the payment
--    once and the rest is released with it.  A manual checkout still
--    EXECUTING (its authorization's event lost or not here yet) is held
--    first, as that event would have held it: the PSP captured the
--    payment, so it authorized it.
-- 'unknown_capture' is not recorded: the PSP delivers it again, and the
-- inbox keeps it pending (a capture of a checkout failed here before its
-- authorization came; the reversal of a capture made at the PSP that is
-- not booked yet, applied once it is; a capture made at the PSP that fits
-- only if a capture of ours in flight fails, applied once ours is settled).
CREATE OR REPLACE FUNCTION capture_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, p_payment_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    n        record;
    cp       captures%ROWTYPE;
    c        checkouts%ROWTYPE;
    o        payment_orders%ROWTYPE;
    x        record;
    w        record;
    v_src    text := 'webhook:' || p_psp || ':' || p_event_id;
    v_m      text;
    v_co     text;
    v_new    bigint;
    v_comm   bigint;
    v_part   bigint;
    v_room   bigint;
    v_free   bigint;
    v_left   bigint;
    v_unit   bigint;
    v_units  bigint;
    v_id     text;
    v_ids    text[] := '{}';
    v_final  boolean := false;
    v_late   boolean := false;
    v_out    text;
    v_byref  boolean := false;
    v_held   bigint;
    v_seller bigint;
    v_kept   bigint;
    v_owed   bigint;
    v_open   bigint;
    v_take   bigint;
    v_sp     bigint;
    v_cp     bigint;
    v_short  bigint := 0;
    v_parts  jsonb := '[]';
BEGIN
    IF p_kind NOT IN ('CAPTURE_SUCCEEDED', 'CAPTURE_FAILED', 'VOID_SUCCEEDED', 'VOID_FAILED') THEN
        RAISE EXCEPTION 'capture_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO cp FROM captures x
     WHERE x.merchant_id = n.merchant_id AND x.capture_id = n.object_id AND x.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        -- the PSP's id of the capture: ours, or one made from an earlier
        -- event (captured_outside), the one that stands first
        SELECT * INTO cp FROM captures x
         WHERE x.psp = p_psp AND x.psp_ref = p_object_ref
           AND (x.kind = 'capture') = (p_kind LIKE 'CAPTURE_%')
         ORDER BY x.status = 'FAILED', x.created_at
         LIMIT 1;
        v_byref := FOUND;
    END IF;

    IF cp.capture_id IS NULL THEN
        -- a release the PSP names by the checkout, or a capture naming no
        -- capture of ours: the checkout, by its nonce or by the payment
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id
           AND ck.psp = p_psp;
        IF NOT FOUND AND coalesce(p_payment_ref, '') <> '' THEN
            SELECT ck.* INTO c FROM psp_payments pp
              JOIN checkouts ck ON ck.merchant_id = pp.merchant_id
                               AND ck.checkout_id = pp.checkout_id
             WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
        END IF;
        IF c.checkout_id IS NOT NULL AND p_kind LIKE 'VOID_%' THEN
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

    -- the locks in the order every money function takes them (doc/MONEY.md,
    -- "Lock order"): the checkout, its orders in id order, the capture
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co FOR UPDATE;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
     ORDER BY po.payment_order_id
       FOR UPDATE;
    IF cp.capture_id IS NOT NULL THEN
        SELECT * INTO cp FROM captures x
         WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id FOR UPDATE;
    ELSIF p_kind LIKE 'CAPTURE_%' AND coalesce(p_object_ref, '') <> '' THEN
        -- by the PSP's id again, under the checkout's lock: the same
        -- capture delivered at once under another event id, looked for
        -- above before either held the lock, was booked meanwhile (a
        -- capture made from an event, captured_outside): found now, it is
        -- that capture's ('already'), never booked a second time
        SELECT * INTO cp FROM captures x
         WHERE x.merchant_id = v_m AND x.checkout_id = v_co
           AND x.psp = p_psp AND x.psp_ref = p_object_ref AND x.kind = 'capture'
         ORDER BY x.status = 'FAILED', x.created_at
         LIMIT 1
           FOR UPDATE;
        v_byref := FOUND;
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

    IF p_kind LIKE 'CAPTURE_%' AND cp.capture_id IS NULL THEN
        -- a capture of the checkout that no capture of ours asked for
        IF p_kind = 'CAPTURE_FAILED' THEN
            IF c.capture_method = 'manual' AND coalesce(p_object_ref, '') <> '' THEN
                -- the reversal of a capture made at the PSP whose own
                -- event is not here yet (delivered later, or kept pending
                -- before this checkout's authorization): not recorded, so
                -- that it is kept and applied once that capture is booked
                -- (recorded now, the capture that follows would stay
                -- booked though the PSP took it back)
                outcome := 'unknown_capture';
                merchant_id := NULL;
                checkout_id := NULL;
                RETURN;
            END IF;
            -- nothing of ours was booked for it: authentic, recorded
            outcome := 'ignored';
            RETURN;
        END IF;
        IF c.capture_method <> 'manual' THEN
            -- an automatic checkout's capture is its payment, booked by
            -- the session's own event
            outcome := 'ignored';
            RETURN;
        END IF;
        IF coalesce(p_payment_ref, '') <> '' AND c.psp_payment_ref IS NOT NULL
           AND c.psp_payment_ref <> p_payment_ref
           AND NOT EXISTS (SELECT 1 FROM psp_payments pp
                            WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref
                              AND pp.merchant_id = c.merchant_id
                              AND pp.checkout_id = c.checkout_id) THEN
            -- a capture of another payment than the one the checkout
            -- holds, under its nonce (a second payment, or an intent of
            -- someone else's naming it): booked nowhere, for a person
            outcome := 'object_mismatch';
            RETURN;
        END IF;
        IF c.authorized_at IS NULL AND c.status <> 'EXECUTING' THEN
            -- before its authorization: delivered again until it is here
            outcome := 'unknown_capture';
            merchant_id := NULL;
            checkout_id := NULL;
            RETURN;
        END IF;
        IF coalesce(p_object_ref, '') = '' THEN
            -- no PSP id of its own: nothing tells another capture from
            -- this one delivered again under another event id, so it is
            -- booked nowhere (it could be booked twice), for a person
            outcome := 'object_mismatch';
            RETURN;
        END IF;
        IF upper(coalesce(p_currency, '')) <> c.currency OR coalesce(p_amount, 0) <= 0 THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        -- the unit of the parts: the database does not know the PSP's
        -- dialect, but the PSP counts this currency in units of at most
        -- psp_unit_coarsest, and what it captured is a multiple of its
        -- own: the largest power of ten within both (a capture of 10000
        -- IDR at a PSP that counts whole rupiah is split in whole rupiah,
        -- so that each order's rest can be captured there; an amount of
        -- 10000.50 IDR, from a PSP that counts sen, in sen)
        v_unit := psp_unit_coarsest(c.currency);
        WHILE v_unit > 1 AND p_amount % v_unit <> 0 LOOP
            v_unit := v_unit / 10;
        END LOOP;
        -- what the orders have not captured, and of it what our captures
        -- in flight (PENDING: asked of the PSP, its word not here yet)
        -- leave: their room is theirs, so that each books when its word
        -- comes, as pay_capture_claim counts them; and of that, how many
        -- whole units
        SELECT coalesce(sum(po.amount - coalesce(po.amount_captured, 0)), 0)::bigint,
               coalesce(sum(greatest(po.amount - coalesce(po.amount_captured, 0)
                                     - coalesce(h.held, 0), 0)), 0)::bigint,
               coalesce(sum(greatest(po.amount - coalesce(po.amount_captured, 0)
                                     - coalesce(h.held, 0), 0)::bigint / v_unit), 0)::bigint
          INTO v_room, v_free, v_units
          FROM payment_orders po
          LEFT JOIN (SELECT x.payment_order_id, sum(x.amount) AS held
                       FROM captures x
                      WHERE x.merchant_id = v_m AND x.checkout_id = v_co
                        AND x.kind = 'capture' AND x.status = 'PENDING'
                      GROUP BY x.payment_order_id) h
                 ON h.payment_order_id = po.payment_order_id
         WHERE po.merchant_id = v_m AND po.checkout_id = v_co;
        IF p_amount > v_room THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        IF p_amount > v_free THEN
            -- it fits only if a capture of ours in flight never stands
            -- (the PSP refuses one of the two): not recorded, so that the
            -- inbox keeps it and applies it once ours is settled (booked
            -- whole if ours failed, amount_mismatch if it stood)
            outcome := 'unknown_capture';
            merchant_id := NULL;
            checkout_id := NULL;
            RETURN;
        END IF;

        IF c.status = 'EXECUTING' THEN
            -- still EXECUTING here, its authorization never told (Adyen's
            -- AUTHORISATION lost, and its session look-up says
            -- paymentPending for good): the PSP captured the payment, so
            -- it authorized it.  The checkout and its orders are held
            -- first, as that authorization would have held them, then the
            -- capture is booked; left waiting for an authorization that
            -- may never come, the capture (and a reversal of it) would be
            -- booked late or never
            v_id := CASE WHEN length(p_payment_ref) BETWEEN 1 AND 128
                         THEN p_payment_ref END;
            UPDATE checkouts ck
               SET status = 'AUTHORIZED', authorized_at = now(), updated_at = now(),
                   psp_payment_ref = coalesce(ck.psp_payment_ref, v_id)
             WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;
            IF v_id IS NOT NULL THEN
                INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
                VALUES (p_psp, v_id, v_m, v_co)
                ON CONFLICT DO NOTHING;
            END IF;
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT v_m, v_co, po.payment_order_id, po.status, 'AUTHORIZED', v_src
              FROM payment_orders po
             WHERE po.merchant_id = v_m AND po.checkout_id = v_co
               AND po.status = 'EXECUTING'
             ORDER BY po.seller_account, po.line_no;
            UPDATE payment_orders po
               SET status = 'AUTHORIZED', amount_captured = 0, ledger_updated = false,
                   wallet_updated = false, commission = NULL, updated_at = now()
             WHERE po.merchant_id = v_m AND po.checkout_id = v_co
               AND po.status = 'EXECUTING';
            PERFORM audit_append(v_m, v_co, 'capture:authorized',
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'object', p_object_ref, 'payment', v_id));
            SELECT * INTO c FROM checkouts ck
             WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;
            v_id := NULL;
        END IF;

        IF p_amount / v_unit > v_units THEN
            -- the orders' rests are not all whole units (an earlier split
            -- in ISO's units): it does not fit in them, so in ISO's units
            v_unit := 1;
            v_units := v_free;
        END IF;

        -- the amount over the orders as each holds what is not captured
        -- nor held by a capture of ours in flight (floor), the units left
        -- one each in line order, all counted in the unit; a capture row
        -- each, as the PSP confirmed it
        FOR x IN
            SELECT r.payment_order_id, r.currency, r.room / v_unit AS room,
                   floor((p_amount / v_unit)::numeric * (r.room / v_unit)
                         / v_units)::bigint AS share,
                   p_amount / v_unit
                   - sum(floor((p_amount / v_unit)::numeric * (r.room / v_unit)
                               / v_units)::bigint) OVER () AS left_over
              FROM (SELECT po.payment_order_id, po.currency, po.line_no,
                           greatest(po.amount - coalesce(po.amount_captured, 0)
                                    - coalesce((SELECT sum(y.amount) FROM captures y
                                                 WHERE y.merchant_id = po.merchant_id
                                                   AND y.payment_order_id = po.payment_order_id
                                                   AND y.kind = 'capture'
                                                   AND y.status = 'PENDING'), 0),
                                    0)::bigint AS room
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co) r
             ORDER BY r.line_no
        LOOP
            v_left := coalesce(v_left, x.left_over);     -- once, at the first
            v_part := x.share;
            IF v_left > 0 AND x.room > v_part THEN
                v_part := v_part + 1;
                v_left := v_left - 1;
            END IF;
            CONTINUE WHEN v_part = 0;
            v_part := v_part * v_unit;
            v_id := 'cp_' || encode(gen_random_bytes_compat(12), 'hex');
            INSERT INTO captures (merchant_id, capture_id, kind, checkout_id,
                                  payment_order_id, psp, nonce, amount, currency, final,
                                  status, psp_ref)
            VALUES (v_m, v_id, 'capture', v_co, x.payment_order_id, p_psp,
                    v_m || ':' || v_id, v_part, x.currency, false, 'PENDING',
                    nullif(left(coalesce(p_object_ref, ''), 128), ''));
            v_ids := v_ids || v_id;
        END LOOP;
        PERFORM audit_append(v_m, v_co, 'capture:outside',
            jsonb_build_object('psp', p_psp, 'object', p_object_ref, 'amount', p_amount,
                               'captures', to_jsonb(v_ids)));
        -- the PSP's object is the payment itself: it captured the payment
        -- once, and released the rest with it
        v_final := coalesce(p_object_ref, '') <> '' AND p_object_ref = p_payment_ref;
        v_out := 'captured_outside';

    ELSIF p_kind LIKE 'CAPTURE_%' THEN
        IF v_byref AND cp.kind = 'capture' THEN
            -- by the PSP's id: every part it was booked in (a capture made
            -- from an event is one row per order)
            SELECT coalesce(sum(x.amount), 0)::bigint, array_agg(x.capture_id ORDER BY x.capture_id)
              INTO v_room, v_ids
              FROM captures x
             WHERE x.merchant_id = cp.merchant_id AND x.checkout_id = cp.checkout_id
               AND x.psp = p_psp AND x.psp_ref = p_object_ref AND x.kind = 'capture'
               AND x.status = cp.status;
        ELSE
            v_room := cp.amount;
            v_ids := ARRAY[cp.capture_id];
        END IF;
        IF p_amount IS DISTINCT FROM v_room
           OR upper(coalesce(p_currency, '')) <> cp.currency THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        IF (p_kind = 'CAPTURE_SUCCEEDED' AND cp.status = 'SUCCEEDED')
           OR (p_kind = 'CAPTURE_FAILED' AND cp.status = 'FAILED') THEN
            outcome := 'already';
            RETURN;
        END IF;

        IF p_kind = 'CAPTURE_FAILED' AND cp.status = 'SUCCEEDED' THEN
            -- taken back after the PSP confirmed it: each part's booking
            -- undone, the amount capturable again while the hold lasts.
            -- (Here and below each capture of v_ids, and its order, is
            -- looked up by its key in a subquery of its own, OFFSET 0
            -- keeping it one: as a join or "= ANY (v_ids)", a plan made on
            -- small tables walks the merchant's captures and orders
            -- instead; test plans::each_money_move_reads_...)
            FOR x IN
                SELECT y.* FROM unnest(v_ids) i(id),
                       LATERAL (SELECT * FROM captures c
                                 WHERE c.merchant_id = cp.merchant_id
                                   AND c.capture_id = i.id OFFSET 0) y
                 ORDER BY y.payment_order_id
                   FOR UPDATE OF y
            LOOP
                SELECT * INTO o FROM payment_orders po
                 WHERE po.merchant_id = x.merchant_id
                   AND po.payment_order_id = x.payment_order_id;

                -- what the order holds at the clearing, what its seller
                -- and the commission were credited for it, net (its
                -- captures less its refunds and chargebacks, as booked)
                SELECT coalesce(sum(e.amount) FILTER (
                           WHERE e.account = 'psp_clearing:' || p_psp), 0),
                       coalesce(-sum(e.amount) FILTER (
                           WHERE e.account = 'seller_payable:' || o.seller_account), 0),
                       coalesce(-sum(e.amount) FILTER (
                           WHERE e.account = 'platform_commission'), 0)
                  INTO v_held, v_seller, v_kept
                  FROM ledger_transactions t
                  JOIN ledger_entries e ON e.merchant_id = t.merchant_id
                                       AND e.txn_id = t.txn_id
                 WHERE t.merchant_id = o.merchant_id AND t.checkout_id = o.checkout_id
                   AND t.payment_order_id = o.payment_order_id;
                -- what will be taken of it yet: its PENDING refunds (the
                -- PSP has them), and its OPEN chargebacks from the seller
                SELECT coalesce(sum(r.amount), 0) INTO v_owed FROM refunds r
                 WHERE r.merchant_id = o.merchant_id AND r.seller_account = o.seller_account
                   AND r.currency = o.currency
                   AND r.payment_order_id = o.payment_order_id AND r.status = 'PENDING';
                v_held := v_held - v_owed;
                SELECT coalesce(sum(dp.amount), 0) INTO v_open
                  FROM dispute_parts dp
                 WHERE dp.merchant_id = o.merchant_id
                   AND dp.payment_order_id = o.payment_order_id
                   AND (SELECT d.status FROM disputes d
                         WHERE d.merchant_id = dp.merchant_id
                           AND d.dispute_id = dp.dispute_id) = 'OPEN';

                -- the commission's share of it: the order's commission
                -- less the rule's on what stays captured (a fixed fee
                -- stays with the first unit, rounding with the total),
                -- within what it takes back
                v_comm := least(greatest(coalesce(o.commission, 0)
                                         - commission_of(o.amount_captured - x.amount,
                                                         coalesce(c.commission_bps, 0),
                                                         coalesce(c.commission_fixed, 0)),
                                         0), x.amount);
                -- the order gives back what it holds, its seller at most
                -- its share and what it holds, the commission the rest
                -- (within what it holds: the order holds the two together).
                -- Its OPEN chargebacks are kept back from the seller only
                -- when the order no longer holds the whole capture (the
                -- refunded case): while it does, their parts left the
                -- clearing when they opened and, lost, charge the seller
                -- the part less the commission's share then; kept back
                -- there too, they made the commission give back the
                -- seller's share of the reversal, for good once the
                -- chargeback is won (money-check seed 140198)
                v_take := least(x.amount, greatest(v_held, 0));
                IF v_take < x.amount THEN
                    v_owed := v_owed + v_open;
                END IF;
                v_sp := least(x.amount - v_comm,
                              greatest(v_seller - v_owed, 0), v_take);
                v_cp := v_take - v_sp;
                IF v_cp > greatest(v_kept, 0) THEN
                    v_cp := greatest(v_kept, 0);
                    v_sp := v_take - v_cp;
                END IF;
                IF v_take < x.amount THEN
                    v_short := v_short + (x.amount - v_take);
                    v_parts := v_parts || jsonb_build_object(
                        'payment_order_id', o.payment_order_id, 'capture_id', x.capture_id,
                        'reversed', x.amount, 'taken_back', v_take,
                        'shortfall', x.amount - v_take);
                END IF;

                UPDATE captures y SET status = 'FAILED', commission_part = NULL,
                                      failure = 'reversed by the PSP after it had been captured',
                                      psp_ref = coalesce(y.psp_ref, nullif(p_object_ref, ''))
                 WHERE y.merchant_id = x.merchant_id AND y.capture_id = x.capture_id;
                UPDATE payment_orders po
                   SET amount_captured = po.amount_captured - x.amount,
                       commission = greatest(coalesce(po.commission, 0) - v_cp, 0),
                       updated_at = now()
                 WHERE po.merchant_id = o.merchant_id
                   AND po.payment_order_id = o.payment_order_id;
                PERFORM ledger_book(o.merchant_id, o.checkout_id, o.payment_order_id, 'payment',
                    x.capture_id, v_src, o.currency,
                    ARRAY['psp_clearing:' || p_psp, 'seller_payable:' || o.seller_account,
                          'platform_commission', 'psp_shortfall:' || p_psp],
                    ARRAY[-x.amount, v_sp, v_cp, x.amount - v_take]);
                PERFORM wallet_add(o.merchant_id, o.seller_account, o.currency, -v_sp);
            END LOOP;
            IF v_short > 0 THEN
                PERFORM audit_append(v_m, v_co, 'capture:shortfall',
                    jsonb_build_object('psp', p_psp, 'object', p_object_ref,
                                       'shortfall', v_short, 'orders', v_parts));
                outcome := 'capture_reversed_refunded';
            ELSE
                outcome := 'capture_reversed';
            END IF;
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
        IF EXISTS (SELECT 1 FROM unnest(v_ids) i(id),
                          LATERAL (SELECT c.payment_order_id, c.amount
                                     FROM captures c
                                    WHERE c.merchant_id = cp.merchant_id
                                      AND c.capture_id = i.id OFFSET 0) y,
                          LATERAL (SELECT po.amount, po.amount_captured
                                     FROM payment_orders po
                                    WHERE po.merchant_id = cp.merchant_id
                                      AND po.payment_order_id = y.payment_order_id
                                   OFFSET 0) o
                    GROUP BY y.payment_order_id, o.amount, o.amount_captured
                   HAVING coalesce(o.amount_captured, 0) + sum(y.amount) > o.amount) THEN
            -- more than its order has left to capture (no claim makes
            -- such a capture: a bug's, a lying PSP's, or room taken before
            -- captures made at the PSP left ours theirs): nothing booked,
            -- the capture left PENDING (the hold kept for it), recorded
            -- and alerted for a person, never an error that loses the
            -- event
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        v_final := cp.final;
        v_out := 'applied';
    END IF;

    IF p_kind = 'CAPTURE_SUCCEEDED' THEN
        -- the sellers' wallet rows first, in seller order (doc/MONEY.md,
        -- "Lock order"): a seller's first booking inserts its folded row,
        -- which another transaction booking the same sellers waits on; the
        -- captures below go in order id order
        FOR w IN
            SELECT DISTINCT o.seller_account, o.currency
              FROM unnest(v_ids) i(id),
                   LATERAL (SELECT c.payment_order_id FROM captures c
                             WHERE c.merchant_id = v_m AND c.capture_id = i.id
                            OFFSET 0) y,
                   LATERAL (SELECT po.seller_account, po.currency
                              FROM payment_orders po
                             WHERE po.merchant_id = v_m
                               AND po.payment_order_id = y.payment_order_id
                            OFFSET 0) o
             ORDER BY 1, 2
        LOOP
            PERFORM wallet_add(v_m, w.seller_account, w.currency, 0);
        END LOOP;

        -- each capture of v_ids booked, PENDING -> SUCCEEDED
        FOR x IN
            SELECT y.* FROM unnest(v_ids) i(id),
                   LATERAL (SELECT * FROM captures c
                             WHERE c.merchant_id = v_m AND c.capture_id = i.id
                            OFFSET 0) y
             ORDER BY y.payment_order_id
        LOOP
            SELECT * INTO o FROM payment_orders po
             WHERE po.merchant_id = x.merchant_id AND po.payment_order_id = x.payment_order_id;
            v_new := coalesce(o.amount_captured, 0) + x.amount;
            -- never beyond the authorized amount (the claims count what is
            -- pending, so this is a bug's or a lying PSP's): nothing moves
            IF v_new > o.amount THEN
                RAISE EXCEPTION 'capture %: % captured of order % exceeds its authorized %',
                    x.capture_id, v_new, o.payment_order_id, o.amount
                    USING ERRCODE = 'PY007';
            END IF;
            v_comm := commission_of(v_new, coalesce(c.commission_bps, 0),
                                    coalesce(c.commission_fixed, 0));
            v_part := least(greatest(v_comm - coalesce(o.commission, 0), 0), x.amount);

            UPDATE captures y SET status = 'SUCCEEDED', commission_part = v_part,
                                  psp_ref = coalesce(y.psp_ref, nullif(p_object_ref, ''))
             WHERE y.merchant_id = x.merchant_id AND y.capture_id = x.capture_id;

            -- released here before the PSP's word came (a hold the sweeper
            -- released, the PSP's own release notice crossing the capture):
            -- the PSP holds the money, so it is booked, FAILED -> SUCCESS
            IF o.status = 'FAILED' OR c.status = 'FAILED' THEN
                PERFORM set_config('payments.paid_after_failed', 'on', true);
                v_late := true;
            END IF;
            UPDATE payment_orders po
               SET status = 'SUCCESS', amount_captured = v_new,
                   commission = coalesce(o.commission, 0) + v_part,
                   ledger_updated = true, wallet_updated = true, updated_at = now()
             WHERE po.merchant_id = o.merchant_id AND po.payment_order_id = o.payment_order_id;
            IF o.status IN ('AUTHORIZED', 'FAILED') THEN
                INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                          from_status, to_status, source)
                VALUES (o.merchant_id, o.checkout_id, o.payment_order_id, o.status,
                        'SUCCESS', v_src);
            END IF;

            PERFORM ledger_book(o.merchant_id, o.checkout_id, o.payment_order_id, 'payment',
                x.capture_id, v_src, o.currency,
                ARRAY['psp_clearing:' || p_psp, 'seller_payable:' || o.seller_account,
                      'platform_commission'],
                ARRAY[x.amount, -(x.amount - v_part), -v_part]);
            PERFORM wallet_add(o.merchant_id, o.seller_account, o.currency, x.amount - v_part);
        END LOOP;

        IF c.status IN ('AUTHORIZED', 'FAILED') THEN
            UPDATE checkouts ck SET status = 'SUCCESS', updated_at = now()
             WHERE ck.merchant_id = c.merchant_id AND ck.checkout_id = c.checkout_id;
        END IF;
        IF v_final AND c.hold_closed_at IS NULL THEN
            PERFORM hold_release(c.merchant_id, c.checkout_id, 'voided', v_src);
        END IF;

        outcome := CASE WHEN v_out = 'applied' AND v_late THEN 'captured_after_release'
                        ELSE v_out END;
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
