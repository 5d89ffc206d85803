-- The notifier's claim takes each endpoint's share first (review of the
-- notifications, issue 14's stop).
--
-- 013's claim walked the due rows in next_at order, kept the oldest
-- 4 x limit of them, and only then applied per_endpoint.  One endpoint with
-- that many rows due ahead of everybody else's (a burst of pay-outs to one
-- slow endpoint; an endpoint enabled again after an outage, its rows still
-- due from before) filled the window: each claim leased its 8 and nothing
-- of anybody else, while the other merchants' notifications waited for the
-- whole backlog to drain at 8 per response time.  And a disabled
-- endpoint's rows were filtered out of that walk one by one: a claim read
-- the whole of its backlog every time (300,000 rows: 277 ms a claim, on
-- every worker, every interval).
--
-- Now the claim finds the endpoints that have anything PENDING (a skip
-- scan of the new index: one probe per endpoint, however long each
-- backlog), leaves out the disabled ones, takes from each enabled one its
-- oldest due rows up to what per_endpoint leaves it, and only then orders
-- them by next_at and applies the limit.  Everything else is 013's: SKIP
-- LOCKED, the lease, the attempts, the answer.  The settings 024 gave the
-- function are written here again (CREATE OR REPLACE replaces them).

CREATE INDEX IF NOT EXISTS notifications_pending_endpoint
    ON notifications (merchant_id, endpoint_id, next_at) WHERE status = 'PENDING';

CREATE OR REPLACE FUNCTION pay_notify_claim(p_owner text, p_limit int, p_lease_ms int,
    p_per_endpoint int)
RETURNS TABLE(notification_id text, merchant_id text, endpoint_id text, url text,
              host text, secret_sealed text, prev_secret_sealed text, attempts int,
              payload text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off
SET plan_cache_mode = force_custom_plan SET enable_seqscan = off
SET enable_bitmapscan = off AS $$
BEGIN
    IF p_limit < 1 OR p_limit > 1000 OR p_lease_ms < 1000 OR p_per_endpoint < 1
       OR length(p_owner) NOT BETWEEN 1 AND 300
    THEN
        RAISE EXCEPTION 'pay_notify_claim: limit 1..1000, lease >= 1000 ms, per endpoint >= 1, an owner'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH RECURSIVE waiting AS (
        -- every endpoint with a PENDING row: a skip scan, one index probe
        -- per endpoint
        (SELECT n.merchant_id, n.endpoint_id FROM notifications n
          WHERE n.status = 'PENDING'
          ORDER BY n.merchant_id, n.endpoint_id
          LIMIT 1)
        UNION ALL
        SELECT x.merchant_id, x.endpoint_id
          FROM waiting w,
               LATERAL (SELECT n.merchant_id, n.endpoint_id FROM notifications n
                         WHERE n.status = 'PENDING'
                           AND (n.merchant_id, n.endpoint_id) > (w.merchant_id, w.endpoint_id)
                         ORDER BY n.merchant_id, n.endpoint_id
                         LIMIT 1) x
    ), room AS (
        -- what per_endpoint leaves each enabled one, with the rows leased
        -- now (by any worker or gateway) counted
        SELECT w.merchant_id, w.endpoint_id,
               p_per_endpoint - (SELECT count(*) FROM notifications n
                                  WHERE n.merchant_id = w.merchant_id
                                    AND n.endpoint_id = w.endpoint_id
                                    AND n.status = 'PENDING' AND n.lease_owner IS NOT NULL
                                    AND n.lease_until >= clock_timestamp()) AS room
          FROM waiting w
          JOIN notify_endpoints e ON e.merchant_id = w.merchant_id
                                 AND e.endpoint_id = w.endpoint_id
         WHERE e.disabled_at IS NULL
    ), candidates AS (
        SELECT c.merchant_id, c.notification_id
          FROM room r,
               LATERAL (SELECT n.merchant_id, n.notification_id FROM notifications n
                         WHERE n.merchant_id = r.merchant_id AND n.endpoint_id = r.endpoint_id
                           AND n.status = 'PENDING' AND n.next_at <= now()
                           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
                         ORDER BY n.next_at
                         LIMIT greatest(r.room, 0)) c
    ), due AS (
        SELECT n.merchant_id, n.notification_id
          FROM notifications n
         WHERE (n.merchant_id, n.notification_id) IN (
                   SELECT c.merchant_id, c.notification_id FROM candidates c)
           AND n.status = 'PENDING'
           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
         ORDER BY n.next_at
         LIMIT p_limit
           FOR UPDATE OF n SKIP LOCKED
    ), claimed AS (
        UPDATE notifications n
           SET lease_owner = p_owner,
               lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0),
               attempts = n.attempts + 1,
               updated_at = now()
          FROM due
         WHERE n.merchant_id = due.merchant_id AND n.notification_id = due.notification_id
        RETURNING n.notification_id, n.merchant_id, n.endpoint_id, n.attempts, n.payload
    )
    SELECT c.notification_id, c.merchant_id, c.endpoint_id, e.url, e.host, e.secret_sealed,
           CASE WHEN e.prev_until > now() THEN e.prev_secret_sealed END,
           c.attempts, c.payload
      FROM claimed c
      JOIN notify_endpoints e ON e.merchant_id = c.merchant_id AND e.endpoint_id = c.endpoint_id;
END
$$;

-- 013's walk of every due row in next_at order is gone; the new index
-- serves the claim and the counts of PENDING rows
DROP INDEX IF EXISTS notifications_due;
