-- A table's CHECK rules in one function per table (issue 14).
--
-- PostgreSQL prepares a table's CHECK constraints anew for every statement
-- that writes to it: it reads each one's stored expression back from text,
-- plans it and compiles it, once per INSERT or UPDATE, before the first row
-- (ExecRelCheck's ri_ConstraintExprs belong to one statement's executor).
-- The gateway's functions write a few rows per statement, so that work,
-- not the checking, was the cost: perf of the backends under the gateway's
-- webhook transaction (bench/webhook.pgbench) put 12-14% of their CPU in
-- ExecConstraints, most of it in stringToNode.  The tables a registration
-- and a paid webhook write hold 45 such rules between them (checkouts alone
-- has 12, and is updated at every status move although none of its checked
-- columns moves).
--
-- Now each of the nine busiest tables has one CHECK constraint,
-- <table>_row_checks, that calls a PL/pgSQL function of the checked columns.
-- The function holds the same rules with the same texts (copied from
-- pg_get_constraintdef), in the order PostgreSQL checked them (by name),
-- and refuses with the same SQLSTATE (23514 check_violation), the same
-- message and the rule's own name as the error's constraint name.  The
-- rules are one CASE, its first broken rule named; as in a CHECK, a rule
-- that is NULL passes (WHEN NOT NULL is not taken).  PL/pgSQL keeps that
-- expression's plan for the backend's life, and the constraint's own
-- expression is one function call: little to read back per statement.
-- The error carries no values (PostgreSQL's own detail carried the whole
-- failing row, e-mails and tokens included).
--
-- Measured on a cluster as make bench runs it (2 cores, fsync off), the
-- constraints swapped in turn on one database, three rounds each: the
-- gateway's webhook transaction (bench/webhook.pgbench, 4 clients) 2,996,
-- 3,103, 3,113/s before against 3,597, 3,594, 3,540/s after (+16%); its
-- registration (bench/registration.pgbench) 4,170, 3,938, 3,775 against
-- 4,758, 4,418, 4,379/s (+14%).  (A first version with an IF per rule:
-- 3,429, 3,657, 3,511 webhooks/s.)
--
-- The functions set no search_path (a SET on a function costs a
-- configuration change per call, per row here): they name nothing but
-- built-in functions and operators, found in pg_catalog first whatever the
-- caller's path, and public.pay_status, spelled out.  Tables with a single
-- rule (order_events, wallets_folded, ...) keep it as it is.
--
-- Adding each constraint checks every row already stored, as any new CHECK
-- does: the migration reads these tables once.

