-- Each refund, capture (or void) and pay-out keeps the Idempotency-Key and
-- the fingerprint of the request that made it, for good: the key itself is
-- purged after payments_idempotency_ttl, and the same request sent again
-- after that (the same key, the same body) must find its operation, never
-- make a second one (doc/MONEY.md, "Resumed operations").  The claim
-- functions read this table when op_key_take says the key is new, and
-- write it with the operation, in the claim's transaction.
--
-- The operations made before this migration whose keys are not purged yet
-- are recorded from those keys; older ones had theirs purged already, and
-- their retries are what they were before this release.

CREATE TABLE IF NOT EXISTS operation_keys (
    merchant_id  text NOT NULL,
    idem_key     text NOT NULL,
    fingerprint  text NOT NULL,
    kind         text NOT NULL,
    op_id        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT operation_keys_pkey PRIMARY KEY (merchant_id, idem_key, fingerprint),
    CONSTRAINT operation_keys_kind CHECK (kind IN ('refund', 'capture', 'payout')),
    CONSTRAINT operation_keys_key_format CHECK (length(idem_key) BETWEEN 1 AND 255
                                                AND idem_key ~ '^[ -~]*$'),
    CONSTRAINT operation_keys_fingerprint_format CHECK (length(fingerprint) = 64
                                                        AND fingerprint ~ '^[0-9a-f]*$'),
    CONSTRAINT operation_keys_op_id CHECK (op_id ~ '^(rf|cp|vd|pyo)_[0-9a-f]{24}$')
);
COMMENT ON TABLE operation_keys IS
    'The request that made each refund, capture and pay-out (its Idempotency-Key and fingerprint), kept after the key is purged: the same request again finds its operation.';

INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id, created_at)
SELECT k.merchant_id, k.idem_key, k.fingerprint, 'refund', r.refund_id, r.created_at
  FROM idempotency_keys k
  JOIN refunds r ON r.merchant_id = k.merchant_id AND r.refund_id = k.checkout_id
ON CONFLICT DO NOTHING;

INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id, created_at)
SELECT k.merchant_id, k.idem_key, k.fingerprint, 'capture', x.capture_id, x.created_at
  FROM idempotency_keys k
  JOIN captures x ON x.merchant_id = k.merchant_id AND x.capture_id = k.checkout_id
ON CONFLICT DO NOTHING;

INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id, created_at)
SELECT k.merchant_id, k.idem_key, k.fingerprint, 'payout', p.payout_id, p.created_at
  FROM idempotency_keys k
  JOIN payouts p ON p.merchant_id = k.merchant_id AND p.payout_id = k.checkout_id
ON CONFLICT DO NOTHING;

REVOKE ALL ON operation_keys FROM PUBLIC;
