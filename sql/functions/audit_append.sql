-- Appends one row to the chain of its checkout (called inside the
-- transaction that made the change, so the row commits or rolls back with
-- it).  The row's place in its chain (its number, the previous row's hash
-- and its own) is given by the log's own trigger, audit_log_link, which
-- also opens a merchant's chains on its first row of a checkout; every
-- eighth row of a chain becomes the chain's anchor when the next one comes.
-- No SET search_path (a setting made and undone at every call): it names
-- its table and function with their schema; it is not SECURITY DEFINER,
-- and its callers are.
CREATE OR REPLACE FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    INSERT INTO public.audit_log (merchant_id, chain, at, checkout_id, action, detail)
    VALUES (p_merchant, public.audit_chain_of(p_checkout), pg_catalog.clock_timestamp(),
            p_checkout, p_action, p_detail);
END
$function$;
REVOKE ALL ON FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
