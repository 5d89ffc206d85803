-- A two-order registration's rows, in as few plain statements as they take
-- (reg_schema.sql), with the values bench/registration.pgbench sends: the
-- key check (a read, no transaction of its own to write); the claim in one
-- transaction (the idempotency key, the checkout with the PSP request, two
-- orders, their two status events, the audit row with its chain head); the
-- PSP's answer in another (the key done with its response, the checkout's
-- token and URL, the token's look-up row).  9 rows inserted and 3 updated
-- in 3 statements and 2 commits, as the gateway's pay_auth, pay_claim and
-- pay_finish.
\set r random(1, 9000000000000000000)
SELECT k.merchant_id, k.key_hash FROM rr_api_keys k JOIN rr_merchants m USING (merchant_id)
 WHERE k.key_id = 'KEYIDKEYIDKE' AND k.revoked_at IS NULL AND NOT m.disabled;
WITH k AS (
    INSERT INTO rr_keys (merchant_id, idem_key, fingerprint, state, lease, lease_until,
                         checkout_id, expires_at)
    VALUES ('bench', 'bench-' || :client_id::text || '-' || :r::text,
            '3f0a6f1b9c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7', 'in_progress',
            1, now() + interval '30 s', 'co_' || :client_id::text || '_' || :r::text, now() + interval '1 day')
    ON CONFLICT DO NOTHING RETURNING lease
), c AS (
    INSERT INTO rr_checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total,
                              success_url, cancel_url, buyer_email, status, psp_request,
                              expires_at)
    SELECT 'bench', 'co_' || :client_id::text || '_' || :r::text, 'stripe',
           'bench' || chr(58) || 'co_' || :client_id::text || '_' || :r::text, 'USD', 1500,
           'https://shop.example/thanks', 'https://shop.example/cart', 'ann@example.com',
           'EXECUTING',
           'client_reference_id=bench%3Aco_' || :client_id::text || '_' || :r::text
             || '&mode=payment&expires_at=1795341600'
             || '&success_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fstripe%2Fco_x%3Ft%3DeyJhbGciOiJIUzI1NiJ9.eyJjIjoiY29feCIsInAiOiJzIn0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl'
             || '&cancel_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fstripe%2Fco_x%3Ft%3DeyJhbGciOiJIUzI1NiJ9.eyJjIjoiY29feCIsInAiOiJjIn0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl'
             || '&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1000'
             || '&line_items[0][price_data][product_data][name]=po_1&line_items[0][quantity]=1'
             || '&line_items[1][price_data][currency]=usd&line_items[1][price_data][unit_amount]=500'
             || '&line_items[1][price_data][product_data][name]=po_2&line_items[1][quantity]=1',
           to_timestamp(1795341600)
      FROM k
), o AS (
    INSERT INTO rr_orders (merchant_id, payment_order_id, checkout_id, line_no, seller_account,
                           amount, currency, status)
    SELECT 'bench', 'po_' || :client_id::text || '_' || :r::text || '_' || l, 'co_' || :client_id::text || '_' || :r::text,
           l, CASE l WHEN 1 THEN 'seller_42' ELSE 'seller_77' END,
           CASE l WHEN 1 THEN 1000 ELSE 500 END, 'USD', 'EXECUTING'
      FROM k, generate_series(1, 2) l
    RETURNING payment_order_id, line_no
), e AS (
    INSERT INTO rr_order_events (merchant_id, checkout_id, payment_order_id, from_status,
                                 to_status, source)
    SELECT 'bench', 'co_' || :client_id::text || '_' || :r::text, o.payment_order_id, 'NOT_STARTED',
           'EXECUTING', 'registration'
      FROM o ORDER BY o.line_no
), h AS (
    UPDATE rr_audit_heads SET seq = seq + 1, prev_hash = hash,
           hash = sha256(hash || convert_to('co_' || :client_id::text || '_' || :r::text, 'UTF8'))
     WHERE merchant_id = 'bench'
       AND chain = 1 + get_byte(sha256(convert_to('co_' || :client_id::text || '_' || :r::text, 'UTF8')), 0) % 64
       AND EXISTS (SELECT 1 FROM k)
    RETURNING chain, seq, prev_hash, hash
)
INSERT INTO rr_audit (merchant_id, chain, seq, at, checkout_id, action, detail, prev_hash, hash)
SELECT 'bench', h.chain, h.seq, now(), 'co_' || :client_id::text || '_' || :r::text, 'registration' || chr(58) || 'claimed',
       '{"from": "NOT_STARTED", "to": "EXECUTING", "psp": "stripe", "currency": "USD", "amount_total": 1500, "expires_at": 1795341600, "payment_orders": ["po_1", "po_2"]}',
       h.prev_hash, h.hash
  FROM h;
WITH k AS (
    UPDATE rr_keys SET state = 'done', lease_until = NULL, response_status = 201,
           response_body = '{"checkout_id":"co_x","status":"EXECUTING","is_payment_done": false,"psp":"stripe",'
                  || '"psp_token":"cs_test_x","expires_at":"2026-11-22T10' || chr(58) || '00' || chr(58) || '00Z",'
                  || '"pay_url":"https://gw.example/v1/checkouts/co_x/pay?t=eyJhbGciOiJIUzI1NiJ9.eyJjIjoiY29feCJ9.c2lnbmF0dXJl",'
                  || '"payment_orders":[{"payment_order_id":"po_1","seller_account":"seller_42","amount":"10.00","currency":"USD","status":"EXECUTING"},'
                  || '{"payment_order_id":"po_2","seller_account":"seller_77","amount":"5.00","currency":"USD","status":"EXECUTING"}]}'
     WHERE merchant_id = 'bench' AND idem_key = 'bench-' || :client_id::text || '-' || :r::text
       AND state = 'in_progress' AND lease = 1
    RETURNING checkout_id
), c AS (
    UPDATE rr_checkouts SET
           psp_token = 'v1.k1.' || md5(:client_id::text || '-' || :r::text) || md5(:r::text || '-' || :client_id::text)
                       || md5(:r::text || 'x' || :client_id::text) || 'AbCdEfGhIjKlMnOpQrStUvWx',
           psp_url = 'https://checkout.stripe.com/c/pay/cs_test_' || :client_id::text || '_' || :r::text,
           updated_at = now()
     WHERE merchant_id = 'bench' AND checkout_id = (SELECT checkout_id FROM k)
    RETURNING psp
)
INSERT INTO rr_tokens (psp, psp_token, merchant_id, checkout_id)
SELECT c.psp, encode(sha256(('cs_test_' || :client_id::text || '_' || :r::text)::bytea), 'hex'), 'bench',
       'co_' || :client_id::text || '_' || :r::text
  FROM c;
