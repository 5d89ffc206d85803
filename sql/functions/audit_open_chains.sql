-- Opens a merchant's chains 1..64, once, under chain 0's lock: their heads
-- and the chain-0 row that names them.  The caller holds no other chain's
-- lock (no chain but 0 exists before), so the order is always chain 0 first.
CREATE OR REPLACE FUNCTION audit_open_chains(p_merchant text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO audit_heads AS h (merchant_id, chain, seq, hash)
    VALUES (p_merchant, 0, 0, '\x'::bytea)
    ON CONFLICT (merchant_id, chain) DO NOTHING;
    PERFORM 1 FROM audit_heads h WHERE h.merchant_id = p_merchant AND h.chain = 0
       FOR UPDATE;
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
