-- Webhooks move the money: the event log (one row per psp + event id, kept
-- for good: the only replay guard for PSPs that sign no timestamp), the
-- double-entry ledger, the sellers' wallets, and the functions the gateway
-- calls for webhooks and for the shopper's way back.

-- ---------------------------------------------------------------------------
-- Tables.  PSP-facing tables are keyed by PSP; merchant tables lead with
-- merchant_id (ARCHITECTURE.md, "When one machine is not enough").

CREATE TABLE IF NOT EXISTS webhook_events (
    psp          text        NOT NULL,
    event_id     text        NOT NULL
                             CONSTRAINT webhook_events_id CHECK (length(event_id) BETWEEN 1 AND 255),
    kind         text        NOT NULL
                             CONSTRAINT webhook_events_kind
                             CHECK (kind IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED')),
    type         text        NOT NULL CONSTRAINT webhook_events_type CHECK (length(type) <= 100),
    -- 'received' only inside the transaction that records the event; the
    -- outcome is written once, before commit (see the guard below).
    outcome      text        NOT NULL,
    merchant_id  text,
    checkout_id  text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (psp, event_id)
);

CREATE TABLE IF NOT EXISTS ledger_transactions (
    merchant_id       text        NOT NULL,
    txn_id            bigserial,
    checkout_id       text        NOT NULL,
    payment_order_id  text        NOT NULL,
    source            text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, txn_id),
    FOREIGN KEY (merchant_id, checkout_id, payment_order_id)
        REFERENCES payment_orders (merchant_id, checkout_id, payment_order_id)
);

-- Signed amounts: a debit is positive, a credit negative.
CREATE TABLE IF NOT EXISTS ledger_entries (
    merchant_id  text    NOT NULL,
    txn_id       bigint  NOT NULL,
    entry_no     int     NOT NULL,
    account      text    NOT NULL CONSTRAINT ledger_entries_account CHECK (length(account) BETWEEN 1 AND 200),
    amount       bigint  NOT NULL CONSTRAINT ledger_entries_amount CHECK (amount <> 0),
    currency     text    NOT NULL CONSTRAINT ledger_entries_currency CHECK (currency ~ '^[A-Z]{3}$'),
    PRIMARY KEY (merchant_id, txn_id, entry_no),
    FOREIGN KEY (merchant_id, txn_id) REFERENCES ledger_transactions (merchant_id, txn_id)
);

-- A seller's wallet exists from its first credit.
CREATE TABLE IF NOT EXISTS wallets (
    merchant_id     text        NOT NULL,
    seller_account  text        NOT NULL,
    currency        text        NOT NULL CONSTRAINT wallets_currency CHECK (currency ~ '^[A-Z]{3}$'),
    balance         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, seller_account, currency)
);

-- ---------------------------------------------------------------------------
-- The database refuses an unbalanced ledger transaction: at commit, every
-- transaction has at least two entries and sums to zero in each currency.

-- SECURITY DEFINER: a deferred trigger fires at COMMIT, after the gateway's
-- SECURITY DEFINER function has returned, as the gateway's role.
CREATE OR REPLACE FUNCTION ledger_balanced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_entries  int;
    v_bad      text;
BEGIN
    SELECT count(*) INTO v_entries FROM ledger_entries e
     WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id;

    SELECT e.currency INTO v_bad FROM ledger_entries e
     WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id
     GROUP BY e.currency HAVING sum(e.amount) <> 0 LIMIT 1;

    IF v_entries < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction %/% is not balanced (% entries, % off)',
            NEW.merchant_id, NEW.txn_id, v_entries, coalesce(v_bad, '-')
            USING ERRCODE = 'PY006';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced
    AFTER INSERT ON ledger_entries DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_balanced();

DROP TRIGGER IF EXISTS ledger_transactions_balanced ON ledger_transactions;
CREATE CONSTRAINT TRIGGER ledger_transactions_balanced
    AFTER INSERT ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_balanced();

