-- The small helpers on every registration's and webhook's path, in PL/pgSQL
-- (issue 14).  They were SQL functions with SET search_path, which
-- PostgreSQL never inlines: each call from inside another function parsed
-- and planned its body again (the catalog reads and the parser showed in a
-- profile of the registration's SQL).  PL/pgSQL keeps their plans for the
-- session.  Same expressions, same volatility and strictness, so the same
-- results: the audit hashes of rows written before this migration still
-- verify (tests/e2e/test_sql.c, the invariants run).

CREATE OR REPLACE FUNCTION audit_chain_of(p_checkout text)
RETURNS smallint
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    RETURN CASE WHEN p_checkout IS NULL THEN 0
                ELSE 1 + get_byte(sha256(convert_to(p_checkout, 'UTF8')), 0) % 64
           END::smallint;
END
$$;

-- 004's: the hash of a chain-0 row
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text,
    p_seq bigint, p_at timestamptz, p_checkout text, p_action text,
    p_detail jsonb)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
BEGIN
    RETURN sha256(p_prev || convert_to(
        p_merchant || '|' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'));
END
$$;

-- 015's: the hash of a row of chain 1..64 covers its chain too
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text,
    p_chain smallint, p_seq bigint, p_at timestamptz, p_checkout text,
    p_action text, p_detail jsonb)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_temp AS $$
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
$$;

-- 009's
CREATE OR REPLACE FUNCTION commission_of(p_amount bigint, p_bps int, p_fixed bigint)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
BEGIN
    RETURN LEAST(p_amount::numeric,
                 floor(p_amount::numeric * p_bps / 10000) + p_fixed)::bigint;
END
$$;

-- 016's
CREATE OR REPLACE FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text,
    p_amount bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO wallets_folded (merchant_id, seller_account, currency, balance)
    VALUES (p_merchant, p_seller, p_currency, 0)
    ON CONFLICT ON CONSTRAINT wallets_folded_pkey DO NOTHING;
    IF p_amount <> 0 THEN
        INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)
        VALUES (p_merchant, p_seller, p_currency, p_amount);
    END IF;
END
$$;

-- 014's
CREATE OR REPLACE FUNCTION psp_token_key(p_psp text, p_token text, p_tokens text[])
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_key  text;
BEGIN
    IF coalesce(p_token, '') = '' OR coalesce(cardinality(p_tokens), 0) = 0 THEN
        RETURN p_token;
    END IF;
    SELECT t.psp_token INTO v_key FROM psp_tokens t
     WHERE t.psp = p_psp AND t.psp_token = ANY (p_tokens)
     ORDER BY array_position(p_tokens, t.psp_token)
     LIMIT 1;
    RETURN coalesce(v_key, p_token);
END
$$;
