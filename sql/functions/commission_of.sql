CREATE OR REPLACE FUNCTION commission_of(p_amount bigint, p_bps integer, p_fixed bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN LEAST(p_amount::numeric,
                 floor(p_amount::numeric * p_bps / 10000) + p_fixed)::bigint;
END
$function$;
REVOKE ALL ON FUNCTION commission_of(p_amount bigint, p_bps integer, p_fixed bigint) FROM PUBLIC;
