-- Several audit chains per merchant (issue 14).  004 kept one hash chain
-- per merchant, its head row locked by every audited change until commit:
-- one merchant's webhooks waited for each other on that row.  Now each
-- merchant has 65 chains:
--
--   chain 0       rows without a checkout (pay-outs, reconciliation fees)
--                 and the "audit:chains_opened" row that names the others;
--                 every row written before this migration (their hashes
--                 are unchanged)
--   chain 1..64   rows of a checkout: 1 + the first byte of
--                 sha256(checkout_id) mod 64, so all of one checkout's rows
--                 stay in one chain, in order
--
-- Each chain is verifiable as before (every row links to the previous one
-- of its chain, every hash matches its row, the chain's head names its last
-- row); a row's hash also covers its chain number (a row moved to another
-- chain no longer verifies); a merchant's chains 1..64 are opened together,
-- under chain 0's lock, by one chain-0 row, so a chain removed whole (its
-- rows and its head) shows as well.  pay_audit_verify checks all of it.
-- Two webhooks of one merchant now wait for each other only when their
-- checkouts fall in the same chain.

ALTER TABLE audit_heads ADD COLUMN IF NOT EXISTS chain smallint NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS chain smallint NOT NULL DEFAULT 0;

ALTER TABLE audit_heads DROP CONSTRAINT IF EXISTS audit_heads_pkey;
ALTER TABLE audit_heads ADD CONSTRAINT audit_heads_pkey PRIMARY KEY (merchant_id, chain);
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_pkey;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (merchant_id, chain, seq);
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_chain;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_chain CHECK (chain BETWEEN 0 AND 64);

-- The chain a row goes to.  Immutable: a checkout's chain never changes.
CREATE OR REPLACE FUNCTION audit_chain_of(p_checkout text)
RETURNS smallint
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN p_checkout IS NULL THEN 0
                ELSE 1 + get_byte(sha256(convert_to(p_checkout, 'UTF8')), 0) % 64
           END::smallint;
$$;