-- checkouts: checkouts_amount, checkouts_cancel_url, checkouts_currency, checkouts_email, checkouts_failure, checkouts_id_format, checkouts_nonce, checkouts_psp_format, checkouts_psp_payment_ref, checkouts_psp_token, checkouts_psp_url, checkouts_success_url
CREATE OR REPLACE FUNCTION checkouts_row_checks(
    merchant_id text,
    checkout_id text,
    psp text,
    nonce text,
    currency text,
    amount_total bigint,
    success_url text,
    cancel_url text,
    buyer_email text,
    psp_token text,
    psp_url text,
    failure text,
    psp_payment_ref text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (amount_total > 0) THEN 'checkouts_amount'
        WHEN NOT ((length(cancel_url) >= 9) AND (length(cancel_url) <= 2048)) THEN 'checkouts_cancel_url'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'checkouts_currency'
        WHEN NOT (length(buyer_email) <= 254) THEN 'checkouts_email'
        WHEN NOT (length(failure) <= 1000) THEN 'checkouts_failure'
        WHEN NOT ((length(checkout_id) >= 1) AND (length(checkout_id) <= 40) AND (checkout_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'checkouts_id_format'
        WHEN NOT ((nonce = ((merchant_id || ':'::text) || checkout_id)) AND (length(nonce) <= 64)) THEN 'checkouts_nonce'
        WHEN NOT ((length(psp) >= 1) AND (length(psp) <= 32) AND (psp ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'checkouts_psp_format'
        WHEN NOT ((length(psp_payment_ref) >= 1) AND (length(psp_payment_ref) <= 128)) THEN 'checkouts_psp_payment_ref'
        WHEN NOT (((length(psp_token) >= 1) AND (length(psp_token) <= 255)) OR ((psp_token ~~ 'v1.%'::text) AND (length(psp_token) <= 600))) THEN 'checkouts_psp_token'
        WHEN NOT (((length(psp_url) >= 1) AND (length(psp_url) <= 2048)) OR ((psp_url ~~ 'v1.%'::text) AND (length(psp_url) <= 3000))) THEN 'checkouts_psp_url'
        WHEN NOT ((length(success_url) >= 9) AND (length(success_url) <= 2048)) THEN 'checkouts_success_url'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "checkouts" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'checkouts', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE checkouts
    DROP CONSTRAINT checkouts_amount,
    DROP CONSTRAINT checkouts_cancel_url,
    DROP CONSTRAINT checkouts_currency,
    DROP CONSTRAINT checkouts_email,
    DROP CONSTRAINT checkouts_failure,
    DROP CONSTRAINT checkouts_id_format,
    DROP CONSTRAINT checkouts_nonce,
    DROP CONSTRAINT checkouts_psp_format,
    DROP CONSTRAINT checkouts_psp_payment_ref,
    DROP CONSTRAINT checkouts_psp_token,
    DROP CONSTRAINT checkouts_psp_url,
    DROP CONSTRAINT checkouts_success_url,
    ADD CONSTRAINT checkouts_row_checks CHECK (checkouts_row_checks(merchant_id, checkout_id, psp, nonce, currency, amount_total, success_url, cancel_url, buyer_email, psp_token, psp_url, failure, psp_payment_ref));

-- payment_orders: payment_orders_amount, payment_orders_booked_iff_success, payment_orders_commission, payment_orders_currency, payment_orders_id_format, payment_orders_line_no, payment_orders_seller_format
CREATE OR REPLACE FUNCTION payment_orders_row_checks(
    payment_order_id text,
    line_no integer,
    seller_account text,
    amount bigint,
    currency text,
    status public.pay_status,
    ledger_updated boolean,
    wallet_updated boolean,
    commission bigint)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (amount > 0) THEN 'payment_orders_amount'
        WHEN NOT ((ledger_updated = (status = 'SUCCESS'::public.pay_status)) AND (wallet_updated = (status = 'SUCCESS'::public.pay_status))) THEN 'payment_orders_booked_iff_success'
        WHEN NOT ((commission >= 0) AND (commission <= amount)) THEN 'payment_orders_commission'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'payment_orders_currency'
        WHEN NOT ((length(payment_order_id) >= 1) AND (length(payment_order_id) <= 40) AND (payment_order_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'payment_orders_id_format'
        WHEN NOT (line_no > 0) THEN 'payment_orders_line_no'
        WHEN NOT ((length(seller_account) >= 1) AND (length(seller_account) <= 64) AND (seller_account ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'payment_orders_seller_format'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "payment_orders" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'payment_orders', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE payment_orders
    DROP CONSTRAINT payment_orders_amount,
    DROP CONSTRAINT payment_orders_booked_iff_success,
    DROP CONSTRAINT payment_orders_commission,
    DROP CONSTRAINT payment_orders_currency,
    DROP CONSTRAINT payment_orders_id_format,
    DROP CONSTRAINT payment_orders_line_no,
    DROP CONSTRAINT payment_orders_seller_format,
    ADD CONSTRAINT payment_orders_row_checks CHECK (payment_orders_row_checks(payment_order_id, line_no, seller_account, amount, currency, status, ledger_updated, wallet_updated, commission));

-- idempotency_keys: idempotency_keys_fingerprint_format, idempotency_keys_key_format, idempotency_keys_lease, idempotency_keys_state, idempotency_keys_state_fields, idempotency_keys_status
CREATE OR REPLACE FUNCTION idempotency_keys_row_checks(
    idem_key text,
    fingerprint text,
    state text,
    lease bigint,
    lease_until timestamp with time zone,
    response_status integer,
    response_body text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT ((length(fingerprint) = 64) AND (fingerprint ~ '^[0-9a-f]*$'::text)) THEN 'idempotency_keys_fingerprint_format'
        WHEN NOT ((length(idem_key) >= 1) AND (length(idem_key) <= 255) AND (idem_key ~ '^[ -~]*$'::text)) THEN 'idempotency_keys_key_format'
        WHEN NOT (lease > 0) THEN 'idempotency_keys_lease'
        WHEN NOT (state = ANY (ARRAY['in_progress'::text, 'done'::text])) THEN 'idempotency_keys_state'
        WHEN NOT (((state = 'in_progress'::text) AND (lease_until IS NOT NULL) AND (response_status IS NULL) AND (response_body IS NULL)) OR ((state = 'done'::text) AND (lease_until IS NULL) AND (response_status IS NOT NULL) AND (response_body IS NOT NULL))) THEN 'idempotency_keys_state_fields'
        WHEN NOT ((response_status >= 100) AND (response_status <= 599)) THEN 'idempotency_keys_status'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "idempotency_keys" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'idempotency_keys', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_fingerprint_format,
    DROP CONSTRAINT idempotency_keys_key_format,
    DROP CONSTRAINT idempotency_keys_lease,
    DROP CONSTRAINT idempotency_keys_state,
    DROP CONSTRAINT idempotency_keys_state_fields,
    DROP CONSTRAINT idempotency_keys_status,
    ADD CONSTRAINT idempotency_keys_row_checks CHECK (idempotency_keys_row_checks(idem_key, fingerprint, state, lease, lease_until, response_status, response_body));

-- notifications: notifications_error, notifications_id_format, notifications_sequence, notifications_status, notifications_type
CREATE OR REPLACE FUNCTION notifications_row_checks(
    notification_id text,
    event_type text,
    sequence integer,
    status text,
    last_error text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (length(last_error) <= 200) THEN 'notifications_error'
        WHEN NOT ((length(notification_id) = 28) AND (notification_id ~ '^msg_[0-9a-f]*$'::text)) THEN 'notifications_id_format'
        WHEN NOT (sequence > 0) THEN 'notifications_sequence'
        WHEN NOT (status = ANY (ARRAY['PENDING'::text, 'DELIVERED'::text, 'FAILED'::text])) THEN 'notifications_status'
        WHEN NOT (event_type = ANY (ARRAY['checkout.succeeded'::text, 'checkout.failed'::text, 'refund.succeeded'::text, 'refund.failed'::text, 'dispute.opened'::text, 'dispute.won'::text, 'dispute.lost'::text, 'payout.paid'::text, 'payout.failed'::text])) THEN 'notifications_type'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "notifications" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'notifications', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE notifications
    DROP CONSTRAINT notifications_error,
    DROP CONSTRAINT notifications_id_format,
    DROP CONSTRAINT notifications_sequence,
    DROP CONSTRAINT notifications_status,
    DROP CONSTRAINT notifications_type,
    ADD CONSTRAINT notifications_row_checks CHECK (notifications_row_checks(notification_id, event_type, sequence, status, last_error));

-- webhook_events: webhook_events_id, webhook_events_kind, webhook_events_source, webhook_events_type
CREATE OR REPLACE FUNCTION webhook_events_row_checks(
    event_id text,
    kind text,
    type text,
    source text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT ((length(event_id) >= 1) AND (length(event_id) <= 255)) THEN 'webhook_events_id'
        WHEN NOT (kind = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text, 'PENDING'::text, 'IGNORED'::text, 'REFUND_SUCCEEDED'::text, 'REFUND_FAILED'::text, 'DISPUTE_OPENED'::text, 'DISPUTE_WON'::text, 'DISPUTE_LOST'::text, 'PAYOUT_PAID'::text, 'PAYOUT_FAILED'::text])) THEN 'webhook_events_kind'
        WHEN NOT (source = ANY (ARRAY['reconciliation'::text, 'webhook'::text, 'sweeper'::text])) THEN 'webhook_events_source'
        WHEN NOT (length(type) <= 100) THEN 'webhook_events_type'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "webhook_events" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'webhook_events', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE webhook_events
    DROP CONSTRAINT webhook_events_id,
    DROP CONSTRAINT webhook_events_kind,
    DROP CONSTRAINT webhook_events_source,
    DROP CONSTRAINT webhook_events_type,
    ADD CONSTRAINT webhook_events_row_checks CHECK (webhook_events_row_checks(event_id, kind, type, source));

-- ledger_entries: ledger_entries_account, ledger_entries_amount, ledger_entries_currency
CREATE OR REPLACE FUNCTION ledger_entries_row_checks(
    account text,
    amount bigint,
    currency text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT ((length(account) >= 1) AND (length(account) <= 200)) THEN 'ledger_entries_account'
        WHEN NOT (amount <> 0) THEN 'ledger_entries_amount'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'ledger_entries_currency'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "ledger_entries" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'ledger_entries', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_account,
    DROP CONSTRAINT ledger_entries_amount,
    DROP CONSTRAINT ledger_entries_currency,
    ADD CONSTRAINT ledger_entries_row_checks CHECK (ledger_entries_row_checks(account, amount, currency));

-- ledger_transactions: ledger_transactions_kind, ledger_transactions_owner
CREATE OR REPLACE FUNCTION ledger_transactions_row_checks(
    checkout_id text,
    payment_order_id text,
    kind text,
    object_id text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (kind = ANY (ARRAY['payment'::text, 'refund'::text, 'dispute'::text, 'payout'::text, 'fee'::text])) THEN 'ledger_transactions_kind'
        WHEN NOT ((((kind = 'payout'::text) = (payment_order_id IS NULL)) OR (kind = 'fee'::text)) AND ((payment_order_id IS NULL) = (checkout_id IS NULL)) AND ((kind = 'payment'::text) OR (object_id IS NOT NULL))) THEN 'ledger_transactions_owner'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "ledger_transactions" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'ledger_transactions', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE ledger_transactions
    DROP CONSTRAINT ledger_transactions_kind,
    DROP CONSTRAINT ledger_transactions_owner,
    ADD CONSTRAINT ledger_transactions_row_checks CHECK (ledger_transactions_row_checks(checkout_id, payment_order_id, kind, object_id));

-- audit_log: audit_log_action, audit_log_chain
CREATE OR REPLACE FUNCTION audit_log_row_checks(
    action text,
    chain smallint)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT ((length(action) >= 1) AND (length(action) <= 100)) THEN 'audit_log_action'
        WHEN NOT ((chain >= 0) AND (chain <= 64)) THEN 'audit_log_chain'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "audit_log" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'audit_log', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE audit_log
    DROP CONSTRAINT audit_log_action,
    DROP CONSTRAINT audit_log_chain,
    ADD CONSTRAINT audit_log_row_checks CHECK (audit_log_row_checks(action, chain));

-- wallet_credits: wallet_credits_amount, wallet_credits_currency
CREATE OR REPLACE FUNCTION wallet_credits_row_checks(
    currency text,
    amount bigint)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (amount <> 0) THEN 'wallet_credits_amount'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'wallet_credits_currency'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "wallet_credits" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'wallet_credits', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;
ALTER TABLE wallet_credits
    DROP CONSTRAINT wallet_credits_amount,
    DROP CONSTRAINT wallet_credits_currency,
    ADD CONSTRAINT wallet_credits_row_checks CHECK (wallet_credits_row_checks(currency, amount));

-- Only the tables' owner writes them (the gateway through the SECURITY
-- DEFINER functions, tests/e2e/test_sql.c: the gateway's role executes no
-- other function), and a CHECK's function runs as whoever writes the row.
REVOKE ALL ON FUNCTION
    checkouts_row_checks(text, text, text, text, text, bigint, text, text, text, text,
                         text, text, text),
    payment_orders_row_checks(text, integer, text, bigint, text, public.pay_status,
                              boolean, boolean, bigint),
    idempotency_keys_row_checks(text, text, text, bigint, timestamp with time zone,
                                integer, text),
    notifications_row_checks(text, text, integer, text, text),
    webhook_events_row_checks(text, text, text, text),
    ledger_entries_row_checks(text, bigint, text),
    ledger_transactions_row_checks(text, text, text, text),
    audit_log_row_checks(text, smallint),
    wallet_credits_row_checks(text, bigint)
    FROM PUBLIC;
