-- A sweeper's send of a detached method's PSP detach that the PSP did not confirm
-- (no answer, a 5xx, a refusal, its circuit open): counted, and its time
-- kept (the sweeper sends it again retry= later).  Returns the tries so
-- far; NULL when the method is none of the merchant's, or is confirmed
-- detached already (nothing counted).
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_method_detach_tried(p_merchant text, p_method text)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_tries  integer;
BEGIN
    -- the primary key: one row at most (none: v_tries stays NULL)
    UPDATE payment_methods p
       SET psp_detach_tries = p.psp_detach_tries + 1,
           psp_detach_tried_at = now()
     WHERE p.merchant_id = p_merchant AND p.method_id = p_method
       AND p.status = 'detached' AND p.psp_detached_at IS NULL
    RETURNING p.psp_detach_tries INTO v_tries;
    RETURN v_tries;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_detach_tried(p_merchant text, p_method text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_detach_tried(p_merchant text, p_method text) TO payments_gateway;
