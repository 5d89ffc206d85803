-- Appends one row to the chain of its checkout (called inside the
-- transaction that made the change, so the row commits or rolls back with
-- it).
CREATE OR REPLACE FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_chain  smallint := audit_chain_of(p_checkout);
BEGIN
    IF NOT audit_append_to(p_merchant, v_chain, p_checkout, p_action, p_detail) THEN
        PERFORM audit_open_chains(p_merchant);
        PERFORM audit_append_to(p_merchant, v_chain, p_checkout, p_action, p_detail);
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
