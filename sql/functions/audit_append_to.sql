CREATE OR REPLACE FUNCTION audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_seq   bigint;
    v_prev  bytea;
    v_hash  bytea;
    v_at    timestamptz := clock_timestamp();
BEGIN
    FOR attempt IN 1..2 LOOP
        -- the chain's head row is the chain's only lock; a HOT update (no
        -- indexed column changes)
        UPDATE audit_heads h
           SET seq = h.seq + 1, prev_hash = h.hash,
               hash = audit_row_hash(h.hash, p_merchant, p_chain, h.seq + 1, v_at,
                                     p_checkout, p_action, p_detail)
         WHERE h.merchant_id = p_merchant AND h.chain = p_chain
        RETURNING h.seq, h.prev_hash, h.hash INTO v_seq, v_prev, v_hash;
        EXIT WHEN FOUND;
        IF p_chain <> 0 OR attempt = 2 THEN
            RETURN false;
        END IF;
        -- chain 0 is created on first use
        INSERT INTO audit_heads AS h (merchant_id, chain, seq, hash)
        VALUES (p_merchant, 0, 0, '\x'::bytea)
        ON CONFLICT (merchant_id, chain) DO NOTHING;
    END LOOP;

    INSERT INTO audit_log (merchant_id, chain, seq, at, checkout_id, action, detail,
                           prev_hash, hash)
    VALUES (p_merchant, p_chain, v_seq, v_at, p_checkout, p_action, p_detail, v_prev,
            v_hash);
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
