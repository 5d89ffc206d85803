-- The previous release's append to a named chain, kept for one release:
-- nothing of this release calls it (audit_append appends itself), and a
-- migration dropping it would break the previous release's audit_append
-- between the migrations and the functions' replacement.  A row goes to
-- its checkout's own chain only, as audit_append puts it.
CREATE OR REPLACE FUNCTION audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF p_chain IS DISTINCT FROM audit_chain_of(p_checkout) THEN
        RAISE EXCEPTION 'audit_append_to: chain % is not the chain of checkout %', p_chain, p_checkout
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit_append(p_merchant, p_checkout, p_action, p_detail);
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
