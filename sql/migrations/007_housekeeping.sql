-- 007: what the gateway's housekeeping reports (issue 13).
--
-- Worker 0 asks once a minute, after purging expired idempotency keys, how
-- many checkouts are EXECUTING and how old the oldest is: /metrics shows
-- both (payments_checkouts_executing, ..._oldest_seconds), so an operator's
-- alert sees a checkout whose webhook never came.  The partial index keeps
-- that a short scan however many checkouts have ended, and serves the
-- stuck-checkout sweeper to come.

CREATE INDEX IF NOT EXISTS checkouts_executing_since
    ON checkouts (created_at) WHERE status = 'EXECUTING';

CREATE OR REPLACE FUNCTION pay_executing_stats()
RETURNS TABLE(executing bigint, oldest_seconds bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*),
           coalesce(floor(extract(epoch FROM now() - min(c.created_at)))::bigint, 0)
      FROM checkouts c
     WHERE c.status = 'EXECUTING';
$$;

REVOKE ALL ON FUNCTION pay_executing_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_executing_stats() TO payments_gateway;
