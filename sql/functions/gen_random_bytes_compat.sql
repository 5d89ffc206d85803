-- gen_random_bytes is pgcrypto's; the server has gen_random_uuid built in.
CREATE OR REPLACE FUNCTION gen_random_bytes_compat(p_n integer)
 RETURNS bytea
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT substr(decode(replace(gen_random_uuid()::text, '-', '')
                         || replace(gen_random_uuid()::text, '-', ''), 'hex'), 1, p_n);
$function$;
REVOKE ALL ON FUNCTION gen_random_bytes_compat(p_n integer) FROM PUBLIC;
