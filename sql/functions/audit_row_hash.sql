-- The hash of a row of chain 1..64: it covers the chain number too, so a
-- row cannot be moved to another chain.
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb)
 RETURNS bytea
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF p_chain = 0 THEN
        RETURN audit_row_hash(p_prev, p_merchant, p_seq, p_at, p_checkout,
                              p_action, p_detail);
    END IF;
    RETURN sha256(p_prev || convert_to(
        p_merchant || '|' || p_chain::text || '/' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|'
        || p_detail::text,
        'UTF8'));
END
$function$;
REVOKE ALL ON FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;

-- The hash of a chain-0 row (the single chain a merchant's log had before
-- it was cut into 64): kept, so that those rows still verify.
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb)
 RETURNS bytea
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN sha256(p_prev || convert_to(
        p_merchant || '|' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'));
END
$function$;
REVOKE ALL ON FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
