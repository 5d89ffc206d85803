-- The token's look-up reads only its candidates (issue 14).
--
-- psp_token_key (014, PL/pgSQL since 018) found the first of the event's
-- candidate keys (its blind indexes, one per encryption key) among the
-- PSP's tokens with "psp_token = ANY (p_tokens)".  PL/pgSQL keeps a generic
-- plan once it costs no more than the custom ones, which it does while the
-- table is small or its statistics say so; in that plan the array was a
-- filter, not an index condition, and every event read all of the PSP's
-- tokens (make bench-notify: the gateway's backends busy in that scan, 270
-- to 435 webhooks/s in five runs of twelve, against 1,300 to 1,800).  Now
-- each candidate is looked up by the whole primary key, in the order given:
-- a plan with no other choice.  The answer is the same.

CREATE OR REPLACE FUNCTION psp_token_key(p_psp text, p_token text, p_tokens text[])
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
$$;
