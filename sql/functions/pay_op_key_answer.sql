-- What op_key_take would answer a refund, capture, void or pay-out from
-- what is stored, read without a write: asked when no configured PSP can
-- send the operation now (its PSP removed from nginx.conf, or in the other
-- mode), so that a retry of one made is answered as any retry under its
-- key, and only a new request is refused.  Outcomes: op_key_take's
-- 'replay', 'reused' and 'in_use' (with its answer or its wait);
-- 'unsent' for a claim never answered whose lease ran out (op_key_take
-- would resume it: the caller refuses, as it cannot send it); 'new'
-- otherwise (a key past its TTL counts as absent, as there).
CREATE OR REPLACE FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    k      idempotency_keys%ROWTYPE;
    v_now  timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    IF NOT FOUND OR (k.state = 'done' AND k.expires_at <= v_now) THEN
        RETURN QUERY SELECT 'new'::text, NULL::bigint, NULL::int, NULL::int, NULL::text;
    ELSIF k.fingerprint <> p_fingerprint THEN
        RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int, NULL::int, NULL::text;
    ELSIF k.state = 'done' THEN
        RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                            k.response_status, k.response_body;
    ELSIF k.lease_until > v_now THEN
        RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                            GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                            NULL::int, NULL::text;
    ELSE
        RETURN QUERY SELECT 'unsent'::text, NULL::bigint, NULL::int, NULL::int, NULL::text;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) TO payments_gateway;
