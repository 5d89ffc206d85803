-- The hot tables' one-column checks become domains (issue 14).
--
-- PostgreSQL 15 evaluates every CHECK constraint of a table on every INSERT
-- and on every UPDATE of a row, whatever columns the UPDATE sets, and first
-- reads each constraint's stored expression tree back from its text form,
-- plans it and compiles it, once per statement.  `perf` on a registration's
-- backend put 11% of its CPU in ExecConstraints, more than half of that in
-- stringToNode: checkouts alone carried 14 KB of constraint trees, read again
-- by pay_claim's INSERT and pay_finish's UPDATE, and by every webhook's
-- UPDATE of the checkout and of each order.
--
-- A domain's constraints are compiled once per backend (the type cache keeps
-- them) and are checked only where a value is assigned to the column: an
-- INSERT, or an UPDATE that sets it.  An UPDATE of `status` no longer checks
-- the checkout's URLs, its e-mail and its amount again.  What a column can
-- hold is unchanged: every value it gets passes through the domain.
--
-- Measured on the bench machine (scratch databases, interleaved, the
-- functions called in a loop inside the server): a registration's
-- pay_claim + pay_finish 531-576 µs before, 437-451 µs after; a paid
-- webhook's pay_webhook_apply 638-652 µs before, 547-563 µs after.
--
-- Each constraint keeps its name and its SQLSTATE (23514, check_violation);
-- the message now names the domain ("value for domain checkouts_currency
-- violates check constraint "checkouts_currency"").  A domain is named
-- <table>_<column>.
--
-- Left as table constraints:
--   - the checks over several columns (checkouts_nonce,
--     idempotency_keys_state_fields, payment_orders_booked_iff_success, ...);
--   - the columns a PL/pgSQL function hands back through RETURN QUERY as
--     they are (checkouts.checkout_id, psp, psp_token, psp_url,
--     psp_payment_ref; payment_orders.currency;
--     idempotency_keys.response_status; notifications.notification_id):
--     RETURN QUERY wants exactly the declared type, and a domain is not
--     text;
--   - wallet_credits (the wallets view is built on its columns).
-- A function written later that returns one of the columns below through
-- RETURN QUERY must cast it to its base type (`c.currency::text`); the e2e
-- test sql::every_plpgsql_function_passes_plpgsql_check finds the ones that
-- do not.
--
-- The columns change type while their domains have no constraint yet, which
-- PostgreSQL does without rewriting the table or its indexes; each
-- constraint is then added to its domain (one scan of the table to validate
-- it) and dropped from the table.

-- idempotency_keys
CREATE DOMAIN idempotency_keys_fingerprint AS text;
CREATE DOMAIN idempotency_keys_idem_key AS text;
CREATE DOMAIN idempotency_keys_lease AS bigint;
CREATE DOMAIN idempotency_keys_state AS text;
ALTER TABLE idempotency_keys
    ALTER COLUMN fingerprint TYPE idempotency_keys_fingerprint,
    ALTER COLUMN idem_key TYPE idempotency_keys_idem_key,
    ALTER COLUMN lease TYPE idempotency_keys_lease,
    ALTER COLUMN state TYPE idempotency_keys_state;
ALTER DOMAIN idempotency_keys_fingerprint ADD CONSTRAINT idempotency_keys_fingerprint_format
    CHECK (((length(VALUE) = 64) AND (VALUE ~ '^[0-9a-f]*$'::text)));
ALTER DOMAIN idempotency_keys_idem_key ADD CONSTRAINT idempotency_keys_key_format
    CHECK ((((length(VALUE) >= 1) AND (length(VALUE) <= 255)) AND (VALUE ~ '^[ -~]*$'::text)));
ALTER DOMAIN idempotency_keys_lease ADD CONSTRAINT idempotency_keys_lease
    CHECK ((VALUE > 0));
ALTER DOMAIN idempotency_keys_state ADD CONSTRAINT idempotency_keys_state
    CHECK ((VALUE = ANY (ARRAY['in_progress'::text, 'done'::text])));
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_fingerprint_format,
    DROP CONSTRAINT idempotency_keys_key_format,
    DROP CONSTRAINT idempotency_keys_lease,
    DROP CONSTRAINT idempotency_keys_state;

-- checkouts
CREATE DOMAIN checkouts_amount_total AS bigint;
CREATE DOMAIN checkouts_buyer_email AS text;
CREATE DOMAIN checkouts_cancel_url AS text;
CREATE DOMAIN checkouts_currency AS text;
CREATE DOMAIN checkouts_failure AS text;
CREATE DOMAIN checkouts_success_url AS text;
ALTER TABLE checkouts
    ALTER COLUMN amount_total TYPE checkouts_amount_total,
    ALTER COLUMN buyer_email TYPE checkouts_buyer_email,
    ALTER COLUMN cancel_url TYPE checkouts_cancel_url,
    ALTER COLUMN currency TYPE checkouts_currency,
    ALTER COLUMN failure TYPE checkouts_failure,
    ALTER COLUMN success_url TYPE checkouts_success_url;
ALTER DOMAIN checkouts_amount_total ADD CONSTRAINT checkouts_amount
    CHECK ((VALUE > 0));
ALTER DOMAIN checkouts_buyer_email ADD CONSTRAINT checkouts_email
    CHECK ((length(VALUE) <= 254));
ALTER DOMAIN checkouts_cancel_url ADD CONSTRAINT checkouts_cancel_url
    CHECK (((length(VALUE) >= 9) AND (length(VALUE) <= 2048)));
ALTER DOMAIN checkouts_currency ADD CONSTRAINT checkouts_currency
    CHECK ((VALUE ~ '^[A-Z]{3}$'::text));
ALTER DOMAIN checkouts_failure ADD CONSTRAINT checkouts_failure
    CHECK ((length(VALUE) <= 1000));
ALTER DOMAIN checkouts_success_url ADD CONSTRAINT checkouts_success_url
    CHECK (((length(VALUE) >= 9) AND (length(VALUE) <= 2048)));
ALTER TABLE checkouts
    DROP CONSTRAINT checkouts_amount,
    DROP CONSTRAINT checkouts_email,
    DROP CONSTRAINT checkouts_cancel_url,
    DROP CONSTRAINT checkouts_currency,
    DROP CONSTRAINT checkouts_failure,
    DROP CONSTRAINT checkouts_success_url;

-- payment_orders
CREATE DOMAIN payment_orders_amount AS bigint;
CREATE DOMAIN payment_orders_line_no AS integer;
CREATE DOMAIN payment_orders_payment_order_id AS text;
CREATE DOMAIN payment_orders_seller_account AS text;
ALTER TABLE payment_orders
    ALTER COLUMN amount TYPE payment_orders_amount,
    ALTER COLUMN line_no TYPE payment_orders_line_no,
    ALTER COLUMN payment_order_id TYPE payment_orders_payment_order_id,
    ALTER COLUMN seller_account TYPE payment_orders_seller_account;
ALTER DOMAIN payment_orders_amount ADD CONSTRAINT payment_orders_amount
    CHECK ((VALUE > 0));
ALTER DOMAIN payment_orders_line_no ADD CONSTRAINT payment_orders_line_no
    CHECK ((VALUE > 0));
ALTER DOMAIN payment_orders_payment_order_id ADD CONSTRAINT payment_orders_id_format
    CHECK ((((length(VALUE) >= 1) AND (length(VALUE) <= 40)) AND (VALUE ~ '^[A-Za-z0-9_-]*$'::text)));
ALTER DOMAIN payment_orders_seller_account ADD CONSTRAINT payment_orders_seller_format
    CHECK ((((length(VALUE) >= 1) AND (length(VALUE) <= 64)) AND (VALUE ~ '^[A-Za-z0-9_.-]*$'::text)));
ALTER TABLE payment_orders
    DROP CONSTRAINT payment_orders_amount,
    DROP CONSTRAINT payment_orders_line_no,
    DROP CONSTRAINT payment_orders_id_format,
    DROP CONSTRAINT payment_orders_seller_format;

-- order_events
CREATE DOMAIN order_events_source AS text;
ALTER TABLE order_events
    ALTER COLUMN source TYPE order_events_source;
ALTER DOMAIN order_events_source ADD CONSTRAINT order_events_source
    CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 300)));
