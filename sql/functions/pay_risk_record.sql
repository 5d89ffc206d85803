-- The risk check's verdict on a claimed checkout, before any PSP call
-- (doc/RISK.md), under the claim's lease:
--   allow   recorded; the caller goes on to the PSP;
--   deny    recorded, the checkout and its orders FAILED (risk_declined,
--           the reason as its failure), the key done with the caller's
--           403 answer, so a retry with the same key replays it;
--   review  recorded with its deadline, the checkout in REVIEW, the key
--           done with the caller's 202 answer.
-- An allow renews the claim's lease for the PSP's part (the caller's
-- lease, from now), as pay_claim gave it for the whole.
-- A checkout that already has a verdict (a resumed claim) keeps it: the
-- outcome is that verdict (allow for an approved review), and nothing is
-- written.  Each verdict reaches
-- the merchant's audit chain with the moves it made.
CREATE OR REPLACE FUNCTION pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer)
 RETURNS TABLE(outcome text, response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k        idempotency_keys%ROWTYPE;
    v_old    text;
    v_status pay_status;
BEGIN
    PERFORM risk_verdict_check(p_verdict, p_review_seconds, p_response_status,
                               p_response_body, p_lease_seconds);

    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_risk_record: no key % for merchant %', p_idem_key, p_merchant
            USING ERRCODE = 'PY004';
    END IF;
    IF k.state = 'done' THEN
        RETURN QUERY SELECT 'replay'::text, k.response_status, k.response_body;
        RETURN;
    END IF;
    IF k.lease IS DISTINCT FROM p_lease THEN
        RAISE EXCEPTION 'pay_risk_record: lease % of key % was taken over (now %)',
            p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
    END IF;
    IF k.checkout_id IS DISTINCT FROM p_checkout_id THEN
        RAISE EXCEPTION 'pay_risk_record: key % belongs to checkout %, not %',
            p_idem_key, k.checkout_id, p_checkout_id USING ERRCODE = 'PY004';
    END IF;

    -- an approved review counts as allow: its claim goes on to the PSP
    SELECT CASE WHEN r.reviewed = 'approved' THEN 'allow' ELSE r.verdict END
      INTO v_old FROM checkout_risk r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id;
    IF FOUND THEN
        RETURN QUERY SELECT v_old, NULL::int, NULL::text;
        RETURN;
    END IF;

    SELECT c.status INTO v_status FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       FOR UPDATE;
    IF v_status IS DISTINCT FROM 'EXECUTING' THEN
        RAISE EXCEPTION 'pay_risk_record: checkout % is %, not EXECUTING',
            p_checkout_id, v_status USING ERRCODE = 'PY004';
    END IF;

    PERFORM risk_verdict_record(p_merchant, p_idem_key, p_checkout_id, p_verdict,
                                p_score, p_reason, p_source, p_review_seconds,
                                p_response_status, p_response_body, p_lease_seconds,
                                true);

    RETURN QUERY SELECT p_verdict, p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) TO payments_gateway;
