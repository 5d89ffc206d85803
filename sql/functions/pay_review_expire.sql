-- The sweeper's round over the review queue: every review still undecided
-- past its deadline fails as a rejection would (pay_review_reject,
-- 'expired'), at most p_limit of them, oldest first; their nonces are
-- returned for the alert.
CREATE OR REPLACE FUNCTION pay_review_expire(p_limit integer, p_response_body text)
 RETURNS TABLE(nonce text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    r  record;
BEGIN
    FOR r IN SELECT rk.merchant_id, rk.checkout_id FROM checkout_risk rk
              WHERE rk.verdict = 'review' AND rk.reviewed IS NULL
                AND rk.review_until <= now()
              ORDER BY rk.review_until
              LIMIT greatest(1, least(coalesce(p_limit, 50), 1000))
    LOOP
        -- not locked here: pay_review_reject takes the key, the checkout
        -- and then this row, in the order every function does, and finds
        -- a review decided meanwhile (an approval) decided
        IF pay_review_reject(r.merchant_id, r.checkout_id, 'expired',
                             p_response_body) THEN
            nonce := r.merchant_id || ':' || r.checkout_id;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$function$;
REVOKE ALL ON FUNCTION pay_review_expire(p_limit integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_review_expire(p_limit integer, p_response_body text) TO payments_gateway;
