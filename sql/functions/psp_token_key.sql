CREATE OR REPLACE FUNCTION psp_token_key(p_psp text, p_token text, p_tokens text[])
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_tok  text;
BEGIN
    IF coalesce(p_token, '') = '' OR coalesce(cardinality(p_tokens), 0) = 0 THEN
        RETURN p_token;
    END IF;
    FOREACH v_tok IN ARRAY p_tokens LOOP
        PERFORM 1 FROM psp_tokens t WHERE t.psp = p_psp AND t.psp_token = v_tok;
        IF FOUND THEN
            RETURN v_tok;
        END IF;
    END LOOP;
    RETURN p_token;
END
$function$;
REVOKE ALL ON FUNCTION psp_token_key(p_psp text, p_token text, p_tokens text[]) FROM PUBLIC;
