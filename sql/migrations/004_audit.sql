-- The audit log: append-only, hash-chained per merchant so that tampering
-- shows, with no single global chain head (webhooks of different merchants
-- never wait on one lock).  Each row's hash covers the previous row's hash
-- and the row's own fields.

CREATE TABLE IF NOT EXISTS audit_heads (
    merchant_id  text    PRIMARY KEY,
    seq          bigint  NOT NULL,
    hash         bytea   NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    merchant_id  text        NOT NULL,
    seq          bigint      NOT NULL,
    at           timestamptz NOT NULL,
    checkout_id  text,
    action       text        NOT NULL CONSTRAINT audit_log_action CHECK (length(action) BETWEEN 1 AND 100),
    detail       jsonb       NOT NULL,
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL,
    PRIMARY KEY (merchant_id, seq)
);

-- The bytes a row's hash covers; one definition for writing and verifying.
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text,
    p_seq bigint, p_at timestamptz, p_checkout text, p_action text,
    p_detail jsonb)
RETURNS bytea
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT sha256(p_prev || convert_to(
        p_merchant || '|' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'));
$$;

-- Appends one row to the merchant's chain (called inside the transaction
-- that made the change, so the row commits or rolls back with it).
CREATE OR REPLACE FUNCTION audit_append(p_merchant text, p_checkout text,
    p_action text, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_seq   bigint;
    v_prev  bytea;
    v_at    timestamptz := clock_timestamp();
BEGIN
    -- The merchant's head row is the chain's only lock.
    INSERT INTO audit_heads AS h (merchant_id, seq, hash)
    VALUES (p_merchant, 0, '\x'::bytea)
    ON CONFLICT (merchant_id) DO NOTHING;

    SELECT h.seq, h.hash INTO v_seq, v_prev
      FROM audit_heads h WHERE h.merchant_id = p_merchant FOR UPDATE;

    v_seq := v_seq + 1;

    INSERT INTO audit_log (merchant_id, seq, at, checkout_id, action, detail,
                           prev_hash, hash)
    VALUES (p_merchant, v_seq, v_at, p_checkout, p_action, p_detail, v_prev,
            audit_row_hash(v_prev, p_merchant, v_seq, v_at, p_checkout,
                           p_action, p_detail));

    UPDATE audit_heads h
       SET seq = v_seq,
           hash = audit_row_hash(v_prev, p_merchant, v_seq, v_at, p_checkout,
                                 p_action, p_detail)
     WHERE h.merchant_id = p_merchant;
END
$$;

-- True when the merchant's chain is whole: every row links to the one
-- before it, every hash matches its row, and the head names the last row.
CREATE OR REPLACE FUNCTION pay_audit_verify(p_merchant text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r       audit_log%ROWTYPE;
    v_prev  bytea := '\x'::bytea;
    v_seq   bigint := 0;
    h       audit_heads%ROWTYPE;
BEGIN
    FOR r IN SELECT * FROM audit_log a WHERE a.merchant_id = p_merchant
              ORDER BY a.seq
    LOOP
        IF r.seq <> v_seq + 1 OR r.prev_hash <> v_prev
           OR r.hash <> audit_row_hash(r.prev_hash, r.merchant_id, r.seq, r.at,
                                       r.checkout_id, r.action, r.detail) THEN
            RETURN false;
        END IF;
        v_prev := r.hash;
        v_seq := r.seq;
    END LOOP;

    SELECT * INTO h FROM audit_heads ah WHERE ah.merchant_id = p_merchant;
    IF NOT FOUND THEN
        RETURN v_seq = 0;
    END IF;

    RETURN h.seq = v_seq AND h.hash = v_prev;
END
$$;

-- 003's guard read OLD.outcome on every table it guards; only
-- webhook_events has one.  The outcome's one write is checked there alone.
CREATE OR REPLACE FUNCTION evidence_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_events' THEN
        IF OLD.outcome = 'received' AND NEW.outcome <> 'received'
           AND NEW.psp = OLD.psp AND NEW.event_id = OLD.event_id
           AND NEW.kind = OLD.kind AND NEW.type = OLD.type
           AND NEW.received_at = OLD.received_at THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'PY002';
END
$$;

-- Evidence: the log is append-only (audit_heads moves only forward, through
-- audit_append).
DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();

CREATE OR REPLACE FUNCTION audit_heads_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.merchant_id <> OLD.merchant_id
       OR NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'audit_heads only moves forward (% refused)', TG_OP
            USING ERRCODE = 'PY002';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS audit_heads_forward ON audit_heads;
CREATE TRIGGER audit_heads_forward BEFORE UPDATE OR DELETE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION audit_heads_forward();

-- ---------------------------------------------------------------------------
-- pay_webhook_apply writes an audit row for every outcome whose merchant is
-- known: a wrapper keeps 003's function as it is.
ALTER FUNCTION pay_webhook_apply(text, text, text, text, text, text, bigint, text)
    RENAME TO pay_webhook_apply_core;
REVOKE ALL ON FUNCTION pay_webhook_apply_core(text, text, text, text, text, text, bigint, text)
    FROM PUBLIC, payments_gateway;

CREATE OR REPLACE FUNCTION pay_webhook_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v  record;
BEGIN
    SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind,
        p_type, p_token, p_reference, p_amount, p_currency) x;

    -- a duplicate delivery changed nothing: nothing to audit
    IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                               'kind', p_kind, 'type', p_type));
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

REVOKE ALL ON audit_log, audit_heads FROM PUBLIC;
REVOKE ALL ON FUNCTION
    audit_row_hash(bytea, text, bigint, timestamptz, text, text, jsonb),
    audit_append(text, text, text, jsonb),
    audit_heads_forward(),
    pay_audit_verify(text),
    pay_webhook_apply(text, text, text, text, text, text, bigint, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_webhook_apply(text, text, text, text, text, text, bigint, text),
    pay_audit_verify(text)
    TO payments_gateway;
