-- A payment order's commission: its merchant's rate (basis points) of the
-- amount, rounded down, plus the fixed part, never more than the amount;
-- NULL when any argument is NULL.  SQL with no SET, so that the planner
-- inlines it into the statement that calls it (a webhook's booking
-- computes it for each order in one query): as a PL/pgSQL call per order
-- it cost a webhook of two orders 52,000 instructions more
-- (bench/RESULTS.md).  Not STRICT: PostgreSQL inlines a STRICT function
-- only when its body is strict too, and LEAST is not.
CREATE OR REPLACE FUNCTION commission_of(p_amount bigint, p_bps integer, p_fixed bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT CASE WHEN p_amount IS NOT NULL AND p_bps IS NOT NULL AND p_fixed IS NOT NULL
                THEN LEAST(p_amount::numeric,
                           floor(p_amount::numeric * p_bps / 10000) + p_fixed)::bigint
           END
$function$;
REVOKE ALL ON FUNCTION commission_of(p_amount bigint, p_bps integer, p_fixed bigint) FROM PUBLIC;
