-- A dispute of p_amount over the checkout's captured orders: each order's
-- part, in line order (doc/MONEY.md, "Disputes and chargebacks").  Only an
-- order that holds captured money (SUCCESS: automatic, or a manual order
-- with a capture booked) takes a part; a released or never captured one
-- has no row.  What each still holds is its captured amount less what was
-- given back (order_given_back: its PENDING and SUCCEEDED refunds, its
-- parts of OPEN and LOST disputes).  The dispute is split within that, in
-- proportion to it (floor; the floors' remainder, fewer units than orders,
-- a unit each in line order to the orders with room left).  Only what
-- exceeds everything still held (the PSP withdrew more than the orders
-- hold: a refunded payment charged back) is split by what each order
-- captured, the same way (floor, the remainder a unit each in line order).
CREATE OR REPLACE FUNCTION dispute_split(p_merchant text, p_checkout text, p_amount bigint)
 RETURNS TABLE(payment_order_id text, seller_account text, part bigint)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_id        text[];
    v_seller    text[];
    v_captured  bigint[];
    v_room      bigint[];
    v_part      bigint[];
    v_rooms     bigint;
    v_total     bigint;
    v_fit       bigint;
    v_left      bigint;
    v_excess    bigint;
    v_add       bigint;
    v_n         int;
BEGIN
    SELECT array_agg(x.payment_order_id ORDER BY x.line_no),
           array_agg(x.seller_account ORDER BY x.line_no),
           array_agg(x.captured ORDER BY x.line_no),
           array_agg(greatest(x.captured - order_given_back(p_merchant,
                                                            x.payment_order_id, NULL), 0)
                     ORDER BY x.line_no)
      INTO v_id, v_seller, v_captured, v_room
      FROM (SELECT po.payment_order_id, po.seller_account, po.line_no,
                   coalesce(po.amount_captured, po.amount) AS captured
              FROM payment_orders po
             WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
               AND po.status = 'SUCCESS') x
     WHERE x.captured > 0;
    v_n := coalesce(array_length(v_id, 1), 0);
    IF v_n = 0 THEN
        RETURN;
    END IF;

    SELECT sum(x) INTO v_rooms FROM unnest(v_room) x;
    SELECT sum(x) INTO v_total FROM unnest(v_captured) x;
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

    -- more than every order still holds: the rest by what each captured
    -- (floor), the floors' remainder a unit each in line order
    v_excess := p_amount - v_fit;
    IF v_excess > 0 THEN
        v_left := v_excess;
        FOR i IN 1 .. v_n LOOP
            v_add := floor(v_excess::numeric * v_captured[i] / v_total)::bigint;
            v_part[i] := v_part[i] + v_add;
            v_left := v_left - v_add;
        END LOOP;
        FOR i IN 1 .. v_n LOOP
            EXIT WHEN v_left = 0;
            v_part[i] := v_part[i] + 1;
            v_left := v_left - 1;
        END LOOP;
    END IF;

    RETURN QUERY SELECT v_id[i], v_seller[i], v_part[i] FROM generate_series(1, v_n) i;
END
$function$;
REVOKE ALL ON FUNCTION dispute_split(p_merchant text, p_checkout text, p_amount bigint) FROM PUBLIC;
