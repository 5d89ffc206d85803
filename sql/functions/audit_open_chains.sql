-- Opens a merchant's chains 1..64, once, under chain 0's lock: their
-- audit_heads rows and the chain-0 row that names them.  Called by
-- audit_log_link for the first row of a chain that has no audit_heads row,
-- under that chain's lock: chain 0's is taken after it.  A transaction
-- holding chain 0's lock that then appends to a chain not yet opened, at
-- the moment another transaction opens the chains from that chain, would
-- wait in a cycle with it, and PostgreSQL refuses one of the two
-- (deadlock_detected, undone whole).  Only while a merchant's chains are
-- being opened, once: a merchant's first registration opens them, and the
-- rows of chain 0 (pay-outs, reconciliation fees) come later.
CREATE OR REPLACE FUNCTION audit_open_chains(p_merchant text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- chain 0's lock: the key audit_log_link takes for a row of chain 0
    PERFORM pg_advisory_xact_lock(1437, hashtext(p_merchant || ' 0'));
    PERFORM 1 FROM audit_heads h WHERE h.merchant_id = p_merchant AND h.chain = 1;
    IF FOUND THEN
        RETURN;   -- another transaction opened them while we waited
    END IF;
    INSERT INTO audit_heads (merchant_id, chain, seq, hash)
    SELECT p_merchant, g::smallint, 0, '\x'::bytea FROM generate_series(1, 64) g;
    PERFORM audit_append(p_merchant, NULL, 'audit:chains_opened',
                         jsonb_build_object('chains', 64));
END
$function$;
REVOKE ALL ON FUNCTION audit_open_chains(p_merchant text) FROM PUBLIC;
