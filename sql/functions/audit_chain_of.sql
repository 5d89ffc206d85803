CREATE OR REPLACE FUNCTION audit_chain_of(p_checkout text)
 RETURNS smallint
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN CASE WHEN p_checkout IS NULL THEN 0
                ELSE 1 + get_byte(sha256(convert_to(p_checkout, 'UTF8')), 0) % 64
           END::smallint;
END
$function$;
REVOKE ALL ON FUNCTION audit_chain_of(p_checkout text) FROM PUBLIC;
