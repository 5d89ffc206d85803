-- The risk check before a checkout reaches its PSP (doc/RISK.md): the
-- provider's verdict on each checkout it was asked about, or the policy
-- that stood in for it, in a table of its own (one row per checkout, never
-- updated but by a person's review decision).
--
-- A deny fails the checkout with failure_code risk_declined; a review
-- decision that rejects it, or a review left past its deadline, with
-- risk_rejected.  A checkout waiting for a person is in status REVIEW.

ALTER TYPE pay_failure_code ADD VALUE IF NOT EXISTS 'risk_declined';
ALTER TYPE pay_failure_code ADD VALUE IF NOT EXISTS 'risk_rejected';
ALTER TYPE pay_status ADD VALUE IF NOT EXISTS 'REVIEW';

CREATE TABLE IF NOT EXISTS checkout_risk (
    merchant_id    text        NOT NULL,
    checkout_id    text        NOT NULL,
    verdict        text        NOT NULL,
    score          integer,
    reason         text,
    source         text        NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    review_until   timestamptz,
    reviewed       text,
    reviewed_at    timestamptz,
    PRIMARY KEY (merchant_id, checkout_id),
    FOREIGN KEY (merchant_id, checkout_id)
        REFERENCES checkouts (merchant_id, checkout_id) ON DELETE CASCADE,
    CONSTRAINT checkout_risk_verdict
        CHECK (verdict IN ('allow', 'deny', 'review')),
    CONSTRAINT checkout_risk_score CHECK (score BETWEEN 0 AND 1000),
    CONSTRAINT checkout_risk_reason
        CHECK (reason ~ '^[a-z0-9_.-]{1,64}$'),
    CONSTRAINT checkout_risk_source
        CHECK (source IN ('provider', 'on_error')),
    -- a review waits until a deadline, and only a review is decided later
    CONSTRAINT checkout_risk_review
        CHECK ((verdict = 'review') = (review_until IS NOT NULL)
               AND (reviewed IS NULL OR verdict = 'review')),
    CONSTRAINT checkout_risk_reviewed
        CHECK (reviewed IN ('approved', 'rejected', 'expired')
               AND reviewed_at IS NOT NULL
               OR reviewed IS NULL AND reviewed_at IS NULL)
);

-- the review queue: the undecided reviews, oldest first
CREATE INDEX IF NOT EXISTS checkout_risk_open_reviews
    ON checkout_risk (review_until)
 WHERE verdict = 'review' AND reviewed IS NULL;

REVOKE ALL ON checkout_risk FROM PUBLIC;

COMMENT ON TABLE checkout_risk IS
    'the risk check''s verdict on a checkout before any PSP call (doc/RISK.md)';
COMMENT ON COLUMN checkout_risk.verdict IS
    'allow, deny or review: the provider''s, or the on_error= policy''s when source is on_error';
COMMENT ON COLUMN checkout_risk.score IS
    'the provider''s score, 0..1000 (NULL: none given)';
COMMENT ON COLUMN checkout_risk.reason IS
    'the provider''s reason code, or what failed (timeout, unavailable, malformed, signature) when source is on_error';
COMMENT ON COLUMN checkout_risk.review_until IS
    'a review''s deadline: undecided then, the checkout fails (risk_rejected)';
COMMENT ON COLUMN checkout_risk.reviewed IS
    'a review''s outcome: approved, rejected or expired (NULL: undecided, or not a review)';
