-- Two updates every registration makes, kept on their row's page (HOT: no
-- index entry written, no dead version for the next look-up to step over),
-- as the registration's rows floor makes them (bench/rows_floor/reg_rows.sql).
--
-- The idempotency key: pay_finish sets expires_at (the answer is kept for
-- the TTL from when it is stored), and an index on expires_at made every
-- finish write a new entry in both of the table's indexes.  The purge now
-- walks the keys in the order they were made (created_at, which only a
-- claim of an expired key sets again), taking those done and past their
-- expiry: every TTL is a day at least, so the oldest keys are the expired ones.
--
-- The audit chains' heads: each entry moves its chain's head row, and with
-- full pages (65 heads of about 130 bytes fill one) the new version went to
-- another page, its index entry with it; the head's look-up then stepped
-- over the dead ones (33 blocks an update with 8 clients, 116 in the
-- webhook's profile, against 3).  A fifth of each page is filled, the rest
-- kept for the heads' new versions; the table is written anew in that shape.

DROP INDEX IF EXISTS idempotency_keys_expiry;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

ALTER TABLE audit_heads SET (fillfactor = 20);
CLUSTER audit_heads USING audit_heads_pkey;
ALTER TABLE audit_heads SET WITHOUT CLUSTER;
