-- A registration whose risk verdict was asked before its claim
-- (doc/RISK.md, "Where it runs"): pay_claim and, when it claimed the
-- checkout, the verdict recorded under the new lease, in one transaction,
-- so the verdict is on record from the claim's commit and a risk-checked
-- registration commits once before its PSP call, as an unchecked one.
-- The claim has just written the key and the checkout in this transaction,
-- so what pay_risk_record reads and locks first (the key's lease, the
-- checkout EXECUTING with no verdict) holds already: the verdict goes
-- straight to risk_verdict_record, and an allow keeps the lease the claim
-- began a moment ago (no second version of the key, no row locks).
-- Any other outcome of the claim (a replay, a resume, a duplicate, in
-- use, ...) records nothing of the verdict: risk_outcome is NULL and the
-- caller goes on as after pay_claim.
CREATE OR REPLACE FUNCTION pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint, risk_outcome text, risk_status integer, risk_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    c          record;
    v_outcome  text;
    v_status   integer;
    v_body     text;
BEGIN
    -- a verdict that could not be recorded claims nothing either
    PERFORM risk_verdict_check(p_verdict, p_review_seconds, p_response_status,
                               p_response_body, p_lease_seconds);

    SELECT * INTO c
      FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                     p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                     p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                     p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                     p_metadata, p_capture_method, p_options);

    IF c.outcome = 'claimed' THEN
        PERFORM risk_verdict_record(p_merchant, p_idem_key, p_checkout_id, p_verdict,
                                    p_score, p_reason, p_source, p_review_seconds,
                                    p_response_status, p_response_body,
                                    p_lease_seconds, false);
        v_outcome := p_verdict;
        v_status := p_response_status;
        v_body := p_response_body;
    END IF;

    RETURN QUERY SELECT c.outcome, c.lease, c.retry_after, c.response_status,
                        c.response_body, c.psp_request, c.expires_at,
                        c.checkout_status, c.claim_age,
                        v_outcome, v_status, v_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text) TO payments_gateway;
