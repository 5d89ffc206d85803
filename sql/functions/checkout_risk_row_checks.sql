-- checkout_risk: checkout_risk_reason, checkout_risk_review, checkout_risk_reviewed, checkout_risk_score, checkout_risk_source, checkout_risk_verdict
CREATE OR REPLACE FUNCTION checkout_risk_row_checks(r checkout_risk)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (r.reason ~ '^[a-z0-9_.-]{1,64}$'::text) THEN 'checkout_risk_reason'
        WHEN NOT (((r.verdict = 'review'::text) = (r.review_until IS NOT NULL)) AND ((r.reviewed IS NULL) OR (r.verdict = 'review'::text))) THEN 'checkout_risk_review'
        WHEN NOT (((r.reviewed = ANY (ARRAY['approved'::text, 'rejected'::text, 'expired'::text, 'canceled'::text])) AND (r.reviewed_at IS NOT NULL)) OR ((r.reviewed IS NULL) AND (r.reviewed_at IS NULL))) THEN 'checkout_risk_reviewed'
        WHEN NOT (r.score <@ int4range(0, 1000, '[]')) THEN 'checkout_risk_score'
        WHEN NOT (r.source = ANY (ARRAY['provider'::text, 'on_error'::text])) THEN 'checkout_risk_source'
        WHEN NOT (r.verdict = ANY (ARRAY['allow'::text, 'deny'::text, 'review'::text])) THEN 'checkout_risk_verdict'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "checkout_risk" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'checkout_risk', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION checkout_risk_row_checks(r checkout_risk) FROM PUBLIC;

-- The CHECK that runs it on every row of checkout_risk written, added when
-- the table does not have it yet.  It passes the row whole, as the other
-- tables with seven checked columns or more (checkouts_row_checks.sql says
-- why).  NOT VALID: the rows kept before are not read again (they
-- satisfied the six CHECKs this one replaces).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.checkout_risk'::regclass AND conname = 'checkout_risk_row_checks') THEN
        ALTER TABLE checkout_risk ADD CONSTRAINT checkout_risk_row_checks
            CHECK (checkout_risk_row_checks(checkout_risk.*)) NOT VALID;
    END IF;
END
$$;