-- The bytes a row's hash covers.  Chain 0 keeps 004's bytes (its rows were
-- written with them); the other chains' name the chain before the seq
-- ("<chain>/<seq>": 004's seq alone never has a '/').
CREATE OR REPLACE FUNCTION audit_row_hash(p_prev bytea, p_merchant text,
    p_chain smallint, p_seq bigint, p_at timestamptz, p_checkout text,
    p_action text, p_detail jsonb)
RETURNS bytea
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN p_chain = 0
                THEN audit_row_hash(p_prev, p_merchant, p_seq, p_at, p_checkout,
                                    p_action, p_detail)
                ELSE sha256(p_prev || convert_to(
                         p_merchant || '|' || p_chain::text || '/' || p_seq::text || '|'
                         || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
                         || coalesce(p_checkout, '') || '|' || p_action || '|'
                         || p_detail::text,
                         'UTF8'))
           END;
$$;

-- Appends one row to a chain whose head the caller may lock (chain 0 is
-- created on first use; the others by audit_open_chains).
CREATE OR REPLACE FUNCTION audit_append_to(p_merchant text, p_chain smallint,
    p_checkout text, p_action text, p_detail jsonb)
RETURNS boolean
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_seq   bigint;
    v_prev  bytea;
    v_hash  bytea;
    v_at    timestamptz := clock_timestamp();
BEGIN
    -- the chain's head row is the chain's only lock
    SELECT h.seq, h.hash INTO v_seq, v_prev
      FROM audit_heads h WHERE h.merchant_id = p_merchant AND h.chain = p_chain
       FOR UPDATE;
    IF NOT FOUND THEN
        IF p_chain <> 0 THEN
            RETURN false;
        END IF;
        INSERT INTO audit_heads AS h (merchant_id, chain, seq, hash)
        VALUES (p_merchant, 0, 0, '\x'::bytea)
        ON CONFLICT (merchant_id, chain) DO NOTHING;
        SELECT h.seq, h.hash INTO v_seq, v_prev
          FROM audit_heads h WHERE h.merchant_id = p_merchant AND h.chain = 0
           FOR UPDATE;
    END IF;

    v_seq := v_seq + 1;
    v_hash := audit_row_hash(v_prev, p_merchant, p_chain, v_seq, v_at, p_checkout,
                             p_action, p_detail);
    INSERT INTO audit_log (merchant_id, chain, seq, at, checkout_id, action, detail,
                           prev_hash, hash)
    VALUES (p_merchant, p_chain, v_seq, v_at, p_checkout, p_action, p_detail, v_prev,
            v_hash);

    -- a HOT update (no indexed column changes)
    UPDATE audit_heads h SET seq = v_seq, hash = v_hash
     WHERE h.merchant_id = p_merchant AND h.chain = p_chain;
    RETURN true;
END
$$;

-- Opens a merchant's chains 1..64, once, under chain 0's lock: their heads
-- and the chain-0 row that names them.  The caller holds no other chain's
-- lock (no chain but 0 exists before), so the order is always chain 0 first.
CREATE OR REPLACE FUNCTION audit_open_chains(p_merchant text)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
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
    PERFORM audit_append_to(p_merchant, 0::smallint, NULL, 'audit:chains_opened',
                            jsonb_build_object('chains', 64));
END
$$;

-- Appends one row to the chain of its checkout (called inside the
-- transaction that made the change, so the row commits or rolls back with
-- it).  The signature and callers are 004's.
CREATE OR REPLACE FUNCTION audit_append(p_merchant text, p_checkout text,
    p_action text, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_chain  smallint := audit_chain_of(p_checkout);
BEGIN
    IF NOT audit_append_to(p_merchant, v_chain, p_checkout, p_action, p_detail) THEN
        PERFORM audit_open_chains(p_merchant);
        PERFORM audit_append_to(p_merchant, v_chain, p_checkout, p_action, p_detail);
    END IF;
END
$$;

-- A head moves only forward, one row at a time, within its chain.
CREATE OR REPLACE FUNCTION audit_heads_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.merchant_id <> OLD.merchant_id
       OR NEW.chain <> OLD.chain
       OR NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'audit_heads only moves forward (% refused)', TG_OP
            USING ERRCODE = 'PY002';
    END IF;
    RETURN NEW;
END
$$;

-- True when every chain of the merchant is whole: every row links to the
-- one before it in its chain, every hash matches its row, each chain's head
-- names its last row, there is no head without rows nor rows without a
-- head, and chains 1..64 exist exactly when chain 0 says they were opened.
CREATE OR REPLACE FUNCTION pay_audit_verify(p_merchant text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
$$;

REVOKE ALL ON FUNCTION
    audit_chain_of(text),
    audit_row_hash(bytea, text, smallint, bigint, timestamptz, text, text, jsonb),
    audit_append_to(text, smallint, text, text, jsonb),
    audit_open_chains(text),
    audit_append(text, text, text, jsonb),
    audit_heads_forward(),
    pay_audit_verify(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_audit_verify(text) TO payments_gateway;

-- ---------------------------------------------------------------------------
-- Less work while a webhook holds its rows (issue 14's profile: in a
-- 1-merchant run the sellers' wallet rows, locked from their update to the
-- commit, were where webhooks waited; everything after the update is time
-- the next webhook of the seller waits).

-- 003's balance check in one query instead of two (it runs at commit for
-- every ledger row: three or four times per paid order).  Same rule: at least two
-- entries, and zero in each currency.
CREATE OR REPLACE FUNCTION ledger_balanced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_entries  int;
    v_bad      text;
BEGIN
    SELECT coalesce(sum(x.n), 0), min(x.currency) FILTER (WHERE x.s <> 0)
      INTO v_entries, v_bad
      FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS s
              FROM ledger_entries e
             WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id
             GROUP BY e.currency) x;

    IF v_entries < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction %/% is not balanced (% entries, % off)',
            NEW.merchant_id, NEW.txn_id, v_entries, coalesce(v_bad, '-')
            USING ERRCODE = 'PY006';
    END IF;
    RETURN NULL;
END
$$;

-- 009's ledger_book with the entries in one statement (entry_no counts the
-- non-zero amounts in their order, as before).
CREATE OR REPLACE FUNCTION ledger_book(p_merchant text, p_checkout text, p_order text,
    p_kind text, p_object text, p_source text, p_currency text,
    p_accounts text[], p_amounts bigint[])
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_txn  bigint;
BEGIN
    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,
                                     kind, object_id)
    VALUES (p_merchant, p_checkout, p_order, p_source, p_kind, p_object)
    RETURNING txn_id INTO v_txn;
    INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
    SELECT p_merchant, v_txn, row_number() OVER (ORDER BY a.i), a.account, a.amount,
           p_currency
      FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS a (account, amount, i)
     WHERE a.amount <> 0;
    RETURN v_txn;
END
$$;

