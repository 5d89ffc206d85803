-- What op_key_take would answer a refund, capture, void or pay-out from
-- what is stored, read without a write: asked when no configured PSP can
-- send the operation now (its PSP removed from nginx.conf, or in the other
-- mode), so that a retry of one made is answered as any retry under its
-- key, and only a new request is refused.  Outcomes: op_key_take's
-- 'replay', 'reused' and 'in_use' (with its answer or its wait);
-- 'unsent' for a claim never answered whose lease ran out (op_key_take
-- would resume it: the caller refuses, as it cannot send it).  A key past
-- its TTL, or purged, counts as absent, as there, and the request is then
-- looked up as the claim's op_key_prior does (operation_keys: the same key
-- and body): the operation it made, answered from its row when it is
-- settled or known to the PSP ('settled', its columns where the kind's
-- claim puts them, so the caller reads either alike), else 'unsent' (the
-- claim would send it again).  'new' otherwise.
CREATE OR REPLACE FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, op_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k      idempotency_keys%ROWTYPE;
    ok     operation_keys%ROWTYPE;
    v_now  timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    IF NOT FOUND OR (k.state = 'done' AND k.expires_at <= v_now) THEN
        SELECT * INTO ok FROM operation_keys o
         WHERE o.merchant_id = p_merchant AND o.idem_key = p_idem_key
           AND o.fingerprint = p_fingerprint;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'new'::text, NULL::bigint, NULL::int, NULL::int, NULL::text,
                                NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
        ELSIF ok.kind = 'refund' THEN
            RETURN QUERY SELECT CASE WHEN rf.status <> 'PENDING' OR rf.psp_refund_id IS NOT NULL
                                     THEN 'settled' ELSE 'unsent' END,
                                NULL::bigint, NULL::int, NULL::int, NULL::text,
                                rf.refund_id, rf.psp, NULL::text, rf.amount, rf.currency,
                                rf.reason, NULL::bigint, rf.status, rf.psp_refund_id, rf.failure
                           FROM refunds rf
                          WHERE rf.merchant_id = p_merchant AND rf.refund_id = ok.op_id;
        ELSIF ok.kind = 'capture' THEN
            RETURN QUERY SELECT CASE WHEN x.status <> 'PENDING' OR x.psp_ref IS NOT NULL
                                     THEN 'settled' ELSE 'unsent' END,
                                NULL::bigint, NULL::int, NULL::int, NULL::text,
                                x.capture_id, x.psp, NULL::text, x.amount, x.currency,
                                x.kind, NULL::bigint, x.status, x.psp_ref, x.failure
                           FROM captures x
                          WHERE x.merchant_id = p_merchant AND x.capture_id = ok.op_id;
        ELSE
            RETURN QUERY SELECT CASE WHEN po.status <> 'PENDING' OR po.psp_payout_id IS NOT NULL
                                     THEN 'settled' ELSE 'unsent' END,
                                NULL::bigint, NULL::int, NULL::int, NULL::text,
                                po.payout_id, po.psp, NULL::text, po.amount, po.currency,
                                NULL::text, NULL::bigint, po.status, po.psp_payout_id, po.failure
                           FROM payouts po
                          WHERE po.merchant_id = p_merchant AND po.payout_id = ok.op_id;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_op_key_answer: request % names % %, which does not exist',
                p_idem_key, ok.kind, ok.op_id USING ERRCODE = 'PY004';
        END IF;
    ELSIF k.fingerprint <> p_fingerprint THEN
        RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    ELSIF k.state = 'done' THEN
        RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                            k.response_status, k.response_body,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    ELSIF k.lease_until > v_now THEN
        RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                            GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                            NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    ELSE
        RETURN QUERY SELECT 'unsent'::text, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) TO payments_gateway;
