-- A dispute of p_amount over the checkout's orders: each order's part, in
-- line order (see the header).
CREATE OR REPLACE FUNCTION dispute_split(p_merchant text, p_checkout text, p_amount bigint)
 RETURNS TABLE(payment_order_id text, seller_account text, part bigint)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION dispute_split(p_merchant text, p_checkout text, p_amount bigint) FROM PUBLIC;