ALTER TABLE order_events
    DROP CONSTRAINT order_events_source;

-- audit_log
CREATE DOMAIN audit_log_action AS text;
CREATE DOMAIN audit_log_chain AS smallint;
ALTER TABLE audit_log
    ALTER COLUMN action TYPE audit_log_action,
    ALTER COLUMN chain TYPE audit_log_chain;
ALTER DOMAIN audit_log_action ADD CONSTRAINT audit_log_action
    CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 100)));
ALTER DOMAIN audit_log_chain ADD CONSTRAINT audit_log_chain
    CHECK (((VALUE >= 0) AND (VALUE <= 64)));
ALTER TABLE audit_log
    DROP CONSTRAINT audit_log_action,
    DROP CONSTRAINT audit_log_chain;

-- webhook_events
CREATE DOMAIN webhook_events_event_id AS text;
CREATE DOMAIN webhook_events_kind AS text;
CREATE DOMAIN webhook_events_source AS text;
CREATE DOMAIN webhook_events_type AS text;
ALTER TABLE webhook_events
    ALTER COLUMN event_id TYPE webhook_events_event_id,
    ALTER COLUMN kind TYPE webhook_events_kind,
    ALTER COLUMN source TYPE webhook_events_source,
    ALTER COLUMN type TYPE webhook_events_type;
