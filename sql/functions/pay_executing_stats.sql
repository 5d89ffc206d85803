-- The checkouts EXECUTING and the oldest one's age, for /metrics (worker
-- 0 of each gateway asks once a minute).  The age comes from the first
-- entry of checkouts_executing_since.  The count is exact while it stays
-- below p_exact.  From there on it reads no further, and says the index's
-- size as PostgreSQL last counted it (autovacuum's VACUUM or ANALYZE), but
-- never less than p_exact.  So a shard with millions of open sessions
-- costs the gauge p_exact index entries a minute, not seconds of reads on
-- one of the pool's connections (bench/executing_gauge.sh).
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).  Its plan is
-- the index's walk whatever the costs say: with sequential and bitmap
-- scans off for the call, the planner has no plan that reads every open
-- session.  Left to the costs it can choose one (a scan and a sort of
-- every open session) where index fetches look dear, and keeps it for the
-- connection (test
-- metrics::executing_gauge_reads_at_most_ten_thousand_whatever_the_costs).
CREATE OR REPLACE FUNCTION pay_executing_stats(p_exact integer)
 RETURNS TABLE(executing bigint, oldest_seconds bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
BEGIN
    RETURN QUERY
    SELECT gauge_count(s.n, p_exact, 'checkouts_executing_since'),
           coalesce(floor(extract(epoch FROM now()
                    - (SELECT min(c.created_at) FROM checkouts c
                        WHERE c.status = 'EXECUTING')))::bigint, 0)
      FROM (SELECT count(*) AS n
              -- in the index's order: its first entries, never every row
              FROM (SELECT FROM checkouts c WHERE c.status = 'EXECUTING'
                     ORDER BY c.created_at LIMIT greatest(p_exact, 1)) AS first) AS s;
END
$function$;
REVOKE ALL ON FUNCTION pay_executing_stats(p_exact integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_executing_stats(p_exact integer) TO payments_gateway;

-- What the gateway asks: exact up to 10,000 (at most some 40 ms of reads
-- on a cold cache).
CREATE OR REPLACE FUNCTION pay_executing_stats()
 RETURNS TABLE(executing bigint, oldest_seconds bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_executing_stats(10000);
$function$;
REVOKE ALL ON FUNCTION pay_executing_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_executing_stats() TO payments_gateway;