-- 009's pay_webhook_apply_core, the wallets credited after the loop.
CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c          checkouts%ROWTYPE;
    o          record;
    v_m        text;
    v_co       text;
    v_ref_m    text;
    v_ref_co   text;
    v_outcome  text;
    v_target   pay_status;
    v_source   text;
    v_comm     bigint;
    v_sellers  text[] := '{}';
    v_wcur     text[] := '{}';
    v_wamount  bigint[] := '{}';
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), 'received')
    ON CONFLICT (psp, event_id) DO NOTHING;

    IF NOT FOUND THEN
        SELECT we.merchant_id, we.checkout_id INTO v_m, v_co
          FROM webhook_events we
         WHERE we.psp = p_psp AND we.event_id = p_event_id;
        RETURN QUERY SELECT 'duplicate'::text, v_m, v_co;
        RETURN;
    END IF;

    IF coalesce(p_token, '') <> '' THEN
        SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
          FROM psp_tokens t
         WHERE t.psp = p_psp AND t.psp_token = p_token;
    END IF;

    IF coalesce(p_reference, '') <> '' AND position(':' IN p_reference) > 0 THEN
        v_ref_m := split_part(p_reference, ':', 1);
        v_ref_co := substr(p_reference, length(v_ref_m) + 2);

        IF coalesce(p_token, '') = '' THEN
            v_m := v_ref_m;
            v_co := v_ref_co;
        ELSIF v_m IS NOT NULL AND (v_m <> v_ref_m OR v_co <> v_ref_co) THEN
            v_outcome := 'mismatch';
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co AND ck.psp = p_psp
           FOR UPDATE;

        IF NOT FOUND THEN
            v_outcome := 'unknown_checkout';
            v_m := NULL;
            v_co := NULL;
        ELSIF (p_amount <> -1 AND p_amount <> c.amount_total)
              OR (coalesce(p_currency, '') <> '' AND upper(p_currency) <> c.currency)
              OR (p_kind = 'SUCCEEDED'
                  AND (p_amount = -1 OR coalesce(p_currency, '') = '')) THEN
            v_outcome := 'amount_mismatch';
        ELSIF p_kind = 'PENDING' THEN
            v_outcome := 'pending';
        ELSIF p_kind = 'IGNORED' THEN
            v_outcome := 'ignored';
        ELSE
            v_target := CASE p_kind WHEN 'SUCCEEDED' THEN 'SUCCESS'::pay_status
                                    ELSE 'FAILED'::pay_status END;
            IF c.status = v_target THEN
                v_outcome := 'already';
            ELSIF c.status IN ('SUCCESS', 'FAILED') THEN
                v_outcome := 'late_contrary';
            ELSE
                v_source := coalesce(nullif(current_setting('payments.event_source', true), ''),
                                     'webhook') || ':' || p_psp || ':' || p_event_id;

                UPDATE checkouts ck SET status = v_target, updated_at = now()
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    v_comm := CASE WHEN v_target = 'SUCCESS'
                                   THEN commission_of(o.amount, coalesce(c.commission_bps, 0),
                                                       coalesce(c.commission_fixed, 0))
                              END;

                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           commission = v_comm,
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money: clearing debited, the
                        -- seller's net share and the commission credited
                        PERFORM ledger_book(v_m, v_co, o.payment_order_id, 'payment', NULL,
                            v_source, o.currency,
                            ARRAY['psp_clearing:' || p_psp,
                                  'seller_payable:' || o.seller_account,
                                  'platform_commission'],
                            ARRAY[o.amount, -(o.amount - v_comm), -v_comm]);
                        v_sellers := v_sellers || o.seller_account;
                        v_wcur := v_wcur || o.currency::text;
                        v_wamount := v_wamount || (o.amount - v_comm);
                    END IF;
                END LOOP;

                -- the wallets last, in the loop's (seller) order: a seller's
                -- wallet row is the one row every payment of that seller
                -- locks, so it is held for the least time
                FOR i IN 1 .. coalesce(array_length(v_sellers, 1), 0) LOOP
                    PERFORM wallet_add(v_m, v_sellers[i], v_wcur[i], v_wamount[i]);
                END LOOP;

                v_outcome := 'applied';
            END IF;
        END IF;
    END IF;

    UPDATE webhook_events we
       SET outcome = v_outcome, merchant_id = v_m, checkout_id = v_co
     WHERE we.psp = p_psp AND we.event_id = p_event_id;

    RETURN QUERY SELECT v_outcome, v_m, v_co;
END
$$;

REVOKE ALL ON FUNCTION
    ledger_balanced(),
    ledger_book(text, text, text, text, text, text, text, text[], bigint[]),
    pay_webhook_apply_core(text, text, text, text, text, text, bigint, text)
    FROM PUBLIC;
