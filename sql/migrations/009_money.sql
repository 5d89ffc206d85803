-- The money after "paid": platform commission, refunds, disputes and
-- pay-outs to sellers.  Every movement is one balanced ledger transaction
-- written in the transaction that decides it; the limits (no refund beyond
-- the capture, no pay-out beyond the seller's available balance) are
-- enforced here by triggers that take the same row locks as the functions,
-- so no caller, the gateway included, can get past them.
--
-- Accounts (ledger_entries.account; a debit is positive, a credit negative):
--   psp_clearing:<psp>         what the PSP holds for us
--   seller_payable:<seller>    what we owe the seller (its wallet, negated)
--   platform_commission        the platform's earned commission
--   disputes:<psp>             money the PSP withdrew for an open dispute
--
-- The commission rule (include/payments/commission.h says the same; an e2e
-- test compares the two over many values):
--   an order of amount A books commission C = min(A, floor(A * bps / 10000)
--   + fixed), and its seller A - C;
--   a refund of r, after R already refunded of the order, gives back the
--   commission part floor((R + r) * C / A) - floor(R * C / A), and the
--   seller part the rest: refunds in any pieces give back exactly C and A - C.
--
-- SQLSTATEs (class PY, sql/001_schema.sql lists the others):
--   PY007  a refund would exceed what the order captured
--   PY008  a pay-out would exceed the seller's available balance
--   PY009  a refund, dispute or pay-out status that does not move forward

SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- Commission: per merchant, frozen on each checkout when it is registered.

ALTER TABLE merchants
    ADD COLUMN IF NOT EXISTS commission_bps int NOT NULL DEFAULT 0;
DO $$
BEGIN
    ALTER TABLE merchants ADD CONSTRAINT merchants_commission_bps
        CHECK (commission_bps BETWEEN 0 AND 10000);
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS merchant_commission_fixed (
    merchant_id  text    NOT NULL REFERENCES merchants,
    currency     text    NOT NULL CONSTRAINT merchant_commission_fixed_currency
                                  CHECK (currency ~ '^[A-Z]{3}$'),
    amount       bigint  NOT NULL CONSTRAINT merchant_commission_fixed_amount
                                  CHECK (amount >= 0),
    PRIMARY KEY (merchant_id, currency)
);

ALTER TABLE checkouts
    ADD COLUMN IF NOT EXISTS commission_bps int,
    ADD COLUMN IF NOT EXISTS commission_fixed bigint,
    -- the PSP's id of the captured payment (stripe pi_, adyen pspReference,
    -- generic payment_id), from the event that paid the checkout
    ADD COLUMN IF NOT EXISTS psp_payment_ref text
        CONSTRAINT checkouts_psp_payment_ref CHECK (length(psp_payment_ref) BETWEEN 1 AND 128);

ALTER TABLE payment_orders
    -- set when the SUCCESS is booked; NULL before
    ADD COLUMN IF NOT EXISTS commission bigint
        CONSTRAINT payment_orders_commission CHECK (commission >= 0 AND commission <= amount);

-- Frozen at registration: a later change of the merchant's rate never
-- reaches a checkout already registered.
CREATE OR REPLACE FUNCTION checkouts_freeze_commission() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    SELECT m.commission_bps INTO NEW.commission_bps
      FROM merchants m WHERE m.merchant_id = NEW.merchant_id;
    NEW.commission_bps := coalesce(NEW.commission_bps, 0);
    SELECT f.amount INTO NEW.commission_fixed
      FROM merchant_commission_fixed f
     WHERE f.merchant_id = NEW.merchant_id AND f.currency = NEW.currency;
    NEW.commission_fixed := coalesce(NEW.commission_fixed, 0);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER checkouts_freeze_commission
    BEFORE INSERT ON checkouts
    FOR EACH ROW EXECUTE FUNCTION checkouts_freeze_commission();

CREATE OR REPLACE FUNCTION checkouts_commission_frozen() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'a checkout''s commission is frozen at registration'
        USING ERRCODE = 'PY002';
END
$$;
CREATE OR REPLACE TRIGGER checkouts_commission_frozen
    BEFORE UPDATE OF commission_bps, commission_fixed ON checkouts
    FOR EACH ROW WHEN (OLD.commission_bps IS DISTINCT FROM NEW.commission_bps
                       OR OLD.commission_fixed IS DISTINCT FROM NEW.commission_fixed)
    EXECUTE FUNCTION checkouts_commission_frozen();

