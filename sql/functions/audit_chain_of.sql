-- The chain (1..64) a checkout's audit rows go to; 0 for a merchant's rows
-- of no checkout.  SQL, so that the planner inlines it into the statement
-- that calls it (no call, no search_path set per call); STABLE as
-- convert_to is; it names built-in functions only, found in pg_catalog
-- whatever the caller's path.
CREATE OR REPLACE FUNCTION audit_chain_of(p_checkout text)
 RETURNS smallint
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT (CASE WHEN p_checkout IS NULL THEN 0
                 ELSE 1 + pg_catalog.get_byte(pg_catalog.sha256(
                              pg_catalog.convert_to(p_checkout, 'UTF8')), 0) % 64
            END)::smallint
$function$;
REVOKE ALL ON FUNCTION audit_chain_of(p_checkout text) FROM PUBLIC;
