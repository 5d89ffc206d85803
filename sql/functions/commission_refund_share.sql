CREATE OR REPLACE FUNCTION commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT least(p_refund::numeric,
                 greatest(0::numeric,
                          floor((p_refunded_before + p_refund)::numeric * p_commission
                                / p_amount) - p_booked_before))::bigint;
$function$;
REVOKE ALL ON FUNCTION commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) FROM PUBLIC;
