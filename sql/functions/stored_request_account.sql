-- The merchant account a checkout's stored PSP request was built with:
-- the "merchant_account" of its "conf" (the settings recorded with it,
-- never sent; pay_psp_conf_record), for Adyen the account that made the
-- session, and so the one that keeps what it saved.  NULL when none is
-- recorded (a request stored by an earlier release, a dialect that
-- takes none) or the text is not a JSON object (never stored so; not a
-- reason to refuse a detach).
CREATE OR REPLACE FUNCTION stored_request_account(p_request text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
    v_conf  jsonb;
BEGIN
    IF p_request IS NULL OR p_request NOT LIKE '%"conf"%' THEN
        RETURN NULL;
    END IF;

    BEGIN
        v_conf := p_request::jsonb -> 'conf';
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN NULL;
    END;

    IF jsonb_typeof(v_conf) <> 'object'
       OR jsonb_typeof(v_conf -> 'merchant_account') <> 'string'
    THEN
        RETURN NULL;
    END IF;

    RETURN v_conf ->> 'merchant_account';
END
$function$;
REVOKE ALL ON FUNCTION stored_request_account(p_request text) FROM PUBLIC;
