-- ngx_payments schema, part 1: tables, constraints, triggers.
--
-- Applied once by bin/payments-migrate inside one transaction; written so that
-- running it again by hand is harmless too (IF NOT EXISTS, OR REPLACE).
--
-- Scaling rule (ARCHITECTURE.md): every merchant table carries merchant_id and
-- every primary and unique key starts with it, so the tables can later be
-- distributed by merchant (Citus) without changing a key.  The exceptions are
-- the lookups that run before the merchant is known: api_keys (by key id) and
-- psp_tokens (by psp + PSP token).
--
-- SQLSTATEs raised by our triggers and functions (class "PY", unused by
-- PostgreSQL) so that the adapter and the tests can tell them apart:
--   PY001  a status move that is not forward
--   PY002  order_events is append-only; merchants are never deleted or renamed
--   PY003  pay_finish: the caller's lease was taken over (stale holder)
--   PY004  pay_finish/pay_claim: the key or its checkout is not as expected
--   PY005  a merchant already has two active API keys

SET client_min_messages = warning;

-- PostgreSQL 15 already denies CREATE on public to PUBLIC; a database created
-- by an older version and upgraded keeps the old grant, which would let any
-- role plant a function that a careless search_path picks up.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The order state machine.  An enum rather than text: a typo in a status is an
-- error at the cast, and the value costs 4 bytes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE t.typname = 'pay_status' AND n.nspname = 'public') THEN
        CREATE TYPE public.pay_status AS ENUM
            ('NOT_STARTED', 'EXECUTING', 'SUCCESS', 'FAILED');
    END IF;
END
$$;

-- merchant_id is at most 23 characters so that the PSP nonce
-- "<merchant_id>:<checkout_id>" (checkout ids are at most 40) fits in 64.
CREATE TABLE IF NOT EXISTS merchants (
    merchant_id  text        PRIMARY KEY
                             CONSTRAINT merchants_id_format
                             CHECK (merchant_id ~ '^[a-z0-9_]{1,23}$'),
    name         text        NOT NULL DEFAULT ''
                             CONSTRAINT merchants_name_length
                             CHECK (length(name) <= 200),
    mode         text        NOT NULL
                             CONSTRAINT merchants_mode CHECK (mode IN ('test', 'live')),
    disabled     boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Why the hot tables do not reference merchants.  A foreign key check takes a
-- KEY SHARE lock on the parent row.  Every registration of a merchant would
-- lock that merchant's one row, and concurrent lockers of one row turn its
-- lock into a MultiXact: measured here, about five MultiXacts per
-- registration with 8 clients.  That is SLRU traffic on the hot path and,
-- at payment volumes, MultiXact wraparound vacuums (or member-space
-- exhaustion) within a day.  So idempotency_keys and checkouts carry
-- merchant_id without a foreign key; pay_claim checks that the merchant
-- exists with a plain read, and merchants are never deleted (the trigger
-- below; disable them instead), which together give the same guarantee.
-- The cold tables (api_keys, merchant_return_origins) keep their keys.

-- Only the key id (public, the lookup) and SHA-256 of the whole key string are
-- stored: a dump of this table does not let anyone call the API.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id       text        PRIMARY KEY
                             CONSTRAINT api_keys_id_format
                             CHECK (key_id ~ '^[A-Za-z0-9]{12}$'),
    merchant_id  text        NOT NULL REFERENCES merchants,
    key_hash     text        NOT NULL
                             CONSTRAINT api_keys_hash_format
                             CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    mode         text        NOT NULL
                             CONSTRAINT api_keys_mode CHECK (mode IN ('test', 'live')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_merchant ON api_keys (merchant_id);

-- Origins in the canonical form the CLI writes: https, lower-case host without
-- a trailing dot, the port only when it is not 443, nothing after it.  The
-- adapter parses them with pay_origin_parse and compares by component.
CREATE TABLE IF NOT EXISTS merchant_return_origins (
    merchant_id  text        NOT NULL REFERENCES merchants,
    origin       text        NOT NULL
                             CONSTRAINT merchant_return_origins_format
                             CHECK (origin ~ '^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[1-9][0-9]{0,4})?$'
                                    AND length(origin) <= 300),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, origin)
);

-- Idempotency keys.  lease is a fencing counter per key (1 on the first claim,
-- +1 on every take-over): a holder whose lease was taken over cannot finish.
-- fillfactor leaves room on the page so that pay_finish's update of the row
-- (no indexed column changes) stays a HOT update.
-- checkout_id has no foreign key on purpose: the key row is inserted first (it
-- is what concurrent requests serialise on) and the checkout after it, and a
-- 'duplicate' key points at no checkout of its own.
-- merchant_id has no foreign key either, here and in checkouts: see "Why the
-- hot tables do not reference merchants" above.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    merchant_id      text        NOT NULL,
    idem_key         text        NOT NULL
                                 CONSTRAINT idempotency_keys_key_format
                                 CHECK (idem_key ~ '^[ -~]{1,255}$'),
    fingerprint      text        NOT NULL
                                 CONSTRAINT idempotency_keys_fingerprint_format
                                 CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    state            text        NOT NULL
                                 CONSTRAINT idempotency_keys_state
                                 CHECK (state IN ('in_progress', 'done')),
    lease            bigint      NOT NULL CONSTRAINT idempotency_keys_lease CHECK (lease > 0),
    lease_until      timestamptz,
    checkout_id      text,
    response_status  int         CONSTRAINT idempotency_keys_status
                                 CHECK (response_status BETWEEN 100 AND 599),
    response_body    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, idem_key),
    -- An in-progress key always has a lease deadline; a done key always has
    -- the answer it replays.
    CONSTRAINT idempotency_keys_state_fields CHECK (
        (state = 'in_progress' AND lease_until IS NOT NULL
         AND response_status IS NULL AND response_body IS NULL)
        OR (state = 'done' AND lease_until IS NULL
            AND response_status IS NOT NULL AND response_body IS NOT NULL))
) WITH (fillfactor = 80);
-- pay_purge walks the oldest expiries first.  Not partial on state: a partial
-- index on state='done' would make pay_finish's update non-HOT.
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);

