-- Records a routed checkout's route and the PSP it is bound to first
-- (checkouts.psp), after the route's PSPs passed over before it, in the
-- route's order: p_passed, [{"psp", "why"}], why one of
--   psp_not_allowed  the merchant may not use it (pay_claim refused it);
--                    recorded only while that is still so (set-psps may
--                    have changed since);
--   circuit_open     its circuit breaker was open when the route was
--                    chosen: never called (the caller's word, as every
--                    moved_on is).
-- Each passed-over PSP gets its checkout_routes row (moved_on) and an
-- audit row 'registration:routed' {route, skipped, skipped_why}; the bound
-- one its row and {route, psp}.  Called in the transaction that binds the
-- checkout: pay_claim (a fresh claim of a routed checkout) and
-- pay_route_bind (the first bind, when pay_claim did not record it).
-- Records nothing when the checkout has a route already; returns whether
-- it recorded.
CREATE OR REPLACE FUNCTION checkout_route_first(p_merchant text, p_checkout text, p_route text, p_to text, p_passed jsonb)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_seq  int := 0;
    v_psp  text;
    v_why  text;
    p      jsonb;
BEGIN
    IF p_route IS NULL OR p_to IS NULL
       OR (p_passed IS NOT NULL AND jsonb_typeof(p_passed) <> 'array') THEN
        RAISE EXCEPTION 'checkout_route_first: a route, its PSP and an array of those passed over'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF EXISTS (SELECT 1 FROM checkout_routes r
                WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout) THEN
        RETURN false;
    END IF;

    FOR p IN SELECT e.value FROM jsonb_array_elements(coalesce(p_passed, '[]')) e LOOP
        v_psp := p ->> 'psp';
        v_why := p ->> 'why';
        IF v_psp IS NULL OR v_why IS NULL
           OR v_why NOT IN ('psp_not_allowed', 'circuit_open') THEN
            RAISE EXCEPTION 'checkout_route_first: a PSP passed over names itself and why (psp_not_allowed or circuit_open)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN v_psp = p_to;
        -- the caller's word checked where the database can: a PSP passed
        -- over as not allowed is one the merchant still may not use
        CONTINUE WHEN v_why = 'psp_not_allowed' AND NOT EXISTS (
            SELECT 1 FROM merchants m
             WHERE m.merchant_id = p_merchant AND m.psps IS NOT NULL
               AND NOT v_psp = ANY (m.psps));
        v_seq := v_seq + 1;
        INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp, moved_on)
        VALUES (p_merchant, p_checkout, v_seq, p_route, v_psp, v_why);
        PERFORM audit_append(p_merchant, p_checkout, 'registration:routed',
            jsonb_build_object('route', p_route, 'skipped', v_psp,
                               'skipped_why', v_why));
    END LOOP;

    INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp)
    VALUES (p_merchant, p_checkout, v_seq + 1, p_route, p_to);
    PERFORM audit_append(p_merchant, p_checkout, 'registration:routed',
        jsonb_build_object('route', p_route, 'psp', p_to));
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION checkout_route_first(p_merchant text, p_checkout text, p_route text, p_to text, p_passed jsonb) FROM PUBLIC;
