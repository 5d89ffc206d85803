-- An endpoint is disabled on time spent failing (payments_notify
-- disable_after=, three days by default), not on a count of failures: a
-- busy shop's one-minute deploy fails many deliveries, but never for long.
-- failing_since is the first failure since the last success (NULL: the
-- last delivery succeeded).

ALTER TABLE notify_endpoints ADD COLUMN IF NOT EXISTS failing_since timestamptz;

-- the endpoints failing now: since when is not known, their last change is
-- the best guess (the clock starts at most then)
UPDATE notify_endpoints e SET failing_since = e.updated_at
 WHERE e.failures > 0 AND e.failing_since IS NULL;

COMMENT ON COLUMN notify_endpoints.failing_since IS
    'the first failed delivery since the last one that succeeded (NULL: none)';
