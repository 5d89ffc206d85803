-- notifications_leased (the rows in flight, by endpoint) also says each
-- row's lease_until, so that the notifier's claim (pay_notify_lease: each
-- waiting endpoint's room, the rows leased now counted) reads an
-- endpoint's leases in that order and no other index can give it without
-- a sort, which the claim runs without (enable_sort off).  Counted by
-- (merchant, endpoint) alone, the count could be planned on the primary
-- key: with the leases' churn (every claim sets lease_owner, every record
-- clears it) the partial index grows pages for the few rows in flight,
-- and the statistics of many small merchants made a scan of a merchant's
-- every notification, its delivered history too, look as cheap, once per
-- waiting endpoint at every claim (test
-- solo_notify_sql::a_claim_reads_each_endpoints_rows_by_its_key_on_a_busy_outboxs_statistics).
--
-- The index is built in one pass over notifications, which holds off
-- writes to the table meanwhile (as 134's did); the lock is waited for at
-- most 5 s instead of queueing every webhook behind a long transaction:
-- past that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

DROP INDEX IF EXISTS notifications_leased;
CREATE INDEX notifications_leased ON notifications (merchant_id, endpoint_id, lease_until)
    WHERE status = 'PENDING' AND lease_owner IS NOT NULL;
