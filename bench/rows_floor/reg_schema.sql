-- The rows a registration writes, in plain tables: the gateway's tables a
-- registration touches, with their columns, indexes, primary and unique
-- keys and fillfactor, and nothing else (no CHECK constraints, foreign
-- keys, triggers or PL/pgSQL).  For reg_rows.sql; see README.md.  Its own
-- rr_ tables beside hook_rows.sql's rw_ ones (which have no list indexes:
-- a webhook inserts no checkout), so that neither floor moves the other.
CREATE TABLE rr_merchants (merchant_id text PRIMARY KEY, disabled boolean NOT NULL DEFAULT false);
CREATE TABLE rr_api_keys (key_id text PRIMARY KEY, merchant_id text NOT NULL,
    key_hash text NOT NULL, mode text NOT NULL, revoked_at timestamptz);
CREATE INDEX rr_api_keys_merchant ON rr_api_keys (merchant_id);
CREATE TABLE rr_keys (merchant_id text, idem_key text, fingerprint text, state text,
    lease bigint, lease_until timestamptz, checkout_id text, response_status int,
    response_body text, created_at timestamptz DEFAULT now(), expires_at timestamptz,
    PRIMARY KEY (merchant_id, idem_key)) WITH (fillfactor = 80);
CREATE INDEX rr_keys_expiry ON rr_keys (expires_at);
CREATE TABLE rr_checkouts (merchant_id text, checkout_id text, psp text, nonce text,
    currency text, amount_total bigint, success_url text, cancel_url text, buyer_email text,
    status text, psp_request text, psp_token text, psp_url text, expires_at timestamptz,
    created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
    metadata jsonb DEFAULT '{}', capture_method text DEFAULT 'automatic',
    authorized_at timestamptz, hold_closed_at timestamptz,
    PRIMARY KEY (merchant_id, checkout_id)) WITH (fillfactor = 80);
CREATE INDEX rr_checkouts_executing ON rr_checkouts (created_at) WHERE status = 'EXECUTING';
CREATE INDEX rr_checkouts_holds ON rr_checkouts (authorized_at)
    WHERE authorized_at IS NOT NULL AND hold_closed_at IS NULL;
CREATE INDEX rr_checkouts_list ON rr_checkouts (merchant_id, created_at, checkout_id);
CREATE TABLE rr_orders (merchant_id text, payment_order_id text, checkout_id text,
    line_no int, seller_account text, amount bigint, currency text, status text,
    created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
    PRIMARY KEY (merchant_id, payment_order_id),
    UNIQUE (merchant_id, checkout_id, payment_order_id)) WITH (fillfactor = 80);
CREATE INDEX rr_orders_list ON rr_orders (merchant_id, created_at, payment_order_id);
CREATE TABLE rr_order_events (merchant_id text, event_id bigserial, checkout_id text,
    payment_order_id text, from_status text, to_status text, source text,
    at timestamptz DEFAULT now(), PRIMARY KEY (merchant_id, checkout_id, event_id));
CREATE TABLE rr_audit (merchant_id text, chain smallint, seq bigint, at timestamptz,
    checkout_id text, action text, detail jsonb, prev_hash bytea, hash bytea,
    PRIMARY KEY (merchant_id, chain, seq));
CREATE TABLE rr_audit_heads (merchant_id text, chain smallint, seq bigint, hash bytea,
    prev_hash bytea, PRIMARY KEY (merchant_id, chain));
CREATE TABLE rr_tokens (psp text, psp_token text, merchant_id text, checkout_id text,
    created_at timestamptz DEFAULT now(), PRIMARY KEY (psp, psp_token));

INSERT INTO rr_merchants VALUES ('bench');
INSERT INTO rr_api_keys VALUES ('KEYIDKEYIDKE', 'bench', repeat('a', 64), 'test');
INSERT INTO rr_audit_heads SELECT 'bench', g, 0, '\x'::bytea FROM generate_series(0, 64) g;
VACUUM ANALYZE;
