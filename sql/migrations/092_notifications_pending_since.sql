-- The notification queue's gauges (pay_notify_stats, worker 0, every one
-- to ten seconds) find the oldest notification PENDING through this index,
-- by its first entry, and count the first 10,000 of them at most.  They
-- read every PENDING and every FAILED one before: 0.4-0.6 s a call with a
-- million (an endpoint down for hours, dead letters never replayed).
--
-- The index is built in one pass over notifications, which holds off
-- writes to the table meanwhile (as 088's did); the lock is waited for at
-- most 5 s instead of queueing every webhook behind a long transaction:
-- past that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

CREATE INDEX IF NOT EXISTS notifications_pending_since ON notifications (created_at)
    WHERE status = 'PENDING';
