-- True when every chain of the merchant is whole: every row links to the
-- one before it in its chain and every hash matches its row; every
-- chain's anchor (audit_heads: every eighth row, audit_log_link; for a
-- chain older than the anchors, its last row then) names a row of the log,
-- by its number and hash; every chain with rows has its audit_heads row;
-- and chains 1..64 exist exactly when chain 0 says they were opened.  So a
-- row changed, moved to another chain or removed, and a chain removed
-- whole, all show, but for the rows after a chain's anchor (eight at
-- most): removing those shows only in what the log's append-only triggers
-- and grants refuse.
CREATE OR REPLACE FUNCTION pay_audit_verify(p_merchant text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    r        audit_log%ROWTYPE;
    v_chain  smallint;
    v_prev   bytea;
    v_seq    bigint;
    v_chains smallint[] := '{}';
    v_opened int := 0;      -- chains named by chain 0's audit:chains_opened
BEGIN
    FOR r IN SELECT * FROM audit_log a WHERE a.merchant_id = p_merchant
              ORDER BY a.chain, a.seq
    LOOP
        IF v_chain IS DISTINCT FROM r.chain THEN
            v_chain := r.chain;
            v_chains := v_chains || r.chain;
            v_prev := '\x'::bytea;
            v_seq := 0;
        END IF;
        IF r.seq <> v_seq + 1 OR r.prev_hash <> v_prev
           OR r.hash <> audit_row_hash(r.prev_hash, r.merchant_id, r.chain, r.seq, r.at,
                                       r.checkout_id, r.action, r.detail) THEN
            RETURN false;
        END IF;
        IF r.chain = 0 AND r.action = 'audit:chains_opened' THEN
            IF v_opened <> 0 THEN
                RETURN false;
            END IF;
            v_opened := (r.detail ->> 'chains')::int;
        END IF;
        v_prev := r.hash;
        v_seq := r.seq;
    END LOOP;

    -- every chain with rows has its audit_heads row
    IF (SELECT count(*) FROM audit_heads ah
         WHERE ah.merchant_id = p_merchant AND ah.chain = ANY (v_chains))
       <> cardinality(v_chains) THEN
        RETURN false;
    END IF;
    -- every anchor names a row of its chain (rows 1..seq checked above)
    IF EXISTS (SELECT 1 FROM audit_heads ah
                WHERE ah.merchant_id = p_merchant AND ah.seq > 0
                  AND NOT EXISTS (
                        SELECT 1 FROM audit_log a
                         WHERE a.merchant_id = p_merchant AND a.chain = ah.chain
                           AND a.seq = ah.seq AND a.hash = ah.hash))
    THEN
        RETURN false;
    END IF;
    -- no chain the log does not show opened; every opened chain still has
    -- its audit_heads row; rows only in chains 0..opened
    IF EXISTS (SELECT 1 FROM audit_heads ah
                WHERE ah.merchant_id = p_merchant AND ah.chain > v_opened)
       OR (SELECT count(*) FROM audit_heads ah
            WHERE ah.merchant_id = p_merchant AND ah.chain BETWEEN 1 AND v_opened) <> v_opened
       OR EXISTS (SELECT 1 FROM audit_log a
                   WHERE a.merchant_id = p_merchant AND a.chain > v_opened) THEN
        RETURN false;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION pay_audit_verify(p_merchant text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_audit_verify(p_merchant text) TO payments_gateway;
