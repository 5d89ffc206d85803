-- audit_heads' rows are the most updated of the schema: every move of
-- money moves its chain's head.  On a page filled to the brim the head's
-- next version does not fit: the update leaves the page (not a HOT update:
-- an index entry more, and the old version's lock written to the WAL
-- first), and a page holds about one merchant's 65 heads.  fillfactor 50
-- keeps half of each page for its heads' next versions, as checkouts' and
-- idempotency_keys' 80 keep room for their one update.  It applies to the
-- pages filled from now on: the chains of every merchant opened after it.
-- Changing it reads no row.
SET LOCAL lock_timeout = '5s';

ALTER TABLE audit_heads SET (fillfactor = 50);
COMMENT ON TABLE audit_heads IS $c$The head of each audit chain: its last row's sequence number and hash, so that an append reads one row and a verifier knows where a chain ends. fillfactor 50 leaves room on each page for its heads' next versions: a head's update stays a HOT update.$c$;
