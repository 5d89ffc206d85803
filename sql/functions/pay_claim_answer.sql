-- What pay_claim would answer a registration from what is stored, read
-- without a write: asked when the request cannot be claimed any more (its
-- PSP was removed from the configuration, is in the other mode now, or no
-- payments_route applies to it), so that a retry of a checkout registered
-- is answered as any retry under its key, and only a request that is new
-- is refused.  The same columns as pay_claim; the outcomes are pay_claim's
-- for a known key (replay, reused, in_use, expired, decided, canceling),
-- 'duplicate' when the checkout is another key's (nothing stored under
-- this one: the caller answers 409 duplicate_order), 'unsent' when its
-- first attempt was never answered and its lease ran out (pay_claim would
-- resume it: the caller refuses, as it cannot send it), 'new' otherwise.
CREATE OR REPLACE FUNCTION pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    k      idempotency_keys%ROWTYPE;
    c      checkouts%ROWTYPE;
    v_now  timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    -- (as pay_claim: past its TTL a done key counts as absent, unless the
    -- request is the same, whose checkout is never registered again)
    IF FOUND AND NOT (k.state = 'done' AND k.expires_at <= v_now
                      AND (k.fingerprint <> p_fingerprint
                           OR k.checkout_id <> p_checkout_id)) THEN
        IF k.state = 'done' AND k.expires_at <= v_now THEN
            RETURN QUERY SELECT 'expired'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::bigint;
            RETURN;
        END IF;
        IF k.fingerprint <> p_fingerprint THEN
            RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::bigint;
            RETURN;
        END IF;
        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                                k.response_status, k.response_body, NULL::text,
                                NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_claim_answer: in-progress key % of merchant % has no checkout',
                p_idem_key, p_merchant USING ERRCODE = 'PY004';
        END IF;
        RETURN QUERY SELECT CASE WHEN c.status <> 'EXECUTING' THEN 'decided'
                                 WHEN c.cancel_requested_at IS NOT NULL THEN 'canceling'
                                 ELSE 'unsent' END,
                            NULL::bigint, NULL::int, NULL::int, NULL::text, NULL::text,
                            NULL::bigint, c.status::text, NULL::bigint;
        RETURN;
    END IF;

    RETURN QUERY SELECT CASE WHEN EXISTS (SELECT 1 FROM checkouts ck
                                           WHERE ck.merchant_id = p_merchant
                                             AND ck.checkout_id = p_checkout_id)
                             THEN 'duplicate' ELSE 'new' END,
                        NULL::bigint, NULL::int, NULL::int, NULL::text, NULL::text,
                        NULL::bigint, NULL::text, NULL::bigint;
END
$function$;
REVOKE ALL ON FUNCTION pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text) TO payments_gateway;
