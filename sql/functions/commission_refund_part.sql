-- The commission's part of a refund of p_refund after p_refunded_before
-- refunded of an order of which p_amount is captured, with commission
-- p_commission: g(before + refund) - g(before), g(x) = floor(x * C / A)
-- below A and C from A on (never more than C in all, never a division by
-- zero when nothing is captured).  refund_event_apply uses
-- commission_refund_share, which also counts what refunds undone booked.
CREATE OR REPLACE FUNCTION commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT ((CASE WHEN p_refunded_before + p_refund <= 0 THEN 0::numeric
                  WHEN p_refunded_before + p_refund >= p_amount THEN p_commission::numeric
                  ELSE floor((p_refunded_before + p_refund)::numeric * p_commission
                             / p_amount) END)
            - (CASE WHEN p_refunded_before <= 0 THEN 0::numeric
                    WHEN p_refunded_before >= p_amount THEN p_commission::numeric
                    ELSE floor(p_refunded_before::numeric * p_commission / p_amount) END)
           )::bigint;
$function$;
REVOKE ALL ON FUNCTION commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint) FROM PUBLIC;