-- One checkout = one PSP session.  psp_request is the exact request body sent
-- to the PSP, fixed at claim time, so a resumed registration is byte-identical.
CREATE TABLE IF NOT EXISTS checkouts (
    merchant_id   text        NOT NULL,
    checkout_id   text        NOT NULL
                              CONSTRAINT checkouts_id_format
                              CHECK (checkout_id ~ '^[A-Za-z0-9_-]{1,40}$'),
    psp           text        NOT NULL
                              CONSTRAINT checkouts_psp_format
                              CHECK (psp ~ '^[A-Za-z0-9_.-]{1,32}$'),
    nonce         text        NOT NULL,
    currency      text        NOT NULL
                              CONSTRAINT checkouts_currency CHECK (currency ~ '^[A-Z]{3}$'),
    amount_total  bigint      NOT NULL CONSTRAINT checkouts_amount CHECK (amount_total > 0),
    success_url   text        NOT NULL CONSTRAINT checkouts_success_url CHECK (length(success_url) BETWEEN 9 AND 2048),
    cancel_url    text        NOT NULL CONSTRAINT checkouts_cancel_url CHECK (length(cancel_url) BETWEEN 9 AND 2048),
    buyer_email   text        CONSTRAINT checkouts_email CHECK (length(buyer_email) <= 254),
    status        pay_status  NOT NULL,
    psp_request   text        NOT NULL,
    psp_token     text        CONSTRAINT checkouts_psp_token CHECK (length(psp_token) BETWEEN 1 AND 255),
    psp_url       text        CONSTRAINT checkouts_psp_url CHECK (length(psp_url) BETWEEN 1 AND 2048),
    expires_at    timestamptz NOT NULL,
    failure       text        CONSTRAINT checkouts_failure CHECK (length(failure) <= 1000),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, checkout_id),
    -- The PSP sees this nonce as its idempotency key and reference: it must be
    -- derived, never chosen, so two merchants on one PSP account never collide.
    CONSTRAINT checkouts_nonce CHECK (nonce = merchant_id || ':' || checkout_id
                                      AND length(nonce) <= 64)
) WITH (fillfactor = 80);

