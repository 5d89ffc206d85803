-- The hash of a row of chain 1..64: the previous row's hash, then the row's
-- fields and its chain number (so a row cannot be moved to another chain).
-- SQL, so that the planner inlines it into audit_log_link's assignment
-- of the row's hash and into audit_row_hash (pay_audit_verify): no call,
-- no search_path set per row.  audit_log_link calls it, not
-- audit_row_hash, for a row of chain 1..64: audit_row_hash's CASE inlines
-- chain 0's form as well, and that is evaluated at every append (22,000
-- instructions an append, bench/RESULTS.md).  STABLE as convert_to and
-- extract of a timestamptz are; it names built-in functions only, found in
-- pg_catalog whatever the caller's path.
CREATE OR REPLACE FUNCTION audit_chain_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb)
 RETURNS bytea
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT pg_catalog.sha256(p_prev || pg_catalog.convert_to(
        p_merchant || '|' || p_chain::text || '/' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'))
$function$;
REVOKE ALL ON FUNCTION audit_chain_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