-- The rule's two formulas, in numeric (no overflow).
CREATE OR REPLACE FUNCTION commission_of(p_amount bigint, p_bps int, p_fixed bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT LEAST(p_amount::numeric,
                 floor(p_amount::numeric * p_bps / 10000) + p_fixed)::bigint;
$$;

CREATE OR REPLACE FUNCTION commission_refund_part(p_amount bigint,
    p_commission bigint, p_refunded_before bigint, p_refund bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT (floor((p_refunded_before + p_refund)::numeric * p_commission / p_amount)
            - floor(p_refunded_before::numeric * p_commission / p_amount))::bigint;
$$;

-- ---------------------------------------------------------------------------
-- The narrow PSP-facing look-up of a paid checkout by the PSP's payment id:
-- disputes and refunds name the payment, not the session.
CREATE TABLE IF NOT EXISTS psp_payments (
    psp          text        NOT NULL,
    payment_ref  text        NOT NULL,
    merchant_id  text        NOT NULL,
    checkout_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (psp, payment_ref),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
);

-- Ledger transactions of a pay-out belong to no order.
ALTER TABLE ledger_transactions
    ALTER COLUMN checkout_id DROP NOT NULL,
    ALTER COLUMN payment_order_id DROP NOT NULL,
    ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'payment'
        CONSTRAINT ledger_transactions_kind
        CHECK (kind IN ('payment', 'refund', 'dispute', 'payout')),
    ADD COLUMN IF NOT EXISTS object_id text;
DO $$
BEGIN
    ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_owner
        CHECK ((kind = 'payout') = (payment_order_id IS NULL)
               AND (payment_order_id IS NULL) = (checkout_id IS NULL)
               AND (kind = 'payment' OR object_id IS NOT NULL));
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

-- webhook_events learns the new kinds.
ALTER TABLE webhook_events DROP CONSTRAINT IF EXISTS webhook_events_kind;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_kind
    CHECK (kind IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED',
                    'REFUND_SUCCEEDED', 'REFUND_FAILED',
                    'DISPUTE_OPENED', 'DISPUTE_WON', 'DISPUTE_LOST',
                    'PAYOUT_PAID', 'PAYOUT_FAILED'));

-- ---------------------------------------------------------------------------
-- Sellers and their PSP destinations (bin/payments-merchant add-seller).
CREATE TABLE IF NOT EXISTS sellers (
    merchant_id     text        NOT NULL REFERENCES merchants,
    seller_account  text        NOT NULL
                                CONSTRAINT sellers_account_format
                                CHECK (seller_account ~ '^[A-Za-z0-9_.-]{1,64}$'),
    psp             text        NOT NULL
                                CONSTRAINT sellers_psp_format
                                CHECK (psp ~ '^[A-Za-z0-9_.-]{1,32}$'),
    destination     text        NOT NULL
                                CONSTRAINT sellers_destination_format
                                CHECK (destination ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, seller_account, psp)
);

-- ---------------------------------------------------------------------------
-- Refunds: one row per refund request, PENDING until the PSP's webhook.
CREATE TABLE IF NOT EXISTS refunds (
    merchant_id       text        NOT NULL,
    refund_id         text        NOT NULL
                                  CONSTRAINT refunds_id_format CHECK (refund_id ~ '^rf_[0-9a-f]{24}$'),
    checkout_id       text        NOT NULL,
    payment_order_id  text        NOT NULL,
    psp               text        NOT NULL,
    nonce             text        NOT NULL,
    amount            bigint      NOT NULL CONSTRAINT refunds_amount CHECK (amount > 0),
    currency          text        NOT NULL CONSTRAINT refunds_currency CHECK (currency ~ '^[A-Z]{3}$'),
    reason            text        CONSTRAINT refunds_reason CHECK (length(reason) <= 200),
    status            text        NOT NULL
                                  CONSTRAINT refunds_status
                                  CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    psp_refund_id     text        CONSTRAINT refunds_psp_id CHECK (length(psp_refund_id) BETWEEN 1 AND 128),
    -- set when SUCCEEDED: the commission given back (the rule above)
    commission_part   bigint      CONSTRAINT refunds_commission_part CHECK (commission_part >= 0),
    failure           text        CONSTRAINT refunds_failure CHECK (length(failure) <= 1000),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, refund_id),
    CONSTRAINT refunds_nonce CHECK (nonce = merchant_id || ':' || refund_id),
    CONSTRAINT refunds_booked_iff_succeeded
        CHECK ((status = 'SUCCEEDED') = (commission_part IS NOT NULL)),
    FOREIGN KEY (merchant_id, checkout_id, payment_order_id)
        REFERENCES payment_orders (merchant_id, checkout_id, payment_order_id)
);
CREATE INDEX IF NOT EXISTS refunds_order ON refunds (merchant_id, payment_order_id);
CREATE UNIQUE INDEX IF NOT EXISTS refunds_psp_id ON refunds (psp, psp_refund_id);

-- Disputes: one per PSP dispute; split over the checkout's orders.
CREATE TABLE IF NOT EXISTS disputes (
    merchant_id      text        NOT NULL,
    dispute_id       text        NOT NULL
                                 CONSTRAINT disputes_id_format CHECK (dispute_id ~ '^dp_[0-9a-f]{24}$'),
    psp              text        NOT NULL,
    psp_dispute_ref  text        NOT NULL CONSTRAINT disputes_ref CHECK (length(psp_dispute_ref) BETWEEN 1 AND 128),
    checkout_id      text        NOT NULL,
    amount           bigint      NOT NULL CONSTRAINT disputes_amount CHECK (amount > 0),
    currency         text        NOT NULL CONSTRAINT disputes_currency CHECK (currency ~ '^[A-Z]{3}$'),
    status           text        NOT NULL
                                 CONSTRAINT disputes_status CHECK (status IN ('OPEN', 'WON', 'LOST')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, dispute_id),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS disputes_psp_ref ON disputes (psp, psp_dispute_ref);

CREATE TABLE IF NOT EXISTS dispute_parts (
    merchant_id       text    NOT NULL,
    dispute_id        text    NOT NULL,
    checkout_id       text    NOT NULL,
    payment_order_id  text    NOT NULL,
    seller_account    text    NOT NULL,
    amount            bigint  NOT NULL CONSTRAINT dispute_parts_amount CHECK (amount >= 0),
    currency          text    NOT NULL,
    PRIMARY KEY (merchant_id, dispute_id, payment_order_id),
    FOREIGN KEY (merchant_id, dispute_id) REFERENCES disputes (merchant_id, dispute_id),
    FOREIGN KEY (merchant_id, checkout_id, payment_order_id)
        REFERENCES payment_orders (merchant_id, checkout_id, payment_order_id)
);
CREATE INDEX IF NOT EXISTS dispute_parts_seller ON dispute_parts (merchant_id, seller_account, currency);

-- Pay-outs from a seller's wallet to its PSP destination.
CREATE TABLE IF NOT EXISTS payouts (
    merchant_id     text        NOT NULL,
    payout_id       text        NOT NULL
                                CONSTRAINT payouts_id_format CHECK (payout_id ~ '^pyo_[0-9a-f]{24}$'),
    seller_account  text        NOT NULL,
    psp             text        NOT NULL,
    destination     text        NOT NULL,
    nonce           text        NOT NULL,
    amount          bigint      NOT NULL CONSTRAINT payouts_amount CHECK (amount > 0),
    currency        text        NOT NULL CONSTRAINT payouts_currency CHECK (currency ~ '^[A-Z]{3}$'),
    status          text        NOT NULL
                                CONSTRAINT payouts_status CHECK (status IN ('PENDING', 'PAID', 'FAILED')),
    psp_payout_id   text        CONSTRAINT payouts_psp_id CHECK (length(psp_payout_id) BETWEEN 1 AND 128),
    failure         text        CONSTRAINT payouts_failure CHECK (length(failure) <= 1000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, payout_id),
    CONSTRAINT payouts_nonce CHECK (nonce = merchant_id || ':' || payout_id),
    FOREIGN KEY (merchant_id, seller_account, psp) REFERENCES sellers (merchant_id, seller_account, psp)
);
CREATE INDEX IF NOT EXISTS payouts_seller ON payouts (merchant_id, seller_account, currency)
    WHERE status = 'PENDING';
CREATE UNIQUE INDEX IF NOT EXISTS payouts_psp_id ON payouts (psp, psp_payout_id);

-- ---------------------------------------------------------------------------
-- Guards.

-- Statuses move forward only: PENDING -> SUCCEEDED|FAILED (refunds),
-- PENDING -> PAID|FAILED (pay-outs), OPEN -> WON|LOST (disputes); the row's
-- money fields never change.
CREATE OR REPLACE FUNCTION money_status_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_from  text := CASE TG_TABLE_NAME WHEN 'disputes' THEN 'OPEN' ELSE 'PENDING' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'PY002';
    END IF;
    IF NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency
       OR NEW.merchant_id <> OLD.merchant_id THEN
        RAISE EXCEPTION '%: amount, currency and merchant never change', TG_TABLE_NAME
            USING ERRCODE = 'PY002';
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status AND OLD.status <> v_from THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY009';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['refunds', 'disputes', 'payouts'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION money_status_forward()',
                       t || '_forward', t);
    END LOOP;
