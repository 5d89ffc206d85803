-- The commission's part of a refund of p_refund of an order of which
-- p_amount is captured, with commission p_commission, after refunds of
-- p_refunded_before standing that booked p_booked_before of it:
-- min(r, max(0, g(R + r) - B)), g(x) the commission of x refunded,
-- floor(x * C / A) while x is below A, and C itself once x reaches A
-- (nothing captured any more, A = 0, included: a capture reversed under a
-- pending refund).  So the commission given back never exceeds C, and no
-- refund divides by zero.
CREATE OR REPLACE FUNCTION commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT least(p_refund::numeric,
                 greatest(0::numeric,
                          CASE WHEN p_refunded_before + p_refund <= 0 THEN 0::numeric
                               WHEN p_refunded_before + p_refund >= p_amount
                               THEN p_commission::numeric
                               ELSE floor((p_refunded_before + p_refund)::numeric
                                          * p_commission / p_amount) END
                          - p_booked_before))::bigint;
$function$;
REVOKE ALL ON FUNCTION commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) FROM PUBLIC;
