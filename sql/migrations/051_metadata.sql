-- The merchant's own key-value pairs on a checkout, a refund and a
-- pay-out: a JSON object of string values (at most 50 keys, keys of 1 to
-- 40 characters, values of at most 500: the module checks the body, the
-- table keeps the shape), stored as sent, answered in the views and
-- carried in the notifications.  '{}' when none was sent.

-- checkouts keeps its rules in checkouts_row_checks() (one CHECK prepared
-- per statement on a busy table): its one writer, pay_claim, refuses
-- anything but an object instead.
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}';

ALTER TABLE refunds ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE refunds ADD CONSTRAINT refunds_metadata_object
    CHECK (jsonb_typeof(metadata) = 'object') NOT VALID;
ALTER TABLE refunds VALIDATE CONSTRAINT refunds_metadata_object;

ALTER TABLE payouts ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE payouts ADD CONSTRAINT payouts_metadata_object
    CHECK (jsonb_typeof(metadata) = 'object') NOT VALID;
ALTER TABLE payouts VALIDATE CONSTRAINT payouts_metadata_object;

COMMENT ON COLUMN checkouts.metadata IS
    'the merchant''s metadata: a JSON object of strings, {} when none';
COMMENT ON COLUMN refunds.metadata IS
    'the merchant''s metadata: a JSON object of strings, {} when none';
COMMENT ON COLUMN payouts.metadata IS
    'the merchant''s metadata: a JSON object of strings, {} when none';