END
$$;

-- No refund beyond the capture: the order row is locked (every refund of an
-- order takes this lock first), then PENDING and SUCCEEDED refunds are
-- summed.  Fifty concurrent refunds of one order pass this one at a time.
CREATE OR REPLACE FUNCTION refunds_within_capture() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    o      payment_orders%ROWTYPE;
    v_sum  numeric;
BEGIN
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = NEW.merchant_id AND po.payment_order_id = NEW.payment_order_id
       FOR UPDATE;
    IF o.status <> 'SUCCESS' OR NEW.currency <> o.currency THEN
        RAISE EXCEPTION 'refund %: order % is % in %', NEW.refund_id, o.payment_order_id,
            o.status, o.currency USING ERRCODE = 'PY007';
    END IF;
    SELECT coalesce(sum(r.amount), 0) INTO v_sum FROM refunds r
     WHERE r.merchant_id = NEW.merchant_id AND r.payment_order_id = NEW.payment_order_id
       AND r.status IN ('PENDING', 'SUCCEEDED') AND r.refund_id <> NEW.refund_id;
    IF v_sum + NEW.amount > o.amount THEN
        RAISE EXCEPTION 'refund %: % + % exceeds the % captured', NEW.refund_id,
            v_sum, NEW.amount, o.amount USING ERRCODE = 'PY007';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER refunds_within_capture
    BEFORE INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_within_capture();

-- A seller's available balance: wallet - pending pay-outs - open disputes.
CREATE OR REPLACE FUNCTION seller_available(p_merchant text, p_seller text, p_currency text,
    OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    SELECT coalesce((SELECT w.balance FROM wallets w
                      WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
                        AND w.currency = p_currency), 0) INTO wallet;
    SELECT coalesce(sum(p.amount), 0) INTO pending FROM payouts p
     WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller
       AND p.currency = p_currency AND p.status = 'PENDING';
    SELECT coalesce(sum(dp.amount), 0) INTO disputed
      FROM dispute_parts dp
      JOIN disputes d ON d.merchant_id = dp.merchant_id AND d.dispute_id = dp.dispute_id
     WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
       AND dp.currency = p_currency AND d.status = 'OPEN';
    available := wallet - pending - disputed;
END
$$;

-- No pay-out beyond the available balance: the wallet row is locked (every
-- pay-out of a seller in a currency takes it first).
CREATE OR REPLACE FUNCTION payouts_within_balance() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    b  record;
BEGIN
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = NEW.merchant_id AND w.seller_account = NEW.seller_account
       AND w.currency = NEW.currency FOR UPDATE;
    SELECT * INTO b FROM seller_available(NEW.merchant_id, NEW.seller_account, NEW.currency);
    IF NEW.amount > b.available THEN
        RAISE EXCEPTION 'pay-out %: % exceeds the seller''s available %', NEW.payout_id,
            NEW.amount, b.available USING ERRCODE = 'PY008';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER payouts_within_balance
    BEFORE INSERT ON payouts
    FOR EACH ROW EXECUTE FUNCTION payouts_within_balance();

-- ---------------------------------------------------------------------------
-- One balanced ledger transaction from (account, amount) pairs; zero
-- amounts are left out.  Returns the txn id.
CREATE OR REPLACE FUNCTION ledger_book(p_merchant text, p_checkout text, p_order text,
    p_kind text, p_object text, p_source text, p_currency text,
    p_accounts text[], p_amounts bigint[])
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_txn  bigint;
    v_no   int := 0;
BEGIN
    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,
                                     kind, object_id)
    VALUES (p_merchant, p_checkout, p_order, p_source, p_kind, p_object)
    RETURNING txn_id INTO v_txn;
    FOR i IN 1 .. array_length(p_accounts, 1) LOOP
        IF p_amounts[i] <> 0 THEN
            v_no := v_no + 1;
            INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
            VALUES (p_merchant, v_txn, v_no, p_accounts[i], p_amounts[i], p_currency);
        END IF;
    END LOOP;
    RETURN v_txn;
END
$$;

CREATE OR REPLACE FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text,
    p_amount bigint)
RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO wallets AS w (merchant_id, seller_account, currency, balance)
    VALUES (p_merchant, p_seller, p_currency, p_amount)
    ON CONFLICT ON CONSTRAINT wallets_pkey
    DO UPDATE SET balance = w.balance + EXCLUDED.balance, updated_at = now();
$$;

