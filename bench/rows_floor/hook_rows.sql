-- A paid two-order webhook's rows, in as few plain statements as they take
-- (schema.sql): the event's id (rw_psp_event_ids, unique over the months)
-- and the event kept raw in the inbox (a body of the size
-- bench/sign_events.c signs, built without a literal colon, which pgbench
-- would take for a variable; its Stripe-Signature, the key's id), the
-- event, the token's look-up, the checkout locked and
-- moved with its payment id, the payment's row, both orders moved, their
-- two status events, a ledger transaction of three entries per order, a
-- wallet credit per seller, and the audit row with its chain head.  21 rows
-- written, against hook.sql's 5.
-- the event's id: unique over the months (rw_psp_event_ids' key), so k is
-- drawn from 9 * 10^18, not 2 * 10^9: one of a run's 32,000 events met an
-- id already used and aborted the run (make bench, 2026-11-27 10:51)
\set k random(1, 9000000000000000000)
\set c random(1, 200000)
BEGIN;
WITH i AS (
    INSERT INTO rw_psp_event_ids (psp, event_id, received_at)
    VALUES ('stripe', 'evt_' || :client_id::text || '_' || :k::text, now())
    RETURNING event_id)
INSERT INTO rw_psp_events (psp, event_id, state, body, headers, key_id, kind, type, token,
                           reference, amount, currency, payment_ref, outcome, merchant_id,
                           checkout_id, applied_at)
SELECT 'stripe', i.event_id, 'applied',
        convert_to(json_build_object('id', 'evt_' || :client_id::text || '_' || :k::text,
            'object', 'event', 'type', 'checkout.session.completed', 'created', 1764000000,
            'livemode', false, 'data', json_build_object('object', json_build_object(
                'id', 'cs_co' || :c::text, 'object', 'checkout.session',
                'client_reference_id', 'm1' || chr(58) || 'co' || :c::text,
                'amount_total', 1500, 'currency', 'usd',
                'payment_intent', 'pi_' || :client_id::text || '_' || :k::text,
                'payment_status', 'paid', 'status', 'complete')))::text, 'UTF8'),
        jsonb_build_object('Stripe-Signature', 't=1764000000,v1=' || md5(:k::text) || md5(:c::text)),
        'sha256' || chr(58) || '0123456789abcdef', 'CAPTURED', 'checkout.session.completed',
        'cs_co' || :c::text, 'm1' || chr(58) || 'co' || :c::text, 1500, 'USD',
        'pi_' || :client_id::text || '_' || :k::text, 'applied', 'm1', 'co' || :c::text, now()
  FROM i;
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