ALTER DOMAIN webhook_events_event_id ADD CONSTRAINT webhook_events_id
    CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 255)));
ALTER DOMAIN webhook_events_kind ADD CONSTRAINT webhook_events_kind
    CHECK ((VALUE = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text, 'PENDING'::text, 'IGNORED'::text, 'REFUND_SUCCEEDED'::text, 'REFUND_FAILED'::text, 'DISPUTE_OPENED'::text, 'DISPUTE_WON'::text, 'DISPUTE_LOST'::text, 'PAYOUT_PAID'::text, 'PAYOUT_FAILED'::text])));
ALTER DOMAIN webhook_events_source ADD CONSTRAINT webhook_events_source
    CHECK ((VALUE = ANY (ARRAY['reconciliation'::text, 'webhook'::text, 'sweeper'::text])));
ALTER DOMAIN webhook_events_type ADD CONSTRAINT webhook_events_type
    CHECK ((length(VALUE) <= 100));
ALTER TABLE webhook_events
    DROP CONSTRAINT webhook_events_id,
    DROP CONSTRAINT webhook_events_kind,
    DROP CONSTRAINT webhook_events_source,
    DROP CONSTRAINT webhook_events_type;

-- ledger_transactions
CREATE DOMAIN ledger_transactions_kind AS text;
ALTER TABLE ledger_transactions
    ALTER COLUMN kind TYPE ledger_transactions_kind;
ALTER DOMAIN ledger_transactions_kind ADD CONSTRAINT ledger_transactions_kind
    CHECK ((VALUE = ANY (ARRAY['payment'::text, 'refund'::text, 'dispute'::text, 'payout'::text, 'fee'::text])));
ALTER TABLE ledger_transactions
    DROP CONSTRAINT ledger_transactions_kind;

-- ledger_entries
CREATE DOMAIN ledger_entries_account AS text;
CREATE DOMAIN ledger_entries_amount AS bigint;
CREATE DOMAIN ledger_entries_currency AS text;
ALTER TABLE ledger_entries
    ALTER COLUMN account TYPE ledger_entries_account,
    ALTER COLUMN amount TYPE ledger_entries_amount,
    ALTER COLUMN currency TYPE ledger_entries_currency;
ALTER DOMAIN ledger_entries_account ADD CONSTRAINT ledger_entries_account
    CHECK (((length(VALUE) >= 1) AND (length(VALUE) <= 200)));
ALTER DOMAIN ledger_entries_amount ADD CONSTRAINT ledger_entries_amount
    CHECK ((VALUE <> 0));
ALTER DOMAIN ledger_entries_currency ADD CONSTRAINT ledger_entries_currency
    CHECK ((VALUE ~ '^[A-Z]{3}$'::text));
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_account,
    DROP CONSTRAINT ledger_entries_amount,
    DROP CONSTRAINT ledger_entries_currency;

-- notifications
CREATE DOMAIN notifications_event_type AS text;
CREATE DOMAIN notifications_last_error AS text;
CREATE DOMAIN notifications_sequence AS integer;
CREATE DOMAIN notifications_status AS text;
ALTER TABLE notifications
    ALTER COLUMN event_type TYPE notifications_event_type,
    ALTER COLUMN last_error TYPE notifications_last_error,
    ALTER COLUMN sequence TYPE notifications_sequence,
    ALTER COLUMN status TYPE notifications_status;
ALTER DOMAIN notifications_event_type ADD CONSTRAINT notifications_type
    CHECK ((VALUE = ANY (ARRAY['checkout.succeeded'::text, 'checkout.failed'::text, 'refund.succeeded'::text, 'refund.failed'::text, 'dispute.opened'::text, 'dispute.won'::text, 'dispute.lost'::text, 'payout.paid'::text, 'payout.failed'::text])));
ALTER DOMAIN notifications_last_error ADD CONSTRAINT notifications_error
    CHECK ((length(VALUE) <= 200));
ALTER DOMAIN notifications_sequence ADD CONSTRAINT notifications_sequence
    CHECK ((VALUE > 0));
ALTER DOMAIN notifications_status ADD CONSTRAINT notifications_status
    CHECK ((VALUE = ANY (ARRAY['PENDING'::text, 'DELIVERED'::text, 'FAILED'::text])));
ALTER TABLE notifications
    DROP CONSTRAINT notifications_type,
    DROP CONSTRAINT notifications_error,
    DROP CONSTRAINT notifications_sequence,
    DROP CONSTRAINT notifications_status;
