-- The arguments of a risk verdict (pay_risk_record, pay_claim_with_verdict)
-- as doc/RISK.md has them: allow, deny or review; a deny and a review carry
-- the caller's answer, a review its deadline; a lease of a second at least.
-- Raises invalid_parameter_value; reads and writes nothing.
-- No SET search_path: it names no table, type or function of ours
-- (CONTRIBUTING.md, "SQL").
CREATE OR REPLACE FUNCTION risk_verdict_check(p_verdict text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_verdict IS NULL OR p_verdict NOT IN ('allow', 'deny', 'review')
       OR (p_verdict <> 'allow'
           AND (p_response_status IS NULL OR p_response_body IS NULL))
       OR (p_verdict = 'review' AND coalesce(p_review_seconds, 0) < 1)
       OR coalesce(p_lease_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'a risk verdict of allow, deny or review; deny and review need the answer, review its deadline; a lease of 1 s at least'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION risk_verdict_check(p_verdict text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) FROM PUBLIC;
