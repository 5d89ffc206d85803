-- The hash of a chain-0 row (the single chain a merchant's log had before
-- it was cut into 64): kept, so that those rows still verify.  Made
-- first: the other form's body calls it, and a SQL body is checked when
-- it is made.
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb)
 RETURNS bytea
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT pg_catalog.sha256(p_prev || pg_catalog.convert_to(
        p_merchant || '|' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'))
$function$;
REVOKE ALL ON FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;

-- The hash of any row: chain 0's form or audit_chain_hash, by the row's
-- chain (pay_audit_verify).  Both forms are SQL, so that the planner
-- inlines them (no call, no search_path set per row); they name built-in
-- functions only, found in pg_catalog whatever the caller's path, and each
-- other schema-qualified.
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb)
 RETURNS bytea
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT CASE WHEN p_chain = 0
                THEN public.audit_row_hash(p_prev, p_merchant, p_seq, p_at, p_checkout,
                                           p_action, p_detail)
                ELSE public.audit_chain_hash(p_prev, p_merchant, p_chain, p_seq, p_at,
                                             p_checkout, p_action, p_detail)
           END
$function$;
REVOKE ALL ON FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
