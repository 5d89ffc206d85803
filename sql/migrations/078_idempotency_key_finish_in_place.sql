-- pay_finish's update of the idempotency key (done, with its answer) stays
-- on the row's page (HOT: no index entry written, no dead entry for the
-- next look-up to step over), as the registration's rows floor's does
-- (bench/rows_floor/reg_rows.sql).  It sets expires_at (the answer is kept
-- for the TTL from when it is stored), and an index on expires_at made
-- every finish write a new entry in both of the table's indexes: 3 WAL
-- records and 10 blocks a finish against 1 and 5.  The purge now walks the
-- keys in the order they were made (created_at, which only a claim of an
-- expired key sets again), taking those done and past their expiry: every
-- TTL is a day at least, so the oldest keys are the expired ones.

DROP INDEX IF EXISTS idempotency_keys_expiry;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
