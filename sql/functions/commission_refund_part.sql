CREATE OR REPLACE FUNCTION commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT (floor((p_refunded_before + p_refund)::numeric * p_commission / p_amount)
            - floor(p_refunded_before::numeric * p_commission / p_amount))::bigint;
$function$;
REVOKE ALL ON FUNCTION commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint) FROM PUBLIC;
