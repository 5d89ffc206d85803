-- A checked risk verdict on an EXECUTING checkout with no verdict yet,
-- under its key's lease, the caller having checked all of that
-- (risk_verdict_check, then pay_risk_record's reads, or pay_claim_with_verdict's
-- own claim in the same transaction): the verdict's row, a deny's or a
-- review's moves (the checkout and its orders FAILED, or the checkout in
-- REVIEW), the audit entry, and the key: done with the caller's answer on a
-- deny or a review; on an allow, its lease renewed from now when
-- p_renew_lease (a claim made earlier: the PSP's part gets the whole lease),
-- left as it is otherwise (a claim made in this transaction: its lease
-- began a moment ago, and writing the row again would only cost a version).
CREATE OR REPLACE FUNCTION risk_verdict_record(p_merchant text, p_idem_key text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer, p_renew_lease boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_moved  jsonb;
BEGIN
    -- a review names the key it is written under, the registration's: a
    -- person's approval or rejection takes it first (review_key)
    INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score, reason,
                               source, review_until, review_key)
    VALUES (p_merchant, p_checkout_id, p_verdict, p_score, p_reason, p_source,
            CASE WHEN p_verdict = 'review'
                 THEN now() + p_review_seconds * interval '1 second' END,
            CASE WHEN p_verdict = 'review' THEN p_idem_key END);

    IF p_verdict = 'deny' THEN
        UPDATE checkouts c
           SET status = 'FAILED', failure_code = 'risk_declined',
               failure = coalesce(p_reason, 'declined'), updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;

        v_moved := checkout_orders_failed(p_merchant, p_checkout_id, 'risk');

    ELSIF p_verdict = 'review' THEN
        UPDATE checkouts c
           SET status = 'REVIEW', updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
    END IF;

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:' || p_verdict,
        jsonb_strip_nulls(jsonb_build_object(
            'verdict', p_verdict, 'score', p_score, 'reason', p_reason,
            'source', p_source,
            'to', CASE p_verdict WHEN 'deny' THEN 'FAILED'
                                 WHEN 'review' THEN 'REVIEW' END,
            'payment_orders', v_moved)));

    IF p_verdict = 'allow' AND p_renew_lease THEN
        UPDATE idempotency_keys ik
           SET lease_until = clock_timestamp() + p_lease_seconds * interval '1 second'
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    ELSIF p_verdict <> 'allow' THEN
        UPDATE idempotency_keys ik
           SET state = 'done', lease_until = NULL,
               response_status = p_response_status,
               response_body = p_response_body,
               expires_at = now() + (ik.expires_at - ik.created_at)
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION risk_verdict_record(p_merchant text, p_idem_key text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer, p_renew_lease boolean) FROM PUBLIC;
