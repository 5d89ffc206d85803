-- The paid checkouts that asked to save the shopper's method and have none
-- recorded are held by two partial indexes with no entry in common:
-- checkouts_method_unalerted (not alerted yet, migration 107's) and
-- checkouts_method_alerted (alerted).  checkouts_method_unsaved held them
-- all, its predicate implied by the unalerted one's, so both could serve
-- the alert round's batch: after a large batch was alerted, and before
-- checkouts was analysed again, the statistics still said none was, the
-- two looked alike to the planner, and a round could take the first and
-- read every checkout alerted already through its filter.  Now only one
-- index serves the batch, whatever the statistics; the count and the
-- look-ups of the sweeper read both (pay_sweeper_methods_unsaved,
-- pay_sweeper_methods_due).
--
-- The index is built in one pass over checkouts, which holds off writes to
-- the table meanwhile (as 090's and 107's did); the lock is waited for at
-- most 5 s: past that the migration fails, nothing of it applied, and is
-- run again.
SET LOCAL lock_timeout = '5s';

CREATE INDEX IF NOT EXISTS checkouts_method_alerted ON checkouts (created_at)
    WHERE save_method IS NOT NULL AND method_saved_at IS NULL
      AND method_alerted_at IS NOT NULL
      AND status IN ('SUCCESS', 'AUTHORIZED');

DROP INDEX IF EXISTS checkouts_method_unsaved;
