-- The notifier's claim is planned for the table it finds (issue 14).
--
-- pay_notify_claim (013) is written to walk notifications_due in next_at
-- order, stop at its limit, and find each row again by its primary key.
-- A worker's connection planned the statement once and kept the plan
-- (PL/pgSQL caches a generic plan after five calls).  Planned while the
-- table was empty, before autovacuum first analysed it, the plan looked
-- rows up through notifications_list (merchant_id, created_at) instead of
-- the primary key: every look-up read all of that merchant's
-- notifications, 8,000 of them per claim.  In make bench-notify, a claim
-- took 92-200 ms and half a million buffer reads with a backlog of a few
-- thousand (the webhooks' own slowdown in those runs was 025's).
--
-- Now the function plans its statement at every call (a claim runs a few
-- times a second; planning it costs under a millisecond), so the planner
-- sees the table's current size even before its first ANALYZE, and, as
-- jit = off already does for its compile time, it carries the settings
-- that leave it only index walks: no sequential or bitmap scan of the
-- backlog.

ALTER FUNCTION pay_notify_claim(text, int, int, int) SET plan_cache_mode = force_custom_plan;
ALTER FUNCTION pay_notify_claim(text, int, int, int) SET enable_seqscan = off;
ALTER FUNCTION pay_notify_claim(text, int, int, int) SET enable_bitmapscan = off;