-- ---------------------------------------------------------------------------
-- pay_webhook_apply_core again (008's), booking each order's commission.

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
                        PERFORM wallet_add(v_m, o.seller_account, o.currency, o.amount - v_comm);
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

-- ---------------------------------------------------------------------------
-- Idempotency for the operations (refunds, pay-outs): the same semantics as
-- pay_claim's, on the same table; checkout_id holds the operation's id.
--   new      the key is ours now (lease), the caller creates the operation
--   resumed  the holder died: lease taken over, p_op_id is replaced by the
--            operation's id
--   replay   done: response_status and response_body
--   in_use   retry_after seconds
--   reused   another request under this key
CREATE OR REPLACE FUNCTION op_key_take(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int, p_op_id text,
    OUT outcome text, OUT lease bigint, OUT retry_after int,
    OUT response_status int, OUT response_body text, OUT op_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    k            idempotency_keys%ROWTYPE;
    v_now        timestamptz;
    v_lease_for  interval := p_lease_seconds * interval '1 second';
    v_ttl        interval := p_ttl_seconds * interval '1 second';
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1
       OR p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        RAISE EXCEPTION 'op_key_take: lease and ttl must be at least 1 second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM merchants m WHERE m.merchant_id = p_merchant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'op_key_take: no merchant %', p_merchant
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
               (merchant_id, idem_key, fingerprint, state, lease, lease_until,
                checkout_id, created_at, expires_at)
        VALUES (p_merchant, p_idem_key, p_fingerprint, 'in_progress', 1,
                clock_timestamp() + v_lease_for, p_op_id, now(), now() + v_ttl)
        ON CONFLICT (merchant_id, idem_key) DO NOTHING
        RETURNING ik.lease INTO lease;
        IF lease IS NOT NULL THEN
            outcome := 'new';
            op_id := p_op_id;
            RETURN;
        END IF;

        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        v_now := clock_timestamp();

        IF k.state = 'done' AND k.expires_at <= v_now THEN
            UPDATE idempotency_keys ik
               SET fingerprint = p_fingerprint, state = 'in_progress',
                   lease = ik.lease + 1, lease_until = v_now + v_lease_for,
                   checkout_id = p_op_id, response_status = NULL,
                   response_body = NULL, created_at = now(), expires_at = now() + v_ttl
             WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
            RETURNING ik.lease INTO lease;
            outcome := 'new';
            op_id := p_op_id;
            RETURN;
        END IF;

        IF k.fingerprint <> p_fingerprint THEN
            outcome := 'reused';
            RETURN;
        END IF;
        IF k.state = 'done' THEN
            outcome := 'replay';
            response_status := k.response_status;
            response_body := k.response_body;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            outcome := 'in_use';
            retry_after := GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int;
            RETURN;
        END IF;

        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1, lease_until = v_now + v_lease_for,
               expires_at = GREATEST(ik.expires_at, now() + v_ttl)
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
        RETURNING ik.lease INTO lease;
        outcome := 'resumed';
        op_id := k.checkout_id;
        RETURN;
    END LOOP;

    RAISE EXCEPTION 'op_key_take: key % kept changing under us', p_idem_key
        USING ERRCODE = 'serialization_failure';
END
$$;

-- The key is done with the answer; p_lease must still be the holder's.
CREATE OR REPLACE FUNCTION op_key_done(p_merchant text, p_idem_key text, p_lease bigint,
    p_status int, p_body text)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL, response_status = p_status,
           response_body = p_body
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'op_key_done: the lease of key % was taken over', p_idem_key
            USING ERRCODE = 'PY003';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Refunds.
--
-- pay_refund_claim: outcome new | resumed | replay | in_use | reused, or a
-- refusal that stores nothing: not_found (no such order), not_refundable
-- (not SUCCESS, or no PSP payment id to refund against), currency_mismatch,
-- exceeds_capture (with the refundable amount left in p_left).
-- For new and resumed: the refund's id, the PSP, its payment id, the amount,
-- currency and reason to send (a resumed refund sends what was stored).
CREATE OR REPLACE FUNCTION pay_refund_claim(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int,
    p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text)
RETURNS TABLE(outcome text, lease bigint, retry_after int, response_status int,
              response_body text, refund_id text, psp text, payment_ref text,
              amount bigint, currency text, reason text, refundable bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k      record;
    o      payment_orders%ROWTYPE;
    c      checkouts%ROWTYPE;
    r      refunds%ROWTYPE;
    v_sum  bigint;
    v_err  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_refund_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    IF k.outcome = 'resumed' THEN
        SELECT * INTO r FROM refunds rf
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = k.op_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_refund_claim: in-progress key % has no refund', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = r.checkout_id;
        RETURN QUERY SELECT 'resumed'::text, k.lease, NULL::int, NULL::int, NULL::text,
                            r.refund_id, r.psp, c.psp_payment_ref, r.amount, r.currency,
                            r.reason, NULL::bigint;
        RETURN;
    END IF;

    -- A new refund: every refund of this order passes here one at a time.
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id
       FOR UPDATE;
    IF NOT FOUND THEN
        v_err := 'not_found';
    ELSE
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = o.checkout_id;
        SELECT coalesce(sum(rf.amount), 0) INTO v_sum FROM refunds rf
         WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
           AND rf.status IN ('PENDING', 'SUCCEEDED');
        IF o.status <> 'SUCCESS' OR c.psp_payment_ref IS NULL THEN
            v_err := 'not_refundable';
        ELSIF p_currency <> o.currency THEN
            v_err := 'currency_mismatch';
        ELSIF v_sum + p_amount > o.amount THEN
            v_err := 'exceeds_capture';
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        -- nothing is kept: not even the key, so a corrected retry may use it
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            o.currency, NULL::text,
                            CASE WHEN o.amount IS NULL THEN NULL ELSE o.amount - v_sum END;
        RETURN;
    END IF;

    INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id, psp, nonce,
                         amount, currency, reason, status)
    VALUES (p_merchant, p_refund_id, o.checkout_id, p_order_id, c.psp,
            p_merchant || ':' || p_refund_id, p_amount, p_currency, p_reason, 'PENDING');

    PERFORM audit_append(p_merchant, o.checkout_id, 'refund:requested',
        jsonb_build_object('refund_id', p_refund_id, 'payment_order_id', p_order_id,
                           'amount', p_amount, 'currency', p_currency));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_refund_id, c.psp, c.psp_payment_ref, p_amount, p_currency,
                        p_reason, NULL::bigint;
END
$$;

-- The PSP answered: registered (its refund id) or refused (the refund
-- FAILED, its amount refundable again).  The answer is stored under the key.
CREATE OR REPLACE FUNCTION pay_refund_finish(p_merchant text, p_idem_key text,
    p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text,
    p_failure text, p_response_status int, p_response_body text)
RETURNS TABLE(response_status int, response_body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r  refunds%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_refund_finish: no refund %', p_refund_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        -- a webhook may have come first and set it already
        UPDATE refunds rf SET psp_refund_id = coalesce(rf.psp_refund_id, p_psp_refund_id)
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id;
    ELSIF r.status = 'PENDING' THEN
        UPDATE refunds rf SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id;
        PERFORM audit_append(p_merchant, r.checkout_id, 'refund:refused',
            jsonb_build_object('refund_id', p_refund_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;

-- The lease ends now: the client's retry resumes the same refund (same
-- nonce) at once.
CREATE OR REPLACE FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease;
$$;

-- ---------------------------------------------------------------------------
-- Pay-outs.
--
-- pay_payout_claim: outcome new | resumed | replay | in_use | reused, or a
-- refusal that stores nothing: seller_unknown (no destination at that PSP),
-- insufficient_balance (p_available says how much may go).
CREATE OR REPLACE FUNCTION pay_payout_claim(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int,
    p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text)
RETURNS TABLE(outcome text, lease bigint, retry_after int, response_status int,
              response_body text, payout_id text, psp text, destination text,
              amount bigint, currency text, available bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k      record;
    p      payouts%ROWTYPE;
    s      sellers%ROWTYPE;
    b      record;
    v_err  text;
    v_av   bigint;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_payout_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    IF k.outcome = 'resumed' THEN
        SELECT * INTO p FROM payouts po
         WHERE po.merchant_id = p_merchant AND po.payout_id = k.op_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_payout_claim: in-progress key % has no pay-out', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        RETURN QUERY SELECT 'resumed'::text, k.lease, NULL::int, NULL::int, NULL::text,
                            p.payout_id, p.psp, p.destination, p.amount, p.currency,
                            NULL::bigint;
        RETURN;
    END IF;

    SELECT * INTO s FROM sellers sl
     WHERE sl.merchant_id = p_merchant AND sl.seller_account = p_seller AND sl.psp = p_psp;
    IF NOT FOUND THEN
        v_err := 'seller_unknown';
    ELSE
        -- every pay-out of this seller in this currency passes here one at
        -- a time (the trigger takes the same lock again)
        PERFORM 1 FROM wallets w
         WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
           AND w.currency = p_currency FOR UPDATE;
        SELECT * INTO b FROM seller_available(p_merchant, p_seller, p_currency);
        v_av := b.available;
        IF p_amount > v_av THEN
            v_err := 'insufficient_balance';
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            p_currency, v_av;
        RETURN;
    END IF;

    INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination, nonce,
                         amount, currency, status)
    VALUES (p_merchant, p_payout_id, p_seller, p_psp, s.destination,
            p_merchant || ':' || p_payout_id, p_amount, p_currency, 'PENDING');

    PERFORM audit_append(p_merchant, NULL, 'payout:requested',
        jsonb_build_object('payout_id', p_payout_id, 'seller_account', p_seller,
                           'amount', p_amount, 'currency', p_currency, 'psp', p_psp));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_payout_id, p_psp, s.destination, p_amount, p_currency,
                        NULL::bigint;
END
$$;

CREATE OR REPLACE FUNCTION pay_payout_finish(p_merchant text, p_idem_key text,
    p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text,
    p_failure text, p_response_status int, p_response_body text)
RETURNS TABLE(response_status int, response_body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    p  payouts%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_payout_finish: no pay-out %', p_payout_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        UPDATE payouts po SET psp_payout_id = coalesce(po.psp_payout_id, p_psp_payout_id)
         WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id;
    ELSIF p.status = 'PENDING' THEN
        UPDATE payouts po SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id;
        PERFORM audit_append(p_merchant, NULL, 'payout:refused',
            jsonb_build_object('payout_id', p_payout_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;

-- ---------------------------------------------------------------------------
-- Events after "paid".  Each records its webhook_events row first (a second
-- delivery changes nothing), then moves one refund, dispute or pay-out.
-- Outcomes: applied | duplicate | already | late_contrary | amount_mismatch
--           | unknown_refund | unknown_dispute | unknown_payout | mismatch

-- the operation's id from our nonce "<merchant>:<id>", when it is one
CREATE OR REPLACE FUNCTION nonce_split(p_reference text, OUT merchant_id text, OUT object_id text)
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN position(':' IN coalesce(p_reference, '')) > 0
                THEN split_part(p_reference, ':', 1) END,
           CASE WHEN position(':' IN coalesce(p_reference, '')) > 0
                THEN substr(p_reference, length(split_part(p_reference, ':', 1)) + 2) END;
$$;

CREATE OR REPLACE FUNCTION refund_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n       record;
    r       refunds%ROWTYPE;
    o       payment_orders%ROWTYPE;
    v_sum   bigint;
    v_part  bigint;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = n.merchant_id AND rf.refund_id = n.object_id AND rf.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO r FROM refunds rf WHERE rf.psp = p_psp AND rf.psp_refund_id = p_object_ref;
    END IF;
    IF r.refund_id IS NULL THEN
        outcome := 'unknown_refund';
        RETURN;
    END IF;

    merchant_id := r.merchant_id;
    checkout_id := r.checkout_id;

    -- the order first, as every refund of it does
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = r.merchant_id AND po.payment_order_id = r.payment_order_id
       FOR UPDATE;
    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id FOR UPDATE;

    IF p_amount <> r.amount OR upper(coalesce(p_currency, '')) <> r.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    IF coalesce(p_object_ref, '') <> '' AND r.psp_refund_id IS NOT NULL
       AND r.psp_refund_id <> p_object_ref THEN
        outcome := 'mismatch';
        RETURN;
    END IF;

    IF (p_kind = 'REFUND_SUCCEEDED' AND r.status = 'SUCCEEDED')
       OR (p_kind = 'REFUND_FAILED' AND r.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF r.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'REFUND_FAILED' THEN
        UPDATE refunds rf SET status = 'FAILED', failure = 'refused by the PSP',
                              psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
         WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;
        outcome := 'applied';
        RETURN;
    END IF;

    -- SUCCEEDED: the commission's share back by the rule, the seller's the rest
    SELECT coalesce(sum(rf.amount), 0) INTO v_sum FROM refunds rf
     WHERE rf.merchant_id = r.merchant_id AND rf.payment_order_id = r.payment_order_id
       AND rf.status = 'SUCCEEDED';
    v_part := commission_refund_part(o.amount, coalesce(o.commission, 0), v_sum, r.amount);

    UPDATE refunds rf SET status = 'SUCCEEDED', commission_part = v_part,
                          psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
     WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;

    PERFORM ledger_book(r.merchant_id, r.checkout_id, r.payment_order_id, 'refund', r.refund_id,
        'webhook:' || p_psp || ':' || p_event_id, r.currency,
        ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
              'psp_clearing:' || p_psp],
        ARRAY[r.amount - v_part, v_part, -r.amount]);
    PERFORM wallet_add(r.merchant_id, o.seller_account, r.currency, -(r.amount - v_part));
    outcome := 'applied';
END
$$;

CREATE OR REPLACE FUNCTION dispute_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n         record;
    c         checkouts%ROWTYPE;
    d         disputes%ROWTYPE;
    o         record;
    v_left    bigint;
    v_part    bigint;
    v_i       int := 0;
    v_n       int;
    v_source  text := 'webhook:' || p_psp || ':' || p_event_id;
    v_target  text := CASE p_kind WHEN 'DISPUTE_WON' THEN 'WON'
                                  WHEN 'DISPUTE_LOST' THEN 'LOST' END;
BEGIN
    IF coalesce(p_object_ref, '') = '' THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;

    -- the checkout: by the PSP's payment id, else by our nonce
    IF coalesce(p_payment_ref, '') <> '' THEN
        SELECT ck.* INTO c FROM psp_payments pp
          JOIN checkouts ck ON ck.merchant_id = pp.merchant_id AND ck.checkout_id = pp.checkout_id
         WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
    END IF;
    IF c.checkout_id IS NULL THEN
        SELECT * INTO n FROM nonce_split(p_reference);
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id AND ck.psp = p_psp;
    END IF;
    IF c.checkout_id IS NULL OR c.status <> 'SUCCESS' THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;
    merchant_id := c.merchant_id;
    checkout_id := c.checkout_id;

    IF p_amount <= 0 OR p_amount > c.amount_total OR upper(coalesce(p_currency, '')) <> c.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    -- one dispute per PSP reference; the checkout's row lock serialises its events
    PERFORM 1 FROM checkouts ck WHERE ck.merchant_id = c.merchant_id
                                  AND ck.checkout_id = c.checkout_id FOR UPDATE;
    SELECT * INTO d FROM disputes dd WHERE dd.psp = p_psp AND dd.psp_dispute_ref = p_object_ref
       FOR UPDATE;

    IF d.dispute_id IS NULL THEN
        -- opened (or closed before we saw it open: opened first, then closed)
        INSERT INTO disputes (merchant_id, dispute_id, psp, psp_dispute_ref, checkout_id,
                              amount, currency, status)
        VALUES (c.merchant_id, 'dp_' || encode(gen_random_bytes_compat(12), 'hex'), p_psp,
                p_object_ref, c.checkout_id, p_amount, c.currency, 'OPEN')
        RETURNING * INTO d;

        -- split over the orders in proportion to their amounts (floor), the
        -- last order in line order taking what is left
        SELECT count(*) INTO v_n FROM payment_orders po
         WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id;
        v_left := p_amount;
        FOR o IN SELECT po.payment_order_id, po.seller_account, po.amount
                   FROM payment_orders po
                  WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id
                  ORDER BY po.line_no
        LOOP
            v_i := v_i + 1;
            v_part := CASE WHEN v_i = v_n THEN v_left
                           ELSE floor(p_amount::numeric * o.amount / c.amount_total)::bigint END;
            v_left := v_left - v_part;
            INSERT INTO dispute_parts (merchant_id, dispute_id, checkout_id, payment_order_id,
                                       seller_account, amount, currency)
            VALUES (c.merchant_id, d.dispute_id, c.checkout_id, o.payment_order_id,
                    o.seller_account, v_part, c.currency);
            IF v_part > 0 THEN
                -- the PSP withdrew it: clearing to the disputes account
                PERFORM ledger_book(c.merchant_id, c.checkout_id, o.payment_order_id, 'dispute',
                    d.dispute_id, v_source, c.currency,
                    ARRAY['disputes:' || p_psp, 'psp_clearing:' || p_psp],
                    ARRAY[v_part, -v_part]);
            END IF;
        END LOOP;
        outcome := 'applied';
        IF v_target IS NULL THEN
            RETURN;
        END IF;
    ELSIF v_target IS NULL THEN
        outcome := 'already';       -- opened again (adyen: notice, then chargeback)
        RETURN;
    ELSIF d.status = v_target THEN
        outcome := 'already';
        RETURN;
    ELSIF d.status <> 'OPEN' THEN
        outcome := 'late_contrary';
        RETURN;
    ELSIF d.amount <> p_amount THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    UPDATE disputes dd SET status = v_target
     WHERE dd.merchant_id = d.merchant_id AND dd.dispute_id = d.dispute_id;

    FOR o IN SELECT dp.payment_order_id, dp.seller_account, dp.amount
               FROM dispute_parts dp
              WHERE dp.merchant_id = d.merchant_id AND dp.dispute_id = d.dispute_id
                AND dp.amount > 0
              ORDER BY dp.seller_account, dp.payment_order_id
    LOOP
        IF v_target = 'WON' THEN
            -- the money comes back to the PSP balance
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['psp_clearing:' || p_psp, 'disputes:' || p_psp],
                ARRAY[o.amount, -o.amount]);
        ELSE
            -- lost: the seller bears it
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['seller_payable:' || o.seller_account, 'disputes:' || p_psp],
                ARRAY[o.amount, -o.amount]);
            PERFORM wallet_add(d.merchant_id, o.seller_account, d.currency, -o.amount);
        END IF;
    END LOOP;
    outcome := 'applied';
END
$$;

CREATE OR REPLACE FUNCTION payout_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n  record;
    p  payouts%ROWTYPE;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = n.merchant_id AND po.payout_id = n.object_id AND po.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO p FROM payouts po WHERE po.psp = p_psp AND po.psp_payout_id = p_object_ref;
    END IF;
    IF p.payout_id IS NULL THEN
        outcome := 'unknown_payout';
        RETURN;
    END IF;
    merchant_id := p.merchant_id;

    -- the seller's wallet first, as every pay-out of it does
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = p.merchant_id AND w.seller_account = p.seller_account
       AND w.currency = p.currency FOR UPDATE;
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id FOR UPDATE;

    IF p_amount <> p.amount OR upper(coalesce(p_currency, '')) <> p.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    IF (p_kind = 'PAYOUT_PAID' AND p.status = 'PAID')
       OR (p_kind = 'PAYOUT_FAILED' AND p.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF p.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'PAYOUT_FAILED' THEN
        -- nothing was booked: the money was only held back, it is available again
        UPDATE payouts po SET status = 'FAILED', failure = 'failed at the PSP',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
    ELSE
        UPDATE payouts po SET status = 'PAID',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[p.amount, -p.amount]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency, -p.amount);
    END IF;
    outcome := 'applied';
END
$$;

-- gen_random_bytes is pgcrypto's; the server has gen_random_uuid built in.
CREATE OR REPLACE FUNCTION gen_random_bytes_compat(p_n int)
RETURNS bytea
LANGUAGE sql VOLATILE SET search_path = public, pg_temp AS $$
    SELECT substr(decode(replace(gen_random_uuid()::text, '-', '')
                         || replace(gen_random_uuid()::text, '-', ''), 'hex'), 1, p_n);
$$;

-- A paid checkout keeps the PSP's id of its payment (the first one told).
CREATE OR REPLACE FUNCTION payment_ref_note(p_psp text, p_merchant text, p_checkout text,
    p_payment_ref text)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF coalesce(p_payment_ref, '') = '' OR length(p_payment_ref) > 128 THEN
        RETURN;
    END IF;
    UPDATE checkouts ck SET psp_payment_ref = p_payment_ref
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       AND ck.psp = p_psp AND ck.status = 'SUCCESS' AND ck.psp_payment_ref IS NULL;
    IF FOUND THEN
        INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
        VALUES (p_psp, p_payment_ref, p_merchant, p_checkout)
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- The sweeper's look-up decided a checkout: 008's function, and the
-- payment's id when the PSP's answer carried it.
CREATE OR REPLACE FUNCTION pay_sweeper_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v  record;
BEGIN
    SELECT * INTO v FROM pay_sweeper_apply(p_psp, p_event_id, p_kind, p_type, p_token,
                                           p_reference, p_amount, p_currency) x;
    IF p_kind = 'SUCCEEDED' AND v.outcome IN ('applied', 'already') THEN
        PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
    END IF;
    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

-- ---------------------------------------------------------------------------
-- The one entry for every verified event (webhooks and the sweeper's
-- look-ups alike).  The pay-in kinds go through pay_webhook_apply as before,
-- and a paid checkout keeps the PSP's payment id; the others are recorded
-- and applied here, audited like pay-in events.
CREATE OR REPLACE FUNCTION pay_event_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_object_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v  record;
BEGIN
    IF p_kind IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        IF p_kind IN ('PENDING', 'IGNORED') AND coalesce(p_object_ref, '') <> '' THEN
            -- authentic news of a refund, dispute or pay-out that moves nothing
            INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100),
                    lower(p_kind))
            ON CONFLICT (psp, event_id) DO NOTHING;
            RETURN QUERY SELECT CASE WHEN FOUND THEN lower(p_kind) ELSE 'duplicate' END,
                                NULL::text, NULL::text;
            RETURN;
        END IF;

        SELECT * INTO v FROM pay_webhook_apply(p_psp, p_event_id, p_kind, p_type, p_token,
                                               p_reference, p_amount, p_currency) x;
        IF p_kind = 'SUCCEEDED' AND v.outcome IN ('applied', 'already') THEN
            PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
        END IF;
        RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
        RETURN;
    END IF;

    IF p_kind NOT IN ('REFUND_SUCCEEDED', 'REFUND_FAILED', 'DISPUTE_OPENED', 'DISPUTE_WON',
                      'DISPUTE_LOST', 'PAYOUT_PAID', 'PAYOUT_FAILED') THEN
        RAISE EXCEPTION 'pay_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), 'received')
    ON CONFLICT (psp, event_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT we.merchant_id, we.checkout_id INTO v
          FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
        RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id;
        RETURN;
    END IF;

    IF p_kind LIKE 'REFUND_%' THEN
        SELECT * INTO v FROM refund_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    ELSIF p_kind LIKE 'DISPUTE_%' THEN
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_payment_ref,
                                                 p_object_ref);
    ELSE
        SELECT * INTO v FROM payout_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    END IF;

    UPDATE webhook_events we
       SET outcome = v.outcome, merchant_id = v.merchant_id, checkout_id = v.checkout_id
     WHERE we.psp = p_psp AND we.event_id = p_event_id;

    IF v.merchant_id IS NOT NULL THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id, 'kind', p_kind,
                               'type', p_type, 'object', p_object_ref));
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

-- ---------------------------------------------------------------------------
-- Views for GET (amounts in minor units; the core writes decimal strings).

-- What a refund request needs before its amount can be read: the order's
-- currency and PSP (no row: no such order of this merchant).
CREATE OR REPLACE FUNCTION pay_order_refund_info(p_merchant text, p_order_id text)
RETURNS TABLE(currency text, psp text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.currency, c.psp
      FROM payment_orders o
      JOIN checkouts c ON c.merchant_id = o.merchant_id AND c.checkout_id = o.checkout_id
     WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id;
$$;

CREATE OR REPLACE FUNCTION pay_get_order(p_merchant text, p_order_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'payment_order_id', o.payment_order_id,
                   'checkout_id', o.checkout_id,
                   'status', o.status,
                   'amount_minor', o.amount,
                   'currency', o.currency,
                   'seller_account', o.seller_account,
                   'psp', c.psp,
                   'psp_token', c.psp_token,
                   'created_at', ts_rfc3339(o.created_at),
                   'updated_at', ts_rfc3339(o.updated_at),
                   'commission_minor', o.commission,
                   'refunds', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'refund_id', r.refund_id,
                                  'status', r.status,
                                  'amount_minor', r.amount,
                                  'currency', r.currency,
                                  'reason', r.reason,
                                  'psp_refund_id', r.psp_refund_id,
                                  'created_at', ts_rfc3339(r.created_at),
                                  'updated_at', ts_rfc3339(r.updated_at))
                                  ORDER BY r.created_at, r.refund_id)
                         FROM refunds r
                        WHERE r.merchant_id = o.merchant_id
                          AND r.payment_order_id = o.payment_order_id), '[]'::json),
                   'disputes', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'dispute_id', d.dispute_id,
                                  'status', d.status,
                                  'amount_minor', dp.amount,
                                  'currency', d.currency,
                                  'psp_dispute_id', d.psp_dispute_ref,
                                  'created_at', ts_rfc3339(d.created_at),
                                  'updated_at', ts_rfc3339(d.updated_at))
                                  ORDER BY d.created_at, d.dispute_id)
                         FROM dispute_parts dp
                         JOIN disputes d ON d.merchant_id = dp.merchant_id
                                        AND d.dispute_id = dp.dispute_id
                        WHERE dp.merchant_id = o.merchant_id
                          AND dp.payment_order_id = o.payment_order_id), '[]'::json))::text
          FROM payment_orders o
          JOIN checkouts c ON c.merchant_id = o.merchant_id AND c.checkout_id = o.checkout_id
         WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id);
