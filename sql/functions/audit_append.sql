-- Appends one row to the chain of its checkout (called inside the
-- transaction that made the change, so the row commits or rolls back with
-- it): the chain's head row moves forward and the row takes its hash.
-- Chain 0 (rows of no checkout) is made on its first row; a merchant's
-- chains 1..64 are opened (audit_open_chains) by its first row of a
-- checkout.
--
-- The head is found by its primary key however small audit_heads is
-- (enable_seqscan off for this function's statements): the planner, which
-- counts pages, scans a table of a few pages whole, and that reads every
-- head of every merchant, and their dead versions, at each append (60,000
-- instructions more an append with one merchant: bench/RESULTS.md).  The
-- append is this function's own statements, not a call of another: each
-- nested PL/pgSQL call costs its own set-up.
CREATE OR REPLACE FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_chain  smallint := audit_chain_of(p_checkout);
    v_seq    bigint;
    v_prev   bytea;
    v_hash   bytea;
    v_at     timestamptz := clock_timestamp();
BEGIN
    FOR attempt IN 1..2 LOOP
        -- the chain's head row is the chain's only lock; a HOT update (no
        -- indexed column changes).  Each chain's own form of the hash
        -- (audit_row_hash's CASE would evaluate both).
        IF v_chain = 0 THEN
            UPDATE audit_heads h
               SET seq = h.seq + 1, prev_hash = h.hash,
                   hash = audit_row_hash(h.hash, p_merchant, h.seq + 1, v_at,
                                         p_checkout, p_action, p_detail)
             WHERE h.merchant_id = p_merchant AND h.chain = 0
            RETURNING h.seq, h.prev_hash, h.hash INTO v_seq, v_prev, v_hash;
        ELSE
            UPDATE audit_heads h
               SET seq = h.seq + 1, prev_hash = h.hash,
                   hash = audit_chain_hash(h.hash, p_merchant, v_chain, h.seq + 1, v_at,
                                           p_checkout, p_action, p_detail)
             WHERE h.merchant_id = p_merchant AND h.chain = v_chain
            RETURNING h.seq, h.prev_hash, h.hash INTO v_seq, v_prev, v_hash;
        END IF;
        EXIT WHEN FOUND;
        IF attempt = 2 THEN
            RAISE EXCEPTION 'audit_append: chain % of merchant % has no head', v_chain, p_merchant;
        END IF;
        IF v_chain = 0 THEN
            INSERT INTO audit_heads AS h (merchant_id, chain, seq, hash)
            VALUES (p_merchant, 0, 0, '\x'::bytea)
            ON CONFLICT (merchant_id, chain) DO NOTHING;
        ELSE
            PERFORM audit_open_chains(p_merchant);
        END IF;
    END LOOP;

    INSERT INTO audit_log (merchant_id, chain, seq, at, checkout_id, action, detail,
                           prev_hash, hash)
    VALUES (p_merchant, v_chain, v_seq, v_at, p_checkout, p_action, p_detail, v_prev,
            v_hash);
END
$function$;
REVOKE ALL ON FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;
