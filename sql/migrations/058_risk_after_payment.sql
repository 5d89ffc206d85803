-- The risk check asked again after the payment (payments_risk
-- after_payment=on, doc/RISK.md): one row per paid checkout the first
-- check asked about, never written twice.  Money already booked is never
-- moved by it: a deny or a review is an alert for a person and a
-- notification the merchant may act on (a refund through the API).
-- A provider that has no usable answer within the sweeper's bounded time
-- leaves the row 'unchecked', source on_error, its reason what failed.

CREATE TABLE IF NOT EXISTS checkout_risk_after (
    merchant_id    text        NOT NULL,
    checkout_id    text        NOT NULL,
    verdict        text        NOT NULL,
    score          integer,
    reason         text,
    source         text        NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, checkout_id),
    FOREIGN KEY (merchant_id, checkout_id)
        REFERENCES checkout_risk (merchant_id, checkout_id) ON DELETE CASCADE,
    CONSTRAINT checkout_risk_after_verdict
        CHECK (verdict IN ('allow', 'deny', 'review', 'unchecked')),
    CONSTRAINT checkout_risk_after_score CHECK (score BETWEEN 0 AND 1000),
    CONSTRAINT checkout_risk_after_reason
        CHECK (reason ~ '^[a-z0-9_.-]{1,64}$'),
    -- the provider's verdict, or none at all: no policy stands in for it
    CONSTRAINT checkout_risk_after_source
        CHECK (source = 'provider' AND verdict <> 'unchecked'
               OR source = 'on_error' AND verdict = 'unchecked'
                  AND score IS NULL AND reason IS NOT NULL)
);

-- the sweeper's round: the first checks of the last days, newest last
CREATE INDEX IF NOT EXISTS checkout_risk_decided
    ON checkout_risk (decided_at);

REVOKE ALL ON checkout_risk_after FROM PUBLIC;

COMMENT ON TABLE checkout_risk_after IS
    'the risk check asked again after the payment (after_payment=on): never reverses booked money (doc/RISK.md)';
COMMENT ON COLUMN checkout_risk_after.verdict IS
    'allow, deny or review: the provider''s; unchecked when it had no usable answer in the bounded time (source on_error)';
COMMENT ON COLUMN checkout_risk_after.reason IS
    'the provider''s reason code, or what failed (timeout, unavailable, malformed, signature) when unchecked';
