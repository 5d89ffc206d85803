-- Binds a routed checkout to a PSP, before that PSP is called, so that the
-- claim always knows which PSP holds or may hold its session.  Under the
-- claim's lease (key in progress, checkout EXECUTING without a token):
-- - p_from NULL: the first bind of a resumed claim whose route is not
--   recorded yet (pay_claim records it with a fresh claim that names its
--   route; the previous release's workers bind it here): records the
--   route and its first PSP (checkouts.psp, as pay_claim stored it), after
--   the route's PSPs passed over before it because the merchant may not
--   use them (p_passed_over, in the route's order: pay_claim refused each;
--   each recorded as moved on, psp_not_allowed), checkout_route_first;
--   nothing when it is recorded;
-- - p_from the PSP the checkout is bound to: it moves on to p_to, for
--   p_why, an outcome that proved p_from made no session (the caller's
--   word: pay_dialect_no_session, doc/DESIGN.md "Routing"); p_to's request
--   (p_psp_request) becomes the stored one.  Recorded in checkout_routes
--   and the audit chain.
-- Returns 'bound'; 'tried' when p_to already saw this checkout (each PSP
-- sees the nonce at most once); 'not_allowed' when the merchant may not
-- use p_to (recorded as moved on: psp_not_allowed, nothing bound);
-- 'lost' when the claim is no longer this caller's or not as described.
CREATE OR REPLACE FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[])
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    k      idempotency_keys%ROWTYPE;
    c      checkouts%ROWTYPE;
    v_seq  int;
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS NULL THEN
        RETURN 'lost';
    END IF;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id
       FOR UPDATE;
    IF NOT FOUND OR c.status <> 'EXECUTING' OR c.psp_token IS NOT NULL
       OR c.psp <> coalesce(p_from, p_to) THEN
        RETURN 'lost';
    END IF;

    IF p_from IS NULL THEN
        -- once: pay_claim records it with a fresh claim of a routed
        -- checkout; a claim of the previous release's workers did not
        PERFORM checkout_route_first(p_merchant, c.checkout_id, p_route, p_to,
            (SELECT jsonb_agg(jsonb_build_object('psp', x.psp, 'why', 'psp_not_allowed')
                              ORDER BY x.n)
               FROM unnest(p_passed_over) WITH ORDINALITY AS x(psp, n)));
        RETURN 'bound';
    END IF;

    SELECT coalesce(max(r.seq), 0) INTO v_seq FROM checkout_routes r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = c.checkout_id;

    IF p_why IS NULL OR p_psp_request IS NULL OR p_to = p_from THEN
        RAISE EXCEPTION 'pay_route_bind: moving on needs a reason, another PSP and its request'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF EXISTS (SELECT 1 FROM checkout_routes r
                WHERE r.merchant_id = p_merchant AND r.checkout_id = c.checkout_id
                  AND r.psp = p_to) THEN
        RETURN 'tried';
    END IF;

    -- the PSP left behind: why (its row is there unless the first bind
    -- was lost with its connection)
    UPDATE checkout_routes r SET moved_on = p_why
     WHERE r.merchant_id = p_merchant AND r.checkout_id = c.checkout_id
       AND r.psp = p_from AND r.moved_on IS NULL;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM checkout_routes r
                                  WHERE r.merchant_id = p_merchant
                                    AND r.checkout_id = c.checkout_id
                                    AND r.psp = p_from) THEN
        v_seq := v_seq + 1;
        INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp, moved_on)
        VALUES (p_merchant, c.checkout_id, v_seq, p_route, p_from, p_why);
    END IF;

    v_seq := v_seq + 1;

    IF EXISTS (SELECT 1 FROM merchants m
                WHERE m.merchant_id = p_merchant AND m.psps IS NOT NULL
                  AND NOT p_to = ANY (m.psps)) THEN
        INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp, moved_on)
        VALUES (p_merchant, c.checkout_id, v_seq, p_route, p_to, 'psp_not_allowed');
        PERFORM audit_append(p_merchant, c.checkout_id, 'registration:routed',
            jsonb_build_object('route', p_route, 'from', p_from, 'why', p_why,
                               'skipped', p_to, 'skipped_why', 'psp_not_allowed'));
        RETURN 'not_allowed';
    END IF;

    INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp)
    VALUES (p_merchant, c.checkout_id, v_seq, p_route, p_to);

    UPDATE checkouts ck SET psp = p_to, psp_request = p_psp_request
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = c.checkout_id;

    PERFORM audit_append(p_merchant, c.checkout_id, 'registration:routed',
        jsonb_build_object('route', p_route, 'from', p_from, 'why', p_why,
                           'psp', p_to));
    RETURN 'bound';
END
$function$;
REVOKE ALL ON FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[]) TO payments_gateway;

-- The previous release's signature, without the PSPs passed over before
-- the first: none recorded.  Kept for that release's workers during an
-- upgrade.
CREATE OR REPLACE FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text)
 RETURNS text
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT pay_route_bind(p_merchant, p_idem_key, p_lease, p_route, p_from, p_why,
                          p_to, p_psp_request, NULL::text[])
$function$;
REVOKE ALL ON FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text) TO payments_gateway;
