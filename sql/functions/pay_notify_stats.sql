-- For /metrics (worker 0, every one to ten seconds): the notifications
-- PENDING, the oldest one's age, the FAILED ones (dead letters), the
-- endpoints disabled.  Each count is exact below 10,000; from there it
-- reads no further and says its partial index's size as PostgreSQL last
-- counted it (VACUUM, ANALYZE), never less than 10,000: a backlog of a
-- million cost 0.4-0.6 s a call, every few seconds.  The oldest age is the
-- first entry of notifications_pending_since (whose predicate says
-- created_at IS NOT NULL, as its queries here do, so that the notifier's
-- claims never use it: migration 134).
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).  Its plan is
-- the indexes' walks whatever the costs say: with sequential and bitmap
-- scans off for the call, the planner has no plan that reads every
-- notification.  Left to the costs, where index fetches look dear (rows
-- scattered over pages not all-visible) it chose scans and sorts of the
-- whole outbox, and kept them for the connection: with random_page_cost
-- 40, 50,001 rows read of 40,000 queued (test
-- solo_notify_sql::stats_read_at_most_ten_thousand_whatever_the_costs).
-- JIT off with them: the endpoints' count has no index to walk, its scan
-- keeps the disabled cost (1e10), and every call compiled the plan with
-- LLVM, 0.2 to 1.2 s of database CPU (sql::the_gauges_of_metrics_compile_no_jit_code).
CREATE OR REPLACE FUNCTION pay_notify_stats()
 RETURNS TABLE(pending bigint, oldest_pending_seconds bigint, failed bigint, endpoints_disabled bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
BEGIN
    RETURN QUERY
    SELECT gauge_count(p.n, 10000, 'notifications_pending_since'),
           (SELECT coalesce(ts_epoch(now()) - ts_epoch(min(n.created_at)), 0)
              FROM notifications n WHERE n.status = 'PENDING'),
           gauge_count(f.n, 10000, 'notifications_failed'),
           (SELECT count(*) FROM notify_endpoints e WHERE e.disabled_at IS NOT NULL)
      FROM (SELECT count(*) AS n
              FROM (SELECT FROM notifications n
                     WHERE n.status = 'PENDING' AND n.created_at IS NOT NULL
                     ORDER BY n.created_at LIMIT 10000) AS first) AS p,
           (SELECT count(*) AS n
              FROM (SELECT FROM notifications n WHERE n.status = 'FAILED'
                     ORDER BY n.merchant_id, n.created_at DESC, n.notification_id DESC
                     LIMIT 10000) AS first) AS f;
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_stats() TO payments_gateway;
