-- checkout_risk's six CHECKs become one, checkout_risk_row_checks (made by
-- sql/functions/checkout_risk_row_checks.sql, after this), as the ten
-- busiest tables' did: PostgreSQL reads a CHECK's expression back and
-- plans it at every statement that writes its table, and a risk-checked
-- registration writes its verdict's row (about 170k instructions a
-- registration reading these six back: make bench-instructions risk).
-- Dropping a CHECK reads no row; the new one is added NOT VALID (nothing
-- read either: the rows kept satisfied the six).  Each ALTER waits at most
-- 5 s for its lock: past that the migration fails, nothing of it applied,
-- and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE checkout_risk DROP CONSTRAINT IF EXISTS checkout_risk_reason;
ALTER TABLE checkout_risk DROP CONSTRAINT IF EXISTS checkout_risk_review;
ALTER TABLE checkout_risk DROP CONSTRAINT IF EXISTS checkout_risk_reviewed;
ALTER TABLE checkout_risk DROP CONSTRAINT IF EXISTS checkout_risk_score;
ALTER TABLE checkout_risk DROP CONSTRAINT IF EXISTS checkout_risk_source;
ALTER TABLE checkout_risk DROP CONSTRAINT IF EXISTS checkout_risk_verdict;
