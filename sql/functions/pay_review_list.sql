-- The review queue: the checkouts held for review and not decided yet,
-- oldest deadline first (at most p_limit), as GET /v1/reviews answers it.
CREATE OR REPLACE FUNCTION pay_review_list(p_limit integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN json_build_object('reviews', COALESCE((
        SELECT json_agg(json_build_object(
                   'nonce', c.nonce,
                   'merchant_id', c.merchant_id,
                   'checkout_id', c.checkout_id,
                   'psp', c.psp,
                   'currency', c.currency,
                   'amount_total_minor', c.amount_total,
                   'amount_total', money_decimal(c.amount_total, c.currency),
                   'score', rk.score,
                   'reason', rk.reason,
                   'source', rk.source,
                   'held_at', ts_rfc3339(rk.decided_at),
                   'review_until', ts_rfc3339(rk.review_until))
                 ORDER BY rk.review_until, c.nonce)
          FROM (SELECT * FROM checkout_risk r
                 WHERE r.verdict = 'review' AND r.reviewed IS NULL
                   -- (every review has its deadline: said so that the
                   -- queue's index, checkout_risk_open_reviews, serves it,
                   -- migration 136)
                   AND r.review_until IS NOT NULL
                 ORDER BY r.review_until
                 LIMIT greatest(1, least(coalesce(p_limit, 100), 1000))) rk
          JOIN checkouts c ON c.merchant_id = rk.merchant_id
                          AND c.checkout_id = rk.checkout_id), '[]'::json))::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_review_list(p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_review_list(p_limit integer) TO payments_gateway;