-- A payment order belongs to exactly one checkout; the primary key makes one
-- registration per order.  line_no keeps the request's order of the line items
-- (the PSP sees them in that order, and the GET views list them the same way).
-- The (merchant, checkout, order) unique key serves "orders of a checkout" and
-- is what order_events references, so an event can never name an order of
-- another checkout.
CREATE TABLE IF NOT EXISTS payment_orders (
    merchant_id       text        NOT NULL,
    payment_order_id  text        NOT NULL
                                  CONSTRAINT payment_orders_id_format
                                  CHECK (payment_order_id ~ '^[A-Za-z0-9_-]{1,40}$'),
    checkout_id       text        NOT NULL,
    line_no           int         NOT NULL CONSTRAINT payment_orders_line_no CHECK (line_no > 0),
    seller_account    text        NOT NULL
                                  CONSTRAINT payment_orders_seller_format
                                  CHECK (seller_account ~ '^[A-Za-z0-9_.-]{1,64}$'),
    amount            bigint      NOT NULL CONSTRAINT payment_orders_amount CHECK (amount > 0),
    currency          text        NOT NULL
                                  CONSTRAINT payment_orders_currency CHECK (currency ~ '^[A-Z]{3}$'),
    status            pay_status  NOT NULL,
    -- set in the transaction that books a SUCCESS: the order's ledger
    -- transaction and its seller's wallet are written (sql/003_webhooks.sql)
    ledger_updated    boolean     NOT NULL DEFAULT false,
    wallet_updated    boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_orders_booked_iff_success
        CHECK (ledger_updated = (status = 'SUCCESS')
               AND wallet_updated = (status = 'SUCCESS')),
    PRIMARY KEY (merchant_id, payment_order_id),
    CONSTRAINT payment_orders_checkout_order_key UNIQUE (merchant_id, checkout_id, payment_order_id),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
) WITH (fillfactor = 80);

-- Every status move of an order, append-only.  event_id orders the events of
-- one checkout: moves of one checkout's orders are serialised by the orders'
-- row locks, so a later move always draws a larger event_id.
CREATE TABLE IF NOT EXISTS order_events (
    merchant_id       text        NOT NULL,
    event_id          bigserial,
    checkout_id       text        NOT NULL,
    payment_order_id  text        NOT NULL,
    from_status       pay_status  NOT NULL,
    to_status         pay_status  NOT NULL,
    source            text        NOT NULL
                                  CONSTRAINT order_events_source CHECK (length(source) BETWEEN 1 AND 300),
    at                timestamptz NOT NULL DEFAULT now(),
    -- Leading with (merchant, checkout) makes the key also the index the
    -- checkout view reads its events through, in event_id order.
    PRIMARY KEY (merchant_id, checkout_id, event_id),
    FOREIGN KEY (merchant_id, checkout_id, payment_order_id)
        REFERENCES payment_orders (merchant_id, checkout_id, payment_order_id)
);

-- The narrow PSP-facing lookup: a webhook names a PSP token, not a merchant.
CREATE TABLE IF NOT EXISTS psp_tokens (
    psp          text        NOT NULL,
    psp_token    text        NOT NULL,
    merchant_id  text        NOT NULL,
    checkout_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (psp, psp_token),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
);

-- ---------------------------------------------------------------------------
-- Triggers

