-- A checkout held for review that the shop cancels (POST
-- /v1/checkouts/{id}/cancel) is canceled at the gateway alone: no PSP has
-- seen it.  Its review is decided by that cancel: reviewed 'canceled',
-- and it leaves the review queue.

ALTER TABLE checkout_risk DROP CONSTRAINT checkout_risk_reviewed;
ALTER TABLE checkout_risk ADD CONSTRAINT checkout_risk_reviewed
    CHECK (reviewed IN ('approved', 'rejected', 'expired', 'canceled')
           AND reviewed_at IS NOT NULL
           OR reviewed IS NULL AND reviewed_at IS NULL);

COMMENT ON COLUMN checkout_risk.reviewed IS
    'a review''s outcome: approved, rejected or expired by a person or its deadline, or canceled by the shop (NULL: undecided, or not a review)';