END
$$;

CREATE OR REPLACE FUNCTION pay_get_payout(p_merchant text, p_payout_id text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT json_build_object(
               'payout_id', p.payout_id,
               'seller_account', p.seller_account,
               'psp', p.psp,
               'status', p.status,
               'amount_minor', p.amount,
               'currency', p.currency,
               'psp_payout_id', p.psp_payout_id,
               'failure', p.failure,
               'created_at', ts_rfc3339(p.created_at),
               'updated_at', ts_rfc3339(p.updated_at))::text
      FROM payouts p
     WHERE p.merchant_id = p_merchant AND p.payout_id = p_payout_id;
$$;

-- A seller's balances, one per currency its wallet, pay-outs or disputes
-- have; NULL for a seller the merchant has neither registered nor paid.
CREATE OR REPLACE FUNCTION pay_get_balance(p_merchant text, p_seller text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v  json;
BEGIN
    SELECT json_agg(json_build_object(
               'currency', cur.currency,
               'wallet_minor', b.wallet,
               'pending_payouts_minor', b.pending,
               'open_disputes_minor', b.disputed,
               'available_minor', b.available) ORDER BY cur.currency)
      INTO v
      FROM (SELECT w.currency FROM wallets w
             WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
            UNION
            SELECT p.currency FROM payouts p
             WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller) cur,
           LATERAL seller_available(p_merchant, p_seller, cur.currency) b;

    IF v IS NULL THEN
        PERFORM 1 FROM sellers s WHERE s.merchant_id = p_merchant AND s.seller_account = p_seller;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;

    RETURN json_build_object('seller_account', p_seller,
                             'balances', coalesce(v, '[]'::json))::text;
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges: the gateway executes the pay_* functions and touches no table.
REVOKE ALL ON merchant_commission_fixed, psp_payments, sellers, refunds, disputes,
              dispute_parts, payouts FROM PUBLIC;
REVOKE ALL ON FUNCTION
    checkouts_freeze_commission(), checkouts_commission_frozen(),
    commission_of(bigint, int, bigint),
    commission_refund_part(bigint, bigint, bigint, bigint),
    money_status_forward(), refunds_within_capture(),
    seller_available(text, text, text), payouts_within_balance(),
    ledger_book(text, text, text, text, text, text, text, text[], bigint[]),
    wallet_add(text, text, text, bigint),
    op_key_take(text, text, text, int, int, text),
    op_key_done(text, text, bigint, int, text),
    pay_refund_claim(text, text, text, int, int, text, text, bigint, text, text),
    pay_refund_finish(text, text, bigint, text, boolean, text, text, int, text),
    pay_op_release(text, text, bigint),
    pay_payout_claim(text, text, text, int, int, text, text, bigint, text, text),
    pay_payout_finish(text, text, bigint, text, boolean, text, text, int, text),
    nonce_split(text),
    refund_event_apply(text, text, text, text, bigint, text, text),
    dispute_event_apply(text, text, text, text, bigint, text, text, text),
    payout_event_apply(text, text, text, text, bigint, text, text),
    gen_random_bytes_compat(int),
    payment_ref_note(text, text, text, text),
    pay_sweeper_apply(text, text, text, text, text, text, bigint, text, text),
    pay_event_apply(text, text, text, text, text, text, bigint, text, text, text),
    pay_get_payout(text, text),
    pay_get_balance(text, text),
    pay_order_refund_info(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_sweeper_apply(text, text, text, text, text, text, bigint, text, text),
    pay_refund_claim(text, text, text, int, int, text, text, bigint, text, text),
    pay_refund_finish(text, text, bigint, text, boolean, text, text, int, text),
    pay_op_release(text, text, bigint),
    pay_payout_claim(text, text, text, int, int, text, text, bigint, text, text),
    pay_payout_finish(text, text, bigint, text, boolean, text, text, int, text),
    pay_event_apply(text, text, text, text, text, text, bigint, text, text, text),
    pay_get_payout(text, text),
    pay_get_balance(text, text),
    pay_order_refund_info(text, text)
    TO payments_gateway;
