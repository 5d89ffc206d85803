-- the operation's id from our nonce "<merchant>:<id>", when it is one
CREATE OR REPLACE FUNCTION nonce_split(p_reference text, OUT merchant_id text, OUT object_id text)
 RETURNS record
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT CASE WHEN position(':' IN coalesce(p_reference, '')) > 0
                THEN split_part(p_reference, ':', 1) END,
           CASE WHEN position(':' IN coalesce(p_reference, '')) > 0
                THEN substr(p_reference, length(split_part(p_reference, ':', 1)) + 2) END;
$function$;
REVOKE ALL ON FUNCTION nonce_split(p_reference text, OUT merchant_id text, OUT object_id text) FROM PUBLIC;
