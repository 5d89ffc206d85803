-- Endpoints created and secrets rotated through the API
-- (POST /v1/webhook_endpoints, .../rotate_secret): the Idempotency-Key of
-- the request that created the endpoint, and of its last rotation.  A
-- replay with the same key is answered from the row, without the secret:
-- the secret is shown once and never stored in plaintext (not in
-- idempotency_keys either).

ALTER TABLE notify_endpoints ADD COLUMN IF NOT EXISTS created_idem_key text;
ALTER TABLE notify_endpoints ADD COLUMN IF NOT EXISTS rotated_idem_key text;

CREATE UNIQUE INDEX IF NOT EXISTS notify_endpoints_created_idem_key
    ON notify_endpoints (merchant_id, created_idem_key)
 WHERE created_idem_key IS NOT NULL;

COMMENT ON COLUMN notify_endpoints.created_idem_key IS
    'the Idempotency-Key of POST /v1/webhook_endpoints that created it (NULL: payments-merchant add-endpoint)';
COMMENT ON COLUMN notify_endpoints.rotated_idem_key IS
    'the Idempotency-Key of its last POST /v1/webhook_endpoints/{id}/rotate_secret (NULL: none, or payments-merchant rotate-secret)';
