-- True when every chain of the merchant is whole: every row links to the
-- one before it in its chain, every hash matches its row, each chain's head
-- names its last row, there is no head without rows nor rows without a
-- head, and chains 1..64 exist exactly when chain 0 says they were opened.
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
    v_opened int := 0;      -- chains named by chain 0's audit:chains_opened
    h        audit_heads%ROWTYPE;
BEGIN
    FOR r IN SELECT * FROM audit_log a WHERE a.merchant_id = p_merchant
              ORDER BY a.chain, a.seq
    LOOP
        IF v_chain IS DISTINCT FROM r.chain THEN
            IF v_chain IS NOT NULL THEN
                SELECT * INTO h FROM audit_heads ah
                 WHERE ah.merchant_id = p_merchant AND ah.chain = v_chain;
                IF NOT FOUND OR h.seq <> v_seq OR h.hash <> v_prev THEN
                    RETURN false;
                END IF;
            END IF;
            v_chain := r.chain;
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

    IF v_chain IS NOT NULL THEN
        SELECT * INTO h FROM audit_heads ah
         WHERE ah.merchant_id = p_merchant AND ah.chain = v_chain;
        IF NOT FOUND OR h.seq <> v_seq OR h.hash <> v_prev THEN
            RETURN false;
        END IF;
    END IF;

    -- no chain the log does not show: a head with rows was checked above;
    -- an opened chain may still be empty (seq 0)
    IF EXISTS (SELECT 1 FROM audit_heads ah
                WHERE ah.merchant_id = p_merchant
                  AND (ah.chain > v_opened
                       OR (ah.seq > 0 AND NOT EXISTS (
                               SELECT 1 FROM audit_log a
                                WHERE a.merchant_id = p_merchant AND a.chain = ah.chain))))
    THEN
        RETURN false;
    END IF;
    -- every opened chain still has its head; rows only in chains 0..opened
    IF (SELECT count(*) FROM audit_heads ah
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
