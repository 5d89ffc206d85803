-- A paid two-order webhook's rows, in as few plain statements as they take
-- (schema.sql): the event, the token's look-up, the checkout locked and
-- moved with its payment id, the payment's row, both orders moved, their
-- two status events, a ledger transaction of three entries per order, a
-- wallet credit per seller, and the audit row with its chain head.  19 rows
-- written, against hook.sql's 5.
\set k random(1, 2000000000)
\set c random(1, 200000)
BEGIN;
INSERT INTO rw_events (psp, event_id, kind, type, outcome, merchant_id, checkout_id)
VALUES ('stripe', 'evt_' || :client_id::text || '_' || :k::text, 'SUCCEEDED', 'checkout.session.completed',
        'applied', 'm1', 'co' || :c::text) ON CONFLICT DO NOTHING;
SELECT checkout_id FROM rw_tokens WHERE psp = 'stripe' AND psp_token = 'cs_co' || :c::text;
SELECT status FROM rw_checkouts WHERE merchant_id = 'm1' AND checkout_id = 'co' || :c::text FOR UPDATE;
UPDATE rw_checkouts SET status = 'SUCCESS', psp_payment_ref = 'pi_' || :client_id::text || '_' || :k::text,
       updated_at = now() WHERE merchant_id = 'm1' AND checkout_id = 'co' || :c::text;
INSERT INTO rw_payments (psp, payment_ref, merchant_id, checkout_id)
VALUES ('stripe', 'pi_' || :client_id::text || '_' || :k::text, 'm1', 'co' || :c::text) ON CONFLICT DO NOTHING;
UPDATE rw_orders SET status = 'SUCCESS', commission = 0, updated_at = now()
 WHERE merchant_id = 'm1' AND checkout_id = 'co' || :c::text;
INSERT INTO rw_order_events (merchant_id, checkout_id, payment_order_id, from_status, to_status, source)
VALUES ('m1', 'co' || :c::text, 'co' || :c::text || '1', 'EXECUTING', 'SUCCESS', 'webhook-stripe-evt_' || :k::text),
       ('m1', 'co' || :c::text, 'co' || :c::text || '2', 'EXECUTING', 'SUCCESS', 'webhook-stripe-evt_' || :k::text);
WITH t AS (
    INSERT INTO rw_ledger_tx (merchant_id, checkout_id, payment_order_id, source, kind)
    VALUES ('m1', 'co' || :c::text, 'co' || :c::text || '1', 'webhook-stripe-evt_' || :k::text, 'payment'),
           ('m1', 'co' || :c::text, 'co' || :c::text || '2', 'webhook-stripe-evt_' || :k::text, 'payment')
    RETURNING txn_id, payment_order_id)
INSERT INTO rw_ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
SELECT 'm1', t.txn_id, e.n, e.account, e.amount, 'USD'
  FROM t, LATERAL (VALUES (1, 'psp_clearing-stripe', 1000), (2, 'seller_payable-seller', -1000),
                          (3, 'platform_commission', 0)) e(n, account, amount);
INSERT INTO rw_wallet_credits (merchant_id, seller_account, currency, amount)
VALUES ('m1', 'seller_1', 'USD', 1000), ('m1', 'seller_2', 'USD', 500);
WITH h AS (
    UPDATE rw_audit_heads SET seq = seq + 1, prev_hash = hash,
           hash = sha256(hash || convert_to('co' || :c::text || :k::text, 'UTF8'))
     WHERE merchant_id = 'm1' AND chain = 1 + :c % 64
    RETURNING chain, seq, prev_hash, hash)
INSERT INTO rw_audit (merchant_id, chain, seq, at, checkout_id, action, detail, prev_hash, hash)
SELECT 'm1', h.chain, h.seq, now(), 'co' || :c::text, 'webhook-applied',
       '{"psp":"stripe","event_id":"evt","kind":"SUCCEEDED","type":"checkout.session.completed"}',
       h.prev_hash, h.hash FROM h;
COMMIT;
