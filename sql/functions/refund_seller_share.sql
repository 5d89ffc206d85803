-- The seller's share of refunds of p_refund after p_before refunded of an
-- order of p_amount with commission p_commission: f(before + refund) -
-- f(before), f(x) = x - floor(x * commission / amount).  Exact when the
-- refunds succeed in the order they were asked, and never less otherwise.
CREATE OR REPLACE FUNCTION refund_seller_share(p_amount bigint, p_commission bigint, p_before bigint, p_refund bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT (p_refund
            - (floor((p_before + p_refund)::numeric * p_commission / p_amount)
               - floor(p_before::numeric * p_commission / p_amount)))::bigint;
$function$;
REVOKE ALL ON FUNCTION refund_seller_share(p_amount bigint, p_commission bigint, p_before bigint, p_refund bigint) FROM PUBLIC;
