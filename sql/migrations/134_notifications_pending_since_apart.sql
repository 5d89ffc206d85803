-- notifications_pending_since (092: the gauges' index of PENDING rows by
-- age) is for the gauges alone.  Its predicate was the same as
-- notifications_pending_endpoint's (status = 'PENDING'), so every query of
-- PENDING rows could use it, and the notifier's claim (pay_notify_lease:
-- each endpoint's room, then its oldest due rows) did, with the statistics
-- of a quiet outbox: after an ANALYZE that saw no PENDING row, both indexes
-- look as cheap, and an endpoint's rows found through this one are found
-- by reading every PENDING row of every endpoint, once per endpoint.  A
-- claim read 25,653 index entries for 13 rows with three backlogs (test
-- solo_notify_sql::one_endpoints_backlog_never_holds_the_others), and would
-- read more the longer an endpoint is down.  Now the index also says
-- created_at IS NOT NULL, which the gauges' queries say (min() adds it
-- itself) and no claim does, so no claim can use it.
--
-- The index is built in one pass over notifications, which holds off
-- writes to the table meanwhile (as 092's did); the lock is waited for at
-- most 5 s instead of queueing every webhook behind a long transaction:
-- past that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

DROP INDEX IF EXISTS notifications_pending_since;
CREATE INDEX notifications_pending_since ON notifications (created_at)
    WHERE status = 'PENDING' AND created_at IS NOT NULL;