-- At most two active keys per merchant: one in use and one being rotated in.
-- The merchant row is locked first so that two concurrent inserts for one
-- merchant are counted one after the other (under READ COMMITTED, which the
-- CLI and the functions use, the count then sees the other's committed key).
CREATE OR REPLACE FUNCTION api_keys_limit() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    n int;
BEGIN
    PERFORM 1 FROM merchants m WHERE m.merchant_id = NEW.merchant_id FOR UPDATE;
    SELECT count(*) INTO n FROM api_keys k
     WHERE k.merchant_id = NEW.merchant_id AND k.revoked_at IS NULL
       AND k.key_id <> NEW.key_id;
    IF n >= 2 THEN
        RAISE EXCEPTION 'merchant % already has two active API keys', NEW.merchant_id
            USING ERRCODE = 'PY005', HINT = 'revoke one of them first';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER api_keys_limit
    BEFORE INSERT OR UPDATE OF revoked_at, merchant_id ON api_keys
    FOR EACH ROW WHEN (NEW.revoked_at IS NULL)
    EXECUTE FUNCTION api_keys_limit();

-- Status only moves forward: NOT_STARTED -> EXECUTING -> SUCCESS | FAILED.
-- A same-to-same "move" is allowed and is a no-op: the trigger's WHEN clause
-- skips it.  Refusing it would turn a benign repeated UPDATE into an error and
-- protect nothing, since direction is the rule.  The functions only write an
-- event when a row really moved (guarded UPDATE ... WHERE status = <from>).
CREATE OR REPLACE FUNCTION status_forward_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Only reached through the INSERT trigger's WHEN: a row born terminal.
        RAISE EXCEPTION '%: a new row cannot start in status %', TG_TABLE_NAME, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    IF NOT ((OLD.status = 'NOT_STARTED' AND NEW.status = 'EXECUTING')
            OR (OLD.status = 'EXECUTING' AND NEW.status IN ('SUCCESS', 'FAILED'))) THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER payment_orders_status_insert
    BEFORE INSERT ON payment_orders
    FOR EACH ROW WHEN (NEW.status NOT IN ('NOT_STARTED', 'EXECUTING'))
    EXECUTE FUNCTION status_forward_guard();
CREATE OR REPLACE TRIGGER payment_orders_status_forward
    BEFORE UPDATE OF status ON payment_orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION status_forward_guard();
CREATE OR REPLACE TRIGGER checkouts_status_insert
    BEFORE INSERT ON checkouts
    FOR EACH ROW WHEN (NEW.status NOT IN ('NOT_STARTED', 'EXECUTING'))
    EXECUTE FUNCTION status_forward_guard();
CREATE OR REPLACE TRIGGER checkouts_status_forward
    BEFORE UPDATE OF status ON checkouts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION status_forward_guard();

-- Merchants are disabled, never deleted or renamed: their payments, ledger and
-- audit rows outlive them, and the hot tables rely on it (see above).
CREATE OR REPLACE FUNCTION merchants_keep() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'merchants are never deleted (% refused); disable the merchant instead', TG_OP
        USING ERRCODE = 'PY002';
END
$$;
CREATE OR REPLACE TRIGGER merchants_no_delete
    BEFORE DELETE ON merchants
    FOR EACH ROW EXECUTE FUNCTION merchants_keep();
CREATE OR REPLACE TRIGGER merchants_no_rename
    BEFORE UPDATE OF merchant_id ON merchants
    FOR EACH ROW WHEN (OLD.merchant_id IS DISTINCT FROM NEW.merchant_id)
    EXECUTE FUNCTION merchants_keep();
CREATE OR REPLACE TRIGGER merchants_no_truncate
    BEFORE TRUNCATE ON merchants
    FOR EACH STATEMENT EXECUTE FUNCTION merchants_keep();

-- The event log is evidence: nobody, the owner included, edits or deletes it.
CREATE OR REPLACE FUNCTION order_events_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PY002';
END
$$;
CREATE OR REPLACE TRIGGER order_events_no_change
    BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_append_only();
CREATE OR REPLACE TRIGGER order_events_no_truncate
    BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_append_only();

-- Nobody but the owner touches the tables: the gateway goes through the
-- SECURITY DEFINER functions of 002.
REVOKE ALL ON merchants, api_keys, merchant_return_origins, idempotency_keys,
              checkouts, payment_orders, order_events, psp_tokens
    FROM PUBLIC;
REVOKE ALL ON SEQUENCE order_events_event_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION api_keys_limit(), status_forward_guard(), order_events_append_only(),
                       merchants_keep()
    FROM PUBLIC;
