-- The rows a paid two-order webhook writes, in plain tables: the gateway's
-- hot tables with their columns and indexes, and nothing else (no CHECK
-- constraints, triggers or PL/pgSQL).  For hook_rows.sql; see README.md.
CREATE TABLE rw_events (psp text, event_id text, kind text, type text, outcome text,
    merchant_id text, checkout_id text, received_at timestamptz DEFAULT now(),
    PRIMARY KEY (psp, event_id));
-- the event inbox's raw row (psp_events): partitioned by month, its key
-- and its two partial indexes; the partitions around now made here
CREATE TABLE rw_psp_events (psp text, event_id text, received_at timestamptz DEFAULT now(),
    state text, body bytea, headers jsonb, key_id text, kind text, type text, token text,
    reference text, amount bigint, currency text, payment_ref text, object_ref text,
    tokens text[], outcome text, merchant_id text, checkout_id text,
    applied_at timestamptz, unmatched_at timestamptz,
    PRIMARY KEY (psp, event_id, received_at)) PARTITION BY RANGE (received_at);
-- its event id, unique over every month (psp_event_ids)
CREATE TABLE rw_psp_event_ids (psp text, event_id text, received_at timestamptz,
    PRIMARY KEY (psp, event_id));
CREATE INDEX rw_psp_events_pending ON rw_psp_events (received_at) WHERE state = 'pending';
CREATE INDEX rw_psp_events_checkout ON rw_psp_events (checkout_id, merchant_id)
    WHERE checkout_id IS NOT NULL;
DO $$
DECLARE m timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
    FOR i IN -1..1 LOOP
        EXECUTE format('CREATE TABLE rw_psp_events_%s PARTITION OF rw_psp_events '
                       'FOR VALUES FROM (%L) TO (%L)', i + 1,
                       m + make_interval(months => i), m + make_interval(months => i + 1));
    END LOOP;
END $$;
CREATE TABLE rw_tokens (psp text, psp_token text, merchant_id text, checkout_id text,
    PRIMARY KEY (psp, psp_token));
CREATE TABLE rw_checkouts (merchant_id text, checkout_id text, status text,
    amount_total bigint, currency text, psp_payment_ref text, psp_request text,
    created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
    PRIMARY KEY (merchant_id, checkout_id));
CREATE INDEX rw_checkouts_executing ON rw_checkouts (created_at) WHERE status = 'EXECUTING';
CREATE TABLE rw_payments (psp text, payment_ref text, merchant_id text, checkout_id text,
    created_at timestamptz DEFAULT now(), PRIMARY KEY (psp, payment_ref));
CREATE TABLE rw_orders (merchant_id text, payment_order_id text, checkout_id text,
    line_no int, seller_account text, amount bigint, currency text, status text,
    commission bigint, updated_at timestamptz DEFAULT now(),
    PRIMARY KEY (merchant_id, payment_order_id),
    UNIQUE (merchant_id, checkout_id, payment_order_id));
CREATE TABLE rw_order_events (merchant_id text, event_id bigserial, checkout_id text,
    payment_order_id text, from_status text, to_status text, source text,
    at timestamptz DEFAULT now(), PRIMARY KEY (merchant_id, checkout_id, event_id));
CREATE TABLE rw_ledger_tx (merchant_id text, txn_id bigserial, checkout_id text,
    payment_order_id text, source text, kind text, created_at timestamptz DEFAULT now(),
    PRIMARY KEY (merchant_id, txn_id));
CREATE INDEX rw_ledger_tx_checkout ON rw_ledger_tx (merchant_id, checkout_id);
CREATE TABLE rw_ledger_entries (merchant_id text, txn_id bigint, entry_no int,
    account text, amount bigint, currency text, PRIMARY KEY (merchant_id, txn_id, entry_no));
CREATE TABLE rw_wallet_credits (merchant_id text, seller_account text, currency text,
    amount bigint, booked_at timestamptz DEFAULT now());
CREATE INDEX rw_wallet_credits_seller ON rw_wallet_credits (merchant_id, seller_account, currency);
CREATE TABLE rw_audit (merchant_id text, chain smallint, seq bigint, at timestamptz,
    checkout_id text, action text, detail text, prev_hash bytea, hash bytea,
    PRIMARY KEY (merchant_id, chain, seq));
CREATE TABLE rw_audit_heads (merchant_id text, chain smallint, seq bigint, hash bytea,
    prev_hash bytea, PRIMARY KEY (merchant_id, chain));

-- 200,000 registered checkouts of one merchant, two orders each
INSERT INTO rw_checkouts (merchant_id, checkout_id, status, amount_total, currency, psp_request)
SELECT 'm1', 'co' || g, 'EXECUTING', 1500, 'USD', repeat('x', 1200)
  FROM generate_series(1, 200000) g;
INSERT INTO rw_tokens SELECT 'stripe', 'cs_co' || g, 'm1', 'co' || g
  FROM generate_series(1, 200000) g;
INSERT INTO rw_orders (merchant_id, payment_order_id, checkout_id, line_no, seller_account,
                       amount, currency, status)
SELECT 'm1', 'co' || g || l, 'co' || g, l, 'seller_' || l, CASE l WHEN 1 THEN 1000 ELSE 500 END,
       'USD', 'EXECUTING'
  FROM generate_series(1, 200000) g, generate_series(1, 2) l;
INSERT INTO rw_audit_heads SELECT 'm1', g, 0, '\x'::bytea FROM generate_series(0, 64) g;
VACUUM ANALYZE;