-- The ledger and the event log are evidence: append-only.  An event's
-- outcome is written once, from 'received', in the transaction that
-- recorded it.
CREATE OR REPLACE FUNCTION evidence_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_events'
       AND OLD.outcome = 'received' AND NEW.outcome <> 'received'
       AND NEW.psp = OLD.psp AND NEW.event_id = OLD.event_id
       AND NEW.kind = OLD.kind AND NEW.type = OLD.type
       AND NEW.received_at = OLD.received_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'PY002';
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_events', 'ledger_transactions', 'ledger_entries'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_no_change', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION evidence_append_only()',
                       t || '_no_change', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_no_truncate', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only()',
                       t || '_no_truncate', t);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- One webhook event, one transaction.
--   p_kind: SUCCEEDED | FAILED | PENDING | IGNORED (the core's reading)
--   p_token: the PSP session token ('' if the event carries none)
--   p_reference: our nonce merchant_id:checkout_id ('' if none)
--   p_amount: minor units, -1 if absent; p_currency: '' if absent
-- outcome: applied | duplicate | already | late_contrary | pending | ignored
--          | unknown_checkout | mismatch | amount_mismatch
CREATE OR REPLACE FUNCTION pay_webhook_apply(
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
    v_txn      bigint;
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The event row first: a second delivery of the same event waits here
    -- for the first transaction, then finds the row and changes nothing.
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

    -- The checkout: by the PSP's token when the event has one, else by our
    -- nonce; when both are there they must name the same checkout.
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
        ELSIF (p_amount >= 0 AND p_amount <> c.amount_total)
              OR (coalesce(p_currency, '') <> '' AND upper(p_currency) <> c.currency) THEN
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
                -- terminal: a late contrary event is recorded, never applied
                v_outcome := 'late_contrary';
            ELSE
                v_source := 'webhook:' || p_psp || ':' || p_event_id;

                UPDATE checkouts ck SET status = v_target, updated_at = now()
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                -- Wallet rows are locked in seller order, so two checkouts
                -- paying the same sellers never deadlock.
                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    -- a SUCCESS is booked below, in this transaction
                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money for the seller: clearing
                        -- debited, the seller's payable credited
                        INSERT INTO ledger_transactions (merchant_id, checkout_id,
                                                         payment_order_id, source)
                        VALUES (v_m, v_co, o.payment_order_id, v_source)
                        RETURNING txn_id INTO v_txn;

                        INSERT INTO ledger_entries (merchant_id, txn_id, entry_no,
                                                    account, amount, currency)
                        VALUES (v_m, v_txn, 1, 'psp_clearing:' || p_psp, o.amount, o.currency),
                               (v_m, v_txn, 2, 'seller_payable:' || o.seller_account,
                                -o.amount, o.currency);

                        INSERT INTO wallets AS w (merchant_id, seller_account, currency, balance)
                        VALUES (v_m, o.seller_account, o.currency, o.amount)
                        ON CONFLICT ON CONSTRAINT wallets_pkey
                        DO UPDATE SET balance = w.balance + EXCLUDED.balance,
                                      updated_at = now();
                    END IF;
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

-- The shopper's way back: where to send the browser, from the database only.
CREATE OR REPLACE FUNCTION pay_return_target(p_merchant text, p_checkout_id text)
RETURNS TABLE(status text, success_url text, cancel_url text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.status::text, c.success_url, c.cancel_url
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
$$;

CREATE OR REPLACE FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.status::text
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
$$;

-- ---------------------------------------------------------------------------
-- Privileges: the gateway executes the pay_* functions and touches no table.
REVOKE ALL ON webhook_events, ledger_transactions, ledger_entries, wallets FROM PUBLIC;
REVOKE ALL ON SEQUENCE ledger_transactions_txn_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
    ledger_balanced(),
    evidence_append_only(),
    pay_webhook_apply(text, text, text, text, text, text, bigint, text),
    pay_return_target(text, text),
    pay_checkout_status(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_webhook_apply(text, text, text, text, text, text, bigint, text),
    pay_return_target(text, text),
    pay_checkout_status(text, text)
    TO payments_gateway;
