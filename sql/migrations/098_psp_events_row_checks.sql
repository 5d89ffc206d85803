-- psp_events' six CHECKs become one, psp_events_row_checks (made by
-- sql/functions/psp_events_row_checks.sql, after this), as the nine
-- busiest tables' did: PostgreSQL reads a CHECK's expression back and
-- plans it at every statement that writes its table, and these six were
-- 10 kB of stored expression, read at every webhook's INSERT (the largest
-- part of the 450k instructions a webhook spent reading expressions back,
-- make bench-instructions).  Dropping a CHECK reads no row; the new one is
-- added NOT VALID (nothing read either).  Each ALTER waits at most 5 s for
-- its lock instead of queueing every webhook behind a long transaction:
-- past that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE psp_events DROP CONSTRAINT IF EXISTS psp_events_applied;
ALTER TABLE psp_events DROP CONSTRAINT IF EXISTS psp_events_forwarded;
ALTER TABLE psp_events DROP CONSTRAINT IF EXISTS psp_events_method_sealed;
ALTER TABLE psp_events DROP CONSTRAINT IF EXISTS psp_events_sizes;
ALTER TABLE psp_events DROP CONSTRAINT IF EXISTS psp_events_state;
ALTER TABLE psp_events DROP CONSTRAINT IF EXISTS psp_events_unmatched;
